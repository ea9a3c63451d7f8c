//! [`TaskGroup`]: broadcast shutdown with a grace period.
//!
//! "Stop accepting, let in-flight work finish for a while, then force the
//! rest" is what every server does at shutdown. A task group hands each of
//! its tasks a child of the group's [`CancelToken`]; [`shutdown`] cancels
//! that token (kind [`CancelKind::Shutdown`], with the grace deadline
//! visible through [`CancelToken::deadline`]), waits up to the grace period
//! for the tasks to finish on their own, drops the rest, and returns a
//! [`ShutdownReport`] naming every task it had to force and where it was
//! spawned.
//!
//! # Contract ([B1](crate#B1)–[B4](crate#B4))
//!
//! - [B1](crate#B1): when [`shutdown`] returns, no task of the group is running: every
//!   task either finished or had its future dropped.
//! - [B2](crate#B2): dropping the last clone of a group cancels its token and drops its
//!   tasks (at their next scheduling).
//! - [B3](crate#B3): by default a task's panic or error touches no sibling; a
//!   [fail-fast](TaskGroupBuilder::fail_fast) group cancels the others on
//!   the first failure, with that failure as the cause.
//! - [B4](crate#B4): [`shutdown_on`](TaskGroup::shutdown_on) shuts down when any
//!   [`Signal`] is raised — a token, or a runtime's `ctrl_c()`.
//!
//! Finished tasks leave nothing behind: a long-lived group's memory is
//! proportional to its *live* tasks (unlike tokio's `JoinSet`, which keeps
//! every output until it is joined). The first failures are kept, as text,
//! up to a bound ([`TaskGroupBuilder::keep_failures`]); the rest are
//! counted.
//!
//! [`shutdown`]: TaskGroup::shutdown

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use async_lock::futures::AcquireArc as SemaphoreAcquireArc;
use async_lock::{Semaphore, SemaphoreGuardArc};
use event_listener::{Event, listener};
use slab::Slab;

use crate::Spawner;
use crate::blocking::{BlockingTask, BlockingToken, SpawnBlocking};
use crate::local::LocalSpawner;
use crate::runtime::{RuntimeHandle, saturating_deadline};
use crate::scope::{self, Overrun};
use crate::signal::Signal;
use crate::task::{Abort, Task, drop_quietly, panic_text};
use crate::token::CancelKind;
use crate::{CancelToken, timeout};

// ===== report types =====

/// Who a task is: its name and where it was spawned.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, TaskGroup, group::FailureKind, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let report = rt.block_on(async {
///     let _ = group.spawn_fallible("job", |_| async { Err::<(), _>("disk full") }).await;
///     group.shutdown(Duration::ZERO).await
/// });
/// let failure = &report.failures[0];
/// assert_eq!((failure.task.name().as_ref(), failure.kind), ("job", FailureKind::Error));
/// assert_eq!(failure.message, "disk full");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskInfo {
    /// The name given at spawn, if any: an unnamed task's name is made
    /// only when asked for, so a report on many unnamed tasks allocates no
    /// string per task.
    name: Option<Cow<'static, str>>,
    id: u64,
    /// Where `spawn` was called (`#[track_caller]`).
    pub location: &'static Location<'static>,
}

impl TaskInfo {
    /// The name given to [`spawn_named`](TaskGroup::spawn_named) (or
    /// another spawn that takes one), or `task #N` for a task spawned
    /// without one, `N` being its [`id`](TaskInfo::id). Only that second
    /// form allocates.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// group.spawn_named("listener", |_| std::future::pending::<()>()).detach();
    /// group.spawn(|_| std::future::pending::<()>()).detach();
    /// let report = rt.block_on(group.shutdown(Duration::ZERO));
    /// let mut names: Vec<_> = report.forced.iter().map(|t| t.name()).collect();
    /// names.sort();
    /// assert_eq!(names, ["listener", "task #1"]);
    /// # }
    /// ```
    pub fn name(&self) -> Cow<'_, str> {
        match &self.name {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(format!("task #{}", self.id)),
        }
    }

    /// The task's number in its group, in spawn order from 0 (named tasks
    /// are numbered too): the `N` of an unnamed task's `task #N`.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// group.spawn(|_| std::future::pending::<()>()).detach();
    /// let report = rt.block_on(group.shutdown(Duration::ZERO));
    /// assert_eq!(report.forced[0].id(), 0);
    /// assert_eq!(report.forced[0].name(), "task #0");
    /// # }
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (spawned at {})", self.name(), self.location)
    }
}

/// How a task failed.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, TaskGroup, group::FailureKind, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let report = rt.block_on(async {
///     let _ = group.spawn_fallible("job", |_| async { Err::<(), _>("disk full") }).await;
///     group.shutdown(Duration::ZERO).await
/// });
/// let failure = &report.failures[0];
/// assert_eq!((failure.task.name().as_ref(), failure.kind), ("job", FailureKind::Error));
/// assert_eq!(failure.message, "disk full");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// It panicked.
    Panicked,
    /// It returned `Err` (tasks spawned with
    /// [`spawn_fallible`](TaskGroup::spawn_fallible)).
    Error,
}

/// A task that failed: who, how, and the message (the panic's, or the
/// error's `Display`).
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, TaskGroup, group::FailureKind, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let report = rt.block_on(async {
///     let _ = group.spawn_fallible("job", |_| async { Err::<(), _>("disk full") }).await;
///     group.shutdown(Duration::ZERO).await
/// });
/// let failure = &report.failures[0];
/// assert_eq!((failure.task.name().as_ref(), failure.kind), ("job", FailureKind::Error));
/// assert_eq!(failure.message, "disk full");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFailure {
    /// Which task.
    pub task: TaskInfo,
    /// Panic or error.
    pub kind: FailureKind,
    /// The panic message or the error's text.
    pub message: String,
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.kind {
            FailureKind::Panicked => "panicked",
            FailureKind::Error => "failed",
        };
        write!(f, "{} {how}: {}", self.task, self.message)
    }
}

impl std::error::Error for TaskFailure {}

/// What [`TaskGroup::shutdown`] did.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, TaskGroup, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let report = rt.block_on(async {
///     group.spawn_named("polite", |stop| async move { stop.cancelled().await }).detach();
///     group.spawn_named("stubborn", |_| std::future::pending::<()>()).detach();
///     // (polite ends at once; the grace is for a slow machine)
///     group.shutdown(Duration::from_millis(500)).await
/// });
/// assert_eq!(report.finished, 1);
/// assert_eq!(report.forced.len(), 1);
/// assert_eq!(report.forced[0].name(), "stubborn");
/// println!("{report}");
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Tasks that ended on their own after the shutdown began, within the
    /// grace period (including any that failed; those are also in
    /// [`failures`](ShutdownReport::failures)).
    pub finished: usize,
    /// Tasks still running when the grace period ended, whose futures were
    /// then dropped.
    pub forced: Vec<TaskInfo>,
    /// The first tasks of the group's life that panicked or returned an
    /// error, in the order they failed (fail-fast groups do not count the
    /// siblings they cancelled). At most
    /// [`keep_failures`](TaskGroupBuilder::keep_failures) are kept, so a
    /// long-lived group does not grow with its failures.
    pub failures: Vec<TaskFailure>,
    /// How many more tasks failed than [`failures`](ShutdownReport::failures)
    /// lists.
    pub failures_not_kept: usize,
    /// Tasks of a [limited](TaskGroupBuilder::limit) group still queued for
    /// a slot when the group shut down: dropped without ever being polled;
    /// and blocking work that no thread had picked up by the time the
    /// shutdown began, which therefore never ran ([L3](crate#L3)) —
    /// including work whose own handle had cancelled it earlier, while it
    /// still waited for a thread.
    pub not_started: usize,
    /// Shields and cleanups ([`scope`]) of the group's tasks
    /// that were still running when their own grace ended, and were dropped
    /// unfinished ([S2](crate#S2)), over the group's life; at most
    /// [`keep_failures`](TaskGroupBuilder::keep_failures) of them.
    pub overruns: Vec<TaskOverrun>,
    /// How many more overran than [`overruns`](ShutdownReport::overruns)
    /// lists.
    pub overruns_not_kept: usize,
    /// Blocking work ([`TaskGroup::spawn_blocking`]) still running when the
    /// grace ended. A thread cannot be stopped from outside: it was asked
    /// to (its token is cancelled), is not waited for, and may still be
    /// running when the report is read ([L4](crate#L4)). Never counted as
    /// finished or forced. (Dropping an owned tokio runtime waits for its
    /// pool's running closures, this work among them: tokio's rule.) At most
    /// [`keep_failures`](TaskGroupBuilder::keep_failures) are listed.
    pub abandoned: Vec<TaskInfo>,
    /// How many more were abandoned than
    /// [`abandoned`](ShutdownReport::abandoned) lists.
    pub abandoned_not_kept: usize,
}

