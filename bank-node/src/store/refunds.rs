//! Refund batches, the batch job's cursor and the refund ledger at rest.
//!
//! Claiming a batch: on PostgreSQL the job holds the batch's row locked (`FOR NO KEY UPDATE SKIP
//! LOCKED`) in a transaction of its own for as long as it works on the batch, so another bank
//! process sharing the database skips it; a process that dies drops its connection and with it
//! the lock. On SQLite (one process) the job's in-process lock is enough. Either way each chunk
//! moves the cursor only from the value it started at, so no line is processed twice.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{BatchNo, OrderNo, RefundId};
use shared::files::refund::ResultFigures;
use shared::store::{
    AddAmounts, Arg, Backend, Columns, Params, Tx, bad, bigint, int, opt_text, text,
    unique_violation, unsigned,
};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store};
use crate::domain::{
    BatchResult, BatchStatus, CardStatus, LineDecision, LineOutcome, OrderFunds, PaymentStatus,
    RefundBatch, RefundLine, RefundSnapshot,
};

const BATCH_COLUMNS: &str = "b.batch_no, b.receipt_no, b.sha256, b.size_bytes, b.file_name, b.business_date, b.record_count, b.total_fen, b.accepted_at_ms, b.status, b.result_file_name, b.result_sha256, b.result_size_bytes, b.result_business_date, b.success_count, b.success_fen, b.failed_count, b.failed_fen, b.done_at_ms, p.next_seq, p.byte_offset, p.started_at_ms";

/// A batch this process has taken to work on, with where to resume it.
pub struct Claim {
    lock: Option<Tx>,
    /// The batch.
    pub batch: RefundBatch,
    /// The first line not yet processed (1-based record number).
    pub next_seq: u64,
    /// Where that line starts in the file.
    pub offset: u64,
    /// The batch's business date: the date the job first took it on; every line belongs to it.
    pub business_date: NaiveDate,
}

/// What became of a chunk.
pub enum ChunkOutcome {
    /// Recorded, credited, cursor moved: the chunk's lines as decided.
    Applied(Vec<LineDecision>),
    /// Another process moved the cursor first: this chunk was not applied.
    CursorMoved,
    /// The data changed under the decisions (a card closed meanwhile): nothing was applied; decide
    /// again.
    Conflict,
}

