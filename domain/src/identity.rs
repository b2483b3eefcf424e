use std::fmt;

use chrono::{Datelike, NaiveDate};

use crate::error::ParseError;

crate::coded_enum!(
    /// The kind of identity document (证件类型).
    IdType {
        /// 居民身份证: 18 characters with a GB 11643 check character.
        ResidentId = "RESIDENT_ID",
        /// Passport: 5 to 17 letters and digits.
        Passport = "PASSPORT",
        /// 港澳居民来往内地通行证: H or M and 8 or 10 digits.
        HkMacaoPermit = "HK_MACAO_PERMIT",
        /// 台湾居民来往大陆通行证: 8 digits.
        TaiwanPermit = "TAIWAN_PERMIT",
    }
);

/// An identity document whose number is legal for its type. Numbers are kept upper case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdDocument {
    kind: IdType,
    number: String,
}

/// Why an ID number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Wrong length or characters for the type.
    #[error("{0}")]
    Format(&'static str),
    /// A resident ID whose first two digits are no province code.
    #[error(
        "a resident ID starts with a province code (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, 71, 81, 82)"
    )]
    Region,
    /// A resident ID whose characters 7-14 are not a real date from 1900 on.
    #[error("a resident ID's characters 7-14 must be a real birth date (YYYYMMDD, from 1900)")]
    BirthDate,
    /// A resident ID whose birth date is after the business date.
    #[error("a resident ID's birth date (characters 7-14) is after today's business date, {0}")]
    BornInTheFuture(NaiveDate),
    /// A resident ID whose 18th character is not the GB 11643 check character.
    #[error("the resident ID's check character is wrong (GB 11643)")]
    CheckDigit,
}

impl ParseError for IdError {
    fn reason(&self) -> &'static str {
        "ID_NUMBER_INVALID"
    }
}

const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

impl IdDocument {
    /// Parses an ID number for its type; a resident ID's birth date must be `today` or before (the
    /// business date of the node that reads it; a number read back from the node's own store was
    /// checked when it came in and passes [`NaiveDate::MAX`]). Surrounding spaces are trimmed,
    /// letters upper-cased.
    pub fn parse(kind: IdType, raw: &str, today: NaiveDate) -> Result<IdDocument, IdError> {
        let number = raw.trim().to_ascii_uppercase();
        let b = number.as_bytes();
        let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        match kind {
            IdType::ResidentId => {
                if b.len() != 18
                    || !all_digits(&b[..17])
                    || !(b[17].is_ascii_digit() || b[17] == b'X')
                {
                    return Err(IdError::Format(
                        "a resident ID is 17 digits and a check digit or X",
                    ));
                }
                let province = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
                if !PROVINCES.contains(&province) {
                    return Err(IdError::Region);
                }
                let born = NaiveDate::parse_from_str(&number[6..14], "%Y%m%d")
                    .ok()
                    .filter(|d| d.year() >= 1900)
                    .ok_or(IdError::BirthDate)?;
                if born > today {
                    return Err(IdError::BornInTheFuture(today));
                }
                if b[17] != resident_id_check_char(&b[..17]) {
                    return Err(IdError::CheckDigit);
                }
            }
            IdType::Passport => {
                if !(5..=17).contains(&b.len()) || !b.iter().all(u8::is_ascii_alphanumeric) {
                    return Err(IdError::Format(
                        "a passport number is 5 to 17 letters and digits",
                    ));
                }
            }
            IdType::HkMacaoPermit => {
                let ok = matches!(b.first(), Some(b'H' | b'M'))
                    && matches!(b.len(), 9 | 11)
                    && all_digits(&b[1..]);
                if !ok {
                    return Err(IdError::Format(
                        "a Hong Kong/Macao permit number is H or M and 8 or 10 digits",
                    ));
                }
            }
            IdType::TaiwanPermit => {
                if b.len() != 8 || !all_digits(b) {
                    return Err(IdError::Format("a Taiwan permit number is 8 digits"));
                }
            }
        }
        Ok(IdDocument { kind, number })
    }

