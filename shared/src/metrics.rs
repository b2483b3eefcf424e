//! Each node's metrics, in the Prometheus text format, on a port of its own (`--metrics-listen`):
//! requests by RPC, code and reason, latency histograms, and the node's business counters
//! (payments, refund lines, reconciliation adjustments and cases). See docs/observability.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::store::Counts;

/// Histogram bucket bounds, microseconds (1 ms to 10 s).
const BUCKETS_US: [u64; 13] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// Every metric a node exports: name, type, help. Anything else is refused at the call site.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "ibsim_rpc_requests_total",
        "counter",
        "Requests served, by RPC, gRPC code and refusal reason (empty when OK).",
    ),
    (
        "ibsim_rpc_duration_seconds",
        "histogram",
        "Time to serve a request, by RPC.",
    ),
    (
        "ibsim_payments_total",
        "counter",
        "Payments settled: bank debits (SUCCESS) and failures, or platform orders settled, by status and reason.",
    ),
    (
        "ibsim_refund_lines_total",
        "counter",
        "Refund batch lines the bank's job processed.",
    ),
    (
        "ibsim_refund_batches_total",
        "counter",
        "Refund batches the bank's job finished.",
    ),
    (
        "ibsim_recon_adjustments_total",
        "counter",
        "Records real-time reconciliation changed to the bank's, by record kind.",
    ),
    (
        "ibsim_recon_cases_total",
        "counter",
        "Breaks T+1 reconciliation found, by file kind and category (a case still open is found again by a later run of its day).",
    ),
    (
        "ibsim_db_statements_total",
        "counter",
        "SQL statements the node ran, by pool (read, write); a transaction's statements count on its pool.",
    ),
    (
        "ibsim_db_round_trips_total",
        "counter",
        "Hand-offs of work to the database and back, by pool: a statement, or several sent as one script; a transaction's begin, commit or rollback. On SQLite each wakes the connection's thread and then the caller.",
    ),
    (
        "ibsim_db_transactions_total",
        "counter",
        "Database transactions the node began.",
    ),
    (
        "ibsim_db_writer_seconds_total",
        "counter",
        "Time requests waited for a write connection (phase waiting) and held one (phase holding: a write transaction from begin to end, a write statement's run). On SQLite the writer is one connection: holding per elapsed second is how busy it is.",
    ),
    (
        "ibsim_connections_accepted_total",
        "counter",
        "Connections the gRPC server took (within --connections-max).",
    ),
    (
        "ibsim_connections_refused_total",
        "counter",
        "Connections closed as soon as accepted: the node held --connections-max already.",
    ),
];

/// Most distinct label sets one family keeps (labels come from a closed set; this is a guard).
const SERIES_MAX: usize = 4096;

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS_US.len()],
    count: u64,
    sum_us: u64,
}

#[derive(Default)]
struct Inner {
    counters: BTreeMap<(&'static str, String), u64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
    /// The database's own counters, read when the metrics are.
    database: Option<Arc<Counts>>,
}

/// One node's metrics (cheap to clone; clones share the values).
#[derive(Clone)]
pub struct Metrics {
    node: &'static str,
    inner: Arc<Mutex<Inner>>,
}

impl Metrics {
    /// Metrics of the node `node` (`bank` or `platform`), all zero.
    pub fn new(node: &'static str) -> Metrics {
        Metrics {
            node,
            inner: Arc::default(),
        }
    }

    fn labels(&self, labels: &[(&str, &str)]) -> String {
        let mut out = format!("node=\"{}\"", self.node);
        for (k, v) in labels {
            let _ = write!(out, ",{k}=\"{}\"", escape(v));
        }
        out
    }

    fn known(name: &str) -> bool {
        FAMILIES.iter().any(|(n, ..)| *n == name)
    }

    /// Exports what the node's database has run (`ibsim_db_statements_total`,
    /// `ibsim_db_round_trips_total`, `ibsim_db_transactions_total`) from `counts`, which the
    /// database keeps.
    pub fn count_database(&self, counts: Arc<Counts>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .database = Some(counts);
    }

