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

pub use app::Application;
pub use config::{Config, ReconConfig};
