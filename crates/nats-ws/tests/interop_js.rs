#![cfg(not(target_arch = "wasm32"))]
//! JetStream and Key-Value interop with a client we did not write: nats-py (PyPI `nats-py`) on the
//! server's TCP port, our client on its WebSocket port, one real nats-server with JetStream.
//!
//! Each side in turn creates the bucket or stream, writes to it, and the other side reads, watches
//! or consumes it. The Python side is `tests/interop_peer.py` (subcommands `kv-write`, `kv-read`,
//! `js-publish`, `js-consume`), run with `python3` from PATH: the test writes it one JSON spec line
//! on stdin and reads JSON lines from its stdout. Synchronisation is on its `done` / `ready`
//! lines and on watch events, never on sleeps; every wait is bounded.
//!
//! nats-py facts the assertions rely on (checked against nats-py 2.16 and nats-server 2.9):
//! - A KV entry's `operation` is `None` for a put, `"DEL"` / `"PURGE"` for markers; `kv.get` of a
//!   deleted or purged key raises `KeyNotFoundError` whose `op` names the marker.
//! - `kv.delete` / `kv.purge` return `True`, not the marker's revision.
//! - `kv.keys()` / `kv.history()` raise `NoKeysError` instead of returning an empty list.
//! - A watcher signals the end of the initial values with a `None` entry.
//! - JetStream keeps a message's headers as published, so nats-py sees the `Nats-Msg-Id` our
//!   `publish` always adds (a random one unless we set it).

mod common;

use std::time::Duration;

use common::peer::{binary_payload, header_map, hex, our_headers, pairs, spec_headers, Peer, STEP};
use common::{connect, within, TestServer};
use futures::{Stream, StreamExt};
use nats_ws::jetstream::{
    AckPolicy, ConsumerConfig, FetchOptions, JetStreamError, JsMessage, OrderedOptions,
    PublishOptions, StreamConfig,
};
use nats_ws::kv::{Entry, KvConfig, KvError, Operation, Watch, WatchEvent, WatchOptions};
use serde_json::{json, Value};

/// Headers as ordered name/value pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Spans several WebSocket frames and TCP reads.
fn large_payload() -> Vec<u8> {
    (0..100_000u32)
        .map(|i| (i.wrapping_mul(17) % 253) as u8)
        .collect()
}

/// An entry reduced to what both sides agree on: key, revision, operation, value.
type Rev = (String, u64, Operation, Vec<u8>);

fn rev(key: &str, revision: u64, operation: Operation, value: &[u8]) -> Rev {
    (key.to_owned(), revision, operation, value.to_vec())
}

fn rev_of(e: &Entry) -> Rev {
    (e.key.clone(), e.revision, e.operation, e.value.to_vec())
}

async fn next_event(watch: &mut Watch, what: &str) -> WatchEvent {
    within(STEP, what, watch.next())
        .await
        .unwrap_or_else(|| panic!("watch ended while waiting for {what}"))
        .unwrap_or_else(|e| panic!("watch error while waiting for {what}: {e}"))
}

async fn next_entry(watch: &mut Watch, what: &str) -> Entry {
    match next_event(watch, what).await {
        WatchEvent::Entry(e) => e,
        other => panic!("{what}: got {other:?}, wanted an entry"),
    }
}

/// Reads the initial values up to the marker; returns them with their deltas.
async fn initial_values(watch: &mut Watch, what: &str) -> Vec<(Rev, u64)> {
    let mut got = Vec::new();
    loop {
        match next_event(watch, what).await {
            WatchEvent::Entry(e) => got.push((rev_of(&e), e.delta)),
            WatchEvent::InitialDone => return got,
            other => panic!("{what}: unexpected {other:?}"),
        }
        assert!(got.len() < 100, "{what}: no InitialDone marker: {got:?}");
    }
}

