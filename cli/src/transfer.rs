//! Refund files to and from the platform, streamed in chunks: a few chunks in memory at most,
//! whatever the file's size (`ibsim refund`, `ibsim bench`).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use proto::platform::v1 as platform;
use proto::platform::v1::refund_ops_service_client::RefundOpsServiceClient;
use proto::platform::v1::upload_refund_batch_request::Part;
use shared::files::{SEND_CHUNK_BYTES, Sha256Sum};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// A file's SHA-256 and size.
pub fn hash_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Sha256Sum::of_reader(f).with_context(|| format!("cannot read {}", path.display()))
}

/// Uploads a batch file; `progress` hears of every chunk sent (bytes so far, of the size).
pub async fn upload_batch(
    ops: &mut RefundOpsServiceClient<Channel>,
    path: &Path,
    mut progress: impl FnMut(u64, u64) + Send + 'static,
) -> anyhow::Result<Option<platform::PlatformRefundBatch>> {
    let p = path.to_owned();
    let (sha256, size) = tokio::task::spawn_blocking(move || hash_file(&p)).await??;
    let (tx, rx) = mpsc::channel(4);
    tx.send(platform::UploadRefundBatchRequest {
        part: Some(Part::Head(platform::RefundUploadHead {
            sha256,
            size_bytes: size,
        })),
    })
    .await?;
    let p = path.to_owned();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut f = std::fs::File::open(&p)?;
        let mut sent = 0;
        loop {
            let mut buf = vec![0; SEND_CHUNK_BYTES];
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            sent += n as u64;
            progress(sent, size);
            if tx
                .blocking_send(platform::UploadRefundBatchRequest {
                    part: Some(Part::Chunk(buf)),
                })
                .is_err()
            {
                return Ok(());
            }
        }
    });
    let answer = ops.upload_refund_batch(ReceiverStream::new(rx)).await;
    reader.await??;
    Ok(answer?.into_inner().batch)
}

/// Downloads a batch's result file to `out`; its size in bytes.
pub async fn save_result(
    ops: &mut RefundOpsServiceClient<Channel>,
    batch_no: &str,
    out: &Path,
) -> anyhow::Result<u64> {
    let mut s = ops
        .download_refund_result(platform::DownloadRefundResultRequest {
            batch_no: batch_no.to_owned(),
        })
        .await?
        .into_inner();
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    let mut size = 0;
    while let Some(c) = s.message().await? {
        size += c.data.len() as u64;
        f.write_all(&c.data)?;
    }
    f.flush()?;
    Ok(size)
}
