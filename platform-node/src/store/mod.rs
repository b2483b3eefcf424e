//! The platform's storage: the only module that sees sqlx.

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{DailyLimit, Email, IdType, PersonName, SignUpId};
use shared::records::{RecordKind, Show, View, col};
use shared::store::{bad, int, text};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::domain::{Account, AccountStatus, CardLink, LinkStatus};

mod orders;
mod recon;
mod refunds;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The platform's database.
#[derive(Clone, Debug)]
pub struct Store {
    db: shared::store::NodeDb,
    /// The database orders text byte by byte (see [`shared::store::text_is_bytewise`]).
    bytewise: bool,
}

/// What every node's store does alike (pools, audit log, kept clock, nonces): `shared::store`.
impl std::ops::Deref for Store {
    type Target = shared::store::NodeDb;
    fn deref(&self) -> &shared::store::NodeDb {
        &self.db
    }
}

pub(crate) type Result<T> = anyhow::Result<T>;

const ACCOUNT_COLUMNS: &str = "email, real_name, status, created_at_ms";
const LINK_COLUMNS: &str = "signup_id, platform_link_id, email, real_name, id_type, card_number_masked, status, daily_limit_fen, mobile_masked, signed_at_ms, activated_at_ms, business_date, cancelled_date, terms_at_ms";

