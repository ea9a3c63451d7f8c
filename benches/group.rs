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
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const N: usize = 10_000;

/// Total of `iters` rounds, each a fresh `block_on` of `round()`, which
/// sets up outside its own timing and returns how long its timed part took.
fn rounds<F: Future<Output = Duration>>(rt: &Tokio, iters: u64, round: impl Fn() -> F) -> Duration {
    (0..iters).map(|_| rt.block_on(round())).sum()
}

fn shutdown_idle(c: &mut Criterion) {
    let rt = Tokio::new().unwrap();
    let mut g = c.benchmark_group("shutdown_10000_idle/cooperative");
    g.sample_size(20);
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let group = TaskGroup::new(&rt);
                for _ in 0..N {
                    group
                        .spawn(|stop| async move { stop.cancelled().await })
                        .detach();
                }
                tokio::task::yield_now().await;
                let start = Instant::now();
                let report = group.shutdown(Duration::from_secs(60)).await;
                assert_eq!(report.finished, N);
                start.elapsed()
            })
        })
    });
    g.bench_function("tokio-util-tracker", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let token = CancellationToken::new();
                let tracker = TaskTracker::new();
                for _ in 0..N {
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
    g.bench_function("tokio-joinset", |b| {
        b.iter_custom(|iters| {
            rounds(&rt, iters, || async {
                let token = CancellationToken::new();
                let mut set = JoinSet::new();
                for _ in 0..N {
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = shutdown_idle, spawn_into_group
}
criterion_main!(benches);
