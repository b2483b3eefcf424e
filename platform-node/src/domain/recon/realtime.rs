//! Real-time reconciliation: the bank's successful payments pulled after the cursor, each
//! taken on by the platform's order, and the orders pending past the grace window settled by
//! the bank's word.

use super::*;
use shared::node::Node;

impl Platform {
    /// Runs real-time reconciliation: pulls the bank's successful payments after the cursor and
    /// adjusts the platform's orders to them, then settles the orders pending past the grace
    /// window by the bank's word. One run at a time.
    pub async fn recon_realtime(&self) -> Result<RealtimeReport, PlatformError> {
        let platform = self.clone();
        tokio::spawn(shared::trace::inherit(
            async move {
                let _one_at_a_time = platform.realtime.lock().await;
                platform.realtime_run().await
            }
            .in_current_span(),
        ))
        .await
        .map_err(anyhow::Error::from)?
    }

    /// One real-time run (the caller holds the one-at-a-time lock).
    async fn realtime_run(&self) -> Result<RealtimeReport, PlatformError> {
        let mut report = RealtimeReport {
            cursor_before: self.store.cursor(REALTIME_CURSOR).await?,
            ..RealtimeReport::default()
        };
        report.cursor_after = report.cursor_before;
        // A stream ends when the bank has caught up, or after its most pages: then ask again
        // from the cursor, a bounded number of times per run (the next run goes on).
        for _ in 0..STREAMS_PER_RUN_MAX {
            let more = self.apply_payment_stream(&mut report).await?;
            if !more {
                break;
            }
        }
        self.settle_stale_pending(&mut report).await?;
        for a in &report.adjustments {
            self.metrics().inc(
                "ibsim_recon_adjustments_total",
                &[("record_kind", a.record_kind.as_str())],
            );
        }
        if !report.adjustments.is_empty() {
            tracing::info!(
                adjustments = report.adjustments.len(),
                cursor = report.cursor_after,
                "real-time reconciliation adjusted orders"
            );
        }
        Ok(report)
    }

    /// Applies one stream of the bank's pages from the cursor; whether its last page was full
    /// (more may be waiting).
    pub(super) async fn apply_payment_stream(
        &self,
        report: &mut RealtimeReport,
    ) -> Result<bool, PlatformError> {
        let mut pages = self
            .bank_recon
            .payment_pages(report.cursor_after)
            .await
            .map_err(|f| relay(f, "run reconciliation again later"))?;
        let mut last_full = false;
        while let Some(page) = pages.recv().await {
            let page =
                page.map_err(|f| relay(f, "the cursor stays at the last page applied: run again"))?;
            last_full = page.full;
            report.payments_seen += page.payments.len() as u64;
            let numbers: Vec<&str> = page.payments.iter().map(|p| p.order_no.as_str()).collect();
            let orders = self.store.orders_by_number(&numbers).await?;
            for b in &page.payments {
                let span = tracing::info_span!("recon.realtime", order_no = %b.order_no);
                let adj = self
                    .take_bank_payment(orders.get(b.order_no.as_str()), b, "REALTIME", None)
                    .instrument(span)
                    .await?;
                match adj {
                    Taken::Adjusted(a) => report.adjustments.push(a),
                    Taken::Same => {}
                    Taken::Left(why) => {
                        tracing::warn!(order_no = %b.order_no, why, "bank payment left to T+1");
                        report.left_for_t1 += 1;
                    }
                }
            }
            self.store
                .advance_cursor(REALTIME_CURSOR, page.last_seq, self.clock.now_ms())
                .await?;
            report.cursor_after = page.last_seq;
        }
        Ok(last_full)
    }

    /// Takes the bank's successful payment `b` for the platform's order `o`: records the order
    /// if missing (its account must exist), otherwise sets status, amount, serial and date to
    /// the bank's. Never changes another account's order.
    pub(super) async fn take_bank_payment(
        &self,
        o: Option<&Order>,
        b: &BankSuccess,
        source: &str,
        case_id: Option<&str>,
    ) -> Result<Taken, PlatformError> {
        let key = b.order_no.as_str();
        let mut current = o.cloned();
        for _ in 0..3 {
            let diff = order_vs_bank(current.as_ref(), b);
            let from = Source {
                name: source,
                case_id,
                at_ms: self.clock.now_ms(),
            };
            let done = match (diff, &current) {
                (OrderDiff::Same, _) => return Ok(Taken::Same),
                (OrderDiff::OtherAccount, Some(o)) => {
                    return Ok(Taken::Left(format!(
                        "the platform's order {} is account {}'s, the bank's payment account {}'s",
                        o.order_no,
                        o.email.as_str(),
                        b.account.as_str()
                    )));
                }
                (OrderDiff::Missing, _) => {
                    if !self.store.account_exists(&b.account).await? {
                        return Ok(Taken::Left(format!(
                            "no platform account {}",
                            b.account.as_str()
                        )));
                    }
                    let order = order_from_bank(b, from.at_ms);
                    let a = from.adjust(
                        "ORDER",
                        key,
                        "-".into(),
                        order_state(&order),
                        "the bank has a successful payment the platform had no order for",
                    );
                    self.store
                        .insert_recon_order(&order, &a)
                        .await?
                        .then_some(a)
                }
                (_, Some(o)) => {
                    let (fix, reason) = fix_to_bank_payment(b, diff);
                    let a = from.adjust("ORDER", key, order_state(o), fix_state(&fix), reason);
                    self.store.fix_order(o, &fix, &a).await?.then_some(a)
                }
                (_, None) => unreachable!("only Missing has no order"),
            };
            if let Some(a) = done {
                tracing::info!(order_no = %b.order_no, before = %a.before, after = %a.after, source, "order adjusted to the bank's");
                return Ok(Taken::Adjusted(a));
            }
            // The order changed (or appeared) meanwhile: look again.
            current = self.store.order(&b.order_no).await?;
        }
        Ok(Taken::Left("the order kept changing".into()))
    }

    /// Orders pending past the grace window: the bank's word settles them.
    pub(super) async fn settle_stale_pending(
        &self,
        report: &mut RealtimeReport,
    ) -> Result<(), PlatformError> {
        let cutoff = self.clock.now_ms().saturating_sub(self.recon.grace_ms);
        let stale = self
            .store
            .stale_pending_orders(cutoff, "", PENDING_PER_RUN_MAX)
            .await?;
        for o in stale {
            report.pending_checked += 1;
            let span = tracing::info_span!("recon.pending", order_no = %o.order_no);
            let answer = self
                .bank
                .get_payment(&PayOrder::from(&o))
                .instrument(span)
                .await;
            let Some((fix, why)) = fix_by_bank_word(&o, answer) else {
                tracing::info!(order_no = %o.order_no, "pending order not settled: no answer from the bank");
                report.pending_unanswered += 1;
                continue;
            };
            let from = Source {
                name: "REALTIME",
                case_id: None,
                at_ms: self.clock.now_ms(),
            };
            let a = from.adjust(
                "ORDER",
                o.order_no.as_str(),
                order_state(&o),
                fix_state(&fix),
                why,
            );
            if self.store.fix_order(&o, &fix, &a).await? {
                tracing::info!(order_no = %o.order_no, before = %a.before, after = %a.after, "pending order settled by the bank's word");
                report.adjustments.push(a);
            }
        }
        Ok(())
    }
}
