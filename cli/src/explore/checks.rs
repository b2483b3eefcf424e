//! What the simulator promises, checked at the end of a schedule (after faults are cleared and
//! reconciliation has run), with the bank as the truth: money conserved, no balance below zero,
//! no card over its daily limit on any business date, refunds never above what was paid, both
//! institutions agreeing on every order and every sign-up, every closed day reconciled with no
//! case left for staff, and every answer a caller got true.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;

use super::world::{Told, World};

/// A promise broken: which, and what was seen.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    /// The invariant, as docs/reliability.md names it.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
    /// The order it is about, if one.
    pub order_no: Option<String>,
}

/// What the checks found, and the bank's truth a replay asserts.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The promises broken.
    pub violations: Vec<Violation>,
    /// The orders the bank holds as paid at the end.
    pub paid: Vec<String>,
}

/// The payment, if the bank holds it as paid.
fn paid(p: &Option<bank::Payment>) -> Option<&bank::Payment> {
    p.as_ref()
        .filter(|p| p.status == bank::PaymentStatus::Success as i32)
}

fn fen_of(s: &str) -> i64 {
    shared::Money::parse(s).map(|m| m.fen()).unwrap_or(0)
}

/// Customer `i`'s card, as the bank holds it.
async fn card_of(w: &World, i: usize) -> anyhow::Result<bank::Card> {
    Ok(w.branch_client()
        .get_card(bank::GetCardRequest {
            card_number: w.customer(i).card.clone(),
        })
        .await?
        .into_inner()
        .card
        .unwrap_or_default())
}

/// What is cheap to check after a step: no card it touched below zero (a read each).
pub async fn after_step(
    w: &mut World,
    touched: std::ops::Range<usize>,
) -> anyhow::Result<Vec<Violation>> {
    let mut v = Vec::new();
    for i in touched {
        let card = card_of(w, i).await?;
        w.tally.checks += 1;
        if fen_of(&card.balance) < 0 {
            v.push(Violation {
                invariant: "no balance below zero",
                detail: format!("after step {}: card {i} holds {}", w.step, card.balance),
                order_no: None,
            });
        }
    }
    Ok(v)
}

/// The bank's payment and the platform's order of each order number a schedule used.
type Records = (
    BTreeMap<String, Option<bank::Payment>>,
    BTreeMap<String, Option<platform::Order>>,
);

/// The violations found so far.
#[derive(Default)]
struct Found(Vec<Violation>);

impl Found {
    /// `invariant` broken, about `order` if one, as `detail` says.
    fn add(&mut self, invariant: &'static str, order: Option<&str>, detail: String) {
        self.0.push(Violation {
            invariant,
            detail,
            order_no: order.map(str::to_owned),
        });
    }
}

/// Every check, in order; the violations found.
pub async fn all(w: &mut World) -> anyhow::Result<Findings> {
    let mut v = Found::default();
    let (payments, orders) = records(w).await;
    money(w, &payments, &mut v).await?;
    orders_agree(w, &payments, &orders, &mut v);
    signups_agree(w, &mut v).await?;
    no_case_for_staff(w, &mut v).await?;
    answers_true(w, &payments, &mut v);
    let paid_orders = payments
        .iter()
        .filter(|(_, p)| paid(p).is_some())
        .map(|(k, _)| k.clone())
        .collect();
    Ok(Findings {
        violations: v.0,
        paid: paid_orders,
    })
}

