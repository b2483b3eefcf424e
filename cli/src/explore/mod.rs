//! `ibsim explore`: seeded random schedules thrown at fresh pairs of nodes, and the promises
//! checked at the end of each (docs/reliability.md). A schedule interleaves every flow with
//! races, clock moves, fault rules and restarts; its seed names it. A failing schedule is shrunk
//! to the fewest steps that still fail, and written as a scenario file that replays it.

mod checks;
mod ops;
mod repro;
mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use checks::Violation;
pub use ops::{Op, Plan, schedule};
pub use world::Tally;

/// How `ibsim explore` runs.
#[derive(Debug, Clone)]
pub struct ExploreOptions {
    /// Schedules to run.
    pub schedules: u64,
    /// The first schedule's seed; schedule n runs seed + n.
    pub seed: u64,
    /// Steps per schedule.
    pub steps: usize,
    /// A PostgreSQL server to make each schedule's databases on; `None`: SQLite files.
    pub database: Option<String>,
    /// Platform processes per pair (2: a scale-out, on PostgreSQL).
    pub platforms: usize,
    /// Schedules run at once.
    pub jobs: usize,
    /// Where a failing schedule's scenario file goes (shrunk); `None`: nowhere.
    pub repro_dir: Option<PathBuf>,
    /// Shrink a failing schedule before writing it.
    pub shrink: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// A tester's fixture file (fixtures/demo.json's format) whose activated sign-ups are the
    /// customers; `None`: the explorer makes its own.
    pub fixtures: Option<PathBuf>,
}

/// One schedule's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleResult {
    /// Its seed.
    pub seed: u64,
    /// Its counts.
    pub tally: Tally,
    /// What it broke.
    pub violations: Vec<Violation>,
    /// Trouble of the explorer's own (a node it could not reach), not a finding.
    pub error: Option<String>,
    /// The orders the bank held as paid at the end.
    pub paid: Vec<String>,
    /// Milliseconds it took.
    pub ms: u64,
}

/// What a run found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Summary {
    /// Schedules run.
    pub schedules: u64,
    /// Steps carried out.
    pub steps: u64,
    /// Fault rules installed.
    pub faults: u64,
    /// Races.
    pub races: u64,
    /// Restarts.
    pub restarts: u64,
    /// Invariants checked.
    pub invariants_checked: u64,
    /// Violations found.
    pub violations: u64,
    /// Schedules the explorer itself could not finish.
    pub errors: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Schedules a minute.
    pub schedules_per_minute: f64,
    /// The first seed.
    pub first_seed: u64,
    /// The backend.
    pub backend: String,
    /// Platform processes per pair.
    pub platforms: usize,
    /// The schedules that failed (violations or errors), with what they found.
    pub failures: Vec<ScheduleResult>,
    /// Scenario files written for failures.
    pub repros: Vec<PathBuf>,
}

impl Summary {
    /// Whether nothing was broken and every schedule ran.
    pub fn passed(&self) -> bool {
        self.violations == 0 && self.errors == 0
    }

    /// The summary as lines for people.
    pub fn text(&self) -> String {
        let mut s = format!(
            "explored {} schedules ({} steps, {} faults, {} races, {} restarts) on {} with {} platform process{} in {:.1} s ({:.0} schedules/min): {} invariants checked, {} violations, {} errors\n",
            self.schedules,
            self.steps,
            self.faults,
            self.races,
            self.restarts,
            self.backend,
            self.platforms,
            if self.platforms == 1 { "" } else { "es" },
            self.seconds,
            self.schedules_per_minute,
            self.invariants_checked,
            self.violations,
            self.errors,
        );
        for f in &self.failures {
            s.push_str(&format!("seed {} failed:\n", f.seed));
            if let Some(e) = &f.error {
                s.push_str(&format!("  error: {e}\n"));
            }
            for v in &f.violations {
                s.push_str(&format!("  {}: {}\n", v.invariant, v.detail));
            }
        }
        for r in &self.repros {
            s.push_str(&format!("replay: ibsim scenario run {}\n", r.display()));
        }
        s
    }
}

