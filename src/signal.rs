//! The [`Signal`] trait: a one-shot, level-triggered, broadcast event.
//!
//! A signal starts lowered and is raised at most once; once raised it stays
//! raised ("level-triggered"), and everybody waiting sees it ("broadcast").
//! [`CancelToken`](crate::CancelToken) is a signal; so are the OS signal
//! listeners of the runtime adapters ([`OsSignal`]); [`SignalExt::or`]
//! combines two.
//!
//! Code that must stop "when something happens" should accept
//! `impl Signal` rather than a particular type, so its callers can pass a
//! token, a Ctrl-C listener, or both combined.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A one-shot, level-triggered, broadcast event.
///
/// # Contract
///
/// - [`is_raised`](Signal::is_raised) never blocks. Once it has returned
///   `true`, it returns `true` forever.
/// - [`raised`](Signal::raised) returns a future that completes immediately
///   if the signal is already raised and otherwise once it is raised. Any
///   number of such futures may wait at once; raising the signal wakes all
///   of them. A raise that races with the creation or first poll of the
///   future is never lost.
///
/// # Examples
///
/// ```
/// use cancelkit::{CancelToken, Signal};
///
/// async fn wait_for(stop: impl Signal) -> &'static str {
///     stop.raised().await;
///     "stopped"
/// }
///
/// let token = CancelToken::new();
/// token.cancel();
/// assert!(token.is_raised());
/// assert_eq!(futures_lite::future::block_on(wait_for(token)), "stopped");
/// ```
pub trait Signal {
    /// The future returned by [`raised`](Signal::raised).
    type Raised<'a>: Future<Output = ()> + Send + 'a
    where
        Self: 'a;

    /// Whether the signal has been raised.
    fn is_raised(&self) -> bool;

    /// A future that completes once the signal is raised.
    ///
    /// ```text
    /// async fn raised(&self);
    /// ```
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing, since the signal is
    /// level-triggered.
    fn raised(&self) -> Self::Raised<'_>;
}

impl<S: Signal + ?Sized> Signal for &S {
    type Raised<'a>
        = S::Raised<'a>
    where
        Self: 'a;

    fn is_raised(&self) -> bool {
        (**self).is_raised()
    }

    fn raised(&self) -> Self::Raised<'_> {
        (**self).raised()
    }
}

/// Combinators for [`Signal`]s, implemented for every signal.
///
/// ```
/// use cancelkit::{CancelToken, Signal, signal::SignalExt};
///
/// let (a, b) = (CancelToken::new(), CancelToken::new());
/// a.cancel();
/// assert!(a.or(b).is_raised());
/// ```
pub trait SignalExt: Signal + Sized {
    /// A signal raised as soon as either `self` or `other` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{CancelToken, Signal, signal::SignalExt};
    ///
    /// let a = CancelToken::new();
    /// let b = CancelToken::new();
    /// let either = a.clone().or(b.clone());
    /// assert!(!either.is_raised());
    /// b.cancel();
    /// assert!(either.is_raised());
    /// futures_lite::future::block_on(either.raised());
    /// ```
    fn or<S: Signal>(self, other: S) -> Or<Self, S> {
        Or {
            first: self,
            second: other,
        }
    }
}

impl<S: Signal> SignalExt for S {}

/// The signal returned by [`SignalExt::or`]: raised when either is.
///
/// ```
/// use cancelkit::{CancelToken, Signal, signal::{Or, SignalExt}};
///
/// let either: Or<CancelToken, CancelToken> = CancelToken::new().or(CancelToken::new());
/// assert!(!either.is_raised());
/// ```
#[derive(Debug, Clone)]
pub struct Or<A, B> {
    first: A,
    second: B,
}

impl<A: Signal, B: Signal> Signal for Or<A, B> {
    type Raised<'a>
        = OrRaised<A::Raised<'a>, B::Raised<'a>>
    where
        Self: 'a;

    fn is_raised(&self) -> bool {
        self.first.is_raised() || self.second.is_raised()
    }

