//! `ibsim bench`: figures measured against the machine's own limit in the same run
//! (docs/performance.md). Each part starts what it measures itself, apart from the load it
//! puts on them: the node binaries as processes on SQLite files (or PostgreSQL with
//! `--database`), and the bare limit as a process of this binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use proto::bank::v1 as bank;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::pay_service_client::PayServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use proto::platform::v1::recon_ops_service_client::ReconOpsServiceClient;
use proto::sim::v1 as sim;
use proto::sim::v1::simulator_service_client::SimulatorServiceClient;
use proto::sim::v1::sms_outbox_service_client::SmsOutboxServiceClient;
use serde::Serialize;
use tonic::transport::Channel;

use crate::fixtures::{AccountFixture, CardFixture, Fixtures, SignUpFixture};

pub mod bare;
mod metrics;
mod payments;
mod procfs;
mod report;
mod scale;
mod watched;
use metrics::rpc_times;
use payments::{Payer, closed_loop, payments, seed_payers};
use procfs::Usage;
use report::goals;
pub use scale::ScaleRun;
use scale::startup;

/// Calls in flight at once, for the echo limit and the closed-loop payments.
pub const IN_FLIGHT: usize = 64;
/// The card password, login password and pay password of every bench payer.
const CARD_PASSWORD: &str = "135790";
const LOGIN_PASSWORD: &str = "bench-login-1";
const PAY_PASSWORD: &str = "246802";
/// Every payer's opening balance and daily limit, yuan.
const BALANCE: &str = "100000.00";
const LIMIT: &str = "5000.00";
/// Every payment's amount, fen (0.01 yuan): no limit or balance is reached in a run.
const AMOUNT: &str = "0.01";

/// How a bench run goes.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Small sizes, short runs, no goals checked (CI).
    pub quick: bool,
    /// PostgreSQL server URL for the pair's databases; default SQLite files.
    pub database: Option<String>,
    /// Where `bank-node` and `platform-node` are (for start-up); default: beside this program.
    pub bin_dir: PathBuf,
    /// Parts 1 and 2 on a secured pair (mutual TLS, signed interbank calls; docs/security.md),
    /// to see what security costs.
    pub secure: bool,
    /// The parts to run; empty: every part.
    pub only: Vec<Part>,
}

/// A part of the run, for `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// 1. The limit: echo.
    Echo,
    /// 2. Payments (and part 1, the limit they are measured against).
    Payments,
    /// 3. Batch refunds.
    Refunds,
    /// 4. T+1 order reconciliation.
    Recon,
    /// 5. Start-up and idle memory.
    Startup,
}

impl BenchOptions {
    fn runs(&self, part: Part) -> bool {
        self.only.is_empty()
            || self.only.contains(&part)
            || (part == Part::Echo && self.only.contains(&Part::Payments))
    }
    fn seconds(&self) -> Duration {
        Duration::from_secs(if self.quick { 1 } else { 5 })
    }
    fn payers(&self) -> usize {
        if self.quick { 8 } else { IN_FLIGHT }
    }
    /// Parts 3 and 4: a small size, then the large one the goals are about.
    fn scale_sizes(&self) -> [u64; 2] {
        if self.quick {
            [1_000, 10_000]
        } else {
            [100_000, 1_000_000]
        }
    }
}

/// Latency figures of one part.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    /// Completed operations.
    pub count: u64,
    /// Operations a second.
    pub per_sec: u64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile latency, microseconds.
    pub p99_us: u64,
    /// Operations that failed.
    pub errors: u64,
}

/// What the payments part checked afterwards.
#[derive(Debug, Clone, Serialize)]
pub struct Invariants {
    /// Cards whose payments today exceed their daily limit.
    pub over_limit: u64,
    /// Cards whose balance moved by other than what they paid.
    pub money_not_conserved: u64,
    /// Orders real-time reconciliation had to change (0: both sides agree on every order).
    pub orders_disagreeing: u64,
}

/// Start-up of both node processes.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// From spawning both processes to both answering SERVING, milliseconds (median of 3).
    pub both_serving_ms: u64,
    /// Resident memory of the idle bank process, KiB.
    pub bank_idle_kib: u64,
    /// Resident memory of the idle platform process, KiB.
    pub platform_idle_kib: u64,
}

