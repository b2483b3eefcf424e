//! Reconciliation with the bank, whose data is the truth (docs/reconciliation.md).
//!
//! Real-time: the bank streams its successful payments after the platform's cursor; each is
//! compared with the platform's order and the order adjusted to it; orders still pending after
//! the grace window are settled by the bank's status answer. Every change is an [`Adjustment`].
//!
//! T+1: the bank's sign-up, order and clearing files of a closed date are streamed while the bank
//! builds them and checked whole as they arrive, then compared line by line on the key both ways
//! (the file's keys are staged in the database so that what only the platform has is one query;
//! an order file is merged with the platform's orders instead, while it streams). Every
//! difference is a [`ReconCase`]; where the platform can take the bank's side it does so, once
//! the file has checked whole.
//!
//! - `realtime.rs`: the real-time pull and the pending orders settled by the bank's word;
//! - `receive.rs`: a day file streamed, kept, checked as it arrives, and an order file merged
//!   meanwhile with its decisions held;
//! - `day.rs`: a T+1 run: the day file compared chunk by chunk (or the held decisions of its
//!   merge made), the platform's own records, the clearing totals, the cases;
//! - `lines.rs`: one record of a day file against the platform's, and what the platform does;
//! - `compare.rs`: the pure decisions (how two records differ, what the bank's word makes of an
//!   order), tested with tables there.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use chrono::NaiveDate;
use shared::domain::{BatchNo, Email, OrderNo, PayAmount, RefundAmount, RefundId, SignUpId};
use shared::files::recon::{
    ClearingEntry, DayFileKind, DayRecord, OrderRecord, SignUpEvent, SignUpRecord, check_day_file,
};
use shared::files::{Area, LineReader, ReadError, Upload};
use shared::{BankReason, ErrorClass, Money, PeerFailure, PeerRefusal};
use tracing::Instrument;

use super::refund::{RefundLineStatus, blocking};
use super::{
    BankPayment, BoxFuture, CardLink, LinkStatus, Order, OrderStatus, PayOrder, Platform,
    PlatformError, relay,
};

mod compare;
mod day;
mod lines;
mod realtime;
mod receive;

pub use compare::{DayOrderFacts, OrderDiff, PlatformRefund, order_vs_bank};
use compare::{
    LinkFix, bank_success_state, clearing_payment_category, clearing_refund_category,
    fix_by_bank_word, fix_platform_only_link, fix_state, fix_to_bank_payment, link_from_bank,
    link_state, order_case_amount, order_category, order_from_bank, order_state,
    signup_record_state, signup_verdict,
};

/// The cursor name of the real-time pull.
const REALTIME_CURSOR: &str = "realtime";
/// Streams of the bank's payments one real-time run reads at most.
const STREAMS_PER_RUN_MAX: usize = 20;
/// Pending orders asked about per real-time run at most.
const PENDING_PER_RUN_MAX: u32 = 1000;
/// Records compared per chunk of a day file.
const COMPARE_CHUNK: usize = 500;
/// Records the platform alone has, read per page.
const PLATFORM_ONLY_PAGE: u32 = 500;
/// Cases a run's answer lists at most.
pub const REPORT_CASES_MAX: usize = 1000;
/// The shortest grace window: longer than a one-time code lives (5 minutes), so that an order
/// failed for want of a bank payment can no longer be paid.
pub const GRACE_SECS_MIN: u64 = 360;

/// A successful payment as the bank streams it.
#[derive(Debug, Clone)]
pub struct BankSuccess {
    /// Its place in the bank's commit order.
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
}

/// A page of the bank's stream.
#[derive(Debug, Clone)]
pub struct BankPage {
    /// The payments, in commit order.
    pub payments: Vec<BankSuccess>,
    /// The cursor after the page.
    pub last_seq: u64,
    /// A full page: more may be waiting after it.
    pub full: bool,
}

/// A day file the bank has prepared.
#[derive(Debug, Clone)]
pub struct BankDayFile {
    /// SHA-256, hex.
    pub sha256: String,
    /// Size, bytes.
    pub size: u64,
    /// Record lines.
    pub records: u64,
}

/// The bank's reconciliation services, as the platform calls them.
pub trait BankRecon: Send + Sync {
    /// The bank's successful payments after `after`, page by page (the channel holds a page or
    /// two); a broken stream ends with an `Err` page.
    fn payment_pages(
        &self,
        after: u64,
    ) -> BoxFuture<
        '_,
        Result<tokio::sync::mpsc::Receiver<Result<BankPage, PeerFailure>>, PeerFailure>,
    >;
    /// Streams the bank's `kind` file of `date` while the bank builds it (or as kept): its bytes,
    /// then its description; a broken stream ends with an `Err` piece, a cut one without
    /// [`DayFilePiece::Done`].
    fn stream_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> BoxFuture<'_, Result<DayFilePieces, PeerFailure>>;
}

/// A piece of the bank's day file, streamed while the bank builds it.
#[derive(Debug)]
pub enum DayFilePiece {
    /// The next bytes, in order.
    Bytes(Vec<u8>),
    /// The last piece: what the bytes must add up to.
    Done(BankDayFile),
}

