//! The sans-IO connection driven by a scripted server and a fake clock: no sockets, no sleeps.

use std::time::Duration;

use nats_ws::proto::{Connection, Event, Status, SubscribeOptions, Transmit};
use nats_ws::{
    ConnectionError, HeaderMap, Options, ParseError, PublishError, ReconnectPolicy, RequestError,
    ServerError, SubscribeError,
};
use web_time::Instant;

const INFO: &str = "INFO {\"server_id\":\"S1\",\"server_name\":\"test-server\",\"version\":\"2.9.10\",\"headers\":true,\"max_payload\":1048576}\r\n";

/// A client connection plus a fake clock and a record of what it sent.
struct Harness {
    conn: Connection,
    now: Instant,
    /// Bytes sent since the last `take_sent`.
    sent: Vec<u8>,
    connects: Vec<String>,
    closes: usize,
    events: Vec<Event>,
    /// Nonces to sign are signed at once (as the native driver does) unless held here.
    #[cfg(feature = "nkeys")]
    held_signs: Option<Vec<nats_ws::proto::SignRequest>>,
}

impl Harness {
    fn new(options: Options) -> Self {
        Self::with_seed(options, 7)
    }

    fn with_seed(options: Options, seed: u64) -> Self {
        let now = Instant::now();
        let conn = Connection::new(options, now, seed).expect("valid options");
        let mut h = Harness {
            conn,
            now,
            sent: Vec::new(),
            connects: Vec::new(),
            closes: 0,
            events: Vec::new(),
            #[cfg(feature = "nkeys")]
            held_signs: None,
        };
        h.pump();
        h
    }

    fn options() -> Options {
        let policy = ReconnectPolicy {
            jitter: Duration::ZERO,
            ..Default::default()
        };
        Options::new("ws://127.0.0.1:8080").reconnect(policy)
    }

    /// Drains transmits and events into the record.
    fn pump(&mut self) {
        while let Some(t) = self.conn.poll_transmit() {
            match t {
                Transmit::Connect { url } => self.connects.push(url),
                Transmit::Data(bytes) => self.sent.extend_from_slice(&bytes),
                Transmit::Close => self.closes += 1,
                #[cfg(feature = "nkeys")]
                Transmit::Sign(request) => match self.held_signs.as_mut() {
                    Some(held) => held.push(request),
                    None => {
                        let signed = sign(&request);
                        self.conn.handle_signed(self.now, request.handshake, signed);
                    }
                },
                other => panic!("a transmit this harness does not know: {other:?}"),
            }
        }
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
    }

    fn take_sent(&mut self) -> String {
        self.pump();
        String::from_utf8(std::mem::take(&mut self.sent)).expect("client sends text here")
    }

    fn take_events(&mut self) -> Vec<Event> {
        self.pump();
        std::mem::take(&mut self.events)
    }

    fn server(&mut self, bytes: &str) {
        self.conn.handle_input(self.now, bytes.as_bytes());
        self.pump();
    }

    /// Completes a handshake on the pending socket.
    fn handshake(&mut self) {
        self.server(INFO);
        let sent = self.take_sent();
        assert!(sent.starts_with("CONNECT {"), "{sent}");
        assert!(sent.ends_with("}\r\nPING\r\n"), "{sent}");
        self.advance(Duration::from_millis(3));
        self.server("PONG\r\n");
        assert!(
            self.conn.status().is_connected(),
            "{:?}",
            self.conn.status()
        );
    }

    fn disconnect(&mut self) {
        self.conn.handle_disconnected(self.now, "test disconnect");
        self.pump();
    }

    /// Moves the clock forward, firing every timeout on the way, as a driver would.
    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        for _ in 0..10_000 {
            match self.conn.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.conn.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = target;
        self.pump();
    }

    fn reconnecting(&self) -> (u32, Duration) {
        match self.conn.status() {
            Status::Reconnecting {
                attempt, retry_at, ..
            } => (*attempt, retry_at.saturating_duration_since(self.now)),
            other => panic!("expected reconnecting, got {other:?}"),
        }
    }
}

fn connected() -> Harness {
    let mut h = Harness::new(Harness::options());
    assert_eq!(h.connects, ["ws://127.0.0.1:8080"]);
    h.handshake();
    h.take_sent();
    h.take_events();
    h
}

