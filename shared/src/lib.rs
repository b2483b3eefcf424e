//! What both nodes' edges and stores share: secrets hashing (`secret`), the file store (`files`,
//! over the `formats` crate), fault rules (`fault`), the live feed (`feed`), the record views
//! (`records`), metrics, telemetry and the W3C trace context (`trace`), and the plumbing around
//! gRPC (`grpc`) and the database (`store`). The domain types, money, the clock and the refusal
//! model live in the `domain` crate and are re-exported here under their old paths.
//!
//! Invariant: only `grpc` sees tonic and generated types; only `store` sees sqlx.

pub mod fault;
pub mod feed;
pub mod files;
pub mod flags;
pub mod grpc;
pub mod keyring;
pub mod metrics;
pub mod node;
pub mod records;
pub mod schedule;
pub mod secret;
pub mod security;
pub mod seed;
pub mod store;
pub mod telemetry;
pub mod trace;

pub use ::domain::{clock, error, money};
pub use error::{
    BankReason, ErrorClass, FieldError, ParseField, PeerFailure, PeerRefusal, Refusal,
};
pub use money::Money;

/// The domain types (the `domain` crate): `shared::domain::CardNumber` and the rest.
pub mod domain {
    pub use ::domain::*;
}
