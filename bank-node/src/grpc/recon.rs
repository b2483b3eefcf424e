//! BankReconService: the successful payments stream and the T+1 day files.

use proto::bank::v1 as pb;
use proto::bank::v1::bank_recon_service_server::BankReconService;
use shared::FieldError;
use shared::clock::from_ms;
use shared::fault::{Call, Side};
use shared::files::recon::DayFileKind;
use shared::grpc::{FileStream, date_from_pb, file_stream, timestamp, with_faults_once};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::{cut, handle};
use crate::domain::{Bank, BankError, DOMAIN, DayFileInfo, DayFilePart, SuccessRecord};

pub struct Recon(pub Bank);

/// Payments per page when the caller leaves it to the bank, and the most it may ask.
pub const PAGE_SIZE_DEFAULT: u32 = 500;
const PAGE_SIZE_MAX: u32 = 1000;
/// Pages per stream when the caller leaves it to the bank, and the most it may ask.
const MAX_PAGES_DEFAULT: u32 = 100;
const MAX_PAGES_MAX: u32 = 10_000;

fn kind_from_pb(v: i32) -> Result<DayFileKind, FieldError> {
    match pb::DayFileKind::try_from(v) {
        Ok(pb::DayFileKind::Signup) => Ok(DayFileKind::SignUp),
        Ok(pb::DayFileKind::Order) => Ok(DayFileKind::Order),
        Ok(pb::DayFileKind::Clearing) => Ok(DayFileKind::Clearing),
        _ => Err(FieldError::new(
            "kind",
            "KIND_INVALID",
            "kind must be SIGNUP, ORDER or CLEARING",
        )),
    }
}

fn kind_to_pb(k: DayFileKind) -> pb::DayFileKind {
    match k {
        DayFileKind::SignUp => pb::DayFileKind::Signup,
        DayFileKind::Order => pb::DayFileKind::Order,
        DayFileKind::Clearing => pb::DayFileKind::Clearing,
    }
}

fn bounded(
    v: u32,
    default: u32,
    max: u32,
    field: &'static str,
    reason: &'static str,
) -> Result<u32, FieldError> {
    match v {
        0 => Ok(default),
        v if v <= max => Ok(v),
        _ => Err(FieldError::new(
            field,
            reason,
            format!("{field} is 1 to {max} (0 takes {default})"),
        )),
    }
}

fn payment(p: SuccessRecord) -> pb::SuccessfulPayment {
    pb::SuccessfulPayment {
        success_seq: p.seq,
        order_no: p.order_no.as_str().to_owned(),
        bank_serial_no: p.serial,
        signup_id: p.signup_id.to_string(),
        platform_account: p.account.as_str().to_owned(),
        card_number_masked: p.card_masked,
        amount: p.amount.to_string(),
        business_date: p.business_date.to_string(),
        paid_at: Some(timestamp(from_ms(p.paid_at_ms))),
    }
}

fn day_file(f: &DayFileInfo) -> pb::DayFile {
    pb::DayFile {
        kind: kind_to_pb(f.kind) as i32,
        business_date: f.business_date.to_string(),
        sha256: f.sha256.clone(),
        size_bytes: f.size,
        record_count: f.records,
        payment_total: f.payment_total.to_string(),
        built_at: Some(timestamp(from_ms(f.built_at_ms))),
    }
}

fn call(method: &str) -> Call<'_> {
    Call {
        method,
        ..Call::default()
    }
}

type PageStream = FileStream<pb::SuccessfulPaymentPage>;

#[tonic::async_trait]
impl BankReconService for Recon {
    type StreamSuccessfulPaymentsStream = PageStream;

