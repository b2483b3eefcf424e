//! Batch refunds at the bank: accepting a pushed batch file whole or not at all, the batch job
//! that processes accepted batches line by line, and the result file it leaves in the file store.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{BatchNo, OrderNo, RefundAmount, RefundId};
use shared::files::refund::{
    BatchRecord, Outcome, ResultFigures, ResultHeader, ResultRecord, ResultTally, check_batch,
    result_text,
};
use shared::files::{
    Area, Chunk, FileError, FileStore, LineReader, ReadError, Received, Spool, Upload, read_ahead,
};
use shared::node::Node;
use tracing::Instrument;

use super::{Bank, BankError, PaymentStatus};
use crate::store::{ChunkOutcome, Claim};

/// How the batch job works through a batch.
#[derive(Debug, Clone)]
pub struct RefundJobSettings {
    /// Lines per transaction.
    pub chunk_lines: usize,
    /// A pause after each chunk, ms of real time (0: none): makes PROCESSING observable.
    pub pause_ms: u64,
    /// This process's name in the batch cursor.
    pub worker: String,
}

/// The most lines per chunk.
pub const CHUNK_LINES_MAX: usize = 2_000;
/// Tries at a chunk whose data changed under it before the job gives up until its next run.
const CHUNK_TRIES_MAX: usize = 3;
/// Result lines read from the database per page, for a batch resumed after a restart.
const RESULT_PAGE_LINES: u32 = 5_000;
/// Chunks of decided lines waiting for the result file's writer at most.
const RESULT_CHUNKS_AHEAD: usize = 4;

/// Where a batch stands at the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    /// Waiting for the batch job.
    Accepted,
    /// Part way through.
    Processing,
    /// Finished; the result file is ready.
    Done,
}

/// An accepted refund batch.
#[derive(Debug, Clone)]
pub struct RefundBatch {
    /// The batch number.
    pub batch_no: BatchNo,
    /// The acceptance receipt's number.
    pub receipt_no: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
    /// Its name in the file store.
    pub file_name: String,
    /// The header's business date.
    pub business_date: NaiveDate,
    /// Records in the file.
    pub record_count: u64,
    /// The header's total.
    pub total: Money,
    /// When accepted, ms.
    pub accepted_at_ms: i64,
    /// Where it stands.
    pub status: BatchStatus,
    /// Lines processed so far.
    pub processed: u64,
    /// For DONE: the result.
    pub result: Option<BatchResult>,
}

/// A finished batch's result file.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// Its name in the file store.
    pub file_name: String,
    /// Its hash, size, date, counts and totals.
    pub figures: ResultFigures,
    /// When finished, ms.
    pub done_at_ms: i64,
}

/// What a push announces before the file.
#[derive(Debug, Clone)]
pub struct PushHead {
    /// The batch number.
    pub batch_no: BatchNo,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
}

/// A line of a batch as the job reads it from the file.
pub type RefundLine = BatchRecord;

/// A payment as a refund sees it.
#[derive(Debug, Clone)]
pub struct OrderFunds {
    /// The payment's status.
    pub status: PaymentStatus,
    /// Paid, fen.
    pub amount_fen: i64,
    /// Refunded so far, fen.
    pub refunded_fen: i64,
    /// The card paid with.
    pub card: String,
    /// Whether that card is closed.
    pub card_closed: bool,
}

/// The orders and refund ids a chunk names, as they stand.
#[derive(Debug, Default)]
pub struct RefundSnapshot {
    /// Payments by order number (absent: no such payment).
    pub orders: HashMap<String, OrderFunds>,
    /// Refund ids already used.
    pub used_refund_ids: HashSet<String>,
}

/// What became of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// The card was credited.
    Credited {
        /// The card.
        card: String,
        /// The amount, fen.
        fen: i64,
    },
    /// The line failed.
    Failed {
        /// Reason code.
        code: String,
        /// For people.
        text: String,
    },
}

