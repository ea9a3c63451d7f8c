//! The compio adapter: [`Compio`] implements cancelkit's [`Runtime`] and
//! [`LocalSpawner`] on a [`compio` runtime](compio::runtime::Runtime), a
//! thread-per-core completion runtime (io_uring on Linux, with a polling
//! fallback where io_uring is refused).
//!
//! A compio runtime lives on one thread and runs while that thread is
//! inside [`block_on`](Runtime::block_on). [`Compio`] is its `Send + Sync`
//! handle: local (`!Send`) tasks are spawned on the runtime's thread; `Send`
//! tasks from any thread (from another, they travel through a queue that a
//! task of the runtime empties).
//!
//! [`Compio::cancel_io`] connects cancelkit's tokens to compio's own
//! cancellation: cancelling the token cancels the compio operations in
//! flight inside a future — in the kernel, not only by dropping the future.
//!
//! compio's timers and signal futures are `!Send`, and cancelkit's
//! [`Timer`] hands out `Send` sleeps, so timers and OS signals come from
//! `async-io` and `async-signal` (whose reactor thread wakes the compio
//! task), as for [`Smol`](super::Smol).
//!
//! compio needs Rust 1.95; the rest of cancelkit builds with 1.85.
//!
//! This file uses only cancelkit's public API, as a third-party adapter
//! would.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use compio::runtime::Runtime as CompioRuntime;

use super::remote::Remote;
use super::tracker::Tracker;
use crate::local::{LocalSpawner, ThreadBound};
use crate::signal::OsSignal;
use crate::{CancelToken, Runtime, Spawner, Timer};

// ===== impl Compio =====

/// A compio runtime, owned by this handle and its clones, implementing
/// [`Runtime`], [`LocalSpawner`] and
/// [`SpawnBlocking`](crate::blocking::SpawnBlocking).
///
/// The runtime is bound to the thread that called [`Compio::new`] and runs
/// while that thread is inside [`block_on`](Runtime::block_on): every task
/// makes progress only then. The handle is `Send + Sync` and cheap to clone,
/// so it is a [`RuntimeHandle`](crate::RuntimeHandle):
///
/// - `Send` tasks may be spawned from any thread. On the runtime's thread
///   they go straight to compio's executor; from another, through a queue
///   that a task of the runtime empties the next time it runs.
/// - Local tasks ([`LocalSpawnerExt::spawn_local`](crate::local::LocalSpawnerExt::spawn_local))
///   only on the runtime's thread: elsewhere the spawn panics at the
///   caller's line, naming the thread it needs.
/// - Blocking work runs on compio's own thread pool (the one its runtime
///   uses for file operations), and starts at once, from any thread.
/// - Timers and OS signals come from `async-io` and `async-signal` (compio's
///   own are `!Send`).
///
/// # Shutdown
///
/// When the last clone is dropped on the runtime's thread, every pending
/// task is dropped before the drop returns (their handles report
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled), [D6](crate#D6)),
/// and so is every `Send` spawn still queued from another thread. (compio
/// itself drops its tasks only once no clone of its runtime is left, and
/// its own I/O futures hold clones, so the adapter tracks its tasks and
/// runs the runtime until each has returned.) Dropped on another thread,
/// the queued spawns are dropped at once, and the runtime does the same
/// when its own thread ends. A task holding a clone keeps the runtime
/// alive, as with every owned runtime; if its thread ends with it still
/// pending, it is dropped then, without a panic.
///
/// # Caveat: wakes from other threads
///
/// compio takes wake-ups from other threads (a timer of the `async-io`
/// reactor, a token cancelled elsewhere) through a bounded queue, which
/// [`Compio::new`] makes 1024 entries long. Past that, the waking thread
/// waits until the runtime's thread runs the runtime again: a runtime left
/// outside `block_on` with more than 1024 tasks woken from elsewhere holds
/// up whoever wakes them.
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use cancelkit::local::LocalSpawnerExt;
/// use cancelkit::{Runtime, SpawnerExt, rt::Compio};
///
/// let rt = Compio::new()?;
/// let count = Rc::new(Cell::new(0)); // !Send state, in a local task
/// let local = rt.spawn_local({
///     let count = count.clone();
///     async move { count.set(count.get() + 1) }
/// });
/// let sent = rt.spawn(async { 2 }); // a Send task, as on any runtime
/// rt.block_on(async {
///     local.await.unwrap();
///     assert_eq!(sent.await.unwrap(), 2);
/// });
/// assert_eq!(count.get(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Compio {
    inner: Arc<Inner>,
}

