//! The four seed patterns, written once against cancelkit's traits, shared
//! by the `drop_handle`, `shared_flag`, `timeout`, `shutdown_broadcast` and
//! `tour` examples. (Not an example itself: cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`.)
//!
//! Output is deterministic on every runtime: events are ordered by awaiting
//! signals, and where time itself is the point (the timeout) every timer is
//! at least 100 ms away from every other.

#![allow(dead_code)] // each example uses only some of this

#[path = "../cli/mod.rs"]
pub(crate) mod cli;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cancelkit::blocking::SpawnBlocking;
use cancelkit::{CancelToken, Runtime, SpawnerExt, TaskGroup, timeout, token::CancelFutureExt};

/// Where a pattern writes its lines: printed as they come, and kept.
#[derive(Clone, Default)]
pub(crate) struct Out {
    lines: Arc<Mutex<Vec<String>>>,
    echo: bool,
}

impl Out {
    /// An output that prints each line as it is written.
    pub(crate) fn stdout() -> Self {
        Out {
            lines: Arc::default(),
            echo: true,
        }
    }

    /// An output that only keeps the lines.
    pub(crate) fn quiet() -> Self {
        Out::default()
    }

    pub(crate) fn line(&self, line: impl Into<String>) {
        let line = line.into();
        if self.echo {
            println!("{line}");
        }
        self.lines.lock().unwrap().push(line);
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A pattern: something to run on any runtime.
pub(crate) trait Pattern {
    const NAME: &'static str;
    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out);
}

/// Drop the handle: the task stops, on every runtime.
pub(crate) struct DropHandle;

impl Pattern for DropHandle {
    const NAME: &'static str = "drop_handle";

    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out) {
        let ticks = Arc::new(AtomicUsize::new(0));
        let two = CancelToken::new();
        let task = rt.spawn({
            let (rt, out, ticks, two) = (rt.clone(), out.clone(), ticks.clone(), two.clone());
            async move {
                loop {
                    let n = ticks.fetch_add(1, Ordering::SeqCst) + 1;
                    out.line(format!("Task running: {n}"));
                    if n == 2 {
                        two.cancel();
                    }
                    rt.sleep(Duration::from_millis(300)).await;
                }
            }
        });
        rt.block_on(async {
            two.cancelled().await;
            drop(task); // tokio's and async-std's own JoinHandle would detach here
            out.line("Task was canceled.");
            // Keep running for longer than the task's period.
            rt.sleep(Duration::from_millis(700)).await;
        });
        match ticks.load(Ordering::SeqCst) {
            2 => out.line("Nothing more from the task in the 700 ms after the drop."),
            n => out.line(format!("BUG: the task kept running ({n} ticks).")),
        }
    }
}

/// A shared flag: the task runs until a token is cancelled.
pub(crate) struct SharedFlag;

impl Pattern for SharedFlag {
    const NAME: &'static str = "shared_flag";

    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out) {
        let token = CancelToken::new();
        let three = CancelToken::new();
        let task = rt.spawn({
            let (rt, out, token, three) = (rt.clone(), out.clone(), token.clone(), three.clone());
            async move {
                let mut rounds = 0;
                while !token.is_cancelled() {
                    out.line("Task is running...");
                    rounds += 1;
                    if rounds == 3 {
                        // Tell main we have run three rounds; from here on
                        // only the flag matters (so the output does not
                        // depend on how soon main reacts).
                        three.cancel();
                        token.cancelled().await;
                    } else {
                        // Sleep, but wake at once if the flag is raised.
                        let _ = rt
                            .sleep(Duration::from_millis(100))
                            .with_cancel(&token)
                            .await;
                    }
                }
                out.line("Task canceled!");
            }
        });
        rt.block_on(async {
            three.cancelled().await;
            token.cancel();
            task.await.expect("the task finishes on its own");
        });
    }
}

/// Run out of time: the task is dropped when its time is up.
pub(crate) struct Timeout;

