//! The platform's gRPC edge: the only place that sees generated types and tonic.

mod account;
mod bank_client;
mod bank_files;
mod bank_recon;
mod convert;
mod link;
mod ops;
mod pay;
mod recon;
mod refund;

use std::future::Future;

use proto::platform::v1::account_service_server::AccountServiceServer;
use proto::platform::v1::pay_service_server::PayServiceServer;
use proto::platform::v1::platform_link_service_server::PlatformLinkServiceServer;
use proto::platform::v1::platform_ops_service_server::PlatformOpsServiceServer;
use proto::platform::v1::recon_ops_service_server::ReconOpsServiceServer;
use proto::platform::v1::refund_ops_service_server::RefundOpsServiceServer;
use proto::sim::v1::simulator_service_server::SimulatorServiceServer;
use shared::grpc::sim::{SimNode, Simulator};
use shared::grpc::transport::TransportArgs;
use shared::grpc::{NodeRouter, cut};
use shared::security::{Institution, Security};
use tonic::{Response, Status};

pub use bank_client::BankClient;
pub use bank_files::{BankFilesClient, FILE_TRANSFER_TIMEOUT_SECS};
pub use bank_recon::BankReconClient;

use crate::domain::{Platform, PlatformError};

/// The platform's router: website, pay, ops, refund, reconciliation and link services and the simulator controls,
/// plus health and reflection.
pub async fn router(
    platform: Platform,
    security: &Security,
    transport: &TransportArgs,
) -> anyhow::Result<NodeRouter> {
    let router = shared::grpc::node_server(&platform, security, transport)?
        .add_service(AccountServiceServer::new(account::Website(
            platform.clone(),
        )))
        .add_service(PayServiceServer::new(pay::Pay(platform.clone())))
        .add_service(PlatformOpsServiceServer::new(ops::Ops(platform.clone())))
        .add_service(RefundOpsServiceServer::new(refund::Refunds(
            platform.clone(),
        )))
        .add_service(ReconOpsServiceServer::new(recon::Recon(platform.clone())))
        .add_service(SimulatorServiceServer::new(Simulator(platform.clone())))
        .add_service(PlatformLinkServiceServer::new(link::Link(platform)));
    shared::grpc::with_health_and_reflection(router, Institution::Platform).await
}

/// The platform keeps no business days of its own: its orders carry the bank's business date,
/// and its T+1 work reconciles against the bank's closed days. The cutover closes nothing here.
impl SimNode for Platform {
    async fn wipe(&self) -> anyhow::Result<()> {
        Ok(Platform::wipe(self).await?)
    }
    async fn seed_paid_orders(
        &self,
        seed: &shared::seed::PaidOrderSeed,
    ) -> Result<(), shared::seed::SeedError> {
        Platform::seed_paid_orders(self, seed).await
    }
}

/// Runs one request through the shared edge handling, as the platform.
async fn handle<T>(
    platform: &Platform,
    operation: &str,
    subject: &str,
    work: impl Future<Output = Result<T, PlatformError>>,
) -> Result<Response<T>, Status> {
    shared::grpc::handle(platform, operation, subject, work).await
}
