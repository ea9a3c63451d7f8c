//! The "timeout" pattern on any runtime:
//!
//! ```text
//! cargo run --example timeout --all-features -- --runtime tokio|tokio-current-thread|smol|async-std
//! ```
//!
//! The pattern itself is in `examples/patterns/mod.rs`, written once against
//! cancelkit's traits; it prints the same lines on every runtime.

#[path = "patterns/mod.rs"]
mod patterns;

fn main() {
    patterns::main_for::<patterns::Timeout>();
}
