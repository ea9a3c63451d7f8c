//! A runtime cancelkit does not ship — `futures`' `ThreadPool`, with timers
//! from `async-io` — adapted in this one file using only the public API,
//! exactly as a user would, and then put through the whole conformance
//! suite with one macro call.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use cancelkit::{CancelToken, Runtime, Spawner, Timer, conformance_tests, token::DropGuard};
use futures::executor::ThreadPool;

/// `futures::executor::ThreadPool` as a cancelkit runtime.
///
/// A `ThreadPool` never drops the tasks it holds when it is dropped (they
/// live as long as their wakers), so to honour "shutdown drops pending
/// tasks" (D6) every task runs under a token that the last clone cancels.
#[derive(Clone)]
struct FuturesPool {
    // Declared first, dropped first: cancel the tasks before the pool goes.
    scope: Arc<Scope>,
    pool: ThreadPool,
}

struct Scope {
    token: CancelToken,
    _on_drop: DropGuard,
}

impl FuturesPool {
    fn new() -> Self {
        let token = CancelToken::new();
        FuturesPool {
            scope: Arc::new(Scope {
                _on_drop: token.clone().drop_guard(),
                token,
            }),
            pool: ThreadPool::builder().pool_size(2).create().unwrap(),
        }
    }
}

impl Spawner for FuturesPool {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.scope.token.clone();
        self.pool.spawn_ok(async move {
            let _ = stop.run_until_cancelled(fut).await;
        });
    }
}

/// An `async_io::Timer` with `()` output.
struct Sleep(async_io::Timer);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl Timer for FuturesPool {
    type Sleep = Sleep;
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep(async_io::Timer::at(deadline))
    }
}

impl Runtime for FuturesPool {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        futures::executor::block_on(fut)
    }
}

conformance_tests!(futures_thread_pool, FuturesPool::new);
