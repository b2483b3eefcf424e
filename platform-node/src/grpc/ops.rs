//! PlatformOpsService: operations staff.

use proto::platform::v1 as pb;
use proto::platform::v1::platform_ops_service_server::PlatformOpsService;
use shared::domain::{Email, OrderNo};
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
                account: Some(convert::account(
                    &account,
                    &links.into_iter().map(|l| (l, false)).collect::<Vec<_>>(),
                )),
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
                account: Some(convert::account(
                    &account,
                    &links.into_iter().map(|l| (l, false)).collect::<Vec<_>>(),
                )),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "ops.get_order_by_no", fields(order_no = %req.get_ref().order_no))]
    async fn get_order_by_no(
        &self,
        req: Request<pb::GetOrderByNoRequest>,
    ) -> Result<Response<pb::GetOrderByNoResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetOrderByNo", &cut(&r.order_no), async {
            let order_no = OrderNo::parse(&r.order_no).field("order_no")?;
            let o = self.0.order_of(&order_no).await?;
            Ok(pb::GetOrderByNoResponse {
                order: Some(convert::order(&o)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "ops.resolve_order", fields(order_no = %req.get_ref().order_no))]
    async fn resolve_order(
        &self,
        req: Request<pb::ResolveOrderRequest>,
    ) -> Result<Response<pb::ResolveOrderResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ResolveOrder", &cut(&r.order_no), async {
            let order_no = OrderNo::parse(&r.order_no).field("order_no")?;
            let o = self.0.resolve(&order_no).await?;
            Ok(pb::ResolveOrderResponse {
                order: Some(convert::order(&o)),
            })
        })
        .await
    }
}
