//! What a run found: a readable summary, JUnit XML and JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::expect::Mismatch;

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's seed (`--seed` repeats it).
    pub seed: u64,
    /// Scenarios at once.
    pub jobs: usize,
    /// The machine's cores.
    pub cores: usize,
    /// Wall time, milliseconds.
    pub ms: u64,
    /// Each scenario, in the order given.
    pub scenarios: Vec<ScenarioReport>,
}

/// One scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Its file.
    pub file: String,
    /// Its name.
    pub name: String,
    /// The run's seed.
    pub seed: u64,
    /// Whether every step came out as expected.
    pub passed: bool,
    /// Wall time, milliseconds, node start-up included.
    pub ms: u64,
    /// The steps that ran.
    pub steps: Vec<StepReport>,
    /// Why it failed.
    pub failure: Option<Failure>,
    /// Both nodes' feed events while it ran (protobuf JSON), when the run recorded them
    /// (`--html`); not part of the JSON report.
    #[serde(skip)]
    pub conversation: Vec<Value>,
}

/// One step that ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Wall time, milliseconds.
    pub ms: u64,
    /// How many times it ran (polling and repeated steps).
    pub tries: u32,
    /// Whether it came out as expected.
    pub passed: bool,
}

/// Why a scenario failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The failing step, 1-based; 0: before the first step (nodes, fixtures, vars).
    pub step: usize,
    /// Its name.
    pub step_name: String,
    /// What went wrong.
    pub message: String,
    /// Expected against actual.
    pub diff: Vec<Mismatch>,
    /// The answer or refusal as it came.
    pub actual: Option<Value>,
}

impl Failure {
    /// A failure before the first step.
    pub fn setup(message: String) -> Failure {
        Failure {
            step: 0,
            step_name: "setup".to_owned(),
            message,
            diff: Vec::new(),
            actual: None,
        }
    }
}

impl Report {
    /// Whether every scenario passed.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.passed)
    }

    /// How many failed.
    pub fn failed(&self) -> usize {
        self.scenarios.iter().filter(|s| !s.passed).count()
    }

    /// The summary `ibsim scenario run` prints: a line per scenario with its time, then each
    /// failure with its step and differences, then the totals.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            let mark = if s.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(
                out,
                "{mark} {:>6} ms  {:>3} steps  {}  ({})",
                s.ms,
                s.steps.len(),
                s.name,
                s.file
            );
        }
        for s in self.scenarios.iter().filter(|s| !s.passed) {
            let Some(f) = &s.failure else { continue };
            let _ = writeln!(out, "\n--- {} ({})", s.name, s.file);
            if f.step == 0 {
                let _ = writeln!(out, "    before the first step: {}", f.message);
            } else {
                let _ = writeln!(
                    out,
                    "    step {} \"{}\": {}",
                    f.step, f.step_name, f.message
                );
            }
            for m in &f.diff {
                let _ = writeln!(out, "    {}:", m.path);
                let _ = writeln!(out, "      - expected {}", m.expected);
                let _ = writeln!(
                    out,
                    "      + actual   {}",
                    m.actual.as_deref().unwrap_or("(nothing there)")
                );
            }
            if let Some(a) = &f.actual {
                let text = serde_json::to_string_pretty(a).unwrap_or_default();
                let _ = writeln!(out, "    answer:");
                for line in text.lines().take(40) {
                    let _ = writeln!(out, "      {line}");
                }
            }
            let _ = writeln!(
                out,
                "    seed {} (again: ibsim scenario run {} --seed {})",
                s.seed, s.file, s.seed
            );
        }
        let _ = writeln!(
            out,
            "\n{} scenarios: {} passed, {} failed in {} ms ({} at once on {} cores); seed {}",
            self.scenarios.len(),
            self.scenarios.len() - self.failed(),
            self.failed(),
            self.ms,
            self.jobs,
            self.cores,
            self.seed
        );
        out
    }

    /// JUnit XML: one test suite, a test case per scenario, its failure with the step and diff.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new("scenarios");
        suite.set_time(Duration::from_millis(self.ms));
        suite.add_property(Property::new("seed", self.seed.to_string()));
        for s in &self.scenarios {
            let status = match &s.failure {
                None => TestCaseStatus::success(),
                Some(f) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_message(format!("step {} ({}): {}", f.step, f.step_name, f.message))
                        .set_type("ScenarioFailure")
                        .set_description(failure_text(f, s.seed));
                    status
                }
            };
            let mut case = TestCase::new(s.name.as_str(), status);
            case.set_classname(s.file.as_str())
                .set_time(Duration::from_millis(s.ms));
            suite.add_test_case(case);
        }
        let mut report = quick_junit::Report::new("ibsim scenarios");
        report
            .set_time(Duration::from_millis(self.ms))
            .add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- the JUnit report could not be written: {e} -->\n"))
    }
}

/// A failed scenario's differences, one a line, and its seed.
fn failure_text(f: &Failure, seed: u64) -> String {
    let mut body = String::new();
    for m in &f.diff {
        let _ = writeln!(
            body,
            "{}: expected {}, actual {}",
            m.path,
            m.expected,
            m.actual.as_deref().unwrap_or("(nothing there)")
        );
    }
    let _ = writeln!(body, "seed {seed}");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_escapes_and_counts() {
        let r = Report {
            seed: 7,
            jobs: 2,
            cores: 2,
            ms: 1500,
            scenarios: vec![
                ScenarioReport {
                    file: "a.toml".into(),
                    name: "A & <B>\u{1b}[31m".into(),
                    seed: 7,
                    passed: true,
                    ms: 12,
                    steps: vec![],
                    failure: None,
                    conversation: vec![],
                },
                ScenarioReport {
                    file: "b.toml".into(),
                    name: "B".into(),
                    seed: 7,
                    passed: false,
                    ms: 1001,
                    steps: vec![],
                    failure: Some(Failure {
                        step: 3,
                        step_name: "pay \"now\"".into(),
                        message: "1 difference(s)".into(),
                        diff: vec![Mismatch::new("status", "OK", Some("NOT_FOUND".into()))],
                        actual: None,
                    }),
                    conversation: vec![],
                },
            ],
        };
        let x = r.junit();
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(
            x.contains("name=\"A &amp; &lt;B&gt;\" classname=\"a.toml\" time=\"0.012\""),
            "{x}"
        );
        assert!(!x.contains('\u{1b}'), "a control character in XML: {x:?}");
        assert!(
            x.contains("message=\"step 3 (pay &quot;now&quot;): 1 difference(s)\""),
            "{x}"
        );
        assert!(
            x.contains("status: expected OK, actual NOT_FOUND\nseed 7"),
            "{x}"
        );
        let s = r.summary();
        assert!(s.contains("step 3 \"pay \"now\"\""), "{s}");
        assert!(s.contains("ibsim scenario run b.toml --seed 7"), "{s}");
        assert!(s.contains("2 scenarios: 1 passed, 1 failed"), "{s}");
    }
}
