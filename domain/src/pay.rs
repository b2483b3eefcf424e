//! What a payment carries: the order number (the idempotency key at both institutions), the
//! amount, and the one-time code.

use std::fmt;

use crate::error::ParseError;
use crate::money::{Money, MoneyError};

/// Whether `s` is a key of the link's kind: 1 to `max` characters of `[A-Za-z0-9_-]` (order,
/// batch and refund numbers).
pub(crate) fn is_key(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A platform order number: 1 to 32 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct OrderNo(String);

/// Why an order number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an order number is 1 to 32 characters of A-Z, a-z, 0-9, _ and -")]
pub struct OrderNoError;

impl ParseError for OrderNoError {
    fn reason(&self) -> &'static str {
        "ORDER_NO_INVALID"
    }
}

impl OrderNo {
    /// The longest order number.
    pub const LEN_MAX: usize = 32;

    /// Parses an order number.
    pub fn parse(s: &str) -> Result<OrderNo, OrderNoError> {
        if is_key(s, Self::LEN_MAX) {
            Ok(OrderNo(s.to_owned()))
        } else {
            Err(OrderNoError)
        }
    }

    /// The order number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The amount of one payment: 0.01 to 5000.00 yuan (no daily limit is higher, so nothing larger
/// could ever be paid).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PayAmount(Money);

/// Why a payment amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayAmountError {
    /// Not a money string.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// Zero or above 5000.00.
    #[error("a payment amount is from 0.01 to 5000.00 yuan, got {0}")]
    OutOfRange(Money),
}

impl ParseError for PayAmountError {
    fn reason(&self) -> &'static str {
        match self {
            PayAmountError::Money(_) => "MONEY_INVALID",
            PayAmountError::OutOfRange(_) => "AMOUNT_INVALID",
        }
    }
}

impl PayAmount {
    /// The largest payment, fen.
    pub const MAX_FEN: i64 = 500_000;

    /// Parses an amount from its wire form.
    pub fn parse(s: &str) -> Result<PayAmount, PayAmountError> {
        Self::new(Money::parse(s)?)
    }

    /// An amount from money, checking the range.
    pub fn new(m: Money) -> Result<PayAmount, PayAmountError> {
        if (1..=Self::MAX_FEN).contains(&m.fen()) {
            Ok(PayAmount(m))
        } else {
            Err(PayAmountError::OutOfRange(m))
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

impl fmt::Display for PayAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for PayAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PayAmount({})", self.0)
    }
}

/// A one-time code as typed: exactly 6 digits. `Debug` prints stars; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

/// Why a one-time code was refused (the message never echoes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a one-time code is exactly 6 digits")]
pub struct OtpCodeError;

impl ParseError for OtpCodeError {
    fn reason(&self) -> &'static str {
        "OTP_INVALID"
    }
}

impl OtpCode {
    /// Parses a typed code.
    pub fn parse(s: &str) -> Result<OtpCode, OtpCodeError> {
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(OtpCode(s.to_owned()))
        } else {
            Err(OtpCodeError)
        }
    }

    /// A fresh random code.
    pub fn generate() -> OtpCode {
        OtpCode(format!("{:06}", rand::random_range(0..1_000_000u32)))
    }

    /// The code itself, for hashing and for the SMS outbox only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers() {
        assert!(OrderNo::parse("ORD-2026_0001").is_ok());
        for bad in ["", "a b", "订单", &"x".repeat(33)] {
            assert_eq!(OrderNo::parse(bad), Err(OrderNoError), "{bad:?}");
        }
    }

    #[test]
    fn amounts() {
        let table = [
            ("0", Some("AMOUNT_INVALID")),
            ("0.00", Some("AMOUNT_INVALID")),
            ("0.01", None),
            ("5000.00", None),
            ("5000.01", Some("AMOUNT_INVALID")),
            ("12.345", Some("MONEY_INVALID")),
            ("-5", Some("MONEY_INVALID")),
        ];
        for (input, expect) in table {
            let got = PayAmount::parse(input).err().map(|e| e.reason());
            assert_eq!(got, expect, "input {input:?}");
        }
        assert_eq!(PayAmount::parse("12.3").unwrap().fen(), 1230);
    }

    #[test]
    fn codes_are_six_digits_and_never_printed() {
        assert!(OtpCode::parse("012345").is_ok());
        for bad in ["", "12345", "1234567", "12a456", " 12345"] {
            assert!(OtpCode::parse(bad).is_err(), "{bad:?}");
        }
        let c = OtpCode::generate();
        assert_eq!(c.expose().len(), 6);
        assert!(!format!("{c:?}").contains(c.expose()));
    }
}
