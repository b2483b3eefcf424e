//! What an outside probe sent (issue 19, defects 3 and 4): the largest legal number and text with
//! a NUL byte, a newline or a megabyte in it. Each is refused at the edge with INVALID_ARGUMENT,
//! a reason and the field, the same way on both backends, and changes nothing. A message over
//! the size a node decodes (issue 23) is refused with its reason too.

use e2e_tests::{Backend, TestApp, assert_refused, domain, field, on_both_backends};
use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use tonic::Code;

on_both_backends!(
    a_sequence_cursor_past_the_stored_range_is_refused,
    text_with_control_characters_or_over_its_length_is_refused,
);

/// Refused as INVALID_ARGUMENT with `reason` on `field_name`.
#[track_caller]
fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, reason: &str, field_name: &str) {
    let s = assert_refused(r, Code::InvalidArgument, reason);
    assert_eq!(field(&s), field_name, "{s:?}");
}

async fn a_sequence_cursor_past_the_stored_range_is_refused(app: TestApp) {
    for after in [u64::MAX, i64::MAX as u64 + 1] {
        let r = app
            .refunds
            .clone()
            .list_refunds(platform::ListRefundsRequest {
                order_no: "ANY".to_owned(),
                after_seq: after,
                ..Default::default()
            })
            .await;
        refused(r, "AFTER_SEQ_INVALID", "after_seq");
        let r = app
            .bank_recon
            .clone()
            .stream_successful_payments(bank::StreamSuccessfulPaymentsRequest {
                after_seq: after,
                ..Default::default()
            })
            .await;
        refused(r, "AFTER_SEQ_INVALID", "after_seq");
    }
    // The largest legal cursor is answered: nothing after it.
    let r = app
        .refunds
        .clone()
        .list_refunds(platform::ListRefundsRequest {
            order_no: "ANY".to_owned(),
            after_seq: i64::MAX as u64,
            ..Default::default()
        })
        .await
        .expect("the largest legal cursor");
    assert!(r.into_inner().refunds.is_empty());
    let mut pages = app
        .bank_recon
        .clone()
        .stream_successful_payments(bank::StreamSuccessfulPaymentsRequest {
            after_seq: i64::MAX as u64,
            ..Default::default()
        })
        .await
        .expect("the largest legal cursor")
        .into_inner();
    assert!(pages.message().await.expect("a clean end").is_none());
}

async fn text_with_control_characters_or_over_its_length_is_refused(app: TestApp) {
    let p = app.payer("边一", "1000.00", "5000.00").await;
    let start = |signup_id: &str, description: &str| platform::StartPaymentRequest {
        session_token: p.token.clone(),
        order_no: "EDGE-1".to_owned(),
        amount: "1.00".to_owned(),
        pay_password: e2e_tests::PAY_PASSWORD.to_owned(),
        signup_id: signup_id.to_owned(),
        description: description.to_owned(),
    };
    let pay = || app.pay.clone();
    let megabyte = "S".repeat(1 << 20);
    for (id, desc, reason, at) in [
        ("", "a\0b", "DESCRIPTION_INVALID", "description"),
        ("", "line\nbreak", "DESCRIPTION_INVALID", "description"),
        ("", &"长".repeat(65), "DESCRIPTION_INVALID", "description"),
        ("SU\0", "ok", "SIGN_UP_ID_INVALID", "signup_id"),
        (megabyte.as_str(), "ok", "SIGN_UP_ID_INVALID", "signup_id"),
    ] {
        refused(pay().start_payment(start(id, desc)).await, reason, at);
    }
    let none = app
        .ops
        .clone()
        .get_order_by_no(platform::GetOrderByNoRequest {
            order_no: "EDGE-1".to_owned(),
        })
        .await;
    assert_refused(none, Code::NotFound, "ORDER_NOT_FOUND");
    let longest = "长".repeat(64);
    let o = pay()
        .start_payment(start(&p.signup_id, &longest))
        .await
        .expect("64 characters and the real sign-up id are fine")
        .into_inner()
        .order
        .unwrap();
    assert_eq!(o.description, longest, "kept whole, never cut");

    for id in ["SU\0", megabyte.as_str(), "su-lower"] {
        let r = pay()
            .get_balance(platform::GetBalanceRequest {
                session_token: p.token.clone(),
                pay_password: e2e_tests::PAY_PASSWORD.to_owned(),
                signup_id: id.to_owned(),
            })
            .await;
        refused(r, "SIGN_UP_ID_INVALID", "signup_id");
        let r = pay()
            .get_remaining_limit(platform::GetRemainingLimitRequest {
                session_token: p.token.clone(),
                signup_id: id.to_owned(),
            })
            .await;
        refused(r, "SIGN_UP_ID_INVALID", "signup_id");
    }

    let r = app
        .recon
        .clone()
        .list_adjustments(platform::ListAdjustmentsRequest {
            record_key: "K\0".to_owned(),
            limit: 0,
        })
        .await;
    refused(r, "RECORD_KEY_INVALID", "record_key");
    let r = app
        .recon
        .clone()
        .list_cases(platform::ListCasesRequest {
            run_id: "RUN\0".to_owned(),
            ..Default::default()
        })
        .await;
    refused(r, "RUN_ID_INVALID", "run_id");
    let r = app
        .recon
        .clone()
        .list_cases(platform::ListCasesRequest {
            after_case_id: "CASE\0".to_owned(),
            ..Default::default()
        })
        .await;
    refused(r, "CASE_ID_INVALID", "after_case_id");

    for mut node in [app.bank_sim.clone(), app.platform_sim.clone()] {
        for subject in ["EDGE\0", "EDGE\n1"] {
            let r = node
                .list_audit_lines(sim::ListAuditLinesRequest {
                    subject: subject.to_owned(),
                    limit: 0,
                })
                .await;
            refused(r, "SUBJECT_INVALID", "subject");
        }
    }
}

