//! The end-to-end harness: each test starts both nodes in-process on ephemeral ports, each with a
//! fresh database of its own (SQLite files in a temporary directory, or new PostgreSQL databases),
//! and talks to them only over gRPC. `TEST_LOG=1` shows the nodes' logs.
//!
//! PostgreSQL: `IBSIM_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! names a server where each test creates its two databases and drops them afterwards. Where none
//! is reachable the PostgreSQL variants print why and pass as skipped, unless
//! `IBSIM_REQUIRE_POSTGRES=1` (CI sets it), which makes them fail instead.

use pair::process::{NodeProcess, free_port};
use pair::{PairConfig, RunningPair};
use proto::bank::v1 as bank;
use proto::bank::v1::bank_link_service_client::BankLinkServiceClient;
use proto::bank::v1::bank_recon_service_client::BankReconServiceClient;
use proto::bank::v1::bank_refund_service_client::BankRefundServiceClient;
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
use sqlx::{Connection, Row};
use tonic::Status;
use tonic::transport::Channel;
use tonic_types::StatusExt;

pub mod capture;
mod recon;
mod refund;
pub use refund::{BatchLine, batch_file, sha256_hex};

/// How a test wants its nodes started (the default: both in this process, refund job on demand).
#[derive(Debug, Clone)]
pub struct Options {
    /// The bank's refund batch job (default: runs only when asked).
    pub refund_job: bank_node::RefundJobConfig,
    /// Run the bank as a process of its own from this executable (the suites pass
    /// `env!("CARGO_BIN_EXE_e2e-bank-node")`), so that the test can kill and restart it; `None`
    /// runs both nodes in the test's process.
    pub bank_exe: Option<std::path::PathBuf>,
    /// Start both nodes' clocks frozen at this time (in-process nodes only); `None`: real time.
    pub frozen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The platform's real-time reconciliation (default: runs only when asked, grace 900 s).
    pub recon: platform_node::ReconConfig,
    /// PostgreSQL: give the platform's database a linguistic collation (ICU, root locale),
    /// which orders text otherwise than byte by byte.
    pub platform_icu_collation: bool,
    /// Mutual TLS and/or signed interbank messages, with a fresh set of credentials made by
    /// `ibsim certs` in the test's directory ([`TestApp::security_dir`]); with TLS on, the
    /// test's own channels use it (trusting that CA) and show no client certificate.
    pub secure: Secure,
    /// With `secure`: the institutions' signing algorithm (default Ed25519).
    pub sign_algorithm: shared::security::keys::Algorithm,
    /// Both nodes' transport limits (default: the flags' defaults).
    pub transport: shared::grpc::transport::TransportArgs,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            refund_job: bank_node::RefundJobConfig {
                interval_secs: 0,
                ..Default::default()
            },
            bank_exe: None,
            frozen_at: None,
            platform_icu_collation: false,
            secure: Secure::Off,
            sign_algorithm: Default::default(),
            transport: Default::default(),
            recon: platform_node::ReconConfig {
                interval_secs: 0,
                ..Default::default()
            },
        }
    }
}

/// Which protections of docs/security.md a test's pair runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Secure {
    /// Plain text, unsigned.
    #[default]
    Off,
    /// Mutual TLS and signed interbank messages.
    Both,
    /// Mutual TLS only.
    TlsOnly,
    /// Signed interbank messages only, over plain text.
    SigningOnly,
}

impl Secure {
    /// Whether TLS is on.
    pub fn tls(self) -> bool {
        matches!(self, Secure::Both | Secure::TlsOnly)
    }

    /// Whether signing is on.
    pub fn signing(self) -> bool {
        matches!(self, Secure::Both | Secure::SigningOnly)
    }
}

/// Which database both nodes run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file per node in a temporary directory.
    Sqlite,
    /// A new PostgreSQL database per node.
    Postgres,
}

const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn pg_base() -> String {
    std::env::var("IBSIM_TEST_POSTGRES_URL").unwrap_or_else(|_| PG_DEFAULT.to_owned())
}

