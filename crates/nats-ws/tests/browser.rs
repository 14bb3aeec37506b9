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
    assert!(err.to_string().contains("websocket enabled"), "{err}");
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

/// Lets the browser run its other tasks (a message to ourselves: no timer's 4 ms clamp).
async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let channel = web_sys::MessageChannel::new().unwrap();
        channel.port1().set_onmessage(Some(&resolve));
        channel
            .port2()
            .post_message(&wasm_bindgen::JsValue::NULL)
            .unwrap();
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// A socket the server is closing is not written to: the browser would take each `send`, drop
/// its data and log "WebSocket is already in CLOSING or CLOSED state" to the console.
#[wasm_bindgen_test]
async fn nothing_is_handed_to_a_socket_the_server_is_closing() {
    js_sys::Function::new_no_args(
        "if (!WebSocket.prototype.__countsLateSends) {
            const send = WebSocket.prototype.send;
            globalThis.__lateSends = 0;
            WebSocket.prototype.send = function (data) {
                if (this.readyState !== WebSocket.OPEN) globalThis.__lateSends++;
                return send.call(this, data);
            };
            WebSocket.prototype.__countsLateSends = true;
        }",
    )
    .call0(&wasm_bindgen::JsValue::NULL)
    .unwrap();
    let late_sends = || {
        js_sys::Reflect::get(&js_sys::global(), &"__lateSends".into())
            .unwrap()
            .as_f64()
            .unwrap()
    };
    let client = nats_ws::connect(quick(ws_url())).await.unwrap();
    client.flush().await.unwrap();
    let before = late_sends();
    // The closing handshake is over in about a millisecond: whether a publish lands in it is
    // chance, so the server is stopped under a publisher several times.
    for round in 0..6 {
        let stop = std::rc::Rc::new(std::cell::Cell::new(false));
        let sent = std::rc::Rc::new(std::cell::Cell::new(0u32));
        {
            let (client, stop, sent) = (client.clone(), stop.clone(), sent.clone());
            wasm_bindgen_futures::spawn_local(async move {
                while !stop.get() {
                    // Buffered once disconnected; the buffer's limit is not this test's subject.
                    let _ = client.publish("browser.closing", "x");
                    sent.set(sent.get() + 1);
                    yield_now().await;
                }
            });
        }
        within(10_000, "the publisher's first publish", async {
            while sent.get() < 1 {
                yield_now().await;
            }
        })
        .await;
        control("stop").await;
        wait_status(&client, "reconnecting", |s| {
            matches!(s, Status::Reconnecting { .. })
        })
        .await;
        stop.set(true);
        control("start").await;
        wait_status(&client, "connected again", Status::is_connected).await;
        assert!(
            sent.get() > 1,
            "round {round}: the publisher ran on ({} publishes)",
            sent.get()
        );
    }
    assert_eq!(
        late_sends() - before,
        0.0,
        "sends on a closing or closed socket"
    );
    client.close();
}

// ---------------------------------------------------------------------------------------------
// Key-Value in the browser
// ---------------------------------------------------------------------------------------------

/// A bucket name no other test (or earlier run against the same server) uses.
fn unique_bucket(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e9) as u64
    )
}

/// One KV call, bounded.
async fn kv_step<T>(what: &str, fut: impl Future<Output = T>) -> T {
    within(10_000, what, fut).await
}

/// An entry reduced to key, revision, operation, value.
fn rev(e: &nats_ws::kv::Entry) -> (String, u64, nats_ws::kv::Operation, Vec<u8>) {
    (e.key.clone(), e.revision, e.operation, e.value.to_vec())
}

async fn next_watch_event(watch: &mut nats_ws::kv::Watch, what: &str) -> nats_ws::kv::WatchEvent {
    within(10_000, what, watch.next())
        .await
        .unwrap_or_else(|| panic!("watch ended while waiting for {what}"))
        .unwrap_or_else(|e| panic!("watch error while waiting for {what}: {e}"))
}

