//! Blocking work: the cases of [L3](crate#L3) (a closure's synchronous
//! view of its token, and its handle) and [L4](crate#L4) (a group's
//! shutdown reports what ignored it as abandoned), for runtimes with a
//! [`SpawnBlocking`](crate::blocking::SpawnBlocking) pool.
//!
//! The closures signal what they reach through `CancelToken`s, which the
//! case awaits; a closure that must outlive a shutdown waits on a channel
//! the case closes once it has looked, so no pool thread is left behind.

use std::sync::mpsc;

use super::{BlockingCaseRuntime, Result, describe};
use crate::blocking::SpawnBlockingExt;
use crate::conformance::Ctx;
use crate::task::panic_text;
use crate::{CancelToken, JoinError, TaskGroup};

pub(crate) fn l3_blocking_work_sees_its_token_and_its_handle_resolves_when_it_returns<
    R: BlockingCaseRuntime,
>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let patience = cx.config.patience;

    let value = cx.block_on("awaiting blocking work", rt.spawn_blocking(|_| 6 * 7))?;
    trace.record(format!("blocking work gave {}", describe(&value)));
    ensure!(matches!(value, Ok(42)), "got {}", describe(&value));

    // Waits on its token; `abort` cuts the wait short and the closure
    // returns what it saw.
    let started = CancelToken::new();
    let job = rt.spawn_blocking({
        let started = started.clone();
        move |token| {
            // Read before `started`: the case aborts only after it.
            let before = token.is_cancelled();
            started.cancel();
            let woke = token.wait_timeout(patience * 3);
            let kind = token.reason().map(|r| r.kind());
            (before, woke, kind)
        }
    });
    cx.block_on("waiting for blocking work to start", started.cancelled())?;
    job.abort();
    let seen = cx.block_on("awaiting blocking work that was asked to stop", job)?;
    trace.record(format!(
        "aborted blocking work returned: (cancelled before, woken, kind) = {seen:?}"
    ));
    ensure!(
        matches!(
            seen,
            Ok((false, true, Some(crate::token::CancelKind::TaskCancelled)))
        ),
        "blocking work did not see its abort through its token: {seen:?}"
    );

    // Dropping the handle of running work asks too (work dropped before a
    // pool thread picked it up would never start).
    let (started, stopped) = (CancelToken::new(), CancelToken::new());
    let job = rt.spawn_blocking({
        let (started, stopped) = (started.clone(), stopped.clone());
        move |token| {
            started.cancel();
            if token.wait_timeout(patience * 3) {
                stopped.cancel();
            }
        }
    });
    cx.block_on("waiting for blocking work to start", started.cancelled())?;
    drop(job);
    cx.block_on(
        "waiting for blocking work whose handle was dropped to see it",
        stopped.cancelled(),
    )?;
    trace.record("dropping the handle cancelled the work's token");

    let panicked = cx.block_on(
        "awaiting blocking work that panics",
        rt.spawn_blocking(|_| -> u32 { panic!("blocking boom") }),
    )?;
    let text = match &panicked {
        Err(JoinError::Panicked(payload)) => panic_text(&**payload),
        other => describe(other),
    };
    trace.record(format!("panicking blocking work: {text}"));
    ensure!(text == "blocking boom", "a panicking closure gave {text}");
    Ok(())
}

pub(crate) fn l4_shutdown_reports_blocking_work_that_ignores_it_as_abandoned<
    R: BlockingCaseRuntime,
>(
    cx: &Ctx<'_, R>,
) -> Result {
    let (rt, trace) = (&cx.rt, &cx.trace);
    let patience = cx.config.patience;
    let group = TaskGroup::new(rt);
    let (release, released) = mpsc::channel::<()>();
    let (polite_started, stubborn_started, stubborn_ended) =
        (CancelToken::new(), CancelToken::new(), CancelToken::new());
    group
        .spawn_blocking_named("polite", {
            let started = polite_started.clone();
            move |token| {
                started.cancel();
                token.wait_timeout(patience * 3);
            }
        })
        .detach();
    group
        .spawn_blocking_named("stubborn", {
            let (started, ended) = (stubborn_started.clone(), stubborn_ended.clone());
            move |_token| {
                started.cancel();
                // Ignores its token: runs until the case releases it.
                let _ = released.recv_timeout(patience * 3);
                ended.cancel();
            }
        })
        .detach();
    cx.block_on("waiting for the blocking work to start", async {
        polite_started.cancelled().await;
        stubborn_started.cancelled().await;
    })?;
    let report = cx.block_on(
        "shutting down a group with stubborn blocking work (did it wait for it?)",
        // The polite work returns as soon as its token fires; the grace
        // only has to outlast a loaded machine's delays.
        group.clone().shutdown(patience / 10),
    )?;
    let still_running = !stubborn_ended.is_cancelled();
    let abandoned: Vec<_> = report.abandoned.iter().map(|t| t.name()).collect();
    trace.record(format!(
        "shutdown returned: finished {}, forced {}, abandoned {abandoned:?}; the stubborn work \
         still running: {still_running}",
        report.finished,
        report.forced.len()
    ));
    drop(release);
    cx.block_on(
        "waiting for the released blocking work to end",
        stubborn_ended.cancelled(),
    )?;
    trace.record("released, the stubborn work ended");
    ensure!(
        report.finished == 1 && report.forced.is_empty() && abandoned == ["stubborn"],
        "report: {report}"
    );
    ensure!(
        still_running,
        "shutdown waited for blocking work that ignored its token"
    );
    Ok(())
}