/// The pieces of a day file as they arrive (the channel holds a few).
pub type DayFilePieces = tokio::sync::mpsc::Receiver<Result<DayFilePiece, PeerFailure>>;

/// A change reconciliation made.
#[derive(Debug, Clone)]
pub struct Adjustment {
    /// Its id.
    pub id: String,
    /// ORDER or SIGNUP.
    pub record_kind: String,
    /// The order number or sign-up id.
    pub record_key: String,
    /// The record before ("-": none).
    pub before: String,
    /// The record after.
    pub after: String,
    /// REALTIME or T1_<kind>.
    pub source: String,
    /// Why.
    pub reason: String,
    /// The case it resolved.
    pub case_id: Option<String>,
    /// When, ms.
    pub at_ms: i64,
}

shared::domain::coded_enum!(
    /// A difference's category, relative to the bank.
    #[derive(PartialOrd, Ord)]
    CaseCategory {
        /// The bank has it, the platform does not.
        BankOnly = "BANK_ONLY",
        /// The platform has it, the bank does not.
        PlatformOnly = "PLATFORM_ONLY",
        /// Amounts differ.
        AmountDiffers = "AMOUNT_DIFFERS",
        /// Statuses differ.
        StatusDiffers = "STATUS_DIFFERS",
        /// Another field differs.
        DetailDiffers = "DETAIL_DIFFERS",
        /// Clearing totals differ.
        TotalsDiffer = "TOTALS_DIFFER",
    }
);

shared::domain::coded_enum!(
    /// Where a case stands.
    CaseStatus {
        /// The platform took the bank's side.
        AutoResolved = "AUTO_RESOLVED",
        /// Staff must act.
        NeedsStaff = "NEEDS_STAFF",
        /// Closed by staff.
        Closed = "CLOSED",
    }
);

/// An error case (差错).
#[derive(Debug, Clone)]
pub struct ReconCase {
    /// Its id.
    pub case_id: String,
    /// The run that last found it.
    pub run_id: String,
    /// The file.
    pub kind: DayFileKind,
    /// The date reconciled.
    pub business_date: NaiveDate,
    /// The record's key.
    pub record_key: String,
    /// The category.
    pub category: CaseCategory,
    /// The bank's record ("-": none).
    pub bank_record: String,
    /// The platform's record ("-": none).
    pub platform_record: String,
    /// The money at stake.
    pub amount: Money,
    /// What the platform did.
    pub action: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// Staff's note.
    pub note: Option<String>,
    /// When found first, ms.
    pub created_at_ms: i64,
    /// When closed, ms.
    pub closed_at_ms: Option<i64>,
}

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only this status.
    pub status: Option<CaseStatus>,
    /// Only this date.
    pub business_date: Option<NaiveDate>,
    /// Only this run.
    pub run_id: Option<String>,
    /// After this id.
    pub after_case_id: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// What an order becomes.
#[derive(Debug, Clone)]
pub struct OrderFix {
    /// Status.
    pub status: OrderStatus,
    /// Amount.
    pub amount: PayAmount,
    /// Serial number.
    pub serial: Option<String>,
    /// Business date.
    pub business_date: Option<NaiveDate>,
    /// Refusal, for FAILED.
    pub failure: Option<PeerRefusal>,
}

/// What a real-time run did.
#[derive(Debug, Clone, Default)]
pub struct RealtimeReport {
    /// The cursor before.
    pub cursor_before: u64,
    /// The cursor after.
    pub cursor_after: u64,
    /// Payments streamed.
    pub payments_seen: u64,
    /// Pending orders asked about.
    pub pending_checked: u64,
    /// Of those, the ones the bank gave no answer for (left pending).
    pub pending_unanswered: u64,
    /// Adjustments made.
    pub adjustments: Vec<Adjustment>,
    /// Bank payments left to T+1.
    pub left_for_t1: u64,
}

/// One file's T+1 run.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The file.
    pub kind: DayFileKind,
    /// The run's id.
    pub run_id: String,
    /// The file's SHA-256.
    pub sha256: String,
    /// Its records.
    pub records: u64,
    /// Records that agreed.
    pub matched: u64,
    /// Per category: cases and amount.
    pub categories: BTreeMap<CaseCategory, (u64, Money)>,
    /// Cases auto-resolved.
    pub auto_resolved: u64,
    /// Cases needing staff.
    pub needs_staff: u64,
}

/// One T+1 run of one file, as recorded (`ListDayRuns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRun {
    /// The run's id.
    pub run_id: String,
    /// The file.
    pub kind: DayFileKind,
    /// The date compared.
    pub date: NaiveDate,
    /// The bank's file's SHA-256.
    pub sha256: String,
    /// Its records.
    pub records: u64,
    /// Records that agreed (when done).
    pub matched: u64,
    /// Cases found (when done).
    pub cases: u64,
    /// When it started, ms.
    pub started_at_ms: i64,
    /// When it finished, ms; `None` while it runs or if it stopped on an error.
    pub done_at_ms: Option<i64>,
}