struct Inner {
    /// `Send` spawns from other threads, emptied by a task of the runtime.
    remote: Arc<Remote>,
    /// Every task this handle spawned (see "Shutdown" on [`Compio`]).
    tracker: Arc<Tracker>,
    runtime: ThreadBound<Home>,
    /// The runtime's blocking pool, shared with it: blocking work is handed
    /// to it directly, so it starts whether or not the runtime is running.
    pool: compio::driver::AsyncifyPool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Spawns that arrive from now on are dropped at once, and so are
        // those still queued: nothing will run them. The tasks are dropped
        // with the runtime (see `Home`'s drop): on its own thread, just
        // after this; elsewhere, when that thread ends.
        self.remote.close();
    }
}

/// The runtime, on its thread, with what must go when it goes.
struct Home {
    runtime: CompioRuntime,
    /// The same as [`Inner::remote`] and [`Inner::tracker`].
    remote: Arc<Remote>,
    tracker: Arc<Tracker>,
}

impl Drop for Home {
    /// Drops every task still pending before the runtime goes. compio's
    /// runtime drops its tasks only when no clone of it is left, and its
    /// own I/O futures hold clones across awaits, so the adapter does not
    /// rely on that: its tracked tasks are asked to return and the runtime
    /// runs until they have.
    fn drop(&mut self) {
        self.remote.close();
        if CompioRuntime::try_current().is_some() {
            // Inside a compio runtime's `block_on` (compio cannot nest
            // one): ask, and leave the rest to compio's own drop.
            self.tracker.close();
            return;
        }
        // Closed inside the runtime, so that the wake-ups are its own.
        let tracker = self.tracker.clone();
        self.runtime.block_on(async move {
            tracker.close();
            tracker.until_empty().await
        });
    }
}

/// Spawns a queued `Send` future; run by the receiving task, inside the
/// runtime.
fn spawn_received(fut: crate::rt::BoxedFuture) {
    CompioRuntime::with_current(|runtime| runtime.spawn(fut).detach());
}

impl fmt::Debug for Compio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compio")
            .field("runtime", &self.inner.runtime)
            .finish_non_exhaustive()
    }
}

/// The size of compio's queue of wakes from other threads (see the caveat
/// on [`Compio`]); compio's default is 64.
const CROSS_THREAD_WAKES: usize = 1024;

