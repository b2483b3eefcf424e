//! Card-link payments at the bank: the one-time code, the debit, the status query, and the
//! balance and remaining-limit answers; the day-end cutover; the SMS gateway stand-in.

use chrono::{Duration, NaiveDate};
use sha2::{Digest, Sha256};
use shared::domain::{Email, OrderNo, OtpCode, PayAmount, SignUpId};
use shared::keyring::KeyRing;
use shared::node::Node;
use shared::seed::{PaidOrderSeed, SeedError};
use shared::{Money, PeerRefusal, Refusal};
use subtle::ConstantTimeEq;

use super::{Bank, BankError, Card, CardStatus, DOMAIN, SignUp, SignUpStatus};

/// How long a one-time code works, seconds of business time.
pub const OTP_TTL_SECS: i64 = 5 * 60;
/// Wrong codes that kill a code (and fail its payment).
pub const OTP_TRIES_MAX: u32 = 3;
/// Magic amount: the bank answers RESOURCE_EXHAUSTED / SYSTEM_BUSY and does nothing (0.91 yuan).
pub const MAGIC_SYSTEM_BUSY_FEN: i64 = 91;
/// Magic amount: the bank debits, then its reply is lost (UNAVAILABLE / REPLY_LOST) (0.92 yuan).
pub const MAGIC_REPLY_LOST_FEN: i64 = 92;
/// Times a debit is tried again when the cutover closed its day under it.
const DEBIT_DAY_RETRIES_MAX: usize = 3;
/// Messages one outbox listing returns at most.
pub const SMS_LIST_MAX: u32 = 500;

shared::domain::coded_enum!(
    /// Where a payment stands at the bank.
    PaymentStatus {
        /// The code was sent; nothing debited.
        CodeSent = "CODE_SENT",
        /// Debited.
        Success = "SUCCESS",
        /// Refused; nothing debited.
        Failed = "FAILED",
    }
);

/// What the platform sends for a payment: who pays how much with which card-link, for which order.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    /// The order number: the idempotency key.
    pub order_no: OrderNo,
    /// The sign-up paid with.
    pub signup_id: SignUpId,
    /// The paying platform account.
    pub account: Email,
    /// The amount.
    pub amount: PayAmount,
}

impl PaymentRequest {
    /// "The same content" of an order number: sign-up, account and amount.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for f in [
            self.signup_id.as_str(),
            self.account.as_str(),
            &self.amount.fen().to_string(),
        ] {
            h.update(f.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(h.finalize())
    }
}

/// A payment as the bank keeps it.
#[derive(Debug, Clone)]
pub struct Payment {
    /// The order number.
    pub order_no: OrderNo,
    /// See [`PaymentRequest::fingerprint`].
    pub fingerprint: String,
    /// The sign-up paid with.
    pub signup_id: SignUpId,
    /// The card.
    pub card: shared::domain::CardNumber,
    /// The paying account.
    pub account: Email,
    /// The amount.
    pub amount: PayAmount,
    /// Where it stands.
    pub status: PaymentStatus,
    /// sha256 of the order number and the code.
    pub otp_hash: String,
    /// When the code stops working, ms.
    pub otp_expires_at_ms: i64,
    /// Wrong codes so far.
    pub otp_wrong_tries: u32,
    /// For SUCCESS: the serial number.
    pub serial: Option<String>,
    /// For SUCCESS: the business date.
    pub business_date: Option<NaiveDate>,
    /// For SUCCESS: when debited, ms.
    pub paid_at_ms: Option<i64>,
    /// For FAILED: the refusal.
    pub failure: Option<PeerRefusal>,
    /// When the code was requested, ms.
    pub created_at_ms: i64,
    /// For SUCCESS: how much batch refunds have credited back.
    pub refunded: Money,
}

/// The answer to a code request.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// The order number.
    pub order_no: OrderNo,
    /// The mobile the code went to, masked.
    pub mobile_masked: String,
    /// When the code stops working, ms.
    pub expires_at_ms: i64,
}

