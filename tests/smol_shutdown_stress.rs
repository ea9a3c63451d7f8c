//! D6 on smol under load: every shutdown of an owned smol runtime drops
//! every pending task, so their handles resolve `Cancelled`. Guards the
//! adapter's workaround for an upstream race (async-executor drops its
//! tasks by draining its queue once; a task woken by another thread — here
//! async-io's timers — in that very moment was left in the queue, never
//! dropped: about one shutdown in 10 000–20 000).
//!
//! `SMOL_SHUTDOWN_ROUNDS` sets the number of rounds (CI runs the default).

use std::time::Duration;

use cancelkit::rt::Smol;
use cancelkit::{CancelToken, JoinError, SpawnerExt};

#[test]
fn every_shutdown_under_load_drops_every_pending_task() {
    let rounds: usize = std::env::var("SMOL_SHUTDOWN_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2_000);
    for round in 0..rounds {
        let rt = Smol::with_threads(2).unwrap();
        let tasks: Vec<_> = (0..4u64)
            .map(|i| {
                let started = CancelToken::new();
                let task = rt.spawn({
                    // Each task sleeps on short async-io timers, so the
                    // reactor wakes tasks while the runtime shuts down.
                    let started = started.clone();
                    async move {
                        started.cancel();
                        let mut n = i;
                        loop {
                            n += 1;
                            async_io::Timer::after(Duration::from_micros(20 + (n * 37) % 200))
                                .await;
                        }
                    }
                });
                (started, task)
            })
            .collect();
        for (started, _) in &tasks {
            futures_lite::future::block_on(started.cancelled());
        }
        drop(rt);
        for (_, task) in tasks {
            let out = futures_lite::future::block_on(async {
                futures_lite::future::or(async { Some(task.await) }, async {
                    async_io::Timer::after(Duration::from_secs(5)).await;
                    None
                })
                .await
            });
            match out {
                Some(Err(JoinError::Cancelled)) => {}
                Some(other) => panic!("round {round}: a pending task gave {other:?}"),
                None => panic!("round {round}: a pending task was never dropped (D6)"),
            }
        }
    }
}
