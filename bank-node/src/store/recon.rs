//! What reconciliation reads from the ledger: successful payments by sequence number, a date's
//! state, and the pages of a closed date's sign-ups, payments and refunds; and the record of the
//! day files built.

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{
    BatchNo, CardNumber, Email, IdType, OrderNo, PayAmount, PersonName, RefundAmount, RefundId,
    SignUpId,
};
use shared::files::recon::{
    ClearingEntry, DayFigures, DayFileKind, OrderRecord, SignUpEvent, SignUpRecord,
};
use shared::store::{Arg, Columns, bad, bigint, int, opt_text, text, unsigned};
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::domain::{DayFileInfo, DayStatus, SuccessRecord};

const SUCCESS_COLUMNS: &str = "success_seq, order_no, bank_serial_no, signup_id, card_number, platform_account, amount_fen, business_date, paid_at_ms";

/// A closed date's payments, counted and summed.
const DAY_PAYMENTS_COUNT: &str = "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS fen \
     FROM payments WHERE business_date = $1 AND status = 'SUCCESS'";

/// A page of a closed date's payments for its order file, by order number.
const DAY_PAYMENTS_PAGE: &str = "SELECT order_no, bank_serial_no, signup_id, card_number, platform_account, \
     amount_fen, paid_at_ms FROM payments WHERE business_date = $1 \
     AND status = 'SUCCESS' AND order_no > $2 ORDER BY order_no LIMIT $3";

/// The successful payments after a sequence number, for the real-time pull.
fn successes_after_sql() -> String {
    format!(
        "SELECT {SUCCESS_COLUMNS} FROM payments WHERE success_seq > $1 ORDER BY success_seq LIMIT $2"
    )
}

impl Store {
    /// Successful payments with a sequence number above `after`, in sequence order, at most
    /// `limit`.
    pub async fn successful_payments(&self, after: u64, limit: u32) -> Result<Vec<SuccessRecord>> {
        let rows = sqlx::query(&successes_after_sql())
            .bind(bigint(after)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pools.read)
            .await?;
        rows.iter().map(success_from_row).collect()
    }

    /// A business date's status (OPEN or CLOSED), if it has a row.
    pub async fn day_status(&self, date: NaiveDate) -> Result<Option<DayStatus>> {
        let row = sqlx::query("SELECT status FROM business_days WHERE business_date = $1")
            .bind(date.to_string())
            .fetch_optional(&self.pools.read)
            .await?;
        row.map(|r| DayStatus::from_code(&text(&r, "status")?).ok_or_else(|| bad("status")))
            .transpose()
    }

