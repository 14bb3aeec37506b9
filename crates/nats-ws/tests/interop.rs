#![cfg(not(target_arch = "wasm32"))]
//! Interop with a NATS client we did not write: nats-py (PyPI `nats-py`) on the server's TCP client
//! port, our client on its WebSocket port, both on one real nats-server.
//!
//! The Python side is `tests/interop_peer.py`, run with `python3` from PATH. The test hands it a JSON
//! spec on stdin and reads JSON lines from its stdout (payloads as hex, headers as `[name, value]`
//! pairs). We synchronise on the `ready` line it prints once its subscription is flushed: no sleeps.
//!
//! nats-py facts the assertions rely on (checked against nats-py 2.16):
//! - It takes and gives headers as a `dict`, so one name carries one value on its side. When it
//!   *receives* a repeated name it keeps the **last** value, at the position of the name's **first**
//!   occurrence (plain `dict` assignment in `_parse_header_lines`).
//! - It trims the whitespace around header values, when sending and when receiving; so do we.
//! - Header names keep their case on both sides.

mod common;

/// Headers to send, as ordered name/value pairs; `None` for a message without headers.
type HeaderList<'a> = Option<&'a [(&'a str, &'a str)]>;

use std::time::Duration;

use common::peer::{binary_payload, header_map, hex, our_headers, pairs, spec_headers, Peer, STEP};
use common::{connect, within, TestServer};
use futures::StreamExt;
use nats_ws::{HeaderMap, Message, Subscriber};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length {}", s.len());
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex from the peer"))
        .collect()
}

/// Compares payloads without dumping 200 kB into the failure message.
#[track_caller]
fn assert_bytes(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        let show = |b: &[u8]| {
            if b.len() <= 64 {
                format!("{b:?}")
            } else {
                format!("{:?}...", &b[..64])
            }
        };
        panic!(
            "{what}: payload differs: got {} bytes, want {} bytes, first difference at {first:?}\n got: {}\nwant: {}",
            got.len(),
            want.len(),
            show(got),
            show(want)
        );
    }
}

/// Large enough to span several WebSocket frames and TCP reads.
fn large_payload() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect()
}

async fn next_message(sub: &mut Subscriber, what: &str) -> Message {
    within(STEP, what, sub.next())
        .await
        .unwrap_or_else(|| panic!("subscription ended while waiting for {what}"))
        .unwrap_or_else(|e| panic!("subscription error while waiting for {what}: {e}"))
}

/// A message as the peer printed it.
#[derive(Debug, Clone, PartialEq)]
struct PeerMessage {
    subject: String,
    reply: Option<String>,
    headers: Option<Vec<(String, String)>>,
    payload: Vec<u8>,
}

impl PeerMessage {
    fn parse(line: &str) -> Self {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("peer printed invalid JSON ({e}): {line:.200}"));
        let headers = match &v["headers"] {
            Value::Null => None,
            Value::Array(list) => Some(
                list.iter()
                    .map(|pair| {
                        (
                            pair[0].as_str().expect("header name").to_owned(),
                            pair[1].as_str().expect("header value").to_owned(),
                        )
                    })
                    .collect(),
            ),
            other => panic!("bad headers from peer: {other}"),
        };
        PeerMessage {
            subject: v["subject"].as_str().expect("subject").to_owned(),
            reply: v["reply"].as_str().map(str::to_owned),
            headers,
            payload: unhex(v["payload_hex"].as_str().expect("payload_hex")),
        }
    }
}

/// The nats-py peer process. Killed when dropped.
/// The next message the peer printed.
async fn peer_message(peer: &mut Peer) -> PeerMessage {
    PeerMessage::parse(&peer.line().await)
}

// ---------------------------------------------------------------------------------------------
// Messages with headers, both ways
// ---------------------------------------------------------------------------------------------

/// Headers nats-py can send (a dict: distinct names) that exercise case, UTF-8, spaces, a colon in
/// the value, an empty value, and padding (which nats-py trims before sending).
const PY_HEADERS: &[(&str, &str)] = &[
    ("X-Req-Id", "abc-123"),
    ("x-lower-case", "lower"),
    ("X-MiXeD-Case", "MiXeD VaLuE"),
    ("X-Unicode", "grüße, 世界 ✓"),
    ("X-Spaces", "a b  c"),
    ("X-Colon", "http://host:4222/path?q=1"),
    ("X-Empty", ""),
    ("X-Padded", "  padded value  "),
];

