//! `ibsim up`: both nodes in this process on the embedded SQLite default, the demo data, the
//! console, until Ctrl-C. Its flags are its own plus every flag of each node under `--bank-…` and
//! `--platform-…`: the nodes' own flags (with their variables, defaults and ranges), so that a
//! flag added to a node is offered here with no edit.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgMatches, Args, Command, FromArgMatches};
use pair::{PairConfig, RunningPair};
use shared::flags::{self, Prefix};

/// What `ibsim up` decides for both nodes itself, so not offered per node: where each keeps its
/// data (under `--data-dir`), where each finds the other (where the other serves), the
/// security settings (`--secure`, `--tls-dir`, `--sign-dir`) and the transport limits
/// (`--idle-timeout-secs`, `--connections-max`), each for both.
const UP_DECIDES: &[&str] = &[
    "data_dir",
    "platform_url",
    "bank_url",
    "tls_dir",
    "sign_dir",
    "idle_timeout_secs",
    "connections_max",
];

/// The bank's flags under `ibsim up`; it serves metrics by default.
const BANK: Prefix<'static> = Prefix {
    name: "bank",
    heading: "Bank node",
    skip: UP_DECIDES,
    defaults: &[("metrics_listen", "127.0.0.1:40061")],
};

/// The platform's flags under `ibsim up`; it serves metrics by default.
const PLATFORM: Prefix<'static> = Prefix {
    name: "platform",
    heading: "Platform node",
    skip: UP_DECIDES,
    defaults: &[("metrics_listen", "127.0.0.1:40062")],
};

/// `ibsim up`'s flags: its own, and each node's configuration.
#[derive(Debug)]
pub struct UpArgs {
    own: Own,
    bank: bank_node::Config,
    platform: platform_node::Config,
}

/// `ibsim up`'s flags, as the README's table lists them.
pub fn command() -> Command {
    UpArgs::augment_args(Command::new("ibsim-up"))
}