#[wasm_bindgen_test]
async fn kv_put_get_update_conflict_delete() {
    use nats_ws::kv::{KvConfig, KvError, Operation};

    let client = kv_step("connect", nats_ws::connect(Options::new(ws_url())))
        .await
        .expect("connect");
    let js = client.jetstream();
    let bucket = unique_bucket("browser_kv_crud");
    let kv = kv_step(
        "create bucket",
        js.create_key_value(KvConfig::new(&bucket).history(3)),
    )
    .await
    .expect("create bucket");
    assert_eq!(kv.bucket(), bucket);

    assert_eq!(kv_step("put", kv.put("greeting", "hello")).await, Ok(1));
    let e = kv_step("get", kv.get("greeting"))
        .await
        .unwrap()
        .expect("a value");
    assert_eq!(
        (e.bucket.as_str(), e.text(), e.revision, e.operation),
        (bucket.as_str(), Some("hello"), 1, Operation::Put)
    );
    assert_eq!(
        kv_step("update", kv.update("greeting", "hello again", 1)).await,
        Ok(2)
    );
    assert_eq!(
        kv_step("stale update", kv.update("greeting", "stale", 1)).await,
        Err(KvError::WrongLastRevision {
            key: "greeting".into(),
            expected: 1
        })
    );
    assert!(matches!(
        kv_step("create existing", kv.create("greeting", "x")).await,
        Err(KvError::KeyExists { .. })
    ));
    let binary = [0u8, 1, 2, 13, 10, 255];
    assert_eq!(
        kv_step("create", kv.create("dir.other", binary)).await,
        Ok(3)
    );
    let other = kv_step("get binary", kv.get("dir.other"))
        .await
        .unwrap()
        .expect("a value");
    assert_eq!(&other.value[..], &binary[..]);
    let e = kv_step("get", kv.get("greeting")).await.unwrap().unwrap();
    assert_eq!((e.text(), e.revision), (Some("hello again"), 2));
    assert_eq!(kv_step("get missing", kv.get("missing")).await, Ok(None));

    assert_eq!(kv_step("delete", kv.delete("greeting")).await, Ok(4));
    assert_eq!(kv_step("get deleted", kv.get("greeting")).await, Ok(None));
    let marker = kv_step("entry", kv.entry("greeting"))
        .await
        .unwrap()
        .expect("the delete marker");
    assert_eq!((marker.revision, marker.operation), (4, Operation::Delete));
    assert_eq!(
        kv_step(
            "create over the delete marker",
            kv.create("greeting", "back")
        )
        .await,
        Ok(5)
    );
    let mut keys = kv_step("keys", kv.keys()).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["dir.other", "greeting"]);
    // History 3: revision 1 is gone.
    let history: Vec<_> = kv_step("history", kv.history("greeting"))
        .await
        .unwrap()
        .iter()
        .map(rev)
        .collect();
    assert_eq!(
        history,
        [
            (
                "greeting".into(),
                2,
                Operation::Put,
                b"hello again".to_vec()
            ),
            ("greeting".into(), 4, Operation::Delete, Vec::new()),
            ("greeting".into(), 5, Operation::Put, b"back".to_vec()),
        ]
    );

    kv_step("delete bucket", js.delete_key_value(&bucket))
        .await
        .expect("delete bucket");
    assert!(matches!(
        kv_step("bind deleted", js.key_value(&bucket)).await,
        Err(KvError::BucketNotFound { .. })
    ));
    client.close();
}

#[wasm_bindgen_test]
async fn kv_watch_sees_initial_values_marker_then_a_live_update_from_another_client() {
    use nats_ws::kv::{KvConfig, Operation, WatchEvent, WatchOptions};

    let writer = kv_step("connect writer", nats_ws::connect(Options::new(ws_url())))
        .await
        .expect("connect writer");
    let reader = kv_step("connect reader", nats_ws::connect(Options::new(ws_url())))
        .await
        .expect("connect reader");
    let bucket = unique_bucket("browser_kv_watch");
    let written = kv_step(
        "create bucket",
        writer.jetstream().create_key_value(KvConfig::new(&bucket)),
    )
    .await
    .expect("create bucket");
    assert_eq!(kv_step("put a", written.put("a", "1")).await, Ok(1));
    assert_eq!(kv_step("put b", written.put("b", "2")).await, Ok(2));
    assert_eq!(kv_step("put a", written.put("a", "3")).await, Ok(3));
    assert_eq!(kv_step("delete b", written.delete("b")).await, Ok(4));

    // The other connection binds to the bucket and watches it.
    let watched = kv_step("bind", reader.jetstream().key_value(&bucket))
        .await
        .expect("bind");
    let mut all = watched.watch_all().unwrap();
    let mut only_a = watched.watch("a").unwrap();
    let mut updates = watched
        .watch_with(
            ">",
            WatchOptions {
                updates_only: true,
                ..Default::default()
            },
        )
        .unwrap();

    let entry = |event: WatchEvent| match event {
        WatchEvent::Entry(e) => rev(&e),
        other => panic!("{other:?} where an entry was due"),
    };
    // History 1: the latest revision of each key, delete markers included, in stream order.
    assert_eq!(
        entry(next_watch_event(&mut all, "watch_all: a").await),
        ("a".into(), 3, Operation::Put, b"3".to_vec())
    );
    assert_eq!(
        entry(next_watch_event(&mut all, "watch_all: b").await),
        ("b".into(), 4, Operation::Delete, Vec::new())
    );
    assert_eq!(
        next_watch_event(&mut all, "watch_all: marker").await,
        WatchEvent::InitialDone
    );
    assert_eq!(
        entry(next_watch_event(&mut only_a, "watch a: a").await),
        ("a".into(), 3, Operation::Put, b"3".to_vec())
    );
    assert_eq!(
        next_watch_event(&mut only_a, "watch a: marker").await,
        WatchEvent::InitialDone
    );
    assert_eq!(
        next_watch_event(&mut updates, "updates only: marker").await,
        WatchEvent::InitialDone
    );

    // Live changes through the writer's connection.
    assert_eq!(kv_step("put c", written.put("c", "live")).await, Ok(5));
    assert_eq!(
        kv_step("update a", written.update("a", "4", 3)).await,
        Ok(6)
    );
    for (watch, what) in [(&mut all, "watch_all"), (&mut updates, "updates only")] {
        assert_eq!(
            entry(next_watch_event(watch, &format!("{what}: live c")).await),
            ("c".into(), 5, Operation::Put, b"live".to_vec()),
            "{what}"
        );
        assert_eq!(
            entry(next_watch_event(watch, &format!("{what}: live a")).await),
            ("a".into(), 6, Operation::Put, b"4".to_vec()),
            "{what}"
        );
    }
    assert_eq!(
        entry(next_watch_event(&mut only_a, "watch a: live a").await),
        ("a".into(), 6, Operation::Put, b"4".to_vec())
    );
    drop((all, only_a, updates));
    writer.close();
    reader.close();
}

