//! What the bank gives reconciliation: its successful payments in commit order (the platform's
//! real-time pull), and the T+1 files of a closed business date, each built once from the ledger
//! and kept in the file store.

use std::path::PathBuf;

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{Email, OrderNo, PayAmount, SignUpId};
use shared::files::recon::{
    ClearingEntry, ClearingRecord, DayFigures, DayFileKind, DayHeader, DayRecord, OrderRecord,
    SignUpEvent,
};
use shared::files::{Area, Draft, Received, SEND_CHUNK_BYTES};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{Bank, BankError, DayStatus};

/// Rows read from the database at a time while a day file is written.
const DAY_FILE_PAGE_ROWS: u32 = 1000;

/// Pieces of a day file (of up to [`SEND_CHUNK_BYTES`]) waiting for a slow caller before the
/// build waits for it.
const DAY_FILE_PIECES_IN_FLIGHT: usize = 4;

/// A piece of a day file streamed while it is built ([`Bank::stream_day_file`]).
#[derive(Debug)]
pub enum DayFilePart {
    /// The next bytes, in order.
    Bytes(Vec<u8>),
    /// The last piece: the whole file.
    Done(DayFileInfo),
}

type PieceSender = mpsc::Sender<Result<DayFilePart, BankError>>;

/// A successful payment in the real-time stream.
#[derive(Debug, Clone)]
pub struct SuccessRecord {
    /// Its place in commit order.
    pub seq: u64,
    /// The order number.
    pub order_no: OrderNo,
    /// The bank's serial number.
    pub serial: String,
    /// The sign-up paid with.
    pub signup_id: SignUpId,
    /// The paying account.
    pub account: Email,
    /// The card, masked.
    pub card_masked: String,
    /// The amount.
    pub amount: PayAmount,
    /// The debit's business date.
    pub business_date: NaiveDate,
    /// When, ms.
    pub paid_at_ms: i64,
}

/// A built day file.
#[derive(Debug, Clone)]
pub struct DayFileInfo {
    /// Which file.
    pub kind: DayFileKind,
    /// Its date.
    pub business_date: NaiveDate,
    /// Its name in the file store's recon area.
    pub file_name: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// Size, bytes.
    pub size: u64,
    /// Record lines.
    pub records: u64,
    /// The payments' total (zero for the sign-up file).
    pub payment_total: Money,
    /// When it was built, ms.
    pub built_at_ms: i64,
}

impl Bank {
    /// Successful payments after sequence number `after`, at most `limit`, in commit order.
    pub async fn successful_payments(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<SuccessRecord>, BankError> {
        Ok(self.store.successful_payments(after, limit).await?)
    }

    /// The file of `kind` for `date`: built now if it was not yet, from the closed day.
    pub async fn prepare_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> Result<DayFileInfo, BankError> {
        if let Some(f) = self.store.day_file(kind, date).await? {
            return Ok(f);
        }
        self.check_day_settled(date).await?;
        Ok(self.build_day_file(kind, date, None).await?.0)
    }

    /// The file of `kind` for `date` in pieces, streamed while it is built (the first time) or as
    /// kept, its description last. A date not ready is refused before any piece; a build that
    /// fails part way sends its error as the last piece and keeps nothing. A caller that goes
    /// away does not stop the build: the file is kept for the next.
    pub async fn stream_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> Result<mpsc::Receiver<Result<DayFilePart, BankError>>, BankError> {
        let built = self.store.day_file(kind, date).await?;
        if built.is_none() {
            self.check_day_settled(date).await?;
        }
        let (tx, rx) = mpsc::channel(DAY_FILE_PIECES_IN_FLIGHT);
        let bank = self.clone();
        tokio::spawn(
            async move {
                let sent = match built {
                    Some(f) => bank.send_kept(f, &tx).await,
                    None => match bank.build_day_file(kind, date, Some(tx.clone())).await {
                        Ok((f, true)) => Ok(f),
                        Ok((f, false)) => bank.send_kept(f, &tx).await,
                        Err(e) => Err(e),
                    },
                };
                let _ = tx
                    .send(match sent {
                        Ok(f) => Ok(DayFilePart::Done(f)),
                        Err(e) => Err(e),
                    })
                    .await;
            }
            .in_current_span(),
        );
        Ok(rx)
    }

    /// Sends the kept file `f`'s bytes.
    async fn send_kept(&self, f: DayFileInfo, tx: &PieceSender) -> Result<DayFileInfo, BankError> {
        let mut chunks = shared::files::read_chunks(&self.files.path(Area::Recon, &f.file_name));
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.map_err(|e| BankError::Internal(e.into()))?;
            if tx.send(Ok(DayFilePart::Bytes(chunk))).await.is_err() {
                break;
            }
        }
        Ok(f)
    }

