//! The cases of the suite, one function each, named as in the contract.
//!
//! Rules every case follows:
//! - events are ordered by awaiting signals ([`CancelToken`]s), never by
//!   sleeping; sleeps appear only where time itself is under test, and are
//!   short (≤ 50 ms) unless they stand for "never" (then they are
//!   [`Config::patience`](super::Config::patience) long, and the case
//!   finishes long before them on a correct runtime);
//! - every wait is bounded by the watchdog of [`Ctx::block_on`];
//! - only events whose order the case itself forces go into the trace.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::FutureExt as _;
use futures_lite::future::yield_now;

use super::{Ctx, Failure, bounded};
use crate::task::panic_text;
use crate::time::Elapsed;
use crate::{CancelToken, JoinError, Runtime, SpawnerExt, Task, deadline, timeout};

/// `Err(Failure)` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(Failure::new(format!($($msg)+)));
        }
    };
}

/// Bounds every case's runtime type.
pub(crate) trait CaseRuntime: Runtime + Clone + Send + Sync + 'static {}
impl<R: Runtime + Clone + Send + Sync + 'static> CaseRuntime for R {}

type Result = std::result::Result<(), Failure>;

/// Wraps a future and counts how many times it is polled.
struct CountPolls<F> {
    polls: Arc<AtomicUsize>,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.fut.as_mut().poll(cx)
    }
}

/// Waits until `task` has finished, without consuming it.
async fn until_finished<T>(task: &Task<T>) {
    while !task.is_finished() {
        yield_now().await;
    }
}

fn describe<T>(out: &std::result::Result<T, JoinError>) -> String {
    match out {
        Ok(_) => "Ok(_)".into(),
        Err(e) => format!("Err({e})"),
    }
}

// ===== D: task handles =====

pub(crate) fn d1_dropping_task_cancels_it<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let started = CancelToken::new();
    let dropped = CancelToken::new();
    let ticks = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    // The task's own timer: far longer than the patience, so on a correct
    // runtime it never fires during the case.
    let nap = cx.config.patience * 3;

    let task = rt.spawn(CountPolls {
        polls: polls.clone(),
        fut: Box::pin({
            let (rt, started, dropped, ticks) =
                (rt.clone(), started.clone(), dropped.clone(), ticks.clone());
            async move {
                let _on_drop = dropped.drop_guard();
                started.cancel();
                loop {
                    rt.sleep(nap).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        }),
    });

    cx.block_on("waiting for the task to start", started.cancelled())?;
    trace.record("task started");
    // Read before the drop: a poll after it must show up in the difference.
    let polls_at_drop = polls.load(Ordering::SeqCst);
    drop(task);
    trace.record("handle dropped");

    cx.block_on(
        "waiting for the dropped task's future to be dropped (did the handle detach it?)",
        dropped.cancelled(),
    )?;
    trace.record("future dropped");

    ensure!(
        ticks.load(Ordering::SeqCst) == 0,
        "the task's timer fired before its future was dropped"
    );
    let polls_after = polls.load(Ordering::SeqCst);
    ensure!(
        polls_after == polls_at_drop,
        "the future was polled {} more time(s) after its Task was dropped",
        polls_after - polls_at_drop
    );
    Ok(())
}

pub(crate) fn d2_detached_task_runs_to_completion<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let go = CancelToken::new();
    let finished = CancelToken::new();
    rt.spawn({
        let (rt, go, finished) = (rt.clone(), go.clone(), finished.clone());
        async move {
            go.cancelled().await;
            // Suspend on a real timer too, after the handle is gone.
            rt.sleep(Duration::from_millis(5)).await;
            finished.cancel();
        }
    })
    .detach();
    trace.record("detached");
    go.cancel();
    cx.block_on(
        "waiting for the detached task to finish",
        finished.cancelled(),
    )?;
    trace.record("detached task finished");
    Ok(())
}

pub(crate) fn d3_await_gives_the_output<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let rt = &cx.rt;
    let task = rt.spawn({
        let rt = rt.clone();
        async move {
            yield_now().await;
            rt.sleep(Duration::from_millis(1)).await;
            42_u32
        }
    });
    let out = cx.block_on("awaiting a task that completes", task)?;
    ensure!(
        matches!(out, Ok(42)),
        "expected Ok(42), got {}",
        describe(&out)
    );
    cx.trace.record("Ok(42)");
    Ok(())
}

pub(crate) fn d3_await_after_abort_gives_cancelled<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let task = cx.rt.spawn(std::future::pending::<u32>());
    task.abort();
    let out = cx.block_on("awaiting an aborted task", task)?;
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "expected Err(Cancelled), got {}",
        describe(&out)
    );
    cx.trace.record("Err(Cancelled)");
    Ok(())
}

