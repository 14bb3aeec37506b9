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

use crate::clock::LeaseClock;
use crate::rules::{self, Action, Held};
use crate::setup::{self, Buckets};
use crate::{
    Event, Identity, LeaseValue, MemoryStats, Settings, StatusEvent, StatusKind, WorkerError,
    WorkerInfo,
};

/// What the worker tells the program that runs it. Every method has a default that does nothing.
pub trait Observer {
    /// An event is about to be acknowledged. `event` is `None` for a message that is not an
    /// [`Event`] (it is acknowledged all the same, so it cannot block its partition). `at`: when
    /// its lease was checked for it, on the clock of the worker's status events.
    fn processed(
        &mut self,
        partition: u32,
        stream_seq: u64,
        event: Option<&Event>,
        redelivered: bool,
        at: u64,
    ) {
        let _ = (partition, stream_seq, event, redelivered, at);
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

    /// A round of upkeep (renewals, rebalancing, the heartbeat) went through, and nothing failed
    /// since the round before: whatever trouble was said is over.
    fn untroubled(&mut self) {}
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
    /// When the pull started on the lease clock, which counts a machine's sleep (an `Instant`
    /// stands still through it, while the server's ack wait runs on).
    started_ms: u64,
    result: Result<Vec<JsMessage>, JetStreamError>,
}

/// What a lease key holds, as read.
enum Lease {
    /// This worker's write, at `revision`, sent at `written_at` (its `renewed_at`).
    Mine {
        revision: u64,
        written_at: u64,
    },
    Other,
    Absent,
}

/// What `work` gives, or `None` if it has not finished within `limit`.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    let work = work.fuse();
    let timer = nats_ws::rt::sleep(limit).fuse();
    futures::pin_mut!(work, timer);
    futures::select_biased! {
        r = work => Some(r),
        _ = timer => None,
    }
}

