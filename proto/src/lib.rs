//! The interbank-sim wire protocol. Only the nodes' `grpc/` modules and the CLI use these types;
//! domain code never sees them.
#![allow(clippy::all, missing_docs)]

/// Types both institutions use.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("interbank.common.v1");
        include!(concat!(env!("OUT_DIR"), "/interbank.common.v1.serde.rs"));
    }
}

/// Services the bank node serves.
pub mod bank {
    pub mod v1 {
        tonic::include_proto!("interbank.bank.v1");
        include!(concat!(env!("OUT_DIR"), "/interbank.bank.v1.serde.rs"));
    }
}

/// Services the platform node serves.
pub mod platform {
    pub mod v1 {
        tonic::include_proto!("interbank.platform.v1");
        include!(concat!(env!("OUT_DIR"), "/interbank.platform.v1.serde.rs"));
    }
}

/// Simulator controls both nodes serve (clock, faults, reset) and the bank's SMS outbox.
pub mod sim {
    pub mod v1 {
        tonic::include_proto!("interbank.sim.v1");
        include!(concat!(env!("OUT_DIR"), "/interbank.sim.v1.serde.rs"));
    }
}

/// The encoded `FileDescriptorSet` of every interbank-sim proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/interbank_descriptor.bin"));

/// What [`visit_method`] calls with an RPC's request and answer types.
pub trait MethodVisitor {
    /// What the visit gives.
    type Out;
    /// Called with the request type `I` and the answer type `O`.
    fn visit<I, O>(self) -> Self::Out
    where
        I: prost::Message + serde::Serialize + Default + 'static,
        O: prost::Message + serde::Serialize + Default + 'static;
}

include!(concat!(env!("OUT_DIR"), "/methods.rs"));

/// `google.protobuf.Timestamp`, encoded as prost-types' is, with protobuf's JSON: RFC 3339 in UTC
/// (`Z`) with 0, 3, 6 or 9 digits of fractions, from 0001-01-01 to 9999-12-31 (the generated
/// JSON code of the messages needs a type of this crate to implement serde's traits on).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds of the second, 0 to 999,999,999.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of protobuf's JSON timestamps.
const JSON_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Timestamp {
        let t = prost_types::Timestamp::from(t);
        Timestamp {
            seconds: t.seconds,
            nanos: t.nanos,
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !JSON_SECONDS.contains(&self.seconds) || !(0..1_000_000_000).contains(&self.nanos) {
            return Err(serde::ser::Error::custom("a timestamp out of JSON's range"));
        }
        let t = prost_types::Timestamp {
            seconds: self.seconds,
            nanos: self.nanos,
        };
        s.collect_str(&t)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let t: prost_types::Timestamp = text.parse().map_err(serde::de::Error::custom)?;
        Ok(Timestamp {
            seconds: t.seconds,
            nanos: t.nanos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    fn json(seconds: i64, nanos: i32) -> Option<String> {
        serde_json::to_string(&Timestamp { seconds, nanos }).ok()
    }

    /// Protobuf's JSON of a timestamp: `Z`, fractions of 0, 3, 6 or 9 digits, years 1 to 9999;
    /// read back as written.
    #[test]
    fn a_timestamp_is_protobufs_json_and_reads_back() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (1_765_000_000, 123_000_000, "2025-12-06T05:46:40.123Z"),
            (1_765_000_000, 5_000, "2025-12-06T05:46:40.000005Z"),
            (-62_135_596_800, 1, "0001-01-01T00:00:00.000000001Z"),
            (
                253_402_300_799,
                999_999_999,
                "9999-12-31T23:59:59.999999999Z",
            ),
        ];
        for (seconds, nanos, text) in cases {
            let written = json(seconds, nanos).unwrap();
            assert_eq!(written, format!("\"{text}\""));
            let read: Timestamp = serde_json::from_str(&written).unwrap();
            assert_eq!(read, Timestamp { seconds, nanos });
        }
        assert_eq!(json(253_402_300_800, 0), None, "after 9999");
        assert_eq!(json(-62_135_596_801, 0), None, "before year 1");
        assert_eq!(json(i64::MAX, 0), None);
        assert_eq!(json(0, -1), None);
        assert_eq!(json(0, 1_000_000_000), None);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
