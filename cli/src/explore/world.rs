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

/// The starting point every schedule of a run copies: the customers with their cards (1000.00
/// each), platform accounts, activated card-links and live sessions, and both clocks frozen at
/// the start. Made once per run (the argon2 hashing of passwords is most of a set-up's cost).
pub struct Template {
    customers: Vec<Customer>,
    deposited_fen: i64,
    store: TemplateStore,
}

enum TemplateStore {
    Files {
        _dir: tempfile::TempDir,
        bank: std::path::PathBuf,
        platform: std::path::PathBuf,
    },
    Postgres {
        base: String,
        names: Vec<String>,
    },
}

impl Template {
    /// Sets the customers up on a pair of their own, stops it, and keeps its databases. With
    /// `fixtures`, the file is loaded and its first activated sign-ups of NORMAL cards and
    /// accounts are the customers (a tester's own data); otherwise the explorer makes its own.
    pub async fn make(
        database: Option<&str>,
        seed: u64,
        fixtures: Option<&crate::fixtures::Fixtures>,
    ) -> anyhow::Result<Template> {
        let dir = scratch_dir()?;
        let (bank_db, platform_db, pg) = match database {
            None => (
                shared::store::sqlite_url_in(&dir.path().join("bank"), "bank.db")?,
                shared::store::sqlite_url_in(&dir.path().join("platform"), "platform.db")?,
                None,
            ),
            Some(base) => {
                let names = pg_names();
                let urls = shared::store::create_databases(base, &names).await?;
                (
                    urls[0].clone(),
                    urls[1].clone(),
                    Some((base.to_owned(), names)),
                )
            }
        };
        let bank_file = dir.path().join("bank").join("bank.db");
        let platform_file = dir.path().join("platform").join("platform.db");
        let mut w = World::on(dir, bank_db, platform_db, None, seed, 1).await?;
        let now = w.now;
        w.freeze_at(now).await?;
        match fixtures {
            None => {
                for i in 0..CUSTOMERS {
                    let c = w.new_customer(i).await?;
                    w.customers.push(c);
                    w.sign_up(i, LIMIT_TEMPLATE_FEN).await?;
                    anyhow::ensure!(
                        w.customers[i].signup_id.is_some(),
                        "the template's customer {i} could not sign up"
                    );
                }
            }
            Some(f) => w.fixture_customers(f).await?,
        }
        let World {
            pair,
            _dir: dir,
            customers,
            deposited_fen,
            ..
        } = w;
        pair.stop().await?;
        let store = match pg {
            None => TemplateStore::Files {
                _dir: dir,
                bank: bank_file,
                platform: platform_file,
            },
            Some((base, names)) => TemplateStore::Postgres { base, names },
        };
        Ok(Template {
            customers,
            deposited_fen,
            store,
        })
    }

    /// Drops the template's databases (PostgreSQL; files go with their directory).
    pub async fn drop(self) {
        if let TemplateStore::Postgres { base, names } = self.store {
            shared::store::drop_databases(&base, &names).await;
        }
    }
}

/// The template's sign-up limit, fen; each schedule changes it to its plan's.
const LIMIT_TEMPLATE_FEN: i64 = 30_000;

/// A temporary directory, memory-backed where the machine has one: a schedule's files live for
/// seconds, and the explorer measures the nodes, not the disk's flushes.
fn scratch_dir() -> anyhow::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .context("a temporary directory")
}

