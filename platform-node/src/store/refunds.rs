//! Refund batches and refund records at rest. Status changes are conditional updates: a batch
//! only moves forward, and a result line is applied once (its (batch, seq) key).

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use shared::domain::BatchNo;
use shared::files::refund::{Outcome, ResultRecord};
use shared::store::{
    AMOUNTS_PER_STATEMENT, AddAmounts, Backend, Params, Tx, bad, bigint, int, opt_text, text,
    unsigned,
};
use shared::{ErrorClass, Money, PeerRefusal};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::domain::{
    BankBatch, BankBatchStatus, FileRefusal, RefundBatch, RefundBatchStatus, RefundFilter,
    RefundLineStatus, RefundRecord, ResultFigures,
};

const BATCH_COLUMNS: &str = "batch_no, status, sha256, size_bytes, file_name, business_date, record_count, total_fen, receipt_no, accepted_at_ms, processed_count, failure_class, failure_reason, failure_message, failure_domain, failure_line, failure_field, result_sha256, result_size_bytes, result_business_date, success_count, success_fen, failed_count, failed_fen, result_file_name, created_at_ms";

/// Rows per INSERT of result lines.
const LINES_PER_INSERT: usize = 100;
/// Columns per refunds row.
const REFUND_COLUMNS: usize = 10;
/// Tries at a chunk of result lines another process records at the same time.
const APPLY_TRIES_MAX: usize = 3;

