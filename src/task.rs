//! [`Task`]: a handle to a spawned future that cancels it when dropped.
//!
//! Runtimes disagree on what dropping a task handle means: tokio's and
//! async-std's `JoinHandle` *detach* (the task keeps running), smol's `Task`
//! *cancels*. They also disagree on panics. cancelkit's [`Task`] is
//! implemented here, once, on top of [`Spawner::spawn_detached`], so it means
//! the same everywhere:
//!
//! | you do | the task |
//! |---|---|
//! | drop the `Task` | is cancelled: its future is dropped promptly and never polled again |
//! | [`detach`](Task::detach) | runs to completion with nobody waiting |
//! | `.await` | gives `Ok(T)`, or `Err(JoinError::Cancelled)`, or `Err(JoinError::Panicked(_))` |
//! | [`abort`](Task::abort) | is asked to stop; the handle stays usable |
//! | [`cancel().await`](Task::cancel) | is stopped; returns once the future is dropped |
//!
//! # How it works
//!
//! [`SpawnerExt::spawn`] splits a future into a [`Task`] and a private
//! *harness* future, and hands the harness to the runtime. They share one
//! allocation holding a state word, the task's waker and the output slot.
//! Cancelling sets a bit in the state word and wakes the task; the harness
//! checks the bit before every poll of the user's future, so once the bit is
//! set the user's future is dropped at its next scheduling instead of being
//! polled. A panic is caught around each poll and stored as the output. If
//! the runtime drops the harness without finishing it (shutdown), the
//! harness's destructor reports [`JoinError::Cancelled`].
//!
//! [`SpawnerExt::spawn`]: crate::SpawnerExt::spawn
//! [`Spawner::spawn_detached`]: crate::Spawner::spawn_detached

use crate::loom::{Arc, Mutex, Ordering};
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::CancelToken;
use crate::scope::TaskScope;

// ===== state bits =====

/// Set by the handle (drop, `abort`, `cancel`) to ask the harness to drop the
/// user's future instead of polling it. Never cleared.
pub(crate) const CANCEL_REQUESTED: u8 = 0b01;

/// Set by the harness, exactly once, after the user's future has been dropped
/// (by completion, panic, cancellation or runtime shutdown) **and** the
/// output slot has been filled. Never cleared. When a reader sees this bit
/// with `Acquire`, the output slot holds the result (or it was already taken
/// by the handle itself).
const COMPLETE: u8 = 0b10;

/// Set by the handle, exactly once, when it goes away (dropped, detached, or
/// consumed by `Cancel` after taking the output). Never cleared. Whichever
/// of the handle and the harness sets its bit second — `HANDLE_GONE` or
/// `COMPLETE`, both read-modify-writes of `state`, so one is second — drops
/// the output nobody will read, catching a panic from its destructor: no
/// output or panic payload is ever dropped where a runtime would see its
/// panic ([D3](crate#D3)).
const HANDLE_GONE: u8 = 0b100;

/// What a task ended with: its output, or why there is none.
type Outcome<T> = Result<T, JoinError>;

/// State shared by a [`Task`] and its harness.
struct Shared<T> {
    /// The task's state word and what cancel scopes need (`crate::scope`).
    scope: TaskScope,
    /// The outcome and both wakers, under one lock (one word smaller than
    /// two `AtomicWaker`s, and as cheap uncontended): `COMPLETE` is set
    /// under it, so a joiner that checks and registers under it cannot miss
    /// the completion.
    slot: Mutex<Slot<T>>,
}

/// What the harness and the handle exchange.
struct Slot<T> {
    /// Filled once by the harness (kept unpublished while hosted sections
    /// run, see `Harness`), published by `COMPLETE`; taken once by the
    /// handle.
    output: Option<Outcome<T>>,
    /// The waker of whoever awaits the [`Task`] (or its `cancel()`).
    joiner: Option<Waker>,
    /// The harness's waker, registered when the user's future returns
    /// `Pending`, woken to deliver a cancellation.
    runner: Option<Waker>,
}

/// Stores `waker` in `slot` unless the one there wakes the same task;
/// returns the one replaced, to be dropped outside the lock (a waker's
/// destructor is foreign code).
pub(crate) fn replace_waker(slot: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match slot {
        Some(old) if old.will_wake(waker) => None,
        _ => slot.replace(waker.clone()),
    }
}

