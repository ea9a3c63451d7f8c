//! The simulation runtime and the checkers built on it, demonstrated on the
//! bugs they exist to catch.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cancelkit::sim::{Sim, check_cancel_safety, check_seeds, mark};
use cancelkit::{CancelToken, Runtime, SpawnerExt, Timer, timeout};
use futures_lite::future::yield_now;

// ===== a reader that is not cancel safe, and its fix =====

/// A byte channel fed by a producer task that pauses between bytes, and
/// what the reader under test delivered.
struct Link {
    rx: async_channel::Receiver<u8>,
    /// Bytes the producer has sent so far.
    sent: Arc<AtomicUsize>,
    frames: Vec<[u8; 2]>,
    /// Where the cancel-safe reader keeps a half-read frame.
    partial: Option<u8>,
}

fn link(sim: &Sim) -> Link {
    let (tx, rx) = async_channel::unbounded();
    let pause = Duration::from_millis(5);
    let sent = Arc::new(AtomicUsize::new(0));
    sim.spawn({
        let (sim, sent) = (sim.clone(), sent.clone());
        async move {
            for b in 0..4u8 {
                tx.send(b).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
                sim.sleep(pause).await;
            }
        }
    })
    .detach();
    Link {
        rx,
        sent,
        frames: Vec::new(),
        partial: None,
    }
}

/// Every byte sent is still in the channel, half-read, or delivered.
fn nothing_lost(_: &Sim, link: &mut Link) -> Result<(), String> {
    let left = std::iter::from_fn(|| link.rx.try_recv().ok()).count();
    let accounted = left + usize::from(link.partial.is_some()) + 2 * link.frames.len();
    let sent = link.sent.load(Ordering::SeqCst);
    if accounted == sent {
        Ok(())
    } else {
        Err(format!("{} byte(s) lost", sent - accounted))
    }
}

const SECOND_READ_LINE: u32 = line!() + 7;

/// Reads two frames of two bytes. Not cancel safe: the first byte of a
/// frame lives in a local across the second read.
async fn read_frames_buggy(link: &mut Link) {
    for _ in 0..2 {
        let a = mark(link.rx.recv()).await.unwrap();
        let b = mark(link.rx.recv()).await.unwrap(); // SECOND_READ_LINE
        link.frames.push([a, b]);
    }
}

/// The same, keeping the half-read frame in state that outlives the future.
async fn read_frames_safe(link: &mut Link) {
    while link.frames.len() < 2 {
        let a = match link.partial {
            Some(a) => a,
            None => *link.partial.insert(mark(link.rx.recv()).await.unwrap()),
        };
        let b = mark(link.rx.recv()).await.unwrap();
        link.partial = None;
        link.frames.push([a, b]);
    }
}

#[test]
fn the_checker_catches_a_reader_that_loses_data_at_the_right_await() {
    let violation = check_cancel_safety(
        link,
        async |_, l: &mut Link| read_frames_buggy(l).await,
        nothing_lost,
    )
    .unwrap_err();
    assert_eq!(violation.message, "1 byte(s) lost");
    let location = violation.location.expect("the await was marked");
    assert_eq!(location.file(), file!());
    assert_eq!(location.line(), SECOND_READ_LINE, "{violation}");
    assert!(violation.at >= 1 && violation.at <= violation.of);
}

#[test]
fn its_cancel_safe_rewrite_passes_at_every_point() {
    let checked = check_cancel_safety(
        link,
        async |_, l: &mut Link| read_frames_safe(l).await,
        nothing_lost,
    )
    .unwrap();
    assert!(checked.points >= 4, "every byte waited for: {checked:?}");
}

#[test]
fn cancelkits_timeout_around_the_safe_reader_passes_too() {
    check_cancel_safety(
        link,
        async |sim: &Sim, l: &mut Link| {
            let _ = timeout(sim, Duration::from_secs(1), read_frames_safe(l)).await;
        },
        nothing_lost,
    )
    .unwrap();
}