impl Store {
    /// A batch by number.
    pub async fn refund_batch(&self, no: &BatchNo) -> Result<Option<RefundBatch>> {
        let row = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM refund_batches WHERE batch_no = $1"
        ))
        .bind(no.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    /// Records a SUBMITTED batch, replacing a REFUSED one of the same number; `false` if the
    /// number is held by a batch that was not refused.
    pub async fn save_submitted_batch(&self, b: &RefundBatch) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO refund_batches (batch_no, status, sha256, size_bytes, file_name, business_date, record_count, total_fen, processed_count, created_at_ms, updated_at_ms) \
             VALUES ($1, 'SUBMITTED', $2, $3, $4, $5, $6, $7, 0, $8, $8) \
             ON CONFLICT (batch_no) DO UPDATE SET status = 'SUBMITTED', sha256 = $2, size_bytes = $3, file_name = $4, \
             business_date = $5, record_count = $6, total_fen = $7, receipt_no = NULL, accepted_at_ms = NULL, processed_count = 0, \
             failure_class = NULL, failure_reason = NULL, failure_message = NULL, failure_domain = NULL, failure_line = NULL, \
             failure_field = NULL, created_at_ms = $8, updated_at_ms = $8 \
             WHERE refund_batches.status = 'REFUSED'",
        )
        .bind(b.batch_no.as_str())
        .bind(&b.sha256)
        .bind(bigint(b.size)?)
        .bind(&b.file_name)
        .bind(b.business_date.to_string())
        .bind(bigint(b.record_count)?)
        .bind(b.total.fen())
        .bind(b.created_at_ms)
        .execute(&self.pools.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// SUBMITTED → REFUSED with the bank's refusal.
    pub async fn mark_batch_refused(
        &self,
        no: &BatchNo,
        r: &FileRefusal,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE refund_batches SET status = 'REFUSED', failure_class = $1, failure_reason = $2, failure_message = $3, \
             failure_domain = $4, failure_line = $5, failure_field = $6, updated_at_ms = $7 \
             WHERE batch_no = $8 AND status = 'SUBMITTED'",
        )
        .bind(r.refusal.class.name())
        .bind(&r.refusal.reason)
        .bind(&r.refusal.message)
        .bind(&r.refusal.domain)
        .bind(r.line.map(bigint).transpose()?)
        .bind(r.field.clone())
        .bind(now_ms)
        .bind(no.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// Brings a batch the bank holds up to the bank's word: accepted, processing, or finished
    /// (RESULT_READY with the result's figures). Never moves a batch back.
    pub async fn update_batch_from_bank(
        &self,
        no: &BatchNo,
        bank: &BankBatch,
        now_ms: i64,
    ) -> Result<()> {
        let status = match bank.status {
            BankBatchStatus::Accepted => RefundBatchStatus::Accepted,
            BankBatchStatus::Processing => RefundBatchStatus::Processing,
            BankBatchStatus::Done => RefundBatchStatus::ResultReady,
        };
        let r = bank.result.as_ref();
        sqlx::query(
            "UPDATE refund_batches SET status = $1, receipt_no = $2, accepted_at_ms = $3, processed_count = $4, \
             result_sha256 = $5, result_size_bytes = $6, result_business_date = $7, success_count = $8, success_fen = $9, \
             failed_count = $10, failed_fen = $11, updated_at_ms = $12 \
             WHERE batch_no = $13 AND status IN ('SUBMITTED', 'ACCEPTED', 'PROCESSING')",
        )
        .bind(status.code())
        .bind(&bank.receipt_no)
        .bind(bank.accepted_at_ms)
        .bind(bigint(bank.processed)?)
        .bind(r.map(|r| r.sha256.clone()))
        .bind(r.map(|r| bigint(r.size)).transpose()?)
        .bind(r.map(|r| r.business_date.to_string()))
        .bind(r.map(|r| bigint(r.success_count)).transpose()?)
        .bind(r.map(|r| r.success_total.fen()))
        .bind(r.map(|r| bigint(r.failed_count)).transpose()?)
        .bind(r.map(|r| r.failed_total.fen()))
        .bind(now_ms)
        .bind(no.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// Records result lines not recorded yet and adds each new success to its order's refunded
    /// amount, in one transaction. `lines` are consecutive, in order.
    pub async fn apply_refund_results(
        &self,
        no: &BatchNo,
        lines: &[ResultRecord],
        now_ms: i64,
    ) -> Result<()> {
        for _ in 0..APPLY_TRIES_MAX {
            if self.try_apply_refund_results(no, lines, now_ms).await? {
                return Ok(());
            }
        }
        Err(anyhow::anyhow!(
            "batch {no}: another process kept recording the same result lines"
        ))
    }

    /// One try of [`Store::apply_refund_results`]: the lines already recorded are read first
    /// (none, unless this chunk was applied before), and the rest inserted. `false`, with
    /// nothing changed, when another process recorded some of them in between (PostgreSQL).
    async fn try_apply_refund_results(
        &self,
        no: &BatchNo,
        lines: &[ResultRecord],
        now_ms: i64,
    ) -> Result<bool> {
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return Ok(true);
        };
        let mut tx = self.pools.write.begin().await?;
        let recorded = recorded_seqs(&mut tx, no, first.seq, last.seq).await?;
        let new: Vec<&ResultRecord> = lines
            .iter()
            .filter(|l| !recorded.contains(&l.seq))
            .collect();
        let mut by_order: BTreeMap<&str, i64> = BTreeMap::new();
        for part in new.chunks(LINES_PER_INSERT) {
            let sql = format!(
                "INSERT INTO refunds (batch_no, seq, refund_id, order_no, amount_text, amount_fen, status, reason_code, reason_text, applied_at_ms) \
                 VALUES {} ON CONFLICT (batch_no, seq) DO NOTHING",
                self.params().rows(part.len(), REFUND_COLUMNS)
            );
            let mut q = sqlx::query(&sql);
            for l in part {
                let fen = shared::domain::RefundAmount::parse(&l.amount)
                    .ok()
                    .map(|a| a.fen());
                let (status, code, text) = match &l.outcome {
                    Outcome::Success => {
                        let fen = fen.ok_or_else(|| bad("amount_text"))?;
                        *by_order.entry(l.order_no.as_str()).or_default() += fen;
                        ("SUCCESS", None, None)
                    }
                    Outcome::Failed { code, text } => {
                        ("FAILED", Some(code.clone()), Some(text.clone()))
                    }
                };
                q = q
                    .bind(no.as_str())
                    .bind(bigint(l.seq)?)
                    .bind(l.refund_id.as_str())
                    .bind(l.order_no.as_str())
                    .bind(l.amount.clone())
                    .bind(fen)
                    .bind(status)
                    .bind(code)
                    .bind(text)
                    .bind(now_ms);
            }
            if q.execute(&mut tx).await?.rows_affected() != part.len() as u64 {
                // Recorded by another process since the read: read again.
                tx.rollback().await?;
                return Ok(false);
            }
        }
        add_refunded(&mut tx, self.backend, by_order, now_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// RESULT_READY → DONE with the kept result file.
    pub async fn mark_batch_done(&self, no: &BatchNo, file_name: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE refund_batches SET status = 'DONE', result_file_name = $1, updated_at_ms = $2 \
             WHERE batch_no = $3 AND status = 'RESULT_READY'",
        )
        .bind(file_name)
        .bind(now_ms)
        .bind(no.as_str())
        .execute(&self.pools.write)
        .await?;
        Ok(())
    }

    /// Refund records by batch and/or order, by batch and sequence number.
    pub async fn refunds(&self, f: &RefundFilter) -> Result<Vec<RefundRecord>> {
        let rows = sqlx::query(
            "SELECT batch_no, seq, refund_id, order_no, amount_text, status, reason_code, reason_text FROM refunds \
             WHERE ($1 = '' OR batch_no = $1) AND ($2 = '' OR order_no = $2) AND ($3 = 0 OR status = 'FAILED') AND seq > $4 \
             ORDER BY batch_no, seq LIMIT $5",
        )
        .bind(f.batch_no.as_ref().map(|b| b.as_str()).unwrap_or(""))
        .bind(f.order_no.as_ref().map(|o| o.as_str()).unwrap_or(""))
        .bind(i64::from(f.failed_only))
        .bind(bigint(f.after_seq)?)
        .bind(i64::from(f.limit))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RefundRecord {
                    batch_no: BatchNo::parse(&text(r, "batch_no")?).map_err(|_| bad("batch_no"))?,
                    seq: u64::try_from(int(r, "seq")?).map_err(|_| bad("seq"))?,
                    refund_id: text(r, "refund_id")?,
                    order_no: text(r, "order_no")?,
                    amount_text: text(r, "amount_text")?,
                    success: RefundLineStatus::from_code(&text(r, "status")?)
                        .ok_or_else(|| bad("status"))?
                        == RefundLineStatus::Success,
                    reason_code: opt_text(r, "reason_code")?,
                    reason_text: opt_text(r, "reason_text")?,
                })
            })
            .collect()
    }
}

