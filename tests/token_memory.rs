//! A long-lived parent's memory stays flat however many children come and
//! go: measured with a counting global allocator. In a test binary of its
//! own, with a single test function, so nothing else allocates meanwhile.
//!
//! The library itself forbids `unsafe`; a global allocator cannot be written
//! without it, and this one only forwards to `System`.
#![allow(unsafe_code)]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use cancelkit::CancelToken;
use counting_alloc::{Counting, live};

#[global_allocator]
static ALLOC: Counting = Counting;

/// One test function, so no other test thread allocates while we count.
#[test]
fn long_lived_parents_stay_flat() {
    a_million_children_created_and_dropped_leave_the_parent_flat();
    linked_tokens_leave_long_lived_parents_flat();
}

fn a_million_children_created_and_dropped_leave_the_parent_flat() {
    let parent = CancelToken::new();
    let keep: Vec<CancelToken> = (0..16).map(|_| parent.child()).collect();
    // Warm up: let the parent's slab reach its steady size.
    for _ in 0..1_000 {
        drop(parent.child());
    }
    let before = live();
    for i in 0..1_000_000 {
        let child = parent.child();
        if i % 2 == 0 {
            // Some with grandchildren and callbacks too.
            let _grandchild = child.child();
            let _cb = child.on_cancel(|_| {});
        }
    }
    let after = live();
    assert_eq!(after, before, "heap grew by {} bytes", after - before);
    drop(keep);
}

fn linked_tokens_leave_long_lived_parents_flat() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    for _ in 0..1_000 {
        drop(CancelToken::any([&a, &b]));
    }
    let before = live();
    for _ in 0..100_000 {
        drop(CancelToken::any([&a, &b]));
    }
    assert_eq!(live(), before);
}
