//! Reconciliation: the real-time pull and the T+1 files, each kind of break created the way it
//! happens (a lost reply, a lost write, a record written by hand) and shown detected,
//! classified and resolved to the bank's data.

use e2e_tests::{TestApp, assert_refused, on_both_backends};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use shared::Money;
use tonic::Code;

on_both_backends!(
    realtime_settles_an_unknown_order_as_the_bank_paid_it,
    realtime_reads_the_bank_page_by_page_and_resumes_from_its_cursor,
    realtime_fails_an_order_the_bank_never_paid_once_the_grace_window_is_over,
    realtime_says_which_pending_orders_the_bank_did_not_answer_for,
    realtime_records_a_payment_the_platform_has_no_order_for,
    a_clean_day_opens_no_case_and_its_files_are_built_once,
    the_order_file_finds_each_kind_of_order_break_and_takes_the_banks_side,
    the_signup_file_finds_each_kind_of_signup_break_and_takes_the_banks_side,
    the_clearing_file_fetches_a_missed_refund_result_and_staff_close_what_it_cannot_fix,
    a_day_not_yet_closed_is_refused_and_bad_input_changes_nothing,
    breaks_spread_through_a_day_of_several_chunks_are_each_found_once,
    a_day_file_streams_while_it_is_built_and_then_as_kept,
    a_streamed_day_file_that_does_not_hash_as_described_changes_nothing,
);

/// The platform with `held_max` decisions held at most while an order file streams.
async fn holding_at_most(held_max: u32) -> Option<TestApp> {
    let defaults = e2e_tests::Options::default();
    let opts = e2e_tests::Options {
        // Real-time reconciliation stays off, as in every other test here.
        recon: platform_node::ReconConfig {
            held_max,
            ..defaults.recon.clone()
        },
        ..defaults
    };
    TestApp::spawn_with(e2e_tests::Backend::Sqlite, opts).await
}

/// More breaks than the platform may hold while the order file streams (two of five): the merge
/// gives up part way and runs again over the file once it has checked, with the same outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_breaks_than_may_be_held_while_streaming_are_found_the_same() {
    let app = holding_at_most(2).await.expect("SQLite");
    breaks_spread_through_a_day_of_several_chunks_are_each_found_once(app).await;
}

/// Nothing held while streaming (`--recon-held-max 0`): the order file is merged once it has
/// checked, with the same outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_file_merged_only_once_checked_finds_the_same_breaks() {
    let app = holding_at_most(0).await.expect("SQLite");
    the_order_file_finds_each_kind_of_order_break_and_takes_the_banks_side(app).await;
}

/// The same day on a platform database that orders text its own way (ICU): the order file is
/// not compared by merging with the platform's orders read in order, but by staging its keys;
/// the outcome is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_a_linguistic_collation_finds_the_same_breaks() {
    let opts = e2e_tests::Options {
        platform_icu_collation: true,
        ..Default::default()
    };
    if let Some(app) = TestApp::spawn_with(e2e_tests::Backend::Postgres, opts).await {
        let pool = sqlx::AnyPool::connect(app.platform_database_url())
            .await
            .unwrap();
        assert!(
            !shared::store::text_is_bytewise(&pool).await.unwrap(),
            "the platform's database orders text its own way"
        );
        pool.close().await;
        breaks_spread_through_a_day_of_several_chunks_are_each_found_once(app).await;
    }
}

