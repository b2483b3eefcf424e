//! The bank node's configuration: flags and environment variables, every one with a default so
//! that `bank-node` starts with no arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the bank listens, where the platform is, and where the bank keeps its data.
#[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
pub struct Config {
    /// Address the bank's gRPC server listens on (port 0 picks a free port).
    #[arg(
        long = "listen",
        env = "IBSIM_BANK_LISTEN",
        default_value = "127.0.0.1:40051"
    )]
    pub listen: SocketAddr,
    /// URL of the platform node's gRPC server.
    #[arg(
        long = "platform-url",
        env = "IBSIM_BANK_PLATFORM_URL",
        default_value = "http://127.0.0.1:40052"
    )]
    pub platform_url: String,
    /// Database URL: `sqlite://…`, `sqlite::memory:` or `postgres://…`. Default: a SQLite file
    /// `bank.db` in the data directory.
    #[arg(long = "database-url", env = "IBSIM_BANK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for the bank's files: the default SQLite database and the file store (`files/`).
    #[arg(
        long = "data-dir",
        env = "IBSIM_BANK_DATA_DIR",
        default_value = "data/bank"
    )]
    pub data_dir: PathBuf,
    /// The node secret keying the digests the bank keeps of one-time codes (made, mode 0600, when
    /// missing; docs/security.md says how it rotates). Default: `otp.key` in the data directory.
    /// Every bank process over one database reads the same file.
    #[arg(long = "otp-key-file", env = "IBSIM_BANK_OTP_KEY_FILE")]
    pub otp_key_file: Option<PathBuf>,
    /// How long a call to the platform may take, in milliseconds, before its outcome is unknown.
    #[arg(long = "peer-timeout-ms", env = "IBSIM_BANK_PEER_TIMEOUT_MS", default_value_t = shared::grpc::PEER_TIMEOUT_MS_DEFAULT)]
    pub peer_timeout_ms: u64,
    /// The refund batch job.
    #[command(flatten)]
    #[serde(flatten)]
    pub refund_job: RefundJobConfig,
    /// Serve the node's metrics (Prometheus text format, `GET /metrics`) on this address; none:
    /// no metrics endpoint.
    #[arg(long = "metrics-listen", env = "IBSIM_BANK_METRICS_LISTEN")]
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

/// When and how the refund batch job runs.
#[derive(clap::Args, serde::Serialize, Debug, Clone, PartialEq)]
pub struct RefundJobConfig {
    /// Run the refund batch job every this many seconds of business time (0: only when asked
    /// through BatchJobService.RunRefundJob).
    #[arg(
        long = "refund-job-interval-secs",
        env = "IBSIM_BANK_REFUND_JOB_INTERVAL_SECS",
        default_value_t = 300
    )]
    pub interval_secs: u64,
    /// Lines the job processes per transaction (1 to 2000).
    #[arg(
        long = "refund-chunk-lines",
        env = "IBSIM_BANK_REFUND_CHUNK_LINES",
        default_value_t = 500,
        value_parser = clap::value_parser!(u16).range(1..=2000)
    )]
    pub chunk_lines: u16,
    /// A pause after each chunk, milliseconds of real time, to watch a batch in PROCESSING.
    #[arg(
        long = "refund-job-pause-ms",
        env = "IBSIM_BANK_REFUND_JOB_PAUSE_MS",
        default_value_t = 0
    )]
    pub pause_ms: u64,
}

impl Default for RefundJobConfig {
    /// Every flag's default (written once, in the flag).
    fn default() -> RefundJobConfig {
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
            None => shared::store::sqlite_url_in(&self.data_dir, "bank.db"),
        }
    }

    /// The node secret's file in force.
    pub fn otp_key_file(&self) -> PathBuf {
        self.otp_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("otp.key"))
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
        assert_eq!(d.listen.to_string(), "127.0.0.1:40051");
        assert_eq!(d.platform_url, "http://127.0.0.1:40052");
        assert_eq!(d.data_dir, PathBuf::from("data/bank"));
        assert_eq!(d.database_url, None);
        assert_eq!(d.otp_key_file(), PathBuf::from("data/bank/otp.key"));
        assert_eq!(
            (d.refund_job.interval_secs, d.refund_job.chunk_lines),
            (300, 500)
        );
        assert_eq!(d.security, shared::security::SecurityArgs::default());
    }

    #[test]
    fn a_process_given_to_args_runs_with_the_same_configuration() {
        let changed = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            platform_url: "https://10.1.2.3:7000".into(),
            database_url: Some("postgres://u@h/bank?sslrootcert=/a%20b.pem".into()),
            data_dir: "/tmp/some where/bank".into(),
            otp_key_file: Some("/run/secrets/bank otp.key".into()),
            peer_timeout_ms: 1,
            refund_job: RefundJobConfig {
                interval_secs: 0,
                chunk_lines: 2000,
                pause_ms: 15,
            },
            metrics_listen: Some("127.0.0.1:9".parse().unwrap()),
            security: shared::security::SecurityArgs {
                tls_dir: Some("/x".into()),
                sign_dir: Some("/y".into()),
            },
            transport: shared::grpc::transport::TransportArgs {
                idle_timeout_secs: 3600,
                connections_max: 1,
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
