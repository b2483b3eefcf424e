//! The platform's line to the bank's reconciliation service: [`BankRecon`] over gRPC, on a
//! channel whose calls may take as long as a large file needs. Every call passes through the
//! platform's caller-side fault rules, and every answer is parsed like any other input.

use chrono::NaiveDate;
use proto::bank::v1 as pb;
use proto::bank::v1::bank_recon_service_client::BankReconServiceClient;
use shared::PeerFailure;
use shared::domain::{Email, OrderNo, PayAmount, SignUpId};
use shared::fault::{Call, Faults, Side};
use shared::files::is_sha256_hex;
use shared::files::recon::{DayFileKind, is_masked_card, is_signup_id};
use shared::grpc::{PeerChannel, PeerLink, with_faults_once};

use super::bank_client::{BANK_DOMAIN, bad_answer};
use super::bank_files::file_channel;
use crate::domain::{
    BankDayFile, BankPage, BankRecon, BankSuccess, BoxFuture, DayFilePiece, DayFilePieces,
};

/// A gRPC client of the bank's BankReconService.
#[derive(Clone)]
pub struct BankReconClient {
    client: BankReconServiceClient<PeerChannel>,
    faults: Faults,
}

impl BankReconClient {
    /// A client that connects to `url` lazily over `link`, passing through the caller-side
    /// rules of `faults`.
    pub fn new(url: &str, faults: Faults, link: &PeerLink) -> anyhow::Result<BankReconClient> {
        Ok(BankReconClient {
            client: BankReconServiceClient::new(file_channel(url, link)?),
            faults,
        })
    }
}

fn kind_to_pb(k: DayFileKind) -> pb::DayFileKind {
    match k {
        DayFileKind::SignUp => pb::DayFileKind::Signup,
        DayFileKind::Order => pb::DayFileKind::Order,
        DayFileKind::Clearing => pb::DayFileKind::Clearing,
    }
}

fn call(method: &str) -> Call<'_> {
    Call {
        method,
        ..Call::default()
    }
}

/// Pieces of a day file received ahead of the platform's reading them.
const DAY_FILE_PIECES_AHEAD: usize = 4;

/// A message of a day file streamed: bytes, or (the last) the file's description, which must be
/// of the file asked for.
fn day_file_piece(
    c: pb::DayFileChunk,
    kind: DayFileKind,
    date: NaiveDate,
) -> Result<DayFilePiece, PeerFailure> {
    let Some(f) = c.file else {
        return Ok(DayFilePiece::Bytes(c.data));
    };
    if !c.data.is_empty() {
        return Err(bad_answer("bytes beside the file's description"));
    }
    if !is_sha256_hex(&f.sha256) {
        return Err(bad_answer("file.sha256"));
    }
    if f.kind != kind_to_pb(kind) as i32 || f.business_date != date.to_string() {
        return Err(bad_answer("file: another kind or date"));
    }
    Ok(DayFilePiece::Done(BankDayFile {
        sha256: f.sha256,
        size: f.size_bytes,
        records: f.record_count,
    }))
}

/// Payments per page the platform asks for, and pages per stream.
const PAGE_SIZE: u32 = 500;
const MAX_PAGES: u32 = 100;

fn page(p: pb::SuccessfulPaymentPage, after: u64) -> Result<BankPage, PeerFailure> {
    let full = p.payments.len() == PAGE_SIZE as usize;
    let mut last = after;
    let mut payments = Vec::with_capacity(p.payments.len());
    for s in p.payments {
        if s.success_seq <= last {
            return Err(bad_answer("success_seq out of order"));
        }
        if payments.len() == PAGE_SIZE as usize {
            return Err(bad_answer("a page longer than asked for"));
        }
        last = s.success_seq;
        if !is_signup_id(&s.signup_id) || !is_masked_card(&s.card_number_masked) {
            return Err(bad_answer("signup_id or card_number_masked"));
        }
        payments.push(BankSuccess {
            seq: s.success_seq,
            order_no: OrderNo::parse(&s.order_no).map_err(|_| bad_answer("order_no"))?,
            serial: s.bank_serial_no.chars().take(40).collect(),
            signup_id: SignUpId::parse(&s.signup_id).map_err(|_| bad_answer("signup_id"))?,
            account: Email::parse(&s.platform_account)
                .map_err(|_| bad_answer("platform_account"))?,
            card_masked: s.card_number_masked,
            amount: PayAmount::parse(&s.amount).map_err(|_| bad_answer("amount"))?,
            business_date: s
                .business_date
                .parse::<NaiveDate>()
                .map_err(|_| bad_answer("business_date"))?,
        });
    }
    if p.last_seq != last {
        return Err(bad_answer("last_seq"));
    }
    Ok(BankPage {
        payments,
        last_seq: last,
        full,
    })
}

impl BankRecon for BankReconClient {
    fn payment_pages(
        &self,
        after: u64,
    ) -> BoxFuture<
        '_,
        Result<tokio::sync::mpsc::Receiver<Result<BankPage, PeerFailure>>, PeerFailure>,
    > {
        Box::pin(async move {
            let mut client = self.client.clone();
            let msg = pb::StreamSuccessfulPaymentsRequest {
                after_seq: after,
                page_size: PAGE_SIZE,
                max_pages: MAX_PAGES,
            };
            let mut stream = with_faults_once(
                &self.faults,
                Side::Caller,
                call("StreamSuccessfulPayments"),
                async move { client.stream_successful_payments(msg).await },
            )
            .await
            .map_err(|s| shared::grpc::peer_failure(&s, BANK_DOMAIN))?
            .into_inner();
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            tokio::spawn(async move {
                let mut cursor = after;
                loop {
                    let next = match stream.message().await {
                        Ok(Some(p)) => page(p, cursor),
                        Ok(None) => return,
                        Err(s) => Err(shared::grpc::peer_failure(&s, BANK_DOMAIN)),
                    };
                    let stop = next.is_err();
                    if let Ok(p) = &next {
                        cursor = p.last_seq;
                    }
                    if tx.send(next).await.is_err() || stop {
                        return;
                    }
                }
            });
            Ok(rx)
        })
    }

    fn stream_day_file(
        &self,
        kind: DayFileKind,
        date: NaiveDate,
    ) -> BoxFuture<'_, Result<DayFilePieces, PeerFailure>> {
        Box::pin(async move {
            let mut client = self.client.clone();
            let msg = pb::StreamDayFileRequest {
                kind: kind_to_pb(kind) as i32,
                business_date: date.to_string(),
            };
            let mut stream = with_faults_once(
                &self.faults,
                Side::Caller,
                call("StreamDayFile"),
                async move { client.stream_day_file(msg).await },
            )
            .await
            .map_err(|s| shared::grpc::peer_failure(&s, BANK_DOMAIN))?
            .into_inner();
            let (tx, rx) = tokio::sync::mpsc::channel(DAY_FILE_PIECES_AHEAD);
            tokio::spawn(async move {
                loop {
                    let next = match stream.message().await {
                        Ok(Some(c)) => day_file_piece(c, kind, date),
                        Ok(None) => return,
                        Err(s) => Err(shared::grpc::peer_failure(&s, BANK_DOMAIN)),
                    };
                    let last = !matches!(next, Ok(DayFilePiece::Bytes(_)));
                    if tx.send(next).await.is_err() || last {
                        return;
                    }
                }
            });
            Ok(rx)
        })
    }
}
