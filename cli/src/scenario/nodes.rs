//! The nodes a scenario runs against: a fresh pair of its own, or nodes already running.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use proto::sim::v1 as sim;
use proto::sim::v1::simulator_service_client::SimulatorServiceClient;
use shared::clock::Clock;
use shared::grpc::guard::Signed;
use shared::security::sign::Signing;
use shared::security::{Institution, SecurityArgs, TlsFiles};
use tonic::transport::Channel;

use super::invoke::Node;
use pair::{PairConfig, RunningPair};

/// The ErrorInfo domain of an answer the runner could not verify.
const RUNNER_DOMAIN: &str = "runner.interbank-sim";

/// Where scenarios run.
#[derive(Debug, Clone)]
pub enum Target {
    /// Each scenario on a fresh pair of its own, in this process: SQLite in memory, or new
    /// databases on the PostgreSQL server this URL names (dropped afterwards).
    Fresh {
        /// A PostgreSQL URL; `None`: SQLite in memory.
        database: Option<String>,
    },
    /// Nodes already running; one scenario at a time.
    Running {
        /// The bank's URL.
        bank: String,
        /// The platform's URL.
        platform: String,
        /// Wipe both nodes (SimulatorService.Reset) before each scenario.
        reset: bool,
    },
}

/// A channel the runner talks to a node on. On a secured run the runner plays, towards each
/// node, the other institution (its client certificate, its signing key), so that every step
/// works, those that play the peer included; otherwise calls pass through as they are.
pub type NodeChannel = Signed<Channel>;

/// Two nodes a scenario talks to.
pub struct Nodes {
    /// A channel to the bank.
    pub bank: NodeChannel,
    /// A channel to the platform.
    pub platform: NodeChannel,
    /// What the runner stamps its signed calls with: the nodes' business time, read from them
    /// before each signed step ([`Nodes::sync_clock`]).
    clock: Clock,
    secured: bool,
    own: Option<Own>,
}

struct Own {
    pair: RunningPair,
    _dir: tempfile::TempDir,
    pg: Option<(String, Vec<String>)>,
}

