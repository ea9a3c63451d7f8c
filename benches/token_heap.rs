//! Heap bytes per live child token, cancelkit vs tokio-util, measured with
//! a counting global allocator (not a timing benchmark; prints its result).
//!
//! `cargo bench --bench token_heap`
#![allow(unsafe_code)]

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, live};

#[global_allocator]
static ALLOC: Counting = Counting;

fn per_child<T, P>(parent: &P, make: impl Fn(&P) -> T) -> f64 {
    const N: usize = 100_000;
    let before = live();
    let kids: Vec<T> = (0..N).map(|_| make(parent)).collect();
    let after = live();
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
