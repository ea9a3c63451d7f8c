//! Task handles: the cases of [D1](crate#D1) (drop cancels),
//! [D2](crate#D2) (detach), [D3](crate#D3) (await gives the outcome),
//! [D4](crate#D4) (`abort` and `cancel`), [D5](crate#D5) (cancellation lands
//! at await points) and [D6](crate#D6) (runtime shutdown).
//!
//! Each case traces what it observed — outcomes as `describe` prints them,
//! poll counts, flags read at the moment the case forces — before it checks
//! them.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::FutureExt as _;
use futures_lite::future::yield_now;

use super::{CaseRuntime, CountPolls, PanicsOnDrop, Result, describe, until_finished};
use crate::conformance::{Ctx, Failure, bounded};
use crate::task::panic_text;
use crate::{CancelToken, JoinError, SpawnerExt, Task};

/// [D1](crate#D1). Besides the order of start, drop and destruction, the
/// trace holds the poll counts: before the drop nothing wakes the task (its
/// only timer is three patiences away), so a runtime that polls a task only
/// when it is woken polls it exactly once; after the drop the contract pins
/// the count to zero.
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
    trace.record(format!("polled {polls_at_drop} time(s) before the drop"));
    drop(task);
    trace.record("handle dropped");

    cx.block_on(
        "waiting for the dropped task's future to be dropped (did the handle detach it?)",
        dropped.cancelled(),
    )?;
    trace.record("future dropped");

    let ticks = ticks.load(Ordering::SeqCst);
    let polls_after = polls.load(Ordering::SeqCst);
    let polled_after_drop = polls_after.saturating_sub(polls_at_drop);
    trace.record(format!("timer fired {ticks} time(s)"));
    trace.record(format!("polled {polled_after_drop} time(s) after the drop"));
    ensure!(
        ticks == 0,
        "the task's timer fired before its future was dropped"
    );
    ensure!(
        polls_after == polls_at_drop,
        "the future was polled {polled_after_drop} more time(s) after its Task was dropped"
    );
    Ok(())
}

pub(crate) fn d2_detached_task_runs_to_completion<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let go = CancelToken::new();
    let finished = CancelToken::new();
    let nap = Duration::from_millis(5);
    let task = rt.spawn({
        let (rt, go, finished, trace) = (rt.clone(), go.clone(), finished.clone(), trace.clone());
        async move {
            go.cancelled().await;
            trace.record("task: saw go");
            // Suspend on a real timer too, after the handle is gone.
            let start = rt.now();
            rt.sleep(nap).await;
            let slept = rt.now().saturating_duration_since(start);
            trace.record(format!("task: slept, not early: {}", slept >= nap));
            finished.cancel();
        }
    });
    // It waits for `go`, so it cannot have finished yet.
    let early = task.is_finished();
    task.detach();
    trace.record(format!("detached; finished before go: {early}"));
    go.cancel();
    cx.block_on(
        "waiting for the detached task to finish",
        finished.cancelled(),
    )?;
    trace.record("detached task finished");
    ensure!(!early, "a task waiting for a signal finished before it");
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
    cx.trace.record(format!("await gave {}", describe(&out)));
    ensure!(
        matches!(out, Ok(42)),
        "expected Ok(42), got {}",
        describe(&out)
    );
    Ok(())
}

