//! loom models of the token's races. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --lib loom_`
//! (what `ci/loom.sh` does).
//!
//! Each model states the property it checks; loom explores every
//! interleaving of the token's atomics and locks — waiters included, since
//! they park in the token's own slab — up to the preemption bound.

use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::thread;

use super::node;
use super::*;
use crate::loom::Arc;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// A counter that is not part of the model (it only records outcomes).
fn counter() -> StdArc<AtomicUsize> {
    StdArc::new(AtomicUsize::new(0))
}

#[test]
fn loom_cancel_vs_cancelled_registration_never_loses_the_wakeup() {
    model(|| {
        let token = CancelToken::new();
        let t2 = token.clone();
        let th = thread::spawn(move || {
            t2.cancel();
        });
        loom::future::block_on(token.cancelled());
        th.join().unwrap();
    });
}

#[test]
fn loom_one_cancel_wakes_two_waiters() {
    model(|| {
        let token = CancelToken::new();
        let waiter = {
            let t = token.clone();
            thread::spawn(move || loom::future::block_on(t.cancelled()))
        };
        let canceller = {
            let t = token.clone();
            thread::spawn(move || {
                t.cancel();
            })
        };
        loom::future::block_on(token.cancelled());
        waiter.join().unwrap();
        canceller.join().unwrap();
    });
}

#[test]
fn loom_cancel_vs_child_creation_never_misses_the_child() {
    model(|| {
        let parent = CancelToken::new();
        let p2 = parent.clone();
        let th = thread::spawn(move || {
            p2.cancel();
        });
        let child = parent.child();
        th.join().unwrap();
        assert!(
            child.is_cancelled(),
            "a child created during a cancel escaped it"
        );
        assert!(child.reason().unwrap().same_as(&parent.reason().unwrap()));
    });
}

#[test]
fn loom_cancel_vs_child_drop_leaves_no_entry_behind() {
    model(|| {
        let parent = CancelToken::new();
        let child = parent.child();
        let th = thread::spawn(move || drop(child));
        parent.cancel();
        th.join().unwrap();
        assert_eq!(parent.node().entries().0, 0);
    });
}

#[test]
fn loom_two_causes_exactly_one_wins_everywhere() {
    model(|| {
        let token = CancelToken::new();
        let child = token.child();
        let t2 = token.clone();
        let th = thread::spawn(move || t2.cancel_with(CancelKind::Shutdown, "shutdown"));
        let main_won = token.cancel_with(CancelKind::Explicit, "explicit");
        let other_won = th.join().unwrap();
        assert!(main_won ^ other_won, "exactly one cancel wins");
        let why = token.reason().unwrap();
        let expected = if main_won {
            CancelKind::Explicit
        } else {
            CancelKind::Shutdown
        };
        assert_eq!(why.kind(), expected);
        assert!(child.reason().unwrap().same_as(&why));
    });
}

#[test]
fn loom_callback_registration_vs_cancel_runs_it_exactly_once() {
    model(|| {
        let runs = counter();
        let token = CancelToken::new();
        let t2 = token.clone();
        let th = thread::spawn(move || {
            t2.cancel();
        });
        let guard = token.on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, StdOrdering::SeqCst);
            }
        });
        th.join().unwrap();
        assert_eq!(runs.load(StdOrdering::SeqCst), 1);
        drop(guard);
    });
}

#[test]
fn loom_guard_drop_vs_cancel_runs_at_most_once_and_leaves_nothing() {
    model(|| {
        let runs = counter();
        let token = CancelToken::new();
        let guard = token.on_cancel({
            let runs = runs.clone();
            move |_| {
                runs.fetch_add(1, StdOrdering::SeqCst);
            }
        });
        let th = thread::spawn(move || drop(guard));
        token.cancel();
        th.join().unwrap();
        assert!(runs.load(StdOrdering::SeqCst) <= 1);
        assert_eq!(token.node().entries().0, 0);
    });
}

/// The guard's rule: once `drop(guard)` returns, the callback has finished
/// or never starts. The callback asserts it did not start after the drop
/// returned, and the dropper asserts that a started callback had finished.
#[test]
fn loom_guard_drop_returns_only_once_its_callback_finished_or_never_starts() {
    use loom::sync::atomic::{AtomicBool, Ordering as LoomOrdering};
    model(|| {
        let token = CancelToken::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let guard = token.on_cancel({
            let (dropped, started, finished) = (dropped.clone(), started.clone(), finished.clone());
            move |_| {
                started.store(true, LoomOrdering::SeqCst);
                assert!(
                    !dropped.load(LoomOrdering::SeqCst),
                    "started after its guard's drop returned"
                );
                finished.store(true, LoomOrdering::SeqCst);
            }
        });
        let th = {
            let token = token.clone();
            thread::spawn(move || {
                token.cancel();
            })
        };
        drop(guard);
        dropped.store(true, LoomOrdering::SeqCst);
        if started.load(LoomOrdering::SeqCst) {
            assert!(
                finished.load(LoomOrdering::SeqCst),
                "drop returned mid-callback"
            );
        }
        th.join().unwrap();
    });
}