pub(crate) fn d3_panic_is_caught_and_spares_the_runtime<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let release = CancelToken::new();
    let sibling = rt.spawn({
        let release = release.clone();
        async move {
            release.cancelled().await;
            "sibling done"
        }
    });
    let bad = rt.spawn(async {
        yield_now().await;
        panic!("boom");
    });
    let out: std::result::Result<(), JoinError> = cx.block_on("awaiting a panicking task", bad)?;
    match out {
        Err(JoinError::Panicked(payload)) => {
            let text = panic_text(&*payload);
            ensure!(text == "boom", "payload was {text:?}, expected \"boom\"");
            trace.record("Err(Panicked(\"boom\"))");
        }
        other => {
            return Err(Failure::new(format!(
                "expected Err(Panicked), got {}",
                describe(&other)
            )));
        }
    }
    release.cancel();
    let out = cx.block_on("awaiting the panicking task's sibling", sibling)?;
    ensure!(
        matches!(out, Ok("sibling done")),
        "the sibling gave {}",
        describe(&out)
    );
    trace.record("sibling Ok");
    let out = cx.block_on(
        "awaiting a task spawned after the panic",
        rt.spawn(async { 1 }),
    )?;
    ensure!(
        matches!(out, Ok(1)),
        "a task spawned after the panic gave {}",
        describe(&out)
    );
    trace.record("runtime still works");
    Ok(())
}

/// A value whose destructor raises `dropped` and then panics.
struct PanicsOnDrop(CancelToken);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
        panic!("this value panics when dropped");
    }
}

pub(crate) fn d3_values_that_panic_when_dropped_spare_the_runtime<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    // A detached task's output, dropped by whoever finishes the task.
    let dropped = CancelToken::new();
    rt.spawn({
        let dropped = dropped.clone();
        async move { PanicsOnDrop(dropped) }
    })
    .detach();
    cx.block_on(
        "a detached task's output being dropped",
        dropped.cancelled(),
    )?;
    trace.record("detached output dropped");
    // A detached task's panic payload.
    let dropped = CancelToken::new();
    rt.spawn({
        let dropped = dropped.clone();
        async move {
            yield_now().await;
            std::panic::panic_any(PanicsOnDrop(dropped))
        }
    })
    .detach();
    cx.block_on(
        "a detached task's panic payload being dropped",
        dropped.cancelled(),
    )?;
    trace.record("detached payload dropped");
    // A handle dropped after its task finished: the output is dropped on
    // the caller's thread, and its panic must not escape `drop`.
    let dropped = CancelToken::new();
    let task = rt.spawn({
        let dropped = dropped.clone();
        async move { PanicsOnDrop(dropped) }
    });
    cx.block_on("a task finishing", until_finished(&task))?;
    let escaped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(task))).is_err();
    ensure!(!escaped, "dropping a finished task's handle panicked");
    ensure!(
        dropped.is_cancelled(),
        "the output was not dropped with its handle"
    );
    trace.record("handle dropped with its output");
    let out = cx.block_on("awaiting a task spawned afterwards", rt.spawn(async { 1 }))?;
    ensure!(
        matches!(out, Ok(1)),
        "a task spawned afterwards gave {}",
        describe(&out)
    );
    trace.record("runtime still works");
    Ok(())
}

pub(crate) fn d4_abort_neither_waits_nor_consumes<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let started = CancelToken::new();
    let dropped = CancelToken::new();
    let nap = cx.config.patience * 3;
    let task = rt.spawn({
        let (rt, started, dropped) = (rt.clone(), started.clone(), dropped.clone());
        async move {
            let _on_drop = dropped.drop_guard();
            started.cancel();
            rt.sleep(nap).await;
        }
    });
    cx.block_on("waiting for the task to start", started.cancelled())?;
    task.abort();
    task.abort();
    trace.record("aborted twice, handle kept");
    let out = cx.block_on("awaiting an aborted task", async { (&mut { task }).await })?;
    ensure!(
        dropped.is_cancelled(),
        "the handle resolved before the future was dropped"
    );
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "expected Err(Cancelled), got {}",
        describe(&out)
    );
    trace.record("Err(Cancelled)");
    Ok(())
}

pub(crate) fn d4_cancel_returns_after_the_future_is_dropped<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let started = CancelToken::new();
    let nap = cx.config.patience * 3;

    /// Records its drop, slowly, so a `cancel()` that returned early would
    /// be caught.
    struct SlowDrop(crate::conformance::Trace, CancelToken);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(20));
            self.0.record("future dropped");
            self.1.cancel();
        }
    }
    let dropped = CancelToken::new();

    let task = rt.spawn({
        let guard = SlowDrop(trace.clone(), dropped.clone());
        let (rt, started) = (rt.clone(), started.clone());
        async move {
            let _guard = guard;
            started.cancel();
            rt.sleep(nap).await;
            7_u32
        }
    });
    cx.block_on("waiting for the task to start", started.cancelled())?;
    let out = cx.block_on("awaiting cancel()", task.cancel())?;
    ensure!(
        dropped.is_cancelled(),
        "cancel() returned before the future was dropped"
    );
    trace.record(format!("cancel returned {out:?}"));
    ensure!(out.is_none(), "cancel() returned {out:?}, expected None");
    Ok(())
}