impl Compio {
    /// A fresh compio runtime bound to the calling thread, owned by the
    /// returned handle and its clones.
    ///
    /// # Errors
    ///
    /// If compio cannot set up its driver (neither io_uring nor polling is
    /// available).
    ///
    /// ```
    /// use cancelkit::{Runtime, SpawnerExt, rt::Compio};
    ///
    /// let rt = Compio::new()?;
    /// assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        let mut proactor = compio::driver::ProactorBuilder::new();
        let pool = proactor.create_or_get_thread_pool();
        proactor.reuse_thread_pool(pool.clone());
        let runtime = CompioRuntime::builder()
            .with_proactor(proactor)
            .sync_queue_size(CROSS_THREAD_WAKES)
            .build()?;
        let (remote, tracker) = (Arc::<Remote>::default(), Arc::<Tracker>::default());
        Ok(Compio {
            inner: Arc::new(Inner {
                remote: remote.clone(),
                tracker: tracker.clone(),
                runtime: ThreadBound::new(
                    "a compio runtime",
                    Home {
                        runtime,
                        remote,
                        tracker,
                    },
                ),
                pool,
            }),
        })
    }

    /// The compio runtime, for compio's own API.
    ///
    /// # Errors
    ///
    /// [`WrongThread`](crate::local::WrongThread) off the thread that made
    /// this `Compio`.
    ///
    /// Run it through [`block_on`](Runtime::block_on): a runtime run by
    /// hand (its own `block_on`) inside which the last `Compio` clone is
    /// dropped keeps its tasks until it returns.
    ///
    /// ```
    /// use cancelkit::{Runtime, rt::Compio};
    ///
    /// let rt = Compio::new().unwrap();
    /// let compio_rt = rt.runtime().unwrap();
    /// assert_eq!(rt.block_on(compio_rt.spawn(async { 3 })).unwrap(), 3);
    /// ```
    ///
    /// Tasks spawned through compio's API are not cancelkit's: they are
    /// dropped when compio drops its runtime, which it does only once no
    /// clone of it (such as this one) is left.
    pub fn runtime(&self) -> Result<CompioRuntime, crate::local::WrongThread> {
        self.inner.runtime.try_get().map(|home| home.runtime.clone())
    }

    /// A [`Signal`](crate::Signal) raised when the process receives Ctrl-C
    /// (`SIGINT`), through `async-signal`.
    ///
    /// Listening replaces the signal's default action (terminating the
    /// process) for the rest of the process, even after the listener is
    /// dropped, as with [`Smol::ctrl_c`](super::Smol::ctrl_c). The listener
    /// is a task of this runtime: the signal is seen while it runs.
    ///
    /// # Errors
    ///
    /// If the OS refuses the handler.
    ///
    /// ```
    /// use cancelkit::{Signal, rt::Compio};
    ///
    /// let rt = Compio::new().unwrap();
    /// assert!(!rt.ctrl_c().unwrap().is_raised());
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
    /// use cancelkit::{Signal, rt::Compio};
    ///
    /// let rt = Compio::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        super::os_signals::terminate(self)
    }
}

impl LocalSpawner for Compio {
    /// compio's `spawn`, detached.
    ///
    /// # Panics
    ///
    /// At the caller's line, off the thread that made this `Compio`.
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static,
    {
        let fut = self.inner.tracker.track(fut);
        self.inner.runtime.get().runtime.spawn(fut).detach();
    }
}

impl Spawner for Compio {
    /// compio's `spawn` on the runtime's thread; from any other, through
    /// the queue the runtime empties when it runs (see [`Compio`]).
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let fut = self.inner.tracker.track(fut);
        match self.inner.runtime.try_get() {
            Ok(home) => home.runtime.spawn(fut).detach(),
            Err(_) => self.inner.remote.push(Box::pin(fut)),
        }
    }
}

impl crate::blocking::SpawnBlocking for Compio {
    /// compio's thread pool (the one its runtime uses for blocking file
    /// operations), given `f` at once from any thread, whether or not the
    /// runtime is running. When all of the pool's threads (256) are busy,
    /// `f` gets a thread of its own rather than wait for one.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        if let Err(busy) = self.inner.pool.dispatch(f) {
            let f = busy.into_inner();
            // If no thread can be had either, `f` is dropped unrun (the
            // handle reports `Cancelled`). (Below the pool's limit, compio's
            // own dispatch panics instead when no thread can be started.)
            let _ = std::thread::Builder::new()
                .name("cancelkit-compio-blocking".into())
                .spawn(f);
        }
    }
}

impl Timer for Compio {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }
}

impl Runtime for Compio {
    /// Runs `fut` to completion on this thread, running the runtime's tasks
    /// while it waits.
    ///
    /// # Panics
    ///
    /// At the caller's line: off the thread that made this `Compio`, or
    /// inside a task of a compio runtime (blocking there would stall it;
    /// `.await` the future instead).
    #[track_caller]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let home = self.inner.runtime.get();
        if CompioRuntime::try_current().is_some() {
            panic!(
                "cancelkit: Compio::block_on called from async code a compio runtime is \
                 driving, where blocking the thread would stall the runtime; `.await` the \
                 future instead"
            );
        }
        // The receiving task, unless it runs already: compio drops every
        // task when a `block_on` panics, this one included.
        if let Some(receive) = self.inner.remote.receiver(spawn_received) {
            let receive = self.inner.tracker.track(receive);
            home.runtime.spawn(receive).detach();
        }
        home.runtime.block_on(fut)
    }
}

// ===== impl Sleep =====

