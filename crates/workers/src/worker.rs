//! The worker loop: announce, hold leases by [`rules::plan`], fetch only from partitions held,
//! ack each event, and leave cleanly when asked.
//!
//! One task does everything, so it runs the same in a tab and in a process: between two ticks
//! (every `settings.tick`) it handles whatever batch comes back first, one fetch outstanding per
//! partition held. Every message is checked against its partition's lease deadline just before
//! it is processed: a worker that could not renew stops consuming before its lease can expire on
//! the server, so no two workers ever process one partition at the same moment.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use nats_ws::jetstream::JetStreamError;
use nats_ws::jetstream::{FetchOptions, JetStream, JsMessage};
use nats_ws::kv::KvError;
use nats_ws::Client;
use web_time::Instant;

use crate::rules::{self, Action, Held};
use crate::setup::{self, Buckets};
use crate::{
    Event, Identity, LeaseValue, MemoryStats, Settings, StatusEvent, StatusKind, WorkerError,
    WorkerInfo,
};

/// What the worker tells the program that runs it. Every method has a default that does nothing.
pub trait Observer {
    /// An event is about to be acknowledged. `event` is `None` for a message that is not an
    /// [`Event`] (it is acknowledged all the same, so it cannot block its partition).
    fn processed(
        &mut self,
        partition: u32,
        stream_seq: u64,
        event: Option<&Event>,
        redelivered: bool,
    ) {
        let _ = (partition, stream_seq, event, redelivered);
    }

    /// A lease changed hands, or the worker joined or left (also published on the status subject).
    fn status(&mut self, event: &StatusEvent) {
        let _ = event;
    }

    /// The platform's memory figures; `worker`, `at` and `processed` are filled in by the loop.
    fn memory(&mut self) -> MemoryStats {
        MemoryStats::default()
    }

    /// Something failed and will be retried (no connection, a timeout, a refusal).
    fn trouble(&mut self, what: &str, error: &WorkerError) {
        let _ = (what, error);
    }
}

/// What a worker did, when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub processed: u64,
    pub acquired: u64,
    pub released: u64,
    pub lost: u64,
    pub expired: u64,
}

#[cfg(not(target_arch = "wasm32"))]
type Fetch = Pin<Box<dyn Future<Output = Fetched> + Send>>;
#[cfg(target_arch = "wasm32")]
type Fetch = Pin<Box<dyn Future<Output = Fetched>>>;

struct Fetched {
    partition: u32,
    started: Instant,
    result: Result<Vec<JsMessage>, JetStreamError>,
}

/// How long one pull waits for messages at the server.
const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// Runs a worker until `stop` completes, then releases its leases and removes its presence.
///
/// Fails only on what retrying cannot fix (invalid settings, a refusal while setting up);
/// everything else (the server away, timeouts) is reported to `observer.trouble` and retried.
pub async fn run<O: Observer>(
    client: &Client,
    settings: &Settings,
    me: &Identity,
    observer: &mut O,
    stop: impl Future<Output = ()>,
) -> Result<Summary, WorkerError> {
    setup::validate(settings)?;
    let js = client.jetstream();
    let stop = stop.fuse();
    futures::pin_mut!(stop);
    // Setting up waits for the server, as long as the program wants to wait.
    let buckets = loop {
        let attempt = setup::ensure_all(&js, settings).fuse();
        futures::pin_mut!(attempt);
        futures::select_biased! {
            _ = stop => return Ok(Summary::default()),
            r = attempt => match r {
                Ok(b) => break b,
                Err(e) if setup::is_transient(&e) => {
                    observer.trouble("setting up the stream and buckets", &e);
                    nats_ws::rt::sleep(settings.tick).await;
                }
                Err(e) => return Err(e),
            },
        }
    };
    let mut worker = Worker::new(js, settings, me, buckets, observer);
    worker.say(StatusKind::Joined, None);
    let mut next_tick = Instant::now();
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let tick = nats_ws::rt::sleep(wait).fuse();
        futures::pin_mut!(tick);
        futures::select_biased! {
            _ = stop => break,
            fetched = worker.inflight.select_next_some() => worker.handle(fetched),
            _ = tick => {
                worker.maintain().await;
                next_tick = Instant::now() + settings.tick;
            }
        }
        worker.refill();
    }
    worker.leave().await;
    Ok(worker.summary)
}

