//! The T+1 reconciliation files (bank to platform): the sign-up file, the order file and the
//! clearing file of one closed business date; see `docs/file-formats.md`.
//!
//! The three share one shape: a header naming the kind and the date with the file's figures
//! (counts and totals), then one record per line. [`check_day_file`] reads a whole file once in
//! bounded memory, checks every record, adds the figures up and compares them with the header.

use std::io::BufRead;

use chrono::{NaiveDate, NaiveDateTime};

use super::refund::{
    add, count_check, header_line, kind_and_version, money_field, order_no_field, record_start,
};
use super::{FileError, LineReader, ReadError, count_field, cut, date_field, fields};
use crate::money::Money;
use domain::{
    BatchNo, Email, IdType, OrderNo, PayAmount, PersonName, RefundAmount, RefundId, SignUpId,
};

/// The format version every kind carries.
pub const VERSION: &str = "1";
/// The most records a day file may hold.
pub const RECORDS_MAX: u64 = 10_000_000;

domain::coded_enum!(
    /// Which of the three files; `ALL` is the order a day is reconciled in.
    #[derive(PartialOrd, Ord)]
    DayFileKind {
        /// Sign-ups and cancellations that succeeded on the date.
        SignUp = "SIGNUP",
        /// Payments that succeeded on the date.
        Order = "ORDER",
        /// The date's clearing: payments and refunds, with totals and the net amount.
        Clearing = "CLEARING",
    }
);

impl DayFileKind {
    /// The kind named in the file's header.
    pub fn header_kind(self) -> &'static str {
        match self {
            DayFileKind::SignUp => "SIGNUP-RECON",
            DayFileKind::Order => "ORDER-RECON",
            DayFileKind::Clearing => "CLEARING",
        }
    }

    /// The file's name in a file store.
    pub fn file_name(self, date: NaiveDate) -> String {
        format!("{}-{}.txt", self.header_kind(), date.format("%Y%m%d"))
    }
}

/// What a file holds, as its header says and as its records add up to. Fields a kind does not
/// use stay zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFigures {
    /// Record lines.
    pub records: u64,
    /// SIGNUP: sign-ups that succeeded.
    pub signed: u64,
    /// SIGNUP: cancellations that succeeded.
    pub cancelled: u64,
    /// ORDER and CLEARING: successful payments.
    pub payments: u64,
    /// ORDER and CLEARING: their amount.
    pub payment_total: Money,
    /// CLEARING: refunds credited.
    pub refunds: u64,
    /// CLEARING: their amount.
    pub refund_total: Money,
}

impl DayFigures {
    /// Payments less refunds, fen: what the bank owes the platform for the day (negative: what
    /// the platform owes the bank).
    pub fn net_fen(&self) -> i64 {
        self.payment_total.fen() - self.refund_total.fen()
    }

    /// Counts one record in.
    pub fn add(&mut self, rec: &DayRecord, line_no: u64) -> Result<(), FileError> {
        self.records += 1;
        match rec {
            DayRecord::SignUp(s) => match s.event {
                SignUpEvent::Signed => self.signed += 1,
                SignUpEvent::Cancelled => self.cancelled += 1,
            },
            DayRecord::Order(o) => {
                self.payments += 1;
                self.payment_total = add(self.payment_total, o.amount.money(), line_no)?;
            }
            DayRecord::Clearing(c) => match &c.entry {
                ClearingEntry::Payment { amount, .. } => {
                    self.payments += 1;
                    self.payment_total = add(self.payment_total, amount.money(), line_no)?;
                }
                ClearingEntry::Refund { amount, .. } => {
                    self.refunds += 1;
                    self.refund_total = add(self.refund_total, amount.money(), line_no)?;
                }
            },
        }
        Ok(())
    }
}

/// A signed amount of fen as the files write it: `-12.30`, `0.00`, `5.00`.
pub fn signed_amount(fen: i64) -> String {
    let abs = Money::from_fen(fen.saturating_abs()).unwrap_or_default();
    if fen < 0 {
        format!("-{abs}")
    } else {
        abs.to_string()
    }
}

fn signed_field(s: &str) -> Result<i64, FileError> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let m = money_field(1, "net_amount", "HEADER_INVALID", digits)?;
    Ok(if neg { -m.fen() } else { m.fen() })
}

/// Line 1 of a day file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayHeader {
    /// Which file.
    pub kind: DayFileKind,
    /// The closed business date it is for.
    pub business_date: NaiveDate,
    /// Its figures.
    pub figures: DayFigures,
}

