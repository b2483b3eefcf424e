//! What the bank gives reconciliation: its successful payments in commit order (the platform's
//! real-time pull), and the T+1 files of a closed business date, each built once from the ledger
//! and kept in the file store.

use std::path::PathBuf;

use chrono::NaiveDate;
use shared::Money;
use shared::domain::{Email, OrderNo, PayAmount, SignUpId};
use shared::files::recon::{
    ClearingEntry, ClearingRecord, DayFigures, DayFileKind, DayHeader, DayRecord, SignUpEvent,
};
use shared::files::{Area, Draft, Received};

use super::{Bank, BankError, DayStatus};

/// Rows read from the database at a time while a day file is written.
const DAY_FILE_PAGE_ROWS: u32 = 1000;

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
        let _one_build_at_a_time = self.day_files.lock().await;
        if let Some(f) = self.store.day_file(kind, date).await? {
            return Ok(f);
        }
        let (received, figures) = self.write_day_file(kind, date).await?;
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
            return self
                .store
                .day_file(kind, date)
                .await?
                .ok_or_else(|| anyhow::anyhow!("day file vanished after a conflict").into());
        }
        tracing::info!(
            kind = kind.code(),
            %date,
            records = info.records,
            sha256 = %info.sha256,
            "day file built"
        );
        Ok(info)
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
        };
        w.draft.line(&header.to_line()).map_err(io)?;
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
        let received: Received = w.draft.finish().map_err(io)?;
        Ok((received, figures))
    }

    async fn write_records(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
        w: &mut DayWriter,
    ) -> Result<(), BankError> {
        match kind {
            DayFileKind::SignUp => {
                for event in [SignUpEvent::Signed, SignUpEvent::Cancelled] {
                    let mut after = String::new();
                    loop {
                        let page = self
                            .store
                            .signup_events(date, event, &after, DAY_FILE_PAGE_ROWS)
                            .await?;
                        let Some(last) = page.last() else { break };
                        after = last.signup_id.to_string();
                        for r in page {
                            w.record(DayRecord::SignUp(r))?;
                        }
                    }
                }
            }
            DayFileKind::Order | DayFileKind::Clearing => {
                let mut after = String::new();
                loop {
                    let page = self
                        .store
                        .day_payments(date, &after, DAY_FILE_PAGE_ROWS)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = last.order_no.as_str().to_owned();
                    for r in page {
                        w.record(if kind == DayFileKind::Order {
                            DayRecord::Order(r)
                        } else {
                            DayRecord::Clearing(ClearingRecord {
                                seq: 0,
                                entry: ClearingEntry::Payment {
                                    order_no: r.order_no,
                                    serial: r.serial,
                                    amount: r.amount,
                                },
                            })
                        })?;
                    }
                }
                if kind == DayFileKind::Clearing {
                    let (mut batch, mut seq) = (String::new(), 0);
                    loop {
                        let page = self
                            .store
                            .day_refunds(date, (&batch, seq), DAY_FILE_PAGE_ROWS)
                            .await?;
                        let Some((last_seq, ClearingEntry::Refund { batch_no, .. })) = page.last()
                        else {
                            break;
                        };
                        (batch, seq) = (batch_no.as_str().to_owned(), *last_seq);
                        for (_, entry) in page {
                            w.record(DayRecord::Clearing(ClearingRecord { seq: 0, entry }))?;
                        }
                    }
                }
            }
        }
        Ok(())
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

/// A day file being written: numbers the records and adds them up.
struct DayWriter {
    draft: Draft,
    sum: DayFigures,
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
        self.draft
            .line(&rec.to_line())
            .map_err(|e| BankError::Internal(e.into()))
    }
}
