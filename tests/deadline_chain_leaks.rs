//! (c) of the deadline chain ([W1]–[W3]): 1 000 requests with mixed
//! deadlines and hang-ups through smol → tokio → async-std leave nothing
//! behind — no task or connection (every hop's task group, which holds its
//! connections and its requests' work, empties) and no token or buffer
//! (the process's heap returns to where it was).
//!
//! The heap is counted across all threads, because the chain's work runs
//! on four runtimes' threads; so this file holds this one test, and the
//! measured round repeats a warm-up round of the same requests (runtimes'
//! queues, slabs and hyper's buffers reach their size in the warm-up).
//! The library forbids `unsafe`; a global allocator needs it, and this one
//! only forwards to `System`.
#![allow(unsafe_code)]

#[allow(dead_code)]
#[path = "../examples/deadline_chain.rs"]
mod chain;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use cancelkit::rt::Smol;
use cancelkit::token::CancelKind;
use cancelkit::{CancelToken, Runtime, SpawnerExt, Timer};
use chain::Chain;

#[path = "support/bounded.rs"]
mod bounded;
use bounded::bounded;

/// Forwards to `System`, counting live bytes over all threads.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const REQUESTS: usize = 1_000;
const LANES: usize = 20;

/// What became of one round's requests.
#[derive(Debug, Default, PartialEq)]
struct Outcomes {
    answered: usize,
    deadline_exceeded: usize,
    hung_up: usize,
}

/// One round: REQUESTS requests over LANES concurrent clients, a quarter
/// each with no deadline, a 5 s deadline, a 5–50 ms deadline on work that
/// outlasts it, and a client that hangs up 1–5 ms into such work.
fn round(chain: &Chain, client: &Smol) -> Outcomes {
    let lanes: Vec<_> = (0..LANES)
        .map(|lane| {
            let (rt, addr) = (client.clone(), chain.hop1.addr);
            client.spawn(async move {
                let mut outcomes = Outcomes::default();
                for i in (lane..REQUESTS).step_by(LANES) {
                    let ms = |range: u64| Duration::from_millis(1 + (i as u64 * 7) % range);
                    let (token, path) = match i % 4 {
                        0 => (CancelToken::new(), "/quick"),
                        1 => (
                            CancelToken::with_timeout(&rt, Duration::from_secs(5)),
                            "/quick",
                        ),
                        2 => (CancelToken::with_timeout(&rt, ms(45) + ms(5)), "/work"),
                        _ => (CancelToken::new(), "/work"),
                    };
                    let call = chain::forward(&rt, addr, &token, path);
                    let out = if i % 4 == 3 {
                        // The client hangs up: its call is dropped.
                        futures_lite::future::or(call, async {
                            rt.sleep(ms(5)).await;
                            Err(CancelKind::Disconnected)
                        })
                        .await
                    } else {
                        call.await
                    };
                    match (i % 4, out) {
                        (0 | 1, Ok(_)) => outcomes.answered += 1,
                        (2, Err(CancelKind::DeadlineExceeded)) => outcomes.deadline_exceeded += 1,
                        (3, Err(CancelKind::Disconnected)) => outcomes.hung_up += 1,
                        (kind, out) => panic!("request {i} (kind {kind}): {out:?}"),
                    }
                }
                outcomes
            })
        })
        .collect();
    let mut total = Outcomes::default();
    client.block_on(bounded("a round of requests", async {
        for lane in lanes {
            let outcomes = lane.await.unwrap();
            total.answered += outcomes.answered;
            total.deadline_exceeded += outcomes.deadline_exceeded;
            total.hung_up += outcomes.hung_up;
        }
    }));
    // Every connection closes and every request's work ends: each hop's
    // group, which holds both, empties.
    let hop1 = &chain.hop1;
    hop1.rt
        .block_on(bounded("hop 1 settling", hop1.group.wait()));
    let hop2 = &chain.hop2;
    hop2.rt
        .block_on(bounded("hop 2 settling", hop2.group.wait()));
    let hop3 = &chain.hop3;
    hop3.rt
        .block_on(bounded("hop 3 settling", hop3.group.wait()));
    assert!(hop1.group.is_empty() && hop2.group.is_empty() && hop3.group.is_empty());
    chain.log.clear();
    total
}

#[test]
fn a_thousand_mixed_requests_leave_no_task_connection_or_token_behind() {
    let chain = Chain::start(false);
    let client = Smol::new().unwrap();
    let want = Outcomes {
        answered: REQUESTS / 2,
        deadline_exceeded: REQUESTS / 4,
        hung_up: REQUESTS / 4,
    };
    assert_eq!(round(&chain, &client), want, "warm-up");
    let before = LIVE.load(Ordering::Relaxed);
    assert_eq!(round(&chain, &client), want);
    // A token is 184 bytes, a task or a connection far more: one of them
    // left behind per request would be 184 000 bytes or more. The groups
    // are empty, but a deadline's timer task (on its runtime, outside the
    // groups) may still be on its way out: the heap has a few seconds to
    // get back, which a leak never does.
    const SLACK: isize = 32 * 1024;
    let grown = || LIVE.load(Ordering::Relaxed) - before;
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while grown() >= SLACK && std::time::Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    let grown = grown();
    eprintln!("heap after {REQUESTS} requests: {grown:+} bytes");
    assert!(
        grown < SLACK,
        "the heap grew by {grown} bytes over {REQUESTS} requests"
    );
}
