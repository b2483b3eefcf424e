//! Batch refunds: the platform pushes a batch file, the bank's job processes it line by line, the
//! platform fetches and applies the result file.

use e2e_tests::{
    Backend, Options, TestApp, assert_refused, batch_file, on_both_backends, sha256_hex,
};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use shared::Money;
use tonic::Code;
use tonic_types::StatusExt;

on_both_backends!(
    a_batch_refunds_orders_and_its_result_answers_every_line,
    a_bad_file_is_refused_whole_and_leaves_nothing,
    a_batch_number_takes_one_file_and_a_repeat_answers_the_first_receipt,
    staff_build_a_batch_from_the_platforms_own_orders,
    a_closed_card_cannot_receive_a_refund,
    each_malformed_amount_fails_its_own_line,
    a_hundred_thousand_line_batch_goes_through,
);

mod scheduled {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_the_job_runs_by_itself_each_interval_of_business_time() {
        super::runs_by_itself(super::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_the_job_runs_by_itself_each_interval_of_business_time() {
        super::runs_by_itself(super::Backend::Postgres).await;
    }
}

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

fn line_of(s: &tonic::Status) -> Option<String> {
    s.get_details_error_info()
        .and_then(|i| i.metadata.get("line").cloned())
}

async fn a_batch_refunds_orders_and_its_result_answers_every_line(app: TestApp) {
    let p = app.payer("退一", "1000.00", "5000.00").await;
    let o = app
        .paid_orders(&p, "RO", &["30.00", "50.00", "20.00"])
        .await;
    let card = p.customer.card_number.clone();
    let before = app.balance(&card).await;
    let file = batch_file(
        "RB-1",
        &[
            ("R1", &o[0], "30.00"),
            ("R2", &o[1], "10.00"),
            ("R3", &o[1], "15.00"),
            ("R4", &o[1], "30.00"),
            ("R5", "NO-SUCH-ORDER", "1.00"),
            ("R6", &o[2], "1.234"),
            ("R2", &o[2], "1.00"),
            ("R7", &o[2], "-5"),
        ],
    );
    let up = app
        .upload(&file)
        .await
        .expect("the platform takes the file");
    assert_eq!(
        up.status,
        platform::PlatformRefundBatchStatus::Accepted as i32
    );
    assert!(up.receipt_no.starts_with("RC"), "{}", up.receipt_no);
    assert_eq!((up.record_count, up.total_amount.as_str()), (8, "87.00"));
    assert_eq!(up.sha256, sha256_hex(&file));
    let at_bank = app.bank_batch("RB-1").await.unwrap();
    assert_eq!(at_bank.status, bank::RefundBatchStatus::Accepted as i32);
    assert_eq!(at_bank.receipt_no, up.receipt_no);
    assert_eq!(
        app.balance(&card).await,
        before,
        "nothing credited before the job runs"
    );
    assert_refused(
        app.fetch_result("RB-1").await,
        Code::FailedPrecondition,
        "RESULT_NOT_READY",
    );

    assert_eq!(app.run_refund_job().await, ["RB-1"]);
    let done = app.bank_batch("RB-1").await.unwrap();
    assert_eq!(done.status, bank::RefundBatchStatus::Done as i32);
    assert_eq!(done.processed_count, 8);
    let r = done.result.unwrap();
    assert_eq!((r.success_count, r.success_amount.as_str()), (3, "55.00"));
    assert_eq!((r.failed_count, r.failed_amount.as_str()), (5, "32.00"));
    assert_eq!(
        app.balance(&card).await,
        before.checked_add(m("55.00")).unwrap()
    );
    assert_eq!(
        app.bank_payment(&o[1]).await.unwrap().refunded_amount,
        "25.00"
    );
    assert!(
        app.run_refund_job().await.is_empty(),
        "a batch is processed once"
    );

    let ready = app.platform_batch("RB-1").await.unwrap();
    assert_eq!(
        ready.status,
        platform::PlatformRefundBatchStatus::ResultReady as i32
    );
    let fetched = app.fetch_result("RB-1").await.unwrap();
    assert_eq!(
        fetched.status,
        platform::PlatformRefundBatchStatus::Done as i32
    );
    let lines = app.refunds_of("RB-1").await;
    let got: Vec<(u64, &str, bool, &str)> = lines
        .iter()
        .map(|l| {
            (
                l.seq,
                l.refund_id.as_str(),
                l.success,
                l.reason_code.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "R1", true, ""),
            (2, "R2", true, ""),
            (3, "R3", true, ""),
            (4, "R4", false, "REFUND_EXCEEDS_PAYMENT"),
            (5, "R5", false, "ORDER_NOT_FOUND"),
            (6, "R6", false, "AMOUNT_INVALID"),
            (7, "R2", false, "REFUND_ID_REUSED"),
            (8, "R7", false, "AMOUNT_INVALID"),
        ]
    );
    assert_eq!(
        lines[3].reason_text,
        "asked 30.00, refundable 25.00 (paid 50.00, refunded 25.00)"
    );
    assert_eq!(app.order(&o[0]).await.refunded_amount, "30.00");
    assert_eq!(app.order(&o[1]).await.refunded_amount, "25.00");
    assert_eq!(app.order(&o[2]).await.refunded_amount, "0.00");

    // Fetching again applies nothing twice.
    app.fetch_result("RB-1").await.unwrap();
    assert_eq!(app.order(&o[1]).await.refunded_amount, "25.00");
    assert_eq!(app.refunds_of("RB-1").await.len(), 8);

    // The platform's copy of the result file is the bank's, byte for byte.
    let from_bank = app.bank_result_file("RB-1").await.unwrap();
    assert_eq!(sha256_hex(&from_bank), r.sha256);
    let mut s = app
        .refunds
        .clone()
        .download_refund_result(platform::DownloadRefundResultRequest {
            batch_no: "RB-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut copy = Vec::new();
    while let Some(c) = s.message().await.unwrap() {
        copy.extend(c.data);
    }
    assert_eq!(copy, from_bank);
    let text = String::from_utf8(copy).unwrap();
    assert!(text.starts_with("H|REFUND-RESULT|1|RB-1|"), "{text}");
    assert!(
        text.contains("D|5|R5|NO-SUCH-ORDER|1.00|F|ORDER_NOT_FOUND|"),
        "{text}"
    );
}

async fn a_bad_file_is_refused_whole_and_leaves_nothing(app: TestApp) {
    let p = app.payer("退二", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "RB", &["10.00"]).await;
    let good = batch_file("BAD", &[("R1", &o[0], "1.00"), ("R2", &o[0], "2.00")]);
    let text = String::from_utf8(good.clone()).unwrap();
    let long = format!(
        "H|REFUND-BATCH|1|BAD|20311105|1|1.00\nD|1|R1|{}|1.00|{}\n",
        o[0],
        "x".repeat(1 << 20)
    );
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "truncated",
            good[..good.len() - 5].to_vec(),
            "FILE_TRUNCATED",
            "3",
        ),
        (
            "wrong count",
            text.replace("|2|3.00", "|3|3.00").into_bytes(),
            "RECORD_COUNT_MISMATCH",
            "1",
        ),
        (
            "wrong total",
            text.replace("|2|3.00", "|2|3.01").into_bytes(),
            "TOTAL_MISMATCH",
            "1",
        ),
        ("a 1 MB line", long.into_bytes(), "LINE_TOO_LONG", "2"),
        (
            "not UTF-8",
            text.replace("R2", "R\u{FFFD}")
                .into_bytes()
                .iter()
                .map(|&b| if b == 0xEF { 0xFF } else { b })
                .collect(),
            "FILE_NOT_UTF8",
            "3",
        ),
        (
            "another batch's number",
            text.replace("|BAD|", "|OTHER|").into_bytes(),
            "BATCH_NO_MISMATCH",
            "1",
        ),
        ("empty", Vec::new(), "FILE_EMPTY", "0"),
    ];
    for (what, file, reason, line) in cases {
        let e = app.push("BAD", &file).await.expect_err(what);
        assert_eq!(
            (e.code(), e.get_details_error_info().unwrap().reason),
            (Code::InvalidArgument, reason.to_owned()),
            "{what}: {}",
            e.message()
        );
        assert_eq!(line_of(&e).as_deref(), Some(line), "{what}");
    }
    let e = app
        .push_to_bank(
            "BAD",
            &good,
            &sha256_hex(b"something else"),
            good.len() as u64,
        )
        .await
        .unwrap_err();
    assert_eq!(e.get_details_error_info().unwrap().reason, "HASH_MISMATCH");
    let e = app
        .push_to_bank("BAD", &good, &sha256_hex(&good), good.len() as u64 + 1)
        .await
        .unwrap_err();
    assert_eq!(e.get_details_error_info().unwrap().reason, "SIZE_MISMATCH");
    assert_refused(
        app.bank_batch("BAD").await,
        Code::NotFound,
        "BATCH_NOT_FOUND",
    );
    assert!(app.run_refund_job().await.is_empty());

    // Through the platform: its own check refuses the file first, and it keeps nothing.
    let e = app
        .upload(text.replace("|2|3.00", "|2|3.01").as_bytes())
        .await
        .unwrap_err();
    assert_eq!(e.get_details_error_info().unwrap().reason, "TOTAL_MISMATCH");
    assert_eq!(
        e.get_details_error_info().unwrap().domain,
        "platform.interbank-sim"
    );
    assert_refused(
        app.platform_batch("BAD").await,
        Code::NotFound,
        "BATCH_NOT_FOUND",
    );
    // Once mended, the same number goes through.
    app.upload(&good).await.expect("the mended file is taken");
}

async fn a_batch_number_takes_one_file_and_a_repeat_answers_the_first_receipt(app: TestApp) {
    let p = app.payer("退三", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "RD", &["10.00"]).await;
    let file = batch_file("DUP", &[("R1", &o[0], "1.00")]);
    let first = app.push("DUP", &file).await.unwrap();
    let again = app.push("DUP", &file).await.unwrap();
    assert_eq!(again.receipt_no, first.receipt_no);
    let other = batch_file("DUP", &[("R1", &o[0], "2.00")]);
    assert_refused(
        app.push("DUP", &other).await,
        Code::AlreadyExists,
        "BATCH_NO_REUSED",
    );
    assert_eq!(app.run_refund_job().await, ["DUP"]);
    assert_eq!(
        app.bank_payment(&o[0]).await.unwrap().refunded_amount,
        "1.00",
        "the batch was processed once"
    );

    // At the platform: the same upload again answers where the batch stands; another file under
    // the number is refused.
    let file = batch_file("DUP2", &[("R9", &o[0], "1.00")]);
    let up = app.upload(&file).await.unwrap();
    assert_eq!(app.upload(&file).await.unwrap().receipt_no, up.receipt_no);
    let other = batch_file("DUP2", &[("R9", &o[0], "3.00")]);
    assert_refused(
        app.upload(&other).await,
        Code::AlreadyExists,
        "BATCH_NO_REUSED",
    );
}

async fn staff_build_a_batch_from_the_platforms_own_orders(app: TestApp) {
    let p = app.payer("退四", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "RC", &["10.00", "20.00"]).await;
    let entry = |order: &str, amount: &str| platform::RefundEntry {
        order_no: order.to_owned(),
        amount: amount.to_owned(),
        refund_id: String::new(),
        reason: "顾客退货".to_owned(),
    };
    let create = |refunds: Vec<platform::RefundEntry>| {
        let mut c = app.refunds.clone();
        async move {
            c.create_refund_batch(platform::CreateRefundBatchRequest {
                batch_no: "LIST-1".into(),
                refunds,
            })
            .await
            .map(|r| r.into_inner().batch.unwrap())
        }
    };
    assert_refused(create(vec![]).await, Code::InvalidArgument, "REFUNDS_EMPTY");
    assert_refused(
        create(vec![entry(&o[0], "1.00"), entry("NOPE", "1.00")]).await,
        Code::NotFound,
        "ORDER_NOT_FOUND",
    );
    assert_refused(
        create(vec![entry(&o[0], "1.001")]).await,
        Code::InvalidArgument,
        "AMOUNT_INVALID",
    );
    let mut bad_reason = entry(&o[0], "1.00");
    bad_reason.reason = "a|b".into();
    assert_refused(
        create(vec![bad_reason]).await,
        Code::InvalidArgument,
        "REASON_INVALID",
    );
    assert_refused(
        app.platform_batch("LIST-1").await,
        Code::NotFound,
        "BATCH_NOT_FOUND",
    );

    let b = create(vec![entry(&o[0], "10.00"), entry(&o[1], "5.50")])
        .await
        .unwrap();
    assert_eq!(
        b.status,
        platform::PlatformRefundBatchStatus::Accepted as i32
    );
    assert_eq!((b.record_count, b.total_amount.as_str()), (2, "15.50"));
    app.run_refund_job().await;
    app.fetch_result("LIST-1").await.unwrap();
    let lines = app.refunds_of("LIST-1").await;
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.refund_id.as_str(), l.success))
            .collect::<Vec<_>>(),
        [("LIST-1-1", true), ("LIST-1-2", true)]
    );
    assert_eq!(app.order(&o[1]).await.refunded_amount, "5.50");
}

