//! Sign-up at the branch: the happy path, every refusal in order, idempotency, and the platform
//! being away.

use e2e_tests::{
    TestApp, assert_refused, domain, field, on_both_backends, someone_elses_resident_id,
};
use proto::bank::v1 as bank;
use proto::common::v1::SignUpStatus;
use proto::platform::v1 as platform;
use tonic::Code;

/// A change that spoils one field, the field, and the reason expected.
type Spoil<T> = (fn(&mut T), &'static str, &'static str);

on_both_backends!(
    signup_signs_on_both_sides,
    sign_up_ids_are_the_business_date_and_a_number_the_bank_counts,
    a_sign_up_whose_number_a_kept_id_holds_takes_the_next_one,
    signup_of_unknown_card_is_not_found,
    signup_of_frozen_card_is_refused,
    third_wrong_password_locks_the_card_until_a_teller_unlocks_it,
    a_right_password_resets_the_wrong_count,
    signup_with_illegal_resident_id_is_refused,
    signup_with_someone_elses_id_or_name_is_refused,
    signup_with_telecom_mobile_is_refused,
    signup_limit_must_be_within_range,
    second_signup_on_a_signed_card_is_refused,
    signup_for_unknown_platform_account_fails_with_platforms_reason,
    signup_for_frozen_platform_account_is_refused,
    signup_whose_name_differs_from_platform_account_is_refused,
    unreachable_platform_leaves_a_failed_record_not_a_signed_one,
    retried_signup_with_same_request_id_signs_once,
    concurrent_signups_on_one_card_sign_exactly_one,
    malformed_fields_are_refused_before_anything_is_touched,
);

async fn signup_signs_on_both_sides(app: TestApp) {
    let c = app.customer("张三").await;
    let s = app.signed_up(&c).await;
    assert_eq!(s.status, SignUpStatus::Signed as i32);
    assert_eq!(s.daily_limit, "5000.00");
    assert_eq!(s.platform_account, c.email);
    assert_eq!(s.card_number_masked.len(), 19);
    assert!(s.card_number_masked.starts_with("622188") && s.card_number_masked.contains('*'));
    assert!(!s.business_date.is_empty());

    let at_bank = app
        .bank_signup(&c.card_number)
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(at_bank.signup_id, s.signup_id);
    let account = app.platform_account(&c.email).await;
    assert_eq!(account.card_links.len(), 1);
    let link = &account.card_links[0];
    assert_eq!(link.signup_id, s.signup_id);
    assert_eq!(link.status, platform::LinkStatus::Signed as i32);
    assert_eq!(link.card_number_masked, s.card_number_masked);
}

/// A sign-up id drawn at random (10 digits a day) was, at a load tester's hundred thousand
/// sign-ups a day, likely to be drawn twice; the second insert then failed on the id and the bank
/// answered CARD_ALREADY_SIGNED for a card with no sign-up. The bank numbers its sign-ups instead.
async fn sign_up_ids_are_the_business_date_and_a_number_the_bank_counts(app: TestApp) {
    for (n, name) in [(1, "号一"), (2, "号二")] {
        let c = app.customer(name).await;
        let s = app.signed_up(&c).await;
        let date = s.business_date.replace('-', "");
        assert_eq!(s.signup_id, format!("SU{date}{n:010}"), "{name}");
        assert_eq!(
            app.platform_account(&c.email).await.card_links[0].signup_id,
            s.signup_id
        );
    }
}

/// A database kept from before sign-ups were numbered holds random ids, and one may be the number
/// the bank counts to next: that sign-up takes the number after it, and is not refused.
async fn a_sign_up_whose_number_a_kept_id_holds_takes_the_next_one(app: TestApp) {
    let first = app.signed_up(&app.customer("号三").await).await;
    let date = first.business_date.replace('-', "");
    let kept = app
        .bank_texts(
            "UPDATE signups SET signup_id = $1 WHERE signup_id <> $1 RETURNING signup_id",
            &format!("SU{date}{:010}", 2),
        )
        .await;
    assert_eq!(kept.len(), 1, "the first sign-up now holds number 2");
    let second = app.signed_up(&app.customer("号四").await).await;
    assert_eq!(second.status, SignUpStatus::Signed as i32);
    assert_eq!(second.signup_id, format!("SU{date}{:010}", 3));
}

async fn signup_of_unknown_card_is_not_found(app: TestApp) {
    let c = app.customer("李四").await;
    let mut form = app.sign_up_form(&c);
    form.card_number = "6221880000000000019".to_owned();
    let s = assert_refused(app.sign_up(form).await, Code::NotFound, "CARD_NOT_FOUND");
    assert_eq!(domain(&s), "bank.interbank-sim");
    assert!(app.platform_account(&c.email).await.card_links.is_empty());
}

