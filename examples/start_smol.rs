//! The entry-point job on smol, started the way a smol program starts:
//! `smol::block_on`, with cancelkit spawning on smol's global executor
//! (`Smol::current()`, the executor of `smol::spawn`).
//!
//! ```text
//! cargo run --example start_smol --features smol
//! ```
//!
//! The job — a worker pool, timeouts, a token stopping watchers, a graceful
//! shutdown — is in `examples/entry/job.rs`, written once; `start_tokio`
//! and `start_async_std` run it too and print exactly the same lines.
//!
//! A program that uses smol-macros' `main!` gets its executor as an
//! argument instead; taken as `Arc<Executor<'static>>`, it is wrapped with
//! `Smol::from_executor`:
//!
//! ```ignore
//! use std::sync::Arc;
//! use macro_rules_attribute::apply;
//! use smol_macros::{Executor, main};
//!
//! #[apply(main!)]
//! async fn main(ex: Arc<Executor<'static>>) {
//!     job::run(cancelkit::rt::Smol::from_executor(ex)).await;
//! }
//! ```

#[path = "cli/mod.rs"]
mod cli;
#[path = "entry/job.rs"]
mod job;

use cancelkit::rt::Smol;

const USAGE: &str = "\
Usage: cargo run --example start_smol --features smol

Runs the entry-point job (examples/entry/job.rs) inside smol::block_on.
Takes no arguments.";

fn main() {
    cli::Args::none(USAGE);
    smol::block_on(async {
        // smol's global executor: it starts on first use, so this never fails.
        let rt = Smol::current().expect("smol's global executor");
        job::run(rt).await;
    });
}
