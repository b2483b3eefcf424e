//! Activation on the platform website, login, and the account operations it depends on.

use e2e_tests::{TestApp, assert_refused, domain, on_both_backends};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use tonic::Code;

on_both_backends!(
    activation_confirms_with_the_bank_and_shows_the_branch_limit,
    activation_needs_a_signup_of_that_card,
    activation_needs_a_live_session,
    activation_after_cancellation_is_refused,
    bank_refuses_activation_for_another_account,
    login_refuses_wrong_password_and_frozen_accounts,
    register_refuses_taken_email_and_bad_fields,
    closed_account_stays_closed,
    the_account_view_shows_the_bank_s_current_limit_and_mobile,
);

/// Issue 19, defect 9: after a teller changes the limit and the mobile, the customer's account
/// view shows the bank's current values, marked as read from the bank; when the bank does not
/// answer, it shows the platform's copy and says as of when.
async fn the_account_view_shows_the_bank_s_current_limit_and_mobile(app: TestApp) {
    use e2e_tests::fault_rule;
    use proto::sim::v1 as sim;
    let p = app.payer("现值", "1000.00", "2000.00").await;
    let card = || p.customer.card_number.clone();
    app.freeze_at("2031-03-03T02:00:00Z").await;
    app.branch
        .clone()
        .change_limit(bank::ChangeLimitRequest {
            card_number: card(),
            daily_limit: "500.00".into(),
        })
        .await
        .expect("limit changed");
    app.branch
        .clone()
        .change_mobile(bank::ChangeMobileRequest {
            card_number: card(),
            mobile: "18612345678".into(),
        })
        .await
        .expect("mobile changed");
    let token = app.login(&p.customer).await;
    let view = |token: String| {
        let mut website = app.website.clone();
        async move {
            website
                .get_my_account(platform::GetMyAccountRequest {
                    session_token: token,
                })
                .await
                .expect("the account view")
                .into_inner()
                .account
                .unwrap()
                .card_links
                .remove(0)
        }
    };
    let now = view(token.clone()).await;
    assert_eq!(
        (
            now.daily_limit.as_str(),
            now.mobile_masked.as_str(),
            now.terms_from_bank
        ),
        ("500.00", "186****5678", true)
    );
    let asked_at = now.terms_as_of.expect("as of when");
    assert_eq!(
        asked_at.seconds, 1_930_269_600,
        "the business time of the answer"
    );

    // The bank is away: the platform's copy (the values just read), said to be as of then.
    app.clock(sim::set_clock_request::Move::AdvanceMs(60_000))
        .await;
    app.fault(
        "platform",
        fault_rule(
            sim::FaultSide::Caller,
            "GetRemainingLimit",
            sim::fault_rule::Action::Fail(sim::FaultStatus {
                code: tonic::Code::Unavailable as i32,
                ..Default::default()
            }),
        ),
    )
    .await;
    let copy = view(token.clone()).await;
    assert_eq!(
        (
            copy.daily_limit.as_str(),
            copy.mobile_masked.as_str(),
            copy.terms_from_bank
        ),
        ("500.00", "186****5678", false)
    );
    assert_eq!(copy.terms_as_of, Some(asked_at));
}

fn activate(token: &str, card: &str) -> platform::ActivateRequest {
    platform::ActivateRequest {
        session_token: token.to_owned(),
        card_number: card.to_owned(),
    }
}

