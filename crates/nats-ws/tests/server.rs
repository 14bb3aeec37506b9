//! The client against a real nats-server, over its WebSocket port (or, with
//! `NATS_WS_TEST_TRANSPORT=tcp`, its client port: see `common::TestServer::url`).

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{quick_reconnect, wait_status, within, TestServer};
use futures::StreamExt;
use nats_ws::{
    ClientEvent, ConnectionError, HeaderMap, Options, PublishError, RequestError, ServerError,
    Status, SubscribeError, SubscribeOptions,
};

#[tokio::test]
async fn publish_and_subscribe() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url()))
        .await
        .expect("connect");
    match client.status() {
        Status::Connected {
            server_name,
            version,
            ..
        } => {
            assert_eq!(server_name, "nats-ws-test");
            assert!(!version.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let mut sub = client.subscribe("greet.*").unwrap();
    client.flush().await.unwrap();
    client.publish("greet.joe", "hello").unwrap();
    client.publish("other", "not for us").unwrap();
    client.publish("greet.ann", "hi").unwrap();
    let a = within(5, "first message", sub.next())
        .await
        .unwrap()
        .unwrap();
    let b = within(5, "second message", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.subject.as_str(), &a.payload[..]),
        ("greet.joe", &b"hello"[..])
    );
    assert_eq!(
        (b.subject.as_str(), &b.payload[..]),
        ("greet.ann", &b"hi"[..])
    );
}

#[tokio::test]
async fn queue_group_spreads_messages_without_duplicates() {
    let server = TestServer::start();
    let publisher = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut members = Vec::new();
    for _ in 0..3 {
        let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
        let sub = client.queue_subscribe("jobs", "workers").unwrap();
        client.flush().await.unwrap();
        members.push((client, sub));
    }
    for i in 0..30 {
        publisher.publish("jobs", format!("job-{i}")).unwrap();
    }
    publisher.flush().await.unwrap();
    let (clients, subs): (Vec<_>, Vec<_>) = members.into_iter().unzip();
    let mut merged = futures::stream::select_all(
        subs.into_iter()
            .enumerate()
            .map(|(i, sub)| sub.map(move |m| (i, m))),
    );
    let mut seen = HashSet::new();
    let mut per_member = [0usize; 3];
    for _ in 0..30 {
        let (member, msg) = within(10, "30 queue messages", merged.next())
            .await
            .unwrap();
        assert!(seen.insert(msg.unwrap().payload), "delivered twice");
        per_member[member] += 1;
    }
    assert!(
        per_member.iter().filter(|&&n| n > 0).count() > 1,
        "one member got everything: {per_member:?}"
    );
    // Nothing more: once every member has flushed, any extra delivery would already be queued.
    for client in &clients {
        client.flush().await.unwrap();
    }
    assert!(
        futures::poll!(merged.next()).is_pending(),
        "more than 30 deliveries"
    );
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let server = TestServer::start();
    let responder = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let requester = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut requests = responder.subscribe("svc.echo").unwrap();
    responder.flush().await.unwrap();
    let serve = {
        let responder = responder.clone();
        tokio::spawn(async move {
            while let Some(Ok(req)) = requests.next().await {
                let reply = req.reply.expect("request has a reply subject");
                let mut body = b"echo: ".to_vec();
                body.extend_from_slice(&req.payload);
                responder.publish(&reply, body).unwrap();
            }
        })
    };
    for i in 0..20 {
        let reply = within(5, "reply", requester.request("svc.echo", format!("{i}")))
            .await
            .unwrap();
        assert_eq!(reply.payload, format!("echo: {i}"));
    }
    let err = within(5, "no responders", requester.request("nobody.home", "?"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::NoResponders {
            subject: "nobody.home".into()
        }
    );
    // A request whose responder never answers times out at its deadline.
    let _silent = responder.subscribe("svc.silent").unwrap();
    responder.flush().await.unwrap();
    let err = requester
        .request_with("svc.silent", None, b"", Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::TimedOut { .. }), "{err:?}");
    serve.abort();
}

#[tokio::test]
async fn headers_round_trip() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut sub = client.subscribe("h").unwrap();
    client.flush().await.unwrap();
    let mut headers = HeaderMap::new();
    headers
        .append("Nats-Msg-Id", "id-1")
        .append("X-Multi", "a")
        .append("X-Multi", "b")
        .append("X-Text", "ünïcode value");
    client
        .publish_with_headers("h", &headers, [0u8, 1, 2, 255])
        .unwrap();
    let msg = within(5, "message with headers", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.headers.as_ref(), Some(&headers));
    assert_eq!(&msg.payload[..], &[0u8, 1, 2, 255]);
}