impl<T> Shared<T> {
    /// `at`: where the cancel was asked for, for the task's scope token.
    fn request_cancel(&self, at: &'static Location<'static>) {
        self.scope.note_cancel_site(at);
        let prev = self
            .scope
            .state
            .fetch_or(CANCEL_REQUESTED, Ordering::SeqCst);
        if prev & (CANCEL_REQUESTED | COMPLETE) == 0 {
            // The task's scope token, if code in the task made one, learns
            // it at once (the harness makes sure of it too, see `poll`).
            self.scope.cancel_token();
            // The harness registers its waker *before* re-checking the bit
            // (see `poll_user_future`), so either it sees the bit or we see
            // its waker here.
            self.wake_runner();
        }
    }

    /// Wakes the harness (taking its waker: it registers again when it
    /// returns `Pending`).
    fn wake_runner(&self) {
        let runner = crate::loom::lock(&self.slot).runner.take();
        if let Some(runner) = runner {
            runner.wake();
        }
    }

    fn is_complete(&self) -> bool {
        self.scope.state.load(Ordering::Acquire) & COMPLETE != 0
    }

    fn cancel_requested(&self) -> bool {
        self.scope.state.load(Ordering::SeqCst) & CANCEL_REQUESTED != 0
    }

    /// Stores the outcome, publishes `COMPLETE`, and wakes the joiner — or,
    /// if the handle is gone, drops the outcome here, quietly.
    fn complete(&self, outcome: Outcome<T>) {
        let (unwanted, joiner) = {
            let mut slot = crate::loom::lock(&self.slot);
            slot.output = Some(outcome);
            let prev = self.scope.state.fetch_or(COMPLETE, Ordering::AcqRel);
            if prev & HANDLE_GONE != 0 {
                (slot.output.take(), None)
            } else {
                (None, slot.joiner.take())
            }
        };
        // Outside the lock: user destructors, and the joiner's wake.
        drop_quietly(unwanted);
        if let Some(joiner) = joiner {
            joiner.wake();
        }
    }

    /// Keeps the outcome of a future that ended while its task still hosts
    /// sections, unpublished.
    fn keep(&self, outcome: Outcome<T>) {
        crate::loom::lock(&self.slot).output = Some(outcome);
    }

    /// The handle goes away: asks for cancellation unless `detach`ed, and
    /// drops an output that is already there, quietly.
    fn release(&self, cancel: bool) {
        if cancel && !self.is_complete() {
            // (A finished task's scope is never cancelled: skip the write.)
            self.scope.note_cancel_site(Location::caller());
        }
        let bits = if cancel {
            HANDLE_GONE | CANCEL_REQUESTED
        } else {
            HANDLE_GONE
        };
        let prev = self.scope.state.fetch_or(bits, Ordering::SeqCst);
        if prev & COMPLETE != 0 {
            drop_quietly(self.take_output());
        } else if cancel && prev & CANCEL_REQUESTED == 0 {
            // As in `request_cancel`.
            self.scope.cancel_token();
            self.wake_runner();
        }
    }

    fn take_output(&self) -> Option<Outcome<T>> {
        crate::loom::lock(&self.slot).output.take()
    }

    /// Polls for completion on behalf of a joiner: check, then check and
    /// register under the lock `complete` sets `COMPLETE` under, so a
    /// completion racing with the registration is not lost.
    fn poll_complete(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_complete() {
            return Poll::Ready(());
        }
        let old = {
            let mut slot = crate::loom::lock(&self.slot);
            if self.is_complete() {
                return Poll::Ready(());
            }
            replace_waker(&mut slot.joiner, cx.waker())
        };
        drop(old);
        Poll::Pending
    }
}

/// Splits `fut` into a handle and the harness future to hand to a runtime.
pub(crate) fn new<F>(fut: F) -> (Task<F::Output>, Harness<F>)
where
    F: Future,
{
    let (task, unstarted) = prepare(None);
    (task, unstarted.harness(fut))
}

/// The shared state of a task whose future is not made yet: its handle
/// (and so its abort handle) exists before the future does, for a group
/// that records the abort handle in the same step that gives the future
/// its bookkeeping. A cancel requested before [`Unstarted::harness`]
/// takes effect at the harness's first poll, which drops the future
/// unpolled.
///
/// `token`, if given, is the task's scope token
/// ([`scope::current`](crate::scope::current)) instead of one made on first
/// use: a group hands its tasks their tokens.
pub(crate) fn prepare<T>(token: Option<CancelToken>) -> (Task<T>, Unstarted<T>) {
    let shared = Arc::new(Shared {
        scope: TaskScope::new(token),
        slot: Mutex::new(Slot {
            output: None,
            joiner: None,
            runner: None,
        }),
    });
    let task = Task {
        shared: Arc::clone(&shared),
        detached: false,
        taken: false,
    };
    (
        task,
        Unstarted {
            shared: Some(shared),
        },
    )
}

