//! The files the two institutions exchange, one implementation of each format for both nodes and
//! the CLI. `docs/file-formats.md` is the specification; `docs/examples/` holds a worked example
//! of each, which the tests here parse and write back byte for byte.
//!
//! Every format is UTF-8 text, one record per LF-ended line (a CR before the LF is dropped), fields
//! separated by `|`; line 1 is the header. Reading is streaming: a [`LineReader`] holds one line
//! at a time, at most [`LINE_BYTES_MAX`] bytes, so memory does not grow with the file.

//!
//! Invariant: pure. Parsers and writers over `std::io` traits; no runtime, no file store (that
//! is `shared::files`), nothing but the domain types beneath, so that the fuzz targets build on
//! this crate alone.

pub mod recon;
pub mod refund;

// The domain crate's modules, under the names the formats use.
use ::domain::error;
use ::domain::money;

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use sha2::{Digest, Sha256};

use crate::error::{ErrorClass, Refusal};

/// The longest line, line end excluded, in bytes.
pub const LINE_BYTES_MAX: usize = 1024;
/// The field separator.
pub const SEPARATOR: char = '|';
/// The longest free text field (a refund reason, a failure text), in characters.
pub const TEXT_CHARS_MAX: usize = 100;

/// Why a file was refused: the line (1 is the header, 0 the file as a whole), the field, a reason
/// code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The line at fault; 0 when the fault is the file's as a whole.
    pub line: u64,
    /// The field at fault, as named in the spec.
    pub field: Option<&'static str>,
    /// The reason code, listed in docs/errors.md.
    pub reason: &'static str,
    /// What is wrong.
    pub message: String,
    /// The refusal's class: INVALID_ARGUMENT, but RESOURCE_EXHAUSTED for a file too large.
    pub class: ErrorClass,
}

impl FileError {
    /// A fault of `field` on `line`.
    pub fn at(
        line: u64,
        field: Option<&'static str>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> FileError {
        FileError {
            line,
            field,
            reason,
            message: message.into(),
            class: ErrorClass::InvalidArgument,
        }
    }

    /// A fault of the file as a whole.
    pub fn whole(reason: &'static str, message: impl Into<String>) -> FileError {
        FileError::at(0, None, reason, message)
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.field) {
            (0, _) => write!(f, "file: {}", self.message),
            (l, Some(field)) => write!(f, "line {l}, field {field}: {}", self.message),
            (l, None) => write!(f, "line {l}: {}", self.message),
        }
    }
}

impl std::error::Error for FileError {}

impl Refusal for FileError {
    fn class(&self) -> ErrorClass {
        self.class
    }
    fn reason(&self) -> &str {
        self.reason
    }
    fn field(&self) -> Option<&str> {
        self.field
    }
    fn line(&self) -> Option<u64> {
        Some(self.line)
    }
}

/// Reading a file failed: the file is bad, or the disk is.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file breaks its format.
    #[error("{0}")]
    Bad(#[from] FileError),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
}

/// Reads a file one line at a time in bounded memory, checking line length, line end and UTF-8.
pub struct LineReader<R> {
    inner: R,
    next_line: u64,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    /// A reader at the start of a file.
    pub fn new(inner: R) -> LineReader<R> {
        LineReader::resume(inner, 1, 0)
    }

    /// A reader positioned (by the caller) at byte `offset`, the start of line `line_no`.
    pub fn resume(inner: R, line_no: u64, offset: u64) -> LineReader<R> {
        LineReader {
            inner,
            next_line: line_no,
            offset,
            buf: Vec::with_capacity(LINE_BYTES_MAX + 2),
        }
    }

    /// The next line without its line end and its number; `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<(u64, &str)>, ReadError> {
        self.buf.clear();
        let limit = (LINE_BYTES_MAX + 2) as u64; // content, CR, LF
        let n = Read::take(&mut self.inner, limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let line = self.next_line;
        if self.buf.last() != Some(&b'\n') {
            if n as u64 == limit {
                return Err(too_long(line).into());
            }
            return Err(FileError::at(
                line,
                None,
                "FILE_TRUNCATED",
                "the line has no line end: the file is cut short",
            )
            .into());
        }
        self.buf.pop();
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.len() > LINE_BYTES_MAX {
            return Err(too_long(line).into());
        }
        self.offset += n as u64;
        self.next_line += 1;
        let text = std::str::from_utf8(&self.buf).map_err(|e| {
            FileError::at(
                line,
                None,
                "FILE_NOT_UTF8",
                format!("not UTF-8 (bad byte at column {})", e.valid_up_to() + 1),
            )
        })?;
        Ok(Some((line, text)))
    }

