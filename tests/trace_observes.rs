//! The conformance traces record what each case observed, not labels
//! written after a check passed: a runtime that behaves differently — but
//! legally, so every case still passes — changes the trace.
//!
//! The planted runtime here polls every spawned future once more each time
//! it returns `Pending`, without a wake-up in between. That is allowed (a
//! future must tolerate spurious polls) and it breaks no contract line, but
//! D1 counts the polls its task gets before its handle is dropped, and a
//! runtime that polls only on wake-ups polls that task exactly once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use cancelkit::conformance::{self, Case, Config};
use cancelkit::rt::Tokio;
use cancelkit::{Runtime, Spawner, Timer};

/// Tokio, except that a spawned future that returns `Pending` is polled
/// again at once; counts those extra polls.
#[derive(Clone)]
struct PollsAgain {
    rt: Tokio,
    extra_polls: Arc<AtomicUsize>,
}

struct PollAgain<F> {
    fut: Pin<Box<F>>,
    extra_polls: Arc<AtomicUsize>,
}

impl<F: Future<Output = ()>> Future for PollAgain<F> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        self.extra_polls.fetch_add(1, Ordering::SeqCst);
        self.fut.as_mut().poll(cx)
    }
}

impl Spawner for PollsAgain {
    fn spawn_detached<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.rt.spawn_detached(PollAgain {
            fut: Box::pin(fut),
            extra_polls: self.extra_polls.clone(),
        });
    }
}

impl Timer for PollsAgain {
    type Sleep = <Tokio as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.rt.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        self.rt.sleep_until(deadline)
    }
}

impl Runtime for PollsAgain {
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

fn case<R>(name: &str) -> Case<R>
where
    R: Runtime + Clone + Send + Sync + 'static,
{
    conformance::cases::<R>()
        .into_iter()
        .find(|c| c.name() == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn polls_again() -> (
    impl Fn() -> PollsAgain + Clone + Send + 'static,
    Arc<AtomicUsize>,
) {
    let extra_polls = Arc::new(AtomicUsize::new(0));
    let counter = extra_polls.clone();
    // Over tokio's current-thread flavour: the case reads its poll count
    // when the task has signalled that it started, and on one thread both
    // polls are over by then. (On tokio's worker threads the read would race
    // with the extra poll.)
    let new_runtime = move || PollsAgain {
        rt: Tokio::current_thread().unwrap(),
        extra_polls: counter.clone(),
    };
    (new_runtime, extra_polls)
}

#[test]
fn a_runtime_that_polls_again_passes_every_case() {
    let (new_runtime, extra_polls) = polls_again();
    for case in conformance::cases::<PollsAgain>() {
        if let Err(failure) = conformance::run(new_runtime.clone(), &case, &Config::default()) {
            panic!("extra polls are legal, yet {failure}");
        }
    }
    assert!(
        extra_polls.load(Ordering::SeqCst) > 0,
        "the planted runtime never polled a future again"
    );
}

#[test]
fn d1_passes_on_a_runtime_that_polls_again_but_traces_the_extra_poll() {
    const D1: &str = "d1_dropping_task_cancels_it";
    let config = Config::default();
    let reference = conformance::run(|| Tokio::new().unwrap(), &case(D1), &config)
        .unwrap_or_else(|f| panic!("{f}"));
    let current_thread = conformance::run(|| Tokio::current_thread().unwrap(), &case(D1), &config)
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(
        reference, current_thread,
        "tokio's two flavours traced D1 differently"
    );

    let (new_runtime, extra_polls) = polls_again();
    let planted = conformance::run(new_runtime, &case(D1), &config)
        .unwrap_or_else(|f| panic!("D1 should pass on a runtime that polls again: {f}"));
    assert!(
        extra_polls.load(Ordering::SeqCst) > 0,
        "the planted runtime never polled a future again"
    );

    // The traces differ in exactly one event: the poll count D1 observed.
    assert_eq!(
        reference.len(),
        planted.len(),
        "{reference:?} vs {planted:?}"
    );
    let differences: Vec<(&String, &String)> = reference
        .iter()
        .zip(&planted)
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        differences,
        [(
            &"polled 1 time(s) before the drop".to_owned(),
            &"polled 2 time(s) before the drop".to_owned()
        )],
        "tokio traced {reference:?}, the planted runtime {planted:?}"
    );
}
