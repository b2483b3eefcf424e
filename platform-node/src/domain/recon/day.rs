//! A T+1 run: the bank's day file received and checked whole (receive.rs), then compared chunk
//! by chunk on the key both ways (or merged with the platform's orders read in the same order,
//! while it streamed), the platform's own records, the clearing totals; each difference a case.

use super::receive::{Decide, Held, Merged};
use super::*;
use shared::node::Node;

impl Run {
    /// A new run of the `kind` file of `date`; the file's digest and records are told when it
    /// has arrived.
    fn new(kind: DayFileKind, date: NaiveDate) -> Run {
        let id = new_id(&format!("RUN{}", date.format("%Y%m%d")));
        Run {
            report: FileReport {
                kind,
                run_id: id.clone(),
                sha256: String::new(),
                records: 0,
                matched: 0,
                categories: BTreeMap::new(),
                auto_resolved: 0,
                needs_staff: 0,
            },
            id,
            kind,
            date,
            matched: 0,
            cases: Vec::new(),
            truncated: false,
        }
    }
}

impl Platform {
    /// Runs T+1 reconciliation of `date` for `kinds` (in the order SIGNUP, ORDER, CLEARING).
    pub async fn recon_day(
        &self,
        date: NaiveDate,
        kinds: &[DayFileKind],
    ) -> Result<DayReport, PlatformError> {
        let platform = self.clone();
        let mut kinds = kinds.to_vec();
        if kinds.is_empty() {
            kinds = DayFileKind::ALL.to_vec();
        }
        kinds.sort();
        kinds.dedup();
        tokio::spawn(shared::trace::inherit(
            async move {
                let _one_at_a_time = platform.day_recon.lock().await;
                let mut report = DayReport {
                    business_date: date,
                    files: Vec::new(),
                    cases: Vec::new(),
                    truncated: false,
                };
                for kind in kinds {
                    let span = tracing::info_span!("recon.day", kind = kind.code(), %date);
                    let run = platform.recon_file(kind, date).instrument(span).await?;
                    report.truncated |= run.truncated;
                    for c in run.cases {
                        if report.cases.len() < REPORT_CASES_MAX {
                            report.cases.push(c);
                        } else {
                            report.truncated = true;
                        }
                    }
                    for (category, (n, _)) in &run.report.categories {
                        platform.metrics().add(
                            "ibsim_recon_cases_total",
                            &[("kind", kind.code()), ("category", category.code())],
                            *n,
                        );
                    }
                    report.files.push(run.report);
                }
                Ok(report)
            }
            .in_current_span(),
        ))
        .await
        .map_err(anyhow::Error::from)?
    }

    /// One file's T+1 run: the bank's day file received and checked (an order file merged
    /// meanwhile), compared, kept.
    async fn recon_file(&self, kind: DayFileKind, date: NaiveDate) -> Result<Run, PlatformError> {
        // The day's records are read in chunks by key: with a planner that knows their number.
        let tables: &[&'static str] = match kind {
            DayFileKind::SignUp => &["card_links"],
            DayFileKind::Order => &["orders"],
            DayFileKind::Clearing => &["orders", "refunds"],
        };
        self.store.analyze(tables).await?;
        // The bank writes its order file by order number: merged with the platform's orders
        // read in the same order, no key is staged (see `merge_orders`).
        let merge = kind == DayFileKind::Order && self.store.bytewise();
        let mut run = Run::new(kind, date);
        let while_streaming = merge && self.recon.held_max > 0;
        let (day, merged) = self.receive_day_file(&mut run, while_streaming).await?;
        run.report.sha256.clone_from(&day.file.sha256);
        run.report.records = day.file.records;
        self.store
            .insert_run(
                &run.id,
                kind,
                date,
                &day.file.sha256,
                day.file.records,
                self.clock.now_ms(),
            )
            .await?;
        let outcome = match merged {
            Some(Merged {
                upto,
                held: Some(held),
            }) if day.ascending => self.decide_merged(&mut run, &upto, &held).await,
            _ => {
                // Whatever a merge while streaming counted is counted again.
                run.matched = 0;
                if merge && day.ascending {
                    self.merge_orders(&mut run, &day.received).await
                } else {
                    self.compare_file(&mut run, &day.received, &day.header.figures)
                        .await
                }
            }
        };
        if let Err(e) = outcome {
            self.store.drop_staging(&run.id).await?;
            return Err(e);
        }
        let (files, name, received) = (self.files.clone(), kind.file_name(date), day.received);
        blocking(move || received.keep(&files, Area::Recon, &name))
            .await?
            .map_err(anyhow::Error::from)?;
        let cases = run.report.auto_resolved + run.report.needs_staff;
        run.report.matched = run.matched;
        self.store
            .finish_run(&run.id, run.matched, cases, self.clock.now_ms())
            .await?;
        tracing::info!(
            run_id = %run.id,
            records = day.file.records,
            matched = run.matched,
            auto_resolved = run.report.auto_resolved,
            needs_staff = run.report.needs_staff,
            "T+1 reconciliation run done"
        );
        Ok(run)
    }

