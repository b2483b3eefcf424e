//! What both nodes do the same way: what a node is made of ([`Node`]: its database, clock, fault
//! rules and metrics, with the mechanisms built on them written once), its command line (the
//! node's `Config` and the telemetry flags), and serving on the real clock until SIGINT or
//! SIGTERM. Each node keeps what is its own: its configuration, its queries and how its
//! `Application` is built.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;

use anyhow::Context;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use crate::clock::Clock;
use crate::fault::Faults;
use crate::files::FileStore;
use crate::grpc::transport::TransportArgs;
use crate::grpc::{BoundServer, NodeRouter, PeerLink};
use crate::metrics::Metrics;
use crate::records::{Table, View};
use crate::security::{Institution, Security, SecurityArgs};
use crate::store::{AuditLine, NodeDb};
use crate::telemetry::{self, TelemetryArgs};
use tokio::net::TcpListener;

/// What every node is made of alike. A node names its parts; what is built on them is one
/// mechanism for both, written here and in `shared::grpc`: the audit line and count of every
/// request (`grpc::handle`), the guard's nonces (`grpc::guard::GuardNode`), the business clock
/// kept across restarts, and the simulator's reads of audit lines and records
/// (`grpc::sim::SimNode` adds what each node does its own way).
pub trait Node: Clone + Send + Sync + 'static {
    /// The institution this node is.
    const INSTITUTION: Institution;
    /// The ErrorInfo domain of its refusals.
    const DOMAIN: &'static str;
    /// What ListRecords shows of it: the newest of each kind, secrets left out.
    const VIEWS: &'static [View];

    /// Its database: pools, audit log, kept clock, nonces.
    fn db(&self) -> &NodeDb;
    /// Its business clock.
    fn clock(&self) -> &Clock;
    /// Its fault rules (and live feed).
    fn faults(&self) -> &Faults;
    /// Its metrics (served by `--metrics-listen`).
    fn metrics(&self) -> &Metrics;

    /// Records one line of the audit log: the operation, its subject (never a full card number
    /// or a secret), the outcome (`OK` or the reason code) and a detail. A failure to write it is
    /// logged, never fatal.
    fn audit(
        &self,
        operation: &str,
        subject: &str,
        outcome: &str,
        detail: &str,
    ) -> impl Future<Output = ()> + Send {
        async move {
            let at_ms = self.clock().now_ms();
            if let Err(e) = self
                .db()
                .audit(at_ms, operation, subject, outcome, detail)
                .await
            {
                tracing::error!(error = ?e, operation, "cannot write audit line");
            }
        }
    }

    /// Keeps the business clock where it is now, so that a restart finds it there.
    fn keep_clock(&self) -> impl Future<Output = anyhow::Result<()>> + Send {
        let clock = self.clock();
        self.db().keep_clock(clock.state(), clock.now_ms())
    }

    /// Puts the clock where this node kept it (a restart); real time when nothing usable was
    /// kept.
    fn restore_kept_clock(&self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async move {
            if let Some(state) = self.db().kept_clock().await?
                && let Err(e) = self.clock().restore(state)
            {
                tracing::warn!(error = %e, "the kept business clock is not usable: real time");
            }
            Ok(())
        }
    }

    /// The audit lines about `subject`, oldest first.
    fn audit_lines(
        &self,
        subject: &str,
        limit: u32,
    ) -> impl Future<Output = anyhow::Result<Vec<AuditLine>>> + Send {
        self.db().audit_lines(subject, limit)
    }

    /// The newest `limit` records of every kind in [`Node::VIEWS`], read at one moment.
    fn records(&self, limit: u32) -> impl Future<Output = anyhow::Result<Vec<Table>>> + Send {
        self.db().records(Self::VIEWS, limit)
    }
}

/// A node binary's command line.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli<C: Args> {
    #[command(flatten)]
    config: C,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

/// A node binary's flags: `name`'s configuration `C` and the telemetry flags, with their
/// environment variables and defaults.
pub fn command<C: Args>(name: &'static str, about: &'static str) -> clap::Command {
    <Cli<C> as CommandFactory>::command()
        .name(name)
        .about(about)
}

/// The node binary `name`: reads flags and environment, sets up telemetry as `service`, builds
/// the application with `build` on the real clock and serves until SIGINT or SIGTERM.
pub async fn serve_from_args<C, N, F>(
    command: clap::Command,
    service: &'static str,
    build: impl FnOnce(C, Clock) -> F,
) -> anyhow::Result<()>
where
    C: Args + FromArgMatches,
    N: Node,
    F: Future<Output = anyhow::Result<Serving<N>>>,
{
    let cli = Cli::<C>::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    cli.telemetry.init(service)?;
    let app = build(cli.config, Clock::real()).await?;
    let served = app.run_until_stopped(crate::grpc::shutdown_signal()).await;
    telemetry::shutdown();
    served
}

/// What every node is wired from alike, before the parts that are its own: its fault rules, its
/// security, its line to the other institution and its file store.
pub struct Wiring {
    /// The fault rules (and live feed).
    pub faults: Faults,
    /// TLS and signing, as the flags turn them on.
    pub security: Security,
    /// What a client of the peer needs.
    pub link: PeerLink,
    /// The file store.
    pub files: FileStore,
}

impl Wiring {
    /// Node `N`'s wiring: security loaded from `security`, requests stamped by `clock`, files
    /// kept in `files_dir`.
    pub fn of<N: Node>(
        security: &SecurityArgs,
        clock: &Clock,
        files_dir: &Path,
    ) -> anyhow::Result<Wiring> {
        let security = Security::load(security, N::INSTITUTION)?;
        let files = FileStore::open(files_dir.to_path_buf())
            .with_context(|| format!("cannot open the file store {}", files_dir.display()))?;
        Ok(Wiring {
            faults: Faults::new(N::INSTITUTION),
            link: PeerLink {
                peer: N::INSTITUTION.peer(),
                security: security.clone(),
                clock: clock.clone(),
                domain: N::DOMAIN,
            },
            security,
            files,
        })
    }
}

/// A task a node runs beside its server for as long as it serves (a scheduler loop).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A node bound and wired, ready to serve: its gRPC server, its metrics listener if on, and the
/// tasks it runs beside them. Each node's `Application` is one of these.
pub struct Serving<N: Node> {
    server: BoundServer,
    node: N,
    metrics: Option<TcpListener>,
    tasks: Vec<Task>,
}

impl<N: Node> Serving<N> {
    /// `node` served on `listener` by `router` within `transport`'s limits, its metrics on
    /// `metrics_listen` if given, running `tasks` beside them.
    pub async fn new(
        node: N,
        listener: TcpListener,
        router: NodeRouter,
        transport: &TransportArgs,
        metrics_listen: Option<SocketAddr>,
        tasks: Vec<Task>,
    ) -> anyhow::Result<Serving<N>> {
        let metrics = match metrics_listen {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        Ok(Serving {
            server: BoundServer::new(listener, router, transport, node.metrics().clone())?,
            node,
            metrics,
            tasks,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Where the metrics endpoint is bound, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight, stops the tasks
    /// and closes the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let mut running: Vec<_> = self.tasks.into_iter().map(tokio::spawn).collect();
        if let Some(l) = self.metrics {
            running.push(tokio::spawn(crate::metrics::serve(
                l,
                self.node.metrics().clone(),
            )));
        }
        let result = self.server.serve(N::INSTITUTION.name(), shutdown).await;
        for task in running {
            task.abort();
        }
        self.node.db().close().await;
        result
    }
}
