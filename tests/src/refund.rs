//! Batch refund helpers: writing batch files, uploading them to the platform or pushing them to
//! the bank straight, running the bank's job, fetching results.

use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use shared::domain::RefundAmount;
use shared::files::Sha256Sum;
use tonic::Status;

use crate::{Payer, TestApp};

/// One line of a batch file: refund id, order number, amount (as written).
pub type BatchLine<'a> = (&'a str, &'a str, &'a str);

/// A well-formed batch file: header with the right count and the total of the valid amounts.
pub fn batch_file(batch_no: &str, lines: &[BatchLine<'_>]) -> Vec<u8> {
    let total = lines
        .iter()
        .filter_map(|(_, _, a)| RefundAmount::parse(a).ok())
        .fold(shared::Money::ZERO, |t, a| {
            t.checked_add(a.money()).unwrap()
        });
    let mut out = format!(
        "H|REFUND-BATCH|1|{batch_no}|20311105|{}|{total}\n",
        lines.len()
    );
    for (i, (id, order, amount)) in lines.iter().enumerate() {
        out += &format!("D|{}|{id}|{order}|{amount}|test refund\n", i + 1);
    }
    out.into_bytes()
}

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut s = Sha256Sum::default();
    s.update(bytes);
    s.hex()
}

const CHUNK: usize = 64 << 10;

impl TestApp {
    /// Pays `amounts` from `p`, one order each (`<prefix>-<i>`); the order numbers.
    pub async fn paid_orders(&self, p: &Payer, prefix: &str, amounts: &[&str]) -> Vec<String> {
        let mut orders = Vec::new();
        for (i, a) in amounts.iter().enumerate() {
            let no = format!("{prefix}-{i}");
            self.pay_now(p, &no, a).await.expect("payment succeeds");
            orders.push(no);
        }
        orders
    }

    /// Uploads a batch file to the platform as staff do (which pushes it to the bank).
    pub async fn upload(&self, file: &[u8]) -> Result<platform::PlatformRefundBatch, Status> {
        use platform::upload_refund_batch_request::Part;
        let mut msgs = vec![platform::UploadRefundBatchRequest {
            part: Some(Part::Head(platform::RefundUploadHead {
                sha256: sha256_hex(file),
                size_bytes: file.len() as u64,
            })),
        }];
        msgs.extend(
            file.chunks(CHUNK)
                .map(|c| platform::UploadRefundBatchRequest {
                    part: Some(Part::Chunk(c.to_vec())),
                }),
        );
        self.refunds
            .clone()
            .upload_refund_batch(tokio_stream::iter(msgs))
            .await
            .map(|r| r.into_inner().batch.unwrap())
    }

    /// Uploads a batch file from disk, streaming it in chunks (a few chunks in memory at most).
    pub async fn upload_file(
        &self,
        path: &std::path::Path,
    ) -> Result<platform::PlatformRefundBatch, Status> {
        use platform::upload_refund_batch_request::Part;
        use tokio_stream::StreamExt;
        let p = path.to_owned();
        let (sha256, size) =
            tokio::task::spawn_blocking(move || Sha256Sum::of_reader(std::fs::File::open(&p)?))
                .await
                .expect("hashing")
                .expect("read the batch file");
        let head = platform::UploadRefundBatchRequest {
            part: Some(Part::Head(platform::RefundUploadHead {
                sha256,
                size_bytes: size,
            })),
        };
        let chunks = tokio_stream::wrappers::ReceiverStream::new(shared::files::read_chunks(path))
            .map(|c| platform::UploadRefundBatchRequest {
                part: Some(Part::Chunk(c.expect("read the batch file"))),
            });
        self.refunds
            .clone()
            .upload_refund_batch(tokio_stream::iter([head]).chain(chunks))
            .await
            .map(|r| r.into_inner().batch.unwrap())
    }

