//! Reconciliation at rest: the real-time cursor, adjustments (each written in the transaction of
//! the change it records), T+1 runs, error cases, and the staging table a bank file's keys are
//! loaded into so that the platform-only records can be found by the database.

use std::collections::HashMap;

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{Email, OrderNo, SignUpId};
use shared::files::recon::DayFileKind;
use shared::store::{Arg, Tx, bad, bigint, int, opt_text, text, unsigned};
use sqlx::Any;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::domain::{
    Adjustment, CardLink, CaseCategory, CaseFilter, CaseStatus, DayOrderFacts, DayRun, LinkStatus,
    Order, OrderFix, PlatformRefund, ReconCase, RefundLineStatus,
};

/// The most keys bound into one statement.
pub const KEYS_PER_STATEMENT_MAX: usize = 500;

const CASE_COLUMNS: &str = "case_id, run_id, kind, business_date, record_key, category, bank_record, platform_record, amount_fen, action, status, note, created_at_ms, closed_at_ms";

/// Orders still open and unchanged since a time, by order number. Its condition on the status is
/// the one of the index `orders_open` word for word: SQLite uses a partial index only then.
fn stale_pending_sql() -> String {
    format!(
        "SELECT {} FROM orders WHERE status IN ('CREATED', 'AWAITING_CODE', 'UNKNOWN') \
         AND updated_at_ms < $1 AND order_no > $2 ORDER BY order_no LIMIT $3",
        super::orders::ORDER_COLUMNS
    )
}

/// A page of a date's paid orders, the facts the order file is merged with; `upto` bounds it
/// above by `$3` too.
fn day_facts_sql(upto: bool) -> String {
    let (bound, limit) = if upto {
        ("AND order_no <= $3 ", "$4")
    } else {
        ("", "$3")
    };
    format!(
        "SELECT order_no, email, amount_fen, bank_serial_no FROM orders \
         WHERE business_date = $1 AND status = 'SUCCESS' AND order_no > $2 \
         {bound}ORDER BY order_no LIMIT {limit}"
    )
}

