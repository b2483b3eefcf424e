//! A day file received while the bank builds it (`BankReconService.StreamDayFile`): its bytes
//! kept and hashed as they arrive, checked on a thread of their own at the same time, and an order
//! file whose keys ascend merged with the platform's orders meanwhile. The merge changes nothing:
//! what it finds to decide is held until the file has checked whole (its digest and size come at
//! the end of the stream), so a bad or broken file still changes nothing.

use std::io::{self, Cursor};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::*;
use crate::domain::{DayFilePiece, DayFilePieces};

/// Pieces of a streamed day file (up to 64 KiB each) between the receiving task and the
/// checking thread.
const PIECES_TO_CHECK: usize = 4;

/// A day file received and checked whole.
pub(super) struct ReceivedDay {
    /// What the bank described at the end of the stream.
    pub(super) file: BankDayFile,
    /// The file, received.
    pub(super) received: shared::files::Received,
    /// Its header.
    pub(super) header: shared::files::recon::DayHeader,
    /// Whether its keys ascend byte by byte.
    pub(super) ascending: bool,
}

/// What the merge found that changes something: decided once the file has checked whole.
pub(super) enum Held {
    /// The platform's order of this number, which the bank's file lacks.
    PlatformOnly(String),
    /// The file's record, which its order on the platform does not agree with (or lacks).
    Unsure(BankSuccess),
}

/// Where the merge's decisions go.
pub(super) enum Decide {
    /// Made at once (the file has checked already).
    Now,
    /// Held until the file has checked.
    Later(Vec<Held>),
    /// More than the most it may hold ([`ReconSettings::held_max`]) were: the merge gave up,
    /// to run again over the received file once it has checked (so memory stays flat on a day
    /// where the two sides differ everywhere).
    TooMany,
}

/// The merge of an order file done while it streamed.
pub(super) struct Merged {
    /// The order number of the last record merged.
    pub(super) upto: String,
    /// What it held; `None` when it gave up (too much held).
    pub(super) held: Option<Vec<Held>>,
}

/// Why receiving the stream stopped before its end.
enum Cut {
    /// The bank's stream broke, or the bank refused.
    Peer(PeerFailure),
    /// The bytes break a limit of the file store (a piece or the file too large).
    Bad(ReadError),
    /// The stream ended without the file's description.
    Short,
    /// The checking thread stopped reading: the file is bad (its error says why).
    CheckStopped,
}

impl Platform {
    /// Streams the bank's file of `run`'s kind and date while the bank builds it, keeps and
    /// hashes its bytes, and checks it on a thread as it arrives: its header for the date,
    /// every line, its figures, then its digest and size and its records as described at the
    /// end. With `merge` (an order file, a database that orders text byte by byte) its records
    /// are merged with the platform's orders meanwhile, the decisions held ([`Decide::Later`]).
    pub(super) async fn receive_day_file(
        &self,
        run: &mut Run,
        merge: bool,
    ) -> Result<(ReceivedDay, Option<Merged>), PlatformError> {
        let (kind, date) = (run.kind, run.date);
        let pieces = self
            .bank_recon
            .stream_day_file(kind, date)
            .await
            .map_err(|f| relay(f, "ask again later"))?;
        let upload = self.files.receive_unannounced().map_err(ReadError::from)?;
        let (bytes_tx, bytes_rx) = mpsc::channel(PIECES_TO_CHECK);
        let (records_tx, records_rx) = mpsc::channel(1);
        let records_tx = merge.then_some(records_tx);
        let check = blocking(move || check_streamed(bytes_rx, kind, date, records_tx));
        let merging = async {
            match merge {
                true => Some(self.merge_streamed(run, records_rx).await),
                false => None,
            }
        };
        let (pumped, checked, merged) =
            tokio::join!(pump(pieces, upload, bytes_tx), check, merging);
        let corrupt = |e: &dyn std::fmt::Display| PlatformError::FileCorrupt(e.to_string());
        let (upload, file) = match pumped {
            Ok(done) => Some(done),
            Err(Cut::Peer(f)) => return Err(relay(f, "ask again later")),
            Err(Cut::Bad(e)) => return Err(corrupt(&e)),
            Err(Cut::Short | Cut::CheckStopped) => None,
        }
        .unzip();
        let (header, ascending) = checked?.map_err(|e| corrupt(&e))?;
        let (Some(upload), Some(file)) = (upload, file) else {
            return Err(corrupt(
                &"the bank's stream ended before the file's description",
            ));
        };
        let merged = merged.transpose()?;
        let received = upload
            .finish_as(&file.sha256, file.size)
            .map_err(|e| corrupt(&e))?;
        if header.figures.records != file.records {
            return Err(corrupt(&format!(
                "the bank described {} records, the file holds {}",
                file.records, header.figures.records
            )));
        }
        let day = ReceivedDay {
            file,
            received,
            header,
            ascending,
        };
        Ok((day, merged))
    }

