//! Building the bank node: bind, open the database, wire the services and the bank's own tasks
//! (the day-end cutover watcher, the refund job's schedule). Serving is `shared::node::Serving`,
//! one mechanism for both nodes.

use std::sync::Arc;

use shared::clock::Clock;
use shared::keyring::KeyRing;
use shared::node::{Node, Serving, Wiring};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::domain::{Bank, RefundJobSettings};
use crate::grpc::{self, PlatformClient};
use crate::store::Store;

/// A bank node, bound and ready to serve.
pub type Application = Serving<Bank>;

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
    let wiring = Wiring::of::<Bank>(&config.security, &clock, &config.files_dir())?;
    let platform = PlatformClient::new(
        &config.platform_url,
        config.peer_timeout_ms,
        wiring.faults.clone(),
        &wiring.link,
    )?;
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
        store,
        clock,
        Arc::new(platform),
        wiring.faults,
        wiring.files,
        settings,
        KeyRing::load_or_create(&config.otp_key_file())?,
    );
    bank.restore_clock().await?;
    bank.cutover().await?;
    let router = grpc::router(bank.clone(), &wiring.security, &config.transport).await?;
    let tasks: Vec<shared::node::Task> = vec![
        Box::pin(watch_cutover(bank.clone())),
        Box::pin(schedule_refund_job(
            bank.clone(),
            config.refund_job.interval_secs,
        )),
    ];
    Serving::new(
        bank,
        listener,
        router,
        &config.transport,
        config.metrics_listen,
        tasks,
    )
    .await
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
