//! Local tasks: the cases of [L1](crate#L1) (a local task's handle) and
//! [L2](crate#L2) (a group of local tasks) that the rest of the suite
//! cannot show — futures and outputs that are not `Send`, the executor's
//! thread, a local runtime's shutdown. (The whole suite also runs with
//! every spawn going through the local spawner: see
//! [`Local`](crate::conformance::Local).)
//!
//! The state the futures hold is an `Rc`, so the cases would not compile
//! with a `Send`-only spawner; its strong count says whether a future was
//! dropped.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use futures_lite::future::yield_now;

use super::{LocalCaseRuntime, Result, describe, kind_of};
use crate::conformance::{Ctx, bounded};
use crate::local::LocalSpawnerExt;
use crate::task::panic_text;
use crate::token::CancelKind;
use crate::{CancelToken, JoinError, TaskGroup};

pub(crate) fn l1_a_local_task_holds_and_returns_values_that_are_not_send<R: LocalCaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let state = Rc::new(Cell::new(0_u32));

    let done = rt.spawn_local({
        let state = state.clone();
        async move {
            yield_now().await;
            state.set(state.get() + 1);
            Rc::new(42_u32)
        }
    });
    let out = cx.block_on("awaiting a local task", done)?;
    let value = out.as_ref().ok().map(|v| **v);
    trace.record(format!("await gave {value:?}; state {}", state.get()));
    ensure!(
        value == Some(42) && state.get() == 1,
        "expected Ok(42) and the state updated once, got {value:?} and {}",
        state.get()
    );

    let started = CancelToken::new();
    let aborted = rt.spawn_local({
        let (state, started) = (state.clone(), started.clone());
        async move {
            let _state = state;
            started.cancel();
            std::future::pending::<()>().await
        }
    });
    cx.block_on("waiting for a local task to start", started.cancelled())?;
    aborted.abort();
    let out = cx.block_on("awaiting an aborted local task", aborted)?;
    let holders = Rc::strong_count(&state);
    trace.record(format!(
        "aborted task gave {}; its state dropped by then: {}",
        describe(&out),
        holders == 1
    ));
    ensure!(
        matches!(out, Err(JoinError::Cancelled)) && holders == 1,
        "an aborted local task gave {} with {} holder(s) of its state",
        describe(&out),
        holders
    );

    let panicked = rt.spawn_local({
        let state = state.clone();
        async move {
            yield_now().await;
            if Rc::strong_count(&state) > 0 {
                panic!("local boom");
            }
        }
    });
    let out = cx.block_on("awaiting a local task that panics", panicked)?;
    let text = match &out {
        Err(JoinError::Panicked(payload)) => panic_text(&**payload),
        other => describe(other),
    };
    trace.record(format!("panicking task: {text}"));
    ensure!(text == "local boom", "a panicking local task gave {text}");
    Ok(())
}

pub(crate) fn l1_a_local_runtime_shut_down_cancels_its_pending_local_tasks<R: LocalCaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let trace = &cx.trace;
    let doomed = (cx.new_runtime)();
    let state = Rc::new(());
    let started = CancelToken::new();
    // As in D6, the tasks hold no clone of `doomed`.
    let running = doomed.spawn_local({
        let (nap, state, started) = (
            doomed.sleep(cx.config.patience * 3),
            state.clone(),
            started.clone(),
        );
        async move {
            let _state = state;
            started.cancel();
            nap.await;
        }
    });
    let parked = doomed.spawn_local({
        let state = state.clone();
        async move {
            let _state = state;
            std::future::pending::<()>().await
        }
    });
    bounded(
        &doomed,
        cx.config.patience,
        "waiting for a local task to start",
        started.cancelled(),
    )?;
    trace.record("a local task started");
    drop(doomed);
    trace.record("runtime dropped");
    for (what, task) in [("sleeping", running), ("parked", parked)] {
        let out = cx.block_on(
            "awaiting a local task of a runtime that shut down (was it leaked?)",
            task,
        )?;
        trace.record(format!("{what} local task gave {}", describe(&out)));
        ensure!(
            matches!(out, Err(JoinError::Cancelled)),
            "a {what} local task of a shut-down runtime gave {}",
            describe(&out)
        );
    }
    let holders = Rc::strong_count(&state);
    trace.record(format!("their state dropped: {}", holders == 1));
    ensure!(
        holders == 1,
        "{} future(s) of a shut-down local runtime still hold their state",
        holders - 1
    );
    Ok(())
}

