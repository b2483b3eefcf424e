//! What an interbank signature covers, and the refusals of one that does not hold.
//!
//! A request's signature covers, one per line: `IBSIM-REQUEST-V1`, the signer, the gRPC path,
//! the timestamp (milliseconds since the epoch, the sender's business clock), the nonce, and
//! the SHA-256 (hex) of the request's first message as framed on the wire. For a unary call
//! that is the whole body; a streamed push's first message is its head, which carries the
//! SHA-256 and size of the whole file the receiver checks before accepting it.
//!
//! An answer's signature covers: `IBSIM-RESPONSE-V1`, the signer, the path, the request's
//! nonce (so an answer cannot be replayed to another request), the SHA-256 of the whole
//! response body, and the `grpc-status`, `grpc-message` and `grpc-status-details-bin` values.

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::Institution;
use super::keys::{self, PrivateKey, PublicKey};
use crate::error::{ErrorClass, Refusal};

/// Header: who signed (`bank` or `platform`).
pub const SIGNER: &str = "x-ibsim-signer";
/// Header: the request's timestamp, milliseconds since the epoch on the sender's business clock.
pub const TIMESTAMP: &str = "x-ibsim-timestamp";
/// Header: the request's nonce, 16 to 64 characters of `[0-9A-Za-z_-]`.
pub const NONCE: &str = "x-ibsim-nonce";
/// Header (and trailer, on an answer): the signature (Ed25519 or SM2, 64 bytes), standard base64.
pub const SIGNATURE: &str = "x-ibsim-signature";

/// How far a request's timestamp may be from the receiver's business clock.
pub const WINDOW_MS: i64 = 300_000;

/// An institution's signing key and the public key of its peer (each Ed25519 or SM2).
pub struct Signing {
    me: Institution,
    key: PrivateKey,
    peer_key: PublicKey,
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signing {{ me: {:?}, .. }}", self.me)
    }
}

impl Signing {
    /// `me` signing with `key`, trusting `peer_key` for the peer.
    pub fn new(me: Institution, key: PrivateKey, peer_key: PublicKey) -> Signing {
        Signing { me, key, peer_key }
    }

    /// `me`'s keys in `dir`: `<me>-sign.key` and `<peer>-sign.pub`.
    pub fn load(dir: &Path, me: Institution) -> anyhow::Result<Signing> {
        Ok(Signing {
            me,
            key: keys::read_private(&dir.join(format!("{}-sign.key", me.name())))?,
            peer_key: keys::read_public(&dir.join(format!("{}-sign.pub", me.peer().name())))?,
        })
    }

    /// Who signs.
    pub fn me(&self) -> Institution {
        self.me
    }

    /// Signs `message`; standard base64.
    pub fn sign(&self, message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(message))
    }

    /// Whether `signature` (standard base64) is the peer's over `message`.
    pub fn peer_signed(&self, message: &[u8], signature: &str) -> Result<(), SignatureRefusal> {
        let sig = parse_signature(signature)?;
        if self.peer_key.verifies(message, &sig) {
            Ok(())
        } else {
            Err(SignatureRefusal::Invalid)
        }
    }
}

/// A signature from base64.
fn parse_signature(s: &str) -> Result<[u8; 64], SignatureRefusal> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| SignatureRefusal::Malformed("the signature is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| SignatureRefusal::Malformed("the signature is not 64 bytes"))
}