impl DayHeader {
    /// Parses line 1 of a file that must be of kind `kind`.
    ///
    /// Long: the header's fields in order, with one arm per file kind for the figures each
    /// carries (docs/file-formats.md).
    pub fn parse(kind: DayFileKind, line: &str) -> Result<DayHeader, FileError> {
        let n = line.split(super::SEPARATOR).count();
        let want = match kind {
            DayFileKind::SignUp => 7,
            DayFileKind::Order => 6,
            DayFileKind::Clearing => 10,
        };
        if n != want {
            // Name the kind first when the line is another kind's header.
            let named = line.split(super::SEPARATOR).nth(1).unwrap_or_default();
            if named != kind.header_kind() {
                kind_and_version("H", named, VERSION, kind.header_kind())?;
            }
        }
        let count = |f, s| count_field(1, f, "HEADER_INVALID", s);
        let money = |f, s| money_field(1, f, "HEADER_INVALID", s);
        let (date, figures) = match kind {
            DayFileKind::SignUp => {
                let [h, k, v, date, records, signed, cancelled] =
                    fields::<7>(1, line, "HEADER_INVALID", "a sign-up file header")?;
                kind_and_version(h, k, v, kind.header_kind())?;
                let f = DayFigures {
                    records: count("record_count", records)?,
                    signed: count("signed_count", signed)?,
                    cancelled: count("cancelled_count", cancelled)?,
                    ..DayFigures::default()
                };
                (date, f)
            }
            DayFileKind::Order => {
                let [h, k, v, date, records, total] =
                    fields::<6>(1, line, "HEADER_INVALID", "an order file header")?;
                kind_and_version(h, k, v, kind.header_kind())?;
                let records = count("record_count", records)?;
                let f = DayFigures {
                    records,
                    payments: records,
                    payment_total: money("total_amount", total)?,
                    ..DayFigures::default()
                };
                (date, f)
            }
            DayFileKind::Clearing => {
                let [
                    h,
                    k,
                    v,
                    date,
                    records,
                    pays,
                    pay_total,
                    refunds,
                    refund_total,
                    net,
                ] = fields::<10>(1, line, "HEADER_INVALID", "a clearing file header")?;
                kind_and_version(h, k, v, kind.header_kind())?;
                let f = DayFigures {
                    records: count("record_count", records)?,
                    payments: count("payment_count", pays)?,
                    payment_total: money("payment_amount", pay_total)?,
                    refunds: count("refund_count", refunds)?,
                    refund_total: money("refund_amount", refund_total)?,
                    ..DayFigures::default()
                };
                if signed_field(net)? != f.net_fen() {
                    return Err(FileError::at(
                        1,
                        Some("net_amount"),
                        "TOTAL_MISMATCH",
                        format!(
                            "net_amount is payment_amount less refund_amount: {}, not {}",
                            signed_amount(f.net_fen()),
                            cut(net)
                        ),
                    ));
                }
                (date, f)
            }
        };
        if figures.records > RECORDS_MAX {
            return Err(FileError::at(
                1,
                Some("record_count"),
                "HEADER_INVALID",
                format!("a day file holds at most {RECORDS_MAX} records"),
            ));
        }
        Ok(DayHeader {
            kind,
            business_date: date_field(1, "business_date", "HEADER_INVALID", date)?,
            figures,
        })
    }

    /// The header line, without its line end.
    pub fn to_line(&self) -> String {
        let f = &self.figures;
        let head = format!(
            "H|{}|{VERSION}|{}|{}",
            self.kind.header_kind(),
            self.business_date.format("%Y%m%d"),
            f.records
        );
        match self.kind {
            DayFileKind::SignUp => format!("{head}|{}|{}", f.signed, f.cancelled),
            DayFileKind::Order => format!("{head}|{}", f.payment_total),
            DayFileKind::Clearing => format!(
                "{head}|{}|{}|{}|{}|{}",
                f.payments,
                f.payment_total,
                f.refunds,
                f.refund_total,
                signed_amount(f.net_fen())
            ),
        }
    }
}

domain::coded_enum!(
    /// What happened to a sign-up on the date, as the file writes it.
    SignUpEvent {
        /// The sign-up succeeded.
        Signed = "SIGNED",
        /// Its cancellation succeeded.
        Cancelled = "CANCELLED",
    }
);

