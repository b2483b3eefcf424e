//! Parts 3 and 4 of `ibsim bench`, and part 5's processes: the node binaries run as processes
//! of their own, so each node's memory is its own (the kernel's high-water mark, VmHWM). Before
//! each measured step both are started afresh on their data, so a peak is that step's alone and
//! not the seeding's (argon2 takes 19 MiB a hash, which the allocator keeps).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use pair::process::{NodeProcess, free_port};

use super::procfs::status_kib;
use super::{Startup, micros};
use proto::bank::v1 as bank;
use proto::bank::v1::bank_recon_service_client::BankReconServiceClient;
use proto::bank::v1::bank_refund_service_client::BankRefundServiceClient;
use proto::platform::v1 as platform;
use proto::platform::v1::recon_ops_service_client::ReconOpsServiceClient;
use proto::platform::v1::refund_ops_service_client::RefundOpsServiceClient;
use proto::sim::v1 as sim;
use proto::sim::v1::batch_job_service_client::BatchJobServiceClient;
use proto::sim::v1::simulator_service_client::SimulatorServiceClient;
use serde::Serialize;
use tonic::transport::Channel;

/// How often the parts look at a batch's status while a job runs (the job is not an event this
/// program can wait on: its RPC may end before the job does).
const POLL: Duration = Duration::from_millis(20);

/// The business time the reconciliation part starts at (frozen): a morning in China time.
const RECON_START: &str = "2031-11-04T02:00:00Z";

/// Orders a seed call writes at most in this part, so each call stays well inside the nodes'
/// 30 s request limit.
const SEED_CALL_MAX: u32 = 250_000;

/// Both node binaries as processes on one pair of databases.
pub(super) struct Procs {
    dir: PathBuf,
    bank: NodeProcess,
    platform: NodeProcess,
    /// Where each serves its metrics, when asked to (bank, platform).
    pub metrics: (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>),
}

/// The processes' log level: their logs are not read, and writing them costs.
const QUIET: (&str, &str) = ("RUST_LOG", "warn");

impl Procs {
    /// Nodes with their data under `dir`, on `databases` (bank, platform) or SQLite files there;
    /// not started yet.
    pub(super) fn new(
        bin_dir: &Path,
        dir: PathBuf,
        databases: Option<(String, String)>,
    ) -> anyhow::Result<Procs> {
        Self::configured(bin_dir, dir, databases, |_, _| Ok(()))
    }

    /// Like [`Procs::new`], with both configurations changed by `tune` first.
    pub(super) fn configured(
        bin_dir: &Path,
        dir: PathBuf,
        databases: Option<(String, String)>,
        tune: impl FnOnce(&mut bank_node::Config, &mut platform_node::Config) -> anyhow::Result<()>,
    ) -> anyhow::Result<Procs> {
        let (bank_db, platform_db) = databases.unzip();
        let (bank_addr, platform_addr) = (free_port()?, free_port()?);
        let mut bank = bank_node::Config {
            listen: bank_addr,
            platform_url: format!("http://{platform_addr}"),
            database_url: bank_db,
            data_dir: dir.join("bank"),
            ..Default::default()
        };
        bank.refund_job.interval_secs = 0;
        let mut platform = platform_node::Config {
            listen: platform_addr,
            bank_url: format!("http://{bank_addr}"),
            database_url: platform_db,
            data_dir: dir.join("platform"),
            ..Default::default()
        };
        platform.recon.interval_secs = 0;
        tune(&mut bank, &mut platform)?;
        Ok(Procs {
            bank: NodeProcess::new(bin_dir.join("bank-node"), &bank, &[], &[QUIET])?,
            platform: NodeProcess::new(bin_dir.join("platform-node"), &platform, &[], &[QUIET])?,
            metrics: (bank.metrics_listen, platform.metrics_listen),
            dir,
        })
    }

