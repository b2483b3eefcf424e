//! Paying with the card-link: start (payment password, the bank's one-time code), confirm (the
//! bank's debit), the unknown outcome and its resolution by the bank's status query; and the
//! balance and remaining-limit views.

use std::time::Duration;

use shared::domain::{Description, Email, OrderNo, OtpCode, PayAmount, PayPassword, SignUpId};
use shared::node::Node;
use shared::seed::{PaidOrderSeed, SeedError};
use shared::{BankReason, PeerFailure, PeerRefusal};
use tracing::Instrument;

use super::{
    AccountStatus, BalanceView, BankPayment, CardLink, LimitView, LinkStatus, Order, OrderStatus,
    PayOrder, Platform, PlatformError, relay,
};
use crate::store::PayPasswordState;

/// Status queries the platform makes for an UNKNOWN order before leaving it to reconciliation.
pub const RESOLVE_TRIES_MAX: u32 = 6;
/// The first wait before a status query, milliseconds of real time; it doubles each time.
pub const RESOLVE_BACKOFF_MS_FIRST: u64 = 100;
/// Wrong payment passwords in a row that lock payment.
pub const PAY_PASSWORD_WRONG_LIMIT: i64 = 5;
/// How long payment stays locked, milliseconds of business time (30 minutes).
pub const PAY_LOCK_MS: i64 = 30 * 60 * 1000;

impl Platform {
    /// Writes the platform's side of a seed of paid orders (`SimulatorService.SeedPaidOrders`):
    /// the card-link must be activated.
    pub async fn seed_paid_orders(&self, seed: &PaidOrderSeed) -> Result<(), SeedError> {
        let id = &seed.signup_id;
        let link = self
            .store
            .link(id)
            .await?
            .ok_or_else(|| SeedError::SignUpNotFound(id.to_string()))?;
        match link.status {
            super::LinkStatus::Active => {}
            super::LinkStatus::Signed => return Err(SeedError::NotActivated(id.to_string())),
            super::LinkStatus::Cancelled => return Err(SeedError::NotSigned(id.to_string())),
        }
        let outcome = self
            .store
            .seed_orders(seed, &link, self.clock.now_ms())
            .await?;
        self.store.analyze(&["orders"]).await?;
        outcome.answer(seed)
    }

    /// Counts an order settled by this process (`ibsim_payments_total`).
    fn count_settled(&self, status: &str, reason: &str) {
        self.metrics().inc(
            "ibsim_payments_total",
            &[("status", status), ("reason", reason)],
        );
    }
}

/// Bank refusals that do not settle an order: the code still works, or nothing was done.
fn is_retryable(r: &PeerRefusal) -> bool {
    r.is(BankReason::OtpWrong) || r.is(BankReason::SystemBusy)
}

/// A bank refusal that says the payment was settled by another request (paid or failed): the
/// order is settled by the bank's record, never failed on the strength of this refusal.
fn settled_elsewhere(r: &PeerRefusal) -> bool {
    r.is(BankReason::PaymentAlreadySettled)
}

impl Platform {
    /// The session's account, which must be NORMAL, and the state of its payment password.
    async fn normal_account(
        &self,
        token: &str,
    ) -> Result<(super::Account, PayPasswordState), PlatformError> {
        let (account, pay) = self.session_paying(token).await?;
        if account.status != AccountStatus::Normal {
            return Err(PlatformError::AccountNotNormal(account.status));
        }
        Ok((account, pay))
    }

    /// Checks the payment password (argon2 the first time, then the in-memory cache).
    /// `PAY_PASSWORD_WRONG_LIMIT` wrong ones in a row lock payment for `PAY_LOCK_MS` of business
    /// time; while locked, even the right one is refused.
    async fn check_pay_password(
        &self,
        email: &Email,
        stored: PayPasswordState,
        password: &PayPassword,
    ) -> Result<(), PlatformError> {
        let PayPasswordState {
            hash,
            wrong_so_far,
            locked_until_ms,
        } = stored;
        let now = self.clock.now_ms();
        if locked_until_ms > now {
            return Err(PlatformError::PayLocked {
                until: shared::clock::from_ms(locked_until_ms),
            });
        }
        let right = self
            .pay_passwords
            .verify(email.as_str(), hash, password.expose().to_owned())
            .await?;
        if right {
            // Only after wrong tries: a right password alone writes nothing on the pay path.
            if wrong_so_far > 0 {
                self.store.pay_password_right(email).await?;
            }
            return Ok(());
        }
        let (wrong, until_ms) = self
            .store
            .pay_password_wrong(
                email,
                PAY_PASSWORD_WRONG_LIMIT,
                now.saturating_add(PAY_LOCK_MS),
            )
            .await?;
        let locked = until_ms > now;
        tracing::warn!(account = %email.as_str(), wrong, locked, "wrong payment password");
        Err(PlatformError::PayPasswordWrong {
            tries_left: if locked {
                0
            } else {
                u32::try_from(PAY_PASSWORD_WRONG_LIMIT - wrong).unwrap_or(0)
            },
        })
    }

