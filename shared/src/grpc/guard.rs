//! The security of the interbank calls at the wire (docs/security.md): mutual TLS
//! configuration, and the two tower layers that sign and check every interbank message.
//!
//! - [`GuardLayer`], on a node's server: an interbank call (see
//!   [`crate::security::is_interbank`]) must come with the peer's client certificate when TLS
//!   is on, and signed by the peer, fresh and never seen, when signing is on; otherwise it is
//!   refused before any service sees it (UNAUTHENTICATED or PERMISSION_DENIED with a reason,
//!   an audit line, nothing else). Its answer is signed, bound to the request's nonce.
//! - The same layer, with TLS on, admits a call of a service that needs a role (the teller's,
//!   the staff's, the simulator operator's: [`super::services::role_for`]) only with a client
//!   certificate valid for the role's name; otherwise UNAUTHENTICATED / ROLE_CERT_REQUIRED or
//!   PERMISSION_DENIED / ROLE_NOT_ALLOWED, an audit line (subject `role`), nothing else.
//! - [`Signed`], on a node's channel to its peer: signs each interbank request and checks the
//!   answer's signature; an answer that does not verify fails the call with DATA_LOSS /
//!   RESPONSE_UNVERIFIED, which the caller reads as "no answer" (the outcome is unknown).
//!
//! Only the bytes on the wire are signed: the first message of a request as framed, the whole
//! body of an answer, so the layers never decode a message.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use super::services::role_for;
use crate::clock::Clock;
use crate::error::Refusal;
use crate::node::Node;
use crate::security::sign::{self, SignatureRefusal, Signing, StatusParts};
use crate::security::{Institution, Security, TlsFiles, is_interbank};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest first message the layers read before passing a call on: the limit on a decoded
/// message.
pub const FIRST_MESSAGE_MAX_BYTES: usize = super::MESSAGE_MAX_BYTES;

/// The server's TLS: this node's identity, and client certificates checked against the CA
/// when shown. They are optional at the handshake so that customers and testers reach the
/// public services with server-side TLS alone; [`GuardLayer`] requires the peer's on every
/// interbank call. A certificate from another CA fails the handshake.
pub fn server_tls(files: &TlsFiles) -> ServerTlsConfig {
    ServerTlsConfig::new()
        .identity(Identity::from_pem(&files.cert_pem, &files.key_pem))
        .client_ca_root(Certificate::from_pem(&files.ca_pem))
        .client_auth_optional(true)
}

/// A node's TLS towards its peer: the peer's certificate must chain to the CA and be valid
/// for the peer institution's name (`bank` or `platform`), whatever address is dialled; this
/// node shows its own certificate.
pub fn peer_tls(files: &TlsFiles, peer: Institution) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&files.ca_pem))
        .identity(Identity::from_pem(&files.cert_pem, &files.key_pem))
        .domain_name(peer.name())
}

/// A tester's TLS towards a node: the node's certificate must chain to the CA in `ca_pem`
/// and be valid for the address dialled (`localhost` or 127.0.0.1). No client certificate: a
/// customer's view, which reaches only the customer's services of a secured node.
pub fn client_tls(ca_pem: &[u8]) -> ClientTlsConfig {
    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem))
}

/// What a tool shows a secured node: the CA it trusts and, if it has one, its client
/// certificate and key (a role identity of `ibsim certs`, by default the tester's, which carries
/// every role).
#[derive(Clone)]
pub struct ClientCredentials {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientCredentials {
    /// The CA in the file `ca`, and the identity `identity` (a certificate file, its key beside
    /// it with the extension `.key`); without `identity`, the tester's (`tester.pem`) beside the
    /// CA when it is there.
    pub fn load(ca: &std::path::Path, identity: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let ca_pem =
            std::fs::read(ca).with_context(|| format!("cannot read the CA {}", ca.display()))?;
        let beside = ca
            .parent()
            .map(|d| d.join(format!("{}.pem", crate::security::certs::TESTER)));
        let cert = match identity {
            Some(p) => Some(p.to_path_buf()),
            None => beside.filter(|p| p.exists()),
        };
        let identity = match cert {
            None => None,
            Some(cert) => {
                let key = cert.with_extension("key");
                Some((
                    std::fs::read(&cert)
                        .with_context(|| format!("cannot read {}", cert.display()))?,
                    std::fs::read(&key)
                        .with_context(|| format!("cannot read {}", key.display()))?,
                ))
            }
        };
        Ok(ClientCredentials { ca_pem, identity })
    }

