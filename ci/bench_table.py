"""Builds the README's ratio table from criterion's estimates (medians) and
the heap benchmark's output (on stdin). Run by ci/bench.sh."""

import json
import pathlib
import sys

ROOT = pathlib.Path("target/criterion")

# (operation, criterion group directory, ours, anchor, target ratio)
ROWS = [
    ("spawn + join via `Task`, tokio current-thread", "spawn_join_tokio-current-thread", "cancelkit", "native", 1.10),
    ("spawn + join via `Task`, tokio multi-thread", "spawn_join_tokio-multi-thread", "cancelkit", "native", 1.10),
    ("spawn + join via `Task`, smol", "spawn_join_smol", "cancelkit", "native", 1.10),
    ("spawn + join via `Task`, async-std", "spawn_join_async-std", "cancelkit", "native", 1.10),
    ("spawn + join via `Task`, compio", "spawn_join_compio", "cancelkit", "native", 1.10),
    ("spawn + join via `Task`, monoio", "spawn_join_monoio", "cancelkit", "native", 1.10),
    ("`spawn_local` + join, tokio `LocalSet` (native: `tokio::task::spawn_local`)",
     "spawn_join_local_tokio-localset", "cancelkit", "native", 1.10),
    ("`spawn_local` + join, smol `LocalExecutor`", "spawn_join_local_smol-localexecutor",
     "cancelkit", "native", 1.10),
    ("`spawn_local` + join, compio", "spawn_join_local_compio", "cancelkit", "native", 1.10),
    ("`spawn_local` + join, monoio", "spawn_join_local_monoio", "cancelkit", "native", 1.10),
    ("`spawn_blocking` + join, tokio (multi-thread)", "spawn_blocking_join_tokio", "cancelkit", "native", 1.10),
    ("`spawn_blocking` + join, smol (native: `unblock`)", "spawn_blocking_join_smol", "cancelkit", "native", 1.10),
    ("`spawn_blocking` + join, async-std", "spawn_blocking_join_async-std", "cancelkit", "native", 1.10),
    ("`spawn_blocking` + join, compio", "spawn_blocking_join_compio", "cancelkit", "native", 1.10),
    ("cancel a pending task and wait, tokio (native: `abort` + await)",
     "cancel_pending_tokio-multi-thread", "cancelkit", "native", None),
    ("cancel a pending task and wait, smol (native: `Task::cancel`)",
     "cancel_pending_smol", "cancelkit", "native", None),
    ("`timeout` around a ready future, tokio", "timeout_ready_tokio", "cancelkit", "native", 0.5),
    ("`timeout` around a ready future, async-std", "timeout_ready_async-std", "cancelkit", "native", 0.5),
    ("`timeout` around a ready future, smol (native: `or` + `Timer`)", "timeout_ready_smol", "cancelkit", "native", 0.5),
    ("`timeout` around a future pending once, tokio", "timeout_pending_tokio", "cancelkit", "native", 1.05),
    ("`timeout` around a future pending once, async-std", "timeout_pending_async-std", "cancelkit", "native", 1.05),
    ("`timeout` around a future pending once, smol", "timeout_pending_smol", "cancelkit", "native", 1.05),
    ("`timeout` around a future pending once, compio (ours: async-io's timer)",
     "timeout_pending_compio", "cancelkit", "native", 1.05),
    ("`sleep` via `Timer` (create, register, drop), tokio", "sleep_register_tokio", "cancelkit", "native", 1.05),
    ("`sleep` via `Timer` (create, register, drop), smol", "sleep_register_smol", "cancelkit", "native", 1.05),
    ("`sleep` via `Timer` (create, register, drop), compio (ours: async-io's timer)",
     "sleep_register_compio", "cancelkit", "native", 1.05),
    ("group shutdown, 10 000 idle tasks, cooperative", "shutdown_10000_idle_cooperative",
     "cancelkit", "tokio-util-tracker", 1.0),
    ("group shutdown, 10 000 idle tasks, cooperative", "shutdown_10000_idle_cooperative",
     "cancelkit", "tokio-joinset", 1.0),
    ("group shutdown, 10 000 idle tasks, forced after the grace", "shutdown_10000_idle_forced",
     "cancelkit", "tokio-joinset", 1.0),
    ("spawn + join into a `TaskGroup` vs a bare `spawn`", "spawn_join_group-vs-bare",
     "cancelkit-group", "cancelkit-bare", 1.2),
    ("per request, 100 000 times: child token, task in a group, done, dropped (vs tokio-util token + `TaskTracker`)",
     "per_request_100000", "cancelkit", "tokio-util-tracker", 1.0),
    ("per request, the same, vs tokio-util token + `JoinSet` (which can abort what is left, as a forced shutdown needs)",
     "per_request_100000", "cancelkit", "tokio-util-joinset", None),
    ("spawn + join of a task that calls `scope::current()` vs one that does not, tokio current-thread",
     "spawn_join_current_tokio-current-thread", "cancelkit", "native", None),
    ("`is_cancelled()` uncontended", "is_cancelled_uncontended", "cancelkit", "tokio-util", 0.35),
    ("`is_cancelled()` uncontended", "is_cancelled_uncontended", "cancelkit", "futures-abort", 1.3),
    ("`is_cancelled()` while another thread clones and makes children",
     "is_cancelled_while-another-thread-clones-and-makes-children", "cancelkit", "tokio-util", 0.10),
    ("`is_cancelled()` with a second thread also reading",
     "is_cancelled_with-a-second-reader", "cancelkit", "tokio-util", 0.05),
    ("`child()` create", "child_create", "cancelkit", "tokio-util", 0.8),
    ("child drop", "child_drop", "cancelkit", "tokio-util", 0.8),
    ("`cancel()` of a token with 10 000 children", "cancel_10000-children", "cancelkit", "tokio-util", 0.5),
    ("cancel until 10 000 parked tasks observed (tokio multi-thread)",
     "cancel_until-10000-parked-tasks-observed", "cancelkit", "tokio-util", 1.0),
]


