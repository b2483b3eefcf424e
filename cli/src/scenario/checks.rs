//! Cross-node checks: ask both nodes about the same thing and compare.

use super::nodes::NodeChannel;
use proto::bank::v1 as bank;
use proto::bank::v1::bank_link_service_client::BankLinkServiceClient;
use proto::bank::v1::branch_service_client::BranchServiceClient;
use proto::common::v1::SignUpStatus;
use proto::platform::v1 as platform;
use proto::platform::v1::platform_ops_service_client::PlatformOpsServiceClient;

use super::expect::Mismatch;

/// Where a check found the nodes disagreeing (or one of them not as expected).
pub type Found = Vec<Mismatch>;

/// The order's platform status is `status` and the bank agrees.
pub async fn order(
    bank_ch: NodeChannel,
    platform_ch: NodeChannel,
    order_no: &str,
    status: &str,
) -> Result<Found, tonic::Status> {
    let order = PlatformOpsServiceClient::new(platform_ch)
        .get_order_by_no(platform::GetOrderByNoRequest {
            order_no: order_no.to_owned(),
        })
        .await?
        .into_inner()
        .order
        .unwrap_or_default();
    let payment = match BankLinkServiceClient::new(bank_ch)
        .get_payment(bank::GetPaymentRequest {
            order_no: order_no.to_owned(),
        })
        .await
    {
        Ok(r) => r.into_inner().payment,
        Err(s) if s.code() == tonic::Code::NotFound => None,
        Err(s) => return Err(s),
    };
    Ok(order_against_payment(&order, payment.as_ref(), status))
}

/// Where the platform's `order` is not `status`, or the bank's `payment` does not agree with
/// it: the status each platform status allows at the bank, the amount and card, and for SUCCESS
/// the serial number and business date.
fn order_against_payment(
    order: &platform::Order,
    payment: Option<&bank::Payment>,
    status: &str,
) -> Found {
    let mut found = Vec::new();
    let platform_status = platform::OrderStatus::try_from(order.status)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ORDER_STATUS_")
                .to_owned()
        })
        .unwrap_or_default();
    if platform_status != status {
        found.push(Mismatch::new(
            "platform.status",
            status,
            Some(platform_status.clone()),
        ));
    }
    let bank_status = payment.map(|p| {
        bank::PaymentStatus::try_from(p.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("PAYMENT_STATUS_")
                    .to_owned()
            })
            .unwrap_or_default()
    });
    if !order_statuses_agree(&platform_status, bank_status.as_deref()) {
        found.push(Mismatch::new(
            "bank.status",
            format!("what agrees with platform {platform_status}"),
            Some(bank_status.unwrap_or_else(|| "no payment".to_owned())),
        ));
    }
    let Some(p) = payment else {
        return found;
    };
    let mut pairs = vec![
        ("amount", &order.amount, &p.amount),
        (
            "card_number_masked",
            &order.card_number_masked,
            &p.card_number_masked,
        ),
    ];
    if platform_status == "SUCCESS" {
        pairs.push(("bank_serial_no", &order.bank_serial_no, &p.bank_serial_no));
        pairs.push(("business_date", &order.business_date, &p.business_date));
    }
    differing(&mut found, "bank", &pairs);
    found
}

/// What the bank must hold for each platform status (`None`: no payment).
fn order_statuses_agree(platform: &str, bank: Option<&str>) -> bool {
    matches!(
        (platform, bank),
        ("SUCCESS", Some("SUCCESS"))
            | ("FAILED", Some("FAILED") | None)
            | ("AWAITING_CODE", Some("CODE_SENT"))
            | ("CREATED", None)
            // UNKNOWN: the platform does not know; the bank may hold anything.
            | ("UNKNOWN", _)
    )
}

/// A mismatch at `{at}.{name}` for each pair (name, the platform's, the bank's) that differs.
fn differing(found: &mut Found, at: &str, pairs: &[(&str, &String, &String)]) {
    for (name, mine, theirs) in pairs {
        if mine != theirs {
            found.push(Mismatch::new(
                &format!("{at}.{name}"),
                (*mine).clone(),
                Some((*theirs).clone()),
            ));
        }
    }
}

