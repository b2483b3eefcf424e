//! The card-link sign-up lifecycle at the branch: sign up, query, change limit, change mobile,
//! cancel; and the activation check the platform asks for.

use chrono::NaiveDate;
use shared::domain::{CardNumber, CardPassword, DailyLimit, Email, Mobile, SignUpId};
use shared::{ErrorClass, PeerFailure, PeerRefusal};
use tracing::Instrument;

use super::{
    Bank, BankError, CARD_PASSWORD_TRIES_MAX, Card, CardStatus, DOMAIN, PlatformSignUp, SignUp,
    SignUpForm, SignUpStatus,
};

/// The reason a sign-up is recorded FAILED with when the platform gave no answer.
pub const PLATFORM_UNAVAILABLE: &str = "PLATFORM_UNAVAILABLE";

impl Bank {
    /// Signs the card-link up: the bank's checks in order, a PENDING record, the platform's
    /// answer, and the record settled SIGNED or FAILED.
    pub async fn sign_up(&self, form: SignUpForm) -> Result<SignUp, BankError> {
        let fingerprint = form.fingerprint();
        if let Some(earlier) = self.store.signup_by_request(&form.request_id).await? {
            return replay(earlier, &fingerprint);
        }
        self.check_sign_up(&form).await?;
        // The sign-up's business date is fixed now, and the platform is told it: both sides then
        // list it under the same date, however long the platform takes to answer.
        let date = self.clock.business_date();
        let signup = loop {
            let number = self.store.next_signup_number().await?;
            let signup = pending(&form, number, date, self.clock.now_ms());
            match self
                .store
                .insert_pending_signup(&signup, &form.request_id, &fingerprint)
                .await?
            {
                InsertOutcome::Inserted => break signup,
                // Each try takes a new number, and a kept database holds finitely many ids.
                InsertOutcome::IdTaken => continue,
                InsertOutcome::RequestIdTaken => {
                    let earlier = self
                        .store
                        .signup_by_request(&form.request_id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("request id conflict without a row"))?;
                    return replay(earlier, &fingerprint);
                }
                InsertOutcome::CardTaken => return Err(BankError::CardAlreadySigned),
            }
        };
        let failure = self.platform_answer(&signup, date).await;
        self.settle_signup(&signup, date, failure).await
    }

    /// The bank's own checks of a sign-up form, in order: the card, its password, the ID and
    /// name against the card's holder, no live sign-up of the card.
    async fn check_sign_up(&self, form: &SignUpForm) -> Result<(), BankError> {
        let card = self.card(&form.card).await?;
        self.check_card_password(&card, &form.password).await?;
        if card.id != form.id || card.holder_name != form.real_name {
            return Err(BankError::IdHolderMismatch);
        }
        if self.store.live_signup_for_card(&form.card).await?.is_some() {
            return Err(BankError::CardAlreadySigned);
        }
        Ok(())
    }

    /// The platform's answer to the sign-up: `None` when it recorded it, its refusal, or
    /// PLATFORM_UNAVAILABLE when it gave no answer.
    async fn platform_answer(&self, signup: &SignUp, date: NaiveDate) -> Option<PeerRefusal> {
        let span = tracing::info_span!("platform.confirm_sign_up", signup_id = %signup.id);
        let answer = self
            .platform
            .confirm_sign_up(&PlatformSignUp {
                signup_id: signup.id.clone(),
                account: signup.account.clone(),
                real_name: signup.real_name.clone(),
                id_type: signup.id_doc.kind(),
                card_masked: signup.card.masked(),
                business_date: date,
            })
            .instrument(span)
            .await;
        match answer {
            Ok(()) => None,
            Err(PeerFailure::Refused(r)) => Some(r),
            Err(PeerFailure::NoAnswer(detail)) => {
                tracing::warn!(signup_id = %signup.id, %detail, "platform gave no answer to a sign-up");
                Some(PeerRefusal {
                    class: ErrorClass::Unavailable,
                    reason: PLATFORM_UNAVAILABLE.to_owned(),
                    message: format!(
                        "the platform could not be reached ({detail}); the sign-up is recorded failed, not signed: try again with a new request_id"
                    ),
                    domain: DOMAIN.to_owned(),
                })
            }
        }
    }

