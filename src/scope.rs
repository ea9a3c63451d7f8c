//! Cancel scopes: cancellation that code inside a task can see and shape,
//! on every runtime ([S1](crate#S1)–[S5](crate#S5)).
//!
//! Rust futures are cancelled by being dropped, and a destructor cannot
//! `.await`. Every task spawned through cancelkit ([`SpawnerExt::spawn`],
//! [`TaskGroup`]) runs inside cancelkit's own task harness, which sees its
//! cancellation on every runtime; this module lets the code in the task use
//! that:
//!
//! | you write | what it does |
//! |---|---|
//! | [`current()`] | the token of the innermost scope: cancelled when the task is ([S4](crate#S4)) |
//! | [`checkpoint().await`](checkpoint) | yields once; `Err(Cancelled)` if the scope is cancelled ([S4](crate#S4)) |
//! | [`move_on_after(&rt, d, f)`](move_on_after) / [`fail_after`] | runs `f` in a nested scope that expires after `d` ([S5](crate#S5)) |
//! | [`shield(&rt, grace, f)`](shield) | `f` finishes even if the task is cancelled meanwhile, within `grace` ([S1](crate#S1), [S2](crate#S2)) |
//! | [`cleanup(&rt, grace, f)`](cleanup) | async `f(cause)` runs when the scope is cancelled, never on completion ([S3](crate#S3)) |
//!
//! # Where the work runs, and who waits for it
//!
//! A shield that is dropped before it finished (its task was cancelled, or
//! code around it dropped it) and a triggered cleanup are *hosted* by the
//! task they belong to: the task's harness keeps polling them, on the task's
//! runtime, after the task's own future is gone. The task is not finished
//! until every hosted section ended — its handle resolves, its
//! [`cancel().await`](crate::Task::cancel) returns, and its group's
//! [`shutdown`](crate::TaskGroup::shutdown) returns only then. Each hosted
//! section has its own grace: past it, it is dropped and reported as an
//! [`Overrun`] (in the group's [`ShutdownReport`](crate::group::ShutdownReport),
//! naming the task, its spawn location and the section's location). A
//! panic in a hosted section is the task's panic
//! ([`JoinError::Panicked`](crate::JoinError::Panicked)), never lost. When
//! the runtime shuts down, hosted sections are dropped with the task
//! ([D6](crate#D6)).
//!
//! # Outside a cancelkit task
//!
//! On a thread that is not polling a cancelkit task (`block_on`, a plain
//! executor), the enclosing scope is one that is never cancelled:
//! [`current()`] returns a fresh token nobody cancels, [`checkpoint`]
//! never fails, [`move_on_after`] and [`fail_after`] still time out, a
//! [`shield`] is just its future (dropping it drops the future: there is
//! no task to host it), and [`cleanup`] refuses with [`Unhosted`].
//!
//! # Cost
//!
//! A task that never uses a scope pays one scoped thread-local write
//! around each poll of its future (a section — a shield, a cleanup, a
//! `move_on_after` — sets a second one around its own poll) and two words
//! of its shared allocation: the task's token is created only when
//! [`current()`] (or something built on it) first asks for it, and the
//! rest (the host list, the cancel site) only when the task hosts a
//! section or is cancelled.
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "smol")] {
//! use std::time::Duration;
//! use cancelkit::{Runtime, SpawnerExt, rt::Smol, scope};
//!
//! let rt = Smol::new().unwrap();
//! let task = rt.spawn({
//!     let rt = rt.clone();
//!     async move {
//!         // No token was handed in, yet the task can cooperate.
//!         let gave_up = scope::move_on_after(&rt, Duration::from_millis(10), async {
//!             loop {
//!                 scope::checkpoint().await?;
//!             }
//!             #[allow(unreachable_code)]
//!             Ok::<(), cancelkit::token::Cancelled>(())
//!         })
//!         .await;
//!         gave_up.is_none()
//!     }
//! });
//! assert!(rt.block_on(task).unwrap());
//! # }
//! ```
//!
//! [`SpawnerExt::spawn`]: crate::SpawnerExt::spawn
//! [`TaskGroup`]: crate::TaskGroup

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use once_cell::race::{OnceBox, OnceRef};
use once_cell::sync::OnceCell;

use crate::CancelToken;
use crate::loom::{AtomicU8, Mutex, MutexGuard, Ordering, fence};
use crate::runtime::{Timer, saturating_deadline};
use crate::task::{CANCEL_REQUESTED, drop_quietly, panic_text};
use crate::time::Elapsed;
use crate::token::{CancelKind, Cancelled, Watch};

scoped_tls::scoped_thread_local!(
    /// The innermost scope while code runs in one: the task's, set by its
    /// harness around each poll, or a section's — a shield, a cleanup, a
    /// `move_on_after` — set around the section's poll. One look answers
    /// `current()` and `checkpoint()`.
    static CURRENT: TaskScope
);
scoped_tls::scoped_thread_local!(
    /// The task, while one of its sections is polled (when `CURRENT` is the
    /// task's own scope, that is the task), so a task's poll writes one
    /// thread-local, not two. Also set by a task polled from inside a
    /// section's poll (a `block_on` nested in a task), which then owns both.
    static TASK: TaskScope
);

/// Runs `f` on the innermost scope; `None` outside any.
#[inline]
fn with_innermost<R>(f: impl FnOnce(&TaskScope) -> R) -> Option<R> {
    CURRENT.is_set().then(|| CURRENT.with(f))
}

/// Runs `f` on the scope of the task being polled on this thread; `None`
/// outside a task (a section polled outside any task has no task).
fn with_task<R>(f: impl FnOnce(&TaskScope) -> R) -> Option<R> {
    if TASK.is_set() {
        Some(TASK.with(f))
    } else if CURRENT.is_set() {
        CURRENT.with(|scope| scope.is_task().then(|| f(scope)))
    } else {
        None
    }
}

/// Whether a task is being polled on this thread.
fn in_task() -> bool {
    with_task(|_| ()).is_some()
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

// ===== deliberately broken builds, for the suite's negative tests =====

/// Under `--cfg cancelkit_sabotage` only (never in a normal build): breaks
/// one contract line at a time, so that `tests/sabotaged_scopes.rs` can
/// show each S case failing when its line is broken.
#[cfg(cancelkit_sabotage)]
#[doc(hidden)]
pub mod __sabotage {
    use std::sync::atomic::{AtomicU8, Ordering};

    static LINE: AtomicU8 = AtomicU8::new(0);

    /// Breaks line `S{n}` from now on (0: none).
    pub fn set(n: u8) {
        LINE.store(n, Ordering::SeqCst);
    }

    pub(crate) fn is(n: u8) -> bool {
        LINE.load(Ordering::SeqCst) == n
    }
}

/// Whether contract line `S{n}` is deliberately broken (see `__sabotage`).
#[inline(always)]
fn sabotaged(n: u8) -> bool {
    #[cfg(cancelkit_sabotage)]
    return __sabotage::is(n);
    #[cfg(not(cancelkit_sabotage))]
    {
        let _ = n;
        false
    }
}

// ===== the task's scope, owned by its harness =====

/// The part of a task's shared state that scopes use: the task's state word
/// (bits defined in `task.rs`), its lazily created token, and what only
/// some scopes need (`Rare`), made on first need.
///
/// A section nested in a task (`move_on_after`, a shield, a cleanup) has a
/// scope of the same type, with its token set and no task bits; only a
/// task's scope hosts anything.
///
/// Kept small: it lives in every task's shared allocation. A task that
/// never uses scopes, hosts nothing and is never cancelled pays its words
/// and nothing else: the state byte, the token's cell (empty), the cancel
/// site (null) and the pointer to `Rare` (null).
pub(crate) struct TaskScope {
    pub(crate) state: AtomicU8,
    /// `once_cell`'s cell, not std's `OnceLock`: a cell made with its value
    /// (every group task's, every section's) costs no `Once` call.
    token: OnceCell<CancelToken>,
    /// Where the task's cancel was asked for (set before `CANCEL_REQUESTED`,
    /// first caller wins), so the token's cause says the same whoever
    /// cancels it. One word, and no allocation on the cancel path.
    cancelled_at: OnceRef<'static, Location<'static>>,
    /// One word, not `OnceLock`'s two: this struct sits in every task.
    rare: OnceBox<Rare>,
}

/// What few scopes need: made when a task first hosts a section, or with a
/// hosted section's scope.
#[derive(Default)]
struct Rare {
    host: OnceLock<Host>,
    /// A hosted section's (a shield handed to the task, a cleanup): turns
    /// false when it ends, which drops the cleanups registered in it.
    alive: Option<Arc<AtomicBool>>,
}

/// A scope's state bit (beside the task bits of `task.rs`): it is a
/// section's, nested in a task, not a task's own.
const SECTION: u8 = 0b1000_0000;

impl TaskScope {
    /// A scope whose token is created on first use — or is `token`, for a
    /// group task, whose token the group hands out.
    #[inline]
    pub(crate) fn new(token: Option<CancelToken>) -> Self {
        TaskScope {
            state: AtomicU8::new(0),
            token: match token {
                Some(token) => OnceCell::with_value(token),
                None => OnceCell::new(),
            },
            cancelled_at: OnceRef::new(),
            rare: OnceBox::new(),
        }
    }

    /// The scope of a section nested in a task's code (`move_on_after`, a
    /// shield still awaited), whose token is `token`.
    fn nested(token: CancelToken) -> Self {
        TaskScope {
            state: AtomicU8::new(SECTION),
            token: OnceCell::with_value(token),
            cancelled_at: OnceRef::new(),
            rare: OnceBox::new(),
        }
    }

    /// The scope of a section the task hosts, whose token is `token`.
    fn hosted(token: CancelToken) -> Self {
        let rare = Rare {
            alive: Some(Arc::new(AtomicBool::new(true))),
            ..Rare::default()
        };
        TaskScope {
            state: AtomicU8::new(SECTION),
            token: OnceCell::with_value(token),
            cancelled_at: OnceRef::new(),
            rare: OnceBox::with_value(Box::new(rare)),
        }
    }

    fn rare(&self) -> &Rare {
        self.rare.get_or_init(Box::default)
    }

    /// A hosted section's liveness flag; `None` for other scopes.
    #[inline]
    fn alive(&self) -> Option<&Arc<AtomicBool>> {
        self.rare.get()?.alive.as_ref()
    }

    #[inline]
    fn host_if_any(&self) -> Option<&Host> {
        self.rare.get()?.host.get()
    }

    /// A hosted section ended: the cleanups registered in it are dropped.
    fn end_hosted(&self) {
        if let Some(alive) = self.alive() {
            alive.store(false, std::sync::atomic::Ordering::Release);
        }
    }

    /// A section's token (set at creation).
    fn section_token(&self) -> &CancelToken {
        self.token.get().expect("a section's scope has its token")
    }

    /// Runs `f` with this scope as the current task's, and the innermost:
    /// one thread-local write (see `TASK`).
    #[inline]
    pub(crate) fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        if TASK.is_set() {
            TASK.set(self, || CURRENT.set(self, f))
        } else {
            CURRENT.set(self, f)
        }
    }

    /// Runs `f` with this section's scope as the innermost, keeping the
    /// task it runs in reachable as `TASK`.
    fn enter_section<R>(&self, f: impl FnOnce() -> R) -> R {
        if TASK.is_set() || !CURRENT.is_set() {
            return CURRENT.set(self, f);
        }
        CURRENT.with(|outer| {
            if outer.is_task() {
                TASK.set(outer, || CURRENT.set(self, f))
            } else {
                CURRENT.set(self, f)
            }
        })
    }

    /// Whether this is a task's scope, not a section's.
    fn is_task(&self) -> bool {
        self.state.load(Ordering::Relaxed) & SECTION == 0
    }

    /// The task's token, created on first use. A task whose cancel was
    /// already requested gets a cancelled one.
    fn token(&self) -> CancelToken {
        if let Some(token) = self.token.get() {
            return token.clone();
        }
        let token = self.token.get_or_init(CancelToken::new).clone();
        // Pairs with the fence in `cancel_token`: either the canceller sees
        // the token we just stored, or we see its bit here.
        fence(Ordering::SeqCst);
        if self.state.load(Ordering::Relaxed) & CANCEL_REQUESTED != 0 {
            token.cancel_at(CancelKind::TaskCancelled, None, self.cancel_site());
        }
        token
    }

    /// Records where the task's cancel is being asked for; called before
    /// `CANCEL_REQUESTED` is set (the first caller wins).
    pub(crate) fn note_cancel_site(&self, at: &'static Location<'static>) {
        let _ = self.cancelled_at.set(at);
    }

    /// Where the cancel was asked for; cancelkit's own line if nobody said
    /// (the runtime dropped the task).
    #[track_caller]
    fn cancel_site(&self) -> &'static Location<'static> {
        self.cancelled_at.get().unwrap_or_else(Location::caller)
    }

    /// The task was asked to stop: cancel its token, if it has one (kind
    /// [`CancelKind::TaskCancelled`], at the site the canceller noted).
    /// Called after `CANCEL_REQUESTED` is set.
    pub(crate) fn cancel_token(&self) {
        fence(Ordering::SeqCst);
        if let Some(token) = self.token.get() {
            token.cancel_at(CancelKind::TaskCancelled, None, self.cancel_site());
        }
    }

    /// Why the scope is cancelled, if it is: its token's reason, or — no
    /// token made yet — the task's own cancel bit.
    fn cancelled(&self) -> Option<Cancelled> {
        match self.token.get() {
            Some(token) if token.is_cancelled() => token.reason(),
            _ if self.state.load(Ordering::Acquire) & CANCEL_REQUESTED != 0 => Some(
                Cancelled::with(CancelKind::TaskCancelled, None, self.cancel_site()),
            ),
            _ => None,
        }
    }

    fn host(&self) -> &Host {
        self.rare().host.get_or_init(Host::default)
    }

    /// Whether this task ever hosted anything (shield, cleanup).
    #[inline]
    pub(crate) fn has_host(&self) -> bool {
        self.host_if_any().is_some()
    }

    /// Whether any section is hosted (armed, running, or waiting for the
    /// harness to pick it up).
    #[inline]
    pub(crate) fn is_hosting(&self) -> bool {
        self.host_if_any()
            .is_some_and(|h| !h.lock().items.is_empty())
    }

    /// The task's own future has ended — `cancelled` (dropped by a cancel)
    /// or not (it returned or panicked): the task's cleanups that have not
    /// started either start now, if the task was cancelled and their token
    /// is, or are dropped (never run on completion, [S3](crate#S3)).
    pub(crate) fn settle(&self, cancelled: bool) {
        let Some(host) = self.host_if_any() else {
            return;
        };
        let dropped = {
            let mut state = host.lock();
            state.settled = Some(cancelled);
            let items = std::mem::take(&mut state.items);
            let (keep, dropped): (Vec<_>, Vec<_>) = items
                .into_iter()
                .partition(|item| item.wanted_after_settling(cancelled));
            state.items = keep;
            dropped
        };
        // Outside the lock: user destructors may register more sections.
        drop_quietly(dropped);
    }

    /// Polls every hosted section; `Ready` once none is left.
    pub(crate) fn poll_hosted(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(host) = self.host_if_any() else {
            return Poll::Ready(());
        };
        let mut kept = Vec::new();
        loop {
            let batch = std::mem::take(&mut host.lock().items);
            if batch.is_empty() {
                break;
            }
            // A section that ends drops the cleanups registered in it:
            // those already polled in this round are polled again.
            let mut progressed = false;
            for mut item in batch {
                match catch_unwind(AssertUnwindSafe(|| item.poll(cx))) {
                    Ok(Poll::Pending) => kept.push(item),
                    Ok(Poll::Ready(None)) => {
                        progressed = true;
                        drop_quietly(item);
                    }
                    Ok(Poll::Ready(Some(overrun))) => {
                        progressed = true;
                        drop_quietly(item);
                        let mut state = host.lock();
                        if !sabotaged(2) && state.overruns.len() < OVERRUNS_KEPT {
                            state.overruns.push(overrun);
                        }
                    }
                    Err(payload) => {
                        progressed = true;
                        drop_quietly(item);
                        let mut state = host.lock();
                        if state.panic.is_none() {
                            state.panic = Some(payload);
                        } else {
                            drop(state);
                            drop_quietly(payload);
                        }
                    }
                }
            }
            if progressed && !kept.is_empty() {
                host.lock().items.append(&mut kept);
            }
        }
        if kept.is_empty() {
            return Poll::Ready(());
        }
        host.lock().items.extend(kept);
        Poll::Pending
    }

    /// Every hosted section ended: hands the overruns and the hosted panic
    /// (as text) to whoever deferred its report to now (a group task), and
    /// returns the first hosted section's panic, which becomes the task's.
    pub(crate) fn finish(&self) -> Option<Box<dyn Any + Send + 'static>> {
        let host = self.host_if_any()?;
        let (deferred, overruns, panic) = {
            let mut state = host.lock();
            (
                std::mem::take(&mut state.deferred),
                std::mem::take(&mut state.overruns),
                state.panic.take(),
            )
        };
        let text = panic.as_deref().map(panic_text);
        for report in deferred {
            let text = text.clone();
            drop_quietly(catch_unwind(AssertUnwindSafe(|| report(&overruns, text))));
        }
        panic
    }

    /// What hosted sections left to report so far — overruns (taken) and
    /// the text of a hosted panic (left for the task's handle) — for a
    /// report made before the task finishes.
    fn recorded(&self) -> (Vec<Overrun>, Option<String>) {
        let Some(host) = self.host_if_any() else {
            return (Vec::new(), None);
        };
        let mut state = host.lock();
        let text = state.panic.as_deref().map(panic_text);
        (std::mem::take(&mut state.overruns), text)
    }

    /// The runtime dropped the task: drop every hosted section (each still
    /// running counts as an overrun), then finish.
    pub(crate) fn close(&self) -> Option<Box<dyn Any + Send + 'static>> {
        let host = self.host_if_any()?;
        let items = {
            let mut state = host.lock();
            state.closed = true;
            std::mem::take(&mut state.items)
        };
        let overruns: Vec<Overrun> = items
            .iter()
            .filter_map(Hosted::overrun_if_dropped)
            .collect();
        drop_quietly(items);
        host.lock().overruns.extend(overruns);
        self.finish()
    }
}

