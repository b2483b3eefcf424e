//! gRPC plumbing both nodes use: the one mapping from refusals to `tonic::Status` (with a
//! `google.rpc.ErrorInfo` carrying the reason), reading a peer's refusal back, and serving with
//! health and reflection; carrying the W3C trace context across every hop (`TraceLayer` on the
//! server, `traced` channels on the client); carrying out injected faults (`with_faults`); and
//! the simulator controls both nodes serve (`sim`).

pub mod feed;
pub mod guard;
pub mod reflection;
pub mod services;
pub mod sim;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
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
use crate::security::{Institution, Security, TlsFiles};
use crate::trace::{self, TraceParent};

/// The ErrorInfo domain of statuses made up by a fault rule.
pub const FAULT_DOMAIN: &str = "fault.interbank-sim";

/// Runs one interbank call through the node's fault rules: `send` is the call itself (on the
/// caller side) or its processing (on the callee side), and may run twice (deliver twice) or
/// not at all (fail, lose the write: answered with an empty reply).
pub async fn with_faults<M, F, Fut>(
    faults: &Faults,
    side: Side,
    call: Call<'_>,
    send: F,
) -> Result<Response<M>, Status>
where
    M: Default,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Response<M>, Status>>,
{
    let Some((rule, action)) = faults.fire(side, &call) else {
        return send().await;
    };
    match action {
        Action::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            send().await
        }
        Action::Fail {
            code,
            reason,
            message,
        } => Err(fault_status(code, reason, message)),
        Action::DropReply => {
            let _ = send().await;
            Err(reply_dropped(rule, call.method))
        }
        Action::DeliverTwice => {
            let _ = send().await;
            send().await
        }
        Action::LoseWrite => {
            tracing::warn!(rule = %rule, method = call.method, "write lost: answered yes without processing");
            Ok(Response::new(M::default()))
        }
    }
}

/// Like [`with_faults`] for a call that can run only once (a streamed file, read as it arrives):
/// `fail` answers without running it, `delay` waits first, `drop_reply` runs it and loses the
/// answer, and `deliver_twice` runs it once (the calls this serves answer a repeat with the first
/// result anyway).
pub async fn with_faults_once<T>(
    faults: &Faults,
    side: Side,
    call: Call<'_>,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let Some((rule, action)) = faults.fire(side, &call) else {
        return work.await;
    };
    match action {
        Action::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
            work.await
        }
        Action::Fail {
            code,
            reason,
            message,
        } => Err(fault_status(code, reason, message)),
        Action::DropReply => {
            let _ = work.await;
            Err(reply_dropped(rule, call.method))
        }
        Action::DeliverTwice => work.await,
        Action::LoseWrite => Err(Status::unavailable(format!(
            "{} lost (fault rule {rule}: a streamed call cannot be answered empty)",
            call.method
        ))),
    }
}

fn fault_status(code: i32, reason: String, message: String) -> Status {
    Status::with_error_details(
        Code::from_i32(code),
        message,
        ErrorDetails::with_error_info(reason, FAULT_DOMAIN, HashMap::new()),
    )
}

fn reply_dropped(rule: impl std::fmt::Display, method: &str) -> Status {
    Status::unavailable(format!(
        "the reply to {method} was lost (fault rule {rule} dropped it after the call was processed)"
    ))
}

/// The gRPC code names, by code number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code an upper-snake name (`INVALID_ARGUMENT`, any case) or number names.
pub fn code_from_name(s: &str) -> Option<Code> {
    if let Ok(n) = s.parse::<i32>() {
        return (0..17).contains(&n).then(|| Code::from_i32(n));
    }
    CODE_NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| Code::from_i32(i as i32))
}

/// A code's upper-snake name.
pub fn code_name(c: Code) -> &'static str {
    CODE_NAMES.get(c as usize).copied().unwrap_or("UNKNOWN")
}

/// The gRPC code for each class; the only place this mapping lives.
pub fn code_of(class: ErrorClass) -> Code {
    match class {
        ErrorClass::InvalidArgument => Code::InvalidArgument,
        ErrorClass::NotFound => Code::NotFound,
        ErrorClass::FailedPrecondition => Code::FailedPrecondition,
        ErrorClass::PermissionDenied => Code::PermissionDenied,
        ErrorClass::Unauthenticated => Code::Unauthenticated,
        ErrorClass::AlreadyExists => Code::AlreadyExists,
        ErrorClass::Aborted => Code::Aborted,
        ErrorClass::ResourceExhausted => Code::ResourceExhausted,
        ErrorClass::Unavailable => Code::Unavailable,
        ErrorClass::DataLoss => Code::DataLoss,
        ErrorClass::Internal => Code::Internal,
    }
}