/// See [`prepare`]. Dropped without a harness, it reports
/// `JoinError::Cancelled` to the handle, as a harness the runtime drops
/// unpolled does.
pub(crate) struct Unstarted<T> {
    /// Taken by [`Unstarted::harness`].
    shared: Option<Arc<Shared<T>>>,
}

impl<T> Unstarted<T> {
    /// The harness that runs `fut` as this task.
    pub(crate) fn harness<F: Future<Output = T>>(mut self, fut: F) -> Harness<F> {
        Harness {
            fut: Some(fut),
            finished: false,
            shared: self.shared.take().expect("taken only here"),
        }
    }
}

impl<T> Drop for Unstarted<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.scope.cancel_token();
            shared.complete(Err(JoinError::Cancelled));
        }
    }
}

// ===== Harness =====

pin_project_lite::pin_project! {
    /// The future actually given to the runtime: runs the user's future,
    /// honours cancellation, catches panics, hosts the task's dropped
    /// shields and triggered cleanups (`crate::scope`) until they end, then
    /// reports the outcome.
    pub(crate) struct Harness<F: Future> {
        // `None` once the user's future ended; its outcome then waits in
        // `shared.slot` (unpublished) while hosted sections still run.
        #[pin]
        fut: Option<F>,
        // The outcome was published.
        finished: bool,
        shared: Arc<Shared<F::Output>>,
    }

    impl<F: Future> PinnedDrop for Harness<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if *this.finished {
                return;
            }
            // The runtime dropped us before we finished: it shut down, or
            // refused the task. Drop the user's future first so a joiner
            // woken below can rely on its destructors having run; then the
            // hosted sections, which cannot run on without a runtime.
            let scope = &this.shared.scope;
            let outcome = scope.enter(|| {
                scope.cancel_token();
                if this.fut.is_some() {
                    cancelled(drop_future(this.fut.as_mut()))
                } else {
                    // Ended, and waiting for hosted sections.
                    this.shared
                        .take_output()
                        .unwrap_or(Err(JoinError::Cancelled))
                }
            });
            let outcome = with_hosted_panic(outcome, scope.close());
            this.shared.complete(outcome);
        }
    }
}

/// `outcome`, unless a hosted section panicked: then that panic.
fn with_hosted_panic<T>(
    outcome: Outcome<T>,
    panic: Option<Box<dyn Any + Send + 'static>>,
) -> Outcome<T> {
    match panic {
        None => outcome,
        Some(payload) => {
            drop_quietly(outcome);
            Err(JoinError::Panicked(payload))
        }
    }
}

/// Drops `value`, catching a panic from its destructor — an output or a
/// panic payload that panics when dropped — and leaking that panic's own
/// payload (dropping it could panic again).
pub(crate) fn drop_quietly<V>(value: V) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value))) {
        std::mem::forget(payload);
    }
}

/// Drops the user's future in place, catching a panicking destructor, whose
/// payload is returned.
fn drop_future<F>(mut fut: Pin<&mut Option<F>>) -> Option<Box<dyn Any + Send + 'static>> {
    catch_unwind(AssertUnwindSafe(|| fut.set(None))).err()
}

/// The outcome of a task whose future was dropped before it finished: it was
/// cancelled, unless its destructor panicked.
fn cancelled<T>(drop_panic: Option<Box<dyn Any + Send + 'static>>) -> Outcome<T> {
    Err(match drop_panic {
        None => JoinError::Cancelled,
        Some(payload) => JoinError::Panicked(payload),
    })
}

