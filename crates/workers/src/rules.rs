//! The lease rules, pure: given what a worker holds, which partitions anyone holds and how many
//! workers are alive, what it must do now. Times are milliseconds on whatever clock the caller
//! uses, so the rules are tested on a fake one (see the simulation below).

use std::collections::{BTreeMap, BTreeSet};

use crate::Settings;

/// A lease this worker holds, as it knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The revision of the lease key this worker wrote last.
    pub revision: u64,
    /// When consumption started.
    pub acquired_at: u64,
    /// When the last successful write (create or renewal) was *sent*: the server stored it later,
    /// so the lease cannot expire before `written_at + ttl`.
    pub written_at: u64,
}

impl Held {
    /// After this, the lease may be gone on the server: stop consuming.
    pub fn deadline(&self, settings: &Settings) -> u64 {
        let ttl = settings.lease_ttl.as_millis() as u64;
        let margin = settings.safety_margin.as_millis() as u64;
        self.written_at + ttl.saturating_sub(margin)
    }

    pub fn renewal_due(&self, settings: &Settings, now: u64) -> bool {
        now >= self.written_at + settings.renew_every.as_millis() as u64
    }
}

/// ceil(partitions / live workers): the most any worker holds once balanced.
pub fn fair_share(partitions: u32, live_workers: u32) -> u32 {
    partitions.div_ceil(live_workers.max(1))
}

/// The share of the worker at `rank` (its place among the live workers' ids, sorted):
/// partitions / live, plus one for the first partitions mod live. The shares add up to exactly the
/// partitions; with ceil for everyone, 8 partitions and 5 workers could settle at 2, 2, 2, 2, 0.
pub fn share_of(partitions: u32, live_workers: u32, rank: u32) -> u32 {
    let live = live_workers.max(1);
    partitions / live + u32::from(rank < partitions % live)
}

/// One thing to do, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The deadline passed without a renewal: stop consuming now (the key is left to expire).
    Stop(u32),
    /// Write the lease again at the revision held.
    Renew(u32),
    /// Above the fair share: stop consuming, then delete the key at the revision held.
    Release(u32),
    /// Free and below the fair share: try to create the key.
    Acquire(u32),
}

