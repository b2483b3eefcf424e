//! BankLinkService: what the platform asks the bank.

use proto::bank::v1 as pb;
use proto::bank::v1::bank_link_service_server::BankLinkService;
use shared::domain::{CardNumber, Email};
use shared::error::ParseField;
use tonic::{Request, Response, Status};

use super::handle;
use crate::domain::Bank;

pub struct Link(pub Bank);

#[tonic::async_trait]
impl BankLinkService for Link {
    #[tracing::instrument(skip_all, name = "link.confirm_activation", fields(signup_id = %req.get_ref().signup_id))]
    async fn confirm_activation(
        &self,
        req: Request<pb::ConfirmActivationRequest>,
    ) -> Result<Response<pb::ConfirmActivationResponse>, Status> {
        let r = req.into_inner();
        let subject: String = r.signup_id.chars().take(40).collect();
        handle(&self.0, "ConfirmActivation", &subject, async {
            let card = CardNumber::parse(&r.card_number).field("card_number")?;
            let account = Email::parse(&r.platform_account).field("platform_account")?;
            let s = self
                .0
                .confirm_activation(&r.signup_id, &card, &account)
                .await?;
            Ok(pb::ConfirmActivationResponse {
                signup_id: s.id.clone(),
                daily_limit: s.limit.to_string(),
                mobile_masked: s.mobile.masked(),
            })
        })
        .await
    }
}
