//! Card accounts at the branch.

use e2e_tests::{
    TestApp, assert_refused, field, on_both_backends, resident_id, resident_id_born_on,
};
use proto::bank::v1 as bank;
use proto::common::v1::IdType;
use tonic::Code;

/// A change that spoils one field, the field, and the reason expected.
type Spoil<T> = (fn(&mut T), &'static str, &'static str);

on_both_backends!(
    cards_open_with_issued_or_requested_numbers,
    card_opening_refuses_bad_fields,
    deposits_add_exactly_and_frozen_cards_take_none,
    a_closed_card_stays_closed,
    an_id_born_after_the_business_date_is_refused,
);

/// Issue 19, defect 6: `common.proto` says a birth date is not in the future; the bound is the
/// business clock's today, at the counter and in a sign-up.
async fn an_id_born_after_the_business_date_is_refused(app: TestApp) {
    app.freeze_at("2031-03-03T02:00:00Z").await; // 10:00 on 2031-03-03, China time
    for future in ["20990101", "20310304"] {
        let mut req = open("", bank::AccountKind::CardOnly, "0");
        req.id_number = resident_id_born_on(future);
        let s = assert_refused(
            app.branch.clone().open_card(req).await,
            Code::InvalidArgument,
            "ID_NUMBER_INVALID",
        );
        assert_eq!(field(&s), "id_number");
    }
    let mut today = open("", bank::AccountKind::CardOnly, "0");
    today.id_number = resident_id_born_on("20310303");
    app.branch
        .clone()
        .open_card(today)
        .await
        .expect("born today is fine");

    let c = app.customer("未来").await;
    let mut form = app.sign_up_form(&c);
    form.id_number = resident_id_born_on("20310304");
    let s = assert_refused(
        app.sign_up(form).await,
        Code::InvalidArgument,
        "ID_NUMBER_INVALID",
    );
    assert_eq!(field(&s), "id_number");
}

fn open(number: &str, kind: bank::AccountKind, deposit: &str) -> bank::OpenCardRequest {
    bank::OpenCardRequest {
        account_kind: kind as i32,
        holder_name: "刘一".into(),
        id_type: IdType::ResidentId as i32,
        id_number: resident_id(),
        card_password: "246810".into(),
        opening_deposit: deposit.into(),
        card_number: number.into(),
    }
}

async fn cards_open_with_issued_or_requested_numbers(app: TestApp) {
    let issued = app
        .branch
        .clone()
        .open_card(open("", bank::AccountKind::CardOnly, ""))
        .await
        .unwrap()
        .into_inner()
        .card
        .unwrap();
    assert_eq!(issued.card_number.len(), 19);
    assert!(issued.card_number.starts_with("622188"));
    assert_eq!(issued.balance, "0.00");
    assert_eq!(issued.status, bank::CardStatus::Normal as i32);

    let chosen = app
        .branch
        .clone()
        .open_card(open(
            "6221881234567890129",
            bank::AccountKind::CardAndPassbook,
            "12.5",
        ))
        .await
        .unwrap()
        .into_inner()
        .card
        .unwrap();
    assert_eq!(chosen.card_number, "6221881234567890129");
    assert_eq!(
        chosen.account_kind,
        bank::AccountKind::CardAndPassbook as i32
    );
    assert_eq!(chosen.balance, "12.50");
    assert_refused(
        app.branch
            .clone()
            .open_card(open("6221881234567890129", bank::AccountKind::CardOnly, ""))
            .await,
        Code::AlreadyExists,
        "CARD_NUMBER_TAKEN",
    );
    let got = app.card(&chosen.card_number).await;
    assert_eq!(got, chosen);
}

async fn card_opening_refuses_bad_fields(app: TestApp) {
    let table: Vec<Spoil<bank::OpenCardRequest>> = vec![
        (
            |r| r.account_kind = 0,
            "account_kind",
            "ACCOUNT_KIND_UNKNOWN",
        ),
        (
            |r| r.holder_name = String::new(),
            "holder_name",
            "NAME_INVALID",
        ),
        (|r| r.id_type = 0, "id_type", "ID_TYPE_UNKNOWN"),
        (
            |r| r.id_number = "110105199002301234".into(),
            "id_number",
            "ID_NUMBER_INVALID",
        ),
        (
            |r| r.card_password = "abcdef".into(),
            "card_password",
            "CARD_PASSWORD_INVALID",
        ),
        (
            |r| r.opening_deposit = "-5".into(),
            "opening_deposit",
            "MONEY_INVALID",
        ),
        (
            |r| r.opening_deposit = "1000000.01".into(),
            "opening_deposit",
            "AMOUNT_OUT_OF_RANGE",
        ),
        (
            |r| r.card_number = "6221881234567890120".into(),
            "card_number",
            "CARD_NUMBER_INVALID",
        ),
    ];
    for (spoil, want_field, want_reason) in table {
        let mut req = open("", bank::AccountKind::CardOnly, "1");
        spoil(&mut req);
        let s = assert_refused(
            app.branch.clone().open_card(req).await,
            Code::InvalidArgument,
            want_reason,
        );
        assert_eq!(field(&s), want_field);
    }
    assert_refused(
        app.branch
            .clone()
            .get_card(bank::GetCardRequest {
                card_number: "6221881234567890129".into(),
            })
            .await,
        Code::NotFound,
        "CARD_NOT_FOUND",
    );
}

async fn deposits_add_exactly_and_frozen_cards_take_none(app: TestApp) {
    let c = app.customer("刘二").await;
    let deposit = |amount: &str| {
        let mut client = app.branch.clone();
        let req = bank::DepositRequest {
            card_number: c.card_number.clone(),
            amount: amount.into(),
        };
        async move { client.deposit(req).await }
    };
    assert_eq!(
        deposit("0.10")
            .await
            .unwrap()
            .into_inner()
            .card
            .unwrap()
            .balance,
        "1000.10"
    );
    assert_eq!(
        deposit("0.20")
            .await
            .unwrap()
            .into_inner()
            .card
            .unwrap()
            .balance,
        "1000.30"
    );
    assert_refused(
        deposit("0").await,
        Code::InvalidArgument,
        "AMOUNT_OUT_OF_RANGE",
    );
    assert_refused(
        deposit("0.001").await,
        Code::InvalidArgument,
        "MONEY_INVALID",
    );
    app.branch
        .clone()
        .set_card_status(bank::SetCardStatusRequest {
            card_number: c.card_number.clone(),
            status: bank::CardStatus::Frozen as i32,
        })
        .await
        .unwrap();
    assert_refused(
        deposit("1").await,
        Code::FailedPrecondition,
        "CARD_NOT_NORMAL",
    );
    let card = app.card(&c.card_number).await;
    assert_eq!(card.balance, "1000.30");
}

async fn a_closed_card_stays_closed(app: TestApp) {
    let c = app.customer("刘三").await;
    let set = |status: bank::CardStatus| {
        let mut client = app.branch.clone();
        let req = bank::SetCardStatusRequest {
            card_number: c.card_number.clone(),
            status: status as i32,
        };
        async move { client.set_card_status(req).await }
    };
    assert_refused(
        set(bank::CardStatus::Locked).await,
        Code::InvalidArgument,
        "CARD_STATUS_INVALID",
    );
    set(bank::CardStatus::Closed).await.unwrap();
    assert_refused(
        set(bank::CardStatus::Normal).await,
        Code::FailedPrecondition,
        "CARD_CLOSED",
    );
    assert_refused(
        app.sign_up(app.sign_up_form(&c)).await,
        Code::FailedPrecondition,
        "CARD_NOT_NORMAL",
    );
}