fn batch_from_row(r: &AnyRow) -> Result<RefundBatch> {
    let opt_int = |col: &str| -> Result<Option<i64>> { Ok(r.try_get::<Option<i64>, _>(col)?) };
    let u = |v: i64, col: &str| u64::try_from(v).map_err(|_| bad(col));
    let money = |fen: i64, col: &str| Money::from_fen(fen).ok_or_else(|| bad(col));
    let date = |s: &str, col: &str| s.parse::<NaiveDate>().map_err(|_| bad(col));
    let refusal = match opt_text(r, "failure_reason")? {
        Some(reason) => Some(FileRefusal {
            refusal: PeerRefusal {
                class: ErrorClass::from_name(&opt_text(r, "failure_class")?.unwrap_or_default())
                    .ok_or_else(|| bad("failure_class"))?,
                reason,
                message: opt_text(r, "failure_message")?.unwrap_or_default(),
                domain: opt_text(r, "failure_domain")?.unwrap_or_default(),
            },
            line: opt_int("failure_line")?
                .map(|l| u(l, "failure_line"))
                .transpose()?,
            field: opt_text(r, "failure_field")?,
        }),
        None => None,
    };
    let result = match opt_text(r, "result_sha256")? {
        Some(sha256) => Some(ResultFigures {
            sha256,
            size: u(
                opt_int("result_size_bytes")?.unwrap_or_default(),
                "result_size_bytes",
            )?,
            business_date: date(
                &opt_text(r, "result_business_date")?.unwrap_or_default(),
                "result_business_date",
            )?,
            success_count: u(
                opt_int("success_count")?.unwrap_or_default(),
                "success_count",
            )?,
            success_total: money(opt_int("success_fen")?.unwrap_or_default(), "success_fen")?,
            failed_count: u(opt_int("failed_count")?.unwrap_or_default(), "failed_count")?,
            failed_total: money(opt_int("failed_fen")?.unwrap_or_default(), "failed_fen")?,
        }),
        None => None,
    };
    Ok(RefundBatch {
        batch_no: BatchNo::parse(&text(r, "batch_no")?).map_err(|_| bad("batch_no"))?,
        status: RefundBatchStatus::from_code(&text(r, "status")?).ok_or_else(|| bad("status"))?,
        sha256: text(r, "sha256")?,
        size: u(int(r, "size_bytes")?, "size_bytes")?,
        file_name: text(r, "file_name")?,
        business_date: date(&text(r, "business_date")?, "business_date")?,
        record_count: u(int(r, "record_count")?, "record_count")?,
        total: money(int(r, "total_fen")?, "total_fen")?,
        receipt_no: opt_text(r, "receipt_no")?,
        accepted_at_ms: opt_int("accepted_at_ms")?,
        processed: u(int(r, "processed_count")?, "processed_count")?,
        refusal,
        result,
        result_file_name: opt_text(r, "result_file_name")?,
        created_at_ms: int(r, "created_at_ms")?,
    })
}

