//! Cancel scopes: the cases of [S1](crate#S1) (shields outlive their
//! task's cancellation, and are waited for), [S2](crate#S2) (a shield's
//! grace, and its overrun in the report), [S3](crate#S3) (async cleanup),
//! [S4](crate#S4) (`current()` and `checkpoint()`) and [S5](crate#S5)
//! (`move_on_after` / `fail_after`).
//!
//! Each case traces the order of the events it forces — a shield's end
//! before its task's handle resolves — and what it read, before it checks.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{CaseRuntime, CountPolls, Result, describe, kind_of, until_finished};
use crate::conformance::Ctx;
use crate::group::{ShutdownReport, TaskOverrun};
use crate::scope::{self, SectionKind};
use crate::token::CancelKind;
use crate::{CancelToken, SpawnerExt, Timer, timeout};

/// How long a case waits to see that something does not happen (a handle
/// resolving while its shield still runs). A correct runtime never does it,
/// however long the wait; a broken one does it within microseconds.
const NOT_YET: Duration = Duration::from_millis(20);

/// A shield's or cleanup's grace where the case lets it run out.
const GRACE: Duration = Duration::from_millis(20);

/// A slot a task writes a value into for the case to read.
struct Slot<T>(Arc<Mutex<Option<T>>>);

impl<T> Clone for Slot<T> {
    fn clone(&self) -> Self {
        Slot(self.0.clone())
    }
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot(Arc::new(Mutex::new(None)))
    }
    fn put(&self, value: T) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }
    fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Records the timer's clock when dropped.
struct StampOnDrop<R: Timer>(R, Slot<Instant>);

impl<R: Timer> Drop for StampOnDrop<R> {
    fn drop(&mut self) {
        self.1.put(self.0.now());
    }
}

/// Overruns as the trace holds them: task name and section kind.
fn overruns(report: &ShutdownReport) -> Vec<String> {
    report
        .overruns
        .iter()
        .map(|o: &TaskOverrun| format!("{}: {:?}", o.task.name(), o.section.kind))
        .collect()
}

// ===== S1 =====

pub(crate) fn s1_a_shield_outlives_its_cancelled_task<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let (in_shield, release, dropped) =
        (CancelToken::new(), CancelToken::new(), CancelToken::new());
    let mut task = rt.spawn({
        let (rt, trace) = (rt.clone(), trace.clone());
        let (in_shield, release) = (in_shield.clone(), release.clone());
        let guard = dropped.clone().drop_guard();
        let patience = cx.config.patience;
        async move {
            let _guard = guard;
            let inner_trace = trace.clone();
            scope::shield(&rt, patience, async move {
                in_shield.cancel();
                release.cancelled().await;
                inner_trace.record("shield: finished");
            })
            .await;
            trace.record("task: after the shield (it was cancelled: never)");
        }
    });
    let (finished_early, out) = cx.block_on("cancelling a task inside its shield", async {
        in_shield.cancelled().await;
        task.abort();
        dropped.cancelled().await;
        trace.record("task's future dropped");
        let early = timeout(rt, NOT_YET, until_finished(&task)).await.is_ok();
        trace.record(format!("handle finished while the shield ran: {early}"));
        release.cancel();
        let out = (&mut task).await;
        trace.record(format!("handle: {}", describe(&out)));
        (early, out)
    })?;
    let events = trace.events();
    let shield_first = events.iter().position(|e| e == "shield: finished")
        < events.iter().position(|e| e.starts_with("handle: "));
    ensure!(
        !finished_early,
        "the task's handle resolved while its shield was still running"
    );
    ensure!(
        events.iter().any(|e| e == "shield: finished") && shield_first,
        "the shield did not run to completion before the handle resolved: {events:?}"
    );
    ensure!(
        matches!(out, Err(crate::JoinError::Cancelled)),
        "a cancelled task with a shield gave {}",
        describe(&out)
    );
    Ok(())
}