/// Runs one schedule: a fresh pair, its steps, then settlement and every check.
pub async fn run_schedule(
    seed: u64,
    plan: &Plan,
    template: &world::Template,
    platforms: usize,
) -> ScheduleResult {
    match tokio::time::timeout(SCHEDULE_TIMEOUT, run_plan(seed, plan, template, platforms)).await {
        Ok(r) => r,
        Err(_) => ScheduleResult {
            seed,
            tally: Tally::default(),
            violations: Vec::new(),
            error: Some(format!("stuck: not done in {SCHEDULE_TIMEOUT:?}")),
            paid: Vec::new(),
            ms: u64::try_from(SCHEDULE_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        },
    }
}

async fn run_plan(
    seed: u64,
    plan: &Plan,
    template: &world::Template,
    platforms: usize,
) -> ScheduleResult {
    let steps = &plan.ops;
    let started = Instant::now();
    let mut result = ScheduleResult {
        seed,
        tally: Tally::default(),
        violations: Vec::new(),
        error: None,
        paid: Vec::new(),
        ms: 0,
    };
    let mut w = match world::World::start(seed, &plan.limits, template, platforms).await {
        Ok(w) => w,
        Err(e) => {
            result.error = Some(format!("cannot start the pair: {e:#}"));
            return result;
        }
    };
    let outcome = async {
        let mut early = Vec::new();
        for (n, op) in steps.iter().enumerate() {
            w.step = n + 1;
            w.apply(op)
                .await
                .map_err(|e| anyhow::anyhow!("step {} {op:?}: {e:#}", n + 1))?;
            early.extend(checks::after_step(&mut w, op.touches()).await?);
        }
        w.step = steps.len() + 1;
        w.settle().await?;
        let mut f = checks::all(&mut w).await?;
        f.violations.splice(0..0, early);
        Ok::<_, anyhow::Error>(f)
    }
    .await;
    match outcome {
        Ok(f) => {
            result.violations = f.violations;
            result.paid = f.paid;
        }
        Err(e) => result.error = Some(format!("{e:#}")),
    }
    result.tally = w.tally.clone();
    w.finish().await;
    result.ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// Runs the schedules, `jobs` at a time; shrinks and writes each failure that `opts` asks for.
pub async fn run(opts: &ExploreOptions) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let bar = progress_bar(opts);
    let mut summary = Summary {
        first_seed: opts.seed,
        backend: if opts.database.is_some() {
            "PostgreSQL".into()
        } else {
            "SQLite".into()
        },
        platforms: opts.platforms,
        ..Summary::default()
    };
    let template = std::sync::Arc::new(template(opts).await?);
    let jobs = opts.jobs.max(1);
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0u64;
    let mut failed = Vec::new();
    loop {
        while running.len() < jobs && next < opts.schedules {
            let seed = opts.seed.wrapping_add(next);
            let (steps, template, platforms) = (opts.steps, template.clone(), opts.platforms);
            running.spawn(async move {
                let plan = schedule(seed, steps);
                run_schedule(seed, &plan, &template, platforms).await
            });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let r = done?;
        summary.count(&r);
        if !r.violations.is_empty() || r.error.is_some() {
            bar.println(format!("seed {} failed: {}", r.seed, r.what_failed()));
            failed.push(r);
        }
        bar.set_message(format!(
            "{} violations, {} errors",
            summary.violations, summary.errors
        ));
        bar.inc(1);
    }
    bar.finish_and_clear();
    failed.sort_by_key(|r| r.seed);
    if let Some(dir) = &opts.repro_dir {
        for f in failed.iter().filter(|f| !f.violations.is_empty()).take(3) {
            let plan = schedule(f.seed, opts.steps);
            let (plan, seen) = if opts.shrink {
                repro::shrink(f.seed, plan, f, &template, opts.platforms).await
            } else {
                (plan, f.clone())
            };
            summary.repros.push(repro::write(dir, &plan, &seen)?);
        }
    }
    summary.failures = failed;
    if let Ok(t) = std::sync::Arc::try_unwrap(template) {
        t.drop().await;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.schedules_per_minute = per_minute(summary.schedules, summary.seconds);
    Ok(summary)
}

/// The progress bar of a run (hidden unless asked for).
fn progress_bar(opts: &ExploreOptions) -> indicatif::ProgressBar {
    let bar = if opts.progress {
        indicatif::ProgressBar::new(opts.schedules)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} schedules, {msg}",
        )
        .expect("a template")
        .progress_chars("=> "),
    );
    bar
}

/// The customers every schedule starts with (the fixtures given, or the explorer's own).
async fn template(opts: &ExploreOptions) -> anyhow::Result<world::Template> {
    let fixtures = match &opts.fixtures {
        Some(path) => Some(crate::fixtures::Fixtures::parse(
            &std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
        )?),
        None => None,
    };
    world::Template::make(opts.database.as_deref(), opts.seed, fixtures.as_ref())
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot set up the customers every schedule starts with: {e:#}")
        })
}

impl Summary {
    /// Counts a schedule's result in.
    fn count(&mut self, r: &ScheduleResult) {
        self.schedules += 1;
        self.steps += r.tally.steps;
        self.faults += r.tally.faults;
        self.races += r.tally.races;
        self.restarts += r.tally.restarts;
        self.invariants_checked += r.tally.checks;
        self.violations += r.violations.len() as u64;
        if r.error.is_some() {
            self.errors += 1;
        }
    }
}

impl ScheduleResult {
    /// What failed: the error, or each promise broken.
    fn what_failed(&self) -> String {
        self.error.clone().unwrap_or_else(|| {
            self.violations
                .iter()
                .map(|v| format!("{}: {}", v.invariant, v.detail))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// A rate for the report (never money).
#[allow(clippy::float_arithmetic)]
fn per_minute(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 * 60.0 / seconds
    } else {
        0.0
    }
}

/// How long one schedule may take before the explorer calls it stuck.
pub const SCHEDULE_TIMEOUT: Duration = Duration::from_secs(300);
