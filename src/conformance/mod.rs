//! The conformance suite: cancelkit's behaviour contract, as tests that run
//! on any [`Runtime`].
//!
//! Every line of the contract ([D1](crate#D1)–[D6](crate#D6) for task
//! handles, [F1](crate#F1)–[F6](crate#F6) for tokens, [T1](crate#T1)–[T3](crate#T3)
//! for time, [B1](crate#B1)–[B4](crate#B4) for task groups,
//! [S1](crate#S1)–[S5](crate#S5) for cancel scopes,
//! [L1](crate#L1)–[L4](crate#L4) for local tasks and blocking work) is one
//! or more [`Case`]s, written once, generic over the runtime. The same cases run on
//! every adapter (tokio, smol, compio, monoio, async-std and the local forms) and the
//! sim in this crate's own tests, and you can run them on your runtime or your adapter
//! with one macro call:
//!
//! ```text
//! // tests/conformance.rs of your crate, with cancelkit's `conformance` feature on
//! cancelkit::conformance_tests!(my_runtime, || MyRuntime::new());
//! ```
//!
//! That expands to one `#[test]` per case inside `mod my_runtime`, so a
//! failure names its runtime and its case, e.g.
//! `my_runtime::d1_dropping_task_cancels_it`, and
//! `cargo test my_runtime::` runs just yours.
//!
//! Two more lists need more of a runtime, each with its macro:
//! [`local_cases`] ([L1](crate#L1), [L2](crate#L2)) a
//! [`LocalSpawner`] — [`local_conformance_tests!`](crate::local_conformance_tests)
//! also runs every case above on [`Local`], each spawn going through the
//! local spawner — and [`blocking_cases`] ([L3](crate#L3),
//! [L4](crate#L4)) a [`SpawnBlocking`] pool
//! ([`blocking_conformance_tests!`](crate::blocking_conformance_tests)).
//!
//! # What a runtime must provide
//!
//! The constructor passed to the macro is called once per case (and some
//! cases call it again to get a runtime they can shut down), so it should
//! build a **fresh, owned** runtime — one whose pending tasks are dropped
//! when its last handle is dropped ([D6](crate#D6)). `R` must be `Clone +
//! Send + Sync + 'static`, so the cases can move handles into tasks. The
//! constructor runs on the case's own thread, which is where a local
//! runtime binds its executor.
//!
//! # Traces
//!
//! Each case records a trace: the events it observed, in an order that its
//! own synchronisation makes deterministic (the suite orders events by
//! awaiting signals, never by sleeping; where a shutdown's grace must pass
//! for one member while another finishes, the grace is a tenth of the
//! patience), with the values it read — task
//! outcomes, poll counts the case pins, cancellation kinds, shutdown
//! reports' counts and names — recorded before it checks them, and never a
//! time, a duration or an address. A correct runtime produces exactly
//! the same trace as every other; [`run`] returns it so that a test can
//! compare runtimes (this crate's `tests/conformance.rs` does).
//!
//! # Hangs
//!
//! Every wait in a case is bounded by [`Config::patience`], measured by a
//! watchdog thread on the real clock — not by the runtime's timer, which may
//! be the thing under test. Each case also runs on a thread of its own, so a
//! hang outside the waits (a runtime that never finishes being created or
//! dropped) or a panic is reported as a [`Failure`] too; a hung thread is
//! left behind.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::blocking::SpawnBlocking;
use crate::local::LocalSpawner;
use crate::{CancelToken, Runtime, Spawner, Timer};

mod cases;

/// Settings for a conformance run.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let config = cancelkit::conformance::Config::default().patience(Duration::from_secs(30));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How long a case waits for something that should happen "promptly"
    /// before it reports a hang; also the length of timers that a correct
    /// runtime should never let fire during a case. Default: 10 s.
    pub patience: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            patience: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Sets [`patience`](Config::patience).
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = cancelkit::conformance::Config::default().patience(Duration::from_millis(500));
    /// assert_eq!(config.patience, Duration::from_millis(500));
    /// ```
    pub fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }
}