async fn signup_of_frozen_card_is_refused(app: TestApp) {
    let c = app.customer("王五").await;
    app.branch
        .clone()
        .set_card_status(bank::SetCardStatusRequest {
            card_number: c.card_number.clone(),
            status: bank::CardStatus::Frozen as i32,
        })
        .await
        .unwrap();
    assert_refused(
        app.sign_up(app.sign_up_form(&c)).await,
        Code::FailedPrecondition,
        "CARD_NOT_NORMAL",
    );
    assert!(app.bank_signup_statuses(&c.card_number).await.is_empty());
}

async fn third_wrong_password_locks_the_card_until_a_teller_unlocks_it(app: TestApp) {
    let c = app.customer("赵六").await;
    let mut wrong = app.sign_up_form(&c);
    wrong.card_password = "000000".to_owned();
    for left in ["2 more", "1 more"] {
        let s = assert_refused(
            app.sign_up(app_form_with_new_id(&wrong)).await,
            Code::PermissionDenied,
            "CARD_PASSWORD_WRONG",
        );
        assert!(s.message().contains(left), "{}", s.message());
    }
    let s = assert_refused(
        app.sign_up(app_form_with_new_id(&wrong)).await,
        Code::PermissionDenied,
        "CARD_PASSWORD_WRONG",
    );
    assert!(s.message().contains("now locked"), "{}", s.message());
    // Locked: even the right password is refused, with its own reason.
    assert_refused(
        app.sign_up(app.sign_up_form(&c)).await,
        Code::FailedPrecondition,
        "CARD_LOCKED",
    );
    let card = app.card(&c.card_number).await;
    assert_eq!(card.status, bank::CardStatus::Locked as i32);
    assert_eq!(card.wrong_password_tries, 3);

    let unlocked = app
        .branch
        .clone()
        .unlock_card(bank::UnlockCardRequest {
            card_number: c.card_number.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .card
        .unwrap();
    assert_eq!(unlocked.status, bank::CardStatus::Normal as i32);
    assert_eq!(unlocked.wrong_password_tries, 0);
    app.signed_up(&c).await;
    assert_refused(
        app.branch
            .clone()
            .unlock_card(bank::UnlockCardRequest {
                card_number: c.card_number.clone(),
            })
            .await,
        Code::FailedPrecondition,
        "CARD_NOT_LOCKED",
    );
}

fn app_form_with_new_id(f: &bank::SignUpRequest) -> bank::SignUpRequest {
    bank::SignUpRequest {
        request_id: format!("req-{}", e2e_tests::unique()),
        ..f.clone()
    }
}

async fn a_right_password_resets_the_wrong_count(app: TestApp) {
    let c = app.customer("孙七").await;
    let mut wrong = app.sign_up_form(&c);
    wrong.card_password = "000000".to_owned();
    // Wrong, wrong, then a right password on a form refused later (name mismatch), then wrong twice:
    // never three in a row, so the card stays usable.
    for _ in 0..2 {
        assert_refused(
            app.sign_up(app_form_with_new_id(&wrong)).await,
            Code::PermissionDenied,
            "CARD_PASSWORD_WRONG",
        );
    }
    let mut right_but_other_name = app.sign_up_form(&c);
    right_but_other_name.real_name = "别人".to_owned();
    assert_refused(
        app.sign_up(right_but_other_name).await,
        Code::FailedPrecondition,
        "ID_HOLDER_MISMATCH",
    );
    for _ in 0..2 {
        assert_refused(
            app.sign_up(app_form_with_new_id(&wrong)).await,
            Code::PermissionDenied,
            "CARD_PASSWORD_WRONG",
        );
    }
    app.signed_up(&c).await;
}

async fn signup_with_illegal_resident_id_is_refused(app: TestApp) {
    let c = app.customer("周八").await;
    let mut form = app.sign_up_form(&c);
    // Same digits, wrong check character.
    let last = form.id_number.pop().unwrap();
    form.id_number.push(if last == '0' { '1' } else { '0' });
    let s = assert_refused(
        app.sign_up(form).await,
        Code::InvalidArgument,
        "ID_NUMBER_INVALID",
    );
    assert_eq!(field(&s), "id_number");
    let mut form = app.sign_up_form(&c);
    form.id_type = 0;
    assert_refused(
        app.sign_up(form).await,
        Code::InvalidArgument,
        "ID_TYPE_UNKNOWN",
    );
    assert!(app.bank_signup_statuses(&c.card_number).await.is_empty());
}

async fn signup_with_someone_elses_id_or_name_is_refused(app: TestApp) {
    let c = app.customer("吴九").await;
    let mut other_id = app.sign_up_form(&c);
    other_id.id_number = someone_elses_resident_id(&c.id_number);
    assert_refused(
        app.sign_up(other_id).await,
        Code::FailedPrecondition,
        "ID_HOLDER_MISMATCH",
    );
    let mut other_type = app.sign_up_form(&c);
    other_type.id_type = proto::common::v1::IdType::Passport as i32;
    other_type.id_number = "E12345678".to_owned();
    assert_refused(
        app.sign_up(other_type).await,
        Code::FailedPrecondition,
        "ID_HOLDER_MISMATCH",
    );
    assert!(app.bank_signup_statuses(&c.card_number).await.is_empty());
}

async fn signup_with_telecom_mobile_is_refused(app: TestApp) {
    let c = app.customer("郑十").await;
    for telecom in ["13312345678", "18912345678"] {
        let mut form = app.sign_up_form(&c);
        form.mobile = telecom.to_owned();
        let s = assert_refused(
            app.sign_up(form).await,
            Code::InvalidArgument,
            "MOBILE_CARRIER_UNSUPPORTED",
        );
        assert!(s.message().contains("China Telecom"), "{}", s.message());
        assert_eq!(field(&s), "mobile");
    }
    let mut form = app.sign_up_form(&c);
    form.mobile = String::new();
    assert_refused(
        app.sign_up(form).await,
        Code::InvalidArgument,
        "MOBILE_INVALID",
    );
    let mut unicom = app.sign_up_form(&c);
    unicom.mobile = "18612345678".to_owned();
    app.sign_up(unicom)
        .await
        .expect("China Unicom is supported");
}

async fn signup_limit_must_be_within_range(app: TestApp) {
    let c = app.customer("钱一").await;
    for (limit, why) in [
        ("0.00", "LIMIT_OUT_OF_RANGE"),
        ("5000.01", "LIMIT_OUT_OF_RANGE"),
        ("1.234", "MONEY_INVALID"),
        ("", "MONEY_INVALID"),
        ("-1", "MONEY_INVALID"),
    ] {
        let mut form = app.sign_up_form(&c);
        form.daily_limit = limit.to_owned();
        let s = assert_refused(app.sign_up(form).await, Code::InvalidArgument, why);
        assert_eq!(field(&s), "daily_limit", "limit {limit:?}");
    }
    let mut form = app.sign_up_form(&c);
    form.daily_limit = "0.01".to_owned();
    let s = app
        .sign_up(form)
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(s.daily_limit, "0.01");
}

async fn second_signup_on_a_signed_card_is_refused(app: TestApp) {
    let c = app.customer("冯二").await;
    app.signed_up(&c).await;
    assert_refused(
        app.sign_up(app.sign_up_form(&c)).await,
        Code::FailedPrecondition,
        "CARD_ALREADY_SIGNED",
    );
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["SIGNED"]);
}

async fn signup_for_unknown_platform_account_fails_with_platforms_reason(app: TestApp) {
    let c = app.customer("陈三").await;
    let mut form = app.sign_up_form(&c);
    form.platform_account = "nobody-here@example.com".to_owned();
    let s = assert_refused(app.sign_up(form).await, Code::NotFound, "ACCOUNT_NOT_FOUND");
    assert_eq!(domain(&s), "platform.interbank-sim");
    // The attempt is on record at the bank as failed, and the card is free to sign again.
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["FAILED"]);
    assert_refused(
        app.bank_signup(&c.card_number).await,
        Code::NotFound,
        "SIGN_UP_NOT_FOUND",
    );
    app.signed_up(&c).await;
}

