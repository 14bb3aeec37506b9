//! The JSON the agent writes and answers — KV bucket `processes`, the registry, log lines — is
//! defined once, in the `process-control` crate, which the app's pages read with; it is
//! re-exported here. What only the agent needs stays: its clock.

pub use process_control::{Kind, LeafInfo, LogLine, ProcessState, RegistryEntry, RunState, Stream};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
