//! Runs the conformance suite on every runtime this build enables, and
//! checks that every runtime produces the same trace for every case.
//!
//! `cargo test --all-features --test conformance tokio_multi_thread::` runs
//! one runtime; `cargo test --all-features d1_` runs one contract line on all.

#![cfg(any(
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "sim"
))]

use std::collections::BTreeMap;

use cancelkit::conformance::Local;
use cancelkit::conformance::{self, Config};
use cancelkit::{Runtime, blocking_conformance_tests, conformance_tests, local_conformance_tests};

#[cfg(feature = "tokio")]
conformance_tests!(tokio_current_thread, || {
    cancelkit::rt::Tokio::current_thread().unwrap()
});
#[cfg(feature = "tokio")]
conformance_tests!(tokio_multi_thread, || cancelkit::rt::Tokio::new().unwrap());
#[cfg(feature = "smol")]
conformance_tests!(smol, || cancelkit::rt::Smol::new().unwrap());
// No threads of its own: tasks run only inside `block_on`, as on a
// current-thread runtime.
#[cfg(feature = "smol")]
conformance_tests!(smol_no_threads, || cancelkit::rt::Smol::with_threads(0)
    .unwrap());
// Local executors: the whole suite with every spawn going through the
// local spawner, and the local cases (L1, L2).
#[cfg(feature = "tokio")]
local_conformance_tests!(tokio_local, || cancelkit::rt::TokioLocal::new().unwrap());
#[cfg(feature = "smol")]
local_conformance_tests!(smol_local, || cancelkit::rt::SmolLocal::new().unwrap());
#[cfg(feature = "async-std")]
conformance_tests!(async_std, || cancelkit::rt::AsyncStd::new().unwrap());
#[cfg(feature = "sim")]
conformance_tests!(sim, cancelkit::sim::Sim::new);

// Blocking work (L3, L4), on every runtime with a blocking pool.
#[cfg(feature = "tokio")]
blocking_conformance_tests!(tokio_current_thread_blocking, || {
    cancelkit::rt::Tokio::current_thread().unwrap()
});
#[cfg(feature = "tokio")]
blocking_conformance_tests!(tokio_multi_thread_blocking, || cancelkit::rt::Tokio::new()
    .unwrap());
#[cfg(feature = "tokio")]
blocking_conformance_tests!(tokio_local_blocking, || cancelkit::rt::TokioLocal::new()
    .unwrap());
#[cfg(feature = "smol")]
blocking_conformance_tests!(smol_blocking, || cancelkit::rt::Smol::new().unwrap());
#[cfg(feature = "smol")]
blocking_conformance_tests!(smol_local_blocking, || cancelkit::rt::SmolLocal::new()
    .unwrap());
#[cfg(feature = "async-std")]
blocking_conformance_tests!(async_std_blocking, || cancelkit::rt::AsyncStd::new()
    .unwrap());

/// Every case's trace on one runtime, by case name.
fn traces<R, F>(new_runtime: F) -> BTreeMap<&'static str, Vec<String>>
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Clone + Send + 'static,
{
    conformance::cases::<R>()
        .iter()
        .map(|case| {
            let trace = conformance::run(new_runtime.clone(), case, &Config::default())
                .unwrap_or_else(|f| panic!("{f}"));
            (case.name(), trace)
        })
        .collect()
}

