//! A KV bucket that another program owns, watched live: the map of its keys, for as long as the
//! calling component lives.
//!
//! Unlike `leptos_nats::use_kv_watch`, this never creates the bucket. The agent creates
//! `processes` and `services_registry` with its own settings (the registry's 15 s max age is what
//! removes a crashed owner's entry); a page that created them first, with defaults, would take
//! that away. While the bucket does not exist, the map is empty and `missing` is true.
//!
//! Times that other programs wrote into values (a heartbeat, a start) are their clocks, not this
//! browser's, which may be off by any amount. [`LiveBucket::server_time`] is this browser's clock
//! moved onto the server's, estimated from when the server stored each value the watch delivers
//! ([`ClockOffset`]); on the machine that runs nats-server (and its agents) that is their clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected};
use nats_ws::kv::{Entry, KvError, Operation, SystemTime, WatchEvent};
use nats_ws::Client;

use crate::components::clock::{monotonic_ms, now_ms};

/// How often a missing bucket is looked for again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);
/// How often a bucket this user may not read is tried again (and after a new connection): only
/// a change of the user's permissions in the server's config would make a try work.
const REFUSED_AGAIN: Duration = Duration::from_secs(30);

/// What the page says of `e`, met reading `bucket`: a refusal for the user's permissions in the
/// user's terms (it names the bucket), anything else after the bucket's name.
fn say(bucket: &str, e: &KvError) -> String {
    let text = crate::session::explain(e);
    if e.is_permission_denied() {
        text
    } else {
        format!("bucket {bucket}: {text}")
    }
}
/// How often values past the bucket's max age are dropped from the map.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// The keys whose value arrived `ttl` or more ago (`arrived`: when each key's value arrived, on
/// the monotonic clock). nats-server removes a value past its bucket's max age without a word to
/// watchers: the map would keep it (and every page read it again each time it draws) for as
/// long as the tab lives. A value is at most its max age old when it is removed, and no younger
/// when it arrives, so it is surely gone a max age after it arrived: no clock of the server's,
/// or estimate of it, is needed (a value may be shown up to a max age longer than it lives).
fn expired_keys(arrived: &HashMap<String, f64>, ttl: Duration, now_ms: f64) -> Vec<String> {
    if ttl.is_zero() {
        return Vec::new();
    }
    let ttl_ms = ttl.as_secs_f64() * 1000.0;
    arrived
        .iter()
        .filter(|(_, at)| now_ms - **at >= ttl_ms)
        .map(|(key, _)| key.clone())
        .collect()
}

/// What [`watch_existing_bucket`] returns. `Copy`.
#[derive(Clone, Copy)]
pub struct LiveBucket {
    /// Every key with a value.
    pub entries: RwSignal<BTreeMap<String, Entry>>,
    /// True once the initial values are in (or the bucket is known not to exist).
    pub loaded: RwSignal<bool>,
    /// The bucket does not exist (yet).
    pub missing: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    /// This browser's clock minus the server's.
    offset: StoredValue<ClockOffset>,
}

/// How far this browser's clock is ahead of the server's (ms; negative when behind), from values
/// the server stored. One that arrives live (the watch had caught up and nothing newer was
/// stored) arrived its latency after the server stored it: arrival minus storage is the offset
/// plus a few ms, or more when the tab was busy or in the background; of the live ones of the
/// last [`LIVE_WINDOW_MS`] the smallest is taken. Values from before the watch caught up arrived
/// late by their age, so they only bound it from above: without a live one the clocks are taken
/// to agree, unless those values prove this browser is behind (a bucket someone writes every few
/// seconds has a live value within seconds; one nobody writes has nothing alive to misjudge).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClockOffset {
    /// (arrived, offset) of the live values of the last [`LIVE_WINDOW_MS`], oldest first.
    live: VecDeque<(f64, f64)>,
    earlier: Option<f64>,
}

/// How long a live value's offset counts.
pub const LIVE_WINDOW_MS: f64 = 30_000.0;
/// At most this many live values are kept (a busy bucket has many within the window).
const LIVE_KEPT: usize = 64;

impl ClockOffset {
    /// A value the server stored at `stored_ms` arrived at `arrived_ms` (this browser's clock);
    /// `live`: the watch had caught up and nothing newer was stored.
    pub fn observe(&mut self, arrived_ms: f64, stored_ms: f64, live: bool) {
        let offset = arrived_ms - stored_ms;
        if !offset.is_finite() {
            return;
        }
        if !live {
            self.earlier = Some(self.earlier.map_or(offset, |e| e.min(offset)));
            return;
        }
        while self
            .live
            .front()
            .is_some_and(|(at, _)| arrived_ms - at > LIVE_WINDOW_MS || self.live.len() >= LIVE_KEPT)
        {
            self.live.pop_front();
        }
        self.live.push_back((arrived_ms, offset));
    }

