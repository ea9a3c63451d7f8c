//! Time limits for futures: [`timeout`] and [`deadline`].
//!
//! Both work with any [`Timer`] and read the clock only through
//! [`Timer::now`], so they behave the same on every runtime, virtual time
//! included.
//!
//! # Contract ([T1](crate#T1)–[T3](crate#T3))
//!
//! - The result is `Ok(output)` if the future completes in time, otherwise
//!   `Err(Elapsed)`; by the time `Err(Elapsed)` is returned the inner future
//!   has been dropped.
//! - The inner future is polled **before** the clock is looked at, on every
//!   poll. A future that is ready at once wins even with `Duration::ZERO`,
//!   and costs no clock read and no timer at all.
//! - The limit never fires early by the timer's own clock.
//! - A duration that overflows `Instant` (such as `Duration::MAX`) means
//!   "no limit": no timer is created.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::Timer;

pub use crate::runtime::FAR_FUTURE;

/// Limits `fut` to `duration`, counted from its first poll ([T1](crate#T1), [T2](crate#T2)).
///
/// ```text
/// async fn timeout<F: Future>(timer: &(impl Timer + Clone), duration: Duration, fut: F)
///     -> Result<F::Output, Elapsed>;
/// ```
///
/// The returned future keeps a clone of `timer` (a cheap handle on every
/// runtime), so it borrows nothing and can be spawned as it is:
/// `rt.spawn(timeout(&rt, d, fut))`.
///
/// The clock starts when the returned future is first polled and finds `fut`
/// pending, not when `timeout` is called: futures do nothing until polled.
/// Use [`deadline`] for a limit fixed in advance.
///
/// # Cancel safety
///
/// As cancel safe as `fut`.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, SpawnerExt, Timer, rt::Smol, timeout};
///
/// let rt = Smol::new().unwrap();
/// rt.block_on(async {
///     // Ready at once: wins even with a zero limit.
///     assert_eq!(timeout(&rt, Duration::ZERO, async { 1 }).await, Ok(1));
///
///     let slow = rt.sleep(Duration::from_secs(3600));
///     assert!(timeout(&rt, Duration::from_millis(10), slow).await.is_err());
/// });
///
/// // Owned: spawn it as it is, no `async move` block needed.
/// let task = rt.spawn(timeout(&rt, Duration::from_secs(5), async { 2 }));
/// assert_eq!(rt.block_on(task).unwrap(), Ok(2));
/// # }
/// ```
#[doc(alias = "with_timeout")]
pub fn timeout<T, F>(timer: &T, duration: Duration, fut: F) -> Timeout<T, F>
where
    T: Timer + Clone,
    F: Future,
{
    Timeout {
        fut: Some(fut),
        sleep: None,
        timer: timer.clone(),
        limit: Limit::After(duration),
    }
}

/// Limits `fut` to finish by the instant `at`, on `timer`'s clock ([T3](crate#T3)).
///
/// ```text
/// async fn deadline<F: Future>(timer: &(impl Timer + Clone), at: Instant, fut: F)
///     -> Result<F::Output, Elapsed>;
/// ```
///
/// Like [`timeout`], it keeps a clone of `timer` and borrows nothing.
///
/// A deadline already in the past still polls `fut` once: a ready future
/// wins.
///
/// # Cancel safety
///
/// As cancel safe as `fut`.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, deadline, rt::Smol};
///
/// let rt = Smol::new().unwrap();
/// let at = rt.now() + Duration::from_millis(10);
/// let out = rt.block_on(deadline(&rt, at, std::future::pending::<()>()));
/// assert!(out.is_err());
/// assert!(rt.now() >= at);
/// # }
/// ```
#[doc(alias = "timeout_at")]
pub fn deadline<T, F>(timer: &T, at: Instant, fut: F) -> Timeout<T, F>
where
    T: Timer + Clone,
    F: Future,
{
    Timeout {
        fut: Some(fut),
        sleep: None,
        timer: timer.clone(),
        limit: Limit::At(at),
    }
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    /// Relative: turned into an instant at the first pending poll.
    After(Duration),
    At(Instant),
    /// The relative limit overflowed `Instant`: there is none.
    Never,
}

