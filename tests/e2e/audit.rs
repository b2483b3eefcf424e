//! Both nodes' audit lines about one order, with trace ids: what `ibsim trace` merges into the
//! interbank conversation of the order.

use e2e_tests::{TestApp, assert_refused, on_both_backends};
use proto::sim::v1 as sim;
use tonic::Code;

on_both_backends!(both_nodes_audit_lines_about_an_order_tell_its_conversation_in_order);

async fn lines(app: &TestApp, node: &str, subject: &str) -> Vec<sim::AuditLine> {
    let mut c = if node == "bank" {
        app.bank_sim.clone()
    } else {
        app.platform_sim.clone()
    };
    c.list_audit_lines(sim::ListAuditLinesRequest {
        subject: subject.to_owned(),
        limit: 0,
    })
    .await
    .expect("audit lines")
    .into_inner()
    .lines
}

async fn both_nodes_audit_lines_about_an_order_tell_its_conversation_in_order(app: TestApp) {
    let p = app.payer("审计", "1000.00", "5000.00").await;
    app.pay_now(&p, "AUD-1", "3.00").await.unwrap();
    let mut all: Vec<(&str, sim::AuditLine)> = Vec::new();
    for node in ["bank", "platform"] {
        all.extend(
            lines(&app, node, "AUD-1")
                .await
                .into_iter()
                .map(|l| (node, l)),
        );
    }
    all.sort_by_key(|(_, l)| l.real_at_us);
    let ops: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|(n, l)| (*n, l.operation.as_str(), l.outcome.as_str()))
        .collect();
    // Each line is written when its request is answered: the bank's before the platform's.
    assert_eq!(
        ops,
        [
            ("bank", "RequestPaymentCode", "OK"),
            ("platform", "StartPayment", "OK"),
            ("bank", "Pay", "OK"),
            ("platform", "ConfirmPayment", "OK"),
        ]
    );
    let trace = |i: usize| all[i].1.trace_id.clone();
    assert_eq!(
        trace(0),
        trace(1),
        "the code request is in the start's trace"
    );
    assert_eq!(
        trace(2),
        trace(3),
        "the debit is in the confirmation's trace"
    );
    assert_ne!(trace(0), trace(2), "two customer requests, two traces");
    assert_eq!(trace(0).len(), 32);

    assert_refused(
        app.bank_sim
            .clone()
            .list_audit_lines(sim::ListAuditLinesRequest {
                subject: String::new(),
                limit: 0,
            })
            .await,
        Code::InvalidArgument,
        "SUBJECT_INVALID",
    );
    assert_refused(
        app.platform_sim
            .clone()
            .list_audit_lines(sim::ListAuditLinesRequest {
                subject: "AUD-1".into(),
                limit: 1001,
            })
            .await,
        Code::InvalidArgument,
        "LIMIT_INVALID",
    );
}
