//! A deterministic, single-threaded runtime with a virtual clock, and a
//! cancel-safety checker built on it — tools for testing code that uses
//! cancelkit.
//!
//! # [`Sim`]
//!
//! - [`Timer::now`] is virtual. When every task is idle, the clock jumps to
//!   the next timer, so a test full of sleeps runs in microseconds, and the
//!   times it observes are exact. A sleep made
//!   [`FAR_FUTURE`](crate::time::FAR_FUTURE) or more ahead (where
//!   `sleep(Duration::MAX)` lands) is "never": the clock does not jump to it.
//! - Virtual time also moves while a task spins: once a task (or the main
//!   future) has woken itself during its own poll [`BUSY_POLLS_PER_TICK`]
//!   times in a row, the clock jumps to the next timer even though tasks are
//!   still ready, so code that only yields cannot freeze time (a timeout or
//!   a group's grace around it ends, as it would on a real runtime). Polls
//!   that make progress never move the clock.
//! - The next task to run is picked among the ready ones by a seeded
//!   generator: a run is reproducible from its seed, and different seeds
//!   explore different interleavings. [`check_seeds`] runs a test body
//!   across many seeds and reports the first failing one, which replays the
//!   same failure.
//! - Blocking work ([`SpawnBlocking`](crate::blocking::SpawnBlocking)) runs
//!   on threads of its own, in lockstep with the simulation: a closure
//!   starts when the scheduler picks it, and its
//!   [`wait_timeout`](crate::blocking::BlockingToken::wait_timeout) waits in
//!   virtual time, so a cancel from a task reaches it at a reproducible point
//!   (see [`BLOCKING_TURN_LIMIT`] for a closure that keeps its turn too
//!   long).
//! - A deadlock — the main future pending, no task ready, no timer set — is
//!   reported (by [`Sim::try_block_on`], or as a panic from
//!   [`Runtime::block_on`]) naming the stuck tasks, instead of hanging.
//!
//! It passes the whole [conformance suite](crate::conformance), with the
//! same traces as the real runtimes.
//!
//! # Determinism
//!
//! Every task runs on the thread that calls `block_on`; blocking closures
//! run on threads of their own, but only one at a time and only while the
//! simulation waits for them (in lockstep), so they replay too — as long as
//! each stretch between two `wait_timeout`s takes less than
//! [`BLOCKING_TURN_LIMIT`]. A wake-up from any other OS thread still works,
//! but where it lands in the schedule is up to the OS, so a test that wants
//! to replay exactly should not use other threads.
//!
//! # Cancel safety
//!
//! [`check_cancel_safety`] runs a future once to count the points where it
//! suspends, then, for each of them, runs a fresh copy until exactly that
//! point, drops it, and checks an invariant — reporting the first point
//! where the invariant breaks, and its source location if the await there
//! was wrapped in [`mark`].

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::{Runtime, Spawner, Timer};

pub(crate) mod blocking;
mod check;

pub use blocking::BLOCKING_TURN_LIMIT;
pub use check::{Checked, Marked, SeedFailure, Violation, check_cancel_safety, check_seeds, mark};

type BoxTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How many times in a row a task (or the main future) may wake itself
/// during its own poll — spin, as a `yield_now` loop does — before the
/// clock moves to the next timer anyway. Without it, a task that only
/// yields would freeze virtual time, and a timeout or a shutdown grace
/// around it would never end — where a real runtime would, since its clock
/// moves while the task spins. Polls that make progress (a task that ends,
/// or waits for something else) never move the clock, however many there
/// are; the clock moves exactly to the next deadline, so no sleep ever ends
/// early.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, timeout, sim::Sim};
///
/// let sim = Sim::new();
/// // A future that only yields: without the rule, virtual time would
/// // freeze and the timeout could never elapse.
/// let spin = async {
///     loop {
///         futures_lite::future::yield_now().await;
///     }
/// };
/// assert!(sim.block_on(timeout(&sim, Duration::from_secs(1), spin)).is_err());
/// assert_eq!(sim.elapsed(), Duration::from_secs(1));
/// ```
pub const BUSY_POLLS_PER_TICK: u32 = 1_000;