pub(crate) fn l1_a_local_spawn_off_the_executors_thread_panics<R: LocalCaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = TaskGroup::new(rt);
    let ran = CancelToken::new();
    let (task_refused, group_refused) = std::thread::scope(|s| {
        s.spawn(|| {
            let task = catch_unwind(AssertUnwindSafe(|| {
                let ran = ran.clone();
                rt.spawn_local(async move { ran.cancel() }).detach();
            }));
            let grouped = catch_unwind(AssertUnwindSafe(|| {
                let ran = ran.clone();
                group.spawn_local(|_| async move { ran.cancel() }).detach();
            }));
            (task.is_err(), grouped.is_err())
        })
        .join()
        .unwrap_or((false, false))
    });
    // Give a wrongly accepted task every chance to run.
    cx.block_on("running the executor", async {
        for _ in 0..10 {
            yield_now().await;
        }
    })?;
    let (members, ran) = (group.len(), ran.is_cancelled());
    trace.record(format!(
        "off the executor's thread: spawn_local panicked: {task_refused}, the group's \
         spawn_local panicked: {group_refused}; group members: {members}; a future ran: {ran}"
    ));
    ensure!(
        task_refused && group_refused,
        "spawn_local off the executor's thread did not panic (task: {task_refused}, group: \
         {group_refused})"
    );
    ensure!(
        members == 0 && !ran,
        "a refused local spawn left {members} group member(s), or ran ({ran})"
    );
    Ok(())
}

pub(crate) fn l2_a_local_group_shuts_down_like_any_group<R: LocalCaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = TaskGroup::new(rt);
    let state = Rc::new(());
    // The polite task ends as soon as it is polled after the cancel; the
    // grace only has to outlast a loaded machine's delays (the stubborn
    // one makes the shutdown use all of it).
    let grace = cx.config.patience / 10;
    let report = cx.block_on("shutting a group of local tasks down", async {
        group
            .spawn_local_named("polite", {
                let state = state.clone();
                move |stop| async move {
                    let _state = state;
                    stop.cancelled().await;
                }
            })
            .detach();
        group
            .spawn_local_named("stubborn", {
                let state = state.clone();
                move |_stop| async move {
                    let _state = state;
                    std::future::pending::<()>().await
                }
            })
            .detach();
        group.clone().shutdown(grace).await
    })?;
    let forced: Vec<_> = report.forced.iter().map(|t| t.name()).collect();
    let (holders, empty, kind) = (
        Rc::strong_count(&state),
        group.is_empty(),
        kind_of(group.token()),
    );
    trace.record(format!(
        "shutdown returned: finished {}, forced {forced:?}; group empty: {empty}; state \
         dropped: {}; token kind {kind:?}",
        report.finished,
        holders == 1
    ));
    ensure!(
        report.finished == 1 && forced == ["stubborn"],
        "report: {report}"
    );
    ensure!(
        empty && holders == 1,
        "local tasks still live after shutdown returned"
    );
    ensure!(
        kind == Some(CancelKind::Shutdown),
        "the group's token was not cancelled with kind Shutdown"
    );
    Ok(())
}

pub(crate) fn l2_dropping_a_local_group_drops_its_tasks<R: LocalCaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = TaskGroup::new(rt);
    let token = group.token().clone();
    let state = Rc::new(());
    let (started, dropped) = (CancelToken::new(), CancelToken::new());
    group
        .spawn_local({
            let (state, started, guard) =
                (state.clone(), started.clone(), dropped.clone().drop_guard());
            move |_stop| async move {
                let (_state, _guard) = (state, guard);
                started.cancel();
                std::future::pending::<()>().await
            }
        })
        .detach();
    cx.block_on("waiting for the local task to start", started.cancelled())?;
    drop(group);
    let cancelled = token.is_cancelled();
    trace.record(format!("group dropped: token cancelled: {cancelled}"));
    ensure!(cancelled, "dropping the group did not cancel its token");
    cx.block_on(
        "waiting for a dropped group's local task to be dropped",
        dropped.cancelled(),
    )?;
    let holders = Rc::strong_count(&state);
    trace.record(format!(
        "local task's future dropped; state dropped: {}",
        holders == 1
    ));
    ensure!(holders == 1, "the dropped task's state is still held");
    Ok(())
}
