//! The tokio adapter: [`Tokio`] implements cancelkit's [`Runtime`] on tokio.
//!
//! The bridge is thin: `spawn_detached` is `Handle::spawn` with the
//! `JoinHandle` dropped (which detaches in tokio — cancelkit's own `Task`
//! provides drop-to-cancel on top), `sleep_until` is `tokio::time::sleep_until`
//! entered into the runtime's context, `now` is `tokio::time::Instant::now`
//! (so tokio's paused test clock is honoured when the user enables it), and
//! `block_on` is the runtime's own.
//!
//! This file uses only cancelkit's public API, as a third-party adapter
//! would.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::runtime::{Builder, Handle, Runtime as TokioRuntime, RuntimeFlavor};

use crate::local::{LocalSpawner, ThreadBound};
use crate::signal::OsSignal;
use crate::{Runtime, Spawner, Timer};

// ===== impl Tokio =====

/// A handle to a tokio runtime, implementing [`Runtime`].
///
/// Cheap to clone; clones share the runtime. Made either from a runtime the
/// application already runs ([`Tokio::current`], [`Tokio::from_handle`]) or
/// as a fresh runtime it owns ([`Tokio::current_thread`],
/// [`Tokio::new`]), which shuts down when the last clone is dropped
/// — tasks still pending then are dropped, and their [`Task`](crate::Task)s
/// report [`JoinError::Cancelled`](crate::JoinError::Cancelled).
///
/// # Caveats
///
/// An owned runtime lives as long as *any* clone, including clones moved
/// into its own tasks: a task that holds a clone keeps the runtime from
/// shutting down. Move only what the task needs (a sleep future, a
/// [`Handle`]) into tasks that may still be pending at shutdown.
///
/// # Examples
///
/// Inside an application that already runs tokio:
///
/// ```
/// use cancelkit::{SpawnerExt, rt::Tokio};
///
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// # runtime.block_on(async {
/// // somewhere inside `#[tokio::main]`:
/// let rt = Tokio::current().expect("called inside a tokio runtime");
/// assert_eq!(rt.spawn(async { 7 }).await.unwrap(), 7);
/// # });
/// ```
#[derive(Clone)]
pub struct Tokio {
    /// One allocation, so a clone is one reference-count increment (a
    /// `timeout` keeps a clone of its timer).
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle,
    /// Present when we built the runtime; dropped (shutting it down) with
    /// the last clone.
    owned: Option<Owned>,
}

/// An owned tokio runtime, shut down on drop without ever panicking.
struct Owned(Option<TokioRuntime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            if Handle::try_current().is_ok() {
                // Dropping a runtime inside an async context panics in tokio;
                // shut down without blocking instead.
                rt.shutdown_background();
            } else {
                drop(rt);
            }
        }
    }
}

impl fmt::Debug for Tokio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokio")
            .field("flavor", &self.inner.handle.runtime_flavor())
            .field("owned", &self.inner.owned.is_some())
            .finish()
    }
}

impl Tokio {
    /// The tokio runtime the calling code is running in — inside
    /// `#[tokio::main]`, a task, or a runtime's `block_on`.
    ///
    /// # Errors
    ///
    /// [`NoRuntime`](super::NoRuntime) when called outside a tokio runtime
    /// (instead of tokio's panic), saying what to do instead.
    ///
    /// The runtime must have its time driver enabled (`enable_time()` or
    /// `enable_all()`, as `#[tokio::main]` does) for [`Timer`] to work.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = cancelkit::rt::Tokio::current().unwrap_err();
    /// assert!(err.to_string().contains("Tokio::new()"));
    /// ```
    pub fn current() -> Result<Self, super::NoRuntime> {
        Handle::try_current()
            .map(Self::from_handle)
            .map_err(|_| {
                super::NoRuntime::new(
                    "tokio",
                    "call Tokio::current() inside #[tokio::main], a tokio task or a runtime's \
                     block_on, or own a runtime with Tokio::new()",
                )
            })
    }

    /// Wraps a handle to a tokio runtime the application owns.
    ///
    /// The runtime must have its time driver enabled for [`Timer`] to work.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{Runtime, SpawnerExt, rt::Tokio};
    ///
    /// let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    /// let rt = Tokio::from_handle(runtime.handle().clone());
    /// assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    /// ```
    pub fn from_handle(handle: Handle) -> Self {
        Tokio {
            inner: Arc::new(Inner {
                handle,
                owned: None,
            }),
        }
    }

