//! [`CancelToken`]: a shared cancellation flag that can also be awaited.
//!
//! A token is a cheap handle (one `Arc`) to a shared state. Any clone can
//! [`cancel`](CancelToken::cancel) it; every clone then reports
//! [`is_cancelled`](CancelToken::is_cancelled), and every task awaiting
//! [`cancelled`](CancelToken::cancelled) wakes up. It needs no runtime.
//!
//! # Internals
//!
//! The shared node holds:
//!
//! - `state`, an `AtomicU8` on a cache line of its own (so that clones,
//!   which write the `Arc`'s reference count, do not slow down readers of
//!   the flag). Its only bit today is [`CANCELLED`].
//! - `event`, an [`event_listener::Event`] on which waiters park.
//!
//! Invariants:
//!
//! 1. `CANCELLED` goes from 0 to 1 exactly once, by the `swap` in
//!    [`CancelToken::cancel`], and never back.
//! 2. Only the call whose `swap` set the bit notifies `event`, after setting
//!    it; so waiters are woken once, by one caller, for one cancel.
//! 3. A waiter always checks the bit *after* it has registered a listener on
//!    `event` (see the argument in `WhenCancelled::poll`), so a cancel that
//!    races with registration is never lost.
//!
//! No lock is taken anywhere; waking happens through `event-listener`, which
//! wakes waiters outside its own internal lock.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use event_listener::{Event, EventListener};

use crate::signal::Signal;

/// Set once, when the token is cancelled. Never cleared (invariant 1).
const CANCELLED: u8 = 0b1;

/// Aligns its content to its own cache line (128 bytes covers the adjacent
/// line prefetcher on x86 and the 128-byte lines of some ARM cores).
#[repr(align(128))]
struct CachePadded<T>(T);

#[repr(C)] // `state` first, so it starts the allocation's second cache line.
struct Node {
    state: CachePadded<AtomicU8>,
    event: Event,
}

impl Node {
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.state.0.load(Ordering::Acquire) & CANCELLED != 0
    }
}

/// A cancellation flag shared by all its clones, which can be awaited.
///
/// # Contract (F1, F2)
///
/// - Clones share one state. [`cancel`](CancelToken::cancel) is idempotent.
/// - [`is_cancelled`](CancelToken::is_cancelled) is one atomic load: it never
///   blocks and never takes a lock.
/// - [`cancelled`](CancelToken::cancelled) completes at once if the token is
///   already cancelled, otherwise when it is; one `cancel()` wakes every
///   waiter, and a cancel that races with a waiter's registration is never
///   lost.
///
/// `CancelToken` implements [`Signal`], so it can be passed wherever a
/// signal is accepted.
///
/// # Examples
///
/// A shared flag, checked by a loop:
///
/// ```
/// use cancelkit::CancelToken;
///
/// let token = CancelToken::new();
/// let worker = {
///     let token = token.clone();
///     std::thread::spawn(move || {
///         let mut rounds = 0;
///         while !token.is_cancelled() {
///             rounds += 1;
///             std::thread::yield_now();
///         }
///         rounds
///     })
/// };
/// token.cancel();
/// worker.join().unwrap();
/// assert!(token.is_cancelled());
/// ```
///
/// Awaited:
///
/// ```
/// use cancelkit::CancelToken;
///
/// let token = CancelToken::new();
/// let waiter = token.clone();
/// std::thread::spawn(move || token.cancel());
/// futures_lite::future::block_on(waiter.cancelled());
/// assert!(waiter.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    node: Arc<Node>,
}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    /// A new token, not cancelled.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn new() -> Self {
        CancelToken {
            node: Arc::new(Node {
                state: CachePadded(AtomicU8::new(0)),
                event: Event::new(),
            }),
        }
    }

    /// Cancels the token: every clone reports cancelled from now on, and
    /// every waiter wakes.
    ///
    /// Idempotent: calling it again does nothing. Waiters are woken on the
    /// calling thread, without any lock held.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// token.cancel();
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        // Invariant 1 and 2: only the first swap notifies.
        let prev = self.node.state.0.swap(CANCELLED, Ordering::AcqRel);
        if prev & CANCELLED == 0 {
            self.node.event.notify(usize::MAX);
        }
    }

    /// Whether the token has been cancelled. One atomic load (`Acquire`):
    /// wait-free, no lock.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// Waits until the token is cancelled.
    ///
    /// ```text
    /// async fn cancelled(&self);
    /// ```
    ///
    /// Completes at once if the token is already cancelled. Allocates only
    /// if it actually has to wait.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// token.cancel();
    /// futures_lite::future::block_on(token.cancelled());
    /// ```
    pub fn cancelled(&self) -> WhenCancelled<'_> {
        WhenCancelled {
            node: &self.node,
            listener: None,
        }
    }

    /// Like [`cancelled`](CancelToken::cancelled), but owns a clone of the
    /// token, so the future is `'static` and can be moved into a task.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    ///
    /// # Examples
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// let wait = token.clone().cancelled_owned();
    /// let waiter = std::thread::spawn(move || futures_lite::future::block_on(wait));
    /// token.cancel();
    /// waiter.join().unwrap();
    /// ```
    pub fn cancelled_owned(self) -> WhenCancelledOwned {
        WhenCancelledOwned {
            node: self.node,
            listener: None,
        }
    }

    /// Runs `fut` until it completes or the token is cancelled (F5).
    ///
    /// Gives `Ok(output)` if `fut` completes first, and `Err(Cancelled)`
    /// once the token is cancelled, after dropping `fut`.
    ///
    /// # Fairness
    ///
    /// If the token is already cancelled when the returned future is first
    /// polled, `fut` is never polled. After that, each poll polls `fut`
    /// first: if `fut` is ready in the same poll that the cancellation is
    /// seen, the tie goes to `fut`.
    ///
    /// # Cancel safety
    ///
    /// As cancel safe as `fut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::CancelToken;
    ///
    /// let token = CancelToken::new();
    /// token.cancel();
    /// let out = futures_lite::future::block_on(token.run_until_cancelled(async { 1 }));
    /// assert!(out.is_err());
    /// ```
    pub fn run_until_cancelled<F: Future>(&self, fut: F) -> WithCancel<'_, F> {
        WithCancel {
            fut: Some(fut),
            cancelled: self.cancelled(),
            first: true,
        }
    }

    /// A guard that cancels this token when dropped, unless
    /// [disarmed](DropGuard::disarm) (F4).
    ///
    /// # Examples
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// {
    ///     let _guard = token.clone().drop_guard();
    /// }
    /// assert!(token.is_cancelled());
    ///
    /// let token = cancelkit::CancelToken::new();
    /// let token = token.drop_guard().disarm();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: Some(self) }
    }
}

