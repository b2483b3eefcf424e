//! The live feed (issue 20): each node's FeedService.Watch tells every call it serves, as it
//! arrives and as it is answered, each fault firing and each SMS, with card numbers masked and
//! passwords, codes and session tokens never shown.

use std::time::Duration;

use e2e_tests::{Backend, PAY_PASSWORD, TestApp, fault_rule_once};
use proto::sim::v1 as sim;
use proto::sim::v1::feed_event::Kind;
use proto::sim::v1::feed_service_client::FeedServiceClient;
use tonic::Streaming;

/// Reads `stream` until `done` holds of the events read so far (a bound on a hang: the events
/// are there at once or never).
async fn read_until(
    stream: &mut Streaming<sim::FeedEvent>,
    seen: &mut Vec<sim::FeedEvent>,
    done: impl Fn(&[sim::FeedEvent]) -> bool,
) {
    while !done(seen) {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("the feed goes on")
            .expect("the feed does not fail")
            .expect("the feed does not end");
        seen.push(next);
    }
}

fn calls(events: &[sim::FeedEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Call(c)) => Some((c.caller.clone(), c.method.clone())),
            _ => None,
        })
        .collect()
}

fn answer_of<'a>(events: &'a [sim::FeedEvent], method: &str) -> Vec<&'a sim::CallAnswered> {
    let ids: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Call(c)) if c.method == method => Some(c.call_id),
            _ => None,
        })
        .collect();
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Answer(a)) if ids.contains(&a.call_id) => Some(a),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_with_a_dropped_reply_is_told_as_it_happens_and_masked() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("sqlite always runs");
    let p = app.payer("看客", "1000.00", "5000.00").await;
    let mut at_bank = FeedServiceClient::new(app.bank_channel.clone())
        .watch(sim::WatchRequest {})
        .await
        .expect("watch the bank")
        .into_inner();
    let mut at_platform = FeedServiceClient::new(app.platform_channel.clone())
        .watch(sim::WatchRequest {})
        .await
        .expect("watch the platform")
        .into_inner();

    app.fault(
        "platform",
        fault_rule_once(
            sim::FaultSide::Caller,
            "Pay",
            sim::fault_rule::Action::DropReply(true),
        ),
    )
    .await;
    app.start(&p, "FEED-1", "12.34").await.expect("started");
    let code = app.code_for(&p, "FEED-1").await;
    let confirmed = app.confirm(&p, "FEED-1", &code).await;
    app.card(&p.customer.card_number).await;
    let refused = app.start(&p, "FEED-2", "0.001").await;
    assert!(refused.is_err(), "three places are refused");

    let mut bank = Vec::new();
    let mut platform = Vec::new();
    read_until(&mut at_bank, &mut bank, |e| {
        answer_of(e, "Pay").len() == 1 && answer_of(e, "GetCard").len() == 1
    })
    .await;
    read_until(&mut at_platform, &mut platform, |e| {
        answer_of(e, "StartPayment").len() == 2 && answer_of(e, "ConfirmPayment").len() == 1
    })
    .await;

    // Who called what, in the order it arrived.
    assert_eq!(
        calls(&platform),
        [
            ("operator", "AddFault"),
            ("customer", "StartPayment"),
            ("customer", "ConfirmPayment"),
            ("customer", "StartPayment"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        calls(&bank),
        [
            ("platform", "RequestPaymentCode"),
            ("phone", "ListSms"),
            ("platform", "Pay"),
            ("teller", "GetCard"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // The bank debited and answered; the platform's side of the call lost the reply.
    assert_eq!(answer_of(&bank, "Pay")[0].code, "OK");
    let fired: Vec<&sim::FaultFired> = platform
        .iter()
        .filter_map(|e| match &e.kind {
            Some(Kind::Fault(f)) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(fired.len(), 1, "{platform:?}");
    assert_eq!(
        (fired[0].side.as_str(), fired[0].method.as_str()),
        ("CALLER", "Pay")
    );
    assert_eq!(fired[0].action, "REPLY DROPPED");
    assert_eq!(fired[0].order_no, "FEED-1");
    let confirm = answer_of(&platform, "ConfirmPayment")[0];
    let told = match &confirmed {
        Ok(_) => "OK",
        Err(s) => shared::grpc::code_name(s.code()),
    };
    assert_eq!(
        confirm.code, told,
        "the feed tells what the customer was told"
    );
    // The SMS, told without its text or code; the refusal with its reason and institution.
    assert!(bank.iter().any(|e| matches!(&e.kind,
        Some(Kind::Sms(s)) if s.order_no == "FEED-1" && s.mobile_masked.contains("****"))));
    let refusal = answer_of(&platform, "StartPayment")[1];
    assert_eq!(refusal.code, "INVALID_ARGUMENT");
    assert_eq!(refusal.reason, "MONEY_INVALID");
    assert_eq!(refusal.domain, "platform.interbank-sim");
    // The orders the calls name, for the console's filter.
    let named: Vec<&sim::CallArrived> = platform
        .iter()
        .chain(&bank)
        .filter_map(|e| match &e.kind {
            Some(Kind::Call(c)) if c.order_nos.contains(&"FEED-1".to_owned()) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(
        named.len(),
        4,
        "StartPayment, RequestPaymentCode, ConfirmPayment and Pay"
    );
    assert!(named.iter().all(|c| c.trace_id.len() == 32));

    // Nothing secret in any event; the card only masked.
    let all = format!("{bank:?}{platform:?}");
    for secret in [
        code.as_str(),
        &p.token,
        PAY_PASSWORD,
        &p.customer.card_number,
    ] {
        assert!(!all.contains(secret), "{secret} shown in the feed: {all}");
    }
    let n = &p.customer.card_number;
    let masked = format!(
        "{}{}{}",
        &n[..6],
        "*".repeat(n.len() - 10),
        &n[n.len() - 4..]
    );
    assert!(
        all.contains(&masked),
        "the teller's card read shows the card masked"
    );
    assert!(all.contains("(hidden)"));
}
