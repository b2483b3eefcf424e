//! The bank as a real process of its own: killed with SIGKILL in the middle of a batch and
//! started again, and two bank processes sharing one PostgreSQL database.

use std::collections::BTreeSet;

use e2e_tests::{Backend, Options, TestApp, batch_file};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use proto::sim::v1::batch_job_service_client::BatchJobServiceClient;
use shared::Money;

/// The bank as a process, a batch job in chunks of 10 lines with a pause after each, so that a
/// batch of a few hundred lines stays in PROCESSING for seconds.
fn bank_as_process() -> Options {
    let mut o = Options {
        bank_exe: Some(env!("CARGO_BIN_EXE_e2e-bank-node").into()),
        ..Options::default()
    };
    o.refund_job.chunk_lines = 10;
    o.refund_job.pause_ms = 100;
    o
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bank_killed_mid_batch_finishes_it_after_restart() {
        super::killed_mid_batch(super::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bank_killed_mid_batch_finishes_it_after_restart() {
        super::killed_mid_batch(super::Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_bank_processes_never_process_one_batch_twice() {
        super::two_banks(super::Backend::Postgres).await;
    }
}

async fn killed_mid_batch(backend: Backend) {
    const LINES: usize = 300;
    let Some(mut app) = TestApp::spawn_with(backend, bank_as_process()).await else {
        return;
    };
    let p = app.payer("崩一", "1000.00", "5000.00").await;
    let o = app
        .paid_orders(&p, "KO", &["100.00", "100.00", "100.00"])
        .await;
    let card = p.customer.card_number.clone();
    let before = app.balance(&card).await;
    // 0.50 a line over three orders; every 25th line names an order that does not exist.
    let ids: Vec<String> = (1..=LINES).map(|i| format!("K{i}")).collect();
    let lines: Vec<(&str, &str, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let order = if (i + 1) % 25 == 0 {
                "NO-SUCH-ORDER"
            } else {
                o[i % 3].as_str()
            };
            (id.as_str(), order, "0.50")
        })
        .collect();
    let good = lines.iter().filter(|l| l.1 != "NO-SUCH-ORDER").count();
    app.upload(&batch_file("KB-1", &lines)).await.unwrap();

    // The job runs in the background (its call dies with the bank); wait until it is part-way.
    let mut jobs = app.bank_jobs.clone();
    let run = tokio::spawn(async move { jobs.run_refund_job(sim::RunRefundJobRequest {}).await });
    let seen = loop {
        let b = app.bank_batch("KB-1").await.unwrap();
        assert_ne!(b.status, bank::RefundBatchStatus::Done as i32, "too late");
        if b.processed_count >= 30 {
            assert_eq!(b.status, bank::RefundBatchStatus::Processing as i32);
            break b.processed_count;
        }
    };
    app.bank_process().kill();
    assert!(run.await.unwrap().is_err(), "the job's call died with it");

    app.bank_process().restart().await;
    let resumed = app.bank_batch("KB-1").await.unwrap();
    assert_eq!(
        resumed.status,
        bank::RefundBatchStatus::Processing as i32,
        "the batch waits half done"
    );
    assert!(
        resumed.processed_count >= seen && resumed.processed_count < LINES as u64,
        "the cursor kept what was committed: saw {seen}, now {}",
        resumed.processed_count
    );
    assert_eq!(app.run_refund_job().await, ["KB-1"]);

    let done = app.bank_batch("KB-1").await.unwrap();
    let r = done.result.unwrap();
    let credited = Money::from_fen(50 * good as i64).unwrap();
    assert_eq!(
        (r.success_count, r.success_amount.as_str()),
        (good as u64, credited.to_string().as_str())
    );
    assert_eq!(r.failed_count, (LINES - good) as u64);
    assert_eq!(
        app.balance(&card).await,
        before.checked_add(credited).unwrap(),
        "every good line credited exactly once"
    );
    let recorded = app
        .bank_ints(
            "SELECT COUNT(DISTINCT seq) FROM refund_lines WHERE batch_no = $1",
            "KB-1",
        )
        .await;
    assert_eq!(recorded, [LINES as i64], "every line recorded once");

    app.fetch_result("KB-1").await.unwrap();
    let answered: Vec<u64> = app.refunds_of("KB-1").await.iter().map(|l| l.seq).collect();
    assert_eq!(
        answered,
        (1..=LINES as u64).collect::<Vec<_>>(),
        "none skipped"
    );
    for (i, order) in o.iter().enumerate() {
        let n = lines.iter().filter(|l| l.1 == order.as_str()).count();
        assert_eq!(
            app.order(order).await.refunded_amount,
            Money::from_fen(50 * n as i64).unwrap().to_string(),
            "order {i}"
        );
    }
}

async fn two_banks(backend: Backend) {
    const BATCHES: usize = 6;
    const LINES: usize = 40;
    let Some(app) = TestApp::spawn_with(backend, bank_as_process()).await else {
        return;
    };
    let p = app.payer("双行", "1000.00", "5000.00").await;
    let o = app
        .paid_orders(&p, "TB", &["300.00", "300.00", "300.00"])
        .await;
    let card = p.customer.card_number.clone();
    let before = app.balance(&card).await;
    let mut all = BTreeSet::new();
    for b in 0..BATCHES {
        let no = format!("TB-{b}");
        let ids: Vec<String> = (0..LINES).map(|i| format!("T{b}-{i}")).collect();
        let lines: Vec<(&str, &str, &str)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), o[i % 3].as_str(), "1.00"))
            .collect();
        app.upload(&batch_file(&no, &lines)).await.unwrap();
        all.insert(no);
    }

    // A second process of the same bank on the same database and file store.
    let second = app.another_bank().await;
    let mut a = app.bank_jobs.clone();
    let mut b = BatchJobServiceClient::new(second.channel());
    let (ra, rb) = tokio::join!(
        a.run_refund_job(sim::RunRefundJobRequest {}),
        b.run_refund_job(sim::RunRefundJobRequest {}),
    );
    let ra = ra
        .expect("the first bank's job runs")
        .into_inner()
        .finished_batch_nos;
    let rb = rb
        .expect("the second bank's job runs")
        .into_inner()
        .finished_batch_nos;
    eprintln!("first bank finished {ra:?}, second bank finished {rb:?}");
    let (sa, sb): (BTreeSet<_>, BTreeSet<_>) = (ra.into_iter().collect(), rb.into_iter().collect());
    assert!(
        sa.is_disjoint(&sb),
        "a batch finished by both: {sa:?} {sb:?}"
    );
    assert_eq!(&sa | &sb, all, "every batch finished");

    for no in &all {
        let done = app.bank_batch(no).await.unwrap();
        assert_eq!(done.status, bank::RefundBatchStatus::Done as i32);
        assert_eq!(done.result.unwrap().success_count, LINES as u64);
        let workers = app
            .bank_ints(
                "SELECT COUNT(DISTINCT worker) FROM refund_lines WHERE batch_no = $1",
                no,
            )
            .await;
        assert_eq!(workers, [1], "batch {no}: every line by one process");
    }
    let total = Money::from_fen(100 * (BATCHES * LINES) as i64).unwrap();
    assert_eq!(
        app.balance(&card).await,
        before.checked_add(total).unwrap(),
        "each line credited once"
    );
    for no in &all {
        let fetched = app.fetch_result(no).await.unwrap();
        assert_eq!(
            fetched.status,
            platform::PlatformRefundBatchStatus::Done as i32
        );
    }
}
