//! The async-std adapter: [`AsyncStd`] implements cancelkit's [`Runtime`] on
//! async-std's global runtime.
//!
//! **Deprecated**: async-std is discontinued upstream
//! ([RUSTSEC-2025-0052](https://rustsec.org/advisories/RUSTSEC-2025-0052.html);
//! its README points to smol, and so do we: use the `smol` feature for new
//! code). This adapter stays working, and in the conformance suite, for
//! applications that still run async-std.
//!
//! async-std has one global runtime that never shuts down, so there is no
//! "fresh runtime" to build. [`AsyncStd::current`] wraps it as it is; for
//! tests and for code that wants shutdown semantics, [`AsyncStd::new`] gives
//! a handle whose tasks are cancelled (dropped at their next scheduling)
//! when its last clone is dropped, which is what shutting a runtime down
//! means for them.
//!
//! `spawn_detached` is `async_std::task::spawn` with the `JoinHandle`
//! dropped (which detaches in async-std — cancelkit's own `Task` provides
//! drop-to-cancel on top), timers are `async_io::Timer` (what async-std uses
//! internally), and `block_on` is `async_std::task::block_on`.
//!
//! This file uses only cancelkit's public API, as a third-party adapter
//! would.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::signal::OsSignal;
use crate::token::DropGuard;
use crate::{CancelToken, Runtime, Spawner, Timer};

// ===== impl AsyncStd =====

/// A handle to async-std's global runtime, implementing [`Runtime`].
///
/// Two constructors, as on every adapter: [`AsyncStd::current`] wraps the
/// global runtime as it is (what `#[async_std::main]` programs run), and
/// [`AsyncStd::new`] gives a handle that behaves like an owned runtime —
/// its pending tasks are cancelled when its last clone is dropped ([D6](crate#D6)).
///
/// # Examples
///
/// ```
/// use cancelkit::{Runtime, SpawnerExt, rt::AsyncStd};
///
/// let rt = AsyncStd::new()?;
/// assert_eq!(rt.block_on(rt.spawn(async { 4 })).unwrap(), 4);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct AsyncStd {
    /// For owned handles: cancelled when the last clone is dropped.
    scope: Option<Arc<Scope>>,
}

struct Scope {
    token: CancelToken,
    _guard: DropGuard,
}

impl fmt::Debug for AsyncStd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStd")
            .field("owned", &self.scope.is_some())
            .finish()
    }
}

impl AsyncStd {
    /// The global async-std runtime, as `#[async_std::main]` programs run
    /// it. Tasks spawned through it live until they finish or their
    /// [`Task`](crate::Task) handle cancels them; the global runtime never
    /// shuts down.
    ///
    /// # Errors
    ///
    /// Never: async-std's global runtime starts on first use. (It returns a
    /// `Result` like every adapter's `current()`.)
    ///
    /// ```
    /// # async_std::task::block_on(async {
    /// use cancelkit::{SpawnerExt, rt::AsyncStd};
    ///
    /// // somewhere inside `#[async_std::main]`:
    /// let rt = AsyncStd::current().unwrap();
    /// assert_eq!(rt.spawn(async { 5 }).await.unwrap(), 5);
    /// # });
    /// ```
    pub fn current() -> Result<Self, super::NoRuntime> {
        Ok(AsyncStd { scope: None })
    }

    /// A handle to the global runtime that behaves like an owned runtime:
    /// when its last clone is dropped, every task spawned through it that is
    /// still pending is dropped at its next scheduling, and its
    /// [`Task`](crate::Task) reports
    /// [`JoinError::Cancelled`](crate::JoinError::Cancelled). (async-std
    /// has no runtime of its own to build; this is the closest to one.)
    ///
    /// # Errors
    ///
    /// Never; it returns `io::Result` like every adapter's `new()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{SpawnerExt, rt::AsyncStd};
    ///
    /// let rt = AsyncStd::new()?;
    /// let task = rt.spawn(std::future::pending::<()>());
    /// drop(rt);
    /// assert!(async_std::task::block_on(task).unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        let token = CancelToken::new();
        Ok(AsyncStd {
            scope: Some(Arc::new(Scope {
                _guard: token.clone().drop_guard(),
                token,
            })),
        })
    }

    /// A [`Signal`](crate::Signal) raised when the process receives Ctrl-C
    /// (`SIGINT`), through `async-signal`.
    ///
    /// Listening replaces the signal's default action (terminating the
    /// process) for the rest of the process, even after the listener is
    /// dropped — as with `tokio::signal` (the OS handler is never restored).
    /// Several listeners may coexist; each sees the signal.
    ///
    /// # Errors
    ///
    /// If the OS refuses the handler.
    ///
    /// ```
    /// use cancelkit::{Signal, rt::AsyncStd};
    ///
    /// let rt = AsyncStd::new().unwrap();
    /// let ctrl_c = rt.ctrl_c().unwrap();
    /// assert!(!ctrl_c.is_raised());
    /// ```
    pub fn ctrl_c(&self) -> std::io::Result<OsSignal> {
        super::os_signals::listen(self, async_signal::Signal::Int)
    }

    /// A [`Signal`](crate::Signal) raised when the process receives
    /// `SIGTERM` (Unix only), through `async-signal`.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Unsupported` on platforms without `SIGTERM`; otherwise if
    /// the OS refuses the handler.
    ///
    /// ```
    /// use cancelkit::{Signal, rt::AsyncStd};
    ///
    /// let rt = AsyncStd::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        super::os_signals::terminate(self)
    }
}

impl crate::blocking::SpawnBlocking for AsyncStd {
    /// `async_std::task::spawn_blocking` (the `blocking` crate's pool); the
    /// closure always runs.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        // Dropping async-std's JoinHandle detaches.
        drop(async_std::task::spawn_blocking(f));
    }
}

impl Spawner for AsyncStd {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.scope {
            // Dropping async-std's JoinHandle detaches.
            None => drop(async_std::task::spawn(fut)),
            Some(scope) => {
                let stop = scope.token.clone();
                drop(async_std::task::spawn(async move {
                    let _ = stop.run_until_cancelled(fut).await;
                }));
            }
        }
    }
}

impl Timer for AsyncStd {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }
}

impl Runtime for AsyncStd {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        async_std::task::block_on(fut)
    }
}

// ===== impl Sleep =====

/// The sleep future of [`AsyncStd`]: an `async_io::Timer`, which is what
/// async-std's own `sleep` uses.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, rt::AsyncStd};
///
/// let rt = AsyncStd::new().unwrap();
/// rt.block_on(rt.sleep(Duration::from_millis(1)));
/// ```
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Sleep(async_io::Timer);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}
