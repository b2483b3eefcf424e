//! Attacks on a secured link (mutual TLS and signed interbank messages, docs/security.md), each
//! refused with its reason and no change of state but an audit line; and the flows that must
//! still work across it.
//!
//! The attacker plays the platform towards the bank's BankLinkService.RequestPaymentCode: a
//! call that, when it is let through, records a payment and sends a one-time code by SMS, so
//! "nothing happened" is visible. Requests are sent as raw bytes, signed (or not) by the test
//! itself, so that a byte can be flipped after signing.

use bytes::{Buf, BufMut, Bytes};
use e2e_tests::{Backend, Options, PAY_PASSWORD, Payer, Secure, TestApp};
use prost::Message;
use proto::platform::v1 as platform;
use proto::sim::v1 as sim;
use shared::security::Institution;
use shared::security::certs::Authority;
use shared::security::keys::{self, Algorithm, PrivateKey};
use shared::security::sign::{self, Signing};
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_types::StatusExt;

mod at_rest;
mod openssl;
mod roles;
mod transport;

const START: &str = "2031-03-03T02:00:00Z";
const PATH: &str = "/interbank.bank.v1.BankLinkService/RequestPaymentCode";

fn start_ms() -> i64 {
    chrono::DateTime::parse_from_rfc3339(START)
        .unwrap()
        .timestamp_millis()
}

async fn secured(backend: Backend) -> Option<TestApp> {
    secured_with(backend, Algorithm::Ed25519).await
}

async fn secured_with(backend: Backend, sign_algorithm: Algorithm) -> Option<TestApp> {
    TestApp::spawn_with(
        backend,
        Options {
            secure: Secure::Both,
            sign_algorithm,
            frozen_at: Some(START.parse().unwrap()),
            ..Options::default()
        },
    )
    .await
}

/// Bytes in, bytes out: the request body is exactly what the test built.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Who the attacker's TLS connection says it is.
enum As {
    /// The platform's own certificate (stolen, or the real platform misbehaving).
    Platform,
    /// The bank's certificate: from the right CA, but not the peer.
    Bank,
    /// No client certificate.
    Nobody,
    /// A certificate named `platform` from a CA of the attacker's own.
    ForeignCa,
}

async fn channel(app: &TestApp, who: As) -> Channel {
    channel_to(app, &app.bank_url(), who)
}

/// A channel to the bank node at `url` (a second bank process, say), as `who`.
fn channel_to(app: &TestApp, url: &str, who: As) -> Channel {
    let identity = match who {
        As::Platform => Some(identity_in(app, "platform")),
        As::Bank => Some(identity_in(app, "bank")),
        As::Nobody => None,
        As::ForeignCa => {
            let foreign = Authority::new("an attacker's CA").unwrap();
            let cert = foreign.issue("platform").unwrap();
            Some(Identity::from_pem(cert.cert_pem, cert.key_pem))
        }
    };
    channel_showing(app, url, identity)
}

/// The identity `<stem>.pem` / `<stem>.key` of the test's credentials.
fn identity_in(app: &TestApp, stem: &str) -> Identity {
    let read = |ext: &str| std::fs::read(app.security_dir().join(format!("{stem}.{ext}"))).unwrap();
    Identity::from_pem(read("pem"), read("key"))
}

/// A channel to the node at `url` over TLS, trusting the test's CA, showing `identity` (none: no
/// client certificate).
fn channel_showing(app: &TestApp, url: &str, identity: Option<Identity>) -> Channel {
    let ca = std::fs::read(app.security_dir().join("ca.pem")).unwrap();
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    Channel::from_shared(url.to_owned())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy()
}