/// Two new PostgreSQL database names.
fn pg_names() -> Vec<String> {
    let tag = format!("{:016x}", rand::random::<u64>());
    ["bank", "platform"]
        .iter()
        .map(|n| format!("ibsim_explore_{tag}_{n}"))
        .collect()
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

    async fn new_customer(&mut self, i: usize) -> anyhow::Result<Customer> {
        let name = format!("探{}", ["甲", "乙", "丙", "丁", "戊"][i % 5]);
        let id_number = resident_id(&mut self.rng);
        let card = self
            .branch()
            .open_card(bank::OpenCardRequest {
                account_kind: bank::AccountKind::CardOnly as i32,
                holder_name: name.clone(),
                id_type: IdType::ResidentId as i32,
                id_number: id_number.clone(),
                card_password: CARD_PASSWORD.into(),
                opening_deposit: "1000.00".into(),
                card_number: String::new(),
            })
            .await
            .context("open a card")?
            .into_inner()
            .card
            .context("a card")?;
        self.deposited_fen += 100_000;
        let email = format!("x{i}-{:08x}@example.com", self.rng.random::<u32>());
        self.website()
            .register(platform::RegisterRequest {
                email: email.clone(),
                real_name: name.clone(),
                login_password: LOGIN_PASSWORD.into(),
                pay_password: PAY_PASSWORD.into(),
            })
            .await
            .context("register")?;
        let mobile = format!("138{:08}", self.rng.random_range(0..100_000_000u32));
        Ok(Customer {
            name,
            card_password: CARD_PASSWORD.into(),
            login_password: LOGIN_PASSWORD.into(),
            pay_password: PAY_PASSWORD.into(),
            id_number,
            card: card.card_number,
            email,
            mobile,
            signup_id: None,
            token: String::new(),
            login_at: self.now,
        })
    }

    /// Signs customer `i` up at the branch, activates the card-link and logs in. A sign-up the
    /// platform did not answer leaves the customer unsigned (later steps skip it).
    async fn sign_up(&mut self, i: usize, fen: i64) -> anyhow::Result<()> {
        let c = self.customers[i].clone();
        let form = bank::SignUpRequest {
            request_id: self.next_no("REQ"),
            platform_account: c.email.clone(),
            real_name: c.name.clone(),
            id_type: IdType::ResidentId as i32,
            id_number: c.id_number.clone(),
            mobile: c.mobile.clone(),
            card_number: c.card.clone(),
            card_password: c.card_password.clone(),
            daily_limit: yuan(fen),
        };
        let signed = match self.branch().sign_up(form).await {
            Ok(r) => r.into_inner().signup.context("a sign-up")?,
            Err(_) => return Ok(()),
        };
        self.limit_in_force(i, fen);
        self.login(i).await?;
        let token = self.customers[i].token.clone();
        if self
            .website()
            .activate(platform::ActivateRequest {
                session_token: token,
                card_number: c.card.clone(),
            })
            .await
            .is_ok()
        {
            self.customers[i].signup_id = Some(signed.signup_id);
        }
        Ok(())
    }

    /// Loads a tester's fixture file and takes its first [`CUSTOMERS`] activated sign-ups of
    /// NORMAL cards and accounts as the customers, logged in; their balances are what went in.
    async fn fixture_customers(&mut self, f: &crate::fixtures::Fixtures) -> anyhow::Result<()> {
        crate::fixtures::load(self.bank.clone(), self.platform(0), f)
            .await
            .context("loading the fixture file")?;
        let normal = |s: &Option<String>| s.as_deref().is_none_or(|s| s == "NORMAL");
        for s in f.signups.iter().filter(|s| s.activate) {
            if self.customers.len() == CUSTOMERS {
                break;
            }
            let card = f
                .cards
                .iter()
                .find(|c| c.number == s.card && normal(&c.status));
            let account = f
                .accounts
                .iter()
                .find(|a| a.email.eq_ignore_ascii_case(&s.account) && normal(&a.status));
            let (Some(card), Some(account)) = (card, account) else {
                continue;
            };
            let signup = self
                .branch()
                .get_sign_up(bank::GetSignUpRequest {
                    key: Some(bank::get_sign_up_request::Key::CardNumber(
                        card.number.clone(),
                    )),
                })
                .await
                .context("the fixture's sign-up")?
                .into_inner()
                .signup
                .context("a sign-up")?;
            let held = self
                .branch()
                .get_card(bank::GetCardRequest {
                    card_number: card.number.clone(),
                })
                .await?
                .into_inner()
                .card
                .context("a card")?;
            self.deposited_fen += fen_of(&held.balance);
            self.customers.push(Customer {
                name: account.name.clone(),
                card_password: card.password.clone(),
                login_password: account.login_password.clone(),
                pay_password: account.pay_password.clone(),
                id_number: card.id_number.clone(),
                card: card.number.clone(),
                email: account.email.to_ascii_lowercase(),
                mobile: s.mobile.clone(),
                signup_id: Some(signup.signup_id),
                token: String::new(),
                login_at: self.now,
            });
            let i = self.customers.len() - 1;
            self.login(i).await?;
        }
        anyhow::ensure!(
            self.customers.len() == CUSTOMERS,
            "the fixture file has {} activated sign-up(s) of NORMAL cards and accounts; the explorer needs {CUSTOMERS}",
            self.customers.len()
        );
        Ok(())
    }

    async fn login(&mut self, i: usize) -> anyhow::Result<()> {
        let c = &self.customers[i];
        let token = self
            .website()
            .login(platform::LoginRequest {
                email: c.email.clone(),
                login_password: c.login_password.clone(),
            })
            .await
            .context("login")?
            .into_inner()
            .session_token;
        let now = self.now;
        let c = &mut self.customers[i];
        c.token = token;
        c.login_at = now;
        Ok(())
    }

    /// A live session for customer `i`.
    async fn session(&mut self, i: usize) -> anyhow::Result<String> {
        let c = &self.customers[i];
        if c.token.is_empty() || (self.now - c.login_at).num_minutes() >= SESSION_RENEW_MIN {
            self.login(i).await?;
        }
        Ok(self.customers[i].token.clone())
    }

    fn record(
        &mut self,
        order_no: &str,
        rpc: &'static str,
        answer: &Result<platform::Order, Status>,
    ) {
        let told = match answer {
            Ok(o) if o.status == platform::OrderStatus::Success as i32 => Told::Paid {
                serial: o.bank_serial_no.clone(),
                date: o.business_date.clone(),
            },
            Ok(_) => return,
            Err(s) if settles_failed(s) => Told::Failed {
                code: format!("{:?}", s.code()),
                reason: reason(s),
            },
            Err(_) => return,
        };
        self.ledger.push(Answer {
            order_no: order_no.to_owned(),
            rpc,
            told,
            step: self.step,
        });
    }

    async fn start_payment(
        &mut self,
        i: usize,
        via: usize,
        order_no: &str,
        fen: i64,
    ) -> Result<platform::Order, Status> {
        let token = self
            .session(i)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let signup_id = self.customers[i].signup_id.clone().unwrap_or_default();
        let pay_password = self.customers[i].pay_password.clone();
        self.orders.insert(order_no.to_owned(), i);
        let r = self
            .pay(via)
            .start_payment(platform::StartPaymentRequest {
                session_token: token,
                order_no: order_no.to_owned(),
                amount: yuan(fen),
                pay_password,
                signup_id,
                description: "explore".into(),
            })
            .await
            .map(|r| r.into_inner().order.unwrap_or_default());
        self.record(order_no, "StartPayment", &r);
        r
    }

    /// The code the bank texted for `order_no`, if one was sent.
    async fn code_for(&self, i: usize, order_no: &str) -> Option<String> {
        self.sms()
            .list_sms(sim::ListSmsRequest {
                mobile: self.customers[i].mobile.clone(),
                limit: 500,
            })
            .await
            .ok()?
            .into_inner()
            .messages
            .into_iter()
            .find(|m| m.order_no == order_no)
            .map(|m| m.otp_code)
    }

    /// `racers` identical confirmations at once, over the platform processes in turn.
    async fn confirm(&mut self, i: usize, order_no: &str, code: &str, racers: usize) {
        let Ok(token) = self.session(i).await else {
            return;
        };
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(racers));
        let calls: Vec<_> = (0..racers)
            .map(|n| {
                let (mut pay, go) = (self.pay(n), go.clone());
                let req = platform::ConfirmPaymentRequest {
                    session_token: token.clone(),
                    order_no: order_no.to_owned(),
                    otp_code: code.to_owned(),
                };
                tokio::spawn(async move {
                    go.wait().await;
                    pay.confirm_payment(req)
                        .await
                        .map(|r| r.into_inner().order.unwrap_or_default())
                })
            })
            .collect();
        if racers > 1 {
            self.tally.races += 1;
        }
        for c in calls {
            let answer = c
                .await
                .unwrap_or_else(|e| Err(Status::internal(e.to_string())));
            self.record(order_no, "ConfirmPayment", &answer);
        }
    }

    fn wrong(code: &str) -> String {
        if code == "000000" { "111111" } else { "000000" }.to_owned()
    }

    /// Carries out one step. An error is the explorer's own trouble (a node it cannot reach at
    /// all), not a finding.
    pub async fn apply(&mut self, op: &Op) -> anyhow::Result<()> {
        use sim::set_clock_request::Move;
        self.tally.steps += 1;
        match *op {
            Op::Pay {
                ref order,
                customer,
                fen,
                code,
                racers,
            } => self.pay_op(customer, order, fen, code, racers).await,
            Op::StartTwice {
                ref order,
                customer,
                fen,
            } => self.start_twice(customer, order, fen).await,
            Op::ReusedCode {
                ref order,
                ref other,
                customer,
            } => self.reused_code(customer, order, other).await,
            Op::Deposit { .. } | Op::ChangeLimit { .. } | Op::ChangeMobile { .. } => {
                self.teller(op).await
            }
            Op::Resign { customer, fen } => self.resign(customer, fen).await,
            Op::SignUpRefused { customer } => self.sign_up_refused(customer).await,
            Op::Query { customer } => self.query(customer).await,
            Op::Refund { lines } => self.refund(lines).await,
            Op::RealtimeRecon => {
                let _ = self
                    .recon()
                    .run_realtime_recon(platform::RunRealtimeReconRequest {})
                    .await;
                Ok(())
            }
            Op::Advance { minutes } => self.move_clock(Move::AdvanceMs(minutes * 60_000)).await,
            Op::Cutover => self.move_clock(Move::AdvanceToCutover(true)).await,
            Op::Fault(f) => self.fault(f).await,
            Op::Restart(node) => {
                self.tally.restarts += 1;
                match node {
                    Node::Bank => self.pair.restart_bank().await,
                    Node::Platform => self.pair.restart_platform().await,
                }
            }
        }
    }

    async fn move_clock(&mut self, m: sim::set_clock_request::Move) -> anyhow::Result<()> {
        let closed = self.set_clock(m).await?;
        self.after_move(closed).await
    }

    /// The same StartPayment twice at once (over both platform processes), then a confirmation.
    async fn start_twice(&mut self, customer: usize, order: &str, fen: i64) -> anyhow::Result<()> {
        if self.customers[customer].signup_id.is_none() {
            return Ok(());
        }
        self.orders.insert(order.to_owned(), customer);
        self.session(customer).await?;
        self.tally.races += 1;
        let (a, b) = tokio::join!(
            self.clone_start(customer, 0, order, fen),
            self.clone_start(customer, 1, order, fen)
        );
        for r in [a, b] {
            self.record(order, "StartPayment", &r);
        }
        if let Some(code) = self.code_for(customer, order).await {
            self.confirm(customer, order, &code, 1).await;
        }
        Ok(())
    }

    /// `order`'s code typed for `other` (refused), then for `order`.
    async fn reused_code(
        &mut self,
        customer: usize,
        order: &str,
        other: &str,
    ) -> anyhow::Result<()> {
        if self.customers[customer].signup_id.is_none() {
            return Ok(());
        }
        let _ = self.start_payment(customer, 0, order, 100).await;
        let _ = self.start_payment(customer, 0, other, 100).await;
        if let Some(code) = self.code_for(customer, order).await {
            self.confirm(customer, other, &code, 1).await;
            self.confirm(customer, order, &code, 1).await;
        }
        Ok(())
    }

    /// A teller's deposit, limit change or mobile change; what the bank confirmed is noted.
    async fn teller(&mut self, op: &Op) -> anyhow::Result<()> {
        match *op {
            Op::Deposit { customer, fen } => {
                let r = self
                    .branch()
                    .deposit(bank::DepositRequest {
                        card_number: self.customers[customer].card.clone(),
                        amount: yuan(fen),
                    })
                    .await;
                if r.is_ok() {
                    self.deposited_fen += fen;
                }
            }
            Op::ChangeLimit { customer, fen } => {
                let r = self
                    .branch()
                    .change_limit(bank::ChangeLimitRequest {
                        card_number: self.customers[customer].card.clone(),
                        daily_limit: yuan(fen),
                    })
                    .await;
                if r.is_ok() {
                    self.limit_in_force(customer, fen);
                }
            }
            Op::ChangeMobile { customer } => {
                let mobile = format!("139{:08}", self.rng.random_range(0..100_000_000u32));
                let r = self
                    .branch()
                    .change_mobile(bank::ChangeMobileRequest {
                        card_number: self.customers[customer].card.clone(),
                        mobile: mobile.clone(),
                    })
                    .await;
                if r.is_ok() {
                    self.customers[customer].mobile = mobile;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The sign-up cancelled at the branch, then made again with limit `fen` and activated.
    async fn resign(&mut self, customer: usize, fen: i64) -> anyhow::Result<()> {
        let card = self.customers[customer].card.clone();
        let cancelled = self
            .branch()
            .cancel_sign_up(bank::CancelSignUpRequest { card_number: card })
            .await;
        if cancelled.is_ok() {
            self.customers[customer].signup_id = None;
            self.limit_now[customer] = 0;
            self.sign_up(customer, fen).await?;
        }
        Ok(())
    }

    /// A sign-up under a name that is not the account's: it must be refused.
    async fn sign_up_refused(&mut self, customer: usize) -> anyhow::Result<()> {
        let c = self.customers[customer].clone();
        let r = self
            .branch()
            .sign_up(bank::SignUpRequest {
                request_id: self.next_no("BAD"),
                platform_account: c.email,
                real_name: "别人".into(),
                id_type: IdType::ResidentId as i32,
                id_number: c.id_number,
                mobile: c.mobile,
                card_number: c.card,
                card_password: c.card_password,
                daily_limit: "100.00".into(),
            })
            .await;
        anyhow::ensure!(r.is_err(), "a sign-up with another name was accepted");
        Ok(())
    }

    async fn clone_start(
        &self,
        i: usize,
        via: usize,
        order_no: &str,
        fen: i64,
    ) -> Result<platform::Order, Status> {
        let c = &self.customers[i];
        self.pay(via)
            .start_payment(platform::StartPaymentRequest {
                session_token: c.token.clone(),
                order_no: order_no.to_owned(),
                amount: yuan(fen),
                pay_password: c.pay_password.clone(),
                signup_id: c.signup_id.clone().unwrap_or_default(),
                description: "explore".into(),
            })
            .await
            .map(|r| r.into_inner().order.unwrap_or_default())
    }

    async fn pay_op(
        &mut self,
        i: usize,
        order: &str,
        fen: i64,
        code: Code,
        racers: usize,
    ) -> anyhow::Result<()> {
        if self.customers[i].signup_id.is_none() {
            return Ok(());
        }
        let order = order.to_owned();
        if self.start_payment(i, 0, &order, fen).await.is_err() {
            return Ok(());
        }
        let Some(right) = self.code_for(i, &order).await else {
            return Ok(());
        };
        let wrong = Self::wrong(&right);
        match code {
            Code::Right => self.confirm(i, &order, &right, racers).await,
            Code::WrongFirst => {
                self.confirm(i, &order, &wrong, 1).await;
                self.confirm(i, &order, &right, racers).await;
            }
            Code::WrongThrice => {
                for _ in 0..3 {
                    self.confirm(i, &order, &wrong, 1).await;
                }
                self.confirm(i, &order, &right, racers).await;
            }
            Code::Expired => {
                let closed = self
                    .set_clock(sim::set_clock_request::Move::AdvanceMs(6 * 60_000))
                    .await?;
                self.after_move(closed).await?;
                self.confirm(i, &order, &right, racers).await;
            }
        }
        Ok(())
    }

    /// The balance and limit the customer is shown are the bank's at that moment.
    async fn query(&mut self, i: usize) -> anyhow::Result<()> {
        if self.customers[i].signup_id.is_none() {
            return Ok(());
        }
        let token = self.session(i).await?;
        let shown = self
            .pay(0)
            .get_balance(platform::GetBalanceRequest {
                session_token: token.clone(),
                pay_password: self.customers[i].pay_password.clone(),
                signup_id: String::new(),
            })
            .await;
        let card = self
            .branch()
            .get_card(bank::GetCardRequest {
                card_number: self.customers[i].card.clone(),
            })
            .await?
            .into_inner()
            .card
            .context("a card")?;
        self.tally.checks += 1;
        if let Ok(b) = shown {
            anyhow::ensure!(
                b.into_inner().available_balance == card.balance,
                "the balance shown is not the bank's ({})",
                card.balance
            );
        }
        let _ = self
            .pay(0)
            .get_remaining_limit(platform::GetRemainingLimitRequest {
                session_token: token,
                signup_id: String::new(),
            })
            .await;
        Ok(())
    }

    async fn refund(&mut self, lines: usize) -> anyhow::Result<()> {
        // Paid orders, as the platform holds them.
        let mut paid = Vec::new();
        for order_no in self.orders.keys().cloned().collect::<Vec<_>>() {
            if let Ok(o) = self
                .ops()
                .get_order_by_no(platform::GetOrderByNoRequest {
                    order_no: order_no.clone(),
                })
                .await
            {
                let o = o.into_inner().order.unwrap_or_default();
                if o.status == platform::OrderStatus::Success as i32 {
                    paid.push(o);
                }
            }
        }
        if paid.is_empty() {
            return Ok(());
        }
        let mut refunds = Vec::new();
        for n in 0..lines {
            let o = &paid[self.rng.random_range(0..paid.len())];
            let left = fen_of(&o.amount) - fen_of(&o.refunded_amount);
            let fen = if n == 0 {
                // One line asks for more than was paid: it must fail alone.
                fen_of(&o.amount) + 1
            } else {
                self.rng.random_range(1..=left.max(1))
            };
            refunds.push(platform::RefundEntry {
                order_no: o.order_no.clone(),
                amount: yuan(fen.min(500_000)),
                refund_id: String::new(),
                reason: "explore".into(),
            });
        }
        let batch_no = self.next_no("RB");
        let created = self
            .refunds()
            .create_refund_batch(platform::CreateRefundBatchRequest {
                batch_no: batch_no.clone(),
                refunds,
            })
            .await;
        if created.is_err() {
            return Ok(());
        }
        let _ = BatchJobServiceClient::new(self.bank.clone())
            .run_refund_job(sim::RunRefundJobRequest {})
            .await;
        let _ = self
            .refunds()
            .fetch_refund_result(platform::FetchRefundResultRequest { batch_no })
            .await;
        Ok(())
    }

    /// After a clock move: the session ages, and a closed day is reconciled T+1 at once.
    async fn after_move(&mut self, closed: Vec<String>) -> anyhow::Result<()> {
        for d in closed {
            let date: NaiveDate = d.parse().context("a closed date")?;
            self.closed.insert(date);
            self.day_recon(date).await?;
        }
        let today = self.today();
        for i in 0..CUSTOMERS {
            if self.limit_now[i] > 0 {
                let e = self.limit_on.entry((i, today)).or_insert(0);
                *e = (*e).max(self.limit_now[i]);
            }
        }
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

    async fn fault(&mut self, f: Fault) -> anyhow::Result<()> {
        use sim::fault_rule::Action;
        let (on_bank, side, method, action) = match f {
            Fault::PayReplyDropped => (
                false,
                sim::FaultSide::Caller,
                "Pay",
                Action::DropReply(true),
            ),
            Fault::PayDeliveredTwice => (
                false,
                sim::FaultSide::Caller,
                "Pay",
                Action::DeliverTwice(true),
            ),
            Fault::PayDelayedPastTimeout => (
                true,
                sim::FaultSide::Callee,
                "Pay",
                Action::DelayMs(DELAY_PAST_TIMEOUT_MS),
            ),
            Fault::CodeRequestUnavailable => (
                false,
                sim::FaultSide::Caller,
                "RequestPaymentCode",
                Action::Fail(sim::FaultStatus {
                    code: GrpcCode::Unavailable as i32,
                    ..Default::default()
                }),
            ),
            Fault::CancelLostWrite => (
                false,
                sim::FaultSide::Callee,
                "ConfirmCancel",
                Action::LoseWrite(true),
            ),
        };
        let rule = sim::FaultRule {
            side: side as i32,
            method: method.into(),
            action: Some(action),
            first_n: 1,
            ..Default::default()
        };
        let mut sims = self.sims();
        let targets: Vec<&mut SimulatorServiceClient<Channel>> = if on_bank {
            vec![&mut sims[0]]
        } else {
            sims.iter_mut().skip(1).collect()
        };
        for s in targets {
            s.add_fault(sim::AddFaultRequest {
                rule: Some(rule.clone()),
            })
            .await
            .context("a fault rule")?;
        }
        self.tally.faults += 1;
        Ok(())
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
        self.recon()
            .run_realtime_recon(platform::RunRealtimeReconRequest {})
            .await
            .context("real-time reconciliation")?;
        let closed = self
            .set_clock(sim::set_clock_request::Move::AdvanceToCutover(true))
            .await?;
        self.after_move(closed).await?;
        Ok(())
    }

    /// What the explorer records of a customer: card, account.
    pub(super) fn customer(&self, i: usize) -> &Customer {
        &self.customers[i]
    }
}

/// Whether a refusal of StartPayment or ConfirmPayment says the order FAILED (docs/errors.md: a
/// bank refusal of a payment settles it, except OTP_WRONG and SYSTEM_BUSY; reconciliation's own
/// RECON_* failures likewise): the card was not debited for it, and never will be.
fn settles_failed(s: &Status) -> bool {
    let (r, d) = (reason(s), domain(s));
    let refusal = matches!(
        s.code(),
        GrpcCode::FailedPrecondition | GrpcCode::PermissionDenied
    );
    refusal
        && ((d == "bank.interbank-sim" && r != "OTP_WRONG")
            || (d == "platform.interbank-sim" && r.starts_with("RECON_")))
}
