//! Domain types, each with one way in: `parse`. A request becomes these at the edge; nothing
//! behind the edge checks again.

mod card;
pub(crate) use card::mask_middle;
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
