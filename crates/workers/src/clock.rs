//! The worker's clock for lease deadlines: milliseconds since the Unix epoch that never go back
//! and never fall behind the time that really passed.
//!
//! A monotonic clock alone is not enough: Linux's `CLOCK_MONOTONIC` (Rust's `Instant`) and a
//! browser's `performance.now()` stand still while the machine sleeps. A worker on a laptop that
//! slept through its leases' TTL would wake up believing it still held them, while the server had
//! expired them and another worker had taken them over. The wall clock does count the sleep, but
//! it can also be set back. So the clock runs with the monotonic one from the wall clock's time at
//! the start, and jumps forward to the wall clock whenever that is ahead by more than [`JUMP`]: a
//! sleep or a clock set forward makes deadlines come sooner (a lease is given up early, never held
//! too long), a clock set back changes nothing, and the small differences between the two clocks
//! (rounding, drift) never add up.

use std::sync::atomic::{AtomicU64, Ordering};

use web_time::Instant;

/// A wall clock this far ahead of the lease clock is a sleep (or the clock set forward); less is
/// rounding and drift.
const JUMP: u64 = 50;

pub(crate) struct LeaseClock {
    epoch: Instant,
    /// The wall clock at `epoch`.
    start: u64,
    /// What the jumps to the wall clock have added so far.
    skipped: AtomicU64,
}

impl LeaseClock {
    pub(crate) fn new() -> Self {
        Self::starting_at(crate::now_ms())
    }

    fn starting_at(wall: u64) -> Self {
        LeaseClock {
            epoch: Instant::now(),
            start: wall,
            skipped: AtomicU64::new(0),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.read(self.epoch.elapsed().as_millis() as u64, crate::now_ms())
    }

    /// One reading, given the monotonic clock (milliseconds since `epoch`) and the wall clock.
    /// A worker is one task: readings do not race; the atomic only makes the clock `Sync`.
    fn read(&self, monotonic: u64, wall: u64) -> u64 {
        let now = self.start + monotonic + self.skipped.load(Ordering::Relaxed);
        if wall > now + JUMP {
            self.skipped.fetch_add(wall - now, Ordering::Relaxed);
            return wall;
        }
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn runs_with_the_monotonic_clock_when_both_agree() {
        let c = LeaseClock::starting_at(T0);
        assert_eq!(c.read(1_000, T0 + 1_000), T0 + 1_000);
        assert_eq!(c.read(2_500, T0 + 2_500), T0 + 2_500);
    }

    #[test]
    fn the_clocks_rounding_apart_never_adds_up() {
        // Read per message: a millisecond either way, a hundred thousand times.
        let c = LeaseClock::starting_at(T0);
        for m in 1..=100_000u64 {
            let wall = if m % 2 == 0 { T0 + m + 1 } else { T0 + m - 1 };
            assert_eq!(c.read(m, wall), T0 + m);
        }
    }

    #[test]
    fn a_sleep_the_monotonic_clock_missed_is_counted() {
        // The machine slept 10 minutes: the monotonic clock moved 5 ms, the wall clock 10 min.
        let c = LeaseClock::starting_at(T0);
        assert_eq!(c.read(1_000, T0 + 1_000), T0 + 1_000);
        assert_eq!(c.read(1_005, T0 + 601_000), T0 + 601_000);
        // Then both run together again.
        assert_eq!(c.read(2_005, T0 + 602_000), T0 + 602_000);
    }

    #[test]
    fn a_wall_clock_set_back_neither_stops_nor_reverses_it() {
        let c = LeaseClock::starting_at(T0);
        assert_eq!(c.read(1_000, T0 + 1_000), T0 + 1_000);
        // Set back an hour: the clock goes on at the monotonic rate.
        assert_eq!(c.read(2_000, T0 + 2_000 - 3_600_000), T0 + 2_000);
        assert_eq!(c.read(3_000, T0 + 3_000 - 3_600_000), T0 + 3_000);
        // And set right again: nothing to catch up.
        assert_eq!(c.read(4_000, T0 + 4_000), T0 + 4_000);
        // Set an hour forward: deadlines come sooner, not later.
        assert_eq!(
            c.read(5_000, T0 + 5_000 + 3_600_000),
            T0 + 5_000 + 3_600_000
        );
        assert_eq!(
            c.read(6_000, T0 + 6_000),
            T0 + 6_000 + 3_600_000,
            "it never goes back"
        );
    }

    #[test]
    fn a_lease_held_through_a_sleep_is_past_its_deadline_on_waking() {
        use crate::rules::Held;
        let settings = crate::Settings::default();
        let c = LeaseClock::starting_at(T0);
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
