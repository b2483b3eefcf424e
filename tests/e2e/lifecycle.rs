//! After the sign-up: query, limit and mobile changes, cancellation on both sides, signing afresh.

use e2e_tests::{TestApp, assert_refused, on_both_backends};
use proto::bank::v1 as bank;
use proto::common::v1::SignUpStatus;
use proto::platform::v1 as platform;
use tonic::Code;

on_both_backends!(
    signup_can_be_queried_by_id_and_by_card,
    limit_changes_within_range_only,
    mobile_changes_to_mobile_or_unicom_only,
    cancel_ends_both_sides_and_the_card_can_sign_afresh,
    cancel_without_a_live_signup_is_not_found,
    cancel_while_platform_is_away_keeps_the_signup,
);

fn by_card(card: &str) -> bank::GetSignUpRequest {
    bank::GetSignUpRequest {
        key: Some(bank::get_sign_up_request::Key::CardNumber(card.to_owned())),
    }
}

async fn signup_can_be_queried_by_id_and_by_card(app: TestApp) {
    let c = app.customer("张一").await;
    let s = app.signed_up(&c).await;
    let by_id = app
        .branch
        .clone()
        .get_sign_up(bank::GetSignUpRequest {
            key: Some(bank::get_sign_up_request::Key::SignupId(
                s.signup_id.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    let by_card = app
        .branch
        .clone()
        .get_sign_up(by_card(&c.card_number))
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(by_id, by_card);
    assert_eq!(by_id.mobile, "13800138000");
    assert_eq!(by_id.real_name, "张一");
    assert!(by_id.id_number_masked.contains('*') && !by_id.id_number_masked.contains(&c.id_number));
    assert_refused(
        app.branch
            .clone()
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::SignupId("SU0".into())),
            })
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    assert_refused(
        app.branch
            .clone()
            .get_sign_up(bank::GetSignUpRequest { key: None })
            .await,
        Code::InvalidArgument,
        "KEY_MISSING",
    );
}

async fn limit_changes_within_range_only(app: TestApp) {
    let c = app.customer("张二").await;
    app.signed_up(&c).await;
    let change = |limit: &str| {
        let mut client = app.branch.clone();
        let req = bank::ChangeLimitRequest {
            card_number: c.card_number.clone(),
            daily_limit: limit.to_owned(),
        };
        async move { client.change_limit(req).await }
    };
    let s = change("200.50").await.unwrap().into_inner().signup.unwrap();
    assert_eq!(s.daily_limit, "200.50");
    for (bad, why) in [
        ("5000.01", "LIMIT_OUT_OF_RANGE"),
        ("0", "LIMIT_OUT_OF_RANGE"),
        ("1.234", "MONEY_INVALID"),
    ] {
        assert_refused(change(bad).await, Code::InvalidArgument, why);
    }
    let now = app
        .branch
        .clone()
        .get_sign_up(by_card(&c.card_number))
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(now.daily_limit, "200.50", "refused changes changed nothing");
    assert_eq!(
        change("5000")
            .await
            .unwrap()
            .into_inner()
            .signup
            .unwrap()
            .daily_limit,
        "5000.00"
    );
}

async fn mobile_changes_to_mobile_or_unicom_only(app: TestApp) {
    let c = app.customer("张三丰").await;
    let change = |mobile: &str| {
        let mut client = app.branch.clone();
        let req = bank::ChangeMobileRequest {
            card_number: c.card_number.clone(),
            mobile: mobile.to_owned(),
        };
        async move { client.change_mobile(req).await }
    };
    assert_refused(
        change("13900139000").await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    app.signed_up(&c).await;
    assert_eq!(
        change("13012345678")
            .await
            .unwrap()
            .into_inner()
            .signup
            .unwrap()
            .mobile,
        "13012345678"
    );
    assert_refused(
        change("17712345678").await,
        Code::InvalidArgument,
        "MOBILE_CARRIER_UNSUPPORTED",
    );
    assert_refused(
        change("1301234567").await,
        Code::InvalidArgument,
        "MOBILE_INVALID",
    );
    let now = app
        .branch
        .clone()
        .get_sign_up(by_card(&c.card_number))
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(now.mobile, "13012345678");
}

async fn cancel_ends_both_sides_and_the_card_can_sign_afresh(app: TestApp) {
    let c = app.customer("李一").await;
    let first = app.signed_up(&c).await;
    let cancelled = app
        .branch
        .clone()
        .cancel_sign_up(bank::CancelSignUpRequest {
            card_number: c.card_number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(cancelled.signup_id, first.signup_id);
    assert_eq!(cancelled.status, SignUpStatus::Cancelled as i32);
    let links = app.platform_account(&c.email).await.card_links;
    assert_eq!(links[0].status, platform::LinkStatus::Cancelled as i32);
    assert_refused(
        app.bank_signup(&c.card_number).await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    // Changes need a live sign-up now.
    assert_refused(
        app.branch
            .clone()
            .change_limit(bank::ChangeLimitRequest {
                card_number: c.card_number.clone(),
                daily_limit: "10".into(),
            })
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );

    let second = app.signed_up(&c).await;
    assert_ne!(second.signup_id, first.signup_id);
    assert_eq!(
        app.bank_signup_statuses(&c.card_number).await,
        ["CANCELLED", "SIGNED"]
    );
    let links = app.platform_account(&c.email).await.card_links;
    assert_eq!(links.len(), 2);
    assert_eq!(links[0].signup_id, second.signup_id, "newest first");
    assert_eq!(links[0].status, platform::LinkStatus::Signed as i32);
}

async fn cancel_without_a_live_signup_is_not_found(app: TestApp) {
    let c = app.customer("李二").await;
    assert_refused(
        app.branch
            .clone()
            .cancel_sign_up(bank::CancelSignUpRequest {
                card_number: c.card_number.clone(),
            })
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    assert_refused(
        app.branch
            .clone()
            .cancel_sign_up(bank::CancelSignUpRequest {
                card_number: "6221880000000000019".into(),
            })
            .await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
}

async fn cancel_while_platform_is_away_keeps_the_signup(mut app: TestApp) {
    let c = app.customer("李三").await;
    let s = app.signed_up(&c).await;
    app.stop_platform().await;
    assert_refused(
        app.branch
            .clone()
            .cancel_sign_up(bank::CancelSignUpRequest {
                card_number: c.card_number.clone(),
            })
            .await,
        Code::Unavailable,
        "PLATFORM_UNAVAILABLE",
    );
    let now = app
        .bank_signup(&c.card_number)
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(
        (now.signup_id, now.status),
        (s.signup_id, SignUpStatus::Signed as i32)
    );
}
