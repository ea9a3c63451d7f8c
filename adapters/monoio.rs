//! The monoio adapter: [`Monoio`] implements cancelkit's [`Runtime`] and
//! [`LocalSpawner`] on a [monoio](https://docs.rs/monoio) runtime, a
//! thread-per-core runtime (io_uring on Linux, with its epoll fallback
//! where io_uring is refused).
//!
//! A monoio runtime lives on one thread and runs while that thread is
//! inside [`block_on`](Runtime::block_on). [`Monoio`] is its `Send + Sync`
//! handle: local (`!Send`) tasks are spawned on the runtime's thread, `Send`
//! tasks from any thread (from another, they travel through a queue that a
//! task of the runtime empties).
//!
//! monoio's timers are `!Send`, its blocking pool must be attached when the
//! runtime is built and fed from inside it, and it has no signal listener
//! of its own: timers and OS signals come from `async-io` and
//! `async-signal`, and blocking work runs on the `blocking` crate's pool, as
//! for [`Smol`](super::Smol).
//!
//! This file uses only cancelkit's public API (and the task tracking the
//! smol adapter uses too), as a third-party adapter would.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::remote::Remote;
use super::tracker::Tracker;
use crate::local::{LocalSpawner, ThreadBound};
use crate::signal::OsSignal;
use crate::{Runtime, Spawner, Timer};

#[cfg(target_os = "linux")]
type MonoioRuntime = monoio::FusionRuntime<monoio::IoUringDriver, monoio::LegacyDriver>;
#[cfg(not(target_os = "linux"))]
type MonoioRuntime = monoio::FusionRuntime<monoio::LegacyDriver>;