struct Slot {
    /// `None` while the task is being polled.
    fut: Option<BoxTask>,
    /// Spawn order, for names and for telling slots' occupants apart.
    seq: u64,
    /// In the ready list already.
    ready: bool,
    /// How many polls in a row ended with the task having woken itself
    /// (see `BUSY_POLLS_PER_TICK`).
    spins: u32,
}

struct State {
    /// Virtual time elapsed since `Shared::base`.
    now: Duration,
    tasks: Slab<Slot>,
    ready: Vec<usize>,
    /// Pending sleeps, by (deadline, registration number).
    timers: BTreeMap<(Duration, u64), Waker>,
    next_timer: u64,
    next_seq: u64,
    rng: u64,
    seed: u64,
    /// A thread is inside `block_on`.
    running: bool,
    /// The last handle was dropped: nothing runs any more.
    shut_down: bool,
    /// Blocking closures running outside the lockstep (see
    /// [`BLOCKING_TURN_LIMIT`]): an idle simulation waits for them instead
    /// of reporting a deadlock.
    outside: usize,
}

struct Shared {
    /// The real instant virtual time 0 corresponds to.
    base: Instant,
    state: Mutex<State>,
    /// The main future of `block_on` was woken.
    main_woken: AtomicBool,
    /// The thread inside `block_on`, to unpark on wake-ups from elsewhere.
    runner: Mutex<Option<Thread>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unpark_runner(&self) {
        if let Some(t) = &*self.runner.lock().unwrap_or_else(PoisonError::into_inner) {
            t.unpark();
        }
    }

    /// xorshift64*: small, fast, and the same on every platform.
    fn next_random(state: &mut State) -> u64 {
        let mut x = state.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

struct TaskWaker {
    shared: Arc<Shared>,
    key: usize,
    seq: u64,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        {
            let mut state = self.shared.lock();
            let State { tasks, ready, .. } = &mut *state;
            match tasks.get_mut(self.key) {
                Some(slot) if slot.seq == self.seq && !slot.ready => {
                    slot.ready = true;
                    ready.push(self.key);
                }
                _ => return,
            }
        }
        self.shared.unpark_runner();
    }
}

struct MainWaker(Arc<Shared>);

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.main_woken.store(true, Ordering::SeqCst);
        self.0.unpark_runner();
    }
}

/// Shuts the simulation down when the last handle goes: every task's future
/// is dropped ([D6](crate#D6)), and the timers with it.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let (tasks, timers) = {
            let mut state = self.shared.lock();
            state.shut_down = true;
            state.ready.clear();
            (
                std::mem::take(&mut state.tasks),
                std::mem::take(&mut state.timers),
            )
        };
        // Outside the lock: dropping futures runs user destructors, which
        // may touch the simulation (and find it shut down).
        drop(tasks);
        drop(timers);
    }
}

/// A deterministic runtime with a virtual clock; see the [module
/// docs](crate::sim).
///
/// Cheap to clone; clones share the simulation. When the last clone is
/// dropped, the tasks still pending are dropped (their [`Task`](crate::Task)s
/// report `Cancelled`). As with the other runtimes, a task that holds a
/// clone keeps the simulation alive.
///
/// # Examples
///
/// An hour of sleeping, in no time, on an exact clock:
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, sim::Sim, timeout};
///
/// let sim = Sim::new();
/// let start = sim.now();
/// let out = sim.block_on(timeout(&sim, Duration::from_secs(3600), async {
///     sim.sleep(Duration::from_secs(1800)).await;
///     "done"
/// }));
/// assert_eq!(out, Ok("done"));
/// assert_eq!(sim.now() - start, Duration::from_secs(1800));
/// ```
#[derive(Clone)]
pub struct Sim {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Sim")
            .field("seed", &state.seed)
            .field("now", &state.now)
            .field("tasks", &state.tasks.len())
            .field("timers", &state.timers.len())
            .finish()
    }
}