async fn next_js(
    stream: &mut (impl Stream<Item = Result<JsMessage, JetStreamError>> + Unpin),
    what: &str,
) -> JsMessage {
    within(STEP, what, stream.next())
        .await
        .unwrap_or_else(|| panic!("consumer ended while waiting for {what}"))
        .unwrap_or_else(|e| panic!("consumer error while waiting for {what}: {e}"))
}

/// A `kv-write` op for the peer.
fn kv_op(op: &str, key: &str, value: &[u8]) -> Value {
    json!({ "op": op, "key": key, "value_hex": hex(value) })
}

/// A KV entry as the peer prints it (`operation`: null for a put).
fn py_entry(
    watch: Option<&str>,
    key: &str,
    revision: u64,
    delta: u64,
    op: Operation,
    value: &[u8],
) -> Value {
    let operation = match op {
        Operation::Put => Value::Null,
        Operation::Delete => json!("DEL"),
        Operation::Purge => json!("PURGE"),
        other => panic!("no nats.js name for {other:?}"),
    };
    json!({
        "watch": watch,
        "key": key,
        "revision": revision,
        "delta": delta,
        "operation": operation,
        "value_hex": hex(value),
    })
}

// ---------------------------------------------------------------------------------------------
// Key-Value
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kv_bucket_written_by_py_is_read_and_watched_by_rust() {
    let server = TestServer::start();
    let bucket = "py_made";
    let binary = binary_payload(1);

    // nats-py creates the bucket and writes to it.
    let ops = vec![
        kv_op("put", "a", b"1"),
        kv_op("put", "b", b"two"),
        json!({ "op": "update", "key": "a", "value_hex": hex(b"3"), "last": 1 }),
        kv_op("create", "c", &binary),
        json!({ "op": "update", "key": "c", "value_hex": hex(b"c2"), "last": 4 }),
        kv_op("delete", "b", b""),
        kv_op("put", "dir.x", b"x"),
        kv_op("put", "p", b"gone"),
        kv_op("purge", "p", b""),
    ];
    let spec = json!({ "bucket": bucket, "history": 5, "ops": ops });
    let mut peer = Peer::start("kv-write", &server, bucket, &[], spec).await;
    for (op, key, revision) in [
        ("put", "a", Some(1)),
        ("put", "b", Some(2)),
        ("update", "a", Some(3)),
        ("create", "c", Some(4)),
        ("update", "c", Some(5)),
        ("delete", "b", None),
        ("put", "dir.x", Some(7)),
        ("put", "p", Some(8)),
        ("purge", "p", None),
    ] {
        peer.expect_json(json!({ "op": op, "key": key, "revision": revision }))
            .await;
    }
    peer.expect_line("done").await;
    peer.finish().await;

    // We bind to it and read it.
    let client = connect(&server).await;
    let js = client.jetstream();
    assert!(matches!(
        js.key_value("not_there").await,
        Err(KvError::BucketNotFound { .. })
    ));
    let kv = within(STEP, "binding to the bucket", js.key_value(bucket))
        .await
        .expect("bind to the bucket nats-py made");
    let status = kv.status().await.expect("status");
    // a1 a3 b2 b(del)6 c4 c5 dir.x7 p(purge)9; the purge rolled p's 8 up.
    assert_eq!((status.values, status.history), (8, 5));

    let get = |key: &'static str| {
        let kv = kv.clone();
        async move {
            within(STEP, key, kv.get(key))
                .await
                .unwrap_or_else(|e| panic!("get {key}: {e}"))
                .map(|e| rev_of(&e))
        }
    };
    assert_eq!(get("a").await, Some(rev("a", 3, Operation::Put, b"3")));
    assert_eq!(get("b").await, None, "b was deleted by nats-py");
    assert_eq!(get("c").await, Some(rev("c", 5, Operation::Put, b"c2")));
    assert_eq!(
        get("dir.x").await,
        Some(rev("dir.x", 7, Operation::Put, b"x"))
    );
    assert_eq!(get("p").await, None, "p was purged by nats-py");
    assert_eq!(get("missing").await, None);
    let marker = kv.entry("b").await.unwrap().map(|e| rev_of(&e));
    assert_eq!(marker, Some(rev("b", 6, Operation::Delete, b"")));
    let marker = kv.entry("p").await.unwrap().map(|e| rev_of(&e));
    assert_eq!(marker, Some(rev("p", 9, Operation::Purge, b"")));
    let old = kv.get_revision("a", 1).await.unwrap().map(|e| rev_of(&e));
    assert_eq!(old, Some(rev("a", 1, Operation::Put, b"1")));
    assert_eq!(kv.get_revision("a", 2).await.unwrap(), None, "2 is b's");
    let old = kv.get_revision("c", 4).await.unwrap().map(|e| rev_of(&e));
    assert_eq!(old, Some(rev("c", 4, Operation::Put, &binary)));

    let mut keys = kv.keys().await.expect("keys");
    keys.sort();
    assert_eq!(keys, ["a", "c", "dir.x"]);
    let history = |key: &'static str| {
        let kv = kv.clone();
        async move {
            within(STEP, key, kv.history(key))
                .await
                .unwrap_or_else(|e| panic!("history {key}: {e}"))
                .iter()
                .map(rev_of)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        history("a").await,
        [
            rev("a", 1, Operation::Put, b"1"),
            rev("a", 3, Operation::Put, b"3")
        ]
    );
    assert_eq!(
        history("b").await,
        [
            rev("b", 2, Operation::Put, b"two"),
            rev("b", 6, Operation::Delete, b"")
        ]
    );
    assert_eq!(history("p").await, [rev("p", 9, Operation::Purge, b"")]);
    assert_eq!(history("missing").await, []);

    // Watchers: the whole bucket, one key, and one key with its history.
    let mut all = kv.watch_all().expect("watch_all");
    let mut only_c = kv.watch("c").expect("watch c");
    let mut a_history = kv
        .watch_with(
            "a",
            WatchOptions {
                include_history: true,
                ..Default::default()
            },
        )
        .expect("watch a with history");
    assert_eq!(
        initial_values(&mut all, "watch_all initial values").await,
        [
            (rev("a", 3, Operation::Put, b"3"), 4),
            (rev("c", 5, Operation::Put, b"c2"), 3),
            (rev("b", 6, Operation::Delete, b""), 2),
            (rev("dir.x", 7, Operation::Put, b"x"), 1),
            (rev("p", 9, Operation::Purge, b""), 0),
        ]
    );
    assert_eq!(
        initial_values(&mut only_c, "watch c initial values").await,
        [(rev("c", 5, Operation::Put, b"c2"), 0)]
    );
    assert_eq!(
        initial_values(&mut a_history, "watch a (history) initial values").await,
        [
            (rev("a", 1, Operation::Put, b"1"), 1),
            (rev("a", 3, Operation::Put, b"3"), 0)
        ]
    );

    // Live changes from nats-py, through a new connection bound to the existing bucket.
    let spec = json!({
        "bucket": bucket,
        "create": false,
        "ops": [kv_op("put", "c", b"live"), kv_op("delete", "a", b"")],
    });
    let mut peer = Peer::start("kv-write", &server, bucket, &[], spec).await;
    peer.expect_json(json!({ "op": "put", "key": "c", "revision": 10 }))
        .await;
    peer.expect_json(json!({ "op": "delete", "key": "a", "revision": null }))
        .await;
    peer.expect_line("done").await;
    peer.finish().await;
    let live = next_entry(&mut all, "watch_all: live put from nats-py").await;
    assert_eq!(rev_of(&live), rev("c", 10, Operation::Put, b"live"));
    assert_eq!(live.bucket, bucket);
    let live = next_entry(&mut all, "watch_all: live delete from nats-py").await;
    assert_eq!(rev_of(&live), rev("a", 11, Operation::Delete, b""));
    let live = next_entry(&mut only_c, "watch c: live put from nats-py").await;
    assert_eq!(rev_of(&live), rev("c", 10, Operation::Put, b"live"));
    let live = next_entry(&mut a_history, "watch a: live delete from nats-py").await;
    assert_eq!(rev_of(&live), rev("a", 11, Operation::Delete, b""));

    // Our writes on top of nats-py's markers and revisions.
    assert_eq!(
        kv.create("b", "reborn").await,
        Ok(12),
        "create over py's DEL"
    );
    assert_eq!(
        kv.update("c", "stale", 5).await,
        Err(KvError::WrongLastRevision {
            key: "c".into(),
            expected: 5
        })
    );
    assert_eq!(kv.update("c", "fresh", 10).await, Ok(13));
    let live = next_entry(&mut all, "watch_all: our create").await;
    assert_eq!(rev_of(&live), rev("b", 12, Operation::Put, b"reborn"));
    let live = next_entry(&mut all, "watch_all: our update").await;
    assert_eq!(rev_of(&live), rev("c", 13, Operation::Put, b"fresh"));
}

