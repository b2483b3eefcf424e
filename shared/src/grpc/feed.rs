//! The wire side of [`crate::feed`]: [`FeedLayer`] on a node's server turns each call into two
//! feed events (its request as it arrives, its answer as it leaves) when somebody watches, and
//! [`Watch`] serves `interbank.sim.v1.FeedService`. Messages are shown as JSON, masked: card
//! numbers keep their first six and last four digits; passwords, one-time codes, session tokens
//! and SMS texts are never shown. They are written by the protocol's generated JSON code
//! (`super::masked`), or where that will not write one, decoded with the protocol's descriptors
//! and masked by [`mask`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};
use prost_reflect::Value as Field;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use proto::sim::v1 as pb;
use tonic::body::Body;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use crate::feed::{CallAnswered, CallArrived, Event, Feed, Keys, What};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most of a request's first message or of an answer the feed decodes; a bigger one is
/// shown as its size.
pub const SHOWN_MESSAGE_MAX_BYTES: usize = 64 * 1024;
/// Names of each kind a message may contribute to an event's keys.
const KEYS_PER_KIND_MAX: usize = 16;

/// Fields never shown, by name: they are replaced by `"(hidden)"`.
pub const HIDDEN_FIELDS: &[&str] = &[
    "card_password",
    "login_password",
    "pay_password",
    "otp_code",
    "session_token",
    // The SMS text carries the one-time code.
    "text",
];
/// Fields that hold a card number, shown masked.
pub const CARD_FIELDS: &[&str] = &["card_number", "match_card"];

/// Who calls a service, as the console draws it (see feed.proto); `None`: not in the feed.
pub fn caller_of(service: &str) -> Option<&'static str> {
    super::services::lifeline(service)
}

pub(super) fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).expect("the protocol's descriptors")
    })
}

/// A message body shown by its type's generated JSON code (see [`super::masked::shown_typed`]).
type Typed = fn(&[u8]) -> Option<(String, Keys)>;

/// How a message type is shown: by its generated JSON code, and by its descriptor where that
/// will not write it.
#[derive(Clone)]
struct Shape {
    typed: Typed,
    desc: MessageDescriptor,
}

/// The shapes of an RPC's request and answer.
struct Shapes;

impl proto::MethodVisitor for Shapes {
    type Out = (Typed, Typed);
    fn visit<I, O>(self) -> Self::Out
    where
        I: prost::Message + serde::Serialize + Default + 'static,
        O: prost::Message + serde::Serialize + Default + 'static,
    {
        (
            super::masked::shown_typed::<I>,
            super::masked::shown_typed::<O>,
        )
    }
}

/// The input and output message types of `/service/method`.
fn io_of(service: &str, method: &str) -> Option<(Shape, Shape)> {
    let (typed_in, typed_out) = proto::visit_method(service, method, Shapes)?;
    let m = pool()
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)?;
    let input = Shape {
        typed: typed_in,
        desc: m.input(),
    };
    let output = Shape {
        typed: typed_out,
        desc: m.output(),
    };
    Some((input, output))
}

/// A framed gRPC message (`bytes`, its 5-byte prefix included) as masked JSON, and its keys.
fn shown(shape: &Shape, framed: &[u8]) -> (String, Keys) {
    if framed.len() < 5 {
        return ("{}".into(), Keys::default());
    }
    if framed[0] != 0 {
        return ("\"(compressed)\"".into(), Keys::default());
    }
    let body = &framed[5..];
    if body.len() > SHOWN_MESSAGE_MAX_BYTES {
        return (format!("\"({} bytes)\"", body.len()), Keys::default());
    }
    if let Some(shown) = (shape.typed)(body) {
        return shown;
    }
    let Ok(mut msg) = DynamicMessage::decode(shape.desc.clone(), body) else {
        return ("\"(not a message of its type)\"".into(), Keys::default());
    };
    let mut keys = Keys::default();
    mask(&mut msg, &mut keys);
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    // Written straight as text, with no `serde_json::Value` built on the way: the feed does
    // this for every request and answer a node serves while somebody watches.
    let mut out = Vec::with_capacity(2 * body.len() + 2);
    let written = msg.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &opts);
    match (written, String::from_utf8(out)) {
        (Ok(()), Ok(json)) => (json, keys),
        _ => ("null".into(), keys),
    }
}

