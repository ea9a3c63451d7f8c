//! Waiting for a token: the futures [`CancelToken::cancelled`],
//! [`CancelToken::cancelled_owned`] and [`CancelToken::run_until_cancelled`]
//! return, and [`CancelFutureExt`], which puts `with_cancel` on every
//! future ([F2](crate#F2), [F5](crate#F5)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::node::Node;
use super::{CancelToken, Cancelled};

/// A registration as a waiter of a node: the shared logic of the waiting
/// futures. Unregisters itself on drop if it was never woken.
pub(super) struct Wait<'a> {
    pub(super) node: &'a Node,
    pub(super) key: Option<u32>,
    /// Also complete when the node detaches (for tasks that wait without
    /// being a handle).
    pub(super) or_detached: bool,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        // The lost-wake-up argument is in `Node::poll_wait`: the flag is
        // re-checked under the lock that a cancel takes to drain wakers.
        if this
            .node
            .poll_wait(&mut this.key, cx.waker(), this.or_detached)
        {
            this.key = None; // drained (or never registered): nothing to undo
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.node.cancel_wait(key);
        }
    }
}

/// The future returned by [`CancelToken::cancelled`].
///
/// ```
/// let token = cancelkit::CancelToken::new();
/// let waiting: cancelkit::token::WhenCancelled<'_> = token.cancelled();
/// token.cancel();
/// futures_lite::future::block_on(waiting);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct WhenCancelled<'a> {
    pub(super) token: &'a CancelToken,
    pub(super) wait: Wait<'a>,
}

impl fmt::Debug for WhenCancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenCancelled")
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}

impl Future for WhenCancelled<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.wait).poll(cx)
    }
}

/// The future returned by [`CancelToken::cancelled_owned`].
///
/// ```
/// let token = cancelkit::CancelToken::new();
/// let waiting: cancelkit::token::WhenCancelledOwned = token.clone().cancelled_owned();
/// token.cancel();
/// futures_lite::future::block_on(waiting);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct WhenCancelledOwned {
    pub(super) token: CancelToken,
    pub(super) key: Option<u32>,
}

impl fmt::Debug for WhenCancelledOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhenCancelledOwned")
            .field("cancelled", &self.token.is_cancelled())
            .finish()
    }
}

impl Future for WhenCancelledOwned {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this
            .token
            .node()
            .poll_wait(&mut this.key, cx.waker(), false)
        {
            this.key = None;
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for WhenCancelledOwned {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.token.node().cancel_wait(key);
        }
    }
}

// ===== run until cancelled =====

pin_project_lite::pin_project! {
    /// The future returned by [`CancelToken::run_until_cancelled`] and
    /// [`CancelFutureExt::with_cancel`].
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// let run: cancelkit::token::WithCancel<_> = token.run_until_cancelled(async { 1 });
    /// assert_eq!(futures_lite::future::block_on(run).unwrap(), 1);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct WithCancel<F> {
        #[pin]
        pub(super) fut: Option<F>,
        pub(super) cancelled: WhenCancelledOwned,
        pub(super) first: bool,
    }
}

impl<F> fmt::Debug for WithCancel<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithCancel")
            .field("running", &self.fut.is_some())
            .finish()
    }
}

impl<F: Future> Future for WithCancel<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let first = std::mem::replace(this.first, false);
        if !(first && this.cancelled.token.is_cancelled()) {
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
        match Pin::new(&mut *this.cancelled).poll(cx) {
            Poll::Ready(()) => {
                this.fut.set(None);
                let why = this
                    .cancelled
                    .token
                    .reason()
                    .expect("cancelled implies a reason");
                Poll::Ready(Err(why))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Extension methods on futures, implemented for every future: run one
/// until a token is cancelled.
///
/// Named so that it never clashes with the `FutureExt` of futures,
/// futures-lite or tokio-util when all are imported.
///
/// ```
/// use cancelkit::{CancelToken, token::CancelFutureExt};
///
/// let token = CancelToken::new();
/// token.cancel();
/// assert!(futures_lite::future::block_on(async { 1 }.with_cancel(&token)).is_err());
/// ```
pub trait CancelFutureExt: Future + Sized {
    /// Runs this future until it completes or `token` is cancelled; the same
    /// as [`token.run_until_cancelled(self)`](CancelToken::run_until_cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{CancelToken, token::CancelFutureExt};
    ///
    /// let token = CancelToken::new();
    /// let out = futures_lite::future::block_on(async { 5 }.with_cancel(&token));
    /// assert_eq!(out.unwrap(), 5);
    ///
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    /// let rt = Smol::new().unwrap();
    /// // Owned: spawn it as it is.
    /// let task = rt.spawn(std::future::pending::<()>().with_cancel(&token));
    /// token.cancel();
    /// assert!(rt.block_on(task).unwrap().is_err());
    /// # }
    /// ```
    fn with_cancel(self, token: &CancelToken) -> WithCancel<Self> {
        token.run_until_cancelled(self)
    }
}

impl<F: Future> CancelFutureExt for F {}

// ===== watching without being a handle =====

/// Resolves to the cause when a token is cancelled, or to `None` once it
/// detaches (no handle and no child left: nothing could cancel it any
/// more). It holds the token's node, not a handle, so it does not keep the
/// token alive: for work armed on a token by someone who does not own it
/// (cleanup hosted by a task, `crate::scope::cleanup_on`).
pub(crate) struct Watch {
    node: super::NodeArc,
    key: Option<u32>,
}

impl CancelToken {
    pub(crate) fn watch(&self) -> Watch {
        Watch {
            node: self.node().clone(),
            key: None,
        }
    }
}

impl Watch {
    /// The cause, if the token is cancelled now.
    pub(crate) fn reason(&self) -> Option<Cancelled> {
        self.node.reason()
    }
}

impl Future for Watch {
    type Output = Option<Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Cancelled>> {
        let this = &mut *self;
        if this.node.poll_wait(&mut this.key, cx.waker(), true) {
            this.key = None;
            Poll::Ready(this.node.reason())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.node.cancel_wait(key);
        }
    }
}
