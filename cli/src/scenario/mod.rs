//! Cross-node scenarios: small TOML files of steps against either node, run by
//! `ibsim scenario run` and by `cargo test` (docs/scenarios.md).
//!
//! Each scenario runs on a fresh pair of nodes of its own (or on nodes already running), its
//! business clocks frozen at its start; steps call any RPC by name with protobuf JSON, save
//! answers for later steps, move the clocks and compare both nodes. The first step that does not
//! come out as expected ends the scenario, with the differences.

mod checks;
mod conversation;
mod expect;
mod html;
pub(crate) mod invoke;
mod model;
pub(crate) mod nodes;
mod report;
mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;
use tonic_types::StatusExt;

pub use expect::Mismatch;
pub use invoke::{Catalog, Node};
pub use model::{Action, DEFAULT_START, Expect, Scenario, Step, find_files, load, load_all, parse};
pub use nodes::Target;
pub(crate) use nodes::copy_db;
pub use report::{Failure, Report, ScenarioReport, StepReport};

use invoke::CallError;
use model::{Check, ClockMove};
use template::{Env, render, render_text};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the scenarios run.
    pub target: Target,
    /// At most this many scenarios at once (fresh pairs only; running nodes take one at a time).
    pub jobs: usize,
    /// Every random choice of every scenario follows from this.
    pub seed: u64,
    /// Sees every call's request and answer (`None`: nobody does).
    pub tap: Option<Tap>,
    /// A secured run (docs/security.md) with the credentials in this directory (`ibsim certs`):
    /// fresh pairs run with mutual TLS and signing, and towards each node the runner plays the
    /// other institution. `None`: plain text.
    pub credentials: Option<std::path::PathBuf>,
    /// Watch each scenario's conversation (both nodes' feeds) for the HTML report
    /// ([`ScenarioReport::conversation`]).
    pub record: bool,
}

/// An observer of every call a run makes: the rendered request (protobuf JSON) and the answer,
/// if there was one. The log scan uses it to learn every secret a run used.
#[derive(Clone)]
pub struct Tap(pub Arc<TapFn>);

/// What a [`Tap`] calls: the request, and the answer if there was one.
pub type TapFn = dyn Fn(&Value, Option<&Value>) + Send + Sync;

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl Tap {
    fn see(tap: Option<&Tap>, request: &Value, answer: &Result<Value, CallError>) {
        if let Some(t) = tap {
            (t.0)(request, answer.as_ref().ok());
        }
    }
}

/// Polling steps try again after this long.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Runs the scenarios; the report keeps their order.
pub async fn run(scenarios: Vec<Scenario>, opts: &RunOptions) -> Report {
    let started = Instant::now();
    let jobs = match opts.target {
        Target::Running { .. } => 1,
        Target::Fresh { .. } => opts.jobs.max(1),
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut tasks = tokio::task::JoinSet::new();
    let count = scenarios.len();
    // The demo fixtures, loaded once for every scenario that starts from them at the default
    // start (most of the library): each copies the loaded databases instead of loading again.
    let seeded = seed_demo(&scenarios, &opts.target).await.map(Arc::new);
    for (i, sc) in scenarios.into_iter().enumerate() {
        let gate = gate.clone();
        let opts = opts.clone();
        let seeded = seeded.clone().filter(|_| seedable(&sc, &opts.target));
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (i, run_one(&sc, &opts, seeded.as_deref()).await)
        });
    }
    let mut reports: Vec<Option<ScenarioReport>> = (0..count).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, r)) => reports[i] = Some(r),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    if let Some(s) = seeded.and_then(|s| Arc::try_unwrap(s).ok()) {
        s.remove().await;
    }
    Report {
        seed: opts.seed,
        jobs,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms: started.elapsed().as_millis() as u64,
        scenarios: reports.into_iter().flatten().collect(),
    }
}

/// A scenario's own seed: the run's seed mixed with its file name, so that its random values do
/// not depend on which other scenarios run or in what order.
pub fn scenario_seed(seed: u64, file: &std::path::Path) -> u64 {
    // FNV-1a over the file name.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in file.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h
}

/// Whether the scenario starts from the demo fixtures at the default start on fresh nodes.
fn seedable(sc: &Scenario, target: &Target) -> bool {
    matches!(target, Target::Fresh { .. })
        && matches!(sc.fixtures, Some(model::Fixtures::Demo))
        && Some(sc.start) == default_start()
}