    /// Starts both and waits until both answer SERVING; the time that took.
    pub(super) async fn start(&mut self) -> anyhow::Result<Duration> {
        self.stop();
        let started = Instant::now();
        self.bank.spawn()?;
        self.platform.spawn()?;
        self.bank.ready().await?;
        self.platform.ready().await?;
        Ok(started.elapsed())
    }

    /// Stops both (killed: the parts measure, they do not need a clean shutdown).
    pub(super) fn stop(&mut self) {
        self.bank.kill();
        self.platform.kill();
    }

    /// Their URLs (bank, platform).
    pub(super) fn urls(&self) -> (String, String) {
        (self.bank.url(), self.platform.url())
    }

    /// Their process ids while they run (bank, platform).
    pub(super) fn pids(&self) -> (Option<u32>, Option<u32>) {
        (self.bank.pid(), self.platform.pid())
    }

    /// Channels to both.
    pub(super) async fn channels(&self) -> anyhow::Result<(Channel, Channel)> {
        Ok((
            crate::connect(&self.bank.url()).await?,
            crate::connect(&self.platform.url()).await?,
        ))
    }

    /// A `/proc/<pid>/status` figure of both, KiB (bank, platform).
    pub(super) fn status_kib(&self, key: &str) -> (u64, u64) {
        let of = |p: &NodeProcess| p.pid().map_or(0, |pid| status_kib(pid, key));
        (of(&self.bank), of(&self.platform))
    }
}

/// One size of part 3 or 4.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRun {
    /// Refund lines, or orders of the day.
    pub records: u64,
    /// Lines or orders a second, end to end.
    pub per_sec: u64,
    /// Each step's time, milliseconds, in order (part 3: push, process, fetch, download; part
    /// 4: build and compare, one step since the platform streams the file while it is built).
    pub steps_ms: Vec<(String, u64)>,
    /// The bank process's peak resident memory over the steps, KiB.
    pub bank_peak_kib: u64,
    /// The platform process's peak resident memory over the steps, KiB.
    pub platform_peak_kib: u64,
}

impl ScaleRun {
    fn new(records: u64, steps: Vec<(&str, Duration)>, procs: &Procs) -> ScaleRun {
        let total: Duration = steps.iter().map(|s| s.1).sum();
        let (bank_peak_kib, platform_peak_kib) = procs.status_kib("VmHWM:");
        ScaleRun {
            records,
            per_sec: records * 1_000_000 / super::micros(total).max(1),
            steps_ms: steps
                .into_iter()
                .map(|(n, d)| (n.to_owned(), super::micros(d) / 1000))
                .collect(),
            bank_peak_kib,
            platform_peak_kib,
        }
    }
}

/// Part 3: for each size, a batch of that many refund lines of 0.01 over seeded orders, pushed,
/// processed by the bank's job, its result fetched by the platform and downloaded.
pub(super) async fn refunds(procs: &mut Procs, sizes: &[u64]) -> anyhow::Result<Vec<ScaleRun>> {
    procs.start().await?;
    let (bank_ch, platform_ch) = procs.channels().await?;
    let payer = super::seed_payers(bank_ch, platform_ch, 1).await?.remove(0);
    let mut runs = Vec::new();
    for (run, &n) in sizes.iter().enumerate() {
        let (batch_no, file) = seed_refund_batch(procs, &payer, run, n).await?;
        procs.start().await?;
        let (bank_ch, platform_ch) = procs.channels().await?;
        let mut ops = RefundOpsServiceClient::new(platform_ch);

        super::progress(&format!("3. batch refund of {n} lines: push"));
        let t = Instant::now();
        let up = crate::transfer::upload_batch(&mut ops, &file, |_, _| {})
            .await
            .context("pushing the batch")?
            .context("the batch is accepted")?;
        anyhow::ensure!(
            up.record_count == n,
            "the platform took {} lines",
            up.record_count
        );
        let push = t.elapsed();

        super::progress(&format!("3. batch refund of {n} lines: process"));
        let t = Instant::now();
        let done = run_job_until_done(bank_ch, &batch_no).await?;
        let process = t.elapsed();
        let result = done.result.context("the bank's result")?;
        anyhow::ensure!(
            (result.success_count, result.failed_count) == (n, 0),
            "the bank refunded {} lines and failed {}",
            result.success_count,
            result.failed_count
        );

        super::progress(&format!("3. batch refund of {n} lines: fetch and download"));
        let t = Instant::now();
        fetch_until_done(&ops, &batch_no).await?;
        let fetched = t.elapsed();

        let t = Instant::now();
        let out = procs.dir.join(format!("{batch_no}.result.txt"));
        let size = crate::transfer::save_result(&mut ops, &batch_no, &out)
            .await
            .context("downloading the result")?;
        anyhow::ensure!(size == result.size_bytes, "downloaded {size} bytes");
        let download = t.elapsed();

        runs.push(ScaleRun::new(
            n,
            vec![
                ("push", push),
                ("process", process),
                ("fetch", fetched),
                ("download", download),
            ],
            procs,
        ));
        let _ = (std::fs::remove_file(&file), std::fs::remove_file(&out));
    }
    procs.stop();
    Ok(runs)
}

