//! How `ibsim` shows answers and refusals: aligned `key: value` lines, masked where the protocol
//! masks.

use proto::bank::v1 as bank;
use proto::common::v1 as common;
use proto::platform::v1 as platform;
use tonic_types::StatusExt;

fn line(key: &str, value: impl std::fmt::Display) {
    println!("{key:>20}: {value}");
}

fn ts(t: &Option<proto::Timestamp>) -> String {
    t.as_ref()
        .and_then(|t| chrono_like(t.seconds))
        .unwrap_or_else(|| "-".to_owned())
}

fn chrono_like(secs: i64) -> Option<String> {
    let t = shared::clock::from_ms(secs.checked_mul(1000)?);
    Some(
        t.with_timezone(&shared::clock::cst())
            .format("%Y-%m-%d %H:%M:%S +08:00")
            .to_string(),
    )
}

fn name<E: std::fmt::Debug>(v: Result<E, impl Sized>) -> String {
    v.map(|e| format!("{e:?}"))
        .unwrap_or_else(|_| "?".to_owned())
}

/// A card as the teller sees it.
pub fn card(c: &bank::Card) {
    line("card number", &c.card_number);
    line("holder", &c.holder_name);
    line(
        "account kind",
        name(bank::AccountKind::try_from(c.account_kind)),
    );
    line(
        "id",
        format!(
            "{} {}",
            name(common::IdType::try_from(c.id_type)),
            c.id_number
        ),
    );
    line("balance", &c.balance);
    line("status", name(bank::CardStatus::try_from(c.status)));
    line("wrong password tries", c.wrong_password_tries);
    line("opened at", ts(&c.opened_at));
}

/// A sign-up as the bank keeps it.
pub fn signup(s: &bank::SignUp) {
    line("sign-up id", &s.signup_id);
    line("status", name(common::SignUpStatus::try_from(s.status)));
    line("card", &s.card_number_masked);
    line("platform account", &s.platform_account);
    line("real name", &s.real_name);
    line(
        "id",
        format!(
            "{} {}",
            name(common::IdType::try_from(s.id_type)),
            s.id_number_masked
        ),
    );
    line("mobile", &s.mobile);
    line("daily limit", &s.daily_limit);
    line("business date", &s.business_date);
    if !s.failure_reason.is_empty() {
        line(
            "failure",
            format!("{}: {}", s.failure_reason, s.failure_message),
        );
    }
    line("updated at", ts(&s.updated_at));
}

/// A platform account with its card-links.
pub fn account(a: &platform::Account) {
    line("account", &a.email);
    line("real name", &a.real_name);
    line("status", name(platform::AccountStatus::try_from(a.status)));
    line("card-links", a.card_links.len());
    for l in &a.card_links {
        println!();
        link(l);
    }
}

/// A card-link on the platform.
pub fn link(l: &platform::CardLink) {
    line("sign-up id", &l.signup_id);
    line("card", &l.card_number_masked);
    line(
        "link status",
        name(platform::LinkStatus::try_from(l.status)),
    );
    if !l.daily_limit.is_empty() {
        line("daily limit", &l.daily_limit);
        line("mobile", &l.mobile_masked);
    }
    line("signed at", ts(&l.signed_at));
    line("activated at", ts(&l.activated_at));
}

/// A refusal: code, reason, the institution that refused, the field at fault, the message.
pub fn refusal(s: &tonic::Status) {
    match s.get_details_error_info() {
        Some(info) => {
            eprintln!(
                "refused: {:?} {} (by {})",
                s.code(),
                info.reason,
                info.domain
            );
            if let Some(l) = info.metadata.get("line") {
                eprintln!("  line: {l}");
            }
            if let Some(f) = info.metadata.get("field") {
                eprintln!("  field: {f}");
            }
        }
        None => eprintln!("refused: {:?}", s.code()),
    }
    eprintln!("  {}", s.message());
}

/// A payment order on the platform.
pub fn order(o: &platform::Order) {
    line("order", &o.order_no);
    line("status", name(platform::OrderStatus::try_from(o.status)));
    line("account", &o.email);
    line("card", &o.card_number_masked);
    line("amount", &o.amount);
    if !o.mobile_masked.is_empty() {
        line("code sent to", &o.mobile_masked);
        line("code expires at", ts(&o.code_expires_at));
    }
    if !o.bank_serial_no.is_empty() {
        line("bank serial no", &o.bank_serial_no);
        line("business date", &o.business_date);
        line("refunded", &o.refunded_amount);
    }
    if let Some(f) = &o.failure {
        line(
            "failure",
            format!("{} {} (by {}): {}", f.code, f.reason, f.domain, f.message),
        );
    }
    line("updated at", ts(&o.updated_at));
}

/// A business clock.
pub fn clock(node: &str, c: &proto::sim::v1::ClockState) {
    line(
        node,
        format!(
            "{}  business date {}{}  next cutover {}  last closed {}",
            ts(&c.now),
            c.business_date,
            if c.frozen { " (frozen)" } else { "" },
            ts(&c.next_cutover),
            if c.last_closed_date.is_empty() {
                "-"
            } else {
                &c.last_closed_date
            }
        ),
    );
}

/// A refund batch as settlement staff see it.
pub fn refund_batch(b: &platform::PlatformRefundBatch) {
    line("batch", &b.batch_no);
    line(
        "status",
        name(platform::PlatformRefundBatchStatus::try_from(b.status)),
    );
    line("business date", &b.business_date);
    line("records", b.record_count);
    line("total", &b.total_amount);
    line("sha256", &b.sha256);
    line("size", format!("{} bytes", b.size_bytes));
    if !b.receipt_no.is_empty() {
        line("bank receipt", &b.receipt_no);
        line("accepted at", ts(&b.accepted_at));
        line(
            "processed",
            format!("{} of {}", b.processed_count, b.record_count),
        );
    }
    if let Some(r) = &b.refusal {
        line(
            "refused",
            format!("{} / {} ({})", r.code, r.reason, r.domain),
        );
        line(
            "at",
            format!(
                "line {}, field {}",
                r.line,
                if r.field.is_empty() { "-" } else { &r.field }
            ),
        );
        line("message", &r.message);
    }
    if let Some(r) = &b.result {
        line(
            "succeeded",
            format!("{} lines, {}", r.success_count, r.success_amount),
        );
        line(
            "failed",
            format!("{} lines, {}", r.failed_count, r.failed_amount),
        );
        line("result sha256", &r.sha256);
        line("bank's date", &r.business_date);
    }
}
