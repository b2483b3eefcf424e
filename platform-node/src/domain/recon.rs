//! Reconciliation with the bank, whose data is the truth (docs/reconciliation.md).
//!
//! Real-time: the bank streams its successful payments after the platform's cursor; each is
//! compared with the platform's order and the order adjusted to it; orders still pending after
//! the grace window are settled by the bank's status answer. Every change is an [`Adjustment`].
//!
//! T+1: the bank's sign-up, order and clearing files of a closed date are downloaded, checked
//! whole, then compared line by line on the key both ways (the file's keys are staged in the
//! database so that what only the platform has is one query). Every difference is a
//! [`ReconCase`]; where the platform can take the bank's side it does so at once.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use chrono::NaiveDate;
use shared::domain::{Email, OrderNo, PayAmount};
use shared::files::recon::{
    ClearingEntry, DayFileKind, DayRecord, OrderRecord, SignUpEvent, SignUpRecord, check_day_file,
};
use shared::files::{Area, LineReader, ReadError, Upload};
use shared::{ErrorClass, Money, PeerFailure, PeerRefusal};
use tracing::Instrument;

use super::refund::blocking;
use super::{
    BankPayment, BoxFuture, CardLink, LinkStatus, Order, OrderStatus, PayOrder, Platform,
    PlatformError, relay,
};

/// The cursor name of the real-time pull.
const REALTIME_CURSOR: &str = "realtime";
/// Streams of the bank's payments one real-time run reads at most.
const STREAMS_PER_RUN_MAX: usize = 20;
/// Pending orders asked about per real-time run at most.
const PENDING_PER_RUN_MAX: u32 = 1000;
/// Records compared per chunk of a day file.
const COMPARE_CHUNK: usize = 500;
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
    pub signup_id: String,
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
    /// Asks the bank to prepare a day file.
    fn prepare_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> BoxFuture<'_, Result<BankDayFile, PeerFailure>>;
    /// Streams a prepared day file into `into`.
    fn download_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
        into: Upload,
    ) -> BoxFuture<'_, Result<Result<Upload, ReadError>, PeerFailure>>;
}

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
}

fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        hex::encode(rand::random::<[u8; 8]>()).to_uppercase()
    )
}

fn order_state(o: &Order) -> String {
    let mut s = format!("{} {}", o.status.code(), o.amount);
    if let Some(serial) = &o.serial {
        s.push_str(&format!(" serial {serial}"));
    }
    if let Some(d) = o.business_date {
        s.push_str(&format!(" date {d}"));
    }
    s
}

fn fix_state(f: &OrderFix) -> String {
    let mut s = format!("{} {}", f.status.code(), f.amount);
    if let Some(serial) = &f.serial {
        s.push_str(&format!(" serial {serial}"));
    }
    if let Some(d) = f.business_date {
        s.push_str(&format!(" date {d}"));
    }
    if let Some(r) = &f.failure {
        s.push_str(&format!(" {}", r.reason));
    }
    s
}

fn link_state(l: &CardLink) -> String {
    let date = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    format!(
        "{} {} {} signed {} cancelled {}",
        l.status.code(),
        l.email.as_str(),
        l.card_masked,
        date(l.business_date),
        date(l.cancelled_date)
    )
}

fn bank_success_state(b: &BankSuccess) -> String {
    format!(
        "SUCCESS {} serial {} date {} account {}",
        b.amount,
        b.serial,
        b.business_date,
        b.account.as_str()
    )
}

fn signup_record_state(r: &SignUpRecord) -> String {
    format!(
        "{} {} {} {}",
        r.event.code(),
        r.account.as_str(),
        r.card_masked,
        r.real_name.as_str()
    )
}

/// How a platform order stands against the bank's successful payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderDiff {
    /// They agree.
    Same,
    /// The platform has no such order.
    Missing,
    /// The order is another account's: not for the platform to change by itself.
    OtherAccount,
    /// The platform's order is not SUCCESS.
    Status,
    /// The amounts differ.
    Amount,
    /// Serial number or date differ.
    Detail,
}

/// Compares a platform order with the bank's successful payment of the same number.
pub fn order_vs_bank(o: Option<&Order>, b: &BankSuccess) -> OrderDiff {
    let Some(o) = o else {
        return OrderDiff::Missing;
    };
    if o.email != b.account {
        OrderDiff::OtherAccount
    } else if o.status != OrderStatus::Success {
        OrderDiff::Status
    } else if o.amount != b.amount {
        OrderDiff::Amount
    } else if o.serial.as_deref() != Some(b.serial.as_str())
        || o.business_date != Some(b.business_date)
    {
        OrderDiff::Detail
    } else {
        OrderDiff::Same
    }
}

impl From<&OrderRecord> for BankSuccess {
    fn from(r: &OrderRecord) -> BankSuccess {
        BankSuccess {
            seq: 0,
            order_no: r.order_no.clone(),
            serial: r.serial.clone(),
            signup_id: r.signup_id.clone(),
            account: r.account.clone(),
            card_masked: r.card_masked.clone(),
            amount: r.amount,
            business_date: r.paid_at.date(),
        }
    }
}

