//! The job the `start_tokio`, `start_smol` and `start_async_std` examples
//! run, written once against cancelkit's traits: only the entry point
//! differs between them. (Not an example itself: included with `#[path]`.)
//!
//! It prints the same lines on every runtime: events are ordered by
//! awaiting tokens and task handles, never by sleeping, results that
//! arrive in any order are sorted before they are printed, and no timing
//! is printed.

use std::time::Duration;

use cancelkit::group::TaskSet;
use cancelkit::token::CancelFutureExt;
use cancelkit::{CancelToken, RuntimeHandle, SpawnerExt, TaskGroup, timeout};

/// How many workers the pool runs, and the jobs they share.
const WORKERS: usize = 3;
const JOBS: u64 = 10;
/// The limit put on a lookup that would take an hour.
const SLOW_LIMIT: Duration = Duration::from_millis(50);
/// How long the shutdown lets tasks finish on their own. Only the stuck
/// task uses it all up; the others stop at once.
const GRACE: Duration = Duration::from_secs(2);

/// Runs the whole job on `rt`, printing what happens.
pub(crate) async fn run<R: RuntimeHandle>(rt: R) {
    let group = TaskGroup::new(&rt);
    worker_pool(&group).await;
    timeouts(&rt).await;
    stop_with_a_token(&rt, &group).await;
    graceful_shutdown(group).await;
}

/// A pool of workers in a [`TaskSet`], sharing a queue of jobs; the set
/// collects each worker's results as it finishes.
async fn worker_pool<R: RuntimeHandle>(group: &TaskGroup<R>) {
    println!("1. A pool of {WORKERS} workers squares {JOBS} numbers from a shared queue.");
    let (tx, rx) = async_channel::unbounded::<u64>();
    let mut pool = TaskSet::new(group);
    for w in 1..=WORKERS {
        let rx = rx.clone();
        pool.spawn_named(format!("pool worker {w}"), move |_token| async move {
            let mut done = Vec::new();
            // Until the queue is closed and empty.
            while let Ok(n) = rx.recv().await {
                done.push((n, n * n));
            }
            done
        });
    }
    for n in 1..=JOBS {
        tx.send(n).await.expect("the workers hold the queue open");
    }
    drop(tx); // closes the queue: the workers finish once it is empty
    let mut results = Vec::new();
    let mut finished = 0;
    while let Some(out) = pool.join_next().await {
        results.extend(out.expect("a pool worker failed"));
        finished += 1;
    }
    // Which worker squared which number depends on scheduling; the
    // results do not.
    results.sort_unstable();
    let squares: Vec<String> = results.iter().map(|(_, sq)| sq.to_string()).collect();
    println!(
        "   {finished} workers finished; squares: {}",
        squares.join(" ")
    );
    println!(
        "   sum of squares: {}",
        results.iter().map(|(_, sq)| sq).sum::<u64>()
    );
}

/// [`timeout`] around a fast and a slow lookup. The timeouts borrow
/// nothing, so they are spawned as they are.
async fn timeouts<R: RuntimeHandle>(rt: &R) {
    println!("2. Two lookups, each with a time limit.");
    // A ready future always wins, even against a zero limit.
    let fast = rt.spawn(timeout(rt, Duration::ZERO, async { "from cache" }));
    let slow = rt.spawn(timeout(rt, SLOW_LIMIT, {
        let hour = rt.sleep(Duration::from_secs(3600));
        async move {
            hour.await;
            "from the slow backend"
        }
    }));
    for (name, task) in [("fast", fast), ("slow", slow)] {
        match task.await.expect("a lookup task failed") {
            Ok(answer) => println!("   {name} lookup: {answer}"),
            Err(elapsed) => println!("   {name} lookup: {elapsed}; the lookup was dropped"),
        }
    }
}

/// Watchers that run until a token tells them to stop.
async fn stop_with_a_token<R: RuntimeHandle>(rt: &R, group: &TaskGroup<R>) {
    println!("3. Watchers poll until one token is cancelled.");
    let stop = CancelToken::new();
    let mut watchers = Vec::new();
    for w in 1..=WORKERS {
        let started = CancelToken::new();
        let (rt, stop, started2) = (rt.clone(), stop.clone(), started.clone());
        let watcher = group.spawn_named(format!("watcher {w}"), move |_group_token| {
            // Polls forever on its own; only `stop` ends it.
            let poll = async move {
                started2.cancel();
                loop {
                    rt.sleep(Duration::from_millis(10)).await;
                }
            };
            async move {
                let _cancelled = poll.with_cancel(&stop).await;
                let why = stop
                    .reason()
                    .map_or("?".into(), |r| format!("{:?}", r.kind()));
                format!("watcher {w} stopped: its token was cancelled ({why})")
            }
        });
        started.cancelled().await;
        watchers.push(watcher);
    }
    println!(
        "   {} watchers running; cancelling the token.",
        watchers.len()
    );
    stop.cancel();
    // In spawn order: the output does not depend on which stopped first.
    for watcher in watchers {
        println!("   {}", watcher.await.expect("a watcher failed"));
    }
}

/// The group's graceful shutdown: a task that stops when asked, one that
/// ignores the request and is forced after the grace period, and one that
/// failed earlier; the report names them.
async fn graceful_shutdown<R: RuntimeHandle>(group: TaskGroup<R>) {
    println!("4. Graceful shutdown with a {GRACE:?} grace period.");
    let failed = group.spawn_fallible("import", |_token| async { Err::<(), _>("disk full") });
    let _ = failed.await; // the group's report has it
    for name in ["flush logs", "stuck upload"] {
        let started = CancelToken::new();
        let started2 = started.clone();
        group
            .spawn_named(name, move |stop| async move {
                started2.cancel();
                if name == "flush logs" {
                    stop.cancelled().await; // then flush, and return
                } else {
                    std::future::pending::<()>().await; // never looks at `stop`
                }
            })
            .detach();
        started.cancelled().await;
    }
    let report = group.shutdown(GRACE).await;
    for line in report.to_string().lines() {
        println!("   {line}");
    }
}