async fn a_closed_card_cannot_receive_a_refund(app: TestApp) {
    let p = app.payer("退五", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "RX", &["10.00"]).await;
    app.push("CLOSED", &batch_file("CLOSED", &[("R1", &o[0], "10.00")]))
        .await
        .unwrap();
    app.branch
        .clone()
        .set_card_status(bank::SetCardStatusRequest {
            card_number: p.customer.card_number.clone(),
            status: bank::CardStatus::Closed as i32,
        })
        .await
        .expect("the teller closes the card");
    let before = app.balance(&p.customer.card_number).await;
    app.run_refund_job().await;
    let r = app.bank_batch("CLOSED").await.unwrap().result.unwrap();
    assert_eq!((r.success_count, r.failed_count), (0, 1));
    assert_eq!(app.balance(&p.customer.card_number).await, before);
    let text = String::from_utf8(app.bank_result_file("CLOSED").await.unwrap()).unwrap();
    assert!(text.contains("|F|CARD_CLOSED|"), "{text}");
}

async fn each_malformed_amount_fails_its_own_line(app: TestApp) {
    let p = app.payer("退七", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "MA", &["10.00"]).await;
    let before = app.balance(&p.customer.card_number).await;
    let amounts = ["1.234", "-5", "abc", "", "0.00", "5000.01", "2.50"];
    let ids: Vec<String> = (1..=amounts.len()).map(|i| format!("MA{i}")).collect();
    let lines: Vec<(&str, &str, &str)> = ids
        .iter()
        .zip(amounts)
        .map(|(id, a)| (id.as_str(), o[0].as_str(), a))
        .collect();
    let up = app.upload(&batch_file("MA-1", &lines)).await.unwrap();
    assert_eq!(up.total_amount, "2.50", "only valid amounts add up");
    assert_eq!(app.run_refund_job().await, ["MA-1"]);
    app.fetch_result("MA-1").await.unwrap();
    let got: Vec<(String, bool, String)> = app
        .refunds_of("MA-1")
        .await
        .into_iter()
        .map(|l| (l.amount, l.success, l.reason_code))
        .collect();
    let want: Vec<(String, bool, String)> = amounts
        .iter()
        .map(|a| {
            let ok = *a == "2.50";
            let why = if ok { "" } else { "AMOUNT_INVALID" };
            (a.to_string(), ok, why.to_owned())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        before.checked_add(m("2.50")).unwrap()
    );
}

async fn a_hundred_thousand_line_batch_goes_through(app: TestApp) {
    const LINES: usize = 100_000;
    let p = app.payer("退六", "2000.00", "5000.00").await;
    let o = app.paid_orders(&p, "BIG", &["1000.00"]).await;
    let before = app.balance(&p.customer.card_number).await;
    // 100,000 refunds of 0.01 refund the 1000.00 order exactly; one more would fail.
    let ids: Vec<String> = (1..=LINES + 1).map(|i| format!("B{i}")).collect();
    let lines: Vec<(&str, &str, &str)> = ids
        .iter()
        .map(|id| (id.as_str(), o[0].as_str(), "0.01"))
        .collect();
    let file = batch_file("BIG-1", &lines);
    let up = app.upload(&file).await.unwrap();
    assert_eq!(up.record_count, LINES as u64 + 1);
    assert_eq!(app.run_refund_job().await, ["BIG-1"]);
    let r = app.bank_batch("BIG-1").await.unwrap().result.unwrap();
    assert_eq!(
        (r.success_count, r.success_amount.as_str()),
        (LINES as u64, "1000.00")
    );
    assert_eq!(r.failed_count, 1);
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        before.checked_add(m("1000.00")).unwrap()
    );
    let done = app.fetch_result("BIG-1").await.unwrap();
    assert_eq!(
        done.status,
        platform::PlatformRefundBatchStatus::Done as i32
    );
    assert_eq!(app.order(&o[0]).await.refunded_amount, "1000.00");
    let failed = app
        .refunds
        .clone()
        .list_refunds(platform::ListRefundsRequest {
            batch_no: "BIG-1".into(),
            failed_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .refunds;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].seq, failed[0].reason_code.as_str()),
        (LINES as u64 + 1, "REFUND_EXCEEDS_PAYMENT")
    );
}

