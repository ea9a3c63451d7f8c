//! Heap bytes per live group task — a task parked on its own cancel token —
//! for cancelkit's `TaskGroup` against tokio's `JoinSet` and tokio-util's
//! `TaskTracker` (each of their tasks also waiting on its own child
//! `CancellationToken`, as a group task does), measured with a counting
//! global allocator on a current-thread runtime, so every allocation is the
//! measuring thread's. Not a timing benchmark; prints its result.
//!
//! `cargo bench --features tokio --bench group_heap`
#![allow(unsafe_code)]

#[path = "../tests/support/counting_alloc.rs"]
mod counting_alloc;

use std::time::Duration;

use cancelkit::rt::Tokio;
use cancelkit::{Runtime, TaskGroup};
use counting_alloc::{Counting, live};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 10_000;

/// Lets every spawned task run until it parks.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

fn per_task(bytes: isize) -> f64 {
    bytes as f64 / N as f64
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rt = Tokio::current_thread().unwrap();

    let cancelkit = rt.block_on(async {
        let group = TaskGroup::new(&rt);
        settle().await;
        let before = live();
        for _ in 0..N {
            group
                .spawn(|stop| async move { stop.cancelled().await })
                .detach();
        }
        settle().await;
        let bytes = live() - before;
        let report = group.shutdown(Duration::from_secs(60)).await;
        assert_eq!(report.finished, N);
        per_task(bytes)
    });

    let joinset = rt.block_on(async {
        let token = CancellationToken::new();
        let mut set = JoinSet::new();
        settle().await;
        let before = live();
        for _ in 0..N {
            let t = token.child_token();
            set.spawn(async move { t.cancelled().await });
        }
        settle().await;
        let bytes = live() - before;
        token.cancel();
        while set.join_next().await.is_some() {}
        per_task(bytes)
    });

    let tracker = rt.block_on(async {
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        settle().await;
        let before = live();
        for _ in 0..N {
            let t = token.child_token();
            tracker.spawn(async move { t.cancelled().await });
        }
        settle().await;
        let bytes = live() - before;
        tracker.close();
        token.cancel();
        tracker.wait().await;
        per_task(bytes)
    });

    println!("heap/per-group-task/cancelkit: {cancelkit:.1} bytes");
    println!("heap/per-group-task/tokio-joinset: {joinset:.1} bytes");
    println!("heap/per-group-task/tokio-util-tracker: {tracker:.1} bytes");
}
