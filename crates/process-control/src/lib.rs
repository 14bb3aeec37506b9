//! The contract of via-agent's service `process-control`, defined once for both sides: the agent
//! (native) writes it, the app's pages (wasm32) read it. Subjects, bucket names, the registry's
//! timing, requests, replies, and the JSON values: [`ProcessState`] (bucket `processes`),
//! [`RegistryEntry`] (bucket `services_registry`), [`LogLine`] (`proc.logs.<name>`). The prose
//! version is `crates/via-agent/README.md`; the tests here pin the JSON it documents.
//!
//! Writers and readers meet different programs' versions, so the types read leniently and write
//! exactly: every struct has `#[serde(default)]` (a field added or left out never hides a row),
//! and the value enums read a spelling they do not know as `Unknown` — never written by the
//! agent. [`RestartPolicy`] is the exception: the agent's config parses it strictly (a typo in
//! `via-agent.toml` is an error), so only [`ProcessState::restart`] reads an unknown policy
//! leniently, as the default.
//!
//! This crate is serde and pure rules only: no I/O, no clock (callers pass `now_ms`), nothing of
//! NATS, tokio or Leptos. It builds for wasm32 and native.

use serde::{Deserialize, Deserializer, Serialize};

/// The service's name in NATS micro (`$SRV.INFO.process-control`).
pub const SERVICE_NAME: &str = "process-control";

/// The endpoints' subjects.
pub mod subjects {
    pub const LIST: &str = "via.proc.list";
    pub const START: &str = "via.proc.start";
    pub const STOP: &str = "via.proc.stop";
    pub const RESTART: &str = "via.proc.restart";
    pub const KILL: &str = "via.proc.kill";
    pub const LOGS: &str = "via.proc.logs";
    pub const LEAF_ADD: &str = "via.leaf.add";
    pub const LEAF_REMOVE: &str = "via.leaf.remove";
    pub const LEAF_LIST: &str = "via.leaf.list";
}

/// Endpoint names and their subjects, as the contract lists them.
pub const ENDPOINTS: &[(&str, &str)] = &[
    ("list", subjects::LIST),
    ("start", subjects::START),
    ("stop", subjects::STOP),
    ("restart", subjects::RESTART),
    ("kill", subjects::KILL),
    ("logs", subjects::LOGS),
    ("leaf-add", subjects::LEAF_ADD),
    ("leaf-remove", subjects::LEAF_REMOVE),
    ("leaf-list", subjects::LEAF_LIST),
];

/// The endpoint metadata key whose value is an example request (a payload to start from): the
/// console's call form opens with it. A convention of this project's services, not of NATS micro.
pub const EXAMPLE_METADATA: &str = "example";

/// An example request of each endpoint (by name), for [`EXAMPLE_METADATA`]: the shape each
/// request type below reads, with the names to replace in angle brackets (`leaf-add`: `{}`, the
/// next free name).
pub fn example_request(endpoint: &str) -> &'static str {
    match endpoint {
        "start" | "stop" | "restart" | "kill" => r#"{"name": "<process>"}"#,
        "logs" => r#"{"name": "<process>", "lines": 50}"#,
        "leaf-remove" => r#"{"name": "<leaf>"}"#,
        _ => "{}",
    }
}

/// Where a process's output lines are published, one JSON [`LogLine`] each.
pub fn log_subject(process: &str) -> String {
    format!("proc.logs.{process}")
}

/// KV bucket of the processes' states (key = process or leaf name, value [`ProcessState`]). The
/// agent creates it; pages only read it.
pub const PROCESSES_BUCKET: &str = "processes";
/// KV bucket of the service registry (key = service name, value [`RegistryEntry`]).
pub const REGISTRY_BUCKET: &str = "services_registry";
/// The registry's max age, and the age after which readers treat an entry as gone, whatever the
/// bucket still holds.
pub const REGISTRY_TTL_MS: u64 = 15_000;
/// How often a registered entry's `heartbeat_at` is renewed.
pub const HEARTBEAT_MS: u64 = 5_000;
/// The registry key of the agent itself; no process may take it.
pub const AGENT_NAME: &str = "via-agent";

