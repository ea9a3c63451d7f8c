//! The smol adapter: [`Smol`] implements cancelkit's [`Runtime`] on an
//! [`async_executor::Executor`] (the executor smol itself uses), with timers
//! from `async-io`.
//!
//! [`Smol::current`] wraps smol's global executor, the one `smol::spawn`
//! and `smol::block_on` programs use. Any other smol executor only makes
//! progress while some thread runs it: [`Smol::new`] starts its own threads
//! that do so until the last clone is dropped; [`Smol::from_executor`]
//! wraps an executor the application already runs (for smol-macros' `main!`,
//! take it as `Arc<Executor<'static>>`). With an executor,
//! [`Runtime::block_on`] also runs it on the calling thread while it waits.
//!
//! This file uses only cancelkit's public API, as a third-party adapter
//! would.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;

use async_executor::{Executor, LocalExecutor};

use super::tracker::Tracker;
use crate::local::{LocalSpawner, ThreadBound};
use crate::signal::OsSignal;
use crate::{CancelToken, Runtime, Spawner, Timer};

// ===== impl Smol =====

/// A handle to a smol executor, implementing [`Runtime`].
///
/// Cheap to clone; clones share the executor.
///
/// # Caveats
///
/// A runtime from [`Smol::new`] lives as long as *any* clone, including
/// clones moved into its own tasks: a task that holds a clone keeps the
/// executor's threads running. Move only what the task needs (a sleep
/// future, for example) into tasks that may still be pending at shutdown.
///
/// # Examples
///
/// ```
/// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
///
/// let rt = Smol::new()?;
/// assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Smol {
    /// One allocation, so a clone is one reference-count increment (a
    /// `timeout` keeps a clone of its timer).
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: smol's global executor (`smol::spawn`).
    executor: Option<Arc<Executor<'static>>>,
    /// Present when we own the executor; dropped with the last clone, which
    /// stops its threads and drops every pending task (see [`Owned`]).
    owned: Option<Owned>,
}

impl Smol {
    fn from_parts(executor: Option<Arc<Executor<'static>>>, owned: Option<Owned>) -> Self {
        Smol {
            inner: Arc::new(Inner { executor, owned }),
        }
    }
}

impl fmt::Debug for Smol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smol")
            .field("global", &self.inner.executor.is_none())
            .field("owned", &self.inner.owned.is_some())
            .finish()
    }
}

/// An executor we own: the threads running it until `stop` is cancelled,
/// and the tasks spawned on it, tracked so that shutting down drops every
/// one of them.
///
/// # Why the tracking
///
/// async-executor drops its tasks when the executor is dropped, by waking
/// every task and then draining its queue once. A task woken by another
/// thread at that moment — async-io's reactor firing a timer, say — can
/// have its runnable pushed just after the drain: it then stays in the
/// queue of a state nobody can reach, its future is never dropped, and its
/// `Task` handle never resolves ([D6](crate#D6)). So before letting the executor go,
/// the adapter closes the gate its tasks check on every poll, wakes every
/// task that is waiting, and runs the executor itself until each of them
/// has returned (dropping its future) — and only then drops it, empty.
struct Owned {
    executor: Arc<Executor<'static>>,
    tracker: Arc<Tracker>,
    /// Set when the runtime is dropped by a thread that is ending (see
    /// [`SmolLocal`]): the drop must not run the executor there.
    no_blocking: AtomicBool,
    stop: CancelToken,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if self.no_blocking.load(Ordering::SeqCst) {
            // A thread that is ending cannot run an executor: wake the
            // tasks and leave them to the executor's own drop.
            self.stop.cancel();
            self.tracker.close();
            return;
        }
        self.stop.cancel();
        let me = std::thread::current().id();
        let mut on_own_thread = false;
        for t in self.threads.drain(..) {
            if t.thread().id() == me {
                // The last clone was dropped by a task on one of our own
                // threads; that thread exits by itself once the task
                // returns.
                on_own_thread = true;
            } else {
                let _ = t.join();
            }
        }
        let (executor, tracker) = (self.executor.clone(), self.tracker.clone());
        if on_own_thread {
            // The task running on this thread is one of those to drain, and
            // it cannot finish while we wait here: drain from another thread.
            let drain = move || drain(&tracker, &executor);
            if let Err(e) = std::thread::Builder::new()
                .name("cancelkit-smol-shutdown".into())
                .spawn(drain)
            {
                // No thread to be had: fall back on the executor's own drop.
                drop(e);
            }
        } else {
            drain(&tracker, &executor);
        }
    }
}

