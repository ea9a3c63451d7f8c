//! The entry-point job on tokio, started the way a tokio program starts:
//! `#[tokio::main]`, with cancelkit wrapping the runtime it built
//! (`Tokio::current()`).
//!
//! ```text
//! cargo run --example start_tokio --features tokio
//! ```
//!
//! The job — a worker pool, timeouts, a token stopping watchers, a graceful
//! shutdown — is in `examples/entry/job.rs`, written once; `start_smol` and
//! `start_async_std` run it too and print exactly the same lines.

#[path = "cli/mod.rs"]
mod cli;
#[path = "entry/job.rs"]
mod job;

use cancelkit::rt::Tokio;

const USAGE: &str = "\
Usage: cargo run --example start_tokio --features tokio

Runs the entry-point job (examples/entry/job.rs) inside #[tokio::main].
Takes no arguments.";

#[tokio::main]
async fn main() {
    cli::Args::none(USAGE);
    // The runtime `#[tokio::main]` built (multi-thread, all drivers on).
    let rt = Tokio::current().expect("inside #[tokio::main]");
    job::run(rt).await;
}
