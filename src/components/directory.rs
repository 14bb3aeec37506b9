//! The directory of services that `/nats` and `/graph` both read: the live entries of the KV
//! registry `services_registry` and the NATS services (micro v1) that answer `$SRV`.
//!
//! - The registry is watched (never polled) through [`watch_existing_bucket`]; it is created here
//!   with via-agent's own settings when it does not exist, so that the page works without the
//!   agent and neither side's create fails. Entries whose heartbeat is older than the TTL are left
//!   out: a 2.9 server removes an expired entry by max age without telling watchers.
//! - Services are discovered with `$SRV.INFO` and `$SRV.STATS` every [`REFRESH_EVERY`] while the
//!   document is visible, and at once on [`Directory::refresh`]; no timer runs while it is hidden.
//!
//! Everything here lives as long as the component that called [`use_directory`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected};
use nats_ws::kv::{KvConfig, KvError};
use nats_ws::service::{self, EndpointStats, InfoResponse, Metadata, StatsResponse};
use nats_ws::Client;
use process_control::{RegistryEntry, HEARTBEAT_MS, REGISTRY_BUCKET, REGISTRY_TTL_MS};

use crate::components::clock::now_ms;
use crate::components::live_bucket::{watch_existing_bucket, LiveBucket};
use crate::components::visibility::use_document_visible;

/// How often the services are asked again while the document is visible.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Discovery collects answers until none came for this long…
const DISCOVERY_QUIET: Duration = Duration::from_millis(300);
/// …or this long has passed in all.
const DISCOVERY_MAX: Duration = Duration::from_secs(2);
/// A registration is stale once it missed a heartbeat (two periods without one); it is gone
/// after [`REGISTRY_TTL_MS`].
pub const STALE_AFTER_MS: u64 = 2 * HEARTBEAT_MS;
/// The age of a marker via-agent's bucket leaves when an entry expires (nats-server 2.11+).
const REGISTRY_MARKER_TTL: Duration = Duration::from_secs(5);

/// The registry bucket exactly as via-agent creates it (`crates/via-agent/src/agent.rs`): the same
/// config makes the create idempotent, so whichever comes first, the other's create succeeds.
/// `replicas`: the server's [`nats_ws::jetstream::JetStream::default_replicas`], as the agent's.
pub fn registry_config(replicas: usize) -> KvConfig {
    KvConfig::new(REGISTRY_BUCKET)
        .replicas(replicas)
        .ttl(Duration::from_millis(REGISTRY_TTL_MS))
        .limit_marker_ttl(REGISTRY_MARKER_TTL)
}

/// How a registration's heartbeat looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Renewed within the last two heartbeat periods.
    Healthy,
    /// Missed a heartbeat, not yet expired.
    Stale,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Stale => "stale",
        }
    }
}

/// The health of `entry` at `now_ms`; `None` once it has expired (older than the TTL).
pub fn registry_health(entry: &RegistryEntry, now_ms: u64) -> Option<Health> {
    if !entry.is_alive(now_ms) {
        None
    } else if now_ms.saturating_sub(entry.heartbeat_at) > STALE_AFTER_MS {
        Some(Health::Stale)
    } else {
        Some(Health::Healthy)
    }
}

/// One live registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The KV key.
    pub key: String,
    /// The revision of the value shown.
    pub revision: u64,
    /// The service's name: the entry's, or the key when the entry has none.
    pub name: String,
    pub entry: RegistryEntry,
    pub health: Health,
}

/// What the registry holds at `now_ms`: live registrations by key, and the keys whose value is not
/// a registry entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryView {
    pub rows: Vec<Registration>,
    pub unreadable: Vec<String>,
}

/// Reads the registry's values (key, revision, JSON) at `now_ms`; expired entries are left out.
pub fn read_registry<'a>(
    values: impl IntoIterator<Item = (&'a str, u64, &'a [u8])>,
    now_ms: u64,
) -> RegistryView {
    let mut view = RegistryView::default();
    for (key, revision, value) in values {
        let Ok(entry) = serde_json::from_slice::<RegistryEntry>(value) else {
            view.unreadable.push(key.to_owned());
            continue;
        };
        let Some(health) = registry_health(&entry, now_ms) else {
            continue;
        };
        let name = if entry.name.trim().is_empty() {
            key.to_owned()
        } else {
            entry.name.clone()
        };
        view.rows.push(Registration {
            key: key.to_owned(),
            revision,
            name,
            entry,
            health,
        });
    }
    view
}