/// SHA-256, lower-case hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A new nonce: 32 hex digits.
pub fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Whether `s` is a well-formed nonce.
pub fn nonce_ok(s: &str) -> bool {
    (16..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a request's signature covers.
pub fn request_text(
    signer: &str,
    path: &str,
    timestamp_ms: i64,
    nonce: &str,
    body_sha256: &str,
) -> String {
    format!("IBSIM-REQUEST-V1\n{signer}\n{path}\n{timestamp_ms}\n{nonce}\n{body_sha256}")
}

/// An answer's gRPC status as signed: `grpc-status`, `grpc-message`, `grpc-status-details-bin`
/// (empty where absent).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatusParts {
    /// `grpc-status`.
    pub code: String,
    /// `grpc-message`.
    pub message: String,
    /// `grpc-status-details-bin`.
    pub details: String,
}

/// What an answer's signature covers.
pub fn response_text(
    signer: &str,
    path: &str,
    nonce: &str,
    body_sha256: &str,
    status: &StatusParts,
) -> String {
    format!(
        "IBSIM-RESPONSE-V1\n{signer}\n{path}\n{nonce}\n{body_sha256}\n{}\n{}\n{}",
        status.code, status.message, status.details
    )
}

/// Why an interbank request was refused at the receiver's edge, or an answer at the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureRefusal {
    /// No signature headers on an interbank call.
    Missing,
    /// A signature header that cannot be read.
    Malformed(&'static str),
    /// Signed by someone other than the peer institution.
    SignerUnknown,
    /// The signature does not verify with the peer's key over what was received.
    Invalid,
    /// The timestamp is more than 300 s from the receiver's business clock.
    Stale,
    /// The nonce was seen inside the window.
    Replayed,
    /// TLS is on and the caller showed no client certificate.
    NoClientCertificate,
    /// The client certificate (from the CA) is not the peer institution's.
    NotThePeer,
    /// The caller could not verify the answer (missing or bad signature): its outcome is
    /// unknown.
    AnswerUnverified(&'static str),
    /// The receiver could not record the nonce (its database is down): nothing was done.
    Unrecorded,
    /// TLS is on, the service needs this role, and the caller showed no client certificate.
    RoleCertificateMissing(&'static str),
    /// The caller's client certificate does not carry the role the service needs.
    RoleNotHeld(&'static str),
}

impl std::fmt::Display for SignatureRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureRefusal::Missing => f.write_str(
                "an interbank call must be signed (x-ibsim-signer, x-ibsim-timestamp, x-ibsim-nonce, x-ibsim-signature)",
            ),
            SignatureRefusal::Malformed(why) => write!(f, "the signature headers are malformed: {why}"),
            SignatureRefusal::SignerUnknown => f.write_str("the signer is not the peer institution"),
            SignatureRefusal::Invalid => f.write_str(
                "the signature does not verify with the peer's key over this method, timestamp, nonce and body",
            ),
            SignatureRefusal::Stale => write!(
                f,
                "the timestamp is more than {} seconds from this node's business clock",
                WINDOW_MS / 1000
            ),
            SignatureRefusal::Replayed => write!(
                f,
                "this nonce was used already inside the {}-second window",
                WINDOW_MS / 1000
            ),
            SignatureRefusal::NoClientCertificate => f.write_str(
                "an interbank call needs the peer institution's client certificate (mutual TLS)",
            ),
            SignatureRefusal::NotThePeer => f.write_str(
                "the client certificate is not the peer institution's",
            ),
            SignatureRefusal::AnswerUnverified(why) => write!(
                f,
                "the peer's answer could not be verified ({why}); its outcome is unknown"
            ),
            SignatureRefusal::Unrecorded => f.write_str("internal error"),
            SignatureRefusal::RoleCertificateMissing(role) => write!(
                f,
                "this service is for the {role} role: show a client certificate that carries it (ibsim certs writes {role}.pem and tester.pem)"
            ),
            SignatureRefusal::RoleNotHeld(role) => write!(
                f,
                "this service is for the {role} role, which the client certificate does not carry"
            ),
        }
    }
}

impl Refusal for SignatureRefusal {
    fn class(&self) -> ErrorClass {
        match self {
            SignatureRefusal::NotThePeer | SignatureRefusal::RoleNotHeld(_) => {
                ErrorClass::PermissionDenied
            }
            SignatureRefusal::AnswerUnverified(_) => ErrorClass::DataLoss,
            SignatureRefusal::Unrecorded => ErrorClass::Internal,
            _ => ErrorClass::Unauthenticated,
        }
    }

    fn reason(&self) -> &str {
        match self {
            SignatureRefusal::Missing => "SIGNATURE_MISSING",
            SignatureRefusal::Malformed(_) => "SIGNATURE_MALFORMED",
            SignatureRefusal::SignerUnknown => "SIGNER_UNKNOWN",
            SignatureRefusal::Invalid => "SIGNATURE_INVALID",
            SignatureRefusal::Stale => "TIMESTAMP_OUT_OF_WINDOW",
            SignatureRefusal::Replayed => "NONCE_REUSED",
            SignatureRefusal::NoClientCertificate => "CLIENT_CERT_REQUIRED",
            SignatureRefusal::NotThePeer => "CLIENT_CERT_NOT_PEER",
            SignatureRefusal::AnswerUnverified(_) => "RESPONSE_UNVERIFIED",
            SignatureRefusal::Unrecorded => "INTERNAL",
            SignatureRefusal::RoleCertificateMissing(_) => "ROLE_CERT_REQUIRED",
            SignatureRefusal::RoleNotHeld(_) => "ROLE_NOT_ALLOWED",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(bank: keys::Algorithm, platform: keys::Algorithm) -> (Signing, Signing) {
        let bank = keys::generate(bank);
        let platform = keys::generate(platform);
        (
            Signing::new(Institution::Bank, bank.clone(), platform.public()),
            Signing::new(Institution::Platform, platform, bank.public()),
        )
    }

    #[test]
    fn a_signature_holds_for_exactly_what_was_signed() {
        use keys::Algorithm::{Ed25519, Sm2};
        for (b, p) in [
            (Ed25519, Ed25519),
            (Sm2, Sm2),
            (Ed25519, Sm2),
            (Sm2, Ed25519),
        ] {
            signatures_hold(pair(b, p));
        }
    }

    fn signatures_hold((bank, platform): (Signing, Signing)) {
        let text = request_text("platform", "/p/M", 1, "n", &digest(b"body"));
        let sig = platform.sign(text.as_bytes());
        assert_eq!(bank.peer_signed(text.as_bytes(), &sig), Ok(()));
        let other = request_text("platform", "/p/M", 1, "n", &digest(b"bodY"));
        assert_eq!(
            bank.peer_signed(other.as_bytes(), &sig),
            Err(SignatureRefusal::Invalid)
        );
        // The bank's own signature is not the platform's.
        let own = bank.sign(text.as_bytes());
        assert_eq!(
            bank.peer_signed(text.as_bytes(), &own),
            Err(SignatureRefusal::Invalid)
        );
        assert!(matches!(
            bank.peer_signed(text.as_bytes(), "not base64!"),
            Err(SignatureRefusal::Malformed(_))
        ));
        assert!(matches!(
            bank.peer_signed(text.as_bytes(), "AAAA"),
            Err(SignatureRefusal::Malformed(_))
        ));
    }

    #[test]
    fn nonces_are_fresh_and_well_formed() {
        let a = new_nonce();
        assert!(nonce_ok(&a));
        assert_ne!(a, new_nonce());
        assert!(!nonce_ok("short"));
        assert!(!nonce_ok(&"a".repeat(65)));
        assert!(!nonce_ok("0123456789abcdef\n"));
        assert!(nonce_ok("0123456789abcdef"));
    }
}
