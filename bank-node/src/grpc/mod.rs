//! The bank's gRPC edge: the only place that sees generated types and tonic. Requests are parsed
//! into domain types here (`parse`), domain results turned into messages (`convert`), refusals into
//! statuses (through `shared::grpc::status`, the one mapping), and every request gets an audit line.

mod branch;
mod convert;
mod link;
mod outbox;
mod platform_client;
mod recon;
mod refund;

use std::future::Future;

use proto::bank::v1::bank_link_service_server::BankLinkServiceServer;
use proto::bank::v1::bank_recon_service_server::BankReconServiceServer;
use proto::bank::v1::bank_refund_service_server::BankRefundServiceServer;
use proto::bank::v1::branch_service_server::BranchServiceServer;
use proto::sim::v1::batch_job_service_server::BatchJobServiceServer;
use proto::sim::v1::simulator_service_server::SimulatorServiceServer;
use proto::sim::v1::sms_outbox_service_server::SmsOutboxServiceServer;
use shared::grpc::sim::{SimNode, Simulator};
use shared::grpc::transport::TransportArgs;
use shared::grpc::{NodeRouter, cut};
use shared::security::{Institution, Security};
use tonic::{Response, Status};

pub use platform_client::PlatformClient;

use crate::domain::{Bank, BankError};

/// The bank's router: branch, link, refund and reconciliation services, the simulator controls, the SMS outbox
/// and the batch job trigger, plus health and reflection.
pub async fn router(
    bank: Bank,
    security: &Security,
    transport: &TransportArgs,
) -> anyhow::Result<NodeRouter> {
    let router = shared::grpc::node_server(&bank, security, transport)?
        .add_service(BranchServiceServer::new(branch::Branch(bank.clone())))
        .add_service(BankLinkServiceServer::new(link::Link(bank.clone())))
        .add_service(SimulatorServiceServer::new(Simulator(bank.clone())))
        .add_service(BankRefundServiceServer::new(refund::Refunds(bank.clone())))
        .add_service(BatchJobServiceServer::new(refund::Jobs(bank.clone())))
        .add_service(BankReconServiceServer::new(recon::Recon(bank.clone())))
        .add_service(SmsOutboxServiceServer::new(outbox::Outbox(bank)));
    shared::grpc::with_health_and_reflection(router, Institution::Bank).await
}

impl SimNode for Bank {
    async fn cutover(&self) -> anyhow::Result<Vec<chrono::NaiveDate>> {
        Ok(Bank::cutover(self).await?)
    }
    async fn last_closed_date(&self) -> anyhow::Result<Option<chrono::NaiveDate>> {
        Ok(self.last_closed_day().await?)
    }
    async fn closed_days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> anyhow::Result<Vec<chrono::NaiveDate>> {
        Ok(Bank::closed_days(self, from, to).await?)
    }
    async fn wipe(&self) -> anyhow::Result<()> {
        Ok(Bank::wipe(self).await?)
    }
    async fn seed_paid_orders(
        &self,
        seed: &shared::seed::PaidOrderSeed,
    ) -> Result<(), shared::seed::SeedError> {
        Bank::seed_paid_orders(self, seed).await
    }
}

/// Runs one request through the shared edge handling, as the bank.
async fn handle<T>(
    bank: &Bank,
    operation: &str,
    subject: &str,
    work: impl Future<Output = Result<T, BankError>>,
) -> Result<Response<T>, Status> {
    shared::grpc::handle(bank, operation, subject, work).await
}