// ===== hosting =====

#[derive(Default)]
struct Host {
    state: Mutex<HostState>,
}

impl Host {
    fn lock(&self) -> MutexGuard<'_, HostState> {
        crate::loom::lock(&self.state)
    }

    /// Adds `item`, unless the task is gone (then it is dropped here).
    fn register(&self, item: Hosted) {
        let refused = {
            let mut state = self.lock();
            let unwanted = state
                .settled
                .is_some_and(|cancelled| !item.wanted_after_settling(cancelled));
            if state.closed || unwanted {
                Some(item)
            } else {
                state.items.push(item);
                None
            }
        };
        drop_quietly(refused);
    }
}

/// Starts an armed cleanup with its cause.
type StartCleanup = Box<dyn FnOnce(Cancelled) -> BoxFuture<Option<Overrun>> + Send>;

/// A report waiting for the hosted sections: gets their overruns and the
/// text of a hosted panic.
type Deferred = Box<dyn FnOnce(&[Overrun], Option<String>) + Send + 'static>;

/// How many overruns a task keeps for its report.
const OVERRUNS_KEPT: usize = 64;

#[derive(Default)]
struct HostState {
    /// Sections not yet finished, and those registered since the harness
    /// last looked.
    items: Vec<Hosted>,
    deferred: Vec<Deferred>,
    overruns: Vec<Overrun>,
    panic: Option<Box<dyn Any + Send + 'static>>,
    /// The task's future has ended (`Some(cancelled)`): cleanups of the
    /// task registered from now on are settled at once.
    settled: Option<bool>,
    /// The runtime dropped the task: nothing more is hosted.
    closed: bool,
}