impl<F: Future> Future for Harness<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.finished {
            // A runtime polled us again after we finished. Nothing to do.
            return Poll::Ready(());
        }
        let shared = &**this.shared;
        let scope = &shared.scope;
        // Each step that runs the task's code runs in its scope (S4): the
        // user's future (`poll_user_future`), and the hosted sections.
        if this.fut.is_some() {
            // Sections hosted beside the running task (a shield code in the
            // task dropped, a cleanup whose token fired) run first, and again
            // after the task's poll, for what it registered.
            if scope.has_host() && scope.is_hosting() {
                let _ = scope.enter(|| scope.poll_hosted(cx));
            }
            match poll_user_future(shared, this.fut.as_mut(), cx) {
                Poll::Pending => {
                    if scope.has_host() && scope.is_hosting() {
                        let _ = scope.enter(|| scope.poll_hosted(cx));
                    }
                    return Poll::Pending;
                }
                // Nothing was ever hosted: the common case.
                Poll::Ready((outcome, _)) if !scope.has_host() => {
                    *this.finished = true;
                    shared.complete(outcome);
                    return Poll::Ready(());
                }
                Poll::Ready((outcome, cancelled)) => {
                    scope.enter(|| scope.settle(cancelled));
                    // Kept, unpublished, until the hosted sections end.
                    shared.keep(outcome);
                }
            }
        }
        // The user's future is gone; the task ends when what it hosts ended
        // too (S1, S3).
        if scope.enter(|| scope.poll_hosted(cx)).is_pending() {
            return Poll::Pending;
        }
        let outcome = shared.take_output().expect("kept above");
        // Outside the task's scope: what publishing runs (deferred reports,
        // an output nobody will read) belongs to no task.
        let outcome = if shared.scope.has_host() {
            with_hosted_panic(outcome, shared.scope.finish())
        } else {
            outcome
        };
        *this.finished = true;
        shared.complete(outcome);
        Poll::Ready(())
    }
}

/// Polls the user's future, honouring cancellation; `Ready` with the
/// outcome once the future is gone (finished, panicked or dropped).
#[inline(always)]
fn poll_user_future<F: Future>(
    shared: &Shared<F::Output>,
    mut fut_slot: Pin<&mut Option<F>>,
    cx: &mut Context<'_>,
) -> Poll<(Outcome<F::Output>, bool)> {
    shared.scope.enter(|| {
        // D1/D4: a cancelled task's future is dropped, never polled again.
        if shared.cancel_requested() {
            shared.scope.cancel_token();
            return Poll::Ready((cancelled(drop_future(fut_slot)), true));
        }

        let polled = {
            let fut = fut_slot
                .as_mut()
                .as_pin_mut()
                .expect("the harness polls the user's future until it ends");
            catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
        };

        match polled {
            Ok(Poll::Ready(value)) => {
                // Drop the future before publishing, so `cancel().await` and
                // `.await` return only after its destructors ran.
                let outcome = match drop_future(fut_slot) {
                    None => Ok(value),
                    Some(payload) => {
                        drop_quietly(value);
                        Err(JoinError::Panicked(payload))
                    }
                };
                Poll::Ready((outcome, false))
            }
            Ok(Poll::Pending) => {
                // Lost-wake-up argument: the canceller sets CANCEL_REQUESTED
                // (SeqCst) and then takes `runner` under the slot's lock. We
                // store it under that lock and then load the bit (SeqCst).
                // Either the canceller's lock comes after ours and finds our
                // waker, or ours comes after its unlock, which follows its
                // write of the bit, and our load sees the bit.
                let old = {
                    let mut slot = crate::loom::lock(&shared.slot);
                    replace_waker(&mut slot.runner, cx.waker())
                };
                drop(old);
                if shared.cancel_requested() {
                    shared.scope.cancel_token();
                    return Poll::Ready((cancelled(drop_future(fut_slot)), true));
                }
                Poll::Pending
            }
            Err(payload) => {
                // The first panic is the one reported; a second one from the
                // future's destructor is dropped (quietly).
                drop_quietly(drop_future(fut_slot));
                Poll::Ready((Err(JoinError::Panicked(payload)), false))
            }
        }
    })
}

// ===== Task =====

