//! Blocking work through `cancelkit::blocking`, the same on tokio (both
//! flavours), smol and async-std: values, panics, drop-to-cancel, abort,
//! detach, and a closure its runtime drops unrun. Every wait is on a
//! signal, bounded by `LIMIT` so that a broken implementation fails instead
//! of hanging.

use std::sync::mpsc;
use std::time::Duration;

use cancelkit::blocking::{BlockingTask, BlockingToken, SpawnBlocking, SpawnBlockingExt};
use cancelkit::rt::{AsyncStd, Smol, Tokio};
use cancelkit::token::CancelKind;
use cancelkit::{CancelToken, JoinError, Runtime, TaskGroup};

const LIMIT: Duration = Duration::from_secs(20);

/// The closure under test.
type Work = Box<dyn FnOnce(&BlockingToken) -> u32 + Send>;
/// What the test does with the handle; `Some` to have it awaited.
type Then = Box<dyn FnOnce(BlockingTask<u32>) -> Option<BlockingTask<u32>>>;

/// What the checks need of a runtime, object-safe.
trait Rt {
    fn name(&self) -> &'static str;
    fn run(&self, f: Work) -> Result<u32, JoinError>;
    fn spawn_then(&self, f: Work, with: Then) -> Option<Result<u32, JoinError>>;
}

macro_rules! rt_impl {
    ($ty:ty, $name:expr) => {
        impl Rt for $ty {
            fn name(&self) -> &'static str {
                $name
            }
            fn run(&self, f: Work) -> Result<u32, JoinError> {
                self.block_on(self.spawn_blocking(f))
            }
            fn spawn_then(&self, f: Work, with: Then) -> Option<Result<u32, JoinError>> {
                let task = self.spawn_blocking(f);
                with(task).map(|task| self.block_on(task))
            }
        }
    };
}

rt_impl!(Tokio, "tokio");
rt_impl!(Smol, "smol");
rt_impl!(AsyncStd, "async-std");

fn runtimes() -> Vec<Box<dyn Rt>> {
    vec![
        Box::new(Tokio::current_thread().unwrap()),
        Box::new(Tokio::new().unwrap()),
        Box::new(Smol::with_threads(1).unwrap()),
        Box::new(AsyncStd::current().unwrap()),
    ]
}

#[test]
fn the_value_comes_back() {
    for rt in runtimes() {
        assert_eq!(rt.run(Box::new(|_| 42)).ok(), Some(42), "{}", rt.name());
    }
}

#[test]
fn a_panic_is_the_handles_error() {
    for rt in runtimes() {
        match rt.run(Box::new(|_| panic!("boom"))) {
            Err(JoinError::Panicked(payload)) => {
                assert_eq!(
                    payload.downcast_ref::<&str>(),
                    Some(&"boom"),
                    "{}",
                    rt.name()
                )
            }
            other => panic!("{}: {other:?}", rt.name()),
        }
    }
}

#[test]
fn dropping_the_handle_asks_the_closure_to_stop() {
    for rt in runtimes() {
        let (tx, rx) = mpsc::channel();
        let (started_tx, started_rx) = mpsc::channel();
        let none = rt.spawn_then(
            Box::new(move |token| {
                started_tx.send(()).unwrap();
                let stopped = token.wait_timeout(LIMIT);
                tx.send((stopped, token.reason().map(|r| r.kind())))
                    .unwrap();
                0
            }),
            Box::new(move |task| {
                started_rx.recv_timeout(LIMIT).expect("the closure started");
                drop(task);
                None
            }),
        );
        assert!(none.is_none());
        let seen = rx.recv_timeout(LIMIT).expect("the closure ended");
        assert_eq!(
            seen,
            (true, Some(CancelKind::TaskCancelled)),
            "{}",
            rt.name()
        );
    }
}

