//! One schedule on one fresh pair of nodes: the customers it starts with, each step carried out
//! over gRPC as a tester's client would, and a record of every answer a caller got about money
//! (the ledger [`super::checks`] judges at the end, with the bank as the truth).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use proto::bank::v1 as bank;
use proto::bank::v1::bank_link_service_client::BankLinkServiceClient;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::common::v1::IdType;
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::pay_service_client::PayServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use proto::platform::v1::recon_ops_service_client::ReconOpsServiceClient;
use proto::platform::v1::refund_ops_service_client::RefundOpsServiceClient;
use proto::sim::v1 as sim;
use proto::sim::v1::batch_job_service_client::BatchJobServiceClient;
use proto::sim::v1::simulator_service_client::SimulatorServiceClient;
use proto::sim::v1::sms_outbox_service_client::SmsOutboxServiceClient;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::transport::Channel;
use tonic::{Code as GrpcCode, Status};
use tonic_types::StatusExt;

use super::ops::{CUSTOMERS, Code, Fault, Node, Op};
use pair::{OtherNode, PairConfig, RunningPair};

mod customers;
mod payments;
mod steps;
mod template;

pub use template::Template;
use template::{TemplateStore, pg_names, scratch_dir};

/// The card password every explorer card has.
const CARD_PASSWORD: &str = "246810";
/// The login password of every explorer account.
const LOGIN_PASSWORD: &str = "explore-pass-1";
/// The payment password of every explorer account.
const PAY_PASSWORD: &str = "135790";
/// Each schedule's business time starts here (frozen; only the schedule moves it).
pub(super) const START: &str = "2031-05-04T01:00:00Z";
/// The platform's wait for the bank, milliseconds: short, so that a delay past it is cheap.
pub const PEER_TIMEOUT_MS: u64 = 800;
/// The delay a "past the timeout" fault adds, milliseconds.
const DELAY_PAST_TIMEOUT_MS: u32 = 1_000;
/// A session is renewed when it is older than this, minutes of business time (they end at 30).
const SESSION_RENEW_MIN: i64 = 20;
/// Real-time runs at the end of a schedule while the bank leaves pending orders unanswered.
const REALTIME_RECON_TRIES_MAX: usize = 20;
/// Tries of a T+1 run whose day the bank has not settled yet, 50 ms apart (10 s in all: a
/// loaded machine may take seconds to finish a day's last refund batch).
const DAY_RECON_TRIES_MAX: usize = 200;

/// What a caller was told about an order's money.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Told {
    /// Paid, with this serial number and business date.
    Paid {
        /// The bank's serial.
        serial: String,
        /// The business date.
        date: String,
    },
    /// Refused with a refusal that settles the order FAILED (docs/errors.md: every refusal of a
    /// payment but OTP_WRONG and SYSTEM_BUSY): the card was not debited for it.
    Failed {
        /// gRPC code.
        code: String,
        /// ErrorInfo reason.
        reason: String,
    },
}

/// One answer about an order: which call, what it said.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Answer {
    /// The order.
    pub order_no: String,
    /// The RPC.
    pub rpc: &'static str,
    /// What it said.
    pub told: Told,
    /// The step it came in.
    pub step: usize,
}