pub(crate) fn s1_cancel_and_group_shutdown_wait_for_shields<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    // `cancel().await` of a task whose shield is running.
    let (in_shield, release) = (CancelToken::new(), CancelToken::new());
    let shield_body = |in_shield: CancelToken, release: CancelToken, what: &'static str| {
        let trace = trace.clone();
        async move {
            in_shield.cancel();
            release.cancelled().await;
            trace.record(format!("{what}: shield finished"));
            7
        }
    };
    let task = rt.spawn({
        let rt = rt.clone();
        let body = shield_body(in_shield.clone(), release.clone(), "task");
        let patience = cx.config.patience;
        async move { scope::shield(&rt, patience, body).await }
    });
    let out = cx.block_on("cancelling a task while its shield runs", async {
        in_shield.cancelled().await;
        let mut cancel = rt.spawn(task.cancel());
        let early = timeout(rt, NOT_YET, until_finished(&cancel)).await.is_ok();
        trace.record(format!("cancel() done before the shield: {early}"));
        release.cancel();
        let out = (&mut cancel).await;
        trace.record(format!("cancel() returned: {out:?}"));
        out
    })?;
    ensure!(
        matches!(out, Ok(None)),
        "cancel().await gave {out:?}, not None: the task was cancelled before its shield's output was its own"
    );

    // A group's shutdown.
    let group = crate::TaskGroup::new(rt);
    let (in_shield, release, dropped) =
        (CancelToken::new(), CancelToken::new(), CancelToken::new());
    let body = shield_body(in_shield.clone(), release.clone(), "group task");
    let report = cx.block_on("shutting a group down while a shield runs", async {
        group
            .spawn_named("flusher", {
                let rt = rt.clone();
                let guard = dropped.clone().drop_guard();
                let patience = cx.config.patience;
                move |_| async move {
                    let _guard = guard;
                    scope::shield(&rt, patience, body).await
                }
            })
            .detach();
        in_shield.cancelled().await;
        let mut shutdown = rt.spawn(group.clone().shutdown(Duration::ZERO));
        dropped.cancelled().await;
        let early = timeout(rt, NOT_YET, until_finished(&shutdown))
            .await
            .is_ok();
        trace.record(format!("shutdown done before the shield: {early}"));
        release.cancel();
        let report = (&mut shutdown).await;
        trace.record("shutdown returned");
        report
    })?;
    let report = report.map_err(|e| crate::conformance::Failure::new(format!("{e:?}")))?;
    trace.record(format!(
        "forced {:?}, overruns {:?}",
        report
            .forced
            .iter()
            .map(|t| t.name().into_owned())
            .collect::<Vec<_>>(),
        overruns(&report)
    ));
    let events = trace.events();
    let order = |a: &str, b: &str| {
        let at = |x: &str| events.iter().position(|e| e.starts_with(x));
        at(a).is_some() && at(a) < at(b)
    };
    ensure!(
        order("task: shield finished", "cancel() returned: ")
            && order("group task: shield finished", "shutdown returned"),
        "cancel().await or shutdown returned before the shield finished: {events:?}"
    );
    ensure!(
        !events
            .iter()
            .any(|e| e.ends_with("before the shield: true")),
        "something returned while a shield ran: {events:?}"
    );
    ensure!(
        report.forced.len() == 1 && report.overruns.is_empty(),
        "report: {report}"
    );
    Ok(())
}

// ===== S2 =====

pub(crate) fn s2_a_shield_past_its_grace_is_dropped_and_reported<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = crate::TaskGroup::new(rt);
    let in_shield = CancelToken::new();
    let (task_gone, shield_gone) = (Slot::new(), Slot::new());
    let report = cx.block_on("shutting a group down past a shield's grace", async {
        group
            .spawn_named("stubborn", {
                let (rt, in_shield) = (rt.clone(), in_shield.clone());
                let (task_gone, shield_gone) = (task_gone.clone(), shield_gone.clone());
                move |_| async move {
                    let _stamp = StampOnDrop(rt.clone(), task_gone);
                    let stamp = StampOnDrop(rt.clone(), shield_gone);
                    scope::shield(&rt, GRACE, async move {
                        let _stamp = stamp;
                        in_shield.cancel();
                        std::future::pending::<()>().await
                    })
                    .await
                }
            })
            .detach();
        in_shield.cancelled().await;
        group.clone().shutdown(Duration::ZERO).await
    })?;
    let (task_gone, shield_gone) = (task_gone.take(), shield_gone.take());
    let not_early = matches!((task_gone, shield_gone), (Some(t), Some(s)) if s >= t + GRACE);
    let here = report
        .overruns
        .iter()
        .all(|o| o.task.location.file() == file!() && o.section.location.file() == file!());
    let distinct = report
        .overruns
        .iter()
        .all(|o| o.task.location != o.section.location);
    trace.record(format!("overruns {:?}", overruns(&report)));
    trace.record(format!(
        "shield dropped: {}; not before its grace: {not_early}; \
         locations in this file: {here}; task and shield told apart: {distinct}",
        shield_gone.is_some()
    ));
    ensure!(
        shield_gone.is_some(),
        "the shield's future was not dropped when its grace ended"
    );
    ensure!(
        not_early,
        "the shield was dropped before its grace ended (task gone at {task_gone:?}, shield at {shield_gone:?})"
    );
    ensure!(
        report.overruns.len() == 1
            && report.overruns[0].task.name() == "stubborn"
            && report.overruns[0].section.kind == SectionKind::Shield
            && here
            && distinct,
        "report: {report}"
    );
    Ok(())
}

