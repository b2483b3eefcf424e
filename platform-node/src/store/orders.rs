//! Orders at rest. Every status change is a conditional update, so a settled order never changes.

use std::sync::LazyLock;

use chrono::NaiveDate;
use shared::domain::{Email, OrderNo, PayAmount, SignUpId};
use shared::seed::{PaidOrderSeed, SeedOutcome};
use shared::store::{Arg, Ran, Script, bad, columns_of, int, opt_text, text, unique_violation};
use shared::{Money, PeerRefusal};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::domain::{Account, CardLink, Order, OrderStatus};

pub(super) const ORDER_COLUMNS: &str = "order_no, email, signup_id, card_number_masked, amount_fen, description, status, mobile_masked, code_expires_at_ms, bank_serial_no, business_date, failure_class, failure_reason, failure_message, failure_domain, created_at_ms, updated_at_ms, refunded_fen";

/// The account of session `$1` unless it ended by `$2`, as [`super::ACCOUNT_COLUMNS`] each named
/// `account_<column>`, and order `$3` as [`ORDER_COLUMNS`] (NULL without one).
static SESSION_AND_ORDER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, {} FROM sessions s JOIN accounts a ON a.email = s.email \
         LEFT JOIN orders o ON o.order_no = $3 \
         WHERE s.token_hash = $1 AND s.expires_at_ms > $2",
        columns_of(super::ACCOUNT_COLUMNS, "a", "account_"),
        columns_of(ORDER_COLUMNS, "o", ""),
    )
});

/// A CREATED order: nothing when the order number is taken.
static INSERT_ORDER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "INSERT INTO orders (order_no, email, signup_id, card_number_masked, amount_fen, description, status, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (order_no) DO NOTHING",
    )
});

/// Order `$4` CREATED → AWAITING_CODE, the code sent to `$1` (masked) until `$2`; the order as
/// marked.
static MARK_CODE_SENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "UPDATE orders SET status = 'AWAITING_CODE', mobile_masked = $1, code_expires_at_ms = $2, updated_at_ms = $3 \
         WHERE order_no = $4 AND status = 'CREATED' RETURNING {ORDER_COLUMNS}"
    ))
});

/// Unsettled order `$4` → SUCCESS with the bank's serial number `$1` and date `$2`; the order as
/// settled.
static SUCCEED_ORDER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "UPDATE orders SET status = 'SUCCESS', bank_serial_no = $1, business_date = $2, updated_at_ms = $3 \
         WHERE order_no = $4 AND status IN ('CREATED', 'AWAITING_CODE', 'UNKNOWN') RETURNING {ORDER_COLUMNS}"
    ))
});

/// The order a one-statement script wrote and returned; `None` when it changed none.
fn the_order(ran: Ran) -> Result<Option<Order>> {
    match ran {
        Ran::All(rows) => rows.first().map(order_from_row).transpose(),
        Ran::StoppedAt(_) => Ok(None),
    }
}