    /// Builds a fresh current-thread runtime (time and I/O drivers
    /// enabled, so OS signals work), owned by the
    /// returned handle and its clones.
    ///
    /// Background tasks make progress only while some thread is inside
    /// [`block_on`](Runtime::block_on), as with tokio's own current-thread
    /// runtime.
    ///
    /// # Errors
    ///
    /// Fails if tokio cannot create its driver (an I/O error from the OS).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{Runtime, SpawnerExt, rt::Tokio};
    ///
    /// let rt = Tokio::current_thread()?;
    /// assert_eq!(rt.block_on(rt.spawn(async { 2 })).unwrap(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_thread() -> std::io::Result<Self> {
        Self::owned(Builder::new_current_thread().enable_all().build()?)
    }

    /// Builds a fresh multi-thread runtime (time and I/O drivers enabled),
    /// owned by the
    /// returned handle and its clones.
    ///
    /// # Errors
    ///
    /// Fails if tokio cannot start its threads or driver.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{Runtime, SpawnerExt, rt::Tokio};
    ///
    /// let rt = Tokio::new()?;
    /// assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        Self::owned(Builder::new_multi_thread().enable_all().build()?)
    }

    fn owned(rt: TokioRuntime) -> std::io::Result<Self> {
        Ok(Tokio {
            inner: Arc::new(Inner {
                handle: rt.handle().clone(),
                owned: Some(Owned(Some(rt))),
            }),
        })
    }

    /// A [`Signal`](crate::Signal) raised when the process receives Ctrl-C
    /// (`SIGINT`), through `tokio::signal`.
    ///
    /// Listening replaces the signal's default action (terminating the
    /// process) for the rest of the process, even after the listener is
    /// dropped, as with tokio's own listeners. Several listeners may
    /// coexist; each sees the signal.
    ///
    /// # Errors
    ///
    /// If the runtime's I/O driver is disabled, or the OS refuses the
    /// handler. Must be called from inside this runtime or with
    /// [`Tokio::handle`] usable (it enters the runtime's context).
    ///
    /// ```
    /// use cancelkit::{Signal, rt::Tokio};
    ///
    /// let rt = Tokio::new().unwrap();
    /// let ctrl_c = rt.ctrl_c().unwrap();
    /// assert!(!ctrl_c.is_raised());
    /// ```
    pub fn ctrl_c(&self) -> std::io::Result<OsSignal> {
        let _enter = self.inner.handle.enter();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut sig = try_signal(|| signal(SignalKind::interrupt()))?;
            Ok(OsSignal::listen(self, async move {
                sig.recv().await;
            }))
        }
        #[cfg(windows)]
        {
            let mut sig = try_signal(tokio::signal::windows::ctrl_c)?;
            Ok(OsSignal::listen(self, async move {
                sig.recv().await;
            }))
        }
        #[cfg(not(any(unix, windows)))]
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "Ctrl-C signals are not supported on this platform",
            ))
        }
    }

    /// A [`Signal`](crate::Signal) raised when the process receives
    /// `SIGTERM` (Unix only), through `tokio::signal`.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Unsupported` on platforms without `SIGTERM`; otherwise as
    /// [`ctrl_c`](Tokio::ctrl_c).
    ///
    /// ```
    /// use cancelkit::{Signal, rt::Tokio};
    ///
    /// let rt = Tokio::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let _enter = self.inner.handle.enter();
            let mut sig = try_signal(|| signal(SignalKind::terminate()))?;
            Ok(OsSignal::listen(self, async move {
                sig.recv().await;
            }))
        }
        #[cfg(not(unix))]
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "SIGTERM does not exist on this platform",
            ))
        }
    }

    /// The underlying tokio handle.
    ///
    /// ```
    /// let rt = cancelkit::rt::Tokio::current_thread().unwrap();
    /// let _guard = rt.handle().enter();
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.inner.handle
    }
}

/// Runs a tokio signal constructor, turning its panic (a runtime without an
/// I/O driver) into an error.
fn try_signal<T>(make: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).unwrap_or_else(|_| {
        Err(std::io::Error::other(
            "tokio could not listen for the signal: is the runtime's I/O driver enabled (enable_all())?",
        ))
    })
}

impl Spawner for Tokio {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Dropping tokio's JoinHandle detaches; if the runtime is shutting
        // down, tokio drops `fut` instead, as the `Spawner` contract asks.
        drop(self.inner.handle.spawn(fut));
    }
}

impl crate::blocking::SpawnBlocking for Tokio {
    /// `Handle::spawn_blocking`; tokio drops `f` unrun if the runtime is
    /// shutting down.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        drop(self.inner.handle.spawn_blocking(f));
    }
}