impl Signal for CancelToken {
    type Raised<'a> = WhenCancelled<'a>;

    fn is_raised(&self) -> bool {
        self.is_cancelled()
    }

    fn raised(&self) -> WhenCancelled<'_> {
        self.cancelled()
    }
}

// ===== waiting =====

/// The shared polling logic of the two "cancelled" futures.
fn poll_cancelled(
    node: &Node,
    listener: &mut Option<EventListener>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    loop {
        if node.is_cancelled() {
            return Poll::Ready(());
        }
        match listener {
            None => {
                // Invariant 3, the lost-wake-up argument: `listen()`
                // registers us with `event` (it contains a full fence), and
                // only then do we re-check the flag at the top of the loop.
                // `cancel` sets the flag before `notify`. So either that
                // re-check sees the flag, or the notify happens after our
                // registration and wakes the listener we hold.
                *listener = Some(node.event.listen());
            }
            Some(l) => {
                if Pin::new(l).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Notified: only `cancel` notifies, so the flag is set; the
                // loop re-checks it (and re-arms if it were not).
                *listener = None;
            }
        }
    }
}

/// The future returned by [`CancelToken::cancelled`].
#[must_use = "futures do nothing unless polled"]
pub struct WhenCancelled<'a> {
    node: &'a Node,
    listener: Option<EventListener>,
}

impl fmt::Debug for WhenCancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenCancelled")
            .field("cancelled", &self.node.is_cancelled())
            .finish()
    }
}

impl Future for WhenCancelled<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        poll_cancelled(this.node, &mut this.listener, cx)
    }
}

/// The future returned by [`CancelToken::cancelled_owned`].
#[must_use = "futures do nothing unless polled"]
pub struct WhenCancelledOwned {
    node: Arc<Node>,
    listener: Option<EventListener>,
}

impl fmt::Debug for WhenCancelledOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenCancelledOwned")
            .field("cancelled", &self.node.is_cancelled())
            .finish()
    }
}

impl Future for WhenCancelledOwned {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        poll_cancelled(&this.node, &mut this.listener, cx)
    }
}

// ===== run until cancelled =====

/// The error of a future that was stopped by a [`CancelToken`].
///
/// ```
/// let err = cancelkit::Cancelled::new();
/// assert_eq!(err.to_string(), "operation was cancelled");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cancelled {}

impl Cancelled {
    /// A plain cancellation.
    pub fn new() -> Self {
        Cancelled {}
    }
}

impl Default for Cancelled {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation was cancelled")
    }
}

impl std::error::Error for Cancelled {}

pin_project_lite::pin_project! {
    /// The future returned by [`CancelToken::run_until_cancelled`] and
    /// [`FutureExt::with_cancel`].
    #[must_use = "futures do nothing unless polled"]
    pub struct WithCancel<'a, F> {
        #[pin]
        fut: Option<F>,
        cancelled: WhenCancelled<'a>,
        first: bool,
    }
}

impl<F> fmt::Debug for WithCancel<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithCancel")
            .field("running", &self.fut.is_some())
            .finish()
    }
}

