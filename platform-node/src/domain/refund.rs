//! Batch refunds as the platform's settlement staff run them: a batch file (uploaded, or built
//! from a list of refunds of the platform's orders) is checked, kept in the file store and pushed
//! to the bank; the result file is fetched back, checked and applied to the refund records and
//! the orders' refunded amounts.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use shared::domain::{BatchNo, OrderNo, RefundAmount, RefundId};
use shared::files::refund::{
    BatchHeader, BatchRecord, ResultHeader, ResultRecord, check_batch, check_result,
};
use shared::files::{
    Area, FileError, LineReader, ReadError, Received, TEXT_CHARS_MAX, Upload, read_ahead,
};
use shared::{FieldError, Money, PeerFailure, PeerRefusal};

use super::{BoxFuture, OrderStatus, Platform, PlatformError, relay};
use tracing::Instrument;

/// The most refunds one CreateRefundBatch may list.
pub const REFUNDS_PER_CREATE_MAX: usize = 10_000;
/// Result lines applied per transaction.
const APPLY_CHUNK_LINES: usize = 500;

shared::domain::coded_enum!(
    /// A refund line's outcome at the bank, as the platform keeps it from the result file.
    RefundLineStatus {
        /// Credited to the card.
        Success = "SUCCESS",
        /// Refused, with the bank's reason.
        Failed = "FAILED",
    }
);

shared::domain::coded_enum!(
    /// Where a batch stands at the platform.
    BatchStatus {
        /// Stored; the push is under way or got no answer.
        Submitted = "SUBMITTED",
        /// The bank refused the file.
        Refused = "REFUSED",
        /// The bank accepted it.
        Accepted = "ACCEPTED",
        /// The bank's job is part way through it.
        Processing = "PROCESSING",
        /// The bank has finished; the result is ready to fetch.
        ResultReady = "RESULT_READY",
        /// The result was fetched and applied.
        Done = "DONE",
    }
);

pub use shared::files::refund::ResultFigures;

/// A refusal of a file, with the line and field at fault where the refuser named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRefusal {
    /// The refusal.
    pub refusal: PeerRefusal,
    /// The line at fault (0: the file as a whole).
    pub line: Option<u64>,
    /// The field at fault.
    pub field: Option<String>,
}

/// A refund batch at the platform.
#[derive(Debug, Clone)]
pub struct RefundBatch {
    /// The batch number.
    pub batch_no: BatchNo,
    /// Where it stands.
    pub status: BatchStatus,
    /// SHA-256 of the batch file.
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
    /// The bank's receipt number.
    pub receipt_no: Option<String>,
    /// When the bank accepted it, ms.
    pub accepted_at_ms: Option<i64>,
    /// Lines the bank has processed.
    pub processed: u64,
    /// For REFUSED: why.
    pub refusal: Option<FileRefusal>,
    /// For RESULT_READY and DONE: the result's figures.
    pub result: Option<ResultFigures>,
    /// For DONE: the result file's name in the file store.
    pub result_file_name: Option<String>,
    /// When recorded, ms.
    pub created_at_ms: i64,
}

/// Where the bank says a batch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankBatchStatus {
    /// Waiting for its job.
    Accepted,
    /// Part way.
    Processing,
    /// Finished.
    Done,
}

/// A batch as the bank reports it.
#[derive(Debug, Clone)]
pub struct BankBatch {
    /// Where it stands.
    pub status: BankBatchStatus,
    /// The receipt number.
    pub receipt_no: String,
    /// When accepted, ms.
    pub accepted_at_ms: i64,
    /// SHA-256 of the file the bank holds under this number.
    pub sha256: String,
    /// Lines processed.
    pub processed: u64,
    /// For DONE: the result's figures.
    pub result: Option<ResultFigures>,
}

/// Why a push did not end in an acceptance.
#[derive(Debug, Clone)]
pub enum PushFailure {
    /// The bank refused the file.
    Refused(FileRefusal),
    /// No answer: the outcome is unknown.
    NoAnswer(String),
}

/// One refund staff ask for in a list.
#[derive(Debug, Clone)]
pub struct NewRefund {
    /// The order.
    pub order_no: OrderNo,
    /// The amount.
    pub amount: RefundAmount,
    /// The refund id, if given.
    pub refund_id: Option<RefundId>,
    /// Why.
    pub reason: String,
}

/// One line of an applied result file.
#[derive(Debug, Clone)]
pub struct RefundRecord {
    /// The batch.
    pub batch_no: BatchNo,
    /// The line's sequence number.
    pub seq: u64,
    /// The refund id.
    pub refund_id: String,
    /// The order.
    pub order_no: String,
    /// The amount as written.
    pub amount_text: String,
    /// Whether the bank credited the card.
    pub success: bool,
    /// For a failure: the bank's reason code.
    pub reason_code: Option<String>,
    /// For a failure: the bank's text.
    pub reason_text: Option<String>,
}