// ===== S3 =====

pub(crate) fn s3_cleanup_runs_once_on_cancel_with_the_cause<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let armed = CancelToken::new();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let task = rt.spawn({
        let (rt, armed, runs) = (rt.clone(), armed.clone(), runs.clone());
        let patience = cx.config.patience;
        async move {
            let registered = scope::cleanup(&rt, patience, {
                let rt = rt.clone();
                move |cause| async move {
                    // Awaits: a cleanup is async.
                    rt.sleep(Duration::from_millis(1)).await;
                    runs.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(cause.kind());
                }
            });
            assert!(registered.is_ok(), "a task hosts cleanup");
            armed.cancel();
            std::future::pending::<()>().await
        }
    });
    let out = cx.block_on("cancelling a task with a cleanup", async {
        armed.cancelled().await;
        task.cancel().await
    })?;
    let runs = runs.lock().unwrap_or_else(PoisonError::into_inner).clone();
    trace.record(format!(
        "cancel() returned {out:?}; cleanup runs by then: {runs:?}"
    ));
    ensure!(
        runs == [CancelKind::TaskCancelled],
        "the cleanup ran {} time(s) by the time cancel() returned, with {runs:?} (expected once, TaskCancelled)",
        runs.len()
    );
    Ok(())
}

pub(crate) fn s3_cleanup_never_runs_on_completion<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let other = CancelToken::new();
    let runs = Arc::new(Mutex::new(0));
    let count = |runs: &Arc<Mutex<i32>>| {
        let runs = runs.clone();
        move |_| async move { *runs.lock().unwrap_or_else(PoisonError::into_inner) += 1 }
    };
    let out = cx.block_on("running a task with cleanups to completion", {
        let (rt, other, runs) = (rt.clone(), other.clone(), runs.clone());
        let patience = cx.config.patience;
        rt.clone().spawn(async move {
            let a = scope::cleanup(&rt, patience, count(&runs)).is_ok();
            let b = scope::cleanup_on(&other, &rt, patience, count(&runs)).is_ok();
            futures_lite::future::yield_now().await;
            (a, b)
        })
    })?;
    trace.record(format!("handle: {}", describe(&out)));
    // The token of the second cleanup fires after the task completed.
    other.cancel();
    let ran = *runs.lock().unwrap_or_else(PoisonError::into_inner);
    trace.record(format!("cleanup runs: {ran}"));
    ensure!(
        matches!(out, Ok((true, true))),
        "registering cleanup in a task failed: {}",
        describe(&out)
    );
    ensure!(
        ran == 0,
        "cleanup ran {ran} time(s) for a task that completed"
    );
    Ok(())
}

pub(crate) fn s3_cleanup_registered_after_the_cancel_runs_at_once<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let lease = CancelToken::new();
    lease.cancel();
    let out = cx.block_on("registering cleanup on a cancelled token", {
        let (rt, lease, trace) = (rt.clone(), lease.clone(), trace.clone());
        let patience = cx.config.patience;
        rt.clone().spawn(async move {
            let ran = CancelToken::new();
            let cleanup = {
                let (ran, trace) = (ran.clone(), trace.clone());
                move |cause: crate::token::Cancelled| async move {
                    trace.record(format!("cleanup: ran, kind {:?}", cause.kind()));
                    ran.cancel();
                }
            };
            let registered = scope::cleanup_on(&lease, &rt, patience, cleanup).is_ok();
            // Only the cleanup can cancel `ran`: the task waits for it.
            ran.cancelled().await;
            trace.record("task: saw its cleanup run");
            registered
        })
    })?;
    trace.record(format!("handle: {}", describe(&out)));
    ensure!(
        matches!(out, Ok(true)),
        "registering failed: {}",
        describe(&out)
    );
    Ok(())
}