/// Seeds the `n` orders a batch of `n` refund lines refunds, one line each as in a merchant's
/// day of refunds, and writes the batch file; its number and file.
async fn seed_refund_batch(
    procs: &Procs,
    payer: &super::Payer,
    run: usize,
    n: u64,
) -> anyhow::Result<(String, PathBuf)> {
    let (bank_ch, platform_ch) = procs.channels().await?;
    let orders = n;
    let prefix = format!("RF{run}-");
    super::progress(&format!(
        "3. batch refund of {n} lines: seeding {orders} orders"
    ));
    seed_orders(&bank_ch, &platform_ch, &payer.signup_id, &prefix, orders).await?;
    let batch_no = format!("BENCH-RF{run}");
    let file = procs.dir.join(format!("{batch_no}.txt"));
    write_batch(&file, &batch_no, n, &prefix)?;
    Ok((batch_no, file))
}

/// Runs the bank's refund job and waits until the batch `batch_no` is DONE (the job runs on in
/// the bank if its call ends at the request limit: the batch is watched); the bank's batch.
async fn run_job_until_done(bank_ch: Channel, batch_no: &str) -> anyhow::Result<bank::RefundBatch> {
    let mut jobs = BatchJobServiceClient::new(bank_ch.clone());
    // The job runs on in the bank if its call ends at the request limit: watch the batch.
    let job = tokio::spawn(async move { jobs.run_refund_job(sim::RunRefundJobRequest {}).await });
    let mut bank_refunds = BankRefundServiceClient::new(bank_ch);
    let done = loop {
        let b = bank_refunds
            .get_refund_batch(bank::GetRefundBatchRequest {
                batch_no: batch_no.to_owned(),
            })
            .await
            .context("the bank's batch")?
            .into_inner()
            .batch
            .context("the bank's batch")?;
        if b.status == bank::RefundBatchStatus::Done as i32 {
            break b;
        }
        tokio::time::sleep(POLL).await;
    };
    job.abort();
    Ok(done)
}

