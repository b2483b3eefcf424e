//! The platform node's configuration: flags and environment variables, every one with a default
//! so that `platform-node` starts with no arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the platform listens, where the bank is, and where the platform keeps its data.
#[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Config {
    /// Address the platform's gRPC server listens on (port 0 picks a free port).
    #[arg(
        long = "listen",
        env = "IBSIM_PLATFORM_LISTEN",
        default_value = "127.0.0.1:40052"
    )]
    pub listen: SocketAddr,
    /// URL of the bank node's gRPC server.
    #[arg(
        long = "bank-url",
        env = "IBSIM_PLATFORM_BANK_URL",
        default_value = "http://127.0.0.1:40051"
    )]
    pub bank_url: String,
    /// Database URL: `sqlite://…`, `sqlite::memory:` or `postgres://…`. Default: a SQLite file
    /// `platform.db` in the data directory.
    #[arg(long = "database-url", env = "IBSIM_PLATFORM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for the platform's files (the default SQLite database, later downloaded files).
    #[arg(
        long = "data-dir",
        env = "IBSIM_PLATFORM_DATA_DIR",
        default_value = "data/platform"
    )]
    pub data_dir: PathBuf,
    /// How long a call to the bank may take, in milliseconds, before its outcome is unknown.
    #[arg(long = "peer-timeout-ms", env = "IBSIM_PLATFORM_PEER_TIMEOUT_MS", default_value_t = shared::grpc::PEER_TIMEOUT_MS_DEFAULT)]
    pub peer_timeout_ms: u64,
    /// Reconciliation with the bank.
    #[command(flatten)]
    #[serde(flatten)]
    pub recon: ReconConfig,
    /// Serve the node's metrics (Prometheus text format, `GET /metrics`) on this address; none:
    /// no metrics endpoint.
    #[arg(long = "metrics-listen", env = "IBSIM_PLATFORM_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Mutual TLS and signed interbank messages (default: neither).
    #[command(flatten)]
    #[serde(flatten)]
    pub security: shared::security::SecurityArgs,
    /// How long a silent connection is kept, and how many connections at once.
    #[command(flatten)]
    #[serde(flatten)]
    pub transport: shared::grpc::transport::TransportArgs,
}

/// Real-time reconciliation's schedule and grace window.
#[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
pub struct ReconConfig {
    /// Run real-time reconciliation every this many seconds of business time (0: only when
    /// asked, `ibsim recon realtime`).
    #[arg(
        long = "recon-interval-secs",
        env = "IBSIM_PLATFORM_RECON_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub interval_secs: u64,
    /// How long an order may stay pending (created, waiting for its code, or unknown) before
    /// the bank's word settles it, in seconds of business time; at least 360, longer than a
    /// one-time code lives.
    #[arg(
        long = "recon-grace-secs",
        env = "IBSIM_PLATFORM_RECON_GRACE_SECS",
        default_value_t = 900,
        value_parser = clap::value_parser!(u64).range(crate::domain::GRACE_SECS_MIN..=86_400)
    )]
    pub grace_secs: u64,
    /// The most differences (records or orders that differ) a T+1 order file's comparison holds
    /// in memory while the file still streams and has not checked whole; beyond, it compares the
    /// file again once it has (0: always that way). A bound on memory: the findings are the same.
    #[arg(
        long = "recon-held-max",
        env = "IBSIM_PLATFORM_RECON_HELD_MAX",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(0..=100_000)
    )]
    pub held_max: u32,
}

impl Default for ReconConfig {
    /// Every flag's default (written once, in the flag).
    fn default() -> ReconConfig {
        shared::flags::defaults()
    }
}

impl Default for Config {
    /// Every flag's default (written once, in the flag): what the binary runs with when given
    /// no flags and no variables.
    fn default() -> Config {
        shared::flags::defaults()
    }
}

impl Config {
    /// The database URL in force.
    pub fn database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(u) => Ok(u.clone()),
            None => shared::store::sqlite_url_in(&self.data_dir, "platform.db"),
        }
    }

    /// The file store's directory.
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_what_the_binary_starts_with() {
        let d = Config::default();
        assert_eq!(d.listen.to_string(), "127.0.0.1:40052");
        assert_eq!(d.bank_url, "http://127.0.0.1:40051");
        assert_eq!(d.data_dir, PathBuf::from("data/platform"));
        assert_eq!(d.database_url, None);
        assert_eq!((d.recon.interval_secs, d.recon.grace_secs), (60, 900));
        assert_eq!(d.recon.held_max, 10_000);
        assert_eq!(d.security, shared::security::SecurityArgs::default());
    }

    #[test]
    fn a_process_given_to_args_runs_with_the_same_configuration() {
        let changed = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            bank_url: "https://10.1.2.3:7000".into(),
            database_url: Some("sqlite:///tmp/p.db?mode=rwc".into()),
            data_dir: "/tmp/some where/platform".into(),
            peer_timeout_ms: 99,
            recon: ReconConfig {
                interval_secs: 0,
                grace_secs: crate::domain::GRACE_SECS_MIN,
                held_max: 3,
            },
            metrics_listen: Some("127.0.0.1:9".parse().unwrap()),
            security: shared::security::SecurityArgs {
                tls_dir: None,
                sign_dir: Some("/y".into()),
            },
            transport: shared::grpc::transport::TransportArgs {
                idle_timeout_secs: 1,
                connections_max: 65535,
            },
        };
        for cfg in [Config::default(), changed] {
            let args = shared::flags::to_args(&cfg).unwrap();
            assert_eq!(
                shared::flags::parse::<Config>(&args).unwrap(),
                cfg,
                "{args:?}"
            );
        }
    }
}