#[test]
fn cancel_token_cancelled_is_cancel_safe() {
    // Invariant: after a waiter gives up at any point, the token still
    // works — a new waiter is woken by the cancel, no wake-up was lost.
    let checked = check_cancel_safety(
        |sim: &Sim| {
            let token = CancelToken::new();
            sim.spawn({
                let (sim, token) = (sim.clone(), token.clone());
                async move {
                    sim.sleep(Duration::from_millis(10)).await;
                    token.cancel();
                }
            })
            .detach();
            token
        },
        async |_, token: &mut CancelToken| mark(token.cancelled()).await,
        |sim: &Sim, token: &mut CancelToken| {
            sim.try_block_on(token.cancelled())
                .map_err(|deadlock| format!("a later waiter was never woken: {deadlock}"))
        },
    )
    .unwrap();
    assert_eq!(checked.points, 1);
}

// ===== seeds =====

/// Two tasks increment a counter with a suspension between read and write.
fn racy_increments(sim: &Sim) -> u32 {
    let counter = Arc::new(Mutex::new(0u32));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            sim.spawn(async move {
                let seen = *counter.lock().unwrap();
                yield_now().await;
                *counter.lock().unwrap() = seen + 1;
            })
        })
        .collect();
    sim.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    *counter.lock().unwrap()
}

#[test]
fn a_failing_seed_is_reported_and_replays_the_same_failure() {
    let body = |sim: &Sim| assert_eq!(racy_increments(sim), 2, "lost update");
    let failure = check_seeds(0..256, body).unwrap_err();
    assert!(failure.message.contains("lost update"), "{failure}");
    for _ in 0..3 {
        assert_eq!(racy_increments(&Sim::with_seed(failure.seed)), 1, "replays");
    }
    // Some seed gets lucky: the schedules really differ.
    assert!((0..256).any(|seed| racy_increments(&Sim::with_seed(seed)) == 2));
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    fn schedule(seed: u64) -> Vec<usize> {
        let sim = Sim::with_seed(seed);
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let order = order.clone();
                sim.spawn(async move {
                    for _ in 0..3 {
                        order.lock().unwrap().push(i);
                        yield_now().await;
                    }
                })
            })
            .collect();
        sim.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        Arc::try_unwrap(order)
            .expect("the finished tasks dropped their clones")
            .into_inner()
            .unwrap()
    }
    assert_eq!(schedule(42), schedule(42));
    assert!((0..16).any(|seed| schedule(seed) != schedule(42)));
}

// ===== time and deadlocks =====

#[test]
fn virtual_time_jumps_to_the_next_timer_and_is_exact() {
    let sim = Sim::new();
    let start = sim.now();
    let woke = Arc::new(Mutex::new(Vec::new()));
    for ms in [300u64, 100, 200] {
        let (sim2, woke) = (sim.clone(), woke.clone());
        sim.spawn(async move {
            sim2.sleep(Duration::from_millis(ms)).await;
            woke.lock().unwrap().push(sim2.now() - start);
        })
        .detach();
    }
    sim.block_on(sim.sleep(Duration::from_secs(3600)));
    let woke = woke.lock().unwrap().clone();
    assert_eq!(
        woke,
        [100, 200, 300].map(Duration::from_millis),
        "woken in deadline order, exactly on time"
    );
    assert_eq!(sim.elapsed(), Duration::from_secs(3600));
}

#[test]
fn a_deadlock_is_an_error_naming_the_stuck_tasks() {
    let sim = Sim::new();
    let never = CancelToken::new();
    for _ in 0..2 {
        let never = never.clone();
        sim.spawn(async move { never.cancelled().await }).detach();
    }
    let deadlock = sim.try_block_on(never.cancelled()).unwrap_err();
    assert_eq!(deadlock.stuck(), ["task #0", "task #1"]);
    let panicked = std::panic::catch_unwind(|| sim.block_on(never.cancelled()));
    let message = *panicked.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("stuck tasks: task #0, task #1"),
        "{message}"
    );
}

// ===== regressions found in review =====

