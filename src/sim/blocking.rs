//! The simulation's blocking pool: each closure gets an OS thread of its
//! own, but runs in lockstep with the simulation, taking turns with it, so
//! its schedule is as reproducible as a task's.
//!
//! A closure's turn starts when the simulation's scheduler picks it (as it
//! picks a ready task, by the seed) and ends when the closure calls
//! [`BlockingToken::wait_timeout`](crate::blocking::BlockingToken::wait_timeout)
//! or returns; the simulation waits meanwhile. A closure waiting in
//! `wait_timeout` is ready again when its token is cancelled or the
//! *virtual* clock has moved by its timeout. So everything it does between
//! two waits — reading its token, cancelling tokens, waking tasks — happens
//! at one point of the simulated schedule.
//!
//! A closure that keeps its turn longer than [`BLOCKING_TURN_LIMIT`] of
//! real time (it computes, or blocks on something other than its token) is
//! left to run on its own: the simulation goes on without it, and takes it
//! back into lockstep at its next `wait_timeout`. Where such a closure's
//! effects land in the schedule is up to the OS, as with any wake-up from
//! another thread.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{Shared, Sim, Sleep};
use crate::CancelToken;
use crate::token::WhenCancelledOwned;

/// How long, in real time, the simulation waits for a blocking closure to
/// end its turn before it goes on without it.
///
/// On the [`Sim`], each blocking closure runs on a thread of its own but
/// takes turns with the simulation: its turn starts when the seeded
/// scheduler picks it (as it picks a ready task) and ends when it calls
/// [`BlockingToken::wait_timeout`](crate::blocking::BlockingToken::wait_timeout)
/// — which then waits in virtual time, for its token or the clock — or
/// returns. A closure that keeps its turn longer than this (it computes,
/// or blocks on something other than its token) is left to run on its own:
/// the simulation goes on without it (moving the clock if it is otherwise
/// idle), does not report a deadlock while it runs, and takes it back into
/// lockstep at its next `wait_timeout`. Where such a closure's effects land
/// in the schedule is up to the OS, as with any wake-up from another
/// thread.
///
/// ```
/// use std::time::Duration;
/// use cancelkit::blocking::SpawnBlockingExt;
/// use cancelkit::{Runtime, sim::{BLOCKING_TURN_LIMIT, Sim}};
///
/// let sim = Sim::new();
/// // A closure that sleeps in real time outruns its turn: the simulation
/// // does not wait for it to go on (here, to time out virtually).
/// let slow = sim.spawn_blocking(|_| std::thread::sleep(BLOCKING_TURN_LIMIT * 2));
/// let out = sim.block_on(cancelkit::timeout(&sim, Duration::from_secs(1), slow));
/// assert!(out.is_err());
/// ```
pub const BLOCKING_TURN_LIMIT: Duration = Duration::from_millis(100);

thread_local! {
    /// On a blocking closure's thread: its turn with the simulation.
    static TURN: RefCell<Option<Arc<Turn>>> = const { RefCell::new(None) };
}

/// Who has the turn.
enum Phase {
    /// The simulation: the thread waits (to start, or inside `wait_timeout`).
    Sim,
    /// The thread.
    Thread,
    /// The thread ended its turn in `wait_timeout`: it is ready again when
    /// `token` is cancelled or `timeout` of virtual time has passed.
    Waiting {
        token: CancelToken,
        timeout: Duration,
    },
    /// The closure returned (cancelkit catches its panics).
    Done,
    /// The simulation dropped the job (it shut down): the thread is on its
    /// own, in real time, from now on.
    Gone,
}

struct TurnState {
    phase: Phase,
    /// The thread has seen that it has the turn (the limit counts from
    /// then, not from the OS waking it).
    acked: bool,
    /// The job's task, while the thread runs outside the lockstep.
    waker: Option<Waker>,
}

/// The turn a closure's thread and its job's task pass back and forth.
struct Turn {
    state: Mutex<TurnState>,
    changed: Condvar,
}

