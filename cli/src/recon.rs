//! `ibsim recon …`: settlement staff's reconciliation through the platform: the real-time pull,
//! the T+1 files of a closed date with their report (table, JSON, CSV), and the error cases.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use proto::platform::v1 as platform;
use proto::platform::v1::recon_ops_service_client::ReconOpsServiceClient;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::commands::connect;

/// Reconciliation with the bank (the bank's data is the truth; docs/reconciliation.md).
#[derive(Subcommand, Debug)]
pub enum Recon {
    /// Run real-time reconciliation now: pull the bank's successful payments after the cursor,
    /// adjust the platform's orders, settle orders pending past the grace window.
    Realtime,
    /// Adjustments reconciliation made, newest first.
    Adjustments {
        /// Only this order number or sign-up id.
        #[arg(long)]
        key: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Reconcile a closed business date with the bank's T+1 files and report.
    Day {
        /// The closed business date, YYYY-MM-DD.
        date: String,
        /// Only these files (repeat; default all three).
        #[arg(long = "kind", value_enum)]
        kinds: Vec<Kind>,
        /// Write the whole report, every case included, as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the cases as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Error cases, oldest first.
    Cases {
        /// Only this business date, YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
        /// Only this status.
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Also write them as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Close a case with a note saying what staff did.
    Close {
        /// The case id.
        case_id: String,
        /// What was done (1 to 200 characters).
        #[arg(long)]
        note: String,
    },
    /// Drill: write a SUCCESS order on the platform by hand, bypassing the bank (a platform-only
    /// record reconciliation must find).
    ManualOrder {
        /// A new order number.
        #[arg(long)]
        order_no: String,
        /// The account (must exist).
        #[arg(long)]
        email: String,
        /// The sign-up id it claims.
        #[arg(long)]
        signup_id: String,
        /// The amount, yuan.
        #[arg(long)]
        amount: String,
        /// The business date it claims, YYYY-MM-DD.
        #[arg(long)]
        date: String,
    },
}

/// A T+1 file.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    /// Sign-ups and cancellations.
    Signup,
    /// Successful payments.
    Order,
    /// Payments, refunds, totals.
    Clearing,
}

/// A case status.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Status {
    /// Resolved automatically.
    Auto,
    /// Waiting for staff.
    Staff,
    /// Closed by staff.
    Closed,
}

fn client(c: Channel) -> ReconOpsServiceClient<Channel> {
    ReconOpsServiceClient::new(c)
}

fn enum_name<E: std::fmt::Debug>(v: Result<E, impl Sized>) -> String {
    v.map(|e| format!("{e:?}"))
        .unwrap_or_else(|_| "?".to_owned())
}

fn category(c: i32) -> String {
    enum_name(platform::CaseCategory::try_from(c))
}

fn case_status(s: i32) -> String {
    enum_name(platform::CaseStatus::try_from(s))
}

fn kind(k: i32) -> String {
    enum_name(platform::ReconFileKind::try_from(k))
}

fn time(t: &Option<proto::Timestamp>) -> String {
    t.as_ref()
        .map(|t| {
            shared::clock::from_ms(t.seconds.saturating_mul(1000))
                .with_timezone(&shared::clock::cst())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// Runs an `ibsim recon` command.
///
/// Long: one arm per `ibsim recon` subcommand, each one call and its printout.
pub async fn recon(platform_url: &str, cmd: Recon) -> anyhow::Result<()> {
    let mut c = client(connect(platform_url).await?);
    match cmd {
        Recon::Realtime => {
            let r = c
                .run_realtime_recon(platform::RunRealtimeReconRequest {})
                .await?
                .into_inner();
            println!(
                "cursor {} → {}: {} successful payment(s) from the bank, {} pending order(s) asked about, {} of them unanswered (left pending), {} adjustment(s), {} left for T+1",
                r.cursor_before,
                r.cursor_after,
                r.payments_seen,
                r.pending_checked,
                r.pending_unanswered,
                r.adjustments.len(),
                r.left_for_t1
            );
            adjustments_table(&r.adjustments);
        }
        Recon::Adjustments { key, limit } => {
            let list = c
                .list_adjustments(platform::ListAdjustmentsRequest {
                    record_key: key.unwrap_or_default(),
                    limit,
                })
                .await?
                .into_inner()
                .adjustments;
            adjustments_table(&list);
        }
        Recon::Day {
            date,
            kinds,
            json,
            csv,
        } => {
            let report = c
                .run_day_recon(platform::RunDayReconRequest {
                    business_date: date.clone(),
                    kinds: kinds
                        .iter()
                        .map(|k| match k {
                            Kind::Signup => platform::ReconFileKind::Signup as i32,
                            Kind::Order => platform::ReconFileKind::Order as i32,
                            Kind::Clearing => platform::ReconFileKind::Clearing as i32,
                        })
                        .collect(),
                })
                .await?
                .into_inner();
            report_table(&report);
            let cases = if report.cases_truncated {
                every_case_of(&mut c, &report).await?
            } else {
                report.cases.clone()
            };
            if let Some(path) = json {
                write(
                    &path,
                    &serde_json::to_string_pretty(&report_json(&report, &cases))?,
                )?;
                println!("report written to {}", path.display());
            }
            if let Some(path) = csv {
                write(&path, &cases_csv(&cases)?)?;
                println!("{} case(s) written to {}", cases.len(), path.display());
            }
        }
        Recon::Cases {
            date,
            status,
            run,
            limit,
            csv,
        } => {
            let cases = c
                .list_cases(platform::ListCasesRequest {
                    status: match status {
                        None => 0,
                        Some(Status::Auto) => platform::CaseStatus::AutoResolved as i32,
                        Some(Status::Staff) => platform::CaseStatus::NeedsStaff as i32,
                        Some(Status::Closed) => platform::CaseStatus::Closed as i32,
                    },
                    business_date: date.unwrap_or_default(),
                    run_id: run.unwrap_or_default(),
                    after_case_id: String::new(),
                    limit,
                })
                .await?
                .into_inner()
                .cases;
            cases_table(&cases);
            if let Some(path) = csv {
                write(&path, &cases_csv(&cases)?)?;
                println!("{} case(s) written to {}", cases.len(), path.display());
            }
        }
        Recon::Close { case_id, note } => {
            let closed = c
                .close_case(platform::CloseCaseRequest { case_id, note })
                .await?
                .into_inner()
                .case
                .context("no case in the answer")?;
            cases_table(&[closed]);
        }
        Recon::ManualOrder {
            order_no,
            email,
            signup_id,
            amount,
            date,
        } => {
            c.write_manual_order(platform::WriteManualOrderRequest {
                order_no: order_no.clone(),
                email,
                signup_id,
                amount,
                business_date: date,
            })
            .await?;
            println!("order {order_no} written by hand as SUCCESS: the bank knows nothing of it");
        }
    }
    Ok(())
}

/// Every case of the report's runs, page by page.
async fn every_case_of(
    c: &mut ReconOpsServiceClient<Channel>,
    report: &platform::RunDayReconResponse,
) -> anyhow::Result<Vec<platform::ReconCase>> {
    let mut all = Vec::new();
    for f in &report.files {
        let mut after = String::new();
        loop {
            let page = c
                .list_cases(platform::ListCasesRequest {
                    run_id: f.run_id.clone(),
                    after_case_id: after.clone(),
                    limit: 1000,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .cases;
            let Some(last) = page.last() else { break };
            after = last.case_id.clone();
            all.extend(page);
        }
    }
    Ok(all)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn adjustments_table(list: &[platform::Adjustment]) {
    if list.is_empty() {
        println!("no adjustments");
        return;
    }
    println!(
        "{:<19}  {:<6}  {:<24}  {:<11}  {:<34}  {:<34}  reason",
        "at", "kind", "record", "source", "before", "after"
    );
    for a in list {
        println!(
            "{:<19}  {:<6}  {:<24}  {:<11}  {:<34}  {:<34}  {}",
            time(&a.at),
            a.record_kind,
            a.record_key,
            a.source,
            a.before,
            a.after,
            a.reason
        );
    }
}

fn report_table(r: &platform::RunDayReconResponse) {
    println!("reconciliation of {}", r.business_date);
    println!(
        "{:<9}  {:>9}  {:>9}  {:>6}  {:>6}  {:>6}  categories",
        "file", "records", "matched", "cases", "auto", "staff"
    );
    for f in &r.files {
        let cats = f
            .categories
            .iter()
            .map(|c| format!("{} {} ({})", category(c.category), c.count, c.amount))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{:<9}  {:>9}  {:>9}  {:>6}  {:>6}  {:>6}  {}",
            kind(f.kind),
            f.record_count,
            f.matched,
            f.cases,
            f.auto_resolved,
            f.needs_staff,
            if cats.is_empty() { "-".into() } else { cats }
        );
    }
    if r.cases.is_empty() {
        println!("no differences: a clean day");
    } else {
        cases_table(&r.cases);
        if r.cases_truncated {
            println!("(more cases than shown: --json or --csv writes them all)");
        }
    }
}

fn cases_table(cases: &[platform::ReconCase]) {
    if cases.is_empty() {
        println!("no cases");
        return;
    }
    println!(
        "{:<22}  {:<10}  {:<9}  {:<34}  {:<15}  {:>10}  {:<13}  action",
        "case", "date", "file", "record", "category", "amount", "status"
    );
    for c in cases {
        println!(
            "{:<22}  {:<10}  {:<9}  {:<34}  {:<15}  {:>10}  {:<13}  {}",
            c.case_id,
            c.business_date,
            kind(c.kind),
            c.record_key,
            category(c.category),
            c.amount,
            case_status(c.status),
            c.action
        );
    }
}

/// A case as `ibsim recon` writes it, the same fields in JSON and CSV (the header is the field
/// names).
#[derive(serde::Serialize)]
struct CaseRow {
    case_id: String,
    run_id: String,
    file: String,
    business_date: String,
    record_key: String,
    category: String,
    bank_record: String,
    platform_record: String,
    amount: String,
    action: String,
    status: String,
    note: String,
    created_at: String,
    closed_at: String,
}

impl From<&platform::ReconCase> for CaseRow {
    fn from(c: &platform::ReconCase) -> CaseRow {
        CaseRow {
            case_id: c.case_id.clone(),
            run_id: c.run_id.clone(),
            file: kind(c.kind),
            business_date: c.business_date.clone(),
            record_key: c.record_key.clone(),
            category: category(c.category),
            bank_record: c.bank_record.clone(),
            platform_record: c.platform_record.clone(),
            amount: c.amount.clone(),
            action: c.action.clone(),
            status: case_status(c.status),
            note: c.note.clone(),
            created_at: time(&c.created_at),
            closed_at: time(&c.closed_at),
        }
    }
}

fn case_json(c: &platform::ReconCase) -> Value {
    serde_json::to_value(CaseRow::from(c)).unwrap_or(Value::Null)
}

fn report_json(r: &platform::RunDayReconResponse, cases: &[platform::ReconCase]) -> Value {
    json!({
        "business_date": r.business_date,
        "files": r.files.iter().map(|f| json!({
            "file": kind(f.kind),
            "run_id": f.run_id,
            "sha256": f.sha256,
            "records": f.record_count,
            "matched": f.matched,
            "cases": f.cases,
            "auto_resolved": f.auto_resolved,
            "needs_staff": f.needs_staff,
            "categories": f.categories.iter().map(|c| json!({
                "category": category(c.category),
                "count": c.count,
                "amount": c.amount,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "cases": cases.iter().map(case_json).collect::<Vec<_>>(),
    })
}

/// The cases as CSV: a header, then one line per case, every field quoted.
fn cases_csv(cases: &[platform::ReconCase]) -> anyhow::Result<String> {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_writer(Vec::new());
    for c in cases {
        w.serialize(CaseRow::from(c))?;
    }
    if cases.is_empty() {
        // The header alone: `serialize` writes it with the first row.
        w.write_record(CASE_COLUMNS)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The CSV header of an empty case list (the same as [`CaseRow`]'s fields).
const CASE_COLUMNS: [&str; 14] = [
    "case_id",
    "run_id",
    "file",
    "business_date",
    "record_key",
    "category",
    "bank_record",
    "platform_record",
    "amount",
    "action",
    "status",
    "note",
    "created_at",
    "closed_at",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_quotes_doubled() {
        let c = platform::ReconCase {
            case_id: "CASE1".into(),
            record_key: "ORD,1".into(),
            action: r#"a "b", c"#.into(),
            ..Default::default()
        };
        let text = cases_csv(&[c]).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            CASE_COLUMNS.map(|c| format!("\"{c}\"")).join(",")
        );
        let line = lines.next().unwrap();
        assert!(line.starts_with("\"CASE1\",\"\",\"Unspecified\""), "{line}");
        assert!(line.contains("\"ORD,1\""), "{line}");
        assert!(line.contains(r#""a ""b"", c""#), "{line}");
        assert_eq!(lines.next(), None);
        let empty = cases_csv(&[]).unwrap();
        assert_eq!(empty.lines().count(), 1, "{empty}");
    }
}