/// Which refund records to list.
#[derive(Debug, Clone)]
pub struct RefundFilter {
    /// Only this batch's.
    pub batch_no: Option<BatchNo>,
    /// Only this order's.
    pub order_no: Option<OrderNo>,
    /// Only failed lines.
    pub failed_only: bool,
    /// At most this many.
    pub limit: u32,
    /// Only lines after this sequence number.
    pub after_seq: u64,
}

/// The bank's file server, as the platform uses it.
pub trait BankFiles: Send + Sync {
    /// Pushes the batch file at `path`, announced with its hash and size.
    fn push_refund_batch<'a>(
        &'a self,
        batch_no: &'a BatchNo,
        sha256: &'a str,
        size: u64,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<BankBatch, PushFailure>>;
    /// Where the bank says a batch stands.
    fn refund_batch<'a>(&'a self, no: &'a BatchNo)
    -> BoxFuture<'a, Result<BankBatch, PeerFailure>>;
    /// Streams a result file into `into`; a file that overruns what was announced is an `Err`
    /// inside.
    fn download_refund_result<'a>(
        &'a self,
        no: &'a BatchNo,
        into: Upload,
    ) -> BoxFuture<'a, Result<Result<Upload, ReadError>, PeerFailure>>;
}

impl From<ReadError> for PlatformError {
    fn from(e: ReadError) -> PlatformError {
        match e {
            ReadError::Bad(f) => PlatformError::File(f),
            ReadError::Io(e) => PlatformError::Internal(e.into()),
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> PlatformError {
    PlatformError::ResultCorrupt(what.to_string())
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PlatformError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PlatformError::Internal(e.into()))
}

/// The refund reason staff typed: at most 100 characters, no `|`, no control characters.
pub fn parse_reason(s: &str) -> Result<String, &'static str> {
    if s.chars().count() > TEXT_CHARS_MAX {
        return Err("a reason is at most 100 characters");
    }
    if s.chars().any(|c| c == '|' || c.is_control()) {
        return Err("a reason holds no '|' and no control characters");
    }
    Ok(s.to_owned())
}

impl Platform {
    /// Starts receiving a batch file staff upload.
    pub fn receive_upload(&self, sha256: &str, size: u64) -> Result<Upload, PlatformError> {
        Ok(self.files.receive(sha256, size)?)
    }

    /// Checks an uploaded batch file whole, keeps it and pushes it to the bank.
    pub async fn upload_refund_batch(&self, upload: Upload) -> Result<RefundBatch, PlatformError> {
        let received = upload.finish()?;
        let reader = received.reader().map_err(ReadError::from)?;
        let header = blocking(move || check_batch(reader)).await??;
        self.submit(header, received).await
    }

    /// Builds a batch file from a list of refunds of the platform's own successful orders, keeps
    /// it and pushes it to the bank.
    pub async fn create_refund_batch(
        &self,
        batch_no: BatchNo,
        refunds: Vec<NewRefund>,
    ) -> Result<RefundBatch, PlatformError> {
        if refunds.is_empty() {
            return Err(
                FieldError::new("refunds", "REFUNDS_EMPTY", "list at least one refund").into(),
            );
        }
        if refunds.len() > REFUNDS_PER_CREATE_MAX {
            return Err(FieldError::new(
                "refunds",
                "REFUNDS_TOO_MANY",
                format!(
                    "at most {REFUNDS_PER_CREATE_MAX} refunds per batch; upload a file for more"
                ),
            )
            .into());
        }
        let (records, total) = self.batch_records(&batch_no, refunds).await?;
        let header = BatchHeader {
            batch_no,
            business_date: self.clock.business_date(),
            record_count: records.len() as u64,
            total,
        };
        let files = self.files.clone();
        let h = header.clone();
        let received = blocking(move || -> std::io::Result<Received> {
            let mut d = files.draft()?;
            d.line(&h.to_line())?;
            for r in &records {
                d.line(&r.to_line())?;
            }
            d.finish()
        })
        .await?
        .map_err(anyhow::Error::from)?;
        self.submit(header, received).await
    }

