//! Measures what the runtimes do **natively** — without cancelkit — when a
//! task handle is dropped and when a task panics. These are the facts that
//! motivate cancelkit; the README quotes this example's output.
//!
//! ```text
//! cargo run --example native --all-features
//! ```

#[path = "cli/mod.rs"]
mod cli;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_lite::FutureExt as _;

const TICK: Duration = Duration::from_millis(20);

/// Ticks before the drop, ticks 200 ms after it.
fn report(runtime: &str, handle: &str, before: usize, after: usize) {
    let verdict = if after > before {
        "DETACHES: the task kept running"
    } else {
        "cancels: the task stopped"
    };
    println!("{runtime:<10} drop {handle:<22} ticks {before} -> {after} 200 ms later: {verdict}");
}

async fn ticker(ticks: Arc<AtomicUsize>) {
    loop {
        ticks.fetch_add(1, Ordering::SeqCst);
        async_io::Timer::after(TICK).await;
    }
}

fn wait_for(ticks: &AtomicUsize, n: usize) -> usize {
    while ticks.load(Ordering::SeqCst) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    ticks.load(Ordering::SeqCst)
}

fn drops() {
    // tokio
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let handle = rt.spawn(ticker(ticks.clone()));
    let before = wait_for(&ticks, 3);
    drop(handle);
    std::thread::sleep(Duration::from_millis(200));
    report("tokio", "JoinHandle", before, ticks.load(Ordering::SeqCst));
    drop(rt);

    // async-std
    let ticks = Arc::new(AtomicUsize::new(0));
    let handle = async_std::task::spawn(ticker(ticks.clone()));
    let before = wait_for(&ticks, 3);
    drop(handle);
    std::thread::sleep(Duration::from_millis(200));
    report(
        "async-std",
        "JoinHandle",
        before,
        ticks.load(Ordering::SeqCst),
    );

    // smol (async-executor, run by a background thread)
    let ex = Arc::new(async_executor::Executor::new());
    let stop = cancelkit::CancelToken::new();
    let runner = {
        let (ex, stop) = (ex.clone(), stop.clone());
        std::thread::spawn(move || async_io::block_on(ex.run(stop.cancelled_owned())))
    };
    let ticks = Arc::new(AtomicUsize::new(0));
    let task = ex.spawn(ticker(ticks.clone()));
    let before = wait_for(&ticks, 3);
    drop(task);
    std::thread::sleep(Duration::from_millis(200));
    report("smol", "Task", before, ticks.load(Ordering::SeqCst));
    stop.cancel();
    runner.join().unwrap();
}

fn describe_await<T: std::fmt::Debug, E: std::fmt::Debug>(
    caught: std::thread::Result<Result<T, E>>,
) -> String {
    match caught {
        Ok(Ok(v)) => format!("await returned Ok({v:?})"),
        Ok(Err(e)) => format!("await returned Err({e:?})"),
        Err(_) => "the panic was re-thrown at the awaiter".into(),
    }
}

fn panics() {
    // Keep the output readable: the hook would print each panic.
    std::panic::set_hook(Box::new(|_| {}));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let caught = rt.block_on(
        AssertUnwindSafe(async { rt.spawn(async { panic!("boom") }).await }).catch_unwind(),
    );
    println!("{:<10} panic in task: {}", "tokio", describe_await(caught));

    let caught = async_std::task::block_on(
        AssertUnwindSafe(async {
            async_std::task::spawn(async { panic!("boom") }).await;
            Ok::<(), ()>(())
        })
        .catch_unwind(),
    );
    println!(
        "{:<10} panic in task: {}",
        "async-std",
        describe_await(caught)
    );

    let ex = async_executor::Executor::new();
    let caught = async_io::block_on(
        ex.run(
            AssertUnwindSafe(async {
                ex.spawn(async { panic!("boom") }).await;
                Ok::<(), ()>(())
            })
            .catch_unwind(),
        ),
    );
    println!("{:<10} panic in task: {}", "smol", describe_await(caught));

    // A panic in a task nobody awaits (handle dropped or detached).
    let rt = tokio::runtime::Runtime::new().unwrap();
    drop(rt.spawn(async { panic!("boom") }));
    let after = rt.block_on(async {
        tokio::time::sleep(TICK).await;
        rt.spawn(async { 1 }).await.is_ok()
    });
    println!(
        "{:<10} unawaited panic: swallowed; runtime still spawns tasks: {after}",
        "tokio"
    );

    drop(async_std::task::spawn(async { panic!("boom") }));
    std::thread::sleep(TICK);
    let after = std::panic::catch_unwind(|| {
        async_std::task::block_on(async_std::task::spawn(async { 1 })) == 1
    });
    println!(
        "{:<10} unawaited panic: runtime still spawns tasks: {}",
        "async-std",
        after.unwrap_or(false)
    );

    let ex = async_executor::Executor::new();
    ex.spawn(async { panic!("boom") }).detach();
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
        async_io::block_on(ex.run(async_io::Timer::after(TICK)))
    }));
    println!(
        "{:<10} detached panic: {}",
        "smol",
        if caught.is_err() {
            "re-thrown out of the thread running the executor"
        } else {
            "swallowed"
        }
    );

    // And cancelkit, on all three: the same answer everywhere.
    use cancelkit::{Runtime, SpawnerExt};
    let ck = |name: &str, out: Result<(), cancelkit::JoinError>| {
        println!(
            "{:<10} panic in task: await returned {out:?}",
            format!("ck/{name}")
        );
    };
    let rt = cancelkit::rt::Tokio::new().unwrap();
    ck("tokio", rt.block_on(rt.spawn(async { panic!("boom") })));
    let rt = cancelkit::rt::Smol::new().unwrap();
    ck("smol", rt.block_on(rt.spawn(async { panic!("boom") })));
    let rt = cancelkit::rt::AsyncStd::current().unwrap();
    ck("async-std", rt.block_on(rt.spawn(async { panic!("boom") })));
    let _ = std::panic::take_hook();
}

fn main() {
    cli::Args::none(
        "Usage: cargo run --example native --all-features\n\
         \n\
         Shows what tokio, smol and async-std do natively when a task handle is\n\
         dropped and when a task panics, then what cancelkit does. Takes no arguments.",
    );
    println!("Dropping a task's handle, natively:");
    drops();
    println!();
    println!("A panic inside a spawned task, natively (and through cancelkit):");
    panics();
}
