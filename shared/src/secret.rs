//! Hashing customer secrets with argon2id at the OWASP minimum (19 MiB, t=2, p=1). Hashing costs
//! tens of milliseconds of CPU, so both functions run on tokio's blocking pool, never on a runtime
//! worker.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB (OWASP minimum for argon2id).
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Iterations.
pub const ARGON2_TIME_COST: u32 = 2;

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_TIME_COST, 1, None)
        .expect("argon2 parameters are valid constants");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of a secret, with a fresh salt.
pub async fn hash(secret: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await?
}

/// Whether `candidate` is the secret behind `phc`. A malformed stored hash is an error, not a no.
pub async fn verify(phc: String, candidate: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
        Ok(hasher()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_secret_and_nothing_else() {
        let h = hash("123456".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains("123456"));
        assert!(verify(h.clone(), "123456".into()).await.unwrap());
        assert!(!verify(h, "654321".into()).await.unwrap());
    }
}