    /// Builds the `kind` file of `date` and keeps it, one build at a time; its bytes also go to
    /// `tee` as they are written. `true` with the file when it was built here, `false` when
    /// another build had kept it first (and nothing went to `tee`).
    async fn build_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
        tee: Option<PieceSender>,
    ) -> Result<(DayFileInfo, bool), BankError> {
        let _one_build_at_a_time = self.day_files.lock().await;
        if let Some(f) = self.store.day_file(kind, date).await? {
            return Ok((f, false));
        }
        let (received, figures) = self.write_day_file(kind, date, tee).await?;
        let info = DayFileInfo {
            kind,
            business_date: date,
            file_name: kind.file_name(date),
            sha256: received.sha256.clone(),
            size: received.size,
            records: figures.records,
            payment_total: figures.payment_total,
            built_at_ms: self.clock.now_ms(),
        };
        let files = self.files.clone();
        let name = info.file_name.clone();
        tokio::task::spawn_blocking(move || received.keep(&files, Area::Recon, &name))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|e| BankError::Internal(e.into()))?;
        if !self.store.insert_day_file(&info).await? {
            // Another bank process built it first, from the same closed day: the same bytes.
            let theirs = self.store.day_file(kind, date).await?;
            let theirs =
                theirs.ok_or_else(|| anyhow::anyhow!("day file vanished after a conflict"))?;
            return Ok((theirs, true));
        }
        tracing::info!(
            kind = kind.code(),
            %date,
            records = info.records,
            sha256 = %info.sha256,
            "day file built"
        );
        Ok((info, true))
    }

    /// A day file is made only of a closed day with no payment still in flight.
    async fn check_day_settled(&self, date: NaiveDate) -> Result<(), BankError> {
        let open = self.store.day_status(date).await? == Some(DayStatus::Open);
        if date >= self.clock.business_date() || open {
            return Err(BankError::DayNotClosed(date));
        }
        let in_flight = self.store.in_flight_on(date).await?;
        if in_flight > 0 {
            return Err(BankError::DayNotSettled(date, in_flight));
        }
        Ok(())
    }

    /// Writes the `kind` file of `date` as a draft: its header with the day's figures, then its
    /// records, which must add up to the same figures.
    async fn write_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
        tee: Option<PieceSender>,
    ) -> Result<(Received, DayFigures), BankError> {
        // The day's records are read in pages by key: with a planner that knows their number.
        let tables: &[&'static str] = match kind {
            DayFileKind::SignUp => &["signups"],
            DayFileKind::Order => &["payments"],
            DayFileKind::Clearing => &["payments", "refund_lines"],
        };
        self.store.analyze(tables).await?;
        let figures = self.store.day_figures(kind, date).await?;
        let header = DayHeader {
            kind,
            business_date: date,
            figures: figures.clone(),
        };
        let io = |e: std::io::Error| BankError::Internal(e.into());
        let mut w = DayWriter {
            draft: self.files.draft().map_err(io)?,
            sum: DayFigures::default(),
            tee: tee.map(|tx| Tee {
                tx,
                buf: Vec::new(),
            }),
            text: String::new(),
        };
        w.line(&header.to_line())?;
        self.write_records(kind, date, &mut w).await?;
        if w.sum != figures {
            return Err(anyhow::anyhow!(
                "the {} file of {date} changed while it was written ({:?} counted, {:?} written)",
                kind.code(),
                figures,
                w.sum
            )
            .into());
        }
        w.send(0).await;
        let received: Received = w.draft.finish().map_err(io)?;
        Ok((received, figures))
    }

    /// Writes the records of the `kind` file of `date`, a page of rows at a time.
    async fn write_records(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
        w: &mut DayWriter,
    ) -> Result<(), BankError> {
        match kind {
            DayFileKind::SignUp => {
                for event in [SignUpEvent::Signed, SignUpEvent::Cancelled] {
                    self.write_signups(date, event, w).await?;
                }
            }
            DayFileKind::Order => self.write_payments(date, w, DayRecord::Order).await?,
            DayFileKind::Clearing => {
                let entry = |r: OrderRecord| {
                    DayRecord::Clearing(ClearingRecord {
                        seq: 0,
                        entry: ClearingEntry::Payment {
                            order_no: r.order_no,
                            serial: r.serial,
                            amount: r.amount,
                        },
                    })
                };
                self.write_payments(date, w, entry).await?;
                self.write_refunds(date, w).await?;
            }
        }
        Ok(())
    }

    /// The sign-ups (or cancellations) of `date` that succeeded, by sign-up id.
    async fn write_signups(
        &self,
        date: NaiveDate,
        event: SignUpEvent,
        w: &mut DayWriter,
    ) -> Result<(), BankError> {
        let mut after = String::new();
        loop {
            let page = self
                .store
                .signup_events(date, event, &after, DAY_FILE_PAGE_ROWS)
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.signup_id.to_string();
            for r in page {
                w.record(DayRecord::SignUp(r))?;
            }
            w.send(SEND_CHUNK_BYTES).await;
        }
    }

    /// The payments of `date` that succeeded, by order number, each written as `record` makes it.
    async fn write_payments(
        &self,
        date: NaiveDate,
        w: &mut DayWriter,
        record: impl Fn(OrderRecord) -> DayRecord,
    ) -> Result<(), BankError> {
        let mut after = String::new();
        loop {
            let page = self
                .store
                .day_payments(date, &after, DAY_FILE_PAGE_ROWS)
                .await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.order_no.as_str().to_owned();
            for r in page {
                w.record(record(r))?;
            }
            w.send(SEND_CHUNK_BYTES).await;
        }
    }

    /// The refunds credited on `date`, by batch and line.
    async fn write_refunds(&self, date: NaiveDate, w: &mut DayWriter) -> Result<(), BankError> {
        let (mut batch, mut seq) = (String::new(), 0);
        loop {
            let page = self
                .store
                .day_refunds(date, (&batch, seq), DAY_FILE_PAGE_ROWS)
                .await?;
            let Some((last_seq, ClearingEntry::Refund { batch_no, .. })) = page.last() else {
                return Ok(());
            };
            (batch, seq) = (batch_no.as_str().to_owned(), *last_seq);
            for (_, entry) in page {
                w.record(DayRecord::Clearing(ClearingRecord { seq: 0, entry }))?;
            }
            w.send(SEND_CHUNK_BYTES).await;
        }
    }

    /// Where a prepared day file is kept.
    pub async fn day_file_path(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> Result<PathBuf, BankError> {
        let f = self
            .store
            .day_file(kind, date)
            .await?
            .ok_or(BankError::DayFileNotReady(kind.code(), date))?;
        Ok(self.files.path(Area::Recon, &f.file_name))
    }
}

