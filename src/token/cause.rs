//! Why a token was cancelled: [`CancelKind`], an optional user cause, and
//! the source location of the cancel, carried by [`Cancelled`].

use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

/// What kind of event cancelled a token.
///
/// # Examples
///
/// ```
/// use cancelkit::{CancelToken, token::CancelKind};
///
/// let token = CancelToken::new();
/// token.cancel();
/// assert_eq!(token.reason().unwrap().kind(), CancelKind::Explicit);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelKind {
    /// Somebody called [`cancel`](crate::CancelToken::cancel) or
    /// [`cancel_with`](crate::CancelToken::cancel_with).
    Explicit,
    /// The token's deadline passed.
    DeadlineExceeded,
    /// A task group is shutting down.
    Shutdown,
    /// A [`DropGuard`](crate::token::DropGuard) or
    /// [`PanicGuard`](crate::token::PanicGuard) was dropped.
    GuardDropped,
    /// Another cancellation system, such as a tokio-util token this token
    /// follows, fired.
    External,
    /// A task of a fail-fast [`TaskGroup`](crate::TaskGroup) failed; the
    /// cause says which and how.
    TaskFailed,
    /// The task this token is the scope of ([`scope::current`](crate::scope::current))
    /// was cancelled: its [`Task`](crate::Task) handle was dropped, aborted
    /// or cancelled, or its runtime shut down.
    TaskCancelled,
    /// The peer that asked for the work went away before it was done: an
    /// HTTP client closed its connection or reset its stream while the
    /// request's handler still ran ([W3](crate#W3), see
    /// [`wire::TokenService`](crate::wire)).
    Disconnected,
}

impl CancelKind {
    fn describe(self) -> &'static str {
        match self {
            CancelKind::Explicit => "cancelled",
            CancelKind::DeadlineExceeded => "deadline exceeded",
            CancelKind::Shutdown => "shutting down",
            CancelKind::GuardDropped => "cancelled by a dropped guard",
            CancelKind::External => "cancelled externally",
            CancelKind::TaskFailed => "a sibling task failed",
            CancelKind::TaskCancelled => "its task was cancelled",
            CancelKind::Disconnected => "the client went away",
        }
    }
}

struct Inner {
    kind: CancelKind,
    location: &'static Location<'static>,
    cause: Option<Box<dyn Error + Send + Sync + 'static>>,
}

/// Why an operation was cancelled: the error of
/// [`run_until_cancelled`](crate::CancelToken::run_until_cancelled) and
/// [`with_cancel`](crate::token::CancelFutureExt::with_cancel), and what
/// [`CancelToken::reason`](crate::CancelToken::reason) returns.
///
/// It carries the [`CancelKind`], the optional user cause given to
/// [`cancel_with`](crate::CancelToken::cancel_with) (also its
/// [`Error::source`]), and the source location of the call that cancelled.
/// Every descendant of a cancelled token reports the same `Cancelled`.
///
/// One pointer wide; cloning it is one reference-count increment.
///
/// # Examples
///
/// ```
/// use cancelkit::{CancelToken, token::CancelKind};
///
/// #[derive(Debug)]
/// struct Overloaded;
/// impl std::fmt::Display for Overloaded {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("server overloaded")
///     }
/// }
/// impl std::error::Error for Overloaded {}
///
/// let parent = CancelToken::new();
/// let child = parent.child();
/// parent.cancel_with(CancelKind::Explicit, Overloaded);
/// let why = child.reason().unwrap();
/// assert_eq!(why.kind(), CancelKind::Explicit);
/// assert_eq!(why.cause().unwrap().to_string(), "server overloaded");
/// assert!(why.location().file().ends_with(".rs"));
/// ```
#[derive(Clone)]
pub struct Cancelled {
    inner: Arc<Inner>,
}

impl Cancelled {
    /// A plain, explicit cancellation at the caller's location, for
    /// futures of your own that report cancellation.
    ///
    /// ```
    /// let err = cancelkit::token::Cancelled::new();
    /// assert_eq!(err.kind(), cancelkit::token::CancelKind::Explicit);
    /// ```
    #[track_caller]
    pub fn new() -> Self {
        Self::with(CancelKind::Explicit, None, Location::caller())
    }

    pub(crate) fn with(
        kind: CancelKind,
        cause: Option<Box<dyn Error + Send + Sync + 'static>>,
        location: &'static Location<'static>,
    ) -> Self {
        Cancelled {
            inner: Arc::new(Inner {
                kind,
                location,
                cause,
            }),
        }
    }

    /// What kind of event cancelled.
    ///
    /// ```
    /// assert_eq!(cancelkit::token::Cancelled::new().kind(), cancelkit::token::CancelKind::Explicit);
    /// ```
    pub fn kind(&self) -> CancelKind {
        self.inner.kind
    }

    /// The user's cause, if the token was cancelled with one.
    ///
    /// ```
    /// assert!(cancelkit::token::Cancelled::new().cause().is_none());
    /// ```
    pub fn cause(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.inner.cause.as_deref()
    }

    /// Where the cancel was requested: the caller of `cancel`,
    /// `cancel_with`, the deadline's constructor, or the guard's drop.
    ///
    /// ```
    /// let err = cancelkit::token::Cancelled::new();
    /// assert_eq!(err.location().line(), line!() - 1);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.inner.location
    }

    /// Whether two values stem from the same cancellation.
    ///
    /// ```
    /// let parent = cancelkit::CancelToken::new();
    /// let child = parent.child();
    /// parent.cancel();
    /// assert!(parent.reason().unwrap().same_as(&child.reason().unwrap()));
    /// ```
    pub fn same_as(&self, other: &Cancelled) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Default for Cancelled {
    #[track_caller]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Cancelled");
        d.field("kind", &self.inner.kind);
        if let Some(cause) = &self.inner.cause {
            d.field("cause", &format_args!("{cause}"));
        }
        d.field("location", &format_args!("{}", self.inner.location))
            .finish()
    }
}

/// Prints the kind and the location, not the cause: the cause is the
/// error's [`source`](Error::source), and error-chain printers (anyhow,
/// eyre, `{:#}`) print sources themselves — printing it here too would show
/// it twice. Read it with [`Cancelled::cause`].
///
/// ```
/// use std::error::Error;
/// use cancelkit::{CancelToken, token::CancelKind};
///
/// let token = CancelToken::new();
/// token.cancel_with(CancelKind::Shutdown, std::io::Error::other("SIGTERM"));
/// let why = token.reason().unwrap();
/// assert!(!why.to_string().contains("SIGTERM"));
/// assert_eq!(why.source().unwrap().to_string(), "SIGTERM");
/// ```
impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.inner.kind.describe())?;
        write!(f, " (at {})", self.inner.location)
    }
}

impl Error for Cancelled {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner
            .cause
            .as_deref()
            .map(|c| c as &(dyn Error + 'static))
    }
}
