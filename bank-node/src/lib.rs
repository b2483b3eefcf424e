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

pub use app::{Application, build, build_on};
pub use config::{Config, RefundJobConfig};

/// The `bank-node` binary's flags, with their environment variables and defaults (the README's
/// configuration tables are checked against them).
pub fn command() -> clap::Command {
    shared::node::command::<Config>(
        "bank-node",
        "The postal savings bank node of interbank-sim.",
    )
}

/// The `bank-node` binary: reads flags and environment, serves on the real clock until SIGINT or
/// SIGTERM. The end-to-end suites run this same function as a separate process to kill it.
pub async fn serve_from_args() -> anyhow::Result<()> {
    shared::node::serve_from_args(
        command(),
        "ibsim-bank",
        |config: Config, clock| async move { build(&config, clock).await },
    )
    .await
}