    /// The credentials in the directory `ibsim certs` wrote: its CA and the tester's identity.
    pub fn tester_in(dir: &std::path::Path) -> anyhow::Result<Self> {
        ClientCredentials::load(&dir.join(crate::security::certs::CA_CERT), None)
    }

    /// The TLS configuration they make.
    pub fn tls(&self) -> ClientTlsConfig {
        let tls = client_tls(&self.ca_pem);
        match &self.identity {
            None => tls,
            Some((cert, key)) => tls.identity(Identity::from_pem(cert, key)),
        }
    }
}

/// What the guard needs of its node, behind a pointer: the nonce book and the audit trail.
/// Every [`Node`] is one.
pub trait GuardNode: Send + Sync + 'static {
    /// Records `nonce` from `signer`, stamped `at_ms`; `false` when it was recorded already
    /// (by any process of this institution). Nonces stamped before `forget_before_ms` may be
    /// forgotten.
    fn remember_nonce<'a>(
        &'a self,
        signer: &'a str,
        nonce: &'a str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;

    /// Writes the audit line of a call refused at the edge (about `subject`: `interbank` or
    /// `role`), and counts it.
    fn refused<'a>(
        &'a self,
        operation: &'a str,
        subject: &'a str,
        refusal: &'a SignatureRefusal,
    ) -> BoxFuture<'a, ()>;
}

impl<N: Node> GuardNode for N {
    fn remember_nonce<'a>(
        &'a self,
        signer: &'a str,
        nonce: &'a str,
        at_ms: i64,
        forget_before_ms: i64,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(
            self.db()
                .remember_nonce(signer, nonce, at_ms, forget_before_ms),
        )
    }

    fn refused<'a>(
        &'a self,
        operation: &'a str,
        subject: &'a str,
        refusal: &'a SignatureRefusal,
    ) -> BoxFuture<'a, ()> {
        Box::pin(super::refused_at_edge(self, operation, subject, refusal))
    }
}

/// The server layer; see the module documentation. Off (passing every call through) unless
/// the node's security turns TLS or signing on.
#[derive(Clone, Default)]
pub struct GuardLayer {
    guard: Option<Arc<Guard>>,
}

struct Guard {
    me: Institution,
    domain: &'static str,
    mtls: bool,
    signing: Option<Arc<Signing>>,
    clock: Clock,
    node: Arc<dyn GuardNode>,
    calls: AtomicU64,
}

/// Nonces are purged of old ones once every this many accepted calls.
const PURGE_EVERY: u64 = 256;

impl GuardLayer {
    /// The guard of `node`, as `security` turns it on.
    pub fn new<N: Node>(node: &N, security: &Security) -> GuardLayer {
        if security.tls.is_none() && security.signing.is_none() {
            return GuardLayer::default();
        }
        GuardLayer {
            guard: Some(Arc::new(Guard {
                me: N::INSTITUTION,
                domain: N::DOMAIN,
                mtls: security.tls.is_some(),
                signing: security.signing.clone(),
                clock: node.clock().clone(),
                node: Arc::new(node.clone()),
                calls: AtomicU64::new(0),
            })),
        }
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guarded<S>;
    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// A service behind [`GuardLayer`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: Option<Arc<Guard>>,
}

impl<S, B> tower::Service<http::Request<Body>> for Guarded<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        if let Some(guard) = self.guard.clone()
            && let Err(refusal) = guard.check_role(&req, &path)
        {
            return Box::pin(async move {
                guard.refuse(&path, "role", &refusal).await;
                Ok(super::status(guard.domain, &refusal).into_http::<Body>())
            });
        }
        let guard = self.guard.clone().filter(|_| is_interbank(&path));
        let Some(guard) = guard else {
            let work = inner.call(req);
            return Box::pin(async move { Ok(work.await?.map(Body::new)) });
        };
        Box::pin(async move {
            let nonce = header(&req, sign::NONCE)
                .filter(|n| sign::nonce_ok(n))
                .unwrap_or_default();
            match guard.admit(req, &path).await {
                Ok(req) => {
                    let answer = inner.call(req).await?;
                    Ok(guard.sign_answer(answer, &path, &nonce))
                }
                Err(refusal) => {
                    guard.refuse(&path, "interbank", &refusal).await;
                    let status = super::status(guard.domain, &refusal);
                    Ok(guard.sign_answer(status.into_http::<Body>(), &path, &nonce))
                }
            }
        })
    }
}

