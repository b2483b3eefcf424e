//! Server reflection (`grpc.reflection.v1` and `v1alpha`) over what a node serves: it lists the
//! node's own services (plus health and reflection), and answers a file or a symbol with that
//! file and every file it depends on that this stream has not sent yet, as grpc-go's server does,
//! so that a client which does not fetch dependencies by name still gets a whole set. Errors are
//! answered in the stream (an `ErrorResponse`) and the stream goes on.
//!
//! Ours rather than tonic-reflection's server: that one lists every service of every registered
//! file and answers a symbol with its file alone. The message types are tonic-reflection's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context;
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tonic_reflection::pb::v1 as pb;
use tonic_reflection::pb::v1alpha as pb_alpha;

/// Messages one reflection stream answers at most before the server ends it.
pub const REFLECTION_REQUESTS_PER_STREAM_MAX: usize = 10_000;

/// The reflection services of one node; clones share the index.
#[derive(Clone, Debug)]
pub struct Reflection(Arc<Index>);

#[derive(Debug)]
struct Index {
    /// Every file by name: its encoded descriptor and its dependencies.
    files: HashMap<String, (Vec<u8>, Vec<String>)>,
    /// Every symbol (service, method, message, enum, by full name) the node answers for, and
    /// the file that holds it.
    symbols: HashMap<String, String>,
    /// The services listed, sorted.
    services: Vec<String>,
}

