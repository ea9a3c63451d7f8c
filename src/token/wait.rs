//! Waiting for a token: the futures [`CancelToken::cancelled`],
//! [`CancelToken::cancelled_owned`] and [`CancelToken::run_until_cancelled`]
//! return, and [`CancelFutureExt`], which puts `with_cancel` on every
//! future ([F2](crate#F2), [F5](crate#F5)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::node::{Node, Waiter};
use super::{CancelToken, Cancelled};

pin_project_lite::pin_project! {
    /// A registration as a waiter of a node: the shared logic of the
    /// waiting futures. Its [`Waiter`] sits in the node's intrusive list
    /// while it waits (so it must stay pinned), and leaves it on drop.
    pub(super) struct Wait<'a> {
        pub(super) node: &'a Node,
        #[pin]
        pub(super) waiter: Waiter,
        // Also complete when the node detaches (for tasks that wait without
        // being a handle).
        pub(super) or_detached: bool,
    }

    impl PinnedDrop for Wait<'_> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.node.unwait(this.waiter.as_ref());
        }
    }
}

impl<'a> Wait<'a> {
    pub(super) fn new(node: &'a Node, or_detached: bool) -> Self {
        Wait {
            node,
            waiter: Waiter::new(),
            or_detached,
        }
    }
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        // The lost-wake-up argument is in `Node::poll_wait`: the flag is
        // re-checked under the lock that a cancel takes to take the waiters.
        if this
            .node
            .poll_wait(this.waiter.as_ref(), cx.waker(), *this.or_detached)
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`CancelToken::cancelled`].
    ///
    /// While it waits it is the token's record of the waiting task (an
    /// entry of an intrusive list), so it allocates nothing, and it is
    /// `!Unpin`: pin it (`std::pin::pin!`, `Box::pin`) to poll it by hand;
    /// `.await` and `select!` do that for you.
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
        #[pin]
        pub(super) wait: Wait<'a>,
    }
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().wait.poll(cx)
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`CancelToken::cancelled_owned`]. Like
    /// [`WhenCancelled`], it allocates nothing and is `!Unpin`.
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
        #[pin]
        pub(super) waiter: Waiter,
    }

    impl PinnedDrop for WhenCancelledOwned {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.token.node().unwait(this.waiter.as_ref());
        }
    }
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this
            .token
            .node()
            .poll_wait(this.waiter.as_ref(), cx.waker(), false)
        {
            Poll::Ready(())
        } else {
            Poll::Pending
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
        #[pin]
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
        match this.cancelled.as_mut().poll(cx) {
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

pin_project_lite::pin_project! {
    /// Resolves to the cause when a token is cancelled, or to `None` once it
    /// detaches (no handle and no child left: nothing could cancel it any
    /// more). It holds the token's node, not a handle, so it does not keep
    /// the token alive: for work armed on a token by someone who does not
    /// own it (cleanup hosted by a task, `crate::scope::cleanup_on`).
    pub(crate) struct Watch {
        node: super::NodeArc,
        #[pin]
        waiter: Waiter,
    }

    impl PinnedDrop for Watch {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.node.unwait(this.waiter.as_ref());
        }
    }
}

impl CancelToken {
    pub(crate) fn watch(&self) -> Watch {
        Watch {
            node: self.node().clone(),
            waiter: Waiter::new(),
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Cancelled>> {
        let this = self.project();
        if this.node.poll_wait(this.waiter.as_ref(), cx.waker(), true) {
            Poll::Ready(this.node.reason())
        } else {
            Poll::Pending
        }
    }
}