/// A section the task hosts. Its poll gives `Some(overrun)` when it was cut
/// short by its grace, `None` when it ended on its own (or never needed to
/// run).
enum Hosted {
    /// A cleanup waiting for its token.
    Armed {
        /// Boxed: a waiting `Watch` is pinned, and hosted sections move.
        watch: Pin<Box<Watch>>,
        start: Option<StartCleanup>,
        location: &'static Location<'static>,
        /// Registered inside a hosted section: it belongs to that section,
        /// whose end (this turning false) drops it, not to the task.
        section_alive: Option<Arc<AtomicBool>>,
        /// Set by [`Cleanup::disarm`].
        disarmed: Arc<AtomicBool>,
    },
    Running {
        fut: BoxFuture<Option<Overrun>>,
        kind: SectionKind,
        location: &'static Location<'static>,
    },
}

impl Hosted {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Overrun>> {
        if let Hosted::Armed {
            watch,
            start,
            location,
            section_alive,
            disarmed,
        } = self
        {
            if disarmed.load(std::sync::atomic::Ordering::Acquire) {
                return Poll::Ready(None);
            }
            let Poll::Ready(cause) = watch.as_mut().poll(cx) else {
                // Not triggered; dropped if the section it belongs to ended
                // (one whose grace ran out has cancelled its token first:
                // its cleanups start).
                let section_over = section_alive
                    .as_ref()
                    .is_some_and(|alive| !alive.load(std::sync::atomic::Ordering::Acquire));
                return if section_over {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                };
            };
            let Some(cause) = cause else {
                // The token detached uncancelled: it never will be.
                return Poll::Ready(None);
            };
            let start = start.take().expect("an armed cleanup starts once");
            let location = *location;
            *self = Hosted::Running {
                fut: start(cause),
                kind: SectionKind::Cleanup,
                location,
            };
        }
        match self {
            Hosted::Running { fut, .. } => fut.as_mut().poll(cx),
            Hosted::Armed { .. } => unreachable!("started above"),
        }
    }

