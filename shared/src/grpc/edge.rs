//! One request at a node's edge: awaited, its audit line written, an internal fault logged
//! with its cause, a refusal mapped to its status.

use super::*;

/// Where a node writes its audit lines.
pub trait Audit: Sync {
    /// Appends one line: the operation, its subject (never a full card number or a secret), the
    /// outcome (`OK` or the reason code) and a detail.
    fn audit(
        &self,
        operation: &str,
        subject: &str,
        outcome: &str,
        detail: &str,
    ) -> impl Future<Output = ()> + Send;

    /// The node's metrics: `handle` counts every request and its time there.
    fn metrics(&self) -> &crate::metrics::Metrics;
}

/// The audit line and count of a call refused before any service saw it (by the guard).
pub async fn refused_at_edge(node: &impl Audit, operation: &str, refusal: &(dyn Refusal + Sync)) {
    let code = code_name(code_of(refusal.class()));
    node.metrics().inc(
        "ibsim_rpc_requests_total",
        &[
            ("rpc", operation),
            ("code", code),
            ("reason", refusal.reason()),
        ],
    );
    node.audit(
        operation,
        "interbank",
        refusal.reason(),
        &refusal.to_string(),
    )
    .await;
}

/// Runs one request at a node's edge: awaits it, writes its audit line, logs an internal fault
/// with its cause chain (the caller sees only a generic message), and maps a refusal to its status.
pub async fn handle<T, E>(
    node: &impl Audit,
    domain: &str,
    operation: &str,
    subject: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<Response<T>, Status>
where
    E: Refusal + std::fmt::Debug,
{
    let started = std::time::Instant::now();
    let result = work.await;
    let metrics = node.metrics();
    let rpc = [("rpc", operation)];
    metrics.observe("ibsim_rpc_duration_seconds", &rpc, started.elapsed());
    let (code, reason) = match &result {
        Ok(_) => ("OK", ""),
        Err(e) => (code_name(code_of(e.class())), e.reason()),
    };
    metrics.inc(
        "ibsim_rpc_requests_total",
        &[("rpc", operation), ("code", code), ("reason", reason)],
    );
    match &result {
        Ok(_) => node.audit(operation, subject, "OK", "").await,
        Err(e) => {
            if e.class() == ErrorClass::Internal {
                tracing::error!(operation, error = ?e, "internal error");
            } else {
                tracing::info!(operation, reason = e.reason(), "refused");
            }
            node.audit(operation, subject, e.reason(), &e.to_string())
                .await;
        }
    }
    result.map(Response::new).map_err(|e| status(domain, &e))
}