#[test]
fn loom_deadline_vs_explicit_cancel_one_cause_wins() {
    model(|| {
        let token = CancelToken::new();
        let node = token.node().clone();
        let th = thread::spawn(move || {
            node::cancel(&node, node::deadline_cause(std::panic::Location::caller()))
        });
        let explicit_won = token.cancel();
        let deadline_won = th.join().unwrap();
        assert!(explicit_won ^ deadline_won);
        let kind = token.reason().unwrap().kind();
        if deadline_won {
            assert_eq!(kind, CancelKind::DeadlineExceeded);
        } else {
            assert_eq!(kind, CancelKind::Explicit);
        }
    });
}

#[test]
fn loom_linked_token_vs_either_parent_never_misses_the_cancel() {
    model(|| {
        let a = CancelToken::new();
        let b = CancelToken::new();
        let b2 = b.clone();
        let th = thread::spawn(move || {
            b2.cancel();
        });
        let link = CancelToken::any([&a, &b]);
        th.join().unwrap();
        assert!(link.is_cancelled());
        drop(link);
        assert_eq!(a.node().entries().0, 0, "the link left an entry in a");
    });
}

#[test]
fn loom_middle_drop_vs_root_cancel_still_reaches_the_grandchild() {
    model(|| {
        let root = CancelToken::new();
        let middle = root.child();
        let grandchild = middle.child();
        let th = thread::spawn(move || drop(middle));
        root.cancel();
        th.join().unwrap();
        assert!(grandchild.is_cancelled());
    });
}

#[test]
fn loom_concurrent_last_drops_of_parent_and_child_detach_cleanly() {
    model(|| {
        let root = CancelToken::new();
        let middle = root.child();
        let leaf = middle.child();
        let th = thread::spawn(move || drop(leaf));
        drop(middle);
        th.join().unwrap();
        assert_eq!(root.node().entries().0, 0, "the chain detached fully");
    });
}

#[test]
fn loom_clone_and_drop_vs_cancel() {
    model(|| {
        let token = CancelToken::new();
        let t2 = token.clone();
        let th = thread::spawn(move || {
            let t3 = t2.clone();
            drop(t2);
            t3.is_cancelled()
        });
        token.cancel();
        let _ = th.join().unwrap();
        assert!(token.is_cancelled());
    });
}

#[test]
fn loom_waiter_giving_up_vs_cancel_leaves_no_slot() {
    model(|| {
        let token = CancelToken::new();
        let t2 = token.clone();
        let th = thread::spawn(move || {
            let waker = futures_task_noop();
            let mut f = Box::pin(t2.cancelled());
            let _ = f.as_mut().poll(&mut std::task::Context::from_waker(&waker));
            drop(f);
        });
        token.cancel();
        th.join().unwrap();
        assert_eq!(token.node().entries().0, 0);
    });
}

#[test]
fn loom_detaching_wakes_a_waiter_that_is_not_a_handle() {
    model(|| {
        let token = CancelToken::new();
        let node = token.node().clone();
        let th = thread::spawn(move || drop(token));
        loom::future::block_on(Wait::new(&node, true));
        th.join().unwrap();
        assert!(node.is_detached());
    });
}

/// A waker that does nothing (the model only checks bookkeeping).
fn futures_task_noop() -> std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: StdArc<Self>) {}
    }
    StdArc::new(Noop).into()
}

#[test]
fn loom_a_released_node_with_a_child_keeps_its_non_handle_waiter() {
    model(|| {
        let root = CancelToken::new();
        let child = root.child();
        let node = root.node().clone();
        let mut wait = Box::pin(Wait::new(&node, true));
        let th = thread::spawn(move || drop(root));
        let waker = futures_task_noop();
        let early = wait
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        th.join().unwrap();
        assert!(early.is_pending(), "a node with a child is not detached");
        let later = wait
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        assert!(later.is_pending(), "still attached through its child");
        drop(child);
        loom::future::block_on(wait);
        assert!(node.is_detached());
    });
}

