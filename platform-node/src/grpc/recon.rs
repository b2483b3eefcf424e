//! ReconOpsService: settlement staff's reconciliation, real-time and T+1, and the error cases.

use proto::platform::v1 as pb;
use proto::platform::v1::recon_ops_service_server::ReconOpsService;
use shared::FieldError;
use shared::clock::from_ms;
use shared::domain::{Email, OrderNo, PayAmount};
use shared::error::ParseField;
use shared::files::recon::DayFileKind;
use shared::grpc::{date_from_pb, timestamp};
use tonic::{Request, Response, Status};

use super::{cut, handle};
use crate::domain::{
    Adjustment, CaseCategory, CaseFilter, CaseStatus, DayReport, Platform, PlatformError, ReconCase,
};

pub struct Recon(pub Platform);

const LIST_DEFAULT: u32 = 100;
const LIST_MAX: u32 = 1000;
const NOTE_CHARS_MAX: usize = 200;

fn limit(v: u32) -> Result<u32, FieldError> {
    match v {
        0 => Ok(LIST_DEFAULT),
        n if n <= LIST_MAX => Ok(n),
        _ => Err(FieldError::new(
            "limit",
            "LIMIT_INVALID",
            format!("limit is 1 to {LIST_MAX} (0 takes {LIST_DEFAULT})"),
        )),
    }
}

fn kind_from_pb(v: i32) -> Result<DayFileKind, FieldError> {
    match pb::ReconFileKind::try_from(v) {
        Ok(pb::ReconFileKind::Signup) => Ok(DayFileKind::SignUp),
        Ok(pb::ReconFileKind::Order) => Ok(DayFileKind::Order),
        Ok(pb::ReconFileKind::Clearing) => Ok(DayFileKind::Clearing),
        _ => Err(FieldError::new(
            "kinds",
            "KIND_INVALID",
            "a kind is SIGNUP, ORDER or CLEARING",
        )),
    }
}

fn kind_to_pb(k: DayFileKind) -> pb::ReconFileKind {
    match k {
        DayFileKind::SignUp => pb::ReconFileKind::Signup,
        DayFileKind::Order => pb::ReconFileKind::Order,
        DayFileKind::Clearing => pb::ReconFileKind::Clearing,
    }
}

fn category_to_pb(c: CaseCategory) -> pb::CaseCategory {
    match c {
        CaseCategory::BankOnly => pb::CaseCategory::BankOnly,
        CaseCategory::PlatformOnly => pb::CaseCategory::PlatformOnly,
        CaseCategory::AmountDiffers => pb::CaseCategory::AmountDiffers,
        CaseCategory::StatusDiffers => pb::CaseCategory::StatusDiffers,
        CaseCategory::DetailDiffers => pb::CaseCategory::DetailDiffers,
        CaseCategory::TotalsDiffer => pb::CaseCategory::TotalsDiffer,
    }
}

fn status_to_pb(s: CaseStatus) -> pb::CaseStatus {
    match s {
        CaseStatus::AutoResolved => pb::CaseStatus::AutoResolved,
        CaseStatus::NeedsStaff => pb::CaseStatus::NeedsStaff,
        CaseStatus::Closed => pb::CaseStatus::Closed,
    }
}

fn adjustment(a: &Adjustment) -> pb::Adjustment {
    pb::Adjustment {
        adjustment_id: a.id.clone(),
        record_kind: a.record_kind.clone(),
        record_key: a.record_key.clone(),
        before: a.before.clone(),
        after: a.after.clone(),
        source: a.source.clone(),
        reason: a.reason.clone(),
        case_id: a.case_id.clone().unwrap_or_default(),
        at: Some(timestamp(from_ms(a.at_ms))),
    }
}