/// A case of the suite failed: what was expected and what happened.
///
/// ```
/// let f = cancelkit::conformance::Failure::new("the task was polled after drop");
/// assert_eq!(f.message(), "the task was polled after drop");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    case: &'static str,
    message: String,
}

impl Failure {
    /// A failure with this message (the runner fills in the case's name).
    ///
    /// ```
    /// let f = cancelkit::conformance::Failure::new("hung");
    /// assert_eq!(f.to_string(), "hung");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            case: "",
            message: message.into(),
        }
    }

    /// The name of the case that failed, e.g. `d1_dropping_task_cancels_it`.
    ///
    /// ```
    /// assert_eq!(cancelkit::conformance::Failure::new("x").case(), "");
    /// ```
    pub fn case(&self) -> &'static str {
        self.case
    }

    /// What went wrong.
    ///
    /// ```
    /// assert_eq!(cancelkit::conformance::Failure::new("x").message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.case.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.case, self.message)
        }
    }
}

impl std::error::Error for Failure {}

/// The events a case observed, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    pub(crate) fn record(&self, event: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event.into());
    }

    pub(crate) fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What a case gets to work with.
pub(crate) struct Ctx<'a, R> {
    pub(crate) rt: R,
    pub(crate) new_runtime: &'a dyn Fn() -> R,
    pub(crate) trace: Trace,
    pub(crate) config: &'a Config,
}

impl<R: Runtime> Ctx<'_, R> {
    /// Blocks on `fut` on the case's runtime, failing with "hung while
    /// {what}" if it takes longer than the patience.
    pub(crate) fn block_on<F: Future>(&self, what: &str, fut: F) -> Result<F::Output, Failure> {
        bounded(&self.rt, self.config.patience, what, fut)
    }
}

/// `rt.block_on(fut)`, bounded by a watchdog thread on the real clock.
pub(crate) fn bounded<R: Runtime, F: Future>(
    rt: &R,
    patience: Duration,
    what: &str,
    fut: F,
) -> Result<F::Output, Failure> {
    let expired = CancelToken::new();
    let (disarm, disarmed) = mpsc::channel::<()>();
    let watchdog = {
        let expired = expired.clone();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(patience) {
                expired.cancel();
            }
        })
    };
    let out = rt.block_on(futures_lite::future::or(async { Some(fut.await) }, async {
        expired.cancelled().await;
        None
    }));
    drop(disarm);
    let _ = watchdog.join();
    out.ok_or_else(|| Failure::new(format!("hung for {patience:?} while {what}")))
}

/// One case of the suite: a contract line (or one claim of it), runnable on
/// any runtime `R`.
///
/// Get them from [`cases`]; run one with [`run`].
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{conformance, rt::Smol};
///
/// for case in conformance::cases::<Smol>() {
///     println!("{} {}: {}", case.id(), case.name(), case.claim());
/// }
/// # }
/// ```
pub struct Case<R> {
    name: &'static str,
    id: &'static str,
    claim: &'static str,
    run: fn(&Ctx<'_, R>) -> Result<(), Failure>,
}

impl<R> Case<R> {
    /// The case's name, as used for its `#[test]`, e.g.
    /// `d1_dropping_task_cancels_it`.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let first = &cancelkit::conformance::cases::<cancelkit::rt::Smol>()[0];
    /// assert!(first.name() == "d1_dropping_task_cancels_it");
    /// # }
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The contract line it checks, e.g. `D1`.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let first = &cancelkit::conformance::cases::<cancelkit::rt::Smol>()[0];
    /// assert!(first.id() == "D1");
    /// # }
    /// ```
    pub fn id(&self) -> &'static str {
        self.id
    }

    /// The claim it checks, in one sentence.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// let first = &cancelkit::conformance::cases::<cancelkit::rt::Smol>()[0];
    /// assert!(first.claim().starts_with("dropping a Task"));
    /// # }
    /// ```
    pub fn claim(&self) -> &'static str {
        self.claim
    }
}

