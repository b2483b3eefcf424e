//! One request at a node's edge: awaited, its audit line written, an internal fault logged
//! with its cause, a refusal mapped to its status.

use super::*;
use crate::node::Node;

/// The first 64 characters of an untrusted string, control characters escaped, for an audit
/// subject.
pub fn cut(s: &str) -> String {
    crate::domain::shown(s, 64)
}

/// The audit line and count of a call refused before any service saw it (by the guard).
pub async fn refused_at_edge(
    node: &impl Node,
    operation: &str,
    subject: &str,
    refusal: &(dyn Refusal + Sync),
) {
    let code = code_name(code_of(refusal.class()));
    node.metrics().inc(
        "ibsim_rpc_requests_total",
        &[
            ("rpc", operation),
            ("code", code),
            ("reason", refusal.reason()),
        ],
    );
    node.audit(operation, subject, refusal.reason(), &refusal.to_string())
        .await;
}

/// Runs one request at a node's edge: awaits it, writes its audit line, logs an internal fault
/// with its cause chain (the caller sees only a generic message), and maps a refusal to its status.
pub async fn handle<N, T, E>(
    node: &N,
    operation: &str,
    subject: &str,
    work: impl Future<Output = Result<T, E>>,
) -> Result<Response<T>, Status>
where
    N: Node,
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
    result.map(Response::new).map_err(|e| status(N::DOMAIN, &e))
}
