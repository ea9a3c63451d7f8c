//! Checkers on top of [`Sim`]: many seeds, and cancellation at every await.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{LAST_PENDING, Sim};
use crate::scope::TaskScope;
use crate::task::CANCEL_REQUESTED;

/// Ends the future's run as its task would: cancelled (its scope's token
/// cancelled, with its cleanups triggered) or not, then runs what it left
/// hosted — shields it dropped unfinished, triggered cleanups — to their end
/// on `sim`.
fn end_run<F>(
    sim: &Sim,
    scope: &TaskScope,
    fut: Pin<Box<F>>,
    cancelled: bool,
) -> Result<(), super::Deadlock> {
    scope.enter(|| {
        if cancelled {
            scope
                .state
                .fetch_or(CANCEL_REQUESTED, std::sync::atomic::Ordering::SeqCst);
            scope.note_cancel_site(Location::caller());
            scope.cancel_token();
        }
        drop(fut);
        scope.settle(cancelled);
    });
    sim.try_block_on(std::future::poll_fn(|cx| {
        scope.enter(|| scope.poll_hosted(cx))
    }))?;
    if let Some(payload) = scope.enter(|| scope.finish()) {
        std::panic::resume_unwind(payload);
    }
    Ok(())
}

// ===== seeds =====

/// A test body failed under [`check_seeds`]: the seed that fails, which
/// replays the failure with [`Sim::with_seed`].
///
/// ```
/// use cancelkit::sim::check_seeds;
///
/// let failure = check_seeds(3..10, |sim| assert_ne!(sim.seed(), 5, "five")).unwrap_err();
/// assert_eq!(failure.seed, 5);
/// assert!(failure.to_string().contains("Sim::with_seed(5)"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SeedFailure {
    /// The first seed (in the order tried) whose run failed.
    pub seed: u64,
    /// The panic message of that run.
    pub message: String,
}

impl fmt::Display for SeedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failed with seed {}: {} (replay with Sim::with_seed({}))",
            self.seed, self.message, self.seed
        )
    }
}

impl std::error::Error for SeedFailure {}

/// Runs `body` on a fresh [`Sim`] for each seed, and reports the first seed
/// whose run panics. A failing seed replays the same failure: run `body`
/// on `Sim::with_seed(failure.seed)`.
///
/// # Errors
///
/// The first [`SeedFailure`].
///
/// # Examples
///
/// A lost update between two tasks, found by trying seeds:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use cancelkit::{Runtime, SpawnerExt, sim::{Sim, check_seeds}};
///
/// fn racy(sim: &Sim) {
///     let counter = Arc::new(AtomicU32::new(0));
///     let tasks: Vec<_> = (0..2)
///         .map(|_| {
///             let c = counter.clone();
///             sim.spawn(async move {
///                 let seen = c.load(Ordering::SeqCst);
///                 futures_lite::future::yield_now().await; // read, suspend, write
///                 c.store(seen + 1, Ordering::SeqCst);
///             })
///         })
///         .collect();
///     sim.block_on(async { for t in tasks { t.await.unwrap(); } });
///     assert_eq!(counter.load(Ordering::SeqCst), 2, "lost update");
/// }
///
/// let failure = check_seeds(0..64, racy).unwrap_err();
/// assert!(failure.message.contains("lost update"));
/// // The seed replays it.
/// let replay = std::panic::catch_unwind(|| racy(&Sim::with_seed(failure.seed)));
/// assert!(replay.is_err());
/// ```
pub fn check_seeds<T>(
    seeds: impl IntoIterator<Item = u64>,
    body: impl Fn(&Sim) -> T,
) -> Result<(), SeedFailure> {
    for seed in seeds {
        let sim = Sim::with_seed(seed);
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| body(&sim))) {
            return Err(SeedFailure {
                seed,
                message: crate::task::panic_text(&*payload),
            });
        }
    }
    Ok(())
}

// ===== marking await points =====

pin_project_lite::pin_project! {
    /// The future returned by [`mark`].
    ///
    /// ```
    /// let marked: cancelkit::sim::Marked<_> = cancelkit::sim::mark(async { 2 });
    /// assert_eq!(futures_lite::future::block_on(marked), 2);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Marked<F> {
        #[pin]
        fut: F,
        location: &'static Location<'static>,
    }
}

