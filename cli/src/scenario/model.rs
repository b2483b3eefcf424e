//! Scenario files: TOML, parsed and checked whole before anything runs (docs/scenarios.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::invoke::{Catalog, Node, Rpc};

/// Where every scenario's business clocks start, unless it says otherwise: a Monday morning,
/// China time, years ahead of any real clock (so a running node can be moved there too).
pub const DEFAULT_START: &str = "2031-03-03T10:00:00+08:00";
/// A scenario file is at most this big.
pub const FILE_BYTES_MAX: u64 = 1024 * 1024;
/// A scenario has at most this many steps.
pub const STEPS_MAX: usize = 1000;
/// A step polls for at most this long.
pub const POLL_MS_MAX: u64 = 60_000;
/// A step repeats at most this many times.
pub const REPEAT_MAX: u32 = 1000;

/// `expect.status` for a step whose outcome is not judged (a call made for what it does; the
/// explorer's replays use it for steps whose answer it does not predict).
pub const ANY_OUTCOME: &str = "ANY";

/// One scenario, checked: every RPC it names exists on the node it names.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file, as given (or found under a given directory).
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Where both business clocks start (frozen).
    pub start: DateTime<Utc>,
    /// Fixtures to load before the first step.
    pub fixtures: Option<Fixtures>,
    /// Named values, rendered once before the first step.
    pub vars: BTreeMap<String, Value>,
    /// Named file texts (templates), for `{{files.NAME.base64}}`, `.sha256` and `.size`.
    pub files: BTreeMap<String, String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// Which fixtures a scenario loads.
