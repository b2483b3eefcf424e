//! Running the two nodes: `ibsim up`, the scenario runner, the bench, the explorer and the
//! end-to-end suites all start them here.
//!
//! - [`RunningPair`]: both nodes in this process, each with its own database and its own gRPC
//!   server on its own port; they talk to each other only over gRPC, as two separate processes
//!   would. A killable pair runs each on a runtime of its own, to end it as a crash would.
//! - [`process::NodeProcess`]: a node in a process of its own, started with the flags its
//!   configuration gives ([`shared::flags::to_args`]), killed with SIGKILL.
//! - [`metrics_page`]: a node's metrics page, as Prometheus reads it.
//!
//! A pair's configuration is each node's own `Config` ([`PairConfig`]); on SQLite or PostgreSQL
//! (its database URL), plain or secured (its security settings).

pub mod process;
mod scrape;

pub use scrape::metrics_page;

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use shared::clock::Clock;
use shared::node::Serving;
use shared::security::SecurityArgs;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Both nodes' configurations (each node's own `Config`, the one its binary parses: a flag
/// added to a node reaches the pair, `ibsim up` and the node processes with no edit here) and
/// how the pair runs them.
#[derive(Debug, Clone)]
pub struct PairConfig {
    /// The bank's configuration. Its `listen` port 0 binds any free port; its `platform_url` is
    /// set to where the platform serves.
    pub bank: bank_node::Config,
    /// The platform's configuration, as the bank's (its `bank_url` set to where the bank serves).
    pub platform: platform_node::Config,
    /// Serve the platform only, and reach a bank that runs elsewhere at `bank.listen` (the
    /// end-to-end suites run the bank as a process of its own to kill it).
    pub bank_elsewhere: bool,
    /// Start both nodes' business clocks frozen at this time (each node keeps its own clock);
    /// `None`: both run on real time.
    pub frozen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Run each node on a runtime of its own, so that [`RunningPair::restart_bank`] and
    /// [`RunningPair::restart_platform`] kill it as a process dies: every task and socket of it
    /// at once (the explorer). Default: both on the caller's runtime.
    pub killable: bool,
}

impl PairConfig {
    /// A pair on `bank_db` and `platform_db` with its data under `dir` (`bank/`, `platform/`):
    /// any free ports, the refund job and real-time reconciliation only when asked, both clocks
    /// on real time, every other setting at the node's default. Callers change what they need
    /// on the result.
    pub fn local(bank_db: String, platform_db: String, dir: &Path) -> PairConfig {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut bank = bank_node::Config {
            listen: any_port,
            database_url: Some(bank_db),
            data_dir: dir.join("bank"),
            ..Default::default()
        };
        bank.refund_job.interval_secs = 0;
        let mut platform = platform_node::Config {
            listen: any_port,
            database_url: Some(platform_db),
            data_dir: dir.join("platform"),
            ..Default::default()
        };
        platform.recon.interval_secs = 0;
        PairConfig {
            bank,
            platform,
            bank_elsewhere: false,
            frozen_at: None,
            killable: false,
        }
    }

    /// Both nodes with these security settings.
    pub fn secured(mut self, security: SecurityArgs) -> PairConfig {
        self.bank.security = security.clone();
        self.platform.security = security;
        self
    }

    /// Both nodes with this peer call timeout, milliseconds.
    pub fn peer_timeout_ms(mut self, ms: u64) -> PairConfig {
        self.bank.peer_timeout_ms = ms;
        self.platform.peer_timeout_ms = ms;
        self
    }

    /// Both nodes serving their metrics on any free port.
    pub fn with_metrics(mut self) -> PairConfig {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        self.bank.metrics_listen = Some(any_port);
        self.platform.metrics_listen = Some(any_port);
        self
    }
}

/// The URL scheme the nodes serve on.
fn scheme(security: &SecurityArgs) -> &'static str {
    if security.tls_dir.is_some() {
        "https"
    } else {
        "http"
    }
}

struct Node {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The node's own runtime, for a node that can be killed: every task it spawned (each
    /// connection's, the audit writer, the jobs) dies with it, as with a killed process.
    runtime: Option<tokio::runtime::Runtime>,
}