#[test]
fn a_deadline_still_fires_for_children_after_the_parents_clones_are_dropped() {
    let sim = Sim::new();
    // The parent is a temporary: only its child survives.
    let child = CancelToken::with_timeout(&sim, Duration::from_secs(1)).child();
    sim.try_block_on(child.cancelled())
        .expect("the parent's deadline must still fire");
    assert_eq!(sim.elapsed(), Duration::from_secs(1));
    assert_eq!(
        child.reason().unwrap().kind(),
        cancelkit::token::CancelKind::DeadlineExceeded
    );

    // A later own deadline relies on the parent's, even once the parent's
    // clones are gone.
    let sim = Sim::new();
    let parent = CancelToken::with_timeout(&sim, Duration::from_secs(1));
    let later = parent.child_with_deadline(&sim, sim.now() + Duration::from_secs(60));
    drop(parent);
    sim.try_block_on(later.cancelled()).expect("fires at 1 s");
    assert_eq!(sim.elapsed(), Duration::from_secs(1));
}

#[test]
fn a_panicking_make_closure_leaves_no_ghost_task_in_the_group() {
    let sim = Sim::new();
    let group = cancelkit::TaskGroup::new(&sim);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.block_on(async {
            group
                .spawn(|_| -> std::future::Ready<()> { panic!("make failed") })
                .detach();
        })
    }));
    assert!(panicked.is_err());
    assert!(group.is_empty());
    sim.try_block_on(group.wait())
        .expect("wait() must not hang on a task that never existed");
}

#[test]
fn a_queued_task_is_dropped_at_shutdown_without_starting_and_counted() {
    let sim = Sim::new();
    let group = cancelkit::TaskGroup::builder(&sim).limit(1).build();
    let ran = Arc::new(AtomicUsize::new(0));
    let (late, after, report) = sim.block_on(async {
        group
            .spawn(|stop| async move { stop.cancelled().await })
            .detach();
        // No free slot: queued.
        let late = group.spawn({
            let ran = ran.clone();
            move |_| async move {
                ran.fetch_add(1, Ordering::SeqCst);
            }
        });
        yield_now().await;
        let report = group.clone().shutdown(Duration::from_secs(1)).await;
        // Spawned after the shutdown: never runs, `make` is not called.
        let after = group.spawn(|_| -> std::future::Ready<()> { unreachable!("closed") });
        (late.await, after.await, report)
    });
    assert!(late.unwrap_err().is_cancelled());
    assert!(after.unwrap_err().is_cancelled());
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the queued task ran");
    assert_eq!((report.finished, report.not_started), (1, 1), "{report}");
    assert!(report.forced.is_empty());
}

#[test]
fn a_queued_task_starts_when_a_slot_frees() {
    let sim = Sim::new();
    let group = cancelkit::TaskGroup::builder(&sim).limit(1).build();
    let release = CancelToken::new();
    let out = sim.block_on(async {
        let first = group.spawn({
            let release = release.clone();
            move |_| async move {
                release.cancelled().await;
                1
            }
        });
        let second = group.spawn(|_| async { 2 });
        yield_now().await;
        assert!(!second.is_finished(), "it waits for the slot");
        release.cancel();
        (first.await.unwrap(), second.await.unwrap())
    });
    assert_eq!(out, (1, 2));
}

#[test]
fn a_task_hosting_a_handed_over_shield_keeps_its_slot_until_the_shield_ends() {
    let sim = Sim::new();
    let group = cancelkit::TaskGroup::builder(&sim).limit(1).build();
    let (in_shield, release) = (CancelToken::new(), CancelToken::new());
    let first = group.spawn({
        let (sim, in_shield, release) = (sim.clone(), in_shield.clone(), release.clone());
        move |_| async move {
            let shielded = async move {
                in_shield.cancel();
                release.cancelled().await;
            };
            cancelkit::scope::shield(&sim, Duration::from_secs(60), shielded).await;
        }
    });
    sim.block_on(in_shield.cancelled());
    // The shield is handed to the task, which is not finished, and keeps
    // its slot, while the shield runs.
    first.abort();
    let second = group.spawn(|_| async { 2 });
    sim.settle(); // everything that can run has run
    assert!(
        !second.is_finished(),
        "it waits for the shielding task's slot"
    );
    assert!(!first.is_finished(), "the shield still runs");
    release.cancel();
    assert_eq!(sim.block_on(second).unwrap(), 2);
    assert!(sim.block_on(first).unwrap_err().is_cancelled());
}

