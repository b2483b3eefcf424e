//! Paying with the card-link: the one-time code, both sides' checks, idempotency by order
//! number, the balance and limit views.

use e2e_tests::{PAY_PASSWORD, TestApp, assert_refused, domain, on_both_backends};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use shared::Money;
use tonic::Code;

on_both_backends!(
    a_payment_debits_the_card_once_and_both_sides_record_it,
    bank_serial_numbers_are_the_business_date_and_the_success_number,
    a_wrong_code_can_be_retyped_and_the_third_kills_the_code,
    a_code_expires_after_five_minutes_of_business_time,
    a_code_works_only_for_its_own_order,
    order_numbers_are_idempotency_keys_end_to_end,
    a_refused_order_answers_its_refusal_again,
    a_repeat_answers_the_first_request_though_its_checks_would_refuse_it_now,
    the_daily_limit_is_cumulative_and_starts_afresh_after_cutover,
    the_platform_checks_its_card_link_and_the_bank_its_sign_up,
    a_wrong_payment_password_leaves_no_order_and_sends_no_code,
    balance_and_remaining_limit_are_checked_by_both_sides,
    malformed_payment_input_is_refused_at_the_edge,
    sessions_end_after_thirty_minutes_of_business_time,
    five_wrong_payment_passwords_in_a_row_lock_payment_for_thirty_minutes,
);

fn m(s: &str) -> Money {
    Money::parse(s).unwrap()
}

async fn a_payment_debits_the_card_once_and_both_sides_record_it(app: TestApp) {
    let p = app.payer("付一", "1000.00", "5000.00").await;
    let started = app.start(&p, "ORD-1", "123.45").await.unwrap();
    assert_eq!(started.status, platform::OrderStatus::AwaitingCode as i32);
    assert_eq!(
        started.mobile_masked,
        format!("{}****{}", &p.mobile[..3], &p.mobile[7..])
    );
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        m("1000.00"),
        "nothing debited before the code"
    );

    let code = app.code_for(&p, "ORD-1").await;
    let paid = app.confirm(&p, "ORD-1", &code).await.unwrap();
    assert_eq!(paid.status, platform::OrderStatus::Success as i32);
    assert!(!paid.bank_serial_no.is_empty());
    assert_eq!(app.balance(&p.customer.card_number).await, m("876.55"));

    let at_bank = app.bank_payment("ORD-1").await.unwrap();
    assert_eq!(at_bank.status, bank::PaymentStatus::Success as i32);
    assert_eq!(at_bank.bank_serial_no, paid.bank_serial_no);
    assert_eq!(at_bank.business_date, paid.business_date);
    assert_eq!(at_bank.amount, "123.45");

    let again = app.confirm(&p, "ORD-1", &code).await.unwrap();
    assert_eq!(
        again.bank_serial_no, paid.bank_serial_no,
        "a repeat answers the first result"
    );
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        m("876.55"),
        "and never debits twice"
    );
}

/// A serial number drawn at random (12 digits a day) was, at a load tester's million payments a
/// day, likely to be drawn twice; the second debit then failed on the unique serial and its
/// payment got INTERNAL. The bank numbers its debits instead: the business date and the
/// payment's success number, twelve digits, never the same twice.
async fn bank_serial_numbers_are_the_business_date_and_the_success_number(app: TestApp) {
    let p = app.payer("付序", "1000.00", "5000.00").await;
    for (n, order) in [(1, "SER-1"), (2, "SER-2")] {
        let paid = app.pay_now(&p, order, "1.00").await.unwrap();
        let date = paid.business_date.replace('-', "");
        assert_eq!(paid.bank_serial_no, format!("{date}{n:012}"), "{order}");
        let at_bank = app.bank_payment(order).await.unwrap();
        assert_eq!(at_bank.bank_serial_no, paid.bank_serial_no);
    }
}

