//! The endpoints of service `process-control`: request JSON in, reply JSON or an [`ApiError`]
//! out. Requests only *name* processes; nothing in them reaches a command line or a path
//! unvalidated.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::agent::{Agent, ApiError};
use crate::config::valid_process_name;
use crate::logs::RING_LINES;
use crate::model::LogLine;
use crate::supervisor::{Command, CommandError};

pub use process_control::{DEFAULT_LOG_LINES, ENDPOINTS};

/// The body of an error reply: `{"error":"…","code":N}`.
pub fn error_body(e: &ApiError) -> Vec<u8> {
    serde_json::to_vec(&json!({"error": e.message, "code": e.code})).expect("json")
}

/// The answer to a request beyond the number handled at once.
pub fn busy() -> ApiError {
    ApiError::new(429, "busy: too many requests in progress; try again")
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(400, message)
}

/// An empty payload is `{}`; anything else must be a JSON object.
pub fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad(
            "the request must be a JSON object, e.g. {\"name\":\"app\"}",
        )),
        Err(e) => Err(bad(format!("malformed JSON: {e}"))),
    }
}

/// `name`, required unless `optional`; `null` counts as absent.
fn name_field(req: &Map<String, Value>, optional: bool) -> Result<Option<String>, ApiError> {
    match req.get("name") {
        None | Some(Value::Null) if optional => Ok(None),
        None | Some(Value::Null) => Err(bad("missing \"name\": say which process")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad("\"name\" must be a string")),
    }
}

/// A process name that can exist (the rest are refused before any lookup).
fn process_name(req: &Map<String, Value>) -> Result<String, ApiError> {
    let name = name_field(req, false)?.expect("required");
    if !valid_process_name(&name) {
        return Err(bad(format!(
            "invalid name {name:?}: names are 1–64 letters, digits, '-' or '_'"
        )));
    }
    Ok(name)
}

/// `lines`: default 100, at most 1000.
pub fn lines_field(req: &Map<String, Value>) -> Result<usize, ApiError> {
    match req.get("lines") {
        None | Some(Value::Null) => Ok(DEFAULT_LOG_LINES),
        Some(v) => v
            .as_u64()
            .map(|n| (n as usize).min(RING_LINES))
            .ok_or_else(|| bad("\"lines\" must be a whole number from 0 to 1000")),
    }
}

/// The `logs` reply: `lines` (oldest first) without as many of the oldest as it takes for the
/// JSON to fit in `max_payload` bytes (1000 lines of 4 KiB do not fit in the default 1 MiB);
/// `truncated` says whether any was dropped.
pub fn logs_reply(name: &str, lines: Vec<LogLine>, max_payload: usize) -> Value {
    let size = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
    // Each line with its comma (one more than the JSON has).
    let sizes: Vec<usize> = lines
        .iter()
        .map(|l| serde_json::to_vec(l).map_or(0, |b| b.len()) + 1)
        .collect();
    let mut total = size(&json!({ "name": name, "lines": [], "truncated": true }))
        + sizes.iter().sum::<usize>();
    let mut skip = 0;
    while total > max_payload && skip < lines.len() {
        total -= sizes[skip];
        skip += 1;
    }
    json!({ "name": name, "lines": &lines[skip..], "truncated": skip > 0 })
}