/// A message in the SMS gateway stand-in's outbox.
#[derive(Debug, Clone)]
pub struct Sms {
    /// Its id.
    pub id: String,
    /// The mobile.
    pub mobile: String,
    /// The text.
    pub body: String,
    /// For a code: the order.
    pub order_no: Option<String>,
    /// For a code: the code.
    pub otp_code: Option<String>,
    /// When sent, ms.
    pub sent_at_ms: i64,
}

/// What a debit attempt ran into (see `Store::debit`).
#[derive(Debug, Clone)]
pub enum DebitOutcome {
    /// Debited and settled SUCCESS: the payment as settled.
    Debited(Box<Payment>),
    /// The business day closed under it: take the new date and try again.
    DayClosed,
    /// Over the limit of its date, or the sign-up is no longer SIGNED; or that date closed under
    /// it (the store checks the usage before it takes the day's row).
    OverLimitOrNotSigned,
    /// The card is not NORMAL or its balance is short.
    CardRefused,
    /// The payment was settled by a concurrent request.
    AlreadySettled,
}

/// The balance as the customer sees it.
#[derive(Debug, Clone)]
pub struct BalanceView {
    /// The card, masked.
    pub card_masked: String,
    /// Available balance.
    pub balance: Money,
    /// The card's status.
    pub status: CardStatus,
}

/// Today's limit as the customer sees it.
#[derive(Debug, Clone)]
pub struct LimitView {
    /// The business date.
    pub date: NaiveDate,
    /// The daily limit.
    pub limit: Money,
    /// Paid today.
    pub used: Money,
    /// Left today.
    pub remaining: Money,
    /// The one-time-code mobile kept with the sign-up, masked.
    pub mobile_masked: String,
}

impl LimitView {
    /// `s`'s limit on business date `date`, with `used` paid.
    fn of(s: &SignUp, date: NaiveDate, used: Money) -> LimitView {
        let limit = s.limit.money();
        LimitView {
            date,
            limit,
            used,
            remaining: limit.checked_sub(used).unwrap_or(Money::ZERO),
            mobile_masked: s.mobile.masked(),
        }
    }
}

/// The sign-up a platform call names, if it belongs to `account` and is SIGNED.
fn paying(s: Option<SignUp>, account: &Email) -> Result<SignUp, BankError> {
    let s = s
        .filter(|s| &s.account == account)
        .ok_or(BankError::SignUpNotFound(
            "no sign-up with that id for that platform account",
        ))?;
    if s.status != SignUpStatus::Signed {
        return Err(BankError::SignUpNotNormal(s.status));
    }
    Ok(s)
}

/// The digest a payment keeps of its one-time code: keyed with the node secret (HMAC), so that
/// the database alone does not give the code back.
fn otp_digest(keys: &KeyRing, order: &OrderNo, code: &OtpCode) -> String {
    keys.digest(&[order.as_str().as_bytes(), code.expose().as_bytes()])
}

/// Whether `code` is the one of order `order` whose digest is `kept`, compared in constant time.
/// A digest without a key id was kept by a version before the node secret (unkeyed SHA-256; a
/// code lives 5 minutes, so only a code pending across the upgrade has one).
fn code_matches(keys: &KeyRing, order: &OrderNo, kept: &str, code: &OtpCode) -> bool {
    let parts = [order.as_str().as_bytes(), code.expose().as_bytes()];
    if kept.contains(':') {
        return keys.verifies(kept, &parts);
    }
    let unkeyed = hex::encode(Sha256::digest(parts.join(&0x1f)));
    bool::from(unkeyed.as_bytes().ct_eq(kept.as_bytes()))
}

impl Bank {
    /// Writes the bank's side of a seed of paid orders (`SimulatorService.SeedPaidOrders`): the
    /// sign-up must be SIGNED.
    pub async fn seed_paid_orders(&self, seed: &PaidOrderSeed) -> Result<(), SeedError> {
        let id = &seed.signup_id;
        let s = self
            .store
            .signup(id)
            .await?
            .ok_or_else(|| SeedError::SignUpNotFound(id.to_string()))?;
        if s.status != SignUpStatus::Signed {
            return Err(SeedError::NotSigned(id.to_string()));
        }
        let outcome = self
            .store
            .seed_payments(seed, &s, self.clock.now_ms())
            .await?;
        self.store.analyze(&["payments"]).await?;
        outcome.answer(seed)
    }

