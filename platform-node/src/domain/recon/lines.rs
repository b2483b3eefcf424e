//! One record of a day file against the platform's, and what the platform does about it:
//! takes the bank's side where it can, leaves the case for staff where it cannot. The decisions
//! themselves are `compare.rs`'s; here they are acted on.

use super::*;

/// What the platform did about a case, and where the case stands.
type Action = (String, CaseStatus);

/// A case staff must act on, and what they are told.
fn for_staff(why: impl Into<String>) -> Action {
    (why.into(), CaseStatus::NeedsStaff)
}

/// A case the platform resolved by taking the bank's side.
fn resolved(what: impl Into<String>) -> Action {
    (what.into(), CaseStatus::AutoResolved)
}

/// What the platform tells staff about a clearing line whose order differs.
const ORDER_FILE_FIRST: &str = "left for staff: reconcile the ORDER file of the date first";

impl Platform {
    /// A record of the bank's order file against the platform's order `o`.
    pub(super) async fn order_line(
        &self,
        run: &mut Run,
        o: Option<&Order>,
        b: &BankSuccess,
    ) -> Result<(), PlatformError> {
        let Some(category) = order_category(order_vs_bank(o, b)) else {
            run.matched += 1;
            return Ok(());
        };
        let finding = Finding {
            key: b.order_no.as_str().to_owned(),
            category,
            bank: bank_success_state(b),
            platform: o.map(order_state).unwrap_or_else(|| "-".into()),
            amount: order_case_amount(o, b, category),
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let source = format!("T1_{}", run.kind.code());
        let action = match self
            .take_bank_payment(o, b, &source, Some(&case_id))
            .await?
        {
            Taken::Adjusted(a) => resolved(format!("set the order to the bank's: {}", a.after)),
            Taken::Same => resolved("nothing: the order agreed by the time it was adjusted"),
            Taken::Left(why) => for_staff(format!("left for staff: {why}")),
        };
        self.record_case(run, case_id, finding, action).await
    }

    /// A record of the bank's sign-up file against the platform's card-link.
    pub(super) async fn signup_line(
        &self,
        run: &mut Run,
        link: Option<&CardLink>,
        rec: &SignUpRecord,
    ) -> Result<(), PlatformError> {
        let Some((category, fix)) = signup_verdict(link, rec, run.date) else {
            run.matched += 1;
            return Ok(());
        };
        let finding = Finding {
            key: format!("{}:{}", rec.event.code(), rec.signup_id),
            category,
            bank: signup_record_state(rec),
            platform: link.map(link_state).unwrap_or_else(|| "-".into()),
            amount: Money::ZERO,
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let from = Source {
            name: "T1_SIGNUP",
            case_id: Some(&case_id),
            at_ms: self.clock.now_ms(),
        };
        let action = match (link, fix) {
            (None, _) => self.record_bank_link(rec, run.date, &from).await?,
            (Some(l), Some(fix)) => {
                let reason = match category {
                    CaseCategory::StatusDiffers => "the bank cancelled the sign-up",
                    _ => "the bank's dates differ",
                };
                self.fix_link_to(l, fix, reason, &from).await?
            }
            (Some(_), None) => for_staff(
                "left for staff: the card-link's account, card, name or ID type differ from the bank's",
            ),
        };
        self.record_case(run, case_id, finding, action).await
    }

    /// Records the card-link of the bank's sign-up record the platform has none for, when its
    /// account exists.
    async fn record_bank_link(
        &self,
        rec: &SignUpRecord,
        date: NaiveDate,
        from: &Source<'_>,
    ) -> Result<Action, PlatformError> {
        if !self.store.account_exists(&rec.account).await? {
            return Ok(for_staff(format!(
                "left for staff: no platform account {}",
                rec.account.as_str()
            )));
        }
        let l = link_from_bank(rec, date, from.at_ms);
        let a = from.adjust(
            "SIGNUP",
            rec.signup_id.as_str(),
            "-".into(),
            link_state(&l),
            "the bank has a sign-up the platform had no card-link for",
        );
        Ok(if self.store.insert_recon_link(&l, &a).await? {
            resolved(format!(
                "recorded the card-link from the bank's: {}",
                a.after
            ))
        } else {
            for_staff("left for staff: the card-link appeared meanwhile; run again")
        })
    }

    /// Sets the card-link `l` to `fix`, unless it changed meanwhile.
    async fn fix_link_to(
        &self,
        l: &CardLink,
        (status, signed, cancelled): LinkFix,
        reason: &str,
        from: &Source<'_>,
    ) -> Result<Action, PlatformError> {
        let after = CardLink {
            status,
            business_date: signed,
            cancelled_date: cancelled,
            ..l.clone()
        };
        let a = from.adjust(
            "SIGNUP",
            l.signup_id.as_str(),
            link_state(l),
            link_state(&after),
            reason,
        );
        Ok(
            if self
                .store
                .fix_link(&l.signup_id, l.status, status, signed, cancelled, &a)
                .await?
            {
                resolved(format!("set the card-link to the bank's: {}", a.after))
            } else {
                for_staff("left for staff: the card-link changed meanwhile; run again")
            },
        )
    }

    /// A chunk of the bank's clearing file against the platform's orders and refunds.
    pub(super) async fn clearing_chunk(
        &self,
        run: &mut Run,
        chunk: &[DayRecord],
    ) -> Result<(), PlatformError> {
        let entries: Vec<&ClearingEntry> = chunk
            .iter()
            .filter_map(|r| match r {
                DayRecord::Clearing(c) => Some(&c.entry),
                _ => None,
            })
            .collect();
        let mut numbers = Vec::new();
        let mut refund_ids = Vec::new();
        for e in &entries {
            match e {
                ClearingEntry::Payment { order_no, .. } => numbers.push(order_no),
                ClearingEntry::Refund { refund_id, .. } => refund_ids.push(refund_id.as_str()),
            }
        }
        let order_cases = self.store.order_case_keys(run.date, &numbers).await?;
        let number_strs: Vec<&str> = numbers.iter().map(|n| n.as_str()).collect();
        let orders = self.store.orders_by_number(&number_strs).await?;
        let refunds = self.store.refunds_by_id(&refund_ids).await?;
        for e in entries {
            match e {
                ClearingEntry::Payment {
                    order_no,
                    serial,
                    amount,
                } => {
                    let o = orders.get(order_no.as_str());
                    let has_case = order_cases.iter().any(|k| k == order_no.as_str());
                    self.clearing_payment(run, o, has_case, (order_no, serial, *amount))
                        .await?;
                }
                ClearingEntry::Refund {
                    order_no,
                    refund_id,
                    amount,
                    batch_no,
                } => {
                    let mine = refunds.get(refund_id.as_str());
                    self.clearing_refund(run, mine, (order_no, refund_id, *amount, batch_no))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// A payment line of the clearing file (order number, serial, amount) against the
    /// platform's order `o`; a difference of an order that has a case in the order file's run
    /// (`has_case`) is that case, not another.
    async fn clearing_payment(
        &self,
        run: &mut Run,
        o: Option<&Order>,
        has_case: bool,
        (order_no, serial, amount): (&OrderNo, &str, PayAmount),
    ) -> Result<(), PlatformError> {
        let Some(category) = clearing_payment_category(o, amount, run.date) else {
            run.matched += 1;
            return Ok(());
        };
        if has_case {
            return Ok(());
        }
        let finding = Finding {
            key: format!("P:{order_no}"),
            category,
            bank: format!("PAYMENT {amount} serial {serial}"),
            platform: o.map(order_state).unwrap_or_else(|| "-".into()),
            amount: amount.money(),
        };
        self.staff_case(run, finding, ORDER_FILE_FIRST).await
    }

    /// A refund line of the clearing file (order number, refund id, amount, batch) against the
    /// platform's refund `mine`.
    async fn clearing_refund(
        &self,
        run: &mut Run,
        mine: Option<&PlatformRefund>,
        (order_no, refund_id, amount, batch_no): (&OrderNo, &RefundId, RefundAmount, &BatchNo),
    ) -> Result<(), PlatformError> {
        let Some(category) = clearing_refund_category(mine, amount.money()) else {
            run.matched += 1;
            return Ok(());
        };
        let finding = Finding {
            key: format!("R:{refund_id}"),
            category,
            bank: format!("REFUND {amount} order {order_no} batch {batch_no}"),
            platform: mine
                .map(|(s, a, b)| {
                    format!(
                        "{} {} batch {b}",
                        s.code(),
                        a.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
                    )
                })
                .unwrap_or_else(|| "-".into()),
            amount: amount.money(),
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let action = if category == CaseCategory::BankOnly
            && self.store.has_refund_batch(batch_no.as_str()).await?
        {
            self.refund_from_result(batch_no, refund_id).await?
        } else {
            for_staff("left for staff: the refund records differ from the bank's")
        };
        self.record_case(run, case_id, finding, action).await
    }

    /// A refund the bank credited that the platform does not have as such, of a batch the
    /// platform sent: the batch's result file is fetched (again), which applies it.
    async fn refund_from_result(
        &self,
        batch_no: &BatchNo,
        refund_id: &RefundId,
    ) -> Result<Action, PlatformError> {
        Ok(match self.fetch_refund_result(batch_no).await {
            Ok(_)
                if self
                    .store
                    .refunds_by_id(&[refund_id.as_str()])
                    .await?
                    .get(refund_id.as_str())
                    .is_some_and(|(s, _, _)| *s == RefundLineStatus::Success) =>
            {
                resolved(format!(
                    "fetched batch {batch_no}'s result file: the refund is applied"
                ))
            }
            Ok(_) => for_staff(format!(
                "left for staff: batch {batch_no}'s result does not carry the refund"
            )),
            Err(e) => for_staff(format!(
                "left for staff: fetching batch {batch_no}'s result failed: {e}"
            )),
        })
    }

    /// What the platform has for the date and the file does not.
    pub(super) async fn platform_only(&self, run: &mut Run) -> Result<(), PlatformError> {
        match run.kind {
            DayFileKind::Order => self.platform_only_orders(run, "").await,
            DayFileKind::SignUp => {
                self.platform_only_links(run, false).await?;
                self.platform_only_links(run, true).await
            }
            DayFileKind::Clearing => {
                self.platform_only_orders(run, "P:").await?;
                self.platform_only_refunds(run).await
            }
        }
    }

    /// The SUCCESS orders of the date whose key (`prefix` and the order number) the file does
    /// not have, page by page: in the order file, the bank's word decides each; in the clearing
    /// file, each is a case for staff unless the order file's run has a case of it.
    async fn platform_only_orders(&self, run: &mut Run, prefix: &str) -> Result<(), PlatformError> {
        let mut after = String::new();
        loop {
            let page = self
                .store
                .unstaged_orders(&run.id, prefix, run.date, &after, PLATFORM_ONLY_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.order_no.as_str().to_owned();
            if run.kind == DayFileKind::Order {
                for o in &page {
                    self.platform_only_order(run, o).await?;
                }
                continue;
            }
            let numbers: Vec<&OrderNo> = page.iter().map(|o| &o.order_no).collect();
            let order_cases = self.store.order_case_keys(run.date, &numbers).await?;
            for o in &page {
                if order_cases.iter().any(|k| k == o.order_no.as_str()) {
                    continue;
                }
                let finding = Finding {
                    key: format!("P:{}", o.order_no),
                    category: CaseCategory::PlatformOnly,
                    bank: "-".into(),
                    platform: order_state(o),
                    amount: o.amount.money(),
                };
                self.staff_case(run, finding, ORDER_FILE_FIRST).await?;
            }
        }
        Ok(())
    }

    /// The card-links signed (or cancelled) on the date that the sign-up file does not have.
    async fn platform_only_links(
        &self,
        run: &mut Run,
        cancelled: bool,
    ) -> Result<(), PlatformError> {
        let mut after = String::new();
        loop {
            let page = self
                .store
                .unstaged_links(&run.id, cancelled, run.date, &after, PLATFORM_ONLY_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.signup_id.to_string();
            for l in page {
                self.platform_only_link(run, &l, cancelled).await?;
            }
        }
        Ok(())
    }

    /// The refunds of the date the clearing file does not have: each a case for staff.
    async fn platform_only_refunds(&self, run: &mut Run) -> Result<(), PlatformError> {
        let mut after = String::new();
        loop {
            let page = self
                .store
                .unstaged_refunds(&run.id, run.date, &after, PLATFORM_ONLY_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            for (refund_id, order_no, amount, batch_no) in page {
                let finding = Finding {
                    key: format!("R:{refund_id}"),
                    category: CaseCategory::PlatformOnly,
                    bank: "-".into(),
                    platform: format!("REFUND {amount} order {order_no} batch {batch_no}"),
                    amount,
                };
                self.staff_case(
                    run,
                    finding,
                    "left for staff: the platform has a refund the bank did not credit",
                )
                .await?;
            }
        }
        Ok(())
    }

    /// A SUCCESS order of the date the bank's order file lacks: the bank's word on it decides.
    pub(super) async fn platform_only_order(
        &self,
        run: &mut Run,
        o: &Order,
    ) -> Result<(), PlatformError> {
        let finding = Finding {
            key: o.order_no.as_str().to_owned(),
            category: CaseCategory::PlatformOnly,
            bank: "-".into(),
            platform: order_state(o),
            amount: o.amount.money(),
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let answer = self.bank.get_payment(&PayOrder::from(o)).await;
        let from = Source {
            name: "T1_ORDER",
            case_id: Some(&case_id),
            at_ms: self.clock.now_ms(),
        };
        let action = match fix_by_bank_word(o, answer) {
            Some((fix, _)) => {
                let a = from.adjust(
                    "ORDER",
                    o.order_no.as_str(),
                    order_state(o),
                    fix_state(&fix),
                    "the bank's order file does not have it as paid on the date",
                );
                if self.store.fix_order(o, &fix, &a).await? {
                    resolved(format!("set the order to the bank's: {}", a.after))
                } else {
                    for_staff("left for staff: the order changed meanwhile; run again")
                }
            }
            None => for_staff("left for staff: the bank did not answer about the order; run again"),
        };
        self.record_case(run, case_id, finding, action).await
    }

    /// A card-link signed (or cancelled) on the date the bank's sign-up file lacks.
    async fn platform_only_link(
        &self,
        run: &mut Run,
        l: &CardLink,
        cancelled: bool,
    ) -> Result<(), PlatformError> {
        let event = if cancelled { "CANCELLED" } else { "SIGNED" };
        let finding = Finding {
            key: format!("{event}:{}", l.signup_id),
            category: CaseCategory::PlatformOnly,
            bank: "-".into(),
            platform: link_state(l),
            amount: Money::ZERO,
        };
        let case_id = self.case_id_for(run, &finding.key).await?;
        let (fix, reason) = fix_platform_only_link(l, cancelled);
        let from = Source {
            name: "T1_SIGNUP",
            case_id: Some(&case_id),
            at_ms: self.clock.now_ms(),
        };
        let action = self.fix_link_to(l, fix, reason, &from).await?;
        self.record_case(run, case_id, finding, action).await
    }

    /// Records `finding` as a case for staff, telling them `why`.
    pub(super) async fn staff_case(
        &self,
        run: &mut Run,
        finding: Finding,
        why: &str,
    ) -> Result<(), PlatformError> {
        let case_id = self.case_id_for(run, &finding.key).await?;
        self.record_case(run, case_id, finding, for_staff(why))
            .await
    }
}
