//! The nats-server processes (native only).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What nats-server logs once every listener is up (2.9 and later).
const READY: &str = "Server is ready";

/// A port that refuses connections for as long as the returned socket lives: bound, never
/// listening. (A port merely freed, as [`free_port`] gives, can be taken meanwhile by a server
/// another test starts: a clean-clone run once met a reset there instead of a refusal.)
pub fn refusing_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("a port");
    let port = socket.local_addr().expect("its address").port();
    (socket, port)
}

/// The nats-server the tests run: `$NATS_SERVER_BIN` when set (`./test.sh` runs the server-backed
/// suites once with Debian's 2.9.10 and once with the current release in `.tools/`), otherwise
/// `nats-server` from `PATH`, `/usr/sbin` or `/usr/local/bin`. Read at run time, so switching
/// servers never recompiles a test.
pub fn nats_server_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "NATS_SERVER_BIN={} is not a file (scripts/setup.sh installs the current release in .tools/)",
            bin.display()
        );
        return bin;
    }
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/local/bin"])
    {
        let candidate = PathBuf::from(dir).join("nats-server");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "nats-server not found: run ./test.sh (it installs it) or `apt-get install nats-server`"
    );
}

/// The version of the server the tests run, e.g. `(2, 9, 10)`, from `nats-server --version`
/// (asked once per test binary). For assertions that differ between server versions.
pub fn nats_server_version() -> (u32, u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let bin = nats_server_binary();
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{} --version: {e}", bin.display()));
        // "nats-server: v2.9.10"
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let parsed = text.trim().rsplit('v').next().map(|v| {
            v.split(['.', '-'])
                .map(|n| n.parse::<u32>())
                .collect::<Vec<_>>()
        });
        match parsed.as_deref() {
            Some([Ok(a), Ok(b), Ok(c), ..]) => (*a, *b, *c),
            _ => panic!("{} --version said {text:?}", bin.display()),
        }
    })
}

/// How [`TestServer::start_with_options`] configures the server; the default is what
/// [`TestServer::start`] runs.
#[derive(Clone, Debug)]
pub struct ServerOptions<'a> {
    /// `server_name` (what INFO reports).
    pub server_name: &'a str,
    /// Configuration appended as is (e.g. `max_payload`, `authorization`).
    pub extra_config: &'a str,
    /// A `leafnodes` listener on a free port ([`TestServer::leaf_port`]).
    pub leafnodes: bool,
    /// An `mqtt` listener on a free port ([`TestServer::mqtt_port`]); MQTT needs the
    /// `server_name` and JetStream every test server has.
    pub mqtt: bool,
}

impl Default for ServerOptions<'_> {
    fn default() -> Self {
        ServerOptions {
            server_name: "nats-ws-test",
            extra_config: "",
            leafnodes: false,
            mqtt: false,
        }
    }
}

pub struct TestServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub client_port: u16,
    pub ws_port: u16,
    pub http_port: u16,
    /// The leafnodes listener, when [`ServerOptions::leafnodes`] asked for one.
    pub leaf_port: Option<u16>,
    /// The MQTT listener, when [`ServerOptions::mqtt`] asked for one.
    pub mqtt_port: Option<u16>,
}

impl TestServer {
    /// A server with WebSocket and JetStream enabled.
    pub fn start() -> Self {
        Self::start_with_options(ServerOptions::default())
    }

    /// A server with extra configuration appended (e.g. `max_payload`, `authorization`).
    pub fn start_with(extra_config: &str) -> Self {
        Self::start_with_options(ServerOptions {
            extra_config,
            ..ServerOptions::default()
        })
    }