pub(crate) fn d4_cancel_of_a_finished_task_returns_its_output<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let task = rt.spawn(async { 7_u32 });
    cx.block_on("waiting for the task to finish", until_finished(&task))?;
    trace.record("finished");
    let out = cx.block_on("awaiting cancel()", task.cancel())?;
    ensure!(
        out == Some(7),
        "cancel() returned {out:?}, expected Some(7)"
    );
    trace.record("cancel returned Some(7)");
    Ok(())
}

pub(crate) fn d4_panic_is_never_swallowed<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);

    // cancel(): the panic is resumed at the awaiter.
    let task = rt.spawn(async {
        yield_now().await;
        panic!("boom");
    });
    cx.block_on("waiting for the task to panic", until_finished(&task))?;
    let caught = cx.block_on(
        "awaiting cancel() of a panicked task",
        AssertUnwindSafe(task.cancel()).catch_unwind(),
    )?;
    match caught {
        Err(payload) => {
            let text = panic_text(&*payload);
            ensure!(
                text == "boom",
                "cancel() resumed {text:?}, expected \"boom\""
            );
            trace.record("cancel resumed the panic");
        }
        Ok(out) => {
            return Err(Failure::new(format!(
                "cancel() of a panicked task returned {out:?}: the panic was swallowed"
            )));
        }
    }

    // abort() then await: the payload comes back as JoinError::Panicked.
    let task = rt.spawn(async {
        yield_now().await;
        panic!("boom");
    });
    cx.block_on("waiting for the task to panic", until_finished(&task))?;
    task.abort();
    let out: std::result::Result<(), JoinError> =
        cx.block_on("awaiting an aborted, panicked task", task)?;
    match out {
        Err(JoinError::Panicked(p)) if panic_text(&*p) == "boom" => {
            trace.record("abort then await gave the panic");
            Ok(())
        }
        other => Err(Failure::new(format!(
            "abort() then await of a panicked task gave {}",
            describe(&other)
        ))),
    }
}

pub(crate) fn d5_cancel_lands_only_at_await_points<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let go = CancelToken::new();
    let dropped = CancelToken::new();
    let slot: Arc<Mutex<Option<Task<()>>>> = Arc::default();
    let task = rt.spawn({
        let (go, dropped, slot, trace) = (go.clone(), dropped.clone(), slot.clone(), trace.clone());
        async move {
            let _on_drop = dropped.drop_guard();
            go.cancelled().await;
            trace.record("section start");
            // Cancellation is requested in the middle of synchronous code...
            slot.lock()
                .unwrap()
                .as_ref()
                .expect("handle stored before go")
                .abort();
            // ...which runs to its end regardless.
            trace.record("section end");
            yield_now().await;
            trace.record("after the next await (must not happen)");
        }
    });
    *slot.lock().unwrap() = Some(task);
    go.cancel();
    cx.block_on("waiting for the future to be dropped", dropped.cancelled())?;
    trace.record("future dropped");
    let task = slot
        .lock()
        .unwrap()
        .take()
        .expect("the handle is in the slot");
    let out = cx.block_on("awaiting the aborted task", task)?;
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "expected Err(Cancelled), got {}",
        describe(&out)
    );
    let events = trace.events();
    ensure!(
        !events.iter().any(|e| e.starts_with("after the next await")),
        "code after the next await ran after cancellation was requested"
    );
    Ok(())
}

pub(crate) fn d6_runtime_shutdown_cancels_pending_tasks<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let trace = &cx.trace;
    let doomed = (cx.new_runtime)();
    let started = CancelToken::new();
    // The tasks must not hold a clone of `doomed`: a task that does keeps
    // its owned runtime alive (see the adapters' "Caveats").
    let running = doomed.spawn({
        let (nap, started) = (doomed.sleep(cx.config.patience * 3), started.clone());
        async move {
            started.cancel();
            nap.await;
        }
    });
    let parked = doomed.spawn(std::future::pending::<()>());
    // Drive the runtime until the first task has started, so that both a
    // started and a possibly never-polled task are pending at shutdown.
    bounded(
        &doomed,
        cx.config.patience,
        "waiting for a task to start",
        started.cancelled(),
    )?;
    drop(doomed);
    trace.record("runtime dropped");

    for (what, task) in [("sleeping", running), ("parked", parked)] {
        let out = cx.block_on(
            "awaiting a task of a runtime that shut down (was it leaked?)",
            task,
        )?;
        ensure!(
            matches!(out, Err(JoinError::Cancelled)),
            "a {what} task of a shut-down runtime gave {}",
            describe(&out)
        );
        trace.record(format!("{what} task: Err(Cancelled)"));
    }
    Ok(())
}

