//! A node in a process of its own (the suites' `e2e-bank-node` and `e2e-platform-node` binaries,
//! which are the very `bank-node` and `platform-node` entry points), so that a test can kill it
//! with SIGKILL and start it again, or run a second one against the same database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a started node may take to answer its health check.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A free port on the loopback interface, for a process to bind (and bind again after a restart).
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address")
}

/// A running node process and how to start it again.
pub struct NodeProcess {
    exe: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Where it serves.
    pub addr: SocketAddr,
}

impl NodeProcess {
    /// Starts `exe` serving on `addr` with these flags (besides `--listen`), and waits until it
    /// answers its health check.
    pub async fn start(exe: PathBuf, addr: SocketAddr, args: Vec<String>) -> NodeProcess {
        Self::start_with_env(exe, addr, args, &[]).await
    }

    /// Like [`NodeProcess::start`], with these environment variables set for the process.
    pub async fn start_with_env(
        exe: PathBuf,
        addr: SocketAddr,
        args: Vec<String>,
        env: &[(&str, &str)],
    ) -> NodeProcess {
        let mut p = NodeProcess {
            exe,
            args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            child: None,
            addr,
        };
        p.restart().await;
        p
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The executable it runs.
    pub fn exe(&self) -> &std::path::Path {
        &self.exe
    }

    /// A channel to it (reconnects by itself after a restart); over TLS, trusting its CA, when
    /// it was started with `--tls-dir`.
    pub fn channel(&self) -> Channel {
        let tls_dir = self
            .args
            .iter()
            .position(|a| a == "--tls-dir")
            .and_then(|i| self.args.get(i + 1));
        match tls_dir {
            None => Channel::from_shared(format!("http://{}", self.addr))
                .expect("a URL")
                .connect_lazy(),
            Some(dir) => {
                let ca = std::fs::read(std::path::Path::new(dir).join("ca.pem")).expect("the CA");
                Channel::from_shared(format!("https://{}", self.addr))
                    .expect("a URL")
                    .tls_config(shared::grpc::guard::client_tls(&ca))
                    .expect("TLS")
                    .connect_lazy()
            }
        }
    }

    /// Kills it with SIGKILL, as a crash would: no shutdown, no flush, transactions in flight
    /// lost. Returns once the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL the node");
            c.wait().expect("the node is gone");
        }
    }

    /// Starts it (again) on the same address, database and data directory, and waits until it
    /// serves.
    pub async fn restart(&mut self) {
        self.kill();
        let logs = || {
            if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let mut child = Command::new(&self.exe)
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(logs())
            .stderr(logs())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.exe.display()));
        let mut health = HealthClient::new(self.channel());
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = child.try_wait().expect("the node's status") {
                panic!("the node process exited at start: {status}");
            }
            let check = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if check.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the node process did not serve within {READY_WITHIN:?}"
            );
            // Waiting for another process to bind its port: there is no event to wait on.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