/// Real-time reconciliation on its schedule: both nodes' clocks frozen, an interval of 60 s.
mod scheduled {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_realtime_runs_by_itself_each_interval_of_business_time() {
        super::runs_by_itself(e2e_tests::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_realtime_runs_by_itself_each_interval_of_business_time() {
        super::runs_by_itself(e2e_tests::Backend::Postgres).await;
    }
}

const DAY: &str = "2031-11-04";
/// 10:00 on DAY, China time.
const MORNING: &str = "2031-11-04T02:00:00Z";

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn category(c: &platform::ReconCase) -> platform::CaseCategory {
    platform::CaseCategory::try_from(c.category).unwrap()
}

fn status(c: &platform::ReconCase) -> platform::CaseStatus {
    platform::CaseStatus::try_from(c.status).unwrap()
}

/// A report's cases as (key, category, status), sorted.
fn found(
    report: &platform::RunDayReconResponse,
) -> Vec<(String, platform::CaseCategory, platform::CaseStatus)> {
    let mut found: Vec<_> = report
        .cases
        .iter()
        .map(|c| (c.record_key.clone(), category(c), status(c)))
        .collect();
    found.sort();
    found
}

/// An UNKNOWN order (see `TestApp::unknown_order`), asserted so.
async fn unknown_order(app: &TestApp, p: &e2e_tests::Payer, order_no: &str, amount: &str) {
    assert_refused(
        app.unknown_order(p, order_no, amount)
            .await
            .map(tonic::Response::new),
        Code::Unavailable,
        "PAYMENT_OUTCOME_UNKNOWN",
    );
}

async fn realtime_settles_an_unknown_order_as_the_bank_paid_it(app: TestApp) {
    let p = app.payer("对账一", "1000.00", "5000.00").await;
    app.pay_now(&p, "RT-OK", "10.00").await.unwrap();
    unknown_order(&app, &p, "RT-LOST", "25.50").await;
    assert_eq!(
        app.order("RT-LOST").await.status,
        platform::OrderStatus::Unknown as i32
    );

    let run = app.realtime_recon().await;
    assert_eq!(run.payments_seen, 2, "both successful payments streamed");
    assert_eq!(run.adjustments.len(), 1, "only the unknown order differed");
    let a = &run.adjustments[0];
    assert_eq!(
        (a.record_key.as_str(), a.source.as_str()),
        ("RT-LOST", "REALTIME")
    );
    assert!(a.before.starts_with("UNKNOWN 25.50"), "{a:?}");
    assert!(a.after.starts_with("SUCCESS 25.50"), "{a:?}");
    let order = app.order("RT-LOST").await;
    assert_eq!(order.status, platform::OrderStatus::Success as i32);
    assert_eq!(
        order.bank_serial_no,
        app.bank_payment("RT-LOST").await.unwrap().bank_serial_no
    );
    assert_eq!(app.adjustments_of("RT-LOST").await.len(), 1);

    // The cursor moved past both: a second run streams nothing and changes nothing.
    let again = app.realtime_recon().await;
    assert_eq!((again.payments_seen, again.adjustments.len()), (0, 0));
    assert_eq!(again.cursor_before, run.cursor_after);
    app.pay_now(&p, "RT-NEXT", "1.00").await.unwrap();
    let third = app.realtime_recon().await;
    assert_eq!((third.payments_seen, third.adjustments.len()), (1, 0));
}

async fn realtime_reads_the_bank_page_by_page_and_resumes_from_its_cursor(app: TestApp) {
    let p = app.payer("对账页", "1000.00", "5000.00").await;
    // 1,200 payments the platform lost: three pages of the bank's stream.
    app.seed_payments(&p, DAY, "PAGE-", 1200, false).await;
    app.fault(
        "platform",
        e2e_tests::fault_rule_once(
            sim::FaultSide::Caller,
            "StreamSuccessfulPayments",
            e2e_tests::unavailable(),
        ),
    )
    .await;
    assert_refused(
        app.recon
            .clone()
            .run_realtime_recon(platform::RunRealtimeReconRequest {})
            .await,
        Code::Unavailable,
        "BANK_UNAVAILABLE",
    );
    assert!(app.adjustments_of("").await.is_empty(), "nothing applied");

    let run = app.realtime_recon().await;
    assert_eq!((run.cursor_before, run.cursor_after), (0, 1200));
    assert_eq!(run.payments_seen, 1200);
    assert_eq!(run.adjustments.len(), 1200, "every lost order recorded");
    let orders = app.platform_orders().await;
    assert_eq!(orders.len(), 1200);
    assert!(orders.iter().all(|o| o.status == "SUCCESS"));
    assert_eq!(orders, app.bank_paid_orders().await, "as the bank has them");
    let again = app.realtime_recon().await;
    assert_eq!((again.cursor_before, again.payments_seen), (1200, 0));
}

async fn realtime_fails_an_order_the_bank_never_paid_once_the_grace_window_is_over(app: TestApp) {
    use sim::set_clock_request::Move;
    app.freeze_at(MORNING).await;
    let p = app.payer("对账二", "1000.00", "5000.00").await;
    // The customer asks for a code and never confirms.
    app.start(&p, "RT-ABANDONED", "30.00").await.unwrap();
    app.clock(Move::AdvanceMs(899_000)).await;
    let early = app.realtime_recon().await;
    assert_eq!(early.pending_checked, 0, "inside the 900 s grace window");
    assert_eq!(
        app.order("RT-ABANDONED").await.status,
        platform::OrderStatus::AwaitingCode as i32
    );

    app.clock(Move::AdvanceMs(2_000)).await;
    let run = app.realtime_recon().await;
    assert_eq!(run.pending_checked, 1);
    let order = app.order("RT-ABANDONED").await;
    assert_eq!(order.status, platform::OrderStatus::Failed as i32);
    assert_eq!(
        order.failure.unwrap().reason,
        "OTP_EXPIRED",
        "the bank's word: the code expired unused"
    );
    assert_eq!(run.adjustments[0].record_key, "RT-ABANDONED");
    // Confirming now takes no money: the platform answers the failure.
    let code = app.code_for(&p, "RT-ABANDONED").await;
    assert!(app.confirm(&p, "RT-ABANDONED", &code).await.is_err());
    assert_eq!(app.balance(&p.customer.card_number).await, m("1000.00"));
}

/// A pending order the bank gives no answer for stays pending, and the run says so: a caller
/// (a script, the explorer) knows to run again rather than take "checked" for "settled".
async fn realtime_says_which_pending_orders_the_bank_did_not_answer_for(app: TestApp) {
    use sim::set_clock_request::Move;
    app.freeze_at(MORNING).await;
    let p = app.payer("对账无答", "1000.00", "5000.00").await;
    app.start(&p, "RT-NO-ANSWER", "30.00").await.unwrap();
    app.clock(Move::AdvanceMs(901_000)).await;
    app.fault(
        "platform",
        e2e_tests::fault_rule_once(
            sim::FaultSide::Caller,
            "GetPayment",
            e2e_tests::unavailable(),
        ),
    )
    .await;
    let run = app.realtime_recon().await;
    assert_eq!((run.pending_checked, run.pending_unanswered), (1, 1));
    assert!(run.adjustments.is_empty());
    assert_eq!(
        app.order("RT-NO-ANSWER").await.status,
        platform::OrderStatus::AwaitingCode as i32,
        "no answer settles nothing"
    );

    let again = app.realtime_recon().await;
    assert_eq!((again.pending_checked, again.pending_unanswered), (1, 0));
    assert_eq!(
        app.order("RT-NO-ANSWER").await.status,
        platform::OrderStatus::Failed as i32
    );
}

async fn realtime_records_a_payment_the_platform_has_no_order_for(app: TestApp) {
    let p = app.payer("对账三", "1000.00", "5000.00").await;
    let paid = app.pay_at_bank_only(&p, "RT-BANK-ONLY", "12.30").await;
    assert!(
        app.ops
            .clone()
            .get_order_by_no(platform::GetOrderByNoRequest {
                order_no: "RT-BANK-ONLY".into()
            })
            .await
            .is_err()
    );
    let run = app.realtime_recon().await;
    assert_eq!(run.adjustments.len(), 1);
    assert_eq!(run.adjustments[0].before, "-");
    let order = app.order("RT-BANK-ONLY").await;
    assert_eq!(order.status, platform::OrderStatus::Success as i32);
    assert_eq!(
        (order.amount.as_str(), order.email.as_str()),
        ("12.30", p.customer.email.as_str())
    );
    assert_eq!(order.bank_serial_no, paid.bank_serial_no);
}

async fn a_clean_day_opens_no_case_and_its_files_are_built_once(app: TestApp) {
    app.freeze_at(MORNING).await;
    let p = app.payer("对账四", "1000.00", "5000.00").await;
    let orders = app
        .paid_orders(&p, "CLEAN", &["10.00", "20.00", "30.50"])
        .await;
    let batch = e2e_tests::batch_file("RB-CLEAN", &[("RF-C1", &orders[0], "5.00")]);
    app.upload(&batch).await.unwrap();
    app.run_refund_job().await;
    app.fetch_result("RB-CLEAN").await.unwrap();
    app.close_day(DAY).await;

    let report = app.day_recon(DAY, &[]).await.unwrap();
    let kinds: Vec<_> = report.files.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            platform::ReconFileKind::Signup as i32,
            platform::ReconFileKind::Order as i32,
            platform::ReconFileKind::Clearing as i32
        ]
    );
    for f in &report.files {
        assert_eq!((f.cases, f.matched), (0, f.record_count), "{f:?}");
    }
    // One sign-up, three payments, three payments and one refund.
    let counts: Vec<u64> = report.files.iter().map(|f| f.record_count).collect();
    assert_eq!(counts, [1, 3, 4]);
    assert!(report.cases.is_empty());
    assert!(app.cases_of(DAY).await.is_empty());