/// What a hidden field shows.
pub(super) const HIDDEN: &str = "(hidden)";

/// Masks a message in place (see the module documentation) and collects the order numbers,
/// sign-up ids and batch numbers it names. A hidden field shows as `"(hidden)"`; one that is not
/// a string could not, and is left out (the protocol has none: a test checks).
pub fn mask(msg: &mut DynamicMessage, keys: &mut Keys) {
    let mut left_out = Vec::new();
    for (field, value) in msg.fields_mut() {
        let name = field.name();
        if !HIDDEN_FIELDS.contains(&name) {
            mask_value(name, value, keys);
        } else if let Field::String(s) = value {
            HIDDEN.clone_into(s);
        } else {
            left_out.push(field);
        }
    }
    for field in &left_out {
        msg.clear_field(field);
    }
}

/// Masks the value of a field named `name` (each item of a list, each value of a map).
fn mask_value(name: &str, value: &mut Field, keys: &mut Keys) {
    match value {
        Field::String(s) => {
            note_key(name, s, keys);
            // A card number in a field of another name is masked all the same.
            if CARD_FIELDS.contains(&name) || looks_like_card(s) {
                *s = mask_card(s);
            }
        }
        Field::Message(m) => mask(m, keys),
        Field::List(items) => items.iter_mut().for_each(|i| mask_value(name, i, keys)),
        Field::Map(entries) => entries.values_mut().for_each(|v| mask_value(name, v, keys)),
        _ => {}
    }
}

/// Notes `s` among `keys` if a field named `name` holds an order number, a sign-up id or a batch
/// number.
pub(super) fn note_key(name: &str, s: &str, keys: &mut Keys) {
    let list = match name {
        "order_no" => &mut keys.order_nos,
        "signup_id" => &mut keys.signup_ids,
        "batch_no" => &mut keys.batch_nos,
        _ => return,
    };
    if !s.is_empty() && list.len() < KEYS_PER_KIND_MAX && !list.iter().any(|k| k == s) {
        list.push(s.to_owned());
    }
}

