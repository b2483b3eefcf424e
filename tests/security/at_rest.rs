//! Secrets at rest (issue 23): the bank keeps a one-time code as an HMAC keyed with a node secret
//! kept outside the database, so the database alone does not give the code back; the secret
//! rotates without failing a code sent before.

use e2e_tests::{Backend, Options, TestApp};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const DIGEST_OF: &str = "SELECT otp_hash FROM payments WHERE order_no = $1";

/// The bank as a process of its own, so that the test restarts it on a rotated secret.
fn bank_as_process() -> Options {
    Options {
        bank_exe: Some(env!("CARGO_BIN_EXE_e2e-bank-node").into()),
        ..Options::default()
    }
}

fn hmac_hex(key_hex: &str, order: &str, code: &str) -> String {
    let key = hex::decode(key_hex.trim()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{order}\x1f{code}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The keys of the bank's secret file, first (current) first.
fn keys_in(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_kept_code_is_keyed_with_the_node_secret_and_the_secret_rotates() {
    let Some(mut app) = TestApp::spawn_with(Backend::Sqlite, bank_as_process()).await else {
        return;
    };
    let key_file = app.bank_config().otp_key_file();
    let first = keys_in(&std::fs::read_to_string(&key_file).expect("the bank made its secret"));
    assert_eq!(first.len(), 1, "one fresh key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the bank's user reads its secret");
    }

    let p = app.payer("密一", "1000.00", "5000.00").await;
    app.start(&p, "REST-1", "1.00").await.unwrap();
    let code = app.code_for(&p, "REST-1").await;
    let kept = app.bank_texts(DIGEST_OF, "REST-1").await.remove(0);
    let unkeyed = hex::encode(Sha256::digest(format!("REST-1\x1f{code}")));
    assert!(
        !kept.contains(&unkeyed),
        "the unkeyed hash a database reader could brute-force is not what is kept"
    );
    assert!(
        kept.ends_with(&hmac_hex(&first[0], "REST-1", &code)),
        "HMAC-SHA-256 with the node secret: {kept}"
    );

    // Rotate: a new key first, the old one kept to verify the code sent under it.
    let new_key = hex::encode(rand::random::<[u8; 32]>());
    std::fs::write(&key_file, format!("{new_key}\n{}\n", first[0])).unwrap();
    app.bank_process()
        .restart()
        .await
        .expect("the bank serves again");
    app.confirm(&p, "REST-1", &code)
        .await
        .expect("a code sent before the rotation still pays");
    app.start(&p, "REST-2", "1.00").await.unwrap();
    let code2 = app.code_for(&p, "REST-2").await;
    let kept2 = app.bank_texts(DIGEST_OF, "REST-2").await.remove(0);
    assert!(
        kept2.ends_with(&hmac_hex(&new_key, "REST-2", &code2)),
        "the new key makes new digests: {kept2}"
    );

    // The key that made a digest gone from the file: that code no longer verifies; back in the
    // file, what it keyed verifies again.
    app.start(&p, "REST-3", "1.00").await.unwrap();
    let code3 = app.code_for(&p, "REST-3").await;
    std::fs::write(&key_file, format!("{}\n", first[0])).unwrap();
    app.bank_process()
        .restart()
        .await
        .expect("the bank serves again");
    e2e_tests::assert_refused(
        app.confirm(&p, "REST-3", &code3).await,
        tonic::Code::PermissionDenied,
        "OTP_WRONG",
    );
    std::fs::write(&key_file, format!("{new_key}\n")).unwrap();
    app.bank_process()
        .restart()
        .await
        .expect("the bank serves again");
    app.confirm(&p, "REST-2", &code2)
        .await
        .expect("the new key verifies what it keyed");
}
