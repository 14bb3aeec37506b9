#![cfg(not(target_arch = "wasm32"))]
//! NATS services (micro v1) against a real nats-server: the `$SRV` answers field by field, error
//! replies, stats, queue groups across instances, stop, discovery, a server restart — and interop
//! with nats.js `@nats-io/services` both ways (`tests/service_peer.mjs`, run with `node`; the
//! packages come from the repo root's node_modules, installed by scripts/setup.sh).
//!
//! Synchronisation is on replies, handler events and peer output lines; every wait is bounded.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{connect, connect_quick_reconnect, wait_status, within, TestServer};
use futures::StreamExt;
use nats_ws::service::{
    self, Endpoint, EndpointConfig, RespondError, ServiceConfig, ServiceError, Verb,
    ERROR_CODE_HEADER, ERROR_HEADER,
};
use nats_ws::{Client, RequestError, Status};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

const STEP: u64 = 5;
/// How long discovery waits after an answer for more: long enough that one instance's answer
/// lagging another's on a loaded machine is not cut off.
const QUIET: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(5);

/// A request, answered within a step.
async fn ask(client: &Client, subject: &str, payload: &str) -> nats_ws::Message {
    within(
        STEP,
        subject,
        client.request_with(subject, None, payload.as_bytes(), Duration::from_secs(STEP)),
    )
    .await
    .unwrap_or_else(|e| panic!("request to {subject}: {e}"))
}

/// A `$SRV` request, its reply as JSON.
async fn ask_json(client: &Client, subject: &str) -> Value {
    let reply = ask(client, subject, "").await;
    serde_json::from_slice(&reply.payload)
        .unwrap_or_else(|e| panic!("{subject} answered invalid JSON ({e}): {:?}", reply.text()))
}

/// Serves `endpoint`: echoes the payload, except `fail` (error 404 with a JSON body) and `drop`
/// (no answer). Reports `(tag, payload)` after each answer.
fn serve(
    mut endpoint: Endpoint,
    tag: &'static str,
    done: mpsc::UnboundedSender<(&'static str, String)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(request) = endpoint.next().await {
            let text = request.text().unwrap_or_default().to_owned();
            match text.as_str() {
                "fail" => request
                    .respond_error(
                        404,
                        "no process named x",
                        br#"{"error":"no process named x","code":404}"#,
                    )
                    .unwrap(),
                "drop" => drop(request),
                _ => request.respond(request.payload()).unwrap(),
            }
            let _ = done.send((tag, text));
        }
    })
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// `2024-05-06T07:08:09.123456Z`, within a minute of now.
fn assert_rfc3339_now(started: &str) {
    let b = started.as_bytes();
    assert_eq!(b.len(), 27, "{started}");
    for (i, c) in b.iter().enumerate() {
        let want_digit = !matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 26);
        assert_eq!(c.is_ascii_digit(), want_digit, "{started}: position {i}");
    }
    assert_eq!(
        (b[4], b[7], b[10], b[13], b[16], b[19], b[26]),
        (b'-', b'-', b'T', b':', b':', b'.', b'Z'),
        "{started}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Days since the epoch from the date, checked against now (same day, or a minute apart at midnight).
    let num = |r: std::ops::Range<usize>| started[r].parse::<i64>().unwrap();
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let secs = num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    // Days from civil (Howard Hinnant), independent of the crate's civil_from_days.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = days * 86_400 + secs;
    assert!((at - now as i64).abs() < 60, "{started} is not now ({now})");
}

#[tokio::test]
async fn a_stats_answer_larger_than_max_payload_is_an_error_not_silence() {
    let server = TestServer::start_with("max_payload: 2048");
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(
        &client,
        ServiceConfig::new("big", "1.0.0").stats_handler(|_| json!("n".repeat(3000))),
    )
    .unwrap();
    let _e = svc.endpoint("e").unwrap();
    client.flush().await.unwrap();
    // INFO fits; STATS, with what the stats handler adds, does not.
    assert_eq!(ask_json(&asker, "$SRV.INFO.big").await["name"], "big");
    let reply = ask(&asker, "$SRV.STATS.big", "").await;
    let headers = reply.headers.as_ref().expect("error headers");
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("500"));
    let said = headers.get(ERROR_HEADER).unwrap_or_default();
    assert!(
        said.starts_with("Error handling STATS request:") && said.contains("max_payload"),
        "{said}"
    );
    assert!(reply.payload.is_empty());
}

/// The stats handler is the application's code. One that panics gets its STATS answered with a
/// 500, and the service goes on answering (the panic used to end the task that answers PING,
/// INFO and STATS: the service vanished from discovery while its endpoints still served).
#[tokio::test]
async fn a_panicking_stats_handler_is_an_error_and_discovery_goes_on() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(
        &client,
        ServiceConfig::new("fragile", "1.0.0").stats_handler(|_| panic!("a bug in the handler")),
    )
    .unwrap();
    let _e = svc.endpoint("e").unwrap();
    client.flush().await.unwrap();
    for _ in 0..2 {
        let reply = ask(&asker, "$SRV.STATS.fragile", "").await;
        let headers = reply.headers.as_ref().expect("error headers");
        assert_eq!(headers.get(ERROR_CODE_HEADER), Some("500"));
        assert_eq!(
            headers.get(ERROR_HEADER),
            Some("Error handling STATS request: the stats handler panicked")
        );
        assert_eq!(
            ask_json(&asker, "$SRV.PING.fragile").await["name"],
            "fragile"
        );
    }
}