#[test]
fn handshake_sends_connect_then_ping_and_reports_server() {
    let mut h = Harness::new(
        Harness::options()
            .name("tab-1")
            .user_password("alice", "pw"),
    );
    assert_eq!(h.conn.status(), &Status::Connecting);
    h.server(INFO);
    let sent = h.take_sent();
    let json: serde_json::Value = serde_json::from_str(
        sent.strip_prefix("CONNECT ")
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["headers"], true);
    assert_eq!(json["no_responders"], true);
    assert_eq!(json["verbose"], false);
    assert_eq!(json["name"], "tab-1");
    assert_eq!(json["user"], "alice");
    assert_eq!(json["pass"], "pw");
    assert!(json.get("auth_token").is_none());
    h.advance(Duration::from_millis(12));
    h.server("PONG\r\n");
    match h.conn.status() {
        Status::Connected {
            server_name,
            version,
            rtt,
            url,
        } => {
            assert_eq!(server_name, "test-server");
            assert_eq!(version, "2.9.10");
            assert_eq!(*rtt, Duration::from_millis(12));
            assert_eq!(url, "ws://127.0.0.1:8080");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn token_auth_goes_in_connect() {
    let mut h = Harness::new(Harness::options().token("s3cret"));
    h.server(INFO);
    let sent = h.take_sent();
    assert!(sent.contains("\"auth_token\":\"s3cret\""), "{sent}");
    assert!(!sent.contains("\"user\""));
}

#[test]
fn server_ping_is_answered() {
    let mut h = connected();
    h.server("PING\r\n");
    assert_eq!(h.take_sent(), "PONG\r\n");
}

#[test]
fn backoff_schedule_is_exact_then_offline() {
    let mut h = connected();
    h.disconnect();
    assert_eq!(h.closes, 1);
    let expected = [
        2.0, 3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125, 30.0, 30.0, 30.0,
    ];
    for (n, want) in expected.iter().enumerate() {
        let (attempt, wait) = h.reconnecting();
        assert_eq!(attempt as usize, n + 1);
        assert!(
            (wait.as_secs_f64() - want).abs() < 1e-6,
            "attempt {attempt}: waited {wait:?}, want {want}"
        );
        let connects = h.connects.len();
        h.advance(wait - Duration::from_millis(1));
        assert_eq!(h.connects.len(), connects, "attempt {attempt} came early");
        h.advance(Duration::from_millis(1));
        assert_eq!(
            h.connects.len(),
            connects + 1,
            "attempt {attempt} did not start on time"
        );
        h.disconnect();
    }
    match h.conn.status() {
        Status::Offline { last_error } => {
            assert!(
                matches!(last_error, ConnectionError::Transport { .. }),
                "{last_error:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let connects = h.connects.len();
    h.advance(Duration::from_secs(3600));
    assert_eq!(
        h.connects.len(),
        connects,
        "offline must not retry by itself"
    );
    // reconnect_now starts over.
    h.conn.reconnect_now(h.now);
    h.pump();
    assert_eq!(h.connects.len(), connects + 1);
    h.handshake();
}

#[test]
fn jitter_stays_within_bounds() {
    let mut waits = Vec::new();
    for seed in 0..20 {
        let policy = ReconnectPolicy {
            jitter: Duration::from_millis(100),
            ..Default::default()
        };
        let mut h = Harness::with_seed(Options::new("ws://h:1").reconnect(policy), seed);
        h.handshake();
        h.disconnect();
        let (_, wait) = h.reconnecting();
        assert!(
            wait >= Duration::from_secs(2) && wait <= Duration::from_millis(2100),
            "{wait:?}"
        );
        waits.push(wait);
    }
    waits.dedup();
    assert!(waits.len() > 1, "jitter is not random: {waits:?}");
}

#[test]
fn first_attempt_failure_retries_on_schedule() {
    let mut h = Harness::new(Harness::options());
    h.disconnect();
    let (attempt, wait) = h.reconnecting();
    assert_eq!((attempt, wait), (1, Duration::from_secs(2)));
    match h.conn.status() {
        Status::Reconnecting {
            last_error: Some(e),
            ..
        } => {
            assert!(e.to_string().contains("ws://127.0.0.1:8080"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connect_timeout_fails_the_attempt() {
    let mut h = Harness::new(Harness::options().connect_timeout(Duration::from_secs(5)));
    h.advance(Duration::from_secs(5));
    match h.conn.status() {
        Status::Reconnecting {
            attempt: 1,
            last_error: Some(ConnectionError::Timeout { .. }),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn rotates_over_servers_waiting_only_to_come_back_to_one() {
    let mut opts = Options::with_servers(["ws://a:1", "ws://b:2"]);
    opts.reconnect.jitter = Duration::ZERO;
    let mut h = Harness::new(opts);
    h.disconnect();
    assert_eq!(
        h.connects,
        ["ws://a:1", "ws://b:2"],
        "another server is tried at once"
    );
    h.disconnect();
    assert_eq!(
        h.reconnecting().1,
        Duration::from_secs(2),
        "both failed: back off"
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(h.connects, ["ws://a:1", "ws://b:2", "ws://a:1"]);
    h.disconnect();
    assert_eq!(h.connects.len(), 4, "b is tried at once again");
    h.disconnect();
    assert_eq!(h.reconnecting().1, Duration::from_secs(3));

    // Losing an established connection moves on to the other server without a wait.
    h.advance(Duration::from_secs(3));
    h.handshake();
    let on = h.connects.last().cloned().unwrap();
    h.disconnect();
    let next = h.connects.last().cloned().unwrap();
    assert_ne!(on, next);
    assert!(matches!(h.conn.status(), Status::Reconnecting { .. }));
}

#[test]
fn info_connect_urls_join_the_pool_shuffled_and_leave_it_with_the_cluster() {
    let mut h = connected();
    h.server("INFO {\"connect_urls\":[\"10.0.0.2:8080\",\"ws://b:8080\"],\"ldm\":true}\r\n");
    let mut servers: Vec<&str> = h.conn.servers().collect();
    assert_eq!(servers[0], "ws://127.0.0.1:8080", "configured first");
    servers.sort_unstable();
    assert_eq!(
        servers,
        ["ws://10.0.0.2:8080", "ws://127.0.0.1:8080", "ws://b:8080"]
    );
    assert_eq!(h.take_events(), vec![Event::LameDuck]);
    assert!(h.conn.status().is_connected());

    // b left the cluster, c joined; the configured server stays.
    h.server("INFO {\"connect_urls\":[\"10.0.0.2:8080\",\"c:8080\"]}\r\n");
    let mut servers: Vec<&str> = h.conn.servers().collect();
    servers.sort_unstable();
    assert_eq!(
        servers,
        ["ws://10.0.0.2:8080", "ws://127.0.0.1:8080", "ws://c:8080"]
    );

    // Different clients discover the same cluster in different orders, so they spread over it.
    let urls: Vec<String> = (0..8).map(|n| format!("n{n}:8080")).collect();
    let info = format!(
        "INFO {{\"connect_urls\":{}}}\r\n",
        serde_json::to_string(&urls).unwrap()
    );
    let orders: std::collections::BTreeSet<Vec<String>> = (0..4)
        .map(|seed| {
            let mut h = Harness::with_seed(Harness::options(), seed);
            h.handshake();
            h.server(&info);
            h.conn.servers().map(str::to_owned).collect()
        })
        .collect();
    assert!(orders.len() > 1, "{orders:?}");
}

#[test]
fn the_first_connection_tries_every_server_before_reporting_a_failure() {
    let mut opts = Options::with_servers(["ws://dead:1", "ws://live:2"]);
    opts.reconnect.jitter = Duration::ZERO;
    let mut h = Harness::new(opts);
    h.disconnect();
    assert_eq!(h.connects, ["ws://dead:1", "ws://live:2"]);
    assert_eq!(
        h.conn.status(),
        &Status::Connecting,
        "still connecting: the next server may answer"
    );
    h.handshake();
}

#[test]
fn servers_that_accept_then_drop_cannot_make_the_client_hop_without_a_pause() {
    let mut opts = Options::with_servers(["ws://a:1", "ws://b:2"]);
    opts.reconnect.jitter = Duration::ZERO;
    let mut h = Harness::new(opts);
    for _ in 0..50 {
        if !matches!(
            h.conn.status(),
            Status::Connecting | Status::Reconnecting { .. }
        ) || h.connects.len() > 20
        {
            break;
        }
        if matches!(h.conn.status(), Status::Reconnecting { retry_at, .. } if *retry_at > h.now) {
            break;
        }
        h.handshake();
        h.advance(Duration::from_millis(1));
        h.disconnect();
    }
    // a, then b at once (never tried); then a again only after the backoff.
    assert_eq!(h.connects, ["ws://a:1", "ws://b:2"]);
    assert_eq!(h.reconnecting().1, Duration::from_secs(2));
}

/// The JSON of the CONNECT in what the client sent.
fn connect_json(sent: &str) -> serde_json::Value {
    let line = sent
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split("\r\n").next())
        .unwrap_or_else(|| panic!("no CONNECT in {sent:?}"));
    serde_json::from_str(line).unwrap()
}

/// Signs as a driver would, with the nkeys crate (on every target: the browser driver's
/// WebCrypto signing is tested in tests/browser.rs).
#[cfg(feature = "nkeys")]
fn sign(request: &nats_ws::proto::SignRequest) -> Result<nats_ws::proto::Signed, String> {
    use base64::Engine as _;
    let key = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, request.seed)
        .map_err(|e| e.to_string())?;
    let sig = key
        .sign(request.nonce.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(nats_ws::proto::Signed {
        nkey: key.public_key(),
        sig: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig),
    })
}

/// The signature a `CONNECT` carries (base64url, no padding).
#[cfg(feature = "nkeys")]
fn connect_sig(json: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(json["sig"].as_str().unwrap())
        .unwrap()
}

#[cfg(feature = "nkeys")]
fn info_with_nonce(nonce: &str) -> String {
    INFO.replace("\"headers\"", &format!("\"nonce\":\"{nonce}\",\"headers\""))
}

#[cfg(feature = "nkeys")]
#[test]
fn an_nkey_user_signs_the_nonce_of_every_handshake() {
    let key = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [9u8; 32]).unwrap();
    let auth = nats_ws::Auth::nkey(&key.seed().unwrap()).unwrap();
    let mut h = Harness::new(Harness::options().auth(auth));
    for nonce in ["nonce-of-the-first-server", "another-nonce"] {
        h.server(&info_with_nonce(nonce));
        let json = connect_json(&h.take_sent());
        assert_eq!(json["nkey"], key.public_key());
        assert!(json.get("user").is_none() && json.get("jwt").is_none());
        key.verify(nonce.as_bytes(), &connect_sig(&json))
            .unwrap_or_else(|e| panic!("the signature of {nonce:?} does not verify: {e}"));
        h.server("PONG\r\n");
        assert!(h.conn.status().is_connected());
        h.disconnect();
        h.advance(Duration::from_secs(3));
    }
}

#[cfg(feature = "nkeys")]
#[test]
fn a_jwt_user_sends_the_jwt_and_the_signed_nonce() {
    let key = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [4u8; 32]).unwrap();
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVIn0.c2ln\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        key.seed().unwrap()
    );
    let mut h = Harness::new(Harness::options().auth(nats_ws::Auth::credentials(&creds).unwrap()));
    h.server(&info_with_nonce("jwt-nonce"));
    let json = connect_json(&h.take_sent());
    assert_eq!(json["jwt"], "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJVIn0.c2ln");
    key.verify(b"jwt-nonce", &connect_sig(&json)).unwrap();
}

#[cfg(feature = "nkeys")]
#[test]
fn a_handshake_waits_for_its_signature_and_takes_only_its_own() {
    let key = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [5u8; 32]).unwrap();
    let mut h =
        Harness::new(Harness::options().auth(nats_ws::Auth::nkey(&key.seed().unwrap()).unwrap()));
    h.held_signs = Some(Vec::new());
    h.server(&info_with_nonce("first"));
    assert_eq!(h.take_sent(), "", "nothing before the signature");
    // The connection is cut while the nonce is being signed; the next handshake has its own.
    h.disconnect();
    h.advance(Duration::from_secs(3));
    h.server(&info_with_nonce("second"));
    let held = h.held_signs.take().unwrap();
    assert_eq!(
        held.iter().map(|r| r.nonce.as_str()).collect::<Vec<_>>(),
        ["first", "second"]
    );
    let debug = format!("{:?}", held[0]);
    assert!(
        !debug.contains(&key.seed().unwrap()) && !debug.contains(&format!("{:?}", held[0].seed)),
        "no seed in Debug: {debug}"
    );
    // The first handshake's signature comes late: not sent (its nonce is not this server's).
    h.conn
        .handle_signed(h.now, held[0].handshake, sign(&held[0]));
    assert_eq!(h.take_sent(), "");
    h.conn
        .handle_signed(h.now, held[1].handshake, sign(&held[1]));
    let json = connect_json(&h.take_sent());
    key.verify(b"second", &connect_sig(&json)).unwrap();
    // Once used, a signature cannot be handed in again.
    h.conn
        .handle_signed(h.now, held[1].handshake, sign(&held[1]));
    assert_eq!(h.take_sent(), "");
    h.server("PONG\r\n");
    assert!(h.conn.status().is_connected());
}

#[cfg(feature = "nkeys")]
#[test]
fn a_signature_that_never_comes_times_out_and_one_that_cannot_be_made_goes_offline() {
    let key = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [6u8; 32]).unwrap();
    let mut h =
        Harness::new(Harness::options().auth(nats_ws::Auth::nkey(&key.seed().unwrap()).unwrap()));
    h.held_signs = Some(Vec::new());
    h.server(&info_with_nonce("n1"));
    let connects = h.connects.len();
    h.advance(h.conn.options().connect_timeout);
    assert!(
        h.take_events().iter().any(|e| matches!(
            e,
            Event::Status(Status::Reconnecting {
                last_error: Some(ConnectionError::Timeout { .. }),
                ..
            })
        )),
        "the connect timeout covers the signing"
    );
    while h.connects.len() == connects {
        h.advance(Duration::from_millis(100));
    }
    h.server(&info_with_nonce("n2"));
    let request = h.held_signs.as_mut().unwrap().pop().unwrap();
    assert_eq!(request.nonce, "n2");
    let connects = h.connects.len();
    h.conn
        .handle_signed(h.now, request.handshake, Err("no Ed25519 here".to_owned()));
    h.pump();
    let expected = ConnectionError::Credentials(nats_ws::CredentialsError::Signing(
        "no Ed25519 here".to_owned(),
    ));
    assert_eq!(
        h.conn.status(),
        &Status::Offline {
            last_error: expected
        }
    );
    assert_eq!(h.take_sent(), "", "no CONNECT without a signature");
    h.advance(Duration::from_secs(600));
    h.conn.handle_wake(h.now);
    h.pump();
    assert_eq!(
        h.connects.len(),
        connects,
        "not a retry loop, not at a wake either"
    );
    h.conn.reconnect_now(h.now);
    h.pump();
    assert_eq!(h.connects.len(), connects + 1, "the user can still ask");
}

#[test]
fn an_authenticator_is_asked_at_every_connect_and_its_failures_are_retried() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let auth = nats_ws::Auth::callback(move || match counted.fetch_add(1, Ordering::SeqCst) {
        n @ (0 | 1 | 4) => Ok(nats_ws::Auth::Token(format!("token-{n}"))),
        _ => Err("the token service is down".to_owned()),
    });
    let mut h = Harness::new(Harness::options().auth(auth));
    for n in 0..2 {
        h.server(INFO);
        assert_eq!(
            connect_json(&h.take_sent())["auth_token"],
            format!("token-{n}")
        );
        h.server("PONG\r\n");
        assert!(h.conn.status().is_connected());
        h.disconnect();
        h.advance(Duration::from_secs(3));
    }
    // The authenticator fails twice: nothing is sent, each attempt fails with its message and
    // is retried after the backoff (unlike a server's refusal, this may pass by itself) …
    let expected = ConnectionError::Credentials(nats_ws::CredentialsError::Authenticator(
        "the token service is down".to_owned(),
    ));
    for _ in 0..2 {
        h.server(INFO);
        assert!(!h.take_sent().contains("CONNECT"));
        assert!(
            matches!(h.conn.status(), Status::Reconnecting { last_error: Some(e), .. } if *e == expected),
            "{:?}",
            h.conn.status()
        );
        let (_, wait) = h.reconnecting();
        h.advance(wait);
    }
    // … and once it works again, so does the connection.
    h.server(INFO);
    assert_eq!(connect_json(&h.take_sent())["auth_token"], "token-4");
    h.server("PONG\r\n");
    assert!(h.conn.status().is_connected());
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[test]
fn the_same_authorization_error_twice_goes_offline() {
    let mut h = Harness::new(Harness::options().user_password("alice", "wrong"));
    h.server(INFO);
    h.server("-ERR 'Authorization Violation'\r\n");
    assert!(matches!(h.conn.status(), Status::Reconnecting { .. }));
    h.advance(Duration::from_secs(2));
    h.server(INFO);
    h.server("-ERR 'Authorization Violation'\r\n");
    assert_eq!(
        h.conn.status(),
        &Status::Offline {
            last_error: ConnectionError::AuthorizationViolation
        }
    );
}

/// A CONNECT longer than the server's max_control_line is refused the same way at every attempt
/// (nats.go and nats.js retry it forever): it is named, with its size, and the same server
/// refusing it twice takes the client Offline, as for refused credentials. The same text once
/// connected is about something else (a caller's line) and reconnects.
#[test]
fn a_connect_line_the_server_refuses_as_too_long_twice_goes_offline() {
    const TOO_LONG: &str = "-ERR 'Maximum Control Line Exceeded'\r\n";
    let name = "n".repeat(5000);
    let mut h = Harness::new(Harness::options().name(name.clone()));
    h.server(INFO);
    let sent = h.take_sent();
    let size = sent["CONNECT ".len()..].find("\r\n").unwrap();
    assert!(size > 5000, "{size}");
    h.server(TOO_LONG);
    let Status::Reconnecting {
        last_error: Some(first),
        ..
    } = h.conn.status().clone()
    else {
        panic!("{:?}", h.conn.status());
    };
    let ConnectionError::ConnectTooLong { size: said } = first else {
        panic!("{first:?}");
    };
    assert_eq!(said, size);
    assert!(first.to_string().contains("max_control_line"), "{first}");
    let (_, wait) = h.reconnecting();
    h.advance(wait);
    h.server(INFO);
    h.server(TOO_LONG);
    assert!(
        matches!(
            h.conn.status(),
            Status::Offline {
                last_error: ConnectionError::ConnectTooLong { .. }
            }
        ),
        "{:?}",
        h.conn.status()
    );

    // Once connected, the text is about a later line: the connection is lost and made again.
    let mut h = Harness::new(Harness::options());
    h.handshake();
    h.server(TOO_LONG);
    assert!(
        matches!(
            h.conn.status(),
            Status::Reconnecting {
                last_error: Some(ConnectionError::Server(_)),
                ..
            }
        ),
        "{:?}",
        h.conn.status()
    );
}

/// Authorization errors count per server, as in nats.go (it gives up when a server's last error
/// was that same refusal): one node of a cluster refusing the credentials (its accounts not
/// reloaded yet, say) does not stop the client trying the others; the same node refusing again
/// does.
#[test]
fn the_same_server_refusing_twice_gives_up_but_one_refusal_each_does_not() {
    const AUTH: &str = "-ERR 'Authorization Violation'\r\n";
    let mut opts =
        Options::with_servers(["ws://a:1", "ws://b:2", "ws://c:3"]).user_password("alice", "pw");
    opts.reconnect.jitter = Duration::ZERO;
    let mut h = Harness::new(opts);
    // a and b refuse, one after the other: c is still tried, and lets the client in.
    h.server(INFO);
    h.server(AUTH);
    h.server(INFO);
    h.server(AUTH);
    assert_eq!(h.connects, ["ws://a:1", "ws://b:2", "ws://c:3"]);
    h.handshake();

    // c goes away; a, next in turn, refuses again: its second, with no connection to it in
    // between. The client gives up and says why.
    h.disconnect();
    let (_, wait) = h.reconnecting();
    h.advance(wait);
    assert_eq!(h.connects.last().map(String::as_str), Some("ws://a:1"));
    h.server(INFO);
    h.server(AUTH);
    assert_eq!(
        h.conn.status(),
        &Status::Offline {
            last_error: ConnectionError::AuthorizationViolation
        }
    );

    // A server the client got into since its refusal starts counting again.
    let mut opts = Options::with_servers(["ws://a:1"]).user_password("alice", "pw");
    opts.reconnect.jitter = Duration::ZERO;
    let mut h = Harness::new(opts);
    h.server(INFO);
    h.server(AUTH);
    let (_, wait) = h.reconnecting();
    h.advance(wait);
    h.handshake();
    h.disconnect();
    let (_, wait) = h.reconnecting();
    h.advance(wait);
    h.server(INFO);
    h.server(AUTH);
    assert!(
        matches!(h.conn.status(), Status::Reconnecting { .. }),
        "{:?}",
        h.conn.status()
    );
}

/// A server that crashed or restarted takes with it what it alone hosted (an ordered consumer has
/// one replica), and the INFO of the server the client is on is the first to say so: an INFO that
/// no longer lists a server listed before on the same connection is reported. More servers, the
/// same in another order, an empty list (a cluster that does not advertise) and the first INFO of
/// a new connection (another server's view) are not.
#[test]
fn an_info_without_a_server_listed_before_says_a_server_left() {
    let mut h = connected();
    let info = |urls: &[&str]| {
        format!(
            "INFO {{\"connect_urls\":{}}}\r\n",
            serde_json::to_string(urls).unwrap()
        )
    };
    h.server(&info(&["a:80", "b:80"]));
    h.server(&info(&["c:80", "b:80", "a:80"]));
    h.server(&info(&["a:80", "c:80", "b:80"]));
    assert_eq!(h.take_events(), vec![], "joined or reordered");
    h.server(&info(&["a:80", "c:80"]));
    assert_eq!(h.take_events(), vec![Event::ServerLeft], "b left");
    h.server(&info(&[]));
    h.server(&info(&["a:80", "c:80"]));
    assert_eq!(h.take_events(), vec![], "an empty list says nothing");
    h.server(&info(&[]));
    h.server(&info(&["a:80"]));
    assert_eq!(
        h.take_events(),
        vec![Event::ServerLeft],
        "c left, compared with the list before the empty one"
    );

    // A new connection's first INFO lists fewer than the last one did: no news.
    h.disconnect();
    let (_, wait) = h.reconnecting();
    h.advance(wait);
    h.take_events();
    h.server("INFO {\"connect_urls\":[\"z:80\"]}\r\n");
    h.take_sent();
    h.server("PONG\r\n");
    assert!(h.conn.status().is_connected());
    assert!(
        !h.take_events().contains(&Event::ServerLeft),
        "a new connection's first INFO"
    );
    h.server(&info(&["z:80", "y:80"]));
    h.server(&info(&["y:80"]));
    assert_eq!(h.take_events(), vec![Event::ServerLeft], "z left");
}

#[test]
fn discovered_urls_keep_our_scheme() {
    let mut h = Harness::new(Options::new("wss://secure:443"));
    h.handshake();
    h.server("INFO {\"connect_urls\":[\"ws://evil:80\",\"other:443\"]}\r\n");
    let mut servers: Vec<&str> = h.conn.servers().collect();
    servers.sort_unstable();
    assert_eq!(
        servers,
        ["wss://evil:80", "wss://other:443", "wss://secure:443"]
    );
}

#[test]
fn frames_stay_within_a_small_max_payload() {
    let mut h = Harness::new(Harness::options());
    h.server("INFO {\"server_id\":\"S\",\"max_payload\":1024}\r\n");
    h.take_sent();
    h.server("PONG\r\n");
    for _ in 0..10 {
        h.conn
            .publish(&|| h.now, "x", None, None, &[b'y'; 1000])
            .unwrap();
    }
    while let Some(t) = h.conn.poll_transmit() {
        if let Transmit::Data(bytes) = t {
            assert!(bytes.len() <= 1024, "{}", bytes.len());
        }
    }
}

#[test]
fn discovered_servers_can_be_ignored() {
    let mut h = Harness::new(Harness::options().ignore_discovered_servers(true));
    h.handshake();
    h.server("INFO {\"connect_urls\":[\"10.0.0.2:8080\"]}\r\n");
    assert_eq!(
        h.conn.servers().collect::<Vec<_>>(),
        ["ws://127.0.0.1:8080"]
    );
}

#[test]
fn subscriptions_are_resent_after_reconnect() {
    let mut h = connected();
    let a = h.conn.subscribe("a", SubscribeOptions::default()).unwrap();
    let b = h
        .conn
        .subscribe("b.*", SubscribeOptions::default().queue_group("q"))
        .unwrap();
    let c = h
        .conn
        .subscribe("c.>", SubscribeOptions::default().max_messages(5))
        .unwrap();
    assert_eq!(
        h.take_sent(),
        format!("SUB a {a}\r\nSUB b.* q {b}\r\nSUB c.> {c}\r\nUNSUB {c} 5\r\n")
    );
    h.server(&format!("MSG c.1 {c} 1\r\nx\r\nMSG c.2 {c} 1\r\ny\r\n"));
    h.disconnect();
    // Changes while disconnected: nothing on the wire now, all of it after the handshake.
    h.conn.unsubscribe(a);
    let e = h.conn.subscribe("e", SubscribeOptions::default()).unwrap();
    assert_eq!(h.take_sent(), "");
    h.advance(Duration::from_secs(2));
    h.handshake();
    assert_eq!(
        h.take_sent(),
        format!("SUB b.* q {b}\r\nSUB c.> {c}\r\nUNSUB {c} 3\r\nSUB e {e}\r\n")
    );
}

#[test]
fn messages_reach_their_subscription_with_headers() {
    let mut h = connected();
    let sid = h
        .conn
        .subscribe("orders.>", SubscribeOptions::default())
        .unwrap();
    h.take_events();
    h.server(&format!(
        "HMSG orders.1 {sid} reply.x 18 23\r\nNATS/1.0\r\nK: v\r\n\r\nhello\r\n"
    ));
    let events = h.take_events();
    let [Event::Message { sid: got, message }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(*got, sid);
    assert_eq!(message.subject, "orders.1");
    assert_eq!(message.reply.as_deref(), Some("reply.x"));
    assert_eq!(message.headers.as_ref().unwrap().get("K"), Some("v"));
    assert_eq!(&message.payload[..], b"hello");
}

#[test]
fn a_subject_that_is_not_utf8_is_delivered_said_and_keeps_the_connection() {
    let mut h = connected();
    let sid = h
        .conn
        .subscribe("svc.*", SubscribeOptions::default())
        .unwrap();
    h.take_events();
    // Any client may publish `PUB svc.x \xff 2`: the server forwards the bytes as they are.
    let mut wire = format!("MSG svc.x {sid} ").into_bytes();
    wire.extend_from_slice(b"\xff 2\r\nhi\r\n");
    wire.extend_from_slice(format!("MSG svc.y {sid} 2\r\nok\r\n").as_bytes());
    h.conn.handle_input(h.now, &wire);
    let events = h.take_events();
    let [Event::ServerError(ServerError::NotUtf8 { subject }), Event::Message { message: first, .. }, Event::Message {
        message: second, ..
    }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(subject, "svc.x");
    assert_eq!(first.reply.as_deref(), Some("\u{fffd}"));
    assert_eq!(&first.payload[..], b"hi");
    assert_eq!(
        (second.subject.as_str(), second.reply.as_deref()),
        ("svc.y", None)
    );
    assert!(h.conn.status().is_connected(), "{:?}", h.conn.status());
}

#[test]
fn a_bad_header_block_delivers_its_message_without_headers_and_says_so() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    h.server(&format!(
        "HMSG x {sid} 12 15\r\nHTTP/1.1\r\n\r\nabc\r\nMSG x {sid} 2\r\nok\r\n"
    ));
    let events = h.take_events();
    assert!(
        matches!(&events[0], Event::ServerError(ServerError::BadMessage(_))),
        "{events:?}"
    );
    // Dropping it would leave a gap that an ordered consumer could never get past.
    assert!(
        matches!(&events[1], Event::Message { message, .. } if message.payload == "abc" && message.headers.is_none()),
        "{events:?}"
    );
    assert!(
        matches!(&events[2], Event::Message { message, .. } if message.payload == "ok"),
        "{events:?}"
    );
    assert!(h.conn.status().is_connected());
}

#[test]
fn auto_unsubscribe_ends_the_subscription() {
    let mut h = connected();
    let sid = h
        .conn
        .subscribe("x", SubscribeOptions::default().max_messages(2))
        .unwrap();
    assert_eq!(h.take_sent(), format!("SUB x {sid}\r\nUNSUB {sid} 2\r\n"));
    h.server(&format!(
        "MSG x {sid} 1\r\n1\r\nMSG x {sid} 1\r\n2\r\nMSG x {sid} 1\r\n3\r\n"
    ));
    let events = h.take_events();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        events[2],
        Event::SubscriptionClosed { error: None, .. }
    ));
}

#[test]
fn dedup_skips_repeats_within_the_window() {
    let mut h = connected();
    let sid = h
        .conn
        .subscribe(
            "user.*",
            SubscribeOptions::default().dedup(Duration::from_secs(2)),
        )
        .unwrap();
    h.server(&format!("MSG user.created {sid} 2\r\nhi\r\nMSG user.created {sid} 2\r\nhi\r\nMSG user.updated {sid} 2\r\nhi\r\n"));
    assert_eq!(h.take_events().len(), 2);
    h.advance(Duration::from_secs(2));
    h.server(&format!("MSG user.created {sid} 2\r\nhi\r\n"));
    assert_eq!(
        h.take_events().len(),
        1,
        "after the window the same message is new again"
    );
}

#[test]
fn publishes_while_disconnected_are_buffered_in_order_and_bounded() {
    let mut h = Harness::new(Harness::options().reconnect_buffer_size(64));
    h.handshake();
    h.take_sent();
    h.disconnect();
    h.conn.publish(&|| h.now, "a", None, None, b"1").unwrap(); // "PUB a 1\r\n1\r\n" = 12 bytes
    h.conn.publish(&|| h.now, "b", None, None, b"22").unwrap(); // 13 bytes
    let big = [b'x'; 40];
    assert_eq!(
        h.conn.publish(&|| h.now, "c", None, None, &big),
        Err(PublishError::BufferFull { limit: 64 })
    );
    h.conn.publish(&|| h.now, "d", None, None, b"333").unwrap(); // 14 bytes, 39 in all
    assert_eq!(h.conn.buffered(), 39);
    assert_eq!(h.take_sent(), "", "nothing may leave while disconnected");
    h.advance(Duration::from_secs(2));
    h.handshake();
    assert_eq!(
        h.take_sent(),
        "PUB a 1\r\n1\r\nPUB b 2\r\n22\r\nPUB d 3\r\n333\r\n"
    );
    assert_eq!(h.conn.buffered(), 0);
}

#[test]
fn zero_buffer_refuses_publishes_while_disconnected() {
    let mut h = Harness::new(Harness::options().reconnect_buffer_size(0));
    assert_eq!(
        h.conn.publish(&|| h.now, "a", None, None, b"1"),
        Err(PublishError::BufferFull { limit: 0 })
    );
    h.handshake();
    h.take_sent();
    assert_eq!(h.conn.publish(&|| h.now, "a", None, None, b"1"), Ok(()));
    assert_eq!(h.take_sent(), "PUB a 1\r\n1\r\n");
}

#[test]
fn invalid_input_is_refused_before_sending() {
    let mut h = connected();
    assert!(matches!(
        h.conn.publish(&|| h.now, "a.*", None, None, b""),
        Err(PublishError::InvalidSubject(_))
    ));
    assert!(matches!(
        h.conn.publish(&|| h.now, "a b", None, None, b""),
        Err(PublishError::InvalidSubject(_))
    ));
    assert!(matches!(
        h.conn.publish(&|| h.now, "a", Some("r r"), None, b""),
        Err(PublishError::InvalidReply(_))
    ));
    let mut bad = HeaderMap::new();
    bad.insert("X", "a\r\nb");
    assert!(matches!(
        h.conn.publish(&|| h.now, "a", None, Some(&bad), b""),
        Err(PublishError::InvalidHeader(_))
    ));
    assert!(matches!(
        h.conn.subscribe("a.>.b", SubscribeOptions::default()),
        Err(SubscribeError::InvalidSubject(_))
    ));
    assert!(matches!(
        h.conn
            .subscribe("a", SubscribeOptions::default().queue_group("q q")),
        Err(SubscribeError::InvalidQueueGroup(_))
    ));
    let payload = vec![0u8; 1024 * 1024 + 1];
    let err = h
        .conn
        .publish(&|| h.now, "a", None, None, &payload)
        .unwrap_err();
    assert_eq!(
        err,
        PublishError::MaxPayloadExceeded {
            size: 1024 * 1024 + 1,
            max: 1024 * 1024
        }
    );
    assert!(err.to_string().contains("max_payload"), "{err}");
    assert_eq!(h.take_sent(), "");
    assert!(h.conn.status().is_connected());
}

#[test]
fn max_payload_comes_from_info() {
    let mut h = Harness::new(Harness::options());
    h.server("INFO {\"max_payload\":100}\r\n");
    h.server("PONG\r\n");
    h.take_sent();
    assert_eq!(h.conn.max_payload(), 100);
    let mut headers = HeaderMap::new();
    headers.insert("A", "b"); // 18 bytes encoded
    assert!(h
        .conn
        .publish(&|| h.now, "x", None, Some(&headers), &[0; 82])
        .is_ok());
    assert_eq!(
        h.conn
            .publish(&|| h.now, "x", None, Some(&headers), &[0; 83]),
        Err(PublishError::MaxPayloadExceeded {
            size: 101,
            max: 100
        })
    );
}

#[test]
fn keepalive_pings_and_stale_detection() {
    let mut h = Harness::new(Harness::options().ping_interval(Duration::from_secs(10)));
    h.handshake();
    h.take_sent();
    h.advance(Duration::from_secs(10));
    assert_eq!(h.take_sent(), "PING\r\n");
    h.advance(Duration::from_secs(5));
    h.server("PONG\r\n");
    h.advance(Duration::from_secs(5));
    assert_eq!(h.take_sent(), "PING\r\n");
    assert!(h.conn.status().is_connected());
    // Now the server goes silent: PINGs at +20 s and +30 s go unanswered (2 = max_pings_out
    // outstanding); at +40 s, when the next one is due, the connection is stale.
    h.advance(Duration::from_secs(10));
    assert_eq!(h.take_sent(), "PING\r\n");
    h.advance(Duration::from_secs(9));
    assert!(h.conn.status().is_connected());
    h.advance(Duration::from_secs(1));
    match h.conn.status() {
        Status::Reconnecting {
            attempt: 1,
            last_error: Some(ConnectionError::Stale(quiet)),
            ..
        } => {
            assert_eq!(*quiet, Duration::from_secs(25));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.closes, 1);
}

#[test]
fn a_late_timer_sends_the_overdue_ping_instead_of_declaring_the_connection_stale() {
    // A background tab whose timers fire a minute late (Chromium's intensive throttling).
    let mut h = Harness::new(Harness::options().ping_interval(Duration::from_secs(10)));
    h.handshake();
    h.take_sent();
    for _ in 0..5 {
        let late = h.conn.poll_timeout().unwrap() + Duration::from_secs(60);
        h.now = late;
        h.conn.handle_timeout(h.now);
        assert_eq!(h.take_sent(), "PING\r\n");
        assert!(h.conn.status().is_connected(), "{:?}", h.conn.status());
        h.advance(Duration::from_millis(30));
        h.server("PONG\r\n");
    }
    assert_eq!(h.closes, 0);
}

#[test]
fn keepalive_measures_rtt_without_a_status_change() {
    let mut h = Harness::new(Harness::options().ping_interval(Duration::from_secs(10)));
    h.handshake();
    assert_eq!(h.conn.rtt(), Some(Duration::from_millis(3)));
    h.take_events();
    h.advance(Duration::from_secs(10));
    h.advance(Duration::from_millis(40));
    h.server("PONG\r\n");
    assert_eq!(h.conn.rtt(), Some(Duration::from_millis(40)));
    assert_eq!(
        h.take_events(),
        vec![],
        "status watchers are not woken by a keepalive"
    );
}

#[test]
fn wake_probes_a_quiet_connection_and_retries_a_waiting_one() {
    let mut h = connected();
    h.advance(Duration::from_secs(6));
    h.conn.handle_wake(h.now);
    assert_eq!(h.take_sent(), "PING\r\n");
    // No answer within connect_timeout (5 s): stale.
    h.advance(Duration::from_secs(5));
    let (attempt, _) = h.reconnecting();
    assert_eq!(attempt, 1);
    let connects = h.connects.len();
    h.conn.handle_wake(h.now);
    h.pump();
    assert_eq!(h.connects.len(), connects + 1, "a wake-up tries at once");
}

#[test]
fn answered_requests_leave_no_timer_behind() {
    let mut h = connected();
    let start = h.now;
    let keepalive = h.conn.poll_timeout().unwrap();
    let slow = h
        .conn
        .request(h.now, "svc.slow", None, b"", Duration::from_secs(10))
        .unwrap();
    let sent = h.take_sent();
    let inbox_sid = sent
        .split("\r\n")
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    // Thousands answered at once, each with a deadline before the slow one's.
    for _ in 0..3000 {
        let id = h
            .conn
            .request(h.now, "svc.fast", None, b"", Duration::from_secs(1))
            .unwrap();
        let sent = h.take_sent();
        let reply = sent.split(' ').nth(2).unwrap().to_owned();
        h.server(&format!("MSG {reply} {inbox_sid} 2\r\nok\r\n"));
        let events = h.take_events();
        assert!(
            matches!(&events[..], [Event::Response { id: got, result: Ok(_) }] if *got == id),
            "{events:?}"
        );
    }
    // The next wake is the slow request's deadline (or the keepalive), not an answered one's.
    let slow_deadline = start + Duration::from_secs(10);
    assert_eq!(h.conn.poll_timeout(), Some(keepalive.min(slow_deadline)));
    h.advance(Duration::from_secs(10));
    let timed_out: Vec<u64> = h
        .take_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Response {
                id,
                result: Err(RequestError::TimedOut { .. }),
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(timed_out, [slow]);
}

#[test]
fn request_reply_timeout_and_no_responders() {
    let mut h = connected();
    let id = h
        .conn
        .request(h.now, "svc.echo", None, b"ping", Duration::from_secs(1))
        .unwrap();
    let sent = h.take_sent();
    let mut lines = sent.split("\r\n");
    let sub = lines.next().unwrap();
    let inbox = sub
        .strip_prefix("SUB ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        inbox.starts_with("_INBOX.") && inbox.ends_with(".*"),
        "{sub}"
    );
    let publish = lines.next().unwrap();
    let reply = publish.split(' ').nth(2).unwrap().to_owned();
    assert!(publish.starts_with("PUB svc.echo _INBOX."), "{publish}");
    let inbox_sid = sub.rsplit(' ').next().unwrap();
    h.server(&format!("MSG {reply} {inbox_sid} 4\r\npong\r\n"));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Response { id: got, result: Ok(m) }] if *got == id && m.payload == "pong"),
        "{events:?}"
    );

    // Timeout, at the deadline and not before.
    let id = h
        .conn
        .request(h.now, "svc.slow", None, b"", Duration::from_secs(1))
        .unwrap();
    h.take_sent();
    h.advance(Duration::from_millis(999));
    assert!(h.take_events().is_empty());
    h.advance(Duration::from_millis(1));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Response { id: got, result: Err(RequestError::TimedOut { .. }) }] if *got == id),
        "{events:?}"
    );

    // No responders: a 503 status fails at once.
    let id = h
        .conn
        .request(h.now, "svc.none", None, b"", Duration::from_secs(5))
        .unwrap();
    let sent = h.take_sent();
    let reply = sent.split(' ').nth(2).unwrap().to_owned();
    assert_eq!(
        sent.matches("SUB").count(),
        0,
        "the inbox subscription is shared"
    );
    h.server(&format!(
        "HMSG {reply} {inbox_sid} 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"
    ));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Response { id: got, result: Err(RequestError::NoResponders { subject }) }] if *got == id && subject == "svc.none"),
        "{events:?}"
    );
}

