//! The platform's line to the bank: [`BankPort`] over gRPC. Every call passes through the
//! platform's caller-side fault rules, and every answer is parsed like any other input.

use chrono::NaiveDate;
use proto::bank::v1 as pb;
use proto::bank::v1::bank_link_service_client::BankLinkServiceClient;
use shared::domain::{CardNumber, DailyLimit, Email, OtpCode, SignUpId};
use shared::fault::{Call, Faults, Side};
use shared::grpc::{PeerChannel, PeerLink, with_faults};
use shared::{ErrorClass, Money, PeerFailure, PeerRefusal};
use tonic::{Response, Status};

use crate::domain::{
    ActivationGrant, BalanceView, BankPayment, BankPort, BoxFuture, CardLink, CodeSent, DOMAIN,
    LimitView, PayOrder,
};

/// The ErrorInfo domain the bank's refusals carry.
pub(crate) const BANK_DOMAIN: &str = "bank.interbank-sim";

/// A gRPC client of the bank's BankLinkService.
#[derive(Clone)]
pub struct BankClient {
    client: BankLinkServiceClient<PeerChannel>,
    faults: Faults,
}

/// A malformed answer from the bank: a refusal, not a yes.
pub(crate) fn bad_answer(what: &str) -> PeerFailure {
    PeerFailure::Refused(PeerRefusal {
        class: ErrorClass::Internal,
        reason: "BANK_ANSWER_INVALID".to_owned(),
        message: format!("the bank's answer is not valid: {what}"),
        domain: DOMAIN.to_owned(),
    })
}

