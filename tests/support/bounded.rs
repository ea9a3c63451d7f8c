//! Bounds a test's wait, so that a hang fails the test instead of holding
//! it up for ever. Shared by test files through `#[path]`; not a test
//! target itself.

use std::future::Future;
use std::time::Duration;

/// How long a test waits for something that should happen at once.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

/// `fut`'s output; panics, naming `what`, if it takes longer than LIMIT.
pub(crate) async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(LIMIT).await;
        None
    })
    .await
    .unwrap_or_else(|| panic!("{what} did not finish within {LIMIT:?}"))
}
