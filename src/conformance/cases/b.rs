//! Task groups: the cases of [B1](crate#B1) (shutdown with a grace period),
//! [B2](crate#B2) (dropping a group), [B3](crate#B3) (panics and fail-fast)
//! and [B4](crate#B4) (shutdown on a signal).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::yield_now;

use super::{CaseRuntime, Result, describe};
use crate::conformance::{Ctx, Failure};
use crate::{CancelToken, JoinError, SpawnerExt};

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
        forced.name == "stubborn" && forced.location.file() == file!(),
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