/// Runs an executor until every task it tracks has returned.
fn drain(tracker: &Tracker, executor: &Executor<'static>) {
    tracker.close();
    async_io::block_on(executor.run(tracker.until_empty()));
}

impl Smol {
    /// smol's global executor — the one `smol::spawn` uses, run by smol's
    /// own threads (`SMOL_THREADS`, one by default) — as programs that
    /// start with `smol::block_on` use it.
    ///
    /// [`block_on`](Runtime::block_on) is `smol::block_on`. The global
    /// executor never shuts down: tasks live until they finish or their
    /// [`Task`](crate::Task) handle cancels them.
    ///
    /// # Errors
    ///
    /// Never: smol's global executor starts on first use. (It returns a
    /// `Result` like every adapter's `current()`.)
    ///
    /// ```
    /// use cancelkit::{SpawnerExt, rt::Smol};
    ///
    /// smol::block_on(async {
    ///     let rt = Smol::current().unwrap();
    ///     assert_eq!(rt.spawn(async { 6 }).await.unwrap(), 6);
    /// });
    /// ```
    pub fn current() -> Result<Self, super::NoRuntime> {
        Ok(Smol::from_parts(None, None))
    }

    /// A fresh executor run by one thread per available core (at least
    /// one), stopped — and its pending tasks dropped — when the last clone
    /// is dropped.
    ///
    /// # Errors
    ///
    /// Fails if a thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::new()?;
    /// let task = rt.spawn(std::future::pending::<()>());
    /// drop(rt); // stops the executor: the task is dropped
    /// assert!(futures_lite::future::block_on(task).unwrap_err().is_cancelled());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(n)
    }

    /// Like [`Smol::new`] with exactly `threads` executor threads. With `0`,
    /// tasks only run while some thread is inside
    /// [`block_on`](Runtime::block_on).
    ///
    /// # Errors
    ///
    /// Fails if a thread cannot be spawned.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::with_threads(0)?;
    /// assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_threads(threads: usize) -> std::io::Result<Self> {
        let executor = Arc::new(Executor::new());
        let stop = CancelToken::new();
        let mut owned = Owned {
            executor: executor.clone(),
            tracker: Arc::default(),
            no_blocking: AtomicBool::new(false),
            stop: stop.clone(),
            threads: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let (ex, stop) = (Arc::clone(&executor), stop.clone());
            // On error, `owned` drops: the threads started so far stop.
            let handle = std::thread::Builder::new()
                .name(format!("cancelkit-smol-{i}"))
                .spawn(move || async_io::block_on(ex.run(stop.cancelled_owned())))?;
            owned.threads.push(handle);
        }
        Ok(Smol::from_parts(Some(executor), Some(owned)))
    }

    /// Wraps an executor the application already runs (for example with
    /// `smol::block_on(ex.run(...))` on its own threads).
    ///
    /// Tasks spawned through this handle run when the application runs the
    /// executor, or while a thread is inside [`block_on`](Runtime::block_on).
    ///
    /// Shutting down is the application's: its tasks are dropped when it
    /// drops the executor. (async-executor drops them by draining its queue
    /// once; a task woken by another thread at that very moment can be left
    /// undropped — see smol-rs/async-executor#163 for the same window. The
    /// runtimes [`Smol::new`] owns guard against it.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    ///
    /// let ex = Arc::new(async_executor::Executor::new());
    /// let rt = Smol::from_executor(ex.clone());
    /// assert_eq!(rt.block_on(rt.spawn(async { 9 })).unwrap(), 9);
    /// ```
    pub fn from_executor(executor: Arc<Executor<'static>>) -> Self {
        Smol::from_parts(Some(executor), None)
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
    /// use cancelkit::{Signal, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
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
    /// use cancelkit::{Signal, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        super::os_signals::terminate(self)
    }

    /// The underlying executor; `None` for smol's global one
    /// ([`Smol::current`]), which smol does not expose.
    ///
    /// ```
    /// let rt = cancelkit::rt::Smol::with_threads(0).unwrap();
    /// assert!(rt.executor().unwrap().is_empty());
    /// assert!(cancelkit::rt::Smol::current().unwrap().executor().is_none());
    /// ```
    pub fn executor(&self) -> Option<&Arc<Executor<'static>>> {
        self.inner.executor.as_ref()
    }
}

