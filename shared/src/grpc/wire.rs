//! Small conversions at the wire: ID types, business dates, timestamps, and stored files
//! streamed as chunks.

use super::*;

/// An ID type from the wire; unset or unknown is ID_TYPE_UNKNOWN.
pub fn id_type_from_pb(v: i32) -> Result<IdType, FieldError> {
    use proto::common::v1::IdType as Pb;
    match Pb::try_from(v) {
        Ok(Pb::ResidentId) => Ok(IdType::ResidentId),
        Ok(Pb::Passport) => Ok(IdType::Passport),
        Ok(Pb::HkMacaoPermit) => Ok(IdType::HkMacaoPermit),
        Ok(Pb::TaiwanPermit) => Ok(IdType::TaiwanPermit),
        _ => Err(FieldError::new(
            "id_type",
            "ID_TYPE_UNKNOWN",
            "id_type must be RESIDENT_ID, PASSPORT, HK_MACAO_PERMIT or TAIWAN_PERMIT",
        )),
    }
}

/// A business date from the wire, `YYYY-MM-DD` (DATE_INVALID otherwise).
pub fn date_from_pb(field: &'static str, s: &str) -> Result<chrono::NaiveDate, FieldError> {
    let ok = s.len() == 10;
    ok.then(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            FieldError::new(
                field,
                "DATE_INVALID",
                format!(
                    "a business date is YYYY-MM-DD, got {:?}",
                    s.chars().take(20).collect::<String>()
                ),
            )
        })
}

/// An ID type for the wire.
pub fn id_type_to_pb(t: IdType) -> proto::common::v1::IdType {
    use proto::common::v1::IdType as Pb;
    match t {
        IdType::ResidentId => Pb::ResidentId,
        IdType::Passport => Pb::Passport,
        IdType::HkMacaoPermit => Pb::HkMacaoPermit,
        IdType::TaiwanPermit => Pb::TaiwanPermit,
    }
}

/// A timestamp for the wire.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> proto::Timestamp {
    proto::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A server-streaming reply of file chunks.
pub type FileStream<M> =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<M, Status>> + Send>>;

/// Streams a stored file as messages of at most 64 KiB (`wrap` makes a chunk a message), a few
/// chunks in memory at a time; a read error is logged and ends the stream with INTERNAL.
pub fn file_stream<M: Send + 'static>(
    path: &std::path::Path,
    wrap: fn(Vec<u8>) -> M,
) -> FileStream<M> {
    use tokio_stream::StreamExt;
    let chunks = tokio_stream::wrappers::ReceiverStream::new(crate::files::read_chunks(path)).map(
        move |c| {
            c.map(wrap).map_err(|e| {
                tracing::error!(error = %e, "cannot read a stored file");
                Status::internal("internal error")
            })
        },
    );
    Box::pin(chunks)
}