#[test]
fn traces_are_identical_on_every_runtime() {
    let mut runs: Vec<(&str, BTreeMap<&str, Vec<String>>)> = Vec::new();
    #[cfg(feature = "tokio")]
    {
        runs.push((
            "tokio_current_thread",
            traces(|| cancelkit::rt::Tokio::current_thread().unwrap()),
        ));
        runs.push((
            "tokio_multi_thread",
            traces(|| cancelkit::rt::Tokio::new().unwrap()),
        ));
        runs.push((
            "tokio_local",
            traces(|| Local(cancelkit::rt::TokioLocal::new().unwrap())),
        ));
    }
    #[cfg(feature = "smol")]
    runs.push(("smol", traces(|| cancelkit::rt::Smol::new().unwrap())));
    #[cfg(feature = "smol")]
    runs.push((
        "smol_no_threads",
        traces(|| cancelkit::rt::Smol::with_threads(0).unwrap()),
    ));
    #[cfg(feature = "smol")]
    runs.push((
        "smol_local",
        traces(|| Local(cancelkit::rt::SmolLocal::new().unwrap())),
    ));
    #[cfg(feature = "async-std")]
    runs.push((
        "async_std",
        traces(|| cancelkit::rt::AsyncStd::new().unwrap()),
    ));
    #[cfg(feature = "sim")]
    runs.push(("sim", traces(cancelkit::sim::Sim::new)));

    let Some(((first_name, first), rest)) = runs.split_first() else {
        return;
    };
    for case in first.keys() {
        assert!(!first[case].is_empty(), "{case} recorded no events");
    }
    for (name, traces) in rest {
        for (case, trace) in traces {
            assert_eq!(
                trace, &first[case],
                "case {case}: {name} traced differently from {first_name}"
            );
        }
    }
}

/// The local cases' traces are the same on every local runtime.
#[cfg(all(feature = "tokio", feature = "smol"))]
#[test]
fn local_traces_are_identical_on_every_local_runtime() {
    fn local_traces<R, F>(new_runtime: F) -> BTreeMap<&'static str, Vec<String>>
    where
        R: Runtime + cancelkit::local::LocalSpawner + Clone + Send + Sync + 'static,
        F: Fn() -> R + Clone + Send + 'static,
    {
        conformance::local_cases::<R>()
            .iter()
            .map(|case| {
                let trace = conformance::run(new_runtime.clone(), case, &Config::default())
                    .unwrap_or_else(|f| panic!("{f}"));
                (case.name(), trace)
            })
            .collect()
    }
    let tokio = local_traces(|| cancelkit::rt::TokioLocal::new().unwrap());
    let smol = local_traces(|| cancelkit::rt::SmolLocal::new().unwrap());
    assert_eq!(tokio.len(), 5);
    for (case, trace) in &tokio {
        assert!(!trace.is_empty(), "{case} recorded no events");
        assert_eq!(
            trace, &smol[case],
            "case {case}: smol_local traced differently from tokio_local"
        );
    }
}

/// The blocking cases' traces are the same on every runtime with a pool.
#[cfg(all(feature = "tokio", feature = "smol", feature = "async-std"))]
#[test]
fn blocking_traces_are_identical_on_every_runtime() {
    fn blocking_traces<R, F>(new_runtime: F) -> BTreeMap<&'static str, Vec<String>>
    where
        R: Runtime + cancelkit::blocking::SpawnBlocking + Clone + Send + Sync + 'static,
        F: Fn() -> R + Clone + Send + 'static,
    {
        conformance::blocking_cases::<R>()
            .iter()
            .map(|case| {
                let trace = conformance::run(new_runtime.clone(), case, &Config::default())
                    .unwrap_or_else(|f| panic!("{f}"));
                (case.name(), trace)
            })
            .collect()
    }
    let first = blocking_traces(|| cancelkit::rt::Tokio::new().unwrap());
    let rest = [
        (
            "tokio_current_thread",
            blocking_traces(|| cancelkit::rt::Tokio::current_thread().unwrap()),
        ),
        (
            "tokio_local",
            blocking_traces(|| cancelkit::rt::TokioLocal::new().unwrap()),
        ),
        (
            "smol",
            blocking_traces(|| cancelkit::rt::Smol::new().unwrap()),
        ),
        (
            "smol_local",
            blocking_traces(|| cancelkit::rt::SmolLocal::new().unwrap()),
        ),
        (
            "async_std",
            blocking_traces(|| cancelkit::rt::AsyncStd::new().unwrap()),
        ),
    ];
    assert_eq!(first.len(), 2);
    for (name, traces) in &rest {
        for (case, trace) in traces {
            assert!(!trace.is_empty(), "{case} recorded no events");
            assert_eq!(
                trace, &first[case],
                "case {case}: {name} traced differently from tokio_multi_thread"
            );
        }
    }
}