impl Turn {
    fn lock(&self) -> MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// On the thread: ends its turn with `phase` (unless the simulation is
    /// gone already).
    fn hand_back(&self, mut state: MutexGuard<'_, TurnState>, phase: Phase) {
        if !matches!(state.phase, Phase::Gone) {
            state.phase = phase;
        }
        let waker = state.waker.take();
        drop(state);
        self.changed.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// On the thread: waits until it has the turn; `false` if the
    /// simulation is gone instead.
    fn wait_for_turn<'a>(&self, mut state: MutexGuard<'a, TurnState>) -> bool {
        loop {
            match state.phase {
                Phase::Thread => {
                    state.acked = true;
                    drop(state);
                    self.changed.notify_all();
                    return true;
                }
                Phase::Gone => return false,
                _ => {
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// `BlockingToken::wait_timeout` on a simulated blocking closure's thread:
/// ends the closure's turn until `token` is cancelled or `timeout` of
/// virtual time has passed, and returns whether it is cancelled. `None` on
/// any other thread, or once the simulation is gone (the caller then waits
/// in real time).
pub(crate) fn wait_timeout(token: &CancelToken, timeout: Duration) -> Option<bool> {
    let turn = TURN.try_with(|t| t.borrow().clone()).ok().flatten()?;
    let state = turn.lock();
    if matches!(state.phase, Phase::Gone) {
        return None;
    }
    turn.hand_back(
        state,
        Phase::Waiting {
            token: token.clone(),
            timeout,
        },
    );
    if !turn.wait_for_turn(turn.lock()) {
        return None;
    }
    Some(token.is_cancelled())
}

impl crate::blocking::SpawnBlocking for Sim {
    /// A thread of its own for `f` (started when the scheduler first picks
    /// it, so pending work holds no thread), run in lockstep with the
    /// simulation (see [`BLOCKING_TURN_LIMIT`] for the one exception): `f`
    /// starts when the scheduler picks it, like a task, and makes progress
    /// only while the simulation runs (inside `block_on` or `settle`); its
    /// `wait_timeout`s wait in virtual time. If the simulation shuts down
    /// (or no thread can be had) before `f` started, `f` is dropped unrun;
    /// if it shuts down while `f` waits, `f` goes on alone, and its waits
    /// from then on are in real time.
    fn spawn_blocking_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let turn = Arc::new(Turn {
            state: Mutex::new(TurnState {
                phase: Phase::Sim,
                acked: false,
                waker: None,
            }),
            changed: Condvar::new(),
        });
        // Refused after a shutdown: the job, and `f` with it, is dropped
        // unrun.
        crate::Spawner::spawn_detached(
            self,
            Job {
                turn,
                shared: self.shared.clone(),
                start: Some(Box::new(f)),
                wait: None,
                fresh: false,
                outside: false,
            },
        );
    }
}

/// The body of a blocking closure's thread.
fn run(turn: Arc<Turn>, f: Box<dyn FnOnce() + Send>) {
    if !turn.wait_for_turn(turn.lock()) {
        return; // the simulation went first: `f` is dropped unrun
    }
    let _ = TURN.try_with(|t| *t.borrow_mut() = Some(turn.clone()));
    /// Ends the closure's last turn, also when it unwinds.
    struct Ended(Arc<Turn>);
    impl Drop for Ended {
        fn drop(&mut self) {
            let _ = TURN.try_with(|t| t.borrow_mut().take());
            self.0.hand_back(self.0.lock(), Phase::Done);
        }
    }
    let _ended = Ended(turn);
    f();
}

/// The simulated task that schedules a blocking closure: each poll gives
/// the closure a turn and waits (in real time, up to the limit) for it back.
struct Job {
    turn: Arc<Turn>,
    /// The closure, until its thread is started (at the job's first poll).
    start: Option<Box<dyn FnOnce() + Send>>,
    /// For virtual sleeps, without keeping the simulation alive.
    shared: Arc<Shared>,
    /// What the closure waits for in `wait_timeout`.
    wait: Option<Pin<Box<Wait>>>,
    /// `wait` has not been polled yet: if it is ready at once (a zero
    /// timeout, a token already cancelled), the job yields before the next
    /// turn, as a task that spins would, instead of looping in one poll.
    fresh: bool,
    /// The closure outran its turn and runs on its own (counted in
    /// `State::outside`, so an idle simulation waits for it rather than
    /// report a deadlock).
    outside: bool,
}

impl Job {
    fn set_outside(&mut self, outside: bool) {
        if self.outside != outside {
            self.outside = outside;
            let mut state = self.shared.lock();
            if outside {
                state.outside += 1;
            } else {
                state.outside -= 1;
            }
        }
    }
}

impl Future for Job {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(f) = self.start.take() {
            let turn = self.turn.clone();
            let spawned = std::thread::Builder::new()
                .name("cancelkit-sim-blocking".into())
                .spawn(move || run(turn, f));
            if spawned.is_err() {
                // No thread to be had: `f` was dropped unrun, and its
                // handle reports `Cancelled`.
                return Poll::Ready(());
            }
        }
        loop {
            if let Some(wait) = &mut self.wait {
                if wait.as_mut().poll(cx).is_pending() {
                    self.fresh = false;
                    return Poll::Pending;
                }
                self.wait = None;
                if std::mem::take(&mut self.fresh) {
                    // Ready without waiting: let the others run first.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            let turn = self.turn.clone();
            let mut state = turn.lock();
            if !self.outside {
                state.phase = Phase::Thread;
                state.acked = false;
                turn.changed.notify_all();
            }
            let mut limit: Option<Instant> = None;
            loop {
                let acked = state.acked;
                match &mut state.phase {
                    Phase::Thread if !self.outside && !acked => {
                        // The OS has not run the thread yet: that is not
                        // the closure's time.
                        state = turn
                            .changed
                            .wait(state)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    Phase::Thread => {
                        let limit = *limit.get_or_insert_with(|| Instant::now() + BLOCKING_TURN_LIMIT);
                        let left = limit.saturating_duration_since(Instant::now());
                        if self.outside || left.is_zero() {
                            // On its own until its next `wait_timeout` or
                            // its end, which wake this task.
                            state.waker = Some(cx.waker().clone());
                            drop(state);
                            self.set_outside(true);
                            return Poll::Pending;
                        }
                        state = turn
                            .changed
                            .wait_timeout(state, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    Phase::Waiting { token, timeout } => {
                        let wait = Wait::new(&self.shared, token.clone(), *timeout);
                        state.phase = Phase::Sim;
                        drop(state);
                        self.set_outside(false);
                        self.wait = Some(Box::pin(wait));
                        self.fresh = true;
                        break;
                    }
                    Phase::Done | Phase::Gone | Phase::Sim => {
                        drop(state);
                        self.set_outside(false);
                        return Poll::Ready(());
                    }
                }
            }
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // The simulation shut down (or the job finished): a thread still
        // waiting for a turn runs on its own, or drops its closure unrun.
        let mut state = self.turn.lock();
        if !matches!(state.phase, Phase::Done) {
            state.phase = Phase::Gone;
        }
        state.waker = None;
        drop(state);
        self.turn.changed.notify_all();
        self.set_outside(false);
    }
}

pin_project_lite::pin_project! {
    /// A blocking closure's `wait_timeout`, in the simulation: its token's
    /// cancel or a virtual sleep, whichever comes first.
    struct Wait {
        #[pin]
        cancelled: WhenCancelledOwned,
        #[pin]
        sleep: Sleep,
    }
}

impl Wait {
    fn new(shared: &Arc<Shared>, token: CancelToken, timeout: Duration) -> Wait {
        let now = shared.lock().now;
        Wait {
            cancelled: token.cancelled_owned(),
            sleep: Sleep {
                shared: shared.clone(),
                at: now.saturating_add(timeout),
                never: timeout >= crate::time::FAR_FUTURE,
                registered: None,
            },
        }
    }
}

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.cancelled.poll(cx).is_ready() || this.sleep.poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
