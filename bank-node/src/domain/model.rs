use chrono::NaiveDate;
use sha2::{Digest, Sha256};
use shared::Money;
use shared::PeerRefusal;
use shared::domain::{
    CardNumber, CardPassword, DailyLimit, Email, IdDocument, Mobile, PersonName, RequestId,
    SignUpId,
};

use shared::domain::coded_enum;

coded_enum!(
    /// Card-only (单卡户) or card and passbook (卡折合一户).
    AccountKind {
        /// 单卡户.
        CardOnly = "CARD_ONLY",
        /// 卡折合一户.
        CardAndPassbook = "CARD_AND_PASSBOOK",
    }
);

coded_enum!(
    /// The state of a card account.
    CardStatus {
        /// Usable.
        Normal = "NORMAL",
        /// Three wrong passwords in a row.
        Locked = "LOCKED",
        /// Frozen by the bank.
        Frozen = "FROZEN",
        /// Closed for good.
        Closed = "CLOSED",
    }
);

coded_enum!(
    /// A business day at the bank: payments land on it while OPEN; the cutover closes it.
    DayStatus {
        /// Payments land on it.
        Open = "OPEN",
        /// Closed by the cutover: its figures never change again.
        Closed = "CLOSED",
    }
);

coded_enum!(
    /// Where a sign-up stands.
    SignUpStatus {
        /// Checked by the bank, waiting for the platform.
        Pending = "PENDING",
        /// Signed on both sides.
        Signed = "SIGNED",
        /// Refused, or the platform could not be reached.
        Failed = "FAILED",
        /// Waiting for the platform to confirm a cancellation.
        Cancelling = "CANCELLING",
        /// Cancelled on both sides.
        Cancelled = "CANCELLED",
    }
);

/// Wrong card passwords in a row that lock a card.
pub const CARD_PASSWORD_TRIES_MAX: u32 = 3;
/// The largest cash amount for one deposit or opening deposit, fen (1,000,000.00 yuan).
pub const DEPOSIT_FEN_MAX: i64 = 100_000_000;

/// A card account.
#[derive(Debug, Clone)]
pub struct Card {
    /// The card number.
    pub number: CardNumber,
    /// Card-only or card and passbook.
    pub kind: AccountKind,
    /// The holder's name.
    pub holder_name: PersonName,
    /// The holder's ID.
    pub id: IdDocument,
    /// The balance.
    pub balance: Money,
    /// The status.
    pub status: CardStatus,
    /// Wrong passwords in a row.
    pub wrong_password_tries: u32,
    /// When it was opened, ms since the epoch.
    pub opened_at_ms: i64,
}

/// What a teller enters to open a card.
#[derive(Debug, Clone)]
pub struct OpenCardForm {
    /// Card-only or card and passbook.
    pub kind: AccountKind,
    /// The holder's name.
    pub holder_name: PersonName,
    /// The holder's ID.
    pub id: IdDocument,
    /// The card password.
    pub password: CardPassword,
    /// Cash put on the card at opening.
    pub opening_deposit: Money,
    /// A card number chosen by the caller, or `None` to issue one.
    pub number: Option<CardNumber>,
}

/// A card-link sign-up as the bank keeps it.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// The bank's sign-up id.
    pub id: SignUpId,
    /// The card.
    pub card: CardNumber,
    /// The platform account.
    pub account: Email,
    /// The real name given.
    pub real_name: PersonName,
    /// The ID given.
    pub id_doc: IdDocument,
    /// The one-time-code mobile.
    pub mobile: Mobile,
    /// The daily cumulative pay limit.
    pub limit: DailyLimit,
    /// The status.
    pub status: SignUpStatus,
    /// For FAILED: who refused, with what.
    pub failure: Option<PeerRefusal>,
    /// The business date it was settled on.
    pub business_date: Option<NaiveDate>,
    /// When it was submitted, ms.
    pub created_at_ms: i64,
    /// When it last changed, ms.
    pub updated_at_ms: i64,
}

impl SignUp {
    /// Pending, signed or being cancelled: the card is taken.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            SignUpStatus::Pending | SignUpStatus::Signed | SignUpStatus::Cancelling
        )
    }
}

/// The sign-up form the customer fills in at the branch.
#[derive(Debug, Clone)]
pub struct SignUpForm {
    /// The teller system's idempotency key.
    pub request_id: RequestId,
    /// The platform account.
    pub account: Email,
    /// The real name.
    pub real_name: PersonName,
    /// The ID.
    pub id: IdDocument,
    /// The mobile for one-time codes.
    pub mobile: Mobile,
    /// The card.
    pub card: CardNumber,
    /// The card password.
    pub password: CardPassword,
    /// The daily limit.
    pub limit: DailyLimit,
}

impl SignUpForm {
    /// A digest of everything on the form but the card password: "the same content" for
    /// idempotency. The password is left out so that no guessable digest of it is kept.
    pub fn fingerprint(&self) -> String {
        let fields = [
            self.account.as_str(),
            self.real_name.as_str(),
            self.id.kind().code(),
            self.id.number(),
            self.mobile.as_str(),
            self.card.expose(),
            &self.limit.to_string(),
        ];
        let mut h = Sha256::new();
        for f in fields {
            h.update(f.as_bytes());
            h.update([0x1f]);
        }
        hex::encode(h.finalize())
    }
}
