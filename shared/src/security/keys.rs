//! Signing keys of the institutions, in the standard PEM forms: a private key as PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`), a public key as SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`); `openssl pkey` reads both.
//!
//! Two algorithms: Ed25519 (the default) and, for testers who want the Chinese national
//! algorithms, SM2 signatures over SM3 (GM/T 0003, with the standard default user ID
//! `1234567812345678`). A key file says which it is; each institution may use either.

use std::path::Path;

use anyhow::Context;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sm2::dsa::signature::{Signer as _, Verifier as _};

/// The SM2 user ID signatures are made with (GM/T 0009's default).
pub const SM2_USER_ID: &str = "1234567812345678";

/// A signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    #[default]
    Ed25519,
    /// SM2 over SM3 (GM/T 0003).
    Sm2,
}

/// An institution's private signing key.
#[derive(Clone)]
pub enum PrivateKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::SigningKey),
    /// SM2: the secret and the signing key made from it with [`SM2_USER_ID`].
    Sm2(sm2::SecretKey, sm2::dsa::SigningKey),
}

/// An institution's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// SM2.
    Sm2(sm2::PublicKey),
}

/// A new random key.
pub fn generate(algorithm: Algorithm) -> PrivateKey {
    match algorithm {
        Algorithm::Ed25519 => {
            PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&rand::random()))
        }
        Algorithm::Sm2 => loop {
            // A random 256-bit string is a valid scalar but with odds of about 2^-32.
            if let Ok(secret) = sm2::SecretKey::from_slice(&rand::random::<[u8; 32]>())
                && let Ok(key) = sm2_private(secret)
            {
                break key;
            }
        },
    }
}

fn sm2_private(secret: sm2::SecretKey) -> anyhow::Result<PrivateKey> {
    let signing = sm2::dsa::SigningKey::new(SM2_USER_ID, &secret)
        .map_err(|e| anyhow::anyhow!("not an SM2 key: {e}"))?;
    Ok(PrivateKey::Sm2(secret, signing))
}

impl PrivateKey {
    /// The public half.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PrivateKey::Sm2(secret, _) => PublicKey::Sm2(secret.public_key()),
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::Ed25519(_) => Algorithm::Ed25519,
            PrivateKey::Sm2(..) => Algorithm::Sm2,
        }
    }

    /// Signs `message`: 64 bytes (Ed25519's R‖S, SM2's r‖s).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        match self {
            PrivateKey::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(message).to_bytes()
            }
            PrivateKey::Sm2(_, k) => {
                let signature: sm2::dsa::Signature = k.sign(message);
                signature.to_bytes()
            }
        }
    }

    /// As PKCS#8 PEM.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        let pem = match self {
            // The PKCS#8 v1 form of RFC 8410 (the private key alone): OpenSSL 3.0 and Python's
            // `cryptography` refuse the v2 form with the public key that the key type writes.
            PrivateKey::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
            PrivateKey::Sm2(secret, _) => secret.to_pkcs8_pem(LineEnding::LF),
        };
        Ok(pem
            .map_err(|e| anyhow::anyhow!("cannot encode a private key: {e}"))?
            .to_string())
    }
}

impl PublicKey {
    /// Whether `signature` (64 bytes) is this key's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                use ed25519_dalek::Verifier as _;
                k.verify(message, &ed25519_dalek::Signature::from_bytes(signature))
                    .is_ok()
            }
            PublicKey::Sm2(k) => {
                let (Ok(key), Ok(signature)) = (
                    sm2::dsa::VerifyingKey::new(SM2_USER_ID, *k),
                    sm2::dsa::Signature::from_bytes(signature),
                ) else {
                    return false;
                };
                key.verify(message, &signature).is_ok()
            }
        }
    }

    /// As SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        match self {
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Sm2(k) => k.to_public_key_pem(LineEnding::LF),
        }
        .map_err(|e| anyhow::anyhow!("cannot encode a public key: {e}"))
    }
}

/// Reads a private key file (PKCS#8 PEM, Ed25519 or SM2).
pub fn read_private(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = read(path)?;
    if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(&text) {
        return Ok(PrivateKey::Ed25519(k));
    }
    match sm2::SecretKey::from_pkcs8_pem(&text) {
        Ok(secret) => sm2_private(secret),
        Err(_) => anyhow::bail!(
            "{} is not an Ed25519 or SM2 private key (PKCS#8 PEM)",
            path.display()
        ),
    }
}

/// Reads a public key file (SubjectPublicKeyInfo PEM, Ed25519 or SM2).
pub fn read_public(path: &Path) -> anyhow::Result<PublicKey> {
    let text = read(path)?;
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(&text) {
        return Ok(PublicKey::Ed25519(k));
    }
    sm2::PublicKey::from_public_key_pem(&text)
        .map(PublicKey::Sm2)
        .map_err(|_| {
            anyhow::anyhow!(
                "{} is not an Ed25519 or SM2 public key (SubjectPublicKeyInfo PEM)",
                path.display()
            )
        })
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_back_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [Algorithm::Ed25519, Algorithm::Sm2] {
            let key = generate(alg);
            std::fs::write(dir.path().join("k.key"), key.to_pem().unwrap()).unwrap();
            std::fs::write(dir.path().join("k.pub"), key.public().to_pem().unwrap()).unwrap();
            let back = read_private(&dir.path().join("k.key")).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.public(), key.public());
            let public = read_public(&dir.path().join("k.pub")).unwrap();
            assert_eq!(public, key.public());
            assert!(read_public(&dir.path().join("k.key")).is_err());
            assert!(read_private(&dir.path().join("k.pub")).is_err());
            assert_ne!(generate(alg).public(), key.public());
        }
    }

    #[test]
    fn each_algorithm_verifies_its_own_signatures_only() {
        for alg in [Algorithm::Ed25519, Algorithm::Sm2] {
            let key = generate(alg);
            let sig = key.sign(b"message");
            assert!(key.public().verifies(b"message", &sig), "{alg:?}");
            assert!(!key.public().verifies(b"messagE", &sig), "{alg:?}");
            assert!(
                !generate(alg).public().verifies(b"message", &sig),
                "{alg:?}"
            );
            let mut bent = sig;
            bent[10] ^= 1;
            assert!(!key.public().verifies(b"message", &bent), "{alg:?}");
        }
        let ed = generate(Algorithm::Ed25519);
        let sm = generate(Algorithm::Sm2);
        assert!(!sm.public().verifies(b"m", &ed.sign(b"m")));
        assert!(!ed.public().verifies(b"m", &sm.sign(b"m")));
    }
}
