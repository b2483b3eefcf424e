//! A scenario's conversation as both nodes' feeds told it (`FeedService.Watch`), for the HTML
//! report: watched from before the first step to after the last call was answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::sim::v1 as sim;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_stream::StreamExt;

use super::nodes::{NodeChannel, Nodes};

/// How long the recorder waits, after the last step, for the answers of calls still being
/// answered (a call's answer is told when its last byte has gone, which may be after the client
/// has read it).
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// Both nodes' feeds, watched.
pub struct Recorder {
    events: Arc<Mutex<Vec<Value>>>,
    changed: Arc<Notify>,
    watches: tokio::task::JoinSet<()>,
    /// Both nodes, for the marker calls that end the recording.
    nodes: [NodeChannel; 2],
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
            nodes: [nodes.bank.clone(), nodes.platform.clone()],
        })
    }

    /// Stops watching once both nodes have told every call of the scenario with its answer (at
    /// most [`SETTLE_MAX`] from now) and gives the events, each node's in the order it told
    /// them.
    ///
    /// A node tells a call's events before the caller has its answer, but they reach this
    /// watcher over a stream of their own, which may be behind: after the last step the recorder
    /// calls `Echo` on each node with a payload of its own, and a node's feed is in order, so
    /// once that marker is told every call before it has been. The markers are left out.
    pub async fn finish(mut self) -> Vec<Value> {
        let marker: [u8; 12] = rand::random();
        let shown = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, marker);
        for node in &self.nodes {
            // A node that does not answer it only makes this wait its longest.
            let _ = sim::simulator_service_client::SimulatorServiceClient::new(node.clone())
                .echo(sim::EchoRequest {
                    payload: marker.to_vec(),
                })
                .await;
        }
        let deadline = tokio::time::Instant::now() + SETTLE_MAX;
        loop {
            let changed = self.changed.notified();
            {
                let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
                if markers(&events, &shown).len() == self.nodes.len() && settled(&events) {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        self.watches.abort_all();
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()));
        without_markers(events, &shown)
    }

    /// A conversation that could not be watched: one note saying why.
    pub fn unwatched(why: &anyhow::Error) -> Vec<Value> {
        vec![json!({ "console": format!("not recorded: {why:#}") })]
    }
}

/// The calls (node, call id) among `events` that are the marker `shown` (its payload as the feed
/// shows bytes).
fn markers(events: &[Value], shown: &str) -> Vec<(Value, Value)> {
    events
        .iter()
        .filter_map(|e| {
            let call = e.get("call")?;
            let request = call.get("request_json")?.as_str()?;
            (call.get("method")? == "Echo" && request.contains(shown))
                .then(|| (e["node"].clone(), call["call_id"].clone()))
        })
        .collect()
}

/// `events` without the marker calls and their answers.
fn without_markers(events: Vec<Value>, shown: &str) -> Vec<Value> {
    let marked = markers(&events, shown);
    events
        .into_iter()
        .filter(|e| {
            let id = e
                .get("call")
                .or_else(|| e.get("answer"))
                .map(|k| (e["node"].clone(), k["call_id"].clone()));
            id.is_none_or(|id| !marked.contains(&id))
        })
        .collect()
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

    #[test]
    fn the_markers_end_the_recording_and_are_left_out() {
        let call = |node: &str, id: u64, method: &str, request: &str| json!({ "node": node, "call": { "call_id": id, "method": method, "request_json": request } });
        let answer = |node: &str, id: u64| json!({ "node": node, "answer": { "call_id": id } });
        let events = vec![
            call("bank", 1, "GetCard", "{}"),
            answer("bank", 1),
            // The scenario's own Echo stays; only the marker's payload marks.
            call("bank", 2, "Echo", r#"{"payload":"b3RoZXI="}"#),
            answer("bank", 2),
            call("bank", 3, "Echo", r#"{"payload":"TUFSSw=="}"#),
            call("platform", 3, "Echo", r#"{"payload":"TUFSSw=="}"#),
            answer("bank", 3),
            answer("platform", 3),
        ];
        assert_eq!(
            markers(&events[..5], "TUFSSw==").len(),
            1,
            "one node told it"
        );
        assert_eq!(markers(&events, "TUFSSw==").len(), 2);
        let kept = without_markers(events.clone(), "TUFSSw==");
        assert_eq!(kept, events[..4]);
    }
}
