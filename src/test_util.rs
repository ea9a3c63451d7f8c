//! Helpers for the unit tests: a waker that counts its wake-ups, so tests
//! that poll by hand can assert exact wake counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};

pub(crate) struct CountingWaker(AtomicUsize);

impl CountingWaker {
    /// How many times it was woken.
    pub(crate) fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counting waker, and the `Waker` to hand to `poll`.
pub(crate) fn counting() -> (Arc<CountingWaker>, Waker) {
    let c = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (c.clone(), c.into())
}