/// One endpoint of a discovered service instance, with its stats when the instance gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointView {
    pub name: String,
    pub subject: String,
    /// Empty: no queue group.
    pub queue_group: String,
    pub metadata: Metadata,
    pub stats: Option<EndpointStats>,
}

/// One running instance of a NATS service, from its INFO and STATS answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInstance {
    pub name: String,
    pub id: String,
    pub version: String,
    pub description: String,
    pub metadata: Metadata,
    /// RFC 3339, from STATS.
    pub started: Option<String>,
    pub endpoints: Vec<EndpointView>,
}

impl ServiceInstance {
    /// Requests and errors over all endpoints (of those with stats).
    pub fn totals(&self) -> (u64, u64) {
        self.endpoints
            .iter()
            .filter_map(|e| e.stats.as_ref())
            .fold((0, 0), |(r, e), s| {
                (
                    r.saturating_add(s.num_requests),
                    e.saturating_add(s.num_errors),
                )
            })
    }
}

/// Endpoints shown per instance: an answer is the network's to size, the tab's to bound.
pub const MAX_ENDPOINTS: usize = 500;

/// Joins the INFO and STATS answers of each instance (by id), sorted by name then id. An
/// instance that answered only one of the two (it started or stopped in between) is still shown:
/// its endpoints come from INFO, else from STATS. Repeated answers of one id count once, and so
/// does an endpoint listed twice (nats.go's `AddEndpoint` does not refuse a repeated name and
/// subject; the rows are keyed by them); at most [`MAX_ENDPOINTS`] per instance.
pub fn merge_discovery(
    infos: Vec<InfoResponse>,
    stats: Vec<StatsResponse>,
) -> Vec<ServiceInstance> {
    let mut by_id: BTreeMap<(String, String), ServiceInstance> = BTreeMap::new();
    let mut stats_by_id: BTreeMap<(String, String), StatsResponse> = BTreeMap::new();
    for s in stats {
        stats_by_id
            .entry((s.name.clone(), s.id.clone()))
            .or_insert(s);
    }
    for info in infos {
        let key = (info.name.clone(), info.id.clone());
        if by_id.contains_key(&key) {
            continue;
        }
        let stats = stats_by_id.remove(&key);
        let endpoint_stats: HashMap<(&str, &str), &EndpointStats> = stats
            .iter()
            .flat_map(|s| &s.endpoints)
            .map(|st| ((st.name.as_str(), st.subject.as_str()), st))
            .collect();
        let mut seen = HashSet::new();
        let endpoints = info
            .endpoints
            .into_iter()
            .filter(|e| seen.insert((e.name.clone(), e.subject.clone())))
            .take(MAX_ENDPOINTS)
            .map(|e| {
                let stats = endpoint_stats
                    .get(&(e.name.as_str(), e.subject.as_str()))
                    .map(|st| (*st).clone());
                EndpointView {
                    name: e.name,
                    subject: e.subject,
                    queue_group: e.queue_group,
                    metadata: e.metadata,
                    stats,
                }
            })
            .collect();
        by_id.insert(
            key,
            ServiceInstance {
                name: info.name,
                id: info.id,
                version: info.version,
                description: info.description,
                metadata: info.metadata,
                started: stats.map(|s| s.started),
                endpoints,
            },
        );
    }
    for (key, s) in stats_by_id {
        let mut seen = HashSet::new();
        let endpoints = s
            .endpoints
            .into_iter()
            .filter(|st| seen.insert((st.name.clone(), st.subject.clone())))
            .take(MAX_ENDPOINTS)
            .map(|st| EndpointView {
                name: st.name.clone(),
                subject: st.subject.clone(),
                queue_group: st.queue_group.clone(),
                metadata: Metadata::new(),
                stats: Some(st),
            })
            .collect();
        by_id.insert(
            key,
            ServiceInstance {
                name: s.name,
                id: s.id,
                version: s.version,
                description: String::new(),
                metadata: s.metadata,
                started: Some(s.started),
                endpoints,
            },
        );
    }
    by_id.into_values().collect()
}