/// The PostgreSQL server tests make their databases on, if it answers; where it does not, `None`
/// after printing why, or a panic when `IBSIM_REQUIRE_POSTGRES=1`.
pub async fn postgres_server() -> Option<String> {
    let base = pg_base();
    let probe = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::PgConnection::connect(&base),
    )
    .await;
    match probe {
        Ok(Ok(conn)) => {
            conn.close().await.ok();
            Some(base)
        }
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if std::env::var("IBSIM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL required but not reachable at {base}: {why}");
            }
            eprintln!(
                "skipped: PostgreSQL not reachable at {base} ({why}); set IBSIM_TEST_POSTGRES_URL"
            );
            None
        }
    }
}

/// Both nodes and a client for every service.
pub struct TestApp {
    pair: Option<RunningPair>,
    bank_process: Option<NodeProcess>,
    /// The teller's counter.
    pub branch: BranchServiceClient<Channel>,
    /// The bank's interbank service (as the platform calls it).
    pub bank_link: BankLinkServiceClient<Channel>,
    /// The platform website.
    pub website: AccountServiceClient<Channel>,
    /// Platform operations.
    pub ops: PlatformOpsServiceClient<Channel>,
    /// The platform website's card-link functions.
    pub pay: PayServiceClient<Channel>,
    /// The bank's simulator controls.
    pub bank_sim: SimulatorServiceClient<Channel>,
    /// The platform's simulator controls.
    pub platform_sim: SimulatorServiceClient<Channel>,
    /// The bank's SMS outbox.
    pub sms: SmsOutboxServiceClient<Channel>,
    /// The bank's file server for refund batches.
    pub bank_refunds: BankRefundServiceClient<Channel>,
    /// The bank's batch job trigger.
    pub bank_jobs: BatchJobServiceClient<Channel>,
    /// Settlement staff's batch refunds at the platform.
    pub refunds: RefundOpsServiceClient<Channel>,
    /// Settlement staff's reconciliation at the platform.
    pub recon: ReconOpsServiceClient<Channel>,
    /// The bank's reconciliation service (as the platform calls it).
    pub bank_recon: BankReconServiceClient<Channel>,
    /// A channel to the bank, for other clients (health, reflection).
    pub bank_channel: Channel,
    /// A channel to the platform.
    pub platform_channel: Channel,
    bank_db: String,
    platform_db: String,
    pg_dbs: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A customer with a card at the bank and an account on the platform, same name on both.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The full card number.
    pub card_number: String,
    /// The card password.
    pub card_password: String,
    /// Real name.
    pub name: String,
    /// Resident ID number.
    pub id_number: String,
    /// Platform account.
    pub email: String,
    /// Login password.
    pub login_password: String,
}

/// A unique suffix for names in one test run.
pub fn unique() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A legal resident ID (GB 11643 check character) with a random serial.
pub fn resident_id() -> String {
    resident_id_born_on("19900307")
}

/// A legal resident ID (right check character) of someone born on `yyyymmdd`, with a random serial.
pub fn resident_id_born_on(yyyymmdd: &str) -> String {
    let first17 = format!("110105{yyyymmdd}{:03}", rand::random::<u16>() % 1000);
    let check = shared::domain::resident_id_check_char(first17.as_bytes()) as char;
    format!("{first17}{check}")
}

/// A legal resident ID other than `id`: someone else's. `resident_id` alone draws one of a
/// thousand serials, so two draws are the same one time in a thousand.
pub fn someone_elses_resident_id(id: &str) -> String {
    std::iter::repeat_with(resident_id)
        .find(|other| other != id)
        .expect("an endless iterator finds one")
}