def median_ns(group, bench):
    path = ROOT / group / bench / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


print("| operation | cancelkit | anchor | ratio | target | |")
print("|---|---|---|---|---|---|")
for op, group, ours, anchor, target in ROWS:
    try:
        a, b = median_ns(group, ours), median_ns(group, anchor)
    except FileNotFoundError:
        print(f"| {op} | not run | | | {target} | |")
        continue
    ratio = a / b
    if target is None:
        print(f"| {op} | {fmt(a)} | {anchor}: {fmt(b)} | {ratio:.2f} | none | |")
        continue
    met = "met" if ratio <= target else "**missed**"
    print(f"| {op} | {fmt(a)} | {anchor}: {fmt(b)} | {ratio:.2f} | ≤ {target} | {met} |")

# (operation, group, bench, anchor for context, absolute target in ns)
ABSOLUTE = [
    ("`scope::checkpoint()` when not cancelled (polled twice: it yields once)",
     "checkpoint_not-cancelled", "cancelkit", "tokio-util-is-cancelled", 5.0),
]
for op, group, ours, anchor, limit in ABSOLUTE:
    try:
        a, b = median_ns(group, ours), median_ns(group, anchor)
    except FileNotFoundError:
        print(f"| {op} | not run | | | ≤ {limit:g} ns | |")
        continue
    met = "met" if a <= limit else "**missed**"
    print(f"| {op} | {fmt(a)} | {anchor}: {fmt(b)} | {a / b:.2f} | ≤ {limit:g} ns | {met} |")

heap = {}
for line in sys.stdin:
    key, _, value = line.partition(":")
    if value.strip():
        heap[key.strip()] = float(value.split()[0])


def heap_row(op, ours_key, anchor, anchor_key, limit=None, target=None):
    if ours_key not in heap or anchor_key not in heap:
        print(f"| {op} | not run | | | | |")
        return
    ours, theirs = heap[ours_key], heap[anchor_key]
    ratio = ours / theirs
    if limit is not None:
        met = "met" if ours <= limit else "**missed**"
        goal = f"≤ {limit:g} B"
    elif target is not None:
        met = "met" if ratio <= target else "**missed**"
        goal = f"≤ {target}"
    else:
        met, goal = "", "none"
    print(f"| {op} | {ours:.0f} B | {anchor}: {theirs:.0f} B | {ratio:.2f} | {goal} | {met} |")


heap_row("heap bytes per live child", "heap/per-live-child/cancelkit",
         "tokio-util", "heap/per-live-child/tokio-util", limit=128)
heap_row("heap bytes per live group task (parked on its token)", "heap/per-group-task/cancelkit",
         "tokio-joinset", "heap/per-group-task/tokio-joinset")
heap_row("heap bytes per live group task (parked on its token)", "heap/per-group-task/cancelkit",
         "tokio-util-tracker", "heap/per-group-task/tokio-util-tracker")

# The scaling rows: (operation, criterion group directory with {t} for the
# thread count, anchor). No targets: they show how cost grows with threads
# and with N, for a reader on a bigger machine.
SCALING = [
    ("`is_cancelled()` with {t} reader(s) while one thread clones and makes children",
     "scaling_is_cancelled-{t}-readers-one-writer", "tokio-util"),
    ("cancel until 10 000 parked tasks observed, {t} worker thread(s)",
     "scaling_cancel-until-10000-parked-observed-{t}-threads", "tokio-util"),
    ("cancel until 100 000 parked tasks observed, {t} worker thread(s)",
     "scaling_cancel-until-100000-parked-observed-{t}-threads", "tokio-util"),
    ("group shutdown, 100 000 idle tasks, {t} worker thread(s)",
     "scaling_shutdown-100000-idle-{t}-threads", "tokio-joinset"),
]
print()
print("| scaling | cancelkit | anchor | ratio |")
print("|---|---|---|---|")
for op, group, anchor in SCALING:
    for t in (1, 2, 4, 8):
        name = op.format(t=t)
        try:
            a, b = median_ns(group.format(t=t), "cancelkit"), median_ns(group.format(t=t), anchor)
        except FileNotFoundError:
            print(f"| {name} | not run | | |")
            continue
        print(f"| {name} | {fmt(a)} | {anchor}: {fmt(b)} | {a / b:.2f} |")
