//! Blocking work that can be asked to stop: file systems, compression,
//! CPU-bound steps, run on the runtime's blocking thread pool with a
//! synchronous view of a cancel token.
//!
//! No runtime can cancel a closure that is running on a thread (tokio
//! documents it as impossible, tokio-rs/tokio#4853): a thread cannot be
//! stopped from outside, only asked. So cancelkit asks, the same way on
//! every runtime:
//!
//! - [`SpawnBlocking`] is one method, `spawn_blocking_detached`: run a
//!   closure on the runtime's pool for blocking work (tokio's
//!   `spawn_blocking`, smol's [`unblock`](https://docs.rs/blocking), async-std's
//!   `spawn_blocking`). An adapter implements it; everything else is built
//!   on it, once.
//! - [`SpawnBlockingExt::spawn_blocking`] gives the closure a
//!   [`BlockingToken`] — [`is_cancelled`](BlockingToken::is_cancelled),
//!   the cause, and a blocking [`wait_timeout`](BlockingToken::wait_timeout)
//!   that returns early on cancel — and returns a [`BlockingTask`]: await
//!   it for the closure's value; **drop it and the token is cancelled** (the
//!   closure is asked to stop, as a dropped [`Task`](crate::Task) is);
//!   [`detach`](BlockingTask::detach) it to let the closure run on.
//! - A closure that panics gives [`JoinError::Panicked`]; one whose token
//!   was cancelled before a pool thread picked it up is never started, and
//!   gives [`JoinError::Cancelled`] — as does one the runtime drops without
//!   running (it shut down first). A closure that ignores its token runs
//!   to its end: the handle resolves when it returns, never before — there
//!   is nothing else honest to report ([L3](crate#L3)).
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use std::time::Duration;
//! use cancelkit::blocking::SpawnBlockingExt;
//! use cancelkit::{Runtime, rt::Smol};
//!
//! let rt = Smol::new().unwrap();
//! let (started, has_started) = std::sync::mpsc::channel();
//! // Work in steps, checking the token between them.
//! let job = rt.spawn_blocking(move |token| {
//!     started.send(()).unwrap();
//!     let mut steps = 0;
//!     while !token.wait_timeout(Duration::from_millis(1)) {
//!         steps += 1;
//!     }
//!     steps
//! });
//! has_started.recv().unwrap();
//! job.abort(); // ask it to stop; it returns what it did so far
//! let steps = rt.block_on(job).unwrap();
//! assert!(steps < 1_000_000);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::CancelToken;
use crate::task::{JoinError, drop_quietly, replace_waker};
use crate::token::{CancelKind, Cancelled};

/// A runtime that can run blocking closures on threads kept for them.
///
/// Implemented by every adapter in [`rt`](crate::rt) and by the sim
/// runtime (in virtual time); implement it for a runtime of your own, then use
/// [`SpawnBlockingExt::spawn_blocking`].
///
/// # Contract
///
/// `spawn_blocking_detached` returns at once; `f` runs once, on a thread
/// where blocking is allowed (never on a thread that polls async tasks),
/// or — if the runtime is shutting down or gone — is dropped without
/// running. Its result is not observed: cancelkit catches panics itself.
///
/// # Examples
///
/// ```
/// use cancelkit::blocking::SpawnBlocking;
///
/// /// A runtime whose blocking pool is "a new thread each time".
/// struct Threads;
///
/// impl SpawnBlocking for Threads {
///     fn spawn_blocking_detached<F>(&self, f: F)
///     where
///         F: FnOnce() + Send + 'static,
///     {
///         std::thread::spawn(f);
///     }
/// }
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// Threads.spawn_blocking_detached(move || tx.send(7).unwrap());
/// assert_eq!(rx.recv().unwrap(), 7);
/// ```
pub trait SpawnBlocking {
    /// Runs `f` on a thread for blocking work; see the trait's contract.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::blocking::SpawnBlocking;
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// cancelkit::rt::Smol::new().unwrap().spawn_blocking_detached(move || tx.send(1).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 1);
    /// # }
    /// ```
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static;
}

