//! The machine's own limit, which part 1 measures the node's stack against (issue 22): a bare
//! tonic server in this same process, one service answering `SimulatorService.Echo` and nothing
//! else: no layers, no limits, no feed, no guard, no trace. The bench calls it with the same
//! client over the same kind of channel as the node's echo, so the difference is the stack.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use proto::sim::v1 as sim;
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, UnaryService};

/// The echo's path, the only one the bare server answers.
const ECHO: &str = "/interbank.sim.v1.SimulatorService/Echo";

#[derive(Clone, Copy)]
struct Bare;

impl NamedService for Bare {
    const NAME: &'static str = "interbank.sim.v1.SimulatorService";
}

struct EchoOnly;

impl UnaryService<sim::EchoRequest> for EchoOnly {
    type Response = sim::EchoResponse;
    type Future = std::future::Ready<Result<tonic::Response<sim::EchoResponse>, tonic::Status>>;

    fn call(&mut self, req: tonic::Request<sim::EchoRequest>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(sim::EchoResponse {
            payload: req.into_inner().payload,
        })))
    }
}

impl tower::Service<http::Request<Body>> for Bare {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() != ECHO {
                return Ok(
                    tonic::Status::unimplemented("the bare server answers Echo only").into_http(),
                );
            }
            let mut grpc = Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(EchoOnly, req).await)
        })
    }
}

/// The bare server on a free local port, serving until the task is aborted; its URL.
pub(super) async fn serve() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(Bare)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the bare echo server stopped");
        }
    });
    Ok((url, task))
}
