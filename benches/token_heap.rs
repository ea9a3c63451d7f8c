//! Heap bytes per live child token, cancelkit vs tokio-util, measured with
//! a counting global allocator (not a timing benchmark; prints its result).
//!
//! `cargo bench --bench token_heap`
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn per_child<T, P>(parent: &P, make: impl Fn(&P) -> T) -> f64 {
    const N: usize = 100_000;
    let before = LIVE.load(Ordering::SeqCst);
    let kids: Vec<T> = (0..N).map(|_| make(parent)).collect();
    let after = LIVE.load(Ordering::SeqCst);
    let vec_bytes = (kids.capacity() * std::mem::size_of::<T>()) as isize;
    drop(kids);
    (after - before - vec_bytes) as f64 / N as f64
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let ck_parent = cancelkit::CancelToken::new();
    let tu_parent = tokio_util::sync::CancellationToken::new();
    let ck = per_child(&ck_parent, |p| p.child());
    let tu = per_child(&tu_parent, |p| p.child_token());
    println!("heap/per-live-child/cancelkit: {ck:.1} bytes");
    println!("heap/per-live-child/tokio-util: {tu:.1} bytes");
    println!("heap/per-live-child/ratio: {:.2}", ck / tu);
}
