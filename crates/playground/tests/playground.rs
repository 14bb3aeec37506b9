//! The playground's programs as built by cargo, against a real nats-server (test-support; test.sh
//! runs this file on Debian's 2.9.10 and on the current release): `via-math` answers `math.sum`
//! to our client and to nats-py, with service errors for what is not a pair of numbers, is
//! discoverable, and leaves cleanly; `via-sensor` publishes over MQTT what it prints, says plainly
//! when nothing answers MQTT; both come back after the server restarts.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nats_ws::service::{ERROR_CODE_HEADER, ERROR_HEADER};
use nats_ws::{Client, Message, RequestError};
use serde_json::Value;
use test_support::{within, ServerOptions, TestServer};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::mpsc;
use via_playground::math::SumReply;
use via_playground::{math, sensor};

/// How long a request may take before the test calls it unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One of this crate's programs, killed on drop (a failing test leaves nothing running). Its
/// stdout is read line by line; its stderr is kept (shown when a wait fails) and its lines can be
/// awaited.
struct Program {
    name: &'static str,
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    stderr_lines: mpsc::UnboundedReceiver<String>,
}

impl Program {
    fn start(name: &'static str, program: &str, args: &[&str]) -> Program {
        Program::start_with_env(name, program, args, &[])
    }

    /// [`Program::start`] with these variables set in its environment.
    fn start_with_env(
        name: &'static str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Program {
        let mut child = Command::new(program)
            .args(args)
            .env_remove("VIA_NATS_URL")
            .env_remove("VIA_MQTT_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err_lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, stderr_lines) = mpsc::unbounded_channel();
        let log = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
                let _ = tx.send(line);
            }
        });
        Program {
            name,
            child,
            stdout,
            stderr,
            stderr_lines,
        }
    }

    /// `via-math --url <nats url>`.
    fn math(url: &str) -> Program {
        Program::start("via-math", env!("CARGO_BIN_EXE_via-math"), &["--url", url])
    }

    /// `via-sensor --url <mqtt url> <args>`.
    fn sensor(url: &str, args: &[&str]) -> Program {
        let mut all = vec!["--url", url];
        all.extend_from_slice(args);
        Program::start("via-sensor", env!("CARGO_BIN_EXE_via-sensor"), &all)
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (bounded) for the next stderr line that contains `text`.
    async fn said(&mut self, text: &str) -> String {
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = self.stderr_lines.recv().await {
                if line.contains(text) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "{} exited without saying {text:?}; it said:\n{}",
                self.name,
                self.stderr()
            ),
            Err(_) => panic!(
                "{} did not say {text:?} within 20 s; it said:\n{}",
                self.name,
                self.stderr()
            ),
        }
    }

    /// The next stdout line, or `None` once stdout is closed (bounded).
    async fn line(&mut self) -> Option<String> {
        match tokio::time::timeout(Duration::from_secs(20), self.stdout.next_line()).await {
            Ok(line) => line.expect("read stdout"),
            Err(_) => panic!(
                "{} printed nothing for 20 s; its stderr:\n{}",
                self.name,
                self.stderr()
            ),
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    async fn terminate(&mut self) {
        let pid = self.child.id().expect("still running");
        let pid = libc::pid_t::try_from(pid).expect("pid");
        // SAFETY: a signal to our own child, not yet waited for, so the pid is still its.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0, "kill");
        self.exits_cleanly().await;
    }

    /// Waits (bounded) for the program to exit, and checks it exited 0.
    async fn exits_cleanly(&mut self) {
        let status = self.exits().await;
        assert!(
            status.success(),
            "{} exited with {status}; its stderr:\n{}",
            self.name,
            self.stderr()
        );
    }

    /// Waits (bounded) for the program to exit, with every line of its stderr read.
    async fn exits(&mut self) -> std::process::ExitStatus {
        let status = match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!(
                "{} did not exit within 10 s; its stderr:\n{}",
                self.name,
                self.stderr()
            ),
        };
        // The stderr reader may still hold the last lines: let it finish (it ends at EOF).
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.stderr_lines.recv().await.is_some() {}
        })
        .await;
        status
    }
}

/// The line via-math says once the server routes `math.sum` to it.
const SERVING: &str = "via-math: serving math.sum";