pub(crate) fn d3_await_after_abort_gives_cancelled<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let trace = &cx.trace;
    let task = cx.rt.spawn(std::future::pending::<u32>());
    let early = task.is_finished();
    trace.record(format!("finished before abort: {early}"));
    task.abort();
    let out = cx.block_on("awaiting an aborted task", task)?;
    trace.record(format!("await gave {}", describe(&out)));
    ensure!(!early, "a pending task reported finished");
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "expected Err(Cancelled), got {}",
        describe(&out)
    );
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
    trace.record(format!("panicking task gave {}", describe(&out)));
    match out {
        Err(JoinError::Panicked(payload)) => {
            let text = panic_text(&*payload);
            ensure!(text == "boom", "payload was {text:?}, expected \"boom\"");
        }
        other => {
            return Err(Failure::new(format!(
                "expected Err(Panicked), got {}",
                describe(&other)
            )));
        }
    }
    // The sibling waits for `release`: the panic must not have ended it.
    let early = sibling.is_finished();
    trace.record(format!("sibling finished before release: {early}"));
    ensure!(!early, "the sibling ended when its neighbour panicked");
    release.cancel();
    let out = cx.block_on("awaiting the panicking task's sibling", sibling)?;
    trace.record(format!("sibling gave {}", describe(&out)));
    ensure!(
        matches!(out, Ok("sibling done")),
        "the sibling gave {}",
        describe(&out)
    );
    let out = cx.block_on(
        "awaiting a task spawned after the panic",
        rt.spawn(async { 1 }),
    )?;
    trace.record(format!(
        "a task spawned after the panic gave {}",
        describe(&out)
    ));
    ensure!(
        matches!(out, Ok(1)),
        "a task spawned after the panic gave {}",
        describe(&out)
    );
    Ok(())
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
    trace.record("detached task's output dropped");
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
    trace.record("detached task's panic payload dropped");
    // A handle dropped after its task finished: the output is dropped on
    // the caller's thread, and its panic must not escape `drop`.
    let dropped = CancelToken::new();
    let task = rt.spawn({
        let dropped = dropped.clone();
        async move { PanicsOnDrop(dropped) }
    });
    cx.block_on("a task finishing", until_finished(&task))?;
    let kept = !dropped.is_cancelled();
    let escaped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(task))).is_err();
    let dropped = dropped.is_cancelled();
    trace.record(format!(
        "finished task's output kept until its handle dropped: {kept}; \
         dropping the handle: panic escaped: {escaped}, output dropped: {dropped}"
    ));
    ensure!(
        kept,
        "a finished task's output was dropped before its handle"
    );
    ensure!(!escaped, "dropping a finished task's handle panicked");
    ensure!(dropped, "the output was not dropped with its handle");
    let out = cx.block_on("awaiting a task spawned afterwards", rt.spawn(async { 1 }))?;
    trace.record(format!("a task spawned afterwards gave {}", describe(&out)));
    ensure!(
        matches!(out, Ok(1)),
        "a task spawned afterwards gave {}",
        describe(&out)
    );
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
    trace.record("task started");
    task.abort();
    task.abort();
    trace.record("aborted twice, handle kept");
    let out = cx.block_on("awaiting an aborted task", async { (&mut { task }).await })?;
    let was_dropped = dropped.is_cancelled();
    trace.record(format!(
        "await gave {}; future dropped by then: {was_dropped}",
        describe(&out)
    ));
    ensure!(
        was_dropped,
        "the handle resolved before the future was dropped"
    );
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "expected Err(Cancelled), got {}",
        describe(&out)
    );
    Ok(())
}

pub(crate) fn d4_cancel_returns_after_the_future_is_dropped<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let started = CancelToken::new();
    let nap = cx.config.patience * 3;

    /// Records its drop, slowly, so a `cancel()` that returned early would
    /// be caught (in the trace too: its event would come after cancel's).
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
    trace.record("task started");
    let out = cx.block_on("awaiting cancel()", task.cancel())?;
    let was_dropped = dropped.is_cancelled();
    trace.record(format!(
        "cancel returned {out:?}; future dropped by then: {was_dropped}"
    ));
    ensure!(
        was_dropped,
        "cancel() returned before the future was dropped"
    );
    ensure!(out.is_none(), "cancel() returned {out:?}, expected None");
    Ok(())
}

pub(crate) fn d4_cancel_of_a_finished_task_returns_its_output<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let task = rt.spawn(async { 7_u32 });
    cx.block_on("waiting for the task to finish", until_finished(&task))?;
    trace.record("task finished");
    let out = cx.block_on("awaiting cancel()", task.cancel())?;
    trace.record(format!("cancel returned {out:?}"));
    ensure!(
        out == Some(7),
        "cancel() returned {out:?}, expected Some(7)"
    );
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
            trace.record(format!("cancel resumed the panic {text:?}"));
            ensure!(
                text == "boom",
                "cancel() resumed {text:?}, expected \"boom\""
            );
        }
        Ok(out) => {
            trace.record(format!("cancel returned {out:?}"));
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
    trace.record(format!("abort then await gave {}", describe(&out)));
    match out {
        Err(JoinError::Panicked(p)) if panic_text(&*p) == "boom" => Ok(()),
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
    trace.record(format!("await gave {}", describe(&out)));
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
    ensure!(
        events.iter().any(|e| e == "section end"),
        "the section did not run to its end"
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
    trace.record("a task started");
    drop(doomed);
    trace.record("runtime dropped");

    for (what, task) in [("sleeping", running), ("parked", parked)] {
        let out = cx.block_on(
            "awaiting a task of a runtime that shut down (was it leaked?)",
            task,
        )?;
        trace.record(format!("{what} task gave {}", describe(&out)));
        ensure!(
            matches!(out, Err(JoinError::Cancelled)),
            "a {what} task of a shut-down runtime gave {}",
            describe(&out)
        );
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
    trace.record(format!("parked task gave {}", describe(&out)));
    ensure!(
        matches!(out, Err(JoinError::Cancelled)),
        "a parked task gave {}",
        describe(&out)
    );
    Ok(())
}
