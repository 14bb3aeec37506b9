//! A counting global allocator: the platform's allocator (the system's natively, dlmalloc in
//! wasm32) plus three relaxed counters, the analogue of Go's `Alloc`, `TotalAlloc` and `Mallocs`.
//! A program opts in with `#[global_allocator] static A: Counting = Counting;` (`via-worker` and
//! the app do); each counter costs one add. Without it the counters stay at zero.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::MemoryStats;

static CURRENT: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counted.
pub struct Counting;

fn allocated(size: usize) {
    CURRENT.fetch_add(size as u64, Ordering::Relaxed);
    TOTAL.fetch_add(size as u64, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Relaxed);
}

fn freed(size: usize) {
    CURRENT.fetch_sub(size as u64, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` with the same arguments; the counters are only
// updated after a successful allocation and never affect what is returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            allocated(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            allocated(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            // As a fresh allocation of the new size and the release of the old one, like Go's
            // accounting of a grown slice.
            freed(layout.size());
            allocated(new_size);
        }
        new
    }
}

/// Bytes allocated now, bytes allocated so far, allocations so far (zero unless [`Counting`] is
/// the global allocator).
pub fn counters() -> (u64, u64, u64) {
    (
        CURRENT.load(Ordering::Relaxed),
        TOTAL.load(Ordering::Relaxed),
        COUNT.load(Ordering::Relaxed),
    )
}

/// The counters as [`MemoryStats`] (`None` while nothing was counted: [`Counting`] is not the
/// global allocator). The platform adds its own figures; the worker loop fills in who, when and
/// how many.
pub fn stats() -> MemoryStats {
    let (current, total, count) = counters();
    if count == 0 {
        return MemoryStats::default();
    }
    MemoryStats {
        allocated_bytes: Some(current),
        total_allocated_bytes: Some(total),
        allocations: Some(count),
        ..MemoryStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_it_is_given() {
        let a = Counting;
        let layout = Layout::from_size_align(1000, 8).expect("layout");
        let before = counters();
        // SAFETY: a plain allocate / grow / free round trip through the counted allocator.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let q = a.realloc(p, layout, 3000);
            assert!(!q.is_null());
            a.dealloc(q, Layout::from_size_align(3000, 8).expect("layout"));
        }
        let after = counters();
        // The test binary's own allocator is not the counted one, so only these calls count.
        assert_eq!(after.0, before.0);
        assert_eq!(after.1 - before.1, 4000);
        assert_eq!(after.2 - before.2, 2);
    }
}
