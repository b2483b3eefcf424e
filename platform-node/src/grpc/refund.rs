//! RefundOpsService: settlement staff's batch refunds.

use proto::platform::v1 as pb;
use proto::platform::v1::refund_ops_service_server::RefundOpsService;
use proto::platform::v1::upload_refund_batch_request::Part;
use shared::FieldError;
use shared::domain::{BatchNo, OrderNo, RefundAmount, RefundId};
use shared::error::ParseField;
use shared::files::FileError;
use shared::grpc::{FileStream, file_stream};
use tonic::{Request, Response, Status, Streaming};

use super::{cut, handle};
use crate::domain::{
    NewRefund, Platform, PlatformError, RefundBatch, RefundBatchStatus, RefundFilter, parse_reason,
};

pub struct Refunds(pub Platform);

type ChunkStream = FileStream<pb::RefundFileChunk>;

/// ListRefunds answers this many when not told.
const LIST_DEFAULT: u32 = 100;
/// ListRefunds answers at most this many.
const LIST_MAX: u32 = 1_000;

fn batch_no(s: &str) -> Result<BatchNo, PlatformError> {
    Ok(BatchNo::parse(s).field("batch_no")?)
}

fn response(b: &RefundBatch) -> pb::RefundBatchResponse {
    pb::RefundBatchResponse {
        batch: Some(batch(b)),
    }
}

fn batch(b: &RefundBatch) -> pb::PlatformRefundBatch {
    use pb::PlatformRefundBatchStatus as S;
    let ts = |ms| shared::grpc::timestamp(shared::clock::from_ms(ms));
    pb::PlatformRefundBatch {
        batch_no: b.batch_no.as_str().to_owned(),
        status: match b.status {
            RefundBatchStatus::Submitted => S::Submitted,
            RefundBatchStatus::Refused => S::Refused,
            RefundBatchStatus::Accepted => S::Accepted,
            RefundBatchStatus::Processing => S::Processing,
            RefundBatchStatus::ResultReady => S::ResultReady,
            RefundBatchStatus::Done => S::Done,
        } as i32,
        business_date: b.business_date.to_string(),
        record_count: b.record_count,
        total_amount: b.total.to_string(),
        sha256: b.sha256.clone(),
        size_bytes: b.size,
        receipt_no: b.receipt_no.clone().unwrap_or_default(),
        accepted_at: b.accepted_at_ms.map(ts),
        processed_count: b.processed,
        refusal: b.refusal.as_ref().map(|r| pb::BatchRefusal {
            code: r.refusal.class.name().to_owned(),
            reason: r.refusal.reason.clone(),
            message: r.refusal.message.clone(),
            domain: r.refusal.domain.clone(),
            line: r.line.unwrap_or_default(),
            field: r.field.clone().unwrap_or_default(),
        }),
        result: b.result.as_ref().map(|r| pb::RefundResultFigures {
            sha256: r.sha256.clone(),
            size_bytes: r.size,
            business_date: r.business_date.to_string(),
            success_count: r.success_count,
            success_amount: r.success_total.to_string(),
            failed_count: r.failed_count,
            failed_amount: r.failed_total.to_string(),
        }),
        created_at: Some(ts(b.created_at_ms)),
    }
}

/// One entry of a refund list.
fn entry(i: usize, e: pb::RefundEntry) -> Result<NewRefund, PlatformError> {
    let at = |reason: &'static str, what: String| {
        FieldError::new("refunds", reason, format!("refunds[{i}].{what}"))
    };
    Ok(NewRefund {
        order_no: OrderNo::parse(&e.order_no)
            .map_err(|err| at("ORDER_NO_INVALID", format!("order_no: {err}")))?,
        amount: RefundAmount::parse(&e.amount)
            .map_err(|err| at("AMOUNT_INVALID", format!("amount: {err}")))?,
        refund_id: match e.refund_id.as_str() {
            "" => None,
            s => Some(
                RefundId::parse(s)
                    .map_err(|err| at("REFUND_ID_INVALID", format!("refund_id: {err}")))?,
            ),
        },
        reason: parse_reason(&e.reason)
            .map_err(|err| at("REASON_INVALID", format!("reason: {err}")))?,
    })
}