#[test]
fn abort_then_await_waits_for_the_closure_to_end() {
    for rt in runtimes() {
        let (tx, rx) = mpsc::channel();
        let (started_tx, started_rx) = mpsc::channel();
        let out = rt.spawn_then(
            Box::new(move |token| {
                started_tx.send(()).unwrap();
                token.wait_timeout(LIMIT);
                // Work after the cancel: the handle must not resolve before
                // this is done.
                tx.send("cleaned up").unwrap();
                7
            }),
            Box::new(move |task| {
                // Started: the abort asks it to stop, it is not skipped.
                started_rx.recv_timeout(LIMIT).expect("the closure started");
                task.abort();
                Some(task)
            }),
        );
        assert_eq!(out.and_then(Result::ok), Some(7), "{}", rt.name());
        assert_eq!(rx.try_recv(), Ok("cleaned up"), "{}", rt.name());
    }
}

#[test]
fn a_detached_closure_runs_on_with_its_token_untouched() {
    for rt in runtimes() {
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let none = rt.spawn_then(
            Box::new(move |token| {
                go_rx.recv_timeout(LIMIT).expect("told to go");
                tx.send(token.is_cancelled()).unwrap();
                0
            }),
            Box::new(move |task| {
                task.detach();
                go_tx.send(()).unwrap();
                None
            }),
        );
        assert!(none.is_none());
        assert_eq!(rx.recv_timeout(LIMIT), Ok(false), "{}", rt.name());
    }
}

/// A runtime shutting down: it drops every closure it is handed.
struct Refusing;

impl SpawnBlocking for Refusing {
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        drop(f);
    }
}

#[test]
fn a_closure_dropped_unrun_gives_cancelled() {
    let task = Refusing.spawn_blocking(|_| 1);
    assert!(task.is_finished());
    let out = futures_lite::future::block_on(task);
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
}

#[test]
fn wait_timeout_returns_when_another_thread_cancels() {
    let token = CancelToken::new();
    let view = BlockingToken::new(token.clone());
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(view.wait_timeout(Duration::MAX)).unwrap());
    token.cancel();
    assert_eq!(rx.recv_timeout(LIMIT), Ok(true));
    waiter.join().unwrap();
}

#[test]
fn wait_timeout_with_no_cancel_returns_false_after_the_timeout() {
    let view = BlockingToken::new(CancelToken::new());
    let t0 = std::time::Instant::now();
    assert!(!view.wait_timeout(Duration::from_millis(2)));
    assert!(t0.elapsed() >= Duration::from_millis(2));
    assert!(!view.wait_timeout(Duration::ZERO));
}

/// A pool that holds closures until told to run them, on a thread.
#[derive(Clone, Default)]
struct Gate(std::sync::Arc<std::sync::Mutex<Vec<Queued>>>);

type Queued = Box<dyn FnOnce() + Send>;

impl SpawnBlocking for Gate {
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.0.lock().unwrap().push(Box::new(f));
    }
}

impl Gate {
    fn run_all(&self) {
        let jobs = std::mem::take(&mut *self.0.lock().unwrap());
        std::thread::spawn(move || jobs.into_iter().for_each(|job| job()))
            .join()
            .unwrap();
    }
}

#[test]
fn work_cancelled_before_it_starts_never_starts() {
    let gate = Gate::default();
    let (tx, rx) = mpsc::channel();
    let task = gate.spawn_blocking(move |_| tx.send("started").unwrap());
    task.abort();
    gate.run_all();
    let out = futures_lite::future::block_on(task);
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
    assert!(rx.try_recv().is_err(), "the closure ran");
    // Not cancelled: it runs.
    let task = gate.spawn_blocking(|_| 5);
    gate.run_all();
    assert_eq!(futures_lite::future::block_on(task).ok(), Some(5));
}

// ===== blocking work in a group (L4) =====

