//! The demo fixture file and its magic values, loaded as `ibsim up` and `ibsim fixtures load` do.

use e2e_tests::{Payer, TestApp, assert_refused, on_both_backends};
use ibsim_cli::fixtures::{DEMO, Fixtures, Loaded, load};
use proto::platform::v1 as platform;
use tonic::Code;

on_both_backends!(the_demo_fixtures_load_once_and_show_their_magic_values);

async fn demo_payer(app: &TestApp, email: &str, card: &str, mobile: &str) -> Payer {
    let token = app
        .website
        .clone()
        .login(platform::LoginRequest {
            email: email.into(),
            login_password: "demo-login-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .session_token;
    Payer {
        customer: e2e_tests::Customer {
            card_number: card.into(),
            card_password: "123456".into(),
            name: String::new(),
            id_number: String::new(),
            email: email.into(),
            login_password: "demo-login-1".into(),
        },
        token,
        signup_id: String::new(),
        mobile: mobile.into(),
    }
}

async fn the_demo_fixtures_load_once_and_show_their_magic_values(app: TestApp) {
    let f = Fixtures::parse(DEMO).unwrap();
    let first = load(app.bank_channel.clone(), app.platform_channel.clone(), &f)
        .await
        .unwrap();
    assert_eq!(
        first,
        Loaded {
            cards: 6,
            accounts: 6,
            signups: 2
        }
    );
    let again = load(app.bank_channel.clone(), app.platform_channel.clone(), &f)
        .await
        .unwrap();
    assert_eq!(again, Loaded::default(), "a second load leaves what exists");

    // The demo payments need the demo payment password, not the harness's.
    let pay = |p: &Payer, order: &str, amount: &str| platform::StartPaymentRequest {
        session_token: p.token.clone(),
        order_no: order.into(),
        amount: amount.into(),
        pay_password: "111111".into(),
        ..Default::default()
    };
    let zhou = demo_payer(
        &app,
        "zhouba@example.com",
        "6221880000000000068",
        "13900139006",
    )
    .await;
    app.pay
        .clone()
        .start_payment(pay(&zhou, "Z-1", "150.00"))
        .await
        .unwrap();
    let code = app.code_for(&zhou, "Z-1").await;
    app.confirm(&zhou, "Z-1", &code).await.unwrap();
    assert_refused(
        app.pay
            .clone()
            .start_payment(pay(&zhou, "Z-2", "50.01"))
            .await,
        Code::FailedPrecondition,
        "DAILY_LIMIT_EXCEEDED",
    );
    assert_refused(
        app.pay
            .clone()
            .start_payment(pay(&zhou, "Z-BUSY", "0.91"))
            .await,
        Code::ResourceExhausted,
        "SYSTEM_BUSY",
    );
    assert_refused(
        app.confirm(&zhou, "Z-BUSY", "123456")
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        "ORDER_NOT_AWAITING_CODE",
    );
    let sun = demo_payer(
        &app,
        "sunqi@example.com",
        "6221880000000000050",
        "13900139005",
    )
    .await;
    assert_refused(
        app.pay
            .clone()
            .start_payment(pay(&sun, "S-1", "0.01"))
            .await,
        Code::FailedPrecondition,
        "INSUFFICIENT_BALANCE",
    );
    let r = app
        .website
        .clone()
        .login(platform::LoginRequest {
            email: "lisi@example.com".into(),
            login_password: "demo-login-1".into(),
        })
        .await;
    assert_refused(r, Code::FailedPrecondition, "ACCOUNT_NOT_NORMAL");
    assert_eq!(
        app.card("6221880000000000035").await.status,
        proto::bank::v1::CardStatus::Frozen as i32
    );
}
