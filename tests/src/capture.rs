//! Log capture for the test binaries that scan the nodes' logs (`logscan`, `trace`): a writer
//! for the process's one global subscriber that keeps every line in memory.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// Installs the process's one global subscriber (the first call; later calls share it): every
/// line of our crates at TRACE (others at INFO), as text without colours or times, with the
/// nodes' own field format ([`shared::telemetry::EscapedFields`]), into a capture.
pub fn install() -> Capture {
    static ONE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    ONE.get_or_init(|| {
        let capture = Capture::default();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,bank_node=trace,platform_node=trace,shared=trace,ibsim_cli=trace",
            ))
            .fmt_fields(shared::telemetry::EscapedFields)
            .with_writer(capture.clone())
            .with_ansi(false)
            .without_time()
            .init();
        capture
    })
    .clone()
}

/// Every log line written, in memory.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far, as text (log lines are UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("capture").clone()).expect("UTF-8 logs")
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Whether `secret` stands in `line` on its own: not inside a longer run of letters and digits
/// (a 6-digit password inside a 19-digit number, a timestamp or a hex trace id is not that
/// password).
pub fn stands_in(line: &str, secret: &str) -> bool {
    let digits = secret.bytes().all(|b| b.is_ascii_digit());
    line.match_indices(secret).any(|(at, _)| {
        if !digits {
            return true;
        }
        let before = line[..at].bytes().next_back();
        let after = line[at + secret.len()..].bytes().next();
        let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
        !word(before) && !word(after)
    })
}
