//! The report of a run: the goals checked for the parts that ran, and the table printed.

use std::fmt::Write as _;

use super::*;

/// KiB as MiB with one decimal.
pub(super) fn mib(kib: u64) -> String {
    format!("{}.{} MiB", kib / 1024, kib % 1024 * 10 / 1024)
}

/// The goals of a part that runs at two sizes: the rate at the larger, and each node's peak
/// memory at the larger, absolute and against the smaller.
pub(super) fn scale_goals(part: &str, runs: &[ScaleRun], rate_min: u64, unit: &str) -> Vec<Goal> {
    let (Some(small), Some(large)) = (runs.first(), runs.last()) else {
        return Vec::new();
    };
    let peak = |r: &ScaleRun| r.bank_peak_kib.max(r.platform_peak_kib);
    // Within 20% of the figure at the smaller size, for each node.
    let flat = |a: u64, b: u64| a * 5 <= b * 6;
    vec![
        Goal {
            name: format!("{part}: {unit}/s at {}", large.records),
            goal: format!(">= {rate_min}"),
            measured: large.per_sec.to_string(),
            met: large.per_sec >= rate_min,
        },
        Goal {
            name: format!("{part}: peak memory per node at {}", large.records),
            goal: "<= 150 MiB".into(),
            measured: format!(
                "bank {}, platform {}",
                mib(large.bank_peak_kib),
                mib(large.platform_peak_kib)
            ),
            met: peak(large) <= 150 * 1024,
        },
        Goal {
            name: format!(
                "{part}: peak memory, {} against {}",
                large.records, small.records
            ),
            goal: "within 20%".into(),
            measured: format!(
                "bank {} against {}, platform {} against {}",
                mib(large.bank_peak_kib),
                mib(small.bank_peak_kib),
                mib(large.platform_peak_kib),
                mib(small.platform_peak_kib)
            ),
            met: flat(large.bank_peak_kib, small.bank_peak_kib)
                && flat(large.platform_peak_kib, small.platform_peak_kib),
        },
    ]
}

/// Part 1's goals: what the node's stack costs against the bare limit.
fn stack_goals(r: &BenchReport) -> Vec<Goal> {
    let (Some(cost), Some(echo)) = (r.stack_cost_permille, &r.echo) else {
        return Vec::new();
    };
    vec![
        Goal {
            name: "the stack's cost, echo calls/s short of bare".into(),
            goal: "<= 10%".into(),
            measured: format!("{}.{}%", cost / 10, cost % 10),
            met: cost <= 100,
        },
        Goal {
            name: "echo p99 through the stack".into(),
            goal: "<= 5 ms".into(),
            measured: format!("{}.{:03} ms", echo.p99_us / 1000, echo.p99_us % 1000),
            met: echo.p99_us <= 5_000,
        },
    ]
}

pub(super) fn goals(r: &BenchReport) -> Vec<Goal> {
    let ms = |us: u64| format!("{}.{:03} ms", us / 1000, us % 1000);
    let mut goals = stack_goals(r);
    if let (Some(permille), Some(payments), Some(inv)) = (
        r.payments_per_bare_echo_permille,
        &r.payments,
        &r.invariants,
    ) {
        let violations = inv.over_limit + inv.money_not_conserved + inv.orders_disagreeing;
        goals.extend([
            Goal {
                name: "payments/s against bare echo calls/s".into(),
                goal: ">= 0.100".into(),
                measured: format!("{}.{:03}", permille / 1000, permille % 1000),
                met: permille >= 100,
            },
            Goal {
                name: "payment p99 at 64 in flight".into(),
                goal: "<= 25 ms".into(),
                measured: ms(payments.p99_us),
                met: payments.p99_us <= 25_000,
            },
            Goal {
                name: "payments with a console watching".into(),
                goal: ">= 90% of without".into(),
                measured: r
                    .payments_watched_permille
                    .map_or("not run".into(), |w| format!("{}.{}%", w / 10, w % 10)),
                met: r.payments_watched_permille.is_some_and(|w| w >= 900),
            },
            Goal {
                name: "invariant violations".into(),
                goal: "0".into(),
                measured: violations.to_string(),
                met: violations == 0,
            },
        ]);
    }
    goals.extend(scale_goals("batch refund", &r.refunds, 100_000, "lines"));
    goals.extend(scale_goals("reconciliation", &r.recon, 200_000, "orders"));
    if let Some(startup) = &r.startup {
        goals.extend([
            Goal {
                name: "start-up to both serving".into(),
                goal: "<= 300 ms".into(),
                measured: format!("{} ms", startup.both_serving_ms),
                met: startup.both_serving_ms <= 300,
            },
            Goal {
                name: "idle memory per node".into(),
                goal: "<= 30 MiB".into(),
                measured: format!(
                    "bank {}, platform {}",
                    mib(startup.bank_idle_kib),
                    mib(startup.platform_idle_kib)
                ),
                met: startup.bank_idle_kib.max(startup.platform_idle_kib) <= 30 * 1024,
            },
        ]);
    }
    goals
}

