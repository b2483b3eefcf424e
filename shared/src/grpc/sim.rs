//! `interbank.sim.v1.SimulatorService`, one implementation for both nodes: the business clock,
//! fault rules and reset. A node plugs in through [`SimNode`].

use std::future::Future;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proto::sim::v1 as pb;
use proto::sim::v1::simulator_service_server::SimulatorService;
use tonic::{Request, Response, Status};

use crate::clock::next_cutover;
use crate::domain::CardNumber;
use crate::error::{ErrorClass, ParseField, Refusal};
use crate::fault::{Action, FaultError, Rule, RuleSpec, Side};
use crate::money::Money;
use crate::node::Node;
use crate::seed::{PaidOrderSeed, SEED_COUNT_MAX, SEED_PREFIX_LEN_MAX, SeedError};

/// The longest single advance: 400 days, in milliseconds.
pub const ADVANCE_MS_MAX: i64 = 400 * 24 * 3600 * 1000;

/// What a node gives the simulator controls beyond what every [`Node`] has (clock, faults,
/// audit lines, records): its day-end cutover, its wipe and its side of a seed.
pub trait SimNode: Node {
    /// Runs the day-end cutover for every business date the clock has left behind; the dates
    /// closed now, oldest first. A node that keeps no business days of its own closes none.
    fn cutover(&self) -> impl Future<Output = anyhow::Result<Vec<NaiveDate>>> + Send {
        async { Ok(Vec::new()) }
    }
    /// The most recent business date closed.
    fn last_closed_date(&self) -> impl Future<Output = anyhow::Result<Option<NaiveDate>>> + Send {
        async { Ok(None) }
    }
    /// The closed business dates from `from` to the day before `to`, oldest first.
    fn closed_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = anyhow::Result<Vec<NaiveDate>>> + Send {
        let _ = (from, to);
        async { Ok(Vec::new()) }
    }
    /// Wipes the node's data.
    fn wipe(&self) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Writes the node's side of a seed of paid orders (SeedPaidOrders).
    fn seed_paid_orders(
        &self,
        seed: &PaidOrderSeed,
    ) -> impl Future<Output = Result<(), SeedError>> + Send;
}

