//! A node's metrics page over HTTP, read with hyper's client (the bench and the metrics tests).

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The body of `GET /metrics` on a node's metrics address (Prometheus text format); an error for
/// any status but 200.
pub async fn metrics_page(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("http://{addr}/metrics").parse()?;
    let answer = client.get(uri).await?;
    anyhow::ensure!(
        answer.status() == http::StatusCode::OK,
        "GET /metrics on {addr}: {}",
        answer.status()
    );
    let body = answer.into_body().collect().await?.to_bytes();
    Ok(String::from_utf8(body.to_vec())?)
}