/// Whether the registry bucket could be made sure of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrySetup {
    /// Looking for it (or creating it).
    Checking,
    Ready,
    /// Neither found nor created: why.
    Failed(String),
}

/// What [`use_directory`] returns. `Copy`.
#[derive(Clone, Copy)]
pub struct Directory {
    /// The registry's keys and their latest values, live.
    pub registry: LiveBucket,
    pub setup: RwSignal<RegistrySetup>,
    /// The service instances of the last discovery.
    pub services: RwSignal<Vec<ServiceInstance>>,
    /// True once a discovery has finished.
    pub services_loaded: RwSignal<bool>,
    /// Why the last discovery failed, if it did.
    pub services_error: RwSignal<Option<String>>,
    /// A discovery is under way.
    pub refreshing: RwSignal<bool>,
    /// When the last discovery finished (ms since the epoch).
    pub refreshed_at: RwSignal<Option<f64>>,
    wake: StoredValue<mpsc::UnboundedSender<()>>,
}

impl Directory {
    /// Asks the services again now.
    pub fn refresh(&self) {
        if let Some(wake) = self.wake.try_get_value() {
            let _ = wake.unbounded_send(());
        }
    }

    /// The live registrations at `now_ms`, the server's time ([`LiveBucket::server_time`]: the
    /// heartbeats are the registrants' clocks) (tracks the registry).
    pub fn registrations(&self, now_ms: f64) -> RegistryView {
        self.registry.entries.with(|map| {
            read_registry(
                map.iter()
                    .map(|(k, e)| (k.as_str(), e.revision, e.value.as_ref())),
                now_ms as u64,
            )
        })
    }
}

