//! The server side of the trace context: each request runs in an `rpc` span carrying its trace
//! id and path, with OTLP export linking the callee's span under the caller's.

use super::*;

/// The server side of [`crate::trace`]: each request runs in an `rpc` span carrying its trace
/// id (the caller's, or a new one) and path, with the context task-local. The outermost layer,
/// it also sees every answer last: tonic's refusal of a message over the size limit gets its
/// reason here ([`explain_size_refusal`]).
#[derive(Clone, Copy, Debug)]
pub struct TraceLayer {
    domain: &'static str,
}

impl TraceLayer {
    /// The layer of the node whose ErrorInfo domain is `domain`.
    pub fn new(domain: &'static str) -> TraceLayer {
        TraceLayer { domain }
    }
}

impl<S> tower::Layer<S> for TraceLayer {
    type Service = TracedService<S>;
    fn layer(&self, inner: S) -> TracedService<S> {
        TracedService {
            inner,
            domain: self.domain,
        }
    }
}

/// A service wrapped by [`TraceLayer`].
#[derive(Clone, Debug)]
pub struct TracedService<S> {
    inner: S,
    domain: &'static str,
}

impl<S, B, RB> tower::Service<http::Request<B>> for TracedService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
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
        let domain = self.domain;
        let work = self.inner.call(req);
        Box::pin(context.scope(async move {
            // Made inside the context, so that an exported root span takes its trace id.
            let span = tracing::info_span!("rpc", trace_id = %context.trace_id(), path = %path);
            if let Some(caller) = caller {
                link_exported_parent(&span, &caller);
            }
            let mut answer = work.instrument(span).await?;
            explain_size_refusal(answer.headers_mut(), domain);
            Ok(answer)
        }))
    }
}

/// With OTLP export on, the id of the span now current, to send on as the callee's parent.
pub(super) fn exported_span_id() -> Option<[u8; 8]> {
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
pub(super) fn link_exported_parent(span: &tracing::Span, caller: &TraceParent) {
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
