#!/usr/bin/env bash
# Every combination of cargo features must compile (features are additive):
# `cargo hack check --feature-powerset`, without needing cargo-hack.
set -euo pipefail
cd "$(dirname "$0")/.."

features=(tokio smol async-std compio monoio tokio-util sim conformance)
n=${#features[@]}
for ((mask = 0; mask < (1 << n); mask++)); do
    set_=()
    for ((i = 0; i < n; i++)); do
        if (( mask & (1 << i) )); then set_+=("${features[i]}"); fi
    done
    list=$(IFS=,; echo "${set_[*]:-}")
    echo "cargo check --lib --no-default-features --features '${list}'"
    cargo check --quiet --lib --no-default-features --features "${list}"
done
