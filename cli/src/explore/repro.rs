//! A failing schedule made small and replayable: shrunk to the fewest steps that still break the
//! same promise, then written as a scenario file (docs/scenarios.md) that `ibsim scenario run`
//! replays. The replay states what the truth asks where the explorer knows it: every
//! confirmation of an order the bank paid, whose answers the run found untrue, must answer the
//! payment; both nodes must agree on every order at the end. Other calls take any outcome.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::ScheduleResult;
use super::ops::{CUSTOMERS, Code, Fault, Node, Op, Plan};

/// Runs of one candidate while shrinking (a race may need more than one to fail again).
const TRIES_PER_CANDIDATE: usize = 3;
/// Candidates tried at most while shrinking.
const CANDIDATES_MAX: usize = 200;

/// Whether `r` broke a promise `first` broke.
fn same_failure(first: &ScheduleResult, r: &ScheduleResult) -> bool {
    let broke: BTreeSet<&str> = first.violations.iter().map(|v| v.invariant).collect();
    r.violations.iter().any(|v| broke.contains(v.invariant))
}

/// Shrinks `plan` (which failed as `first` says): drops chunks of steps, halving the chunk, while
/// what is left still breaks the same promise. Returns the smallest plan found and its result.
pub async fn shrink(
    seed: u64,
    plan: Plan,
    first: &ScheduleResult,
    template: &super::world::Template,
    platforms: usize,
) -> (Plan, ScheduleResult) {
    let mut best = (plan, first.clone());
    let mut tried = 0;
    let mut chunk = best.0.ops.len().div_ceil(2).max(1);
    while chunk >= 1 && tried < CANDIDATES_MAX {
        let mut at = 0;
        let mut progressed = false;
        while at < best.0.ops.len() && tried < CANDIDATES_MAX {
            let mut candidate = best.0.clone();
            let end = (at + chunk).min(candidate.ops.len());
            candidate.ops.drain(at..end);
            tried += 1;
            let mut kept = None;
            for _ in 0..TRIES_PER_CANDIDATE {
                let r = super::run_schedule(seed, &candidate, template, platforms).await;
                if same_failure(first, &r) {
                    kept = Some(r);
                    break;
                }
            }
            match kept {
                Some(r) => {
                    best = (candidate, r);
                    progressed = true;
                }
                None => at += chunk,
            }
        }
        if !progressed {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    best
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Writes `plan`'s replay to `dir/explore-<seed>.toml`; the file's path.
pub fn write(dir: &Path, plan: &Plan, seen: &ScheduleResult) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("explore-{}.toml", seen.seed));
    std::fs::write(&path, scenario(plan, seen))?;
    Ok(path)
}

/// The scenario text of `plan`.
pub fn scenario(plan: &Plan, seen: &ScheduleResult) -> String {
    let mut w = Writer {
        out: String::new(),
        now: super::world::START.parse().expect("a time"),
        untrue: seen
            .violations
            .iter()
            .filter(|v| v.invariant == "every answer true")
            .filter_map(|v| v.order_no.clone())
            .collect(),
        paid: seen.paid.iter().cloned().collect(),
        orders: BTreeSet::new(),
        paid_so_far: Vec::new(),
        n: 0,
    };
    w.head(plan, seen);
    for (i, fen) in plan.limits.iter().enumerate().take(CUSTOMERS) {
        w.customer(i, *fen);
    }
    for op in &plan.ops {
        w.op(op);
    }
    w.settle();
    w.out
}

struct Writer {
    out: String,
    now: DateTime<Utc>,
    /// Orders some answer about which was untrue in the run.
    untrue: BTreeSet<String>,
    /// Orders the bank held as paid at the end of the run.
    paid: BTreeSet<String>,
    /// Orders the replay used.
    orders: BTreeSet<String>,
    /// Orders paid so far in the run (the bank held them paid at its end), with their amounts.
    paid_so_far: Vec<(String, i64)>,
    n: usize,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn step(&mut self, name: &str, body: &str) {
        let _ = write!(self.out, "\n[[step]]\nname = {}\n{body}\n", toml_str(name));
    }

    fn head(&mut self, plan: &Plan, seen: &ScheduleResult) {
        let _ = writeln!(
            self.out,
            "# Written by `ibsim explore` for the schedule of seed {} ({} steps).",
            seen.seed,
            plan.ops.len()
        );
        let _ = writeln!(self.out, "# What the run found:");
        for v in &seen.violations {
            let _ = writeln!(
                self.out,
                "#   {}: {}",
                v.invariant,
                v.detail.replace('\n', " ")
            );
        }
        self.line(&format!(
            "name = {}",
            toml_str(&format!("explore seed {}: {}", seen.seed, summary(seen)))
        ));
        self.line("description = \"A schedule the explorer found breaking a promise, shrunk and written as steps (docs/reliability.md).\"");
        self.line(&format!("start = \"{}\"", self.now.to_rfc3339()));
        self.line("\n[vars]");
        for i in 0..CUSTOMERS {
            self.line(&format!("id{i} = \"{{{{rand.resident_id}}}}\""));
            self.line(&format!("email{i} = \"x{i}-{{{{rand.hex}}}}@example.com\""));
            self.line(&format!("mobile{i} = \"{{{{rand.mobile}}}}\""));
        }
    }

    fn customer(&mut self, i: usize, fen: i64) {
        let name = ["探甲", "探乙", "探丙"][i % 3];
        self.step(
            &format!("customer {i}: a card with 1000.00"),
            &format!(
                "bank = \"BranchService.OpenCard\"\nrequest = {{ account_kind = \"ACCOUNT_KIND_CARD_ONLY\", holder_name = \"{name}\", id_type = \"ID_TYPE_RESIDENT_ID\", id_number = \"{{{{id{i}}}}}\", card_password = \"246810\", opening_deposit = \"1000.00\" }}\nas = \"card{i}\""
            ),
        );
        self.step(
            &format!("customer {i}: a platform account"),
            &format!(
                "platform = \"AccountService.Register\"\nrequest = {{ email = \"{{{{email{i}}}}}\", real_name = \"{name}\", login_password = \"explore-pass-1\", pay_password = \"135790\" }}"
            ),
        );
        self.sign_up(i, fen);
    }

    fn sign_up(&mut self, i: usize, fen: i64) {
        let name = ["探甲", "探乙", "探丙"][i % 3];
        self.n += 1;
        self.step(
            &format!("customer {i}: sign-up, limit {}", yuan(fen)),
            &format!(
                "bank = \"BranchService.SignUp\"\nrequest = {{ request_id = \"req{}-{{{{rand.hex}}}}\", platform_account = \"{{{{email{i}}}}}\", real_name = \"{name}\", id_type = \"ID_TYPE_RESIDENT_ID\", id_number = \"{{{{id{i}}}}}\", mobile = \"{{{{mobile{i}}}}}\", card_number = \"{{{{card{i}.card.card_number}}}}\", card_password = \"246810\", daily_limit = \"{}\" }}\nexpect = {{ status = \"ANY\" }}",
                self.n,
                yuan(fen)
            ),
        );
        self.login(i);
        self.step(
            &format!("customer {i}: activation"),
            &format!(
                "platform = \"AccountService.Activate\"\nrequest = {{ session_token = \"{{{{login{i}.session_token}}}}\", card_number = \"{{{{card{i}.card.card_number}}}}\" }}\nexpect = {{ status = \"ANY\" }}"
            ),
        );
    }

    fn login(&mut self, i: usize) {
        self.step(
            &format!("customer {i}: log in"),
            &format!(
                "platform = \"AccountService.Login\"\nrequest = {{ email = \"{{{{email{i}}}}}\", login_password = \"explore-pass-1\" }}\nas = \"login{i}\""
            ),
        );
    }

    fn start(&mut self, i: usize, order: &str, fen: i64, background: Option<&str>) {
        self.orders.insert(order.to_owned());
        let tail = match background {
            Some(name) => {
                format!("background = true\nas = \"{name}\"\nexpect = {{ status = \"ANY\" }}")
            }
            None => "expect = { status = \"ANY\" }".to_owned(),
        };
        self.step(
            &format!("customer {i}: start {order}, {}", yuan(fen)),
            &format!(
                "platform = \"PayService.StartPayment\"\nrequest = {{ session_token = \"{{{{login{i}.session_token}}}}\", order_no = \"{order}\", amount = \"{}\", pay_password = \"135790\" }}\n{tail}",
                yuan(fen)
            ),
        );
    }

    fn read_code(&mut self, i: usize, order: &str) {
        self.step(
            &format!("the code for {order}, from the phone"),
            &format!(
                "bank = \"SmsOutboxService.ListSms\"\nrequest = {{ mobile = \"{{{{mobile{i}}}}}\", limit = 1 }}\nas = \"sms_{order}\""
            ),
        );
    }

    /// Confirmations of `order` with `code` (a template); `racers` of them at once. Where the
    /// run found an answer about this paid order untrue, each must answer the payment.
    fn confirm(&mut self, i: usize, order: &str, code: &str, racers: usize, right: bool) {
        let expect = if right && self.untrue.contains(order) && self.paid.contains(order) {
            "expect.fields = { \"order.status\" = \"ORDER_STATUS_SUCCESS\" }"
        } else {
            "expect = { status = \"ANY\" }"
        };
        let call = format!(
            "platform = \"PayService.ConfirmPayment\"\nrequest = {{ session_token = \"{{{{login{i}.session_token}}}}\", order_no = \"{order}\", otp_code = \"{code}\" }}"
        );
        if racers == 1 {
            self.step(&format!("confirm {order}"), &format!("{call}\n{expect}"));
            return;
        }
        for r in 0..racers {
            self.step(
                &format!("confirm {order}, racer {}", r + 1),
                &format!("{call}\nbackground = true\nas = \"race_{order}_{r}\"\n{expect}"),
            );
        }
        for r in 0..racers {
            self.step(
                &format!("the answer to racer {} of {order}", r + 1),
                &format!("await = \"race_{order}_{r}\""),
            );
        }
    }

    fn clock(&mut self, name: &str, body: &str, to: DateTime<Utc>) {
        let before = shared::clock::business_date_of(self.now);
        self.step(name, &format!("clock = {{ {body} }}"));
        self.now = to;
        let after = shared::clock::business_date_of(self.now);
        if after != before {
            self.step(
                &format!("T+1 reconciliation of {before}"),
                &format!(
                    "platform = \"ReconOpsService.RunDayRecon\"\nrequest = {{ business_date = \"{before}\" }}\npoll_ms = 5000\nexpect = {{ status = \"OK\" }}"
                ),
            );
        }
    }

    /// Writes `op` as its replay step.
    ///
    /// Long: one arm per operation a schedule draws, each written as the step that replays it.
    fn op(&mut self, op: &Op) {
        match op {
            Op::Pay {
                order,
                customer: i,
                fen,
                code,
                racers,
            } => {
                let i = *i;
                self.login(i);
                self.start(i, order, *fen, None);
                self.read_code(i, order);
                let right = format!("{{{{sms_{order}.messages[0].otp_code}}}}");
                let wrong = format!("{{{{sms_{order}.messages[0].otp_code | shift_digits}}}}");
                match code {
                    Code::Right => {}
                    Code::WrongFirst => self.confirm(i, order, &wrong, 1, false),
                    Code::WrongThrice => {
                        for _ in 0..3 {
                            self.confirm(i, order, &wrong, 1, false);
                        }
                    }
                    Code::Expired => {
                        let to = self.now + chrono::Duration::minutes(6);
                        self.clock("six minutes later: the code expired", "advance = \"6m\"", to);
                    }
                }
                self.confirm(i, order, &right, *racers, *code == Code::Right);
                if self.paid.contains(order) {
                    self.paid_so_far.push((order.clone(), *fen));
                }
            }
            Op::StartTwice {
                order,
                customer: i,
                fen,
            } => {
                let i = *i;
                self.login(i);
                self.start(i, order, *fen, Some(&format!("st_{order}_a")));
                self.start(i, order, *fen, Some(&format!("st_{order}_b")));
                for side in ["a", "b"] {
                    self.step("a racing start's answer", &format!("await = \"st_{order}_{side}\""));
                }
                self.read_code(i, order);
                let right = format!("{{{{sms_{order}.messages[0].otp_code}}}}");
                self.confirm(i, order, &right, 1, true);
            }
            Op::ReusedCode {
                order,
                other,
                customer: i,
            } => {
                let i = *i;
                self.login(i);
                self.start(i, order, 100, None);
                self.read_code(i, order);
                self.start(i, other, 100, None);
                let code = format!("{{{{sms_{order}.messages[0].otp_code}}}}");
                self.confirm(i, other, &code, 1, false);
                self.confirm(i, order, &code, 1, true);
            }
            Op::Deposit { customer: i, fen } => self.step(
                &format!("customer {i}: deposit {}", yuan(*fen)),
                &format!(
                    "bank = \"BranchService.Deposit\"\nrequest = {{ card_number = \"{{{{card{i}.card.card_number}}}}\", amount = \"{}\" }}\nexpect = {{ status = \"ANY\" }}",
                    yuan(*fen)
                ),
            ),
            Op::ChangeLimit { customer: i, fen } => self.step(
                &format!("customer {i}: limit {}", yuan(*fen)),
                &format!(
                    "bank = \"BranchService.ChangeLimit\"\nrequest = {{ card_number = \"{{{{card{i}.card.card_number}}}}\", daily_limit = \"{}\" }}\nexpect = {{ status = \"ANY\" }}",
                    yuan(*fen)
                ),
            ),
            Op::ChangeMobile { customer: i } => self.step(
                &format!("customer {i}: a new mobile"),
                &format!(
                    "bank = \"BranchService.ChangeMobile\"\nrequest = {{ card_number = \"{{{{card{i}.card.card_number}}}}\", mobile = \"{{{{mobile{i}}}}}\" }}\nexpect = {{ status = \"ANY\" }}"
                ),
            ),
            Op::Resign { customer: i, fen } => {
                self.step(
                    &format!("customer {i}: cancel at the branch"),
                    &format!(
                        "bank = \"BranchService.CancelSignUp\"\nrequest = {{ card_number = \"{{{{card{i}.card.card_number}}}}\" }}\nexpect = {{ status = \"ANY\" }}"
                    ),
                );
                self.sign_up(*i, *fen);
            }
            Op::SignUpRefused { customer: i } => self.step(
                &format!("customer {i}: a sign-up under another name"),
                &format!(
                    "bank = \"BranchService.SignUp\"\nrequest = {{ request_id = \"bad-{{{{rand.hex}}}}\", platform_account = \"{{{{email{i}}}}}\", real_name = \"别人\", id_type = \"ID_TYPE_RESIDENT_ID\", id_number = \"{{{{id{i}}}}}\", mobile = \"{{{{mobile{i}}}}}\", card_number = \"{{{{card{i}.card.card_number}}}}\", card_password = \"246810\", daily_limit = \"100.00\" }}\nexpect = {{ status = \"ANY\" }}"
                ),
            ),
            Op::Query { customer: i } => {
                let i = *i;
                self.login(i);
                self.step(
                    &format!("customer {i}: balance"),
                    &format!(
                        "platform = \"PayService.GetBalance\"\nrequest = {{ session_token = \"{{{{login{i}.session_token}}}}\", pay_password = \"135790\" }}\nexpect = {{ status = \"ANY\" }}"
                    ),
                );
            }
            Op::Refund { .. } => self.refund(),
            Op::RealtimeRecon => self.step(
                "real-time reconciliation",
                "platform = \"ReconOpsService.RunRealtimeRecon\"\nexpect = { status = \"ANY\" }",
            ),
            Op::Advance { minutes } => {
                let to = self.now + chrono::Duration::minutes(*minutes);
                self.clock(
                    &format!("{minutes} minutes later"),
                    &format!("advance = \"{minutes}m\""),
                    to,
                );
            }
            Op::Cutover => {
                let to = shared::clock::next_cutover(self.now);
                self.clock("the day-end cutover", "cutover = true", to);
            }
            Op::Fault(f) => self.fault(*f),
            Op::Restart(node) => {
                // A scenario cannot kill a node; the restart is noted for the reader.
                let who = match node {
                    Node::Bank => "bank",
                    Node::Platform => "platform",
                };
                self.line(&format!(
                    "\n# The run killed and restarted the {who} here (the runner cannot)."
                ));
            }
        }
    }

    /// A batch with the line every explorer batch has, one fen over a paid order's amount, which
    /// must fail alone (REFUND_EXCEEDS_PAYMENT); the job; the result.
    fn refund(&mut self) {
        let Some((order, fen)) = self.paid_so_far.first().cloned() else {
            self.step(
                "the bank's refund job (no order was paid yet)",
                "bank = \"BatchJobService.RunRefundJob\"\nexpect = { status = \"ANY\" }",
            );
            return;
        };
        self.n += 1;
        let batch = format!("RB{}", self.n);
        self.step(
            &format!("a refund batch: {order} refunded one fen more than was paid"),
            &format!(
                "platform = \"RefundOpsService.CreateRefundBatch\"\nrequest = {{ batch_no = \"{batch}\", refunds = [{{ order_no = \"{order}\", amount = \"{}\" }}] }}\nexpect = {{ status = \"ANY\" }}",
                yuan(fen + 1)
            ),
        );
        self.step(
            "the bank's refund job",
            "bank = \"BatchJobService.RunRefundJob\"\nexpect = { status = \"ANY\" }",
        );
        self.step(
            &format!("the result of {batch}"),
            &format!(
                "platform = \"RefundOpsService.FetchRefundResult\"\nrequest = {{ batch_no = \"{batch}\" }}\nexpect = {{ status = \"ANY\" }}"
            ),
        );
        self.step(
            &format!("the over-refund of {order} failed alone"),
            &format!(
                "platform = \"RefundOpsService.ListRefunds\"\nrequest = {{ batch_no = \"{batch}\", failed_only = true }}\nexpect.fields = {{ refunds = [{{ order_no = \"{order}\", reason_code = \"REFUND_EXCEEDS_PAYMENT\" }}] }}"
            ),
        );
    }

    fn fault(&mut self, f: Fault) {
        let (node, rule) = match f {
            Fault::PayReplyDropped => (
                "platform",
                "side = \"FAULT_SIDE_CALLER\", method = \"Pay\", drop_reply = true",
            ),
            Fault::PayDeliveredTwice => (
                "platform",
                "side = \"FAULT_SIDE_CALLER\", method = \"Pay\", deliver_twice = true",
            ),
            Fault::PayDelayedPastTimeout => (
                "bank",
                "side = \"FAULT_SIDE_CALLEE\", method = \"Pay\", delay_ms = 6000",
            ),
            Fault::CodeRequestUnavailable => (
                "platform",
                "side = \"FAULT_SIDE_CALLER\", method = \"RequestPaymentCode\", fail = { code = 14 }",
            ),
            Fault::CancelLostWrite => (
                "platform",
                "side = \"FAULT_SIDE_CALLEE\", method = \"ConfirmCancel\", lose_write = true",
            ),
        };
        self.step(
            &format!("a fault for the next call: {f:?}"),
            &format!(
                "{node} = \"SimulatorService.AddFault\"\nrequest = {{ rule = {{ {rule}, first_n = 1 }} }}"
            ),
        );
    }

    /// Faults cleared, the clocks past every code and the grace window, reconciliation, the
    /// cutover; then both nodes agree on every order.
    fn settle(&mut self) {
        for node in ["bank", "platform"] {
            self.step(
                &format!("settle: the {node}'s fault rules cleared"),
                &format!("{node} = \"SimulatorService.ClearFaults\"\nrequest = {{}}"),
            );
        }
        let to = self.now + chrono::Duration::minutes(20);
        self.clock("settle: 20 minutes later", "advance = \"20m\"", to);
        self.step(
            "settle: real-time reconciliation",
            "platform = \"ReconOpsService.RunRealtimeRecon\"",
        );
        let to = shared::clock::next_cutover(self.now);
        self.clock("settle: the day-end cutover", "cutover = true", to);
        for order in self.orders.clone() {
            let status = if self.paid.contains(&order) {
                "SUCCESS"
            } else {
                "FAILED"
            };
            self.step(
                &format!("both institutions hold {order} as {status}"),
                &format!("check = {{ order = \"{order}\", status = \"{status}\" }}"),
            );
        }
    }
}

fn summary(seen: &ScheduleResult) -> String {
    let broke: BTreeSet<&str> = seen.violations.iter().map(|v| v.invariant).collect();
    broke.into_iter().collect::<Vec<_>>().join(", ")
}

/// A TOML basic string (JSON's string escapes are TOML's).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explore::{Violation, schedule};

    /// Every kind of step the explorer draws comes out as a scenario the runner takes.
    #[test]
    fn a_replay_of_any_schedule_is_a_scenario_the_runner_takes() {
        let catalog = crate::scenario::Catalog::new().unwrap();
        for seed in 0..40 {
            let plan = schedule(seed, 30);
            let seen = ScheduleResult {
                seed,
                tally: Default::default(),
                violations: vec![Violation {
                    invariant: "every answer true",
                    detail: "step 3: ConfirmPayment of S3 answered …\nsecond line".into(),
                    order_no: Some("S3".into()),
                }],
                error: None,
                paid: vec!["S3".into()],
                ms: 0,
            };
            let text = scenario(&plan, &seen);
            let parsed = crate::scenario::parse(&text, Path::new("replay.toml"), &catalog);
            assert!(parsed.is_ok(), "seed {seed}: {:?}\n{text}", parsed.err());
        }
    }

    #[test]
    fn a_confirmation_found_untrue_must_answer_the_payment_in_the_replay() {
        let plan = Plan {
            limits: [100_000, 100_000],
            ops: vec![Op::Pay {
                order: "S1".into(),
                customer: 0,
                fen: 60_000,
                code: Code::Right,
                racers: 2,
            }],
        };
        let seen = |untrue: bool| ScheduleResult {
            seed: 1,
            tally: Default::default(),
            violations: if untrue {
                vec![Violation {
                    invariant: "every answer true",
                    detail: String::new(),
                    order_no: Some("S1".into()),
                }]
            } else {
                Vec::new()
            },
            error: None,
            paid: vec!["S1".into()],
            ms: 0,
        };
        let strict = scenario(&plan, &seen(true));
        assert_eq!(
            strict.matches("ORDER_STATUS_SUCCESS").count(),
            2,
            "{strict}"
        );
        assert!(strict.contains("check = { order = \"S1\", status = \"SUCCESS\" }"));
        assert_eq!(
            scenario(&plan, &seen(false))
                .matches("ORDER_STATUS_SUCCESS")
                .count(),
            0
        );
    }
}
