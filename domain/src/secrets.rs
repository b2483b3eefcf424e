//! Customer secrets. None of them has a `Display`; `Debug` prints stars, so a secret cannot end up
//! in a log line by accident. They are compared only through `shared::secret`.

use std::fmt;

use crate::error::ParseError;

/// Why a secret was refused (the message never echoes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// A card password is exactly 6 digits.
    #[error("a card password is exactly 6 digits")]
    CardPassword,
    /// A payment password is exactly 6 digits.
    #[error("a payment password is exactly 6 digits")]
    PayPassword,
    /// A login password is 8 to 64 characters without control characters.
    #[error("a login password is 8 to 64 characters without control characters")]
    LoginPassword,
}

impl ParseError for SecretError {
    fn reason(&self) -> &'static str {
        match self {
            SecretError::CardPassword => "CARD_PASSWORD_INVALID",
            SecretError::PayPassword => "PAY_PASSWORD_INVALID",
            SecretError::LoginPassword => "LOGIN_PASSWORD_INVALID",
        }
    }
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The secret itself, for hashing or verifying only.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(******)"))
            }
        }
    };
}

secret_type!(
    /// A card password (卡密码): exactly 6 digits.
    CardPassword
);
secret_type!(
    /// A platform payment password (支付密码): exactly 6 digits.
    PayPassword
);
secret_type!(
    /// A platform login password (登录密码): 8 to 64 characters.
    LoginPassword
);

fn six_digits(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

impl CardPassword {
    /// Parses a card password.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        six_digits(s)
            .then(|| Self(s.to_owned()))
            .ok_or(SecretError::CardPassword)
    }
}

impl PayPassword {
    /// Parses a payment password.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        six_digits(s)
            .then(|| Self(s.to_owned()))
            .ok_or(SecretError::PayPassword)
    }
}

impl LoginPassword {
    /// Parses a login password.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let n = s.chars().count();
        ((8..=64).contains(&n) && !s.chars().any(char::is_control))
            .then(|| Self(s.to_owned()))
            .ok_or(SecretError::LoginPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digit_secrets() {
        assert!(CardPassword::parse("123456").is_ok());
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(
                CardPassword::parse(bad),
                Err(SecretError::CardPassword),
                "{bad:?}"
            );
            assert_eq!(
                PayPassword::parse(bad),
                Err(SecretError::PayPassword),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn login_passwords() {
        assert!(LoginPassword::parse("correct horse").is_ok());
        assert!(LoginPassword::parse("short").is_err());
        assert!(LoginPassword::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = CardPassword::parse("123456").unwrap();
        assert_eq!(format!("{p:?}"), "CardPassword(******)");
    }
}