/// `call`, or [`WorkerError::NoServer`] if it has not finished within `limit`.
async fn bounded<T, E: Into<WorkerError>>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, WorkerError> {
    match within(limit, call).await {
        Some(r) => r.map_err(Into::into),
        None => Err(WorkerError::NoServer),
    }
}

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
    // The connection back wakes the loop at once: while disconnected it runs on its own timer
    // alone, which a hidden tab's browser may hold for a minute, long enough for the leases that
    // outlived a short outage to run out.
    let mut statuses = client.status_stream().fuse();
    let mut was_connected = client.status().is_connected();
    loop {
        if matches!(client.status(), nats_ws::Status::Closed) {
            // Closed by the program: nothing can be released or said any more.
            return Ok(worker.summary);
        }
        // The tick before any batch: with a backlog a batch is always ready, and renewals that
        // waited for a quiet moment would let every lease run into its deadline.
        if Instant::now() >= next_tick {
            let stopped = {
                let maintain = worker.maintain().fuse();
                futures::pin_mut!(maintain);
                // A stop ends the tick where it is: a program that ends now (a tab being closed)
                // gets no further than leaving's first step, which frees the partitions. What the
                // tick had sent is accounted for there: acquisitions whose answers had not come
                // are `unsure` (looked at and released), and a renewal stored after the
                // revision held is found by the release's compare-and-set and deleted at its own.
                futures::select_biased! {
                    _ = stop => true,
                    _ = maintain => false,
                }
            };
            if stopped {
                break;
            }
            next_tick = Instant::now() + settings.tick;
            worker.refill();
            continue;
        }
        let tick = nats_ws::rt::sleep(next_tick.saturating_duration_since(Instant::now())).fuse();
        futures::pin_mut!(tick);
        futures::select_biased! {
            _ = stop => break,
            _ = tick => {}
            fetched = worker.inflight.select_next_some() => worker.handle(fetched),
            // (Ended, a fused stream is never ready again: no spin.) Only a connection that
            // comes back counts: the stream's first item is the status as it is.
            status = statuses.select_next_some() => {
                let connected = status.is_connected();
                if connected && !was_connected {
                    next_tick = Instant::now();
                }
                was_connected = connected;
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
    /// Milliseconds since the Unix epoch, comparable across programs on one machine; never behind
    /// the time that passed, a sleep of the machine included (see [`LeaseClock`]).
    clock: LeaseClock,
    held: BTreeMap<u32, Held>,
    inflight: FuturesUnordered<Fetch>,
    /// Partitions with a fetch outstanding, or paused after a failed one until the next tick.
    busy: BTreeSet<u32>,
    paused: BTreeSet<u32>,
    live_workers: u32,
    /// Its place among the live workers' ids, sorted: decides who holds one more than the others.
    rank: u32,
    offset: u32,
    started_at: u64,
    last_heartbeat: Option<u64>,
    /// The partitions the last heartbeat said were held.
    announced: Vec<u32>,
    last_memory: Option<u64>,
    summary: Summary,
    /// The bucket `leases` (or `workers`) was found deleted: made again at the next tick.
    leases_gone: bool,
    workers_gone: bool,
    /// The buckets must be bound and checked again before any lease is taken: one was deleted
    /// (perhaps made again since by someone else, with another TTL), or a lease held went
    /// missing. Cleared once they are found as the settings say.
    recheck: bool,
    /// Leases released whose deletes are on their way (each at the revision held).
    releasing: BTreeMap<u32, Held>,
    /// Acquisitions whose answer did not come in time (the key may have been stored all the
    /// same), by when they were sent, every try of a key (any one of them may be the stored
    /// one): a key found taken is looked at, and taken over if it holds one of these writes
    /// (rather than left idle until it expires). Each is forgotten after a lease TTL.
    unsure: BTreeMap<u32, Vec<u64>>,
    /// Nothing is acquired before this time (`now()`): after the lease bucket was deleted,
    /// until every lease held in the old one has run out, wherever its holder is.
    no_acquire_until: u64,
    /// Something failed since the last round of upkeep that went through.
    troubled: bool,
    /// The messages this worker processed last.
    recent: Recent,
}

/// The last [`Recent::KEPT`] messages a worker processed, each as its stream sequence and the
/// time it was stored (a stream deleted and made again numbers its messages from 1 again): one
/// delivered to it again is acknowledged again, not processed again. Its acknowledgement was
/// lost, or the server sent a stale copy: nats-server before 2.10.14 can deliver a message it
/// redelivered a second time, with a delivery count of 1, after a delivery failed
/// (nats-server#5305; seen here after a worker was killed with a pull outstanding).
#[derive(Debug, Default)]
struct Recent {
    order: std::collections::VecDeque<(u64, u64)>,
    set: std::collections::HashSet<(u64, u64)>,
}

impl Recent {
    const KEPT: usize = 8192;

    fn contains(&self, message: (u64, u64)) -> bool {
        self.set.contains(&message)
    }

    fn insert(&mut self, message: (u64, u64)) {
        if self.set.insert(message) {
            self.order.push_back(message);
            if self.order.len() > Self::KEPT {
                if let Some(oldest) = self.order.pop_front() {
                    self.set.remove(&oldest);
                }
            }
        }
    }
}

/// Whether `e` says a bucket is gone (its stream deleted).
fn bucket_gone(e: &WorkerError) -> bool {
    matches!(e, WorkerError::Kv(e) if e.is_bucket_gone())
}

impl<'a, O: Observer> Worker<'a, O> {
    fn new(
        js: JetStream,
        settings: &'a Settings,
        me: &'a Identity,
        buckets: Buckets,
        observer: &'a mut O,
    ) -> Self {
        let clock = LeaseClock::new();
        let started_at = clock.now();
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
            clock,
            held: BTreeMap::new(),
            releasing: BTreeMap::new(),
            inflight: FuturesUnordered::new(),
            busy: BTreeSet::new(),
            paused: BTreeSet::new(),
            live_workers: 1,
            rank: 0,
            offset,
            started_at,
            last_heartbeat: None,
            announced: Vec::new(),
            last_memory: None,
            summary: Summary::default(),
            recent: Recent::default(),
            leases_gone: false,
            workers_gone: false,
            recheck: false,
            unsure: BTreeMap::new(),
            no_acquire_until: 0,
            troubled: false,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// This worker's share of the partitions, by its place among the live workers.
    fn share(&self) -> u32 {
        rules::share_of(self.settings.partitions, self.live_workers, self.rank)
    }

    fn say(&mut self, kind: StatusKind, partition: Option<u32>) {
        let at = self.now();
        self.say_at(kind, partition, at);
    }

    fn say_at(&mut self, kind: StatusKind, partition: Option<u32>, at: u64) {
        let event = StatusEvent {
            kind,
            worker: self.me.id.clone(),
            partition,
            at,
            share: self.share(),
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

    /// Stops consuming `partition` at once; says why. A lease that expired or was lost is said to
    /// end no later than its deadline: nothing of it was processed after that, however late the
    /// worker noticed (the feed's intervals are what "never two owners at once" is checked on).
    fn drop_lease(&mut self, partition: u32, kind: StatusKind) -> Option<Held> {
        let held = self.held.remove(&partition)?;
        let now = self.now();
        let at = match kind {
            StatusKind::Expired | StatusKind::Lost => now.min(held.deadline(self.settings)),
            _ => now,
        };
        self.say_at(kind, Some(partition), at);
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
                expires: setup::PULL_EXPIRES,
            };
            let started_ms = self.now();
            self.inflight.push(Box::pin(async move {
                let started = Instant::now();
                let result = js.fetch(&stream, &durable, options).await;
                Fetched {
                    partition,
                    started,
                    started_ms,
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
                self.trouble(
                    &format!("fetching partition {p}"),
                    &WorkerError::JetStream(e),
                );
                return;
            }
        };
        let age = fetched.started.elapsed();
        if messages.is_empty() && age < setup::PULL_EXPIRES / 2 {
            // An empty answer long before the pull expires (e.g. the server refused the pull):
            // asking again at once would spin; wait for the next tick.
            self.paused.insert(p);
        }
        let started = (fetched.started, fetched.started_ms);
        let mut rest = messages.into_iter();
        let mut cut_off = false;
        for message in rest.by_ref() {
            if !self.js.client().status().is_connected() {
                // A batch that came as the connection dropped: an ack now would wait for the
                // next connection, and by then (an outage longer than the lease, or the ack wait)
                // another worker may hold the partition and have been given the same messages
                // again. Processed here too, they would be processed twice. Left, unacknowledged
                // (a nak could come after a new delivery, and make a third), to the ack wait.
                cut_off = true;
                break;
            }
            if self.may_be_redelivered(started) {
                // Delivered so long ago that the server may have queued them for delivery again
                // (a batch that waited behind a slow tick, a stalled process, or a pull nats-server
                // 2.9 left unanswered): processed now, they could be processed twice. Left to the
                // ack wait, which delivers them again; a nak would not be safer: nats-server takes
                // a nak of an earlier delivery while a later one is out, and delivers a third copy.
                // (The rest are dropped below, unacknowledged.)
                break;
            }
            let Some(held) = self.held.get(&p) else {
                // Released or lost while this batch was on its way: the new owner gets it.
                let _ = message.nak();
                break;
            };
            let now = self.now();
            if now >= held.deadline(self.settings) {
                let _ = message.nak();
                self.drop_lease(p, StatusKind::Expired);
                break;
            }
            let info = message.info();
            let seq = info.as_ref().map_or(0, |i| i.stream_sequence);
            let stored = (seq, info.as_ref().map_or(0, |i| i.timestamp_ns));
            if seq != 0 && self.recent.contains(stored) {
                // Processed already (see `Recent`): acknowledged again only.
                let _ = message.ack();
                continue;
            }
            let event: Option<Event> = serde_json::from_slice(&message.message.payload).ok();
            if seq != 0 {
                self.recent.insert(stored);
            }
            self.observer.processed(
                p,
                seq,
                event.as_ref(),
                info.as_ref().is_some_and(|i| i.delivered > 1),
                now,
            );
            self.summary.processed += 1;
            // Fire and forget, like nats.go's Ack: a lost ack means a redelivery, never a loss.
            let _ = message.ack();
        }
        if cut_off {
            self.trouble(
                &format!("processing partition {p} (its batch is left for redelivery)"),
                &WorkerError::NoServer,
            );
            return;
        }
        // Sent back for the next owner, unless they may be out again already (see above).
        if !self.may_be_redelivered(started) {
            for message in rest {
                let _ = message.nak();
            }
        }
    }

    /// Whether messages a pull started at `started` (an `Instant`, and the lease clock's ms)
    /// delivered may have been queued for delivery again by now (their ack wait, less the safety
    /// margin for the ack or nak to get there). The older of the two ages counts: after the
    /// machine slept, only the lease clock knows.
    fn may_be_redelivered(&self, (started, started_ms): (Instant, u64)) -> bool {
        let slept = Duration::from_millis(self.now().saturating_sub(started_ms));
        started.elapsed().max(slept) + self.settings.safety_margin >= self.settings.ack_wait
    }

    /// The periodic part: deadlines, renewals, heartbeat, memory, rebalancing.
    ///
    /// While disconnected only the clock is kept (leases stop at their deadlines): a request
    /// would wait for the connection, and this task with it.
    async fn maintain(&mut self) {
        let connected = self.js.client().status().is_connected();
        if !connected {
            self.trouble("reaching the server", &WorkerError::NoServer);
        }
        // What is about time first, and needs no view of the others: deadlines and renewals.
        let all: BTreeSet<u32> = (0..self.settings.partitions).collect();
        let holding = self.held.len() as u32;
        let urgent = rules::plan(self.settings, self.now(), &self.held, &all, holding, 0);
        let mut renewals = Vec::new();
        for action in urgent {
            match action {
                Action::Stop(p) => {
                    self.drop_lease(p, StatusKind::Expired);
                }
                Action::Renew(p) => renewals.push(p),
                Action::Release(_) | Action::Acquire(_) => {}
            }
        }
        if !connected {
            return self.report_memory();
        }
        if std::mem::take(&mut self.leases_gone) {
            // The leases held went with their bucket (a compare-and-set on a new one could even
            // match a stale revision): consumption under them stops.
            let held: Vec<u32> = self.held.keys().copied().collect();
            self.lose_to_a_deleted_bucket(held);
            self.recheck = true;
        }
        self.renew(&renewals).await;
        if self.workers_gone || self.recheck {
            self.make_buckets_again().await;
        }
        self.repair().await;
        // Then rebalancing, with a view of the leases (without one, nothing is acquired), and
        // only in buckets found as the settings say.
        let view = match self.recheck {
            true => None,
            false => self.read_view().await,
        };
        if let Some(taken) = view {
            self.settle_unsure(&taken).await;
            let share = self.share();
            let plan = rules::plan(
                self.settings,
                self.now(),
                &self.held,
                &taken,
                share,
                self.offset,
            );
            let may_acquire = self.now() >= self.no_acquire_until;
            let mut releases = Vec::new();
            let mut acquires = Vec::new();
            for action in plan {
                match action {
                    Action::Release(p) => releases.push(p),
                    Action::Acquire(p) if may_acquire => acquires.push(p),
                    Action::Acquire(_) => {}
                    // Done above; anything due since comes on the next tick.
                    Action::Stop(_) | Action::Renew(_) => {}
                }
            }
            self.release(&releases).await;
            self.acquire(&acquires).await;
        }
        self.heartbeat().await;
        self.report_memory();
        if !std::mem::take(&mut self.troubled) {
            self.observer.untroubled();
        }
    }

    /// Says `what` failed with `error` (to be retried).
    fn trouble(&mut self, what: &str, error: &WorkerError) {
        self.troubled = true;
        self.observer.trouble(what, error);
    }

    /// Partitions whose lease key exists, and the count of live workers; `None` when the bucket
    /// could not be read.
    ///
    /// A listing whose connection drops midway fails only after the API's timeout (5 s), so each
    /// is bounded by a renewal period: longer, and the deadlines would slip.
    async fn read_view(&mut self) -> Option<BTreeSet<u32>> {
        let limit = self.settings.renew_every;
        match bounded(limit, self.buckets.workers.keys()).await {
            // Itself included, even before its first heartbeat lands.
            Ok(mut keys) => {
                if !keys.contains(&self.me.id) {
                    keys.push(self.me.id.clone());
                }
                keys.sort_unstable();
                self.live_workers = keys.len() as u32;
                self.rank = keys.iter().position(|k| *k == self.me.id).unwrap_or(0) as u32;
            }
            Err(e) => {
                self.workers_gone |= bucket_gone(&e);
                self.trouble("reading the workers", &e);
            }
        }
        match bounded(limit, self.buckets.leases.keys()).await {
            Ok(keys) => {
                let taken: BTreeSet<u32> = keys
                    .iter()
                    .filter_map(|k| self.settings.partition_of_key(k))
                    .collect();
                // A lease of a partition past this worker's last: another worker runs with more
                // partitions, and theirs past ours go only to workers like it. Said for as long
                // as it lasts (each round: it is not over until the keys are gone).
                let partitions = self.settings.partitions;
                let beyond = (keys.iter())
                    .filter_map(|k| self.settings.partition_beyond(k))
                    .max();
                if let Some(p) = beyond {
                    let why = format!(
                        "partition {p} is held by a worker with more than this one's {partitions} partitions; every worker must use the same number"
                    );
                    self.trouble("checking the partitions", &WorkerError::Mismatch(why));
                }
                // A lease held is there until after its deadline (it expires a TTL after it was
                // written, the deadline comes a margin before): one past its deadline stops as
                // expired (renewals that timed out), one that is missing before it was deleted
                // (its bucket too, perhaps, made again since): stop consuming under it, and let
                // the other holders of the old bucket's leases run out before acquiring.
                let now = self.now();
                let expired: Vec<u32> = self
                    .held
                    .iter()
                    .filter(|(_, h)| now >= h.deadline(self.settings))
                    .map(|(&p, _)| p)
                    .collect();
                for p in expired {
                    self.drop_lease(p, StatusKind::Expired);
                }
                let missing: Vec<u32> = self
                    .held
                    .keys()
                    .filter(|p| !taken.contains(p))
                    .copied()
                    .collect();
                if !missing.is_empty() {
                    self.lose_to_a_deleted_bucket(missing);
                    self.recheck = true;
                }
                Some(taken)
            }
            Err(e) => {
                self.leases_gone |= bucket_gone(&e);
                self.trouble("reading the leases", &e);
                None
            }
        }
    }

    /// A bucket was deleted: made again, as at the start. When it was `leases`, the leases held
    /// went with it (a compare-and-set on the new bucket could even match a stale revision):
    /// consumption under them stops, and nothing is acquired for a TTL. `workers` only shows who
    /// is there: the leases stay.
    async fn make_buckets_again(&mut self) {
        self.workers_gone = false;
        // Bounded: the renewals come after it. A bucket made again with another TTL is refused
        // here (see `setup::ensure_buckets`): no lease is taken in it until it is as it should be.
        let limit = self.settings.renew_every;
        match bounded(limit, setup::ensure_buckets(&self.js, self.settings)).await {
            Ok(buckets) => {
                self.buckets = buckets;
                self.recheck = false;
            }
            Err(e) => {
                self.recheck = true;
                self.trouble("making the lease buckets again", &e);
            }
        }
    }

    /// Stops consuming under `partitions`, whose leases went with their bucket, and acquires
    /// nothing for a lease TTL from now: a lease of the old bucket still held somewhere has run
    /// out by then.
    fn lose_to_a_deleted_bucket(&mut self, partitions: Vec<u32>) {
        for p in partitions {
            self.drop_lease(p, StatusKind::Lost);
        }
        self.no_acquire_until = self.now() + self.settings.lease_ttl.as_millis() as u64;
    }

    /// The lease key's value for a write sent at `sent`.
    fn lease_value(&self, sent: u64) -> Vec<u8> {
        serde_json::to_vec(&LeaseValue {
            owner: self.me.id.clone(),
            renewed_at: sent,
        })
        .unwrap_or_default()
    }

    async fn renew(&mut self, partitions: &[u32]) {
        let sent = self.now();
        let value = self.lease_value(sent);
        // Only what is still held (the buckets may have been made again since the list).
        let writes = partitions.iter().filter_map(|&p| {
            let revision = self.held.get(&p)?.revision;
            let key = self.settings.lease_key(p);
            let leases = &self.buckets.leases;
            let value = &value;
            // Bounded: a renewal still unanswered at the next one is as good as failed.
            let limit = self.settings.renew_every;
            Some(async move {
                (
                    p,
                    bounded(limit, leases.update(&key, value, revision)).await,
                )
            })
        });
        let mut conflicts = Vec::new();
        for (p, result) in futures::future::join_all(writes).await {
            match result {
                Ok(revision) => {
                    if let Some(h) = self.held.get_mut(&p) {
                        h.revision = revision;
                        h.written_at = sent;
                    }
                }
                // Another write since the one held: an earlier renewal whose answer came too
                // late (it was stored all the same), or another owner.
                Err(WorkerError::Kv(KvError::WrongLastRevision { .. })) => conflicts.push(p),
                // Not renewed this time: the deadline decides.
                Err(e) => self.trouble(&format!("renewing partition {p}"), &e),
            }
        }
        for (p, read) in self.whose_all(&conflicts).await {
            match read {
                // A write of its own after the one held (not an older one, as a lagging
                // replica could show): the lease from that write on.
                Ok(Lease::Mine {
                    revision,
                    written_at,
                }) if self
                    .held
                    .get(&p)
                    .is_some_and(|h| revision > h.revision && written_at > h.written_at) =>
                {
                    if let Some(h) = self.held.get_mut(&p) {
                        h.revision = revision;
                        h.written_at = written_at;
                    }
                }
                // Gone while held: the bucket may have been deleted and made again.
                Ok(Lease::Absent) => {
                    self.lose_to_a_deleted_bucket(vec![p]);
                    self.recheck = true;
                }
                Ok(_) => {
                    self.drop_lease(p, StatusKind::Lost);
                }
                // Not known: the deadline decides, as for a renewal not answered.
                Err(e) => self.trouble(&format!("reading the lease of partition {p}"), &e),
            }
        }
    }

    /// [`Worker::whose`] of each of `partitions`, all at once (one by one, after a burst of
    /// late answers, they could take a renewal period each).
    async fn whose_all(&self, partitions: &[u32]) -> Vec<(u32, Result<Lease, WorkerError>)> {
        let reads = partitions
            .iter()
            .map(|&p| async move { (p, self.whose(p).await) });
        futures::future::join_all(reads).await
    }

    /// What the lease key of `partition` holds: this worker's own write (its revision, and when
    /// it was sent: the key expires a TTL after it was stored, later), another's, or nothing.
    async fn whose(&self, partition: u32) -> Result<Lease, WorkerError> {
        let key = self.settings.lease_key(partition);
        let entry = bounded(self.settings.renew_every, self.buckets.leases.get(&key)).await?;
        let Some(entry) = entry else {
            return Ok(Lease::Absent);
        };
        let value: Option<LeaseValue> = serde_json::from_slice(&entry.value).ok();
        Ok(match value {
            Some(value) if value.owner == self.me.id => Lease::Mine {
                revision: entry.revision,
                written_at: value.renewed_at,
            },
            _ => Lease::Other,
        })
    }

    /// The partitions some acquisitions of which went unanswered and which are now taken: each
    /// key that holds this worker's write is its lease. (Without this the partition stayed idle
    /// until the key expired: nobody else may take it, and this worker did not know it held it.)
    async fn settle_unsure(&mut self, taken: &BTreeSet<u32>) {
        let now = self.now();
        let ttl = self.settings.lease_ttl.as_millis() as u64;
        self.unsure.retain(|_, sent| {
            sent.retain(|at| now < *at + ttl);
            !sent.is_empty()
        });
        // Taken only when an acquisition could be made.
        if self.recheck || now < self.no_acquire_until {
            return;
        }
        let look: Vec<u32> = (self.unsure.keys())
            .filter(|p| taken.contains(p) && !self.held.contains_key(p))
            .copied()
            .collect();
        self.take_unsure(&look).await;
    }

    /// Takes each of `partitions` whose key holds the write of this worker's unanswered
    /// acquisition; forgets those another holds.
    async fn take_unsure(&mut self, partitions: &[u32]) {
        for (p, read) in self.whose_all(partitions).await {
            match read {
                // The very write that acquisition sent (its send time is in the value): it was
                // stored, so the key cannot expire before a TTL after that time.
                Ok(Lease::Mine {
                    revision,
                    written_at,
                }) if self
                    .unsure
                    .get(&p)
                    .is_some_and(|sent| sent.contains(&written_at)) =>
                {
                    self.unsure.remove(&p);
                    self.held.insert(
                        p,
                        Held {
                            revision,
                            acquired_at: self.now(),
                            written_at,
                        },
                    );
                    self.say(StatusKind::Acquired, Some(p));
                }
                Ok(Lease::Other) => {
                    self.unsure.remove(&p);
                }
                // Not (yet) as that acquisition wrote it: looked at again at the next tick.
                Ok(_) => {}
                Err(e) => self.trouble(&format!("reading the lease of partition {p}"), &e),
            }
        }
    }

    /// A fetch failed: the consumer (or the stream) may have been deleted; made again, all at
    /// once and for a renewal period at most. (One by one, each unanswered while a cluster
    /// elects the stream's leader, they held the next renewals back past their deadlines.)
    async fn repair(&mut self) {
        if self.paused.is_empty() {
            return;
        }
        let paused = std::mem::take(&mut self.paused);
        let (js, settings) = (&self.js, self.settings);
        let repairs = async {
            let stream = setup::ensure_stream(js, settings).await;
            let consumers = paused
                .iter()
                .map(|&p| async move { (p, setup::ensure_consumer(js, settings, p).await) });
            (stream, futures::future::join_all(consumers).await)
        };
        match within(settings.renew_every, repairs).await {
            Some((stream, consumers)) => {
                if let Err(e) = stream {
                    self.trouble("checking the stream", &e);
                }
                for (p, result) in consumers {
                    if let Err(e) = result {
                        self.trouble(&format!("checking consumer {p}"), &e);
                    }
                }
            }
            // Their next failed fetches bring them here again.
            None => self.trouble("checking the stream and consumers", &WorkerError::NoServer),
        }
    }

    /// Stops consuming `partitions`, then deletes their keys at the revisions held, all at once
    /// (a key whose delete fails expires).
    async fn release(&mut self, partitions: &[u32]) {
        let released = self.drop_leases(partitions);
        // Until their deletes are answered: a stop that cuts this short leaves them to `leave`.
        self.releasing.extend(released.iter().cloned());
        let results = self.delete_leases(&released).await;
        for (p, _) in &released {
            self.releasing.remove(p);
        }
        self.report_releases(results);
    }

    /// Forgets the leases of `partitions` held, saying so; what was held.
    fn drop_leases(&mut self, partitions: &[u32]) -> Vec<(u32, Held)> {
        partitions
            .iter()
            .filter_map(|&p| Some((p, self.drop_lease(p, StatusKind::Released)?)))
            .collect()
    }

    /// Deletes the lease keys of `released`, each at the revision held, all at once: every
    /// delete is sent at the first poll. Nothing while disconnected: the deletes would wait for
    /// the connection (a leave could take seconds per lease).
    async fn delete_leases(&self, released: &[(u32, Held)]) -> Vec<(u32, Result<(), WorkerError>)> {
        if released.is_empty() || !self.js.client().status().is_connected() {
            return Vec::new();
        }
        let (leases, settings) = (&self.buckets.leases, self.settings);
        let deletes = released.iter().map(|&(p, ref held)| async move {
            let key = settings.lease_key(p);
            let delete = leases.delete_expecting(&key, held.revision);
            let result = match bounded(settings.renew_every, delete).await {
                // A renewal stored after the revision held (a stop ended the tick before its
                // answer came, or the answer came too late): the key is still this worker's.
                // A read may come from a replica behind (an older write of its own): read again,
                // a few times; past that the key is left to expire.
                Err(WorkerError::Kv(KvError::WrongLastRevision { .. })) => {
                    let mut result = Ok(());
                    for _ in 0..3 {
                        match self.whose(p).await {
                            Ok(Lease::Mine { revision, .. }) if revision > held.revision => {
                                let delete = leases.delete_expecting(&key, revision);
                                result = bounded(settings.renew_every, delete).await.map(drop);
                                break;
                            }
                            Ok(Lease::Mine { .. }) => continue,
                            // Another's, or gone: nothing of this worker's is left in it.
                            Ok(_) => break,
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    result
                }
                result => result.map(drop),
            };
            (p, result)
        });
        futures::future::join_all(deletes).await
    }

    fn report_releases(&mut self, results: Vec<(u32, Result<(), WorkerError>)>) {
        for (p, result) in results {
            match result {
                Ok(()) | Err(WorkerError::Kv(KvError::WrongLastRevision { .. })) => {}
                Err(e) => self.trouble(&format!("releasing partition {p}"), &e),
            }
        }
    }

    /// Creates the lease keys of `partitions`, all at once.
    async fn acquire(&mut self, partitions: &[u32]) {
        if partitions.is_empty() {
            return;
        }
        // The bucket as the settings say, now: one deleted and made again by someone else with
        // another TTL goes unnoticed by a worker that held nothing in it.
        let limit = self.settings.renew_every;
        match bounded(limit, self.buckets.leases.status()).await {
            Ok(status) if status.ttl == self.settings.lease_ttl => {}
            Ok(_) => {
                self.recheck = true;
                return;
            }
            Err(e) => {
                self.recheck |= bucket_gone(&e);
                self.trouble("checking the lease bucket", &e);
                return;
            }
        }
        let sent = self.now();
        let value = self.lease_value(sent);
        // Each one unsure until its answer says otherwise: if a stop ends the tick before the
        // answers come, leaving still finds and releases what was stored (an earlier
        // unanswered try of the same key keeps its own time beside this one's).
        for &p in partitions {
            self.unsure.entry(p).or_default().push(sent);
        }
        let (leases, settings, value) = (&self.buckets.leases, self.settings, &value);
        let creates = partitions.iter().map(|&p| async move {
            let key = settings.lease_key(p);
            (
                p,
                bounded(settings.renew_every, leases.create(&key, value)).await,
            )
        });
        for (p, result) in futures::future::join_all(creates).await {
            // Answered: this try is no longer unsure (an earlier one of the key may still be).
            let answered = !matches!(&result, Err(e) if setup::is_transient(e));
            if answered {
                if let Some(tries) = self.unsure.get_mut(&p) {
                    tries.retain(|at| *at != sent);
                    if tries.is_empty() {
                        self.unsure.remove(&p);
                    }
                }
            }
            match result {
                Ok(revision) => {
                    self.unsure.remove(&p);
                    self.held.insert(
                        p,
                        Held {
                            revision,
                            acquired_at: self.now(),
                            written_at: sent,
                        },
                    );
                    self.say(StatusKind::Acquired, Some(p));
                }
                // Someone was quicker (or an earlier try of this worker's: see `settle_unsure`).
                Err(WorkerError::Kv(KvError::KeyExists { .. })) => {}
                // Unanswered or lost on the way (it may have been stored: it stays unsure), or
                // refused.
                Err(e) => self.trouble(&format!("acquiring partition {p}"), &e),
            }
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
        // At once when the partitions held changed since the last one: pages show who holds
        // what from these (a lease taken showed under nobody, or two workers, until the next).
        let held: Vec<u32> = self.held.keys().copied().collect();
        if self.last_heartbeat.is_some_and(|at| now < at + every) && held == self.announced {
            return;
        }
        let body = serde_json::to_vec(&self.info()).unwrap_or_default();
        let put = self.buckets.workers.put(&self.me.id, body);
        match bounded(self.settings.renew_every, put).await {
            Ok(_) => {
                self.last_heartbeat = Some(now);
                self.announced = held;
            }
            Err(e) => self.trouble("announcing this worker", &e),
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
        // A tab being closed runs this only as far as its first wait for an answer (the page's
        // `pagehide`): what the other workers need to take over at once goes out before it. The
        // leases held are deleted, this worker's presence too (or the others would keep leaving
        // it its share), and batches still on their way go back to the partitions' next owners.
        let held: Vec<u32> = self.held.keys().copied().collect();
        // Keys that unanswered acquisitions may have made are released too, rather than left to
        // expire with nobody working on their partitions: looked at once the rest is done.
        let unsure: Vec<u32> = (self.unsure.keys())
            .filter(|p| !self.held.contains_key(p))
            .copied()
            .collect();
        let mut released = self.drop_leases(&held);
        // Released by a tick the stop cut short, their deletes perhaps not answered: again.
        released.extend(std::mem::take(&mut self.releasing));
        while let Some(Some(fetched)) = self.inflight.next().now_or_never() {
            if self.may_be_redelivered((fetched.started, fetched.started_ms)) {
                continue;
            }
            if let Ok(messages) = fetched.result {
                for m in messages {
                    let _ = m.nak();
                }
            }
        }
        let connected = self.js.client().status().is_connected();
        // Said at once: a closing tab gets no further. Keys that unanswered acquisitions stored
        // are said after it, as they are found (acquired, then released).
        self.say(StatusKind::Left, None);
        let gone = async {
            if !connected {
                return None;
            }
            let delete = self.buckets.workers.delete(&self.me.id);
            Some(bounded(self.settings.renew_every, delete).await)
        };
        let (results, gone) = futures::join!(self.delete_leases(&released), gone);
        self.report_releases(results);
        if let Some(Err(e)) = gone {
            self.trouble("removing this worker", &e);
        }
        if !unsure.is_empty() && self.js.client().status().is_connected() {
            self.take_unsure(&unsure).await;
            let taken: Vec<u32> = self.held.keys().copied().collect();
            self.release(&taken).await;
        }
        // The status and the naks are on their way before the caller closes the connection: a
        // flush, for a second at most (it waits for a reconnection, or fails with a lost one).
        let flush = self.js.client().flush().fuse();
        let limit = nats_ws::rt::sleep(Duration::from_secs(1)).fuse();
        futures::pin_mut!(flush, limit);
        futures::select_biased! {
            _ = flush => {}
            _ = limit => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn a_worker_remembers_the_last_messages_it_processed() {
        let mut recent = Recent::default();
        assert!(!recent.contains((7, 70)));
        recent.insert((7, 70));
        recent.insert((7, 70));
        assert!(recent.contains((7, 70)));
        // The same number in a stream made again is another message.
        assert!(!recent.contains((7, 71)));
        assert_eq!(recent.order.len(), 1, "kept once");
        for seq in 100..100 + Recent::KEPT as u64 {
            recent.insert((seq, seq));
        }
        // The oldest made room for the newest.
        assert!(!recent.contains((7, 70)));
        let last = 99 + Recent::KEPT as u64;
        assert!(recent.contains((100, 100)) && recent.contains((last, last)));
        assert_eq!(
            (recent.order.len(), recent.set.len()),
            (Recent::KEPT, Recent::KEPT)
        );
    }
}