/// A line and what became of it.
#[derive(Debug, Clone)]
pub struct LineDecision {
    /// Its sequence number.
    pub seq: u64,
    /// Its refund id.
    pub refund_id: RefundId,
    /// The order.
    pub order_no: OrderNo,
    /// The amount as written.
    pub amount_text: String,
    /// The amount, if valid.
    pub amount_fen: Option<i64>,
    /// What became of it.
    pub outcome: LineOutcome,
}

/// Decides each line of a chunk in order against `snap`, which it updates as lines succeed (a
/// later line of the same order sees what the earlier ones refunded). One bad line never stops
/// the others.
pub fn decide(lines: &[RefundLine], mut snap: RefundSnapshot) -> Vec<LineDecision> {
    lines
        .iter()
        .map(|l| {
            let amount = RefundAmount::parse(&l.amount);
            let outcome = decide_line(l, amount.as_ref().ok().copied(), &mut snap);
            LineDecision {
                seq: l.seq,
                refund_id: l.refund_id.clone(),
                order_no: l.order_no.clone(),
                amount_text: l.amount.clone(),
                amount_fen: amount.ok().map(RefundAmount::fen),
                outcome,
            }
        })
        .collect()
}

fn failed(code: &str, text: String) -> LineOutcome {
    LineOutcome::Failed {
        code: code.to_owned(),
        text: result_text(&text),
    }
}

fn decide_line(
    l: &RefundLine,
    amount: Option<RefundAmount>,
    snap: &mut RefundSnapshot,
) -> LineOutcome {
    if !snap.used_refund_ids.insert(l.refund_id.as_str().to_owned()) {
        return failed(
            "REFUND_ID_REUSED",
            format!("refund id {} was used before", l.refund_id),
        );
    }
    let Some(amount) = amount else {
        return failed(
            "AMOUNT_INVALID",
            format!(
                "not a refund amount (0.01 to 5000.00, at most two decimals): {:?}",
                l.amount
            ),
        );
    };
    let Some(order) = snap.orders.get_mut(l.order_no.as_str()) else {
        return failed(
            "ORDER_NOT_FOUND",
            format!("no payment with order number {}", l.order_no),
        );
    };
    if order.status != PaymentStatus::Success {
        return failed(
            "ORDER_NOT_PAID",
            format!("the payment is {}, not successful", order.status.code()),
        );
    }
    let refundable = order.amount_fen - order.refunded_fen;
    if amount.fen() > refundable {
        let m = |fen| Money::from_fen(fen).unwrap_or_default();
        return failed(
            "REFUND_EXCEEDS_PAYMENT",
            format!(
                "asked {amount}, refundable {} (paid {}, refunded {})",
                m(refundable),
                m(order.amount_fen),
                m(order.refunded_fen)
            ),
        );
    }
    if order.card_closed {
        return failed(
            "CARD_CLOSED",
            "the card paid with is closed and cannot receive".to_owned(),
        );
    }
    order.refunded_fen += amount.fen();
    LineOutcome::Credited {
        card: order.card.clone(),
        fen: amount.fen(),
    }
}

impl From<ReadError> for BankError {
    fn from(e: ReadError) -> BankError {
        match e {
            ReadError::Bad(f) => BankError::File(f),
            ReadError::Io(e) => BankError::Internal(e.into()),
        }
    }
}

impl Bank {
    /// Starts receiving a pushed batch file into the file store's incoming area.
    pub fn receive_batch(&self, head: &PushHead) -> Result<Upload, BankError> {
        Ok(self.files.receive(&head.sha256, head.size)?)
    }