/// The most runs `ListDayRuns` answers.
pub const DAY_RUNS_MAX: u32 = 100;

/// A T+1 run's report.
#[derive(Debug, Clone)]
pub struct DayReport {
    /// The date.
    pub business_date: NaiveDate,
    /// One per file.
    pub files: Vec<FileReport>,
    /// The cases found (at most [`REPORT_CASES_MAX`]).
    pub cases: Vec<ReconCase>,
    /// Whether more were found than listed.
    pub truncated: bool,
}

/// Reconciliation settings.
#[derive(Debug, Clone, Copy)]
pub struct ReconSettings {
    /// How long an order may stay pending before the bank's word settles it, ms.
    pub grace_ms: i64,
    /// The most decisions a T+1 order file's merge holds while the file streams.
    pub held_max: usize,
}

/// A new id: `prefix` and 16 random hex digits.
fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        hex::encode(rand::random::<[u8; 8]>()).to_uppercase()
    )
}

/// Where a T+1 run is: its identity and its tallies.
struct Run {
    id: String,
    kind: DayFileKind,
    date: NaiveDate,
    matched: u64,
    report: FileReport,
    cases: Vec<ReconCase>,
    truncated: bool,
}

/// Where adjustments come from: REALTIME or a T+1 file (`T1_<kind>`, with the case each
/// resolves), and when.
struct Source<'a> {
    name: &'a str,
    case_id: Option<&'a str>,
    at_ms: i64,
}

impl Source<'_> {
    /// The adjustment of the record `kind` (ORDER or SIGNUP) `key` from `before` to `after`.
    fn adjust(
        &self,
        kind: &str,
        key: &str,
        before: String,
        after: String,
        reason: &str,
    ) -> Adjustment {
        Adjustment {
            id: new_id("AJ"),
            record_kind: kind.to_owned(),
            record_key: key.to_owned(),
            before,
            after,
            source: self.name.to_owned(),
            reason: reason.to_owned(),
            case_id: self.case_id.map(str::to_owned),
            at_ms: self.at_ms,
        }
    }
}

/// A difference found, before it is acted on.
struct Finding {
    key: String,
    category: CaseCategory,
    bank: String,
    platform: String,
    amount: Money,
}

impl Platform {
    /// Adjustments, newest first.
    pub async fn adjustments(
        &self,
        key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Adjustment>, PlatformError> {
        Ok(self.store.adjustments(key, limit).await?)
    }

    /// Cases as filtered.
    pub async fn cases(&self, f: &CaseFilter) -> Result<Vec<ReconCase>, PlatformError> {
        Ok(self.store.cases(f).await?)
    }

    /// Staff close a case.
    pub async fn close_case(&self, case_id: &str, note: &str) -> Result<ReconCase, PlatformError> {
        let c = self
            .store
            .case(case_id)
            .await?
            .ok_or(PlatformError::CaseNotFound)?;
        if c.status == CaseStatus::Closed
            || !self
                .store
                .close_case(case_id, note, self.clock.now_ms())
                .await?
        {
            return Err(PlatformError::CaseClosed);
        }
        tracing::info!(case_id, "case closed by staff");
        self.store
            .case(case_id)
            .await?
            .ok_or(PlatformError::CaseNotFound)
    }

    /// An operator writes a SUCCESS order by hand, bypassing the bank (error-handling drills).
    pub async fn write_manual_order(
        &self,
        order_no: OrderNo,
        email: Email,
        signup_id: SignUpId,
        amount: PayAmount,
        date: NaiveDate,
    ) -> Result<(), PlatformError> {
        self.account(&email).await?;
        let now = self.clock.now_ms();
        let order = Order {
            order_no,
            email,
            signup_id,
            card_masked: "0000000000000000".into(),
            amount,
            description: "written by hand by an operator".into(),
            status: OrderStatus::Success,
            mobile_masked: None,
            code_expires_at_ms: None,
            serial: Some(format!(
                "MANUAL{}",
                hex::encode(rand::random::<[u8; 6]>()).to_uppercase()
            )),
            business_date: Some(date),
            failure: None,
            created_at_ms: now,
            updated_at_ms: now,
            refunded: Money::ZERO,
        };
        if !self.store.insert_manual_order(&order).await? {
            return Err(PlatformError::OrderNoReused);
        }
        tracing::warn!(order_no = %order.order_no, "order written by hand, bypassing the bank");
        Ok(())
    }

    /// The T+1 runs of `date` by start time, at most [`DAY_RUNS_MAX`].
    pub async fn day_runs(&self, date: NaiveDate) -> Result<Vec<DayRun>, PlatformError> {
        Ok(self.store.day_runs(date, DAY_RUNS_MAX).await?)
    }
}

/// What became of a bank payment.
enum Taken {
    /// The platform agreed already.
    Same,
    /// The platform's order was adjusted.
    Adjusted(Adjustment),
    /// The platform could not take it on, and why.
    Left(String),
}
