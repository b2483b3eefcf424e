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