#[tokio::test]
async fn ping_info_stats_answer_with_the_micro_v1_json() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(
        &client,
        ServiceConfig::new("process-control", "0.1.0-rc.1+build.5")
            .description("runs processes")
            .metadata("host", "h1")
            .metadata("zone", "a"),
    )
    .unwrap();
    let _list = svc.endpoint("list").unwrap();
    let _start = svc
        .endpoint_with(
            EndpointConfig::new("start")
                .subject("via.proc.start")
                .metadata("verb", "start"),
        )
        .unwrap();
    let leaf = svc.group("via.leaf").queue_group("leaves");
    let _add = leaf.endpoint("add").unwrap();
    let _all = leaf
        .group("admin")
        .endpoint_with(
            EndpointConfig::new("wipe")
                .subject("all.>")
                .no_queue_group(),
        )
        .unwrap();
    client.flush().await.unwrap();
    let id = svc.id().to_owned();
    assert_eq!(id.len(), 22);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");

    let identity = json!({
        "name": "process-control", "id": id, "version": "0.1.0-rc.1+build.5",
        "metadata": {"host": "h1", "zone": "a"},
    });
    let with = |extra: Value| {
        let mut v = identity.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let ping = with(json!({"type": "io.nats.micro.v1.ping_response"}));
    for subject in [
        "$SRV.PING",
        "$SRV.PING.process-control",
        &format!("$SRV.PING.process-control.{id}"),
    ] {
        assert_eq!(ask_json(&asker, subject).await, ping, "{subject}");
    }

    let info = with(json!({
        "type": "io.nats.micro.v1.info_response",
        "description": "runs processes",
        "endpoints": [
            {"name": "list", "subject": "list", "queue_group": "q", "metadata": {}},
            {"name": "start", "subject": "via.proc.start", "queue_group": "q", "metadata": {"verb": "start"}},
            {"name": "add", "subject": "via.leaf.add", "queue_group": "leaves", "metadata": {}},
            {"name": "wipe", "subject": "via.leaf.admin.all.>", "queue_group": "", "metadata": {}},
        ],
    }));
    for subject in [
        "$SRV.INFO",
        "$SRV.INFO.process-control",
        &format!("$SRV.INFO.process-control.{id}"),
    ] {
        assert_eq!(ask_json(&asker, subject).await, info, "{subject}");
    }
    assert_eq!(serde_json::to_value(svc.info()).unwrap(), info);

    for subject in [
        "$SRV.STATS",
        "$SRV.STATS.process-control",
        &format!("$SRV.STATS.process-control.{id}"),
    ] {
        let mut stats = ask_json(&asker, subject).await;
        assert_eq!(
            keys(&stats),
            [
                "endpoints",
                "id",
                "metadata",
                "name",
                "started",
                "type",
                "version"
            ],
            "{subject}"
        );
        let started = stats["started"].as_str().unwrap().to_owned();
        assert_rfc3339_now(&started);
        stats.as_object_mut().unwrap().remove("started");
        let zero = |name: &str, subject: &str, q: &str| {
            json!({"name": name, "subject": subject, "queue_group": q, "num_requests": 0,
                   "num_errors": 0, "last_error": "", "processing_time": 0,
                   "average_processing_time": 0})
        };
        let mut want = with(json!({
            "type": "io.nats.micro.v1.stats_response",
            "endpoints": [
                zero("list", "list", "q"),
                zero("start", "via.proc.start", "q"),
                zero("add", "via.leaf.add", "leaves"),
                zero("wipe", "via.leaf.admin.all.>", ""),
            ],
        }));
        want.as_object_mut().unwrap().remove("started");
        assert_eq!(stats, want, "{subject}");
    }

    // Metadata is an object even when there is none; another service does not answer for this one.
    let bare = service::add(
        &client,
        ServiceConfig::new("bare", "1.0.0").no_queue_group(),
    )
    .unwrap();
    let _e = bare.endpoint("e").unwrap();
    client.flush().await.unwrap();
    let got = ask_json(&asker, "$SRV.INFO.bare").await;
    assert_eq!(got["metadata"], json!({}));
    assert_eq!(got["description"], json!(""));
    assert_eq!(
        got["endpoints"],
        json!([{"name": "e", "subject": "e", "queue_group": "", "metadata": {}}])
    );
    let wrong_id = format!("$SRV.PING.bare.{id}");
    let err = asker
        .request_with(&wrong_id, None, b"", Duration::from_secs(STEP))
        .await
        .unwrap_err();
    assert_eq!(err, RequestError::NoResponders { subject: wrong_id });
    // Every instance answers the general PING.
    let everyone = service::ping(&asker, None, QUIET, MAX_WAIT).await.unwrap();
    let mut names: Vec<&str> = everyone.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["bare", "process-control"]);
}

#[tokio::test]
async fn requests_and_error_replies_are_counted_in_stats() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(
        &client,
        ServiceConfig::new("counter", "1.0.0").stats_handler(|e| json!({ "endpoint": e.name })),
    )
    .unwrap();
    let (done, mut handled) = mpsc::unbounded_channel();
    serve(svc.endpoint("work").unwrap(), "work", done.clone());
    serve(svc.group("other").endpoint("idle").unwrap(), "idle", done);
    client.flush().await.unwrap();

    for i in 0..3 {
        let reply = ask(&asker, "work", &format!("job {i}")).await;
        assert_eq!(reply.payload, format!("job {i}"));
        assert_eq!(reply.headers, None, "a plain answer carries no headers");
    }
    let reply = ask(&asker, "work", "fail").await;
    let headers = reply.headers.as_ref().expect("error headers");
    assert_eq!(headers.get(ERROR_HEADER), Some("no process named x"));
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("404"));
    assert_eq!(headers.get("Nats-Service-Error-Code"), Some("404"));
    assert_eq!(
        reply.payload,
        r#"{"error":"no process named x","code":404}"#
    );
    // Unanswered: the requester times out, the request still counts (as nats.go counts it).
    let err = asker
        .request_with("work", None, b"drop", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::TimedOut { .. }), "{err}");
    for _ in 0..5 {
        within(STEP, "the handler", handled.recv()).await.unwrap();
    }

    let stats = service::stats(&asker, Some("counter"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(s.id, svc.id());
    let work = &s.endpoints[0];
    assert_eq!(
        (work.name.as_str(), work.subject.as_str()),
        ("work", "work")
    );
    assert_eq!((work.num_requests, work.num_errors), (5, 1));
    assert_eq!(work.last_error, "404:no process named x");
    assert!(work.processing_time > Duration::ZERO);
    assert_eq!(work.average_processing_time, work.processing_time / 5);
    assert_eq!(work.data, Some(json!({"endpoint": "work"})));
    let idle = &s.endpoints[1];
    assert_eq!(
        (idle.subject.as_str(), idle.num_requests, idle.num_errors),
        ("other.idle", 0, 0)
    );
    assert_eq!(idle.last_error, "");
    assert_eq!(idle.processing_time, Duration::ZERO);
    // The same numbers locally.
    assert_eq!(svc.stats().endpoints[0].num_requests, 5);

    // A description with a line break cannot break the header block.
    let mut odd = svc.endpoint("odd").unwrap();
    client.flush().await.unwrap();
    let asking = tokio::spawn({
        let asker = asker.clone();
        async move { ask(&asker, "odd", "").await }
    });
    let request = within(STEP, "the odd request", odd.next()).await.unwrap();
    // An error reply without a description is refused, as nats.go refuses it (ErrArgRequired):
    // nothing is sent or counted, and the request can still be answered.
    assert_eq!(
        request.respond_error(500, "", b"body"),
        Err(RespondError::DescriptionRequired)
    );
    assert_eq!((odd.stats().num_requests, odd.stats().num_errors), (0, 0));
    request
        .respond_error(500, "line one\r\nPUB evil 4\r\nline", b"")
        .unwrap();
    let reply = asking.await.unwrap();
    let headers = reply.headers.unwrap();
    assert_eq!(
        headers.get(ERROR_HEADER),
        Some("line one  PUB evil 4  line")
    );
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("500"));
    drop(request);

    // Reset: counters to zero, `started` moves on.
    let before = svc.stats().started;
    svc.reset();
    let after = ask_json(&asker, &format!("$SRV.STATS.counter.{}", svc.id())).await;
    assert!(after["started"].as_str().unwrap() >= before.as_str());
    for e in after["endpoints"].as_array().unwrap() {
        assert_eq!(
            (
                &e["num_requests"],
                &e["num_errors"],
                &e["last_error"],
                &e["processing_time"]
            ),
            (&json!(0), &json!(0), &json!(""), &json!(0)),
            "{e}"
        );
    }
}

