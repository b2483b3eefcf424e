//! Both nodes in one process, each with its own database and its own gRPC server on its own port;
//! they talk to each other only over gRPC, as two separate processes would. `ibsim up` and the
//! end-to-end tests start them this way.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use shared::clock::Clock;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where each node listens and keeps its data.
#[derive(Debug, Clone)]
pub struct PairConfig {
    /// The bank's listen address (port 0: any free port).
    pub bank_listen: SocketAddr,
    /// The platform's listen address (port 0: any free port).
    pub platform_listen: SocketAddr,
    /// The bank's database URL.
    pub bank_database_url: String,
    /// The platform's database URL.
    pub platform_database_url: String,
    /// The bank's data directory.
    pub bank_data_dir: PathBuf,
    /// The platform's data directory.
    pub platform_data_dir: PathBuf,
    /// Peer call timeout, milliseconds.
    pub peer_timeout_ms: u64,
    /// The bank's refund batch job.
    pub bank_refund_job: bank_node::RefundJobConfig,
    /// The platform's real-time reconciliation schedule and grace window.
    pub platform_recon: platform_node::ReconConfig,
    /// Serve the platform only, and reach a bank that runs elsewhere at `bank_listen` (the
    /// end-to-end suites run the bank as a process of its own to kill it).
    pub bank_elsewhere: bool,
    /// Start both nodes' business clocks frozen at this time (each node keeps its own clock);
    /// `None`: both run on real time.
    pub frozen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where the bank serves its metrics (`None`: no endpoint).
    pub bank_metrics_listen: Option<SocketAddr>,
    /// Where the platform serves its metrics (`None`: no endpoint).
    pub platform_metrics_listen: Option<SocketAddr>,
    /// Mutual TLS and signed interbank messages, for both nodes (default: neither).
    pub security: shared::security::SecurityArgs,
}

impl PairConfig {
    /// A pair on `bank_db` and `platform_db` with its data under `dir`: any free ports, the
    /// refund job and real-time reconciliation only when asked, both clocks on real time, no
    /// metrics endpoints. Callers change what they need with `..PairConfig::local(…)`.
    pub fn local(bank_db: String, platform_db: String, dir: &std::path::Path) -> PairConfig {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        PairConfig {
            bank_listen: any_port,
            platform_listen: any_port,
            bank_database_url: bank_db,
            platform_database_url: platform_db,
            bank_data_dir: dir.join("bank"),
            platform_data_dir: dir.join("platform"),
            peer_timeout_ms: shared::grpc::PEER_TIMEOUT_MS_DEFAULT,
            bank_refund_job: bank_node::RefundJobConfig {
                interval_secs: 0,
                ..Default::default()
            },
            platform_recon: platform_node::ReconConfig {
                interval_secs: 0,
                ..Default::default()
            },
            bank_elsewhere: false,
            frozen_at: None,
            bank_metrics_listen: None,
            platform_metrics_listen: None,
            security: Default::default(),
        }
    }
}

/// The URL scheme the nodes serve on.
fn scheme(security: &shared::security::SecurityArgs) -> &'static str {
    if security.tls_dir.is_some() {
        "https"
    } else {
        "http"
    }
}

struct Node {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Node {
    fn spawn<F>(run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Node
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        Node {
            stop: Some(tx),
            task: Some(tokio::spawn(run(rx))),
        }
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(t) => t.await.context("node task panicked")?,
            None => Ok(()),
        }
    }
}

/// Two running nodes.
pub struct RunningPair {
    scheme: &'static str,
    /// Where the bank serves.
    pub bank_addr: SocketAddr,
    /// Where the platform serves.
    pub platform_addr: SocketAddr,
    /// Where the bank serves its metrics, if it does.
    pub bank_metrics: Option<SocketAddr>,
    /// Where the platform serves its metrics, if it does.
    pub platform_metrics: Option<SocketAddr>,
    bank: Option<Node>,
    platform: Node,
}

impl RunningPair {
    /// Binds both ports, opens both databases, and serves both nodes.
    pub async fn start(cfg: &PairConfig) -> anyhow::Result<RunningPair> {
        let bank_listener =
            if cfg.bank_elsewhere {
                None
            } else {
                Some(TcpListener::bind(cfg.bank_listen).await.with_context(|| {
                    format!("cannot listen on {} for the bank", cfg.bank_listen)
                })?)
            };
        let platform_listener =
            TcpListener::bind(cfg.platform_listen)
                .await
                .with_context(|| {
                    format!("cannot listen on {} for the platform", cfg.platform_listen)
                })?;
        let bank_addr = match &bank_listener {
            Some(l) => l.local_addr()?,
            None => cfg.bank_listen,
        };
        let platform_addr = platform_listener.local_addr()?;

        let scheme = scheme(&cfg.security);
        let bank_cfg = bank_node::Config {
            listen: bank_addr,
            platform_url: format!("{scheme}://{platform_addr}"),
            database_url: Some(cfg.bank_database_url.clone()),
            data_dir: cfg.bank_data_dir.clone(),
            peer_timeout_ms: cfg.peer_timeout_ms,
            refund_job: cfg.bank_refund_job.clone(),
            metrics_listen: cfg.bank_metrics_listen,
            security: cfg.security.clone(),
        };
        let platform_cfg = platform_node::Config {
            listen: platform_addr,
            bank_url: format!("{scheme}://{bank_addr}"),
            database_url: Some(cfg.platform_database_url.clone()),
            data_dir: cfg.platform_data_dir.clone(),
            peer_timeout_ms: cfg.peer_timeout_ms,
            recon: cfg.platform_recon.clone(),
            metrics_listen: cfg.platform_metrics_listen,
            security: cfg.security.clone(),
        };
        let clock = || match cfg.frozen_at {
            Some(t) => Clock::frozen(t),
            None => Clock::real(),
        };
        let bank = match bank_listener {
            Some(l) => Some(
                bank_node::Application::build_on(l, &bank_cfg, clock())
                    .await
                    .context("cannot start the bank node")?,
            ),
            None => None,
        };
        let platform =
            platform_node::Application::build_on(platform_listener, &platform_cfg, clock())
                .await
                .context("cannot start the platform node")?;
        Ok(RunningPair {
            scheme,
            bank_addr,
            platform_addr,
            bank_metrics: bank.as_ref().and_then(|b| b.metrics_addr()),
            platform_metrics: platform.metrics_addr(),
            bank: bank.map(|bank| {
                Node::spawn(|rx| {
                    bank.run_until_stopped(async move {
                        let _ = rx.await;
                    })
                })
            }),
            platform: Node::spawn(|rx| {
                platform.run_until_stopped(async move {
                    let _ = rx.await;
                })
            }),
        })
    }

    /// The bank's URL (`https` with TLS on).
    pub fn bank_url(&self) -> String {
        format!("{}://{}", self.scheme, self.bank_addr)
    }

    /// The platform's URL (`https` with TLS on).
    pub fn platform_url(&self) -> String {
        format!("{}://{}", self.scheme, self.platform_addr)
    }

    /// Stops the platform node only (to see how the bank copes without it).
    pub async fn stop_platform(&mut self) -> anyhow::Result<()> {
        self.platform.stop().await
    }

    /// Stops both nodes, finishing requests in flight.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let p = self.platform.stop().await;
        let b = match self.bank.as_mut() {
            Some(bank) => bank.stop().await,
            None => Ok(()),
        };
        p.and(b)
    }
}