impl Timer for Tokio {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        // Creating a tokio sleep needs the runtime's context; enter it so a
        // sleep can be created from any thread.
        let _enter = self.inner.handle.enter();
        Sleep {
            inner: tokio::time::sleep_until(deadline.into()),
        }
    }
}

impl Runtime for Tokio {
    /// Runs `fut` to completion on this runtime, blocking the thread.
    ///
    /// # Panics
    ///
    /// At the caller's line, saying what to do instead of hanging or
    /// panicking inside tokio:
    ///
    /// - when called from async code that a tokio runtime is driving, where
    ///   blocking the thread would stall that runtime (tokio refuses it
    ///   too): `.await` the future instead. Blocking threads
    ///   (`spawn_blocking`, `block_in_place`) may call it, as with tokio;
    /// - when this handle wraps a *current-thread* runtime it does not own
    ///   ([`Tokio::current`] or [`Tokio::from_handle`] on one). tokio's
    ///   `Handle::block_on` does not drive such a runtime's tasks and
    ///   timers; it makes progress only if another thread is inside that
    ///   runtime's own `block_on`, which this handle cannot know — so it
    ///   refuses rather than risk hanging. Own the runtime
    ///   ([`Tokio::current_thread`]), use a multi-thread one, or call the
    ///   runtime's own `block_on`.
    ///
    /// ```should_panic
    /// use cancelkit::{Runtime, rt::Tokio};
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let rt = Tokio::from_handle(runtime.handle().clone());
    /// rt.block_on(async {}); // panics: it could only hang
    /// ```
    #[track_caller]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self.inner.owned.as_ref().and_then(|o| o.0.as_ref()) {
            Some(rt) => refuse_inside_a_runtime(|| rt.block_on(fut)),
            None => {
                if self.inner.handle.runtime_flavor() == RuntimeFlavor::CurrentThread {
                    panic!(
                        "cancelkit: Tokio::block_on cannot drive a current-thread runtime it does \
                         not own (tokio's Handle::block_on does not run its tasks or timers, so \
                         this would hang); own one with Tokio::current_thread(), use a \
                         multi-thread runtime, or call the runtime's own block_on"
                    );
                }
                refuse_inside_a_runtime(|| self.inner.handle.block_on(fut))
            }
        }
    }
}

/// Runs tokio's `block_on`; if tokio refuses because the thread is already
/// driving a runtime, panics again at the caller's line with what to do.
/// (tokio has no public way to ask first; a thread that merely entered a
/// runtime's context, such as a blocking thread, is allowed.)
#[track_caller]
fn refuse_inside_a_runtime<T>(block_on: impl FnOnce() -> T) -> T {
    if Handle::try_current().is_err() {
        return block_on(); // outside any runtime: nothing to refuse
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(block_on)) {
        Ok(out) => out,
        Err(payload) => {
            let tokio_refused = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .is_some_and(|m| m.contains("Cannot start a runtime from within a runtime"));
            if tokio_refused {
                panic!(
                    "cancelkit: Tokio::block_on called from async code a tokio runtime is \
                     driving, where blocking the thread would stall the runtime; `.await` the \
                     future instead"
                );
            }
            std::panic::resume_unwind(payload)
        }
    }
}

// ===== impl Sleep =====

pin_project_lite::pin_project! {
    /// The sleep future of [`Tokio`]: a `tokio::time::Sleep`, held inline
    /// (no extra allocation).
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, Timer, rt::Tokio};
    ///
    /// let rt = Tokio::current_thread().unwrap();
    /// rt.block_on(rt.sleep(Duration::from_millis(1)));
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Sleep {
        #[pin]
        inner: tokio::time::Sleep,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().inner.poll(cx)
    }
}

// ===== impl TokioLocal =====

/// A tokio [`LocalSet`](tokio::task::LocalSet) on a current-thread runtime
/// of its own: local (`!Send`) tasks through
/// [`LocalSpawnerExt::spawn_local`](crate::local::LocalSpawnerExt::spawn_local),
/// and everything [`Tokio`] does.
///
/// The handle is `Send + Sync` and cheap to clone, so it is a
/// [`RuntimeHandle`](crate::RuntimeHandle): `Send` futures may be spawned
/// on it from any thread (they go to the runtime, which runs on the same
/// thread as the `LocalSet`), and [`TaskGroup`](crate::TaskGroup),
/// timeouts and the conformance suite work as on any runtime. Local tasks
/// can be spawned only on the thread that made it ([`ThreadBound`]);
/// both kinds make progress while that thread is inside
/// [`block_on`](Runtime::block_on).
///
/// When the last clone is dropped on its thread, the `LocalSet` is dropped
/// first (its pending tasks report
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled)), then the
/// runtime; dropped on another thread, the `LocalSet` waits for its own
/// thread to end. A task holding a clone keeps both alive, as with
/// [`Tokio`].
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use cancelkit::local::LocalSpawnerExt;
/// use cancelkit::{Runtime, SpawnerExt, rt::TokioLocal};
///
/// let rt = TokioLocal::new()?;
/// let hits = Rc::new(Cell::new(0));
/// let local = rt.spawn_local({
///     let hits = hits.clone();
///     async move { hits.set(hits.get() + 1) }
/// });
/// let sent = rt.spawn(async { 2 }); // Send futures too
/// rt.block_on(async { local.await.unwrap(); sent.await.unwrap() });
/// assert_eq!(hits.get(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct TokioLocal {
    inner: Arc<LocalInner>,
}

