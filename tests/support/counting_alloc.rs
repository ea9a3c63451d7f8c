//! A global allocator that counts the heap bytes each thread has allocated
//! and not freed, shared by `tests/token_memory.rs` and
//! `benches/token_heap.rs` (included with `#[path]`; not a test target
//! itself).
//!
//! The count is per thread, so a measurement sees only what its own thread
//! did: a runtime's threads, the test harness's output capture or another
//! test cannot disturb it (a global count did, about one run in twelve).
//! Memory allocated on one thread and freed on another is counted on each
//! side, so measure code that allocates and frees on the measuring thread.
//!
//! Declare it in the including crate with
//! `#[global_allocator] static ALLOC: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to `System`, counting bytes per thread.
pub(crate) struct Counting;

thread_local! {
    // `const` and no destructor: reading it never allocates or registers
    // anything, so the allocator may use it.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    // `try_with`: a thread being torn down may still free memory.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

// SAFETY: forwards every call to `System` unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Bytes allocated and not yet freed by the calling thread through
/// [`Counting`].
pub(crate) fn live() -> isize {
    LIVE.with(Cell::get)
}
