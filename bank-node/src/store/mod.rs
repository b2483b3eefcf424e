//! The bank's storage: the only module that sees sqlx. Functions take and return domain values;
//! money is integer fen, times milliseconds, dates 'YYYY-MM-DD'.

use chrono::NaiveDate;
use shared::domain::{
    CardNumber, DailyLimit, Email, IdDocument, IdType, Mobile, PersonName, RequestId, SignUpId,
};
use shared::records::{RecordKind, Show, View, col};
use shared::store::{bad, columns_of, int, opt_text, text, unique_violation};
use shared::{Money, PeerRefusal};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::sync::LazyLock;

use crate::domain::{AccountKind, Card, CardStatus, InsertOutcome, SignUp, SignUpStatus};

mod payments;
mod recon;
mod refunds;

pub use refunds::{ChunkOutcome, Claim};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The bank's database.
#[derive(Clone, Debug)]
pub struct Store {
    db: shared::store::NodeDb,
}

/// What every node's store does alike (pools, audit log, kept clock, nonces): `shared::store`.
impl std::ops::Deref for Store {
    type Target = shared::store::NodeDb;
    fn deref(&self) -> &shared::store::NodeDb {
        &self.db
    }
}

pub(crate) type Result<T> = anyhow::Result<T>;

const CARD_COLUMNS: &str = "card_number, account_kind, holder_name, id_type, id_number, balance_fen, status, wrong_password_tries, opened_at_ms";
const SIGNUP_COLUMNS: &str = "signup_id, request_fingerprint, card_number, platform_account, real_name, id_type, id_number, mobile, daily_limit_fen, status, failure_class, failure_reason, failure_message, failure_domain, business_date, created_at_ms, updated_at_ms";

/// Sign-up `$1` as [`SIGNUP_COLUMNS`], its card's [`CARD_COLUMNS`] each named `card_<column>`
/// (NULL without a card), and what the card paid on business date `$2` as `used_fen`.
static SIGNUP_WITH_CARD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {}, COALESCE(u.used_fen, 0) AS used_fen FROM signups s \
         LEFT JOIN cards c ON c.card_number = s.card_number \
         LEFT JOIN daily_usage u ON u.card_number = s.card_number AND u.business_date = $2 \
         WHERE s.signup_id = $1",
        columns_of(SIGNUP_COLUMNS, "s", ""),
        columns_of(CARD_COLUMNS, "c", "card_"),
    )
});

