//! The interbank files: the formats (the `formats` crate, re-exported here: `files::refund`,
//! `files::recon`, `LineReader`, …) and a node's file store (the bank's "file server"): a
//! directory of batch and result files. Files arrive in chunks into a temporary file under
//! `incoming/` and move into their area only once whole and checked; a refused or abandoned file
//! is deleted, so it leaves nothing behind.

pub use formats::*;

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;
use tokio::sync::mpsc;

use crate::error::ErrorClass;

/// The largest file either node takes, bytes.
pub const FILE_BYTES_MAX: u64 = 512 << 20;
/// The largest chunk of a file in one message, bytes.
pub const CHUNK_BYTES_MAX: usize = 1 << 20;
/// The chunk size the nodes send files in, bytes.
pub const SEND_CHUNK_BYTES: usize = 64 << 10;

/// Where in the store a file lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Refund batch files.
    RefundBatches,
    /// Refund result files.
    RefundResults,
    /// T+1 reconciliation files (the bank's, and the platform's downloaded copies).
    Recon,
}

impl Area {
    fn dir(self) -> &'static str {
        match self {
            Area::RefundBatches => "refund/batches",
            Area::RefundResults => "refund/results",
            Area::Recon => "recon",
        }
    }
}

/// A directory of files.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// Opens (creating) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FileStore> {
        let store = FileStore { root: root.into() };
        std::fs::create_dir_all(store.incoming())?;
        for area in [Area::RefundBatches, Area::RefundResults, Area::Recon] {
            std::fs::create_dir_all(store.root.join(area.dir()))?;
        }
        Ok(store)
    }

    /// The path of file `name` in `area`.
    pub fn path(&self, area: Area, name: &str) -> PathBuf {
        self.root.join(area.dir()).join(name)
    }

    fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }

    /// Starts receiving a file announced as `size` bytes with SHA-256 `sha256`.
    pub fn receive(&self, sha256: &str, size: u64) -> Result<Upload, ReadError> {
        if !is_sha256_hex(sha256) {
            return Err(FileError::whole(
                "SHA256_INVALID",
                "sha256 is the file's SHA-256 in 64 lower-case hex digits",
            )
            .into());
        }
        if size > FILE_BYTES_MAX {
            return Err(too_large(size).into());
        }
        Ok(Upload {
            file: BufWriter::new(NamedTempFile::new_in(self.incoming())?),
            sum: Sha256Sum::default(),
            announced: Some((sha256.to_owned(), size)),
        })
    }

    /// Starts receiving a file whose SHA-256 and size come after its bytes (a day file streamed
    /// while the bank builds it): at most [`FILE_BYTES_MAX`] bytes, checked by
    /// [`Upload::finish_as`].
    pub fn receive_unannounced(&self) -> io::Result<Upload> {
        Ok(Upload {
            file: BufWriter::new(NamedTempFile::new_in(self.incoming())?),
            sum: Sha256Sum::default(),
            announced: None,
        })
    }

    /// Starts writing a new file line by line (a result file, a batch built from a list).
    pub fn draft(&self) -> io::Result<Draft> {
        Ok(Draft {
            w: HashingWriter::new(BufWriter::new(NamedTempFile::new_in(self.incoming())?)),
        })
    }

    /// Starts a scratch file, written line by line and read back once: the records of a file
    /// whose header is known only after them. It has no name and goes when dropped.
    pub fn spool(&self) -> io::Result<Spool> {
        Ok(Spool {
            w: BufWriter::new(tempfile::tempfile_in(self.incoming())?),
        })
    }
}

fn too_large(size: u64) -> FileError {
    FileError {
        class: ErrorClass::ResourceExhausted,
        ..FileError::whole(
            "FILE_TOO_LARGE",
            format!("a file is at most {FILE_BYTES_MAX} bytes, this one is {size}"),
        )
    }
}