#[test]
fn a_failed_tasks_slot_frees_even_if_the_fail_fast_cancel_panics() {
    let sim = Sim::new();
    let group = cancelkit::TaskGroup::builder(&sim)
        .limit(1)
        .fail_fast()
        .build();
    group
        .token()
        .on_cancel(|_| panic!("a callback that panics"))
        .forget();
    let failing = group.spawn_fallible("bad", |_| async { Err::<(), _>("boom") });
    let queued = group.spawn(|_| async { 2 });
    let (failing, queued) = sim
        .try_block_on(async { (failing.await, queued.await) })
        .expect("the queued task must get the failed task's slot");
    // The callback's panic is the failed task's (it ran in its report).
    assert!(failing.unwrap_err().is_panic());
    assert_eq!(queued.unwrap(), 2);
}

#[test]
fn an_error_a_task_returns_once_its_token_is_cancelled_is_no_failure() {
    let sim = Sim::new();
    let group = cancelkit::TaskGroup::new(&sim);
    let report = sim.block_on(async {
        group
            .spawn_fallible("stopped", |token| async move {
                token.cancelled().await;
                Err::<(), _>("cancelled, so no failure")
            })
            .detach();
        let broken = group.spawn_fallible("broken", |_| async { Err::<(), _>("a failure") });
        assert!(broken.await.unwrap().is_err());
        group.shutdown(Duration::from_secs(1)).await
    });
    let failed: Vec<_> = report.failures.iter().map(|f| f.task.name()).collect();
    assert_eq!(failed, ["broken"], "{report}");
    assert_eq!(report.finished, 1, "{report}");
}

#[test]
fn a_sim_stays_usable_after_a_caught_panic() {
    let sim = Sim::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.block_on(async { panic!("in the main future") })
    }));
    assert!(caught.is_err());
    assert_eq!(sim.block_on(async { 7 }), 7);
}

// ===== group reports agree with handles =====

/// Ready at once with 7; its destructor panics.
struct ReadyThenPanicsOnDrop;

impl std::future::Future for ReadyThenPanicsOnDrop {
    type Output = u32;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<u32> {
        std::task::Poll::Ready(7)
    }
}

impl Drop for ReadyThenPanicsOnDrop {
    fn drop(&mut self) {
        panic!("destructor panicked");
    }
}

#[test]
fn a_task_whose_destructor_panics_after_completing_is_a_failure_in_the_report() {
    use cancelkit::{JoinError, TaskGroup, group::FailureKind};
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let report = sim.block_on(async {
        let task = group.spawn_named("bomb", |_| ReadyThenPanicsOnDrop);
        match task.await {
            Err(JoinError::Panicked(p)) => {
                assert_eq!(p.downcast_ref::<&str>(), Some(&"destructor panicked"));
            }
            other => panic!("the handle said {other:?}"),
        }
        group.shutdown(Duration::ZERO).await
    });
    assert_eq!(report.failures.len(), 1, "{report}");
    assert_eq!(report.failures[0].kind, FailureKind::Panicked);
    assert_eq!(report.failures[0].message, "destructor panicked");
    assert_eq!(report.failures[0].task.name(), "bomb");
}

#[test]
fn a_forced_task_whose_destructor_panics_is_a_failure_too() {
    use cancelkit::{JoinError, TaskGroup, group::FailureKind};
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("forced destructor panicked");
        }
    }
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let (task, report) = sim.block_on(async {
        let task = group.spawn_named("stubborn", |_| async {
            let _bomb = PanicsOnDrop;
            std::future::pending::<()>().await
        });
        yield_now().await;
        let report = group.shutdown(Duration::from_millis(10)).await;
        (task.await, report)
    });
    assert!(matches!(task, Err(JoinError::Panicked(_))), "{task:?}");
    assert_eq!(report.forced.len(), 1);
    assert_eq!(report.failures.len(), 1, "{report}");
    assert_eq!(report.failures[0].kind, FailureKind::Panicked);
}

