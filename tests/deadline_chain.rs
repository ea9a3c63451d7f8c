//! The chain of `examples/deadline_chain.rs` — smol → tokio → async-std,
//! over loopback HTTP/1 — checked ([W1]–[W3]):
//!
//! (a) a client's 200 ms deadline reaches hop 3 within 1 ms of the client's,
//!     by each hop's clock, and never later than the time the request took
//!     to get there;
//! (b) a client that hangs up mid-request cancels the work at hop 3 within
//!     10 ms, and every hop logs why.
//!
//! The tests take turns (one lock): timings are measured, and a second
//! chain on the same two cores would be measured too.

#[allow(dead_code)]
#[path = "../examples/deadline_chain.rs"]
mod chain;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cancelkit::rt::Smol;
use cancelkit::token::CancelKind;
use cancelkit::{CancelToken, Runtime, SpawnerExt, Timer};
use chain::{Chain, Event, Saw};

#[path = "support/bounded.rs"]
mod bounded;
use bounded::bounded;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The arrivals logged for `path`: (hop, when, its deadline).
fn arrivals(events: &[Event], path: &str) -> Vec<(usize, Instant, Option<Instant>)> {
    events
        .iter()
        .filter(|e| e.path == path)
        .filter_map(|e| match e.saw {
            Saw::Arrived { deadline } => Some((e.hop, e.at, deadline)),
            Saw::Cancelled { .. } => None,
        })
        .collect()
}

#[test]
fn a_clients_deadline_reaches_hop_3_within_a_millisecond() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let chain = Chain::start(false);
    let client = Smol::new().unwrap();
    const REQUESTS: usize = 21;
    let mut drift_at_hop3 = Vec::new();
    for i in 0..REQUESTS {
        let path = format!("/quick/{i}");
        let token = CancelToken::with_timeout(&client, Duration::from_millis(200));
        let deadline = token.deadline().unwrap();
        let sent = client.now();
        let answer = client.block_on(bounded(
            "a quick request",
            chain::forward(&client, chain.hop1.addr, &token, &path),
        ));
        assert_eq!(answer.as_deref(), Ok("hop 3 done"));
        let seen = arrivals(&chain.log.events(), &path);
        assert_eq!(seen.len(), 3, "{seen:?}");
        for (hop, arrived, hop_deadline) in seen {
            let hop_deadline = hop_deadline.expect("every hop has the deadline");
            // Each hop writes what is left, rounded down to a microsecond:
            // never more than `hop` µs early ...
            assert!(
                hop_deadline + Duration::from_micros(hop as u64) >= deadline,
                "hop {hop}'s deadline is {:?} before the client's",
                deadline - hop_deadline
            );
            // ... and late by at most the time the request took to get there.
            let late = hop_deadline.saturating_duration_since(deadline);
            assert!(
                late <= arrived - sent,
                "hop {hop}: deadline {late:?} late, but the request took {:?}",
                arrived - sent
            );
            if hop == 3 {
                drift_at_hop3.push(late);
            }
        }
    }
    drift_at_hop3.sort();
    let median = drift_at_hop3[REQUESTS / 2];
    eprintln!("hop 3's deadline after the client's: median {median:?}, all {drift_at_hop3:?}");
    assert!(
        median <= Duration::from_millis(1),
        "hop 3's deadline is {median:?} after the client's (median of {REQUESTS})"
    );
}

#[test]
fn a_client_that_hangs_up_stops_hop_3_within_10_ms() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let chain = Chain::start(false);
    let client = Smol::new().unwrap();
    let path = "/work/hang-up";
    let token = CancelToken::new();
    let call = client.spawn({
        let (client, token, addr) = (client.clone(), token.clone(), chain.hop1.addr);
        async move { chain::forward(&client, addr, &token, path).await }
    });
    // Once hop 3 works on the request, the client hangs up: dropping the
    // call drops its connection.
    client.block_on(bounded(
        "the request reaching hop 3",
        chain
            .log
            .wait_until(|events| arrivals(events, path).len() == 3),
    ));
    let hung_up = Instant::now();
    drop(call);
    client.block_on(bounded(
        "every hop's work being cancelled",
        chain.log.wait_until(|events| {
            let cancelled = events
                .iter()
                .filter(|e| matches!(e.saw, Saw::Cancelled { .. }));
            cancelled.count() == 3
        }),
    ));
    let events = chain.log.events();
    let mut hops = Vec::new();
    for event in &events {
        if let Saw::Cancelled { kind, cause } = &event.saw {
            assert_eq!(
                *kind,
                CancelKind::Disconnected,
                "hop {}: {cause}",
                event.hop
            );
            assert_eq!(cause, "the client went away before the response was ready");
            hops.push(event.hop);
            if event.hop == 3 {
                let took = event.at - hung_up;
                eprintln!("hop 3's work stopped {took:?} after the client hung up");
                assert!(took <= Duration::from_millis(10), "took {took:?}");
            }
        }
    }
    hops.sort();
    assert_eq!(hops, [1, 2, 3], "each hop logs the cause");
    drop(token);
}
