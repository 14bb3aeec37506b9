//! The agent binary against a real nats-server: process control, restarts with backoff, logs,
//! errors, the registry (including kill -9 of a service and of the agent), leaf nodes, a hub
//! restart and a clean SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use via_agent::supervisor::STOP_GRACE;

const SLEEPERS: &str = r#"
[[process]]
name = "sleeper"
command = "sleep"
args = ["300"]
autostart = false
restart = "never"

[[process]]
name = "locked"
command = "sleep"
args = ["300"]
control = false

[[process]]
name = "svc"
command = "sleep"
args = ["300"]
restart = "never"
service = ["service:test/svc", "depends:nats"]
"#;

fn process<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list}"))
}

#[tokio::test]
async fn start_stop_restart_and_refusals() {
    let server = start_hub();
    let _agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    let list = ready(&client).await;
    assert_eq!(process(&list, "sleeper")["state"], "stopped");
    assert_eq!(process(&list, "sleeper")["controllable"], true);
    assert_eq!(process(&list, "locked")["controllable"], false);

    let started = call(&client, "via.proc.start", r#"{"name":"sleeper"}"#)
        .await
        .unwrap();
    let p = &started["process"];
    assert_eq!(p["state"], "running");
    assert_eq!(p["command"], "sleep");
    assert_eq!(p["args"], json!(["300"]));
    assert_eq!(p["kind"], "process");
    let pid = p["pid"].as_u64().expect("pid");
    assert!(alive(pid));
    // Starting a running process answers its state, not an error.
    let again = call(&client, "via.proc.start", r#"{"name":"sleeper"}"#)
        .await
        .unwrap();
    assert_eq!(again["process"]["pid"], pid);

    let restarted = call(&client, "via.proc.restart", r#"{"name":"sleeper"}"#)
        .await
        .unwrap();
    let new_pid = restarted["process"]["pid"].as_u64().expect("pid");
    assert_ne!(new_pid, pid);
    assert_eq!(restarted["process"]["restarts"], 1);
    assert!(!alive(pid));

    let stopped = call(&client, "via.proc.stop", r#"{"name":"sleeper"}"#)
        .await
        .unwrap();
    assert_eq!(stopped["process"]["state"], "stopped");
    assert_eq!(stopped["process"]["pid"], Value::Null);
    assert_eq!(stopped["process"]["signal"], 15);
    assert!(!alive(new_pid));
    let again = call(&client, "via.proc.stop", r#"{"name":"sleeper"}"#)
        .await
        .unwrap();
    assert_eq!(again["process"]["state"], "stopped");

    // The KV state follows.
    kv_wait(&client, "processes", "sleeper", 5, |v| {
        v.is_some_and(|v| v["state"] == "stopped" && v["restarts"] == 1)
    })
    .await;

    let refusals = [
        ("via.proc.start", r#"{"name":"nope"}"#, 404),
        ("via.proc.stop", r#"{"name":"nope"}"#, 404),
        ("via.proc.logs", r#"{"name":"nope"}"#, 404),
        ("via.proc.start", r#"{"name":"#, 400),
        ("via.proc.start", r#"{}"#, 400),
        ("via.proc.start", r#"["sleeper"]"#, 400),
        ("via.proc.start", r#"{"name":"sleep 1; rm -rf /"}"#, 400),
        ("via.proc.logs", r#"{"name":"sleeper","lines":-3}"#, 400),
        ("via.proc.stop", r#"{"name":"locked"}"#, 403),
        ("via.proc.restart", r#"{"name":"locked"}"#, 403),
        ("via.leaf.remove", r#"{"name":"sleeper"}"#, 404),
        ("via.leaf.remove", r#"{"name":"Leaf!"}"#, 400),
        ("via.leaf.add", r#"{"name":"../etc"}"#, 400),
        ("via.leaf.add", r#"{"name":"svc"}"#, 409),
    ];
    for (subject, body, code) in refusals {
        let (got, _) = call(&client, subject, body).await.expect_err(body);
        assert_eq!(got, code, "{subject} {body}");
    }
    // Still serving, and the locked process untouched.
    let list = call(&client, "via.proc.list", "").await.unwrap();
    assert_eq!(process(&list, "locked")["state"], "running");
}

#[tokio::test]
async fn a_burst_of_restarts_is_one_restart_and_beyond_the_limit_refused() {
    let server = start_hub();
    // Stopping it takes the whole 5 s grace: its group ignores SIGTERM.
    let processes = r#"
[[process]]
name = "stubborn"
command = "sh"
args = ["-c", "trap '' TERM; echo trapped; sleep 300"]
restart = "never"
"#;
    let _agent = Agent::start(&server, "", processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    // A SIGTERM before the trap is set would end it at once.
    until(10, "the trap to be set", || async {
        let logs = call(&client, "via.proc.logs", r#"{"name":"stubborn"}"#)
            .await
            .unwrap();
        (logs["lines"][0]["line"] == "trapped").then_some(())
    })
    .await;
    let t = Instant::now();
    let answers = futures::future::join_all(
        (0..40)
            .map(|_| call_with_timeout(&client, "via.proc.restart", r#"{"name":"stubborn"}"#, 20)),
    )
    .await;
    eprintln!(
        "40 restarts at once answered after {} ms",
        t.elapsed().as_millis()
    );
    let (done, refused): (Vec<_>, Vec<_>) = answers.into_iter().partition(Result::is_ok);
    // 32 handled at once (one restart, the others joined to it), the rest refused.
    assert_eq!((done.len(), refused.len()), (32, 8));
    for r in &refused {
        let (code, body) = r.as_ref().unwrap_err();
        assert_eq!(*code, 429);
        assert!(body["error"].as_str().unwrap().contains("busy"), "{body}");
    }
    let pids: Vec<&Value> = done
        .iter()
        .map(|r| &r.as_ref().unwrap()["process"])
        .inspect(|p| assert_eq!(p["restarts"], 1))
        .map(|p| &p["pid"])
        .collect();
    assert!(pids.iter().all(|p| *p == pids[0] && p.is_u64()));
    assert!(t.elapsed() < Duration::from_secs(9));
}

#[tokio::test]
async fn a_crash_is_restarted_with_backoff_and_its_output_kept() {
    let server = start_hub();
    let processes = r#"
[[process]]
name = "crasher"
command = "sh"
args = ["-c", "echo hi; echo oops >&2; exit 3"]
restart = "on-failure"
backoff_initial_ms = 200
backoff_max_ms = 800
autostart = false
"#;
    let client = connect(server.client_url()).await;
    let mut live = client.subscribe("proc.logs.crasher").unwrap();
    let _agent = Agent::start(&server, "", processes);
    ready(&client).await;

    // Every state the KV shows, until the fourth backoff.
    let store = within(10, "bucket processes", async {
        loop {
            if let Ok(s) = client.jetstream().key_value("processes").await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut watch = store.watch("crasher").unwrap();
    // Started once the watch sees every state from the first: a backoff lasts only 200 ms.
    within(10, "the watch's current values", async {
        while !matches!(
            watch.next().await.unwrap().unwrap(),
            nats_ws::kv::WatchEvent::InitialDone
        ) {}
    })
    .await;
    call(&client, "via.proc.start", r#"{"name":"crasher"}"#)
        .await
        .unwrap();
    // By restarts so far. The agent writes a process's state as it is when its turn comes, so
    // a late write can skip one backoff (the next state overtook it): one may be missing.
    let mut delays = std::collections::BTreeMap::new();
    within(20, "four backoffs", async {
        while delays.len() < 4 && delays.keys().all(|&r| r < 4) {
            if let nats_ws::kv::WatchEvent::Entry(e) = watch.next().await.unwrap().unwrap() {
                let v: Value = serde_json::from_slice(&e.value).unwrap();
                if v["state"] == "backoff" {
                    assert_eq!(v["exit_code"], 3);
                    assert_eq!(v["signal"], Value::Null);
                    assert_eq!(v["pid"], Value::Null);
                    let at = v["next_restart_at"].as_u64().unwrap();
                    let restarts = v["restarts"].as_u64().unwrap();
                    delays.insert(restarts, at - v["updated_at"].as_u64().unwrap());
                }
            }
        }
    })
    .await;
    eprintln!("backoff delays announced, by restarts: {delays:?} ms");
    assert!(delays.len() >= 3, "{delays:?}");
    for (&restarts, &delay) in &delays {
        // 200 ms, doubled after each quick failure, up to 800.
        assert_eq!(delay, 200 << restarts.min(2), "{delays:?}");
    }

    let line: Value = serde_json::from_slice(
        &within(5, "a live line", live.next())
            .await
            .unwrap()
            .unwrap()
            .payload,
    )
    .unwrap();
    assert!(line["ts"].as_u64().is_some());
    assert!(
        line == json!({"ts": line["ts"], "stream": "stdout", "line": "hi"})
            || line == json!({"ts": line["ts"], "stream": "stderr", "line": "oops"})
    );

    let logs = call(&client, "via.proc.logs", r#"{"name":"crasher","lines":4}"#)
        .await
        .unwrap();
    assert_eq!(logs["name"], "crasher");
    let lines = logs["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4);
    assert!(lines
        .windows(2)
        .all(|w| w[0]["ts"].as_u64() <= w[1]["ts"].as_u64()));
    for l in lines {
        match l["stream"].as_str().unwrap() {
            "stdout" => assert_eq!(l["line"], "hi"),
            "stderr" => assert_eq!(l["line"], "oops"),
            other => panic!("stream {other}"),
        }
    }
    let stopped = call(&client, "via.proc.stop", r#"{"name":"crasher"}"#)
        .await
        .unwrap();
    assert_eq!(stopped["process"]["state"], "stopped");
    assert_eq!(stopped["process"]["next_restart_at"], Value::Null);
}

/// A process printing faster than anyone reads (20 000 lines at once) has at most 1 000 lines a
/// second published live, then a line saying how many were not: its flood cannot fill the
/// agent's connection (where replies and KV writes wait behind it) nor every page watching it.
/// The log (`via.proc.logs`) still keeps the newest lines. Before, every line was published.
#[tokio::test]
async fn a_flood_of_output_is_published_live_at_a_bounded_rate() {
    let server = start_hub();
    let processes = r#"
[[process]]
name = "chatty"
command = "sh"
args = ["-c", "seq 1 20000; sleep 1.2; echo end"]
restart = "never"
autostart = false
"#;
    let client = connect(server.client_url()).await;
    let mut live = client.subscribe("proc.logs.chatty").unwrap();
    let _agent = Agent::start(&server, "", processes);
    ready(&client).await;
    call(&client, "via.proc.start", r#"{"name":"chatty"}"#)
        .await
        .unwrap();
    let (mut numbers, mut held_back) = (0u64, 0u64);
    within(20, "the last line, live", async {
        loop {
            let message = live.next().await.unwrap().unwrap();
            let line: Value = serde_json::from_slice(&message.payload).unwrap();
            let text = line["line"].as_str().unwrap();
            if text == "end" {
                return;
            }
            if let Some(rest) = text.strip_prefix("via-agent: ") {
                let n: u64 = rest.split(' ').next().unwrap().parse().unwrap();
                assert!(text.contains("not published live"), "{text}");
                held_back += n;
            } else {
                text.parse::<u64>().unwrap();
                numbers += 1;
            }
        }
    })
    .await;
    assert!(numbers <= 2_000, "{numbers} lines published live");
    assert_eq!(
        numbers + held_back,
        20_000,
        "every line published or counted"
    );
    let logs = call(&client, "via.proc.logs", r#"{"name":"chatty","lines":2}"#)
        .await
        .unwrap();
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["20000", "end"]);
}

#[tokio::test]
async fn a_logs_reply_too_big_for_max_payload_loses_its_oldest_lines() {
    let server = start_hub();
    // 1000 lines of 4000 bytes (~4 MB as JSON) against the server's 1 MiB max_payload.
    let processes = r#"
[[process]]
name = "chatty"
command = "sh"
args = ["-c", "l=$(printf '%4000s' | tr ' ' x); i=0; while [ $i -lt 1000 ]; do echo $i $l; i=$((i+1)); done; echo done; sleep 300"]
restart = "never"
"#;
    let _agent = Agent::start(&server, "", processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    until(10, "the last line", || async {
        let logs = call(&client, "via.proc.logs", r#"{"name":"chatty","lines":1}"#)
            .await
            .unwrap();
        (logs["lines"][0]["line"] == "done").then_some(())
    })
    .await;
    let logs = call(
        &client,
        "via.proc.logs",
        r#"{"name":"chatty","lines":1000}"#,
    )
    .await
    .unwrap();
    let lines = logs["lines"].as_array().unwrap();
    eprintln!("logs of 1000 x 4 KiB: {} lines answered", lines.len());
    assert_eq!(logs["truncated"], true);
    assert!((200..1000).contains(&lines.len()), "{} lines", lines.len());
    assert_eq!(lines.last().unwrap()["line"], "done");
    assert!(serde_json::to_vec(&logs).unwrap().len() <= client.max_payload());
    let few = call(&client, "via.proc.logs", r#"{"name":"chatty","lines":2}"#)
        .await
        .unwrap();
    assert_eq!(few["truncated"], false);
    assert_eq!(few["lines"].as_array().unwrap().len(), 2);
}

/// Prints 200 lines of 4000 bytes (800 KB, beyond a pipe's 64 KiB), then `done`, with `echo`.
const ECHOED: &str = r#"
[[process]]
name = "loud"
command = "sh"
args = ["-c", "l=$(printf '%4000s' | tr ' ' x); i=0; while [ $i -lt 200 ]; do echo $i $l; i=$((i+1)); done; echo done; sleep 300"]
restart = "never"
echo = true
"#;

/// The agent keeps serving, and stops cleanly, with its stderr stalled (`closed`: gone).
async fn serves_with_stderr(closed: bool) {
    let server = start_hub();
    let mut agent = Agent::start_with_stderr_pipe(&server, ECHOED);
    if closed {
        // Writes to it now fail with EPIPE.
        drop(agent.stderr.take());
    }
    let client = connect(server.client_url()).await;
    ready(&client).await;
    until(10, "the echoed process's last line", || async {
        let logs = call(&client, "via.proc.logs", r#"{"name":"loud","lines":1}"#)
            .await
            .unwrap();
        (logs["lines"][0]["line"] == "done").then_some(())
    })
    .await;
    call(&client, "via.proc.list", "").await.unwrap();
    agent.signal(libc::SIGTERM);
    let status = agent.wait(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_stderr_nobody_reads_does_not_stall_the_agent() {
    serves_with_stderr(false).await;
}

#[tokio::test]
async fn a_closed_stderr_does_not_crash_the_agent() {
    serves_with_stderr(true).await;
}

#[tokio::test]
async fn registry_entries_go_with_their_process() {
    let server = start_hub();
    let mut agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let entry = kv_wait(&client, "services_registry", "svc", 10, |v| v.is_some())
        .await
        .unwrap();
    assert_eq!(entry["kind"], "process");
    assert_eq!(entry["tags"], json!(["service:test/svc", "depends:nats"]));
    assert!(entry["heartbeat_at"].as_u64() >= entry["registered_at"].as_u64());
    let me = kv_get(&client, "services_registry", "via-agent")
        .await
        .expect("agent registered");
    assert_eq!(me["kind"], "agent");
    assert_eq!(me["pid"], agent.pid());
    assert_eq!(entry["agent"], me["agent"]);
    // Per-key TTL where the server has it (2.11+): the stream allows it and each put says 15s.
    let info = client
        .jetstream()
        .stream_info("KV_services_registry")
        .await
        .unwrap();
    let version = client.server_info().unwrap().version;
    let (major, minor) = {
        let mut v = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
        (v.next().unwrap_or(0), v.next().unwrap_or(0))
    };
    assert_eq!(
        info.config.allow_msg_ttl,
        (major, minor) >= (2, 11),
        "server {version}"
    );
    assert_eq!(info.config.max_age, Duration::from_secs(15));
    let stored = client
        .jetstream()
        .key_value("services_registry")
        .await
        .unwrap();
    let ttl = stored.entry("via-agent").await.unwrap().unwrap().headers;
    let ttl = ttl.as_ref().and_then(|h| h.get("Nats-TTL"));
    assert_eq!(ttl, info.config.allow_msg_ttl.then_some("15s"));
    // Processes without tags are not registered.
    assert!(kv_get(&client, "services_registry", "locked")
        .await
        .is_none());

    // kill -9 of the service: the agent sees the exit and deletes the entry.
    let pid = entry["pid"].as_u64().unwrap();
    let killed = Instant::now();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    kv_wait(&client, "services_registry", "svc", 16, |v| v.is_none()).await;
    eprintln!(
        "registry entry of a kill -9'd service gone after {} ms",
        killed.elapsed().as_millis()
    );
    let state = kv_wait(&client, "processes", "svc", 5, |v| {
        v.is_some_and(|v| v["state"] == "exited")
    })
    .await
    .unwrap();
    assert_eq!(state["signal"], 9);

    // kill -9 of the agent: its children die with it (PR_SET_PDEATHSIG) and its entry expires.
    let locked = call(&client, "via.proc.list", "").await.unwrap();
    let locked_pid = process(&locked, "locked")["pid"].as_u64().unwrap();
    agent.signal(libc::SIGKILL);
    let killed = Instant::now();
    agent.wait(Duration::from_secs(5));
    until(5, "the agent's child to die with it", || async {
        (!alive(locked_pid)).then_some(())
    })
    .await;
    until(20, "the agent's registry entry to expire", || async {
        kv_get(&client, "services_registry", "via-agent")
            .await
            .is_none()
            .then_some(())
    })
    .await;
    eprintln!(
        "registry entry of a kill -9'd agent gone after {} ms",
        killed.elapsed().as_millis()
    );
    // The entry's 15 s TTL, the server's expiry pass and the polling above.
    assert!(killed.elapsed() <= Duration::from_secs(18));
}

#[tokio::test]
async fn leaf_nodes_join_carry_messages_and_leave() {
    let server = start_hub();
    let agent = Agent::start(&server, "max_leaves = 2", "");
    let client = connect(server.client_url()).await;
    ready(&client).await;

    let t = Instant::now();
    let added = call(&client, "via.leaf.add", "{}").await.unwrap();
    eprintln!("leaf-add answered after {} ms", t.elapsed().as_millis());
    let leaf = &added["leaf"];
    assert_eq!(leaf["name"], "leaf-1");
    assert_eq!(leaf["connected"], true);
    let ws_port = leaf["ws_port"].as_u64().unwrap();
    let client_port = leaf["client_port"].as_u64().unwrap();
    assert!(agent
        .dir
        .path()
        .join("data/leaves/leaf-1/leaf.conf")
        .is_file());
    assert_eq!(server.leafz()["leafs"].as_array().unwrap().len(), 1);
    let entry = kv_get(&client, "services_registry", "leaf-1")
        .await
        .expect("leaf registered");
    assert_eq!(entry["kind"], "leaf");
    let state = kv_wait(&client, "processes", "leaf-1", 5, |v| v.is_some())
        .await
        .unwrap();
    assert_eq!(state["kind"], "leaf");
    assert_eq!(state["leaf"]["ws_port"], ws_port);

    // hub → leaf (a client on the leaf's WebSocket port) and back (request/reply across).
    let on_leaf = connect(format!("ws://127.0.0.1:{ws_port}")).await;
    let mut sub = on_leaf.subscribe("cross.>").unwrap();
    on_leaf.flush().await.unwrap();
    let t = Instant::now();
    let msg = within(5, "hub → leaf", async {
        loop {
            client.publish("cross.down", "from the hub").unwrap();
            if let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(200), sub.next()).await
            {
                return m;
            }
        }
    })
    .await;
    assert_eq!(msg.payload, "from the hub");
    eprintln!("hub → leaf after {} ms", t.elapsed().as_millis());
    let mut echo = client.subscribe("echo").unwrap();
    client.flush().await.unwrap();
    let hub = client.clone();
    let responder = tokio::spawn(async move {
        while let Some(Ok(m)) = echo.next().await {
            if let Some(reply) = m.reply.as_deref() {
                let _ = hub.publish(reply, "pong");
            }
        }
    });
    let on_leaf_tcp = connect(format!("nats://127.0.0.1:{client_port}")).await;
    let reply = within(5, "leaf → hub", async {
        loop {
            if let Ok(m) = on_leaf_tcp.request("echo", "ping").await {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(reply.payload, "pong");
    responder.abort();

    // A leaf's own clients are anonymous: they may not take the agent's requests by joining its
    // queue group through the leaf (the hub refuses that to its anonymous `browser`), which they
    // could while the agent is away. `via.leaf.x.y` has no member on the hub; a sentinel
    // subscribed after it on the same connection says when the leaf has sent the hub its
    // interest, which it sends in order.
    let answer = |sub: nats_ws::Subscriber, text: &'static str| {
        let leaf = on_leaf_tcp.clone();
        tokio::spawn(async move {
            let mut sub = sub;
            while let Some(Ok(m)) = sub.next().await {
                if let Some(reply) = m.reply.as_deref() {
                    let _ = leaf.publish(reply, text);
                }
            }
        })
    };
    let hijack = answer(
        on_leaf_tcp.queue_subscribe("via.leaf.>", "q").unwrap(),
        "from a leaf client",
    );
    let sentinel = answer(on_leaf_tcp.subscribe("cross.sentinel").unwrap(), "here");
    on_leaf_tcp.flush().await.unwrap();
    within(5, "the leaf's interest at the hub", async {
        while client.request("cross.sentinel", "").await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let taken = client.request("via.leaf.x.y", "").await;
    assert!(
        matches!(taken, Err(nats_ws::RequestError::NoResponders { .. })),
        "{taken:?}"
    );
    hijack.abort();
    sentinel.abort();

    // Names nats-server's config parser would read as a number, and the hub's own name: refused
    // at once (not after the 8 s wait for a leaf that cannot start or join).
    let t = Instant::now();
    for name in ["1", "-1", "10k", "via-agent-test-hub"] {
        let body = json!({ "name": name }).to_string();
        let (code, _) = call(&client, "via.leaf.add", &body).await.unwrap_err();
        assert_eq!(code, 400, "{name}");
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    // A word the parser reads as a boolean when unquoted: the config quotes it.
    let second = call_with_timeout(&client, "via.leaf.add", r#"{"name":"on"}"#, 10)
        .await
        .unwrap();
    assert_eq!(second["leaf"]["name"], "on");
    let (code, body) = call(&client, "via.leaf.add", "{}").await.unwrap_err();
    assert_eq!(code, 429);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("at most 2 leaf nodes"));
    let leaves = call(&client, "via.leaf.list", "").await.unwrap();
    assert_eq!(leaves["leaves"].as_array().unwrap().len(), 2);

    let removed = call(&client, "via.leaf.remove", r#"{"name":"leaf-1"}"#)
        .await
        .unwrap();
    assert_eq!(removed, json!({"removed": "leaf-1"}));
    assert!(kv_get(&client, "services_registry", "leaf-1")
        .await
        .is_none());
    assert!(kv_get(&client, "processes", "leaf-1").await.is_none());
    assert!(!agent.dir.path().join("data/leaves/leaf-1").exists());
    until(5, "leaf-1 gone from leafz", || async {
        (server.leafz()["leafs"].as_array().map_or(0, |l| l.len()) == 1).then_some(())
    })
    .await;
    let leaves = call(&client, "via.leaf.list", "").await.unwrap();
    assert_eq!(leaves["leaves"][0]["name"], "on");
    // The freed number is used again.
    let again = call(&client, "via.leaf.add", "{}").await.unwrap();
    assert_eq!(again["leaf"]["name"], "leaf-1");
}

#[tokio::test]
async fn the_hub_restarting_leaves_children_running() {
    let mut server = start_hub();
    let _agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let before = call(&client, "via.proc.list", "").await.unwrap();
    let svc_pid = process(&before, "svc")["pid"].clone();
    kv_wait(&client, "services_registry", "svc", 10, |v| v.is_some()).await;

    server.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted_at = nats_ws_now_ms();
    server.start_again();
    let t = Instant::now();
    // Re-registered: a heartbeat written after the restart.
    let entry = kv_wait(&client, "services_registry", "via-agent", 15, |v| {
        v.is_some_and(|v| v["heartbeat_at"].as_u64() > Some(restarted_at))
    })
    .await
    .unwrap();
    eprintln!(
        "agent re-registered {} ms after the hub came back",
        t.elapsed().as_millis()
    );
    assert_eq!(entry["kind"], "agent");
    let after = call(&client, "via.proc.list", "").await.unwrap();
    assert_eq!(process(&after, "svc")["pid"], svc_pid);
    assert_eq!(process(&after, "svc")["state"], "running");
    assert_eq!(process(&after, "svc")["restarts"], 0);
    kv_wait(&client, "services_registry", "svc", 10, |v| {
        v.is_some_and(|v| v["heartbeat_at"].as_u64() > Some(restarted_at))
    })
    .await;
}

#[tokio::test]
async fn a_deleted_bucket_is_created_again() {
    let server = start_hub();
    let _agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    kv_wait(&client, "processes", "svc", 10, |v| v.is_some()).await;
    client
        .jetstream()
        .delete_key_value("processes")
        .await
        .unwrap();
    kv_wait(&client, "processes", "svc", 10, |v| {
        v.is_some_and(|v| v["state"] == "running")
    })
    .await;
}

/// A leaf linked to another node of the hub's cluster than the one whose /leafz the agent reads
/// (it moved there when that node went) is connected all the same: its own /leafz says so.
/// Here the /leafz read is of a stand-in that never lists a leaf.
#[tokio::test]
async fn a_leaf_the_hub_does_not_list_but_that_is_linked_is_connected() {
    let server = start_hub();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let body = r#"{"server_id":"ELSEWHERE","leafnodes":0,"leafs":[]}"#;
            let answer = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let keys = format!("hub_monitoring_url = \"http://127.0.0.1:{port}\"");
    let _agent = Agent::start(&server, &keys, "");
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let added = call(&client, "via.leaf.add", "{}").await.unwrap();
    assert_eq!(added["leaf"]["connected"], true, "{added}");
    // And it stays so in what the agent reports every 2 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let leaves = call(&client, "via.leaf.list", "").await.unwrap();
    assert_eq!(leaves["leaves"][0]["connected"], true, "{leaves}");
}

/// A leaf added while the hub's leafnode port and monitoring are down (node 1 of a cluster gone)
/// joins another node of its cluster, and stays connected in what the agent reports. Here that
/// node is the test's server, and the hub's ports are ports nothing listens on.
#[tokio::test]
async fn a_leaf_added_while_the_hub_is_down_joins_another_node() {
    let server = start_hub();
    let node_2 = server.leaf_port.unwrap();
    // Ports held, not listening: no other test's server takes them meanwhile.
    let [(_a, hub), (_b, hub_monitoring), (_c, node_3)] = [(); 3].map(|()| refusing_port());
    let keys = format!(
        "cluster_leafnode_ports = [{node_3}, {node_2}]\nhub_monitoring_url = \"http://127.0.0.1:{hub_monitoring}\""
    );
    let agent = Agent::start_with_leaf_port(&server, hub, &keys, "");
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let added = call(&client, "via.leaf.add", "{}").await.unwrap();
    assert_eq!(added["leaf"]["connected"], true, "{added}");
    // Node 2 first: the ports nothing listened on are left out, or last (the hub's).
    let conf =
        std::fs::read_to_string(agent.dir.path().join("data/leaves/leaf-1/leaf.conf")).unwrap();
    let urls = conf.lines().find(|l| l.contains("urls:")).unwrap();
    assert!(
        urls.contains(&format!("[\"nats-leaf://127.0.0.1:{node_2}\", ")),
        "{urls}"
    );
    assert_eq!(urls.matches("nats-leaf://").count(), 2, "{urls}");
    assert_eq!(server.leafz()["leafnodes"], 1);
    // Past the failures of the hub's /leafz the agent tolerates (a read every 2 s).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let leaves = call(&client, "via.leaf.list", "").await.unwrap();
    assert_eq!(leaves["leaves"][0]["connected"], true, "{leaves}");
}

/// Waits (bounded) until the agent lists a leaf named `name` first.
async fn leaf_listed(client: &nats_ws::Client, name: &str) {
    until(5, &format!("{name} listed"), || async {
        let leaves = call(client, "via.leaf.list", "").await.unwrap();
        (leaves["leaves"][0]["name"] == name).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_leaf_that_cannot_join_is_reported_and_removed() {
    let server = start_hub();
    // Nothing listens on this leafnode port (held, so that no other test's server takes it):
    // the leaf runs but never joins.
    let (_held, port) = refusing_port();
    let agent = Agent::start_with_leaf_port(&server, port, "", "");
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let t = Instant::now();
    let first = call_with_timeout(&client, "via.leaf.add", "{}", 15);
    let others = async {
        leaf_listed(&client, "leaf-1").await;
        // Refused at once while the first waits for its leaf, not run 8 s later.
        let refused = Instant::now();
        for (subject, body) in [
            ("via.leaf.add", "{}"),
            ("via.leaf.add", r#"{"name":"other"}"#),
            ("via.leaf.remove", r#"{"name":"leaf-1"}"#),
        ] {
            let (code, body) = call(&client, subject, body).await.unwrap_err();
            assert_eq!(code, 409, "{body}");
            assert!(body["error"].as_str().unwrap().contains("in progress"));
        }
        assert!(refused.elapsed() < Duration::from_secs(1));
    };
    let (first, ()) = tokio::join!(first, others);
    let (code, body) = first.unwrap_err();
    assert_eq!(code, 500);
    assert!(
        body["error"].as_str().unwrap().contains("did not join"),
        "{body}"
    );
    assert!(t.elapsed() >= Duration::from_secs(8));
    let leaves = call(&client, "via.leaf.list", "").await.unwrap();
    assert_eq!(leaves["leaves"], json!([]));
    assert!(!agent.dir.path().join("data/leaves/leaf-1").exists());
    assert!(kv_get(&client, "processes", "leaf-1").await.is_none());
}

/// Ctrl-C while a leaf waits to join (it never will: nothing listens on the leafnode port) stops
/// the agent within a stop's grace: the wait ends at once. Before, the stop waited for the rest
/// of the 8 s join wait, then for the leaf's removal, then for the other stops (up to 18 s): a
/// supervisor with a 10 s stop timeout (docker, systemd) would SIGKILL the agent meanwhile.
#[tokio::test]
async fn ctrl_c_while_a_leaf_waits_to_join_stops_the_agent_at_once() {
    let server = start_hub();
    let (_held, port) = refusing_port();
    let mut agent = Agent::start_with_leaf_port(&server, port, "", "");
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let adding = call_with_timeout(&client, "via.leaf.add", "{}", 15);
    let stopping = async {
        leaf_listed(&client, "leaf-1").await;
        let t = Instant::now();
        agent.ctrl_c();
        let status = agent.wait(Duration::from_secs(20));
        (t.elapsed(), status)
    };
    let (added, (took, status)) = tokio::join!(adding, stopping);
    assert!(status.success(), "exit status {status}");
    assert!(
        took < STOP_GRACE + Duration::from_secs(1),
        "the agent took {took:?} to stop"
    );
    let (code, body) = added.unwrap_err();
    assert_eq!(code, 500, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("the agent is stopping"),
        "{body}"
    );
    assert!(!agent.dir.path().join("data/leaves/leaf-1").exists());
}

#[tokio::test]
async fn the_agent_starts_before_the_hub_and_registers_when_it_comes() {
    let mut server = start_hub();
    server.stop();
    let agent = Agent::start(&server, "", SLEEPERS);
    // Its processes run without the hub: the agent's child `sleep 300` shows up in /proc.
    let child = until(5, "the agent's children", || async {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", agent.pid())).ok()?;
        (children.split_whitespace().count() == 2).then_some(children)
    })
    .await;
    server.start_again();
    let client = connect(server.client_url()).await;
    let list = ready(&client).await;
    let pids: Vec<String> = ["locked", "svc"]
        .iter()
        .map(|n| process(&list, n)["pid"].to_string())
        .collect();
    let mut seen: Vec<String> = child.split_whitespace().map(String::from).collect();
    seen.sort();
    let mut pids_sorted = pids.clone();
    pids_sorted.sort();
    assert_eq!(seen, pids_sorted);
    kv_wait(&client, "services_registry", "svc", 10, |v| v.is_some()).await;
    kv_wait(&client, "processes", "svc", 10, |v| {
        v.is_some_and(|v| v["state"] == "running")
    })
    .await;
}

fn nats_ws_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn ctrl_c_reaches_the_agent_which_stops_its_children() {
    let server = start_hub();
    let mut agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let list = call(&client, "via.proc.list", "").await.unwrap();
    let pid = process(&list, "locked")["pid"].as_u64().unwrap();
    let t = Instant::now();
    agent.ctrl_c();
    let status = agent.wait(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    eprintln!(
        "Ctrl-C: agent and children gone after {} ms",
        t.elapsed().as_millis()
    );
    assert!(!alive(pid));
    // Stopped by the agent's SIGTERM, not by the terminal's SIGINT (it is in its own group).
    let state = kv_get(&client, "processes", "locked").await.unwrap();
    assert_eq!(state["state"], "stopped");
    assert_eq!(state["signal"], libc::SIGTERM);
}

#[tokio::test]
async fn sigterm_stops_every_child_and_deregisters() {
    stops_every_child_and_deregisters_on(libc::SIGTERM).await;
}

#[tokio::test]
async fn sighup_is_a_graceful_stop_too() {
    stops_every_child_and_deregisters_on(libc::SIGHUP).await;
}

async fn stops_every_child_and_deregisters_on(signal: i32) {
    let server = start_hub();
    let mut agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    kv_wait(&client, "services_registry", "svc", 10, |v| v.is_some()).await;
    let list = call(&client, "via.proc.list", "").await.unwrap();
    let pids: Vec<u64> = ["svc", "locked"]
        .iter()
        .map(|n| process(&list, n)["pid"].as_u64().unwrap())
        .collect();
    agent.signal(signal);
    let status = agent.wait(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} left running");
    }
    assert!(kv_get(&client, "services_registry", "svc").await.is_none());
    assert!(kv_get(&client, "services_registry", "via-agent")
        .await
        .is_none());
    let svc = kv_get(&client, "processes", "svc").await.unwrap();
    assert_eq!(svc["state"], "stopped");
}

/// Kill = SIGKILL to the whole group at once (its members ignore SIGTERM, so a stop would take
/// its 5 s grace), answered once it exited, and the process stays down whatever its policy.
#[tokio::test]
async fn kill_takes_the_whole_group_at_once_and_it_stays_down() {
    let server = start_hub();
    let mut processes = String::from(SLEEPERS);
    for restart in ["on-failure", "always"] {
        processes.push_str(&format!(
            r#"
[[process]]
name = "{restart}"
command = "sh"
args = ["-c", "trap '' TERM; sleep 300 & echo $!; wait"]
restart = "{restart}"
backoff_initial_ms = 100
service = ["role:worker"]
"#
        ));
    }
    let _agent = Agent::start(&server, "", &processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    for name in ["on-failure", "always"] {
        let body = json!({ "name": name }).to_string();
        // The grandchild's pid, printed by the leader.
        let grandchild: u64 = until(10, "the grandchild's pid", || async {
            let logs = call(&client, "via.proc.logs", &body).await.unwrap();
            logs["lines"][0]["line"].as_str()?.parse().ok()
        })
        .await;
        let list = call(&client, "via.proc.list", "").await.unwrap();
        let pid = process(&list, name)["pid"].as_u64().expect("running");
        kv_wait(&client, "services_registry", name, 10, |v| v.is_some()).await;
        assert!(alive(pid) && alive(grandchild));

        let t = Instant::now();
        let killed = call(&client, "via.proc.kill", &body).await.unwrap();
        let took = t.elapsed();
        eprintln!("kill of {name} answered after {} ms", took.as_millis());
        assert!(took < Duration::from_secs(2), "{took:?}: not at once");
        let p = &killed["process"];
        assert_eq!(p["state"], "stopped", "{p}");
        assert_eq!(p["signal"], 9);
        assert_eq!(p["exit_code"], Value::Null);
        assert_eq!(p["pid"], Value::Null);
        assert_eq!(p["next_restart_at"], Value::Null);
        // Answered once exited: the leader is reaped and its group gone, not on their way.
        assert!(!alive(pid), "the leader outlived the answer");
        assert!(!alive(grandchild), "the group outlived the answer");
        kv_wait(&client, "services_registry", name, 10, |v| v.is_none()).await;

        // Not restarted (its backoff is 100 ms): for a second, every state it shows is stopped.
        let until_then = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until_then {
            let list = call(&client, "via.proc.list", "").await.unwrap();
            let p = process(&list, name);
            assert_eq!(
                (&p["state"], &p["restarts"]),
                (&json!("stopped"), &json!(0))
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stored = kv_wait(&client, "processes", name, 5, |v| {
            v.is_some_and(|v| v["state"] == "stopped")
        })
        .await
        .unwrap();
        assert_eq!(
            (&stored["signal"], &stored["restarts"]),
            (&json!(9), &json!(0))
        );

        // Killing a stopped process is not an error: its state.
        let again = call(&client, "via.proc.kill", &body).await.unwrap();
        assert_eq!(again["process"]["state"], "stopped");
        assert_eq!(again["process"]["signal"], 9);
        // And it starts again by request.
        let started = call(&client, "via.proc.start", &body).await.unwrap();
        assert_eq!(started["process"]["state"], "running");
    }
    // A process never started: killed, it answers its state.
    let never = call(&client, "via.proc.kill", r#"{"name":"sleeper"}"#)
        .await
        .unwrap();
    assert_eq!(never["process"]["state"], "stopped");
    assert_eq!(never["process"]["signal"], Value::Null);

    let refusals: [(&[u8], u16); 7] = [
        (br#"{"name":"nope"}"#, 404),
        (br#"{"name":"locked"}"#, 403),
        (br#"{"name":"#, 400),
        (b"\xff\xfe garbage", 400),
        (br#"{}"#, 400),
        (br#"["on-failure"]"#, 400),
        (br#"{"name":"sleep 1; kill -9 -1"}"#, 400),
    ];
    for (body, code) in refusals {
        let msg = client
            .request("via.proc.kill", body.to_vec())
            .await
            .expect("an answer");
        let headers = msg.headers.expect("error headers");
        let got: u16 = headers
            .get("Nats-Service-Error-Code")
            .expect("Nats-Service-Error-Code")
            .parse()
            .unwrap();
        assert_eq!(got, code, "{}", String::from_utf8_lossy(body));
        let text = headers
            .get("Nats-Service-Error")
            .expect("Nats-Service-Error");
        let reply: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(reply, json!({"error": text, "code": code}));
    }
    let (_, body) = call(&client, "via.proc.kill", r#"{"name":"locked"}"#)
        .await
        .unwrap_err();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("may not be killed"),
        "{body}"
    );
    // The locked process untouched, and the service lists the endpoint.
    let list = call(&client, "via.proc.list", "").await.unwrap();
    assert_eq!(process(&list, "locked")["state"], "running");
    let info = client
        .request("$SRV.INFO.process-control", "")
        .await
        .unwrap();
    let info: Value = serde_json::from_slice(&info.payload).unwrap();
    let kill = info["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "kill")
        .unwrap_or_else(|| panic!("no kill endpoint in {info}"));
    assert_eq!(kill["subject"], "via.proc.kill");
    assert_eq!(kill["queue_group"], "q");
}

/// A kill asked while a start is in progress waits behind it (one command may) and a second kill
/// joins it: the start answers with what it started, and both kills with that killed. (That a
/// third command is refused meanwhile is the supervisor's test: from here, which of two requests
/// on different subjects the agent takes first is not for the test to say.)
#[tokio::test]
async fn a_kill_during_a_start_waits_for_it_then_kills_what_it_started() {
    let server = start_hub();
    // The first run exits at once leaving a sleep that ignores SIGTERM in its group, so the next
    // start waits (up to the 5 s grace) for that group to end; the second run just sleeps.
    let processes = r#"
[[process]]
name = "lingering"
command = "sh"
args = ["-c", "if [ -e second ]; then exec sleep 300; fi; touch second; trap '' TERM; sleep 300 & echo $!; exit 1"]
autostart = false
restart = "never"
"#;
    let _agent = Agent::start(&server, "", processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let body = r#"{"name":"lingering"}"#;
    call(&client, "via.proc.start", body).await.unwrap();
    let leftover: u64 = until(10, "the first run's exit", || async {
        let list = call(&client, "via.proc.list", "").await.unwrap();
        if process(&list, "lingering")["state"] != "exited" {
            return None;
        }
        let logs = call(&client, "via.proc.logs", body).await.unwrap();
        logs["lines"][0]["line"].as_str()?.parse().ok()
    })
    .await;
    assert!(alive(leftover));

    let t = Instant::now();
    let start = call_with_timeout(&client, "via.proc.start", body, 15);
    let others = async {
        until(5, "the start in progress", || async {
            let list = call(&client, "via.proc.list", "").await.unwrap();
            (process(&list, "lingering")["state"] == "starting").then_some(())
        })
        .await;
        tokio::join!(
            call_with_timeout(&client, "via.proc.kill", body, 15),
            call_with_timeout(&client, "via.proc.kill", body, 15),
        )
    };
    let (started, (kill, joined)) = tokio::join!(start, others);
    eprintln!(
        "start, then kill: answered after {} ms",
        t.elapsed().as_millis()
    );
    let started = started.unwrap();
    assert_eq!(started["process"]["state"], "running");
    let pid = started["process"]["pid"].as_u64().unwrap();
    for k in [kill, joined] {
        let k = k.unwrap();
        assert_eq!(k["process"]["state"], "stopped", "{k}");
        assert_eq!(k["process"]["signal"], 9);
    }
    assert!(!alive(pid), "the kill did not kill what the start started");
    assert!(!alive(leftover));
    let list = call(&client, "via.proc.list", "").await.unwrap();
    assert_eq!(process(&list, "lingering")["state"], "stopped");
}

/// A program that is not there (a worker not built yet): the start says why, the agent goes on.
/// A relative command is the config folder's, whatever the process's `cwd`.
#[tokio::test]
async fn a_missing_program_is_an_error_reply_and_relative_commands_are_the_configs() {
    let server = start_hub();
    let processes = r#"
[[process]]
name = "unbuilt"
command = "target/debug/not-built"
autostart = false
restart = "on-failure"

[[process]]
name = "relative"
command = "bin/hello"
cwd = "sub"
autostart = false
restart = "never"
"#;
    let agent = Agent::start(&server, "", processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let (code, body) = call(&client, "via.proc.start", r#"{"name":"unbuilt"}"#)
        .await
        .unwrap_err();
    assert_eq!(code, 500);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("target/debug/not-built") && error.contains("is it built"),
        "{error}"
    );
    // The policy applies to a failed spawn as to a crash: it will try again.
    let list = call(&client, "via.proc.list", "").await.unwrap();
    assert_eq!(process(&list, "unbuilt")["state"], "backoff");
    let stopped = call(&client, "via.proc.stop", r#"{"name":"unbuilt"}"#)
        .await
        .unwrap();
    assert_eq!(stopped["process"]["state"], "stopped");

    use std::os::unix::fs::PermissionsExt;
    let dir = agent.dir.path();
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let script = dir.join("bin/hello");
    std::fs::write(&script, "#!/bin/sh\npwd\nexec sleep 300\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let started = call(&client, "via.proc.start", r#"{"name":"relative"}"#)
        .await
        .unwrap();
    assert_eq!(started["process"]["state"], "running");
    assert_eq!(started["process"]["command"], "bin/hello", "as written");
    let pwd = until(5, "its working folder", || async {
        let logs = call(&client, "via.proc.logs", r#"{"name":"relative"}"#)
            .await
            .unwrap();
        logs["lines"][0]["line"].as_str().map(str::to_owned)
    })
    .await;
    assert!(pwd.ends_with("/sub"), "{pwd}");
}

/// `./run.sh` run twice: the second agent would delete the first's leaf folders, join its queue
/// group (so answer half of its requests with "no such process") and its state keys. It refuses
/// to start instead, saying why; the first goes on.
/// Starts another agent on `agent`'s config (so its data directory): it must refuse to start.
/// What it said.
async fn a_second_agent_refused(agent: &Agent) -> String {
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_via-agent"))
        .arg("--config")
        .arg(agent.dir.path().join("via-agent.toml"))
        .env_remove("VIA_NATS_URL")
        .env_remove("NATS_SERVER_BIN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second via-agent");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second agent is still running after 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut said).unwrap();
    assert!(!status.success(), "{status}: {said}");
    assert!(said.contains("another via-agent"), "{said}");
    said
}

#[tokio::test]
async fn a_second_agent_on_the_same_data_directory_refuses_to_start() {
    let server = start_hub();
    let agent = Agent::start(&server, "", SLEEPERS);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    // What a leaf of the first agent keeps there (a second start removed data/leaves).
    let kept = agent.dir.path().join("data/leaves/leaf-1");
    std::fs::create_dir_all(&kept).unwrap();

    let said = a_second_agent_refused(&agent).await;
    assert!(
        said.contains(&format!("(pid {})", agent.pid())),
        "names the running one: {said}"
    );
    assert!(
        kept.exists(),
        "the first agent's leaf folder is still there"
    );
    let list = call(&client, "via.proc.list", "").await.unwrap();
    assert!(list["processes"].is_array(), "{list}");
}

/// An agent running one shell process (`name`, its `script` printing the pid of what it starts
/// as its first line).
struct Stubborn {
    agent: Agent,
    client: nats_ws::Client,
    /// The shell (the group's leader).
    leader: u64,
    /// What it started, by the pid it printed.
    grandchild: u64,
}

impl Stubborn {
    /// "stubborn": a shell and the `sleep` it started, both ignoring SIGTERM.
    async fn start(server: &TestServer) -> Stubborn {
        Stubborn::running(
            server,
            "stubborn",
            "trap '' TERM; sleep 300 & echo $!; wait",
        )
        .await
    }

    /// `kill -9` of the agent: its child (the leader) dies with it, the grandchild is left.
    async fn kill_agent(&mut self) {
        self.agent.signal(libc::SIGKILL);
        self.agent.wait(Duration::from_secs(5));
        let leader = self.leader;
        until(5, "the child to die with the agent", || async {
            (!alive(leader)).then_some(())
        })
        .await;
        assert!(
            alive(self.grandchild),
            "nothing was left running: this test shows nothing"
        );
    }

    async fn running(server: &TestServer, name: &str, script: &str) -> Stubborn {
        let processes = format!(
            "[[process]]\nname = \"{name}\"\ncommand = \"sh\"\nargs = [\"-c\", {script:?}]\nrestart = \"never\"\n"
        );
        let agent = Agent::start(server, "", &processes);
        let client = connect(server.client_url()).await;
        ready(&client).await;
        let body = json!({ "name": name }).to_string();
        let grandchild: u64 = until(10, "the printed pid", || async {
            let logs = call(&client, "via.proc.logs", &body).await.unwrap();
            logs["lines"][0]["line"].as_str()?.parse().ok()
        })
        .await;
        let list = call(&client, "via.proc.list", "").await.unwrap();
        let leader = process(&list, name)["pid"].as_u64().expect("running");
        Stubborn {
            agent,
            client,
            leader,
            grandchild,
        }
    }
}

/// Ctrl-C twice: the second does not wait for the graceful stop (here 5 s of grace for a group
/// that ignores SIGTERM), it kills every group at once and the agent exits (with a failure: it
/// did not deregister). Before, the second Ctrl-C was ignored, and users reached for kill -9,
/// which leaves grandchildren running.
#[tokio::test]
async fn a_second_ctrl_c_kills_every_process_at_once() {
    let server = start_hub();
    let Stubborn {
        mut agent,
        leader,
        grandchild,
        ..
    } = Stubborn::start(&server).await;
    agent.ctrl_c();
    // The graceful stop has begun (the group ignores its SIGTERM).
    until(10, "the agent stopping", || async {
        agent.log().contains("stopping every process").then_some(())
    })
    .await;
    let t = Instant::now();
    agent.ctrl_c();
    let status = agent.wait(Duration::from_secs(3));
    assert!(
        !status.success(),
        "a forced stop is not a clean one: {status}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "{:?}: did not wait out the grace",
        t.elapsed()
    );
    until(2, "the whole group gone", || async {
        (!alive(leader) && !alive(grandchild)).then_some(())
    })
    .await;
    assert!(
        agent.log().contains("killed every process"),
        "{}",
        agent.log()
    );
}

/// A process that exited by itself has left, in its group, a `sleep` that ignores SIGTERM; the
/// agent gives it 5 s of grace. A second Ctrl-C within those 5 s kills it too (it used to be
/// known only to the process's task, and was left running for good when the agent exited).
#[tokio::test]
async fn a_second_ctrl_c_kills_what_an_exited_process_left() {
    let server = start_hub();
    let processes = "[[process]]\nname = \"quitter\"\ncommand = \"sh\"\nargs = [\"-c\", \"trap '' TERM; sleep 300 & echo $!; exit 1\"]\nrestart = \"never\"\n";
    let mut agent = Agent::start(&server, "", processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let body = json!({ "name": "quitter" }).to_string();
    let leftover: u64 = until(10, "the printed pid", || async {
        let logs = call(&client, "via.proc.logs", &body).await.unwrap();
        logs["lines"][0]["line"].as_str()?.parse().ok()
    })
    .await;
    // It exits right after printing: its grace ends 5 s after this, at the earliest.
    let exited = Instant::now();
    agent.ctrl_c();
    until(10, "the agent stopping", || async {
        agent.log().contains("stopping every process").then_some(())
    })
    .await;
    assert!(
        alive(leftover),
        "the leftover was gone before the second Ctrl-C: this test shows nothing"
    );
    agent.ctrl_c();
    assert!(!agent.wait(Duration::from_secs(3)).success());
    until(1, "the leftover killed", || async {
        (!alive(leftover)).then_some(())
    })
    .await;
    assert!(
        exited.elapsed() < STOP_GRACE,
        "{:?}: the grace may have ended it, not the second Ctrl-C",
        exited.elapsed()
    );
}

/// Stopping takes the longest grace, not their sum: three processes that ignore SIGTERM stop
/// together in about 5 s (one after another they took 15 s).
#[tokio::test]
async fn a_stop_waits_for_one_grace_not_one_per_process() {
    let server = start_hub();
    let processes: String = (1..=3)
        .map(|i| {
            format!(
                "[[process]]\nname = \"stubborn-{i}\"\ncommand = \"sh\"\nargs = [\"-c\", \"trap '' TERM; echo trapped; sleep 300\"]\nrestart = \"never\"\n\n"
            )
        })
        .collect();
    let mut agent = Agent::start(&server, "", &processes);
    let client = connect(server.client_url()).await;
    ready(&client).await;
    let mut pids = Vec::new();
    for i in 1..=3 {
        let body = json!({ "name": format!("stubborn-{i}") }).to_string();
        until(10, "the trap set", || async {
            let logs = call(&client, "via.proc.logs", &body).await.unwrap();
            (logs["lines"][0]["line"] == "trapped").then_some(())
        })
        .await;
        let list = call(&client, "via.proc.list", "").await.unwrap();
        pids.push(
            process(&list, &format!("stubborn-{i}"))["pid"]
                .as_u64()
                .unwrap(),
        );
    }
    let t = Instant::now();
    agent.ctrl_c();
    assert!(agent.wait(Duration::from_secs(20)).success());
    let took = t.elapsed();
    assert!(took >= STOP_GRACE, "{took:?}: they ignore SIGTERM");
    assert!(took < STOP_GRACE * 2, "{took:?}: one grace after another");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} left running");
    }
}

/// `kill -9` of the agent: its children die with it (PR_SET_PDEATHSIG), what they started does
/// not. The next agent on the same data directory stops those leftovers before it starts the
/// processes again (before: a second `sleep`, trunk or leaf beside the first).
#[tokio::test]
async fn the_next_agent_stops_what_a_killed_one_left_running() {
    let server = start_hub();
    let mut stubborn = Stubborn::start(&server).await;
    stubborn.kill_agent().await;
    let Stubborn {
        mut agent,
        client,
        leader,
        grandchild,
    } = stubborn;

    agent.start_again();
    until(15, "the leftover to be stopped", || async {
        (!alive(grandchild)).then_some(())
    })
    .await;
    until(5, "the agent to say so", || async {
        agent
            .log()
            .contains(&format!(
                "left running when it was killed (pids [{grandchild}])"
            ))
            .then_some(())
    })
    .await;
    // And the process is started again, once.
    until(15, "the process running again", || async {
        let list = ready(&client).await;
        let pid = process(&list, "stubborn")["pid"].as_u64()?;
        (pid != leader).then_some(())
    })
    .await;
}

/// The agent after a killed one is itself stopped while it stops the leftovers (here during the
/// 3 s it gives them after SIGTERM, which they ignore): the one after it still knows whose they
/// are. (It used to read the interrupted agent's pid in the lock, mark nothing as left, and leave
/// them running for good.)
#[tokio::test]
async fn leftovers_are_still_stopped_when_the_agent_stopping_them_is_stopped() {
    let server = start_hub();
    let mut stubborn = Stubborn::start(&server).await;
    stubborn.kill_agent().await;
    let Stubborn {
        mut agent,
        grandchild,
        ..
    } = stubborn;

    // Stopped within the leftovers' grace: it is 3 s wide and begins once the agent has taken
    // its lock (and put SIGINT back to its default). Nothing else is done before the signal: on
    // a loaded machine a second agent's start took long enough for the grace to end first (and
    // the agent to stop gracefully, past the wait below).
    agent.start_again();
    agent.holds_the_lock().await;
    assert!(
        alive(grandchild),
        "the leftover was gone before the agent could be stopped: this test shows nothing"
    );
    agent.signal(libc::SIGINT);
    agent.wait(Duration::from_secs(5));
    assert!(alive(grandchild), "the interrupted agent did not finish it");

    agent.start_again();
    agent.holds_the_lock().await;
    // Another agent started while this one ends the leftovers is told which agent holds the
    // directory: this one, not the killed one whose pid the lock keeps until they are ended.
    let said = a_second_agent_refused(&agent).await;
    assert!(
        said.contains(&format!("(pid {})", agent.pid())),
        "names the agent ending the leftovers: {said}"
    );
    until(15, "the leftover to be stopped", || async {
        (!alive(grandchild)).then_some(())
    })
    .await;
    agent.signal(libc::SIGTERM);
    agent.wait(Duration::from_secs(10));
}

/// What outlives a clean stop on purpose (here a `sleep` in a session of its own, as a daemon
/// would be) is not the next agent's to stop: only a killed agent's leftovers are.
#[tokio::test]
async fn after_a_clean_stop_the_next_agent_stops_nothing() {
    let server = start_hub();
    let Stubborn {
        mut agent,
        client,
        grandchild: daemon,
        ..
    } = Stubborn::running(
        &server,
        "daemonizer",
        "setsid sleep 300 >/dev/null 2>&1 & echo $!; wait",
    )
    .await;
    // `$!` is printed once the shell has forked: the child may not have left the shell's group
    // (setsid) yet, and the stop would end it with the group. It runs `sleep` once it has.
    until(10, "the daemon in a session of its own", || async {
        let comm = std::fs::read_to_string(format!("/proc/{daemon}/comm")).ok()?;
        (comm.trim_end() == "sleep").then_some(())
    })
    .await;
    agent.ctrl_c();
    assert!(agent.wait(Duration::from_secs(10)).success());
    assert!(
        alive(daemon),
        "the daemon did not outlive the stop: this test shows nothing"
    );

    agent.start_again();
    ready(&client).await;
    let survived = alive(daemon);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    assert!(
        survived,
        "the next agent stopped a process a clean stop had left"
    );
    assert!(
        !agent.log().contains("left running when it was killed"),
        "{}",
        agent.log()
    );
}