#[test]
fn an_error_whose_display_panics_is_the_tasks_panic_in_the_report() {
    use cancelkit::{JoinError, TaskGroup, group::FailureKind};
    struct Unprintable;
    impl std::fmt::Display for Unprintable {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("display panicked")
        }
    }
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let report = sim.block_on(async {
        let task = group.spawn_fallible("odd", |_| async { Err::<(), _>(Unprintable) });
        match task.await {
            Err(JoinError::Panicked(p)) => {
                assert_eq!(p.downcast_ref::<&str>(), Some(&"display panicked"));
            }
            other => panic!("the handle said {:?}", other.map(|_| ())),
        }
        group.shutdown(Duration::ZERO).await
    });
    assert_eq!(report.finished, 0, "{report}");
    assert_eq!(report.failures.len(), 1, "{report}");
    assert_eq!(report.failures[0].kind, FailureKind::Panicked);
    assert_eq!(report.failures[0].message, "display panicked");
    assert_eq!(report.failures[0].task.name(), "odd");
}

#[test]
fn a_group_keeps_its_first_failures_and_counts_the_rest() {
    use cancelkit::TaskGroup;
    let sim = Sim::new();
    let group = TaskGroup::builder(&sim).keep_failures(3).build();
    let report = sim.block_on(async {
        for i in 0..10 {
            let _ = group
                .spawn_fallible("job", move |_| async move { Err::<(), _>(i) })
                .await;
        }
        group.shutdown(Duration::ZERO).await
    });
    let kept: Vec<_> = report.failures.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(kept, ["0", "1", "2"]);
    assert_eq!(report.failures_not_kept, 7);
    assert!(report.to_string().contains("10 failed"), "{report}");
}

// ===== "never" means never =====

#[test]
fn sleeping_for_duration_max_is_a_deadlock_not_thirty_virtual_years() {
    let sim = Sim::new();
    let err = sim
        .try_block_on(sim.sleep(Duration::MAX))
        .expect_err("sleep(Duration::MAX) completed");
    assert!(err.to_string().contains("deadlock"), "{err}");
    assert_eq!(sim.elapsed(), Duration::ZERO, "the clock did not jump");
    // A finite sleep beside it still completes, and the far one stays put.
    let out = sim.block_on(timeout(
        &sim,
        Duration::from_secs(1),
        sim.sleep(Duration::MAX),
    ));
    assert!(out.is_err());
    assert_eq!(sim.elapsed(), Duration::from_secs(1));
}

// ===== busy tasks do not freeze virtual time =====

#[test]
fn a_task_that_only_yields_does_not_freeze_a_groups_grace() {
    use cancelkit::TaskGroup;
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let report = sim.block_on(async {
        group
            .spawn_named("spinner", |_| async {
                loop {
                    yield_now().await;
                }
            })
            .detach();
        group.shutdown(Duration::from_millis(50)).await
    });
    assert_eq!(report.forced.len(), 1, "{report}");
    assert_eq!(
        sim.elapsed(),
        Duration::from_millis(50),
        "exactly the grace"
    );
}

#[test]
fn a_main_future_that_only_yields_still_lets_timers_fire() {
    let sim = Sim::new();
    let slept = sim.spawn({
        let sim = sim.clone();
        async move { sim.sleep(Duration::from_secs(1)).await }
    });
    sim.block_on(async {
        while !slept.is_finished() {
            yield_now().await;
        }
    });
    assert_eq!(sim.elapsed(), Duration::from_secs(1));
}

#[path = "support/panic_site.rs"]
mod panic_site;

#[test]
fn a_limit_of_zero_panics_at_the_callers_line() {
    let sim = Sim::new();
    let mut line = 0;
    let (message, at) = panic_site::panic_of("tests/sim.rs", || {
        line = std::panic::Location::caller().line() + 1;
        let _ = cancelkit::TaskGroup::builder(&sim).limit(0);
    });
    assert_eq!(at, line, "{message}");
    assert!(message.contains("at least 1"), "{message}");
}

