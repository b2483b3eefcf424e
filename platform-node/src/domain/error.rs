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
