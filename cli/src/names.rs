//! Names the CLI and scenario files use for gRPC codes and durations.

use anyhow::Context;

pub use shared::grpc::{code_from_name, code_name};

/// A duration as a number and a unit (`250ms`, `90s`, `5m`, `2h`, `1d`), in milliseconds.
pub fn parse_duration_ms(s: &str) -> anyhow::Result<i64> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .context("a duration is a number and a unit: 250ms, 90s, 5m, 2h, 1d")?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().context("a duration starts with a number")?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => anyhow::bail!("unknown unit {unit:?}: use ms, s, m, h or d"),
    };
    n.checked_mul(unit_ms).context("duration too long")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_round_trip() {
        for i in 0..17 {
            let code = tonic::Code::from_i32(i);
            assert_eq!(code_from_name(code_name(code)), Some(code));
        }
        assert_eq!(
            code_from_name("failed_precondition"),
            Some(tonic::Code::FailedPrecondition)
        );
        assert_eq!(code_from_name("9"), Some(tonic::Code::FailedPrecondition));
        assert_eq!(code_from_name("17"), None);
        assert_eq!(code_from_name("NOPE"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("5m").unwrap(), 300_000);
        assert_eq!(parse_duration_ms("1d").unwrap(), 86_400_000);
        assert!(parse_duration_ms("5").is_err());
        assert!(parse_duration_ms("5w").is_err());
        assert!(parse_duration_ms("m").is_err());
    }
}
