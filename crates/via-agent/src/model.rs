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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// The agent's own spellings of the contract's names and numbers agree with the shared ones.
    #[test]
    fn the_agent_uses_the_contracts_names() {
        assert_eq!(crate::api::ENDPOINTS, process_control::ENDPOINTS);
        assert_eq!(
            crate::api::DEFAULT_LOG_LINES,
            process_control::DEFAULT_LOG_LINES
        );
        assert_eq!(crate::logs::RING_LINES, process_control::MAX_LOG_LINES);
        assert_eq!(
            crate::agent::PROCESSES_BUCKET,
            process_control::PROCESSES_BUCKET
        );
        assert_eq!(
            crate::agent::REGISTRY_BUCKET,
            process_control::REGISTRY_BUCKET
        );
        assert_eq!(
            crate::agent::REGISTRY_TTL,
            Duration::from_millis(process_control::REGISTRY_TTL_MS)
        );
        assert_eq!(
            crate::agent::HEARTBEAT,
            Duration::from_millis(process_control::HEARTBEAT_MS)
        );
    }
}
