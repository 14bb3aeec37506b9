//! Partitioned workers with KV leases, one implementation for browser tabs and native processes.
//!
//! Events go to `<prefix>.events.p.<n>` in the stream `EVENTS`; each partition is consumed through
//! one durable pull consumer (`p-<n>`), shared by its successive owners so that the ack floor
//! carries over. A worker may fetch from a partition only while it holds the partition's lease, the
//! key `p.<n>` in the bucket `leases`: acquired with `create`, renewed with `update` at the revision
//! held, released with a delete at that revision. [`rules`] decides (pure, on any clock);
//! [`worker::run`] does it against a server; [`publisher`] feeds the stream.
//!
//! Everything a worker does is also said on `<prefix>.workers.status` ([`StatusEvent`]), its
//! presence is the key `<id>` in the bucket `workers` ([`WorkerInfo`]), and its memory goes to
//! `<prefix>.workers.memory.<id>` every 5 s ([`MemoryStats`]; [`alloc`] counts the heap).

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod alloc;
mod clock;
pub mod publisher;
pub mod rules;
pub mod setup;
pub mod worker;

/// How the partitions, the stream and the leases are laid out. Every worker, publisher and page
/// of one deployment must use the same settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub partitions: u32,
    /// Events go to `<prefix>.events.p.<n>`, status to `<prefix>.workers.status`.
    pub prefix: String,
    pub stream: String,
    pub lease_bucket: String,
    pub workers_bucket: String,
    /// A lease not renewed for this long expires (the bucket's max age).
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    /// How often a worker looks at the leases and the other workers to rebalance.
    pub tick: Duration,
    /// A holder stops consuming this long before its lease could expire on the server.
    pub safety_margin: Duration,
    /// Messages pulled at once from one partition.
    pub batch: usize,
    /// Unacknowledged messages (a worker killed while processing) are delivered again after this.
    pub ack_wait: Duration,
    pub memory_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            partitions: 8,
            prefix: "poc".into(),
            stream: "EVENTS".into(),
            lease_bucket: "leases".into(),
            workers_bucket: "workers".into(),
            lease_ttl: Duration::from_secs(10),
            renew_every: Duration::from_secs(3),
            tick: Duration::from_secs(1),
            safety_margin: Duration::from_secs(1),
            batch: 64,
            ack_wait: Duration::from_secs(5),
            memory_every: Duration::from_secs(5),
        }
    }
}

/// The number in a lease key (`p.<n>`), whatever the settings.
fn lease_number(key: &str) -> Option<u32> {
    key.strip_prefix("p.")?.parse().ok()
}

impl Settings {
    /// `<prefix>.events.p.<n>`.
    pub fn partition_subject(&self, partition: u32) -> String {
        format!("{}.events.p.{partition}", self.prefix)
    }

    /// `<prefix>.events.>`, the stream's subjects.
    pub fn events_filter(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// The durable pull consumer of a partition, shared by its successive owners.
    pub fn durable(&self, partition: u32) -> String {
        format!("p-{partition}")
    }

    /// The lease key of a partition.
    pub fn lease_key(&self, partition: u32) -> String {
        format!("p.{partition}")
    }

    /// The partition a lease key names, if it names one of ours.
    pub fn partition_of_key(&self, key: &str) -> Option<u32> {
        lease_number(key).filter(|&n| n < self.partitions)
    }

    /// The partition a lease key names, if it names one past this worker's last (a worker with
    /// more partitions shares the bucket).
    pub fn partition_beyond(&self, key: &str) -> Option<u32> {
        lease_number(key).filter(|&n| n >= self.partitions)
    }

    pub fn status_subject(&self) -> String {
        format!("{}.workers.status", self.prefix)
    }

    pub fn memory_subject(&self, worker: &str) -> String {
        format!("{}.workers.memory.{worker}", self.prefix)
    }

    /// Every worker's memory statistics.
    pub fn memory_filter(&self) -> String {
        format!("{}.workers.memory.*", self.prefix)
    }

    /// The partition an event key belongs to: FNV-1a, so every program agrees.
    pub fn partition_for(&self, key: &str) -> u32 {
        let mut hash: u32 = 0x811c_9dc5;
        for b in key.bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash % self.partitions.max(1)
    }
}

/// Milliseconds since the Unix epoch, in the browser too.
pub fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The value of a lease key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseValue {
    pub owner: String,
    /// Milliseconds since the Unix epoch.
    pub renewed_at: u64,
}

/// Where a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerKind {
    Tab,
    Process,
}

/// Who a worker is. `id` is a KV key and a subject token: `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: String,
    pub kind: WorkerKind,
    /// The host name, or the browser's user agent summary.
    pub host: String,
    pub pid: Option<u32>,
}

