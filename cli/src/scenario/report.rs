//! What a run found: a readable summary, JUnit XML and JSON.

use std::fmt::Write as _;

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
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"ibsim scenarios\" tests=\"{}\" failures=\"{}\" time=\"{}\">",
            self.scenarios.len(),
            self.failed(),
            secs(self.ms)
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"scenarios\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{}\">",
            self.scenarios.len(),
            self.failed(),
            secs(self.ms)
        );
        let _ = writeln!(
            out,
            "    <properties><property name=\"seed\" value=\"{}\"/></properties>",
            self.seed
        );
        for s in &self.scenarios {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                xml(&s.file),
                xml(&s.name),
                secs(s.ms)
            );
            match &s.failure {
                None => out.push_str("/>\n"),
                Some(f) => {
                    out.push_str(">\n");
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
                    let _ = writeln!(body, "seed {}", s.seed);
                    let _ = writeln!(
                        out,
                        "      <failure message=\"step {} ({}): {}\" type=\"ScenarioFailure\">{}</failure>",
                        f.step,
                        xml(&f.step_name),
                        xml(&f.message),
                        xml(&body)
                    );
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
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
                    name: "A & <B>".into(),
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
            x.contains("name=\"A &amp; &lt;B&gt;\" time=\"0.012\"/>"),
            "{x}"
        );
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
