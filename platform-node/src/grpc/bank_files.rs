//! The platform's line to the bank's file server: [`BankFiles`] over gRPC, on a channel of its
//! own whose calls may take as long as a large file needs. Every call passes through the
//! platform's caller-side fault rules, and every answer is parsed like any other input.

use std::path::Path;

use proto::bank::v1 as pb;
use proto::bank::v1::bank_refund_service_client::BankRefundServiceClient;
use proto::bank::v1::push_refund_batch_request::Part;
use shared::domain::BatchNo;
use shared::fault::{Call, Faults, Side};
use shared::files::{ReadError, Upload, is_sha256_hex};
use shared::grpc::{PeerChannel, PeerLink, with_faults_once};
use shared::{Money, PeerFailure};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic_types::StatusExt;

use super::bank_client::{BANK_DOMAIN, bad_answer, unix_ms};
use crate::domain::{
    BankBatch, BankBatchStatus, BankFiles, BoxFuture, FileRefusal, PushFailure, ResultFigures,
};

/// How long one file transfer may take before its outcome counts as unknown.
pub const FILE_TRANSFER_TIMEOUT_SECS: u64 = 600;

/// A lazy channel to the bank over `link` whose calls may take [`FILE_TRANSFER_TIMEOUT_SECS`].
pub fn file_channel(url: &str, link: &PeerLink) -> anyhow::Result<PeerChannel> {
    shared::grpc::peer_channel(url, FILE_TRANSFER_TIMEOUT_SECS * 1000, link)
}

/// A gRPC client of the bank's BankRefundService.
#[derive(Clone)]
pub struct BankFilesClient {
    client: BankRefundServiceClient<PeerChannel>,
    faults: Faults,
}

impl BankFilesClient {
    /// A client that connects to `url` lazily over `link`, passing through the caller-side
    /// rules of `faults`.
    pub fn new(url: &str, faults: Faults, link: &PeerLink) -> anyhow::Result<BankFilesClient> {
        Ok(BankFilesClient {
            client: BankRefundServiceClient::new(file_channel(url, link)?),
            faults,
        })
    }

    fn call(method: &str) -> Call<'_> {
        Call {
            method,
            ..Call::default()
        }
    }
}

/// A refusal of a pushed file, with the line and field the bank named.
fn push_failure(s: &Status) -> PushFailure {
    match shared::grpc::peer_failure(s, BANK_DOMAIN) {
        PeerFailure::NoAnswer(d) => PushFailure::NoAnswer(d),
        PeerFailure::Refused(refusal) => {
            let meta = s
                .get_details_error_info()
                .map(|i| i.metadata)
                .unwrap_or_default();
            PushFailure::Refused(FileRefusal {
                refusal,
                line: meta.get("line").and_then(|l| l.parse().ok()),
                field: meta.get("field").map(|f| f.chars().take(64).collect()),
            })
        }
    }
}

fn bank_batch(b: Option<pb::RefundBatch>) -> Result<BankBatch, PeerFailure> {
    let b = b.ok_or_else(|| bad_answer("batch missing"))?;
    let status = match pb::RefundBatchStatus::try_from(b.status) {
        Ok(pb::RefundBatchStatus::Accepted) => BankBatchStatus::Accepted,
        Ok(pb::RefundBatchStatus::Processing) => BankBatchStatus::Processing,
        Ok(pb::RefundBatchStatus::Done) => BankBatchStatus::Done,
        _ => return Err(bad_answer("status")),
    };
    let ms =
        |t: Option<proto::Timestamp>, what| t.and_then(unix_ms).ok_or_else(|| bad_answer(what));
    let money = |s: &str, what| Money::parse(s).map_err(|_| bad_answer(what));
    let result = match (status, b.result) {
        (BankBatchStatus::Done, Some(r)) => {
            if !is_sha256_hex(&r.sha256) {
                return Err(bad_answer("result.sha256"));
            }
            Some(ResultFigures {
                sha256: r.sha256,
                size: r.size_bytes,
                business_date: r
                    .business_date
                    .parse()
                    .map_err(|_| bad_answer("result.business_date"))?,
                success_count: r.success_count,
                success_total: money(&r.success_amount, "result.success_amount")?,
                failed_count: r.failed_count,
                failed_total: money(&r.failed_amount, "result.failed_amount")?,
            })
        }
        (BankBatchStatus::Done, None) => return Err(bad_answer("result missing")),
        _ => None,
    };
    Ok(BankBatch {
        status,
        receipt_no: b.receipt_no.chars().take(64).collect(),
        accepted_at_ms: ms(b.accepted_at, "accepted_at")?,
        sha256: b.sha256,
        processed: b.processed_count,
        result,
    })
}

