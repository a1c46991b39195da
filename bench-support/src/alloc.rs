//! A global allocator that forwards to the system allocator and counts: bytes live now, the
//! highest live bytes since the last [`reset_peak`], and allocations made.
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: windlass_bench_support::CountingAlloc = windlass_bench_support::CountingAlloc;
//!
//! fn main() {
//!     let before = windlass_bench_support::alloc::Snapshot::now();
//!     let v = vec![0u8; 1000];
//!     assert!(windlass_bench_support::alloc::Snapshot::now().live_since(&before) >= 1000);
//!     drop(v);
//! }
//! ```
//!
//! The counters are process-wide relaxed atomics: every allocation costs two atomic adds and a
//! load (and a compare-and-swap when it raises the peak), the same for windlass and the
//! baseline. Without the allocator installed every reading is zero.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The counting allocator. Install it with `#[global_allocator]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    if live > PEAK.load(Relaxed) {
        PEAK.fetch_max(live, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the bookkeeping around it only touches atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and the caller guarantees `new_size` is valid for `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Relaxed);
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

/// Heap bytes allocated and not yet freed.
pub fn live_bytes() -> usize {
    LIVE.load(Relaxed)
}

/// The most heap bytes live at once since the last [`reset_peak`] (or the start).
pub fn peak_bytes() -> usize {
    PEAK.load(Relaxed).max(live_bytes())
}

/// Starts a new peak window at the bytes live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

/// Allocations (and reallocations) made since the start.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Relaxed)
}

/// A reading of the counters, to subtract from a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// [`live_bytes`] at the reading.
    pub live: usize,
    /// [`peak_bytes`] at the reading.
    pub peak: usize,
    /// [`allocations`] at the reading.
    pub allocations: u64,
}

impl Snapshot {
    /// The counters now.
    pub fn now() -> Self {
        Self {
            live: live_bytes(),
            peak: peak_bytes(),
            allocations: allocations(),
        }
    }

    /// Live bytes gained since `earlier` (negative when memory was freed).
    pub fn live_since(&self, earlier: &Snapshot) -> i64 {
        self.live as i64 - earlier.live as i64
    }

    /// How far the peak since `earlier` rose above the bytes live at `earlier` (call
    /// [`reset_peak`] when taking `earlier`).
    pub fn peak_above(&self, earlier: &Snapshot) -> usize {
        self.peak.saturating_sub(earlier.live)
    }

    /// Allocations made since `earlier`.
    pub fn allocations_since(&self, earlier: &Snapshot) -> u64 {
        self.allocations - earlier.allocations
    }
}
