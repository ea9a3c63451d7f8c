//! [`CancelToken`]: a cancellation flag that can be awaited, forms trees,
//! carries a cause, can have a deadline, and runs callbacks.
//!
//! A token is a cheap handle to shared state. Any clone can
//! [`cancel`](CancelToken::cancel) it; every clone then reports
//! [`is_cancelled`](CancelToken::is_cancelled) (one atomic load), every task
//! awaiting [`cancelled`](CancelToken::cancelled) wakes, and every
//! [child](CancelToken::child) and [linked token](CancelToken::any) is
//! cancelled too, with the same [`Cancelled`] cause. It needs no runtime,
//! except to drive a [deadline](CancelToken::with_deadline).
//!
//! # Memory
//!
//! A token is one 120-byte allocation, shared by its clones; waiting on it
//! allocates nothing (the waiting future is the waiter's entry), and a
//! callback or a link to a second parent adds one small allocation for the
//! token's first. A child that is dropped (all its clones) detaches from its parent in
//! O(1), so a long-lived parent's memory stays flat however many children
//! come and go — unless the child still has live descendants, which stay
//! reachable through it. (Its callbacks do not keep it: a token nobody holds
//! can never be cancelled, so they are dropped unrun.) Cancelling is iterative: a chain a
//! hundred thousand tokens deep cancels (and drops) without recursion.
//!
//! The algorithm and its invariants are documented in `token/node.rs`.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::Location;

use crate::signal::Signal;

mod callback;
mod cause;
mod deadline;
mod guard;
mod wait;
cfg_tokio_util! {
    mod interop;
}
#[cfg(all(test, loom))]
mod loom_tests;
mod node;
mod node_ref;

pub use cause::{CancelKind, Cancelled};
pub use guard::{DropGuard, OnCancel, PanicGuard};
use node::Entry;
pub(crate) use node::{Node, NodeArc};
use node_ref::TokenRef;
use wait::Wait;
pub(crate) use wait::Watch;
pub use wait::{CancelFutureExt, WhenCancelled, WhenCancelledOwned, WithCancel};

/// A cancellation token: a flag shared by its clones, which can be awaited
/// and which cancels its children.
///
/// # Contract ([F1](crate#F1)–[F6](crate#F6))
///
/// - Clones share one state. [`cancel`](CancelToken::cancel) is idempotent;
///   the first cancel's [cause](CancelToken::reason) wins.
/// - [`is_cancelled`](CancelToken::is_cancelled) is one atomic load: it
///   never blocks, never takes a lock, and reads a cache line that neither
///   clones nor children write.
/// - [`cancelled`](CancelToken::cancelled) completes at once if the token is
///   already cancelled, otherwise when it is; one cancel wakes every waiter,
///   and a cancel that races with a waiter's registration is never lost.
/// - A [`child`](CancelToken::child) is cancelled when its parent is (with
///   the parent's cause); cancelling a child leaves the parent alone; a child
///   of a cancelled parent is born cancelled. When `cancel()` returns, every
///   descendant reports cancelled.
/// - Dropping a child's last clone detaches it from its parent, in O(1);
///   its own descendants stay reachable.
///
/// # Examples
///
/// ```
/// use cancelkit::CancelToken;
///
/// let root = CancelToken::new();
/// let request = root.child();
/// let subtask = request.child();
///
/// request.cancel();
/// assert!(subtask.is_cancelled());
/// assert!(!root.is_cancelled());
///
/// root.cancel();
/// let late = root.child();
/// assert!(late.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    /// Its clones share one reference to the node; the last one to go
    /// releases it (`node_ref.rs`).
    handle: TokenRef,
}

// A token's state is consistent at every point user code can observe (no
// user code runs under its locks), so it is safe to use after a caught panic,
// whatever the user's cause type is.
impl std::panic::UnwindSafe for CancelToken {}
impl std::panic::RefUnwindSafe for CancelToken {}

impl Default for CancelToken {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("reason", &self.reason())
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl CancelToken {
    fn from_node(node: NodeArc) -> Self {
        CancelToken {
            handle: TokenRef::new(node),
        }
    }

    #[inline]
    pub(crate) fn node(&self) -> &NodeArc {
        self.handle.node()
    }

    /// A new token, not cancelled, with no parent.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::from_node(Node::root(None))
    }

    /// A child token: cancelled whenever this one is, with the same cause,
    /// but cancelling it leaves this one alone ([F3](crate#F3)).
    ///
    /// If this token is already cancelled, the child is born cancelled.
    ///
    /// ```
    /// let parent = cancelkit::CancelToken::new();
    /// let child = parent.child();
    /// child.cancel();
    /// assert!(!parent.is_cancelled());
    /// ```
    pub fn child(&self) -> CancelToken {
        Self::from_node(Node::child(self.node(), None))
    }