#[test]
fn requests_are_never_buffered_and_fail_at_once_when_the_connection_is_lost() {
    let mut h = connected();
    let a = h
        .conn
        .request(h.now, "svc.a", None, b"x", Duration::from_secs(30))
        .unwrap();
    let b = h
        .conn
        .request(h.now, "svc.b", None, b"x", Duration::from_secs(30))
        .unwrap();
    h.take_events();
    h.take_sent();
    h.disconnect();
    let events = h.take_events();
    let lost: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Response {
                id,
                result: Err(RequestError::ConnectionLost { subject }),
            } => Some((*id, subject.as_str())),
            _ => None,
        })
        .collect();
    // Each to its own caller, oldest first.
    assert_eq!(lost, [(a, "svc.a"), (b, "svc.b")], "{events:?}");
    assert!(RequestError::ConnectionLost {
        subject: "x".into()
    }
    .is_transient());

    // While disconnected a request is refused, not buffered: nothing piles up for the reconnect.
    assert_eq!(
        h.conn
            .request(h.now, "svc", None, b"x", Duration::from_secs(30)),
        Err(RequestError::NotConnected {
            subject: "svc".into()
        })
    );
    h.advance(Duration::from_secs(2));
    h.handshake();
    let sent = h.take_sent();
    assert!(!sent.contains("PUB svc"), "{sent}");
    assert!(
        sent.contains("SUB _INBOX."),
        "the inbox is subscribed again: {sent}"
    );
    h.conn
        .request(h.now, "svc", None, b"x", Duration::from_secs(30))
        .unwrap();
    assert!(h.take_sent().starts_with("PUB svc _INBOX."));
}

