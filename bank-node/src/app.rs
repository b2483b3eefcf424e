//! Building and running the bank node: bind, open the database, wire the services, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use shared::clock::Clock;
use shared::fault::Faults;
use shared::files::FileStore;
use shared::grpc::{BoundServer, PeerLink};
use shared::security::{Institution, Security};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::{Bank, RefundJobSettings};
use crate::grpc::{self, PlatformClient};
use crate::store::Store;

/// A bank node, bound and ready to serve.
pub struct Application {
    server: BoundServer,
    store: Store,
    bank: Bank,
    refund_job_interval_secs: u64,
    metrics: Option<TcpListener>,
}

impl Application {
    /// Binds the listen address, opens and migrates the database, and wires the services.
    pub async fn build(config: &Config, clock: Clock) -> anyhow::Result<Application> {
        Self::build_on(shared::grpc::bind(config.listen).await?, config, clock).await
    }

    /// Like [`Application::build`] on a listener bound already (tests and `ibsim up` bind both
    /// nodes' ports first, so that each knows the other's address); `config.listen` is ignored.
    pub async fn build_on(
        listener: TcpListener,
        config: &Config,
        clock: Clock,
    ) -> anyhow::Result<Application> {
        let store = Store::connect(&config.database_url()?).await?;
        let faults = Faults::new(Institution::Bank);
        let security = Security::load(&config.security, Institution::Bank)?;
        let link = PeerLink {
            peer: Institution::Platform,
            security: security.clone(),
            clock: clock.clone(),
            domain: crate::domain::DOMAIN,
        };
        let platform = PlatformClient::new(
            &config.platform_url,
            config.peer_timeout_ms,
            faults.clone(),
            &link,
        )?;
        let files = FileStore::open(config.files_dir()).with_context(|| {
            format!(
                "cannot open the file store {}",
                config.files_dir().display()
            )
        })?;
        let settings = RefundJobSettings {
            chunk_lines: usize::from(config.refund_job.chunk_lines),
            pause_ms: config.refund_job.pause_ms,
            worker: format!(
                "bank-{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 3]>())
            ),
        };
        let bank = Bank::new(
            store.clone(),
            clock,
            Arc::new(platform),
            faults,
            files,
            settings,
        );
        bank.restore_clock().await?;
        bank.cutover().await?;
        let router = grpc::router(bank.clone(), &security).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(shared::metrics::bind(addr).await?),
            None => None,
        };
        Ok(Application {
            server: BoundServer::new(listener, router)?,
            store,
            bank,
            refund_job_interval_secs: config.refund_job.interval_secs,
            metrics,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where the metrics endpoint is bound, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let watcher = tokio::spawn(watch_cutover(self.bank.clone()));
        let metrics = self
            .metrics
            .map(|l| tokio::spawn(shared::metrics::serve(l, self.bank.metrics().clone())));
        let job = tokio::spawn(schedule_refund_job(
            self.bank,
            self.refund_job_interval_secs,
        ));
        let result = self.server.serve("bank", shutdown).await;
        watcher.abort();
        job.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        self.store.close().await;
        result
    }
}

/// Runs the day-end cutover whenever the business clock (running, or moved by hand) enters a new
/// business date; moves made through the simulator API run it at once themselves.
async fn watch_cutover(bank: Bank) {
    let mut seen = bank.clock().business_date();
    let mut tick =
        tokio::time::interval(std::time::Duration::from_millis(shared::schedule::TICK_MS));
    loop {
        tick.tick().await;
        let today = bank.clock().business_date();
        if today == seen {
            continue;
        }
        match bank.cutover().await {
            Ok(_) => seen = today,
            Err(e) => tracing::error!(error = ?e, "day-end cutover failed; trying again"),
        }
    }
}

/// Runs the refund batch job every `interval_secs` of business time (never when 0): the first run
/// one interval after start, the next one interval after each run began
/// ([`shared::clock::Schedule`]).
async fn schedule_refund_job(bank: Bank, interval_secs: u64) {
    let clock = bank.clock().clone();
    shared::schedule::run_every(clock, interval_secs, || async {
        match bank.run_refund_job().await {
            Ok(done) if done.is_empty() => {}
            Ok(done) => tracing::info!(batches = done.len(), "scheduled refund job finished"),
            Err(e) => {
                tracing::error!(error = ?e, "scheduled refund job failed; next run tries again")
            }
        }
    })
    .await;
}

impl shared::node::NodeApp for Application {
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send {
        Application::run_until_stopped(self, shutdown)
    }
}
