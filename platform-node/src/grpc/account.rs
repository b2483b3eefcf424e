//! AccountService: the customer's side of the platform website.

use proto::platform::v1 as pb;
use proto::platform::v1::account_service_server::AccountService;
use shared::clock::from_ms;
use shared::domain::{CardNumber, Email, LoginPassword, PayPassword, PersonName};
use shared::error::ParseField;
use shared::grpc::timestamp;
use tonic::{Request, Response, Status};

use super::{convert, cut, handle};
use crate::domain::Platform;

pub struct Website(pub Platform);

#[tonic::async_trait]
impl AccountService for Website {
    #[tracing::instrument(skip_all, name = "website.register")]
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "Register", &cut(&r.email), async {
            let email = Email::parse(&r.email).field("email")?;
            let name = PersonName::parse(&r.real_name).field("real_name")?;
            let login = LoginPassword::parse(&r.login_password).field("login_password")?;
            let pay = PayPassword::parse(&r.pay_password).field("pay_password")?;
            let account = self.0.register(email, name, login, pay).await?;
            Ok(pb::RegisterResponse {
                account: Some(convert::account(&account, &[])),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.login")]
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "Login", &cut(&r.email), async {
            let email = Email::parse(&r.email).field("email")?;
            let password = LoginPassword::parse(&r.login_password).field("login_password")?;
            let session = self.0.login(&email, &password).await?;
            Ok(pb::LoginResponse {
                session_token: session.token,
                expires_at: Some(timestamp(from_ms(session.expires_at_ms))),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.activate")]
    async fn activate(
        &self,
        req: Request<pb::ActivateRequest>,
    ) -> Result<Response<pb::ActivateResponse>, Status> {
        let r = req.into_inner();
        let subject = CardNumber::parse(&r.card_number)
            .map(|c| c.masked())
            .unwrap_or_else(|_| "unparsed card".to_owned());
        handle(&self.0, "Activate", &subject, async {
            let card = CardNumber::parse(&r.card_number).field("card_number")?;
            let link = self.0.activate(&r.session_token, &card).await?;
            Ok(pb::ActivateResponse {
                card_link: Some(convert::link(&link, true)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "website.get_my_account")]
    async fn get_my_account(
        &self,
        req: Request<pb::GetMyAccountRequest>,
    ) -> Result<Response<pb::GetMyAccountResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetMyAccount", "session", async {
            let (account, links) = self.0.my_account(&r.session_token).await?;
            Ok(pb::GetMyAccountResponse {
                account: Some(convert::account(&account, &links)),
            })
        })
        .await
    }
}
