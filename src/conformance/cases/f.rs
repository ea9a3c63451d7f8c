//! Tokens: the cases of [F1](crate#F1) (shared, idempotent flag),
//! [F2](crate#F2) (`cancelled()` wakes every waiter), [F3](crate#F3) (token
//! trees), [F4](crate#F4) (drop guards), [F5](crate#F5)
//! (`run_until_cancelled`) and [F6](crate#F6) (causes and deadlines).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{CaseRuntime, Result, describe};
use crate::conformance::{Ctx, Failure};
use crate::{CancelToken, SpawnerExt};

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
