//! Exact money: `rust_decimal` in the domain, integer fen at rest, decimal strings on the wire.

use std::fmt;

use rust_decimal::Decimal;

use crate::error::ParseError;

/// A non-negative amount of yuan with at most two decimal places, at most [`Money::MAX_FEN`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

/// Why a money string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not of the form `digits[.d[d]]`.
    #[error(
        "money must be a decimal number of yuan like \"12.34\", with at most two decimals and no sign, got {0:?}"
    )]
    Syntax(String),
    /// More than [`Money::MAX_FEN`] fen.
    #[error("amount is larger than the largest amount the simulator keeps (99999999999.99)")]
    TooLarge,
}

impl ParseError for MoneyError {
    fn reason(&self) -> &'static str {
        "MONEY_INVALID"
    }
}

impl Money {
    /// Zero yuan.
    pub const ZERO: Money = Money(Decimal::ZERO);
    /// The largest amount kept: 99,999,999,999.99 yuan, in fen.
    pub const MAX_FEN: i64 = 9_999_999_999_999;
    /// Longest accepted string: 11 integer digits, the point and two decimals.
    const TEXT_LEN_MAX: usize = 14;

    /// Parses a wire amount: digits, optionally a point and one or two digits. No sign, no
    /// exponent, no spaces, no thousands separators.
    pub fn parse(s: &str) -> Result<Money, MoneyError> {
        let syntax = || MoneyError::Syntax(s.chars().take(20).collect());
        if s.is_empty() || s.len() > Self::TEXT_LEN_MAX + 6 {
            return Err(syntax());
        }
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits(int)
            || !digits(frac)
            || frac.len() > 2
            || (s.contains('.') && frac.is_empty())
        {
            return Err(syntax());
        }
        let int = int.trim_start_matches('0');
        if int.len() > 11 {
            return Err(MoneyError::TooLarge);
        }
        let int_fen: i64 = if int.is_empty() {
            0
        } else {
            int.parse::<i64>().map_err(|_| syntax())? * 100
        };
        let frac_fen: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| syntax())? * 10,
            _ => frac.parse::<i64>().map_err(|_| syntax())?,
        };
        Money::from_fen(int_fen + frac_fen).ok_or(MoneyError::TooLarge)
    }

    /// An amount from integer fen; `None` when negative or above [`Money::MAX_FEN`].
    pub fn from_fen(fen: i64) -> Option<Money> {
        (0..=Self::MAX_FEN)
            .contains(&fen)
            .then(|| Money(Decimal::new(fen, 2)))
    }

    /// The amount in integer fen, for storage.
    pub fn fen(self) -> i64 {
        let mut d = self.0;
        d.rescale(2);
        i64::try_from(d.mantissa()).expect("money invariant: at most MAX_FEN fen")
    }

    /// The amount as a decimal.
    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// `self + other`, `None` past [`Money::MAX_FEN`].
    pub fn checked_add(self, other: Money) -> Option<Money> {
        Money::from_fen(self.fen().checked_add(other.fen())?)
    }

    /// `self - other`, `None` below zero.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        Money::from_fen(self.fen().checked_sub(other.fen())?)
    }
}

impl fmt::Display for Money {
    /// Two decimals, no separators: `5000.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fen = self.fen();
        write!(f, "{}.{:02}", fen / 100, fen % 100)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: Result<&str, MoneyError>) {
        let got = Money::parse(input).map(|m| m.to_string());
        assert_eq!(got, expect.map(str::to_owned), "input {input:?}");
    }

    #[test]
    fn well_formed_amounts_parse_exactly() {
        check("0", Ok("0.00"));
        check("0.01", Ok("0.01"));
        check("12", Ok("12.00"));
        check("12.3", Ok("12.30"));
        check("5000.00", Ok("5000.00"));
        check("007.50", Ok("7.50"));
        check("99999999999.99", Ok("99999999999.99"));
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for bad in [
            "", "1.234", "-5", "+5", "abc", "1e3", " 1", "1 ", ".5", "1.", "1,000", "1..2", "0x10",
            "１２",
        ] {
            assert!(
                matches!(Money::parse(bad), Err(MoneyError::Syntax(_))),
                "{bad:?} should be a syntax error"
            );
        }
        assert_eq!(Money::parse("100000000000"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn fen_round_trips() {
        for fen in [0, 1, 99, 100, 500_000, Money::MAX_FEN] {
            assert_eq!(Money::from_fen(fen).unwrap().fen(), fen);
        }
        assert_eq!(Money::from_fen(-1), None);
        assert_eq!(Money::from_fen(Money::MAX_FEN + 1), None);
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::parse("10.05").unwrap();
        let b = Money::parse("0.06").unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_string(), "10.11");
        assert_eq!(a.checked_sub(b).unwrap().to_string(), "9.99");
        assert_eq!(b.checked_sub(a), None);
    }
}