    /// Adds `n` to the counter `name` with `labels`.
    pub fn add(&self, name: &'static str, labels: &[(&str, &str)], n: u64) {
        debug_assert!(Self::known(name), "unknown metric {name}");
        let key = (name, self.labels(labels));
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = inner.counters.get_mut(&key) {
            *v = v.saturating_add(n);
        } else if inner.counters.keys().filter(|(n, _)| *n == name).count() < SERIES_MAX {
            inner.counters.insert(key, n);
        }
    }

    /// Adds one to the counter `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1);
    }

    /// Records one observation of `took` in the histogram `name` with `labels`.
    pub fn observe(&self, name: &'static str, labels: &[(&str, &str)], took: Duration) {
        debug_assert!(Self::known(name), "unknown metric {name}");
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let key = (name, self.labels(labels));
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.histograms.contains_key(&key)
            && inner.histograms.keys().filter(|(n, _)| *n == name).count() >= SERIES_MAX
        {
            return;
        }
        let h = inner.histograms.entry(key).or_default();
        for (b, bound) in h.buckets.iter_mut().zip(BUCKETS_US) {
            if us <= bound {
                *b += 1;
            }
        }
        h.count += 1;
        h.sum_us = h.sum_us.saturating_add(us);
    }

    /// The value of a counter (tests).
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let key = self.labels(labels);
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = self.database_series(&inner, name).find(|(l, _)| *l == key) {
            return v.1.raw();
        }
        inner
            .counters
            .iter()
            .find(|((n, l), _)| *n == name && *l == key)
            .map_or(0, |(_, v)| *v)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((_, labels), v) in inner.counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
            for (labels, v) in self.database_series(&inner, name) {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
            for ((_, labels), h) in inner.histograms.iter().filter(|((n, _), _)| n == name) {
                for (b, bound) in h.buckets.iter().zip(BUCKETS_US) {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{}\"}} {b}", secs(bound));
                }
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "{name}_sum{{{labels}}} {}", secs(h.sum_us));
                let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
            }
        }
        out
    }
}

impl Metrics {
    /// The series of `name` the database's counters give (none for another family, or before
    /// [`Metrics::count_database`]): labels and value.
    fn database_series(&self, inner: &Inner, name: &str) -> impl Iterator<Item = (String, Value)> {
        use std::sync::atomic::Ordering::Relaxed;
        let series: Vec<(String, Value)> = match (&inner.database, name) {
            (Some(c), "ibsim_db_statements_total") => vec![
                (
                    self.labels(&[("pool", "read")]),
                    Value::Count(c.read_statements.load(Relaxed)),
                ),
                (
                    self.labels(&[("pool", "write")]),
                    Value::Count(c.write_statements.load(Relaxed)),
                ),
            ],
            (Some(c), "ibsim_db_round_trips_total") => vec![
                (
                    self.labels(&[("pool", "read")]),
                    Value::Count(c.read_round_trips.load(Relaxed)),
                ),
                (
                    self.labels(&[("pool", "write")]),
                    Value::Count(c.write_round_trips.load(Relaxed)),
                ),
            ],
            (Some(c), "ibsim_db_transactions_total") => {
                vec![(self.labels(&[]), Value::Count(c.transactions.load(Relaxed)))]
            }
            (Some(c), "ibsim_db_writer_seconds_total") => vec![
                (
                    self.labels(&[("phase", "waiting")]),
                    Value::Micros(c.writer_waiting_us.load(Relaxed)),
                ),
                (
                    self.labels(&[("phase", "holding")]),
                    Value::Micros(c.writer_holding_us.load(Relaxed)),
                ),
            ],
            _ => Vec::new(),
        };
        series.into_iter()
    }
}

/// A value the database's counters give: a count, or microseconds shown as seconds.
#[derive(Debug, Clone, Copy)]
enum Value {
    Count(u64),
    Micros(u64),
}

impl Value {
    /// As a counter's figure: the count, or whole microseconds.
    fn raw(self) -> u64 {
        match self {
            Value::Count(n) | Value::Micros(n) => n,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Micros(us) => f.write_str(&secs(us)),
        }
    }
}

