use shared::domain::{DailyLimit, Email, IdType, PersonName, SignUpId};

shared::domain::coded_enum!(
    /// The status of a platform account.
    AccountStatus {
        /// Every function available.
        Normal = "NORMAL",
        /// Frozen by an operator.
        Frozen = "FROZEN",
        /// Closed for good.
        Closed = "CLOSED",
    }
);

/// A platform account.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account id.
    pub email: Email,
    /// The holder's real name.
    pub real_name: PersonName,
    /// The status.
    pub status: AccountStatus,
    /// When it was opened, ms.
    pub created_at_ms: i64,
}

shared::domain::coded_enum!(
    /// The state of a card-link on the platform.
    LinkStatus {
        /// Signed at the branch, not activated.
        Signed = "SIGNED",
        /// Activated by the customer.
        Active = "ACTIVE",
        /// Cancelled at the branch.
        Cancelled = "CANCELLED",
    }
);

/// The platform's copy of a sign-up.
#[derive(Debug, Clone)]
pub struct CardLink {
    /// The platform's id.
    pub platform_link_id: String,
    /// The bank's sign-up id.
    pub signup_id: SignUpId,
    /// The account.
    pub email: Email,
    /// The real name the bank sent.
    pub real_name: PersonName,
    /// The ID type the bank sent.
    pub id_type: IdType,
    /// The card, masked.
    pub card_masked: String,
    /// The status.
    pub status: LinkStatus,
    /// The daily limit the bank last told the platform (at activation, or a later account view).
    pub daily_limit: Option<DailyLimit>,
    /// The one-time-code mobile the bank last told the platform, masked.
    pub mobile_masked: Option<String>,
    /// When the bank told the platform `daily_limit` and `mobile_masked`, ms.
    pub terms_at_ms: Option<i64>,
    /// When the platform recorded it, ms.
    pub signed_at_ms: i64,
    /// When it was activated, ms.
    pub activated_at_ms: Option<i64>,
    /// The bank's business date of the sign-up (`None` for a card-link recorded before the bank
    /// sent dates).
    pub business_date: Option<chrono::NaiveDate>,
    /// The bank's business date of the cancellation.
    pub cancelled_date: Option<chrono::NaiveDate>,
}

/// A sign-up the bank asks the platform to record.
#[derive(Debug, Clone)]
pub struct IncomingSignUp {
    /// The bank's sign-up id.
    pub signup_id: SignUpId,
    /// The account named on the form.
    pub account: Email,
    /// The real name on the form.
    pub real_name: PersonName,
    /// The ID type on the form.
    pub id_type: IdType,
    /// The card, masked.
    pub card_masked: String,
    /// The bank's business date of the sign-up.
    pub business_date: chrono::NaiveDate,
}

shared::domain::coded_enum!(
    /// Where an order stands on the platform.
    OrderStatus {
        /// Recorded; no code known to be sent.
        Created = "CREATED",
        /// The bank sent a code.
        AwaitingCode = "AWAITING_CODE",
        /// Paid. Final.
        Success = "SUCCESS",
        /// Refused. Final.
        Failed = "FAILED",
        /// The bank's answer to the debit never came.
        Unknown = "UNKNOWN",
    }
);

impl OrderStatus {
    /// Success or failure: never changes again.
    pub fn is_settled(self) -> bool {
        matches!(self, OrderStatus::Success | OrderStatus::Failed)
    }
}

/// A payment order.
#[derive(Debug, Clone)]
pub struct Order {
    /// The order number.
    pub order_no: shared::domain::OrderNo,
    /// The paying account.
    pub email: Email,
    /// The card-link's sign-up id.
    pub signup_id: SignUpId,
    /// The card, masked.
    pub card_masked: String,
    /// The amount.
    pub amount: shared::domain::PayAmount,
    /// Free text.
    pub description: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// Where the code went, masked.
    pub mobile_masked: Option<String>,
    /// When the code stops working, ms.
    pub code_expires_at_ms: Option<i64>,
    /// For SUCCESS: the bank's serial number.
    pub serial: Option<String>,
    /// For SUCCESS: the bank's business date.
    pub business_date: Option<chrono::NaiveDate>,
    /// For FAILED: the refusal.
    pub failure: Option<shared::PeerRefusal>,
    /// When recorded, ms.
    pub created_at_ms: i64,
    /// When last changed, ms.
    pub updated_at_ms: i64,
    /// For SUCCESS: what batch refunds have given back so far.
    pub refunded: shared::Money,
}

/// What the platform sends the bank about one payment.
#[derive(Debug, Clone)]
pub struct PayOrder {
    /// The order number.
    pub order_no: shared::domain::OrderNo,
    /// The sign-up id.
    pub signup_id: SignUpId,
    /// The paying account.
    pub account: Email,
    /// The amount.
    pub amount: shared::domain::PayAmount,
    /// The card, masked (for fault rules; not sent).
    pub card_masked: String,
}

impl From<&Order> for PayOrder {
    fn from(o: &Order) -> Self {
        PayOrder {
            order_no: o.order_no.clone(),
            signup_id: o.signup_id.clone(),
            account: o.email.clone(),
            amount: o.amount,
            card_masked: o.card_masked.clone(),
        }
    }
}

/// The bank's word on a payment.
#[derive(Debug, Clone)]
pub enum BankPayment {
    /// A code was sent; no debit.
    CodeSent,
    /// Debited, with the serial number and business date.
    Success {
        /// The bank's serial number.
        serial: String,
        /// The bank's business date.
        date: chrono::NaiveDate,
    },
    /// Refused.
    Failed(shared::PeerRefusal),
}

/// The bank's challenge after a code request.
#[derive(Debug, Clone)]
pub struct CodeSent {
    /// The mobile, masked.
    pub mobile_masked: String,
    /// When the code stops working, ms.
    pub expires_at_ms: i64,
}

/// The bank's balance answer.
#[derive(Debug, Clone)]
pub struct BalanceView {
    /// The card, masked.
    pub card_masked: String,
    /// Available balance.
    pub balance: shared::Money,
    /// The card's status code at the bank.
    pub card_status: String,
}

/// The bank's remaining-limit answer.
#[derive(Debug, Clone)]
pub struct LimitView {
    /// The bank's business date.
    pub date: chrono::NaiveDate,
    /// The daily limit.
    pub limit: shared::Money,
    /// Paid today.
    pub used: shared::Money,
    /// Left today.
    pub remaining: shared::Money,
    /// The one-time-code mobile kept with the sign-up now, masked (empty from a bank that does
    /// not send it).
    pub mobile_masked: String,
}