fn default_start() -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(DEFAULT_START)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The demo fixtures loaded into databases of their own, when two or more scenarios can start
/// from them; `None` otherwise, or when that fails (each scenario then loads them itself).
async fn seed_demo(scenarios: &[Scenario], target: &Target) -> Option<nodes::Seeded> {
    let Target::Fresh { database } = target else {
        return None;
    };
    if scenarios.iter().filter(|s| seedable(s, target)).count() < 2 {
        return None;
    }
    let demo = crate::fixtures::Fixtures::parse(crate::fixtures::DEMO).ok()?;
    let tag = format!("{:016x}", rand::random::<u64>());
    nodes::Seeded::build(database.as_deref(), default_start()?, &demo, &tag)
        .await
        .inspect_err(|e| tracing::warn!(error = %format!("{e:#}"), "demo fixtures not pre-loaded"))
        .ok()
}

async fn run_one(
    sc: &Scenario,
    opts: &RunOptions,
    seeded: Option<&nodes::Seeded>,
) -> ScenarioReport {
    let started = Instant::now();
    let seed = scenario_seed(opts.seed, &sc.file);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = ScenarioReport {
        file: sc.file.display().to_string(),
        name: sc.name.clone(),
        seed: opts.seed,
        passed: false,
        ms: 0,
        steps: Vec::new(),
        failure: None,
        conversation: Vec::new(),
    };
    let tag = format!("{:016x}", rand::random::<u64>());
    let nodes = match nodes::Nodes::open(
        &opts.target,
        sc.start,
        &tag,
        seeded,
        opts.credentials.as_deref(),
    )
    .await
    {
        Ok(n) => n,
        Err(e) => {
            report.failure = Some(Failure::setup(format!("cannot start the nodes: {e:#}")));
            report.ms = started.elapsed().as_millis() as u64;
            return report;
        }
    };
    let mut recorder = None;
    let outcome = steps(
        sc,
        &nodes,
        seeded.is_some(),
        &mut rng,
        &mut report,
        opts.tap.as_ref(),
        opts.record.then_some(&mut recorder),
    )
    .await;
    report.conversation = match recorder {
        Some(Ok(r)) => r.finish().await,
        Some(Err(e)) => conversation::Recorder::unwatched(&e),
        None => Vec::new(),
    };
    if let Err(e) = nodes.close().await {
        report
            .failure
            .get_or_insert(Failure::setup(format!("nodes did not stop: {e:#}")));
    }
    if let Err(f) = outcome {
        report.failure.get_or_insert(f);
    }
    report.passed = report.failure.is_none();
    report.ms = started.elapsed().as_millis() as u64;
    report
}

/// Runs a scenario's steps in order on `nodes` (its fixtures loaded first unless `seeded`),
/// each step's outcome in `report`; the first failure ends it.
async fn steps(
    sc: &Scenario,
    nodes: &nodes::Nodes,
    seeded: bool,
    rng: &mut StdRng,
    report: &mut ScenarioReport,
    tap: Option<&Tap>,
    recorder: Option<&mut Option<anyhow::Result<conversation::Recorder>>>,
) -> Result<(), Failure> {
    if let Some(f) = sc.fixtures.as_ref().filter(|_| !seeded) {
        load_fixtures(f, nodes).await?;
    }
    // The conversation starts after the fixtures: their loading is set-up, not the scenario.
    if let Some(r) = recorder {
        *r = Some(conversation::Recorder::start(nodes).await);
    }
    let mut vars = render_vars(sc, rng)?;
    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    for (i, step) in sc.steps.iter().enumerate() {
        let started = Instant::now();
        let (tries, result) = if step.background {
            let r = start(step, nodes, &mut vars, &sc.files, rng, &mut pending, tap).await;
            (1, r)
        } else if let Action::Await(name) = &step.action {
            (1, finish(name, &mut pending, &mut vars).await)
        } else {
            repeated(step, nodes, &mut vars, &sc.files, rng, tap).await
        };
        report.steps.push(StepReport {
            index: i + 1,
            name: step.name.clone(),
            ms: started.elapsed().as_millis() as u64,
            tries,
            passed: result.is_ok(),
        });
        if let Err(a) = result {
            return Err(a.into_failure(i + 1, &step.name));
        }
    }
    Ok(())
}

/// Loads a scenario's fixtures into both nodes.
async fn load_fixtures(f: &model::Fixtures, nodes: &nodes::Nodes) -> Result<(), Failure> {
    let text = match f {
        model::Fixtures::Demo => crate::fixtures::DEMO,
        model::Fixtures::File(t) => t.as_str(),
    };
    let parsed = crate::fixtures::Fixtures::parse(text)
        .map_err(|e| Failure::setup(format!("fixtures: {e:#}")))?;
    crate::fixtures::load(
        nodes.bank.inner().clone(),
        nodes.platform.inner().clone(),
        &parsed,
    )
    .await
    .map_err(|e| Failure::setup(format!("fixtures: {e:#}")))?;
    Ok(())
}

