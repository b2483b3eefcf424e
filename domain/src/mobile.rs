use std::fmt;

use crate::error::ParseError;

/// The operator a mainland mobile number belongs to, by its number segment (号段).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    /// 中国移动.
    ChinaMobile,
    /// 中国联通.
    ChinaUnicom,
    /// 中国电信.
    ChinaTelecom,
    /// 中国广电.
    ChinaBroadnet,
    /// Virtual operators on segment 170 (虚拟运营商), whose host network the number does not tell.
    Virtual,
}

impl Carrier {
    /// A name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "China Mobile",
            Carrier::ChinaUnicom => "China Unicom",
            Carrier::ChinaTelecom => "China Telecom",
            Carrier::ChinaBroadnet => "China Broadnet",
            Carrier::Virtual => "a virtual operator",
        }
    }

    /// Whether the bank's SMS gateway sends one-time codes to this carrier (the seed: 支持移动和联通).
    pub fn supported_for_card_link(self) -> bool {
        matches!(self, Carrier::ChinaMobile | Carrier::ChinaUnicom)
    }
}

/// Number segments: the first three digits (or four, where a three-digit prefix is split).
/// `docs/test-data.md` prints this table; keep the two in step.
pub const SEGMENTS: &[(&str, Carrier)] = &[
    // China Mobile
    ("1340", Carrier::ChinaMobile),
    ("1341", Carrier::ChinaMobile),
    ("1342", Carrier::ChinaMobile),
    ("1343", Carrier::ChinaMobile),
    ("1344", Carrier::ChinaMobile),
    ("1345", Carrier::ChinaMobile),
    ("1346", Carrier::ChinaMobile),
    ("1347", Carrier::ChinaMobile),
    ("1348", Carrier::ChinaMobile),
    ("135", Carrier::ChinaMobile),
    ("136", Carrier::ChinaMobile),
    ("137", Carrier::ChinaMobile),
    ("138", Carrier::ChinaMobile),
    ("139", Carrier::ChinaMobile),
    ("147", Carrier::ChinaMobile),
    ("148", Carrier::ChinaMobile),
    ("150", Carrier::ChinaMobile),
    ("151", Carrier::ChinaMobile),
    ("152", Carrier::ChinaMobile),
    ("157", Carrier::ChinaMobile),
    ("158", Carrier::ChinaMobile),
    ("159", Carrier::ChinaMobile),
    ("165", Carrier::ChinaMobile),
    ("172", Carrier::ChinaMobile),
    ("178", Carrier::ChinaMobile),
    ("182", Carrier::ChinaMobile),
    ("183", Carrier::ChinaMobile),
    ("184", Carrier::ChinaMobile),
    ("187", Carrier::ChinaMobile),
    ("188", Carrier::ChinaMobile),
    ("195", Carrier::ChinaMobile),
    ("197", Carrier::ChinaMobile),
    ("198", Carrier::ChinaMobile),
    // China Unicom
    ("130", Carrier::ChinaUnicom),
    ("131", Carrier::ChinaUnicom),
    ("132", Carrier::ChinaUnicom),
    ("145", Carrier::ChinaUnicom),
    ("146", Carrier::ChinaUnicom),
    ("155", Carrier::ChinaUnicom),
    ("156", Carrier::ChinaUnicom),
    ("166", Carrier::ChinaUnicom),
    ("167", Carrier::ChinaUnicom),
    ("171", Carrier::ChinaUnicom),
    ("175", Carrier::ChinaUnicom),
    ("176", Carrier::ChinaUnicom),
    ("185", Carrier::ChinaUnicom),
    ("186", Carrier::ChinaUnicom),
    ("196", Carrier::ChinaUnicom),
    // China Telecom
    ("133", Carrier::ChinaTelecom),
    ("1349", Carrier::ChinaTelecom),
    ("149", Carrier::ChinaTelecom),
    ("153", Carrier::ChinaTelecom),
    ("162", Carrier::ChinaTelecom),
    ("173", Carrier::ChinaTelecom),
    ("174", Carrier::ChinaTelecom),
    ("177", Carrier::ChinaTelecom),
    ("180", Carrier::ChinaTelecom),
    ("181", Carrier::ChinaTelecom),
    ("189", Carrier::ChinaTelecom),
    ("190", Carrier::ChinaTelecom),
    ("191", Carrier::ChinaTelecom),
    ("193", Carrier::ChinaTelecom),
    ("199", Carrier::ChinaTelecom),
    // China Broadnet
    ("192", Carrier::ChinaBroadnet),
    // Virtual operators
    ("170", Carrier::Virtual),
];

