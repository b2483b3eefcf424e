use std::fmt;

use crate::error::ParseError;

/// A platform account id: an e-mail address, kept lower case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why an e-mail address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an account is an e-mail address like name@example.com (3 to 254 characters, one @, a dot in the domain, no spaces)"
)]
pub struct EmailError;

impl ParseError for EmailError {
    fn reason(&self) -> &'static str {
        "EMAIL_INVALID"
    }
}

impl Email {
    /// The longest address (RFC 5321).
    pub const LEN_MAX: usize = 254;

    /// Parses an address; surrounding spaces trimmed, folded to lower case.
    pub fn parse(s: &str) -> Result<Email, EmailError> {
        let s = s.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or(EmailError)?;
        let ok = (3..=Self::LEN_MAX).contains(&s.len())
            && !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && s.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if ok { Ok(Email(s)) } else { Err(EmailError) }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A person's name as on their ID: 1 to 30 characters, no control characters, trimmed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a name is 1 to 30 characters without control characters")]
pub struct PersonNameError;

impl ParseError for PersonNameError {
    fn reason(&self) -> &'static str {
        "NAME_INVALID"
    }
}

impl PersonName {
    /// The longest name, in characters.
    pub const CHARS_MAX: usize = 30;

    /// Parses a name; surrounding white space is trimmed.
    pub fn parse(s: &str) -> Result<PersonName, PersonNameError> {
        let s = s.trim();
        let n = s.chars().count();
        if n == 0 || n > Self::CHARS_MAX || s.chars().any(char::is_control) {
            return Err(PersonNameError);
        }
        Ok(PersonName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.0)
    }
}

/// A caller's idempotency key: 1 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RequestId(String);

/// Why a request id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a request id is 1 to 64 characters of A-Z, a-z, 0-9, _ and -")]
pub struct RequestIdError;

impl ParseError for RequestIdError {
    fn reason(&self) -> &'static str {
        "REQUEST_ID_INVALID"
    }
}

impl RequestId {
    /// The longest id.
    pub const LEN_MAX: usize = 64;

    /// Parses a request id.
    pub fn parse(s: &str) -> Result<RequestId, RequestIdError> {
        let ok = (1..=Self::LEN_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(RequestId(s.to_owned()))
        } else {
            Err(RequestIdError)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sign-up id as the bank issues them: 1 to 40 characters of `[A-Z0-9]`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct SignUpId(String);

/// Why a sign-up id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sign-up id is 1 to 40 characters of A-Z and 0-9")]
pub struct SignUpIdError;

impl ParseError for SignUpIdError {
    fn reason(&self) -> &'static str {
        "SIGN_UP_ID_INVALID"
    }
}

impl SignUpId {
    /// The longest id.
    pub const LEN_MAX: usize = 40;

    /// Parses a sign-up id.
    pub fn parse(s: &str) -> Result<SignUpId, SignUpIdError> {
        let ok = (1..=Self::LEN_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(SignUpId(s.to_owned()))
        } else {
            Err(SignUpIdError)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The id the bank issues sign-up number `number`, begun on business date `date`: `SU`, the
    /// date, and the number in 10 digits (its last 10).
    pub fn issue(date: chrono::NaiveDate, number: u64) -> SignUpId {
        SignUpId(format!(
            "SU{}{:010}",
            date.format("%Y%m%d"),
            number % 10_000_000_000
        ))
    }
}

impl std::fmt::Display for SignUpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_ids() {
        assert!(SignUpId::parse("SU2031030300000001").is_ok());
        assert!(SignUpId::parse(&"9".repeat(40)).is_ok());
        for bad in ["", "su1", "SU 1", "SU-1", &"9".repeat(41)] {
            assert_eq!(SignUpId::parse(bad), Err(SignUpIdError), "{bad:?}");
        }
        let date = chrono::NaiveDate::from_ymd_opt(2031, 3, 3).unwrap();
        for serial in [0, 1, u64::MAX] {
            let issued = SignUpId::issue(date, serial);
            assert_eq!(SignUpId::parse(issued.as_str()), Ok(issued.clone()));
            assert_eq!(issued.to_string().len(), 20, "{issued}");
        }
        assert_eq!(
            SignUpId::issue(date, 12).to_string(),
            "SU203103030000000012"
        );
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" ZhangSan@Example.COM ").unwrap().as_str(),
            "zhangsan@example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            "a@example.",
            "a@.com",
            "a@b..com",
        ] {
            assert_eq!(Email::parse(bad), Err(EmailError), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(PersonName::parse(" 张三 ").unwrap().as_str(), "张三");
        assert!(PersonName::parse(&"名".repeat(30)).is_ok());
        for bad in ["", "   ", "张\u{0}三", &"名".repeat(31)] {
            assert_eq!(PersonName::parse(bad), Err(PersonNameError), "{bad:?}");
        }
    }

    #[test]
    fn request_ids() {
        assert!(RequestId::parse("teller-0001_A").is_ok());
        for bad in ["", "a b", "ä", &"x".repeat(65)] {
            assert_eq!(RequestId::parse(bad), Err(RequestIdError), "{bad:?}");
        }
    }
}
