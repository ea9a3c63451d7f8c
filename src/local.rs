//! Local tasks: futures that are not `Send` (they hold an `Rc`, a
//! `RefCell`, a thread-bound handle) and run on one thread, with the same
//! [`Task`] handle and the same contract as every other task
//! ([L1](crate#L1)).
//!
//! - [`LocalSpawner`] is one method, `spawn_local_detached`, implemented by
//!   a local executor's adapter ([`rt::TokioLocal`](crate::rt::TokioLocal) on a tokio
//!   `LocalSet`, [`rt::SmolLocal`](crate::rt::SmolLocal) on an
//!   `async_executor::LocalExecutor`).
//! - [`LocalSpawnerExt::spawn_local`] is written once on top: it returns a
//!   [`Task`] — the very type [`SpawnerExt::spawn`](crate::SpawnerExt::spawn)
//!   returns, with the same harness — so dropping it cancels the task,
//!   `detach`, `abort` and `cancel().await` behave as [D1](crate#D1)–[D6](crate#D6) say, a panic
//!   is [`JoinError::Panicked`](crate::JoinError::Panicked) and a runtime
//!   shut down with the task pending gives
//!   [`JoinError::Cancelled`](crate::JoinError::Cancelled). The handle is
//!   `Send` exactly when the output is, as tokio's is.
//! - A local adapter is also a full [`Runtime`](crate::Runtime): its
//!   handle is `Send + Sync`, spawns `Send` futures from any thread, and has
//!   a [`Timer`](crate::Timer), so [`TaskGroup`](crate::TaskGroup) (with
//!   [`TaskGroup::spawn_local`](crate::TaskGroup::spawn_local)),
//!   [`timeout`](crate::timeout) and the whole conformance suite work on it
//!   unchanged.
//! - [`ThreadBound`] is how an adapter keeps its `!Send` executor inside a
//!   `Send` handle: reachable only on the executor's thread, with an error
//!   that says so anywhere else.
//!
//! Spawning a local task from any other thread than the executor's is a
//! panic at the caller's line that names the executor and both threads —
//! never a silent detach onto some other executor.
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use std::{cell::RefCell, rc::Rc};
//! use cancelkit::local::LocalSpawnerExt;
//! use cancelkit::{Runtime, rt::TokioLocal};
//!
//! let rt = TokioLocal::new().unwrap();
//! let log = Rc::new(RefCell::new(Vec::new())); // not Send
//! let task = rt.spawn_local({
//!     let log = log.clone();
//!     async move {
//!         log.borrow_mut().push("ran");
//!         log.borrow().len()
//!     }
//! });
//! assert_eq!(rt.block_on(task).unwrap(), 1);
//! assert_eq!(*log.borrow(), ["ran"]);
//! # }
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

use crate::task::Task;

/// Runs futures that are not `Send` in the background, on one thread.
///
/// # Contract
///
/// As [`Spawner`](crate::Spawner)'s, on one thread:
/// [`spawn_local_detached`](LocalSpawner::spawn_local_detached) must
/// arrange for the future to be polled to completion on the executor's
/// thread, re-polling it whenever its waker is woken (from any thread),
/// without the caller waiting; if the executor shuts down first, it must
/// **drop** the future (at the latest when its thread ends), never leak it.
///
/// Called from a thread where the executor cannot take the future, it must
/// panic at the caller's line (`#[track_caller]`) saying which executor and
/// which thread it needs — [`ThreadBound::get`] does — and never hand the
/// future to some other executor.
///
/// # Examples
///
/// A complete local spawner over `futures`' `LocalPool`:
///
/// ```
/// use std::future::Future;
/// use std::rc::Rc;
/// use cancelkit::local::{LocalSpawner, LocalSpawnerExt};
/// use futures::executor::LocalPool;
/// use futures::task::LocalSpawnExt as _;
///
/// struct Pool(futures::executor::LocalSpawner);
///
/// impl LocalSpawner for Pool {
///     fn spawn_local_detached<F>(&self, fut: F)
///     where
///         F: Future<Output = ()> + 'static,
///     {
///         // `spawn_local` fails only once the pool is gone: then the
///         // future is dropped, as the contract asks.
///         let _ = self.0.spawn_local(fut);
///     }
/// }
///
/// let mut pool = LocalPool::new();
/// let spawner = Pool(pool.spawner());
/// let shared = Rc::new(5); // not Send
/// let task = spawner.spawn_local(async move { *shared + 1 });
/// assert_eq!(pool.run_until(task).unwrap(), 6);
/// ```
pub trait LocalSpawner {
    /// Runs `fut` in the background on the executor's thread, detached.
    ///
    /// # Panics
    ///
    /// Adapters panic when called from a thread whose executor this is
    /// not; see the trait-level contract.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use std::{cell::Cell, rc::Rc};
    /// use cancelkit::{Runtime, local::LocalSpawner, rt::SmolLocal};
    ///
    /// let rt = SmolLocal::new().unwrap();
    /// let ran = Rc::new(Cell::new(false));
    /// rt.spawn_local_detached({
    ///     let ran = ran.clone();
    ///     async move { ran.set(true) }
    /// });
    /// rt.block_on(async {
    ///     while !ran.get() {
    ///         futures_lite::future::yield_now().await;
    ///     }
    /// });
    /// # }
    /// ```
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static;
}

