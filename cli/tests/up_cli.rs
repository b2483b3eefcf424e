//! `ibsim up` as a script or CI job runs it, its output piped: the banner, and log lines that
//! carry no terminal colour codes (an ANSI escape in a log file is noise at best, and a way to
//! rewrite what a reader's terminal shows at worst).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// `ibsim up` on any free ports, its data in `data`, with these flags more.
fn up(data: &std::path::Path, more: &[&str]) -> Command {
    let mut up = Command::new(env!("CARGO_BIN_EXE_ibsim"));
    up.args(["up", "--data-dir"]).arg(data).args([
        "--bank-listen",
        "127.0.0.1:0",
        "--platform-listen",
        "127.0.0.1:0",
        "--bank-metrics-listen",
        "127.0.0.1:0",
        "--platform-metrics-listen",
        "127.0.0.1:0",
        "--no-console",
    ]);
    up.args(more).env_remove("RUST_LOG");
    up
}

/// The output of `up` up to its banner's last line (the demo data's loading logs come before
/// it); `up` is killed then.
fn banner(mut up: Command) -> String {
    let mut up = up
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    for line in BufReader::new(up.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("Ctrl-C stops both nodes") {
            break;
        }
    }
    up.kill().unwrap();
    let _ = up.wait();
    out
}

#[test]
fn a_node_flag_given_to_up_reaches_that_node() {
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("elsewhere.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let out = banner(up(data.path(), &["--no-demo", "--bank-database-url", &url]));
    assert!(out.contains("elsewhere.db"), "{out}");
    assert!(db.exists(), "the bank made its database where it was told");
}

#[test]
fn a_node_flag_out_of_its_range_is_refused_by_up_as_by_the_node() {
    let data = tempfile::tempdir().unwrap();
    for (flag, value) in [
        ("--platform-recon-grace-secs", "10"),
        ("--bank-refund-chunk-lines", "2001"),
    ] {
        let out = up(data.path(), &[flag, value]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains(value), "{err}");
    }
}

#[test]
fn piped_output_has_the_banner_and_no_terminal_escapes() {
    let data = tempfile::tempdir().unwrap();
    let out = banner(up(data.path(), &[]));
    assert!(out.contains("interbank-sim is up"), "{out}");
    assert!(
        out.contains(" INFO "),
        "log lines are part of what was read: {out}"
    );
    assert!(
        !out.contains('\u{1b}'),
        "a terminal escape in piped output: {out:?}"
    );
}
