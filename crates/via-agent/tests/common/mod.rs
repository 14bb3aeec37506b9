//! The agent run as its built binary against a real nats-server per test (`test-support`'s
//! [`TestServer`], with a leafnodes listener: the hub), and the helpers its tests call.

#![allow(dead_code)] // Each test file uses a different part.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

pub use test_support::{nats_server_binary, refusing_port, within, TestServer};

/// The hub the agent joins: a server with a leafnodes listener, named so that a leaf cannot take
/// its name. Our clients and the agent reach it over TCP ([`TestServer::client_url`]).
pub fn start_hub() -> TestServer {
    TestServer::start_with_options(test_support::ServerOptions {
        server_name: "via-agent-test-hub",
        leafnodes: true,
        ..Default::default()
    })
}

/// The hub's leafnodes listener.
fn hub_leaf_port(server: &TestServer) -> u16 {
    server
        .leaf_port
        .expect("a hub with a leafnodes listener (start_hub)")
}

/// The hub's monitoring endpoints.
pub trait HubMonitoring {
    /// The hub's /leafz, parsed.
    fn leafz(&self) -> Value;
}

impl HubMonitoring for TestServer {
    fn leafz(&self) -> Value {
        use std::io::Read;
        let mut s = TcpStream::connect(("127.0.0.1", self.http_port)).expect("monitoring port");
        s.write_all(b"GET /leafz HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        let json = &body[body.find("\r\n\r\n").expect("http answer") + 4..];
        serde_json::from_str(json).expect("leafz json")
    }
}

/// The agent binary with a config written into its own temp dir (data dir there too).
pub struct Agent {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// The read end of the agent's stderr when it goes to a pipe ([`Agent::start_with_stderr_pipe`]).
    pub stderr: Option<std::process::ChildStderr>,
}

impl Agent {
    /// `body` is the config after `[agent]`'s generated lines (more agent keys, then processes).
    pub fn start(server: &TestServer, agent_keys: &str, processes: &str) -> Agent {
        Agent::start_with_leaf_port(server, hub_leaf_port(server), agent_keys, processes)
    }

    /// [`Agent::start`] with leaves pointed at `leaf_port` instead of the hub's.
    pub fn start_with_leaf_port(
        server: &TestServer,
        leaf_port: u16,
        agent_keys: &str,
        processes: &str,
    ) -> Agent {
        Agent::spawn(server, leaf_port, agent_keys, processes, false)
    }

    /// [`Agent::start`] with its stderr into a pipe that only the test reads, or not ([`Agent::stderr`]).
    pub fn start_with_stderr_pipe(server: &TestServer, processes: &str) -> Agent {
        Agent::spawn(server, hub_leaf_port(server), "", processes, true)
    }

    fn spawn(
        server: &TestServer,
        leaf_port: u16,
        agent_keys: &str,
        processes: &str,
        stderr_pipe: bool,
    ) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        // The hub's monitoring, unless `agent_keys` names another.
        let monitoring = match agent_keys.contains("hub_monitoring_url") {
            true => String::new(),
            false => format!(
                "hub_monitoring_url = \"http://127.0.0.1:{}\"\n",
                server.http_port
            ),
        };
        let config = format!(
            "[agent]\nnats_url = \"{}\"\nhub_leafnode_port = {}\n{monitoring}\
             nats_server = \"{}\"\ndata_dir = \"data\"\n{agent_keys}\n{processes}\n",
            server.client_url(),
            leaf_port,
            nats_server_binary().display(),
        );
        std::fs::write(dir.path().join("via-agent.toml"), config).expect("config");
        let mut child = Agent::launch(dir.path(), stderr_pipe);
        Agent {
            stderr: child.stderr.take(),
            child: Some(child),
            dir,
        }
    }