    /// A server with WebSocket and JetStream enabled, configured by `options`.
    ///
    /// Ports are picked free, then released for the server to take; another process can grab one
    /// in between, so a server that exits at once is started again on new ports.
    pub fn start_with_options(options: ServerOptions<'_>) -> Self {
        let mut last_log = String::new();
        for _ in 0..5 {
            match Self::try_start_with_options(options.clone()) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("nats-server did not start after 5 tries: {last_log}");
    }

    /// One try of [`Self::start_with_options`], on ports picked free now: the server's log when
    /// it did not start (a port taken meanwhile, say). For servers whose configuration names
    /// ports of its own (a cluster's routes): the caller picks new ones and tries again.
    pub fn try_start_with_options(options: ServerOptions<'_>) -> Result<Self, String> {
        let ServerOptions {
            server_name,
            extra_config,
            leafnodes,
            mqtt,
        } = options;
        let dir = tempfile::tempdir().expect("temp dir");
        let (client_port, ws_port, http_port) = (free_port(), free_port(), free_port());
        let leaf_port = leafnodes.then(free_port);
        let leafnodes_config = leaf_port
            .map(|port| format!("leafnodes {{\n  host: 127.0.0.1\n  port: {port}\n}}\n"))
            .unwrap_or_default();
        let mqtt_port = mqtt.then(free_port);
        let mqtt_config = mqtt_port
            .map(|port| format!("mqtt {{\n  host: 127.0.0.1\n  port: {port}\n}}\n"))
            .unwrap_or_default();
        let listeners = leafnodes_config + &mqtt_config;
        let config = format!(
            "server_name: {server_name}\nhost: 127.0.0.1\nport: {client_port}\nhttp: 127.0.0.1:{http_port}\n\
             websocket {{\n  host: 127.0.0.1\n  port: {ws_port}\n  no_tls: true\n}}\n\
             jetstream {{\n  store_dir: \"{}\"\n}}\n{listeners}{extra_config}\n",
            dir.path().join("store").display()
        );
        std::fs::File::create(dir.path().join("nats-server.conf"))
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .expect("write config");
        let mut server = TestServer {
            child: None,
            dir,
            client_port,
            ws_port,
            http_port,
            leaf_port,
            mqtt_port,
        };
        if server.run() {
            return Ok(server);
        }
        Err(server.log())
    }

    /// The url our client connects to: the WebSocket port, or the client port (`nats://`, plain
    /// TCP) when `NATS_WS_TEST_TRANSPORT=tcp` — test.sh runs the server-backed suites both ways.
    pub fn url(&self) -> String {
        match std::env::var("NATS_WS_TEST_TRANSPORT").as_deref() {
            Ok("tcp") => self.client_url(),
            Ok("ws") | Err(_) => self.ws_url(),
            Ok(other) => panic!("NATS_WS_TEST_TRANSPORT={other:?}: use ws or tcp"),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port)
    }

    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// `mqtt://127.0.0.1:<port>` of the MQTT listener; panics unless [`ServerOptions::mqtt`]
    /// asked for one.
    pub fn mqtt_url(&self) -> String {
        let port = self
            .mqtt_port
            .expect("no mqtt listener: start the server with ServerOptions { mqtt: true, .. }");
        format!("mqtt://127.0.0.1:{port}")
    }

    /// Starts the process and waits (bounded) until every listener accepts connections and it
    /// says it is ready; `false` if it exited first (e.g. a port was taken: a connection to that
    /// port then reaches whatever took it, so the ports alone do not tell).
    fn run(&mut self) -> bool {
        let ready_before = self.log().matches(READY).count();
        // Appended to: after `start_again`, a failing test shows both runs.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats-server.log"))
            .expect("log file");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(self.dir.path().join("nats-server.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let ports = [self.client_port, self.ws_port, self.http_port];
        for port in ports
            .into_iter()
            .chain(self.leaf_port)
            .chain(self.mqtt_port)
        {
            if !self.until(deadline, "nats-server did not start", |_| {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            }) {
                return false;
            }
        }
        // Said once every listener is up, after any refused bind would have ended it.
        self.until(deadline, "nats-server did not say it was ready", |server| {
            server.log().matches(READY).count() > ready_before
        })
    }

    /// Polls `up` until it holds (`true`), or the process exits (`false`, the child forgotten);
    /// past `deadline`, fails the test with `what` and the log.
    fn until(&mut self, deadline: Instant, what: &str, up: impl Fn(&Self) -> bool) -> bool {
        while !up(self) {
            if self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
            {
                self.child = None;
                return false;
            }
            assert!(Instant::now() < deadline, "{what}: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// The configuration file: a test may change it between [`Self::stop`] and
    /// [`Self::start_again`] (a server restarted without JetStream, say).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.conf")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats-server.log")).unwrap_or_default()
    }

    /// Stops the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports with the same store (retrying briefly if a port is still
    /// held by something else).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server still running");
        for _ in 0..20 {
            if self.run() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "nats-server did not start again on its ports: {}",
            self.log()
        );
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        // A failing test shows what the server said (its temp dir is deleted right after).
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- the last {} lines of the log of {} ---\n{}",
                tail.len(),
                nats_server_binary().display(),
                tail.join("\n")
            );
        }
    }
}

/// Awaits `fut` for at most `secs` seconds, failing the test with `what` otherwise.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s waiting for {what}"),
    }
}

