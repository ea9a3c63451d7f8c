//! Interop with tokio-util's `CancellationToken`, both ways, and the
//! helper tasks (tokio-util follower, deadline timer) ending when the
//! cancelkit token is dropped — counted with tokio's own task metrics.

use std::time::Duration;

use cancelkit::rt::Tokio;
use cancelkit::{CancelToken, Runtime, Timer, token::CancelKind};
use tokio_util::sync::CancellationToken;

/// Waits (bounded) until the runtime has `n` live tasks; returns the count.
fn until_tasks(rt: &Tokio, n: usize) -> usize {
    let metrics = rt.handle().metrics();
    for _ in 0..2_000 {
        if metrics.num_alive_tasks() == n {
            return n;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    metrics.num_alive_tasks()
}

fn until_no_tasks(rt: &Tokio) -> usize {
    until_tasks(rt, 0)
}

#[test]
fn a_tokio_util_token_follows_a_cancelkit_token() {
    let ours = CancelToken::new();
    let child = ours.child();
    let theirs = child.to_tokio_util();
    assert!(!theirs.is_cancelled());
    ours.cancel();
    assert!(
        theirs.is_cancelled(),
        "cancelled by the time cancel() returns"
    );

    let done = CancelToken::new();
    done.cancel();
    assert!(done.to_tokio_util().is_cancelled(), "born cancelled");
}

#[test]
fn a_cancelkit_token_follows_a_tokio_util_token() {
    let rt = Tokio::new().unwrap();
    let theirs = CancellationToken::new();
    let ours = CancelToken::follow_tokio_util(&rt, &theirs);
    let child = ours.child();
    theirs.cancel();
    rt.block_on(child.cancelled());
    let why = ours.reason().unwrap();
    assert_eq!(why.kind(), CancelKind::External);
    assert_eq!(why.location().file(), file!());
    assert_eq!(until_no_tasks(&rt), 0);

    let gone = CancellationToken::new();
    gone.cancel();
    assert!(CancelToken::follow_tokio_util(&rt, &gone).is_cancelled());
}

#[test]
fn dropping_the_follower_ends_its_task() {
    let rt = Tokio::new().unwrap();
    let theirs = CancellationToken::new();
    let ours = CancelToken::follow_tokio_util(&rt, &theirs);
    assert_eq!(until_tasks(&rt, 1), 1, "one watcher task");
    drop(ours);
    assert_eq!(until_no_tasks(&rt), 0, "the watcher task lingered");
    assert!(!theirs.is_cancelled());
}

#[test]
fn dropping_a_deadline_token_ends_its_timer_task() {
    let rt = Tokio::new().unwrap();
    let token = CancelToken::with_deadline(&rt, rt.now() + Duration::from_secs(3600));
    assert_eq!(until_tasks(&rt, 1), 1, "one timer task");
    drop(token);
    assert_eq!(
        until_no_tasks(&rt),
        0,
        "the timer task lingered for an hour"
    );
}