/// Has the platform fetch the batch's result and waits until the batch is DONE there.
async fn fetch_until_done(
    ops: &RefundOpsServiceClient<Channel>,
    batch_no: &str,
) -> anyhow::Result<()> {
    let (mut fetcher, mut ops) = (ops.clone(), ops.clone());
    let no = batch_no.to_owned();
    let fetch = tokio::spawn(async move {
        fetcher
            .fetch_refund_result(platform::FetchRefundResultRequest { batch_no: no })
            .await
    });
    loop {
        let b = ops
            .get_refund_batch(platform::GetRefundBatchRequest {
                batch_no: batch_no.to_owned(),
            })
            .await
            .context("the platform's batch")?
            .into_inner()
            .batch
            .context("the platform's batch")?;
        if b.status == platform::PlatformRefundBatchStatus::Done as i32 {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    fetch.abort();
    Ok(())
}

/// Writes `count` paid orders `prefix…` of a sign-up on both nodes, in calls of at most
/// [`SEED_CALL_MAX`].
async fn seed_orders(
    bank_ch: &Channel,
    platform_ch: &Channel,
    signup_id: &str,
    prefix: &str,
    count: u64,
) -> anyhow::Result<()> {
    let mut left = u32::try_from(count).context("too many orders")?;
    let mut part = 0;
    while left > 0 {
        let n = left.min(SEED_CALL_MAX);
        let req = sim::SeedPaidOrdersRequest {
            signup_id: signup_id.to_owned(),
            business_date: String::new(),
            order_prefix: format!("{prefix}{part}-"),
            count: n,
        };
        for ch in [bank_ch, platform_ch] {
            SimulatorServiceClient::new(ch.clone())
                .seed_paid_orders(req.clone())
                .await
                .context("seeding paid orders")?;
        }
        left -= n;
        part += 1;
    }
    Ok(())
}

/// The order number of seeded order `i` of a [`seed_orders`] call with `prefix`.
fn seeded_order_no(prefix: &str, i: u64) -> String {
    let per_call = u64::from(SEED_CALL_MAX);
    format!("{prefix}{}-{:08}", i / per_call, i % per_call)
}

/// Writes a batch of `n` refunds of 0.01 over the orders seeded with `prefix`, line i refunding
/// order i - 1 (0.01 × i paid): every line credits an order of its own.
fn write_batch(path: &Path, batch_no: &str, n: u64, prefix: &str) -> anyhow::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let total = shared::Money::from_fen(i64::try_from(n)?).context("a total")?;
    let date = shared::clock::business_date_of(chrono::Utc::now()).format("%Y%m%d");
    writeln!(w, "H|REFUND-BATCH|1|{batch_no}|{date}|{n}|{total}")?;
    for seq in 1..=n {
        let order_no = seeded_order_no(prefix, seq - 1);
        writeln!(w, "D|{seq}|{batch_no}-{seq}|{order_no}|0.01|bench")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Part 4: for each size, a closed day of that many paid orders (seeded on both nodes); the
/// bank builds the order file while the platform streams, checks and compares it.
pub(super) async fn recon(procs: &mut Procs, sizes: &[u64]) -> anyhow::Result<Vec<ScaleRun>> {
    procs.start().await?;
    let start: chrono::DateTime<chrono::Utc> = RECON_START.parse()?;
    let (bank_ch, platform_ch) = procs.channels().await?;
    set_clocks(&bank_ch, &platform_ch, start).await?;
    let payer = super::seed_payers(bank_ch, platform_ch, 1).await?.remove(0);
    let mut runs = Vec::new();
    for (run, &n) in sizes.iter().enumerate() {
        let (bank_ch, platform_ch) = procs.channels().await?;
        let date = shared::clock::business_date_of(start) + chrono::Days::new(run as u64);
        super::progress(&format!("4. reconciliation of {n} orders: seeding"));
        seed_orders(
            &bank_ch,
            &platform_ch,
            &payer.signup_id,
            &format!("RC{run}-"),
            n,
        )
        .await?;
        // The day-end cutover on both, then both afresh on the closed day's next morning.
        let next =
            shared::clock::start_of(date + chrono::Days::new(1)) + chrono::Duration::seconds(2);
        set_clocks(&bank_ch, &platform_ch, next).await?;
        procs.start().await?;
        let (bank_ch, platform_ch) = procs.channels().await?;
        set_clocks(&bank_ch, &platform_ch, next).await?;

        // The platform streams the order file while the bank builds it: one phase.
        super::progress(&format!(
            "4. reconciliation of {n} orders: build and compare"
        ));
        let t = Instant::now();
        let run = watch_day_recon(platform_ch, date).await?;
        let both = t.elapsed();
        anyhow::ensure!(
            (run.matched, run.cases) == (n, 0),
            "{} matched, {} cases",
            run.matched,
            run.cases
        );
        let file = BankReconServiceClient::new(bank_ch)
            .prepare_day_file(bank::PrepareDayFileRequest {
                kind: bank::DayFileKind::Order as i32,
                business_date: date.to_string(),
            })
            .await
            .context("the order file as built (PrepareDayFile)")?
            .into_inner()
            .file
            .context("the order file")?;
        anyhow::ensure!(
            file.record_count == n,
            "the order file holds {}",
            file.record_count
        );
        runs.push(ScaleRun::new(n, vec![("build and compare", both)], procs));
    }
    procs.stop();
    Ok(runs)
}

/// Both clocks frozen at `at` (never backwards: a node started afresh runs on real time, which
/// is earlier); the day-end cutover runs for every date left.
async fn set_clocks(
    bank_ch: &Channel,
    platform_ch: &Channel,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    for ch in [bank_ch, platform_ch] {
        let mut sim = SimulatorServiceClient::new(ch.clone());
        for m in [
            sim::set_clock_request::Move::Freeze(true),
            sim::set_clock_request::Move::SetTo(shared::grpc::timestamp(at)),
        ] {
            sim.set_clock(sim::SetClockRequest { r#move: Some(m) })
                .await
                .context("setting the clock")?;
        }
    }
    Ok(())
}

/// The longest the reconciliation part waits for one day's comparison.
const RECON_WAIT_MAX: Duration = Duration::from_secs(600);

/// Runs the ORDER file's T+1 reconciliation of `date` and watches it to its end through
/// `ListDayRuns`: the comparison runs on in the platform when its call ends at the node's request
/// limit (a day of a million orders on PostgreSQL takes longer).
async fn watch_day_recon(
    platform_ch: Channel,
    date: chrono::NaiveDate,
) -> anyhow::Result<platform::DayRun> {
    let mut ops = ReconOpsServiceClient::new(platform_ch);
    let day = date.to_string();
    let list = platform::ListDayRunsRequest {
        business_date: day.clone(),
    };
    let before = ops
        .list_day_runs(list.clone())
        .await
        .context("the day's runs (ListDayRuns)")?
        .into_inner()
        .runs
        .into_iter()
        .map(|r| r.run_id)
        .collect::<std::collections::HashSet<_>>();
    let mut call = ops.clone();
    let mut recon = Some(tokio::spawn(async move {
        call.run_day_recon(platform::RunDayReconRequest {
            business_date: day,
            kinds: vec![platform::ReconFileKind::Order as i32],
        })
        .await
    }));
    let deadline = Instant::now() + RECON_WAIT_MAX;
    loop {
        let runs = ops
            .list_day_runs(list.clone())
            .await
            .context("the day's runs (ListDayRuns)")?
            .into_inner()
            .runs;
        if let Some(run) = runs
            .into_iter()
            .find(|r| !before.contains(&r.run_id) && r.done_at.is_some())
        {
            return Ok(run);
        }
        if let Some(call) = recon.take_if(|c| c.is_finished()) {
            // Ended before the run did: only the request limit lets the comparison go on.
            if let Err(s) = call.await?
                && !matches!(
                    s.code(),
                    tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                )
            {
                return Err(s).context("reconciling the day (RunDayRecon)");
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the day's comparison did not end within {} s",
            RECON_WAIT_MAX.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Part 5, start-up: both node binaries from spawn to SERVING, three times; idle memory after.
pub(super) async fn startup(bin_dir: &Path, dir: &Path) -> anyhow::Result<Startup> {
    let mut times = Vec::new();
    let mut idle = (0, 0);
    for round in 0..3 {
        let mut procs = Procs::new(bin_dir, dir.join(format!("startup-{round}")), None)?;
        times.push(micros(procs.start().await?) / 1000);
        if round == 2 {
            // Idle: let start-up work (the day-end check, the first schedule ticks) finish.
            tokio::time::sleep(Duration::from_millis(500)).await;
            idle = procs.status_kib("VmRSS:");
        }
    }
    times.sort_unstable();
    Ok(Startup {
        both_serving_ms: times[1],
        bank_idle_kib: idle.0,
        platform_idle_kib: idle.1,
    })
}
