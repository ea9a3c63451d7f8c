#!/usr/bin/env bash
# Every combination of cargo features must compile (features are additive):
# `cargo hack check --feature-powerset`, without needing cargo-hack.
#
# 512 combinations; each `cargo check` recompiles only this crate and runs
# on one core, so two workers (each with its own target directory) split
# them, one per core.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target

features=(tokio smol async-std compio monoio tokio-util sim conformance hyper)
n=${#features[@]}
workers=2

check_share() {
    local worker=$1
    for ((mask = worker; mask < (1 << n); mask += workers)); do
        local set_=()
        for ((i = 0; i < n; i++)); do
            if (( mask & (1 << i) )); then set_+=("${features[i]}"); fi
        done
        local list
        list=$(IFS=,; echo "${set_[*]:-}")
        echo "cargo check --lib --no-default-features --features '${list}'"
        CARGO_TARGET_DIR="target/features-${worker}" \
            cargo check --quiet --lib --no-default-features --features "${list}"
    done
}

pids=()
for ((w = 0; w < workers; w++)); do
    check_share "$w" > "target/features-${w}.log" 2>&1 &
    pids+=($!)
done
failed=0
for ((w = 0; w < workers; w++)); do
    if ! wait "${pids[w]}"; then
        failed=1
        echo "worker ${w} failed; its log:"
        cat "target/features-${w}.log"
    fi
done
checked=$(cat target/features-*.log | grep -c '^cargo check' || true)
echo "${checked} feature combinations checked"
# Each worker's directory holds every dependency in every feature set it
# met (about 4 GB); nothing else uses them.
for ((w = 0; w < workers; w++)); do rm -rf "target/features-${w}"; done
exit "$failed"