/// Answers one request to `endpoint` (a name from [`ENDPOINTS`]).
pub async fn handle(agent: &Arc<Agent>, endpoint: &str, payload: &[u8]) -> Result<Value, ApiError> {
    let req = parse_object(payload)?;
    match endpoint {
        "list" => Ok(json!({ "processes": agent.list() })),
        "start" | "stop" | "restart" | "kill" => {
            let name = process_name(&req)?;
            let m = agent
                .get(&name)
                .ok_or_else(|| ApiError::new(404, format!("no process named {name:?}")))?;
            let (command, done) = match endpoint {
                "start" => (Command::Start, "started"),
                "stop" => (Command::Stop, "stopped"),
                "kill" => (Command::Kill, "killed"),
                _ => (Command::Restart, "restarted"),
            };
            if !m.spec.control {
                return Err(ApiError::new(
                    403,
                    format!("process {name:?} may not be {done} by request (control = false in the config)"),
                ));
            }
            let state = m.command(command).await.map_err(|e| match e {
                CommandError::Busy => ApiError::new(
                    429,
                    format!(
                        "busy: {name:?} has a command in progress and another waiting; try again"
                    ),
                ),
                CommandError::Spawn(why) => ApiError::new(500, why),
            })?;
            Ok(json!({ "process": state }))
        }
        "logs" => {
            let name = process_name(&req)?;
            let lines = lines_field(&req)?;
            let m = agent
                .get(&name)
                .ok_or_else(|| ApiError::new(404, format!("no process named {name:?}")))?;
            Ok(logs_reply(&name, m.logs(lines), agent.client.max_payload()))
        }
        "leaf-add" => {
            let name = name_field(&req, true)?;
            Ok(json!({ "leaf": agent.add_leaf(name).await? }))
        }
        "leaf-remove" => {
            let name = name_field(&req, false)?.expect("required");
            if !crate::leaf::valid_leaf_name(&name) {
                return Err(bad(crate::leaf::invalid_leaf_name(&name)));
            }
            agent.remove_leaf(&name).await?;
            Ok(json!({ "removed": name }))
        }
        "leaf-list" => Ok(json!({ "leaves": agent.leaves() })),
        other => Err(ApiError::new(500, format!("no endpoint {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_objects() {
        assert!(parse_object(b"").unwrap().is_empty());
        assert!(parse_object(b" \n").unwrap().is_empty());
        assert_eq!(parse_object(b"{\"name\":\"app\"}").unwrap()["name"], "app");
        for bad in [&b"{"[..], b"[]", b"\"app\"", b"null", b"\xff"] {
            assert_eq!(parse_object(bad).unwrap_err().code, 400);
        }
    }

    #[test]
    fn names_and_lines() {
        let req = |s: &str| parse_object(s.as_bytes()).unwrap();
        assert_eq!(process_name(&req(r#"{"name":"app"}"#)).unwrap(), "app");
        for r in [
            r#"{}"#,
            r#"{"name":null}"#,
            r#"{"name":3}"#,
            r#"{"name":"../x"}"#,
            r#"{"name":""}"#,
            r#"{"name":"a b; rm -rf"}"#,
        ] {
            assert_eq!(process_name(&req(r)).unwrap_err().code, 400, "{r}");
        }
        assert_eq!(name_field(&req("{}"), true).unwrap(), None);
        assert_eq!(lines_field(&req("{}")).unwrap(), 100);
        assert_eq!(lines_field(&req(r#"{"lines":5}"#)).unwrap(), 5);
        assert_eq!(lines_field(&req(r#"{"lines":50000}"#)).unwrap(), 1000);
        for r in [r#"{"lines":-1}"#, r#"{"lines":1.5}"#, r#"{"lines":"9"}"#] {
            assert_eq!(lines_field(&req(r)).unwrap_err().code, 400, "{r}");
        }
        let body: Value = serde_json::from_slice(&error_body(&ApiError::new(404, "x"))).unwrap();
        assert_eq!(body, json!({"error":"x","code":404}));
    }

    #[test]
    fn logs_replies_fit_max_payload() {
        let line = |i: usize| LogLine {
            ts: i as u64,
            stream: crate::model::Stream::Stdout,
            line: format!("{i:04}{}", "x".repeat(crate::logs::MAX_LINE - 4)),
        };
        let lines: Vec<LogLine> = (0..RING_LINES).map(line).collect();
        let max = 1024 * 1024;
        let reply = logs_reply("app", lines.clone(), max);
        let bytes = serde_json::to_vec(&reply).unwrap();
        assert!(bytes.len() <= max, "{} bytes", bytes.len());
        assert!(
            bytes.len() > max - 2 * crate::logs::MAX_LINE,
            "dropped too many"
        );
        assert_eq!(reply["truncated"], true);
        let kept = reply["lines"].as_array().unwrap();
        assert_eq!(
            kept.last().unwrap()["ts"],
            RING_LINES as u64 - 1,
            "the newest kept"
        );
        let small = logs_reply("app", lines[..3].to_vec(), max);
        assert_eq!(small["truncated"], false);
        assert_eq!(small["lines"].as_array().unwrap().len(), 3);
        let none = logs_reply("app", lines[..3].to_vec(), 10);
        assert_eq!(none["lines"], json!([]));
    }
}