#[test]
fn a_subscription_refusal_closes_only_the_subscriptions_it_names() {
    // nats-server may allow a subject to a queue group only ("foo q" in the allow list): it then
    // refuses the plain SUB and keeps the queue one. Its text says which: no queue, a queue, or
    // (after a permissions reload) the sid.
    let mut h = connected();
    let grouped = h
        .conn
        .subscribe("foo", SubscribeOptions::default().queue_group("q"))
        .unwrap();
    let plain = h
        .conn
        .subscribe("foo", SubscribeOptions::default())
        .unwrap();
    let other_group = h
        .conn
        .subscribe("foo", SubscribeOptions::default().queue_group("r"))
        .unwrap();
    h.take_events();
    let closed = |events: Vec<Event>| -> Vec<u64> {
        events
            .into_iter()
            .filter_map(|e| match e {
                Event::SubscriptionClosed { sid, .. } => Some(sid),
                _ => None,
            })
            .collect()
    };
    h.server("-ERR 'Permissions Violation for Subscription to \"foo\"'\r\n");
    assert_eq!(closed(h.take_events()), vec![plain]);
    h.server(&format!("MSG foo {grouped} 1\r\nk\r\n"));
    assert_eq!(
        h.take_events().len(),
        1,
        "the queue subscription still delivers"
    );

    h.server(&format!(
        "-ERR 'Permissions Violation for Subscription to \"foo\" using queue \"r\" (sid \"{other_group}\")'\r\n"
    ));
    assert_eq!(closed(h.take_events()), vec![other_group]);
    h.server("-ERR 'Permissions Violation for Subscription to \"foo\" using queue \"q\"'\r\n");
    assert_eq!(closed(h.take_events()), vec![grouped]);
    assert!(h.conn.status().is_connected());
}

