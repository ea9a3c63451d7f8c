//! OS signals as `Signal`s on every runtime: two listeners for SIGTERM in
//! one process both see one `kill -TERM` of this process. In a test binary
//! of its own, since signal handlers are process-wide (and stay installed).
#![cfg(unix)]

use std::time::Duration;

use cancelkit::{Runtime, Signal, signal::OsSignal, timeout};

fn send_sigterm_to_self() {
    // `kill` as a shell builtin: no procps package needed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", std::process::id())])
        .status()
        .expect("run sh");
    assert!(status.success());
}

fn both_see_one_sigterm<R: Runtime + Clone>(rt: &R, a: OsSignal, b: OsSignal) {
    assert!(!a.is_raised() && !b.is_raised());
    send_sigterm_to_self();
    let seen = rt.block_on(timeout(rt, Duration::from_secs(10), async {
        a.raised().await;
        b.raised().await;
    }));
    assert!(seen.is_ok(), "a listener missed the signal");
}

// One test function: the runtimes take turns, so each kill is meant for the
// listeners of one runtime (a listener of another runtime would see it too).
#[test]
fn two_listeners_each_see_sigterm_on_every_runtime() {
    let rt = cancelkit::rt::Tokio::new().unwrap();
    let (a, b) = (rt.terminate().unwrap(), rt.terminate().unwrap());
    both_see_one_sigterm(&rt, a, b);

    let rt = cancelkit::rt::Tokio::current_thread().unwrap();
    let (a, b) = (rt.terminate().unwrap(), rt.terminate().unwrap());
    both_see_one_sigterm(&rt, a, b);

    let rt = cancelkit::rt::Smol::new().unwrap();
    let (a, b) = (rt.terminate().unwrap(), rt.terminate().unwrap());
    both_see_one_sigterm(&rt, a, b);

    let rt = cancelkit::rt::AsyncStd::new().unwrap();
    let (a, b) = (rt.terminate().unwrap(), rt.terminate().unwrap());
    both_see_one_sigterm(&rt, a, b);

    #[cfg(feature = "compio")]
    {
        let rt = cancelkit::rt::Compio::new().unwrap();
        let (a, b) = (rt.terminate().unwrap(), rt.terminate().unwrap());
        both_see_one_sigterm(&rt, a, b);
    }

    #[cfg(feature = "monoio")]
    {
        let rt = cancelkit::rt::Monoio::new().unwrap();
        let (a, b) = (rt.terminate().unwrap(), rt.terminate().unwrap());
        both_see_one_sigterm(&rt, a, b);
    }
}

#[test]
fn a_tokio_runtime_without_io_gives_an_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let rt = cancelkit::rt::Tokio::from_handle(runtime.handle().clone());
    let err = rt.ctrl_c().unwrap_err();
    assert!(err.to_string().contains("I/O driver"), "{err}");
}
