//! gRPC plumbing both nodes use, one concern a module (each item re-exported here):
//!
//! - `status`: the one mapping from refusals to `tonic::Status` (with a `google.rpc.ErrorInfo`
//!   carrying the reason), and a peer's refusal read back;
//! - `edge`: one request at a node's edge (audit line, internal faults logged, status);
//! - `server`: serving with our limits and layers, health and reflection ([`reflection`]);
//! - `traced` and `peer`: the W3C trace context across every hop (`TraceLayer` on the server,
//!   traced and signed peer channels on the client);
//! - `faults`: injected faults carried out on an interbank call (`with_faults`);
//! - `wire`: small conversions at the wire, and files streamed as chunks;
//! - [`guard`] (TLS, signatures, the replay window), [`feed`] (the live feed), [`services`] (which
//!   node serves and calls which service) and [`sim`] (the simulator controls both nodes serve).

pub mod feed;
pub mod guard;
pub mod reflection;
pub mod services;
pub mod sim;
pub mod transport;

mod edge;
mod faults;
mod masked;
mod peer;
mod server;
mod status;
mod traced;
mod wire;

pub use edge::*;
pub use faults::*;
pub use peer::*;
pub use server::*;
pub use status::*;
pub use traced::*;
pub use wire::*;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_types::{ErrorDetails, StatusExt};
use tower::layer::util::{Identity, Stack};
use tracing::Instrument;

use crate::domain::IdType;
use crate::error::{ErrorClass, FieldError, PeerFailure, PeerRefusal, Refusal};
use crate::fault::{Action, Call, Faults, Side};
use crate::files::FileError;
use crate::security::{Institution, Security, TlsFiles};
use crate::trace::{self, TraceParent};
