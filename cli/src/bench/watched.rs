//! Part 2 with a console watching (issue 20: the feed costs the nodes nothing measurable when
//! nobody watches, and a watching console costs the payments under 10%): the console's server,
//! watching both nodes' feeds as `ibsim up` runs it, and one page reading its event stream as a
//! browser does, while the closed loop runs again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::console;

/// What the console tells a page when it watches a node.
const WATCHING: &[u8] = b"\"console\":\"watching\"";
/// How long the console may take to be watching both nodes.
const WATCHING_WITHIN: Duration = Duration::from_secs(10);

/// A console watching both nodes, and a page reading it.
pub struct Watching {
    tasks: tokio::task::JoinSet<()>,
    events: Arc<AtomicU64>,
}

impl Watching {
    /// Serves a console over the two nodes and opens its event stream; returns once the console
    /// is watching both feeds (the page has been told so).
    pub async fn start(bank_url: &str, platform_url: &str) -> anyhow::Result<Watching> {
        let c = console::Console::new(
            console::channel(bank_url).await?,
            console::channel(platform_url).await?,
            bank_url,
            platform_url,
        )?;
        let listener = console::bind("127.0.0.1:0".parse()?).await?;
        let addr = listener.local_addr()?;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let _ = c.serve(listener).await;
        });
        // The page: HTTP/1.0, so the stream is the body as it comes (no chunk framing).
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /api/events HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n")
            .await?;
        let events = Arc::new(AtomicU64::new(0));
        let (ready, watching) = tokio::sync::oneshot::channel();
        let counted = events.clone();
        tasks.spawn(read_page(s, counted, ready));
        tokio::time::timeout(WATCHING_WITHIN, watching)
            .await
            .map_err(|_| anyhow::anyhow!("the console was not watching both nodes within 10 s"))?
            .map_err(|_| anyhow::anyhow!("the console's event stream ended"))?;
        Ok(Watching { tasks, events })
    }

    /// Stops the console and the page; the events the page received.
    pub fn stop(mut self) -> u64 {
        self.tasks.abort_all();
        self.events.load(Ordering::Relaxed)
    }
}

/// Reads the event stream line by line: counts the events and says when both nodes are watched.
async fn read_page(
    mut s: tokio::net::TcpStream,
    events: Arc<AtomicU64>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut watched = 0;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while let Ok(n) = s.read(&mut chunk).await {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if !line.starts_with(b"data:") {
                continue;
            }
            events.fetch_add(1, Ordering::Relaxed);
            if line.windows(WATCHING.len()).any(|w| w == WATCHING) {
                watched += 1;
                if let Some(r) = ready.take_if(|_| watched == 2) {
                    let _ = r.send(());
                }
            }
        }
    }
}
