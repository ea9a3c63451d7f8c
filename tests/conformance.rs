//! Runs the conformance suite on every runtime this build enables, and
//! checks that every runtime produces the same trace for every case.
//!
//! `cargo test --all-features --test conformance tokio_multi_thread::` runs
//! one runtime; `cargo test --all-features d1_` runs one contract line on all.

#![cfg(any(
    feature = "tokio",
    feature = "smol",
    feature = "async-std",
    feature = "compio",
    feature = "monoio",
    feature = "sim"
))]

use std::collections::BTreeMap;

use cancelkit::conformance::Local;
use cancelkit::conformance::{self, Case, Config};
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
#[cfg(feature = "compio")]
conformance_tests!(compio, || cancelkit::rt::Compio::new().unwrap());
#[cfg(feature = "compio")]
local_conformance_tests!(compio_local, || cancelkit::rt::Compio::new().unwrap());
#[cfg(feature = "monoio")]
conformance_tests!(monoio, || cancelkit::rt::Monoio::new().unwrap());
#[cfg(feature = "monoio")]
local_conformance_tests!(monoio_local, || cancelkit::rt::Monoio::new().unwrap());
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
#[cfg(feature = "sim")]
blocking_conformance_tests!(sim_blocking, cancelkit::sim::Sim::new);
#[cfg(feature = "monoio")]
blocking_conformance_tests!(monoio_blocking, || cancelkit::rt::Monoio::new().unwrap());
#[cfg(feature = "compio")]
blocking_conformance_tests!(compio_blocking, || cancelkit::rt::Compio::new().unwrap());
#[cfg(feature = "async-std")]
blocking_conformance_tests!(async_std_blocking, || cancelkit::rt::AsyncStd::new()
    .unwrap());

/// Each case's trace on one runtime, by case name.
type Traces = BTreeMap<&'static str, Vec<String>>;

/// The trace of every case of `cases` on runtimes from `new_runtime`.
fn traces_of<R, F>(cases: Vec<Case<R>>, new_runtime: F) -> Traces
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Clone + Send + 'static,
{
    cases
        .iter()
        .map(|case| {
            let trace = conformance::run(new_runtime.clone(), case, &Config::default())
                .unwrap_or_else(|f| panic!("{f}"));
            (case.name(), trace)
        })
        .collect()
}

/// Every case's trace on one runtime.
fn traces<R, F>(new_runtime: F) -> Traces
where
    R: Runtime + Clone + Send + Sync + 'static,
    F: Fn() -> R + Clone + Send + 'static,
{
    traces_of(conformance::cases(), new_runtime)
}

/// Asserts that every case traced something, and the same on every run.
fn assert_identical(runs: &[(&str, Traces)]) {
    let Some(((first_name, first), rest)) = runs.split_first() else {
        return;
    };
    for (case, trace) in first {
        assert!(!trace.is_empty(), "{case} recorded no events");
    }
    for (name, traces) in rest {
        assert_eq!(traces.len(), first.len(), "{name} ran other cases");
        for (case, trace) in traces {
            assert_eq!(
                trace, &first[case],
                "case {case}: {name} traced differently from {first_name}"
            );
        }
    }
}

#[test]
fn traces_are_identical_on_every_runtime() {
    let mut runs: Vec<(&str, Traces)> = Vec::new();
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
    #[cfg(feature = "compio")]
    {
        runs.push(("compio", traces(|| cancelkit::rt::Compio::new().unwrap())));
        runs.push((
            "compio_local",
            traces(|| Local(cancelkit::rt::Compio::new().unwrap())),
        ));
    }
    #[cfg(feature = "monoio")]
    {
        runs.push(("monoio", traces(|| cancelkit::rt::Monoio::new().unwrap())));
        runs.push((
            "monoio_local",
            traces(|| Local(cancelkit::rt::Monoio::new().unwrap())),
        ));
    }
    #[cfg(feature = "sim")]
    runs.push(("sim", traces(cancelkit::sim::Sim::new)));
    assert_identical(&runs);
}

/// The local cases' traces are the same on every local runtime.
#[cfg(all(feature = "tokio", feature = "smol"))]
#[test]
fn local_traces_are_identical_on_every_local_runtime() {
    use cancelkit::rt::{SmolLocal, TokioLocal};
    let tokio = traces_of(conformance::local_cases(), || TokioLocal::new().unwrap());
    assert_eq!(tokio.len(), conformance::local_cases::<TokioLocal>().len());
    let smol = traces_of(conformance::local_cases(), || SmolLocal::new().unwrap());
    #[allow(unused_mut)]
    let mut runs = vec![("tokio_local", tokio), ("smol_local", smol)];
    #[cfg(feature = "compio")]
    runs.push((
        "compio",
        traces_of(conformance::local_cases(), || {
            cancelkit::rt::Compio::new().unwrap()
        }),
    ));
    #[cfg(feature = "monoio")]
    runs.push((
        "monoio",
        traces_of(conformance::local_cases(), || {
            cancelkit::rt::Monoio::new().unwrap()
        }),
    ));
    assert_identical(&runs);
}

/// The blocking cases' traces are the same on every runtime with a pool.
#[cfg(all(feature = "tokio", feature = "smol", feature = "async-std"))]
#[test]
fn blocking_traces_are_identical_on_every_runtime() {
    use cancelkit::conformance::blocking_cases;
    use cancelkit::rt::{AsyncStd, Smol, SmolLocal, Tokio, TokioLocal};
    #[allow(unused_mut)]
    let mut runs = vec![
        (
            "tokio_multi_thread",
            traces_of(blocking_cases(), || Tokio::new().unwrap()),
        ),
        (
            "tokio_current_thread",
            traces_of(blocking_cases(), || Tokio::current_thread().unwrap()),
        ),
        (
            "tokio_local",
            traces_of(blocking_cases(), || TokioLocal::new().unwrap()),
        ),
        ("smol", traces_of(blocking_cases(), || Smol::new().unwrap())),
        (
            "smol_local",
            traces_of(blocking_cases(), || SmolLocal::new().unwrap()),
        ),
        (
            "async_std",
            traces_of(blocking_cases(), || AsyncStd::new().unwrap()),
        ),
    ];
    #[cfg(feature = "compio")]
    runs.push((
        "compio",
        traces_of(blocking_cases(), || cancelkit::rt::Compio::new().unwrap()),
    ));
    #[cfg(feature = "sim")]
    runs.push(("sim", traces_of(blocking_cases(), cancelkit::sim::Sim::new)));
    #[cfg(feature = "monoio")]
    runs.push((
        "monoio",
        traces_of(blocking_cases(), || cancelkit::rt::Monoio::new().unwrap()),
    ));
    assert_eq!(runs[0].1.len(), blocking_cases::<Tokio>().len());
    assert_identical(&runs);
}