pub(crate) fn d6_a_dropped_signal_listener_does_not_keep_its_runtime_alive<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let trace = &cx.trace;
    let doomed = (cx.new_runtime)();
    let parked = doomed.spawn(std::future::pending::<()>());
    let signal = crate::signal::OsSignal::listen(&doomed, std::future::pending());
    // Let the listener start (on runtimes that run tasks only inside
    // `block_on`, it would otherwise never be polled at all).
    bounded(
        &doomed,
        cx.config.patience,
        "letting the listener start",
        yield_now(),
    )?;
    drop(doomed);
    drop(signal);
    trace.record("runtime and signal dropped");
    let out = cx.block_on(
        "awaiting a task of a runtime whose signal listener was dropped (kept alive?)",
        parked,
    )?;
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "a parked task gave {}",
        describe(&out)
    );
    trace.record("parked task: Err(Cancelled)");
    Ok(())
}

// ===== F: tokens =====

pub(crate) fn f1_clones_share_one_idempotent_flag<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let token = CancelToken::new();
    let clone = token.clone();
    ensure!(!clone.is_cancelled(), "a new token reports cancelled");
    let seen = rt.spawn({
        let clone = clone.clone();
        async move {
            clone.cancel();
            clone.cancel();
            clone.is_cancelled()
        }
    });
    let seen = cx.block_on("awaiting a task that cancels a clone", seen)?;
    ensure!(
        matches!(seen, Ok(true)),
        "the cancelling task saw {}",
        describe(&seen)
    );
    ensure!(
        token.is_cancelled() && clone.is_cancelled(),
        "a clone did not see the cancel"
    );
    token.cancel();
    ensure!(token.is_cancelled(), "cancelling twice un-cancelled");
    trace.record("all clones cancelled");
    Ok(())
}

pub(crate) fn f2_one_cancel_wakes_every_waiter<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    const WAITERS: usize = 32;
    let (rt, trace) = (&cx.rt, &cx.trace);
    let token = CancelToken::new();
    let woken = Arc::new(AtomicUsize::new(0));
    let registered = Arc::new(AtomicUsize::new(0));
    let all_registered = CancelToken::new();
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (token, woken) = (token.clone(), woken.clone());
            let (registered, all_registered) = (registered.clone(), all_registered.clone());
            rt.spawn(async move {
                let mut wait = std::pin::pin!(token.cancelled());
                // Poll once, so this waiter is registered (pending) before
                // the cancel: the cancel must wake it, not a fast path.
                let early = futures_lite::future::poll_once(wait.as_mut()).await;
                if registered.fetch_add(1, Ordering::SeqCst) + 1 == WAITERS {
                    all_registered.cancel();
                }
                if early.is_none() {
                    wait.await;
                }
                woken.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    cx.block_on(
        "waiting for every waiter to register",
        all_registered.cancelled(),
    )?;
    token.cancel();
    cx.block_on("waiting for every waiter to wake", async move {
        for t in tasks {
            let _ = t.await;
        }
    })?;
    let n = woken.load(Ordering::SeqCst);
    ensure!(n == WAITERS, "{n} of {WAITERS} waiters woke");
    trace.record(format!("{WAITERS} waiters woke"));
    Ok(())
}

pub(crate) fn f2_cancelled_is_ready_at_once_when_already_cancelled<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let token = CancelToken::new();
    token.cancel();
    let first = cx.block_on(
        "polling cancelled() once",
        futures_lite::future::poll_once(token.cancelled()),
    )?;
    ensure!(
        first.is_some(),
        "cancelled() was pending on an already-cancelled token"
    );
    cx.trace.record("ready on first poll");
    Ok(())
}

pub(crate) fn f2_cancel_racing_registration_is_never_lost<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    const ROUNDS: usize = 200;
    let rt = &cx.rt;
    cx.block_on("racing cancel() against cancelled()", async {
        for _ in 0..ROUNDS {
            let token = CancelToken::new();
            let canceller = rt.spawn({
                let token = token.clone();
                async move { token.cancel() }
            });
            token.cancelled().await;
            let _ = canceller.await;
        }
    })?;
    cx.trace.record(format!("{ROUNDS} races, no lost wake-up"));
    Ok(())
}