    /// The sign-up a platform call names: it exists, belongs to the account, and is SIGNED.
    async fn paying_signup(
        &self,
        signup_id: &SignUpId,
        account: &Email,
    ) -> Result<SignUp, BankError> {
        paying(self.store.signup(signup_id).await?, account)
    }

    fn usable(card: &Card) -> Result<(), BankError> {
        match card.status {
            CardStatus::Normal => Ok(()),
            other => Err(BankError::CardNotNormal(other)),
        }
    }

    /// What is left of the card's limit today, on the open day: a clock behind another
    /// process's cutover first moves to it, as a payment's would (one read).
    async fn limit_view(&self, s: &SignUp) -> Result<LimitView, BankError> {
        self.leave_closed_days().await?;
        let date = self.clock.business_date();
        let used = self.store.used_on(&s.card, date).await?;
        Ok(LimitView::of(s, date, used))
    }

    /// Step 1: checks the sign-up, card, limit and balance, records the payment and sends the
    /// one-time code. Idempotent by order number: a repeat is answered by what its order number
    /// did the first time, whatever the checks would say of a new payment now. A new order
    /// number (the usual case) is not looked up first: the write finds a taken one, and a
    /// refusal looks for one before it is given.
    pub async fn request_payment_code(&self, req: PaymentRequest) -> Result<Challenge, BankError> {
        let fingerprint = req.fingerprint();
        let refusal = match self.new_code_request(&req, &fingerprint).await {
            Ok(Some(challenge)) => return Ok(challenge),
            Ok(None) => None,
            Err(BankError::Internal(e)) => return Err(BankError::Internal(e)),
            Err(refusal) => Some(refusal),
        };
        match (self.store.payment(&req.order_no).await?, refusal) {
            (Some(p), _) => self.repeat_code_request(p, &fingerprint).await,
            (None, Some(refusal)) => Err(refusal),
            (None, None) => Err(anyhow::anyhow!("order number conflict without a row").into()),
        }
    }

    /// A code request checked and recorded as a new payment, its code sent; `None`: the order
    /// number is taken.
    async fn new_code_request(
        &self,
        req: &PaymentRequest,
        fingerprint: &str,
    ) -> Result<Option<Challenge>, BankError> {
        if req.amount.fen() == MAGIC_SYSTEM_BUSY_FEN {
            return Err(BankError::SystemBusy);
        }
        let date = self.clock.business_date();
        let s = match self.payer_checked(req, date).await {
            // Over the limit of a date another process has closed (this one's clock is behind
            // its cutover): the open day's usage decides.
            Err(BankError::DailyLimitExceeded { .. }) if self.day_closed(date).await? => {
                self.leave_closed_days().await?;
                self.payer_checked(req, self.clock.business_date()).await?
            }
            checked => checked?,
        };
        let now = self.clock.now_ms();
        let code = OtpCode::generate();
        let digest = otp_digest(&self.otp_keys, &req.order_no, &code);
        let payment = new_payment(req, &s, fingerprint, digest, now);
        let sms = code_sms(req, &s, &code, now);
        if !self.store.insert_payment_with_sms(&payment, &sms).await? {
            return Ok(None);
        }
        let order = req.order_no.as_str();
        tracing::info!(order_no = order, signup_id = %s.id, card = ?s.card, mobile = %s.mobile.masked(), "one-time code sent");
        if let Some(feed) = self.faults.feed() {
            feed.send(shared::feed::What::Sms {
                mobile_masked: s.mobile.masked(),
                order_no: order.to_owned(),
            });
        }
        Ok(Some(Challenge {
            order_no: req.order_no.clone(),
            mobile_masked: s.mobile.masked(),
            expires_at_ms: payment.otp_expires_at_ms,
        }))
    }

