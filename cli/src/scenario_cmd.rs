//! `ibsim scenario`: run scenario files (docs/scenarios.md).

use std::path::PathBuf;

use clap::Subcommand;
use ibsim_cli::scenario::{self, Catalog, RunOptions, Target};

/// Scenario files: check them, or run them.
#[derive(Subcommand, Debug)]
pub enum ScenarioCmd {
    /// Run scenarios, each on a fresh pair of nodes (or on running nodes: --bank/--platform).
    /// Exit 0 only when every scenario passes.
    Run(RunArgs),
    /// Parse and check scenario files without running them (every RPC named exists).
    Check {
        /// Scenario files, or directories searched for *.toml.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

/// How `ibsim scenario run` runs.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario files, or directories searched for *.toml.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Only scenarios whose name or file contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Scenarios at once on fresh pairs (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Every random choice follows from this (default: a new one, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Fresh pairs on PostgreSQL: a server URL where each scenario gets two new databases
    /// (dropped afterwards). Default: SQLite in memory.
    #[arg(long, env = "IBSIM_SCENARIO_DATABASE")]
    database: Option<String>,
    /// With running nodes: do not wipe them (SimulatorService.Reset) before each scenario.
    #[arg(long)]
    no_reset: bool,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the whole report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a self-contained HTML page here: each scenario's steps and outcomes, its sequence
    /// diagram (both nodes' feeds, as the console draws them) and, for a failure, the step and
    /// the expected/actual differences.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Run secured (docs/security.md): fresh pairs with mutual TLS and signed interbank calls,
    /// and towards each node the runner plays the other institution, so steps that play the
    /// peer work too. DIR holds credentials made by `ibsim certs` (running nodes: theirs); fresh
    /// pairs without DIR get a throwaway set.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    secure: Option<Option<PathBuf>>,
}

/// Where the nodes are when `--bank`/`--platform` were given.
pub struct Running {
    /// The bank's URL.
    pub bank: String,
    /// The platform's URL.
    pub platform: String,
}

/// Runs the subcommand; `Ok(false)`: some scenario failed.
///
/// Long: one arm per `ibsim scenario` subcommand.
pub async fn scenario(cmd: ScenarioCmd, running: Option<Running>) -> anyhow::Result<bool> {
    let catalog = Catalog::new()?;
    match cmd {
        ScenarioCmd::Check { paths } => {
            let files = scenario::find_files(&paths)?;
            let all = scenario::load_all(&files, &catalog)?;
            let steps: usize = all.iter().map(|s| s.steps.len()).sum();
            println!("{} scenarios, {steps} steps: all well-formed", all.len());
            Ok(true)
        }
        ScenarioCmd::Run(args) => {
            let files = scenario::find_files(&args.paths)?;
            let mut all = scenario::load_all(&files, &catalog)?;
            if let Some(f) = &args.filter {
                all.retain(|s| {
                    s.name.contains(f.as_str()) || s.file.to_string_lossy().contains(f.as_str())
                });
                anyhow::ensure!(!all.is_empty(), "no scenario matches --filter {f:?}");
            }
            let target = match running {
                Some(r) => {
                    anyhow::ensure!(
                        args.database.is_none(),
                        "--database is for fresh pairs; running nodes keep their own databases"
                    );
                    Target::Running {
                        bank: r.bank,
                        platform: r.platform,
                        reset: !args.no_reset,
                    }
                }
                None => Target::Fresh {
                    database: args.database,
                },
            };
            // A throwaway set lives as long as the run.
            let mut throwaway = None;
            let credentials = match (args.secure, &target) {
                (None, _) => None,
                (Some(Some(dir)), _) => Some(dir),
                (Some(None), Target::Fresh { .. }) => {
                    let dir = tempfile::tempdir()?;
                    shared::security::certs::write_set(
                        dir.path(),
                        false,
                        shared::security::keys::Algorithm::Ed25519,
                    )?;
                    let path = dir.path().to_owned();
                    throwaway = Some(dir);
                    Some(path)
                }
                (Some(None), Target::Running { .. }) => anyhow::bail!(
                    "--secure with running nodes needs their credentials: --secure DIR"
                ),
            };
            let opts = RunOptions {
                target,
                jobs: args
                    .jobs
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                seed: args.seed.unwrap_or_else(rand::random),
                tap: None,
                credentials,
                record: args.html.is_some(),
            };
            let report = scenario::run(all, &opts).await;
            print!("{}", report.summary());
            if let Some(p) = &args.junit {
                std::fs::write(p, report.junit())?;
            }
            if let Some(p) = &args.json {
                std::fs::write(p, serde_json::to_string_pretty(&report)?)?;
            }
            if let Some(p) = &args.html {
                std::fs::write(p, report.html()?)?;
            }
            drop(throwaway);
            Ok(report.passed())
        }
    }
}