/// Whether the client certificate of `req` (chained to the CA by the TLS handshake) is valid for
/// `name`; `None` when the caller showed none.
fn client_certificate_names<B>(req: &http::Request<B>, name: &str) -> Option<bool> {
    let leaf = req
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|i| i.peer_certs())?
        .first()
        .cloned()?;
    let Ok(cert) = webpki::EndEntityCert::try_from(&leaf) else {
        return Some(false);
    };
    let Ok(name) = rustls_pki_types::ServerName::try_from(name) else {
        return Some(false);
    };
    Some(cert.verify_is_valid_for_subject_name(&name).is_ok())
}

/// A header's value as text.
fn header<B>(req: &http::Request<B>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Guard {
    /// Checks an interbank call; passes it on (with its body as it came) or says why not.
    async fn admit(
        &self,
        req: http::Request<Body>,
        path: &str,
    ) -> Result<http::Request<Body>, SignatureRefusal> {
        if self.mtls {
            self.check_client_certificate(&req)?;
        }
        let Some(signing) = &self.signing else {
            return Ok(req);
        };
        let signature = header(&req, sign::SIGNATURE);
        let signer = header(&req, sign::SIGNER);
        let timestamp = header(&req, sign::TIMESTAMP);
        let nonce = header(&req, sign::NONCE);
        let (Some(signature), Some(signer), Some(timestamp), Some(nonce)) =
            (signature, signer, timestamp, nonce)
        else {
            return Err(SignatureRefusal::Missing);
        };
        if signer != self.me.peer().name() {
            return Err(SignatureRefusal::SignerUnknown);
        }
        let timestamp: i64 = timestamp
            .parse()
            .map_err(|_| SignatureRefusal::Malformed("the timestamp is not milliseconds"))?;
        if !sign::nonce_ok(&nonce) {
            return Err(SignatureRefusal::Malformed(
                "the nonce is not 16 to 64 letters, digits, - or _",
            ));
        }
        let (parts, body) = req.into_parts();
        let (first, body) = first_message(body).await?;
        let text = sign::request_text(&signer, path, timestamp, &nonce, &sign::digest(&first));
        signing.peer_signed(text.as_bytes(), &signature)?;
        let now = self.clock.now_ms();
        if timestamp.abs_diff(now) > sign::WINDOW_MS.unsigned_abs() {
            return Err(SignatureRefusal::Stale);
        }
        let purge = self
            .calls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY);
        let forget_before = if purge {
            now.saturating_sub(sign::WINDOW_MS)
        } else {
            i64::MIN
        };
        match self
            .node
            .remember_nonce(&signer, &nonce, timestamp, forget_before)
            .await
        {
            Ok(true) => Ok(http::Request::from_parts(parts, body)),
            Ok(false) => Err(SignatureRefusal::Replayed),
            Err(e) => {
                tracing::error!(error = ?e, "cannot record a nonce");
                Err(SignatureRefusal::Unrecorded)
            }
        }
    }

    fn check_client_certificate<B>(&self, req: &http::Request<B>) -> Result<(), SignatureRefusal> {
        match client_certificate_names(req, self.me.peer().name()) {
            None => Err(SignatureRefusal::NoClientCertificate),
            Some(false) => Err(SignatureRefusal::NotThePeer),
            Some(true) => Ok(()),
        }
    }

    /// With TLS on, a call of a service that needs a role ([`role_for`]) must come with a client
    /// certificate carrying it.
    fn check_role<B>(&self, req: &http::Request<B>, path: &str) -> Result<(), SignatureRefusal> {
        let service = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let Some(role) = role_for(service).filter(|_| self.mtls) else {
            return Ok(());
        };
        match client_certificate_names(req, role.name()) {
            None => Err(SignatureRefusal::RoleCertificateMissing(role.name())),
            Some(false) => Err(SignatureRefusal::RoleNotHeld(role.name())),
            Some(true) => Ok(()),
        }
    }

    /// The audit line, count and log line of a call refused here.
    async fn refuse(&self, path: &str, subject: &str, refusal: &SignatureRefusal) {
        let operation = path.rsplit('/').next().unwrap_or_default();
        tracing::warn!(
            operation,
            subject,
            reason = refusal.reason(),
            "call refused at the edge"
        );
        self.node.refused(operation, subject, refusal).await;
    }

    /// Signs an answer to the call with nonce `nonce` (when signing is on).
    fn sign_answer<B>(
        &self,
        answer: http::Response<B>,
        path: &str,
        nonce: &str,
    ) -> http::Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(signing) = self.signing.clone() else {
            return answer.map(Body::new);
        };
        let seal = Seal {
            signing,
            path: path.to_owned(),
            nonce: nonce.to_owned(),
        };
        let (mut parts, body) = answer.into_parts();
        let body = Body::new(body);
        if parts.headers.contains_key("grpc-status") {
            // Trailers-only: the status is in the headers, and there is no body.
            seal.seal(&sign::digest(b""), &mut parts.headers);
            return http::Response::from_parts(parts, body);
        }
        http::Response::from_parts(
            parts,
            Body::new(Hashed::new(body, move |digest, trailers| {
                seal.seal(digest, trailers);
                Ok(())
            })),
        )
    }
}