pub(super) fn looks_like_card(s: &str) -> bool {
    (16..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// First six and last four characters, the rest as `*` (anything shorter than 11: all stars).
pub(super) fn mask_card(s: &str) -> String {
    crate::domain::mask_middle(s, 6, 4)
}

/// The server layer: see the module documentation.
#[derive(Clone, Debug)]
pub struct FeedLayer(Feed);

impl FeedLayer {
    /// Feeds `feed`.
    pub fn new(feed: Feed) -> FeedLayer {
        FeedLayer(feed)
    }
}

impl<S> tower::Layer<S> for FeedLayer {
    type Service = Fed<S>;
    fn layer(&self, inner: S) -> Fed<S> {
        Fed {
            inner,
            feed: self.0.clone(),
        }
    }
}

/// A service behind [`FeedLayer`].
#[derive(Clone, Debug)]
pub struct Fed<S> {
    inner: S,
    feed: Feed,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<Body>> for Fed<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let watched = self.feed.watched().then(|| self.feed.clone());
        let target = watched.and_then(|feed| {
            let path = req.uri().path();
            let (service, method) = path.trim_start_matches('/').split_once('/')?;
            let caller = caller_of(service)?;
            let (input, output) = io_of(service, method)?;
            Some(Target {
                feed,
                service: service.to_owned(),
                method: method.to_owned(),
                caller,
                input,
                output,
            })
        });
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let Some(t) = target else {
            let work = inner.call(req);
            return Box::pin(async move { Ok(work.await?.map(Body::new)) });
        };
        Box::pin(async move {
            let started = Instant::now();
            let call_id = t.feed.next_call_id();
            let (parts, body) = req.into_parts();
            let read = super::guard::read_first(Body::new(body), SHOWN_MESSAGE_MAX_BYTES + 5).await;
            let (request_json, keys) = match &read.first {
                Ok(framed) => shown(&t.input, framed),
                Err(why) => (format!("\"({why})\""), Keys::default()),
            };
            t.feed.send(What::Call(CallArrived {
                call_id,
                service: t.service.clone(),
                method: t.method.clone(),
                caller: t.caller,
                trace_id: crate::trace::TraceParent::current()
                    .map(|c| c.trace_id())
                    .unwrap_or_default(),
                request_json,
                keys,
            }));
            let answer = inner
                .call(http::Request::from_parts(parts, read.body))
                .await?;
            let (parts, body) = answer.into_parts();
            let watch = Watched {
                feed: t.feed,
                call_id,
                output: t.output,
                started,
                trailers_only: parts
                    .headers
                    .contains_key("grpc-status")
                    .then(|| parts.headers.clone()),
                frames: Frames::default(),
                done: false,
            };
            Ok(http::Response::from_parts(
                parts,
                Body::new(Teed {
                    inner: Body::new(body),
                    watch,
                }),
            ))
        })
    }
}

struct Target {
    feed: Feed,
    service: String,
    method: String,
    caller: &'static str,
    input: Shape,
    output: Shape,
}

/// The gRPC messages of an answer as they pass: the first kept (up to the shown size), all
/// counted.
#[derive(Default)]
struct Frames {
    /// Bytes of the current message still to come.
    left: usize,
    /// A message prefix split across data frames.
    prefix: BytesMut,
    /// The first message, framed, while it is being read.
    first: BytesMut,
    /// Whether the first message was read whole (or given up on).
    first_done: bool,
    count: u32,
}

impl Frames {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left == 0 {
                let want = 5 - self.prefix.len();
                let take = want.min(data.len());
                self.prefix.extend_from_slice(&data[..take]);
                self.keep(&data[..take]);
                data.advance(take);
                if self.prefix.len() < 5 {
                    return;
                }
                let p = std::mem::take(&mut self.prefix);
                self.left = u32::from_be_bytes([p[1], p[2], p[3], p[4]]) as usize;
                self.count = self.count.saturating_add(1);
                if self.left == 0 {
                    self.first_done = true;
                }
                continue;
            }
            let take = self.left.min(data.len());
            self.keep(&data[..take]);
            data.advance(take);
            self.left -= take;
            if self.left == 0 {
                self.first_done = true;
            }
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.first_done {
            return;
        }
        if self.first.len() + bytes.len() > SHOWN_MESSAGE_MAX_BYTES + 5 {
            self.first_done = true;
            self.first.clear();
            return;
        }
        self.first.extend_from_slice(bytes);
    }
}

/// What the answer event needs.
struct Watched {
    feed: Feed,
    call_id: u64,
    output: Shape,
    started: Instant,
    trailers_only: Option<http::HeaderMap>,
    frames: Frames,
    done: bool,
}

impl Watched {
    /// Sends the answer event, once; `status_map` holds grpc-status (trailers, or the headers
    /// of a trailers-only answer); `None`: the answer broke off.
    fn finish(&mut self, status_map: Option<&http::HeaderMap>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let status = match status_map {
            Some(map) => Status::from_header_map(map).unwrap_or_else(|| Status::ok("")),
            None => Status::cancelled("the answer broke off before its end"),
        };
        let info = status.get_details_error_info();
        let (answer_json, keys) = if self.frames.count > 0 && !self.frames.first.is_empty() {
            shown(&self.output, &self.frames.first)
        } else {
            (String::new(), Keys::default())
        };
        self.feed.send(What::Answer(CallAnswered {
            call_id: self.call_id,
            code: super::code_name(status.code()),
            reason: info.as_ref().map(|i| i.reason.clone()).unwrap_or_default(),
            domain: info.map(|i| i.domain).unwrap_or_default(),
            message: status.message().to_owned(),
            answer_json,
            messages: self.frames.count,
            micros: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            keys,
        }));
    }
}

