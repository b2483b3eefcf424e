use shared::{ErrorClass, FieldError, PeerRefusal, Refusal};

use super::AccountStatus;

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
    /// PAY_PASSWORD_WRONG: the payment password is wrong.
    #[error("wrong payment password")]
    PayPasswordWrong,
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
    /// The bank's refusal, relayed with its class, reason and domain.
    #[error("{0}")]
    Relayed(PeerRefusal),
    /// INTERNAL: a fault of ours.
    #[error("internal error in the platform")]
    Internal(#[from] anyhow::Error),
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
            PayPasswordWrong => ErrorClass::PermissionDenied,
            OrderNoReused => ErrorClass::AlreadyExists,
            OrderNotFound => ErrorClass::NotFound,
            OrderNotAwaitingCode => ErrorClass::FailedPrecondition,
            PaymentOutcomeUnknown(_) => ErrorClass::Unavailable,
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
            PayPasswordWrong => "PAY_PASSWORD_WRONG",
            OrderNoReused => "ORDER_NO_REUSED",
            OrderNotFound => "ORDER_NOT_FOUND",
            OrderNotAwaitingCode => "ORDER_NOT_AWAITING_CODE",
            PaymentOutcomeUnknown(_) => "PAYMENT_OUTCOME_UNKNOWN",
            Relayed(r) => &r.reason,
            Internal(_) => "INTERNAL",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            PlatformError::Field(f) => Some(f.field),
            _ => None,
        }
    }

    fn origin(&self) -> Option<&str> {
        match self {
            PlatformError::Relayed(r) => Some(&r.domain),
            _ => None,
        }
    }
}