pub(crate) fn f4_drop_guard_cancels_unless_disarmed<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let token = CancelToken::new();
    let disarmed = cx.block_on(
        "awaiting a task that disarms a guard",
        rt.spawn({
            let token = token.clone();
            async move { token.drop_guard().disarm().is_cancelled() }
        }),
    )?;
    ensure!(
        matches!(disarmed, Ok(false)) && !token.is_cancelled(),
        "a disarmed guard cancelled its token"
    );
    trace.record("disarmed guard left the token alone");
    let task = rt.spawn({
        let guard = token.clone().drop_guard();
        async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }
    });
    drop(task);
    cx.block_on(
        "waiting for a dropped task's guard to cancel",
        token.cancelled(),
    )?;
    trace.record("dropped guard cancelled the token");
    Ok(())
}

pub(crate) fn f5_with_cancel_drops_the_future_when_cancelled<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let token = CancelToken::new();
    let started = CancelToken::new();
    let dropped = CancelToken::new();
    let task = rt.spawn({
        let (token, started, dropped) = (token.clone(), started.clone(), dropped.clone());
        async move {
            let inner = async {
                let _on_drop = dropped.clone().drop_guard();
                started.cancel();
                std::future::pending::<u32>().await
            };
            let out = token.run_until_cancelled(inner).await;
            (out, dropped.is_cancelled())
        }
    });
    cx.block_on("waiting for the inner future to start", started.cancelled())?;
    token.cancel();
    let out = cx.block_on("awaiting the cancelled run", task)?;
    match out {
        Ok((Err(_), true)) => {
            trace.record("Err(Cancelled), inner future dropped");
            Ok(())
        }
        Ok((Err(_), false)) => Err(Failure::new(
            "Err(Cancelled) was returned before the inner future was dropped",
        )),
        Ok((Ok(v), _)) => Err(Failure::new(format!(
            "expected Err(Cancelled), got Ok({v})"
        ))),
        Err(e) => Err(Failure::new(format!("the task failed: {e}"))),
    }
}

// ===== T: time =====

pub(crate) fn t1_timeout_gives_the_output_in_time<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let rt = &cx.rt;
    let limit = cx.config.patience;
    let out = cx.block_on(
        "awaiting a timeout around a short sleep",
        timeout(rt, limit, async {
            rt.sleep(Duration::from_millis(10)).await;
            7_u32
        }),
    )?;
    ensure!(out == Ok(7), "expected Ok(7), got {out:?}");
    cx.trace.record("Ok(7)");
    Ok(())
}

pub(crate) fn t1_timeout_elapses_after_dropping_the_future<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let limit = Duration::from_millis(20);
    let dropped = CancelToken::new();
    let (out, start, end, was_dropped) =
        cx.block_on("awaiting a timeout around a pending future", async {
            let start = rt.now();
            let out = timeout(rt, limit, async {
                let _on_drop = dropped.clone().drop_guard();
                std::future::pending::<()>().await
            })
            .await;
            (out, start, rt.now(), dropped.is_cancelled())
        })?;
    ensure!(
        out == Err(Elapsed::new()),
        "expected Err(Elapsed), got {out:?}"
    );
    ensure!(
        was_dropped,
        "Err(Elapsed) was returned before the inner future was dropped"
    );
    ensure!(
        end >= start + limit,
        "the timeout elapsed early: after {:?} of {limit:?}",
        end - start
    );
    trace.record("Err(Elapsed), inner future dropped, not early");
    Ok(())
}

pub(crate) fn t2_ready_future_wins_even_at_zero<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let (zero, past) = cx.block_on("awaiting timeouts around ready futures", async {
        let zero = timeout(rt, Duration::ZERO, async { 1_u32 }).await;
        let now = rt.now();
        rt.sleep(Duration::from_millis(2)).await;
        let past = deadline(rt, now, async { 2_u32 }).await;
        (zero, past)
    })?;
    ensure!(zero == Ok(1), "timeout(ZERO, ready) gave {zero:?}");
    ensure!(past == Ok(2), "deadline(past, ready) gave {past:?}");
    trace.record("ready future won at ZERO and at a past deadline");
    let pending = cx.block_on(
        "awaiting timeout(ZERO) around a pending future",
        timeout(rt, Duration::ZERO, std::future::pending::<()>()),
    )?;
    ensure!(
        pending == Err(Elapsed::new()),
        "timeout(ZERO, pending) gave {pending:?}"
    );
    trace.record("pending future elapsed at ZERO");
    Ok(())
}

