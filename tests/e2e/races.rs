//! Identical requests racing: every concurrent repeat answers what happened, never a refusal of a
//! debit that was made (issue 19, defect 1).

use e2e_tests::{Payer, TestApp, on_both_backends};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use shared::Money;

on_both_backends!(
    concurrent_confirms_on_a_balance_for_one_debit_all_answer_the_debit,
    concurrent_confirms_on_a_limit_for_one_debit_all_answer_the_debit,
    concurrent_debits_at_the_bank_all_answer_the_debit,
    concurrent_identical_starts_make_one_order_and_send_one_code,
);

/// Identical confirmations sent at once, per round.
const RACERS: usize = 4;
/// Rounds per test: the race is lost in some rounds only, so each test runs several.
const ROUNDS: usize = 8;

/// Starts `order`, then sends [`RACERS`] identical confirmations at the same moment; every
/// caller must be told what the bank did (it debited once), and the platform must agree.
async fn race_one_order(app: &TestApp, p: &Payer, order: &str, amount: &str) {
    app.start(p, order, amount).await.expect("code sent");
    let code = app.code_for(p, order).await;
    let before = app.balance(&p.customer.card_number).await;
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (mut pay, go) = (app.pay.clone(), go.clone());
            let req = platform::ConfirmPaymentRequest {
                session_token: p.token.clone(),
                order_no: order.to_owned(),
                otp_code: code.clone(),
            };
            tokio::spawn(async move {
                go.wait().await;
                pay.confirm_payment(req).await.map(|r| r.into_inner())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for r in racers {
        answers.push(r.await.expect("racer ran"));
    }
    let at_bank = app.bank_payment(order).await.expect("the bank knows it");
    assert_eq!(at_bank.status, bank::PaymentStatus::Success as i32);
    let debited = before
        .checked_sub(app.balance(&p.customer.card_number).await)
        .unwrap();
    assert_eq!(debited, Money::parse(amount).unwrap(), "debited once");
    for a in &answers {
        let order = match a {
            Ok(r) => r.order.clone().expect("an order"),
            Err(s) => panic!("the card was debited, yet a caller was told: {s:?}"),
        };
        assert_eq!(order.status, platform::OrderStatus::Success as i32);
        assert_eq!(order.bank_serial_no, at_bank.bank_serial_no);
    }
    let o = app.order(order).await;
    assert_eq!(o.status, platform::OrderStatus::Success as i32);
    assert_eq!(o.bank_serial_no, at_bank.bank_serial_no);
}

async fn concurrent_confirms_on_a_balance_for_one_debit_all_answer_the_debit(app: TestApp) {
    for round in 0..ROUNDS {
        // 1000.00 on the card covers one payment of 600.00, not two.
        let p = app.payer("竞一", "1000.00", "5000.00").await;
        race_one_order(&app, &p, &format!("RACE-B-{round}"), "600.00").await;
    }
}

async fn concurrent_confirms_on_a_limit_for_one_debit_all_answer_the_debit(app: TestApp) {
    for round in 0..ROUNDS {
        // A daily limit of 1000.00 covers one payment of 600.00, not two.
        let p = app.payer("竞二", "5000.00", "1000.00").await;
        race_one_order(&app, &p, &format!("RACE-L-{round}"), "600.00").await;
    }
}

/// The same `Pay` sent to the bank by several platform processes at once (as two platform
/// processes behind one load balancer would): the card is debited once and every one of them is
/// answered with that debit, on a balance and on a limit that cover one payment only.
async fn concurrent_debits_at_the_bank_all_answer_the_debit(app: TestApp) {
    for round in 0..ROUNDS {
        let (balance, limit) = match round % 2 {
            0 => ("1000.00", "5000.00"),
            _ => ("5000.00", "1000.00"),
        };
        let p = app.payer("竞三", balance, limit).await;
        let order = format!("RACE-BANK-{round}");
        app.start(&p, &order, "600.00").await.expect("code sent");
        let code = app.code_for(&p, &order).await;
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (mut bank_link, go) = (app.bank_link.clone(), go.clone());
                let req = bank::PayRequest {
                    order_no: order.clone(),
                    signup_id: p.signup_id.clone(),
                    platform_account: p.customer.email.clone(),
                    amount: "600.00".to_owned(),
                    otp_code: code.clone(),
                };
                tokio::spawn(async move {
                    go.wait().await;
                    bank_link.pay(req).await.map(|r| r.into_inner())
                })
            })
            .collect();
        let mut serials = Vec::new();
        for r in racers {
            match r.await.expect("racer ran") {
                Ok(a) => serials.push(a.payment.expect("a payment").bank_serial_no),
                Err(s) => {
                    panic!("round {round}: the card was debited, yet a caller was told: {s:?}")
                }
            }
        }
        let at_bank = app.bank_payment(&order).await.unwrap();
        assert!(
            serials.iter().all(|s| *s == at_bank.bank_serial_no),
            "{serials:?}"
        );
    }
}

/// Identical `StartPayment`s sent at once, and identical `RequestPaymentCode`s to the bank: a new
/// order number is written without being looked up first, so the racers that lose the write must
/// answer with the winner's order and challenge. One order, one payment, one code, and every caller
/// told the same expiry.
async fn concurrent_identical_starts_make_one_order_and_send_one_code(app: TestApp) {
    for round in 0..ROUNDS {
        let p = app.payer("竞四", "1000.00", "5000.00").await;
        let order = format!("RACE-START-{round}");
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(2 * RACERS));
        let starts: Vec<_> = (0..RACERS)
            .map(|_| {
                let (mut pay, go) = (app.pay.clone(), go.clone());
                let req = platform::StartPaymentRequest {
                    session_token: p.token.clone(),
                    order_no: order.clone(),
                    amount: "600.00".to_owned(),
                    pay_password: e2e_tests::PAY_PASSWORD.to_owned(),
                    signup_id: p.signup_id.clone(),
                    description: "race".to_owned(),
                };
                tokio::spawn(async move {
                    go.wait().await;
                    let answer = pay.start_payment(req).await;
                    answer.map(|r| r.into_inner().order.expect("an order").code_expires_at)
                })
            })
            .collect();
        let codes: Vec<_> = (0..RACERS)
            .map(|_| {
                let (mut bank_link, go) = (app.bank_link.clone(), go.clone());
                let req = bank::RequestPaymentCodeRequest {
                    order_no: order.clone(),
                    signup_id: p.signup_id.clone(),
                    platform_account: p.customer.email.clone(),
                    amount: "600.00".to_owned(),
                };
                tokio::spawn(async move {
                    go.wait().await;
                    let answer = bank_link.request_payment_code(req).await;
                    answer.map(|r| r.into_inner().code_expires_at)
                })
            })
            .collect();
        let mut expiries = Vec::new();
        for r in starts.into_iter().chain(codes) {
            match r.await.expect("racer ran") {
                Ok(at) => expiries.push(at.expect("an expiry")),
                Err(s) => panic!("round {round}: a repeat was refused: {s:?}"),
            }
        }
        let at_bank = app.bank_payment(&order).await.expect("the bank knows it");
        assert_eq!(at_bank.status, bank::PaymentStatus::CodeSent as i32);
        let o = app.order(&order).await;
        assert_eq!(o.status, platform::OrderStatus::AwaitingCode as i32);
        let expiry = o.code_expires_at.expect("the order's code expiry");
        assert!(
            expiries.iter().all(|at| *at == expiry),
            "round {round}: {expiries:?} against the order's {expiry:?}"
        );
        let codes = app.codes_sent(&p, &order).await;
        assert_eq!(codes, 1, "round {round}: one code sent");
    }
}