    /// The batch file's records of `refunds`, each of a SUCCESS order (refund ids made from the
    /// batch number where none is given), and their total.
    async fn batch_records(
        &self,
        batch_no: &BatchNo,
        refunds: Vec<NewRefund>,
    ) -> Result<(Vec<BatchRecord>, Money), PlatformError> {
        let mut total = Money::ZERO;
        let mut records = Vec::with_capacity(refunds.len());
        for (i, r) in refunds.into_iter().enumerate() {
            match self.store.order(&r.order_no).await? {
                None => return Err(PlatformError::RefundOrderNotFound(i, r.order_no)),
                Some(o) if o.status != OrderStatus::Success => {
                    return Err(PlatformError::RefundOrderNotPaid(i, r.order_no, o.status));
                }
                Some(_) => {}
            }
            let seq = i as u64 + 1;
            let refund_id = match r.refund_id {
                Some(id) => id,
                None => RefundId::parse(&format!("{batch_no}-{seq}")).map_err(|_| {
                    FieldError::new(
                        "refunds",
                        "REFUND_ID_INVALID",
                        format!("refunds[{i}]: the batch number is too long to make refund ids from; give refund_id"),
                    )
                })?,
            };
            total = total
                .checked_add(r.amount.money())
                .ok_or_else(|| anyhow::anyhow!("refund total overflows"))?;
            records.push(BatchRecord {
                seq,
                refund_id,
                order_no: r.order_no,
                amount: r.amount.to_string(),
                reason: r.reason,
            });
        }
        Ok((records, total))
    }

    /// Keeps a checked batch file and pushes it; a repeat of the same file pushes again or
    /// answers where it stands.
    async fn submit(
        &self,
        header: BatchHeader,
        received: Received,
    ) -> Result<RefundBatch, PlatformError> {
        let no = header.batch_no.clone();
        match self.store.refund_batch(&no).await? {
            Some(b) if b.status == BatchStatus::Refused => {}
            Some(b) if b.sha256 == received.sha256 => {
                return match b.status {
                    BatchStatus::Submitted => self.push(b).await,
                    _ => Ok(b),
                };
            }
            Some(_) => return Err(PlatformError::BatchNoReused),
            None => {}
        }
        let file_name = format!("{no}-{}.txt", &received.sha256[..16]);
        let now = self.clock.now_ms();
        let batch = RefundBatch {
            batch_no: no.clone(),
            status: BatchStatus::Submitted,
            sha256: received.sha256.clone(),
            size: received.size,
            file_name: file_name.clone(),
            business_date: header.business_date,
            record_count: header.record_count,
            total: header.total,
            receipt_no: None,
            accepted_at_ms: None,
            processed: 0,
            refusal: None,
            result: None,
            result_file_name: None,
            created_at_ms: now,
        };
        let files = self.files.clone();
        blocking(move || received.keep(&files, Area::RefundBatches, &file_name))
            .await?
            .map_err(anyhow::Error::from)?;
        if !self.store.save_submitted_batch(&batch).await? {
            return Err(PlatformError::BatchNoReused);
        }
        tracing::info!(batch_no = %no, records = batch.record_count, total = %batch.total, "refund batch submitted");
        self.push(batch).await
    }

    async fn push(&self, batch: RefundBatch) -> Result<RefundBatch, PlatformError> {
        let no = &batch.batch_no;
        let path = self.files.path(Area::RefundBatches, &batch.file_name);
        let now = self.clock.now_ms();
        match self
            .bank_files
            .push_refund_batch(no, &batch.sha256, batch.size, &path)
            .await
        {
            Ok(bank) => {
                self.store.update_batch_from_bank(no, &bank, now).await?;
                tracing::info!(batch_no = %no, receipt_no = %bank.receipt_no, "bank accepted the refund batch");
                self.stored_batch(no).await
            }
            Err(PushFailure::Refused(r)) => {
                self.store.mark_batch_refused(no, &r, now).await?;
                Err(PlatformError::BankRefusedFile(r))
            }
            Err(PushFailure::NoAnswer(d)) => Err(relay(
                PeerFailure::NoAnswer(d),
                "the batch stays SUBMITTED: upload the same file again (the bank answers a repeat with its first receipt)",
            )),
        }
    }

    async fn stored_batch(&self, no: &BatchNo) -> Result<RefundBatch, PlatformError> {
        self.store
            .refund_batch(no)
            .await?
            .ok_or(PlatformError::BatchNotFound)
    }

    /// A batch; one the bank holds or may hold is brought up to date from the bank first (when it
    /// does not answer, the platform's own record is the answer).
    pub async fn refund_batch(&self, no: &BatchNo) -> Result<RefundBatch, PlatformError> {
        let b = self.stored_batch(no).await?;
        use BatchStatus::*;
        if !matches!(b.status, Submitted | Accepted | Processing) {
            return Ok(b);
        }
        match self.bank_files.refund_batch(no).await {
            Ok(bank) if bank.sha256 == b.sha256 => {
                self.store
                    .update_batch_from_bank(no, &bank, self.clock.now_ms())
                    .await?;
                self.stored_batch(no).await
            }
            Ok(_) => {
                tracing::warn!(batch_no = %no, "the bank holds another file under this batch number");
                Ok(b)
            }
            Err(e) => {
                tracing::info!(batch_no = %no, failure = ?e, "the bank was not asked about the batch");
                Ok(b)
            }
        }
    }