/// A shield or cleanup of a group's task that overran its grace: which
/// task, and which section ([S2](crate#S2)).
///
/// See [`Overrun`] for an example.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOverrun {
    /// The task the section belonged to: its name and spawn location.
    pub task: TaskInfo,
    /// The section: shield or cleanup, and where it was opened.
    pub section: Overrun,
}

impl fmt::Display for TaskOverrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.task, self.section)
    }
}

impl ShutdownReport {
    /// The failures that were panics.
    ///
    /// ```
    /// assert_eq!(cancelkit::group::ShutdownReport::default().panicked().count(), 0);
    /// ```
    pub fn panicked(&self) -> impl Iterator<Item = &TaskFailure> {
        self.failures
            .iter()
            .filter(|f| f.kind == FailureKind::Panicked)
    }
}

impl fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown: {} finished within the grace period, {} forced, {} failed",
            self.finished,
            self.forced.len(),
            self.failures.len() + self.failures_not_kept
        )?;
        if self.not_started > 0 {
            write!(f, ", {} never started", self.not_started)?;
        }
        let abandoned = self.abandoned.len() + self.abandoned_not_kept;
        if abandoned > 0 {
            write!(f, ", {abandoned} abandoned")?;
        }
        for t in &self.forced {
            write!(f, "\n  forced: {t}")?;
        }
        for t in &self.abandoned {
            write!(f, "\n  abandoned (blocking, still running): {t}")?;
        }
        if self.abandoned_not_kept > 0 {
            write!(f, "\n  ... and {} more abandoned", self.abandoned_not_kept)?;
        }
        for t in &self.failures {
            write!(f, "\n  {t}")?;
        }
        if self.failures_not_kept > 0 {
            write!(f, "\n  ... and {} more failures", self.failures_not_kept)?;
        }
        for o in &self.overruns {
            write!(f, "\n  overran: {o}")?;
        }
        if self.overruns_not_kept > 0 {
            write!(f, "\n  ... and {} more overruns", self.overruns_not_kept)?;
        }
        Ok(())
    }
}

/// How many failures a group keeps for its report unless told otherwise.
const DEFAULT_KEEP_FAILURES: usize = 64;

// ===== shared state =====

struct Live {
    /// Distinguishes a slot's occupants over time.
    id: u64,
    /// The name given at spawn, if any (unnamed tasks are named from `id`
    /// only when a report needs it: no allocation per spawn).
    name: Option<Cow<'static, str>>,
    location: &'static Location<'static>,
    /// Set right after the task is handed to the runtime.
    abort: Option<Arc<dyn Abort>>,
    /// It holds a slot and its future has been (or is being) polled;
    /// `false` while it waits in the queue of a limited group.
    started: bool,
    /// Dropped before it started (queued at shutdown): it must not start.
    doomed: bool,
    /// Blocking work ([`TaskGroup::spawn_blocking`]): it cannot be forced;
    /// past the grace it is reported abandoned and no longer waited for.
    blocking: bool,
}

impl Live {
    fn info(&self) -> TaskInfo {
        TaskInfo {
            name: self.name.clone(),
            id: self.id,
            location: self.location,
        }
    }
}

#[derive(Default)]
struct State {
    live: Slab<Live>,
    /// The `id` of the next task (under the lock the insert takes anyway).
    next_id: u64,
    /// Whether the shutdown has begun (for `finished`).
    shutting_down: bool,
    /// Whether the remaining tasks are being dropped (grace over, or the
    /// group was dropped). Set once.
    forced: bool,
    /// No new task runs: `close`, `shutdown` or the group's drop.
    closed: bool,
    finished_in_grace: usize,
    /// Queued tasks dropped before they started.
    not_started: usize,
    /// The first `Inner::keep_failures` failures.
    failures: Vec<TaskFailure>,
    /// Failures past those.
    failures_not_kept: usize,
    /// The first `Inner::keep_failures` overruns, and how many more.
    overruns: Vec<TaskOverrun>,
    overruns_not_kept: usize,
    /// Blocking work still running when the grace ended ([L4](crate#L4)),
    /// the first `Inner::keep_failures` of it, and how much more.
    abandoned: Vec<TaskInfo>,
    abandoned_not_kept: usize,
}

struct Inner {
    token: CancelToken,
    fail_fast: bool,
    keep_failures: usize,
    slots: Option<Arc<Semaphore>>,
    state: Mutex<State>,
    /// Notified whenever `live` becomes empty.
    changed: Event,
    /// Mirrors `State::closed` (set under the lock, after it), for a
    /// lock-free look on the spawn path.
    closed: AtomicBool,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no task is live.
    async fn until_empty(&self) {
        loop {
            if self.lock().live.is_empty() {
                return;
            }
            listener!(self.changed => listener);
            // Re-check after registering: a task that left in between has
            // already notified, and would not wake us.
            if self.lock().live.is_empty() {
                return;
            }
            listener.await;
        }
    }

    /// Drops every live task (at its next scheduling). Returns who they
    /// were — those that had started; queued ones are counted in
    /// `not_started` instead. Blocking work cannot be dropped: it leaves the
    /// group, recorded as abandoned ([L4](crate#L4)), and nobody waits for
    /// it.
    fn force_all(&self) -> Vec<TaskInfo> {
        let mut infos = Vec::new();
        let mut aborts: Vec<Arc<dyn Abort>> = Vec::new();
        let now_empty = {
            let mut state = self.lock();
            infos.reserve(state.live.len());
            aborts.reserve(state.live.len());
            state.forced = true;
            state.closed = true;
            self.closed.store(true, Ordering::Release);
            let mut not_started = 0;
            let mut abandoned = Vec::new();
            for (key, live) in &mut state.live {
                if live.blocking {
                    // Running: abandoned. Still waiting for a pool thread:
                    // it will never start (`may_start` finds it gone).
                    if !live.started {
                        not_started += 1;
                    }
                    abandoned.push(key);
                } else if live.started {
                    infos.push(live.info());
                } else if !live.doomed {
                    live.doomed = true;
                    not_started += 1;
                }
                aborts.extend(live.abort.clone());
            }
            state.not_started += not_started;
            for key in abandoned {
                let live = state.live.remove(key);
                if !live.started {
                    continue;
                }
                if state.abandoned.len() < self.keep_failures {
                    state.abandoned.push(live.info());
                } else {
                    state.abandoned_not_kept += 1;
                }
            }
            state.live.is_empty()
        };
        if now_empty {
            self.changed.notify(usize::MAX);
        }
        // Outside the lock: aborting wakes tasks.
        aborts.iter().for_each(|a| a.abort());
        infos
    }

    /// Drops the tasks still queued for a slot, without starting them.
    fn drop_queued(&self) {
        if self.slots.is_none() {
            return; // no limit: nothing ever queues
        }
        let mut aborts: Vec<Arc<dyn Abort>> = Vec::new();
        {
            let mut state = self.lock();
            let mut not_started = 0;
            for (_, live) in &mut state.live {
                // (Blocking work waiting for a pool thread is not queued for
                // a slot: it gets the grace, see `force_all`.)
                if !live.started && !live.doomed && !live.blocking {
                    live.doomed = true;
                    not_started += 1;
                    aborts.extend(live.abort.clone());
                }
            }
            state.not_started += not_started;
        }
        aborts.iter().for_each(|a| a.abort());
    }
}

/// The last handle of a group: dropping it cancels and drops the tasks ([B2](crate#B2)).
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Force first: the cancel runs user callbacks, which might panic.
        self.inner.force_all();
        self.inner
            .token
            .cancel_with(CancelKind::Shutdown, Stopping("the task group was dropped"));
    }
}

