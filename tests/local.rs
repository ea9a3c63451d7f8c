//! The local adapters (`TokioLocal`, `SmolLocal`, `Compio`, `Monoio`) beyond the conformance
//! suite: where a refused local spawn panics and what it says, and a local
//! runtime whose last handle is dropped on another thread.

use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use cancelkit::local::{LocalSpawner, LocalSpawnerExt};
use cancelkit::rt::{SmolLocal, TokioLocal};
use cancelkit::{JoinError, Runtime, Task, TaskGroup};

#[path = "support/panic_site.rs"]
mod panic_site;

const LIMIT: Duration = Duration::from_secs(20);

/// Off the executor's thread, `spawn_local` and `TaskGroup::spawn_local`
/// panic at the caller's line, naming the executor and both threads.
fn refused_at_the_callers_line<R>(rt: &R, executor: &str)
where
    R: Runtime + LocalSpawner + cancelkit::RuntimeHandle,
{
    let home = std::thread::current().id();
    let group = TaskGroup::new(rt);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut line = 0;
            let (message, at) = panic_site::panic_of("tests/local.rs", || {
                line = std::panic::Location::caller().line() + 1;
                rt.spawn_local(async {}).detach();
            });
            assert_eq!(at, line, "{message}");
            assert!(message.contains(executor), "{message}");
            assert!(message.contains(&format!("{home:?}")), "{message}");

            let (message, at) = panic_site::panic_of("tests/local.rs", || {
                line = std::panic::Location::caller().line() + 1;
                group.spawn_local(|_| async {}).detach();
            });
            assert_eq!(at, line, "{message}");
            assert!(message.contains(executor), "{message}");
        });
    });
    assert!(group.is_empty());
}

#[test]
fn tokio_local_refuses_off_thread_spawns_at_the_callers_line() {
    refused_at_the_callers_line(&TokioLocal::new().unwrap(), "TokioLocal's LocalSet");
}

#[test]
fn smol_local_refuses_off_thread_spawns_at_the_callers_line() {
    refused_at_the_callers_line(&SmolLocal::new().unwrap(), "SmolLocal's LocalExecutor");
}

/// The last handle dropped on another thread: that drop returns, and the
/// local tasks are dropped when the executor's own thread ends (their
/// handles then give `Cancelled`).
fn dropped_elsewhere<R, F>(new_runtime: F)
where
    R: Runtime + LocalSpawner + Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (out, handed) = mpsc::channel::<(R, Task<()>)>();
    let (end, ended) = mpsc::channel::<()>();
    let home = std::thread::spawn(move || {
        let rt = new_runtime();
        let task = park_local_task(&rt, Rc::new(()));
        out.send((rt, task)).unwrap();
        // Stay alive until the handle was dropped elsewhere.
        let _ = ended.recv_timeout(LIMIT);
    });
    let (rt, task) = handed.recv_timeout(LIMIT).unwrap();
    let (dropped, has_dropped) = mpsc::channel();
    std::thread::spawn(move || {
        drop(rt);
        dropped.send(()).unwrap();
    });
    has_dropped
        .recv_timeout(LIMIT)
        .expect("dropping the last handle off its thread hung");
    assert!(
        !task.is_finished(),
        "the local task was dropped off its thread"
    );
    end.send(()).unwrap();
    home.join().unwrap();
    let out = awaited(task);
    assert!(
        matches!(out, Some(Err(JoinError::Cancelled))),
        "after its thread ended, the local task gave {out:?}"
    );
}

#[test]
fn tokio_local_dropped_on_another_thread() {
    dropped_elsewhere(|| TokioLocal::new().unwrap());
}

#[test]
fn smol_local_dropped_on_another_thread() {
    dropped_elsewhere(|| SmolLocal::new().unwrap());
}

/// A pending local task that holds a clone of its own runtime, on a thread
/// that ends: the executor is dropped with the thread's storage, the task
/// with it, and the clone's drop finds that storage going away — which
/// must not panic (a panic in a thread-local destructor aborts the
/// process).
fn a_task_holding_its_runtime_when_the_thread_ends<R, F>(new_runtime: F)
where
    R: Runtime + LocalSpawner + Clone + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (out, handed) = mpsc::channel::<Task<()>>();
    let home = std::thread::spawn(move || {
        let rt = new_runtime();
        let task = park_local_task(&rt, rt.clone());
        out.send(task).unwrap();
        // `rt` goes here; the task's clone keeps the executor until the
        // thread's storage is torn down.
    });
    let task = handed.recv_timeout(LIMIT).unwrap();
    home.join().expect("the thread ended without a panic");
    let out = awaited(task);
    assert!(
        matches!(out, Some(Err(JoinError::Cancelled))),
        "the task of an ended thread gave {out:?}"
    );
}