pub(crate) fn s3_cleanup_has_its_own_deadline<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let group = crate::TaskGroup::new(rt);
    let armed = CancelToken::new();
    let (started, gone, deadline) = (Slot::new(), Slot::new(), Slot::new());
    let report = cx.block_on("shutting a group down past a cleanup's grace", async {
        group
            .spawn_named("rollback", {
                let (rt, armed) = (rt.clone(), armed.clone());
                let (started, gone, deadline) = (started.clone(), gone.clone(), deadline.clone());
                move |_| async move {
                    let cleanup = {
                        let rt = rt.clone();
                        move |_| async move {
                            started.put(rt.now());
                            deadline.put(scope::current().deadline());
                            let _stamp = StampOnDrop(rt, gone);
                            std::future::pending::<()>().await
                        }
                    };
                    assert!(scope::cleanup(&rt, GRACE, cleanup).is_ok());
                    armed.cancel();
                    std::future::pending::<()>().await
                }
            })
            .detach();
        armed.cancelled().await;
        group.clone().shutdown(Duration::ZERO).await
    })?;
    let (started, gone, deadline) = (started.take(), gone.take(), deadline.take().flatten());
    // The grace starts as the cleanup starts, just before its first line
    // reads the clock (`started`): its deadline is after that, by at most
    // the grace; it is dropped at that deadline, not before.
    let deadline_right =
        matches!((started, deadline), (Some(s), Some(d)) if d > s && d <= s + GRACE);
    let not_early = matches!((deadline, gone), (Some(d), Some(g)) if g >= d);
    trace.record(format!("overruns {:?}", overruns(&report)));
    trace.record(format!(
        "cleanup started: {}; its deadline visible: {deadline_right}; \
         dropped: {}, not before its grace: {not_early}",
        started.is_some(),
        gone.is_some()
    ));
    ensure!(
        started.is_some() && gone.is_some(),
        "the cleanup did not start, or was not dropped"
    );
    ensure!(
        deadline_right,
        "current().deadline() inside the cleanup was {deadline:?}, not its grace's end"
    );
    ensure!(not_early, "the cleanup was dropped before its grace ended");
    ensure!(
        report.overruns.len() == 1
            && report.overruns[0].section.kind == SectionKind::Cleanup
            && report.overruns[0].task.name() == "rollback",
        "report: {report}"
    );
    Ok(())
}

// ===== S4 =====

pub(crate) fn s4_current_is_cancelled_with_its_task<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let slot = Slot::new();
    let ready = CancelToken::new();
    let task = rt.spawn({
        let (slot, ready) = (slot.clone(), ready.clone());
        async move {
            slot.put(scope::current());
            ready.cancel();
            std::future::pending::<()>().await
        }
    });
    let token = cx.block_on("waiting for the task's token", async {
        ready.cancelled().await;
        slot.take()
    })?;
    let Some(token) = token else {
        return Err(crate::conformance::Failure::new("the task sent no token"));
    };
    let before = token.is_cancelled();
    cx.block_on("cancelling the task", task.cancel())?;
    trace.record(format!(
        "task's current(): cancelled before: {before}, after cancel(): {:?}",
        kind_of(&token)
    ));
    ensure!(!before, "current() was cancelled before its task was");
    ensure!(
        kind_of(&token) == Some(CancelKind::TaskCancelled),
        "current() was {:?} after its task was cancelled (expected TaskCancelled)",
        kind_of(&token)
    );

    // checkpoint(): yields once when not cancelled, fails once the group
    // (the task's scope) is cancelled.
    let group = crate::TaskGroup::new(rt);
    let first = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let polls = first.clone();
    let looping = CancelToken::new();
    let steps = group.spawn({
        let looping = looping.clone();
        move |_| async move {
            let once = CountPolls {
                polls,
                fut: Box::pin(scope::checkpoint()),
            }
            .await;
            looping.cancel();
            let mut n = 0u64;
            loop {
                if let Err(cause) = scope::checkpoint().await {
                    return (once.is_ok(), n, cause.kind());
                }
                n += 1;
            }
        }
    });
    let out = cx.block_on(
        "cancelling a group task that loops on checkpoint()",
        async {
            looping.cancelled().await;
            group.token().cancel();
            steps.await
        },
    )?;
    let polls = first.load(std::sync::atomic::Ordering::SeqCst);
    let out = out.map(|(ok, _steps, kind)| (ok, kind));
    trace.record(format!(
        "first checkpoint: polled {polls} times; loop ended with {}",
        describe(&out)
    ));
    ensure!(
        polls == 2,
        "checkpoint() was polled {polls} times, not 2 (it yields once)"
    );
    ensure!(
        matches!(out, Ok((true, CancelKind::Explicit))),
        "checkpoint() in a cancelled group task gave {}",
        describe(&out)
    );
    Ok(())
}

