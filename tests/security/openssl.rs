//! The files `ibsim certs` writes are the standard forms other tools read (docs/security.md):
//! OpenSSL 3 reads every key and certificate, and verifies with a public key file a signature
//! that the node's own signing code made with the private key file.

use std::path::Path;
use std::process::Command;

use shared::security::certs;
use shared::security::keys::{self, Algorithm, SM2_USER_ID};

/// Runs `openssl` with `args`; its stderr when it fails.
fn openssl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (CI installs it; docs/security.md names it as the reader)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

/// An SM2 signature (r ‖ s, 32 bytes each) as OpenSSL reads it: DER, SEQUENCE of two INTEGERs.
fn sm2_der(raw: &[u8; 64]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, u8::try_from(v.len()).unwrap()];
        out.extend(v);
        out
    }
    let body = [integer(&raw[..32]), integer(&raw[32..])].concat();
    let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
    out.extend(body);
    out
}

/// `openssl pkeyutl -verify` of `signature` over `message` with the public key file `public`.
fn verify(algorithm: Algorithm, public: &str, message: &[u8], signature: &[u8; 64]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let (msg, sig) = (path(dir.path(), "message"), path(dir.path(), "signature"));
    std::fs::write(&msg, message).unwrap();
    let mut args = vec!["pkeyutl", "-verify", "-pubin", "-inkey", public, "-rawin"];
    let distid = format!("distid:{SM2_USER_ID}");
    match algorithm {
        Algorithm::Ed25519 => std::fs::write(&sig, signature).unwrap(),
        Algorithm::Sm2 => {
            std::fs::write(&sig, sm2_der(signature)).unwrap();
            args.extend(["-digest", "sm3", "-pkeyopt", &distid]);
        }
    }
    args.extend(["-in", &msg, "-sigfile", &sig]);
    openssl(&args).is_ok()
}

#[test]
fn openssl_reads_every_file_and_verifies_a_signature_the_node_made() {
    for algorithm in [Algorithm::Ed25519, Algorithm::Sm2] {
        let dir = tempfile::tempdir().unwrap();
        certs::write_set(dir.path(), false, algorithm).unwrap();
        for name in [
            "ca.key",
            "bank.key",
            "platform.key",
            "bank-sign.key",
            "platform-sign.key",
        ] {
            let file = path(dir.path(), name);
            openssl(&["pkey", "-noout", "-in", &file])
                .unwrap_or_else(|e| panic!("{algorithm:?}: openssl cannot read {name}: {e}"));
        }
        for name in ["bank-sign.pub", "platform-sign.pub"] {
            let file = path(dir.path(), name);
            openssl(&["pkey", "-pubin", "-noout", "-in", &file])
                .unwrap_or_else(|e| panic!("{algorithm:?}: openssl cannot read {name}: {e}"));
        }
        for name in ["ca.pem", "bank.pem", "platform.pem"] {
            let file = path(dir.path(), name);
            openssl(&["x509", "-noout", "-in", &file])
                .unwrap_or_else(|e| panic!("{algorithm:?}: openssl cannot read {name}: {e}"));
        }
        for who in ["bank", "platform"] {
            let key = keys::read_private(&dir.path().join(format!("{who}-sign.key"))).unwrap();
            let public = path(dir.path(), &format!("{who}-sign.pub"));
            let message = format!("POST /interbank.bank.v1.BankLinkService/Pay {who} 支付");
            let signature = key.sign(message.as_bytes());
            assert!(
                verify(algorithm, &public, message.as_bytes(), &signature),
                "{algorithm:?}: openssl does not verify the {who}'s signature"
            );
            assert!(
                !verify(algorithm, &public, b"another message", &signature),
                "{algorithm:?}: openssl verifies the {who}'s signature over another message"
            );
        }
    }
}
