//! BankRefundService: the bank's file server for refund batches, and BatchJobService, the
//! simulator's trigger for the batch job.

use proto::bank::v1 as pb;
use proto::bank::v1::bank_refund_service_server::BankRefundService;
use proto::bank::v1::push_refund_batch_request::Part;
use proto::sim::v1 as sim;
use proto::sim::v1::batch_job_service_server::BatchJobService;
use shared::domain::BatchNo;
use shared::error::ParseField;
use shared::fault::{Call, Side};
use shared::files::FileError;
use shared::grpc::{FileStream, file_stream, with_faults_once};
use tonic::{Request, Response, Status, Streaming};

use super::{convert, cut, handle};
use crate::domain::{Bank, BankError, PushHead};

pub struct Refunds(pub Bank);

pub struct Jobs(pub Bank);

type ChunkStream = FileStream<pb::FileChunk>;

fn head(h: Option<pb::RefundBatchHead>) -> Result<PushHead, BankError> {
    let h = h.ok_or_else(|| {
        FileError::whole(
            "HEAD_MISSING",
            "the first message of a push is the head: batch number, sha256 and size",
        )
    })?;
    Ok(PushHead {
        batch_no: BatchNo::parse(&h.batch_no).field("head.batch_no")?,
        sha256: h.sha256,
        size: h.size_bytes,
    })
}

async fn next_chunk(
    stream: &mut Streaming<pb::PushRefundBatchRequest>,
) -> Result<Option<Vec<u8>>, BankError> {
    let msg = stream
        .message()
        .await
        .map_err(|s| shared::grpc::stream_broken(&s, "push"))?;
    match msg.map(|m| m.part) {
        None => Ok(None),
        Some(Some(Part::Chunk(c))) => Ok(Some(c)),
        Some(_) => Err(FileError::whole(
            "CHUNK_INVALID",
            "after the head, every message of a push is a chunk",
        )
        .into()),
    }
}

#[tonic::async_trait]
impl BankRefundService for Refunds {
    #[tracing::instrument(skip_all, name = "refund.push_batch", fields(batch_no))]
    async fn push_refund_batch(
        &self,
        req: Request<Streaming<pb::PushRefundBatchRequest>>,
    ) -> Result<Response<pb::PushRefundBatchResponse>, Status> {
        let mut stream = req.into_inner();
        let first = stream.message().await?.and_then(|m| match m.part {
            Some(Part::Head(h)) => Some(h),
            _ => None,
        });
        let subject = cut(first.as_ref().map(|h| h.batch_no.as_str()).unwrap_or(""));
        tracing::Span::current().record("batch_no", subject.as_str());
        let call = Call {
            method: "PushRefundBatch",
            ..Call::default()
        };
        with_faults_once(&self.0.faults, Side::Callee, call, async {
            handle(&self.0, "PushRefundBatch", &subject, async {
                let head = head(first)?;
                let mut upload = self.0.receive_batch(&head)?;
                while let Some(chunk) = next_chunk(&mut stream).await? {
                    upload.write(&chunk)?;
                }
                let batch = self.0.accept_refund_batch(head, upload).await?;
                Ok(pb::PushRefundBatchResponse {
                    batch: Some(convert::refund_batch(&batch)),
                })
            })
            .await
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "refund.get_batch", fields(batch_no = %req.get_ref().batch_no))]
    async fn get_refund_batch(
        &self,
        req: Request<pb::GetRefundBatchRequest>,
    ) -> Result<Response<pb::GetRefundBatchResponse>, Status> {
        let r = req.into_inner();
        let call = Call {
            method: "GetRefundBatch",
            ..Call::default()
        };
        with_faults_once(&self.0.faults, Side::Callee, call, async {
            handle(&self.0, "GetRefundBatch", &cut(&r.batch_no), async {
                let no = BatchNo::parse(&r.batch_no).field("batch_no")?;
                let batch = self.0.refund_batch(&no).await?;
                Ok(pb::GetRefundBatchResponse {
                    batch: Some(convert::refund_batch(&batch)),
                })
            })
            .await
        })
        .await
    }

    type DownloadRefundResultStream = ChunkStream;

    #[tracing::instrument(skip_all, name = "refund.download_result", fields(batch_no = %req.get_ref().batch_no))]
    async fn download_refund_result(
        &self,
        req: Request<pb::DownloadRefundResultRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let r = req.into_inner();
        let call = Call {
            method: "DownloadRefundResult",
            ..Call::default()
        };
        with_faults_once(&self.0.faults, Side::Callee, call, async {
            handle(&self.0, "DownloadRefundResult", &cut(&r.batch_no), async {
                let no = BatchNo::parse(&r.batch_no).field("batch_no")?;
                let path = self.0.refund_result_path(&no).await?;
                Ok(file_stream(&path, |data| pb::FileChunk { data }))
            })
            .await
        })
        .await
    }
}

#[tonic::async_trait]
impl BatchJobService for Jobs {
    async fn run_refund_job(
        &self,
        _req: Request<sim::RunRefundJobRequest>,
    ) -> Result<Response<sim::RunRefundJobResponse>, Status> {
        handle(&self.0, "RunRefundJob", "refund job", async {
            let done = self.0.run_refund_job().await?;
            Ok(sim::RunRefundJobResponse {
                finished_batch_nos: done.iter().map(|b| b.as_str().to_owned()).collect(),
            })
        })
        .await
    }
}