impl<R> fmt::Debug for Case<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// Every case of the suite, in contract order.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{conformance, rt::Smol};
///
/// let cases = conformance::cases::<Smol>();
/// assert!(cases.iter().any(|c| c.id() == "D1"));
/// # }
/// ```
pub fn cases<R>() -> Vec<Case<R>>
where
    R: Runtime + Clone + Send + Sync + 'static,
{
    crate::__conformance_cases!(list())
}

/// Runs one case on a fresh runtime from `new_runtime` and returns its
/// trace.
///
/// # Errors
///
/// The [`Failure`] of the case: which claim broke, or what hung.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{conformance::{self, Config}, rt::Smol};
///
/// let new_runtime = || Smol::new().unwrap();
/// for case in conformance::cases() {
///     let trace = conformance::run(new_runtime, &case, &Config::default()).unwrap();
///     assert!(!trace.is_empty());
/// }
/// # }
/// ```
pub fn run<R, F>(new_runtime: F, case: &Case<R>, config: &Config) -> Result<Vec<String>, Failure>
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Send + 'static,
{
    // The case runs on a thread of its own, so that a hang *outside* the
    // runtime's `block_on` (a constructor or a `Drop` that never returns,
    // which the watchdog of `Ctx::block_on` cannot see) fails the case
    // instead of hanging the caller; the stuck thread is left behind. A
    // panic (a runtime's, or a `Sim`'s deadlock report) fails it too.
    let (done, outcome) = mpsc::channel();
    let (run, name, config) = (case.run, case.name, config.clone());
    let patience = config.patience;
    let spawned = std::thread::Builder::new()
        .name(format!("conformance {name}"))
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                let cx = Ctx {
                    rt: new_runtime(),
                    new_runtime: &new_runtime,
                    trace: Trace::default(),
                    config: &config,
                };
                let result = run(&cx);
                let events = cx.trace.events();
                drop(cx); // the runtime too: its shutdown is part of the case
                result.map(|()| events)
            }));
            let _ = done.send(result);
        });
    if let Err(e) = spawned {
        return Err(Failure {
            case: name,
            message: format!("could not start the case's thread: {e}"),
        });
    }
    // Every wait inside is bounded by `patience`; this bounds the rest.
    let limit = patience * 6;
    let result = match outcome.recv_timeout(limit) {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(Failure::new(format!(
            "panicked: {}",
            crate::task::panic_text(&*panic)
        ))),
        Err(_) => Err(Failure::new(format!(
            "hung for {limit:?} outside the runtime's block_on (creating or dropping a runtime?)"
        ))),
    };
    result.map_err(|mut failure| {
        failure.case = name;
        failure
    })
}

/// Runs the case called `name`, for [`conformance_tests!`] (not meant to
/// be called directly; hidden from the docs).
///
/// ```
/// # #[cfg(feature = "smol")]
/// cancelkit::conformance::__run_test(|| cancelkit::rt::Smol::new().unwrap(), "f1_clones_share_one_idempotent_flag");
/// ```
///
/// # Panics
///
/// Panics with the failure's message if the case fails, or if there is no
/// case of that name.
#[doc(hidden)]
pub fn __run_test<R, F>(new_runtime: F, name: &str)
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Send + 'static,
{
    run_named(cases::<R>(), new_runtime, name);
}

/// Every case for local runtimes ([L1](crate#L1), [L2](crate#L2)): what
/// only a [`LocalSpawner`] can show — futures and outputs that are not
/// `Send`, spawning off the executor's thread, a local runtime's
/// shutdown, groups of local tasks. [`local_conformance_tests!`](crate::local_conformance_tests) runs them
/// with every case of [`cases`] on [`Local`].
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{conformance, rt::SmolLocal};
///
/// let ids: Vec<_> = conformance::local_cases::<SmolLocal>().iter().map(|c| c.id()).collect();
/// assert!(ids.contains(&"L1") && ids.contains(&"L2"));
/// # }
/// ```
pub fn local_cases<R>() -> Vec<Case<R>>
where
    R: Runtime + LocalSpawner + Clone + Send + Sync + 'static,
{
    crate::__local_conformance_cases!(list())
}