/// One byte over the 4 MiB a node decodes of one message.
const OVER_THE_LIMIT: usize = 4 * 1024 * 1024 + 1;

/// Refused as RESOURCE_EXHAUSTED / MESSAGE_TOO_LARGE by the node of ErrorInfo domain `by`.
#[track_caller]
fn too_large<T: std::fmt::Debug>(r: Result<T, tonic::Status>, by: &str) {
    let s = assert_refused(r, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    assert_eq!(domain(&s), by, "{s:?}");
    assert!(
        s.message().contains("4 MiB"),
        "the message names the limit: {s:?}"
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_with_its_reason_and_changes_nothing() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let huge = "名".repeat(OVER_THE_LIMIT / 3 + 1);
    let register = |name: &str| platform::RegisterRequest {
        email: "big@example.com".to_owned(),
        real_name: name.to_owned(),
        login_password: "big-pass-1".to_owned(),
        pay_password: e2e_tests::PAY_PASSWORD.to_owned(),
    };
    too_large(
        app.website.clone().register(register(&huge)).await,
        "platform.interbank-sim",
    );
    let open = |name: &str| bank::OpenCardRequest {
        account_kind: bank::AccountKind::CardOnly as i32,
        holder_name: name.to_owned(),
        id_type: proto::common::v1::IdType::ResidentId as i32,
        id_number: "110105199003071239".to_owned(),
        card_password: "246810".to_owned(),
        opening_deposit: "0".to_owned(),
        card_number: "6221880000000000001".to_owned(),
    };
    too_large(
        app.branch.clone().open_card(open(&huge)).await,
        "bank.interbank-sim",
    );
    // A stream: a head, then one chunk over the limit.
    use bank::push_refund_batch_request::Part;
    let chunk = vec![b'x'; OVER_THE_LIMIT];
    let push = [
        Part::Head(bank::RefundBatchHead {
            batch_no: "BIG1".to_owned(),
            sha256: e2e_tests::sha256_hex(&chunk),
            size_bytes: chunk.len() as u64,
        }),
        Part::Chunk(chunk),
    ]
    .map(|p| bank::PushRefundBatchRequest { part: Some(p) });
    too_large(
        app.bank_refunds
            .clone()
            .push_refund_batch(tokio_stream::iter(push))
            .await,
        "bank.interbank-sim",
    );

    // Nothing was kept: the e-mail, the card number and the batch number are all still free.
    app.website
        .clone()
        .register(register("大小"))
        .await
        .expect("the e-mail was not taken");
    app.branch
        .clone()
        .open_card(open("大小"))
        .await
        .expect("the card number was not taken");
    assert_refused(
        app.bank_batch("BIG1").await,
        Code::NotFound,
        "BATCH_NOT_FOUND",
    );
}