/// The bank's and the platform's record of every order.
async fn records(w: &mut World) -> Records {
    let mut payments: BTreeMap<String, Option<bank::Payment>> = BTreeMap::new();
    let mut orders: BTreeMap<String, Option<platform::Order>> = BTreeMap::new();
    for order_no in w.orders.keys() {
        let p = w
            .bank_client()
            .get_payment(bank::GetPaymentRequest {
                order_no: order_no.clone(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().payment);
        let o = w
            .ops()
            .get_order_by_no(platform::GetOrderByNoRequest {
                order_no: order_no.clone(),
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().order);
        payments.insert(order_no.clone(), p);
        orders.insert(order_no.clone(), o);
    }
    (payments, orders)
}

/// Money: what went onto the cards is on them, or was paid and not refunded; no balance below
/// zero, no refund above its payment, no card over its daily limit on a business date.
async fn money(
    w: &mut World,
    payments: &BTreeMap<String, Option<bank::Payment>>,
    v: &mut Found,
) -> anyhow::Result<()> {
    let mut balances = 0;
    for i in 0..super::ops::CUSTOMERS {
        let card = card_of(w, i).await?;
        let b = fen_of(&card.balance);
        w.tally.checks += 1;
        if b < 0 {
            v.add(
                "no balance below zero",
                None,
                format!("card {} holds {}", i, card.balance),
            );
        }
        balances += b;
    }
    let mut paid_fen = 0;
    let mut refunded_fen = 0;
    let mut used: BTreeMap<(usize, NaiveDate), i64> = BTreeMap::new();
    for (order_no, p) in payments {
        let Some(p) = paid(p) else { continue };
        let (amount, refunded) = (fen_of(&p.amount), fen_of(&p.refunded_amount));
        paid_fen += amount;
        refunded_fen += refunded;
        w.tally.checks += 1;
        if refunded > amount {
            v.add(
                "refunds never above what was paid",
                Some(order_no),
                format!(
                    "{order_no}: paid {}, refunded {}",
                    p.amount, p.refunded_amount
                ),
            );
        }
        if let (Some(&c), Ok(d)) = (w.orders.get(order_no), p.business_date.parse::<NaiveDate>()) {
            *used.entry((c, d)).or_insert(0) += amount;
        }
    }
    w.tally.checks += 1;
    if balances + paid_fen - refunded_fen != w.deposited_fen {
        v.add(
            "money conserved",
            None,
            format!(
                "deposited {} fen; on the cards {balances}, paid {paid_fen}, refunded {refunded_fen}",
                w.deposited_fen
            ),
        );
    }
    for ((c, d), fen) in &used {
        let limit = w.limit_on.get(&(*c, *d)).copied().unwrap_or(0);
        w.tally.checks += 1;
        if *fen > limit {
            v.add(
                "no card over its daily limit",
                None,
                format!("customer {c} paid {fen} fen on {d}, limit {limit}"),
            );
        }
    }
    Ok(())
}

/// Both institutions agree on every order; nothing is left UNKNOWN or pending.
fn orders_agree(
    w: &mut World,
    payments: &BTreeMap<String, Option<bank::Payment>>,
    orders: &BTreeMap<String, Option<platform::Order>>,
    v: &mut Found,
) {
    for (order_no, o) in orders {
        let p = &payments[order_no];
        w.tally.checks += 1;
        match (paid(p), o) {
            (Some(p), Some(o)) => {
                if o.status != platform::OrderStatus::Success as i32
                    || o.bank_serial_no != p.bank_serial_no
                    || o.business_date != p.business_date
                {
                    v.add(
                        "the bank's paid orders are SUCCESS on the platform",
                        Some(order_no),
                        format!(
                            "{order_no}: bank SUCCESS {} {}; platform {:?} {} {}",
                            p.bank_serial_no,
                            p.business_date,
                            platform::OrderStatus::try_from(o.status),
                            o.bank_serial_no,
                            o.business_date
                        ),
                    );
                }
            }
            (Some(p), None) => v.add(
                "the bank's paid orders are SUCCESS on the platform",
                Some(order_no),
                format!(
                    "{order_no}: bank SUCCESS {}, no platform order",
                    p.bank_serial_no
                ),
            ),
            (None, Some(o)) => {
                let status = platform::OrderStatus::try_from(o.status);
                if status != Ok(platform::OrderStatus::Failed) {
                    v.add(
                        "every order settled, as the bank holds it",
                        Some(order_no),
                        format!("{order_no}: platform {status:?}, bank not paid"),
                    );
                }
            }
            (None, None) => {}
        }
    }
}

/// The live sign-ups agree: each customer's live card-link on the platform is the bank's live
/// sign-up of the card.
async fn signups_agree(w: &mut World, v: &mut Found) -> anyhow::Result<()> {
    for i in 0..super::ops::CUSTOMERS {
        let c = w.customer(i).clone();
        let live_at_bank = match w
            .branch_client()
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::CardNumber(c.card.clone())),
            })
            .await
        {
            Ok(r) => r.into_inner().signup,
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => anyhow::bail!("the bank's live sign-up of customer {i}: {s:?}"),
        };
        let at_bank = live_at_bank
            .clone()
            .filter(|s| s.status == proto::common::v1::SignUpStatus::Signed as i32)
            .map(|s| s.signup_id);
        let links = w
            .ops()
            .get_account(platform::GetAccountRequest {
                email: c.email.clone(),
            })
            .await?
            .into_inner()
            .account
            .unwrap_or_default()
            .card_links;
        let live: Vec<String> = links
            .iter()
            .filter(|l| l.status != platform::LinkStatus::Cancelled as i32)
            .map(|l| l.signup_id.clone())
            .collect();
        w.tally.checks += 1;
        if live != at_bank.iter().cloned().collect::<Vec<_>>() {
            let seen = both_sides(w, &links).await;
            let bank_live = live_at_bank.map(|s| {
                format!(
                    "{} {:?}",
                    s.signup_id,
                    proto::common::v1::SignUpStatus::try_from(s.status)
                )
            });
            v.add(
                "the live sign-ups agree",
                None,
                format!(
                    "customer {i}: bank {at_bank:?}, platform {live:?}; the bank's live one {bank_live:?}; {seen}"
                ),
            );
        }
    }
    Ok(())
}

