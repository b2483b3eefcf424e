//! Hashing customer secrets with argon2id at the OWASP minimum (19 MiB, t=2, p=1). Hashing costs
//! tens of milliseconds of CPU and 19 MiB of memory, so both functions run on tokio's blocking
//! pool, never on a runtime worker, and at most one per CPU at a time ([`ARGON2_IN_FLIGHT_MAX`]
//! bounds the memory too).
//!
//! [`VerifiedCache`] keeps the pay path from being bound by argon2: after one successful argon2
//! check of a secret, the same secret against the same stored hash is recognised by a keyed
//! SHA-256 held only in this process's memory. Wrong secrets always go through argon2.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

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

/// Argon2 computations running at once, at most (besides: one per available CPU).
pub const ARGON2_IN_FLIGHT_MAX: usize = 8;

fn permits() -> &'static Semaphore {
    static SEM: OnceLock<Semaphore> = OnceLock::new();
    SEM.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new(cpus.min(ARGON2_IN_FLIGHT_MAX))
    })
}

async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let _permit = permits().acquire().await?;
    tokio::task::spawn_blocking(work).await?
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of a secret, with a fresh salt.
pub async fn hash(secret: String) -> anyhow::Result<String> {
    on_blocking_pool(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
    })
    .await
}

/// Whether `candidate` is the secret behind `phc`. A malformed stored hash is an error, not a no.
pub async fn verify(phc: String, candidate: String) -> anyhow::Result<bool> {
    on_blocking_pool(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| anyhow::anyhow!("stored hash is malformed: {e}"))?;
        Ok(hasher()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

/// Entries a [`VerifiedCache`] holds at most; when full it starts afresh.
pub const VERIFIED_CACHE_ENTRIES_MAX: usize = 100_000;
/// How long a verified secret is remembered, seconds of real time.
pub const VERIFIED_CACHE_TTL_SECS: u64 = 600;

/// Remembers secrets that passed argon2, by an HMAC of (stored hash, secret) under a key
/// drawn at start and never written anywhere. A changed stored hash (new password) misses.
pub struct VerifiedCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, ([u8; 32], Instant)>>,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache {
            key: rand::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedCache")
    }
}

impl VerifiedCache {
    /// HMAC-SHA-256 under the process's key of (stored hash, secret).
    fn digest(&self, phc: &str, secret: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(phc.as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `candidate` is the secret behind `phc`, for the holder `who`: from memory when it
    /// passed argon2 recently, otherwise by argon2 (and remembered when right).
    pub async fn verify(&self, who: &str, phc: String, candidate: String) -> anyhow::Result<bool> {
        let d = self.digest(&phc, &candidate);
        let ttl = Duration::from_secs(VERIFIED_CACHE_TTL_SECS);
        let hit = self
            .entries
            .lock()
            .expect("cache lock poisoned")
            .get(who)
            .is_some_and(|(known, at)| at.elapsed() < ttl && bool::from(known.ct_eq(&d)));
        if hit {
            return Ok(true);
        }
        let right = verify(phc, candidate).await?;
        let mut entries = self.entries.lock().expect("cache lock poisoned");
        if right {
            if entries.len() >= VERIFIED_CACHE_ENTRIES_MAX {
                entries.clear();
            }
            entries.insert(who.to_owned(), (d, Instant::now()));
        }
        Ok(right)
    }

    /// Forgets everything (a node reset).
    pub fn clear(&self) {
        self.entries.lock().expect("cache lock poisoned").clear();
    }
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

    #[tokio::test]
    async fn the_cache_knows_only_secrets_that_passed_against_the_same_hash() {
        let cache = VerifiedCache::default();
        let h = hash("111111".into()).await.unwrap();
        assert!(!cache.verify("a", h.clone(), "222222".into()).await.unwrap());
        assert!(cache.verify("a", h.clone(), "111111".into()).await.unwrap());
        assert!(cache.verify("a", h.clone(), "111111".into()).await.unwrap());
        assert!(!cache.verify("a", h, "222222".into()).await.unwrap());
        let changed = hash("333333".into()).await.unwrap();
        assert!(!cache.verify("a", changed, "111111".into()).await.unwrap());
    }
}