/// nats-server closes a connection whose CONNECT is longer than its max_control_line (a long
/// connection name, a large JWT): the client names that, with the line's size, instead of
/// reconnecting for ever; a server configured for longer lines takes the same client.
#[tokio::test]
async fn a_connect_line_longer_than_the_server_takes_is_named_and_not_retried_for_ever() {
    let name = format!("long-{}", "n".repeat(5000));
    let server = TestServer::start();
    let err = nats_ws::connect(Options::new(server.url()).name(name.clone()))
        .await
        .unwrap_err();
    let ConnectionError::ConnectTooLong { size } = err else {
        panic!("{err:?}");
    };
    assert!(size > 5000 && size < 5300, "{size}");
    // A name that fits connects.
    let fits = nats_ws::connect(Options::new(server.url()).name("n".repeat(3000)))
        .await
        .unwrap();
    fits.flush().await.unwrap();

    // Refused twice by the same server, a client that keeps trying goes Offline.
    let client = nats_ws::start(quick_reconnect(server.url()).name(name.clone())).unwrap();
    let mut statuses = client.status_stream();
    let last = within(20, "offline after two refusals", async {
        loop {
            if let Status::Offline { last_error } = statuses.next().await.expect("statuses") {
                return last_error;
            }
        }
    })
    .await;
    assert!(
        matches!(last, ConnectionError::ConnectTooLong { .. }),
        "{last:?}"
    );

    let roomy = TestServer::start_with("max_control_line: 16384");
    let client = nats_ws::connect(Options::new(roomy.url()).name(name))
        .await
        .unwrap();
    client.flush().await.unwrap();
}

/// nats-server closes a connection whose command line is over its `max_control_line` (4 KiB):
/// a subscription or publish that would need one is refused before it is sent, and the
/// connection, its subscriptions and its other traffic go on. Up to the limit, subjects work.
#[tokio::test]
async fn a_subject_too_long_for_the_server_is_refused_and_the_connection_stays_up() {
    use futures::FutureExt as _;
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut statuses = client.status_stream();
    assert!(statuses.next().await.is_some_and(|s| s.is_connected()));
    let mut sub = client.subscribe("short").unwrap();

    let long = format!("long.{}", "x".repeat(10_000));
    assert!(matches!(
        client.subscribe(&long),
        Err(SubscribeError::SubjectTooLong { max: 4096, .. })
    ));
    assert!(matches!(
        client.publish(&long, "x"),
        Err(PublishError::SubjectTooLong { max: 4096, .. })
    ));
    let err = client.request(&long, "x").await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Publish(PublishError::SubjectTooLong { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().len() < 400, "{err}");

    // The longest that fits: `SUB <subject> <sid>` and `PUB <subject> <size>` within 4096.
    let fits = format!("fits.{}", "y".repeat(4096 - 5 - 3));
    let mut near = client.subscribe(&fits).unwrap();
    client.publish(&fits, "near").unwrap();
    let m = within(5, "the message on the longest subject", near.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"near");
    client.publish("short", "after").unwrap();
    let m = within(5, "a message after the refusals", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&m.payload[..], b"after");
    client.flush().await.unwrap();
    // Never disconnected meanwhile.
    assert!(statuses.next().now_or_never().is_none());
}

#[tokio::test]
async fn oversize_payload_is_refused_and_the_connection_stays_up() {
    let server = TestServer::start_with("max_payload: 1024");
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    assert_eq!(client.max_payload(), 1024);
    let mut sub = client.subscribe("big").unwrap();
    let err = client.publish("big", vec![7u8; 2000]).unwrap_err();
    assert_eq!(
        err,
        PublishError::MaxPayloadExceeded {
            size: 2000,
            max: 1024
        }
    );
    client.publish("big", vec![7u8; 1024]).unwrap();
    let msg = within(5, "max-size message", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload.len(), 1024);
    assert!(client.status().is_connected());
}

#[tokio::test]
async fn a_message_over_64_mib_is_delivered_by_a_server_that_allows_it() {
    // nats-server lets `max_payload` pass 64 MiB when `max_pending` is raised too.
    let server = TestServer::start_with("max_payload: 83886080\nmax_pending: 268435456");
    let subscriber = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let publisher = nats_ws::connect(Options::new(server.url())).await.unwrap();
    assert_eq!(subscriber.max_payload(), 80 << 20);
    // A subscription holds 64 MiB unread by default (as in nats.go), so this one may hold more.
    let mut sub = subscriber
        .subscribe_with_options(
            "big",
            SubscribeOptions::default().pending_limits(8, 128 << 20),
        )
        .unwrap();
    subscriber.flush().await.unwrap();
    let payload: Vec<u8> = (0..(64 << 20) + 1).map(|i: u32| (i % 251) as u8).collect();
    publisher.publish("big", &payload).unwrap();
    publisher.flush().await.unwrap();
    let msg = within(30, "the 64 MiB + 1 message", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        msg.payload == payload,
        "{} bytes, not the ones sent",
        msg.payload.len()
    );
    assert!(
        subscriber.status().is_connected(),
        "{:?}",
        subscriber.status()
    );
}

#[tokio::test]
async fn a_subject_that_is_not_utf8_from_another_client_costs_one_replaced_character() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("svc.*").unwrap();
    client.flush().await.unwrap();

    // A client of its own, in plain protocol: nats-server checks a subject's separators only,
    // so it forwards these bytes as they were published.
    let port = server.client_url().rsplit(':').next().unwrap().to_owned();
    let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut tcp = BufReader::new(tcp);
    let mut info = String::new();
    tcp.read_line(&mut info).await.unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    tcp.get_mut()
        .write_all(b"CONNECT {\"verbose\":false}\r\nPUB svc.x \xff 2\r\nhi\r\nPUB svc.\xfe 3\r\nbad\r\nPUB svc.y 2\r\nok\r\nPING\r\n")
        .await
        .unwrap();
    let mut pong = String::new();
    tcp.read_line(&mut pong).await.unwrap();
    assert_eq!(pong, "PONG\r\n");

    let mut got = Vec::new();
    for _ in 0..3 {
        let m = within(5, "the three messages", sub.next())
            .await
            .unwrap()
            .unwrap();
        got.push((
            m.subject.to_string(),
            m.reply.as_deref().map(str::to_owned),
            m.payload,
        ));
    }
    assert_eq!(
        got,
        [
            ("svc.x".into(), Some("\u{fffd}".into()), "hi".into()),
            ("svc.\u{fffd}".into(), None, "bad".into()),
            ("svc.y".into(), None, "ok".into()),
        ]
    );
    for subject in ["svc.x", "svc.\u{fffd}"] {
        let event = within(5, "what was replaced", events.next()).await.unwrap();
        assert_eq!(
            event,
            ClientEvent::ServerError(ServerError::NotUtf8 {
                subject: subject.into()
            })
        );
    }
    assert!(client.status().is_connected(), "{:?}", client.status());
}

