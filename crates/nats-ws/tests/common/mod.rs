//! What nats-ws's server-backed tests share: the real nats-server per test from `test-support`
//! ([`TestServer::url`] follows `NATS_WS_TEST_TRANSPORT`), our client connected to it, and the
//! nats-py peer (`peer`). Tests that need it are native only.

#![allow(dead_code)] // Each test file uses a different part of this module.

pub mod peer;

use std::time::Duration;

#[allow(unused_imports)] // As above: not every test file uses each of them.
pub use test_support::{nats_server_version, within, TestServer};

/// Fast retries, so restart tests take seconds rather than minutes.
pub fn quick_reconnect(url: String) -> nats_ws::Options {
    nats_ws::Options::new(url).reconnect(nats_ws::ReconnectPolicy {
        initial_delay: Duration::from_millis(100),
        factor: 1.5,
        max_delay: Duration::from_millis(500),
        max_attempts: Some(100),
        jitter: Duration::from_millis(20),
    })
}

/// Our client, connected to the server (bounded; see [`TestServer::url`]).
pub async fn connect(server: &TestServer) -> nats_ws::Client {
    within(
        5,
        "our client to connect",
        nats_ws::connect(nats_ws::Options::new(server.url())),
    )
    .await
    .expect("our client connects")
}

/// Our client with [`quick_reconnect`], connected (bounded): for tests that restart the server.
pub async fn connect_quick_reconnect(server: &TestServer) -> nats_ws::Client {
    within(
        5,
        "connect",
        nats_ws::connect(quick_reconnect(server.url())),
    )
    .await
    .expect("our client connects")
}

/// Waits (bounded) for a status matching `pred` and returns it.
pub async fn wait_status(
    client: &nats_ws::Client,
    what: &str,
    pred: impl Fn(&nats_ws::Status) -> bool,
) -> nats_ws::Status {
    use futures::StreamExt;
    let mut statuses = client.status_stream();
    within(20, what, async {
        loop {
            let s = statuses.next().await.expect("status stream ended");
            if pred(&s) {
                return s;
            }
        }
    })
    .await
}

/// Stops the server, waits until `client` is reconnecting, starts it again (same store) and
/// waits until `client` is connected again.
pub async fn restart_server(server: &mut TestServer, client: &nats_ws::Client) {
    server.stop();
    wait_status(client, "reconnecting", |s| {
        matches!(s, nats_ws::Status::Reconnecting { .. })
    })
    .await;
    server.start_again();
    wait_status(client, "connected again", nats_ws::Status::is_connected).await;
}