fn shutdown_reports_stubborn_work_abandoned_on<R>(rt: &R, name: &str)
where
    R: Runtime + cancelkit::RuntimeHandle + SpawnBlocking,
{
    let group = TaskGroup::new(rt);
    let (started_tx, started_rx) = mpsc::channel();
    let (release, hold) = mpsc::channel::<()>();
    let (ended_tx, ended_rx) = mpsc::channel();
    let polite = group.spawn_blocking_named("polite", {
        let started_tx = started_tx.clone();
        move |token| {
            started_tx.send(()).unwrap();
            token.wait_timeout(LIMIT)
        }
    });
    let stubborn = group.spawn_blocking_named("stubborn", move |_token| {
        started_tx.send(()).unwrap();
        let _ = hold.recv_timeout(LIMIT);
        ended_tx.send(()).unwrap();
    });
    for _ in 0..2 {
        started_rx.recv_timeout(LIMIT).expect("both started");
    }
    // The polite one ends at once when asked; the grace is there for slow
    // machines, and the stubborn one makes the shutdown use all of it.
    let report = rt.block_on(group.shutdown(Duration::from_secs(1)));
    assert_eq!(report.finished, 1, "{name}: {report}");
    assert!(report.forced.is_empty(), "{name}: {report}");
    let abandoned: Vec<_> = report.abandoned.iter().map(|t| t.name()).collect();
    assert_eq!(abandoned, ["stubborn"], "{name}");
    assert!(
        report.to_string().contains("1 abandoned"),
        "{name}: {report}"
    );
    // The shutdown returned while the stubborn work still runs.
    assert!(
        ended_rx.try_recv().is_err(),
        "{name}: waited for abandoned work"
    );
    assert_eq!(rt.block_on(polite).ok(), Some(true), "{name}");
    drop(release);
    ended_rx
        .recv_timeout(LIMIT)
        .expect("the stubborn work ended");
    assert!(rt.block_on(stubborn).is_ok(), "{name}");
}

fn a_panic_in_group_blocking_work_is_a_failure_on<R>(rt: &R, name: &str)
where
    R: Runtime + cancelkit::RuntimeHandle + SpawnBlocking,
{
    let group = TaskGroup::new(rt);
    let job = group.spawn_blocking_named("breaks", |_| panic!("disk on fire"));
    assert!(
        matches!(rt.block_on(job), Err(JoinError::Panicked(_))),
        "{name}"
    );
    rt.block_on(group.wait());
    let report = rt.block_on(group.shutdown(Duration::ZERO));
    assert_eq!(report.failures.len(), 1, "{name}: {report}");
    assert_eq!(report.failures[0].task.name(), "breaks", "{name}");
    assert!(
        report.failures[0].message.contains("disk on fire"),
        "{name}"
    );
    assert!(report.abandoned.is_empty(), "{name}");
}

fn a_closed_group_does_not_run_blocking_work_on<R>(rt: &R, name: &str)
where
    R: Runtime + cancelkit::RuntimeHandle + SpawnBlocking,
{
    let group = TaskGroup::new(rt);
    group.close();
    let job = group.spawn_blocking(|_| panic!("must not run"));
    assert!(
        matches!(rt.block_on(job), Err(JoinError::Cancelled)),
        "{name}"
    );
}

fn a_dropped_groups_blocking_work_sees_the_groups_cause_on<R>(rt: &R, name: &str)
where
    R: Runtime + cancelkit::RuntimeHandle + SpawnBlocking,
{
    let group = TaskGroup::new(rt);
    let (started_tx, started_rx) = mpsc::channel();
    let job = group.spawn_blocking(move |token| {
        started_tx.send(()).unwrap();
        token.wait_timeout(LIMIT);
        token
            .reason()
            .map(|r| (r.kind(), r.cause().map(|e| e.to_string())))
    });
    started_rx.recv_timeout(LIMIT).expect("it started");
    drop(group);
    let (kind, cause) = rt.block_on(job).unwrap().expect("its token was cancelled");
    assert_eq!(kind, CancelKind::Shutdown, "{name}: {cause:?}");
    assert_eq!(
        cause.as_deref(),
        Some("the task group was dropped"),
        "{name}"
    );
}

macro_rules! on_every_runtime {
    ($check:ident) => {
        $check(&Tokio::current_thread().unwrap(), "tokio current-thread");
        $check(&Tokio::new().unwrap(), "tokio multi-thread");
        $check(&Smol::with_threads(1).unwrap(), "smol");
        $check(&AsyncStd::current().unwrap(), "async-std");
    };
}

#[test]
fn shutdown_reports_stubborn_blocking_work_abandoned_and_does_not_wait() {
    on_every_runtime!(shutdown_reports_stubborn_work_abandoned_on);
}

