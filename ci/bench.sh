#!/usr/bin/env bash
# Runs the benchmarks (a few minutes) and prints one markdown table:
# operation, cancelkit median, anchor median, ratio, target, met/missed.
# Not part of .ci/run's pass/fail: speed is measured here, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //' || echo unknown)
echo "machine: ${cpu}, $(nproc) cores, $(rustc --version)" >&2

cargo bench --all-features --bench runtime >&2
cargo bench --features tokio --bench token >&2
cargo bench --features tokio --bench group >&2
heap=$(cargo bench --bench token_heap 2>/dev/null | grep '^heap/')
heap+=$'\n'$(cargo bench --features tokio --bench group_heap 2>/dev/null | grep '^heap/')
echo "$heap" >&2

python3 ci/bench_table.py <<<"$heap"