/// A handler that panics with the request in hand (its task dies, the process goes on): the
/// requester gets a 500 error at once, not its timeout, and STATS counts an error (nats.js answers
/// a handler that throws with a 500). Before, the drop counted a success and nothing answered.
#[tokio::test]
async fn a_handler_that_panics_answers_an_error_and_is_counted_as_one() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(&client, ServiceConfig::new("fragile", "1.0.0")).unwrap();
    let mut work = svc.endpoint("work").unwrap();
    client.flush().await.unwrap();
    let serving = tokio::spawn(async move {
        while let Some(request) = work.next().await {
            // One task per request, as a server would; this one panics holding the request.
            tokio::spawn(async move {
                let request = request;
                if request.text() == Some("boom") {
                    panic!("a bug in the handler");
                }
                request.respond("ok").unwrap();
            });
        }
    });
    let reply = within(
        STEP,
        "the answer to a request whose handler panicked",
        asker.request_with("work", None, b"boom", Duration::from_secs(STEP * 2)),
    )
    .await
    .expect("an answer, not a timeout");
    let headers = reply.headers.as_ref().expect("error headers");
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("500"));
    assert_eq!(headers.get(ERROR_HEADER), Some("the handler panicked"));
    assert_eq!(ask(&asker, "work", "fine").await.payload, "ok");
    let stats = svc.stats().endpoints[0].clone();
    assert_eq!((stats.num_requests, stats.num_errors), (2, 1));
    assert_eq!(stats.last_error, "500:the handler panicked");

    // An answer that could not be sent (over max_payload), then the error reply the handler
    // sends instead: counted once, and last_error is what the requester was told (as nats.go's
    // request.Error overwrites the error it records).
    let mut big = svc.endpoint("big").unwrap();
    client.flush().await.unwrap();
    let asking = tokio::spawn({
        let asker = asker.clone();
        async move { ask(&asker, "big", "").await }
    });
    let request = within(STEP, "the big request", big.next()).await.unwrap();
    let too_big = vec![b'x'; client.max_payload() + 1];
    assert!(request.respond(&too_big).is_err(), "sent over max_payload");
    request
        .respond_error(500, "the answer is too large", b"")
        .unwrap();
    let reply = asking.await.unwrap();
    assert_eq!(reply.headers.unwrap().get(ERROR_CODE_HEADER), Some("500"));
    let stats = big.stats();
    assert_eq!((stats.num_requests, stats.num_errors), (1, 1));
    assert_eq!(stats.last_error, "500:the answer is too large");
    serving.abort();
}

/// A serving loop that panics (the bug is in the loop, not in a task per request): the requester
/// gets its 500, and the instance stops rather than go on answering discovery without the
/// endpoint it lost (nats.go's process would have died with it). Before, PING still listed it,
/// INFO had no endpoint, and `stopped()` said false.
#[tokio::test]
async fn a_serving_loop_that_panics_stops_its_service() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(&client, ServiceConfig::new("brittle", "1.0.0")).unwrap();
    let mut work = svc.endpoint("work").unwrap();
    client.flush().await.unwrap();
    let serving = tokio::spawn(async move {
        while let Some(request) = work.next().await {
            if request.text() == Some("boom") {
                panic!("a bug in the serving loop");
            }
            request.respond("ok").unwrap();
        }
    });
    assert_eq!(ask(&asker, "work", "fine").await.payload, "ok");
    let reply = ask(&asker, "work", "boom").await;
    assert_eq!(
        reply
            .headers
            .as_ref()
            .and_then(|h| h.get(ERROR_CODE_HEADER)),
        Some("500")
    );
    assert!(serving.await.unwrap_err().is_panic());
    assert!(svc.stopped(), "the service says it stopped");
    // A stop after a stop in the background waits for its drains: then nothing answers for it.
    within(STEP, "the stop", svc.stop()).await;
    let err = asker
        .request_with("$SRV.PING.brittle", None, b"", Duration::from_secs(STEP))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");
}