/// [`spawn_blocking`](SpawnBlockingExt::spawn_blocking) for every
/// [`SpawnBlocking`] runtime (a blanket implementation: nothing to write).
pub trait SpawnBlockingExt: SpawnBlocking {
    /// Runs `f` on the runtime's blocking pool with a [`BlockingToken`],
    /// and returns its handle.
    ///
    /// The handle resolves to `f`'s value once `f` returns; dropping it
    /// cancels the token ([`CancelKind::TaskCancelled`], at the line that
    /// dropped or aborted it) so that `f` can stop early. See the
    /// [module](self) for the whole contract.
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use cancelkit::blocking::SpawnBlockingExt;
    /// use cancelkit::{Runtime, rt::Tokio};
    ///
    /// let rt = Tokio::new().unwrap();
    /// let sum = rt.block_on(rt.spawn_blocking(|_token| (1..=10).sum::<u32>()));
    /// assert_eq!(sum.unwrap(), 55);
    /// # }
    /// ```
    fn spawn_blocking<F, T>(&self, f: F) -> BlockingTask<T>
    where
        F: FnOnce(&BlockingToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_with_token(self, CancelToken::new(), None, f)
    }
}

impl<S: SpawnBlocking + ?Sized> SpawnBlockingExt for S {}

/// [`SpawnBlockingExt::spawn_blocking`] with the token given (a group hands
/// its blocking work a child of its own).
///
/// `may_start`, if given, is asked once, on the pool thread, right before
/// `f` would start: `false` and `f` never starts (a group that already
/// reported the work as not started).
pub(crate) fn spawn_with_token<S, F, T>(
    rt: &S,
    token: CancelToken,
    may_start: Option<StartHook>,
    f: F,
) -> BlockingTask<T>
where
    S: SpawnBlocking + ?Sized,
    F: FnOnce(&BlockingToken) -> T + Send + 'static,
    T: Send + 'static,
{
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            outcome: None,
            joiner: None,
            handle_gone: false,
        }),
    });
    let job = Job {
        f: Some(f),
        may_start,
        token: BlockingToken {
            token: token.clone(),
        },
        shared: shared.clone(),
    };
    rt.spawn_blocking_detached(move || job.run());
    BlockingTask {
        shared,
        token,
        detached: false,
    }
}

/// A handle whose closure never runs (a closed group's): `Cancelled`.
pub(crate) fn never_run<T: Send + 'static>() -> BlockingTask<T> {
    struct Refuse;
    impl SpawnBlocking for Refuse {
        fn spawn_blocking_detached<F>(&self, f: F)
        where
            F: FnOnce() + Send + 'static,
        {
            drop(f);
        }
    }
    spawn_with_token(&Refuse, CancelToken::new(), None, |_| {
        unreachable!("never run")
    })
}

// ===== the closure's side =====

/// The synchronous view of a cancel token that blocking work gets.
///
/// ```
/// use std::time::{Duration, Instant};
/// use cancelkit::blocking::BlockingToken;
/// use cancelkit::CancelToken;
///
/// let token = CancelToken::new();
/// let view = BlockingToken::new(token.clone());
/// let t0 = Instant::now();
/// assert!(!view.wait_timeout(Duration::from_millis(5)));
/// assert!(t0.elapsed() >= Duration::from_millis(5));
/// token.cancel();
/// assert!(view.wait_timeout(Duration::from_secs(3600))); // at once
/// assert!(view.is_cancelled());
/// ```
#[derive(Clone)]
pub struct BlockingToken {
    token: CancelToken,
}

impl BlockingToken {
    /// A view of `token`, for blocking code handed one by other means.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// let view = cancelkit::blocking::BlockingToken::new(token.clone());
    /// token.cancel();
    /// assert!(view.is_cancelled());
    /// ```
    pub fn new(token: CancelToken) -> Self {
        BlockingToken { token }
    }