    /// Pushes a file to the bank straight, announced with `sha256` and `size`.
    pub async fn push_to_bank(
        &self,
        batch_no: &str,
        file: &[u8],
        sha256: &str,
        size: u64,
    ) -> Result<bank::RefundBatch, Status> {
        use bank::push_refund_batch_request::Part;
        let mut msgs = vec![bank::PushRefundBatchRequest {
            part: Some(Part::Head(bank::RefundBatchHead {
                batch_no: batch_no.to_owned(),
                sha256: sha256.to_owned(),
                size_bytes: size,
            })),
        }];
        msgs.extend(file.chunks(CHUNK).map(|c| bank::PushRefundBatchRequest {
            part: Some(Part::Chunk(c.to_vec())),
        }));
        self.bank_refunds
            .clone()
            .push_refund_batch(tokio_stream::iter(msgs))
            .await
            .map(|r| r.into_inner().batch.unwrap())
    }

    /// Pushes a file to the bank straight with its true hash and size.
    pub async fn push(&self, batch_no: &str, file: &[u8]) -> Result<bank::RefundBatch, Status> {
        self.push_to_bank(batch_no, file, &sha256_hex(file), file.len() as u64)
            .await
    }

    /// Runs the bank's refund job now; the batches it finished.
    pub async fn run_refund_job(&self) -> Vec<String> {
        self.bank_jobs
            .clone()
            .run_refund_job(sim::RunRefundJobRequest {})
            .await
            .expect("the refund job runs")
            .into_inner()
            .finished_batch_nos
    }

    /// The bank's view of a batch.
    pub async fn bank_batch(&self, batch_no: &str) -> Result<bank::RefundBatch, Status> {
        self.bank_refunds
            .clone()
            .get_refund_batch(bank::GetRefundBatchRequest {
                batch_no: batch_no.to_owned(),
            })
            .await
            .map(|r| r.into_inner().batch.unwrap())
    }

    /// The platform's view of a batch.
    pub async fn platform_batch(
        &self,
        batch_no: &str,
    ) -> Result<platform::PlatformRefundBatch, Status> {
        self.refunds
            .clone()
            .get_refund_batch(platform::GetRefundBatchRequest {
                batch_no: batch_no.to_owned(),
            })
            .await
            .map(|r| r.into_inner().batch.unwrap())
    }

    /// Has the platform fetch and apply a batch's result.
    pub async fn fetch_result(
        &self,
        batch_no: &str,
    ) -> Result<platform::PlatformRefundBatch, Status> {
        self.refunds
            .clone()
            .fetch_refund_result(platform::FetchRefundResultRequest {
                batch_no: batch_no.to_owned(),
            })
            .await
            .map(|r| r.into_inner().batch.unwrap())
    }

    /// Every refund record of a batch at the platform, page by page.
    pub async fn refunds_of(&self, batch_no: &str) -> Vec<platform::RefundRecord> {
        let mut all: Vec<platform::RefundRecord> = Vec::new();
        loop {
            let page = self
                .refunds
                .clone()
                .list_refunds(platform::ListRefundsRequest {
                    batch_no: batch_no.to_owned(),
                    order_no: String::new(),
                    failed_only: false,
                    limit: 1000,
                    after_seq: all.last().map(|r| r.seq).unwrap_or(0),
                })
                .await
                .expect("refunds listed")
                .into_inner()
                .refunds;
            if page.is_empty() {
                return all;
            }
            all.extend(page);
        }
    }

    /// The bank's result file for a batch, downloaded straight from the bank.
    pub async fn bank_result_file(&self, batch_no: &str) -> Result<Vec<u8>, Status> {
        let mut s = self
            .bank_refunds
            .clone()
            .download_refund_result(bank::DownloadRefundResultRequest {
                batch_no: batch_no.to_owned(),
            })
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(c) = s.message().await? {
            out.extend(c.data);
        }
        Ok(out)
    }
}