/// The registry (created if missing, again if deleted, and watched) and the discovered services,
/// for as long as the calling component lives.
pub fn use_directory(client: Client) -> Directory {
    let (wake, mut woken) = mpsc::unbounded::<()>();
    let directory = Directory {
        registry: watch_existing_bucket(client.clone(), REGISTRY_BUCKET),
        setup: RwSignal::new(RegistrySetup::Checking),
        services: RwSignal::new(Vec::new()),
        services_loaded: RwSignal::new(false),
        services_error: RwSignal::new(None),
        refreshing: RwSignal::new(false),
        refreshed_at: RwSignal::new(None),
        wake: StoredValue::new(wake),
    };

    {
        let client = client.clone();
        spawn_while_mounted(async move {
            let js = client.jetstream();
            loop {
                if !until_connected(&client).await {
                    return;
                }
                let outcome = match js.key_value(REGISTRY_BUCKET).await {
                    Err(KvError::BucketNotFound { .. }) => {
                        match js
                            .create_key_value(registry_config(js.default_replicas().await))
                            .await
                        {
                            // Created meanwhile (by the agent or another tab, perhaps with
                            // other settings): refused as "stream name already in use" or (2.9,
                            // when both raced) "subjects overlap". It is there if it is there,
                            // which is all the page needs.
                            Err(e) => js.key_value(REGISTRY_BUCKET).await.map(drop).map_err(|_| e),
                            Ok(_) => Ok(()),
                        }
                    }
                    other => other.map(drop),
                };
                match outcome {
                    Ok(()) => {
                        directory.setup.set(RegistrySetup::Ready);
                        // Made again if someone deletes it (the page said "Opening the
                        // registry…" for good).
                        loop {
                            gloo_timers::future::sleep(REFRESH_EVERY).await;
                            match directory.registry.missing.try_get_untracked() {
                                Some(false) => {}
                                Some(true) => break,
                                None => return,
                            }
                        }
                    }
                    Err(e) => {
                        if client.status().is_connected() {
                            directory.setup.set(RegistrySetup::Failed(format!(
                                "could not open or create the registry {REGISTRY_BUCKET}: {e}"
                            )));
                        }
                        gloo_timers::future::sleep(REFRESH_EVERY).await;
                    }
                }
            }
        });
    }

    // Back in view: ask at once (the loop waits for this while the document is hidden).
    let visible = use_document_visible();
    Effect::new(move |was: Option<bool>| {
        let now = visible.get();
        if was == Some(false) && now {
            directory.refresh();
        }
        now
    });

    spawn_while_mounted(async move {
        loop {
            if !until_connected(&client).await {
                return;
            }
            if !visible.get_untracked() {
                if woken.next().await.is_none() {
                    return;
                }
                continue;
            }
            directory.refreshing.set(true);
            let (infos, stats) = futures::join!(
                service::info(&client, None, DISCOVERY_QUIET, DISCOVERY_MAX),
                service::stats(&client, None, DISCOVERY_QUIET, DISCOVERY_MAX),
            );
            directory.refreshing.set(false);
            match infos.and_then(|i| stats.map(|s| (i, s))) {
                Ok((infos, stats)) => {
                    directory.services.set(merge_discovery(infos, stats));
                    directory.services_error.set(None);
                    directory.refreshed_at.set(Some(now_ms()));
                }
                // The list as it was stays (a connection lost while the answers came is not "no
                // service"), with why it is not new.
                Err(e) => directory
                    .services_error
                    .set(Some(crate::session::explain(format!(
                        "could not ask the services ($SRV): {e}"
                    )))),
            }
            directory.services_loaded.set(true);
            // Wakes that came during the discovery are answered by it.
            while woken.try_recv().is_ok() {}
            futures::select! {
                _ = gloo_timers::future::sleep(REFRESH_EVERY).fuse() => {}
                w = woken.next() => if w.is_none() { return },
            }
        }
    });

    directory
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_ws::service::{EndpointInfo, INFO_RESPONSE_TYPE, STATS_RESPONSE_TYPE};

    fn entry(name: &str, heartbeat_at: u64) -> RegistryEntry {
        RegistryEntry {
            name: name.into(),
            heartbeat_at,
            ..Default::default()
        }
    }

    #[test]
    fn health_follows_the_heartbeat() {
        let e = entry("a", 100_000);
        assert_eq!(registry_health(&e, 100_000), Some(Health::Healthy));
        assert_eq!(
            registry_health(&e, 100_000 + STALE_AFTER_MS),
            Some(Health::Healthy)
        );
        assert_eq!(
            registry_health(&e, 100_001 + STALE_AFTER_MS),
            Some(Health::Stale)
        );
        assert_eq!(
            registry_health(&e, 100_000 + REGISTRY_TTL_MS),
            Some(Health::Stale)
        );
        assert_eq!(registry_health(&e, 100_001 + REGISTRY_TTL_MS), None);
        // A clock a little ahead on the writer's side is fresh.
        assert_eq!(registry_health(&e, 99_000), Some(Health::Healthy));
    }

    #[test]
    fn registry_leaves_out_expired_and_reports_unreadable() {
        let now = 1_000_000;
        let fresh = serde_json::to_vec(&entry("org/api", now - 1_000)).unwrap();
        let stale = serde_json::to_vec(&entry("", now - STALE_AFTER_MS - 1)).unwrap();
        let expired = serde_json::to_vec(&entry("old", now - REGISTRY_TTL_MS - 1)).unwrap();
        let view = read_registry(
            [
                ("api", 1, fresh.as_slice()),
                ("nameless", 2, stale.as_slice()),
                ("old", 3, expired.as_slice()),
                ("junk", 4, b"<b>not json</b>".as_slice()),
            ],
            now,
        );
        let rows: Vec<_> = view
            .rows
            .iter()
            .map(|r| (r.key.as_str(), r.name.as_str(), r.health))
            .collect();
        assert_eq!(
            rows,
            [
                ("api", "org/api", Health::Healthy),
                ("nameless", "nameless", Health::Stale)
            ]
        );
        assert_eq!(view.unreadable, ["junk"]);
        // `{}` reads (lenient contract) but has no heartbeat: expired, not unreadable.
        assert_eq!(
            read_registry([("empty", 5, b"{}".as_slice())], now),
            RegistryView::default()
        );
    }

    #[test]
    fn the_registry_is_created_as_the_agent_creates_it() {
        let c = registry_config(3);
        assert_eq!(c.bucket, "services_registry");
        assert_eq!(c.replicas, 3);
        assert_eq!(c.ttl, Duration::from_secs(15));
        assert_eq!(c.limit_marker_ttl, Duration::from_secs(5));
        assert_eq!(c.history, 1);
    }

    fn info(name: &str, id: &str, endpoints: &[(&str, &str)]) -> InfoResponse {
        InfoResponse {
            name: name.into(),
            id: id.into(),
            version: "1.0.0".into(),
            metadata: Metadata::new(),
            kind: INFO_RESPONSE_TYPE.into(),
            description: format!("{name} service"),
            endpoints: endpoints
                .iter()
                .map(|(n, s)| EndpointInfo {
                    name: (*n).into(),
                    subject: (*s).into(),
                    queue_group: "q".into(),
                    metadata: Metadata::new(),
                })
                .collect(),
        }
    }

    fn stats(name: &str, id: &str, endpoints: &[(&str, &str, u64, u64)]) -> StatsResponse {
        StatsResponse {
            name: name.into(),
            id: id.into(),
            version: "1.0.0".into(),
            metadata: Metadata::new(),
            kind: STATS_RESPONSE_TYPE.into(),
            started: "2026-01-01T00:00:00Z".into(),
            endpoints: endpoints
                .iter()
                .map(|(n, s, requests, errors)| EndpointStats {
                    name: (*n).into(),
                    subject: (*s).into(),
                    queue_group: "q".into(),
                    num_requests: *requests,
                    num_errors: *errors,
                    last_error: String::new(),
                    processing_time: Duration::ZERO,
                    average_processing_time: Duration::ZERO,
                    data: None,
                })
                .collect(),
        }
    }

    #[test]
    fn discovery_joins_info_and_stats_by_instance() {
        let merged = merge_discovery(
            vec![
                info("math", "b", &[("sum", "math.sum"), ("max", "math.max")]),
                info("math", "a", &[("sum", "math.sum")]),
                info("math", "a", &[("ignored", "x")]),
                info("echo", "z", &[("echo", "echo")]),
            ],
            vec![
                stats("math", "b", &[("sum", "math.sum", 3, 1)]),
                stats("math", "a", &[("sum", "math.sum", 2, 0)]),
                stats("late", "c", &[("go", "late.go", 7, 2)]),
            ],
        );
        let ids: Vec<_> = merged
            .iter()
            .map(|s| (s.name.as_str(), s.id.as_str()))
            .collect();
        assert_eq!(
            ids,
            [("echo", "z"), ("late", "c"), ("math", "a"), ("math", "b")]
        );
        // echo answered INFO only: endpoints without stats.
        assert_eq!(merged[0].started, None);
        assert!(merged[0].endpoints[0].stats.is_none());
        // late answered STATS only: endpoints from STATS.
        assert_eq!(merged[1].endpoints[0].subject, "late.go");
        assert_eq!(merged[1].totals(), (7, 2));
        // The first answer of an id counts.
        assert_eq!(merged[2].endpoints.len(), 1);
        assert_eq!(merged[2].totals(), (2, 0));
        // Stats attach to their endpoint; one without stats has none.
        assert_eq!(
            merged[3].endpoints[0].stats.as_ref().unwrap().num_requests,
            3
        );
        assert!(merged[3].endpoints[1].stats.is_none());
        assert_eq!(merged[3].totals(), (3, 1));
    }

    #[test]
    fn endpoints_listed_twice_count_once_and_an_answer_is_bounded() {
        let many: Vec<(String, String)> = (0..MAX_ENDPOINTS + 50)
            .map(|i| (format!("e{i}"), format!("s.{i}")))
            .collect();
        let mut listed: Vec<(&str, &str)> = vec![("dup", "d"), ("dup", "d")];
        listed.extend(many.iter().map(|(n, s)| (n.as_str(), s.as_str())));
        let merged = merge_discovery(
            vec![info("big", "1", &listed)],
            vec![stats("big", "1", &[("dup", "d", 4, 0), ("dup", "d", 9, 9)])],
        );
        let endpoints = &merged[0].endpoints;
        assert_eq!(endpoints.len(), MAX_ENDPOINTS);
        assert_eq!(endpoints.iter().filter(|e| e.name == "dup").count(), 1);
        let only = merge_discovery(
            vec![],
            vec![stats("s", "2", &[("x", "y", 1, 0), ("x", "y", 2, 0)])],
        );
        assert_eq!(only[0].endpoints.len(), 1);
    }
}
