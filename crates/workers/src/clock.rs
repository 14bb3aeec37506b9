//! The worker's clock for lease deadlines: milliseconds since the Unix epoch that never go back
//! and never fall behind the time that really passed.
//!
//! A monotonic clock alone is not enough: Linux's `CLOCK_MONOTONIC` (Rust's `Instant`) and a
//! browser's `performance.now()` stand still while the machine sleeps. A worker on a laptop that
//! slept through its leases' TTL would wake up believing it still held them, while the server had
//! expired them and another worker had taken them over. The wall clock does count the sleep, but
//! it can also be set back. So each reading advances by whichever of the two moved further since
//! the last one (the wall clock's moves backwards count as none): a sleep or a clock set forward
//! makes deadlines come sooner (a lease is given up early, never held too long), a clock set back
//! changes nothing, and the clock keeps running at the monotonic rate whatever the wall clock does.

use std::sync::atomic::{AtomicU64, Ordering};

use web_time::Instant;

pub(crate) struct LeaseClock {
    epoch: Instant,
    /// The last reading: its value, and where the monotonic and the wall clock were then.
    now: AtomicU64,
    monotonic: AtomicU64,
    wall: AtomicU64,
}

impl LeaseClock {
    pub(crate) fn new() -> Self {
        let wall = crate::now_ms();
        LeaseClock {
            epoch: Instant::now(),
            now: AtomicU64::new(wall),
            monotonic: AtomicU64::new(0),
            wall: AtomicU64::new(wall),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.read(self.epoch.elapsed().as_millis() as u64, crate::now_ms())
    }

    /// One reading, given the monotonic clock (milliseconds since `epoch`) and the wall clock.
    /// A worker is one task: readings do not race, the atomics only make the clock `Sync`.
    fn read(&self, monotonic: u64, wall: u64) -> u64 {
        let by_monotonic =
            monotonic.saturating_sub(self.monotonic.swap(monotonic, Ordering::Relaxed));
        let by_wall = wall.saturating_sub(self.wall.swap(wall, Ordering::Relaxed));
        self.now
            .fetch_add(by_monotonic.max(by_wall), Ordering::Relaxed)
            + by_monotonic.max(by_wall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock_at(wall: u64) -> LeaseClock {
        LeaseClock {
            epoch: Instant::now(),
            now: AtomicU64::new(wall),
            monotonic: AtomicU64::new(0),
            wall: AtomicU64::new(wall),
        }
    }

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn runs_with_the_monotonic_clock_when_both_agree() {
        let c = clock_at(T0);
        assert_eq!(c.read(1_000, T0 + 1_000), T0 + 1_000);
        assert_eq!(c.read(2_500, T0 + 2_500), T0 + 2_500);
    }

    #[test]
    fn a_sleep_the_monotonic_clock_missed_is_counted() {
        // The machine slept 10 minutes: the monotonic clock moved 5 ms, the wall clock 10 min.
        let c = clock_at(T0);
        assert_eq!(c.read(1_000, T0 + 1_000), T0 + 1_000);
        assert_eq!(c.read(1_005, T0 + 601_000), T0 + 601_000);
        // Then both run together again.
        assert_eq!(c.read(2_005, T0 + 602_000), T0 + 602_000);
    }

    #[test]
    fn a_wall_clock_set_back_neither_stops_nor_reverses_it() {
        let c = clock_at(T0);
        assert_eq!(c.read(1_000, T0 + 1_000), T0 + 1_000);
        // Set back an hour: the clock goes on at the monotonic rate.
        assert_eq!(c.read(2_000, T0 + 2_000 - 3_600_000), T0 + 2_000);
        assert_eq!(c.read(3_000, T0 + 3_000 - 3_600_000), T0 + 3_000);
        // And set right again: that forward step is counted (deadlines come sooner, not later).
        let after = c.read(4_000, T0 + 4_000);
        assert_eq!(after, T0 + 3_000 + 3_600_000 + 1_000);
        assert_eq!(c.read(5_000, T0 + 5_000), after + 1_000, "then it runs on");
    }

    #[test]
    fn a_lease_held_through_a_sleep_is_past_its_deadline_on_waking() {
        use crate::rules::Held;
        let settings = crate::Settings::default();
        let c = clock_at(T0);
        let written_at = c.read(100, T0 + 100);
        let held = Held {
            revision: 1,
            acquired_at: written_at,
            written_at,
        };
        let ttl = settings.lease_ttl.as_millis() as u64;
        // Slept through the TTL: the monotonic clock moved 1 ms.
        let woke = c.read(101, T0 + 100 + 2 * ttl);
        assert!(
            woke >= held.deadline(&settings),
            "the lease must count as expired on waking"
        );
    }
}