/// The status values an answer's signature covers, from its trailers (or trailers-only
/// headers).
fn status_parts(map: &http::HeaderMap) -> StatusParts {
    let get = |name: &str| {
        map.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    StatusParts {
        code: get("grpc-status"),
        message: get("grpc-message"),
        details: get("grpc-status-details-bin"),
    }
}

/// What signs one answer.
struct Seal {
    signing: Arc<Signing>,
    path: String,
    nonce: String,
}

impl Seal {
    /// Signs an answer whose body has digest `body_sha256` and whose status is in `map` (its
    /// trailers, or its trailers-only headers), and puts the signature there.
    fn seal(&self, body_sha256: &str, map: &mut http::HeaderMap) {
        let me = self.signing.me().name();
        let text =
            sign::response_text(me, &self.path, &self.nonce, body_sha256, &status_parts(map));
        let signature = self.signing.sign(text.as_bytes());
        map.insert(
            sign::SIGNER,
            http::HeaderValue::from_static(self.signing.me().name()),
        );
        if let Ok(v) = http::HeaderValue::from_str(&signature) {
            map.insert(sign::SIGNATURE, v);
        }
    }
}

/// A body hashed as it passes. At its end, `finish` gets the digest (SHA-256, hex) and the
/// trailers (empty ones if the body ended without any) and may add to them or fail the body:
/// the server seals an answer this way, the caller checks one.
struct Hashed<F> {
    inner: Body,
    hasher: Sha256,
    finish: Option<F>,
}

impl<F> Hashed<F>
where
    F: FnOnce(&str, &mut http::HeaderMap) -> Result<(), Status>,
{
    fn new(inner: Body, finish: F) -> Hashed<F> {
        Hashed {
            inner,
            hasher: Sha256::new(),
            finish: Some(finish),
        }
    }

    fn end(&mut self, mut trailers: http::HeaderMap) -> Result<Frame<Bytes>, Status> {
        if let Some(finish) = self.finish.take() {
            let digest = hex::encode(std::mem::take(&mut self.hasher).finalize());
            finish(&digest, &mut trailers)?;
        }
        Ok(Frame::trailers(trailers))
    }
}

impl<F> HttpBody for Hashed<F>
where
    F: FnOnce(&str, &mut http::HeaderMap) -> Result<(), Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) if this.finish.is_some() => {
                return Poll::Ready(Some(this.end(http::HeaderMap::new())));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        let frame = match frame.into_data() {
            Ok(data) => {
                this.hasher.update(&data);
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            Err(frame) => frame,
        };
        Poll::Ready(Some(match frame.into_trailers() {
            Ok(trailers) => this.end(trailers),
            Err(other) => Ok(other),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.finish.is_none() && self.inner.is_end_stream()
    }
}

/// Reads a body up to the end of its first gRPC message (or its end, if shorter): the bytes of
/// that message as framed, and the body to pass on (those bytes again, then the rest).
async fn first_message(body: Body) -> Result<(Bytes, Body), SignatureRefusal> {
    let read = read_first(body, FIRST_MESSAGE_MAX_BYTES + 5).await;
    match read.first {
        Ok(first) => Ok((first, read.body)),
        Err(FirstUnread::TooBig) => Err(SignatureRefusal::Malformed(
            "the first message is over 4 MiB",
        )),
        Err(FirstUnread::BrokeOff) => {
            Err(SignatureRefusal::Malformed("the request body broke off"))
        }
    }
}

/// Why [`read_first`] did not read a first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstUnread {
    /// It is over the size asked for.
    TooBig,
    /// The body failed before its end.
    BrokeOff,
}

impl std::fmt::Display for FirstUnread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FirstUnread::TooBig => "too big to show",
            FirstUnread::BrokeOff => "the body broke off",
        })
    }
}