impl<F: Future> Future for WithCancel<'_, F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let first = std::mem::replace(this.first, false);
        if !(first && this.cancelled.node.is_cancelled()) {
            let fut = this
                .fut
                .as_mut()
                .as_pin_mut()
                .expect("`WithCancel` polled after it returned `Poll::Ready`");
            if let Poll::Ready(out) = fut.poll(cx) {
                this.fut.set(None);
                return Poll::Ready(Ok(out));
            }
        }
        match Pin::new(this.cancelled).poll(cx) {
            Poll::Ready(()) => {
                this.fut.set(None);
                Poll::Ready(Err(Cancelled::new()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Extension methods on futures.
pub trait FutureExt: Future + Sized {
    /// Runs this future until it completes or `token` is cancelled; the same
    /// as [`token.run_until_cancelled(self)`](CancelToken::run_until_cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{CancelToken, FutureExt};
    ///
    /// let token = CancelToken::new();
    /// let out = futures_lite::future::block_on(async { 5 }.with_cancel(&token));
    /// assert_eq!(out, Ok(5));
    /// ```
    fn with_cancel(self, token: &CancelToken) -> WithCancel<'_, Self> {
        token.run_until_cancelled(self)
    }
}

impl<F: Future> FutureExt for F {}

// ===== guards =====

/// Cancels its token when dropped, unless disarmed. Made by
/// [`CancelToken::drop_guard`].
#[must_use = "the token is cancelled as soon as the guard is dropped"]
#[derive(Debug)]
pub struct DropGuard {
    token: Option<CancelToken>,
}

impl DropGuard {
    /// Gives the token back without cancelling it.
    ///
    /// ```
    /// let guard = cancelkit::CancelToken::new().drop_guard();
    /// assert!(!guard.disarm().is_cancelled());
    /// ```
    pub fn disarm(mut self) -> CancelToken {
        self.token
            .take()
            .expect("a DropGuard always holds its token until dropped")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<CountingWaker>, Waker) {
        let c = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (c.clone(), c.into())
    }

    #[test]
    fn one_cancel_wakes_every_waiter_exactly_once() {
        let token = CancelToken::new();
        let mut futs: Vec<_> = (0..3).map(|_| Box::pin(token.cancelled())).collect();
        let wakers: Vec<_> = (0..3).map(|_| counting()).collect();
        for (f, (_, w)) in futs.iter_mut().zip(&wakers) {
            assert!(f.as_mut().poll(&mut Context::from_waker(w)).is_pending());
        }
        token.cancel();
        token.cancel();
        for (f, (c, w)) in futs.iter_mut().zip(&wakers) {
            assert_eq!(c.0.load(Ordering::SeqCst), 1);
            assert!(f.as_mut().poll(&mut Context::from_waker(w)).is_ready());
        }
    }

    #[test]
    fn cancelled_is_ready_at_once_when_already_cancelled() {
        let token = CancelToken::new();
        token.cancel();
        let (c, w) = counting();
        let mut f = Box::pin(token.cancelled());
        assert!(f.as_mut().poll(&mut Context::from_waker(&w)).is_ready());
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
        assert!(
            f.listener.is_none(),
            "no listener registered on the fast path"
        );
    }

    #[test]
    fn with_cancel_does_not_poll_when_already_cancelled() {
        let token = CancelToken::new();
        token.cancel();
        let polled = AtomicUsize::new(0);
        let fut = std::future::poll_fn(|_| {
            polled.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(())
        });
        let out = futures_lite::future::block_on(token.run_until_cancelled(fut));
        assert_eq!(out, Err(Cancelled::new()));
        assert_eq!(polled.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn with_cancel_sees_a_cancel_raised_during_the_futures_poll() {
        let token = CancelToken::new();
        let t2 = token.clone();
        let fut = std::future::poll_fn(move |_| {
            t2.cancel();
            Poll::<()>::Pending
        });
        let mut f = Box::pin(token.run_until_cancelled(fut));
        let (_, w) = counting();
        assert_eq!(
            f.as_mut().poll(&mut Context::from_waker(&w)),
            Poll::Ready(Err(Cancelled::new()))
        );
    }

    #[test]
    fn with_cancel_tie_goes_to_the_future_after_the_first_poll() {
        let token = CancelToken::new();
        let mut polls = 0;
        let fut = std::future::poll_fn(move |_| {
            polls += 1;
            if polls == 1 {
                Poll::Pending
            } else {
                Poll::Ready(7)
            }
        });
        let mut f = Box::pin(token.run_until_cancelled(fut));
        let (_, w) = counting();
        let mut cx = Context::from_waker(&w);
        assert!(f.as_mut().poll(&mut cx).is_pending());
        token.cancel();
        // Both are ready now: the future wins the tie.
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(7)));
    }

    #[test]
    fn cancel_racing_registration_from_threads_is_never_lost() {
        for _ in 0..1000 {
            let token = CancelToken::new();
            let t2 = token.clone();
            let h = std::thread::spawn(move || t2.cancel());
            futures_lite::future::block_on(token.cancelled());
            h.join().unwrap();
        }
    }

    #[test]
    fn state_does_not_share_the_arc_counters_cache_line() {
        let token = CancelToken::new();
        let node_addr = Arc::as_ptr(&token.node) as usize;
        let state_addr = &token.node.state as *const _ as usize;
        assert_eq!(state_addr % 128, 0);
        assert_eq!(node_addr, state_addr, "state is the first, aligned field");
        // Arc's counters sit before `node_addr`, so on another 128-byte line.
    }
}
