//! Building and running the platform node: bind, open the database, wire the services, serve.

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
use crate::domain::{BankLines, Platform, ReconSettings};
use crate::grpc::{self, BankClient, BankFilesClient, BankReconClient};
use crate::store::Store;

/// A platform node, bound and ready to serve.
pub struct Application {
    server: BoundServer,
    store: Store,
    platform: Platform,
    recon_interval_secs: u64,
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
        let faults = Faults::new(Institution::Platform);
        let security = Security::load(&config.security, Institution::Platform)?;
        let link = PeerLink {
            peer: Institution::Bank,
            security: security.clone(),
            clock: clock.clone(),
            domain: crate::domain::DOMAIN,
        };
        let bank = BankClient::new(
            &config.bank_url,
            config.peer_timeout_ms,
            faults.clone(),
            &link,
        )?;
        let bank_files = BankFilesClient::new(&config.bank_url, faults.clone(), &link)?;
        let bank_recon = BankReconClient::new(&config.bank_url, faults.clone(), &link)?;
        let files = FileStore::open(config.files_dir()).with_context(|| {
            format!(
                "cannot open the file store {}",
                config.files_dir().display()
            )
        })?;
        let platform = Platform::new(
            store.clone(),
            clock,
            BankLines {
                link: Arc::new(bank),
                files: Arc::new(bank_files),
                recon: Arc::new(bank_recon),
            },
            faults,
            files,
            ReconSettings {
                grace_ms: i64::try_from(config.recon.grace_secs.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
            },
        );
        platform.restore_clock().await?;
        let router = grpc::router(platform.clone(), &security).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(shared::metrics::bind(addr).await?),
            None => None,
        };
        Ok(Application {
            server: BoundServer::new(listener, router)?,
            store,
            platform,
            recon_interval_secs: config.recon.interval_secs,
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
        let metrics = self
            .metrics
            .map(|l| tokio::spawn(shared::metrics::serve(l, self.platform.metrics().clone())));
        let recon = tokio::spawn(schedule_realtime_recon(
            self.platform,
            self.recon_interval_secs,
        ));
        let result = self.server.serve("platform", shutdown).await;
        recon.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        self.store.close().await;
        result
    }
}

/// Runs real-time reconciliation every `interval_secs` of business time (never when 0): the
/// first run one interval after start ([`shared::clock::Schedule`]).
async fn schedule_realtime_recon(platform: Platform, interval_secs: u64) {
    let clock = platform.clock().clone();
    shared::schedule::run_every(clock, interval_secs, || async {
        match platform.recon_realtime().await {
            Ok(r) if r.adjustments.is_empty() => {}
            Ok(r) => tracing::info!(
                adjustments = r.adjustments.len(),
                "scheduled real-time reconciliation adjusted orders"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "scheduled real-time reconciliation failed; next run tries again")
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
