//! loom models of the task harness with cancel scopes: a task's
//! cancellation (from another thread) racing a shield's completion, and
//! racing the registration of a cleanup (which makes the task's token on
//! first use). Run by `ci/loom.sh` with the token's models.
//!
//! The harness runs on a loom thread under `loom::future::block_on`, the
//! handle's owner aborts and awaits it on another; loom explores every
//! interleaving of the state word, the harness's waker, the joiner's slot
//! (outcome and waker under one lock), the host's lock and the token's
//! atomics up to the preemption bound. (`OnceLock` and `OnceBox`, which hold
//! the task's token and its rarely used parts, are `std`'s and
//! `once_cell`'s: loom does not model them, see `crate::loom`.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use loom::thread;

use crate::runtime::Timer;
use crate::{JoinError, scope};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// A timer whose sleeps never end: graces are never the reason a section
/// stops in these models.
#[derive(Clone)]
struct NoTime(Instant);

impl Timer for NoTime {
    type Sleep = std::future::Pending<()>;
    fn now(&self) -> Instant {
        self.0
    }
    fn sleep_until(&self, _deadline: Instant) -> Self::Sleep {
        std::future::pending()
    }
}

/// Runs `harness` on a loom thread while this one aborts its task and
/// awaits the handle; `observe` looks at the outcome (and whatever the
/// model counts) the moment the handle resolved, before the thread is
/// joined.
fn abort_while_it_runs<T, O>(
    task: crate::Task<T>,
    harness: impl Future<Output = ()> + Send + 'static,
    observe: impl FnOnce(Result<T, JoinError>) -> O,
) -> O {
    let runtime = thread::spawn(move || loom::future::block_on(harness));
    task.abort();
    let seen = observe(loom::future::block_on(task));
    runtime.join().unwrap();
    seen
}

