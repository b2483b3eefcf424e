//! `ibsim up` as a script or CI job runs it, its output piped: the banner, and log lines that
//! carry no terminal colour codes (an ANSI escape in a log file is noise at best, and a way to
//! rewrite what a reader's terminal shows at worst).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn piped_output_has_the_banner_and_no_terminal_escapes() {
    let data = tempfile::tempdir().unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_ibsim"))
        .args(["up", "--data-dir"])
        .arg(data.path())
        .args([
            "--bank-listen",
            "127.0.0.1:0",
            "--platform-listen",
            "127.0.0.1:0",
            "--bank-metrics-listen",
            "127.0.0.1:0",
            "--platform-metrics-listen",
            "127.0.0.1:0",
            "--no-console",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The output up to the banner's last line (the demo data's loading logs come before it).
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