struct Worker<'a, O: Observer> {
    js: JetStream,
    settings: &'a Settings,
    me: &'a Identity,
    buckets: Buckets,
    observer: &'a mut O,
    /// Wall-clock milliseconds at `epoch`: times are `wall + elapsed`, monotonic and comparable
    /// across programs on one machine.
    wall: u64,
    epoch: Instant,
    held: BTreeMap<u32, Held>,
    inflight: FuturesUnordered<Fetch>,
    /// Partitions with a fetch outstanding, or paused after a failed one until the next tick.
    busy: BTreeSet<u32>,
    paused: BTreeSet<u32>,
    live_workers: u32,
    offset: u32,
    started_at: u64,
    last_heartbeat: Option<u64>,
    last_memory: Option<u64>,
    summary: Summary,
}

impl<'a, O: Observer> Worker<'a, O> {
    fn new(
        js: JetStream,
        settings: &'a Settings,
        me: &'a Identity,
        buckets: Buckets,
        observer: &'a mut O,
    ) -> Self {
        let wall = crate::now_ms();
        // Where this worker starts looking for free partitions: spread by its id.
        let offset = me
            .id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % settings.partitions.max(1);
        Worker {
            js,
            settings,
            me,
            buckets,
            observer,
            wall,
            epoch: Instant::now(),
            held: BTreeMap::new(),
            inflight: FuturesUnordered::new(),
            busy: BTreeSet::new(),
            paused: BTreeSet::new(),
            live_workers: 1,
            offset,
            started_at: wall,
            last_heartbeat: None,
            last_memory: None,
            summary: Summary::default(),
        }
    }

    fn now(&self) -> u64 {
        self.wall + self.epoch.elapsed().as_millis() as u64
    }

    fn say(&mut self, kind: StatusKind, partition: Option<u32>) {
        let event = StatusEvent {
            kind,
            worker: self.me.id.clone(),
            partition,
            at: self.now(),
            share: rules::fair_share(self.settings.partitions, self.live_workers),
            live_workers: self.live_workers,
        };
        match kind {
            StatusKind::Acquired => self.summary.acquired += 1,
            StatusKind::Released => self.summary.released += 1,
            StatusKind::Lost => self.summary.lost += 1,
            StatusKind::Expired => self.summary.expired += 1,
            StatusKind::Joined | StatusKind::Left => {}
        }
        self.observer.status(&event);
        let body = serde_json::to_vec(&event).unwrap_or_default();
        // Best effort: the feed is for people; the leases are the truth.
        let _ = self
            .js
            .client()
            .publish(&self.settings.status_subject(), body);
    }

    /// Stops consuming `partition` at once; says why.
    fn drop_lease(&mut self, partition: u32, kind: StatusKind) -> Option<Held> {
        let held = self.held.remove(&partition)?;
        self.say(kind, Some(partition));
        Some(held)
    }

    /// One outstanding fetch per partition held and not paused.
    fn refill(&mut self) {
        let wanted: Vec<u32> = self
            .held
            .keys()
            .copied()
            .filter(|p| !self.busy.contains(p) && !self.paused.contains(p))
            .collect();
        for partition in wanted {
            self.busy.insert(partition);
            let js = self.js.clone();
            let stream = self.settings.stream.clone();
            let durable = self.settings.durable(partition);
            let options = FetchOptions {
                batch: self.settings.batch,
                expires: PULL_EXPIRES,
            };
            self.inflight.push(Box::pin(async move {
                let started = Instant::now();
                let result = js.fetch(&stream, &durable, options).await;
                Fetched {
                    partition,
                    started,
                    result,
                }
            }));
        }
    }

