use std::fmt;

use shared::{ErrorClass, FieldError, PeerRefusal, Refusal};

use super::{CardStatus, SignUpStatus};

/// Every way the bank refuses a request. `docs/errors.md` lists the reason codes.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// A request field did not parse (INVALID_ARGUMENT, the field's own reason).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// CARD_NOT_FOUND: no card with that number.
    #[error("no card with that number")]
    CardNotFound,
    /// CARD_NUMBER_TAKEN: the requested card number is in use.
    #[error("that card number is already in use")]
    CardNumberTaken,
    /// CARD_NOT_NORMAL: the card is frozen or closed.
    #[error("the card is {} and cannot be used", .0.word())]
    CardNotNormal(CardStatus),
    /// CARD_LOCKED: three wrong passwords in a row; a teller must unlock it.
    #[error("the card is locked after 3 wrong passwords in a row; a teller must unlock it")]
    CardLocked,
    /// CARD_NOT_LOCKED: unlock asked for a card that is not locked.
    #[error("the card is {}, not locked", .0.word())]
    CardNotLocked(CardStatus),
    /// CARD_CLOSED: a closed card does not change status again.
    #[error("the card is closed for good")]
    CardClosed,
    /// CARD_PASSWORD_WRONG: the card password is wrong; it counts towards the lock.
    #[error("{}", wrong_password_message(*.tries_left))]
    CardPasswordWrong {
        /// Wrong tries left before the card locks (0: it is now locked).
        tries_left: u32,
    },
    /// BALANCE_TOO_LARGE: the deposit would take the balance past what the bank keeps.
    #[error("the balance would exceed 99999999999.99")]
    BalanceTooLarge,
    /// ID_HOLDER_MISMATCH: the ID type, number or name is not the card holder's.
    #[error("the ID type, ID number and name given are not those of the card's holder")]
    IdHolderMismatch,
    /// CARD_ALREADY_SIGNED: the card already has a live sign-up.
    #[error("the card already has a live card-link sign-up; cancel it first")]
    CardAlreadySigned,
    /// REQUEST_ID_REUSED: the request id was used for a different sign-up form.
    #[error("request_id was already used for a different sign-up")]
    RequestIdReused,
    /// SIGN_UP_IN_PROGRESS: the same request is still waiting for the platform.
    #[error("this sign-up request is still waiting for the platform; ask again shortly")]
    SignUpInProgress,
    /// SIGN_UP_NOT_FOUND: no such sign-up (or none live on the card).
    #[error("{0}")]
    SignUpNotFound(&'static str),
    /// SIGN_UP_NOT_NORMAL: the sign-up is not in normal (signed) status.
    #[error("the sign-up is {}, not signed", .0.word())]
    SignUpNotNormal(SignUpStatus),
    /// The platform's refusal, relayed with its class, reason and domain; or a settled failure
    /// replayed for a retried request.
    #[error("{0}")]
    Relayed(PeerRefusal),
    /// INTERNAL: a fault of ours; the cause goes to the log, the caller gets a generic message.
    #[error("internal error in the bank")]
    Internal(#[from] anyhow::Error),
}

fn wrong_password_message(tries_left: u32) -> String {
    match tries_left {
        0 => "wrong card password; that was the 3rd in a row and the card is now locked".into(),
        n => format!("wrong card password; {n} more wrong tries in a row lock the card"),
    }
}

impl Refusal for BankError {
    fn class(&self) -> ErrorClass {
        use BankError::*;
        match self {
            Field(_) => ErrorClass::InvalidArgument,
            CardNotFound | SignUpNotFound(_) => ErrorClass::NotFound,
            CardNumberTaken | RequestIdReused => ErrorClass::AlreadyExists,
            CardNotNormal(_) | CardLocked | CardNotLocked(_) | CardClosed | BalanceTooLarge
            | IdHolderMismatch | CardAlreadySigned | SignUpNotNormal(_) => {
                ErrorClass::FailedPrecondition
            }
            CardPasswordWrong { .. } => ErrorClass::PermissionDenied,
            SignUpInProgress => ErrorClass::Aborted,
            Relayed(r) => r.class,
            Internal(_) => ErrorClass::Internal,
        }
    }

    fn reason(&self) -> &str {
        use BankError::*;
        match self {
            Field(f) => f.reason,
            CardNotFound => "CARD_NOT_FOUND",
            CardNumberTaken => "CARD_NUMBER_TAKEN",
            CardNotNormal(_) => "CARD_NOT_NORMAL",
            CardLocked => "CARD_LOCKED",
            CardNotLocked(_) => "CARD_NOT_LOCKED",
            CardClosed => "CARD_CLOSED",
            CardPasswordWrong { .. } => "CARD_PASSWORD_WRONG",
            BalanceTooLarge => "BALANCE_TOO_LARGE",
            IdHolderMismatch => "ID_HOLDER_MISMATCH",
            CardAlreadySigned => "CARD_ALREADY_SIGNED",
            RequestIdReused => "REQUEST_ID_REUSED",
            SignUpInProgress => "SIGN_UP_IN_PROGRESS",
            SignUpNotFound(_) => "SIGN_UP_NOT_FOUND",
            SignUpNotNormal(_) => "SIGN_UP_NOT_NORMAL",
            Relayed(r) => &r.reason,
            Internal(_) => "INTERNAL",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            BankError::Field(f) => Some(f.field),
            _ => None,
        }
    }

    fn origin(&self) -> Option<&str> {
        match self {
            BankError::Relayed(r) => Some(&r.domain),
            _ => None,
        }
    }
}

impl CardStatus {
    fn word(self) -> &'static str {
        match self {
            CardStatus::Normal => "normal",
            CardStatus::Locked => "locked",
            CardStatus::Frozen => "frozen",
            CardStatus::Closed => "closed",
        }
    }
}

impl SignUpStatus {
    fn word(self) -> &'static str {
        match self {
            SignUpStatus::Pending => "pending",
            SignUpStatus::Signed => "signed",
            SignUpStatus::Failed => "failed",
            SignUpStatus::Cancelling => "being cancelled",
            SignUpStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for SignUpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}