    /// Settles the PENDING sign-up of business date `date` SIGNED, or FAILED with `failure`
    /// (relayed to the caller).
    async fn settle_signup(
        &self,
        signup: &SignUp,
        date: NaiveDate,
        failure: Option<PeerRefusal>,
    ) -> Result<SignUp, BankError> {
        let status = if failure.is_some() {
            SignUpStatus::Failed
        } else {
            SignUpStatus::Signed
        };
        self.store
            .settle_signup(
                &signup.id,
                status,
                failure.as_ref(),
                date,
                self.clock.now_ms(),
            )
            .await?;
        tracing::info!(signup_id = %signup.id, card = ?signup.card, status = status.code(), "sign-up settled");
        match failure {
            Some(r) => Err(BankError::Relayed(r)),
            None => self.signup(&signup.id).await,
        }
    }

    /// Checks the card is usable and the password right; a wrong one counts and the third in a
    /// row locks the card.
    async fn check_card_password(
        &self,
        card: &Card,
        password: &CardPassword,
    ) -> Result<(), BankError> {
        match card.status {
            CardStatus::Normal => {}
            CardStatus::Locked => return Err(BankError::CardLocked),
            other => return Err(BankError::CardNotNormal(other)),
        }
        let hash = self.store.card_password_hash(&card.number).await?;
        if shared::secret::verify(hash, password.expose().to_owned()).await? {
            if card.wrong_password_tries > 0 {
                self.store
                    .reset_wrong_tries(&card.number, self.clock.now_ms())
                    .await?;
            }
            return Ok(());
        }
        let tries = self
            .store
            .count_wrong_password(&card.number, CARD_PASSWORD_TRIES_MAX, self.clock.now_ms())
            .await?;
        tracing::warn!(card = ?card.number, tries, "wrong card password");
        Err(BankError::CardPasswordWrong {
            tries_left: CARD_PASSWORD_TRIES_MAX.saturating_sub(tries),
        })
    }

    /// A sign-up by id, any status.
    pub async fn signup(&self, id: &SignUpId) -> Result<SignUp, BankError> {
        self.store
            .signup(id)
            .await?
            .ok_or(BankError::SignUpNotFound("no sign-up with that id"))
    }

    /// The card's live sign-up.
    pub async fn live_signup(&self, card: &CardNumber) -> Result<SignUp, BankError> {
        self.store
            .live_signup_for_card(card)
            .await?
            .ok_or(BankError::SignUpNotFound(
                "the card has no live card-link sign-up",
            ))
    }

    async fn signed_signup(&self, card: &CardNumber) -> Result<SignUp, BankError> {
        let s = self.live_signup(card).await?;
        if s.status != SignUpStatus::Signed {
            return Err(BankError::SignUpNotNormal(s.status));
        }
        Ok(s)
    }

    /// Changes the daily limit of the card's signed sign-up.
    pub async fn change_limit(
        &self,
        card: &CardNumber,
        limit: DailyLimit,
    ) -> Result<SignUp, BankError> {
        let s = self.signed_signup(card).await?;
        if !self
            .store
            .update_signed(&s.id, Some(limit), None, self.clock.now_ms())
            .await?
        {
            return Err(BankError::SignUpNotNormal(self.signup(&s.id).await?.status));
        }
        self.signup(&s.id).await
    }

    /// Changes the one-time-code mobile of the card's signed sign-up.
    pub async fn change_mobile(
        &self,
        card: &CardNumber,
        mobile: Mobile,
    ) -> Result<SignUp, BankError> {
        let s = self.signed_signup(card).await?;
        if !self
            .store
            .update_signed(&s.id, None, Some(&mobile), self.clock.now_ms())
            .await?
        {
            return Err(BankError::SignUpNotNormal(self.signup(&s.id).await?.status));
        }
        self.signup(&s.id).await
    }

