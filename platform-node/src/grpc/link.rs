//! PlatformLinkService: what the bank asks the platform.

use proto::platform::v1 as pb;
use proto::platform::v1::platform_link_service_server::PlatformLinkService;
use shared::FieldError;
use shared::domain::{Email, PersonName};
use shared::error::ParseField;
use shared::fault::{Call, Side};
use shared::grpc::{date_from_pb, with_faults};
use shared::node::Node;
use tonic::{Request, Response, Status};

use super::{cut, handle};
use crate::domain::{IncomingSignUp, Platform};
use shared::grpc::id_type_from_pb;

pub struct Link(pub Platform);

/// A sign-up id as the bank issues them.
fn signup_id(s: &str) -> Result<shared::domain::SignUpId, FieldError> {
    shared::domain::SignUpId::parse(s).field("signup_id")
}

/// A masked card number as the bank sends it: 16 to 19 characters of digits and `*`.
fn masked_card(s: &str) -> Result<String, FieldError> {
    let ok = (16..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || b == b'*');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(FieldError::new(
            "card_number_masked",
            "CARD_NUMBER_INVALID",
            "a masked card number is 16 to 19 digits and *",
        ))
    }
}

#[tonic::async_trait]
impl PlatformLinkService for Link {
    #[tracing::instrument(skip_all, name = "link.confirm_sign_up", fields(signup_id = %req.get_ref().signup_id))]
    async fn confirm_sign_up(
        &self,
        req: Request<pb::ConfirmSignUpRequest>,
    ) -> Result<Response<pb::ConfirmSignUpResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.signup_id);
        let call = Call {
            method: "ConfirmSignUp",
            card_masked: Some(r.card_number_masked.clone()),
            ..Call::default()
        };
        with_faults(self.0.faults(), Side::Callee, call, || {
            handle(&self.0, "ConfirmSignUp", &subject, async {
                let incoming = IncomingSignUp {
                    signup_id: signup_id(&r.signup_id)?,
                    account: Email::parse(&r.platform_account).field("platform_account")?,
                    real_name: PersonName::parse(&r.real_name).field("real_name")?,
                    id_type: id_type_from_pb(r.id_type)?,
                    card_masked: masked_card(&r.card_number_masked)?,
                    business_date: date_from_pb("business_date", &r.business_date)?,
                };
                let link = self.0.confirm_sign_up(incoming).await?;
                Ok(pb::ConfirmSignUpResponse {
                    platform_link_id: link.platform_link_id,
                })
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "link.confirm_cancel", fields(signup_id = %req.get_ref().signup_id))]
    async fn confirm_cancel(
        &self,
        req: Request<pb::ConfirmCancelRequest>,
    ) -> Result<Response<pb::ConfirmCancelResponse>, Status> {
        let r = req.into_inner();
        let subject = cut(&r.signup_id);
        let call = Call {
            method: "ConfirmCancel",
            ..Call::default()
        };
        with_faults(self.0.faults(), Side::Callee, call, || {
            handle(&self.0, "ConfirmCancel", &subject, async {
                let id = signup_id(&r.signup_id)?;
                let account = Email::parse(&r.platform_account).field("platform_account")?;
                let date = date_from_pb("business_date", &r.business_date)?;
                let link = self.0.confirm_cancel(&id, &account, date).await?;
                Ok(pb::ConfirmCancelResponse {
                    platform_link_id: link.platform_link_id,
                })
            })
        })
        .await
    }
}