    /// The account's ACTIVE card-link: the one named, or the newest active one.
    async fn active_link(
        &self,
        email: &Email,
        signup_id: Option<&SignUpId>,
    ) -> Result<CardLink, PlatformError> {
        let Some(id) = signup_id else {
            return self.require_active_link(email).await;
        };
        let link = self
            .store
            .link(id)
            .await?
            .filter(|l| &l.email == email)
            .ok_or(PlatformError::SignUpNotFound)?;
        match link.status {
            LinkStatus::Active => Ok(link),
            LinkStatus::Signed => Err(PlatformError::LinkNotActivated),
            LinkStatus::Cancelled => Err(PlatformError::SignUpNotNormal),
        }
    }

    /// Starts a payment: session, payment password, card-link, the order, the bank's code.
    pub async fn start_payment(
        &self,
        token: &str,
        order_no: OrderNo,
        amount: PayAmount,
        password: &PayPassword,
        signup_id: Option<&SignUpId>,
        description: &Description,
    ) -> Result<Order, PlatformError> {
        let (account, pay) = self.normal_account(token).await?;
        self.check_pay_password(&account.email, pay, password)
            .await?;
        let wanted = Wanted {
            email: &account.email,
            order_no,
            amount,
            signup_id,
        };
        let order = self.order_for(&wanted, description).await?;
        match order.status {
            OrderStatus::Created => self.request_code(&order).await,
            OrderStatus::Failed => Err(failure_of(&order)),
            OrderStatus::Unknown => Err(PlatformError::PaymentOutcomeUnknown(
                "an earlier confirmation got no answer".into(),
            )),
            OrderStatus::AwaitingCode | OrderStatus::Success => Ok(order),
        }
    }

    /// The order `wanted` names: the one made before (a repeat), or a new one on the account's
    /// active card-link. A number taken by another payment is ORDER_NO_REUSED. A repeat is
    /// answered by its order whatever the card-link says now. A new order number (the usual
    /// case) is not looked up first: the insert finds a taken one, and a refusal looks for one
    /// before it is given.
    async fn order_for(
        &self,
        wanted: &Wanted<'_>,
        description: &Description,
    ) -> Result<Order, PlatformError> {
        let refusal = match self.active_link(wanted.email, wanted.signup_id).await {
            Ok(link) => {
                let order = new_order(wanted, &link, description, self.clock.now_ms());
                if self.store.insert_order(&order).await? {
                    return Ok(order);
                }
                None
            }
            Err(PlatformError::Internal(e)) => return Err(PlatformError::Internal(e)),
            Err(refusal) => Some(refusal),
        };
        match (self.store.order(&wanted.order_no).await?, refusal) {
            (Some(earlier), _) if wanted.is(&earlier) => Ok(earlier),
            (Some(_), _) => Err(PlatformError::OrderNoReused),
            (None, Some(refusal)) => Err(refusal),
            (None, None) => Err(anyhow::anyhow!("order conflict without a row").into()),
        }
    }

    /// Asks the bank to send the one-time code for the CREATED `order`; a refusal that settles
    /// the outcome fails the order, one that says the bank settled it already settles it.
    async fn request_code(&self, order: &Order) -> Result<Order, PlatformError> {
        let span = tracing::info_span!("bank.request_payment_code", order_no = %order.order_no);
        let answer = self
            .bank
            .request_payment_code(&PayOrder::from(order))
            .instrument(span)
            .await;
        let now = self.clock.now_ms();
        match answer {
            Ok(c) => {
                let marked = self
                    .store
                    .mark_code_sent(&order.order_no, &c.mobile_masked, c.expires_at_ms, now)
                    .await?;
                tracing::info!(order_no = %order.order_no, "one-time code requested");
                if let Some(marked) = marked {
                    return Ok(marked);
                }
            }
            Err(PeerFailure::Refused(r)) if settled_elsewhere(&r) => {
                return self.settle_by_bank(order).await;
            }
            Err(PeerFailure::Refused(r)) if !is_retryable(&r) => {
                if self.store.fail_order(&order.order_no, &r, now).await? {
                    self.count_settled("FAILED", &r.reason);
                }
                tracing::info!(order_no = %order.order_no, reason = %r.reason, "order failed");
                return Err(PlatformError::Relayed(r));
            }
            Err(f) => {
                return Err(relay(
                    f,
                    "no code was sent, or it is unknown whether one was: start again with the same order number",
                ));
            }
        }
        self.order_of(&order.order_no).await
    }