const RESTRICTED: &str = r#"
authorization {
  users = [
    { user: "alice", password: "alice-pw",
      permissions: { publish: ["public.>", "svc.>"], subscribe: ["public.>", "_INBOX.>"] } }
  ]
}
"#;

#[tokio::test]
async fn permission_violations_are_reported_and_the_connection_survives() {
    let server = TestServer::start_with(RESTRICTED);
    let client = nats_ws::connect(Options::new(server.url()).user_password("alice", "alice-pw"))
        .await
        .unwrap();
    let mut events = client.events();
    let mut denied = client.subscribe("secret.>").unwrap();
    let first = within(5, "subscription denial", denied.next())
        .await
        .unwrap();
    assert_eq!(
        first,
        Err(SubscribeError::PermissionDenied {
            subject: "secret.>".into()
        })
    );
    assert!(denied.next().await.is_none(), "a denied subscription ends");

    client.publish("secret.plans", "x").unwrap();
    let event = within(5, "publish denial", events.next()).await.unwrap();
    assert_eq!(
        event,
        ClientEvent::ServerError(ServerError::PublishDenied {
            subject: "secret.plans".into()
        })
    );

    let mut allowed = client.subscribe("public.news").unwrap();
    client.publish("public.news", "still here").unwrap();
    let msg = within(5, "message after denials", allowed.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload, "still here");
    assert!(client.status().is_connected());
}

#[tokio::test]
async fn wrong_password_is_named() {
    let server = TestServer::start_with(RESTRICTED);
    let err = nats_ws::connect(Options::new(server.url()).user_password("alice", "nope"))
        .await
        .unwrap_err();
    assert_eq!(err, ConnectionError::AuthorizationViolation);
}

#[tokio::test]
async fn pointing_at_the_tcp_port_says_so() {
    let server = TestServer::start();
    let err = nats_ws::connect(Options::new(format!(
        "ws://127.0.0.1:{}",
        server.client_port
    )))
    .await
    .unwrap_err();
    assert!(matches!(err, ConnectionError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("looks like the NATS client (TCP) port"),
        "{err}"
    );
}

#[tokio::test]
async fn nats_url_at_the_websocket_port_says_so() {
    // A WebSocket listener waits for an HTTP upgrade and says nothing: the client times out
    // waiting for INFO, and the error says which port a nats:// url needs.
    let server = TestServer::start();
    let url = format!("nats://127.0.0.1:{}", server.ws_port);
    let err = nats_ws::connect(Options::new(url).connect_timeout(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains("client port"), "{err}");
}

#[tokio::test]
async fn tcp_and_websocket_clients_talk_to_each_other() {
    let server = TestServer::start();
    let tcp = nats_ws::connect(Options::new(server.client_url()))
        .await
        .expect("nats:// connects to the client port");
    let ws = nats_ws::connect(Options::new(server.ws_url()))
        .await
        .unwrap();
    let mut on_tcp = tcp.subscribe("both.ways").unwrap();
    let mut on_ws = ws.subscribe("both.ways").unwrap();
    tcp.flush().await.unwrap();
    ws.flush().await.unwrap();
    // Larger than one read of the TCP socket and than one outgoing frame.
    let big = vec![7u8; 300_000];
    ws.publish("both.ways", &big).unwrap();
    // Two connections' publishes have no order between them: route the first before the second.
    ws.flush().await.unwrap();
    tcp.publish("both.ways", "from tcp").unwrap();
    for sub in [&mut on_tcp, &mut on_ws] {
        let first = within(5, "the websocket client's message", sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.payload.len(), big.len());
        assert!(first.payload.iter().all(|&b| b == 7));
        let second = within(5, "the tcp client's message", sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.payload, "from tcp");
    }
    // Request/reply across the two transports.
    let mut service = tcp.subscribe("echo").unwrap();
    tcp.flush().await.unwrap();
    let responder = tcp.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = service.next().await {
            if let Some(reply) = m.reply {
                responder.publish(&reply, &m.payload).unwrap();
            }
        }
    });
    let answer = within(5, "the reply over tcp", ws.request("echo", "ping"))
        .await
        .unwrap();
    assert_eq!(answer.payload, "ping");
    assert_eq!(tcp.server_info().unwrap().port, server.client_port);
}

