//! A scenario's conversation as both nodes' feeds told it (`FeedService.Watch`), for the HTML
//! report: watched from before the first step to after the last call was answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::sim::v1 as sim;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_stream::StreamExt;

use super::nodes::Nodes;

/// How long the recorder waits, after the last step, for the answers of calls still being
/// answered (a call's answer is told when its last byte has gone, which may be after the client
/// has read it).
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// Both nodes' feeds, watched.
pub struct Recorder {
    events: Arc<Mutex<Vec<Value>>>,
    changed: Arc<Notify>,
    watches: tokio::task::JoinSet<()>,
}

impl Recorder {
    /// Watches both nodes; returns once both are subscribed, so nothing after it is missed.
    pub async fn start(nodes: &Nodes) -> anyhow::Result<Recorder> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        let mut watches = tokio::task::JoinSet::new();
        for ch in [nodes.bank.clone(), nodes.platform.clone()] {
            let mut stream = sim::feed_service_client::FeedServiceClient::new(ch)
                .watch(sim::WatchRequest {})
                .await?
                .into_inner();
            let (events, changed) = (events.clone(), changed.clone());
            watches.spawn(async move {
                while let Some(Ok(e)) = stream.next().await {
                    if let Some(v) = crate::console::feed_json(&e) {
                        events.lock().unwrap_or_else(|p| p.into_inner()).push(v);
                        changed.notify_waiters();
                    }
                }
            });
        }
        Ok(Recorder {
            events,
            changed,
            watches,
        })
    }

    /// Stops watching once every call told has its answer (at most [`SETTLE_MAX`] from now)
    /// and gives the events, each node's in the order it told them.
    pub async fn finish(mut self) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + SETTLE_MAX;
        loop {
            let changed = self.changed.notified();
            if settled(&self.events.lock().unwrap_or_else(|p| p.into_inner())) {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        self.watches.abort_all();
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A conversation that could not be watched: one note saying why.
    pub fn unwatched(why: &anyhow::Error) -> Vec<Value> {
        vec![json!({ "console": format!("not recorded: {why:#}") })]
    }
}

/// Whether every call among `events` has its answer.
fn settled(events: &[Value]) -> bool {
    let id = |e: &Value, kind: &str| {
        e.get(kind)
            .map(|k| (e["node"].clone(), k["call_id"].clone()))
    };
    let answered: std::collections::HashSet<_> =
        events.iter().filter_map(|e| id(e, "answer")).collect();
    events
        .iter()
        .filter_map(|e| id(e, "call"))
        .all(|c| answered.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_settled_when_each_call_has_its_answer() {
        let call = |node: &str, id: u64| json!({ "node": node, "call": { "call_id": id } });
        let answer = |node: &str, id: u64| json!({ "node": node, "answer": { "call_id": id } });
        let sms = json!({ "node": "bank", "sms": {} });
        assert!(settled(&[]));
        assert!(settled(std::slice::from_ref(&sms)));
        assert!(settled(&[call("bank", 1), sms.clone(), answer("bank", 1)]));
        assert!(!settled(&[call("bank", 1), answer("platform", 1)]));
        assert!(!settled(&[
            call("bank", 1),
            call("bank", 2),
            answer("bank", 2)
        ]));
    }
}