async fn a_wrong_code_can_be_retyped_and_the_third_kills_the_code(app: TestApp) {
    let p = app.payer("付二", "1000.00", "5000.00").await;
    app.start(&p, "OK-AFTER-TWO", "10.00").await.unwrap();
    let code = app.code_for(&p, "OK-AFTER-TWO").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..2 {
        let s = assert_refused(
            app.confirm(&p, "OK-AFTER-TWO", wrong)
                .await
                .map(tonic::Response::new),
            Code::PermissionDenied,
            "OTP_WRONG",
        );
        assert_eq!(domain(&s), "bank.interbank-sim");
        assert_eq!(
            app.order("OK-AFTER-TWO").await.status,
            platform::OrderStatus::AwaitingCode as i32,
            "a wrong code does not settle the order"
        );
    }
    app.confirm(&p, "OK-AFTER-TWO", &code).await.unwrap();

    app.start(&p, "DEAD-CODE", "10.00").await.unwrap();
    let code = app.code_for(&p, "DEAD-CODE").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for expect in ["OTP_WRONG", "OTP_WRONG", "OTP_TRIES_EXCEEDED"] {
        assert_refused(
            app.confirm(&p, "DEAD-CODE", wrong)
                .await
                .map(tonic::Response::new),
            Code::PermissionDenied,
            expect,
        );
    }
    assert_refused(
        app.confirm(&p, "DEAD-CODE", &code)
            .await
            .map(tonic::Response::new),
        Code::PermissionDenied,
        "OTP_TRIES_EXCEEDED",
    );
    assert_eq!(
        app.order("DEAD-CODE").await.status,
        platform::OrderStatus::Failed as i32
    );
    assert_eq!(app.balance(&p.customer.card_number).await, m("990.00"));
}

async fn a_code_expires_after_five_minutes_of_business_time(app: TestApp) {
    use sim::set_clock_request::Move;
    app.freeze_at("2031-11-23T02:00:00Z").await;
    let p = app.payer("付三", "1000.00", "5000.00").await;
    app.start(&p, "IN-TIME", "1.00").await.unwrap();
    app.start(&p, "TOO-LATE", "2.00").await.unwrap();
    app.clock(Move::AdvanceMs(300_000)).await;
    let code = app.code_for(&p, "IN-TIME").await;
    app.confirm(&p, "IN-TIME", &code)
        .await
        .expect("exactly 5 minutes still works");
    app.clock(Move::AdvanceMs(1)).await;
    let code = app.code_for(&p, "TOO-LATE").await;
    assert_refused(
        app.confirm(&p, "TOO-LATE", &code)
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "OTP_EXPIRED",
    );
    assert_eq!(
        app.order("TOO-LATE").await.status,
        platform::OrderStatus::Failed as i32
    );
    assert_eq!(app.balance(&p.customer.card_number).await, m("999.00"));
}

async fn a_code_works_only_for_its_own_order(app: TestApp) {
    let p = app.payer("付四", "1000.00", "5000.00").await;
    app.start(&p, "A-1", "5.00").await.unwrap();
    app.start(&p, "B-1", "5.00").await.unwrap();
    let code_a = app.code_for(&p, "A-1").await;
    let code_b = app.code_for(&p, "B-1").await;
    if code_a != code_b {
        assert_refused(
            app.confirm(&p, "B-1", &code_a)
                .await
                .map(tonic::Response::new),
            Code::PermissionDenied,
            "OTP_WRONG",
        );
    }
    app.confirm(&p, "B-1", &code_b).await.unwrap();
    // The amount is part of what the code is bound to: the bank refuses another amount.
    let s = app
        .bank_link
        .clone()
        .pay(bank::PayRequest {
            order_no: "A-1".into(),
            signup_id: p.signup_id.clone(),
            platform_account: p.customer.email.clone(),
            amount: "500.00".into(),
            otp_code: code_a.clone(),
        })
        .await;
    assert_refused(s, Code::AlreadyExists, "ORDER_NO_REUSED");
    app.confirm(&p, "A-1", &code_a).await.unwrap();
    assert_eq!(app.balance(&p.customer.card_number).await, m("990.00"));
}