#[test]
fn permission_violations_reach_the_subscription_and_keep_the_connection() {
    let mut h = connected();
    let secret = h
        .conn
        .subscribe("secret.>", SubscribeOptions::default())
        .unwrap();
    let fine = h
        .conn
        .subscribe("public", SubscribeOptions::default())
        .unwrap();
    h.take_events();
    h.server("-ERR 'Permissions Violation for Subscription to \"secret.>\"'\r\n");
    let events = h.take_events();
    assert_eq!(
        events,
        vec![Event::SubscriptionClosed {
            sid: secret,
            error: Some(SubscribeError::PermissionDenied {
                subject: "secret.>".into()
            })
        }]
    );
    assert!(h.conn.status().is_connected());
    h.server(&format!("MSG public {fine} 1\r\nk\r\n"));
    assert_eq!(h.take_events().len(), 1);

    h.server("-ERR 'Permissions Violation for Publish to \"admin.x\"'\r\n");
    assert_eq!(
        h.take_events(),
        vec![Event::ServerError(ServerError::PublishDenied {
            subject: "admin.x".into()
        })]
    );
    let id = h
        .conn
        .request(h.now, "admin.y", None, b"", Duration::from_secs(5))
        .unwrap();
    h.server("-ERR 'Permissions Violation for Publish to \"admin.y\"'\r\n");
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Response { id: got, result: Err(RequestError::PermissionDenied { .. }) }] if *got == id),
        "{events:?}"
    );
    assert!(h.conn.status().is_connected());
    assert_eq!(h.closes, 0);
}

