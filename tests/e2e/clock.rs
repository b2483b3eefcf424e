//! The simulated clock, the day-end cutover racing payments, and reset.

use e2e_tests::{TestApp, assert_refused, on_both_backends};
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use sim::set_clock_request::Move;
use sim::simulator_service_client::SimulatorServiceClient;
use tonic::Code;
use tonic::transport::Channel;

on_both_backends!(
    the_clock_freezes_moves_forward_and_never_back,
    payments_racing_the_cutover_each_land_in_exactly_one_closed_or_open_day,
    reset_wipes_the_nodes_and_brings_back_real_time,
);

/// A node's clock as it answers `GetClock`.
async fn clock_of(node: &mut SimulatorServiceClient<Channel>) -> sim::ClockState {
    node.get_clock(sim::GetClockRequest {})
        .await
        .unwrap()
        .into_inner()
        .clock
        .unwrap()
}

async fn the_clock_freezes_moves_forward_and_never_back(app: TestApp) {
    app.freeze_at("2031-06-30T15:30:00Z").await;
    let mut c = app.bank_sim.clone();
    let state = clock_of(&mut c).await;
    assert!(state.frozen);
    assert_eq!(state.business_date, "2031-06-30");
    assert_eq!(
        state.next_cutover.unwrap().seconds,
        "2031-06-30T16:00:00Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
            .timestamp()
    );

    let back = shared::grpc::timestamp("2031-06-30T15:29:59Z".parse().unwrap());
    assert_refused(
        c.set_clock(sim::SetClockRequest {
            r#move: Some(Move::SetTo(back)),
        })
        .await,
        Code::FailedPrecondition,
        "CLOCK_BACKWARDS",
    );
    // Later than now, but not a time: nanoseconds outside a second (chrono would take 1.5
    // billion at :59 as a leap second), and seconds past any calendar.
    let ahead = |seconds: i64, nanos: i32| {
        Some(Move::SetTo(proto::Timestamp {
            seconds: "2031-06-30T15:30:59Z"
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap()
                .timestamp()
                + seconds,
            nanos,
        }))
    };
    for bad in [
        None,
        Some(Move::AdvanceMs(0)),
        Some(Move::AdvanceMs(-5)),
        Some(Move::Freeze(false)),
        ahead(0, -1),
        ahead(0, 1_500_000_000),
        ahead(0, 1_000_000_000),
        ahead(i64::MAX / 2, 0),
    ] {
        assert_refused(
            c.set_clock(sim::SetClockRequest { r#move: bad }).await,
            Code::InvalidArgument,
            "CLOCK_MOVE_INVALID",
        );
    }
    let after = clock_of(&mut c).await;
    assert_eq!(after, state, "a refused move changes nothing");
    let moved = app.clock(Move::AdvanceMs(3 * 24 * 3600 * 1000)).await;
    assert_eq!(
        moved.closed_dates,
        vec!["2031-07-02".to_owned()],
        "the day before today is closed, even if empty"
    );
    let state = moved.clock.unwrap();
    assert_eq!(
        (
            state.business_date.as_str(),
            state.last_closed_date.as_str()
        ),
        ("2031-07-03", "2031-07-02")
    );
    let resumed = app.clock(Move::Resume(true)).await.clock.unwrap();
    assert!(!resumed.frozen);
}

async fn payments_racing_the_cutover_each_land_in_exactly_one_closed_or_open_day(app: TestApp) {
    // 23:59:59 China time on 2031-11-23.
    app.freeze_at("2031-11-23T15:59:59Z").await;
    let p = app.payer("钟一", "1000.00", "5000.00").await;
    let mut codes = Vec::new();
    for i in 0..20 {
        let order = format!("CUT-{i:02}");
        app.start(&p, &order, "1.00").await.unwrap();
        codes.push((order.clone(), app.code_for(&p, &order).await));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (order, code)) in codes.into_iter().enumerate() {
        let (mut pay, token) = (app.pay.clone(), p.token.clone());
        let (mut bank_sim, mut platform_sim) = (app.bank_sim.clone(), app.platform_sim.clone());
        tasks.spawn(async move {
            if i == 10 {
                let req = sim::SetClockRequest {
                    r#move: Some(Move::AdvanceToCutover(true)),
                };
                platform_sim.set_clock(req).await.unwrap();
                bank_sim.set_clock(req).await.unwrap();
            }
            pay.confirm_payment(platform::ConfirmPaymentRequest {
                session_token: token,
                order_no: order,
                otp_code: code,
            })
            .await
            .unwrap()
            .into_inner()
            .order
            .unwrap()
        });
    }
    let mut dates = Vec::new();
    while let Some(o) = tasks.join_next().await {
        dates.push(o.unwrap().business_date);
    }
    assert!(
        dates.iter().all(|d| d == "2031-11-23" || d == "2031-11-24"),
        "{dates:?}"
    );

    let successes = app.bank_successes().await;
    assert_eq!(
        successes.len(),
        20,
        "every payment went through across the cutover"
    );
    let in_closed_day: Vec<_> = successes.iter().filter(|s| s.2 == "2031-11-23").collect();
    let closed = app
        .bank_ints(
            "SELECT payment_count FROM business_days WHERE business_date = $1 AND status = 'CLOSED'",
            "2031-11-23",
        )
        .await;
    assert_eq!(
        closed,
        vec![in_closed_day.len() as i64],
        "the closed day holds exactly its payments"
    );
    let total = app
        .bank_ints(
            "SELECT payment_total_fen FROM business_days WHERE business_date = $1",
            "2031-11-23",
        )
        .await;
    assert_eq!(total, vec![in_closed_day.iter().map(|s| s.1).sum::<i64>()]);
    let later = app.pay_now(&p, "AFTER-CUT", "1.00").await.unwrap();
    assert_eq!(later.business_date, "2031-11-24");
    let closed_again = app
        .bank_ints(
            "SELECT payment_count FROM business_days WHERE business_date = $1",
            "2031-11-23",
        )
        .await;
    assert_eq!(closed_again, closed, "nothing lands in a closed day");
}

async fn reset_wipes_the_nodes_and_brings_back_real_time(app: TestApp) {
    use sim::fault_rule::Action;
    app.freeze_at("2031-01-01T00:00:00Z").await;
    let p = app.payer("钟二", "1000.00", "5000.00").await;
    app.pay_now(&p, "BEFORE-RESET", "1.00").await.unwrap();
    app.fault(
        "bank",
        sim::FaultRule {
            side: sim::FaultSide::Callee as i32,
            method: "*".into(),
            action: Some(Action::DropReply(true)),
            ..Default::default()
        },
    )
    .await;
    assert_refused(
        app.bank_sim
            .clone()
            .reset(sim::ResetRequest {
                confirm: "yes".into(),
            })
            .await,
        Code::InvalidArgument,
        "RESET_NOT_CONFIRMED",
    );
    for mut node in [app.bank_sim.clone(), app.platform_sim.clone()] {
        node.reset(sim::ResetRequest {
            confirm: "RESET".into(),
        })
        .await
        .unwrap();
        let c = clock_of(&mut node).await;
        assert!(!c.frozen);
        assert!(
            c.now.unwrap().seconds
                < "2031-01-01T00:00:00Z"
                    .parse::<chrono::DateTime<chrono::Utc>>()
                    .unwrap()
                    .timestamp()
        );
        assert!(
            node.list_faults(sim::ListFaultsRequest {})
                .await
                .unwrap()
                .into_inner()
                .rules
                .is_empty()
        );
    }
    let r = app
        .branch
        .clone()
        .get_card(proto::bank::v1::GetCardRequest {
            card_number: p.customer.card_number.clone(),
        })
        .await;
    assert_refused(r, Code::NotFound, "CARD_NOT_FOUND");
    let r = app
        .ops
        .clone()
        .get_order_by_no(platform::GetOrderByNoRequest {
            order_no: "BEFORE-RESET".into(),
        })
        .await;
    assert_refused(r, Code::NotFound, "ORDER_NOT_FOUND");
    // Usable straight away, and numbered as on new nodes: the first sign-up and the first debit
    // are number 1 again, and the real-time pull starts again from the bank's first successful
    // payment, not from the last number before the reset.
    let q = app.payer("钟三", "1000.00", "5000.00").await;
    assert!(q.signup_id.ends_with("0000000001"), "{}", q.signup_id);
    let paid = app.pay_now(&q, "AFTER-RESET", "1.00").await.unwrap();
    assert!(paid.bank_serial_no.ends_with("000000000001"), "{paid:?}");
    let pull = app.realtime_recon().await;
    assert_eq!((pull.cursor_before, pull.cursor_after), (0, 1), "{pull:?}");
}
