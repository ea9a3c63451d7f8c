//! The suite must be able to fail. These adapters are each wrong in one way
//! an adapter author could plausibly be wrong, and the cases of the contract
//! line they break must report it — while cases they do not touch still
//! pass, so the suite is not merely failing everything.

use std::future::Future;
use std::time::{Duration, Instant};

use cancelkit::conformance::{self, Config};
use cancelkit::rt::Tokio;
use cancelkit::{Runtime, Spawner, Timer};

/// Runs every case on `new_runtime`; returns (failed, passed) case names.
fn outcome<R, F>(new_runtime: F) -> (Vec<&'static str>, Vec<&'static str>)
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Clone + Send + 'static,
{
    // Short patience: the broken behaviours show up as hangs, and we do not
    // want to wait ten seconds for each.
    let config = Config::default().patience(Duration::from_millis(500));
    let (mut failed, mut passed) = (Vec::new(), Vec::new());
    for case in conformance::cases::<R>() {
        match conformance::run(new_runtime.clone(), &case, &config) {
            Ok(_) => passed.push(case.name()),
            Err(failure) => {
                eprintln!("expected-or-not failure: {failure}");
                failed.push(case.name());
            }
        }
    }
    (failed, passed)
}

fn assert_all_in(names: &[&str], set: &[&str], what: &str) {
    for name in names {
        assert!(set.contains(name), "{name} should have {what}; it did not");
    }
}

// ===== a spawner that is slow to act on wake-ups =====

/// `spawn_detached` is the only thing an adapter writes, so the handle
/// semantics cannot be overridden; what an adapter can still get wrong is
/// how it runs what it is given. This one batches wake-ups: a woken task is
/// polled again only five seconds later (as a coarse "tick" executor
/// would). A dropped `Task` wakes its task to drop the future, so D1's
/// "promptly" breaks.
#[derive(Clone)]
struct SlowToWake(Tokio);

/// Forwards a wake-up five seconds late, from a thread of its own. Five
/// seconds is ten times the suite's patience here, and longer than a case
/// runs: a late wake-up from an earlier event (the task's own start) can
/// never land inside D1's window and re-poll the dropped task in time.
/// (With one second, it did, about one run in fifteen.)
struct LateWaker(std::task::Waker);

const LATE: Duration = Duration::from_secs(5);

impl std::task::Wake for LateWaker {
    fn wake(self: std::sync::Arc<Self>) {
        let waker = self.0.clone();
        std::thread::spawn(move || {
            std::thread::sleep(LATE);
            waker.wake();
        });
    }
}

impl Spawner for SlowToWake {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut fut = Box::pin(fut);
        self.0.spawn_detached(std::future::poll_fn(move |cx| {
            let late = std::task::Waker::from(std::sync::Arc::new(LateWaker(cx.waker().clone())));
            fut.as_mut()
                .poll(&mut std::task::Context::from_waker(&late))
        }));
    }
}

impl Timer for SlowToWake {
    type Sleep = <Tokio as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.0.sleep_until(deadline)
    }
}

impl Runtime for SlowToWake {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

#[test]
fn suite_catches_a_spawner_slow_to_act_on_wake_ups() {
    let (failed, passed) = outcome(|| SlowToWake(Tokio::new().unwrap()));
    assert_all_in(&["d1_dropping_task_cancels_it"], &failed, "failed");
    // Cases whose tasks are never woken from elsewhere still pass.
    assert_all_in(
        &[
            "f1_clones_share_one_idempotent_flag",
            "t2_ready_future_wins_even_at_zero",
            "t3_sleep_never_completes_early",
        ],
        &passed,
        "passed",
    );
}

// ===== an early timer =====

/// A timer that ignores its deadline and fires at once: the extreme of a
/// units bug that turns "never early" into "always early". (At once, not a
/// little early, so that scheduling delays on a loaded machine cannot hide
/// it: a 20 ms sleep would have to be delayed by 20 ms.)
#[derive(Clone)]
struct EarlyTimer(Tokio);

impl Spawner for EarlyTimer {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn_detached(fut);
    }
}