#[test]
fn non_fatal_errors_are_reported_and_keep_the_connection() {
    let mut h = connected();
    for text in [
        "maximum subscriptions exceeded",
        "Permissions Violation for Publish with Reply of \"_INBOX.x.1\"",
        "Invalid Subject",
        "something new the server learned to say",
    ] {
        h.server(&format!("-ERR '{text}'\r\n"));
        assert_eq!(
            h.take_events(),
            vec![Event::ServerError(ServerError::Other(text.into()))]
        );
    }
    assert!(h.conn.status().is_connected());
    assert_eq!(h.closes, 0);
}

#[test]
fn fatal_errors_reconnect() {
    for text in [
        "Maximum Payload Violation",
        "Unknown Protocol Operation",
        "maximum connections exceeded",
        "Parser Error",
    ] {
        let mut h = connected();
        h.server(&format!("-ERR '{text}'\r\n"));
        assert_eq!(h.closes, 1, "{text}");
        assert!(matches!(
            h.conn.status(),
            Status::Reconnecting {
                last_error: Some(ConnectionError::Server(_)),
                ..
            }
        ));
    }
    let mut h = connected();
    h.server("-ERR 'Stale Connection'\r\n");
    assert_eq!(h.closes, 1);
    match h.conn.status() {
        Status::Reconnecting {
            last_error: Some(ConnectionError::Server(text)),
            ..
        } => assert_eq!(text, "Stale Connection"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn authorization_violation_during_handshake_is_named() {
    let mut h = Harness::new(Harness::options().user_password("alice", "wrong"));
    h.server(INFO);
    h.server("-ERR 'Authorization Violation'\r\n");
    match h.conn.status() {
        Status::Reconnecting {
            last_error: Some(e @ ConnectionError::AuthorizationViolation),
            ..
        } => {
            assert!(e.to_string().contains("user and password"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn something_other_than_nats_is_named() {
    let mut h = Harness::new(Harness::options());
    h.server("HTTP/1.1 400 Bad Request\r\n");
    match h.conn.status() {
        Status::Reconnecting {
            last_error: Some(ConnectionError::NotNats { url, .. }),
            ..
        } => {
            assert_eq!(url, "ws://127.0.0.1:8080");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn garbage_after_the_handshake_reconnects_without_panicking() {
    let mut h = connected();
    h.server("MSG a 1 notanumber\r\n");
    assert!(matches!(
        h.conn.status(),
        Status::Reconnecting {
            last_error: Some(ConnectionError::Protocol(_)),
            ..
        }
    ));
}

#[test]
fn a_message_over_64_mib_comes_from_a_server_that_allows_it_and_only_then() {
    const BIG: usize = 64 * 1024 * 1024 + 1;
    let mut wire = Vec::with_capacity(BIG + 64);
    let big_msg = |sid: u64, wire: &mut Vec<u8>| {
        wire.clear();
        wire.extend_from_slice(format!("MSG big {sid} {BIG}\r\n").as_bytes());
        wire.resize(wire.len() + BIG, b'x');
        wire.extend_from_slice(b"\r\n");
    };

    // nats-server lets `max_payload` pass 64 MiB when `max_pending` is raised with it; such a
    // server's messages are delivered, not taken for garbage (and the connection dropped again at
    // every redelivery).
    let mut h = Harness::new(Harness::options());
    h.server(&format!(
        "INFO {{\"max_payload\":{}}}\r\n",
        80 * 1024 * 1024
    ));
    h.server("PONG\r\n");
    let sid = h
        .conn
        .subscribe("big", SubscribeOptions::default())
        .unwrap();
    h.take_sent();
    h.take_events();
    big_msg(sid, &mut wire);
    for frame in wire.chunks(1 << 20) {
        h.conn.handle_input(h.now, frame);
    }
    let events = h.take_events();
    let [Event::Message { message, .. }] = events.as_slice() else {
        panic!("{} events: {:?}", events.len(), events.first())
    };
    assert_eq!(message.payload.len(), BIG);
    assert!(h.conn.status().is_connected(), "{:?}", h.conn.status());

    // A server that allows less announcing as much is garbage: the connection is dropped with
    // the sizes said, before anything is reserved for it.
    let mut h = connected();
    let sid = h
        .conn
        .subscribe("big", SubscribeOptions::default())
        .unwrap();
    h.server(&format!("MSG big {sid} {BIG}\r\n"));
    match h.conn.status() {
        Status::Reconnecting {
            last_error: Some(ConnectionError::Protocol(ParseError::TooLarge { size, max })),
            ..
        } => assert_eq!((*size, *max), (BIG, 64 * 1024 * 1024)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn flush_waits_for_pong_and_survives_a_reconnect() {
    let mut h = connected();
    let id = h.conn.flush().unwrap();
    assert_eq!(h.take_sent(), "PING\r\n");
    h.server("PONG\r\n");
    assert_eq!(h.take_events(), vec![Event::Flushed { id, result: Ok(()) }]);

    h.disconnect();
    h.conn.publish(&|| h.now, "a", None, None, b"1").unwrap();
    let id = h.conn.flush().unwrap();
    h.advance(Duration::from_secs(2));
    h.handshake();
    assert_eq!(
        h.take_sent(),
        "PUB a 1\r\n1\r\nPING\r\n",
        "the flush PING follows the buffered publishes"
    );
    h.take_events();
    h.server("PONG\r\n");
    assert_eq!(h.take_events(), vec![Event::Flushed { id, result: Ok(()) }]);
}

#[test]
fn a_flush_whose_connection_is_lost_before_its_pong_fails() {
    // What went out before the PING may not have reached the server, and it is not sent again: a
    // flush that then succeeded on the next connection would vouch for a lost publish (nats.go
    // fails pending flushes on a disconnect).
    let mut h = connected();
    h.conn.publish(&|| h.now, "a", None, None, b"1").unwrap();
    let id = h.conn.flush().unwrap();
    assert_eq!(h.take_sent(), "PUB a 1\r\n1\r\nPING\r\n");
    h.disconnect();
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Flushed { id: got, result: Err(_) } if *got == id)),
        "{events:?}"
    );
    h.advance(Duration::from_secs(2));
    h.handshake();
    assert_eq!(h.take_sent(), "", "no PING for it on the next connection");
    h.server("PONG\r\n");
    let events = h.take_events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Flushed { .. })),
        "{events:?}"
    );
}

#[test]
fn frames_are_at_most_64_kib_and_carry_every_byte() {
    let mut h = connected();
    let big = vec![b'x'; 1024 * 1024 - 100];
    h.conn.publish(&|| h.now, "big", None, None, &big).unwrap();
    for i in 0..5000 {
        h.conn
            .publish(&|| h.now, "small", None, None, format!("{i}").as_bytes())
            .unwrap();
    }
    let mut all = Vec::new();
    let mut frames = 0;
    while let Some(t) = h.conn.poll_transmit() {
        let Transmit::Data(bytes) = t else {
            panic!("{t:?}")
        };
        assert!(bytes.len() <= nats_ws::proto::MAX_FRAME, "{}", bytes.len());
        frames += 1;
        all.extend_from_slice(&bytes);
    }
    assert!(frames >= 16, "{frames}");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("PUB big 1048476\r\nxxx"));
    assert!(text.ends_with("PUB small 4\r\n4999\r\n"));
    assert_eq!(text.matches("PUB small").count(), 5000);
}

#[test]
fn buffered_publishes_expire_after_their_max_age() {
    let mut h =
        Harness::new(Harness::options().reconnect_buffer_max_age(Some(Duration::from_secs(60))));
    h.handshake();
    h.disconnect();
    h.conn.publish(&|| h.now, "old", None, None, b"1").unwrap();
    h.now += Duration::from_secs(45);
    h.conn
        .publish(&|| h.now, "newer", None, None, b"2")
        .unwrap();
    h.now += Duration::from_secs(30); // "old" is 75 s old, "newer" 30 s
    h.take_events();
    h.conn.reconnect_now(h.now);
    h.pump();
    h.handshake();
    let sent = h.take_sent();
    assert!(!sent.contains("PUB old"), "{sent}");
    assert!(sent.contains("PUB newer 1\r\n2\r\n"), "{sent}");
    assert!(h.take_events().contains(&Event::BufferedExpired {
        messages: 1,
        bytes: "PUB old 1\r\n1\r\n".len()
    }));
    assert_eq!(h.conn.buffered(), 0);

    // Without a bound they wait for however long the outage lasts.
    let mut h = Harness::new(Harness::options().reconnect_buffer_max_age(None));
    h.handshake();
    h.disconnect();
    h.conn.publish(&|| h.now, "old", None, None, b"1").unwrap();
    h.now += Duration::from_secs(24 * 3600);
    h.conn.reconnect_now(h.now);
    h.pump();
    h.handshake();
    assert!(h.take_sent().contains("PUB old"));
}

#[test]
fn a_publish_reads_the_clock_only_while_buffering() {
    // The buffer's age marks are the only use of the time at a publish. In a browser, reading the
    // clock is a call out of wasm, so a live connection's publish must not read it.
    let mut h = connected();
    let reads = std::cell::Cell::new(0);
    let now = h.now;
    let clock = || {
        reads.set(reads.get() + 1);
        now
    };
    for _ in 0..3 {
        h.conn.publish(&clock, "a", None, None, b"1").unwrap();
    }
    assert_eq!(reads.get(), 0, "connected");
    h.disconnect();
    h.conn.publish(&clock, "a", None, None, b"1").unwrap();
    assert_eq!(
        reads.get(),
        1,
        "disconnected: the publish is buffered and aged"
    );
    h.conn.publish(&clock, "a.*", None, None, b"1").unwrap_err();
    assert_eq!(reads.get(), 1, "a refused publish is not aged");
}

#[test]
fn close_sends_what_was_published_first() {
    let mut h = connected();
    h.conn
        .publish(&|| h.now, "last", None, None, b"words")
        .unwrap();
    h.conn.close();
    let mut order = Vec::new();
    while let Some(t) = h.conn.poll_transmit() {
        order.push(t);
    }
    assert_eq!(
        order,
        vec![
            Transmit::Data("PUB last 5\r\nwords\r\n".into()),
            Transmit::Close
        ]
    );
}

#[test]
fn drain_keeps_delivering_until_the_server_has_processed_the_unsubscribes() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    h.take_sent();
    h.conn.drain_subscriptions();
    let flush = h.conn.flush().unwrap();
    assert_eq!(h.take_sent(), format!("UNSUB {sid}\r\nPING\r\n"));
    assert_eq!(
        h.conn.subscribe("y", SubscribeOptions::default()),
        Err(SubscribeError::Closed)
    );
    // Sent by the server before it processed the UNSUB: still delivered.
    h.server(&format!("MSG x {sid} 2\r\nhi\r\nPONG\r\n"));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Message { message, .. }, Event::Flushed { id, result: Ok(()) }] if message.payload == "hi" && *id == flush),
        "{events:?}"
    );
    h.conn.finish_drain();
    let events = h.take_events();
    assert!(events.contains(&Event::SubscriptionClosed { sid, error: None }));
    assert_eq!(h.conn.status(), &Status::Closed);
}

#[test]
fn a_drained_subscription_delivers_until_the_server_has_processed_its_unsub() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    let other = h.conn.subscribe("y", SubscribeOptions::default()).unwrap();
    h.take_sent();
    assert!(h.conn.drain_subscription(sid));
    assert_eq!(h.take_sent(), format!("UNSUB {sid}\r\nPING\r\n"));
    // Sent by the server before it processed the UNSUB: still delivered.
    h.server(&format!("MSG x {sid} 2\r\nhi\r\nMSG y {other} 1\r\ny\r\n"));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Message { sid: a, message }, Event::Message { sid: b, .. }] if *a == sid && message.payload == "hi" && *b == other),
        "{events:?}"
    );
    // A second drain, an unsubscribe_after or a keepalive meanwhile send nothing more for it.
    assert!(h.conn.drain_subscription(sid));
    h.conn.unsubscribe_after(sid, 10);
    assert_eq!(h.take_sent(), "");
    h.server("PONG\r\n");
    assert_eq!(
        h.take_events(),
        [Event::SubscriptionClosed { sid, error: None }]
    );
    // Gone: a late message is ignored; the other subscription goes on.
    h.server(&format!("MSG x {sid} 1\r\nz\r\nMSG y {other} 1\r\ny\r\n"));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Message { sid: b, .. }] if *b == other),
        "{events:?}"
    );
    // Dropping it after the drain sends no second UNSUB; unknown sids are ignored.
    h.conn.unsubscribe(sid);
    assert!(!h.conn.drain_subscription(sid));
    h.conn.finish_subscription_drain(sid);
    assert_eq!(h.take_sent(), "");
    assert_eq!(h.take_events(), []);
}