/// The sleep future of [`Compio`]: an `async_io::Timer`.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, rt::Compio};
///
/// let rt = Compio::new().unwrap();
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

// ===== cancel_io =====

impl Compio {
    /// Runs `fut` with a compio cancel token attached that is cancelled
    /// when `token` is: compio operations in flight inside `fut` (a socket
    /// read, a file write) are cancelled in the kernel — io_uring's
    /// `AsyncCancel` — and complete with an error, which `fut` sees and
    /// handles as it would any I/O error. Operations `fut` starts after the
    /// cancel are cancelled as they start.
    ///
    /// `fut` is still polled to its end, as with compio's own
    /// [`with_cancel`](compio::runtime::FutureExt::with_cancel): a cancelled
    /// operation hands its buffer back and `fut` decides what to do.
    /// (`token.run_until_cancelled(fut)` drops `fut` instead, and the
    /// buffer with it.) An operation that had completed when the token was
    /// cancelled keeps its result.
    ///
    /// # Limits
    ///
    /// - compio finds the token through the waker `fut` is polled with: an
    ///   operation polled under another waker (inside a task `fut` spawns,
    ///   or a combinator that makes its own wakers, such as
    ///   `FuturesUnordered`) does not see it.
    /// - Wakers cloned inside `fut` hold compio's token, and through it the
    ///   runtime's driver; compio leaks that (rather than drop it on the
    ///   wrong thread) when the last such waker is dropped on another thread
    ///   — a timer of `async-io`, a token cancelled elsewhere. The driver's
    ///   ring then outlives the runtime.
    ///
    /// # Panics
    ///
    /// At the caller's line, off the thread that made this `Compio`.
    ///
    /// # Examples
    ///
    /// A read that would wait for ever returns once the token is cancelled:
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, Runtime, SpawnerExt, Timer, rt::Compio};
    /// use compio::io::AsyncReadExt;
    /// use compio::net::{TcpListener, TcpStream};
    ///
    /// let rt = Compio::new()?;
    /// let token = CancelToken::new();
    /// rt.block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let addr = listener.local_addr()?;
    ///     let (mut client, _server) =
    ///         futures_lite::future::try_zip(TcpStream::connect(addr), listener.accept()).await?;
    ///     // The peer never writes: this read would wait for ever.
    ///     let read = rt.cancel_io(&token, client.read_exact(Vec::with_capacity(16)));
    ///     let canceller = rt.spawn({
    ///         let (rt, token) = (rt.clone(), token.clone());
    ///         async move {
    ///             rt.sleep(Duration::from_millis(10)).await;
    ///             token.cancel();
    ///         }
    ///     });
    ///     let compio::BufResult(result, buffer) = read.await;
    ///     assert!(result.is_err()); // cancelled in flight
    ///     assert_eq!(buffer.capacity(), 16); // and the buffer handed back
    ///     canceller.await.unwrap();
    ///     Ok::<_, std::io::Error>(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn cancel_io<F: Future>(&self, token: &CancelToken, fut: F) -> CancelIo<F> {
        use compio::runtime::FutureExt as _;
        let theirs = self
            .inner
            .runtime
            .get()
            .runtime
            .enter(compio::runtime::CancelToken::new);
        CancelIo {
            fut: fut.with_cancel(theirs.clone()),
            ours: token.clone().cancelled_owned(),
            theirs: Some(theirs),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Compio::cancel_io`]: `fut`'s output.
    #[must_use = "futures do nothing unless polled"]
    pub struct CancelIo<F> {
        #[pin]
        fut: compio::runtime::WithCancel<F>,
        #[pin]
        ours: crate::token::WhenCancelledOwned,
        // Taken when cancelled.
        theirs: Option<compio::runtime::CancelToken>,
    }
}

impl<F> fmt::Debug for CancelIo<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelIo")
            .field("cancelled", &self.theirs.is_none())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for CancelIo<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Ours first, so that an operation `fut` starts in this poll after
        // the cancel registers with a cancelled token (and is cancelled).
        if this.theirs.is_some() && this.ours.poll(cx).is_ready() {
            if let Some(theirs) = this.theirs.take() {
                theirs.cancel();
            }
        }
        this.fut.poll(cx)
    }
}
