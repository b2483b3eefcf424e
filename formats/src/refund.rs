//! The refund batch file (platform to bank) and the refund result file (bank to platform); see
//! `docs/file-formats.md`.
//!
//! A batch file's structure is checked whole before the bank accepts it ([`check_batch`]): the
//! header, every record's field count, sequence number, refund id and order number, the record
//! count and the total. A record's amount is content, checked line by line when the batch is
//! processed: a bad amount fails its line, not the file. So the header's total is the sum of the
//! records' *valid* amounts ([`RefundAmount`]); a record whose amount is not one adds nothing.

use std::io::BufRead;

use chrono::NaiveDate;

use super::{FileError, LineReader, ReadError, count_field, cut, date_field, fields, text_field};
use crate::money::Money;
use domain::{BatchNo, OrderNo, RefundAmount, RefundId};

/// The kind named in a batch file's header.
pub const BATCH_KIND: &str = "REFUND-BATCH";
/// The kind named in a result file's header.
pub const RESULT_KIND: &str = "REFUND-RESULT";
/// The format version both kinds carry.
pub const VERSION: &str = "1";
/// The most records a batch may hold.
pub const RECORDS_MAX: u64 = 2_000_000;
/// The longest amount field, in bytes (the amount is content: checked per line, but bounded).
pub const AMOUNT_BYTES_MAX: usize = 32;

/// Line 1 of a batch file: `H|REFUND-BATCH|1|batch_no|business_date|record_count|total_amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    /// The batch number.
    pub batch_no: BatchNo,
    /// The platform's business date the batch was built on.
    pub business_date: NaiveDate,
    /// How many records follow.
    pub record_count: u64,
    /// The sum of the records' valid amounts.
    pub total: Money,
}

/// One refund asked for: `D|seq|refund_id|order_no|amount|reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// 1, 2, 3, … in file order.
    pub seq: u64,
    /// The refund's id.
    pub refund_id: RefundId,
    /// The order refunded.
    pub order_no: OrderNo,
    /// The amount as written (checked when processed).
    pub amount: String,
    /// Why, for people; at most 100 characters, may be empty.
    pub reason: String,
}

/// A result line's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The card was credited.
    Success,
    /// The line failed: a reason code (docs/errors.md) and a text.
    Failed {
        /// The reason code.
        code: String,
        /// For people.
        text: String,
    },
}

/// Line 1 of a result file: `H|REFUND-RESULT|1|batch_no|business_date|record_count|total_amount|
/// success_count|success_amount|failed_count|failed_amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultHeader {
    /// The batch answered.
    pub batch_no: BatchNo,
    /// The bank's business date the batch was processed on.
    pub business_date: NaiveDate,
    /// Lines answered: the batch's record count.
    pub record_count: u64,
    /// The batch's total (valid amounts asked).
    pub total: Money,
    /// Lines that succeeded.
    pub success_count: u64,
    /// Amount credited.
    pub success_total: Money,
    /// Lines that failed.
    pub failed_count: u64,
    /// Valid amounts of the lines that failed.
    pub failed_total: Money,
}

/// A result file's figures: what the bank announces with the file, and what its header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFigures {
    /// SHA-256 of the result file.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
    /// The bank's business date of the batch: the date its job first took it on.
    pub business_date: NaiveDate,
    /// Lines that succeeded.
    pub success_count: u64,
    /// Amount credited.
    pub success_total: Money,
    /// Lines that failed.
    pub failed_count: u64,
    /// Valid amounts of the lines that failed.
    pub failed_total: Money,
}

/// One answer: `D|seq|refund_id|order_no|amount|S|` `|` (success) or `…|F|code|text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRecord {
    /// The batch line's sequence number.
    pub seq: u64,
    /// Its refund id.
    pub refund_id: RefundId,
    /// Its order number.
    pub order_no: OrderNo,
    /// Its amount as written in the batch.
    pub amount: String,
    /// What happened.
    pub outcome: Outcome,
}

