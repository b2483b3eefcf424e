//! Fault injection, unknown outcomes and their resolution, the magic amounts, and concurrency.

use e2e_tests::{TestApp, assert_refused, domain, on_both_backends};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use shared::Money;
use tonic::Code;

on_both_backends!(
    a_lost_reply_leaves_the_order_unknown_until_the_status_query_settles_it,
    the_platform_resolves_an_unknown_order_by_itself,
    a_debit_delivered_twice_moves_the_money_once,
    a_failed_code_request_can_be_repeated_with_the_same_order_number,
    a_callee_side_fault_on_the_platform_fails_the_sign_up_with_its_status,
    the_system_busy_amount_does_nothing,
    fault_rules_are_listed_cleared_and_checked,
    fifty_payments_on_one_card_never_overspend_the_balance,
    fifty_payments_on_one_card_never_exceed_the_daily_limit,
);

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

async fn a_lost_reply_leaves_the_order_unknown_until_the_status_query_settles_it(app: TestApp) {
    use sim::fault_rule::Action;
    let p = app.payer("险一", "1000.00", "5000.00").await;
    app.fault(
        "platform",
        sim::FaultRule {
            first_n: 1,
            ..e2e_tests::fault_rule(sim::FaultSide::Caller, "Pay", Action::DropReply(true))
        },
    )
    .await;
    // Keep the background status queries from answering, so UNKNOWN can be seen.
    let blocked = app
        .fault(
            "platform",
            e2e_tests::fault_rule(
                sim::FaultSide::Caller,
                "GetPayment",
                e2e_tests::unavailable(),
            ),
        )
        .await;
    app.start(&p, "LOST", "100.00").await.unwrap();
    let code = app.code_for(&p, "LOST").await;
    assert_refused(
        app.confirm(&p, "LOST", &code)
            .await
            .map(tonic::Response::new),
        Code::Unavailable,
        "PAYMENT_OUTCOME_UNKNOWN",
    );
    assert_eq!(
        app.order("LOST").await.status,
        platform::OrderStatus::Unknown as i32
    );
    assert_eq!(
        app.bank_payment("LOST").await.unwrap().status,
        bank::PaymentStatus::Success as i32,
        "the bank committed the debit"
    );

    app.platform_sim
        .clone()
        .clear_faults(sim::ClearFaultsRequest { id: blocked.id })
        .await
        .unwrap();
    let resolved = app
        .ops
        .clone()
        .resolve_order(platform::ResolveOrderRequest {
            order_no: "LOST".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .order
        .unwrap();
    assert_eq!(resolved.status, platform::OrderStatus::Success as i32);
    assert_eq!(
        resolved.bank_serial_no,
        app.bank_payment("LOST").await.unwrap().bank_serial_no
    );
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        m("900.00"),
        "the money moved once"
    );
    // Confirming again is safe: the same result, no second debit.
    app.confirm(&p, "LOST", &code).await.unwrap();
    assert_eq!(app.balance(&p.customer.card_number).await, m("900.00"));
}

async fn the_platform_resolves_an_unknown_order_by_itself(app: TestApp) {
    // 0.92 is the magic amount whose reply the bank loses after debiting.
    let p = app.payer("险二", "1000.00", "5000.00").await;
    app.start(&p, "MAGIC-LOST", "0.92").await.unwrap();
    let code = app.code_for(&p, "MAGIC-LOST").await;
    assert_refused(
        app.confirm(&p, "MAGIC-LOST", &code)
            .await
            .map(tonic::Response::new),
        Code::Unavailable,
        "PAYMENT_OUTCOME_UNKNOWN",
    );
    // Wait on the order's state: each look is one query; no guessed sleep.
    let settled = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let o = app.order("MAGIC-LOST").await;
            if o.status != platform::OrderStatus::Unknown as i32 {
                break o;
            }
        }
    })
    .await
    .expect("the resolver settles the order within 20 s");
    assert_eq!(settled.status, platform::OrderStatus::Success as i32);
    assert_eq!(app.balance(&p.customer.card_number).await, m("999.08"));
}