/// Marks an await point with its source location: when the checker cancels
/// the future while it is suspended here, it names this line.
///
/// Costs nothing but a thread-local write when `fut` is pending.
///
/// ```
/// use cancelkit::sim::mark;
///
/// # futures_lite::future::block_on(async {
/// let n = mark(async { 1 }).await;
/// assert_eq!(n, 1);
/// # });
/// ```
#[track_caller]
pub fn mark<F: Future>(fut: F) -> Marked<F> {
    Marked {
        fut,
        location: Location::caller(),
    }
}

impl<F: Future> Future for Marked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let out = this.fut.poll(cx);
        if out.is_pending() {
            // The innermost marked await of this poll wins: it sets first.
            LAST_PENDING.with(|l| {
                if l.get().is_none() {
                    l.set(Some(*this.location));
                }
            });
        }
        out
    }
}

// ===== cancel safety =====

/// The future is cancel safe at every point the checker tried.
///
/// ```
/// use cancelkit::{Timer, sim::check_cancel_safety};
/// use std::time::Duration;
///
/// // Sleeping touches no state: safe at its single suspension point.
/// let checked = check_cancel_safety(
///     |_| (),
///     async |sim, _: &mut ()| sim.sleep(Duration::from_secs(1)).await,
///     |_, _: &mut ()| Ok(()),
/// )
/// .unwrap();
/// assert_eq!(checked.points, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checked {
    /// How many suspension points the future has on its uncancelled run
    /// (each was tried).
    pub points: usize,
}