/// A file arriving in chunks.
pub struct Upload {
    file: BufWriter<NamedTempFile>,
    sum: Sha256Sum,
    /// The SHA-256 and size announced before the bytes, if they were.
    announced: Option<(String, u64)>,
}

impl Upload {
    /// Appends the next chunk.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), ReadError> {
        if chunk.len() > CHUNK_BYTES_MAX {
            return Err(FileError::whole(
                "CHUNK_INVALID",
                format!("a chunk is at most {CHUNK_BYTES_MAX} bytes"),
            )
            .into());
        }
        let total = self.sum.bytes() + chunk.len() as u64;
        match &self.announced {
            Some((_, size)) if total > *size => {
                return Err(FileError::whole(
                    "SIZE_MISMATCH",
                    format!("more than the {size} bytes announced arrived"),
                )
                .into());
            }
            None if total > FILE_BYTES_MAX => return Err(too_large(total).into()),
            _ => {}
        }
        self.sum.update(chunk);
        self.file.write_all(chunk)?;
        Ok(())
    }

    /// The whole file: its size and hash are the ones announced.
    pub fn finish(mut self) -> Result<Received, ReadError> {
        let Some((sha256, size)) = self.announced.take() else {
            return Err(FileError::whole(
                "SIZE_MISMATCH",
                "the file's size and SHA-256 were never announced",
            )
            .into());
        };
        self.finish_as(&sha256, size)
    }

    /// The whole file, which must be `announced_size` bytes with SHA-256 `announced_sha256` (a
    /// file received unannounced, its description given at its end).
    pub fn finish_as(
        self,
        announced_sha256: &str,
        announced_size: u64,
    ) -> Result<Received, ReadError> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        let size = self.sum.bytes();
        if size != announced_size {
            return Err(FileError::whole(
                "SIZE_MISMATCH",
                format!("{announced_size} bytes were announced, {size} arrived"),
            )
            .into());
        }
        let sha256 = self.sum.hex();
        if sha256 != announced_sha256 {
            return Err(FileError::whole(
                "HASH_MISMATCH",
                format!("the file's SHA-256 is {sha256}, not the {announced_sha256} announced"),
            )
            .into());
        }
        Ok(Received { file, sha256, size })
    }
}

/// A file being written line by line.
pub struct Draft {
    w: HashingWriter<BufWriter<NamedTempFile>>,
}

impl Draft {
    /// Writes one line and its LF.
    pub fn line(&mut self, line: &str) -> io::Result<()> {
        self.w.line(line)
    }

    /// Writes everything `lines` holds (a spool's lines, read back); the bytes written.
    pub fn append(&mut self, mut lines: impl Read) -> io::Result<u64> {
        io::copy(&mut lines, &mut self.w)
    }

    /// The whole file, flushed to disk.
    pub fn finish(self) -> io::Result<Received> {
        let (w, sha256, size) = self.w.finish()?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.as_file().sync_all()?;
        Ok(Received { file, sha256, size })
    }
}

/// Lines in a scratch file (see [`FileStore::spool`]).
pub struct Spool {
    w: BufWriter<File>,
}

impl Spool {
    /// Writes one line and its LF.
    pub fn line(&mut self, line: &str) -> io::Result<()> {
        self.w.write_all(line.as_bytes())?;
        self.w.write_all(b"\n")
    }

    /// Everything written, from its first byte.
    pub fn read_back(self) -> io::Result<BufReader<File>> {
        let mut file = self.w.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        Ok(BufReader::new(file))
    }
}

/// A whole file, not yet in its area: deleted when dropped unless kept.
pub struct Received {
    file: NamedTempFile,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its size, bytes.
    pub size: u64,
}

impl Received {
    /// Reads it from the start.
    pub fn reader(&self) -> io::Result<BufReader<File>> {
        Ok(BufReader::new(self.file.reopen()?))
    }