    /// Whether it is still wanted once the task's future has ended
    /// (`cancelled`, or not): a running section is; an armed cleanup of a
    /// hosted section is while that section lives; an armed cleanup of the
    /// task is only if the task was cancelled and so is its token (it then
    /// starts at its next poll). Runs no user code.
    fn wanted_after_settling(&self, cancelled: bool) -> bool {
        match self {
            Hosted::Armed { .. } if sabotaged(3) => {
                // Broken: the cleanup is kept although nothing was cancelled.
                true
            }
            Hosted::Armed {
                section_alive: Some(alive),
                watch,
                ..
            } => alive.load(std::sync::atomic::Ordering::Acquire) || watch.reason().is_some(),
            Hosted::Armed { watch, .. } => cancelled && watch.reason().is_some(),
            Hosted::Running { .. } => true,
        }
    }

    fn overrun_if_dropped(&self) -> Option<Overrun> {
        match self {
            Hosted::Armed { .. } => None,
            Hosted::Running { kind, location, .. } => Some(Overrun {
                kind: *kind,
                location,
            }),
        }
    }
}

/// Whether the token of the task being polled on this thread is cancelled
/// (`false` outside a task, or if its token was never made).
pub(crate) fn current_task_cancelled() -> bool {
    with_task(|task| task.token.get().is_some_and(CancelToken::is_cancelled)).unwrap_or(false)
}

/// Whether the task being polled on this thread ever hosted a section
/// (most never do: then it has nothing hosted to wait for or report).
pub(crate) fn current_task_ever_hosted() -> bool {
    with_task(|task| task.host_if_any().is_some()).unwrap_or(false)
}

/// Whether the task being polled on this thread hosts a section right now.
pub(crate) fn current_task_is_hosting() -> bool {
    with_task(TaskScope::is_hosting).unwrap_or(false)
}

/// Defers `report` until every section the current task hosts has ended,
/// and hands it their overruns; gives it back if nothing is hosted (or no
/// task is current) so the caller reports now.
pub(crate) fn defer_while_hosting<D>(report: D) -> Option<D>
where
    D: FnOnce(&[Overrun], Option<String>) + Send + 'static,
{
    let mut report = Some(report);
    with_task(|task| {
        let Some(host) = task.host_if_any() else {
            return;
        };
        let mut state = host.lock();
        if !state.items.is_empty() && !state.closed {
            let report = report.take().expect("taken once");
            state.deferred.push(Box::new(report));
        }
    });
    report
}

/// What the current task's hosted sections left to report so far (see
/// `TaskScope::recorded`); nothing outside a task.
pub(crate) fn recorded_in_current_task() -> (Vec<Overrun>, Option<String>) {
    with_task(TaskScope::recorded).unwrap_or_default()
}