/// The invariant broke after cancelling the future at suspension point
/// `at` (1-based) of `of`.
///
/// ```
/// use cancelkit::{Timer, sim::{check_cancel_safety, mark}};
/// use std::time::Duration;
///
/// // "Done" is only recorded after the sleep: cancelling during it loses it.
/// let violation = check_cancel_safety(
///     |_| false,
///     async |sim, done: &mut bool| {
///         mark(sim.sleep(Duration::from_secs(1))).await;
///         *done = true;
///     },
///     |_, done: &mut bool| if *done { Ok(()) } else { Err("not done".into()) },
/// )
/// .unwrap_err();
/// assert_eq!((violation.at, violation.of), (1, 1));
/// assert!(violation.location.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The suspension point (1 = the first time the future was pending).
    pub at: usize,
    /// How many suspension points the uncancelled run had.
    pub of: usize,
    /// Where the future was suspended, if that await was [`mark`]ed.
    pub location: Option<&'static Location<'static>>,
    /// What the invariant said.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not cancel safe: cancelled at suspension point {} of {}",
            self.at, self.of
        )?;
        if let Some(l) = self.location {
            write!(f, " (the await at {l})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for Violation {}

/// Polls `fut` until it has been pending `stop_after` times (then returns
/// `None`, leaving it suspended there), or until it completes. Records the
/// location of each suspension. `fut` runs as a task would, in `scope`, so
/// that shields and cleanups inside it have a task to host them.
async fn drive<F: Future>(
    scope: &TaskScope,
    fut: Pin<&mut F>,
    stop_after: Option<usize>,
    locations: &mut Vec<Option<&'static Location<'static>>>,
) -> Option<F::Output> {
    let mut fut = fut;
    std::future::poll_fn(|cx| {
        LAST_PENDING.with(|l| l.set(None));
        // As the task harness does: what the future hosts runs beside it.
        let polled = scope.enter(|| {
            let out = fut.as_mut().poll(cx);
            if out.is_pending() && scope.is_hosting() {
                let _ = scope.poll_hosted(cx);
            }
            out
        });
        match polled {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending => {
                locations.push(LAST_PENDING.with(|l| l.take()));
                if stop_after == Some(locations.len()) {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
        }
    })
    .await
}

/// Checks that a future is cancel safe: that dropping it at any point where
/// it suspends leaves `invariant` true.
///
/// 1. Runs the future to completion once, on a fresh [`Sim`] with the state
///    from `setup`, counting the points where it is pending: `n`.
/// 2. For each `k` in `1..=n`: a fresh `Sim` and state, the future run until
///    its `k`-th pending point, dropped there, the simulation
///    [settled](Sim::settle) (its other tasks run, the clock does not
///    move), and `invariant` checked.
///
/// Timers inside the future cost nothing: the clock is virtual. The
/// invariant is also checked after the uncancelled run.
///
/// The future runs as a cancelkit task would, so it understands
/// [cancel scopes](crate::scope): a [`shield`](crate::scope::shield) that
/// the cancellation drops is run on to its end (within its grace) before
/// the invariant is checked — a shielded section is not a cancellation
/// point — and [`cleanup`](crate::scope::cleanup) registered by the future
/// runs when it is cancelled, and is waited for too.
///
/// # Errors
///
/// The first [`Violation`]: which point, and its source location when the
/// await there was wrapped in [`mark`].
///
/// # Panics
///
/// If the future deadlocks on the uncancelled run, or a shield or cleanup
/// it leaves behind panics.
///
/// # Examples
///
/// Reading a two-byte frame from a channel loses the first byte if
/// cancelled between the two reads:
///
/// ```
/// use cancelkit::{SpawnerExt, sim::{check_cancel_safety, mark}};
///
/// struct Link {
///     rx: async_channel::Receiver<u8>,
///     sent: usize,
///     frames: Vec<(u8, u8)>,
/// }
///
/// let violation = check_cancel_safety(
///     |sim| {
///         let (tx, rx) = async_channel::unbounded();
///         sim.spawn(async move {
///             for b in [1, 2] {
///                 tx.send(b).await.unwrap();
///                 futures_lite::future::yield_now().await;
///             }
///         })
///         .detach();
///         Link { rx, sent: 2, frames: Vec::new() }
///     },
///     async |_sim, link: &mut Link| {
///         let a = mark(link.rx.recv()).await.unwrap();
///         let b = mark(link.rx.recv()).await.unwrap(); // cancelled here, `a` is lost
///         link.frames.push((a, b));
///     },
///     |_sim, link: &mut Link| {
///         let left = std::iter::from_fn(|| link.rx.try_recv().ok()).count();
///         let delivered = 2 * link.frames.len();
///         match link.sent - left - delivered {
///             0 => Ok(()),
///             lost => Err(format!("{lost} byte(s) lost")),
///         }
///     },
/// )
/// .unwrap_err();
/// assert_eq!((violation.at, violation.of), (2, 2));
/// assert!(violation.message.contains("lost"));
/// assert!(violation.location.is_some());
/// ```
pub fn check_cancel_safety<S, T, M, I>(
    setup: impl Fn(&Sim) -> S,
    future: M,
    invariant: I,
) -> Result<Checked, Violation>
where
    M: AsyncFn(&Sim, &mut S) -> T,
    I: Fn(&Sim, &mut S) -> Result<(), String>,
{
    // 1. The uncancelled run.
    let sim = Sim::new();
    let mut state = setup(&sim);
    let mut locations = Vec::new();
    {
        let scope = TaskScope::new(None);
        let mut fut = Box::pin(future(&sim, &mut state));
        let out = sim
            .try_block_on(drive(&scope, fut.as_mut(), None, &mut locations))
            .unwrap_or_else(|deadlock| panic!("the uncancelled run deadlocked: {deadlock}"));
        drop(out);
        end_run(&sim, &scope, fut, false).unwrap_or_else(|deadlock| {
            panic!("what the uncancelled run left hosted deadlocked: {deadlock}")
        });
    }
    sim.settle();
    let points = locations.len();
    if let Err(message) = invariant(&sim, &mut state) {
        return Err(Violation {
            at: 0,
            of: points,
            location: None,
            message: format!("even without cancellation: {message}"),
        });
    }

    // 2. Cancelled at each point in turn.
    for k in 1..=points {
        let sim = Sim::new();
        let mut state = setup(&sim);
        let mut seen = Vec::new();
        {
            let scope = TaskScope::new(None);
            let mut fut = Box::pin(future(&sim, &mut state));
            match sim.try_block_on(drive(&scope, fut.as_mut(), Some(k), &mut seen)) {
                // A run may differ from the first (it should not, with the
                // same seed); if it finished early there is nothing to cancel.
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(deadlock) => {
                    return Err(Violation {
                        at: k,
                        of: points,
                        location: seen.last().copied().flatten(),
                        message: format!("deadlocked before suspension point {k}: {deadlock}"),
                    });
                }
            }
            // Dropping `fut` here is the cancellation under test.
            if let Err(deadlock) = end_run(&sim, &scope, fut, true) {
                return Err(Violation {
                    at: k,
                    of: points,
                    location: seen.last().copied().flatten(),
                    message: format!("a shield or cleanup it left deadlocked: {deadlock}"),
                });
            }
        }
        sim.settle();
        if let Err(message) = invariant(&sim, &mut state) {
            return Err(Violation {
                at: k,
                of: points,
                location: seen.last().copied().flatten(),
                message,
            });
        }
    }
    Ok(Checked { points })
}