    /// Starts via-agent again on the same configuration and data directory, once this one has
    /// exited (see [`Agent::wait`]); its output goes on in the same log.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the agent is still running");
        self.child = Some(Agent::launch(self.dir.path(), false));
    }

    fn launch(dir: &std::path::Path, stderr_pipe: bool) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .expect("log");
        use std::os::unix::process::CommandExt;
        let stderr = if stderr_pipe {
            Stdio::piped()
        } else {
            Stdio::from(log.try_clone().expect("log"))
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_via-agent"));
        // With SIGINT ignored, as a shell's background job (`&` without job control) starts it:
        // the agent must be stoppable whatever it inherits, the tests whatever runs them.
        // SAFETY: signal() is async-signal-safe, as what runs between fork and exec must be.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            })
        };
        command
            // Its own group, like a shell job: a test can Ctrl-C it (SIGINT to the group).
            .process_group(0)
            .arg("--config")
            .arg(dir.join("via-agent.toml"))
            .env_remove("VIA_NATS_URL")
            .env_remove("NATS_SERVER_BIN")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .expect("start via-agent")
    }

    /// Waits (bounded) until this agent has taken its data directory's lock: its pid is the
    /// lock's last line, written once it runs its own `main` (signals at their defaults) and
    /// before it ends a killed agent's leftovers.
    pub async fn holds_the_lock(&self) {
        let lock = self.dir.path().join("data/via-agent.lock");
        let pid = self.pid().to_string();
        until(10, "the agent to take its lock", || async {
            let text = std::fs::read_to_string(&lock).ok()?;
            (text.lines().last()?.trim() == pid).then_some(())
        })
        .await;
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(self.pid() as i32, signal) };
    }

    /// What a Ctrl-C at the terminal does: SIGINT to the agent's whole process group.
    pub fn ctrl_c(&self) {
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe { libc::killpg(self.pid() as i32, libc::SIGINT) };
    }

    /// Waits (bounded) for the agent to exit.
    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log());
        }
    }
}

pub async fn connect(url: String) -> nats_ws::Client {
    let options = nats_ws::Options::new(url).reconnect(nats_ws::ReconnectPolicy {
        initial_delay: Duration::from_millis(100),
        factor: 1.5,
        max_delay: Duration::from_millis(500),
        max_attempts: None,
        jitter: Duration::from_millis(20),
    });
    within(5, "a client to connect", nats_ws::connect(options))
        .await
        .expect("connects")
}

/// A request's outcome: the reply JSON, or the error code (header) and error body.
pub async fn call(
    client: &nats_ws::Client,
    subject: &str,
    body: &str,
) -> Result<Value, (u16, Value)> {
    call_with_timeout(client, subject, body, 5).await
}

/// [`call`] with a request timeout of `secs`.
pub async fn call_with_timeout(
    client: &nats_ws::Client,
    subject: &str,
    body: &str,
    secs: u64,
) -> Result<Value, (u16, Value)> {
    let msg = client
        .request_with(subject, None, body.as_bytes(), Duration::from_secs(secs))
        .await
        .unwrap_or_else(|e| panic!("request {subject} {body}: {e}"));
    let json: Value = serde_json::from_slice(&msg.payload)
        .unwrap_or_else(|e| panic!("reply to {subject} is not JSON ({e}): {:?}", msg.payload));
    match msg
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Service-Error-Code"))
    {
        Some(code) => {
            let code: u16 = code.parse().expect("numeric error code");
            assert!(msg
                .headers
                .as_ref()
                .unwrap()
                .get("Nats-Service-Error")
                .is_some());
            assert_eq!(json["code"], code, "body code = header code");
            assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()));
            Err((code, json))
        }
        None => Ok(json),
    }
}

/// Waits until the agent answers `via.proc.list` (no responders until its service is up).
pub async fn ready(client: &nats_ws::Client) -> Value {
    within(15, "the agent's service", async {
        loop {
            match client.request("via.proc.list", "{}").await {
                Ok(msg) => return serde_json::from_slice(&msg.payload).expect("list json"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
}

/// Polls `f` every 20 ms until it returns `Some` (bounded by `secs`).
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    within(secs, what, async {
        loop {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

pub fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// The value of `key` in `bucket`, parsed, or `None`.
pub async fn kv_get(client: &nats_ws::Client, bucket: &str, key: &str) -> Option<Value> {
    let store = client.jetstream().key_value(bucket).await.ok()?;
    let entry = store.get(key).await.ok()??;
    serde_json::from_slice(&entry.value).ok()
}

/// Watches `bucket` until `pred` holds for `key`'s value (`None` = deleted); returns it.
pub async fn kv_wait(
    client: &nats_ws::Client,
    bucket: &str,
    key: &str,
    secs: u64,
    pred: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    within(secs, &format!("{bucket}/{key}"), async {
        let store = loop {
            match client.jetstream().key_value(bucket).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let mut watch = store.watch(key).expect("watch");
        let mut current: Option<Value> = None;
        let mut initial_done = false;
        loop {
            if initial_done && pred(current.as_ref()) {
                return current;
            }
            match watch
                .next()
                .await
                .expect("watch ended")
                .expect("watch error")
            {
                nats_ws::kv::WatchEvent::Entry(e) => {
                    current = match e.operation {
                        nats_ws::kv::Operation::Put => serde_json::from_slice(&e.value).ok(),
                        _ => None,
                    };
                }
                nats_ws::kv::WatchEvent::InitialDone => initial_done = true,
                _ => {}
            }
        }
    })
    .await
}