    /// A token cancelled as soon as **any** of `parents` is, with that
    /// parent's cause. It is itself a child of each of them: dropping it
    /// removes it from all of them, so long-lived parents do not leak.
    ///
    /// With no parents, it is a plain new token.
    ///
    /// ```
    /// use cancelkit::CancelToken;
    ///
    /// let user_gave_up = CancelToken::new();
    /// let server_stops = CancelToken::new();
    /// let either = CancelToken::any([&user_gave_up, &server_stops]);
    /// server_stops.cancel();
    /// assert!(either.is_cancelled());
    /// assert!(!user_gave_up.is_cancelled());
    /// ```
    pub fn any<'a>(parents: impl IntoIterator<Item = &'a CancelToken>) -> CancelToken {
        let parents: Vec<NodeArc> = parents.into_iter().map(|t| t.node().clone()).collect();
        match parents.as_slice() {
            [] => Self::new(),
            [one] => Self::from_node(Node::child(one, None)),
            many => Self::from_node(Node::linked(many)),
        }
    }

    /// Cancels the token and all its descendants, with kind
    /// [`CancelKind::Explicit`] at the caller's location.
    ///
    /// Returns `true` if this call cancelled it, `false` if it already was
    /// (idempotent; the first cause wins). The walk over the descendants is
    /// iterative and runs on the calling thread: each token's waiters are
    /// woken as soon as that token is marked, callbacks run once every
    /// descendant is marked, and both happen with no lock held. When this
    /// returns, every descendant reports cancelled (a descendant that another
    /// thread is cancelling at that very moment has its own subtree finished
    /// by that thread), and a `false` return means the token already reports
    /// cancelled.
    ///
    /// # Panics
    ///
    /// If an [`on_cancel`](CancelToken::on_cancel) callback panics, the
    /// other callbacks still run and the token is fully cancelled; then the
    /// first panic is resumed here (unless the thread is already panicking).
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// assert!(token.cancel());
    /// assert!(!token.cancel());
    /// assert!(token.is_cancelled());
    /// ```
    #[track_caller]
    pub fn cancel(&self) -> bool {
        self.cancel_at(CancelKind::Explicit, None, Location::caller())
    }

    /// Cancels with a kind and a cause of your own ([F6](crate#F6)).
    ///
    /// Returns `true` if this call cancelled the token; if it was already
    /// cancelled, the earlier cause stays and `cause` is dropped.
    ///
    /// # Panics
    ///
    /// As [`cancel`](CancelToken::cancel), if a callback panics.
    ///
    /// ```
    /// use cancelkit::{CancelToken, token::CancelKind};
    ///
    /// let token = CancelToken::new();
    /// token.cancel_with(CancelKind::Shutdown, std::io::Error::other("SIGTERM"));
    /// token.cancel_with(CancelKind::Explicit, std::io::Error::other("too late"));
    /// let why = token.reason().unwrap();
    /// assert_eq!(why.kind(), CancelKind::Shutdown);
    /// assert_eq!(why.cause().unwrap().to_string(), "SIGTERM");
    /// ```
    #[track_caller]
    pub fn cancel_with<E>(&self, kind: CancelKind, cause: E) -> bool
    where
        E: Into<Box<dyn Error + Send + Sync + 'static>>,
    {
        self.cancel_at(kind, Some(cause.into()), Location::caller())
    }

    pub(crate) fn cancel_at(
        &self,
        kind: CancelKind,
        cause: Option<Box<dyn Error + Send + Sync + 'static>>,
        location: &'static Location<'static>,
    ) -> bool {
        if self.is_cancelled() {
            return false;
        }
        node::cancel(self.node(), Cancelled::with(kind, cause, location))
    }

    /// Whether the token has been cancelled: one `Acquire` load, wait-free.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// assert!(!token.is_cancelled());
    /// token.cancel();
    /// assert!(token.is_cancelled());
    /// ```
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.node().is_cancelled()
    }

    /// Why the token was cancelled, or `None` if it was not ([F6](crate#F6)).
    ///
    /// Descendants cancelled through this token report the same value.
    ///
    /// ```
    /// use cancelkit::{CancelToken, token::CancelKind};
    ///
    /// let token = CancelToken::new();
    /// assert!(token.reason().is_none());
    /// token.cancel();
    /// assert_eq!(token.reason().unwrap().kind(), CancelKind::Explicit);
    /// ```
    pub fn reason(&self) -> Option<Cancelled> {
        self.node().reason()
    }

    /// Runs `f` once when the token is cancelled; immediately, on this
    /// thread, if it already is.
    ///
    /// Dropping the returned guard unregisters `f`. **Once that drop
    /// returns, `f` has either finished or will never start** — even if a
    /// cancel is running on another thread, or an earlier callback of the
    /// same cancel dropped the guard. If `f` is running on another thread
    /// at that moment, the drop waits for it to finish; a guard dropped
    /// from inside its own callback returns at once.
    ///
    /// `f` runs on the thread that cancels the token (for a deadline, the
    /// runtime thread that runs its timer task), after the whole tree is
    /// marked cancelled, with no lock of the token held — so it may use the
    /// token freely. A panicking `f` does not stop the other callbacks and
    /// does not poison the token (see [`cancel`](CancelToken::cancel)).
    /// If the token can no longer be cancelled — every clone dropped and no
    /// child left — before it is, `f` is dropped without running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use cancelkit::CancelToken;
    ///
    /// let runs = Arc::new(AtomicUsize::new(0));
    /// let token = CancelToken::new();
    /// let guard = token.on_cancel({
    ///     let runs = runs.clone();
    ///     move |why| {
    ///         assert_eq!(why.kind(), cancelkit::token::CancelKind::Explicit);
    ///         runs.fetch_add(1, Ordering::SeqCst);
    ///     }
    /// });
    /// token.cancel();
    /// token.cancel();
    /// assert_eq!(runs.load(Ordering::SeqCst), 1);
    /// drop(guard);
    /// ```
    pub fn on_cancel<F>(&self, f: F) -> OnCancel
    where
        F: FnOnce(&Cancelled) + Send + 'static,
    {
        let cell = callback::new(f);
        match self.node().add_entry(Entry::Callback(cell.clone())) {
            Ok(key) => OnCancel {
                registration: Some((self.node().clone(), key, cell)),
            },
            Err(Entry::Callback(f)) => {
                let why = self
                    .reason()
                    .expect("add_entry refuses only when cancelled");
                node::run_callbacks(vec![f], &why);
                OnCancel { registration: None }
            }
            Err(_) => unreachable!("we added a callback"),
        }
    }

    /// Waits until the token is cancelled.
    ///
    /// ```text
    /// async fn cancelled(&self);
    /// ```
    ///
    /// Completes at once if the token is already cancelled. Waiting
    /// allocates nothing: the future itself is the waiting task's entry in
    /// the token's list of waiters, so it is `!Unpin` (pin it to poll it by
    /// hand; `.await` and `select!` do that).
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
            token: self,
            wait: Wait::new(self.node(), false),
        }
    }

    /// Like [`cancelled`](CancelToken::cancelled), but owns the token, so the
    /// future is `'static` and can be moved into a task.
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
            token: self,
            waiter: node::Waiter::new(),
        }
    }

    /// Runs `fut` until it completes or the token is cancelled ([F5](crate#F5)).
    ///
    /// Gives `Ok(output)` if `fut` completes first, and `Err(Cancelled)` —
    /// the token's [reason](CancelToken::reason) — once the token is
    /// cancelled, after dropping `fut`.
    ///
    /// The returned future holds a clone of the token and borrows nothing,
    /// so it can be spawned as it is:
    /// `rt.spawn(token.run_until_cancelled(fut))`.
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
    ///
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, SpawnerExt, rt::Smol};
    /// let rt = Smol::new().unwrap();
    /// let token = CancelToken::new();
    /// // Owned: spawn it as it is.
    /// let task = rt.spawn(token.run_until_cancelled(std::future::pending::<()>()));
    /// token.cancel();
    /// assert!(rt.block_on(task).unwrap().is_err());
    /// # }
    /// ```
    pub fn run_until_cancelled<F: Future>(&self, fut: F) -> WithCancel<F> {
        WithCancel {
            fut: Some(fut),
            cancelled: self.clone().cancelled_owned(),
            first: true,
        }
    }

    /// A guard that cancels this token (kind
    /// [`CancelKind::GuardDropped`], located where the guard was made) when dropped, unless
    /// [disarmed](DropGuard::disarm) ([F4](crate#F4)).
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
    #[track_caller]
    pub fn drop_guard(self) -> DropGuard {
        DropGuard {
            token: Some(self),
            location: Location::caller(),
        }
    }

    /// A guard that cancels this token only if it is dropped while the
    /// thread is panicking — when the code holding it unwinds — and
    /// otherwise does nothing.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// {
    ///     let _guard = token.clone().drop_guard_on_panic();
    /// }
    /// assert!(!token.is_cancelled(), "no panic, no cancel");
    ///
    /// let t2 = token.clone();
    /// let _ = std::thread::spawn(move || {
    ///     let _guard = t2.drop_guard_on_panic();
    ///     panic!("worker failed");
    /// })
    /// .join();
    /// assert!(token.is_cancelled());
    /// ```
    #[track_caller]
    pub fn drop_guard_on_panic(self) -> PanicGuard {
        PanicGuard {
            token: Some(self),
            location: Location::caller(),
        }
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

#[cfg(all(test, not(loom)))]
mod tests;