/// What the bank shows of itself (ListRecords): the newest of each, secrets left out.
pub const VIEWS: &[View] = &[
    View {
        kind: RecordKind::Cards,
        table: "cards",
        columns: &[
            col("card", "card_number", Show::Card),
            col("holder", "holder_name", Show::Text),
            col("kind", "account_kind", Show::Id),
            col("status", "status", Show::Id),
            col("balance", "balance_fen", Show::Fen),
            col("wrong password tries", "wrong_password_tries", Show::Int),
            col("opened", "opened_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "opened_at_ms DESC, card_number DESC",
    },
    View {
        kind: RecordKind::SignUps,
        table: "signups",
        columns: &[
            col("sign-up id", "signup_id", Show::Id),
            col("status", "status", Show::Id),
            col("card", "card_number", Show::Card),
            col("account", "platform_account", Show::Id),
            col("name", "real_name", Show::Text),
            col("mobile", "mobile", Show::Mobile),
            col("daily limit", "daily_limit_fen", Show::Fen),
            col("business date", "business_date", Show::Id),
            col("cancelled date", "cancelled_date", Show::Id),
            col("failure", "failure_reason", Show::Id),
            col("updated", "updated_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "created_at_ms DESC, signup_id DESC",
    },
    View {
        kind: RecordKind::Orders,
        table: "payments",
        columns: &[
            col("order", "order_no", Show::Id),
            col("status", "status", Show::Id),
            col("amount", "amount_fen", Show::Fen),
            col("refunded", "refunded_fen", Show::Fen),
            col("sign-up id", "signup_id", Show::Id),
            col("card", "card_number", Show::Card),
            col("bank serial", "bank_serial_no", Show::Id),
            col("business date", "business_date", Show::Id),
            col("failure", "failure_reason", Show::Id),
            col("paid", "paid_at_ms", Show::Time),
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
            col("succeeded", "success_count", Show::Int),
            col("failed", "failed_count", Show::Int),
            col("accepted", "accepted_at_ms", Show::Time),
        ],
        key_columns: 1,
        newest_first: "accepted_at_ms DESC, batch_no DESC",
    },
    View {
        kind: RecordKind::RefundLines,
        table: "refund_lines",
        columns: &[
            col("batch", "batch_no", Show::Id),
            col("line", "seq", Show::Int),
            col("refund id", "refund_id", Show::Id),
            col("order", "order_no", Show::Id),
            col("amount", "amount_text", Show::Text),
            col("status", "status", Show::Id),
            col("reason", "reason_code", Show::Id),
            col("card", "card_number", Show::Card),
            col("business date", "business_date", Show::Id),
        ],
        key_columns: 2,
        newest_first: "processed_at_ms DESC, batch_no DESC, seq DESC",
    },
    View {
        kind: RecordKind::DayFiles,
        table: "day_files",
        columns: &[
            col("kind", "kind", Show::Id),
            col("business date", "business_date", Show::Id),
            col("records", "record_count", Show::Int),
            col("total", "total_fen", Show::Fen),
            col("file", "file_name", Show::Text),
            col("built", "built_at_ms", Show::Time),
        ],
        key_columns: 2,
        newest_first: "built_at_ms DESC, kind",
    },
];

impl Store {
    /// Opens the database at `url` (SQLite or PostgreSQL) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        Ok(Store {
            db: shared::store::NodeDb::connect(url, &MIGRATOR).await?,
        })
    }

    /// Inserts a card; `false` if the number is taken.
    pub async fn insert_card(&self, c: &Card, password_hash: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO cards (card_number, account_kind, holder_name, id_type, id_number, password_hash, balance_fen, status, wrong_password_tries, opened_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(c.number.expose())
        .bind(c.kind.code())
        .bind(c.holder_name.as_str())
        .bind(c.id.kind().code())
        .bind(c.id.number())
        .bind(password_hash)
        .bind(c.balance.fen())
        .bind(c.status.code())
        .bind(i64::from(c.wrong_password_tries))
        .bind(c.opened_at_ms)
        .execute(&self.pools.write)
        .await;
        shared::store::inserted(r)
    }

    /// A card by number.
    pub async fn card(&self, number: &CardNumber) -> Result<Option<Card>> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE card_number = $1"
        ))
        .bind(number.expose())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(card_from_row).transpose()
    }

    /// A sign-up, with its card (`None`: the bank has no such card) and what the card paid on
    /// business date `date`, in one read (a payment's checks).
    pub async fn signup_with_card(
        &self,
        id: &SignUpId,
        date: NaiveDate,
    ) -> Result<Option<(SignUp, Option<(Card, Money)>)>> {
        let row = sqlx::query(&SIGNUP_WITH_CARD)
            .bind(id.as_str())
            .bind(date.to_string())
            .fetch_optional(&self.pools.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let signup = signup_from_row(&row)?;
        if opt_text(&row, "card_card_number")?.is_none() {
            return Ok(Some((signup, None)));
        }
        let used = Money::from_fen(int(&row, "used_fen")?).ok_or_else(|| bad("used_fen"))?;
        Ok(Some((signup, Some((card_from(&row, "card_")?, used)))))
    }

    /// The card's password hash.
    pub async fn card_password_hash(&self, number: &CardNumber) -> Result<String> {
        let row = sqlx::query("SELECT password_hash FROM cards WHERE card_number = $1")
            .bind(number.expose())
            .fetch_one(&self.pools.read)
            .await?;
        Ok(row.try_get("password_hash")?)
    }

    /// Adds to a card's balance.
    pub async fn add_balance(&self, number: &CardNumber, fen: i64, now_ms: i64) -> Result<()> {
        sqlx::query("UPDATE cards SET balance_fen = balance_fen + $1, updated_at_ms = $2 WHERE card_number = $3")
            .bind(fen)
            .bind(now_ms)
            .bind(number.expose())
            .execute(&self.pools.write)
            .await?;
        Ok(())
    }

    /// Sets a card's status; `reset_tries` also clears the wrong-password count.
    pub async fn set_card_status(
        &self,
        number: &CardNumber,
        status: CardStatus,
        reset_tries: bool,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE cards SET status = $1, updated_at_ms = $2, \
             wrong_password_tries = CASE WHEN $3 = 1 THEN 0 ELSE wrong_password_tries END \
             WHERE card_number = $4",
        )
        .bind(status.code())
        .bind(now_ms)
        .bind(i64::from(reset_tries))
        .bind(number.expose())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// Counts one wrong password in one statement and locks the card at `max`; returns the count.
    pub async fn count_wrong_password(
        &self,
        number: &CardNumber,
        max: u32,
        now_ms: i64,
    ) -> Result<u32> {
        let row = sqlx::query(
            "UPDATE cards SET wrong_password_tries = wrong_password_tries + 1, updated_at_ms = $1, \
             status = CASE WHEN wrong_password_tries + 1 >= $2 AND status = 'NORMAL' THEN 'LOCKED' ELSE status END \
             WHERE card_number = $3 RETURNING wrong_password_tries",
        )
        .bind(now_ms)
        .bind(i64::from(max))
        .bind(number.expose())
        .fetch_one(&self.pools.write)
        .await?;
        let n: i64 = row.try_get("wrong_password_tries")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Clears the wrong-password count after a right password.
    pub async fn reset_wrong_tries(&self, number: &CardNumber, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE cards SET wrong_password_tries = 0, updated_at_ms = $1 WHERE card_number = $2",
        )
        .bind(now_ms)
        .bind(number.expose())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// The sign-up a request id created, with the fingerprint of its form.
    pub async fn signup_by_request(&self, id: &RequestId) -> Result<Option<(SignUp, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {SIGNUP_COLUMNS} FROM signups WHERE request_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((
                signup_from_row(&r)?,
                r.try_get("request_fingerprint")?,
            ))),
        }
    }

    /// A sign-up by id.
    pub async fn signup(&self, id: &SignUpId) -> Result<Option<SignUp>> {
        let row = sqlx::query(&format!(
            "SELECT {SIGNUP_COLUMNS} FROM signups WHERE signup_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(signup_from_row).transpose()
    }

    /// The card's live (PENDING, SIGNED, CANCELLING) sign-up.
    pub async fn live_signup_for_card(&self, card: &CardNumber) -> Result<Option<SignUp>> {
        let row = sqlx::query(&format!(
            "SELECT {SIGNUP_COLUMNS} FROM signups WHERE card_number = $1 AND status IN ('PENDING', 'SIGNED', 'CANCELLING')"
        ))
        .bind(card.expose())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(signup_from_row).transpose()
    }

    /// The next sign-up number: 1, 2, … and never the same twice, whichever process of the bank
    /// takes it (a counter row, `migrations/0013_signup_numbers.sql`).
    pub async fn next_signup_number(&self) -> Result<u64> {
        let row = sqlx::query(
            "UPDATE counters SET value = value + 1 WHERE name = 'signup' RETURNING value",
        )
        .fetch_one(&self.pools.write)
        .await?;
        u64::try_from(int(&row, "value")?).map_err(|_| bad("counters"))
    }

    /// Inserts a PENDING sign-up; the unique indexes decide races on the request id and the card,
    /// and say when a kept sign-up holds the id already.
    pub async fn insert_pending_signup(
        &self,
        s: &SignUp,
        request_id: &RequestId,
        fingerprint: &str,
    ) -> Result<InsertOutcome> {
        let r = sqlx::query(
            "INSERT INTO signups (signup_id, request_id, request_fingerprint, card_number, platform_account, real_name, id_type, id_number, mobile, daily_limit_fen, status, created_at_ms, updated_at_ms, business_date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)",
        )
        .bind(s.id.as_str())
        .bind(request_id.as_str())
        .bind(fingerprint)
        .bind(s.card.expose())
        .bind(s.account.as_str())
        .bind(s.real_name.as_str())
        .bind(s.id_doc.kind().code())
        .bind(s.id_doc.number())
        .bind(s.mobile.as_str())
        .bind(s.limit.money().fen())
        .bind(s.status.code())
        .bind(s.created_at_ms)
        .bind(s.business_date.map(|d| d.to_string()))
        .execute(&self.pools.write)
        .await;
        match r {
            Ok(_) => Ok(InsertOutcome::Inserted),
            Err(e) => match unique_violation(&e) {
                Some(what) if what.contains("request_id") => Ok(InsertOutcome::RequestIdTaken),
                Some(_) => {
                    // SQLite names columns, PostgreSQL the index: ask which one it was.
                    if self.signup_by_request(request_id).await?.is_some() {
                        Ok(InsertOutcome::RequestIdTaken)
                    } else if self.signup(&s.id).await?.is_some() {
                        Ok(InsertOutcome::IdTaken)
                    } else {
                        Ok(InsertOutcome::CardTaken)
                    }
                }
                None => Err(e.into()),
            },
        }
    }

    /// Settles a PENDING sign-up to SIGNED or FAILED on `date`.
    pub async fn settle_signup(
        &self,
        id: &SignUpId,
        status: SignUpStatus,
        failure: Option<&PeerRefusal>,
        date: NaiveDate,
        now_ms: i64,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE signups SET status = $1, failure_class = $2, failure_reason = $3, failure_message = $4, failure_domain = $5, \
             business_date = $6, updated_at_ms = $7 WHERE signup_id = $8 AND status = 'PENDING'",
        )
        .bind(status.code())
        .bind(failure.map(|f| f.class.name()))
        .bind(failure.map(|f| f.reason.as_str()))
        .bind(failure.map(|f| f.message.as_str()))
        .bind(failure.map(|f| f.domain.as_str()))
        .bind(date.to_string())
        .bind(now_ms)
        .bind(id.as_str())
        .execute(&self.pools.write)
        .await?;
        anyhow::ensure!(
            r.rows_affected() == 1,
            "sign-up {id} was not pending when settled"
        );
        Ok(())
    }

    /// Changes limit and/or mobile of a SIGNED sign-up; `false` if it is no longer SIGNED.
    pub async fn update_signed(
        &self,
        id: &SignUpId,
        limit: Option<DailyLimit>,
        mobile: Option<&Mobile>,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE signups SET daily_limit_fen = COALESCE($1, daily_limit_fen), mobile = COALESCE($2, mobile), updated_at_ms = $3 \
             WHERE signup_id = $4 AND status = 'SIGNED'",
        )
        .bind(limit.map(|l| l.money().fen()))
        .bind(mobile.map(Mobile::as_str))
        .bind(now_ms)
        .bind(id.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a sign-up from one status to another; `false` if it was not in `from`.
    /// `cancelled_date` is recorded when given; moving back to SIGNED clears it.
    pub async fn move_signup(
        &self,
        id: &SignUpId,
        from: SignUpStatus,
        to: SignUpStatus,
        cancelled_date: Option<NaiveDate>,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE signups SET status = $1, \
             cancelled_date = CASE WHEN $1 = 'SIGNED' THEN NULL ELSE COALESCE($2, cancelled_date) END, updated_at_ms = $3 \
             WHERE signup_id = $4 AND status = $5",
        )
        .bind(to.code())
        .bind(cancelled_date.map(|d| d.to_string()))
        .bind(now_ms)
        .bind(id.as_str())
        .bind(from.code())
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

fn card_from_row(r: &AnyRow) -> Result<Card> {
    card_from(r, "")
}

/// A card from `r`'s [`CARD_COLUMNS`], each named with `prefix` before it.
fn card_from(r: &AnyRow, prefix: &str) -> Result<Card> {
    let text = |c: &str| text(r, &format!("{prefix}{c}"));
    let int = |c: &str| int(r, &format!("{prefix}{c}"));
    let id_type = IdType::from_code(&text("id_type")?).ok_or_else(|| bad("id_type"))?;
    Ok(Card {
        number: CardNumber::parse(&text("card_number")?).map_err(|_| bad("card_number"))?,
        kind: AccountKind::from_code(&text("account_kind")?).ok_or_else(|| bad("account_kind"))?,
        holder_name: PersonName::parse(&text("holder_name")?).map_err(|_| bad("holder_name"))?,
        id: IdDocument::parse(id_type, &text("id_number")?, NaiveDate::MAX)
            .map_err(|_| bad("id_number"))?,
        balance: Money::from_fen(int("balance_fen")?).ok_or_else(|| bad("balance_fen"))?,
        status: CardStatus::from_code(&text("status")?).ok_or_else(|| bad("status"))?,
        wrong_password_tries: u32::try_from(int("wrong_password_tries")?)
            .map_err(|_| bad("wrong_password_tries"))?,
        opened_at_ms: int("opened_at_ms")?,
    })
}

fn signup_from_row(r: &AnyRow) -> Result<SignUp> {
    let id_type = IdType::from_code(&text(r, "id_type")?).ok_or_else(|| bad("id_type"))?;
    let failure = shared::store::failure(r, crate::domain::DOMAIN)?;
    Ok(SignUp {
        id: SignUpId::parse(&text(r, "signup_id")?).map_err(|_| bad("signup_id"))?,
        card: CardNumber::parse(&text(r, "card_number")?).map_err(|_| bad("card_number"))?,
        account: Email::parse(&text(r, "platform_account")?)
            .map_err(|_| bad("platform_account"))?,
        real_name: PersonName::parse(&text(r, "real_name")?).map_err(|_| bad("real_name"))?,
        id_doc: IdDocument::parse(id_type, &text(r, "id_number")?, NaiveDate::MAX)
            .map_err(|_| bad("id_number"))?,
        mobile: Mobile::parse(&text(r, "mobile")?).map_err(|_| bad("mobile"))?,
        limit: Money::from_fen(int(r, "daily_limit_fen")?)
            .and_then(|m| DailyLimit::new(m).ok())
            .ok_or_else(|| bad("daily_limit_fen"))?,
        status: SignUpStatus::from_code(&text(r, "status")?).ok_or_else(|| bad("status"))?,
        failure,
        business_date: opt_text(r, "business_date")?
            .map(|d| d.parse::<NaiveDate>().map_err(|_| bad("business_date")))
            .transpose()?,
        created_at_ms: int(r, "created_at_ms")?,
        updated_at_ms: int(r, "updated_at_ms")?,
    })
}

/// SQLite's plan for `sql` with `args` on a new bank database, one line a step.
#[cfg(test)]
async fn sqlite_plan(sql: &str, args: &[shared::store::Arg<'_>]) -> String {
    shared::store::sqlite_plan(&MIGRATOR, sql, args)
        .await
        .unwrap()
}
