//! Payments as a customer makes them, and each answer about money recorded in the ledger.

use super::*;

impl World {
    pub(super) fn record(
        &mut self,
        order_no: &str,
        rpc: &'static str,
        answer: &Result<platform::Order, Status>,
    ) {
        let told = match answer {
            Ok(o) if o.status == platform::OrderStatus::Success as i32 => Told::Paid {
                serial: o.bank_serial_no.clone(),
                date: o.business_date.clone(),
            },
            Ok(_) => return,
            Err(s) if settles_failed(s) => Told::Failed {
                code: format!("{:?}", s.code()),
                reason: reason(s),
            },
            Err(_) => return,
        };
        self.ledger.push(Answer {
            order_no: order_no.to_owned(),
            rpc,
            told,
            step: self.step,
        });
    }

    pub(super) async fn start_payment(
        &mut self,
        i: usize,
        via: usize,
        order_no: &str,
        fen: i64,
    ) -> Result<platform::Order, Status> {
        let token = self
            .session(i)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let signup_id = self.customers[i].signup_id.clone().unwrap_or_default();
        let pay_password = self.customers[i].pay_password.clone();
        self.orders.insert(order_no.to_owned(), i);
        let r = self
            .pay(via)
            .start_payment(platform::StartPaymentRequest {
                session_token: token,
                order_no: order_no.to_owned(),
                amount: yuan(fen),
                pay_password,
                signup_id,
                description: "explore".into(),
            })
            .await
            .map(|r| r.into_inner().order.unwrap_or_default());
        self.record(order_no, "StartPayment", &r);
        r
    }

    /// The code the bank texted for `order_no`, if one was sent.
    pub(super) async fn code_for(&self, i: usize, order_no: &str) -> Option<String> {
        self.sms()
            .list_sms(sim::ListSmsRequest {
                mobile: self.customers[i].mobile.clone(),
                limit: 500,
            })
            .await
            .ok()?
            .into_inner()
            .messages
            .into_iter()
            .find(|m| m.order_no == order_no)
            .map(|m| m.otp_code)
    }