fn case(c: &ReconCase) -> pb::ReconCase {
    pb::ReconCase {
        case_id: c.case_id.clone(),
        run_id: c.run_id.clone(),
        kind: kind_to_pb(c.kind) as i32,
        business_date: c.business_date.to_string(),
        record_key: c.record_key.clone(),
        category: category_to_pb(c.category) as i32,
        bank_record: c.bank_record.clone(),
        platform_record: c.platform_record.clone(),
        amount: c.amount.to_string(),
        action: c.action.clone(),
        status: status_to_pb(c.status) as i32,
        note: c.note.clone().unwrap_or_default(),
        created_at: Some(timestamp(from_ms(c.created_at_ms))),
        closed_at: c.closed_at_ms.map(|t| timestamp(from_ms(t))),
    }
}

fn report(r: &DayReport) -> pb::RunDayReconResponse {
    pb::RunDayReconResponse {
        business_date: r.business_date.to_string(),
        files: r
            .files
            .iter()
            .map(|f| pb::FileReport {
                kind: kind_to_pb(f.kind) as i32,
                run_id: f.run_id.clone(),
                sha256: f.sha256.clone(),
                record_count: f.records,
                matched: f.matched,
                categories: f
                    .categories
                    .iter()
                    .map(|(c, (n, amount))| pb::CategoryFigures {
                        category: category_to_pb(*c) as i32,
                        count: *n,
                        amount: amount.to_string(),
                    })
                    .collect(),
                cases: f.auto_resolved + f.needs_staff,
                auto_resolved: f.auto_resolved,
                needs_staff: f.needs_staff,
            })
            .collect(),
        cases: r.cases.iter().map(case).collect(),
        cases_truncated: r.truncated,
    }
}

/// A case id as the platform issues them.
fn case_id(s: &str) -> Result<String, FieldError> {
    issued_id("case_id", "CASE_ID_INVALID", s)
}

