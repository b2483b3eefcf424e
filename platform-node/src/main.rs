//! `platform-node`: the payment platform's side of the link.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform_node::serve_from_args().await
}
