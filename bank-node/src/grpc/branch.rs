//! BranchService: the teller's counter.

use proto::bank::v1 as pb;
use proto::bank::v1::branch_service_server::BranchService;
use shared::domain::{
    CardNumber, CardPassword, DailyLimit, Email, IdDocument, Mobile, PersonName, RequestId,
};
use shared::error::ParseField;
use shared::node::Node;
use shared::{FieldError, Money};
use tonic::{Request, Response, Status};

use shared::grpc::id_type_from_pb;

use super::convert::{self, account_kind_from_pb, settable_card_status_from_pb};
use super::handle;
use crate::domain::{Bank, DEPOSIT_FEN_MAX, OpenCardForm, SignUpForm};

pub struct Branch(pub Bank);

fn card_number(s: &str) -> Result<CardNumber, FieldError> {
    CardNumber::parse(s).field("card_number")
}

/// A cash amount: a money string from 0.01 (or 0 where `allow_zero`) to 1,000,000.00.
fn cash(field: &'static str, s: &str, allow_zero: bool) -> Result<Money, FieldError> {
    let m = Money::parse(s).field(field)?;
    let min = if allow_zero { 0 } else { 1 };
    if !(min..=DEPOSIT_FEN_MAX).contains(&m.fen()) {
        return Err(FieldError::new(
            field,
            "AMOUNT_OUT_OF_RANGE",
            format!(
                "{field} must be from {}.{:02} to 1000000.00 yuan",
                min / 100,
                min % 100
            ),
        ));
    }
    Ok(m)
}

/// A subject for the audit line: a masked card number, or the raw field cut short if it did not
/// parse (never a full card number).
fn subject(raw_card: &str) -> String {
    CardNumber::parse(raw_card)
        .map(|c| c.masked())
        .unwrap_or_else(|_| format!("unparsed card ({} chars)", raw_card.len()))
}