#[test]
fn many_tasks_that_make_progress_do_not_move_the_clock() {
    use cancelkit::TaskGroup;
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let report = sim.block_on(async {
        for _ in 0..3_000 {
            group
                .spawn(|stop| async move {
                    // One yield each: progress, not spinning.
                    yield_now().await;
                    stop.cancelled().await
                })
                .detach();
        }
        group.shutdown(Duration::from_secs(5)).await
    });
    assert_eq!(
        (report.finished, report.forced.len()),
        (3_000, 0),
        "{report}"
    );
    assert_eq!(
        sim.elapsed(),
        Duration::ZERO,
        "nothing waited for the grace"
    );
}

#[test]
fn a_never_sleep_stays_never_when_polled_after_the_clock_moved() {
    let sim = Sim::new();
    let never = sim.sleep(Duration::MAX);
    let err = sim
        .try_block_on(async {
            sim.sleep(Duration::from_secs(1)).await;
            never.await
        })
        .expect_err("a Duration::MAX sleep completed");
    assert!(err.to_string().contains("deadlock"), "{err}");
    assert_eq!(sim.elapsed(), Duration::from_secs(1));
}

/// A runtime that, once armed, runs a hook inside `spawn_detached` before
/// spawning: lets a test put an event inside `TaskGroup::spawn`, between
/// the task's entry in the group and its abort handle.
#[derive(Clone)]
struct HookedSpawn {
    sim: Sim,
    hook: Arc<Mutex<Option<Hook>>>,
}

type Hook = Box<dyn FnOnce() + Send>;

impl cancelkit::Spawner for HookedSpawn {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let hook = self.hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        self.sim.spawn_detached(fut);
    }
}

impl Timer for HookedSpawn {
    type Sleep = cancelkit::sim::Sleep;
    fn now(&self) -> std::time::Instant {
        self.sim.now()
    }
    fn sleep_until(&self, deadline: std::time::Instant) -> Self::Sleep {
        self.sim.sleep_until(deadline)
    }
}

#[test]
fn a_task_queued_while_shutdown_begins_is_dropped_not_left_waiting() {
    use cancelkit::TaskGroup;
    use cancelkit::group::ShutdownReport;
    type Shutdown = std::pin::Pin<Box<dyn std::future::Future<Output = ShutdownReport> + Send>>;

    let sim = Sim::new();
    let rt = HookedSpawn {
        sim: sim.clone(),
        hook: Arc::default(),
    };
    let group = TaskGroup::builder(&rt).limit(1).build();
    let shutdown: Arc<Mutex<Option<Shutdown>>> = Arc::default();
    let out = sim.try_block_on(async {
        group
            .spawn(|stop| async move { stop.cancelled().await })
            .detach();
        // The next spawn is queued; while it is handed to the runtime, a
        // shutdown begins (with no grace limit) and dooms it.
        *rt.hook.lock().unwrap() = Some(Box::new({
            let (group, shutdown) = (group.clone(), shutdown.clone());
            move || {
                let mut fut: Shutdown = Box::pin(group.shutdown(Duration::MAX));
                let first =
                    futures_lite::future::block_on(futures_lite::future::poll_once(fut.as_mut()));
                assert!(first.is_none(), "the shutdown waits for the running task");
                *shutdown.lock().unwrap() = Some(fut);
            }
        }));
        let queued = group.spawn(|_| async {});
        let started = shutdown.lock().unwrap().take();
        let report = started.expect("the hook ran").await;
        (queued.await, report)
    });
    let (queued, report) = out.expect("shutdown waited for a doomed task for ever");
    assert!(queued.unwrap_err().is_cancelled());
    assert_eq!((report.finished, report.not_started), (1, 1), "{report}");
}

// ===== the checker and cancel scopes =====

/// A two-step commit: the log record is written, then applied. Cancelled
/// between the two, the store is left half-committed.
#[derive(Default)]
struct Store {
    logged: bool,
    applied: bool,
}

fn commit(sim: &Sim, store: Arc<Mutex<Store>>) -> impl Future<Output = ()> + Send + 'static {
    let sim = sim.clone();
    async move {
        store.lock().unwrap().logged = true;
        mark(sim.sleep(Duration::from_millis(5))).await; // the disk
        store.lock().unwrap().applied = true;
    }
}