impl Store {
    /// A named cursor's value (0 when never set).
    pub async fn cursor(&self, name: &str) -> Result<u64> {
        let row = sqlx::query("SELECT value FROM recon_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pools.read)
            .await?;
        row.map(|r| unsigned(int(&r, "value")?))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Moves a named cursor forward to `value` (never back).
    pub async fn advance_cursor(&self, name: &str, value: u64, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO recon_cursors (name, value, updated_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms \
             WHERE recon_cursors.value < excluded.value",
        )
        .bind(name)
        .bind(bigint(value)?)
        .bind(now_ms)
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// The orders among `numbers` the platform has, by number.
    pub async fn orders_by_number(&self, numbers: &[&str]) -> Result<HashMap<String, Order>> {
        let mut out = HashMap::new();
        for chunk in numbers.chunks(KEYS_PER_STATEMENT_MAX) {
            let sql = format!(
                "SELECT {} FROM orders WHERE order_no IN ({})",
                super::orders::ORDER_COLUMNS,
                self.params().list(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(*n);
            }
            for r in q.fetch_all(&self.pools.read).await? {
                let o = super::orders::order_from_row(&r)?;
                out.insert(o.order_no.as_str().to_owned(), o);
            }
        }
        Ok(out)
    }

    /// The card-links among `ids` the platform has, by sign-up id.
    pub async fn links_by_id(&self, ids: &[&SignUpId]) -> Result<HashMap<SignUpId, CardLink>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(KEYS_PER_STATEMENT_MAX) {
            let sql = format!(
                "SELECT {} FROM card_links WHERE signup_id IN ({})",
                super::LINK_COLUMNS,
                self.params().list(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(n.as_str());
            }
            for r in q.fetch_all(&self.pools.read).await? {
                let l = super::link_from_row(&r)?;
                out.insert(l.signup_id.clone(), l);
            }
        }
        Ok(out)
    }

    /// Applies `fix` to an order that is still as `before` shows it, with its adjustment, in one
    /// transaction; `false` (nothing written) if the order changed meanwhile.
    pub async fn fix_order(
        &self,
        before: &Order,
        fix: &OrderFix,
        adj: &Adjustment,
    ) -> Result<bool> {
        let failure = fix.failure.as_ref();
        let q = sqlx::query(
            "UPDATE orders SET status = $1, amount_fen = $2, bank_serial_no = $3, business_date = $4, \
             failure_class = $5, failure_reason = $6, failure_message = $7, failure_domain = $8, updated_at_ms = $9 \
             WHERE order_no = $10 AND status = $11 AND amount_fen = $12 AND updated_at_ms = $13",
        )
        .bind(fix.status.code())
        .bind(fix.amount.fen())
        .bind(fix.serial.clone())
        .bind(fix.business_date.map(|d| d.to_string()))
        .bind(failure.map(|f| f.class.name()))
        .bind(failure.map(|f| f.reason.clone()))
        .bind(failure.map(|f| f.message.clone()))
        .bind(failure.map(|f| f.domain.clone()))
        .bind(adj.at_ms)
        .bind(before.order_no.as_str().to_owned())
        .bind(before.status.code())
        .bind(before.amount.fen())
        .bind(before.updated_at_ms);
        self.write_with_adjustment(q, adj).await
    }

    /// Runs one write and, if it wrote a row, records `adj`, in one transaction; whether it
    /// wrote (an insert whose key is taken writes nothing).
    async fn write_with_adjustment<'q>(
        &self,
        write: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
        adj: &Adjustment,
    ) -> Result<bool> {
        let mut tx = self.pools.write.begin().await?;
        let wrote = match write.execute(&mut tx).await {
            Ok(r) => r.rows_affected() > 0,
            Err(e) if shared::store::unique_violation(&e).is_some() => false,
            Err(e) => return Err(e.into()),
        };
        if !wrote {
            return Ok(false);
        }
        insert_adjustment(&mut tx, adj).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records an order the bank has and the platform does not, with its adjustment; `false` if
    /// the order number is taken meanwhile.
    pub async fn insert_recon_order(&self, o: &Order, adj: &Adjustment) -> Result<bool> {
        self.write_with_adjustment(super::orders::insert_settled(o, "RECON"), adj)
            .await
    }

    /// An operator's hand-written SUCCESS order (origin MANUAL); `false` if the number is taken.
    pub async fn insert_manual_order(&self, o: &Order) -> Result<bool> {
        let r = super::orders::insert_settled(o, "MANUAL")
            .execute(&self.pools.write)
            .await;
        shared::store::inserted(r)
    }

    /// Orders still CREATED, AWAITING_CODE or UNKNOWN and unchanged since before `before_ms`,
    /// by order number after `after`, at most `limit`.
    pub async fn stale_pending_orders(
        &self,
        before_ms: i64,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let rows = sqlx::query(&stale_pending_sql())
            .bind(before_ms)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pools.read)
            .await?;
        rows.iter().map(super::orders::order_from_row).collect()
    }

    /// Writes a card-link the bank has and the platform does not, with its adjustment; `false`
    /// if its sign-up id is taken meanwhile.
    pub async fn insert_recon_link(&self, l: &CardLink, adj: &Adjustment) -> Result<bool> {
        self.write_with_adjustment(super::insert_link_query(l), adj)
            .await
    }

    /// Sets a card-link's status and dates as the bank has them, if it is still in status
    /// `before`, with its adjustment; `false` if it changed meanwhile.
    pub async fn fix_link(
        &self,
        signup_id: &SignUpId,
        before: LinkStatus,
        status: LinkStatus,
        business_date: Option<NaiveDate>,
        cancelled_date: Option<NaiveDate>,
        adj: &Adjustment,
    ) -> Result<bool> {
        let q = sqlx::query(
            "UPDATE card_links SET status = $1, business_date = $2, cancelled_date = $3, \
             cancelled_at_ms = CASE WHEN $1 = 'CANCELLED' THEN COALESCE(cancelled_at_ms, $4) ELSE NULL END, updated_at_ms = $4 \
             WHERE signup_id = $5 AND status = $6",
        )
        .bind(status.code())
        .bind(business_date.map(|d| d.to_string()))
        .bind(cancelled_date.map(|d| d.to_string()))
        .bind(adj.at_ms)
        .bind(signup_id.as_str())
        .bind(before.code());
        self.write_with_adjustment(q, adj).await
    }

    /// Adjustments, newest first, optionally of one record.
    pub async fn adjustments(&self, key: Option<&str>, limit: u32) -> Result<Vec<Adjustment>> {
        let rows = sqlx::query(
            "SELECT adjustment_id, record_kind, record_key, before_state, after_state, source, reason, case_id, at_ms \
             FROM adjustments WHERE ($1 = '' OR record_key = $1) ORDER BY at_ms DESC, adjustment_id DESC LIMIT $2",
        )
        .bind(key.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Adjustment {
                    id: text(r, "adjustment_id")?,
                    record_kind: text(r, "record_kind")?,
                    record_key: text(r, "record_key")?,
                    before: text(r, "before_state")?,
                    after: text(r, "after_state")?,
                    source: text(r, "source")?,
                    reason: text(r, "reason")?,
                    case_id: opt_text(r, "case_id")?,
                    at_ms: int(r, "at_ms")?,
                })
            })
            .collect()
    }

    /// Records the start of a T+1 run.
    pub async fn insert_run(
        &self,
        run_id: &str,
        kind: DayFileKind,
        date: NaiveDate,
        sha256: &str,
        records: u64,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO recon_runs (run_id, kind, business_date, sha256, record_count, matched, cases, started_at_ms) \
             VALUES ($1, $2, $3, $4, $5, 0, 0, $6)",
        )
        .bind(run_id)
        .bind(kind.code())
        .bind(date.to_string())
        .bind(sha256)
        .bind(bigint(records)?)
        .bind(now_ms)
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// The T+1 runs of `date` by start time, at most `limit`.
    pub async fn day_runs(&self, date: NaiveDate, limit: u32) -> Result<Vec<DayRun>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT run_id, kind, business_date, sha256, record_count, matched, cases, started_at_ms, done_at_ms \
             FROM recon_runs WHERE business_date = $1 ORDER BY started_at_ms, run_id LIMIT $2",
        )
        .bind(date.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DayRun {
                    run_id: text(r, "run_id")?,
                    kind: DayFileKind::from_code(&text(r, "kind")?).ok_or_else(|| bad("kind"))?,
                    date: text(r, "business_date")?
                        .parse()
                        .map_err(|_| bad("business_date"))?,
                    sha256: text(r, "sha256")?,
                    records: unsigned(int(r, "record_count")?)?,
                    matched: unsigned(int(r, "matched")?)?,
                    cases: unsigned(int(r, "cases")?)?,
                    started_at_ms: int(r, "started_at_ms")?,
                    done_at_ms: r.try_get("done_at_ms")?,
                })
            })
            .collect()
    }

    /// Records the end of a T+1 run and drops its staged keys.
    pub async fn finish_run(
        &self,
        run_id: &str,
        matched: u64,
        cases: u64,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE recon_runs SET matched = $1, cases = $2, done_at_ms = $3 WHERE run_id = $4",
        )
        .bind(bigint(matched)?)
        .bind(bigint(cases)?)
        .bind(now_ms)
        .bind(run_id)
        .execute(&self.pools.write)
        .await?;
        self.drop_staging(run_id).await
    }

    /// Drops a run's staged keys.
    pub async fn drop_staging(&self, run_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM recon_staging WHERE run_id = $1")
            .bind(run_id)
            .execute(&self.pools.write)
            .await?;
        Ok(())
    }

    /// Stages a chunk of a bank file's keys for a run.
    pub async fn stage_keys(&self, run_id: &str, keys: &[String]) -> Result<()> {
        for chunk in keys.chunks(KEYS_PER_STATEMENT_MAX / 2) {
            let values = self.params().rows(chunk.len(), 2);
            let sql = format!(
                "INSERT INTO recon_staging (run_id, record_key) VALUES {values} ON CONFLICT DO NOTHING"
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(run_id).bind(k.as_str());
            }
            q.execute(&self.pools.write).await?;
        }
        Ok(())
    }

    /// SUCCESS orders of `date` whose key (`prefix` + order number) the run did not stage, by
    /// order number after `after`, at most `limit`.
    pub async fn unstaged_orders(
        &self,
        run_id: &str,
        prefix: &str,
        date: NaiveDate,
        after: &str,
        limit: u32,
    ) -> Result<Vec<Order>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM orders o WHERE business_date = $1 AND status = 'SUCCESS' AND order_no > $2 \
             AND NOT EXISTS (SELECT 1 FROM recon_staging s WHERE s.run_id = $3 AND s.record_key = $4 || o.order_no) \
             ORDER BY order_no LIMIT $5",
            super::orders::ORDER_COLUMNS
        ))
        .bind(date.to_string())
        .bind(after)
        .bind(run_id)
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter().map(super::orders::order_from_row).collect()
    }

    /// The facts of the SUCCESS orders of `date` numbered after `after` and up to `upto`
    /// (`None`: no bound), by order number, at most `limit`.
    pub async fn day_order_facts_between(
        &self,
        date: NaiveDate,
        after: &str,
        upto: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DayOrderFacts>> {
        let sql = day_facts_sql(upto.is_some());
        let date = date.to_string();
        let mut args = vec![Arg::Text(&date), Arg::Text(after)];
        if let Some(upto) = upto {
            args.push(Arg::Text(upto));
        }
        args.push(Arg::Int(i64::from(limit)));
        let rows = self.pools.read.rows(&sql, &args).await?;
        rows.map(|r| {
            Ok(DayOrderFacts {
                order_no: r.text(0)?.to_owned(),
                email: r.text(1)?.to_owned(),
                amount_fen: r.int(2)?,
                serial: r.opt_text(3)?.map(str::to_owned),
            })
        })
    }

    /// Card-links signed (`cancelled` false) or cancelled on `date` whose key the run did not
    /// stage, by sign-up id after `after`, at most `limit`.
    pub async fn unstaged_links(
        &self,
        run_id: &str,
        cancelled: bool,
        date: NaiveDate,
        after: &str,
        limit: u32,
    ) -> Result<Vec<CardLink>> {
        let (column, prefix) = if cancelled {
            ("cancelled_date = $1 AND status = 'CANCELLED'", "CANCELLED:")
        } else {
            ("business_date = $1", "SIGNED:")
        };
        let rows = sqlx::query(&format!(
            "SELECT {} FROM card_links l WHERE {column} AND signup_id > $2 \
             AND NOT EXISTS (SELECT 1 FROM recon_staging s WHERE s.run_id = $3 AND s.record_key = $4 || l.signup_id) \
             ORDER BY signup_id LIMIT $5",
            super::LINK_COLUMNS
        ))
        .bind(date.to_string())
        .bind(after)
        .bind(run_id)
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter().map(super::link_from_row).collect()
    }

    /// Successful refunds of batches the bank processed on `date` whose key (`R:` + refund id)
    /// the run did not stage: (refund id, order number, amount, batch), after `after`, at most
    /// `limit`.
    pub async fn unstaged_refunds(
        &self,
        run_id: &str,
        date: NaiveDate,
        after: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, Money, String)>> {
        let rows = sqlx::query(
            "SELECT r.refund_id, r.order_no, r.amount_fen, r.batch_no FROM refunds r \
             JOIN refund_batches b ON b.batch_no = r.batch_no \
             WHERE b.result_business_date = $1 AND r.status = 'SUCCESS' AND r.refund_id > $2 \
             AND NOT EXISTS (SELECT 1 FROM recon_staging s WHERE s.run_id = $3 AND s.record_key = 'R:' || r.refund_id) \
             ORDER BY r.refund_id LIMIT $4",
        )
        .bind(date.to_string())
        .bind(after)
        .bind(run_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    text(r, "refund_id")?,
                    text(r, "order_no")?,
                    Money::from_fen(int(r, "amount_fen")?.max(0))
                        .ok_or_else(|| bad("amount_fen"))?,
                    text(r, "batch_no")?,
                ))
            })
            .collect()
    }

    /// The platform's refund lines among `refund_ids`: refund id → (status, amount, batch).
    pub async fn refunds_by_id(
        &self,
        refund_ids: &[&str],
    ) -> Result<HashMap<String, PlatformRefund>> {
        let mut out = HashMap::new();
        for chunk in refund_ids.chunks(KEYS_PER_STATEMENT_MAX) {
            let sql = format!(
                "SELECT refund_id, status, amount_fen, batch_no FROM refunds WHERE refund_id IN ({}) \
                 ORDER BY CASE WHEN status = 'SUCCESS' THEN 1 ELSE 0 END",
                self.params().list(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(*n);
            }
            for r in q.fetch_all(&self.pools.read).await? {
                use sqlx::Row;
                let fen: Option<i64> = r.try_get("amount_fen")?;
                out.insert(
                    text(&r, "refund_id")?,
                    (
                        RefundLineStatus::from_code(&text(&r, "status")?)
                            .ok_or_else(|| bad("status"))?,
                        fen.and_then(Money::from_fen),
                        text(&r, "batch_no")?,
                    ),
                );
            }
        }
        Ok(out)
    }

    /// Whether the platform knows a refund batch.
    pub async fn has_refund_batch(&self, batch_no: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM refund_batches WHERE batch_no = $1")
            .bind(batch_no)
            .fetch_one(&self.pools.read)
            .await?;
        Ok(int(&row, "n")? > 0)
    }

    /// The platform's clearing figures of `date`: successful payments (count, amount) and
    /// successful refunds of batches the bank processed on the date (count, amount).
    pub async fn clearing_figures(&self, date: NaiveDate) -> Result<(u64, Money, u64, Money)> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM orders WHERE business_date = $1 AND status = 'SUCCESS') AS pn, \
               (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM orders WHERE business_date = $1 AND status = 'SUCCESS') AS pf, \
               (SELECT COUNT(*) FROM refunds r JOIN refund_batches b ON b.batch_no = r.batch_no \
                 WHERE b.result_business_date = $1 AND r.status = 'SUCCESS') AS rn, \
               (SELECT CAST(COALESCE(SUM(r.amount_fen), 0) AS BIGINT) FROM refunds r JOIN refund_batches b ON b.batch_no = r.batch_no \
                 WHERE b.result_business_date = $1 AND r.status = 'SUCCESS') AS rf",
        )
        .bind(date.to_string())
        .fetch_one(&self.pools.read)
        .await?;
        let money = |c| Money::from_fen(int(&row, c)?).ok_or_else(|| bad(c));
        Ok((
            unsigned(int(&row, "pn")?)?,
            money("pf")?,
            unsigned(int(&row, "rn")?)?,
            money("rf")?,
        ))
    }

    /// The id of the case kept for (date, kind, key), if any.
    pub async fn case_id(
        &self,
        date: NaiveDate,
        kind: DayFileKind,
        key: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT case_id FROM recon_cases WHERE business_date = $1 AND kind = $2 AND record_key = $3",
        )
        .bind(date.to_string())
        .bind(kind.code())
        .bind(key)
        .fetch_optional(&self.pools.read)
        .await?;
        row.map(|r| text(&r, "case_id")).transpose()
    }

    /// Records a case found by a run: a new one, or the one kept for its (date, kind, key)
    /// brought up to date (a case staff closed stays closed).
    pub async fn upsert_case(&self, c: &ReconCase) -> Result<()> {
        sqlx::query(
            "INSERT INTO recon_cases (case_id, run_id, kind, business_date, record_key, category, bank_record, platform_record, amount_fen, action, status, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (business_date, kind, record_key) DO UPDATE SET run_id = excluded.run_id, category = excluded.category, \
               bank_record = excluded.bank_record, platform_record = excluded.platform_record, amount_fen = excluded.amount_fen, \
               action = excluded.action, \
               status = CASE WHEN recon_cases.status = 'CLOSED' THEN recon_cases.status ELSE excluded.status END",
        )
        .bind(&c.case_id)
        .bind(&c.run_id)
        .bind(c.kind.code())
        .bind(c.business_date.to_string())
        .bind(&c.record_key)
        .bind(c.category.code())
        .bind(&c.bank_record)
        .bind(&c.platform_record)
        .bind(c.amount.fen())
        .bind(&c.action)
        .bind(c.status.code())
        .bind(c.created_at_ms)
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// Cases as filtered, oldest first.
    pub async fn cases(&self, f: &CaseFilter) -> Result<Vec<ReconCase>> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM recon_cases WHERE ($1 = '' OR status = $1) AND ($2 = '' OR business_date = $2) \
             AND ($3 = '' OR run_id = $3) AND case_id > $4 ORDER BY case_id LIMIT $5"
        ))
        .bind(f.status.map(CaseStatus::code).unwrap_or(""))
        .bind(f.business_date.map(|d| d.to_string()).unwrap_or_default())
        .bind(f.run_id.as_deref().unwrap_or(""))
        .bind(f.after_case_id.as_deref().unwrap_or(""))
        .bind(i64::from(f.limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter().map(case_from_row).collect()
    }

    /// A case by id.
    pub async fn case(&self, case_id: &str) -> Result<Option<ReconCase>> {
        let row = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM recon_cases WHERE case_id = $1"
        ))
        .bind(case_id)
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Closes a case that is not closed; `false` if it was.
    pub async fn close_case(&self, case_id: &str, note: &str, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE recon_cases SET status = 'CLOSED', note = $1, closed_at_ms = $2 WHERE case_id = $3 AND status <> 'CLOSED'",
        )
        .bind(note)
        .bind(now_ms)
        .bind(case_id)
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Whether an account exists.
    pub async fn account_exists(&self, email: &Email) -> Result<bool> {
        Ok(self.account(email).await?.is_some())
    }

    /// The order numbers among `numbers` that have a case in the ORDER file of `date`.
    pub async fn order_case_keys(
        &self,
        date: NaiveDate,
        numbers: &[&OrderNo],
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for chunk in numbers.chunks(KEYS_PER_STATEMENT_MAX) {
            let mut params = self.params();
            let sql = format!(
                "SELECT record_key FROM recon_cases WHERE business_date = {} AND kind = 'ORDER' AND record_key IN ({})",
                params.one(),
                params.list(chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(date.to_string());
            for n in chunk {
                q = q.bind(n.as_str());
            }
            for r in q.fetch_all(&self.pools.read).await? {
                out.push(text(&r, "record_key")?);
            }
        }
        Ok(out)
    }
}

async fn insert_adjustment(tx: &mut Tx, a: &Adjustment) -> Result<()> {
    sqlx::query(
        "INSERT INTO adjustments (adjustment_id, record_kind, record_key, before_state, after_state, source, reason, case_id, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.id)
    .bind(&a.record_kind)
    .bind(&a.record_key)
    .bind(&a.before)
    .bind(&a.after)
    .bind(&a.source)
    .bind(&a.reason)
    .bind(a.case_id.as_deref())
    .bind(a.at_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn case_from_row(r: &AnyRow) -> Result<ReconCase> {
    use sqlx::Row;
    Ok(ReconCase {
        case_id: text(r, "case_id")?,
        run_id: text(r, "run_id")?,
        kind: DayFileKind::from_code(&text(r, "kind")?).ok_or_else(|| bad("kind"))?,
        business_date: text(r, "business_date")?
            .parse()
            .map_err(|_| bad("business_date"))?,
        record_key: text(r, "record_key")?,
        category: CaseCategory::from_code(&text(r, "category")?).ok_or_else(|| bad("category"))?,
        bank_record: text(r, "bank_record")?,
        platform_record: text(r, "platform_record")?,
        amount: Money::from_fen(int(r, "amount_fen")?).ok_or_else(|| bad("amount_fen"))?,
        action: text(r, "action")?,
        status: CaseStatus::from_code(&text(r, "status")?).ok_or_else(|| bad("status"))?,
        note: opt_text(r, "note")?,
        created_at_ms: int(r, "created_at_ms")?,
        closed_at_ms: r.try_get("closed_at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(sql: &str, args: &[Arg<'_>]) -> String {
        let plan = shared::store::sqlite_plan(&super::super::MIGRATOR, sql, args)
            .await
            .unwrap();
        assert!(!plan.contains("SCAN orders"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        plan
    }

    #[tokio::test]
    async fn the_sweep_and_the_merge_read_the_indexes_of_the_orders_they_ask_for() {
        // `orders_open` holds the open orders only, `orders_by_business_date` the paid ones
        // (migration 0010): a query SQLite cannot tell asks for those would scan every order.
        let (date, after) = (Arg::Text("2026-12-01"), Arg::Text(""));
        let sweep = plan(&stale_pending_sql(), &[Arg::Int(0), after, Arg::Int(10)]).await;
        assert!(sweep.contains("USING INDEX orders_open"), "{sweep}");
        for (upto, args) in [
            (false, vec![date, after, Arg::Int(10)]),
            (true, vec![date, after, Arg::Text("Z"), Arg::Int(10)]),
        ] {
            let merge = plan(&day_facts_sql(upto), &args).await;
            assert!(
                merge.contains("USING INDEX orders_by_business_date"),
                "{merge}"
            );
        }
    }
}
