//! Deterministic unit tests of the token: polled by hand with counting
//! wakers, asserting exact wake counts.

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use super::*;
use crate::test_util::{CountingWaker, counting};

fn wakes(c: &CountingWaker) -> usize {
    c.wakes()
}

#[test]
fn one_cancel_wakes_every_waiter_exactly_once() {
    let token = CancelToken::new();
    let mut futs: Vec<_> = (0..3).map(|_| Box::pin(token.cancelled())).collect();
    let wakers: Vec<_> = (0..3).map(|_| counting()).collect();
    for (f, (_, w)) in futs.iter_mut().zip(&wakers) {
        assert!(f.as_mut().poll(&mut Context::from_waker(w)).is_pending());
    }
    token.cancel();
    token.cancel();
    for (f, (c, w)) in futs.iter_mut().zip(&wakers) {
        assert_eq!(wakes(c), 1);
        assert!(f.as_mut().poll(&mut Context::from_waker(w)).is_ready());
    }
}

#[test]
fn cancelling_a_parent_wakes_waiters_of_every_descendant_once() {
    let root = CancelToken::new();
    let child = root.child();
    let grandchild = child.child();
    let (c1, w1) = counting();
    let (c2, w2) = counting();
    let mut f1 = Box::pin(child.cancelled());
    let mut f2 = Box::pin(grandchild.cancelled());
    assert!(f1.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
    assert!(f2.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
    root.cancel();
    assert_eq!((wakes(&c1), wakes(&c2)), (1, 1));
    assert!(f2.as_mut().poll(&mut Context::from_waker(&w2)).is_ready());
}

#[test]
fn cancelled_is_ready_at_once_when_already_cancelled() {
    let token = CancelToken::new();
    token.cancel();
    let (c, w) = counting();
    let mut f = Box::pin(token.cancelled());
    assert!(f.as_mut().poll(&mut Context::from_waker(&w)).is_ready());
    assert_eq!(wakes(&c), 0);
    assert_eq!(
        token.node().waiters(),
        0,
        "no waiter queued on the fast path"
    );
    assert_eq!(token.node().entries(), (0, 0), "not even a slab was made");
}

#[test]
fn with_cancel_does_not_poll_when_already_cancelled() {
    let token = CancelToken::new();
    token.cancel();
    let polled = AtomicUsize::new(0);
    let fut = std::future::poll_fn(|_| {
        polled.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(())
    });
    let out = futures_lite::future::block_on(token.run_until_cancelled(fut));
    assert!(out.is_err());
    assert_eq!(polled.load(Ordering::SeqCst), 0);
}

#[test]
fn with_cancel_sees_a_cancel_raised_during_the_futures_poll() {
    let token = CancelToken::new();
    let t2 = token.clone();
    let fut = std::future::poll_fn(move |_| {
        t2.cancel();
        Poll::<()>::Pending
    });
    let mut f = Box::pin(token.run_until_cancelled(fut));
    let (_, w) = counting();
    assert!(matches!(
        f.as_mut().poll(&mut Context::from_waker(&w)),
        Poll::Ready(Err(_))
    ));
}

#[test]
fn with_cancel_tie_goes_to_the_future_after_the_first_poll() {
    let token = CancelToken::new();
    let mut polls = 0;
    let fut = std::future::poll_fn(move |_| {
        polls += 1;
        if polls == 1 {
            Poll::Pending
        } else {
            Poll::Ready(7)
        }
    });
    let mut f = Box::pin(token.run_until_cancelled(fut));
    let (_, w) = counting();
    let mut cx = Context::from_waker(&w);
    assert!(f.as_mut().poll(&mut cx).is_pending());
    token.cancel();
    // Both are ready now: the future wins the tie.
    assert!(matches!(f.as_mut().poll(&mut cx), Poll::Ready(Ok(7))));
}

#[test]
fn with_cancel_reports_the_tokens_reason() {
    let token = CancelToken::new();
    token.cancel_with(CancelKind::Shutdown, "bye");
    let err = futures_lite::future::block_on(std::future::pending::<()>().with_cancel(&token))
        .unwrap_err();
    assert_eq!(err.kind(), CancelKind::Shutdown);
    assert!(err.same_as(&token.reason().unwrap()));
}

#[test]
fn cancel_racing_registration_from_threads_is_never_lost() {
    for _ in 0..1000 {
        let token = CancelToken::new();
        let t2 = token.clone();
        let h = std::thread::spawn(move || t2.cancel());
        futures_lite::future::block_on(token.cancelled());
        h.join().unwrap();
    }
}

#[test]
fn a_token_and_its_clones_share_one_reference_to_the_node() {
    let token = CancelToken::new();
    let clones: Vec<_> = (0..10).map(|_| token.clone()).collect();
    assert_eq!(token.node().ref_count(), 1, "clones count as one");
    let child = token.child();
    assert_eq!(token.node().ref_count(), 2, "and a child holds one");
    assert_eq!(child.node().ref_count(), 2, "its handles' and the list's");
    drop(clones);
    drop(child);
    assert_eq!(token.node().ref_count(), 1);
}

// ===== hierarchy (F3) =====

#[test]
fn child_of_a_cancelled_parent_is_born_cancelled_with_its_cause() {
    let parent = CancelToken::new();
    parent.cancel_with(CancelKind::Explicit, "first");
    let child = parent.child();
    assert!(child.is_cancelled());
    assert!(child.reason().unwrap().same_as(&parent.reason().unwrap()));
}

#[test]
fn cancelling_a_child_leaves_the_parent_alone() {
    let parent = CancelToken::new();
    let child = parent.child();
    child.cancel();
    assert!(!parent.is_cancelled());
    assert!(!parent.child().is_cancelled());
}

#[test]
fn grandchild_is_cancelled_through_the_root_after_the_middle_token_was_dropped() {
    let root = CancelToken::new();
    let middle = root.child();
    let grandchild = middle.child();
    drop(middle);
    root.cancel();
    assert!(grandchild.is_cancelled());
    assert!(
        grandchild
            .reason()
            .unwrap()
            .same_as(&root.reason().unwrap())
    );
}

#[test]
fn every_descendant_reports_cancelled_when_cancel_returns() {
    let root = CancelToken::new();
    let mut all = vec![root.clone()];
    for i in 0..200 {
        let parent = all[i / 3].clone();
        all.push(parent.child());
    }
    root.cancel();
    assert!(all.iter().all(CancelToken::is_cancelled));
    let why = root.reason().unwrap();
    assert!(all.iter().all(|t| t.reason().unwrap().same_as(&why)));
}

#[test]
fn dropped_children_do_not_accumulate_in_a_long_lived_parent() {
    let parent = CancelToken::new();
    for _ in 0..10_000 {
        let child = parent.child();
        let _grand = child.child();
    }
    let (len, capacity) = parent.node().entries();
    assert_eq!(len, 0);
    assert!(capacity <= 4, "vacant slots are reused");
}

#[test]
fn first_cause_wins_and_cancel_says_whether_it_won() {
    let token = CancelToken::new();
    assert!(token.cancel_with(CancelKind::Shutdown, "one"));
    assert!(!token.cancel_with(CancelKind::Explicit, "two"));
    assert!(!token.cancel());
    let why = token.reason().unwrap();
    assert_eq!(why.kind(), CancelKind::Shutdown);
    assert_eq!(why.cause().unwrap().to_string(), "one");
}

#[test]
fn cancel_records_the_callers_location() {
    let token = CancelToken::new();
    token.cancel(); // this line
    let why = token.reason().unwrap();
    assert_eq!(why.location().file(), file!());
    assert_eq!(why.location().line(), line!() - 3);
}

// ===== linked tokens =====

#[test]
fn linked_token_fires_when_either_parent_fires_with_that_cause() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    let link = CancelToken::any([&a, &b]);
    b.cancel_with(CancelKind::Shutdown, "b");
    assert!(link.is_cancelled());
    assert_eq!(link.reason().unwrap().cause().unwrap().to_string(), "b");
    assert!(!a.is_cancelled());
}

#[test]
fn linked_token_of_a_cancelled_parent_is_born_cancelled() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    a.cancel();
    assert!(CancelToken::any([&a, &b]).is_cancelled());
}