/// The sequence numbers of a batch's recorded result lines from `first` to `last`.
async fn recorded_seqs(tx: &mut Tx, no: &BatchNo, first: u64, last: u64) -> Result<HashSet<u64>> {
    sqlx::query("SELECT seq FROM refunds WHERE batch_no = $1 AND seq >= $2 AND seq <= $3")
        .bind(no.as_str())
        .bind(bigint(first)?)
        .bind(bigint(last)?)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| unsigned(int(r, "seq")?))
        .collect()
}

/// Each order's refunded amount raised.
const REFUNDED: AddAmounts = AddAmounts {
    update: "UPDATE orders SET refunded_fen = orders.refunded_fen + amounts.fen, updated_at_ms = {now} \
             FROM amounts WHERE orders.order_no = amounts.id",
    lock: Some(
        "SELECT 1 FROM orders WHERE order_no IN (SELECT id FROM amounts) ORDER BY order_no FOR NO KEY UPDATE",
    ),
};

/// Adds new successes to their orders' refunded amounts, a statement for many orders; an order
/// the platform does not have is logged.
async fn add_refunded(
    tx: &mut Tx,
    backend: Backend,
    by_order: BTreeMap<&str, i64>,
    now_ms: i64,
) -> Result<()> {
    let amounts: Vec<(&str, i64)> = by_order.into_iter().collect();
    if REFUNDED.run(tx, backend, &amounts, now_ms).await? == amounts.len() as u64 {
        return Ok(());
    }
    for part in amounts.chunks(AMOUNTS_PER_STATEMENT) {
        let sql = format!(
            "SELECT order_no FROM orders WHERE order_no IN ({})",
            Params::new(backend).list(part.len())
        );
        let q = part.iter().fold(sqlx::query(&sql), |q, (o, _)| q.bind(*o));
        let known: HashSet<String> = q
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| text(r, "order_no"))
            .collect::<Result<_>>()?;
        for (order, _) in part.iter().filter(|(o, _)| !known.contains(*o)) {
            tracing::warn!(
                order_no = order,
                "the bank refunded an order the platform does not have; reconciliation will list it"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{OrderNo, RefundId};

    fn line(seq: u64, outcome: Outcome) -> ResultRecord {
        line_of("O-1", seq, outcome)
    }

    fn line_of(order: &str, seq: u64, outcome: Outcome) -> ResultRecord {
        ResultRecord {
            seq,
            refund_id: RefundId::parse(&format!("R{seq}")).unwrap(),
            order_no: OrderNo::parse(order).unwrap(),
            amount: "1.00".to_owned(),
            outcome,
        }
    }

    /// A store with an account and its paid orders of 100.00 each.
    async fn with_orders(orders: &[&str]) -> Store {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        sqlx::query(
            "INSERT INTO accounts (email, real_name, login_password_hash, pay_password_hash, status, created_at_ms, updated_at_ms) \
             VALUES ('a@b.cn', 'n', 'h', 'h', 'NORMAL', 0, 0)",
        )
        .execute(&store.pools.write)
        .await
        .unwrap();
        for order in orders {
            sqlx::query(
                "INSERT INTO orders (order_no, email, signup_id, card_number_masked, amount_fen, description, status, created_at_ms, updated_at_ms) \
                 VALUES ($1, 'a@b.cn', 'S', '622188******1234', 10000, 'd', 'SUCCESS', 0, 0)",
            )
            .bind(*order)
            .execute(&store.pools.write)
            .await
            .unwrap();
        }
        store
    }

    /// Each order's refunded amount, by order number.
    async fn refunded(store: &Store) -> Vec<(String, i64)> {
        sqlx::query("SELECT order_no, refunded_fen FROM orders ORDER BY order_no")
            .fetch_all(&store.pools.read)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    text(r, "order_no").unwrap(),
                    int(r, "refunded_fen").unwrap(),
                )
            })
            .collect()
    }

    /// The bank refunded an order the platform lacks (its order was lost): the line is
    /// recorded, the orders it has are refunded, and the result is applied, not refused.
    #[tokio::test]
    async fn a_result_line_for_an_order_the_platform_lacks_is_recorded_the_rest_refunded() {
        let store = with_orders(&["O-1", "O-2"]).await;
        let lines = [
            line_of("O-1", 1, Outcome::Success),
            line_of("O-9", 2, Outcome::Success),
            line_of("O-2", 3, Outcome::Success),
            line_of("O-2", 4, Outcome::Success),
        ];
        let no = BatchNo::parse("B-1").unwrap();
        store.apply_refund_results(&no, &lines, 1).await.unwrap();
        let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refunds")
            .fetch_one(&store.pools.read)
            .await
            .unwrap();
        assert_eq!(recorded, 4);
        assert_eq!(
            refunded(&store).await,
            [("O-1".to_owned(), 100), ("O-2".to_owned(), 200)]
        );
    }

    #[tokio::test]
    async fn result_lines_are_recorded_and_refunded_once_however_the_chunks_overlap() {
        let store = with_orders(&["O-1"]).await;
        let no = BatchNo::parse("B-1").unwrap();
        let failed = || Outcome::Failed {
            code: "ORDER_NOT_PAID".to_owned(),
            text: "no".to_owned(),
        };
        let lines = [
            line(1, Outcome::Success),
            line(2, failed()),
            line(3, Outcome::Success),
            line(4, Outcome::Success),
            line(5, failed()),
        ];
        store
            .apply_refund_results(&no, &lines[..3], 1)
            .await
            .unwrap();
        // The same chunk again, then one that overlaps it.
        store
            .apply_refund_results(&no, &lines[..3], 2)
            .await
            .unwrap();
        store
            .apply_refund_results(&no, &lines[1..], 3)
            .await
            .unwrap();

        let recorded: Vec<(i64, i64)> =
            sqlx::query("SELECT seq, applied_at_ms FROM refunds ORDER BY seq")
                .fetch_all(&store.pools.read)
                .await
                .unwrap()
                .iter()
                .map(|r| (int(r, "seq").unwrap(), int(r, "applied_at_ms").unwrap()))
                .collect();
        assert_eq!(recorded, [(1, 1), (2, 1), (3, 1), (4, 3), (5, 3)]);
        assert_eq!(
            refunded(&store).await,
            [("O-1".to_owned(), 300)],
            "three successes, each once"
        );
    }
}
