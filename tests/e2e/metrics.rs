//! Each node's metrics endpoint: requests by RPC, code and reason, latency histograms, payments,
//! refund lines and reconciliation breaks, as a Prometheus scrape reads them.

use e2e_tests::{TestApp, batch_file, on_both_backends};
use proto::platform::v1 as platform;

on_both_backends!(
    each_node_counts_its_requests_and_its_business,
    a_payment_runs_within_its_database_budget
);

/// The value of the sample `series` (name and labels exactly) on a metrics page.
fn sample(page: &str, series: &str) -> Option<u64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn each_node_counts_its_requests_and_its_business(app: TestApp) {
    let p = app.payer("度量", "1000.00", "100.00").await;
    app.pay_now(&p, "M-1", "30.00").await.expect("paid");
    let refused = app.pay_now(&p, "M-2", "90.00").await.unwrap_err();
    assert_eq!(e2e_tests::reason(&refused), "DAILY_LIMIT_EXCEEDED");

    let bank = app.scrape("bank").await;
    assert!(
        bank.contains("# TYPE ibsim_rpc_requests_total counter"),
        "{bank}"
    );
    assert_eq!(
        sample(
            &bank,
            r#"ibsim_rpc_requests_total{node="bank",rpc="Pay",code="OK",reason=""}"#
        ),
        Some(1),
        "{bank}"
    );
    assert_eq!(
        sample(
            &bank,
            r#"ibsim_rpc_requests_total{node="bank",rpc="RequestPaymentCode",code="FAILED_PRECONDITION",reason="DAILY_LIMIT_EXCEEDED"}"#
        ),
        Some(1),
        "{bank}"
    );
    assert_eq!(
        sample(
            &bank,
            r#"ibsim_payments_total{node="bank",status="SUCCESS",reason=""}"#
        ),
        Some(1),
        "{bank}"
    );
    assert_eq!(
        sample(
            &bank,
            r#"ibsim_payments_total{node="bank",status="FAILED",reason="DAILY_LIMIT_EXCEEDED"}"#
        ),
        None,
        "refused before the bank held a payment: a refused request, not a failed payment"
    );
    let pays = sample(
        &bank,
        r#"ibsim_rpc_duration_seconds_count{node="bank",rpc="Pay"}"#,
    );
    assert_eq!(pays, Some(1), "{bank}");
    assert_eq!(
        sample(
            &bank,
            r#"ibsim_rpc_duration_seconds_bucket{node="bank",rpc="Pay",le="+Inf"}"#
        ),
        Some(1)
    );

    let plat = app.scrape("platform").await;
    assert_eq!(
        sample(
            &plat,
            r#"ibsim_rpc_requests_total{node="platform",rpc="ConfirmPayment",code="OK",reason=""}"#
        ),
        Some(1),
        "{plat}"
    );
    assert_eq!(
        sample(
            &plat,
            r#"ibsim_payments_total{node="platform",status="SUCCESS",reason=""}"#
        ),
        Some(1),
        "{plat}"
    );
    assert_eq!(
        sample(
            &plat,
            r#"ibsim_payments_total{node="platform",status="FAILED",reason="DAILY_LIMIT_EXCEEDED"}"#
        ),
        Some(1),
        "{plat}"
    );
    assert!(
        !plat.contains(r#"node="bank""#) && !bank.contains(r#"node="platform""#),
        "each node serves its own metrics only"
    );

    // A refund batch of two lines through the bank's job.
    app.upload(&batch_file(
        "M-B",
        &[("MR-1", "M-1", "5.00"), ("MR-2", "M-1", "6.00")],
    ))
    .await
    .expect("accepted");
    assert_eq!(app.run_refund_job().await, ["M-B"]);
    let bank = app.scrape("bank").await;
    assert_eq!(
        sample(&bank, r#"ibsim_refund_lines_total{node="bank"}"#),
        Some(2),
        "{bank}"
    );
    assert_eq!(
        sample(&bank, r#"ibsim_refund_batches_total{node="bank"}"#),
        Some(1),
        "{bank}"
    );

    // A payment only the bank holds, found by real-time reconciliation.
    app.pay_at_bank_only(&p, "M-3", "1.00").await;
    let run = app.realtime_recon().await;
    assert_eq!(run.adjustments.len(), 1);
    let plat = app.scrape("platform").await;
    assert_eq!(
        sample(
            &plat,
            r#"ibsim_recon_adjustments_total{node="platform",record_kind="ORDER"}"#
        ),
        Some(1),
        "{plat}"
    );
    let order = app.order("M-3").await;
    assert_eq!(order.status, platform::OrderStatus::Success as i32);
}

/// A node's `ibsim_db_writer_seconds_total` of `phase`, in µs (decimal seconds read without
/// floating point).
fn writer_seconds(page: &str, node: &str, phase: &str) -> u64 {
    let series = format!(r#"ibsim_db_writer_seconds_total{{node="{node}",phase="{phase}"}} "#);
    let v = page
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no {series} in {page}"));
    let (whole, frac) = v.trim().split_once('.').unwrap_or((v.trim(), ""));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    whole.parse::<u64>().unwrap() * 1_000_000 + frac.parse::<u64>().unwrap()
}

/// What one node's database has run so far: read statements, write statements, transactions,
/// round trips to the writer.
fn database_counts(page: &str, node: &str) -> [u64; 4] {
    [
        format!(r#"ibsim_db_statements_total{{node="{node}",pool="read"}}"#),
        format!(r#"ibsim_db_statements_total{{node="{node}",pool="write"}}"#),
        format!(r#"ibsim_db_transactions_total{{node="{node}"}}"#),
        format!(r#"ibsim_db_round_trips_total{{node="{node}",pool="write"}}"#),
    ]
    .map(|series| sample(page, &series).unwrap_or_else(|| panic!("no {series} in {page}")))
}

/// The cost of a payment is counted, and held to a budget: a statement more on either node is a
/// change someone has to make on purpose (docs/performance.md says why each one is there).
async fn a_payment_runs_within_its_database_budget(app: TestApp) {
    let p = app.payer("预算", "1000.00", "500.00").await;
    // The first payment checks the pay password the slow way; the steady state is the second.
    app.pay_now(&p, "BUDGET-1", "1.00").await.expect("paid");
    let pages = async || [app.scrape("bank").await, app.scrape("platform").await];
    let before = pages().await;
    app.pay_now(&p, "BUDGET-2", "1.00").await.expect("paid");
    let after = pages().await;
    for (i, node) in ["bank", "platform"].into_iter().enumerate() {
        let held = |page: &str| writer_seconds(page, node, "holding");
        assert!(
            held(&after[i]) > held(&before[i]),
            "{node}: a payment's writes held the writer for a while: {}",
            after[i]
        );
    }
    let before = [
        database_counts(&before[0], "bank"),
        database_counts(&before[1], "platform"),
    ];
    let after = [
        database_counts(&after[0], "bank"),
        database_counts(&after[1], "platform"),
    ];
    let cost =
        |node: usize| -> [u64; 4] { std::array::from_fn(|i| after[node][i] - before[node][i]) };
    // [read statements, write statements, transactions, writer round trips], every request's
    // audit line included.
    let bank = match app.on_postgres() {
        false => BANK_BUDGET,
        true => BANK_BUDGET_POSTGRES,
    };
    assert_eq!(cost(0), bank, "the bank's cost of a payment");
    assert_eq!(cost(1), PLATFORM_BUDGET, "the platform's cost of a payment");
}

/// What a payment costs the bank on SQLite: reads, writes, transactions, round trips to the
/// writer (docs/performance.md).
/// Reads: the sign-up with its card and today's usage (a new order number is not looked up: the
/// write finds a taken one); the outbox (ListSms); the payment (Pay). Writes: the payment and its SMS (one transaction); the debit (one
/// transaction: the day's figures, the success sequence, the usage, the card, the payment
/// settled and returned); three audit lines. Round trips to the writer: each transaction's
/// statements sent as one script in its group's savepoint, then the group's commit (2 + 2, a
/// payment alone: groups of one); one per audit line.
const BANK_BUDGET: [u64; 4] = [3, 10, 2, 7];
/// On PostgreSQL a script's statements are sent one at a time: 4 + 7 round trips, and the audit
/// lines' 3.
const BANK_BUDGET_POSTGRES: [u64; 4] = [3, 10, 2, 14];
/// What a payment costs the platform. Reads: session with account and pay password, the
/// card-link (a new order number is not looked up: the insert finds a taken one); session with
/// account and the order. Writes: the order, marked as
/// code sent and returned, settled and returned; two audit lines.
/// One round trip a write, on either engine: a write of one statement alone (a group of one on
/// SQLite) needs no transaction around it.
const PLATFORM_BUDGET: [u64; 4] = [3, 5, 0, 5];