impl crate::blocking::SpawnBlocking for Smol {
    /// The `blocking` crate's pool (`smol::unblock`), shared by every smol
    /// executor; the closure always runs.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        // `.detach()`: dropping the `Task` of `unblock` would cancel it.
        smol::unblock(f).detach();
    }
}

impl Spawner for Smol {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // `.detach()` is essential: dropping an async-executor `Task`
        // cancels it.
        match (&self.inner.executor, &self.inner.owned) {
            (Some(executor), Some(owned)) => executor.spawn(owned.tracker.track(fut)).detach(),
            (Some(executor), None) => executor.spawn(fut).detach(),
            (None, _) => smol::spawn(fut).detach(),
        }
    }
}

impl Timer for Smol {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }
}

impl Runtime for Smol {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.inner.executor {
            Some(executor) => async_io::block_on(executor.run(fut)),
            None => smol::block_on(fut),
        }
    }
}

// ===== impl Sleep =====

/// The sleep future of [`Smol`]: an `async_io::Timer`.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, rt::Smol};
///
/// let rt = Smol::new().unwrap();
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

// ===== impl SmolLocal =====

/// An [`async_executor::LocalExecutor`] for local (`!Send`) tasks, beside
/// an executor for `Send` ones, both run by the thread that made it:
/// local tasks through
/// [`LocalSpawnerExt::spawn_local`](crate::local::LocalSpawnerExt::spawn_local),
/// and everything [`Smol`] does.
///
/// The handle is `Send + Sync` and cheap to clone, so it is a
/// [`RuntimeHandle`](crate::RuntimeHandle): `Send` futures may be spawned
/// from any thread, and [`TaskGroup`](crate::TaskGroup), timeouts and the
/// conformance suite work as on any runtime. Local tasks can be spawned
/// only on the thread that made it ([`ThreadBound`]); both kinds make
/// progress while that thread is inside [`block_on`](Runtime::block_on).
/// Timers come from `async-io`, as for [`Smol`].
///
/// When the last clone is dropped on its thread, every pending task —
/// local or not — is dropped before the drop returns (their handles
/// report [`JoinError::Cancelled`](crate::JoinError::Cancelled)); dropped
/// on another thread, the `Send` tasks are, and the local executor waits
/// for its own thread to end; there it is dropped by its own destructor,
/// which drains its queue once (the narrow window of smol-rs/async-executor#163
/// applies, as for [`Smol::from_executor`]). A task holding a clone keeps
/// the executors alive, as with [`Smol`]; if its thread ends with it still
/// pending, it is dropped with the thread's storage, without a panic.
///
/// # Examples
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use cancelkit::local::LocalSpawnerExt;
/// use cancelkit::{Runtime, rt::SmolLocal};
///
/// let rt = SmolLocal::new()?;
/// let seen = Rc::new(RefCell::new(String::new()));
/// let task = rt.spawn_local({
///     let seen = seen.clone();
///     async move { seen.borrow_mut().push_str("local") }
/// });
/// rt.block_on(task).unwrap();
/// assert_eq!(*seen.borrow(), "local");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SmolLocal {
    inner: Arc<LocalInner>,
}

struct LocalInner {
    local: ThreadBound<LocalExecutor<'static>>,
    /// The local tasks (see [`Owned`] for why they are tracked).
    tracker: Arc<Tracker>,
    /// The executor for `Send` tasks, with no threads of its own; declared
    /// last, so it drains (in its own drop) after the local tasks are gone.
    smol: Smol,
}

impl Drop for LocalInner {
    fn drop(&mut self) {
        // Only the executor's own thread can run its tasks to drop them;
        // elsewhere they stay with it until that thread ends. A thread that
        // is ending (a task holding the last clone, dropped with the
        // thread's storage) runs no executor at all: that would touch
        // thread-locals being torn down.
        match self.local.try_get() {
            Ok(local) => {
                self.tracker.close();
                async_io::block_on(local.run(self.tracker.until_empty()));
            }
            Err(e) if e.thread_is_ending() => {
                self.tracker.close();
                if let Some(owned) = &self.smol.inner.owned {
                    owned.no_blocking.store(true, Ordering::SeqCst);
                }
            }
            Err(_) => {}
        }
    }
}