/// Lines a `logs` request gets when it does not say, and the most it can get.
pub const DEFAULT_LOG_LINES: usize = 100;
pub const MAX_LOG_LINES: usize = 1000;

/// Names of processes: a KV key and a subject token (`proc.logs.<name>`) as they are.
pub fn valid_process_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ---- values ----------------------------------------------------------------------------------

/// What a [`ProcessState`] describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Process,
    Leaf,
    /// A kind this side does not know (or none).
    #[default]
    #[serde(other)]
    Unknown,
}

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Starting,
    Stopping,
    Stopped,
    Exited,
    Backoff,
    /// A state this side does not know (or none).
    #[default]
    #[serde(other)]
    Unknown,
}

impl RunState {
    /// The contract's spelling: `running`, `backoff`, … (`unknown` for [`RunState::Unknown`]).
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Starting => "starting",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
            RunState::Exited => "exited",
            RunState::Backoff => "backoff",
            RunState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happens when a process exits on its own. Strict on purpose (no `Unknown`): the agent's
/// config parses it, and every policy it runs must be one it knows. The default is the config's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    Never,
    #[default]
    OnFailure,
    Always,
}

/// A leaf node's ports on 127.0.0.1 and its link to the hub, as the hub's `/leafz` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeafInfo {
    pub name: String,
    pub client_port: u16,
    pub ws_port: u16,
    pub http_port: u16,
    pub connected: bool,
    pub rtt: Option<String>,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// The value of key `<name>` in bucket `processes`. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessState {
    pub name: String,
    pub kind: Kind,
    pub state: RunState,
    pub pid: Option<u32>,
    pub started_at: Option<u64>,
    pub restarts: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub cpu_percent: f64,
    /// The whole process group's.
    pub rss_bytes: u64,
    /// An unknown policy reads as the default.
    #[serde(deserialize_with = "or_default")]
    pub restart: RestartPolicy,
    pub next_restart_at: Option<u64>,
    pub command: String,
    pub args: Vec<String>,
    pub controllable: bool,
    pub updated_at: u64,
    pub host: String,
    /// The service instance id of the agent that runs it.
    pub agent: String,
    pub leaf: Option<LeafInfo>,
}

impl ProcessState {
    pub fn is_leaf(&self) -> bool {
        self.kind == Kind::Leaf
    }

    /// Start makes sense: it is not running nor on its way up or down.
    pub fn can_start(&self) -> bool {
        matches!(
            self.state,
            RunState::Stopped | RunState::Exited | RunState::Backoff
        )
    }

    /// Stop makes sense: it runs, starts, or waits to be restarted.
    pub fn can_stop(&self) -> bool {
        matches!(
            self.state,
            RunState::Running | RunState::Starting | RunState::Backoff
        )
    }

    /// Kill makes sense: there is a process (it runs or starts). Kill is SIGKILL to its whole
    /// group, and it stays down whatever its restart policy, as after a stop.
    pub fn can_kill(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Starting)
    }

    /// Restart makes sense in every state but on the way down.
    pub fn can_restart(&self) -> bool {
        self.state != RunState::Stopping
    }

    /// How long it has been running, for a running process.
    pub fn uptime_ms(&self, now_ms: u64) -> Option<u64> {
        match (self.state, self.started_at) {
            (RunState::Running, Some(at)) => Some(now_ms.saturating_sub(at)),
            _ => None,
        }
    }

    /// "0", "1", "signal 9", or "" when it has not exited yet.
    pub fn exit_text(&self) -> String {
        match (self.exit_code, self.signal) {
            (_, Some(signal)) => format!("signal {signal}"),
            (Some(code), None) => code.to_string(),
            (None, None) => String::new(),
        }
    }

    /// Whether the agent that wrote this entry is still there. `agent_missing`: the agent's
    /// endpoints have no responders. `live_agents`: the agent ids with a fresh registry entry
    /// (`None` while the registry is not known): an entry written by an agent that is no longer
    /// registered is stale, when another one is.
    pub fn is_stale(&self, agent_missing: bool, live_agents: Option<&[String]>) -> bool {
        if agent_missing {
            return true;
        }
        match live_agents {
            Some(ids) if !ids.is_empty() && !self.agent.is_empty() => !ids.contains(&self.agent),
            _ => false,
        }
    }
}

