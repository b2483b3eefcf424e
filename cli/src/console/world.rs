//! Both institutions side by side (`GET /api/world`): each node's own records
//! (`SimulatorService.ListRecords`), the kinds both keep joined by key, and where the two
//! disagree about money or a link. The decisions are pure ([`order_disagreement`],
//! [`signup_disagreement`]) and tested here with tables.

use std::collections::HashMap;

use proto::sim::v1 as sim;
use serde::Serialize;
use sim::RecordKind as K;

/// A panel of the page: one kind of record, from one node or from both joined.
#[derive(Debug, Serialize)]
pub struct Panel {
    /// Its heading.
    pub title: &'static str,
    /// The bank's headings and counts, if the bank keeps this kind.
    pub bank: Option<SideInfo>,
    /// The platform's, if it keeps this kind.
    pub platform: Option<SideInfo>,
    /// The records, newest first.
    pub rows: Vec<PanelRow>,
}

/// One side's headings and how many of its records are shown.
#[derive(Debug, Serialize)]
pub struct SideInfo {
    /// The headings.
    pub columns: Vec<String>,
    /// Rows shown.
    pub shown: usize,
    /// Records kept in all.
    pub total: u64,
}

/// One record as each side keeps it.
#[derive(Debug, Serialize, PartialEq)]
pub struct PanelRow {
    /// The key both sides share.
    pub key: String,
    /// The bank's cells: `Kept` (shown), `None` (the bank has no such record) or `Beyond` (not
    /// among the newest the bank showed, so nothing is claimed).
    pub bank: Cells,
    /// The platform's.
    pub platform: Cells,
    /// What the two sides disagree about, if they do.
    pub disagreement: Option<&'static str>,
}

/// One side's record in a joined row.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Cells {
    /// The side keeps this kind but not this record.
    None,
    /// The record may be kept but is older than the newest the side showed.
    Beyond,
    /// The record, one cell per heading.
    Kept(Vec<String>),
}

/// One side of an order or a sign-up, as the rules read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side<'a> {
    /// Not kept.
    None,
    /// Unknown: older than what was shown.
    Beyond,
    /// Kept, with these cells by heading.
    Kept(&'a HashMap<&'a str, &'a str>),
}

/// The panels of both nodes' records; `None` for a node that did not answer.
pub fn panels(
    bank: Option<&[sim::RecordTable]>,
    platform: Option<&[sim::RecordTable]>,
) -> Vec<Panel> {
    fn of(tables: Option<&[sim::RecordTable]>, kind: K) -> Option<&sim::RecordTable> {
        tables.and_then(|ts| ts.iter().find(|t| t.kind == kind as i32))
    }
    let b = |k| of(bank, k);
    let p = |k| of(platform, k);
    vec![
        joined("Orders", b(K::Orders), p(K::Orders), order_disagreement),
        joined(
            "Sign-ups and card-links",
            b(K::SignUps),
            p(K::CardLinks),
            signup_disagreement,
        ),
        joined("Cards", b(K::Cards), None, no_rule),
        joined(
            "Refund batches",
            b(K::RefundBatches),
            p(K::RefundBatches),
            no_rule,
        ),
        joined(
            "Refund lines",
            b(K::RefundLines),
            p(K::RefundLines),
            line_disagreement,
        ),
        joined("Error cases", None, p(K::Cases), no_rule),
        joined("Adjustments", None, p(K::Adjustments), no_rule),
        joined("Reconciliation runs", None, p(K::ReconRuns), no_rule),
        joined("T+1 files", b(K::DayFiles), None, no_rule),
        joined("Accounts", None, p(K::Accounts), no_rule),
    ]
}

type Rule = fn(Side<'_>, Side<'_>) -> Option<&'static str>;

fn no_rule(_: Side<'_>, _: Side<'_>) -> Option<&'static str> {
    None
}

/// Joins the records of a kind both sides keep by key, newest first (by the nearer of the two
/// positions), and asks `rule` about each.
fn joined(
    title: &'static str,
    bank: Option<&sim::RecordTable>,
    platform: Option<&sim::RecordTable>,
    rule: Rule,
) -> Panel {
    let mut keys: Vec<(usize, &str)> = Vec::new();
    let mut seen = HashMap::new();
    for t in [bank, platform].into_iter().flatten() {
        for (i, r) in t.rows.iter().enumerate() {
            match seen.get(r.record_key.as_str()) {
                Some(&at) => {
                    let (pos, _): &mut (usize, &str) = &mut keys[at];
                    *pos = (*pos).min(i);
                }
                None => {
                    seen.insert(r.record_key.as_str(), keys.len());
                    keys.push((i, r.record_key.as_str()));
                }
            }
        }
    }
    keys.sort_by_key(|(pos, _)| *pos);
    let rows = keys
        .into_iter()
        .map(|(_, key)| {
            let b = cells_of(bank, key);
            let p = cells_of(platform, key);
            let (bm, pm) = (by_heading(bank, &b), by_heading(platform, &p));
            // A side that did not answer is not a side without the record: nothing is claimed.
            let disagreement = match (bank, platform) {
                (Some(_), Some(_)) => rule(side(&b, bm.as_ref()), side(&p, pm.as_ref())),
                _ => None,
            };
            PanelRow {
                key: key.to_owned(),
                bank: b,
                platform: p,
                disagreement,
            }
        })
        .collect();
    let info = |t: Option<&sim::RecordTable>| {
        t.map(|t| SideInfo {
            columns: t.columns.clone(),
            shown: t.rows.len(),
            total: t.total,
        })
    };
    Panel {
        title,
        bank: info(bank),
        platform: info(platform),
        rows,
    }
}