    /// Ends the merge of an order file done while it streamed, now that it has checked whole:
    /// what it held is decided in the file's order, then the platform's orders after the file's
    /// last.
    async fn decide_merged(
        &self,
        run: &mut Run,
        upto: &str,
        held: &[Held],
    ) -> Result<(), PlatformError> {
        for piece in held.chunks(COMPARE_CHUNK) {
            self.decide_now(run, piece).await?;
        }
        self.merge_chunk(run, &[], upto, None, &mut Decide::Now)
            .await
    }

    pub(super) async fn compare_file(
        &self,
        run: &mut Run,
        received: &shared::files::Received,
        bank_figures: &shared::files::recon::DayFigures,
    ) -> Result<(), PlatformError> {
        let mut lines = LineReader::new(received.reader().map_err(ReadError::from)?);
        lines.next_line()?;
        let mut chunk = Vec::with_capacity(COMPARE_CHUNK);
        loop {
            let next = match lines.next_line()? {
                Some((no, text)) => Some(DayRecord::parse(run.kind, no, text)?),
                None => None,
            };
            let end = next.is_none();
            chunk.extend(next);
            if chunk.len() == COMPARE_CHUNK || (end && !chunk.is_empty()) {
                let keys: Vec<String> = chunk.iter().map(DayRecord::key).collect();
                self.store.stage_keys(&run.id, &keys).await?;
                self.compare_chunk(run, &chunk).await?;
                chunk.clear();
            }
            if end {
                break;
            }
        }
        self.platform_only(run).await?;
        if run.kind == DayFileKind::Clearing {
            self.compare_totals(run, bank_figures).await?;
        }
        Ok(())
    }

    /// Compares an order file whose order numbers ascend with the platform's SUCCESS orders of
    /// the date, read in the same order: chunk by chunk, the platform's orders numbered up to
    /// the chunk's last are either in the chunk (compared with their record) or the platform's
    /// alone; a record whose order is not among them is looked up by number (a break, rare).
    /// Every order numbered up to a chunk's last is decided before the next chunk is read, so an
    /// order a case sets to the bank's is never met again. Memory: a chunk and a page.
    pub(super) async fn merge_orders(
        &self,
        run: &mut Run,
        received: &shared::files::Received,
    ) -> Result<(), PlatformError> {
        let mut lines = LineReader::new(received.reader().map_err(ReadError::from)?);
        lines.next_line()?;
        let mut decided = String::new();
        let mut chunk = Vec::with_capacity(COMPARE_CHUNK);
        loop {
            let next = match lines.next_line()? {
                Some((no, text)) => match DayRecord::parse(run.kind, no, text)? {
                    DayRecord::Order(o) => Some(o),
                    _ => None,
                },
                None => None,
            };
            let end = next.is_none();
            chunk.extend(next);
            if chunk.len() == COMPARE_CHUNK || (end && !chunk.is_empty()) {
                let upto = chunk
                    .last()
                    .map(|r: &OrderRecord| r.order_no.as_str().to_owned())
                    .unwrap_or_default();
                self.merge_chunk(run, &chunk, &decided, Some(&upto), &mut Decide::Now)
                    .await?;
                decided = upto;
                chunk.clear();
            }
            if end {
                break;
            }
        }
        // The platform's orders after the file's last one: the bank has none of them.
        self.merge_chunk(run, &[], &decided, None, &mut Decide::Now)
            .await
    }