/// The value of key `<name>` in bucket `services_registry`: the agent itself (key
/// [`AGENT_NAME`]), a running process with service tags, or a leaf the hub lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryEntry {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub registered_at: u64,
    pub heartbeat_at: u64,
    pub tags: Vec<String>,
    /// `agent`, `process` or `leaf`.
    pub kind: String,
    /// The service instance id of the agent that wrote it.
    pub agent: String,
}

impl RegistryEntry {
    /// The entry of an agent (rather than of something it runs).
    pub fn is_agent(&self) -> bool {
        self.kind == "agent"
    }

    /// Heartbeat within the TTL. A clock a little ahead on the agent's side counts as fresh.
    pub fn is_alive(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.heartbeat_at) <= REGISTRY_TTL_MS
    }
}

/// Which of a process's outputs a line came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// A stream this side does not know (or none).
    #[default]
    #[serde(other)]
    Unknown,
}

/// One line of a managed process's output, published on [`log_subject`] and kept for `logs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogLine {
    pub ts: u64,
    pub stream: Stream,
    pub line: String,
}

// ---- requests --------------------------------------------------------------------------------

/// `list` and `leaf-list`: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyRequest {}

/// `start`, `stop`, `restart`, `kill` (a process) and `leaf-remove` (a leaf): `{"name": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRequest {
    pub name: String,
}

/// `logs`: `{"name": …, "lines": N}`; without `lines`, [`DEFAULT_LOG_LINES`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<usize>,
}

/// `leaf-add`: `{}` (the agent picks `leaf-<n>`) or `{"name": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafAddRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

// ---- replies ---------------------------------------------------------------------------------

/// `list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListReply {
    pub processes: Vec<ProcessState>,
}

/// `start`, `stop`, `restart`, `kill`. `process` is required: a reply without it is not this reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReply {
    pub process: ProcessState,
}

/// `logs`: the lines oldest first; `truncated`, the oldest were left out to fit the server's
/// max_payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogsReply {
    pub name: String,
    pub lines: Vec<LogLine>,
    pub truncated: bool,
}

/// `leaf-add`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafReply {
    pub leaf: LeafInfo,
}

/// `leaf-remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedReply {
    pub removed: String,
}

/// `leaf-list`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeavesReply {
    pub leaves: Vec<LeafInfo>,
}