fn cells_of(t: Option<&sim::RecordTable>, key: &str) -> Cells {
    let Some(t) = t else {
        return Cells::None;
    };
    match t.rows.iter().find(|r| r.record_key == key) {
        Some(r) => Cells::Kept(r.cells.clone()),
        None if t.total > t.rows.len() as u64 => Cells::Beyond,
        None => Cells::None,
    }
}

fn by_heading<'a>(
    t: Option<&'a sim::RecordTable>,
    c: &'a Cells,
) -> Option<HashMap<&'a str, &'a str>> {
    match (t, c) {
        (Some(t), Cells::Kept(cells)) => Some(
            t.columns
                .iter()
                .map(String::as_str)
                .zip(cells.iter().map(String::as_str))
                .collect(),
        ),
        _ => None,
    }
}

fn side<'a>(c: &Cells, m: Option<&'a HashMap<&'a str, &'a str>>) -> Side<'a> {
    match (c, m) {
        (_, Some(m)) => Side::Kept(m),
        (Cells::Beyond, None) => Side::Beyond,
        _ => Side::None,
    }
}

fn get<'a>(m: &HashMap<&str, &'a str>, heading: &str) -> &'a str {
    m.get(heading).copied().unwrap_or("")
}

/// Where the bank's payment and the platform's order disagree about money: one side has it paid
/// and the other does not (or has no record), or both have it paid with different amounts or
/// refunds. An order still in flight (a code sent, a failure on either side) moves no money and
/// is not a disagreement.
pub fn order_disagreement(bank: Side<'_>, platform: Side<'_>) -> Option<&'static str> {
    let paid = |s: Side<'_>| matches!(s, Side::Kept(m) if get(m, "status") == "SUCCESS");
    match (bank, platform) {
        (Side::Kept(b), Side::Kept(p)) if paid(bank) && paid(platform) => {
            if get(b, "amount") != get(p, "amount") {
                Some("the amounts differ")
            } else if get(b, "refunded") != get(p, "refunded") {
                Some("the refunded amounts differ")
            } else {
                None
            }
        }
        (Side::Kept(_), Side::Kept(_)) if paid(bank) => {
            Some("paid at the bank, not at the platform")
        }
        (Side::Kept(_), Side::Kept(_)) if paid(platform) => {
            Some("paid at the platform, not at the bank")
        }
        (Side::Kept(_), Side::None) if paid(bank) => {
            Some("paid at the bank, no order at the platform")
        }
        (Side::None, Side::Kept(_)) if paid(platform) => {
            Some("paid at the platform, no payment at the bank")
        }
        _ => None,
    }
}

/// Where the bank's sign-up and the platform's card-link disagree: the link is live on one side
/// only. A sign-up on its way (PENDING, CANCELLING) is not a disagreement yet.
pub fn signup_disagreement(bank: Side<'_>, platform: Side<'_>) -> Option<&'static str> {
    let bank_status = match bank {
        Side::Kept(m) => Some(get(m, "status")),
        Side::None => None,
        Side::Beyond => return None,
    };
    let platform_live = match platform {
        Side::Kept(m) => Some(matches!(get(m, "status"), "SIGNED" | "ACTIVE")),
        Side::None => None,
        Side::Beyond => return None,
    };
    match (bank_status, platform_live) {
        (Some("PENDING" | "CANCELLING"), _) => None,
        (Some("SIGNED"), Some(true)) => None,
        (Some("SIGNED"), Some(false)) => Some("cancelled at the platform only"),
        (Some("SIGNED"), None) => Some("signed at the bank, no card-link at the platform"),
        (Some("CANCELLED"), Some(true)) => Some("cancelled at the bank only"),
        (Some(_), Some(true)) => Some("linked at the platform, not signed at the bank"),
        (None, Some(true)) => Some("linked at the platform, no sign-up at the bank"),
        _ => None,
    }
}