fn whole(_: &Sim, store: &mut Arc<Mutex<Store>>) -> Result<(), String> {
    let s = store.lock().unwrap();
    if s.logged && !s.applied {
        Err("logged but not applied".into())
    } else {
        Ok(())
    }
}

#[test]
fn the_checker_finds_a_half_done_commit() {
    let violation = check_cancel_safety(
        |_| Arc::new(Mutex::new(Store::default())),
        async |sim, store: &mut Arc<Mutex<Store>>| commit(sim, store.clone()).await,
        whole,
    )
    .unwrap_err();
    assert_eq!((violation.at, violation.of), (1, 1));
    assert!(violation.location.is_some());
}

#[test]
fn a_shielded_commit_is_not_a_cancellation_point() {
    let checked = check_cancel_safety(
        |_| Arc::new(Mutex::new(Store::default())),
        async |sim, store: &mut Arc<Mutex<Store>>| {
            let commit = commit(sim, store.clone());
            cancelkit::scope::shield(sim, Duration::from_secs(1), commit).await
        },
        whole,
    )
    .unwrap();
    // The point inside the shield was tried, and the shield, kept by the
    // checker's task, finished the commit.
    assert_eq!(checked.points, 1);
}

#[test]
fn the_checker_runs_cleanup_when_it_cancels() {
    // Without the cleanup, cancelling while logged leaves it half done; the
    // cleanup rolls the log back.
    let checked = check_cancel_safety(
        |_| Arc::new(Mutex::new(Store::default())),
        async |sim, store: &mut Arc<Mutex<Store>>| {
            let rollback = {
                let store = store.clone();
                move |_| async move { store.lock().unwrap().logged = false }
            };
            cancelkit::scope::cleanup(sim, Duration::from_secs(1), rollback).unwrap();
            commit(sim, store.clone()).await
        },
        whole,
    )
    .unwrap();
    assert_eq!(checked.points, 1);
}

#[test]
fn the_checker_runs_what_the_future_hosts_while_it_runs() {
    // A shield dropped by a timeout finishes beside the future, which then
    // waits for its effect: the checker must keep the shield going, as a
    // task would, instead of calling it a deadlock.
    let checked = check_cancel_safety(
        |_| CancelToken::new(),
        async |sim, flushed: &mut CancelToken| {
            let flush = {
                let (sim, flushed) = (sim.clone(), flushed.clone());
                async move {
                    sim.sleep(Duration::from_millis(10)).await;
                    flushed.cancel();
                }
            };
            let shielded = cancelkit::scope::shield(sim, Duration::from_secs(1), flush);
            let _ = timeout(sim, Duration::from_millis(1), shielded).await;
            flushed.cancelled().await;
        },
        |_, _: &mut CancelToken| Ok(()),
    )
    .unwrap();
    assert!(checked.points >= 2);
}

/// A task's recorded spawn site is the caller's line, through every way of
/// spawning into a group (they share one `#[track_caller]` path).
#[test]
fn group_and_task_set_tasks_record_the_callers_line() {
    use cancelkit::TaskGroup;
    use cancelkit::group::TaskSet;
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let mut set = TaskSet::new(&group);
    let group_line = line!() + 2; // (a method call's site is its name's line)
    group
        .spawn_named("grouped", |_| std::future::pending::<()>())
        .detach();
    let set_line = line!() + 1;
    set.spawn_named("in a set", |_| std::future::pending::<()>());
    let report = sim.block_on(group.clone().shutdown(Duration::from_secs(1)));
    let mut sites: Vec<(String, u32)> = report
        .forced
        .iter()
        .inspect(|t| assert_eq!(t.location.file(), file!(), "{}", t.name()))
        .map(|t| (t.name().into_owned(), t.location.line()))
        .collect();
    sites.sort();
    assert_eq!(
        sites,
        [
            ("grouped".to_string(), group_line),
            ("in a set".to_string(), set_line)
        ]
    );
    drop(set);
}

// ===== blocking work in lockstep with the simulation =====

