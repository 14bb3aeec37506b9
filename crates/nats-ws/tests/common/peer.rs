//! Helpers shared by the interop tests with nats-py (`interop.rs`, `interop_js.rs`): payloads and
//! headers in the shapes both sides print and compare.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nats_ws::HeaderMap;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::TestServer;

/// Seconds any one step of an interop test may take.
pub const STEP: u64 = 5;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A payload of every byte value, CR LF, and bytes that look like protocol.
pub fn binary_payload(tag: u8) -> Vec<u8> {
    let mut p = vec![tag];
    p.extend(0..=255u8);
    p.extend_from_slice(b"\r\nPUB x 1\r\n\r\nHMSG\0\xff\xfe");
    p.extend_from_slice("ünïcødé ✓ 世界".as_bytes());
    p
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

pub fn header_map(list: &[(&str, &str)]) -> HeaderMap {
    list.iter().copied().collect()
}

/// Our headers as an ordered list of pairs (names as received).
pub fn our_headers(headers: Option<&HeaderMap>) -> Option<Vec<(String, String)>> {
    headers.map(|h| {
        h.iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    })
}

/// Headers as the peer's JSON spec takes them: `[[name, value], …]`, or null for none.
pub fn spec_headers(list: Option<&[(&str, &str)]>) -> Value {
    match list {
        None => Value::Null,
        Some(list) => Value::Array(list.iter().map(|(n, v)| json!([n, v])).collect()),
    }
}

/// A running nats-py peer (`tests/interop_peer.py`): spec in on stdin, JSON lines out. Killed
/// when dropped.
pub struct Peer {
    what: String,
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Option<JoinHandle<String>>,
}

impl Peer {
    /// Starts `interop_peer.py <command> --subject <label> [extra args]` and hands it `spec` on
    /// stdin; `label` also names the peer in failures.
    pub async fn start(
        command: &str,
        server: &TestServer,
        label: &str,
        extra: &[&str],
        spec: Value,
    ) -> Peer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("interop_peer.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(command)
            .args(["--server", &server.client_url()])
            .args(["--subject", label])
            .args(extra)
            .args(["--timeout", &STEP.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start python3 (nats-py peer)");
        let mut stdin = child.stdin.take().expect("peer stdin");
        let stdout = BufReader::new(child.stdout.take().expect("peer stdout")).lines();
        let mut stderr_pipe = child.stderr.take().expect("peer stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            text
        });
        let mut peer = Peer {
            what: format!("{command} {label}"),
            child,
            stdout,
            stderr: Some(stderr),
        };
        let mut line = serde_json::to_vec(&spec).expect("spec as JSON");
        line.push(b'\n');
        let written = tokio::time::timeout(Duration::from_secs(STEP), async {
            stdin.write_all(&line).await?;
            stdin.shutdown().await
        })
        .await;
        drop(stdin);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{}", peer.failure(&format!("writing its spec: {e}")).await),
            Err(_) => panic!("{}", peer.failure("writing its spec timed out").await),
        }
        peer
    }

    /// Kills the peer and describes what went wrong, with its stderr.
    pub async fn failure(&mut self, why: &str) -> String {
        let _ = self.child.start_kill();
        let status = tokio::time::timeout(Duration::from_secs(STEP), self.child.wait()).await;
        let stderr = match self.stderr.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(STEP), task)
                .await
                .map(|r| r.unwrap_or_default())
                .unwrap_or_else(|_| "(stderr not readable)".into()),
            None => String::new(),
        };
        format!(
            "nats-py peer `{}`: {why} (exit: {status:?})\n--- peer stderr ---\n{stderr}",
            self.what
        )
    }

    pub async fn line(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(STEP), self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!("{}", self.failure("its stdout ended early").await),
            Ok(Err(e)) => panic!(
                "{}",
                self.failure(&format!("reading its stdout: {e}")).await
            ),
            Err(_) => panic!(
                "{}",
                self.failure(&format!("no line within {STEP} s")).await
            ),
        }
    }

    pub async fn expect_line(&mut self, want: &str) {
        let line = self.line().await;
        if line != want {
            panic!(
                "{}",
                self.failure(&format!("expected `{want}`, got `{line:.300}`"))
                    .await
            );
        }
    }

    pub async fn json(&mut self) -> Value {
        let line = self.line().await;
        match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => panic!(
                "{}",
                self.failure(&format!("printed invalid JSON ({e}): `{line:.300}`"))
                    .await
            ),
        }
    }

    /// The next line must be exactly this JSON value.
    pub async fn expect_json(&mut self, want: Value) {
        let got = self.json().await;
        assert_eq!(got, want, "nats-py peer `{}` printed", self.what);
    }

    /// Waits for the peer to exit and checks it succeeded without printing anything more.
    pub async fn finish(mut self) {
        let extra = tokio::time::timeout(Duration::from_secs(STEP), self.stdout.next_line()).await;
        match extra {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(line))) => panic!(
                "{}",
                self.failure(&format!("unexpected extra output `{line:.300}`"))
                    .await
            ),
            Ok(Err(e)) => panic!(
                "{}",
                self.failure(&format!("reading its stdout: {e}")).await
            ),
            Err(_) => panic!("{}", self.failure("did not exit").await),
        }
        match tokio::time::timeout(Duration::from_secs(STEP), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            other => {
                let why = format!("exited badly: {other:?}");
                panic!("{}", self.failure(&why).await)
            }
        }
    }
}