impl Store {
    /// Counts a wrong payment password in one statement (concurrent tries each count): the
    /// `limit`th in a row locks payment until `lock_until_ms` and starts the count again. The
    /// wrong tries now counted (0 when this one locked) and the lock's end.
    pub async fn pay_password_wrong(
        &self,
        email: &Email,
        limit: i64,
        lock_until_ms: i64,
    ) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "UPDATE accounts SET \
               pay_locked_until_ms = CASE WHEN pay_failures + 1 >= $1 THEN $2 ELSE pay_locked_until_ms END, \
               pay_failures = CASE WHEN pay_failures + 1 >= $1 THEN 0 ELSE pay_failures + 1 END \
             WHERE email = $3 RETURNING pay_failures, pay_locked_until_ms",
        )
        .bind(limit)
        .bind(lock_until_ms)
        .bind(email.as_str())
        .fetch_one(&self.pools.write)
        .await?;
        Ok((
            int(&row, "pay_failures")?,
            int(&row, "pay_locked_until_ms")?,
        ))
    }

    /// A right payment password after wrong ones: the count starts again.
    pub async fn pay_password_right(&self, email: &Email) -> Result<()> {
        sqlx::query("UPDATE accounts SET pay_failures = 0 WHERE email = $1")
            .bind(email.as_str())
            .execute(&self.pools.write)
            .await?;
        Ok(())
    }

    /// Inserts a CREATED order; `false` if the order number is taken.
    pub async fn insert_order(&self, o: &Order) -> Result<bool> {
        let ran = self
            .pools
            .write
            .transact(
                &INSERT_ORDER,
                &[
                    Arg::Text(o.order_no.as_str()),
                    Arg::Text(o.email.as_str()),
                    Arg::Text(o.signup_id.as_str()),
                    Arg::Text(&o.card_masked),
                    Arg::Int(o.amount.fen()),
                    Arg::Text(&o.description),
                    Arg::Text(o.status.code()),
                    Arg::Int(o.created_at_ms),
                ],
            )
            .await?;
        Ok(matches!(ran, Ran::All(_)))
    }

    /// The account of the session whose token hashes to `token_hash`, if it has not ended by
    /// `now_ms`, with order `order_no` (whoever's it is; `None` if there is none), in one read.
    pub async fn session_and_order(
        &self,
        token_hash: &str,
        now_ms: i64,
        order_no: &OrderNo,
    ) -> Result<Option<(Account, Option<Order>)>> {
        let row = sqlx::query(&SESSION_AND_ORDER)
            .bind(token_hash)
            .bind(now_ms)
            .bind(order_no.as_str())
            .fetch_optional(&self.pools.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let account = super::account_from(&row, "account_")?;
        if opt_text(&row, "order_no")?.is_none() {
            return Ok(Some((account, None)));
        }
        Ok(Some((account, Some(order_from_row(&row)?))))
    }

    /// An order by number.
    pub async fn order(&self, order_no: &OrderNo) -> Result<Option<Order>> {
        let row = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE order_no = $1"
        ))
        .bind(order_no.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// CREATED → AWAITING_CODE with where the code went: the order as marked, or `None` when it
    /// was no longer CREATED (a concurrent request moved it on).
    pub async fn mark_code_sent(
        &self,
        order_no: &OrderNo,
        mobile_masked: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Order>> {
        let ran = self
            .pools
            .write
            .transact(
                &MARK_CODE_SENT,
                &[
                    Arg::Text(mobile_masked),
                    Arg::Int(expires_at_ms),
                    Arg::Int(now_ms),
                    Arg::Text(order_no.as_str()),
                ],
            )
            .await?;
        the_order(ran)
    }

    /// AWAITING_CODE → UNKNOWN.
    pub async fn mark_unknown(&self, order_no: &OrderNo, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE orders SET status = 'UNKNOWN', updated_at_ms = $1 WHERE order_no = $2 AND status = 'AWAITING_CODE'",
        )
        .bind(now_ms)
        .bind(order_no.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// An unsettled order → SUCCESS with the bank's serial number and date: the order as this
    /// call settled it, or `None` when it was settled already.
    pub async fn succeed_order(
        &self,
        order_no: &OrderNo,
        serial: &str,
        date: NaiveDate,
        now_ms: i64,
    ) -> Result<Option<Order>> {
        let date = date.to_string();
        let ran = self
            .pools
            .write
            .transact(
                &SUCCEED_ORDER,
                &[
                    Arg::Text(serial),
                    Arg::Text(&date),
                    Arg::Int(now_ms),
                    Arg::Text(order_no.as_str()),
                ],
            )
            .await?;
        the_order(ran)
    }

    /// An unsettled order → FAILED with the refusal; whether this call settled it.
    pub async fn fail_order(
        &self,
        order_no: &OrderNo,
        r: &PeerRefusal,
        now_ms: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE orders SET status = 'FAILED', failure_class = $1, failure_reason = $2, failure_message = $3, failure_domain = $4, updated_at_ms = $5 \
             WHERE order_no = $6 AND status IN ('CREATED', 'AWAITING_CODE', 'UNKNOWN')",
        )
        .bind(r.class.name())
        .bind(&r.reason)
        .bind(&r.message)
        .bind(&r.domain)
        .bind(now_ms)
        .bind(order_no.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes a seed of SUCCESS orders of `link` in one transaction; an order number already
    /// taken is [`SeedOutcome::Taken`] (nothing written).
    pub async fn seed_orders(
        &self,
        seed: &PaidOrderSeed,
        link: &CardLink,
        now_ms: i64,
    ) -> Result<SeedOutcome> {
        let date = seed.date.to_string();
        let mut tx = self.pools.write.begin().await?;
        for page in seed.pages() {
            let sql = format!(
                "INSERT INTO orders (order_no, email, signup_id, card_number_masked, amount_fen, description, status, bank_serial_no, business_date, created_at_ms, updated_at_ms) VALUES {}",
                self.params().rows(page.len(), 11)
            );
            let mut q = sqlx::query(&sql);
            for o in &page {
                q = q
                    .bind(&o.order_no)
                    .bind(link.email.as_str())
                    .bind(link.signup_id.as_str())
                    .bind(&link.card_masked)
                    .bind(o.amount_fen)
                    .bind("seeded")
                    .bind("SUCCESS")
                    .bind(&o.serial)
                    .bind(&date)
                    .bind(now_ms)
                    .bind(now_ms);
            }
            if let Err(e) = q.execute(&mut tx).await {
                return match unique_violation(&e) {
                    Some(_) => Ok(SeedOutcome::Taken),
                    None => Err(e.into()),
                };
            }
        }
        tx.commit().await?;
        Ok(SeedOutcome::Written)
    }

    /// Deletes every record (a simulator reset); the schema stays.
    pub async fn wipe(&self) -> Result<()> {
        shared::store::wipe(
            &self.pools.write,
            &[
                "recon_staging",
                "seen_nonces",
                "sim_clock",
                "recon_cases",
                "recon_runs",
                "adjustments",
                "recon_cursors",
                "refunds",
                "refund_batches",
                "orders",
                "sessions",
                "card_links",
                "accounts",
                "audit_log",
            ],
            &[],
        )
        .await
    }
}

/// Inserts a settled order as the bank has it (reconciliation, `RECON`) or as an operator wrote
/// it (`MANUAL`).
pub(super) fn insert_settled<'q>(
    o: &'q Order,
    origin: &'static str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO orders (order_no, email, signup_id, card_number_masked, amount_fen, description, status, bank_serial_no, business_date, origin, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(o.order_no.as_str())
    .bind(o.email.as_str())
    .bind(o.signup_id.as_str())
    .bind(o.card_masked.as_str())
    .bind(o.amount.fen())
    .bind(o.description.as_str())
    .bind(o.status.code())
    .bind(o.serial.as_deref())
    .bind(o.business_date.map(|d| d.to_string()))
    .bind(origin)
    .bind(o.created_at_ms)
}

pub(super) fn order_from_row(r: &AnyRow) -> Result<Order> {
    let failure = shared::store::failure(r, crate::domain::DOMAIN)?;
    Ok(Order {
        order_no: OrderNo::parse(&text(r, "order_no")?).map_err(|_| bad("order_no"))?,
        email: Email::parse(&text(r, "email")?).map_err(|_| bad("email"))?,
        signup_id: SignUpId::parse(&text(r, "signup_id")?).map_err(|_| bad("signup_id"))?,
        card_masked: text(r, "card_number_masked")?,
        amount: Money::from_fen(int(r, "amount_fen")?)
            .and_then(|m| PayAmount::new(m).ok())
            .ok_or_else(|| bad("amount_fen"))?,
        description: text(r, "description")?,
        status: OrderStatus::from_code(&text(r, "status")?).ok_or_else(|| bad("status"))?,
        mobile_masked: opt_text(r, "mobile_masked")?,
        code_expires_at_ms: r.try_get::<Option<i64>, _>("code_expires_at_ms")?,
        serial: opt_text(r, "bank_serial_no")?,
        business_date: opt_text(r, "business_date")?
            .map(|d| d.parse::<NaiveDate>().map_err(|_| bad("business_date")))
            .transpose()?,
        failure,
        created_at_ms: int(r, "created_at_ms")?,
        updated_at_ms: int(r, "updated_at_ms")?,
        refunded: Money::from_fen(int(r, "refunded_fen")?).ok_or_else(|| bad("refunded_fen"))?,
    })
}