    /// Checks a received batch file whole and accepts it, or refuses it whole. The same file
    /// pushed again answers the first acceptance.
    pub async fn accept_refund_batch(
        &self,
        head: PushHead,
        upload: Upload,
    ) -> Result<RefundBatch, BankError> {
        let received = upload.finish()?;
        let reader = received.reader().map_err(ReadError::from)?;
        let header = tokio::task::spawn_blocking(move || check_batch(reader))
            .await
            .map_err(anyhow::Error::from)??;
        if header.batch_no != head.batch_no {
            return Err(BankError::File(FileError::at(
                1,
                Some("batch_no"),
                "BATCH_NO_MISMATCH",
                format!(
                    "the header names batch {}, the push names {}",
                    header.batch_no, head.batch_no
                ),
            )));
        }
        if let Some(existing) = self.store.refund_batch(&head.batch_no).await? {
            return same_file(existing, &received);
        }
        let file_name = format!("{}-{}.txt", head.batch_no, &received.sha256[..16]);
        let now = self.clock.now_ms();
        let batch = RefundBatch {
            batch_no: head.batch_no.clone(),
            receipt_no: format!(
                "RC{}{}",
                self.clock.business_date().format("%Y%m%d"),
                hex::encode(rand::random::<[u8; 5]>()).to_uppercase()
            ),
            sha256: received.sha256.clone(),
            size: received.size,
            file_name: file_name.clone(),
            business_date: header.business_date,
            record_count: header.record_count,
            total: header.total,
            accepted_at_ms: now,
            status: BatchStatus::Accepted,
            processed: 0,
            result: None,
        };
        let files = self.files.clone();
        let kept = received.sha256.clone();
        tokio::task::spawn_blocking(move || received.keep(&files, Area::RefundBatches, &file_name))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        if self.store.insert_refund_batch(&batch).await? {
            tracing::info!(batch_no = %batch.batch_no, records = batch.record_count, total = %batch.total, "refund batch accepted");
            return Ok(batch);
        }
        // A concurrent push of the same number got there first.
        let existing = self.refund_batch(&head.batch_no).await?;
        if existing.sha256 == kept {
            Ok(existing)
        } else {
            Err(BankError::BatchNoReused)
        }
    }

    /// A batch by number, or BATCH_NOT_FOUND.
    pub async fn refund_batch(&self, no: &BatchNo) -> Result<RefundBatch, BankError> {
        self.store
            .refund_batch(no)
            .await?
            .ok_or(BankError::BatchNotFound)
    }

    /// Where a DONE batch's result file is, or RESULT_NOT_READY.
    pub async fn refund_result_path(&self, no: &BatchNo) -> Result<PathBuf, BankError> {
        let batch = self.refund_batch(no).await?;
        match batch.result {
            Some(r) => Ok(self.files.path(Area::RefundResults, &r.file_name)),
            None => Err(BankError::ResultNotReady(
                batch.processed,
                batch.record_count,
            )),
        }
    }

    /// Runs the refund batch job: every batch not yet DONE that no other process holds, oldest
    /// first, to the end. One job at a time per process. The batches finished.
    ///
    /// The job runs in a task of its own: whoever asked may stop waiting (a call cut off by the
    /// server's request time limit on a batch of millions of lines) and it still runs to the end.
    pub async fn run_refund_job(&self) -> Result<Vec<BatchNo>, BankError> {
        let bank = self.clone();
        tokio::spawn(shared::trace::inherit(
            async move { bank.refund_job_to_the_end().await }.in_current_span(),
        ))
        .await
        .map_err(anyhow::Error::from)?
    }

    async fn refund_job_to_the_end(&self) -> Result<Vec<BatchNo>, BankError> {
        let _one_at_a_time = self.refund_job.lock().await;
        let mut finished = Vec::new();
        while let Some(claim) = self
            .store
            .claim_refund_batch(self.clock.business_date())
            .await?
        {
            let no = claim.batch.batch_no.clone();
            let span = tracing::info_span!("refund_job", batch_no = %no);
            self.process_batch(claim).instrument(span).await?;
            self.metrics().inc("ibsim_refund_batches_total", &[]);
            finished.push(no);
        }
        Ok(finished)
    }