#[tokio::test]
async fn nothing_listening_at_a_nats_url_says_so() {
    let (_held, port) = test_support::refusing_port();
    let err = nats_ws::connect(Options::new(format!("nats://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("connection refused") && text.contains("client port"),
        "{text}"
    );
}

/// A comma-separated url is several servers, as nats.go and async-nats take it: a client starts
/// while the first is down (via-agent, via-worker and via-math take their url this way).
#[tokio::test]
async fn a_comma_separated_url_connects_to_a_server_that_is_up() {
    let server = TestServer::start();
    let (_held, port) = test_support::refusing_port();
    let url = format!(
        "nats://127.0.0.1:{port},nats://127.0.0.1:{}",
        server.client_port
    );
    let client = within(10, "connect", nats_ws::connect(Options::new(url)))
        .await
        .expect("connected to the server that is up");
    assert_eq!(client.server_info().unwrap().port, server.client_port);
}

/// Credentials in a nats:// url are not used, and the error does not repeat them (programs print
/// their errors; a password would land in a log).
#[tokio::test]
async fn a_nats_url_with_credentials_is_refused_without_repeating_them() {
    let err = nats_ws::connect(Options::new("nats://agent:s3cret@127.0.0.1:4222"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains("s3cret") && !text.contains("agent:"),
        "{text}"
    );
    assert!(
        text.contains("credentials in the url are not used"),
        "{text}"
    );
}

#[tokio::test]
async fn nothing_listening_says_so() {
    let (_held, port) = test_support::refusing_port();
    let err = nats_ws::connect(Options::new(format!("ws://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("connection refused") && text.contains("websocket enabled"),
        "{text}"
    );
}

#[tokio::test]
async fn server_restart_reconnects_resubscribes_and_delivers_buffered_publishes_once() {
    let mut server = TestServer::start();
    let client = nats_ws::connect(quick_reconnect(server.url()))
        .await
        .unwrap();
    let other = nats_ws::connect(quick_reconnect(server.url()))
        .await
        .unwrap();
    let mut own = client.subscribe("buffered").unwrap();
    let mut live = client.subscribe("live").unwrap();
    client.flush().await.unwrap();

    server.stop();
    let status = wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    let Status::Reconnecting {
        attempt,
        last_error,
        ..
    } = status
    else {
        unreachable!()
    };
    assert!(attempt >= 1);
    assert!(last_error.is_some());
    for i in 0..5 {
        client.publish("buffered", format!("b{i}")).unwrap();
    }
    assert!(client.buffered() > 0);

    server.start_again();
    wait_status(&client, "connected again", Status::is_connected).await;
    wait_status(&other, "other connected again", Status::is_connected).await;

    // Buffered publishes arrive once each, in order; a sentinel after them proves none follow.
    client.publish("buffered", "end").unwrap();
    let mut got = Vec::new();
    within(10, "buffered publishes", async {
        while let Some(Ok(m)) = own.next().await {
            let text = m.text().unwrap().to_owned();
            if text == "end" {
                break;
            }
            got.push(text);
        }
    })
    .await;
    assert_eq!(got, ["b0", "b1", "b2", "b3", "b4"]);

    // Subscriptions work again, for messages from another connection too.
    client.flush().await.unwrap();
    other.publish("live", "after restart").unwrap();
    let msg = within(10, "live message after restart", live.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload, "after restart");
}

#[tokio::test]
async fn close_fails_in_flight_requests_and_ends_subscriptions() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let _responder = client.subscribe("svc.never").unwrap();
    let mut sub = client.subscribe("x").unwrap();
    client.flush().await.unwrap();
    let request = {
        let client = client.clone();
        tokio::spawn(async move { client.request("svc.never", "?").await })
    };
    // The request is registered once its publish has reached the server.
    client.flush().await.unwrap();
    client.close();
    assert_eq!(
        within(5, "request failure", request).await.unwrap(),
        Err(RequestError::Closed)
    );
    assert_eq!(sub.next().await, Some(Err(SubscribeError::Closed)));
    assert_eq!(sub.next().await, None);
    assert_eq!(client.publish("x", "y"), Err(PublishError::Closed));
    assert_eq!(client.status(), Status::Closed);
}

#[tokio::test]
async fn drain_delivers_what_was_sent_then_closes() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut sub = client.subscribe("d").unwrap();
    client.flush().await.unwrap();
    for i in 0..100 {
        client.publish("d", format!("{i}")).unwrap();
    }
    // Wait for the first before draining so the burst is under way.
    within(5, "first", sub.next()).await.unwrap().unwrap();
    client.drain().await.unwrap();
    assert_eq!(client.status(), Status::Closed);
    let rest: Vec<_> = within(5, "end of stream", sub.collect::<Vec<_>>()).await;
    assert!(rest.iter().all(Result::is_ok));
}

#[tokio::test]
async fn a_drained_subscription_gets_everything_routed_to_it_then_ends() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let publisher = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut sub = client.subscribe("d").unwrap();
    let mut other = client.subscribe("e").unwrap();
    client.flush().await.unwrap();
    // Published just before the UNSUB, so the server routes all of them to `sub` first; none
    // has come back yet when the drain starts.
    const N: usize = 1000;
    for i in 0..N {
        client.publish("d", format!("{i}")).unwrap();
    }
    assert_eq!(sub.pending(), 0);
    within(5, "the drain", sub.drain()).await.unwrap();
    publisher.publish("d", "after").unwrap();
    publisher.publish("e", "still here").unwrap();
    let got: Vec<String> = within(5, "the end of the stream", sub.by_ref().collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|m| m.unwrap().text().unwrap().to_owned())
        .collect();
    assert_eq!(got, (0..N).map(|i| i.to_string()).collect::<Vec<_>>());
    // The client stays connected, its other subscriptions too; a second drain has nothing to do.
    let msg = within(5, "the other subscription", other.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.payload, "still here");
    assert!(client.status().is_connected());
    within(5, "a second drain", sub.drain()).await.unwrap();
    client.close();
    assert_eq!(
        within(5, "a drain on a closed client", other.drain()).await,
        Err(ConnectionError::Closed)
    );
}

#[tokio::test]
async fn a_subscriber_that_stops_reading_is_bounded_counted_and_reported() {
    let server = TestServer::start();
    let client = nats_ws::connect(Options::new(server.url()).pending_limits(100, 1 << 20))
        .await
        .unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("flood").unwrap();
    client.flush().await.unwrap();
    for i in 0..1000 {
        client.publish("flood", format!("{i}")).unwrap();
    }
    // The server has sent all of it back once a flush returns.
    client.flush().await.unwrap();
    assert_eq!(sub.pending(), 100);
    assert_eq!(sub.dropped(), 900);
    let event = within(5, "the slow consumer event", events.next())
        .await
        .unwrap();
    assert_eq!(
        event,
        ClientEvent::SlowConsumer {
            sid: sub.sid(),
            subject: "flood".into(),
            dropped: 1
        }
    );
    // The first 100 are intact and in order; once read, delivery resumes.
    for i in 0..100 {
        let m = within(5, "a kept message", sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload, format!("{i}"));
    }
    client.publish("flood", "after").unwrap();
    let m = within(5, "delivery resumes", sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.payload, "after");
    assert_eq!(sub.dropped(), 900);
    assert!(
        client.status().is_connected(),
        "a slow reader is not a failure"
    );
}

#[tokio::test]
async fn close_sends_every_accepted_publish_first() {
    let server = TestServer::start();
    let reader = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut sub = reader.subscribe("last.words").unwrap();
    reader.flush().await.unwrap();
    let writer = nats_ws::connect(Options::new(server.url())).await.unwrap();
    for i in 0..2000 {
        writer.publish("last.words", format!("{i}")).unwrap();
    }
    writer.close();
    for i in 0..2000 {
        let m = within(5, "every publish made before close", sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload, format!("{i}"));
    }
}

#[tokio::test]
async fn a_request_made_during_an_outage_waits_for_the_connection_not_in_a_buffer() {
    let mut server = TestServer::start();
    let client = nats_ws::connect(quick_reconnect(server.url()))
        .await
        .unwrap();
    server.stop();
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    assert_eq!(client.buffered(), 0);
    // JetStream answers $JS.API.INFO itself, so the reply needs nothing but the server.
    let request = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request_with("$JS.API.INFO", None, b"", Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await; // the outage goes on for a while
    assert_eq!(
        client.buffered(),
        0,
        "the request is not in the publish buffer"
    );
    server.start_again();
    let reply = within(20, "the request's reply", request)
        .await
        .unwrap()
        .expect("answered once connected");
    assert!(String::from_utf8_lossy(&reply.payload).contains("memory"));
}

#[tokio::test]
async fn wss_is_supported_natively() {
    // The test server speaks plain WebSocket, so the TLS handshake itself must fail: proof that
    // wss:// got as far as TLS instead of being refused as unsupported.
    let server = TestServer::start();
    let url = server.ws_url().replacen("ws://", "wss://", 1);
    let err = nats_ws::connect(Options::new(url)).await.unwrap_err();
    let text = err.to_string().to_lowercase();
    // rustls: "received corrupt message of type InvalidContentType" (plain HTTP where TLS was
    // expected); without TLS support: "TLS support not compiled in".
    assert!(text.contains("corrupt message"), "{text}");
    assert!(matches!(err, ConnectionError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn a_big_burst_to_our_own_subscription_is_read_while_it_is_written() {
    // The server cuts a client whose unread output passes max_pending (a slow consumer). A driver
    // that stops reading while it writes a large burst gets cut by its own echo: all of it but
    // what the sockets' buffers hold (a few MB on loopback) waits in the server. One that reads
    // as it writes is a few messages behind, more while the machine is busy: 2 MB was passed
    // then (a build beside the suite), so 8 MB, and a burst six times that.
    let server = TestServer::start_with("max_pending: 8MB\n");
    let client = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let mut statuses = client.status_stream();
    let mut sub = client.subscribe("echo.burst").unwrap();
    client.flush().await.unwrap();
    let payload = vec![b'e'; 60 * 1024];
    const N: usize = 800; // 48 MB
    for _ in 0..N {
        client.publish("echo.burst", &payload).unwrap();
    }
    for i in 0..N {
        within(20, "every echoed message", sub.next())
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    assert!(client.status().is_connected());
    // Never disconnected on the way.
    let _current = statuses.next().await;
    assert!(
        futures::FutureExt::now_or_never(statuses.next()).is_none(),
        "the status changed during the burst"
    );
    assert!(!server.log().contains("Slow Consumer"), "{}", server.log());
}

#[tokio::test]
async fn a_subscriber_that_fell_behind_receives_the_servers_large_frame() {
    // nats-server sends a non-browser WebSocket client everything pending for it as one frame. A
    // subscriber more than 16 MiB behind used to refuse that frame (tungstenite's default limit:
    // "Space limit exceeded: Message too long"), reconnect, and lose those messages, with nothing
    // but a status change to show for it: the native benchmark's stall.
    let server = TestServer::start();
    let url = server.url();
    let client = nats_ws::connect(Options::new(&url)).await.unwrap();
    let mut statuses = client.status_stream();
    let mut sub = client.subscribe("behind").unwrap();
    client.flush().await.unwrap();
    // The publisher runs on its own thread and runtime. This test's runtime, which drives the
    // subscriber's connection, is blocked in `join` meanwhile: the subscriber reads nothing while
    // the server queues 30 MB for it (below the 32 MiB at which nats-server 2.9 starts stalling
    // the publisher). The server's first write to us blocks on the full socket, the rest piles up
    // behind it and leaves as one frame once we read again.
    const N: usize = 30;
    let publisher = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let p = nats_ws::connect(Options::new(&url)).await.unwrap();
                let payload = vec![b'y'; 1_000_000];
                for _ in 0..N {
                    p.publish("behind", &payload).unwrap();
                }
                // Once the flush returns, the server has processed (and queued for us) every PUB.
                p.flush().await.unwrap();
            })
    });
    publisher.join().unwrap();
    let _current = statuses.next().await;
    for i in 0..N {
        let got = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
        if !matches!(got, Ok(Some(Ok(_)))) {
            let mut changes = Vec::new();
            while let Some(Some(s)) = futures::FutureExt::now_or_never(statuses.next()) {
                changes.push(s);
            }
            panic!("message {i} of {N}: {got:?}; status changes: {changes:?}");
        }
    }
    // Never disconnected on the way.
    let changed = futures::FutureExt::now_or_never(statuses.next());
    assert!(changed.is_none(), "the status changed: {changed:?}");
}

#[tokio::test]
async fn a_frame_header_claiming_a_terabyte_is_refused_not_allocated() {
    // A scripted WebSocket server (not nats-server: it could not send this): the handshake, INFO,
    // PONG, then the header of a binary frame that claims 1 TiB of payload. Without a limit the
    // WebSocket library reserved the claimed length at the header and the process aborted; with
    // one the connection fails and the client reconnects, as on any other bad frame.
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut ws = scripted_handshake(listener).await;
        // FIN + binary, a 64-bit length of 2^40, and no payload.
        let tcp = ws.get_mut();
        tcp.write_all(&[0x82, 0x7f, 0, 0, 1, 0, 0, 0, 0, 0])
            .await
            .unwrap();
        tcp.flush().await.unwrap();
        // Keep the socket open: the client must leave on its own.
        let _ = listener_keepalive(ws).await;
    });
    let client = within(
        5,
        "connected to the scripted server",
        nats_ws::connect(quick_reconnect(format!("ws://127.0.0.1:{port}"))),
    )
    .await
    .unwrap();
    let status = wait_status(&client, "reconnecting after the forged frame", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    let Status::Reconnecting { last_error, .. } = status else {
        unreachable!()
    };
    let said = last_error.map(|e| e.to_string()).unwrap_or_default();
    assert!(said.contains("more than this client accepts"), "{said}");
    server.abort();
}

#[tokio::test]
async fn publishes_are_refused_once_64_mib_wait_for_a_server_that_does_not_read() {
    // A scripted WebSocket server that completes the handshake and then reads nothing more, as a
    // stopped nats-server or a stalled link would, while the connection stays open: what the
    // client publishes waits in its memory. Before the bound it grew without limit until the
    // connection was found stale (about 90 s at the default pings).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stalled_tx, stalled) = tokio::sync::oneshot::channel();
    let (resume, resumed) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        use futures::SinkExt;
        let mut ws = scripted_handshake(listener).await;
        let _ = stalled_tx.send(());
        // Holds the socket and reads nothing, until told to read again (answering PINGs).
        let _ = resumed.await;
        while let Some(Ok(frame)) = ws.next().await {
            if frame.into_data().ends_with(b"PING\r\n") {
                let pong = tokio_tungstenite::tungstenite::Message::Binary("PONG\r\n".into());
                let _ = ws.send(pong).await;
            }
        }
    });
    let client = within(
        5,
        "connected to the scripted server",
        nats_ws::connect(Options::new(format!("ws://127.0.0.1:{port}"))),
    )
    .await
    .unwrap();
    stalled.await.unwrap();
    let payload = vec![b'x'; 32 * 1024];
    let mut published = 0usize;
    let refused = within(30, "a publish refused", async {
        loop {
            match client.publish("stalled", &payload) {
                Ok(()) => published += payload.len(),
                Err(e) => return e,
            }
            assert!(
                published < 256 << 20,
                "still taking publishes after 256 MiB"
            );
            // Lets the driver hand what was published to the socket, as it would between a
            // program's publishes.
            tokio::task::yield_now().await;
        }
    })
    .await;
    let PublishError::BacklogFull { waiting, limit } = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(limit, 64 << 20);
    assert!(waiting > limit, "{waiting}");
    // What the socket and the kernel took before it stopped: a few MiB, not more.
    assert!(
        published < limit + (32 << 20),
        "{published} bytes taken before the refusal"
    );
    assert!(client.status().is_connected(), "{:?}", client.status());

    // The server reads again: once what waited is written (a flush's PONG comes after it), the
    // next publish is taken.
    resume.send(()).unwrap();
    within(30, "the backlog written", client.flush())
        .await
        .unwrap();
    client.publish("stalled", &payload).unwrap();
    server.abort();
}