/// A blocking closure that steps once per 10 ms `wait_timeout` until the
/// main future aborts it at 1 s of virtual time: how many steps it made and
/// when (virtually) it saw the abort.
fn stepping_closure(seed: u64) -> (u32, Duration) {
    use cancelkit::blocking::SpawnBlockingExt;
    let sim = Sim::with_seed(seed);
    let job = sim.spawn_blocking({
        let sim = sim.clone();
        move |token| {
            let mut steps = 0;
            while !token.wait_timeout(Duration::from_millis(10)) {
                steps += 1;
            }
            (steps, sim.elapsed())
        }
    });
    sim.block_on(async {
        sim.sleep(Duration::from_secs(1)).await;
        job.abort();
        job.await.unwrap()
    })
}

#[test]
fn blocking_work_waits_in_virtual_time_and_replays_exactly() {
    for seed in 0..10 {
        let (steps, seen_at) = stepping_closure(seed);
        assert_eq!(seen_at, Duration::from_secs(1), "seed {seed}");
        assert!((99..=100).contains(&steps), "seed {seed}: {steps} steps");
        assert_eq!(
            stepping_closure(seed),
            (steps, seen_at),
            "seed {seed} replayed differently"
        );
    }
}

#[test]
fn a_task_cancels_a_blocking_closure_that_waits_for_ever() {
    use cancelkit::blocking::SpawnBlockingExt;
    let sim = Sim::new();
    let job = sim.spawn_blocking(|token| token.wait_timeout(Duration::MAX));
    let canceller = sim.spawn({
        let sim = sim.clone();
        async move {
            sim.sleep(Duration::from_secs(5)).await;
            job.abort();
            job.await
        }
    });
    let woke = sim.block_on(canceller).unwrap();
    assert!(matches!(woke, Ok(true)), "{woke:?}");
    assert_eq!(sim.elapsed(), Duration::from_secs(5));
}

#[test]
fn blocking_work_the_sim_never_ran_is_dropped_unrun_at_shutdown() {
    use cancelkit::blocking::SpawnBlockingExt;
    use std::sync::atomic::AtomicBool;
    let sim = Sim::new();
    let ran = Arc::new(AtomicBool::new(false));
    let job = sim.spawn_blocking({
        let ran = ran.clone();
        move |_| ran.store(true, Ordering::SeqCst)
    });
    drop(sim); // never inside block_on: the closure never had a turn
    let out = futures_lite::future::block_on(job);
    assert!(
        matches!(out, Err(cancelkit::JoinError::Cancelled)),
        "{out:?}"
    );
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn a_blocking_closure_nothing_can_wake_is_a_deadlock() {
    use cancelkit::blocking::SpawnBlockingExt;
    let sim = Sim::new();
    let job = sim.spawn_blocking(|token| token.wait_timeout(Duration::MAX));
    let err = sim.try_block_on(job).unwrap_err();
    assert_eq!(err.stuck(), ["task #0"]);
}

/// Runs `f` on a thread of its own and fails, instead of hanging, if it
/// takes more than 20 s.
fn within_20_s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(20))
        .expect("hung for 20 s")
}

#[test]
fn a_blocking_closure_polling_with_a_zero_timeout_does_not_freeze_the_sim() {
    use cancelkit::blocking::SpawnBlockingExt;
    let (cancelled, elapsed) = within_20_s(|| {
        let sim = Sim::new();
        let job = sim.spawn_blocking(|token| {
            while !token.wait_timeout(Duration::ZERO) {}
            true
        });
        let cancelled = sim.block_on(async {
            sim.sleep(Duration::from_secs(1)).await;
            job.abort();
            job.await.unwrap()
        });
        (cancelled, sim.elapsed())
    });
    assert!(cancelled);
    assert_eq!(elapsed, Duration::from_secs(1));
}

#[test]
fn a_blocking_closure_that_unwinds_leaves_deadlocks_reported() {
    use cancelkit::blocking::SpawnBlocking;
    let stuck = within_20_s(|| {
        let sim = Sim::new();
        sim.spawn_blocking_detached(|| panic!("a closure cancelkit did not wrap"));
        let never = CancelToken::new();
        sim.try_block_on(never.cancelled())
            .map_err(|deadlock| deadlock.stuck().len())
    });
    assert_eq!(stuck, Err(0));
}