    async fn process_batch(&self, claim: Claim) -> Result<(), BankError> {
        let batch = claim.batch.clone();
        tracing::info!(
            from_line = claim.next_seq,
            records = batch.record_count,
            "processing refund batch"
        );
        let chunk_lines = self.refund_settings.chunk_lines.clamp(1, CHUNK_LINES_MAX);
        let mut chunks = read_ahead(self.lines_left(&claim)?, chunk_lines, BatchRecord::parse);
        let mut next_seq = claim.next_seq;
        let results = ResultWriter::start(&self.files)?;
        if next_seq > 1 {
            self.recorded_lines(&batch.batch_no, &results).await?;
        }
        // The planner's statistics of the lines this job writes: taken again each time the
        // lines written have doubled (12 times in a batch of a million) and once the batch is
        // done, so that each chunk's lookups, and the next batch's, are planned for the table's
        // size, not for the empty table it was.
        let (mut written, mut analyze_at) = (0_usize, chunk_lines);
        while next_seq <= batch.record_count {
            let Some(chunk) = chunks.recv().await else {
                return Err(anyhow::anyhow!(
                    "batch file {} ends before line {next_seq}",
                    batch.file_name
                )
                .into());
            };
            let Chunk {
                records: lines,
                offset,
            } = chunk.map_err(stored_file_fault)?;
            let decided = self
                .apply_chunk(
                    &batch.batch_no,
                    claim.business_date,
                    next_seq,
                    &lines,
                    offset,
                )
                .await?;
            results.send(decided).await;
            next_seq += lines.len() as u64;
            written += lines.len();
            if written >= analyze_at {
                self.store.analyze(&["refund_lines"]).await?;
                analyze_at = written.saturating_mul(2);
            }
            if self.refund_settings.pause_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.refund_settings.pause_ms)).await;
            }
        }
        self.store.analyze(&["refund_lines"]).await?;
        let result = self
            .write_result(&batch, claim.business_date, results)
            .await?;
        tracing::info!(
            succeeded = result.figures.success_count,
            credited = %result.figures.success_total,
            failed = result.figures.failed_count,
            "refund batch done"
        );
        self.store.finish_refund_batch(claim, &result).await?;
        Ok(())
    }

    /// The lines of a claimed batch's file from its cursor on.
    fn lines_left(&self, claim: &Claim) -> Result<LineReader<BufReader<File>>, BankError> {
        let path = self.files.path(Area::RefundBatches, &claim.batch.file_name);
        let mut file = File::open(path).map_err(anyhow::Error::from)?;
        file.seek(SeekFrom::Start(claim.offset))
            .map_err(anyhow::Error::from)?;
        if claim.offset > 0 {
            return Ok(LineReader::resume(
                BufReader::new(file),
                claim.next_seq + 1,
                claim.offset,
            ));
        }
        // A batch not started yet: its cursor is at the header.
        let mut lines = LineReader::new(BufReader::new(file));
        lines.next_line().map_err(stored_file_fault)?;
        Ok(lines)
    }

    async fn apply_chunk(
        &self,
        batch: &BatchNo,
        business_date: chrono::NaiveDate,
        from_seq: u64,
        lines: &[RefundLine],
        next_offset: u64,
    ) -> Result<Vec<LineDecision>, BankError> {
        for _ in 0..CHUNK_TRIES_MAX {
            let outcome = self
                .store
                .apply_refund_chunk(
                    batch,
                    from_seq,
                    lines,
                    next_offset,
                    &self.refund_settings.worker,
                    self.clock.now_ms(),
                    business_date,
                    |snap| decide(lines, snap),
                )
                .await?;
            match outcome {
                ChunkOutcome::Applied(decided) => {
                    self.metrics()
                        .add("ibsim_refund_lines_total", &[], lines.len() as u64);
                    return Ok(decided);
                }
                ChunkOutcome::Conflict => continue,
                ChunkOutcome::CursorMoved => {
                    return Err(anyhow::anyhow!(
                        "another bank process moved batch {batch}'s cursor past line {from_seq}"
                    )
                    .into());
                }
            }
        }
        Err(anyhow::anyhow!(
            "batch {batch} line {from_seq}: the data kept changing; trying again on the next run"
        )
        .into())
    }

    /// Hands the lines a batch recorded before this run (before a restart) to its result file,
    /// a page at a time.
    async fn recorded_lines(&self, no: &BatchNo, results: &ResultWriter) -> Result<(), BankError> {
        let mut after = 0;
        loop {
            let page = self
                .store
                .refund_lines_page(no, after, RESULT_PAGE_LINES)
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            results.send(page).await;
        }
    }

    /// Writes the result file: its header, from the records counted, then the records; its
    /// date is the batch's.
    async fn write_result(
        &self,
        batch: &RefundBatch,
        business_date: chrono::NaiveDate,
        results: ResultWriter,
    ) -> Result<BatchResult, BankError> {
        let no = &batch.batch_no;
        let (records, tally) = results.finish().await?;
        if tally.records() != batch.record_count {
            return Err(anyhow::anyhow!(
                "batch {no} has {} recorded lines of {}",
                tally.records(),
                batch.record_count
            )
            .into());
        }
        let header = ResultHeader {
            batch_no: no.clone(),
            business_date,
            record_count: batch.record_count,
            total: batch.total,
            success_count: tally.success_count,
            success_total: tally.success_total,
            failed_count: tally.failed_count,
            failed_total: tally.failed_total,
        };
        let file_name = format!("{no}.result.txt");
        let (files, name) = (self.files.clone(), file_name.clone());
        let (sha256, size) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut draft = files.draft()?;
            draft.line(&header.to_line())?;
            draft.append(records.read_back()?)?;
            let received = draft.finish()?;
            let written = (received.sha256.clone(), received.size);
            received.keep(&files, Area::RefundResults, &name)?;
            Ok(written)
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
        Ok(BatchResult {
            file_name,
            figures: ResultFigures {
                sha256,
                size,
                business_date,
                success_count: tally.success_count,
                success_total: tally.success_total,
                failed_count: tally.failed_count,
                failed_total: tally.failed_total,
            },
            done_at_ms: self.clock.now_ms(),
        })
    }
}

