//! `ibsim`: start both interbank-sim nodes, and drive every flow from the command line.

mod commands;
mod control;
mod print;
mod recon;
mod refund;
mod scenario_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// interbank-sim: a postal bank and a payment platform, linked over gRPC.
///
/// Start both nodes with `ibsim up`, then drive them from another terminal with `ibsim branch …`
/// (the bank's counter) and `ibsim platform …` (the platform's website and operators).
/// A refusal prints its gRPC code, reason and the institution that refused, and exits with 2.
#[derive(Parser, Debug)]
#[command(name = "ibsim", version, about, long_about)]
struct Cli {
    /// The bank node's gRPC URL.
    #[arg(
        long,
        global = true,
        env = "IBSIM_BANK_URL",
        default_value = "http://127.0.0.1:40051"
    )]
    bank: String,
    /// The platform node's gRPC URL.
    #[arg(
        long,
        global = true,
        env = "IBSIM_PLATFORM_URL",
        default_value = "http://127.0.0.1:40052"
    )]
    platform: String,
    /// The CA certificate to trust for nodes served over TLS (`https` URLs), as `ibsim certs`
    /// writes it (ca.pem).
    #[arg(long, global = true, env = "IBSIM_CA")]
    ca: Option<PathBuf>,
    /// The client certificate to show nodes served over TLS (its key beside it, `.key`): a role
    /// identity `ibsim certs` writes (teller.pem, staff.pem, operator.pem). Default: tester.pem
    /// beside the CA, which carries every role.
    #[arg(long, global = true, env = "IBSIM_IDENTITY")]
    identity: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start both nodes (embedded SQLite by default), seed the demo data, and serve until Ctrl-C.
    Up(Box<ibsim_cli::up::UpArgs>),
    /// The bank's branch counter: cards and the card-link sign-up.
    #[command(subcommand)]
    Branch(commands::Branch),
    /// The platform: the customer's website and the operators' console.
    #[command(subcommand)]
    Platform(commands::Platform),
    /// Pay with the card-link on the platform website; balance and limit.
    #[command(subcommand)]
    Pay(control::Pay),
    /// Both nodes' requests about one order (or sign-up id, or batch), in order: the interbank
    /// conversation, with each request's outcome and trace id.
    Trace {
        /// The order number, sign-up id or batch number.
        subject: String,
    },
    /// The bank's SMS outbox (one-time codes appear only here).
    Sms {
        /// Only messages to this mobile.
        #[arg(long)]
        mobile: Option<String>,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Batch refunds: push a batch file, follow it, fetch its result; run the bank's batch job.
    #[command(subcommand)]
    Refund(refund::Refund),
    /// Reconciliation with the bank: real-time pull, T+1 files, error cases.
    #[command(subcommand)]
    Recon(recon::Recon),
    /// The business clock of both nodes: show, freeze, resume, set, advance, cutover.
    #[command(subcommand)]
    Clock(control::Clock),
    /// Fault injection on the calls between the nodes.
    #[command(subcommand)]
    Fault(control::Fault),
    /// Wipe both nodes' data, clear every fault rule, put the clocks back on real time.
    Reset {
        /// Confirm: every record goes.
        #[arg(long)]
        yes: bool,
    },
    /// Load cards, accounts and sign-ups from a JSON file (format: fixtures/demo.json).
    Fixtures {
        /// The file.
        file: PathBuf,
    },
    /// Scenario files (docs/scenarios.md): run them on fresh pairs of nodes or on running ones
    /// (when --bank/--platform or IBSIM_BANK_URL/IBSIM_PLATFORM_URL are given), or check them.
    #[command(subcommand)]
    Scenario(scenario_cmd::ScenarioCmd),
    /// Throw seeded random schedules at fresh pairs of nodes and check, with the bank as the
    /// truth, that no promise is broken (docs/reliability.md); exit 0 only with no violation.
    Explore(ExploreArgs),
    /// Measure the simulator against the machine's own limit (docs/performance.md): a table, and
    /// every figure as JSON with --json. Build with --release for figures that mean anything.
    Bench(BenchArgs),
    /// The bench's bare limit: a tonic server answering Echo and nothing else, with no layer
    /// (what `ibsim bench` starts as a process of its own; docs/performance.md).
    #[command(hide = true)]
    BareEcho {
        /// Where to listen.
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// Make throwaway credentials for a secured link (docs/security.md): a CA, both nodes' TLS
    /// certificates and both institutions' signing keys (Ed25519, or SM2 with --sign-algorithm).
    Certs {
        /// The directory to write them in (made if missing).
        #[arg(long, default_value = "data/security")]
        out: PathBuf,
        /// Replace files that are there already.
        #[arg(long)]
        force: bool,
        /// The institutions' signature algorithm: ed25519, or sm2 (SM2 over SM3, the Chinese
        /// national algorithms).
        #[arg(long, value_enum, default_value = "ed25519")]
        sign_algorithm: shared::security::keys::Algorithm,
    },
    /// Serve the live console (docs/console.md) for nodes running elsewhere (--bank, --platform,
    /// --ca): the conversation as it happens, the phone, the clocks, faults and every flow.
    Console {
        /// Where to serve it.
        #[arg(long, env = "IBSIM_CONSOLE_LISTEN", default_value = ibsim_cli::console::CONSOLE_LISTEN_DEFAULT)]
        listen: SocketAddr,
    },
    /// Ask a node's gRPC health service; exit 0 only when it is SERVING.
    Health {
        /// The node's URL.
        #[arg(long)]
        url: String,
    },
}

/// How `ibsim explore` runs.
#[derive(clap::Args, Debug)]
struct ExploreArgs {
    /// Schedules to run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    schedules: u64,
    /// The first schedule's seed (schedule n runs seed + n); default a new one, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Steps per schedule.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=1000))]
    steps: u16,
    /// A PostgreSQL server to make each schedule's two databases on (dropped afterwards);
    /// default: SQLite files in a temporary directory.
    #[arg(long, env = "IBSIM_EXPLORE_DATABASE")]
    database: Option<String>,
    /// Platform processes per pair: 2 runs a second platform on the same database (a scale-out;
    /// PostgreSQL only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    platforms: u8,
    /// Schedules at once (default: four a core; a schedule spends most of its time waiting on
    /// the nodes).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: Option<u16>,
    /// Every figure and every failure as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where a failing schedule's replay (a scenario file) is written.
    #[arg(long, default_value = "explore-repros")]
    repro_dir: PathBuf,
    /// Write a failing schedule as it ran, without shrinking it first.
    #[arg(long)]
    no_shrink: bool,
    /// Your own fixture file (fixtures/demo.json's format): its first two activated sign-ups
    /// of NORMAL cards and accounts are the schedules' customers.
    #[arg(long)]
    fixtures: Option<PathBuf>,
}

/// How `ibsim bench` runs.
#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Small sizes and 1-second parts, no goals checked (CI keeps the command working).
    #[arg(long)]
    quick: bool,
    /// Run the pair on this PostgreSQL server (two new databases, dropped after); default SQLite
    /// files in a temporary directory.
    #[arg(long)]
    database: Option<String>,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where bank-node and platform-node are, for the start-up part (default: beside ibsim).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Run parts 1 and 2 (echo, payments) on a secured pair: mutual TLS and signed interbank
    /// calls (docs/security.md), to see what security costs.
    #[arg(long)]
    secure: bool,
    /// Run only these parts (comma-separated or repeated); payments bring echo, the limit they
    /// are measured against. Goals are checked for the parts that ran.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<ibsim_cli::bench::Part>,
}