/// A scenario's `vars`, each rendered once (with the files and the random source).
fn render_vars(sc: &Scenario, rng: &mut StdRng) -> Result<BTreeMap<String, Value>, Failure> {
    let mut vars = BTreeMap::new();
    for (k, v) in &sc.vars {
        let empty = BTreeMap::new();
        let mut env = Env {
            vars: &empty,
            files: &sc.files,
            rng,
        };
        let v = render(v, &mut env).map_err(|e| Failure::setup(format!("vars.{k}: {e}")))?;
        vars.insert(k.clone(), v);
    }
    Ok(vars)
}

/// A step run `repeat` times (`repeat_index` 1, 2, …), each round tried again while its answer
/// differs from what is expected, for up to `poll_ms`; the tries and the outcome.
async fn repeated(
    step: &Step,
    nodes: &nodes::Nodes,
    vars: &mut BTreeMap<String, Value>,
    files: &BTreeMap<String, String>,
    rng: &mut StdRng,
    tap: Option<&Tap>,
) -> (u32, Result<(), Attempt>) {
    let mut tries = 0u32;
    let mut result = Ok(());
    for round in 1..=step.repeat {
        vars.insert("repeat_index".to_owned(), Value::from(round));
        let deadline = Instant::now() + Duration::from_millis(step.poll_ms);
        result = loop {
            tries += 1;
            match attempt(step, nodes, vars, files, rng, tap).await {
                Err(Attempt::Differs(..)) if Instant::now() < deadline => {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                other => break other,
            }
        };
        if result.is_err() {
            break;
        }
    }
    vars.remove("repeat_index");
    (tries, result)
}

/// A call running in the background, and what its step expects of it.
struct Pending {
    task: tokio::task::JoinHandle<Result<Value, CallError>>,
    expect: Rendered,
}

/// Starts a background step's call.
async fn start(
    step: &Step,
    nodes: &nodes::Nodes,
    vars: &mut BTreeMap<String, Value>,
    files: &BTreeMap<String, String>,
    rng: &mut StdRng,
    pending: &mut BTreeMap<String, Pending>,
    tap: Option<&Tap>,
) -> Result<(), Attempt> {
    let (Action::Call { rpc, request }, Some(name)) = (&step.action, &step.save_as) else {
        return Err(Attempt::Broken("background is for calls with `as`".into()));
    };
    let mut env = Env { vars, files, rng };
    let expect = render_expect(&step.expect, &mut env).map_err(Attempt::Broken)?;
    let request = render(request, &mut env).map_err(Attempt::Broken)?;
    if rpc.interbank() {
        nodes.sync_clock(rpc.node).await.map_err(clock_unread)?;
    }
    let ch = match rpc.node {
        Node::Bank => nodes.bank.clone(),
        Node::Platform => nodes.platform.clone(),
    };
    let rpc = rpc.clone();
    let tap = tap.cloned();
    let task = tokio::spawn(async move {
        let answer = invoke::call(ch, &rpc, &request).await;
        Tap::see(tap.as_ref(), &request, &answer);
        answer
    });
    pending.insert(name.clone(), Pending { task, expect });
    Ok(())
}

/// A node whose clock could not be read before a signed call.
fn clock_unread(s: tonic::Status) -> Attempt {
    Attempt::Broken(format!(
        "cannot read the node's clock to sign with: {:?} {}",
        s.code(),
        s.message()
    ))
}

/// Waits for a background call and judges it.
async fn finish(
    name: &str,
    pending: &mut BTreeMap<String, Pending>,
    vars: &mut BTreeMap<String, Value>,
) -> Result<(), Attempt> {
    let p = pending
        .remove(name)
        .ok_or_else(|| Attempt::Broken(format!("no background call named {name:?} is running")))?;
    let outcome = match p.task.await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(CallError::Status(s))) => Err(s),
        Ok(Err(CallError::Request(e))) => return Err(Attempt::Broken(e)),
        Err(e) => return Err(Attempt::Broken(format!("the background call failed: {e}"))),
    };
    let (diff, actual) = judge(&p.expect, &outcome);
    if !diff.is_empty() {
        return Err(Attempt::Differs(diff, actual));
    }
    if let Ok(answer) = outcome {
        vars.insert(name.to_owned(), answer);
    }
    Ok(())
}