/// Hosts `item` in the current task; `false` (and `item` dropped) if no
/// task is current.
fn host_in_current_task(item: Hosted) -> Result<(), Hosted> {
    let mut item = Some(item);
    with_task(|task| task.host().register(item.take().expect("taken once")));
    match item {
        None => Ok(()),
        Some(item) => Err(item),
    }
}

// ===== reports =====

/// What kind of section overran its grace.
///
/// ```
/// use cancelkit::scope::SectionKind;
/// assert_ne!(SectionKind::Shield, SectionKind::Cleanup);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SectionKind {
    /// A [`shield`].
    Shield,
    /// A [`cleanup`] (or [`cleanup_on`]).
    Cleanup,
}

/// A hosted section that was still running when its grace ended (or when
/// its runtime shut down), and was dropped unfinished ([S2](crate#S2)).
///
/// A group's [`ShutdownReport`](crate::group::ShutdownReport) lists them,
/// with the task each belonged to.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{CancelToken, Runtime, TaskGroup, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let in_shield = CancelToken::new();
/// let report = rt.block_on(async {
///     group
///         .spawn_named("stubborn", {
///             let (rt, in_shield) = (rt.clone(), in_shield.clone());
///             move |_| async move {
///                 let never = async move {
///                     in_shield.cancel();
///                     std::future::pending::<()>().await
///                 };
///                 scope::shield(&rt, Duration::from_millis(5), never).await
///             }
///         })
///         .detach();
///     in_shield.cancelled().await;
///     group.shutdown(Duration::ZERO).await
/// });
/// let overrun = &report.overruns[0];
/// assert_eq!(overrun.task.name(), "stubborn");
/// assert_eq!(overrun.section.kind, scope::SectionKind::Shield);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overrun {
    /// A shield or a cleanup.
    pub kind: SectionKind,
    /// Where it was opened (`#[track_caller]`).
    pub location: &'static Location<'static>,
}

impl fmt::Display for Overrun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            SectionKind::Shield => "shield",
            SectionKind::Cleanup => "cleanup",
        };
        write!(f, "{what} at {} overran its grace", self.location)
    }
}

/// [`cleanup`] or [`cleanup_on`] was called outside a cancelkit task: there
/// is no task to host the cleanup, so it was not registered (and is given
/// back).
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::scope;
///
/// let rt = cancelkit::rt::Smol::new().unwrap();
/// // `main` is no cancelkit task.
/// let err = scope::cleanup(&rt, Duration::from_secs(1), |_| async {}).unwrap_err();
/// assert!(err.to_string().contains("no cancelkit task"));
/// # }
/// ```
pub struct Unhosted<F>(pub F);

impl<F> fmt::Debug for Unhosted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unhosted(..)")
    }
}

impl<F> fmt::Display for Unhosted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no cancelkit task to host the cleanup: call it from a task spawned \
             with `SpawnerExt::spawn` or a `TaskGroup`",
        )
    }
}

impl<F> std::error::Error for Unhosted<F> {}

// ===== the ambient scope =====

/// The token of the innermost scope the calling code runs in ([S4](crate#S4)).
///
/// - Inside a task spawned through cancelkit: the task's token, cancelled
///   (kind [`CancelKind::TaskCancelled`]) when the task is — its handle
///   dropped, aborted or cancelled, or its runtime shut down. In a
///   [`TaskGroup`](crate::TaskGroup) task it is the token the group handed
///   the task, so the group's shutdown cancels it too. Created on first
///   use: tasks that never ask pay nothing.
/// - Inside [`move_on_after`] / [`fail_after`]: that nested scope's token (a
///   child of the enclosing one, with the earlier deadline).
/// - Inside a [`shield`] or a [`cleanup`]: the section's own token, which
///   the task's cancellation does not reach; it is cancelled (kind
///   [`CancelKind::DeadlineExceeded`]) when the section's grace ends.
/// - Anywhere else: a fresh token that is never cancelled.
///
/// Hand it (or a [`child`](CancelToken::child)) to code that takes a token,
/// such as blocking work or another runtime's API.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{Runtime, SpawnerExt, rt::Smol, scope, token::CancelKind};
///
/// let rt = Smol::new().unwrap();
/// let (tx, rx) = std::sync::mpsc::channel();
/// let task = rt.spawn(async move {
///     tx.send(scope::current()).unwrap();
///     std::future::pending::<()>().await
/// });
/// let token = rx.recv().unwrap();
/// assert!(!token.is_cancelled());
/// rt.block_on(task.cancel());
/// assert_eq!(token.reason().unwrap().kind(), CancelKind::TaskCancelled);
///
/// // Outside a task: never cancelled.
/// assert!(!scope::current().is_cancelled());
/// # }
/// ```
pub fn current() -> CancelToken {
    with_innermost(|scope| {
        if sabotaged(4) && scope.is_task() {
            return CancelToken::new();
        }
        scope.token()
    })
    .unwrap_or_default()
}

/// Why the current scope is cancelled, if it is.
fn current_cancelled() -> Option<Cancelled> {
    with_innermost(TaskScope::cancelled).flatten()
}

/// A cancellation point for code that was handed no token ([S4](crate#S4)).
///
/// ```text
/// async fn checkpoint() -> Result<(), Cancelled>;
/// ```
///
/// Yields to the runtime once, so other tasks run, then gives
/// `Err(cause)` if the current scope (see [`current`]) is cancelled and
/// `Ok(())` if not. Use it in long computations and loops with no other
/// `.await`: a cancelled task stops at its next checkpoint, and a task
/// whose cancellation is cooperative (a [`TaskGroup`](crate::TaskGroup)'s
/// shutdown, an expired [`move_on_after`]) sees `Err` there.
///
/// Outside a cancelkit task it only yields, and always gives `Ok(())`.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{Runtime, TaskGroup, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let group = TaskGroup::new(&rt);
/// let task = group.spawn(|_| async {
///     let mut steps = 0u64;
///     while scope::checkpoint().await.is_ok() {
///         steps += 1;
///     }
///     steps
/// });
/// group.token().cancel();
/// let _steps = rt.block_on(task).unwrap();
/// # }
/// ```
pub fn checkpoint() -> Checkpoint {
    Checkpoint { yielded: false }
}

/// The future returned by [`checkpoint`].
///
/// ```
/// // Outside a cancelkit task the scope is never cancelled.
/// let point: cancelkit::scope::Checkpoint = cancelkit::scope::checkpoint();
/// assert!(futures_lite::future::block_on(point).is_ok());
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Checkpoint {
    yielded: bool,
}