impl Reflection {
    /// Reflection over the encoded descriptor sets `sets`, listing `services` (full names) and
    /// the health and reflection services. A service of the sets that is not in `services` is
    /// neither listed nor found by symbol.
    pub fn new(sets: &[&[u8]], services: &[&str]) -> anyhow::Result<Reflection> {
        let mut listed: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        listed.extend(
            [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
            .map(String::from),
        );
        listed.sort();
        listed.dedup();
        let mut index = Index {
            files: HashMap::new(),
            symbols: HashMap::new(),
            services: listed,
        };
        for set in sets {
            let set =
                FileDescriptorSet::decode(*set).context("a descriptor set does not decode")?;
            for file in set.file {
                index.add(file);
            }
        }
        for s in &index.services {
            anyhow::ensure!(
                index.symbols.contains_key(s),
                "service {s} is in no descriptor set"
            );
        }
        Ok(Reflection(Arc::new(index)))
    }

    /// The v1 service.
    pub fn v1(&self) -> pb::server_reflection_server::ServerReflectionServer<Reflection> {
        pb::server_reflection_server::ServerReflectionServer::new(self.clone())
    }

    /// The v1alpha service.
    pub fn v1alpha(
        &self,
    ) -> pb_alpha::server_reflection_server::ServerReflectionServer<Reflection> {
        pb_alpha::server_reflection_server::ServerReflectionServer::new(self.clone())
    }

    /// Answers a stream of requests (either version: the two are the same on the wire).
    fn answer_stream<Req, Resp>(
        &self,
        mut requests: Streaming<Req>,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<Resp, Status>>
    where
        Req: Message + Default + 'static,
        Resp: Message + Default + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let index = self.0.clone();
        tokio::spawn(async move {
            let mut sent = HashSet::new();
            for _ in 0..REFLECTION_REQUESTS_PER_STREAM_MAX {
                let Some(Ok(req)) = requests.next().await else {
                    return;
                };
                let answer = pb::ServerReflectionRequest::decode(req.encode_to_vec().as_slice())
                    .map_err(|_| Status::invalid_argument("not a reflection request"))
                    .map(|r| index.answer(r, &mut sent))
                    .and_then(|a| {
                        Resp::decode(a.encode_to_vec().as_slice())
                            .map_err(|_| Status::internal("reflection answer"))
                    });
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

impl Index {
    fn add(&mut self, file: FileDescriptorProto) {
        let name = file.name().to_owned();
        if self.files.contains_key(&name) {
            return;
        }
        let pkg = file.package().to_owned();
        let full = |n: &str| match pkg.as_str() {
            "" => n.to_owned(),
            p => format!("{p}.{n}"),
        };
        for m in &file.message_type {
            self.add_message(&full(m.name()), m, &name);
        }
        for e in &file.enum_type {
            self.symbols.insert(full(e.name()), name.clone());
        }
        for s in &file.service {
            let service = full(s.name());
            // Only what the node serves is found by name.
            if !self.services.contains(&service) {
                continue;
            }
            for m in &s.method {
                self.symbols
                    .insert(format!("{service}.{}", m.name()), name.clone());
            }
            self.symbols.insert(service, name.clone());
        }
        let deps = file.dependency.clone();
        self.files.insert(name, (file.encode_to_vec(), deps));
    }

    fn add_message(&mut self, full: &str, m: &DescriptorProto, file: &str) {
        self.symbols.insert(full.to_owned(), file.to_owned());
        for n in &m.nested_type {
            self.add_message(&format!("{full}.{}", n.name()), n, file);
        }
        for e in &m.enum_type {
            self.symbols
                .insert(format!("{full}.{}", e.name()), file.to_owned());
        }
    }

    /// `file` (always, first) and its dependencies, leaving out those `sent` holds (and adding
    /// what is returned to it), as grpc-go's server answers; `None` for an unknown file.
    fn with_deps(&self, file: &str, sent: &mut HashSet<String>) -> Option<Vec<Vec<u8>>> {
        let (bytes, _) = self.files.get(file)?;
        sent.insert(file.to_owned());
        let mut out = vec![bytes.clone()];
        let mut todo = vec![file.to_owned()];
        while let Some(f) = todo.pop() {
            let Some((_, deps)) = self.files.get(&f) else {
                continue;
            };
            for d in deps {
                if let Some((b, _)) = self.files.get(d)
                    && sent.insert(d.clone())
                {
                    out.push(b.clone());
                    todo.push(d.clone());
                }
            }
        }
        Some(out)
    }

    fn answer(
        &self,
        req: pb::ServerReflectionRequest,
        sent: &mut HashSet<String>,
    ) -> pb::ServerReflectionResponse {
        use pb::server_reflection_request::MessageRequest as Q;
        use pb::server_reflection_response::MessageResponse as A;
        let not_found = |what: String| {
            A::ErrorResponse(pb::ErrorResponse {
                error_code: tonic::Code::NotFound as i32,
                error_message: what,
            })
        };
        let files = |found: Option<Vec<Vec<u8>>>, what: String| match found {
            Some(file_descriptor_proto) => A::FileDescriptorResponse(pb::FileDescriptorResponse {
                file_descriptor_proto,
            }),
            None => not_found(what),
        };
        let answer = match req.message_request.clone() {
            Some(Q::ListServices(_)) => A::ListServicesResponse(pb::ListServiceResponse {
                service: self
                    .services
                    .iter()
                    .map(|s| pb::ServiceResponse { name: s.clone() })
                    .collect(),
            }),
            Some(Q::FileByFilename(f)) => files(self.with_deps(&f, sent), format!("file {f:?}")),
            Some(Q::FileContainingSymbol(s)) => {
                let found = self.symbols.get(&s).and_then(|f| self.with_deps(f, sent));
                files(found, format!("symbol {s:?}"))
            }
            Some(Q::FileContainingExtension(e)) => not_found(format!(
                "extension {} of {:?}",
                e.extension_number, e.containing_type
            )),
            // No extensions are declared; grpcurl expects an answer, not an error.
            Some(Q::AllExtensionNumbersOfType(t)) => {
                A::AllExtensionNumbersResponse(pb::ExtensionNumberResponse {
                    base_type_name: t,
                    extension_number: Vec::new(),
                })
            }
            None => A::ErrorResponse(pb::ErrorResponse {
                error_code: tonic::Code::InvalidArgument as i32,
                error_message: "a request names one question".into(),
            }),
        };
        pb::ServerReflectionResponse {
            valid_host: req.host.clone(),
            original_request: Some(req),
            message_response: Some(answer),
        }
    }
}

type Answers<T> = tokio_stream::wrappers::ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl pb::server_reflection_server::ServerReflection for Reflection {
    type ServerReflectionInfoStream = Answers<pb::ServerReflectionResponse>;

    async fn server_reflection_info(
        &self,
        req: Request<Streaming<pb::ServerReflectionRequest>>,
    ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
        Ok(Response::new(self.answer_stream(req.into_inner())))
    }
}

#[tonic::async_trait]
impl pb_alpha::server_reflection_server::ServerReflection for Reflection {
    type ServerReflectionInfoStream = Answers<pb_alpha::ServerReflectionResponse>;

    async fn server_reflection_info(
        &self,
        req: Request<Streaming<pb_alpha::ServerReflectionRequest>>,
    ) -> Result<Response<Self::ServerReflectionInfoStream>, Status> {
        Ok(Response::new(self.answer_stream(req.into_inner())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank() -> Reflection {
        Reflection::new(
            &[
                proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                pb::FILE_DESCRIPTOR_SET,
                pb_alpha::FILE_DESCRIPTOR_SET,
            ],
            &["interbank.bank.v1.BankLinkService"],
        )
        .unwrap()
    }

    fn names(files: &[Vec<u8>]) -> Vec<String> {
        files
            .iter()
            .map(|b| {
                FileDescriptorProto::decode(b.as_slice())
                    .unwrap()
                    .name()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn a_symbol_comes_with_the_dependencies_not_sent_yet_and_only_once() {
        let r = bank();
        let mut sent = HashSet::new();
        let file = &r.0.symbols["interbank.bank.v1.BankLinkService"];
        let first = names(&r.0.with_deps(file, &mut sent).unwrap());
        assert_eq!(first[0], *file, "the file asked for comes first");
        assert!(first.len() > 1, "with its dependencies: {first:?}");
        let again = names(&r.0.with_deps(file, &mut sent).unwrap());
        assert_eq!(
            again,
            std::slice::from_ref(file),
            "the file again, its dependencies not"
        );
    }

    #[test]
    fn services_not_served_are_neither_listed_nor_found() {
        let r = bank();
        assert!(
            r.0.services
                .contains(&"interbank.bank.v1.BankLinkService".to_owned())
        );
        assert!(!r.0.services.iter().any(|s| s.contains("PlatformOps")));
        assert!(
            !r.0.symbols
                .contains_key("interbank.platform.v1.PlatformOpsService")
        );
        assert!(r.0.symbols.contains_key("interbank.bank.v1.PayRequest"));
        assert!(Reflection::new(&[proto::FILE_DESCRIPTOR_SET], &["no.Such"]).is_err());
    }
}