/// The cause a group's token is cancelled with when the group stops.
#[derive(Debug)]
struct Stopping(&'static str);

impl fmt::Display for Stopping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Stopping {}

// ===== the group =====

/// A set of tasks that shut down together, with a grace period.
///
/// Cheap to clone: clones share the group. When the last clone is dropped,
/// the group's token is cancelled and every task still running is dropped
/// ([B2](crate#B2)); [`shutdown`](TaskGroup::shutdown) does the same gracefully and
/// waits.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, TaskGroup, Timer, rt::Tokio};
///
/// let rt = Tokio::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let report = rt.block_on(async {
///     for i in 0..3 {
///         let rt = rt.clone();
///         group
///             .spawn(move |stop| async move {
///                 // Work until told to stop, then finish up.
///                 while !stop.is_cancelled() {
///                     let _ = rt.sleep(Duration::from_millis(5)).await;
///                 }
///                 i
///             })
///             .detach();
///     }
///     group.shutdown(Duration::from_secs(1)).await
/// });
/// assert_eq!(report.finished, 3);
/// assert!(report.forced.is_empty());
/// # }
/// ```
pub struct TaskGroup<R> {
    rt: R,
    handle: Arc<Handle>,
}

impl<R: Clone> Clone for TaskGroup<R> {
    fn clone(&self) -> Self {
        TaskGroup {
            rt: self.rt.clone(),
            handle: self.handle.clone(),
        }
    }
}

impl<R> fmt::Debug for TaskGroup<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.handle.inner;
        let state = inner.lock();
        f.debug_struct("TaskGroup")
            .field("live", &state.live.len())
            .field("shutting_down", &state.shutting_down)
            .field("fail_fast", &inner.fail_fast)
            .finish()
    }
}

/// Configures a [`TaskGroup`]: made by [`TaskGroup::builder`].
///
/// ```
/// # #[cfg(feature = "smol")] {
/// let rt = cancelkit::rt::Smol::new().unwrap();
/// let group = cancelkit::TaskGroup::builder(&rt).fail_fast().limit(8).build();
/// # let _ = group;
/// # }
/// ```
#[derive(Debug)]
#[must_use = "call .build() to make the group"]
pub struct TaskGroupBuilder<R> {
    rt: R,
    parent: Option<CancelToken>,
    fail_fast: bool,
    limit: Option<usize>,
    keep_failures: usize,
}

impl<R: RuntimeHandle> TaskGroupBuilder<R> {
    /// On the first task failure (panic, or `Err` from
    /// [`spawn_fallible`](TaskGroup::spawn_fallible)), cancel the group's token with
    /// kind [`CancelKind::TaskFailed`] and the failure as the cause ([B3](crate#B3)).
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let _group = cancelkit::TaskGroup::builder(&rt).fail_fast().build();
    /// # }
    /// ```
    pub fn fail_fast(mut self) -> Self {
        self.fail_fast = true;
        self
    }

    /// At most `n` tasks run at once: [`spawn`](TaskGroup::spawn) waits for
    /// a free slot, [`try_spawn`](TaskGroup::try_spawn) refuses. A slot is
    /// freed when a task's future is dropped.
    ///
    /// # Panics
    ///
    /// If `n` is zero (no task could ever run).
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let _group = cancelkit::TaskGroup::builder(&rt).limit(100).build();
    /// # }
    /// ```
    #[track_caller]
    pub fn limit(mut self, n: usize) -> Self {
        assert!(
            n > 0,
            "a task group limit of 0 would never run a task: use a limit of at least 1, or no limit"
        );
        self.limit = Some(n);
        self
    }

    /// Keeps at most `n` failures for the [`ShutdownReport`] (default
    /// 64): the first `n`, in the order the tasks failed; later ones are
    /// only counted, in
    /// [`failures_not_kept`](ShutdownReport::failures_not_kept). A group's
    /// memory so stays bounded however many of its tasks fail.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::builder(&rt).keep_failures(1).build();
    /// let report = rt.block_on(async {
    ///     for i in 0..3 {
    ///         let _ = group.spawn_fallible("job", move |_| async move { Err::<(), _>(i) }).await;
    ///     }
    ///     group.shutdown(Duration::ZERO).await
    /// });
    /// assert_eq!(report.failures[0].message, "0");
    /// assert_eq!(report.failures_not_kept, 2);
    /// # }
    /// ```
    pub fn keep_failures(mut self, n: usize) -> Self {
        self.keep_failures = n;
        self
    }

    /// Nests the group under `token`: cancelling `token` (or shutting down
    /// the group it belongs to) cancels this group's token too.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let app = cancelkit::CancelToken::new();
    /// let group = cancelkit::TaskGroup::builder(&rt).parent(&app).build();
    /// app.cancel();
    /// assert!(group.token().is_cancelled());
    /// # }
    /// ```
    pub fn parent(mut self, token: &CancelToken) -> Self {
        self.parent = Some(token.clone());
        self
    }

    /// Makes the group.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let _group = cancelkit::TaskGroup::builder(&rt).build();
    /// # }
    /// ```
    pub fn build(self) -> TaskGroup<R> {
        let token = match &self.parent {
            Some(parent) => parent.child(),
            None => CancelToken::new(),
        };
        TaskGroup {
            rt: self.rt,
            handle: Arc::new(Handle {
                inner: Arc::new(Inner {
                    token,
                    fail_fast: self.fail_fast,
                    keep_failures: self.keep_failures,
                    slots: self.limit.map(|n| Arc::new(Semaphore::new(n))),
                    state: Mutex::new(State::default()),
                    changed: Event::new(),
                    closed: AtomicBool::new(false),
                }),
            }),
        }
    }
}

/// [`TaskGroup::try_spawn`] found no free slot; the closure is given back.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{TaskGroup, group::Full, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::builder(&rt).limit(1).build();
/// let _busy = group.try_spawn("a", |stop| stop.cancelled_owned()).unwrap();
/// let Err(Full(make)) = group.try_spawn("b", |stop| stop.cancelled_owned()) else {
///     panic!("the group has one slot");
/// };
/// let _unrun = make; // the closure came back, not run
/// # }
/// ```
pub struct Full<F>(pub F);

impl<F> fmt::Debug for Full<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<F> fmt::Display for Full<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task group is at its concurrency limit")
    }
}

impl<F> std::error::Error for Full<F> {}

impl<R: RuntimeHandle> TaskGroup<R> {
    /// A group spawning on `rt`, isolated (failures touch no sibling), with
    /// no concurrency limit.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let group = cancelkit::TaskGroup::new(&rt);
    /// assert!(!group.token().is_cancelled());
    /// # }
    /// ```
    pub fn new(rt: &R) -> Self {
        Self::builder(rt).build()
    }

    /// A builder for fail-fast, limited or nested groups.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let _group = cancelkit::TaskGroup::builder(&rt).limit(4).build();
    /// # }
    /// ```
    pub fn builder(rt: &R) -> TaskGroupBuilder<R> {
        TaskGroupBuilder {
            rt: rt.clone(),
            parent: None,
            fail_fast: false,
            limit: None,
            keep_failures: DEFAULT_KEEP_FAILURES,
        }
    }

    /// A group nested in this one: its token is a child of this group's,
    /// so this group's shutdown (or drop) cancels it too.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let outer = cancelkit::TaskGroup::new(&rt);
    /// let inner = outer.child_group();
    /// drop(outer);
    /// assert!(inner.token().is_cancelled());
    /// # }
    /// ```
    pub fn child_group(&self) -> TaskGroup<R> {
        Self::builder(&self.rt).parent(self.token()).build()
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// The group's token: cancelled when the group shuts down. Each task
    /// gets a child of it.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let group = cancelkit::TaskGroup::new(&rt);
    /// let token = group.token().clone();
    /// drop(group);
    /// assert!(token.is_cancelled());
    /// # }
    /// ```
    pub fn token(&self) -> &CancelToken {
        &self.inner().token
    }

    /// How many tasks are running (spawned and not yet finished or dropped).
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// assert_eq!(cancelkit::TaskGroup::new(&rt).len(), 0);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.inner().lock().live.len()
    }

