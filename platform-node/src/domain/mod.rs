//! The platform's business rules: accounts, login sessions, the platform's copy of each card-link
//! sign-up, and activation. Storage is behind `crate::store`, the bank behind [`BankPort`].

mod error;
mod model;
mod pay;
mod recon;
mod refund;

pub use pay::{RESOLVE_BACKOFF_MS_FIRST, RESOLVE_TRIES_MAX};
pub use recon::*;
pub use refund::{
    BankBatch, BankBatchStatus, BankFiles, BatchStatus as RefundBatchStatus, FileRefusal,
    NewRefund, PushFailure, REFUNDS_PER_CREATE_MAX, RefundBatch, RefundFilter, RefundLineStatus,
    RefundRecord, ResultFigures, parse_reason,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Duration;
pub use error::PlatformError;
pub use model::*;
use sha2::{Digest, Sha256};
use shared::clock::Clock;
use shared::domain::{
    CardNumber, DailyLimit, Email, LoginPassword, PayPassword, PersonName, SignUpId,
};
use shared::fault::Faults;
use shared::files::FileStore;
use shared::metrics::Metrics;
use shared::node::Node;
use shared::records::View;
use shared::secret::VerifiedCache;
use shared::security::Institution;
use shared::store::NodeDb;
use shared::{ErrorClass, PeerFailure, PeerRefusal};
use tracing::Instrument;

use crate::store::Store;

/// The ErrorInfo domain of refusals the platform makes.
pub const DOMAIN: &str = "platform.interbank-sim";
/// How long a login session lasts, in seconds of business time.
pub const SESSION_TTL_SECS: i64 = 30 * 60;

/// A boxed future, for the object-safe [`BankPort`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the platform asks the bank.
pub trait BankPort: Send + Sync {
    /// Asks the bank to confirm a signed sign-up of `card` to `account`.
    fn confirm_activation<'a>(
        &'a self,
        signup_id: &'a SignUpId,
        card: &'a CardNumber,
        account: &'a Email,
    ) -> BoxFuture<'a, Result<ActivationGrant, PeerFailure>>;
    /// Asks the bank to send a one-time code for a payment.
    fn request_payment_code<'a>(
        &'a self,
        order: &'a PayOrder,
    ) -> BoxFuture<'a, Result<CodeSent, PeerFailure>>;
    /// Passes the customer's code on; the bank debits.
    fn pay<'a>(
        &'a self,
        order: &'a PayOrder,
        code: &'a shared::domain::OtpCode,
    ) -> BoxFuture<'a, Result<(String, chrono::NaiveDate), PeerFailure>>;
    /// The bank's record of a payment.
    fn get_payment<'a>(
        &'a self,
        order: &'a PayOrder,
    ) -> BoxFuture<'a, Result<BankPayment, PeerFailure>>;
    /// The card's balance.
    fn balance<'a>(&'a self, link: &'a CardLink)
    -> BoxFuture<'a, Result<BalanceView, PeerFailure>>;
    /// What is left of today's limit.
    fn remaining_limit<'a>(
        &'a self,
        link: &'a CardLink,
    ) -> BoxFuture<'a, Result<LimitView, PeerFailure>>;
}

/// The bank's yes to an activation.
#[derive(Debug, Clone)]
pub struct ActivationGrant {
    /// The daily limit set at the branch.
    pub limit: DailyLimit,
    /// The one-time-code mobile, masked.
    pub mobile_masked: String,
}

/// The platform: its store, its clock and its line to the bank.
#[derive(Clone)]
pub struct Platform {
    store: Store,
    clock: Clock,
    bank: Arc<dyn BankPort>,
    faults: Faults,
    pay_passwords: Arc<VerifiedCache>,
    bank_files: Arc<dyn BankFiles>,
    files: FileStore,
    /// One result fetch at a time: a fetch runs to the end even when its caller stops waiting.
    result_fetch: Arc<tokio::sync::Mutex<()>>,
    bank_recon: Arc<dyn BankRecon>,
    recon: ReconSettings,
    /// One real-time reconciliation at a time, and one T+1 run.
    realtime: Arc<tokio::sync::Mutex<()>>,
    day_recon: Arc<tokio::sync::Mutex<()>>,
    metrics: Metrics,
}