/// The class of a status a peer answered with; `None` for codes that leave the outcome unknown
/// (the peer did not say yes or no: UNAVAILABLE, DEADLINE_EXCEEDED, UNKNOWN, INTERNAL, …).
pub fn class_of(code: Code) -> Option<ErrorClass> {
    Some(match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorClass::InvalidArgument,
        Code::NotFound => ErrorClass::NotFound,
        Code::FailedPrecondition => ErrorClass::FailedPrecondition,
        Code::PermissionDenied => ErrorClass::PermissionDenied,
        Code::Unauthenticated => ErrorClass::Unauthenticated,
        Code::AlreadyExists => ErrorClass::AlreadyExists,
        Code::Aborted => ErrorClass::Aborted,
        Code::ResourceExhausted => ErrorClass::ResourceExhausted,
        _ => return None,
    })
}

/// A refusal as a status: code by class, message, and an ErrorInfo with the reason, the domain of
/// the institution that refused, the field at fault (`metadata.field`) and, for a file, the line
/// at fault (`metadata.line`).
pub fn status(domain: &str, refusal: &dyn Refusal) -> Status {
    let mut metadata = HashMap::new();
    if let Some(field) = refusal.field() {
        metadata.insert("field".to_owned(), field.to_owned());
    }
    if let Some(line) = refusal.line() {
        metadata.insert("line".to_owned(), line.to_string());
    }
    Status::with_error_details(
        code_of(refusal.class()),
        refusal.to_string(),
        ErrorDetails::with_error_info(
            refusal.reason(),
            refusal.origin().unwrap_or(domain),
            metadata,
        ),
    )
}

/// Reads a status a peer answered with.
pub fn peer_failure(s: &Status, peer_domain: &str) -> PeerFailure {
    match class_of(s.code()) {
        None => PeerFailure::NoAnswer(format!("{:?}: {}", s.code(), s.message())),
        Some(class) => {
            let info = s.get_details_error_info();
            PeerFailure::Refused(PeerRefusal {
                class,
                reason: info
                    .as_ref()
                    .map(|i| i.reason.clone())
                    .unwrap_or_else(|| "UNSPECIFIED".to_owned()),
                domain: info
                    .map(|i| i.domain)
                    .unwrap_or_else(|| peer_domain.to_owned()),
                message: s.message().to_owned(),
            })
        }
    }
}

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

fn inject_trace(mut req: Request<()>) -> Result<Request<()>, Status> {
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

/// The server side of [`crate::trace`]: each request runs in an `rpc` span carrying its trace
/// id (the caller's, or a new one) and path, with the context task-local.
#[derive(Clone, Copy, Debug, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TracedService<S>;
    fn layer(&self, inner: S) -> TracedService<S> {
        TracedService { inner }
    }
}

/// A service wrapped by [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct TracedService<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TracedService<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send + 'static>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let caller = req
            .headers()
            .get(trace::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceParent::parse);
        let context = caller.map(|t| t.child()).unwrap_or_else(TraceParent::root);
        let path = req.uri().path().to_owned();
        let work = self.inner.call(req);
        Box::pin(context.scope(async move {
            // Made inside the context, so that an exported root span takes its trace id.
            let span = tracing::info_span!("rpc", trace_id = %context.trace_id(), path = %path);
            if let Some(caller) = caller {
                link_exported_parent(&span, &caller);
            }
            work.instrument(span).await
        }))
    }
}

/// With OTLP export on, the id of the span now current, to send on as the callee's parent.
fn exported_span_id() -> Option<[u8; 8]> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !crate::telemetry::otlp_enabled() {
        return None;
    }
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.span_id().to_bytes())
}

/// With OTLP export on, makes the caller's span the exported parent of `span`.
fn link_exported_parent(span: &tracing::Span, caller: &TraceParent) {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !crate::telemetry::otlp_enabled() {
        return;
    }
    let remote = SpanContext::new(
        TraceId::from_bytes(caller.trace_id_bytes()),
        SpanId::from_bytes(caller.span_id_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

/// The layers every node's server has: the trace layer, the live feed, then the guard.
pub type NodeLayers = Stack<guard::GuardLayer, Stack<feed::FeedLayer, Stack<TraceLayer, Identity>>>;

/// A node's router, with its layers.
pub type NodeRouter = Router<NodeLayers>;

/// A server builder with our limits, the trace layer, the live feed and `guard`; over TLS when
/// `tls` is given.
pub fn server(
    guard: guard::GuardLayer,
    feed: feed::FeedLayer,
    tls: Option<&TlsFiles>,
) -> anyhow::Result<Server<NodeLayers>> {
    let mut builder = Server::builder();
    if let Some(files) = tls {
        builder = builder
            .tls_config(guard::server_tls(files))
            .context("the server's TLS configuration")?;
    }
    Ok(builder
        .timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS))
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION_MAX)
        .layer(TraceLayer)
        .layer(feed)
        .layer(guard))
}