/// A handle to a spawned task. **Dropping it cancels the task.**
///
/// Created by [`SpawnerExt::spawn`](crate::SpawnerExt::spawn). Await it to get
/// the task's output.
///
/// # Contract
///
/// - **Drop cancels** ([D1](crate#D1)): once the `Task` is dropped, the task's future is
///   never polled again (a poll already running on another thread finishes
///   first) and is dropped — its destructors run — as soon as the runtime
///   schedules it, without waiting for timers inside the task.
/// - [`detach`](Task::detach) lets it run to completion unobserved ([D2](crate#D2)).
/// - `.await` gives `Ok(T)` when it completes, `Err(JoinError::Cancelled)`
///   when it was cancelled (by this handle or by runtime shutdown), and
///   `Err(JoinError::Panicked(_))` when it panicked ([D3](crate#D3), [D6](crate#D6)). A panic never
///   escapes into the runtime or other tasks.
/// - [`abort`](Task::abort) asks for cancellation and returns at once;
///   [`cancel`](Task::cancel) asks and waits until the future was dropped
///   ([D4](crate#D4)).
/// - Cancellation lands only at an `.await` inside the task where it is
///   pending, never in the middle of synchronous code ([D5](crate#D5)).
///
/// # Cancel safety
///
/// Awaiting `&mut task` is cancel safe: if that `.await` is dropped before
/// it completes, the output stays in the handle, and awaiting it again gets
/// it. Awaiting `task` by value moves the handle into the `.await`, so
/// dropping that `.await` drops the handle — and cancels the task.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{JoinError, Runtime, SpawnerExt, Timer, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// rt.block_on(async {
///     let slow = rt.spawn({
///         let rt = rt.clone();
///         async move { rt.sleep(Duration::from_secs(3600)).await }
///     });
///     slow.abort();
///     assert!(matches!(slow.await, Err(JoinError::Cancelled)));
/// });
/// # }
/// ```
#[must_use = "tasks are cancelled when dropped; use `.detach()` to run them in the background"]
pub struct Task<T> {
    shared: Arc<Shared<T>>,
    detached: bool,
    /// The handle returned the outcome: the task is over (`COMPLETE`) and
    /// its slot empty, so dropping the handle has nothing left to do.
    taken: bool,
}

impl<T> Task<T> {
    /// Lets the task run to completion without a handle ([D2](crate#D2)).
    ///
    /// Its output, or panic payload, is dropped when it finishes; a panic
    /// from that drop is caught and discarded, never reaching the runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{CancelToken, Runtime, SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let done = CancelToken::new();
    /// rt.spawn({
    ///     let done = done.clone();
    ///     async move { done.cancel() }
    /// })
    /// .detach();
    /// rt.block_on(done.cancelled());
    /// # }
    /// ```
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// Asks the task to stop, without waiting and without consuming the
    /// handle ([D4](crate#D4)).
    ///
    /// The future is dropped at its next scheduling; await the handle (which
    /// then gives `Err(JoinError::Cancelled)`, or the output if the task had
    /// already finished) to know when. Calling it again, or after the task
    /// finished, does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// task.abort();
    /// assert!(rt.block_on(task).unwrap_err().is_cancelled());
    /// # }
    /// ```
    #[track_caller]
    pub fn abort(&self) {
        self.shared.request_cancel(Location::caller());
    }

    /// Cancels the task and waits until its future has been dropped ([D4](crate#D4)).
    ///
    /// Resolves to `Some(output)` if the task had already finished, `None`
    /// if it was cancelled before finishing.
    ///
    /// ```text
    /// async fn cancel(self) -> Option<T>;
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future before it completes drops the handle,
    /// which cancels the task anyway, without waiting for its future to be
    /// dropped.
    ///
    /// # Panics
    ///
    /// If the task panicked, the panic is **resumed** here, so it is never
    /// swallowed silently; wrap the await in `catch_unwind` to get the
    /// payload, or use [`abort`](Task::abort) and await the handle to get it
    /// as [`JoinError::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// assert_eq!(rt.block_on(task.cancel()), None);
    /// # }
    /// ```
    #[track_caller]
    pub fn cancel(self) -> Cancel<T> {
        Cancel {
            task: Some(self),
            requested: false,
            location: Location::caller(),
        }
    }

    /// Whether the task has finished: completed, panicked, or been cancelled
    /// and dropped. When this returns `true`, awaiting the handle does not
    /// wait.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let task = rt.spawn(async {});
    /// let task = rt.block_on(async move {
    ///     while !task.is_finished() {
    ///         futures_lite::future::yield_now().await;
    ///     }
    ///     task
    /// });
    /// assert!(task.is_finished());
    /// # }
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.is_complete()
    }
}

/// A type-erased way to abort a task, for code that tracks tasks it does
/// not hold the handle of (task groups).
pub(crate) trait Abort: Send + Sync {
    fn abort(&self);
}

impl<T: Send> Abort for Shared<T> {
    fn abort(&self) {
        self.request_cancel(Location::caller());
    }
}