    /// The document type.
    pub fn kind(&self) -> IdType {
        self.kind
    }

    /// The number, upper case.
    pub fn number(&self) -> &str {
        &self.number
    }

    /// First three and last four characters, the rest starred.
    pub fn masked(&self) -> String {
        super::card::mask_middle(&self.number, 3, 4)
    }
}

/// The GB 11643 check character of a resident ID's first 17 digits.
pub fn resident_id_check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

impl fmt::Debug for IdDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.code(), self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident(s: &str) -> Result<IdDocument, IdError> {
        IdDocument::parse(IdType::ResidentId, s, NaiveDate::MAX)
    }

    #[test]
    fn a_birth_date_after_today_is_refused() {
        let today = NaiveDate::from_ymd_opt(2031, 3, 3).unwrap();
        let born = |d: &str| {
            let first17 = format!("110105{d}001");
            format!(
                "{first17}{}",
                resident_id_check_char(first17.as_bytes()) as char
            )
        };
        for (birth, ok) in [
            ("20310303", true),
            ("20310302", true),
            ("20310304", false),
            ("20990101", false),
        ] {
            let r = IdDocument::parse(IdType::ResidentId, &born(birth), today);
            assert_eq!(r.is_ok(), ok, "{birth}: {r:?}");
        }
    }

    #[test]
    fn resident_ids_with_right_check_character_parse() {
        // 11010519491231002X: the GB 11643 standard's own example, check character X.
        assert!(resident("11010519491231002X").is_ok());
        assert!(
            resident("11010519491231002x").is_ok(),
            "lower-case x is folded"
        );
        assert_eq!(
            resident(" 11010519491231002x ").unwrap().number(),
            "11010519491231002X"
        );
        // 440308199901010012: check digit computed by the standard's weights.
        assert!(resident("440308199901010012").is_ok());
    }

    #[test]
    fn resident_id_birth_dates_must_be_real() {
        // Leap day in a leap year is real; the same day in 1999 is not; 2000 was a leap year.
        let with_check = |first17: &str| {
            let c = resident_id_check_char(first17.as_bytes()) as char;
            format!("{first17}{c}")
        };
        assert!(resident(&with_check("11010519960229001")).is_ok());
        assert!(resident(&with_check("11010520000229001")).is_ok());
        assert_eq!(
            resident(&with_check("11010519990229001")),
            Err(IdError::BirthDate)
        );
        assert_eq!(
            resident(&with_check("11010519001301001")),
            Err(IdError::BirthDate)
        );
        assert_eq!(
            resident(&with_check("11010518991231001")),
            Err(IdError::BirthDate)
        );
    }

    #[test]
    fn resident_id_errors_are_told_apart() {
        assert_eq!(resident("110105194912310021"), Err(IdError::CheckDigit));
        assert_eq!(resident("99010519491231002X"), Err(IdError::Region));
        assert!(matches!(
            resident("11010519491231002"),
            Err(IdError::Format(_))
        ));
        assert!(matches!(
            resident("1101051949123100X2"),
            Err(IdError::Format(_))
        ));
        assert!(matches!(resident(""), Err(IdError::Format(_))));
    }

    #[test]
    fn other_document_types_check_their_shapes() {
        let table = [
            (IdType::Passport, "E12345678", true),
            (IdType::Passport, "E12", false),
            (IdType::Passport, "E1234-5678", false),
            (IdType::HkMacaoPermit, "H12345678", true),
            (IdType::HkMacaoPermit, "M1234567890", true),
            (IdType::HkMacaoPermit, "X12345678", false),
            (IdType::HkMacaoPermit, "H123456789", false),
            (IdType::TaiwanPermit, "12345678", true),
            (IdType::TaiwanPermit, "1234567", false),
        ];
        for (kind, number, ok) in table {
            assert_eq!(
                IdDocument::parse(kind, number, NaiveDate::MAX).is_ok(),
                ok,
                "{kind:?} {number}"
            );
        }
    }

    #[test]
    fn masking_hides_the_middle() {
        let id = resident("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "110***********002X");
    }
}
