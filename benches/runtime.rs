//! cancelkit's runtime-neutral primitives against each runtime's own, in
//! the same run: spawn + join, cancelling a pending task, timeouts, sleeps.
//!
//! `cargo bench --all-features --bench runtime`; `ci/bench.sh` turns the
//! results into the README's ratio table.
#![allow(missing_docs)] // criterion_group! defines an undocumented `pub fn`

use std::future::{Future, pending, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use cancelkit::rt::{AsyncStd, Compio, Monoio, Smol, SmolLocal, Tokio, TokioLocal};
use cancelkit::{Runtime, SpawnerExt, Timer, timeout};
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

/// One benchmark group: cancelkit's operation against the native one, each
/// timed as `iters` runs inside one `block_on` of `rt`.
fn pair<R, O, N, FO, FN>(c: &mut Criterion, group: &str, rt: &R, ours: O, native: N)
where
    R: Runtime,
    O: Fn() -> FO,
    N: Fn() -> FN,
    FO: Future<Output = ()>,
    FN: Future<Output = ()>,
{
    let mut g = c.benchmark_group(group);
    g.bench_function("cancelkit", |b| b.iter_custom(|n| timed(rt, n, &ours)));
    g.bench_function("native", |b| b.iter_custom(|n| timed(rt, n, &native)));
    g.finish();
}

fn spawn_join(c: &mut Criterion) {
    for (name, rt) in [
        (
            "spawn_join/tokio-current-thread",
            Tokio::current_thread().unwrap(),
        ),
        ("spawn_join/tokio-multi-thread", Tokio::new().unwrap()),
    ] {
        pair(
            c,
            name,
            &rt,
            || async {
                black_box(rt.spawn(async { 1 }).await.unwrap());
            },
            || async {
                black_box(tokio::spawn(async { 1 }).await.unwrap());
            },
        );
    }

    let rt = Smol::with_threads(1).unwrap();
    let ex = rt.executor().unwrap().clone();
    pair(
        c,
        "spawn_join/smol",
        &rt,
        || async {
            black_box(rt.spawn(async { 1 }).await.unwrap());
        },
        || async {
            black_box(ex.spawn(async { 1 }).await);
        },
    );

    let rt = AsyncStd::current().unwrap();
    pair(
        c,
        "spawn_join/async-std",
        &rt,
        || async {
            black_box(rt.spawn(async { 1 }).await.unwrap());
        },
        || async {
            black_box(async_std::task::spawn(async { 1 }).await);
        },
    );

    let rt = Compio::new().unwrap();
    pair(
        c,
        "spawn_join/compio",
        &rt,
        || async {
            black_box(rt.spawn(async { 1 }).await.unwrap());
        },
        || async {
            black_box(compio::runtime::spawn(async { 1 }).await.unwrap());
        },
    );

    let rt = Monoio::new().unwrap();
    pair(
        c,
        "spawn_join/monoio",
        &rt,
        || async {
            black_box(rt.spawn(async { 1 }).await.unwrap());
        },
        || async {
            black_box(monoio::spawn(async { 1 }).await);
        },
    );
}

/// cancelkit's side of a `spawn_join_local` row: a local task holding a
/// value that is not `Send`, spawned and joined.
async fn spawn_local_join<R: cancelkit::local::LocalSpawner>(rt: &R) {
    use cancelkit::local::LocalSpawnerExt;

    let one = std::rc::Rc::new(1);
    black_box(rt.spawn_local(async move { *one }).await.unwrap());
}

/// Local (`!Send`) tasks: `spawn_local` + join against each local
/// executor's own.
fn spawn_join_local(c: &mut Criterion) {
    use std::rc::Rc;

    let rt = TokioLocal::new().unwrap();
    pair(
        c,
        "spawn_join_local/tokio-localset",
        &rt,
        || spawn_local_join(&rt),
        || async {
            let one = Rc::new(1);
            black_box(tokio::task::spawn_local(async move { *one }).await.unwrap());
        },
    );

    let rt = SmolLocal::new().unwrap();
    let ex = rt.local_executor().unwrap();
    pair(
        c,
        "spawn_join_local/smol-localexecutor",
        &rt,
        || spawn_local_join(&rt),
        || async {
            let one = Rc::new(1);
            black_box(ex.spawn(async move { *one }).await);
        },
    );

    let rt = Compio::new().unwrap();
    pair(
        c,
        "spawn_join_local/compio",
        &rt,
        || spawn_local_join(&rt),
        || async {
            let one = Rc::new(1);
            black_box(compio::runtime::spawn(async move { *one }).await.unwrap());
        },
    );

    let rt = Monoio::new().unwrap();
    pair(
        c,
        "spawn_join_local/monoio",
        &rt,
        || spawn_local_join(&rt),
        || async {
            let one = Rc::new(1);
            black_box(monoio::spawn(async move { *one }).await);
        },
    );
}

fn spawn_blocking_join(c: &mut Criterion) {
    use cancelkit::blocking::SpawnBlockingExt;

    let rt = Tokio::new().unwrap();
    pair(
        c,
        "spawn_blocking_join/tokio",
        &rt,
        || async {
            black_box(rt.spawn_blocking(|_| 1).await.unwrap());
        },
        || async {
            black_box(tokio::task::spawn_blocking(|| 1).await.unwrap());
        },
    );

    let rt = Smol::with_threads(1).unwrap();
    pair(
        c,
        "spawn_blocking_join/smol",
        &rt,
        || async {
            black_box(rt.spawn_blocking(|_| 1).await.unwrap());
        },
        || async {
            black_box(smol::unblock(|| 1).await);
        },
    );

    let rt = AsyncStd::current().unwrap();
    pair(
        c,
        "spawn_blocking_join/async-std",
        &rt,
        || async {
            black_box(rt.spawn_blocking(|_| 1).await.unwrap());
        },
        || async {
            black_box(async_std::task::spawn_blocking(|| 1).await);
        },
    );

    let rt = Compio::new().unwrap();
    pair(
        c,
        "spawn_blocking_join/compio",
        &rt,
        || async {
            black_box(rt.spawn_blocking(|_| 1).await.unwrap());
        },
        || async {
            black_box(compio::runtime::spawn_blocking(|| 1).await.unwrap());
        },
    );
}

fn cancel_pending(c: &mut Criterion) {
    let rt = Tokio::new().unwrap();
    pair(
        c,
        "cancel_pending/tokio-multi-thread",
        &rt,
        || async {
            black_box(rt.spawn(pending::<()>()).cancel().await);
        },
        || async {
            let h = tokio::spawn(pending::<()>());
            h.abort();
            black_box(h.await.is_err());
        },
    );

    let rt = Smol::with_threads(1).unwrap();
    let ex = rt.executor().unwrap().clone();
    pair(
        c,
        "cancel_pending/smol",
        &rt,
        || async {
            black_box(rt.spawn(pending::<()>()).cancel().await);
        },
        || async {
            black_box(ex.spawn(pending::<()>()).cancel().await);
        },
    );
}

fn timeouts(c: &mut Criterion) {
    let long = Duration::from_secs(60);

    let rt = Tokio::new().unwrap();
    pair(
        c,
        "timeout_ready/tokio",
        &rt,
        || async {
            black_box(timeout(&rt, long, ready(1)).await.unwrap());
        },
        || async {
            black_box(tokio::time::timeout(long, ready(1)).await.unwrap());
        },
    );
    pair(
        c,
        "timeout_pending/tokio",
        &rt,
        || async {
            black_box(timeout(&rt, long, pending_once()).await.unwrap());
        },
        || async {
            black_box(tokio::time::timeout(long, pending_once()).await.unwrap());
        },
    );

    let rt = AsyncStd::current().unwrap();
    pair(
        c,
        "timeout_ready/async-std",
        &rt,
        || async {
            black_box(timeout(&rt, long, ready(1)).await.unwrap());
        },
        || async {
            black_box(async_std::future::timeout(long, ready(1)).await.unwrap());
        },
    );
    pair(
        c,
        "timeout_pending/async-std",
        &rt,
        || async {
            black_box(timeout(&rt, long, pending_once()).await.unwrap());
        },
        || async {
            black_box(
                async_std::future::timeout(long, pending_once())
                    .await
                    .unwrap(),
            );
        },
    );

    // smol has no timeout of its own: the idiom is `or` with an async-io Timer.
    async fn smol_timeout<T>(fut: impl Future<Output = T>, limit: Duration) -> Option<T> {
        futures_lite::future::or(async { Some(fut.await) }, async {
            async_io::Timer::after(limit).await;
            None
        })
        .await
    }
    let rt = Smol::with_threads(1).unwrap();
    pair(
        c,
        "timeout_ready/smol",
        &rt,
        || async {
            black_box(timeout(&rt, long, ready(1)).await.unwrap());
        },
        || async {
            black_box(smol_timeout(ready(1), long).await.unwrap());
        },
    );
    pair(
        c,
        "timeout_pending/smol",
        &rt,
        || async {
            black_box(timeout(&rt, long, pending_once()).await.unwrap());
        },
        || async {
            black_box(smol_timeout(pending_once(), long).await.unwrap());
        },
    );

    let rt = Compio::new().unwrap();
    pair(
        c,
        "timeout_pending/compio",
        &rt,
        || async {
            black_box(timeout(&rt, long, pending_once()).await.unwrap());
        },
        || async {
            black_box(compio::time::timeout(long, pending_once()).await.unwrap());
        },
    );
}

/// Sleep overhead: create a sleep, register it with the timer (one poll),
/// drop it. A sleep that runs to completion would measure the timer's
/// resolution (about 1 ms), not the wrapper.
fn sleeps(c: &mut Criterion) {
    use futures_lite::future::poll_once;
    let long = Duration::from_secs(60);

    let rt = Tokio::new().unwrap();
    pair(
        c,
        "sleep_register/tokio",
        &rt,
        || async {
            black_box(poll_once(rt.sleep(long)).await);
        },
        || async {
            black_box(poll_once(tokio::time::sleep(long)).await);
        },
    );

    let rt = Smol::with_threads(1).unwrap();
    pair(
        c,
        "sleep_register/smol",
        &rt,
        || async {
            black_box(poll_once(rt.sleep(long)).await);
        },
        || async {
            black_box(poll_once(async_io::Timer::after(long)).await);
        },
    );

    // cancelkit's sleep on compio is async-io's (compio's own is !Send).
    let rt = Compio::new().unwrap();
    pair(
        c,
        "sleep_register/compio",
        &rt,
        || async {
            black_box(poll_once(rt.sleep(long)).await);
        },
        || async {
            black_box(poll_once(compio::time::sleep(long)).await);
        },
    );
}

/// Cancel scopes ([S4](cancelkit::scope)): what `checkpoint()` costs when
/// nothing is cancelled, and what a task pays for `current()` — both
/// measured inside a cancelkit task (where the scope is), against the
/// check a user writes by hand with a tokio-util token.
fn scopes(c: &mut Criterion) {
    use std::pin::pin;
    use std::task::{Context, Waker};

    let rt = Tokio::current_thread().unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let mut g = c.benchmark_group("checkpoint_not-cancelled");
    // Polled by hand (twice: it yields once) with a no-op waker, so the
    // runtime's rescheduling, which any yield pays, is left out.
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|n| {
            rt.block_on(rt.spawn(async move {
                let mut cx = Context::from_waker(Waker::noop());
                let start = Instant::now();
                for _ in 0..n {
                    let mut cp = pin!(cancelkit::scope::checkpoint());
                    let _ = black_box(cp.as_mut().poll(&mut cx));
                    let _ = black_box(cp.as_mut().poll(&mut cx));
                }
                start.elapsed()
            }))
            .unwrap()
        })
    });
    g.bench_function("tokio-util-is-cancelled", |b| {
        b.iter_custom(|n| {
            let token = token.clone();
            rt.block_on(rt.spawn(async move {
                let start = Instant::now();
                for _ in 0..n {
                    black_box(black_box(&token).is_cancelled());
                }
                start.elapsed()
            }))
            .unwrap()
        })
    });
    g.finish();

    pair(
        c,
        "spawn_join_current/tokio-current-thread",
        &rt,
        || async {
            black_box(
                rt.spawn(async { black_box(cancelkit::scope::current()) })
                    .await
                    .unwrap(),
            );
        },
        || async {
            black_box(rt.spawn(async { 1 }).await.unwrap());
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = spawn_join, spawn_join_local, spawn_blocking_join, cancel_pending, timeouts, sleeps, scopes
}
criterion_main!(benches);