/// An id the platform issues (case, run): 1 to 40 of `A-Z 0-9`.
fn issued_id(field: &'static str, reason: &'static str, s: &str) -> Result<String, FieldError> {
    let ok = (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    ok.then(|| s.to_owned())
        .ok_or_else(|| FieldError::new(field, reason, format!("{field} is 1 to 40 of A-Z and 0-9")))
}

/// An optional filter: empty means none.
fn optional<T>(
    s: &str,
    parse: impl FnOnce(&str) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    (!s.is_empty()).then(|| parse(s)).transpose()
}

/// The longest record key a filter takes (order numbers, sign-up ids, refund keys).
const RECORD_KEY_LEN_MAX: usize = 64;

#[tonic::async_trait]
impl ReconOpsService for Recon {
    async fn run_realtime_recon(
        &self,
        _req: Request<pb::RunRealtimeReconRequest>,
    ) -> Result<Response<pb::RunRealtimeReconResponse>, Status> {
        handle(&self.0, "RunRealtimeRecon", "realtime", async {
            let r = self.0.recon_realtime().await?;
            Ok(pb::RunRealtimeReconResponse {
                cursor_before: r.cursor_before,
                cursor_after: r.cursor_after,
                payments_seen: r.payments_seen,
                pending_checked: r.pending_checked,
                pending_unanswered: r.pending_unanswered,
                adjustments: r.adjustments.iter().map(adjustment).collect(),
                left_for_t1: r.left_for_t1,
            })
        })
        .await
    }

    async fn list_adjustments(
        &self,
        req: Request<pb::ListAdjustmentsRequest>,
    ) -> Result<Response<pb::ListAdjustmentsResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ListAdjustments", &cut(&r.record_key), async {
            let n = limit(r.limit)?;
            let key = optional(&r.record_key, |k| {
                shared::domain::key("record_key", "RECORD_KEY_INVALID", k, RECORD_KEY_LEN_MAX)
            })?;
            let list = self.0.adjustments(key.as_deref(), n).await?;
            Ok(pb::ListAdjustmentsResponse {
                adjustments: list.iter().map(adjustment).collect(),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "recon.run_day", fields(business_date = %cut(&req.get_ref().business_date)))]
    async fn run_day_recon(
        &self,
        req: Request<pb::RunDayReconRequest>,
    ) -> Result<Response<pb::RunDayReconResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "RunDayRecon", &cut(&r.business_date), async {
            let date = date_from_pb("business_date", &r.business_date)?;
            let kinds = r
                .kinds
                .iter()
                .map(|k| kind_from_pb(*k))
                .collect::<Result<Vec<_>, _>>()?;
            let rep = self.0.recon_day(date, &kinds).await?;
            Ok(report(&rep))
        })
        .await
    }

    async fn list_day_runs(
        &self,
        req: Request<pb::ListDayRunsRequest>,
    ) -> Result<Response<pb::ListDayRunsResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ListDayRuns", &cut(&r.business_date), async {
            let date = date_from_pb("business_date", &r.business_date)?;
            let runs = self.0.day_runs(date).await?;
            Ok(pb::ListDayRunsResponse {
                runs: runs
                    .iter()
                    .map(|run| pb::DayRun {
                        run_id: run.run_id.clone(),
                        kind: kind_to_pb(run.kind) as i32,
                        business_date: run.date.to_string(),
                        sha256: run.sha256.clone(),
                        record_count: run.records,
                        matched: run.matched,
                        cases: run.cases,
                        started_at: Some(timestamp(from_ms(run.started_at_ms))),
                        done_at: run.done_at_ms.map(|ms| timestamp(from_ms(ms))),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn list_cases(
        &self,
        req: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ListCases", &cut(&r.business_date), async {
            let filter = CaseFilter {
                status: match pb::CaseStatus::try_from(r.status) {
                    Ok(pb::CaseStatus::AutoResolved) => Some(CaseStatus::AutoResolved),
                    Ok(pb::CaseStatus::NeedsStaff) => Some(CaseStatus::NeedsStaff),
                    Ok(pb::CaseStatus::Closed) => Some(CaseStatus::Closed),
                    _ => None,
                },
                business_date: match r.business_date.as_str() {
                    "" => None,
                    d => Some(date_from_pb("business_date", d)?),
                },
                run_id: optional(&r.run_id, |s| issued_id("run_id", "RUN_ID_INVALID", s))?,
                after_case_id: optional(&r.after_case_id, |s| {
                    issued_id("after_case_id", "CASE_ID_INVALID", s)
                })?,
                limit: limit(r.limit)?,
            };
            let list = self.0.cases(&filter).await?;
            Ok(pb::ListCasesResponse {
                cases: list.iter().map(case).collect(),
            })
        })
        .await
    }

    async fn close_case(
        &self,
        req: Request<pb::CloseCaseRequest>,
    ) -> Result<Response<pb::CloseCaseResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "CloseCase", &cut(&r.case_id), async {
            let id = case_id(&r.case_id)?;
            let n = r.note.chars().count();
            if n == 0 || n > NOTE_CHARS_MAX || r.note.chars().any(char::is_control) {
                return Err(PlatformError::from(FieldError::new(
                    "note",
                    "NOTE_INVALID",
                    format!("a note is 1 to {NOTE_CHARS_MAX} characters, no control characters"),
                )));
            }
            let c = self.0.close_case(&id, &r.note).await?;
            Ok(pb::CloseCaseResponse {
                case: Some(case(&c)),
            })
        })
        .await
    }

    async fn write_manual_order(
        &self,
        req: Request<pb::WriteManualOrderRequest>,
    ) -> Result<Response<pb::WriteManualOrderResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "WriteManualOrder", &cut(&r.order_no), async {
            let order_no = OrderNo::parse(&r.order_no).field("order_no")?;
            let email = Email::parse(&r.email).field("email")?;
            let amount = PayAmount::parse(&r.amount).field("amount")?;
            let date = date_from_pb("business_date", &r.business_date)?;
            let signup_id = shared::domain::SignUpId::parse(&r.signup_id).field("signup_id")?;
            self.0
                .write_manual_order(order_no.clone(), email, signup_id, amount, date)
                .await?;
            Ok(pb::WriteManualOrderResponse {
                order_no: order_no.as_str().to_owned(),
            })
        })
        .await
    }
}