pub(crate) fn t3_sleep_never_completes_early<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let rt = &cx.rt;
    for ms in [1_u64, 5, 20] {
        let d = Duration::from_millis(ms);
        let (start, end) = cx.block_on("sleeping", async {
            let start = rt.now();
            rt.sleep(d).await;
            (start, rt.now())
        })?;
        ensure!(
            end >= start + d,
            "sleep({d:?}) completed after only {:?}",
            end - start
        );
        let (at, end) = cx.block_on("sleeping until an instant", async {
            let at = rt.now() + d;
            rt.sleep_until(at).await;
            (at, rt.now())
        })?;
        ensure!(
            end >= at,
            "sleep_until completed {:?} before its deadline",
            at - end
        );
        cx.trace.record(format!("{ms} ms: not early"));
    }
    Ok(())
}

pub(crate) fn t3_deadline_elapses_at_its_instant<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let rt = &cx.rt;
    let (out, at, end) = cx.block_on("awaiting a deadline", async {
        let at = rt.now() + Duration::from_millis(20);
        let out = deadline(rt, at, std::future::pending::<()>()).await;
        (out, at, rt.now())
    })?;
    ensure!(
        out == Err(Elapsed::new()),
        "expected Err(Elapsed), got {out:?}"
    );
    ensure!(
        end >= at,
        "the deadline elapsed {:?} before its instant",
        at - end
    );
    cx.trace.record("Err(Elapsed) at the instant");
    Ok(())
}

pub(crate) fn t3_far_deadlines_mean_never<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let short = Duration::from_millis(10);
    let (forever, unlimited) = cx.block_on("racing far deadlines", async {
        // A sleep of Duration::MAX must not complete (nor panic).
        let forever = timeout(rt, short, rt.sleep(Duration::MAX)).await;
        // A timeout of Duration::MAX is no limit at all.
        let unlimited = timeout(rt, Duration::MAX, async {
            rt.sleep(Duration::from_millis(1)).await;
            3_u32
        })
        .await;
        (forever, unlimited)
    })?;
    ensure!(
        forever == Err(Elapsed::new()),
        "sleep(Duration::MAX) completed"
    );
    ensure!(
        unlimited == Ok(3),
        "timeout(Duration::MAX, ..) gave {unlimited:?}"
    );
    trace.record("sleep(MAX) never fired; timeout(MAX) never elapsed");
    Ok(())
}

// ===== F3, F6: token trees, causes, deadlines =====

pub(crate) fn f3_child_follows_its_parent_but_not_the_reverse<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let parent = CancelToken::new();
    let child = parent.child();
    let sibling = parent.child();
    let waiter = rt.spawn({
        let child = child.clone();
        async move { child.cancelled().await }
    });
    sibling.cancel();
    ensure!(
        !parent.is_cancelled() && !child.is_cancelled(),
        "cancelling a child reached its parent or sibling"
    );
    trace.record("child cancel stayed local");
    parent.cancel();
    ensure!(
        child.is_cancelled(),
        "the child did not report cancelled when cancel() returned"
    );
    cx.block_on("waiting for a child's waiter to wake", waiter)?
        .map_err(|e| Failure::new(format!("the waiter failed: {e}")))?;
    trace.record("parent cancel woke the child's waiter");
    ensure!(
        parent.child().is_cancelled(),
        "a child of a cancelled parent was not born cancelled"
    );
    trace.record("late child born cancelled");
    Ok(())
}

pub(crate) fn f3_grandchild_stays_reachable_after_the_middle_is_dropped<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let root = CancelToken::new();
    let middle = root.child();
    let grandchild = middle.child();
    drop(middle);
    let waiter = rt.spawn(grandchild.clone().cancelled_owned());
    root.cancel();
    cx.block_on("waiting for the grandchild's waiter", waiter)?
        .map_err(|e| Failure::new(format!("the waiter failed: {e}")))?;
    let same = grandchild
        .reason()
        .zip(root.reason())
        .is_some_and(|(a, b)| a.same_as(&b));
    ensure!(
        same,
        "the grandchild reports a different cause than the root"
    );
    trace.record("grandchild cancelled through the root, same cause");
    Ok(())
}

pub(crate) fn f6_every_descendant_reports_the_first_cause<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let root = CancelToken::new();
    let leaf = root.child().child();
    let task = rt.spawn({
        let leaf = leaf.clone();
        async move {
            leaf.run_until_cancelled(std::future::pending::<()>())
                .await
                .unwrap_err()
        }
    });
    let won = root.cancel_with(crate::token::CancelKind::Shutdown, "maintenance");
    let lost = root.cancel_with(crate::token::CancelKind::Explicit, "too late");
    ensure!(won && !lost, "cancel_with did not report who won");
    let err = cx
        .block_on("awaiting a run cancelled through its ancestors", task)?
        .map_err(|e| Failure::new(format!("the task failed: {e}")))?;
    ensure!(
        err.kind() == crate::token::CancelKind::Shutdown,
        "kind {:?}",
        err.kind()
    );
    ensure!(
        err.cause().map(|c| c.to_string()).as_deref() == Some("maintenance"),
        "cause {:?}",
        err.cause().map(|c| c.to_string())
    );
    trace.record(format!(
        "leaf saw: {:?}, {}",
        err.kind(),
        err.cause().unwrap()
    ));
    Ok(())
}