/// A scripted WebSocket server's side of a client's connect: accepts on `listener`, sends INFO,
/// waits for the client's CONNECT and PING, answers PONG.
async fn scripted_handshake(
    listener: tokio::net::TcpListener,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let (tcp, _) = listener.accept().await.unwrap();
    let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
    let info = "INFO {\"server_id\":\"scripted\",\"version\":\"2.9.10\",\"proto\":1,\
                \"max_payload\":1048576,\"headers\":true}\r\n";
    ws.send(WsMessage::Binary(info.into())).await.unwrap();
    let mut seen = String::new();
    while !seen.contains("PING\r\n") {
        match ws.next().await {
            Some(Ok(m)) => seen.push_str(&String::from_utf8_lossy(&m.into_data())),
            other => panic!("the client's CONNECT and PING: {other:?}"),
        }
    }
    ws.send(WsMessage::Binary("PONG\r\n".into())).await.unwrap();
    ws
}

/// Holds a scripted server's WebSocket open until the peer goes away.
async fn listener_keepalive<S>(mut ws: tokio_tungstenite::WebSocketStream<S>) -> Option<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while ws.next().await?.is_ok() {}
    Some(())
}

#[tokio::test]
async fn drain_while_disconnected_closes_at_once() {
    let mut server = TestServer::start();
    let client = nats_ws::connect(quick_reconnect(server.url()).reconnect(
        nats_ws::ReconnectPolicy {
            max_attempts: None,
            ..Default::default()
        },
    ))
    .await
    .unwrap();
    let sub = client.subscribe("d").unwrap();
    server.stop();
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    within(2, "drain while disconnected", client.drain())
        .await
        .unwrap();
    assert_eq!(client.status(), Status::Closed);
    let rest: Vec<_> = within(2, "end of stream", sub.collect::<Vec<_>>()).await;
    assert!(rest.is_empty());
}

