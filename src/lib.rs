//! Runtime-agnostic cancellation for async Rust.
//!
//! Async code cancels work in four ways — drop the task's handle, raise a
//! shared flag, run out of time, broadcast a shutdown — and each runtime
//! does them differently: dropping a tokio or async-std `JoinHandle`
//! *detaches* the task, dropping a smol `Task` *cancels* it; panics and
//! timers differ too. cancelkit defines small traits — [`Spawner`],
//! [`Timer`] and [`Signal`] — implements them for tokio, smol, compio,
//! monoio and async-std (in [`rt`], behind cargo features), and builds every cancellation pattern
//! **once** on top of them, so the same code behaves the same everywhere. A
//! [conformance suite](crate::conformance) proves it.
//!
//! # The four patterns
//!
//! **Drop the handle.** A [`Task`] cancels its task when dropped, on every
//! runtime:
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use std::time::Duration;
//! use cancelkit::{CancelToken, Runtime, SpawnerExt, Timer, rt::Tokio};
//!
//! let rt = Tokio::new().unwrap();
//! let gone = CancelToken::new();
//! let task = rt.spawn({
//!     // Cancels `gone` when dropped, i.e. when the task's future is dropped.
//!     let (sleep, on_drop) = (rt.sleep(Duration::from_secs(3600)), gone.clone().drop_guard());
//!     async move {
//!         let _on_drop = on_drop;
//!         sleep.await;
//!     }
//! });
//! drop(task); // on tokio's own JoinHandle this would detach
//! rt.block_on(gone.cancelled()); // the future was dropped, promptly
//! # }
//! ```
//!
//! **A shared flag.** A [`CancelToken`] is checked with
//! [`is_cancelled`](CancelToken::is_cancelled) (one atomic load) or awaited
//! with [`cancelled`](CancelToken::cancelled):
//!
//! ```
//! use cancelkit::{CancelToken, token::CancelFutureExt};
//!
//! let token = CancelToken::new();
//! token.cancel();
//! let out = futures_lite::future::block_on(std::future::pending::<()>().with_cancel(&token));
//! assert!(out.is_err());
//! ```
//!
//! **Run out of time.** [`timeout`] polls the future first, so a ready
//! future always wins, and drops it before reporting [`Elapsed`](time::Elapsed):
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use std::time::Duration;
//! use cancelkit::{Runtime, rt::Smol, timeout};
//!
//! let rt = Smol::new().unwrap();
//! let out = rt.block_on(timeout(&rt, Duration::from_millis(5), std::future::pending::<()>()));
//! assert!(out.is_err());
//! # }
//! ```
//!
//! **Broadcast a shutdown.** One token, cloned into every task; one
//! `cancel()` wakes them all:
//!
//! ```
//! # #[cfg(feature = "async-std")] {
//! use cancelkit::{CancelToken, Runtime, SpawnerExt, rt::AsyncStd};
//!
//! let rt = AsyncStd::new().unwrap();
//! let shutdown = CancelToken::new();
//! let workers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let shutdown = shutdown.clone();
//!         rt.spawn(async move {
//!             shutdown.cancelled().await;
//!             i
//!         })
//!     })
//!     .collect();
//! shutdown.cancel();
//! let done: Vec<_> = rt.block_on(async {
//!     let mut done = Vec::new();
//!     for w in workers {
//!         done.push(w.await.unwrap());
//!     }
//!     done
//! });
//! assert_eq!(done, [0, 1, 2, 3]);
//! # }
//! ```
//!
//! For servers, a [`TaskGroup`] does the whole dance: each task gets a child
//! of the group's token, [`shutdown`](TaskGroup::shutdown) waits a grace
//! period and then drops the stragglers, and its
//! [`ShutdownReport`](group::ShutdownReport) names them; every adapter offers
//! `ctrl_c()` and `terminate()` as [`Signal`]s to trigger it
//! ([`TaskGroup::shutdown_on`]).
//!
//! # Start where your program starts
//!
//! Every adapter in [`rt`] has the same two constructors: `current()` wraps
//! what the program already runs, `new()` owns a runtime (for tests and
//! command-line tools).
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use cancelkit::{SpawnerExt, rt::Tokio};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! // inside #[tokio::main] (smol::block_on: Smol::current(); #[async_std::main]: AsyncStd::current())
//! let rt = Tokio::current().unwrap();
//! assert_eq!(rt.spawn(async { 1 }).await.unwrap(), 1);
//! # });
//! # }
//! ```
//!
//! # Writing runtime-neutral code
//!
//! A library takes [`RuntimeHandle`] — "a runtime I can spawn on and sleep
//! on" — or holds a [`SharedRuntime`] if a type parameter is unwelcome; both
//! drive everything here, [`TaskGroup`] included. It never calls
//! `Instant::now()` where a [`Timer`] is at hand, so virtual time stays
//! consistent. A worker pool that drains on shutdown, for any runtime:
//!
//! ```
//! use std::time::Duration;
//! use cancelkit::{RuntimeHandle, TaskGroup, group::ShutdownReport};
//!
//! # #[allow(dead_code)] // called below only with the `sim` feature
//! /// Runs `jobs` with at most `width` at once; stops taking new ones when
//! /// `stop` is cancelled, and gives running ones `grace` to finish.
//! pub async fn drain<R: RuntimeHandle>(
//!     rt: &R,
//!     jobs: Vec<u64>,
//!     width: usize,
//!     stop: &cancelkit::CancelToken,
//!     grace: Duration,
//! ) -> ShutdownReport {
//!     let pool = TaskGroup::builder(rt).limit(width).parent(stop).build();
//!     for job in jobs {
//!         let rt = rt.clone();
//!         pool.spawn_named(format!("job {job}"), move |token| async move {
//!             // Cooperative: stop sleeping when the pool shuts down.
//!             let _ = token.run_until_cancelled(rt.sleep(Duration::from_millis(job))).await;
//!         })
//!         .detach();
//!     }
//!     pool.close();
//!     let _ = stop.run_until_cancelled(pool.wait()).await;
//!     pool.shutdown(grace).await
//! }
//!
//! # #[cfg(feature = "sim")] {
//! use cancelkit::{CancelToken, Runtime, sim::Sim};
//! let sim = Sim::new();
//! let report = sim.block_on(drain(&sim, vec![5, 10, 15], 2, &CancelToken::new(), Duration::ZERO));
//! assert_eq!(report.forced.len(), 0);
//! # }
//! ```
//!
//! # Modules
//!
//! - [`task`]: [`Task`], the handle that cancels on drop, and [`JoinError`].
//! - [`token`]: [`CancelToken`] and its futures, guards and causes.
//! - [`time`]: [`timeout`] and [`deadline`].
//! - [`group`]: [`TaskGroup`], its report, and [`TaskSet`](group::TaskSet).
//! - [`scope`]: cancel scopes inside a task — [`current()`](scope::current),
//!   [`checkpoint`](scope::checkpoint), [`move_on_after`](scope::move_on_after),
//!   [`shield`](scope::shield) and async [`cleanup`](scope::cleanup).
//! - [`signal`]: [`Signal`], combinators, OS signals.
//! - [`rt`]: the adapters and the object-safe runtime traits.
//! - `sim` (feature `sim`): a deterministic virtual-time runtime, a seed
//!   explorer and a cancel-safety checker.
//! - `conformance` (feature `conformance`): the behaviour-contract suite,
//!   generic over any [`Runtime`].
//!
//! # The behaviour contract
//!
//! Every line is one or more conformance cases, run on every runtime (tokio
//! current-thread and multi-thread, smol with and without threads of its
//! own, compio, monoio, async-std, the sim, and a third-party runtime in the
//! repository's tests); the suite checks that every runtime records the same
//! trace.
//!
//! | ID | the contract |
//! |---|---|
//! | <a id="D1"></a>D1 | Dropping a [`Task`] cancels the task: after the drop returns, its future is not polled again (a poll already running elsewhere finishes first), and it is dropped promptly, without waiting for the task's own timers. |
//! | <a id="D2"></a>D2 | [`detach`](Task::detach) lets the task run to completion with no handle. |
//! | <a id="D3"></a>D3 | `task.await` gives `Ok(T)`, `Err(JoinError::Cancelled)` or `Err(JoinError::Panicked(_))`. A panic never takes down the runtime or another task — nor does an output or payload that panics when dropped. |
//! | <a id="D4"></a>D4 | [`abort`](Task::abort) asks without waiting or consuming the handle; [`cancel().await`](Task::cancel) returns once the future was dropped (`Some(T)` if it had finished). A panic is never silently swallowed. |
//! | <a id="D5"></a>D5 | Cancellation lands only at await points. |
//! | <a id="D6"></a>D6 | When the runtime shuts down with tasks pending, awaiting them gives `Err(JoinError::Cancelled)`; nothing hangs. |
//! | <a id="F1"></a>F1 | [`CancelToken::new`]; clones share state; `cancel()` is idempotent; `is_cancelled()` is a wait-free atomic read. |
//! | <a id="F2"></a>F2 | `cancelled().await` completes at once if already cancelled, else when cancelled; one cancel wakes every waiter; no wake-up is lost. |
//! | <a id="F3"></a>F3 | A [child](CancelToken::child) is cancelled with its parent, not the reverse; a late child is born cancelled; a dropped child detaches, its descendants stay reachable; when `cancel()` returns, every descendant reports cancelled. |
//! | <a id="F4"></a>F4 | [`drop_guard`](CancelToken::drop_guard) cancels the token when dropped, unless disarmed. |
//! | <a id="F5"></a>F5 | [`run_until_cancelled`](CancelToken::run_until_cancelled) / `with_cancel` give `Err(Cancelled)` and drop the inner future when the token fires first. |
//! | <a id="F6"></a>F6 | A cancel may carry a cause (first wins, readable afterwards); a token may carry a deadline, fire itself when it passes, and hand the earlier of its own and its parent's to its children. |
//! | <a id="T1"></a>T1 | [`timeout`] gives `Ok(v)` in time, else `Err(Elapsed)` after the inner future was dropped. |
//! | <a id="T2"></a>T2 | The inner future is polled before the clock is read: a ready future wins even at `Duration::ZERO`. |
//! | <a id="T3"></a>T3 | [`deadline`] takes an absolute instant; a sleep never completes before its deadline by the timer's clock; [`FAR_FUTURE`](time::FAR_FUTURE) and beyond mean never. |
//! | <a id="B1"></a>B1 | A [`TaskGroup`]'s [`shutdown(grace)`](TaskGroup::shutdown) cancels its token, waits up to `grace`, drops the rest and reports; when it returns, no task of the group runs. |
//! | <a id="B2"></a>B2 | Dropping a group cancels and drops its tasks. |
//! | <a id="B3"></a>B3 | A task's panic spares its siblings unless the group is fail-fast. |
//! | <a id="B4"></a>B4 | A group can shut down on any [`Signal`]. |
//! | <a id="S1"></a>S1 | A [shielded](scope::shield) section runs to completion even when its task is cancelled or its handle dropped meanwhile; the task then reports `Cancelled` (or its output), and `cancel().await` and a group's shutdown return only after the shield ended. |
//! | <a id="S2"></a>S2 | A shield has its own grace: past it the shielded future is dropped and the overrun is reported, naming the task, its spawn location and the shield's location. |
//! | <a id="S3"></a>S3 | Async [cleanup](scope::cleanup) registered for a task or token runs exactly once when it is cancelled — never on normal completion — receives the cause, runs shielded with its own deadline, and is waited for like S1; cleanup registered after the cancel runs at once. |
//! | <a id="S4"></a>S4 | Inside a cancelkit task, [`current()`](scope::current) is a token cancelled when the task is; [`checkpoint().await`](scope::checkpoint) yields once and returns `Err(Cancelled)` if the current scope is cancelled, `Ok(())` otherwise. |
//! | <a id="S5"></a>S5 | [`move_on_after`](scope::move_on_after) / [`fail_after`](scope::fail_after) open a nested scope whose deadline is the earlier of theirs and the enclosing one; its expiry drops the future and leaves the enclosing scope untouched; the enclosing scope's cancellation reaches inside. |
//! | <a id="L1"></a>L1 | A local (`!Send`) task, spawned with [`spawn_local`](local::LocalSpawnerExt::spawn_local), has a [`Task`] handle that behaves exactly as D1–D6 say; spawning one off its executor's thread panics at the caller's line; its future never runs. |
//! | <a id="L2"></a>L2 | A group of local tasks ([`TaskGroup::spawn_local`]) behaves exactly as B1–B4 say. |
//! | <a id="L3"></a>L3 | [Blocking work](blocking) sees its token through a synchronous view ([`BlockingToken`](blocking::BlockingToken): `is_cancelled`, a blocking `wait_timeout`, the cause); its handle resolves when the closure returns: its value, `Panicked`, or `Cancelled` if it was cancelled before it started. *Conformance cases of their own ([`conformance::blocking_cases`], for runtimes with a pool) on tokio (both flavours and `LocalSet`), smol (and `LocalExecutor`), compio, monoio, async-std and the sim (in virtual time), with `tests/blocking.rs`.* |
//! | <a id="L4"></a>L4 | A group's [shutdown](TaskGroup::shutdown) reports [blocking work](TaskGroup::spawn_blocking) still running after the grace as [abandoned](group::ShutdownReport::abandoned) — never as finished or forced — and returns without waiting for it. *Checked as L3 is.* |
//!
//! | <a id="W1"></a>W1 | An incoming `grpc-timeout` becomes the request token's deadline (capped by the server's maximum, if set); a malformed value is answered `400` / `INVALID_ARGUMENT` with a clear message, never a panic. *[`wire::TokenService`]; `tests/hyper.rs`, `tests/grpc_timeout.rs` (property tests over random header bytes).* |
//! | <a id="W2"></a>W2 | An outgoing request carries the remaining deadline of its token, rounded down and never zero; an expired token does not send (`DeadlineExceeded`). *[`wire::call`], [`wire::write_deadline`]; `tests/hyper.rs`.* |
//! | <a id="W3"></a>W3 | A client that goes away (connection closed, stream reset) while its request is handled or its response streams cancels the request's token with [`CancelKind::Disconnected`](token::CancelKind::Disconnected), and through it every child, outgoing calls included. *`tests/hyper.rs` on every runtime below, HTTP/1 and HTTP/2; `tests/deadline_chain.rs` across three hops.* |
//! | <a id="W4"></a>W4 | hyper's executor and timer traits work on every cancelkit runtime: the same client/server exchange passes on each. *[`wire::HyperExecutor`], [`wire::HyperTimer`]; 10 000 requests over HTTP/1 and HTTP/2 on tokio (both flavours), smol, async-std and the sim in `tests/hyper.rs`.* |
//!
//! L1 and L2 are checked by running every D–S case with each spawn going
//! through a local spawner ([`conformance::Local`], on tokio's `LocalSet`,
//! smol's `LocalExecutor`, compio and monoio), plus local cases of their own.
//! The W lines need sockets (or a pipe) and hyper, which the runtime traits
//! do not give, so they are integration tests rather than conformance
//! cases (feature `hyper`).
//!
//! # Features
//!
//! - `tokio` — [`rt::Tokio`]: wraps the current tokio runtime or builds a
//!   current-thread or multi-thread one; [`rt::TokioLocal`]: a `LocalSet`
//!   for local (`!Send`) tasks.
//! - `smol` — [`rt::Smol`]: wraps smol's global executor or any
//!   `async_executor::Executor`, or builds one with its own threads; timers
//!   from `async-io`; [`rt::SmolLocal`]: a `LocalExecutor` for local tasks.
//! - `compio` — [`rt::Compio`]: a compio runtime (thread-per-core,
//!   io_uring), for local and `Send` tasks, with compio's blocking pool;
//!   [`Compio::cancel_io`](rt::Compio::cancel_io) cancels compio operations
//!   in flight when a token is cancelled. Needs Rust 1.95 (compio's own
//!   minimum); everything else builds with 1.85.
//! - `monoio` — [`rt::Monoio`]: a monoio runtime (thread-per-core,
//!   io_uring), for local and `Send` tasks; blocking work on the `blocking`
//!   crate's pool.
//! - `async-std` — [`rt::AsyncStd`]: async-std's global runtime.
//!   **Deprecated**: async-std is discontinued upstream
//!   ([RUSTSEC-2025-0052](https://rustsec.org/advisories/RUSTSEC-2025-0052.html);
//!   its README points to smol). Use `smol` for new code; the feature stays
//!   working, and in the conformance suite, for applications that still run
//!   async-std.
//! - `tokio-util` — `CancelToken::to_tokio_util` and
//!   `CancelToken::follow_tokio_util`: interop with
//!   `tokio_util::sync::CancellationToken`, both ways.
//! - `hyper` — [`wire`]: hyper's `Executor` and `Timer` for every runtime,
//!   `grpc-timeout` deadlines in ([`wire::TokenService`]) and out
//!   ([`wire::call`]), and request tokens cancelled when the client goes
//!   away.
//! - `sim` — a deterministic single-threaded runtime with a virtual clock,
//!   a seed explorer, and a cancel-safety checker.
//! - `conformance` — the behaviour-contract suite, generic over any
//!   [`Runtime`], and the `conformance_tests!` macro.
//!
//! None is on by default; any combination compiles, and the core builds and
//! works with none.
//!
//! # Cancel safety
//!
//! The futures of this crate say, under `# Cancel safety`, whether they are
//! cancel safe. The waiting futures ([`CancelToken::cancelled`],
//! [`Signal::raised`], awaiting `&mut` a [`Task`]) are; [`timeout`], [`deadline`] and
//! [`CancelToken::run_until_cancelled`] are exactly as cancel safe as the
//! future they wrap.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings, rust_2018_idioms))))]

#[macro_use]
mod cfg;
mod loom;
#[cfg(all(test, loom))]
mod loom_scope_tests;

/// The README's examples, compiled and run as doctests so it cannot lie.
#[cfg(all(doctest, feature = "tokio", feature = "sim", feature = "hyper"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod blocking;
pub mod group;
pub mod guide;
pub mod local;
pub mod rt;
mod runtime;
pub mod scope;
pub mod signal;
pub mod task;
#[cfg(all(test, not(loom)))]
mod test_util;
pub mod time;
pub mod token;

cfg_sim! {
    pub mod sim;
}

cfg_hyper! {
    pub mod wire;
}

pub use group::TaskGroup;
pub use runtime::{Runtime, RuntimeHandle, SharedRuntime, Spawner, SpawnerExt, Timer};
pub use signal::Signal;
pub use task::{JoinError, Task};
pub use time::{deadline, timeout};
pub use token::CancelToken;

// Not through `cfg_conformance!`: the module exports macros, and
// macro-expanded `#[macro_export]` macros cannot be named by path.
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
