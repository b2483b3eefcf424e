//! PayService: paying with the card-link, and the balance and limit views.

use proto::platform::v1 as pb;
use proto::platform::v1::pay_service_server::PayService;
use shared::domain::{Description, OrderNo, OtpCode, PayAmount, PayPassword, SignUpId};
use shared::error::ParseField;
use tonic::{Request, Response, Status};

use super::{convert, cut, handle};
use crate::domain::Platform;

pub struct Pay(pub Platform);

/// An optional sign-up id: empty means "the newest active card-link".
fn opt(s: &str) -> Result<Option<SignUpId>, shared::error::FieldError> {
    match s {
        "" => Ok(None),
        s => SignUpId::parse(s).field("signup_id").map(Some),
    }
}

#[tonic::async_trait]
impl PayService for Pay {
    #[tracing::instrument(skip_all, name = "website.start_payment", fields(order_no = %req.get_ref().order_no))]
    async fn start_payment(
        &self,
        req: Request<pb::StartPaymentRequest>,
    ) -> Result<Response<pb::StartPaymentResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "StartPayment", &cut(&r.order_no), async {
            let order_no = OrderNo::parse(&r.order_no).field("order_no")?;
            let amount = PayAmount::parse(&r.amount).field("amount")?;
            let password = PayPassword::parse(&r.pay_password).field("pay_password")?;
            let signup_id = opt(&r.signup_id)?;
            let description = Description::parse(&r.description).field("description")?;
            let o = self
                .0
                .start_payment(
                    &r.session_token,
                    order_no,
                    amount,
                    &password,
                    signup_id.as_ref(),
                    &description,
                )
                .await?;
            Ok(pb::StartPaymentResponse {
                order: Some(convert::order(&o)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.confirm_payment", fields(order_no = %req.get_ref().order_no))]
    async fn confirm_payment(
        &self,
        req: Request<pb::ConfirmPaymentRequest>,
    ) -> Result<Response<pb::ConfirmPaymentResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ConfirmPayment", &cut(&r.order_no), async {
            let order_no = OrderNo::parse(&r.order_no).field("order_no")?;
            let code = OtpCode::parse(&r.otp_code).field("otp_code")?;
            let o = self
                .0
                .confirm_payment(&r.session_token, &order_no, &code)
                .await?;
            Ok(pb::ConfirmPaymentResponse {
                order: Some(convert::order(&o)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.get_order", fields(order_no = %req.get_ref().order_no))]
    async fn get_order(
        &self,
        req: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetOrder", &cut(&r.order_no), async {
            let order_no = OrderNo::parse(&r.order_no).field("order_no")?;
            let o = self.0.my_order(&r.session_token, &order_no).await?;
            Ok(pb::GetOrderResponse {
                order: Some(convert::order(&o)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.get_balance")]
    async fn get_balance(
        &self,
        req: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetBalance", "session", async {
            let password = PayPassword::parse(&r.pay_password).field("pay_password")?;
            let signup_id = opt(&r.signup_id)?;
            let b = self
                .0
                .balance(&r.session_token, &password, signup_id.as_ref())
                .await?;
            Ok(pb::GetBalanceResponse {
                card_number_masked: b.card_masked,
                available_balance: b.balance.to_string(),
                card_status: b.card_status,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.get_remaining_limit")]
    async fn get_remaining_limit(
        &self,
        req: Request<pb::GetRemainingLimitRequest>,
    ) -> Result<Response<pb::GetRemainingLimitResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetRemainingLimit", "session", async {
            let signup_id = opt(&r.signup_id)?;
            let l = self
                .0
                .remaining_limit(&r.session_token, signup_id.as_ref())
                .await?;
            Ok(pb::GetRemainingLimitResponse {
                business_date: l.date.to_string(),
                daily_limit: l.limit.to_string(),
                used_today: l.used.to_string(),
                remaining: l.remaining.to_string(),
            })
        })
        .await
    }
}