/// A released linked token whose last child is dropped while another of its
/// parents cancels it leaves its other parent either way (no leak).
#[test]
fn loom_released_link_cancel_vs_child_drop_leaves_the_other_parent() {
    model(|| {
        let server = CancelToken::new();
        let client = CancelToken::new();
        let req = CancelToken::any([&server, &client]);
        let db = req.child();
        drop(req);
        let th = thread::spawn(move || {
            client.cancel();
        });
        drop(db);
        th.join().unwrap();
        assert_eq!(server.node().entries().0, 0);
    });
}

/// A token dropped after it was seen cancelled — while the cancel that
/// marked it is still walking — still runs its callbacks: the cancel, not
/// the release, drains them.
#[test]
fn loom_last_drop_of_a_child_seen_cancelled_mid_walk_keeps_its_callback() {
    model(|| {
        let runs = counter();
        let parent = CancelToken::new();
        let child = parent.child();
        child
            .on_cancel({
                let runs = runs.clone();
                move |_| {
                    runs.fetch_add(1, StdOrdering::SeqCst);
                }
            })
            .forget();
        let th = {
            let parent = parent.clone();
            thread::spawn(move || {
                parent.cancel();
            })
        };
        let seen_cancelled = child.is_cancelled();
        drop(child);
        th.join().unwrap();
        let runs = runs.load(StdOrdering::SeqCst);
        assert!(runs <= 1);
        if seen_cancelled {
            assert_eq!(runs, 1, "cancelled, yet its callback was dropped unrun");
        }
    });
}

// ===== the intrusive list of children and the shared handle count =====

/// Two neighbouring children leaving at once rewrite each other's links
/// (under the parent's lock): loom checks every access to the links, and
/// the list ends empty with no reference left behind.
#[test]
fn loom_neighbouring_children_leave_the_list_at_once() {
    model(|| {
        let parent = CancelToken::new();
        let a = parent.child();
        let b = parent.child();
        let c = parent.child();
        let th = thread::spawn(move || drop(b));
        drop(a);
        th.join().unwrap();
        assert_eq!(parent.node().entries().0, 1, "only `c` is left");
        drop(c);
        assert_eq!(parent.node().entries().0, 0);
        assert_eq!(parent.node().ref_count(), 1, "no child holds the parent");
    });
}

/// A child leaving the list while a cancel drains it: either it left
/// first, or the cancel took it (and marked it); the sibling that stays is
/// cancelled either way, and no reference is lost or given back twice.
#[test]
fn loom_a_child_leaving_races_the_cancel_that_drains_the_list() {
    model(|| {
        let parent = CancelToken::new();
        let stays = parent.child();
        let leaves = parent.child();
        let th = thread::spawn(move || drop(leaves));
        parent.cancel();
        th.join().unwrap();
        assert!(stays.reason().unwrap().same_as(&parent.reason().unwrap()));
        assert_eq!(parent.node().entries().0, 0);
        assert_eq!(stays.node().ref_count(), 1, "the drained list let go");
        drop(stays);
        assert_eq!(parent.node().ref_count(), 1);
    });
}

/// The last two clones of a token dropped at once: exactly one of them
/// releases the node, which leaves its parent once.
#[test]
fn loom_the_last_two_clones_dropped_at_once_release_once() {
    model(|| {
        let parent = CancelToken::new();
        let child = parent.child();
        let other = child.clone();
        let th = thread::spawn(move || drop(other));
        drop(child);
        th.join().unwrap();
        assert_eq!(parent.node().entries().0, 0);
        assert_eq!(parent.node().ref_count(), 1);
    });
}

// ===== the intrusive list of waiters =====

/// A waiter leaving (its future dropped) while a cancel takes the list and
/// its neighbour stays: loom checks every access to the waiters' links and
/// that the leaving future's memory is never touched after it is gone
/// (the cancel's last touch is its `Release` store of `queued`); the one
/// that stays is woken.
#[test]
fn loom_a_waiter_leaving_while_a_cancel_takes_the_list() {
    model(|| {
        let token = CancelToken::new();
        let waker = futures_task_noop();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut stays = Box::pin(token.cancelled());
        assert!(stays.as_mut().poll(&mut cx).is_pending());
        let t2 = token.clone();
        let th = thread::spawn(move || {
            let waker = futures_task_noop();
            let mut leaves = Box::pin(t2.cancelled());
            let _ = leaves
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
            drop(leaves);
        });
        token.cancel();
        th.join().unwrap();
        assert!(stays.as_mut().poll(&mut cx).is_ready());
        drop(stays);
        assert_eq!(token.node().waiters(), 0);
    });
}
