//! OTLP export: both nodes run as processes with `--otlp-endpoint` pointing at a collector this
//! test serves; a scenario drives a sign-up and a payment through them, and the collector
//! receives spans from both services in which the platform's request hangs under the bank's
//! (and the other way round), one trace across the hop.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ibsim_cli::scenario::{self, Catalog, RunOptions, Target};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use pair::PairConfig;
use pair::process::{NodeProcess, free_port};

/// One exported span: service, name, trace id, span id, parent span id, `path` attribute.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    trace: Vec<u8>,
    span: Vec<u8>,
    parent: Vec<u8>,
    path: String,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Got>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let path = s
                        .attributes
                        .iter()
                        .find(|a| a.key == "path")
                        .and_then(|a| a.value.as_ref()?.value.as_ref())
                        .map(|v| match v {
                            Value::StringValue(s) => s.clone(),
                            other => format!("{other:?}"),
                        })
                        .unwrap_or_default();
                    got.push(Got {
                        service: service.clone(),
                        name: s.name,
                        trace: s.trace_id,
                        span: s.span_id,
                        parent: s.parent_span_id,
                        path,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_nodes_export_spans_of_one_trace_across_the_hop() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = tempfile::tempdir().unwrap();
    let (bank_addr, platform_addr) = (free_port().unwrap(), free_port().unwrap());
    let mut cfg = PairConfig::local(String::new(), String::new(), dir.path());
    cfg.bank.database_url = None;
    cfg.platform.database_url = None;
    let bank_cfg = bank_node::Config {
        listen: bank_addr,
        platform_url: format!("http://{platform_addr}"),
        ..cfg.bank
    };
    let platform_cfg = platform_node::Config {
        listen: platform_addr,
        bank_url: format!("http://{bank_addr}"),
        ..cfg.platform
    };
    // The binaries' own flag (not the node's configuration) and the exporter's delay: export
    // every 50 ms instead of every 5 s.
    let otlp = ["--otlp-endpoint".to_owned(), collector_url.clone()];
    let env_delay = [("OTEL_BSP_SCHEDULE_DELAY", "50")];
    let bank = NodeProcess::start_with(
        env!("CARGO_BIN_EXE_e2e-bank-node").into(),
        &bank_cfg,
        &otlp,
        &env_delay,
    )
    .await
    .unwrap();
    let platform = NodeProcess::start_with(
        env!("CARGO_BIN_EXE_e2e-platform-node").into(),
        &platform_cfg,
        &otlp,
        &env_delay,
    )
    .await
    .unwrap();

    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/sign-up/happy-path.toml");
    let sc = scenario::load(&file, &Catalog::new().unwrap()).unwrap();
    let report = scenario::run(
        vec![sc],
        &RunOptions {
            target: Target::Running {
                bank: format!("http://{}", bank.addr),
                platform: format!("http://{}", platform.addr),
                reset: true,
            },
            jobs: 1,
            seed: 1,
            tap: None,
            credentials: None,
            record: false,
        },
    )
    .await;
    assert!(report.passed(), "{}", report.summary());

    // Wait for the exports (batched every 50 ms): until a ConfirmSignUp span of the platform's
    // hangs under a span of the bank's, and a Pay span of the bank's under the platform's.
    let deadline = Instant::now() + Duration::from_secs(20);
    let linked = loop {
        let got = collector.0.lock().unwrap().clone();
        let by_id: BTreeMap<&[u8], &Got> = got.iter().map(|g| (g.span.as_slice(), g)).collect();
        let crosses = |callee_service: &str, path_end: &str, caller_service: &str| {
            got.iter().any(|g| {
                g.service == callee_service
                    && g.name == "rpc"
                    && g.path.ends_with(path_end)
                    && by_id
                        .get(g.parent.as_slice())
                        .is_some_and(|p| p.service == caller_service && p.trace == g.trace)
            })
        };
        let ok = crosses("ibsim-platform", "/ConfirmSignUp", "ibsim-bank")
            && crosses("ibsim-bank", "/Pay", "ibsim-platform");
        if ok || Instant::now() > deadline {
            break (ok, got);
        }
        // The exporters push on their own schedule: there is no event to wait on.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (ok, got) = linked;
    let services: BTreeSet<_> = got.iter().map(|g| g.service.as_str()).collect();
    assert!(
        ok,
        "no cross-node parent links among {} spans from {services:?}",
        got.len()
    );
    drop((bank, platform));
    server.abort();
}