    /// `racers` identical confirmations at once, over the platform processes in turn.
    pub(super) async fn confirm(&mut self, i: usize, order_no: &str, code: &str, racers: usize) {
        let Ok(token) = self.session(i).await else {
            return;
        };
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(racers));
        let calls: Vec<_> = (0..racers)
            .map(|n| {
                let (mut pay, go) = (self.pay(n), go.clone());
                let req = platform::ConfirmPaymentRequest {
                    session_token: token.clone(),
                    order_no: order_no.to_owned(),
                    otp_code: code.to_owned(),
                };
                tokio::spawn(async move {
                    go.wait().await;
                    pay.confirm_payment(req)
                        .await
                        .map(|r| r.into_inner().order.unwrap_or_default())
                })
            })
            .collect();
        if racers > 1 {
            self.tally.races += 1;
        }
        for c in calls {
            let answer = c
                .await
                .unwrap_or_else(|e| Err(Status::internal(e.to_string())));
            self.record(order_no, "ConfirmPayment", &answer);
        }
    }

    pub(super) fn wrong(code: &str) -> String {
        if code == "000000" { "111111" } else { "000000" }.to_owned()
    }

    /// The same StartPayment twice at once (over both platform processes), then a confirmation.
    pub(super) async fn start_twice(
        &mut self,
        customer: usize,
        order: &str,
        fen: i64,
    ) -> anyhow::Result<()> {
        if self.customers[customer].signup_id.is_none() {
            return Ok(());
        }
        self.orders.insert(order.to_owned(), customer);
        self.session(customer).await?;
        self.tally.races += 1;
        let (a, b) = tokio::join!(
            self.clone_start(customer, 0, order, fen),
            self.clone_start(customer, 1, order, fen)
        );
        for r in [a, b] {
            self.record(order, "StartPayment", &r);
        }
        if let Some(code) = self.code_for(customer, order).await {
            self.confirm(customer, order, &code, 1).await;
        }
        Ok(())
    }

    /// `order`'s code typed for `other` (refused), then for `order`.
    pub(super) async fn reused_code(
        &mut self,
        customer: usize,
        order: &str,
        other: &str,
    ) -> anyhow::Result<()> {
        if self.customers[customer].signup_id.is_none() {
            return Ok(());
        }
        let _ = self.start_payment(customer, 0, order, 100).await;
        let _ = self.start_payment(customer, 0, other, 100).await;
        if let Some(code) = self.code_for(customer, order).await {
            self.confirm(customer, other, &code, 1).await;
            self.confirm(customer, order, &code, 1).await;
        }
        Ok(())
    }

    pub(super) async fn clone_start(
        &self,
        i: usize,
        via: usize,
        order_no: &str,
        fen: i64,
    ) -> Result<platform::Order, Status> {
        let c = &self.customers[i];
        self.pay(via)
            .start_payment(platform::StartPaymentRequest {
                session_token: c.token.clone(),
                order_no: order_no.to_owned(),
                amount: yuan(fen),
                pay_password: c.pay_password.clone(),
                signup_id: c.signup_id.clone().unwrap_or_default(),
                description: "explore".into(),
            })
            .await
            .map(|r| r.into_inner().order.unwrap_or_default())
    }

    pub(super) async fn pay_op(
        &mut self,
        i: usize,
        order: &str,
        fen: i64,
        code: Code,
        racers: usize,
    ) -> anyhow::Result<()> {
        if self.customers[i].signup_id.is_none() {
            return Ok(());
        }
        let order = order.to_owned();
        if self.start_payment(i, 0, &order, fen).await.is_err() {
            return Ok(());
        }
        let Some(right) = self.code_for(i, &order).await else {
            return Ok(());
        };
        let wrong = Self::wrong(&right);
        match code {
            Code::Right => self.confirm(i, &order, &right, racers).await,
            Code::WrongFirst => {
                self.confirm(i, &order, &wrong, 1).await;
                self.confirm(i, &order, &right, racers).await;
            }
            Code::WrongThrice => {
                for _ in 0..3 {
                    self.confirm(i, &order, &wrong, 1).await;
                }
                self.confirm(i, &order, &right, racers).await;
            }
            Code::Expired => {
                let closed = self
                    .set_clock(sim::set_clock_request::Move::AdvanceMs(6 * 60_000))
                    .await?;
                self.after_move(closed).await?;
                self.confirm(i, &order, &right, racers).await;
            }
        }
        Ok(())
    }

    /// The balance and limit the customer is shown are the bank's at that moment.
    pub(super) async fn query(&mut self, i: usize) -> anyhow::Result<()> {
        if self.customers[i].signup_id.is_none() {
            return Ok(());
        }
        let token = self.session(i).await?;
        let shown = self
            .pay(0)
            .get_balance(platform::GetBalanceRequest {
                session_token: token.clone(),
                pay_password: self.customers[i].pay_password.clone(),
                signup_id: String::new(),
            })
            .await;
        let card = self
            .branch()
            .get_card(bank::GetCardRequest {
                card_number: self.customers[i].card.clone(),
            })
            .await?
            .into_inner()
            .card
            .context("a card")?;
        self.tally.checks += 1;
        if let Ok(b) = shown {
            anyhow::ensure!(
                b.into_inner().available_balance == card.balance,
                "the balance shown is not the bank's ({})",
                card.balance
            );
        }
        let _ = self
            .pay(0)
            .get_remaining_limit(platform::GetRemainingLimitRequest {
                session_token: token,
                signup_id: String::new(),
            })
            .await;
        Ok(())
    }
}

/// Whether a refusal of StartPayment or ConfirmPayment says the order FAILED (docs/errors.md: a
/// bank refusal of a payment settles it, except OTP_WRONG and SYSTEM_BUSY; reconciliation's own
/// RECON_* failures likewise): the card was not debited for it, and never will be.
fn settles_failed(s: &Status) -> bool {
    let (r, d) = (reason(s), domain(s));
    let refusal = matches!(
        s.code(),
        GrpcCode::FailedPrecondition | GrpcCode::PermissionDenied
    );
    refusal
        && ((d == "bank.interbank-sim" && r != "OTP_WRONG")
            || (d == "platform.interbank-sim" && r.starts_with("RECON_")))
}
