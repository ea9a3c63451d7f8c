//! cancelkit's runtime-neutral primitives against each runtime's own, in
//! the same run: spawn + join, cancelling a pending task, timeouts, sleeps.
//!
//! `cargo bench --all-features --bench runtime`; `ci/bench.sh` turns the
//! results into the README's ratio table.
#![allow(missing_docs)] // criterion_group! defines an undocumented `pub fn`

use std::future::{Future, pending, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use cancelkit::rt::{AsyncStd, Smol, Tokio};
use cancelkit::{Runtime, Spawner, Timer, timeout};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_lite::future::yield_now;

/// Times `iters` runs of `op` inside one `block_on` of `rt`.
fn timed<R, F, Fut>(rt: &R, iters: u64, op: F) -> Duration
where
    R: Runtime,
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            op().await;
        }
        start.elapsed()
    })
}

/// A future that is pending once (it wakes itself), then ready: forces a
/// timeout to arm its timer, completing long before the deadline.
async fn pending_once() -> u32 {
    yield_now().await;
    1
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join/tokio-current-thread");
    let rt = Tokio::current_thread().unwrap();
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(rt.spawn(async { 1 }).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(tokio::spawn(async { 1 }).await.unwrap());
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("spawn_join/tokio-multi-thread");
    let rt = Tokio::multi_thread().unwrap();
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(rt.spawn(async { 1 }).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(tokio::spawn(async { 1 }).await.unwrap());
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("spawn_join/smol");
    let rt = Smol::with_threads(1).unwrap();
    let ex = rt.executor().clone();
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(rt.spawn(async { 1 }).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(ex.spawn(async { 1 }).await);
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("spawn_join/async-std");
    let rt = AsyncStd::new();
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(rt.spawn(async { 1 }).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(async_std::task::spawn(async { 1 }).await);
            })
        })
    });
    g.finish();
}

fn cancel_pending(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel_pending/tokio-multi-thread");
    let rt = Tokio::multi_thread().unwrap();
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(rt.spawn(pending::<()>()).cancel().await);
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                let h = tokio::spawn(pending::<()>());
                h.abort();
                black_box(h.await.is_err());
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("cancel_pending/smol");
    let rt = Smol::with_threads(1).unwrap();
    let ex = rt.executor().clone();
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(rt.spawn(pending::<()>()).cancel().await);
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(ex.spawn(pending::<()>()).cancel().await);
            })
        })
    });
    g.finish();
}

fn timeouts(c: &mut Criterion) {
    let long = Duration::from_secs(60);

    let rt = Tokio::multi_thread().unwrap();
    let mut g = c.benchmark_group("timeout_ready/tokio");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(timeout(&rt, long, ready(1)).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(tokio::time::timeout(long, ready(1)).await.unwrap());
            })
        })
    });
    g.finish();
    let mut g = c.benchmark_group("timeout_pending/tokio");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(timeout(&rt, long, pending_once()).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(tokio::time::timeout(long, pending_once()).await.unwrap());
            })
        })
    });
    g.finish();

    let rt = AsyncStd::new();
    let mut g = c.benchmark_group("timeout_ready/async-std");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(timeout(&rt, long, ready(1)).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(async_std::future::timeout(long, ready(1)).await.unwrap());
            })
        })
    });
    g.finish();
    let mut g = c.benchmark_group("timeout_pending/async-std");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(timeout(&rt, long, pending_once()).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(
                    async_std::future::timeout(long, pending_once())
                        .await
                        .unwrap(),
                );
            })
        })
    });
    g.finish();

    // smol has no timeout of its own: the idiom is `or` with an async-io Timer.
    let rt = Smol::with_threads(1).unwrap();
    let smol_timeout = |fut| {
        futures_lite::future::or(async move { Some(fut.await) }, async move {
            async_io::Timer::after(long).await;
            None
        })
    };
    let mut g = c.benchmark_group("timeout_ready/smol");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(timeout(&rt, long, ready(1)).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(smol_timeout(ready(1)).await.unwrap());
            })
        })
    });
    g.finish();
    let mut g = c.benchmark_group("timeout_pending/smol");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(timeout(&rt, long, pending_once()).await.unwrap());
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(
                    futures_lite::future::or(async { Some(pending_once().await) }, async {
                        async_io::Timer::after(long).await;
                        None
                    })
                    .await
                    .unwrap(),
                );
            })
        })
    });
    g.finish();
}

/// Sleep overhead: create a sleep, register it with the timer (one poll),
/// drop it. A sleep that runs to completion would measure the timer's
/// resolution (about 1 ms), not the wrapper.
fn sleeps(c: &mut Criterion) {
    let long = Duration::from_secs(60);
    let rt = Tokio::multi_thread().unwrap();
    let mut g = c.benchmark_group("sleep_register/tokio");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(futures_lite::future::poll_once(rt.sleep(long)).await);
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(futures_lite::future::poll_once(tokio::time::sleep(long)).await);
            })
        })
    });
    g.finish();

    let rt = Smol::with_threads(1).unwrap();
    let mut g = c.benchmark_group("sleep_register/smol");
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(futures_lite::future::poll_once(rt.sleep(long)).await);
            })
        })
    });
    g.bench_function("native", |b| {
        b.iter_custom(|n| {
            timed(&rt, n, || async {
                black_box(futures_lite::future::poll_once(async_io::Timer::after(long)).await);
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = spawn_join, cancel_pending, timeouts, sleeps
}
criterion_main!(benches);