/// A node's server ([`server`] feeding the live feed of `faults`' node) and its feed's Watch
/// service, to add to the router.
pub fn node_server(
    guard: guard::GuardLayer,
    faults: &Faults,
    tls: Option<&TlsFiles>,
) -> anyhow::Result<(
    Server<NodeLayers>,
    proto::sim::v1::feed_service_server::FeedServiceServer<feed::Watch>,
)> {
    let f = faults
        .feed()
        .cloned()
        .context("a node's fault rules carry its live feed")?;
    Ok((
        server(guard, feed::FeedLayer::new(f.clone()), tls)?,
        proto::sim::v1::feed_service_server::FeedServiceServer::new(feed::Watch(f)),
    ))
}

/// Adds health (every named service reported SERVING) and reflection listing the named services
/// (see [`reflection`]).
pub async fn with_health_and_reflection(
    router: NodeRouter,
    service_names: &[&str],
) -> anyhow::Result<NodeRouter> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    for name in service_names {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = reflection::Reflection::new(
        &[
            proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ],
        service_names,
    )?;
    Ok(router
        .add_service(health)
        .add_service(reflection.v1())
        .add_service(reflection.v1alpha()))
}

/// Binds a node's listen address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// A node's gRPC server: bound and wired, not yet serving.
pub struct BoundServer {
    listener: TcpListener,
    addr: SocketAddr,
    router: NodeRouter,
}

impl BoundServer {
    /// The server `router` will run on `listener`.
    pub fn new(listener: TcpListener, router: NodeRouter) -> anyhow::Result<BoundServer> {
        Ok(BoundServer {
            addr: listener.local_addr()?,
            listener,
            router,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self,
        node: &str,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.addr, "{node} node serving");
        self.router
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), shutdown)
            .await?;
        tracing::info!("{node} node stopped");
        Ok(())
    }
}

/// An ID type from the wire; unset or unknown is ID_TYPE_UNKNOWN.
pub fn id_type_from_pb(v: i32) -> Result<IdType, FieldError> {
    use proto::common::v1::IdType as Pb;
    match Pb::try_from(v) {
        Ok(Pb::ResidentId) => Ok(IdType::ResidentId),
        Ok(Pb::Passport) => Ok(IdType::Passport),
        Ok(Pb::HkMacaoPermit) => Ok(IdType::HkMacaoPermit),
        Ok(Pb::TaiwanPermit) => Ok(IdType::TaiwanPermit),
        _ => Err(FieldError::new(
            "id_type",
            "ID_TYPE_UNKNOWN",
            "id_type must be RESIDENT_ID, PASSPORT, HK_MACAO_PERMIT or TAIWAN_PERMIT",
        )),
    }
}

/// A business date from the wire, `YYYY-MM-DD` (DATE_INVALID otherwise).
pub fn date_from_pb(field: &'static str, s: &str) -> Result<chrono::NaiveDate, FieldError> {
    let ok = s.len() == 10;
    ok.then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            FieldError::new(
                field,
                "DATE_INVALID",
                format!(
                    "a business date is YYYY-MM-DD, got {:?}",
                    s.chars().take(20).collect::<String>()
                ),
            )
        })
}

/// An ID type for the wire.
pub fn id_type_to_pb(t: IdType) -> proto::common::v1::IdType {
    use proto::common::v1::IdType as Pb;
    match t {
        IdType::ResidentId => Pb::ResidentId,
        IdType::Passport => Pb::Passport,
        IdType::HkMacaoPermit => Pb::HkMacaoPermit,
        IdType::TaiwanPermit => Pb::TaiwanPermit,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A timestamp for the wire.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A server-streaming reply of file chunks.
pub type FileStream<M> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<M, Status>> + Send>>;

/// Streams a stored file as messages of at most 64 KiB (`wrap` makes a chunk a message), a few
/// chunks in memory at a time; a read error is logged and ends the stream with INTERNAL.
pub fn file_stream<M: Send + 'static>(
    path: &std::path::Path,
    wrap: fn(Vec<u8>) -> M,
) -> FileStream<M> {
    use tokio_stream::StreamExt;
    let chunks = tokio_stream::wrappers::ReceiverStream::new(crate::files::read_chunks(path)).map(
        move |c| {
            c.map(wrap).map_err(|e| {
                tracing::error!(error = %e, "cannot read a stored file");
                Status::internal("internal error")
            })
        },
    );
    Box::pin(chunks)
}

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
