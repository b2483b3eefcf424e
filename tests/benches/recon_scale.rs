//! A business day of a million orders through T+1 order reconciliation: the bank builds the
//! order file, the platform downloads it, checks it and compares it with its own orders, with
//! the peak memory of each side: the bank as a process of its own, and this process (the
//! platform node and the client). `cargo bench -p e2e-tests --bench recon_scale` runs 100,000
//! then 1,000,000 orders on SQLite; give other sizes as arguments (`-- 10000 2000000`), and
//! `IBSIM_BENCH_BACKEND=postgres` for PostgreSQL (`IBSIM_TEST_POSTGRES_URL`).
//!
//! The day's payments are written into both databases directly (`TestApp::seed_paid_day`), as
//! if paid and agreed: the figures are the reconciliation's alone. Before each day the bank
//! process is started afresh and this process's peak is started afresh from what it holds then
//! ("base").

// Seconds and MiB for the figures printed; no money is computed with floats here.
#![allow(clippy::float_arithmetic)]

use std::time::Instant;

use e2e_tests::memory::{bench_args, block_on, peak_mib, reset_peak, resident_mib};
use e2e_tests::{Backend, Options, TestApp};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;

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
    let first: chrono::NaiveDate = "2031-11-04".parse().unwrap();
    app.freeze_at("2031-11-04T02:00:00Z").await;
    let p = app.payer("对账规模", "1000.00", "5000.00").await;
    println!(
        "T+1 order reconciliation scale on {backend:?} (bank: process of its own; platform: this process)"
    );
    println!(
        "{:>9} {:>9} {:>8} {:>10} {:>10} {:>13} {:>13} {:>13}",
        "orders",
        "seed s",
        "build s",
        "compare s",
        "orders/s",
        "bank peak MiB",
        "this base MiB",
        "this peak MiB"
    );
    for (run, &n) in sizes.iter().enumerate() {
        let date = first + chrono::Duration::days(run as i64);
        let day = date.to_string();
        let t = Instant::now();
        app.seed_paid_day(&p, &day, &format!("S{run}-"), n).await;
        let seed = t.elapsed();
        app.close_day(&day).await;
        // A fresh bank process, whose clock starts on real time: set it where the platform's is.
        app.bank_process().restart().await;
        let now = shared::clock::start_of(date.succ_opt().unwrap()) + chrono::Duration::seconds(2);
        let mut bank_sim = app.bank_sim.clone();
        for m in [
            sim::set_clock_request::Move::Freeze(true),
            sim::set_clock_request::Move::SetTo(shared::grpc::timestamp(now)),
        ] {
            bank_sim
                .set_clock(sim::SetClockRequest { r#move: Some(m) })
                .await
                .expect("bank clock set");
        }
        reset_peak(std::process::id());
        let base = resident_mib(std::process::id());

        let t = Instant::now();
        let file = app
            .bank_recon
            .clone()
            .prepare_day_file(bank::PrepareDayFileRequest {
                kind: bank::DayFileKind::Order as i32,
                business_date: day.clone(),
            })
            .await
            .expect("the order file is built")
            .into_inner()
            .file
            .unwrap();
        let build = t.elapsed();
        assert_eq!(file.record_count, n as u64);

        let t = Instant::now();
        let report = app
            .day_recon(&day, &[platform::ReconFileKind::Order])
            .await
            .expect("the day is reconciled");
        let compare = t.elapsed();
        let f = &report.files[0];
        assert_eq!((f.matched, f.cases), (n as u64, 0), "a clean day");
        let bank_peak = peak_mib(app.bank_process().pid().expect("running"));
        println!(
            "{n:>9} {:>9.1} {:>8.1} {:>10.1} {:>10.0} {:>13.1} {:>13.1} {:>13.1}",
            seed.as_secs_f64(),
            build.as_secs_f64(),
            compare.as_secs_f64(),
            n as f64 / (build + compare).as_secs_f64(),
            bank_peak,
            base,
            peak_mib(std::process::id()),
        );
    }
}
