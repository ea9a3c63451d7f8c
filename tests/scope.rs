//! Cancel scopes beyond the contract's cases: panics in hosted sections,
//! runtime shutdown, nesting, and the misuse a user can report as an error.
//! On the simulation runtime, so every order and every clock reading is
//! deterministic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cancelkit::scope::{self, SectionKind};
use cancelkit::sim::Sim;
use cancelkit::token::CancelKind;
use cancelkit::{CancelToken, JoinError, Runtime, SpawnerExt, TaskGroup, Timer, timeout};

const HOUR: Duration = Duration::from_secs(3600);

fn panic_message(err: JoinError) -> String {
    match err {
        JoinError::Panicked(p) => p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default(),
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[test]
fn a_panic_in_a_hosted_shield_is_the_tasks_panic() {
    let sim = Sim::new();
    let in_shield = CancelToken::new();
    let task = sim.spawn({
        let (sim, in_shield) = (sim.clone(), in_shield.clone());
        async move {
            scope::shield(&sim, HOUR, {
                let sim = sim.clone();
                async move {
                    in_shield.cancel();
                    sim.sleep(Duration::from_millis(5)).await;
                    panic!("shield broke");
                }
            })
            .await
        }
    });
    let out = sim.block_on(async {
        in_shield.cancelled().await;
        task.abort();
        task.await
    });
    assert_eq!(panic_message(out.unwrap_err()), "shield broke");
    // The runtime carries on.
    assert_eq!(sim.block_on(sim.spawn(async { 1 })).unwrap(), 1);
}

#[test]
fn a_panic_in_a_shield_still_awaited_is_the_tasks_panic() {
    let sim = Sim::new();
    let task = sim.spawn({
        let sim = sim.clone();
        async move { scope::shield(&sim, HOUR, async { panic!("in place") }).await }
    });
    assert_eq!(panic_message(sim.block_on(task).unwrap_err()), "in place");
}

#[test]
fn a_panic_in_a_cleanup_reaches_whoever_cancels_the_task() {
    let sim = Sim::new();
    let armed = CancelToken::new();
    let task = sim.spawn({
        let (sim, armed) = (sim.clone(), armed.clone());
        async move {
            scope::cleanup(&sim, HOUR, |_| async { panic!("rollback failed") }).unwrap();
            armed.cancel();
            std::future::pending::<()>().await
        }
    });
    let out = sim.block_on(async {
        armed.cancelled().await;
        task.abort();
        task.await
    });
    assert_eq!(panic_message(out.unwrap_err()), "rollback failed");
}

#[test]
fn a_shield_dropped_by_code_in_a_live_task_is_kept_and_waited_for() {
    let sim = Sim::new();
    let done = Arc::new(Mutex::new(Vec::new()));
    let task = sim.spawn({
        let (sim, done) = (sim.clone(), done.clone());
        async move {
            let slow = scope::shield(&sim, HOUR, {
                let (sim, done) = (sim.clone(), done.clone());
                async move {
                    sim.sleep(Duration::from_millis(50)).await;
                    done.lock().unwrap().push("shield");
                }
            });
            // The timeout drops the shield unfinished: the task keeps it.
            let timed_out = timeout(&sim, Duration::from_millis(1), slow).await.is_err();
            done.lock().unwrap().push("task body");
            timed_out
        }
    });
    let start = sim.now();
    assert!(
        sim.block_on(task).unwrap(),
        "the timeout gave up on the shield"
    );
    assert_eq!(*done.lock().unwrap(), ["task body", "shield"]);
    assert!(sim.now() >= start + Duration::from_millis(50));
}

#[test]
fn a_shield_outside_a_task_is_just_its_future() {
    let sim = Sim::new();
    let dropped = CancelToken::new();
    let guard = dropped.clone().drop_guard();
    let out = sim.block_on(timeout(
        &sim,
        Duration::from_millis(1),
        scope::shield(&sim, HOUR, async move {
            let _guard = guard;
            std::future::pending::<()>().await
        }),
    ));
    assert!(out.is_err());
    assert!(dropped.is_cancelled(), "no task to keep it: it is dropped");
}

#[test]
fn runtime_shutdown_drops_hosted_shields_and_the_handle_reports_cancelled() {
    let sim = Sim::new();
    let (in_shield, dropped) = (CancelToken::new(), CancelToken::new());
    let task = sim.spawn({
        let (sim, in_shield) = (sim.clone(), in_shield.clone());
        let guard = dropped.clone().drop_guard();
        async move {
            scope::shield(&sim, HOUR, async move {
                let _guard = guard;
                in_shield.cancel();
                std::future::pending::<()>().await
            })
            .await
        }
    });
    sim.block_on(in_shield.cancelled());
    task.abort();
    sim.settle(); // the shield is hosted now, waiting
    assert!(!task.is_finished());
    drop(sim);
    assert!(dropped.is_cancelled());
    let out = futures_lite::future::block_on(task);
    assert!(matches!(out, Err(JoinError::Cancelled)), "{out:?}");
}

#[test]
fn nested_shields_each_get_their_own_grace() {
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let (in_inner, release) = (CancelToken::new(), CancelToken::new());
    let finished = CancelToken::new();
    group
        .spawn_named("nested", {
            let (sim, in_inner, release, finished) = (
                sim.clone(),
                in_inner.clone(),
                release.clone(),
                finished.clone(),
            );
            move |_| async move {
                // The outer shield's grace is short; the inner one's long.
                scope::shield(&sim, Duration::from_millis(10), {
                    let sim = sim.clone();
                    async move {
                        scope::shield(&sim, HOUR, async move {
                            in_inner.cancel();
                            release.cancelled().await;
                            finished.cancel();
                        })
                        .await
                    }
                })
                .await
            }
        })
        .detach();
    let report = sim.block_on(async {
        in_inner.cancelled().await;
        let shutdown = sim.spawn(group.shutdown(Duration::ZERO));
        // Past the outer grace: the outer shield overran and was dropped,
        // the inner one is kept on its own grace.
        sim.sleep(Duration::from_millis(20)).await;
        assert!(!shutdown.is_finished());
        release.cancel();
        shutdown.await.unwrap()
    });
    assert!(finished.is_cancelled());
    let kinds: Vec<_> = report.overruns.iter().map(|o| o.section.kind).collect();
    assert_eq!(kinds, [SectionKind::Shield], "{report}");
    assert!(report.to_string().contains("overran its grace"), "{report}");
}

#[test]
fn a_shield_inside_a_cleanup_is_kept_past_the_cleanups_grace() {
    let sim = Sim::new();
    let armed = CancelToken::new();
    let flushed = CancelToken::new();
    let task = sim.spawn({
        let (sim, armed, flushed) = (sim.clone(), armed.clone(), flushed.clone());
        async move {
            scope::cleanup(&sim, Duration::from_millis(5), {
                let sim = sim.clone();
                move |_| async move {
                    let flush = {
                        let sim = sim.clone();
                        async move {
                            sim.sleep(Duration::from_millis(50)).await;
                            flushed.cancel();
                        }
                    };
                    scope::shield(&sim, HOUR, flush).await
                }
            })
            .unwrap();
            armed.cancel();
            std::future::pending::<()>().await
        }
    });
    sim.block_on(async {
        armed.cancelled().await;
        task.cancel().await
    });
    assert!(flushed.is_cancelled());
}

#[test]
fn cleanup_registered_by_a_cleanup_runs_if_that_cleanup_overruns() {
    let sim = Sim::new();
    let armed = CancelToken::new();
    let second = Arc::new(Mutex::new(None));
    let task = sim.spawn({
        let (sim, armed, second) = (sim.clone(), armed.clone(), second.clone());
        async move {
            scope::cleanup(&sim, Duration::from_millis(5), {
                let sim = sim.clone();
                move |_| async move {
                    // Registered on the cleanup's own scope: its grace.
                    scope::cleanup(&sim, HOUR, move |cause| async move {
                        *second.lock().unwrap() = Some(cause.kind());
                    })
                    .unwrap();
                    std::future::pending::<()>().await
                }
            })
            .unwrap();
            armed.cancel();
            std::future::pending::<()>().await
        }
    });
    sim.block_on(async {
        armed.cancelled().await;
        task.cancel().await
    });
    assert_eq!(*second.lock().unwrap(), Some(CancelKind::DeadlineExceeded));
}

#[test]
fn cleanup_outside_a_task_is_refused_and_given_back() {
    let sim = Sim::new();
    let ran = CancelToken::new();
    let cleanup = {
        let ran = ran.clone();
        move |_| async move {
            ran.cancel();
        }
    };
    let err = scope::cleanup(&sim, HOUR, cleanup).unwrap_err();
    assert!(err.to_string().contains("no cancelkit task"), "{err}");
    // The closure comes back, unrun, for the caller to use otherwise.
    let scope::Unhosted(cleanup) = err;
    assert!(!ran.is_cancelled());
    futures_lite::future::block_on(cleanup(cancelkit::token::Cancelled::new()));
    assert!(ran.is_cancelled());
}

#[test]
fn a_cleanup_whose_token_detaches_is_dropped_unrun() {
    let sim = Sim::new();
    let ran = CancelToken::new();
    let out = sim.block_on(sim.spawn({
        let (sim, ran) = (sim.clone(), ran.clone());
        async move {
            let lease = CancelToken::new();
            scope::cleanup_on(&lease, &sim, HOUR, move |_| async move {
                ran.cancel();
            })
            .unwrap();
            drop(lease); // nobody can cancel it any more
            sim.sleep(Duration::from_millis(1)).await;
            7
        }
    }));
    assert_eq!(out.unwrap(), 7);
    assert!(!ran.is_cancelled());
}

#[test]
fn move_on_after_zero_polls_once_and_max_never_fires() {
    let sim = Sim::new();
    let polls = Arc::new(Mutex::new(0));
    let out = sim.block_on(scope::move_on_after(&sim, Duration::ZERO, {
        let polls = polls.clone();
        std::future::poll_fn(move |_| {
            *polls.lock().unwrap() += 1;
            std::task::Poll::<()>::Pending
        })
    }));
    assert_eq!((out, *polls.lock().unwrap()), (None, 1));
    // Duration::MAX: no timer at all, so the sim reports the deadlock
    // instead of jumping to a far-away deadline.
    let stuck = sim.try_block_on(scope::move_on_after(
        &sim,
        Duration::MAX,
        std::future::pending::<()>(),
    ));
    assert!(stuck.is_err());
}

#[test]
fn tasks_that_never_ask_for_a_scope_get_no_token() {
    // `current()` in one task does not reach another: each has its own.
    let sim = Sim::new();
    let (a, b) = sim.block_on(async {
        let a = sim.spawn(async { scope::current() }).await.unwrap();
        let b = sim.spawn(async { scope::current() }).await.unwrap();
        (a, b)
    });
    a.cancel();
    assert!(!b.is_cancelled());
}

#[test]
fn an_overrun_while_the_task_still_runs_reaches_the_group_report() {
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    let task = group.spawn_named("late", {
        let sim = sim.clone();
        move |_| async move {
            let stuck = scope::shield(&sim, Duration::from_millis(5), std::future::pending::<()>());
            // Handed to the task at 1 ms, overruns at 6 ms, long before
            // the task itself ends.
            let _ = scope::move_on_after(&sim, Duration::from_millis(1), stuck).await;
            sim.sleep(Duration::from_millis(50)).await;
        }
    });
    let report = sim.block_on(async {
        task.await.unwrap();
        group.shutdown(Duration::ZERO).await
    });
    assert_eq!(report.overruns.len(), 1, "{report}");
    assert_eq!(report.overruns[0].task.name(), "late");
}

#[test]
fn a_hosted_panic_is_the_group_tasks_failure() {
    let sim = Sim::new();
    let group = TaskGroup::new(&sim);
    group
        .spawn_named("flaky", {
            let sim = sim.clone();
            move |_| async move {
                let boom = {
                    let sim = sim.clone();
                    async move {
                        sim.sleep(Duration::from_millis(5)).await;
                        panic!("flush failed");
                    }
                };
                // Dropped by the timeout, kept by the task, panics there.
                let _ = timeout(
                    &sim,
                    Duration::from_millis(1),
                    scope::shield(&sim, HOUR, boom),
                )
                .await;
            }
        })
        .detach();
    let report = sim.block_on(async {
        sim.sleep(Duration::from_millis(10)).await;
        group.shutdown(Duration::ZERO).await
    });
    let panicked: Vec<_> = report.panicked().map(|f| f.message.clone()).collect();
    assert_eq!(panicked, ["flush failed"], "{report}");
}

#[test]
fn a_cleanup_in_a_nested_scope_whose_token_outlives_it_neither_hangs_nor_runs() {
    let sim = Sim::new();
    let ran = CancelToken::new();
    let kept = sim.block_on(sim.spawn({
        let (sim, ran) = (sim.clone(), ran.clone());
        async move {
            let inner = sim.clone();
            scope::move_on_after(&sim, HOUR, async move {
                let cleanup = move |_| async move {
                    ran.cancel();
                };
                scope::cleanup(&inner, HOUR, cleanup).unwrap();
                scope::current() // outlives the nested scope, in the output
            })
            .await
        }
    }));
    let kept = kept.unwrap().expect("the nested scope finished");
    assert!(!ran.is_cancelled());
    kept.cancel(); // after the task completed: nothing runs
    assert!(!ran.is_cancelled());
}

#[test]
fn a_disarmed_cleanup_does_not_run() {
    let sim = Sim::new();
    let armed = CancelToken::new();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let task = sim.spawn({
        let (sim, armed, runs) = (sim.clone(), armed.clone(), runs.clone());
        async move {
            for i in 0..3 {
                let runs = runs.clone();
                let undo = scope::cleanup(&sim, HOUR, move |_| async move {
                    runs.lock().unwrap().push(i);
                })
                .unwrap();
                sim.sleep(Duration::from_millis(1)).await;
                if i < 2 {
                    undo.disarm(); // "committed"
                }
            }
            armed.cancel();
            std::future::pending::<()>().await
        }
    });
    sim.block_on(async {
        armed.cancelled().await;
        task.cancel().await
    });
    assert_eq!(*runs.lock().unwrap(), [2]);
}

#[test]
fn a_task_polled_inside_a_section_has_its_own_scope_and_hosts_its_own_cleanup() {
    // A `block_on` of another runtime inside a task's section polls that
    // runtime's tasks on this thread, inside the section's poll. The inner
    // task sees its own scope (no deadline: not the section's), hosts its
    // own cleanup (which runs before its handle resolves: the outer task,
    // blocked in `block_on`, could not run it), and the section sees itself
    // again afterwards.
    let outer = Sim::new();
    let seen = outer.block_on(outer.spawn({
        let outer = outer.clone();
        async move {
            scope::move_on_after(&outer, HOUR, async {
                let inner = Sim::new();
                let (no_deadline, registered, ran) =
                    (CancelToken::new(), CancelToken::new(), CancelToken::new());
                let task = inner.spawn({
                    let inner = inner.clone();
                    let (no_deadline, registered, ran) =
                        (no_deadline.clone(), registered.clone(), ran.clone());
                    async move {
                        if scope::current().deadline().is_none() {
                            no_deadline.cancel();
                        }
                        let cleanup = move |_| async move {
                            ran.cancel();
                        };
                        if scope::cleanup(&inner, HOUR, cleanup).is_ok() {
                            registered.cancel();
                        }
                        std::future::pending::<()>().await
                    }
                });
                inner.block_on(registered.cancelled());
                let out = inner.block_on(task.cancel());
                (
                    out.is_none(),
                    no_deadline.is_cancelled(),
                    ran.is_cancelled(),
                    scope::current().deadline().is_some(),
                )
            })
            .await
        }
    }));
    assert_eq!(seen.unwrap(), Some((true, true, true, true)));
}
