//! A node's live feed (`interbank.sim.v1.FeedService`, docs/console.md): each call it serves as
//! it arrives and as it is answered, each fault rule firing, each SMS the bank sends. Watchers
//! subscribe to a bounded broadcast; with nobody watching, [`Feed::watched`] is one look at the
//! watcher count and nothing else is built.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::broadcast;

use crate::security::Institution;

/// Events a watcher may fall behind by before it loses the oldest (and is told how many).
pub const FEED_BUFFER_EVENTS: usize = 1024;

/// How long a watcher's stream holds the first event of a batch for more to come before it
/// sends them together (and the console its page's): under load a node makes thousands of events
/// a second, and sent one at a time each would cost a wake-up of the stream's task and a write to
/// the socket, on the node, in the console and in the page. Too short for a person to see.
pub const FEED_LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// The most events sent together; a batch this full goes at once.
pub const FEED_BATCH_EVENTS_MAX: usize = 256;

/// `events` in batches: what is ready within [`FEED_LINGER`] of the first goes together (up to
/// [`FEED_BATCH_EVENTS_MAX`]), each event still one item, one after the other without a wait, so
/// that the encoder beneath writes them as one frame; an idle stream waits for nothing.
pub fn lingering<S>(events: S) -> impl tokio_stream::Stream<Item = S::Item> + Send
where
    S: tokio_stream::Stream + Send,
    S::Item: Send,
{
    use futures_util::StreamExt as _;
    tokio_stream::StreamExt::chunks_timeout(events, FEED_BATCH_EVENTS_MAX, FEED_LINGER)
        .flat_map(futures_util::stream::iter)
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    /// A call arrived.
    Call(CallArrived),
    /// A call was answered.
    Answer(CallAnswered),
    /// A fault rule fired.
    Fault {
        /// The rule's id.
        rule: u64,
        /// `CALLER` or `CALLEE`.
        side: &'static str,
        /// The interbank method.
        method: String,
        /// What the rule did, e.g. `REPLY DROPPED`.
        action: String,
        /// The order the call is about, if any.
        order_no: String,
    },
    /// The bank sent an SMS.
    Sms {
        /// The mobile, masked.
        mobile_masked: String,
        /// For a one-time code: its order.
        order_no: String,
    },
}

/// The order numbers, sign-up ids and batch numbers a message names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// Order numbers.
    pub order_nos: Vec<String>,
    /// Sign-up ids.
    pub signup_ids: Vec<String>,
    /// Batch numbers.
    pub batch_nos: Vec<String>,
}

/// A call as it arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallArrived {
    /// The node's number for the call.
    pub call_id: u64,
    /// The service's full name.
    pub service: String,
    /// The method.
    pub method: String,
    /// The caller's lifeline (see feed.proto).
    pub caller: &'static str,
    /// The trace id.
    pub trace_id: String,
    /// The request as masked JSON.
    pub request_json: String,
    /// What it names.
    pub keys: Keys,
}

/// A call as it is answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallAnswered {
    /// The call's number.
    pub call_id: u64,
    /// The gRPC code name.
    pub code: &'static str,
    /// The refusal's reason.
    pub reason: String,
    /// The refusal's domain.
    pub domain: String,
    /// The status message.
    pub message: String,
    /// The answer as masked JSON.
    pub answer_json: String,
    /// Messages in the answer.
    pub messages: u32,
    /// Time served, microseconds.
    pub micros: u64,
    /// What it names.
    pub keys: Keys,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The node's event number, from 1.
    pub seq: u64,
    /// Wall time, microseconds since the Unix epoch.
    pub at_us: i64,
    /// What happened.
    pub what: What,
}

/// A node's feed; clones share it.
#[derive(Clone, Debug)]
pub struct Feed(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    node: Institution,
    tx: broadcast::Sender<Arc<Event>>,
    seq: AtomicU64,
    calls: AtomicU64,
}

impl Feed {
    /// The feed of `node`, nobody watching yet.
    pub fn new(node: Institution) -> Feed {
        let (tx, _) = broadcast::channel(FEED_BUFFER_EVENTS);
        Feed(Arc::new(Inner {
            node,
            tx,
            seq: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        }))
    }

    /// The node it is the feed of.
    pub fn node(&self) -> Institution {
        self.0.node
    }

    /// Whether anybody watches: callers build an event only then.
    pub fn watched(&self) -> bool {
        self.0.tx.receiver_count() > 0
    }

    /// A new watcher, from the next event on.
    pub fn watch(&self) -> broadcast::Receiver<Arc<Event>> {
        self.0.tx.subscribe()
    }

    /// A number for a call, unique in this node's feed.
    pub fn next_call_id(&self) -> u64 {
        self.0.calls.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends `what` to every watcher (nothing when nobody watches).
    pub fn send(&self, what: What) {
        if !self.watched() {
            return;
        }
        let at_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let seq = self.0.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.0.tx.send(Arc::new(Event { seq, at_us, what }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sms(n: usize) -> What {
        What::Sms {
            mobile_masked: "138****0000".into(),
            order_no: format!("O{n}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_together_after_the_linger_and_a_full_batch_at_once() {
        use tokio_stream::StreamExt as _;
        let f = Feed::new(Institution::Bank);
        let mut events = Box::pin(lingering(tokio_stream::wrappers::BroadcastStream::new(
            f.watch(),
        )));
        let started = tokio::time::Instant::now();
        for n in 0..3 {
            f.send(sms(n));
        }
        for n in 0..3 {
            assert_eq!(events.next().await.unwrap().unwrap().what, sms(n));
        }
        assert_eq!(started.elapsed(), FEED_LINGER, "held for more, no longer");

        let started = tokio::time::Instant::now();
        for n in 0..FEED_BATCH_EVENTS_MAX {
            f.send(sms(n));
        }
        for n in 0..FEED_BATCH_EVENTS_MAX {
            assert_eq!(events.next().await.unwrap().unwrap().what, sms(n));
        }
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a full batch waits for nothing"
        );

        let idle = tokio::time::timeout(Duration::from_secs(3600), events.next()).await;
        assert!(idle.is_err(), "an idle feed sends nothing: {idle:?}");
    }

    #[test]
    fn nothing_is_kept_while_nobody_watches() {
        let f = Feed::new(Institution::Bank);
        f.send(sms(0));
        let mut w = f.watch();
        f.send(sms(1));
        let e = w.try_recv().unwrap();
        assert_eq!(e.what, sms(1));
        assert_eq!(e.seq, 1, "the unwatched event took no number");
        assert!(w.try_recv().is_err());
    }

    #[test]
    fn a_watcher_that_falls_behind_loses_the_oldest_and_is_told_how_many() {
        let f = Feed::new(Institution::Platform);
        let mut w = f.watch();
        for n in 0..FEED_BUFFER_EVENTS + 10 {
            f.send(sms(n));
        }
        match w.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(missed)) => assert_eq!(missed, 10),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_eq!(
            w.try_recv().unwrap().what,
            sms(10),
            "the oldest kept comes next"
        );
    }
}