/// A body's first message, and the body as it came (whatever was read, then the rest).
pub struct FirstRead {
    /// The first gRPC message as framed (or all of a shorter body), or why not.
    pub first: Result<Bytes, FirstUnread>,
    /// The body to pass on, unchanged.
    pub body: Body,
}

/// Reads a body up to the end of its first gRPC message, framed at most `max_bytes` (prefix
/// included); the body passed on is the same either way.
pub async fn read_first(mut body: Body, max_bytes: usize) -> FirstRead {
    let mut read = BytesMut::new();
    let mut end = None;
    let wanted = |read: &[u8]| {
        (read.len() >= 5)
            .then(|| 5 + u32::from_be_bytes([read[1], read[2], read[3], read[4]]) as usize)
    };
    let mut unread = None;
    loop {
        if let Some(n) = wanted(&read) {
            if n > max_bytes {
                unread = Some(FirstUnread::TooBig);
                break;
            }
            if read.len() >= n {
                break;
            }
        }
        match body.frame().await {
            None => break,
            Some(Err(e)) => {
                unread = Some(FirstUnread::BrokeOff);
                end = Some(Err(e));
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => read.extend_from_slice(&data),
                Err(frame) => {
                    end = frame.into_trailers().ok().map(Ok);
                    break;
                }
            },
        }
    }
    let read = read.freeze();
    let first = match (unread, wanted(&read)) {
        (Some(why), _) => Err(why),
        (None, Some(n)) if n <= read.len() => Ok(read.slice(..n)),
        (None, _) => Ok(read.clone()),
    };
    let rest = Prefixed {
        prefix: (!read.is_empty()).then_some(read),
        end,
        inner: body,
    };
    FirstRead {
        first,
        body: Body::new(rest),
    }
}

