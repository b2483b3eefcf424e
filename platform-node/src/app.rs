//! Building the platform node: bind, open the database, wire the services and the platform's own
//! task (real-time reconciliation's schedule). Serving is `shared::node::Serving`, one mechanism
//! for both nodes.

use std::sync::Arc;

use shared::clock::Clock;
use shared::node::{Node, Serving, Wiring};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::{BankLines, Platform, ReconSettings};
use crate::grpc::{self, BankClient, BankFilesClient, BankReconClient};
use crate::store::Store;

/// A platform node, bound and ready to serve.
pub type Application = Serving<Platform>;

/// Binds the listen address, opens and migrates the database, and wires the services.
pub async fn build(config: &Config, clock: Clock) -> anyhow::Result<Application> {
    build_on(shared::grpc::bind(config.listen).await?, config, clock).await
}

/// Like [`build`] on a listener bound already (tests and `ibsim up` bind both nodes' ports first,
/// so that each knows the other's address); `config.listen` is ignored.
pub async fn build_on(
    listener: TcpListener,
    config: &Config,
    clock: Clock,
) -> anyhow::Result<Application> {
    let store = Store::connect(&config.database_url()?).await?;
    let wiring = Wiring::of::<Platform>(&config.security, &clock, &config.files_dir())?;
    let (faults, link) = (&wiring.faults, &wiring.link);
    let bank = BankClient::new(
        &config.bank_url,
        config.peer_timeout_ms,
        faults.clone(),
        link,
    )?;
    let bank_files = BankFilesClient::new(&config.bank_url, faults.clone(), link)?;
    let bank_recon = BankReconClient::new(&config.bank_url, faults.clone(), link)?;
    let platform = Platform::new(
        store,
        clock,
        BankLines {
            link: Arc::new(bank),
            files: Arc::new(bank_files),
            recon: Arc::new(bank_recon),
        },
        wiring.faults,
        wiring.files,
        ReconSettings {
            grace_ms: i64::try_from(config.recon.grace_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            held_max: config.recon.held_max as usize,
        },
    );
    platform.restore_kept_clock().await?;
    let router = grpc::router(platform.clone(), &wiring.security, &config.transport).await?;
    let tasks: Vec<shared::node::Task> = vec![Box::pin(schedule_realtime_recon(
        platform.clone(),
        config.recon.interval_secs,
    ))];
    Serving::new(
        platform,
        listener,
        router,
        &config.transport,
        config.metrics_listen,
        tasks,
    )
    .await
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
