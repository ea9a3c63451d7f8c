//! Runtime adapters, one per cargo feature, and the object-safe forms of
//! the runtime traits.
//!
//! Each adapter is a public module with a small cloneable handle type
//! implementing [`Runtime`](crate::Runtime) and its sleep future. Every
//! adapter offers the same two kinds of constructor, with the same names
//! and return types:
//!
//! | | wraps what the program already runs | owns a runtime (tests, CLIs) |
//! |---|---|---|
//! | [`Tokio`] (`tokio`) | [`Tokio::current()`] — the runtime of `#[tokio::main]`; [`Tokio::from_handle`] | [`Tokio::new()`] (multi-thread), [`Tokio::current_thread()`] |
//! | [`Smol`] (`smol`) | [`Smol::current()`] — smol's global executor (`smol::spawn`); [`Smol::from_executor`] | [`Smol::new()`], [`Smol::with_threads`] |
//! | [`TokioLocal`] (`tokio`), local tasks | — | [`TokioLocal::new()`] (a `LocalSet` on a current-thread runtime) |
//! | [`SmolLocal`] (`smol`), local tasks | — | [`SmolLocal::new()`] (a `LocalExecutor`) |
//! | [`Compio`] (`compio`), local and `Send` tasks | — | [`Compio::new()`] (a compio runtime on the calling thread) |
//! | [`Monoio`] (`monoio`), local and `Send` tasks | — | [`Monoio::new()`] (a monoio runtime on the calling thread) |
//! | [`AsyncStd`] (`async-std`) | [`AsyncStd::current()`] — async-std's global runtime | [`AsyncStd::new()`] (its tasks are cancelled when it is dropped) |
//!
//! `current()` returns `Result<_, NoRuntime>` (an error, never a panic, when
//! there is nothing to wrap); `new()` returns `std::io::Result<_>`.
//!
//! The local adapters — and [`Compio`] and [`Monoio`], whose runtimes are
//! thread-per-core —
//! run `!Send` futures ([`LocalSpawner`](crate::local::LocalSpawner)) on
//! the thread that made them, and are full runtimes besides: their handles
//! are `Send + Sync` and spawn `Send` futures from anywhere. They have no
//! `current()`: a `LocalSet`, `LocalExecutor` or compio or monoio runtime the program
//! already runs cannot be reached from outside it.
//!
//! The adapters are written using only cancelkit's public API, exactly as a
//! third-party adapter would be (the sources live in `adapters/` in the
//! repository).
//!
//! [`DynSpawner`] and [`DynTimer`] are the object-safe forms of
//! [`Spawner`](crate::Spawner) and [`Timer`](crate::Timer);
//! [`SharedRuntime`](crate::SharedRuntime) is the object form of
//! [`RuntimeHandle`](crate::RuntimeHandle) that drives everything.

use std::fmt;

pub use crate::runtime::{BoxedFuture, DynSpawner, DynTimer};

cfg_tokio! {
    #[path = "../adapters/tokio.rs"]
    pub mod tokio;
    pub use self::tokio::{Tokio, TokioLocal};
}

#[cfg(any(feature = "smol", feature = "compio", feature = "monoio"))]
#[path = "../adapters/tracker.rs"]
mod tracker;

#[cfg(any(
    feature = "smol",
    feature = "async-std",
    feature = "compio",
    feature = "monoio"
))]
#[path = "../adapters/os_signals.rs"]
mod os_signals;

#[cfg(any(feature = "compio", feature = "monoio"))]
#[path = "../adapters/remote.rs"]
mod remote;

cfg_smol! {
    #[path = "../adapters/smol.rs"]
    pub mod smol;
    pub use self::smol::{Smol, SmolLocal};
}

cfg_compio! {
    #[path = "../adapters/compio.rs"]
    pub mod compio;
    pub use self::compio::Compio;
}

cfg_monoio! {
    #[path = "../adapters/monoio.rs"]
    pub mod monoio;
    pub use self::monoio::Monoio;
}

cfg_async_std! {
    #[path = "../adapters/async_std.rs"]
    pub mod async_std;
    pub use self::async_std::AsyncStd;
}

/// `current()` found no runtime to wrap: it was called outside one.
///
/// ```
/// let err = cancelkit::rt::NoRuntime::new("tokio", "call it inside #[tokio::main]");
/// assert!(err.to_string().contains("no tokio runtime"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRuntime {
    runtime: &'static str,
    hint: &'static str,
}

impl NoRuntime {
    /// An error for `runtime`, with a hint saying what to do instead (for
    /// adapters written outside cancelkit).
    ///
    /// ```
    /// let err = cancelkit::rt::NoRuntime::new("my-rt", "start one first");
    /// assert_eq!(err.to_string(), "no my-rt runtime to wrap here: start one first");
    /// ```
    pub fn new(runtime: &'static str, hint: &'static str) -> Self {
        NoRuntime { runtime, hint }
    }
}

impl fmt::Display for NoRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no {} runtime to wrap here: {}", self.runtime, self.hint)
    }
}

impl std::error::Error for NoRuntime {}