/// A customer of the schedule.
#[derive(Debug, Clone)]
pub struct Customer {
    pub(super) name: String,
    pub(super) card_password: String,
    pub(super) login_password: String,
    pub(super) pay_password: String,
    pub(super) id_number: String,
    pub(super) card: String,
    pub(super) email: String,
    pub(super) mobile: String,
    /// The live, activated sign-up, if any.
    pub(super) signup_id: Option<String>,
    pub(super) token: String,
    pub(super) login_at: DateTime<Utc>,
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Tally {
    /// Steps carried out.
    pub steps: u64,
    /// Fault rules installed.
    pub faults: u64,
    /// Steps that raced identical requests.
    pub races: u64,
    /// Nodes killed and started again.
    pub restarts: u64,
    /// Invariants checked (each check of each record counts one).
    pub checks: u64,
}

/// The pair, the clients, and what the schedule has done so far.
pub struct World {
    pub(super) pair: RunningPair,
    _second: Option<OtherNode>,
    _dir: tempfile::TempDir,
    pg_dbs: Option<(String, Vec<String>)>,
    pub(super) bank: Channel,
    /// The platform processes (one, or two on PostgreSQL with `--platforms 2`).
    pub(super) platforms: Vec<Channel>,
    pub(super) customers: Vec<Customer>,
    /// Money put on the cards (openings and deposits the bank confirmed), fen.
    pub(super) deposited_fen: i64,
    /// Every order number the schedule used, by customer.
    pub(super) orders: BTreeMap<String, usize>,
    /// The highest daily limit in force on each (customer, business date), fen.
    pub(super) limit_on: BTreeMap<(usize, NaiveDate), i64>,
    /// The limit in force now per customer, fen (0: not signed up).
    limit_now: Vec<i64>,
    pub(super) ledger: Vec<Answer>,
    pub(super) now: DateTime<Utc>,
    /// Business dates the cutover closed.
    pub(super) closed: BTreeSet<NaiveDate>,
    pub(super) tally: Tally,
    pub(super) step: usize,
    seq: u64,
    rng: StdRng,
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn fen_of(s: &str) -> i64 {
    shared::Money::parse(s).map(|m| m.fen()).unwrap_or(0)
}

fn reason(s: &Status) -> String {
    s.get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn domain(s: &Status) -> String {
    s.get_details_error_info()
        .map(|i| i.domain)
        .unwrap_or_default()
}

fn lazy(url: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(url.to_owned())?
        .timeout(Duration::from_secs(30))
        .connect_lazy())
}

/// A legal resident ID, born in 1990, with a serial from `rng`.
fn resident_id(rng: &mut StdRng) -> String {
    let first17 = format!("11010519900307{:03}", rng.random_range(0..1000));
    let check = shared::domain::resident_id_check_char(first17.as_bytes()) as char;
    format!("{first17}{check}")
}

impl World {
    /// A schedule's world: a pair on copies of the template's databases (SQLite files in a
    /// memory-backed temporary directory, or PostgreSQL databases made from the template's),
    /// `platforms` platform processes, the clocks frozen at the start, and each customer's limit
    /// changed to the plan's.
    pub async fn start(
        seed: u64,
        limits: &[i64],
        template: &Template,
        platforms: usize,
    ) -> anyhow::Result<World> {
        let dir = scratch_dir()?;
        let (bank_db, platform_db, pg_dbs) = match &template.store {
            TemplateStore::Files { bank, platform, .. } => (
                crate::scenario::copy_db(bank, &dir.path().join("bank"), "bank.db")?,
                crate::scenario::copy_db(platform, &dir.path().join("platform"), "platform.db")?,
                None,
            ),
            TemplateStore::Postgres { base, names: from } => {
                let names = pg_names();
                let urls = shared::store::create_databases_from(base, &names, Some(from)).await?;
                (
                    urls[0].clone(),
                    urls[1].clone(),
                    Some((base.clone(), names)),
                )
            }
        };
        let mut world = World::on(dir, bank_db, platform_db, pg_dbs, seed, platforms).await?;
        world.customers = template.customers.clone();
        world.deposited_fen = template.deposited_fen;
        // Before any payment: the template's limit was never in force for one.
        for (i, fen) in limits.iter().enumerate().take(CUSTOMERS) {
            world
                .branch()
                .change_limit(bank::ChangeLimitRequest {
                    card_number: world.customers[i].card.clone(),
                    daily_limit: yuan(*fen),
                })
                .await
                .context("the plan's limit")?;
            world.limit_in_force(i, *fen);
        }
        Ok(world)
    }