    /// Merges the order records of a streamed file, chunk by chunk as the checking thread
    /// hands them over, holding the decisions. Giving up (too much held) drops `records`, and
    /// the checking thread then checks on without handing more.
    async fn merge_streamed(
        &self,
        run: &mut Run,
        mut records: mpsc::Receiver<Vec<OrderRecord>>,
    ) -> Result<Merged, PlatformError> {
        let mut decide = Decide::Later(Vec::new());
        let mut upto = String::new();
        while let Some(chunk) = records.recv().await {
            let last = chunk.last().map(|r| r.order_no.as_str().to_owned());
            let last = last.unwrap_or_default();
            self.merge_chunk(run, &chunk, &upto, Some(&last), &mut decide)
                .await?;
            upto = last;
            if matches!(decide, Decide::TooMany) {
                break;
            }
        }
        let held = match decide {
            Decide::Later(held) => Some(held),
            _ => None,
        };
        Ok(Merged { upto, held })
    }
}

/// Receives the bank's pieces into `upload` and hands each to the checking thread, until the
/// file's description, which it answers with the upload.
async fn pump(
    mut pieces: DayFilePieces,
    mut upload: Upload,
    to_check: mpsc::Sender<io::Result<Cursor<Vec<u8>>>>,
) -> Result<(Upload, BankDayFile), Cut> {
    while let Some(piece) = pieces.recv().await {
        match piece.map_err(Cut::Peer)? {
            DayFilePiece::Bytes(bytes) => {
                upload.write(&bytes).map_err(Cut::Bad)?;
                if to_check.send(Ok(Cursor::new(bytes))).await.is_err() {
                    return Err(Cut::CheckStopped);
                }
            }
            DayFilePiece::Done(file) => return Ok((upload, file)),
        }
    }
    Err(Cut::Short)
}

/// Checks a day file as its bytes arrive (on a blocking thread): [`check_day_file`], which also
/// says whether its keys ascend. While they do, its order records go to `records` in chunks of
/// [`COMPARE_CHUNK`]; the last chunk only once the whole file has checked.
fn check_streamed(
    bytes: mpsc::Receiver<io::Result<Cursor<Vec<u8>>>>,
    kind: DayFileKind,
    date: NaiveDate,
    mut records: Option<mpsc::Sender<Vec<OrderRecord>>>,
) -> Result<(shared::files::recon::DayHeader, bool), ReadError> {
    // Read in place from the pieces as they come: the bridge is itself buffered.
    let input = SyncIoBridge::new(StreamReader::new(ReceiverStream::new(bytes)));
    let (mut last, mut ascending) = (String::new(), true);
    let mut chunk = Vec::with_capacity(COMPARE_CHUNK);
    let header = check_day_file(input, kind, date, |r| {
        let key = r.key();
        ascending &= key > last;
        last = key;
        if !ascending {
            records = None;
        }
        if let (Some(tx), DayRecord::Order(o)) = (&records, r) {
            chunk.push(o);
            if chunk.len() == COMPARE_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(COMPARE_CHUNK));
                if tx.blocking_send(full).is_err() {
                    records = None;
                }
            }
        }
        Ok::<_, Infallible>(())
    })?;
    let header = header.unwrap_or_else(|never| match never {});
    if let Some(tx) = records.filter(|_| !chunk.is_empty()) {
        // The merge may have given up meanwhile: then nobody needs this chunk.
        let _ = tx.blocking_send(chunk);
    }
    Ok((header, ascending))
}