/// The bank's job every 300 s of business time, both clocks frozen: only moving the clock makes
/// the job due, and nobody calls RunRefundJob.
async fn runs_by_itself(backend: Backend) {
    use proto::sim::v1::set_clock_request::Move;
    let mut opts = Options {
        frozen_at: Some("2031-11-05T02:00:00Z".parse().unwrap()),
        ..Options::default()
    };
    opts.refund_job.interval_secs = 300;
    let Some(app) = TestApp::spawn_with(backend, opts).await else {
        return;
    };
    let p = app.payer("定时", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "SJ", &["40.00"]).await;
    let before = app.balance(&p.customer.card_number).await;
    app.upload(&batch_file("SJ-1", &[("S1", &o[0], "15.00")]))
        .await
        .unwrap();

    app.clock(Move::AdvanceMs(299_000)).await;
    assert_eq!(
        app.bank_batch("SJ-1").await.unwrap().status,
        bank::RefundBatchStatus::Accepted as i32,
        "not due before 300 s of business time"
    );
    app.clock(Move::AdvanceMs(1_000)).await;
    // Wait on the batch's state: each look is one query; the scheduler looks every 250 ms.
    let done = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let b = app.bank_batch("SJ-1").await.unwrap();
            if b.status == bank::RefundBatchStatus::Done as i32 {
                break b;
            }
        }
    })
    .await
    .expect("the scheduled job finishes the batch within 20 s");
    assert_eq!(done.result.unwrap().success_amount, "15.00");
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        before.checked_add(m("15.00")).unwrap()
    );
    let ready = app.platform_batch("SJ-1").await.unwrap();
    assert_eq!(
        ready.status,
        platform::PlatformRefundBatchStatus::ResultReady as i32
    );
}