/// `PY_HEADERS` as any receiver sees them: nats-py trimmed `X-Padded`.
const PY_HEADERS_RECEIVED: &[(&str, &str)] = &[
    ("X-Req-Id", "abc-123"),
    ("x-lower-case", "lower"),
    ("X-MiXeD-Case", "MiXeD VaLuE"),
    ("X-Unicode", "grüße, 世界 ✓"),
    ("X-Spaces", "a b  c"),
    ("X-Colon", "http://host:4222/path?q=1"),
    ("X-Empty", ""),
    ("X-Padded", "padded value"),
];

#[tokio::test]
async fn py_publishes_headers_and_payloads_rust_receives_them_exactly() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let subject = "interop.py2rust";
    let mut sub = client.subscribe(subject).expect("subscribe");
    within(STEP, "our subscription to be flushed", client.flush())
        .await
        .expect("flush");

    let binary = binary_payload(1);
    let large = large_payload();
    let one = [("X-Only", "1")];
    let with_reply = [("X-Kind", "with reply")];
    // (headers, payload, reply)
    let sent: Vec<(HeaderList<'_>, Vec<u8>, Option<&str>)> = vec![
        (Some(PY_HEADERS), binary.clone(), None),
        (None, "plain ü".as_bytes().to_vec(), None),
        (Some(&one), Vec::new(), None),
        (None, large.clone(), None),
        (
            Some(&with_reply),
            b"reply me".to_vec(),
            Some("interop.reply.to"),
        ),
    ];
    let spec = json!({
        "messages": sent
            .iter()
            .map(|(headers, payload, reply)| json!({
                "headers": spec_headers(*headers),
                "payload_hex": hex(payload),
                "reply": reply,
            }))
            .collect::<Vec<_>>(),
    });
    let mut peer = Peer::start("publish", &server, subject, &["--count", "0"], spec).await;
    peer.expect_line("done").await;
    peer.finish().await;

    // One publishing connection: the server delivers in order.
    let m = next_message(&mut sub, "py message 1 (headers + binary)").await;
    assert_eq!(m.subject.as_str(), subject);
    assert_eq!(m.reply, None);
    assert_eq!(
        our_headers(m.headers.as_ref()),
        Some(pairs(PY_HEADERS_RECEIVED))
    );
    let h = m.headers.as_ref().unwrap();
    assert_eq!(h.status(), None);
    assert_eq!(h.description(), None);
    // Case-insensitive lookup of case-preserved names.
    assert_eq!(h.get("x-mixed-case"), Some("MiXeD VaLuE"));
    assert_eq!(h.get("X-LOWER-CASE"), Some("lower"));
    assert_eq!(h.get("x-empty"), Some(""));
    assert_eq!(
        h.get_all("X-Unicode").collect::<Vec<_>>(),
        ["grüße, 世界 ✓"]
    );
    assert_bytes("py message 1", &m.payload, &binary);

    let m = next_message(&mut sub, "py message 2 (plain)").await;
    assert_eq!(m.headers, None, "a plain PUB must arrive without headers");
    assert_eq!(m.reply, None);
    assert_bytes("py message 2", &m.payload, "plain ü".as_bytes());

    let m = next_message(&mut sub, "py message 3 (headers, empty payload)").await;
    assert_eq!(our_headers(m.headers.as_ref()), Some(pairs(&one)));
    assert_bytes("py message 3", &m.payload, b"");

    let m = next_message(&mut sub, "py message 4 (200 kB)").await;
    assert_eq!(m.headers, None);
    assert_bytes("py message 4", &m.payload, &large);

    let m = next_message(&mut sub, "py message 5 (reply subject)").await;
    assert_eq!(m.reply.as_deref(), Some("interop.reply.to"));
    assert_eq!(our_headers(m.headers.as_ref()), Some(pairs(&with_reply)));
    assert_bytes("py message 5", &m.payload, b"reply me");
}