impl BankFiles for BankFilesClient {
    fn push_refund_batch<'a>(
        &'a self,
        batch_no: &'a BatchNo,
        sha256: &'a str,
        size: u64,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<BankBatch, PushFailure>> {
        Box::pin(async move {
            let head = pb::PushRefundBatchRequest {
                part: Some(Part::Head(pb::RefundBatchHead {
                    batch_no: batch_no.as_str().to_owned(),
                    sha256: sha256.to_owned(),
                    size_bytes: size,
                })),
            };
            // A chunk that cannot be read ends the stream short: the bank then refuses the push
            // (SIZE_MISMATCH) and nothing is accepted.
            let chunks = ReceiverStream::new(shared::files::read_chunks(path)).map_while(|c| {
                c.map_err(|e| tracing::error!(error = %e, "cannot read a batch file to push"))
                    .ok()
                    .map(|data| pb::PushRefundBatchRequest {
                        part: Some(Part::Chunk(data)),
                    })
            });
            let stream = tokio_stream::once(head).chain(chunks);
            let mut client = self.client.clone();
            let answer = with_faults_once(
                &self.faults,
                Side::Caller,
                Self::call("PushRefundBatch"),
                async move { client.push_refund_batch(stream).await },
            )
            .await
            .map_err(|s| push_failure(&s))?;
            bank_batch(answer.into_inner().batch).map_err(|f| match f {
                PeerFailure::Refused(r) => PushFailure::Refused(FileRefusal {
                    refusal: r,
                    line: None,
                    field: None,
                }),
                PeerFailure::NoAnswer(d) => PushFailure::NoAnswer(d),
            })
        })
    }

    fn refund_batch<'a>(
        &'a self,
        no: &'a BatchNo,
    ) -> BoxFuture<'a, Result<BankBatch, PeerFailure>> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let msg = pb::GetRefundBatchRequest {
                batch_no: no.as_str().to_owned(),
            };
            let answer = with_faults_once(
                &self.faults,
                Side::Caller,
                Self::call("GetRefundBatch"),
                async move { client.get_refund_batch(msg).await },
            )
            .await
            .map_err(|s| shared::grpc::peer_failure(&s, BANK_DOMAIN))?;
            bank_batch(answer.into_inner().batch)
        })
    }

    fn download_refund_result<'a>(
        &'a self,
        no: &'a BatchNo,
        mut into: Upload,
    ) -> BoxFuture<'a, Result<Result<Upload, ReadError>, PeerFailure>> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let msg = pb::DownloadRefundResultRequest {
                batch_no: no.as_str().to_owned(),
            };
            with_faults_once(
                &self.faults,
                Side::Caller,
                Self::call("DownloadRefundResult"),
                async move {
                    let mut stream = client.download_refund_result(msg).await?.into_inner();
                    while let Some(chunk) = stream.message().await? {
                        if let Err(e) = into.write(&chunk.data) {
                            return Ok(Err(e));
                        }
                    }
                    Ok(Ok(into))
                },
            )
            .await
            .map_err(|s| shared::grpc::peer_failure(&s, BANK_DOMAIN))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted_at(seconds: i64, nanos: i32) -> Result<BankBatch, PeerFailure> {
        bank_batch(Some(pb::RefundBatch {
            status: pb::RefundBatchStatus::Accepted as i32,
            accepted_at: Some(proto::Timestamp { seconds, nanos }),
            ..Default::default()
        }))
    }

    fn refused(answer: Result<BankBatch, PeerFailure>) -> Option<String> {
        match answer {
            Err(PeerFailure::Refused(r)) => Some(r.reason),
            _ => None,
        }
    }

    /// A time of the bank's answer is the platform's to keep and show again: one that does not
    /// fit a millisecond count (or is not a time of day at all) is a bad answer, not a number
    /// wrapped round or a panic.
    #[test]
    fn a_bank_time_out_of_range_is_a_bad_answer() {
        let bad = Some("BANK_ANSWER_INVALID".to_owned());
        assert_eq!(refused(accepted_at(i64::MAX, 0)), bad);
        assert_eq!(refused(accepted_at(i64::MIN, 0)), bad);
        assert_eq!(refused(accepted_at(253_402_300_800, 0)), bad, "after 9999");
        assert_eq!(refused(accepted_at(1_765_000_000, -1)), bad);
        assert_eq!(refused(accepted_at(1_765_000_000, 1_000_000_000)), bad);
        assert_eq!(
            refused(accepted_at(-62_135_596_801, 0)),
            bad,
            "before the year 1"
        );
        for (seconds, nanos, ms) in [
            (1_765_000_000, 999_999_999, 1_765_000_000_999),
            (-1, 0, -1_000),
            (-62_135_596_800, 0, -62_135_596_800_000),
        ] {
            match accepted_at(seconds, nanos) {
                Ok(b) => assert_eq!(b.accepted_at_ms, ms),
                Err(_) => panic!("{seconds} s refused"),
            }
        }
    }
}