#[derive(Debug, Clone)]
pub enum Fixtures {
    /// `fixtures/demo.json` (docs/test-data.md).
    Demo,
    /// A fixture file's text.
    File(String),
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name (default: what it does).
    pub name: String,
    /// What it does.
    pub action: Action,
    /// What must come of it.
    pub expect: Expect,
    /// Store the answer under this name for later steps.
    pub save_as: Option<String>,
    /// Repeat the step until the expectation holds, for at most this long.
    pub poll_ms: u64,
    /// Run the step this many times, each time expecting the same (`{{repeat_index}}` counts
    /// from 1).
    pub repeat: u32,
    /// Start the call and go on; an `await` step named by `as` waits for it and judges it.
    pub background: bool,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Call an RPC of one node; `request` is protobuf JSON with `{{…}}` templates (an array for
    /// a client-streaming RPC).
    Call {
        /// The node and the RPC.
        rpc: Rpc,
        /// The request (template).
        request: Value,
    },
    /// Wait for a call started in the background (`background = true`) and judge it as its own
    /// step asked; its answer is saved under its `as` name.
    Await(String),
    /// Move both business clocks.
    Clock(ClockMove),
    /// Compare what the two nodes hold.
    Check(Check),
}

/// A move of both business clocks.
#[derive(Debug, Clone)]
pub enum ClockMove {
    /// Forward by this many milliseconds.
    Advance(i64),
    /// To this time (never backwards).
    Set(DateTime<Utc>),
    /// To the next midnight, China time: the day-end cutover.
    Cutover,
    /// Let the clocks run.
    Resume,
    /// Stop the clocks.
    Freeze,
}

/// A cross-node check.
#[derive(Debug, Clone)]
pub enum Check {
    /// The order (template) is in this state on the platform, the bank's payment agrees, and both
    /// hold the same amount (and, once paid, the same serial number and business date).
    Order {
        /// The order number (template).
        order_no: String,
        /// The platform's status: CREATED, AWAITING_CODE, SUCCESS, FAILED or UNKNOWN.
        status: String,
    },
    /// Every card-link the platform lists for the account (template) is a sign-up the bank holds
    /// in the matching state, with the same card and account.
    SignUps {
        /// The platform account (template).
        account: String,
        /// How many card-links the account must have, if given.
        count: Option<u64>,
    },
}

/// What must come of a step (templates everywhere).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The gRPC status code name (default OK), or [`ANY_OUTCOME`].
    pub status: Option<String>,
    /// The ErrorInfo reason.
    pub reason: Option<String>,
    /// The ErrorInfo domain: the institution that refused.
    pub domain: Option<String>,
    /// The ErrorInfo `field` metadata.
    pub field: Option<String>,
    /// Text the status message contains.
    pub message: Option<String>,
    /// Field paths of the answer and what each must be.
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    start: Option<String>,
    fixtures: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, Value>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    bank: Option<String>,
    platform: Option<String>,
    request: Option<Value>,
    #[serde(rename = "as")]
    save_as: Option<String>,
    clock: Option<RawClock>,
    check: Option<RawCheck>,
    expect: Option<Expect>,
    poll_ms: Option<u64>,
    repeat: Option<u32>,
    #[serde(default)]
    background: bool,
    #[serde(rename = "await")]
    wait_for: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClock {
    advance: Option<String>,
    set: Option<String>,
    #[serde(default)]
    cutover: bool,
    #[serde(default)]
    resume: bool,
    #[serde(default)]
    freeze: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    order: Option<String>,
    status: Option<String>,
    signups: Option<String>,
    count: Option<u64>,
}

/// Every `.toml` file named, or found (recursively, in name order) under a directory named.
pub fn find_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    anyhow::ensure!(!out.is_empty(), "no scenario files found");
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and checks every file; all problems of all files in one error.
pub fn load_all(files: &[PathBuf], catalog: &Catalog) -> anyhow::Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let mut problems = Vec::new();
    for f in files {
        match load(f, catalog) {
            Ok(s) => scenarios.push(s),
            Err(e) => problems.push(format!("{}: {e:#}", f.display())),
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    Ok(scenarios)
}

/// Reads and checks one file.
pub fn load(file: &Path, catalog: &Catalog) -> anyhow::Result<Scenario> {
    let size = std::fs::metadata(file)?.len();
    anyhow::ensure!(size <= FILE_BYTES_MAX, "over {FILE_BYTES_MAX} bytes");
    let text = std::fs::read_to_string(file)?;
    parse(&text, file, catalog)
}

/// Parses a scenario's text; `file` names it and anchors relative fixture paths.
pub fn parse(text: &str, file: &Path, catalog: &Catalog) -> anyhow::Result<Scenario> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    anyhow::ensure!(!raw.step.is_empty(), "no [[step]]");
    anyhow::ensure!(raw.step.len() <= STEPS_MAX, "more than {STEPS_MAX} steps");
    let start = chrono::DateTime::parse_from_rfc3339(raw.start.as_deref().unwrap_or(DEFAULT_START))
        .context("start is not an RFC 3339 time")?
        .with_timezone(&Utc);
    let fixtures = match raw.fixtures.as_deref() {
        None => None,
        Some("demo") => Some(Fixtures::Demo),
        Some(path) => {
            let p = file.parent().unwrap_or(Path::new(".")).join(path);
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("fixtures: cannot read {}", p.display()))?;
            crate::fixtures::Fixtures::parse(&text)?;
            Some(Fixtures::File(text))
        }
    };
    for name in raw.vars.keys().chain(raw.files.keys()) {
        anyhow::ensure!(is_name(name), "{name:?} is not a name (letters, digits, _)");
    }
    let mut steps = Vec::with_capacity(raw.step.len());
    let mut running: Vec<String> = Vec::new();
    for (i, s) in raw.step.into_iter().enumerate() {
        let st = step(s, catalog).with_context(|| format!("step {}", i + 1))?;
        if st.background {
            running.push(st.save_as.clone().unwrap_or_default());
        }
        if let Action::Await(name) = &st.action {
            let at = running.iter().position(|r| r == name).with_context(|| {
                format!(
                    "step {}: await {name:?}: no background step before it is named so",
                    i + 1
                )
            })?;
            running.remove(at);
        }
        steps.push(st);
    }
    anyhow::ensure!(
        running.is_empty(),
        "background steps never awaited: {}",
        running.join(", ")
    );
    Ok(Scenario {
        file: file.to_owned(),
        name: raw.name,
        description: raw.description,
        start,
        fixtures,
        vars: raw.vars,
        files: raw.files,
        steps,
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && !["rand", "files", "repeat_index"].contains(&s)
}

/// A step as the file gives it, checked: exactly one action, an expectation that fits it, and
/// how it runs (as, background, poll_ms, repeat).
fn step(mut s: RawStep, catalog: &Catalog) -> anyhow::Result<Step> {
    let kinds = [
        s.bank.is_some(),
        s.platform.is_some(),
        s.clock.is_some(),
        s.check.is_some(),
        s.wait_for.is_some(),
    ];
    anyhow::ensure!(
        kinds.iter().filter(|k| **k).count() == 1,
        "a step has exactly one of bank, platform, clock, check or await"
    );
    let (action, default_name) = action(&mut s, catalog)?;
    let expect = s.expect.unwrap_or_default();
    check_expect(&expect)?;
    let is_call = matches!(action, Action::Call { .. });
    if !is_call {
        anyhow::ensure!(
            expect.fields.is_empty() && s.save_as.is_none(),
            "expect.fields and as belong to bank or platform steps"
        );
    }
    if let Some(n) = &s.save_as {
        anyhow::ensure!(is_name(n), "as = {n:?} is not a name (letters, digits, _)");
    }
    if s.background {
        anyhow::ensure!(
            is_call && s.save_as.is_some(),
            "background belongs to a bank or platform step with `as` (the name to await)"
        );
        anyhow::ensure!(
            s.poll_ms.is_none() && s.repeat.is_none(),
            "a background step runs once: no poll_ms, no repeat"
        );
    }
    let poll_ms = s.poll_ms.unwrap_or(0);
    anyhow::ensure!(poll_ms <= POLL_MS_MAX, "poll_ms is at most {POLL_MS_MAX}");
    let repeat = s.repeat.unwrap_or(1);
    anyhow::ensure!(
        (1..=REPEAT_MAX).contains(&repeat),
        "repeat is 1 to {REPEAT_MAX}"
    );
    Ok(Step {
        name: s.name.unwrap_or(default_name),
        action,
        expect,
        save_as: s.save_as,
        poll_ms,
        repeat,
        background: s.background,
    })
}

/// The one action of a step (taken out of `s`) and its default name.
fn action(s: &mut RawStep, catalog: &Catalog) -> anyhow::Result<(Action, String)> {
    if let Some((node, method)) = s
        .bank
        .take()
        .map(|m| (Node::Bank, m))
        .or(s.platform.take().map(|m| (Node::Platform, m)))
    {
        return call(catalog.resolve(node, &method)?, s.request.take());
    }
    anyhow::ensure!(
        s.request.is_none(),
        "request belongs to a bank or platform step"
    );
    if let Some(name) = s.wait_for.take() {
        anyhow::ensure!(
            s.expect.is_none() && s.save_as.is_none() && s.poll_ms.is_none() && s.repeat.is_none(),
            "an await step takes only a name: the background step holds expect and as"
        );
        let label = format!("await {name}");
        return Ok((Action::Await(name), label));
    }
    if let Some(c) = s.clock.take() {
        let m = clock_move(c)?;
        let name = format!("clock {m:?}").to_lowercase();
        return Ok((Action::Clock(m), name));
    }
    let check = check(s.check.take().context("unreachable: a check step")?)?;
    let name = match &check {
        Check::Order { order_no, status } => format!("check order {order_no} {status}"),
        Check::SignUps { account, .. } => format!("check sign-ups of {account}"),
    };
    Ok((Action::Check(check), name))
}

/// A call of `rpc` with `request` (default: an empty message): a table, or an array of tables
/// for a client-streaming RPC.
fn call(rpc: Rpc, request: Option<Value>) -> anyhow::Result<(Action, String)> {
    let request = request.unwrap_or_else(|| Value::Object(Default::default()));
    let ok_shape = match &request {
        Value::Object(_) => true,
        Value::Array(items) => rpc.client_streaming() && items.iter().all(Value::is_object),
        _ => false,
    };
    anyhow::ensure!(
        ok_shape,
        "request is a table (an array of tables for the client-streaming {})",
        rpc.name()
    );
    let name = format!("{} {}", rpc.node.name(), rpc.name());
    Ok((Action::Call { rpc, request }, name))
}

/// A clock step's one move.
fn clock_move(c: RawClock) -> anyhow::Result<ClockMove> {
    let moves = [
        c.advance.is_some(),
        c.set.is_some(),
        c.cutover,
        c.resume,
        c.freeze,
    ];
    anyhow::ensure!(
        moves.iter().filter(|m| **m).count() == 1,
        "clock has exactly one of advance, set, cutover, resume or freeze"
    );
    Ok(if let Some(by) = c.advance {
        ClockMove::Advance(crate::names::parse_duration_ms(&by)?)
    } else if let Some(t) = c.set {
        ClockMove::Set(
            chrono::DateTime::parse_from_rfc3339(&t)
                .context("clock.set is not an RFC 3339 time")?
                .with_timezone(&Utc),
        )
    } else if c.cutover {
        ClockMove::Cutover
    } else if c.resume {
        ClockMove::Resume
    } else {
        ClockMove::Freeze
    })
}

/// A check step: an order's status on both sides, or an account's sign-ups.
fn check(c: RawCheck) -> anyhow::Result<Check> {
    Ok(match (c.order, c.signups) {
        (Some(order_no), None) => {
            anyhow::ensure!(c.count.is_none(), "count belongs to a signups check");
            let status = c.status.context("an order check names the status")?;
            anyhow::ensure!(
                ["CREATED", "AWAITING_CODE", "SUCCESS", "FAILED", "UNKNOWN"]
                    .contains(&status.as_str()),
                "status is one of CREATED, AWAITING_CODE, SUCCESS, FAILED or UNKNOWN"
            );
            Check::Order { order_no, status }
        }
        (None, Some(account)) => {
            anyhow::ensure!(c.status.is_none(), "status belongs to an order check");
            Check::SignUps {
                account,
                count: c.count,
            }
        }
        _ => anyhow::bail!("check has exactly one of order or signups"),
    })
}

/// An expectation that holds together: a gRPC code name (or ANY, alone); the refusal's keys
/// only with a refusal's status; an answer's fields only without one.
fn check_expect(expect: &Expect) -> anyhow::Result<()> {
    if let Some(code) = &expect.status {
        anyhow::ensure!(
            code == ANY_OUTCOME || crate::names::code_from_name(code).is_some(),
            "expect.status {code:?} is not a gRPC code name (OK, INVALID_ARGUMENT, …) or ANY"
        );
    }
    let refusal_keys = [
        &expect.reason,
        &expect.domain,
        &expect.field,
        &expect.message,
    ];
    let any = expect.status.as_deref() == Some(ANY_OUTCOME);
    anyhow::ensure!(
        !any || (expect.fields.is_empty() && refusal_keys.iter().all(|k| k.is_none())),
        "expect.status ANY takes any outcome: nothing else goes with it"
    );
    let refused = !any
        && expect
            .status
            .as_deref()
            .is_some_and(|c| crate::names::code_from_name(c) != Some(tonic::Code::Ok));
    anyhow::ensure!(
        refused || refusal_keys.iter().all(|k| k.is_none()),
        "expect.reason, domain, field and message describe a refusal: give its status too"
    );
    anyhow::ensure!(
        !refused || expect.fields.is_empty(),
        "expect.fields describe an answer; a refusal has none"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let c = Catalog::new().unwrap();
        format!("{:#}", parse(text, Path::new("t.toml"), &c).unwrap_err())
    }

    #[test]
    fn malformed_scenarios_say_what_is_wrong() {
        let head = "name = \"t\"\n[[step]]\n";
        assert!(err("name = \"t\"\n").contains("no [[step]]"));
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nplatform = \"PayService.GetOrder\"\n"
            ))
            .contains("exactly one of")
        );
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nbogus = 1\n"
            ))
            .contains("bogus")
        );
        assert!(err(&format!("{head}clock = {{ advance = \"1w\" }}\n")).contains("unknown unit"));
        assert!(
            err(&format!(
                "{head}clock = {{ cutover = true }}\nrequest = {{}}\n"
            ))
            .contains("request belongs to a bank or platform step")
        );
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nexpect = {{ reason = \"X\" }}\n"
            ))
            .contains("give its status too")
        );
        assert!(err(&format!(
            "{head}bank = \"BranchService.GetCard\"\nexpect = {{ status = \"NOT_FOUND\", fields = {{ a = 1 }} }}\n"
        ))
        .contains("a refusal has none"));
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nexpect = {{ status = \"NOPE\" }}\n"
            ))
            .contains("not a gRPC code name")
        );
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nbackground = true\nas = \"x\"\n"
            ))
            .contains("never awaited: x")
        );
        assert!(err(&format!("{head}await = \"x\"\n")).contains("no background step before it"));
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nas = \"rand\"\n"
            ))
            .contains("not a name")
        );
        assert!(
            err(&format!(
                "{head}bank = \"BranchService.GetCard\"\nrequest = [{{}}]\n"
            ))
            .contains("client-streaming")
        );
        assert!(
            err(&format!(
                "{head}check = {{ order = \"A\", status = \"PAID\" }}\n"
            ))
            .contains("status is one of")
        );
    }

    #[test]
    fn a_scenario_parses_whole() {
        let c = Catalog::new().unwrap();
        let s = parse(
            "name = \"t\"\nfixtures = \"demo\"\n[vars]\nx = 1\n[[step]]\nbank = \"BranchService.GetCard\"\nbackground = true\nas = \"card\"\n[[step]]\nclock = { advance = \"5m\" }\n[[step]]\nawait = \"card\"\n",
            Path::new("t.toml"),
            &c,
        )
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        assert!(s.steps[0].background);
        assert!(matches!(
            s.steps[1].action,
            Action::Clock(ClockMove::Advance(300_000))
        ));
        assert!(matches!(&s.steps[2].action, Action::Await(n) if n == "card"));
        assert_eq!(s.start.to_rfc3339(), "2031-03-03T02:00:00+00:00");
    }
}