    /// The sign-up of a code request, checked: SIGNED and the account's, its card usable, with
    /// the balance and room under the limit of business date `date`.
    async fn payer_checked(
        &self,
        req: &PaymentRequest,
        date: NaiveDate,
    ) -> Result<SignUp, BankError> {
        let (s, card) = match self.store.signup_with_card(&req.signup_id, date).await? {
            Some((s, card)) => (Some(s), card),
            None => (None, None),
        };
        let s = paying(s, &req.account)?;
        let (card, used) = card.ok_or(BankError::CardNotFound)?;
        Self::usable(&card)?;
        let view = LimitView::of(&s, date, used);
        if req.amount.money() > view.remaining {
            return Err(BankError::DailyLimitExceeded {
                remaining: view.remaining,
            });
        }
        if req.amount.money() > card.balance {
            return Err(BankError::InsufficientBalance);
        }
        Ok(s)
    }

    async fn repeat_code_request(
        &self,
        p: Payment,
        fingerprint: &str,
    ) -> Result<Challenge, BankError> {
        if p.fingerprint != fingerprint {
            return Err(BankError::OrderNoReused);
        }
        if p.status != PaymentStatus::CodeSent {
            return Err(BankError::PaymentAlreadySettled(p.status));
        }
        if self.clock.now_ms() > p.otp_expires_at_ms {
            // Expired now, or paid by a confirmation that raced this request.
            let settled = self.settle_failed(&p, BankError::OtpExpired).await?;
            return Err(BankError::PaymentAlreadySettled(settled.status));
        }
        let s = self.signup(&p.signup_id).await?;
        Ok(Challenge {
            order_no: p.order_no,
            mobile_masked: s.mobile.masked(),
            expires_at_ms: p.otp_expires_at_ms,
        })
    }

    /// Step 2: checks the code, then debits in one transaction. A repeat of a settled order
    /// number answers the first result.
    pub async fn pay(&self, req: PaymentRequest, code: OtpCode) -> Result<Payment, BankError> {
        let p = self
            .store
            .payment(&req.order_no)
            .await?
            .ok_or(BankError::PaymentNotFound)?;
        if p.fingerprint != req.fingerprint() {
            return Err(BankError::OrderNoReused);
        }
        match p.status {
            PaymentStatus::Success => return Ok(p),
            PaymentStatus::Failed => return Err(replayed_failure(&p)),
            PaymentStatus::CodeSent => {}
        }
        if p.amount.fen() == MAGIC_SYSTEM_BUSY_FEN {
            return Err(BankError::SystemBusy);
        }
        let now = self.clock.now_ms();
        if now > p.otp_expires_at_ms {
            return self.settle_failed(&p, BankError::OtpExpired).await;
        }
        if !code_matches(&self.otp_keys, &p.order_no, &p.otp_hash, &code) {
            return self.wrong_code(&p, now).await;
        }
        self.debit(&p).await
    }

    /// A wrong code: counted; the third settles the payment FAILED.
    async fn wrong_code(&self, p: &Payment, now: i64) -> Result<Payment, BankError> {
        match self.store.count_wrong_otp(&p.order_no, now).await? {
            None => self.replay(&p.order_no).await,
            Some(n) if n >= OTP_TRIES_MAX => {
                self.settle_failed(p, BankError::OtpTriesExceeded).await
            }
            Some(n) => Err(BankError::OtpWrong {
                tries_left: OTP_TRIES_MAX - n,
            }),
        }
    }