/// Microseconds as decimal seconds, without floating point: `2500` → `0.0025`.
fn secs(us: u64) -> String {
    let frac = format!("{:06}", us % 1_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}", us / 1_000_000)
    } else {
        format!("{}.{frac}", us / 1_000_000)
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` for the metrics endpoint.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for metrics"))
}

/// Serves `GET /metrics` over HTTP (axum on hyper: every connection its own task, so idle or
/// slow clients hold only their own) until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Metrics) {
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let body = metrics.render();
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        body,
                    )
                }
            }),
        )
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "try /metrics\n") });
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn renders_counters_and_histograms_in_the_text_format() {
        let m = Metrics::new("bank");
        m.inc(
            "ibsim_rpc_requests_total",
            &[("rpc", "Pay"), ("code", "OK"), ("reason", "")],
        );
        m.add(
            "ibsim_rpc_requests_total",
            &[("rpc", "Pay"), ("code", "OK"), ("reason", "")],
            2,
        );
        m.observe(
            "ibsim_rpc_duration_seconds",
            &[("rpc", "Pay")],
            Duration::from_micros(3_000),
        );
        m.observe(
            "ibsim_rpc_duration_seconds",
            &[("rpc", "Pay")],
            Duration::from_secs(20),
        );
        let text = m.render();
        assert!(
            text.contains("# TYPE ibsim_rpc_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "ibsim_rpc_requests_total{node=\"bank\",rpc=\"Pay\",code=\"OK\",reason=\"\"} 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ibsim_rpc_duration_seconds_bucket{node=\"bank\",rpc=\"Pay\",le=\"0.0025\"} 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ibsim_rpc_duration_seconds_bucket{node=\"bank\",rpc=\"Pay\",le=\"0.005\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ibsim_rpc_duration_seconds_bucket{node=\"bank\",rpc=\"Pay\",le=\"10\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ibsim_rpc_duration_seconds_bucket{node=\"bank\",rpc=\"Pay\",le=\"+Inf\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("ibsim_rpc_duration_seconds_sum{node=\"bank\",rpc=\"Pay\"} 20.003\n"),
            "{text}"
        );
        assert!(
            text.contains("ibsim_rpc_duration_seconds_count{node=\"bank\",rpc=\"Pay\"} 2\n"),
            "{text}"
        );
        assert_eq!(
            m.counter(
                "ibsim_rpc_requests_total",
                &[("rpc", "Pay"), ("code", "OK"), ("reason", "")]
            ),
            3
        );
    }

    #[test]
    fn label_values_are_escaped_and_seconds_exact() {
        let m = Metrics::new("platform");
        m.inc("ibsim_payments_total", &[("status", "a\"b\\c\nd")]);
        assert!(m.render().contains("status=\"a\\\"b\\\\c\\nd\""));
        assert_eq!(secs(1_000), "0.001");
        assert_eq!(secs(2_500_000), "2.5");
        assert_eq!(secs(10_000_000), "10");
        assert_eq!(secs(0), "0");
    }

    #[tokio::test]
    async fn serves_get_metrics_over_http() {
        let m = Metrics::new("bank");
        m.inc("ibsim_refund_batches_total", &[]);
        let l = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(serve(l, m));
        let ask = |req: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = ask("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
        assert!(
            ok.contains("ibsim_refund_batches_total{node=\"bank\"} 1\n"),
            "{ok}"
        );
        assert!(
            ask("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            ask("POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 405")
        );
        server.abort();
    }

    /// Slow or idle clients hold their own connections; a scrape is still answered.
    #[tokio::test]
    async fn a_hundred_idle_clients_do_not_stop_a_scrape() {
        let m = Metrics::new("platform");
        m.inc("ibsim_refund_batches_total", &[]);
        let l = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(serve(l, m));
        let mut idle = Vec::new();
        for n in 0..100 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            if n % 2 == 0 {
                // Half send the start of a request and stop there.
                s.write_all(b"GET /metr").await.unwrap();
            }
            idle.push(s);
        }
        for _ in 0..3 {
            let scrape = async {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out
            };
            // A bound on a hang, not a synchronisation: the answer comes at once or never.
            let out = tokio::time::timeout(Duration::from_secs(20), scrape)
                .await
                .expect("the scrape was answered with 100 idle clients connected");
            assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
            assert!(
                out.contains("ibsim_refund_batches_total{node=\"platform\"} 1\n"),
                "{out}"
            );
        }
        drop(idle);
        server.abort();
    }
}
