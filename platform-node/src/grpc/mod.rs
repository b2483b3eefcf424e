//! The platform's gRPC edge: the only place that sees generated types and tonic.

mod account;
mod bank_client;
mod convert;
mod link;
mod ops;

use std::future::Future;

use proto::platform::v1::account_service_server::AccountServiceServer;
use proto::platform::v1::platform_link_service_server::PlatformLinkServiceServer;
use proto::platform::v1::platform_ops_service_server::PlatformOpsServiceServer;
use tonic::transport::server::Router;
use tonic::{Response, Status};

pub use bank_client::BankClient;

use crate::domain::{DOMAIN, Platform, PlatformError};

/// Every service name the platform serves, for health.
pub const SERVICE_NAMES: &[&str] = &[
    "interbank.platform.v1.AccountService",
    "interbank.platform.v1.PlatformOpsService",
    "interbank.platform.v1.PlatformLinkService",
];

/// The platform's router: website, ops and link services, plus health and reflection.
pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let router = shared::grpc::server()
        .add_service(AccountServiceServer::new(account::Website(
            platform.clone(),
        )))
        .add_service(PlatformOpsServiceServer::new(ops::Ops(platform.clone())))
        .add_service(PlatformLinkServiceServer::new(link::Link(platform)));
    shared::grpc::with_health_and_reflection(router, SERVICE_NAMES).await
}

impl shared::grpc::Audit for Platform {
    async fn audit(&self, operation: &str, subject: &str, outcome: &str, detail: &str) {
        Platform::audit(self, operation, subject, outcome, detail).await;
    }
}

/// Runs one request through the shared edge handling, as the platform.
async fn handle<T>(
    platform: &Platform,
    operation: &str,
    subject: &str,
    work: impl Future<Output = Result<T, PlatformError>>,
) -> Result<Response<T>, Status> {
    shared::grpc::handle(platform, DOMAIN, operation, subject, work).await
}

/// The first 64 characters of an untrusted string, for an audit subject.
fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}