#[tokio::test]
async fn rust_publishes_headers_and_payloads_py_receives_them_exactly() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let subject = "interop.rust2py";
    let mut peer = Peer::start("subscribe", &server, subject, &["--count", "5"], json!({})).await;
    peer.expect_line("ready").await;

    let binary = binary_payload(2);
    let large = large_payload();
    let sent = header_map(&[
        ("X-Req-Id", "abc-123"),
        ("X-Multi", "one"),
        ("x-lower-case", "lower"),
        ("X-Multi", "two"),
        ("X-MiXeD-Case", "MiXeD VaLuE"),
        ("X-Unicode", "grüße, 世界 ✓"),
        ("X-Spaces", "a b  c"),
        ("X-Colon", "http://host:4222/path?q=1"),
        ("X-Empty", ""),
        ("X-Padded", "  padded value  "),
    ]);
    client
        .publish_with_headers(subject, &sent, &binary)
        .expect("publish 1");
    client
        .publish(subject, "plain ü".as_bytes())
        .expect("publish 2");
    let one = header_map(&[("X-Only", "1")]);
    client
        .publish_with_headers(subject, &one, b"")
        .expect("publish 3");
    client.publish(subject, &large).expect("publish 4");
    let kind = header_map(&[("X-Kind", "with reply")]);
    client
        .publish_message(subject, Some("interop.reply.to"), Some(&kind), b"reply me")
        .expect("publish 5");
    within(STEP, "our publishes to be flushed", client.flush())
        .await
        .expect("flush");

    let m = peer_message(&mut peer).await;
    assert_eq!(m.subject, subject);
    assert_eq!(m.reply, None);
    // nats-py keeps the last value of the repeated `X-Multi`, at the position of its first
    // occurrence, and trims the padding of `X-Padded`.
    assert_eq!(
        m.headers,
        Some(pairs(&[
            ("X-Req-Id", "abc-123"),
            ("X-Multi", "two"),
            ("x-lower-case", "lower"),
            ("X-MiXeD-Case", "MiXeD VaLuE"),
            ("X-Unicode", "grüße, 世界 ✓"),
            ("X-Spaces", "a b  c"),
            ("X-Colon", "http://host:4222/path?q=1"),
            ("X-Empty", ""),
            ("X-Padded", "padded value"),
        ]))
    );
    assert_bytes("rust message 1 at py", &m.payload, &binary);

    let m = peer_message(&mut peer).await;
    assert_eq!(
        m.headers, None,
        "a plain publish must arrive without headers"
    );
    assert_bytes("rust message 2 at py", &m.payload, "plain ü".as_bytes());

    let m = peer_message(&mut peer).await;
    assert_eq!(m.headers, Some(pairs(&[("X-Only", "1")])));
    assert_bytes("rust message 3 at py", &m.payload, b"");

    let m = peer_message(&mut peer).await;
    assert_eq!(m.headers, None);
    assert_bytes("rust message 4 at py", &m.payload, &large);

    let m = peer_message(&mut peer).await;
    assert_eq!(m.reply.as_deref(), Some("interop.reply.to"));
    assert_eq!(m.headers, Some(pairs(&[("X-Kind", "with reply")])));
    assert_bytes("rust message 5 at py", &m.payload, b"reply me");

    peer.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Request/reply, both ways
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rust_requests_py_responds_with_headers() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let subject = "interop.rpc.py";
    let prefix = b"py:\x00\xff".to_vec();
    let reply_headers = [("X-Responder", "nats-py"), ("X-Unicode", "ответ ✓")];
    let spec = json!({
        "reply_headers": spec_headers(Some(&reply_headers)),
        "reply_prefix_hex": hex(&prefix),
    });
    // Three requests with headers (incl. a repeated name) and one without, all in flight at once.
    let requests: Vec<(Option<HeaderMap>, Vec<u8>)> = (0..4u8)
        .map(|i| {
            let mut payload = vec![b'0' + i, 0xff, 0x00, b'\r', b'\n'];
            payload.extend_from_slice("ü".as_bytes());
            let headers = (i < 3).then(|| {
                header_map(&[
                    ("X-Seq", &i.to_string()),
                    ("X-Multi", "a"),
                    ("X-Multi", "b"),
                    ("X-Unicode", "frage ✓"),
                ])
            });
            (headers, payload)
        })
        .collect();
    let mut peer = Peer::start(
        "responder",
        &server,
        subject,
        &["--count", &requests.len().to_string()],
        spec,
    )
    .await;
    peer.expect_line("ready").await;

    let replies = within(
        STEP * 2,
        "replies from nats-py",
        futures::future::join_all(requests.iter().map(|(headers, payload)| {
            client.request_with(
                subject,
                headers.as_ref(),
                payload,
                Duration::from_secs(STEP),
            )
        })),
    )
    .await;

    for (i, ((_, payload), reply)) in requests.iter().zip(replies).enumerate() {
        let reply = reply.unwrap_or_else(|e| panic!("request {i} failed: {e}"));
        assert!(
            reply.subject.starts_with("_INBOX."),
            "reply {i} delivered on {}",
            reply.subject.as_str()
        );
        let mut want_headers = reply_headers.to_vec();
        let seq = i.to_string();
        if i < 3 {
            want_headers.push(("X-Echo-Seq", &seq));
        }
        assert_eq!(
            our_headers(reply.headers.as_ref()),
            Some(pairs(&want_headers)),
            "reply {i}"
        );
        assert_eq!(reply.status(), None, "reply {i}");
        let h = reply.headers.as_ref().unwrap();
        assert_eq!(h.get("x-responder"), Some("nats-py"));
        let mut want = prefix.clone();
        want.extend(payload.iter().rev());
        assert_bytes(&format!("reply {i}"), &reply.payload, &want);
    }

    // What nats-py saw of our requests (arrival order may differ from ours: match on payload).
    let mut seen = Vec::new();
    for _ in 0..requests.len() {
        seen.push(peer_message(&mut peer).await);
    }
    peer.finish().await;
    for (i, (_, payload)) in requests.iter().enumerate() {
        let m = seen
            .iter()
            .find(|m| &m.payload == payload)
            .unwrap_or_else(|| {
                panic!("nats-py never saw request {i} with its exact payload: {seen:?}")
            });
        assert_eq!(m.subject, subject);
        assert!(
            m.reply.as_deref().is_some_and(|r| r.starts_with("_INBOX.")),
            "request {i} reply subject at py: {:?}",
            m.reply
        );
        let want = (i < 3).then(|| {
            // The repeated `X-Multi` collapses to its last value on the nats-py side.
            pairs(&[
                ("X-Seq", &i.to_string()),
                ("X-Multi", "b"),
                ("X-Unicode", "frage ✓"),
            ])
        });
        assert_eq!(m.headers, want, "request {i} headers at py");
    }
}