/// A batch's result records, written to a spool on a blocking thread while the job applies the
/// next chunk, in order, and counted for the header. A writer that fails takes the rest and
/// reports its error at the end; the lines are recorded either way, and the job's next run
/// writes the file from them.
struct ResultWriter {
    lines: tokio::sync::mpsc::Sender<Vec<LineDecision>>,
    done: tokio::task::JoinHandle<anyhow::Result<(Spool, ResultTally)>>,
}

impl ResultWriter {
    fn start(files: &FileStore) -> Result<ResultWriter, BankError> {
        let spool = files.spool().map_err(anyhow::Error::from)?;
        let (lines, chunks) = tokio::sync::mpsc::channel(RESULT_CHUNKS_AHEAD);
        let done = tokio::task::spawn_blocking(move || write_records(spool, chunks));
        Ok(ResultWriter { lines, done })
    }

    /// Hands on the next lines, in order.
    async fn send(&self, lines: Vec<LineDecision>) {
        // Only a writer that panicked is gone; `finish` reports it.
        let _ = self.lines.send(lines).await;
    }

    /// The records written, and their tally.
    async fn finish(self) -> Result<(Spool, ResultTally), BankError> {
        drop(self.lines);
        Ok(self.done.await.map_err(anyhow::Error::from)??)
    }
}

/// Writes each record as a result line, in sequence from 1, and counts it; after a failure it
/// takes the rest unwritten, so that the job is never held up by it.
fn write_records(
    mut spool: Spool,
    mut chunks: tokio::sync::mpsc::Receiver<Vec<LineDecision>>,
) -> anyhow::Result<(Spool, ResultTally)> {
    let mut tally = ResultTally::default();
    let mut failed = None;
    while let Some(lines) = chunks.blocking_recv() {
        if failed.is_some() {
            continue;
        }
        let written = lines.iter().try_for_each(|d| {
            anyhow::ensure!(
                d.seq == tally.records() + 1,
                "result record {} came after {}",
                d.seq,
                tally.records()
            );
            let record = result_record(d);
            tally.count(d.seq + 1, &record)?;
            Ok(spool.line(&record.to_line())?)
        });
        failed = written.err();
    }
    match failed {
        Some(e) => Err(e),
        None => Ok((spool, tally)),
    }
}