impl Future for Checkpoint {
    type Output = Result<(), Cancelled>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match current_cancelled() {
            Some(cause) => Poll::Ready(Err(cause)),
            None => Poll::Ready(Ok(())),
        }
    }
}

// ===== nested scopes with a deadline =====

pin_project_lite::pin_project! {
    /// The future returned by [`move_on_after`].
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, rt::Smol, scope::{self, MoveOnAfter}};
    ///
    /// let rt = Smol::new().unwrap();
    /// let nested: MoveOnAfter<_, _> = scope::move_on_after(&rt, Duration::ZERO, async { 3 });
    /// assert_eq!(rt.block_on(nested), Some(3));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct MoveOnAfter<T: Timer, F> {
        #[pin]
        fut: Option<F>,
        #[pin]
        sleep: Option<T::Sleep>,
        timer: T,
        limit: Duration,
        // Set at the first poll.
        scope: Option<Scope>,
        location: &'static Location<'static>,
    }
}

/// A nested scope, opened at the first poll.
struct Scope {
    scope: TaskScope,
    /// Its own expiry; `None` if the limit overflowed (never).
    expires: Option<Instant>,
}

impl<T: Timer, F> fmt::Debug for MoveOnAfter<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MoveOnAfter")
            .field("limit", &self.limit)
            .field("running", &self.fut.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs `fut` in a nested scope that expires `limit` after the first poll;
/// gives `None` (having dropped `fut`) if it expires first ([S5](crate#S5)).
///
/// ```text
/// async fn move_on_after<F: Future>(timer: &(impl Timer + Clone), limit: Duration, fut: F)
///     -> Option<F::Output>;
/// ```
///
/// Inside `fut`, [`current()`] is the nested scope's token: a child of the
/// enclosing scope's (so the enclosing scope's cancellation reaches inside),
/// whose [`deadline`](CancelToken::deadline) is the earlier of this limit
/// and the enclosing one's. When the limit passes, that token is cancelled
/// (kind [`CancelKind::DeadlineExceeded`]) and `fut` is dropped; the
/// enclosing scope is untouched. Only this scope's own expiry gives `None`:
/// when the enclosing scope is cancelled, `fut` sees it (through
/// [`checkpoint`] or [`current()`]) and the enclosing scope acts on its own.
///
/// As with [`timeout`](crate::timeout), `fut` is polled before the clock is
/// looked at, so a ready future wins even with `Duration::ZERO`, and
/// `Duration::MAX` never expires. Unlike `timeout`, it reads the clock at
/// its first poll (to give the scope its deadline).
///
/// Outside a cancelkit task the enclosing scope is one that is never
/// cancelled; the nested scope still expires.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let out = rt.block_on(scope::move_on_after(&rt, Duration::from_millis(10), async {
///     assert!(scope::current().deadline().is_some());
///     rt.sleep(Duration::from_secs(3600)).await
/// }));
/// assert_eq!(out, None);
/// # }
/// ```
#[track_caller]
pub fn move_on_after<T, F>(timer: &T, limit: Duration, fut: F) -> MoveOnAfter<T, F>
where
    T: Timer + Clone,
    F: Future,
{
    MoveOnAfter {
        fut: Some(fut),
        sleep: None,
        timer: timer.clone(),
        limit,
        scope: None,
        location: Location::caller(),
    }
}

impl<T: Timer, F: Future> Future for MoveOnAfter<T, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let scope = this.scope.get_or_insert_with(|| {
            let token = current().child();
            let now = this.timer.now();
            // Overflow means "never", as for `timeout`.
            let expires = now.checked_add(*this.limit);
            if let Some(at) = expires {
                token.announce_deadline(at);
            }
            Scope {
                scope: TaskScope::nested(token),
                expires,
            }
        });
        let fut = this
            .fut
            .as_mut()
            .as_pin_mut()
            .expect("`MoveOnAfter` polled after it returned `Poll::Ready`");
        if let Poll::Ready(out) = scope.scope.enter_section(|| fut.poll(cx)) {
            this.fut.set(None);
            return Poll::Ready(Some(out));
        }
        let Some(expires) = scope.expires else {
            return Poll::Pending;
        };
        if this.sleep.is_none() {
            this.sleep.set(Some(this.timer.sleep_until(expires)));
        }
        let sleep = this.sleep.as_pin_mut().expect("set above");
        if sleep.poll(cx).is_pending() {
            return Poll::Pending;
        }
        scope
            .scope
            .section_token()
            .cancel_at(CancelKind::DeadlineExceeded, None, this.location);
        if sabotaged(5) {
            current().cancel();
        }
        // Dropped in the scope: a shield inside is hosted as usual.
        this.fut.set(None);
        Poll::Ready(None)
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`fail_after`].
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, rt::Smol, scope::{self, FailAfter}};
    ///
    /// let rt = Smol::new().unwrap();
    /// let limited: FailAfter<_, _> =
    ///     scope::fail_after(&rt, Duration::from_millis(1), std::future::pending::<()>());
    /// assert!(rt.block_on(limited).is_err());
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct FailAfter<T: Timer, F> {
        #[pin]
        inner: MoveOnAfter<T, F>,
    }
}

impl<T: Timer, F> fmt::Debug for FailAfter<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailAfter")
            .field("inner", &self.inner)
            .finish()
    }
}

/// [`move_on_after`] that gives `Err(Elapsed)` instead of `None` when the
/// nested scope expires ([S5](crate#S5)).
///
/// ```text
/// async fn fail_after<F: Future>(timer: &(impl Timer + Clone), limit: Duration, fut: F)
///     -> Result<F::Output, Elapsed>;
/// ```
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let out = rt.block_on(scope::fail_after(&rt, Duration::ZERO, async { 7 }));
/// assert_eq!(out, Ok(7)); // ready at once: wins even with a zero limit
/// # }
/// ```
#[track_caller]
pub fn fail_after<T, F>(timer: &T, limit: Duration, fut: F) -> FailAfter<T, F>
where
    T: Timer + Clone,
    F: Future,
{
    FailAfter {
        inner: move_on_after(timer, limit, fut),
    }
}

impl<T: Timer, F: Future> Future for FailAfter<T, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map(|out| out.ok_or(Elapsed::new()))
    }
}

