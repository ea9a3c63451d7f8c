//! The compio adapter beyond the conformance suite: `Send` spawns and
//! blocking work arriving from other threads, a nested `block_on`, and
//! `Compio::cancel_io` cancelling socket reads in flight.

use std::pin::pin;
use std::sync::mpsc;
use std::time::Instant;

use cancelkit::blocking::SpawnBlockingExt;
use cancelkit::local::LocalSpawnerExt;
use cancelkit::{CancelToken, JoinError, Runtime, SpawnerExt, TaskGroup, rt::Compio};
use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use futures_lite::future;

#[path = "support/panic_site.rs"]
mod panic_site;

#[path = "support/bounded.rs"]
mod bounded;
use bounded::{LIMIT, bounded};

/// A connected pair of loopback sockets on the current compio runtime.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, (server, _)) = future::try_zip(TcpStream::connect(addr), listener.accept())
        .await
        .unwrap();
    (client, server)
}

#[test]
fn send_spawns_from_another_thread_run_on_the_runtimes_thread() {
    let rt = Compio::new().unwrap();
    let home = std::thread::current().id();
    let remote = rt.clone();
    let spawner = std::thread::spawn(move || {
        // Spawned while the home thread may or may not be inside block_on:
        // either way the task runs once it is.
        let task = remote.spawn(async { std::thread::current().id() });
        let blocking = remote.spawn_blocking(|_| 7);
        (task, blocking)
    });
    let (task, blocking) = spawner.join().unwrap();
    let (ran_on, seven) = rt.block_on(bounded("the spawns from elsewhere", async {
        (task.await.unwrap(), blocking.await.unwrap())
    }));
    assert_eq!(ran_on, home);
    assert_eq!(seven, 7);
}

#[test]
fn spawns_queued_from_another_thread_are_cancelled_when_the_runtime_is_dropped() {
    let rt = Compio::new().unwrap();
    let remote = rt.clone();
    let task = std::thread::spawn(move || remote.spawn(async { 1 }))
        .join()
        .unwrap();
    // The runtime never ran: the spawn is still queued when it goes.
    drop(rt);
    assert!(matches!(future::block_on(task), Err(JoinError::Cancelled)));
}

/// Blocking work goes to compio's pool at once: it does not wait for the
/// runtime's thread to run the runtime (which here is blocked on the
/// closure's own message).
#[test]
fn blocking_work_starts_while_the_runtime_is_not_running() {
    let rt = Compio::new().unwrap();
    let (started, has_started) = mpsc::channel();
    let work = rt.spawn_blocking(move |_| started.send(()).unwrap());
    has_started
        .recv_timeout(LIMIT)
        .expect("the blocking closure waited for the runtime to run");
    rt.block_on(work).unwrap();
    let remote = rt.clone();
    let (started, has_started) = mpsc::channel();
    let work =
        std::thread::spawn(move || remote.spawn_blocking(move |_| started.send(()).unwrap()))
            .join()
            .unwrap();
    has_started
        .recv_timeout(LIMIT)
        .expect("blocking work from another thread waited for the runtime to run");
    rt.block_on(work).unwrap();
}

#[test]
fn block_on_inside_a_task_panics_at_the_callers_line() {
    let rt = Compio::new().unwrap();
    let mut line = 0;
    let (message, at) = panic_site::panic_of("tests/compio.rs", || {
        rt.block_on(async {
            line = std::panic::Location::caller().line() + 1;
            rt.block_on(async {});
        });
    });
    assert_eq!(at, line, "{message}");
    assert!(message.contains("`.await` the future instead"), "{message}");
    // The runtime is still usable afterwards.
    assert_eq!(rt.block_on(rt.spawn(async { 3 })).unwrap(), 3);
}