/// The ErrorInfo reason of a status ("" if none).
pub fn reason(s: &Status) -> String {
    s.get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// The ErrorInfo domain of a status ("" if none).
pub fn domain(s: &Status) -> String {
    s.get_details_error_info()
        .map(|i| i.domain)
        .unwrap_or_default()
}

/// The ErrorInfo `field` metadata of a status ("" if none).
pub fn field(s: &Status) -> String {
    s.get_details_error_info()
        .and_then(|i| i.metadata.get("field").cloned())
        .unwrap_or_default()
}

/// A fault rule firing for every matching call.
pub fn fault_rule(
    side: sim::FaultSide,
    method: &str,
    action: sim::fault_rule::Action,
) -> sim::FaultRule {
    sim::FaultRule {
        side: side as i32,
        method: method.to_owned(),
        action: Some(action),
        ..Default::default()
    }
}

/// A fault rule firing for the next matching call only.
pub fn fault_rule_once(
    side: sim::FaultSide,
    method: &str,
    action: sim::fault_rule::Action,
) -> sim::FaultRule {
    sim::FaultRule {
        first_n: 1,
        ..fault_rule(side, method, action)
    }
}

/// A fault rule's action: fail the call with UNAVAILABLE (the peer unreachable).
pub fn unavailable() -> sim::fault_rule::Action {
    sim::fault_rule::Action::Fail(sim::FaultStatus {
        code: tonic::Code::Unavailable as i32,
        ..Default::default()
    })
}

/// Asserts a call was refused with this code and reason, and returns the status.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    r: Result<T, Status>,
    code: tonic::Code,
    why: &str,
) -> Status {
    match r {
        Ok(ok) => panic!("expected {code:?}/{why}, got success: {ok:?}"),
        Err(s) => {
            assert_eq!(
                (s.code(), reason(&s).as_str()),
                (code, why),
                "status: {s:?}"
            );
            s
        }
    }
}

impl TestApp {
    /// Whether both nodes run on PostgreSQL (else on SQLite files).
    pub fn on_postgres(&self) -> bool {
        !self.pg_dbs.is_empty()
    }