/// Bytes read already, then the rest of a body.
struct Prefixed {
    prefix: Option<Bytes>,
    /// The trailers, or the failure, that ended the body while it was read.
    end: Option<Result<http::HeaderMap, Status>>,
    inner: Body,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if let Some(end) = self.end.take() {
            return Poll::Ready(Some(end.map(Frame::trailers)));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

/// A node's channel to its peer with [`Signed`] on top (see [`super::peer_channel`]).
#[derive(Clone)]
pub struct Signed<S> {
    inner: S,
    signer: Option<Arc<Signer>>,
}

struct Signer {
    signing: Arc<Signing>,
    clock: Clock,
    domain: &'static str,
}

impl<S> Signed<S> {
    /// The channel below.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `inner`, each interbank request signed by `signing` stamped by `clock`, each answer
    /// checked (an answer refused is in ErrorInfo domain `domain`, the caller's); `None`:
    /// passes calls through.
    pub fn new(
        inner: S,
        signing: Option<Arc<Signing>>,
        clock: Clock,
        domain: &'static str,
    ) -> Signed<S> {
        Signed {
            inner,
            signer: signing.map(|signing| {
                Arc::new(Signer {
                    signing,
                    clock,
                    domain,
                })
            }),
        }
    }
}

impl<S, B> tower::Service<http::Request<Body>> for Signed<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<http::Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let Some(signer) = self.signer.clone().filter(|_| is_interbank(&path)) else {
            let work = inner.call(req);
            return Box::pin(async move { Ok(work.await.map_err(Into::into)?.map(Body::new)) });
        };
        Box::pin(async move {
            let nonce = sign::new_nonce();
            let (mut parts, body) = req.into_parts();
            let (first, body) = first_message(body)
                .await
                .map_err(|r| Box::new(Status::internal(r.to_string())) as BoxError)?;
            let timestamp = signer.clock.now_ms();
            let signature = signer.signing.sign(
                sign::request_text(
                    signer.signing.me().name(),
                    &path,
                    timestamp,
                    &nonce,
                    &sign::digest(&first),
                )
                .as_bytes(),
            );
            let h = &mut parts.headers;
            h.insert(
                sign::SIGNER,
                http::HeaderValue::from_static(signer.signing.me().name()),
            );
            for (name, value) in [
                (sign::TIMESTAMP, timestamp.to_string()),
                (sign::NONCE, nonce.clone()),
                (sign::SIGNATURE, signature),
            ] {
                if let Ok(v) = http::HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
            let answer = inner
                .call(http::Request::from_parts(parts, body))
                .await
                .map_err(Into::into)?;
            let check = Check {
                signing: signer.signing.clone(),
                domain: signer.domain,
                path,
                nonce,
            };
            let (parts, body) = answer.into_parts();
            let body = Body::new(body);
            if parts.headers.contains_key("grpc-status") {
                check.verify(&parts.headers, &sign::digest(b""))?;
                return Ok(http::Response::from_parts(parts, body));
            }
            Ok(http::Response::from_parts(
                parts,
                Body::new(Hashed::new(body, move |digest, trailers| {
                    check.verify(trailers, digest)
                })),
            ))
        })
    }
}

/// What checks one answer.
struct Check {
    signing: Arc<Signing>,
    domain: &'static str,
    path: String,
    nonce: String,
}

impl Check {
    /// Checks the signature in `map` (trailers, or trailers-only headers) over a body with
    /// digest `body_sha256`.
    fn verify(&self, map: &http::HeaderMap, body_sha256: &str) -> Result<(), Status> {
        let unverified = |why: &'static str| {
            let refusal = SignatureRefusal::AnswerUnverified(why);
            tracing::warn!(path = %self.path, reason = refusal.reason(), "{refusal}");
            super::status(self.domain, &refusal)
        };
        let peer = self.signing.me().peer().name();
        let signer = map.get(sign::SIGNER).and_then(|v| v.to_str().ok());
        let Some(signature) = map.get(sign::SIGNATURE).and_then(|v| v.to_str().ok()) else {
            return Err(unverified("it is not signed"));
        };
        if signer != Some(peer) {
            return Err(unverified("it is not signed by the peer institution"));
        }
        let text = sign::response_text(
            peer,
            &self.path,
            &self.nonce,
            body_sha256,
            &status_parts(map),
        );
        self.signing
            .peer_signed(text.as_bytes(), signature)
            .map_err(|_| unverified("its signature does not verify"))
    }
}
