//! Deadlines: a token that cancels itself when a [`Timer`]'s clock reaches
//! an instant, children that inherit the earlier of their own deadline and
//! their parent's, and the small task that fires them ([F6](crate#F6)).

use std::future::Future;
use std::panic::Location;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::node::{self, Node, NodeArc};
use super::wait::Wait;
use super::{CancelToken, Cancelled};
use crate::runtime::{Spawner, Timer};

impl CancelToken {
    /// The effective deadline: the earliest of this token's own deadline and
    /// all its ancestors' ([F6](crate#F6)). Leaf code can forward it, e.g. to an RPC.
    ///
    /// ```
    /// use cancelkit::CancelToken;
    ///
    /// assert_eq!(CancelToken::new().deadline(), None);
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        Node::deadline(self.node())
    }

    /// A root token that cancels itself, with
    /// [`CancelKind::DeadlineExceeded`](super::CancelKind::DeadlineExceeded), when `rt`'s clock reaches `at`
    /// ([F6](crate#F6)).
    ///
    /// # How the deadline is driven
    ///
    /// A small task is spawned on `rt` that sleeps until `at` and then
    /// cancels the token; it ends early if the token is cancelled, or once
    /// all its clones are dropped and it has no children left (when nothing
    /// could ever see the cancel). So [`is_cancelled`](CancelToken::is_cancelled)
    /// stays a single atomic load, and the token flips to cancelled when
    /// that task runs — at or after `at`, never before.
    ///
    /// The deadline lives on `rt`: if that runtime shuts down before `at`,
    /// the task is dropped with it and **the deadline never fires** (the
    /// token still reports it through [`deadline`](CancelToken::deadline),
    /// and can still be cancelled any other way).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, Runtime, Timer, rt::Smol, token::CancelKind};
    ///
    /// let rt = Smol::new().unwrap();
    /// let at = rt.now() + Duration::from_millis(10);
    /// let token = CancelToken::with_deadline(&rt, at);
    /// assert_eq!(token.deadline(), Some(at));
    /// rt.block_on(token.cancelled());
    /// assert!(rt.now() >= at);
    /// assert_eq!(token.reason().unwrap().kind(), CancelKind::DeadlineExceeded);
    /// # }
    /// ```
    #[track_caller]
    pub fn with_deadline<R: Spawner + Timer + ?Sized>(rt: &R, at: Instant) -> CancelToken {
        let token = Self::from_node(Node::root(Some(at)));
        arm_deadline(rt, token.node(), at, Location::caller());
        token
    }

    /// [`with_deadline`](CancelToken::with_deadline) at `rt.now() + timeout`.
    /// A timeout too large for `Instant` means no deadline.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, Runtime, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let token = CancelToken::with_timeout(&rt, Duration::from_millis(5));
    /// rt.block_on(token.cancelled());
    /// # }
    /// ```
    #[track_caller]
    pub fn with_timeout<R: Spawner + Timer + ?Sized>(rt: &R, timeout: Duration) -> CancelToken {
        match rt.now().checked_add(timeout) {
            Some(at) => Self::with_deadline(rt, at),
            None => Self::new(),
        }
    }

    /// A child with a deadline of its own. Its effective deadline is the
    /// earlier of `at` and this token's; a timer task is spawned only if
    /// `at` is the earlier one.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, Runtime, Timer, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let soon = rt.now() + Duration::from_millis(10);
    /// let request = CancelToken::with_deadline(&rt, soon);
    /// let later = request.child_with_deadline(&rt, soon + Duration::from_secs(60));
    /// assert_eq!(later.deadline(), Some(soon), "the earlier deadline wins");
    /// rt.block_on(later.cancelled());
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_deadline<R: Spawner + Timer + ?Sized>(
        &self,
        rt: &R,
        at: Instant,
    ) -> CancelToken {
        let inherited = self.deadline();
        let child = Self::from_node(Node::child(self.node(), Some(at)));
        if inherited.is_none_or(|d| at < d) {
            arm_deadline(rt, child.node(), at, Location::caller());
        }
        child
    }

    /// [`child_with_deadline`](CancelToken::child_with_deadline) at
    /// `rt.now() + timeout`; a timeout too large for `Instant` gives a
    /// plain child.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::time::Duration;
    /// use cancelkit::{CancelToken, Runtime, rt::Smol};
    ///
    /// let rt = Smol::new().unwrap();
    /// let parent = CancelToken::new();
    /// let child = parent.child_with_timeout(&rt, Duration::from_millis(5));
    /// rt.block_on(child.cancelled());
    /// assert!(!parent.is_cancelled());
    /// # }
    /// ```
    #[track_caller]
    pub fn child_with_timeout<R: Spawner + Timer + ?Sized>(
        &self,
        rt: &R,
        timeout: Duration,
    ) -> CancelToken {
        match rt.now().checked_add(timeout) {
            Some(at) => self.child_with_deadline(rt, at),
            None => self.child(),
        }
    }

    /// Records `at` as this token's deadline if it is earlier than the one
    /// it has (or it has none), without arming a timer: for code that will
    /// cancel the token itself by then (a task group's grace period) and
    /// wants descendants to see the deadline.
    pub(crate) fn announce_deadline(&self, at: Instant) {
        self.node().tighten_deadline(at);
    }
}

/// Spawns the task that fires `node`'s deadline.
fn arm_deadline<R: Spawner + Timer + ?Sized>(
    rt: &R,
    node: &NodeArc,
    at: Instant,
    location: &'static Location<'static>,
) {
    watch(rt, node, rt.sleep_until(at), node::deadline_cause(location));
}

/// Spawns a task that cancels `node` with `cause` when `trigger` completes.
/// The task holds the node but not a handle: it ends early, dropping
/// `trigger`, once the node is cancelled or detached (no handle and no
/// child left: nothing could ever see the cancel; detaching wakes it).
pub(super) fn watch<S, F>(spawner: &S, node: &NodeArc, trigger: F, cause: Cancelled)
where
    S: Spawner + ?Sized,
    F: Future<Output = ()> + Send + 'static,
{
    let node = node.clone();
    let mut trigger = Box::pin(trigger);
    spawner.spawn_detached(async move {
        let fired = {
            let mut wait = std::pin::pin!(Wait::new(&node, true));
            std::future::poll_fn(|cx| {
                if trigger.as_mut().poll(cx).is_ready() {
                    Poll::Ready(true)
                } else if wait.as_mut().poll(cx).is_ready() {
                    Poll::Ready(false)
                } else {
                    Poll::Pending
                }
            })
            .await
        };
        if fired {
            node::cancel(&node, cause);
        }
    });
}
