//! Payments, daily usage, business days and the SMS outbox at rest.

use chrono::NaiveDate;
use shared::domain::{CardNumber, Email, OrderNo, PayAmount, SignUpId};
use shared::seed::{PaidOrderSeed, SeedOutcome};
use shared::store::{Arg, Params, Ran, Script, bad, int, opt_text, text, unique_violation};
use shared::{Money, PeerRefusal};
use sqlx::any::AnyRow;
use std::sync::LazyLock;

use super::{Result, Store};
use crate::domain::{DebitOutcome, Payment, PaymentStatus, SignUp, Sms};

const PAYMENT_COLUMNS: &str = "order_no, fingerprint, signup_id, card_number, platform_account, amount_fen, status, otp_hash, otp_expires_at_ms, otp_wrong_tries, bank_serial_no, business_date, paid_at_ms, failure_class, failure_reason, failure_message, created_at_ms, refunded_fen";

/// One mobile's newest messages: read from the newest end of its index, as many as asked for,
/// however long the outbox.
const SMS_TO_MOBILE: &str = "SELECT sms_id, mobile, body, order_no, otp_code, sent_at_ms FROM sms_outbox \
     WHERE mobile = $1 ORDER BY sent_at_ms DESC, seq DESC, sms_id DESC LIMIT $2";
/// Every mobile's newest messages.
const SMS_ALL: &str = "SELECT sms_id, mobile, body, order_no, otp_code, sent_at_ms FROM sms_outbox \
     ORDER BY sent_at_ms DESC, seq DESC, sms_id DESC LIMIT $1";

/// A CODE_SENT payment and its SMS: nothing when the order number is taken.
static PAYMENT_WITH_SMS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "INSERT INTO payments (order_no, fingerprint, signup_id, card_number, platform_account, amount_fen, status, otp_hash, otp_expires_at_ms, otp_wrong_tries, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10) ON CONFLICT (order_no) DO NOTHING; \
         INSERT INTO sms_outbox (sms_id, mobile, body, order_no, otp_code, sent_at_ms, seq) \
         VALUES ($11, $12, $13, $14, $15, $16, (SELECT COALESCE(MAX(seq), 0) + 1 FROM sms_outbox))",
    )
});

/// `$2` payments of `$3` fen in all added to business day `$1`'s figures (`$4` the time), and the
/// success sequence moved on by `$2`, returning its new value. The day's row is inserted with
/// these figures, or, when it is there, updated only while OPEN: a closed day stops the script.
/// The counter comes after the day's row, so its lock is held to commit: sequence order is commit
/// order (see the migration).
const DAY_AND_SEQUENCE_SQL: &str = "INSERT INTO business_days (business_date, status, payment_count, payment_total_fen, opened_at_ms) \
     VALUES ($1, 'OPEN', $2, $3, $4) \
     ON CONFLICT (business_date) DO UPDATE SET \
       payment_count = business_days.payment_count + excluded.payment_count, \
       payment_total_fen = business_days.payment_total_fen + excluded.payment_total_fen \
     WHERE business_days.status = 'OPEN'; \
     UPDATE counters SET value = value + $2 WHERE name = 'payment_success' RETURNING value";

static DAY_AND_SEQUENCE: LazyLock<Script> = LazyLock::new(|| Script::new(DAY_AND_SEQUENCE_SQL));

/// A debit of `$3` fen on business date `$1` (`$2` = 1 payment, `$4` the time) from card `$5`
/// under sign-up `$6`, settling payment `$8` with the serial number `$7` (the date, `YYYYMMDD`)
/// and its success number in 12 digits: unique, as the success number is, up to a million
/// million payments (the `1` the addition puts in front keeps the zeros on both engines).
///
/// Every check is a conditional write, so concurrent payments cannot overspend; the statement
/// that changes nothing says which failed: 0 the sign-up is not SIGNED or the day's usage would
/// pass its limit (the usage row inserted with the amount when the sign-up allows it, or raised
/// only within the limit); 1 the card is not NORMAL or short of the amount; 2 the day is closed;
/// 4 the payment is settled already. The last returns the payment as settled.
///
/// The day's row and the success sequence, which every debit of the day takes and holds to its
/// commit, come after the card's own rows, so that on PostgreSQL (a statement a round trip) the
/// day's row is held through two more statements and the commit, not four. A stop at 0 may then
/// be the day closed under the debit rather than the limit: [`DebitOutcome::OverLimitOrNotSigned`]
/// says so.
static DEBIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(format!(
        "INSERT INTO daily_usage (card_number, business_date, used_fen) \
         SELECT $5, $1, $3 FROM signups WHERE signup_id = $6 AND status = 'SIGNED' AND $3 <= daily_limit_fen \
         ON CONFLICT (card_number, business_date) DO UPDATE SET used_fen = daily_usage.used_fen + excluded.used_fen \
         WHERE daily_usage.used_fen + excluded.used_fen <= \
           (SELECT daily_limit_fen FROM signups WHERE signup_id = $6 AND status = 'SIGNED'); \
         UPDATE cards SET balance_fen = balance_fen - $3, updated_at_ms = $4 \
         WHERE card_number = $5 AND status = 'NORMAL' AND balance_fen >= $3; \
         {DAY_AND_SEQUENCE_SQL}; \
         UPDATE payments SET status = 'SUCCESS', business_date = $1, paid_at_ms = $4, updated_at_ms = $4, \
           success_seq = (SELECT value FROM counters WHERE name = 'payment_success'), \
           bank_serial_no = $7 || substr(CAST(1000000000000 + (SELECT value FROM counters WHERE name = 'payment_success') AS TEXT), 2) \
         WHERE order_no = $8 AND status = 'CODE_SENT' RETURNING {PAYMENT_COLUMNS}"
    ))
});

