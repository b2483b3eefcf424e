//! The bank node as the end-to-end suites start it in a process of its own (to kill it with
//! SIGKILL, or to run two against one database): the very `bank-node` entry point.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bank_node::serve_from_args().await
}
