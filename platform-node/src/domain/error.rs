use shared::{ErrorClass, FieldError, PeerRefusal, Refusal};

use super::AccountStatus;
use super::pay::{PAY_LOCK_MS, PAY_PASSWORD_WRONG_LIMIT};

/// Every way the platform refuses a request. `docs/errors.md` lists the reason codes.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A request field did not parse (INVALID_ARGUMENT, the field's own reason).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// ACCOUNT_EXISTS: an account with that e-mail exists.
    #[error("an account with that e-mail address already exists")]
    AccountExists,
    /// ACCOUNT_NOT_FOUND: no account with that e-mail.
    #[error("no platform account with that e-mail address")]
    AccountNotFound,
    /// ACCOUNT_NOT_NORMAL: the account is frozen or closed.
    #[error("the platform account is {}, not normal", .0.code().to_lowercase())]
    AccountNotNormal(AccountStatus),
    /// ACCOUNT_CLOSED: a closed account does not change status again.
    #[error("the platform account is closed for good")]
    AccountClosed,
    /// NAME_MISMATCH: the real name sent is not the account's.
    #[error("the real name given is not the platform account's real name")]
    NameMismatch,
    /// LOGIN_FAILED: unknown account or wrong password (deliberately one answer).
    #[error("wrong e-mail address or login password")]
    LoginFailed,
    /// SESSION_INVALID: no such session, or it ended.
    #[error("not logged in, or the session has ended: log in again")]
    SessionInvalid,
    /// SIGN_UP_NOT_FOUND: no card-link for that card / sign-up on this account.
    #[error("no card-link sign-up for that card on this account")]
    SignUpNotFound,
    /// SIGN_UP_NOT_NORMAL: the card-link is no longer signed.
    #[error("the card-link is no longer in normal status")]
    SignUpNotNormal,
    /// LINK_NOT_ACTIVATED: signed but not activated on the website yet.
    #[error("the card-link is signed but not activated: activate it with the card number first")]
    LinkNotActivated,
    /// SIGN_UP_ID_REUSED: the bank sent a known sign-up id with other content.
    #[error("that sign-up id is already recorded with different content")]
    SignUpIdReused,
    /// PAY_PASSWORD_WRONG: the payment password is wrong; it counts towards the payment lock.
    #[error("{}", wrong_pay_password_message(*.tries_left))]
    PayPasswordWrong {
        /// Wrong tries left before payment locks (0: it is now locked).
        tries_left: u32,
    },
    /// PAY_LOCKED: five wrong payment passwords in a row locked payment for 30 minutes.
    #[error(
        "payment is locked after {PAY_PASSWORD_WRONG_LIMIT} wrong payment passwords in a row, until {}",
        until.with_timezone(&shared::clock::cst()).format("%Y-%m-%d %H:%M:%S (China time)")
    )]
    PayLocked {
        /// When it unlocks, business time.
        until: chrono::DateTime<chrono::Utc>,
    },
    /// ORDER_NO_REUSED: the order number was used for another payment.
    #[error("that order number was already used for a different payment")]
    OrderNoReused,
    /// ORDER_NOT_FOUND: no such order (of this account).
    #[error("no order with that number")]
    OrderNotFound,
    /// ORDER_NOT_AWAITING_CODE: no code was sent for the order yet.
    #[error("no one-time code was sent for that order yet: start the payment (again) first")]
    OrderNotAwaitingCode,
    /// PAYMENT_OUTCOME_UNKNOWN: the bank's answer to the debit never came.
    #[error(
        "the bank did not answer ({0}); the order is UNKNOWN until the bank says: the platform asks it, and confirming again with the same code is safe. Do not pay again under a new order number"
    )]
    PaymentOutcomeUnknown(String),
    /// A file's fault (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for FILE_TOO_LARGE), with the line
    /// and field at fault.
    #[error(transparent)]
    File(#[from] shared::files::FileError),
    /// The bank refused a pushed file: its refusal relayed, with the line and field it named.
    #[error("{}", .0.refusal.message)]
    BankRefusedFile(super::FileRefusal),
    /// BATCH_NO_REUSED: another file holds that batch number (and the bank did not refuse it).
    #[error(
        "another batch file holds that batch number; a number may be used again only after the bank refused it"
    )]
    BatchNoReused,
    /// BATCH_NOT_FOUND: no batch with that number.
    #[error("no refund batch with that number")]
    BatchNotFound,
    /// BATCH_NOT_ACCEPTED: the bank has not accepted the batch.
    #[error("the batch is {}, not accepted by the bank", .0.code().to_lowercase())]
    BatchNotAccepted(super::RefundBatchStatus),
    /// RESULT_NOT_READY: the bank has not finished the batch.
    #[error(
        "the bank has not finished the batch yet ({0} of {1} lines processed); ask again later"
    )]
    ResultNotReady(u64, u64),
    /// RESULT_CORRUPT: the result file did not match its hash or its header; nothing applied.
    #[error("the result file is damaged and was not applied: {0}")]
    ResultCorrupt(String),
    /// FILE_CORRUPT: a downloaded day file did not match its hash or its own figures.
    #[error("the bank's file is corrupt: {0}; nothing was compared")]
    FileCorrupt(String),
    /// CASE_NOT_FOUND: no such error case.
    #[error("no error case with that id")]
    CaseNotFound,
    /// CASE_CLOSED: the case is closed already.
    #[error("the case is closed already")]
    CaseClosed,
    /// RESULT_NOT_FETCHED: no result file fetched for the batch yet.
    #[error("no result file fetched for that batch yet: FetchRefundResult first")]
    ResultNotFetched,
    /// ORDER_NOT_FOUND for an entry of a refund list.
    #[error("refunds[{0}]: no order {1}")]
    RefundOrderNotFound(usize, shared::domain::OrderNo),
    /// ORDER_NOT_PAID for an entry of a refund list.
    #[error("refunds[{0}]: order {1} is {status}, not paid", status = .2.code().to_lowercase())]
    RefundOrderNotPaid(usize, shared::domain::OrderNo, super::OrderStatus),
    /// The bank's refusal, relayed with its class, reason and domain.
    #[error("{0}")]
    Relayed(PeerRefusal),
    /// INTERNAL: a fault of ours.
    #[error("internal error in the platform")]
    Internal(#[from] anyhow::Error),
}

