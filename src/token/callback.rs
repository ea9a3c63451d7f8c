//! `on_cancel` callbacks and the rule that ties them to their guards.
//!
//! # The rule
//!
//! Once dropping an [`OnCancel`](super::OnCancel) guard returns, its
//! callback has either finished or will never start. The one exception is
//! a guard dropped by its own callback (directly, or by code the callback
//! calls): that drop returns at once, since the callback cannot wait for
//! itself.
//!
//! # How
//!
//! A callback lives in a [`Cell`] shared by the token's entry slab (or the
//! list a cancel took out of it) and the guard. Its [`Phase`] moves from
//! `Pending` to `Running` (a cancel started it) and `Done`, or from
//! `Pending` to `Revoked` (the guard was dropped, or the token was
//! detached, first). Both transitions out of `Pending` happen under the
//! cell's lock, so exactly one wins. A guard that finds the callback
//! `Running` on another thread waits on the cell's condition variable
//! until it is `Done`.
//!
//! One allocation per callback, as before: the closure is stored inline in
//! the cell, which is shared as `Arc<dyn Callback>`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::cause::Cancelled;
use std::sync::Arc;

use crate::loom::{Condvar, Mutex, ThreadId, current_thread_id, lock};

/// A registered callback, type-erased.
pub(crate) trait Callback: Send + Sync {
    /// Runs the callback unless it was revoked (or already ran). Returns
    /// the payload if it panicked.
    fn run(&self, cause: &Cancelled) -> Option<Box<dyn Any + Send + 'static>>;

    /// Makes sure the callback never starts; if it is running on another
    /// thread, waits until it has finished (the guard's rule).
    fn revoke(&self);

    /// Drops the callback unrun if it has not started, without waiting (the
    /// token can no longer be cancelled).
    fn discard(&self);
}

/// `std`'s `Arc` even under loom (loom's cannot hold a `dyn`); the lock
/// and condition variable inside, which order the callback's phases, are
/// loom's.
pub(crate) type SharedCallback = Arc<dyn Callback>;

/// Makes a cell for `f`.
pub(crate) fn new<F>(f: F) -> SharedCallback
where
    F: FnOnce(&Cancelled) + Send + 'static,
{
    Arc::new(Cell {
        phase: Mutex::new(Phase::Pending),
        f: Mutex::new(Some(f)),
        finished: Condvar::new(),
    })
}

enum Phase {
    Pending,
    Running(ThreadId),
    Done,
    Revoked,
}

struct Cell<F> {
    phase: Mutex<Phase>,
    /// Taken by whoever moves `phase` out of `Pending`.
    f: Mutex<Option<F>>,
    /// Notified when `phase` becomes `Done`.
    finished: Condvar,
}

impl<F> Cell<F> {
    fn take(&self) -> Option<F> {
        lock(&self.f).take()
    }

    /// `Pending` → `Revoked`; gives the closure back to be dropped.
    fn revoke_pending(&self, phase: &mut Phase) -> Option<F> {
        match phase {
            Phase::Pending => {
                *phase = Phase::Revoked;
                self.take()
            }
            _ => None,
        }
    }
}

impl<F> Callback for Cell<F>
where
    F: FnOnce(&Cancelled) + Send + 'static,
{
    fn run(&self, cause: &Cancelled) -> Option<Box<dyn Any + Send + 'static>> {
        let f = {
            let mut phase = lock(&self.phase);
            match *phase {
                Phase::Pending => *phase = Phase::Running(current_thread_id()),
                _ => return None,
            }
            self.take()
        };
        // No lock held while user code runs: it may drop guards, this one
        // included, or cancel tokens.
        let panicked = f.and_then(|f| catch_unwind(AssertUnwindSafe(|| f(cause))).err());
        *lock(&self.phase) = Phase::Done;
        self.finished.notify_all();
        panicked
    }

    fn revoke(&self) {
        let mut phase = lock(&self.phase);
        let unrun = self.revoke_pending(&mut phase);
        if unrun.is_none() {
            if let Phase::Running(runner) = *phase {
                if runner == current_thread_id() {
                    // Dropped by the callback itself: it cannot wait for
                    // itself, and it is running right here.
                    return;
                }
            }
            while let Phase::Running(_) = *phase {
                phase = self.finished.wait(phase).unwrap_or_else(|e| e.into_inner());
            }
        }
        drop(phase);
        // The closure's destructor is user code: outside the lock.
        drop(unrun);
    }

    fn discard(&self) {
        let unrun = {
            let mut phase = lock(&self.phase);
            self.revoke_pending(&mut phase)
        };
        drop(unrun);
    }
}
