//! The cases of the suite, one function each, named as in the contract, in
//! one file per contract family: [`d`] (task handles, [D1](crate#D1)–[D6](crate#D6)),
//! [`f`] (tokens, [F1](crate#F1)–[F6](crate#F6)), [`t`] (time,
//! [T1](crate#T1)–[T3](crate#T3)), [`b`] (task groups,
//! [B1](crate#B1)–[B4](crate#B4)), [`s`] (cancel scopes,
//! [S1](crate#S1)–[S5](crate#S5)), [`l`] (local tasks and groups,
//! [L1](crate#L1), [L2](crate#L2)) and [`blocking`] (blocking work,
//! [L3](crate#L3), [L4](crate#L4)). This module holds what they share and
//! re-exports every case, for the list in `__conformance_cases!`.
//!
//! Rules every case follows:
//! - events are ordered by awaiting signals ([`CancelToken`]s), never by
//!   sleeping; sleeps appear only where time itself is under test, and are
//!   short (≤ 50 ms) unless they stand for "never" (then they are
//!   [`Config::patience`](super::Config::patience) long, and the case
//!   finishes long before them on a correct runtime);
//! - every wait is bounded by the watchdog of [`Ctx::block_on`](super::Ctx::block_on);
//! - only events whose order the case itself forces go into the trace.

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_lite::future::yield_now;

use super::Failure;
use crate::token::CancelKind;
use crate::{CancelToken, JoinError, Runtime, Task};

/// `Err(Failure)` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::conformance::Failure::new(format!($($msg)+)));
        }
    };
}

mod b;
mod blocking;
mod d;
mod f;
mod l;
mod s;
mod t;

pub(crate) use b::*;
pub(crate) use blocking::*;
pub(crate) use d::*;
pub(crate) use f::*;
pub(crate) use l::*;
pub(crate) use s::*;
pub(crate) use t::*;

/// Bounds every case's runtime type.
pub(crate) trait CaseRuntime: Runtime + Clone + Send + Sync + 'static {}
impl<R: Runtime + Clone + Send + Sync + 'static> CaseRuntime for R {}

/// Bounds the local cases' runtime type.
pub(crate) trait LocalCaseRuntime: CaseRuntime + crate::local::LocalSpawner {}
impl<R: CaseRuntime + crate::local::LocalSpawner> LocalCaseRuntime for R {}

/// Bounds the blocking cases' runtime type.
pub(crate) trait BlockingCaseRuntime: CaseRuntime + crate::blocking::SpawnBlocking {}
impl<R: CaseRuntime + crate::blocking::SpawnBlocking> BlockingCaseRuntime for R {}

type Result = std::result::Result<(), Failure>;

/// Wraps a future and counts how many times it is polled.
struct CountPolls<F> {
    polls: Arc<AtomicUsize>,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.fut.as_mut().poll(cx)
    }
}

/// Waits until `task` has finished, without consuming it.
async fn until_finished<T>(task: &Task<T>) {
    while !task.is_finished() {
        yield_now().await;
    }
}

/// How a task ended, for traces and failure messages: `Ok(42)`,
/// `Err(Cancelled)`, `Err(Panicked("boom"))`.
fn describe<T: Debug>(out: &std::result::Result<T, JoinError>) -> String {
    format!("{out:?}")
}

/// The kind of a token's cancellation, if it was cancelled.
fn kind_of(token: &CancelToken) -> Option<CancelKind> {
    token.reason().map(|r| r.kind())
}

/// A value whose destructor raises `dropped` and then panics.
struct PanicsOnDrop(CancelToken);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
        panic!("this value panics when dropped");
    }
}