/// A sign-up file record: `D|seq|signup_id|event|platform_account|real_name|id_type|card_masked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignUpRecord {
    /// 1, 2, 3, …
    pub seq: u64,
    /// The bank's sign-up id.
    pub signup_id: SignUpId,
    /// Signed or cancelled.
    pub event: SignUpEvent,
    /// The platform account.
    pub account: Email,
    /// The real name given at the branch.
    pub real_name: PersonName,
    /// The ID type given at the branch.
    pub id_type: IdType,
    /// The card, masked.
    pub card_masked: String,
}

/// An order file record: `D|seq|order_no|bank_serial_no|signup_id|platform_account|card_masked|amount|paid_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// 1, 2, 3, …
    pub seq: u64,
    /// The platform's order number.
    pub order_no: OrderNo,
    /// The bank's serial number of the debit.
    pub serial: String,
    /// The sign-up paid with.
    pub signup_id: SignUpId,
    /// The paying platform account.
    pub account: Email,
    /// The card, masked.
    pub card_masked: String,
    /// The amount debited.
    pub amount: PayAmount,
    /// When, China time.
    pub paid_at: NaiveDateTime,
}

/// One movement of money in the clearing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearingEntry {
    /// A payment: `P|order_no|bank_serial_no|amount|` (the batch field empty).
    Payment {
        /// The order paid.
        order_no: OrderNo,
        /// The bank's serial number.
        serial: String,
        /// The amount.
        amount: PayAmount,
    },
    /// A refund credited: `R|order_no|refund_id|amount|batch_no`.
    Refund {
        /// The order refunded.
        order_no: OrderNo,
        /// The refund's id.
        refund_id: RefundId,
        /// The amount credited.
        amount: RefundAmount,
        /// The batch it came in.
        batch_no: BatchNo,
    },
}

/// A clearing file record: `D|seq|type|order_no|reference|amount|batch_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearingRecord {
    /// 1, 2, 3, …
    pub seq: u64,
    /// The movement.
    pub entry: ClearingEntry,
}

/// One record of a day file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayRecord {
    /// Of a sign-up file.
    SignUp(SignUpRecord),
    /// Of an order file.
    Order(OrderRecord),
    /// Of a clearing file.
    Clearing(ClearingRecord),
}

/// A sign-up id as the bank issues them: 1 to 40 of A-Z and 0-9.
pub fn is_signup_id(s: &str) -> bool {
    domain::SignUpId::parse(s).is_ok()
}

/// A masked card number: 16 to 19 of digits and `*`.
pub fn is_masked_card(s: &str) -> bool {
    (16..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || b == b'*')
}

fn checked<'a>(
    line_no: u64,
    field: &'static str,
    ok: bool,
    s: &'a str,
    what: &str,
) -> Result<&'a str, FileError> {
    if ok {
        Ok(s)
    } else {
        Err(FileError::at(
            line_no,
            Some(field),
            "RECORD_INVALID",
            format!("{what}, got {:?}", cut(s)),
        ))
    }
}

fn parsed<T, E: std::fmt::Display>(
    line_no: u64,
    field: &'static str,
    r: Result<T, E>,
) -> Result<T, FileError> {
    r.map_err(|e| FileError::at(line_no, Some(field), "RECORD_INVALID", e.to_string()))
}

fn signup_id_field(line_no: u64, s: &str) -> Result<SignUpId, FileError> {
    let what = "a sign-up id is 1 to 40 of A-Z and 0-9";
    let s = checked(line_no, "signup_id", is_signup_id(s), s, what)?;
    SignUpId::parse(s)
        .map_err(|_| FileError::at(line_no, Some("signup_id"), "RECORD_INVALID", what))
}

fn masked_card_field(line_no: u64, s: &str) -> Result<String, FileError> {
    let what = "a masked card is 16 to 19 of digits and *";
    checked(line_no, "card_masked", is_masked_card(s), s, what).map(str::to_owned)
}