    /// Moves it into `area` as `name` (replacing a file of that name).
    pub fn keep(self, store: &FileStore, area: Area, name: &str) -> io::Result<()> {
        self.file.as_file().sync_all()?;
        self.file
            .persist(store.path(area, name))
            .map_err(|e| e.error)?;
        Ok(())
    }
}

/// Chunks of parsed records waiting for their consumer at most (see [`read_ahead`]).
pub const CHUNKS_AHEAD: usize = 2;

/// Records parsed from a file, with the byte offset just past the last of them.
pub struct Chunk<T> {
    /// The records, in the file's order.
    pub records: Vec<T>,
    /// Where the line after them starts.
    pub offset: u64,
}

/// Reads and parses the rest of a file's lines on a blocking thread, `chunk_lines` records a
/// chunk, at most [`CHUNKS_AHEAD`] chunks ahead of the consumer: the next chunk is parsed while
/// this one is stored. It ends after the last line, or with the first error.
pub fn read_ahead<R, T>(
    mut lines: LineReader<R>,
    chunk_lines: usize,
    parse: fn(u64, &str) -> Result<T, FileError>,
) -> mpsc::Receiver<Result<Chunk<T>, ReadError>>
where
    R: io::BufRead + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        loop {
            match next_chunk(&mut lines, chunk_lines.max(1), parse) {
                Ok(c) if c.records.is_empty() => return,
                Ok(c) => {
                    if tx.blocking_send(Ok(c)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

fn next_chunk<R: io::BufRead, T>(
    lines: &mut LineReader<R>,
    chunk_lines: usize,
    parse: fn(u64, &str) -> Result<T, FileError>,
) -> Result<Chunk<T>, ReadError> {
    let mut records = Vec::with_capacity(chunk_lines);
    while records.len() < chunk_lines {
        match lines.next_line()? {
            Some((line_no, text)) => records.push(parse(line_no, text)?),
            None => break,
        }
    }
    Ok(Chunk {
        records,
        offset: lines.offset(),
    })
}

/// Reads a stored file in [`SEND_CHUNK_BYTES`] chunks on a blocking thread, a few chunks ahead of
/// the consumer at most.
pub fn read_chunks(path: &Path) -> mpsc::Receiver<io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let mut buf = vec![0; SEND_CHUNK_BYTES];
            match read_full(&mut file, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Fills `buf` as far as the file allows; the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        let mut s = Sha256Sum::default();
        s.update(bytes);
        s.hex()
    }

    fn reason(e: ReadError) -> &'static str {
        match e {
            ReadError::Bad(f) => f.reason,
            ReadError::Io(e) => panic!("io: {e}"),
        }
    }

    #[test]
    fn a_file_arrives_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let body = b"H|x\nD|1\n";
        let mut up = store.receive(&sha(body), body.len() as u64).unwrap();
        up.write(&body[..3]).unwrap();
        up.write(&body[3..]).unwrap();
        let got = up.finish().unwrap();
        assert_eq!(got.size, 8);
        got.keep(&store, Area::RefundBatches, "B1.txt").unwrap();
        let kept = std::fs::read(store.path(Area::RefundBatches, "B1.txt")).unwrap();
        assert_eq!(kept, body);
        assert_eq!(std::fs::read_dir(store.incoming()).unwrap().count(), 0);
    }

    #[test]
    fn wrong_size_or_hash_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let body = b"abc\n";
        let mut up = store.receive(&sha(b"other"), 4).unwrap();
        up.write(body).unwrap();
        assert_eq!(reason(up.finish().err().unwrap()), "HASH_MISMATCH");
        let mut up = store.receive(&sha(body), 3).unwrap();
        assert_eq!(reason(up.write(body).unwrap_err()), "SIZE_MISMATCH");
        drop(up);
        let up = store.receive(&sha(body), 5).unwrap();
        assert_eq!(reason(up.finish().err().unwrap()), "SIZE_MISMATCH");
        assert_eq!(
            reason(store.receive("ABC", 1).err().unwrap()),
            "SHA256_INVALID"
        );
        let e = store.receive(&sha(body), FILE_BYTES_MAX + 1).err().unwrap();
        assert!(matches!(&e, ReadError::Bad(f) if f.class == ErrorClass::ResourceExhausted));
        assert_eq!(std::fs::read_dir(store.incoming()).unwrap().count(), 0);
    }

    #[test]
    fn a_file_described_after_its_bytes_is_checked_when_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let body = b"H|x\nD|1\n";
        let received = |sha256: &str, size: u64| {
            let mut up = store.receive_unannounced().unwrap();
            up.write(&body[..5]).unwrap();
            up.write(&body[5..]).unwrap();
            up.finish_as(sha256, size)
        };
        let got = received(&sha(body), 8).unwrap();
        assert_eq!((got.sha256.as_str(), got.size), (sha(body).as_str(), 8));
        got.keep(&store, Area::Recon, "ORDER.txt").unwrap();
        assert_eq!(
            std::fs::read(store.path(Area::Recon, "ORDER.txt")).unwrap(),
            body
        );
        let wrong = received(&sha(b"other"), 8).err().unwrap();
        assert_eq!(reason(wrong), "HASH_MISMATCH");
        assert_eq!(
            reason(received(&sha(body), 9).err().unwrap()),
            "SIZE_MISMATCH"
        );
        let never_described = store.receive_unannounced().unwrap().finish();
        assert_eq!(reason(never_described.err().unwrap()), "SIZE_MISMATCH");
        assert_eq!(std::fs::read_dir(store.incoming()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn stored_files_are_read_back_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let mut d = store.draft().unwrap();
        let line = "x".repeat(1000);
        for _ in 0..200 {
            d.line(&line).unwrap();
        }
        let r = d.finish().unwrap();
        let (hash, size) = (r.sha256.clone(), r.size);
        r.keep(&store, Area::RefundResults, "R.txt").unwrap();
        let mut rx = read_chunks(&store.path(Area::RefundResults, "R.txt"));
        let (mut sum, mut chunks) = (Sha256Sum::default(), 0);
        while let Some(c) = rx.recv().await {
            let c = c.unwrap();
            assert!(c.len() <= SEND_CHUNK_BYTES);
            sum.update(&c);
            chunks += 1;
        }
        assert_eq!((sum.bytes(), sum.hex()), (size, hash));
        assert_eq!(chunks, 4);
    }

    fn digits(line_no: u64, text: &str) -> Result<u64, FileError> {
        text.parse()
            .map_err(|_| FileError::at(line_no, None, "RECORD_INVALID", "not a number".to_owned()))
    }

    #[tokio::test]
    async fn records_are_read_ahead_in_chunks_each_with_the_offset_after_it_until_a_bad_line() {
        let text = "1\n22\n333\n4444\nfive\n6\n";
        let lines = LineReader::new(io::Cursor::new(text.as_bytes().to_vec()));
        let mut chunks = read_ahead(lines, 2, digits);
        let mut got = Vec::new();
        while let Some(c) = chunks.recv().await {
            got.push(c.map(|c| (c.records, c.offset)).map_err(reason));
        }
        assert_eq!(
            got,
            [
                Ok((vec![1, 22], 5)),
                Ok((vec![333, 4444], 14)),
                Err("RECORD_INVALID")
            ]
        );

        let lines = LineReader::resume(io::Cursor::new(b"7\n8\n9\n".to_vec()), 4, 30);
        let mut chunks = read_ahead(lines, 2, digits);
        let mut got = Vec::new();
        while let Some(c) = chunks.recv().await {
            let c = c.map_err(reason).unwrap();
            got.push((c.records, c.offset));
        }
        assert_eq!(
            got,
            [(vec![7, 8], 34), (vec![9], 36)],
            "the last chunk short, then the end"
        );
    }
}