#[test]
fn tokio_local_task_holding_its_runtime_when_the_thread_ends() {
    a_task_holding_its_runtime_when_the_thread_ends(|| TokioLocal::new().unwrap());
}

#[test]
fn smol_local_task_holding_its_runtime_when_the_thread_ends() {
    a_task_holding_its_runtime_when_the_thread_ends(|| SmolLocal::new().unwrap());
}

#[cfg(feature = "compio")]
#[test]
fn compio_refuses_off_thread_spawns_at_the_callers_line() {
    refused_at_the_callers_line(&cancelkit::rt::Compio::new().unwrap(), "a compio runtime");
}

#[cfg(feature = "compio")]
#[test]
fn compio_dropped_on_another_thread() {
    dropped_elsewhere(|| cancelkit::rt::Compio::new().unwrap());
}

#[cfg(feature = "compio")]
#[test]
fn compio_task_holding_its_runtime_when_the_thread_ends() {
    a_task_holding_its_runtime_when_the_thread_ends(|| cancelkit::rt::Compio::new().unwrap());
}

#[cfg(feature = "monoio")]
#[test]
fn monoio_refuses_off_thread_spawns_at_the_callers_line() {
    refused_at_the_callers_line(&cancelkit::rt::Monoio::new().unwrap(), "a monoio runtime");
}

#[cfg(feature = "monoio")]
#[test]
fn monoio_task_holding_its_runtime_when_the_thread_ends() {
    a_task_holding_its_runtime_when_the_thread_ends(|| cancelkit::rt::Monoio::new().unwrap());
}

#[cfg(feature = "monoio")]
#[test]
fn monoio_dropped_on_another_thread() {
    dropped_elsewhere(|| cancelkit::rt::Monoio::new().unwrap());
}

/// The runtime's thread ends with a task holding the last handle (so the
/// runtime goes with the thread's storage) while a spawn from another
/// thread is still queued: both handles resolve `Cancelled`, and the
/// thread ends (an adapter that waited for the queued spawn would hang in
/// the thread's destructor).
fn queued_spawn_when_the_runtime_goes_with_its_thread<R, F>(new_runtime: F)
where
    R: Runtime + LocalSpawner + cancelkit::SpawnerExt + Clone + Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (out, handed) = mpsc::channel::<(Task<()>, Task<u32>)>();
    let home = std::thread::spawn(move || {
        let rt = new_runtime();
        let holder = park_local_task(&rt, rt.clone());
        // Queued from elsewhere while the runtime is not running.
        let remote = rt.clone();
        let queued = std::thread::spawn(move || remote.spawn(async { 1 }))
            .join()
            .unwrap();
        out.send((holder, queued)).unwrap();
    });
    let (holder, queued) = handed.recv_timeout(LIMIT).unwrap();
    let (ended, has_ended) = mpsc::channel();
    std::thread::spawn(move || ended.send(home.join().is_ok()).unwrap());
    assert_eq!(
        has_ended.recv_timeout(LIMIT),
        Ok(true),
        "the runtime's thread did not end cleanly"
    );
    let holder = awaited(holder);
    assert!(
        matches!(holder, Some(Err(JoinError::Cancelled))),
        "the task holding the runtime gave {holder:?}"
    );
    let queued = awaited(queued);
    assert!(
        matches!(queued, Some(Err(JoinError::Cancelled))),
        "the queued spawn gave {queued:?}"
    );
}

/// Spawns a local task that holds `held` (state that is not `Send`, or a
/// clone of the runtime) and waits for ever; returns once it has started.
fn park_local_task<R, H>(rt: &R, held: H) -> Task<()>
where
    R: Runtime + LocalSpawner,
    H: 'static,
{
    let started = cancelkit::CancelToken::new();
    let task = rt.spawn_local({
        let started = started.clone();
        async move {
            let _held = held;
            started.cancel();
            std::future::pending::<()>().await
        }
    });
    rt.block_on(started.cancelled());
    task
}

/// `task`'s outcome, or `None` if it takes longer than LIMIT.
fn awaited<T>(task: Task<T>) -> Option<Result<T, JoinError>> {
    futures_lite::future::block_on(futures_lite::future::or(
        async { Some(task.await) },
        async {
            async_io::Timer::after(LIMIT).await;
            None
        },
    ))
}

#[cfg(feature = "compio")]
#[test]
fn compio_queued_spawn_when_the_runtime_goes_with_its_thread() {
    queued_spawn_when_the_runtime_goes_with_its_thread(|| cancelkit::rt::Compio::new().unwrap());
}

#[cfg(feature = "monoio")]
#[test]
fn monoio_queued_spawn_when_the_runtime_goes_with_its_thread() {
    queued_spawn_when_the_runtime_goes_with_its_thread(|| cancelkit::rt::Monoio::new().unwrap());
}