impl Identity {
    /// A fresh id: `<kind>-<8 hex digits>`.
    pub fn new(kind: WorkerKind, host: impl Into<String>, pid: Option<u32>) -> Self {
        let tag = match kind {
            WorkerKind::Tab => "tab",
            WorkerKind::Process => "proc",
        };
        // The id only has to be unique among the live workers; a failed draw falls back to time.
        let draw = getrandom::u32().unwrap_or(now_ms() as u32);
        Identity {
            id: format!("{tag}-{draw:08x}"),
            kind,
            host: host.into(),
            pid,
        }
    }
}

/// A worker's presence in the bucket `workers`, rewritten every `renew_every`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub id: String,
    pub kind: WorkerKind,
    pub host: String,
    pub pid: Option<u32>,
    pub started_at: u64,
    pub heartbeat_at: u64,
    /// Partitions held, ascending.
    pub partitions: Vec<u32>,
    /// Events processed since it started.
    pub processed: u64,
}

/// What happened to a lease, or to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    Joined,
    Left,
    /// The lease was created by this worker.
    Acquired,
    /// Given up voluntarily (above the fair share, or leaving), after the last message was acked.
    Released,
    /// Someone else holds it now (the renewal lost the compare-and-set).
    Lost,
    /// Not renewed in time (e.g. while disconnected): consumption stopped before it could expire.
    Expired,
}

/// One line of `<prefix>.workers.status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub kind: StatusKind,
    pub worker: String,
    pub partition: Option<u32>,
    /// Milliseconds since the Unix epoch: for a lease, when consumption started (acquired) or
    /// stopped (released, lost, expired).
    pub at: u64,
    /// The fair share the worker computed.
    pub share: u32,
    pub live_workers: u32,
}

/// An event of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique; also the message id (`Nats-Msg-Id`).
    pub id: String,
    /// What the partition is picked by.
    pub key: String,
    pub published_at: u64,
}

/// A worker's memory, every `memory_every`. Fields a platform cannot tell are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub worker: String,
    pub at: u64,
    /// Natively: bytes currently allocated (Go's Alloc).
    pub allocated_bytes: Option<u64>,
    /// Natively: allocations so far (Go's Mallocs) and bytes allocated so far (TotalAlloc).
    pub allocations: Option<u64>,
    pub total_allocated_bytes: Option<u64>,
    /// Natively: resident set size (Go's Sys is the closest).
    pub rss_bytes: Option<u64>,
    /// In a tab: the wasm linear memory's size.
    pub wasm_memory_bytes: Option<u64>,
    /// In a tab: `performance.memory.usedJSHeapSize`, where the browser reports it.
    pub js_heap_bytes: Option<u64>,
    pub processed: u64,
}

/// Why a worker or a publisher stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    #[error(transparent)]
    JetStream(#[from] nats_ws::jetstream::JetStreamError),
    #[error(transparent)]
    Kv(#[from] nats_ws::kv::KvError),
    #[error(transparent)]
    Publish(#[from] nats_ws::PublishError),
    #[error("invalid settings: {0}")]
    Settings(String),
    /// The workers sharing the buckets do not agree on a setting that must be the same for all.
    #[error("the workers do not agree: {0}")]
    Mismatch(String),
    /// Not connected, or no answer in time: nothing is read or written until the server is back.
    #[error("no connection to the server, or no answer from it in time")]
    NoServer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lands_in_a_partition_and_all_are_used() {
        let s = Settings::default();
        let mut seen = [0u32; 8];
        for i in 0..8000 {
            let p = s.partition_for(&format!("user-{i}"));
            seen[p as usize] += 1;
        }
        // FNV spreads these keys within ±15 % of the even 1000 each.
        assert!(seen.iter().all(|&n| (850..=1150).contains(&n)), "{seen:?}");
        assert_eq!(s.partition_for("a"), s.partition_for("a"));
    }

    #[test]
    fn lease_keys_round_trip_and_foreign_ones_are_refused() {
        let s = Settings::default();
        assert_eq!(s.partition_of_key(&s.lease_key(7)), Some(7));
        assert_eq!(s.partition_of_key("p.8"), None);
        assert_eq!(s.partition_beyond("p.8"), Some(8));
        assert_eq!(s.partition_beyond("p.7"), None);
        assert_eq!(s.partition_beyond("p.x"), None);
        assert_eq!(s.partition_of_key("p.x"), None);
        assert_eq!(s.partition_of_key("q.1"), None);
        assert_eq!(s.partition_subject(3), "poc.events.p.3");
    }
}
