//! The native worker's memory figures: the counting allocator of `via_workers::alloc` plus the
//! resident set size.

pub use via_workers::alloc::{counters, Counting};
use via_workers::MemoryStats;

/// The resident set size from `/proc/self/statm` (Linux), `None` elsewhere.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0)?)
}

/// The process's figures as [`MemoryStats`] (the worker loop fills in who, when and how many).
pub fn stats() -> MemoryStats {
    MemoryStats {
        rss_bytes: rss_bytes(),
        ..via_workers::alloc::stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read() {
        let rss = rss_bytes().expect("/proc/self/statm");
        assert!(rss > 100 * 1024, "{rss}");
    }
}