    /// Whether no task is running.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// assert!(cancelkit::TaskGroup::new(&rt).is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spawns `make(token)` into the group and returns its [`Task`] handle,
    /// at once: `token` is a child of the group's token.
    ///
    /// `make` is called right away (its future is not polled yet). In a
    /// group with a [limit](TaskGroupBuilder::limit) and no free slot, the
    /// task waits in a queue and starts when a slot frees; a shutdown drops
    /// queued tasks without starting them (counted in
    /// [`ShutdownReport::not_started`]). On a [closed](TaskGroup::close) or
    /// shut-down group, `make` is not called and the handle gives
    /// `Err(JoinError::Cancelled)` (a spawn racing with a server's
    /// shutdown is normal, not a bug: it neither panics nor runs).
    ///
    /// The handle is a normal [`Task`]: dropping it cancels the task, so
    /// call [`detach`](Task::detach) to leave the task to the group, or use
    /// a [`TaskSet`] to collect outputs as tasks finish. The task is named
    /// `task #N`; its spawn location is recorded.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let task = group.spawn(|_token| async { 6 * 7 });
    /// assert_eq!(rt.block_on(task).unwrap(), 42);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut>(&self, make: F) -> Task<Fut::Output>
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.start_waiting::<Sent, _, _, _>(None, make, NoFailure)
    }

    /// [`spawn`](TaskGroup::spawn) with a name, which the
    /// [`ShutdownReport`] uses.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// group.spawn_named("conn 1", |stop| stop.cancelled_owned()).detach();
    /// assert_eq!(group.len(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_named<F, Fut>(
        &self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> Task<Fut::Output>
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.start_waiting::<Sent, _, _, _>(Some(name.into()), make, NoFailure)
    }

    /// Like [`spawn_named`](TaskGroup::spawn_named), for tasks that return
    /// a `Result`: an `Err` counts as a failure (reported, and fatal to the
    /// siblings in a [fail-fast](TaskGroupBuilder::fail_fast) group), unless
    /// the task's token was already cancelled when it returned it — an error
    /// caused by being cancelled is not a failure.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let report = rt.block_on(async {
    ///     let t = group.spawn_fallible("parser", |_| async { "x".parse::<u8>().map(drop) });
    ///     assert!(t.await.unwrap().is_err());
    ///     group.shutdown(Duration::ZERO).await
    /// });
    /// assert_eq!(report.failures.len(), 1);
    /// assert!(report.failures[0].message.contains("invalid digit"));
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_fallible<F, Fut, T, E>(
        &self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> Task<Result<T, E>>
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        self.start_waiting::<Sent, _, _, _>(Some(name.into()), make, ErrorText)
    }

    /// Spawns like [`spawn_named`](TaskGroup::spawn_named), but never
    /// queues: if the group is at its [limit](TaskGroupBuilder::limit),
    /// gives `make` back in [`Full`] instead (for load shedding).
    ///
    /// # Errors
    ///
    /// [`Full`] when no slot is free.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{TaskGroup, group::Full, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::builder(&rt).limit(1).build();
    /// let _busy = group.try_spawn("a", |stop| stop.cancelled_owned()).unwrap();
    /// let Err(Full(make)) = group.try_spawn("b", |stop| stop.cancelled_owned()) else {
    ///     panic!("the group has one slot");
    /// };
    /// let _unrun = make; // the closure came back, not run
    /// # }
    /// ```
    #[track_caller]
    pub fn try_spawn<F, Fut>(
        &self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> Result<Task<Fut::Output>, Full<F>>
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.start_with::<Sent, _, _, _>(
            Some(name.into()),
            Location::caller(),
            Gate::IfFree,
            make,
            NoFailure,
        )
    }

    /// Spawns into the group, waiting for a slot if there is a limit: what
    /// every `spawn*` but `try_spawn` does. `L` hands the harness to the
    /// runtime (see [`start_with`](Self::start_with)).
    #[track_caller]
    fn start_waiting<L, F, Fut, C>(
        &self,
        name: Option<Cow<'static, str>>,
        make: F,
        classify: C,
    ) -> Task<Fut::Output>
    where
        L: Launch<R, crate::task::Harness<Tracked<Fut, C>>>,
        C: Classify<Fut::Output>,
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        match self.start_with::<L, F, Fut, C>(name, Location::caller(), Gate::Wait, make, classify)
        {
            Ok(task) => task,
            Err(Full(_)) => unreachable!("only `Gate::IfFree` refuses"),
        }
    }

    /// Spawns `make(token)` into the group, handing the harness to the
    /// runtime through `L`: the runtime's `Send` spawner, or its local one. If `L` panics
    /// (a local spawn off the executor's thread), the harness it dropped
    /// takes the task's bookkeeping with it (`Done`), and the panic
    /// reaches the caller's line.
    #[track_caller]
    fn start_with<L, F, Fut, C>(
        &self,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        gate: Gate,
        make: F,
        classify: C,
    ) -> Result<Task<Fut::Output>, Full<F>>
    where
        L: Launch<R, crate::task::Harness<Tracked<Fut, C>>>,
        C: Classify<Fut::Output>,
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let inner = self.inner().clone();
        // A lock-free first look (the decision is re-checked under the lock
        // below): a closed group does not even call `make`.
        if inner.closed.load(Ordering::Acquire) {
            return Ok(never_run());
        }
        let slot = match (&inner.slots, gate) {
            (None, _) => Slot::Held(None),
            (Some(slots), Gate::IfFree) => match slots.try_acquire_arc() {
                Some(permit) => Slot::Held(Some(permit)),
                None => return Err(Full(make)),
            },
            (Some(slots), Gate::Wait) => match slots.try_acquire_arc() {
                Some(permit) => Slot::Held(Some(permit)),
                None => Slot::Queued(Box::pin(slots.acquire_arc())),
            },
        };
        let token = inner.token.child();
        // Before any bookkeeping: if `make` panics, nothing is left behind.
        let fut = make(token.clone());
        let started = matches!(slot, Slot::Held(_));
        // The task's scope token (`scope::current()`) is the one `make`
        // got. Its handle exists before its future: its abort handle goes
        // into the group's entry in the same step as the entry (one lock
        // per spawn). A force between here and the launch aborts it, and
        // the harness then drops the future at its first poll, unpolled.
        let (task, unstarted) = crate::task::prepare(Some(token));
        let (key, id) = {
            let mut state = inner.lock();
            if state.closed {
                // Closed meanwhile: the task never runs.
                return Ok(never_run());
            }
            let id = state.next_id;
            state.next_id += 1;
            let key = state.live.insert(Live {
                id,
                name,
                location,
                abort: Some(task.abort_handle()),
                started,
                doomed: false,
                blocking: false,
            });
            (key, id)
        };
        let (permit, queued) = match slot {
            Slot::Held(permit) => (permit, None),
            Slot::Queued(acquire) => (None, Some(acquire)),
        };
        let tracked = Tracked {
            fut: Some(fut),
            queued,
            doomed: false,
            done: Done::new(inner, key, id, false, permit),
            classify,
        };
        // Spawn without holding the lock: a spawner may poll inline.
        L::launch(&self.rt, unstarted.harness(tracked));
        Ok(task)
    }

    /// Closes the group: tasks spawned from now on never run (their
    /// handles give `Err(JoinError::Cancelled)`), while those already in it
    /// run on. With [`wait`](TaskGroup::wait), that is tokio-util's
    /// `TaskTracker` "close, then wait for what is in flight".
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let first = group.spawn(|_| async { 1 });
    /// group.close();
    /// let late = group.spawn(|_| async { 2 });
    /// rt.block_on(group.wait());
    /// assert_eq!(rt.block_on(first).unwrap(), 1);
    /// assert!(rt.block_on(late).unwrap_err().is_cancelled());
    /// # }
    /// ```
    pub fn close(&self) {
        let inner = self.inner();
        inner.lock().closed = true;
        inner.closed.store(true, Ordering::Release);
    }

    /// Whether the group is [closed](TaskGroup::close) (or shut down):
    /// spawns no longer run.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let rt = cancelkit::rt::Smol::new().unwrap();
    /// let group = cancelkit::TaskGroup::new(&rt);
    /// group.close();
    /// assert!(group.is_closed());
    /// # }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner().closed.load(Ordering::Acquire)
    }

    /// Waits until no task of the group is running.
    ///
    /// ```text
    /// async fn wait(&self);
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// rt.block_on(async {
    ///     for _ in 0..10 {
    ///         group.spawn(|_| async {}).detach();
    ///     }
    ///     group.wait().await;
    /// });
    /// assert!(group.is_empty());
    /// # }
    /// ```
    pub async fn wait(&self) {
        self.inner().until_empty().await;
    }

    /// Shuts the group down ([B1](crate#B1)): cancels its token (kind
    /// [`CancelKind::Shutdown`], with the grace deadline announced through
    /// [`CancelToken::deadline`] to every task), waits up to `grace` for the
    /// tasks to finish on their own, then drops the rest, and reports.
    ///
    /// ```text
    /// async fn shutdown(self, grace: Duration) -> ShutdownReport;
    /// ```
    ///
    /// When it returns, no task of the group is running, and the group is
    /// closed: tasks spawned through a clone while it runs are part of the
    /// shutdown (born with a cancelled token, forced with the rest when the
    /// grace ends; in a limited group, queued ones start only if a slot
    /// frees before that); tasks spawned after it never run (`make` is not
    /// called, and their handles report `JoinError::Cancelled`). Tasks
    /// still queued when it begins never start (counted in
    /// [`not_started`](ShutdownReport::not_started)).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes drops the group (if this was
    /// its last clone): the remaining tasks are dropped without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let report = rt.block_on(async {
    ///     group.spawn(|stop| async move { stop.cancelled().await }).detach();
    ///     group.shutdown(Duration::from_secs(1)).await
    /// });
    /// assert_eq!((report.finished, report.forced.len()), (1, 0));
    /// # }
    /// ```
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let inner = self.inner().clone();
        let deadline = saturating_deadline(self.rt.now(), grace);
        inner.lock().shutting_down = true;
        // Queued tasks never start: they get no grace.
        inner.drop_queued();
        inner.token.announce_deadline(deadline);
        inner.token.cancel_with(
            CancelKind::Shutdown,
            Stopping("the task group is shutting down"),
        );

        let mut forced = match timeout(&self.rt, grace, inner.until_empty()).await {
            Ok(()) => Vec::new(),
            Err(_elapsed) => {
                let forced = inner.force_all();
                // Aborted futures are dropped at their next scheduling.
                inner.until_empty().await;
                forced
            }
        };
        // Close the group: from here on, spawns do not run. A spawn that
        // slipped in before the close is forced and waited for, so nothing
        // runs once we return.
        loop {
            {
                let mut state = inner.lock();
                if state.live.is_empty() {
                    state.forced = true;
                    state.closed = true;
                    inner.closed.store(true, Ordering::Release);
                    break;
                }
            }
            forced.extend(inner.force_all());
            inner.until_empty().await;
        }
        let state = inner.lock();
        ShutdownReport {
            finished: state.finished_in_grace,
            forced,
            failures: state.failures.clone(),
            failures_not_kept: state.failures_not_kept,
            not_started: state.not_started,
            overruns: state.overruns.clone(),
            overruns_not_kept: state.overruns_not_kept,
            abandoned: state.abandoned.clone(),
            abandoned_not_kept: state.abandoned_not_kept,
        }
    }

    /// Waits for `signal`, then [shuts down](TaskGroup::shutdown) with
    /// `grace` ([B4](crate#B4)). The signal may be any [`Signal`]: a token, a runtime's
    /// `ctrl_c()`, or both combined with [`SignalExt::or`](crate::signal::SignalExt::or).
    ///
    /// ```text
    /// async fn shutdown_on(self, signal: impl Signal, grace: Duration) -> ShutdownReport;
    /// ```
    ///
    /// # Cancel safety
    ///
    /// As [`shutdown`](TaskGroup::shutdown): dropping it drops the group
    /// (if this was its last clone), dropping its tasks without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let stop = CancelToken::new();
    /// stop.cancel();
    /// let report = rt.block_on(group.shutdown_on(stop, Duration::from_secs(1)));
    /// assert!(report.forced.is_empty());
    /// # }
    /// ```
    pub async fn shutdown_on<S: Signal>(self, signal: S, grace: Duration) -> ShutdownReport {
        signal.raised().await;
        self.shutdown(grace).await
    }
}