#[cfg(loom)]
struct LoomAbort<T>(Arc<Shared<T>>);

#[cfg(loom)]
impl<T: Send> Abort for LoomAbort<T> {
    fn abort(&self) {
        self.0.request_cancel(Location::caller());
    }
}

impl<T: Send + 'static> Task<T> {
    /// A handle that can abort this task after the `Task` is gone.
    pub(crate) fn abort_handle(&self) -> std::sync::Arc<dyn Abort> {
        #[cfg(not(loom))]
        return self.shared.clone();
        // loom's `Arc` does not coerce to a trait object: wrap it.
        #[cfg(loom)]
        return std::sync::Arc::new(LoomAbort(self.shared.clone()));
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if !self.taken {
            self.shared.release(!self.detached);
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    ///
    /// Panics if polled again after it returned `Ready`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.shared.poll_complete(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let outcome = self
                    .shared
                    .take_output()
                    .expect("`Task` polled after it returned `Poll::Ready`");
                self.taken = true;
                Poll::Ready(outcome)
            }
        }
    }
}

impl<T> Unpin for Task<T> {}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.scope.state.load(Ordering::Acquire);
        f.debug_struct("Task")
            .field("cancel_requested", &(state & CANCEL_REQUESTED != 0))
            .field("finished", &(state & COMPLETE != 0))
            .finish()
    }
}

/// The future returned by [`Task::cancel`].
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{Runtime, SpawnerExt, rt::Smol, task::Cancel};
///
/// let rt = Smol::new().unwrap();
/// let stopping: Cancel<()> = rt.spawn(std::future::pending()).cancel();
/// assert_eq!(rt.block_on(stopping), None);
/// # }
/// ```
#[must_use = "futures do nothing unless polled; dropping this cancels the task without waiting"]
#[derive(Debug)]
pub struct Cancel<T> {
    task: Option<Task<T>>,
    requested: bool,
    /// Where `cancel()` was called: the task's scope token says so.
    location: &'static Location<'static>,
}

impl<T> Unpin for Cancel<T> {}

impl<T> Future for Cancel<T> {
    type Output = Option<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let task = self
            .task
            .as_ref()
            .expect("`Cancel` polled after it returned `Poll::Ready`");
        if !self.requested {
            task.shared.request_cancel(self.location);
            self.requested = true;
        }
        let task = self.task.as_ref().expect("checked above");
        match task.shared.poll_complete(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let outcome = task.shared.take_output();
                self.task = None;
                match outcome {
                    Some(Ok(value)) => Poll::Ready(Some(value)),
                    Some(Err(JoinError::Panicked(payload))) => resume_unwind(payload),
                    Some(Err(JoinError::Cancelled)) | None => Poll::Ready(None),
                }
            }
        }
    }
}

// ===== JoinError =====

/// Why a [`Task`] gave no output.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let err = rt.block_on(rt.spawn(async { panic!("boom") })).unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.to_string(), "task panicked: boom");
/// let payload = err.into_panic();
/// assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
/// # }
/// ```
#[non_exhaustive]
pub enum JoinError {
    /// The task was cancelled — through its handle, or because the runtime
    /// shut down — before it finished.
    Cancelled,
    /// The task panicked; this is the payload, as given to
    /// [`std::panic::resume_unwind`].
    Panicked(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    /// Whether the task was cancelled.
    ///
    /// ```
    /// assert!(cancelkit::JoinError::Cancelled.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the task panicked.
    ///
    /// ```
    /// assert!(!cancelkit::JoinError::Cancelled.is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic payload.
    ///
    /// # Panics
    ///
    /// Panics if the task did not panic; use
    /// [`try_into_panic`](JoinError::try_into_panic) to check.
    ///
    /// ```
    /// let err = cancelkit::JoinError::Panicked(Box::new("boom"));
    /// assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"boom"));
    /// ```
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError::into_panic` called on a task that did not panic")
    }

    /// The panic payload, or `Err(self)` if the task did not panic.
    ///
    /// ```
    /// let err = cancelkit::JoinError::Cancelled;
    /// assert!(err.try_into_panic().is_err());
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self {
            JoinError::Panicked(payload) => Ok(payload),
            other => Err(other),
        }
    }
}

