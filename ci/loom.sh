#!/usr/bin/env bash
# loom models of the token's races (src/token/loom_tests.rs) and of the task
# harness with cancel scopes (src/loom_scope_tests.rs), exhaustive up to
# a preemption bound. A separate target dir keeps `--cfg loom` builds apart.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/loom" cargo test --release --lib loom_
