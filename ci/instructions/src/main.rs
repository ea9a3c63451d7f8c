//! Runs one operation N times on one thread, for `ci/instructions.sh` to
//! count its instructions under callgrind. Usage: `instructions MODE N`.

use std::hint::black_box;
use std::sync::Arc;

use cancelkit::rt::{Smol, Tokio};
use cancelkit::{Runtime, SpawnerExt};

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
        other => panic!("unknown mode {other}"),
    }
}