#[cfg(feature = "jetstream")]
#[tokio::test]
async fn drain_while_disconnected_sends_the_buffered_publishes_first() {
    // Publish during an outage, then drain before exiting: the publish must not be dropped by a
    // drain that closes at once. It waits for the server, sends it, then closes. A stream keeps
    // what arrived (a subscriber would race the client's reconnection).
    let mut server = TestServer::start();
    let client = nats_ws::connect(quick_reconnect(server.url()))
        .await
        .unwrap();
    client
        .jetstream()
        .create_stream(&nats_ws::jetstream::StreamConfig::new("KEPT", ["kept"]))
        .await
        .unwrap();
    server.stop();
    wait_status(&client, "reconnecting", |s| {
        matches!(s, Status::Reconnecting { .. })
    })
    .await;
    client.publish("kept", "during the outage").unwrap();
    let drain = tokio::spawn({
        let client = client.clone();
        async move { client.drain().await }
    });
    server.start_again();
    within(15, "drain after the server came back", drain)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.status(), Status::Closed);
    let reader = nats_ws::connect(Options::new(server.url())).await.unwrap();
    let stored = reader
        .jetstream()
        .get_last_message("KEPT", "kept")
        .await
        .unwrap()
        .expect("the publish made during the outage was stored");
    assert_eq!(&stored.payload[..], b"during the outage");
}

