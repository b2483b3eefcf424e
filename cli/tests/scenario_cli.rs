//! `ibsim scenario` as a CI pipeline calls it: exit codes, the summary, JUnit and JSON files.

use std::path::Path;
use std::process::Command;

fn ibsim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ibsim"));
    // Scenarios must run on fresh pairs here, whatever the caller's environment names.
    c.env_remove("IBSIM_BANK_URL")
        .env_remove("IBSIM_PLATFORM_URL");
    c
}

const PASSING: &str = r#"
name = "the demo card's balance"
fixtures = "demo"

[[step]]
bank = "BranchService.GetCard"
request = { card_number = "6221880000000000019" }
expect.fields = { "card.balance" = "10000.00" }
"#;

const FAILING: &str = r#"
name = "a wrong expectation"
fixtures = "demo"

[[step]]
name = "the balance is not 1.00"
bank = "BranchService.GetCard"
request = { card_number = "6221880000000000019" }
expect.fields = { "card.balance" = "1.00" }
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn run_exits_0_only_when_every_scenario_passes_and_writes_junit_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", PASSING);
    write(dir.path(), "bad.toml", FAILING);
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("report.json");

    let out = ibsim()
        .args(["scenario", "run"])
        .arg(&good)
        .arg("--seed")
        .arg("7")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("1 scenarios: 1 passed, 0 failed"),
        "{stdout}"
    );

    let out = ibsim()
        .args(["scenario", "run"])
        .arg(dir.path())
        .args(["--seed", "7", "--junit"])
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("step 1 \"the balance is not 1.00\""),
        "{stdout}"
    );
    assert!(stdout.contains("+ actual   \"10000.00\""), "{stdout}");
    assert!(stdout.contains("--seed 7"), "{stdout}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["seed"], 7);
    let passed: Vec<bool> = j["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(
        passed,
        [false, true],
        "files in name order: bad.toml, good.toml"
    );
}

#[test]
fn html_holds_each_scenario_its_failure_and_its_conversation_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.toml", FAILING);
    write(dir.path(), "good.toml", PASSING);
    let html = dir.path().join("report.html");
    let out = ibsim()
        .args(["scenario", "run"])
        .arg(dir.path())
        .args(["--seed", "7", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(&html).unwrap();
    // One file: the renderer and the data inline, nothing to fetch.
    assert!(
        !page.contains("src=") && !page.contains("href=\"/"),
        "{page}"
    );
    assert!(
        page.contains("class Diagram"),
        "the console's renderer is inline"
    );
    let start = page.find("id=\"report-data\">").unwrap() + "id=\"report-data\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
    let names: Vec<&str> = data["report"]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a wrong expectation", "the demo card's balance"]);
    assert_eq!(
        data["report"]["scenarios"][0]["failure"]["diff"][0]["actual"],
        "\"10000.00\""
    );
    // Each scenario's conversation: its one call, as the bank's feed told it, and its answer.
    for c in data["conversations"].as_array().unwrap() {
        let told: Vec<(&str, &str)> = c
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let node = e["node"].as_str()?;
                let what = e["call"]["method"].as_str().or_else(|| {
                    e["answer"]["code"]
                        .as_str()
                        .or(e.get("answer").map(|_| "OK"))
                })?;
                Some((node, what))
            })
            .collect();
        assert_eq!(told, [("bank", "GetCard"), ("bank", "OK")], "{c}");
    }
}

#[test]
fn check_names_the_file_and_step_of_a_malformed_scenario_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(
        dir.path(),
        "broken.toml",
        "name = \"x\"\n[[step]]\nbank = \"BranchService.SigUp\"\n",
    );
    let out = ibsim()
        .args(["scenario", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("broken.toml: step 1"), "{stderr}");
    assert!(stderr.contains("has no RPC \"SigUp\""), "{stderr}");

    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = ibsim()
        .args(["scenario", "check"])
        .arg(&library)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn named_nodes_that_do_not_answer_fail_the_scenario_not_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", PASSING);
    // Nothing listens on port 1: the run is against running nodes because --bank was given.
    let out = ibsim()
        .args([
            "--bank",
            "http://127.0.0.1:1",
            "--platform",
            "http://127.0.0.1:1",
        ])
        .args(["scenario", "run"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("before the first step: cannot start the nodes"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cannot reach http://127.0.0.1:1"),
        "{stdout}"
    );
}