/// Microseconds as milliseconds with one decimal.
fn tenths_of_ms(us: u64) -> String {
    format!("{}.{:01}", us / 1000, us % 1000 / 100)
}

impl BenchReport {
    /// A report of a run about to start: what it runs and on what; no figures yet.
    pub(super) fn before(opts: &BenchOptions) -> BenchReport {
        BenchReport {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            optimized: !cfg!(debug_assertions),
            quick: opts.quick,
            database: if opts.database.is_some() {
                "postgres"
            } else {
                "sqlite"
            }
            .to_owned(),
            secure: opts.secure,
            parts: [
                Part::Echo,
                Part::Payments,
                Part::Refunds,
                Part::Recon,
                Part::Startup,
            ]
            .into_iter()
            .filter(|p| opts.runs(*p))
            .collect(),
            echo: None,
            echo_bare: None,
            stack_cost_permille: None,
            payments: None,
            payments_in_flight: 0,
            payments_open_loop: None,
            payments_watched: Vec::new(),
            payments_watched_permille: None,
            open_loop_rate: 0,
            invariants: None,
            server_time: Vec::new(),
            payment_cpu_us: None,
            payment_cost: Vec::new(),
            payments_per_echo_permille: None,
            payments_per_bare_echo_permille: None,
            refunds: Vec::new(),
            recon: Vec::new(),
            startup: None,
            goals: Vec::new(),
        }
    }

    /// The table `ibsim bench` prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        self.write_heading(&mut out);
        self.write_rates(&mut out);
        self.write_payment_details(&mut out);
        self.write_scale(&mut out);
        self.write_goals(&mut out);
        out
    }

    /// What ran, on what.
    fn write_heading(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "ibsim bench ({}{}, {} cores, {}{})",
            self.database,
            if self.secure {
                ", parts 1-2 secured"
            } else {
                ""
            },
            self.cores,
            if self.optimized {
                "release build"
            } else {
                "DEBUG build: figures not representative"
            },
            if self.quick { ", quick" } else { "" }
        );
    }

    /// Parts 1 and 2: calls a second and latencies.
    fn write_rates(&self, out: &mut String) {
        if self.echo.is_some() {
            let _ = writeln!(
                out,
                "{:<44} {:>9} {:>10} {:>10} {:>7}",
                "part", "ops/s", "p50 ms", "p99 ms", "errors"
            );
        }
        let closed = format!(
            "2. payments, closed loop, {} in flight",
            self.payments_in_flight
        );
        for (name, r) in [
            (
                "1. echo, bare tonic (the limit), 64 in flight",
                &self.echo_bare,
            ),
            ("1. echo through a node's stack, 64 in flight", &self.echo),
            (closed.as_str(), &self.payments),
            ("2. payments, open loop", &self.payments_open_loop),
        ] {
            let Some(r) = r else { continue };
            let _ = writeln!(
                out,
                "{name:<44} {:>9} {:>10} {:>10} {:>7}",
                r.per_sec,
                tenths_of_ms(r.p50_us),
                tenths_of_ms(r.p99_us),
                r.errors
            );
        }
    }

    /// Part 2's details: the open loop, the console watching, the invariants, the server time.
    fn write_payment_details(&self, out: &mut String) {
        if let (Some(permille), Some(i)) = (self.payments_per_echo_permille, &self.invariants) {
            let _ = writeln!(
                out,
                "   open loop at {} payments/s; payments/echo = {}.{:03}; CPU per payment {} µs",
                self.open_loop_rate,
                permille / 1000,
                permille % 1000,
                self.payment_cpu_us.unwrap_or(0)
            );
            if let (Some(bare), Some(cost)) = (
                self.payments_per_bare_echo_permille,
                self.stack_cost_permille,
            ) {
                let _ = writeln!(
                    out,
                    "   against the bare echo: payments/echo = {}.{:03}; the stack costs {}.{}% of the echo calls",
                    bare / 1000,
                    bare % 1000,
                    cost / 10,
                    cost % 10
                );
            }
            if let Some(w) = self.payments_watched_permille {
                let _ = writeln!(
                    out,
                    "   with a console watching: {}.{}% of the payments without, over {} rounds (payments/s, p99 ms):",
                    w / 10,
                    w % 10,
                    self.payments_watched.len()
                );
                for (i, r) in self.payments_watched.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "     round {}: without {} ({}), watched {} ({}); the page: {} events, {} record reads; CPU µs a payment, load/bank/platform: without {}, watched {}",
                        i + 1,
                        r.without.per_sec,
                        tenths_of_ms(r.without.p99_us),
                        r.with.per_sec,
                        tenths_of_ms(r.with.p99_us),
                        r.events,
                        r.world_reads,
                        slashed(r.cpu_us_without),
                        slashed(r.cpu_us_with)
                    );
                }
            }
            let _ = writeln!(
                out,
                "   invariants: {} over limit, {} money not conserved, {} orders disagreeing",
                i.over_limit, i.money_not_conserved, i.orders_disagreeing
            );
            self.write_payment_cost(out);
            let _ = writeln!(out, "   server time per payment part RPC (mean ms, count):");
            for t in &self.server_time {
                let _ = writeln!(
                    out,
                    "     {:<9} {:<20} {:>8} {:>9}",
                    t.node,
                    t.rpc,
                    tenths_of_ms(t.mean_us),
                    t.count
                );
            }
        }
    }

    /// What a payment of the closed loop cost each process and each node's database.
    fn write_payment_cost(&self, out: &mut String) {
        if self.payment_cost.is_empty() {
            return;
        }
        let tenths = |milli: u64| format!("{}.{}", milli / 1000, milli % 1000 / 100);
        let maybe = |milli: Option<u64>| milli.map_or_else(|| "-".to_owned(), tenths);
        let percent = |permille: Option<u64>| {
            permille.map_or_else(|| "-".to_owned(), |p| format!("{}.{}%", p / 10, p % 10))
        };
        let _ = writeln!(
            out,
            "   a payment's cost (closed loop): {:<9} {:>7} {:>9} {:>9} {:>6} {:>6} {:>5} {:>12} {:>11} {:>11}",
            "process",
            "CPU µs",
            "switches",
            "I/O calls",
            "reads",
            "writes",
            "txns",
            "writer trips",
            "writer wait",
            "writer busy"
        );
        for c in &self.payment_cost {
            let _ = writeln!(
                out,
                "                                   {:<9} {:>7} {:>9} {:>9} {:>6} {:>6} {:>5} {:>12} {:>11} {:>11}",
                c.process,
                c.cpu_us,
                tenths(c.context_switches_milli),
                tenths(c.io_calls_milli),
                maybe(c.read_statements_milli),
                maybe(c.write_statements_milli),
                maybe(c.transactions_milli),
                maybe(c.writer_round_trips_milli),
                c.writer_waiting_us
                    .map_or_else(|| "-".to_owned(), |us| format!("{us} µs")),
                percent(c.writer_busy_permille)
            );
        }
    }

    /// Parts 3 to 5: records a second, steps, memory, start-up.
    fn write_scale(&self, out: &mut String) {
        let secs = |ms: u64| format!("{}.{:01} s", ms / 1000, ms % 1000 / 100);
        for (name, runs) in [
            ("3. batch refund", &self.refunds),
            ("4. T+1 order reconciliation", &self.recon),
        ] {
            for r in runs {
                let steps: Vec<String> = r
                    .steps_ms
                    .iter()
                    .map(|(n, ms)| format!("{n} {}", secs(*ms)))
                    .collect();
                let _ = writeln!(
                    out,
                    "{name}, {} records: {}/s ({}); peak memory bank {}, platform {}",
                    r.records,
                    r.per_sec,
                    steps.join(", "),
                    mib(r.bank_peak_kib),
                    mib(r.platform_peak_kib)
                );
            }
        }
        if let Some(startup) = &self.startup {
            let _ = writeln!(
                out,
                "5. start-up to both serving {} ms; idle memory bank {} KiB, platform {} KiB",
                startup.both_serving_ms, startup.bank_idle_kib, startup.platform_idle_kib
            );
        }
    }

    /// The goals checked.
    fn write_goals(&self, out: &mut String) {
        if !self.goals.is_empty() {
            let _ = writeln!(out, "\ngoals:");
            for g in &self.goals {
                let mark = if g.met { "met " } else { "MISS" };
                let _ = writeln!(
                    out,
                    "  {mark} {:<36} goal {:<10} measured {}",
                    g.name, g.goal, g.measured
                );
            }
        }
    }
}

