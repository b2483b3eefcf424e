//! The W3C trace context crosses the gRPC hop: a customer's call to the platform and the
//! platform's call to the bank it causes run under one trace id in both nodes' logs, the
//! caller's own when it sends a `traceparent`. Both nodes' spans are captured as JSON: every span
//! logs its creation, with the spans entered around it. (Not its close: a span closes when its last
//! handle drops, which may be outside the request's `rpc` span, and the JSON format lists only the
//! spans entered at the time.)
//!
//! A test binary of its own: the capture is the process's one global subscriber.

use e2e_tests::capture::Capture;
use e2e_tests::{Backend, TestApp};
use proto::platform::v1 as platform;
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// The trace ids of the `rpc` spans around every new span `name` with `order_no`.
fn trace_ids(capture: &Capture, name: &str, order_no: &str) -> Vec<String> {
    capture
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"] == "new"
                && v["span"]["name"] == name
                && v["span"]["order_no"] == order_no
        })
        .filter_map(|v| {
            v["spans"]
                .as_array()?
                .iter()
                .find(|s| s["name"] == "rpc")
                .and_then(|s| s["trace_id"].as_str().map(str::to_owned))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_follows_a_payment_across_both_nodes() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("info"))
        .json()
        .with_span_events(FmtSpan::NEW)
        .with_writer(capture.clone())
        .init();
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite runs");
    let p = app.payer("追踪", "1000.00", "5000.00").await;

    // No traceparent from the customer: the platform starts a trace, the bank joins it.
    app.start(&p, "TRACE-1", "10.00").await.unwrap();
    let platform_side = trace_ids(&capture, "website.start_payment", "TRACE-1");
    let bank_side = trace_ids(&capture, "link.request_payment_code", "TRACE-1");
    assert_eq!(platform_side.len(), 1, "{platform_side:?}");
    assert_eq!(
        bank_side, platform_side,
        "the bank's span is in the platform's trace"
    );

    // The customer's own traceparent: both nodes log under its trace id.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let code = app.code_for(&p, "TRACE-1").await;
    let mut req = tonic::Request::new(platform::ConfirmPaymentRequest {
        session_token: p.token.clone(),
        order_no: "TRACE-1".into(),
        otp_code: code,
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    app.pay.clone().confirm_payment(req).await.unwrap();
    assert_eq!(
        trace_ids(&capture, "website.confirm_payment", "TRACE-1"),
        [trace_id]
    );
    assert_eq!(trace_ids(&capture, "link.pay", "TRACE-1"), [trace_id]);

    // A malformed traceparent is not taken: a new trace, still one across both nodes.
    let mut req = tonic::Request::new(platform::StartPaymentRequest {
        session_token: p.token.clone(),
        order_no: "TRACE-2".into(),
        amount: "1.00".into(),
        pay_password: e2e_tests::PAY_PASSWORD.into(),
        signup_id: String::new(),
        description: String::new(),
    });
    req.metadata_mut()
        .insert("traceparent", "00-XYZ-00f067aa0ba902b7-01".parse().unwrap());
    app.pay.clone().start_payment(req).await.unwrap();
    let platform_side = trace_ids(&capture, "website.start_payment", "TRACE-2");
    assert_eq!(platform_side.len(), 1);
    assert_ne!(platform_side[0], trace_id);
    assert_eq!(
        trace_ids(&capture, "link.request_payment_code", "TRACE-2"),
        platform_side
    );
}
