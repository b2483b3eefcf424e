//! The one mapping from refusals to `tonic::Status` (with a `google.rpc.ErrorInfo` carrying the
//! reason), and a peer's refusal read back from its status.

use super::*;

/// The gRPC code names, by code number.
const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code an upper-snake name (`INVALID_ARGUMENT`, any case) or number names.
pub fn code_from_name(s: &str) -> Option<Code> {
    if let Ok(n) = s.parse::<i32>() {
        return (0..17).contains(&n).then(|| Code::from_i32(n));
    }
    CODE_NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| Code::from_i32(i as i32))
}

/// A code's upper-snake name.
pub fn code_name(c: Code) -> &'static str {
    CODE_NAMES.get(c as usize).copied().unwrap_or("UNKNOWN")
}

/// The gRPC code for each class; the only place this mapping lives.
pub fn code_of(class: ErrorClass) -> Code {
    match class {
        ErrorClass::InvalidArgument => Code::InvalidArgument,
        ErrorClass::NotFound => Code::NotFound,
        ErrorClass::FailedPrecondition => Code::FailedPrecondition,
        ErrorClass::PermissionDenied => Code::PermissionDenied,
        ErrorClass::Unauthenticated => Code::Unauthenticated,
        ErrorClass::AlreadyExists => Code::AlreadyExists,
        ErrorClass::Aborted => Code::Aborted,
        ErrorClass::ResourceExhausted => Code::ResourceExhausted,
        ErrorClass::Unavailable => Code::Unavailable,
        ErrorClass::DataLoss => Code::DataLoss,
        ErrorClass::Internal => Code::Internal,
    }
}

/// The class of a status a peer answered with; `None` for codes that leave the outcome unknown
/// (the peer did not say yes or no: UNAVAILABLE, DEADLINE_EXCEEDED, UNKNOWN, INTERNAL, …).
pub fn class_of(code: Code) -> Option<ErrorClass> {
    Some(match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorClass::InvalidArgument,
        Code::NotFound => ErrorClass::NotFound,
        Code::FailedPrecondition => ErrorClass::FailedPrecondition,
        Code::PermissionDenied => ErrorClass::PermissionDenied,
        Code::Unauthenticated => ErrorClass::Unauthenticated,
        Code::AlreadyExists => ErrorClass::AlreadyExists,
        Code::Aborted => ErrorClass::Aborted,
        Code::ResourceExhausted => ErrorClass::ResourceExhausted,
        _ => return None,
    })
}

/// A refusal as a status: code by class, message, and an ErrorInfo with the reason, the domain of
/// the institution that refused, the field at fault (`metadata.field`) and, for a file, the line
/// at fault (`metadata.line`).
pub fn status(domain: &str, refusal: &dyn Refusal) -> Status {
    let mut metadata = HashMap::new();
    if let Some(field) = refusal.field() {
        metadata.insert("field".to_owned(), field.to_owned());
    }
    if let Some(line) = refusal.line() {
        metadata.insert("line".to_owned(), line.to_string());
    }
    Status::with_error_details(
        code_of(refusal.class()),
        refusal.to_string(),
        ErrorDetails::with_error_info(
            refusal.reason(),
            refusal.origin().unwrap_or(domain),
            metadata,
        ),
    )
}

/// The largest message a node decodes, bytes (tonic's default limit, which the nodes keep).
pub const MESSAGE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// A message over [`MESSAGE_MAX_BYTES`]: RESOURCE_EXHAUSTED / MESSAGE_TOO_LARGE, as gRPC's own
/// implementations answer it and as a file over its limit is refused.
pub fn message_too_large() -> FileError {
    FileError {
        class: ErrorClass::ResourceExhausted,
        ..FileError::whole(
            "MESSAGE_TOO_LARGE",
            format!(
                "a message is over the {} MiB a node takes; send a file in chunks",
                MESSAGE_MAX_BYTES >> 20
            ),
        )
    }
}

/// What a broken read of a request stream (`what`: "push", "upload") answers: MESSAGE_TOO_LARGE
/// for a message over the limit (tonic's OUT_OF_RANGE), STREAM_BROKEN otherwise.
pub fn stream_broken(s: &Status, what: &str) -> FileError {
    if s.code() == Code::OutOfRange {
        return message_too_large();
    }
    FileError::whole(
        "STREAM_BROKEN",
        format!("the {what} stream broke off: {}", s.message()),
    )
}

/// tonic refuses a request message over [`MESSAGE_MAX_BYTES`] before any handler sees it, as
/// OUT_OF_RANGE with no ErrorInfo (no refusal of ours is OUT_OF_RANGE): gives such an answer
/// (trailers-only: its status in `headers`) the reason [`message_too_large`] says, in `domain`.
pub fn explain_size_refusal(headers: &mut http::HeaderMap, domain: &str) {
    let tonic_out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    if !tonic_out_of_range || headers.contains_key("grpc-status-details-bin") {
        return;
    }
    headers.remove("grpc-message");
    if let Err(e) = status(domain, &message_too_large()).add_header(headers) {
        tracing::error!(error = ?e, "cannot write the MESSAGE_TOO_LARGE status");
    }
}

/// Reads a status a peer answered with.
pub fn peer_failure(s: &Status, peer_domain: &str) -> PeerFailure {
    match class_of(s.code()) {
        None => PeerFailure::NoAnswer(format!("{:?}: {}", s.code(), s.message())),
        Some(class) => {
            let info = s.get_details_error_info();
            PeerFailure::Refused(PeerRefusal {
                class,
                reason: info
                    .as_ref()
                    .map(|i| i.reason.clone())
                    .unwrap_or_else(|| "UNSPECIFIED".to_owned()),
                domain: info
                    .map(|i| i.domain)
                    .unwrap_or_else(|| peer_domain.to_owned()),
                message: s.message().to_owned(),
            })
        }
    }
}