pub(crate) fn f6_deadline_fires_not_early_as_deadline_exceeded<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let at = rt.now() + Duration::from_millis(20);
    let token = CancelToken::with_deadline(rt, at);
    ensure!(
        token.deadline() == Some(at),
        "deadline() = {:?}",
        token.deadline()
    );
    let child = token.child();
    ensure!(
        child.deadline() == Some(at),
        "a child did not inherit the deadline"
    );
    cx.block_on("waiting for a deadline to fire", child.cancelled())?;
    let now = rt.now();
    ensure!(
        now >= at,
        "the deadline fired {:?} early",
        at.saturating_duration_since(now)
    );
    let kind = token.reason().map(|r| r.kind());
    ensure!(
        kind == Some(crate::token::CancelKind::DeadlineExceeded),
        "kind {kind:?}"
    );
    trace.record("deadline fired, not early, DeadlineExceeded");
    Ok(())
}

pub(crate) fn f6_child_deadline_is_the_earlier_of_its_own_and_its_parents<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let far = rt.now() + cx.config.patience * 3;
    let parent = CancelToken::with_deadline(rt, far);
    let soon = rt.now() + Duration::from_millis(10);
    let short = parent.child_with_deadline(rt, soon);
    let long = parent.child_with_deadline(rt, far + Duration::from_secs(60));
    ensure!(
        short.deadline() == Some(soon),
        "short child: {:?}",
        short.deadline()
    );
    ensure!(
        long.deadline() == Some(far),
        "a later own deadline should yield the parent's"
    );
    cx.block_on("waiting for the child's own deadline", short.cancelled())?;
    ensure!(
        !parent.is_cancelled() && !long.is_cancelled(),
        "a child's deadline reached its parent or sibling"
    );
    trace.record("child's own deadline fired alone");
    Ok(())
}

// ===== B: task groups =====

