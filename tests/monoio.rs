//! The monoio adapter beyond the conformance suite: `yield_now` loops
//! that let other tasks and timers in, spawns from other threads and from outside `block_on`, a nested
//! `block_on`, and blocking work.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use cancelkit::blocking::SpawnBlockingExt;
use cancelkit::local::LocalSpawnerExt;
use cancelkit::{JoinError, Runtime, SpawnerExt, rt::Monoio};
use futures_lite::future;

#[path = "support/panic_site.rs"]
mod panic_site;

#[path = "support/bounded.rs"]
mod bounded;
use bounded::{LIMIT, bounded};

/// monoio runs a task that woke itself first again, ahead of every other;
/// through cancelkit, a `yield_now` loop waiting for another task lets it
/// run — in `block_on` and in a task alike.
#[test]
fn a_yield_loop_waiting_for_another_task_lets_it_run() {
    let rt = Monoio::new().unwrap();
    let (set, waited) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let setter = rt.spawn_local({
        let set = set.clone();
        async move { set.set(true) }
    });
    let waiter = rt.spawn_local({
        let (set, waited) = (set.clone(), waited.clone());
        async move {
            while !set.get() {
                future::yield_now().await;
            }
            waited.set(true);
        }
    });
    rt.block_on(bounded("the yield loops", async {
        while !waited.get() {
            future::yield_now().await;
        }
    }));
    rt.block_on(async {
        setter.await.unwrap();
        waiter.await.unwrap();
    });
}

/// monoio takes in wake-ups from other threads (here, async-io's timer)
/// only when its run queue is empty; a `yield_now` loop keeps it full. The
/// loop's wait for a task that sleeps must still end.
#[test]
fn a_yield_loop_waiting_for_a_task_that_sleeps_ends() {
    use cancelkit::Timer;
    // On a thread of its own, watched from here: a runtime that never
    // takes the timer's wake-up in hangs rather than fails.
    let (done, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = Monoio::new().unwrap();
        let set = Rc::new(Cell::new(false));
        let sleeper = rt.spawn_local({
            let (set, rt) = (set.clone(), rt.clone());
            async move {
                rt.sleep(Duration::from_millis(1)).await;
                set.set(true);
            }
        });
        rt.block_on(async {
            while !set.get() {
                future::yield_now().await;
            }
        });
        rt.block_on(sleeper).unwrap();
        done.send(()).unwrap();
    });
    ended
        .recv_timeout(LIMIT)
        .expect("the yield loop never saw the timer's task finish");
}

#[test]
fn send_spawns_from_another_thread_run_on_the_runtimes_thread() {
    let rt = Monoio::new().unwrap();
    let home = std::thread::current().id();
    let remote = rt.clone();
    let task = std::thread::spawn(move || remote.spawn(async { std::thread::current().id() }))
        .join()
        .unwrap();
    let ran_on = rt
        .block_on(bounded("the spawn from elsewhere", task))
        .unwrap();
    assert_eq!(ran_on, home);
}

#[test]
fn a_task_spawned_outside_block_on_starts_when_it_runs() {
    let rt = Monoio::new().unwrap();
    let started = Rc::new(Cell::new(false));
    let task = rt.spawn_local({
        let started = started.clone();
        async move { started.set(true) }
    });
    assert!(!started.get());
    rt.block_on(task).unwrap();
    assert!(started.get());
}

#[test]
fn spawns_queued_from_another_thread_are_cancelled_when_the_runtime_is_dropped() {
    let rt = Monoio::new().unwrap();
    let remote = rt.clone();
    let task = std::thread::spawn(move || remote.spawn(async { 1 }))
        .join()
        .unwrap();
    drop(rt); // never ran: the spawn is still queued
    assert!(matches!(future::block_on(task), Err(JoinError::Cancelled)));
}

#[test]
fn block_on_inside_a_task_panics_at_the_callers_line() {
    let rt = Monoio::new().unwrap();
    let mut line = 0;
    let (message, at) = panic_site::panic_of("tests/monoio.rs", || {
        rt.block_on(async {
            line = std::panic::Location::caller().line() + 1;
            rt.block_on(async {});
        });
    });
    assert_eq!(at, line, "{message}");
    assert!(message.contains("`.await` the future instead"), "{message}");
}

#[test]
fn blocking_work_starts_while_the_runtime_is_not_running() {
    let rt = Monoio::new().unwrap();
    let (started, has_started) = mpsc::channel();
    let work = rt.spawn_blocking(move |_| started.send(()).unwrap());
    has_started
        .recv_timeout(LIMIT)
        .expect("the blocking closure waited for the runtime to run");
    rt.block_on(work).unwrap();
}
