//! PlatformOpsService: operations staff.

use proto::platform::v1 as pb;
use proto::platform::v1::platform_ops_service_server::PlatformOpsService;
use shared::domain::Email;
use shared::error::ParseField;
use tonic::{Request, Response, Status};

use super::convert::{self, account_status_from_pb};
use super::{cut, handle};
use crate::domain::Platform;

pub struct Ops(pub Platform);

#[tonic::async_trait]
impl PlatformOpsService for Ops {
    #[tracing::instrument(skip_all, name = "ops.get_account")]
    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetAccount", &cut(&r.email), async {
            let email = Email::parse(&r.email).field("email")?;
            let account = self.0.account(&email).await?;
            let links = self.0.links(&email).await?;
            Ok(pb::GetAccountResponse {
                account: Some(convert::account(&account, &links)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "ops.set_account_status")]
    async fn set_account_status(
        &self,
        req: Request<pb::SetAccountStatusRequest>,
    ) -> Result<Response<pb::SetAccountStatusResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "SetAccountStatus", &cut(&r.email), async {
            let email = Email::parse(&r.email).field("email")?;
            let status = account_status_from_pb(r.status)?;
            let account = self.0.set_account_status(&email, status).await?;
            let links = self.0.links(&email).await?;
            Ok(pb::SetAccountStatusResponse {
                account: Some(convert::account(&account, &links)),
            })
        })
        .await
    }
}