impl BatchHeader {
    /// Parses line 1.
    pub fn parse(line: &str) -> Result<BatchHeader, FileError> {
        let [h, kind, version, batch_no, date, count, total] =
            fields::<7>(1, line, "HEADER_INVALID", "a batch header")?;
        kind_and_version(h, kind, version, BATCH_KIND)?;
        let record_count = count_field(1, "record_count", "HEADER_INVALID", count)?;
        if !(1..=RECORDS_MAX).contains(&record_count) {
            return Err(FileError::at(
                1,
                Some("record_count"),
                "HEADER_INVALID",
                format!("a batch holds 1 to {RECORDS_MAX} records, the header says {record_count}"),
            ));
        }
        Ok(BatchHeader {
            batch_no: batch_no_field(batch_no)?,
            business_date: date_field(1, "business_date", "HEADER_INVALID", date)?,
            record_count,
            total: money_field(1, "total_amount", "HEADER_INVALID", total)?,
        })
    }

    /// The header line, without its line end.
    pub fn to_line(&self) -> String {
        format!(
            "H|{BATCH_KIND}|{VERSION}|{}|{}|{}|{}",
            self.batch_no,
            self.business_date.format("%Y%m%d"),
            self.record_count,
            self.total
        )
    }
}

impl BatchRecord {
    /// Parses record line `line_no`, which must carry sequence number `line_no - 1`.
    pub fn parse(line_no: u64, line: &str) -> Result<BatchRecord, FileError> {
        let [d, seq, refund_id, order_no, amount, reason] =
            fields::<6>(line_no, line, "RECORD_INVALID", "a batch record")?;
        record_start(line_no, d, seq)?;
        if amount.len() > AMOUNT_BYTES_MAX {
            return Err(FileError::at(
                line_no,
                Some("amount"),
                "RECORD_INVALID",
                format!("at most {AMOUNT_BYTES_MAX} bytes"),
            ));
        }
        Ok(BatchRecord {
            seq: line_no - 1,
            refund_id: refund_id_field(line_no, refund_id)?,
            order_no: order_no_field(line_no, order_no)?,
            amount: amount.to_owned(),
            reason: text_field(line_no, "reason", "RECORD_INVALID", reason)?,
        })
    }

    /// The record line, without its line end.
    pub fn to_line(&self) -> String {
        format!(
            "D|{}|{}|{}|{}|{}",
            self.seq, self.refund_id, self.order_no, self.amount, self.reason
        )
    }

    /// The amount, if it is a valid refund amount.
    pub fn valid_amount(&self) -> Option<RefundAmount> {
        RefundAmount::parse(&self.amount).ok()
    }
}

impl ResultHeader {
    /// Parses line 1.
    pub fn parse(line: &str) -> Result<ResultHeader, FileError> {
        let [
            h,
            kind,
            version,
            batch_no,
            date,
            records,
            total,
            ok,
            ok_total,
            bad,
            bad_total,
        ] = fields::<11>(1, line, "HEADER_INVALID", "a result header")?;
        kind_and_version(h, kind, version, RESULT_KIND)?;
        let count = |f, s| count_field(1, f, "HEADER_INVALID", s);
        let money = |f, s| money_field(1, f, "HEADER_INVALID", s);
        Ok(ResultHeader {
            batch_no: batch_no_field(batch_no)?,
            business_date: date_field(1, "business_date", "HEADER_INVALID", date)?,
            record_count: count("record_count", records)?,
            total: money("total_amount", total)?,
            success_count: count("success_count", ok)?,
            success_total: money("success_amount", ok_total)?,
            failed_count: count("failed_count", bad)?,
            failed_total: money("failed_amount", bad_total)?,
        })
    }

    /// The header line, without its line end.
    pub fn to_line(&self) -> String {
        format!(
            "H|{RESULT_KIND}|{VERSION}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.batch_no,
            self.business_date.format("%Y%m%d"),
            self.record_count,
            self.total,
            self.success_count,
            self.success_total,
            self.failed_count,
            self.failed_total
        )
    }
}