impl Store {
    /// A payment by order number, with its fingerprint and code hash.
    pub async fn payment(&self, order: &OrderNo) -> Result<Option<Payment>> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_no = $1"
        ))
        .bind(order.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// Records a CODE_SENT payment and its SMS in one transaction; `false` if the order number is
    /// taken (a concurrent repeat got there first).
    pub async fn insert_payment_with_sms(&self, p: &Payment, sms: &Sms) -> Result<bool> {
        let ran = self
            .pools
            .write
            .transact(
                &PAYMENT_WITH_SMS,
                &[
                    Arg::Text(p.order_no.as_str()),
                    Arg::Text(&p.fingerprint),
                    Arg::Text(p.signup_id.as_str()),
                    Arg::Text(p.card.expose()),
                    Arg::Text(p.account.as_str()),
                    Arg::Int(p.amount.fen()),
                    Arg::Text(p.status.code()),
                    Arg::Text(&p.otp_hash),
                    Arg::Int(p.otp_expires_at_ms),
                    Arg::Int(p.created_at_ms),
                    Arg::Text(&sms.id),
                    Arg::Text(&sms.mobile),
                    Arg::Text(&sms.body),
                    Arg::OptText(sms.order_no.as_deref()),
                    Arg::OptText(sms.otp_code.as_deref()),
                    Arg::Int(sms.sent_at_ms),
                ],
            )
            .await?;
        Ok(matches!(ran, Ran::All(_)))
    }

    /// Counts a wrong code on a CODE_SENT payment; the count after, or `None` if it is no longer
    /// CODE_SENT.
    pub async fn count_wrong_otp(&self, order: &OrderNo, now_ms: i64) -> Result<Option<u32>> {
        let row = sqlx::query(
            "UPDATE payments SET otp_wrong_tries = otp_wrong_tries + 1, updated_at_ms = $1 \
             WHERE order_no = $2 AND status = 'CODE_SENT' RETURNING otp_wrong_tries",
        )
        .bind(now_ms)
        .bind(order.as_str())
        .fetch_optional(&self.pools.write)
        .await?;
        row.map(|r| Ok(u32::try_from(int(&r, "otp_wrong_tries")?).unwrap_or(u32::MAX)))
            .transpose()
    }

    /// Settles a CODE_SENT payment FAILED; `false` if it was settled already.
    pub async fn fail_payment(
        &self,
        order: &OrderNo,
        failure: &PeerRefusal,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE payments SET status = 'FAILED', failure_class = $1, failure_reason = $2, failure_message = $3, updated_at_ms = $4 \
             WHERE order_no = $5 AND status = 'CODE_SENT'",
        )
        .bind(failure.class.name())
        .bind(&failure.reason)
        .bind(&failure.message)
        .bind(now_ms)
        .bind(order.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Debits a CODE_SENT payment on business date `date` in one transaction: the day must be
    /// open, the sign-up SIGNED with room left under its daily limit, the card NORMAL with the
    /// balance. Every check is a conditional write, so concurrent payments cannot overspend. The
    /// serial number is the date and the payment's success number ([`DEBIT`]).
    pub async fn debit(&self, p: &Payment, date: NaiveDate, now_ms: i64) -> Result<DebitOutcome> {
        let serial_prefix = date.format("%Y%m%d").to_string();
        let date = date.to_string();
        let ran = self
            .pools
            .write
            .transact(
                &DEBIT,
                &[
                    Arg::Text(&date),
                    Arg::Int(1),
                    Arg::Int(p.amount.fen()),
                    Arg::Int(now_ms),
                    Arg::Text(p.card.expose()),
                    Arg::Text(p.signup_id.as_str()),
                    Arg::Text(&serial_prefix),
                    Arg::Text(p.order_no.as_str()),
                ],
            )
            .await?;
        let rows = match ran {
            Ran::StoppedAt(0) => return Ok(DebitOutcome::OverLimitOrNotSigned),
            Ran::StoppedAt(1) => return Ok(DebitOutcome::CardRefused),
            Ran::StoppedAt(2) => return Ok(DebitOutcome::DayClosed),
            Ran::StoppedAt(4) => return Ok(DebitOutcome::AlreadySettled),
            // The success sequence's row is there from the first migration on.
            Ran::StoppedAt(_) => return Err(bad("counters")),
            Ran::All(rows) => rows,
        };
        // The payment as settled comes back with the settling write: no read after it.
        let paid = payment_from_row(rows.last().ok_or_else(|| bad("payments"))?)?;
        Ok(DebitOutcome::Debited(Box::new(paid)))
    }

    /// Writes a seed of successful payments in one transaction: the day's figures and the
    /// success sequence move as if each had been paid; balances and daily usage do not. `false`
    /// (nothing written) when the day is no longer open; an order or serial number already
    /// taken is [`SeedOutcome::Taken`].
    pub async fn seed_payments(
        &self,
        seed: &PaidOrderSeed,
        s: &SignUp,
        now_ms: i64,
    ) -> Result<SeedOutcome> {
        let date = seed.date.to_string();
        let mut tx = self.pools.write.begin().await?;
        let count = i64::from(seed.count);
        let ran = tx
            .run(
                &DAY_AND_SEQUENCE,
                &[
                    Arg::Text(&date),
                    Arg::Int(count),
                    Arg::Int(seed.total_fen()),
                    Arg::Int(now_ms),
                ],
            )
            .await?;
        let rows = match ran {
            Ran::StoppedAt(0) => return Ok(SeedOutcome::DayClosed),
            // The success sequence's row is there from the first migration on.
            Ran::StoppedAt(_) => return Err(bad("counters")),
            Ran::All(rows) => rows,
        };
        let last = rows.last().ok_or_else(|| bad("counters"))?;
        let first_seq = int(last, "value")? - count + 1;
        let mut seq = first_seq;
        for page in seed.pages() {
            let sql = format!(
                "INSERT INTO payments (order_no, fingerprint, signup_id, card_number, platform_account, amount_fen, status, otp_hash, otp_expires_at_ms, otp_wrong_tries, bank_serial_no, business_date, paid_at_ms, created_at_ms, updated_at_ms, success_seq) VALUES {}",
                Params::new(self.backend).rows(page.len(), 16)
            );
            let mut q = sqlx::query(&sql);
            for o in &page {
                q = q
                    .bind(&o.order_no)
                    .bind("seeded")
                    .bind(s.id.as_str())
                    .bind(s.card.expose())
                    .bind(s.account.as_str())
                    .bind(o.amount_fen)
                    .bind("SUCCESS")
                    .bind("seeded")
                    .bind(now_ms)
                    .bind(0_i64)
                    .bind(&o.serial)
                    .bind(&date)
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(now_ms)
                    .bind(seq);
                seq += 1;
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

    /// What a card paid on a business date.
    pub async fn used_on(&self, card: &CardNumber, date: NaiveDate) -> Result<Money> {
        let row = sqlx::query(
            "SELECT used_fen FROM daily_usage WHERE card_number = $1 AND business_date = $2",
        )
        .bind(card.expose())
        .bind(date.to_string())
        .fetch_optional(&self.pools.read)
        .await?;
        let fen = row.map(|r| int(&r, "used_fen")).transpose()?.unwrap_or(0);
        Money::from_fen(fen).ok_or_else(|| bad("used_fen"))
    }

    /// Closes every open business day before `today`, making sure `yesterday` has a row (an empty
    /// day is closed too); the dates closed now, oldest first.
    pub async fn close_days_before(
        &self,
        today: NaiveDate,
        yesterday: NaiveDate,
        now_ms: i64,
    ) -> Result<Vec<NaiveDate>> {
        let mut tx = self.pools.write.begin().await?;
        sqlx::query(
            "INSERT INTO business_days (business_date, status, payment_count, payment_total_fen, opened_at_ms) \
             VALUES ($1, 'OPEN', 0, 0, $2) ON CONFLICT (business_date) DO NOTHING",
        )
        .bind(yesterday.to_string())
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        let rows = sqlx::query(
            "UPDATE business_days SET status = 'CLOSED', closed_at_ms = $1 \
             WHERE business_date < $2 AND status = 'OPEN' RETURNING business_date",
        )
        .bind(now_ms)
        .bind(today.to_string())
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        let mut dates = rows
            .iter()
            .map(|r| {
                text(r, "business_date")?
                    .parse::<NaiveDate>()
                    .map_err(|_| bad("business_date"))
            })
            .collect::<Result<Vec<_>>>()?;
        dates.sort();
        Ok(dates)
    }

    /// The most recent closed business day.
    pub async fn last_closed_day(&self) -> Result<Option<NaiveDate>> {
        let row = sqlx::query(
            "SELECT MAX(business_date) AS d FROM business_days WHERE status = 'CLOSED'",
        )
        .fetch_one(&self.pools.read)
        .await?;
        opt_text(&row, "d")?
            .map(|d| d.parse::<NaiveDate>().map_err(|_| bad("business_date")))
            .transpose()
    }

    /// The closed business days from `from` to the day before `to`, oldest first.
    pub async fn closed_days(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<NaiveDate>> {
        let rows = sqlx::query(
            "SELECT business_date FROM business_days WHERE status = 'CLOSED' \
             AND business_date >= $1 AND business_date < $2 ORDER BY business_date",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter()
            .map(|r| {
                text(r, "business_date")?
                    .parse::<NaiveDate>()
                    .map_err(|_| bad("business_date"))
            })
            .collect()
    }

    /// Messages in the outbox, newest first, optionally to one mobile.
    pub async fn sms(&self, mobile: Option<&str>, limit: u32) -> Result<Vec<Sms>> {
        let query = match mobile {
            Some(m) => sqlx::query(SMS_TO_MOBILE).bind(m),
            None => sqlx::query(SMS_ALL),
        };
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pools.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Sms {
                    id: text(r, "sms_id")?,
                    mobile: text(r, "mobile")?,
                    body: text(r, "body")?,
                    order_no: opt_text(r, "order_no")?,
                    otp_code: opt_text(r, "otp_code")?,
                    sent_at_ms: int(r, "sent_at_ms")?,
                })
            })
            .collect()
    }

    /// Deletes every record (a simulator reset); the schema stays, and the counters start again
    /// as on a new database.
    pub async fn wipe(&self) -> Result<()> {
        shared::store::wipe(
            &self.pools.write,
            &[
                "day_files",
                "seen_nonces",
                "sim_clock",
                "refund_lines",
                "refund_progress",
                "refund_batches",
                "sms_outbox",
                "payments",
                "daily_usage",
                "business_days",
                "signups",
                "cards",
                "audit_log",
            ],
            // The success sequence starts again, as on a new database: the platform's cursor
            // is wiped too, and a pull numbers the first payment after a reset 1. So do the
            // sign-up numbers: the platform's card-links are wiped with the sign-ups.
            &["UPDATE counters SET value = 0 WHERE name IN ('payment_success', 'signup')"],
        )
        .await
    }
}

fn payment_from_row(r: &AnyRow) -> Result<Payment> {
    let failure = shared::store::failure(r, crate::domain::DOMAIN)?;
    let opt_int = |col: &str| -> Result<Option<i64>> {
        use sqlx::Row;
        Ok(r.try_get::<Option<i64>, _>(col)?)
    };
    Ok(Payment {
        order_no: OrderNo::parse(&text(r, "order_no")?).map_err(|_| bad("order_no"))?,
        fingerprint: text(r, "fingerprint")?,
        signup_id: SignUpId::parse(&text(r, "signup_id")?).map_err(|_| bad("signup_id"))?,
        card: CardNumber::parse(&text(r, "card_number")?).map_err(|_| bad("card_number"))?,
        account: Email::parse(&text(r, "platform_account")?)
            .map_err(|_| bad("platform_account"))?,
        amount: Money::from_fen(int(r, "amount_fen")?)
            .and_then(|m| PayAmount::new(m).ok())
            .ok_or_else(|| bad("amount_fen"))?,
        status: PaymentStatus::from_code(&text(r, "status")?).ok_or_else(|| bad("status"))?,
        otp_hash: text(r, "otp_hash")?,
        otp_expires_at_ms: int(r, "otp_expires_at_ms")?,
        otp_wrong_tries: u32::try_from(int(r, "otp_wrong_tries")?)
            .map_err(|_| bad("otp_wrong_tries"))?,
        serial: opt_text(r, "bank_serial_no")?,
        business_date: opt_text(r, "business_date")?
            .map(|d| d.parse::<NaiveDate>().map_err(|_| bad("business_date")))
            .transpose()?,
        paid_at_ms: opt_int("paid_at_ms")?,
        failure,
        created_at_ms: int(r, "created_at_ms")?,
        refunded: Money::from_fen(int(r, "refunded_fen")?).ok_or_else(|| bad("refunded_fen"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mobiles_codes_are_read_from_its_index_not_the_whole_outbox() {
        // A tester's client reads its code after every payment: a scan and sort of the whole
        // outbox would make each payment slower than the last.
        let plan =
            super::super::sqlite_plan(SMS_TO_MOBILE, &[Arg::Text("13800000000"), Arg::Int(10)])
                .await;
        assert!(plan.contains("USING INDEX"), "{plan}");
        assert!(!plan.contains("SCAN sms_outbox"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
