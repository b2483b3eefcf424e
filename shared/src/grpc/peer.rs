//! A node's channel to its peer: lazily connecting, every call carrying the trace context on,
//! over mutual TLS and signed when security is on.

use super::*;

/// How long a call to the peer institution may take before its outcome counts as unknown.
pub const PEER_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// How long connecting to the peer may take.
pub const PEER_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Concurrent requests served on one connection at most.
pub const CONCURRENCY_PER_CONNECTION_MAX: usize = 256;
/// How long a request may take on our server before it is cut off.
pub const REQUEST_TIMEOUT_SECS: u64 = 30;

/// How a node reaches its peer: as whom, over which TLS, signing with which keys, stamping
/// with which clock.
#[derive(Clone)]
pub struct PeerLink {
    /// The peer institution.
    pub peer: Institution,
    /// This node's security.
    pub security: Security,
    /// This node's business clock (request timestamps).
    pub clock: crate::clock::Clock,
    /// This node's ErrorInfo domain (an answer it refuses).
    pub domain: &'static str,
}

/// A lazily connecting channel to the peer node: the nodes may start in any order. Every call
/// on it carries the current trace context (`traceparent`); with security on, it goes over
/// mutual TLS (an `http://` URL is taken as `https://`) and each interbank call is signed and
/// its answer checked.
pub fn peer_channel(url: &str, timeout_ms: u64, link: &PeerLink) -> anyhow::Result<PeerChannel> {
    let url = match (&link.security.tls, url.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => url.to_owned(),
    };
    let mut ep = Endpoint::from_shared(url.clone())
        .map_err(|e| anyhow::anyhow!("peer address {url:?} is not a URL: {e}"))?
        .connect_timeout(Duration::from_millis(PEER_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(timeout_ms));
    if let Some(files) = &link.security.tls {
        ep = ep
            .tls_config(guard::peer_tls(files, link.peer))
            .context("the peer's TLS configuration")?;
    }
    Ok(guard::Signed::new(
        traced(ep.connect_lazy()),
        link.security.signing.clone(),
        link.clock.clone(),
        link.domain,
    ))
}

/// A node's channel to its peer: traced, and signed when signing is on.
pub type PeerChannel = guard::Signed<TracedChannel>;

/// A channel whose every call carries the current trace context on as `traceparent` (a new
/// trace when the caller runs in none).
pub type TracedChannel =
    InterceptedService<Channel, fn(Request<()>) -> Result<Request<()>, Status>>;

/// `channel`, carrying the trace context on every call.
pub fn traced(channel: Channel) -> TracedChannel {
    InterceptedService::new(channel, inject_trace as fn(_) -> _)
}

pub(super) fn inject_trace(mut req: Request<()>) -> Result<Request<()>, Status> {
    let next = TraceParent::current()
        .map(|t| match exported_span_id() {
            // Exporting spans: the callee's span hangs under the caller's current one.
            Some(id) => t.with_span_id(id),
            None => t.child(),
        })
        .unwrap_or_else(TraceParent::root);
    if let Ok(v) = next.to_string().parse() {
        req.metadata_mut().insert(trace::HEADER, v);
    }
    Ok(req)
}