/// GETs `path_and_query` of the control server: its JSON, asserted 200 (`what` names the failure).
async fn control_json(path_and_query: &str, what: &str) -> serde_json::Value {
    let Some(base) = option_env!("NATS_TEST_CONTROL") else {
        panic!("NATS_TEST_CONTROL is not set: run the browser tests through ./test.sh");
    };
    let window = web_sys::window().unwrap();
    let promise = window.fetch_with_str(&format!("{base}/{path_and_query}"));
    let response: web_sys::Response = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .expect("control request")
        .dyn_into()
        .unwrap();
    let text = wasm_bindgen_futures::JsFuture::from(response.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    assert!(response.ok(), "{what}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Asks the control server (nats-py over the server's TCP port) to make a request; its JSON.
async fn native_request(subject: &str, payload: &str) -> serde_json::Value {
    let query = format!(
        "request?subject={}&payload={}",
        js_sys::encode_uri_component(subject),
        js_sys::encode_uri_component(payload)
    );
    control_json(&query, &format!("native request to {subject}")).await
}

#[wasm_bindgen_test]
async fn a_service_in_the_browser_answers_a_native_peer() {
    use nats_ws::service::{self, EndpointConfig, ServiceConfig};
    let client = nats_ws::connect(Options::new(ws_url())).await.unwrap();
    let svc = service::add(
        &client,
        ServiceConfig::new("browser-svc", "0.1.0").metadata("where", "browser"),
    )
    .unwrap();
    let mut upper = svc
        .endpoint_with(EndpointConfig::new("upper").subject("browser.svc.upper"))
        .unwrap();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(request) = upper.next().await {
            let _ = match request.text() {
                Some(text) if !text.is_empty() => request.respond(text.to_uppercase()),
                _ => request.respond_error(400, "send some text", b""),
            };
        }
    });
    client.flush().await.unwrap();

    let reply = within(
        10_000,
        "native request",
        native_request("browser.svc.upper", "hello"),
    )
    .await;
    assert_eq!(reply["payload"], "HELLO");
    let reply = within(
        10_000,
        "native request",
        native_request("browser.svc.upper", ""),
    )
    .await;
    assert_eq!(reply["headers"]["Nats-Service-Error-Code"], "400");
    assert_eq!(reply["headers"]["Nats-Service-Error"], "send some text");

    let id = svc.id().to_owned();
    let info = within(
        10_000,
        "native INFO",
        native_request(&format!("$SRV.INFO.browser-svc.{id}"), ""),
    )
    .await;
    let info: service::InfoResponse =
        serde_json::from_str(info["payload"].as_str().unwrap()).unwrap();
    assert_eq!(info, svc.info());
    assert_eq!(info.endpoints[0].subject, "browser.svc.upper");
    let stats = within(
        10_000,
        "native STATS",
        native_request("$SRV.STATS.browser-svc", ""),
    )
    .await;
    let stats: service::StatsResponse =
        serde_json::from_str(stats["payload"].as_str().unwrap()).unwrap();
    assert_eq!(stats.id, id);
    let e = &stats.endpoints[0];
    assert_eq!((e.num_requests, e.num_errors), (2, 1));
    assert_eq!(e.last_error, "400:send some text");
    svc.stop().await;
    client.close();
}

/// Starts the control server's second nats-server with `config` appended (NKey users, an
/// operator); its WebSocket url.
async fn auth_server(config: &str) -> String {
    let query = format!(
        "auth-server?config={}",
        js_sys::encode_uri_component(config)
    );
    let json = control_json(&query, "the auth server did not start").await;
    json["websocket"].as_str().unwrap().to_owned()
}

async fn round_trip(client: &nats_ws::Client, subject: &str) {
    let mut sub = client.subscribe(subject).unwrap();
    client.flush().await.unwrap();
    client.publish(subject, "hello").unwrap();
    let msg = within(5_000, "the round trip", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload, "hello");
}

/// Waits (10 s at most) for `client` to go Offline: the Reconnecting statuses on the way, and why.
#[cfg(feature = "nkeys")]
async fn offline(client: &nats_ws::Client, what: &str) -> (u32, ConnectionError) {
    let mut statuses = client.status_stream();
    let mut attempts = 0;
    within(10_000, what, async {
        loop {
            match statuses.next().await.expect("status stream") {
                Status::Reconnecting { .. } => attempts += 1,
                Status::Offline { last_error } => return (attempts, last_error),
                _ => {}
            }
        }
    })
    .await
}

#[cfg(feature = "nkeys")]
#[wasm_bindgen_test]
async fn nkey_and_jwt_users_sign_in_and_refused_ones_are_named_then_offline() {
    use nats_ws::Auth;
    use test_support::jwt;

    // An NKey user; someone else's seed is refused.
    let alice = jwt::key(nkeys::KeyPairType::User);
    let url = auth_server(&jwt::nkey_users_config(&[&alice])).await;
    let auth = Auth::nkey(&jwt::seed(&alice)).unwrap();
    let client = nats_ws::connect(Options::new(&url).auth(auth))
        .await
        .expect("an NKey user connects");
    round_trip(&client, "nkey.browser").await;
    client.close();
    let mallory = Auth::nkey(&jwt::seed(&jwt::key(nkeys::KeyPairType::User))).unwrap();
    let err = nats_ws::connect(Options::new(&url).auth(mallory))
        .await
        .unwrap_err();
    assert_eq!(err, ConnectionError::AuthorizationViolation);

    // Decentralized authentication: a user JWT of an account of an operator, from .creds text.
    let operator = jwt::Operator::new();
    let url = auth_server(&operator.server_config()).await;
    let (user, user_jwt) = operator.user("tab", None);
    let auth = Auth::credentials(&jwt::creds(&user_jwt, &jwt::seed(&user))).unwrap();
    let client = nats_ws::connect(Options::new(&url).auth(auth))
        .await
        .expect("a JWT user connects");
    round_trip(&client, "jwt.browser").await;
    client.close();

    // An expired JWT: refused, and a client that keeps trying goes Offline after the second
    // refusal instead of looping.
    let (old, old_jwt) = operator.user("expired", Some(jwt::now() - 60));
    let expired = Auth::credentials(&jwt::creds(&old_jwt, &jwt::seed(&old))).unwrap();
    let client = nats_ws::start(quick(&url).auth(expired)).unwrap();
    let (refusals, last_error) = offline(&client, "offline after an expired JWT").await;
    assert_eq!(last_error, ConnectionError::AuthorizationViolation);
    assert!(refusals <= 2, "{refusals} attempts before giving up");

    // A browser whose WebCrypto has no Ed25519 (before Chrome 137, Firefox 129, Safari 17):
    // importKey refuses the algorithm, as those do. The client says so and goes Offline at once
    // rather than retrying what cannot change.
    // Put back however the test ends, so later tests on this page sign again.
    struct PutBack(wasm_bindgen::JsValue, wasm_bindgen::JsValue);
    impl Drop for PutBack {
        fn drop(&mut self) {
            let _ = js_sys::Reflect::set(&self.0, &"importKey".into(), &self.1);
        }
    }
    let subtle = js_sys::eval("crypto.subtle").unwrap();
    let import_key = js_sys::Reflect::get(&subtle, &"importKey".into()).unwrap();
    let put_back = PutBack(subtle.clone(), import_key);
    let refuse = js_sys::Function::new_no_args(
        "return Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError'))",
    );
    js_sys::Reflect::set(&subtle, &"importKey".into(), &refuse).unwrap();
    let auth = Auth::credentials(&jwt::creds(&user_jwt, &jwt::seed(&user))).unwrap();
    let client = nats_ws::start(quick(&url).auth(auth)).unwrap();
    let (attempts, last_error) = offline(&client, "offline without Ed25519").await;
    drop(put_back);
    let ConnectionError::Credentials(nats_ws::CredentialsError::Signing(detail)) = &last_error
    else {
        panic!("not a signing error: {last_error}");
    };
    assert!(
        detail.contains("Unrecognized name.") && detail.contains("Chrome 137"),
        "{last_error}"
    );
    assert_eq!(attempts, 0, "gave up at the first attempt");
    client.close();
    control("auth-server/stop").await;
}