impl Pattern for Timeout {
    const NAME: &'static str = "timeout";

    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out) {
        // Ticks at 0, 200 and 400 ms; the limit at 500 ms; the next tick
        // would be at 600 ms. Every timer is 100 ms from the next, and the
        // ticks are absolute deadlines, so late wake-ups do not add up.
        let work = {
            let (rt, out) = (rt.clone(), out.clone());
            async move {
                let start = rt.now();
                for n in 1_u32.. {
                    out.line(format!("Task running: {n}"));
                    rt.sleep_until(start + Duration::from_millis(200) * n).await;
                }
            }
        };
        let task = rt.spawn({
            let rt = rt.clone();
            async move { timeout(&rt, Duration::from_millis(500), work).await }
        });
        match rt.block_on(task) {
            Ok(Err(_elapsed)) => out.line("Task timed out and was canceled."),
            Ok(Ok(())) => out.line("BUG: the task finished"),
            Err(e) => out.line(format!("BUG: the task failed: {e}")),
        }
    }
}

/// Broadcast a shutdown: one signal, every worker stops — a [`TaskGroup`]
/// with a grace period.
pub(crate) struct ShutdownBroadcast;

impl Pattern for ShutdownBroadcast {
    const NAME: &'static str = "shutdown_broadcast";

    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out) {
        const WORKERS: usize = 3;
        let group = TaskGroup::new(rt);
        let signal = CancelToken::new(); // stands for ctrl_c() here
        let reports: Vec<Arc<Mutex<Option<String>>>> =
            (0..WORKERS).map(|_| Arc::default()).collect();
        let report = rt.block_on(async {
            for (i, report) in (1..=WORKERS).zip(&reports) {
                let ready = CancelToken::new();
                group
                    .spawn_named(format!("worker {i}"), {
                        let (ready, report) = (ready.clone(), report.clone());
                        move |stop| async move {
                            ready.cancel();
                            stop.cancelled().await;
                            let why = stop.reason().map(|r| r.kind());
                            *report.lock().unwrap() = Some(format!(
                                "Worker {i} received the shutdown signal ({why:?})."
                            ));
                        }
                    })
                    .detach();
                ready.cancelled().await;
                out.line(format!("Worker {i} is waiting."));
            }
            out.line("Broadcasting shutdown.");
            signal.cancel();
            group.shutdown_on(signal, Duration::from_secs(5)).await
        });
        // Each worker reports in its own words; print them in worker order,
        // so the output does not depend on scheduling.
        for report in &reports {
            out.line(report.lock().unwrap().take().unwrap_or_default());
        }
        out.line(format!(
            "All workers stopped: {} finished, {} forced.",
            report.finished,
            report.forced.len()
        ));
    }
}

/// The runtimes this build can run, by the name `--runtime` takes.
pub(crate) fn runtimes() -> Vec<&'static str> {
    let mut names = Vec::new();
    if cfg!(feature = "tokio") {
        names.push("tokio");
        names.push("tokio-current-thread");
    }
    if cfg!(feature = "smol") {
        names.push("smol");
    }
    if cfg!(feature = "async-std") {
        names.push("async-std");
    }
    if cfg!(feature = "compio") {
        names.push("compio");
    }
    if cfg!(feature = "monoio") {
        names.push("monoio");
    }
    names
}

/// Runs pattern `P` on the runtime called `name`.
// With no runtime feature, only the error arm remains: `out` is unused and
// the code after the match is unreachable.
#[allow(unused_variables, unreachable_code)]
pub(crate) fn run_on<P: Pattern>(name: &str, out: &Out) -> Result<(), String> {
    let started: Result<(), std::io::Error> = match name {
        #[cfg(feature = "tokio")]
        "tokio" => cancelkit::rt::Tokio::new().map(|rt| P::run(&rt, out)),
        #[cfg(feature = "tokio")]
        "tokio-current-thread" => cancelkit::rt::Tokio::current_thread().map(|rt| P::run(&rt, out)),
        #[cfg(feature = "smol")]
        "smol" => cancelkit::rt::Smol::new().map(|rt| P::run(&rt, out)),
        #[cfg(feature = "async-std")]
        "async-std" => {
            P::run(&cancelkit::rt::AsyncStd::new().unwrap(), out);
            Ok(())
        }
        #[cfg(feature = "compio")]
        "compio" => cancelkit::rt::Compio::new().map(|rt| P::run(&rt, out)),
        #[cfg(feature = "monoio")]
        "monoio" => cancelkit::rt::Monoio::new().map(|rt| P::run(&rt, out)),
        other => {
            return Err(format!(
                "unknown or disabled runtime {other:?}; this build has: {:?} \
                 (enable more with --features tokio,smol,async-std,compio,monoio or --all-features)",
                runtimes()
            ));
        }
    };
    started.map_err(|e| format!("cannot start {name}: {e}"))
}