/// The platform's lines to the bank: the interbank calls, the file server and reconciliation.
#[derive(Clone)]
pub struct BankLines {
    /// The interbank calls (short timeout).
    pub link: Arc<dyn BankPort>,
    /// The file server for refund batches.
    pub files: Arc<dyn BankFiles>,
    /// Reconciliation.
    pub recon: Arc<dyn BankRecon>,
}

/// A peer failure as the platform's refusal: the bank's own refusal relayed as it is, or
/// BANK_UNAVAILABLE when it did not answer (`then` says what the customer may do).
pub(crate) fn relay(f: PeerFailure, then: &str) -> PlatformError {
    match f {
        PeerFailure::Refused(r) => PlatformError::Relayed(r),
        PeerFailure::NoAnswer(detail) => PlatformError::Relayed(PeerRefusal {
            class: ErrorClass::Unavailable,
            reason: "BANK_UNAVAILABLE".to_owned(),
            message: format!("the bank could not be reached ({detail}); {then}"),
            domain: DOMAIN.to_owned(),
        }),
    }
}

/// The platform's parts; what is built on them is one mechanism for both nodes (`shared::node`).
impl Node for Platform {
    const INSTITUTION: Institution = Institution::Platform;
    const DOMAIN: &'static str = DOMAIN;
    const VIEWS: &'static [View] = crate::store::VIEWS;

