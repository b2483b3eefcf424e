//! BankLinkService: what the platform asks the bank. Every call here passes through the bank's
//! callee-side fault rules first.

use proto::bank::v1 as pb;
use proto::bank::v1::bank_link_service_server::BankLinkService;
use shared::Money;
use shared::domain::{CardNumber, Email, OrderNo, OtpCode, PayAmount, SignUpId};
use shared::error::ParseField;
use shared::fault::{Call, Side};
use shared::grpc::with_faults;
use tonic::{Request, Response, Status};

use super::{convert, cut, handle};
use crate::domain::{Bank, BankError, PaymentRequest};

pub struct Link(pub Bank);

/// A payment request from its wire fields.
fn payment_request(
    order_no: &str,
    signup_id: &str,
    account: &str,
    amount: &str,
) -> Result<PaymentRequest, BankError> {
    Ok(PaymentRequest {
        order_no: OrderNo::parse(order_no).field("order_no")?,
        signup_id: signup_id_of(signup_id)?,
        account: Email::parse(account).field("platform_account")?,
        amount: PayAmount::parse(amount).field("amount")?,
    })
}

/// A sign-up id from the wire, parsed.
fn signup_id_of(s: &str) -> Result<SignUpId, shared::FieldError> {
    SignUpId::parse(s).field("signup_id")
}

impl Link {
    /// How a fault rule sees a payment call; the card is looked up only when rules exist.
    /// GetPayment as fault rules see it: the order, and (only when rules are installed) the
    /// payment's card and amount, as the platform's side of the call names them.
    async fn payment_call<'a>(&self, order_no: &'a str) -> Call<'a> {
        let known = match OrderNo::parse(order_no) {
            Ok(o) if !self.0.faults.is_empty() => self.0.store.payment(&o).await.ok().flatten(),
            _ => None,
        };
        Call {
            method: "GetPayment",
            order_no: Some(order_no),
            card_masked: known.as_ref().map(|p| p.card.masked()),
            amount: known.map(|p| p.amount.money()),
        }
    }

    async fn call<'a>(
        &self,
        method: &'a str,
        order_no: Option<&'a str>,
        signup_id: &str,
        amount: &str,
    ) -> Call<'a> {
        let card_masked = match SignUpId::parse(signup_id) {
            Ok(id) if !self.0.faults.is_empty() => {
                self.0.signup(&id).await.ok().map(|s| s.card.masked())
            }
            _ => None,
        };
        Call {
            method,
            order_no,
            card_masked,
            amount: Money::parse(amount).ok(),
        }
    }
}