impl Args for UpArgs {
    fn augment_args(cmd: Command) -> Command {
        let cmd = Own::augment_args(cmd);
        let cmd = flags::prefixed::<bank_node::Config>(cmd, BANK);
        flags::prefixed::<platform_node::Config>(cmd, PLATFORM)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for UpArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<UpArgs, clap::Error> {
        let node = |e: anyhow::Error| clap::Error::raw(clap::error::ErrorKind::ValueValidation, e);
        Ok(UpArgs {
            own: Own::from_arg_matches(m)?,
            bank: flags::from_prefixed(m, BANK.name).map_err(node)?,
            platform: flags::from_prefixed(m, PLATFORM.name).map_err(node)?,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = UpArgs::from_arg_matches(m)?;
        Ok(())
    }
}

/// `ibsim up`'s own flags.
#[derive(clap::Args, Debug)]
struct Own {
    /// Directory for both nodes' data (bank/ and platform/ below it).
    #[arg(long, env = "IBSIM_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Do not seed the demo cards and accounts.
    #[arg(long)]
    no_demo: bool,
    #[command(flatten)]
    telemetry: shared::telemetry::TelemetryArgs,
    /// Run the link secured: mutual TLS and signed interbank messages, with the credentials in
    /// <data-dir>/security (made there on the first run, as `ibsim certs` makes them).
    #[arg(long)]
    secure: bool,
    /// With --secure, when it makes the credentials: the signature algorithm, ed25519 or sm2.
    #[arg(long, value_enum, default_value = "ed25519")]
    sign_algorithm: shared::security::keys::Algorithm,
    #[command(flatten)]
    security: shared::security::SecurityArgs,
    #[command(flatten)]
    transport: shared::grpc::transport::TransportArgs,
    /// Where the live console is served (docs/console.md).
    #[arg(long, env = "IBSIM_CONSOLE_LISTEN", default_value = crate::console::CONSOLE_LISTEN_DEFAULT)]
    console_listen: SocketAddr,
    /// Do not serve the console.
    #[arg(long)]
    no_console: bool,
}

/// `ibsim up`: both nodes, the console and the demo data, until Ctrl-C.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    args.own.telemetry.init("ibsim-up")?;
    let security = security(&args.own)?;
    let cfg = pair_config(args, security)?;
    let pair = RunningPair::start(&cfg.pair).await?;
    let console = match cfg.console {
        None => None,
        Some(listen) => {
            let listener = crate::console::bind(listen).await?;
            let addr = listener.local_addr()?;
            let c = crate::console::Console::new(
                crate::console::channel(&pair.bank_url()).await?,
                crate::console::channel(&pair.platform_url()).await?,
                &pair.bank_url(),
                &pair.platform_url(),
            )?;
            Some((addr, tokio::spawn(c.serve(listener))))
        }
    };
    if cfg.demo {
        let bank = crate::connect(&pair.bank_url()).await?;
        let platform = crate::connect(&pair.platform_url()).await?;
        let demo = crate::fixtures::Fixtures::parse(crate::fixtures::DEMO)?;
        crate::fixtures::load(bank, platform, &demo).await?;
    }
    print_banner(&pair, &cfg, console.as_ref().map(|c| c.0));
    shared::grpc::shutdown_signal().await;
    if let Some((_, task)) = console {
        task.abort();
    }
    let stopped = pair.stop().await;
    shared::telemetry::shutdown();
    stopped
}

/// What `ibsim up` runs.
struct Up {
    /// Both nodes, their database URLs given (the defaults made explicit, to print them).
    pair: PairConfig,
    /// Where the console listens, if it is served.
    console: Option<SocketAddr>,
    /// Whether the demo data is loaded.
    demo: bool,
}

/// The security settings in force: with `--secure`, the credentials in `<data-dir>/security`
/// (made on the first run); the CA trusted for the console's and the demo loader's channels.
fn security(own: &Own) -> anyhow::Result<shared::security::SecurityArgs> {
    let mut security = own.security.clone();
    if own.secure {
        let dir = own.data_dir.join("security");
        if !dir.join(shared::security::certs::CA_CERT).exists() {
            shared::security::certs::write_set(&dir, false, own.sign_algorithm)?;
            println!("made throwaway credentials in {}", dir.display());
        }
        security.tls_dir.get_or_insert(dir.clone());
        security.sign_dir.get_or_insert(dir);
    }
    if let Some(dir) = &security.tls_dir {
        if !dir.join("tester.pem").exists() {
            eprintln!(
                "warning: {} has no tester.pem (credentials made before roles): the console and the CLI will be refused the teller's, staff's and operator's services; make a new set with `ibsim certs --out {} --force`",
                dir.display(),
                dir.display()
            );
        }
        crate::use_credentials(shared::grpc::guard::ClientCredentials::tester_in(dir)?);
    }
    Ok(security)
}

/// Both nodes' configurations under `--data-dir`, with `security`.
fn pair_config(args: UpArgs, security: shared::security::SecurityArgs) -> anyhow::Result<Up> {
    let mut pair = PairConfig {
        bank: bank_node::Config {
            data_dir: args.own.data_dir.join("bank"),
            transport: args.own.transport.clone(),
            ..args.bank
        },
        platform: platform_node::Config {
            data_dir: args.own.data_dir.join("platform"),
            transport: args.own.transport,
            ..args.platform
        },
        bank_elsewhere: false,
        frozen_at: None,
        killable: false,
    }
    .secured(security);
    pair.bank.database_url = Some(pair.bank.database_url()?);
    pair.platform.database_url = Some(pair.platform.database_url()?);
    Ok(Up {
        pair,
        console: (!args.own.no_console).then_some(args.own.console_listen),
        demo: !args.own.no_demo,
    })
}

/// Where everything is, and what to try.
fn print_banner(pair: &RunningPair, cfg: &Up, console: Option<SocketAddr>) {
    println!("interbank-sim is up");
    for (label, url, node) in [
        (
            "bank node    ",
            pair.bank_url(),
            shared::security::Institution::Bank,
        ),
        (
            "platform node",
            pair.platform_url(),
            shared::security::Institution::Platform,
        ),
    ] {
        println!("  {label}  {url}   ({})", services_of(node));
    }
    if let Some(addr) = console {
        println!("  console        http://{addr}/   (the conversation, live; drive every flow)");
    }
    if let (Some(b), Some(p)) = (pair.bank_metrics, pair.platform_metrics) {
        println!("  metrics        http://{b}/metrics | http://{p}/metrics");
    }
    let db = |url: &Option<String>| shared::store::redact(url.as_deref().unwrap_or_default());
    println!(
        "  databases      {} | {}",
        db(&cfg.pair.bank.database_url),
        db(&cfg.pair.platform.database_url)
    );
    if cfg.demo {
        println!(
            "  demo data      fixtures/demo.json (docs/test-data.md); card password 123456, login password demo-login-1, pay password 111111"
        );
    }
    print_try(pair, &cfg.pair.bank.security);
}

/// The commands to try next, and how to reach secured nodes.
fn print_try(pair: &RunningPair, security: &shared::security::SecurityArgs) {
    println!();
    println!("Try, in another terminal:");
    println!(
        "  ibsim branch sign-up --card 6221880000000000019 --password 123456 --account zhangsan@example.com \\"
    );
    println!("      --name 张三 --id-number 110105199003071239 --mobile 13800138000 --limit 2000");
    println!(
        "  ibsim platform activate --email zhangsan@example.com --login-password demo-login-1 --card 6221880000000000019"
    );
    println!(
        "  ibsim pay start --email sunqi@example.com --login-password demo-login-1 --amount 0.91 --pay-password 111111   # SYSTEM_BUSY"
    );
    println!("  ibsim sms --mobile 13900139006");
    println!("  ibsim clock cutover");
    match &security.tls_dir {
        Some(dir) => {
            println!(
                "  grpcurl -cacert {}/ca.pem {} list",
                dir.display(),
                pair.bank_addr
            );
            println!(
                "TLS is on: give ibsim the CA, e.g. export IBSIM_CA={0}/ca.pem IBSIM_BANK_URL={1} IBSIM_PLATFORM_URL={2}",
                dir.display(),
                pair.bank_url(),
                pair.platform_url()
            );
        }
        None => println!("  grpcurl -plaintext {} list", pair.bank_addr),
    }
    if security.sign_dir.is_some() {
        println!("Interbank messages are signed (docs/security.md).");
    }
    println!("Ctrl-C stops both nodes.");
}

/// The services `node` serves, short names, as `ibsim up` lists them.
fn services_of(node: shared::security::Institution) -> String {
    shared::grpc::services::served_by(node)
        .iter()
        .map(|n| n.rsplit('.').next().unwrap_or(n))
        .collect::<Vec<_>>()
        .join(", ")
}