fn result_record(d: &LineDecision) -> ResultRecord {
    ResultRecord {
        seq: d.seq,
        refund_id: d.refund_id.clone(),
        order_no: d.order_no.clone(),
        amount: d.amount_text.clone(),
        outcome: match &d.outcome {
            LineOutcome::Credited { .. } => Outcome::Success,
            LineOutcome::Failed { code, text } => Outcome::Failed {
                code: code.clone(),
                text: text.clone(),
            },
        },
    }
}

/// A batch file in the store that no longer reads as it did when accepted: a fault of ours.
fn stored_file_fault(e: ReadError) -> BankError {
    BankError::Internal(anyhow::anyhow!("stored batch file no longer reads: {e}"))
}

fn same_file(existing: RefundBatch, received: &Received) -> Result<RefundBatch, BankError> {
    if existing.sha256 == received.sha256 {
        Ok(existing)
    } else {
        Err(BankError::BatchNoReused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, id: &str, order: &str, amount: &str) -> RefundLine {
        RefundLine {
            seq,
            refund_id: RefundId::parse(id).unwrap(),
            order_no: OrderNo::parse(order).unwrap(),
            amount: amount.to_owned(),
            reason: String::new(),
        }
    }

    fn codes(d: &[LineDecision]) -> Vec<&str> {
        d.iter()
            .map(|d| match &d.outcome {
                LineOutcome::Credited { .. } => "OK",
                LineOutcome::Failed { code, .. } => code.as_str(),
            })
            .collect()
    }

    #[test]
    fn each_line_is_decided_on_its_own_and_partial_refunds_add_up() {
        let mut snap = RefundSnapshot::default();
        let funds = |status, closed| OrderFunds {
            status,
            amount_fen: 3000,
            refunded_fen: 1000,
            card: "6221880000000019".to_owned(),
            card_closed: closed,
        };
        snap.orders
            .insert("O1".into(), funds(PaymentStatus::Success, false));
        snap.orders
            .insert("O2".into(), funds(PaymentStatus::Failed, false));
        snap.orders
            .insert("O3".into(), funds(PaymentStatus::Success, true));
        snap.used_refund_ids.insert("OLD".into());
        let lines = [
            line(1, "A", "O1", "15.00"),
            line(2, "B", "O1", "5.01"),
            line(3, "C", "O1", "5.00"),
            line(4, "OLD", "O1", "0.01"),
            line(5, "A", "O1", "0.01"),
            line(6, "D", "NOPE", "1.00"),
            line(7, "E", "O2", "1.00"),
            line(8, "F", "O3", "1.00"),
            line(9, "G", "O1", "abc"),
            line(10, "H", "O1", "-5"),
            line(11, "I", "O1", "1.234"),
            line(12, "J", "O1", ""),
        ];
        let d = decide(&lines, snap);
        assert_eq!(
            codes(&d),
            [
                "OK",
                "REFUND_EXCEEDS_PAYMENT",
                "OK",
                "REFUND_ID_REUSED",
                "REFUND_ID_REUSED",
                "ORDER_NOT_FOUND",
                "ORDER_NOT_PAID",
                "CARD_CLOSED",
                "AMOUNT_INVALID",
                "AMOUNT_INVALID",
                "AMOUNT_INVALID",
                "AMOUNT_INVALID",
            ]
        );
        assert_eq!(d[0].amount_fen, Some(1500));
        assert_eq!(d[8].amount_fen, None);
        let LineOutcome::Failed { text, .. } = &d[1].outcome else {
            panic!()
        };
        assert_eq!(
            text,
            "asked 5.01, refundable 5.00 (paid 30.00, refunded 25.00)"
        );
    }
}
