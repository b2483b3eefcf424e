//! No card number, password or one-time code in any log line: both nodes run a scenario that
//! touches every kind of secret (sign-up with a wrong and a right card password, login, payment
//! password right and wrong, one-time codes right and wrong, balance, a refund batch) with every
//! log line of our crates captured at TRACE, and the capture is scanned for each secret used.
//!
//! A test binary of its own: the capture is the process's one global subscriber.

use e2e_tests::capture::{self, stands_in};
use e2e_tests::{Backend, PAY_PASSWORD, TestApp, batch_file};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_card_number_password_or_code_reaches_the_logs() {
    let capture = capture::install();
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite runs");
    let mut secrets: Vec<String> = vec![
        "123456".into(),       // card password
        "999999".into(),       // a wrong card password
        PAY_PASSWORD.into(),   // payment password
        "000000".into(),       // a wrong payment password
        "login-pass-1".into(), // login password
    ];

    let p = app.payer("日志甲", "1000.00", "5000.00").await;
    secrets.push(p.customer.card_number.clone());
    let other = app.customer("日志乙").await;
    secrets.push(other.card_number.clone());
    let mut wrong = app.sign_up_form(&other);
    wrong.card_password = "999999".into();
    app.sign_up(wrong).await.expect_err("a wrong card password");

    let paid = app.pay_now(&p, "LOG-1", "12.34").await.unwrap();
    assert_eq!(paid.status, platform::OrderStatus::Success as i32);
    secrets.push(app.code_for(&p, "LOG-1").await);

    app.start(&p, "LOG-2", "1.00").await.unwrap();
    let code = app.code_for(&p, "LOG-2").await;
    let wrong_code = if code == "111111" { "222222" } else { "111111" };
    secrets.extend([code.clone(), wrong_code.to_owned()]);
    app.confirm(&p, "LOG-2", wrong_code)
        .await
        .expect_err("a wrong code");
    app.confirm(&p, "LOG-2", &code).await.unwrap();

    app.pay
        .clone()
        .start_payment(platform::StartPaymentRequest {
            session_token: p.token.clone(),
            order_no: "LOG-3".into(),
            amount: "1.00".into(),
            pay_password: "000000".into(),
            ..Default::default()
        })
        .await
        .expect_err("a wrong payment password");
    app.pay
        .clone()
        .get_balance(platform::GetBalanceRequest {
            session_token: p.token.clone(),
            pay_password: PAY_PASSWORD.into(),
            signup_id: String::new(),
        })
        .await
        .unwrap();
    app.branch
        .clone()
        .get_card(bank::GetCardRequest {
            card_number: p.customer.card_number.clone(),
        })
        .await
        .unwrap();
    app.upload(&batch_file("LOG-B", &[("LR1", "LOG-1", "2.00")]))
        .await
        .unwrap();
    app.run_refund_job().await;
    app.fetch_result("LOG-B").await.unwrap();

    let logs = capture.text();
    let card = &p.customer.card_number;
    let masked = format!(
        "{}{}{}",
        &card[..6],
        "*".repeat(card.len() - 10),
        &card[card.len() - 4..]
    );
    assert!(
        logs.lines().count() > 20 && logs.contains(&format!("card={masked}")),
        "the capture holds the nodes' logs, with the card masked: {} lines",
        logs.lines().count()
    );
    let leaks: Vec<(&str, &str)> = logs
        .lines()
        .flat_map(|l| {
            secrets
                .iter()
                .filter(move |s| stands_in(l, s))
                .map(move |s| (s.as_str(), l))
        })
        .collect();
    assert!(leaks.is_empty(), "secrets in the logs: {leaks:#?}");
}

#[test]
fn a_secret_counts_only_standing_on_its_own() {
    assert!(stands_in("code=123456 sent", "123456"));
    assert!(stands_in("card 6221880000000000019", "6221880000000000019"));
    assert!(!stands_in("at_ms=17123456789", "123456"));
    assert!(!stands_in("trace_id=4bf92f123456a6a3", "123456"));
    assert!(!stands_in("622188******0019", "6221880000000000019"));
    assert!(stands_in("password login-pass-1", "login-pass-1"));
}

/// Issue 19, defect 5: a value from the wire that holds a line break and a forged log line stays
/// inside the line that logs it, whichever field of whichever node carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_log_line_in_any_field_stays_inside_its_own_line() {
    use proto::sim::v1 as sim;
    const FORGED: &str = "INJ-1\n2026-01-01T00:00:00Z INFO forged: card debited\r\u{1b}[2K";
    let capture = capture::install();
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite runs");
    let p = app.payer("日志丙", "1000.00", "5000.00").await;
    let f = || FORGED.to_owned();
    let _ = app
        .pay
        .clone()
        .start_payment(platform::StartPaymentRequest {
            session_token: p.token.clone(),
            order_no: f(),
            amount: "1.00".into(),
            pay_password: PAY_PASSWORD.into(),
            signup_id: f(),
            description: f(),
        })
        .await
        .expect_err("refused");
    let _ = app
        .pay
        .clone()
        .confirm_payment(platform::ConfirmPaymentRequest {
            session_token: f(),
            order_no: f(),
            otp_code: f(),
        })
        .await
        .expect_err("refused");
    let _ = app
        .ops
        .clone()
        .get_order_by_no(platform::GetOrderByNoRequest { order_no: f() })
        .await
        .expect_err("refused");
    let _ = app
        .website
        .clone()
        .login(platform::LoginRequest {
            email: f(),
            login_password: f(),
        })
        .await
        .expect_err("refused");
    let _ = app
        .branch
        .clone()
        .get_card(bank::GetCardRequest { card_number: f() })
        .await
        .expect_err("refused");
    let _ = app
        .bank_link
        .clone()
        .get_payment(bank::GetPaymentRequest { order_no: f() })
        .await
        .expect_err("refused");
    let _ = app
        .bank_recon
        .clone()
        .prepare_day_file(bank::PrepareDayFileRequest {
            business_date: f(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    let _ = app
        .refunds
        .clone()
        .get_refund_batch(platform::GetRefundBatchRequest { batch_no: f() })
        .await
        .expect_err("refused");
    for mut node in [app.bank_sim.clone(), app.platform_sim.clone()] {
        let _ = node
            .list_audit_lines(sim::ListAuditLinesRequest {
                subject: f(),
                limit: 0,
            })
            .await
            .expect_err("refused");
        let _ = node
            .add_fault(sim::AddFaultRequest {
                rule: Some(sim::FaultRule {
                    method: f(),
                    match_order_no: f(),
                    ..Default::default()
                }),
            })
            .await
            .expect_err("refused");
    }

    let logs = capture.text();
    assert!(
        logs.contains("INJ-1\\n2026-01-01T00:00:00Z"),
        "the forged value is logged, escaped"
    );
    let forged: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("forged") && !l.contains("INJ-1\\n"))
        .collect();
    assert!(forged.is_empty(), "lines a caller forged: {forged:#?}");
    let escapes: Vec<&str> = logs.lines().filter(|l| l.contains('\u{1b}')).collect();
    assert!(
        escapes.is_empty(),
        "terminal escapes from the wire: {escapes:#?}"
    );
}