thread_local! {
    /// How many `Monoio::block_on`s this thread is inside (monoio cannot
    /// run a second runtime inside one).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Whether this thread is inside some `Monoio::block_on` (`true` too while
/// its storage is torn down, where no runtime can be run).
fn inside_any() -> bool {
    DEPTH.try_with(|d| d.get() > 0).unwrap_or(true)
}

type LocalBoxed = Pin<Box<dyn Future<Output = ()> + 'static>>;

// ===== impl Monoio =====

/// A monoio runtime, owned by this handle and its clones, implementing
/// [`Runtime`], [`LocalSpawner`] and
/// [`SpawnBlocking`](crate::blocking::SpawnBlocking).
///
/// The runtime is bound to the thread that called [`Monoio::new`] and runs
/// while that thread is inside [`block_on`](Runtime::block_on): every task
/// makes progress only then. The handle is `Send + Sync` and cheap to clone,
/// so it is a [`RuntimeHandle`](crate::RuntimeHandle):
///
/// - `Send` tasks may be spawned from any thread: from another, through a
///   queue that a task of the runtime empties when it runs.
/// - Local tasks ([`LocalSpawnerExt::spawn_local`](crate::local::LocalSpawnerExt::spawn_local))
///   only on the runtime's thread: elsewhere the spawn panics at the
///   caller's line, naming the thread it needs.
/// - A task spawned on the runtime's thread outside `block_on` starts when
///   `block_on` next runs (monoio spawns only from inside its runtime).
/// - Blocking work runs on the `blocking` crate's pool and starts at once.
/// - Timers and OS signals come from `async-io` and `async-signal`.
///
/// # Shutdown
///
/// monoio does not own its pending tasks (a task waiting for a wake-up is
/// held by its wakers), so the adapter tracks every task it spawns. When
/// the last clone is dropped on the runtime's thread, it wakes them all and
/// runs the runtime until each has returned, dropping its future: their
/// handles report [`JoinError::Cancelled`](crate::JoinError::Cancelled)
/// ([D6](crate#D6)) before the drop returns. Dropped on another thread, the
/// queued spawns are dropped at once, and the runtime, bound to its thread,
/// does the same when that thread ends. A task holding a clone keeps the
/// runtime alive, as with every owned runtime; if its thread ends with it
/// still pending, it is dropped then, without a panic.
///
/// # Examples
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use cancelkit::local::LocalSpawnerExt;
/// use cancelkit::{Runtime, SpawnerExt, rt::Monoio};
///
/// let rt = Monoio::new()?;
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
pub struct Monoio {
    inner: Arc<Inner>,
}

struct Inner {
    /// `Send` spawns from other threads, emptied by a task of the runtime.
    remote: Arc<Remote>,
    /// Wake-ups sent to the back of the run queue (see [`Fair`]).
    yields: Arc<Yields>,
    /// Every task this handle spawned (see "Shutdown" on [`Monoio`]).
    tracker: Arc<Tracker>,
    home: ThreadBound<Home>,
}

/// What lives on the runtime's thread.
struct Home {
    runtime: RefCell<MonoioRuntime>,
    /// The same as [`Inner::tracker`]: the tasks to drop with the runtime.
    tracker: Arc<Tracker>,
    /// The same as [`Inner::remote`]: closed when the runtime goes.
    remote: Arc<Remote>,
    /// The thread is inside `block_on` (monoio spawns only from there).
    inside: Cell<bool>,
    /// Spawned on this thread outside `block_on`: spawned when it next runs.
    pending: RefCell<Vec<LocalBoxed>>,
}

impl Drop for Home {
    /// Drops every task still pending before the runtime goes (monoio does
    /// not own them; see "Shutdown" on [`Monoio`]): after the last handle
    /// was dropped elsewhere, or with the thread's storage when a task
    /// held the last handle.
    fn drop(&mut self) {
        // What other threads queued will not run: dropped (tracked, so
        // `until_empty` below does not wait for it).
        self.remote.close();
        drop(std::mem::take(self.pending.get_mut()));
        if inside_any() {
            // Inside another runtime's `block_on` (monoio cannot nest one),
            // or while the thread's storage is torn down: the tasks can
            // only be asked to return, and are left to their wakers.
            self.tracker.close();
            return;
        }
        // Closed inside the runtime, so that the wake-ups are its own.
        let tracker = self.tracker.clone();
        self.runtime.get_mut().block_on(async move {
            tracker.close();
            tracker.until_empty().await
        });
    }
}

impl Home {
    /// Spawns `fut` (already tracked) on the runtime, now or when
    /// `block_on` next runs.
    fn spawn<F: Future<Output = ()> + 'static>(&self, fut: F) {
        if self.inside.get() {
            drop(monoio::spawn(fut)); // a dropped JoinHandle detaches
        } else {
            self.pending.borrow_mut().push(Box::pin(fut));
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Nothing will run what other threads queued from now on. The tasks
        // are dropped with `home`, on the runtime's thread (see `Home`'s
        // drop): just after this, or when that thread ends.
        self.remote.close();
    }
}

impl fmt::Debug for Monoio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monoio")
            .field("home", &self.inner.home)
            .finish_non_exhaustive()
    }
}

impl Monoio {
    /// A fresh monoio runtime bound to the calling thread (io_uring where
    /// the kernel allows it, epoll otherwise), owned by the returned handle
    /// and its clones.
    ///
    /// # Errors
    ///
    /// If monoio cannot set up its driver.
    ///
    /// ```
    /// use cancelkit::{Runtime, SpawnerExt, rt::Monoio};
    ///
    /// let rt = Monoio::new()?;
    /// assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> std::io::Result<Self> {
        let runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().build()?;
        let (tracker, remote) = (Arc::<Tracker>::default(), Arc::<Remote>::default());
        Ok(Monoio {
            inner: Arc::new(Inner {
                remote: remote.clone(),
                yields: Arc::default(),
                tracker: tracker.clone(),
                home: ThreadBound::new(
                    "a monoio runtime",
                    Home {
                        tracker,
                        remote,
                        runtime: RefCell::new(runtime),
                        inside: Cell::new(false),
                        pending: RefCell::default(),
                    },
                ),
            }),
        })
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
    /// use cancelkit::{Signal, rt::Monoio};
    ///
    /// let rt = Monoio::new().unwrap();
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
    /// use cancelkit::{Signal, rt::Monoio};
    ///
    /// let rt = Monoio::new().unwrap();
    /// # #[cfg(unix)]
    /// assert!(!rt.terminate().unwrap().is_raised());
    /// ```
    pub fn terminate(&self) -> std::io::Result<OsSignal> {
        super::os_signals::terminate(self)
    }
}

