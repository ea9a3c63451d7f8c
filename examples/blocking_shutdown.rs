//! Blocking work on any runtime: a group's shutdown asks it to stop, waits
//! the grace, and reports what ignored the request as *abandoned* — not
//! forced (a thread cannot be), and not waited for.
//!
//! ```text
//! cargo run --example blocking_shutdown --all-features -- --runtime tokio|tokio-current-thread|smol|async-std
//! ```
//!
//! The pattern itself is in `examples/patterns/mod.rs`, written once against
//! cancelkit's traits; it prints the same lines on every runtime.

#[path = "patterns/mod.rs"]
mod patterns;

fn main() {
    patterns::main_for::<patterns::BlockingShutdown>();
}