    /// What begun on `date` is still in flight: sign-ups waiting for the platform, cancellations
    /// waiting for it, refund batches taken on the date and not finished.
    pub async fn in_flight_on(&self, date: NaiveDate) -> Result<i64> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM signups WHERE status = 'PENDING' AND business_date = $1) + \
               (SELECT COUNT(*) FROM signups WHERE status = 'CANCELLING' AND cancelled_date = $1) + \
               (SELECT COUNT(*) FROM refund_progress p JOIN refund_batches b ON b.batch_no = p.batch_no \
                 WHERE p.business_date = $1 AND b.status <> 'DONE') AS n",
        )
        .bind(date.to_string())
        .fetch_one(&self.pools.read)
        .await?;
        int(&row, "n")
    }

    /// A built day file.
    pub async fn day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> Result<Option<DayFileInfo>> {
        let row = sqlx::query(
            "SELECT kind, business_date, file_name, sha256, size_bytes, record_count, total_fen, built_at_ms \
             FROM day_files WHERE kind = $1 AND business_date = $2",
        )
        .bind(kind.code())
        .bind(date.to_string())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(day_file_from_row).transpose()
    }

    /// Records a built day file; `false` if another process recorded this (kind, date) first.
    pub async fn insert_day_file(&self, f: &DayFileInfo) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO day_files (kind, business_date, file_name, sha256, size_bytes, record_count, total_fen, built_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(f.kind.code())
        .bind(f.business_date.to_string())
        .bind(&f.file_name)
        .bind(&f.sha256)
        .bind(bigint(f.size)?)
        .bind(bigint(f.records)?)
        .bind(f.payment_total.fen())
        .bind(f.built_at_ms)
        .execute(&self.pools.write)
        .await;
        shared::store::inserted(r)
    }

    /// What the file of `kind` for `date` will hold, counted by the database.
    pub async fn day_figures(&self, kind: DayFileKind, date: NaiveDate) -> Result<DayFigures> {
        let d = date.to_string();
        let count = |sql: &'static str| {
            let d = d.clone();
            async move {
                let row = sqlx::query(sql).bind(d).fetch_one(&self.pools.read).await?;
                Ok::<_, anyhow::Error>((
                    unsigned(int(&row, "n")?)?,
                    Money::from_fen(int(&row, "fen")?).ok_or_else(|| bad("total"))?,
                ))
            }
        };
        let payments = || count(DAY_PAYMENTS_COUNT);
        Ok(match kind {
            DayFileKind::SignUp => {
                let (signed, _) = count(
                    "SELECT COUNT(*) AS n, CAST(0 AS BIGINT) AS fen FROM signups WHERE business_date = $1 \
                     AND status IN ('SIGNED', 'CANCELLING', 'CANCELLED')",
                )
                .await?;
                let (cancelled, _) = count(
                    "SELECT COUNT(*) AS n, CAST(0 AS BIGINT) AS fen FROM signups WHERE cancelled_date = $1 AND status = 'CANCELLED'",
                )
                .await?;
                DayFigures {
                    records: signed + cancelled,
                    signed,
                    cancelled,
                    ..DayFigures::default()
                }
            }
            DayFileKind::Order => {
                let (n, total) = payments().await?;
                DayFigures {
                    records: n,
                    payments: n,
                    payment_total: total,
                    ..DayFigures::default()
                }
            }
            DayFileKind::Clearing => {
                let (n, total) = payments().await?;
                let (refunds, refund_total) = count(
                    "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS fen FROM refund_lines \
                     WHERE business_date = $1 AND status = 'SUCCESS'",
                )
                .await?;
                DayFigures {
                    records: n + refunds,
                    payments: n,
                    payment_total: total,
                    refunds,
                    refund_total,
                    ..DayFigures::default()
                }
            }
        })
    }

    /// Sign-ups that succeeded (`Signed`) or whose cancellation succeeded (`Cancelled`) on
    /// `date`, by sign-up id, after `after`, at most `limit` (their `seq` is 0: the file numbers
    /// them).
    pub async fn signup_events(
        &self,
        date: NaiveDate,
        event: SignUpEvent,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SignUpRecord>> {
        let filter = match event {
            SignUpEvent::Signed => {
                "business_date = $1 AND status IN ('SIGNED', 'CANCELLING', 'CANCELLED')"
            }
            SignUpEvent::Cancelled => "cancelled_date = $1 AND status = 'CANCELLED'",
        };
        let sql = format!(
            "SELECT signup_id, platform_account, real_name, id_type, card_number FROM signups \
             WHERE {filter} AND signup_id > $2 ORDER BY signup_id LIMIT $3"
        );
        let date = date.to_string();
        let args = [
            Arg::Text(&date),
            Arg::Text(after),
            Arg::Int(i64::from(limit)),
        ];
        let rows = self.pools.read.rows(&sql, &args).await?;
        rows.map(|r| {
            Ok(SignUpRecord {
                seq: 0,
                signup_id: SignUpId::parse(r.text(0)?).map_err(|_| bad("signup_id"))?,
                event,
                account: Email::parse(r.text(1)?).map_err(|_| bad("platform_account"))?,
                real_name: PersonName::parse(r.text(2)?).map_err(|_| bad("real_name"))?,
                id_type: IdType::from_code(r.text(3)?).ok_or_else(|| bad("id_type"))?,
                card_masked: masked_card(r.text(4)?)?,
            })
        })
    }

    /// Payments that succeeded on `date`, by order number, after `after`, at most `limit`.
    pub async fn day_payments(
        &self,
        date: NaiveDate,
        after: &str,
        limit: u32,
    ) -> Result<Vec<OrderRecord>> {
        let rows = self
            .pools
            .read
            .rows(
                DAY_PAYMENTS_PAGE,
                &[
                    Arg::Text(&date.to_string()),
                    Arg::Text(after),
                    Arg::Int(i64::from(limit)),
                ],
            )
            .await?;
        rows.map(order_record_from_row)
    }

    /// Refund lines credited on `date`, by (batch, line), after `after`, at most `limit`.
    pub async fn day_refunds(
        &self,
        date: NaiveDate,
        after: (&str, u64),
        limit: u32,
    ) -> Result<Vec<(u64, ClearingEntry)>> {
        let date = date.to_string();
        let args = [
            Arg::Text(&date),
            Arg::Text(after.0),
            Arg::Int(bigint(after.1)?),
            Arg::Int(i64::from(limit)),
        ];
        let rows = self
            .pools
            .read
            .rows(
                "SELECT batch_no, seq, refund_id, order_no, amount_fen FROM refund_lines \
                 WHERE business_date = $1 AND status = 'SUCCESS' \
                 AND (batch_no > $2 OR (batch_no = $2 AND seq > $3)) ORDER BY batch_no, seq LIMIT $4",
                &args,
            )
            .await?;
        rows.map(|r| {
            Ok((
                unsigned(r.int(1)?)?,
                ClearingEntry::Refund {
                    order_no: OrderNo::parse(r.text(3)?).map_err(|_| bad("order_no"))?,
                    refund_id: RefundId::parse(r.text(2)?).map_err(|_| bad("refund_id"))?,
                    amount: Money::from_fen(r.int(4)?)
                        .and_then(|m| RefundAmount::new(m).ok())
                        .ok_or_else(|| bad("amount_fen"))?,
                    batch_no: BatchNo::parse(r.text(0)?).map_err(|_| bad("batch_no"))?,
                },
            ))
        })
    }
}