/// Where a payment's time goes: one RPC's server-side time during the payment parts, from the
/// node's own `ibsim_rpc_duration_seconds`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerTime {
    /// `bank` or `platform`.
    pub node: String,
    /// The RPC.
    pub rpc: String,
    /// Requests served.
    pub count: u64,
    /// Mean time to serve one, microseconds.
    pub mean_us: u64,
}

/// What one payment of part 2's closed loop cost one process, on average. Figures in
/// thousandths are per 1,000 payments.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCost {
    /// `load` (this program: the 64 clients), `bank` or `platform`.
    pub process: String,
    /// CPU time, user and system, µs.
    pub cpu_us: u64,
    /// Context switches of its threads, voluntary or not (a hand-off to another thread, a
    /// wait for a lock or for I/O, a time slice used up).
    pub context_switches_milli: u64,
    /// Reading and writing system calls (the socket's and the database files').
    pub io_calls_milli: u64,
    /// SQL statements run on its reading connections (the node's `ibsim_db_statements_total`;
    /// none for the load).
    pub read_statements_milli: Option<u64>,
    /// SQL statements run on its writing connection, in transactions or not.
    pub write_statements_milli: Option<u64>,
    /// Database transactions begun (`ibsim_db_transactions_total`).
    pub transactions_milli: Option<u64>,
    /// Round trips to the write connection: a statement, or a script of several sent as one;
    /// a begin, commit or rollback (`ibsim_db_round_trips_total{pool="write"}`). On SQLite each
    /// wakes the connection's thread: the writer's serial part.
    pub writer_round_trips_milli: Option<u64>,
    /// µs a payment's requests waited, in all, for the node's write connection
    /// (`ibsim_db_writer_seconds_total{phase="waiting"}`).
    pub writer_waiting_us: Option<u64>,
    /// How busy the write connection was: the time it was held per time elapsed, ‰ (on
    /// SQLite one connection: near 1000, it bounds every write).
    pub writer_busy_permille: Option<u64>,
}

/// One goal of docs/performance.md, and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What.
    pub name: String,
    /// The goal, as text.
    pub goal: String,
    /// What this run measured, as text.
    pub measured: String,
    /// Met.
    pub met: bool,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The machine's cores.
    pub cores: usize,
    /// Whether this program was built with optimisations.
    pub optimized: bool,
    /// `--quick`.
    pub quick: bool,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Parts 1 and 2 ran on a secured pair (`--secure`).
    pub secure: bool,
    /// The parts that ran (`--only`; every part without it). A part that did not run is null
    /// (or an empty list) below.
    pub parts: Vec<Part>,
    /// Part 1, the machine's limit: a no-op RPC on a bare tonic server in a process of its own,
    /// without layers, 64 in flight over one channel (`bench/bare.rs`).
    pub echo_bare: Option<Rate>,
    /// Part 1 again: the same no-op RPC through a node's whole server stack, 64 in flight.
    pub echo: Option<Rate>,
    /// What the stack costs: the node's echo calls a second short of the bare ones, in
    /// thousandths of the bare.
    pub stack_cost_permille: Option<u64>,
    /// 2. Payments, closed loop, `payments_in_flight` at once (64; `--quick`: 8).
    pub payments: Option<Rate>,
    /// Payments in flight in the closed loop.
    pub payments_in_flight: usize,
    /// Part 2's closed loop in rounds without and with a console watching both nodes' feeds
    /// and a page reading its event stream and the records (`bench/watched.rs`).
    pub payments_watched: Vec<watched::Round>,
    /// Watched payments a second over payments a second without, in thousandths.
    pub payments_watched_permille: Option<u64>,
    /// 2. Payments, open loop at half the closed-loop rate, latency from the intended start.
    pub payments_open_loop: Option<Rate>,
    /// The open loop's arrival rate, payments a second.
    pub open_loop_rate: u64,
    /// 2. Checked after the payments.
    pub invariants: Option<Invariants>,
    /// 2. Each RPC's mean server time over both payment parts (the nodes' metrics).
    pub server_time: Vec<ServerTime>,
    /// Part 2: the CPU time the three processes (the load, the bank, the platform) spent per
    /// payment in the closed loop, microseconds. With every core busy it would be cores ×
    /// 1,000,000 over the payments a second; below that, the payments wait for something other
    /// than the CPU.
    pub payment_cpu_us: Option<u64>,
    /// Part 2: what a payment of the closed loop cost each process (`payment_cpu_us` split), and
    /// each node's database.
    pub payment_cost: Vec<ProcessCost>,
    /// Payments a second over the node's echo calls a second, in thousandths.
    pub payments_per_echo_permille: Option<u64>,
    /// Payments a second over the bare echo calls a second (the machine's limit), in thousandths.
    pub payments_per_bare_echo_permille: Option<u64>,
    /// Part 3, batch refunds at each size: push, process, fetch, download. The sizes are
    /// 100,000 then 1,000,000 lines (`--quick`: 1,000 then 10,000).
    pub refunds: Vec<ScaleRun>,
    /// Part 4, T+1 order reconciliation of a closed day of each size of orders: build and
    /// compare (one step: the platform streams the file while the bank builds it).
    pub recon: Vec<ScaleRun>,
    /// 5. Start-up and idle memory.
    pub startup: Option<Startup>,
    /// The goals (not checked with `--quick`).
    pub goals: Vec<Goal>,
}

