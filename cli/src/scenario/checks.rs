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
    let mut found = Vec::new();
    let order = PlatformOpsServiceClient::new(platform_ch)
        .get_order_by_no(platform::GetOrderByNoRequest {
            order_no: order_no.to_owned(),
        })
        .await?
        .into_inner()
        .order
        .unwrap_or_default();
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
    // What the bank must hold for each platform status.
    let bank_status = payment.as_ref().map(|p| {
        bank::PaymentStatus::try_from(p.status)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("PAYMENT_STATUS_")
                    .to_owned()
            })
            .unwrap_or_default()
    });
    let agrees = match (platform_status.as_str(), bank_status.as_deref()) {
        ("SUCCESS", Some("SUCCESS")) => true,
        ("FAILED", Some("FAILED") | None) => true,
        ("AWAITING_CODE", Some("CODE_SENT")) => true,
        ("CREATED", None) => true,
        // UNKNOWN: the platform does not know; the bank may hold anything.
        ("UNKNOWN", _) => true,
        _ => false,
    };
    if !agrees {
        found.push(Mismatch::new(
            "bank.status",
            format!("what agrees with platform {platform_status}"),
            Some(bank_status.unwrap_or_else(|| "no payment".to_owned())),
        ));
    }
    if let Some(p) = &payment {
        let pairs = [
            ("amount", &order.amount, &p.amount),
            (
                "card_number_masked",
                &order.card_number_masked,
                &p.card_number_masked,
            ),
        ];
        for (name, mine, theirs) in pairs {
            if mine != theirs {
                found.push(Mismatch::new(
                    &format!("bank.{name}"),
                    mine.clone(),
                    Some(theirs.clone()),
                ));
            }
        }
        if platform_status == "SUCCESS" {
            for (name, mine, theirs) in [
                ("bank_serial_no", &order.bank_serial_no, &p.bank_serial_no),
                ("business_date", &order.business_date, &p.business_date),
            ] {
                if mine != theirs {
                    found.push(Mismatch::new(
                        &format!("bank.{name}"),
                        mine.clone(),
                        Some(theirs.clone()),
                    ));
                }
            }
        }
    }
    Ok(found)
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
        let at = format!("sign-up {}", link.signup_id);
        let signup = match branch
            .get_sign_up(bank::GetSignUpRequest {
                key: Some(bank::get_sign_up_request::Key::SignupId(
                    link.signup_id.clone(),
                )),
            })
            .await
        {
            Ok(r) => r.into_inner().signup.unwrap_or_default(),
            Err(s) if s.code() == tonic::Code::NotFound => {
                found.push(Mismatch::new(
                    &at,
                    "held by the bank",
                    Some("not found".into()),
                ));
                continue;
            }
            Err(s) => return Err(s),
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
        for (name, mine, theirs) in [
            (
                "card_number_masked",
                &link.card_number_masked,
                &signup.card_number_masked,
            ),
            ("platform_account", &acct.email, &signup.platform_account),
        ] {
            if mine != theirs {
                found.push(Mismatch::new(
                    &format!("{at}.{name}"),
                    mine.clone(),
                    Some(theirs.clone()),
                ));
            }
        }
    }
    Ok(found)
}
