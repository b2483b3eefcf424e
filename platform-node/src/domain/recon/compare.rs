//! The pure decisions of reconciliation: how a platform record stands against the bank's, and
//! what the bank's word makes of an order. No I/O; tested with tables below.

use super::*;

pub(super) fn order_state(o: &Order) -> String {
    let mut s = format!("{} {}", o.status.code(), o.amount);
    if let Some(serial) = &o.serial {
        s.push_str(&format!(" serial {serial}"));
    }
    if let Some(d) = o.business_date {
        s.push_str(&format!(" date {d}"));
    }
    s
}

pub(super) fn fix_state(f: &OrderFix) -> String {
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

pub(super) fn link_state(l: &CardLink) -> String {
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

pub(super) fn bank_success_state(b: &BankSuccess) -> String {
    format!(
        "SUCCESS {} serial {} date {} account {}",
        b.amount,
        b.serial,
        b.business_date,
        b.account.as_str()
    )
}

pub(super) fn signup_record_state(r: &SignUpRecord) -> String {
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

/// What the merge of an order file reads first of a SUCCESS order of the run's date, as stored:
/// enough to see that it agrees with the bank's record. Reading 4 columns instead of the
/// order's 18 is most of the merge's saving (docs/performance.md, issue 22, step 9).
#[derive(Debug)]
pub struct DayOrderFacts {
    /// The order number.
    pub order_no: String,
    /// The paying account, as stored.
    pub email: String,
    /// The amount in fen.
    pub amount_fen: i64,
    /// The bank's serial number, as stored.
    pub serial: Option<String>,
}

impl DayOrderFacts {
    /// Whether the order these facts were read of (SUCCESS, of `b`'s business date) agrees
    /// with `b` byte for byte: then [`order_vs_bank`] says `Same` of the whole order. `false`
    /// decides nothing: the whole order is read and compared.
    pub fn agree(&self, b: &BankSuccess) -> bool {
        self.email == b.account.as_str()
            && self.amount_fen == b.amount.money().fen()
            && self.serial.as_deref() == Some(b.serial.as_str())
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
pub(super) fn fix_by_bank_word(
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
        domain: crate::domain::DOMAIN.to_owned(),
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
        Err(PeerFailure::Refused(r)) if r.is(BankReason::PaymentNotFound) => (
            failed(ours(
                "RECON_NO_BANK_RECORD",
                "the bank has no record of the payment",
            )),
            "the bank has no record of the payment",
        ),
        Err(_) => return None,
    })
}

/// The case category of an order that differs from the bank's payment; `None`: they agree.
pub(super) fn order_category(diff: OrderDiff) -> Option<CaseCategory> {
    match diff {
        OrderDiff::Same => None,
        OrderDiff::Missing => Some(CaseCategory::BankOnly),
        OrderDiff::Status => Some(CaseCategory::StatusDiffers),
        OrderDiff::Amount => Some(CaseCategory::AmountDiffers),
        OrderDiff::Detail | OrderDiff::OtherAccount => Some(CaseCategory::DetailDiffers),
    }
}

/// The money at stake in an order's case: the difference where the amounts differ, the bank's
/// amount otherwise.
pub(super) fn order_case_amount(
    o: Option<&Order>,
    b: &BankSuccess,
    category: CaseCategory,
) -> Money {
    match o {
        Some(o) if category == CaseCategory::AmountDiffers => {
            Money::from_fen((o.amount.fen() - b.amount.fen()).abs()).unwrap_or_default()
        }
        _ => b.amount.money(),
    }
}

/// How the platform's card-link stands against a record of the bank's sign-up file of `date`:
/// `None` when they agree, else the category and, where the platform can take the bank's side
/// (same party), what the card-link becomes.
pub(super) fn signup_verdict(
    link: Option<&CardLink>,
    rec: &SignUpRecord,
    date: NaiveDate,
) -> Option<(CaseCategory, Option<LinkFix>)> {
    let Some(l) = link else {
        return Some((CaseCategory::BankOnly, None));
    };
    let same_party = l.email == rec.account
        && l.card_masked == rec.card_masked
        && l.real_name == rec.real_name
        && l.id_type == rec.id_type;
    if !same_party {
        return Some((CaseCategory::DetailDiffers, None));
    }
    let cancelled = l.status == LinkStatus::Cancelled;
    match rec.event {
        SignUpEvent::Signed if l.business_date == Some(date) => None,
        SignUpEvent::Signed => Some((
            CaseCategory::DetailDiffers,
            Some((l.status, Some(date), l.cancelled_date)),
        )),
        SignUpEvent::Cancelled if cancelled && l.cancelled_date == Some(date) => None,
        SignUpEvent::Cancelled => Some((
            if cancelled {
                CaseCategory::DetailDiffers
            } else {
                CaseCategory::StatusDiffers
            },
            Some((LinkStatus::Cancelled, l.business_date, Some(date))),
        )),
    }
}

/// The card-link the platform records from the bank's sign-up record of `date` it had none
/// for, at `now_ms`.
pub(super) fn link_from_bank(rec: &SignUpRecord, date: NaiveDate, now_ms: i64) -> CardLink {
    let cancelled = rec.event == SignUpEvent::Cancelled;
    CardLink {
        platform_link_id: format!("PL{}", hex::encode(rand::random::<[u8; 8]>())),
        signup_id: rec.signup_id.clone(),
        email: rec.account.clone(),
        real_name: rec.real_name.clone(),
        id_type: rec.id_type,
        card_masked: rec.card_masked.clone(),
        status: if cancelled {
            LinkStatus::Cancelled
        } else {
            LinkStatus::Signed
        },
        daily_limit: None,
        mobile_masked: None,
        terms_at_ms: None,
        signed_at_ms: now_ms,
        activated_at_ms: None,
        business_date: (!cancelled).then_some(date),
        cancelled_date: cancelled.then_some(date),
    }
}

/// The order the platform records from the bank's successful payment it had none for.
pub(super) fn order_from_bank(b: &BankSuccess, now_ms: i64) -> Order {
    Order {
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
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        refunded: Money::ZERO,
    }
}

/// What the bank's successful payment makes of the platform's order, and why.
pub(super) fn fix_to_bank_payment(b: &BankSuccess, diff: OrderDiff) -> (OrderFix, &'static str) {
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
    (fix, reason)
}

/// How the platform's order stands against a payment line of the bank's clearing file of
/// `date`: `None` when it agrees (SUCCESS, same amount, paid on the date).
pub(super) fn clearing_payment_category(
    o: Option<&Order>,
    amount: PayAmount,
    date: NaiveDate,
) -> Option<CaseCategory> {
    match o {
        None => Some(CaseCategory::BankOnly),
        Some(o) if o.status != OrderStatus::Success => Some(CaseCategory::StatusDiffers),
        Some(o) if o.amount != amount => Some(CaseCategory::AmountDiffers),
        Some(o) if o.business_date != Some(date) => Some(CaseCategory::DetailDiffers),
        Some(_) => None,
    }
}

/// A platform refund as the clearing comparison reads it: status, amount, batch.
pub type PlatformRefund = (RefundLineStatus, Option<Money>, String);

/// How the platform's refund stands against a refund line of the bank's clearing file: `None`
/// when it agrees (SUCCESS, same amount).
pub(super) fn clearing_refund_category(
    mine: Option<&PlatformRefund>,
    amount: Money,
) -> Option<CaseCategory> {
    match mine {
        Some((RefundLineStatus::Success, Some(a), _)) if *a == amount => None,
        None => Some(CaseCategory::BankOnly),
        Some((RefundLineStatus::Failed, _, _)) => Some(CaseCategory::StatusDiffers),
        Some(_) => Some(CaseCategory::AmountDiffers),
    }
}

/// What a card-link the bank's sign-up file of the date lacks becomes, and why. No successful
/// sign-up at the bank: the card-link goes (cancelled, and without the bank's dates, which it
/// never had, so no later run lists it again). A cancellation the bank does not have: the
/// card-link comes back as it was before.
pub(super) fn fix_platform_only_link(l: &CardLink, cancelled: bool) -> (LinkFix, &'static str) {
    if cancelled {
        let back = if l.activated_at_ms.is_some() {
            LinkStatus::Active
        } else {
            LinkStatus::Signed
        };
        (
            (back, l.business_date, None),
            "the bank has no cancellation of the sign-up on the date",
        )
    } else {
        (
            (LinkStatus::Cancelled, None, None),
            "the bank has no successful sign-up on the date",
        )
    }
}

/// A card-link's status, sign-up date and cancellation date as they should become.
pub(super) type LinkFix = (LinkStatus, Option<NaiveDate>, Option<NaiveDate>);

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{IdType, PersonName};

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2031, 11, d).unwrap()
    }

    fn amount(s: &str) -> PayAmount {
        PayAmount::parse(s).unwrap()
    }

    fn bank(amount_: &str) -> BankSuccess {
        BankSuccess {
            seq: 1,
            order_no: OrderNo::parse("P20311103000001").unwrap(),
            serial: "S1".into(),
            signup_id: SignUpId::parse("SU1").unwrap(),
            account: Email::parse("a@example.com").unwrap(),
            card_masked: "622188******0019".into(),
            amount: amount(amount_),
            business_date: date(3),
        }
    }

    fn order(status: OrderStatus, amount_: &str, serial: Option<&str>, day: u32) -> Order {
        Order {
            status,
            amount: amount(amount_),
            serial: serial.map(str::to_owned),
            business_date: Some(date(day)),
            ..order_from_bank(&bank(amount_), 0)
        }
    }

    #[test]
    fn an_order_against_the_banks_payment() {
        let b = bank("10.00");
        let other = Order {
            email: Email::parse("b@example.com").unwrap(),
            ..order(OrderStatus::Failed, "10.00", None, 3)
        };
        let cases = [
            (None, OrderDiff::Missing, Some(CaseCategory::BankOnly)),
            (
                Some(order(OrderStatus::Success, "10.00", Some("S1"), 3)),
                OrderDiff::Same,
                None,
            ),
            (
                Some(other),
                OrderDiff::OtherAccount,
                Some(CaseCategory::DetailDiffers),
            ),
            (
                Some(order(OrderStatus::Unknown, "10.00", None, 3)),
                OrderDiff::Status,
                Some(CaseCategory::StatusDiffers),
            ),
            (
                Some(order(OrderStatus::Success, "9.99", Some("S1"), 3)),
                OrderDiff::Amount,
                Some(CaseCategory::AmountDiffers),
            ),
            (
                Some(order(OrderStatus::Success, "10.00", Some("S2"), 3)),
                OrderDiff::Detail,
                Some(CaseCategory::DetailDiffers),
            ),
            (
                Some(order(OrderStatus::Success, "10.00", Some("S1"), 4)),
                OrderDiff::Detail,
                Some(CaseCategory::DetailDiffers),
            ),
        ];
        for (o, diff, category) in cases {
            assert_eq!(order_vs_bank(o.as_ref(), &b), diff, "{o:?}");
            assert_eq!(order_category(diff), category, "{diff:?}");
        }
        let short = order(OrderStatus::Success, "9.99", Some("S1"), 3);
        let at_stake = |o, c| order_case_amount(o, &b, c).to_string();
        assert_eq!(at_stake(Some(&short), CaseCategory::AmountDiffers), "0.01");
        assert_eq!(at_stake(None, CaseCategory::BankOnly), "10.00");
    }

    /// The merge takes an order as matched on its facts alone: that must be exactly when the
    /// whole order, SUCCESS of the record's date, is the same as the bank's.
    #[test]
    fn an_orders_facts_agree_exactly_when_the_whole_order_is_the_same() {
        let b = bank("10.00");
        let facts = |o: &Order| DayOrderFacts {
            order_no: o.order_no.as_str().to_owned(),
            email: o.email.as_str().to_owned(),
            amount_fen: o.amount.money().fen(),
            serial: o.serial.clone(),
        };
        let other_account = Order {
            email: Email::parse("b@example.com").unwrap(),
            ..order(OrderStatus::Success, "10.00", Some("S1"), 3)
        };
        let orders = [
            order(OrderStatus::Success, "10.00", Some("S1"), 3),
            order(OrderStatus::Success, "9.99", Some("S1"), 3),
            order(OrderStatus::Success, "10.01", Some("S1"), 3),
            order(OrderStatus::Success, "10.00", Some("S2"), 3),
            order(OrderStatus::Success, "10.00", Some("S1 "), 3),
            order(OrderStatus::Success, "10.00", None, 3),
            other_account,
        ];
        let mut agreeing = 0;
        for o in &orders {
            let same = order_vs_bank(Some(o), &b) == OrderDiff::Same;
            assert_eq!(facts(o).agree(&b), same, "{o:?}");
            agreeing += usize::from(same);
        }
        assert_eq!(agreeing, 1);
    }

    #[test]
    fn the_banks_payment_fixes_what_differs_and_says_why() {
        let b = bank("10.00");
        for (diff, why) in [
            (OrderDiff::Status, "the bank has the payment as successful"),
            (OrderDiff::Amount, "the bank debited another amount"),
            (OrderDiff::Detail, "the bank's serial number or date differ"),
        ] {
            let (fix, reason) = fix_to_bank_payment(&b, diff);
            assert_eq!(reason, why);
            assert_eq!(fix.status, OrderStatus::Success);
            assert_eq!(fix.serial.as_deref(), Some("S1"));
            assert_eq!(fix.business_date, Some(date(3)));
            assert_eq!(fix.amount, b.amount);
        }
    }

    fn link(status: LinkStatus, signed: Option<u32>, cancelled: Option<u32>) -> CardLink {
        CardLink {
            platform_link_id: "PL1".into(),
            signup_id: SignUpId::parse("SU1").unwrap(),
            email: Email::parse("a@example.com").unwrap(),
            real_name: PersonName::parse("张三").unwrap(),
            id_type: IdType::ResidentId,
            card_masked: "622188******0019".into(),
            status,
            daily_limit: None,
            mobile_masked: None,
            terms_at_ms: None,
            signed_at_ms: 0,
            activated_at_ms: None,
            business_date: signed.map(date),
            cancelled_date: cancelled.map(date),
        }
    }

    fn record(event: SignUpEvent) -> SignUpRecord {
        SignUpRecord {
            seq: 1,
            signup_id: SignUpId::parse("SU1").unwrap(),
            event,
            account: Email::parse("a@example.com").unwrap(),
            real_name: PersonName::parse("张三").unwrap(),
            id_type: IdType::ResidentId,
            card_masked: "622188******0019".into(),
        }
    }

    #[test]
    fn a_card_link_against_the_banks_sign_up_file() {
        use LinkStatus::{Active, Cancelled, Signed};
        use SignUpEvent as E;
        let other_name = CardLink {
            real_name: PersonName::parse("李四").unwrap(),
            ..link(Signed, Some(3), None)
        };
        let d = |n| Some(date(n));
        let cases = [
            (None, E::Signed, Some((CaseCategory::BankOnly, None))),
            (
                Some(other_name),
                E::Signed,
                Some((CaseCategory::DetailDiffers, None)),
            ),
            (Some(link(Active, Some(3), None)), E::Signed, None),
            (
                Some(link(Active, Some(2), None)),
                E::Signed,
                Some((CaseCategory::DetailDiffers, Some((Active, d(3), None)))),
            ),
            (Some(link(Cancelled, Some(1), Some(3))), E::Cancelled, None),
            (
                Some(link(Cancelled, Some(1), Some(2))),
                E::Cancelled,
                Some((CaseCategory::DetailDiffers, Some((Cancelled, d(1), d(3))))),
            ),
            (
                Some(link(Active, Some(1), None)),
                E::Cancelled,
                Some((CaseCategory::StatusDiffers, Some((Cancelled, d(1), d(3))))),
            ),
        ];
        for (l, event, verdict) in cases {
            assert_eq!(
                signup_verdict(l.as_ref(), &record(event), date(3)),
                verdict,
                "{l:?} {event:?}"
            );
        }
    }

    #[test]
    fn a_card_link_the_bank_does_not_have_goes_or_comes_back() {
        use LinkStatus::{Active, Cancelled, Signed};
        let activated = CardLink {
            activated_at_ms: Some(1),
            ..link(Cancelled, Some(1), Some(3))
        };
        let cases = [
            (link(Signed, Some(3), None), false, (Cancelled, None, None)),
            (activated, true, (Active, Some(date(1)), None)),
            (
                link(Cancelled, Some(1), Some(3)),
                true,
                (Signed, Some(date(1)), None),
            ),
        ];
        for (l, cancelled, fix) in cases {
            assert_eq!(fix_platform_only_link(&l, cancelled).0, fix, "{l:?}");
        }
    }

    #[test]
    fn a_clearing_line_against_the_platforms_records() {
        let paid = order(OrderStatus::Success, "10.00", Some("S1"), 3);
        let payments = [
            (Some(&paid), "10.00", None),
            (None, "10.00", Some(CaseCategory::BankOnly)),
            (Some(&paid), "10.01", Some(CaseCategory::AmountDiffers)),
        ];
        for (o, a, category) in payments {
            assert_eq!(clearing_payment_category(o, amount(a), date(3)), category);
        }
        assert_eq!(
            clearing_payment_category(Some(&paid), amount("10.00"), date(4)),
            Some(CaseCategory::DetailDiffers)
        );
        let failed = order(OrderStatus::Failed, "10.00", None, 3);
        assert_eq!(
            clearing_payment_category(Some(&failed), amount("10.00"), date(3)),
            Some(CaseCategory::StatusDiffers)
        );
        let money = |s: &str| Money::parse(s).unwrap();
        let refund = |status, a: Option<&str>| (status, a.map(money), "B1".into());
        let refunds = [
            (Some(refund(RefundLineStatus::Success, Some("5.00"))), None),
            (None, Some(CaseCategory::BankOnly)),
            (
                Some(refund(RefundLineStatus::Failed, None)),
                Some(CaseCategory::StatusDiffers),
            ),
            (
                Some(refund(RefundLineStatus::Success, Some("4.99"))),
                Some(CaseCategory::AmountDiffers),
            ),
        ];
        for (mine, category) in refunds {
            assert_eq!(
                clearing_refund_category(mine.as_ref(), money("5.00")),
                category,
                "{mine:?}"
            );
        }
    }

    #[test]
    fn the_banks_word_settles_a_pending_order() {
        let o = order(OrderStatus::Unknown, "10.00", None, 3);
        let refusal = |reason: &str| PeerRefusal {
            class: ErrorClass::FailedPrecondition,
            reason: reason.into(),
            message: String::new(),
            domain: "bank".into(),
        };
        let settled = |answer| {
            fix_by_bank_word(&o, answer)
                .map(|(fix, _)| (fix.status, fix.serial, fix.failure.map(|f| f.reason)))
        };
        assert_eq!(
            settled(Ok(BankPayment::Success {
                serial: "S9".into(),
                date: date(3)
            })),
            Some((OrderStatus::Success, Some("S9".into()), None))
        );
        assert_eq!(
            settled(Ok(BankPayment::Failed(refusal("INSUFFICIENT_FUNDS")))),
            Some((OrderStatus::Failed, None, Some("INSUFFICIENT_FUNDS".into())))
        );
        assert_eq!(
            settled(Ok(BankPayment::CodeSent)),
            Some((OrderStatus::Failed, None, Some("RECON_NOT_PAID".into())))
        );
        assert_eq!(
            settled(Err(PeerFailure::Refused(refusal("PAYMENT_NOT_FOUND")))),
            Some((
                OrderStatus::Failed,
                None,
                Some("RECON_NO_BANK_RECORD".into())
            ))
        );
        assert_eq!(
            settled(Err(PeerFailure::NoAnswer("timed out".into()))),
            None
        );
    }
}
