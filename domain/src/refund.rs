//! What a batch refund carries: the batch number (the key of a batch file at both institutions),
//! the refund id (the key of one refund, never used twice) and the refund amount.

use std::fmt;

use super::pay::{PayAmount, is_key};
use crate::error::ParseError;
use crate::money::{Money, MoneyError};

/// A refund batch number: 1 to 32 characters of `[A-Za-z0-9_-]`. It names the batch file at both
/// nodes and in their file stores, so it is also a safe file name.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BatchNo(String);

/// Why a batch number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a batch number is 1 to 32 characters of A-Z, a-z, 0-9, _ and -")]
pub struct BatchNoError;

impl ParseError for BatchNoError {
    fn reason(&self) -> &'static str {
        "BATCH_NO_INVALID"
    }
}

impl BatchNo {
    /// The longest batch number.
    pub const LEN_MAX: usize = 32;

    /// Parses a batch number.
    pub fn parse(s: &str) -> Result<BatchNo, BatchNoError> {
        if is_key(s, Self::LEN_MAX) {
            Ok(BatchNo(s.to_owned()))
        } else {
            Err(BatchNoError)
        }
    }

    /// The batch number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refund id: 1 to 32 characters of `[A-Za-z0-9_-]`, unique for ever at the bank.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RefundId(String);

/// Why a refund id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a refund id is 1 to 32 characters of A-Z, a-z, 0-9, _ and -")]
pub struct RefundIdError;

impl ParseError for RefundIdError {
    fn reason(&self) -> &'static str {
        "REFUND_ID_INVALID"
    }
}

impl RefundId {
    /// The longest refund id.
    pub const LEN_MAX: usize = 32;

    /// Parses a refund id.
    pub fn parse(s: &str) -> Result<RefundId, RefundIdError> {
        if is_key(s, Self::LEN_MAX) {
            Ok(RefundId(s.to_owned()))
        } else {
            Err(RefundIdError)
        }
    }

    /// The refund id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The amount of one refund: positive, at most two decimals, at most 5000.00 yuan (no payment is
/// larger, and a refund never exceeds its payment).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefundAmount(Money);

/// Why a refund amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundAmountError {
    /// Not a money string (`"abc"`, `"-5"`, `"1.234"`, empty).
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Zero or above 5000.00.
    #[error("a refund amount is from 0.01 to 5000.00 yuan, got {0}")]
    OutOfRange(Money),
}

impl ParseError for RefundAmountError {
    fn reason(&self) -> &'static str {
        "AMOUNT_INVALID"
    }
}

impl RefundAmount {
    /// Parses an amount from its text form.
    pub fn parse(s: &str) -> Result<RefundAmount, RefundAmountError> {
        RefundAmount::new(Money::parse(s)?)
    }

    /// An amount of money that is a refund amount (0.01 to 5000.00).
    pub fn new(m: Money) -> Result<RefundAmount, RefundAmountError> {
        if (1..=PayAmount::MAX_FEN).contains(&m.fen()) {
            Ok(RefundAmount(m))
        } else {
            Err(RefundAmountError::OutOfRange(m))
        }
    }

    /// The amount.
    pub fn money(self) -> Money {
        self.0
    }

    /// The amount in fen.
    pub fn fen(self) -> i64 {
        self.0.fen()
    }
}

impl fmt::Display for RefundAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for RefundAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefundAmount({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(BatchNo::parse("RB20311105-01").is_ok());
        assert!(RefundId::parse("R_1").is_ok());
        for bad in ["", "a b", "退款", "a|b", &"x".repeat(33)] {
            assert_eq!(BatchNo::parse(bad), Err(BatchNoError), "{bad:?}");
            assert_eq!(RefundId::parse(bad), Err(RefundIdError), "{bad:?}");
        }
    }

    #[test]
    fn amounts_are_positive_with_two_decimals_at_most() {
        for good in ["0.01", "12", "12.3", "5000.00"] {
            assert!(RefundAmount::parse(good).is_ok(), "{good:?}");
        }
        for bad in ["", "abc", "-5", "1.234", "0", "0.00", "5000.01", " 1"] {
            let e = RefundAmount::parse(bad).unwrap_err();
            assert_eq!(e.reason(), "AMOUNT_INVALID", "{bad:?}");
        }
        assert_eq!(RefundAmount::parse("12.3").unwrap().fen(), 1230);
    }
}