#[test]
fn a_panic_in_group_blocking_work_is_a_failure() {
    on_every_runtime!(a_panic_in_group_blocking_work_is_a_failure_on);
}

#[test]
fn a_dropped_groups_blocking_work_sees_the_groups_cause() {
    on_every_runtime!(a_dropped_groups_blocking_work_sees_the_groups_cause_on);
}

#[test]
fn a_closed_group_does_not_run_blocking_work() {
    on_every_runtime!(a_closed_group_does_not_run_blocking_work_on);
}

/// Tokio, with a blocking pool that holds closures until told to run them.
#[derive(Clone)]
struct GatedTokio {
    rt: Tokio,
    gate: Gate,
}

impl cancelkit::Spawner for GatedTokio {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn_detached(fut)
    }
}

impl cancelkit::Timer for GatedTokio {
    type Sleep = <Tokio as cancelkit::Timer>::Sleep;
    fn now(&self) -> std::time::Instant {
        self.rt.now()
    }
    fn sleep_until(&self, deadline: std::time::Instant) -> Self::Sleep {
        self.rt.sleep_until(deadline)
    }
}

impl SpawnBlocking for GatedTokio {
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.gate.spawn_blocking_detached(f)
    }
}

/// A current-thread tokio runtime, and the same with a gated blocking pool.
fn gated_tokio() -> (Tokio, GatedTokio) {
    let rt = Tokio::current_thread().unwrap();
    let gated = GatedTokio {
        rt: rt.clone(),
        gate: Gate::default(),
    };
    (rt, gated)
}

#[test]
fn blocking_work_no_thread_picked_up_before_the_shutdown_never_runs_and_counts_not_started() {
    let (rt, gated) = gated_tokio();
    let group = TaskGroup::new(&gated);
    let (tx, rx) = mpsc::channel();
    group
        .spawn_blocking_named("queued", move |_| tx.send("ran").unwrap())
        .detach();
    // The shutdown cancels it while it waits for a thread; the group waits
    // for it (it is live) until a thread picks it up and finds it cancelled.
    // `or` polls the shutdown first: its first poll cancels the group's
    // token; the second future lets the queue run only on its second poll.
    let gate = gated.gate.clone();
    let report = rt.block_on(futures_lite::future::or(
        group.shutdown(Duration::from_secs(10)),
        async move {
            futures_lite::future::yield_now().await;
            gate.run_all();
            std::future::pending().await
        },
    ));
    assert_eq!(report.not_started, 1, "{report}");
    assert_eq!(
        (report.finished, report.abandoned.len()),
        (0, 0),
        "{report}"
    );
    assert!(rx.try_recv().is_err(), "the closure ran");
}

#[test]
fn blocking_work_still_queued_when_the_grace_ends_is_not_started_not_abandoned() {
    // The pool has no free thread for it until after the shutdown returned:
    // it is reported not started, and when a thread finally picks it up it
    // does not start.
    let (rt, gated) = gated_tokio();
    let group = TaskGroup::new(&gated);
    let (tx, rx) = mpsc::channel();
    let job = group.spawn_blocking_named("queued", move |_| tx.send("ran").unwrap());
    let report = rt.block_on(group.shutdown(Duration::from_millis(1)));
    assert_eq!(report.not_started, 1, "{report}");
    assert!(report.abandoned.is_empty(), "{report}");
    gated.gate.run_all();
    assert!(rx.try_recv().is_err(), "the closure ran");
    assert!(matches!(rt.block_on(job), Err(JoinError::Cancelled)));
}

/// A value whose destructor panics.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("bomb");
    }
}

#[test]
fn a_value_nobody_reads_is_dropped_without_its_panic_escaping() {
    // Handle gone first: the pool thread drops the value (`run_all` joins
    // that thread and fails if it panicked).
    let gate = Gate::default();
    gate.spawn_blocking(|_| Bomb).detach();
    gate.run_all();
    // Value there first: the handle's drop drops it.
    let task = gate.spawn_blocking(|_| Bomb);
    gate.run_all();
    assert!(task.is_finished());
    drop(task);
}
