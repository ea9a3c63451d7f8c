//! Picks `loom`'s synchronisation primitives under `--cfg loom`, and `std`'s
//! otherwise, for the code whose concurrency loom models (the token tree,
//! the task harness and what cancel scopes add to it).
//!
//! `OnceLock` (and `once_cell`'s `OnceBox` and `OnceRef`, which the task's
//! scope uses) have no loom counterpart and stay as they are: loom does
//! not model their internal synchronisation (the code relies on them as on
//! any `std` primitive); the `state` atomics that order the algorithms
//! (invariants 1 to 3 in `token/node.rs`, the task's state word) are
//! modelled, and so is every access to the token's `UnsafeCell`s (its
//! cause and its intrusive list's links), through loom's own.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::ThreadId;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::ThreadId;

/// `std`'s `UnsafeCell` with loom's access API (`with`, `with_mut`), so
/// the same code lets loom check every access to the cell for races.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer to the value, for reading.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer to the value, for writing.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// The calling thread's id (loom's simulated thread under loom).
pub(crate) fn current_thread_id() -> ThreadId {
    #[cfg(loom)]
    return loom::thread::current().id();
    #[cfg(not(loom))]
    return std::thread::current().id();
}

/// Locks `m`, ignoring poisoning: the token never runs user code while it
/// holds a lock, so a poisoned lock can only come from a bug of ours, and
/// the data it guards is still consistent at every unlock point.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One round of waiting for another thread that is a few instructions from
/// done: a yield (loom must see it to schedule the other thread).
pub(crate) fn spin() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}
