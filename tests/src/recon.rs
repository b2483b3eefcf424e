//! Reconciliation helpers: closing a business day, running real-time and T+1 reconciliation,
//! reading cases and adjustments, and paying at the bank behind the platform's back.

use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use tonic::Status;

use crate::{Payer, TestApp};

impl TestApp {
    /// Moves both clocks to one second past midnight after `date` (China time): the bank's
    /// cutover closes `date`.
    pub async fn close_day(&self, date: &str) {
        let d: chrono::NaiveDate = date.parse().expect("a date");
        let next = shared::clock::start_of(d.succ_opt().unwrap()) + chrono::Duration::seconds(1);
        self.clock(sim::set_clock_request::Move::SetTo(
            shared::grpc::timestamp(next),
        ))
        .await;
    }

    /// Runs real-time reconciliation now.
    pub async fn realtime_recon(&self) -> platform::RunRealtimeReconResponse {
        self.recon
            .clone()
            .run_realtime_recon(platform::RunRealtimeReconRequest {})
            .await
            .expect("real-time reconciliation runs")
            .into_inner()
    }

    /// Runs T+1 reconciliation of `date` for `kinds` (none: all three).
    pub async fn day_recon(
        &self,
        date: &str,
        kinds: &[platform::ReconFileKind],
    ) -> Result<platform::RunDayReconResponse, Status> {
        self.recon
            .clone()
            .run_day_recon(platform::RunDayReconRequest {
                business_date: date.to_owned(),
                kinds: kinds.iter().map(|k| *k as i32).collect(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// Every case of `date`, oldest first.
    pub async fn cases_of(&self, date: &str) -> Vec<platform::ReconCase> {
        self.recon
            .clone()
            .list_cases(platform::ListCasesRequest {
                business_date: date.to_owned(),
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("cases")
            .into_inner()
            .cases
    }

    /// Adjustments of one order or sign-up, newest first.
    pub async fn adjustments_of(&self, key: &str) -> Vec<platform::Adjustment> {
        self.recon
            .clone()
            .list_adjustments(platform::ListAdjustmentsRequest {
                record_key: key.to_owned(),
                limit: 100,
            })
            .await
            .expect("adjustments")
            .into_inner()
            .adjustments
    }

    /// Pays at the bank straight (code request, code from the SMS, debit), as a platform whose
    /// own record of the order was lost would have: the platform knows nothing of it.
    pub async fn pay_at_bank_only(&self, p: &Payer, order_no: &str, amount: &str) -> bank::Payment {
        let mut link = self.bank_link.clone();
        link.request_payment_code(bank::RequestPaymentCodeRequest {
            order_no: order_no.to_owned(),
            signup_id: p.signup_id.clone(),
            platform_account: p.customer.email.clone(),
            amount: amount.to_owned(),
        })
        .await
        .expect("code requested at the bank");
        let code = self.code_for(p, order_no).await;
        link.pay(bank::PayRequest {
            order_no: order_no.to_owned(),
            signup_id: p.signup_id.clone(),
            platform_account: p.customer.email.clone(),
            amount: amount.to_owned(),
            otp_code: code,
        })
        .await
        .expect("debited at the bank")
        .into_inner()
        .payment
        .unwrap()
    }
}
