//! Each S case must be able to fail. Built only with
//! `RUSTFLAGS="--cfg cancelkit_sabotage"` (see `ci/test.sh`), where
//! `cancelkit::scope::__sabotage::set(n)` deliberately breaks contract line
//! S*n* in the library itself — a shield that is not kept when its task is
//! cancelled (S1), overruns left out of the report (S2), cleanups that run
//! although nothing was cancelled (S3), a `current()` that is not the
//! task's (S4), a nested scope whose expiry cancels the enclosing one (S5).
//! For each, some case of that line must fail, and every case outside the
//! S lines must still pass (S lines build on each other: S2's overrun
//! needs S1's hosting, so breaking S1 may fail S2 too).
#![cfg(cancelkit_sabotage)]

use std::time::Duration;

use cancelkit::conformance::{self, Config};
use cancelkit::rt::Tokio;
use cancelkit::scope::__sabotage;

#[test]
fn each_broken_scope_line_fails_its_own_cases_and_spares_the_rest() {
    let config = Config::default().patience(Duration::from_millis(500));
    let cases = conformance::cases::<Tokio>();
    for line in 1..=5u8 {
        __sabotage::set(line);
        let id = format!("S{line}");
        let mut failed_own = Vec::new();
        for case in &cases {
            let result = conformance::run(|| Tokio::new().unwrap(), case, &config);
            if case.id() == id {
                if let Err(failure) = result {
                    eprintln!("{id} broken, as expected: {failure}");
                    failed_own.push(case.name());
                }
            } else if !case.id().starts_with('S') {
                assert!(
                    result.is_ok(),
                    "with {id} broken, {} ({}) failed too: {:?}",
                    case.name(),
                    case.id(),
                    result.err()
                );
            }
        }
        assert!(
            !failed_own.is_empty(),
            "with {id} broken, every {id} case still passed"
        );
    }
    __sabotage::set(0);
}