    /// The best estimate so far; 0 (the clocks agree) before anything tells otherwise.
    pub fn get(&self) -> f64 {
        let live = self.live.iter().map(|(_, o)| *o).reduce(f64::min);
        live.unwrap_or_else(|| self.earlier.map_or(0.0, |e| e.min(0.0)))
    }

    /// Whether a value has told anything yet.
    pub fn known(&self) -> bool {
        !self.live.is_empty() || self.earlier.is_some()
    }
}

/// Watches every key of `bucket` on `client`, started over if the watch ends.
pub fn watch_existing_bucket(client: Client, bucket: &'static str) -> LiveBucket {
    let live = LiveBucket {
        entries: RwSignal::new(BTreeMap::new()),
        loaded: RwSignal::new(false),
        missing: RwSignal::new(false),
        error: RwSignal::new(None),
        offset: StoredValue::new(ClockOffset::default()),
    };
    spawn_while_mounted(async move {
        let js = client.jetstream();
        loop {
            if !until_connected(&client).await {
                return;
            }
            let store = match js.key_value(bucket).await {
                Ok(store) => store,
                Err(KvError::BucketNotFound { .. }) => {
                    live.missing.set(true);
                    live.entries.set(BTreeMap::new());
                    live.loaded.set(true);
                    gloo_timers::future::sleep(LOOK_AGAIN).await;
                    continue;
                }
                Err(e) => {
                    if client.status().is_connected() {
                        live.error.set(Some(say(bucket, &e)));
                    }
                    let pause = match e.is_permission_denied() {
                        true => REFUSED_AGAIN,
                        false => LOOK_AGAIN,
                    };
                    leptos_nats::pause_until_reconnect(&client, pause).await;
                    continue;
                }
            };
            live.missing.set(false);
            live.error.set(None);
            // Its max age, to drop what the server removes silently (0: none, or not known).
            let ttl = store.status().await.map(|s| s.ttl).unwrap_or_default();
            let mut prune = (!ttl.is_zero())
                .then(|| gloo_timers::future::IntervalStream::new(PRUNE_EVERY.as_millis() as u32));
            let mut watch = match store.watch_all() {
                Ok(watch) => watch,
                Err(e) => {
                    live.error.set(Some(say(bucket, &e)));
                    gloo_timers::future::sleep(LOOK_AGAIN).await;
                    continue;
                }
            };
            // The map starts over with the first initial value (or the end of them).
            let mut fresh = true;
            // When each key's value arrived, for dropping it once it is surely expired.
            let mut arrived: HashMap<String, f64> = HashMap::new();
            // Values arrive as they are stored once the initial ones are in.
            let mut caught_up = false;
            loop {
                let event = futures::select! {
                    event = watch.next().fuse() => match event {
                        Some(event) => event,
                        None => break,
                    },
                    _ = async {
                        match prune.as_mut() {
                            Some(prune) => drop(prune.next().await),
                            None => futures::future::pending::<()>().await,
                        }
                    }
                    .fuse() => {
                        let gone = expired_keys(&arrived, ttl, monotonic_ms());
                        if !gone.is_empty() {
                            live.entries.update(|map| {
                                for key in &gone {
                                    map.remove(key);
                                    arrived.remove(key);
                                }
                            });
                        }
                        continue;
                    }
                };
                // An error is shown until the watch delivers again.
                if event.is_ok() && live.error.with_untracked(Option::is_some) {
                    live.error.set(None);
                }
                if let Ok(WatchEvent::Entry(Entry {
                    created: Some(created),
                    delta,
                    ..
                })) = &event
                {
                    if let Ok(stored) = created.duration_since(SystemTime::UNIX_EPOCH) {
                        let stored = stored.as_secs_f64() * 1000.0;
                        // What was stored while the watch was away (a reconnect) is not live.
                        let live_now = caught_up && *delta == 0;
                        live.offset
                            .update_value(|o| o.observe(now_ms(), stored, live_now));
                    }
                }
                match event {
                    Ok(WatchEvent::Entry(entry)) => live.entries.update(|map| {
                        if std::mem::take(&mut fresh) {
                            map.clear();
                            arrived.clear();
                        }
                        if entry.operation == Operation::Put {
                            arrived.insert(entry.key.clone(), monotonic_ms());
                            map.insert(entry.key.clone(), entry);
                        } else {
                            arrived.remove(&entry.key);
                            map.remove(&entry.key);
                        }
                    }),
                    Ok(WatchEvent::InitialDone) => {
                        caught_up = true;
                        if std::mem::take(&mut fresh) {
                            live.entries.set(BTreeMap::new());
                        }
                        live.loaded.set(true);
                    }
                    // The bucket was recreated: start over with its values.
                    Ok(WatchEvent::Reset) => {
                        fresh = true;
                        caught_up = false;
                    }
                    Ok(_) => {}
                    // Deleted (by an admin, say): what it held is gone too; looked for again
                    // until it is back.
                    Err(e) if leptos_nats::bucket_gone(&e) => {
                        live.entries.set(BTreeMap::new());
                        live.missing.set(true);
                        break;
                    }
                    Err(e) => live.error.set(Some(say(bucket, &e))),
                }
            }
            gloo_timers::future::sleep(LOOK_AGAIN).await;
        }
    });
    live
}