    /// Starts both nodes on `backend`; `None` (after printing why) when PostgreSQL is wanted
    /// but not reachable and not required.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, Options::default()).await
    }

    /// Like [`TestApp::spawn`], started as `opts` asks.
    pub async fn spawn_with(backend: Backend, opts: Options) -> Option<TestApp> {
        assert!(
            opts.frozen_at.is_none() || opts.bank_exe.is_none(),
            "a bank process starts on real time; freeze it through the simulator API"
        );
        if std::env::var("TEST_LOG").is_ok() {
            shared::telemetry::init(shared::telemetry::LogFormat::Text);
        }
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut pg_dbs = Vec::new();
        let (bank_db, platform_db) = match backend {
            Backend::Sqlite => (
                shared::store::sqlite_url_in(&dir.path().join("bank"), "bank.db").unwrap(),
                shared::store::sqlite_url_in(&dir.path().join("platform"), "platform.db").unwrap(),
            ),
            Backend::Postgres => {
                let base = pg_base();
                let tag = unique();
                let names: Vec<String> = ["bank", "platform"]
                    .iter()
                    .map(|node| format!("ibsim_test_{tag}_{node}"))
                    .collect();
                let urls = match shared::store::create_databases(&base, &names).await {
                    Ok(urls) => urls,
                    Err(e) => {
                        if std::env::var("IBSIM_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                            panic!("PostgreSQL required but not usable at {base}: {e:#}");
                        }
                        eprintln!(
                            "skipped: PostgreSQL not usable at {base} ({e:#}); set IBSIM_TEST_POSTGRES_URL"
                        );
                        return None;
                    }
                };
                if opts.platform_icu_collation {
                    use sqlx::Executor;
                    let mut admin = connect_any(&base).await;
                    for sql in [
                        format!("DROP DATABASE {}", names[1]),
                        format!(
                            "CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'",
                            names[1]
                        ),
                    ] {
                        admin.execute(sql.as_str()).await.expect("an ICU database");
                    }
                }
                pg_dbs = names;
                (urls[0].clone(), urls[1].clone())
            }
        };
        let security_dir = dir.path().join("security");
        if opts.secure != Secure::Off {
            shared::security::certs::write_set(&security_dir, false, opts.sign_algorithm)
                .expect("credentials");
        }
        let security = shared::security::SecurityArgs {
            tls_dir: opts.secure.tls().then(|| security_dir.clone()),
            sign_dir: opts.secure.signing().then(|| security_dir.clone()),
        };
        let mut cfg = PairConfig {
            bank_elsewhere: opts.bank_exe.is_some(),
            frozen_at: opts.frozen_at,
            ..PairConfig::local(bank_db.clone(), platform_db.clone(), dir.path())
                .secured(security)
                // Metrics on ephemeral ports: `TestApp::scrape` reads them.
                .with_metrics()
        };
        cfg.bank.refund_job = opts.refund_job.clone();
        cfg.platform.recon = opts.recon.clone();
        cfg.bank.transport = opts.transport.clone();
        cfg.platform.transport = opts.transport.clone();
        if opts.bank_exe.is_some() {
            cfg.bank.listen = free_port().expect("a port for the bank process");
        }
        let pair = RunningPair::start(&cfg).await.expect("both nodes start");
        let bank_process = match opts.bank_exe {
            Some(exe) => Some(
                NodeProcess::start(exe, pair.bank_config())
                    .await
                    .expect("the bank process serves"),
            ),
            None => None,
        };
        let tester_channel = |url: String| {
            let credentials = opts.secure.tls().then(|| {
                shared::grpc::guard::ClientCredentials::tester_in(&security_dir)
                    .expect("the tester's credentials")
            });
            async move {
                let mut ep = Channel::from_shared(url).unwrap();
                if let Some(c) = credentials {
                    ep = ep.tls_config(c.tls()).expect("TLS");
                }
                ep.connect().await.expect("node reachable")
            }
        };
        let bank_channel = tester_channel(pair.bank_url()).await;
        let platform_channel = tester_channel(pair.platform_url()).await;
        Some(TestApp {
            pair: Some(pair),
            bank_process,
            branch: BranchServiceClient::new(bank_channel.clone()),
            bank_link: BankLinkServiceClient::new(bank_channel.clone()),
            website: AccountServiceClient::new(platform_channel.clone()),
            ops: PlatformOpsServiceClient::new(platform_channel.clone()),
            pay: PayServiceClient::new(platform_channel.clone()),
            bank_sim: SimulatorServiceClient::new(bank_channel.clone()),
            platform_sim: SimulatorServiceClient::new(platform_channel.clone()),
            sms: SmsOutboxServiceClient::new(bank_channel.clone()),
            bank_refunds: BankRefundServiceClient::new(bank_channel.clone()),
            bank_jobs: BatchJobServiceClient::new(bank_channel.clone()),
            refunds: RefundOpsServiceClient::new(platform_channel.clone()),
            recon: ReconOpsServiceClient::new(platform_channel.clone()),
            bank_recon: BankReconServiceClient::new(bank_channel.clone()),
            bank_channel,
            platform_channel,
            bank_db,
            platform_db,
            pg_dbs,
            _dir: dir,
        })
    }

    /// Where the credentials of a test started with [`Options::secure`] are.
    pub fn security_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("security")
    }

    /// The bank's URL (`https` with TLS on).
    pub fn bank_url(&self) -> String {
        self.pair.as_ref().expect("running").bank_url()
    }

    /// The platform's URL (`https` with TLS on).
    pub fn platform_url(&self) -> String {
        self.pair.as_ref().expect("running").platform_url()
    }

    /// The platform's configuration as the pair runs it (for another platform on its data).
    pub fn platform_config(&self) -> &platform_node::Config {
        self.pair().platform_config()
    }

    /// The bank's configuration, as its node runs.
    pub fn bank_config(&self) -> &bank_node::Config {
        self.pair().bank_config()
    }

    /// Runs one SQL query returning one TEXT column on the bank's database.
    pub async fn bank_texts(&self, sql: &str, arg: &str) -> Vec<String> {
        self.bank_column(sql, arg).await
    }

    /// The platform's database URL.
    pub fn platform_database_url(&self) -> &str {
        &self.platform_db
    }

    /// The bank process (for a test started with `bank_exe`).
    pub fn bank_process(&mut self) -> &mut NodeProcess {
        self.bank_process
            .as_mut()
            .expect("the test runs the bank as a process (Options::bank_exe)")
    }

    /// Starts one more bank process on the bank's database and data directory (another instance
    /// of the same bank), serving on a port of its own; for a test started with `bank_exe`.
    pub async fn another_bank(&self) -> NodeProcess {
        let first = self
            .bank_process
            .as_ref()
            .expect("the test runs the bank as a process (Options::bank_exe)");
        let cfg = bank_node::Config {
            listen: free_port().expect("a port"),
            ..self.pair().bank_config().clone()
        };
        NodeProcess::start(first.exe().to_owned(), &cfg)
            .await
            .expect("another bank process serves")
    }

    /// Starts a platform process from `exe` (the suites pass
    /// `env!("CARGO_BIN_EXE_e2e-platform-node")`) on the platform's database and data directory
    /// (another instance of the same platform) that calls the bank at `bank_url`, serving on a
    /// port of its own.
    pub async fn another_platform(&self, exe: std::path::PathBuf, bank_url: &str) -> NodeProcess {
        let cfg = platform_node::Config {
            listen: free_port().expect("a port"),
            bank_url: bank_url.to_owned(),
            ..self.pair().platform_config().clone()
        };
        NodeProcess::start(exe, &cfg)
            .await
            .expect("another platform process serves")
    }

    fn pair(&self) -> &RunningPair {
        self.pair.as_ref().expect("the nodes run")
    }

    /// A node's metrics page (`GET /metrics` on its metrics port), as Prometheus scrapes it.
    pub async fn scrape(&self, node: &str) -> String {
        let pair = self.pair();
        let addr = match node {
            "bank" => pair.bank_metrics,
            _ => pair.platform_metrics,
        }
        .expect("the node serves metrics (in-process nodes only)");
        pair::metrics_page(addr).await.expect("the metrics page")
    }

    /// Stops the platform node: the bank's calls to it then find nobody.
    pub async fn stop_platform(&mut self) {
        self.pair
            .as_mut()
            .expect("running")
            .stop_platform()
            .await
            .expect("platform stops cleanly");
    }

    /// Opens a card for a new person (card password 123456, 1000.00 yuan) and registers a
    /// platform account under the same real name.
    pub async fn customer(&self, name: &str) -> Customer {
        let id_number = resident_id();
        let card = self
            .branch
            .clone()
            .open_card(bank::OpenCardRequest {
                account_kind: bank::AccountKind::CardOnly as i32,
                holder_name: name.to_owned(),
                id_type: IdType::ResidentId as i32,
                id_number: id_number.clone(),
                card_password: "123456".to_owned(),
                opening_deposit: "1000.00".to_owned(),
                card_number: String::new(),
            })
            .await
            .expect("open card")
            .into_inner()
            .card
            .unwrap();
        let email = format!("c{}@example.com", unique());
        self.register(&email, name).await;
        Customer {
            card_number: card.card_number,
            card_password: "123456".to_owned(),
            name: name.to_owned(),
            id_number,
            email,
            login_password: "login-pass-1".to_owned(),
        }
    }

    /// Registers a platform account (login password `login-pass-1`, pay password 654321).
    pub async fn register(&self, email: &str, name: &str) -> platform::Account {
        self.website
            .clone()
            .register(platform::RegisterRequest {
                email: email.to_owned(),
                real_name: name.to_owned(),
                login_password: "login-pass-1".to_owned(),
                pay_password: "654321".to_owned(),
            })
            .await
            .expect("register")
            .into_inner()
            .account
            .unwrap()
    }

    /// A complete, valid sign-up form for the customer, with a fresh request id.
    pub fn sign_up_form(&self, c: &Customer) -> bank::SignUpRequest {
        bank::SignUpRequest {
            request_id: format!("req-{}", unique()),
            platform_account: c.email.clone(),
            real_name: c.name.clone(),
            id_type: IdType::ResidentId as i32,
            id_number: c.id_number.clone(),
            mobile: "13800138000".to_owned(),
            card_number: c.card_number.clone(),
            card_password: c.card_password.clone(),
            daily_limit: "5000.00".to_owned(),
        }
    }

    /// Signs a form up at the branch.
    pub async fn sign_up(
        &self,
        form: bank::SignUpRequest,
    ) -> Result<tonic::Response<bank::SignUpResponse>, Status> {
        self.branch.clone().sign_up(form).await
    }

    /// Signs the customer up with the default form and returns the sign-up.
    pub async fn signed_up(&self, c: &Customer) -> bank::SignUp {
        self.sign_up(self.sign_up_form(c))
            .await
            .expect("sign-up succeeds")
            .into_inner()
            .signup
            .unwrap()
    }

    /// The card as the teller sees it.
    pub async fn card(&self, number: &str) -> bank::Card {
        self.branch
            .clone()
            .get_card(bank::GetCardRequest {
                card_number: number.to_owned(),
            })
            .await
            .expect("card exists")
            .into_inner()
            .card
            .unwrap()
    }

    /// The card's live sign-up at the bank.
    pub async fn bank_signup(
        &self,
        card: &str,
    ) -> Result<tonic::Response<bank::GetSignUpResponse>, Status> {
        self.branch
            .clone()
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::CardNumber(card.to_owned())),
            })
            .await
    }

    /// The platform's view of an account, card-links included.
    pub async fn platform_account(&self, email: &str) -> platform::Account {
        self.ops
            .clone()
            .get_account(platform::GetAccountRequest {
                email: email.to_owned(),
            })
            .await
            .expect("account exists")
            .into_inner()
            .account
            .unwrap()
    }

    /// Logs the customer in and returns the session token.
    pub async fn login(&self, c: &Customer) -> String {
        self.website
            .clone()
            .login(platform::LoginRequest {
                email: c.email.clone(),
                login_password: c.login_password.clone(),
            })
            .await
            .expect("login")
            .into_inner()
            .session_token
    }

    /// Statuses of every sign-up the bank holds for a card, oldest first, read straight from the
    /// bank's database (failed sign-ups are not live, so no branch query returns them by card).
    pub async fn bank_signup_statuses(&self, card: &str) -> Vec<String> {
        let mut conn = connect_any(&self.bank_db).await;
        sqlx::query(
            "SELECT status FROM signups WHERE card_number = $1 ORDER BY created_at_ms, signup_id",
        )
        .bind(card)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("status"))
        .collect()
    }

    /// The (operation, outcome) of every audit line of the bank or the platform, oldest first.
    pub async fn audit_lines(&self, node: &str) -> Vec<(String, String)> {
        let url = if node == "bank" {
            &self.bank_db
        } else {
            &self.platform_db
        };
        let mut conn = connect_any(url).await;
        sqlx::query("SELECT operation, outcome FROM audit_log ORDER BY at_ms")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("operation"), r.get("outcome")))
            .collect()
    }
}