    fn handle(&mut self, fetched: Fetched) {
        let p = fetched.partition;
        self.busy.remove(&p);
        let messages = match fetched.result {
            Ok(messages) => messages,
            Err(e) => {
                self.paused.insert(p);
                self.observer.trouble(
                    &format!("fetching partition {p}"),
                    &WorkerError::JetStream(e),
                );
                return;
            }
        };
        if messages.is_empty() && fetched.started.elapsed() < PULL_EXPIRES / 2 {
            // An empty answer long before the pull expires (e.g. the server refused the pull):
            // asking again at once would spin; wait for the next tick.
            self.paused.insert(p);
        }
        let mut rest = messages.into_iter();
        for message in rest.by_ref() {
            let Some(held) = self.held.get(&p) else {
                // Released or lost while this batch was on its way: the new owner gets it.
                let _ = message.nak();
                break;
            };
            if self.now() >= held.deadline(self.settings) {
                let _ = message.nak();
                self.drop_lease(p, StatusKind::Expired);
                break;
            }
            let info = message.info();
            let event: Option<Event> = serde_json::from_slice(&message.message.payload).ok();
            self.observer.processed(
                p,
                info.as_ref().map_or(0, |i| i.stream_sequence),
                event.as_ref(),
                info.as_ref().is_some_and(|i| i.delivered > 1),
            );
            self.summary.processed += 1;
            // Fire and forget, like nats.go's Ack: a lost ack means a redelivery, never a loss.
            let _ = message.ack();
        }
        for message in rest {
            let _ = message.nak();
        }
    }