/// What every [`LocalSpawner`] can do, written once: spawn a `!Send` future
/// and get its [`Task`] handle.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use std::rc::Rc;
/// use cancelkit::local::LocalSpawnerExt;
/// use cancelkit::{Runtime, rt::SmolLocal};
///
/// let rt = SmolLocal::new().unwrap();
/// let name = Rc::new("local");
/// assert_eq!(rt.block_on(rt.spawn_local(async move { *name })).unwrap(), "local");
/// # }
/// ```
pub trait LocalSpawnerExt: LocalSpawner {
    /// Spawns `fut` on the executor's thread and returns its [`Task`].
    ///
    /// The handle has the contract of every [`Task`] ([L1](crate#L1)):
    /// dropping it cancels the task, and so on. It is `Send` when the
    /// output is.
    ///
    /// # Panics
    ///
    /// At the caller's line, when called from another thread than the
    /// executor's (see [`LocalSpawner`]).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use std::rc::Rc;
    /// use cancelkit::local::LocalSpawnerExt;
    /// use cancelkit::{JoinError, Runtime, rt::TokioLocal};
    ///
    /// let rt = TokioLocal::new().unwrap();
    /// let task = rt.spawn_local(std::future::pending::<Rc<u8>>());
    /// task.abort();
    /// assert!(matches!(rt.block_on(task), Err(JoinError::Cancelled)));
    /// # }
    /// ```
    #[track_caller]
    fn spawn_local<F>(&self, fut: F) -> Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (task, harness) = crate::task::new(fut);
        self.spawn_local_detached(harness);
        task
    }
}

impl<S: LocalSpawner + ?Sized> LocalSpawnerExt for S {}

impl<S: LocalSpawner + ?Sized> LocalSpawner for &S {
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static,
    {
        (**self).spawn_local_detached(fut);
    }
}