async fn activation_confirms_with_the_bank_and_shows_the_branch_limit(app: TestApp) {
    let c = app.customer("王一").await;
    app.signed_up(&c).await;
    app.branch
        .clone()
        .change_limit(bank::ChangeLimitRequest {
            card_number: c.card_number.clone(),
            daily_limit: "888.88".into(),
        })
        .await
        .unwrap();
    let token = app.login(&c).await;
    let link = app
        .website
        .clone()
        .activate(activate(&token, &c.card_number))
        .await
        .unwrap()
        .into_inner()
        .card_link
        .unwrap();
    assert_eq!(link.status, platform::LinkStatus::Active as i32);
    assert_eq!(link.daily_limit, "888.88");
    assert_eq!(link.mobile_masked, "138****8000");
    assert!(link.activated_at.is_some());
    // Activating again answers the same.
    let again = app
        .website
        .clone()
        .activate(activate(&token, &c.card_number))
        .await
        .unwrap()
        .into_inner()
        .card_link
        .unwrap();
    assert_eq!(again, link);
    let mine = app
        .website
        .clone()
        .get_my_account(platform::GetMyAccountRequest {
            session_token: token,
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    // The view asks the bank again: the same link and terms, as of that later moment.
    let [now] = mine.card_links.as_slice() else {
        panic!("one card-link: {:?}", mine.card_links)
    };
    let at = |t: &Option<proto::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(now.terms_from_bank && at(&now.terms_as_of) >= at(&link.terms_as_of));
    assert_eq!(
        platform::CardLink {
            terms_as_of: link.terms_as_of,
            ..now.clone()
        },
        link
    );
}

async fn activation_needs_a_signup_of_that_card(app: TestApp) {
    let c = app.customer("王二").await;
    let token = app.login(&c).await;
    assert_refused(
        app.website
            .clone()
            .activate(activate(&token, &c.card_number))
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    app.signed_up(&c).await;
    assert_refused(
        app.website
            .clone()
            .activate(activate(&token, "6221880000000000019"))
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    assert_refused(
        app.website.clone().activate(activate(&token, "1234")).await,
        Code::InvalidArgument,
        "CARD_NUMBER_INVALID",
    );
    let links = app.platform_account(&c.email).await.card_links;
    assert_eq!(
        links[0].status,
        platform::LinkStatus::Signed as i32,
        "still not active"
    );
}

async fn activation_needs_a_live_session(app: TestApp) {
    let c = app.customer("王三").await;
    app.signed_up(&c).await;
    assert_refused(
        app.website
            .clone()
            .activate(activate("not-a-token", &c.card_number))
            .await,
        Code::Unauthenticated,
        "SESSION_INVALID",
    );
    let token = app.login(&c).await;
    app.ops
        .clone()
        .set_account_status(platform::SetAccountStatusRequest {
            email: c.email.clone(),
            status: platform::AccountStatus::Frozen as i32,
        })
        .await
        .unwrap();
    // Freezing ends the account's sessions.
    assert_refused(
        app.website
            .clone()
            .activate(activate(&token, &c.card_number))
            .await,
        Code::Unauthenticated,
        "SESSION_INVALID",
    );
}

async fn activation_after_cancellation_is_refused(app: TestApp) {
    let c = app.customer("王四").await;
    app.signed_up(&c).await;
    app.branch
        .clone()
        .cancel_sign_up(bank::CancelSignUpRequest {
            card_number: c.card_number.clone(),
        })
        .await
        .unwrap();
    let token = app.login(&c).await;
    assert_refused(
        app.website
            .clone()
            .activate(activate(&token, &c.card_number))
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
}

async fn bank_refuses_activation_for_another_account(app: TestApp) {
    // The platform asks the bank about a sign-up with the wrong account: the bank says no.
    let c = app.customer("王五").await;
    let s = app.signed_up(&c).await;
    let status = assert_refused(
        app.bank_link
            .clone()
            .confirm_activation(bank::ConfirmActivationRequest {
                signup_id: s.signup_id.clone(),
                card_number: c.card_number.clone(),
                platform_account: "someone-else@example.com".into(),
            })
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    assert_eq!(domain(&status), "bank.interbank-sim");
    app.branch
        .clone()
        .set_card_status(bank::SetCardStatusRequest {
            card_number: c.card_number.clone(),
            status: bank::CardStatus::Frozen as i32,
        })
        .await
        .unwrap();
    let token = app.login(&c).await;
    let relayed = assert_refused(
        app.website
            .clone()
            .activate(activate(&token, &c.card_number))
            .await,
        Code::FailedPrecondition,
        "CARD_NOT_NORMAL",
    );
    assert_eq!(
        domain(&relayed),
        "bank.interbank-sim",
        "the bank's refusal reaches the customer as the bank's"
    );
}

async fn login_refuses_wrong_password_and_frozen_accounts(app: TestApp) {
    let c = app.customer("王六").await;
    let login = |email: &str, pw: &str| {
        let mut client = app.website.clone();
        let req = platform::LoginRequest {
            email: email.to_owned(),
            login_password: pw.to_owned(),
        };
        async move { client.login(req).await }
    };
    assert_refused(
        login(&c.email, "wrong-password").await,
        Code::Unauthenticated,
        "LOGIN_FAILED",
    );
    assert_refused(
        login("nobody@example.com", "login-pass-1").await,
        Code::Unauthenticated,
        "LOGIN_FAILED",
    );
    assert!(login(&c.email, "login-pass-1").await.is_ok());
    app.ops
        .clone()
        .set_account_status(platform::SetAccountStatusRequest {
            email: c.email.clone(),
            status: platform::AccountStatus::Frozen as i32,
        })
        .await
        .unwrap();
    assert_refused(
        login(&c.email, "login-pass-1").await,
        Code::FailedPrecondition,
        "ACCOUNT_NOT_NORMAL",
    );
}

async fn register_refuses_taken_email_and_bad_fields(app: TestApp) {
    let c = app.customer("王七").await;
    let reg = |email: &str, name: &str, login: &str, pay: &str| {
        let mut client = app.website.clone();
        let req = platform::RegisterRequest {
            email: email.to_owned(),
            real_name: name.to_owned(),
            login_password: login.to_owned(),
            pay_password: pay.to_owned(),
        };
        async move { client.register(req).await }
    };
    assert_refused(
        reg(&c.email.to_uppercase(), "王七", "login-pass-1", "654321").await,
        Code::AlreadyExists,
        "ACCOUNT_EXISTS",
    );
    assert_refused(
        reg("x@y", "王七", "login-pass-1", "654321").await,
        Code::InvalidArgument,
        "EMAIL_INVALID",
    );
    assert_refused(
        reg("new@example.com", "", "login-pass-1", "654321").await,
        Code::InvalidArgument,
        "NAME_INVALID",
    );
    assert_refused(
        reg("new@example.com", "王七", "short", "654321").await,
        Code::InvalidArgument,
        "LOGIN_PASSWORD_INVALID",
    );
    assert_refused(
        reg("new@example.com", "王七", "login-pass-1", "65432a").await,
        Code::InvalidArgument,
        "PAY_PASSWORD_INVALID",
    );
    assert_refused(
        app.ops
            .clone()
            .get_account(platform::GetAccountRequest {
                email: "new@example.com".into(),
            })
            .await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
}

async fn closed_account_stays_closed(app: TestApp) {
    let c = app.customer("王八").await;
    let set = |status: platform::AccountStatus| {
        let mut client = app.ops.clone();
        let req = platform::SetAccountStatusRequest {
            email: c.email.clone(),
            status: status as i32,
        };
        async move { client.set_account_status(req).await }
    };
    let closed = set(platform::AccountStatus::Closed)
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(closed.status, platform::AccountStatus::Closed as i32);
    assert_refused(
        set(platform::AccountStatus::Normal).await,
        Code::FailedPrecondition,
        "ACCOUNT_CLOSED",
    );
    assert_refused(
        set(platform::AccountStatus::Unspecified).await,
        Code::InvalidArgument,
        "ACCOUNT_STATUS_INVALID",
    );
}