    /// The periodic part: deadlines, renewals, heartbeat, memory, rebalancing.
    async fn maintain(&mut self) {
        if !self.paused.is_empty() {
            // A fetch failed: the consumer (or the stream) may have been deleted; recreate it.
            let paused = std::mem::take(&mut self.paused);
            if let Err(e) = setup::ensure_stream(&self.js, self.settings).await {
                self.observer.trouble("checking the stream", &e);
            }
            for p in paused {
                if let Err(e) = setup::ensure_consumer(&self.js, self.settings, p).await {
                    self.observer.trouble(&format!("checking consumer {p}"), &e);
                }
            }
        }
        let taken = self.read_view().await;
        // Without a view of the leases, renew and stop only: acquire nothing.
        let all: BTreeSet<u32> = (0..self.settings.partitions).collect();
        let now = self.now();
        let actions = rules::plan(
            self.settings,
            now,
            &self.held,
            taken.as_ref().unwrap_or(&all),
            self.live_workers,
            self.offset,
        );
        // Stops and renewals first (they are about time), then releases, then acquisitions.
        for action in &actions {
            if let Action::Stop(p) = *action {
                self.drop_lease(p, StatusKind::Expired);
            }
        }
        let renewals: Vec<u32> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Renew(p) => Some(*p),
                _ => None,
            })
            .collect();
        self.renew(&renewals).await;
        if taken.is_some() {
            for action in &actions {
                match *action {
                    Action::Release(p) => self.release(p).await,
                    Action::Acquire(p) => self.acquire(p).await,
                    _ => {}
                }
            }
        }
        self.heartbeat().await;
        self.report_memory();
    }

    /// Partitions whose lease key exists, and the count of live workers; `None` when the bucket
    /// could not be read.
    async fn read_view(&mut self) -> Option<BTreeSet<u32>> {
        match self.buckets.workers.keys().await {
            // Itself included, even before its first heartbeat lands.
            Ok(keys) => {
                let others = keys.iter().filter(|k| **k != self.me.id).count() as u32;
                self.live_workers = others + 1;
            }
            Err(e) => self.observer.trouble("reading the workers", &e.into()),
        }
        match self.buckets.leases.keys().await {
            Ok(keys) => Some(
                keys.iter()
                    .filter_map(|k| self.settings.partition_of_key(k))
                    .collect(),
            ),
            Err(e) => {
                self.observer.trouble("reading the leases", &e.into());
                None
            }
        }
    }

    fn lease_value(&self) -> Vec<u8> {
        serde_json::to_vec(&LeaseValue {
            owner: self.me.id.clone(),
            renewed_at: self.now(),
        })
        .unwrap_or_default()
    }

    async fn renew(&mut self, partitions: &[u32]) {
        let sent = self.now();
        let value = self.lease_value();
        let writes = partitions.iter().map(|&p| {
            let key = self.settings.lease_key(p);
            let revision = self.held[&p].revision;
            let leases = &self.buckets.leases;
            let value = &value;
            async move { (p, leases.update(&key, value, revision).await) }
        });
        for (p, result) in futures::future::join_all(writes).await {
            match result {
                Ok(revision) => {
                    if let Some(h) = self.held.get_mut(&p) {
                        h.revision = revision;
                        h.written_at = sent;
                    }
                }
                Err(KvError::WrongLastRevision { .. }) => {
                    self.drop_lease(p, StatusKind::Lost);
                }
                // Not renewed this time: the deadline decides.
                Err(e) => self
                    .observer
                    .trouble(&format!("renewing partition {p}"), &e.into()),
            }
        }
    }

    /// Stops consuming, then deletes the key at the revision held (if that fails, it expires).
    async fn release(&mut self, partition: u32) {
        let Some(held) = self.drop_lease(partition, StatusKind::Released) else {
            return;
        };
        let key = self.settings.lease_key(partition);
        if let Err(e) = self
            .buckets
            .leases
            .delete_expecting(&key, held.revision)
            .await
        {
            if !matches!(e, KvError::WrongLastRevision { .. }) {
                self.observer
                    .trouble(&format!("releasing partition {partition}"), &e.into());
            }
        }
    }

    async fn acquire(&mut self, partition: u32) {
        let key = self.settings.lease_key(partition);
        let sent = self.now();
        let value = self.lease_value();
        match self.buckets.leases.create(&key, value).await {
            Ok(revision) => {
                self.held.insert(
                    partition,
                    Held {
                        revision,
                        acquired_at: self.now(),
                        written_at: sent,
                    },
                );
                self.say(StatusKind::Acquired, Some(partition));
            }
            // Someone was quicker.
            Err(KvError::KeyExists { .. }) => {}
            Err(e) => self
                .observer
                .trouble(&format!("acquiring partition {partition}"), &e.into()),
        }
    }

    fn info(&self) -> WorkerInfo {
        WorkerInfo {
            id: self.me.id.clone(),
            kind: self.me.kind,
            host: self.me.host.clone(),
            pid: self.me.pid,
            started_at: self.started_at,
            heartbeat_at: self.now(),
            partitions: self.held.keys().copied().collect(),
            processed: self.summary.processed,
        }
    }

    async fn heartbeat(&mut self) {
        let now = self.now();
        let every = self.settings.renew_every.as_millis() as u64;
        if self.last_heartbeat.is_some_and(|at| now < at + every) {
            return;
        }
        let body = serde_json::to_vec(&self.info()).unwrap_or_default();
        match self.buckets.workers.put(&self.me.id, body).await {
            Ok(_) => self.last_heartbeat = Some(now),
            Err(e) => self.observer.trouble("announcing this worker", &e.into()),
        }
    }

    fn report_memory(&mut self) {
        let now = self.now();
        let every = self.settings.memory_every.as_millis() as u64;
        if self.last_memory.is_some_and(|at| now < at + every) {
            return;
        }
        self.last_memory = Some(now);
        let stats = MemoryStats {
            worker: self.me.id.clone(),
            at: now,
            processed: self.summary.processed,
            ..self.observer.memory()
        };
        let body = serde_json::to_vec(&stats).unwrap_or_default();
        let _ = self
            .js
            .client()
            .publish(&self.settings.memory_subject(&self.me.id), body);
    }

    /// Releases every lease (after the last message handled was acked) and the presence.
    async fn leave(&mut self) {
        let held: Vec<u32> = self.held.keys().copied().collect();
        for p in held {
            self.release(p).await;
        }
        // Batches still on their way go back to the partitions' next owners.
        while let Some(Some(fetched)) = self.inflight.next().now_or_never() {
            if let Ok(messages) = fetched.result {
                for m in messages {
                    let _ = m.nak();
                }
            }
        }
        if let Err(e) = self.buckets.workers.delete(&self.me.id).await {
            self.observer.trouble("removing this worker", &e.into());
        }
        self.say(StatusKind::Left, None);
        // The status and the naks are on their way before the caller closes the connection.
        let _ = self.js.client().flush().await;
    }
}