    /// A pair on these databases with its files under `dir` (a new one, or copies of the
    /// template's), and `platforms` platform processes.
    async fn on(
        dir: tempfile::TempDir,
        bank_db: String,
        platform_db: String,
        pg_dbs: Option<(String, Vec<String>)>,
        seed: u64,
        platforms: usize,
    ) -> anyhow::Result<World> {
        let cfg = PairConfig {
            killable: true,
            ..PairConfig::local(bank_db, platform_db, dir.path()).peer_timeout_ms(PEER_TIMEOUT_MS)
        };
        let pair = RunningPair::start(&cfg).await?;
        let bank = lazy(&pair.bank_url())?;
        let mut platforms_ch = vec![lazy(&pair.platform_url())?];
        let mut second = None;
        if platforms > 1 {
            let (addr, node) = pair.another_platform().await?;
            platforms_ch.push(lazy(&format!("http://{addr}"))?);
            second = Some(node);
        }
        Ok(World {
            pair,
            _second: second,
            _dir: dir,
            pg_dbs,
            bank,
            platforms: platforms_ch,
            customers: Vec::new(),
            deposited_fen: 0,
            orders: BTreeMap::new(),
            limit_on: BTreeMap::new(),
            limit_now: vec![0; CUSTOMERS],
            ledger: Vec::new(),
            now: START.parse().expect("a time"),
            closed: BTreeSet::new(),
            tally: Tally::default(),
            step: 0,
            seq: 0,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_c0de),
        })
    }

    /// Stops the nodes and drops the schedule's databases.
    pub async fn finish(self) {
        let World {
            pair,
            _second,
            pg_dbs,
            ..
        } = self;
        drop(_second);
        let _ = pair.stop().await;
        if let Some((base, names)) = pg_dbs {
            shared::store::drop_databases(&base, &names).await;
        }
    }

    fn branch(&self) -> BranchServiceClient<Channel> {
        BranchServiceClient::new(self.bank.clone())
    }
    fn bank_link(&self) -> BankLinkServiceClient<Channel> {
        BankLinkServiceClient::new(self.bank.clone())
    }
    fn sms(&self) -> SmsOutboxServiceClient<Channel> {
        SmsOutboxServiceClient::new(self.bank.clone())
    }
    fn sims(&self) -> Vec<SimulatorServiceClient<Channel>> {
        std::iter::once(&self.bank)
            .chain(&self.platforms)
            .map(|c| SimulatorServiceClient::new(c.clone()))
            .collect()
    }
    /// A platform process, by number (wrapping).
    fn platform(&self, i: usize) -> Channel {
        self.platforms[i % self.platforms.len()].clone()
    }
    fn pay(&self, i: usize) -> PayServiceClient<Channel> {
        PayServiceClient::new(self.platform(i))
    }
    fn website(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.platform(0))
    }
    pub(super) fn ops(&self) -> PlatformOpsServiceClient<Channel> {
        PlatformOpsServiceClient::new(self.platform(0))
    }
    pub(super) fn recon(&self) -> ReconOpsServiceClient<Channel> {
        ReconOpsServiceClient::new(self.platform(0))
    }
    fn refunds(&self) -> RefundOpsServiceClient<Channel> {
        RefundOpsServiceClient::new(self.platform(0))
    }
    pub(super) fn bank_client(&self) -> BankLinkServiceClient<Channel> {
        self.bank_link()
    }
    pub(super) fn branch_client(&self) -> BranchServiceClient<Channel> {
        self.branch()
    }

    fn next_no(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{}", self.seq)
    }

    fn today(&self) -> NaiveDate {
        shared::clock::business_date_of(self.now)
    }

    /// Notes that `customer`'s limit `fen` is in force today.
    fn limit_in_force(&mut self, customer: usize, fen: i64) {
        self.limit_now[customer] = fen;
        let e = self.limit_on.entry((customer, self.today())).or_insert(0);
        *e = (*e).max(fen);
    }