    /// Fetches a finished batch's result file from the bank, checks it and applies it. Applying
    /// twice changes nothing.
    ///
    /// The fetch runs in a task of its own, one at a time: a caller cut off by the server's
    /// request time limit on a result of millions of lines leaves it running to the end.
    pub async fn fetch_refund_result(&self, no: &BatchNo) -> Result<RefundBatch, PlatformError> {
        let (platform, no) = (self.clone(), no.clone());
        tokio::spawn(shared::trace::inherit(
            async move {
                let _one_at_a_time = platform.result_fetch.lock().await;
                platform.fetch_and_apply(&no).await
            }
            .in_current_span(),
        ))
        .await
        .map_err(anyhow::Error::from)?
    }

    async fn fetch_and_apply(&self, no: &BatchNo) -> Result<RefundBatch, PlatformError> {
        let b = self.refund_batch(no).await?;
        let figures = match (&b.status, &b.result) {
            (BatchStatus::Done, _) => return Ok(b),
            (BatchStatus::Submitted | BatchStatus::Refused, _) => {
                return Err(PlatformError::BatchNotAccepted(b.status));
            }
            (BatchStatus::ResultReady, Some(f)) => f.clone(),
            _ => return Err(PlatformError::ResultNotReady(b.processed, b.record_count)),
        };
        let upload = self
            .files
            .receive(&figures.sha256, figures.size)
            .map_err(corrupt)?;
        let upload = match self.bank_files.download_refund_result(no, upload).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => return Err(corrupt(e)),
            Err(f) => return Err(relay(f, "fetch the result again later")),
        };
        let received = upload.finish().map_err(corrupt)?;
        let reader = received.reader().map_err(ReadError::from)?;
        let header = blocking(move || check_result(reader, |_| Ok::<_, Infallible>(())))
            .await?
            .map_err(corrupt)?
            .unwrap_or_else(|never| match never {});
        check_result_header(&header, &b, &figures)?;
        self.apply_result(no, &received).await?;
        let file_name = format!("{no}.result.txt");
        let files = self.files.clone();
        let name = file_name.clone();
        blocking(move || received.keep(&files, Area::RefundResults, &name))
            .await?
            .map_err(anyhow::Error::from)?;
        self.store
            .mark_batch_done(no, &file_name, self.clock.now_ms())
            .await?;
        tracing::info!(batch_no = %no, succeeded = figures.success_count, failed = figures.failed_count, "refund result applied");
        self.stored_batch(no).await
    }

    /// Applies a checked result file in chunks, each parsed while the one before is stored; each
    /// line once, however often this runs.
    async fn apply_result(&self, no: &BatchNo, received: &Received) -> Result<(), PlatformError> {
        let mut lines = LineReader::new(received.reader().map_err(ReadError::from)?);
        lines.next_line().map_err(corrupt)?;
        let mut chunks = read_ahead(lines, APPLY_CHUNK_LINES, ResultRecord::parse);
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.map_err(corrupt)?;
            self.store
                .apply_refund_results(no, &chunk.records, self.clock.now_ms())
                .await?;
        }
        Ok(())
    }

    /// Where the platform's copy of a fetched result file is.
    pub async fn refund_result_path(&self, no: &BatchNo) -> Result<PathBuf, PlatformError> {
        let b = self.stored_batch(no).await?;
        match (b.status, b.result_file_name) {
            (BatchStatus::Done, Some(name)) => Ok(self.files.path(Area::RefundResults, &name)),
            _ => Err(PlatformError::ResultNotFetched),
        }
    }

    /// Refund records from applied result files.
    pub async fn refunds(&self, filter: &RefundFilter) -> Result<Vec<RefundRecord>, PlatformError> {
        Ok(self.store.refunds(filter).await?)
    }
}

/// The result must answer this batch, line for line, with the figures the bank announced.
fn check_result_header(
    h: &ResultHeader,
    b: &RefundBatch,
    f: &ResultFigures,
) -> Result<(), PlatformError> {
    let fail = |what: &str| Err(corrupt(FileError::at(1, None, "RESULT_CORRUPT", what)));
    if h.batch_no != b.batch_no {
        return fail("the result file answers another batch");
    }
    if (h.record_count, h.total) != (b.record_count, b.total) {
        return fail("the result file's record count or total is not the batch's");
    }
    if (
        h.success_count,
        h.success_total,
        h.failed_count,
        h.failed_total,
        h.business_date,
    ) != (
        f.success_count,
        f.success_total,
        f.failed_count,
        f.failed_total,
        f.business_date,
    ) {
        return fail("the result file's figures are not the ones the bank announced");
    }
    Ok(())
}