impl Store {
    /// Records an accepted batch and its cursor; `false` if the batch number is taken.
    pub async fn insert_refund_batch(&self, b: &RefundBatch) -> Result<bool> {
        let mut tx = self.pools.write.begin().await?;
        let r = sqlx::query(
            "INSERT INTO refund_batches (batch_no, receipt_no, sha256, size_bytes, file_name, business_date, record_count, total_fen, accepted_at_ms, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ACCEPTED')",
        )
        .bind(b.batch_no.as_str())
        .bind(&b.receipt_no)
        .bind(&b.sha256)
        .bind(bigint(b.size)?)
        .bind(&b.file_name)
        .bind(b.business_date.to_string())
        .bind(bigint(b.record_count)?)
        .bind(b.total.fen())
        .bind(b.accepted_at_ms)
        .execute(&mut tx)
        .await;
        if !shared::store::inserted(r)? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refund_progress (batch_no, next_seq, byte_offset, updated_at_ms) VALUES ($1, 1, 0, $2)",
        )
        .bind(b.batch_no.as_str())
        .bind(b.accepted_at_ms)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A batch by number.
    pub async fn refund_batch(&self, no: &BatchNo) -> Result<Option<RefundBatch>> {
        let row = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM refund_batches b JOIN refund_progress p ON p.batch_no = b.batch_no WHERE b.batch_no = $1"
        ))
        .bind(no.as_str())
        .fetch_optional(&self.pools.read)
        .await?;
        row.as_ref().map(batch_from_row).transpose()
    }

    /// Takes the oldest batch not yet DONE that no other process holds, or `None`. A batch taken
    /// for the first time gets `today` as its business date.
    pub async fn claim_refund_batch(&self, today: NaiveDate) -> Result<Option<Claim>> {
        let pick = "SELECT batch_no FROM refund_batches WHERE status = 'ACCEPTED' \
                    ORDER BY accepted_at_ms, batch_no LIMIT 1";
        let (lock, no) = if self.backend == Backend::Postgres {
            let mut tx = self.pools.write.begin().await?;
            let row = sqlx::query(&format!("{pick} FOR NO KEY UPDATE SKIP LOCKED"))
                .fetch_optional(&mut tx)
                .await?;
            match row {
                Some(r) => (Some(tx), text(&r, "batch_no")?),
                None => return Ok(None),
            }
        } else {
            match sqlx::query(pick).fetch_optional(&self.pools.write).await? {
                Some(r) => (None, text(&r, "batch_no")?),
                None => return Ok(None),
            }
        };
        let no = BatchNo::parse(&no).map_err(|_| bad("batch_no"))?;
        let date = sqlx::query(
            "UPDATE refund_progress SET business_date = COALESCE(business_date, $1) \
             WHERE batch_no = $2 RETURNING business_date",
        )
        .bind(today.to_string())
        .bind(no.as_str())
        .fetch_one(&self.pools.write)
        .await?;
        let business_date = text(&date, "business_date")?
            .parse::<NaiveDate>()
            .map_err(|_| bad("refund_progress.business_date"))?;
        let row = sqlx::query(&format!(
            "SELECT {BATCH_COLUMNS} FROM refund_batches b JOIN refund_progress p ON p.batch_no = b.batch_no WHERE b.batch_no = $1"
        ))
        .bind(no.as_str())
        .fetch_one(&self.pools.write)
        .await?;
        Ok(Some(Claim {
            lock,
            batch: batch_from_row(&row)?,
            next_seq: unsigned(int(&row, "next_seq")?)?,
            offset: unsigned(int(&row, "byte_offset")?)?,
            business_date,
        }))
    }

    /// Applies one chunk of lines in one transaction: moves the cursor from `from_seq` to past the
    /// chunk (at `next_offset`), asks `decide` what becomes of each line given the orders and
    /// refund ids as they stand, then records every line and credits the cards. A transaction
    /// the database aborted for a deadlock or a serialization failure is a `Conflict`: nothing
    /// was applied; decide again.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_refund_chunk(
        &self,
        batch: &BatchNo,
        from_seq: u64,
        lines: &[RefundLine],
        next_offset: u64,
        worker: &str,
        now_ms: i64,
        business_date: NaiveDate,
        decide: impl FnOnce(RefundSnapshot) -> Vec<LineDecision>,
    ) -> Result<ChunkOutcome> {
        let applied = async {
            let mut tx = self.pools.write.begin().await?;
            // The cursor first: a write takes SQLite's write lock before anything is read.
            let moved = sqlx::query(
                "UPDATE refund_progress SET next_seq = $1, byte_offset = $2, worker = $3, updated_at_ms = $4, \
                 started_at_ms = COALESCE(started_at_ms, $4) WHERE batch_no = $5 AND next_seq = $6",
            )
            .bind(bigint(from_seq + lines.len() as u64)?)
            .bind(bigint(next_offset)?)
            .bind(worker)
            .bind(now_ms)
            .bind(batch.as_str())
            .bind(bigint(from_seq)?)
            .execute(&mut tx)
            .await?;
            if moved.rows_affected() != 1 {
                return Ok(ChunkOutcome::CursorMoved);
            }
            let snapshot = snapshot(&mut tx, self.backend, lines).await?;
            let decisions = decide(snapshot);
            if !credit(&mut tx, self.backend, &decisions, now_ms).await? {
                return Ok(ChunkOutcome::Conflict);
            }
            insert_lines(
                &mut tx,
                self.backend,
                batch,
                &decisions,
                worker,
                business_date,
                now_ms,
            )
            .await?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>(ChunkOutcome::Applied(decisions))
        }
        .await;
        match applied {
            Err(e) if shared::store::is_transient(&e) => {
                tracing::info!(error = %e, "refund chunk aborted by the database; trying again");
                Ok(ChunkOutcome::Conflict)
            }
            // Another process recorded a line with one of the chunk's refund ids since the
            // chunk read them (PostgreSQL; on SQLite the read and the insert share the writer):
            // decided again, that line finds its id used.
            Err(e) if recorded_meanwhile(&e) => {
                tracing::info!(error = %e, "a refund id was recorded meanwhile; trying again");
                Ok(ChunkOutcome::Conflict)
            }
            other => other,
        }
    }

    /// Up to `limit` recorded lines of a batch after sequence number `after`, in order.
    pub async fn refund_lines_page(
        &self,
        batch: &BatchNo,
        after: u64,
        limit: u32,
    ) -> Result<Vec<LineDecision>> {
        let args = [
            Arg::Text(batch.as_str()),
            Arg::Int(bigint(after)?),
            Arg::Int(i64::from(limit)),
        ];
        let rows = self
            .pools
            .read
            .rows(
                "SELECT seq, refund_id, order_no, amount_text, amount_fen, status, reason_code, \
                 reason_text, card_number FROM refund_lines WHERE batch_no = $1 AND seq > $2 \
                 ORDER BY seq LIMIT $3",
                &args,
            )
            .await?;
        rows.map(line_from_row)
    }

    /// Marks a claimed batch DONE with its result file, and lets it go.
    pub async fn finish_refund_batch(&self, claim: Claim, r: &BatchResult) -> Result<()> {
        let q = sqlx::query(
            "UPDATE refund_batches SET status = 'DONE', result_file_name = $1, result_sha256 = $2, \
             result_size_bytes = $3, result_business_date = $4, success_count = $5, success_fen = $6, \
             failed_count = $7, failed_fen = $8, done_at_ms = $9 WHERE batch_no = $10 AND status = 'ACCEPTED'",
        )
        .bind(&r.file_name)
        .bind(&r.figures.sha256)
        .bind(bigint(r.figures.size)?)
        .bind(r.figures.business_date.to_string())
        .bind(bigint(r.figures.success_count)?)
        .bind(r.figures.success_total.fen())
        .bind(bigint(r.figures.failed_count)?)
        .bind(r.figures.failed_total.fen())
        .bind(r.done_at_ms)
        .bind(claim.batch.batch_no.as_str());
        match claim.lock {
            Some(mut tx) => {
                q.execute(&mut tx).await?;
                tx.commit().await?;
            }
            None => {
                q.execute(&self.pools.write).await?;
            }
        }
        Ok(())
    }
}