pub(crate) fn b1_shutdown_lets_tasks_finish_within_the_grace<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = crate::TaskGroup::new(rt);
    let saw_deadline = Arc::new(AtomicUsize::new(0));
    let report = cx.block_on("shutting a cooperative group down", async {
        group
            .spawn_named("polite", {
                let saw = saw_deadline.clone();
                move |stop| async move {
                    stop.cancelled().await;
                    if stop.deadline().is_some() {
                        saw.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
            .detach();
        group
            .spawn_named("finisher", {
                let nap = rt.sleep(Duration::from_millis(10));
                move |stop| async move {
                    stop.cancelled().await;
                    nap.await; // some clean-up work after the signal
                }
            })
            .detach();
        group.clone().shutdown(cx.config.patience).await
    })?;
    ensure!(
        report.finished == 2 && report.forced.is_empty(),
        "report: {report}"
    );
    ensure!(group.is_empty(), "tasks still live after shutdown returned");
    ensure!(
        saw_deadline.load(Ordering::SeqCst) == 1,
        "the grace deadline was not visible through the task's token"
    );
    ensure!(
        group.token().reason().map(|r| r.kind()) == Some(crate::token::CancelKind::Shutdown),
        "the group's token was not cancelled with kind Shutdown"
    );
    trace.record(format!(
        "finished {}, forced {}",
        report.finished,
        report.forced.len()
    ));
    Ok(())
}

pub(crate) fn b1_shutdown_forces_tasks_after_the_grace_and_names_them<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = crate::TaskGroup::new(rt);
    let dropped = CancelToken::new();
    let start = rt.now();
    let grace = Duration::from_millis(20);
    let report = cx.block_on("shutting a group with a stubborn task down", async {
        let guard = dropped.clone().drop_guard();
        group
            .spawn_named("stubborn", move |_stop| async move {
                let _guard = guard;
                std::future::pending::<()>().await
            })
            .detach();
        group.clone().shutdown(grace).await
    })?;
    ensure!(
        dropped.is_cancelled(),
        "shutdown returned before the forced task's future was dropped"
    );
    ensure!(
        rt.now() >= start + grace,
        "the task was forced before the grace period ended"
    );
    ensure!(
        report.finished == 0 && report.forced.len() == 1,
        "report: {report}"
    );
    let forced = &report.forced[0];
    ensure!(
        forced.name == "stubborn" && forced.location.file().ends_with("cases.rs"),
        "forced task reported as {forced}"
    );
    ensure!(group.is_empty(), "tasks still live after shutdown returned");
    trace.record(format!("forced {}", forced.name));
    Ok(())
}

pub(crate) fn b2_dropping_a_group_cancels_and_drops_its_tasks<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = crate::TaskGroup::new(rt);
    let token = group.token().clone();
    let dropped = CancelToken::new();
    let started = CancelToken::new();
    cx.block_on("spawning into a group", async {
        let (guard, started) = (dropped.clone().drop_guard(), started.clone());
        group
            .spawn(move |_stop| async move {
                let _guard = guard;
                started.cancel();
                std::future::pending::<()>().await
            })
            .detach();
    })?;
    cx.block_on("waiting for the task to start", started.cancelled())?;
    drop(group);
    ensure!(
        token.is_cancelled(),
        "dropping the group did not cancel its token"
    );
    cx.block_on(
        "waiting for a dropped group's task to be dropped",
        dropped.cancelled(),
    )?;
    trace.record("group dropped: token cancelled, task dropped");
    Ok(())
}

pub(crate) fn b3_a_panic_spares_siblings_unless_fail_fast<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    for fail_fast in [false, true] {
        let mut builder = crate::TaskGroup::builder(rt);
        if fail_fast {
            builder = builder.fail_fast();
        }
        let group = builder.build();
        let (report, sibling_cancelled, bad) =
            cx.block_on("running a group with a panic", async {
                let sibling = group.spawn_named("sibling", |stop| async move {
                    // Finishes when cancelled; otherwise we look at it below.
                    stop.cancelled().await;
                    stop.reason().map(|r| r.kind())
                });
                let bad = group
                    .spawn_named("bad", |_| async {
                        yield_now().await;
                        panic!("boom")
                    })
                    .await;
                let sibling_cancelled = group.token().is_cancelled();
                let sibling_kind = if fail_fast {
                    sibling.await.ok().flatten()
                } else {
                    drop(sibling);
                    None
                };
                let report = group.clone().shutdown(cx.config.patience).await;
                (report, (sibling_cancelled, sibling_kind), bad)
            })?;
        ensure!(
            matches!(bad, Err(JoinError::Panicked(_))),
            "the panicking task gave {}",
            describe(&bad)
        );
        ensure!(
            report.failures.len() == 1 && report.failures[0].task.name == "bad",
            "fail_fast={fail_fast}: failures {:?}",
            report.failures
        );
        if fail_fast {
            ensure!(
                sibling_cancelled.0
                    && sibling_cancelled.1 == Some(crate::token::CancelKind::TaskFailed),
                "a fail-fast group did not cancel the sibling with TaskFailed"
            );
            trace.record("fail-fast: sibling cancelled, one failure");
        } else {
            ensure!(
                !sibling_cancelled.0,
                "an isolated group's panic cancelled the sibling"
            );
            trace.record("isolated: sibling untouched, one failure");
        }
    }
    Ok(())
}

/// A signal that reports when somebody starts waiting on it.
struct Observed {
    signal: CancelToken,
    waited_on: CancelToken,
}

impl crate::Signal for Observed {
    type Raised<'a> = futures_lite::future::Or<crate::token::WhenCancelled<'a>, WaitedOn<'a>>;

    fn is_raised(&self) -> bool {
        self.signal.is_cancelled()
    }

    fn raised(&self) -> Self::Raised<'_> {
        futures_lite::future::or(
            self.signal.cancelled(),
            WaitedOn {
                waited_on: &self.waited_on,
            },
        )
    }
}

/// Raises `waited_on` when first polled; never completes.
struct WaitedOn<'a> {
    waited_on: &'a CancelToken,
}

impl Future for WaitedOn<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        self.waited_on.cancel();
        Poll::Pending
    }
}

pub(crate) fn b4_a_group_shuts_down_on_a_signal<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = crate::TaskGroup::new(rt);
    let signal = CancelToken::new();
    let waited_on = CancelToken::new();
    let report = cx.block_on("shutting down on a signal", async {
        group
            .spawn(|stop| async move { stop.cancelled().await })
            .detach();
        let observed = Observed {
            signal: signal.clone(),
            waited_on: waited_on.clone(),
        };
        let shutdown = rt.spawn(group.clone().shutdown_on(observed, cx.config.patience));
        // Once shutdown_on is waiting on the signal, it must not have shut
        // the group down yet.
        waited_on.cancelled().await;
        ensure!(
            !group.token().is_cancelled(),
            "the group shut down before the signal"
        );
        signal.cancel();
        shutdown
            .await
            .map_err(|e| Failure::new(format!("the shutdown task failed: {e}")))
    })??;
    ensure!(
        report.finished == 1 && report.forced.is_empty(),
        "report: {report}"
    );
    trace.record("signal raised, group shut down, 1 finished");
    Ok(())
}