async fn signup_for_frozen_platform_account_is_refused(app: TestApp) {
    let c = app.customer("褚四").await;
    app.ops
        .clone()
        .set_account_status(platform::SetAccountStatusRequest {
            email: c.email.clone(),
            status: platform::AccountStatus::Frozen as i32,
        })
        .await
        .unwrap();
    let s = assert_refused(
        app.sign_up(app.sign_up_form(&c)).await,
        Code::FailedPrecondition,
        "ACCOUNT_NOT_NORMAL",
    );
    assert_eq!(domain(&s), "platform.interbank-sim");
    assert!(app.platform_account(&c.email).await.card_links.is_empty());
}

async fn signup_whose_name_differs_from_platform_account_is_refused(app: TestApp) {
    let c = app.customer("卫五").await;
    // An account holding the same e-mail but another real name.
    let email = format!("other{}@example.com", e2e_tests::unique());
    app.register(&email, "卫伍").await;
    let mut form = app.sign_up_form(&c);
    form.platform_account = email.clone();
    let s = assert_refused(
        app.sign_up(form).await,
        Code::FailedPrecondition,
        "NAME_MISMATCH",
    );
    assert_eq!(domain(&s), "platform.interbank-sim");
    assert!(app.platform_account(&email).await.card_links.is_empty());
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["FAILED"]);
}

