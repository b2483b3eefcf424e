//! The domain both institutions share, with no I/O: the domain types, each with one way in
//! (`parse`: a request becomes these at the edge; nothing behind the edge checks again), exact
//! money (`money`), the business clock (`clock`) and the refusal model (`error`).
//!
//! Invariant: nothing here does I/O. The crate depends on no async runtime, RPC or database
//! crate (`.ci/run` checks its dependency tree), so every decision made here can be tested
//! with plain tables.

pub mod clock;
pub mod error;
pub mod money;

mod card;
pub use card::mask_middle;
mod contact;
mod identity;
mod limit;
mod mobile;
mod pay;
mod refund;
mod secrets;
mod text;

pub use card::{CardNumber, CardNumberError};
pub use contact::{
    Email, EmailError, PersonName, PersonNameError, RequestId, RequestIdError, SignUpId,
    SignUpIdError,
};
pub use identity::{IdDocument, IdError, IdType, resident_id_check_char};
pub use limit::{DailyLimit, LimitError};
pub use mobile::{Carrier, Mobile, MobileError};
pub use pay::{OrderNo, OrderNoError, OtpCode, OtpCodeError, PayAmount, PayAmountError};
pub use refund::{BatchNo, BatchNoError, RefundAmount, RefundAmountError, RefundId, RefundIdError};
pub use secrets::{CardPassword, LoginPassword, PayPassword, SecretError};
pub use text::{
    Description, DescriptionError, SEQ_MAX, escape_controls, is_plain, key, seq_cursor, shown,
};

pub use error::{ErrorClass, FieldError, ParseField, PeerFailure, PeerRefusal, Refusal};
pub use money::Money;
