//! `Send` spawns from other threads into a runtime that can spawn only on
//! its own thread (compio, monoio; not public): a queue, and a task of the
//! runtime that empties it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::rt::BoxedFuture;

/// The queue; shared by the runtime's handle and its receiving task.
#[derive(Default)]
pub(crate) struct Remote {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: Vec<BoxedFuture>,
    /// The receiving task's waker, once it has found the queue empty.
    receiver: Option<Waker>,
    /// A receiving task exists.
    receiving: bool,
    /// The runtime is gone: spawns are dropped at once.
    closed: bool,
}

impl Remote {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `fut` for the receiving task (or drops it, if the runtime is
    /// gone: its handle then reports `Cancelled`).
    pub(crate) fn push(&self, fut: BoxedFuture) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            drop(fut); // outside the lock
            return;
        }
        state.queue.push(fut);
        let receiver = state.receiver.take();
        drop(state);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }

    /// The receiving task to spawn on the runtime, unless one exists (or
    /// the runtime is gone). `spawn` is run by that task, on the runtime,
    /// for each queued future.
    pub(crate) fn receiver(self: &Arc<Self>, spawn: fn(BoxedFuture)) -> Option<Receive> {
        let mut state = self.lock();
        if state.receiving || state.closed {
            return None;
        }
        state.receiving = true;
        Some(Receive {
            remote: self.clone(),
            spawn,
        })
    }

    /// The runtime is gone: drops what is queued and all later spawns.
    pub(crate) fn close(&self) {
        let queued = {
            let mut state = self.lock();
            state.closed = true;
            state.receiver = None;
            std::mem::take(&mut state.queue)
        };
        drop(queued); // outside the lock
    }
}

/// The task that spawns, on its runtime, what other threads queued. It
/// holds no clone of the runtime, so it does not keep it alive.
pub(crate) struct Receive {
    remote: Arc<Remote>,
    spawn: fn(BoxedFuture),
}

impl Drop for Receive {
    fn drop(&mut self) {
        let mut state = self.remote.lock();
        state.receiving = false;
        state.receiver = None;
    }
}

impl Future for Receive {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let queued = {
                let mut state = self.remote.lock();
                if state.closed {
                    return Poll::Ready(());
                }
                if state.queue.is_empty() {
                    state.receiver = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                std::mem::take(&mut state.queue)
            };
            queued.into_iter().for_each(self.spawn);
        }
    }
}