// ===== shields =====

/// The future returned by [`shield`].
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, rt::Smol, scope::{self, Shield}};
///
/// let rt = Smol::new().unwrap();
/// let section: Shield<_, _> = scope::shield(&rt, Duration::from_secs(1), async { 4 });
/// assert_eq!(rt.block_on(section), 4);
/// # }
/// ```
#[must_use = "a shield does nothing unless polled; once polled, dropping it hands it to its task"]
pub struct Shield<T: Timer + Clone + Send + 'static, F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    fut: Option<Pin<Box<F>>>,
    scope: TaskScope,
    timer: T,
    grace: Duration,
    started: bool,
    location: &'static Location<'static>,
}

impl<T, F> fmt::Debug for Shield<T, F>
where
    T: Timer + Clone + Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield")
            .field("grace", &self.grace)
            .field("location", &self.location)
            .field("running", &self.fut.is_some())
            .finish()
    }
}

/// Runs `fut` as a section that finishes even if the task is cancelled
/// meanwhile — within `grace` ([S1](crate#S1), [S2](crate#S2)).
///
/// ```text
/// async fn shield<F: Future + Send + 'static>(timer: &(impl Timer + Clone), grace: Duration, fut: F)
///     -> F::Output;
/// ```
///
/// While the shield is awaited, `fut` runs as part of it, and gives its
/// output. If the shield is dropped after its first poll and before `fut`
/// finished — the task was cancelled (its handle dropped or aborted, its
/// group forced it) or code around the shield dropped it — `fut` is handed
/// to the task and runs on to completion on the task's runtime, for at most
/// `grace` from that moment; past it, `fut` is dropped and the overrun is
/// reported (see the [module docs](self)). Meanwhile the task is not
/// finished: its handle, `cancel().await` and its group's shutdown wait.
///
/// Inside `fut`, [`current()`] is the shield's own token: the task's
/// cancellation does not reach it, and [`checkpoint`] does not fail; it is
/// cancelled when the grace ends. A shield is therefore not a cancellation
/// point, also for [`sim::check_cancel_safety`](crate::sim).
///
/// `fut` is `'static` because it may outlive the code that awaited it. A
/// shield that was never polled never started: dropping it drops `fut`.
/// Outside a cancelkit task there is no task to hand it to: a dropped
/// shield drops `fut`.
///
/// Nested shields work as expected: an inner shield dropped with its outer
/// one (when the outer one's grace ends) is handed to the task with its own
/// grace. A panic inside `fut` is the task's panic, whether the shield was
/// still awaited or already handed over.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{CancelToken, Runtime, SpawnerExt, Timer, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let flushed = CancelToken::new();
/// let in_shield = CancelToken::new();
/// let task = rt.spawn({
///     let (rt, flushed, in_shield) = (rt.clone(), flushed.clone(), in_shield.clone());
///     async move {
///         scope::shield(&rt, Duration::from_secs(1), {
///             let rt = rt.clone();
///             async move {
///                 in_shield.cancel();
///                 rt.sleep(Duration::from_millis(20)).await; // flushing…
///                 flushed.cancel();
///             }
///         })
///         .await;
///     }
/// });
/// rt.block_on(async {
///     in_shield.cancelled().await;
///     task.cancel().await; // returns only after the shield finished
/// });
/// assert!(flushed.is_cancelled());
/// # }
/// ```
#[track_caller]
pub fn shield<T, F>(timer: &T, grace: Duration, fut: F) -> Shield<T, F>
where
    T: Timer + Clone + Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Shield {
        fut: Some(Box::pin(fut)),
        scope: TaskScope::nested(CancelToken::new()),
        timer: timer.clone(),
        grace,
        started: false,
        location: Location::caller(),
    }
}

// Nothing in a shield is pinned in place: its future is boxed.
impl<T, F> Unpin for Shield<T, F>
where
    T: Timer + Clone + Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
}

impl<T, F> Future for Shield<T, F>
where
    T: Timer + Clone + Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self; // Unpin: the future is boxed
        this.started = true;
        let fut = this
            .fut
            .as_mut()
            .expect("`Shield` polled after it returned `Poll::Ready`");
        match catch_unwind(AssertUnwindSafe(|| {
            this.scope.enter_section(|| fut.as_mut().poll(cx))
        })) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                this.fut = None;
                Poll::Ready(out)
            }
            Err(payload) => {
                // Finished, by panicking: nothing to hand over.
                drop_quietly(this.fut.take());
                resume_unwind(payload)
            }
        }
    }
}

impl<T, F> Drop for Shield<T, F>
where
    T: Timer + Clone + Send + 'static,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else { return };
        if !self.started || !in_task() || sabotaged(1) {
            // Never started, or no task to hand it to: dropped with us.
            return;
        }
        let expires = saturating_deadline(self.timer.now(), self.grace);
        let token = self.scope.section_token();
        token.announce_deadline(expires);
        let bounded = Bounded {
            fut: Some(fut),
            sleep: self.timer.sleep_until(expires),
            scope: TaskScope::hosted(token.clone()),
            kind: SectionKind::Shield,
            location: self.location,
        };
        let item = Hosted::Running {
            fut: Box::pin(bounded),
            kind: SectionKind::Shield,
            location: self.location,
        };
        // No task to host it: dropped here, with `fut`.
        let _ = host_in_current_task(item);
    }
}

pin_project_lite::pin_project! {
    /// A hosted section: `fut` in its own scope, dropped when `sleep` ends.
    struct Bounded<F, S> {
        #[pin]
        fut: Option<F>,
        #[pin]
        sleep: S,
        scope: TaskScope,
        kind: SectionKind,
        location: &'static Location<'static>,
    }
}

impl<F: Future, S: Future<Output = ()>> Future for Bounded<F, S> {
    type Output = Option<Overrun>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Overrun>> {
        let mut this = self.project();
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(out) = this.scope.enter_section(|| fut.poll(cx)) {
            this.fut.set(None);
            this.scope.end_hosted();
            drop_quietly(out);
            return Poll::Ready(None);
        }
        if this.sleep.poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.scope
            .section_token()
            .cancel_at(CancelKind::DeadlineExceeded, None, this.location);
        this.fut.set(None);
        this.scope.end_hosted();
        Poll::Ready(Some(Overrun {
            kind: *this.kind,
            location: this.location,
        }))
    }
}

