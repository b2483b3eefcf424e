//! W3C trace context across the gRPC hop, so that one payment can be followed through both
//! nodes' logs.
//!
//! Every request a node serves runs in a span `rpc` with `trace_id` and `path`: the trace id of
//! the caller's `traceparent` header when it sent a valid one (a tester's client, the other
//! node), a new one otherwise. The context is kept task-local while the request is handled, and
//! every call to the other node carries it on as `traceparent` with a fresh parent id, so the
//! callee's `rpc` span has the same `trace_id`. Work a request hands to a task of its own keeps the
//! context ([`inherit`]).

use std::fmt;
use std::future::Future;

/// The W3C `traceparent` header name.
pub const HEADER: &str = "traceparent";

/// A trace context: `00-<trace id, 32 hex>-<parent id, 16 hex>-<flags, 2 hex>`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

tokio::task_local! {
    static CURRENT: TraceParent;
}

impl TraceParent {
    /// A new trace (random ids, sampled).
    pub fn root() -> TraceParent {
        TraceParent {
            trace_id: nonzero(rand::random()),
            span_id: nonzero(rand::random()),
            flags: 1,
        }
    }

    /// The same trace with a new parent id: what a hop sends on.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            span_id: nonzero(rand::random()),
            ..*self
        }
    }

    /// Parses a `traceparent` header (version 00; ids in lower-case hex, not all zero).
    pub fn parse(s: &str) -> Option<TraceParent> {
        let mut parts = s.split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let lower_hex = |p: &str, n: usize| {
            p.len() == n && p.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        if !lower_hex(trace, 32) || !lower_hex(span, 16) || !lower_hex(flags, 2) {
            return None;
        }
        let mut t = TraceParent {
            trace_id: [0; 16],
            span_id: [0; 8],
            flags: 0,
        };
        hex::decode_to_slice(trace, &mut t.trace_id).ok()?;
        hex::decode_to_slice(span, &mut t.span_id).ok()?;
        let mut f = [0u8; 1];
        hex::decode_to_slice(flags, &mut f).ok()?;
        t.flags = f[0];
        let zero = t.trace_id == [0; 16] || t.span_id == [0; 8];
        (!zero).then_some(t)
    }

    /// The trace id, 32 hex digits.
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    /// The trace id's bytes.
    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The parent id's bytes.
    pub fn span_id_bytes(&self) -> [u8; 8] {
        self.span_id
    }

    /// The same trace with the parent id `span_id` (an exported span's id); all zero keeps this
    /// one's.
    pub fn with_span_id(&self, span_id: [u8; 8]) -> TraceParent {
        if span_id == [0; 8] {
            return *self;
        }
        TraceParent { span_id, ..*self }
    }

    /// The context the current request runs in, if any.
    pub fn current() -> Option<TraceParent> {
        CURRENT.try_with(|t| *t).ok()
    }

    /// Runs `f` in this context.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }
}

impl fmt::Display for TraceParent {
    /// The header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.span_id),
            self.flags
        )
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn nonzero<const N: usize>(mut b: [u8; N]) -> [u8; N] {
    if b.iter().all(|x| *x == 0) {
        b[N - 1] = 1;
    }
    b
}

/// `f`, carrying the current trace context (if any) into a task of its own.
pub fn inherit<F: Future>(f: F) -> impl Future<Output = F::Output> {
    let current = TraceParent::current();
    async move {
        match current {
            Some(t) => t.scope(f).await,
            None => f.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_print_back() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceParent::parse(h).unwrap();
        assert_eq!(t.to_string(), h);
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let c = t.child();
        assert_eq!(c.trace_id(), t.trace_id());
        assert_ne!(c.to_string(), h);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        assert!(TraceParent::parse(&TraceParent::root().to_string()).is_some());
    }

    #[tokio::test]
    async fn the_context_is_task_local_and_inherited_on_request() {
        assert_eq!(TraceParent::current(), None);
        let t = TraceParent::root();
        let seen = t
            .scope(async {
                let inner = tokio::spawn(inherit(async { TraceParent::current() }));
                let lost = tokio::spawn(async { TraceParent::current() });
                (
                    TraceParent::current(),
                    inner.await.unwrap(),
                    lost.await.unwrap(),
                )
            })
            .await;
        assert_eq!(seen, (Some(t), Some(t), None));
    }
}
