//! The platform node as the end-to-end suites start it in a process of its own (to run two
//! against one database): the very `platform-node` entry point.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform_node::serve_from_args().await
}