impl Nodes {
    /// Nodes for one scenario, their clocks frozen at `start`; `tag` names scratch databases;
    /// `seeded`: start from these databases (fresh pairs only); `credentials`: a secured run
    /// with the credentials in this directory (`ibsim certs`).
    pub async fn open(
        target: &Target,
        start: DateTime<Utc>,
        tag: &str,
        seeded: Option<&Seeded>,
        credentials: Option<&Path>,
    ) -> anyhow::Result<Nodes> {
        let clock = Clock::real();
        match target {
            Target::Fresh { database } => {
                fresh(database.as_deref(), start, tag, seeded, credentials, clock).await
            }
            Target::Running {
                bank,
                platform,
                reset,
            } => {
                let bank = connect_as(bank, credentials, Institution::Platform, &clock).await?;
                let platform = connect_as(platform, credentials, Institution::Bank, &clock).await?;
                for ch in [&platform, &bank] {
                    let mut sim = SimulatorServiceClient::new(ch.clone());
                    if *reset {
                        sim.reset(sim::ResetRequest {
                            confirm: "RESET".to_owned(),
                        })
                        .await
                        .context("Reset")?;
                    }
                    use sim::set_clock_request::Move;
                    use tonic_types::StatusExt;
                    // Frozen first, then moved: set and then frozen, the clock ran on between
                    // the two calls, and the first step read the start plus that time.
                    for m in [
                        Move::Freeze(true),
                        Move::SetTo(shared::grpc::timestamp(start)),
                    ] {
                        match sim
                            .set_clock(sim::SetClockRequest { r#move: Some(m) })
                            .await
                        {
                            Ok(_) => {}
                            // Not reset, the clock may be past the start already: it stays.
                            Err(s)
                                if !*reset
                                    && s.get_details_error_info()
                                        .is_some_and(|i| i.reason == "CLOCK_BACKWARDS") => {}
                            Err(s) => {
                                return Err(anyhow::Error::new(s)
                                    .context("SetClock to the scenario's start"));
                            }
                        }
                    }
                }
                Ok(Nodes {
                    bank,
                    platform,
                    clock,
                    secured: credentials.is_some(),
                    own: None,
                })
            }
        }
    }

    /// On a secured run, sets the runner's clock to `node`'s business time, so that the next
    /// signed call falls inside the node's window whatever the steps did to its clock.
    pub async fn sync_clock(&self, node: Node) -> Result<(), tonic::Status> {
        if !self.secured {
            return Ok(());
        }
        let ch = match node {
            Node::Bank => self.bank.clone(),
            Node::Platform => self.platform.clone(),
        };
        let now = SimulatorServiceClient::new(ch)
            .get_clock(sim::GetClockRequest {})
            .await?
            .into_inner()
            .clock
            .and_then(|c| c.now)
            .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
            .ok_or_else(|| tonic::Status::internal("GetClock answered no time"))?;
        if self.clock.set(now).is_err() {
            self.clock.reset();
            let _ = self.clock.set(now);
        }
        Ok(())
    }

    /// Stops nodes this scenario started and drops its databases.
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(own) = self.own {
            let stopped = own.pair.stop().await;
            if let Some((base, names)) = own.pg {
                shared::store::drop_databases(&base, &names).await;
            }
            stopped?;
        }
        Ok(())
    }
}

/// A channel to the node at `url`, playing institution `me` towards it when `credentials` are
/// given (mutual TLS with `me`'s certificate, `me`'s signing key, the node's answers checked).
async fn connect_as(
    url: &str,
    credentials: Option<&Path>,
    me: Institution,
    clock: &Clock,
) -> anyhow::Result<NodeChannel> {
    let Some(dir) = credentials else {
        return Ok(Signed::new(
            crate::connect(url).await?,
            None,
            clock.clone(),
            RUNNER_DOMAIN,
        ));
    };
    // The institution's name and every role: the runner plays the peer and the tester both.
    let mut tls = TlsFiles::load(dir, me)?;
    let stem = format!("tester-as-{}", me.name());
    let read = |ext: &str| {
        let path = dir.join(format!("{stem}.{ext}"));
        std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    tls.cert_pem = read("pem")?;
    tls.key_pem = read("key")?;
    let url = match url.strip_prefix("http://") {
        Some(rest) => format!("https://{rest}"),
        None => url.to_owned(),
    };
    let channel = Channel::from_shared(url.clone())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .tls_config(shared::grpc::guard::peer_tls(&tls, me.peer()))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {url} over TLS as the {}", me.name()))?;
    Ok(Signed::new(
        channel,
        Some(Arc::new(Signing::load(dir, me)?)),
        clock.clone(),
        RUNNER_DOMAIN,
    ))
}

async fn fresh(
    database: Option<&str>,
    start: DateTime<Utc>,
    tag: &str,
    seeded: Option<&Seeded>,
    credentials: Option<&Path>,
    clock: Clock,
) -> anyhow::Result<Nodes> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let (bank_db, platform_db, pg) = match (database, seeded) {
        (None, None) => (
            "sqlite::memory:".to_owned(),
            "sqlite::memory:".to_owned(),
            None,
        ),
        (None, Some(Seeded::Files { bank, platform, .. })) => (
            copy_db(bank, &dir.path().join("bank"), "bank.db")?,
            copy_db(platform, &dir.path().join("platform"), "platform.db")?,
            None,
        ),
        (None, Some(Seeded::Postgres { .. })) => {
            anyhow::bail!("PostgreSQL seed databases for an SQLite run")
        }
        (Some(base), seeded) => {
            let names: Vec<String> = ["bank", "platform"]
                .iter()
                .map(|n| format!("ibsim_scenario_{tag}_{n}"))
                .collect();
            let templates = match seeded {
                Some(Seeded::Postgres { names, .. }) => Some(names.as_slice()),
                _ => None,
            };
            let urls = shared::store::create_databases_from(base, &names, templates).await?;
            (
                urls[0].clone(),
                urls[1].clone(),
                Some((base.to_owned(), names)),
            )
        }
    };
    let cfg = pair_config(bank_db, platform_db, dir.path(), start).secured(SecurityArgs {
        tls_dir: credentials.map(PathBuf::from),
        sign_dir: credentials.map(PathBuf::from),
    });
    let pair = match RunningPair::start(&cfg).await {
        Ok(p) => p,
        Err(e) => {
            if let Some((base, names)) = &pg {
                shared::store::drop_databases(base, names).await;
            }
            return Err(e);
        }
    };
    let bank = connect_as(&pair.bank_url(), credentials, Institution::Platform, &clock).await?;
    let platform = connect_as(&pair.platform_url(), credentials, Institution::Bank, &clock).await?;
    Ok(Nodes {
        bank,
        platform,
        clock,
        secured: credentials.is_some(),
        own: Some(Own {
            pair,
            _dir: dir,
            pg,
        }),
    })
}

/// A pair on these databases, its files under `dir`, its clocks frozen at `start`, its jobs run
/// only when a step asks (BatchJobService.RunRefundJob, ReconOpsService.RunRealtimeRecon).
fn pair_config(
    bank_db: String,
    platform_db: String,
    dir: &std::path::Path,
    start: DateTime<Utc>,
) -> PairConfig {
    PairConfig {
        frozen_at: Some(start),
        ..PairConfig::local(bank_db, platform_db, dir)
    }
}

/// A copy of the SQLite database `from` as `dir/file`; its URL.
pub(crate) fn copy_db(
    from: &std::path::Path,
    dir: &std::path::Path,
    file: &str,
) -> anyhow::Result<String> {
    let url = shared::store::sqlite_url_in(dir, file)?;
    std::fs::copy(from, dir.join(file))
        .with_context(|| format!("cannot copy {}", from.display()))?;
    Ok(url)
}

/// The demo fixtures loaded once per run, at one start time, for every scenario that asks for
/// them at that time: SQLite files copied for each, or PostgreSQL template databases.
pub enum Seeded {
    /// SQLite files.
    Files {
        /// Where they are.
        _dir: tempfile::TempDir,
        /// The bank's.
        bank: std::path::PathBuf,
        /// The platform's.
        platform: std::path::PathBuf,
    },
    /// PostgreSQL template databases (bank's, platform's) on the server `base` names.
    Postgres {
        /// The server.
        base: String,
        /// The databases.
        names: Vec<String>,
    },
}

impl Seeded {
    /// Starts a pair at `start`, loads `fixtures`, stops it, and keeps its databases.
    pub async fn build(
        database: Option<&str>,
        start: DateTime<Utc>,
        fixtures: &crate::fixtures::Fixtures,
        tag: &str,
    ) -> anyhow::Result<Seeded> {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let (bank_db, platform_db, seeded) = match database {
            None => {
                let bank = shared::store::sqlite_url_in(&dir.path().join("seed"), "bank.db")?;
                let platform =
                    shared::store::sqlite_url_in(&dir.path().join("seed"), "platform.db")?;
                (bank, platform, None)
            }
            Some(base) => {
                let names: Vec<String> = ["bank", "platform"]
                    .iter()
                    .map(|n| format!("ibsim_scenario_{tag}_seed_{n}"))
                    .collect();
                let urls = shared::store::create_databases(base, &names).await?;
                let seeded = Seeded::Postgres {
                    base: base.to_owned(),
                    names,
                };
                (urls[0].clone(), urls[1].clone(), Some(seeded))
            }
        };
        let loaded = async {
            let cfg = pair_config(bank_db, platform_db, dir.path(), start);
            let pair = RunningPair::start(&cfg).await?;
            let bank = crate::connect(&pair.bank_url()).await?;
            let platform = crate::connect(&pair.platform_url()).await?;
            let loaded = crate::fixtures::load(bank, platform, fixtures).await;
            pair.stop().await?;
            loaded.map(|_| ())
        }
        .await;
        match (loaded, seeded) {
            (Err(e), Some(s)) => {
                s.remove().await;
                Err(e)
            }
            (Err(e), None) => Err(e),
            (Ok(()), Some(s)) => Ok(s),
            (Ok(()), None) => {
                let seed = dir.path().join("seed");
                Ok(Seeded::Files {
                    bank: seed.join("bank.db"),
                    platform: seed.join("platform.db"),
                    _dir: dir,
                })
            }
        }
    }

    /// Drops template databases (files go with their directory).
    pub async fn remove(self) {
        if let Seeded::Postgres { base, names } = self {
            shared::store::drop_databases(&base, &names).await;
        }
    }
}
