//! Pins the auto traits (`Send`, `Sync`, `Unpin`) of every public type and
//! future, so a change that loses one is a test failure, not a surprise for
//! users.

#![allow(dead_code)]

use std::cell::Cell;
use std::future::Pending;

use cancelkit::group::*;
use cancelkit::signal::*;
use cancelkit::task::*;
use cancelkit::time::*;
use cancelkit::token::*;
use cancelkit::{CancelToken, JoinError, Task};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}

/// Compiles only if `$t` is **not** `Unpin`: for an `Unpin` type both
/// impls below apply and the call is ambiguous (static_assertions' trick).
macro_rules! not_unpin {
    ($t:ty) => {{
        trait AmbiguousIfUnpin<A> {
            fn check() {}
        }
        impl<T: ?Sized> AmbiguousIfUnpin<()> for T {}
        impl<T: ?Sized + Unpin> AmbiguousIfUnpin<u8> for T {}
        <$t as AmbiguousIfUnpin<_>>::check();
    }};
}

/// A `Send + !Sync` output, to see which bounds a handle really needs.
type NotSync = Cell<u8>;

#[test]
fn task_handles() {
    send::<Task<u8>>();
    sync::<Task<u8>>();
    unpin::<Task<u8>>();
    // The output only needs to be Send for the handle to be Send + Sync.
    send::<Task<NotSync>>();
    sync::<Task<NotSync>>();
    send::<Cancel<u8>>();
    sync::<Cancel<u8>>();
    unpin::<Cancel<u8>>();
    send::<JoinError>();
    unpin::<JoinError>();
}

#[test]
fn tokens_and_their_futures() {
    send::<CancelToken>();
    sync::<CancelToken>();
    unpin::<CancelToken>();
    // The waiting futures are the token's record of the waiting task (an
    // intrusive list entry: waiting allocates nothing), so they are pinned
    // while they wait, like tokio-util's `WaitForCancellationFuture`.
    send::<WhenCancelled<'static>>();
    sync::<WhenCancelled<'static>>();
    not_unpin!(WhenCancelled<'static>);
    send::<WhenCancelledOwned>();
    sync::<WhenCancelledOwned>();
    not_unpin!(WhenCancelledOwned);
    send::<WithCancel<Pending<u8>>>();
    sync::<WithCancel<Pending<u8>>>();
    not_unpin!(WithCancel<Pending<u8>>);
    send::<DropGuard>();
    sync::<DropGuard>();
    send::<Cancelled>();
    sync::<Cancelled>();
    send::<Elapsed>();
    sync::<Elapsed>();
    send::<OnCancel>();
    sync::<OnCancel>();
    send::<PanicGuard>();
    sync::<PanicGuard>();
    send::<CancelKind>();
    sync::<CancelKind>();
    unpin::<CancelKind>();
    send::<Or<CancelToken, CancelToken>>();
    sync::<Or<CancelToken, CancelToken>>();
}

#[test]
fn task_groups_and_signals() {
    send::<ShutdownReport>();
    sync::<ShutdownReport>();
    send::<TaskFailure>();
    sync::<TaskFailure>();
    send::<OsSignal>();
    sync::<OsSignal>();
    send::<Full<fn()>>();
}

#[cfg(feature = "sim")]
#[test]
fn sim_runtime() {
    use cancelkit::sim::{Deadlock, Marked, Sim, Sleep};
    send::<Sim>();
    sync::<Sim>();
    send::<Sleep>();
    sync::<Sleep>();
    unpin::<Sleep>();
    send::<Deadlock>();
    sync::<Deadlock>();
    send::<Marked<Pending<u8>>>();
    unpin::<Marked<Pending<u8>>>();
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_adapter() {
    use cancelkit::TaskGroup;
    use cancelkit::rt::tokio::{Sleep as TokioSleep, Tokio};
    send::<TaskGroup<Tokio>>();
    sync::<TaskGroup<Tokio>>();
    send::<Tokio>();
    sync::<Tokio>();
    unpin::<Tokio>();
    send::<TokioSleep>();
    sync::<TokioSleep>();
    // Not Unpin, like tokio's own `Sleep`: it is held inline, unboxed.
    send::<Timeout<Tokio, Pending<u8>>>();
}

#[cfg(feature = "smol")]
#[test]
fn smol_adapter() {
    use cancelkit::rt::smol::{Sleep as SmolSleep, Smol};
    send::<Smol>();
    sync::<Smol>();
    send::<SmolSleep>();
    sync::<SmolSleep>();
    unpin::<SmolSleep>();
}

#[cfg(feature = "async-std")]
#[test]
fn async_std_adapter() {
    use cancelkit::rt::async_std::{AsyncStd, Sleep as AsyncStdSleep};
    send::<AsyncStd>();
    sync::<AsyncStd>();
    send::<AsyncStdSleep>();
    sync::<AsyncStdSleep>();
    unpin::<AsyncStdSleep>();
}
