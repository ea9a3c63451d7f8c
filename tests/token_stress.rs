//! Stress: deep chains and cancel-vs-register races on a real multi-thread
//! runtime. Bounded in count; seconds in release, a little more in debug.

use cancelkit::CancelToken;

#[test]
fn a_100_000_deep_chain_cancels_and_drops_without_overflow() {
    // Runs on a thread with a small (256 KiB) stack: recursion would fail.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let root = CancelToken::new();
            let mut leaf = root.clone();
            for _ in 0..100_000 {
                leaf = leaf.child();
            }
            root.cancel();
            assert!(leaf.is_cancelled());
            drop(root);
            drop(leaf);

            let root = CancelToken::new();
            let mut chain = vec![root.clone()];
            for _ in 0..100_000 {
                let next = chain.last().unwrap().child();
                chain.push(next);
            }
            let leaf = chain.pop().unwrap();
            drop(chain); // only the root's and the leaf's handles remain
            root.cancel();
            assert!(leaf.is_cancelled(), "reached through 99 999 dropped tokens");
        })
        .unwrap()
        .join()
        .unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn cancel_racing_registration_on_a_multi_thread_runtime_never_loses_a_wakeup() {
    use cancelkit::{Runtime, SpawnerExt, rt::Tokio};
    const ROUNDS: usize = 100_000;
    let rt = Tokio::new().unwrap();
    let woke = rt.block_on(async {
        let mut woke = 0;
        for _ in 0..ROUNDS {
            let token = CancelToken::new();
            let canceller = rt.spawn({
                let token = token.clone();
                async move { token.cancel() }
            });
            // Registration races with the cancel on another worker thread.
            token.cancelled().await;
            woke += 1;
            let _ = canceller.await;
        }
        woke
    });
    assert_eq!(woke, ROUNDS);
}