#[tonic::async_trait]
impl BranchService for Branch {
    #[tracing::instrument(skip_all, name = "branch.open_card")]
    async fn open_card(
        &self,
        req: Request<pb::OpenCardRequest>,
    ) -> Result<Response<pb::OpenCardResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "OpenCard", &subject(&r.card_number), async {
            let id_type = id_type_from_pb(r.id_type)?;
            let form = OpenCardForm {
                kind: account_kind_from_pb(r.account_kind)?,
                holder_name: PersonName::parse(&r.holder_name).field("holder_name")?,
                id: IdDocument::parse(id_type, &r.id_number, self.0.clock().business_date())
                    .field("id_number")?,
                password: CardPassword::parse(&r.card_password).field("card_password")?,
                opening_deposit: if r.opening_deposit.is_empty() {
                    Money::ZERO
                } else {
                    cash("opening_deposit", &r.opening_deposit, true)?
                },
                number: match r.card_number.as_str() {
                    "" => None,
                    s => Some(card_number(s)?),
                },
            };
            let card = self.0.open_card(form).await?;
            tracing::info!(card = ?card.number, "card opened");
            Ok(pb::OpenCardResponse {
                card: Some(convert::card(&card)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.deposit")]
    async fn deposit(
        &self,
        req: Request<pb::DepositRequest>,
    ) -> Result<Response<pb::DepositResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "Deposit", &subject(&r.card_number), async {
            let card = card_number(&r.card_number)?;
            let amount = cash("amount", &r.amount, false)?;
            let card = self.0.deposit(&card, amount).await?;
            Ok(pb::DepositResponse {
                card: Some(convert::card(&card)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.get_card")]
    async fn get_card(
        &self,
        req: Request<pb::GetCardRequest>,
    ) -> Result<Response<pb::GetCardResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "GetCard", &subject(&r.card_number), async {
            let card = self.0.card(&card_number(&r.card_number)?).await?;
            Ok(pb::GetCardResponse {
                card: Some(convert::card(&card)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.unlock_card")]
    async fn unlock_card(
        &self,
        req: Request<pb::UnlockCardRequest>,
    ) -> Result<Response<pb::UnlockCardResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "UnlockCard", &subject(&r.card_number), async {
            let card = self.0.unlock_card(&card_number(&r.card_number)?).await?;
            Ok(pb::UnlockCardResponse {
                card: Some(convert::card(&card)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.set_card_status")]
    async fn set_card_status(
        &self,
        req: Request<pb::SetCardStatusRequest>,
    ) -> Result<Response<pb::SetCardStatusResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "SetCardStatus", &subject(&r.card_number), async {
            let card = card_number(&r.card_number)?;
            let status = settable_card_status_from_pb(r.status)?;
            let card = self.0.set_card_status(&card, status).await?;
            Ok(pb::SetCardStatusResponse {
                card: Some(convert::card(&card)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.sign_up", fields(request_id = %req.get_ref().request_id))]
    async fn sign_up(
        &self,
        req: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::SignUpResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "SignUp", &subject(&r.card_number), async {
            let id_type = id_type_from_pb(r.id_type)?;
            let form = SignUpForm {
                request_id: RequestId::parse(&r.request_id).field("request_id")?,
                account: Email::parse(&r.platform_account).field("platform_account")?,
                real_name: PersonName::parse(&r.real_name).field("real_name")?,
                id: IdDocument::parse(id_type, &r.id_number, self.0.clock().business_date())
                    .field("id_number")?,
                mobile: Mobile::parse(&r.mobile).field("mobile")?,
                card: card_number(&r.card_number)?,
                password: CardPassword::parse(&r.card_password).field("card_password")?,
                limit: DailyLimit::parse(&r.daily_limit).field("daily_limit")?,
            };
            let signup = self.0.sign_up(form).await?;
            Ok(pb::SignUpResponse {
                signup: Some(convert::signup(&signup)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.get_sign_up")]
    async fn get_sign_up(
        &self,
        req: Request<pb::GetSignUpRequest>,
    ) -> Result<Response<pb::GetSignUpResponse>, Status> {
        use pb::get_sign_up_request::Key;
        let r = req.into_inner();
        let subj = match &r.key {
            Some(Key::SignupId(id)) => id.chars().take(40).collect(),
            Some(Key::CardNumber(c)) => subject(c),
            None => String::new(),
        };
        handle(&self.0, "GetSignUp", &subj, async {
            let signup = match r.key {
                Some(Key::SignupId(id)) => {
                    let id = shared::domain::SignUpId::parse(&id).field("signup_id")?;
                    self.0.signup(&id).await?
                }
                Some(Key::CardNumber(c)) => self.0.live_signup(&card_number(&c)?).await?,
                None => {
                    return Err(FieldError::new(
                        "key",
                        "KEY_MISSING",
                        "give signup_id or card_number",
                    )
                    .into());
                }
            };
            Ok(pb::GetSignUpResponse {
                signup: Some(convert::signup(&signup)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.change_limit")]
    async fn change_limit(
        &self,
        req: Request<pb::ChangeLimitRequest>,
    ) -> Result<Response<pb::ChangeLimitResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ChangeLimit", &subject(&r.card_number), async {
            let card = card_number(&r.card_number)?;
            let limit = DailyLimit::parse(&r.daily_limit).field("daily_limit")?;
            let signup = self.0.change_limit(&card, limit).await?;
            Ok(pb::ChangeLimitResponse {
                signup: Some(convert::signup(&signup)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.change_mobile")]
    async fn change_mobile(
        &self,
        req: Request<pb::ChangeMobileRequest>,
    ) -> Result<Response<pb::ChangeMobileResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "ChangeMobile", &subject(&r.card_number), async {
            let card = card_number(&r.card_number)?;
            let mobile = Mobile::parse(&r.mobile).field("mobile")?;
            let signup = self.0.change_mobile(&card, mobile).await?;
            Ok(pb::ChangeMobileResponse {
                signup: Some(convert::signup(&signup)),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, name = "branch.cancel_sign_up")]
    async fn cancel_sign_up(
        &self,
        req: Request<pb::CancelSignUpRequest>,
    ) -> Result<Response<pb::CancelSignUpResponse>, Status> {
        let r = req.into_inner();
        handle(&self.0, "CancelSignUp", &subject(&r.card_number), async {
            let signup = self.0.cancel(&card_number(&r.card_number)?).await?;
            Ok(pb::CancelSignUpResponse {
                signup: Some(convert::signup(&signup)),
            })
        })
        .await
    }
}
