//! The library behind `ibsim`: starting both nodes together (`pair`), fixtures (`fixtures`, with
//! the demo data), the scenario runner (`scenario`), and the clients the subcommands use.

pub mod bench;
pub mod fixtures;
pub mod names;
pub mod pair;
pub mod scenario;
pub mod transfer;

use anyhow::Context;
use tonic::transport::Channel;

/// A channel to a node, connected (3 s to connect).
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    Channel::from_shared(url.to_owned())
        .with_context(|| format!("{url} is not a URL"))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .with_context(|| format!("cannot reach {url}: is `ibsim up` running?"))
}