// --- NKey and JWT users -------------------------------------------------------------------------
#[cfg(feature = "nkeys")]
mod auth {
    use super::*;

    /// A message round trip on `client`: it is really connected as someone allowed to talk.
    async fn round_trip(client: &nats_ws::Client, subject: &str) {
        let mut sub = client.subscribe(subject).unwrap();
        client.flush().await.unwrap();
        client.publish(subject, "hello").unwrap();
        let msg = within(5, "the round trip", sub.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.payload, "hello");
    }

    /// Reads `statuses` until Offline (bounded): its error and how many Reconnecting statuses came
    /// before.
    async fn until_offline(
        mut statuses: impl futures::Stream<Item = Status> + Unpin,
    ) -> (ConnectionError, usize) {
        let mut attempts = 0;
        within(20, "offline after refused credentials", async {
            loop {
                match statuses.next().await.expect("status stream") {
                    Status::Offline { last_error } => return (last_error, attempts),
                    Status::Reconnecting { .. } => attempts += 1,
                    _ => {}
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn an_nkey_user_connects_and_a_wrong_seed_is_refused_then_offline() {
        use nats_ws::Auth;
        use test_support::jwt;
        let alice = jwt::key(nkeys::KeyPairType::User);
        let mut server = TestServer::start_with(&jwt::nkey_users_config(&[&alice]));
        let options = Options::new(server.url()).auth(Auth::nkey(&jwt::seed(&alice)).unwrap());
        let client = nats_ws::connect(options)
            .await
            .expect("an NKey user connects");
        round_trip(&client, "nkey.hello").await;

        // Someone else's seed: refused at the first attempt, named.
        let mallory = jwt::seed(&jwt::key(nkeys::KeyPairType::User));
        let err = nats_ws::connect(Options::new(server.url()).auth(Auth::nkey(&mallory).unwrap()))
            .await
            .unwrap_err();
        assert_eq!(err, ConnectionError::AuthorizationViolation);

        // Credentials that stop working while connected (an authenticator now hands out a revoked
        // seed): after the server restarts, two refusals and Offline — not a loop.
        let good = jwt::seed(&alice);
        let revoked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = revoked.clone();
        let auth = Auth::callback(move || {
            let seed = if flag.load(std::sync::atomic::Ordering::SeqCst) {
                &mallory
            } else {
                &good
            };
            Auth::nkey(seed).map_err(|e| e.to_string())
        });
        let client = nats_ws::connect(quick_reconnect(server.url()).auth(auth))
            .await
            .unwrap();
        round_trip(&client, "nkey.again").await;
        revoked.store(true, std::sync::atomic::Ordering::SeqCst);
        let offline = until_offline(client.status_stream());
        server.stop();
        server.start_again();
        let (last_error, attempts) = offline.await;
        assert_eq!(last_error, ConnectionError::AuthorizationViolation);
        // Reconnecting once for the lost connection (its error may be a refused transport while the
        // server is down), then at most two refusals.
        assert!(attempts <= 8, "{attempts} attempts before giving up");
        assert!(!client.status().is_connected());
    }

    #[tokio::test]
    async fn a_jwt_user_from_a_creds_file_connects_and_an_expired_jwt_is_refused_then_offline() {
        use nats_ws::Auth;
        use test_support::jwt;
        let operator = jwt::Operator::new();
        let mut server = TestServer::start_with(&operator.server_config());
        let (user, user_jwt) = operator.user("tab", None);
        let path = std::env::temp_dir().join(format!(
            "nats-ws-test-{}-{}.creds",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&path, jwt::creds(&user_jwt, &jwt::seed(&user))).unwrap();
        let auth = Auth::credentials_file(&path).expect("a readable .creds file");
        let client = nats_ws::connect(quick_reconnect(server.url()).auth(auth))
            .await
            .expect("a JWT user connects");
        round_trip(&client, "jwt.hello").await;

        // The same text given directly connects too.
        let text = std::fs::read_to_string(&path).unwrap();
        let other =
            nats_ws::connect(Options::new(server.url()).auth(Auth::credentials(&text).unwrap()))
                .await
                .expect("a JWT user from the file's text connects");
        other.close();

        // An expired JWT is refused, named.
        let (old, old_jwt) = operator.user("expired", Some(jwt::now() - 60));
        let expired = jwt::creds(&old_jwt, &jwt::seed(&old));
        let err =
            nats_ws::connect(Options::new(server.url()).auth(Auth::credentials(&expired).unwrap()))
                .await
                .unwrap_err();
        assert_eq!(err, ConnectionError::AuthorizationViolation);

        // The file is read again at each reconnect: rewritten with the expired JWT, the next
        // connection is refused and the client goes Offline instead of looping.
        std::fs::write(&path, &expired).unwrap();
        let offline = until_offline(client.status_stream());
        server.stop();
        server.start_again();
        let (last_error, attempts) = offline.await;
        std::fs::remove_file(&path).ok();
        assert_eq!(last_error, ConnectionError::AuthorizationViolation);
        assert!(attempts <= 8, "{attempts} attempts before giving up");

        // A missing file is reported when the options are made.
        let missing = Auth::credentials_file(path.with_extension("nope")).unwrap_err();
        assert!(
            matches!(missing, nats_ws::CredentialsError::Read { .. }),
            "{missing:?}"
        );
    }
}