    /// Whether the work was asked to stop: one atomic load.
    ///
    /// ```
    /// let view = cancelkit::blocking::BlockingToken::new(cancelkit::CancelToken::new());
    /// assert!(!view.is_cancelled());
    /// view.token().cancel();
    /// assert!(view.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the work was asked to stop, if it was.
    ///
    /// ```
    /// use cancelkit::token::CancelKind;
    ///
    /// let view = cancelkit::blocking::BlockingToken::new(cancelkit::CancelToken::new());
    /// assert!(view.reason().is_none());
    /// view.token().cancel();
    /// assert_eq!(view.reason().unwrap().kind(), CancelKind::Explicit);
    /// ```
    pub fn reason(&self) -> Option<Cancelled> {
        self.token.reason()
    }

    /// Blocks this thread until the token is cancelled or `timeout`
    /// passed; returns whether it is cancelled. `Duration::MAX` waits for
    /// the cancel alone (or forever, if it never comes).
    ///
    /// For a thread that sleeps between steps of its work: a sleep that a
    /// cancel cuts short. Never call it from async code (it blocks).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let token = cancelkit::CancelToken::new();
    /// let view = cancelkit::blocking::BlockingToken::new(token.clone());
    /// let worker = std::thread::spawn(move || {
    ///     let mut steps = 0;
    ///     while !view.wait_timeout(Duration::from_millis(1)) {
    ///         steps += 1; // one step of work per turn
    ///     }
    ///     steps
    /// });
    /// token.cancel();
    /// let _steps_done = worker.join().unwrap(); // it stopped when asked
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if self.token.is_cancelled() {
            return true;
        }
        // On a closure of the sim's blocking pool: in virtual time.
        #[cfg(feature = "sim")]
        if let Some(cancelled) = crate::sim::blocking::wait_timeout(&self.token, timeout) {
            return cancelled;
        }
        let signal = Arc::new((Mutex::new(false), Condvar::new()));
        let _registered = self.token.on_cancel({
            let signal = signal.clone();
            move |_| {
                *signal.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
                signal.1.notify_all();
            }
        });
        let deadline = Instant::now().checked_add(timeout);
        let mut fired = signal.0.lock().unwrap_or_else(PoisonError::into_inner);
        while !*fired {
            let wait = match deadline {
                None => Duration::from_secs(3600),
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => break,
                },
            };
            fired = signal
                .1
                .wait_timeout(fired, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(fired);
        self.token.is_cancelled()
    }

    /// The token itself, to hand to async code or to make children of.
    ///
    /// ```
    /// let view = cancelkit::blocking::BlockingToken::new(cancelkit::CancelToken::new());
    /// let child = view.token().child();
    /// view.token().cancel();
    /// assert!(child.is_cancelled());
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }
}

impl fmt::Debug for BlockingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Asked right before a blocking closure starts; `false`: it never does.
pub(crate) type StartHook = Box<dyn FnOnce() -> bool + Send>;

/// What the pool runs: the closure, and the report of its outcome. If the
/// runtime drops it unrun, its destructor reports `Cancelled`.
struct Job<F, T> {
    f: Option<F>,
    may_start: Option<StartHook>,
    token: BlockingToken,
    shared: Arc<Shared<T>>,
}

impl<F, T> Job<F, T>
where
    F: FnOnce(&BlockingToken) -> T,
{
    fn run(mut self) {
        let f = self.f.take().expect("a job runs once");
        // Cancelled first: the hook marks the work as started.
        let may_start = self.may_start.take();
        if self.token.is_cancelled() || may_start.is_some_and(|may_start| !may_start()) {
            // Asked to stop before it started (L3): it never starts.
            drop_quietly(f);
            self.shared.complete(Err(JoinError::Cancelled));
            return;
        }
        let token = &self.token;
        let outcome = match catch_unwind(AssertUnwindSafe(|| f(token))) {
            Ok(value) => Ok(value),
            Err(payload) => Err(JoinError::Panicked(payload)),
        };
        self.shared.complete(outcome);
    }
}

