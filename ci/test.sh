#!/usr/bin/env bash
# The gate CI runs, and what a contributor runs by hand: lints, docs, the
# feature matrix, then the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version
# rustfmt and clippy come with the toolchain; say so clearly if not.
cargo fmt --version >/dev/null 2>&1 || { echo "missing rustfmt: rustup component add rustfmt"; exit 1; }
cargo clippy --version >/dev/null 2>&1 || { echo "missing clippy: rustup component add clippy"; exit 1; }

step "fmt"
cargo fmt --check

step "clippy (all features, all targets)"
cargo clippy --all-features --all-targets -- -D warnings

step "docs (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --all-features --no-deps

# docs.rs builds with `--cfg docsrs` on nightly (feature badges); check that
# too when a nightly toolchain is installed.
if cargo +nightly --version >/dev/null 2>&1; then
    step "docs as docs.rs builds them (nightly, --cfg docsrs)"
    RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo +nightly doc --all-features --no-deps
fi

step "every feature combination compiles"
bash ci/features.sh

step "the library builds with its minimum Rust version (ci/msrv.sh)"
bash ci/msrv.sh

step "tests: no features (the runtime-free core)"
cargo test
for feature in tokio smol async-std compio monoio sim hyper; do
    step "tests: --features $feature"
    cargo test --features "$feature"
done

# The README's test command, verbatim.
step "tests: cargo test --all-features"
cargo test --all-features

step "stress tests, release build (token memory and races, smol shutdowns)"
cargo test --release --all-features --test token_memory --test token_stress --test smol_shutdown_stress

step "each S case fails when its line is deliberately broken (--cfg cancelkit_sabotage)"
RUSTFLAGS="--cfg cancelkit_sabotage" CARGO_TARGET_DIR=target/sabotage \
    cargo test --features conformance,tokio --test sabotaged_scopes

step "loom models of the token (ci/loom.sh)"
bash ci/loom.sh

step "the token's unsafe code under AddressSanitizer and valgrind (ci/memcheck.sh)"
bash ci/memcheck.sh

step "examples: the tour prints identical traces on every runtime"
cargo run --example tour --all-features

step "examples: a socket read on compio, cancelled in flight by a token"
cargo run --example compio_read --features compio

step "examples: a deadline and a hang-up across three hops on three runtimes"
cargo run --example deadline_chain --features hyper,tokio,smol,async-std
