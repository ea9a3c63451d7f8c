//! Task groups: the cases of [B1](crate#B1) (shutdown with a grace period),
//! [B2](crate#B2) (dropping a group), [B3](crate#B3) (panics and fail-fast)
//! and [B4](crate#B4) (shutdown on a signal).
//!
//! Each case traces what it read — the shutdown report's counts and names,
//! the kind its tasks' token was cancelled with, task outcomes — before it
//! checks it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::yield_now;

use super::{CaseRuntime, Result, describe, kind_of};
use crate::conformance::{Ctx, Failure};
use crate::group::ShutdownReport;
use crate::token::CancelKind;
use crate::{CancelToken, JoinError, SpawnerExt};

/// A report as the trace holds it: the counts, and the tasks by name
/// (sorted), without the spawn locations.
fn summary(report: &ShutdownReport) -> String {
    let mut forced: Vec<_> = report.forced.iter().map(|t| t.name()).collect();
    forced.sort_unstable();
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|f| format!("{} {:?}: {}", f.task.name(), f.kind, f.message))
        .collect();
    format!(
        "finished {}, forced {forced:?}, failures {failures:?} (+{} not kept), not started {}",
        report.finished, report.failures_not_kept, report.not_started
    )
}

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
    let (empty, saw, kind) = (
        group.is_empty(),
        saw_deadline.load(Ordering::SeqCst),
        kind_of(group.token()),
    );
    trace.record(format!("shutdown returned: {}", summary(&report)));
    trace.record(format!(
        "group empty: {empty}; tasks that saw the grace deadline: {saw}; token kind {kind:?}"
    ));
    ensure!(
        report.finished == 2 && report.forced.is_empty(),
        "report: {report}"
    );
    ensure!(empty, "tasks still live after shutdown returned");
    ensure!(
        saw == 1,
        "the grace deadline was not visible through the task's token"
    );
    ensure!(
        kind == Some(CancelKind::Shutdown),
        "the group's token was not cancelled with kind Shutdown"
    );
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
    let (was_dropped, not_early, empty) = (
        dropped.is_cancelled(),
        rt.now() >= start + grace,
        group.is_empty(),
    );
    let here = report.forced.iter().all(|t| t.location.file() == file!());
    trace.record(format!("shutdown returned: {}", summary(&report)));
    trace.record(format!(
        "forced future dropped by then: {was_dropped}; not early: {not_early}; \
         spawn locations in this file: {here}; group empty: {empty}"
    ));
    ensure!(
        was_dropped,
        "shutdown returned before the forced task's future was dropped"
    );
    ensure!(
        not_early,
        "the task was forced before the grace period ended"
    );
    ensure!(
        report.finished == 0 && report.forced.len() == 1,
        "report: {report}"
    );
    let forced = &report.forced[0];
    ensure!(
        forced.name() == "stubborn" && here,
        "forced task reported as {forced}"
    );
    ensure!(empty, "tasks still live after shutdown returned");
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
    trace.record("task started");
    drop(group);
    let cancelled = token.is_cancelled();
    trace.record(format!(
        "group dropped: token cancelled: {cancelled}, kind {:?}",
        kind_of(&token)
    ));
    ensure!(cancelled, "dropping the group did not cancel its token");
    cx.block_on(
        "waiting for a dropped group's task to be dropped",
        dropped.cancelled(),
    )?;
    trace.record("task's future dropped");
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
        let (report, (group_cancelled, sibling_kind), bad) =
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
                let group_cancelled = group.token().is_cancelled();
                let sibling_kind = if fail_fast {
                    sibling.await.ok().flatten()
                } else {
                    drop(sibling);
                    None
                };
                let report = group.clone().shutdown(cx.config.patience).await;
                (report, (group_cancelled, sibling_kind), bad)
            })?;
        // Only the failures: how a sibling whose handle was dropped ends up
        // counted depends on when its runtime dropped it.
        let failures: Vec<String> = report
            .failures
            .iter()
            .map(|f| format!("{} {:?}: {}", f.task.name(), f.kind, f.message))
            .collect();
        trace.record(format!(
            "fail_fast={fail_fast}: the panicking task gave {}; siblings' token cancelled \
             after the panic: {group_cancelled}; sibling saw {sibling_kind:?}; failures {failures:?}",
            describe(&bad)
        ));
        ensure!(
            matches!(bad, Err(JoinError::Panicked(_))),
            "the panicking task gave {}",
            describe(&bad)
        );
        ensure!(
            report.failures.len() == 1 && report.failures[0].task.name() == "bad",
            "fail_fast={fail_fast}: failures {:?}",
            report.failures
        );
        if fail_fast {
            ensure!(
                group_cancelled && sibling_kind == Some(CancelKind::TaskFailed),
                "a fail-fast group did not cancel the sibling with TaskFailed"
            );
        } else {
            ensure!(
                !group_cancelled,
                "an isolated group's panic cancelled the sibling"
            );
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
            .spawn_named("listener", |stop| async move { stop.cancelled().await })
            .detach();
        let observed = Observed {
            signal: signal.clone(),
            waited_on: waited_on.clone(),
        };
        let shutdown = rt.spawn(group.clone().shutdown_on(observed, cx.config.patience));
        // Once shutdown_on is waiting on the signal, it must not have shut
        // the group down yet.
        waited_on.cancelled().await;
        let early = group.token().is_cancelled();
        trace.record(format!(
            "shutdown_on waits for the signal; group cancelled before it: {early}"
        ));
        ensure!(!early, "the group shut down before the signal");
        signal.cancel();
        trace.record("signal raised");
        let out = shutdown.await;
        if let Err(e) = &out {
            trace.record(format!("the shutdown task gave Err({e:?})"));
        }
        out.map_err(|e| Failure::new(format!("the shutdown task failed: {e}")))
    })??;
    let kind = kind_of(group.token());
    trace.record(format!(
        "shutdown returned: {}; token kind {kind:?}",
        summary(&report)
    ));
    ensure!(
        report.finished == 1 && report.forced.is_empty(),
        "report: {report}"
    );
    ensure!(
        kind == Some(CancelKind::Shutdown),
        "the group's token was cancelled with kind {kind:?}"
    );
    Ok(())
}