/// How a group hands a task's harness to its runtime.
trait Launch<R, H> {
    #[track_caller]
    fn launch(rt: &R, harness: H);
}

/// Through [`Spawner`](crate::Spawner): `Send` futures.
enum Sent {}

impl<R: Spawner, H: Future<Output = ()> + Send + 'static> Launch<R, H> for Sent {
    fn launch(rt: &R, harness: H) {
        rt.spawn_detached(harness);
    }
}

/// Through [`LocalSpawner`]: futures bound to the executor's thread.
enum Local {}

impl<R: LocalSpawner, H: Future<Output = ()> + 'static> Launch<R, H> for Local {
    #[track_caller]
    fn launch(rt: &R, harness: H) {
        rt.spawn_local_detached(harness);
    }
}

/// Whether a spawn may wait for a slot.
enum Gate {
    Wait,
    IfFree,
}

/// A spawned task's slot in a limited group.
enum Slot {
    /// Holds one (or the group has no limit).
    Held(Option<SemaphoreGuardArc>),
    /// Waits for one.
    Queued(Pin<Box<SemaphoreAcquireArc>>),
}

/// Local (`!Send`) tasks in a group ([L2](crate#L2)), on a runtime with a
/// [`LocalSpawner`] ([`rt::TokioLocal`](crate::rt::TokioLocal),
/// [`rt::SmolLocal`](crate::rt::SmolLocal)).
///
/// A local task is a member like any other: it gets a child of the
/// group's token, counts toward the [limit](TaskGroupBuilder::limit), and
/// is waited for, forced, named and reported by
/// [`shutdown`](TaskGroup::shutdown) exactly as [B1](crate#B1)–[B4](crate#B4)
/// say. Only its future may be `!Send`: its output must be `Send` (the
/// group keeps a thread-safe way to abort it).
impl<R: RuntimeHandle + LocalSpawner> TaskGroup<R> {
    /// [`spawn`](TaskGroup::spawn) for a future that is not `Send`, on the
    /// runtime's local executor. The task is named `task #N`.
    ///
    /// # Panics
    ///
    /// At the caller's line, when called off the local executor's thread
    /// (see [`LocalSpawner`]): `make` has been called, but its future is
    /// dropped unpolled and the group does not keep the task.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use std::{rc::Rc, time::Duration};
    /// use cancelkit::{Runtime, TaskGroup, rt::TokioLocal};
    ///
    /// let rt = TokioLocal::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let state = Rc::new(()); // not Send
    /// group.spawn_local(|stop| async move {
    ///     let _state = state;
    ///     stop.cancelled().await;
    /// }).detach();
    /// let report = rt.block_on(group.shutdown(Duration::from_secs(1)));
    /// assert_eq!((report.finished, report.forced.len()), (1, 0));
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local<F, Fut>(&self, make: F) -> Task<Fut::Output>
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.start_waiting::<Local, _, _, _>(None, make, NoFailure)
    }

    /// [`spawn_local`](TaskGroup::spawn_local) with a name, which the
    /// [`ShutdownReport`] uses.
    ///
    /// # Panics
    ///
    /// As [`spawn_local`](TaskGroup::spawn_local).
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// use cancelkit::{Runtime, TaskGroup, rt::SmolLocal};
    ///
    /// let rt = SmolLocal::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let ticks = Rc::new(Cell::new(0));
    /// group.spawn_local_named("stubborn", {
    ///     let ticks = ticks.clone();
    ///     |_stop| async move {
    ///         ticks.set(1);
    ///         std::future::pending::<()>().await
    ///     }
    /// }).detach();
    /// rt.block_on(async {
    ///     while ticks.get() == 0 {
    ///         futures_lite::future::yield_now().await; // until it has run
    ///     }
    /// });
    /// let report = rt.block_on(group.shutdown(Duration::from_millis(10)));
    /// assert_eq!(report.forced[0].name(), "stubborn");
    /// assert_eq!(ticks.get(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_local_named<F, Fut>(
        &self,
        name: impl Into<Cow<'static, str>>,
        make: F,
    ) -> Task<Fut::Output>
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.start_waiting::<Local, _, _, _>(Some(name.into()), make, NoFailure)
    }
}

