//! SmsOutboxService: the SMS gateway stand-in's outbox, for testers.

use proto::sim::v1 as pb;
use proto::sim::v1::sms_outbox_service_server::SmsOutboxService;
use shared::domain::Mobile;
use shared::error::ParseField;
use tonic::{Request, Response, Status};

use super::handle;
use crate::domain::Bank;

/// Messages one listing returns when the caller does not say.
const SMS_LIST_DEFAULT: u32 = 50;

pub struct Outbox(pub Bank);

#[tonic::async_trait]
impl SmsOutboxService for Outbox {
    async fn list_sms(
        &self,
        req: Request<pb::ListSmsRequest>,
    ) -> Result<Response<pb::ListSmsResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ListSms", "outbox", async {
            let mobile = match r.mobile.as_str() {
                "" => None,
                m => Some(Mobile::parse(m).field("mobile")?),
            };
            let limit = if r.limit == 0 {
                SMS_LIST_DEFAULT
            } else {
                r.limit
            };
            let messages = self
                .0
                .sms(mobile.as_ref().map(Mobile::as_str), limit)
                .await?
                .into_iter()
                .map(|m| pb::Sms {
                    sms_id: m.id,
                    mobile: m.mobile,
                    text: m.body,
                    order_no: m.order_no.unwrap_or_default(),
                    otp_code: m.otp_code.unwrap_or_default(),
                    sent_at: Some(shared::grpc::timestamp(shared::clock::from_ms(
                        m.sent_at_ms,
                    ))),
                })
                .collect();
            Ok(pb::ListSmsResponse { messages })
        })
        .await
    }
}