/// A RequestPaymentCode request, encoded, and as framed on the wire.
fn request(p: &Payer, order_no: &str) -> (Bytes, Vec<u8>) {
    let msg = proto::bank::v1::RequestPaymentCodeRequest {
        order_no: order_no.to_owned(),
        signup_id: p.signup_id.clone(),
        platform_account: p.customer.email.clone(),
        amount: "1.00".to_owned(),
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(msg.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&msg);
    (Bytes::from(msg), frame)
}

/// The platform's signing key, from the test's credentials.
fn platform_key(app: &TestApp) -> PrivateKey {
    keys::read_private(&app.security_dir().join("platform-sign.key")).unwrap()
}

/// The platform's own signature headers over `frame`, stamped `at_ms`, with a fresh nonce.
fn honest(app: &TestApp, at_ms: i64, frame: &[u8]) -> Vec<(&'static str, String)> {
    signature(
        platform_key(app),
        "platform",
        at_ms,
        &sign::new_nonce(),
        frame,
    )
}

/// Signature headers over `frame` by `key` as signer `signer`.
fn signature(
    key: PrivateKey,
    signer: &str,
    at_ms: i64,
    nonce: &str,
    frame: &[u8],
) -> Vec<(&'static str, String)> {
    let signing = Signing::new(
        Institution::Platform,
        key,
        keys::generate(Algorithm::Ed25519).public(),
    );
    let text = sign::request_text(signer, PATH, at_ms, nonce, &sign::digest(frame));
    vec![
        (sign::SIGNER, signer.to_owned()),
        (sign::TIMESTAMP, at_ms.to_string()),
        (sign::NONCE, nonce.to_owned()),
        (sign::SIGNATURE, signing.sign(text.as_bytes())),
    ]
}

async fn send(
    channel: Channel,
    body: Bytes,
    headers: &[(&'static str, String)],
) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(body);
    for (k, v) in headers {
        req.metadata_mut()
            .insert(*k, MetadataValue::try_from(v.as_str()).unwrap());
    }
    grpc.unary(req, http::uri::PathAndQuery::from_static(PATH), Raw)
        .await
        .map(tonic::Response::into_inner)
}

/// What the bank did for an order: payments recorded and codes sent.
async fn traces(app: &TestApp, p: &Payer, order_no: &str) -> (i64, usize) {
    let payments = app
        .bank_ints(
            "SELECT COUNT(*) FROM payments WHERE order_no = $1",
            order_no,
        )
        .await[0];
    let sms = app
        .sms
        .clone()
        .list_sms(sim::ListSmsRequest {
            mobile: p.mobile.clone(),
            limit: 500,
        })
        .await
        .unwrap()
        .into_inner()
        .messages
        .iter()
        .filter(|m| m.order_no == order_no)
        .count();
    (payments, sms)
}

fn reason(s: &tonic::Status) -> String {
    s.get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

/// One attack: a RequestPaymentCode for `order`, sent as the platform's TLS identity and signed
/// with its key at the bank's time, but for what the attack changes.
struct Attack {
    what: &'static str,
    order: &'static str,
    want: (Code, &'static str),
    from: As,
    signed: bool,
    flip: bool,
    key: Option<PrivateKey>,
    signer: &'static str,
    at_ms: Option<i64>,
    nonce: Option<&'static str>,
}

impl Attack {
    fn new(what: &'static str, order: &'static str, want: (Code, &'static str)) -> Attack {
        Attack {
            what,
            order,
            want,
            from: As::Platform,
            signed: true,
            flip: false,
            key: None,
            signer: "platform",
            at_ms: None,
            nonce: None,
        }
    }
    fn unsigned(self) -> Attack {
        Attack {
            signed: false,
            ..self
        }
    }
    fn flipped(self) -> Attack {
        Attack { flip: true, ..self }
    }
    fn at(self, at_ms: i64) -> Attack {
        Attack {
            at_ms: Some(at_ms),
            ..self
        }
    }
    fn key(self, key: PrivateKey) -> Attack {
        Attack {
            key: Some(key),
            ..self
        }
    }
    fn signer(self, signer: &'static str) -> Attack {
        Attack { signer, ..self }
    }
    fn nonce(self, nonce: &'static str) -> Attack {
        Attack {
            nonce: Some(nonce),
            ..self
        }
    }
    fn from(self, from: As) -> Attack {
        Attack { from, ..self }
    }

    async fn send(self, app: &TestApp, p: &Payer, now: i64) -> Result<Bytes, tonic::Status> {
        let (body, frame) = request(p, self.order);
        let headers = if self.signed {
            signature(
                self.key.unwrap_or_else(|| platform_key(app)),
                self.signer,
                self.at_ms.unwrap_or(now),
                &self.nonce.map_or_else(sign::new_nonce, str::to_owned),
                &frame,
            )
        } else {
            Vec::new()
        };
        let body = if self.flip {
            let mut flipped = body.to_vec();
            let at = flipped
                .iter()
                .position(|&b| b == b'2')
                .expect("a 2 to flip");
            flipped[at] ^= 0x01;
            flipped.into()
        } else {
            body
        };
        send(channel(app, self.from).await, body, &headers).await
    }
}

#[tokio::test]
async fn every_attack_on_the_interbank_link_is_refused_and_changes_nothing() {
    attacks(Algorithm::Ed25519).await;
}

#[tokio::test]
async fn every_attack_is_refused_with_the_national_algorithms_too() {
    attacks(Algorithm::Sm2).await;
}

async fn attacks(algorithm: Algorithm) {
    let app = secured_with(Backend::Sqlite, algorithm)
        .await
        .expect("sqlite runs");
    let p = app.payer("攻击甲", "1000.00", "5000.00").await;
    let now = start_ms();

    // The honest call goes through: the test's signing is the real thing.
    let (body, frame) = request(&p, "ATK-OK");
    let signed = honest(&app, now, &frame);
    send(channel(&app, As::Platform).await, body.clone(), &signed)
        .await
        .expect("a signed call from the platform passes");
    assert_eq!(traces(&app, &p, "ATK-OK").await, (1, 1));

    // Replayed: the same bytes and headers again.
    let again = send(channel(&app, As::Platform).await, body, &signed).await;
    let s = again.expect_err("a replay");
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (Code::Unauthenticated, "NONCE_REUSED")
    );
    assert_eq!(traces(&app, &p, "ATK-OK").await, (1, 1), "no second code");

    // Each attack on its own order number, each refused with its reason.
    let attacks = [
        Attack::new(
            "unsigned",
            "ATK-1",
            (Code::Unauthenticated, "SIGNATURE_MISSING"),
        )
        .unsigned(),
        // A byte of the order number flipped after signing: ATK-2 arrives as ATK-3.
        Attack::new(
            "a flipped byte",
            "ATK-2",
            (Code::Unauthenticated, "SIGNATURE_INVALID"),
        )
        .flipped(),
        Attack::new(
            "301 s stale",
            "ATK-4",
            (Code::Unauthenticated, "TIMESTAMP_OUT_OF_WINDOW"),
        )
        .at(now - 301_000),
        Attack::new(
            "301 s ahead",
            "ATK-5",
            (Code::Unauthenticated, "TIMESTAMP_OUT_OF_WINDOW"),
        )
        .at(now + 301_000),
        Attack::new(
            "the wrong key",
            "ATK-6",
            (Code::Unauthenticated, "SIGNATURE_INVALID"),
        )
        .key(keys::generate(algorithm)),
        Attack::new(
            "signed as the bank",
            "ATK-7",
            (Code::Unauthenticated, "SIGNER_UNKNOWN"),
        )
        .signer("bank"),
        Attack::new(
            "a malformed nonce",
            "ATK-11",
            (Code::Unauthenticated, "SIGNATURE_MALFORMED"),
        )
        .nonce("short"),
        // The TLS handshake passes without one (customers use it); the interbank call does not.
        Attack::new(
            "no client certificate",
            "ATK-8",
            (Code::Unauthenticated, "CLIENT_CERT_REQUIRED"),
        )
        .from(As::Nobody),
        Attack::new(
            "the bank's own certificate",
            "ATK-9",
            (Code::PermissionDenied, "CLIENT_CERT_NOT_PEER"),
        )
        .from(As::Bank),
    ];
    for attack in attacks {
        let (what, order, (code, want)) = (attack.what, attack.order, attack.want);
        let got = attack.send(&app, &p, now).await;
        let s = got.expect_err(what);
        assert_eq!(
            (s.code(), reason(&s).as_str()),
            (code, want),
            "{what}: {s:?}"
        );
        for o in [order, "ATK-3"] {
            assert_eq!(traces(&app, &p, o).await, (0, 0), "{what}: no trace of {o}");
        }
        let audit = app.audit_lines("bank").await;
        assert!(
            audit
                .iter()
                .any(|(op, outcome)| op == "RequestPaymentCode" && outcome == want),
            "{what}: an audit line for {want}: {audit:?}"
        );
    }

    // A certificate from a foreign CA: the handshake itself fails.
    let got = Attack::new("a foreign CA", "ATK-10", (Code::Unknown, ""))
        .from(As::ForeignCa)
        .send(&app, &p, now)
        .await;
    let s = got.expect_err("a foreign CA");
    assert!(
        format!("{s:?}").contains("UnknownCA"),
        "the handshake fails: {s:?}"
    );
    assert_eq!(traces(&app, &p, "ATK-10").await, (0, 0));

    // After all that, the honest path still works.
    let (body, frame) = request(&p, "ATK-LAST");
    let headers = honest(&app, now, &frame);
    send(channel(&app, As::Platform).await, body, &headers)
        .await
        .expect("the link still works");
    assert_eq!(traces(&app, &p, "ATK-LAST").await, (1, 1));
}

#[tokio::test]
async fn a_replay_to_another_bank_process_is_refused_too() {
    let Some(mut app) = TestApp::spawn_with(
        Backend::Postgres,
        Options {
            secure: Secure::Both,
            bank_exe: Some(env!("CARGO_BIN_EXE_e2e-bank-node").into()),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let p = app.payer("攻击乙", "1000.00", "5000.00").await;
    let other = app.another_bank().await;
    let now = chrono::Utc::now().timestamp_millis();
    let (body, frame) = request(&p, "ATK-X");
    let headers = honest(&app, now, &frame);
    send(channel(&app, As::Platform).await, body.clone(), &headers)
        .await
        .expect("the first delivery");
    let second = channel_to(&app, &format!("https://{}", other.addr), As::Platform);
    let s = send(second, body, &headers).await.expect_err("a replay");
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (Code::Unauthenticated, "NONCE_REUSED")
    );
    assert_eq!(traces(&app, &p, "ATK-X").await, (1, 1));
    app.bank_process().kill();
    drop(other);
}

async fn every_flow_crosses_the_secured_link(backend: Backend, algorithm: Algorithm) {
    let Some(app) = secured_with(backend, algorithm).await else {
        return;
    };
    // Sign-up (bank → platform ConfirmSignUp), activation and payment (platform → bank).
    let p = app.payer("安全甲", "1000.00", "5000.00").await;
    let paid = app.pay_now(&p, "SEC-1", "12.34").await.unwrap();
    assert_eq!(paid.status, platform::OrderStatus::Success as i32);
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        shared::Money::parse("987.66").unwrap()
    );
    // A refund batch pushed as a stream, processed, and its result file streamed back.
    app.upload(&e2e_tests::batch_file("SEC-B", &[("SR1", "SEC-1", "2.34")]))
        .await
        .unwrap();
    app.run_refund_job().await;
    let result = app.fetch_result("SEC-B").await.unwrap();
    assert_eq!(
        result.status,
        platform::PlatformRefundBatchStatus::Done as i32,
        "{result:?}"
    );
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        shared::Money::parse("990.00").unwrap(),
        "refunded 2.34"
    );
    // Real-time reconciliation pulls the bank's successful payments as a stream.
    app.recon
        .clone()
        .run_realtime_recon(platform::RunRealtimeReconRequest {})
        .await
        .expect("real-time reconciliation over the secured link");
    // Nothing was refused at either edge.
    for node in ["bank", "platform"] {
        let refusals: Vec<_> = app
            .audit_lines(node)
            .await
            .into_iter()
            .filter(|(_, outcome)| {
                outcome.starts_with("SIGNATURE")
                    || outcome.starts_with("CLIENT_CERT")
                    || outcome == "NONCE_REUSED"
                    || outcome == "TIMESTAMP_OUT_OF_WINDOW"
            })
            .collect();
        assert!(refusals.is_empty(), "{node}: {refusals:?}");
    }
}

#[tokio::test]
async fn every_flow_crosses_the_secured_link_sqlite() {
    every_flow_crosses_the_secured_link(Backend::Sqlite, Algorithm::Ed25519).await;
}

#[tokio::test]
async fn every_flow_crosses_a_link_signed_with_sm2() {
    every_flow_crosses_the_secured_link(Backend::Sqlite, Algorithm::Sm2).await;
}

#[tokio::test]
async fn every_flow_crosses_the_secured_link_postgres() {
    every_flow_crosses_the_secured_link(Backend::Postgres, Algorithm::Ed25519).await;
}

#[tokio::test]
async fn a_caller_that_cannot_verify_the_answer_takes_the_outcome_as_unknown() {
    // The platform trusts a bank key that is not the bank's: the bank accepts the platform's
    // signed calls, and the platform refuses every answer.
    let app = secured(Backend::Sqlite).await.expect("sqlite runs");
    let p = app.payer("安全乙", "1000.00", "5000.00").await;
    let dir = app.security_dir();
    let impostor = keys::generate(Algorithm::Ed25519);
    std::fs::write(
        dir.join("bank-sign.pub"),
        impostor.public().to_pem().unwrap(),
    )
    .unwrap();
    // A second platform on the same database, with the swapped key, serving the customer.
    let platform_cfg = platform_node::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("platform2"),
        ..app.platform_config().clone()
    };
    let node = platform_node::build(
        &platform_cfg,
        shared::clock::Clock::frozen(START.parse().unwrap()),
    )
    .await
    .unwrap();
    let url = format!("https://{}", node.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(node.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(url)
        .unwrap()
        .tls_config(shared::grpc::guard::client_tls(
            &std::fs::read(dir.join("ca.pem")).unwrap(),
        ))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut pay = platform::pay_service_client::PayServiceClient::new(channel);
    let got = pay
        .start_payment(platform::StartPaymentRequest {
            session_token: p.token.clone(),
            order_no: "SEC-U".into(),
            amount: "1.00".into(),
            pay_password: PAY_PASSWORD.into(),
            signup_id: String::new(),
            description: "test".into(),
        })
        .await;
    // The bank did send the code (it accepted the call); the platform could not trust the
    // answer, so it does not claim the code was sent.
    let (payments, sms) = traces(&app, &p, "SEC-U").await;
    assert_eq!((payments, sms), (1, 1));
    let s = got.expect_err("an unverified answer is not taken");
    assert_eq!(s.code(), Code::Unavailable, "{s:?}");
    assert!(
        s.message().contains("could not be verified"),
        "the outcome is unknown because the answer did not verify: {s:?}"
    );
    let _ = stop.send(());
    served.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_brute_forced_payment_password_locks_payment() {
    let app = secured(Backend::Sqlite).await.expect("sqlite runs");
    let p = app.payer("安全丙", "1000.00", "5000.00").await;
    let start = |order: &str, password: &str| {
        let mut pay = app.pay.clone();
        let req = platform::StartPaymentRequest {
            session_token: p.token.clone(),
            order_no: order.to_owned(),
            amount: "1.00".into(),
            pay_password: password.to_owned(),
            signup_id: String::new(),
            description: "test".into(),
        };
        async move { pay.start_payment(req).await }
    };
    for (i, guess) in ["000000", "111111", "222222", "333333", "444444"]
        .iter()
        .enumerate()
    {
        let s = start(&format!("BF-{i}"), guess).await.expect_err("a guess");
        assert_eq!(reason(&s), "PAY_PASSWORD_WRONG", "guess {i}: {s:?}");
    }
    // Locked: even the right password is refused, and nothing reaches the bank.
    let s = start("BF-RIGHT", PAY_PASSWORD).await.expect_err("locked");
    assert_eq!(
        (s.code(), reason(&s).as_str()),
        (Code::FailedPrecondition, "PAY_LOCKED")
    );
    assert_eq!(traces(&app, &p, "BF-RIGHT").await, (0, 0));
    // 30 minutes of business time later (and logged in again), the right password works.
    app.clock(sim::set_clock_request::Move::AdvanceMs(30 * 60 * 1000 + 1))
        .await;
    let token = app.login(&p.customer).await;
    app.pay
        .clone()
        .start_payment(platform::StartPaymentRequest {
            session_token: token,
            order_no: "BF-LATER".into(),
            amount: "1.00".into(),
            pay_password: PAY_PASSWORD.into(),
            signup_id: String::new(),
            description: "test".into(),
        })
        .await
        .expect("unlocked after 30 minutes");
    assert_eq!(traces(&app, &p, "BF-LATER").await, (1, 1));
}

#[tokio::test]
async fn a_brute_forced_one_time_code_fails_the_payment() {
    let app = secured(Backend::Sqlite).await.expect("sqlite runs");
    let p = app.payer("安全丁", "1000.00", "5000.00").await;
    app.start(&p, "BF-OTP", "5.00").await.unwrap();
    let code = app.code_for(&p, "BF-OTP").await;
    let guesses: Vec<String> = (1..=3)
        .map(|i| {
            let n = (code.parse::<u32>().unwrap() + i * 111_111) % 1_000_000;
            format!("{n:06}")
        })
        .collect();
    let mut reasons = Vec::new();
    for g in &guesses {
        let s = app.confirm(&p, "BF-OTP", g).await.expect_err("a guess");
        reasons.push(reason(&s));
    }
    assert_eq!(reasons, ["OTP_WRONG", "OTP_WRONG", "OTP_TRIES_EXCEEDED"]);
    // The right code no longer works; the card was never debited.
    let s = app.confirm(&p, "BF-OTP", &code).await;
    let order = app.order("BF-OTP").await;
    assert_eq!(order.status, platform::OrderStatus::Failed as i32, "{s:?}");
    assert_eq!(
        app.balance(&p.customer.card_number).await,
        shared::Money::parse("1000.00").unwrap()
    );
}

#[tokio::test]
async fn each_protection_works_on_its_own() {
    for secure in [Secure::TlsOnly, Secure::SigningOnly] {
        let app = TestApp::spawn_with(
            Backend::Sqlite,
            Options {
                secure,
                frozen_at: Some(START.parse().unwrap()),
                ..Options::default()
            },
        )
        .await
        .expect("sqlite runs");
        assert_eq!(app.bank_url().starts_with("https://"), secure.tls());
        let p = app.payer("单项", "1000.00", "5000.00").await;
        let paid = app.pay_now(&p, "ONE-1", "1.00").await.unwrap();
        assert_eq!(
            paid.status,
            platform::OrderStatus::Success as i32,
            "{secure:?}"
        );

        // Unsigned, as the platform's TLS identity (or over plain text): only signing refuses.
        let (body, _) = request(&p, "ONE-2");
        let towards = if secure.tls() {
            channel(&app, As::Platform).await
        } else {
            Channel::from_shared(app.bank_url()).unwrap().connect_lazy()
        };
        let got = send(towards, body, &[]).await;
        match secure {
            Secure::TlsOnly => {
                got.expect("TLS alone asks for the certificate, not a signature");
                assert_eq!(traces(&app, &p, "ONE-2").await, (1, 1));
            }
            _ => {
                let s = got.expect_err("signing alone asks for a signature");
                assert_eq!(reason(&s), "SIGNATURE_MISSING");
                assert_eq!(traces(&app, &p, "ONE-2").await, (0, 0));
            }
        }
        // With TLS on, no client certificate is refused whatever the signature.
        if secure.tls() {
            let (body, _) = request(&p, "ONE-3");
            let s = send(channel(&app, As::Nobody).await, body, &[])
                .await
                .expect_err("no certificate");
            assert_eq!(reason(&s), "CLIENT_CERT_REQUIRED");
            assert_eq!(traces(&app, &p, "ONE-3").await, (0, 0));
        }
    }
}
