//! Runs one operation N times on one thread, for `ci/instructions.sh` to
//! count its instructions under callgrind. Usage: `instructions MODE N`.

use std::hint::black_box;
use std::sync::Arc;

use std::future::pending;
use std::time::Duration;

use cancelkit::rt::{Smol, Tokio};
use cancelkit::{Runtime, SpawnerExt, TaskGroup};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().expect("MODE");
    let n: usize = args.next().expect("N").parse().expect("N is a number");
    match mode.as_str() {
        "tokio" | "tokio-native" | "tokio-cancel" => {
            let rt = Tokio::current_thread().unwrap();
            rt.block_on(async {
                for _ in 0..n {
                    match mode.as_str() {
                        "tokio" => {
                            black_box(rt.spawn(async { 1 }).await.unwrap());
                        }
                        "tokio-native" => {
                            black_box(tokio::spawn(async { 1 }).await.unwrap());
                        }
                        _ => {
                            black_box(rt.spawn(std::future::pending::<()>()).cancel().await);
                        }
                    }
                }
            });
        }
        "smol" | "smol-native" => {
            // An executor run by `block_on` only, on this thread.
            let ex = Arc::new(smol::Executor::new());
            let rt = Smol::from_executor(ex.clone());
            rt.block_on(async {
                for _ in 0..n {
                    if mode == "smol" {
                        black_box(rt.spawn(async { 1 }).await.unwrap());
                    } else {
                        black_box(ex.spawn(async { 1 }).await);
                    }
                }
            });
        }
        // The group rows, per task: N requests (child token, task in a
        // group, done, dropped), or N idle tasks spawned and then shut down
        // (cooperatively: each waits on its token; forced: each pends
        // forever), each against its tokio-util / JoinSet anchor.
        "request" | "request-tokio-util" | "request-joinset" | "coop" | "coop-tokio-util"
        | "forced" | "forced-joinset" => {
            let rt = Tokio::current_thread().unwrap();
            rt.block_on(groups(&rt, &mode, n));
        }
        other => panic!("unknown mode {other}"),
    }
}

async fn groups(rt: &Tokio, mode: &str, n: usize) {
    match mode {
        "request" => {
            let group = TaskGroup::new(rt);
            for _ in 0..n {
                group
                    .spawn(|request| async move {
                        black_box(request.is_cancelled());
                    })
                    .detach();
            }
            group.close();
            group.wait().await;
        }
        "request-tokio-util" => {
            let (server, tracker) = (CancellationToken::new(), TaskTracker::new());
            for _ in 0..n {
                let request = server.child_token();
                tracker.spawn(async move {
                    black_box(request.is_cancelled());
                });
            }
            tracker.close();
            tracker.wait().await;
        }
        // The same with a `JoinSet`, which (like a group) can abort what is
        // left.
        "request-joinset" => {
            let server = CancellationToken::new();
            let mut set = JoinSet::new();
            for _ in 0..n {
                let request = server.child_token();
                set.spawn(async move {
                    black_box(request.is_cancelled());
                });
            }
            while set.join_next().await.is_some() {}
        }
        "coop" | "forced" => {
            let group = TaskGroup::new(rt);
            for _ in 0..n {
                if mode == "coop" {
                    group
                        .spawn(|stop| async move { stop.cancelled().await })
                        .detach();
                } else {
                    group.spawn(|_| pending::<()>()).detach();
                }
            }
            tokio::task::yield_now().await;
            let grace = if mode == "coop" {
                Duration::from_secs(60)
            } else {
                Duration::ZERO
            };
            black_box(group.shutdown(grace).await);
        }
        "coop-tokio-util" => {
            let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
            for _ in 0..n {
                let t = token.child_token();
                tracker.spawn(async move { t.cancelled().await });
            }
            tokio::task::yield_now().await;
            tracker.close();
            token.cancel();
            tracker.wait().await;
        }
        _ => {
            let mut set = JoinSet::new();
            for _ in 0..n {
                set.spawn(pending::<()>());
            }
            tokio::task::yield_now().await;
            set.shutdown().await;
        }
    }
}