impl ResultRecord {
    /// Parses record line `line_no`, which must carry sequence number `line_no - 1`.
    pub fn parse(line_no: u64, line: &str) -> Result<ResultRecord, FileError> {
        let [d, seq, refund_id, order_no, amount, result, code, text] =
            fields::<8>(line_no, line, "RECORD_INVALID", "a result record")?;
        record_start(line_no, d, seq)?;
        let outcome = match (result, code) {
            ("S", "") if text.is_empty() => Outcome::Success,
            ("F", c) if is_reason_code(c) => Outcome::Failed {
                code: c.to_owned(),
                text: text_field(line_no, "text", "RECORD_INVALID", text)?,
            },
            _ => {
                return Err(FileError::at(
                    line_no,
                    Some("result"),
                    "RECORD_INVALID",
                    "a result is S with empty code and text, or F with a reason code",
                ));
            }
        };
        if amount.len() > AMOUNT_BYTES_MAX {
            return Err(FileError::at(
                line_no,
                Some("amount"),
                "RECORD_INVALID",
                format!("at most {AMOUNT_BYTES_MAX} bytes"),
            ));
        }
        Ok(ResultRecord {
            seq: line_no - 1,
            refund_id: refund_id_field(line_no, refund_id)?,
            order_no: order_no_field(line_no, order_no)?,
            amount: amount.to_owned(),
            outcome,
        })
    }

    /// The record line, without its line end.
    pub fn to_line(&self) -> String {
        let (result, code, text) = match &self.outcome {
            Outcome::Success => ("S", "", ""),
            Outcome::Failed { code, text } => ("F", code.as_str(), text.as_str()),
        };
        format!(
            "D|{}|{}|{}|{}|{result}|{code}|{text}",
            self.seq, self.refund_id, self.order_no, self.amount
        )
    }
}

/// A failure text made fit for a result line: separators and control characters become spaces,
/// and it is cut to 100 characters.
pub fn result_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == super::SEPARATOR || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .take(super::TEXT_CHARS_MAX)
        .collect()
}