    /// Confirms a payment with the one-time code.
    pub async fn confirm_payment(
        &self,
        token: &str,
        order_no: &OrderNo,
        code: &OtpCode,
    ) -> Result<Order, PlatformError> {
        let order = self.my_order(token, order_no).await?;
        match order.status {
            OrderStatus::Success => return Ok(order),
            OrderStatus::Failed => return Err(failure_of(&order)),
            OrderStatus::Created => return Err(PlatformError::OrderNotAwaitingCode),
            OrderStatus::AwaitingCode | OrderStatus::Unknown => {}
        }
        let span = tracing::info_span!("bank.pay", order_no = %order.order_no);
        let answer = self
            .bank
            .pay(&PayOrder::from(&order), code)
            .instrument(span)
            .await;
        let now = self.clock.now_ms();
        match answer {
            Ok((serial, date)) => {
                let settled = self
                    .store
                    .succeed_order(&order.order_no, &serial, date, now)
                    .await?;
                tracing::info!(order_no = %order.order_no, serial, "order paid");
                if let Some(settled) = settled {
                    self.count_settled("SUCCESS", "");
                    return Ok(settled);
                }
            }
            Err(PeerFailure::Refused(r)) if is_retryable(&r) => {
                return Err(PlatformError::Relayed(r));
            }
            Err(PeerFailure::Refused(r)) if settled_elsewhere(&r) => {
                return self.settle_by_bank(&order).await;
            }
            Err(PeerFailure::Refused(r)) => {
                if self.store.fail_order(&order.order_no, &r, now).await? {
                    self.count_settled("FAILED", &r.reason);
                }
                tracing::info!(order_no = %order.order_no, reason = %r.reason, "order failed");
            }
            Err(PeerFailure::NoAnswer(detail)) => {
                self.store.mark_unknown(&order.order_no, now).await?;
                tracing::warn!(order_no = %order.order_no, %detail, "no answer to a debit: order UNKNOWN");
                self.spawn_resolver(order.order_no.clone());
                return Err(PlatformError::PaymentOutcomeUnknown(detail));
            }
        }
        let settled = self.order_of(&order.order_no).await?;
        match settled.status {
            OrderStatus::Failed => Err(failure_of(&settled)),
            _ => Ok(settled),
        }
    }

    /// An order of the logged-in customer: the session and the order in one read.
    pub async fn my_order(&self, token: &str, order_no: &OrderNo) -> Result<Order, PlatformError> {
        let (account, order) = self
            .store
            .session_and_order(&super::token_hash(token), self.clock.now_ms(), order_no)
            .await?
            .ok_or(PlatformError::SessionInvalid)?;
        order
            .filter(|o| o.email == account.email)
            .ok_or(PlatformError::OrderNotFound)
    }

    /// Any order.
    pub async fn order_of(&self, order_no: &OrderNo) -> Result<Order, PlatformError> {
        self.store
            .order(order_no)
            .await?
            .ok_or(PlatformError::OrderNotFound)
    }

    /// Asks the bank for an UNKNOWN order's status and settles it by the answer; any other order
    /// is answered as it is.
    pub async fn resolve(&self, order_no: &OrderNo) -> Result<Order, PlatformError> {
        let order = self.order_of(order_no).await?;
        if order.status != OrderStatus::Unknown {
            return Ok(order);
        }
        self.settle_from_bank(&order).await?;
        self.order_of(order_no).await
    }

    /// The bank said another request settled the order: settles it by the bank's record and
    /// answers as that record does (the order, or its refusal).
    async fn settle_by_bank(&self, order: &Order) -> Result<Order, PlatformError> {
        self.settle_from_bank(order).await?;
        let settled = self.order_of(&order.order_no).await?;
        match settled.status {
            OrderStatus::Failed => Err(failure_of(&settled)),
            _ => Ok(settled),
        }
    }

