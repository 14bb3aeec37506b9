//! The JSON the agent writes and answers, exactly as the contract (the crate's README.md) names
//! it: KV bucket `processes`, the registry, log lines and the endpoints' replies.

use serde::{Deserialize, Serialize};

use crate::config::RestartPolicy;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Process,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Starting,
    Stopping,
    Stopped,
    Exited,
    Backoff,
}

/// A leaf node's ports and its link to the hub, as the hub's `/leafz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The value of key `<name>` in bucket `processes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub rss_bytes: u64,
    pub restart: RestartPolicy,
    pub next_restart_at: Option<u64>,
    pub command: String,
    pub args: Vec<String>,
    pub controllable: bool,
    pub updated_at: u64,
    pub host: String,
    pub agent: String,
    pub leaf: Option<LeafInfo>,
}

/// The value of key `<name>` in bucket `services_registry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub registered_at: u64,
    pub heartbeat_at: u64,
    pub tags: Vec<String>,
    pub kind: String,
    pub agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a managed process's output, published on `proc.logs.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub ts: u64,
    pub stream: Stream,
    pub line: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_state_serialises_with_the_contract_names() {
        let state = ProcessState {
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
        };
        let v = serde_json::to_value(&state).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"app","kind":"process","state":"backoff","pid":null,
                "started_at":1,"restarts":2,"exit_code":3,"signal":null,"cpu_percent":1.5,
                "rss_bytes":10,"restart":"on-failure","next_restart_at":5,"command":"trunk",
                "args":["serve"],"controllable":true,"updated_at":6,"host":"h","agent":"id",
                "leaf":null})
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
    }
}