    /// Debits the card in one transaction on today's business date (again on the next one if
    /// the day closes under it); a debit the store refuses settles the payment FAILED with why.
    async fn debit(&self, p: &Payment) -> Result<Payment, BankError> {
        for _ in 0..DEBIT_DAY_RETRIES_MAX {
            let date = self.clock.business_date();
            let outcome = match self.store.debit(p, date, self.clock.now_ms()).await? {
                // Over the limit of a date that has closed meanwhile is the day closing under
                // the debit, not the limit: the next date's usage decides.
                DebitOutcome::OverLimitOrNotSigned if self.day_closed(date).await? => {
                    DebitOutcome::DayClosed
                }
                outcome => outcome,
            };
            match outcome {
                DebitOutcome::Debited(paid) => {
                    tracing::info!(order_no = %p.order_no, card = ?p.card, amount = %p.amount, serial = paid.serial.as_deref().unwrap_or_default(), business_date = %date, "card debited");
                    self.metrics().inc(
                        "ibsim_payments_total",
                        &[("status", "SUCCESS"), ("reason", "")],
                    );
                    if p.amount.fen() == MAGIC_REPLY_LOST_FEN {
                        return Err(BankError::ReplyLost);
                    }
                    return Ok(*paid);
                }
                DebitOutcome::DayClosed => {
                    // The clock passed midnight, or another process closed the day first.
                    self.cutover().await?;
                    self.leave_closed_days().await?;
                    continue;
                }
                DebitOutcome::AlreadySettled => return self.replay(&p.order_no).await,
                DebitOutcome::OverLimitOrNotSigned => {
                    let why = match self.paying_signup(&p.signup_id, &p.account).await {
                        Err(e) => e,
                        Ok(s) => BankError::DailyLimitExceeded {
                            remaining: self.limit_view(&s).await?.remaining,
                        },
                    };
                    return self.settle_failed(p, why).await;
                }
                DebitOutcome::CardRefused => {
                    let card = self.card(&p.card).await?;
                    let why = match Self::usable(&card) {
                        Err(e) => e,
                        Ok(()) => BankError::InsufficientBalance,
                    };
                    return self.settle_failed(p, why).await;
                }
            }
        }
        // Nothing was debited: the platform may ask again (the clock is being moved under it).
        tracing::warn!(order_no = %p.order_no, "the business day kept closing under a debit");
        Err(BankError::SystemBusy)
    }

    /// Whether business date `date` is closed.
    async fn day_closed(&self, date: NaiveDate) -> Result<bool, BankError> {
        let status = self.store.day_status(date).await?;
        Ok(status == Some(super::DayStatus::Closed))
    }

    /// Settles a payment FAILED with `why` and returns `why`. If a concurrent request settled it
    /// first, answers what that one did: its debit, or its refusal (never `why`, which would
    /// tell a caller "refused" about a card that was debited).
    async fn settle_failed(&self, p: &Payment, why: BankError) -> Result<Payment, BankError> {
        let failure = PeerRefusal {
            class: why.class(),
            reason: why.reason().to_owned(),
            message: why.to_string(),
            domain: DOMAIN.to_owned(),
        };
        if self
            .store
            .fail_payment(&p.order_no, &failure, self.clock.now_ms())
            .await?
        {
            tracing::info!(order_no = %p.order_no, reason = %failure.reason, "payment failed");
            self.metrics().inc(
                "ibsim_payments_total",
                &[("status", "FAILED"), ("reason", &failure.reason)],
            );
            return Err(why);
        }
        self.replay(&p.order_no).await
    }

    /// The stored outcome of a settled payment: the payment, or its failure.
    async fn replay(&self, order: &OrderNo) -> Result<Payment, BankError> {
        let p = self
            .store
            .payment(order)
            .await?
            .ok_or(BankError::PaymentNotFound)?;
        match p.status {
            PaymentStatus::Failed => Err(replayed_failure(&p)),
            _ => Ok(p),
        }
    }

    /// A payment by order number, any status. A code that expired unused can never debit, so
    /// its payment is settled FAILED / OTP_EXPIRED when asked about.
    pub async fn payment(&self, order: &OrderNo) -> Result<Payment, BankError> {
        let p = self
            .store
            .payment(order)
            .await?
            .ok_or(BankError::PaymentNotFound)?;
        if p.status != PaymentStatus::CodeSent || self.clock.now_ms() <= p.otp_expires_at_ms {
            return Ok(p);
        }
        if let Err(BankError::Internal(e)) = self.settle_failed(&p, BankError::OtpExpired).await {
            return Err(BankError::Internal(e));
        }
        self.store
            .payment(order)
            .await?
            .ok_or(BankError::PaymentNotFound)
    }

    /// The card's balance and status, for the platform's balance view.
    pub async fn balance(
        &self,
        signup_id: &SignUpId,
        account: &Email,
    ) -> Result<BalanceView, BankError> {
        let s = self.paying_signup(signup_id, account).await?;
        let card = self.card(&s.card).await?;
        Ok(BalanceView {
            card_masked: card.number.masked(),
            balance: card.balance,
            status: card.status,
        })
    }