    // Built once: asking again gives the same bytes, and reconciling again finds nothing.
    let prepared = |kind| {
        let mut c = app.bank_recon.clone();
        async move {
            c.prepare_day_file(bank::PrepareDayFileRequest {
                kind: kind as i32,
                business_date: DAY.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .file
            .unwrap()
        }
    };
    let first = prepared(bank::DayFileKind::Clearing).await;
    assert_eq!(first.sha256, report.files[2].sha256);
    assert_eq!(first.payment_total, "60.50");
    let again = app.day_recon(DAY, &[]).await.unwrap();
    assert!(again.cases.is_empty());
    let shas: Vec<_> = again.files.iter().map(|f| f.sha256.clone()).collect();
    let before: Vec<_> = report.files.iter().map(|f| f.sha256.clone()).collect();
    assert_eq!(shas, before);
}

async fn the_order_file_finds_each_kind_of_order_break_and_takes_the_banks_side(app: TestApp) {
    use platform::{CaseCategory as C, CaseStatus as S};
    app.freeze_at(MORNING).await;
    let p = app.payer("对账五", "1000.00", "5000.00").await;
    app.pay_now(&p, "ORD-FINE", "1.00").await.unwrap();
    // Status differs: the Pay reply was lost, the platform has UNKNOWN.
    unknown_order(&app, &p, "ORD-UNKNOWN", "2.00").await;
    // Bank only: the platform lost its record of a paid order.
    app.pay_at_bank_only(&p, "ORD-BANK-ONLY", "3.00").await;
    // Amount differs: the bank debited 4.00, an operator wrote 4.50 by hand.
    app.pay_at_bank_only(&p, "ORD-AMOUNT", "4.00").await;
    let manual = |order: &str, amount: &str| platform::WriteManualOrderRequest {
        order_no: order.into(),
        email: p.customer.email.clone(),
        signup_id: p.signup_id.clone(),
        amount: amount.into(),
        business_date: DAY.into(),
    };
    let mut recon = app.recon.clone();
    recon
        .write_manual_order(manual("ORD-AMOUNT", "4.50"))
        .await
        .unwrap();
    // Platform only: an operator wrote a paid order the bank never saw.
    recon
        .write_manual_order(manual("ORD-PLATFORM-ONLY", "5.00"))
        .await
        .unwrap();
    // Detail differs: the same amount, but the operator made up the serial number.
    let detail = app.pay_at_bank_only(&p, "ORD-DETAIL", "6.00").await;
    recon
        .write_manual_order(manual("ORD-DETAIL", "6.00"))
        .await
        .unwrap();
    app.close_day(DAY).await;

    let report = app
        .day_recon(DAY, &[platform::ReconFileKind::Order])
        .await
        .unwrap();
    let file = &report.files[0];
    assert_eq!((file.record_count, file.matched), (5, 1));
    let found = found(&report);
    assert_eq!(
        found,
        [
            ("ORD-AMOUNT".to_owned(), C::AmountDiffers, S::AutoResolved),
            ("ORD-BANK-ONLY".to_owned(), C::BankOnly, S::AutoResolved),
            ("ORD-DETAIL".to_owned(), C::DetailDiffers, S::AutoResolved),
            (
                "ORD-PLATFORM-ONLY".to_owned(),
                C::PlatformOnly,
                S::AutoResolved
            ),
            ("ORD-UNKNOWN".to_owned(), C::StatusDiffers, S::AutoResolved),
        ]
    );
    let amount_case = report
        .cases
        .iter()
        .find(|c| c.record_key == "ORD-AMOUNT")
        .unwrap();
    assert_eq!(amount_case.amount, "0.50", "the difference is at stake");
    // Every order now stands as the bank has it.
    for (order, want, amount) in [
        ("ORD-UNKNOWN", platform::OrderStatus::Success, "2.00"),
        ("ORD-BANK-ONLY", platform::OrderStatus::Success, "3.00"),
        ("ORD-AMOUNT", platform::OrderStatus::Success, "4.00"),
        ("ORD-PLATFORM-ONLY", platform::OrderStatus::Failed, "5.00"),
        ("ORD-DETAIL", platform::OrderStatus::Success, "6.00"),
    ] {
        let o = app.order(order).await;
        assert_eq!(
            (o.status, o.amount.as_str()),
            (want as i32, amount),
            "{order}"
        );
        let adj = app.adjustments_of(order).await;
        assert_eq!(adj.len(), 1, "{order}: {adj:?}");
        assert_eq!(adj[0].source, "T1_ORDER");
        assert!(!adj[0].case_id.is_empty());
    }
    assert_eq!(
        app.order("ORD-PLATFORM-ONLY").await.failure.unwrap().reason,
        "RECON_NO_BANK_RECORD"
    );
    assert_eq!(
        app.order("ORD-DETAIL").await.bank_serial_no,
        detail.bank_serial_no
    );
    // Run again: the bank's side was taken, nothing differs any more.
    let again = app
        .day_recon(DAY, &[platform::ReconFileKind::Order])
        .await
        .unwrap();
    assert!(again.cases.is_empty(), "{:?}", again.cases);
    assert_eq!(again.files[0].matched, 5);
    assert_eq!(app.cases_of(DAY).await.len(), 5, "no case opened twice");
}

/// A day of 1,503 orders (the comparison goes 500 records at a time) with breaks on both sides
/// spread through the file: records the platform lost in the middle and at the end, orders only
/// the platform has near the start and in the last chunk. Each is found once, everything else
/// matches, and a second run finds the day in agreement.
async fn breaks_spread_through_a_day_of_several_chunks_are_each_found_once(app: TestApp) {
    use platform::{CaseCategory as C, CaseStatus as S};
    app.freeze_at(MORNING).await;
    let p = app.payer("对账六", "1000.00", "5000.00").await;
    // Paid and held by both: SEED-00000000 to SEED-00001499.
    for mut sim in [app.bank_sim.clone(), app.platform_sim.clone()] {
        sim.seed_paid_orders(sim::SeedPaidOrdersRequest {
            signup_id: p.signup_id.clone(),
            business_date: DAY.into(),
            order_prefix: "SEED-".into(),
            count: 1500,
        })
        .await
        .unwrap();
    }
    // Bank only, between SEED-00000600 and SEED-00000601: SEED-00000600-00000000 to -02.
    app.seed_payments(&p, DAY, "SEED-00000600-", 3, false).await;
    // Platform only: written by hand near the start and in the last chunk.
    let mut recon = app.recon.clone();
    for order in ["SEED-00000050A", "SEED-00001400A"] {
        recon
            .write_manual_order(platform::WriteManualOrderRequest {
                order_no: order.into(),
                email: p.customer.email.clone(),
                signup_id: p.signup_id.clone(),
                amount: "1.00".into(),
                business_date: DAY.into(),
            })
            .await
            .unwrap();
    }
    app.close_day(DAY).await;

    let report = app
        .day_recon(DAY, &[platform::ReconFileKind::Order])
        .await
        .unwrap();
    let file = &report.files[0];
    assert_eq!((file.record_count, file.matched), (1503, 1500));
    // The run as ListDayRuns shows it to someone watching.
    let runs = app.day_runs(DAY).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(
        (
            run.run_id.as_str(),
            run.kind,
            run.record_count,
            run.matched,
            run.cases
        ),
        (
            file.run_id.as_str(),
            platform::ReconFileKind::Order as i32,
            1503,
            1500,
            5
        )
    );
    assert!(run.done_at.is_some() && run.started_at.is_some());
    assert_eq!(
        found(&report),
        [
            (
                "SEED-00000050A".to_owned(),
                C::PlatformOnly,
                S::AutoResolved
            ),
            (
                "SEED-00000600-00000000".to_owned(),
                C::BankOnly,
                S::AutoResolved
            ),
            (
                "SEED-00000600-00000001".to_owned(),
                C::BankOnly,
                S::AutoResolved
            ),
            (
                "SEED-00000600-00000002".to_owned(),
                C::BankOnly,
                S::AutoResolved
            ),
            (
                "SEED-00001400A".to_owned(),
                C::PlatformOnly,
                S::AutoResolved
            ),
        ]
    );
    assert_eq!(
        app.order("SEED-00000600-00000001").await.status,
        platform::OrderStatus::Success as i32
    );
    assert_eq!(
        app.order("SEED-00001400A").await.status,
        platform::OrderStatus::Failed as i32
    );
    let again = app
        .day_recon(DAY, &[platform::ReconFileKind::Order])
        .await
        .unwrap();
    assert!(again.cases.is_empty(), "{:?}", again.cases);
    assert_eq!(again.files[0].matched, 1503);
}

async fn the_signup_file_finds_each_kind_of_signup_break_and_takes_the_banks_side(app: TestApp) {
    use platform::{CaseCategory as C, CaseStatus as S};
    use sim::fault_rule::Action;
    app.freeze_at(MORNING).await;
    let callee =
        |method: &str, action| e2e_tests::fault_rule_once(sim::FaultSide::Callee, method, action);

    // Bank only: the platform answered yes to the sign-up but lost the write.
    let lost = app.customer("丢失签约").await;
    app.fault("platform", callee("ConfirmSignUp", Action::LoseWrite(true)))
        .await;
    let lost_signup = app.signed_up(&lost).await;
    assert!(
        app.platform_account(&lost.email)
            .await
            .card_links
            .is_empty()
    );

    // Platform only: the platform recorded the sign-up, its answer was lost, the bank failed it.
    let orphan = app.customer("孤儿签约").await;
    app.fault("platform", callee("ConfirmSignUp", Action::DropReply(true)))
        .await;
    assert!(app.sign_up(app.sign_up_form(&orphan)).await.is_err());
    let orphan_link = app.platform_account(&orphan.email).await.card_links[0].clone();

    // Status differs: a cancellation the platform missed (it answered yes, kept the card-link).
    let missed = app.payer("漏撤办", "1000.00", "5000.00").await;
    app.fault("platform", callee("ConfirmCancel", Action::LoseWrite(true)))
        .await;
    app.cancel_sign_up(&missed.customer.card_number)
        .await
        .unwrap();

    // Platform only (a cancellation): the platform cancelled, its answer was lost, the bank
    // kept the sign-up.
    let kept = app.payer("误撤办", "1000.00", "5000.00").await;
    app.fault("platform", callee("ConfirmCancel", Action::DropReply(true)))
        .await;
    assert!(
        app.cancel_sign_up(&kept.customer.card_number)
            .await
            .is_err()
    );
    app.close_day(DAY).await;

    let report = app
        .day_recon(DAY, &[platform::ReconFileKind::Signup])
        .await
        .unwrap();
    let found = found(&report);
    let mut want = vec![
        (
            format!("SIGNED:{}", lost_signup.signup_id),
            C::BankOnly,
            S::AutoResolved,
        ),
        (
            format!("SIGNED:{}", orphan_link.signup_id),
            C::PlatformOnly,
            S::AutoResolved,
        ),
        (
            format!("CANCELLED:{}", missed.signup_id),
            C::StatusDiffers,
            S::AutoResolved,
        ),
        (
            format!("CANCELLED:{}", kept.signup_id),
            C::PlatformOnly,
            S::AutoResolved,
        ),
    ];
    want.sort();
    assert_eq!(found, want);

    let app = &app;
    let link_status =
        |email: String| async move { app.platform_account(&email).await.card_links[0].status };
    assert_eq!(
        link_status(lost.email.clone()).await,
        platform::LinkStatus::Signed as i32
    );
    assert_eq!(
        link_status(orphan.email.clone()).await,
        platform::LinkStatus::Cancelled as i32
    );
    assert_eq!(
        link_status(missed.customer.email.clone()).await,
        platform::LinkStatus::Cancelled as i32
    );
    assert_eq!(
        link_status(kept.customer.email.clone()).await,
        platform::LinkStatus::Active as i32,
        "the card-link the bank kept is back, activated as before"
    );
    // The restored card-link pays again, as the bank's sign-up allows.
    let kept = e2e_tests::Payer {
        token: app.login(&kept.customer).await,
        ..kept
    };
    app.pay_now(&kept, "AFTER-RESTORE", "1.00").await.unwrap();

    let again = app
        .day_recon(DAY, &[platform::ReconFileKind::Signup])
        .await
        .unwrap();
    assert!(again.cases.is_empty(), "{:?}", again.cases);
}

async fn the_clearing_file_fetches_a_missed_refund_result_and_staff_close_what_it_cannot_fix(
    app: TestApp,
) {
    use platform::{CaseCategory as C, CaseStatus as S};
    use sim::fault_rule::Action;
    app.freeze_at(MORNING).await;
    let p = app.payer("清算一", "1000.00", "5000.00").await;
    let orders = app.paid_orders(&p, "CLR", &["40.00", "60.00"]).await;
    // A refund the bank credited whose result the platform never fetched.
    let batch = e2e_tests::batch_file(
        "RB-MISSED",
        &[
            ("RF-M1", &orders[0], "15.00"),
            ("RF-M2", &orders[1], "5.00"),
        ],
    );
    app.upload(&batch).await.unwrap();
    app.run_refund_job().await;

    // A payment by an account the platform does not have: the sign-up's write was lost on the
    // platform, whose account never existed.
    let stranger = app.customer("陌生人").await;
    let mut form = app.sign_up_form(&stranger);
    form.platform_account = format!("nobody-{}@example.com", e2e_tests::unique());
    form.mobile = "13900139000".into();
    app.fault(
        "platform",
        e2e_tests::fault_rule_once(
            sim::FaultSide::Callee,
            "ConfirmSignUp",
            Action::LoseWrite(true),
        ),
    )
    .await;
    let signup = app
        .sign_up(form.clone())
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    let ghost = e2e_tests::Payer {
        customer: e2e_tests::Customer {
            email: form.platform_account.clone(),
            ..stranger
        },
        token: String::new(),
        signup_id: signup.signup_id,
        mobile: form.mobile.clone(),
    };
    app.pay_at_bank_only(&ghost, "CLR-GHOST", "7.00").await;
    app.close_day(DAY).await;

    let report = app.day_recon(DAY, &[]).await.unwrap();
    let found = found(&report);
    assert_eq!(
        found,
        [
            ("CLR-GHOST".to_owned(), C::BankOnly, S::NeedsStaff),
            ("R:RF-M1".to_owned(), C::BankOnly, S::AutoResolved),
            ("R:RF-M2".to_owned(), C::BankOnly, S::AutoResolved),
            (
                format!("SIGNED:{}", ghost.signup_id),
                C::BankOnly,
                S::NeedsStaff
            ),
            ("TOTALS".to_owned(), C::TotalsDiffer, S::NeedsStaff),
        ]
    );
    // The missed result was fetched and applied: the platform's refunds agree with the bank's.
    assert_eq!(app.order(&orders[0]).await.refunded_amount, "15.00");
    let totals = report
        .cases
        .iter()
        .find(|c| c.record_key == "TOTALS")
        .unwrap();
    assert_eq!(
        totals.amount, "7.00",
        "the ghost payment is the whole difference"
    );
    let clearing = report
        .files
        .iter()
        .find(|f| f.kind == platform::ReconFileKind::Clearing as i32)
        .unwrap();
    assert_eq!((clearing.auto_resolved, clearing.needs_staff), (2, 1));

    // Staff close the cases the platform could not settle.
    let open: Vec<_> = app
        .cases_of(DAY)
        .await
        .into_iter()
        .filter(|c| status(c) == S::NeedsStaff)
        .collect();
    assert_eq!(open.len(), 3);
    for c in &open {
        let closed = app
            .recon
            .clone()
            .close_case(platform::CloseCaseRequest {
                case_id: c.case_id.clone(),
                note: "account opened by hand after the bank confirmed".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .case
            .unwrap();
        assert_eq!(status(&closed), S::Closed);
    }
    assert_refused(
        app.recon
            .clone()
            .close_case(platform::CloseCaseRequest {
                case_id: open[0].case_id.clone(),
                note: "again".into(),
            })
            .await,
        Code::FailedPrecondition,
        "CASE_CLOSED",
    );
    // A rerun finds the same differences but reopens nothing staff closed.
    app.day_recon(DAY, &[]).await.unwrap();
    let after = app.cases_of(DAY).await;
    assert_eq!(after.len(), 5);
    assert_eq!(
        after.iter().filter(|c| status(c) == S::NeedsStaff).count(),
        0
    );
}

async fn a_day_not_yet_closed_is_refused_and_bad_input_changes_nothing(app: TestApp) {
    app.freeze_at(MORNING).await;
    let p = app.payer("对账六", "1000.00", "5000.00").await;
    app.pay_now(&p, "OPEN-DAY", "1.00").await.unwrap();
    assert_refused(
        app.day_recon(DAY, &[]).await,
        Code::FailedPrecondition,
        "DAY_NOT_CLOSED",
    );
    assert_refused(
        app.day_recon("2031-13-01", &[]).await,
        Code::InvalidArgument,
        "DATE_INVALID",
    );
    assert_refused(
        app.recon
            .clone()
            .list_day_runs(platform::ListDayRunsRequest {
                business_date: "2031-13-01".into(),
            })
            .await,
        Code::InvalidArgument,
        "DATE_INVALID",
    );
    let mut bank_recon = app.bank_recon.clone();
    assert_refused(
        bank_recon
            .prepare_day_file(bank::PrepareDayFileRequest {
                kind: 0,
                business_date: DAY.into(),
            })
            .await,
        Code::InvalidArgument,
        "KIND_INVALID",
    );
    assert_refused(
        bank_recon
            .download_day_file(bank::DownloadDayFileRequest {
                kind: bank::DayFileKind::Order as i32,
                business_date: DAY.into(),
            })
            .await,
        Code::FailedPrecondition,
        "DAY_FILE_NOT_READY",
    );
    assert_refused(
        app.recon
            .clone()
            .close_case(platform::CloseCaseRequest {
                case_id: "CASE0000".into(),
                note: "x".into(),
            })
            .await,
        Code::NotFound,
        "CASE_NOT_FOUND",
    );
    assert_refused(
        app.recon
            .clone()
            .list_adjustments(platform::ListAdjustmentsRequest {
                record_key: String::new(),
                limit: 1001,
            })
            .await,
        Code::InvalidArgument,
        "LIMIT_INVALID",
    );
    assert!(app.cases_of(DAY).await.is_empty());
    assert_eq!(
        app.audit_lines("platform")
            .await
            .iter()
            .filter(|(op, outcome)| op == "RunDayRecon" && outcome != "OK")
            .count(),
        2,
        "each refusal leaves an audit line, and only that"
    );
}

async fn runs_by_itself(backend: e2e_tests::Backend) {
    use sim::set_clock_request::Move;
    let mut opts = e2e_tests::Options {
        frozen_at: Some(MORNING.parse().unwrap()),
        ..e2e_tests::Options::default()
    };
    opts.recon.interval_secs = 60;
    let Some(app) = TestApp::spawn_with(backend, opts).await else {
        return;
    };
    let p = app.payer("定时对账", "1000.00", "5000.00").await;
    unknown_order(&app, &p, "RT-SCHEDULED", "8.00").await;
    app.clock(Move::AdvanceMs(59_000)).await;
    assert!(
        app.adjustments_of("RT-SCHEDULED").await.is_empty(),
        "not due before 60 s of business time"
    );
    app.clock(Move::AdvanceMs(1_000)).await;
    // Wait on the order's state: each look is one query; the schedule looks every 250 ms.
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while app.order("RT-SCHEDULED").await.status != platform::OrderStatus::Success as i32 {}
    })
    .await
    .expect("the scheduled run settles the order within 20 s");
    let adj = app.adjustments_of("RT-SCHEDULED").await;
    assert_eq!((adj.len(), adj[0].source.as_str()), (1, "REALTIME"));
}

/// After a bulk seed, PostgreSQL's planner knows the table's size: without statistics it guessed
/// a handful of rows for a day of a million orders and read each chunk of the comparison through
/// the status index, every order of the table each time (150 ms a chunk instead of 0.25 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_knows_a_seeded_days_size_before_comparing_it() {
    let Some(app) = TestApp::spawn(e2e_tests::Backend::Postgres).await else {
        return;
    };
    app.freeze_at(MORNING).await;
    let p = app.payer("统计", "1000.00", "5000.00").await;
    for mut sim in [app.bank_sim.clone(), app.platform_sim.clone()] {
        sim.seed_paid_orders(sim::SeedPaidOrdersRequest {
            signup_id: p.signup_id.clone(),
            business_date: DAY.into(),
            order_prefix: "STAT-".into(),
            count: 2000,
        })
        .await
        .unwrap();
    }
    // pg_class.reltuples: -1 until the table is first analyzed (or vacuumed).
    let reltuples = "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE relname = $1";
    let bank = app.bank_ints(reltuples, "payments").await;
    assert!(
        bank[0] >= 2000,
        "the bank's planner thinks payments holds {bank:?} rows"
    );
    let pool = sqlx::AnyPool::connect(app.platform_database_url())
        .await
        .unwrap();
    let platform: i64 = sqlx::query_scalar(reltuples)
        .bind("orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(
        platform >= 2000,
        "the platform's planner thinks orders holds {platform} rows"
    );
}

/// StreamDayFile as any client calls it: refused before any bytes while the day is open or the
/// kind is unknown; then the file's bytes while it is built, and last its description, which is
/// the digest and size of exactly those bytes. Two callers racing to have it built get the same
/// file; asked again it streams the same bytes, as kept, which DownloadDayFile and PrepareDayFile
/// agree with.
async fn a_day_file_streams_while_it_is_built_and_then_as_kept(app: TestApp) {
    app.freeze_at(MORNING).await;
    let p = app.payer("对账流", "1000.00", "5000.00").await;
    let orders = app
        .paid_orders(&p, "STREAM", &["10.00", "20.00", "30.50"])
        .await;
    let streamed = |kind: bank::DayFileKind| {
        let mut c = app.bank_recon.clone();
        async move {
            let req = bank::StreamDayFileRequest {
                kind: kind as i32,
                business_date: DAY.into(),
            };
            let mut stream = c.stream_day_file(req).await?.into_inner();
            let mut messages = Vec::new();
            while let Some(m) = stream.message().await? {
                messages.push(m);
            }
            Ok::<_, tonic::Status>(messages)
        }
    };
    assert_refused(
        streamed(bank::DayFileKind::Order).await,
        Code::FailedPrecondition,
        "DAY_NOT_CLOSED",
    );
    app.close_day(DAY).await;
    assert_refused(
        streamed(bank::DayFileKind::Unspecified).await,
        Code::InvalidArgument,
        "KIND_INVALID",
    );

    // Two callers at once, before the file exists: one builds it, both get the same file.
    let (first, racing) = tokio::join!(
        streamed(bank::DayFileKind::Order),
        streamed(bank::DayFileKind::Order)
    );
    let (first, racing) = (first.unwrap(), racing.unwrap());
    let (last, pieces) = first.split_last().expect("at least the description");
    assert!(last.data.is_empty(), "the description comes alone");
    let file = last.file.clone().expect("the description last");
    assert!(
        pieces
            .iter()
            .all(|m| m.file.is_none() && !m.data.is_empty())
    );
    let bytes: Vec<u8> = pieces.iter().flat_map(|m| m.data.clone()).collect();
    use sha2::Digest;
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), file.sha256);
    assert_eq!(bytes.len() as u64, file.size_bytes);
    assert_eq!(
        (file.record_count, file.payment_total.as_str()),
        (3, "60.50")
    );
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(text.lines().count(), 4, "a header and three records");
    for o in &orders {
        assert_eq!(text.matches(&format!("|{o}|")).count(), 1, "{o}");
    }

    // Kept: streamed again, downloaded, described, it is the same file.
    let again = streamed(bank::DayFileKind::Order).await.unwrap();
    for other in [&racing, &again] {
        let other_bytes: Vec<u8> = other.iter().flat_map(|m| m.data.clone()).collect();
        assert_eq!(other_bytes, bytes);
        assert_eq!(other.last().unwrap().file, Some(file.clone()));
    }
    let mut c = app.bank_recon.clone();
    let mut download = c
        .download_day_file(bank::DownloadDayFileRequest {
            kind: bank::DayFileKind::Order as i32,
            business_date: DAY.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut downloaded = Vec::new();
    while let Some(chunk) = download.message().await.unwrap() {
        downloaded.extend(chunk.data);
    }
    assert_eq!(downloaded, bytes);
    let prepared = c
        .prepare_day_file(bank::PrepareDayFileRequest {
            kind: bank::DayFileKind::Order as i32,
            business_date: DAY.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .file;
    assert_eq!(prepared, Some(file));
}

/// The bank's kept order file altered on its disk where the check cannot see it (a serial
/// number): the platform streams it, merges it meanwhile, and finds at the end that it does not
/// hash as described. It refuses the file and changes nothing: no run, no case, every order as
/// it was, though the file holds a payment the platform lacks and lacks an order the platform
/// has. The file put back, the same run finds both.
async fn a_streamed_day_file_that_does_not_hash_as_described_changes_nothing(app: TestApp) {
    use platform::{CaseCategory as C, CaseStatus as S};
    app.freeze_at(MORNING).await;
    let p = app.payer("对账改", "1000.00", "5000.00").await;
    app.pay_now(&p, "TAMPER-FINE", "1.00").await.unwrap();
    let bank_only = app.pay_at_bank_only(&p, "TAMPER-BANK-ONLY", "3.00").await;
    app.recon
        .clone()
        .write_manual_order(platform::WriteManualOrderRequest {
            order_no: "TAMPER-PLATFORM-ONLY".into(),
            email: p.customer.email.clone(),
            signup_id: p.signup_id.clone(),
            amount: "5.00".into(),
            business_date: DAY.into(),
        })
        .await
        .unwrap();
    app.close_day(DAY).await;
    app.bank_recon
        .clone()
        .prepare_day_file(bank::PrepareDayFileRequest {
            kind: bank::DayFileKind::Order as i32,
            business_date: DAY.into(),
        })
        .await
        .unwrap();
    let kept = app
        .bank_config()
        .files_dir()
        .join("recon")
        .join(shared::files::recon::DayFileKind::Order.file_name(DAY.parse().unwrap()));
    let original = std::fs::read_to_string(&kept).unwrap();
    let serial = &bank_only.bank_serial_no;
    assert_eq!(original.matches(serial.as_str()).count(), 1);
    let altered_serial = format!(
        "{}{}",
        &serial[..serial.len() - 1],
        if serial.ends_with('9') { '8' } else { '9' }
    );
    std::fs::write(&kept, original.replace(serial.as_str(), &altered_serial)).unwrap();
    let before = app.platform_orders().await;

    let refused = app.day_recon(DAY, &[platform::ReconFileKind::Order]).await;
    let status = assert_refused(refused, Code::DataLoss, "FILE_CORRUPT");
    assert!(status.message().contains("SHA-256"), "{}", status.message());
    assert_eq!(app.platform_orders().await, before, "no order changed");
    assert!(app.cases_of(DAY).await.is_empty(), "no case opened");
    let runs = app.day_runs(DAY).await;
    assert!(runs.is_empty(), "no run recorded: {runs:?}");

    std::fs::write(&kept, &original).unwrap();
    let report = app
        .day_recon(DAY, &[platform::ReconFileKind::Order])
        .await
        .unwrap();
    assert_eq!(
        found(&report),
        [
            ("TAMPER-BANK-ONLY".to_owned(), C::BankOnly, S::AutoResolved),
            (
                "TAMPER-PLATFORM-ONLY".to_owned(),
                C::PlatformOnly,
                S::AutoResolved
            ),
        ]
    );
}