impl<R: RuntimeHandle + SpawnBlocking> TaskGroup<R> {
    /// Runs blocking work in the group: like
    /// [`SpawnBlockingExt::spawn_blocking`](crate::blocking::SpawnBlockingExt::spawn_blocking),
    /// with a child of the group's token, a name for the report, and the
    /// group's bookkeeping ([L4](crate#L4)).
    ///
    /// The group waits for it like for its tasks ([`wait`](Self::wait), a
    /// shutdown's grace), counts it finished when it returns within the
    /// grace, and records its panic as a failure (fatal to the siblings in a
    /// fail-fast group). Past a shutdown's grace it cannot be forced: the
    /// report lists it as [`abandoned`](ShutdownReport::abandoned), and the
    /// shutdown returns without waiting for it. Blocking work does not take
    /// one of a [limited](TaskGroupBuilder::limit) group's slots. Spawned
    /// into a closed group, it never runs (its handle gives
    /// `Err(JoinError::Cancelled)`).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, rt::Tokio};
    ///
    /// let rt = Tokio::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let (started, has_started) = std::sync::mpsc::channel();
    /// let (release, hold) = std::sync::mpsc::channel::<()>();
    /// group
    ///     .spawn_blocking_named("polite", {
    ///         let started = started.clone();
    ///         move |token| {
    ///             started.send(()).unwrap();
    ///             token.wait_timeout(Duration::MAX); // returns when asked to stop
    ///         }
    ///     })
    ///     .detach();
    /// group
    ///     .spawn_blocking_named("stubborn", move |_token| {
    ///         started.send(()).unwrap();
    ///         let _ = hold.recv(); // ignores its token
    ///     })
    ///     .detach();
    /// // (Work that no thread has picked up when the shutdown cancels it
    /// // never starts, and counts as `not_started`.)
    /// has_started.recv().unwrap();
    /// has_started.recv().unwrap();
    /// let report = rt.block_on(group.shutdown(Duration::from_secs(1)));
    /// assert_eq!(report.finished, 1);
    /// assert!(report.forced.is_empty());
    /// assert_eq!(report.abandoned[0].name(), "stubborn");
    /// drop(release); // let it end
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking_named<F, T>(
        &self,
        name: impl Into<Cow<'static, str>>,
        f: F,
    ) -> BlockingTask<T>
    where
        F: FnOnce(&BlockingToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.start_blocking(Some(name.into()), Location::caller(), f)
    }

    /// [`spawn_blocking_named`](Self::spawn_blocking_named) without a name
    /// (reports call it `task #N`).
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, TaskGroup, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let group = TaskGroup::new(&rt);
    /// let sum = group.spawn_blocking(|_| (1..=4).product::<u32>());
    /// assert_eq!(rt.block_on(sum).unwrap(), 24);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_blocking<F, T>(&self, f: F) -> BlockingTask<T>
    where
        F: FnOnce(&BlockingToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.start_blocking(None, Location::caller(), f)
    }

    fn start_blocking<F, T>(
        &self,
        name: Option<Cow<'static, str>>,
        location: &'static Location<'static>,
        f: F,
    ) -> BlockingTask<T>
    where
        F: FnOnce(&BlockingToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner().clone();
        if inner.closed.load(Ordering::Acquire) {
            return crate::blocking::never_run();
        }
        let token = inner.token.child();
        let (key, id) = {
            let mut state = inner.lock();
            if state.closed {
                return crate::blocking::never_run();
            }
            let id = state.next_id;
            state.next_id += 1;
            let key = state.live.insert(Live {
                id,
                name,
                location,
                // Nothing to abort: its token is a child of the group's,
                // which every stop cancels (with the group's own cause).
                abort: None,
                // Until a pool thread picks it up (see `may_start`).
                started: false,
                doomed: false,
                blocking: true,
            });
            (key, id)
        };
        // On the pool thread, right before the closure starts: it starts
        // only if its entry is still there (a forced group reported it as
        // not started and removed it).
        let may_start: crate::blocking::StartHook = Box::new({
            let inner = inner.clone();
            move || {
                let mut state = inner.lock();
                match state.live.get_mut(key) {
                    Some(live) if live.id == id => {
                        live.started = true;
                        true
                    }
                    _ => false,
                }
            }
        });
        let done = Done::new(inner, key, id, true, None);
        // `done` reports when the closure ends — or is dropped unrun.
        let tracked = move |blocking: &BlockingToken| {
            let mut done = done;
            match catch_unwind(AssertUnwindSafe(|| f(blocking))) {
                Ok(value) => {
                    done.finished = true;
                    value
                }
                Err(payload) => {
                    done.fail(FailureKind::Panicked, panic_text(&*payload));
                    drop(done);
                    resume_unwind(payload)
                }
            }
        };
        crate::blocking::spawn_with_token(&self.rt, token, Some(may_start), tracked)
    }
}

/// The handle of a task that never runs: it reports `Cancelled`.
fn never_run<T>() -> Task<T> {
    let (task, harness) = crate::task::new(std::future::pending::<T>());
    drop(harness); // reports `JoinError::Cancelled`
    task
}

/// Which outputs of a task are failures, and their messages: a type, not a
/// function pointer, so a task's future carries no word for it.
trait Classify<T>: Copy + Send + 'static {
    fn failure(self, out: &T) -> Option<String>;
}

/// No output is a failure ([`TaskGroup::spawn`]).
#[derive(Clone, Copy)]
struct NoFailure;

impl<T> Classify<T> for NoFailure {
    fn failure(self, _: &T) -> Option<String> {
        None
    }
}

/// An `Err` is a failure, its `Display` the message
/// ([`TaskGroup::spawn_fallible`]).
#[derive(Clone, Copy)]
struct ErrorText;

impl<T, E: fmt::Display> Classify<Result<T, E>> for ErrorText {
    fn failure(self, out: &Result<T, E>) -> Option<String> {
        out.as_ref().err().map(ToString::to_string)
    }
}

// ===== the per-task wrapper =====

/// How a task ended, as its report sees it (a [`Done`] keeps it in two
/// smaller fields).
enum Outcome {
    /// Still running, or dropped before finishing (forced or cancelled).
    Dropped,
    Finished,
    /// Boxed: failing is rare, and every task carries room for this.
    Failed(Box<(FailureKind, String)>),
}

/// Reports a task's end to its group when the task's future is dropped —
/// which is exactly when the task stops running, whatever the reason — or,
/// if the task then still hosts shields or cleanups, once they ended.
struct Done {
    inner: Arc<Inner>,
    /// Its entry's key in `State::live` (a `u32`, with the flags below in
    /// one word).
    key: u32,
    id: u64,
    /// How it ended (see [`Done::take_outcome`]): a flag and a word, not
    /// an [`Outcome`]'s two words.
    finished: bool,
    failure: Option<Box<(FailureKind, String)>>,
    /// It reported, or its report moved into a deferred one: dropping it
    /// says nothing.
    handed_over: bool,
    /// Blocking work's: it runs on a pool thread, or is dropped wherever
    /// its runtime drops it, never as part of a task — so it has no scope.
    blocking: bool,
    /// It holds one of a limited group's slots (a permit of
    /// `Inner::slots`, its guard forgotten: a flag here, not a guard's
    /// two words in every task's future), given back when it is dropped.
    holds_slot: bool,
}

impl Done {
    /// The report of the work in slot `key` (with `id`) of `inner`'s live
    /// set, to be dropped when it ends.
    fn new(
        inner: Arc<Inner>,
        key: usize,
        id: u64,
        blocking: bool,
        permit: Option<SemaphoreGuardArc>,
    ) -> Self {
        Done {
            inner,
            key: u32::try_from(key).expect("fewer than 2^32 live tasks in a group"),
            id,
            finished: false,
            failure: None,
            handed_over: false,
            blocking,
            holds_slot: permit.map(SemaphoreGuardArc::forget).is_some(),
        }
    }

    /// Takes over `permit`, a slot of the group: given back when this is
    /// dropped.
    fn hold(&mut self, permit: SemaphoreGuardArc) {
        debug_assert!(!self.holds_slot);
        permit.forget();
        self.holds_slot = true;
    }

