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
use cancelkit::{CancelToken, JoinError, Runtime};

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