/// Why an attempt at a step failed.
enum Attempt {
    /// The step could not be made (a template or request that does not work).
    Broken(String),
    /// It ran, but came out otherwise: what differs, and the answer (or refusal) as it came.
    Differs(Vec<Mismatch>, Value),
}

impl Attempt {
    fn into_failure(self, step: usize, name: &str) -> Failure {
        match self {
            Attempt::Broken(message) => Failure {
                step,
                step_name: name.to_owned(),
                message,
                diff: Vec::new(),
                actual: None,
            },
            Attempt::Differs(diff, actual) => Failure {
                step,
                step_name: name.to_owned(),
                message: format!("{} difference(s) from what the step expects", diff.len()),
                diff,
                actual: Some(actual),
            },
        }
    }
}

async fn attempt(
    step: &Step,
    nodes: &nodes::Nodes,
    vars: &mut BTreeMap<String, Value>,
    files: &BTreeMap<String, String>,
    rng: &mut StdRng,
    tap: Option<&Tap>,
) -> Result<(), Attempt> {
    let mut env = Env { vars, files, rng };
    let expect = render_expect(&step.expect, &mut env).map_err(Attempt::Broken)?;
    let outcome: Result<Value, tonic::Status> = match &step.action {
        Action::Call { rpc, request } => {
            let request = render(request, &mut env).map_err(Attempt::Broken)?;
            if rpc.interbank() {
                nodes.sync_clock(rpc.node).await.map_err(clock_unread)?;
            }
            let ch = match rpc.node {
                Node::Bank => nodes.bank.clone(),
                Node::Platform => nodes.platform.clone(),
            };
            let answer = invoke::call(ch, rpc, &request).await;
            Tap::see(tap, &request, &answer);
            match answer {
                Ok(v) => Ok(v),
                Err(CallError::Status(s)) => Err(s),
                Err(CallError::Request(e)) => return Err(Attempt::Broken(e)),
            }
        }
        Action::Await(_) => return Err(Attempt::Broken("await runs on its own".into())),
        Action::Clock(m) => clock(nodes, m)
            .await
            .map(|closed| serde_json::json!({ "closed_dates": closed })),
        Action::Check(c) => cross_check(c, nodes, &mut env).await?,
    };
    let (diff, actual) = judge(&expect, &outcome);
    if !diff.is_empty() {
        return Err(Attempt::Differs(diff, actual));
    }
    if let (Some(name), Ok(answer)) = (&step.save_as, outcome) {
        vars.insert(name.clone(), answer);
    }
    Ok(())
}

/// A check step's outcome: `Null` when both nodes agree; a refusal of one of the reads as
/// it came.
async fn cross_check(
    c: &Check,
    nodes: &nodes::Nodes,
    env: &mut Env<'_>,
) -> Result<Result<Value, tonic::Status>, Attempt> {
    let found = match c {
        Check::Order { order_no, status } => {
            let order_no = render_text(order_no, env).map_err(Attempt::Broken)?;
            nodes.sync_clock(Node::Bank).await.map_err(clock_unread)?;
            checks::order(
                nodes.bank.clone(),
                nodes.platform.clone(),
                &order_no,
                status,
            )
            .await
        }
        Check::SignUps { account, count } => {
            let account = render_text(account, env).map_err(Attempt::Broken)?;
            checks::signups(nodes.bank.clone(), nodes.platform.clone(), &account, *count).await
        }
    };
    match found {
        Ok(found) if found.is_empty() => Ok(Ok(Value::Null)),
        Ok(found) => Err(Attempt::Differs(
            found,
            Value::String("the nodes disagree".into()),
        )),
        Err(s) => Ok(Err(s)),
    }
}

