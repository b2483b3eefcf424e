//! The bank's business rules: card accounts at the branch and the card-link sign-up lifecycle.
//! Functions here take and return domain values; storage is behind `crate::store`, the platform
//! behind [`PlatformPort`] (implemented over gRPC in `crate::grpc`).

mod error;
mod model;
mod payment;
mod recon;
mod refund;
mod signup;

pub use payment::*;
pub use recon::*;
pub use refund::*;
pub use signup::{InsertOutcome, PLATFORM_UNAVAILABLE};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use error::BankError;
pub use model::*;
use shared::clock::Clock;
use shared::domain::{CardNumber, Email, IdType, PersonName, SignUpId};
use shared::fault::Faults;
use shared::files::FileStore;
use shared::metrics::Metrics;
use shared::node::Node;
use shared::records::View;
use shared::security::Institution;
use shared::store::NodeDb;
use shared::{Money, PeerFailure};

use crate::store::Store;

/// The ErrorInfo domain of refusals the bank makes.
pub const DOMAIN: &str = "bank.interbank-sim";

/// A boxed future, for the object-safe [`PlatformPort`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the bank asks the platform.
pub trait PlatformPort: Send + Sync {
    /// Asks the platform to confirm and record a sign-up.
    fn confirm_sign_up<'a>(
        &'a self,
        req: &'a PlatformSignUp,
    ) -> BoxFuture<'a, Result<(), PeerFailure>>;
    /// Asks the platform to cancel a sign-up.
    fn confirm_cancel<'a>(
        &'a self,
        signup_id: &'a SignUpId,
        account: &'a Email,
        business_date: chrono::NaiveDate,
    ) -> BoxFuture<'a, Result<(), PeerFailure>>;
}

/// The sign-up as the platform is told about it.
#[derive(Debug, Clone)]
pub struct PlatformSignUp {
    /// The bank's sign-up id.
    pub signup_id: SignUpId,
    /// The platform account.
    pub account: Email,
    /// The real name given at the branch.
    pub real_name: PersonName,
    /// The ID type given at the branch.
    pub id_type: IdType,
    /// The card, masked.
    pub card_masked: String,
    /// The sign-up's business date, fixed when the bank began it.
    pub business_date: chrono::NaiveDate,
}

/// The bank: its store, its clock and its line to the platform.
#[derive(Clone)]
pub struct Bank {
    pub(crate) store: Store,
    pub(crate) clock: Clock,
    pub(crate) platform: Arc<dyn PlatformPort>,
    pub(crate) faults: Faults,
    pub(crate) files: FileStore,
    pub(crate) refund_settings: Arc<RefundJobSettings>,
    /// The node secret of the one-time codes' digests.
    pub(crate) otp_keys: Arc<shared::keyring::KeyRing>,
    refund_job: Arc<tokio::sync::Mutex<()>>,
    /// One day file built at a time in this process.
    day_files: Arc<tokio::sync::Mutex<()>>,
    metrics: Metrics,
}

/// The bank's parts; what is built on them is one mechanism for both nodes (`shared::node`).
impl Node for Bank {
    const INSTITUTION: Institution = Institution::Bank;
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

/// Tries to issue a fresh card number before giving up (collisions are astronomically rare).
const CARD_ISSUE_TRIES_MAX: usize = 8;

impl Bank {
    /// A bank over `store`, telling time by `clock`, calling the platform through `platform`,
    /// with `faults` injected on both sides of its interbank calls, keeping files in `files`, keying
    /// the one-time codes' digests with `otp_keys`.
    pub fn new(
        store: Store,
        clock: Clock,
        platform: Arc<dyn PlatformPort>,
        faults: Faults,
        files: FileStore,
        refund_settings: RefundJobSettings,
        otp_keys: shared::keyring::KeyRing,
    ) -> Bank {
        let metrics = shared::metrics::Metrics::new("bank");
        metrics.count_database(store.pools.counts.clone());
        Bank {
            store,
            clock,
            platform,
            faults,
            files,
            refund_settings: Arc::new(refund_settings),
            otp_keys: Arc::new(otp_keys),
            refund_job: Arc::default(),
            day_files: Arc::default(),
            metrics,
        }
    }

    /// The most recent business day closed by a cutover.
    pub async fn last_closed_day(&self) -> Result<Option<chrono::NaiveDate>, BankError> {
        Ok(self.store.last_closed_day().await?)
    }