/// A customer who can pay: card, account, sign-up (mobile 13800138000) and activated card-link,
/// logged in.
#[derive(Debug, Clone)]
pub struct Payer {
    /// The customer.
    pub customer: Customer,
    /// A live session token.
    pub token: String,
    /// The sign-up id.
    pub signup_id: String,
    /// The one-time-code mobile.
    pub mobile: String,
}

/// The pay password every test account has.
pub const PAY_PASSWORD: &str = "654321";

impl TestApp {
    /// A customer with `balance` on the card and a daily limit of `limit`, signed up, activated
    /// and logged in. Each payer gets a mobile of its own.
    pub async fn payer(&self, name: &str, balance: &str, limit: &str) -> Payer {
        let c = self.customer(name).await;
        let card = self.card(&c.card_number).await;
        if card.balance != balance {
            let have = shared::Money::parse(&card.balance).unwrap();
            let want = shared::Money::parse(balance).unwrap();
            assert!(want >= have, "payer balances start at 1000.00 or above");
            if want > have {
                self.branch
                    .clone()
                    .deposit(bank::DepositRequest {
                        card_number: c.card_number.clone(),
                        amount: want.checked_sub(have).unwrap().to_string(),
                    })
                    .await
                    .expect("deposit");
            }
        }
        let mobile = format!("138{:08}", rand::random::<u32>() % 100_000_000);
        let mut form = self.sign_up_form(&c);
        form.daily_limit = limit.to_owned();
        form.mobile = mobile.clone();
        let signup = self
            .sign_up(form)
            .await
            .expect("sign-up")
            .into_inner()
            .signup
            .unwrap();
        let token = self.login(&c).await;
        self.website
            .clone()
            .activate(platform::ActivateRequest {
                session_token: token.clone(),
                card_number: c.card_number.clone(),
            })
            .await
            .expect("activate");
        Payer {
            customer: c,
            token,
            signup_id: signup.signup_id,
            mobile,
        }
    }

