//! Reconciliation helpers: closing a business day, running real-time and T+1 reconciliation,
//! reading cases and adjustments, and paying at the bank behind the platform's back.

use proto::bank::v1 as bank;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use tonic::{Code, Status};

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

    /// The T+1 runs of `date`, as `ListDayRuns` shows them to someone watching.
    pub async fn day_runs(&self, date: &str) -> Vec<platform::DayRun> {
        self.recon
            .clone()
            .list_day_runs(platform::ListDayRunsRequest {
                business_date: date.to_owned(),
            })
            .await
            .expect("the day's runs")
            .into_inner()
            .runs
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

    /// Pays with the Pay reply lost and the status queries for this order failing (the rules
    /// stay): the platform's order is UNKNOWN, the bank's payment SUCCESS, and only
    /// reconciliation settles it. The confirmation's answer (a refusal, or a refusal of an
    /// earlier step when the card-link cannot pay).
    pub async fn unknown_order(
        &self,
        p: &Payer,
        order_no: &str,
        amount: &str,
    ) -> Result<platform::Order, Status> {
        use sim::fault_rule::Action;
        let this_order = |r: sim::FaultRule| sim::FaultRule {
            match_order_no: order_no.to_owned(),
            ..r
        };
        let side = sim::FaultSide::Caller;
        let drop = crate::fault_rule_once(side, "Pay", Action::DropReply(true));
        self.fault("platform", this_order(drop)).await;
        let unavailable = Action::Fail(sim::FaultStatus {
            code: Code::Unavailable as i32,
            ..Default::default()
        });
        let fail = crate::fault_rule(side, "GetPayment", unavailable);
        self.fault("platform", this_order(fail)).await;
        self.pay_now(p, order_no, amount).await
    }

    /// Cancels the card's sign-up at the branch.
    pub async fn cancel_sign_up(&self, card: &str) -> Result<bank::SignUp, Status> {
        self.branch
            .clone()
            .cancel_sign_up(bank::CancelSignUpRequest {
                card_number: card.to_owned(),
            })
            .await
            .map(|r| r.into_inner().signup.unwrap())
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

/// An order as the platform's database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Order number.
    pub order_no: String,
    /// Status code.
    pub status: String,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Serial number, for SUCCESS.
    pub serial: Option<String>,
    /// Business date, for SUCCESS.
    pub business_date: Option<String>,
    /// Refunded so far, fen.
    pub refunded_fen: i64,
}

async fn order_rows(url: &str, sql: &str) -> Vec<OrderRow> {
    use sqlx::Row;
    let mut conn = crate::connect_any(url).await;
    sqlx::query(sql)
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| OrderRow {
            order_no: r.get(0),
            status: r.get(1),
            amount_fen: r.get(2),
            serial: r.get(3),
            business_date: r.get(4),
            refunded_fen: r.get(5),
        })
        .collect()
}

impl TestApp {
    /// Every order the platform holds, by order number, read from its database.
    pub async fn platform_orders(&self) -> Vec<OrderRow> {
        order_rows(
            &self.platform_db,
            "SELECT order_no, status, amount_fen, bank_serial_no, business_date, refunded_fen FROM orders ORDER BY order_no",
        )
        .await
    }

    /// Every successful payment the bank holds, as the platform's order would read.
    pub async fn bank_paid_orders(&self) -> Vec<OrderRow> {
        order_rows(
            &self.bank_db,
            "SELECT order_no, status, amount_fen, bank_serial_no, business_date, refunded_fen FROM payments WHERE status = 'SUCCESS' ORDER BY order_no",
        )
        .await
    }

    /// (sign-up id, status) of every sign-up at the bank, and of every card-link at the platform.
    pub async fn signup_statuses(&self) -> (Vec<(String, String)>, Vec<(String, String)>) {
        let read = |url: String, sql: &'static str| async move {
            let mut conn = crate::connect_any(&url).await;
            sqlx::query(sql)
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    use sqlx::Row;
                    (r.get::<String, _>(0), r.get::<String, _>(1))
                })
                .collect::<Vec<_>>()
        };
        (
            read(
                self.bank_db.clone(),
                "SELECT signup_id, status FROM signups ORDER BY signup_id",
            )
            .await,
            read(
                self.platform_db.clone(),
                "SELECT signup_id, status FROM card_links ORDER BY signup_id",
            )
            .await,
        )
    }
}

impl TestApp {
    /// Writes `n` payments of `p` that succeeded on `date` straight into the bank's database,
    /// and into the platform's too when `platform_too` (false: a platform that lost its records
    /// of a day). Order numbers are `<prefix><i>`, amounts 0.01 to 500.00.
    pub async fn seed_payments(
        &self,
        p: &Payer,
        date: &str,
        prefix: &str,
        n: usize,
        platform_too: bool,
    ) {
        use sqlx::Connection;
        const ROWS: usize = 1000;
        let card = shared::domain::CardNumber::parse(&p.customer.card_number).unwrap();
        let masked = card.masked();
        let ms = shared::clock::start_of(date.parse().unwrap()).timestamp_millis() + 36_000_000;
        let compact: String = date.chars().filter(char::is_ascii_digit).collect();
        let mut bank = crate::connect_any(&self.bank_db).await;
        let mut platform = crate::connect_any(&self.platform_db).await;
        let seq0: i64 = {
            use sqlx::Row;
            sqlx::query("SELECT value FROM counters WHERE name = 'payment_success'")
                .fetch_one(&mut bank)
                .await
                .unwrap()
                .get(0)
        };
        let mut bank_tx = bank.begin().await.unwrap();
        let mut platform_tx = platform.begin().await.unwrap();
        for start in (0..n).step_by(ROWS) {
            let (mut b, mut o) = (Vec::new(), Vec::new());
            for i in start..(start + ROWS).min(n) {
                let order = format!("{prefix}{i:08}");
                let fen = (i % 50_000) as i64 + 1;
                let serial = format!("{compact}{i:012}");
                let seq = seq0 + i as i64 + 1;
                b.push(format!(
                    "('{order}', 'seeded', '{}', '{}', '{}', {fen}, 'SUCCESS', 'seeded', {ms}, 0, '{serial}', '{date}', {ms}, {ms}, {ms}, {seq})",
                    p.signup_id, p.customer.card_number, p.customer.email
                ));
                o.push(format!(
                    "('{order}', '{}', '{}', '{masked}', {fen}, 'seeded', 'SUCCESS', '{serial}', '{date}', {ms}, {ms})",
                    p.customer.email, p.signup_id
                ));
            }
            sqlx::query(&format!(
                "INSERT INTO payments (order_no, fingerprint, signup_id, card_number, platform_account, amount_fen, status, otp_hash, otp_expires_at_ms, otp_wrong_tries, bank_serial_no, business_date, paid_at_ms, created_at_ms, updated_at_ms, success_seq) VALUES {}",
                b.join(", ")
            ))
            .execute(&mut *bank_tx)
            .await
            .unwrap();
            if platform_too {
                sqlx::query(&format!(
                    "INSERT INTO orders (order_no, email, signup_id, card_number_masked, amount_fen, description, status, bank_serial_no, business_date, created_at_ms, updated_at_ms) VALUES {}",
                    o.join(", ")
                ))
                .execute(&mut *platform_tx)
                .await
                .unwrap();
            }
        }
        sqlx::query("UPDATE counters SET value = $1 WHERE name = 'payment_success'")
            .bind(seq0 + n as i64)
            .execute(&mut *bank_tx)
            .await
            .unwrap();
        bank_tx.commit().await.unwrap();
        platform_tx.commit().await.unwrap();
    }
}
