//! One step of a schedule carried out: the operation's dispatch, clock moves and what the
//! cutover closes, refund batches, fault rules.

use super::*;

impl World {
    /// Carries out one step. An error is the explorer's own trouble (a node it cannot reach at
    /// all), not a finding.
    pub async fn apply(&mut self, op: &Op) -> anyhow::Result<()> {
        use sim::set_clock_request::Move;
        self.tally.steps += 1;
        match *op {
            Op::Pay {
                ref order,
                customer,
                fen,
                code,
                racers,
            } => self.pay_op(customer, order, fen, code, racers).await,
            Op::StartTwice {
                ref order,
                customer,
                fen,
            } => self.start_twice(customer, order, fen).await,
            Op::ReusedCode {
                ref order,
                ref other,
                customer,
            } => self.reused_code(customer, order, other).await,
            Op::Deposit { .. } | Op::ChangeLimit { .. } | Op::ChangeMobile { .. } => {
                self.teller(op).await
            }
            Op::Resign { customer, fen } => self.resign(customer, fen).await,
            Op::SignUpRefused { customer } => self.sign_up_refused(customer).await,
            Op::Query { customer } => self.query(customer).await,
            Op::Refund { lines } => self.refund(lines).await,
            Op::RealtimeRecon => {
                let _ = self
                    .recon()
                    .run_realtime_recon(platform::RunRealtimeReconRequest {})
                    .await;
                Ok(())
            }
            Op::Advance { minutes } => self.move_clock(Move::AdvanceMs(minutes * 60_000)).await,
            Op::Cutover => self.move_clock(Move::AdvanceToCutover(true)).await,
            Op::Fault(f) => self.fault(f).await,
            Op::Restart(node) => {
                self.tally.restarts += 1;
                match node {
                    Node::Bank => self.pair.restart_bank().await,
                    Node::Platform => self.pair.restart_platform().await,
                }
            }
        }
    }

    pub(super) async fn move_clock(
        &mut self,
        m: sim::set_clock_request::Move,
    ) -> anyhow::Result<()> {
        let closed = self.set_clock(m).await?;
        self.after_move(closed).await
    }

    pub(super) async fn refund(&mut self, lines: usize) -> anyhow::Result<()> {
        // Paid orders, as the platform holds them.
        let mut paid = Vec::new();
        for order_no in self.orders.keys().cloned().collect::<Vec<_>>() {
            if let Ok(o) = self
                .ops()
                .get_order_by_no(platform::GetOrderByNoRequest {
                    order_no: order_no.clone(),
                })
                .await
            {
                let o = o.into_inner().order.unwrap_or_default();
                if o.status == platform::OrderStatus::Success as i32 {
                    paid.push(o);
                }
            }
        }
        if paid.is_empty() {
            return Ok(());
        }
        let mut refunds = Vec::new();
        for n in 0..lines {
            let o = &paid[self.rng.random_range(0..paid.len())];
            let left = fen_of(&o.amount) - fen_of(&o.refunded_amount);
            let fen = if n == 0 {
                // One line asks for more than was paid: it must fail alone.
                fen_of(&o.amount) + 1
            } else {
                self.rng.random_range(1..=left.max(1))
            };
            refunds.push(platform::RefundEntry {
                order_no: o.order_no.clone(),
                amount: yuan(fen.min(500_000)),
                refund_id: String::new(),
                reason: "explore".into(),
            });
        }
        let batch_no = self.next_no("RB");
        let created = self
            .refunds()
            .create_refund_batch(platform::CreateRefundBatchRequest {
                batch_no: batch_no.clone(),
                refunds,
            })
            .await;
        if created.is_err() {
            return Ok(());
        }
        let _ = BatchJobServiceClient::new(self.bank.clone())
            .run_refund_job(sim::RunRefundJobRequest {})
            .await;
        let _ = self
            .refunds()
            .fetch_refund_result(platform::FetchRefundResultRequest { batch_no })
            .await;
        Ok(())
    }

    /// After a clock move: the session ages, and a closed day is reconciled T+1 at once.
    pub(super) async fn after_move(&mut self, closed: Vec<String>) -> anyhow::Result<()> {
        for d in closed {
            let date: NaiveDate = d.parse().context("a closed date")?;
            self.closed.insert(date);
            self.day_recon(date).await?;
        }
        let today = self.today();
        for i in 0..CUSTOMERS {
            if self.limit_now[i] > 0 {
                let e = self.limit_on.entry((i, today)).or_insert(0);
                *e = (*e).max(self.limit_now[i]);
            }
        }
        Ok(())
    }

    pub(super) async fn fault(&mut self, f: Fault) -> anyhow::Result<()> {
        use sim::fault_rule::Action;
        let (on_bank, side, method, action) = match f {
            Fault::PayReplyDropped => (
                false,
                sim::FaultSide::Caller,
                "Pay",
                Action::DropReply(true),
            ),
            Fault::PayDeliveredTwice => (
                false,
                sim::FaultSide::Caller,
                "Pay",
                Action::DeliverTwice(true),
            ),
            Fault::PayDelayedPastTimeout => (
                true,
                sim::FaultSide::Callee,
                "Pay",
                Action::DelayMs(DELAY_PAST_TIMEOUT_MS),
            ),
            Fault::CodeRequestUnavailable => (
                false,
                sim::FaultSide::Caller,
                "RequestPaymentCode",
                Action::Fail(sim::FaultStatus {
                    code: GrpcCode::Unavailable as i32,
                    ..Default::default()
                }),
            ),
            Fault::CancelLostWrite => (
                false,
                sim::FaultSide::Callee,
                "ConfirmCancel",
                Action::LoseWrite(true),
            ),
        };
        let rule = sim::FaultRule {
            side: side as i32,
            method: method.into(),
            action: Some(action),
            first_n: 1,
            ..Default::default()
        };
        let mut sims = self.sims();
        let targets: Vec<&mut SimulatorServiceClient<Channel>> = if on_bank {
            vec![&mut sims[0]]
        } else {
            sims.iter_mut().skip(1).collect()
        };
        for s in targets {
            s.add_fault(sim::AddFaultRequest {
                rule: Some(rule.clone()),
            })
            .await
            .context("a fault rule")?;
        }
        self.tally.faults += 1;
        Ok(())
    }
}
