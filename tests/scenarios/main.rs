//! The scenario library (`scenarios/`), run through the scenario runner on both backends; what
//! the runner reports when a scenario fails; scenarios against nodes already running; and the
//! library's coverage of every refusal reason `docs/errors.md` names.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ibsim_cli::scenario::{self, Catalog, RunOptions, Scenario, Target};
use pair::{PairConfig, RunningPair};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn library() -> Vec<Scenario> {
    let files = scenario::find_files(&[repo().join("scenarios")]).expect("scenario files");
    scenario::load_all(&files, &Catalog::new().unwrap()).expect("every scenario parses")
}

/// `IBSIM_SCENARIO_SEED` repeats a run; otherwise a new seed, printed with any failure.
fn seed() -> u64 {
    std::env::var("IBSIM_SCENARIO_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// Runs the library on fresh pairs; `secured`: with mutual TLS and signed interbank calls (the
/// runner connects over TLS and signs as the peer institution, so a plain pair would fail every
/// scenario at its start).
async fn run_library(database: Option<String>, secured: bool) {
    let scenarios = library();
    let count = scenarios.len();
    let dir = tempfile::tempdir().unwrap();
    if secured {
        shared::security::certs::write_set(
            dir.path(),
            false,
            shared::security::keys::Algorithm::Ed25519,
        )
        .unwrap();
    }
    let opts = RunOptions {
        target: Target::Fresh { database },
        jobs: 2,
        seed: seed(),
        tap: None,
        credentials: secured.then(|| dir.path().to_owned()),
        record: false,
    };
    let report = scenario::run(scenarios, &opts).await;
    println!("{}", report.summary());
    assert_eq!(report.scenarios.len(), count);
    assert!(report.passed(), "{}", report.summary());
    assert!(
        report
            .scenarios
            .iter()
            .all(|s| !s.steps.is_empty() && s.steps.iter().all(|st| st.passed)),
        "every step of every scenario ran and passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_passes_on_sqlite() {
    run_library(None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_passes_on_postgres() {
    if let Some(base) = e2e_tests::postgres_server().await {
        run_library(Some(base), false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_passes_on_a_secured_pair_sqlite() {
    run_library(None, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_passes_on_a_secured_pair_postgres() {
    if let Some(base) = e2e_tests::postgres_server().await {
        run_library(Some(base), true).await;
    }
}

const FAILING: &str = r#"
name = "a scenario that expects the wrong balance"
fixtures = "demo"

[vars]
who = "{{rand.hex}}"

[[step]]
name = "the card"
bank = "BranchService.GetCard"
request = { card_number = "6221880000000000019" }

[[step]]
name = "the wrong balance"
bank = "BranchService.GetCard"
request = { card_number = "6221880000000000019" }
expect.fields = { "card.balance" = "1.00", "card.holder_name" = "张三" }

[[step]]
name = "never reached"
bank = "BranchService.GetCard"
request = { card_number = "6221880000000000019" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scenario_reports_its_step_the_difference_and_the_seed() {
    let sc = scenario::parse(FAILING, Path::new("failing.toml"), &Catalog::new().unwrap())
        .expect("parses");
    let opts = RunOptions {
        target: Target::Fresh { database: None },
        jobs: 1,
        seed: 42,
        tap: None,
        credentials: None,
        record: false,
    };
    let report = scenario::run(vec![sc], &opts).await;
    assert!(!report.passed());
    let s = &report.scenarios[0];
    assert_eq!(s.steps.len(), 2, "the run stops at the failing step");
    assert_eq!((s.steps[0].passed, s.steps[1].passed), (true, false));
    let f = s.failure.as_ref().expect("a failure");
    assert_eq!((f.step, f.step_name.as_str()), (2, "the wrong balance"));
    assert_eq!(f.diff.len(), 1, "only the balance differs: {:?}", f.diff);
    assert_eq!(f.diff[0].path, "card.balance");
    assert_eq!(f.diff[0].expected, "\"1.00\"");
    assert_eq!(f.diff[0].actual.as_deref(), Some("\"10000.00\""));
    let summary = report.summary();
    assert!(summary.contains("FAIL"), "{summary}");
    assert!(summary.contains("--seed 42"), "{summary}");
    let junit = report.junit();
    assert!(junit.contains("tests=\"1\" failures=\"1\""), "{junit}");
    assert!(
        junit.contains("card.balance: expected &quot;1.00&quot;, actual &quot;10000.00&quot;"),
        "{junit}"
    );
    let json: Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(json["seed"], 42);
    assert_eq!(json["scenarios"][0]["failure"]["step"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_run_against_nodes_already_running_one_after_another() {
    against_running_nodes("sign-up/happy-path.toml", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_nodes_after_a_reset_number_payments_and_keep_time_as_new_ones() {
    // The second run of each finds the nodes as the first left them, then reset: the real-time
    // pull must count the bank's payments from 1 again, and the clock read at the first step
    // must be the scenario's start to the nanosecond.
    against_running_nodes("recon/realtime.toml", false).await;
    against_running_nodes("simulator/controls.toml", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_run_against_secured_nodes_already_running() {
    // This one plays the bank towards the platform (PlatformLinkService.ConfirmSignUp): the
    // runner signs those steps with the bank's key from the nodes' credentials.
    against_running_nodes("sign-up/platform-down.toml", true).await;
    against_running_nodes("sign-up/happy-path.toml", true).await;
}

async fn against_running_nodes(file: &str, secured: bool) {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("security");
    let mut cfg = PairConfig::local(
        "sqlite::memory:".into(),
        "sqlite::memory:".into(),
        dir.path(),
    );
    if secured {
        shared::security::certs::write_set(
            &credentials,
            false,
            shared::security::keys::Algorithm::Ed25519,
        )
        .unwrap();
        cfg = cfg.secured(shared::security::SecurityArgs {
            tls_dir: Some(credentials.clone()),
            sign_dir: Some(credentials.clone()),
        });
    }
    let pair = RunningPair::start(&cfg).await.unwrap();
    assert_eq!(pair.bank_url().starts_with("https://"), secured);
    let sc = scenario::load(
        &repo().join("scenarios").join(file),
        &Catalog::new().unwrap(),
    )
    .unwrap();
    let opts = RunOptions {
        target: Target::Running {
            bank: pair.bank_url(),
            platform: pair.platform_url(),
            reset: true,
        },
        jobs: 4,
        seed: seed(),
        tap: None,
        credentials: secured.then_some(credentials),
        record: false,
    };
    // The same scenario twice on the same nodes: each run starts from a reset, so the second
    // finds the card free to sign up again.
    let report = scenario::run(vec![sc.clone(), sc], &opts).await;
    assert_eq!(report.jobs, 1, "running nodes take one scenario at a time");
    assert!(report.passed(), "{}", report.summary());
    pair.stop().await.unwrap();
}

/// Reasons no scenario reaches through the public RPCs, and why; each is named in docs/errors.md.
const NOT_REACHABLE: &[(&str, &str)] = &[
    (
        "BALANCE_TOO_LARGE",
        "a balance past 99999999999.99 takes 100,000 deposits of the largest amount",
    ),
    (
        "STREAM_BROKEN",
        "a client whose upload stream breaks off; the runner's streams always end",
    ),
    (
        "BANK_ANSWER_INVALID",
        "a bank that answers malformed fields; fault rules delay, fail, drop or repeat, never corrupt",
    ),
    (
        "FILE_CORRUPT",
        "a day file that does not match its hash: as above",
    ),
    (
        "RESULT_CORRUPT",
        "a result file that does not match its hash: as above",
    ),
    ("INTERNAL", "a fault of a node's own"),
    (
        "MESSAGE_TOO_LARGE",
        "a message over 4 MiB; the runner's fields are bounded far below, tests/e2e/edges sends one",
    ),
    // The library runs on plain pairs (no TLS, no signing); tests/security reaches these.
    ("CLIENT_CERT_REQUIRED", SECURED),
    ("CLIENT_CERT_NOT_PEER", SECURED),
    ("SIGNATURE_MISSING", SECURED),
    ("SIGNATURE_MALFORMED", SECURED),
    ("SIGNER_UNKNOWN", SECURED),
    ("SIGNATURE_INVALID", SECURED),
    ("TIMESTAMP_OUT_OF_WINDOW", SECURED),
    ("NONCE_REUSED", SECURED),
    ("RESPONSE_UNVERIFIED", SECURED),
    ("ROLE_CERT_REQUIRED", SECURED),
    ("ROLE_NOT_ALLOWED", SECURED),
];

/// Why the interbank security reasons are exempt.
const SECURED: &str = "only a secured link refuses so; the library runs on plain pairs and tests/security attacks a secured one";

/// Every upper-snake reason `docs/errors.md` names in backquotes (tables and prose).
fn documented_reasons() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repo().join("docs/errors.md")).unwrap();
    let mut out = BTreeSet::new();
    for part in doc.split('`').skip(1).step_by(2) {
        let is_reason = part.len() > 2
            && part.starts_with(|c: char| c.is_ascii_uppercase())
            && part
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && (part.contains('_') || part == "INTERNAL");
        if is_reason {
            out.insert(part.to_owned());
        }
    }
    out
}

fn strings_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        Value::Object(map) => map.values().for_each(|i| strings_in(i, out)),
        _ => {}
    }
}

#[test]
fn every_refusal_reason_in_the_docs_is_reached_by_a_scenario() {
    let documented = documented_reasons();
    assert!(documented.len() > 100, "{documented:?}");
    let mut reached = BTreeSet::new();
    for sc in library() {
        for step in &sc.steps {
            reached.extend(step.expect.reason.clone());
            for v in step.expect.fields.values() {
                strings_in(v, &mut reached);
            }
        }
    }
    let exempt: BTreeSet<String> = NOT_REACHABLE.iter().map(|(r, _)| r.to_string()).collect();
    let missing: Vec<_> = documented
        .iter()
        .filter(|r| !reached.contains(*r) && !exempt.contains(*r))
        .collect();
    assert!(missing.is_empty(), "no scenario expects {missing:?}");
    for r in &exempt {
        assert!(
            documented.contains(r),
            "{r} is exempt but not in docs/errors.md"
        );
        assert!(
            !reached.contains(r),
            "{r} is reached now: take it off NOT_REACHABLE"
        );
    }
}