/// A card number from the ledger, masked.
fn masked_card(number: &str) -> Result<String> {
    Ok(CardNumber::parse(number)
        .map_err(|_| bad("card_number"))?
        .masked())
}

fn success_from_row(r: &AnyRow) -> Result<SuccessRecord> {
    use sqlx::Row;
    Ok(SuccessRecord {
        seq: unsigned(int(r, "success_seq")?)?,
        order_no: OrderNo::parse(&text(r, "order_no")?).map_err(|_| bad("order_no"))?,
        serial: text(r, "bank_serial_no")?,
        signup_id: SignUpId::parse(&text(r, "signup_id")?).map_err(|_| bad("signup_id"))?,
        account: Email::parse(&text(r, "platform_account")?)
            .map_err(|_| bad("platform_account"))?,
        card_masked: masked_card(&text(r, "card_number")?)?,
        amount: Money::from_fen(int(r, "amount_fen")?)
            .and_then(|m| PayAmount::new(m).ok())
            .ok_or_else(|| bad("amount_fen"))?,
        business_date: opt_text(r, "business_date")?
            .ok_or_else(|| bad("business_date"))?
            .parse::<NaiveDate>()
            .map_err(|_| bad("business_date"))?,
        paid_at_ms: r
            .try_get::<Option<i64>, _>("paid_at_ms")?
            .ok_or_else(|| bad("paid_at_ms"))?,
    })
}

/// An order file's record from `day_payments`' columns (by position), numbered 0.
fn order_record_from_row(r: &dyn Columns) -> Result<OrderRecord> {
    let amount_fen = r.int(5)?;
    Ok(OrderRecord {
        seq: 0,
        order_no: OrderNo::parse(r.text(0)?).map_err(|_| bad("order_no"))?,
        serial: r.text(1)?.to_owned(),
        signup_id: SignUpId::parse(r.text(2)?).map_err(|_| bad("signup_id"))?,
        card_masked: masked_card(r.text(3)?)?,
        account: Email::parse(r.text(4)?).map_err(|_| bad("platform_account"))?,
        amount: Money::from_fen(amount_fen)
            .and_then(|m| PayAmount::new(m).ok())
            .ok_or_else(|| bad("amount_fen"))?,
        paid_at: shared::clock::from_ms(r.int(6)?)
            .with_timezone(&shared::clock::cst())
            .naive_local(),
    })
}

fn day_file_from_row(r: &AnyRow) -> Result<DayFileInfo> {
    Ok(DayFileInfo {
        kind: DayFileKind::from_code(&text(r, "kind")?).ok_or_else(|| bad("kind"))?,
        business_date: text(r, "business_date")?
            .parse::<NaiveDate>()
            .map_err(|_| bad("business_date"))?,
        file_name: text(r, "file_name")?,
        sha256: text(r, "sha256")?,
        size: unsigned(int(r, "size_bytes")?)?,
        records: unsigned(int(r, "record_count")?)?,
        payment_total: Money::from_fen(int(r, "total_fen")?).ok_or_else(|| bad("total_fen"))?,
        built_at_ms: int(r, "built_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite's plan for `sql`, which must not scan `payments`.
    async fn reads_of_payments(sql: &str, args: &[Arg<'_>]) -> String {
        let plan = super::super::sqlite_plan(sql, args).await;
        assert!(!plan.contains("SCAN payments"), "{plan}");
        plan
    }

    #[tokio::test]
    async fn the_pull_and_the_day_file_read_the_indexes_of_paid_payments_only() {
        // The indexes on the success number and the date hold only the payments that have them
        // (migration 0012): a query SQLite cannot tell asks for those would scan every payment.
        let date = Arg::Text("2026-12-01");
        let plan = reads_of_payments(&successes_after_sql(), &[Arg::Int(0), Arg::Int(10)]).await;
        assert!(
            plan.contains("USING INDEX payments_by_success_seq"),
            "{plan}"
        );
        for (sql, args) in [
            (DAY_PAYMENTS_COUNT, vec![date]),
            (DAY_PAYMENTS_PAGE, vec![date, Arg::Text(""), Arg::Int(10)]),
        ] {
            let plan = reads_of_payments(sql, &args).await;
            assert!(
                plan.contains("USING INDEX payments_by_date_and_order"),
                "{plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }
}