    /// The closed business days from `from` to the day before `to`, oldest first.
    pub async fn closed_days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<chrono::NaiveDate>, BankError> {
        Ok(self.store.closed_days(from, to).await?)
    }

    /// Wipes every record (a simulator reset).
    pub async fn wipe(&self) -> Result<(), BankError> {
        self.store.wipe().await?;
        tracing::warn!("bank reset: every record wiped");
        Ok(())
    }

    /// Puts the clock where this bank kept it (a restart), then makes sure it is not on a day
    /// the bank has closed already (see [`Bank::leave_closed_days`]).
    pub async fn restore_clock(&self) -> Result<(), BankError> {
        self.restore_kept_clock().await?;
        self.leave_closed_days().await
    }

    /// A bank never works on a business day it has closed: when the clock's date is not after the
    /// last closed date (a clock behind another process's cutover, or data kept from a later
    /// run), the clock moves forward to the start of the next open day, and is kept there.
    pub async fn leave_closed_days(&self) -> Result<(), BankError> {
        let Some(closed) = self.store.last_closed_day().await? else {
            return Ok(());
        };
        if self.clock.business_date() > closed {
            return Ok(());
        }
        let next = shared::clock::start_of(closed + chrono::Duration::days(1));
        // Forward only; a concurrent move past `next` wins.
        if self.clock.set(next).is_ok() {
            tracing::warn!(
                last_closed = %closed,
                now = %next,
                "the business clock was on a closed day: moved to the next open day"
            );
            self.keep_clock().await?;
        }
        Ok(())
    }

    /// Opens a card account.
    pub async fn open_card(&self, form: OpenCardForm) -> Result<Card, BankError> {
        let hash = shared::secret::hash(form.password.expose().to_owned()).await?;
        let now = self.clock.now_ms();
        let mut tries = 0;
        loop {
            tries += 1;
            let number = match &form.number {
                Some(n) => n.clone(),
                None => CardNumber::issue(rand::random::<u64>()),
            };
            let card = Card {
                number,
                kind: form.kind,
                holder_name: form.holder_name.clone(),
                id: form.id.clone(),
                balance: form.opening_deposit,
                status: CardStatus::Normal,
                wrong_password_tries: 0,
                opened_at_ms: now,
            };
            match self.store.insert_card(&card, &hash).await? {
                true => return Ok(card),
                false if form.number.is_some() => return Err(BankError::CardNumberTaken),
                false if tries >= CARD_ISSUE_TRIES_MAX => {
                    return Err(anyhow::anyhow!("could not issue a free card number").into());
                }
                false => continue,
            }
        }
    }

    /// The card, or CARD_NOT_FOUND.
    pub async fn card(&self, number: &CardNumber) -> Result<Card, BankError> {
        self.store
            .card(number)
            .await?
            .ok_or(BankError::CardNotFound)
    }

    /// Puts cash on a card.
    pub async fn deposit(&self, number: &CardNumber, amount: Money) -> Result<Card, BankError> {
        let card = self.card(number).await?;
        if matches!(card.status, CardStatus::Frozen | CardStatus::Closed) {
            return Err(BankError::CardNotNormal(card.status));
        }
        if card.balance.checked_add(amount).is_none() {
            return Err(BankError::BalanceTooLarge);
        }
        self.store
            .add_balance(number, amount.fen(), self.clock.now_ms())
            .await?;
        self.card(number).await
    }

    /// Unlocks a card locked by wrong passwords.
    pub async fn unlock_card(&self, number: &CardNumber) -> Result<Card, BankError> {
        let card = self.card(number).await?;
        if card.status != CardStatus::Locked {
            return Err(BankError::CardNotLocked(card.status));
        }
        self.store
            .set_card_status(number, CardStatus::Normal, true, self.clock.now_ms())
            .await?;
        self.card(number).await
    }

    /// Freezes, unfreezes or closes a card.
    pub async fn set_card_status(
        &self,
        number: &CardNumber,
        status: CardStatus,
    ) -> Result<Card, BankError> {
        let card = self.card(number).await?;
        if card.status == CardStatus::Closed {
            return Err(BankError::CardClosed);
        }
        self.store
            .set_card_status(number, status, false, self.clock.now_ms())
            .await?;
        self.card(number).await
    }
}