impl Sim {
    /// A simulation with seed 0.
    ///
    /// ```
    /// assert_eq!(cancelkit::sim::Sim::new().seed(), 0);
    /// ```
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A simulation whose scheduling choices come from `seed`: the same seed
    /// gives the same run.
    ///
    /// ```
    /// assert_eq!(cancelkit::sim::Sim::with_seed(7).seed(), 7);
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        let shared = Arc::new(Shared {
            base: Instant::now(),
            state: Mutex::new(State {
                now: Duration::ZERO,
                tasks: Slab::new(),
                ready: Vec::new(),
                timers: BTreeMap::new(),
                next_timer: 0,
                next_seq: 0,
                // xorshift must not start at zero; mix the seed.
                rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                seed,
                running: false,
                shut_down: false,
                outside: 0,
            }),
            main_woken: AtomicBool::new(false),
            runner: Mutex::new(None),
        });
        Sim {
            _owner: Arc::new(Owner {
                shared: shared.clone(),
            }),
            shared,
        }
    }

    /// The seed this simulation was made with.
    ///
    /// ```
    /// assert_eq!(cancelkit::sim::Sim::with_seed(3).seed(), 3);
    /// ```
    pub fn seed(&self) -> u64 {
        self.shared.lock().seed
    }

    /// Virtual time elapsed since the simulation was made.
    ///
    /// ```
    /// use std::time::Duration;
    /// use cancelkit::{Runtime, Timer, sim::Sim};
    ///
    /// let sim = Sim::new();
    /// sim.block_on(sim.sleep(Duration::from_millis(250)));
    /// assert_eq!(sim.elapsed(), Duration::from_millis(250));
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.shared.lock().now
    }

    /// Runs every ready task until none is ready, without moving the
    /// clock. For checks that want the simulation quiet. (A task that yields
    /// for ever is always ready: with one, this does not return — use
    /// `block_on`, whose clock moves.)
    ///
    /// # Panics
    ///
    /// If called from inside the simulation (a task or `block_on`).
    ///
    /// ```
    /// use cancelkit::{CancelToken, SpawnerExt, sim::Sim};
    ///
    /// let sim = Sim::new();
    /// let done = CancelToken::new();
    /// sim.spawn({ let d = done.clone(); async move { d.cancel() } }).detach();
    /// sim.settle();
    /// assert!(done.is_cancelled());
    /// ```
    pub fn settle(&self) {
        let _running = self.enter();
        while !matches!(self.run_one_ready(), Ran::No) {}
    }

    /// Like [`Runtime::block_on`], but reports a deadlock as an error
    /// instead of panicking.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] when `fut` is pending and nothing can ever wake it: no
    /// task is ready and no timer is set (after a short grace for wake-ups
    /// from other OS threads). While a blocking closure runs outside the
    /// lockstep (past [`BLOCKING_TURN_LIMIT`]) no deadlock is reported: the
    /// simulation waits for it, as for any other thread that may wake it.
    ///
    /// # Panics
    ///
    /// If called from inside the simulation (nested `block_on`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cancelkit::{CancelToken, SpawnerExt, sim::Sim};
    ///
    /// let sim = Sim::new();
    /// let never = CancelToken::new();
    /// sim.spawn({ let n = never.clone(); async move { n.cancelled().await } }).detach();
    /// let err = sim.try_block_on(never.cancelled()).unwrap_err();
    /// assert_eq!(err.stuck(), ["task #0"]);
    /// ```
    pub fn try_block_on<F: Future>(&self, fut: F) -> Result<F::Output, Deadlock> {
        let _running = self.enter();
        self.drive(fut)
    }

    /// Marks the simulation as running on this thread until the returned
    /// guard drops — also when a task or the main future panics, so a
    /// caught panic leaves the simulation usable.
    fn enter(&self) -> Running<'_> {
        let mut state = self.shared.lock();
        assert!(
            !state.running,
            "Sim::block_on (or settle) called from inside the simulation"
        );
        state.running = true;
        drop(state);
        *self
            .shared
            .runner
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(std::thread::current());
        Running(self)
    }

    fn leave(&self) {
        *self
            .shared
            .runner
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.shared.lock().running = false;
    }

    fn drive<F: Future>(&self, fut: F) -> Result<F::Output, Deadlock> {
        let mut fut = pin!(fut);
        let main_waker = Waker::from(Arc::new(MainWaker(self.shared.clone())));
        let mut cx = Context::from_waker(&main_waker);
        self.shared.main_woken.store(true, Ordering::SeqCst);
        // Polls in a row in which the main future woke itself.
        let mut main_spins: u32 = 0;
        loop {
            if self.shared.main_woken.swap(false, Ordering::SeqCst) {
                if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                    return Ok(out);
                }
                if self.shared.main_woken.load(Ordering::SeqCst) {
                    main_spins += 1;
                } else {
                    main_spins = 0;
                }
            }
            // Spinning takes time: code that only yields must not freeze the
            // clock (a real runtime's would move on).
            if main_spins >= BUSY_POLLS_PER_TICK {
                main_spins = 0;
                if self.fire_next_timers() {
                    continue;
                }
            }
            // One task between two polls of the main future: a main future
            // that keeps waking itself (a `yield_now` loop) cannot starve
            // the tasks it waits for.
            match self.run_one_ready() {
                Ran::Spinning => {
                    self.fire_next_timers();
                    continue;
                }
                Ran::Yes => continue,
                Ran::No => {}
            }
            if self.shared.main_woken.load(Ordering::SeqCst) {
                continue;
            }
            if self.fire_next_timers() {
                continue;
            }
            // Nothing to do: only a wake-up from another thread can help.
            std::thread::park_timeout(Duration::from_millis(20));
            if self.shared.main_woken.load(Ordering::SeqCst) || !self.shared.lock().ready.is_empty()
            {
                continue;
            }
            let state = self.shared.lock();
            if state.outside > 0 {
                // A blocking closure runs on its own; it wakes its job when
                // it waits on its token or returns.
                continue;
            }
            return Err(Deadlock {
                at: state.now,
                stuck: state
                    .tasks
                    .iter()
                    .map(|(_, slot)| format!("task #{}", slot.seq))
                    .collect(),
            });
        }
    }

    /// Polls one ready task, picked by the seeded generator. Says whether
    /// there was one, and whether it has now spun `BUSY_POLLS_PER_TICK`
    /// times in a row.
    fn run_one_ready(&self) -> Ran {
        let (key, seq, mut fut) = {
            let mut state = self.shared.lock();
            if state.ready.is_empty() {
                return Ran::No;
            }
            let pick = (Shared::next_random(&mut state) % state.ready.len() as u64) as usize;
            let key = state.ready.swap_remove(pick);
            let Some(slot) = state.tasks.get_mut(key) else {
                return Ran::Yes;
            };
            slot.ready = false;
            let Some(fut) = slot.fut.take() else {
                return Ran::Yes;
            };
            (key, slot.seq, fut)
        };
        let waker = Waker::from(Arc::new(TaskWaker {
            shared: self.shared.clone(),
            key,
            seq,
        }));
        let done = fut.as_mut().poll(&mut Context::from_waker(&waker)).is_ready();
        let mut state = self.shared.lock();
        if done {
            if state.tasks.get(key).is_some_and(|s| s.seq == seq) {
                state.tasks.remove(key);
            }
            drop(state);
            drop(fut); // outside the lock
        } else if let Some(slot) = state.tasks.get_mut(key).filter(|s| s.seq == seq) {
            slot.fut = Some(fut);
            // Woken during its own poll: it spins.
            if slot.ready {
                slot.spins += 1;
                if slot.spins >= BUSY_POLLS_PER_TICK {
                    slot.spins = 0;
                    return Ran::Spinning;
                }
            } else {
                slot.spins = 0;
            }
        } else {
            drop(state);
            drop(fut); // shut down meanwhile
        }
        Ran::Yes
    }

    /// Moves the clock to the earliest timer and wakes every sleep due then.
    /// Returns whether there was a timer.
    fn fire_next_timers(&self) -> bool {
        let wakers: Vec<Waker> = {
            let mut state = self.shared.lock();
            let Some((&(at, _), _)) = state.timers.first_key_value() else {
                return false;
            };
            if at > state.now {
                state.now = at;
            }
            let now = state.now;
            let later = state.timers.split_off(&(now, u64::MAX));
            let due = std::mem::replace(&mut state.timers, later);
            due.into_values().collect()
        };
        wakers.into_iter().for_each(Waker::wake);
        true
    }
}