#[tokio::test]
async fn instances_share_the_load_in_the_queue_group_and_each_gets_a_broadcast() {
    let server = TestServer::start();
    let (a_client, b_client, asker) = (
        connect(&server).await,
        connect(&server).await,
        connect(&server).await,
    );
    let a = service::add(&a_client, ServiceConfig::new("shared", "1.0.0")).unwrap();
    let b = service::add(&b_client, ServiceConfig::new("shared", "1.0.0")).unwrap();
    assert_ne!(a.id(), b.id());
    let (done, mut handled) = mpsc::unbounded_channel();
    serve(a.endpoint("work").unwrap(), "a", done.clone());
    serve(b.endpoint("work").unwrap(), "b", done.clone());
    let all = EndpointConfig::new("all").no_queue_group();
    serve(a.endpoint_with(all.clone()).unwrap(), "a-all", done.clone());
    serve(b.endpoint_with(all).unwrap(), "b-all", done);
    a_client.flush().await.unwrap();
    b_client.flush().await.unwrap();

    const N: usize = 60;
    for i in 0..N {
        ask(&asker, "work", &i.to_string()).await;
    }
    let mut per: HashMap<&str, usize> = HashMap::new();
    for _ in 0..N {
        let (tag, _) = within(STEP, "a handler", handled.recv()).await.unwrap();
        *per.entry(tag).or_default() += 1;
    }
    // Each request went to exactly one instance, and both took some (the server picks at
    // random: the chance that one of them gets none of 60 is 2^-59).
    assert_eq!(per.values().sum::<usize>(), N);
    assert!(per["a"] > 0 && per["b"] > 0, "{per:?}");
    let a_count = a.stats().endpoints[0].num_requests as usize;
    let b_count = b.stats().endpoints[0].num_requests as usize;
    assert_eq!((a_count, b_count), (per["a"], per["b"]));

    // Without a queue group both instances get the request (the requester sees the first answer).
    ask(&asker, "all", "x").await;
    let mut tags = vec![
        within(STEP, "a handler", handled.recv()).await.unwrap().0,
        within(STEP, "a handler", handled.recv()).await.unwrap().0,
    ];
    tags.sort_unstable();
    assert_eq!(tags, ["a-all", "b-all"]);
}

#[tokio::test]
async fn stop_unsubscribes_everything_and_ends_the_endpoints() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let svc = service::add(&client, ServiceConfig::new("stopping", "1.0.0")).unwrap();
    let mut ep = svc.endpoint("work").unwrap();
    let group = svc.group("g");
    client.flush().await.unwrap();
    // A request that arrived before stop is still handed out, and can be answered.
    let asking = tokio::spawn({
        let asker = asker.clone();
        async move { ask(&asker, "work", "early").await }
    });
    let early = within(STEP, "the early request", ep.next()).await.unwrap();
    assert!(!svc.stopped());
    within(STEP, "stop", svc.stop()).await;
    assert!(svc.stopped());
    early.respond("late answer").unwrap();
    assert_eq!(asking.await.unwrap().payload, "late answer");
    assert!(within(STEP, "the endpoint to end", ep.next())
        .await
        .is_none());
    for subject in [
        "work",
        "$SRV.PING",
        "$SRV.PING.stopping",
        "$SRV.INFO",
        "$SRV.STATS.stopping",
    ] {
        let err = asker
            .request_with(subject, None, b"", Duration::from_secs(STEP))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::NoResponders { .. }),
            "{subject}: {err}"
        );
    }
    assert_eq!(svc.endpoint("more").unwrap_err(), ServiceError::Stopped);
    assert_eq!(group.endpoint("more").unwrap_err(), ServiceError::Stopped);
    within(STEP, "a second stop", svc.stop()).await;

    // Dropping a service stops it too; dropping an endpoint unsubscribes it and drops it from INFO.
    let svc = service::add(&client, ServiceConfig::new("dropped", "1.0.0")).unwrap();
    let kept = svc.endpoint("kept").unwrap();
    let gone = svc.endpoint("gone").unwrap();
    drop(gone);
    client.flush().await.unwrap();
    let info = ask_json(&asker, "$SRV.INFO.dropped").await;
    assert_eq!(
        info["endpoints"],
        json!([{"name": "kept", "subject": "kept", "queue_group": "q", "metadata": {}}])
    );
    let err = asker
        .request_with("gone", None, b"", Duration::from_secs(STEP))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");
    drop(svc);
    client.flush().await.unwrap();
    for subject in ["kept", "$SRV.PING.dropped"] {
        let err = asker
            .request_with(subject, None, b"", Duration::from_secs(STEP))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::NoResponders { .. }),
            "{subject}: {err}"
        );
    }
    drop(kept);
}

/// Publishes `n` requests to `subject` with replies to `replies.<i>`, without waiting.
fn publish_requests(client: &Client, subject: &str, n: usize) {
    for i in 0..n {
        client
            .publish_message(
                subject,
                Some(&format!("replies.{i}")),
                None,
                i.to_string().as_bytes(),
            )
            .unwrap();
    }
}

/// The replies to [`publish_requests`] that arrive within a step of quiet, by request.
async fn collect_replies(replies: &mut nats_ws::Subscriber, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(STEP), replies.next()).await {
            Ok(Some(Ok(m))) => got.push(m.text().unwrap().to_owned()),
            _ => break,
        }
    }
    got.sort_unstable_by_key(|r| r.parse::<usize>().unwrap());
    got
}

#[tokio::test]
async fn stop_answers_the_requests_already_on_their_way() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let asker = connect(&server).await;
    let mut replies = asker.subscribe("replies.>").unwrap();
    asker.flush().await.unwrap();
    let svc = service::add(&client, ServiceConfig::new("draining", "1.0.0")).unwrap();
    let (done, _handled) = mpsc::unbounded_channel();
    let serving = serve(svc.endpoint("work").unwrap(), "work", done);
    client.flush().await.unwrap();
    let all: Vec<String> = (0..50).map(|i| i.to_string()).collect();

    // From another connection: processed by the server (so routed to the endpoint) before the
    // stop, most of them still on their way.
    publish_requests(&asker, "work", 50);
    asker.flush().await.unwrap();
    within(STEP, "stop", svc.stop()).await;
    assert_eq!(collect_replies(&mut replies, 50).await, all);
    within(STEP, "the endpoint to end", serving).await.unwrap();
    let err = asker
        .request_with("work", None, b"", Duration::from_secs(STEP))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");

    // From the service's own connection, just before the stop: none has come back yet, and
    // every one is answered.
    let svc = service::add(&client, ServiceConfig::new("draining", "1.0.0")).unwrap();
    let (done, _handled) = mpsc::unbounded_channel();
    let serving = serve(svc.endpoint("work").unwrap(), "work", done);
    client.flush().await.unwrap();
    publish_requests(&client, "work", 50);
    within(STEP, "stop", svc.stop()).await;
    assert_eq!(collect_replies(&mut replies, 50).await, all);
    within(STEP, "the endpoint to end", serving).await.unwrap();
    let err = asker
        .request_with("work", None, b"", Duration::from_secs(STEP))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::NoResponders { .. }), "{err}");
}

