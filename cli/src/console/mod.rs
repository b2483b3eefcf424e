//! The live console (docs/console.md): a page served over HTTP (axum) that watches both nodes'
//! feeds and drives every flow through the nodes' own gRPC services. The page's files are
//! embedded in the binary (`assets/`, hand-written, no build step: what is served is the source).
//!
//! - `GET /`, `/app.js`, `/diagram.js`, `/style.css`: the page.
//! - `GET /api/events`: both nodes' feed events (`FeedEvent` as protobuf JSON), the kept history
//!   first, then as they happen (server-sent events).
//! - `POST /api/call`: `{"node": "bank"|"platform", "rpc": "Service.Method", "request": {…}}`,
//!   answered `{"answer": …}` or `{"refused": {code, reason, domain, message, field}}`: any RPC
//!   of either node, through its edge like any other client's.
//! - `GET /api/info`: the nodes' addresses.
//! - `GET /api/world`: both institutions' records side by side (`world`): each node's
//!   `SimulatorService.ListRecords`, joined by key, disagreements named.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use proto::sim::v1 as sim;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tonic_types::StatusExt;

mod world;

use crate::scenario::invoke::{self, CallError, Catalog, Node};
use crate::scenario::nodes::NodeChannel;

/// Where `ibsim up` serves the console unless told otherwise.
pub const CONSOLE_LISTEN_DEFAULT: &str = "127.0.0.1:40060";
/// Feed events the console keeps for a page that opens later (both nodes together).
pub const HISTORY_EVENTS_MAX: usize = 5_000;
/// Events a page may fall behind by before it loses the oldest (and is told).
const PAGE_BUFFER_EVENTS: usize = 4_096;
/// How long the console waits before watching a node's feed again after it broke off.
const REWATCH_AFTER: Duration = Duration::from_secs(1);

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const DIAGRAM_JS: &str = include_str!("assets/diagram.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The console's view of the two nodes.
#[derive(Clone)]
pub struct Console(Arc<Inner>);

struct Inner {
    catalog: Catalog,
    bank: NodeChannel,
    platform: NodeChannel,
    bank_url: String,
    platform_url: String,
    history: Mutex<VecDeque<Arc<str>>>,
    live: broadcast::Sender<Arc<str>>,
}

impl Console {
    /// A console over the nodes reached on `bank` and `platform` (at the addresses named).
    pub fn new(
        bank: NodeChannel,
        platform: NodeChannel,
        bank_url: &str,
        platform_url: &str,
    ) -> anyhow::Result<Console> {
        let (live, _) = broadcast::channel(PAGE_BUFFER_EVENTS);
        Ok(Console(Arc::new(Inner {
            catalog: Catalog::new()?,
            bank,
            platform,
            bank_url: bank_url.to_owned(),
            platform_url: platform_url.to_owned(),
            history: Mutex::new(VecDeque::new()),
            live,
        })))
    }

    /// Serves the console on `listener` until the task is dropped; watches both feeds meanwhile.
    pub async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        // Aborted when this future ends or is dropped: a watch left running would hold the
        // nodes' feeds open and keep them from stopping.
        let mut watchers = tokio::task::JoinSet::new();
        watchers.spawn(self.clone().watch(Node::Bank));
        watchers.spawn(self.clone().watch(Node::Platform));
        let app = Router::new()
            .route(
                "/",
                get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }),
            )
            .route(
                "/app.js",
                get(|| async { page("text/javascript; charset=utf-8", APP_JS) }),
            )
            .route(
                "/diagram.js",
                get(|| async { page("text/javascript; charset=utf-8", DIAGRAM_JS) }),
            )
            .route(
                "/style.css",
                get(|| async { page("text/css; charset=utf-8", STYLE_CSS) }),
            )
            .route("/api/events", get(events))
            .route("/api/call", post(call))
            .route("/api/info", get(info))
            .route("/api/world", get(world))
            .with_state(self);
        let served = axum::serve(listener, app).await;
        watchers.abort_all();
        served.context("the console stopped")
    }

    fn channel(&self, node: Node) -> NodeChannel {
        match node {
            Node::Bank => self.0.bank.clone(),
            Node::Platform => self.0.platform.clone(),
        }
    }

    /// Watches `node`'s feed for as long as the console runs, again after each break.
    async fn watch(self, node: Node) {
        let mut last_why = String::new();
        loop {
            let mut client = sim::feed_service_client::FeedServiceClient::new(self.channel(node));
            let why = match client.watch(sim::WatchRequest {}).await {
                Ok(stream) => {
                    self.note(node, "watching");
                    last_why.clear();
                    let mut stream = stream.into_inner();
                    loop {
                        match stream.next().await {
                            Some(Ok(e)) => self.publish(&e),
                            Some(Err(s)) => break format!("{:?}: {}", s.code(), s.message()),
                            None => break "the feed ended".to_owned(),
                        }
                    }
                }
                Err(s) => format!("{:?}: {}", s.code(), s.message()),
            };
            // Told once per kind of break, not every second while a node is down.
            if why != last_why {
                self.note(node, &format!("not watching: {why}"));
                last_why = why;
            }
            // Nothing to wait on but time: the node may be restarting.
            tokio::time::sleep(REWATCH_AFTER).await;
        }
    }

    /// A feed event for the pages, as protobuf JSON.
    fn publish(&self, e: &sim::FeedEvent) {
        if let Some(line) = feed_line(e) {
            self.push(line);
        }
    }

    /// A word of the console's own about a node's feed, as an event the page shows.
    fn note(&self, node: Node, what: &str) {
        self.push(json!({ "node": node.name(), "console": what }).to_string());
    }

    fn push(&self, line: String) {
        let line: Arc<str> = line.into();
        {
            let mut h = self.0.history.lock().unwrap_or_else(|e| e.into_inner());
            if h.len() == HISTORY_EVENTS_MAX {
                h.pop_front();
            }
            h.push_back(line.clone());
        }
        let _ = self.0.live.send(line);
    }
}