impl fmt::Debug for SmolLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmolLocal")
            .field("local", &self.inner.local)
            .finish_non_exhaustive()
    }
}

impl SmolLocal {
    /// A fresh local executor bound to the calling thread, and an executor
    /// for `Send` tasks, both owned by the returned handle and its clones
    /// and run while the thread is inside [`block_on`](Runtime::block_on).
    ///
    /// # Errors
    ///
    /// None today (it starts no thread); a `Result` like every adapter's
    /// `new()`.
    ///
    /// ```
    /// use cancelkit::{Runtime, local::LocalSpawnerExt, rt::SmolLocal};
    ///
    /// let rt = SmolLocal::new()?;
    /// assert_eq!(rt.block_on(rt.spawn_local(async { 1 })).unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        Ok(SmolLocal {
            inner: Arc::new(LocalInner {
                local: ThreadBound::new("a SmolLocal's LocalExecutor", LocalExecutor::new()),
                tracker: Arc::default(),
                smol: Smol::with_threads(0)?,
            }),
        })
    }

    /// [`Smol::ctrl_c`], listened for on this runtime.
    ///
    /// # Errors
    ///
    /// As [`Smol::ctrl_c`].
    ///
    /// ```
    /// use cancelkit::Signal;
    /// let rt = cancelkit::rt::SmolLocal::new().unwrap();
    /// assert!(!rt.ctrl_c().unwrap().is_raised());
    /// ```
    pub fn ctrl_c(&self) -> std::io::Result<OsSignal> {
        self.inner.smol.ctrl_c()
    }

    /// [`Smol::terminate`], listened for on this runtime.
    ///
    /// # Errors
    ///
    /// As [`Smol::terminate`].
    ///
    /// ```
    /// use cancelkit::Signal;
    /// let rt = cancelkit::rt::SmolLocal::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        self.inner.smol.terminate()
    }

    /// The local executor, for smol's own API (its `spawn` returns smol's
    /// `Task`, which cancels on drop as cancelkit's does, but has no
    /// `abort` or `JoinError`).
    ///
    /// # Errors
    ///
    /// [`WrongThread`](crate::local::WrongThread) off the thread that made
    /// this `SmolLocal`.
    ///
    /// Run it through [`block_on`](Runtime::block_on) only: an executor run
    /// by hand (`ex.run(..)`) inside which the last `SmolLocal` clone is
    /// dropped would wait for its own task to end.
    ///
    /// ```
    /// use cancelkit::{Runtime, rt::SmolLocal};
    ///
    /// let rt = SmolLocal::new().unwrap();
    /// let ex = rt.local_executor().unwrap();
    /// assert_eq!(rt.block_on(ex.spawn(async { 3 })), 3);
    /// ```
    pub fn local_executor(
        &self,
    ) -> Result<std::rc::Rc<LocalExecutor<'static>>, crate::local::WrongThread> {
        self.inner.local.try_get()
    }

    /// The executor for `Send` tasks.
    fn executor(&self) -> &Arc<Executor<'static>> {
        match &self.inner.smol.inner.executor {
            Some(executor) => executor,
            None => unreachable!("SmolLocal owns its executor"),
        }
    }
}

impl LocalSpawner for SmolLocal {
    /// `LocalExecutor::spawn`, detached.
    ///
    /// # Panics
    ///
    /// At the caller's line, off the thread that made this `SmolLocal`.
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static,
    {
        let local = self.inner.local.get();
        local.spawn(self.inner.tracker.track(fut)).detach();
    }
}

impl Spawner for SmolLocal {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.smol.spawn_detached(fut);
    }
}

impl crate::blocking::SpawnBlocking for SmolLocal {
    /// As [`Smol`]'s: the `blocking` crate's pool.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.smol.spawn_blocking_detached(f);
    }
}

impl Timer for SmolLocal {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        self.inner.smol.sleep_until(deadline)
    }
}

impl Runtime for SmolLocal {
    /// Runs `fut` to completion on this thread, running the local executor
    /// and the `Send` one while it waits.
    ///
    /// # Panics
    ///
    /// At the caller's line, off the thread that made this `SmolLocal`.
    #[track_caller]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let local = self.inner.local.get();
        async_io::block_on(local.run(self.executor().run(fut)))
    }
}