/// Pending once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn loom_shield_completion_races_task_cancellation() {
    // The shield completes on its first poll, exactly when the abort may
    // land: it must be entered and left whole, or not entered at all.
    model(|| {
        let timer = NoTime(Instant::now());
        let (entered, shield_done) = (
            StdArc::new(AtomicUsize::new(0)),
            StdArc::new(AtomicUsize::new(0)),
        );
        let (task, harness) = crate::task::new({
            let (entered, shield_done) = (entered.clone(), shield_done.clone());
            async move {
                YieldOnce(false).await;
                scope::shield(&timer, Duration::from_secs(1), async move {
                    entered.fetch_add(1, StdOrdering::SeqCst);
                    shield_done.fetch_add(1, StdOrdering::SeqCst);
                })
                .await;
            }
        });
        abort_while_it_runs(task, harness, |out| {
            let (entered, done) = (
                entered.load(StdOrdering::SeqCst),
                shield_done.load(StdOrdering::SeqCst),
            );
            match out {
                Ok(()) => assert_eq!((entered, done), (1, 1)),
                Err(JoinError::Cancelled) => assert_eq!(entered, done),
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
    });
}

#[test]
fn loom_shield_started_is_finished_before_the_handle_resolves() {
    model(|| {
        let timer = NoTime(Instant::now());
        let (entered, shield_done) = (
            StdArc::new(AtomicUsize::new(0)),
            StdArc::new(AtomicUsize::new(0)),
        );
        let (task, harness) = crate::task::new({
            let (entered, shield_done) = (entered.clone(), shield_done.clone());
            async move {
                scope::shield(&timer, Duration::from_secs(1), async move {
                    entered.fetch_add(1, StdOrdering::SeqCst);
                    YieldOnce(false).await;
                    shield_done.fetch_add(1, StdOrdering::SeqCst);
                })
                .await;
                std::future::pending::<()>().await
            }
        });
        abort_while_it_runs(task, harness, |out| {
            assert!(matches!(out, Err(JoinError::Cancelled)));
            // Whoever got into the shield got out of it, before the handle
            // said the task was over.
            assert_eq!(
                entered.load(StdOrdering::SeqCst),
                shield_done.load(StdOrdering::SeqCst)
            );
        });
    });
}

#[test]
fn loom_cleanup_registration_races_cancel_and_runs_exactly_once() {
    model(|| {
        let timer = NoTime(Instant::now());
        let (registered, ran) = (
            StdArc::new(AtomicUsize::new(0)),
            StdArc::new(AtomicUsize::new(0)),
        );
        let (task, harness) = crate::task::new({
            let (registered, ran) = (registered.clone(), ran.clone());
            async move {
                let cleanup = move |_| async move {
                    ran.fetch_add(1, StdOrdering::SeqCst);
                };
                // Makes the task's token (first use) while the cancel may be
                // landing on the other thread.
                if scope::cleanup(&timer, Duration::from_secs(1), cleanup).is_ok() {
                    registered.fetch_add(1, StdOrdering::SeqCst);
                }
                std::future::pending::<()>().await
            }
        });
        abort_while_it_runs(task, harness, |out| {
            assert!(matches!(out, Err(JoinError::Cancelled)));
            // Registered (the task got to run) means run, once, before the
            // handle resolved; never run otherwise.
            assert_eq!(
                ran.load(StdOrdering::SeqCst),
                registered.load(StdOrdering::SeqCst)
            );
        });
    });
}

#[test]
fn loom_scope_token_made_while_the_task_is_cancelled_ends_cancelled() {
    model(|| {
        let slot = StdArc::new(std::sync::Mutex::new(None));
        let (task, harness) = crate::task::new({
            let slot = slot.clone();
            async move {
                *slot.lock().unwrap() = Some(scope::current());
                std::future::pending::<()>().await
            }
        });
        // The cancel comes from a thread other than the one polling, and
        // without waiting for the harness: the token must learn it either
        // from the canceller or from its own creation.
        let poller = thread::spawn(move || {
            let mut harness = Box::pin(harness);
            let waker = futures_task_noop();
            let _ = harness.as_mut().poll(&mut Context::from_waker(&waker));
            harness
        });
        task.abort();
        let harness = poller.join().unwrap();
        if let Some(token) = slot.lock().unwrap().take() {
            assert!(
                token.is_cancelled(),
                "a token made during a cancel missed it"
            );
        }
        drop(harness);
        drop(task);
    });
}

/// A waker that does nothing (the model polls by hand).
fn futures_task_noop() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

#[test]
fn loom_abort_racing_normal_completion_never_runs_cleanup() {
    // The task registers a cleanup and returns at once; the abort may land
    // before its first poll (then nothing is registered), during it, or
    // after it returned: a task that completed never runs its cleanup.
    model(|| {
        let timer = NoTime(Instant::now());
        let ran = StdArc::new(AtomicUsize::new(0));
        let (task, harness) = crate::task::new({
            let ran = ran.clone();
            async move {
                let cleanup = move |_| async move {
                    ran.fetch_add(1, StdOrdering::SeqCst);
                };
                let _ = scope::cleanup(&timer, Duration::from_secs(1), cleanup);
            }
        });
        abort_while_it_runs(task, harness, |out| {
            if out.is_ok() {
                assert_eq!(
                    ran.load(StdOrdering::SeqCst),
                    0,
                    "completed, yet cleaned up"
                );
            }
        });
    });
}

#[test]
fn loom_completion_racing_the_joiner_registration_is_never_lost() {
    // No cancel: the harness completes on one thread while the handle is
    // awaited on another. The joiner checks and registers under the lock
    // the harness publishes `COMPLETE` under, so `block_on` returns in
    // every interleaving (a lost wake-up deadlocks the model) with the
    // value.
    model(|| {
        let (task, harness) = crate::task::new(async {
            YieldOnce(false).await;
            7
        });
        let runtime = thread::spawn(move || loom::future::block_on(harness));
        assert_eq!(loom::future::block_on(task).ok(), Some(7));
        runtime.join().unwrap();
    });
}