impl LiveBucket {
    /// The server's time (ms since the epoch) as this browser's clock `local` tells it: `local`
    /// minus the [`ClockOffset`] estimated so far. Compare times other programs wrote with this,
    /// not with this browser's clock.
    pub fn server_time(self, local: ReadSignal<f64>) -> Signal<f64> {
        server_time_of([self], local)
    }
}

/// [`LiveBucket::server_time`] from the first of `buckets` whose values told the offset (all on
/// the same server). It stands still while the tab is not connected: what a heartbeat's age says
/// (a worker, a registration gone quiet) cannot be known then, and the buckets show what was
/// last known, not everything expired one TTL into an outage.
pub fn server_time_of<const N: usize>(
    buckets: [LiveBucket; N],
    local: ReadSignal<f64>,
) -> Signal<f64> {
    let status = leptos_nats::use_nats().status;
    let time = Memo::new(move |last: Option<&f64>| {
        let connected = status.with(|s| s.is_connected());
        match last {
            Some(&last) if !connected => last,
            _ => {
                let offset = buckets
                    .iter()
                    .find_map(|b| b.offset.with_value(|o| o.known().then(|| o.get())))
                    .unwrap_or(0.0);
                local.get() - offset
            }
        }
    });
    time.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_values_tell_the_offset_earlier_ones_only_bound_it() {
        let mut o = ClockOffset::default();
        assert_eq!(o.get(), 0.0, "no value yet: the clocks are taken to agree");
        assert!(!o.known());
        // This browser is 60 s ahead. Values from before the watch caught up, 9 s and 2 s old:
        // they do not prove it is ahead (they may just be old), so the clocks still agree.
        o.observe(1_000_000.0, 1_000_000.0 - 60_000.0 - 9_000.0, false);
        o.observe(1_000_001.0, 1_000_001.0 - 60_000.0 - 2_000.0, false);
        assert!(o.known());
        assert_eq!(o.get(), 0.0);
        // A value stored as it was delivered (3 ms on the way).
        o.observe(1_005_000.0, 1_005_000.0 - 60_000.0 - 3.0, true);
        assert_eq!(o.get(), 60_003.0);
        // A late live one (a busy tab) does not move it; a faster one does.
        o.observe(1_010_000.0, 1_010_000.0 - 60_000.0 - 900.0, true);
        assert_eq!(o.get(), 60_003.0);
        o.observe(1_015_000.0, 1_015_000.0 - 60_000.0 - 1.0, true);
        assert_eq!(o.get(), 60_001.0);
        // An earlier value after that changes nothing.
        o.observe(1_016_000.0, 900_000.0, false);
        assert_eq!(o.get(), 60_001.0);
        // The clock was set back by 10 s: once the window has passed, the new offset counts.
        o.observe(1_050_000.0, 1_050_000.0 - 50_000.0 - 2.0, true);
        assert_eq!(o.get(), 50_002.0);
    }

    #[test]
    fn a_browser_behind_the_server_is_told_by_earlier_values_too() {
        let mut behind = ClockOffset::default();
        // 30 s behind; the freshest earlier value is 1 s old.
        behind.observe(1_000.0, 1_000.0 + 30_000.0 - 5_000.0, false);
        behind.observe(1_000.0, 1_000.0 + 30_000.0 - 1_000.0, false);
        assert_eq!(behind.get(), -29_000.0);
        behind.observe(2_000.0, 2_000.0 + 30_000.0 - 4.0, true);
        assert_eq!(behind.get(), -29_996.0);
        behind.observe(f64::NAN, 1.0, true);
        assert_eq!(behind.get(), -29_996.0, "nonsense is ignored");
        // A busy bucket keeps a bounded number of live values.
        for i in 0..1000 {
            behind.observe(3_000.0 + f64::from(i), 33_000.0 + f64::from(i), true);
        }
        assert!(behind.live.len() <= LIVE_KEPT);
        assert_eq!(behind.get(), -30_000.0);
    }
}

#[cfg(test)]
mod prune_tests {
    use super::*;

    #[test]
    fn values_a_max_age_after_they_arrived_are_dropped() {
        let arrived: HashMap<String, f64> =
            [("old".to_owned(), 1_000.0), ("new".to_owned(), 10_000.0)]
                .into_iter()
                .collect();
        let ttl = Duration::from_secs(15);
        assert!(
            expired_keys(&arrived, ttl, 15_999.0).is_empty(),
            "nothing is past its age yet"
        );
        assert_eq!(expired_keys(&arrived, ttl, 16_000.0), ["old"]);
        // No max age: nothing expires.
        assert!(expired_keys(&arrived, Duration::ZERO, f64::MAX).is_empty());
    }
}