    /// Cancels the card's sign-up: SIGNED → CANCELLING, the platform's answer, then CANCELLED,
    /// or back to SIGNED when the platform refuses or does not answer.
    pub async fn cancel(&self, card: &CardNumber) -> Result<SignUp, BankError> {
        let s = self.signed_signup(card).await?;
        // Fixed now, and told to the platform (as for a sign-up).
        let date = self.clock.business_date();
        if !self
            .store
            .move_signup(
                &s.id,
                SignUpStatus::Signed,
                SignUpStatus::Cancelling,
                Some(date),
                self.clock.now_ms(),
            )
            .await?
        {
            return Err(BankError::SignUpNotNormal(self.signup(&s.id).await?.status));
        }
        let span = tracing::info_span!("platform.confirm_cancel", signup_id = %s.id);
        let answer = self
            .platform
            .confirm_cancel(&s.id, &s.account, date)
            .instrument(span)
            .await;
        let (to, date, err) = match answer {
            Ok(()) => (SignUpStatus::Cancelled, Some(date), None),
            Err(PeerFailure::Refused(r)) => {
                (SignUpStatus::Signed, None, Some(BankError::Relayed(r)))
            }
            Err(PeerFailure::NoAnswer(detail)) => (
                SignUpStatus::Signed,
                None,
                Some(BankError::Relayed(PeerRefusal {
                    class: ErrorClass::Unavailable,
                    reason: PLATFORM_UNAVAILABLE.to_owned(),
                    message: format!(
                        "the platform could not be reached ({detail}); the sign-up stays signed: try the cancellation again"
                    ),
                    domain: DOMAIN.to_owned(),
                })),
            ),
        };
        self.store
            .move_signup(
                &s.id,
                SignUpStatus::Cancelling,
                to,
                date,
                self.clock.now_ms(),
            )
            .await?;
        tracing::info!(signup_id = %s.id, status = to.code(), "cancellation settled");
        match err {
            Some(e) => Err(e),
            None => self.signup(&s.id).await,
        }
    }

    /// The platform's activation check: a SIGNED sign-up of this card to this account.
    pub async fn confirm_activation(
        &self,
        signup_id: &SignUpId,
        card: &CardNumber,
        account: &Email,
    ) -> Result<SignUp, BankError> {
        const NOT_FOUND: &str = "no sign-up of that card to that account";
        let s = self
            .store
            .signup(signup_id)
            .await?
            .filter(|s| &s.card == card && &s.account == account)
            .ok_or(BankError::SignUpNotFound(NOT_FOUND))?;
        if s.status != SignUpStatus::Signed {
            return Err(BankError::SignUpNotNormal(s.status));
        }
        let c = self.card(card).await?;
        if matches!(c.status, CardStatus::Frozen | CardStatus::Closed) {
            return Err(BankError::CardNotNormal(c.status));
        }
        Ok(s)
    }
}

/// What inserting a pending sign-up ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Inserted.
    Inserted,
    /// Another request with the same request id got there first.
    RequestIdTaken,
    /// The card has a live sign-up already.
    CardTaken,
    /// A sign-up kept from before sign-ups were numbered holds the id.
    IdTaken,
}

/// The answer to a retried sign-up request: the first outcome, if the form is the same.
fn replay(
    (earlier, stored_fingerprint): (SignUp, String),
    fingerprint: &str,
) -> Result<SignUp, BankError> {
    if stored_fingerprint != fingerprint {
        return Err(BankError::RequestIdReused);
    }
    match earlier.status {
        SignUpStatus::Pending => Err(BankError::SignUpInProgress),
        SignUpStatus::Failed => Err(BankError::Relayed(earlier.failure.unwrap_or_else(|| {
            PeerRefusal {
                class: ErrorClass::Internal,
                reason: "INTERNAL".to_owned(),
                message: "the sign-up failed".to_owned(),
                domain: DOMAIN.to_owned(),
            }
        }))),
        _ => Ok(earlier),
    }
}

/// The PENDING record number `number` of the sign-up `form` asks for, on business date `date`,
/// at `now_ms`.
fn pending(form: &SignUpForm, number: u64, date: NaiveDate, now_ms: i64) -> SignUp {
    SignUp {
        id: SignUpId::issue(date, number),
        card: form.card.clone(),
        account: form.account.clone(),
        real_name: form.real_name.clone(),
        id_doc: form.id.clone(),
        mobile: form.mobile.clone(),
        limit: form.limit,
        status: SignUpStatus::Pending,
        failure: None,
        business_date: Some(date),
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
    }
}