impl LocalSpawner for Monoio {
    /// monoio's `spawn`, detached (on the runtime's thread outside
    /// `block_on`: when it next runs).
    ///
    /// # Panics
    ///
    /// At the caller's line, off the thread that made this `Monoio`.
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static,
    {
        let home = self.inner.home.get();
        let fut = Fair::new(&self.inner.yields, fut);
        home.spawn(self.inner.tracker.track(fut));
    }
}

impl Spawner for Monoio {
    /// monoio's `spawn` on the runtime's thread; from any other, through
    /// the queue the runtime empties when it runs (see [`Monoio`]).
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let fut = self.inner.tracker.track(Fair::new(&self.inner.yields, fut));
        match self.inner.home.try_get() {
            Ok(home) => home.spawn(fut),
            Err(_) => self.inner.remote.push(Box::pin(fut)),
        }
    }
}

impl crate::blocking::SpawnBlocking for Monoio {
    /// The `blocking` crate's pool (as `smol::unblock`); the closure starts
    /// at once, whether or not the runtime is running.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        // `.detach()`: dropping the `Task` of `unblock` would cancel it.
        blocking::unblock(f).detach();
    }
}

impl Timer for Monoio {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }
}

impl Runtime for Monoio {
    /// Runs `fut` to completion on this thread, running the runtime's tasks
    /// while it waits.
    ///
    /// # Panics
    ///
    /// At the caller's line: off the thread that made this `Monoio`, or
    /// inside a task of this or another `Monoio` runtime (blocking there
    /// would stall it; `.await` the future instead).
    #[track_caller]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let home = self.inner.home.get();
        let runtime = match home.runtime.try_borrow_mut() {
            Ok(runtime) if !inside_any() => Some(runtime),
            _ => None,
        };
        let Some(mut runtime) = runtime else {
            panic!(
                "cancelkit: Monoio::block_on called from async code a monoio runtime is \
                 driving, where blocking the thread would stall the runtime; `.await` the \
                 future instead"
            );
        };
        home.inside.set(true);
        DEPTH.with(|d| d.set(d.get() + 1));
        let _outside = Outside(&home.inside);
        let (remote, tracker) = (self.inner.remote.clone(), self.inner.tracker.clone());
        let yields = self.inner.yields.clone();
        let pending = std::mem::take(&mut *home.pending.borrow_mut());
        runtime.block_on(Fair::new(
            &self.inner.yields.clone(),
            async move {
                for fut in pending {
                    drop(monoio::spawn(fut));
                }
                if let Some(receive) = remote.receiver(|fut| drop(monoio::spawn(fut))) {
                drop(monoio::spawn(tracker.track(receive)));
            }
                yields.start_pumping(&tracker);
                fut.await
            },
        ))
    }
}

/// Marks the thread as outside `block_on` again when dropped (also when
/// the future panics).
struct Outside<'a>(&'a Cell<bool>);

impl Drop for Outside<'_> {
    fn drop(&mut self) {
        self.0.set(false);
        let _ = DEPTH.try_with(|d| d.set(d.get() - 1));
    }
}

// ===== fair yields =====

/// Wake-ups a task gave itself during its own poll, delivered after the
/// other ready tasks ran and the driver turned.
///
/// monoio runs a task that woke itself while being polled (a `yield_now`)
/// again *first*, ahead of every other ready task (its scheduler's
/// `yield_now` pushes to the front), and takes in wake-ups from other
/// threads (timers, tokens cancelled elsewhere) only when its run queue is
/// empty. A task waiting in a `yield_now` loop for another task, or for a
/// timer, would wait for ever. Every task of this adapter, and `block_on`'s
/// future, is wrapped in [`Fair`], which holds such a wake-up back and
/// hands it to the pumping task; the pump waits for a wake-up of its own
/// from another thread (which monoio takes in with the others, at its next
/// driver turn), then wakes the held-back tasks, which go to the back of
/// the queue — as tokio runs a yielded task after its next driver turn.
#[derive(Default)]
struct Yields {
    state: Mutex<YieldsState>,
}

