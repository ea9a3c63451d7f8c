//! The two reference counts of a token's [`Node`], kept inside the node
//! (on its written half) instead of in front of it as `std::sync::Arc`
//! keeps them, so that a token is one 120-byte allocation:
//!
//! - [`NodeArc`] is a strong reference, like an `Arc<Node>`: the node is
//!   freed when the last one goes. Counted in `Node::refs`.
//! - [`TokenRef`] is what a `CancelToken` holds. All clones of one token
//!   share **one** `NodeArc` reference between them; `Node::handles`
//!   counts the clones, and the last one to go *releases* the node
//!   (`Node::release`: it may detach from its parents) before it gives
//!   that shared reference back. A clone costs one atomic increment, as an
//!   `Arc` clone does, with no second allocation for the shared handle.
//!
//! The counting follows `std::sync::Arc`: increments are `Relaxed` (a new
//! reference is made from an existing one, which keeps the node alive),
//! decrements are `Release`, and the thread that takes a count to zero
//! issues an `Acquire` fence before it frees or releases, so every use of
//! the node through the other references happens before that.
#![allow(unsafe_code)]

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;

use super::node::Node;
use crate::loom::{AtomicU32, Ordering, fence};

/// A count this high means references are leaked in a loop (each costs
/// at least a pointer: 16 GiB of them); abort as `std::sync::Arc` does
/// rather than wrap around to a use after free. The counts are 32 bits
/// wide so that a node fits in 120 bytes (see `node.rs`).
const MAX_REFS: u32 = u32::MAX / 2;

/// Adds one to `count`, aborting on overflow.
#[inline]
fn increment(count: &AtomicU32) {
    if count.fetch_add(1, Ordering::Relaxed) > MAX_REFS {
        std::process::abort();
    }
}

/// Takes one from `count`; says whether that was the last, in which case
/// every earlier use by other holders happens before the return.
#[inline]
fn decrement(count: &AtomicU32) -> bool {
    if count.fetch_sub(1, Ordering::Release) != 1 {
        return false;
    }
    fence(Ordering::Acquire);
    true
}

/// A strong reference to a [`Node`] (see the module docs).
pub(crate) struct NodeArc {
    /// From `Box::leak` in [`NodeArc::new`]: valid, and freed only by the
    /// holder of the last reference.
    ptr: NonNull<Node>,
}

// SAFETY: a `NodeArc` only gives out `&Node`, and `Node` is `Send + Sync`
// (its own impls in `node.rs` say why); the count it shares is atomic.
unsafe impl Send for NodeArc {}
// SAFETY: as for `Send`.
unsafe impl Sync for NodeArc {}

impl NodeArc {
    /// Moves `node` to the heap. `node.refs` must count this reference
    /// plus those the caller will take over with [`NodeArc::from_raw`] (a
    /// parent list's); `new` does not change it.
    pub(super) fn new(node: Node) -> NodeArc {
        NodeArc {
            ptr: NonNull::from(Box::leak(Box::new(node))),
        }
    }

    /// The node's address, with the provenance of its allocation: for the
    /// links of intrusive lists and for telling nodes apart.
    #[inline]
    pub(super) fn as_ptr(&self) -> NonNull<Node> {
        self.ptr
    }

    /// Takes over a reference that was counted and turned into a pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`NodeArc::as_ptr`] of a node whose `refs` still counts one reference that nobody else
    /// will give back: the caller hands that one over.
    #[inline]
    pub(super) unsafe fn from_raw(ptr: NonNull<Node>) -> NodeArc {
        NodeArc { ptr }
    }

    /// Gives this reference back; if it was the last, hands over the node
    /// (instead of dropping it) so the caller can take its parents before
    /// it drops: that is how dropping a long chain stays iterative.
    pub(super) fn into_last(this: NodeArc) -> Option<Box<Node>> {
        let this = ManuallyDrop::new(this);
        if !decrement(&this.refs) {
            return None;
        }
        // SAFETY: the last reference is gone (and the fence in `decrement`
        // orders every other holder's use before this); the node came from
        // `Box::leak` in `new`.
        Some(unsafe { Box::from_raw(this.ptr.as_ptr()) })
    }

    /// Gives back two references to the same node in one step (one atomic
    /// operation instead of two): a token's last handle and the parent
    /// list's reference it got back when it left the list.
    pub(super) fn drop_pair(this: NodeArc, other: NodeArc) {
        debug_assert_eq!(this.ptr, other.ptr);
        std::mem::forget(other);
        let this = ManuallyDrop::new(this);
        if this.refs.fetch_sub(2, Ordering::Release) != 2 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the last two references are gone, as in `into_last`.
        drop(unsafe { Box::from_raw(this.ptr.as_ptr()) });
    }

    /// How many strong references the node has (racy but exact when no
    /// other thread holds one), for tests of what keeps a node alive.
    #[cfg(test)]
    pub(super) fn ref_count(&self) -> u32 {
        self.refs.load(Ordering::Acquire)
    }
}

impl Deref for NodeArc {
    type Target = Node;

    #[inline]
    fn deref(&self) -> &Node {
        // SAFETY: this reference keeps the node alive (`ptr`'s invariant).
        unsafe { self.ptr.as_ref() }
    }
}

impl Clone for NodeArc {
    #[inline]
    fn clone(&self) -> NodeArc {
        increment(&self.refs);
        NodeArc { ptr: self.ptr }
    }
}

impl Drop for NodeArc {
    #[inline]
    fn drop(&mut self) {
        if decrement(&self.refs) {
            // SAFETY: the last reference, as in `into_last`.
            drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
        }
    }
}

/// The reference a `CancelToken` holds: one `NodeArc` shared by all of the
/// token's clones, counted in `Node::handles` (see the module docs).
pub(crate) struct TokenRef {
    /// The shared reference: dropped (given back) only by the last clone.
    node: ManuallyDrop<NodeArc>,
}

impl TokenRef {
    /// The first handle of a node made for a new token: its `handles` is 1
    /// and `node` is the reference the handles share.
    pub(super) fn new(node: NodeArc) -> TokenRef {
        debug_assert_eq!(node.handles.load(Ordering::Relaxed), 1);
        TokenRef {
            node: ManuallyDrop::new(node),
        }
    }

    #[inline]
    pub(super) fn node(&self) -> &NodeArc {
        &self.node
    }
}

impl Clone for TokenRef {
    #[inline]
    fn clone(&self) -> TokenRef {
        increment(&self.node.handles);
        TokenRef {
            // SAFETY: the clones share the one reference counted for them
            // all; only the last clone to drop gives it back (`Drop`), and
            // `self` keeps it alive until then.
            node: ManuallyDrop::new(unsafe { NodeArc::from_raw(self.node.as_ptr()) }),
        }
    }
}

impl Drop for TokenRef {
    #[inline]
    fn drop(&mut self) {
        if decrement(&self.node.handles) {
            let listed = Node::release(&self.node);
            // SAFETY: this is the last clone, so nobody else will give the
            // shared reference back, and `self.node` is not used again.
            let node = unsafe { ManuallyDrop::take(&mut self.node) };
            match listed {
                Some(listed) => NodeArc::drop_pair(node, listed),
                None => drop(node),
            }
        }
    }
}