/// What a worker must do at `now`.
///
/// - `held`: its leases; `taken`: partitions whose lease key exists (anyone's, its own included);
/// - `share`: how many it should hold ([`share_of`]);
/// - `offset`: where this worker starts looking for free partitions (e.g. a hash of its id), so
///   that workers joining together do not all race for partition 0.
pub fn plan(
    settings: &Settings,
    now: u64,
    held: &BTreeMap<u32, Held>,
    taken: &BTreeSet<u32>,
    share: u32,
    offset: u32,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut keep = Vec::new();
    for (&p, h) in held {
        if now >= h.deadline(settings) {
            actions.push(Action::Stop(p));
        } else {
            keep.push(p);
            if h.renewal_due(settings, now) {
                actions.push(Action::Renew(p));
            }
        }
    }
    let share = share as usize;
    if keep.len() > share {
        // Give up the ones acquired last: the longest-held stay where they are.
        keep.sort_by_key(|p| std::cmp::Reverse(held[p].acquired_at));
        let excess = keep.len() - share;
        for &p in &keep[..excess] {
            actions.retain(|a| *a != Action::Renew(p));
            actions.push(Action::Release(p));
        }
    } else if keep.len() < share {
        let n = settings.partitions.max(1);
        let free = (0..n)
            .map(|i| (i + offset) % n)
            .filter(|p| !taken.contains(p) && !held.contains_key(p));
        actions.extend(free.take(share - keep.len()).map(Action::Acquire));
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn held(written_at: u64) -> Held {
        Held {
            revision: 1,
            acquired_at: written_at,
            written_at,
        }
    }

    #[test]
    fn shares_add_up_to_the_partitions_and_differ_by_at_most_one() {
        for live in 1..=12 {
            let shares: Vec<u32> = (0..live).map(|r| share_of(8, live, r)).collect();
            assert_eq!(shares.iter().sum::<u32>(), 8, "{live} workers: {shares:?}");
            let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            assert!(max - min <= 1, "{live} workers: {shares:?}");
            assert_eq!(*max, fair_share(8, live));
        }
    }

    #[test]
    fn fair_shares() {
        assert_eq!(fair_share(8, 0), 8);
        assert_eq!(fair_share(8, 1), 8);
        assert_eq!(fair_share(8, 3), 3);
        assert_eq!(fair_share(8, 4), 2);
        assert_eq!(fair_share(8, 9), 1);
    }

    #[test]
    fn renews_when_due_and_stops_at_the_deadline() {
        let s = Settings::default();
        let h = BTreeMap::from([(0, held(1000))]);
        let taken = BTreeSet::from([0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(plan(&s, 3999, &h, &taken, 1, 0), vec![]);
        assert_eq!(plan(&s, 4000, &h, &taken, 1, 0), vec![Action::Renew(0)]);
        // ttl 10 s − margin 1 s after the write was sent.
        assert_eq!(plan(&s, 9999, &h, &taken, 1, 0), vec![Action::Renew(0)]);
        assert_eq!(plan(&s, 10_000, &h, &taken, 1, 0), vec![Action::Stop(0)]);
    }

    #[test]
    fn acquires_free_partitions_up_to_the_share_from_its_offset() {
        let s = Settings::default();
        let none = BTreeMap::new();
        let taken = BTreeSet::from([6]);
        assert_eq!(
            plan(&s, 0, &none, &taken, 3, 5),
            vec![Action::Acquire(5), Action::Acquire(7), Action::Acquire(0)]
        );
    }

    #[test]
    fn releases_the_latest_acquired_above_the_share_and_does_not_renew_them() {
        let s = Settings::default();
        let mut h = BTreeMap::new();
        for (p, at) in [(0, 100), (1, 50), (2, 300), (3, 200)] {
            h.insert(
                p,
                Held {
                    revision: 1,
                    acquired_at: at,
                    written_at: 0,
                },
            );
        }
        let taken: BTreeSet<u32> = (0..8).collect();
        // Share 2; renewals are due (written at 0, now 5000).
        let actions = plan(&s, 5000, &h, &taken, 2, 0);
        assert_eq!(
            actions,
            vec![
                Action::Renew(0),
                Action::Renew(1),
                Action::Release(2),
                Action::Release(3)
            ]
        );
    }

    /// A whole deployment on a fake clock: an in-memory bucket with compare-and-set and expiry,
    /// workers that tick at their own phases, joins, a kill (no release) and a clean leave. At no
    /// millisecond may two workers consume one partition, and after the churn every partition has
    /// one owner with shares differing by at most one.
    #[derive(Default)]
    struct Bucket {
        /// partition → (owner, revision, stored at)
        keys: BTreeMap<u32, (usize, u64, u64)>,
        revision: u64,
    }

    impl Bucket {
        fn expire(&mut self, now: u64, ttl: u64) {
            self.keys.retain(|_, (_, _, at)| now < *at + ttl);
        }
        fn create(&mut self, p: u32, owner: usize, now: u64) -> Option<u64> {
            if self.keys.contains_key(&p) {
                return None;
            }
            self.revision += 1;
            self.keys.insert(p, (owner, self.revision, now));
            Some(self.revision)
        }
        fn update(&mut self, p: u32, owner: usize, rev: u64, now: u64) -> Option<u64> {
            match self.keys.get(&p) {
                Some(&(_, r, _)) if r == rev => {
                    self.revision += 1;
                    self.keys.insert(p, (owner, self.revision, now));
                    Some(self.revision)
                }
                _ => None,
            }
        }
        fn delete(&mut self, p: u32, rev: u64) {
            if matches!(self.keys.get(&p), Some(&(_, r, _)) if r == rev) {
                self.keys.remove(&p);
            }
        }
    }

    struct SimWorker {
        held: BTreeMap<u32, Held>,
        phase: u64,
        alive: bool,
        /// Network latency of its writes: stored this much after being sent.
        latency: u64,
        /// Cut off from the server: its writes fail without reaching the bucket.
        cut: bool,
    }

    fn step(s: &Settings, bucket: &mut Bucket, workers: &mut [SimWorker], now: u64) {
        let ttl = s.lease_ttl.as_millis() as u64;
        // A cut-off worker's heartbeat stops landing: the others stop counting it. Ranks are
        // places among the counted ones (the sim's index stands for the id).
        let counted: Vec<usize> = (0..workers.len())
            .filter(|&i| workers[i].alive && !workers[i].cut)
            .collect();
        let live = counted.len() as u32;
        for (i, w) in workers.iter_mut().enumerate() {
            if !w.alive || (now + w.phase) % s.tick.as_millis() as u64 != 0 {
                continue;
            }
            // A cut-off worker still sees itself: last in line.
            let rank = counted
                .iter()
                .position(|&c| c == i)
                .unwrap_or(counted.len()) as u32;
            let share = share_of(s.partitions, live.max(rank + 1), rank);
            bucket.expire(now, ttl);
            let taken: BTreeSet<u32> = bucket.keys.keys().copied().collect();
            for action in plan(s, now, &w.held, &taken, share, i as u32 * 3) {
                let stored = now + w.latency;
                if w.cut {
                    // Every request fails (a timeout): only local decisions take effect.
                    if let Action::Stop(p) | Action::Release(p) = action {
                        w.held.remove(&p);
                    }
                    continue;
                }
                match action {
                    Action::Stop(p) => {
                        w.held.remove(&p);
                    }
                    Action::Renew(p) => {
                        let h = w.held[&p];
                        bucket.expire(stored, ttl);
                        match bucket.update(p, i, h.revision, stored) {
                            Some(rev) => {
                                let h = w.held.get_mut(&p).unwrap();
                                h.revision = rev;
                                h.written_at = now;
                            }
                            None => {
                                w.held.remove(&p);
                            }
                        }
                    }
                    Action::Release(p) => {
                        let h = w.held.remove(&p).unwrap();
                        bucket.delete(p, h.revision);
                    }
                    Action::Acquire(p) => {
                        bucket.expire(stored, ttl);
                        if let Some(rev) = bucket.create(p, i, stored) {
                            w.held.insert(
                                p,
                                Held {
                                    revision: rev,
                                    acquired_at: stored,
                                    written_at: now,
                                },
                            );
                        }
                    }
                }
            }
        }
    }

    fn assert_exclusive(s: &Settings, workers: &[SimWorker], now: u64) {
        for p in 0..s.partitions {
            let holders: Vec<usize> = (0..workers.len())
                .filter(|&i| {
                    let w = &workers[i];
                    // A killed worker consumes nothing; a live one until its deadline.
                    w.alive
                        && w.held
                            .get(&p)
                            .is_some_and(|h| now >= h.acquired_at && now < h.deadline(s))
                })
                .collect();
            assert!(
                holders.len() <= 1,
                "t={now}: partition {p} consumed by {holders:?}"
            );
        }
    }

    fn balanced(s: &Settings, workers: &[SimWorker], now: u64) -> bool {
        let counts: Vec<usize> = workers
            .iter()
            .filter(|w| w.alive)
            .map(|w| w.held.values().filter(|h| now < h.deadline(s)).count())
            .collect();
        let total: usize = counts.iter().sum();
        total == s.partitions as usize
            && counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1
    }

    fn worker(phase: u64, latency: u64) -> SimWorker {
        SimWorker {
            held: BTreeMap::new(),
            phase,
            alive: true,
            latency,
            cut: false,
        }
    }

    #[test]
    fn simulated_churn_never_overlaps_and_rebalances_within_two_lease_periods() {
        let s = Settings {
            tick: Duration::from_millis(1000),
            ..Settings::default()
        };
        let lease = s.lease_ttl.as_millis() as u64;
        let mut bucket = Bucket::default();
        let mut workers = vec![worker(0, 5), worker(250, 40), worker(600, 0)];
        let mut now = 0;
        let mut run_until = |workers: &mut Vec<SimWorker>, bucket: &mut Bucket, until: u64| {
            while now < until {
                step(&s, bucket, workers, now);
                assert_exclusive(&s, workers, now);
                now += 1;
            }
            now
        };
        let t = run_until(&mut workers, &mut bucket, 5_000);
        assert!(balanced(&s, &workers, t), "3 workers never balanced");

        // A 4th joins: balanced within 2 lease periods.
        workers.push(worker(900, 10));
        let joined = t;
        let mut t = t;
        while !balanced(&s, &workers, t) {
            t = run_until(&mut workers, &mut bucket, t + 1);
            assert!(
                t - joined <= 2 * lease,
                "the join was not balanced in 2 lease periods"
            );
        }

        // One is killed (its leases expire), one leaves cleanly (releases at once).
        workers[1].alive = false;
        let t = run_until(&mut workers, &mut bucket, t + 3_000);
        let leaving = std::mem::take(&mut workers[2].held);
        for (p, h) in leaving {
            bucket.delete(p, h.revision);
        }
        workers[2].alive = false;
        let left = t;
        let mut t = t;
        while !balanced(&s, &workers, t) {
            t = run_until(&mut workers, &mut bucket, t + 1);
            assert!(
                t - left <= 2 * lease,
                "not balanced 2 lease periods after the churn"
            );
        }
        // And it stays so: nothing flaps.
        let t = run_until(&mut workers, &mut bucket, t + 3 * lease);
        assert!(balanced(&s, &workers, t));
    }

    #[test]
    fn five_workers_share_eight_partitions_two_two_two_one_one() {
        let s = Settings::default();
        let mut bucket = Bucket::default();
        let mut workers: Vec<SimWorker> = (0..4).map(|i| worker(i * 200, 0)).collect();
        let mut now = 0;
        while now < 5_000 {
            step(&s, &mut bucket, &mut workers, now);
            now += 1;
        }
        assert!(balanced(&s, &workers, now));
        // The 5th comes when every partition is taken at 2 each: someone must give one up.
        workers.push(worker(900, 0));
        let joined = now;
        while !balanced(&s, &workers, now) {
            step(&s, &mut bucket, &mut workers, now);
            assert_exclusive(&s, &workers, now);
            now += 1;
            assert!(now - joined <= 20_000, "5 workers never balanced");
        }
        let mut counts: Vec<usize> = workers.iter().map(|w| w.held.len()).collect();
        counts.sort_unstable();
        assert_eq!(counts, [1, 1, 2, 2, 2]);
    }

    #[test]
    fn a_partitioned_holder_stops_before_anyone_else_can_start() {
        // Worker 0's writes stop reaching the bucket (cut off); worker 1 must not start on its
        // partitions before worker 0 has stopped, whatever the phases.
        let s = Settings::default();
        let mut bucket = Bucket::default();
        let mut workers = vec![worker(0, 0), worker(500, 0)];
        let mut now = 0;
        while now < 5_000 {
            step(&s, &mut bucket, &mut workers, now);
            now += 1;
        }
        assert!(balanced(&s, &workers, now));
        // Cut: worker 0 keeps its view but its renewals never land.
        workers[0].cut = true;
        while now < 40_000 {
            step(&s, &mut bucket, &mut workers, now);
            assert_exclusive(&s, &workers, now);
            now += 1;
        }
        // Worker 1 took over everything once worker 0's leases expired.
        assert!(workers[0].held.is_empty());
        assert_eq!(workers[1].held.len(), 8);
    }
}
