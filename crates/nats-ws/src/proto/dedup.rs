//! Fingerprint dedup: skip a message seen within a time window — the same `Nats-Msg-Id` when it
//! has one (a publish retried across a reconnect keeps its id), else the same subject and payload.
//!
//! Useful where the same event can arrive twice (two publishers reacting to one change, a publish
//! retried across a reconnect). Memory is bounded by `capacity` fingerprints: when more than
//! `capacity` distinct messages arrive within one window, the oldest are forgotten before their
//! window ends, so a repeat of one of those would get through.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use web_time::Instant;

/// Default window of [`Dedup`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(2);
/// Default number of fingerprints kept (≈ 1.5 MiB at most).
pub const DEFAULT_CAPACITY: usize = 65_536;

#[derive(Debug, Clone)]
pub struct Dedup {
    window: Duration,
    capacity: usize,
    seen: HashSet<u64>,
    order: VecDeque<(Instant, u64)>,
}

impl Dedup {
    pub fn new(window: Duration, capacity: usize) -> Self {
        Dedup {
            window,
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records the message and says whether it is new (`true`) or a repeat within the window.
    /// With a `msg_id`, that id (on that subject) is what identifies the message.
    pub fn admit(
        &mut self,
        now: Instant,
        subject: &str,
        msg_id: Option<&str>,
        payload: &[u8],
    ) -> bool {
        while let Some(&(at, fp)) = self.order.front() {
            if now.saturating_duration_since(at) < self.window && self.order.len() < self.capacity {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&fp);
        }
        let mut h = DefaultHasher::new();
        subject.hash(&mut h);
        match msg_id {
            Some(id) => (1u8, id).hash(&mut h),
            None => (0u8, payload).hash(&mut h),
        }
        let fp = h.finish();
        if !self.seen.insert(fp) {
            return false;
        }
        self.order.push_back((now, fp));
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_repeats_within_window_only() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(2), 100);
        assert!(d.admit(t0, "a", None, b"1"));
        assert!(!d.admit(t0 + Duration::from_millis(500), "a", None, b"1"));
        assert!(
            d.admit(t0 + Duration::from_millis(500), "b", None, b"1"),
            "other subject is new"
        );
        assert!(
            d.admit(t0 + Duration::from_millis(500), "a", None, b"2"),
            "other payload is new"
        );
        assert!(
            d.admit(t0 + Duration::from_secs(2), "a", None, b"1"),
            "window passed"
        );
    }

    #[test]
    fn msg_id_identifies_a_message_when_present() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(2), 100);
        assert!(d.admit(t0, "a", Some("id-1"), b"x"));
        assert!(
            !d.admit(t0, "a", Some("id-1"), b"y"),
            "same id, other payload: a retry"
        );
        assert!(
            d.admit(t0, "a", Some("id-2"), b"x"),
            "same payload, other id: a new message"
        );
        assert!(d.admit(t0, "a", None, b"x"), "no id: judged by payload");
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut d = Dedup::new(Duration::from_secs(3600), 10);
        for i in 0..1000u32 {
            assert!(d.admit(t0, "s", None, &i.to_be_bytes()));
            assert!(d.len() <= 10);
        }
    }
}
