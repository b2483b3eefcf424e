//! The whole scenario library, run on secured pairs (mutual TLS, signed interbank calls: every
//! log line a plain pair writes and the guard's too) with every log line of our crates captured
//! at TRACE, and the capture scanned for secrets: every card number, password and one-time code any scenario
//! sent or was answered (learnt through the runner's tap), the demo fixtures' ones, and any
//! unmasked card number of the bank's BIN at all.
//!
//! A test binary of its own: the capture is the process's one global subscriber.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use e2e_tests::capture::{self, stands_in};
use ibsim_cli::scenario::{self, Catalog, RunOptions, Tap, Target};
use serde_json::Value;

/// The bank's BIN: every card the simulator issues starts with it.
const BIN: &str = "622188";

/// Shorter values are not scanned for: they stand in log lines by chance (a count, a seq).
const SECRET_MIN_LEN: usize = 6;

/// Whether a protobuf-JSON field holds a secret: a password of any kind, a card number or a
/// one-time code.
fn secret_field(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    k.contains("password") || k == "cardnumber" || k == "otpcode"
}

/// Every secret in a JSON value, by field name.
fn collect(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::String(s) if secret_field(k) && s.len() >= SECRET_MIN_LEN => {
                        out.insert(s.clone());
                    }
                    _ => collect(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

/// Every unmasked run of digits starting with the BIN, 16 to 19 long, in `line`.
fn full_card_numbers(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let run = &line[start..i];
        let word_before = start > 0 && bytes[start - 1].is_ascii_alphanumeric();
        let word_after = i < bytes.len() && bytes[i].is_ascii_alphanumeric();
        if run.starts_with(BIN) && (16..=19).contains(&run.len()) && !word_before && !word_after {
            found.push(run);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_library_leaves_no_secret_in_the_logs() {
    let capture = capture::install();
    let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let tap = {
        let seen = seen.clone();
        Tap(Arc::new(move |request: &Value, answer: Option<&Value>| {
            let mut s = seen.lock().expect("secrets");
            collect(request, &mut s);
            if let Some(a) = answer {
                collect(a, &mut s);
            }
        }))
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files = scenario::find_files(&[repo.join("scenarios")]).expect("scenario files");
    let scenarios =
        scenario::load_all(&files, &Catalog::new().unwrap()).expect("every scenario parses");
    let count = scenarios.len();
    let credentials = tempfile::tempdir().unwrap();
    shared::security::certs::write_set(
        credentials.path(),
        false,
        shared::security::keys::Algorithm::Ed25519,
    )
    .unwrap();
    let report = scenario::run(
        scenarios,
        &RunOptions {
            target: Target::Fresh { database: None },
            jobs: 2,
            seed: 11,
            tap: Some(tap),
            credentials: Some(credentials.path().to_owned()),
            record: false,
        },
    )
    .await;
    assert_eq!(report.scenarios.len(), count);
    assert!(report.passed(), "{}", report.summary());

    let mut secrets = seen.lock().expect("secrets").clone();
    let demo: Value = serde_json::from_str(ibsim_cli::fixtures::DEMO).expect("demo fixtures");
    collect(&demo, &mut secrets);
    let kinds = |pred: fn(&str) -> bool| secrets.iter().filter(|s| pred(s)).count();
    // The run used secrets of every kind: card numbers, 6-digit codes and passwords, and
    // passwords with letters (login passwords).
    assert!(kinds(|s| s.starts_with(BIN)) >= 10, "{secrets:?}");
    assert!(
        kinds(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())) >= 10,
        "{secrets:?}"
    );
    assert!(
        kinds(|s| s.bytes().any(|b| b.is_ascii_alphabetic())) >= 3,
        "{secrets:?}"
    );

    let logs = capture.text();
    assert!(
        logs.lines().count() > 300 && logs.contains(&format!("{BIN}******")),
        "the capture holds the nodes' logs, cards masked: {} lines",
        logs.lines().count()
    );
    let mut leaks: Vec<(String, &str)> = Vec::new();
    for line in logs.lines() {
        for s in secrets.iter().filter(|s| stands_in(line, s)) {
            leaks.push((s.clone(), line));
        }
        for card in full_card_numbers(line) {
            leaks.push((card.to_owned(), line));
        }
    }
    leaks.truncate(20);
    assert!(
        leaks.is_empty(),
        "secrets in the logs of {count} scenarios: {leaks:#?}"
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    assert_eq!(
        full_card_numbers("card=6221880000000000019 x"),
        ["6221880000000000019"]
    );
    assert!(full_card_numbers("card=622188******0019").is_empty());
    assert!(full_card_numbers("seq=16221880000000000019").is_empty());
    assert!(full_card_numbers("6221880000").is_empty());
    let mut out = BTreeSet::new();
    collect(
        &serde_json::json!({
            "cardNumber": "6221880000000000019",
            "payPassword": "654321",
            "nested": [{"otpCode": "123456", "login_password": "pw-long-1"}],
            "orderNo": "ORDER-123456",
            "cardPassword": "12",
        }),
        &mut out,
    );
    assert_eq!(
        out.into_iter().collect::<Vec<_>>(),
        ["123456", "6221880000000000019", "654321", "pw-long-1"]
    );
}