    /// Starts a payment with the right payment password.
    pub async fn start(
        &self,
        p: &Payer,
        order_no: &str,
        amount: &str,
    ) -> Result<platform::Order, Status> {
        self.pay
            .clone()
            .start_payment(platform::StartPaymentRequest {
                session_token: p.token.clone(),
                order_no: order_no.to_owned(),
                amount: amount.to_owned(),
                pay_password: PAY_PASSWORD.to_owned(),
                signup_id: String::new(),
                description: "test".to_owned(),
            })
            .await
            .map(|r| r.into_inner().order.unwrap())
    }

    /// The messages sent to the payer's mobile, newest first (at most 500).
    async fn outbox(&self, p: &Payer) -> Vec<sim::Sms> {
        self.sms
            .clone()
            .list_sms(sim::ListSmsRequest {
                mobile: p.mobile.clone(),
                limit: 500,
            })
            .await
            .expect("outbox")
            .into_inner()
            .messages
    }

    /// The one-time code the bank sent for an order, from the SMS outbox.
    pub async fn code_for(&self, p: &Payer, order_no: &str) -> String {
        self.outbox(p)
            .await
            .into_iter()
            .find(|m| m.order_no == order_no)
            .map(|m| m.otp_code)
            .unwrap_or_else(|| panic!("no code was sent for {order_no}"))
    }

