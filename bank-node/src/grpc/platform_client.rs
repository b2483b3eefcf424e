//! The bank's line to the platform: [`PlatformPort`] over gRPC.

use proto::platform::v1 as pb;
use proto::platform::v1::platform_link_service_client::PlatformLinkServiceClient;
use shared::PeerFailure;
use shared::domain::{Email, SignUpId};
use shared::fault::{Call, Faults, Side};
use shared::grpc::{PeerChannel, PeerLink, with_faults};

use crate::domain::{BoxFuture, PlatformPort, PlatformSignUp};

/// The ErrorInfo domain the platform's refusals carry.
const PLATFORM_DOMAIN: &str = "platform.interbank-sim";

/// A gRPC client of the platform's PlatformLinkService.
#[derive(Clone)]
pub struct PlatformClient {
    client: PlatformLinkServiceClient<PeerChannel>,
    faults: Faults,
}

impl PlatformClient {
    /// A client that connects to `url` lazily over `link`, each call bounded by `timeout_ms`,
    /// passing through the caller-side rules of `faults`.
    pub fn new(
        url: &str,
        timeout_ms: u64,
        faults: Faults,
        link: &PeerLink,
    ) -> anyhow::Result<PlatformClient> {
        Ok(PlatformClient {
            client: PlatformLinkServiceClient::new(shared::grpc::peer_channel(
                url, timeout_ms, link,
            )?),
            faults,
        })
    }
}

impl PlatformPort for PlatformClient {
    fn confirm_sign_up<'a>(
        &'a self,
        req: &'a PlatformSignUp,
    ) -> BoxFuture<'a, Result<(), PeerFailure>> {
        Box::pin(async move {
            let msg = pb::ConfirmSignUpRequest {
                signup_id: req.signup_id.to_string(),
                platform_account: req.account.as_str().to_owned(),
                real_name: req.real_name.as_str().to_owned(),
                id_type: shared::grpc::id_type_to_pb(req.id_type) as i32,
                card_number_masked: req.card_masked.clone(),
                business_date: req.business_date.to_string(),
            };
            let call = Call {
                method: "ConfirmSignUp",
                card_masked: Some(req.card_masked.clone()),
                ..Call::default()
            };
            with_faults(&self.faults, Side::Caller, call, || {
                let mut client = self.client.clone();
                let msg = msg.clone();
                async move { client.confirm_sign_up(msg).await }
            })
            .await
            .map(|_| ())
            .map_err(|s| shared::grpc::peer_failure(&s, PLATFORM_DOMAIN))
        })
    }

    fn confirm_cancel<'a>(
        &'a self,
        signup_id: &'a SignUpId,
        account: &'a Email,
        business_date: chrono::NaiveDate,
    ) -> BoxFuture<'a, Result<(), PeerFailure>> {
        Box::pin(async move {
            let msg = pb::ConfirmCancelRequest {
                signup_id: signup_id.to_string(),
                platform_account: account.as_str().to_owned(),
                business_date: business_date.to_string(),
            };
            let call = Call {
                method: "ConfirmCancel",
                ..Call::default()
            };
            with_faults(&self.faults, Side::Caller, call, || {
                let mut client = self.client.clone();
                let msg = msg.clone();
                async move { client.confirm_cancel(msg).await }
            })
            .await
            .map(|_| ())
            .map_err(|s| shared::grpc::peer_failure(&s, PLATFORM_DOMAIN))
        })
    }
}
