//! The refusal model both nodes share: every refusal has a class (which becomes a gRPC status
//! code at the edge) and a stable machine-readable reason listed in `docs/errors.md`.

use std::fmt;

/// What kind of refusal this is; `grpc` maps each class to exactly one gRPC status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed: INVALID_ARGUMENT.
    InvalidArgument,
    /// The thing named does not exist: NOT_FOUND.
    NotFound,
    /// The thing exists but is in the wrong state for this: FAILED_PRECONDITION.
    FailedPrecondition,
    /// A customer credential (card or payment password) is wrong: PERMISSION_DENIED.
    PermissionDenied,
    /// The caller is not logged in or the login failed: UNAUTHENTICATED.
    Unauthenticated,
    /// An idempotency key was reused with other content, or a unique name is taken: ALREADY_EXISTS.
    AlreadyExists,
    /// The same request is still being processed: ABORTED (retry later).
    Aborted,
    /// The system is busy and did nothing; try again: RESOURCE_EXHAUSTED.
    ResourceExhausted,
    /// The peer institution could not be reached: UNAVAILABLE.
    Unavailable,
    /// Data came back damaged (a file that does not match its hash): DATA_LOSS.
    DataLoss,
    /// A fault of ours (database down, a bug): INTERNAL, with a generic message.
    Internal,
}

/// A refusal that leaves the edge as a status: class, reason code and a message for people.
pub trait Refusal: fmt::Display {
    /// The class, hence the gRPC status code.
    fn class(&self) -> ErrorClass;
    /// The stable reason code, UPPER_SNAKE, as listed in docs/errors.md.
    fn reason(&self) -> &str;
    /// The request field at fault, if one is.
    fn field(&self) -> Option<&str> {
        None
    }
    /// For a refusal of a file: the line at fault (1 is the header; 0 the file as a whole).
    fn line(&self) -> Option<u64> {
        None
    }
    /// For a refusal relayed from the peer institution: the peer's ErrorInfo domain.
    fn origin(&self) -> Option<&str> {
        None
    }
}

impl ErrorClass {
    /// The gRPC code name, as kept at rest and shown to people.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::InvalidArgument => "INVALID_ARGUMENT",
            ErrorClass::NotFound => "NOT_FOUND",
            ErrorClass::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorClass::PermissionDenied => "PERMISSION_DENIED",
            ErrorClass::Unauthenticated => "UNAUTHENTICATED",
            ErrorClass::AlreadyExists => "ALREADY_EXISTS",
            ErrorClass::Aborted => "ABORTED",
            ErrorClass::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorClass::Unavailable => "UNAVAILABLE",
            ErrorClass::DataLoss => "DATA_LOSS",
            ErrorClass::Internal => "INTERNAL",
        }
    }

    /// The inverse of [`ErrorClass::name`].
    pub fn from_name(s: &str) -> Option<ErrorClass> {
        use ErrorClass::*;
        [
            InvalidArgument,
            NotFound,
            FailedPrecondition,
            PermissionDenied,
            Unauthenticated,
            AlreadyExists,
            Aborted,
            ResourceExhausted,
            Unavailable,
            DataLoss,
            Internal,
        ]
        .into_iter()
        .find(|c| c.name() == s)
    }
}

/// What a peer's answer other than yes means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerFailure {
    /// The peer said no: an explicit answer that settles the outcome.
    Refused(PeerRefusal),
    /// The peer did not answer yes or no (unreachable, timed out, internal fault): the outcome is
    /// unknown, never taken as a no by guess.
    NoAnswer(String),
}

/// A refusal as the institution that made it said it; also how a settled failure is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRefusal {
    /// The class of its status code.
    pub class: ErrorClass,
    /// Its reason code (`UNSPECIFIED` if it sent none).
    pub reason: String,
    /// Its message.
    pub message: String,
    /// Its ErrorInfo domain: which institution refused.
    pub domain: String,
}

crate::coded_enum!(
    /// The bank's refusals the platform acts on by their reason: each code is written here once,
    /// the bank answers with it and the platform matches on the variant.
    BankReason {
        /// No code was requested for that order number.
        PaymentNotFound = "PAYMENT_NOT_FOUND",
        /// The payment is paid or failed already (by another request).
        PaymentAlreadySettled = "PAYMENT_ALREADY_SETTLED",
        /// A wrong one-time code (tries are left).
        OtpWrong = "OTP_WRONG",
        /// The bank did nothing; try again.
        SystemBusy = "SYSTEM_BUSY",
    }
);

impl PeerRefusal {
    /// Whether the bank refused for `reason`.
    pub fn is(&self, reason: BankReason) -> bool {
        self.reason == reason.code()
    }
}

impl fmt::Display for PeerRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Refusal for PeerRefusal {
    fn class(&self) -> ErrorClass {
        self.class
    }
    fn reason(&self) -> &str {
        &self.reason
    }
    fn origin(&self) -> Option<&str> {
        Some(&self.domain)
    }
}

/// A field of a request that did not parse into its domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The request field, as named in the .proto (e.g. `card_number`).
    pub field: &'static str,
    /// The reason code, e.g. `CARD_NUMBER_INVALID`.
    pub reason: &'static str,
    /// What is wrong, for people; never echoes a secret.
    pub message: String,
}

impl FieldError {
    /// A field error with the given field, reason and message.
    pub fn new(field: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            reason,
            message: message.into(),
        }
    }
}

impl Refusal for FieldError {
    fn class(&self) -> ErrorClass {
        ErrorClass::InvalidArgument
    }
    fn reason(&self) -> &str {
        self.reason
    }
    fn field(&self) -> Option<&str> {
        Some(self.field)
    }
}

/// Attaches the field name to a parse error: `CardNumber::parse(s).field("card_number")`.
pub trait ParseField<T> {
    /// Turns a domain parse error into a [`FieldError`] for `field`.
    fn field(self, field: &'static str) -> Result<T, FieldError>;
}

/// A parse error of a domain type: its reason code and message.
pub trait ParseError: fmt::Display {
    /// The reason code for this error, e.g. `MOBILE_CARRIER_UNSUPPORTED`.
    fn reason(&self) -> &'static str;
}

impl<T, E: ParseError> ParseField<T> for Result<T, E> {
    fn field(self, field: &'static str) -> Result<T, FieldError> {
        self.map_err(|e| FieldError::new(field, e.reason(), e.to_string()))
    }
}