/// The orders and refund ids a chunk names, as they stand in the transaction.
async fn snapshot(tx: &mut Tx, backend: Backend, lines: &[RefundLine]) -> Result<RefundSnapshot> {
    let orders: HashSet<&str> = lines.iter().map(|l| l.order_no.as_str()).collect();
    let ids: HashSet<&str> = lines.iter().map(|l| l.refund_id.as_str()).collect();
    let mut snap = RefundSnapshot::default();
    if !orders.is_empty() {
        let sql = format!(
            "SELECT p.order_no, p.status, p.amount_fen, p.refunded_fen, p.card_number, c.status AS card_status \
             FROM payments p JOIN cards c ON c.card_number = p.card_number WHERE p.order_no IN ({})",
            Params::new(backend).list(orders.len())
        );
        let mut q = sqlx::query(&sql);
        for o in &orders {
            q = q.bind(*o);
        }
        for r in q.fetch_all(&mut *tx).await? {
            snap.orders.insert(
                text(&r, "order_no")?,
                OrderFunds {
                    status: PaymentStatus::from_code(&text(&r, "status")?)
                        .ok_or_else(|| bad("status"))?,
                    amount_fen: int(&r, "amount_fen")?,
                    refunded_fen: int(&r, "refunded_fen")?,
                    card: text(&r, "card_number")?,
                    card_closed: CardStatus::from_code(&text(&r, "card_status")?)
                        .ok_or_else(|| bad("card_status"))?
                        == CardStatus::Closed,
                },
            );
        }
    }
    if !ids.is_empty() {
        let sql = used_refund_ids_sql(backend, ids.len());
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            snap.used_refund_ids.insert(text(&r, "refund_id")?);
        }
    }
    Ok(snap)
}

/// Whether a chunk failed on the unique index of used refund ids: another process recorded a
/// line with one of its ids after the chunk read them.
fn recorded_meanwhile(e: &anyhow::Error) -> bool {
    e.downcast_ref::<sqlx::Error>()
        .and_then(unique_violation)
        .is_some_and(|index| index == "refund_lines_one_per_refund_id")
}