/// The `main` of a single-pattern example: `--runtime NAME` (default: the
/// first enabled runtime), `--help`; anything else is a usage error (exit 2).
pub(crate) fn main_for<P: Pattern>() {
    let enabled = runtimes();
    let list = if enabled.is_empty() {
        "none in this build (add --features tokio, smol or async-std)".to_string()
    } else {
        enabled.join(", ")
    };
    let usage = format!(
        "Usage: cargo run --example {name} --all-features -- [--runtime NAME]\n\
         \n\
         Runs the {name} pattern (examples/patterns/mod.rs) on one runtime.\n\
         \n\
         Options:\n\
         \x20 --runtime NAME  the runtime to run on: {list}\n\
         \x20                 (default: the first)\n\
         \x20 -h, --help      print this and exit",
        name = P::NAME,
    );
    let mut args = cli::Args::parse(&usage);
    let mut runtime = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runtime" => {
                let name = args.value("--runtime");
                if !enabled.contains(&name.as_str()) {
                    args.fail(format_args!("unknown or disabled runtime {name:?}"));
                }
                runtime = Some(name);
            }
            other => args.unexpected(other),
        }
    }
    let Some(runtime) = runtime.or_else(|| enabled.first().map(|s| s.to_string())) else {
        cli::usage_error(&usage, "no runtime enabled in this build");
    };
    println!("[{} on {runtime}]", P::NAME);
    if let Err(e) = run_on::<P>(&runtime, &Out::stdout()) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

// ===== cancel scopes: commit or roll back =====

/// A toy database: two balances, changed only by transactions, with
/// simulated I/O (a short sleep per operation).
#[derive(Clone)]
struct Db {
    balances: Arc<Mutex<(i64, i64)>>,
}

/// A transaction's state, behind an async lock: the rollback waits for a
/// commit in progress, and finds it done.
#[derive(Default)]
struct TxState {
    /// Writes applied so far, to undo on rollback.
    applied: Vec<(usize, i64)>,
    committed: bool,
}

#[derive(Clone)]
struct Tx<R> {
    db: Db,
    rt: R,
    state: Arc<async_lock::Mutex<TxState>>,
    out: Out,
}

impl<R: Runtime + Clone + Send + Sync + 'static> Tx<R> {
    async fn io(&self) {
        self.rt.sleep(Duration::from_millis(10)).await;
    }

    /// Adds `delta` to balance `account` (0 or 1).
    async fn write(&self, account: usize, delta: i64) {
        let mut state = self.state.lock().await;
        self.io().await;
        let mut balances = self.db.balances.lock().unwrap();
        if account == 0 {
            balances.0 += delta
        } else {
            balances.1 += delta
        }
        state.applied.push((account, delta));
    }

    /// Makes the writes final: two I/O steps, which must not be split.
    async fn commit(&self, started: Option<CancelToken>) {
        let mut state = self.state.lock().await;
        if let Some(started) = started {
            started.cancel();
        }
        self.io().await;
        self.io().await;
        state.committed = true;
        self.out.line("  commit: done");
    }

    /// Undoes what was written, unless the transaction committed.
    async fn rollback(&self, why: cancelkit::token::Cancelled) {
        let mut state = self.state.lock().await;
        self.out.line(format!(
            "  rollback: cause {:?}, from line {}",
            why.kind(),
            why.location().line()
        ));
        if state.committed {
            self.out.line("  rollback: nothing to undo, committed");
            return;
        }
        self.io().await;
        let mut balances = self.db.balances.lock().unwrap();
        for (account, delta) in state.applied.drain(..).rev() {
            if account == 0 {
                balances.0 -= delta
            } else {
                balances.1 -= delta
            }
        }
        self.out.line("  rollback: undone");
    }
}

/// Where a transfer pauses, for the pattern to cancel it there.
#[derive(Clone, Default)]
struct Pause {
    after_debit: Option<CancelToken>,
    in_commit: Option<CancelToken>,
}