/// What [`Sim::run_one_ready`] did.
enum Ran {
    No,
    Yes,
    /// Polled a task that has woken itself `BUSY_POLLS_PER_TICK` times in a
    /// row: time should move.
    Spinning,
}

/// Leaves the running state on drop; see [`Sim::enter`].
struct Running<'a>(&'a Sim);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl Spawner for Sim {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut state = self.shared.lock();
        if state.shut_down {
            drop(state);
            drop(fut); // refused: dropped, as the contract asks
            return;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        let key = state.tasks.insert(Slot {
            fut: Some(Box::pin(fut)),
            seq,
            ready: true,
            spins: 0,
        });
        state.ready.push(key);
        drop(state);
        self.shared.unpark_runner();
    }
}

impl Timer for Sim {
    type Sleep = Sleep;

    fn now(&self) -> Instant {
        let now = self.shared.lock().now;
        self.shared.base + now
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let at = deadline.saturating_duration_since(self.shared.base);
        let now = self.shared.lock().now;
        Sleep {
            shared: self.shared.clone(),
            at,
            // "Never" is decided once, when the sleep is made (the `Timer`
            // contract): polled later, it stays never.
            never: at.saturating_sub(now) >= crate::time::FAR_FUTURE,
            registered: None,
        }
    }
}