/// Runs the local case called `name`, for [`local_conformance_tests!`]
/// (not meant to be called directly; hidden from the docs).
///
/// ```
/// # #[cfg(feature = "smol")]
/// cancelkit::conformance::__run_local_test(
///     || cancelkit::rt::SmolLocal::new().unwrap(),
///     "l2_dropping_a_local_group_drops_its_tasks",
/// );
/// ```
///
/// # Panics
///
/// Panics with the failure's message if the case fails, or if there is no
/// local case of that name.
#[doc(hidden)]
pub fn __run_local_test<R, F>(new_runtime: F, name: &str)
where
    R: Runtime + LocalSpawner + Clone + Send + Sync + 'static,
    F: Fn() -> R + Send + 'static,
{
    run_named(local_cases::<R>(), new_runtime, name);
}

/// Runs the case called `name` of `list`, panicking with its failure.
fn run_named<R, F>(list: Vec<Case<R>>, new_runtime: F, name: &str)
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Send + 'static,
{
    let case = list
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no conformance case named {name}"));
    if let Err(failure) = run(new_runtime, &case, &Config::default()) {
        panic!(
            "conformance case {} ({}) failed: {failure}",
            case.id, case.claim
        );
    }
}

/// Every case for runtimes with a blocking pool ([L3](crate#L3),
/// [L4](crate#L4)): a closure's synchronous view of its token, its
/// handle, and a group's shutdown reporting stubborn work as abandoned.
/// Separate from [`cases`] because a runtime need not have a
/// [`SpawnBlocking`] pool; [`blocking_conformance_tests!`](crate::blocking_conformance_tests)
/// runs them.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::{conformance, rt::Smol};
///
/// let ids: Vec<_> = conformance::blocking_cases::<Smol>().iter().map(|c| c.id()).collect();
/// assert_eq!(ids, ["L3", "L4"]);
/// # }
/// ```
pub fn blocking_cases<R>() -> Vec<Case<R>>
where
    R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static,
{
    crate::__blocking_conformance_cases!(list())
}

/// Runs the blocking case called `name`, for
/// [`blocking_conformance_tests!`](crate::blocking_conformance_tests) (not
/// meant to be called directly; hidden from the docs).
///
/// ```
/// # #[cfg(feature = "smol")]
/// cancelkit::conformance::__run_blocking_test(
///     || cancelkit::rt::Smol::new().unwrap(),
///     "l4_shutdown_reports_blocking_work_that_ignores_it_as_abandoned",
/// );
/// ```
///
/// # Panics
///
/// Panics with the failure's message if the case fails, or if there is no
/// blocking case of that name.
#[doc(hidden)]
pub fn __run_blocking_test<R, F>(new_runtime: F, name: &str)
where
    R: Runtime + SpawnBlocking + Clone + Send + Sync + 'static,
    F: Fn() -> R + Send + 'static,
{
    run_named(blocking_cases::<R>(), new_runtime, name);
}

/// One `#[test]` per case of [`blocking_cases`] ([L3](crate#L3),
/// [L4](crate#L4)), in a module named `$name`, for a runtime with a
/// [`SpawnBlocking`] pool; use it beside
/// [`conformance_tests!`](crate::conformance_tests) (with another module
/// name).
///
/// ```
/// # #[cfg(feature = "smol")]
/// cancelkit::blocking_conformance_tests!(smol_blocking, || cancelkit::rt::Smol::new().unwrap());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! blocking_conformance_tests {
    ($name:ident, $new_runtime:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__blocking_conformance_cases!(tests($new_runtime));
        }
    };
}

/// Expands a list of cases `name => "ID", "claim";` in mode `list` (a
/// `Vec<Case<R>>`, inside this crate) or `tests` (one `#[test]` per case,
/// run by `$runner`): shared by the three lists below.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_expand {
    (tests ($new_runtime:expr) $runner:ident; $($name:ident => $id:literal, $claim:literal;)*) => {
        $(
            #[test]
            fn $name() {
                let new_runtime = $new_runtime;
                $crate::conformance::$runner(new_runtime, stringify!($name));
            }
        )*
    };
    (list () $runner:ident; $($name:ident => $id:literal, $claim:literal;)*) => {
        vec![$(
            $crate::conformance::Case {
                name: stringify!($name),
                id: $id,
                claim: $claim,
                run: $crate::conformance::cases::$name::<R>,
            },
        )*]
    };
}

