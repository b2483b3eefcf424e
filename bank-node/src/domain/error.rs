use std::fmt;

use shared::{BankReason, ErrorClass, FieldError, PeerRefusal, Refusal};

use shared::Money;

use super::{
    CARD_PASSWORD_TRIES_MAX, CardStatus, OTP_TRIES_MAX, OTP_TTL_SECS, PaymentStatus, SignUpStatus,
};

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
    #[error(
        "the card is locked after {CARD_PASSWORD_TRIES_MAX} wrong passwords in a row; a teller must unlock it"
    )]
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
    /// ORDER_NO_REUSED: the order number was used for another payment (other sign-up, account
    /// or amount).
    #[error("that order number was already used for a different payment")]
    OrderNoReused,
    /// PAYMENT_NOT_FOUND: no code was requested for that order number.
    #[error("no payment with that order number: request a one-time code first")]
    PaymentNotFound,
    /// PAYMENT_ALREADY_SETTLED: a code was asked for an order that is paid or failed already.
    #[error("that order is {} already; ask GetPayment for its outcome", .0.code().to_lowercase())]
    PaymentAlreadySettled(PaymentStatus),
    /// OTP_WRONG: the code is wrong; it still works for the tries left.
    #[error("wrong one-time code; {tries_left} more wrong tries kill the code")]
    OtpWrong {
        /// Wrong tries left.
        tries_left: u32,
    },
    /// OTP_TRIES_EXCEEDED: the 3rd wrong code; the code is dead and the payment failed.
    #[error(
        "wrong one-time code, {OTP_TRIES_MAX} wrong in a row: the code no longer works and the payment failed"
    )]
    OtpTriesExceeded,
    /// OTP_EXPIRED: the code is older than 5 minutes; the payment failed.
    #[error(
        "the one-time code expired (codes work for {} minutes); the payment failed",
        OTP_TTL_SECS / 60
    )]
    OtpExpired,
    /// DAILY_LIMIT_EXCEEDED: the amount does not fit what is left of today's limit.
    #[error("the amount exceeds what is left of today's pay limit ({remaining} yuan)")]
    DailyLimitExceeded {
        /// What was left today.
        remaining: Money,
    },
    /// INSUFFICIENT_BALANCE: the card's balance is short.
    #[error("the card's balance is not enough for this payment")]
    InsufficientBalance,
    /// SYSTEM_BUSY: the bank did nothing (magic amount 0.91); try again.
    #[error("the bank's system is busy; nothing was done, try again")]
    SystemBusy,
    /// REPLY_LOST: the bank debited but its reply is lost on the way (magic amount 0.92).
    #[error("the bank's reply was lost on the way")]
    ReplyLost,
    /// A pushed file's fault (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for FILE_TOO_LARGE), with the
    /// line and field at fault.
    #[error(transparent)]
    File(#[from] shared::files::FileError),
    /// BATCH_NO_REUSED: another file was accepted under that batch number.
    #[error("another file was already accepted under that batch number")]
    BatchNoReused,
    /// BATCH_NOT_FOUND: no batch with that number.
    #[error("no refund batch with that number")]
    BatchNotFound,
    /// RESULT_NOT_READY: the batch job has not finished the batch.
    #[error("the batch is not processed yet ({0} of {1} lines done); ask again later")]
    ResultNotReady(u64, u64),
    /// DAY_NOT_CLOSED: the business date has not been closed by the day-end cutover.
    #[error("business date {0} is not closed yet: its files are built after the day-end cutover")]
    DayNotClosed(chrono::NaiveDate),
    /// DAY_NOT_SETTLED: something begun on the date is still in flight.
    #[error(
        "business date {0} still has {1} sign-up(s), cancellation(s) or refund batch(es) in flight; ask again shortly"
    )]
    DayNotSettled(chrono::NaiveDate, i64),
    /// DAY_FILE_NOT_READY: the file has not been prepared.
    #[error("the {0} file of {1} has not been prepared: call PrepareDayFile first")]
    DayFileNotReady(&'static str, chrono::NaiveDate),
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
            CardPasswordWrong { .. } | OtpWrong { .. } | OtpTriesExceeded => {
                ErrorClass::PermissionDenied
            }
            OrderNoReused => ErrorClass::AlreadyExists,
            PaymentNotFound => ErrorClass::NotFound,
            PaymentAlreadySettled(_)
            | OtpExpired
            | DailyLimitExceeded { .. }
            | InsufficientBalance => ErrorClass::FailedPrecondition,
            SystemBusy => ErrorClass::ResourceExhausted,
            File(f) => f.class,
            BatchNoReused => ErrorClass::AlreadyExists,
            BatchNotFound => ErrorClass::NotFound,
            ResultNotReady(..) => ErrorClass::FailedPrecondition,
            DayNotClosed(_) | DayFileNotReady(..) => ErrorClass::FailedPrecondition,
            DayNotSettled(..) => ErrorClass::Unavailable,
            ReplyLost => ErrorClass::Unavailable,
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
            OrderNoReused => "ORDER_NO_REUSED",
            PaymentNotFound => BankReason::PaymentNotFound.code(),
            PaymentAlreadySettled(_) => BankReason::PaymentAlreadySettled.code(),
            OtpWrong { .. } => BankReason::OtpWrong.code(),
            OtpTriesExceeded => "OTP_TRIES_EXCEEDED",
            OtpExpired => "OTP_EXPIRED",
            DailyLimitExceeded { .. } => "DAILY_LIMIT_EXCEEDED",
            InsufficientBalance => "INSUFFICIENT_BALANCE",
            SystemBusy => BankReason::SystemBusy.code(),
            ReplyLost => "REPLY_LOST",
            File(f) => f.reason,
            BatchNoReused => "BATCH_NO_REUSED",
            BatchNotFound => "BATCH_NOT_FOUND",
            ResultNotReady(..) => "RESULT_NOT_READY",
            DayNotClosed(_) => "DAY_NOT_CLOSED",
            DayNotSettled(..) => "DAY_NOT_SETTLED",
            DayFileNotReady(..) => "DAY_FILE_NOT_READY",
            Relayed(r) => &r.reason,
            Internal(_) => "INTERNAL",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            BankError::Field(f) => Some(f.field),
            BankError::File(f) => f.field,
            _ => None,
        }
    }

    fn line(&self) -> Option<u64> {
        match self {
            BankError::File(f) => Some(f.line),
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
