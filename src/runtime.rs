//! The runtime traits: [`Spawner`], [`Timer`] and [`Runtime`], the
//! extension trait every spawner gets ([`SpawnerExt`]), the bound libraries
//! take ([`RuntimeHandle`]) and its object form ([`SharedRuntime`]).
//!
//! These are the only things cancelkit asks of an executor. They are
//! deliberately small — an adapter for a new runtime is one short file (see
//! `adapters/` in the repository, or the conformance suite's docs for a
//! complete third-party example) — and everything else in the crate
//! ([`Task`], [`timeout`](crate::timeout), [`CancelToken`](crate::CancelToken))
//! is written once on top of them, so it behaves the same on every runtime.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::task::Task;

/// A boxed, `Send`, `'static` future with no output: what the object-safe
/// [`DynSpawner`] spawns and [`DynTimer`] sleeps with.
///
/// ```
/// let fut: cancelkit::rt::BoxedFuture = Box::pin(async {});
/// futures_lite::future::block_on(fut);
/// ```
pub type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs futures in the background.
///
/// # Contract
///
/// [`spawn_detached`](Spawner::spawn_detached) must arrange for the future to
/// be polled to completion, re-polling it whenever its waker is woken (from
/// any thread), without the caller waiting. If the runtime shuts down (or
/// refuses the future) before the future completes, it must **drop** the
/// future rather than leak it: cancelkit reports such tasks as
/// [`JoinError::Cancelled`](crate::JoinError::Cancelled), and a leaked future
/// would leave its [`Task`] waiting forever.
///
/// That is all: it is the trait's only method. The handle semantics users
/// see — drop-to-cancel, `detach`, panics caught into
/// [`JoinError`](crate::JoinError) — are provided by [`SpawnerExt::spawn`],
/// implemented once for every spawner, which no adapter can override.
///
/// # Examples
///
/// A complete (if naive) spawner: one OS thread per task.
///
/// ```
/// use std::future::Future;
/// use cancelkit::{Spawner, SpawnerExt};
///
/// #[derive(Clone)]
/// struct ThreadPerTask;
///
/// impl Spawner for ThreadPerTask {
///     fn spawn_detached<F>(&self, fut: F)
///     where
///         F: Future<Output = ()> + Send + 'static,
///     {
///         std::thread::spawn(move || futures_lite::future::block_on(fut));
///     }
/// }
///
/// let task = ThreadPerTask.spawn(async { 1 + 1 });
/// assert_eq!(futures_lite::future::block_on(task).unwrap(), 2);
/// ```
pub trait Spawner {
    /// Runs `fut` in the background, detached: nobody waits for it.
    ///
    /// See the trait-level contract: poll on wake, drop on shutdown.
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static;
}

/// What every [`Spawner`] can do, written once: spawn a future and get its
/// [`Task`] handle.
///
/// Implemented for every `Spawner` by a blanket implementation, so the
/// handle semantics are the same on every runtime and no adapter can
/// override them.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let task = rt.spawn(async { 40 + 2 });
/// assert_eq!(rt.block_on(task).unwrap(), 42);
/// # }
/// ```
pub trait SpawnerExt: Spawner {
    /// Spawns `fut` and returns a [`Task`] handle to it.
    ///
    /// The handle cancels the task when dropped; see [`Task`] for the whole
    /// contract ([D1](crate#D1)–[D6](crate#D6)).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
    /// # }
    /// ```
    fn spawn<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, harness) = crate::task::new(fut);
        self.spawn_detached(harness);
        task
    }
}

impl<S: Spawner + ?Sized> SpawnerExt for S {}

