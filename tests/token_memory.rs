//! A long-lived parent's memory stays flat however many children come and
//! go: measured with a counting global allocator that counts per thread, so
//! each test sees only its own allocations.
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

#[test]
fn a_million_children_leave_a_long_lived_parent_flat() {
    a_million_children_created_and_dropped_leave_the_parent_flat();
}

#[test]
fn linked_tokens_leave_their_long_lived_parents_flat() {
    linked_tokens_leave_long_lived_parents_flat();
}

#[cfg(feature = "sim")]
#[test]
fn a_long_lived_group_keeps_nothing_of_finished_tasks() {
    finished_tasks_leave_nothing_in_a_long_lived_group();
}

/// A long-lived group whose tasks keep failing keeps only its first
/// failures: its memory stays bounded.
#[cfg(feature = "sim")]
#[test]
fn a_long_lived_group_with_failing_tasks_stays_bounded() {
    use cancelkit::{Runtime, TaskGroup, sim::Sim};

    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    // Batches of 100 live tasks (so slabs and queues reach their steady
    // capacity in the warm-up), each batch failing before the next.
    let run = |batches: usize| {
        sim.block_on(async {
            for _ in 0..batches {
                for _ in 0..100 {
                    group
                        .spawn_fallible("flaky", |_| async { Err::<(), _>("failed") })
                        .detach();
                }
                group.wait().await;
            }
        })
    };
    run(10); // fills the kept failures and warms up
    let before = live();
    run(1_000); // 100 000 failures
    let after = live();
    assert_eq!(after, before, "the group grew by {} bytes", after - before);
}

/// A request token linked to the server and to its client, with a child
/// (a database call), dropped and then cancelled by the client — not by
/// the server. It must leave the server, which otherwise grew by ~650 B per
/// request.
fn linked_request(server: &CancelToken) {
    let client = CancelToken::new();
    let req = CancelToken::any([server, &client]);
    let db = req.child();
    drop(req);
    client.cancel();
    drop(db);
}

#[test]
fn requests_cancelled_by_their_client_leave_the_server_flat() {
    let server = CancelToken::new();
    for _ in 0..1_000 {
        linked_request(&server);
    }
    let before = live();
    for _ in 0..100_000 {
        linked_request(&server);
    }
    let after = live();
    assert_eq!(after, before, "the server grew by {} bytes", after - before);
}

#[test]
fn dropping_the_server_too_frees_everything() {
    let before = live();
    {
        let server = CancelToken::new();
        for _ in 0..10_000 {
            linked_request(&server);
        }
    }
    let after = live();
    assert_eq!(after, before, "{} bytes leaked", after - before);
}

/// `server.child_with_timeout(..)` dropped while it has a child, its
/// deadline firing, then its child dropped: the timed-out token must leave
/// the server (it grew by ~350 B per request).
#[cfg(feature = "sim")]
#[test]
fn children_whose_deadline_fired_leave_the_parent_flat() {
    use cancelkit::{Runtime, sim::Sim};
    use std::time::Duration;

    let sim = Sim::new();
    let server = CancelToken::new();
    let request = || {
        let timed = server.child_with_timeout(&sim, Duration::from_millis(1));
        let db = timed.child();
        drop(timed);
        sim.block_on(db.cancelled()); // the deadline fires
        drop(db);
    };
    for _ in 0..1_000 {
        request();
    }
    let before = live();
    for _ in 0..100_000 {
        request();
    }
    let after = live();
    assert_eq!(after, before, "the server grew by {} bytes", after - before);
}

/// Unlike a `JoinSet`, which keeps every output until joined, a group keeps
/// nothing of a task once it has finished.
#[cfg(feature = "sim")]
fn finished_tasks_leave_nothing_in_a_long_lived_group() {
    use cancelkit::{Runtime, TaskGroup, sim::Sim};

    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    // Batches of 100 live tasks, each batch finishing before the next.
    let run = |batches: usize| {
        sim.block_on(async {
            for _ in 0..batches {
                for i in 0..100 {
                    group
                        .spawn(move |_| async move { vec![i as u8; 64] })
                        .detach(); // the output is dropped with the task
                }
                group.wait().await;
            }
        })
    };
    run(10); // warm up: slabs and queues reach their steady size
    let before = live();
    run(1_000); // 100 000 tasks
    let after = live();
    assert_eq!(after, before, "the group grew by {} bytes", after - before);
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