/// While the job writes a batch's lines, PostgreSQL's planner keeps up with the table: never
/// analyzed, a table of 364,500 lines was planned as a handful and each chunk's lookup of its
/// refund ids scanned all of it (100 ms a chunk, and growing), where the index answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_knows_the_refund_lines_the_job_wrote() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let p = app.payer("退统", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "RS", &["10.00", "20.00"]).await;
    app.push(
        "STATS",
        &batch_file("STATS", &[("S1", &o[0], "1.00"), ("S2", &o[1], "2.00")]),
    )
    .await
    .unwrap();
    app.run_refund_job().await;
    // pg_class.reltuples: -1 until the table is first analyzed (or vacuumed).
    let lines = app
        .bank_ints(
            "SELECT CAST(reltuples AS BIGINT) FROM pg_class WHERE relname = $1",
            "refund_lines",
        )
        .await;
    assert!(
        lines[0] >= 2,
        "the bank's planner thinks refund_lines holds {lines:?} rows"
    );
}

/// Two processes of the bank on one PostgreSQL database, recording lines that use one refund id
/// at the same time. The test's own transaction stands for the other process: it records a line
/// of another batch with the id and holds it uncommitted while the job decides its chunk (the id
/// unused, as it then stands), then commits once the job's insert waits for it. The job's line
/// then meets the other in the unique index of used ids. It is decided again and fails
/// REFUND_ID_REUSED, the card is not credited, and the job finishes the batch: a file the caller
/// sent is answered line by line, never with an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_refund_id_recorded_meanwhile_by_another_process_fails_its_line_not_the_job() {
    use sqlx::Connection as _;
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let p = app.payer("退重", "1000.00", "5000.00").await;
    let o = app.paid_orders(&p, "RD", &["10.00"]).await;
    app.push("DUPID", &batch_file("DUPID", &[("DUP-1", &o[0], "1.00")]))
        .await
        .unwrap();
    let card = p.customer.card_number.clone();
    let before = app.balance(&card).await;

    let mut other = app.bank_database().await;
    let mut held = other.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO refund_lines (batch_no, seq, refund_id, order_no, amount_text, amount_fen, status, card_number, business_date, processed_at_ms) \
         VALUES ('OTHER', 1, 'DUP-1', $1, '1.00', 100, 'SUCCESS', $2, '2031-11-05', 0)",
    )
    .bind(&o[0])
    .bind(&card)
    .execute(&mut *held)
    .await
    .unwrap();
    let mut jobs = app.bank_jobs.clone();
    let job = tokio::spawn(async move { jobs.run_refund_job(sim::RunRefundJobRequest {}).await });
    // The job's insert waits for the held line: a backend of the bank's database waits on a lock.
    // Asked again at once each time: each question is a round trip, and no time is guessed.
    let mut watch = app.bank_database().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watch)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && !job.is_finished(),
            "the job never waited for the held line"
        );
    }
    held.commit().await.unwrap();

    let finished = job
        .await
        .unwrap()
        .expect("the job runs, not an internal error")
        .into_inner()
        .finished_batch_nos;
    assert_eq!(finished, ["DUPID"]);
    let done = app.bank_batch("DUPID").await.unwrap();
    let result = done.result.unwrap();
    assert_eq!((result.success_count, result.failed_count), (0, 1));
    let reasons = app
        .bank_texts(
            "SELECT reason_code FROM refund_lines WHERE batch_no = $1",
            "DUPID",
        )
        .await;
    assert_eq!(reasons, ["REFUND_ID_REUSED"]);
    assert_eq!(
        app.balance(&card).await,
        before,
        "the card was not credited"
    );
}
