//! Ed25519 signing keys in the standard PEM forms: a private key as PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`), a public key as SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`); `openssl pkey` reads both.

use std::path::Path;

use anyhow::Context;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// A new random signing key.
pub fn generate() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// A private key as PKCS#8 PEM.
pub fn private_pem(key: &SigningKey) -> anyhow::Result<String> {
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode a private key: {e}"))?
        .to_string())
}

/// A public key as SubjectPublicKeyInfo PEM.
pub fn public_pem(key: &VerifyingKey) -> anyhow::Result<String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("cannot encode a public key: {e}"))
}

/// Reads a private key file (PKCS#8 PEM).
pub fn read_private(path: &Path) -> anyhow::Result<SigningKey> {
    let text = read(path)?;
    SigningKey::from_pkcs8_pem(&text)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 private key: {e}", path.display()))
}

/// Reads a public key file (SubjectPublicKeyInfo PEM).
pub fn read_public(path: &Path) -> anyhow::Result<VerifyingKey> {
    let text = read(path)?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|e| anyhow::anyhow!("{} is not an Ed25519 public key: {e}", path.display()))
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
        let key = generate();
        std::fs::write(dir.path().join("k.key"), private_pem(&key).unwrap()).unwrap();
        std::fs::write(
            dir.path().join("k.pub"),
            public_pem(&key.verifying_key()).unwrap(),
        )
        .unwrap();
        let back = read_private(&dir.path().join("k.key")).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        let public = read_public(&dir.path().join("k.pub")).unwrap();
        assert_eq!(public, key.verifying_key());
        assert!(read_public(&dir.path().join("k.key")).is_err());
        assert_ne!(generate().to_bytes(), key.to_bytes());
    }
}
