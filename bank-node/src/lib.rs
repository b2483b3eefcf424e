//! The postal savings bank node: card accounts, the branch counter, the card-link sign-up, and
//! the bank's side of every interbank call.
//!
//! `grpc` is the edge (the only module that sees tonic and generated types), `domain` the rules,
//! `store` the database (the only module that sees sqlx).

pub mod app;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod store;

pub use app::Application;
pub use config::{Config, RefundJobConfig};

use clap::Parser;
use shared::clock::Clock;
use shared::telemetry::{self, TelemetryArgs};

/// The postal savings bank node of interbank-sim.
#[derive(Parser, Debug)]
#[command(name = "bank-node", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// The `bank-node` binary's flags, with their environment variables and defaults (the README's
/// configuration tables are checked against them).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// The `bank-node` binary: reads flags and environment, serves on the real clock until SIGINT or
/// SIGTERM. The end-to-end suites run this same function as a separate process to kill it.
pub async fn serve_from_args() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.telemetry.init("ibsim-bank")?;
    let app = Application::build(&cli.config, Clock::real()).await?;
    let served = app.run_until_stopped(shared::grpc::shutdown_signal()).await;
    telemetry::shutdown();
    served
}
