//! The library behind `ibsim`: fixtures (`fixtures`, with the demo data), the scenario runner
//! (`scenario`), the explorer, the bench, the console, and the clients the subcommands use. The
//! nodes themselves are started by the `pair` crate.

pub mod bench;
pub mod console;
pub mod explore;
pub mod fixtures;
pub mod names;
pub mod scenario;
pub mod transfer;
pub mod up;

use anyhow::Context;
use tonic::transport::Channel;

/// What `connect` shows `https` nodes (`--ca`, `--identity`), set once at start.
static CREDENTIALS: std::sync::OnceLock<shared::grpc::guard::ClientCredentials> =
    std::sync::OnceLock::new();

/// Trust their CA and show their identity to nodes served over TLS; the first call wins.
pub fn use_credentials(credentials: shared::grpc::guard::ClientCredentials) {
    let _ = CREDENTIALS.set(credentials);
}

/// A channel to a node, connected (3 s to connect); over TLS for an `https` URL, with the
/// credentials given to [`use_credentials`].
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    let mut ep = Channel::from_shared(url.to_owned())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(std::time::Duration::from_secs(3));
    if url.starts_with("https://") {
        let credentials = CREDENTIALS.get().with_context(|| {
            format!("{url} is served over TLS: give the CA with --ca (ibsim certs writes ca.pem)")
        })?;
        ep = ep.tls_config(credentials.tls())?;
    }
    ep.connect()
        .await
        .with_context(|| format!("cannot reach {url}: is `ibsim up` running?"))
}