    fn raised(&self) -> Self::Raised<'_> {
        OrRaised {
            first: self.first.raised(),
            second: self.second.raised(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`Or::raised`](Signal::raised). Cancel safe,
    /// like the futures it combines.
    ///
    /// ```
    /// use cancelkit::{CancelToken, Signal, signal::SignalExt};
    ///
    /// let (a, b) = (CancelToken::new(), CancelToken::new());
    /// let either = a.or(b.clone());
    /// b.cancel();
    /// futures_lite::future::block_on(either.raised());
    /// ```
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct OrRaised<A, B> {
        #[pin]
        first: A,
        #[pin]
        second: B,
    }
}

impl<A: Future<Output = ()>, B: Future<Output = ()>> Future for OrRaised<A, B> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.first.poll(cx).is_ready() || this.second.poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The object-safe form of [`Signal`], for `Box<dyn DynSignal>`.
///
/// Every [`Signal`] implements it.
///
/// # Examples
///
/// ```
/// use cancelkit::{CancelToken, signal::DynSignal};
///
/// let signals: Vec<Box<dyn DynSignal + Send + Sync>> =
///     vec![Box::new(CancelToken::new()), Box::new(CancelToken::new())];
/// assert!(signals.iter().all(|s| !s.is_raised_dyn()));
/// ```
pub trait DynSignal {
    /// See [`Signal::is_raised`].
    fn is_raised_dyn(&self) -> bool;
    /// See [`Signal::raised`].
    fn raised_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<S: Signal + ?Sized> DynSignal for S {
    fn is_raised_dyn(&self) -> bool {
        self.is_raised()
    }

    fn raised_boxed(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.raised())
    }
}

/// A [`Signal`] raised when a background wait completes: how runtime
/// adapters expose OS signals (`ctrl_c()`, `terminate()`), usable for
/// anything else that is "a future that may some day complete".
///
/// The wait runs as a [`Task`](crate::Task) on the given spawner and is
/// cancelled when the `OsSignal` is dropped. The `OsSignal` holds a clone
/// of the spawner, so the runtime it runs on lives at least as long as the
/// `OsSignal` (a temporary runtime, as in `Smol::new()?.ctrl_c()?`, is not
/// shut down under it) — and no longer: the listening task holds no clone,
/// so once the `OsSignal` and the other handles are dropped the runtime
/// shuts down, even one that only runs inside `block_on` ([D6](crate#D6)). Several
/// `OsSignal`s may listen for the same OS signal at once: each sees it.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{CancelToken, Runtime, Signal, rt::Smol, signal::OsSignal};
///
/// let rt = Smol::new().unwrap();
/// let go = CancelToken::new();
/// let signal = OsSignal::listen(&rt, go.clone().cancelled_owned());
/// assert!(!signal.is_raised());
/// go.cancel();
/// rt.block_on(signal.raised());
/// assert!(signal.is_raised());
/// # }
/// ```
#[derive(Debug)]
pub struct OsSignal {
    raised: crate::CancelToken,
    /// Dropped first: cancels the listening task...
    _listener: crate::Task<()>,
    /// ...then lets the runtime go, if this was its last handle.
    _runtime: KeepAlive,
}

/// A type-erased clone of the spawner an `OsSignal` listens on.
struct KeepAlive(#[allow(dead_code)] Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepAlive")
    }
}

impl OsSignal {
    /// Spawns `wait` on `spawner`; the signal is raised when it completes.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, Signal, rt::Smol, signal::OsSignal};
    ///
    /// let rt = Smol::new().unwrap();
    /// let at_once = OsSignal::listen(&rt, async {});
    /// rt.block_on(at_once.raised());
    /// # }
    /// ```
    pub fn listen<S, F>(spawner: &S, wait: F) -> OsSignal
    where
        S: crate::Spawner + Clone + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let raised = crate::CancelToken::new();
        let listener = crate::SpawnerExt::spawn(spawner, {
            let raised = raised.clone();
            async move {
                wait.await;
                raised.cancel_with(crate::token::CancelKind::External, SignalReceived);
            }
        });
        OsSignal {
            raised,
            _listener: listener,
            _runtime: KeepAlive(Box::new(spawner.clone())),
        }
    }

    /// The token this signal raises (cancelled with kind
    /// [`CancelKind::External`](crate::token::CancelKind::External)), for code that
    /// wants a [`CancelToken`](crate::CancelToken) rather than a signal.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use cancelkit::{Runtime, rt::Smol, signal::OsSignal};
    ///
    /// let rt = Smol::new().unwrap();
    /// let signal = OsSignal::listen(&rt, async {});
    /// let child = signal.token().child();
    /// rt.block_on(child.cancelled());
    /// # }
    /// ```
    pub fn token(&self) -> &crate::CancelToken {
        &self.raised
    }
}

#[derive(Debug)]
struct SignalReceived;

impl std::fmt::Display for SignalReceived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("signal received")
    }
}

impl std::error::Error for SignalReceived {}

impl Signal for OsSignal {
    type Raised<'a> = crate::token::WhenCancelled<'a>;

    fn is_raised(&self) -> bool {
        self.raised.is_cancelled()
    }

    fn raised(&self) -> crate::token::WhenCancelled<'_> {
        self.raised.cancelled()
    }
}