/// The list of blocking cases, as [`__conformance_cases!`] for the rest.
#[doc(hidden)]
#[macro_export]
macro_rules! __blocking_conformance_cases {
    ($mode:ident $args:tt) => {
        $crate::__conformance_expand! { $mode $args __run_blocking_test;
            l3_blocking_work_sees_its_token_and_its_handle_resolves_when_it_returns => "L3",
                "blocking work gives its value; abort or dropping the handle cancels its token, which it sees synchronously (wait_timeout returns early, with the cause); a panic is Panicked";
            l4_shutdown_reports_blocking_work_that_ignores_it_as_abandoned => "L4",
                "a group's shutdown reports blocking work still running after the grace as abandoned, never finished or forced, and returns without waiting for it";
        }
    };
}

/// A local runtime seen through its [`LocalSpawner`]: every spawn —
/// the cases' own, a [`TaskGroup`](crate::TaskGroup)'s, a signal
/// listener's — goes through
/// [`spawn_local_detached`](LocalSpawner::spawn_local_detached), so that
/// [`cases`] run on `Local(rt)` prove [L1](crate#L1) and [L2](crate#L2):
/// local tasks and groups behave as D1–D6 and B1–B4 say.
///
/// For the suite: its [`Spawner`] panics off the executor's thread (which
/// the cases never do), where a real runtime handle would not.
///
/// ```
/// # #[cfg(feature = "smol")] {
/// use cancelkit::conformance::{self, Config, Local};
/// use cancelkit::rt::SmolLocal;
///
/// let new_runtime = || Local(SmolLocal::new().unwrap());
/// let d1 = &conformance::cases()[0];
/// assert!(conformance::run(new_runtime, d1, &Config::default()).is_ok());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Local<R>(pub R);

impl<R: LocalSpawner> Spawner for Local<R> {
    #[track_caller]
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.0.spawn_local_detached(fut);
    }
}

impl<R: LocalSpawner> LocalSpawner for Local<R> {
    #[track_caller]
    fn spawn_local_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + 'static,
    {
        self.0.spawn_local_detached(fut);
    }
}

impl<R: Timer> Timer for Local<R> {
    type Sleep = R::Sleep;

    fn now(&self) -> std::time::Instant {
        self.0.now()
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> R::Sleep {
        self.0.sleep_until(deadline)
    }
}

impl<R: Runtime + LocalSpawner> Runtime for Local<R> {
    #[track_caller]
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.0.block_on(fut)
    }
}

impl<R: SpawnBlocking> SpawnBlocking for Local<R> {
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.0.spawn_blocking_detached(f);
    }
}

/// [`conformance_tests!`](crate::conformance_tests) for a local runtime (one with a
/// [`LocalSpawner`]): one `#[test]` per case of [`cases`], run on
/// [`Local`] — every spawn through the local spawner — and one per case of
/// [`local_cases`], in a module named `$name`.
///
/// ```
/// # #[cfg(feature = "smol")]
/// cancelkit::local_conformance_tests!(smol_local, || cancelkit::rt::SmolLocal::new().unwrap());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! local_conformance_tests {
    ($name:ident, $new_runtime:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(tests({
                let new_runtime = $new_runtime;
                move || $crate::conformance::Local(new_runtime())
            }));
            $crate::__local_conformance_cases!(tests($new_runtime));
        }
    };
}

/// The list of local cases, as [`__conformance_cases!`] for the rest.
#[doc(hidden)]
#[macro_export]
macro_rules! __local_conformance_cases {
    ($mode:ident $args:tt) => {
        $crate::__conformance_expand! { $mode $args __run_local_test;
            l1_a_local_task_holds_and_returns_values_that_are_not_send => "L1",
                "a local task holds and returns values that are not Send; abort drops them, a panic is Panicked";
            l1_a_local_runtime_shut_down_cancels_its_pending_local_tasks => "L1",
                "when a local runtime shuts down, its pending local tasks give Cancelled and their futures are dropped";
            l1_a_local_spawn_off_the_executors_thread_panics => "L1",
                "spawn_local off the executor's thread panics (a task's or a group's); the future never runs and the group does not keep it";
            l2_a_local_group_shuts_down_like_any_group => "L2",
                "a group's shutdown waits for its local tasks, forces and names the rest, and drops their state";
            l2_dropping_a_local_group_drops_its_tasks => "L2",
                "dropping a group of local tasks cancels its token and drops their futures";
        }
    };
}