    /// How many one-time codes the bank sent for an order.
    pub async fn codes_sent(&self, p: &Payer, order_no: &str) -> usize {
        let outbox = self.outbox(p).await;
        outbox.iter().filter(|m| m.order_no == order_no).count()
    }

    /// Confirms a payment with a code.
    pub async fn confirm(
        &self,
        p: &Payer,
        order_no: &str,
        code: &str,
    ) -> Result<platform::Order, Status> {
        self.pay
            .clone()
            .confirm_payment(platform::ConfirmPaymentRequest {
                session_token: p.token.clone(),
                order_no: order_no.to_owned(),
                otp_code: code.to_owned(),
            })
            .await
            .map(|r| r.into_inner().order.unwrap())
    }

    /// A whole payment: start, read the code, confirm.
    pub async fn pay_now(
        &self,
        p: &Payer,
        order_no: &str,
        amount: &str,
    ) -> Result<platform::Order, Status> {
        self.start(p, order_no, amount).await?;
        let code = self.code_for(p, order_no).await;
        self.confirm(p, order_no, &code).await
    }

    /// The platform's order, operator view.
    pub async fn order(&self, order_no: &str) -> platform::Order {
        self.ops
            .clone()
            .get_order_by_no(platform::GetOrderByNoRequest {
                order_no: order_no.to_owned(),
            })
            .await
            .expect("order exists")
            .into_inner()
            .order
            .unwrap()
    }

