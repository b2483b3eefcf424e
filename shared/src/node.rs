//! What both node binaries do the same way: their command line (the node's `Config` and the
//! telemetry flags), and serving on the real clock until SIGINT or SIGTERM. Each node keeps what
//! is its own: its configuration and how its `Application` is built.

use std::future::Future;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::clock::Clock;
use crate::telemetry::{self, TelemetryArgs};

/// A node binary's command line.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli<C: Args> {
    #[command(flatten)]
    config: C,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// A node application, built and bound: it serves until `shutdown` resolves.
pub trait NodeApp: Send + 'static {
    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A node binary's flags: `name`'s configuration `C` and the telemetry flags, with their
/// environment variables and defaults.
pub fn command<C: Args>(name: &'static str, about: &'static str) -> clap::Command {
    <Cli<C> as CommandFactory>::command()
        .name(name)
        .about(about)
}

/// The node binary `name`: reads flags and environment, sets up telemetry as `service`, builds
/// the application with `build` on the real clock and serves until SIGINT or SIGTERM.
pub async fn serve_from_args<C, A, F>(
    command: clap::Command,
    service: &'static str,
    build: impl FnOnce(C, Clock) -> F,
) -> anyhow::Result<()>
where
    C: Args + FromArgMatches,
    A: NodeApp,
    F: Future<Output = anyhow::Result<A>>,
{
    let cli = Cli::<C>::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    cli.telemetry.init(service)?;
    let app = build(cli.config, Clock::real()).await?;
    let served = app.run_until_stopped(crate::grpc::shutdown_signal()).await;
    telemetry::shutdown();
    served
}
