//! Runs a closure that must panic and tells where the panic was raised,
//! for tests of "panics at the caller's line" (`#[track_caller]`). Shared by
//! test files through `#[path]`; not a test target itself.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// The line of the last panic on this thread, if it was raised in the
    /// file being watched.
    static PANICKED_AT: Cell<Option<u32>> = const { Cell::new(None) };
    static WATCHED: Cell<&'static str> = const { Cell::new("") };
}

/// Runs `f`, expecting a panic; returns its message and the line it was
/// raised at, which must be in a file whose path ends with `file`.
pub(crate) fn panic_of(file: &'static str, f: impl FnOnce()) -> (String, u32) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(l) = info.location() {
                let watched = WATCHED.with(Cell::get);
                if !watched.is_empty() && l.file().ends_with(watched) {
                    PANICKED_AT.with(|p| p.set(Some(l.line())));
                }
            }
            previous(info);
        }));
    });
    WATCHED.with(|w| w.set(file));
    PANICKED_AT.with(|p| p.set(None));
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it did not panic");
    WATCHED.with(|w| w.set(""));
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let line = PANICKED_AT
        .with(Cell::get)
        .unwrap_or_else(|| panic!("the panic ({message}) was not raised in {file}"));
    (message, line)
}