impl Runtime for Sim {
    /// Runs `fut` to completion, running the simulation's tasks and moving
    /// its clock while `fut` waits.
    ///
    /// # Panics
    ///
    /// On a [`Deadlock`] (use [`Sim::try_block_on`] to get it as an error),
    /// and if called from inside the simulation.
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match self.try_block_on(fut) {
            Ok(out) => out,
            Err(deadlock) => panic!("{deadlock}"),
        }
    }
}

/// The sleep future of [`Sim`]: completes when the virtual clock reaches
/// its deadline.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::{Runtime, Timer, sim::Sim};
///
/// let sim = Sim::new();
/// let sleep: cancelkit::sim::Sleep = sim.sleep(Duration::from_secs(5));
/// sim.block_on(sleep);
/// assert_eq!(sim.elapsed(), Duration::from_secs(5));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    shared: Arc<Shared>,
    at: Duration,
    /// Made `FAR_FUTURE` or more ahead: never completes.
    never: bool,
    registered: Option<(Duration, u64)>,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("until", &self.at).finish()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.shared.lock();
        if state.now >= this.at {
            if let Some(key) = this.registered.take() {
                state.timers.remove(&key);
            }
            return Poll::Ready(());
        }
        if this.never {
            // "Never" (the `Timer` contract): no timer the clock could
            // jump to. Nothing will wake this sleep; with nothing else to
            // do, the simulation reports a deadlock.
            return Poll::Pending;
        }
        match this.registered.and_then(|k| state.timers.get_mut(&k)) {
            Some(w) => {
                if !w.will_wake(cx.waker()) {
                    let old = std::mem::replace(w, cx.waker().clone());
                    drop(state);
                    drop(old); // a waker's drop may run arbitrary code: unlocked
                }
            }
            None => {
                let key = (this.at, state.next_timer);
                state.next_timer += 1;
                state.timers.insert(key, cx.waker().clone());
                this.registered = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.registered.take() {
            let waker = self.shared.lock().timers.remove(&key);
            drop(waker); // outside the lock
        }
    }
}

/// The simulation deadlocked: the main future is pending, no task is ready
/// and no timer is set. Names the tasks still pending.
///
/// ```
/// use cancelkit::sim::Sim;
///
/// let err = Sim::new().try_block_on(std::future::pending::<()>()).unwrap_err();
/// assert!(err.stuck().is_empty());
/// assert!(err.to_string().contains("deadlock"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    at: Duration,
    stuck: Vec<String>,
}

impl Deadlock {
    /// The tasks still pending, named `task #N` in spawn order.
    ///
    /// ```
    /// let err = cancelkit::sim::Sim::new().try_block_on(std::future::pending::<()>()).unwrap_err();
    /// assert_eq!(err.stuck(), [] as [&str; 0]);
    /// ```
    pub fn stuck(&self) -> &[String] {
        &self.stuck
    }
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation deadlock at virtual time {:?}: the main future is pending, no task is \
             ready and no timer is set",
            self.at
        )?;
        if self.stuck.is_empty() {
            f.write_str("; no other task exists")
        } else {
            write!(f, "; stuck tasks: {}", self.stuck.join(", "))
        }
    }
}

impl std::error::Error for Deadlock {}

thread_local! {
    /// Set by [`mark`]ed futures when they return `Pending`, for the
    /// cancel-safety checker: the innermost marked await of the current poll.
    static LAST_PENDING: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}