fn is_reason_code(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

pub(super) fn kind_and_version(
    h: &str,
    kind: &str,
    version: &str,
    want: &str,
) -> Result<(), FileError> {
    if h != "H" {
        return Err(FileError::at(
            1,
            Some("record_type"),
            "HEADER_INVALID",
            "line 1 is the header and starts with H",
        ));
    }
    if kind != want {
        return Err(FileError::at(
            1,
            Some("kind"),
            "HEADER_INVALID",
            format!("expected a {want} file, got {:?}", cut(kind)),
        ));
    }
    if version != VERSION {
        return Err(FileError::at(
            1,
            Some("version"),
            "HEADER_INVALID",
            format!(
                "version {VERSION} is the one understood, got {:?}",
                cut(version)
            ),
        ));
    }
    Ok(())
}

pub(super) fn record_start(line_no: u64, d: &str, seq: &str) -> Result<(), FileError> {
    if d != "D" {
        return Err(FileError::at(
            line_no,
            Some("record_type"),
            "RECORD_INVALID",
            "a record line starts with D",
        ));
    }
    let want = line_no - 1;
    let got = count_field(line_no, "seq", "SEQ_OUT_OF_ORDER", seq)?;
    if got != want {
        return Err(FileError::at(
            line_no,
            Some("seq"),
            "SEQ_OUT_OF_ORDER",
            format!("expected sequence number {want}, got {got}"),
        ));
    }
    Ok(())
}

fn batch_no_field(s: &str) -> Result<BatchNo, FileError> {
    BatchNo::parse(s)
        .map_err(|e| FileError::at(1, Some("batch_no"), "HEADER_INVALID", e.to_string()))
}

fn refund_id_field(line_no: u64, s: &str) -> Result<RefundId, FileError> {
    RefundId::parse(s).map_err(|e| {
        FileError::at(
            line_no,
            Some("refund_id"),
            "REFUND_ID_INVALID",
            e.to_string(),
        )
    })
}

pub(super) fn order_no_field(line_no: u64, s: &str) -> Result<OrderNo, FileError> {
    OrderNo::parse(s)
        .map_err(|e| FileError::at(line_no, Some("order_no"), "ORDER_NO_INVALID", e.to_string()))
}

pub(super) fn money_field(
    line_no: u64,
    field: &'static str,
    reason: &'static str,
    s: &str,
) -> Result<Money, FileError> {
    Money::parse(s).map_err(|e| FileError::at(line_no, Some(field), reason, e.to_string()))
}

pub(super) fn add(sum: Money, m: Money, line_no: u64) -> Result<Money, FileError> {
    sum.checked_add(m).ok_or_else(|| {
        FileError::at(
            line_no,
            Some("amount"),
            "TOTAL_MISMATCH",
            "the amounts add up past the largest total a file may carry",
        )
    })
}

pub(super) fn count_check(header_count: u64, line_no: u64) -> Result<(), FileError> {
    if line_no - 1 > header_count {
        return Err(FileError::at(
            line_no,
            None,
            "RECORD_COUNT_MISMATCH",
            format!("the header says {header_count} records, this is one more"),
        ));
    }
    Ok(())
}

pub(super) fn end_check(
    header_count: u64,
    seen: u64,
    header_total: Money,
    sum: Money,
) -> Result<(), FileError> {
    if seen != header_count {
        return Err(FileError::at(
            1,
            Some("record_count"),
            "RECORD_COUNT_MISMATCH",
            format!("the header says {header_count} records, the file holds {seen}"),
        ));
    }
    if sum != header_total {
        return Err(FileError::at(
            1,
            Some("total_amount"),
            "TOTAL_MISMATCH",
            format!("the header says {header_total}, the records' valid amounts add up to {sum}"),
        ));
    }
    Ok(())
}

pub(super) fn header_line<R: BufRead>(r: &mut LineReader<R>) -> Result<String, ReadError> {
    match r.next_line()? {
        Some((_, line)) => Ok(line.to_owned()),
        None => Err(FileError::whole("FILE_EMPTY", "the file is empty").into()),
    }
}

/// Checks a whole batch file, reading it once in bounded memory; its header when good.
pub fn check_batch<R: BufRead>(input: R) -> Result<BatchHeader, ReadError> {
    let mut r = LineReader::new(input);
    let header = BatchHeader::parse(&header_line(&mut r)?)?;
    let mut seen = 0;
    let mut sum = Money::ZERO;
    while let Some((line_no, line)) = r.next_line()? {
        count_check(header.record_count, line_no)?;
        let rec = BatchRecord::parse(line_no, line)?;
        if let Some(a) = rec.valid_amount() {
            sum = add(sum, a.money(), line_no)?;
        }
        seen += 1;
    }
    end_check(header.record_count, seen, header.total, sum)?;
    Ok(header)
}

/// What a result file's header states of its records: how many succeeded and for how much, how
/// many failed and for how much (the valid amounts among them). The bank counts the records it
/// writes with it, and the platform the records it reads, the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultTally {
    /// Records that succeeded.
    pub success_count: u64,
    /// Their amounts.
    pub success_total: Money,
    /// Records that failed.
    pub failed_count: u64,
    /// The valid amounts among them.
    pub failed_total: Money,
}

impl ResultTally {
    /// Counts record line `line_no`. A record that succeeded must carry a valid amount.
    pub fn count(&mut self, line_no: u64, rec: &ResultRecord) -> Result<(), FileError> {
        let valid = RefundAmount::parse(&rec.amount).ok();
        match (&rec.outcome, valid) {
            (Outcome::Success, Some(a)) => {
                self.success_count += 1;
                self.success_total = add(self.success_total, a.money(), line_no)?;
            }
            (Outcome::Success, None) => {
                return Err(FileError::at(
                    line_no,
                    Some("amount"),
                    "RECORD_INVALID",
                    "a line that succeeded must carry a valid amount",
                ));
            }
            (Outcome::Failed { .. }, a) => {
                self.failed_count += 1;
                if let Some(a) = a {
                    self.failed_total = add(self.failed_total, a.money(), line_no)?;
                }
            }
        }
        Ok(())
    }