    /// What is left of today's limit, for the platform's limit view.
    pub async fn remaining_limit(
        &self,
        signup_id: &SignUpId,
        account: &Email,
    ) -> Result<LimitView, BankError> {
        let s = self.paying_signup(signup_id, account).await?;
        self.limit_view(&s).await
    }

    /// The day-end cutover: closes every business day before today (fixed from now on for the
    /// T+1 files); the dates closed now.
    pub async fn cutover(&self) -> Result<Vec<NaiveDate>, BankError> {
        let today = self.clock.business_date();
        let yesterday = today - Duration::days(1);
        let closed = self
            .store
            .close_days_before(today, yesterday, self.clock.now_ms())
            .await?;
        for d in &closed {
            tracing::info!(business_date = %d, "day-end cutover: business day closed");
        }
        Ok(closed)
    }

    /// The SMS outbox, newest first.
    pub async fn sms(&self, mobile: Option<&str>, limit: u32) -> Result<Vec<Sms>, BankError> {
        Ok(self.store.sms(mobile, limit.clamp(1, SMS_LIST_MAX)).await?)
    }
}

fn replayed_failure(p: &Payment) -> BankError {
    BankError::Relayed(p.failure.clone().unwrap_or_else(|| PeerRefusal {
        class: shared::ErrorClass::Internal,
        reason: "INTERNAL".to_owned(),
        message: "the payment failed".to_owned(),
        domain: DOMAIN.to_owned(),
    }))
}

/// The CODE_SENT payment `req` asks for on the sign-up `s`, its code kept as `otp_digest`.
fn new_payment(
    req: &PaymentRequest,
    s: &SignUp,
    fingerprint: &str,
    otp_digest: String,
    now_ms: i64,
) -> Payment {
    Payment {
        order_no: req.order_no.clone(),
        fingerprint: fingerprint.to_owned(),
        signup_id: s.id.clone(),
        card: s.card.clone(),
        account: req.account.clone(),
        amount: req.amount,
        status: PaymentStatus::CodeSent,
        otp_hash: otp_digest,
        otp_expires_at_ms: now_ms + OTP_TTL_SECS * 1000,
        otp_wrong_tries: 0,
        serial: None,
        business_date: None,
        paid_at_ms: None,
        failure: None,
        created_at_ms: now_ms,
        refunded: Money::ZERO,
    }
}

/// The text message carrying the payment's one-time code to the sign-up's mobile.
fn code_sms(req: &PaymentRequest, s: &SignUp, code: &OtpCode, now_ms: i64) -> Sms {
    let order = req.order_no.as_str();
    let tail = &order[order.len().saturating_sub(4)..];
    Sms {
        id: format!("SMS{}", hex::encode(rand::random::<[u8; 8]>())),
        mobile: s.mobile.as_str().to_owned(),
        body: format!(
            "【邮储银行】验证码{}，您正在用卡通向支付平台付款{}元（订单尾号{tail}），{}分钟内有效，请勿告诉他人。",
            code.expose(),
            req.amount,
            OTP_TTL_SECS / 60
        ),
        order_no: Some(order.to_owned()),
        otp_code: Some(code.expose().to_owned()),
        sent_at_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_code_matches_its_keyed_digest_and_an_unkeyed_one_kept_before_the_node_secret() {
        let keys = KeyRing::parse(KEY).unwrap();
        let order = OrderNo::parse("O-1").unwrap();
        let right = OtpCode::parse("123456").unwrap();
        let wrong = OtpCode::parse("123457").unwrap();
        let keyed = otp_digest(&keys, &order, &right);
        let unkeyed = hex::encode(Sha256::digest(b"O-1\x1f123456"));
        for (kept, code, matches) in [
            (keyed.as_str(), &right, true),
            (keyed.as_str(), &wrong, false),
            (unkeyed.as_str(), &right, true),
            (unkeyed.as_str(), &wrong, false),
            ("", &right, false),
        ] {
            assert_eq!(
                code_matches(&keys, &order, kept, code),
                matches,
                "{kept:?} {}",
                code.expose()
            );
        }
        let other = OrderNo::parse("O-2").unwrap();
        assert!(
            !code_matches(&keys, &other, &keyed, &right),
            "bound to its order"
        );
    }
}