async fn order_numbers_are_idempotency_keys_end_to_end(app: TestApp) {
    let p = app.payer("付五", "1000.00", "5000.00").await;
    let first = app.start(&p, "SAME", "20.00").await.unwrap();
    let second = app.start(&p, "SAME", "20.00").await.unwrap();
    assert_eq!(first.code_expires_at, second.code_expires_at);
    let sms = app
        .sms
        .clone()
        .list_sms(sim::ListSmsRequest {
            mobile: p.mobile.clone(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(sms.len(), 1, "a repeated start sends no second code");
    assert!(!sms[0].text.is_empty() && sms[0].text.contains(&sms[0].otp_code));

    assert_refused(
        app.start(&p, "SAME", "21.00")
            .await
            .map(tonic::Response::new),
        Code::AlreadyExists,
        "ORDER_NO_REUSED",
    );
    let other = app.payer("付六", "1000.00", "5000.00").await;
    assert_refused(
        app.start(&other, "SAME", "20.00")
            .await
            .map(tonic::Response::new),
        Code::AlreadyExists,
        "ORDER_NO_REUSED",
    );
    let code = app.code_for(&p, "SAME").await;
    let paid = app.confirm(&p, "SAME", &code).await.unwrap();
    let replay = app.start(&p, "SAME", "20.00").await.unwrap();
    assert_eq!(replay.status, platform::OrderStatus::Success as i32);
    assert_eq!(replay.bank_serial_no, paid.bank_serial_no);
    assert_eq!(app.balance(&p.customer.card_number).await, m("980.00"));
}

async fn a_refused_order_answers_its_refusal_again(app: TestApp) {
    let p = app.payer("付七", "1000.00", "5000.00").await;
    let s = assert_refused(
        app.start(&p, "TOO-MUCH", "1000.01")
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "INSUFFICIENT_BALANCE",
    );
    assert_eq!(domain(&s), "bank.interbank-sim");
    assert_eq!(
        app.order("TOO-MUCH").await.status,
        platform::OrderStatus::Failed as i32
    );
    assert_refused(
        app.start(&p, "TOO-MUCH", "1000.01")
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "INSUFFICIENT_BALANCE",
    );
    assert!(
        app.bank_payment("TOO-MUCH").await.is_err(),
        "a refused code request leaves nothing at the bank"
    );
    app.start(&p, "FITS", "1000.00")
        .await
        .expect("a new order number may try again");
}

/// A repeat is answered by what its order number did the first time, on both sides, though the
/// sign-up, the card and the balance would refuse a new payment now; another payment under the
/// same number is still ORDER_NO_REUSED, not the refusal a new one would get.
async fn a_repeat_answers_the_first_request_though_its_checks_would_refuse_it_now(app: TestApp) {
    let p = app.payer("付重", "1000.00", "5000.00").await;
    let first = app.start(&p, "REPEAT-1", "1000.00").await.unwrap();
    let code_request = |amount: &str| bank::RequestPaymentCodeRequest {
        order_no: "REPEAT-1".into(),
        signup_id: p.signup_id.clone(),
        platform_account: p.customer.email.clone(),
        amount: amount.into(),
    };
    let mut bank_link = app.bank_link.clone();
    // The balance falls short of 1000.00 from here on; then the card is frozen, and then the
    // sign-up is cancelled: each would refuse a new code request.
    app.pay_now(&p, "SPEND", "0.01").await.expect("paid");
    for change in 0..3 {
        let card = p.customer.card_number.clone();
        let mut branch = app.branch.clone();
        match change {
            0 => {}
            1 => {
                let status = bank::CardStatus::Frozen as i32;
                let freeze = bank::SetCardStatusRequest {
                    card_number: card,
                    status,
                };
                branch.set_card_status(freeze).await.unwrap();
            }
            _ => {
                let cancel = bank::CancelSignUpRequest { card_number: card };
                branch.cancel_sign_up(cancel).await.unwrap();
            }
        }
        let again = bank_link
            .request_payment_code(code_request("1000.00"))
            .await
            .expect("a repeat at the bank answers the first challenge")
            .into_inner();
        assert_eq!(
            again.code_expires_at, first.code_expires_at,
            "the platform's order says the code expires when the bank said, to the millisecond"
        );
    }
    assert_refused(
        bank_link.request_payment_code(code_request("999.00")).await,
        Code::AlreadyExists,
        "ORDER_NO_REUSED",
    );
    let replay = app.start(&p, "REPEAT-1", "1000.00").await;
    let replay = replay.expect("a repeat at the platform answers the first order");
    assert_eq!(replay.status, platform::OrderStatus::AwaitingCode as i32);
    assert_eq!(replay.code_expires_at, first.code_expires_at);
    assert_refused(
        app.start(&p, "REPEAT-1", "999.00")
            .await
            .map(tonic::Response::new),
        Code::AlreadyExists,
        "ORDER_NO_REUSED",
    );
    let codes = app.codes_sent(&p, "REPEAT-1").await;
    assert_eq!(codes, 1, "no repeat sent a second code");
}

async fn the_daily_limit_is_cumulative_and_starts_afresh_after_cutover(app: TestApp) {
    use sim::set_clock_request::Move;
    app.freeze_at("2031-11-23T15:50:00Z").await;
    let p = app.payer("付八", "1000.00", "100.00").await;
    app.pay_now(&p, "D1-1", "60.00").await.unwrap();
    let s = assert_refused(
        app.start(&p, "D1-2", "40.01")
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "DAILY_LIMIT_EXCEEDED",
    );
    assert!(s.message().contains("40.00"), "{}", s.message());
    let left = app
        .pay
        .clone()
        .get_remaining_limit(platform::GetRemainingLimitRequest {
            session_token: p.token.clone(),
            signup_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            left.business_date.as_str(),
            left.daily_limit.as_str(),
            left.used_today.as_str(),
            left.remaining.as_str()
        ),
        ("2031-11-23", "100.00", "60.00", "40.00")
    );
    app.pay_now(&p, "D1-3", "40.00")
        .await
        .expect("the exact remainder fits");

    let moved = app.clock(Move::AdvanceToCutover(true)).await;
    assert_eq!(moved.closed_dates, vec!["2031-11-23".to_owned()]);
    assert_eq!(moved.clock.unwrap().business_date, "2031-11-24");
    let paid = app.pay_now(&p, "D2-1", "100.00").await.unwrap();
    assert_eq!(paid.business_date, "2031-11-24");
    assert_eq!(app.order("D1-1").await.business_date, "2031-11-23");
}

async fn the_platform_checks_its_card_link_and_the_bank_its_sign_up(app: TestApp) {
    // Not activated: the platform refuses before the bank hears of it.
    let c = app.customer("付九").await;
    app.signed_up(&c).await;
    let token = app.login(&c).await;
    let r = app
        .pay
        .clone()
        .start_payment(platform::StartPaymentRequest {
            session_token: token,
            order_no: "NOT-ACTIVE".into(),
            amount: "1.00".into(),
            pay_password: PAY_PASSWORD.into(),
            ..Default::default()
        })
        .await;
    assert_refused(r, Code::FailedPrecondition, "LINK_NOT_ACTIVATED");

    // Frozen at the bank: the platform's link is fine, the bank says no.
    let p = app.payer("付十", "1000.00", "5000.00").await;
    app.branch
        .clone()
        .set_card_status(bank::SetCardStatusRequest {
            card_number: p.customer.card_number.clone(),
            status: bank::CardStatus::Frozen as i32,
        })
        .await
        .unwrap();
    let s = assert_refused(
        app.start(&p, "FROZEN", "1.00")
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "CARD_NOT_NORMAL",
    );
    assert_eq!(domain(&s), "bank.interbank-sim");

    // Frozen between the code and the debit: the bank checks again at the debit.
    let q = app.payer("付十一", "1000.00", "5000.00").await;
    app.start(&q, "FROZEN-LATER", "1.00").await.unwrap();
    app.branch
        .clone()
        .set_card_status(bank::SetCardStatusRequest {
            card_number: q.customer.card_number.clone(),
            status: bank::CardStatus::Frozen as i32,
        })
        .await
        .unwrap();
    let code = app.code_for(&q, "FROZEN-LATER").await;
    assert_refused(
        app.confirm(&q, "FROZEN-LATER", &code)
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "CARD_NOT_NORMAL",
    );
    assert_eq!(app.balance(&q.customer.card_number).await, m("1000.00"));

    // Cancelled at the branch: both sides know.
    let r = app.payer("付十二", "1000.00", "5000.00").await;
    app.branch
        .clone()
        .cancel_sign_up(bank::CancelSignUpRequest {
            card_number: r.customer.card_number.clone(),
        })
        .await
        .unwrap();
    assert_refused(
        app.start(&r, "CANCELLED", "1.00")
            .await
            .map(tonic::Response::new),
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
}

async fn a_wrong_payment_password_leaves_no_order_and_sends_no_code(app: TestApp) {
    let p = app.payer("付十三", "1000.00", "5000.00").await;
    let r = app
        .pay
        .clone()
        .start_payment(platform::StartPaymentRequest {
            session_token: p.token.clone(),
            order_no: "BAD-PW".into(),
            amount: "1.00".into(),
            pay_password: "000000".into(),
            ..Default::default()
        })
        .await;
    assert_refused(r, Code::PermissionDenied, "PAY_PASSWORD_WRONG");
    let r = app
        .ops
        .clone()
        .get_order_by_no(platform::GetOrderByNoRequest {
            order_no: "BAD-PW".into(),
        })
        .await;
    assert_refused(r, Code::NotFound, "ORDER_NOT_FOUND");
    let sms = app
        .sms
        .clone()
        .list_sms(sim::ListSmsRequest {
            mobile: p.mobile.clone(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert!(sms.is_empty());
    assert!(
        app.audit_lines("platform")
            .await
            .contains(&("StartPayment".to_owned(), "PAY_PASSWORD_WRONG".to_owned()))
    );
}

async fn balance_and_remaining_limit_are_checked_by_both_sides(app: TestApp) {
    let p = app.payer("付十四", "1234.56", "5000.00").await;
    let ask = |pw: &str| platform::GetBalanceRequest {
        session_token: p.token.clone(),
        pay_password: pw.to_owned(),
        signup_id: String::new(),
    };
    let b = app
        .pay
        .clone()
        .get_balance(ask(PAY_PASSWORD))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (b.available_balance.as_str(), b.card_status.as_str()),
        ("1234.56", "NORMAL")
    );
    assert!(b.card_number_masked.contains("******"));
    assert_refused(
        app.pay.clone().get_balance(ask("000000")).await,
        Code::PermissionDenied,
        "PAY_PASSWORD_WRONG",
    );

    // The bank's check: a sign-up id of another account is refused at the bank.
    let other = app.payer("付十五", "1000.00", "5000.00").await;
    let r = app
        .bank_link
        .clone()
        .get_balance(bank::GetBalanceRequest {
            signup_id: other.signup_id.clone(),
            platform_account: p.customer.email.clone(),
        })
        .await;
    assert_refused(r, Code::NotFound, "SIGN_UP_NOT_FOUND");
    // The platform's check: a card-link of another account is not this customer's.
    let r = app
        .pay
        .clone()
        .get_remaining_limit(platform::GetRemainingLimitRequest {
            session_token: p.token.clone(),
            signup_id: other.signup_id.clone(),
        })
        .await;
    assert_refused(r, Code::NotFound, "SIGN_UP_NOT_FOUND");
}

async fn malformed_payment_input_is_refused_at_the_edge(app: TestApp) {
    let p = app.payer("付十六", "1000.00", "5000.00").await;
    for (order, amount, why) in [
        ("", "1.00", "ORDER_NO_INVALID"),
        ("有空格 no", "1.00", "ORDER_NO_INVALID"),
        ("OK", "0", "AMOUNT_INVALID"),
        ("OK", "5000.01", "AMOUNT_INVALID"),
        ("OK", "1.001", "MONEY_INVALID"),
        ("OK", "-1", "MONEY_INVALID"),
    ] {
        assert_refused(
            app.start(&p, order, amount).await.map(tonic::Response::new),
            Code::InvalidArgument,
            why,
        );
    }
    app.start(&p, "GOOD", "1.00").await.unwrap();
    assert_refused(
        app.confirm(&p, "GOOD", "12345")
            .await
            .map(tonic::Response::new),
        Code::InvalidArgument,
        "OTP_INVALID",
    );
    assert_eq!(
        app.order("GOOD").await.status,
        platform::OrderStatus::AwaitingCode as i32
    );
    let r = app
        .ops
        .clone()
        .get_order_by_no(platform::GetOrderByNoRequest {
            order_no: "OK".into(),
        })
        .await;
    assert_refused(r, Code::NotFound, "ORDER_NOT_FOUND");
}

async fn sessions_end_after_thirty_minutes_of_business_time(app: TestApp) {
    use sim::set_clock_request::Move;
    app.freeze_at("2031-11-23T03:00:00Z").await;
    let p = app.payer("付十七", "1000.00", "5000.00").await;
    app.clock(Move::AdvanceMs(29 * 60 * 1000)).await;
    app.start(&p, "STILL-IN", "1.00").await.unwrap();
    app.clock(Move::AdvanceMs(60 * 1000 + 1)).await;
    assert_refused(
        app.start(&p, "LOGGED-OUT", "1.00")
            .await
            .map(tonic::Response::new),
        Code::Unauthenticated,
        "SESSION_INVALID",
    );
}

async fn five_wrong_payment_passwords_in_a_row_lock_payment_for_thirty_minutes(app: TestApp) {
    use sim::set_clock_request::Move;
    app.freeze_at("2031-11-23T04:00:00Z").await;
    let mut p = app.payer("付十八", "1000.00", "5000.00").await;
    let start = |p: &e2e_tests::Payer, no: &str, pw: &str| {
        let req = platform::StartPaymentRequest {
            session_token: p.token.clone(),
            order_no: no.to_owned(),
            amount: "1.00".into(),
            pay_password: pw.to_owned(),
            ..Default::default()
        };
        let mut pay = app.pay.clone();
        async move { pay.start_payment(req).await }
    };
    // Four wrong, then a right one: the count starts again.
    for i in 0..4 {
        assert_refused(
            start(&p, &format!("W{i}"), "000000").await,
            Code::PermissionDenied,
            "PAY_PASSWORD_WRONG",
        );
    }
    start(&p, "RIGHT-1", PAY_PASSWORD).await.unwrap();
    for left in (1..=4).rev() {
        let s = assert_refused(
            start(&p, "WRONG", "000000").await,
            Code::PermissionDenied,
            "PAY_PASSWORD_WRONG",
        );
        assert!(
            s.message().contains(&format!("{left} more wrong tries")),
            "{}",
            s.message()
        );
    }
    let s = assert_refused(
        start(&p, "WRONG", "000000").await,
        Code::PermissionDenied,
        "PAY_PASSWORD_WRONG",
    );
    assert!(
        s.message().contains("now locked for 30 minutes"),
        "{}",
        s.message()
    );

    // Locked: even the right password is refused, and nothing is recorded.
    let s = assert_refused(
        start(&p, "LOCKED-1", PAY_PASSWORD).await,
        Code::FailedPrecondition,
        "PAY_LOCKED",
    );
    assert!(
        s.message().contains("2031-11-23 12:30:00"),
        "{}",
        s.message()
    );
    assert_refused(
        app.ops
            .clone()
            .get_order_by_no(platform::GetOrderByNoRequest {
                order_no: "LOCKED-1".into(),
            })
            .await,
        Code::NotFound,
        "ORDER_NOT_FOUND",
    );
    let balance = platform::GetBalanceRequest {
        session_token: p.token.clone(),
        pay_password: PAY_PASSWORD.to_owned(),
        signup_id: String::new(),
    };
    assert_refused(
        app.pay.clone().get_balance(balance).await,
        Code::FailedPrecondition,
        "PAY_LOCKED",
    );

    // Business time unlocks it: still locked a millisecond before, open at 30 minutes.
    app.clock(Move::AdvanceMs(30 * 60 * 1000 - 1)).await;
    assert_refused(
        start(&p, "LOCKED-2", PAY_PASSWORD).await,
        Code::FailedPrecondition,
        "PAY_LOCKED",
    );
    app.clock(Move::AdvanceMs(1)).await;
    p.token = app.login(&p.customer).await; // the session also ended at 30 minutes
    start(&p, "RIGHT-2", PAY_PASSWORD).await.unwrap();
}