    async fn set_clock(&mut self, m: sim::set_clock_request::Move) -> anyhow::Result<Vec<String>> {
        let mut closed = Vec::new();
        // The platforms first, the bank last: the bank's answer carries the dates it closed.
        let mut sims = self.sims();
        sims.rotate_left(1);
        for mut s in sims {
            let r = s
                .set_clock(sim::SetClockRequest { r#move: Some(m) })
                .await
                .context("a clock move")?
                .into_inner();
            closed = r.closed_dates;
            if let Some(t) = r.clock.and_then(|c| c.now) {
                self.now = DateTime::from_timestamp(t.seconds, 0).unwrap_or(self.now);
            }
        }
        Ok(closed)
    }

    async fn freeze_at(&mut self, t: DateTime<Utc>) -> anyhow::Result<()> {
        use sim::set_clock_request::Move;
        self.set_clock(Move::Freeze(true)).await?;
        self.set_clock(Move::SetTo(shared::grpc::timestamp(t)))
            .await?;
        Ok(())
    }

    /// T+1 reconciliation of `date`, asked again while the bank has not settled the day.
    pub(super) async fn day_recon(&mut self, date: NaiveDate) -> anyhow::Result<()> {
        for _ in 0..DAY_RECON_TRIES_MAX {
            match self
                .recon()
                .run_day_recon(platform::RunDayReconRequest {
                    business_date: date.to_string(),
                    kinds: Vec::new(),
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(s)
                    if s.code() == GrpcCode::Unavailable
                        || s.code() == GrpcCode::DeadlineExceeded =>
                {
                    // Waiting for the bank to settle the day: nothing to wait on but time.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(s) => anyhow::bail!("T+1 reconciliation of {date} refused: {s:?}"),
            }
        }
        anyhow::bail!("T+1 reconciliation of {date} never found the day settled")
    }

    /// Clears every fault rule on every node.
    pub(super) async fn clear_faults(&mut self) -> anyhow::Result<()> {
        for mut s in self.sims() {
            s.clear_faults(sim::ClearFaultsRequest { id: 0 })
                .await
                .context("clear fault rules")?;
        }
        Ok(())
    }

    /// Lets everything settle: faults cleared, the clocks past every code's life and the
    /// pending grace window, real-time reconciliation, then the day-end cutover and T+1
    /// reconciliation of every closed day.
    pub(super) async fn settle(&mut self) -> anyhow::Result<()> {
        self.clear_faults().await?;
        let closed = self
            .set_clock(sim::set_clock_request::Move::AdvanceMs(20 * 60_000))
            .await?;
        self.after_move(closed).await?;
        self.realtime_recon_until_answered().await?;
        let closed = self
            .set_clock(sim::set_clock_request::Move::AdvanceToCutover(true))
            .await?;
        self.after_move(closed).await?;
        Ok(())
    }

    /// Real-time reconciliation, run again while the bank left pending orders unanswered (a
    /// loaded machine may answer past the platform's 800 ms wait): the checks then see every
    /// order settled by the bank's word, or the run says the bank never answered.
    async fn realtime_recon_until_answered(&mut self) -> anyhow::Result<()> {
        for _ in 0..REALTIME_RECON_TRIES_MAX {
            let run = self
                .recon()
                .run_realtime_recon(platform::RunRealtimeReconRequest {})
                .await
                .context("real-time reconciliation")?
                .into_inner();
            if run.pending_unanswered == 0 {
                return Ok(());
            }
        }
        anyhow::bail!(
            "real-time reconciliation: the bank left pending orders unanswered {REALTIME_RECON_TRIES_MAX} times"
        )
    }

    /// What the explorer records of a customer: card, account.
    pub(super) fn customer(&self, i: usize) -> &Customer {
        &self.customers[i]
    }
}
