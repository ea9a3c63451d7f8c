#!/usr/bin/env bash
# Instructions per operation, counted by callgrind (valgrind): a measure
# that does not move with the machine's load, for A/B comparisons a 2-core
# shared machine cannot resolve by time. Not part of .ci/run.
#
#   bash ci/instructions.sh          # this checkout
#   bash ci/instructions.sh REV      # this checkout and commit REV
#
# Each operation runs N and 2N times; the difference divided by N is the
# cost of one, without start-up. In brackets: the part spent in glibc's
# malloc and free, which moves with allocation sizes and code layout in
# ways unrelated to the change measured (padding a 104-byte allocation by
# 8 to 64 bytes moved spawn + join by -75 to +320 instructions). Operations: spawn + join on tokio
# current-thread and on a smol executor on one thread (cancelkit's `Task`
# and the runtime's own handle), spawn + `cancel().await` of a
# pending task on tokio, and per task of a `TaskGroup` on tokio
# current-thread: a request (child token, task, done, dropped; against a
# tokio-util token + `TaskTracker`, and + `JoinSet`), and an idle task spawned and shut
# down cooperatively (against `TaskTracker`) or forced (against `JoinSet`).
# The program is ci/instructions/src/main.rs.
set -euo pipefail
shopt -s inherit_errexit
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
tokio-util = { version = "0.7", features = ["rt"] }
smol = "2"
[profile.release]
debug = 1
[workspace]
TOML
    # This checkout's lock file on both sides: the same versions of tokio,
    # smol and the rest (they move these counts by more than 5 %).
    cp "$here/Cargo.lock" "$dir/"
    cargo build --quiet --release --manifest-path "$dir/Cargo.toml" \
        --target-dir "$work/target-$1" >&2
    echo "$work/target-$1/release/instructions"
}

# The allocator's share is what callgrind attributes to glibc's malloc.c,
# which needs glibc's debug symbols (Debian: libc6-dbg); without them the
# bracketed column reads 0, and only the totals mean anything.
count() { # $1: binary, $2: mode, $3: N -> "instructions malloc-instructions"
    local out="$work/cg.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$1" "$2" "$3" >/dev/null 2>&1
    callgrind_annotate --threshold=100 --inclusive=no "$out" 2>/dev/null | awk '
        /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
        /malloc\.c:/ && !/=>/ { gsub(",", "", $1); alloc += $1 }
        END { print total, alloc + 0 }'
}

per_op() { # $1: binary, $2: mode -> "total (allocator)" per operation
    local n=20000 a_total a_alloc b_total b_alloc
    read -r a_total a_alloc <<<"$(count "$1" "$2" $n)"
    read -r b_total b_alloc <<<"$(count "$1" "$2" $((2 * n)))"
    echo "$(((b_total - a_total) / n)) ($(((b_alloc - a_alloc) / n)))"
}

labels=(this)
bins=("$(build this "$here")") || exit 1
if [ $# -ge 1 ]; then
    tree="$work/tree"
    git -C "$here" worktree add --detach --quiet "$tree" "$1"
    labels+=("$1")
    bins+=("$(build rev "$tree")") || exit 1
fi

printf '| operation |'; for l in "${labels[@]}"; do printf ' %s |' "$l"; done; echo
printf '|---|'; for _ in "${labels[@]}"; do printf -- '---|'; done; echo
for mode in tokio tokio-native smol smol-native tokio-cancel \
    request request-tokio-util request-joinset coop coop-tokio-util forced forced-joinset; do
    printf '| %s |' "$mode"
    for bin in "${bins[@]}"; do printf ' %s |' "$(per_op "$bin" "$mode")"; done
    echo
done