/// A day file being written: numbers the records and adds them up, and its bytes go to the tee
/// too when it is streamed while built.
struct DayWriter {
    draft: Draft,
    sum: DayFigures,
    tee: Option<Tee>,
    /// The record being written, its buffer kept from one record to the next.
    text: String,
}

/// Where a day file streamed while built goes: its bytes not yet sent, and the stream.
struct Tee {
    tx: PieceSender,
    buf: Vec<u8>,
}

impl DayWriter {
    fn record(&mut self, mut rec: DayRecord) -> Result<(), BankError> {
        let seq = self.sum.records + 1;
        match &mut rec {
            DayRecord::SignUp(r) => r.seq = seq,
            DayRecord::Order(r) => r.seq = seq,
            DayRecord::Clearing(r) => r.seq = seq,
        }
        self.sum
            .add(&rec, seq + 1)
            .map_err(|e| anyhow::anyhow!("day file: {e}"))?;
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        rec.write_line(&mut text);
        let written = self.line(&text);
        self.text = text;
        written
    }

    /// Writes `line` to the draft (and the tee) as [`Draft::line`] does: the text, then `\n`.
    fn line(&mut self, line: &str) -> Result<(), BankError> {
        self.draft
            .line(line)
            .map_err(|e| BankError::Internal(e.into()))?;
        if let Some(t) = &mut self.tee {
            t.buf.extend_from_slice(line.as_bytes());
            t.buf.push(b'\n');
        }
        Ok(())
    }

    /// Sends the tee's bytes in pieces of [`SEND_CHUNK_BYTES`] while at least `min` wait (0:
    /// all of them). A caller gone leaves the build writing on, untee'd.
    async fn send(&mut self, min: usize) {
        let Some(t) = &mut self.tee else { return };
        while !t.buf.is_empty() && t.buf.len() >= min {
            let rest = t.buf.split_off(t.buf.len().min(SEND_CHUNK_BYTES));
            let piece = std::mem::replace(&mut t.buf, rest);
            if t.tx.send(Ok(DayFilePart::Bytes(piece))).await.is_err() {
                self.tee = None;
                return;
            }
        }
    }
}
