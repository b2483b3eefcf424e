//! The payment platform node: accounts, login, the platform's copy of each card-link sign-up,
//! activation, and the platform's side of every interbank call.
//!
//! `grpc` is the edge (the only module that sees tonic and generated types), `domain` the rules,
//! `store` the database (the only module that sees sqlx).

pub mod app;
pub mod config;
pub mod domain;
pub mod grpc;
pub mod store;

pub use app::{Application, build, build_on};
pub use config::{Config, ReconConfig};

/// The `platform-node` binary's flags, with their environment variables and defaults (the README's
/// configuration tables are checked against them).
pub fn command() -> clap::Command {
    shared::node::command::<Config>(
        "platform-node",
        "The payment platform node of interbank-sim.",
    )
}

/// The `platform-node` binary: reads flags and environment, serves on the real clock until SIGINT or
/// SIGTERM. The end-to-end suites run this same function as a separate process to kill it.
pub async fn serve_from_args() -> anyhow::Result<()> {
    shared::node::serve_from_args(
        command(),
        "ibsim-platform",
        |config: Config, clock| async move { build(&config, clock).await },
    )
    .await
}