async fn unreachable_platform_leaves_a_failed_record_not_a_signed_one(mut app: TestApp) {
    let c = app.customer("蒋六").await;
    app.stop_platform().await;
    let form = app.sign_up_form(&c);
    let s = assert_refused(
        app.sign_up(form.clone()).await,
        Code::Unavailable,
        "PLATFORM_UNAVAILABLE",
    );
    assert_eq!(domain(&s), "bank.interbank-sim");
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["FAILED"]);
    // The same request again gets the same answer; it is not tried a second time.
    assert_refused(
        app.sign_up(form).await,
        Code::Unavailable,
        "PLATFORM_UNAVAILABLE",
    );
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["FAILED"]);
}

async fn retried_signup_with_same_request_id_signs_once(app: TestApp) {
    let c = app.customer("沈七").await;
    let form = app.sign_up_form(&c);
    let first = app
        .sign_up(form.clone())
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    let again = app
        .sign_up(form.clone())
        .await
        .unwrap()
        .into_inner()
        .signup
        .unwrap();
    assert_eq!(first.signup_id, again.signup_id);
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["SIGNED"]);
    assert_eq!(app.platform_account(&c.email).await.card_links.len(), 1);

    let mut other = form.clone();
    other.daily_limit = "100.00".to_owned();
    assert_refused(
        app.sign_up(other).await,
        Code::AlreadyExists,
        "REQUEST_ID_REUSED",
    );

    // A refusal after the platform was asked is replayed too.
    let d = app.customer("韩八").await;
    let mut bad = app.sign_up_form(&d);
    bad.platform_account = "ghost@example.com".to_owned();
    assert_refused(
        app.sign_up(bad.clone()).await,
        Code::NotFound,
        "ACCOUNT_NOT_FOUND",
    );
    assert_refused(app.sign_up(bad).await, Code::NotFound, "ACCOUNT_NOT_FOUND");
    assert_eq!(app.bank_signup_statuses(&d.card_number).await, ["FAILED"]);
}

async fn concurrent_signups_on_one_card_sign_exactly_one(app: TestApp) {
    let c = app.customer("杨九").await;
    let forms: Vec<_> = (0..6).map(|_| app.sign_up_form(&c)).collect();
    let results = futures_join(forms.into_iter().map(|f| {
        let mut client = app.branch.clone();
        async move { client.sign_up(f).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e2e_tests::reason(r), "CARD_ALREADY_SIGNED", "{r:?}");
    }
    assert_eq!(app.bank_signup_statuses(&c.card_number).await, ["SIGNED"]);
    assert_eq!(app.platform_account(&c.email).await.card_links.len(), 1);
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn malformed_fields_are_refused_before_anything_is_touched(app: TestApp) {
    let c = app.customer("朱十").await;
    let table: Vec<Spoil<bank::SignUpRequest>> = vec![
        (
            |f| f.request_id = String::new(),
            "request_id",
            "REQUEST_ID_INVALID",
        ),
        (
            |f| f.platform_account = "not-an-email".into(),
            "platform_account",
            "EMAIL_INVALID",
        ),
        (|f| f.real_name = "  ".into(), "real_name", "NAME_INVALID"),
        (
            |f| f.card_number = "6221880000000000018".into(),
            "card_number",
            "CARD_NUMBER_INVALID",
        ),
        (
            |f| f.card_password = "12345".into(),
            "card_password",
            "CARD_PASSWORD_INVALID",
        ),
    ];
    for (spoil, want_field, want_reason) in table {
        let mut form = app.sign_up_form(&c);
        // A malformed field refuses the request before the password is even looked at.
        form.card_password = if want_field == "card_password" {
            form.card_password
        } else {
            "000000".into()
        };
        spoil(&mut form);
        let s = assert_refused(app.sign_up(form).await, Code::InvalidArgument, want_reason);
        assert_eq!(field(&s), want_field);
    }
    let card = app.card(&c.card_number).await;
    assert_eq!(
        card.wrong_password_tries, 0,
        "no malformed request counted as a password try"
    );
    assert!(app.bank_signup_statuses(&c.card_number).await.is_empty());
    // Each refusal left an audit line and nothing else.
    let refused = app
        .audit_lines("bank")
        .await
        .into_iter()
        .filter(|(op, outcome)| op == "SignUp" && outcome != "OK")
        .count();
    assert_eq!(refused, 5);
}