/// Every closed day reconciled, nothing left for staff.
async fn no_case_for_staff(w: &mut World, v: &mut Found) -> anyhow::Result<()> {
    let open = w
        .recon()
        .list_cases(platform::ListCasesRequest {
            status: platform::CaseStatus::NeedsStaff as i32,
            limit: 1000,
            ..Default::default()
        })
        .await?
        .into_inner()
        .cases;
    w.tally.checks += w.closed.len() as u64;
    for c in open {
        v.add(
            "closed days reconcile with no case for staff",
            None,
            format!(
                "{} {:?} {:?} {}: {}",
                c.business_date,
                platform::ReconFileKind::try_from(c.kind),
                platform::CaseCategory::try_from(c.category),
                c.record_key,
                c.action
            ),
        );
    }
    Ok(())
}

/// Every answer a caller got was true: told paid, the bank holds it paid with that serial and
/// date; told refused, the bank did not debit it.
fn answers_true(w: &mut World, payments: &BTreeMap<String, Option<bank::Payment>>, v: &mut Found) {
    for a in &w.ledger {
        let p = paid(&payments[&a.order_no]);
        w.tally.checks += 1;
        match (&a.told, p) {
            (Told::Paid { serial, date }, Some(p))
                if *serial == p.bank_serial_no && *date == p.business_date => {}
            (Told::Paid { serial, .. }, _) => v.add(
                "every answer true",
                Some(&a.order_no),
                format!(
                    "step {}: {} of {} answered paid ({serial}), the bank holds {:?}",
                    a.step,
                    a.rpc,
                    a.order_no,
                    p.map(|p| p.bank_serial_no.clone())
                ),
            ),
            (Told::Failed { code, reason }, Some(p)) => v.add(
                "every answer true",
                Some(&a.order_no),
                format!(
                    "step {}: {} of {} answered {code} {reason}, the bank debited it ({})",
                    a.step, a.rpc, a.order_no, p.bank_serial_no
                ),
            ),
            (Told::Failed { .. }, None) => {}
        }
    }
}

/// Each of an account's card-links beside the bank's record of the same sign-up, for a report.
async fn both_sides(w: &mut World, links: &[platform::CardLink]) -> String {
    let mut seen = Vec::new();
    for l in links {
        let bank = w
            .branch_client()
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::SignupId(
                    l.signup_id.clone(),
                )),
            })
            .await
            .map(|r| r.into_inner().signup.unwrap_or_default());
        let bank = match bank {
            Ok(s) => format!(
                "{:?} settled on {}",
                proto::common::v1::SignUpStatus::try_from(s.status),
                s.business_date
            ),
            Err(s) => format!("{:?} {}", s.code(), s.message()),
        };
        let at = |t: &Option<proto::Timestamp>| t.as_ref().map(|t| t.seconds);
        let adjusted: Vec<String> = match w
            .recon()
            .list_adjustments(platform::ListAdjustmentsRequest {
                record_key: l.signup_id.clone(),
                limit: 20,
            })
            .await
        {
            Ok(r) => r
                .into_inner()
                .adjustments
                .into_iter()
                .map(|a| format!("[{} {} -> {}: {}]", a.source, a.before, a.after, a.reason))
                .collect(),
            Err(s) => vec![format!("{:?}", s.code())],
        };
        seen.push(format!(
            "{}: platform {:?} signed at {:?} activated at {:?}, adjusted {}, bank {bank}",
            l.signup_id,
            platform::LinkStatus::try_from(l.status),
            at(&l.signed_at),
            at(&l.activated_at),
            adjusted.join(" "),
        ));
    }
    seen.join("; ")
}