    /// Bytes consumed so far (from the start of the file): where the next line starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The number the next line will have.
    pub fn next_line_no(&self) -> u64 {
        self.next_line
    }
}

fn too_long(line: u64) -> FileError {
    FileError::at(
        line,
        None,
        "LINE_TOO_LONG",
        format!("longer than {LINE_BYTES_MAX} bytes"),
    )
}

/// The fields of a line, checked for their number and for control characters.
pub(crate) fn fields<'a, const N: usize>(
    line_no: u64,
    line: &'a str,
    reason: &'static str,
    what: &str,
) -> Result<[&'a str; N], FileError> {
    // Every control character (C0, DEL, C1) has a byte among these in UTF-8 (C1's lead byte is
    // 0xC2), so the line is decoded only when one of them is there.
    let suspect = |b: &u8| *b < 0x20 || *b == 0x7F || *b == 0xC2;
    if line.as_bytes().iter().any(suspect)
        && let Some(c) = line.chars().find(|c| c.is_control())
    {
        return Err(FileError::at(
            line_no,
            None,
            reason,
            format!("control character U+{:04X} in the line", u32::from(c)),
        ));
    }
    let mut out = [""; N];
    let mut parts = line.split(SEPARATOR);
    let mut count = 0;
    for slot in &mut out {
        let Some(part) = parts.next() else { break };
        *slot = part;
        count += 1;
    }
    count += parts.count();
    if count != N {
        return Err(FileError::at(
            line_no,
            None,
            reason,
            format!("{what} has {N} fields separated by '|', this line has {count}"),
        ));
    }
    Ok(out)
}

/// A free text field: at most [`TEXT_CHARS_MAX`] characters (separators and control characters are
/// refused by [`fields`] already).
pub(crate) fn text_field(
    line_no: u64,
    field: &'static str,
    reason: &'static str,
    s: &str,
) -> Result<String, FileError> {
    if s.chars().count() > TEXT_CHARS_MAX {
        return Err(FileError::at(
            line_no,
            Some(field),
            reason,
            format!("at most {TEXT_CHARS_MAX} characters"),
        ));
    }
    Ok(s.to_owned())
}

/// A count field: decimal digits, no sign.
pub(crate) fn count_field(
    line_no: u64,
    field: &'static str,
    reason: &'static str,
    s: &str,
) -> Result<u64, FileError> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FileError::at(
            line_no,
            Some(field),
            reason,
            format!("a count is decimal digits, got {:?}", cut(s)),
        ));
    }
    s.parse()
        .map_err(|_| FileError::at(line_no, Some(field), reason, "count out of range"))
}

/// A business date field: `YYYYMMDD`.
pub(crate) fn date_field(
    line_no: u64,
    field: &'static str,
    reason: &'static str,
    s: &str,
) -> Result<chrono::NaiveDate, FileError> {
    let ok = s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| chrono::NaiveDate::parse_from_str(s, "%Y%m%d").ok())
        .flatten()
        .ok_or_else(|| {
            FileError::at(
                line_no,
                Some(field),
                reason,
                format!("a date is YYYYMMDD, got {:?}", cut(s)),
            )
        })
}

/// At most 40 characters of `s`, control characters escaped, for messages.
pub(crate) fn cut(s: &str) -> String {
    domain::shown(s, 40)
}

/// A writer that hashes (SHA-256) and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Writes one line and its LF.
    pub fn line(&mut self, line: &str) -> io::Result<()> {
        self.write_all(line.as_bytes())?;
        self.write_all(b"\n")
    }

    /// Flushes and returns the writer, the hex SHA-256 and the size of what was written.
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.inner.flush()?;
        Ok((self.inner, hex::encode(self.hasher.finalize()), self.bytes))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The running SHA-256 of a stream of chunks, with its size.
#[derive(Default, Clone)]
pub struct Sha256Sum {
    hasher: Sha256,
    bytes: u64,
}

