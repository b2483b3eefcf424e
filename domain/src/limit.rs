use std::fmt;

use crate::error::ParseError;
use crate::money::{Money, MoneyError};

/// A daily cumulative pay limit: 0.01 to 5000.00 yuan, at most two decimals (the seed:
/// 支付限额的范围 0.01-5000元).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DailyLimit(Money);

/// Why a limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Not a money string.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Outside 0.01 to 5000.00.
    #[error("the daily limit must be from 0.01 to 5000.00 yuan, got {0}")]
    OutOfRange(Money),
}

impl ParseError for LimitError {
    fn reason(&self) -> &'static str {
        match self {
            LimitError::Money(_) => "MONEY_INVALID",
            LimitError::OutOfRange(_) => "LIMIT_OUT_OF_RANGE",
        }
    }
}

impl DailyLimit {
    /// The highest limit: 5000.00 yuan.
    pub const MAX_FEN: i64 = 500_000;
    /// The lowest limit: 0.01 yuan.
    pub const MIN_FEN: i64 = 1;

    /// Parses a limit from its wire form.
    pub fn parse(s: &str) -> Result<DailyLimit, LimitError> {
        Self::new(Money::parse(s)?)
    }

    /// A limit from an amount, checking the range.
    pub fn new(m: Money) -> Result<DailyLimit, LimitError> {
        if (Self::MIN_FEN..=Self::MAX_FEN).contains(&m.fen()) {
            Ok(DailyLimit(m))
        } else {
            Err(LimitError::OutOfRange(m))
        }
    }

    /// The amount.
    pub fn money(self) -> Money {
        self.0
    }
}

impl fmt::Display for DailyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for DailyLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DailyLimit({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_edges() {
        let table = [
            ("0.00", Some("LIMIT_OUT_OF_RANGE")),
            ("0.01", None),
            ("5000.00", None),
            ("5000", None),
            ("5000.01", Some("LIMIT_OUT_OF_RANGE")),
            ("1.234", Some("MONEY_INVALID")),
            ("-1", Some("MONEY_INVALID")),
            ("", Some("MONEY_INVALID")),
        ];
        for (input, expect) in table {
            let got = DailyLimit::parse(input).err().map(|e| e.reason());
            assert_eq!(got, expect, "input {input:?}");
        }
        assert_eq!(DailyLimit::parse("0.01").unwrap().money().fen(), 1);
        assert_eq!(DailyLimit::parse("5000").unwrap().to_string(), "5000.00");
    }
}
