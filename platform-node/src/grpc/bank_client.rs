//! The platform's line to the bank: [`BankPort`] over gRPC.

use proto::bank::v1 as pb;
use proto::bank::v1::bank_link_service_client::BankLinkServiceClient;
use shared::domain::{CardNumber, DailyLimit, Email};
use shared::{ErrorClass, PeerFailure, PeerRefusal};
use tonic::transport::Channel;

use crate::domain::{ActivationGrant, BankPort, BoxFuture, DOMAIN};

/// The ErrorInfo domain the bank's refusals carry.
const BANK_DOMAIN: &str = "bank.interbank-sim";

/// A gRPC client of the bank's BankLinkService.
#[derive(Clone)]
pub struct BankClient {
    client: BankLinkServiceClient<Channel>,
}

impl BankClient {
    /// A client that connects to `url` lazily, each call bounded by `timeout_ms`.
    pub fn new(url: &str, timeout_ms: u64) -> anyhow::Result<BankClient> {
        Ok(BankClient {
            client: BankLinkServiceClient::new(shared::grpc::peer_channel(url, timeout_ms)?),
        })
    }
}

impl BankPort for BankClient {
    fn confirm_activation<'a>(
        &'a self,
        signup_id: &'a str,
        card: &'a CardNumber,
        account: &'a Email,
    ) -> BoxFuture<'a, Result<ActivationGrant, PeerFailure>> {
        Box::pin(async move {
            let msg = pb::ConfirmActivationRequest {
                signup_id: signup_id.to_owned(),
                card_number: card.expose().to_owned(),
                platform_account: account.as_str().to_owned(),
            };
            let answer = self
                .client
                .clone()
                .confirm_activation(msg)
                .await
                .map_err(|s| shared::grpc::peer_failure(&s, BANK_DOMAIN))?
                .into_inner();
            // The bank's answer is input too: a malformed one is a refusal, not a yes.
            let limit = DailyLimit::parse(&answer.daily_limit).map_err(|e| {
                PeerFailure::Refused(PeerRefusal {
                    class: ErrorClass::Internal,
                    reason: "BANK_ANSWER_INVALID".to_owned(),
                    message: format!("the bank's daily_limit is not valid: {e}"),
                    domain: DOMAIN.to_owned(),
                })
            })?;
            Ok(ActivationGrant {
                limit,
                mobile_masked: answer.mobile_masked.chars().take(11).collect(),
            })
        })
    }
}
