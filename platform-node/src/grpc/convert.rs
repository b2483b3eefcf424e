//! Domain values to messages, and the enum conversions both ways.

use proto::platform::v1 as pb;
use shared::FieldError;
use shared::clock::from_ms;
use shared::grpc::timestamp;

use crate::domain::{Account, AccountStatus, CardLink, LinkStatus, Order, OrderStatus};

/// An account with its card-links, each with whether its terms were read from the bank now.
pub fn account(a: &Account, links: &[(CardLink, bool)]) -> pb::Account {
    pb::Account {
        email: a.email.as_str().to_owned(),
        real_name: a.real_name.as_str().to_owned(),
        status: match a.status {
            AccountStatus::Normal => pb::AccountStatus::Normal,
            AccountStatus::Frozen => pb::AccountStatus::Frozen,
            AccountStatus::Closed => pb::AccountStatus::Closed,
        } as i32,
        card_links: links.iter().map(|(l, fresh)| link(l, *fresh)).collect(),
        created_at: Some(timestamp(from_ms(a.created_at_ms))),
    }
}

/// A card-link as the platform keeps it; `from_bank`: its limit and mobile were read from the
/// bank for this answer.
pub fn link(l: &CardLink, from_bank: bool) -> pb::CardLink {
    pb::CardLink {
        platform_link_id: l.platform_link_id.clone(),
        signup_id: l.signup_id.to_string(),
        card_number_masked: l.card_masked.clone(),
        status: match l.status {
            LinkStatus::Signed => pb::LinkStatus::Signed,
            LinkStatus::Active => pb::LinkStatus::Active,
            LinkStatus::Cancelled => pb::LinkStatus::Cancelled,
        } as i32,
        daily_limit: l.daily_limit.map(|d| d.to_string()).unwrap_or_default(),
        mobile_masked: l.mobile_masked.clone().unwrap_or_default(),
        signed_at: Some(timestamp(from_ms(l.signed_at_ms))),
        activated_at: l.activated_at_ms.map(|t| timestamp(from_ms(t))),
        terms_as_of: l.terms_at_ms.map(|t| timestamp(from_ms(t))),
        terms_from_bank: from_bank && l.status == LinkStatus::Active,
    }
}

pub fn account_status_from_pb(v: i32) -> Result<AccountStatus, FieldError> {
    match pb::AccountStatus::try_from(v) {
        Ok(pb::AccountStatus::Normal) => Ok(AccountStatus::Normal),
        Ok(pb::AccountStatus::Frozen) => Ok(AccountStatus::Frozen),
        Ok(pb::AccountStatus::Closed) => Ok(AccountStatus::Closed),
        _ => Err(FieldError::new(
            "status",
            "ACCOUNT_STATUS_INVALID",
            "status must be NORMAL, FROZEN or CLOSED",
        )),
    }
}

pub fn order(o: &Order) -> pb::Order {
    pb::Order {
        order_no: o.order_no.as_str().to_owned(),
        email: o.email.as_str().to_owned(),
        signup_id: o.signup_id.to_string(),
        card_number_masked: o.card_masked.clone(),
        amount: o.amount.to_string(),
        status: match o.status {
            OrderStatus::Created => pb::OrderStatus::Created,
            OrderStatus::AwaitingCode => pb::OrderStatus::AwaitingCode,
            OrderStatus::Success => pb::OrderStatus::Success,
            OrderStatus::Failed => pb::OrderStatus::Failed,
            OrderStatus::Unknown => pb::OrderStatus::Unknown,
        } as i32,
        mobile_masked: o.mobile_masked.clone().unwrap_or_default(),
        code_expires_at: o.code_expires_at_ms.map(|t| timestamp(from_ms(t))),
        bank_serial_no: o.serial.clone().unwrap_or_default(),
        business_date: o.business_date.map(|d| d.to_string()).unwrap_or_default(),
        failure: o.failure.as_ref().map(|f| pb::OrderFailure {
            code: f.class.name().to_owned(),
            reason: f.reason.clone(),
            message: f.message.clone(),
            domain: f.domain.clone(),
        }),
        created_at: Some(timestamp(from_ms(o.created_at_ms))),
        updated_at: Some(timestamp(from_ms(o.updated_at_ms))),
        description: o.description.clone(),
        refunded_amount: o.refunded.to_string(),
    }
}