/// An answer body watched as it passes.
struct Teed {
    inner: Body,
    watch: Watched,
}

impl HttpBody for Teed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.watch.frames.feed(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.watch.finish(Some(trailers));
                }
            }
            Poll::Ready(None) => {
                let only = this.watch.trailers_only.take();
                this.watch.finish(Some(&only.unwrap_or_else(ok_status_map)));
            }
            Poll::Ready(Some(Err(_))) => this.watch.finish(None),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

impl Drop for Teed {
    fn drop(&mut self) {
        if let Some(only) = self.watch.trailers_only.take() {
            self.watch.finish(Some(&only));
        }
        self.watch.finish(None);
    }
}

fn ok_status_map() -> http::HeaderMap {
    let mut m = http::HeaderMap::new();
    m.insert("grpc-status", http::HeaderValue::from_static("0"));
    m
}

/// `interbank.sim.v1.FeedService` over a node's feed.
#[derive(Clone, Debug)]
pub struct Watch(pub Feed);

type EventStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::FeedEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::feed_service_server::FeedService for Watch {
    type WatchStream = EventStream;

    async fn watch(
        &self,
        _req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        use tokio_stream::StreamExt;
        use tokio_stream::wrappers::BroadcastStream;
        use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
        let node = self.0.node().name();
        let events = BroadcastStream::new(self.0.watch()).map(move |e| {
            Ok(match e {
                Ok(e) => to_pb(node, &e),
                Err(BroadcastStreamRecvError::Lagged(missed)) => pb::FeedEvent {
                    node: node.to_owned(),
                    at: Some(proto::Timestamp::from(std::time::SystemTime::now())),
                    kind: Some(pb::feed_event::Kind::Lagged(pb::Lagged { missed })),
                    ..Default::default()
                },
            })
        });
        Ok(Response::new(Box::pin(crate::feed::lingering(events))))
    }
}