    #[tracing::instrument(skip_all, name = "recon.stream_payments", fields(after_seq = req.get_ref().after_seq))]
    async fn stream_successful_payments(
        &self,
        req: Request<pb::StreamSuccessfulPaymentsRequest>,
    ) -> Result<Response<PageStream>, Status> {
        let r = req.into_inner();
        let subject = format!("after {}", r.after_seq);
        with_faults_once(
            &self.0.faults,
            Side::Callee,
            call("StreamSuccessfulPayments"),
            async {
                handle(&self.0, "StreamSuccessfulPayments", &subject, async {
                    let size = bounded(
                        r.page_size,
                        PAGE_SIZE_DEFAULT,
                        PAGE_SIZE_MAX,
                        "page_size",
                        "PAGE_SIZE_INVALID",
                    )?;
                    let pages = bounded(
                        r.max_pages,
                        MAX_PAGES_DEFAULT,
                        MAX_PAGES_MAX,
                        "max_pages",
                        "MAX_PAGES_INVALID",
                    )?;
                    let after = shared::domain::seq_cursor("after_seq", r.after_seq)?;
                    Ok::<_, BankError>(stream_pages(self.0.clone(), after, size, pages))
                })
                .await
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, name = "recon.prepare_day_file", fields(business_date = %cut(&req.get_ref().business_date)))]
    async fn prepare_day_file(
        &self,
        req: Request<pb::PrepareDayFileRequest>,
    ) -> Result<Response<pb::PrepareDayFileResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.business_date);
        with_faults_once(
            &self.0.faults,
            Side::Callee,
            call("PrepareDayFile"),
            async {
                handle(&self.0, "PrepareDayFile", &subject, async {
                    let kind = kind_from_pb(r.kind)?;
                    let date = date_from_pb("business_date", &r.business_date)?;
                    let f = self.0.prepare_day_file(kind, date).await?;
                    Ok::<_, BankError>(pb::PrepareDayFileResponse {
                        file: Some(day_file(&f)),
                    })
                })
                .await
            },
        )
        .await
    }

    type DownloadDayFileStream = FileStream<pb::FileChunk>;

    #[tracing::instrument(skip_all, name = "recon.download_day_file", fields(business_date = %cut(&req.get_ref().business_date)))]
    async fn download_day_file(
        &self,
        req: Request<pb::DownloadDayFileRequest>,
    ) -> Result<Response<Self::DownloadDayFileStream>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.business_date);
        with_faults_once(
            &self.0.faults,
            Side::Callee,
            call("DownloadDayFile"),
            async {
                handle(&self.0, "DownloadDayFile", &subject, async {
                    let kind = kind_from_pb(r.kind)?;
                    let date = date_from_pb("business_date", &r.business_date)?;
                    let path = self.0.day_file_path(kind, date).await?;
                    Ok::<_, BankError>(file_stream(&path, |data| pb::FileChunk { data }))
                })
                .await
            },
        )
        .await
    }

    type StreamDayFileStream = FileStream<pb::DayFileChunk>;

    #[tracing::instrument(skip_all, name = "recon.stream_day_file", fields(business_date = %cut(&req.get_ref().business_date)))]
    async fn stream_day_file(
        &self,
        req: Request<pb::StreamDayFileRequest>,
    ) -> Result<Response<Self::StreamDayFileStream>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.business_date);
        with_faults_once(&self.0.faults, Side::Callee, call("StreamDayFile"), async {
            handle(&self.0, "StreamDayFile", &subject, async {
                let kind = kind_from_pb(r.kind)?;
                let date = date_from_pb("business_date", &r.business_date)?;
                let parts = self.0.stream_day_file(kind, date).await?;
                Ok::<_, BankError>(day_file_chunks(parts))
            })
            .await
        })
        .await
    }
}

/// A day file's pieces as the stream's messages; a failed build is logged and ends the stream
/// with its status.
fn day_file_chunks(
    parts: tokio::sync::mpsc::Receiver<Result<DayFilePart, BankError>>,
) -> FileStream<pb::DayFileChunk> {
    use tokio_stream::StreamExt;
    Box::pin(ReceiverStream::new(parts).map(|part| match part {
        Ok(DayFilePart::Bytes(data)) => Ok(pb::DayFileChunk { data, file: None }),
        Ok(DayFilePart::Done(f)) => Ok(pb::DayFileChunk {
            data: Vec::new(),
            file: Some(day_file(&f)),
        }),
        Err(e) => {
            tracing::error!(error = ?e, "cannot stream a day file");
            Err(shared::grpc::status(DOMAIN, &e))
        }
    }))
}

/// Streams pages of successful payments after `after`, one page in memory at a time (the channel
/// holds at most two), until caught up or `max_pages` were sent.
fn stream_pages(bank: Bank, after: u64, size: u32, max_pages: u32) -> PageStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let span = tracing::info_span!("recon.payment_pages", after);
    tokio::spawn(
        async move {
            let mut cursor = after;
            for _ in 0..max_pages {
                let page = match bank.successful_payments(cursor, size).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = ?e, "cannot read successful payments");
                        let _ = tx.send(Err(shared::grpc::status(DOMAIN, &e))).await;
                        return;
                    }
                };
                let Some(last) = page.last().map(|p| p.seq) else {
                    return;
                };
                cursor = last;
                let full = page.len() == size as usize;
                let msg = pb::SuccessfulPaymentPage {
                    payments: page.into_iter().map(payment).collect(),
                    last_seq: last,
                };
                if tx.send(Ok(msg)).await.is_err() || !full {
                    return;
                }
            }
        }
        .instrument(span),
    );
    Box::pin(ReceiverStream::new(rx))
}