/// Worker threads of a killable node's own runtime.
const ISOLATED_WORKERS: usize = 2;
/// How long a killed node's runtime may take to drop its tasks and sockets.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Shuts a node's runtime down and returns once its threads are gone (its listener closed, so
/// that the address can be bound again).
async fn shut_down(rt: tokio::runtime::Runtime) {
    let _ = tokio::task::spawn_blocking(move || rt.shutdown_timeout(SHUTDOWN_WAIT)).await;
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
            runtime: None,
        }
    }

    /// Builds and runs a node on a runtime of its own, on `listener` (bound already, so that
    /// the peer knows the address); returns once it serves, or with why it could not start.
    async fn spawn_isolated<N, B, F>(
        listener: std::net::TcpListener,
        build: B,
    ) -> anyhow::Result<Node>
    where
        N: shared::node::Node,
        B: FnOnce(TcpListener) -> F + Send + 'static,
        F: std::future::Future<Output = anyhow::Result<Serving<N>>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(ISOLATED_WORKERS)
            .enable_all()
            .build()
            .context("a runtime for the node")?;
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<()>>();
        let task = runtime.spawn(async move {
            listener.set_nonblocking(true)?;
            let built = match TcpListener::from_std(listener) {
                Ok(l) => build(l).await,
                Err(e) => Err(e.into()),
            };
            match built {
                Ok(app) => {
                    let _ = ready_tx.send(Ok(()));
                    app.run_until_stopped(async move {
                        let _ = rx.await;
                    })
                    .await
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    let _ = ready_tx.send(Err(e));
                    Err(anyhow::anyhow!(msg))
                }
            }
        });
        ready_rx.await.context("the node's runtime ended")??;
        Ok(Node {
            stop: Some(tx),
            task: Some(task),
            runtime: Some(runtime),
        })
    }

    /// Ends the node at once, as a killed process ends: requests in flight are dropped where
    /// they stand, their transactions rolled back with their connections.
    async fn kill(&mut self) {
        match self.runtime.take() {
            // Every task of the node's runtime dropped where it stands, sockets closed.
            Some(rt) => {
                self.task.take();
                self.stop.take();
                shut_down(rt).await;
            }
            None => {
                self.stop.take();
                if let Some(t) = self.task.take() {
                    t.abort();
                    let _ = t.await;
                }
            }
        }
    }

    async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = match self.task.take() {
            Some(t) => t.await.context("node task panicked")?,
            None => Ok(()),
        };
        if let Some(rt) = self.runtime.take() {
            shut_down(rt).await;
        }
        r
    }
}

/// A node started beside a pair ([`RunningPair::another_platform`]); it stops when dropped or
/// with [`OtherNode::stop`].
pub struct OtherNode(Node);

impl OtherNode {
    /// Stops it, finishing requests in flight.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.0.stop().await
    }
}

impl Drop for OtherNode {
    fn drop(&mut self) {
        if let Some(rt) = self.0.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Each node's configuration in a pair whose nodes listen at these addresses.
fn node_configs(
    cfg: &PairConfig,
    bank_addr: SocketAddr,
    platform_addr: SocketAddr,
) -> (bank_node::Config, platform_node::Config) {
    let bank = bank_node::Config {
        listen: bank_addr,
        platform_url: url(&cfg.platform.security, platform_addr),
        ..cfg.bank.clone()
    };
    let platform = platform_node::Config {
        listen: platform_addr,
        bank_url: url(&cfg.bank.security, bank_addr),
        ..cfg.platform.clone()
    };
    (bank, platform)
}

/// The URL of a node serving at `addr` with these settings.
fn url(security: &SecurityArgs, addr: SocketAddr) -> String {
    format!("{}://{addr}", scheme(security))
}

/// Binds `addr` for a node that runs on a runtime of its own.
fn bind_std(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))
}

/// Two running nodes.
pub struct RunningPair {
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
    bank_cfg: bank_node::Config,
    platform_cfg: platform_node::Config,
}

impl RunningPair {
    /// Binds both ports, opens both databases, and serves both nodes.
    pub async fn start(cfg: &PairConfig) -> anyhow::Result<RunningPair> {
        if cfg.killable {
            return Self::start_killable(cfg).await;
        }
        let bank_listener =
            if cfg.bank_elsewhere {
                None
            } else {
                Some(TcpListener::bind(cfg.bank.listen).await.with_context(|| {
                    format!("cannot listen on {} for the bank", cfg.bank.listen)
                })?)
            };
        let platform_listener =
            TcpListener::bind(cfg.platform.listen)
                .await
                .with_context(|| {
                    format!("cannot listen on {} for the platform", cfg.platform.listen)
                })?;
        let bank_addr = match &bank_listener {
            Some(l) => l.local_addr()?,
            None => cfg.bank.listen,
        };
        let platform_addr = platform_listener.local_addr()?;

        let (bank_cfg, platform_cfg) = node_configs(cfg, bank_addr, platform_addr);
        let clock = || match cfg.frozen_at {
            Some(t) => Clock::frozen(t),
            None => Clock::real(),
        };
        let bank = match bank_listener {
            Some(l) => Some(
                bank_node::build_on(l, &bank_cfg, clock())
                    .await
                    .context("cannot start the bank node")?,
            ),
            None => None,
        };
        let platform = platform_node::build_on(platform_listener, &platform_cfg, clock())
            .await
            .context("cannot start the platform node")?;
        Ok(RunningPair {
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
            bank_cfg,
            platform_cfg,
        })
    }

