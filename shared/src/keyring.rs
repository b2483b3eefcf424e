//! A node secret for keyed digests (HMAC-SHA-256): what a node keeps of a one-time code, so that
//! the database alone does not give the code back (docs/security.md, "Secrets at rest").
//!
//! The secret lives in a file outside the database, one key a line as 64 hex digits (`#` starts
//! a comment). The first key makes new digests; every key in the file verifies. A node makes the
//! file (mode 0600, one fresh key) when it is missing. To rotate: put a new key on the first line
//! and restart the node's processes; remove the old line once what it keyed has expired (a
//! one-time code lives 5 minutes). Every process over one database reads the same file.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of a key.
pub const KEY_BYTES: usize = 32;
/// Keys a file may hold at most.
pub const KEYS_MAX: usize = 16;

/// The keys of a node's keyed digests; the first makes new ones.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<Key>,
}

#[derive(Clone)]
struct Key {
    /// The first 8 hex digits of SHA-256 of the key: names the key in a digest, says nothing of it.
    id: String,
    bytes: [u8; KEY_BYTES],
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("KeyRing").field("key_ids", &ids).finish()
    }
}

impl Key {
    fn new(bytes: [u8; KEY_BYTES]) -> Key {
        Key {
            id: hex::encode(&Sha256::digest(bytes)[..4]),
            bytes,
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.bytes).expect("HMAC takes any key");
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                mac.update(&[0x1f]);
            }
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

impl KeyRing {
    /// The keys in `text` (the file's format; see the module documentation).
    pub fn parse(text: &str) -> anyhow::Result<KeyRing> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut bytes = [0u8; KEY_BYTES];
            hex::decode_to_slice(line, &mut bytes).map_err(|_| {
                anyhow::anyhow!("line {}: a key is {} hex digits", n + 1, KEY_BYTES * 2)
            })?;
            keys.push(Key::new(bytes));
        }
        anyhow::ensure!(!keys.is_empty(), "no key");
        anyhow::ensure!(keys.len() <= KEYS_MAX, "more than {KEYS_MAX} keys");
        Ok(KeyRing { keys })
    }

    /// The keys in the file at `path`, made first (one fresh key, mode 0600) when it is missing.
    /// Two processes starting at once agree: the file appears whole or not at all (written
    /// aside, then linked into place, which fails if another process linked one first), and
    /// both read the one that is there.
    pub fn load_or_create(path: &Path) -> anyhow::Result<KeyRing> {
        if !path.exists() {
            make(path)?;
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        KeyRing::parse(&text).with_context(|| format!("{} is not a key file", path.display()))
    }

    /// The digest of `parts` (joined by 0x1F) under the first key: `<key id>:<hex>`.
    pub fn digest(&self, parts: &[&[u8]]) -> String {
        let key = &self.keys[0];
        format!("{}:{}", key.id, hex::encode(key.mac(parts)))
    }

    /// Whether `stored` is the digest of `parts` under a key of the ring, compared in constant
    /// time. A digest under a key no longer in the file does not verify.
    pub fn verifies(&self, stored: &str, parts: &[&[u8]]) -> bool {
        let Some((id, hex_mac)) = stored.split_once(':') else {
            return false;
        };
        let mut mac = [0u8; 32];
        if hex::decode_to_slice(hex_mac, &mut mac).is_err() {
            return false;
        }
        self.keys
            .iter()
            .filter(|k| k.id == id)
            .any(|k| bool::from(k.mac(parts).ct_eq(&mac)))
    }
}

/// Makes the key file at `path` with one fresh key, unless another process made it first.
fn make(path: &Path) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let mut aside = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let key: [u8; KEY_BYTES] = rand::random();
    writeln!(
        aside,
        "# interbank-sim node secret: the first key makes digests, every key verifies\n{}",
        hex::encode(key)
    )
    .and_then(|()| aside.as_file().sync_all())
    .with_context(|| format!("cannot write in {}", dir.display()))?;
    match std::fs::hard_link(aside.path(), path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot make {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_digest_verifies_under_its_key_while_the_key_is_in_the_file() {
        let a = KeyRing::parse(A).unwrap();
        let d = a.digest(&[b"O-1", b"123456"]);
        assert!(a.verifies(&d, &[b"O-1", b"123456"]));
        assert!(!a.verifies(&d, &[b"O-1", b"123457"]), "another code");
        assert!(!a.verifies(&d, &[b"O-2", b"123456"]), "another order");
        let rotated = KeyRing::parse(&format!("# rotated\n{B}\n{A}\n")).unwrap();
        assert!(
            rotated.verifies(&d, &[b"O-1", b"123456"]),
            "the old key still verifies"
        );
        assert_ne!(
            rotated.digest(&[b"O-1", b"123456"]),
            d,
            "the new key makes digests"
        );
        let b_only = KeyRing::parse(B).unwrap();
        assert!(
            !b_only.verifies(&d, &[b"O-1", b"123456"]),
            "the old key is gone"
        );
    }

    #[test]
    fn the_digest_is_not_the_unkeyed_hash_and_bad_digests_do_not_verify() {
        let a = KeyRing::parse(A).unwrap();
        let d = a.digest(&[b"O-1", b"123456"]);
        let unkeyed = hex::encode(Sha256::digest(b"O-1\x1f123456"));
        assert!(!d.contains(&unkeyed));
        for bad in ["", ":", "zz:00", &unkeyed, &d.replace(':', "")] {
            assert!(!a.verifies(bad, &[b"O-1", b"123456"]), "{bad:?}");
        }
    }

    #[test]
    fn a_file_of_no_key_or_a_bad_line_is_refused() {
        for text in ["", "# only a comment\n", "abc", &format!("{A}0")] {
            assert!(KeyRing::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn processes_starting_together_read_the_one_key_made() {
        for _ in 0..200 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("otp.key");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        KeyRing::load_or_create(&path).map(|k| k.digest(&[b"x"]))
                    })
                })
                .collect();
            let digests: Vec<String> = racers
                .into_iter()
                .map(|r| r.join().unwrap().expect("both start"))
                .collect();
            assert_eq!(digests[0], digests[1], "both read the same key");
        }
    }

    #[test]
    fn a_missing_file_is_made_private_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("otp.key");
        let made = KeyRing::load_or_create(&path).unwrap();
        let again = KeyRing::load_or_create(&path).unwrap();
        let d = made.digest(&[b"x"]);
        assert!(again.verifies(&d, &[b"x"]), "the same key is read back");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
