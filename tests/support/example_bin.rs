//! Where the examples' binaries are, for the tests that run them
//! (`tests/echo_server.rs`, `tests/entry_points.rs`; included with
//! `#[path]`, not a test target itself).

use std::path::PathBuf;

/// The shared modules each example includes with `#[path]`.
fn sources(example: &str) -> Vec<String> {
    let shared: &[&str] = match example {
        "start_tokio" | "start_smol" | "start_async_std" => &["entry/job.rs", "cli/mod.rs"],
        "tour" | "drop_handle" | "shared_flag" | "timeout" | "shutdown_broadcast" => {
            &["patterns/mod.rs", "cli/mod.rs"]
        }
        _ => &["cli/mod.rs"],
    };
    std::iter::once(format!("{example}.rs"))
        .chain(shared.iter().map(|s| s.to_string()))
        .collect()
}

/// `target/<profile>/examples/<name>`, checked to be newer than its
/// sources.
pub(crate) fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let hint = "`cargo test --all-features` builds it (`cargo test --test <name>` alone does not)";
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: {hint}", bin.display()));
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for source in sources(name) {
        let edited = std::fs::metadata(examples.join(&source))
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| panic!("examples/{source}: {e}"));
        assert!(
            built >= edited,
            "{} is older than examples/{source}: {hint}",
            bin.display()
        );
    }
    bin
}
