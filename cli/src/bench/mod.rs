//! `ibsim bench`: figures measured against the machine's own limit in the same run
//! (docs/performance.md). Each part starts what it measures itself: an in-process pair on
//! SQLite files (or PostgreSQL with `--database`), or the node binaries as processes.

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
use pair::{PairConfig, RunningPair};

mod scale;
mod watched;
pub use scale::ScaleRun;

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
    /// 1. The limit: a no-op RPC, 64 in flight over one channel.
    pub echo: Option<Rate>,
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
    /// Part 2: the CPU time this process (the load, and both nodes in it) spent per payment in the
    /// closed loop, microseconds. With every core busy it would be cores × 1,000,000 over the
    /// payments a second; below that, the payments wait for something other than the CPU.
    pub payment_cpu_us: Option<u64>,
    /// Payments a second over echo calls a second, in thousandths.
    pub payments_per_echo_permille: Option<u64>,
    /// Part 3, batch refunds at each size: push, process, fetch, download. The sizes are
    /// 100,000 then 1,000,000 lines (`--quick`: 1,000 then 10,000).
    pub refunds: Vec<ScaleRun>,
    /// Part 4, T+1 order reconciliation of a closed day of each size of orders: build, compare.
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
        report.refunds = on_processes(opts, dir.path(), "refunds", async |procs| {
            scale::refunds(procs, &sizes).await
        })
        .await?;
    }
    if opts.runs(Part::Recon) {
        progress("4. reconciliation");
        report.recon = on_processes(opts, dir.path(), "recon", async |procs| {
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

/// A part run on node processes of its own (parts 3 and 4), with databases of its own on
/// PostgreSQL, dropped afterwards whatever the part's outcome.
async fn on_processes(
    opts: &BenchOptions,
    dir: &Path,
    part: &str,
    run: impl AsyncFnOnce(&mut scale::Procs) -> anyhow::Result<Vec<ScaleRun>>,
) -> anyhow::Result<Vec<ScaleRun>> {
    let (dbs, cleanup) = databases(opts, part).await?;
    let mut procs = scale::Procs::new(&opts.bin_dir, dir.join(part), dbs)?;
    let runs = run(&mut procs).await;
    // The processes end before their databases are dropped.
    drop(procs);
    if let Some((base, names)) = cleanup {
        shared::store::drop_databases(&base, &names).await;
    }
    runs
}

/// Parts 1 and 2 (part 2 only when asked for) on one in-process pair.
async fn payments(opts: &BenchOptions, dir: &Path, report: &mut BenchReport) -> anyhow::Result<()> {
    let (pair, cleanup) = start_pair(opts, dir).await?;
    let bank = crate::connect(&pair.bank_url()).await?;
    let platform = crate::connect(&pair.platform_url()).await?;

    progress("1. echo");
    let echo = echo(bank.clone(), opts.seconds()).await;
    if opts.runs(Part::Payments) {
        progress("2. payments: seeding the payers");
        let payers = seed_payers(bank.clone(), platform.clone(), opts.payers()).await?;
        // One payment per payer first, unmeasured: the platform checks a pay password with
        // argon2 only the first time (then from its cache), and 64 of those at once would be
        // the first second of the closed loop. The figures are the steady state.
        progress("2. payments: warm-up, one payment per payer");
        warm_up(&bank, &platform, &payers).await?;
        progress("2. payments: closed loop");
        let cpu_before = cpu_time_us();
        let payments = closed_loop(&bank, &platform, &payers, opts.seconds()).await;
        let cpu = cpu_time_us().saturating_sub(cpu_before);
        let open_loop_rate = (payments.per_sec / 2).max(1);
        progress("2. payments: open loop");
        let payments_open_loop =
            open_loop(&bank, &platform, &payers, opts.seconds(), open_loop_rate).await;
        progress("2. payments: closed loop without and with a console watching, in rounds");
        let (bank_url, platform_url) = (pair.bank_url(), pair.platform_url());
        let rounds = watched::rounds(
            (&bank_url, &platform_url),
            &bank,
            &platform,
            &payers,
            opts.seconds(),
        )
        .await?;
        report.payments_watched_permille = watched::permille(&rounds);
        report.payments_watched = rounds;
        progress("2. payments: invariants");
        for (node, addr) in [
            ("bank", pair.bank_metrics),
            ("platform", pair.platform_metrics),
        ] {
            if let Some(addr) = addr {
                report
                    .server_time
                    .extend(rpc_times(node, &pair::metrics_page(addr).await?));
            }
        }
        report.server_time.retain(|t| t.count > 0);
        report
            .server_time
            .sort_by_key(|t| std::cmp::Reverse(t.mean_us));
        report.invariants = Some(invariants(&bank, &platform, &payers).await?);
        report.payments_per_echo_permille = Some(payments.per_sec * 1000 / echo.per_sec.max(1));
        report.payment_cpu_us = cpu.checked_div(payments.count);
        report.payments_in_flight = IN_FLIGHT.min(payers.len());
        report.payments = Some(payments);
        report.payments_open_loop = Some(payments_open_loop);
        report.open_loop_rate = open_loop_rate;
    }
    report.echo = Some(echo);
    pair.stop().await?;
    if let Some((base, names)) = cleanup {
        shared::store::drop_databases(&base, &names).await;
    }
    Ok(())
}

/// Says on stderr which part starts, with the time since the run began (the table comes at the end).
fn progress(what: &str) {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let t = STARTED.get_or_init(Instant::now).elapsed();
    eprintln!("[{:>4}.{} s] {what}", t.as_secs(), t.subsec_millis() / 100);
}

/// CPU time (user and system) this process has used, µs; 0 where `/proc` does not say.
fn cpu_time_us() -> u64 {
    // Fields 14 and 15 of /proc/self/stat, after the command name in parentheses, in the
    // kernel's USER_HZ ticks (100 a second on Linux whatever the kernel's own tick).
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime: fields 14 and 15 of the line, 11 and 12 counted from the state (field 3).
    (tick(11) + tick(12)) * 10_000
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

async fn start_pair(
    opts: &BenchOptions,
    dir: &Path,
) -> anyhow::Result<(RunningPair, Option<(String, Vec<String>)>)> {
    let (dbs, cleanup) = databases(opts, "payments").await?;
    let (bank_db, platform_db) = match dbs {
        Some(urls) => urls,
        None => (
            shared::store::sqlite_url_in(&dir.join("bank"), "bank.db")?,
            shared::store::sqlite_url_in(&dir.join("platform"), "platform.db")?,
        ),
    };
    let mut security = shared::security::SecurityArgs::default();
    if opts.secure {
        let credentials = dir.join("security");
        shared::security::certs::write_set(
            &credentials,
            false,
            shared::security::keys::Algorithm::Ed25519,
        )?;
        crate::trust_ca(std::fs::read(
            credentials.join(shared::security::certs::CA_CERT),
        )?);
        security.tls_dir = Some(credentials.clone());
        security.sign_dir = Some(credentials);
    }
    let pair = RunningPair::start(
        &PairConfig::local(bank_db, platform_db, dir)
            .with_metrics()
            .secured(security),
    )
    .await?;
    Ok((pair, cleanup))
}

/// Each RPC's count and mean time from a metrics page's `ibsim_rpc_duration_seconds`.
fn rpc_times(node: &str, page: &str) -> Vec<ServerTime> {
    let mut out: Vec<ServerTime> = Vec::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("ibsim_rpc_duration_seconds_") else {
            continue;
        };
        let (kind, rest) = rest.split_once('{').unwrap_or(("", ""));
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Some(rpc) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("rpc=\""))
            .map(|r| r.trim_end_matches('"').to_owned())
        else {
            continue;
        };
        let i = match out.iter().position(|t| t.rpc == rpc) {
            Some(i) => i,
            None => {
                out.push(ServerTime {
                    node: node.to_owned(),
                    rpc,
                    count: 0,
                    mean_us: 0,
                });
                out.len() - 1
            }
        };
        match kind {
            "count" => out[i].count = value.trim().parse().unwrap_or(0),
            // Seconds with up to six decimals: kept in µs until divided by the count.
            "sum" => out[i].mean_us = seconds_to_us(value.trim()),
            _ => {}
        }
    }
    for t in &mut out {
        t.mean_us = t.mean_us.checked_div(t.count).unwrap_or(0);
    }
    out
}

/// `"20.003"` seconds as microseconds, without floating point.
fn seconds_to_us(s: &str) -> u64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    whole.parse::<u64>().unwrap_or(0) * 1_000_000 + frac.parse::<u64>().unwrap_or(0)
}

/// Latencies (µs) and errors of one part, and its wall time.
fn rate(mut latencies: Vec<u64>, errors: u64, wall: Duration) -> Rate {
    latencies.sort_unstable();
    let pick = |permille: usize| {
        if latencies.is_empty() {
            0
        } else {
            latencies[(latencies.len() - 1) * permille / 1000]
        }
    };
    let wall_us = u64::try_from(wall.as_micros()).unwrap_or(u64::MAX).max(1);
    Rate {
        count: latencies.len() as u64,
        per_sec: latencies.len() as u64 * 1_000_000 / wall_us,
        p50_us: pick(500),
        p99_us: pick(990),
        errors,
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Part 1, the limit: Echo with 16 bytes, `IN_FLIGHT` at once over one channel, for `for_how_long`.
async fn echo(bank: Channel, for_how_long: Duration) -> Rate {
    let client = SimulatorServiceClient::new(bank);
    let started = Instant::now();
    let until = started + for_how_long;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let mut c = client.clone();
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let t = Instant::now();
                let r = c
                    .echo(sim::EchoRequest {
                        payload: vec![7; 16],
                    })
                    .await;
                match r {
                    Ok(_) => lat.push(micros(t.elapsed())),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let (lat, errors) = collect(tasks).await;
    rate(lat, errors, started.elapsed())
}

async fn collect(mut tasks: tokio::task::JoinSet<(Vec<u64>, u64)>) -> (Vec<u64>, u64) {
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        if let Ok((l, e)) = r {
            all.extend(l);
            errors += e;
        }
    }
    (all, errors)
}

/// A payer: card, account, activated card-link, logged in.
#[derive(Debug, Clone)]
struct Payer {
    card: String,
    mobile: String,
    token: String,
    signup_id: String,
}

/// `n` payers, each with a card of `BALANCE`, a sign-up with `LIMIT`, activated and logged in.
async fn seed_payers(bank: Channel, platform: Channel, n: usize) -> anyhow::Result<Vec<Payer>> {
    let mut f = Fixtures::default();
    let tag = rand::random::<u32>();
    for i in 0..n {
        let card = shared::domain::CardNumber::issue(u64::from(tag) * 10_000 + i as u64)
            .expose()
            .to_owned();
        let first17 = format!("11010519900307{:03}", i % 1000);
        let check = shared::domain::resident_id_check_char(first17.as_bytes()) as char;
        let email = format!("bench{i}-{tag:08x}@example.com");
        let mobile = format!("138{:08}", (u64::from(tag) * 7 + i as u64) % 100_000_000);
        f.cards.push(CardFixture {
            number: card.clone(),
            holder: "压测".into(),
            id_number: format!("{first17}{check}"),
            password: CARD_PASSWORD.into(),
            balance: BALANCE.into(),
            status: None,
        });
        f.accounts.push(AccountFixture {
            email: email.clone(),
            name: "压测".into(),
            login_password: LOGIN_PASSWORD.into(),
            pay_password: PAY_PASSWORD.into(),
            status: None,
        });
        f.signups.push(SignUpFixture {
            card,
            account: email,
            mobile,
            limit: LIMIT.into(),
            activate: true,
        });
    }
    crate::fixtures::load(bank.clone(), platform.clone(), &f)
        .await
        .context("seeding the bench payers")?;
    let mut web = AccountServiceClient::new(platform.clone());
    let mut ops = PlatformOpsServiceClient::new(platform);
    let mut payers = Vec::with_capacity(n);
    for (c, s) in f.cards.iter().zip(&f.signups) {
        let token = web
            .login(platform::LoginRequest {
                email: s.account.clone(),
                login_password: LOGIN_PASSWORD.into(),
            })
            .await?
            .into_inner()
            .session_token;
        let account = ops
            .get_account(platform::GetAccountRequest {
                email: s.account.clone(),
            })
            .await?
            .into_inner()
            .account
            .context("the account")?;
        let signup_id = account
            .card_links
            .first()
            .map(|l| l.signup_id.clone())
            .context("the card-link")?;
        payers.push(Payer {
            card: c.number.clone(),
            mobile: s.mobile.clone(),
            token,
            signup_id,
        });
    }
    Ok(payers)
}

/// One whole payment as a customer's client drives it: StartPayment (pay password), the code
/// from the SMS outbox, ConfirmPayment.
async fn pay_once(
    pay: &mut PayServiceClient<Channel>,
    sms: &mut SmsOutboxServiceClient<Channel>,
    p: &Payer,
    order_no: &str,
) -> Result<(), tonic::Status> {
    pay.start_payment(platform::StartPaymentRequest {
        session_token: p.token.clone(),
        order_no: order_no.to_owned(),
        amount: AMOUNT.to_owned(),
        pay_password: PAY_PASSWORD.to_owned(),
        signup_id: p.signup_id.clone(),
        description: String::new(),
    })
    .await?;
    let code = sms
        .list_sms(sim::ListSmsRequest {
            mobile: p.mobile.clone(),
            limit: 8,
        })
        .await?
        .into_inner()
        .messages
        .into_iter()
        .find(|m| m.order_no == order_no)
        .map(|m| m.otp_code)
        .ok_or_else(|| tonic::Status::not_found("no code was sent"))?;
    let order = pay
        .confirm_payment(platform::ConfirmPaymentRequest {
            session_token: p.token.clone(),
            order_no: order_no.to_owned(),
            otp_code: code,
        })
        .await?
        .into_inner()
        .order
        .unwrap_or_default();
    if order.status == platform::OrderStatus::Success as i32 {
        Ok(())
    } else {
        Err(tonic::Status::internal("the order is not paid"))
    }
}

/// Part 2, before measuring: one payment per payer, all at once.
async fn warm_up(bank: &Channel, platform: &Channel, payers: &[Payer]) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in payers.iter().enumerate() {
        let (p, mut pay, mut sms) = (
            p.clone(),
            PayServiceClient::new(platform.clone()),
            SmsOutboxServiceClient::new(bank.clone()),
        );
        tasks.spawn(async move {
            let order_no = format!("BW{i}-{:08x}", rand::random::<u32>());
            pay_once(&mut pay, &mut sms, &p, &order_no).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r?.context("a warm-up payment failed")?;
    }
    Ok(())
}

/// Part 2, closed loop: `IN_FLIGHT` clients, each paying again as soon as its last payment
/// ends, spread over the payers (one client a payer at a time).
async fn closed_loop(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
    for_how_long: Duration,
) -> Rate {
    let started = Instant::now();
    let until = started + for_how_long;
    let payers = Arc::new(payers.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..IN_FLIGHT.min(payers.len()) {
        let payers = payers.clone();
        let mut pay = PayServiceClient::new(platform.clone());
        let mut sms = SmsOutboxServiceClient::new(bank.clone());
        tasks.spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            let mine: Vec<&Payer> = payers.iter().skip(client).step_by(IN_FLIGHT).collect();
            let mut n = 0usize;
            while Instant::now() < until {
                let p = mine[n % mine.len()];
                let order_no = format!("BC{client}-{n}-{:08x}", rand::random::<u32>());
                let t = Instant::now();
                match pay_once(&mut pay, &mut sms, p, &order_no).await {
                    Ok(()) => lat.push(micros(t.elapsed())),
                    Err(_) => errors += 1,
                }
                n += 1;
            }
            (lat, errors)
        });
    }
    let (lat, errors) = collect(tasks).await;
    rate(lat, errors, started.elapsed())
}

/// Part 2, open loop: payments started at `per_sec`, whatever the answers do; each latency counts
/// from the payment's intended start, so queueing shows.
async fn open_loop(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
    for_how_long: Duration,
    per_sec: u64,
) -> Rate {
    let started = tokio::time::Instant::now();
    let total = per_sec * for_how_long.as_secs().max(1);
    let gap = Duration::from_micros(1_000_000 / per_sec.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let intended = started + gap * u32::try_from(i).unwrap_or(u32::MAX);
        let p = payers[usize::try_from(i).unwrap_or(0) % payers.len()].clone();
        let mut pay = PayServiceClient::new(platform.clone());
        let mut sms = SmsOutboxServiceClient::new(bank.clone());
        tasks.spawn(async move {
            tokio::time::sleep_until(intended).await;
            let order_no = format!("BO{i}-{:08x}", rand::random::<u32>());
            match pay_once(&mut pay, &mut sms, &p, &order_no).await {
                Ok(()) => (vec![micros(intended.elapsed())], 0),
                Err(_) => (Vec::new(), 1),
            }
        });
    }
    let (lat, errors) = collect(tasks).await;
    rate(lat, errors, started.elapsed())
}

/// Part 2, after the payments: every card within its limit and its money accounted for, and both
/// sides agreeing on every order (real-time reconciliation changes nothing).
async fn invariants(
    bank: &Channel,
    platform: &Channel,
    payers: &[Payer],
) -> anyhow::Result<Invariants> {
    let mut branch = BranchServiceClient::new(bank.clone());
    let mut pay = PayServiceClient::new(platform.clone());
    let opening = shared::Money::parse(BALANCE)?;
    let limit = shared::Money::parse(LIMIT)?;
    let (mut over_limit, mut money_not_conserved) = (0, 0);
    for p in payers {
        let card = branch
            .get_card(bank::GetCardRequest {
                card_number: p.card.clone(),
            })
            .await?
            .into_inner()
            .card
            .context("the card")?;
        let used = pay
            .get_remaining_limit(platform::GetRemainingLimitRequest {
                session_token: p.token.clone(),
                signup_id: p.signup_id.clone(),
            })
            .await?
            .into_inner()
            .used_today;
        let used = shared::Money::parse(&used)?;
        let balance = shared::Money::parse(&card.balance)?;
        if used > limit {
            over_limit += 1;
        }
        if opening.checked_sub(balance) != Some(used) {
            money_not_conserved += 1;
        }
    }
    let mut recon = ReconOpsServiceClient::new(platform.clone());
    let mut disagreeing = 0;
    loop {
        let run = recon
            .run_realtime_recon(platform::RunRealtimeReconRequest {})
            .await?
            .into_inner();
        disagreeing += run.adjustments.len() as u64;
        if run.cursor_after == run.cursor_before {
            break;
        }
    }
    Ok(Invariants {
        over_limit,
        money_not_conserved,
        orders_disagreeing: disagreeing,
    })
}

/// Part 5, start-up: both node binaries from spawn to SERVING, three times; idle memory after.
async fn startup(bin_dir: &Path, dir: &Path) -> anyhow::Result<Startup> {
    let mut times = Vec::new();
    let mut idle = (0, 0);
    for round in 0..3 {
        let mut procs = scale::Procs::new(bin_dir, dir.join(format!("startup-{round}")), None)?;
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

/// KiB as MiB with one decimal.
fn mib(kib: u64) -> String {
    format!("{}.{} MiB", kib / 1024, kib % 1024 * 10 / 1024)
}

/// The goals of a part that runs at two sizes: the rate at the larger, and each node's peak
/// memory at the larger, absolute and against the smaller.
fn scale_goals(part: &str, runs: &[ScaleRun], rate_min: u64, unit: &str) -> Vec<Goal> {
    let (Some(small), Some(large)) = (runs.first(), runs.last()) else {
        return Vec::new();
    };
    let peak = |r: &ScaleRun| r.bank_peak_kib.max(r.platform_peak_kib);
    // Within 20% of the figure at the smaller size, for each node.
    let flat = |a: u64, b: u64| a * 5 <= b * 6;
    vec![
        Goal {
            name: format!("{part}: {unit}/s at {}", large.records),
            goal: format!(">= {rate_min}"),
            measured: large.per_sec.to_string(),
            met: large.per_sec >= rate_min,
        },
        Goal {
            name: format!("{part}: peak memory per node at {}", large.records),
            goal: "<= 150 MiB".into(),
            measured: format!(
                "bank {}, platform {}",
                mib(large.bank_peak_kib),
                mib(large.platform_peak_kib)
            ),
            met: peak(large) <= 150 * 1024,
        },
        Goal {
            name: format!(
                "{part}: peak memory, {} against {}",
                large.records, small.records
            ),
            goal: "within 20%".into(),
            measured: format!(
                "bank {} against {}, platform {} against {}",
                mib(large.bank_peak_kib),
                mib(small.bank_peak_kib),
                mib(large.platform_peak_kib),
                mib(small.platform_peak_kib)
            ),
            met: flat(large.bank_peak_kib, small.bank_peak_kib)
                && flat(large.platform_peak_kib, small.platform_peak_kib),
        },
    ]
}

fn goals(r: &BenchReport) -> Vec<Goal> {
    let ms = |us: u64| format!("{}.{:03} ms", us / 1000, us % 1000);
    let mut goals = Vec::new();
    if let (Some(permille), Some(payments), Some(inv)) =
        (r.payments_per_echo_permille, &r.payments, &r.invariants)
    {
        let violations = inv.over_limit + inv.money_not_conserved + inv.orders_disagreeing;
        goals.extend([
            Goal {
                name: "payments/s against echo calls/s".into(),
                goal: ">= 0.100".into(),
                measured: format!("{}.{:03}", permille / 1000, permille % 1000),
                met: permille >= 100,
            },
            Goal {
                name: "payment p99 at 64 in flight".into(),
                goal: "<= 25 ms".into(),
                measured: ms(payments.p99_us),
                met: payments.p99_us <= 25_000,
            },
            Goal {
                name: "payments with a console watching".into(),
                goal: ">= 90% of without".into(),
                measured: r
                    .payments_watched_permille
                    .map_or("not run".into(), |w| format!("{}.{}%", w / 10, w % 10)),
                met: r.payments_watched_permille.is_some_and(|w| w >= 900),
            },
            Goal {
                name: "invariant violations".into(),
                goal: "0".into(),
                measured: violations.to_string(),
                met: violations == 0,
            },
        ]);
    }
    goals.extend(scale_goals("batch refund", &r.refunds, 100_000, "lines"));
    goals.extend(scale_goals("reconciliation", &r.recon, 200_000, "orders"));
    if let Some(startup) = &r.startup {
        goals.extend([
            Goal {
                name: "start-up to both serving".into(),
                goal: "<= 300 ms".into(),
                measured: format!("{} ms", startup.both_serving_ms),
                met: startup.both_serving_ms <= 300,
            },
            Goal {
                name: "idle memory per node".into(),
                goal: "<= 30 MiB".into(),
                measured: format!(
                    "bank {}, platform {}",
                    mib(startup.bank_idle_kib),
                    mib(startup.platform_idle_kib)
                ),
                met: startup.bank_idle_kib.max(startup.platform_idle_kib) <= 30 * 1024,
            },
        ]);
    }
    goals
}

impl BenchReport {
    /// A report of a run about to start: what it runs and on what; no figures yet.
    fn before(opts: &BenchOptions) -> BenchReport {
        BenchReport {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            optimized: !cfg!(debug_assertions),
            quick: opts.quick,
            database: if opts.database.is_some() {
                "postgres"
            } else {
                "sqlite"
            }
            .to_owned(),
            secure: opts.secure,
            parts: [
                Part::Echo,
                Part::Payments,
                Part::Refunds,
                Part::Recon,
                Part::Startup,
            ]
            .into_iter()
            .filter(|p| opts.runs(*p))
            .collect(),
            echo: None,
            payments: None,
            payments_in_flight: 0,
            payments_open_loop: None,
            payments_watched: Vec::new(),
            payments_watched_permille: None,
            open_loop_rate: 0,
            invariants: None,
            server_time: Vec::new(),
            payment_cpu_us: None,
            payments_per_echo_permille: None,
            refunds: Vec::new(),
            recon: Vec::new(),
            startup: None,
            goals: Vec::new(),
        }
    }

    /// The table `ibsim bench` prints.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let ms = |us: u64| format!("{}.{:01}", us / 1000, us % 1000 / 100);
        let secs = |ms: u64| format!("{}.{:01} s", ms / 1000, ms % 1000 / 100);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ibsim bench ({}{}, {} cores, {}{})",
            self.database,
            if self.secure {
                ", parts 1-2 secured"
            } else {
                ""
            },
            self.cores,
            if self.optimized {
                "release build"
            } else {
                "DEBUG build: figures not representative"
            },
            if self.quick { ", quick" } else { "" }
        );
        if self.echo.is_some() {
            let _ = writeln!(
                out,
                "{:<44} {:>9} {:>10} {:>10} {:>7}",
                "part", "ops/s", "p50 ms", "p99 ms", "errors"
            );
        }
        let closed = format!(
            "2. payments, closed loop, {} in flight",
            self.payments_in_flight
        );
        for (name, r) in [
            ("1. echo (limit), 64 in flight", &self.echo),
            (closed.as_str(), &self.payments),
            ("2. payments, open loop", &self.payments_open_loop),
        ] {
            let Some(r) = r else { continue };
            let _ = writeln!(
                out,
                "{name:<44} {:>9} {:>10} {:>10} {:>7}",
                r.per_sec,
                ms(r.p50_us),
                ms(r.p99_us),
                r.errors
            );
        }
        if let (Some(permille), Some(i)) = (self.payments_per_echo_permille, &self.invariants) {
            let _ = writeln!(
                out,
                "   open loop at {} payments/s; payments/echo = {}.{:03}; CPU per payment {} µs",
                self.open_loop_rate,
                permille / 1000,
                permille % 1000,
                self.payment_cpu_us.unwrap_or(0)
            );
            if let Some(w) = self.payments_watched_permille {
                let _ = writeln!(
                    out,
                    "   with a console watching: {}.{}% of the payments without, over {} rounds (payments/s, p99 ms):",
                    w / 10,
                    w % 10,
                    self.payments_watched.len()
                );
                for (i, r) in self.payments_watched.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "     round {}: without {} ({}), watched {} ({}); the page: {} events, {} record reads",
                        i + 1,
                        r.without.per_sec,
                        ms(r.without.p99_us),
                        r.with.per_sec,
                        ms(r.with.p99_us),
                        r.events,
                        r.world_reads
                    );
                }
            }
            let _ = writeln!(
                out,
                "   invariants: {} over limit, {} money not conserved, {} orders disagreeing",
                i.over_limit, i.money_not_conserved, i.orders_disagreeing
            );
            let _ = writeln!(out, "   server time per payment part RPC (mean ms, count):");
            for t in &self.server_time {
                let _ = writeln!(
                    out,
                    "     {:<9} {:<20} {:>8} {:>9}",
                    t.node,
                    t.rpc,
                    ms(t.mean_us),
                    t.count
                );
            }
        }
        for (name, runs) in [
            ("3. batch refund", &self.refunds),
            ("4. T+1 order reconciliation", &self.recon),
        ] {
            for r in runs {
                let steps: Vec<String> = r
                    .steps_ms
                    .iter()
                    .map(|(n, ms)| format!("{n} {}", secs(*ms)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{name}, {} records: {}/s ({}); peak memory bank {}, platform {}",
                    r.records,
                    r.per_sec,
                    steps.join(", "),
                    mib(r.bank_peak_kib),
                    mib(r.platform_peak_kib)
                );
            }
        }
        if let Some(startup) = &self.startup {
            let _ = writeln!(
                out,
                "5. start-up to both serving {} ms; idle memory bank {} KiB, platform {} KiB",
                startup.both_serving_ms, startup.bank_idle_kib, startup.platform_idle_kib
            );
        }

        if !self.goals.is_empty() {
            let _ = writeln!(out, "\ngoals:");
            for g in &self.goals {
                let mark = if g.met { "met " } else { "MISS" };
                let _ = writeln!(
                    out,
                    "  {mark} {:<36} goal {:<10} measured {}",
                    g.name, g.goal, g.measured
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_times_from_a_metrics_page() {
        let page = "ibsim_rpc_duration_seconds_bucket{node=\"bank\",rpc=\"Pay\",le=\"0.001\"} 1\n\
ibsim_rpc_duration_seconds_sum{node=\"bank\",rpc=\"Pay\"} 0.03\n\
ibsim_rpc_duration_seconds_count{node=\"bank\",rpc=\"Pay\"} 3\n\
ibsim_rpc_duration_seconds_sum{node=\"bank\",rpc=\"Echo\"} 2\n\
ibsim_rpc_duration_seconds_count{node=\"bank\",rpc=\"Echo\"} 4\n";
        let t = rpc_times("bank", page);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].rpc.as_str(), t[0].count, t[0].mean_us),
            ("Pay", 3, 10_000)
        );
        assert_eq!((t[1].rpc.as_str(), t[1].mean_us), ("Echo", 500_000));
        assert_eq!(seconds_to_us("20.003"), 20_003_000);
        assert_eq!(seconds_to_us("7"), 7_000_000);
    }

    #[test]
    fn only_runs_the_parts_asked_for_and_payments_bring_their_limit() {
        let opts = |only: Vec<Part>| BenchOptions {
            quick: true,
            database: None,
            bin_dir: PathBuf::new(),
            secure: false,
            only,
        };
        let every = opts(Vec::new());
        assert!(every.runs(Part::Echo) && every.runs(Part::Recon) && every.runs(Part::Startup));
        let pay = opts(vec![Part::Payments]);
        assert!(pay.runs(Part::Payments) && pay.runs(Part::Echo));
        assert!(!pay.runs(Part::Refunds) && !pay.runs(Part::Startup));
        let refunds = opts(vec![Part::Refunds]);
        assert!(refunds.runs(Part::Refunds) && !refunds.runs(Part::Echo));
        // Goals only for what ran: a refunds-only report checks no payment goal.
        let report = BenchReport {
            startup: Some(Startup {
                both_serving_ms: 40,
                bank_idle_kib: 40 * 1024,
                platform_idle_kib: 10 * 1024,
            }),
            ..BenchReport::before(&opts(vec![Part::Startup]))
        };
        let g = goals(&report);
        assert_eq!(
            g.iter()
                .map(|g| (g.name.as_str(), g.met))
                .collect::<Vec<_>>(),
            [
                ("start-up to both serving", true),
                ("idle memory per node", false)
            ]
        );
        assert_eq!(report.parts, [Part::Startup]);
        assert!(!report.table().contains("payments"));
    }

    #[test]
    fn rates_and_percentiles() {
        let r = rate((1..=1000).collect(), 3, Duration::from_secs(2));
        assert_eq!((r.count, r.per_sec, r.errors), (1000, 500, 3));
        assert_eq!((r.p50_us, r.p99_us), (500, 990));
        let empty = rate(Vec::new(), 0, Duration::from_secs(1));
        assert_eq!((empty.count, empty.p50_us, empty.p99_us), (0, 0, 0));
    }
}