/// `ibsim`: parses the command line and runs the subcommand.
///
/// Long: one arm per subcommand, each handing over to the module that runs it.
#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // Scenarios run on running nodes only when the user named them.
    let named = |id| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let running = (named("bank") || named("platform")).then(|| scenario_cmd::Running {
        bank: cli.bank.clone(),
        platform: cli.platform.clone(),
    });
    if let Some(path) = &cli.ca {
        match shared::grpc::guard::ClientCredentials::load(path, cli.identity.as_deref()) {
            Ok(credentials) => ibsim_cli::use_credentials(credentials),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let (bank_url, platform_url) = (cli.bank.clone(), cli.platform.clone());
    let result = match cli.command {
        Command::Scenario(cmd) => match scenario_cmd::scenario(cmd, running).await {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Up(args) => ibsim_cli::up::up(*args).await,
        Command::Branch(cmd) => commands::branch(&cli.bank, cmd).await,
        Command::Platform(cmd) => commands::platform(&cli.platform, cmd).await,
        Command::Health { url } => commands::health(&url).await,
        Command::Console { listen } => console(&bank_url, &platform_url, listen).await,
        Command::Certs {
            out,
            force,
            sign_algorithm,
        } => certs(&out, force, sign_algorithm),
        Command::Bench(args) => bench(args).await,
        Command::BareEcho { listen } => ibsim_cli::bench::bare::serve(listen).await,
        Command::Explore(args) => match explore(args).await {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Pay(cmd) => control::pay(&cli.platform, cmd).await,
        Command::Sms { mobile, limit } => control::sms(&cli.bank, mobile, limit).await,
        Command::Trace { subject } => control::trace(&cli.bank, &cli.platform, &subject).await,
        Command::Refund(cmd) => refund::refund(&cli.bank, &cli.platform, cmd).await,
        Command::Recon(cmd) => recon::recon(&cli.platform, cmd).await,
        Command::Clock(cmd) => control::clock(&cli.bank, &cli.platform, cmd).await,
        Command::Fault(cmd) => control::fault(&cli.bank, &cli.platform, cmd).await,
        Command::Reset { yes: true } => control::reset(&cli.bank, &cli.platform).await,
        Command::Reset { yes: false } => Err(anyhow::anyhow!("reset wipes both nodes: add --yes")),
        Command::Fixtures { file } => control::fixtures(&cli.bank, &cli.platform, &file).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(status) = e.downcast_ref::<tonic::Status>() {
                // What was being done, where a step said so, then the refusal itself.
                for step in e
                    .chain()
                    .take_while(|c| c.downcast_ref::<tonic::Status>().is_none())
                {
                    eprintln!("{step}:");
                }
                print::refusal(status);
                let plain = bank_url.starts_with("http://") || platform_url.starts_with("http://");
                if plain && status.code() == tonic::Code::Cancelled {
                    eprintln!(
                        "  (a node started with TLS (ibsim up --secure, --tls-dir) answers only https:// URLs: give --bank/--platform as https://… and --ca)"
                    );
                }
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

/// `ibsim explore`: runs the schedules, prints the summary; whether nothing was broken.
async fn explore(a: ExploreArgs) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    anyhow::ensure!(
        a.platforms == 1 || a.database.is_some(),
        "--platforms 2 shares one database between two platform processes: give --database postgres://…"
    );
    let seed = a.seed.unwrap_or_else(rand::random);
    let opts = ibsim_cli::explore::ExploreOptions {
        schedules: a.schedules,
        seed,
        steps: usize::from(a.steps),
        database: a.database,
        platforms: usize::from(a.platforms),
        jobs: a.jobs.map(usize::from).unwrap_or_else(|| {
            4 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
        repro_dir: Some(a.repro_dir),
        shrink: !a.no_shrink,
        progress: std::io::stderr().is_terminal(),
        fixtures: a.fixtures,
    };
    eprintln!(
        "exploring {} schedules of {} steps from seed {seed} (again: --seed {seed})",
        opts.schedules, opts.steps
    );
    let summary = ibsim_cli::explore::run(&opts).await?;
    print!("{}", summary.text());
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(summary.passed())
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
    };
    let opts = ibsim_cli::bench::BenchOptions {
        quick: args.quick,
        database: args.database,
        bin_dir,
        secure: args.secure,
        only: args.only,
    };
    let report = ibsim_cli::bench::run(&opts).await?;
    print!("{}", report.table());
    if let Some(p) = args.json {
        std::fs::write(&p, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn certs(
    out: &std::path::Path,
    force: bool,
    algorithm: shared::security::keys::Algorithm,
) -> anyhow::Result<()> {
    let written = shared::security::certs::write_set(out, force, algorithm)?;
    println!(
        "wrote {} files to {} (throwaway, for local use):",
        written.len(),
        out.display()
    );
    for f in &written {
        println!("  {}", f.display());
    }
    println!(
        "use them with: ibsim up --tls-dir {0} --sign-dir {0}",
        out.display()
    );
    println!(
        "           or: bank-node --tls-dir {0} --sign-dir {0} (and platform-node alike)",
        out.display()
    );
    println!(
        "     clients: ibsim --ca {}/ca.pem --bank https://127.0.0.1:40051 …",
        out.display()
    );
    Ok(())
}

/// `ibsim console`: the console over nodes running elsewhere, until Ctrl-C.
async fn console(bank: &str, platform: &str, listen: SocketAddr) -> anyhow::Result<()> {
    use ibsim_cli::console::{Console, bind, channel};
    let listener = bind(listen).await?;
    let c = Console::new(
        channel(bank).await?,
        channel(platform).await?,
        bank,
        platform,
    )?;
    println!(
        "console on http://{}/ for bank {bank} and platform {platform}; Ctrl-C stops it",
        listener.local_addr()?
    );
    tokio::select! {
        served = c.serve(listener) => served,
        _ = shared::grpc::shutdown_signal() => Ok(()),
    }
}