/// Why a simulator call was refused.
#[derive(Debug, thiserror::Error)]
enum SimError {
    #[error("{0}")]
    MoveInvalid(&'static str),
    #[error("{0}")]
    Backwards(String),
    #[error("{0}")]
    Fault(FaultError),
    #[error("reset wipes every record of the node: send confirm = \"RESET\"")]
    ResetNotConfirmed,
    #[error("{}", .0.message)]
    Field(#[from] crate::error::FieldError),
    #[error("business_date {asked} is not this node's today, {today}")]
    NotToday { asked: NaiveDate, today: NaiveDate },
    #[error("{0}")]
    Seed(SeedError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Refusal for SimError {
    fn class(&self) -> ErrorClass {
        match self {
            SimError::MoveInvalid(_) | SimError::ResetNotConfirmed | SimError::Field(..) => {
                ErrorClass::InvalidArgument
            }
            SimError::Backwards(_) | SimError::NotToday { .. } => ErrorClass::FailedPrecondition,
            SimError::Seed(e) => match e {
                SeedError::SignUpNotFound(_) => ErrorClass::NotFound,
                SeedError::NotSigned(_) | SeedError::NotActivated(_) | SeedError::DayClosed(_) => {
                    ErrorClass::FailedPrecondition
                }
                SeedError::Taken => ErrorClass::AlreadyExists,
                SeedError::Internal(_) => ErrorClass::Internal,
            },
            SimError::Fault(FaultError::Invalid(_) | FaultError::Unmatchable { .. }) => {
                ErrorClass::InvalidArgument
            }
            SimError::Fault(FaultError::Full) => ErrorClass::ResourceExhausted,
            SimError::Fault(FaultError::NotFound) => ErrorClass::NotFound,
            SimError::Internal(_) => ErrorClass::Internal,
        }
    }
    fn reason(&self) -> &str {
        match self {
            SimError::MoveInvalid(_) => "CLOCK_MOVE_INVALID",
            SimError::Backwards(_) => "CLOCK_BACKWARDS",
            SimError::Fault(FaultError::Invalid(_)) => "FAULT_RULE_INVALID",
            SimError::Fault(FaultError::Unmatchable { .. }) => "FAULT_RULE_UNMATCHABLE",
            SimError::Fault(FaultError::Full) => "FAULT_RULES_FULL",
            SimError::Fault(FaultError::NotFound) => "FAULT_RULE_NOT_FOUND",
            SimError::ResetNotConfirmed => "RESET_NOT_CONFIRMED",
            SimError::Field(e) => e.reason,
            SimError::NotToday { .. } | SimError::Seed(SeedError::DayClosed(_)) => {
                "SEED_DATE_NOT_TODAY"
            }
            SimError::Seed(SeedError::SignUpNotFound(_)) => "SIGN_UP_NOT_FOUND",
            SimError::Seed(SeedError::NotSigned(_)) => "SIGN_UP_NOT_NORMAL",
            SimError::Seed(SeedError::NotActivated(_)) => "LINK_NOT_ACTIVATED",
            SimError::Seed(SeedError::Taken) => "SEED_ORDERS_EXIST",
            SimError::Seed(SeedError::Internal(_)) => "INTERNAL",
            SimError::Internal(_) => "INTERNAL",
        }
    }
    fn field(&self) -> Option<&str> {
        match self {
            SimError::Field(e) => Some(e.field),
            SimError::Fault(FaultError::Unmatchable { field, .. }) => Some(field),
            _ => None,
        }
    }
}

/// The SimulatorService of a node.
pub struct Simulator<N>(pub N);

impl<N: SimNode> Simulator<N> {
    fn done<T>(&self, op: &str, r: Result<T, SimError>) -> Result<Response<T>, Status> {
        match r {
            Ok(v) => {
                tracing::info!(operation = op, "simulator control");
                Ok(Response::new(v))
            }
            Err(e) => {
                if let SimError::Internal(cause) | SimError::Seed(SeedError::Internal(cause)) = &e {
                    tracing::error!(operation = op, error = ?cause, "internal error");
                }
                Err(super::status(N::DOMAIN, &e))
            }
        }
    }

    async fn state(&self) -> Result<pb::ClockState, SimError> {
        let clock = self.0.clock();
        let now = clock.now();
        Ok(pb::ClockState {
            now: Some(super::timestamp(now)),
            business_date: clock.business_date().to_string(),
            frozen: clock.is_frozen(),
            next_cutover: Some(super::timestamp(next_cutover(now))),
            last_closed_date: self
                .0
                .last_closed_date()
                .await?
                .map(|d| d.to_string())
                .unwrap_or_default(),
        })
    }

    async fn set_clock(
        &self,
        m: Option<pb::set_clock_request::Move>,
    ) -> Result<pb::SetClockResponse, SimError> {
        use pb::set_clock_request::Move;
        let clock = self.0.clock();
        let before = clock.business_date();
        match m {
            Some(Move::Freeze(true)) => clock.freeze(),
            Some(Move::Resume(true)) => clock.resume(),
            Some(Move::SetTo(t)) => {
                // Nanoseconds within a second: chrono would take up to two billion at :59 as a
                // leap second, and a negative count is not a time.
                let nanos = u32::try_from(t.nanos)
                    .ok()
                    .filter(|n| *n < 1_000_000_000)
                    .ok_or(SimError::MoveInvalid(
                        "set_to's nanos must be 0 to 999,999,999",
                    ))?;
                let to = DateTime::<Utc>::from_timestamp(t.seconds, nanos)
                    .ok_or(SimError::MoveInvalid("set_to's seconds are not a time"))?;
                clock
                    .set(to)
                    .map_err(|e| SimError::Backwards(e.to_string()))?;
            }
            Some(Move::AdvanceMs(ms)) if (1..=ADVANCE_MS_MAX).contains(&ms) => {
                clock.advance(Duration::milliseconds(ms));
            }
            Some(Move::AdvanceMs(_)) => {
                return Err(SimError::MoveInvalid(
                    "advance_ms must be from 1 to 400 days",
                ));
            }
            Some(Move::AdvanceToCutover(true)) => {
                clock
                    .set(next_cutover(clock.now()))
                    .map_err(|e| SimError::Backwards(e.to_string()))?;
            }
            _ => {
                return Err(SimError::MoveInvalid(
                    "give one move: freeze, resume, set_to, advance_ms or advance_to_cutover",
                ));
            }
        }
        self.0.keep_clock().await?;
        let mut closed = self.0.cutover().await?;
        // Another cutover (the node's watcher, another process) may have closed some of them
        // first: the move answers every day it left that is closed, whoever closed it.
        let after = clock.business_date();
        if after > before {
            closed.extend(self.0.closed_days(before, after).await?);
        }
        closed.sort();
        closed.dedup();
        Ok(pb::SetClockResponse {
            clock: Some(self.state().await?),
            closed_dates: closed.iter().map(ToString::to_string).collect(),
        })
    }
}

#[tonic::async_trait]
impl<N: SimNode> SimulatorService for Simulator<N> {
    async fn get_clock(
        &self,
        _req: Request<pb::GetClockRequest>,
    ) -> Result<Response<pb::GetClockResponse>, Status> {
        let r = self
            .state()
            .await
            .map(|c| pb::GetClockResponse { clock: Some(c) });
        self.done("GetClock", r)
    }

    async fn set_clock(
        &self,
        req: Request<pb::SetClockRequest>,
    ) -> Result<Response<pb::SetClockResponse>, Status> {
        let r = self.set_clock(req.into_inner().r#move).await;
        self.done("SetClock", r)
    }

    async fn list_faults(
        &self,
        _req: Request<pb::ListFaultsRequest>,
    ) -> Result<Response<pb::ListFaultsResponse>, Status> {
        let rules = self.0.faults().list().iter().map(rule_to_pb).collect();
        self.done("ListFaults", Ok(pb::ListFaultsResponse { rules }))
    }

    async fn add_fault(
        &self,
        req: Request<pb::AddFaultRequest>,
    ) -> Result<Response<pb::AddFaultResponse>, Status> {
        let r = rule_from_pb(req.into_inner().rule.unwrap_or_default())
            .and_then(|spec| self.0.faults().add(spec))
            .map(|rule| pb::AddFaultResponse {
                rule: Some(rule_to_pb(&rule)),
            })
            .map_err(SimError::Fault);
        self.done("AddFault", r)
    }

    async fn clear_faults(
        &self,
        req: Request<pb::ClearFaultsRequest>,
    ) -> Result<Response<pb::ClearFaultsResponse>, Status> {
        let id = req.into_inner().id;
        let r = self
            .0
            .faults()
            .clear((id != 0).then_some(id))
            .map(|removed| pb::ClearFaultsResponse { removed })
            .map_err(SimError::Fault);
        self.done("ClearFaults", r)
    }

    async fn reset(
        &self,
        req: Request<pb::ResetRequest>,
    ) -> Result<Response<pb::ResetResponse>, Status> {
        let r = async {
            if req.into_inner().confirm != "RESET" {
                return Err(SimError::ResetNotConfirmed);
            }
            self.0.faults().clear(None).map_err(SimError::Fault)?;
            self.0.clock().reset();
            self.0.wipe().await?;
            Ok(pb::ResetResponse {})
        }
        .await;
        self.done("Reset", r)
    }

    async fn echo(
        &self,
        req: Request<pb::EchoRequest>,
    ) -> Result<Response<pb::EchoResponse>, Status> {
        Ok(Response::new(pb::EchoResponse {
            payload: req.into_inner().payload,
        }))
    }

    async fn seed_paid_orders(
        &self,
        req: Request<pb::SeedPaidOrdersRequest>,
    ) -> Result<Response<pb::SeedPaidOrdersResponse>, Status> {
        let r = async {
            let seed = parse_seed(req.into_inner(), self.0.clock().business_date())?;
            self.0
                .seed_paid_orders(&seed)
                .await
                .map_err(SimError::Seed)?;
            Ok(pb::SeedPaidOrdersResponse {
                business_date: seed.date.to_string(),
                written: seed.count,
                total_amount: Money::from_fen(seed.total_fen())
                    .unwrap_or_default()
                    .to_string(),
                first_order_no: seed.order(0).order_no,
                last_order_no: seed.order(seed.count - 1).order_no,
            })
        }
        .await;
        self.done("SeedPaidOrders", r)
    }

    async fn list_audit_lines(
        &self,
        req: Request<pb::ListAuditLinesRequest>,
    ) -> Result<Response<pb::ListAuditLinesResponse>, Status> {
        let q = req.into_inner();
        let r = async {
            if !(1..=64).contains(&q.subject.chars().count())
                || !crate::domain::is_plain(&q.subject)
            {
                return Err(field(
                    "subject",
                    "SUBJECT_INVALID",
                    "subject is 1 to 64 characters, no control characters",
                ));
            }
            let limit = match q.limit {
                0 => 100,
                n if n <= 1000 => n,
                _ => return Err(field("limit", "LIMIT_INVALID", "limit is 1 to 1000")),
            };
            let lines = self.0.audit_lines(&q.subject, limit).await?;
            Ok(pb::ListAuditLinesResponse {
                lines: lines
                    .into_iter()
                    .map(|l| pb::AuditLine {
                        at: Some(super::timestamp(crate::clock::from_ms(l.at_ms))),
                        real_at_us: l.real_at_us,
                        operation: l.operation,
                        subject: l.subject,
                        outcome: l.outcome,
                        detail: l.detail,
                        trace_id: l.trace_id.unwrap_or_default(),
                    })
                    .collect(),
            })
        }
        .await;
        self.done("ListAuditLines", r)
    }

    async fn list_records(
        &self,
        req: Request<pb::ListRecordsRequest>,
    ) -> Result<Response<pb::ListRecordsResponse>, Status> {
        let q = req.into_inner();
        let r = async {
            let limit = match q.limit {
                0 => crate::records::ROWS_DEFAULT,
                n if n <= crate::records::ROWS_MAX => n,
                _ => {
                    return Err(field(
                        "limit",
                        "LIMIT_INVALID",
                        "limit is 1 to 200 rows a table (0 takes 50)",
                    ));
                }
            };
            let tables = self.0.records(limit).await?;
            Ok(pb::ListRecordsResponse {
                tables: tables.into_iter().map(table_to_pb).collect(),
            })
        }
        .await;
        self.done("ListRecords", r)
    }
}

fn table_to_pb(t: crate::records::Table) -> pb::RecordTable {
    use crate::records::RecordKind as K;
    let kind = match t.kind {
        K::Cards => pb::RecordKind::Cards,
        K::SignUps => pb::RecordKind::SignUps,
        K::Accounts => pb::RecordKind::Accounts,
        K::CardLinks => pb::RecordKind::CardLinks,
        K::Orders => pb::RecordKind::Orders,
        K::RefundBatches => pb::RecordKind::RefundBatches,
        K::RefundLines => pb::RecordKind::RefundLines,
        K::DayFiles => pb::RecordKind::DayFiles,
        K::ReconRuns => pb::RecordKind::ReconRuns,
        K::Adjustments => pb::RecordKind::Adjustments,
        K::Cases => pb::RecordKind::Cases,
    };
    pb::RecordTable {
        kind: kind as i32,
        columns: t.columns,
        rows: t
            .rows
            .into_iter()
            .map(|r| pb::RecordRow {
                record_key: r.key,
                cells: r.cells,
            })
            .collect(),
        total: t.total,
    }
}

fn invalid(msg: impl Into<String>) -> FaultError {
    FaultError::Invalid(msg.into())
}

/// A rule from the wire.
///
/// Long: each field of a rule parsed in the proto's order, each with its own refusal.
fn rule_from_pb(r: pb::FaultRule) -> Result<RuleSpec, FaultError> {
    use pb::fault_rule::Action as A;
    let side = match pb::FaultSide::try_from(r.side) {
        Ok(pb::FaultSide::Caller) => Side::Caller,
        Ok(pb::FaultSide::Callee) => Side::Callee,
        _ => return Err(invalid("side must be CALLER or CALLEE")),
    };
    let action = match r.action {
        Some(A::DelayMs(ms)) => Action::Delay(ms),
        Some(A::Fail(f)) => {
            if !(1..=16).contains(&f.code) {
                return Err(invalid("fail.code must be a gRPC error code, 1 to 16"));
            }
            let reason_ok = f.reason.len() <= 64
                && f.reason
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !reason_ok {
                return Err(invalid("fail.reason is 0 to 64 of A-Z, 0-9 and _"));
            }
            if f.message.chars().count() > 200 || !crate::domain::is_plain(&f.message) {
                return Err(invalid(
                    "fail.message is 0 to 200 characters, no control characters",
                ));
            }
            Action::Fail {
                code: f.code,
                reason: if f.reason.is_empty() {
                    "FAULT_INJECTED".to_owned()
                } else {
                    f.reason
                },
                message: if f.message.is_empty() {
                    "failed by an injected fault".to_owned()
                } else {
                    f.message
                },
            }
        }
        Some(A::DropReply(true)) => Action::DropReply,
        Some(A::DeliverTwice(true)) => Action::DeliverTwice,
        Some(A::LoseWrite(true)) => Action::LoseWrite,
        _ => {
            return Err(invalid(
                "give one action: delay_ms, fail, drop_reply, deliver_twice or lose_write",
            ));
        }
    };
    if !r.match_order_no.is_empty() && crate::domain::OrderNo::parse(&r.match_order_no).is_err() {
        return Err(invalid(
            "match_order_no is an order number: 1 to 32 of A-Z, a-z, 0-9, _ and -",
        ));
    }
    let card_masked = match r.match_card.as_str() {
        "" => None,
        c => Some(masked_card(c)?),
    };
    let amount = match r.match_amount.as_str() {
        "" => None,
        a => Some(Money::parse(a).map_err(|e| invalid(format!("match_amount: {e}")))?),
    };
    let probability = if r.probability == 0.0 {
        None
    } else {
        Some(r.probability)
    };
    Ok(RuleSpec {
        side,
        method: r.method,
        order_no: (!r.match_order_no.is_empty()).then_some(r.match_order_no),
        card_masked,
        amount,
        action,
        first_n: r.first_n,
        probability,
        seed: r.seed,
    })
}

/// A card to match on, full or already masked, in its masked form.
fn masked_card(c: &str) -> Result<String, FaultError> {
    if let Ok(n) = CardNumber::parse(c) {
        return Ok(n.masked());
    }
    let b = c.as_bytes();
    let shaped = (16..=19).contains(&b.len())
        && b[..6].iter().all(u8::is_ascii_digit)
        && b[b.len() - 4..].iter().all(u8::is_ascii_digit)
        && b[6..b.len() - 4].iter().all(|x| *x == b'*');
    if shaped {
        Ok(c.to_owned())
    } else {
        Err(invalid(
            "match_card must be a card number or a masked one like 622188*********0019",
        ))
    }
}

/// A rule for the wire.
fn rule_to_pb(r: &Rule) -> pb::FaultRule {
    use pb::fault_rule::Action as A;
    let s = &r.spec;
    pb::FaultRule {
        id: r.id,
        side: match s.side {
            Side::Caller => pb::FaultSide::Caller,
            Side::Callee => pb::FaultSide::Callee,
        } as i32,
        method: s.method.clone(),
        match_order_no: s.order_no.clone().unwrap_or_default(),
        match_card: s.card_masked.clone().unwrap_or_default(),
        match_amount: s.amount.map(|a| a.to_string()).unwrap_or_default(),
        action: Some(match &s.action {
            Action::Delay(ms) => A::DelayMs(*ms),
            Action::Fail {
                code,
                reason,
                message,
            } => A::Fail(pb::FaultStatus {
                code: *code,
                reason: reason.clone(),
                message: message.clone(),
            }),
            Action::DropReply => A::DropReply(true),
            Action::DeliverTwice => A::DeliverTwice(true),
            Action::LoseWrite => A::LoseWrite(true),
        }),
        first_n: s.first_n,
        probability: s.probability.unwrap_or(0.0),
        seed: s.seed,
        fired: r.fired,
    }
}

fn field(name: &'static str, reason: &'static str, message: &'static str) -> SimError {
    SimError::Field(crate::error::FieldError::new(name, reason, message))
}

/// A SeedPaidOrders request, parsed; `today` is the node's business date.
fn parse_seed(q: pb::SeedPaidOrdersRequest, today: NaiveDate) -> Result<PaidOrderSeed, SimError> {
    let signup_id = crate::domain::SignUpId::parse(&q.signup_id).field("signup_id")?;
    let date = if q.business_date.is_empty() {
        today
    } else {
        NaiveDate::parse_from_str(&q.business_date, "%Y-%m-%d").map_err(|_| {
            field(
                "business_date",
                "DATE_INVALID",
                "business_date is YYYY-MM-DD",
            )
        })?
    };
    let prefix_ok = (1..=SEED_PREFIX_LEN_MAX).contains(&q.order_prefix.len())
        && crate::domain::OrderNo::parse(&q.order_prefix).is_ok();
    if !prefix_ok {
        return Err(field(
            "order_prefix",
            "ORDER_NO_INVALID",
            "order_prefix is 1 to 24 characters of A-Z, a-z, 0-9, _ and -",
        ));
    }
    if !(1..=SEED_COUNT_MAX).contains(&q.count) {
        return Err(field(
            "count",
            "SEED_COUNT_INVALID",
            "count is 1 to 1,000,000",
        ));
    }
    if date != today {
        return Err(SimError::NotToday { asked: date, today });
    }
    Ok(PaidOrderSeed {
        signup_id,
        date,
        prefix: q.order_prefix,
        count: q.count,
    })
}