    /// One chunk of [`Platform::merge_orders`]: records `chunk`, ascending, all numbered after
    /// `after` and up to `upto` (`None`: every order after `after`). The platform's orders are
    /// read as facts first ([`DayOrderFacts`]); only those that do not agree with their record
    /// byte for byte, and the platform's alone, are decided, by `decide`: at once, or held.
    pub(super) async fn merge_chunk(
        &self,
        run: &mut Run,
        chunk: &[OrderRecord],
        after: &str,
        upto: Option<&str>,
        decide: &mut Decide,
    ) -> Result<(), PlatformError> {
        const PAGE: u32 = 1000;
        let mut facts: HashMap<String, DayOrderFacts> = HashMap::with_capacity(chunk.len());
        let mut from = after.to_owned();
        loop {
            let page = self
                .store
                .day_order_facts_between(run.date, &from, upto, PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            let Some(last) = page.last() else { break };
            from.clone_from(&last.order_no);
            let mut platform_only = Vec::new();
            for f in page {
                let number = f.order_no.as_str();
                if chunk
                    .binary_search_by(|r| r.order_no.as_str().cmp(number))
                    .is_ok()
                {
                    facts.insert(f.order_no.clone(), f);
                } else {
                    platform_only.push(Held::PlatformOnly(f.order_no));
                }
            }
            self.decide(run, decide, platform_only).await?;
            if !full {
                break;
            }
        }
        let mut unsure = Vec::new();
        for rec in chunk {
            let b = BankSuccess {
                business_date: run.date,
                ..BankSuccess::from(rec)
            };
            if facts.get(b.order_no.as_str()).is_some_and(|f| f.agree(&b)) {
                run.matched += 1;
            } else {
                unsure.push(Held::Unsure(b));
            }
        }
        self.decide(run, decide, unsure).await
    }

    /// Decides `items` as `decide` says: at once, or held (until too many are).
    async fn decide(
        &self,
        run: &mut Run,
        decide: &mut Decide,
        items: Vec<Held>,
    ) -> Result<(), PlatformError> {
        match decide {
            Decide::Now => self.decide_now(run, &items).await,
            Decide::Later(held) => {
                if held.len() + items.len() > self.recon.held_max {
                    *decide = Decide::TooMany;
                } else {
                    held.extend(items);
                }
                Ok(())
            }
            Decide::TooMany => Ok(()),
        }
    }

    /// Decides `items` in their order, each against the platform's order read whole now: an
    /// order the bank's file lacks, or a record its order does not agree with.
    async fn decide_now(&self, run: &mut Run, items: &[Held]) -> Result<(), PlatformError> {
        let numbers: Vec<&str> = items
            .iter()
            .map(|h| match h {
                Held::PlatformOnly(n) => n.as_str(),
                Held::Unsure(b) => b.order_no.as_str(),
            })
            .collect();
        if numbers.is_empty() {
            return Ok(());
        }
        let whole = self.store.orders_by_number(&numbers).await?;
        for h in items {
            match h {
                Held::PlatformOnly(n) => {
                    if let Some(o) = whole.get(n) {
                        self.platform_only_order(run, o).await?;
                    }
                }
                Held::Unsure(b) => {
                    self.order_line(run, whole.get(b.order_no.as_str()), b)
                        .await?
                }
            }
        }
        Ok(())
    }

    pub(super) async fn compare_chunk(
        &self,
        run: &mut Run,
        chunk: &[DayRecord],
    ) -> Result<(), PlatformError> {
        match run.kind {
            DayFileKind::Order => {
                let numbers: Vec<&str> = chunk
                    .iter()
                    .filter_map(|r| match r {
                        DayRecord::Order(o) => Some(o.order_no.as_str()),
                        _ => None,
                    })
                    .collect();
                let orders = self.store.orders_by_number(&numbers).await?;
                for r in chunk {
                    let DayRecord::Order(rec) = r else { continue };
                    let mut b = BankSuccess::from(rec);
                    b.business_date = run.date;
                    let o = orders.get(rec.order_no.as_str());
                    self.order_line(run, o, &b).await?;
                }
            }
            DayFileKind::SignUp => {
                let ids: Vec<&SignUpId> = chunk
                    .iter()
                    .filter_map(|r| match r {
                        DayRecord::SignUp(s) => Some(&s.signup_id),
                        _ => None,
                    })
                    .collect();
                let links = self.store.links_by_id(&ids).await?;
                for r in chunk {
                    let DayRecord::SignUp(rec) = r else { continue };
                    self.signup_line(run, links.get(&rec.signup_id), rec)
                        .await?;
                }
            }
            DayFileKind::Clearing => self.clearing_chunk(run, chunk).await?,
        }
        Ok(())
    }

    pub(super) async fn compare_totals(
        &self,
        run: &mut Run,
        bank: &shared::files::recon::DayFigures,
    ) -> Result<(), PlatformError> {
        let (pn, pf, rn, rf) = self.store.clearing_figures(run.date).await?;
        let mine = (pn, pf, rn, rf);
        let theirs = (
            bank.payments,
            bank.payment_total,
            bank.refunds,
            bank.refund_total,
        );
        if mine == theirs {
            return Ok(());
        }
        let net = |p: Money, r: Money| shared::files::recon::signed_amount(p.fen() - r.fen());
        let finding = Finding {
            key: "TOTALS".into(),
            category: CaseCategory::TotalsDiffer,
            bank: format!(
                "payments {} for {}, refunds {} for {}, net {}",
                theirs.0,
                theirs.1,
                theirs.2,
                theirs.3,
                net(theirs.1, theirs.3)
            ),
            platform: format!(
                "payments {pn} for {pf}, refunds {rn} for {rf}, net {}",
                net(pf, rf)
            ),
            amount: Money::from_fen(
                ((pf.fen() - rf.fen()) - (theirs.1.fen() - theirs.3.fen())).abs(),
            )
            .unwrap_or_default(),
        };
        self.staff_case(
            run,
            finding,
            "left for staff: the clearing totals differ after every line was compared",
        )
        .await
    }

    /// The id of the case of `key` in the run's file and date: the one found before, or a new
    /// one.
    pub(super) async fn case_id_for(&self, run: &Run, key: &str) -> Result<String, PlatformError> {
        Ok(self
            .store
            .case_id(run.date, run.kind, key)
            .await?
            .unwrap_or_else(|| new_id("CASE")))
    }

    /// Records the case `f` with what was done about it, counts it in the run's report and
    /// lists it (the first [`REPORT_CASES_MAX`]).
    pub(super) async fn record_case(
        &self,
        run: &mut Run,
        case_id: String,
        f: Finding,
        (action, status): (String, CaseStatus),
    ) -> Result<(), PlatformError> {
        let c = ReconCase {
            case_id,
            run_id: run.id.clone(),
            kind: run.kind,
            business_date: run.date,
            record_key: f.key,
            category: f.category,
            bank_record: f.bank,
            platform_record: f.platform,
            amount: f.amount,
            action,
            status,
            note: None,
            created_at_ms: self.clock.now_ms(),
            closed_at_ms: None,
        };
        self.store.upsert_case(&c).await?;
        tracing::warn!(
            case_id = %c.case_id,
            kind = run.kind.code(),
            key = %c.record_key,
            category = c.category.code(),
            status = c.status.code(),
            "reconciliation difference"
        );
        let e = run
            .report
            .categories
            .entry(c.category)
            .or_insert((0, Money::ZERO));
        e.0 += 1;
        e.1 = e.1.checked_add(c.amount).unwrap_or(e.1);
        match status {
            CaseStatus::NeedsStaff => run.report.needs_staff += 1,
            _ => run.report.auto_resolved += 1,
        }
        if run.cases.len() < REPORT_CASES_MAX {
            run.cases.push(c);
        } else {
            run.truncated = true;
        }
        Ok(())
    }
}
