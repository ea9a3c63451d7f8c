//! The tokio adapter refuses what tokio cannot do, at the caller's line,
//! instead of hanging or panicking inside tokio.

use std::panic::Location;

#[path = "support/panic_site.rs"]
mod panic_site;

use cancelkit::rt::Tokio;
use cancelkit::{Runtime, SpawnerExt, Timer};

fn panic_of(f: impl FnOnce()) -> (String, u32) {
    panic_site::panic_of("tokio_adapter.rs", f)
}

/// A tokio runtime the test owns (not through cancelkit), with one worker.
fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread tokio runtime the test owns (not through cancelkit).
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn block_on_through_a_handle_to_a_current_thread_runtime_panics_at_the_caller() {
    let runtime = current_thread();
    let rt = Tokio::from_handle(runtime.handle().clone());
    let mut line = 0;
    let (message, at) = panic_of(|| {
        line = Location::caller().line() + 1;
        rt.block_on(rt.spawn(async { 1 })).unwrap();
    });
    assert_eq!(at, line, "{message}");
    assert!(message.contains("Tokio::current_thread()"), "{message}");
    // The same runtime through its own block_on works.
    assert_eq!(runtime.block_on(rt.spawn(async { 1 })).unwrap(), 1);
}

#[test]
fn tokio_current_inside_a_current_thread_runtime_cannot_block_on_from_outside() {
    let runtime = current_thread();
    let rt = runtime.block_on(async { Tokio::current().unwrap() });
    let (message, _) = panic_of(|| rt.block_on(rt.sleep(std::time::Duration::from_millis(5))));
    assert!(message.contains("current-thread"), "{message}");
}

#[test]
fn block_on_inside_a_runtime_panics_at_the_caller_and_says_await() {
    let runtime = multi_thread();
    let mut line = 0;
    let (message, at) = panic_of(|| {
        runtime.block_on(async {
            let rt = Tokio::current().unwrap();
            line = Location::caller().line() + 1;
            rt.block_on(async {});
        })
    });
    assert_eq!(at, line, "{message}");
    assert!(message.contains(".await"), "{message}");
}

#[test]
fn block_on_through_a_handle_to_a_multi_thread_runtime_works() {
    let runtime = multi_thread();
    let rt = Tokio::from_handle(runtime.handle().clone());
    assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2);
    rt.block_on(rt.sleep(std::time::Duration::from_millis(1)));
}

#[test]
fn a_deadline_never_fires_once_its_runtime_is_gone() {
    let rt = Tokio::current_thread().unwrap();
    let token = cancelkit::CancelToken::with_timeout(&rt, std::time::Duration::from_millis(1));
    let deadline = token.deadline();
    drop(rt); // its timer task is dropped with it
    // Real time passes beyond the deadline; nothing is left to fire it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!token.is_cancelled());
    assert_eq!(token.deadline(), deadline, "still reported");
}

#[test]
fn block_on_from_a_blocking_thread_of_the_runtime_works() {
    let runtime = multi_thread();
    let rt = Tokio::from_handle(runtime.handle().clone());
    let out = runtime.block_on(async move {
        // Sync code on tokio's blocking pool, which has entered the
        // runtime's context, may block on it (tokio allows it too).
        tokio::task::spawn_blocking(move || rt.block_on(rt.spawn(async { 5 })).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(out, 5);
}

#[test]
fn a_panic_of_the_future_itself_passes_through_unchanged() {
    let runtime = multi_thread();
    let rt = Tokio::from_handle(runtime.handle().clone());
    // From a blocking thread (inside the runtime's context), where
    // block_on watches for tokio's refusal: other panics are not its own.
    let err = runtime.block_on(async move {
        tokio::task::spawn_blocking(move || rt.block_on(async { panic!("the future's own panic") }))
            .await
            .unwrap_err()
    });
    let payload = err.into_panic();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the future's own panic")
    );
}
