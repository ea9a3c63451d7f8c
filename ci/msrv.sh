#!/usr/bin/env bash
# Builds the library with its declared minimum Rust version (`rust-version`
# in Cargo.toml, 1.85): Debian's rustc-web / cargo-web 1.85.0, installed
# from the package registry if they are not there yet. The rustup toolchain
# stays the default; these live in /usr/bin and are called by path.
set -euo pipefail
cd "$(dirname "$0")/.."

version="1.85.0+dfsg3-1~deb12u3"
if ! /usr/bin/rustc --version 2>/dev/null | grep -q '^rustc 1\.85\.'; then
    command -v apt-get >/dev/null || { echo "msrv: no apt-get to install rustc-web 1.85"; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --allow-downgrades \
        "rustc-web=$version" "cargo-web=$version" \
        "libstd-rust-web-dev=$version" "libstd-rust-web-1.85=$version" >/dev/null
fi
/usr/bin/cargo --version
/usr/bin/rustc --version

# Every feature but `compio`: compio itself needs Rust 1.95 (it uses
# `cfg_select!`), so the `compio` feature has that minimum, as documented.
all_but_compio="--features tokio,smol,async-std,monoio,tokio-util,sim,conformance,hyper"
for features in "--no-default-features" "$all_but_compio"; do
    RUSTFLAGS="-D warnings" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR=target/msrv \
        /usr/bin/cargo check --lib $features
done
