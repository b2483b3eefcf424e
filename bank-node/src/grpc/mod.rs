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
use std::pin::Pin;
use std::sync::Arc;

use proto::bank::v1::bank_link_service_server::BankLinkServiceServer;
use proto::bank::v1::bank_recon_service_server::BankReconServiceServer;
use proto::bank::v1::bank_refund_service_server::BankRefundServiceServer;
use proto::bank::v1::branch_service_server::BranchServiceServer;
use proto::sim::v1::batch_job_service_server::BatchJobServiceServer;
use proto::sim::v1::simulator_service_server::SimulatorServiceServer;
use proto::sim::v1::sms_outbox_service_server::SmsOutboxServiceServer;
use shared::clock::Clock;
use shared::fault::Faults;
use shared::grpc::NodeRouter;
use shared::grpc::guard::{GuardLayer, GuardNode};
use shared::grpc::sim::{SimNode, Simulator};
use shared::security::sign::SignatureRefusal;
use shared::security::{Institution, Security};
use tonic::{Response, Status};

pub use platform_client::PlatformClient;

use crate::domain::{Bank, BankError, DOMAIN};

/// The bank's router: branch, link, refund and reconciliation services, the simulator controls, the SMS outbox
/// and the batch job trigger, plus health and reflection.
pub async fn router(bank: Bank, security: &Security) -> anyhow::Result<NodeRouter> {
    let guard = GuardLayer::new(
        Institution::Bank,
        DOMAIN,
        security,
        bank.clock().clone(),
        Arc::new(bank.clone()),
    );
    let (mut server, feed) = shared::grpc::node_server(
        guard,
        shared::grpc::sim::SimNode::faults(&bank),
        security.tls.as_ref(),
    )?;
    let router = server
        .add_service(feed)
        .add_service(BranchServiceServer::new(branch::Branch(bank.clone())))
        .add_service(BankLinkServiceServer::new(link::Link(bank.clone())))
        .add_service(SimulatorServiceServer::new(Simulator(bank.clone())))
        .add_service(BankRefundServiceServer::new(refund::Refunds(bank.clone())))
        .add_service(BatchJobServiceServer::new(refund::Jobs(bank.clone())))
        .add_service(BankReconServiceServer::new(recon::Recon(bank.clone())))
        .add_service(SmsOutboxServiceServer::new(outbox::Outbox(bank)));
    shared::grpc::with_health_and_reflection(
        router,
        &shared::grpc::services::served_by(Institution::Bank),
    )
    .await
}

impl shared::grpc::Audit for Bank {
    async fn audit(&self, operation: &str, subject: &str, outcome: &str, detail: &str) {
        Bank::audit(self, operation, subject, outcome, detail).await;
    }

    fn metrics(&self) -> &shared::metrics::Metrics {
        Bank::metrics(self)
    }
}

impl GuardNode for Bank {
    fn remember_nonce<'a>(
        &'a self,
        signer: &'a str,
        nonce: &'a str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<bool>> + Send + 'a>> {
        Box::pin(
            self.store
                .remember_nonce(signer, nonce, at_ms, forget_before_ms),
        )
    }

    fn refused<'a>(
        &'a self,
        operation: &'a str,
        refusal: &'a SignatureRefusal,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(shared::grpc::refused_at_edge(self, operation, refusal))
    }
}

impl SimNode for Bank {
    fn domain(&self) -> &'static str {
        DOMAIN
    }
    fn clock(&self) -> &Clock {
        &self.clock
    }
    fn faults(&self) -> &Faults {
        &self.faults
    }
    async fn keep_clock(&self) -> anyhow::Result<()> {
        Ok(Bank::keep_clock(self).await?)
    }
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
        Ok(self.closed_days(from, to).await?)
    }
    async fn wipe(&self) -> anyhow::Result<()> {
        Ok(Bank::wipe(self).await?)
    }
    async fn audit_lines(
        &self,
        subject: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<shared::store::AuditLine>> {
        self.store.audit_lines(subject, limit).await
    }
    async fn records(&self, limit: u32) -> anyhow::Result<Vec<shared::records::Table>> {
        self.store.records(limit).await
    }
    async fn seed_paid_orders(
        &self,
        seed: &shared::seed::PaidOrderSeed,
    ) -> Result<(), shared::seed::SeedError> {
        Bank::seed_paid_orders(self, seed).await
    }
}

/// The first 64 characters of an untrusted string, control characters escaped, for an audit
/// subject.
fn cut(s: &str) -> String {
    shared::domain::shown(s, 64)
}

/// Runs one request through the shared edge handling, as the bank.
async fn handle<T>(
    bank: &Bank,
    operation: &str,
    subject: &str,
    work: impl Future<Output = Result<T, BankError>>,
) -> Result<Response<T>, Status> {
    shared::grpc::handle(bank, DOMAIN, operation, subject, work).await
}