pub(crate) fn s4_outside_a_task_the_scope_is_never_cancelled<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let (cancelled, checkpoint, unhosted) = cx.block_on("using scopes in block_on", async {
        let current = scope::current();
        let checkpoint = scope::checkpoint().await;
        let unhosted = scope::cleanup(rt, Duration::ZERO, |_| async {}).is_err();
        (current.is_cancelled(), checkpoint, unhosted)
    })?;
    trace.record(format!(
        "outside a task: current() cancelled: {cancelled}; checkpoint: {checkpoint:?}; \
         cleanup refused: {unhosted}"
    ));
    ensure!(
        !cancelled && checkpoint.is_ok() && unhosted,
        "outside a task the scope must be one that is never cancelled, and cleanup refused"
    );
    Ok(())
}

// ===== S5 =====

pub(crate) fn s5_move_on_after_expires_and_spares_the_outer_scope<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let limit = Duration::from_millis(20);
    let out = cx.block_on("a task with a nested scope that expires", {
        let rt = rt.clone();
        rt.clone().spawn(async move {
            let outer = scope::current();
            let (inner, gone) = (Slot::new(), Slot::new());
            let start = rt.now();
            let moved = scope::move_on_after(&rt, limit, {
                let (rt, inner, gone) = (rt.clone(), inner.clone(), gone.clone());
                async move {
                    inner.put(scope::current());
                    let _stamp = StampOnDrop(rt, gone);
                    std::future::pending::<()>().await
                }
            })
            .await;
            let inner = inner.take().expect("the body ran");
            let gone = gone.take();
            let deadline_ok = inner.deadline().is_some_and(|d| d >= start + limit);
            let failed = scope::fail_after(&rt, limit, std::future::pending::<()>()).await;
            let ready = scope::move_on_after(&rt, Duration::ZERO, async { 1 }).await;
            let never =
                scope::move_on_after(&rt, Duration::MAX, async { scope::current().deadline() })
                    .await;
            vec![
                format!("move_on_after: {moved:?}"),
                format!(
                    "body dropped: {}, not early: {}",
                    gone.is_some(),
                    gone.is_some_and(|g| g >= start + limit)
                ),
                format!(
                    "inner scope: {:?}, deadline {}",
                    kind_of(&inner),
                    if deadline_ok { "ok" } else { "wrong" }
                ),
                format!("outer scope cancelled: {}", outer.is_cancelled()),
                format!("fail_after: {failed:?}"),
                format!("ready at zero: {ready:?}"),
                format!("Duration::MAX: {never:?}"),
            ]
        })
    })?;
    let Ok(lines) = out else {
        return Err(crate::conformance::Failure::new(format!(
            "the task ended with {}",
            describe(&out)
        )));
    };
    for line in &lines {
        trace.record(line.clone());
    }
    let expected = [
        "move_on_after: None",
        "body dropped: true, not early: true",
        "inner scope: Some(DeadlineExceeded), deadline ok",
        "outer scope cancelled: false",
        "fail_after: Err(Elapsed)",
        "ready at zero: Some(1)",
        "Duration::MAX: Some(None)",
    ];
    ensure!(lines == expected, "got {lines:#?}, expected {expected:#?}");
    Ok(())
}

pub(crate) fn s5_nested_scopes_see_the_earliest_deadline_and_the_outer_cancel<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let patience = cx.config.patience;
    let group = crate::TaskGroup::new(rt);
    let inside = CancelToken::new();
    let task = group.spawn({
        let (rt, inside) = (rt.clone(), inside.clone());
        move |_| async move {
            let start = rt.now();
            let deadlines = scope::move_on_after(&rt, patience, {
                let rt = rt.clone();
                async move {
                    let outer = scope::current().deadline();
                    scope::move_on_after(&rt, Duration::from_secs(3600), async move {
                        (outer, scope::current().deadline())
                    })
                    .await
                }
            })
            .await;
            let nested_ok = matches!(
                deadlines,
                Some(Some((Some(outer), Some(inner))))
                    if inner == outer && outer >= start + patience
                        && outer < start + Duration::from_secs(3600)
            );
            // The group's cancel reaches into a nested scope.
            let seen = scope::move_on_after(&rt, patience, async move {
                inside.cancel();
                let current = scope::current();
                current.cancelled().await;
                kind_of(&current)
            })
            .await;
            (nested_ok, seen)
        }
    });
    let out = cx.block_on("cancelling a group around a nested scope", async {
        inside.cancelled().await;
        group.token().cancel();
        task.await
    })?;
    trace.record(format!(
        "nested deadline, outer cancel seen: {}",
        describe(&out)
    ));
    ensure!(
        matches!(out, Ok((true, Some(Some(CancelKind::Explicit))))),
        "expected the inner scope to see the outer deadline and the outer cancel, got {}",
        describe(&out)
    );
    Ok(())
}
