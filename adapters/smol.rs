//! The smol adapter: [`Smol`] implements cancelkit's [`Runtime`] on an
//! [`async_executor::Executor`] (the executor smol itself uses), with timers
//! from `async-io`.
//!
//! A smol executor only makes progress while some thread runs it.
//! [`Smol::new`] starts its own threads that do so until the last clone is
//! dropped; [`Smol::from_executor`] wraps an executor the application
//! already runs. In both, [`Runtime::block_on`] also runs the executor on
//! the calling thread while it waits.
//!
//! This file uses only cancelkit's public API, as a third-party adapter
//! would.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;

use async_executor::Executor;

use crate::{CancelToken, OsSignal, Runtime, Spawner, Timer};

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
/// use cancelkit::{Runtime, Spawner, rt::Smol};
///
/// let rt = Smol::new()?;
/// assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Smol {
    executor: Arc<Executor<'static>>,
    /// Present when we started the executor's threads; the last clone stops
    /// them and drops the executor (and with it every pending task).
    _owned: Option<Arc<Threads>>,
}

impl fmt::Debug for Smol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smol")
            .field("owned", &self._owned.is_some())
            .finish()
    }
}

/// Threads running an executor until `stop` is cancelled.
struct Threads {
    stop: CancelToken,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.cancel();
        let me = std::thread::current().id();
        for t in self.threads.drain(..) {
            // The last clone may be dropped by a task on one of our own
            // threads; that thread will exit by itself.
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

impl Smol {
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
    /// use cancelkit::{Spawner, rt::Smol};
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
    /// use cancelkit::{Runtime, Spawner, rt::Smol};
    ///
    /// let rt = Smol::with_threads(0)?;
    /// assert_eq!(rt.block_on(rt.spawn(async { 1 })).unwrap(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_threads(threads: usize) -> std::io::Result<Self> {
        let executor = Arc::new(Executor::new());
        let stop = CancelToken::new();
        let mut handles = Vec::with_capacity(threads);
        let mut owner = Threads {
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for i in 0..threads {
            let (ex, stop) = (Arc::clone(&executor), stop.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("cancelkit-smol-{i}"))
                .spawn(move || async_io::block_on(ex.run(stop.cancelled_owned())));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    owner.threads = handles;
                    return Err(e);
                }
            }
        }
        owner.threads = handles;
        Ok(Smol {
            executor,
            _owned: Some(Arc::new(owner)),
        })
    }

    /// Wraps an executor the application already runs (for example with
    /// `smol::block_on(ex.run(...))` on its own threads).
    ///
    /// Tasks spawned through this handle run when the application runs the
    /// executor, or while a thread is inside [`block_on`](Runtime::block_on).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cancelkit::{Runtime, Spawner, rt::Smol};
    ///
    /// let ex = Arc::new(async_executor::Executor::new());
    /// let rt = Smol::from_executor(ex.clone());
    /// assert_eq!(rt.block_on(rt.spawn(async { 9 })).unwrap(), 9);
    /// ```
    pub fn from_executor(executor: Arc<Executor<'static>>) -> Self {
        Smol {
            executor,
            _owned: None,
        }
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
        self.listen(async_signal::Signal::Int)
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
        #[cfg(unix)]
        {
            self.listen(async_signal::Signal::Term)
        }
        #[cfg(not(unix))]
        {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "SIGTERM does not exist on this platform",
            ))
        }
    }

    fn listen(&self, which: async_signal::Signal) -> std::io::Result<OsSignal> {
        use futures_lite::StreamExt as _;
        let mut signals = async_signal::Signals::new([which])?;
        Ok(OsSignal::listen(self, async move {
            // An I/O error reading the notification is not the signal.
            while let Some(received) = signals.next().await {
                if received.is_ok() {
                    break;
                }
            }
        }))
    }

    /// The underlying executor.
    ///
    /// ```
    /// let rt = cancelkit::rt::Smol::with_threads(0).unwrap();
    /// assert!(rt.executor().is_empty());
    /// ```
    pub fn executor(&self) -> &Arc<Executor<'static>> {
        &self.executor
    }
}

impl Spawner for Smol {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // `.detach()` is essential: dropping an async-executor `Task`
        // cancels it.
        self.executor.spawn(fut).detach();
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
        async_io::block_on(self.executor.run(fut))
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