#[tokio::test]
async fn py_requests_rust_responds_with_headers() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let subject = "interop.rpc.rust";
    let mut sub = client.subscribe(subject).expect("subscribe");
    within(STEP, "our subscription to be flushed", client.flush())
        .await
        .expect("flush");

    let req_headers: &[(&str, &str)] = &[
        ("X-Seq", "0"),
        ("x-lower", "v"),
        ("X-Unicode", "frage ✓"),
        ("X-Colon", "a:b: c"),
    ];
    let binary = binary_payload(3);
    let requests: Vec<(HeaderList<'_>, Vec<u8>)> = vec![
        (Some(req_headers), binary.clone()),
        (None, b"plain request".to_vec()),
        (Some(&[("X-Seq", "2")]), Vec::new()),
    ];
    let spec = json!({
        "requests": requests
            .iter()
            .map(|(headers, payload)| json!({
                "headers": spec_headers(*headers),
                "payload_hex": hex(payload),
            }))
            .collect::<Vec<_>>(),
    });
    let mut peer = Peer::start("requester", &server, subject, &["--count", "0"], spec).await;

    for n in 0..requests.len() {
        let m = next_message(&mut sub, &format!("request {n} from nats-py")).await;
        assert_eq!(m.subject.as_str(), subject);
        let i = requests
            .iter()
            .position(|(_, p)| p[..] == m.payload[..])
            .unwrap_or_else(|| {
                panic!(
                    "request with unknown payload ({} bytes, headers {:?})",
                    m.payload.len(),
                    m.headers
                )
            });
        let reply = m
            .reply
            .as_deref()
            .unwrap_or_else(|| panic!("request {i} has no reply subject"))
            .to_owned();
        assert!(
            reply.starts_with("_INBOX."),
            "request {i} reply subject {reply}"
        );
        assert_eq!(
            our_headers(m.headers.as_ref()),
            requests[i].0.map(pairs),
            "request {i} headers at rust"
        );

        let mut payload = b"rust:".to_vec();
        payload.extend(m.payload.iter().rev());
        let headers = m.headers.as_ref().map(|h| {
            let mut out = header_map(&[
                ("X-Responder", "nats-ws"),
                ("X-Multi", "one"),
                ("X-Multi", "two"),
                ("X-Unicode", "antwort ✓"),
            ]);
            if let Some(seq) = h.get("x-seq") {
                out.append("X-Echo-Seq", seq);
            }
            out
        });
        client
            .publish_message(&reply, None, headers.as_ref(), &payload)
            .expect("reply");
    }
    within(STEP, "our replies to be flushed", client.flush())
        .await
        .expect("flush");

    // nats-py prints the replies in the order of its requests.
    for (i, (headers, payload)) in requests.iter().enumerate() {
        let m = peer_message(&mut peer).await;
        assert!(
            m.subject.starts_with("_INBOX."),
            "reply {i} at py on {}",
            m.subject
        );
        let want = headers.map(|h| {
            let seq = h.iter().find(|(n, _)| *n == "X-Seq").unwrap().1;
            // The repeated `X-Multi` collapses to its last value on the nats-py side.
            pairs(&[
                ("X-Responder", "nats-ws"),
                ("X-Multi", "two"),
                ("X-Unicode", "antwort ✓"),
                ("X-Echo-Seq", seq),
            ])
        });
        assert_eq!(m.headers, want, "reply {i} headers at py");
        let mut want_payload = b"rust:".to_vec();
        want_payload.extend(payload.iter().rev());
        assert_bytes(&format!("reply {i} at py"), &m.payload, &want_payload);
    }
    peer.finish().await;
}