#[test]
fn a_drain_waits_for_its_own_pong_after_earlier_pings() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    let flush = h.conn.flush().unwrap();
    h.take_sent();
    h.conn.drain_subscription(sid);
    assert_eq!(h.take_sent(), format!("UNSUB {sid}\r\nPING\r\n"));
    // The first PONG answers the flush's PING, sent before the UNSUB.
    h.server(&format!("PONG\r\nMSG x {sid} 1\r\na\r\n"));
    let events = h.take_events();
    assert!(
        matches!(&events[..], [Event::Flushed { id, result: Ok(()) }, Event::Message { .. }] if *id == flush),
        "{events:?}"
    );
    h.server("PONG\r\n");
    assert_eq!(
        h.take_events(),
        [Event::SubscriptionClosed { sid, error: None }]
    );
}

#[test]
fn a_drain_while_disconnected_ends_at_once() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    let kept = h.conn.subscribe("y", SubscribeOptions::default()).unwrap();
    h.disconnect();
    h.take_events();
    assert!(!h.conn.drain_subscription(sid));
    assert_eq!(
        h.take_events(),
        [Event::SubscriptionClosed { sid, error: None }]
    );
    h.advance(Duration::from_secs(2));
    h.handshake();
    assert_eq!(h.take_sent(), format!("SUB y {kept}\r\n"));
}