    /// A hosted section of the task panicked: that panic is the task's (its
    /// handle reports it), and so the group's failure.
    fn hosted_panic(&mut self, text: Option<String>) {
        if let Some(text) = text {
            if !matches!(&self.failure, Some(f) if f.0 == FailureKind::Panicked) {
                self.fail(FailureKind::Panicked, text);
            }
        }
    }

    /// It failed (over whatever it ended with before).
    fn fail(&mut self, kind: FailureKind, message: String) {
        self.failure = Some(Box::new((kind, message)));
    }

    /// Its slot of a limited group, if it holds one, as a guard that gives
    /// it back when dropped (a task queued for it may start then).
    fn take_slot(&mut self) -> Option<SlotBack> {
        if std::mem::take(&mut self.holds_slot) {
            self.inner.slots.clone().map(SlotBack)
        } else {
            None
        }
    }

    /// How it ended, taken out (what is left says `Dropped`).
    fn take_outcome(&mut self) -> Outcome {
        match (self.failure.take(), std::mem::take(&mut self.finished)) {
            (Some(failure), _) => Outcome::Failed(failure),
            (None, true) => Outcome::Finished,
            (None, false) => Outcome::Dropped,
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        self.end();
        // Unless the report gave it back (or a deferred one took it).
        drop(self.take_slot());
    }
}

/// A slot of a limited group (a permit of `Inner::slots` whose guard was
/// forgotten), given back when dropped — also while unwinding.
struct SlotBack(Arc<Semaphore>);

impl Drop for SlotBack {
    fn drop(&mut self) {
        self.0.add_permits(1);
    }
}

impl Done {
    /// Reports the end, or defers the report while the task hosts
    /// sections.
    fn end(&mut self) {
        if self.handed_over {
            return;
        }
        // Blocking work has no scope, and most tasks never host a section:
        // one look, and nothing hosted to wait for or to report.
        if self.blocking || !scope::current_task_ever_hosted() {
            self.report(&[]);
            return;
        }
        if scope::current_task_is_hosting() {
            // The task is not finished while what it hosts runs (S1): its
            // report — and its slot, and the group's "empty" — wait.
            self.handed_over = true;
            let mut later = Done::new(self.inner.clone(), self.key as usize, self.id, false, None);
            // The slot stays taken until the deferred report.
            later.holds_slot = std::mem::take(&mut self.holds_slot);
            later.finished = std::mem::take(&mut self.finished);
            later.failure = self.failure.take();
            let report = move |overruns: &[Overrun], panic: Option<String>| {
                let mut later = later;
                later.hosted_panic(panic);
                later.report(overruns);
            };
            if let Some(report) = scope::defer_while_hosting(report) {
                let (overruns, panic) = scope::recorded_in_current_task();
                report(&overruns, panic);
            }
            return;
        }
        // What sections hosted while the task ran left behind.
        let (overruns, panic) = scope::recorded_in_current_task();
        self.hosted_panic(panic);
        self.report(&overruns);
    }

    /// Reports the end to the group: the entry leaves, with its outcome and
    /// `overruns` recorded. Once: what `drop` does after it is nothing.
    fn report(&mut self, overruns: &[Overrun]) {
        self.handed_over = true;
        // Given back when this returns — after the entry left and after the
        // fail-fast cancel, so a task queued for the slot starts with its
        // token cancelled — or when a panic (a cancel callback's) unwinds.
        let _slot = self.take_slot();
        let mut cancel_siblings = None;
        let outcome = self.take_outcome();
        let now_empty;
        {
            let mut state = self.inner.lock();
            // Gone already, or the slot reused: blocking work abandoned at
            // shutdown leaves the group before it ends.
            if state
                .live
                .get(self.key as usize)
                .is_none_or(|live| live.id != self.id)
            {
                // Only blocking work leaves early; a task's entry stays
                // until its `Done` is dropped.
                debug_assert!(self.blocking, "a task's entry left the group early");
                return;
            }
            let live = state.live.remove(self.key as usize);
            let forced = state.forced;
            match outcome {
                Outcome::Finished => {
                    if state.shutting_down && !forced {
                        state.finished_in_grace += 1;
                    }
                }
                Outcome::Failed(failed) => {
                    let (kind, message) = *failed;
                    let failure = TaskFailure {
                        task: live.info(),
                        kind,
                        message,
                    };
                    if state.shutting_down && !forced {
                        state.finished_in_grace += 1;
                    }
                    if self.inner.fail_fast {
                        cancel_siblings = Some(failure.clone());
                    }
                    if state.failures.len() < self.inner.keep_failures {
                        state.failures.push(failure);
                    } else {
                        state.failures_not_kept += 1;
                    }
                }
                // Blocking work ends as `Finished` or `Failed` once it ran:
                // dropped, it never started.
                Outcome::Dropped if live.blocking && state.shutting_down => {
                    state.not_started += 1;
                }
                Outcome::Dropped => {}
            }
            for section in overruns {
                if state.overruns.len() < self.inner.keep_failures {
                    let task = live.info();
                    let section = section.clone();
                    state.overruns.push(TaskOverrun { task, section });
                } else {
                    state.overruns_not_kept += 1;
                }
            }
            now_empty = state.live.is_empty();
        }
        // Only the waiters for "no task left" listen; wake them only then —
        // before cancelling, whose user callbacks might panic.
        if now_empty {
            self.inner.changed.notify(usize::MAX);
        }
        if let Some(failure) = cancel_siblings {
            // Outside the lock: cancelling runs callbacks and wakes tasks.
            self.inner
                .token
                .cancel_with(CancelKind::TaskFailed, failure);
        }
    }
}

pin_project_lite::pin_project! {
    /// A group task's future: records how it ended in its `Done`.
    ///
    /// It drops the user's future itself — on completion, and in its own
    /// destructor — so that a destructor that panics is recorded as the
    /// panic the task's handle reports, before `done` reports to the group.
    struct Tracked<F: Future, C> {
        #[pin]
        fut: Option<F>,
        // Waiting for a slot of a limited group; the future is not polled
        // before it has one.
        queued: Option<Pin<Box<SemaphoreAcquireArc>>>,
        // Dropped while queued: never starts, whatever wakes it.
        doomed: bool,
        done: Done,
        classify: C,
    }

    impl<F: Future, C> PinnedDrop for Tracked<F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Err(payload) = drop_in_place_caught(this.fut) {
                // Dropped unfinished (cancelled or forced), and its
                // destructor panicked: the handle reports that panic.
                panicked(this.done, payload)
            }
        }
    }
}

/// Drops the future in `slot` (if any), catching a panic from its
/// destructor.
fn drop_in_place_caught<F>(
    mut slot: Pin<&mut Option<F>>,
) -> Result<(), Box<dyn std::any::Any + Send + 'static>> {
    if slot.is_none() {
        return Ok(());
    }
    catch_unwind(AssertUnwindSafe(|| slot.set(None)))
}

impl<F: Future, C: Classify<F::Output>> Future for Tracked<F, C> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if *this.doomed {
            // Being aborted; the abort's wake-up drops this future.
            return Poll::Pending;
        }
        if let Some(acquire) = this.queued.as_mut() {
            let Poll::Ready(permit) = acquire.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            *this.queued = None;
            let mut state = this.done.inner.lock();
            let live = state
                .live
                .get_mut(this.done.key as usize)
                .filter(|l| l.id == this.done.id);
            match live {
                Some(live) if !live.doomed => live.started = true,
                // Dropped while queued: it is being aborted, and never
                // starts (the abort's wake-up drops this future).
                _ => {
                    *this.doomed = true;
                    return Poll::Pending;
                }
            }
            drop(state);
            this.done.hold(permit);
        }
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            // Finished already: runtimes do not poll again (the harness
            // guards it), but stay well-defined.
            return Poll::Pending;
        };
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                // The error's `Display` is user code: a panic in it is this
                // task's panic, reported like one from its future.
                let classify = *this.classify;
                let failure = catch_unwind(AssertUnwindSafe(|| classify.failure(&out)));
                // The future is done: drop it now, so a panic in its
                // destructor is this task's outcome (as its handle sees it).
                let dropped = drop_in_place_caught(this.fut.as_mut());
                let failure = match (failure, dropped) {
                    (Ok(failure), Ok(())) => failure,
                    // The first panic is the task's; a second one from the
                    // destructor is not ours to report.
                    (Err(payload), second) => {
                        drop_quietly((second, out));
                        panicked(this.done, payload)
                    }
                    (Ok(_), Err(payload)) => {
                        drop_quietly(out);
                        panicked(this.done, payload)
                    }
                };
                match failure {
                    // An error caused by being cancelled (the task's token,
                    // its scope's) is no failure.
                    Some(message) if !scope::current_task_cancelled() => {
                        this.done.fail(FailureKind::Error, message);
                    }
                    _ => this.done.finished = true,
                }
                Poll::Ready(out)
            }
            Err(payload) => {
                // The harness drops us (and the future) and reports the
                // panic; a second panic from the destructor is not ours to
                // report.
                drop_quietly(drop_in_place_caught(this.fut.as_mut()));
                panicked(this.done, payload)
            }
        }
    }
}