/// The refund ids among `n` that some line of the ledger used. Only a line refused for reusing
/// an id repeats it, and the first line of an id never is one, so the lines the condition
/// leaves out name no id the others do not: the condition is the unique index's
/// (`refund_lines_one_per_refund_id`), which lets both engines read the ids from it.
fn used_refund_ids_sql(backend: Backend, n: usize) -> String {
    format!(
        "SELECT DISTINCT refund_id FROM refund_lines WHERE refund_id IN ({}) \
         AND (status = 'SUCCESS' OR reason_code <> 'REFUND_ID_REUSED')",
        Params::new(backend).list(n)
    )
}

/// Columns per refund_lines row.
const LINE_COLUMNS: usize = 13;
/// Rows per INSERT statement (keeps the bind count far below both engines' limits).
const LINES_PER_INSERT: usize = 200;

async fn insert_lines(
    tx: &mut Tx,
    backend: Backend,
    batch: &BatchNo,
    decisions: &[LineDecision],
    worker: &str,
    date: NaiveDate,
    now_ms: i64,
) -> Result<()> {
    let date = date.to_string();
    for part in decisions.chunks(LINES_PER_INSERT) {
        let sql = format!(
            "INSERT INTO refund_lines (batch_no, seq, refund_id, order_no, amount_text, amount_fen, status, reason_code, reason_text, card_number, worker, business_date, processed_at_ms) VALUES {}",
            Params::new(backend).rows(part.len(), LINE_COLUMNS)
        );
        let mut q = sqlx::query(&sql);
        for d in part {
            let (status, code, text, card) = match &d.outcome {
                LineOutcome::Credited { card, .. } => ("SUCCESS", None, None, Some(card.clone())),
                LineOutcome::Failed { code, text } => {
                    ("FAILED", Some(code.clone()), Some(text.clone()), None)
                }
            };
            q = q
                .bind(batch.as_str())
                .bind(bigint(d.seq)?)
                .bind(d.refund_id.as_str())
                .bind(d.order_no.as_str())
                .bind(d.amount_text.clone())
                .bind(d.amount_fen)
                .bind(status)
                .bind(code)
                .bind(text)
                .bind(card)
                .bind(worker)
                .bind(date.clone())
                .bind(now_ms);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

fn batch_from_row(r: &AnyRow) -> Result<RefundBatch> {
    let opt_int = |col: &str| -> Result<Option<i64>> { Ok(r.try_get::<Option<i64>, _>(col)?) };
    let money = |fen: i64, col: &str| Money::from_fen(fen).ok_or_else(|| bad(col));
    let date = |s: String, col: &str| s.parse::<NaiveDate>().map_err(|_| bad(col));
    let status = text(r, "status")?;
    let next_seq = unsigned(int(r, "next_seq")?)?;
    let result = match opt_text(r, "result_file_name")? {
        Some(file_name) if status == "DONE" => Some(BatchResult {
            file_name,
            figures: ResultFigures {
                sha256: opt_text(r, "result_sha256")?.ok_or_else(|| bad("result_sha256"))?,
                size: unsigned(opt_int("result_size_bytes")?.unwrap_or_default())?,
                business_date: date(
                    opt_text(r, "result_business_date")?.unwrap_or_default(),
                    "result_business_date",
                )?,
                success_count: unsigned(opt_int("success_count")?.unwrap_or_default())?,
                success_total: money(opt_int("success_fen")?.unwrap_or_default(), "success_fen")?,
                failed_count: unsigned(opt_int("failed_count")?.unwrap_or_default())?,
                failed_total: money(opt_int("failed_fen")?.unwrap_or_default(), "failed_fen")?,
            },
            done_at_ms: opt_int("done_at_ms")?.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(RefundBatch {
        batch_no: BatchNo::parse(&text(r, "batch_no")?).map_err(|_| bad("batch_no"))?,
        receipt_no: text(r, "receipt_no")?,
        sha256: text(r, "sha256")?,
        size: unsigned(int(r, "size_bytes")?)?,
        file_name: text(r, "file_name")?,
        business_date: date(text(r, "business_date")?, "business_date")?,
        record_count: unsigned(int(r, "record_count")?)?,
        total: money(int(r, "total_fen")?, "total_fen")?,
        accepted_at_ms: int(r, "accepted_at_ms")?,
        status: match (status.as_str(), opt_int("started_at_ms")?) {
            ("DONE", _) => BatchStatus::Done,
            (_, Some(_)) => BatchStatus::Processing,
            _ => BatchStatus::Accepted,
        },
        processed: next_seq - 1,
        result,
    })
}

/// A recorded line from `refund_lines_page`' columns (by position).
fn line_from_row(r: &dyn Columns) -> Result<LineDecision> {
    let outcome = match r.text(5)? {
        "SUCCESS" => LineOutcome::Credited {
            card: r.opt_text(8)?.ok_or_else(|| bad("card_number"))?.to_owned(),
            fen: r.opt_int(4)?.ok_or_else(|| bad("amount_fen"))?,
        },
        _ => LineOutcome::Failed {
            code: r.opt_text(6)?.ok_or_else(|| bad("reason_code"))?.to_owned(),
            text: r.opt_text(7)?.unwrap_or_default().to_owned(),
        },
    };
    Ok(LineDecision {
        seq: unsigned(r.int(0)?)?,
        refund_id: RefundId::parse(r.text(1)?).map_err(|_| bad("refund_id"))?,
        order_no: OrderNo::parse(r.text(2)?).map_err(|_| bad("order_no"))?,
        amount_text: r.text(3)?.to_owned(),
        amount_fen: r.opt_int(4)?,
        outcome,
    })
}

/// Each order's refunded amount raised, while it is SUCCESS and not refunded past its amount.
const REFUNDED: AddAmounts = AddAmounts {
    update: "UPDATE payments SET refunded_fen = payments.refunded_fen + amounts.fen, updated_at_ms = {now} \
             FROM amounts WHERE payments.order_no = amounts.id AND payments.status = 'SUCCESS' \
             AND payments.refunded_fen + amounts.fen <= payments.amount_fen",
    lock: Some(
        "SELECT 1 FROM payments WHERE order_no IN (SELECT id FROM amounts) ORDER BY order_no FOR NO KEY UPDATE",
    ),
};

/// Each card's balance raised, while it is not closed.
const CREDITED: AddAmounts = AddAmounts {
    update: "UPDATE cards SET balance_fen = cards.balance_fen + amounts.fen, updated_at_ms = {now} \
             FROM amounts WHERE cards.card_number = amounts.id AND cards.status <> 'CLOSED'",
    lock: Some(
        "SELECT 1 FROM cards WHERE card_number IN (SELECT id FROM amounts) ORDER BY card_number FOR NO KEY UPDATE",
    ),
};

/// Credits the decided refunds of a chunk: each order's refunded amount and each card's
/// balance, a statement for many orders and one for many cards; `false` when one no longer
/// fits (the payment is no longer SUCCESS or would be over-refunded, the card is closed), and
/// the chunk must be decided again.
async fn credit(
    tx: &mut Tx,
    backend: Backend,
    decisions: &[LineDecision],
    now_ms: i64,
) -> Result<bool> {
    // Every transaction locks payments, then cards, each in key order (on PostgreSQL; SQLite
    // has one writer): two bank processes crediting the same orders never deadlock each other.
    let mut by_order: BTreeMap<&str, i64> = BTreeMap::new();
    let mut by_card: BTreeMap<&str, i64> = BTreeMap::new();
    for d in decisions {
        if let LineOutcome::Credited { card, fen } = &d.outcome {
            *by_order.entry(d.order_no.as_str()).or_default() += fen;
            *by_card.entry(card.as_str()).or_default() += fen;
        }
    }
    for (add, amounts) in [(REFUNDED, by_order), (CREDITED, by_card)] {
        let amounts: Vec<(&str, i64)> = amounts.into_iter().collect();
        if add.run(tx, backend, &amounts, now_ms).await? != amounts.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chunks_refund_ids_are_looked_up_in_the_unique_index_of_used_ids() {
        // Every line of a batch goes into the ledger's table and each of its indexes: the
        // lookup of a chunk's ids must not need an index of its own.
        let sql = used_refund_ids_sql(Backend::Sqlite, 2);
        let plan = super::super::sqlite_plan(&sql, &[Arg::Text("R1"), Arg::Text("R2")]).await;
        assert!(
            plan.contains("INDEX refund_lines_one_per_refund_id"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN refund_lines"), "{plan}");
    }
}