/// Reads a clock and sleeps on it.
///
/// # Contract
///
/// - [`now`](Timer::now) is this timer's clock. cancelkit's core never calls
///   `Instant::now()`; it reads time only through this method, so a runtime
///   with virtual time stays consistent.
/// - The future returned by [`sleep_until`](Timer::sleep_until) completes at
///   or after `deadline` **as measured by `now()`**: never early, possibly
///   late. It accepts any `Instant`, however far away, without panicking.
///   Dropping it cancels the sleep.
/// - [`sleep`](Timer::sleep) treats a duration that overflows `Instant`
///   (such as `Duration::MAX`) as "never": it sleeps until
///   [`FAR_FUTURE`](crate::time::FAR_FUTURE) from now (thirty years, tokio's
///   horizon too), never less.
/// - A deadline `FAR_FUTURE` or more ahead of `now()` means "never". A
///   real clock never gets there; a virtual clock, which jumps to the next
///   timer when nothing else can run, must not jump to it (cancelkit's
///   `sim` reports a deadlock instead).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let start = rt.now();
/// rt.block_on(rt.sleep(Duration::from_millis(5)));
/// assert!(rt.now() >= start + Duration::from_millis(5));
/// # }
/// ```
pub trait Timer {
    /// The future returned by [`sleep_until`](Timer::sleep_until).
    type Sleep: Future<Output = ()> + Send + 'static;

    /// The current time on this timer's clock.
    fn now(&self) -> Instant;

    /// A future that completes once `now() >= deadline`.
    ///
    /// # Precision
    ///
    /// Never early by this timer's clock; late by however long the runtime
    /// takes to notice (typically up to a millisecond).
    #[doc(alias = "sleep_at")]
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// A future that completes after `duration` has passed on this clock.
    ///
    /// A duration too large to add to `now()` (such as `Duration::MAX`)
    /// sleeps until [`FAR_FUTURE`](crate::time::FAR_FUTURE) from now, which means
    /// "never", instead of panicking on overflow.
    #[doc(alias = "delay")]
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        let now = self.now();
        self.sleep_until(saturating_deadline(now, duration))
    }
}

/// How far ahead a deadline means "never": thirty years, the horizon tokio
/// uses too. [`Timer::sleep`] with a duration that overflows `Instant`
/// sleeps until `now + FAR_FUTURE`; a [`Timer`] with a virtual clock treats
/// any deadline this far ahead as never reached (see the trait's contract).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(cancelkit::time::FAR_FUTURE, Duration::from_secs(86_400 * 365 * 30));
/// ```
pub const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + duration`, or — if that overflows — the latest of
/// `now + FAR_FUTURE` and the instants below it that `Instant` can hold.
/// Never earlier than `now + duration` could have been, short of the end
/// of `Instant`'s range; never `now` itself unless `now` is that end.
pub(crate) fn saturating_deadline(now: Instant, duration: Duration) -> Instant {
    if let Some(at) = now.checked_add(duration) {
        return at;
    }
    // Overflow: as far as `Instant` goes, up to the "never" horizon.
    let mut step = FAR_FUTURE;
    let mut at = now;
    while !step.is_zero() {
        if let Some(later) = at.checked_add(step) {
            at = later;
            if at.duration_since(now) >= FAR_FUTURE {
                break;
            }
        } else {
            step /= 2;
        }
    }
    at
}

/// A complete runtime: a [`Spawner`] and a [`Timer`] that can also block the
/// current thread on a future.
///
/// This is what the conformance suite and the examples need. Libraries that
/// only spawn, or only sleep, should ask for the narrower trait.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use cancelkit::{Runtime, SpawnerExt, rt::Tokio};
///
/// fn answer<R: Runtime>(rt: &R) -> u32 {
///     rt.block_on(rt.spawn(async { 42 })).unwrap()
/// }
///
/// assert_eq!(answer(&Tokio::current_thread().unwrap()), 42);
/// # }
/// ```
pub trait Runtime: Spawner + Timer {
    /// Runs `fut` to completion on the current thread, driving the runtime
    /// while it waits, and returns its output.
    ///
    /// # Panics
    ///
    /// Adapters may panic if called from inside an asynchronous context of
    /// the same runtime (tokio does: "Cannot start a runtime from within a
    /// runtime"). Call it from synchronous code only.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;
}

// ===== the library bound and its object form =====

