//! Any RPC of either node, called by name with protobuf JSON, through the descriptors the
//! `proto` crate embeds (the same ones server reflection serves).

use std::time::Duration;

use anyhow::Context;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions,
};
use serde_json::Value;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Request, Status};

/// A call gives up after this long.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A server-streaming answer holds at most this many messages.
pub const STREAM_MESSAGES_MAX: usize = 10_000;

/// Which node a step talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// The postal bank.
    Bank,
    /// The payment platform.
    Platform,
}

impl Node {
    /// `bank` or `platform`.
    pub fn name(self) -> &'static str {
        match self {
            Node::Bank => "bank",
            Node::Platform => "platform",
        }
    }

    /// Whether the node serves the service (by full name).
    fn serves(self, service: &str) -> bool {
        let own = match self {
            Node::Bank => "interbank.bank.v1.",
            Node::Platform => "interbank.platform.v1.",
        };
        let sim_bank_only = ["SmsOutboxService", "BatchJobService"];
        match service.strip_prefix("interbank.sim.v1.") {
            Some(s) => self == Node::Bank || !sim_bank_only.contains(&s),
            None => service.starts_with(own),
        }
    }
}

/// Every service and RPC of both nodes.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: DescriptorPool,
}

/// One RPC of one node.
#[derive(Debug, Clone)]
pub struct Rpc {
    /// The node.
    pub node: Node,
    method: MethodDescriptor,
}

impl Rpc {
    /// `Service.Method`.
    pub fn name(&self) -> String {
        format!(
            "{}.{}",
            self.method.parent_service().name(),
            self.method.name()
        )
    }

    /// Whether the request is a stream.
    pub fn client_streaming(&self) -> bool {
        self.method.is_client_streaming()
    }

    /// Whether it is an interbank call (signed on a secured run).
    pub fn interbank(&self) -> bool {
        self.path()
            .is_ok_and(|p| shared::security::is_interbank(p.path()))
    }

    fn path(&self) -> anyhow::Result<tonic::codegen::http::uri::PathAndQuery> {
        let p = format!(
            "/{}/{}",
            self.method.parent_service().full_name(),
            self.method.name()
        );
        p.parse().context("method path")
    }
}

impl Catalog {
    /// The catalog of `proto::FILE_DESCRIPTOR_SET`.
    pub fn new() -> anyhow::Result<Catalog> {
        Ok(Catalog {
            pool: DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
                .context("the embedded descriptors do not decode")?,
        })
    }

    /// The RPC `name` (`Service.Method`, `Service/Method`, or with the package) on `node`.
    pub fn resolve(&self, node: Node, name: &str) -> anyhow::Result<Rpc> {
        let (service, method) = name
            .rsplit_once(['.', '/'])
            .with_context(|| format!("{name:?} is not Service.Method"))?;
        let services: Vec<_> = self
            .pool
            .services()
            .filter(|s| s.full_name() == service || s.name() == service)
            .collect();
        let Some(svc) = services.first() else {
            anyhow::bail!(
                "no service {service:?}; the {} serves {}",
                node.name(),
                self.services_of(node).join(", ")
            );
        };
        anyhow::ensure!(
            node.serves(svc.full_name()),
            "the {} does not serve {}; it serves {}",
            node.name(),
            svc.name(),
            self.services_of(node).join(", ")
        );
        let m = svc
            .methods()
            .find(|m| m.name() == method)
            .with_context(|| {
                let names: Vec<String> = svc.methods().map(|m| m.name().to_owned()).collect();
                format!(
                    "{} has no RPC {method:?}; it has {}",
                    svc.name(),
                    names.join(", ")
                )
            })?;
        Ok(Rpc { node, method: m })
    }

    fn services_of(&self, node: Node) -> Vec<String> {
        self.pool
            .services()
            .filter(|s| node.serves(s.full_name()))
            .map(|s| s.name().to_owned())
            .collect()
    }
}

/// Why a call produced no answer.
#[derive(Debug)]
pub enum CallError {
    /// The request did not fit the RPC's request message.
    Request(String),
    /// The node answered with a status.
    Status(Status),
}