    /// The bank's payment record.
    pub async fn bank_payment(&self, order_no: &str) -> Result<bank::Payment, Status> {
        self.bank_link
            .clone()
            .get_payment(bank::GetPaymentRequest {
                order_no: order_no.to_owned(),
            })
            .await
            .map(|r| r.into_inner().payment.unwrap())
    }

    /// The card's balance as the teller sees it.
    pub async fn balance(&self, card: &str) -> shared::Money {
        shared::Money::parse(&self.card(card).await.balance).unwrap()
    }

    /// Moves both nodes' clocks the same way.
    pub async fn clock(&self, m: sim::set_clock_request::Move) -> sim::SetClockResponse {
        let req = sim::SetClockRequest { r#move: Some(m) };
        self.platform_sim
            .clone()
            .set_clock(req)
            .await
            .expect("platform clock moves");
        self.bank_sim
            .clone()
            .set_clock(req)
            .await
            .expect("bank clock moves")
            .into_inner()
    }

    /// Freezes both clocks at `rfc3339`.
    pub async fn freeze_at(&self, rfc3339: &str) {
        use sim::set_clock_request::Move;
        let t = rfc3339
            .parse::<chrono::DateTime<chrono::Utc>>()
            .expect("a time");
        self.clock(Move::Freeze(true)).await;
        self.clock(Move::SetTo(shared::grpc::timestamp(t))).await;
    }

    /// Installs a fault rule on the bank (`"bank"`) or the platform.
    pub async fn fault(&self, node: &str, rule: sim::FaultRule) -> sim::FaultRule {
        let mut c = if node == "bank" {
            self.bank_sim.clone()
        } else {
            self.platform_sim.clone()
        };
        c.add_fault(sim::AddFaultRequest { rule: Some(rule) })
            .await
            .expect("fault rule installed")
            .into_inner()
            .rule
            .unwrap()
    }

    /// Runs one SQL query returning one BIGINT column on the bank's database.
    pub async fn bank_ints(&self, sql: &str, arg: &str) -> Vec<i64> {
        self.bank_column(sql, arg).await
    }

    /// A connection of its own to the bank's database, to stand for another process of it.
    pub async fn bank_database(&self) -> sqlx::AnyConnection {
        connect_any(&self.bank_db).await
    }

    /// Runs one SQL query with one argument on the bank's database; its first column.
    async fn bank_column<T>(&self, sql: &str, arg: &str) -> Vec<T>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        let mut conn = connect_any(&self.bank_db).await;
        sqlx::query(sql)
            .bind(arg)
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<T, _>(0))
            .collect()
    }

    /// Every SUCCESS payment at the bank as (order number, amount fen, business date).
    pub async fn bank_successes(&self) -> Vec<(String, i64, String)> {
        let mut conn = connect_any(&self.bank_db).await;
        sqlx::query(
            "SELECT order_no, amount_fen, business_date FROM payments WHERE status = 'SUCCESS' ORDER BY order_no",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    }
}

async fn connect_any(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .expect("connect to a node's database")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // A bank process first: it holds connections to a database about to be dropped.
        drop(self.bank_process.take());
        if self.pg_dbs.is_empty() {
            return;
        }
        let dbs = std::mem::take(&mut self.pg_dbs);
        let base = pg_base();
        // Drop the test databases from a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(shared::store::drop_databases(&base, &dbs));
        })
        .join();
    }
}

/// Runs each named `async fn(TestApp)` on SQLite (`sqlite::name`) and on PostgreSQL
/// (`postgres::name`, skipped with a printed reason where no server is reachable).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::TestApp::spawn($crate::Backend::Sqlite).await.expect("sqlite always runs");
                    super::$name(app).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )+
        }
    };
}