/// Moves `amount` from account 0 to account 1 in a transaction: rolled
/// back by an async cleanup if the task is cancelled, with the commit
/// itself shielded so a cancel cannot split it.
async fn transfer<R: Runtime + Clone + Send + Sync + 'static>(
    rt: R,
    db: Db,
    out: Out,
    amount: i64,
    pause: Pause,
) {
    let tx = Tx {
        db,
        rt: rt.clone(),
        state: Arc::default(),
        out,
    };
    let undo = tx.clone();
    let rollback = cancelkit::scope::cleanup(&rt, Duration::from_secs(1), move |why| async move {
        undo.rollback(why).await
    })
    .expect("runs as a cancelkit task");
    tx.write(0, -amount).await;
    if let Some(debited) = pause.after_debit {
        debited.cancel();
        rt.sleep(Duration::from_secs(3600)).await; // a slow network
    }
    tx.write(1, amount).await;
    let commit = {
        let tx = tx.clone();
        async move { tx.commit(pause.in_commit).await }
    };
    cancelkit::scope::shield(&rt, Duration::from_secs(1), commit).await;
    rollback.disarm(); // committed: nothing left to undo
}

/// Cancel scopes: a transaction commits, or is rolled back by async
/// cleanup when its task is cancelled; a commit already under way finishes
/// under its shield.
pub(crate) struct CommitOrRollback;

impl Pattern for CommitOrRollback {
    const NAME: &'static str = "commit_or_rollback";

    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out) {
        let db = Db {
            balances: Arc::new(Mutex::new((100, 0))),
        };
        let balances = |db: &Db| {
            let (a, b) = *db.balances.lock().unwrap();
            format!("balances: a={a} b={b}")
        };
        let run = |amount, pause: Pause| {
            rt.spawn(transfer(rt.clone(), db.clone(), out.clone(), amount, pause))
        };

        out.line("transfer 30, left alone:");
        let done = rt.block_on(run(30, Pause::default()));
        out.line(format!("  task: {:?}; {}", done.map(drop), balances(&db)));

        out.line("transfer 50, cancelled after the debit:");
        let debited = CancelToken::new();
        let task = run(
            50,
            Pause {
                after_debit: Some(debited.clone()),
                ..Pause::default()
            },
        );
        let out_of = rt.block_on(async {
            debited.cancelled().await;
            task.cancel().await // returns once the rollback finished
        });
        out.line(format!("  cancel() gave {out_of:?}; {}", balances(&db)));

        out.line("transfer 20, cancelled during the commit:");
        let committing = CancelToken::new();
        let task = run(
            20,
            Pause {
                in_commit: Some(committing.clone()),
                ..Pause::default()
            },
        );
        let out_of = rt.block_on(async {
            committing.cancelled().await;
            task.cancel().await // returns once the commit and the cleanup ended
        });
        out.line(format!("  cancel() gave {out_of:?}; {}", balances(&db)));
    }
}

/// Blocking work in a group: a shutdown asks it to stop, waits the grace,
/// and reports what is still running as abandoned — on every runtime.
pub(crate) struct BlockingShutdown;

impl Pattern for BlockingShutdown {
    const NAME: &'static str = "blocking_shutdown";

    fn run<R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static>(rt: &R, out: &Out) {
        let group = TaskGroup::new(rt);
        let (started, has_started) = std::sync::mpsc::channel();
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (ended, has_ended) = std::sync::mpsc::channel();
        group
            .spawn_blocking_named("compress", {
                let started = started.clone();
                move |token| {
                    started.send(()).unwrap();
                    // One chunk per turn; stop when asked.
                    while !token.wait_timeout(Duration::from_millis(10)) {}
                }
            })
            .detach();
        group
            .spawn_blocking_named("fsync", move |_token| {
                started.send(()).unwrap();
                // Stands for a call that cannot be interrupted.
                let _ = hold.recv();
                ended.send(()).unwrap();
            })
            .detach();
        for _ in 0..2 {
            has_started.recv().unwrap();
        }
        out.line("compress and fsync running; shutdown with a 1 s grace");
        let report = rt.block_on(group.shutdown(Duration::from_secs(1)));
        for line in report.to_string().lines() {
            out.line(line);
        }
        out.line(format!(
            "shutdown returned; fsync still running: {}",
            has_ended.try_recv().is_err()
        ));
        drop(release);
        has_ended.recv().unwrap();
        out.line("fsync ended on its own, after the shutdown");
    }
}