/// Calls `rpc` on `channel` with `request` (protobuf JSON, an array for a client stream).
/// Answers the response as protobuf JSON with every field (defaults included, proto field names);
/// a server-streaming RPC answers `{"messages": [...]}`.
pub async fn call(
    channel: super::nodes::NodeChannel,
    rpc: &Rpc,
    request: &Value,
) -> Result<Value, CallError> {
    let input = rpc.method.input();
    let items = match request {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let m = DynamicMessage::deserialize(input.clone(), item).map_err(|e| {
            CallError::Request(format!(
                "request message {}: {e} ({})",
                i + 1,
                input.full_name()
            ))
        })?;
        messages.push(m);
    }
    let path = rpc.path().map_err(|e| CallError::Request(e.to_string()))?;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| CallError::Status(Status::unavailable(e.to_string())))?;
    let mut req = Request::new(tokio_stream::iter(messages));
    req.set_timeout(CALL_TIMEOUT);
    let codec = DynCodec {
        output: rpc.method.output(),
    };
    let mut stream = grpc
        .streaming(req, path, codec)
        .await
        .map_err(CallError::Status)?
        .into_inner();
    let mut answers = Vec::new();
    while let Some(m) = stream.message().await.map_err(CallError::Status)? {
        if answers.len() == STREAM_MESSAGES_MAX {
            return Err(CallError::Request(format!(
                "the answer streams more than {STREAM_MESSAGES_MAX} messages"
            )));
        }
        answers.push(to_json(&m));
    }
    if rpc.method.is_server_streaming() {
        Ok(serde_json::json!({ "messages": answers }))
    } else {
        answers
            .into_iter()
            .next()
            .ok_or_else(|| CallError::Status(Status::internal("no answer message")))
    }
}

fn to_json(m: &DynamicMessage) -> Value {
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false);
    m.serialize_with_options(serde_json::value::Serializer, &opts)
        .unwrap_or_else(|e| Value::String(format!("<unprintable: {e}>")))
}

#[derive(Clone)]
struct DynCodec {
    output: MessageDescriptor,
}

struct DynEncoder;

struct DynDecoder(MessageDescriptor);

impl Codec for DynCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynEncoder;
    type Decoder = DynDecoder;

    fn encoder(&mut self) -> DynEncoder {
        DynEncoder
    }

    fn decoder(&mut self) -> DynDecoder {
        DynDecoder(self.output.clone())
    }
}

impl Encoder for DynEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encode: {e}")))
    }
}

impl Decoder for DynDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decode: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_resolve_on_the_node_that_serves_them() {
        let c = Catalog::new().unwrap();
        let r = c.resolve(Node::Bank, "BranchService.SignUp").unwrap();
        assert_eq!(r.name(), "BranchService.SignUp");
        assert_eq!(
            r.path().unwrap().as_str(),
            "/interbank.bank.v1.BranchService/SignUp"
        );
        assert!(
            c.resolve(
                Node::Platform,
                "interbank.platform.v1.PayService/StartPayment"
            )
            .is_ok()
        );
        assert!(
            c.resolve(Node::Platform, "SimulatorService.SetClock")
                .is_ok()
        );
        assert!(c.resolve(Node::Bank, "SimulatorService.SetClock").is_ok());
        assert!(c.resolve(Node::Bank, "SmsOutboxService.ListSms").is_ok());
        let wrong_node = c
            .resolve(Node::Platform, "SmsOutboxService.ListSms")
            .unwrap_err();
        assert!(
            wrong_node.to_string().contains("does not serve"),
            "{wrong_node}"
        );
        let typo = c.resolve(Node::Bank, "BranchService.SigUp").unwrap_err();
        assert!(typo.to_string().contains("has no RPC \"SigUp\""), "{typo}");
        assert!(c.resolve(Node::Bank, "PayService.StartPayment").is_err());
        assert!(c.resolve(Node::Bank, "Nothing").is_err());
    }
}