#[test]
fn a_connection_lost_during_a_drain_ends_it_and_it_is_not_subscribed_again() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    let kept = h.conn.subscribe("y", SubscribeOptions::default()).unwrap();
    h.take_sent();
    h.conn.drain_subscription(sid);
    h.take_sent();
    h.server(&format!("MSG x {sid} 1\r\na\r\n"));
    h.take_events();
    h.disconnect();
    let events = h.take_events();
    assert!(
        events.contains(&Event::SubscriptionClosed { sid, error: None }),
        "{events:?}"
    );
    h.advance(Duration::from_secs(2));
    h.handshake();
    assert_eq!(h.take_sent(), format!("SUB y {kept}\r\n"));
    // The lost connection's PONG never comes; a PONG on the new one ends nothing.
    h.server("PONG\r\n");
    let events = h.take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::SubscriptionClosed { .. })),
        "{events:?}"
    );
}

#[test]
fn a_drain_that_times_out_is_finished_by_the_driver() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    h.take_sent();
    h.conn.drain_subscription(sid);
    h.take_sent();
    h.conn.finish_subscription_drain(sid);
    assert_eq!(
        h.take_events(),
        [Event::SubscriptionClosed { sid, error: None }]
    );
    // Its PONG, late, ends nothing more; finishing a subscription that is not draining does nothing.
    let other = h.conn.subscribe("y", SubscribeOptions::default()).unwrap();
    h.conn.finish_subscription_drain(other);
    h.server("PONG\r\n");
    assert_eq!(h.take_events(), []);
    assert_eq!(h.take_sent(), format!("SUB y {other}\r\n"));
}

#[test]
fn closing_during_a_drain_ends_it_with_the_close() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    h.conn.drain_subscription(sid);
    h.take_events();
    h.conn.close();
    let events = h.take_events();
    assert!(
        events.contains(&Event::SubscriptionClosed {
            sid,
            error: Some(SubscribeError::Closed)
        }),
        "{events:?}"
    );
}

#[test]
fn a_header_value_that_is_not_utf8_keeps_its_message() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    let mut bytes = format!("HMSG x {sid} 19 21\r\nNATS/1.0\r\nA: ").into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"\r\n\r\nok\r\n");
    h.conn.handle_input(h.now, &bytes);
    let events = h.take_events();
    match &events[..] {
        [Event::Message { message, .. }] => {
            assert_eq!(message.payload, "ok");
            assert_eq!(
                message.headers.as_ref().unwrap().get("A"),
                Some("\u{fffd}\u{fffd}")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn close_fails_what_is_in_flight() {
    let mut h = connected();
    let sid = h.conn.subscribe("x", SubscribeOptions::default()).unwrap();
    let req = h
        .conn
        .request(h.now, "svc", None, b"", Duration::from_secs(5))
        .unwrap();
    let flush = h.conn.flush().unwrap();
    h.take_events();
    h.conn.close();
    let events = h.take_events();
    assert!(events.contains(&Event::Response {
        id: req,
        result: Err(RequestError::Closed)
    }));
    assert!(events.contains(&Event::Flushed {
        id: flush,
        result: Err(ConnectionError::Closed)
    }));
    assert!(events.contains(&Event::SubscriptionClosed {
        sid,
        error: Some(SubscribeError::Closed)
    }));
    assert_eq!(h.conn.status(), &Status::Closed);
    assert_eq!(
        h.conn.publish(&|| h.now, "a", None, None, b""),
        Err(PublishError::Closed)
    );
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn urls_are_checked() {
    let now = Instant::now();
    let err = Connection::new(Options::new("tls://127.0.0.1:4222"), now, 1).unwrap_err();
    assert!(err.to_string().contains("wss://"), "{err}");
    // Natively, nats:// is plain TCP to the client port.
    let c = Connection::new(Options::new("nats://127.0.0.1:4222"), now, 1).unwrap();
    assert_eq!(c.servers().collect::<Vec<_>>(), ["nats://127.0.0.1:4222"]);
    assert!(Connection::new(Options::new("http://x"), now, 1).is_err());
    assert!(Connection::new(Options::with_servers(Vec::<String>::new()), now, 1).is_err());
    let c = Connection::new(Options::new("127.0.0.1:8080"), now, 1).unwrap();
    assert_eq!(c.servers().collect::<Vec<_>>(), ["ws://127.0.0.1:8080"]);
    // What a browser would make something else of, refused with the reason: a scheme mistyped
    // (`ws//host` read as host `ws` and a path), two colons, a port that is not one, a port
    // alone (`80` read as the host 0.0.0.80), no host.
    for (url, reason) in [
        ("ws//localhost:8080", "ws://"),
        ("ws:/localhost:8080", "ws://"),
        ("ws:8080", "ws://"),
        ("WSS//example.com", "wss://"),
        ("ws://localhost::80", "host:port"),
        ("ws://localhost:80a", "port"),
        ("ws://localhost:0", "port"),
        ("ws://localhost:65536", "port"),
        ("localhost:", "port"),
        ("80", "host"),
        ("ws://8080", "host"),
        ("ws://:8080", "no host"),
        ("ws://local host:8080", "host"),
        ("ws://[::1:8080", "]"),
    ] {
        let err = Connection::new(Options::new(url), now, 1).unwrap_err();
        assert!(
            err.to_string().contains(reason),
            "{url}: {err} (expected it to mention {reason})"
        );
    }
    for (url, expected) in [
        ("ws://[::1]:8080", "ws://[::1]:8080"),
        ("[::1]:8080", "ws://[::1]:8080"),
        ("wss://example.com/nats?x=1", "wss://example.com/nats?x=1"),
        ("ws://localhost", "ws://localhost"),
        ("ws://127.0.0.1:8080/", "ws://127.0.0.1:8080/"),
        ("nats-1.example:443", "ws://nats-1.example:443"),
        ("localhost:8080/nats", "ws://localhost:8080/nats"),
        ("ws://bücher.example:8080", "ws://bücher.example:8080"),
        ("ws://h:008080", "ws://h:008080"),
        ("ws", "ws://ws"),
    ] {
        let c = Connection::new(Options::new(url), now, 1).unwrap();
        assert_eq!(c.servers().collect::<Vec<_>>(), [expected]);
    }
}

#[test]
fn a_nats_url_whose_server_requires_tls_says_so_and_sends_nothing() {
    let policy = ReconnectPolicy {
        jitter: Duration::ZERO,
        ..Default::default()
    };
    let mut h = Harness::new(Options::new("nats://127.0.0.1:4222").reconnect(policy));
    assert_eq!(h.connects, ["nats://127.0.0.1:4222"]);
    h.server("INFO {\"server_id\":\"S\",\"tls_required\":true}\r\n");
    assert_eq!(h.take_sent(), "", "no CONNECT in the clear");
    match h.conn.status() {
        Status::Reconnecting { last_error, .. } => assert_eq!(
            last_error,
            &Some(ConnectionError::TlsRequired {
                url: "nats://127.0.0.1:4222".into()
            })
        ),
        other => panic!("expected reconnecting, got {other:?}"),
    }
    // Over wss:// the TLS is the WebSocket's: the same INFO is no obstacle.
    let mut h = Harness::new(Options::new("wss://127.0.0.1:443"));
    h.server("INFO {\"server_id\":\"S\",\"tls_required\":true}\r\n");
    assert!(h.take_sent().starts_with("CONNECT {"));
}
