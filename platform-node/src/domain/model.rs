use shared::domain::{DailyLimit, Email, IdType, PersonName};

/// The status of a platform account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Every function available.
    Normal,
    /// Frozen by an operator.
    Frozen,
    /// Closed for good.
    Closed,
}

impl AccountStatus {
    /// The code kept at rest.
    pub fn code(self) -> &'static str {
        match self {
            AccountStatus::Normal => "NORMAL",
            AccountStatus::Frozen => "FROZEN",
            AccountStatus::Closed => "CLOSED",
        }
    }

    /// The inverse of `code`.
    pub fn from_code(s: &str) -> Option<AccountStatus> {
        [
            AccountStatus::Normal,
            AccountStatus::Frozen,
            AccountStatus::Closed,
        ]
        .into_iter()
        .find(|a| a.code() == s)
    }
}

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

/// The state of a card-link on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    /// Signed at the branch, not activated.
    Signed,
    /// Activated by the customer.
    Active,
    /// Cancelled at the branch.
    Cancelled,
}

impl LinkStatus {
    /// The code kept at rest.
    pub fn code(self) -> &'static str {
        match self {
            LinkStatus::Signed => "SIGNED",
            LinkStatus::Active => "ACTIVE",
            LinkStatus::Cancelled => "CANCELLED",
        }
    }

    /// The inverse of `code`.
    pub fn from_code(s: &str) -> Option<LinkStatus> {
        [
            LinkStatus::Signed,
            LinkStatus::Active,
            LinkStatus::Cancelled,
        ]
        .into_iter()
        .find(|a| a.code() == s)
    }
}

/// The platform's copy of a sign-up.
#[derive(Debug, Clone)]
pub struct CardLink {
    /// The platform's id.
    pub platform_link_id: String,
    /// The bank's sign-up id.
    pub signup_id: String,
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
    /// The limit the bank confirmed at activation.
    pub daily_limit: Option<DailyLimit>,
    /// The mobile the bank confirmed at activation, masked.
    pub mobile_masked: Option<String>,
    /// When the platform recorded it, ms.
    pub signed_at_ms: i64,
    /// When it was activated, ms.
    pub activated_at_ms: Option<i64>,
}

/// A sign-up the bank asks the platform to record.
#[derive(Debug, Clone)]
pub struct IncomingSignUp {
    /// The bank's sign-up id.
    pub signup_id: String,
    /// The account named on the form.
    pub account: Email,
    /// The real name on the form.
    pub real_name: PersonName,
    /// The ID type on the form.
    pub id_type: IdType,
    /// The card, masked.
    pub card_masked: String,
}