// ===== async cleanup =====

/// Registers async cleanup for the current scope ([S3](crate#S3)): when the
/// scope's token (see [`current`]) is cancelled, `f(cause)` runs, hosted by
/// the task, for at most `grace`.
///
/// The same as [`cleanup_on(&scope::current(), timer, grace, f)`](cleanup_on).
///
/// # Errors
///
/// [`Unhosted`] (giving `f` back) when called outside a cancelkit task.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{CancelToken, Runtime, SpawnerExt, rt::Smol, scope, token::CancelKind};
///
/// let rt = Smol::new().unwrap();
/// let (armed, rolled_back) = (CancelToken::new(), CancelToken::new());
/// let task = rt.spawn({
///     let (rt, armed, rolled_back) = (rt.clone(), armed.clone(), rolled_back.clone());
///     async move {
///         scope::cleanup(&rt, Duration::from_secs(1), move |cause| async move {
///             assert_eq!(cause.kind(), CancelKind::TaskCancelled);
///             rolled_back.cancel(); // e.g. `tx.rollback().await`
///         })
///         .unwrap();
///         armed.cancel();
///         std::future::pending::<()>().await
///     }
/// });
/// rt.block_on(async {
///     armed.cancelled().await;
///     task.cancel().await; // returns after the cleanup ran
/// });
/// assert!(rolled_back.is_cancelled());
/// # }
/// ```
#[track_caller]
pub fn cleanup<T, F, Fut>(timer: &T, grace: Duration, f: F) -> Result<Cleanup, Unhosted<F>>
where
    T: Timer + Clone + Send + 'static,
    F: FnOnce(Cancelled) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if !in_task() {
        return Err(Unhosted(f));
    }
    cleanup_on(&current(), timer, grace, f)
}

/// Registers async cleanup that runs when `token` is cancelled
/// ([S3](crate#S3)), hosted by the current task.
///
/// - It runs **exactly once**, when `token` is cancelled, receiving the
///   cause; at once if `token` already is. It never runs if it has not
///   started when the task's future returns or panics (normal completion),
///   nor when the task's future is dropped by a cancel while `token` is not
///   cancelled, nor if `token` detaches uncancelled, nor once
///   [disarmed](Cleanup::disarm).
/// - It runs hosted, like a dropped [`shield`]: on the task's runtime, after
///   the task's future is gone if need be, for at most `grace` from its
///   start; past it, it is dropped and reported as an [`Overrun`]. The task
///   is not finished until it ended.
/// - Inside it, [`current()`] is its own token, cancelled when `grace` ends,
///   with that deadline.
/// - Cleanup registered from inside a hosted section (a shield handed to
///   the task, a running cleanup) belongs to that section: it can run while
///   the section runs — with [`cleanup`], when the section's grace ends
///   (kind [`CancelKind::DeadlineExceeded`]) — and is dropped unrun when the
///   section ends, even after the task's future is gone.
/// - Registrations accumulate until the task ends: in a loop, [`disarm`](Cleanup::disarm)
///   each one when its work is done.
///
/// # Errors
///
/// [`Unhosted`] (giving `f` back) when called outside a cancelkit task.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{CancelToken, Runtime, SpawnerExt, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let (lease, released) = (CancelToken::new(), CancelToken::new());
/// let task = rt.spawn({
///     let (rt, lease, released) = (rt.clone(), lease.clone(), released.clone());
///     async move {
///         let on_expiry = move |_| async move {
///             released.cancel();
///         };
///         scope::cleanup_on(&lease, &rt, Duration::from_secs(1), on_expiry).unwrap();
///         lease.cancel(); // runs the cleanup at once, beside this task
///         std::future::pending::<()>().await
///     }
/// });
/// rt.block_on(released.cancelled());
/// drop(task);
/// # }
/// ```
#[track_caller]
pub fn cleanup_on<T, F, Fut>(
    token: &CancelToken,
    timer: &T,
    grace: Duration,
    f: F,
) -> Result<Cleanup, Unhosted<F>>
where
    T: Timer + Clone + Send + 'static,
    F: FnOnce(Cancelled) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if !in_task() {
        return Err(Unhosted(f));
    }
    let location = Location::caller();
    let timer = timer.clone();
    let start = move |cause: Cancelled| -> BoxFuture<Option<Overrun>> {
        let expires = saturating_deadline(timer.now(), grace);
        let token = CancelToken::new();
        token.announce_deadline(expires);
        Box::pin(Bounded {
            fut: Some(f(cause)),
            sleep: timer.sleep_until(expires),
            scope: TaskScope::hosted(token),
            kind: SectionKind::Cleanup,
            location,
        })
    };
    // Inside a hosted section, the cleanup is that section's.
    let section_alive = with_innermost(|own| own.alive().cloned()).flatten();
    let disarmed = Arc::new(AtomicBool::new(false));
    let item = Hosted::Armed {
        watch: Box::pin(token.watch()),
        start: Some(Box::new(start)),
        location,
        section_alive,
        disarmed: disarmed.clone(),
    };
    host_in_current_task(item).map_err(|_| unreachable!("checked that a task is current"))?;
    Ok(Cleanup { disarmed })
}

/// A registered [`cleanup`]: [`disarm`](Cleanup::disarm) it once the work
/// it would undo is done (say, committed), so that a cancel no longer runs
/// it. Dropping it leaves the cleanup registered.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, SpawnerExt, rt::Smol, scope};
///
/// let rt = Smol::new().unwrap();
/// let task = rt.spawn({
///     let rt = rt.clone();
///     async move {
///         for _request in 0..1000 {
///             let rollback = scope::cleanup(&rt, Duration::from_secs(1), |_| async {}).unwrap();
///             // ... the transaction's work, then its commit ...
///             rollback.disarm(); // committed: nothing to undo on cancel
///         }
///     }
/// });
/// rt.block_on(task).unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct Cleanup {
    disarmed: Arc<AtomicBool>,
}

impl Cleanup {
    /// Unregisters the cleanup: it will not run, unless it already started.
    /// (It leaves the task's list at the task's next wake-up.)
    ///
    /// See [`Cleanup`] for an example.
    pub fn disarm(self) {
        self.disarmed
            .store(true, std::sync::atomic::Ordering::Release);
    }
}