struct LocalInner {
    // Declared before `tokio`, so dropped before it: local tasks go while
    // the runtime they may use is still there.
    local: ThreadBound<tokio::task::LocalSet>,
    tokio: Tokio,
}

impl fmt::Debug for TokioLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioLocal")
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

impl TokioLocal {
    /// A fresh `LocalSet` on a fresh current-thread runtime (time and I/O
    /// drivers enabled), bound to the calling thread and owned by the
    /// returned handle and its clones.
    ///
    /// # Errors
    ///
    /// Fails if tokio cannot create its driver.
    ///
    /// ```
    /// use cancelkit::{Runtime, local::LocalSpawnerExt, rt::TokioLocal};
    ///
    /// let rt = TokioLocal::new()?;
    /// assert_eq!(rt.block_on(rt.spawn_local(async { 1 })).unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        Ok(TokioLocal {
            inner: Arc::new(LocalInner {
                local: ThreadBound::new("a TokioLocal's LocalSet", tokio::task::LocalSet::new()),
                tokio: Tokio::current_thread()?,
            }),
        })
    }

    /// The [`Tokio`] handle of the runtime under the `LocalSet`: what to
    /// give code that only spawns `Send` futures.
    ///
    /// ```
    /// let rt = cancelkit::rt::TokioLocal::new().unwrap();
    /// let _guard = rt.tokio().handle().enter();
    /// ```
    pub fn tokio(&self) -> &Tokio {
        &self.inner.tokio
    }

    /// [`Tokio::ctrl_c`] on the runtime under the `LocalSet`.
    ///
    /// # Errors
    ///
    /// As [`Tokio::ctrl_c`].
    ///
    /// ```
    /// use cancelkit::Signal;
    /// let rt = cancelkit::rt::TokioLocal::new().unwrap();
    /// assert!(!rt.ctrl_c().unwrap().is_raised());
    /// ```
    pub fn ctrl_c(&self) -> std::io::Result<OsSignal> {
        self.inner.tokio.ctrl_c()
    }

    /// [`Tokio::terminate`] on the runtime under the `LocalSet`.
    ///
    /// # Errors
    ///
    /// As [`Tokio::terminate`].
    ///
    /// ```
    /// use cancelkit::Signal;
    /// let rt = cancelkit::rt::TokioLocal::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        self.inner.tokio.terminate()
    }
}

impl LocalSpawner for TokioLocal {
    /// `LocalSet::spawn_local`, with tokio's `JoinHandle` dropped (detached).
    ///
    /// # Panics
    ///
    /// At the caller's line, off the thread that made this `TokioLocal`.
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static,
    {
        drop(self.inner.local.get().spawn_local(fut));
    }
}

impl Spawner for TokioLocal {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.tokio.spawn_detached(fut);
    }
}

impl crate::blocking::SpawnBlocking for TokioLocal {
    /// The runtime's `spawn_blocking`, as [`Tokio`]'s.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.tokio.spawn_blocking_detached(f);
    }
}

impl Timer for TokioLocal {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        self.inner.tokio.now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.inner.tokio.sleep_until(deadline)
    }
}

impl Runtime for TokioLocal {
    /// Runs `fut` to completion inside the `LocalSet` on its runtime
    /// (`LocalSet::block_on`), driving local and `Send` tasks alike.
    ///
    /// # Panics
    ///
    /// At the caller's line: off the thread that made this `TokioLocal`,
    /// and — as [`Tokio::block_on`](Runtime::block_on) — from async code a
    /// tokio runtime is driving.
    #[track_caller]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let local = self.inner.local.get();
        let Some(rt) = self.inner.tokio.inner.owned.as_ref().and_then(|o| o.0.as_ref()) else {
            unreachable!("a TokioLocal always owns its runtime")
        };
        refuse_inside_a_runtime(|| local.block_on(rt, fut))
    }
}
