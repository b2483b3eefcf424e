//! The end-to-end harness: each test starts both nodes in-process on ephemeral ports, each with a
//! fresh database of its own (SQLite files in a temporary directory, or new PostgreSQL databases),
//! and talks to them only over gRPC. `TEST_LOG=1` shows the nodes' logs.
//!
//! PostgreSQL: `IBSIM_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! names a server where each test creates its two databases and drops them afterwards. Where none
//! is reachable the PostgreSQL variants print why and pass as skipped, unless
//! `IBSIM_REQUIRE_POSTGRES=1` (CI sets it), which makes them fail instead.

use std::time::Duration;

use ibsim_cli::pair::{PairConfig, RunningPair};
use proto::bank::v1 as bank;
use proto::bank::v1::bank_link_service_client::BankLinkServiceClient;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::common::v1::IdType;
use proto::platform::v1 as platform;
use proto::platform::v1::account_service_client::AccountServiceClient;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;
use sqlx::{Connection, Row};
use tonic::Status;
use tonic::transport::Channel;
use tonic_types::StatusExt;

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

/// Both nodes and a client for every service.
pub struct TestApp {
    pair: Option<RunningPair>,
    /// The teller's counter.
    pub branch: BranchServiceClient<Channel>,
    /// The bank's interbank service (as the platform calls it).
    pub bank_link: BankLinkServiceClient<Channel>,
    /// The platform website.
    pub website: AccountServiceClient<Channel>,
    /// Platform operations.
    pub ops: PlatformOpsServiceClient<Channel>,
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
    let first17 = format!("11010519900307{:03}", rand::random::<u16>() % 1000);
    let check = shared::domain::resident_id_check_char(first17.as_bytes()) as char;
    format!("{first17}{check}")
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

/// Asserts a call was refused with this code and reason, and returns the status.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
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
    /// Starts both nodes on `backend`; `None` (after printing why) when PostgreSQL is wanted
    /// but not reachable and not required.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
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
                let mut conn = match tokio::time::timeout(
                    Duration::from_secs(3),
                    sqlx::PgConnection::connect(&base),
                )
                .await
                {
                    Ok(Ok(c)) => c,
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
                        return None;
                    }
                };
                let tag = unique();
                let mut urls = Vec::new();
                for node in ["bank", "platform"] {
                    let name = format!("ibsim_test_{tag}_{node}");
                    sqlx::query(&format!("CREATE DATABASE {name}"))
                        .execute(&mut conn)
                        .await
                        .expect("create test database");
                    urls.push(replace_db(&base, &name));
                    pg_dbs.push(name);
                }
                conn.close().await.ok();
                (urls[0].clone(), urls[1].clone())
            }
        };
        let pair = RunningPair::start(&PairConfig {
            bank_listen: "127.0.0.1:0".parse().unwrap(),
            platform_listen: "127.0.0.1:0".parse().unwrap(),
            bank_database_url: bank_db.clone(),
            platform_database_url: platform_db.clone(),
            bank_data_dir: dir.path().join("bank"),
            platform_data_dir: dir.path().join("platform"),
            peer_timeout_ms: 5_000,
        })
        .await
        .expect("both nodes start");
        let bank_channel = Channel::from_shared(pair.bank_url())
            .unwrap()
            .connect()
            .await
            .expect("bank reachable");
        let platform_channel = Channel::from_shared(pair.platform_url())
            .unwrap()
            .connect()
            .await
            .expect("platform reachable");
        Some(TestApp {
            pair: Some(pair),
            branch: BranchServiceClient::new(bank_channel.clone()),
            bank_link: BankLinkServiceClient::new(bank_channel.clone()),
            website: AccountServiceClient::new(platform_channel.clone()),
            ops: PlatformOpsServiceClient::new(platform_channel.clone()),
            bank_channel,
            platform_channel,
            bank_db,
            platform_db,
            pg_dbs,
            _dir: dir,
        })
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

async fn connect_any(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .expect("connect to a node's database")
}

fn replace_db(base: &str, name: &str) -> String {
    let (head, _) = base.rsplit_once('/').expect("postgres URL has a path");
    format!("{head}/{name}")
}

impl Drop for TestApp {
    fn drop(&mut self) {
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
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    for db in dbs {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    }
                }
            });
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
