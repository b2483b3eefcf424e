use std::fmt;

use crate::error::ParseError;

/// A bank card number: 16 to 19 digits with a valid Luhn check digit.
///
/// `Debug` shows it masked (`622188******1234`), so a card number that slips into a log line is
/// masked there too; the full number is read only through [`CardNumber::expose`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

/// Why a card number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardNumberError {
    /// Not 16 to 19 ASCII digits.
    #[error("a card number is 16 to 19 digits")]
    Format,
    /// The last digit is not the Luhn check digit of the others.
    #[error("the card number's check digit is wrong (Luhn)")]
    CheckDigit,
}

impl ParseError for CardNumberError {
    fn reason(&self) -> &'static str {
        "CARD_NUMBER_INVALID"
    }
}

impl CardNumber {
    /// The bank's BIN (issuer prefix) for cards it issues itself.
    pub const BANK_BIN: &'static str = "622188";

    /// Parses a card number.
    pub fn parse(s: &str) -> Result<CardNumber, CardNumberError> {
        if !(16..=19).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardNumberError::Format);
        }
        if !luhn_sum(s.as_bytes()).is_multiple_of(10) {
            return Err(CardNumberError::CheckDigit);
        }
        Ok(CardNumber(s.to_owned()))
    }

    /// A 19-digit number under [`CardNumber::BANK_BIN`] whose middle twelve digits are `serial`.
    pub fn issue(serial: u64) -> CardNumber {
        let body = format!("{}{:012}", Self::BANK_BIN, serial % 1_000_000_000_000);
        let mut with_zero = body.clone().into_bytes();
        with_zero.push(b'0');
        let check = (10 - luhn_sum(&with_zero) % 10) % 10;
        CardNumber(format!("{body}{check}"))
    }

    /// The full number. Only the teller's own account query and storage use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First six and last four digits, the rest as `*`: `622188*********1234`.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 6, 4)
    }
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest.
pub fn mask_middle(s: &str, head: usize, tail: usize) -> String {
    let n = s.chars().count();
    if n <= head + tail {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { c } else { '*' })
        .collect()
}

fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum()
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_valid_numbers_parse() {
        for ok in [
            "6221880000000000019",
            "4111111111111111",
            "6221881234567890129",
        ] {
            let issued = CardNumber::parse(ok);
            assert!(issued.is_ok(), "{ok} should parse: {issued:?}");
        }
    }

    #[test]
    fn wrong_check_digit_and_bad_format_are_refused() {
        assert_eq!(
            CardNumber::parse("6221880000000000018"),
            Err(CardNumberError::CheckDigit)
        );
        for bad in [
            "",
            "411111111111111",
            "62218800000000000180",
            "4111 1111 1111 1111",
            "411111111111111a",
        ] {
            assert_eq!(
                CardNumber::parse(bad),
                Err(CardNumberError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn issued_numbers_are_valid_19_digit_bank_cards() {
        for serial in [0, 1, 42, 999_999_999_999] {
            let c = CardNumber::issue(serial);
            assert_eq!(c.expose().len(), 19);
            assert!(c.expose().starts_with("622188"));
            assert_eq!(CardNumber::parse(c.expose()), Ok(c));
        }
    }

    #[test]
    fn masking_keeps_bin_and_last_four() {
        let c = CardNumber::parse("6221881234567890129").unwrap();
        assert_eq!(c.masked(), "622188*********0129");
        assert_eq!(format!("{c:?}"), "622188*********0129");
        let c16 = CardNumber::parse("4111111111111111").unwrap();
        assert_eq!(c16.masked(), "411111******1111");
    }
}