/// A feed event as protobuf JSON (field names as in the .proto, defaults left out): what the
/// page's diagram and the scenario report draw. Written by the protocol's generated JSON code.
pub(crate) fn feed_json(e: &sim::FeedEvent) -> Option<Value> {
    serde_json::to_value(e).ok()
}

/// [`feed_json`] written straight as text, with no `Value` built on the way: what the console
/// does for every event of both nodes.
fn feed_line(e: &sim::FeedEvent) -> Option<String> {
    serde_json::to_string(e).ok()
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

async fn info(State(c): State<Console>) -> Json<Value> {
    Json(json!({ "bank": c.0.bank_url, "platform": c.0.platform_url }))
}

async fn events(
    State(c): State<Console>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the history is read: an event may come twice, never not at all.
    let live = c.0.live.subscribe();
    let kept: Vec<Arc<str>> =
        c.0.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
    let kept = tokio_stream::iter(kept.into_iter().map(|l| Ok(Event::default().data(&*l))));
    let live = tokio_stream::wrappers::BroadcastStream::new(live).map(|r| {
        Ok(match r {
            Ok(l) => Event::default().data(&*l),
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                Event::default().data(json!({ "console": "lagged", "missed": n }).to_string())
            }
        })
    });
    Sse::new(kept.chain(shared::feed::lingering(live))).keep_alive(KeepAlive::default())
}

/// Both nodes' records side by side: `{"panels": [...], "unanswered": {"bank": why, …}}`.
async fn world(State(c): State<Console>) -> Json<Value> {
    let read = |node: Node| {
        let mut client =
            sim::simulator_service_client::SimulatorServiceClient::new(c.channel(node));
        async move {
            client
                .list_records(sim::ListRecordsRequest { limit: 0 })
                .await
                .map(|r| r.into_inner().tables)
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        }
    };
    let (bank, platform) = tokio::join!(read(Node::Bank), read(Node::Platform));
    let mut unanswered = serde_json::Map::new();
    for (name, r) in [("bank", &bank), ("platform", &platform)] {
        if let Err(why) = r {
            unanswered.insert(name.to_owned(), json!(why));
        }
    }
    let panels = world::panels(bank.as_deref().ok(), platform.as_deref().ok());
    Json(json!({ "panels": panels, "unanswered": unanswered }))
}