/// Our client on the server (WebSocket, or TCP with NATS_WS_TEST_TRANSPORT=tcp), bounded.
async fn connect(server: &TestServer) -> Client {
    within(
        5,
        "our client to connect",
        nats_ws::connect(nats_ws::Options::new(server.url())),
    )
    .await
    .expect("our client connects")
}

async fn request(client: &Client, payload: &[u8]) -> Result<Message, RequestError> {
    client
        .request_with(math::SUBJECT, None, payload, REQUEST_TIMEOUT)
        .await
}

/// The sum in a `math.sum` reply, checking it is not an error reply.
fn sum_of(reply: &Message) -> f64 {
    let error = reply.headers.as_ref().and_then(|h| h.get(ERROR_HEADER));
    assert_eq!(error, None, "an error reply: {reply:?}");
    let reply: SumReply = serde_json::from_slice(&reply.payload)
        .unwrap_or_else(|e| panic!("reply {:?}: {e}", reply.text()));
    reply.sum
}

#[tokio::test]
async fn via_math_answers_sums_and_errors_is_discoverable_and_leaves_cleanly() {
    let server = TestServer::start();
    let mut via_math = Program::math(&server.client_url());
    via_math.said(SERVING).await;
    let client = connect(&server).await;

    // 100 random pairs at once, each answered with its exact sum (a seed to replay a failure).
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let pairs: Vec<(f64, f64)> = (0..100)
        .map(|i| match i % 3 {
            0 => (rng.f64() * 2e6 - 1e6, rng.f64() * 2e6 - 1e6),
            1 => (f64::from(rng.i32(..)), f64::from(rng.i32(..))),
            _ => (rng.f64(), -rng.f64() * 1e-9),
        })
        .collect();
    let replies = futures::future::join_all(pairs.iter().map(|&(x, y)| {
        let client = client.clone();
        async move {
            let body = serde_json::to_vec(&math::SumRequest { x, y }).expect("json");
            request(&client, &body).await
        }
    }))
    .await;
    for (&(x, y), reply) in pairs.iter().zip(replies) {
        let reply = reply.unwrap_or_else(|e| panic!("seed {seed}: {x} + {y}: {e}"));
        assert_eq!(sum_of(&reply), x + y, "seed {seed}: {x} + {y}");
    }

    // What is not a pair of numbers gets a service error, and the service goes on.
    for (bad, says) in [
        (&br#"{"x": 1"#[..], "bad request"),
        (br#"{"x": 1e308, "y": 1e308}"#, "not a finite number"),
    ] {
        let reply = request(&client, bad).await.expect("an error reply");
        let headers = reply.headers.as_ref().expect("error headers");
        assert_eq!(headers.get(ERROR_CODE_HEADER), Some("400"), "{reply:?}");
        let error = headers.get(ERROR_HEADER).unwrap_or_default();
        assert!(error.contains(says), "{error:?} should say {says:?}");
    }
    let reply = request(&client, br#"{"x": 40, "y": 2}"#)
        .await
        .expect("still answering");
    assert_eq!(sum_of(&reply), 42.0);

    // Discoverable: INFO lists the endpoint, STATS counts what it answered.
    let info = client
        .request("$SRV.INFO.math", "")
        .await
        .expect("$SRV.INFO.math");
    let info: Value = serde_json::from_slice(&info.payload).expect("INFO json");
    assert_eq!(info["name"], math::SERVICE);
    assert_eq!(info["version"], math::VERSION);
    assert_eq!(info["description"], math::DESCRIPTION);
    let endpoints = info["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1, "{info}");
    assert_eq!(endpoints[0]["name"], math::ENDPOINT);
    assert_eq!(endpoints[0]["subject"], math::SUBJECT);
    assert_eq!(endpoints[0]["queue_group"], "q");
    // Its example request (what the console's call form opens with) is one it answers.
    let example = endpoints[0]["metadata"]["example"]
        .as_str()
        .expect("an example");
    let reply = client
        .request(math::SUBJECT, example.to_owned())
        .await
        .expect("the example answered");
    assert_eq!(sum_of(&reply), 5.0);
    let stats = client
        .request("$SRV.STATS.math", "")
        .await
        .expect("$SRV.STATS.math");
    let stats: Value = serde_json::from_slice(&stats.payload).expect("STATS json");
    assert_eq!(stats["endpoints"][0]["num_requests"], 104, "{stats}");
    assert_eq!(stats["endpoints"][0]["num_errors"], 2, "{stats}");

    // SIGTERM: drained and gone, exit 0; then nobody answers, and the request says so at once.
    via_math.terminate().await;
    assert!(
        via_math.stderr().contains("via-math: stopped"),
        "{}",
        via_math.stderr()
    );
    let asked = Instant::now();
    let refused = request(&client, br#"{"x": 1, "y": 2}"#).await;
    assert!(
        matches!(refused, Err(RequestError::NoResponders { .. })),
        "{refused:?}"
    );
    assert!(
        asked.elapsed() < REQUEST_TIMEOUT / 5,
        "no responders took {:?}",
        asked.elapsed()
    );
}

/// A nats-py peer: one request per argument after the url, the replies (text and headers) as one
/// JSON list.
const PY_PEER: &str = r#"
import asyncio, json, sys
import nats

async def main():
    nc = await nats.connect(sys.argv[1])
    replies = []
    for payload in sys.argv[2:]:
        msg = await nc.request("math.sum", payload.encode(), timeout=5)
        replies.append({"data": msg.data.decode(), "headers": msg.headers or {}})
    await nc.close()
    print(json.dumps(replies))

asyncio.run(main())
"#;

#[tokio::test]
async fn via_math_answers_a_nats_py_peer() {
    let server = TestServer::start();
    let mut via_math = Program::math(&server.client_url());
    via_math.said(SERVING).await;
    let output = within(
        30,
        "the nats-py peer",
        Command::new("python3")
            .args(["-c", PY_PEER, &server.client_url()])
            .args([
                r#"{"x": 0.1, "y": 0.2}"#,
                r#"{"x": "1", "y": 2}"#,
                r#"{"x": -1, "y": 1}"#,
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 (scripts/setup.sh installs nats-py)");
    assert!(
        output.status.success(),
        "nats-py peer: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let replies: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "peer printed {:?}: {e}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    let data = |i: usize| -> SumReply {
        serde_json::from_str(replies[i]["data"].as_str().expect("data")).expect("a sum")
    };
    assert_eq!(data(0).sum, 0.1 + 0.2);
    assert_eq!(replies[1]["headers"][ERROR_CODE_HEADER], "400", "{replies}");
    assert_eq!(replies[1]["data"], "");
    assert_eq!(data(2).sum, 0.0);
    via_math.terminate().await;
}

#[tokio::test]
async fn via_sensor_publishes_over_mqtt_what_it_prints() {
    let server = TestServer::start_with_options(ServerOptions {
        mqtt: true,
        ..ServerOptions::default()
    });
    let client = connect(&server).await;
    let mut readings = client.subscribe(sensor::NATS_SUBJECT).expect("subscribe");
    client.flush().await.expect("flush");

    let started = Instant::now();
    let mut via_sensor = Program::sensor(
        &server.mqtt_url(),
        &["--count", "3", "--every-ms", "200", "--seed", "7"],
    );
    let mut printed = Vec::new();
    while let Some(line) = via_sensor.line().await {
        printed.push(line);
    }
    via_sensor.exits_cleanly().await;
    // The seeded series from its first step, one reading every 200 ms.
    let expected: Vec<String> = (0..3)
        .map(|n| sensor::payload(sensor::simulated(7, n)))
        .collect();
    assert_eq!(printed, expected, "stderr:\n{}", via_sensor.stderr());
    assert!(started.elapsed() >= Duration::from_millis(400));

    for line in &printed {
        let message = within(5, "a reading on device.temp", readings.next())
            .await
            .expect("subscription open")
            .expect("a message");
        assert_eq!(message.subject, sensor::NATS_SUBJECT);
        assert_eq!(message.text(), Some(line.as_str()));
        // nats-server marks what comes from MQTT, with the QoS it was published at.
        let qos = message.headers.as_ref().and_then(|h| h.get("Nmqtt-Pub"));
        assert_eq!(qos, Some("0"), "{message:?}");
        let reading = sensor::parse(&message.payload).expect("a reading");
        assert_eq!(Some(reading), sensor::parse(line.as_bytes()));
    }
}

#[tokio::test]
async fn via_sensor_says_when_nothing_answers_mqtt_and_leaves_on_sigterm() {
    let (_held, port) = test_support::refusing_port();
    let mut via_sensor = Program::sensor(&format!("mqtt://127.0.0.1:{port}"), &[]);
    let said = via_sensor
        .said(&format!("nothing answers MQTT on 127.0.0.1:{port}"))
        .await;
    assert!(
        said.ends_with(&format!(
            "is nats-server's mqtt listener on (nats-server.conf `mqtt {{ port: {port} }}`)?"
        )),
        "{said}"
    );
    via_sensor.terminate().await;
    assert_eq!(via_sensor.line().await, None, "printed a reading");
}

#[tokio::test]
async fn both_come_back_after_a_server_restart() {
    let mut server = TestServer::start_with_options(ServerOptions {
        mqtt: true,
        ..ServerOptions::default()
    });
    let mut via_math = Program::math(&server.client_url());
    let mut via_sensor = Program::sensor(&server.mqtt_url(), &["--every-ms", "100"]);
    via_math.said(SERVING).await;
    via_sensor.said("via-sensor: connected").await;
    {
        let client = connect(&server).await;
        let reply = request(&client, br#"{"x": 1, "y": 2}"#).await.expect("sum");
        assert_eq!(sum_of(&reply), 3.0);
        client.close();
    }

    server.stop();
    via_math.said("; reconnecting").await;
    via_sensor.said("via-sensor: lost").await;
    server.start_again();
    via_math.said(SERVING).await;
    via_sensor.said("via-sensor: connected").await;

    // A new client, so what it gets was sent after the restart.
    let client = connect(&server).await;
    let mut readings = client.subscribe(sensor::NATS_SUBJECT).expect("subscribe");
    client.flush().await.expect("flush");
    let reply = request(&client, br#"{"x": 2.5, "y": 0.25}"#)
        .await
        .expect("a sum after the restart");
    assert_eq!(sum_of(&reply), 2.75);
    let message = within(5, "a reading after the restart", readings.next())
        .await
        .expect("subscription open")
        .expect("a message");
    assert!(sensor::parse(&message.payload).is_some(), "{message:?}");

    via_math.terminate().await;
    via_sensor.terminate().await;
}

/// A login the server refuses is not retried for ever: refused twice in a row for the same
/// reason (as nats.go gives up on the same authorization error twice from a server), via-sensor
/// says why and exits failing, so via-agent's restart backoff (up to 30 s) paces the next tries
/// and its process list shows the failure. Before, it retried every 2 s for as long as it ran.
#[tokio::test]
async fn via_sensor_leaves_when_its_login_is_refused_twice() {
    let server = TestServer::start_with_options(ServerOptions {
        mqtt: true,
        extra_config: "authorization {\n  users = [{user: sensor, password: right-one}]\n}\n",
        ..ServerOptions::default()
    });
    let mut via_sensor = Program::start_with_env(
        "via-sensor",
        env!("CARGO_BIN_EXE_via-sensor"),
        &["--url", &server.mqtt_url()],
        &[("NATS_SENSOR_PASSWORD", "wrong-one")],
    );
    let status = via_sensor.exits().await;
    let said = via_sensor.stderr();
    assert!(!status.success(), "exited with {status}; it said:\n{said}");
    let url = server.mqtt_url();
    assert!(
        said.contains(&format!(
            "{url} refused the login as sensor 2 times in a row: not authorized (its password \
             comes from $NATS_SENSOR_PASSWORD"
        )),
        "{said}"
    );
    assert!(
        !said.contains("wrong-one"),
        "the password was printed:\n{said}"
    );
    assert_eq!(via_sensor.line().await, None, "printed a reading");
}

/// Arguments that would make it run for nothing are refused before it connects (before,
/// `--count 0` never sent a reading and never exited).
#[tokio::test]
async fn via_sensor_refuses_a_count_of_zero() {
    let output = within(
        10,
        "via-sensor --count 0",
        Command::new(env!("CARGO_BIN_EXE_via-sensor"))
            .args(["--count", "0", "--url", "mqtt://127.0.0.1:9"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("run via-sensor");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("--count must be at least 1"), "{said}");
}