async fn a_debit_delivered_twice_moves_the_money_once(app: TestApp) {
    use sim::fault_rule::Action;
    let p = app.payer("险三", "1000.00", "5000.00").await;
    let r = app
        .fault(
            "platform",
            sim::FaultRule {
                match_order_no: "TWICE".into(),
                ..e2e_tests::fault_rule(sim::FaultSide::Caller, "Pay", Action::DeliverTwice(true))
            },
        )
        .await;
    let paid = app.pay_now(&p, "TWICE", "50.00").await.unwrap();
    assert_eq!(paid.status, platform::OrderStatus::Success as i32);
    assert_eq!(app.balance(&p.customer.card_number).await, m("950.00"));
    let listed = app
        .platform_sim
        .clone()
        .list_faults(sim::ListFaultsRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(listed.iter().find(|x| x.id == r.id).unwrap().fired, 1);
    // The same on the bank's side: it processes the call twice, debits once.
    app.fault(
        "bank",
        sim::FaultRule {
            match_order_no: "TWICE-AT-BANK".into(),
            ..e2e_tests::fault_rule(sim::FaultSide::Callee, "Pay", Action::DeliverTwice(true))
        },
    )
    .await;
    app.pay_now(&p, "TWICE-AT-BANK", "50.00").await.unwrap();
    assert_eq!(app.balance(&p.customer.card_number).await, m("900.00"));
}

async fn a_failed_code_request_can_be_repeated_with_the_same_order_number(app: TestApp) {
    use sim::fault_rule::Action;
    let p = app.payer("险四", "1000.00", "5000.00").await;
    app.fault(
        "bank",
        sim::FaultRule {
            first_n: 1,
            match_amount: "10.00".into(),
            ..e2e_tests::fault_rule(
                sim::FaultSide::Callee,
                "RequestPaymentCode",
                Action::Fail(sim::FaultStatus {
                    code: Code::Unavailable as i32,
                    reason: "GATEWAY_DOWN".into(),
                    message: "sms gateway down".into(),
                }),
            )
        },
    )
    .await;
    assert_refused(
        app.start(&p, "RETRY", "10.00")
            .await
            .map(tonic::Response::new),
        Code::Unavailable,
        "BANK_UNAVAILABLE",
    );
    assert_eq!(
        app.order("RETRY").await.status,
        platform::OrderStatus::Created as i32
    );
    let o = app.start(&p, "RETRY", "10.00").await.unwrap();
    assert_eq!(o.status, platform::OrderStatus::AwaitingCode as i32);
    let code = app.code_for(&p, "RETRY").await;
    app.confirm(&p, "RETRY", &code).await.unwrap();
}

async fn a_callee_side_fault_on_the_platform_fails_the_sign_up_with_its_status(app: TestApp) {
    use sim::fault_rule::Action;
    let c = app.customer("险五").await;
    app.fault(
        "platform",
        e2e_tests::fault_rule(
            sim::FaultSide::Callee,
            "ConfirmSignUp",
            Action::Fail(sim::FaultStatus {
                code: Code::FailedPrecondition as i32,
                reason: "INJECTED_NO".into(),
                message: String::new(),
            }),
        ),
    )
    .await;
    let s = assert_refused(
        app.sign_up(app.sign_up_form(&c)).await,
        Code::FailedPrecondition,
        "INJECTED_NO",
    );
    assert_eq!(domain(&s), shared::grpc::FAULT_DOMAIN);
    assert_eq!(
        app.bank_signup_statuses(&c.card_number).await,
        vec!["FAILED"]
    );
}

async fn the_system_busy_amount_does_nothing(app: TestApp) {
    let p = app.payer("险六", "1000.00", "5000.00").await;
    assert_refused(
        app.start(&p, "BUSY", "0.91")
            .await
            .map(tonic::Response::new),
        Code::ResourceExhausted,
        "SYSTEM_BUSY",
    );
    assert_eq!(
        app.order("BUSY").await.status,
        platform::OrderStatus::Created as i32
    );
    assert!(app.bank_payment("BUSY").await.is_err());
}

async fn fault_rules_are_listed_cleared_and_checked(app: TestApp) {
    use sim::fault_rule::Action;
    let mut c = app.bank_sim.clone();
    for bad in [
        e2e_tests::fault_rule(sim::FaultSide::Unspecified, "Pay", Action::DropReply(true)),
        e2e_tests::fault_rule(sim::FaultSide::Caller, "", Action::DropReply(true)),
        e2e_tests::fault_rule(sim::FaultSide::Caller, "Pay", Action::DelayMs(0)),
        e2e_tests::fault_rule(
            sim::FaultSide::Caller,
            "Pay",
            Action::Fail(sim::FaultStatus {
                code: 0,
                ..Default::default()
            }),
        ),
        sim::FaultRule {
            probability: 2.0,
            ..e2e_tests::fault_rule(sim::FaultSide::Caller, "Pay", Action::DropReply(true))
        },
        sim::FaultRule {
            match_card: "not a card".into(),
            ..e2e_tests::fault_rule(sim::FaultSide::Caller, "Pay", Action::DropReply(true))
        },
    ] {
        assert_refused(
            c.add_fault(sim::AddFaultRequest { rule: Some(bad) }).await,
            Code::InvalidArgument,
            "FAULT_RULE_INVALID",
        );
    }
    let a = app
        .fault(
            "bank",
            sim::FaultRule {
                match_card: "6221880000000000019".into(),
                probability: 0.5,
                seed: 7,
                ..e2e_tests::fault_rule(sim::FaultSide::Caller, "*", Action::DelayMs(10))
            },
        )
        .await;
    assert_eq!(a.match_card, "622188*********0019");
    app.fault(
        "bank",
        e2e_tests::fault_rule(sim::FaultSide::Callee, "Pay", Action::DropReply(true)),
    )
    .await;
    let listed = c
        .list_faults(sim::ListFaultsRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        c.clear_faults(sim::ClearFaultsRequest { id: a.id })
            .await
            .unwrap()
            .into_inner()
            .removed,
        1
    );
    assert_refused(
        c.clear_faults(sim::ClearFaultsRequest { id: a.id }).await,
        Code::NotFound,
        "FAULT_RULE_NOT_FOUND",
    );
    assert_eq!(
        c.clear_faults(sim::ClearFaultsRequest { id: 0 })
            .await
            .unwrap()
            .into_inner()
            .removed,
        1
    );
}

/// Starts `n` payments of `amount` on one card, then confirms them all at once; returns the
/// reasons of the refusals.
async fn race(app: &TestApp, p: &e2e_tests::Payer, n: usize, amount: &str) -> (usize, Vec<String>) {
    let mut codes = Vec::new();
    for i in 0..n {
        let order = format!("RACE-{i:02}");
        app.start(p, &order, amount).await.unwrap();
        codes.push((order.clone(), app.code_for(p, &order).await));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (order, code) in codes {
        let (pay, p) = (app.pay.clone(), p.clone());
        tasks.spawn(async move {
            let mut pay = pay;
            pay.confirm_payment(platform::ConfirmPaymentRequest {
                session_token: p.token.clone(),
                order_no: order,
                otp_code: code,
            })
            .await
        });
    }
    let (mut ok, mut refused) = (0, Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(s) => refused.push(e2e_tests::reason(&s)),
        }
    }
    (ok, refused)
}

async fn fifty_payments_on_one_card_never_overspend_the_balance(app: TestApp) {
    let p = app.payer("并一", "1000.00", "5000.00").await;
    // Leave 235.00: 23 payments of 10.00 fit.
    app.pay_now(&p, "DRAIN", "765.00").await.unwrap();
    let (ok, refused) = race(&app, &p, 50, "10.00").await;
    assert_eq!(ok, 23);
    assert!(
        refused.iter().all(|r| r == "INSUFFICIENT_BALANCE"),
        "{refused:?}"
    );
    assert_eq!(refused.len(), 27);
    assert_eq!(app.balance(&p.customer.card_number).await, m("5.00"));
}

async fn fifty_payments_on_one_card_never_exceed_the_daily_limit(app: TestApp) {
    let p = app.payer("并二", "1000.00", "155.00").await;
    let (ok, refused) = race(&app, &p, 50, "10.00").await;
    assert_eq!(ok, 15);
    assert!(
        refused.iter().all(|r| r == "DAILY_LIMIT_EXCEEDED"),
        "{refused:?}"
    );
    assert_eq!(app.balance(&p.customer.card_number).await, m("850.00"));
    let used = app
        .bank_ints(
            "SELECT used_fen FROM daily_usage WHERE card_number = $1",
            &p.customer.card_number,
        )
        .await;
    assert_eq!(used, vec![15_000]);
}