/// Records the panic that ended a task as its outcome, then goes on
/// unwinding with it (the harness reports it to the handle).
fn panicked(done: &mut Done, payload: Box<dyn std::any::Any + Send>) -> ! {
    done.fail(FailureKind::Panicked, panic_text(&*payload));
    resume_unwind(payload)
}

// ===== collecting outputs as tasks finish =====

/// Tasks of a [`TaskGroup`] whose outputs are collected as they finish,
/// like tokio's `JoinSet`: [`join_next`](TaskSet::join_next) gives the
/// next one to finish.
///
/// Its tasks belong to the group (the group's shutdown covers them, and its
/// report names them). Dropping the set cancels the tasks still in it, as
/// dropping their [`Task`] handles would. A long-lived set keeps only what
/// has not been joined yet.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{Runtime, TaskGroup, group::TaskSet, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let mut set = TaskSet::new(&group);
/// for i in 0..3u32 {
///     set.spawn(move |_token| async move { i * 10 });
/// }
/// let mut sum = 0;
/// rt.block_on(async {
///     while let Some(out) = set.join_next().await {
///         sum += out.unwrap();
///     }
/// });
/// assert_eq!(sum, 30);
/// # }
/// ```
pub struct TaskSet<R, T> {
    group: TaskGroup<R>,
    shared: Arc<SetShared>,
    tasks: Slab<Task<T>>,
    /// A finished task being joined (kept here so that a dropped
    /// `join_next` loses nothing).
    current: Option<usize>,
}

/// What a set's tasks tell it: which of them finished.
#[derive(Default)]
struct SetShared {
    done: Mutex<std::collections::VecDeque<usize>>,
    ready: Event,
}

impl SetShared {
    fn finished(&self, key: usize) {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(key);
        self.ready.notify(usize::MAX);
    }

    fn next_finished(&self) -> Option<usize> {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

impl<R, T> fmt::Debug for TaskSet<R, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}

impl<R: RuntimeHandle, T: Send + 'static> TaskSet<R, T> {
    /// An empty set spawning into `group`.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// let sim = cancelkit::sim::Sim::new();
    /// let group = cancelkit::TaskGroup::new(&sim);
    /// let set: cancelkit::group::TaskSet<_, u8> = cancelkit::group::TaskSet::new(&group);
    /// assert!(set.is_empty());
    /// # }
    /// ```
    pub fn new(group: &TaskGroup<R>) -> Self {
        TaskSet {
            group: group.clone(),
            shared: Arc::default(),
            tasks: Slab::new(),
            current: None,
        }
    }

    /// Spawns `make(token)` into the group, as
    /// [`TaskGroup::spawn`] does, keeping its handle in the set.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use cancelkit::{Runtime, TaskGroup, group::TaskSet, sim::Sim};
    /// let sim = Sim::new();
    /// let mut set = TaskSet::new(&TaskGroup::new(&sim));
    /// set.spawn(|_| async { 1 });
    /// assert_eq!(sim.block_on(set.join_next()).unwrap().unwrap(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn<F, Fut>(&mut self, make: F)
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.spawn_as(None, make);
    }

    /// [`spawn`](TaskSet::spawn) with a name, for the group's report.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use cancelkit::{TaskGroup, group::TaskSet, sim::Sim};
    /// let sim = Sim::new();
    /// let mut set = TaskSet::new(&TaskGroup::new(&sim));
    /// set.spawn_named("fetch", |_| async { 1 });
    /// assert_eq!(set.len(), 1);
    /// # }
    /// ```
    #[track_caller]
    pub fn spawn_named<F, Fut>(&mut self, name: impl Into<Cow<'static, str>>, make: F)
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        self.spawn_as(Some(name.into()), make);
    }

    #[track_caller]
    fn spawn_as<F, Fut>(&mut self, name: Option<Cow<'static, str>>, make: F)
    where
        F: FnOnce(CancelToken) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let entry = self.tasks.vacant_entry();
        let key = entry.key();
        let shared = self.shared.clone();
        let made = std::cell::Cell::new(false);
        let task = self.group.start_waiting::<Sent, _, _, _>(
            name,
            |token| {
                made.set(true);
                Notify {
                    fut: make(token),
                    _signal: FinishSignal { shared, key },
                }
            },
            NoFailure,
        );
        if !made.get() {
            // The group is closed: the task never runs, and no signal
            // would tell us.
            self.shared.finished(key);
        }
        entry.insert(task);
    }

    /// How many tasks are in the set: running, queued, or finished and not
    /// yet joined.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// let sim = cancelkit::sim::Sim::new();
    /// let set: cancelkit::group::TaskSet<_, ()> =
    ///     cancelkit::group::TaskSet::new(&cancelkit::TaskGroup::new(&sim));
    /// assert_eq!(set.len(), 0);
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// let sim = cancelkit::sim::Sim::new();
    /// let set: cancelkit::group::TaskSet<_, ()> =
    ///     cancelkit::group::TaskSet::new(&cancelkit::TaskGroup::new(&sim));
    /// assert!(set.is_empty());
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task of the set to finish and gives its outcome
    /// (as awaiting its [`Task`] would); `None` once the set is empty.
    ///
    /// ```text
    /// async fn join_next(&mut self) -> Option<Result<T, JoinError>>;
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if it is dropped before it completes, no outcome is
    /// lost; the next call gives it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, TaskGroup, Timer, group::TaskSet, sim::Sim};
    ///
    /// let sim = Sim::new();
    /// let mut set = TaskSet::new(&TaskGroup::new(&sim));
    /// for ms in [30u64, 10, 20] {
    ///     let nap = sim.sleep(Duration::from_millis(ms));
    ///     set.spawn(move |_| async move { nap.await; ms });
    /// }
    /// let order: Vec<u64> = sim.block_on(async {
    ///     let mut order = Vec::new();
    ///     while let Some(out) = set.join_next().await {
    ///         order.push(out.unwrap());
    ///     }
    ///     order
    /// });
    /// assert_eq!(order, [10, 20, 30]);
    /// # }
    /// ```
    pub async fn join_next(&mut self) -> Option<Result<T, crate::JoinError>> {
        loop {
            if let Some(key) = self.current {
                let out = (&mut self.tasks[key]).await;
                self.current = None;
                drop(self.tasks.remove(key));
                return Some(out);
            }
            if self.tasks.is_empty() {
                return None;
            }
            if let Some(key) = self.shared.next_finished() {
                self.current = Some(key);
                continue;
            }
            listener!(self.shared.ready => finished);
            if let Some(key) = self.shared.next_finished() {
                self.current = Some(key);
                continue;
            }
            finished.await;
        }
    }
}

pin_project_lite::pin_project! {
    /// A set's task: tells the set when its future is dropped (finished,
    /// cancelled or forced).
    struct Notify<F> {
        #[pin]
        fut: F,
        // After `fut`: signals once the future is gone.
        _signal: FinishSignal,
    }
}

impl<F: Future> Future for Notify<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().fut.poll(cx)
    }
}

struct FinishSignal {
    shared: Arc<SetShared>,
    key: usize,
}

impl Drop for FinishSignal {
    fn drop(&mut self) {
        self.shared.finished(self.key);
    }
}