fn wrong_pay_password_message(tries_left: u32) -> String {
    match tries_left {
        0 => format!(
            "wrong payment password, {PAY_PASSWORD_WRONG_LIMIT} wrong in a row: payment is now locked for {} minutes",
            PAY_LOCK_MS / 60_000
        ),
        n => format!("wrong payment password; {n} more wrong tries in a row lock payment"),
    }
}

impl Refusal for PlatformError {
    fn class(&self) -> ErrorClass {
        use PlatformError::*;
        match self {
            Field(_) => ErrorClass::InvalidArgument,
            AccountExists | SignUpIdReused => ErrorClass::AlreadyExists,
            AccountNotFound | SignUpNotFound => ErrorClass::NotFound,
            AccountNotNormal(_) | AccountClosed | NameMismatch | SignUpNotNormal
            | LinkNotActivated => ErrorClass::FailedPrecondition,
            LoginFailed | SessionInvalid => ErrorClass::Unauthenticated,
            PayPasswordWrong { .. } => ErrorClass::PermissionDenied,
            PayLocked { .. } => ErrorClass::FailedPrecondition,
            OrderNoReused => ErrorClass::AlreadyExists,
            OrderNotFound => ErrorClass::NotFound,
            OrderNotAwaitingCode => ErrorClass::FailedPrecondition,
            PaymentOutcomeUnknown(_) => ErrorClass::Unavailable,
            File(f) => f.class,
            BankRefusedFile(r) => r.refusal.class,
            BatchNoReused => ErrorClass::AlreadyExists,
            BatchNotFound | RefundOrderNotFound(..) => ErrorClass::NotFound,
            BatchNotAccepted(_)
            | ResultNotReady(..)
            | ResultNotFetched
            | RefundOrderNotPaid(..) => ErrorClass::FailedPrecondition,
            ResultCorrupt(_) | FileCorrupt(_) => ErrorClass::DataLoss,
            CaseNotFound => ErrorClass::NotFound,
            CaseClosed => ErrorClass::FailedPrecondition,
            Relayed(r) => r.class,
            Internal(_) => ErrorClass::Internal,
        }
    }

    fn reason(&self) -> &str {
        use PlatformError::*;
        match self {
            Field(f) => f.reason,
            AccountExists => "ACCOUNT_EXISTS",
            AccountNotFound => "ACCOUNT_NOT_FOUND",
            AccountNotNormal(_) => "ACCOUNT_NOT_NORMAL",
            AccountClosed => "ACCOUNT_CLOSED",
            NameMismatch => "NAME_MISMATCH",
            LoginFailed => "LOGIN_FAILED",
            SessionInvalid => "SESSION_INVALID",
            SignUpNotFound => "SIGN_UP_NOT_FOUND",
            SignUpNotNormal => "SIGN_UP_NOT_NORMAL",
            LinkNotActivated => "LINK_NOT_ACTIVATED",
            SignUpIdReused => "SIGN_UP_ID_REUSED",
            PayPasswordWrong { .. } => "PAY_PASSWORD_WRONG",
            PayLocked { .. } => "PAY_LOCKED",
            OrderNoReused => "ORDER_NO_REUSED",
            OrderNotFound => "ORDER_NOT_FOUND",
            OrderNotAwaitingCode => "ORDER_NOT_AWAITING_CODE",
            PaymentOutcomeUnknown(_) => "PAYMENT_OUTCOME_UNKNOWN",
            File(f) => f.reason,
            BankRefusedFile(r) => &r.refusal.reason,
            BatchNoReused => "BATCH_NO_REUSED",
            BatchNotFound => "BATCH_NOT_FOUND",
            BatchNotAccepted(_) => "BATCH_NOT_ACCEPTED",
            ResultNotReady(..) => "RESULT_NOT_READY",
            ResultCorrupt(_) => "RESULT_CORRUPT",
            FileCorrupt(_) => "FILE_CORRUPT",
            CaseNotFound => "CASE_NOT_FOUND",
            CaseClosed => "CASE_CLOSED",
            ResultNotFetched => "RESULT_NOT_FETCHED",
            RefundOrderNotFound(..) => "ORDER_NOT_FOUND",
            RefundOrderNotPaid(..) => "ORDER_NOT_PAID",
            Relayed(r) => &r.reason,
            Internal(_) => "INTERNAL",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            PlatformError::Field(f) => Some(f.field),
            PlatformError::File(f) => f.field,
            PlatformError::BankRefusedFile(r) => r.field.as_deref(),
            PlatformError::RefundOrderNotFound(..) | PlatformError::RefundOrderNotPaid(..) => {
                Some("refunds")
            }
            _ => None,
        }
    }

    fn line(&self) -> Option<u64> {
        match self {
            PlatformError::File(f) => Some(f.line),
            PlatformError::BankRefusedFile(r) => r.line,
            _ => None,
        }
    }

    fn origin(&self) -> Option<&str> {
        match self {
            PlatformError::Relayed(r) => Some(&r.domain),
            PlatformError::BankRefusedFile(r) => Some(&r.refusal.domain),
            _ => None,
        }
    }
}