fn serial_field(line_no: u64, s: &str) -> Result<String, FileError> {
    let ok = (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    checked(
        line_no,
        "bank_serial_no",
        ok,
        s,
        "a serial number is 1 to 40 of A-Z and 0-9",
    )
    .map(str::to_owned)
}

fn pay_amount_field(line_no: u64, s: &str) -> Result<PayAmount, FileError> {
    parsed(
        line_no,
        "amount",
        Money::parse(s)
            .map_err(|e| e.to_string())
            .and_then(|m| PayAmount::new(m).map_err(|e| e.to_string())),
    )
}

/// `paid_at`, China time to the second: `YYYYMMDDhhmmss`, 14 digits. Read and written by hand,
/// not through chrono's format strings, which interpret the pattern for every record (a
/// million-record file spent 3–4% of its time there: docs/performance.md, issue 22 step 12).
fn paid_at_field(line_no: u64, s: &str) -> Result<NaiveDateTime, FileError> {
    let digits = s.as_bytes();
    let n = |from: usize, to: usize| {
        digits[from..to]
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
    };
    let ok = digits.len() == 14 && digits.iter().all(u8::is_ascii_digit);
    ok.then(|| {
        let date = chrono::NaiveDate::from_ymd_opt(n(0, 4) as i32, n(4, 6), n(6, 8))?;
        date.and_hms_opt(n(8, 10), n(10, 12), n(12, 14))
    })
    .flatten()
    .ok_or_else(|| {
        FileError::at(
            line_no,
            Some("paid_at"),
            "RECORD_INVALID",
            format!("a time is YYYYMMDDhhmmss, got {:?}", cut(s)),
        )
    })
}

/// `paid_at` as the file writes it: `YYYYMMDDhhmmss`.
struct PaidAt<'a>(&'a NaiveDateTime);

