//! `platform-node`: the payment platform's side of the link.

use clap::Parser;
use platform_node::{Application, Config};
use shared::clock::Clock;
use shared::telemetry::{self, LogFormat};

/// The payment platform node of interbank-sim.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    /// Log format: text or json.
    #[arg(long, env = "IBSIM_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let app = Application::build(&cli.config, Clock::real()).await?;
    app.run_until_stopped(shared::grpc::shutdown_signal()).await
}