/// `svc` may not subscribe to `forbidden`; `asker` may do anything.
const GUARDED_USERS: &str = r#"
authorization {
  users = [
    { user: "svc", password: "svc-pw",
      permissions: { subscribe: { allow: [">"], deny: ["forbidden"] } } }
    { user: "asker", password: "asker-pw" }
  ]
}
"#;

#[tokio::test]
async fn an_endpoint_the_server_refuses_records_the_error_and_stops_the_service() {
    let server = TestServer::start_with(GUARDED_USERS);
    let login =
        |user: &str| nats_ws::Options::new(server.url()).user_password(user, format!("{user}-pw"));
    let client = within(STEP, "svc connects", nats_ws::connect(login("svc")))
        .await
        .unwrap();
    let asker = within(STEP, "asker connects", nats_ws::connect(login("asker")))
        .await
        .unwrap();
    let svc = service::add(&client, ServiceConfig::new("guarded", "1.0.0")).unwrap();
    let (done, _handled) = mpsc::unbounded_channel();
    let serving = serve(svc.endpoint("allowed").unwrap(), "allowed", done);
    let mut refused = svc.endpoint("forbidden").unwrap();
    client.flush().await.unwrap();
    assert_eq!(ask(&asker, "allowed", "x").await.payload, "x");

    assert!(within(STEP, "the refused endpoint to end", refused.next())
        .await
        .is_none());
    let stats = refused.stats();
    assert_eq!(stats.num_errors, 1);
    assert_eq!(
        stats.last_error,
        r#"nats: permissions violation: Permissions Violation for Subscription to "forbidden" using queue "q""#
    );
    // The whole service stops (drains): the other endpoint ends, nothing answers any more.
    assert!(svc.stopped());
    within(STEP, "the other endpoint to end", serving)
        .await
        .unwrap();
    for subject in ["allowed", "$SRV.PING.guarded"] {
        let err = asker
            .request_with(subject, None, b"", Duration::from_secs(STEP))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::NoResponders { .. }),
            "{subject}: {err}"
        );
    }
    assert_eq!(svc.endpoint("more").unwrap_err(), ServiceError::Stopped);
}

#[tokio::test]
async fn a_closed_client_stops_the_service_and_says_so() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let svc = service::add(&client, ServiceConfig::new("closing", "1.0.0")).unwrap();
    let mut ep = svc.endpoint("work").unwrap();
    assert!(!svc.stopped());
    client.close();
    // Said before anything reads the endpoint.
    assert!(svc.stopped());
    assert!(within(STEP, "the endpoint to end", ep.next())
        .await
        .is_none());
    assert_eq!(ep.stats().last_error, "nats: connection closed");
    assert!(svc.stopped());
    within(STEP, "stop", svc.stop()).await;
}

#[tokio::test]
async fn slow_consumer_drops_show_in_last_error_and_the_service_goes_on() {
    let server = TestServer::start();
    let client = within(
        STEP,
        "connect",
        nats_ws::connect(nats_ws::Options::new(server.url()).pending_limits(10, 1 << 20)),
    )
    .await
    .unwrap();
    let asker = connect(&server).await;
    let svc = service::add(&client, ServiceConfig::new("slow", "1.0.0")).unwrap();
    let mut ep = svc.endpoint("work").unwrap();
    client.flush().await.unwrap();
    publish_requests(&asker, "work", 50);
    asker.flush().await.unwrap();
    client.flush().await.unwrap();
    // Told by STATS before anything reads the endpoint.
    let stats = ask_json(&asker, "$SRV.STATS.slow").await;
    assert_eq!(
        stats["endpoints"][0]["last_error"],
        "nats: slow consumer, messages dropped"
    );
    assert_eq!(stats["endpoints"][0]["num_errors"], 1);
    let first = within(STEP, "a request", ep.next()).await.unwrap();
    first.respond("ok").unwrap();
    let stats = ep.stats();
    assert_eq!(stats.last_error, "nats: slow consumer, messages dropped");
    assert_eq!((stats.num_requests, stats.num_errors), (1, 1));
    // Counted once for those drops, not again while no more are dropped.
    for _ in 0..9 {
        within(STEP, "a request", ep.next()).await.unwrap();
    }
    assert_eq!(ep.stats().num_errors, 1);
    assert!(!svc.stopped());
    let stats = ask_json(&asker, "$SRV.STATS.slow").await;
    assert_eq!(
        stats["endpoints"][0]["last_error"],
        "nats: slow consumer, messages dropped"
    );
}