    /// Records counted.
    pub fn records(&self) -> u64 {
        self.success_count + self.failed_count
    }
}

/// Checks a whole result file, reading it once in bounded memory: its header, every line, and the
/// counts and amounts adding up. `each` sees every record in order.
pub fn check_result<R: BufRead, E>(
    input: R,
    mut each: impl FnMut(ResultRecord) -> Result<(), E>,
) -> Result<Result<ResultHeader, E>, ReadError> {
    let mut r = LineReader::new(input);
    let header = ResultHeader::parse(&header_line(&mut r)?)?;
    let mut tally = ResultTally::default();
    while let Some((line_no, line)) = r.next_line()? {
        count_check(header.record_count, line_no)?;
        let rec = ResultRecord::parse(line_no, line)?;
        tally.count(line_no, &rec)?;
        if let Err(e) = each(rec) {
            return Ok(Err(e));
        }
    }
    let ResultTally {
        success_count: ok,
        success_total: ok_sum,
        failed_count: bad,
        failed_total: bad_sum,
    } = tally;
    let total = add(ok_sum, bad_sum, 1)?;
    end_check(header.record_count, ok + bad, header.total, total)?;
    let mismatch =
        |field, what: String| Err(FileError::at(1, Some(field), "TOTAL_MISMATCH", what).into());
    if (ok, ok_sum) != (header.success_count, header.success_total) {
        return mismatch(
            "success_count",
            format!(
                "the header says {} lines succeeded for {}, the file holds {ok} for {ok_sum}",
                header.success_count, header.success_total
            ),
        );
    }
    if (bad, bad_sum) != (header.failed_count, header.failed_total) {
        return mismatch(
            "failed_count",
            format!(
                "the header says {} lines failed for {}, the file holds {bad} for {bad_sum}",
                header.failed_count, header.failed_total
            ),
        );
    }
    Ok(Ok(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: &str = include_str!("../../docs/examples/refund-batch.txt");
    const RESULT: &str = include_str!("../../docs/examples/refund-result.txt");

    fn refusal(file: &str) -> FileError {
        match check_batch(file.as_bytes()) {
            Err(ReadError::Bad(e)) => e,
            other => panic!("expected a refusal of {file:?}, got {other:?}"),
        }
    }

    fn example_with(line: usize, replace: &str) -> String {
        let mut lines: Vec<&str> = BATCH.lines().collect();
        lines[line - 1] = replace;
        lines.join("\n") + "\n"
    }

    #[test]
    fn the_batch_example_parses_and_writes_back_byte_for_byte() {
        let header = check_batch(BATCH.as_bytes()).unwrap();
        assert_eq!(header.batch_no.as_str(), "RB20311105001");
        assert_eq!(header.record_count, 4);
        let mut out = header.to_line() + "\n";
        for (i, line) in BATCH.lines().skip(1).enumerate() {
            out += &(BatchRecord::parse(i as u64 + 2, line).unwrap().to_line() + "\n");
        }
        assert_eq!(out, BATCH);
    }

    #[test]
    fn the_result_example_parses_and_writes_back_byte_for_byte() {
        let mut records = Vec::new();
        let header = check_result(RESULT.as_bytes(), |r| {
            records.push(r);
            Ok::<_, ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!((header.success_count, header.failed_count), (2, 2));
        let out: String = std::iter::once(header.to_line())
            .chain(records.iter().map(ResultRecord::to_line))
            .map(|l| l + "\n")
            .collect();
        assert_eq!(out, RESULT);
    }

    #[test]
    fn whole_file_faults_name_their_line_and_field() {
        let cases = [
            (
                example_with(1, "H|REFUND-BATCH|1|RB20311105001|20311105|5|60.50"),
                1,
                Some("record_count"),
                "RECORD_COUNT_MISMATCH",
            ),
            (
                example_with(1, "H|REFUND-BATCH|1|RB20311105001|20311105|4|61.50"),
                1,
                Some("total_amount"),
                "TOTAL_MISMATCH",
            ),
            (
                example_with(1, "H|REFUND-BATCH|2|RB20311105001|20311105|4|60.50"),
                1,
                Some("version"),
                "HEADER_INVALID",
            ),
            (
                example_with(1, "H|REFUND-BATCH|1|RB 1|20311105|4|60.50"),
                1,
                Some("batch_no"),
                "HEADER_INVALID",
            ),
            (
                example_with(1, "H|REFUND-BATCH|1|RB1|20311305|4|60.50"),
                1,
                Some("business_date"),
                "HEADER_INVALID",
            ),
            (
                example_with(1, "H|REFUND-BATCH|1|RB1|20311105|4|60.5x"),
                1,
                Some("total_amount"),
                "HEADER_INVALID",
            ),
            (
                example_with(3, "D|3|R2|ORD2|10.00|"),
                3,
                Some("seq"),
                "SEQ_OUT_OF_ORDER",
            ),
            (
                example_with(3, "D|2|R 2|ORD2|10.00|"),
                3,
                Some("refund_id"),
                "REFUND_ID_INVALID",
            ),
            (
                example_with(3, "D|2|R2||10.00|"),
                3,
                Some("order_no"),
                "ORDER_NO_INVALID",
            ),
            (
                example_with(3, "D|2|R2|ORD2|10.00"),
                3,
                None,
                "RECORD_INVALID",
            ),
            (
                example_with(3, "X|2|R2|ORD2|10.00|"),
                3,
                Some("record_type"),
                "RECORD_INVALID",
            ),
            (
                example_with(3, &format!("D|2|R2|ORD2|10.00|{}", "字".repeat(101))),
                3,
                Some("reason"),
                "RECORD_INVALID",
            ),
            (
                BATCH.to_owned() + "D|5|R5|ORD5|1.00|\n",
                6,
                None,
                "RECORD_COUNT_MISMATCH",
            ),
            (
                BATCH[..BATCH.len() - 1].to_owned(),
                5,
                None,
                "FILE_TRUNCATED",
            ),
            (String::new(), 0, None, "FILE_EMPTY"),
        ];
        for (file, line, field, reason) in cases {
            let e = refusal(&file);
            assert_eq!(
                (e.line, e.field, e.reason),
                (line, field, reason),
                "{file:?}: {e}"
            );
        }
    }

    #[test]
    fn a_bad_amount_is_content_not_structure() {
        // Lines with amounts that are not valid refund amounts still make a well-formed file;
        // they add nothing to the total and fail when the bank processes them.
        let file = "H|REFUND-BATCH|1|B1|20311105|5|1.00\n\
                    D|1|R1|O1|1.234|\nD|2|R2|O1|-5|\nD|3|R3|O1|abc|\nD|4|R4|O1||\nD|5|R5|O1|1.00|\n";
        assert_eq!(
            check_batch(file.as_bytes()).unwrap().total.to_string(),
            "1.00"
        );
    }

    #[test]
    fn result_totals_must_add_up() {
        let bad = RESULT.replacen("|2|30.00|2|", "|2|30.01|2|", 1);
        assert_ne!(bad, RESULT);
        let e = check_result(bad.as_bytes(), |_| Ok::<_, ()>(())).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::Bad(FileError {
                    reason: "TOTAL_MISMATCH",
                    ..
                })
            ),
            "{e}"
        );
    }

    #[test]
    fn failure_texts_are_made_fit_for_a_line() {
        assert_eq!(result_text("a|b\nc"), "a b c");
        assert_eq!(result_text(&"x".repeat(300)).len(), 100);
    }
}
