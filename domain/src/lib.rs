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

/// An enum kept at rest (or written in a file) as codes, in one style for every such table:
/// each code written once, `code()` and its inverse `from_code()` derived from it, and `ALL`,
/// every variant in order. Two variants with one code do not compile past clippy (an
/// unreachable pattern).
///
/// ```
/// domain::coded_enum!(
///     /// A light.
///     Light {
///         /// Stop.
///         Red = "RED",
///         /// Go.
///         Green = "GREEN",
///     }
/// );
/// assert_eq!(Light::Red.code(), "RED");
/// assert_eq!(Light::from_code("GREEN"), Some(Light::Green));
/// assert_eq!(Light::from_code("BLUE"), None);
/// assert_eq!(Light::ALL, &[Light::Red, Light::Green]);
/// ```
#[macro_export]
macro_rules! coded_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every variant, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The code kept at rest.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            /// The inverse of `code`.
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

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

pub use error::{
    BankReason, ErrorClass, FieldError, ParseField, PeerFailure, PeerRefusal, Refusal,
};
pub use money::Money;