/// What the platform shows of itself (ListRecords): the newest of each, secrets left out.
pub const VIEWS: &[View] = &[
    View {
        kind: RecordKind::Accounts,
        table: "accounts",
        columns: &[
            col("account", "email", Show::Id),
            col("name", "real_name", Show::Text),
            col("status", "status", Show::Id),
            col("pay password failures", "pay_failures", Show::Int),
            col("created", "created_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "created_at_ms DESC, email DESC",
    },
    View {
        kind: RecordKind::CardLinks,
        table: "card_links",
        columns: &[
            col("sign-up id", "signup_id", Show::Id),
            col("status", "status", Show::Id),
            col("account", "email", Show::Id),
            col("name", "real_name", Show::Text),
            col("card", "card_number_masked", Show::Card),
            col("mobile", "mobile_masked", Show::Mobile),
            col("daily limit", "daily_limit_fen", Show::Fen),
            col("business date", "business_date", Show::Id),
            col("cancelled date", "cancelled_date", Show::Id),
            col("updated", "updated_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "signed_at_ms DESC, signup_id DESC",
    },
    View {
        kind: RecordKind::Orders,
        table: "orders",
        columns: &[
            col("order", "order_no", Show::Id),
            col("status", "status", Show::Id),
            col("amount", "amount_fen", Show::Fen),
            col("refunded", "refunded_fen", Show::Fen),
            col("sign-up id", "signup_id", Show::Id),
            col("account", "email", Show::Id),
            col("bank serial", "bank_serial_no", Show::Id),
            col("business date", "business_date", Show::Id),
            col("origin", "origin", Show::Id),
            col("failure", "failure_reason", Show::Id),
            col("created", "created_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "created_at_ms DESC, order_no DESC",
    },
    View {
        kind: RecordKind::RefundBatches,
        table: "refund_batches",
        columns: &[
            col("batch", "batch_no", Show::Id),
            col("status", "status", Show::Id),
            col("business date", "business_date", Show::Id),
            col("lines", "record_count", Show::Int),
            col("total", "total_fen", Show::Fen),
            col("receipt", "receipt_no", Show::Id),
            col("applied", "processed_count", Show::Int),
            col("succeeded", "success_count", Show::Int),
            col("failed", "failed_count", Show::Int),
            col("failure", "failure_reason", Show::Id),
            col("created", "created_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "created_at_ms DESC, batch_no DESC",
    },
    View {
        kind: RecordKind::RefundLines,
        table: "refunds",
        columns: &[
            col("batch", "batch_no", Show::Id),
            col("line", "seq", Show::Int),
            col("refund id", "refund_id", Show::Id),
            col("order", "order_no", Show::Id),
            col("amount", "amount_text", Show::Text),
            col("status", "status", Show::Id),
            col("reason", "reason_code", Show::Id),
            col("applied", "applied_at_ms", Show::Time),
        ],
        key_columns: 2,
        newest_first: "applied_at_ms DESC, batch_no DESC, seq DESC",
    },
    View {
        kind: RecordKind::ReconRuns,
        table: "recon_runs",
        columns: &[
            col("run", "run_id", Show::Id),
            col("kind", "kind", Show::Id),
            col("business date", "business_date", Show::Id),
            col("records", "record_count", Show::Int),
            col("matched", "matched", Show::Int),
            col("cases", "cases", Show::Int),
            col("started", "started_at_ms", Show::Time),
            col("done", "done_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "started_at_ms DESC, run_id DESC",
    },
    View {
        kind: RecordKind::Adjustments,
        table: "adjustments",
        columns: &[
            col("adjustment", "adjustment_id", Show::Id),
            col("record kind", "record_kind", Show::Id),
            col("record", "record_key", Show::Id),
            col("before", "before_state", Show::Text),
            col("after", "after_state", Show::Text),
            col("source", "source", Show::Id),
            col("reason", "reason", Show::Text),
            col("case", "case_id", Show::Id),
            col("at", "at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "at_ms DESC, adjustment_id DESC",
    },
    View {
        kind: RecordKind::Cases,
        table: "recon_cases",
        columns: &[
            col("case", "case_id", Show::Id),
            col("status", "status", Show::Id),
            col("kind", "kind", Show::Id),
            col("business date", "business_date", Show::Id),
            col("record", "record_key", Show::Id),
            col("category", "category", Show::Id),
            col("bank's record", "bank_record", Show::Text),
            col("platform's record", "platform_record", Show::Text),
            col("amount", "amount_fen", Show::Fen),
            col("action", "action", Show::Text),
            col("note", "note", Show::Text),
            col("created", "created_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "created_at_ms DESC, case_id DESC",
    },
];

impl Store {
    /// Opens the database at `url` (SQLite or PostgreSQL) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        let db = shared::store::NodeDb::connect(url, &MIGRATOR).await?;
        Ok(Store {
            bytewise: shared::store::text_is_bytewise(&db.pools.read).await?,
            db,
        })
    }

    /// Whether the database orders text as Rust does, byte by byte.
    pub fn bytewise(&self) -> bool {
        self.bytewise
    }

    /// Inserts an account; `false` if the e-mail is taken.
    pub async fn insert_account(
        &self,
        a: &Account,
        login_hash: &str,
        pay_hash: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO accounts (email, real_name, login_password_hash, pay_password_hash, status, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(a.email.as_str())
        .bind(a.real_name.as_str())
        .bind(login_hash)
        .bind(pay_hash)
        .bind(a.status.code())
        .bind(a.created_at_ms)
        .execute(&self.pools.write)
        .await;
        shared::store::inserted(r)
    }

    /// An account by e-mail.
    pub async fn account(&self, email: &Email) -> Result<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// An account with its login password hash.
    pub async fn account_with_login_hash(
        &self,
        email: &Email,
    ) -> Result<Option<(Account, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, login_password_hash FROM accounts WHERE email = $1"
        ))
        .bind(email.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((
                account_from_row(&r)?,
                text(&r, "login_password_hash")?,
            ))),
        }
    }

    /// Sets an account's status; any status but NORMAL also ends its sessions.
    pub async fn set_account_status(
        &self,
        email: &Email,
        status: AccountStatus,
        now_ms: i64,
    ) -> Result<()> {
        let mut tx = self.pools.write.begin().await?;
        sqlx::query("UPDATE accounts SET status = $1, updated_at_ms = $2 WHERE email = $3")
            .bind(status.code())
            .bind(now_ms)
            .bind(email.as_str())
            .execute(&mut tx)
            .await?;
        if status != AccountStatus::Normal {
            sqlx::query("DELETE FROM sessions WHERE email = $1")
                .bind(email.as_str())
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a session by the hash of its token.
    pub async fn insert_session(
        &self,
        token_hash: &str,
        email: &Email,
        expires_at_ms: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, email, expires_at_ms) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(email.as_str())
            .bind(expires_at_ms)
            .execute(&self.pools.write)
            .await?;
        Ok(())
    }

    /// The account of the session whose token hashes to `token_hash`, if it has not ended by
    /// `now_ms`, and the state of its payment password, in one read.
    pub async fn session_account(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(Account, PayPasswordState)>> {
        let row = sqlx::query(
            "SELECT a.email, a.real_name, a.status, a.created_at_ms, \
                    a.pay_password_hash, a.pay_failures, a.pay_locked_until_ms \
             FROM sessions s JOIN accounts a ON a.email = s.email \
             WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pools.read)
        .await?;
        row.map(|r| {
            let pay = PayPasswordState {
                hash: text(&r, "pay_password_hash")?,
                wrong_so_far: int(&r, "pay_failures")?,
                locked_until_ms: int(&r, "pay_locked_until_ms")?,
            };
            Ok((account_from_row(&r)?, pay))
        })
        .transpose()
    }

    /// Inserts a card-link; `false` if its sign-up id is already recorded.
    pub async fn insert_link(&self, l: &CardLink) -> Result<bool> {
        shared::store::inserted(insert_link_query(l).execute(&self.pools.write).await)
    }

    /// A card-link by the bank's sign-up id.
    pub async fn link(&self, signup_id: &SignUpId) -> Result<Option<CardLink>> {
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM card_links WHERE signup_id = $1"
        ))
        .bind(signup_id.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(link_from_row).transpose()
    }

    /// An account's card-links, newest first.
    pub async fn links_for(&self, email: &Email) -> Result<Vec<CardLink>> {
        let rows = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM card_links WHERE email = $1 ORDER BY signed_at_ms DESC, signup_id DESC"
        ))
        .bind(email.as_str())
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    /// SIGNED → ACTIVE with the bank's limit and mobile; `false` if it was not SIGNED.
    pub async fn activate_link(
        &self,
        signup_id: &SignUpId,
        limit: DailyLimit,
        mobile_masked: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE card_links SET status = 'ACTIVE', daily_limit_fen = $1, mobile_masked = $2, activated_at_ms = $3, terms_at_ms = $3, updated_at_ms = $3 \
             WHERE signup_id = $4 AND status = 'SIGNED'",
        )
        .bind(limit.money().fen())
        .bind(mobile_masked)
        .bind(now_ms)
        .bind(signup_id.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// An ACTIVE card-link's limit and mobile as the bank told them at `now_ms`; `false` if it is
    /// no longer ACTIVE.
    pub async fn refresh_link_terms(
        &self,
        signup_id: &SignUpId,
        limit: DailyLimit,
        mobile_masked: &str,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE card_links SET daily_limit_fen = $1, mobile_masked = $2, terms_at_ms = $3, updated_at_ms = $3 \
             WHERE signup_id = $4 AND status = 'ACTIVE'",
        )
        .bind(limit.money().fen())
        .bind(mobile_masked)
        .bind(now_ms)
        .bind(signup_id.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// SIGNED or ACTIVE → CANCELLED on the bank's date `date` (a cancelled one takes the date).
    pub async fn cancel_link(
        &self,
        signup_id: &SignUpId,
        date: NaiveDate,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE card_links SET status = 'CANCELLED', cancelled_date = $3, \
             cancelled_at_ms = CASE WHEN status = 'CANCELLED' THEN cancelled_at_ms ELSE $1 END, updated_at_ms = $1 \
             WHERE signup_id = $2",
        )
        .bind(now_ms)
        .bind(signup_id.as_str())
        .bind(date.to_string())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }
}

/// Inserts a card-link with its status and the bank's dates.
fn insert_link_query(
    l: &CardLink,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO card_links (signup_id, platform_link_id, email, real_name, id_type, card_number_masked, status, signed_at_ms, updated_at_ms, business_date, cancelled_date, cancelled_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11)",
    )
    .bind(l.signup_id.as_str())
    .bind(l.platform_link_id.as_str())
    .bind(l.email.as_str())
    .bind(l.real_name.as_str())
    .bind(l.id_type.code())
    .bind(l.card_masked.as_str())
    .bind(l.status.code())
    .bind(l.signed_at_ms)
    .bind(l.business_date.map(|d| d.to_string()))
    .bind(l.cancelled_date.map(|d| d.to_string()))
    .bind(l.cancelled_date.map(|_| l.signed_at_ms))
}

/// An account's payment password as stored: its hash, the wrong tries counted so far, and until
/// when payment is locked (ms; 0: never).
#[derive(Debug, Clone)]
pub struct PayPasswordState {
    /// The argon2 hash.
    pub hash: String,
    /// Wrong tries in a row so far.
    pub wrong_so_far: i64,
    /// Locked until, ms; 0: never.
    pub locked_until_ms: i64,
}

fn account_from_row(r: &AnyRow) -> Result<Account> {
    account_from(r, "")
}

/// An account from `r`'s [`ACCOUNT_COLUMNS`], each named with `prefix` before it.
fn account_from(r: &AnyRow, prefix: &str) -> Result<Account> {
    let text = |c: &str| text(r, &format!("{prefix}{c}"));
    Ok(Account {
        email: Email::parse(&text("email")?).map_err(|_| bad("email"))?,
        real_name: PersonName::parse(&text("real_name")?).map_err(|_| bad("real_name"))?,
        status: AccountStatus::from_code(&text("status")?).ok_or_else(|| bad("status"))?,
        created_at_ms: int(r, &format!("{prefix}created_at_ms"))?,
    })
}

fn link_from_row(r: &AnyRow) -> Result<CardLink> {
    let limit: Option<i64> = r.try_get("daily_limit_fen")?;
    Ok(CardLink {
        platform_link_id: text(r, "platform_link_id")?,
        signup_id: SignUpId::parse(&text(r, "signup_id")?).map_err(|_| bad("signup_id"))?,
        email: Email::parse(&text(r, "email")?).map_err(|_| bad("email"))?,
        real_name: PersonName::parse(&text(r, "real_name")?).map_err(|_| bad("real_name"))?,
        id_type: IdType::from_code(&text(r, "id_type")?).ok_or_else(|| bad("id_type"))?,
        card_masked: text(r, "card_number_masked")?,
        status: LinkStatus::from_code(&text(r, "status")?).ok_or_else(|| bad("status"))?,
        daily_limit: limit
            .map(|f| {
                Money::from_fen(f)
                    .and_then(|m| DailyLimit::new(m).ok())
                    .ok_or_else(|| bad("daily_limit_fen"))
            })
            .transpose()?,
        mobile_masked: r.try_get("mobile_masked")?,
        signed_at_ms: r.try_get("signed_at_ms")?,
        activated_at_ms: r.try_get("activated_at_ms")?,
        terms_at_ms: r
            .try_get::<Option<i64>, _>("terms_at_ms")?
            .or(r.try_get("activated_at_ms")?),
        business_date: opt_date(r, "business_date")?,
        cancelled_date: opt_date(r, "cancelled_date")?,
    })
}

fn opt_date(r: &AnyRow, col: &str) -> Result<Option<NaiveDate>> {
    shared::store::opt_text(r, col)?
        .map(|d| d.parse::<NaiveDate>().map_err(|_| bad(col)))
        .transpose()
}