/// `[a, b, c]` as `a/b/c`.
fn slashed(v: [u64; 3]) -> String {
    format!("{}/{}/{}", v[0], v[1], v[2])
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn only_runs_the_parts_asked_for_and_payments_bring_their_limit() {
        let opts = |only: Vec<Part>| BenchOptions {
            quick: true,
            database: None,
            bin_dir: PathBuf::new(),
            secure: false,
            only,
        };
        let every = opts(Vec::new());
        assert!(every.runs(Part::Echo) && every.runs(Part::Recon) && every.runs(Part::Startup));
        let pay = opts(vec![Part::Payments]);
        assert!(pay.runs(Part::Payments) && pay.runs(Part::Echo));
        assert!(!pay.runs(Part::Refunds) && !pay.runs(Part::Startup));
        let refunds = opts(vec![Part::Refunds]);
        assert!(refunds.runs(Part::Refunds) && !refunds.runs(Part::Echo));
        // Goals only for what ran: a refunds-only report checks no payment goal.
        let report = BenchReport {
            startup: Some(Startup {
                both_serving_ms: 40,
                bank_idle_kib: 40 * 1024,
                platform_idle_kib: 10 * 1024,
            }),
            ..BenchReport::before(&opts(vec![Part::Startup]))
        };
        let g = goals(&report);
        assert_eq!(
            g.iter()
                .map(|g| (g.name.as_str(), g.met))
                .collect::<Vec<_>>(),
            [
                ("start-up to both serving", true),
                ("idle memory per node", false)
            ]
        );
        assert_eq!(report.parts, [Part::Startup]);
        assert!(!report.table().contains("payments"));
    }
}
