//! The edges of the transport (issue 23), tried as an outsider would: connections that say
//! nothing, or only the HTTP/2 preface, are closed once the idle bound has passed, while a client
//! in use keeps its connection; connections past the node's limit are closed at once, and the
//! node serves on.

use std::time::Duration;

use e2e_tests::{Backend, Options, TestApp};
use proto::sim::v1 as sim;
use shared::grpc::transport::TransportArgs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP/2 client preface.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame, what a client sends right after the preface.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
/// How long the test waits for every silent connection to be closed before it fails: far past
/// the idle bound it sets (a node that keeps them open never gets there).
const GIVE_UP: Duration = Duration::from_secs(60);

fn app_options(idle_timeout_secs: u64, connections_max: u32) -> Options {
    Options {
        transport: TransportArgs {
            idle_timeout_secs,
            connections_max,
        },
        ..Options::default()
    }
}

/// Reads until the node closes the connection, answering nothing it sends (no SETTINGS or
/// PING acknowledgement).
async fn until_closed(mut c: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = c.read(&mut buf).await
        && n > 0
    {}
}

/// `count` connections to the bank, the odd ones sending the HTTP/2 preface and SETTINGS, the
/// even ones nothing; returns once the node has closed every one.
async fn silent_connections(app: &TestApp, count: usize) {
    let addr = app.bank_url().rsplit("//").next().unwrap().to_owned();
    let mut held = tokio::task::JoinSet::new();
    for i in 0..count {
        let mut c = TcpStream::connect(&addr).await.expect("a connection");
        if i % 2 == 1 {
            // A connection refused for the limit may be closed before the write lands.
            let _ = c.write_all(&[PREFACE, SETTINGS].concat()).await;
        }
        held.spawn(until_closed(c));
    }
    tokio::time::timeout(GIVE_UP, held.join_all())
        .await
        .expect("the node closed every silent connection");
}

/// The bank's counter `name`.
async fn bank_counter(app: &TestApp, name: &str) -> u64 {
    let page = app.scrape("bank").await;
    page.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

async fn the_bank_answers(app: &TestApp) {
    app.bank_sim
        .clone()
        .get_clock(sim::GetClockRequest {})
        .await
        .expect("the bank answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_idle_bound_and_a_live_client_keeps_its_own() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, app_options(2, 512)).await else {
        return;
    };
    the_bank_answers(&app).await;
    let accepted = bank_counter(&app, "ibsim_connections_accepted_total").await;

    silent_connections(&app, 100).await;

    // The test's own channel sat idle through the whole bound but answered the node's pings:
    // the call after it goes over the same connection, so the node took only the silent ones.
    the_bank_answers(&app).await;
    assert_eq!(
        bank_counter(&app, "ibsim_connections_accepted_total").await - accepted,
        100,
        "the live connection was kept; only the 100 silent ones were taken (and closed)"
    );
    assert_eq!(
        bank_counter(&app, "ibsim_connections_refused_total").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_are_closed_at_once_and_the_node_serves_on() {
    const LIMIT: u32 = 16;
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, app_options(2, LIMIT)).await else {
        return;
    };
    the_bank_answers(&app).await;

    silent_connections(&app, 100).await;

    // The test's channel holds one slot (the platform may hold more): of the 100, at most 15
    // were taken, every other one was closed as soon as it was accepted.
    let refused = bank_counter(&app, "ibsim_connections_refused_total").await;
    assert!(
        (100 - u64::from(LIMIT - 1)..=100).contains(&refused),
        "{refused} refused"
    );
    the_bank_answers(&app).await;
    // Slots come back as connections end: a new client is served.
    let mut fresh =
        proto::sim::v1::simulator_service_client::SimulatorServiceClient::connect(app.bank_url())
            .await
            .expect("a new client connects");
    fresh
        .get_clock(sim::GetClockRequest {})
        .await
        .expect("a new client is served");
}