/// A runtime a library can use: it spawns ([`Spawner`], hence
/// [`SpawnerExt::spawn`]), sleeps and reads the clock ([`Timer`]), and is a
/// cheap, thread-safe, cloneable handle. Everything in cancelkit that runs
/// in the background — [`TaskGroup`](crate::TaskGroup), deadlines,
/// [`OsSignal`](crate::signal::OsSignal) — asks for exactly this.
///
/// Implemented for every type that has those traits (every adapter in
/// [`rt`](crate::rt), the sim, [`SharedRuntime`]); never implement it
/// yourself. It does not include [`Runtime::block_on`]: a library should
/// not block its caller's threads.
///
/// # Examples
///
/// A runtime-neutral library function: retry with a growing pause, until
/// it succeeds, the caller cancels, or the attempts run out.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{CancelToken, RuntimeHandle};
///
/// # #[allow(dead_code)] // used below only with the `sim` feature
/// async fn retry<R, T, E, F, Fut>(rt: &R, stop: &CancelToken, attempts: u32, mut f: F) -> Option<Result<T, E>>
/// where
///     R: RuntimeHandle,
///     F: FnMut() -> Fut,
///     Fut: std::future::Future<Output = Result<T, E>>,
/// {
///     let mut pause = Duration::from_millis(1);
///     let mut last = None;
///     for _ in 0..attempts {
///         match stop.run_until_cancelled(f()).await {
///             Err(_cancelled) => return None,
///             Ok(Ok(v)) => return Some(Ok(v)),
///             Ok(Err(e)) => last = Some(Err(e)),
///         }
///         if stop.run_until_cancelled(rt.sleep(pause)).await.is_err() {
///             return None;
///         }
///         pause *= 2;
///     }
///     last
/// }
///
/// # #[cfg(feature = "sim")] {
/// use cancelkit::{Runtime, sim::Sim};
/// let sim = Sim::new();
/// let mut calls = 0;
/// let out = sim.block_on(retry(&sim, &CancelToken::new(), 5, || {
///     calls += 1;
///     let n = calls;
///     async move { if n < 3 { Err("busy") } else { Ok(n) } }
/// }));
/// assert_eq!(out, Some(Ok(3)));
/// # }
/// ```
pub trait RuntimeHandle: Spawner + Timer + Clone + Send + Sync + 'static {}

impl<R: Spawner + Timer + Clone + Send + Sync + 'static> RuntimeHandle for R {}

/// The object-safe twin of [`RuntimeHandle`], used through [`SharedRuntime`].
trait DynRuntimeHandle: DynSpawner + DynTimer + Send + Sync {}

impl<R: RuntimeHandle> DynRuntimeHandle for R {}

/// Any [`RuntimeHandle`], behind one type: for libraries that want to hold
/// "some runtime" without a type parameter.
///
/// It is itself a `RuntimeHandle`, so it drives everything a generic runtime
/// does — [`TaskGroup`](crate::TaskGroup), deadlines, timeouts — at the cost
/// of one allocation per spawn and per sleep. Cloning it clones an `Arc`.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, SharedRuntime, TaskGroup, rt::Smol};
///
/// struct Server {
///     rt: SharedRuntime, // no type parameter
/// }
///
/// let rt = Smol::new().unwrap();
/// let server = Server { rt: SharedRuntime::new(rt.clone()) };
/// let group = TaskGroup::new(&server.rt);
/// group.spawn(|stop| async move { stop.cancelled().await }).detach();
/// let report = rt.block_on(group.shutdown(Duration::from_secs(1)));
/// assert_eq!(report.finished, 1);
/// # }
/// ```
#[derive(Clone)]
pub struct SharedRuntime {
    inner: Arc<dyn DynRuntimeHandle>,
}

impl SharedRuntime {
    /// Wraps `rt`.
    ///
    /// ```
    /// # #[cfg(feature = "sim")] {
    /// let shared = cancelkit::SharedRuntime::new(cancelkit::sim::Sim::new());
    /// # let _ = shared;
    /// # }
    /// ```
    pub fn new<R: RuntimeHandle>(rt: R) -> Self {
        SharedRuntime {
            inner: Arc::new(rt),
        }
    }
}

impl fmt::Debug for SharedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedRuntime")
    }
}

impl Spawner for SharedRuntime {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.spawn_boxed(Box::pin(fut));
    }
}

impl Timer for SharedRuntime {
    type Sleep = BoxedFuture;