#[tonic::async_trait]
impl BankLinkService for Link {
    #[tracing::instrument(skip_all, name = "link.confirm_activation", fields(signup_id = %req.get_ref().signup_id))]
    async fn confirm_activation(
        &self,
        req: Request<pb::ConfirmActivationRequest>,
    ) -> Result<Response<pb::ConfirmActivationResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.signup_id);
        let call = Call {
            method: "ConfirmActivation",
            card_masked: CardNumber::parse(&r.card_number).ok().map(|c| c.masked()),
            ..Call::default()
        };
        with_faults(&self.0.faults, Side::Callee, call, || {
            handle(&self.0, "ConfirmActivation", &subject, async {
                let card = CardNumber::parse(&r.card_number).field("card_number")?;
                let account = Email::parse(&r.platform_account).field("platform_account")?;
                let s = self
                    .0
                    .confirm_activation(&signup_id_of(&r.signup_id)?, &card, &account)
                    .await?;
                Ok(pb::ConfirmActivationResponse {
                    signup_id: s.id.to_string(),
                    daily_limit: s.limit.to_string(),
                    mobile_masked: s.mobile.masked(),
                })
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "link.request_payment_code", fields(order_no = %req.get_ref().order_no))]
    async fn request_payment_code(
        &self,
        req: Request<pb::RequestPaymentCodeRequest>,
    ) -> Result<Response<pb::RequestPaymentCodeResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.order_no);
        let call = self
            .call(
                "RequestPaymentCode",
                Some(&r.order_no),
                &r.signup_id,
                &r.amount,
            )
            .await;
        with_faults(&self.0.faults, Side::Callee, call, || {
            handle(&self.0, "RequestPaymentCode", &subject, async {
                let req =
                    payment_request(&r.order_no, &r.signup_id, &r.platform_account, &r.amount)?;
                let c = self.0.request_payment_code(req).await?;
                Ok(pb::RequestPaymentCodeResponse {
                    order_no: c.order_no.as_str().to_owned(),
                    mobile_masked: c.mobile_masked,
                    code_expires_at: Some(shared::grpc::timestamp(shared::clock::from_ms(
                        c.expires_at_ms,
                    ))),
                })
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "link.pay", fields(order_no = %req.get_ref().order_no))]
    async fn pay(&self, req: Request<pb::PayRequest>) -> Result<Response<pb::PayResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.order_no);
        let call = self
            .call("Pay", Some(&r.order_no), &r.signup_id, &r.amount)
            .await;
        with_faults(&self.0.faults, Side::Callee, call, || {
            handle(&self.0, "Pay", &subject, async {
                let req =
                    payment_request(&r.order_no, &r.signup_id, &r.platform_account, &r.amount)?;
                let code = OtpCode::parse(&r.otp_code).field("otp_code")?;
                let p = self.0.pay(req, code).await?;
                Ok(pb::PayResponse {
                    payment: Some(convert::payment(&p)),
                })
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "link.get_payment", fields(order_no = %req.get_ref().order_no))]
    async fn get_payment(
        &self,
        req: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.order_no);
        let call = self.payment_call(&r.order_no).await;
        with_faults(&self.0.faults, Side::Callee, call, || {
            handle(&self.0, "GetPayment", &subject, async {
                let order = OrderNo::parse(&r.order_no).field("order_no")?;
                let p = self.0.payment(&order).await?;
                Ok(pb::GetPaymentResponse {
                    payment: Some(convert::payment(&p)),
                })
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "link.get_balance", fields(signup_id = %req.get_ref().signup_id))]
    async fn get_balance(
        &self,
        req: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.signup_id);
        let call = self.call("GetBalance", None, &r.signup_id, "").await;
        with_faults(&self.0.faults, Side::Callee, call, || {
            handle(&self.0, "GetBalance", &subject, async {
                let account = Email::parse(&r.platform_account).field("platform_account")?;
                let b = self
                    .0
                    .balance(&signup_id_of(&r.signup_id)?, &account)
                    .await?;
                Ok(pb::GetBalanceResponse {
                    card_number_masked: b.card_masked,
                    available_balance: b.balance.to_string(),
                    card_status: b.status.code().to_owned(),
                })
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "link.get_remaining_limit", fields(signup_id = %req.get_ref().signup_id))]
    async fn get_remaining_limit(
        &self,
        req: Request<pb::GetRemainingLimitRequest>,
    ) -> Result<Response<pb::GetRemainingLimitResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.signup_id);
        let call = self.call("GetRemainingLimit", None, &r.signup_id, "").await;
        with_faults(&self.0.faults, Side::Callee, call, || {
            handle(&self.0, "GetRemainingLimit", &subject, async {
                let account = Email::parse(&r.platform_account).field("platform_account")?;
                let l = self
                    .0
                    .remaining_limit(&signup_id_of(&r.signup_id)?, &account)
                    .await?;
                Ok(pb::GetRemainingLimitResponse {
                    business_date: l.date.to_string(),
                    daily_limit: l.limit.to_string(),
                    used_today: l.used.to_string(),
                    remaining: l.remaining.to_string(),
                    mobile_masked: l.mobile_masked,
                })
            })
        })
        .await
    }
}