/// The times the bank may name, in seconds since 1970: the years 1 to 9999, as protobuf's
/// timestamps have them.
const BANK_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A time of the bank's answer in milliseconds since 1970; `None`: outside the years 1 to 9999,
/// or with nanoseconds outside a second.
pub(crate) fn unix_ms(t: proto::Timestamp) -> Option<i64> {
    if !BANK_SECONDS.contains(&t.seconds) || !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    Some(t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

fn money(s: &str, what: &str) -> Result<Money, PeerFailure> {
    Money::parse(s).map_err(|_| bad_answer(what))
}

fn date(s: &str) -> Result<NaiveDate, PeerFailure> {
    s.parse::<NaiveDate>()
        .map_err(|_| bad_answer("business_date"))
}

impl BankClient {
    /// A client that connects to `url` lazily over `link`, each call bounded by `timeout_ms`,
    /// passing through the caller-side rules of `faults`.
    pub fn new(
        url: &str,
        timeout_ms: u64,
        faults: Faults,
        link: &PeerLink,
    ) -> anyhow::Result<BankClient> {
        Ok(BankClient {
            client: BankLinkServiceClient::new(shared::grpc::peer_channel(url, timeout_ms, link)?),
            faults,
        })
    }

    /// Sends one call (`send` gets a fresh client each time) through the fault rules.
    async fn send<T, F, Fut>(&self, call: Call<'_>, send: F) -> Result<T, PeerFailure>
    where
        T: Default,
        F: Fn(BankLinkServiceClient<PeerChannel>) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        with_faults(&self.faults, Side::Caller, call, || {
            send(self.client.clone())
        })
        .await
        .map(Response::into_inner)
        .map_err(|s| shared::grpc::peer_failure(&s, BANK_DOMAIN))
    }
}

fn order_call<'a>(method: &'a str, o: &'a PayOrder) -> Call<'a> {
    Call {
        method,
        order_no: Some(o.order_no.as_str()),
        card_masked: Some(o.card_masked.clone()),
        amount: Some(o.amount.money()),
    }
}

impl BankPort for BankClient {
    fn confirm_activation<'a>(
        &'a self,
        signup_id: &'a SignUpId,
        card: &'a CardNumber,
        account: &'a Email,
    ) -> BoxFuture<'a, Result<ActivationGrant, PeerFailure>> {
        Box::pin(async move {
            let msg = pb::ConfirmActivationRequest {
                signup_id: signup_id.to_string(),
                card_number: card.expose().to_owned(),
                platform_account: account.as_str().to_owned(),
            };
            let call = Call {
                method: "ConfirmActivation",
                card_masked: Some(card.masked()),
                ..Call::default()
            };
            let answer = self
                .send(call, |mut c| {
                    let msg = msg.clone();
                    async move { c.confirm_activation(msg).await }
                })
                .await?;
            let limit =
                DailyLimit::parse(&answer.daily_limit).map_err(|_| bad_answer("daily_limit"))?;
            Ok(ActivationGrant {
                limit,
                mobile_masked: answer.mobile_masked.chars().take(11).collect(),
            })
        })
    }

    fn request_payment_code<'a>(
        &'a self,
        o: &'a PayOrder,
    ) -> BoxFuture<'a, Result<CodeSent, PeerFailure>> {
        Box::pin(async move {
            let msg = pb::RequestPaymentCodeRequest {
                order_no: o.order_no.as_str().to_owned(),
                signup_id: o.signup_id.to_string(),
                platform_account: o.account.as_str().to_owned(),
                amount: o.amount.to_string(),
            };
            let answer = self
                .send(order_call("RequestPaymentCode", o), |mut c| {
                    let msg = msg.clone();
                    async move { c.request_payment_code(msg).await }
                })
                .await?;
            let expires_at_ms = answer
                .code_expires_at
                .and_then(unix_ms)
                .ok_or_else(|| bad_answer("code_expires_at"))?;
            Ok(CodeSent {
                mobile_masked: answer.mobile_masked.chars().take(11).collect(),
                expires_at_ms,
            })
        })
    }

    fn pay<'a>(
        &'a self,
        o: &'a PayOrder,
        code: &'a OtpCode,
    ) -> BoxFuture<'a, Result<(String, NaiveDate), PeerFailure>> {
        Box::pin(async move {
            let msg = pb::PayRequest {
                order_no: o.order_no.as_str().to_owned(),
                signup_id: o.signup_id.to_string(),
                platform_account: o.account.as_str().to_owned(),
                amount: o.amount.to_string(),
                otp_code: code.expose().to_owned(),
            };
            let answer = self
                .send(order_call("Pay", o), |mut c| {
                    let msg = msg.clone();
                    async move { c.pay(msg).await }
                })
                .await?;
            match bank_payment(answer.payment.unwrap_or_default())? {
                BankPayment::Success { serial, date } => Ok((serial, date)),
                _ => Err(bad_answer("Pay answered without a debit")),
            }
        })
    }

    fn get_payment<'a>(
        &'a self,
        o: &'a PayOrder,
    ) -> BoxFuture<'a, Result<BankPayment, PeerFailure>> {
        Box::pin(async move {
            let msg = pb::GetPaymentRequest {
                order_no: o.order_no.as_str().to_owned(),
            };
            let answer = self
                .send(order_call("GetPayment", o), |mut c| {
                    let msg = msg.clone();
                    async move { c.get_payment(msg).await }
                })
                .await?;
            bank_payment(answer.payment.unwrap_or_default())
        })
    }

    fn balance<'a>(
        &'a self,
        link: &'a CardLink,
    ) -> BoxFuture<'a, Result<BalanceView, PeerFailure>> {
        Box::pin(async move {
            let msg = pb::GetBalanceRequest {
                signup_id: link.signup_id.to_string(),
                platform_account: link.email.as_str().to_owned(),
            };
            let call = Call {
                method: "GetBalance",
                card_masked: Some(link.card_masked.clone()),
                ..Call::default()
            };
            let a = self
                .send(call, |mut c| {
                    let msg = msg.clone();
                    async move { c.get_balance(msg).await }
                })
                .await?;
            Ok(BalanceView {
                card_masked: a.card_number_masked.chars().take(19).collect(),
                balance: money(&a.available_balance, "available_balance")?,
                card_status: a.card_status.chars().take(16).collect(),
            })
        })
    }

    fn remaining_limit<'a>(
        &'a self,
        link: &'a CardLink,
    ) -> BoxFuture<'a, Result<LimitView, PeerFailure>> {
        Box::pin(async move {
            let msg = pb::GetRemainingLimitRequest {
                signup_id: link.signup_id.to_string(),
                platform_account: link.email.as_str().to_owned(),
            };
            let call = Call {
                method: "GetRemainingLimit",
                card_masked: Some(link.card_masked.clone()),
                ..Call::default()
            };
            let a = self
                .send(call, |mut c| {
                    let msg = msg.clone();
                    async move { c.get_remaining_limit(msg).await }
                })
                .await?;
            Ok(LimitView {
                date: date(&a.business_date)?,
                limit: money(&a.daily_limit, "daily_limit")?,
                used: money(&a.used_today, "used_today")?,
                remaining: money(&a.remaining, "remaining")?,
                mobile_masked: match a.mobile_masked.as_str() {
                    "" => String::new(),
                    m if shared::domain::Mobile::is_masked(m) => m.to_owned(),
                    _ => return Err(bad_answer("mobile_masked")),
                },
            })
        })
    }
}

/// The bank's payment record as the platform reads it.
fn bank_payment(p: pb::Payment) -> Result<BankPayment, PeerFailure> {
    match pb::PaymentStatus::try_from(p.status) {
        Ok(pb::PaymentStatus::CodeSent) => Ok(BankPayment::CodeSent),
        Ok(pb::PaymentStatus::Success) if !p.bank_serial_no.is_empty() => {
            Ok(BankPayment::Success {
                serial: p.bank_serial_no.chars().take(40).collect(),
                date: date(&p.business_date)?,
            })
        }
        Ok(pb::PaymentStatus::Failed) => Ok(BankPayment::Failed(PeerRefusal {
            class: ErrorClass::from_name(&p.failure_code).unwrap_or(ErrorClass::FailedPrecondition),
            reason: p.failure_reason.chars().take(64).collect(),
            message: p.failure_message.chars().take(300).collect(),
            domain: BANK_DOMAIN.to_owned(),
        })),
        _ => Err(bad_answer("payment status")),
    }
}
