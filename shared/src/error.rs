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
    /// The peer institution could not be reached: UNAVAILABLE.
    Unavailable,
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
