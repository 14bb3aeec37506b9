//! The browser driver in real headless Chromium against a real nats-server.
//!
//! `./test.sh` starts the server under `scripts/nats_test_control.py` and passes its WebSocket url
//! (`NATS_WS_TEST_URL`) and control url (`NATS_TEST_CONTROL`, for stopping and starting the server)
//! at compile time.

#![cfg(target_arch = "wasm32")]

use std::future::Future;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use nats_ws::{ConnectionError, HeaderMap, Options, ReconnectPolicy, RequestError, Status};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn ws_url() -> &'static str {
    option_env!("NATS_WS_TEST_URL").unwrap_or("ws://127.0.0.1:8080")
}

fn quick(url: &str) -> Options {
    Options::new(url).reconnect(ReconnectPolicy {
        initial_delay: Duration::from_millis(100),
        factor: 1.5,
        max_delay: Duration::from_millis(500),
        max_attempts: Some(100),
        jitter: Duration::from_millis(20),
    })
}

/// Awaits `fut` for at most `ms` milliseconds.
async fn within<T>(ms: u32, what: &str, fut: impl Future<Output = T>) -> T {
    futures::select! {
        v = fut.fuse() => v,
        _ = gloo_timers::future::TimeoutFuture::new(ms).fuse() => panic!("timed out after {ms} ms waiting for {what}"),
    }
}

/// Asks the test harness to stop or start the server; returns once it has.
async fn control(action: &str) {
    let Some(base) = option_env!("NATS_TEST_CONTROL") else {
        panic!("NATS_TEST_CONTROL is not set: run the browser tests through ./test.sh");
    };
    let window = web_sys::window().unwrap();
    let promise = window.fetch_with_str(&format!("{base}/{action}"));
    let response = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect("control request");
    let response: web_sys::Response = response.dyn_into().unwrap();
    assert!(
        response.ok(),
        "control {action} failed: {}",
        response.status()
    );
}

async fn wait_status(client: &nats_ws::Client, what: &str, pred: impl Fn(&Status) -> bool) {
    let mut statuses = client.status_stream();
    within(20_000, what, async {
        while let Some(s) = statuses.next().await {
            if pred(&s) {
                return;
            }
        }
        panic!("status stream ended");
    })
    .await
}

#[wasm_bindgen_test]
async fn connect_publish_subscribe_with_headers() {
    let client = nats_ws::connect(Options::new(ws_url()))
        .await
        .expect("connect");
    assert!(client.status().is_connected());
    let mut sub = client.subscribe("browser.>").unwrap();
    client.flush().await.unwrap();
    client.publish("browser.plain", "hello from wasm").unwrap();
    let mut headers = HeaderMap::new();
    headers.append("X-Tab", "1").append("X-Tab", "2");
    client
        .publish_with_headers("browser.headers", &headers, [1u8, 2, 3])
        .unwrap();
    let a = within(5000, "plain message", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.subject, "browser.plain");
    assert_eq!(a.payload, "hello from wasm");
    let b = within(5000, "message with headers", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.headers.as_ref(), Some(&headers));
    assert_eq!(&b.payload[..], &[1u8, 2, 3]);
    client.close();
}

#[wasm_bindgen_test]
async fn request_reply_between_two_connections() {
    let responder = nats_ws::connect(Options::new(ws_url())).await.unwrap();
    let requester = nats_ws::connect(Options::new(ws_url())).await.unwrap();
    let mut requests = responder.subscribe("browser.svc.upper").unwrap();
    responder.flush().await.unwrap();
    let serving = responder.clone();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(Ok(req)) = requests.next().await {
            let body = req.text().unwrap_or_default().to_uppercase();
            serving
                .publish(req.reply.as_deref().unwrap(), body)
                .unwrap();
        }
    });
    let reply = within(
        5000,
        "reply",
        requester.request("browser.svc.upper", "shout"),
    )
    .await
    .unwrap();
    assert_eq!(reply.payload, "SHOUT");
    let err = within(
        5000,
        "no responders",
        requester.request("browser.nobody", ""),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        RequestError::NoResponders {
            subject: "browser.nobody".into()
        }
    );
    responder.close();
    requester.close();
}

#[wasm_bindgen_test]
async fn nothing_listening_is_a_clear_error() {
    let err = nats_ws::connect(Options::new("ws://127.0.0.1:9"))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("nats.sh start"), "{err}");
}

#[wasm_bindgen_test]
async fn reconnects_after_a_server_restart() {
    let client = nats_ws::connect(quick(ws_url())).await.unwrap();
    let other = nats_ws::connect(quick(ws_url())).await.unwrap();
    let mut own = client.subscribe("browser.buffered").unwrap();
    let mut live = client.subscribe("browser.live").unwrap();
    client.flush().await.unwrap();

    control("stop").await;
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    for i in 0..3 {
        client.publish("browser.buffered", format!("b{i}")).unwrap();
    }
    control("start").await;
    wait_status(&client, "connected again", Status::is_connected).await;
    wait_status(&other, "other connected again", Status::is_connected).await;

    client.publish("browser.buffered", "end").unwrap();
    let mut got = Vec::new();
    within(10_000, "buffered publishes", async {
        while let Some(Ok(m)) = own.next().await {
            let text = m.text().unwrap().to_owned();
            if text == "end" {
                break;
            }
            got.push(text);
        }
    })
    .await;
    assert_eq!(got, ["b0", "b1", "b2"]);

    client.flush().await.unwrap();
    other.publish("browser.live", "after restart").unwrap();
    let msg = within(10_000, "live message", live.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload, "after restart");
    client.close();
    other.close();
}
