//! The entry-point job on async-std, started the way an async-std program
//! starts: `#[async_std::main]`, with cancelkit wrapping async-std's global
//! runtime (`AsyncStd::current()`).
//!
//! ```text
//! cargo run --example start_async_std --features async-std
//! ```
//!
//! The job — a worker pool, timeouts, a token stopping watchers, a graceful
//! shutdown — is in `examples/entry/job.rs`, written once; `start_tokio`
//! and `start_smol` run it too and print exactly the same lines.

#[path = "cli/mod.rs"]
mod cli;
#[path = "entry/job.rs"]
mod job;

use cancelkit::rt::AsyncStd;

const USAGE: &str = "\
Usage: cargo run --example start_async_std --features async-std

Runs the entry-point job (examples/entry/job.rs) inside #[async_std::main].
Takes no arguments.";

#[async_std::main]
async fn main() {
    cli::Args::none(USAGE);
    let rt = AsyncStd::current().expect("inside #[async_std::main]");
    job::run(rt).await;
}
