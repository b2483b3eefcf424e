//! `bank-node`: the postal savings bank's side of the link.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bank_node::serve_from_args().await
}
