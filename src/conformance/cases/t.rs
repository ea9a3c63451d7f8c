//! Time: the cases of [T1](crate#T1) (`timeout`), [T2](crate#T2) (the
//! future is polled before the clock) and [T3](crate#T3) (`deadline`, and
//! sleeps never end early).
//!
//! Each case traces the outcomes it saw and whether each wait ended early,
//! before it checks them — never a time or a duration, which vary from run
//! to run.

use std::time::Duration;

use super::{CaseRuntime, Result};
use crate::conformance::Ctx;
use crate::time::Elapsed;
use crate::{CancelToken, deadline, timeout};

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
    cx.trace.record(format!("timeout gave {out:?}"));
    ensure!(out == Ok(7), "expected Ok(7), got {out:?}");
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
    trace.record(format!(
        "timeout gave {out:?}; inner future dropped by then: {was_dropped}; not early: {}",
        end >= start + limit
    ));
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
    trace.record(format!(
        "timeout(ZERO, ready) gave {zero:?}; deadline(past, ready) gave {past:?}"
    ));
    ensure!(zero == Ok(1), "timeout(ZERO, ready) gave {zero:?}");
    ensure!(past == Ok(2), "deadline(past, ready) gave {past:?}");
    let pending = cx.block_on(
        "awaiting timeout(ZERO) around a pending future",
        timeout(rt, Duration::ZERO, std::future::pending::<()>()),
    )?;
    trace.record(format!("timeout(ZERO, pending) gave {pending:?}"));
    ensure!(
        pending == Err(Elapsed::new()),
        "timeout(ZERO, pending) gave {pending:?}"
    );
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
        let (at, until_end) = cx.block_on("sleeping until an instant", async {
            let at = rt.now() + d;
            rt.sleep_until(at).await;
            (at, rt.now())
        })?;
        cx.trace.record(format!(
            "{ms} ms: sleep not early: {}; sleep_until not early: {}",
            end >= start + d,
            until_end >= at
        ));
        ensure!(
            end >= start + d,
            "sleep({d:?}) completed after only {:?}",
            end - start
        );
        ensure!(
            until_end >= at,
            "sleep_until completed {:?} before its deadline",
            at - until_end
        );
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
    cx.trace
        .record(format!("deadline gave {out:?}; not early: {}", end >= at));
    ensure!(
        out == Err(Elapsed::new()),
        "expected Err(Elapsed), got {out:?}"
    );
    ensure!(
        end >= at,
        "the deadline elapsed {:?} before its instant",
        at - end
    );
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
    trace.record(format!(
        "timeout(10 ms, sleep(MAX)) gave {forever:?}; timeout(MAX, 1 ms sleep) gave {unlimited:?}"
    ));
    ensure!(
        forever == Err(Elapsed::new()),
        "sleep(Duration::MAX) completed"
    );
    ensure!(
        unlimited == Ok(3),
        "timeout(Duration::MAX, ..) gave {unlimited:?}"
    );
    Ok(())
}