#[derive(Default)]
struct YieldsState {
    deferred: Vec<Waker>,
    /// The pumping task's waker, while it waits.
    pump: Option<Waker>,
    /// A pumping task runs on the runtime.
    pumping: bool,
}

impl Yields {
    fn lock(&self) -> std::sync::MutexGuard<'_, YieldsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn defer(&self, waker: Waker) {
        let pump = {
            let mut state = self.lock();
            state.deferred.push(waker);
            state.pump.take()
        };
        if let Some(pump) = pump {
            pump.wake();
        }
    }

    /// Inside `block_on`: spawns the pumping task, unless one runs.
    fn start_pumping(self: &Arc<Self>, tracker: &Arc<Tracker>) {
        let mut state = self.lock();
        if state.pumping {
            return;
        }
        state.pumping = true;
        drop(state);
        drop(monoio::spawn(tracker.track(Pump {
            yields: self.clone(),
            turn: None,
        })));
    }
}

/// The task that delivers deferred yields (see [`Yields`]).
struct Pump {
    yields: Arc<Yields>,
    /// A wake-up of this task from another thread, which monoio takes in
    /// only when it turns its driver: the deferred wakes wait for it.
    turn: Option<blocking::Task<()>>,
}

impl Drop for Pump {
    fn drop(&mut self) {
        let deferred = {
            let mut state = self.yields.lock();
            state.pumping = false;
            state.pump = None;
            std::mem::take(&mut state.deferred)
        };
        // Nobody would deliver them now: deliver them as they are.
        deferred.into_iter().for_each(Waker::wake);
    }
}

impl Future for Pump {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(turn) = &mut self.turn {
                if Pin::new(turn).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.turn = None;
                // The driver has turned since these yielded: wake-ups from
                // other threads got in. Other tasks' wakers, from this
                // task: each goes to the back of the queue.
                let deferred = std::mem::take(&mut self.yields.lock().deferred);
                deferred.into_iter().for_each(Waker::wake);
            }
            let mut state = self.yields.lock();
            if state.deferred.is_empty() {
                state.pump = Some(cx.waker().clone());
                return Poll::Pending;
            }
            drop(state);
            self.turn = Some(blocking::unblock(|| {}));
        }
    }
}

/// The waker [`Fair`] polls its future with: a wake-up during the poll is
/// only noted; any other is passed on.
struct FairWaker {
    /// The task's own (monoio's) waker, as of its last poll.
    task: Mutex<Option<Waker>>,
    polling: AtomicBool,
    woken_while_polling: AtomicBool,
}

impl std::task::Wake for FairWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::SeqCst) {
            self.woken_while_polling.store(true, Ordering::SeqCst);
            // Polled again once the poll has ended (see `Fair::poll`).
            if self.polling.load(Ordering::SeqCst) {
                return;
            }
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// A task's future, whose wake-ups of itself during its own poll are
    /// delivered from the back of the run queue (see [`Yields`]).
    struct Fair<F> {
        #[pin]
        fut: F,
        waker: Arc<FairWaker>,
        yields: Arc<Yields>,
    }
}

impl<F> Fair<F> {
    fn new(yields: &Arc<Yields>, fut: F) -> Self {
        Fair {
            fut,
            waker: Arc::new(FairWaker {
                task: Mutex::new(None),
                polling: AtomicBool::new(false),
                woken_while_polling: AtomicBool::new(false),
            }),
            yields: yields.clone(),
        }
    }
}

impl<F: Future> Future for Fair<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        {
            let mut task = this.waker.task.lock().unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        this.waker.polling.store(true, Ordering::SeqCst);
        let waker = Waker::from(this.waker.clone());
        let polled = this.fut.poll(&mut Context::from_waker(&waker));
        this.waker.polling.store(false, Ordering::SeqCst);
        if this.waker.woken_while_polling.swap(false, Ordering::SeqCst) && polled.is_pending() {
            this.yields.defer(cx.waker().clone());
        }
        polled
    }
}

// ===== impl Sleep =====

/// The sleep future of [`Monoio`]: an `async_io::Timer`.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, rt::Monoio};
///
/// let rt = Monoio::new().unwrap();
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
