//! The examples, run as their users run them:
//!
//! - `start_tokio`, `start_smol` and `start_async_std` (the same job, each
//!   started from its runtime's usual entry point) exit 0 and print the
//!   same, non-empty, lines;
//! - the tour fits in 100 columns, shows every runtime, and reports that
//!   they all printed the same;
//! - every example answers `--help` (usage on stdout, exit 0) and rejects
//!   a bad argument (usage on stderr, exit 2).
//!
//! The binaries are `target/<profile>/examples/<name>`, built by
//! `cargo test --all-features` along with the test binaries. Each run is
//! bounded: an example that hangs fails the test instead of stalling it.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[path = "support/example_bin.rs"]
mod example_bin;

use example_bin::example_binary;

/// How long one example may run (the tour, the slowest, takes a few
/// seconds).
const PATIENCE: Duration = Duration::from_secs(60);
/// The widest line the tour may print.
const TOUR_WIDTH: usize = 100;

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs example `name` with `args` to its end (at most [`PATIENCE`]).
fn run(name: &str, args: &[&str]) -> Run {
    let mut child = Command::new(example_binary(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    // Read both pipes while the child runs, so a full pipe cannot block it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).map(|_| text)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} still running after {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        status,
        stdout: stdout.join().unwrap().expect("stdout is UTF-8"),
        stderr: stderr.join().unwrap().expect("stderr is UTF-8"),
    }
}

#[test]
fn the_three_entry_points_print_the_same_lines() {
    let names = ["start_tokio", "start_smol", "start_async_std"];
    // Side by side: each waits out a shutdown grace period.
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| s.spawn(move || run(name, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, run) in names.iter().zip(&runs) {
        assert_eq!(
            run.status.code(),
            Some(0),
            "{name}: {}\nstdout:\n{}\nstderr:\n{}",
            run.status,
            run.stdout,
            run.stderr
        );
        assert!(
            run.stdout.lines().count() >= 10,
            "{name} printed too little:\n{}",
            run.stdout
        );
    }
    let (first, first_run) = (names[0], &runs[0]);
    for (name, run) in names.iter().zip(&runs).skip(1) {
        assert_eq!(
            run.stdout, first_run.stdout,
            "{name} and {first} printed different lines"
        );
    }
    // The job's last part is the shutdown report, which must say what the
    // job arranged: one task finished, one forced, one failed.
    assert!(
        first_run
            .stdout
            .contains("shutdown: 1 finished within the grace period, 1 forced, 1 failed"),
        "{}",
        first_run.stdout
    );
}

#[test]
fn the_tour_fits_in_100_columns_and_finds_every_runtime_identical() {
    let tour = run("tour", &[]);
    // The tour builds without features too, and a plain `cargo test` then
    // overwrites the binary with one that has fewer runtimes.
    let partial = tour.stderr.contains("no runtime enabled")
        || tour
            .stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("Identical on all") && !l.contains(" 6 runtimes"));
    assert!(
        !partial,
        "the tour binary was built without every runtime feature (as a plain `cargo test` \
         builds it): run `cargo test --all-features`\n{}{}",
        tour.stdout, tour.stderr
    );
    assert_eq!(
        tour.status.code(),
        Some(0),
        "{}\n{}{}",
        tour.status,
        tour.stdout,
        tour.stderr
    );
    for (n, line) in tour.stdout.lines().enumerate() {
        let width = line.chars().count();
        assert!(
            width <= TOUR_WIDTH,
            "line {} is {width} columns wide:\n{line}",
            n + 1
        );
    }
    // Every runtime's output is shown: each is a column title, once per
    // pattern.
    let runtimes = [
        "tokio",
        "tokio-current-thread",
        "smol",
        "async-std",
        "compio",
        "monoio",
    ];
    let patterns = tour.stdout.lines().filter(|l| l.starts_with("== ")).count();
    assert_eq!(patterns, 5, "{}", tour.stdout);
    for rt in runtimes {
        let columns = tour
            .stdout
            .lines()
            .filter(|l| l.split(" | ").any(|cell| cell.trim() == rt))
            .count();
        assert_eq!(columns, patterns, "{rt} is not shown for every pattern");
    }
    let last = tour.stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "Identical on all {} runtimes: {}.",
            runtimes.len(),
            runtimes.join(", ")
        ),
        "{}",
        tour.stdout
    );
}

/// Every example, and an argument it must refuse.
const EXAMPLES: [(&str, &[&str]); 15] = [
    ("start_tokio", &["--verbose"]),
    ("start_smol", &["extra"]),
    ("start_async_std", &["-x"]),
    ("tour", &["--runtime", "smol"]),
    ("native", &["now"]),
    ("echo_server", &["--grace", "soon"]),
    ("echo_server", &["--addr"]),
    ("echo_server", &["--runtime", "tokio2"]),
    ("drop_handle", &["--runtime", "nope"]),
    ("shared_flag", &["--runtime"]),
    ("timeout", &["--runtim", "smol"]),
    ("shutdown_broadcast", &["--runtime", "smol", "again"]),
    ("shutdown_broadcast", &["-"]),
    ("commit_or_rollback", &["--runtime", "sim"]),
    ("blocking_shutdown", &["--runtime", "tokio-multi"]),
];

#[test]
fn blocking_shutdown_reports_the_same_abandoned_work_on_every_runtime() {
    let outputs: Vec<(&str, String)> = ["tokio", "tokio-current-thread", "smol", "async-std"]
        .into_iter()
        .map(|rt| {
            let out = run("blocking_shutdown", &["--runtime", rt]);
            assert_eq!(out.status.code(), Some(0), "{rt}: {}", out.stderr);
            let body = out.stdout.split_once('\n').map_or("", |(_, body)| body);
            (rt, body.to_string())
        })
        .collect();
    let first = &outputs[0].1;
    assert!(first.contains(", 1 abandoned\n"), "{first}");
    assert!(
        first.contains("abandoned (blocking, still running): fsync"),
        "{first}"
    );
    assert!(first.contains("fsync still running: true"), "{first}");
    for (rt, body) in &outputs[1..] {
        assert_eq!(body, first, "{rt} differs from tokio");
    }
}

#[test]
fn every_example_answers_help_on_stdout_with_exit_0() {
    let mut names: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    names.dedup();
    for name in names {
        for flag in ["--help", "-h"] {
            let help = run(name, &[flag]);
            assert_eq!(
                help.status.code(),
                Some(0),
                "{name} {flag}: {}",
                help.status
            );
            assert!(
                help.stdout.starts_with("Usage"),
                "{name} {flag} stdout:\n{}",
                help.stdout
            );
            assert_eq!(help.stderr, "", "{name} {flag} wrote to stderr");
        }
    }
}

#[test]
fn every_example_rejects_a_bad_argument_with_usage_on_stderr_and_exit_2() {
    for (name, args) in EXAMPLES {
        let bad = run(name, args);
        assert_eq!(
            bad.status.code(),
            Some(2),
            "{name} {args:?}: {}\nstdout:\n{}\nstderr:\n{}",
            bad.status,
            bad.stdout,
            bad.stderr
        );
        assert!(
            bad.stderr.contains("\nUsage"),
            "{name} {args:?} stderr:\n{}",
            bad.stderr
        );
        assert!(
            bad.stderr.starts_with("error: "),
            "{name} {args:?} says what is wrong first:\n{}",
            bad.stderr
        );
        assert_eq!(bad.stdout, "", "{name} {args:?} wrote to stdout");
    }
}