pin_project_lite::pin_project! {
    /// The future returned by [`timeout`] and [`deadline`].
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, rt::Smol, time::Timeout, timeout};
    ///
    /// let rt = Smol::new().unwrap();
    /// let limited: Timeout<Smol, _> = timeout(&rt, Duration::from_secs(1), async { 3 });
    /// assert_eq!(rt.block_on(limited), Ok(3));
    /// # }
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Timeout<T, F>
    where
        T: Timer,
    {
        #[pin]
        fut: Option<F>,
        #[pin]
        sleep: Option<T::Sleep>,
        timer: T,
        limit: Limit,
    }
}

impl<T: Timer, F> fmt::Debug for Timeout<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("limit", &self.limit)
            .field("armed", &self.sleep.is_some())
            .finish()
    }
}

impl<T: Timer, F: Future> Future for Timeout<T, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();

        // T2: the future first, before any clock read.
        let fut = this
            .fut
            .as_mut()
            .as_pin_mut()
            .expect("`Timeout` polled after it returned `Poll::Ready`");
        if let Poll::Ready(out) = fut.poll(cx) {
            this.fut.set(None);
            return Poll::Ready(Ok(out));
        }

        if this.sleep.is_none() {
            let at = match *this.limit {
                Limit::At(at) => at,
                Limit::After(d) => match this.timer.now().checked_add(d) {
                    Some(at) => at,
                    None => {
                        *this.limit = Limit::Never;
                        return Poll::Pending;
                    }
                },
                Limit::Never => return Poll::Pending,
            };
            this.sleep.set(Some(this.timer.sleep_until(at)));
        }

        let sleep = this.sleep.as_pin_mut().expect("armed above");
        if sleep.poll(cx).is_ready() {
            // T1: drop the inner future before reporting the timeout.
            this.fut.set(None);
            Poll::Ready(Err(Elapsed::new()))
        } else {
            Poll::Pending
        }
    }
}

/// The error of [`timeout`] and [`deadline`]: the limit passed first.
///
/// ```
/// assert_eq!(cancelkit::time::Elapsed::new().to_string(), "deadline has elapsed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Elapsed {}

impl Elapsed {
    /// The (only) value of this error.
    ///
    /// ```
    /// assert_eq!(cancelkit::time::Elapsed::new(), cancelkit::time::Elapsed::default());
    /// ```
    pub fn new() -> Self {
        Elapsed {}
    }
}

impl Default for Elapsed {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> Self {
        std::io::ErrorKind::TimedOut.into()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A timer that counts clock reads and whose sleeps complete at once.
    struct CountingTimer {
        reads: AtomicUsize,
        sleeps: AtomicUsize,
    }

    impl Timer for CountingTimer {
        type Sleep = std::future::Ready<()>;
        fn now(&self) -> Instant {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Instant::now()
        }
        fn sleep_until(&self, _: Instant) -> Self::Sleep {
            self.sleeps.fetch_add(1, Ordering::SeqCst);
            std::future::ready(())
        }
    }

    fn timer() -> CountingTimer {
        CountingTimer {
            reads: AtomicUsize::new(0),
            sleeps: AtomicUsize::new(0),
        }
    }

    #[test]
    fn ready_future_wins_at_zero_without_reading_the_clock() {
        let t = timer();
        let out = futures_lite::future::block_on(timeout(&&t, Duration::ZERO, async { 3 }));
        assert_eq!(out, Ok(3));
        assert_eq!(t.reads.load(Ordering::SeqCst), 0);
        assert_eq!(t.sleeps.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn pending_future_times_out_and_is_dropped_first() {
        struct Flag<'a>(&'a AtomicUsize);
        impl Drop for Flag<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let dropped = AtomicUsize::new(0);
        let t = timer();
        let fut = async {
            let _f = Flag(&dropped);
            std::future::pending::<()>().await
        };
        let mut to = Box::pin(timeout(&&t, Duration::from_secs(1), fut));
        let out = futures_lite::future::block_on(to.as_mut());
        assert_eq!(out, Err(Elapsed::new()));
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert_eq!(t.reads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn duration_max_means_no_limit_and_no_timer() {
        let t = timer();
        let mut polls = 0;
        let fut = std::future::poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        let out = futures_lite::future::block_on(timeout(&&t, Duration::MAX, fut));
        assert_eq!(out, Ok(()));
        assert_eq!(t.sleeps.load(Ordering::SeqCst), 0);
    }
}