#[tokio::test]
async fn discovery_collects_every_instance() {
    let server = TestServer::start();
    let (c1, c2, asker) = (
        connect(&server).await,
        connect(&server).await,
        connect(&server).await,
    );
    let one = service::add(&c1, ServiceConfig::new("disc", "1.0.0").metadata("n", "1")).unwrap();
    let two = service::add(&c2, ServiceConfig::new("disc", "1.0.1").metadata("n", "2")).unwrap();
    let other = service::add(&c1, ServiceConfig::new("other", "3.0.0")).unwrap();
    let _e1 = one.endpoint("e").unwrap();
    let _e2 = two.endpoint("e").unwrap();
    c1.flush().await.unwrap();
    c2.flush().await.unwrap();

    let sorted_ids = |mut ids: Vec<String>| {
        ids.sort_unstable();
        ids
    };
    let want = sorted_ids(vec![one.id().to_owned(), two.id().to_owned()]);
    let pings = service::ping(&asker, Some("disc"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(pings.iter().map(|p| p.id.clone()).collect()),
        want
    );
    // No limit on the whole wait (`Duration::MAX`): the same answers once it is quiet, no panic.
    let unbounded = service::ping(&asker, Some("disc"), QUIET, Duration::MAX)
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(unbounded.iter().map(|p| p.id.clone()).collect()),
        want
    );
    for p in &pings {
        let expected = if p.id == one.id() {
            one.ping()
        } else {
            two.ping()
        };
        assert_eq!(p, &expected);
    }
    let infos = service::info(&asker, Some("disc"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(infos.iter().map(|p| p.id.clone()).collect()),
        want
    );
    assert!(infos
        .iter()
        .all(|i| i.endpoints.len() == 1 && i.endpoints[0].subject == "e"));
    let stats = service::stats(&asker, Some("disc"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(stats.iter().map(|p| p.id.clone()).collect()),
        want
    );
    let everyone = service::ping(&asker, None, QUIET, MAX_WAIT).await.unwrap();
    assert_eq!(everyone.len(), 3);
    let just_two: Vec<service::InfoResponse> = service::discover(
        &asker,
        Verb::Info,
        Some("disc"),
        Some(two.id()),
        QUIET,
        MAX_WAIT,
    )
    .await
    .unwrap();
    assert_eq!(just_two, vec![two.info()]);
    assert_eq!(
        service::discover::<Value>(&asker, Verb::Ping, None, Some("x"), QUIET, MAX_WAIT)
            .await
            .unwrap_err(),
        ServiceError::IdWithoutName
    );

    // Nobody there: the server says so at once (no responders), long before the quiet period.
    let started = std::time::Instant::now();
    let none = service::ping(&asker, Some("nobody"), Duration::from_secs(3), MAX_WAIT)
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(other);
}

#[tokio::test]
async fn discovery_waits_for_a_first_answer_slower_than_the_quiet_period() {
    let server = TestServer::start();
    let (responder, asker) = (connect(&server).await, connect(&server).await);
    // A service that answers after more than a quiet period (a slow link, a busy process): as
    // natscli and nats.js, discovery waits up to its limit for a first answer, then a quiet
    // period more.
    let mut pings = responder.subscribe("$SRV.PING.slow").unwrap();
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(Ok(m)) = pings.next().await {
            tokio::time::sleep(QUIET * 2).await;
            let answer = json!({"type": "io.nats.micro.v1.ping_response", "name": "slow",
                "id": "s1", "version": "1.0.0", "metadata": {}});
            let reply = m.reply.clone().unwrap();
            responder.publish(&reply, answer.to_string()).unwrap();
        }
    });
    let started = std::time::Instant::now();
    let found = service::ping(&asker, Some("slow"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "after {:?}", started.elapsed());
    assert_eq!(found[0].id, "s1");
    assert!(started.elapsed() < MAX_WAIT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn invalid_configs_are_refused_with_what_to_fix() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let err = service::add(&client, ServiceConfig::new("a.b", "1.0.0")).unwrap_err();
    assert_eq!(
        err,
        ServiceError::InvalidName {
            what: "service",
            name: "a.b".into()
        }
    );
    assert!(err.to_string().contains("letters, digits"), "{err}");
    let err = service::add(&client, ServiceConfig::new("ok", "1.0")).unwrap_err();
    assert_eq!(err, ServiceError::InvalidVersion("1.0".into()));
    assert!(err.to_string().contains("1.2.3"), "{err}");
    let err = service::add(
        &client,
        ServiceConfig::new("ok", "1.0.0").queue_group("a b"),
    )
    .unwrap_err();
    assert!(matches!(err, ServiceError::InvalidQueueGroup(_)), "{err}");
    let svc = service::add(&client, ServiceConfig::new("ok", "1.0.0")).unwrap();
    assert!(matches!(
        svc.endpoint("a b").unwrap_err(),
        ServiceError::InvalidName {
            what: "endpoint",
            ..
        }
    ));
    let err = svc
        .endpoint_with(EndpointConfig::new("e").subject("a..b"))
        .unwrap_err();
    assert!(matches!(err, ServiceError::InvalidSubject(_)), "{err}");
    let err = svc.group("x.>").endpoint("e").unwrap_err();
    assert!(matches!(err, ServiceError::InvalidSubject(_)), "{err}");
    let err = svc
        .endpoint_with(EndpointConfig::new("e").queue_group(""))
        .unwrap_err();
    assert!(matches!(err, ServiceError::InvalidQueueGroup(_)), "{err}");
    assert!(
        svc.info().endpoints.is_empty(),
        "a refused endpoint is not listed"
    );
}

/// An endpoint the server refuses stops the service in the background (the drains start); a
/// `stop()` called then still waits until the server has processed them, as it promises.
#[tokio::test]
async fn a_stop_after_a_stop_in_the_background_waits_for_its_drains() {
    let (_server, relay, svc, serving) = stopped_in_the_background().await;
    // The drains wait for the server: so does stop().
    let stop = svc.stop();
    tokio::pin!(stop);
    assert!(
        still_waiting(&mut stop).await,
        "stop() returned before the server processed the drains"
    );
    relay.release();
    within(STEP, "stop once the server answered", stop).await;
    within(STEP, "the other endpoint to end", serving)
        .await
        .unwrap();
}

/// Dropped after a stop, a service leaves the drains under way to end (requests still on the
/// wire are handed out): it does not cut them.
#[tokio::test]
async fn a_service_dropped_after_a_stop_leaves_its_drains_to_end() {
    let (_server, relay, svc, serving) = stopped_in_the_background().await;
    drop(svc);
    tokio::pin!(serving);
    assert!(
        still_waiting(&mut serving).await,
        "the other endpoint ended before the server processed its drain"
    );
    relay.release();
    within(STEP, "the other endpoint to end", serving)
        .await
        .unwrap();
}

/// Whether `work` is still not done half a second on (what a held answer keeps it from).
async fn still_waiting<F: std::future::Future + Unpin>(work: &mut F) -> bool {
    tokio::time::timeout(Duration::from_millis(500), work)
        .await
        .is_err()
}

/// A service whose connection goes through a relay that holds the server's answers once the
/// drains' UNSUBs are out (the server's PONG to them waits until released), stopped in the
/// background by an endpoint the server refuses; the task serving its other endpoint.
async fn stopped_in_the_background() -> (
    TestServer,
    test_support::LateAnswers,
    service::Service,
    tokio::task::JoinHandle<()>,
) {
    let server = TestServer::start_with(GUARDED_USERS);
    let upstream = server.client_url().replace("nats://", "");
    let relay = test_support::LateAnswers::start(&upstream).await;
    let options = nats_ws::Options::new(relay.url()).user_password("svc", "svc-pw");
    let client = within(STEP, "svc connects", nats_ws::connect(options))
        .await
        .unwrap();
    let svc = service::add(&client, ServiceConfig::new("guarded", "1.0.0")).unwrap();
    let (done, _handled) = mpsc::unbounded_channel();
    let serving = serve(svc.endpoint("allowed").unwrap(), "allowed", done);
    client.flush().await.unwrap();
    relay.hold_after("UNSUB");
    let mut refused = svc.endpoint("forbidden").unwrap();
    assert!(within(STEP, "the refused endpoint to end", refused.next())
        .await
        .is_none());
    assert!(svc.stopped(), "stopped in the background");
    (server, relay, svc, serving)
}

#[tokio::test]
async fn a_service_answers_again_after_the_server_restarts() {
    let mut server = TestServer::start();
    let client = connect_quick_reconnect(&server).await;
    let asker = connect_quick_reconnect(&server).await;
    let svc = service::add(&client, ServiceConfig::new("phoenix", "1.0.0")).unwrap();
    let (done, _handled) = mpsc::unbounded_channel();
    serve(svc.endpoint("echo").unwrap(), "echo", done);
    client.flush().await.unwrap();
    assert_eq!(ask(&asker, "echo", "before").await.payload, "before");

    server.stop();
    wait_status(&client, "the service's client to notice", |s| {
        !s.is_connected()
    })
    .await;
    server.start_again();
    wait_status(&client, "the service's client to reconnect", |s| {
        matches!(s, Status::Connected { .. })
    })
    .await;
    wait_status(&asker, "the asker to reconnect", |s| {
        matches!(s, Status::Connected { .. })
    })
    .await;
    // The resubscriptions went out before anything sent after reconnecting.
    client.flush().await.unwrap();
    assert_eq!(ask(&asker, "echo", "after").await.payload, "after");
    let pings = service::ping(&asker, Some("phoenix"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(pings, vec![svc.ping()]);
}

#[tokio::test]
async fn a_discovery_whose_connection_is_lost_is_an_error_not_an_empty_list() {
    let mut server = TestServer::start();
    let client = connect_quick_reconnect(&server).await;
    // Something listens on $SRV.INFO without answering (so the server says no "no responders"),
    // as a service does whose answer is on its way.
    let listener = connect(&server).await;
    let _silent = listener.subscribe("$SRV.INFO").unwrap();
    listener.flush().await.unwrap();

    let asking = tokio::spawn({
        let client = client.clone();
        async move { service::info(&client, None, QUIET, MAX_WAIT).await }
    });
    client.flush().await.unwrap();
    server.stop();
    let result = within(STEP, "the discovery to end", asking).await.unwrap();
    assert_eq!(result, Err(ServiceError::ConnectionLost));

    // Asked while disconnected: said at once, not "no service" once the wait is over.
    wait_status(&client, "the client to notice", |s| !s.is_connected()).await;
    let result = within(
        1,
        "the discovery to end",
        service::info(&client, None, QUIET, MAX_WAIT),
    )
    .await;
    assert_eq!(result, Err(ServiceError::NotConnected));
}

#[tokio::test]
async fn a_discovery_the_server_refuses_says_so() {
    let server = TestServer::start_with(
        r#"
authorization {
  users = [
    { user: "asker", password: "asker-pw", permissions: { publish: { deny: ["$SRV.>"] } } }
  ]
}
"#,
    );
    let options = nats_ws::Options::new(server.url()).user_password("asker", "asker-pw");
    let client = within(STEP, "connect", nats_ws::connect(options))
        .await
        .unwrap();
    let result = within(
        STEP,
        "the discovery to end",
        service::ping(&client, None, QUIET, MAX_WAIT),
    )
    .await;
    assert_eq!(
        result,
        Err(ServiceError::PermissionDenied {
            subject: "$SRV.PING".to_owned()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// nats.js `@nats-io/services`
// ---------------------------------------------------------------------------------------------

/// A peer from another client library: `node tests/service_peer.mjs <args>` or `python3
/// tests/service_peer.py <args>`, killed when dropped.
struct Peer {
    child: tokio::process::Child,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Peer {
    fn start(program: &str, script: &str, args: &[&str]) -> Peer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(script);
        let mut child = tokio::process::Command::new(program)
            .arg(&script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program} (scripts/setup.sh installs it): {e}"));
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Peer { child, stdout }
    }

    fn js(args: &[&str]) -> Peer {
        Peer::start("node", "service_peer.mjs", args)
    }

    fn py(args: &[&str]) -> Peer {
        Peer::start("python3", "service_peer.py", args)
    }

    async fn json(&mut self) -> Value {
        let line = within(STEP * 3, "the peer's output", self.stdout.next_line())
            .await
            .expect("peer stdout")
            .expect("the peer exited without output (see its stderr above)");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer printed {line:?}: {e}"))
    }

    async fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = within(STEP, "the peer to exit", self.child.wait())
            .await
            .unwrap();
        assert!(status.success(), "peer: {status}");
    }
}

#[tokio::test]
async fn nats_js_discovers_and_calls_our_service() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let svc = service::add(
        &client,
        ServiceConfig::new("rs-svc", "1.2.3")
            .description("ours")
            .metadata("lang", "rust"),
    )
    .unwrap();
    let group = svc.group("rs-svc");
    let (done, _handled) = mpsc::unbounded_channel();
    serve(
        group
            .endpoint_with(EndpointConfig::new("echo").metadata("kind", "echo"))
            .unwrap(),
        "echo",
        done.clone(),
    );
    // nats.js calls `fail` with an empty payload: answer it with an error.
    let mut fail = group.endpoint("fail").unwrap();
    tokio::spawn(async move {
        while let Some(request) = fail.next().await {
            request.respond_error(418, "i am a teapot", "tea").unwrap();
        }
    });
    client.flush().await.unwrap();

    let mut peer = Peer::js(&["discover", &server.client_url(), "rs-svc", "1"]);
    let got = peer.json().await;
    peer.finish().await;

    assert_eq!(
        got["ping"],
        json!([serde_json::to_value(svc.ping()).unwrap()])
    );
    assert_eq!(
        got["info"],
        json!([serde_json::to_value(svc.info()).unwrap()])
    );
    assert_eq!(got["echo"], json!("hello from nats.js"));
    assert_eq!(
        got["fail"],
        json!({"is_service_error": true, "code": 418, "message": "i am a teapot", "body": "tea"})
    );
    let stats = &got["stats"][0];
    assert_eq!(stats["id"], json!(svc.id()));
    assert_eq!(stats["type"], json!("io.nats.micro.v1.stats_response"));
    let e = &stats["endpoints"];
    assert_eq!(
        (&e[0]["name"], &e[0]["num_requests"], &e[0]["num_errors"]),
        (&json!("echo"), &json!(1), &json!(0))
    );
    assert_eq!(
        (&e[1]["name"], &e[1]["num_requests"], &e[1]["num_errors"]),
        (&json!("fail"), &json!(1), &json!(1))
    );
    assert_eq!(e[1]["last_error"], json!("418:i am a teapot"));
}

#[tokio::test]
async fn we_discover_and_call_a_nats_js_service() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut peer = Peer::js(&["serve", &server.client_url()]);
    let id = peer.json().await["id"]
        .as_str()
        .expect("the peer's id")
        .to_owned();

    let pings = service::ping(&client, None, QUIET, MAX_WAIT).await.unwrap();
    assert_eq!(pings.len(), 1);
    let p = &pings[0];
    assert_eq!(
        (p.name.as_str(), p.id.as_str(), p.version.as_str()),
        ("js-peer", id.as_str(), "2.1.0")
    );
    assert_eq!(p.kind, service::PING_RESPONSE_TYPE);
    assert_eq!(p.metadata.get("lang").map(String::as_str), Some("js"));

    let infos = service::info(&client, Some("js-peer"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(info.description, "nats.js peer");
    let endpoints: Vec<(&str, &str, &str)> = info
        .endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.subject.as_str(), e.queue_group.as_str()))
        .collect();
    assert_eq!(
        endpoints,
        [("echo", "js.echo", "q"), ("fail", "js.fail", "q")]
    );
    assert_eq!(
        info.endpoints[0].metadata.get("kind").map(String::as_str),
        Some("echo")
    );
    assert!(info.endpoints[1].metadata.is_empty());

    assert_eq!(
        ask(&client, "js.echo", "from rust").await.payload,
        "from rust"
    );
    let failed = ask(&client, "js.fail", "").await;
    let headers = failed.headers.expect("error headers");
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("418"));
    assert_eq!(headers.get(ERROR_HEADER), Some("i am a teapot"));
    assert_eq!(failed.payload, "tea");

    let stats: Vec<service::StatsResponse> = service::discover(
        &client,
        Verb::Stats,
        Some("js-peer"),
        Some(&id),
        QUIET,
        MAX_WAIT,
    )
    .await
    .unwrap();
    assert_eq!(stats.len(), 1);
    let e = &stats[0].endpoints;
    assert_eq!((e[0].name.as_str(), e[0].num_requests), ("echo", 1));
    // nats.js counts an error only when a handler throws; respondError is not counted.
    assert_eq!(
        (e[1].name.as_str(), e[1].num_requests, e[1].num_errors),
        ("fail", 1, 0)
    );
    assert!(!stats[0].started.is_empty());
    peer.finish().await;
}

// ---------------------------------------------------------------------------------------------
// nats-py `nats.micro`
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn nats_py_reads_our_answers_with_its_own_types() {
    let server = TestServer::start();
    let client = connect(&server).await;
    // nats-py's EndpointStats.from_dict requires a `data` key, which nats.go, nats.js and we omit
    // when there is no stats handler: with one, STATS carries it.
    let svc = service::add(
        &client,
        ServiceConfig::new("rs-svc", "1.2.3")
            .description("ours")
            .metadata("lang", "rust")
            .stats_handler(|_| json!({"ok": true})),
    )
    .unwrap();
    let _echo = svc
        .endpoint_with(EndpointConfig::new("echo").metadata("kind", "echo"))
        .unwrap();
    client.flush().await.unwrap();

    let mut peer = Peer::py(&["read", &server.client_url(), "rs-svc"]);
    let got = peer.json().await;
    peer.finish().await;
    assert_eq!(got["PING"], serde_json::to_value(svc.ping()).unwrap());
    assert_eq!(got["INFO"], serde_json::to_value(svc.info()).unwrap());
    let mut ours = serde_json::to_value(svc.stats()).unwrap();
    // nats-py reads `started` (microseconds) and writes it back with milliseconds.
    let started = ours["started"].as_str().unwrap().to_owned();
    ours["started"] = json!(format!("{}Z", &started[..23]));
    assert_eq!(got["STATS"], ours);
}

#[tokio::test]
async fn we_discover_and_call_a_nats_py_service() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let mut peer = Peer::py(&["serve", &server.client_url()]);
    let id = peer.json().await["id"]
        .as_str()
        .expect("the peer's id")
        .to_owned();

    let infos = service::info(&client, None, QUIET, MAX_WAIT).await.unwrap();
    assert_eq!(infos.len(), 1);
    let info = &infos[0];
    assert_eq!(
        (info.name.as_str(), info.id.as_str(), info.version.as_str()),
        ("py-peer", id.as_str(), "3.0.0")
    );
    assert_eq!(info.description, "nats-py peer");
    assert_eq!(info.metadata.get("lang").map(String::as_str), Some("py"));
    let endpoints: Vec<(&str, &str, &str)> = info
        .endpoints
        .iter()
        .map(|e| (e.name.as_str(), e.subject.as_str(), e.queue_group.as_str()))
        .collect();
    assert_eq!(
        endpoints,
        [("upper", "py.upper", "q"), ("fail", "py.fail", "q")]
    );

    assert_eq!(ask(&client, "py.upper", "shout").await.payload, "SHOUT");
    let failed = ask(&client, "py.fail", "").await;
    let headers = failed.headers.expect("error headers");
    assert_eq!(headers.get(ERROR_CODE_HEADER), Some("503"));
    assert_eq!(headers.get(ERROR_HEADER), Some("py is busy"));
    assert_eq!(failed.payload, "later");

    let stats = service::stats(&client, Some("py-peer"), QUIET, MAX_WAIT)
        .await
        .unwrap();
    assert_eq!(stats.len(), 1);
    let e = &stats[0].endpoints;
    assert_eq!(
        (e[0].name.as_str(), e[0].num_requests, e[0].num_errors),
        ("upper", 1, 0)
    );
    // Like nats.js, nats-py counts an error only when a handler raises; respond_error is not one
    // (nats.go and we count it).
    assert_eq!(
        (e[1].name.as_str(), e[1].num_requests, e[1].num_errors),
        ("fail", 1, 0)
    );
    assert_eq!(e[1].last_error, "");
    peer.finish().await;
}
