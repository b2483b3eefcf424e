//! What both nodes share: the domain types every boundary parses into (`domain`), exact money
//! (`money`), the business clock (`clock`), secrets hashing (`secret`), the refusal model
//! (`error`), the interbank file formats (`files`), telemetry and the W3C trace context (`trace`), and the plumbing around gRPC (`grpc`) and the database (`store`).
//!
//! Invariant: only `grpc` sees tonic and generated types; only `store` sees sqlx.

pub mod clock;
pub mod domain;
pub mod error;
pub mod fault;
pub mod feed;
pub mod files;
pub mod grpc;
pub mod metrics;
pub mod money;
pub mod records;
pub mod secret;
pub mod security;
pub mod seed;
pub mod store;
pub mod telemetry;
pub mod trace;

pub use error::{ErrorClass, FieldError, ParseField, PeerFailure, PeerRefusal, Refusal};
pub use money::Money;