/// An event for the wire.
pub fn to_pb(node: &str, e: &Arc<Event>) -> pb::FeedEvent {
    use pb::feed_event::Kind;
    let kind = match &e.what {
        What::Call(c) => Kind::Call(pb::CallArrived {
            call_id: c.call_id,
            service: c.service.clone(),
            method: c.method.clone(),
            caller: c.caller.to_owned(),
            trace_id: c.trace_id.clone(),
            request_json: c.request_json.clone(),
            order_nos: c.keys.order_nos.clone(),
            signup_ids: c.keys.signup_ids.clone(),
            batch_nos: c.keys.batch_nos.clone(),
        }),
        What::Answer(a) => Kind::Answer(pb::CallAnswered {
            call_id: a.call_id,
            code: a.code.to_owned(),
            reason: a.reason.clone(),
            domain: a.domain.clone(),
            message: a.message.clone(),
            answer_json: a.answer_json.clone(),
            messages: a.messages,
            micros: a.micros,
            order_nos: a.keys.order_nos.clone(),
            signup_ids: a.keys.signup_ids.clone(),
            batch_nos: a.keys.batch_nos.clone(),
        }),
        What::Fault {
            rule,
            side,
            method,
            action,
            order_no,
        } => Kind::Fault(pb::FaultFired {
            rule_id: *rule,
            side: (*side).to_owned(),
            method: method.clone(),
            action: action.clone(),
            order_no: order_no.clone(),
        }),
        What::Sms {
            mobile_masked,
            order_no,
        } => Kind::Sms(pb::SmsSent {
            mobile_masked: mobile_masked.clone(),
            order_no: order_no.clone(),
        }),
    };
    pb::FeedEvent {
        seq: e.seq,
        node: node.to_owned(),
        at: Some(proto::Timestamp {
            seconds: e.at_us.div_euclid(1_000_000),
            nanos: i32::try_from(e.at_us.rem_euclid(1_000_000) * 1000).unwrap_or(0),
        }),
        kind: Some(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_reflect::{Kind, MapKey};
    use serde_json::Value;

    /// `body` framed as on the wire.
    fn framed(body: &[u8]) -> Vec<u8> {
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(body);
        framed
    }

    /// `body` shown both ways, by the generated code and by the descriptor of `desc`, which must
    /// agree; and whether the generated code wrote it.
    fn shown_both(typed: Typed, desc: &MessageDescriptor, body: &[u8]) -> (Value, Keys, bool) {
        let by_code = Shape {
            typed,
            desc: desc.clone(),
        };
        let by_descriptor = Shape {
            typed: |_| None,
            desc: desc.clone(),
        };
        let (json, keys) = shown(&by_code, &framed(body));
        let (reflected, reflected_keys) = shown(&by_descriptor, &framed(body));
        let json: Value = serde_json::from_str(&json).unwrap();
        let reflected: Value = serde_json::from_str(&reflected).unwrap();
        assert_eq!(
            json,
            reflected,
            "{}: code and descriptor disagree",
            desc.full_name()
        );
        assert_eq!(keys, reflected_keys, "{}: keys", desc.full_name());
        (json, keys, typed(body).is_some())
    }

    /// `m` as the feed shows it (the same by its code as by its descriptor, which is checked),
    /// and the keys it names.
    fn shown_as<M>(name: &str, m: &M) -> (Value, Keys)
    where
        M: prost::Message + serde::Serialize + Default,
    {
        let desc = pool().get_message_by_name(name).unwrap();
        let (json, keys, by_code) = shown_both(
            super::super::masked::shown_typed::<M>,
            &desc,
            &m.encode_to_vec(),
        );
        assert!(
            by_code,
            "{}: written by its generated code",
            desc.full_name()
        );
        (json, keys)
    }

    #[test]
    fn secrets_are_hidden_cards_masked_and_keys_collected() {
        use proto::bank::v1 as bank;
        use proto::platform::v1 as platform;
        let (v, _) = shown_as(
            "interbank.bank.v1.OpenCardRequest",
            &bank::OpenCardRequest {
                card_number: "6221880000000001234".into(),
                card_password: "123456".into(),
                holder_name: "6221880000000005678".into(),
                ..Default::default()
            },
        );
        assert_eq!(v["card_number"], "622188*********1234");
        assert_eq!(v["card_password"], "(hidden)");
        assert_eq!(
            v["holder_name"], "622188*********5678",
            "a card under another name"
        );

        let sms = |order_no: &str| pb::Sms {
            otp_code: "654321".into(),
            text: "code 654321".into(),
            order_no: order_no.into(),
            ..Default::default()
        };
        let (v, keys) = shown_as(
            "interbank.sim.v1.ListSmsResponse",
            &pb::ListSmsResponse {
                messages: vec![sms("O-1"), sms("O-2"), sms("O-1")],
            },
        );
        assert_eq!(v["messages"][0]["otp_code"], "(hidden)");
        assert_eq!(v["messages"][1]["text"], "(hidden)");
        assert_eq!(keys.order_nos, ["O-1", "O-2"], "each once");

        let (v, keys) = shown_as(
            "interbank.platform.v1.StartPaymentRequest",
            &platform::StartPaymentRequest {
                session_token: "token".into(),
                pay_password: "111111".into(),
                signup_id: "SU1".into(),
                ..Default::default()
            },
        );
        assert_eq!(v["session_token"], "(hidden)");
        assert_eq!(v["pay_password"], "(hidden)");
        assert_eq!(v.get("order_no"), None, "an empty field is left out");
        assert_eq!(keys.signup_ids, ["SU1"]);

        let (v, _) = shown_as("interbank.sim.v1.Lagged", &pb::Lagged { missed: u64::MAX });
        assert_eq!(
            v["missed"], "18446744073709551615",
            "a number is not a card, however many digits it has"
        );
    }

    /// A value of every field of `desc`, none of them the default: strings alternately
    /// card-like and named after their field, 64-bit numbers of 16 digits (not cards), lists of
    /// two, maps of one, enums at their last value, messages three levels deep.
    fn filled(desc: &MessageDescriptor, depth: u32) -> DynamicMessage {
        let mut m = DynamicMessage::new(desc.clone());
        if desc.full_name() == "google.protobuf.Timestamp" {
            m.set_field_by_name("seconds", Field::I64(1_765_000_000));
            m.set_field_by_name("nanos", Field::I32(123_000_000));
            return m;
        }
        for f in desc.fields() {
            // Three levels of messages are enough, and a message that holds its own type ends.
            if depth >= 3 && matches!(f.kind(), Kind::Message(_)) {
                continue;
            }
            let one = || sample(&f.kind(), f.name(), f.number(), depth);
            let value = if f.is_map() {
                let Kind::Message(entry) = f.kind() else {
                    unreachable!()
                };
                let v = entry.map_entry_value_field();
                let value = sample(&v.kind(), f.name(), f.number(), depth);
                Field::Map([(MapKey::String("k".into()), value)].into())
            } else if f.is_list() {
                Field::List(vec![one(), one()])
            } else {
                one()
            };
            m.set_field(&f, value);
        }
        m
    }

    fn sample(kind: &Kind, name: &str, number: u32, depth: u32) -> Field {
        match kind {
            Kind::String if number.is_multiple_of(2) => Field::String("6221880000000001234".into()),
            Kind::String => Field::String(format!("{name}-{number}")),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Field::I64(1_234_567_890_123_456),
            Kind::Uint64 | Kind::Fixed64 => Field::U64(1_234_567_890_123_456),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Field::I32(-7),
            Kind::Uint32 | Kind::Fixed32 => Field::U32(7),
            Kind::Bool => Field::Bool(true),
            Kind::Double => Field::F64(0.25),
            Kind::Float => Field::F32(0.5),
            Kind::Bytes => Field::Bytes(bytes::Bytes::from_static(b"1234567890123456")),
            Kind::Enum(e) => Field::EnumNumber(e.values().last().map_or(0, |v| v.number())),
            Kind::Message(m) => Field::Message(filled(m, depth + 1)),
        }
    }

    /// Every request and answer of the protocol, every field set, shows the same written by its
    /// generated code as by its descriptor: the JSON, the masking, the hiding and the keys.
    #[test]
    fn every_message_of_an_rpc_shows_the_same_by_its_code_as_by_its_descriptor() {
        let mut checked = 0;
        for service in pool().services() {
            for method in service.methods() {
                let (input, output) = io_of(service.full_name(), method.name())
                    .unwrap_or_else(|| panic!("{}: no types", method.full_name()));
                for shape in [input, output] {
                    let body = filled(&shape.desc, 0).encode_to_vec();
                    let (json, _, by_code) = shown_both(shape.typed, &shape.desc, &body);
                    assert!(
                        by_code,
                        "{}: not written by its code",
                        shape.desc.full_name()
                    );
                    let text = json.to_string();
                    assert!(!text.contains("6221880000000001234"), "a card shown whole");
                    for h in HIDDEN_FIELDS {
                        assert!(!text.contains(&format!("\"{h}-")), "{h} shown: {text}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "{checked} messages checked");
    }

    /// What the generated code will not write is shown by the descriptor: an enum value the
    /// protocol does not name, a timestamp out of range; and a probability that is not a number.
    #[test]
    fn what_the_code_will_not_write_is_shown_by_the_descriptor() {
        use super::super::masked::shown_typed;
        use proto::bank::v1 as bank;
        let status = bank::SetCardStatusRequest {
            card_number: "6221880000000001234".into(),
            status: 99,
        };
        let desc = pool()
            .get_message_by_name("interbank.bank.v1.SetCardStatusRequest")
            .unwrap();
        let typed = shown_typed::<bank::SetCardStatusRequest>;
        let (json, _, by_code) = shown_both(typed, &desc, &status.encode_to_vec());
        assert!(!by_code);
        assert_eq!(json["status"], 99);
        assert_eq!(json["card_number"], "622188*********1234");

        let mut sms = pb::Sms {
            sent_at: Some(proto::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
            ..Default::default()
        };
        let desc = pool().get_message_by_name("interbank.sim.v1.Sms").unwrap();
        let (_, _, by_code) = shown_both(shown_typed::<pb::Sms>, &desc, &sms.encode_to_vec());
        assert!(!by_code, "a timestamp after 9999 is not protobuf JSON");
        sms.sent_at = Some(proto::Timestamp {
            seconds: 253_402_300_799,
            nanos: 999_999_999,
        });
        let (json, _, by_code) = shown_both(shown_typed::<pb::Sms>, &desc, &sms.encode_to_vec());
        assert!(by_code);
        assert_eq!(json["sent_at"], "9999-12-31T23:59:59.999999999Z");

        let desc = pool()
            .get_message_by_name("interbank.sim.v1.AddFaultRequest")
            .unwrap();
        let typed = shown_typed::<pb::AddFaultRequest>;
        for (p, shows) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            let rule = pb::AddFaultRequest {
                rule: Some(pb::FaultRule {
                    probability: p,
                    ..Default::default()
                }),
            };
            let (json, _, by_code) = shown_both(typed, &desc, &rule.encode_to_vec());
            assert!(by_code);
            assert_eq!(json["rule"]["probability"], shows);
        }
    }

    /// A hidden field shows as `"(hidden)"` only if it is a string; any other would be left out.
    #[test]
    fn every_hidden_field_of_the_protocol_is_a_single_string() {
        for m in pool().all_messages() {
            for f in m.fields().filter(|f| HIDDEN_FIELDS.contains(&f.name())) {
                assert!(
                    matches!(f.kind(), Kind::String) && !f.is_list() && !f.is_map(),
                    "{} is hidden but not a single string",
                    f.full_name()
                );
            }
        }
    }

    /// Every string field of the protocol whose name speaks of a secret is hidden or a card
    /// field, or is named here as not secret: a new secret field fails this test until listed.
    #[test]
    fn every_secret_sounding_field_is_hidden_or_named_harmless() {
        const HARMLESS: &[&str] = &[
            "card_number_masked",
            "card_status",
            "code",
            "id_number_masked",
            "mobile_masked",
            "reason_code",
            "reason_text",
            "failure_code",
            "record_key",
            "signup_id",
        ];
        let secretish = [
            "pass", "otp", "token", "pin", "secret", "code", "text", "card", "key",
        ];
        for m in pool().all_messages() {
            for f in m.fields() {
                let name = f.name();
                if !matches!(f.kind(), Kind::String) || !secretish.iter().any(|s| name.contains(s))
                {
                    continue;
                }
                assert!(
                    HIDDEN_FIELDS.contains(&name)
                        || CARD_FIELDS.contains(&name)
                        || HARMLESS.contains(&name),
                    "{}.{name} may hold a secret: hide it, mask it, or name it harmless",
                    m.full_name()
                );
            }
        }
    }

    #[test]
    fn every_service_has_a_caller_but_the_feed_itself() {
        for s in pool().services() {
            let name = s.full_name();
            if name.starts_with("interbank.") && name != "interbank.sim.v1.FeedService" {
                assert!(caller_of(name).is_some(), "{name} has no caller lifeline");
            }
        }
        assert_eq!(caller_of("interbank.sim.v1.FeedService"), None);
    }

    #[test]
    fn answers_are_counted_across_split_frames() {
        let mut f = Frames::default();
        let msg = |body: &[u8]| {
            let mut v = vec![0u8];
            v.extend_from_slice(&(body.len() as u32).to_be_bytes());
            v.extend_from_slice(body);
            v
        };
        let mut all = msg(b"abc");
        all.extend(msg(b""));
        all.extend(msg(b"defgh"));
        for chunk in all.chunks(2) {
            f.feed(chunk);
        }
        assert_eq!(f.count, 3);
        assert_eq!(&f.first[..], &msg(b"abc")[..]);
    }
}
