//! Free text and opaque keys from the wire: a length bound in characters and no control
//! character (NUL, line breaks, escapes), so that what is stored, compared and logged is the
//! same on every backend; and the sequence cursors, bounded by what the stores can hold.

use crate::error::{FieldError, ParseError};

/// Whether `s` holds no control character (Unicode `Cc`: NUL, tab, line breaks, ESC, DEL, C1).
pub fn is_plain(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// `s` with every control character written as its Rust escape (`\n`, `\0`, `\u{1b}`): untrusted
/// text as it may be logged, kept in an audit line or put in a message.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if is_plain(s) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The first `max_chars` characters of untrusted text, control characters escaped: for an audit
/// subject, a message or a log field.
pub fn shown(s: &str, max_chars: usize) -> String {
    let head: String = s.chars().take(max_chars).collect();
    escape_controls(&head).into_owned()
}

/// An order's description: 0 to 64 characters, no control character; refused whole when longer,
/// never cut.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Description(String);

/// Why a description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a description is 0 to 64 characters with no control characters")]
pub struct DescriptionError;

impl ParseError for DescriptionError {
    fn reason(&self) -> &'static str {
        "DESCRIPTION_INVALID"
    }
}

impl Description {
    /// The longest description, in characters.
    pub const CHARS_MAX: usize = 64;

    /// Parses a description.
    pub fn parse(s: &str) -> Result<Description, DescriptionError> {
        if s.chars().count() <= Self::CHARS_MAX && is_plain(s) {
            Ok(Description(s.to_owned()))
        } else {
            Err(DescriptionError)
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An opaque key a caller filters by (a reconciliation record key, an audit subject): 1 to
/// `max` printable ASCII characters, no space.
pub fn key(
    field: &'static str,
    reason: &'static str,
    s: &str,
    max: usize,
) -> Result<String, FieldError> {
    let ok = (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| s.to_owned()).ok_or_else(|| {
        FieldError::new(
            field,
            reason,
            format!("{field} is 1 to {max} printable ASCII characters without spaces"),
        )
    })
}

/// The largest sequence number a store keeps (a signed 64-bit column).
pub const SEQ_MAX: u64 = i64::MAX as u64;

/// A paging cursor over sequence numbers: 0 to [`SEQ_MAX`].
pub fn seq_cursor(field: &'static str, v: u64) -> Result<u64, FieldError> {
    if v <= SEQ_MAX {
        Ok(v)
    } else {
        Err(FieldError::new(
            field,
            "AFTER_SEQ_INVALID",
            format!("{field} is 0 to {SEQ_MAX}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        for (raw, logged) in [
            (
                "INJ-1\n2026-01-01T00:00:00Z INFO forged",
                "INJ-1\\n2026-01-01T00:00:00Z INFO forged",
            ),
            (
                "a\0b\r\u{1b}[31m\u{7f}\u{85}",
                "a\\0b\\r\\u{1b}[31m\\u{7f}\\u{85}",
            ),
            ("张三 ORD-1", "张三 ORD-1"),
        ] {
            assert_eq!(escape_controls(raw), logged, "{raw:?}");
        }
        assert_eq!(shown("ab\ncd", 3), "ab\\n");
    }

    #[test]
    fn descriptions() {
        for ok in ["", "退货", &"长".repeat(64), "a b-c"] {
            assert!(Description::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "a\0b",
            "a\nb",
            "a\rb",
            "\u{1b}[31m",
            "\u{7f}",
            &"长".repeat(65),
        ] {
            assert_eq!(Description::parse(bad), Err(DescriptionError), "{bad:?}");
        }
    }

    #[test]
    fn keys() {
        assert!(key("k", "K_INVALID", "ORD-1", 64).is_ok());
        for bad in ["", "a b", "a\0", "长", &"k".repeat(65)] {
            let e = key("k", "K_INVALID", bad, 64).unwrap_err();
            assert_eq!((e.field, e.reason), ("k", "K_INVALID"), "{bad:?}");
        }
    }

    #[test]
    fn cursors() {
        assert_eq!(seq_cursor("after_seq", SEQ_MAX), Ok(SEQ_MAX));
        assert_eq!(seq_cursor("after_seq", 0), Ok(0));
        for bad in [SEQ_MAX + 1, u64::MAX] {
            assert_eq!(
                seq_cursor("after_seq", bad).unwrap_err().reason,
                "AFTER_SEQ_INVALID"
            );
        }
    }
}
