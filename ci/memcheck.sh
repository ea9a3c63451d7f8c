#!/usr/bin/env bash
# The token's unsafe code (src/token/node.rs, node_ref.rs) under memory
# checkers: the token, task and group tests under nightly AddressSanitizer
# (with LeakSanitizer), then the token's unit tests under valgrind's
# memcheck. Separate target directories keep these builds apart.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "AddressSanitizer needs a nightly toolchain: rustup toolchain install nightly --profile minimal" >&2
    exit 1
fi
target=$(rustc -vV | sed -n 's/^host: //p')

echo "--- AddressSanitizer: token, task and group tests (nightly, $target)"
RUSTFLAGS="-Zsanitizer=address ${RUSTFLAGS:-}" \
    ASAN_OPTIONS="detect_leaks=1" \
    LSAN_OPTIONS="suppressions=$PWD/ci/lsan.supp" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/asan" \
    cargo +nightly test --target "$target" --features tokio,smol,sim,conformance \
    --lib --test token_stress --test token_memory --test conformance --test scope

if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -qq valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
    fi
fi
if command -v valgrind >/dev/null 2>&1; then
    echo "--- valgrind memcheck: the token's unit tests"
    bin=$(cargo test --lib --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"kind":\["lib"\].*"executable":"\([^"]*\)".*/\1/p' | tail -1)
    valgrind -q --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite "$bin" token:: --test-threads=1
else
    echo "--- valgrind: not installed and not installable here; skipped (AddressSanitizer ran)"
fi
