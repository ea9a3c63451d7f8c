//! Runtime-agnostic cancellation for async Rust.
//!
//! Async code cancels work in four ways — drop the task's handle, raise a
//! shared flag, run out of time, broadcast a shutdown — and each runtime
//! does them differently: dropping a tokio or async-std `JoinHandle`
//! *detaches* the task, dropping a smol `Task` *cancels* it; panics and
//! timers differ too. cancelkit defines three small traits — [`Spawner`],
//! [`Timer`] and [`Signal`] — implements them for tokio, smol and async-std
//! (in [`rt`], behind cargo features), and builds every cancellation pattern
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
//! period and then drops the stragglers, and its [`ShutdownReport`](group::ShutdownReport) names
//! them; every adapter offers `ctrl_c()` and `terminate()` as [`Signal`]s
//! to trigger it ([`TaskGroup::shutdown_on`]).
//!
//! # Testing
//!
//! With the `sim` feature, `cancelkit::sim` provides a deterministic
//! runtime with a virtual clock (timeouts run instantly, runs replay from a
//! seed, deadlocks are reported) and a checker that cancels a future at
//! each of its suspension points to find where it is not cancel safe.
//!
//! # Writing runtime-neutral code
//!
//! Take the narrowest trait you need — `&impl Spawner`, `&impl Timer`, or
//! `&impl Runtime` — or hold `Arc<dyn DynSpawner + Send + Sync>` /
//! `Arc<dyn DynTimer + Send + Sync>` if a type parameter is unwelcome.
//! Never call `Instant::now()` where a [`Timer`] is at hand: read
//! [`Timer::now`] so virtual-time runtimes stay consistent.
//!
//! # Features
//!
//! - `tokio` — [`rt::Tokio`]: wraps the current tokio runtime or builds a
//!   current-thread or multi-thread one.
//! - `smol` — [`rt::Smol`]: wraps a shared `async_executor::Executor` or
//!   builds one with its own threads; timers from `async-io`.
//! - `async-std` — [`rt::AsyncStd`]: async-std's global runtime. async-std
//!   is no longer developed upstream (its authors point to smol); it stays
//!   supported here because users still run it.
//! - `tokio-util` — [`CancelToken::to_tokio_util`] and
//!   [`CancelToken::follow_tokio_util`]: interop with
//!   `tokio_util::sync::CancellationToken`, both ways.
//! - `sim` — [`sim`]: a deterministic single-threaded runtime with a
//!   virtual clock, a seed explorer, and a cancel-safety checker.
//! - `conformance` — [`conformance`]: the behaviour-contract suite, generic
//!   over any [`Runtime`], and the [`conformance_tests!`] macro.
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
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings, rust_2018_idioms))))]

#[macro_use]
mod cfg;
mod loom;

/// The README's examples, compiled and run as doctests so it cannot lie.
#[cfg(all(doctest, feature = "tokio", feature = "sim"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod group;
pub mod guide;
pub mod rt;
mod runtime;
pub mod signal;
pub mod task;
#[cfg(all(test, not(loom)))]
mod test_util;
pub mod time;
pub mod token;

cfg_sim! {
    pub mod sim;
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