/// Runs the parts `opts` asks for (every part by default).
pub async fn run(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    let dir = tempfile::tempdir()?;
    progress("starting");
    let mut report = BenchReport::before(opts);
    if opts.runs(Part::Echo) {
        payments(opts, dir.path(), &mut report).await?;
    }
    let sizes = opts.scale_sizes();
    if opts.runs(Part::Refunds) {
        progress("3. batch refunds");
        report.refunds = on_processes(opts, dir.path(), "refunds", untuned, async |procs| {
            scale::refunds(procs, &sizes).await
        })
        .await?;
    }
    if opts.runs(Part::Recon) {
        progress("4. reconciliation");
        report.recon = on_processes(opts, dir.path(), "recon", untuned, async |procs| {
            scale::recon(procs, &sizes).await
        })
        .await?;
    }
    if opts.runs(Part::Startup) {
        progress("5. start-up");
        report.startup = Some(startup(&opts.bin_dir, dir.path()).await?);
    }
    if !opts.quick {
        report.goals = goals(&report);
    }
    Ok(report)
}

/// A part run on node processes of its own, configured by `tune`, with databases of its own on
/// PostgreSQL, dropped afterwards whatever the part's outcome.
async fn on_processes<T>(
    opts: &BenchOptions,
    dir: &Path,
    part: &str,
    tune: impl FnOnce(&mut bank_node::Config, &mut platform_node::Config) -> anyhow::Result<()>,
    run: impl AsyncFnOnce(&mut scale::Procs) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let (dbs, cleanup) = databases(opts, part).await?;
    let outcome = match scale::Procs::configured(&opts.bin_dir, dir.join(part), dbs, tune) {
        Ok(mut procs) => run(&mut procs).await,
        Err(e) => Err(e),
    };
    // The processes end (when `procs` is dropped, above) before their databases are dropped.
    if let Some((base, names)) = cleanup {
        shared::store::drop_databases(&base, &names).await;
    }
    outcome
}

/// Nodes as [`scale::Procs::new`] configures them.
fn untuned(_: &mut bank_node::Config, _: &mut platform_node::Config) -> anyhow::Result<()> {
    Ok(())
}

/// Says on stderr which part starts, with the time since the run began (the table comes at the end).
fn progress(what: &str) {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = STARTED.get_or_init(Instant::now).elapsed();
    eprintln!("[{:>4}.{} s] {what}", t.as_secs(), t.subsec_millis() / 100);
}

/// With `--database`, a new pair of databases for one part (bank, platform), and what to drop
/// afterwards; without, nothing (the nodes keep SQLite files in their data directories).
async fn databases(
    opts: &BenchOptions,
    part: &str,
) -> anyhow::Result<(Option<(String, String)>, Option<(String, Vec<String>)>)> {
    let Some(base) = &opts.database else {
        return Ok((None, None));
    };
    let tag = format!("{:016x}", rand::random::<u64>());
    let names: Vec<String> = ["bank", "platform"]
        .iter()
        .map(|n| format!("ibsim_bench_{tag}_{part}_{n}"))
        .collect();
    let urls = shared::store::create_databases(base, &names).await?;
    Ok((
        Some((urls[0].clone(), urls[1].clone())),
        Some((base.clone(), names)),
    ))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