/// Where a refund line's outcome differs between the bank's processing and the platform's
/// applied result.
fn line_disagreement(bank: Side<'_>, platform: Side<'_>) -> Option<&'static str> {
    match (bank, platform) {
        (Side::Kept(b), Side::Kept(p)) if get(b, "status") != get(p, "status") => {
            Some("the outcomes differ")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        status: &'static str,
        amount: &'static str,
        refunded: &'static str,
    ) -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("status", status),
            ("amount", amount),
            ("refunded", refunded),
        ])
    }

    #[test]
    fn orders_disagree_where_money_moved_on_one_side_only() {
        let paid = rec("SUCCESS", "12.34", "0.00");
        let paid_more = rec("SUCCESS", "12.35", "0.00");
        let refunded = rec("SUCCESS", "12.34", "2.00");
        let unknown = rec("UNKNOWN", "12.34", "0.00");
        let awaiting = rec("AWAITING_CODE", "12.34", "0.00");
        let code_sent = rec("CODE_SENT", "12.34", "0.00");
        let failed = rec("FAILED", "12.34", "0.00");
        let k = Side::Kept;
        let cases = [
            (k(&paid), k(&paid), None),
            (k(&code_sent), k(&awaiting), None),
            (k(&code_sent), k(&failed), None),
            (k(&failed), k(&failed), None),
            (Side::None, k(&failed), None),
            (
                k(&paid),
                k(&unknown),
                Some("paid at the bank, not at the platform"),
            ),
            (
                k(&failed),
                k(&paid),
                Some("paid at the platform, not at the bank"),
            ),
            (k(&paid), k(&paid_more), Some("the amounts differ")),
            (k(&refunded), k(&paid), Some("the refunded amounts differ")),
            (
                k(&paid),
                Side::None,
                Some("paid at the bank, no order at the platform"),
            ),
            (
                Side::None,
                k(&paid),
                Some("paid at the platform, no payment at the bank"),
            ),
            (k(&paid), Side::Beyond, None),
            (Side::Beyond, k(&paid), None),
        ];
        for (bank, platform, want) in cases {
            assert_eq!(
                order_disagreement(bank, platform),
                want,
                "{bank:?} {platform:?}"
            );
        }
    }

    #[test]
    fn sign_ups_disagree_where_the_link_is_live_on_one_side_only() {
        let s = |status: &'static str| HashMap::from([("status", status)]);
        let (signed, cancelled, pending, failed, cancelling) = (
            s("SIGNED"),
            s("CANCELLED"),
            s("PENDING"),
            s("FAILED"),
            s("CANCELLING"),
        );
        let (linked, active, unlinked) = (s("SIGNED"), s("ACTIVE"), s("CANCELLED"));
        let k = Side::Kept;
        let cases = [
            (k(&signed), k(&linked), None),
            (k(&signed), k(&active), None),
            (k(&cancelled), k(&unlinked), None),
            (k(&pending), Side::None, None),
            (k(&cancelling), k(&active), None),
            (k(&failed), Side::None, None),
            (
                k(&signed),
                k(&unlinked),
                Some("cancelled at the platform only"),
            ),
            (
                k(&signed),
                Side::None,
                Some("signed at the bank, no card-link at the platform"),
            ),
            (
                k(&cancelled),
                k(&active),
                Some("cancelled at the bank only"),
            ),
            (
                k(&failed),
                k(&linked),
                Some("linked at the platform, not signed at the bank"),
            ),
            (
                Side::None,
                k(&active),
                Some("linked at the platform, no sign-up at the bank"),
            ),
            (Side::Beyond, k(&active), None),
            (k(&signed), Side::Beyond, None),
        ];
        for (bank, platform, want) in cases {
            assert_eq!(
                signup_disagreement(bank, platform),
                want,
                "{bank:?} {platform:?}"
            );
        }
    }

    fn table(kind: K, columns: &[&str], rows: &[(&str, &[&str])], total: u64) -> sim::RecordTable {
        sim::RecordTable {
            kind: kind as i32,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|(key, cells)| sim::RecordRow {
                    record_key: key.to_string(),
                    cells: cells.iter().map(|c| c.to_string()).collect(),
                })
                .collect(),
            total,
        }
    }

    #[test]
    fn orders_are_joined_by_key_newest_first_and_a_cut_table_claims_nothing() {
        let cols = ["order", "status", "amount", "refunded"];
        let bank = [table(
            K::Orders,
            &cols,
            &[
                ("B", &["B", "SUCCESS", "1.00", "0.00"]),
                ("A", &["A", "SUCCESS", "2.00", "0.00"]),
            ],
            2,
        )];
        let platform = [table(
            K::Orders,
            &cols,
            &[
                ("C", &["C", "SUCCESS", "3.00", "0.00"]),
                ("B", &["B", "UNKNOWN", "1.00", "0.00"]),
            ],
            5,
        )];
        let both = panels(Some(&bank), Some(&platform));
        let orders = &both[0];
        assert_eq!(orders.title, "Orders");
        let got: Vec<(&str, bool, bool, Option<&str>)> = orders
            .rows
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    matches!(r.bank, Cells::Kept(_)),
                    r.platform == Cells::Beyond,
                    r.disagreement,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "B",
                    true,
                    false,
                    Some("paid at the bank, not at the platform")
                ),
                (
                    "C",
                    false,
                    false,
                    Some("paid at the platform, no payment at the bank")
                ),
                // The platform showed 2 of 5: A may be among the rest.
                ("A", true, true, None),
            ]
        );
        // A node that did not answer has no side, and nothing is claimed about it.
        let half = panels(Some(&bank), None);
        assert!(half[0].platform.is_none() && half[0].bank.is_some());
        assert!(half[0].rows.iter().all(|r| r.disagreement.is_none()));
    }
}
