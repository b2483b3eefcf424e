//! A node in a process of its own (the node binaries, or the suites' `e2e-bank-node` and
//! `e2e-platform-node`, which are the very `bank-node` and `platform-node` entry points), started
//! with the flags its configuration gives, so that a test can kill it with SIGKILL and start it
//! again or run a second one against the same database, and the bench can read its memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long a started node may take to answer its health check.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How often a starting node's health is asked (the bench times start-up with it).
const READY_POLL: Duration = Duration::from_millis(2);

/// A free port on the loopback interface, for a process to bind (and bind again after a restart).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("a free port")?;
    Ok(l.local_addr()?)
}

/// A node's configuration as a process takes it: its flags, and where it serves.
pub trait NodeConfig: clap::Args + serde::Serialize {
    /// Where it serves.
    fn listen(&self) -> SocketAddr;
    /// Its TLS credentials' directory, when it serves TLS.
    fn tls_dir(&self) -> Option<&Path>;
}

impl NodeConfig for bank_node::Config {
    fn listen(&self) -> SocketAddr {
        self.listen
    }
    fn tls_dir(&self) -> Option<&Path> {
        self.security.tls_dir.as_deref()
    }
}

impl NodeConfig for platform_node::Config {
    fn listen(&self) -> SocketAddr {
        self.listen
    }
    fn tls_dir(&self) -> Option<&Path> {
        self.security.tls_dir.as_deref()
    }
}

/// A running node process and how to start it again.
pub struct NodeProcess {
    exe: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    tls_dir: Option<PathBuf>,
    child: Option<Child>,
    /// Where it serves.
    pub addr: SocketAddr,
}

impl NodeProcess {
    /// Starts `exe` (a node binary) with the flags that give it `cfg` (its `listen` a port of
    /// its own: [`free_port`]), and waits until it answers its health check.
    pub async fn start(exe: PathBuf, cfg: &impl NodeConfig) -> anyhow::Result<NodeProcess> {
        Self::start_with(exe, cfg, &[], &[]).await
    }

    /// Like [`NodeProcess::start`], with more flags (the binary's own, such as
    /// `--otlp-endpoint`) and these environment variables set for the process.
    pub async fn start_with(
        exe: PathBuf,
        cfg: &impl NodeConfig,
        more_args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<NodeProcess> {
        let mut p = Self::new(exe, cfg, more_args, env)?;
        p.restart().await?;
        Ok(p)
    }

    /// A node process not started yet ([`NodeProcess::spawn`], [`NodeProcess::ready`]): `exe`
    /// with the flags that give it `cfg`, more flags, and these environment variables.
    pub fn new(
        exe: PathBuf,
        cfg: &impl NodeConfig,
        more_args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<NodeProcess> {
        let mut args = shared::flags::to_args(cfg)?;
        args.extend_from_slice(more_args);
        Ok(NodeProcess {
            exe,
            args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            tls_dir: cfg.tls_dir().map(Path::to_owned),
            child: None,
            addr: cfg.listen(),
        })
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The executable it runs.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// Its URL (`https` when it serves TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls_dir.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// A channel to it (reconnects by itself after a restart); over TLS, trusting its CA and
    /// showing the tester's identity (every role), when it serves TLS.
    pub fn channel(&self) -> anyhow::Result<Channel> {
        let endpoint = Channel::from_shared(self.url())?;
        let endpoint = match &self.tls_dir {
            None => endpoint,
            Some(dir) => endpoint
                .tls_config(shared::grpc::guard::ClientCredentials::tester_in(dir)?.tls())?,
        };
        Ok(endpoint.connect_lazy())
    }

    /// Kills it with SIGKILL, as a crash would: no shutdown, no flush, transactions in flight
    /// lost. Returns once the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // An error here is a process that is gone already.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same address, database and data directory, and waits until it
    /// serves.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.spawn()?;
        self.ready().await
    }

    /// Starts its process (killing the one before, if any) without waiting for it to serve.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        self.kill();
        let logs = || {
            if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new(&self.exe)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(logs())
            .stderr(logs())
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until its process answers its health check with SERVING (within 30 s), or fails
    /// with how it exited.
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        let mut health = HealthClient::new(self.channel()?);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let child = self.child.as_mut().context("the node is not started")?;
            if let Some(status) = child.try_wait()? {
                self.child = None;
                anyhow::bail!("{} exited at start: {status}", self.exe.display());
            }
            let check = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if check.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{} did not serve within {READY_WITHIN:?}",
                self.exe.display()
            );
            // Waiting for another process to bind its port: there is no event to wait on.
            tokio::time::sleep(READY_POLL).await;
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
