//! The machine's own limit, which part 1 measures the node's stack against (issue 22): a bare
//! tonic server, one service answering `SimulatorService.Echo` and nothing else: no layers, no
//! limits, no feed, no guard, no trace. It runs as a process of its own (this same binary,
//! `ibsim bare-echo`), apart from the bench's load as the nodes are, and the bench calls it with
//! the same client over the same kind of channel as the node's echo, so the difference is the
//! stack.

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

/// `ibsim bare-echo`: serves on `listen` until killed, after saying `listening on <url>` on
/// stdout (what [`BareProcess::start`] waits for).
pub async fn serve(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::Write as _;
    // tonic's own listener, as `Server::serve` binds it: TCP_NODELAY on each connection.
    let incoming = tonic::transport::server::TcpIncoming::bind(listen)?.with_nodelay(Some(true));
    println!("listening on http://{}", incoming.local_addr()?);
    std::io::stdout().flush()?;
    tonic::transport::Server::builder()
        .add_service(Bare)
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// The bare server in a process of its own, killed when dropped.
pub(super) struct BareProcess {
    child: std::process::Child,
    /// Where it serves.
    pub url: String,
}

impl BareProcess {
    /// Starts `ibsim bare-echo` (this program) on a free port and waits until it listens.
    pub(super) async fn start() -> anyhow::Result<BareProcess> {
        use anyhow::Context as _;
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["bare-echo", "--listen", "127.0.0.1:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start `ibsim bare-echo`")?;
        let stdout = child.stdout.take().context("the bare server's stdout")?;
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufReader::new(stdout)
                .read_line(&mut line)
                .map(|_| line)
        })
        .await??;
        // Owned from here, so that it is killed on the way out if what it said is not an address.
        let mut process = BareProcess {
            child,
            url: String::new(),
        };
        process.url = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("`ibsim bare-echo` said {line:?}, not where it listens"))?
            .to_owned();
        Ok(process)
    }
}

impl Drop for BareProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
