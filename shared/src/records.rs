//! The records a node keeps, as tables for people to read: `SimulatorService.ListRecords` and
//! the console's side-by-side panels. Each node names its tables as [`View`]s; the store reads
//! them (`store::view`). The typed RPCs stay the authority; these are what a tester looks at.
//!
//! Nothing secret leaves through a view: passwords, one-time codes and ID numbers are not among
//! any view's columns, card numbers and mobiles are masked, and free text has every run of 16
//! to 19 digits masked.

use chrono::DateTime;

use crate::domain::mask_middle;

/// Rows a table shows when the caller names no limit.
pub const ROWS_DEFAULT: u32 = 50;
/// The most rows a table shows.
pub const ROWS_MAX: u32 = 200;

/// Which records a table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The bank's cards.
    Cards,
    /// The bank's sign-ups.
    SignUps,
    /// The platform's accounts.
    Accounts,
    /// The platform's card-links (its side of a sign-up).
    CardLinks,
    /// Orders: the bank's payments, the platform's orders.
    Orders,
    /// Refund batches, on either side.
    RefundBatches,
    /// The lines of refund batches, on either side.
    RefundLines,
    /// The bank's T+1 reconciliation files.
    DayFiles,
    /// The platform's reconciliation runs.
    ReconRuns,
    /// The platform's adjustments (records reconciliation corrected).
    Adjustments,
    /// The platform's error cases.
    Cases,
}

/// How a column's value is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// An identifier the node made or was given as one (an order number, a sign-up id, a batch
    /// number, an e-mail): as kept.
    Id,
    /// Free text, runs of 16 to 19 digits masked.
    Text,
    /// A card number: first six and last four digits.
    Card,
    /// A mobile: first three and last four digits.
    Mobile,
    /// Integer fen, shown in yuan with two places.
    Fen,
    /// Milliseconds since the epoch, shown as UTC time.
    Time,
    /// An integer.
    Int,
}

/// One column of a view: its heading, the SQL expression read, how it is shown.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The heading; `status`, `amount` and `refunded` are the names the console compares.
    pub name: &'static str,
    /// A column of the view's table.
    pub sql: &'static str,
    /// How the value is shown.
    pub show: Show,
}

/// Shorthand for a [`Column`].
pub const fn col(name: &'static str, sql: &'static str, show: Show) -> Column {
    Column { name, sql, show }
}

/// One kind of record as a node keeps it.
#[derive(Clone, Copy, Debug)]
pub struct View {
    /// What it holds.
    pub kind: RecordKind,
    /// The table read.
    pub table: &'static str,
    /// The columns shown; the first `key_columns` of them, joined by `/`, are the row's key.
    pub columns: &'static [Column],
    /// How many leading columns make the key (the order number, the sign-up id, …).
    pub key_columns: usize,
    /// The ORDER BY that puts the newest first.
    pub newest_first: &'static str,
}

/// A view read: the newest rows and how many there are in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    /// What it holds.
    pub kind: RecordKind,
    /// The headings.
    pub columns: Vec<String>,
    /// The newest rows, newest first.
    pub rows: Vec<Row>,
    /// Rows of this kind in all (more than `rows.len()` when the table was cut).
    pub total: u64,
}

/// A row: its key and its cells, one per column, shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The key (the order number, the sign-up id, `batch/seq`, …).
    pub key: String,
    /// The cells; empty where the record has no value.
    pub cells: Vec<String>,
}

/// A kept value.
#[derive(Clone, Debug)]
pub enum Value {
    /// NULL.
    None,
    /// TEXT.
    Text(String),
    /// BIGINT.
    Int(i64),
}

impl Show {
    /// `v` as shown in this column.
    pub fn cell(self, v: &Value) -> String {
        match (self, v) {
            (_, Value::None) => String::new(),
            (Show::Card, Value::Text(s)) => mask_middle(s, 6, 4),
            (Show::Mobile, Value::Text(s)) => mask_middle(s, 3, 4),
            (Show::Fen, Value::Int(fen)) => yuan(*fen),
            (Show::Time, Value::Int(ms)) => DateTime::from_timestamp_millis(*ms).map_or_else(
                || ms.to_string(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
            (_, Value::Int(i)) => i.to_string(),
            (Show::Id, Value::Text(s)) => s.clone(),
            (_, Value::Text(s)) => scrub(s),
        }
    }

    /// Whether the store reads this column as an integer.
    pub fn is_int(self) -> bool {
        matches!(self, Show::Fen | Show::Time | Show::Int)
    }
}

/// Integer fen in yuan with two places, any `i64` (a view shows what is kept, in range or not).
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = i128::from(fen).abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// `s` with every run of 16 to 19 digits (a card number, maybe) masked.
pub fn scrub(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let n = run.len();
        if (16..=19).contains(&n) {
            out.push_str(&mask_middle(run, 6, 4));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

impl View {
    /// The row of `values`, one per column.
    pub fn row(&self, values: &[Value]) -> Row {
        let cells: Vec<String> = self
            .columns
            .iter()
            .zip(values)
            .map(|(c, v)| c.show.cell(v))
            .collect();
        Row {
            key: cells[..self.key_columns.min(cells.len())].join("/"),
            cells,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_shown_masked_and_in_yuan() {
        let t = |s: &str| Value::Text(s.to_owned());
        let cases = [
            (Show::Card, t("6221880000000000019"), "622188*********0019"),
            (Show::Mobile, t("13800138000"), "138****8000"),
            (Show::Fen, Value::Int(1234), "12.34"),
            (Show::Fen, Value::Int(i64::MAX), "92233720368547758.07"),
            (Show::Fen, Value::Int(i64::MIN), "-92233720368547758.08"),
            (Show::Fen, Value::Int(-5), "-0.05"),
            (Show::Time, Value::Int(0), "1970-01-01 00:00:00"),
            (Show::Int, Value::Int(-3), "-3"),
            (Show::Text, Value::None, ""),
            (
                Show::Text,
                t("card 6221880000000000019 paid"),
                "card 622188*********0019 paid",
            ),
            (
                Show::Text,
                t("in 20261202000000001 x"),
                "in 202612*******0001 x",
            ),
            (Show::Id, t("20261202000000001"), "20261202000000001"),
            (
                Show::Text,
                t("12345678901234567890"),
                "12345678901234567890",
            ),
            (Show::Text, t("SUCCESS 12.30"), "SUCCESS 12.30"),
        ];
        for (show, v, want) in cases {
            assert_eq!(show.cell(&v), want, "{show:?} {v:?}");
        }
    }

    #[test]
    fn a_row_is_keyed_by_its_leading_columns() {
        const V: View = View {
            kind: RecordKind::RefundLines,
            table: "refund_lines",
            columns: &[
                col("batch", "batch_no", Show::Id),
                col("seq", "seq", Show::Int),
                col("amount", "amount_fen", Show::Fen),
            ],
            key_columns: 2,
            newest_first: "seq DESC",
        };
        let row = V.row(&[Value::Text("B1".into()), Value::Int(7), Value::Int(5)]);
        assert_eq!(row.key, "B1/7");
        assert_eq!(row.cells, ["B1", "7", "0.05"]);
    }
}
