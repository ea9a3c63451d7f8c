//! Tokens: the cases of [F1](crate#F1) (shared, idempotent flag),
//! [F2](crate#F2) (`cancelled()` wakes every waiter), [F3](crate#F3) (token
//! trees), [F4](crate#F4) (drop guards), [F5](crate#F5)
//! (`run_until_cancelled`) and [F6](crate#F6) (causes and deadlines).
//!
//! Each case traces the flags, kinds, causes and counts it read, before it
//! checks them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{CaseRuntime, Result, describe, kind_of};
use crate::conformance::{Ctx, Failure};
use crate::token::CancelKind;
use crate::{CancelToken, SpawnerExt};

pub(crate) fn f1_clones_share_one_idempotent_flag<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let token = CancelToken::new();
    let clone = token.clone();
    let fresh = clone.is_cancelled();
    trace.record(format!("new token cancelled: {fresh}"));
    ensure!(!fresh, "a new token reports cancelled");
    let seen = rt.spawn({
        let clone = clone.clone();
        async move {
            clone.cancel();
            clone.cancel();
            clone.is_cancelled()
        }
    });
    let seen = cx.block_on("awaiting a task that cancels a clone", seen)?;
    let (original, other) = (token.is_cancelled(), clone.is_cancelled());
    trace.record(format!(
        "the cancelling task saw {}; original: {original}, other clone: {other}",
        describe(&seen)
    ));
    ensure!(
        matches!(seen, Ok(true)),
        "the cancelling task saw {}",
        describe(&seen)
    );
    ensure!(original && other, "a clone did not see the cancel");
    token.cancel();
    let again = token.is_cancelled();
    trace.record(format!("cancelled again: {again}"));
    ensure!(again, "cancelling twice un-cancelled");
    Ok(())
}

pub(crate) fn f2_one_cancel_wakes_every_waiter<R: CaseRuntime>(cx: &Ctx<'_, R>) -> Result {
    const WAITERS: usize = 32;
    let (rt, trace) = (&cx.rt, &cx.trace);
    let token = CancelToken::new();
    let woken = Arc::new(AtomicUsize::new(0));
    let registered = Arc::new(AtomicUsize::new(0));
    let ready_early = Arc::new(AtomicUsize::new(0));
    let all_registered = CancelToken::new();
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (token, woken, ready_early) = (token.clone(), woken.clone(), ready_early.clone());
            let (registered, all_registered) = (registered.clone(), all_registered.clone());
            rt.spawn(async move {
                let mut wait = std::pin::pin!(token.cancelled());
                // Poll once, so this waiter is registered (pending) before
                // the cancel: the cancel must wake it, not a fast path.
                let early = futures_lite::future::poll_once(wait.as_mut()).await;
                if early.is_some() {
                    ready_early.fetch_add(1, Ordering::SeqCst);
                }
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
    let early = ready_early.load(Ordering::SeqCst);
    trace.record(format!(
        "{} waiters registered, {early} ready before the cancel",
        registered.load(Ordering::SeqCst)
    ));
    token.cancel();
    let finished = cx.block_on("waiting for every waiter to wake", async move {
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.is_ok());
        }
        ok
    })?;
    let n = woken.load(Ordering::SeqCst);
    trace.record(format!("{n} waiters woke, {finished} tasks gave Ok"));
    ensure!(
        early == 0,
        "{early} waiters found the token cancelled before the cancel"
    );
    ensure!(n == WAITERS, "{n} of {WAITERS} waiters woke");
    ensure!(
        finished == WAITERS,
        "{finished} of {WAITERS} waiters gave Ok"
    );
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
    cx.trace.record(if first.is_some() {
        "first poll: Ready"
    } else {
        "first poll: Pending"
    });
    ensure!(
        first.is_some(),
        "cancelled() was pending on an already-cancelled token"
    );
    Ok(())
}