    fn now(&self) -> Instant {
        self.inner.now_dyn()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxedFuture {
        self.inner.sleep_until_boxed(deadline)
    }
}

// ===== object-safe forms =====

/// The object-safe form of [`Spawner`], for `Arc<dyn DynSpawner>`.
///
/// Every [`Spawner`] implements it. `Arc<dyn DynSpawner + Send + Sync>`
/// implements [`Spawner`] again, so it can be used wherever a generic
/// spawner is accepted, at the cost of one allocation per spawn.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::sync::Arc;
/// use cancelkit::rt::{DynSpawner, Smol};
/// use cancelkit::{Runtime, SpawnerExt};
///
/// struct Library {
///     spawner: Arc<dyn DynSpawner + Send + Sync>,
/// }
///
/// let rt = Smol::new().unwrap();
/// let lib = Library { spawner: Arc::new(rt.clone()) };
/// let task = lib.spawner.spawn(async { "works" });
/// assert_eq!(rt.block_on(task).unwrap(), "works");
/// # }
/// ```
pub trait DynSpawner {
    /// Runs a boxed future in the background; see
    /// [`Spawner::spawn_detached`].
    fn spawn_boxed(&self, fut: BoxedFuture);
}

impl<S: Spawner + ?Sized> DynSpawner for S {
    fn spawn_boxed(&self, fut: BoxedFuture) {
        self.spawn_detached(fut);
    }
}

impl Spawner for Arc<dyn DynSpawner + Send + Sync> {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        (**self).spawn_boxed(Box::pin(fut));
    }
}

/// The object-safe form of [`Timer`], for `Arc<dyn DynTimer>`.
///
/// Every [`Timer`] implements it. `Arc<dyn DynTimer + Send + Sync>`
/// implements [`Timer`] again (with boxed sleeps).
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::{sync::Arc, time::Duration};
/// use cancelkit::rt::{DynTimer, Smol};
/// use cancelkit::{Runtime, Timer};
///
/// let rt = Smol::new().unwrap();
/// let timer: Arc<dyn DynTimer + Send + Sync> = Arc::new(rt.clone());
/// let start = timer.now();
/// rt.block_on(timer.sleep(Duration::from_millis(1)));
/// assert!(timer.now() >= start + Duration::from_millis(1));
/// # }
/// ```
pub trait DynTimer {
    /// See [`Timer::now`].
    fn now_dyn(&self) -> Instant;
    /// See [`Timer::sleep_until`].
    fn sleep_until_boxed(&self, deadline: Instant) -> BoxedFuture;
}

impl<T: Timer + ?Sized> DynTimer for T {
    fn now_dyn(&self) -> Instant {
        self.now()
    }
    fn sleep_until_boxed(&self, deadline: Instant) -> BoxedFuture {
        Box::pin(self.sleep_until(deadline))
    }
}

impl Timer for Arc<dyn DynTimer + Send + Sync> {
    type Sleep = BoxedFuture;

    fn now(&self) -> Instant {
        (**self).now_dyn()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxedFuture {
        (**self).sleep_until_boxed(deadline)
    }
}

// ===== forwarding impls =====

impl<S: Spawner + ?Sized> Spawner for &S {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        (**self).spawn_detached(fut);
    }
}

impl<T: Timer + ?Sized> Timer for &T {
    type Sleep = T::Sleep;

    fn now(&self) -> Instant {
        (**self).now()
    }

    fn sleep_until(&self, deadline: Instant) -> T::Sleep {
        (**self).sleep_until(deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_deadline_never_panics() {
        let now = Instant::now();
        assert_eq!(
            saturating_deadline(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let far = saturating_deadline(now, Duration::MAX);
        assert_eq!(far, now + FAR_FUTURE);
    }

    #[test]
    fn near_the_end_of_instant_an_overflow_is_not_now() {
        // The latest instant we can make, found by halving steps.
        let mut end = Instant::now();
        let mut step = Duration::from_secs(u64::MAX);
        while !step.is_zero() {
            match end.checked_add(step) {
                Some(later) => end = later,
                None => step /= 2,
            }
        }
        let near = end - Duration::from_secs(3600);
        let at = saturating_deadline(near, Duration::MAX);
        assert_eq!(at, end, "as far as Instant goes, not `now`");
    }
}
