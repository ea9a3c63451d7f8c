#!/usr/bin/env bash
# Instructions per operation, counted by callgrind (valgrind): a measure
# that does not move with the machine's load, for A/B comparisons a 2-core
# shared machine cannot resolve by time. Not part of .ci/run.
#
#   bash ci/instructions.sh          # this checkout
#   bash ci/instructions.sh REV      # this checkout and commit REV
#
# Each operation runs N and 2N times; the difference divided by N is the
# cost of one, without start-up. Operations: spawn + join on tokio
# current-thread and on a smol executor on one thread (cancelkit's `Task`
# and the runtime's own handle), and spawn + `cancel().await` of a
# pending task on tokio. The program is ci/instructions/src/main.rs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${tree:-}" ] && git -C "$here" worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT

build() { # $1: label, $2: cancelkit checkout
    local dir="$work/$1"
    mkdir -p "$dir/src"
    cp "$here/ci/instructions/src/main.rs" "$dir/src/"
    cat >"$dir/Cargo.toml" <<TOML
[package]
name = "instructions"
version = "0.0.0"
edition = "2024"
publish = false
[dependencies]
cancelkit = { path = "$2", features = ["tokio", "smol"] }
tokio = { version = "1", features = ["rt"] }
smol = "2"
[profile.release]
debug = 1
[workspace]
TOML
    cp "$here/Cargo.lock" "$dir/" 2>/dev/null || true
    cargo build --quiet --release --manifest-path "$dir/Cargo.toml" --target-dir "$work/target-$1"
    echo "$work/target-$1/release/instructions"
}

count() { # $1: binary, $2: mode, $3: N -> instructions
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

per_op() { # $1: binary, $2: mode
    local n=20000 a b
    a=$(count "$1" "$2" $n)
    b=$(count "$1" "$2" $((2 * n)))
    echo $(((b - a) / n))
}

labels=(this)
bins=("$(build this "$here")")
if [ $# -ge 1 ]; then
    tree="$work/rev"
    git -C "$here" worktree add --detach --quiet "$tree" "$1"
    labels+=("$1")
    bins+=("$(build rev "$tree")")
fi

printf '| operation |'; for l in "${labels[@]}"; do printf ' %s |' "$l"; done; echo
printf '|---|'; for _ in "${labels[@]}"; do printf -- '---|'; done; echo
for mode in tokio tokio-native smol smol-native tokio-cancel; do
    printf '| %s |' "$mode"
    for bin in "${bins[@]}"; do printf ' %s |' "$(per_op "$bin" "$mode")"; done
    echo
done