#[tokio::test]
async fn kv_bucket_written_by_rust_is_read_and_watched_by_py() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let bucket = "rust_made";
    let binary = binary_payload(2);
    let kv = within(
        STEP,
        "creating the bucket",
        client
            .jetstream()
            .create_key_value(KvConfig::new(bucket).history(4)),
    )
    .await
    .expect("create bucket");

    assert_eq!(kv.put("a", "1").await, Ok(1));
    assert_eq!(kv.put("b", &binary).await, Ok(2));
    assert_eq!(kv.update("a", "2", 1).await, Ok(3));
    assert_eq!(
        kv.update("a", "stale", 1).await,
        Err(KvError::WrongLastRevision {
            key: "a".into(),
            expected: 1
        })
    );
    assert!(matches!(
        kv.create("a", "again").await,
        Err(KvError::KeyExists { .. })
    ));
    assert_eq!(kv.create("c", "c").await, Ok(4));
    assert_eq!(kv.delete("b").await, Ok(5));
    assert_eq!(kv.put("dir.x", "x").await, Ok(6));
    assert_eq!(kv.put("p", "p").await, Ok(7));
    assert_eq!(kv.purge("p").await, Ok(8));

    let spec = json!({
        "bucket": bucket,
        "get": ["a", "b", "c", "dir.x", "p", "missing"],
        "history": ["a", "b", "p", "missing"],
        "watches": [
            { "name": "all", "filter": ">", "initial": 5, "live": 2 },
            { "name": "c", "filter": "c", "initial": 1, "live": 1 },
        ],
    });
    let mut peer = Peer::start("kv-read", &server, bucket, &[], spec).await;
    // a1 a3 b2 b(del)5 c4 dir.x6 p(purge)8: the purge rolled p's 7 up.
    peer.expect_json(json!({ "status": { "bucket": bucket, "values": 7, "history": 4 } }))
        .await;
    peer.expect_json(json!({ "get": "a", "revision": 3, "value_hex": hex(b"2") }))
        .await;
    peer.expect_json(json!({ "get": "b", "error": "KeyNotFoundError", "op": "DEL" }))
        .await;
    peer.expect_json(json!({ "get": "c", "revision": 4, "value_hex": hex(b"c") }))
        .await;
    peer.expect_json(json!({ "get": "dir.x", "revision": 6, "value_hex": hex(b"x") }))
        .await;
    peer.expect_json(json!({ "get": "p", "error": "KeyNotFoundError", "op": "PURGE" }))
        .await;
    peer.expect_json(json!({ "get": "missing", "error": "KeyNotFoundError", "op": null }))
        .await;
    peer.expect_json(json!({ "history": "a", "entries": [
        py_entry(None, "a", 1, 1, Operation::Put, b"1"),
        py_entry(None, "a", 3, 0, Operation::Put, b"2"),
    ] }))
    .await;
    peer.expect_json(json!({ "history": "b", "entries": [
        py_entry(None, "b", 2, 1, Operation::Put, &binary),
        py_entry(None, "b", 5, 0, Operation::Delete, b""),
    ] }))
    .await;
    peer.expect_json(json!({ "history": "p", "entries": [
        py_entry(None, "p", 8, 0, Operation::Purge, b""),
    ] }))
    .await;
    peer.expect_json(json!({ "history": "missing", "error": "NoKeysError" }))
        .await;
    peer.expect_json(json!({ "keys": ["a", "c", "dir.x"] }))
        .await;
    // Initial values: the latest revision of each key, in stream order, then the marker.
    for (key, revision, delta, op, value) in [
        ("a", 3, 4, Operation::Put, &b"2"[..]),
        ("c", 4, 3, Operation::Put, b"c"),
        ("b", 5, 2, Operation::Delete, b""),
        ("dir.x", 6, 1, Operation::Put, b"x"),
        ("p", 8, 0, Operation::Purge, b""),
    ] {
        peer.expect_json(py_entry(Some("all"), key, revision, delta, op, value))
            .await;
    }
    peer.expect_json(json!({ "watch": "all", "marker": "initial-done" }))
        .await;
    peer.expect_json(py_entry(Some("c"), "c", 4, 0, Operation::Put, b"c"))
        .await;
    peer.expect_json(json!({ "watch": "c", "marker": "initial-done" }))
        .await;
    peer.expect_line("ready").await;

    // Live changes from us; their deltas depend on timing, so they are not compared.
    assert_eq!(kv.put("c", "live").await, Ok(9));
    assert_eq!(kv.delete("a").await, Ok(10));
    let mut live = Vec::new();
    for _ in 0..3 {
        let mut v = peer.json().await;
        v.as_object_mut().unwrap().remove("delta");
        live.push(v);
    }
    let without_delta = |mut v: Value| {
        v.as_object_mut().unwrap().remove("delta");
        v
    };
    assert_eq!(
        live,
        [
            without_delta(py_entry(Some("all"), "c", 9, 0, Operation::Put, b"live")),
            without_delta(py_entry(Some("all"), "a", 10, 0, Operation::Delete, b"")),
            without_delta(py_entry(Some("c"), "c", 9, 0, Operation::Put, b"live")),
        ]
    );
    peer.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stream_written_by_py_is_consumed_by_rust_ordered_and_pull() {
    let server = TestServer::start();
    let stream = "PY_STREAM";
    let binary = binary_payload(3);
    let large = large_payload();
    let first_headers: &[(&str, &str)] = &[
        ("X-Order", "1"),
        ("x-lower-case", "lower"),
        ("X-Unicode", "grüße, 世界 ✓"),
        ("X-Colon", "http://host:4222/path?q=1"),
        ("X-Empty", ""),
        ("Nats-Msg-Id", "py-1"),
    ];
    let dup_headers: &[(&str, &str)] = &[("Nats-Msg-Id", "py-1")];
    let other_headers: &[(&str, &str)] = &[("X-Kind", "other")];
    let big_headers: &[(&str, &str)] = &[("X-Big", "yes")];
    // (subject, headers, payload); the third repeats the first's Nats-Msg-Id and is dropped.
    let sent: Vec<(&str, Option<Pairs>, Vec<u8>)> = vec![
        ("pyjs.orders.1", Some(first_headers), binary.clone()),
        ("pyjs.orders.2", None, b"plain".to_vec()),
        ("pyjs.orders.1", Some(dup_headers), b"duplicate".to_vec()),
        ("pyjs.other", Some(other_headers), Vec::new()),
        ("pyjs.orders.3", Some(big_headers), large.clone()),
    ];
    let spec = json!({
        "stream": stream,
        "subjects": ["pyjs.>"],
        "messages": sent.iter().map(|(subject, headers, payload)| json!({
            "subject": subject,
            "headers": spec_headers(*headers),
            "payload_hex": hex(payload),
        })).collect::<Vec<_>>(),
    });
    let mut peer = Peer::start("js-publish", &server, stream, &[], spec).await;
    for (seq, duplicate) in [(1, false), (2, false), (1, true), (3, false), (4, false)] {
        peer.expect_json(json!({ "stream": stream, "seq": seq, "duplicate": duplicate }))
            .await;
    }
    peer.expect_line("done").await;
    peer.finish().await;

    // What the stream holds, by sequence.
    let stored = [&sent[0], &sent[1], &sent[3], &sent[4]];
    let check = |m: &JsMessage, seq: u64, what: &str| {
        let (subject, headers, payload) = stored[seq as usize - 1];
        assert_eq!(m.message.subject.as_str(), *subject, "{what}: subject");
        assert_eq!(
            our_headers(m.message.headers.as_ref()),
            headers.map(pairs),
            "{what}: headers"
        );
        assert!(
            m.message.payload[..] == payload[..],
            "{what}: payload differs"
        );
        let info = m
            .info()
            .unwrap_or_else(|| panic!("{what}: no JetStream metadata"));
        assert_eq!(info.stream, stream, "{what}: stream");
        assert_eq!(info.stream_sequence, seq, "{what}: stream sequence");
        info
    };

    let client = connect(&server).await;
    let js = client.jetstream();
    let info = js.stream_info(stream).await.expect("stream info");
    assert_eq!(info.config.subjects, ["pyjs.>"]);
    assert_eq!((info.state.messages, info.state.last_seq), (4, 4));

    // Ordered, the whole stream.
    let mut ordered = js.ordered(stream, OrderedOptions::default());
    for seq in 1..=4u64 {
        let m = next_js(&mut ordered, &format!("ordered message {seq}")).await;
        let info = check(&m, seq, &format!("ordered message {seq}"));
        assert_eq!(
            (info.consumer_sequence, info.delivered, info.pending),
            (seq, 1, 4 - seq),
            "ordered message {seq}"
        );
    }
    // Ordered, filtered: the orders only.
    let mut orders = js.ordered(
        stream,
        OrderedOptions {
            filter_subject: Some("pyjs.orders.>".into()),
            ..Default::default()
        },
    );
    for (n, seq) in [1u64, 2, 4].into_iter().enumerate() {
        let m = next_js(&mut orders, &format!("filtered message {seq}")).await;
        let info = check(&m, seq, &format!("filtered message {seq}"));
        assert_eq!(
            (info.consumer_sequence, info.pending),
            (n as u64 + 1, 2 - n as u64)
        );
    }

    // A durable pull consumer with explicit acks: ack, nak (redelivered), ack.
    let consumer = "rust-pull";
    let created = js
        .create_consumer(
            stream,
            &ConsumerConfig {
                durable_name: Some(consumer.into()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await
        .expect("create pull consumer");
    assert_eq!((created.name.as_str(), created.num_pending), (consumer, 4));
    let first = within(
        STEP * 2,
        "first fetch",
        js.fetch(
            stream,
            consumer,
            FetchOptions {
                batch: 3,
                expires: Duration::from_secs(STEP),
            },
        ),
    )
    .await
    .expect("fetch");
    let seqs: Vec<u64> = first
        .iter()
        .map(|m| m.info().unwrap().stream_sequence)
        .collect();
    assert_eq!(seqs, [1, 2, 3], "first fetch");
    for (m, seq) in first.iter().zip(1..) {
        let info = check(m, seq, &format!("pulled message {seq}"));
        assert_eq!((info.consumer, info.delivered), (consumer.to_owned(), 1));
    }
    first[0].ack().unwrap();
    first[1].nak().unwrap();
    first[2].ack().unwrap();
    // The nak makes 2 come again (second delivery) alongside 4, in an order the server picks.
    let mut second = within(
        STEP * 2,
        "second fetch",
        js.fetch(
            stream,
            consumer,
            FetchOptions {
                batch: 2,
                expires: Duration::from_secs(STEP),
            },
        ),
    )
    .await
    .expect("fetch");
    second.sort_by_key(|m| m.info().unwrap().stream_sequence);
    let got: Vec<(u64, u64)> = second
        .iter()
        .map(|m| {
            let i = m.info().unwrap();
            (i.stream_sequence, i.delivered)
        })
        .collect();
    assert_eq!(
        got,
        [(2, 2), (4, 1)],
        "second fetch: (stream seq, delivered)"
    );
    for m in &second {
        let seq = m.info().unwrap().stream_sequence;
        check(m, seq, &format!("pulled message {seq}"));
        m.ack().unwrap();
    }
    // Had an ack been lost, its message would come again after the 1 s ack wait.
    let none = within(
        STEP,
        "an empty fetch",
        js.fetch(
            stream,
            consumer,
            FetchOptions {
                batch: 1,
                expires: Duration::from_millis(2500),
            },
        ),
    )
    .await
    .expect("fetch");
    assert!(
        none.is_empty(),
        "redelivered after ack: {:?}",
        none.iter().map(|m| m.info()).collect::<Vec<_>>()
    );
    let info = js.consumer_info(stream, consumer).await.expect("info");
    assert_eq!(
        (
            info.num_pending,
            info.num_ack_pending,
            info.delivered.stream_seq,
            info.ack_floor.stream_seq
        ),
        (0, 0, 4, 4)
    );
}

#[tokio::test]
async fn stream_written_by_rust_is_consumed_by_py_pull_and_ordered() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let js = client.jetstream();
    let stream = "RUST_STREAM";
    let info = within(
        STEP,
        "creating the stream",
        js.create_stream(&StreamConfig::new(stream, ["rustjs.>"])),
    )
    .await
    .expect("create stream");
    assert_eq!(info.config.name, stream);

    let binary = binary_payload(4);
    let large = large_payload();
    let headers: &[(&str, &str)] = &[
        ("X-From", "nats-ws"),
        ("x-lower-case", "lower"),
        ("X-Unicode", "grüße, 世界 ✓"),
        ("X-Colon", "a:b: c"),
        ("X-Empty", ""),
    ];
    let ack = js.publish("rustjs.a", &binary).await.expect("publish 1");
    assert_eq!(
        (ack.stream.as_str(), ack.seq, ack.duplicate),
        (stream, 1, false)
    );
    let with_id = PublishOptions::default().msg_id("rust-2");
    let ack = js
        .publish_with("rustjs.b", Some(&header_map(headers)), b"two", &with_id)
        .await
        .expect("publish 2");
    assert_eq!((ack.seq, ack.duplicate), (2, false));
    let ack = js
        .publish_with("rustjs.b", None, b"dropped", &with_id)
        .await
        .expect("publish 2 again");
    assert_eq!((ack.seq, ack.duplicate), (2, true), "same Nats-Msg-Id");
    let ack = js.publish("rustjs.c.deep", b"").await.expect("publish 3");
    assert_eq!(ack.seq, 3);
    let expect_3 = PublishOptions::default().expected_last_sequence(3);
    let ack = js
        .publish_with("rustjs.a", None, &large, &expect_3)
        .await
        .expect("publish 4");
    assert_eq!(ack.seq, 4);
    let stale = js
        .publish_with("rustjs.a", None, b"stale", &expect_3)
        .await
        .expect_err("expected last sequence 3 after 4");
    assert_eq!(stale.err_code(), Some(10071), "{stale}");

    let spec = json!({
        "stream": stream,
        "filter": "rustjs.>",
        "durable": "py-pull",
        "count": 4,
        "live": 1,
    });
    let mut peer = Peer::start("js-consume", &server, stream, &[], spec).await;
    // (subject, our headers (without Nats-Msg-Id), payload, Nats-Msg-Id if we chose it)
    let want: Vec<(&str, Pairs, Vec<u8>, Option<&str>)> = vec![
        ("rustjs.a", &[], binary.clone(), None),
        ("rustjs.b", headers, b"two".to_vec(), Some("rust-2")),
        ("rustjs.c.deep", &[], Vec::new(), None),
        (
            "rustjs.a",
            &[("Nats-Expected-Last-Sequence", "3")],
            large.clone(),
            None,
        ),
        ("rustjs.live", &[], b"live".to_vec(), None),
    ];
    let check = |v: &Value, via: &str, seq: u64, consumer_seq: u64, pending: u64| {
        let what = format!("{via} message {seq} at nats-py");
        let (subject, headers, payload, msg_id) = &want[seq as usize - 1];
        assert_eq!(v["via"], via, "{what}");
        assert_eq!(v["subject"], *subject, "{what}: subject");
        assert_eq!(v["stream"], stream, "{what}: stream");
        assert_eq!(v["stream_seq"], seq, "{what}: stream seq");
        assert_eq!(v["consumer_seq"], consumer_seq, "{what}: consumer seq");
        assert_eq!(v["num_pending"], pending, "{what}: pending");
        assert_eq!(v["num_delivered"], 1, "{what}: delivered");
        assert!(v["payload_hex"] == hex(payload), "{what}: payload differs");
        let got: Vec<(String, String)> = v["headers"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no headers (want Nats-Msg-Id at least)"))
            .iter()
            .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
            .collect();
        let id = got
            .iter()
            .filter(|(n, _)| n == "Nats-Msg-Id")
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>();
        assert_eq!(id.len(), 1, "{what}: one Nats-Msg-Id in {got:?}");
        match msg_id {
            Some(want) => assert_eq!(id[0], *want, "{what}: Nats-Msg-Id"),
            None => assert!(!id[0].is_empty(), "{what}: empty Nats-Msg-Id"),
        }
        let rest: Vec<_> = got
            .into_iter()
            .filter(|(n, _)| n != "Nats-Msg-Id")
            .collect();
        assert_eq!(rest, pairs(headers), "{what}: headers");
        let reply = v["reply"].as_str().unwrap_or_default();
        assert!(
            reply.starts_with(&format!("$JS.ACK.{stream}.")),
            "{what}: reply {reply}"
        );
    };
    for seq in 1..=4u64 {
        let v = peer.json().await;
        check(&v, "pull", seq, seq, 4 - seq);
        assert!(
            v["reply"]
                .as_str()
                .unwrap()
                .starts_with(&format!("$JS.ACK.{stream}.py-pull.")),
            "{v}"
        );
    }
    peer.expect_json(json!({ "pull_info": {
        "name": "py-pull",
        "num_pending": 0,
        "num_ack_pending": 0,
        "delivered_stream_seq": 4,
        "ack_floor_stream_seq": 4,
    } }))
    .await;
    for seq in 1..=4u64 {
        let v = peer.json().await;
        check(&v, "ordered", seq, seq, 4 - seq);
    }
    peer.expect_line("ready").await;
    let ack = js.publish("rustjs.live", "live").await.expect("publish 5");
    assert_eq!(ack.seq, 5);
    let v = peer.json().await;
    check(&v, "ordered", 5, 5, 0);
    peer.finish().await;

    // Our view agrees.
    let info = js.consumer_info(stream, "py-pull").await.expect("info");
    assert_eq!((info.num_ack_pending, info.ack_floor.stream_seq), (0, 4));
    assert_eq!(info.num_pending, 1, "the live message is not pulled");
}
