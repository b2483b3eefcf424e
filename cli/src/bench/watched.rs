//! Part 2 with a console watching (issue 20: the feed costs the nodes nothing measurable when
//! nobody watches, and a watching console costs the payments under 10%): the console's server,
//! watching both nodes' feeds as `ibsim up` runs it, and one page doing what the browser page
//! does, through hyper's client: reading the event stream, and reading both institutions'
//! records again after what happened, at most once a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::payments::Snapshot;
use crate::console;

/// What the console tells a page when it watches a node.
const WATCHING: &[u8] = b"\"console\":\"watching\"";
/// How long the console may take to be watching both nodes.
const WATCHING_WITHIN: Duration = Duration::from_secs(10);
/// The page reads the records at most this often (`app.js`, `WORLD_EVERY_MS`).
const WORLD_EVERY: Duration = Duration::from_secs(1);

type Http = Client<HttpConnector, Empty<bytes::Bytes>>;

/// Rounds of the closed loop without and with a console watching, alternating, so that the
/// two figures see the same database sizes and the same machine noise.
pub const ROUNDS: usize = 3;

/// One round: the closed loop without a console, then with one watching.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Round {
    /// Payments without a console.
    pub without: super::Rate,
    /// Payments with a console watching.
    pub with: super::Rate,
    /// Events the page received.
    pub events: u64,
    /// Times the page read both institutions' records.
    pub world_reads: u64,
    /// CPU time a payment without a console, µs, of the load (this program), the bank and the
    /// platform.
    pub cpu_us_without: [u64; 3],
    /// The same with a console watching; the load's includes the console's server and the page.
    pub cpu_us_with: [u64; 3],
}

/// Runs the rounds on the pair `procs` runs.
pub async fn rounds(
    procs: &super::scale::Procs,
    bank: &tonic::transport::Channel,
    platform: &tonic::transport::Channel,
    payers: &[super::Payer],
    seconds: Duration,
) -> anyhow::Result<Vec<Round>> {
    let (bank_url, platform_url) = procs.urls();
    let cpu = |from: &Snapshot, to: &Snapshot, payments: u64| -> [u64; 3] {
        std::array::from_fn(|i| to.cpu_us(from, i, payments))
    };
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Snapshot::take(procs).await?;
        let without = super::closed_loop(bank, platform, payers, seconds).await;
        let stopped = Snapshot::take(procs).await?;
        // The console's start (connecting, the first records) counts in neither.
        let watching = Watching::start(&bank_url, &platform_url).await?;
        let between = Snapshot::take(procs).await?;
        let with = super::closed_loop(bank, platform, payers, seconds).await;
        let end = Snapshot::take(procs).await?;
        let seen = watching.stop();
        rounds.push(Round {
            cpu_us_without: cpu(&start, &stopped, without.count),
            cpu_us_with: cpu(&between, &end, with.count),
            without,
            with,
            events: seen.events,
            world_reads: seen.world_reads,
        });
    }
    Ok(rounds)
}

/// Payments a second with a console watching over without, in thousandths, over all rounds.
pub fn permille(rounds: &[Round]) -> Option<u64> {
    let with: u64 = rounds.iter().map(|r| r.with.count).sum();
    let without: u64 = rounds.iter().map(|r| r.without.count).sum();
    (without > 0).then(|| with * 1000 / without)
}

/// A console watching both nodes, and a page reading it.
pub struct Watching {
    tasks: tokio::task::JoinSet<()>,
    events: Arc<AtomicU64>,
    world_reads: Arc<AtomicU64>,
}

/// What the page saw.
pub struct Seen {
    /// Events received.
    pub events: u64,
    /// Times it read both institutions' records.
    pub world_reads: u64,
}

impl Watching {
    /// Serves a console over the two nodes and opens a page on it; returns once the console is
    /// watching both feeds (the page has been told so).
    pub async fn start(bank_url: &str, platform_url: &str) -> anyhow::Result<Watching> {
        let c = console::Console::new(
            console::channel(bank_url).await?,
            console::channel(platform_url).await?,
            bank_url,
            platform_url,
        )?;
        let listener = console::bind("127.0.0.1:0".parse()?).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let _ = c.serve(listener).await;
        });
        let http: Http = Client::builder(TokioExecutor::new()).build_http();
        let stream = http
            .get(format!("{base}/api/events").parse()?)
            .await?
            .into_body();
        let events = Arc::new(AtomicU64::new(0));
        let world_reads = Arc::new(AtomicU64::new(0));
        let (ready, watching) = tokio::sync::oneshot::channel();
        let (changed, on_change) = tokio::sync::watch::channel(0u64);
        tasks.spawn(read_events(stream, events.clone(), ready, changed));
        tasks.spawn(read_world(http, base, on_change, world_reads.clone()));
        tokio::time::timeout(WATCHING_WITHIN, watching)
            .await
            .map_err(|_| anyhow::anyhow!("the console was not watching both nodes within 10 s"))?
            .map_err(|_| anyhow::anyhow!("the console's event stream ended"))?;
        Ok(Watching {
            tasks,
            events,
            world_reads,
        })
    }

    /// Stops the console and the page.
    pub fn stop(mut self) -> Seen {
        self.tasks.abort_all();
        Seen {
            events: self.events.load(Ordering::Relaxed),
            world_reads: self.world_reads.load(Ordering::Relaxed),
        }
    }
}

/// Reads the event stream line by line: counts the events, says when both nodes are watched,
/// and tells the world reader each event.
async fn read_events(
    mut body: hyper::body::Incoming,
    events: Arc<AtomicU64>,
    ready: tokio::sync::oneshot::Sender<()>,
    changed: tokio::sync::watch::Sender<u64>,
) {
    let mut ready = Some(ready);
    let mut watched = 0;
    let mut buf = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        // Each line is looked at where it lies, and the lines taken leave the buffer at once, as
        // a browser's parser takes a stream: not one copy of the rest of the buffer a line.
        let mut taken = 0;
        let mut seen = 0;
        while let Some(len) = buf[taken..].iter().position(|b| *b == b'\n') {
            let line = &buf[taken..taken + len];
            taken += len + 1;
            if !line.starts_with(b"data:") {
                continue;
            }
            seen += 1;
            if ready.is_some() && line.windows(WATCHING.len()).any(|w| w == WATCHING) {
                watched += 1;
                if let Some(r) = ready.take_if(|_| watched == 2) {
                    let _ = r.send(());
                }
            }
        }
        buf.drain(..taken);
        if seen > 0 {
            let n = events.fetch_add(seen, Ordering::Relaxed) + seen;
            changed.send_replace(n);
        }
    }
}

/// Reads both institutions' records after events came, at most once a second, as the page does.
async fn read_world(
    http: Http,
    base: String,
    mut on_change: tokio::sync::watch::Receiver<u64>,
    reads: Arc<AtomicU64>,
) {
    let Ok(uri) = format!("{base}/api/world").parse::<http::Uri>() else {
        return;
    };
    while on_change.changed().await.is_ok() {
        let started = tokio::time::Instant::now();
        if let Ok(answer) = http.get(uri.clone()).await
            && answer.into_body().collect().await.is_ok()
        {
            reads.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep_until(started + WORLD_EVERY).await;
    }
}
