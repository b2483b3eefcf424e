//! Security between the institutions (docs/security.md): mutual TLS between the nodes and
//! signed interbank messages (Ed25519, or SM2 over SM3), each turned on by configuration.
//!
//! This module holds what is not gRPC: who is who ([`Institution`]), the flags
//! ([`SecurityArgs`]), the key and certificate files ([`keys`], [`certs`]) and what a signature
//! covers ([`sign`]). The tower layers that apply them at the wire are `grpc::guard`.

pub mod certs;
pub mod keys;
pub mod sign;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

/// The two institutions of the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Institution {
    /// The postal bank.
    Bank,
    /// The payment platform.
    Platform,
}

impl Institution {
    /// The name in file names, certificates (the DNS name a node's certificate is valid for)
    /// and the `x-ibsim-signer` header.
    pub fn name(self) -> &'static str {
        match self {
            Institution::Bank => "bank",
            Institution::Platform => "platform",
        }
    }

    /// The other institution.
    pub fn peer(self) -> Institution {
        match self {
            Institution::Bank => Institution::Platform,
            Institution::Platform => Institution::Bank,
        }
    }

    /// The institution of a name, as [`Institution::name`] spells it.
    pub fn from_name(s: &str) -> Option<Institution> {
        [Institution::Bank, Institution::Platform]
            .into_iter()
            .find(|i| i.name() == s)
    }
}

/// Whether a gRPC path (`/package.Service/Method`) is an interbank call: a call of a service
/// only the peer institution may call (`crate::grpc::services`, the `Peer` rows). Its request
/// must be signed (and come over mutual TLS with the peer's certificate, when TLS is on), its
/// answer is signed.
pub fn is_interbank(path: &str) -> bool {
    let service = path
        .strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .map(|(s, _)| s);
    service.is_some_and(crate::grpc::services::is_interbank_service)
}

/// A node's security flags, shared by both node binaries and `ibsim up`. Both point at a
/// directory `ibsim certs` writes; each node picks its own files from it by its role.
#[derive(clap::Args, serde::Serialize, Debug, Clone, Default, PartialEq)]
pub struct SecurityArgs {
    /// Mutual TLS between the nodes (and TLS towards every client): a directory holding the CA
    /// (`ca.pem`) and this node's certificate and key (`bank.pem`/`bank.key` or
    /// `platform.pem`/`platform.key`), as `ibsim certs` writes it. Default: plain text.
    #[arg(long = "tls-dir", env = "IBSIM_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Signed interbank messages: a directory holding this node's private signing key
    /// (`bank-sign.key` or `platform-sign.key`) and the peer's public key (`platform-sign.pub`
    /// or `bank-sign.pub`), as `ibsim certs` writes it. Default: unsigned.
    #[arg(long = "sign-dir", env = "IBSIM_SIGN_DIR")]
    pub sign_dir: Option<PathBuf>,
}

/// The PEM files of one side of a TLS link: the CA both trust and this side's identity.
#[derive(Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM) peers' certificates must chain to.
    pub ca_pem: Vec<u8>,
    /// This side's certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// This side's private key (PEM).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsFiles { .. }")
    }
}

impl TlsFiles {
    /// `me`'s files in `dir` (`ca.pem`, `<me>.pem`, `<me>.key`).
    pub fn load(dir: &Path, me: Institution) -> anyhow::Result<TlsFiles> {
        let read = |name: String| {
            let path = dir.join(&name);
            std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read {} (make the files with `ibsim certs --out {}`)",
                    path.display(),
                    dir.display()
                )
            })
        };
        Ok(TlsFiles {
            ca_pem: read(certs::CA_CERT.to_owned())?,
            cert_pem: read(format!("{}.pem", me.name()))?,
            key_pem: read(format!("{}.key", me.name()))?,
        })
    }
}

/// What a node's security configuration turns on.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Mutual TLS: this node's files.
    pub tls: Option<TlsFiles>,
    /// Signed interbank messages: this node's key and the peer's.
    pub signing: Option<Arc<sign::Signing>>,
}

impl Security {
    /// Nothing on: plain text, unsigned (the default for local use).
    pub fn off() -> Security {
        Security::default()
    }

    /// Loads what `args` turns on for institution `me`.
    pub fn load(args: &SecurityArgs, me: Institution) -> anyhow::Result<Security> {
        let tls = match &args.tls_dir {
            Some(dir) => Some(TlsFiles::load(dir, me)?),
            None => None,
        };
        let signing = match &args.sign_dir {
            Some(dir) => Some(Arc::new(sign::Signing::load(dir, me)?)),
            None => None,
        };
        Ok(Security { tls, signing })
    }

    /// The URL scheme the peer is reached on.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_interbank_services_are_guarded() {
        assert!(is_interbank("/interbank.bank.v1.BankLinkService/Pay"));
        assert!(is_interbank(
            "/interbank.platform.v1.PlatformLinkService/ConfirmSignUp"
        ));
        assert!(is_interbank(
            "/interbank.bank.v1.BankRefundService/PushRefundBatch"
        ));
        assert!(!is_interbank("/interbank.bank.v1.BranchService/SignUp"));
        assert!(!is_interbank(
            "/interbank.platform.v1.PayService/StartPayment"
        ));
        assert!(!is_interbank("/interbank.bank.v1.BankLinkService"));
        assert!(!is_interbank("interbank.bank.v1.BankLinkService/Pay"));
    }

    #[test]
    fn each_institution_knows_its_peer() {
        for i in [Institution::Bank, Institution::Platform] {
            assert_eq!(i.peer().peer(), i);
            assert_ne!(i.peer(), i);
            assert_eq!(Institution::from_name(i.name()), Some(i));
        }
        assert_eq!(Institution::from_name("Bank"), None);
    }
}