/// A TCP relay in front of a server whose answers can be held back: while held, what the client
/// sends still reaches the server (a write is stored), but nothing the server sends reaches the
/// client until [`LateAnswers::release`]: answers that come after the client stopped waiting.
pub struct LateAnswers {
    port: u16,
    held: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    /// Bytes that, once a client sends them, hold what the server sends from then on.
    trigger: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl LateAnswers {
    /// Relays every connection made to [`LateAnswers::url`] to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> LateAnswers {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the relay");
        let port = listener.local_addr().expect("its address").port();
        let held = std::sync::Arc::new(tokio::sync::watch::channel(false).0);
        let trigger = std::sync::Arc::new(std::sync::Mutex::new(None::<Vec<u8>>));
        let upstream = upstream.to_owned();
        let (relay_held, relay_trigger) = (held.clone(), trigger.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                tokio::spawn(relay(
                    client,
                    server,
                    relay_held.clone(),
                    relay_trigger.clone(),
                ));
            }
        });
        LateAnswers {
            port,
            held,
            trigger,
            accepting,
        }
    }

    /// `nats://` to the relay.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// From now on the server's bytes wait.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    /// Holds the server's bytes from the moment a client sends `needle` (which still reaches the
    /// server): the answer to that request, and everything after it, wait. The needle is looked
    /// for within each read of the client's bytes, so keep it short (a subject, not a payload).
    pub fn hold_after(&self, needle: &str) {
        *self.trigger.lock().unwrap_or_else(|e| e.into_inner()) = Some(needle.as_bytes().to_vec());
    }

    /// Resolves once the server's bytes are held ([`LateAnswers::hold`], or the needle of
    /// [`LateAnswers::hold_after`] sent).
    pub async fn triggered(&self) {
        let _ = self.held.subscribe().wait_for(|held| *held).await;
    }

    /// What waited goes on, and what follows.
    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

/// One relayed connection, until either side closes it.
async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    held: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    trigger: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let mut holding = held.subscribe();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from_client.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            {
                let mut trigger = trigger.lock().unwrap_or_else(|e| e.into_inner());
                let sent = &buf[..n];
                if trigger
                    .as_ref()
                    .is_some_and(|needle| sent.windows(needle.len()).any(|w| w == needle))
                {
                    *trigger = None;
                    held.send_replace(true);
                }
            }
            to_server.write_all(&buf[..n]).await?;
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from_server.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            // Kept while held: the order stays as the server sent it.
            if holding.wait_for(|held| !held).await.is_err() {
                return Ok(());
            }
            to_client.write_all(&buf[..n]).await?;
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

impl Drop for LateAnswers {
    fn drop(&mut self) {
        self.accepting.abort();
        self.release();
    }
}