pub(crate) fn f2_cancel_racing_registration_is_never_lost<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    const ROUNDS: usize = 200;
    let rt = &cx.rt;
    // A lost wake-up hangs its round (caught by the watchdog); the counts
    // say how many rounds woke and how many cancellers ran to the end.
    let (woke, cancellers_ok) = cx.block_on("racing cancel() against cancelled()", async {
        let (mut woke, mut ok) = (0, 0);
        for _ in 0..ROUNDS {
            let token = CancelToken::new();
            let canceller = rt.spawn({
                let token = token.clone();
                async move { token.cancel() }
            });
            token.cancelled().await;
            woke += 1;
            ok += usize::from(canceller.await.is_ok());
        }
        (woke, ok)
    })?;
    cx.trace.record(format!(
        "{woke} of {ROUNDS} racing waiters woke, {cancellers_ok} cancellers gave Ok"
    ));
    ensure!(
        woke == ROUNDS && cancellers_ok == ROUNDS,
        "{woke} waiters woke, {cancellers_ok} cancellers gave Ok, of {ROUNDS}"
    );
    Ok(())
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
    let (p, c, s) = (
        parent.is_cancelled(),
        child.is_cancelled(),
        sibling.is_cancelled(),
    );
    trace.record(format!(
        "after a child's cancel: parent {p}, other child {c}, itself {s}"
    ));
    ensure!(
        !p && !c && s,
        "cancelling a child reached its parent or sibling (or not itself)"
    );
    parent.cancel();
    let c = child.is_cancelled();
    trace.record(format!(
        "when the parent's cancel returned: child {c}, kind {:?}",
        kind_of(&child)
    ));
    ensure!(
        c,
        "the child did not report cancelled when cancel() returned"
    );
    let out = cx.block_on("waiting for a child's waiter to wake", waiter)?;
    trace.record(format!("the child's waiter gave {}", describe(&out)));
    out.map_err(|e| Failure::new(format!("the waiter failed: {e}")))?;
    let late = parent.child().is_cancelled();
    trace.record(format!("a late child born cancelled: {late}"));
    ensure!(late, "a child of a cancelled parent was not born cancelled");
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
    let out = cx.block_on("waiting for the grandchild's waiter", waiter)?;
    let same = grandchild
        .reason()
        .zip(root.reason())
        .is_some_and(|(a, b)| a.same_as(&b));
    trace.record(format!(
        "the grandchild's waiter gave {}; grandchild kind {:?}, same cause as the root: {same}",
        describe(&out),
        kind_of(&grandchild)
    ));
    out.map_err(|e| Failure::new(format!("the waiter failed: {e}")))?;
    ensure!(
        same,
        "the grandchild reports a different cause than the root"
    );
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
    let after_disarm = token.is_cancelled();
    trace.record(format!(
        "disarmed guard: the task saw {}, token cancelled: {after_disarm}",
        describe(&disarmed)
    ));
    ensure!(
        matches!(disarmed, Ok(false)) && !after_disarm,
        "a disarmed guard cancelled its token"
    );
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
    let kind = kind_of(&token);
    trace.record(format!("dropped guard cancelled the token, kind {kind:?}"));
    ensure!(
        kind == Some(CancelKind::GuardDropped),
        "a dropped guard cancelled with kind {kind:?}"
    );
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
    trace.record("inner future started");
    token.cancel();
    let out = cx.block_on("awaiting the cancelled run", task)?;
    trace.record(match &out {
        Ok((run, was_dropped)) => format!(
            "run gave {:?}; inner future dropped by then: {was_dropped}",
            run.as_ref().map_err(|e| e.kind())
        ),
        Err(e) => format!("the task gave Err({e:?})"),
    });
    match out {
        Ok((Err(_), true)) => Ok(()),
        Ok((Err(_), false)) => Err(Failure::new(
            "Err(Cancelled) was returned before the inner future was dropped",
        )),
        Ok((Ok(v), _)) => Err(Failure::new(format!(
            "expected Err(Cancelled), got Ok({v})"
        ))),
        Err(e) => Err(Failure::new(format!("the task failed: {e}"))),
    }
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
    let won = root.cancel_with(CancelKind::Shutdown, "maintenance");
    let lost = root.cancel_with(CancelKind::Explicit, "too late");
    trace.record(format!("first cancel_with won: {won}, second: {lost}"));
    ensure!(won && !lost, "cancel_with did not report who won");
    let err = cx
        .block_on("awaiting a run cancelled through its ancestors", task)?
        .map_err(|e| Failure::new(format!("the task failed: {e}")))?;
    let cause = err.cause().map(|c| c.to_string());
    trace.record(format!("leaf saw: {:?}, cause {cause:?}", err.kind()));
    ensure!(err.kind() == CancelKind::Shutdown, "kind {:?}", err.kind());
    ensure!(cause.as_deref() == Some("maintenance"), "cause {cause:?}");
    Ok(())
}

pub(crate) fn f6_deadline_fires_not_early_as_deadline_exceeded<R: CaseRuntime>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let at = rt.now() + Duration::from_millis(20);
    let token = CancelToken::with_deadline(rt, at);
    let own = token.deadline() == Some(at);
    let child = token.child();
    let inherited = child.deadline() == Some(at);
    trace.record(format!(
        "deadline() is the one given: {own}; a child inherits it: {inherited}"
    ));
    ensure!(own, "deadline() = {:?}", token.deadline());
    ensure!(inherited, "a child did not inherit the deadline");
    cx.block_on("waiting for a deadline to fire", child.cancelled())?;
    let now = rt.now();
    let (kind, child_kind) = (kind_of(&token), kind_of(&child));
    trace.record(format!(
        "deadline fired, not early: {}; kind {kind:?}, child's kind {child_kind:?}",
        now >= at
    ));
    ensure!(
        now >= at,
        "the deadline fired {:?} early",
        at.saturating_duration_since(now)
    );
    ensure!(kind == Some(CancelKind::DeadlineExceeded), "kind {kind:?}");
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
    let (short_own, long_parents) = (short.deadline() == Some(soon), long.deadline() == Some(far));
    trace.record(format!(
        "earlier own deadline kept: {short_own}; later own deadline gave the parent's: {long_parents}"
    ));
    ensure!(short_own, "short child: {:?}", short.deadline());
    ensure!(
        long_parents,
        "a later own deadline should yield the parent's"
    );
    cx.block_on("waiting for the child's own deadline", short.cancelled())?;
    let (p, l) = (parent.is_cancelled(), long.is_cancelled());
    trace.record(format!(
        "child's own deadline fired ({:?}); parent cancelled: {p}, sibling cancelled: {l}",
        kind_of(&short)
    ));
    ensure!(!p && !l, "a child's deadline reached its parent or sibling");
    Ok(())
}