    fn db(&self) -> &NodeDb {
        &self.store
    }
    fn clock(&self) -> &Clock {
        &self.clock
    }
    fn faults(&self) -> &Faults {
        &self.faults
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// A login session: the bearer token (given once, never stored) and its end.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// When it ends, ms.
    pub expires_at_ms: i64,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Platform {
    /// A platform over `store`, telling time by `clock`, calling the bank through `bank`, with
    /// `faults` injected on both sides of its interbank calls, keeping files in `files`.
    pub fn new(
        store: Store,
        clock: Clock,
        bank: BankLines,
        faults: Faults,
        files: FileStore,
        recon: ReconSettings,
    ) -> Platform {
        let metrics = shared::metrics::Metrics::new("platform");
        metrics.count_database(store.pools.counts.clone());
        Platform {
            store,
            clock,
            bank: bank.link,
            faults,
            pay_passwords: Arc::new(VerifiedCache::default()),
            bank_files: bank.files,
            files,
            result_fetch: Arc::default(),
            bank_recon: bank.recon,
            recon,
            realtime: Arc::default(),
            day_recon: Arc::default(),
            metrics,
        }
    }

    /// Wipes every record (a simulator reset).
    pub async fn wipe(&self) -> Result<(), PlatformError> {
        self.store.wipe().await?;
        self.pay_passwords.clear();
        tracing::warn!("platform reset: every record wiped");
        Ok(())
    }

    /// Opens an account.
    pub async fn register(
        &self,
        email: Email,
        real_name: PersonName,
        login: LoginPassword,
        pay: PayPassword,
    ) -> Result<Account, PlatformError> {
        let login_hash = shared::secret::hash(login.expose().to_owned()).await?;
        let pay_hash = shared::secret::hash(pay.expose().to_owned()).await?;
        let account = Account {
            email,
            real_name,
            status: AccountStatus::Normal,
            created_at_ms: self.clock.now_ms(),
        };
        if !self
            .store
            .insert_account(&account, &login_hash, &pay_hash)
            .await?
        {
            return Err(PlatformError::AccountExists);
        }
        Ok(account)
    }

    /// An account, or ACCOUNT_NOT_FOUND.
    pub async fn account(&self, email: &Email) -> Result<Account, PlatformError> {
        self.store
            .account(email)
            .await?
            .ok_or(PlatformError::AccountNotFound)
    }

    /// The session's account and its card-links, newest first. Each ACTIVE link's daily limit and
    /// mobile are asked of the bank (a teller changes them at the branch; the bank's word is the
    /// truth), kept as the platform's new copy, and marked `true`; where the bank does not
    /// answer, the platform's copy is shown, as of when the bank last said it, marked `false`.
    pub async fn my_account(
        &self,
        token: &str,
    ) -> Result<(Account, Vec<(CardLink, bool)>), PlatformError> {
        let account = self.session_account(token).await?;
        let mut out = Vec::new();
        for mut l in self.links(&account.email).await? {
            let fresh = l.status == LinkStatus::Active && self.refresh_terms(&mut l).await?;
            out.push((l, fresh));
        }
        Ok((account, out))
    }

    /// Asks the bank for an active link's limit and mobile and keeps them; `false` (the link as
    /// it was) when the bank gives none.
    async fn refresh_terms(&self, l: &mut CardLink) -> Result<bool, PlatformError> {
        let span = tracing::info_span!("bank.get_remaining_limit", signup_id = %l.signup_id);
        let view = match self.bank.remaining_limit(l).instrument(span).await {
            Ok(v) if !v.mobile_masked.is_empty() => v,
            Ok(_) => return Ok(false),
            Err(f) => {
                tracing::info!(signup_id = %l.signup_id, failure = ?f, "the bank gave no card-link terms: the platform's copy is shown");
                return Ok(false);
            }
        };
        let Ok(limit) = DailyLimit::new(view.limit) else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        if !self
            .store
            .refresh_link_terms(&l.signup_id, limit, &view.mobile_masked, now)
            .await?
        {
            return Ok(false);
        }
        l.daily_limit = Some(limit);
        l.mobile_masked = Some(view.mobile_masked);
        l.terms_at_ms = Some(now);
        Ok(true)
    }

    /// An account's card-links, newest first.
    pub async fn links(&self, email: &Email) -> Result<Vec<CardLink>, PlatformError> {
        Ok(self.store.links_for(email).await?)
    }

    /// Logs in: the same LOGIN_FAILED for an unknown account and a wrong password.
    pub async fn login(
        &self,
        email: &Email,
        password: &LoginPassword,
    ) -> Result<Session, PlatformError> {
        let Some((account, hash)) = self.store.account_with_login_hash(email).await? else {
            return Err(PlatformError::LoginFailed);
        };
        if !shared::secret::verify(hash, password.expose().to_owned()).await? {
            return Err(PlatformError::LoginFailed);
        }
        if account.status != AccountStatus::Normal {
            return Err(PlatformError::AccountNotNormal(account.status));
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        let expires_at_ms =
            (self.clock.now() + Duration::seconds(SESSION_TTL_SECS)).timestamp_millis();
        self.store
            .insert_session(&token_hash(&token), email, expires_at_ms)
            .await?;
        Ok(Session {
            token,
            expires_at_ms,
        })
    }

    /// The account a live session token belongs to.
    pub async fn session_account(&self, token: &str) -> Result<Account, PlatformError> {
        Ok(self.session_paying(token).await?.0)
    }

    /// The session's account and the state of its payment password, in one read.
    pub(crate) async fn session_paying(
        &self,
        token: &str,
    ) -> Result<(Account, crate::store::PayPasswordState), PlatformError> {
        self.store
            .session_account(&token_hash(token), self.clock.now_ms())
            .await?
            .ok_or(PlatformError::SessionInvalid)
    }

    /// Sets an account's status; leaving NORMAL ends its sessions.
    pub async fn set_account_status(
        &self,
        email: &Email,
        status: AccountStatus,
    ) -> Result<Account, PlatformError> {
        let account = self.account(email).await?;
        if account.status == AccountStatus::Closed {
            return Err(PlatformError::AccountClosed);
        }
        self.store
            .set_account_status(email, status, self.clock.now_ms())
            .await?;
        self.account(email).await
    }

    /// The bank asks to record a sign-up: account exists, is normal, carries the same real name.
    pub async fn confirm_sign_up(&self, s: IncomingSignUp) -> Result<CardLink, PlatformError> {
        if let Some(existing) = self.store.link(&s.signup_id).await? {
            let same = existing.email == s.account
                && existing.real_name == s.real_name
                && existing.id_type == s.id_type
                && existing.card_masked == s.card_masked
                && existing.business_date.is_none_or(|d| d == s.business_date);
            return if same {
                Ok(existing)
            } else {
                Err(PlatformError::SignUpIdReused)
            };
        }
        let account = self.account(&s.account).await?;
        if account.status != AccountStatus::Normal {
            return Err(PlatformError::AccountNotNormal(account.status));
        }
        if account.real_name != s.real_name {
            return Err(PlatformError::NameMismatch);
        }
        let now = self.clock.now_ms();
        let link = CardLink {
            platform_link_id: format!("PL{}", hex::encode(rand::random::<[u8; 8]>())),
            signup_id: s.signup_id,
            email: s.account,
            real_name: s.real_name,
            id_type: s.id_type,
            card_masked: s.card_masked,
            status: LinkStatus::Signed,
            daily_limit: None,
            mobile_masked: None,
            terms_at_ms: None,
            signed_at_ms: now,
            activated_at_ms: None,
            business_date: Some(s.business_date),
            cancelled_date: None,
        };
        if !self.store.insert_link(&link).await? {
            // A concurrent repeat of the same request got there first: answer as it did.
            let existing = self.store.link(&link.signup_id).await?.ok_or_else(|| {
                anyhow::anyhow!("card-link {} vanished after a conflict", link.signup_id)
            })?;
            return Ok(existing);
        }
        tracing::info!(signup_id = %link.signup_id, "card-link signed");
        Ok(link)
    }

    /// The bank asks to cancel a sign-up on its business date `date`: it must exist here, belong
    /// to the account and be normal (signed or active); a repeat for a cancelled one answers yes
    /// again and takes the bank's date of this cancellation.
    pub async fn confirm_cancel(
        &self,
        signup_id: &SignUpId,
        account: &Email,
        date: chrono::NaiveDate,
    ) -> Result<CardLink, PlatformError> {
        self.store
            .link(signup_id)
            .await?
            .filter(|l| &l.email == account)
            .ok_or(PlatformError::SignUpNotFound)?;
        self.store
            .cancel_link(signup_id, date, self.clock.now_ms())
            .await?;
        tracing::info!(%signup_id, "card-link cancelled");
        self.store
            .link(signup_id)
            .await?
            .ok_or(PlatformError::SignUpNotFound)
    }

    /// Activates the logged-in customer's card-link for the card they typed, after the bank's yes.
    pub async fn activate(
        &self,
        token: &str,
        card: &CardNumber,
    ) -> Result<CardLink, PlatformError> {
        let account = self.session_account(token).await?;
        if account.status != AccountStatus::Normal {
            return Err(PlatformError::AccountNotNormal(account.status));
        }
        let masked = card.masked();
        let link = self
            .store
            .links_for(&account.email)
            .await?
            .into_iter()
            .find(|l| l.card_masked == masked && l.status != LinkStatus::Cancelled)
            .ok_or(PlatformError::SignUpNotFound)?;
        if link.status == LinkStatus::Active {
            return Ok(link);
        }
        let span = tracing::info_span!("bank.confirm_activation", signup_id = %link.signup_id);
        let grant = self
            .bank
            .confirm_activation(&link.signup_id, card, &account.email)
            .instrument(span)
            .await
            .map_err(|f| relay(f, "try activating again"))?;
        if !self
            .store
            .activate_link(
                &link.signup_id,
                grant.limit,
                &grant.mobile_masked,
                self.clock.now_ms(),
            )
            .await?
        {
            return Err(PlatformError::SignUpNotNormal);
        }
        tracing::info!(signup_id = %link.signup_id, "card-link activated");
        self.store
            .link(&link.signup_id)
            .await?
            .ok_or(PlatformError::SignUpNotFound)
    }

    /// The account's active card-link: every card-link function (pay, balance, limit) starts
    /// here, so none works before activation.
    pub async fn require_active_link(&self, email: &Email) -> Result<CardLink, PlatformError> {
        let links = self.store.links_for(email).await?;
        if let Some(active) = links.iter().find(|l| l.status == LinkStatus::Active) {
            return Ok(active.clone());
        }
        if links.iter().any(|l| l.status == LinkStatus::Signed) {
            return Err(PlatformError::LinkNotActivated);
        }
        Err(PlatformError::SignUpNotFound)
    }
}