/// The expectation with its templates rendered.
struct Rendered {
    status: String,
    reason: Option<String>,
    domain: Option<String>,
    field: Option<String>,
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

fn render_expect(e: &Expect, env: &mut Env<'_>) -> Result<Rendered, String> {
    let mut opt = |s: &Option<String>| s.as_deref().map(|s| render_text(s, env)).transpose();
    let status = match e.status.as_deref() {
        Some(model::ANY_OUTCOME) => model::ANY_OUTCOME.to_owned(),
        s => crate::names::code_name(
            crate::names::code_from_name(s.unwrap_or("OK")).unwrap_or(tonic::Code::Ok),
        )
        .to_owned(),
    };
    let reason = opt(&e.reason)?;
    let domain = opt(&e.domain)?;
    let field = opt(&e.field)?;
    let message = opt(&e.message)?;
    let mut fields = Vec::with_capacity(e.fields.len());
    for (path, v) in &e.fields {
        fields.push((path.clone(), render(v, env)?));
    }
    Ok(Rendered {
        status,
        reason,
        domain,
        field,
        message,
        fields,
    })
}

/// What differs between the expectation and what came; and what came, for the report.
/// Where an outcome differs from what the step expects, and the outcome as a report shows it.
fn judge(e: &Rendered, outcome: &Result<Value, tonic::Status>) -> (Vec<Mismatch>, Value) {
    if e.status == model::ANY_OUTCOME {
        let came = match outcome {
            Ok(answer) => answer.clone(),
            Err(s) => serde_json::json!({ "status": crate::names::code_name(s.code()) }),
        };
        return (Vec::new(), came);
    }
    match outcome {
        Ok(answer) => judge_answer(e, answer),
        Err(s) => judge_refusal(e, s),
    }
}

/// An answer against the expectation: OK expected, no refusal described, the fields as given.
fn judge_answer(e: &Rendered, answer: &Value) -> (Vec<Mismatch>, Value) {
    let mut diff = Vec::new();
    if e.status != "OK" {
        diff.push(Mismatch::new("status", e.status.clone(), Some("OK".into())));
    }
    for what in [&e.reason, &e.domain, &e.field, &e.message]
        .into_iter()
        .flatten()
    {
        diff.push(Mismatch::new(
            "refusal",
            what.clone(),
            Some("none: the call succeeded".into()),
        ));
    }
    if e.status == "OK" {
        for (path, want) in &e.fields {
            expect::field(answer, path, want, &mut diff);
        }
    }
    (diff, answer.clone())
}

/// A refusal against the expectation: its code, reason, domain, field and message.
fn judge_refusal(e: &Rendered, s: &tonic::Status) -> (Vec<Mismatch>, Value) {
    let mut diff = Vec::new();
    let info = s.get_details_error_info();
    let reason = info.as_ref().map(|i| i.reason.clone()).unwrap_or_default();
    let domain = info.as_ref().map(|i| i.domain.clone()).unwrap_or_default();
    let field = info
        .as_ref()
        .and_then(|i| i.metadata.get("field").cloned())
        .unwrap_or_default();
    let code = crate::names::code_name(s.code());
    if e.status != code {
        diff.push(Mismatch::new(
            "status",
            e.status.clone(),
            Some(code.to_owned()),
        ));
    }
    let pairs = [
        ("reason", &e.reason, &reason),
        ("domain", &e.domain, &domain),
        ("field", &e.field, &field),
    ];
    for (name, want, got) in pairs {
        if let Some(want) = want
            && want != got
        {
            diff.push(Mismatch::new(name, want.clone(), Some(got.clone())));
        }
    }
    if let Some(m) = &e.message
        && !s.message().contains(m.as_str())
    {
        diff.push(Mismatch::new(
            "message",
            format!("contains {m:?}"),
            Some(s.message().to_owned()),
        ));
    }
    if e.status != "OK" && !e.fields.is_empty() {
        diff.push(Mismatch::new(
            "fields",
            "an answer to compare",
            Some("a refusal".into()),
        ));
    }
    let actual = serde_json::json!({
        "status": code,
        "reason": reason,
        "domain": domain,
        "field": field,
        "message": s.message(),
    });
    (diff, actual)
}

async fn clock(nodes: &nodes::Nodes, m: &ClockMove) -> Result<Vec<String>, tonic::Status> {
    use proto::sim::v1 as sim;
    use sim::set_clock_request::Move;
    let mv = match m {
        ClockMove::Advance(ms) => Move::AdvanceMs(*ms),
        ClockMove::Set(t) => Move::SetTo(shared::grpc::timestamp(*t)),
        ClockMove::Cutover => Move::AdvanceToCutover(true),
        ClockMove::Resume => Move::Resume(true),
        ClockMove::Freeze => Move::Freeze(true),
    };
    let mut closed = Vec::new();
    // The platform first, as `ibsim clock` does: the bank's day-end then finds it moved on.
    for ch in [&nodes.platform, &nodes.bank] {
        let r = sim::simulator_service_client::SimulatorServiceClient::new(ch.clone())
            .set_clock(sim::SetClockRequest { r#move: Some(mv) })
            .await?
            .into_inner();
        closed.extend(r.closed_dates);
    }
    closed.sort();
    closed.dedup();
    Ok(closed)
}