/// What the bank's word on a payment makes of a platform order, and why: SUCCESS with the
/// bank's serial number and date; FAILED with the bank's own reason; FAILED `RECON_NOT_PAID` for a
/// code sent and never used; FAILED `RECON_NO_BANK_RECORD` for no record. `None`: no answer.
fn fix_by_bank_word(
    o: &Order,
    answer: Result<BankPayment, PeerFailure>,
) -> Option<(OrderFix, &'static str)> {
    let failed = |failure: PeerRefusal| OrderFix {
        status: OrderStatus::Failed,
        amount: o.amount,
        serial: None,
        business_date: None,
        failure: Some(failure),
    };
    let ours = |reason: &str, message: &str| PeerRefusal {
        class: ErrorClass::FailedPrecondition,
        reason: reason.to_owned(),
        message: message.to_owned(),
        domain: super::DOMAIN.to_owned(),
    };
    Some(match answer {
        Ok(BankPayment::Success { serial, date }) => (
            OrderFix {
                status: OrderStatus::Success,
                amount: o.amount,
                serial: Some(serial),
                business_date: Some(date),
                failure: None,
            },
            "the bank has the payment as successful",
        ),
        Ok(BankPayment::Failed(r)) => (failed(r), "the bank has the payment as failed"),
        Ok(BankPayment::CodeSent) => (
            failed(ours(
                "RECON_NOT_PAID",
                "the bank never debited the payment and its one-time code has expired",
            )),
            "the bank has no successful payment",
        ),
        Err(PeerFailure::Refused(r)) if r.reason == "PAYMENT_NOT_FOUND" => (
            failed(ours(
                "RECON_NO_BANK_RECORD",
                "the bank has no record of the payment",
            )),
            "the bank has no record of the payment",
        ),
        Err(_) => return None,
    })
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

/// A difference found, before it is acted on.
struct Finding {
    key: String,
    category: CaseCategory,
    bank: String,
    platform: String,
    amount: Money,
}

impl Platform {
    /// Runs real-time reconciliation: pulls the bank's successful payments after the cursor and
    /// adjusts the platform's orders to them, then settles the orders pending past the grace
    /// window by the bank's word. One run at a time.
    pub async fn recon_realtime(&self) -> Result<RealtimeReport, PlatformError> {
        let platform = self.clone();
        tokio::spawn(shared::trace::inherit(
            async move {
                let _one_at_a_time = platform.realtime.lock().await;
                platform.realtime_run().await
            }
            .in_current_span(),
        ))
        .await
        .map_err(anyhow::Error::from)?
    }

    async fn realtime_run(&self) -> Result<RealtimeReport, PlatformError> {
        let mut report = RealtimeReport {
            cursor_before: self.store.cursor(REALTIME_CURSOR).await?,
            ..RealtimeReport::default()
        };
        report.cursor_after = report.cursor_before;
        // A stream ends when the bank has caught up, or after its most pages: then ask again
        // from the cursor, a bounded number of times per run (the next run goes on).
        for _ in 0..STREAMS_PER_RUN_MAX {
            let more = self.apply_payment_stream(&mut report).await?;
            if !more {
                break;
            }
        }
        self.settle_stale_pending(&mut report).await?;
        for a in &report.adjustments {
            self.metrics().inc(
                "ibsim_recon_adjustments_total",
                &[("record_kind", a.record_kind.as_str())],
            );
        }
        if !report.adjustments.is_empty() {
            tracing::info!(
                adjustments = report.adjustments.len(),
                cursor = report.cursor_after,
                "real-time reconciliation adjusted orders"
            );
        }
        Ok(report)
    }

    /// Applies one stream of the bank's pages from the cursor; whether its last page was full
    /// (more may be waiting).
    async fn apply_payment_stream(
        &self,
        report: &mut RealtimeReport,
    ) -> Result<bool, PlatformError> {
        let mut pages = self
            .bank_recon
            .payment_pages(report.cursor_after)
            .await
            .map_err(|f| relay(f, "run reconciliation again later"))?;
        let mut last_full = false;
        while let Some(page) = pages.recv().await {
            let page =
                page.map_err(|f| relay(f, "the cursor stays at the last page applied: run again"))?;
            last_full = page.full;
            report.payments_seen += page.payments.len() as u64;
            let numbers: Vec<&str> = page.payments.iter().map(|p| p.order_no.as_str()).collect();
            let orders = self.store.orders_by_number(&numbers).await?;
            for b in &page.payments {
                let span = tracing::info_span!("recon.realtime", order_no = %b.order_no);
                let adj = self
                    .take_bank_payment(orders.get(b.order_no.as_str()), b, "REALTIME", None)
                    .instrument(span)
                    .await?;
                match adj {
                    Taken::Adjusted(a) => report.adjustments.push(a),
                    Taken::Same => {}
                    Taken::Left(why) => {
                        tracing::warn!(order_no = %b.order_no, why, "bank payment left to T+1");
                        report.left_for_t1 += 1;
                    }
                }
            }
            self.store
                .advance_cursor(REALTIME_CURSOR, page.last_seq, self.clock.now_ms())
                .await?;
            report.cursor_after = page.last_seq;
        }
        Ok(last_full)
    }

    /// Takes the bank's successful payment `b` for the platform's order `o`: records the order
    /// if missing (its account must exist), otherwise sets status, amount, serial and date to
    /// the bank's. Never changes another account's order.
    async fn take_bank_payment(
        &self,
        o: Option<&Order>,
        b: &BankSuccess,
        source: &str,
        case_id: Option<&str>,
    ) -> Result<Taken, PlatformError> {
        let mut current = o.cloned();
        for _ in 0..3 {
            let diff = order_vs_bank(current.as_ref(), b);
            let now = self.clock.now_ms();
            let adj = |before: String, after: String, reason: &str| Adjustment {
                id: new_id("AJ"),
                record_kind: "ORDER".into(),
                record_key: b.order_no.as_str().to_owned(),
                before,
                after,
                source: source.to_owned(),
                reason: reason.to_owned(),
                case_id: case_id.map(str::to_owned),
                at_ms: now,
            };
            let done = match (diff, &current) {
                (OrderDiff::Same, _) => return Ok(Taken::Same),
                (OrderDiff::OtherAccount, Some(o)) => {
                    return Ok(Taken::Left(format!(
                        "the platform's order {} is account {}'s, the bank's payment account {}'s",
                        o.order_no,
                        o.email.as_str(),
                        b.account.as_str()
                    )));
                }
                (OrderDiff::Missing, _) => {
                    if !self.store.account_exists(&b.account).await? {
                        return Ok(Taken::Left(format!(
                            "no platform account {}",
                            b.account.as_str()
                        )));
                    }
                    let order = Order {
                        order_no: b.order_no.clone(),
                        email: b.account.clone(),
                        signup_id: b.signup_id.clone(),
                        card_masked: b.card_masked.clone(),
                        amount: b.amount,
                        description: "recorded by reconciliation from the bank's payment".into(),
                        status: OrderStatus::Success,
                        mobile_masked: None,
                        code_expires_at_ms: None,
                        serial: Some(b.serial.clone()),
                        business_date: Some(b.business_date),
                        failure: None,
                        created_at_ms: now,
                        updated_at_ms: now,
                        refunded: Money::ZERO,
                    };
                    let a = adj(
                        "-".into(),
                        order_state(&order),
                        "the bank has a successful payment the platform had no order for",
                    );
                    self.store
                        .insert_recon_order(&order, &a)
                        .await?
                        .then_some(a)
                }
                (_, Some(o)) => {
                    let fix = OrderFix {
                        status: OrderStatus::Success,
                        amount: b.amount,
                        serial: Some(b.serial.clone()),
                        business_date: Some(b.business_date),
                        failure: None,
                    };
                    let reason = match diff {
                        OrderDiff::Status => "the bank has the payment as successful",
                        OrderDiff::Amount => "the bank debited another amount",
                        _ => "the bank's serial number or date differ",
                    };
                    let a = adj(order_state(o), fix_state(&fix), reason);
                    self.store.fix_order(o, &fix, &a).await?.then_some(a)
                }
                (_, None) => unreachable!("only Missing has no order"),
            };
            if let Some(a) = done {
                tracing::info!(order_no = %b.order_no, before = %a.before, after = %a.after, source, "order adjusted to the bank's");
                return Ok(Taken::Adjusted(a));
            }
            // The order changed (or appeared) meanwhile: look again.
            current = self.store.order(&b.order_no).await?;
        }
        Ok(Taken::Left("the order kept changing".into()))
    }

    /// Orders pending past the grace window: the bank's word settles them.
    async fn settle_stale_pending(&self, report: &mut RealtimeReport) -> Result<(), PlatformError> {
        let cutoff = self.clock.now_ms().saturating_sub(self.recon.grace_ms);
        let stale = self
            .store
            .stale_pending_orders(cutoff, "", PENDING_PER_RUN_MAX)
            .await?;
        for o in stale {
            report.pending_checked += 1;
            let span = tracing::info_span!("recon.pending", order_no = %o.order_no);
            let answer = self
                .bank
                .get_payment(&PayOrder::from(&o))
                .instrument(span)
                .await;
            let Some((fix, why)) = fix_by_bank_word(&o, answer) else {
                tracing::info!(order_no = %o.order_no, "pending order not settled: no answer from the bank");
                continue;
            };
            let a = Adjustment {
                id: new_id("AJ"),
                record_kind: "ORDER".into(),
                record_key: o.order_no.as_str().to_owned(),
                before: order_state(&o),
                after: fix_state(&fix),
                source: "REALTIME".into(),
                reason: why.into(),
                case_id: None,
                at_ms: self.clock.now_ms(),
            };
            if self.store.fix_order(&o, &fix, &a).await? {
                tracing::info!(order_no = %o.order_no, before = %a.before, after = %a.after, "pending order settled by the bank's word");
                report.adjustments.push(a);
            }
        }
        Ok(())
    }

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
        signup_id: String,
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

    /// Runs T+1 reconciliation of `date` for `kinds` (in the order SIGNUP, ORDER, CLEARING).
    pub async fn recon_day(
        &self,
        date: NaiveDate,
        kinds: &[DayFileKind],
    ) -> Result<DayReport, PlatformError> {
        let platform = self.clone();
        let mut kinds = kinds.to_vec();
        if kinds.is_empty() {
            kinds = DayFileKind::ALL.to_vec();
        }
        kinds.sort();
        kinds.dedup();
        tokio::spawn(shared::trace::inherit(
            async move {
                let _one_at_a_time = platform.day_recon.lock().await;
                let mut report = DayReport {
                    business_date: date,
                    files: Vec::new(),
                    cases: Vec::new(),
                    truncated: false,
                };
                for kind in kinds {
                    let span = tracing::info_span!("recon.day", kind = kind.code(), %date);
                    let run = platform.recon_file(kind, date).instrument(span).await?;
                    report.truncated |= run.truncated;
                    for c in run.cases {
                        if report.cases.len() < REPORT_CASES_MAX {
                            report.cases.push(c);
                        } else {
                            report.truncated = true;
                        }
                    }
                    for (category, (n, _)) in &run.report.categories {
                        platform.metrics().add(
                            "ibsim_recon_cases_total",
                            &[("kind", kind.code()), ("category", category.code())],
                            *n,
                        );
                    }
                    report.files.push(run.report);
                }
                Ok(report)
            }
            .in_current_span(),
        ))
        .await
        .map_err(anyhow::Error::from)?
    }

    async fn recon_file(&self, kind: DayFileKind, date: NaiveDate) -> Result<Run, PlatformError> {
        let file = self
            .bank_recon
            .prepare_day_file(kind, date)
            .await
            .map_err(|f| relay(f, "ask again later"))?;
        let corrupt = |e: &dyn std::fmt::Display| PlatformError::FileCorrupt(e.to_string());
        let upload = self
            .files
            .receive(&file.sha256, file.size)
            .map_err(|e| corrupt(&e))?;
        let upload = match self.bank_recon.download_day_file(kind, date, upload).await {
            Ok(Ok(u)) => u,
            Ok(Err(e)) => return Err(corrupt(&e)),
            Err(f) => return Err(relay(f, "ask again later")),
        };
        let received = upload.finish().map_err(|e| corrupt(&e))?;
        let reader = received.reader().map_err(ReadError::from)?;
        let (header, ascending) = blocking(move || {
            // Whether every key is greater than the one before, byte by byte.
            let (mut last, mut ascending) = (String::new(), true);
            let header = check_day_file(reader, kind, date, |r| {
                let key = r.key();
                ascending &= key > last;
                last = key;
                Ok::<_, Infallible>(())
            });
            header.map(|h| (h, ascending))
        })
        .await?
        .map_err(|e| corrupt(&e))?;
        let header = header.unwrap_or_else(|never| match never {});
        if header.figures.records != file.records {
            return Err(corrupt(&format!(
                "the bank announced {} records, the file holds {}",
                file.records, header.figures.records
            )));
        }
        let name = kind.file_name(date);
        let mut run = Run {
            id: new_id(&format!("RUN{}", date.format("%Y%m%d"))),
            kind,
            date,
            matched: 0,
            report: FileReport {
                kind,
                run_id: String::new(),
                sha256: file.sha256.clone(),
                records: file.records,
                matched: 0,
                categories: BTreeMap::new(),
                auto_resolved: 0,
                needs_staff: 0,
            },
            cases: Vec::new(),
            truncated: false,
        };
        run.report.run_id = run.id.clone();
        self.store
            .insert_run(
                &run.id,
                kind,
                date,
                &file.sha256,
                file.records,
                self.clock.now_ms(),
            )
            .await?;
        // The bank writes its order file by order number: merged with the platform's orders
        // read in the same order, no key is staged (see `merge_orders`).
        let outcome = if kind == DayFileKind::Order && ascending && self.store.bytewise() {
            self.merge_orders(&mut run, &received).await
        } else {
            self.compare_file(&mut run, &received, &header.figures)
                .await
        };
        if let Err(e) = outcome {
            self.store.drop_staging(&run.id).await?;
            return Err(e);
        }
        let files = self.files.clone();
        blocking(move || received.keep(&files, Area::Recon, &name))
            .await?
            .map_err(anyhow::Error::from)?;
        let cases = run.report.auto_resolved + run.report.needs_staff;
        run.report.matched = run.matched;
        self.store
            .finish_run(&run.id, run.matched, cases, self.clock.now_ms())
            .await?;
        tracing::info!(
            run_id = %run.id,
            records = file.records,
            matched = run.matched,
            auto_resolved = run.report.auto_resolved,
            needs_staff = run.report.needs_staff,
            "T+1 reconciliation run done"
        );
        Ok(run)
    }

    async fn compare_file(
        &self,
        run: &mut Run,
        received: &shared::files::Received,
        bank_figures: &shared::files::recon::DayFigures,
    ) -> Result<(), PlatformError> {
        let mut lines = LineReader::new(received.reader().map_err(ReadError::from)?);
        lines.next_line()?;
        let mut chunk = Vec::with_capacity(COMPARE_CHUNK);
        loop {
            let next = match lines.next_line()? {
                Some((no, text)) => Some(DayRecord::parse(run.kind, no, text)?),
                None => None,
            };
            let end = next.is_none();
            chunk.extend(next);
            if chunk.len() == COMPARE_CHUNK || (end && !chunk.is_empty()) {
                let keys: Vec<String> = chunk.iter().map(DayRecord::key).collect();
                self.store.stage_keys(&run.id, &keys).await?;
                self.compare_chunk(run, &chunk).await?;
                chunk.clear();
            }
            if end {
                break;
            }
        }
        self.platform_only(run).await?;
        if run.kind == DayFileKind::Clearing {
            self.compare_totals(run, bank_figures).await?;
        }
        Ok(())
    }

    /// Compares an order file whose order numbers ascend with the platform's SUCCESS orders of
    /// the date, read in the same order: chunk by chunk, the platform's orders numbered up to
    /// the chunk's last are either in the chunk (compared with their record) or the platform's
    /// alone; a record whose order is not among them is looked up by number (a break, rare).
    /// Every order numbered up to a chunk's last is decided before the next chunk is read, so an
    /// order a case sets to the bank's is never met again. Memory: a chunk and a page.
    async fn merge_orders(
        &self,
        run: &mut Run,
        received: &shared::files::Received,
    ) -> Result<(), PlatformError> {
        let mut lines = LineReader::new(received.reader().map_err(ReadError::from)?);
        lines.next_line()?;
        let mut decided = String::new();
        let mut chunk = Vec::with_capacity(COMPARE_CHUNK);
        loop {
            let next = match lines.next_line()? {
                Some((no, text)) => match DayRecord::parse(run.kind, no, text)? {
                    DayRecord::Order(o) => Some(o),
                    _ => None,
                },
                None => None,
            };
            let end = next.is_none();
            chunk.extend(next);
            if chunk.len() == COMPARE_CHUNK || (end && !chunk.is_empty()) {
                let upto = chunk
                    .last()
                    .map(|r: &OrderRecord| r.order_no.as_str().to_owned())
                    .unwrap_or_default();
                self.merge_chunk(run, &chunk, &decided, Some(&upto)).await?;
                decided = upto;
                chunk.clear();
            }
            if end {
                break;
            }
        }
        // The platform's orders after the file's last one: the bank has none of them.
        self.merge_chunk(run, &[], &decided, None).await
    }

    /// One chunk of [`Platform::merge_orders`]: records `chunk`, ascending, all numbered after
    /// `after` and up to `upto` (`None`: every order after `after`).
    async fn merge_chunk(
        &self,
        run: &mut Run,
        chunk: &[OrderRecord],
        after: &str,
        upto: Option<&str>,
    ) -> Result<(), PlatformError> {
        const PAGE: u32 = 1000;
        let mut found: HashMap<String, Order> = HashMap::with_capacity(chunk.len());
        let mut from = after.to_owned();
        loop {
            let page = self
                .store
                .day_orders_between(run.date, &from, upto, PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            let Some(last) = page.last() else { break };
            from = last.order_no.as_str().to_owned();
            for o in page {
                let number = o.order_no.as_str();
                if chunk
                    .binary_search_by(|r| r.order_no.as_str().cmp(number))
                    .is_ok()
                {
                    found.insert(number.to_owned(), o);
                } else {
                    self.platform_only_order(run, &o).await?;
                }
            }
            if !full {
                break;
            }
        }
        let missing: Vec<&str> = chunk
            .iter()
            .map(|r| r.order_no.as_str())
            .filter(|n| !found.contains_key(*n))
            .collect();
        if !missing.is_empty() {
            found.extend(self.store.orders_by_number(&missing).await?);
        }
        for rec in chunk {
            let mut b = BankSuccess::from(rec);
            b.business_date = run.date;
            self.order_line(run, found.get(rec.order_no.as_str()), &b)
                .await?;
        }
        Ok(())
    }

    async fn compare_chunk(&self, run: &mut Run, chunk: &[DayRecord]) -> Result<(), PlatformError> {
        match run.kind {
            DayFileKind::Order => {
                let numbers: Vec<&str> = chunk
                    .iter()
                    .filter_map(|r| match r {
                        DayRecord::Order(o) => Some(o.order_no.as_str()),
                        _ => None,
                    })
                    .collect();
                let orders = self.store.orders_by_number(&numbers).await?;
                for r in chunk {
                    let DayRecord::Order(rec) = r else { continue };
                    let mut b = BankSuccess::from(rec);
                    b.business_date = run.date;
                    let o = orders.get(rec.order_no.as_str());
                    self.order_line(run, o, &b).await?;
                }
            }
            DayFileKind::SignUp => {
                let ids: Vec<&str> = chunk
                    .iter()
                    .filter_map(|r| match r {
                        DayRecord::SignUp(s) => Some(s.signup_id.as_str()),
                        _ => None,
                    })
                    .collect();
                let links = self.store.links_by_id(&ids).await?;
                for r in chunk {
                    let DayRecord::SignUp(rec) = r else { continue };
                    self.signup_line(run, links.get(&rec.signup_id), rec)
                        .await?;
                }
            }
            DayFileKind::Clearing => self.clearing_chunk(run, chunk).await?,
        }
        Ok(())
    }

    async fn order_line(
        &self,
        run: &mut Run,
        o: Option<&Order>,
        b: &BankSuccess,
    ) -> Result<(), PlatformError> {
        let category = match order_vs_bank(o, b) {
            OrderDiff::Same => {
                run.matched += 1;
                return Ok(());
            }
            OrderDiff::Missing => CaseCategory::BankOnly,
            OrderDiff::Status => CaseCategory::StatusDiffers,
            OrderDiff::Amount => CaseCategory::AmountDiffers,
            OrderDiff::Detail | OrderDiff::OtherAccount => CaseCategory::DetailDiffers,
        };
        let amount = match o {
            Some(o) if category == CaseCategory::AmountDiffers => {
                Money::from_fen((o.amount.fen() - b.amount.fen()).abs()).unwrap_or_default()
            }
            _ => b.amount.money(),
        };
        let finding = Finding {
            key: b.order_no.as_str().to_owned(),
            category,
            bank: bank_success_state(b),
            platform: o.map(order_state).unwrap_or_else(|| "-".into()),
            amount,
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let source = format!("T1_{}", run.kind.code());
        let (action, status) = match self
            .take_bank_payment(o, b, &source, Some(&case_id))
            .await?
        {
            Taken::Adjusted(a) => (
                format!("set the order to the bank's: {}", a.after),
                CaseStatus::AutoResolved,
            ),
            Taken::Same => (
                "nothing: the order agreed by the time it was adjusted".into(),
                CaseStatus::AutoResolved,
            ),
            Taken::Left(why) => (format!("left for staff: {why}"), CaseStatus::NeedsStaff),
        };
        self.record_case(run, case_id, finding, action, status)
            .await
    }

    async fn signup_line(
        &self,
        run: &mut Run,
        link: Option<&CardLink>,
        rec: &SignUpRecord,
    ) -> Result<(), PlatformError> {
        let key = format!("{}:{}", rec.event.code(), rec.signup_id);
        let same_party = |l: &CardLink| {
            l.email == rec.account
                && l.card_masked == rec.card_masked
                && l.real_name == rec.real_name
                && l.id_type == rec.id_type
        };
        let (category, fix): (CaseCategory, Option<LinkFix>) = match (link, rec.event) {
            (None, _) => (CaseCategory::BankOnly, None),
            (Some(l), _) if !same_party(l) => (CaseCategory::DetailDiffers, None),
            (Some(l), SignUpEvent::Signed) if l.business_date == Some(run.date) => {
                run.matched += 1;
                return Ok(());
            }
            (Some(l), SignUpEvent::Signed) => (
                CaseCategory::DetailDiffers,
                Some((l.status, Some(run.date), l.cancelled_date)),
            ),
            (Some(l), SignUpEvent::Cancelled)
                if l.status == LinkStatus::Cancelled && l.cancelled_date == Some(run.date) =>
            {
                run.matched += 1;
                return Ok(());
            }
            (Some(l), SignUpEvent::Cancelled) if l.status == LinkStatus::Cancelled => (
                CaseCategory::DetailDiffers,
                Some((LinkStatus::Cancelled, l.business_date, Some(run.date))),
            ),
            (Some(l), SignUpEvent::Cancelled) => (
                CaseCategory::StatusDiffers,
                Some((LinkStatus::Cancelled, l.business_date, Some(run.date))),
            ),
        };
        let finding = Finding {
            key,
            category,
            bank: signup_record_state(rec),
            platform: link.map(link_state).unwrap_or_else(|| "-".into()),
            amount: Money::ZERO,
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let now = self.clock.now_ms();
        let adj = |before: String, after: String, reason: &str| Adjustment {
            id: new_id("AJ"),
            record_kind: "SIGNUP".into(),
            record_key: rec.signup_id.clone(),
            before,
            after,
            source: "T1_SIGNUP".into(),
            reason: reason.into(),
            case_id: Some(case_id.clone()),
            at_ms: now,
        };
        let (action, status) = match (link, fix) {
            (None, _) => {
                if self.store.account_exists(&rec.account).await? {
                    let cancelled = rec.event == SignUpEvent::Cancelled;
                    let l = CardLink {
                        platform_link_id: format!("PL{}", hex::encode(rand::random::<[u8; 8]>())),
                        signup_id: rec.signup_id.clone(),
                        email: rec.account.clone(),
                        real_name: rec.real_name.clone(),
                        id_type: rec.id_type,
                        card_masked: rec.card_masked.clone(),
                        status: if cancelled { LinkStatus::Cancelled } else { LinkStatus::Signed },
                        daily_limit: None,
                        mobile_masked: None,
                        terms_at_ms: None,
                        signed_at_ms: now,
                        activated_at_ms: None,
                        business_date: (!cancelled).then_some(run.date),
                        cancelled_date: cancelled.then_some(run.date),
                    };
                    let a = adj("-".into(), link_state(&l), "the bank has a sign-up the platform had no card-link for");
                    if self.store.insert_recon_link(&l, &a).await? {
                        (format!("recorded the card-link from the bank's: {}", a.after), CaseStatus::AutoResolved)
                    } else {
                        ("left for staff: the card-link appeared meanwhile; run again".into(), CaseStatus::NeedsStaff)
                    }
                } else {
                    (
                        format!("left for staff: no platform account {}", rec.account.as_str()),
                        CaseStatus::NeedsStaff,
                    )
                }
            }
            (Some(l), Some((status, signed, cancelled))) => {
                let after = CardLink {
                    status,
                    business_date: signed,
                    cancelled_date: cancelled,
                    ..l.clone()
                };
                let a = adj(link_state(l), link_state(&after), match category {
                    CaseCategory::StatusDiffers => "the bank cancelled the sign-up",
                    _ => "the bank's dates differ",
                });
                if self
                    .store
                    .fix_link(&l.signup_id, l.status, status, signed, cancelled, &a)
                    .await?
                {
                    (format!("set the card-link to the bank's: {}", a.after), CaseStatus::AutoResolved)
                } else {
                    ("left for staff: the card-link changed meanwhile; run again".into(), CaseStatus::NeedsStaff)
                }
            }
            (Some(_), None) => (
                "left for staff: the card-link's account, card, name or ID type differ from the bank's".into(),
                CaseStatus::NeedsStaff,
            ),
        };
        self.record_case(run, case_id, finding, action, status)
            .await
    }

    async fn clearing_chunk(
        &self,
        run: &mut Run,
        chunk: &[DayRecord],
    ) -> Result<(), PlatformError> {
        let mut numbers = Vec::new();
        let mut refund_ids = Vec::new();
        for r in chunk {
            if let DayRecord::Clearing(c) = r {
                match &c.entry {
                    ClearingEntry::Payment { order_no, .. } => numbers.push(order_no),
                    ClearingEntry::Refund { refund_id, .. } => refund_ids.push(refund_id.as_str()),
                }
            }
        }
        let order_cases = self.store.order_case_keys(run.date, &numbers).await?;
        let number_strs: Vec<&str> = numbers.iter().map(|n| n.as_str()).collect();
        let orders = self.store.orders_by_number(&number_strs).await?;
        let refunds = self.store.refunds_by_id(&refund_ids).await?;
        for r in chunk {
            let DayRecord::Clearing(c) = r else { continue };
            match &c.entry {
                ClearingEntry::Payment {
                    order_no,
                    serial,
                    amount,
                } => {
                    let o = orders.get(order_no.as_str());
                    let agrees = o.is_some_and(|o| {
                        o.status == OrderStatus::Success
                            && o.amount == *amount
                            && o.business_date == Some(run.date)
                    });
                    if agrees || order_cases.iter().any(|k| k == order_no.as_str()) {
                        // A difference of the order itself is the ORDER file's case.
                        run.matched += u64::from(agrees);
                        continue;
                    }
                    let finding = Finding {
                        key: format!("P:{order_no}"),
                        category: match o {
                            None => CaseCategory::BankOnly,
                            Some(o) if o.status != OrderStatus::Success => {
                                CaseCategory::StatusDiffers
                            }
                            Some(o) if o.amount != *amount => CaseCategory::AmountDiffers,
                            Some(_) => CaseCategory::DetailDiffers,
                        },
                        bank: format!("PAYMENT {amount} serial {serial}"),
                        platform: o.map(order_state).unwrap_or_else(|| "-".into()),
                        amount: amount.money(),
                    };
                    let case_id = self.case_id_for(run, &finding.key).await?;
                    self.record_case(
                        run,
                        case_id,
                        finding,
                        "left for staff: reconcile the ORDER file of the date first".into(),
                        CaseStatus::NeedsStaff,
                    )
                    .await?;
                }
                ClearingEntry::Refund {
                    order_no,
                    refund_id,
                    amount,
                    batch_no,
                } => {
                    let mine = refunds.get(refund_id.as_str());
                    let category = match mine {
                        Some((status, Some(a), _))
                            if status == "SUCCESS" && *a == amount.money() =>
                        {
                            run.matched += 1;
                            continue;
                        }
                        None => CaseCategory::BankOnly,
                        Some((status, _, _)) if status != "SUCCESS" => CaseCategory::StatusDiffers,
                        Some(_) => CaseCategory::AmountDiffers,
                    };
                    let finding = Finding {
                        key: format!("R:{refund_id}"),
                        category,
                        bank: format!("REFUND {amount} order {order_no} batch {batch_no}"),
                        platform: mine
                            .map(|(s, a, b)| {
                                format!(
                                    "{s} {} batch {b}",
                                    a.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
                                )
                            })
                            .unwrap_or_else(|| "-".into()),
                        amount: amount.money(),
                    };
                    let case_id = self.case_id_for(run, &finding.key).await?;
                    let (action, status) = if category == CaseCategory::BankOnly
                        && self.store.has_refund_batch(batch_no.as_str()).await?
                    {
                        match self.fetch_refund_result(batch_no).await {
                            Ok(_)
                                if self
                                    .store
                                    .refunds_by_id(&[refund_id.as_str()])
                                    .await?
                                    .get(refund_id.as_str())
                                    .is_some_and(|(s, _, _)| s == "SUCCESS") =>
                            {
                                (
                                    format!(
                                        "fetched batch {batch_no}'s result file: the refund is applied"
                                    ),
                                    CaseStatus::AutoResolved,
                                )
                            }
                            Ok(_) => (
                                format!(
                                    "left for staff: batch {batch_no}'s result does not carry the refund"
                                ),
                                CaseStatus::NeedsStaff,
                            ),
                            Err(e) => (
                                format!(
                                    "left for staff: fetching batch {batch_no}'s result failed: {e}"
                                ),
                                CaseStatus::NeedsStaff,
                            ),
                        }
                    } else {
                        (
                            "left for staff: the refund records differ from the bank's".into(),
                            CaseStatus::NeedsStaff,
                        )
                    };
                    self.record_case(run, case_id, finding, action, status)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// What the platform has for the date and the file does not.
    async fn platform_only(&self, run: &mut Run) -> Result<(), PlatformError> {
        const PAGE: u32 = 500;
        match run.kind {
            DayFileKind::Order => {
                let mut after = String::new();
                loop {
                    let page = self
                        .store
                        .unstaged_orders(&run.id, "", run.date, &after, PAGE)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = last.order_no.as_str().to_owned();
                    for o in page {
                        self.platform_only_order(run, &o).await?;
                    }
                }
            }
            DayFileKind::SignUp => {
                for cancelled in [false, true] {
                    let mut after = String::new();
                    loop {
                        let page = self
                            .store
                            .unstaged_links(&run.id, cancelled, run.date, &after, PAGE)
                            .await?;
                        let Some(last) = page.last() else { break };
                        after = last.signup_id.clone();
                        for l in page {
                            self.platform_only_link(run, &l, cancelled).await?;
                        }
                    }
                }
            }
            DayFileKind::Clearing => {
                let mut after = String::new();
                loop {
                    let page = self
                        .store
                        .unstaged_orders(&run.id, "P:", run.date, &after, PAGE)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = last.order_no.as_str().to_owned();
                    let numbers: Vec<&OrderNo> = page.iter().map(|o| &o.order_no).collect();
                    let order_cases = self.store.order_case_keys(run.date, &numbers).await?;
                    for o in &page {
                        if order_cases.iter().any(|k| k == o.order_no.as_str()) {
                            continue;
                        }
                        let finding = Finding {
                            key: format!("P:{}", o.order_no),
                            category: CaseCategory::PlatformOnly,
                            bank: "-".into(),
                            platform: order_state(o),
                            amount: o.amount.money(),
                        };
                        let case_id = self.case_id_for(run, &finding.key).await?;
                        self.record_case(
                            run,
                            case_id,
                            finding,
                            "left for staff: reconcile the ORDER file of the date first".into(),
                            CaseStatus::NeedsStaff,
                        )
                        .await?;
                    }
                }
                let mut after = String::new();
                loop {
                    let page = self
                        .store
                        .unstaged_refunds(&run.id, run.date, &after, PAGE)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = last.0.clone();
                    for (refund_id, order_no, amount, batch_no) in page {
                        let finding = Finding {
                            key: format!("R:{refund_id}"),
                            category: CaseCategory::PlatformOnly,
                            bank: "-".into(),
                            platform: format!("REFUND {amount} order {order_no} batch {batch_no}"),
                            amount,
                        };
                        let case_id = self.case_id_for(run, &finding.key).await?;
                        self.record_case(
                            run,
                            case_id,
                            finding,
                            "left for staff: the platform has a refund the bank did not credit"
                                .into(),
                            CaseStatus::NeedsStaff,
                        )
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A SUCCESS order of the date the bank's order file lacks: the bank's word on it decides.
    async fn platform_only_order(&self, run: &mut Run, o: &Order) -> Result<(), PlatformError> {
        let finding = Finding {
            key: o.order_no.as_str().to_owned(),
            category: CaseCategory::PlatformOnly,
            bank: "-".into(),
            platform: order_state(o),
            amount: o.amount.money(),
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let answer = self.bank.get_payment(&PayOrder::from(o)).await;
        let now = self.clock.now_ms();
        let fix = fix_by_bank_word(o, answer).map(|(fix, _)| fix);
        let (action, status) = match fix {
            Some(fix) => {
                let a = Adjustment {
                    id: new_id("AJ"),
                    record_kind: "ORDER".into(),
                    record_key: o.order_no.as_str().to_owned(),
                    before: order_state(o),
                    after: fix_state(&fix),
                    source: "T1_ORDER".into(),
                    reason: "the bank's order file does not have it as paid on the date".into(),
                    case_id: Some(case_id.clone()),
                    at_ms: now,
                };
                if self.store.fix_order(o, &fix, &a).await? {
                    (
                        format!("set the order to the bank's: {}", a.after),
                        CaseStatus::AutoResolved,
                    )
                } else {
                    (
                        "left for staff: the order changed meanwhile; run again".into(),
                        CaseStatus::NeedsStaff,
                    )
                }
            }
            None => (
                "left for staff: the bank did not answer about the order; run again".into(),
                CaseStatus::NeedsStaff,
            ),
        };
        self.record_case(run, case_id, finding, action, status)
            .await
    }

    /// A card-link signed (or cancelled) on the date the bank's sign-up file lacks.
    async fn platform_only_link(
        &self,
        run: &mut Run,
        l: &CardLink,
        cancelled: bool,
    ) -> Result<(), PlatformError> {
        let event = if cancelled { "CANCELLED" } else { "SIGNED" };
        let finding = Finding {
            key: format!("{event}:{}", l.signup_id),
            category: CaseCategory::PlatformOnly,
            bank: "-".into(),
            platform: link_state(l),
            amount: Money::ZERO,
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        // No successful sign-up at the bank: the card-link goes (cancelled, and without the
        // bank's dates, which it never had, so no later run lists it again). A cancellation the
        // bank does not have: the card-link comes back as it was before.
        let (status, signed, cancelled_date, reason) = if cancelled {
            let back = if l.activated_at_ms.is_some() {
                LinkStatus::Active
            } else {
                LinkStatus::Signed
            };
            (
                back,
                l.business_date,
                None,
                "the bank has no cancellation of the sign-up on the date",
            )
        } else {
            (
                LinkStatus::Cancelled,
                None,
                None,
                "the bank has no successful sign-up on the date",
            )
        };
        let after = CardLink {
            status,
            business_date: signed,
            cancelled_date,
            ..l.clone()
        };
        let a = Adjustment {
            id: new_id("AJ"),
            record_kind: "SIGNUP".into(),
            record_key: l.signup_id.clone(),
            before: link_state(l),
            after: link_state(&after),
            source: "T1_SIGNUP".into(),
            reason: reason.into(),
            case_id: Some(case_id.clone()),
            at_ms: self.clock.now_ms(),
        };
        let (action, st) = if self
            .store
            .fix_link(&l.signup_id, l.status, status, signed, cancelled_date, &a)
            .await?
        {
            (
                format!("set the card-link to the bank's: {}", a.after),
                CaseStatus::AutoResolved,
            )
        } else {
            (
                "left for staff: the card-link changed meanwhile; run again".into(),
                CaseStatus::NeedsStaff,
            )
        };
        self.record_case(run, case_id, finding, action, st).await
    }

    async fn compare_totals(
        &self,
        run: &mut Run,
        bank: &shared::files::recon::DayFigures,
    ) -> Result<(), PlatformError> {
        let (pn, pf, rn, rf) = self.store.clearing_figures(run.date).await?;
        let mine = (pn, pf, rn, rf);
        let theirs = (
            bank.payments,
            bank.payment_total,
            bank.refunds,
            bank.refund_total,
        );
        if mine == theirs {
            return Ok(());
        }
        let net = |p: Money, r: Money| shared::files::recon::signed_amount(p.fen() - r.fen());
        let finding = Finding {
            key: "TOTALS".into(),
            category: CaseCategory::TotalsDiffer,
            bank: format!(
                "payments {} for {}, refunds {} for {}, net {}",
                theirs.0,
                theirs.1,
                theirs.2,
                theirs.3,
                net(theirs.1, theirs.3)
            ),
            platform: format!(
                "payments {pn} for {pf}, refunds {rn} for {rf}, net {}",
                net(pf, rf)
            ),
            amount: Money::from_fen(
                ((pf.fen() - rf.fen()) - (theirs.1.fen() - theirs.3.fen())).abs(),
            )
            .unwrap_or_default(),
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        self.record_case(
            run,
            case_id,
            finding,
            "left for staff: the clearing totals differ after every line was compared".into(),
            CaseStatus::NeedsStaff,
        )
        .await
    }

    async fn case_id_for(&self, run: &Run, key: &str) -> Result<String, PlatformError> {
        Ok(self
            .store
            .case_id(run.date, run.kind, key)
            .await?
            .unwrap_or_else(|| new_id("CASE")))
    }

    async fn record_case(
        &self,
        run: &mut Run,
        case_id: String,
        f: Finding,
        action: String,
        status: CaseStatus,
    ) -> Result<(), PlatformError> {
        let c = ReconCase {
            case_id,
            run_id: run.id.clone(),
            kind: run.kind,
            business_date: run.date,
            record_key: f.key,
            category: f.category,
            bank_record: f.bank,
            platform_record: f.platform,
            amount: f.amount,
            action,
            status,
            note: None,
            created_at_ms: self.clock.now_ms(),
            closed_at_ms: None,
        };
        self.store.upsert_case(&c).await?;
        tracing::warn!(
            case_id = %c.case_id,
            kind = run.kind.code(),
            key = %c.record_key,
            category = c.category.code(),
            status = c.status.code(),
            "reconciliation difference"
        );
        let e = run
            .report
            .categories
            .entry(c.category)
            .or_insert((0, Money::ZERO));
        e.0 += 1;
        e.1 = e.1.checked_add(c.amount).unwrap_or(e.1);
        match status {
            CaseStatus::NeedsStaff => run.report.needs_staff += 1,
            _ => run.report.auto_resolved += 1,
        }
        if run.cases.len() < REPORT_CASES_MAX {
            run.cases.push(c);
        } else {
            run.truncated = true;
        }
        Ok(())
    }
}

/// A card-link's status, sign-up date and cancellation date as they should become.
type LinkFix = (LinkStatus, Option<NaiveDate>, Option<NaiveDate>);

/// What became of a bank payment.
enum Taken {
    /// The platform agreed already.
    Same,
    /// The platform's order was adjusted.
    Adjusted(Adjustment),
    /// The platform could not take it on, and why.
    Left(String),
}