impl Timer for EarlyTimer {
    type Sleep = <Tokio as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let _ = deadline;
        self.0.sleep_until(self.0.now())
    }
}

impl Runtime for EarlyTimer {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

#[test]
fn suite_catches_a_timer_that_fires_early() {
    let (failed, passed) = outcome(|| EarlyTimer(Tokio::new().unwrap()));
    assert_all_in(
        &[
            "t1_timeout_elapses_after_dropping_the_future",
            "t3_sleep_never_completes_early",
            "t3_deadline_elapses_at_its_instant",
            "f6_deadline_fires_not_early_as_deadline_exceeded",
            // Graces and nested scopes that end at once (S1 fails too, but
            // only when the grace wins a race with the case's own timer).
            "s2_a_shield_past_its_grace_is_dropped_and_reported",
            "s3_cleanup_has_its_own_deadline",
            "s5_move_on_after_expires_and_spares_the_outer_scope",
        ],
        &failed,
        "failed",
    );
    assert_all_in(
        &[
            "d2_detached_task_runs_to_completion",
            "d3_await_gives_the_output",
            "f2_one_cancel_wakes_every_waiter",
            "s3_cleanup_runs_once_on_cancel_with_the_cause",
            "s4_current_is_cancelled_with_its_task",
        ],
        &passed,
        "passed",
    );
}

// ===== a spawner that cancels instead of detaching =====

/// Forgets smol's `.detach()`: the executor's task handle is dropped at
/// once, which cancels the future before it ever runs.
#[cfg(feature = "smol")]
#[derive(Clone)]
struct ForgotDetach(cancelkit::rt::Smol);

#[cfg(feature = "smol")]
impl Spawner for ForgotDetach {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.0.executor().unwrap().spawn(fut));
    }
}

#[cfg(feature = "smol")]
impl Timer for ForgotDetach {
    type Sleep = <cancelkit::rt::Smol as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.0.sleep_until(deadline)
    }
}

#[cfg(feature = "smol")]
impl Runtime for ForgotDetach {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

#[cfg(feature = "smol")]
#[test]
fn suite_catches_a_spawner_that_cancels_what_it_should_run() {
    let (failed, passed) = outcome(|| ForgotDetach(cancelkit::rt::Smol::new().unwrap()));
    assert_all_in(
        &[
            "d2_detached_task_runs_to_completion",
            "d3_await_gives_the_output",
            "d3_panic_is_caught_and_spares_the_runtime",
        ],
        &failed,
        "failed",
    );
    assert_all_in(
        &[
            "f2_cancelled_is_ready_at_once_when_already_cancelled",
            "t3_sleep_never_completes_early",
        ],
        &passed,
        "passed",
    );
}

// ===== a runtime whose shutdown hangs =====

/// Parks its thread forever when dropped.
struct HangsWhenDropped;

impl Drop for HangsWhenDropped {
    fn drop(&mut self) {
        loop {
            std::thread::park();
        }
    }
}

/// A correct tokio runtime whose last handle never finishes dropping: the
/// kind of hang the watchdog around `block_on` cannot see.
#[derive(Clone)]
struct HangingShutdown {
    rt: Tokio,
    _last: std::sync::Arc<HangsWhenDropped>,
}

impl Spawner for HangingShutdown {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn_detached(fut);
    }
}

impl Timer for HangingShutdown {
    type Sleep = <Tokio as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.rt.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.rt.sleep_until(deadline)
    }
}

impl Runtime for HangingShutdown {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

#[test]
fn suite_reports_a_runtime_whose_drop_hangs_instead_of_hanging() {
    let config = Config::default().patience(Duration::from_millis(200));
    let case = conformance::cases::<HangingShutdown>()
        .into_iter()
        .find(|c| c.name() == "f1_clones_share_one_idempotent_flag")
        .unwrap();
    let failure = conformance::run(
        || HangingShutdown {
            rt: Tokio::current_thread().unwrap(),
            _last: std::sync::Arc::new(HangsWhenDropped),
        },
        &case,
        &config,
    )
    .unwrap_err();
    assert!(
        failure.message().contains("outside the runtime's block_on"),
        "{failure}"
    );
}