impl Sha256Sum {
    /// Adds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
    }

    /// Bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The hex digest.
    pub fn hex(self) -> String {
        hex::encode(self.hasher.finalize())
    }

    /// The hex SHA-256 and size of everything `r` yields, read in buffer-sized pieces.
    pub fn of_reader(mut r: impl Read) -> io::Result<(String, u64)> {
        let mut sum = Sha256Sum::default();
        io::copy(&mut r, &mut sum)?;
        let size = sum.bytes();
        Ok((sum.hex(), size))
    }
}

impl Write for Sha256Sum {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        self.update(chunk);
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether `s` is a SHA-256 digest in lower-case hex.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lines_fields_are_counted_and_its_control_characters_refused() {
        fn three(line: &str) -> Result<[&str; 3], FileError> {
            fields::<3>(7, line, "RECORD_INVALID", "a record")
        }
        assert_eq!(three("a|b|c").unwrap(), ["a", "b", "c"]);
        assert_eq!(three("||").unwrap(), ["", "", ""]);
        assert_eq!(three("é|ü|中").unwrap(), ["é", "ü", "中"]);
        // Characters whose UTF-8 starts as a C1 control's does (0xC2) and are none.
        assert_eq!(three("©|\u{a0}|¿").unwrap(), ["©", "\u{a0}", "¿"]);
        for (line, message) in [
            (
                "a|b",
                "a record has 3 fields separated by '|', this line has 2",
            ),
            (
                "a|b|c|d|e",
                "a record has 3 fields separated by '|', this line has 5",
            ),
            (
                "abc",
                "a record has 3 fields separated by '|', this line has 1",
            ),
            ("a|b\tx|c", "control character U+0009 in the line"),
            ("a|b|c\u{7f}", "control character U+007F in the line"),
            ("\0|b|c|d", "control character U+0000 in the line"),
            ("é|b\u{85}|c", "control character U+0085 in the line"),
            ("a|b\u{9f}|c", "control character U+009F in the line"),
            ("©|\u{80}|c", "control character U+0080 in the line"),
        ] {
            let e = three(line).unwrap_err();
            assert_eq!(
                (e.line, e.reason, e.message.as_str()),
                (7, "RECORD_INVALID", message)
            );
        }
    }

    fn lines(input: &[u8]) -> Result<Vec<String>, ReadError> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some((_, l)) = r.next_line()? {
            out.push(l.to_owned());
        }
        Ok(out)
    }

    fn reason(input: &[u8]) -> (&'static str, u64) {
        match lines(input) {
            Err(ReadError::Bad(e)) => (e.reason, e.line),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn lines_end_with_lf_and_may_carry_cr() {
        assert_eq!(lines(b"a|b\r\nc\n").unwrap(), ["a|b", "c"]);
        assert_eq!(lines(b"").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(reason(b"a\nb"), ("FILE_TRUNCATED", 2));
        assert_eq!(reason(b"a\n\xff\xfe\n"), ("FILE_NOT_UTF8", 2));
        let long = format!("a\n{}\n", "x".repeat(LINE_BYTES_MAX + 1));
        assert_eq!(reason(long.as_bytes()), ("LINE_TOO_LONG", 2));
        let mb = format!("a\n{}\n", "x".repeat(1 << 20));
        assert_eq!(reason(mb.as_bytes()), ("LINE_TOO_LONG", 2));
        let just = format!("{}\r\n", "x".repeat(LINE_BYTES_MAX));
        assert_eq!(lines(just.as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn offsets_count_bytes_consumed() {
        let mut r = LineReader::new(&b"ab\r\ncd\n"[..]);
        r.next_line().unwrap();
        assert_eq!((r.offset(), r.next_line_no()), (4, 2));
        r.next_line().unwrap();
        assert_eq!(r.offset(), 7);
    }

    #[test]
    fn the_hashing_writer_agrees_with_the_running_sum() {
        let mut w = HashingWriter::new(Vec::new());
        w.line("H|x").unwrap();
        let (bytes, hex, size) = w.finish().unwrap();
        let mut sum = Sha256Sum::default();
        sum.update(&bytes);
        assert_eq!((sum.bytes(), sum.hex()), (size, hex.clone()));
        assert!(is_sha256_hex(&hex));
    }
}