    /// Asks the bank for the order's payment and settles the order by the answer (only from an
    /// unsettled status); a payment the bank has not debited yet leaves it as it is.
    async fn settle_from_bank(&self, order: &Order) -> Result<(), PlatformError> {
        let order_no = &order.order_no;
        let span = tracing::info_span!("bank.get_payment", order_no = %order_no);
        let answer = self
            .bank
            .get_payment(&PayOrder::from(order))
            .instrument(span)
            .await
            .map_err(|f| relay(f, "the order's outcome is not known yet; ask again later"))?;
        let now = self.clock.now_ms();
        match answer {
            BankPayment::Success { serial, date } => {
                if self
                    .store
                    .succeed_order(order_no, &serial, date, now)
                    .await?
                    .is_some()
                {
                    self.count_settled("SUCCESS", "");
                }
                tracing::info!(order_no = %order_no, serial, "order settled by the bank's record: paid");
            }
            BankPayment::Failed(r) => {
                if self.store.fail_order(order_no, &r, now).await? {
                    self.count_settled("FAILED", &r.reason);
                }
                tracing::info!(order_no = %order_no, reason = %r.reason, "order settled by the bank's record: failed");
            }
            BankPayment::CodeSent => {
                tracing::info!(order_no = %order_no, "bank has no debit yet: order stays as it is");
            }
        }
        Ok(())
    }

    /// Resolves an UNKNOWN order in the background: status queries with doubling waits, at
    /// most [`RESOLVE_TRIES_MAX`]; what is still unknown then is left to reconciliation.
    fn spawn_resolver(&self, order_no: OrderNo) {
        let platform = self.clone();
        let span = tracing::info_span!("resolve_unknown", order_no = %order_no);
        tokio::spawn(shared::trace::inherit(
            async move {
                let mut wait = RESOLVE_BACKOFF_MS_FIRST;
                for _ in 0..RESOLVE_TRIES_MAX {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    wait = wait.saturating_mul(2);
                    match platform.resolve(&order_no).await {
                        Ok(o) if o.status != OrderStatus::Unknown => return,
                        Ok(_) => {}
                        Err(e) => tracing::info!(error = %e, "status query failed"),
                    }
                }
                tracing::warn!("order still UNKNOWN after {RESOLVE_TRIES_MAX} status queries; left for reconciliation");
            }
            .instrument(span),
        ));
    }

    /// The card's balance, after the payment password; the bank checks its sign-up too.
    pub async fn balance(
        &self,
        token: &str,
        password: &PayPassword,
        signup_id: Option<&SignUpId>,
    ) -> Result<BalanceView, PlatformError> {
        let (account, pay) = self.normal_account(token).await?;
        self.check_pay_password(&account.email, pay, password)
            .await?;
        let link = self.active_link(&account.email, signup_id).await?;
        self.bank
            .balance(&link)
            .instrument(tracing::info_span!("bank.get_balance", signup_id = %link.signup_id))
            .await
            .map_err(|f| relay(f, "try again"))
    }

    /// What is left of today's limit; the bank checks its sign-up too.
    pub async fn remaining_limit(
        &self,
        token: &str,
        signup_id: Option<&SignUpId>,
    ) -> Result<LimitView, PlatformError> {
        let (account, _) = self.normal_account(token).await?;
        let link = self.active_link(&account.email, signup_id).await?;
        self.bank
            .remaining_limit(&link)
            .instrument(
                tracing::info_span!("bank.get_remaining_limit", signup_id = %link.signup_id),
            )
            .await
            .map_err(|f| relay(f, "try again"))
    }
}

/// A failed order's refusal, as first answered.
fn failure_of(o: &Order) -> PlatformError {
    PlatformError::Relayed(o.failure.clone().unwrap_or_else(|| PeerRefusal {
        class: shared::ErrorClass::Internal,
        reason: "INTERNAL".to_owned(),
        message: "the payment failed".to_owned(),
        domain: super::DOMAIN.to_owned(),
    }))
}

/// The payment a StartPayment asks for: whose, which number, how much, on which card-link.
struct Wanted<'a> {
    email: &'a Email,
    order_no: OrderNo,
    amount: PayAmount,
    signup_id: Option<&'a SignUpId>,
}

impl Wanted<'_> {
    /// Whether the order `o` is this payment (a repeat): same account and amount, and the
    /// card-link asked for, if one was.
    fn is(&self, o: &Order) -> bool {
        &o.email == self.email
            && o.amount == self.amount
            && self.signup_id.is_none_or(|s| s == &o.signup_id)
    }
}

/// The CREATED order of the payment `wanted`, on the card-link `link`, at `now_ms`.
fn new_order(
    wanted: &Wanted<'_>,
    link: &CardLink,
    description: &Description,
    now_ms: i64,
) -> Order {
    Order {
        order_no: wanted.order_no.clone(),
        email: wanted.email.clone(),
        signup_id: link.signup_id.clone(),
        card_masked: link.card_masked.clone(),
        amount: wanted.amount,
        description: description.as_str().to_owned(),
        status: OrderStatus::Created,
        mobile_masked: None,
        code_expires_at_ms: None,
        serial: None,
        business_date: None,
        failure: None,
        created_at_ms: now_ms,
        updated_at_ms: now_ms,
        refunded: shared::Money::ZERO,
    }
}
