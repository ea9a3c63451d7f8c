//! TaskGroup against tokio's `JoinSet` and a tokio-util token + `TaskTracker`
//! composition, in the same run, on a multi-thread tokio runtime.
//!
//! `cargo bench --features tokio --bench group`; `ci/bench.sh` turns the
//! results into the README's ratio table.
#![allow(missing_docs)] // criterion_group! defines an undocumented `pub fn`

use std::future::{Future, pending};
use std::time::{Duration, Instant};

use cancelkit::rt::Tokio;
use cancelkit::{Runtime, SpawnerExt, TaskGroup};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const N: usize = 10_000;

/// Total of `iters` rounds, each a fresh `block_on` of `round()`, which
/// sets up outside its own timing and returns how long its timed part took.
fn rounds<F: Future<Output = Duration>>(rt: &Tokio, iters: u64, round: impl Fn() -> F) -> Duration {
    (0..iters).map(|_| rt.block_on(round())).sum()
}

/// Cooperative shutdown of `n` idle tasks, each waiting on its own token:
/// a `TaskGroup`, and a tokio-util token with a `TaskTracker` and with a
/// `JoinSet`.
fn shutdown_cooperative(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Tokio, n: usize, tracker: bool) {
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|iters| {
            rounds(rt, iters, || async {
                let group = TaskGroup::new(rt);
                for _ in 0..n {
                    group
                        .spawn(|stop| async move { stop.cancelled().await })
                        .detach();
                }
                tokio::task::yield_now().await;
                let start = Instant::now();
                let report = group.shutdown(Duration::from_secs(60)).await;
                assert_eq!(report.finished, n);
                start.elapsed()
            })
        })
    });
    if tracker {
        g.bench_function("tokio-util-tracker", |b| {
            b.iter_custom(|iters| {
                rounds(rt, iters, || async {
                    let token = CancellationToken::new();
                    let tracker = TaskTracker::new();
                    for _ in 0..n {
                        let t = token.child_token();
                        tracker.spawn(async move { t.cancelled().await });
                    }
                    tokio::task::yield_now().await;
                    let start = Instant::now();
                    tracker.close();
                    token.cancel();
                    tracker.wait().await;
                    start.elapsed()
                })
            })
        });
    }
    g.bench_function("tokio-joinset", |b| {
        b.iter_custom(|iters| {
            rounds(rt, iters, || async {
                let token = CancellationToken::new();
                let mut set = JoinSet::new();
                for _ in 0..n {
                    let t = token.child_token();
                    set.spawn(async move { t.cancelled().await });
                }
                tokio::task::yield_now().await;
                let start = Instant::now();
                token.cancel();
                while set.join_next().await.is_some() {}
                start.elapsed()
            })
        })
    });
}

fn shutdown_idle(c: &mut Criterion) {
    let rt = Tokio::new().unwrap();
    let mut g = c.benchmark_group("shutdown_10000_idle/cooperative");
    g.sample_size(20);
    shutdown_cooperative(&mut g, &rt, N, true);
    g.finish();

    let mut g = c.benchmark_group("shutdown_10000_idle/forced");
    g.sample_size(20);
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let group = TaskGroup::new(&rt);
                for _ in 0..N {
                    group.spawn(|_| pending::<()>()).detach();
                }
                tokio::task::yield_now().await;
                let start = Instant::now();
                let report = group.shutdown(Duration::ZERO).await;
                assert_eq!(report.forced.len(), N);
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio-joinset", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let mut set = JoinSet::new();
                for _ in 0..N {
                    set.spawn(pending::<()>());
                }
                tokio::task::yield_now().await;
                let start = Instant::now();
                set.shutdown().await;
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn spawn_into_group(c: &mut Criterion) {
    let rt = Tokio::new().unwrap();
    let mut g = c.benchmark_group("spawn_join/group-vs-bare");
    let group = TaskGroup::new(&rt);
    g.bench_function("cancelkit-group", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    group.spawn(|_| async { 1 }).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("cancelkit-bare", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    rt.spawn(async { 1 }).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// The per-request path of a server, 100 000 times: accept, a child token
/// for the request, its task in the server's group, the request done, all
/// dropped — a `TaskGroup` (which makes the child token itself) against a
/// tokio-util token with a `TaskTracker` doing the same, and with a
/// `JoinSet` (which, like a group and unlike a tracker, can abort what is
/// left: what a forced shutdown needs). One iteration is all 100 000
/// requests, until the last is done.
fn per_request(c: &mut Criterion) {
    const REQUESTS: usize = 100_000;
    let rt = Tokio::new().unwrap();
    let mut g = c.benchmark_group("per_request_100000");
    g.sample_size(10);
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let start = Instant::now();
                let group = TaskGroup::new(&rt);
                for _ in 0..REQUESTS {
                    group
                        .spawn(|request| async move {
                            black_box(request.is_cancelled());
                        })
                        .detach();
                }
                group.close();
                group.wait().await;
                drop(group);
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio-util-tracker", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let start = Instant::now();
                let server = CancellationToken::new();
                let tracker = TaskTracker::new();
                for _ in 0..REQUESTS {
                    let request = server.child_token();
                    tracker.spawn(async move {
                        black_box(request.is_cancelled());
                    });
                }
                tracker.close();
                tracker.wait().await;
                drop((server, tracker));
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio-util-joinset", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let start = Instant::now();
                let server = CancellationToken::new();
                let mut set = JoinSet::new();
                for _ in 0..REQUESTS {
                    let request = server.child_token();
                    set.spawn(async move {
                        black_box(request.is_cancelled());
                    });
                }
                while set.join_next().await.is_some() {}
                drop((server, set));
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// Group shutdown of 100 000 idle tasks on runtimes of 1 to 8 worker
/// threads, against a `JoinSet` in the same run.
fn scaling(c: &mut Criterion) {
    const TASKS: usize = 100_000;
    for threads in [1, 2, 4, 8] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap();
        let rt = Tokio::from_handle(rt.handle().clone());
        let mut g = c.benchmark_group(format!("scaling/shutdown-100000-idle-{threads}-threads"));
        g.sample_size(10);
        shutdown_cooperative(&mut g, &rt, TASKS, false);
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = shutdown_idle, spawn_into_group, per_request, scaling
}
criterion_main!(benches);