    /// Kills the bank mid-flow (in-process: its task aborted where it stands) and starts it
    /// again on the same address, database and data directory; its business clock is the one it
    /// kept. Returns once it serves.
    pub async fn restart_bank(&mut self) -> anyhow::Result<()> {
        let bank = self
            .bank
            .as_mut()
            .context("the bank runs elsewhere: restart its process")?;
        bank.kill().await;
        let cfg = self.bank_cfg.clone();
        let node = Node::spawn_isolated(bind_std(self.bank_addr)?, move |l| async move {
            bank_node::build_on(l, &cfg, Clock::real()).await
        })
        .await
        .context("cannot restart the bank node")?;
        self.bank = Some(node);
        Ok(())
    }

    /// Kills the platform mid-flow and starts it again, as [`RunningPair::restart_bank`] does.
    pub async fn restart_platform(&mut self) -> anyhow::Result<()> {
        self.platform.kill().await;
        let cfg = self.platform_cfg.clone();
        self.platform = Node::spawn_isolated(bind_std(self.platform_addr)?, move |l| async move {
            platform_node::build_on(l, &cfg, Clock::real()).await
        })
        .await
        .context("cannot restart the platform node")?;
        Ok(())
    }

    /// Starts one more platform process (in this process) on the platform's database and data
    /// directory, serving on a port of its own: another instance of the same platform, as a
    /// scale-out runs it. Its clock is the one the platform kept.
    pub async fn another_platform(&self) -> anyhow::Result<(SocketAddr, OtherNode)> {
        let listener = bind_std(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let cfg = platform_node::Config {
            listen: addr,
            ..self.platform_cfg.clone()
        };
        let node = Node::spawn_isolated(listener, move |l| async move {
            platform_node::build_on(l, &cfg, Clock::real()).await
        })
        .await
        .context("cannot start another platform process")?;
        Ok((addr, OtherNode(node)))
    }

    /// [`RunningPair::start`] with each node on a runtime of its own (`cfg.killable`).
    async fn start_killable(cfg: &PairConfig) -> anyhow::Result<RunningPair> {
        anyhow::ensure!(!cfg.bank_elsewhere, "a killable pair runs both nodes");
        let bank_listener = bind_std(cfg.bank.listen)?;
        let platform_listener = bind_std(cfg.platform.listen)?;
        let (bank_addr, platform_addr) =
            (bank_listener.local_addr()?, platform_listener.local_addr()?);
        let (bank_cfg, platform_cfg) = node_configs(cfg, bank_addr, platform_addr);
        let frozen = cfg.frozen_at;
        let clock = move || match frozen {
            Some(t) => Clock::frozen(t),
            None => Clock::real(),
        };
        let c = bank_cfg.clone();
        let bank = Node::spawn_isolated(bank_listener, move |l| async move {
            bank_node::build_on(l, &c, clock()).await
        })
        .await
        .context("cannot start the bank node")?;
        let c = platform_cfg.clone();
        let platform = Node::spawn_isolated(platform_listener, move |l| async move {
            platform_node::build_on(l, &c, clock()).await
        })
        .await
        .context("cannot start the platform node")?;
        Ok(RunningPair {
            bank_addr,
            platform_addr,
            bank_metrics: None,
            platform_metrics: None,
            bank: Some(bank),
            platform,
            bank_cfg,
            platform_cfg,
        })
    }

    /// The bank's URL (`https` with TLS on).
    pub fn bank_url(&self) -> String {
        url(&self.bank_cfg.security, self.bank_addr)
    }

    /// The platform's URL (`https` with TLS on).
    pub fn platform_url(&self) -> String {
        url(&self.platform_cfg.security, self.platform_addr)
    }

    /// The bank's configuration as the pair runs it: where it serves and where it finds the
    /// platform. Another bank process started with it (on another `listen`) is another instance
    /// of the same bank.
    pub fn bank_config(&self) -> &bank_node::Config {
        &self.bank_cfg
    }

    /// The platform's configuration as the pair runs it, as [`RunningPair::bank_config`].
    pub fn platform_config(&self) -> &platform_node::Config {
        &self.platform_cfg
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
