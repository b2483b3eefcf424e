//! Domain values to messages, and the enum conversions both ways.

use proto::bank::v1 as pb;
use proto::common::v1 as common;
use shared::{FieldError, clock::from_ms, grpc::timestamp};

use crate::domain::{AccountKind, Card, CardStatus, Payment, PaymentStatus, SignUp, SignUpStatus};

pub fn card(c: &Card) -> pb::Card {
    pb::Card {
        card_number: c.number.expose().to_owned(),
        account_kind: match c.kind {
            AccountKind::CardOnly => pb::AccountKind::CardOnly,
            AccountKind::CardAndPassbook => pb::AccountKind::CardAndPassbook,
        } as i32,
        holder_name: c.holder_name.as_str().to_owned(),
        id_type: shared::grpc::id_type_to_pb(c.id.kind()) as i32,
        id_number: c.id.number().to_owned(),
        balance: c.balance.to_string(),
        status: card_status_to_pb(c.status) as i32,
        wrong_password_tries: c.wrong_password_tries,
        opened_at: Some(timestamp(from_ms(c.opened_at_ms))),
    }
}

pub fn signup(s: &SignUp) -> pb::SignUp {
    let failure = s.failure.as_ref();
    pb::SignUp {
        signup_id: s.id.to_string(),
        card_number_masked: s.card.masked(),
        platform_account: s.account.as_str().to_owned(),
        real_name: s.real_name.as_str().to_owned(),
        id_type: shared::grpc::id_type_to_pb(s.id_doc.kind()) as i32,
        id_number_masked: s.id_doc.masked(),
        mobile: s.mobile.as_str().to_owned(),
        daily_limit: s.limit.to_string(),
        status: signup_status_to_pb(s.status) as i32,
        failure_reason: failure.map(|f| f.reason.clone()).unwrap_or_default(),
        failure_message: failure.map(|f| f.message.clone()).unwrap_or_default(),
        created_at: Some(timestamp(from_ms(s.created_at_ms))),
        updated_at: Some(timestamp(from_ms(s.updated_at_ms))),
        business_date: s.business_date.map(|d| d.to_string()).unwrap_or_default(),
    }
}

pub fn account_kind_from_pb(v: i32) -> Result<AccountKind, FieldError> {
    match pb::AccountKind::try_from(v) {
        Ok(pb::AccountKind::CardOnly) => Ok(AccountKind::CardOnly),
        Ok(pb::AccountKind::CardAndPassbook) => Ok(AccountKind::CardAndPassbook),
        _ => Err(FieldError::new(
            "account_kind",
            "ACCOUNT_KIND_UNKNOWN",
            "account_kind must be CARD_ONLY or CARD_AND_PASSBOOK",
        )),
    }
}

pub fn card_status_to_pb(s: CardStatus) -> pb::CardStatus {
    match s {
        CardStatus::Normal => pb::CardStatus::Normal,
        CardStatus::Locked => pb::CardStatus::Locked,
        CardStatus::Frozen => pb::CardStatus::Frozen,
        CardStatus::Closed => pb::CardStatus::Closed,
    }
}

/// A status a teller may set: NORMAL, FROZEN or CLOSED.
pub fn settable_card_status_from_pb(v: i32) -> Result<CardStatus, FieldError> {
    match pb::CardStatus::try_from(v) {
        Ok(pb::CardStatus::Normal) => Ok(CardStatus::Normal),
        Ok(pb::CardStatus::Frozen) => Ok(CardStatus::Frozen),
        Ok(pb::CardStatus::Closed) => Ok(CardStatus::Closed),
        _ => Err(FieldError::new(
            "status",
            "CARD_STATUS_INVALID",
            "status must be NORMAL, FROZEN or CLOSED (LOCKED comes only from wrong passwords)",
        )),
    }
}

pub fn signup_status_to_pb(s: SignUpStatus) -> common::SignUpStatus {
    match s {
        SignUpStatus::Pending => common::SignUpStatus::Pending,
        SignUpStatus::Signed => common::SignUpStatus::Signed,
        SignUpStatus::Failed => common::SignUpStatus::Failed,
        SignUpStatus::Cancelling => common::SignUpStatus::Cancelling,
        SignUpStatus::Cancelled => common::SignUpStatus::Cancelled,
    }
}

pub fn payment(p: &Payment) -> pb::Payment {
    let failure = p.failure.as_ref();
    pb::Payment {
        order_no: p.order_no.as_str().to_owned(),
        signup_id: p.signup_id.to_string(),
        card_number_masked: p.card.masked(),
        amount: p.amount.to_string(),
        status: match p.status {
            PaymentStatus::CodeSent => pb::PaymentStatus::CodeSent,
            PaymentStatus::Success => pb::PaymentStatus::Success,
            PaymentStatus::Failed => pb::PaymentStatus::Failed,
        } as i32,
        bank_serial_no: p.serial.clone().unwrap_or_default(),
        business_date: p.business_date.map(|d| d.to_string()).unwrap_or_default(),
        paid_at: p.paid_at_ms.map(|t| timestamp(from_ms(t))),
        failure_reason: failure.map(|f| f.reason.clone()).unwrap_or_default(),
        failure_message: failure.map(|f| f.message.clone()).unwrap_or_default(),
        failure_code: failure
            .map(|f| f.class.name().to_owned())
            .unwrap_or_default(),
        created_at: Some(timestamp(from_ms(p.created_at_ms))),
        refunded_amount: p.refunded.to_string(),
    }
}

/// A refund batch for the wire.
pub fn refund_batch(b: &crate::domain::RefundBatch) -> pb::RefundBatch {
    use crate::domain::BatchStatus;
    pb::RefundBatch {
        batch_no: b.batch_no.as_str().to_owned(),
        receipt_no: b.receipt_no.clone(),
        status: match b.status {
            BatchStatus::Accepted => pb::RefundBatchStatus::Accepted,
            BatchStatus::Processing => pb::RefundBatchStatus::Processing,
            BatchStatus::Done => pb::RefundBatchStatus::Done,
        } as i32,
        business_date: b.business_date.to_string(),
        record_count: b.record_count,
        total_amount: b.total.to_string(),
        sha256: b.sha256.clone(),
        size_bytes: b.size,
        accepted_at: Some(timestamp(from_ms(b.accepted_at_ms))),
        processed_count: b.processed,
        result: b.result.as_ref().map(|r| {
            let f = &r.figures;
            pb::RefundResultSummary {
                sha256: f.sha256.clone(),
                size_bytes: f.size,
                business_date: f.business_date.to_string(),
                success_count: f.success_count,
                success_amount: f.success_total.to_string(),
                failed_count: f.failed_count,
                failed_amount: f.failed_total.to_string(),
                done_at: Some(timestamp(from_ms(r.done_at_ms))),
            }
        }),
    }
}