/// Reads a `T`, or `T::default()` when the value is of another shape or spelling.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient<T> {
        Known(T),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Lenient::deserialize(deserializer)? {
        Lenient::Known(value) => value,
        Lenient::Other(_) => T::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written() -> ProcessState {
        ProcessState {
            name: "app".into(),
            kind: Kind::Process,
            state: RunState::Backoff,
            pid: None,
            started_at: Some(1),
            restarts: 2,
            exit_code: Some(3),
            signal: None,
            cpu_percent: 1.5,
            rss_bytes: 10,
            restart: RestartPolicy::OnFailure,
            next_restart_at: Some(5),
            command: "trunk".into(),
            args: vec!["serve".into()],
            controllable: true,
            updated_at: 6,
            host: "h".into(),
            agent: "id".into(),
            leaf: None,
        }
    }

    fn leaf_info() -> LeafInfo {
        LeafInfo {
            name: "leaf-2".into(),
            client_port: 1,
            ws_port: 2,
            http_port: 3,
            connected: true,
            rtt: Some("1.2ms".into()),
            in_msgs: 4,
            out_msgs: 5,
            in_bytes: 6,
            out_bytes: 7,
        }
    }

    /// The bytes the agent writes: field names, their order and the values' spellings.
    #[test]
    fn the_agent_writes_the_contract_exactly() {
        assert_eq!(
            serde_json::to_string(&written()).unwrap(),
            r#"{"name":"app","kind":"process","state":"backoff","pid":null,"started_at":1,"restarts":2,"exit_code":3,"signal":null,"cpu_percent":1.5,"rss_bytes":10,"restart":"on-failure","next_restart_at":5,"command":"trunk","args":["serve"],"controllable":true,"updated_at":6,"host":"h","agent":"id","leaf":null}"#
        );
        assert_eq!(
            serde_json::to_string(&leaf_info()).unwrap(),
            r#"{"name":"leaf-2","client_port":1,"ws_port":2,"http_port":3,"connected":true,"rtt":"1.2ms","in_msgs":4,"out_msgs":5,"in_bytes":6,"out_bytes":7}"#
        );
        let entry = RegistryEntry {
            name: "svc".into(),
            host: "h".into(),
            pid: 7,
            registered_at: 1,
            heartbeat_at: 2,
            tags: vec!["service:via/app".into()],
            kind: "process".into(),
            agent: "id".into(),
        };
        assert_eq!(
            serde_json::to_string(&entry).unwrap(),
            r#"{"name":"svc","host":"h","pid":7,"registered_at":1,"heartbeat_at":2,"tags":["service:via/app"],"kind":"process","agent":"id"}"#
        );
        let line = LogLine {
            ts: 1,
            stream: Stream::Stderr,
            line: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"ts":1,"stream":"stderr","line":"x"}"#
        );
        let spell = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        let states = [
            RunState::Running,
            RunState::Starting,
            RunState::Stopping,
            RunState::Stopped,
            RunState::Exited,
            RunState::Backoff,
        ];
        for s in states {
            assert_eq!(spell(json!(s)), s.as_str());
        }
        assert_eq!(
            states.map(RunState::as_str),
            ["running", "starting", "stopping", "stopped", "exited", "backoff"]
        );
        assert_eq!(
            [Kind::Process, Kind::Leaf].map(|k| spell(json!(k))),
            ["process", "leaf"]
        );
        assert_eq!(
            [Stream::Stdout, Stream::Stderr].map(|s| spell(json!(s))),
            ["stdout", "stderr"]
        );
        assert_eq!(
            [
                RestartPolicy::Never,
                RestartPolicy::OnFailure,
                RestartPolicy::Always
            ]
            .map(|p| spell(json!(p))),
            ["never", "on-failure", "always"]
        );
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let mut state = written();
        state.leaf = Some(leaf_info());
        state.kind = Kind::Leaf;
        let back: ProcessState =
            serde_json::from_slice(&serde_json::to_vec(&state).unwrap()).unwrap();
        assert_eq!(back, state);
        let line = LogLine {
            ts: 9,
            stream: Stream::Stdout,
            line: "é\n\"".into(),
        };
        let back: LogLine = serde_json::from_slice(&serde_json::to_vec(&line).unwrap()).unwrap();
        assert_eq!(back, line);
    }

    #[test]
    fn process_state_reads_the_agents_json() {
        let json = br#"{"name":"app","kind":"process","state":"running","pid":1234,"started_at":1000,
            "restarts":2,"exit_code":null,"signal":null,"cpu_percent":1.5,"rss_bytes":123456,
            "restart":"always","next_restart_at":null,"command":"trunk","args":["serve"],
            "controllable":true,"updated_at":5000,"host":"h","agent":"svc1","leaf":null,"later":1}"#;
        let p: ProcessState = serde_json::from_slice(json).unwrap();
        assert_eq!((p.pid, p.restarts, p.rss_bytes), (Some(1234), 2, 123456));
        assert_eq!(p.restart, RestartPolicy::Always);
        assert_eq!(p.uptime_ms(61_000), Some(60_000));
        assert_eq!(p.uptime_ms(0), Some(0), "a clock behind the agent's");
        assert!(p.can_stop() && p.can_restart() && p.can_kill() && !p.can_start());
        // Fields missing: defaults, never a hidden row.
        let p: ProcessState =
            serde_json::from_slice(br#"{"name":"x","state":"exited","exit_code":3}"#).unwrap();
        assert_eq!((p.exit_text(), p.uptime_ms(1)), ("3".to_owned(), None));
        assert!(p.can_start() && !p.can_stop() && !p.can_kill());
        let p: ProcessState =
            serde_json::from_slice(br#"{"name":"x","state":"stopped","signal":9}"#).unwrap();
        assert!(p.can_start() && !p.can_kill());
        assert_eq!(p.exit_text(), "signal 9");
        let leaf: ProcessState = serde_json::from_slice(
            br#"{"name":"leaf-2","kind":"leaf","leaf":{"name":"leaf-2","ws_port":9001,"connected":true,"rtt":"1.2ms","in_msgs":4}}"#,
        )
        .unwrap();
        assert!(leaf.is_leaf());
        let info = leaf.leaf.unwrap();
        assert_eq!(
            (info.ws_port, info.connected, info.in_msgs),
            (9001, true, 4)
        );
        assert_eq!(info.rtt.as_deref(), Some("1.2ms"));
        assert!(serde_json::from_slice::<ProcessState>(b"not json").is_err());
    }

    /// A newer agent's spellings keep the row, as what this side can tell.
    #[test]
    fn unknown_values_keep_the_row() {
        let p: ProcessState = serde_json::from_value(json!({
            "name": "x", "kind": "sidecar", "state": "paused", "restart": "sometimes", "pid": 4
        }))
        .unwrap();
        assert_eq!((p.name.as_str(), p.pid), ("x", Some(4)));
        assert_eq!(
            (p.kind, p.state, p.restart),
            (Kind::Unknown, RunState::Unknown, RestartPolicy::OnFailure)
        );
        assert!(
            !p.is_leaf() && !p.can_start() && !p.can_stop() && !p.can_kill() && p.can_restart()
        );
        assert_eq!(p.uptime_ms(5), None);
        let p: ProcessState = serde_json::from_value(json!({"restart": null})).unwrap();
        assert_eq!(p.restart, RestartPolicy::default());
        let line: LogLine =
            serde_json::from_value(json!({"ts": 1, "stream": "stdtrace", "line": "a"})).unwrap();
        assert_eq!((line.stream, line.line.as_str()), (Stream::Unknown, "a"));
        let r: RegistryEntry =
            serde_json::from_value(json!({"name": "x", "kind": "robot"})).unwrap();
        assert!(!r.is_agent());
        assert_eq!(r.pid, 0);
        // The config's parse stays strict: only the field in ProcessState is lenient.
        assert!(serde_json::from_value::<RestartPolicy>(json!("sometimes")).is_err());
    }

    #[test]
    fn stale_entries() {
        let p = ProcessState {
            agent: "a1".into(),
            ..Default::default()
        };
        assert!(p.is_stale(true, None));
        assert!(!p.is_stale(false, None));
        assert!(!p.is_stale(false, Some(&[])));
        assert!(!p.is_stale(false, Some(&["a1".to_owned()])));
        assert!(p.is_stale(false, Some(&["a2".to_owned()])));
    }

    #[test]
    fn registrations_expire_after_the_ttl() {
        let r: RegistryEntry = serde_json::from_slice(
            br#"{"name":"leaf-2","host":"h","pid":7,"registered_at":0,"heartbeat_at":100000,"tags":["service:via/leaf"],"kind":"leaf","agent":"a1"}"#,
        )
        .unwrap();
        assert!(r.is_alive(100_000 + REGISTRY_TTL_MS));
        assert!(!r.is_alive(100_001 + REGISTRY_TTL_MS));
        assert!(r.is_alive(99_000));
        assert!(!r.is_agent());
        let me: RegistryEntry =
            serde_json::from_value(json!({"name": AGENT_NAME, "kind": "agent"})).unwrap();
        assert!(me.is_agent());
        const { assert!(HEARTBEAT_MS * 2 < REGISTRY_TTL_MS) };
    }

    fn to<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn requests_and_replies() {
        assert_eq!(to(&EmptyRequest {}), "{}");
        assert_eq!(to(&NameRequest { name: "app".into() }), r#"{"name":"app"}"#);
        assert_eq!(
            to(&LogsRequest {
                name: "app".into(),
                lines: Some(200)
            }),
            r#"{"name":"app","lines":200}"#
        );
        assert_eq!(to(&LeafAddRequest::default()), "{}");
        assert_eq!(
            to(&LeafAddRequest {
                name: Some("leaf-9".into())
            }),
            r#"{"name":"leaf-9"}"#
        );
        let reply: ProcessReply =
            serde_json::from_str(r#"{"process":{"name":"app","state":"running"}}"#).unwrap();
        assert_eq!(reply.process.state, RunState::Running);
        assert!(serde_json::from_str::<ProcessReply>("{}").is_err());
        assert!(serde_json::from_str::<LeafReply>("{}").is_err());
        let logs: LogsReply = serde_json::from_str(
            r#"{"name":"app","lines":[{"ts":1,"stream":"stdout","line":"a"}],"truncated":true}"#,
        )
        .unwrap();
        assert_eq!((logs.lines.len(), logs.truncated), (1, true));
        let logs: LogsReply = serde_json::from_str(r#"{"name":"app","lines":[]}"#).unwrap();
        assert!(!logs.truncated);
        let removed: RemovedReply = serde_json::from_str(r#"{"removed":"leaf-2"}"#).unwrap();
        assert_eq!(removed.removed, "leaf-2");
        let list: ListReply = serde_json::from_str(r#"{"processes":[{"name":"a"}]}"#).unwrap();
        assert_eq!(list.processes[0].name, "a");
        let leaves: LeavesReply = serde_json::from_str(r#"{"leaves":[{"name":"l"}]}"#).unwrap();
        assert_eq!(leaves.leaves[0].name, "l");
    }

    #[test]
    fn subjects_and_names() {
        assert_eq!(log_subject("app"), "proc.logs.app");
        assert_eq!(ENDPOINTS.len(), 9);
        // Every example is read by its endpoint's request type (the placeholders aside).
        fn reads<T: serde::de::DeserializeOwned>(example: &str) -> Result<(), String> {
            serde_json::from_str::<T>(example)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        for (name, _) in ENDPOINTS {
            let example = example_request(name);
            let parsed = match *name {
                "list" | "leaf-list" => reads::<EmptyRequest>(example),
                "logs" => reads::<LogsRequest>(example),
                "leaf-add" => reads::<LeafAddRequest>(example),
                _ => reads::<NameRequest>(example),
            };
            assert_eq!(parsed, Ok(()), "{name}: {example}");
        }
        assert!(ENDPOINTS.contains(&("kill", "via.proc.kill")));
        assert!(ENDPOINTS
            .iter()
            .all(|(_, s)| s.starts_with("via.proc.") || s.starts_with("via.leaf.")));
        for ok in ["app", "A_b-9", &"x".repeat(64)] {
            assert!(valid_process_name(ok), "{ok}");
        }
        for bad in ["", "a b", "a.b", "../x", "a*", ">", &"x".repeat(65), "é"] {
            assert!(!valid_process_name(bad), "{bad:?}");
        }
    }
}