/// A mainland mobile number whose carrier the bank can send one-time codes to: 11 digits on a
/// China Mobile or China Unicom segment.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile {
    number: String,
    carrier: Carrier,
}

/// Why a mobile number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MobileError {
    /// Not 11 digits starting with 1, or on no known segment.
    #[error("a mobile number is 11 digits on a mainland number segment")]
    Format,
    /// A real number on a carrier the card-link does not support.
    #[error("{} numbers are not supported: one-time codes go to China Mobile and China Unicom numbers only", .0.name())]
    CarrierUnsupported(Carrier),
}

impl ParseError for MobileError {
    fn reason(&self) -> &'static str {
        match self {
            MobileError::Format => "MOBILE_INVALID",
            MobileError::CarrierUnsupported(_) => "MOBILE_CARRIER_UNSUPPORTED",
        }
    }
}

impl Mobile {
    /// Parses a mobile number and requires a supported carrier.
    pub fn parse(s: &str) -> Result<Mobile, MobileError> {
        let carrier = carrier_of(s).ok_or(MobileError::Format)?;
        if !carrier.supported_for_card_link() {
            return Err(MobileError::CarrierUnsupported(carrier));
        }
        Ok(Mobile {
            number: s.to_owned(),
            carrier,
        })
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        &self.number
    }

    /// The carrier.
    pub fn carrier(&self) -> Carrier {
        self.carrier
    }

    /// First three and last four digits: `138****5678`.
    pub fn masked(&self) -> String {
        super::card::mask_middle(&self.number, 3, 4)
    }

    /// Whether `s` has the form [`Mobile::masked`] gives: 3 digits, 4 stars, 4 digits.
    pub fn is_masked(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 11
            && b[..3].iter().all(u8::is_ascii_digit)
            && b[3..7].iter().all(|&c| c == b'*')
            && b[7..].iter().all(u8::is_ascii_digit)
    }
}

/// The carrier of an 11-digit mainland number, `None` if malformed or on no known segment.
pub fn carrier_of(s: &str) -> Option<Carrier> {
    if s.len() != 11 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    SEGMENTS
        .iter()
        .filter(|(seg, _)| s.starts_with(seg))
        .max_by_key(|(seg, _)| seg.len())
        .map(|&(_, c)| c)
}

impl fmt::Debug for Mobile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mobile_and_unicom_numbers_parse() {
        for (n, c) in [
            ("13800138000", Carrier::ChinaMobile),
            ("13412345678", Carrier::ChinaMobile),
            ("19812345678", Carrier::ChinaMobile),
            ("13012345678", Carrier::ChinaUnicom),
            ("18612345678", Carrier::ChinaUnicom),
        ] {
            assert_eq!(Mobile::parse(n).map(|m| m.carrier()), Ok(c), "{n}");
        }
    }

    #[test]
    fn other_carriers_are_refused_with_their_own_reason() {
        for (n, c) in [
            ("13312345678", Carrier::ChinaTelecom),
            ("13491234567", Carrier::ChinaTelecom),
            ("18912345678", Carrier::ChinaTelecom),
            ("19212345678", Carrier::ChinaBroadnet),
            ("17012345678", Carrier::Virtual),
        ] {
            let err = Mobile::parse(n).unwrap_err();
            assert_eq!(err, MobileError::CarrierUnsupported(c), "{n}");
            assert_eq!(err.reason(), "MOBILE_CARRIER_UNSUPPORTED");
        }
    }

    #[test]
    fn malformed_numbers_are_refused() {
        for n in [
            "",
            "1380013800",
            "138001380000",
            "23800138000",
            "1380013800a",
            "11012345678",
            "+8613800138000",
        ] {
            assert_eq!(Mobile::parse(n), Err(MobileError::Format), "{n}");
        }
    }

    #[test]
    fn masking_keeps_prefix_and_last_four() {
        assert_eq!(
            Mobile::parse("13800138000").unwrap().masked(),
            "138****8000"
        );
    }
}