impl std::fmt::Display for PaidAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::{Datelike, Timelike};
        let t = self.0;
        write!(
            f,
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

impl DayRecord {
    /// Parses record line `line_no` of a file of kind `kind`.
    ///
    /// Long: one arm per file kind, each reading that kind's fields in order
    /// (docs/file-formats.md).
    pub fn parse(kind: DayFileKind, line_no: u64, line: &str) -> Result<DayRecord, FileError> {
        let seq = line_no - 1;
        match kind {
            DayFileKind::SignUp => {
                let [d, s, id, event, account, name, id_type, card] =
                    fields::<8>(line_no, line, "RECORD_INVALID", "a sign-up record")?;
                record_start(line_no, d, s)?;
                let event = SignUpEvent::from_code(event).ok_or_else(|| {
                    FileError::at(
                        line_no,
                        Some("event"),
                        "RECORD_INVALID",
                        format!("an event is SIGNED or CANCELLED, got {:?}", cut(event)),
                    )
                })?;
                Ok(DayRecord::SignUp(SignUpRecord {
                    seq,
                    signup_id: signup_id_field(line_no, id)?,
                    event,
                    account: parsed(line_no, "platform_account", Email::parse(account))?,
                    real_name: parsed(line_no, "real_name", PersonName::parse(name))?,
                    id_type: IdType::from_code(id_type).ok_or_else(|| {
                        FileError::at(
                            line_no,
                            Some("id_type"),
                            "RECORD_INVALID",
                            format!("not an ID type: {:?}", cut(id_type)),
                        )
                    })?,
                    card_masked: masked_card_field(line_no, card)?,
                }))
            }
            DayFileKind::Order => {
                let [d, s, order, serial, id, account, card, amount, paid_at] =
                    fields::<9>(line_no, line, "RECORD_INVALID", "an order record")?;
                record_start(line_no, d, s)?;
                Ok(DayRecord::Order(OrderRecord {
                    seq,
                    order_no: order_no_field(line_no, order)?,
                    serial: serial_field(line_no, serial)?,
                    signup_id: signup_id_field(line_no, id)?,
                    account: parsed(line_no, "platform_account", Email::parse(account))?,
                    card_masked: masked_card_field(line_no, card)?,
                    amount: pay_amount_field(line_no, amount)?,
                    paid_at: paid_at_field(line_no, paid_at)?,
                }))
            }
            DayFileKind::Clearing => {
                let [d, s, kind, order, reference, amount, batch] =
                    fields::<7>(line_no, line, "RECORD_INVALID", "a clearing record")?;
                record_start(line_no, d, s)?;
                let order_no = order_no_field(line_no, order)?;
                let entry = match kind {
                    "P" => {
                        checked(
                            line_no,
                            "batch_no",
                            batch.is_empty(),
                            batch,
                            "a payment has no batch",
                        )?;
                        ClearingEntry::Payment {
                            order_no,
                            serial: serial_field(line_no, reference)?,
                            amount: pay_amount_field(line_no, amount)?,
                        }
                    }
                    "R" => ClearingEntry::Refund {
                        order_no,
                        refund_id: parsed(line_no, "reference", RefundId::parse(reference))?,
                        amount: parsed(line_no, "amount", RefundAmount::parse(amount))?,
                        batch_no: parsed(line_no, "batch_no", BatchNo::parse(batch))?,
                    },
                    other => {
                        return Err(FileError::at(
                            line_no,
                            Some("type"),
                            "RECORD_INVALID",
                            format!("a clearing type is P or R, got {:?}", cut(other)),
                        ));
                    }
                };
                Ok(DayRecord::Clearing(ClearingRecord { seq, entry }))
            }
        }
    }

    /// The record line, without its line end.
    pub fn to_line(&self) -> String {
        let mut line = String::new();
        self.write_line(&mut line);
        line
    }

    /// Appends the record line, without its line end, to `out` (a writer's buffer, kept from
    /// one record to the next).
    pub fn write_line(&self, out: &mut String) {
        use std::fmt::Write as _;
        // Writing to a `String` does not fail.
        let _ = match self {
            DayRecord::SignUp(r) => write!(
                out,
                "D|{}|{}|{}|{}|{}|{}|{}",
                r.seq,
                r.signup_id,
                r.event.code(),
                r.account.as_str(),
                r.real_name.as_str(),
                r.id_type.code(),
                r.card_masked
            ),
            DayRecord::Order(r) => write!(
                out,
                "D|{}|{}|{}|{}|{}|{}|{}|{}",
                r.seq,
                r.order_no,
                r.serial,
                r.signup_id,
                r.account.as_str(),
                r.card_masked,
                r.amount,
                PaidAt(&r.paid_at)
            ),
            DayRecord::Clearing(ClearingRecord { seq, entry }) => match entry {
                ClearingEntry::Payment {
                    order_no,
                    serial,
                    amount,
                } => write!(out, "D|{seq}|P|{order_no}|{serial}|{amount}|"),
                ClearingEntry::Refund {
                    order_no,
                    refund_id,
                    amount,
                    batch_no,
                } => write!(out, "D|{seq}|R|{order_no}|{refund_id}|{amount}|{batch_no}"),
            },
        };
    }

    /// The key the platform matches the record on: `SIGNED:<id>` / `CANCELLED:<id>`, the order
    /// number, `P:<order_no>` / `R:<refund_id>`.
    pub fn key(&self) -> String {
        match self {
            DayRecord::SignUp(r) => format!("{}:{}", r.event.code(), r.signup_id),
            DayRecord::Order(r) => r.order_no.as_str().to_owned(),
            DayRecord::Clearing(c) => match &c.entry {
                ClearingEntry::Payment { order_no, .. } => format!("P:{order_no}"),
                ClearingEntry::Refund { refund_id, .. } => format!("R:{refund_id}"),
            },
        }
    }
}

/// Checks a whole day file of kind `kind` for date `date`, reading it once in bounded memory:
/// its header, every record, and the records adding up to the header's figures. `each` sees
/// every record in order.
pub fn check_day_file<R: BufRead, E>(
    input: R,
    kind: DayFileKind,
    date: NaiveDate,
    mut each: impl FnMut(DayRecord) -> Result<(), E>,
) -> Result<Result<DayHeader, E>, ReadError> {
    let mut r = LineReader::new(input);
    let header = DayHeader::parse(kind, &header_line(&mut r)?)?;
    if header.business_date != date {
        return Err(FileError::at(
            1,
            Some("business_date"),
            "HEADER_INVALID",
            format!("the file is for {}, not {date}", header.business_date),
        )
        .into());
    }
    let mut sum = DayFigures::default();
    while let Some((line_no, line)) = r.next_line()? {
        count_check(header.figures.records, line_no)?;
        let rec = DayRecord::parse(kind, line_no, line)?;
        sum.add(&rec, line_no)?;
        if let Err(e) = each(rec) {
            return Ok(Err(e));
        }
    }
    if sum.records != header.figures.records {
        return Err(FileError::at(
            1,
            Some("record_count"),
            "RECORD_COUNT_MISMATCH",
            format!(
                "the header says {} records, the file holds {}",
                header.figures.records, sum.records
            ),
        )
        .into());
    }
    if sum != header.figures {
        return Err(FileError::at(
            1,
            None,
            "TOTAL_MISMATCH",
            format!(
                "the header's figures {:?} are not what the records add up to {:?}",
                header.figures, sum
            ),
        )
        .into());
    }
    Ok(Ok(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNUP: &str = include_str!("../../docs/examples/signup-recon.txt");
    const ORDER: &str = include_str!("../../docs/examples/order-recon.txt");
    const CLEARING: &str = include_str!("../../docs/examples/clearing.txt");

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2031, 11, 4).unwrap()
    }

    fn write_back(kind: DayFileKind, text: &str) -> String {
        let mut out = String::new();
        let header = check_day_file(text.as_bytes(), kind, date(), |rec| {
            let line = rec.to_line();
            let again = DayRecord::parse(kind, rec_line_no(&rec), &line).unwrap();
            assert_eq!(again, rec);
            out.push_str(&line);
            out.push('\n');
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        format!("{}\n{out}", header.to_line())
    }

    fn rec_line_no(rec: &DayRecord) -> u64 {
        1 + match rec {
            DayRecord::SignUp(r) => r.seq,
            DayRecord::Order(r) => r.seq,
            DayRecord::Clearing(r) => r.seq,
        }
    }

    #[test]
    fn the_examples_parse_and_write_back_byte_for_byte() {
        assert_eq!(write_back(DayFileKind::SignUp, SIGNUP), SIGNUP);
        assert_eq!(write_back(DayFileKind::Order, ORDER), ORDER);
        assert_eq!(write_back(DayFileKind::Clearing, CLEARING), CLEARING);
    }

    fn refusal(kind: DayFileKind, text: &str) -> (&'static str, u64) {
        match check_day_file(text.as_bytes(), kind, date(), |_| Ok::<_, ()>(())) {
            Err(ReadError::Bad(e)) => (e.reason, e.line),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn figures_that_do_not_add_up_are_refused() {
        let wrong_total = ORDER.replacen("|3|160.50", "|3|160.49", 1);
        assert_eq!(
            refusal(DayFileKind::Order, &wrong_total),
            ("TOTAL_MISMATCH", 1)
        );
        let wrong_net = CLEARING.replacen("|130.50", "|130.51", 1);
        assert_eq!(
            refusal(DayFileKind::Clearing, &wrong_net),
            ("TOTAL_MISMATCH", 1)
        );
        let wrong_count = SIGNUP.replacen("|3|2|1", "|3|3|0", 1);
        assert_eq!(
            refusal(DayFileKind::SignUp, &wrong_count),
            ("TOTAL_MISMATCH", 1)
        );
        assert_eq!(refusal(DayFileKind::SignUp, ORDER).0, "HEADER_INVALID");
        let other_day = check_day_file(
            ORDER.as_bytes(),
            DayFileKind::Order,
            date().succ_opt().unwrap(),
            |_| Ok::<_, ()>(()),
        );
        assert!(matches!(other_day, Err(ReadError::Bad(e)) if e.field == Some("business_date")));
    }

    #[test]
    fn a_paid_at_time_is_fourteen_digits_of_a_real_time() {
        let line = |t: &str| {
            format!(
                "D|1|ORD-1|20311104000000000001|SU203111040000012345|a@example.com|622188*********5562|1.00|{t}"
            )
        };
        let parse = |t: &str| DayRecord::parse(DayFileKind::Order, 2, &line(t));
        let Ok(DayRecord::Order(r)) = parse("20311104093015") else {
            panic!("a real time");
        };
        let want = date().and_hms_opt(9, 30, 15).unwrap();
        assert_eq!(r.paid_at, want);
        assert_eq!(DayRecord::Order(r).to_line(), line("20311104093015"));
        let leap_day = parse("20320229235959").unwrap();
        assert!(
            matches!(leap_day, DayRecord::Order(r) if r.paid_at.to_string() == "2032-02-29 23:59:59")
        );
        for bad in [
            "2031110409301",
            "203111040930150",
            "2031110409301x",
            "+0311104093015",
            "20311304093015",
            "20311100093015",
            "20310229093015",
            "20311104243015",
            "20311104096015",
            "20311104093060",
            "２0311104093015",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(
                (e.reason, e.field, e.line),
                ("RECORD_INVALID", Some("paid_at"), 2),
                "{bad}"
            );
        }
    }

    #[test]
    fn net_amounts_carry_a_sign() {
        assert_eq!(signed_amount(-1230), "-12.30");
        assert_eq!(signed_amount(0), "0.00");
        assert_eq!(signed_field("-12.30").unwrap(), -1230);
        assert!(signed_field("+1").is_err());
    }
}