#[test]
fn dropped_linked_tokens_leave_no_entries_in_their_parents() {
    let a = CancelToken::new();
    let b = CancelToken::new();
    for _ in 0..1000 {
        let link = CancelToken::any([&a, &b]);
        let _child = link.child();
    }
    for t in [&a, &b] {
        assert_eq!(t.node().entries().0, 0);
    }
}

// ===== callbacks =====

#[test]
fn callback_runs_once_with_the_cause_and_immediately_if_already_cancelled() {
    let runs = StdArc::new(AtomicUsize::new(0));
    let token = CancelToken::new();
    let counter = |runs: &StdArc<AtomicUsize>| {
        let runs = runs.clone();
        move |why: &Cancelled| {
            assert_eq!(why.kind(), CancelKind::Explicit);
            runs.fetch_add(1, Ordering::SeqCst);
        }
    };
    let _g = token.on_cancel(counter(&runs));
    token.cancel();
    token.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let _late = token.on_cancel(counter(&runs));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "ran at once on registration"
    );
}

#[test]
fn dropped_callback_guard_unregisters() {
    let runs = StdArc::new(AtomicUsize::new(0));
    let token = CancelToken::new();
    let g = token.on_cancel({
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    });
    drop(g);
    token.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panicking_callback_does_not_stop_the_others_and_does_not_poison() {
    let runs = StdArc::new(AtomicUsize::new(0));
    let token = CancelToken::new();
    let child = token.child();
    let _a = token.on_cancel(|_| panic!("callback failed"));
    let _b = token.on_cancel({
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    });
    let panicked = std::panic::catch_unwind(|| token.cancel());
    assert!(
        panicked.is_err(),
        "the first panic is resumed after all ran"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(child.is_cancelled());
    // Not poisoned: the token still works.
    assert!(token.child().is_cancelled());
    let _late = token.on_cancel({
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn callbacks_can_use_the_token_they_belong_to() {
    let token = CancelToken::new();
    let seen = StdArc::new(AtomicUsize::new(0));
    let _g = token.on_cancel({
        let (token, seen) = (token.clone(), seen.clone());
        move |_| {
            // Would deadlock if callbacks ran under the token's lock.
            let _child = token.child();
            let _again = token.on_cancel(|_| {});
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    token.cancel();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

// ===== guards =====

#[test]
fn drop_guard_cancels_with_guard_dropped_at_its_creation() {
    let token = CancelToken::new();
    let guard = token.clone().drop_guard(); // created here
    let line = line!() - 1;
    drop(guard);
    let why = token.reason().unwrap();
    assert_eq!(why.kind(), CancelKind::GuardDropped);
    assert_eq!(why.location().line(), line);
}

#[test]
fn panic_guard_cancels_only_on_panic() {
    let token = CancelToken::new();
    drop(token.clone().drop_guard_on_panic());
    assert!(!token.is_cancelled());
    let t2 = token.clone();
    let _ = std::panic::catch_unwind(move || {
        let _g = t2.drop_guard_on_panic();
        panic!("unwinding");
    });
    assert_eq!(token.reason().unwrap().kind(), CancelKind::GuardDropped);
}

// ===== deep chains =====

#[test]
fn dropping_the_leaf_of_a_chain_detaches_the_whole_chain() {
    // Deeper chains, on a small stack, are in tests/token_stress.rs.
    let root = CancelToken::new();
    let mut leaf = root.clone();
    for _ in 0..1_000 {
        leaf = leaf.child();
    }
    drop(leaf); // detaches the whole chain, bottom up, iteratively
    assert_eq!(root.node().entries().0, 0);
}

#[test]
fn a_dropped_child_with_a_forgotten_callback_detaches_and_drops_it_unrun() {
    let runs = StdArc::new(AtomicUsize::new(0));
    let dropped = StdArc::new(AtomicUsize::new(0));
    struct OnDrop(StdArc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let parent = CancelToken::new();
    let child = parent.child();
    let witness = OnDrop(dropped.clone());
    child
        .on_cancel({
            let runs = runs.clone();
            move |_| {
                let _witness = &witness;
                runs.fetch_add(1, Ordering::SeqCst);
            }
        })
        .forget();
    drop(child);
    assert_eq!(parent.node().entries().0, 0, "the child detached");
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "its callback was dropped"
    );
    parent.cancel();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "and never ran");
}

#[test]
fn a_waiter_that_gives_up_leaves_no_slot_and_reregistering_reuses_one() {
    let token = CancelToken::new();
    let (c, w) = counting();
    let mut cx = Context::from_waker(&w);
    for _ in 0..100 {
        let mut f = Box::pin(token.cancelled());
        assert!(f.as_mut().poll(&mut cx).is_pending());
        assert!(
            f.as_mut().poll(&mut cx).is_pending(),
            "re-poll keeps one slot"
        );
        assert_eq!(token.node().entries().0, 1);
    }
    assert_eq!(token.node().entries().0, 0);
    assert_eq!(wakes(&c), 0);
}

// ===== regressions (issue: leaks, guards, deadlines on link graphs) =====

#[test]
fn a_released_linked_token_cancelled_by_one_parent_leaves_the_other() {
    let server = CancelToken::new();
    for _ in 0..100 {
        let client = CancelToken::new();
        let req = CancelToken::any([&server, &client]);
        let db = req.child();
        drop(req); // released, kept attached for `db`
        client.cancel(); // cancels `req` and `db`, not through `server`
        drop(db);
        assert_eq!(server.node().entries().0, 0, "`req` left `server`");
        // `req` held a reference to `server` as its parent.
        assert_eq!(server.node().ref_count(), 1, "and was freed");
    }
    // Only the handles' own reference: dropping `server` frees it.
    assert_eq!(server.node().ref_count(), 1, "no cycle keeps the server");
}

#[test]
fn deadline_is_linear_on_a_graph_of_links() {
    // Each level links the previous token and a child of it: 2^levels
    // paths to the root, but only 2 * levels nodes.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let root = CancelToken::new();
        let mut t = root.child();
        for _ in 0..64 {
            t = CancelToken::any([&t, &t.child()]);
        }
        let _ = tx.send((t.deadline(), format!("{t:?}").len()));
    });
    let (deadline, _) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("deadline() on 128 nodes took more than 20 s: not linear");
    assert_eq!(deadline, None);
}

#[test]
fn a_guard_dropped_by_an_earlier_callback_of_the_same_cancel_stops_it() {
    let runs = StdArc::new(AtomicUsize::new(0));
    let token = CancelToken::new();
    let later: StdArc<std::sync::Mutex<Option<OnCancel>>> = Default::default();
    let _first = token.on_cancel({
        let later = later.clone();
        move |_| drop(later.lock().unwrap().take())
    });
    *later.lock().unwrap() = Some(token.on_cancel({
        let runs = runs.clone();
        move |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        }
    }));
    token.cancel();
    assert!(later.lock().unwrap().is_none(), "the first callback ran");
    assert_eq!(runs.load(Ordering::SeqCst), 0, "the second never started");
}

#[test]
fn a_guard_dropped_inside_its_own_callback_returns() {
    let token = CancelToken::new();
    let me: StdArc<std::sync::Mutex<Option<OnCancel>>> = Default::default();
    *me.lock().unwrap() = Some(token.on_cancel({
        let me = me.clone();
        move |_| drop(me.lock().unwrap().take())
    }));
    token.cancel(); // would deadlock if the guard waited for itself
    assert!(me.lock().unwrap().is_none());
}

#[test]
fn a_guard_dropped_while_its_callback_runs_elsewhere_waits_for_it() {
    use std::sync::mpsc;
    let token = CancelToken::new();
    let finished = StdArc::new(std::sync::atomic::AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let guard = token.on_cancel({
        let finished = finished.clone();
        move |_| {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            finished.store(true, Ordering::SeqCst);
        }
    });
    let canceller = std::thread::spawn({
        let token = token.clone();
        move || token.cancel()
    });
    started_rx.recv().unwrap(); // the callback is running on `canceller`
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let dropper = std::thread::spawn({
        let finished = finished.clone();
        move || {
            drop(guard);
            dropped_tx.send(finished.load(Ordering::SeqCst)).unwrap();
        }
    });
    // While the callback is held, the drop must not return (had it, it
    // would report `finished == false` here).
    assert!(
        dropped_rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err(),
        "the guard's drop returned while its callback was still running"
    );
    release_tx.send(()).unwrap();
    assert!(
        dropped_rx.recv().unwrap(),
        "returned only after it finished"
    );
    dropper.join().unwrap();
    assert!(canceller.join().unwrap());
}