/// Expands to one `#[test]` per conformance case, in a module named `$name`,
/// running on runtimes built by `$new_runtime` (an expression of type
/// `impl Fn() -> R`).
///
/// A failing test's path names the runtime and the case, such as
/// `tokio_multi_thread::d1_dropping_task_cancels_it`.
///
/// # Examples
///
/// In a file under `tests/` (in a doctest the generated tests compile but
/// are not run):
///
/// ```
/// # #[cfg(feature = "smol")]
/// cancelkit::conformance_tests!(smol, || cancelkit::rt::Smol::new().unwrap());
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($name:ident, $new_runtime:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__conformance_cases!(tests($new_runtime));
        }
    };
}

/// The list of cases, `name => "ID", "claim";`: the single source of truth
/// for both [`cases`] (mode `list`) and [`conformance_tests!`] (mode
/// `tests`).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($mode:ident $args:tt) => {
        $crate::__conformance_expand! { $mode $args __run_test;
            d1_dropping_task_cancels_it => "D1",
                "dropping a Task drops its future promptly, without waiting for the task's timers, and never polls it again";
            d2_detached_task_runs_to_completion => "D2",
                "a detached task runs to completion with no handle";
            d3_await_gives_the_output => "D3",
                "awaiting a task that completes gives Ok(output)";
            d3_await_after_abort_gives_cancelled => "D3",
                "awaiting a task that was cancelled gives Err(JoinError::Cancelled)";
            d3_panic_is_caught_and_spares_the_runtime => "D3",
                "a panicking task gives Err(JoinError::Panicked) with its payload, and its siblings and the runtime carry on";
            d3_values_that_panic_when_dropped_spare_the_runtime => "D3",
                "an output or panic payload that panics when dropped — by a detached task or with its handle — never reaches the runtime or the caller";
            d4_abort_neither_waits_nor_consumes => "D4",
                "abort() returns at once, keeps the handle usable, and is idempotent";
            d4_cancel_returns_after_the_future_is_dropped => "D4",
                "cancel().await returns None only after the future was dropped";
            d4_cancel_of_a_finished_task_returns_its_output => "D4",
                "cancel().await on a task that already finished returns Some(output)";
            d4_panic_is_never_swallowed => "D4",
                "a task's panic reaches whoever cancels or aborts and awaits it";
            d5_cancel_lands_only_at_await_points => "D5",
                "a cancel requested mid-section lets the section finish and lands at the next await";
            d6_runtime_shutdown_cancels_pending_tasks => "D6",
                "when the runtime shuts down, awaiting its pending tasks gives Err(JoinError::Cancelled) without hanging";
            d6_a_dropped_signal_listener_does_not_keep_its_runtime_alive => "D6",
                "a runtime shuts down once its last handle and its OsSignal listeners are dropped, even one that runs tasks only inside block_on";
            f1_clones_share_one_idempotent_flag => "F1",
                "clones of a token share state, cancel() is idempotent, is_cancelled() sees it on every thread";
            f2_one_cancel_wakes_every_waiter => "F2",
                "one cancel() wakes every task waiting on cancelled()";
            f2_cancelled_is_ready_at_once_when_already_cancelled => "F2",
                "cancelled() on a cancelled token completes on its first poll";
            f2_cancel_racing_registration_is_never_lost => "F2",
                "a cancel() racing with a waiter's registration always wakes it";
            f3_child_follows_its_parent_but_not_the_reverse => "F3",
                "a child is cancelled with its parent, cancelling a child leaves its parent alone, and a late child is born cancelled";
            f3_grandchild_stays_reachable_after_the_middle_is_dropped => "F3",
                "a grandchild is still cancelled through the root after the middle token was dropped";
            f4_drop_guard_cancels_unless_disarmed => "F4",
                "a drop guard cancels its token when dropped, unless disarmed";
            f5_with_cancel_drops_the_future_when_cancelled => "F5",
                "run_until_cancelled gives Err(Cancelled) and drops the future when the token fires first";
            f6_every_descendant_reports_the_first_cause => "F6",
                "the first cancel's kind and cause win and reach every descendant";
            f6_deadline_fires_not_early_as_deadline_exceeded => "F6",
                "a token's deadline cancels it, not early, with DeadlineExceeded, and children inherit it";
            f6_child_deadline_is_the_earlier_of_its_own_and_its_parents => "F6",
                "a child's effective deadline is the earlier of its own and its parent's";
            t1_timeout_gives_the_output_in_time => "T1",
                "timeout gives Ok(output) when the future completes in time";
            t1_timeout_elapses_after_dropping_the_future => "T1",
                "timeout gives Err(Elapsed), not early, after dropping the future";
            t2_ready_future_wins_even_at_zero => "T2",
                "the future is polled before the clock: a ready future wins at Duration::ZERO and at a past deadline";
            t3_sleep_never_completes_early => "T3",
                "sleep and sleep_until never complete before their deadline by the timer's clock";
            t3_deadline_elapses_at_its_instant => "T3",
                "deadline(instant) elapses at, not before, the instant";
            t3_far_deadlines_mean_never => "T3",
                "Duration::MAX and far deadlines mean never, without panicking";
            b1_shutdown_lets_tasks_finish_within_the_grace => "B1",
                "shutdown cancels the group's token (kind Shutdown, grace deadline visible) and waits for tasks that finish in time";
            b1_shutdown_forces_tasks_after_the_grace_and_names_them => "B1",
                "after the grace period the rest are dropped, by the time shutdown returns, and named in the report";
            b2_dropping_a_group_cancels_and_drops_its_tasks => "B2",
                "dropping a group cancels its token and drops its tasks";
            b3_a_panic_spares_siblings_unless_fail_fast => "B3",
                "a panic leaves siblings alone, unless the group is fail-fast, and is reported";
            b4_a_group_shuts_down_on_a_signal => "B4",
                "shutdown_on waits for any Signal, then shuts down";
            s1_a_shield_outlives_its_cancelled_task => "S1",
                "a shield runs to completion after its task was aborted, and the handle resolves (Cancelled) only then";
            s1_cancel_and_group_shutdown_wait_for_shields => "S1",
                "cancel().await and a group's shutdown return only after the task's shield finished";
            s2_a_shield_past_its_grace_is_dropped_and_reported => "S2",
                "a shield still running when its grace ends is dropped, not early, and reported with its task and both locations";
            s3_cleanup_runs_once_on_cancel_with_the_cause => "S3",
                "async cleanup runs exactly once when its task is cancelled, with the cause, before cancel() returns";
            s3_cleanup_never_runs_on_completion => "S3",
                "cleanup never runs for a task that completes, even if its token fires afterwards";
            s3_cleanup_registered_after_the_cancel_runs_at_once => "S3",
                "cleanup registered on an already cancelled token runs at once, beside the task";
            s3_cleanup_has_its_own_deadline => "S3",
                "a cleanup sees its own deadline, and is dropped and reported when it passes";
            s4_current_is_cancelled_with_its_task => "S4",
                "current() is cancelled (TaskCancelled) with its task; checkpoint() yields once, and fails once the scope is cancelled";
            s4_outside_a_task_the_scope_is_never_cancelled => "S4",
                "outside a task, current() is never cancelled, checkpoint() succeeds and cleanup is refused";
            s5_move_on_after_expires_and_spares_the_outer_scope => "S5",
                "move_on_after drops its body at its deadline, not early, gives None, and leaves the enclosing scope alone; fail_after gives Elapsed";
            s5_nested_scopes_see_the_earliest_deadline_and_the_outer_cancel => "S5",
                "a nested scope's deadline is the earlier of its own and the enclosing one's, and the enclosing scope's cancel reaches inside";
        }
    };
}