impl<F, T> Drop for Job<F, T> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            // Never run: the runtime refused or dropped it.
            drop_quietly(f);
            self.shared.complete(Err(JoinError::Cancelled));
        }
    }
}

// ===== the handle's side =====

struct Shared<T> {
    slot: Mutex<Slot<T>>,
}

struct Slot<T> {
    /// Set once, when the closure returned, panicked, or was dropped unrun.
    outcome: Option<Option<Result<T, JoinError>>>,
    joiner: Option<Waker>,
    /// The handle is gone: an outcome is dropped (quietly) at once.
    handle_gone: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn complete(&self, outcome: Result<T, JoinError>) {
        let (unwanted, joiner) = {
            let mut slot = self.lock();
            if slot.handle_gone {
                slot.outcome = Some(None);
                (Some(outcome), None)
            } else {
                slot.outcome = Some(Some(outcome));
                (None, slot.joiner.take())
            }
        };
        // Outside the lock; a value or payload whose destructor panics must
        // not unwind into the pool's thread.
        drop_quietly(unwanted);
        if let Some(joiner) = joiner {
            joiner.wake();
        }
    }
}

/// A handle to blocking work: **dropping it asks the work to stop** (its
/// token is cancelled); awaiting it gives the closure's value.
///
/// Made by [`SpawnBlockingExt::spawn_blocking`].
///
/// # Contract
///
/// - `.await` resolves once the closure returned (`Ok(value)`), panicked
///   (`Err(JoinError::Panicked)`), or never started
///   (`Err(JoinError::Cancelled)`: its token was cancelled before a pool
///   thread picked it up, or its runtime dropped it). It never resolves
///   before the closure ended: a closure cannot be stopped from outside
///   ([L3](crate#L3)).
/// - Dropping the handle before the closure ended, or
///   [`abort`](Self::abort), cancels the closure's token (kind
///   [`CancelKind::TaskCancelled`], at `abort`'s caller's line; a drop
///   cannot say where it happened); [`detach`](Self::detach) lets the
///   closure run on with its token untouched.
/// - Awaiting `&mut handle` is cancel safe: the value stays in the handle.
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use std::time::Duration;
/// use cancelkit::blocking::SpawnBlockingExt;
/// use cancelkit::token::CancelKind;
/// use cancelkit::{Runtime, rt::Tokio};
///
/// let rt = Tokio::new().unwrap();
/// let (started, has_started) = std::sync::mpsc::channel();
/// let job = rt.spawn_blocking(move |token| {
///     started.send(()).unwrap();
///     token.wait_timeout(Duration::MAX); // until asked to stop
///     token.reason().unwrap().kind()
/// });
/// has_started.recv().unwrap();
/// job.abort();
/// assert_eq!(rt.block_on(job).unwrap(), CancelKind::TaskCancelled);
/// # }
/// ```
#[must_use = "blocking work is asked to stop when its handle is dropped; use `.detach()` to let it run"]
pub struct BlockingTask<T> {
    shared: Arc<Shared<T>>,
    token: CancelToken,
    detached: bool,
}

impl<T> BlockingTask<T> {
    /// Asks the closure to stop (cancels its token) and returns at once;
    /// await the handle to wait for the closure to end.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancelkit::blocking::SpawnBlockingExt;
    /// # struct Threads;
    /// # impl cancelkit::blocking::SpawnBlocking for Threads {
    /// #     fn spawn_blocking_detached<F: FnOnce() + Send + 'static>(&self, f: F) {
    /// #         std::thread::spawn(f);
    /// #     }
    /// # }
    ///
    /// // `Threads`: a pool of one new thread per closure (hidden above).
    /// let job = Threads.spawn_blocking(|token| token.wait_timeout(Duration::from_secs(3600)));
    /// job.abort();
    /// job.abort(); // idempotent
    /// // Asked before or while it ran: Ok(true) if it saw the cancel,
    /// // Err(Cancelled) if it never started.
    /// let out = futures_lite::future::block_on(job);
    /// assert!(matches!(out, Ok(true)) || out.unwrap_err().is_cancelled());
    /// ```
    #[track_caller]
    pub fn abort(&self) {
        self.token
            .cancel_at(CancelKind::TaskCancelled, None, Location::caller());
    }