#[tonic::async_trait]
impl RefundOpsService for Refunds {
    #[tracing::instrument(skip_all, name = "refund.upload_batch")]
    async fn upload_refund_batch(
        &self,
        req: Request<Streaming<pb::UploadRefundBatchRequest>>,
    ) -> Result<Response<pb::RefundBatchResponse>, Status> {
        let mut stream = req.into_inner();
        handle(&self.0, "UploadRefundBatch", "upload", async {
            let head = match stream.message().await {
                Ok(Some(pb::UploadRefundBatchRequest {
                    part: Some(Part::Head(h)),
                })) => h,
                Err(s) => return Err(shared::grpc::stream_broken(&s, "upload").into()),
                _ => {
                    return Err(FileError::whole(
                        "HEAD_MISSING",
                        "the first message of an upload is the head: sha256 and size",
                    )
                    .into());
                }
            };
            let mut upload = self.0.receive_upload(&head.sha256, head.size_bytes)?;
            loop {
                let msg = stream
                    .message()
                    .await
                    .map_err(|s| shared::grpc::stream_broken(&s, "upload"))?;
                match msg.map(|m| m.part) {
                    None => break,
                    Some(Some(Part::Chunk(c))) => upload.write(&c)?,
                    Some(_) => {
                        return Err(FileError::whole(
                            "CHUNK_INVALID",
                            "after the head, every message of an upload is a chunk",
                        )
                        .into());
                    }
                }
            }
            let b = self.0.upload_refund_batch(upload).await?;
            tracing::info!(batch_no = %b.batch_no, status = b.status.code(), "refund batch uploaded");
            Ok(response(&b))
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "refund.create_batch", fields(batch_no = %req.get_ref().batch_no))]
    async fn create_refund_batch(
        &self,
        req: Request<pb::CreateRefundBatchRequest>,
    ) -> Result<Response<pb::RefundBatchResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "CreateRefundBatch", &cut(&r.batch_no), async {
            let no = batch_no(&r.batch_no)?;
            if r.refunds.len() > crate::domain::REFUNDS_PER_CREATE_MAX {
                return Err(FieldError::new(
                    "refunds",
                    "REFUNDS_TOO_MANY",
                    format!(
                        "at most {} refunds per batch; upload a file for more",
                        crate::domain::REFUNDS_PER_CREATE_MAX
                    ),
                )
                .into());
            }
            let refunds = r
                .refunds
                .into_iter()
                .enumerate()
                .map(|(i, e)| entry(i, e))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(response(&self.0.create_refund_batch(no, refunds).await?))
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "refund.get_batch", fields(batch_no = %req.get_ref().batch_no))]
    async fn get_refund_batch(
        &self,
        req: Request<pb::GetRefundBatchRequest>,
    ) -> Result<Response<pb::RefundBatchResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetRefundBatch", &cut(&r.batch_no), async {
            Ok(response(
                &self.0.refund_batch(&batch_no(&r.batch_no)?).await?,
            ))
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "refund.fetch_result", fields(batch_no = %req.get_ref().batch_no))]
    async fn fetch_refund_result(
        &self,
        req: Request<pb::FetchRefundResultRequest>,
    ) -> Result<Response<pb::RefundBatchResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "FetchRefundResult", &cut(&r.batch_no), async {
            Ok(response(
                &self.0.fetch_refund_result(&batch_no(&r.batch_no)?).await?,
            ))
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
        handle(&self.0, "DownloadRefundResult", &cut(&r.batch_no), async {
            let path = self.0.refund_result_path(&batch_no(&r.batch_no)?).await?;
            Ok(file_stream(&path, |data| pb::RefundFileChunk { data }))
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "refund.list")]
    async fn list_refunds(
        &self,
        req: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ListRefunds", &cut(&r.batch_no), async {
            let filter = RefundFilter {
                batch_no: match r.batch_no.as_str() {
                    "" => None,
                    s => Some(batch_no(s)?),
                },
                order_no: match r.order_no.as_str() {
                    "" => None,
                    s => Some(OrderNo::parse(s).field("order_no")?),
                },
                failed_only: r.failed_only,
                limit: match r.limit {
                    0 => LIST_DEFAULT,
                    n if n <= LIST_MAX => n,
                    _ => {
                        return Err(FieldError::new(
                            "limit",
                            "LIMIT_INVALID",
                            format!("limit is 1 to {LIST_MAX}"),
                        )
                        .into());
                    }
                },
                after_seq: shared::domain::seq_cursor("after_seq", r.after_seq)?,
            };
            if filter.batch_no.is_none() && filter.order_no.is_none() {
                return Err(PlatformError::from(FieldError::new(
                    "batch_no",
                    "FILTER_MISSING",
                    "give batch_no or order_no",
                )));
            }
            let refunds = self
                .0
                .refunds(&filter)
                .await?
                .into_iter()
                .map(|x| pb::RefundRecord {
                    batch_no: x.batch_no.as_str().to_owned(),
                    seq: x.seq,
                    refund_id: x.refund_id,
                    order_no: x.order_no,
                    amount: x.amount_text,
                    success: x.success,
                    reason_code: x.reason_code.unwrap_or_default(),
                    reason_text: x.reason_text.unwrap_or_default(),
                })
                .collect();
            Ok(pb::ListRefundsResponse { refunds })
        })
        .await
    }
}