#[test]
fn a_blocking_closure_that_panics_gives_panicked() {
    let rt = Compio::new().unwrap();
    let out = rt.block_on(rt.spawn_blocking(|_| -> u8 { panic!("boom") }));
    match out {
        Err(JoinError::Panicked(payload)) => {
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

/// The error compio gives an operation cancelled in flight.
fn assert_cancelled_in_flight(result: &std::io::Result<usize>) {
    let err = result.as_ref().expect_err("the read completed");
    // ECANCELED (Linux): the kernel cancelled the operation; not an EOF or
    // a reset, which would say the peer went away.
    #[cfg(target_os = "linux")]
    assert_eq!(err.raw_os_error(), Some(125), "{err:?}");
    #[cfg(not(target_os = "linux"))]
    let _ = err;
}

#[test]
fn cancelling_the_token_cancels_a_socket_read_in_flight() {
    let rt = Compio::new().unwrap();
    let token = CancelToken::new();
    rt.block_on(bounded("the cancelled read", async {
        let (mut client, server) = socket_pair().await;
        let mut read = pin!(rt.cancel_io(&token, client.read(Vec::with_capacity(64))));
        // Submitted and waiting: the peer never writes.
        assert!(future::poll_once(read.as_mut()).await.is_none());
        assert!(future::poll_once(read.as_mut()).await.is_none());
        let cancelled_at = Instant::now();
        token.cancel();
        let BufResult(result, buffer) = read.await;
        assert_cancelled_in_flight(&result);
        assert_eq!(buffer.capacity(), 64, "the buffer is handed back");
        assert!(cancelled_at.elapsed() < LIMIT);
        // The peer is still there: the read ended because of the token.
        drop(server);
    }));
}

#[test]
fn a_read_started_after_the_cancel_is_cancelled_at_once() {
    let rt = Compio::new().unwrap();
    let token = CancelToken::new();
    token.cancel();
    rt.block_on(bounded("the read under a cancelled token", async {
        let (mut client, _server) = socket_pair().await;
        let BufResult(result, _) = rt
            .cancel_io(&token, client.read(Vec::with_capacity(8)))
            .await;
        assert_cancelled_in_flight(&result);
    }));
}

#[test]
fn a_read_that_completes_is_left_alone() {
    let rt = Compio::new().unwrap();
    let token = CancelToken::new();
    rt.block_on(bounded("the read", async {
        let (mut client, mut server) = socket_pair().await;
        let BufResult(written, _) = server.write_all(b"ping").await;
        written.unwrap();
        let BufResult(result, buffer) = rt
            .cancel_io(&token, client.read_exact(Vec::with_capacity(4)))
            .await;
        result.unwrap();
        assert_eq!(buffer, b"ping");
    }));
    token.cancel(); // after the fact: nothing to cancel
}

/// A group's shutdown cancels its task's token, which cancels the task's
/// read in the kernel; the task sees the error and returns within the
/// grace, so nothing is forced.
#[test]
fn a_group_shutdown_cancels_a_member_blocked_in_a_read() {
    let rt = Compio::new().unwrap();
    rt.block_on(bounded("the group shutdown", async {
        let (client, _server) = socket_pair().await;
        let group = TaskGroup::new(&rt);
        let (reading, is_reading) = mpsc::channel();
        let member = group.spawn_local({
            let rt = rt.clone();
            move |token| async move {
                let mut client = client;
                reading.send(()).unwrap();
                let BufResult(result, _) = rt
                    .cancel_io(&token, client.read(Vec::with_capacity(8)))
                    .await;
                result.map_err(|e| e.raw_os_error())
            }
        });
        // Let the member start its read.
        while is_reading.try_recv().is_err() {
            future::yield_now().await;
        }
        future::yield_now().await;
        let report = group.shutdown(LIMIT).await;
        assert!(report.forced.is_empty(), "{report}");
        assert_eq!(report.finished, 1, "{report}");
        let out = member.await.unwrap();
        assert!(out.is_err(), "the read was not cancelled: {out:?}");
    }));
}

/// compio drops every task when a `block_on` panics — the one that takes
/// in spawns from other threads too; the next `block_on` starts another.
#[test]
fn spawns_from_another_thread_still_run_after_a_panic_in_block_on() {
    let rt = Compio::new().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { panic!("in block_on") })
    }));
    assert!(caught.is_err());
    let remote = rt.clone();
    let task = std::thread::spawn(move || remote.spawn(async { 5 }))
        .join()
        .unwrap();
    assert_eq!(
        rt.block_on(bounded("the spawn after the panic", task))
            .unwrap(),
        5
    );
}

/// compio drops its tasks only when no clone of its runtime is left; a
/// task holding one (as compio's own I/O futures do across awaits) is
/// still dropped when the last `Compio` handle goes (D6).
#[test]
fn a_task_holding_a_compio_runtime_clone_is_dropped_with_the_runtime() {
    let rt = Compio::new().unwrap();
    let compio_rt = rt.runtime().unwrap();
    let started = CancelToken::new();
    let task = rt.spawn_local({
        let started = started.clone();
        async move {
            let _keep = compio_rt;
            started.cancel();
            std::future::pending::<()>().await
        }
    });
    rt.block_on(started.cancelled());
    drop(rt);
    let out = future::block_on(bounded("the dropped runtime's task", task));
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
}
