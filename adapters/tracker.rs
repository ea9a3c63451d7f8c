//! Task tracking for adapters whose executor cannot be trusted to drop
//! every pending task when it goes (shared by the smol and monoio
//! adapters; not public).
//!
//! A tracked task returns at once, dropping its future, once its tracker
//! is closing; closing wakes every tracked task that is waiting, so running
//! the executor until [`Tracker::until_empty`] completes drops them all.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use event_listener::Event;
use slab::Slab;

/// The tasks of an owned executor (see the smol adapter's `Owned` for why).
#[derive(Default)]
pub(crate) struct Tracker {
    /// Set once, when the runtime shuts down (under `waiting`'s lock).
    closing: AtomicBool,
    /// Tracked tasks whose future has not been dropped yet.
    live: AtomicUsize,
    /// The wakers of tracked tasks that returned `Pending` at least once
    /// (async-executor gives a task the same waker on every poll).
    waiting: Mutex<Slab<Waker>>,
    /// Notified when `live` drops to zero while closing.
    emptied: Event,
}

impl Tracker {
    /// Closes the gate and wakes every waiting task: each returns, dropping
    /// its future, at its next poll.
    pub(crate) fn close(&self) {
        let wakers = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            self.closing.store(true, Ordering::SeqCst);
            std::mem::take(&mut *waiting)
        };
        wakers.into_iter().for_each(|(_, w)| w.wake());
    }

    /// Completes once every tracked task has returned.
    pub(crate) async fn until_empty(&self) {
        loop {
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            event_listener::listener!(self.emptied => emptied);
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            emptied.await;
        }
    }

    /// Wraps `fut` so that it counts as live until its future is dropped.
    pub(crate) fn track<F>(self: &Arc<Self>, fut: F) -> Tracked<F> {
        self.live.fetch_add(1, Ordering::SeqCst);
        Tracked {
            fut,
            entry: Entry {
                tracker: self.clone(),
                waiting: None,
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// A task of an owned executor: returns at once, dropping its future,
    /// once the runtime is closing.
    pub(crate) struct Tracked<F> {
        #[pin]
        fut: F,
        // Declared after `fut`, so dropped after it: `live` falls only once
        // the future is gone.
        entry: Entry,
    }
}

/// A tracked task's registration with its [`Tracker`].
struct Entry {
    tracker: Arc<Tracker>,
    /// Its key in `Tracker::waiting`, once it has returned `Pending`.
    waiting: Option<usize>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(key) = self.waiting.take() {
            let waker = self
                .tracker
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_remove(key);
            drop(waker); // outside the lock
        }
        if self.tracker.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.tracker.emptied.notify(usize::MAX);
        }
    }
}

impl<F: Future<Output = ()>> Future for Tracked<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let tracker = &this.entry.tracker;
        if tracker.closing.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let polled = this.fut.poll(cx);
        if polled.is_pending() && this.entry.waiting.is_none() {
            let mut waiting = tracker
                .waiting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Checked under the lock `close` sets it under: either our
            // waker is in the slab it takes, or we see the gate closed.
            if tracker.closing.load(Ordering::SeqCst) {
                drop(waiting);
                cx.waker().wake_by_ref();
            } else {
                this.entry.waiting = Some(waiting.insert(cx.waker().clone()));
            }
        }
        polled
    }
}