/// A call the page asks for.
#[derive(Debug, Deserialize)]
struct CallForm {
    node: String,
    rpc: String,
    #[serde(default)]
    request: Value,
}

async fn call(State(c): State<Console>, Json(form): Json<CallForm>) -> Response {
    let node = match form.node.as_str() {
        "bank" => Node::Bank,
        "platform" => Node::Platform,
        other => return bad(&format!("node is bank or platform, not {other:?}")),
    };
    let rpc = match c.0.catalog.resolve(node, &form.rpc) {
        Ok(r) => r,
        Err(e) => return bad(&format!("{e:#}")),
    };
    let request = if form.request.is_null() {
        json!({})
    } else {
        form.request
    };
    match invoke::call(c.channel(node), &rpc, &request).await {
        Ok(answer) => Json(json!({ "answer": answer })).into_response(),
        Err(CallError::Request(why)) => bad(&why),
        Err(CallError::Status(s)) => {
            let info = s.get_details_error_info();
            let field = info
                .as_ref()
                .and_then(|i| i.metadata.get("field").cloned())
                .unwrap_or_default();
            Json(json!({ "refused": {
                "code": shared::grpc::code_name(s.code()),
                "reason": info.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
                "domain": info.map(|i| i.domain).unwrap_or_default(),
                "message": s.message(),
                "field": field,
            }}))
            .into_response()
        }
    }
}

fn bad(why: &str) -> Response {
    (
        axum::http::StatusCode::BAD_REQUEST,
        Json(json!({ "error": why })),
    )
        .into_response()
}

/// Binds the console's address.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the console"))
}

/// A console channel to the node at `url` (plain, or TLS with the credentials given to
/// [`crate::use_credentials`]); the console plays no institution, so nothing is signed.
pub async fn channel(url: &str) -> anyhow::Result<NodeChannel> {
    Ok(shared::grpc::guard::Signed::new(
        crate::connect(url).await?,
        None,
        shared::clock::Clock::real(),
        "console.interbank-sim",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn the_pages_line_is_the_events_protobuf_json() {
        let e = sim::FeedEvent {
            seq: 18_446_744_073_709_551_615,
            node: "bank".into(),
            at: Some(proto::Timestamp {
                seconds: 1_764_806_400,
                nanos: 5_000,
            }),
            kind: Some(sim::feed_event::Kind::Call(sim::CallArrived {
                call_id: 7,
                service: "interbank.bank.v1.BankLinkService".into(),
                method: "Pay".into(),
                caller: "PLATFORM".into(),
                request_json: "{\"order_no\":\"O-1\\n\\u0000\"}".into(),
                order_nos: vec!["O-1".into()],
                ..Default::default()
            })),
        };
        let line = feed_line(&e).unwrap();
        let parsed: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(Some(&parsed), feed_json(&e).as_ref());
        // As prost-reflect writes it from the protocol's descriptors.
        let desc = prost_reflect::DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
            .unwrap()
            .get_message_by_name("interbank.sim.v1.FeedEvent")
            .unwrap();
        let reflected = prost_reflect::DynamicMessage::decode(desc, e.encode_to_vec().as_slice())
            .unwrap()
            .serialize_with_options(
                serde_json::value::Serializer,
                &prost_reflect::SerializeOptions::new()
                    .use_proto_field_name(true)
                    .skip_default_fields(true),
            )
            .unwrap();
        assert_eq!(parsed, reflected);
        assert!(line.contains(r#""seq":"18446744073709551615""#), "{line}");
        assert!(!line.contains('\n'), "one SSE data line: {line}");
    }
}