/// The message of a panic payload, if it is a string.
fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// The message of a panic payload, or a placeholder: for reports (task
/// groups, the conformance runner, the simulation's seed checker).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    panic_message(payload)
        .unwrap_or("<non-string panic payload>")
        .to_owned()
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("Cancelled"),
            JoinError::Panicked(payload) => f
                .debug_tuple("Panicked")
                .field(&panic_message(&**payload).unwrap_or("<non-string payload>"))
                .finish(),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("task was cancelled"),
            JoinError::Panicked(payload) => match panic_message(&**payload) {
                Some(msg) => write!(f, "task panicked: {msg}"),
                None => f.write_str("task panicked"),
            },
        }
    }
}

impl std::error::Error for JoinError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::test_util::counting;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_task_aborted_before_its_harness_exists_never_polls_its_future() {
        let (task, unstarted) = prepare::<u8>(None);
        task.abort_handle().abort();
        let polled = Arc::new(AtomicUsize::new(0));
        let mut harness = Box::pin(unstarted.harness({
            let polled = polled.clone();
            async move {
                polled.fetch_add(1, Ordering::SeqCst);
                7
            }
        }));
        let (_, w) = counting();
        assert!(
            harness
                .as_mut()
                .poll(&mut Context::from_waker(&w))
                .is_ready()
        );
        assert_eq!(polled.load(Ordering::SeqCst), 0, "the future was polled");
        let out = futures_lite::future::block_on(task);
        assert!(out.unwrap_err().is_cancelled());
    }

    #[test]
    fn a_task_whose_harness_is_never_made_reports_cancelled() {
        let (task, unstarted) = prepare::<u8>(None);
        drop(unstarted);
        let out = futures_lite::future::block_on(task);
        assert!(out.unwrap_err().is_cancelled());
    }

    #[test]
    fn dropping_the_handle_wakes_the_harness_once_and_it_drops_the_future() {
        let dropped = Arc::new(AtomicUsize::new(0));
        struct OnDrop(Arc<AtomicUsize>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let guard = OnDrop(dropped.clone());
        let (task, harness) = new(async move {
            let _g = guard;
            std::future::pending::<()>().await
        });
        let mut harness = Box::pin(harness);
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(harness.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.wakes(), 0);

        drop(task);
        assert_eq!(count.wakes(), 1, "drop wakes the task once");
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            0,
            "not dropped on the caller's thread"
        );

        assert!(harness.as_mut().poll(&mut cx).is_ready());
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn harness_dropped_by_runtime_reports_cancelled() {
        let (task, harness) = new(std::future::pending::<u8>());
        drop(harness);
        let out = futures_lite::future::block_on(task);
        assert!(matches!(out, Err(JoinError::Cancelled)));
    }

    #[test]
    fn panic_is_caught_and_payload_kept() {
        let (task, harness) = new(async { panic!("boom") });
        let mut harness = Box::pin(harness);
        let (_, waker) = counting();
        assert!(
            harness
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_ready()
        );
        let err = futures_lite::future::block_on(task).unwrap_err();
        assert_eq!(err.to_string(), "task panicked: boom");
    }

    #[test]
    fn completion_wakes_the_joiner_exactly_once() {
        let (mut task, harness) = new(async { 7 });
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        let mut harness = Box::pin(harness);
        let (_, hw) = counting();
        assert!(
            harness
                .as_mut()
                .poll(&mut Context::from_waker(&hw))
                .is_ready()
        );
        assert_eq!(count.wakes(), 1);
        match Pin::new(&mut task).poll(&mut cx) {
            Poll::Ready(Ok(7)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn cancel_after_completion_returns_the_output() {
        let (task, harness) = new(async { 7 });
        let mut harness = Box::pin(harness);
        let (_, hw) = counting();
        assert!(
            harness
                .as_mut()
                .poll(&mut Context::from_waker(&hw))
                .is_ready()
        );
        assert_eq!(futures_lite::future::block_on(task.cancel()), Some(7));
    }

    #[test]
    fn detached_task_is_not_cancelled() {
        let finished = crate::CancelToken::new();
        let (task, harness) = new({
            let finished = finished.clone();
            async move {
                finished.cancel();
                7
            }
        });
        task.detach();
        let mut harness = Box::pin(harness);
        let (_, hw) = counting();
        assert!(
            harness
                .as_mut()
                .poll(&mut Context::from_waker(&hw))
                .is_ready()
        );
        // The harness ran the future to completion rather than dropping it,
        // and dropped the output nobody will read.
        assert!(finished.is_cancelled());
        assert!(harness.shared.take_output().is_none());
    }
}
