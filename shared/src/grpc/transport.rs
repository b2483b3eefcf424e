//! The edges of a node's transport (docs/security.md): how many connections it holds at once,
//! and how long it keeps one whose client sends nothing.
//!
//! A connection is idle when its client has sent no byte for [`TransportArgs::idle_timeout_secs`].
//! The server pings every client a third of that apart (HTTP/2 keep-alive) and a live client
//! answers, so a connection in use, or merely kept open by a client that is there, is never idle;
//! one that never spoke (a bare TCP connection, an HTTP/2 preface and nothing more) or whose
//! client went silent is closed. One connection over [`TransportArgs::connections_max`] is closed
//! as soon as it is accepted, and counted.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::metrics::Metrics;

/// A node's transport limits, shared by both node binaries; `ibsim up` sets them once for both.
#[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
pub struct TransportArgs {
    /// Close a connection whose client sent nothing for this many seconds (1 to 3600). The node
    /// pings its clients a third of that apart and a live client answers, so only a silent one
    /// is closed.
    #[arg(
        long = "idle-timeout-secs",
        env = "IBSIM_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub idle_timeout_secs: u64,
    /// Connections the node holds at once (1 to 65535); one more is closed as soon as it is
    /// accepted, and counted (`ibsim_connections_refused_total`).
    #[arg(
        long = "connections-max",
        env = "IBSIM_CONNECTIONS_MAX",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..=65535)
    )]
    pub connections_max: u32,
}

impl Default for TransportArgs {
    /// Every flag's default (written once, in the flag).
    fn default() -> TransportArgs {
        crate::flags::defaults()
    }
}

impl TransportArgs {
    /// How long a client may send nothing.
    pub fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// The HTTP/2 keep-alive ping interval, and how long the server waits for the answer: a
    /// third of the idle bound each, so that a live client always speaks inside it.
    pub fn keepalive(&self) -> Duration {
        (self.idle() / 3).max(Duration::from_millis(300))
    }
}

/// The connections a node's listener accepts, each [`Bounded`]; one over the limit is closed at
/// once and counted in the node's metrics.
pub struct Incoming {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
    metrics: Metrics,
    refused: u64,
}

impl Incoming {
    /// The connections `listener` accepts, bounded as `limits` says; refusals counted in
    /// `metrics`.
    pub fn new(listener: TcpListener, limits: &TransportArgs, metrics: Metrics) -> Incoming {
        Incoming {
            listener,
            slots: Arc::new(Semaphore::new(limits.connections_max as usize)),
            idle: limits.idle(),
            metrics,
            refused: 0,
        }
    }

    /// `stream` with a slot, or `None` (closing it) when every slot is taken.
    fn admit(&mut self, stream: TcpStream) -> Option<Bounded> {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.metrics.inc("ibsim_connections_refused_total", &[]);
            self.refused += 1;
            if self.refused.is_power_of_two() {
                tracing::warn!(
                    refused = self.refused,
                    "a connection over the node's limit was closed (--connections-max)"
                );
            }
            return None;
        };
        self.metrics.inc("ibsim_connections_accepted_total", &[]);
        // Each answer leaves at once: with Nagle's algorithm a small write waits for the ACK of
        // the one before, which the client delays (40 ms on Linux). tonic does this only for the
        // listeners it binds itself.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set on a connection");
        }
        Some(Bounded::new(stream, self.idle, slot))
    }
}

impl tokio_stream::Stream for Incoming {
    type Item = io::Result<Bounded>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.listener.poll_accept(cx) {
                Poll::Ready(Ok((stream, _))) => {
                    if let Some(b) = self.admit(stream) {
                        return Poll::Ready(Some(Ok(b)));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// A connection that ends when its client has sent nothing for the idle bound, holding one of
/// the node's connection slots until it ends.
pub struct Bounded {
    stream: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl Bounded {
    fn new(stream: TcpStream, idle: Duration, slot: OwnedSemaphorePermit) -> Bounded {
        Bounded {
            stream,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            _slot: slot,
        }
    }
}

impl Connected for Bounded {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Bounded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing for the idle bound",
                ))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::{Stream as _, StreamExt};

    use super::*;

    fn limits(idle_timeout_secs: u64, connections_max: u32) -> TransportArgs {
        TransportArgs {
            idle_timeout_secs,
            connections_max,
        }
    }

    /// What `incoming` yields without waiting (a connection already in the accept queue is
    /// accepted, admitted or closed, in this one poll).
    fn poll_once(incoming: &mut Incoming) -> Poll<Option<io::Result<Bounded>>> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        Pin::new(incoming).poll_next(&mut cx)
    }

    async fn listener() -> (TcpListener, std::net::SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        (l, addr)
    }

    #[tokio::test]
    async fn one_connection_over_the_limit_is_closed_and_a_freed_slot_is_taken_again() {
        let (l, addr) = listener().await;
        let metrics = Metrics::new("bank");
        let mut incoming = Incoming::new(l, &limits(60, 2), metrics.clone());
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let first = incoming.next().await.unwrap().unwrap();
        let _second = incoming.next().await.unwrap().unwrap();

        // Both slots taken: the third is accepted and closed, nothing is yielded.
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        assert!(poll_once(&mut incoming).is_pending());
        // A slot freed is taken by the next.
        drop(first);
        let c4 = TcpStream::connect(addr).await.unwrap();
        let fourth = incoming.next().await.unwrap().unwrap();
        assert_eq!(
            fourth.connect_info().remote_addr(),
            Some(c4.local_addr().unwrap())
        );
        let mut buf = [0u8; 1];
        assert_eq!(c3.read(&mut buf).await.unwrap_or(0), 0, "closed at once");
        assert_eq!(metrics.counter("ibsim_connections_refused_total", &[]), 1);
    }

    #[tokio::test]
    async fn an_accepted_connection_sends_each_answer_at_once() {
        // With Nagle's algorithm on, a small answer written while an earlier one is unacknowledged
        // waits for the client's delayed ACK (40 ms on Linux): that was the 44 ms p99 of every
        // call. tonic turns it off only on listeners it binds itself, and a node brings its own.
        let (l, addr) = listener().await;
        let mut incoming = Incoming::new(l, &limits(60, 8), Metrics::new("bank"));
        let _client = TcpStream::connect(addr).await.unwrap();
        let server = incoming.next().await.unwrap().unwrap();
        assert!(server.stream.nodelay().unwrap(), "Nagle's algorithm is on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_whose_client_sends_nothing_ends_after_the_idle_bound() {
        let (l, addr) = listener().await;
        let mut incoming = Incoming::new(l, &limits(60, 8), Metrics::new("bank"));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut server = incoming.next().await.unwrap().unwrap();

        // Bytes within the bound keep it: three sends 40 s apart, each read.
        let started = Instant::now();
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            tokio::time::advance(Duration::from_secs(40)).await;
            client.write_all(b"ping").await.unwrap();
            assert_eq!(server.read(&mut buf).await.unwrap(), 4);
        }
        // Then nothing: the read fails once 60 s have passed since the last byte.
        let last = Instant::now();
        let e = server.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(Instant::now() - last >= Duration::from_secs(60));
        assert!(Instant::now() - started >= Duration::from_secs(180));
    }
}
