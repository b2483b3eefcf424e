//! Throwaway credentials for local use (`ibsim certs`): a CA, each node's TLS certificate
//! signed by it, each institution's signing key pair (Ed25519, or SM2), and the client
//! certificates of the roles (teller, staff, operator, and the tester who holds all three).
//!
//! A node's certificate is valid for the DNS names `<institution>` and `localhost` and the
//! address 127.0.0.1, for both server and client authentication: the name `bank` or
//! `platform` is what the peer checks, whatever address it dials.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::{Institution, keys};

/// The CA certificate's file name.
pub const CA_CERT: &str = "ca.pem";
/// The CA key's file name.
pub const CA_KEY: &str = "ca.key";

/// A certificate authority: its certificate and the key that signs with it.
pub struct Authority {
    /// The certificate, PEM.
    pub cert_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

/// A certificate and its private key, PEM.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<Authority> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        Ok(Authority {
            cert_pem: cert.pem(),
            params,
            key,
        })
    }

    /// The CA's private key, PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A client certificate named `name`, valid for the DNS names `names` (the roles and
    /// institution a node's guard checks), good for client authentication only.
    pub fn issue_client(&self, name: &str, names: &[&str]) -> anyhow::Result<Issued> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A certificate for `name` (a DNS name it is valid for, besides `localhost` and
    /// 127.0.0.1), good for server and client authentication.
    pub fn issue(&self, name: &str) -> anyhow::Result<Issued> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![
            name.to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let issuer = Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The role identities a set holds: each file stem and the names its certificate is valid for.
/// The `tester` identity carries every role: the CLI, the bench and the console show it. The
/// scenario runner plays an institution too (the steps a peer sends), so it shows
/// `tester-as-bank` or `tester-as-platform`: every role and the institution's name.
pub const IDENTITIES: [(&str, &[&str]); 6] = [
    ("teller", &["teller"]),
    ("staff", &["staff"]),
    ("operator", &["operator"]),
    ("tester", &["teller", "staff", "operator"]),
    ("tester-as-bank", &["bank", "teller", "staff", "operator"]),
    (
        "tester-as-platform",
        &["platform", "teller", "staff", "operator"],
    ),
];

/// The identity file stem the tools show a secured node (its certificate carries every role).
pub const TESTER: &str = "tester";

/// Writes a complete set into `dir` (made if missing): `ca.pem`, `ca.key`, for each
/// institution `<name>.pem`, `<name>.key` (TLS), `<name>-sign.key` and `<name>-sign.pub`
/// (signing keys of `algorithm`), and each role identity of [`IDENTITIES`] (`teller.pem`,
/// `teller.key`, …, `tester.pem`, `tester.key`). Files there already are overwritten only with `force`.
/// Returns the files written.
pub fn write_set(
    dir: &Path,
    force: bool,
    algorithm: keys::Algorithm,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let ca = Authority::new("interbank-sim local CA")?;
    let mut files: Vec<(String, String)> = vec![
        (CA_CERT.to_owned(), ca.cert_pem.clone()),
        (CA_KEY.to_owned(), ca.key_pem()),
    ];
    for who in [Institution::Bank, Institution::Platform] {
        let issued = ca.issue(who.name())?;
        let signing = keys::generate(algorithm);
        files.push((format!("{}.pem", who.name()), issued.cert_pem));
        files.push((format!("{}.key", who.name()), issued.key_pem));
        files.push((format!("{}-sign.key", who.name()), signing.to_pem()?));
        files.push((
            format!("{}-sign.pub", who.name()),
            signing.public().to_pem()?,
        ));
    }
    for (stem, roles) in IDENTITIES {
        let issued = ca.issue_client(stem, roles)?;
        files.push((format!("{stem}.pem"), issued.cert_pem));
        files.push((format!("{stem}.key"), issued.key_pem));
    }
    if !force {
        let there: Vec<String> = files
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| dir.join(name).exists())
            .collect();
        anyhow::ensure!(
            there.is_empty(),
            "{} already holds {} (--force replaces them)",
            dir.display(),
            there.join(", ")
        );
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        write_private(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes a file readable by its owner only (keys are secrets; certificates do no harm so).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_has_every_file_and_is_not_overwritten_by_accident() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_set(dir.path(), false, keys::Algorithm::Ed25519).unwrap();
        assert_eq!(written.len(), 22);
        for name in [
            "ca.pem",
            "ca.key",
            "bank.pem",
            "bank.key",
            "platform.pem",
            "platform.key",
            "bank-sign.key",
            "bank-sign.pub",
            "platform-sign.key",
            "platform-sign.pub",
        ] {
            assert!(dir.path().join(name).is_file(), "{name}");
        }
        let before = std::fs::read(dir.path().join("bank.pem")).unwrap();
        let refused = write_set(dir.path(), false, keys::Algorithm::Ed25519)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("--force"), "{refused}");
        assert_eq!(std::fs::read(dir.path().join("bank.pem")).unwrap(), before);
        write_set(dir.path(), true, keys::Algorithm::Sm2).unwrap();
        assert_ne!(std::fs::read(dir.path().join("bank.pem")).unwrap(), before);
        let key = keys::read_private(&dir.path().join("bank-sign.key")).unwrap();
        assert_eq!(key.algorithm(), keys::Algorithm::Sm2);
        keys::read_public(&dir.path().join("platform-sign.pub")).unwrap();
    }

    #[test]
    fn a_node_certificate_names_its_institution() {
        use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
        let ca = Authority::new("test CA").unwrap();
        let bank = ca.issue("bank").unwrap();
        let der = CertificateDer::from_pem_slice(bank.cert_pem.as_bytes()).unwrap();
        let cert = webpki::EndEntityCert::try_from(&der).unwrap();
        let name = |n: &'static str| ServerName::try_from(n).unwrap();
        assert!(cert.verify_is_valid_for_subject_name(&name("bank")).is_ok());
        assert!(
            cert.verify_is_valid_for_subject_name(&name("localhost"))
                .is_ok()
        );
        assert!(
            cert.verify_is_valid_for_subject_name(&name("platform"))
                .is_err()
        );
    }
}