thread_local! {
    /// The values bound to this thread, by key: few (one per local
    /// executor), so a scan beats a hash.
    static BOUND: RefCell<Vec<(u64, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// Keys of [`ThreadBound`]s, unique across threads: a key is found only in
/// its own thread's [`BOUND`].
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// A `!Send` value — a local executor — held in a `Send + Sync` handle,
/// reachable only on the thread that made it.
///
/// The value stays in its thread's storage; the `ThreadBound` is only a
/// key to it. Dropping the `ThreadBound` on that thread drops the value
/// there and then (once the `Rc`s that [`get`](ThreadBound::get) handed out
/// are gone too); dropping it on another thread leaves the value to be
/// dropped with its thread's storage, when that thread ends (the main
/// thread's never is: the process exits first). Code that runs while that
/// storage is torn down — a task dropped with its executor, holding a
/// clone of the executor's handle — finds the value gone
/// ([`WrongThread`]), and never panics there (a panic in a thread-local
/// destructor would abort the process).
///
/// The adapters in [`rt`](crate::rt) keep their local executors this way; a
/// local adapter of your own can too.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use cancelkit::local::ThreadBound;
///
/// let bound = ThreadBound::new("my-executor", Cell::new(1)); // Cell is !Sync
/// bound.get().set(2);
/// assert_eq!(bound.get().get(), 2);
/// std::thread::scope(|s| {
///     s.spawn(|| {
///         let err = bound.try_get().unwrap_err();
///         assert!(err.to_string().contains("my-executor runs on thread"));
///     });
/// });
/// ```
pub struct ThreadBound<T: 'static> {
    key: u64,
    home: ThreadId,
    executor: &'static str,
    // `fn() -> T`: the handle owns no `T` here, so it is `Send + Sync`.
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> ThreadBound<T> {
    /// Binds `value` to the calling thread; `executor` names it in errors.
    ///
    /// # Panics
    ///
    /// If called while the thread's storage is being torn down (from a
    /// thread-local destructor).
    ///
    /// ```
    /// let bound = cancelkit::local::ThreadBound::new("pool", 5);
    /// assert!(bound.is_home());
    /// ```
    pub fn new(executor: &'static str, value: T) -> Self {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        BOUND.with(|bound| bound.borrow_mut().push((key, Rc::new(value))));
        ThreadBound {
            key,
            home: std::thread::current().id(),
            executor,
            _value: PhantomData,
        }
    }

    /// The value, if the calling thread is its own and still has it.
    fn lookup(&self) -> Option<Rc<T>> {
        let found = BOUND
            .try_with(|bound| {
                let bound = bound.try_borrow().ok()?;
                let (_, value) = bound.iter().find(|(key, _)| *key == self.key)?;
                Some(value.clone())
            })
            .ok()
            .flatten()?;
        found.downcast::<T>().ok()
    }

    /// Whether the calling thread is the value's own (and the value is
    /// still there).
    ///
    /// ```
    /// let bound = cancelkit::local::ThreadBound::new("pool", 5);
    /// assert!(bound.is_home());
    /// assert!(!std::thread::scope(|s| s.spawn(|| bound.is_home()).join().unwrap()));
    /// ```
    pub fn is_home(&self) -> bool {
        self.lookup().is_some()
    }

    /// The value, on its own thread.
    ///
    /// # Errors
    ///
    /// [`WrongThread`] on any other thread, or on its own while the
    /// thread's storage is being torn down.
    ///
    /// ```
    /// let bound = cancelkit::local::ThreadBound::new("pool", 5);
    /// assert_eq!(*bound.try_get().unwrap(), 5);
    /// ```
    pub fn try_get(&self) -> Result<Rc<T>, WrongThread> {
        self.lookup().ok_or_else(|| WrongThread {
            executor: self.executor,
            home: self.home,
            ending: BOUND.try_with(|_| ()).is_err(),
        })
    }

    /// The value, on its own thread.
    ///
    /// # Panics
    ///
    /// At the caller's line, where [`try_get`](ThreadBound::try_get)
    /// fails, with [`WrongThread`]'s message.
    ///
    /// ```should_panic
    /// let bound = cancelkit::local::ThreadBound::new("pool", 5);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| drop(bound.get())).join().unwrap(); // panics: not pool's thread
    /// });
    /// ```
    #[track_caller]
    pub fn get(&self) -> Rc<T> {
        match self.try_get() {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }
}

impl<T: 'static> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        // Off the home thread there is nothing here to remove; while the
        // home thread's storage is torn down, it is being dropped already.
        let value = BOUND
            .try_with(|bound| {
                let mut bound = bound.try_borrow_mut().ok()?;
                let at = bound.iter().position(|(key, _)| *key == self.key)?;
                Some(bound.swap_remove(at))
            })
            .ok()
            .flatten();
        // Outside the borrow: dropping an executor drops its tasks, which
        // may drop other thread-bound values.
        drop(value);
    }
}

impl<T: 'static> fmt::Debug for ThreadBound<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadBound")
            .field("executor", &self.executor)
            .field("home", &self.home)
            .finish_non_exhaustive()
    }
}

/// A local executor was reached from a thread other than its own (or from
/// its own, while the thread's storage is being torn down).
///
/// ```
/// let bound = cancelkit::local::ThreadBound::new("my-executor", ());
/// let err = std::thread::scope(|s| s.spawn(|| bound.try_get().unwrap_err()).join().unwrap());
/// assert_eq!(err.executor(), "my-executor");
/// assert_eq!(err.home(), std::thread::current().id());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongThread {
    executor: &'static str,
    home: ThreadId,
    ending: bool,
}

impl WrongThread {
    /// The executor's name, as given to [`ThreadBound::new`].
    ///
    /// ```
    /// let bound = cancelkit::local::ThreadBound::new("pool", ());
    /// let err = std::thread::scope(|s| s.spawn(|| bound.try_get().unwrap_err()).join().unwrap());
    /// assert_eq!(err.executor(), "pool");
    /// ```
    pub fn executor(&self) -> &'static str {
        self.executor
    }

    /// The executor's thread.
    ///
    /// ```
    /// let bound = cancelkit::local::ThreadBound::new("pool", ());
    /// let err = std::thread::scope(|s| s.spawn(|| bound.try_get().unwrap_err()).join().unwrap());
    /// assert_eq!(err.home(), std::thread::current().id());
    /// ```
    pub fn home(&self) -> ThreadId {
        self.home
    }

    /// Whether the calling thread is ending: its thread-local storage is
    /// being torn down (the error came from a destructor run by it). Code
    /// there must not block on an executor — most use thread-locals, and a
    /// panic there aborts the process.
    ///
    /// ```
    /// let bound = cancelkit::local::ThreadBound::new("pool", ());
    /// let err = std::thread::scope(|s| s.spawn(|| bound.try_get().unwrap_err()).join().unwrap());
    /// assert!(!err.thread_is_ending());
    /// ```
    pub fn thread_is_ending(&self) -> bool {
        self.ending
    }
}

impl fmt::Display for WrongThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cancelkit: {} runs on thread {:?}, not this one: its local tasks are spawned, and \
             it is run (block_on), only on that thread — from one of its tasks or inside its \
             block_on; from elsewhere, spawn a Send future with spawn()",
            self.executor, self.home
        )
    }
}

impl std::error::Error for WrongThread {}
