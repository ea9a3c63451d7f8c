//! CancelToken against tokio-util's `CancellationToken` and futures'
//! `AbortHandle`, in the same run, so ratios can be taken on a noisy machine.
//!
//! `cargo bench --bench token --features tokio`; `ci/bench.sh` turns the
//! results into the README's ratio table.
#![allow(missing_docs)] // criterion_group! defines an undocumented `pub fn`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cancelkit::CancelToken;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use futures::future::AbortHandle;
use tokio_util::sync::CancellationToken;

/// A background thread running `work` in a loop until dropped.
struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn start(mut work: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    work();
                }
            })
        };
        // Let it get going.
        std::thread::sleep(Duration::from_millis(10));
        Background {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn is_cancelled(c: &mut Criterion) {
    let mut g = c.benchmark_group("is_cancelled/uncontended");
    let ck = CancelToken::new();
    let tu = CancellationToken::new();
    let (ab, _reg) = AbortHandle::new_pair();
    g.bench_function("cancelkit", |b| b.iter(|| black_box(&ck).is_cancelled()));
    g.bench_function("tokio-util", |b| b.iter(|| black_box(&tu).is_cancelled()));
    g.bench_function("futures-abort", |b| b.iter(|| black_box(&ab).is_aborted()));
    g.finish();

    let mut g = c.benchmark_group("is_cancelled/while-another-thread-clones-and-makes-children");
    {
        let ck = CancelToken::new();
        let _bg = Background::start({
            let ck = ck.clone();
            move || {
                let c = ck.clone();
                let child = ck.child();
                black_box((c, child));
            }
        });
        g.bench_function("cancelkit", |b| b.iter(|| black_box(&ck).is_cancelled()));
    }
    {
        let tu = CancellationToken::new();
        let _bg = Background::start({
            let tu = tu.clone();
            move || {
                let c = tu.clone();
                let child = tu.child_token();
                black_box((c, child));
            }
        });
        g.bench_function("tokio-util", |b| b.iter(|| black_box(&tu).is_cancelled()));
    }
    g.finish();

    let mut g = c.benchmark_group("is_cancelled/with-a-second-reader");
    {
        let ck = CancelToken::new();
        let _bg = Background::start({
            let ck = ck.clone();
            move || {
                black_box(ck.is_cancelled());
            }
        });
        g.bench_function("cancelkit", |b| b.iter(|| black_box(&ck).is_cancelled()));
    }
    {
        let tu = CancellationToken::new();
        let _bg = Background::start({
            let tu = tu.clone();
            move || {
                black_box(tu.is_cancelled());
            }
        });
        g.bench_function("tokio-util", |b| b.iter(|| black_box(&tu).is_cancelled()));
    }
    g.finish();
}

fn children(c: &mut Criterion) {
    let mut g = c.benchmark_group("child/create");
    let ck = CancelToken::new();
    let tu = CancellationToken::new();
    // Keep a few live siblings so the parent's collection is not trivially empty.
    let _ck_keep: Vec<_> = (0..8).map(|_| ck.child()).collect();
    let _tu_keep: Vec<_> = (0..8).map(|_| tu.child_token()).collect();
    g.bench_function("cancelkit", |b| {
        b.iter_batched(|| (), |()| ck.child(), BatchSize::SmallInput)
    });
    g.bench_function("tokio-util", |b| {
        b.iter_batched(|| (), |()| tu.child_token(), BatchSize::SmallInput)
    });
    g.finish();

    let mut g = c.benchmark_group("child/drop");
    g.bench_function("cancelkit", |b| {
        b.iter_batched(|| ck.child(), drop, BatchSize::SmallInput)
    });
    g.bench_function("tokio-util", |b| {
        b.iter_batched(|| tu.child_token(), drop, BatchSize::SmallInput)
    });
    g.finish();
}

fn cancel_wide(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut g = c.benchmark_group("cancel/10000-children");
    g.sample_size(30);
    g.bench_function("cancelkit", |b| {
        b.iter_batched(
            || {
                let root = CancelToken::new();
                let kids: Vec<_> = (0..N).map(|_| root.child()).collect();
                (root, kids)
            },
            |(root, kids)| {
                root.cancel();
                (root, kids) // dropped outside the measurement
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tokio-util", |b| {
        b.iter_batched(
            || {
                let root = CancellationToken::new();
                let kids: Vec<_> = (0..N).map(|_| root.child_token()).collect();
                (root, kids)
            },
            |(root, kids)| {
                root.cancel();
                (root, kids)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The operations the contended benchmarks need, for both token types.
trait Token: Clone + Send + Sync + 'static {
    fn root() -> Self;
    fn is_set(&self) -> bool;
    fn make_child(&self) -> Self;
    fn fire(&self);
    fn wait(self) -> impl std::future::Future<Output = ()> + Send;
}

impl Token for CancelToken {
    fn root() -> Self {
        CancelToken::new()
    }
    fn is_set(&self) -> bool {
        self.is_cancelled()
    }
    fn make_child(&self) -> Self {
        self.child()
    }
    fn fire(&self) {
        self.cancel();
    }
    fn wait(self) -> impl std::future::Future<Output = ()> + Send {
        self.cancelled_owned()
    }
}

impl Token for CancellationToken {
    fn root() -> Self {
        CancellationToken::new()
    }
    fn is_set(&self) -> bool {
        self.is_cancelled()
    }
    fn make_child(&self) -> Self {
        self.child_token()
    }
    fn fire(&self) {
        self.cancel();
    }
    fn wait(self) -> impl std::future::Future<Output = ()> + Send {
        self.cancelled_owned()
    }
}

/// Time from `cancel()` until `n` tasks parked on children have all seen it.
fn parked<T: Token>(rt: &tokio::runtime::Runtime, n: usize, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let root = T::root();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        for _ in 0..n {
            let (t, tx) = (root.make_child(), tx.clone());
            rt.spawn(async move {
                t.wait().await;
                let _ = tx.send(());
            });
        }
        rt.block_on(tokio::task::yield_now()); // let them park
        std::thread::sleep(Duration::from_millis(5));
        let start = Instant::now();
        root.fire();
        rt.block_on(async {
            for _ in 0..n {
                rx.recv().await.unwrap();
            }
        });
        total += start.elapsed();
    }
    total
}

/// Cancel until 10 000 parked tasks on a multi-thread tokio runtime have
/// all observed it.
fn cancel_parked(c: &mut Criterion) {
    const N: usize = 10_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("cancel/until-10000-parked-tasks-observed");
    g.sample_size(20);
    g.bench_function("cancelkit", |b| {
        b.iter_custom(|iters| parked::<CancelToken>(&rt, N, iters))
    });
    g.bench_function("tokio-util", |b| {
        b.iter_custom(|iters| parked::<CancellationToken>(&rt, N, iters))
    });
    g.finish();
}

/// Thread counts of the scaling rows: on a machine with fewer cores the
/// larger counts measure oversubscription, which is worth seeing too.
const THREADS: [usize; 4] = [1, 2, 4, 8];

/// `is_cancelled()` on the measuring thread while one writer clones the
/// token and makes children and `readers - 1` other threads read it.
fn reads_while_one_writes<T: Token>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    readers: usize,
) {
    let root = T::root();
    let _writer = Background::start({
        let root = root.clone();
        move || {
            let clone = root.clone();
            let child = root.make_child();
            black_box((clone, child));
        }
    });
    let _readers: Vec<Background> = (1..readers)
        .map(|_| {
            let root = root.clone();
            Background::start(move || {
                black_box(root.is_set());
            })
        })
        .collect();
    g.bench_function(name, |b| b.iter(|| black_box(&root).is_set()));
}

/// The scaling rows of the token: readers against a writer with 1 to 8
/// threads, and cancel until 10 000 or 100 000 parked tasks observed on a
/// runtime of 1 to 8 worker threads; each against tokio-util in the same
/// run.
fn scaling(c: &mut Criterion) {
    for readers in THREADS {
        let mut g = c.benchmark_group(format!("scaling/is_cancelled-{readers}-readers-one-writer"));
        reads_while_one_writes::<CancelToken>(&mut g, "cancelkit", readers);
        reads_while_one_writes::<CancellationToken>(&mut g, "tokio-util", readers);
        g.finish();
    }
    for n in [10_000, 100_000] {
        for threads in THREADS {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()
                .unwrap();
            let mut g = c.benchmark_group(format!(
                "scaling/cancel-until-{n}-parked-observed-{threads}-threads"
            ));
            g.sample_size(10);
            g.bench_function("cancelkit", |b| {
                b.iter_custom(|iters| parked::<CancelToken>(&rt, n, iters))
            });
            g.bench_function("tokio-util", |b| {
                b.iter_custom(|iters| parked::<CancellationToken>(&rt, n, iters))
            });
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = is_cancelled, children, cancel_wide, cancel_parked, scaling
}
criterion_main!(benches);
