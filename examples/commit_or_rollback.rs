//! Cancel scopes on any runtime: a transaction commits, or is rolled back
//! by async cleanup when its task is cancelled — and a commit already under
//! way finishes under its shield.
//!
//! ```text
//! cargo run --example commit_or_rollback --all-features -- --runtime tokio|tokio-current-thread|smol|async-std
//! ```
//!
//! The pattern itself is in `examples/patterns/mod.rs`, written once against
//! cancelkit's traits; it prints the same lines on every runtime.

#[path = "patterns/mod.rs"]
mod patterns;

fn main() {
    patterns::main_for::<patterns::CommitOrRollback>();
}
