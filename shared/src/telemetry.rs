//! Tracing set-up for the binaries and, with `TEST_LOG=1`, the tests: log lines (text or JSON)
//! and, with `--otlp-endpoint`, every span exported over OTLP/gRPC to an OpenTelemetry collector,
//! under the same trace ids the logs carry (see [`crate::trace`]).

use std::sync::OnceLock;

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracerProvider};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format is text or json, got {other:?}")),
        }
    }
}

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,h2=warn,tower=warn,hyper=warn";

/// How a binary logs and exports: its `--log-format` and `--otlp-endpoint` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// Log format: text or json.
    #[arg(long, env = "IBSIM_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Export every span over OTLP/gRPC to this OpenTelemetry collector
    /// (`http://127.0.0.1:4317`); default: no export.
    #[arg(long, env = "IBSIM_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

impl TelemetryArgs {
    /// Installs logging (and export) for the service `service`; see [`init_with_otlp`].
    pub fn init(&self, service: &'static str) -> anyhow::Result<()> {
        init_with_otlp(self.log_format, self.otlp_endpoint.as_deref(), service)
    }
}

/// The exporter's provider, once OTLP export is on.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported over OTLP (then the trace context follows the exported spans).
pub fn otlp_enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Whether log lines may carry terminal colour codes: only when they go to a terminal. Piped
/// into a file, a collector or another program, an escape is noise or worse.
fn colours() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// Installs the global subscriber; a second call is a no-op (tests start many nodes).
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours())
        .fmt_fields(EscapedFields);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Like [`init`], and when `otlp_endpoint` is given (`http://collector:4317`), exports every span
/// over OTLP/gRPC as service `service`, batched. Must run inside the Tokio runtime. Call
/// [`shutdown`] before the process ends to send what is still batched.
pub fn init_with_otlp(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    service: &'static str,
) -> anyhow::Result<()> {
    let Some(endpoint) = otlp_endpoint else {
        init(format);
        return Ok(());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(RequestTraceIds::default())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    let tracer = provider.tracer("interbank-sim");
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(colours())
                    .fmt_fields(EscapedFields),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(false).json())
            .try_init(),
    };
    if installed.is_ok() {
        let _ = PROVIDER.set(provider);
        tracing::info!(endpoint, service, "exporting spans over OTLP");
    }
    Ok(())
}

/// Sends the spans still batched and stops exporting (a no-op without OTLP).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get()
        && let Err(e) = p.shutdown()
    {
        eprintln!("OTLP exporter did not shut down cleanly: {e}");
    }
}

/// Trace ids for exported root spans: the request's own trace id (the caller's `traceparent`,
/// or the one the node started), so that exported traces and log lines carry the same id.
#[derive(Debug, Default)]
struct RequestTraceIds(RandomIdGenerator);

impl IdGenerator for RequestTraceIds {
    fn new_trace_id(&self) -> TraceId {
        match crate::trace::TraceParent::current() {
            Some(t) => TraceId::from_bytes(t.trace_id_bytes()),
            None => self.0.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// Text log fields with every control character escaped (`\n`, `\0`, `\u{1b}`…), so that no value
/// from the wire can start a log line of its own or steer a terminal: a forged line stays inside
/// the field that carried it. (JSON lines need nothing: JSON strings escape them already.) A
/// field is `name=value`, the message first without its name, as the default text format has it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for EscapedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut v = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct EscapingVisitor<'w> {
    writer: tracing_subscriber::fmt::format::Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl tracing::field::Visit for EscapingVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let raw = format!("{value:?}");
        let text = crate::domain::escape_controls(&raw);
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = match field.name() {
            "message" => write!(self.writer, "{sep}{text}"),
            name if name.starts_with("log.") => Ok(()),
            name => write!(self.writer, "{sep}{name}={text}"),
        };
    }
}
