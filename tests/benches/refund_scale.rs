//! A refund batch of a million lines through push, processing and result download, with the peak
//! memory of each side: the bank as a process of its own, and this process (the platform node and
//! the client). `cargo bench -p e2e-tests --bench refund_scale` runs 100,000 then 1,000,000
//! lines on SQLite; give other sizes as arguments (`-- 10000 2000000`), and
//! `IBSIM_BENCH_BACKEND=postgres` for PostgreSQL (`IBSIM_TEST_POSTGRES_URL`).
//!
//! Peak memory is the kernel's high-water mark (VmHWM). Setting up the payers runs argon2
//! password hashing (19 MiB a hash), so before each batch the bank process is started afresh,
//! and this process's peak is started afresh from what it holds then ("base"): each peak is
//! that batch's push, processing, fetch and download.

// Seconds and MiB for the figures printed; no money is computed with floats here.
#![allow(clippy::float_arithmetic)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e_tests::memory::{bench_args, block_on, peak_mib, reset_peak, resident_mib};
use e2e_tests::{Backend, Options, TestApp};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;

/// Lines of 0.01 per 5000.00 order.
const LINES_PER_ORDER: usize = 500_000;

fn main() {
    let (backend, sizes) = bench_args(&[100_000, 1_000_000]);
    block_on(run(backend, &sizes));
}

async fn run(backend: Backend, sizes: &[usize]) {
    let opts = Options {
        bank_exe: Some(env!("CARGO_BIN_EXE_e2e-bank-node").into()),
        ..Options::default()
    };
    let mut app = TestApp::spawn_with(backend, opts)
        .await
        .expect("PostgreSQL reachable");
    let dir = tempfile::tempdir().expect("temporary directory");
    println!(
        "refund batch scale on {backend:?} (bank: process of its own; platform: this process)"
    );
    println!(
        "{:>9} {:>9} {:>8} {:>10} {:>8} {:>9} {:>13} {:>13} {:>13} {:>13}",
        "lines",
        "file MiB",
        "push s",
        "process s",
        "fetch s",
        "result s",
        "bank push MiB",
        "bank peak MiB",
        "this base MiB",
        "this peak MiB"
    );
    for (run, &n) in sizes.iter().enumerate() {
        let orders = n.div_ceil(LINES_PER_ORDER);
        let mut order_nos = Vec::new();
        for o in 0..orders {
            let p = app
                .payer(&format!("规模{run}{o}"), "5000.00", "5000.00")
                .await;
            order_nos.extend(
                app.paid_orders(&p, &format!("SC{run}-{o}"), &["5000.00"])
                    .await,
            );
        }
        let batch_no = format!("SCALE-{run}");
        let path = dir.path().join(format!("{batch_no}.txt"));
        let size = write_batch(&path, &batch_no, n, &order_nos);
        // From here on the peaks are the batch's alone: a fresh bank process (setting up the
        // payers ran argon2, whose memory the allocator keeps), and this process's peak started
        // afresh from what it holds now.
        app.bank_process().restart().await;
        reset_peak(std::process::id());
        let base = resident_mib(std::process::id());

        let t = Instant::now();
        let up = app.upload_file(&path).await.expect("the batch is accepted");
        assert_eq!(up.record_count, n as u64);
        let push = t.elapsed();
        let bank_push_peak = peak_mib(app.bank_process().pid().expect("running"));

        let t = Instant::now();
        let mut jobs = app.bank_jobs.clone();
        // The call may outlive the server's request limit; the job goes on, so watch the batch.
        tokio::spawn(async move { jobs.run_refund_job(sim::RunRefundJobRequest {}).await });
        let done = loop {
            let b = app.bank_batch(&batch_no).await.expect("the batch");
            if b.status == bank::RefundBatchStatus::Done as i32 {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let process = t.elapsed();
        let r = done.result.expect("a result");
        assert_eq!((r.success_count, r.failed_count), (n as u64, 0));
        let bank_peak = peak_mib(app.bank_process().pid().expect("running"));

        let t = Instant::now();
        let mut ops = app.refunds.clone();
        let no = batch_no.clone();
        // Likewise the fetch: watch the platform's batch.
        tokio::spawn(async move {
            ops.fetch_refund_result(platform::FetchRefundResultRequest { batch_no: no })
                .await
        });
        while app
            .platform_batch(&batch_no)
            .await
            .expect("the batch")
            .status
            != platform::PlatformRefundBatchStatus::Done as i32
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let fetch = t.elapsed();

        let t = Instant::now();
        let out = dir.path().join(format!("{batch_no}.result.txt"));
        let got = download(&app, &batch_no, &out).await;
        assert_eq!(got, r.size_bytes);
        let result = t.elapsed();

        println!(
            "{n:>9} {:>9.1} {:>8.1} {:>10.1} {:>8.1} {:>9.1} {:>13.1} {:>13.1} {:>13.1} {:>13.1}",
            size as f64 / 1048576.0,
            push.as_secs_f64(),
            process.as_secs_f64(),
            fetch.as_secs_f64(),
            result.as_secs_f64(),
            bank_push_peak,
            bank_peak,
            base,
            peak_mib(std::process::id()),
        );
        std::fs::remove_file(&path).ok();
        std::fs::remove_file(&out).ok();
    }
}

/// Writes a batch of `n` refunds of 0.01, round robin over `orders`; its size in bytes.
fn write_batch(path: &Path, batch_no: &str, n: usize, orders: &[String]) -> u64 {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("batch file"));
    let total = shared::Money::from_fen(n as i64).expect("a total");
    writeln!(w, "H|REFUND-BATCH|1|{batch_no}|20311105|{n}|{total}").unwrap();
    for i in 1..=n {
        let order = &orders[(i - 1) % orders.len()];
        writeln!(w, "D|{i}|{batch_no}-{i}|{order}|0.01|scale").unwrap();
    }
    w.into_inner().expect("flushed").sync_all().ok();
    std::fs::metadata(path).expect("written").len()
}

/// Downloads a batch's result file from the platform to `out`, chunk by chunk; its size.
async fn download(app: &TestApp, batch_no: &str, out: &Path) -> u64 {
    let mut s = app
        .refunds
        .clone()
        .download_refund_result(platform::DownloadRefundResultRequest {
            batch_no: batch_no.to_owned(),
        })
        .await
        .expect("download")
        .into_inner();
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).expect("result file"));
    let mut n = 0;
    while let Some(c) = s.message().await.expect("a chunk") {
        n += c.data.len() as u64;
        w.write_all(&c.data).unwrap();
    }
    n
}
