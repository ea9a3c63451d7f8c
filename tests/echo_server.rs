//! End to end: the `echo_server` example, as a child process on a free
//! loopback port, on every runtime. Many clients, some with requests in
//! flight, then SIGTERM; every accepted request gets its full reply or a
//! clean close, new connections are refused, slow requests are forced after
//! the grace period — each told `server shutting down` by its connection's
//! async cleanup, and nothing else — and named in the report, and the
//! process exits 0.
//!
//! Ordered by signals, not sleeps: the test waits for the server's own
//! `stats` to show every request in flight before it sends SIGTERM. Bounded:
//! 200 connections, a 3 s grace, 20 s of patience at most per wait.
#![cfg(unix)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NORMAL: usize = 170;
const IN_FLIGHT: usize = 20;
const SLOW: usize = 5;
const GRACE: &str = "3s";
/// In-flight requests take this long: well within the grace, long enough to
/// still be in flight when SIGTERM lands.
const IN_FLIGHT_MS: u64 = 1000;
#[path = "support/example_bin.rs"]
mod example_bin;

const PATIENCE: Duration = Duration::from_secs(20);

/// `target/<profile>/examples/echo_server`, checked to be newer than its
/// sources.
fn server_binary() -> PathBuf {
    example_bin::example_binary("echo_server")
}

struct Server {
    child: Child,
    addr: SocketAddr,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(runtime: &str) -> Server {
    let mut child = Command::new(server_binary())
        .args([
            "--runtime",
            runtime,
            "--addr",
            "127.0.0.1:0",
            "--grace",
            GRACE,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the echo server");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    Server {
        child,
        addr,
        stdout,
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s
}

/// One line, read a byte at a time so nothing after it is consumed (and
/// lost to a later read).
fn read_line(mut s: &TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while s.read(&mut byte)? == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    Ok(String::from_utf8(line).expect("the server echoes UTF-8"))
}

/// Waits (bounded) until the server reports `busy` requests in flight.
fn until_busy(addr: SocketAddr, busy: usize) {
    let stats = connect(addr);
    let start = Instant::now();
    loop {
        (&stats).write_all(b"stats\n").unwrap();
        let line = read_line(&stats).unwrap();
        if line.trim_end().ends_with(&format!("busy={busy}")) {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "server never got busy: {line}");
        std::thread::yield_now();
    }
}

/// Everything left on a connection until the server closes it.
fn rest(mut s: &TcpStream) -> String {
    let mut out = String::new();
    match s.read_to_string(&mut out) {
        Ok(_) => out,
        // A reset after a forced close is still a close with no data.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => out,
        Err(e) => panic!("reading until close: {e}"),
    }
}

fn graceful_shutdown_on(runtime: &str) {
    let mut server = start(runtime);
    let addr = server.addr;

    // Normal requests: answered, then the connections stay open, idle.
    let idle: Vec<TcpStream> = (0..NORMAL)
        .map(|i| {
            let s = connect(addr);
            (&s).write_all(format!("hello {i}\n").as_bytes()).unwrap();
            assert_eq!(read_line(&s).unwrap(), format!("hello {i}\n"));
            s
        })
        .collect();
    // Requests in flight at the signal: short ones finish within the grace,
    // slow ones will be forced.
    let in_flight: Vec<TcpStream> = (0..IN_FLIGHT)
        .map(|i| {
            let s = connect(addr);
            (&s).write_all(format!("sleep {IN_FLIGHT_MS} in-flight {i}\n").as_bytes())
                .unwrap();
            s
        })
        .collect();
    let slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let s = connect(addr);
            (&s).write_all(format!("sleep 60000 slow {i}\n").as_bytes())
                .unwrap();
            s
        })
        .collect();
    until_busy(addr, IN_FLIGHT + SLOW);

    let signalled = Instant::now();
    // `kill` as a shell builtin: no procps package needed.
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", server.child.id())])
        .status()
        .unwrap();
    assert!(kill.success());

    // New connections are refused once the server has seen the signal.
    let refused_by = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            // Racing the listener's close: a connection queued in its
            // backlog when it closed is reset. Not accepted either; go on.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => panic!("unexpected connect error {e}"),
            Ok(_) => {}
        }
        assert!(Instant::now() < refused_by, "still accepting after SIGTERM");
        std::thread::yield_now();
    }

    for (i, s) in in_flight.iter().enumerate() {
        assert_eq!(
            read_line(s).unwrap(),
            format!("sleep {IN_FLIGHT_MS} in-flight {i}\n"),
            "an in-flight request lost its reply"
        );
        assert_eq!(rest(s), "", "more than one reply");
    }
    for s in &idle {
        assert_eq!(rest(s), "", "an idle connection got data at shutdown");
    }
    for s in &slow {
        // Never a half answer: only the goodbye of the forced connection's
        // async cleanup.
        assert_eq!(
            rest(s),
            "server shutting down\n",
            "a forced connection got something else than its goodbye"
        );
    }

    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < PATIENCE,
            "the server did not exit within grace + {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}");

    let mut output = String::new();
    server.stdout.read_to_string(&mut output).unwrap();
    let report = output
        .lines()
        .find(|l| l.starts_with("shutdown: "))
        .unwrap_or_else(|| panic!("no report in {output:?}"));
    assert!(
        report.contains(&format!(", {SLOW} forced, 0 failed")),
        "report: {report}"
    );
    let forced: Vec<&str> = output
        .lines()
        .filter(|l| l.trim_start().starts_with("forced: conn "))
        .collect();
    assert_eq!(forced.len(), SLOW, "{output}");
    // Named with the exact spawn site: the line of `.spawn_named(` in the
    // example's source.
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/echo_server.rs"),
    )
    .unwrap();
    let line = source
        .lines()
        .position(|l| l.contains(".spawn_named(format!(\"conn"))
        .expect("the example spawns connections with spawn_named")
        + 1;
    let site = format!("spawned at examples/echo_server.rs:{line}:");
    assert!(
        forced.iter().all(|l| l.contains(&site)),
        "{site} in {output}"
    );
}

#[test]
fn tokio_multi_thread_shuts_down_gracefully() {
    graceful_shutdown_on("tokio");
}

#[test]
fn tokio_current_thread_shuts_down_gracefully() {
    graceful_shutdown_on("tokio-current-thread");
}

#[test]
fn smol_shuts_down_gracefully() {
    graceful_shutdown_on("smol");
}

#[test]
fn async_std_shuts_down_gracefully() {
    graceful_shutdown_on("async-std");
}
