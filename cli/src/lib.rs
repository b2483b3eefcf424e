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

/// The CA `connect` trusts for `https` nodes (`--ca`), set once at start.
static CA: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Trust the CA certificate `pem` (PEM) for nodes served over TLS; the first call wins.
pub fn trust_ca(pem: Vec<u8>) {
    let _ = CA.set(pem);
}

/// A channel to a node, connected (3 s to connect); over TLS for an `https` URL, trusting the
/// CA given to [`trust_ca`].
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    let mut ep = Channel::from_shared(url.to_owned())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(std::time::Duration::from_secs(3));
    if url.starts_with("https://") {
        let ca = CA.get().with_context(|| {
            format!("{url} is served over TLS: give the CA with --ca (ibsim certs writes ca.pem)")
        })?;
        ep = ep.tls_config(shared::grpc::guard::client_tls(ca))?;
    }
    ep.connect()
        .await
        .with_context(|| format!("cannot reach {url}: is `ibsim up` running?"))
}