/// Every card-link of the account on the platform is the bank's sign-up, in a matching state,
/// with the same card and account. (The daily limit is not compared: the platform keeps the one
/// the bank granted at activation and asks the bank for the current one.)
pub async fn signups(
    bank_ch: NodeChannel,
    platform_ch: NodeChannel,
    account: &str,
    count: Option<u64>,
) -> Result<Found, tonic::Status> {
    let mut found = Vec::new();
    let acct = PlatformOpsServiceClient::new(platform_ch)
        .get_account(platform::GetAccountRequest {
            email: account.to_owned(),
        })
        .await?
        .into_inner()
        .account
        .unwrap_or_default();
    if let Some(n) = count
        && acct.card_links.len() as u64 != n
    {
        found.push(Mismatch::new(
            "platform.card_links",
            format!("{n} card-links"),
            Some(format!("{}", acct.card_links.len())),
        ));
    }
    let mut branch = BranchServiceClient::new(bank_ch);
    for link in &acct.card_links {
        let signup = match branch
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::SignupId(
                    link.signup_id.clone(),
                )),
            })
            .await
        {
            Ok(r) => r.into_inner().signup,
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => return Err(s),
        };
        link_against_signup(&mut found, &acct.email, link, signup.as_ref());
    }
    Ok(found)
}

/// Where the card-link `link` of the account `email` and the bank's sign-up of it disagree.
fn link_against_signup(
    found: &mut Found,
    email: &String,
    link: &platform::CardLink,
    signup: Option<&bank::SignUp>,
) {
    let at = format!("sign-up {}", link.signup_id);
    let Some(signup) = signup else {
        found.push(Mismatch::new(
            &at,
            "held by the bank",
            Some("not found".into()),
        ));
        return;
    };
    let link_status = platform::LinkStatus::try_from(link.status).unwrap_or_default();
    let bank_status = SignUpStatus::try_from(signup.status).unwrap_or_default();
    let agrees = matches!(
        (link_status, bank_status),
        (
            platform::LinkStatus::Signed | platform::LinkStatus::Active,
            SignUpStatus::Signed | SignUpStatus::Cancelling
        ) | (platform::LinkStatus::Cancelled, SignUpStatus::Cancelled)
    );
    if !agrees {
        found.push(Mismatch::new(
            &format!("{at}.status"),
            format!("what agrees with platform {}", link_status.as_str_name()),
            Some(bank_status.as_str_name().to_owned()),
        ));
    }
    differing(
        found,
        &at,
        &[
            (
                "card_number_masked",
                &link.card_number_masked,
                &signup.card_number_masked,
            ),
            ("platform_account", email, &signup.platform_account),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_bank_may_hold_for_each_platform_status() {
        let cases = [
            ("SUCCESS", Some("SUCCESS"), true),
            ("SUCCESS", Some("CODE_SENT"), false),
            ("SUCCESS", None, false),
            ("FAILED", Some("FAILED"), true),
            ("FAILED", None, true),
            ("FAILED", Some("SUCCESS"), false),
            ("AWAITING_CODE", Some("CODE_SENT"), true),
            ("AWAITING_CODE", None, false),
            ("CREATED", None, true),
            ("CREATED", Some("CODE_SENT"), false),
            ("UNKNOWN", Some("SUCCESS"), true),
            ("UNKNOWN", None, true),
        ];
        for (platform, bank, agrees) in cases {
            assert_eq!(
                order_statuses_agree(platform, bank),
                agrees,
                "{platform} {bank:?}"
            );
        }
    }

    #[test]
    fn a_paid_order_differs_in_serial_only_when_both_say_success() {
        let order = platform::Order {
            status: platform::OrderStatus::Success as i32,
            amount: "1.00".into(),
            bank_serial_no: "S1".into(),
            ..Default::default()
        };
        let payment = bank::Payment {
            status: bank::PaymentStatus::Success as i32,
            amount: "1.00".into(),
            bank_serial_no: "S2".into(),
            ..Default::default()
        };
        let found = order_against_payment(&order, Some(&payment), "SUCCESS");
        let fields: Vec<_> = found.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(fields, ["bank.bank_serial_no"]);
        let failed = platform::Order {
            status: platform::OrderStatus::Failed as i32,
            ..order
        };
        let found = order_against_payment(&failed, Some(&payment), "FAILED");
        let fields: Vec<_> = found.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(fields, ["bank.status"]);
    }
}
