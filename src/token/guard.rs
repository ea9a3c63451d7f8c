//! Guards: [`OnCancel`] unregisters a callback, [`DropGuard`] and
//! [`PanicGuard`] cancel a token when dropped ([F4](crate#F4)).

use std::fmt;
use std::panic::Location;

use super::callback::SharedCallback;
use super::node::{Node, NodeArc};
use super::{CancelKind, CancelToken};

/// Unregisters an [`on_cancel`](CancelToken::on_cancel) callback when
/// dropped.
///
/// ```
/// let token = cancelkit::CancelToken::new();
/// let guard: cancelkit::token::OnCancel = token.on_cancel(|_| unreachable!("unregistered first"));
/// drop(guard);
/// token.cancel();
/// ```
#[must_use = "dropping the guard unregisters the callback; use `.forget()` to keep it"]
pub struct OnCancel {
    pub(super) registration: Option<(NodeArc, u32, SharedCallback)>,
}

impl OnCancel {
    /// Keeps the callback registered for as long as the token lives,
    /// without a guard.
    ///
    /// ```
    /// let token = cancelkit::CancelToken::new();
    /// token.on_cancel(|_| println!("cancelled")).forget();
    /// token.cancel();
    /// ```
    pub fn forget(mut self) {
        self.registration = None;
    }
}

impl fmt::Debug for OnCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnCancel")
            .field("registered", &self.registration.is_some())
            .finish()
    }
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        if let Some((node, key, cell)) = self.registration.take() {
            // Still in the slab: it never started, and now never will.
            drop(Node::remove_entry(&node, key));
            // Otherwise a cancel (or a detach) took it out: make sure it
            // does not start, or wait until it has finished.
            cell.revoke();
        }
    }
}

/// Cancels its token when dropped, unless disarmed. Made by
/// [`CancelToken::drop_guard`].
///
/// ```
/// let token = cancelkit::CancelToken::new();
/// let guard: cancelkit::token::DropGuard = token.clone().drop_guard();
/// drop(guard);
/// assert!(token.is_cancelled());
/// ```
#[must_use = "the token is cancelled as soon as the guard is dropped"]
#[derive(Debug)]
pub struct DropGuard {
    pub(super) token: Option<CancelToken>,
    /// Where the guard was made: the location its cancel reports.
    pub(super) location: &'static Location<'static>,
}

impl DropGuard {
    /// Gives the token back without cancelling it.
    ///
    /// ```
    /// let guard = cancelkit::CancelToken::new().drop_guard();
    /// assert!(!guard.disarm().is_cancelled());
    /// ```
    pub fn disarm(mut self) -> CancelToken {
        self.token
            .take()
            .expect("a DropGuard holds its token until dropped or disarmed")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel_at(CancelKind::GuardDropped, None, self.location);
        }
    }
}

/// Cancels its token when dropped during a panic. Made by
/// [`CancelToken::drop_guard_on_panic`].
///
/// ```
/// let token = cancelkit::CancelToken::new();
/// let guard: cancelkit::token::PanicGuard = token.clone().drop_guard_on_panic();
/// drop(guard); // no panic in progress
/// assert!(!token.is_cancelled());
/// ```
#[must_use = "the guard does its work when dropped; bind it to a variable"]
#[derive(Debug)]
pub struct PanicGuard {
    pub(super) token: Option<CancelToken>,
    /// Where the guard was made: the location its cancel reports.
    pub(super) location: &'static Location<'static>,
}

impl PanicGuard {
    /// Gives the token back without cancelling it.
    ///
    /// ```
    /// let guard = cancelkit::CancelToken::new().drop_guard_on_panic();
    /// assert!(!guard.disarm().is_cancelled());
    /// ```
    pub fn disarm(mut self) -> CancelToken {
        self.token
            .take()
            .expect("a PanicGuard holds its token until dropped or disarmed")
    }
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            if std::thread::panicking() {
                token.cancel_at(CancelKind::GuardDropped, None, self.location);
            }
        }
    }
}