    /// Lets the closure run to its end without a handle; its token is not
    /// cancelled, and its value is dropped.
    ///
    /// ```
    /// use cancelkit::blocking::SpawnBlockingExt;
    /// # struct Threads;
    /// # impl cancelkit::blocking::SpawnBlocking for Threads {
    /// #     fn spawn_blocking_detached<F: FnOnce() + Send + 'static>(&self, f: F) {
    /// #         std::thread::spawn(f);
    /// #     }
    /// # }
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// Threads
    ///     .spawn_blocking(move |token| tx.send(token.is_cancelled()).unwrap())
    ///     .detach();
    /// assert_eq!(rx.recv().unwrap(), false); // it ran, its token untouched
    /// ```
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// The closure's token (cancel it, make children of it, or watch it).
    ///
    /// ```
    /// use cancelkit::blocking::SpawnBlockingExt;
    /// # struct Threads;
    /// # impl cancelkit::blocking::SpawnBlocking for Threads {
    /// #     fn spawn_blocking_detached<F: FnOnce() + Send + 'static>(&self, f: F) {
    /// #         std::thread::spawn(f);
    /// #     }
    /// # }
    ///
    /// let job = Threads.spawn_blocking(|token| token.wait_timeout(std::time::Duration::MAX));
    /// let watcher = job.token().clone();
    /// job.abort();
    /// assert!(watcher.is_cancelled());
    /// # let _ = futures_lite::future::block_on(job);
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Whether the closure has ended (returned, panicked, or was dropped
    /// unrun): awaiting the handle would resolve at once.
    ///
    /// ```
    /// use cancelkit::blocking::SpawnBlockingExt;
    /// # struct Threads;
    /// # impl cancelkit::blocking::SpawnBlocking for Threads {
    /// #     fn spawn_blocking_detached<F: FnOnce() + Send + 'static>(&self, f: F) {
    /// #         std::thread::spawn(f);
    /// #     }
    /// # }
    ///
    /// let (go, gate) = std::sync::mpsc::channel::<()>();
    /// let job = Threads.spawn_blocking(move |_| gate.recv().ok());
    /// assert!(!job.is_finished()); // waiting for `go`
    /// go.send(()).unwrap();
    /// assert_eq!(futures_lite::future::block_on(job).unwrap(), Some(()));
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.lock().outcome.is_some()
    }
}

impl<T> Future for BlockingTask<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    ///
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let old = {
            let mut slot = self.shared.lock();
            if let Some(outcome) = &mut slot.outcome {
                let outcome = outcome
                    .take()
                    .expect("`BlockingTask` polled after it returned `Poll::Ready`");
                return Poll::Ready(outcome);
            }
            replace_waker(&mut slot.joiner, cx.waker())
        };
        drop(old);
        Poll::Pending
    }
}

impl<T> Unpin for BlockingTask<T> {}

impl<T> Drop for BlockingTask<T> {
    fn drop(&mut self) {
        let (finished, unread) = {
            let mut slot = self.shared.lock();
            slot.handle_gone = true;
            (
                slot.outcome.is_some(),
                slot.outcome.as_mut().and_then(Option::take),
            )
        };
        // An output nobody will read: dropped here, catching a panic from
        // its destructor, as `Task` does.
        drop_quietly(unread);
        // A finished closure's token is left alone (nothing to stop).
        if !self.detached && !finished {
            self.abort();
        }
    }
}

impl<T> fmt::Debug for BlockingTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask")
            .field("cancelled", &self.token.is_cancelled())
            .field("finished", &self.is_finished())
            .finish()
    }
}
