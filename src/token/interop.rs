//! Interop with [`tokio_util::sync::CancellationToken`], so libraries can
//! accept either kind of token.
//!
//! - [`CancelToken::to_tokio_util`] gives a tokio-util token that is
//!   cancelled when the cancelkit token is (through an
//!   [`on_cancel`](CancelToken::on_cancel) callback: no task, no runtime).
//! - [`CancelToken::follow_tokio_util`] gives a cancelkit token that is
//!   cancelled, with [`CancelKind::External`], when the tokio-util token is.
//!   tokio-util tokens have no callbacks, so this spawns a small task (on any
//!   [`Spawner`]) that waits for it; the task ends when either token is
//!   cancelled or the cancelkit token is dropped.

use std::panic::Location;

use tokio_util::sync::CancellationToken;

use super::{CancelKind, CancelToken, Cancelled};
use crate::Spawner;

impl CancelToken {
    /// A tokio-util token cancelled whenever this token is.
    ///
    /// Cancelling the returned token does not cancel this one (it is like a
    /// child). If this token is already cancelled, so is the result. Like a
    /// callback, the link lives as long as this token can be cancelled: once
    /// every clone is dropped and it has no children, it never fires.
    ///
    /// # Examples
    ///
    /// ```
    /// let ours = cancelkit::CancelToken::new();
    /// let theirs = ours.to_tokio_util();
    /// ours.cancel();
    /// assert!(theirs.is_cancelled());
    /// ```
    pub fn to_tokio_util(&self) -> CancellationToken {
        let theirs = CancellationToken::new();
        self.on_cancel({
            let theirs = theirs.clone();
            move |_| theirs.cancel()
        })
        .forget();
        theirs
    }

    /// A cancelkit token (a root) cancelled, with [`CancelKind::External`],
    /// whenever `theirs` is. The wait runs as a task on `spawner`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "tokio")] {
    /// use cancelkit::{CancelToken, Runtime, rt::Tokio, token::CancelKind};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// let rt = Tokio::new().unwrap();
    /// let theirs = CancellationToken::new();
    /// let ours = CancelToken::follow_tokio_util(&rt, &theirs);
    /// theirs.cancel();
    /// rt.block_on(ours.cancelled());
    /// assert_eq!(ours.reason().unwrap().kind(), CancelKind::External);
    /// # }
    /// ```
    #[track_caller]
    pub fn follow_tokio_util<S: Spawner + ?Sized>(
        spawner: &S,
        theirs: &CancellationToken,
    ) -> CancelToken {
        let location = Location::caller();
        let ours = CancelToken::new();
        if theirs.is_cancelled() {
            ours.cancel_at(CancelKind::External, None, location);
            return ours;
        }
        let theirs = theirs.clone();
        super::deadline::watch(
            spawner,
            ours.node(),
            async move { theirs.cancelled_owned().await },
            Cancelled::with(CancelKind::External, None, location),
        );
        ours
    }
}
