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
use std::pin::Pin;
use std::sync::Arc;

use proto::platform::v1::account_service_server::AccountServiceServer;
use proto::platform::v1::pay_service_server::PayServiceServer;
use proto::platform::v1::platform_link_service_server::PlatformLinkServiceServer;
use proto::platform::v1::platform_ops_service_server::PlatformOpsServiceServer;
use proto::platform::v1::recon_ops_service_server::ReconOpsServiceServer;
use proto::platform::v1::refund_ops_service_server::RefundOpsServiceServer;
use proto::sim::v1::simulator_service_server::SimulatorServiceServer;
use shared::clock::Clock;
use shared::fault::Faults;
use shared::grpc::NodeRouter;
use shared::grpc::guard::{GuardLayer, GuardNode};
use shared::grpc::sim::{SimNode, Simulator};
use shared::security::sign::SignatureRefusal;
use shared::security::{Institution, Security};
use tonic::{Response, Status};

pub use bank_client::BankClient;
pub use bank_files::{BankFilesClient, FILE_TRANSFER_TIMEOUT_SECS};
pub use bank_recon::BankReconClient;

use crate::domain::{DOMAIN, Platform, PlatformError};

/// The platform's router: website, pay, ops, refund, reconciliation and link services and the simulator controls,
/// plus health and reflection.
pub async fn router(platform: Platform, security: &Security) -> anyhow::Result<NodeRouter> {
    let guard = GuardLayer::new(
        Institution::Platform,
        DOMAIN,
        security,
        platform.clock().clone(),
        Arc::new(platform.clone()),
    );
    let (mut server, feed) = shared::grpc::node_server(
        guard,
        shared::grpc::sim::SimNode::faults(&platform),
        security.tls.as_ref(),
    )?;
    let router = server
        .add_service(feed)
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
    shared::grpc::with_health_and_reflection(
        router,
        &shared::grpc::services::served_by(Institution::Platform),
    )
    .await
}

impl shared::grpc::Audit for Platform {
    async fn audit(&self, operation: &str, subject: &str, outcome: &str, detail: &str) {
        Platform::audit(self, operation, subject, outcome, detail).await;
    }

    fn metrics(&self) -> &shared::metrics::Metrics {
        Platform::metrics(self)
    }
}

/// The platform keeps no business days of its own: its orders carry the bank's business date,
/// and its T+1 work reconciles against the bank's closed days. The cutover closes nothing here.
impl GuardNode for Platform {
    fn remember_nonce<'a>(
        &'a self,
        signer: &'a str,
        nonce: &'a str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<bool>> + Send + 'a>> {
        Box::pin(Platform::remember_nonce(
            self,
            signer,
            nonce,
            at_ms,
            forget_before_ms,
        ))
    }

    fn refused<'a>(
        &'a self,
        operation: &'a str,
        refusal: &'a SignatureRefusal,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(shared::grpc::refused_at_edge(self, operation, refusal))
    }
}

impl SimNode for Platform {
    fn domain(&self) -> &'static str {
        DOMAIN
    }
    fn clock(&self) -> &Clock {
        Platform::clock(self)
    }
    fn faults(&self) -> &Faults {
        Platform::faults(self)
    }
    async fn keep_clock(&self) -> anyhow::Result<()> {
        Ok(Platform::keep_clock(self).await?)
    }
    async fn cutover(&self) -> anyhow::Result<Vec<chrono::NaiveDate>> {
        Ok(Vec::new())
    }
    async fn last_closed_date(&self) -> anyhow::Result<Option<chrono::NaiveDate>> {
        Ok(None)
    }
    async fn closed_days(
        &self,
        _from: chrono::NaiveDate,
        _to: chrono::NaiveDate,
    ) -> anyhow::Result<Vec<chrono::NaiveDate>> {
        Ok(Vec::new())
    }
    async fn wipe(&self) -> anyhow::Result<()> {
        Ok(Platform::wipe(self).await?)
    }
    async fn audit_lines(
        &self,
        subject: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<shared::store::AuditLine>> {
        Ok(Platform::audit_lines(self, subject, limit).await?)
    }
    async fn records(&self, limit: u32) -> anyhow::Result<Vec<shared::records::Table>> {
        Platform::records(self, limit).await
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
    shared::grpc::handle(platform, DOMAIN, operation, subject, work).await
}

/// The first 64 characters of an untrusted string, control characters escaped, for an audit
/// subject.
fn cut(s: &str) -> String {
    shared::domain::shown(s, 64)
}
