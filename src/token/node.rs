//! The token graph: nodes, their children and callbacks, and the
//! cancellation and detachment algorithms. `CancelToken` (in `mod.rs`) is a
//! thin handle over this.
//!
//! # Structure
//!
//! A [`Node`] is one token's shared state: **one allocation of 120 bytes**
//! (not 128: glibc serves chunks of up to 128 bytes, header included, from
//! its fast bins, about 10 ns quicker when tokens come and go in batches),
//! in two halves. The first 64 bytes hold only fields that are written at
//! most once — the `state` byte, the cause, the immutable parent links — so
//! `is_cancelled()` reads a line that neither clones nor children of the
//! token write. The second half holds what changes: the reference counts
//! (`node_ref.rs`: strong references, and the clones of the token, which
//! share one of them), the lock with the node's mutable state, and the
//! node's own links in its parent's list of children. Whatever the address
//! the allocator gives, the two halves never share a cache line: the
//! written half starts 64 bytes after `state`.
//!
//! A node's children (those with a single parent, i.e. all but linked
//! tokens) form an **intrusive** doubly linked list: the parent holds the
//! head, each child its `prev`/`next` links, all guarded by the parent's
//! lock. A child costs its parent nothing but those two words in the
//! child's own allocation, joins in O(1) and leaves in O(1).
//!
//! Waiting futures form a second intrusive list, of [`Waiter`]s that live
//! in the (pinned) futures themselves: waiting allocates nothing.
//!
//! The rest — linked children (a linked token has several parents, so it
//! cannot sit in one intrusive list), callbacks, and the own deadline —
//! lives in an [`Ext`], allocated on first need only, whose first entry is
//! inline.
//!
//! References point **up**: a node holds strong references to its parents;
//! a parent holds its children (in its list or slab) until they detach or
//! it is cancelled. A token's clones share one reference; when the last
//! clone is dropped the node is *released*, and a released node with no
//! children *detaches* from its parents — dropping its callbacks unrun,
//! since nothing can cancel it any more — which may leave them released and
//! childless in turn: an iterative walk up, never recursion.
//!
//! # Invariants
//!
//! 1. `CANCELLED` is set at most once, by the thread whose `fetch_or` (or
//!    compare-and-swap) set `CLAIMED` (first cause wins), after it wrote
//!    `cause` — or, for a child cancelled through its parent's list, with
//!    `INHERITED` in the same compare-and-swap, `cause` left empty (the
//!    parent's is the cause). Never cleared.
//! 2. `HAS_INNER` is set (with `fetch_or`) before the first child, entry or
//!    deadline is added to a node; `cancel` drains a node only if its own
//!    `fetch_or(CANCELLED)` saw `HAS_INNER`. Both are read-modify-writes of
//!    one atomic, so they are totally ordered: either the canceller sees
//!    `HAS_INNER` and drains, or the adder's later check of `CANCELLED`
//!    under the node's lock sees it and does not add.
//! 3. `cause` is read only after `CANCELLED` was observed with `Acquire`, or
//!    under the node's lock after the canceller released it.
//! 4. Children and entries are added to a node only under its lock and only
//!    while `CANCELLED` is clear (checked under that lock); once a cancel
//!    has drained the node (`CLOSED`), nothing is ever added again.
//! 5. A child is in its parent's list (or, linked, its parent's slab under
//!    the key stored in the child's `parents`) from its creation until it
//!    removes itself (detach) or the parent drains it (cancel); removal
//!    after a drain is a no-op because the parent is `CLOSED`. The list
//!    holds one strong reference to each child in it. A child's `siblings`
//!    links are read and written only under its parent's lock — or, once a
//!    cancel has drained the list, only by that cancel, which owns the list
//!    and its references.
//! 6. A node is *detached* at most once: when its handles are gone and it
//!    has no children (its list is empty and its slab holds no `Child`
//!    entry: `Ext::linked` is zero), observed under its lock (or, if it never had anything
//!    inside, by the release of its last handle); `DETACHED` is set then,
//!    under that lock. Nothing is added to a detached node (adding needs a
//!    handle); what it held is disposed of — callbacks dropped unrun,
//!    waiters woken — unless a cancel has marked it and not drained it yet:
//!    that cancel drains it.
//! 7. A [`Waiter`]'s links and waker are read and written only under the
//!    lock of the node it waits on; it is in that node's list exactly while
//!    `queued` is set. Only its owner (the future, pinned) puts it in; a
//!    cancel or a detach takes it out, under the lock, and stores `queued =
//!    false` (`Release`) as its last touch of it; the owner, before it goes,
//!    takes it out itself unless it reads `false` (`Acquire`) — so no one
//!    touches a waiter once its future is gone.
//!
//! # Lock order
//!
//! No code path holds two node locks at once: cancellation takes a node's
//! children and entries out under its lock and marks the children after
//! releasing it. Linked nodes' `links` lock is never held while taking a
//! node lock. User callbacks and wakers run, and wakers are dropped, with no
//! lock held.
//!
//! # Unsafe code
//!
//! This module and `node_ref.rs` are the crate's only `unsafe` code: the
//! reference counts, and the intrusive lists' raw links. Each block names
//! the invariant above it relies on; the loom models in `loom_tests.rs`
//! cover every concurrent path through them, and CI runs the token, task
//! and group tests under AddressSanitizer.
#![allow(unsafe_code)]

use std::any::Any;
use std::collections::HashSet;
use std::marker::PhantomPinned;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::time::Instant;

use slab::Slab;
use std::task::Waker;

use super::callback::SharedCallback;
use super::cause::{CancelKind, Cancelled};
pub(crate) use super::node_ref::NodeArc;
use crate::loom::{AtomicBool, AtomicU8, AtomicU32, Mutex, Ordering, UnsafeCell, lock};

/// Set once the node is cancelled (invariant 1).
pub(super) const CANCELLED: u8 = 0b01;
/// Set once the node may hold children, entries or a deadline (invariant 2).
const HAS_INNER: u8 = 0b10;
/// Set once, when the node detaches: its handles are gone and it has no
/// children, so nothing can cancel it or observe it any more (invariant 6).
const DETACHED: u8 = 0b100;
/// Set once, by the one cancel that wins the node (invariant 1).
const CLAIMED: u8 = 0b1000;
/// Set with `CANCELLED` when the node was cancelled through its single
/// parent: `cause` stays empty and the cause is the parent's.
const INHERITED: u8 = 0b1_0000;
/// Set once, under the node's lock, when its last handle goes.
const RELEASED: u8 = 0b10_0000;
/// Set once, under the node's lock, when a cancel drains it (invariant 4).
const CLOSED: u8 = 0b100_0000;

pub(super) enum Entry {
    /// A linked child (one with several parents).
    Child(NodeArc),
    /// A user callback registered with `on_cancel` (see `callback.rs`).
    Callback(SharedCallback),
}

/// A link to a parent: the parent and this node's key in its slab.
type Link = (NodeArc, u32);

/// The parents a node follows. Immutable once the node is shared, except
/// the keys of a linked node, which are filled in as it registers.
enum Parents {
    Root,
    /// In `parent`'s intrusive list of children.
    One(NodeArc),
    /// In each parent's slab (a linked token).
    Many(Box<Mutex<Vec<Link>>>),
}

/// The fields written at most once, which `is_cancelled` and `reason` read.
struct ReadHalf {
    /// `CANCELLED | HAS_INNER | DETACHED | CLAIMED | INHERITED`. The only
    /// field `is_cancelled` reads; each bit is set once.
    state: AtomicU8,
    /// Why it was cancelled, unless `INHERITED` (invariants 1, 3): written
    /// once, by the cancel that set `CLAIMED`, before it sets `CANCELLED`.
    cause: UnsafeCell<Option<Cancelled>>,
    parents: Parents,
}

/// Pads the read half to 64 bytes, so the written half starts a cache
/// line after `state` wherever the node is allocated.
const PAD: usize = 64usize.saturating_sub(std::mem::size_of::<ReadHalf>());

/// One token's shared state (see the module docs for its layout).
#[repr(C)]
pub(crate) struct Node {
    read: ReadHalf,
    _pad: [u8; PAD],
    /// Strong references (`node_ref.rs`): the handles' shared one, each
    /// child's reference to it as a parent, its parent's list's reference
    /// to it, and those of waits and timers.
    pub(super) refs: AtomicU32,
    /// The clones of the token (`node_ref.rs`).
    pub(super) handles: AtomicU32,
    inner: Mutex<Inner>,
    /// This node's links in its parent's list: guarded by the parent's
    /// lock (invariant 5).
    siblings: UnsafeCell<Siblings>,
}

// SAFETY: the raw pointers in `Inner` and `Siblings` stand for strong
// references (invariant 5) and are only followed under the lock of the
// list's owner, or by the one cancel that drained the list; everything
// else in a node is `Send + Sync` in its own right.
unsafe impl Send for Node {}
// SAFETY: as for `Send`.
unsafe impl Sync for Node {}

/// A node's mutable state, under its lock. (Its flags — released,
/// detached, closed — are bits of `state`, set under the lock.)
#[derive(Default)]
struct Inner {
    /// The head of the intrusive list of single-parent children.
    first_child: Option<NonNull<Node>>,
    /// The head of the intrusive list of waiting futures (invariant 7).
    waiters: Option<NonNull<Waiter>>,
    /// Linked children, callbacks and the deadline.
    ext: Option<Box<Ext>>,
}

#[derive(Default)]
struct Ext {
    /// This node's own deadline, if it has one (it may only get earlier).
    deadline: Option<Instant>,
    /// How many of `entries` are `Child` entries (linked children).
    linked: u32,
    entries: Entries,
}

/// A node's entries: a slab whose first slot lives inline, so the common
/// token with one waiter or one callback costs one allocation (its
/// `Ext`), not two. Keys are stable until removed, as a slab's: key 0 is
/// the inline slot, key `k + 1` is `rest`'s key `k`.
#[derive(Default)]
struct Entries {
    first: Option<Entry>,
    rest: Slab<Entry>,
}

impl Entries {
    fn insert(&mut self, entry: Entry) -> usize {
        if self.first.is_none() {
            self.first = Some(entry);
            0
        } else {
            self.rest.insert(entry) + 1
        }
    }

    fn get(&self, key: usize) -> Option<&Entry> {
        match key {
            0 => self.first.as_ref(),
            k => self.rest.get(k - 1),
        }
    }

    fn try_remove(&mut self, key: usize) -> Option<Entry> {
        match key {
            0 => self.first.take(),
            k => self.rest.try_remove(k - 1),
        }
    }

    /// Takes every entry out, keeping the slab's buffer.
    fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        self.first.take().into_iter().chain(self.rest.drain())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        1 + self.rest.capacity()
    }

    fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    fn into_entries(self) -> impl Iterator<Item = Entry> {
        self.first
            .into_iter()
            .chain(self.rest.into_iter().map(|(_, entry)| entry))
    }
}

impl Inner {
    fn ext(&mut self) -> &mut Ext {
        self.ext.get_or_insert_with(Box::default)
    }

    /// Takes the slab's entries out (leaving the deadline).
    fn take_entries(&mut self) -> Entries {
        self.ext
            .as_mut()
            .map(|e| std::mem::take(&mut e.entries))
            .unwrap_or_default()
    }

    fn add_linked(&mut self) {
        let ext = self.ext();
        ext.linked = ext
            .linked
            .checked_add(1)
            .expect("fewer than 2^32 live children");
    }
}

/// A node's links in its parent's intrusive list.
#[derive(Default)]
struct Siblings {
    prev: Option<NonNull<Node>>,
    next: Option<NonNull<Node>>,
}

/// A waiting future's place in its token's intrusive list of waiters. It
/// lives in the future, which is pinned while it waits, so waiting
/// allocates nothing. Its fields are guarded by the lock of the node it
/// waits on (invariant 7).
pub(crate) struct Waiter {
    links: UnsafeCell<WaiterLinks>,
    /// In the list. Written under the node's lock; the owner reads it
    /// without the lock (`unwait`), so whoever takes the waiter out stores
    /// `false` last, with `Release`.
    queued: AtomicBool,
    _pinned: PhantomPinned,
}

#[derive(Default)]
struct WaiterLinks {
    prev: Option<NonNull<Waiter>>,
    next: Option<NonNull<Waiter>>,
    waker: Option<Waker>,
}

impl Waiter {
    pub(super) fn new() -> Waiter {
        Waiter {
            links: UnsafeCell::new(WaiterLinks::default()),
            queued: AtomicBool::new(false),
            _pinned: PhantomPinned,
        }
    }
}

// SAFETY: the raw pointers and the waker are only touched under the lock
// of the node the waiter is queued on (invariant 7); `queued` is atomic.
unsafe impl Send for Waiter {}
// SAFETY: as for `Send`.
unsafe impl Sync for Waiter {}

/// Puts `child` at the head of the list `inner` owns, handing it the
/// list's reference to `child` (the caller counted it).
///
/// # Safety
///
/// `inner` is the guard of the list owner's lock, `child` is in no list,
/// and every node in the list is alive (invariant 5).
unsafe fn push_child(inner: &mut Inner, child: NonNull<Node>) {
    let next = inner.first_child;
    // SAFETY: `child` is alive (the caller holds it) and in no list, so no
    // one else touches its links.
    unsafe { child.as_ref() }.siblings.with_mut(|s| {
        // SAFETY: as above; `with_mut` gives a valid pointer.
        unsafe { *s = Siblings { prev: None, next } }
    });
    if let Some(old) = next {
        // SAFETY: `old` is in the list (alive, links guarded by our lock).
        unsafe { old.as_ref().set_prev(Some(child)) };
    }
    inner.first_child = Some(child);
}

/// Takes `child` out of the list `inner` owns. The list's reference to it
/// becomes the caller's to give back.
///
/// # Safety
///
/// `inner` is the guard of the list owner's lock and `child` is in that
/// list (invariant 5).
unsafe fn unlink_child(inner: &mut Inner, child: NonNull<Node>) {
    // SAFETY: `child` is in the list: alive, links guarded by our lock.
    let Siblings { prev, next } = unsafe { child.as_ref() }
        .siblings
        .with_mut(|s| unsafe { std::mem::take(&mut *s) });
    // SAFETY: its neighbours are in the list too (as above).
    unsafe { close_gap(&mut inner.first_child, prev, next) };
}

/// An element of one of the intrusive lists (children, waiters): how to
/// set its links.
trait Linked: Sized {
    /// # Safety
    ///
    /// The caller holds the lock of the list `self` is in (invariants 5
    /// and 7).
    unsafe fn set_prev(&self, prev: Option<NonNull<Self>>);
    /// # Safety
    ///
    /// As for `set_prev`.
    unsafe fn set_next(&self, next: Option<NonNull<Self>>);
}

impl Linked for Node {
    unsafe fn set_prev(&self, prev: Option<NonNull<Self>>) {
        // SAFETY: the caller holds the list's lock, which guards the links.
        self.siblings.with_mut(|s| unsafe { (*s).prev = prev });
    }
    unsafe fn set_next(&self, next: Option<NonNull<Self>>) {
        // SAFETY: as above.
        self.siblings.with_mut(|s| unsafe { (*s).next = next });
    }
}

impl Linked for Waiter {
    unsafe fn set_prev(&self, prev: Option<NonNull<Self>>) {
        // SAFETY: the caller holds the list's lock, which guards the links.
        self.links.with_mut(|w| unsafe { (*w).prev = prev });
    }
    unsafe fn set_next(&self, next: Option<NonNull<Self>>) {
        // SAFETY: as above.
        self.links.with_mut(|w| unsafe { (*w).next = next });
    }
}

/// Links `prev` and `next` (or `head` and `next`) to each other, closing
/// the gap an element that sat between them left.
///
/// # Safety
///
/// The caller holds the list's lock, and `prev` and `next` are in the list
/// (alive: invariants 5 and 7).
unsafe fn close_gap<T: Linked>(
    head: &mut Option<NonNull<T>>,
    prev: Option<NonNull<T>>,
    next: Option<NonNull<T>>,
) {
    match prev {
        // SAFETY: in the list, under its lock (the caller's promise).
        Some(p) => unsafe { p.as_ref().set_next(next) },
        None => *head = next,
    }
    if let Some(n) = next {
        // SAFETY: as above.
        unsafe { n.as_ref().set_prev(prev) };
    }
}

impl Node {
    /// A new node with one handle and `refs` strong references (the
    /// handles' one, plus one if it goes into a parent's list).
    fn alloc(parents: Parents, deadline: Option<Instant>, refs: u32) -> NodeArc {
        let mut state = 0;
        let mut inner = Inner::default();
        if deadline.is_some() {
            inner.ext().deadline = deadline;
            state |= HAS_INNER;
        }
        NodeArc::new(Node {
            read: ReadHalf {
                state: AtomicU8::new(state),
                cause: UnsafeCell::new(None),
                parents,
            },
            _pad: [0; PAD],
            refs: AtomicU32::new(refs),
            handles: AtomicU32::new(1),
            inner: Mutex::new(inner),
            siblings: UnsafeCell::new(Siblings::default()),
        })
    }

    /// A root node, optionally with a deadline.
    pub(super) fn root(deadline: Option<Instant>) -> NodeArc {
        Node::alloc(Parents::Root, deadline, 1)
    }

    /// A node born cancelled with `cause`, attached to nothing.
    fn born_cancelled(cause: Cancelled, deadline: Option<Instant>) -> NodeArc {
        let node = Node::alloc(Parents::Root, deadline, 1);
        mark(&node, &cause);
        node
    }

    #[inline]
    fn state(&self) -> u8 {
        self.read.state.load(Ordering::Acquire)
    }

    /// Whether any of `bits` is set (flags set under the lock are exact
    /// when read under it).
    #[inline]
    fn has(&self, bits: u8) -> bool {
        self.state() & bits != 0
    }

    /// Sets `bits` (each is set once).
    fn set(&self, bits: u8) {
        self.read.state.fetch_or(bits, Ordering::AcqRel);
    }

    #[inline]
    pub(super) fn is_cancelled(&self) -> bool {
        self.state() & CANCELLED != 0
    }

    /// The cause, once cancelled (invariant 3). A node cancelled through
    /// its parent asks the parent, and so on up: one load per level.
    pub(super) fn reason(&self) -> Option<Cancelled> {
        let mut node = self;
        loop {
            let state = node.state();
            if state & CANCELLED == 0 {
                return None;
            }
            if state & INHERITED == 0 {
                // SAFETY: `CANCELLED` was seen with `Acquire`, so the write
                // of the cancel that set it (after writing `cause`) happened
                // before this read, and `cause` is never written again
                // (invariants 1 and 3).
                return node.read.cause.with(|c| unsafe { (*c).clone() });
            }
            let Parents::One(parent) = &node.read.parents else {
                unreachable!("only a node in its parent's list inherits")
            };
            node = parent;
        }
    }

    /// Publishes `HAS_INNER` before something is added (invariant 2).
    fn announce_inner(&self) {
        if self.read.state.load(Ordering::Relaxed) & HAS_INNER == 0 {
            self.read.state.fetch_or(HAS_INNER, Ordering::AcqRel);
        }
    }

    /// This node's own deadline (not its ancestors').
    fn own_deadline(&self) -> Option<Instant> {
        if self.state() & HAS_INNER == 0 {
            return None;
        }
        lock(&self.inner).ext.as_ref().and_then(|e| e.deadline)
    }

    /// The earlier of this node's own deadline and all its ancestors'.
    /// Walks the graph iteratively (chains may be very deep).
    ///
    /// Linear in the number of ancestors: a node reachable along several
    /// paths (through linked tokens) is visited once. A plain chain needs
    /// no bookkeeping; the set of visited nodes is kept only above the first
    /// linked node (below it nothing can be reached twice: the graph is
    /// acyclic, parents being fixed at creation).
    pub(super) fn deadline(node: &NodeArc) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut stack = vec![node.clone()];
        let mut seen: Option<HashSet<NonNull<Node>>> = None;
        while let Some(node) = stack.pop() {
            if let Some(d) = node.own_deadline() {
                earliest = Some(earliest.map_or(d, |e| e.min(d)));
            }
            match &node.read.parents {
                Parents::Root => {}
                Parents::One(parent) => {
                    if seen.as_mut().is_none_or(|s| s.insert(parent.as_ptr())) {
                        stack.push(parent.clone());
                    }
                }
                Parents::Many(links) => {
                    let seen = seen.get_or_insert_with(HashSet::new);
                    for (p, _) in lock(links).iter() {
                        if seen.insert(p.as_ptr()) {
                            stack.push(p.clone());
                        }
                    }
                }
            }
        }
        earliest
    }

    /// Moves this node's own deadline to `at` if that is earlier (or it had
    /// none). Only records it: firing it is the caller's business.
    pub(super) fn tighten_deadline(&self, at: Instant) {
        self.announce_inner();
        let mut inner = lock(&self.inner);
        let ext = inner.ext();
        if ext.deadline.is_none_or(|d| at < d) {
            ext.deadline = Some(at);
        }
    }

    /// Creates a child of `parent`: born cancelled if `parent` is ([F3](crate#F3)).
    pub(super) fn child(parent: &NodeArc, deadline: Option<Instant>) -> NodeArc {
        if let Some(cause) = parent.reason() {
            return Node::born_cancelled(cause, deadline);
        }
        // Made before taking the lock, to hold it for as short as can be:
        // two references, the handles' and the parent list's.
        let child = Node::alloc(Parents::One(parent.clone()), deadline, 2);
        parent.announce_inner();
        let mut inner = lock(&parent.inner);
        // Invariant 4: checked under the lock.
        if parent.is_cancelled() {
            drop(inner);
            // Not going into the list after all: nobody else has seen the
            // node, so its count can simply be set. It keeps its parent
            // link, which a cancelled parent ignores.
            child.refs.store(1, Ordering::Relaxed);
            let cause = parent.reason().expect("cancelled implies a cause");
            mark(&child, &cause);
            return child;
        }
        // SAFETY: we hold `parent`'s lock, `child` is new (in no list), and
        // the list holds only live nodes (invariant 5); the list's
        // reference to `child` was counted in `alloc`.
        unsafe { push_child(&mut inner, child.as_ptr()) };
        child
    }

    /// Creates a node that follows every node of `parents` (linked token).
    pub(super) fn linked(parents: &[NodeArc]) -> NodeArc {
        if let Some(cause) = parents.iter().find_map(|p| p.reason()) {
            return Node::born_cancelled(cause, None);
        }
        let node = Node::alloc(
            Parents::Many(Box::new(Mutex::new(Vec::with_capacity(parents.len())))),
            None,
            1,
        );
        let Parents::Many(links) = &node.read.parents else {
            unreachable!("allocated with Parents::Many")
        };
        for parent in parents {
            match parent.add_entry(Entry::Child(node.clone())) {
                Ok(key) => lock(links).push((parent.clone(), key)),
                Err(Entry::Child(_)) => {
                    // `parent` was cancelled meanwhile: so is the link.
                    let cause = parent.reason().expect("cancelled implies a cause");
                    cancel(&node, cause);
                    break;
                }
                Err(_) => unreachable!("we added a child"),
            }
        }
        node
    }

    /// Adds an entry unless cancelled (invariant 4); gives it back if so.
    pub(super) fn add_entry(&self, entry: Entry) -> Result<u32, Entry> {
        if self.is_cancelled() {
            return Err(entry);
        }
        self.announce_inner();
        let mut inner = lock(&self.inner);
        if self.is_cancelled() {
            return Err(entry);
        }
        if let Entry::Child(_) = entry {
            inner.add_linked();
        }
        let key = inner.ext().entries.insert(entry);
        Ok(u32::try_from(key).expect("fewer than 2^32 live entries"))
    }

    /// Removes callback entry `key` (its guard was dropped). Returns it if
    /// it was still there — then it never started. (Removing a callback
    /// never orphans a node: callbacks do not keep nodes attached.)
    pub(super) fn remove_entry(node: &NodeArc, key: u32) -> Option<Entry> {
        let mut inner = lock(&node.inner);
        if node.has(CLOSED | DETACHED) {
            return None;
        }
        let entries = &mut inner.ext.as_mut()?.entries;
        match entries.get(key as usize) {
            Some(Entry::Callback(_)) => entries.try_remove(key as usize),
            _ => None,
        }
    }

    /// The last handle of this node was dropped. Returns the parent list's
    /// reference to `node` if it just left that list, for the caller to
    /// give back together with its own ([`NodeArc::drop_pair`]).
    #[must_use]
    pub(super) fn release(node: &NodeArc) -> Option<NodeArc> {
        let orphan = if node.state() & HAS_INNER != 0 {
            let orphaned = {
                let mut inner = lock(&node.inner);
                node.set(RELEASED);
                take_orphan(node, &mut inner)
            };
            dispose_orphaned(orphaned)
        } else {
            // Nothing inside: no children and no callbacks (adding them
            // needs a handle). Only a task that waits without being a
            // handle (a deadline's timer) can be adding itself right now:
            // the read-modify-writes of `state` order us (invariant 2).
            // Either it sees `DETACHED` under the lock, or we see
            // `HAS_INNER` and go through the lock ourselves, draining its
            // waker.
            let prev = node.read.state.fetch_or(DETACHED, Ordering::AcqRel);
            if prev & HAS_INNER != 0 {
                // A waiter came in meanwhile. `DETACHED` is set (by us), so
                // `take_orphan` would see nothing to do: take what it left
                // ourselves, under the lock.
                let leftovers = {
                    let mut inner = lock(&node.inner);
                    node.set(RELEASED);
                    leftovers(node, &mut inner)
                };
                dispose(leftovers);
            }
            true
        };
        if orphan { detach(node) } else { None }
    }

    /// Registers (or refreshes) `waiter`'s waker, unless the node is
    /// cancelled — or, with `or_detached`, detached. Returns `true` if it is,
    /// so the waiter is done. Checked under the node's lock, the same lock a
    /// cancel (or release) takes to take the waiters (invariants 2, 4, 7):
    /// either we see the bit, or our waiter is there to be woken.
    pub(super) fn poll_wait(&self, waiter: Pin<&Waiter>, waker: &Waker, or_detached: bool) -> bool {
        let done = |n: &Node| {
            let state = n.state();
            state & CANCELLED != 0 || (or_detached && state & DETACHED != 0)
        };
        if done(self) {
            return true;
        }
        self.announce_inner();
        let mut inner = lock(&self.inner);
        if done(self) {
            return true;
        }
        let waiter = waiter.get_ref();
        let me = NonNull::from(waiter);
        let mut old = None;
        if waiter.queued.load(Ordering::Relaxed) {
            // SAFETY: we hold the lock that guards a queued waiter's fields
            // (invariant 7).
            waiter.links.with_mut(|w| unsafe {
                if !(*w).waker.as_ref().is_some_and(|o| o.will_wake(waker)) {
                    old = (*w).waker.replace(waker.clone());
                }
            });
        } else {
            let next = inner.waiters;
            // SAFETY: not queued, so no one else touches its fields; it is
            // pinned (it stays where it is until its owner unqueues it).
            waiter.links.with_mut(|w| unsafe {
                *w = WaiterLinks {
                    prev: None,
                    next,
                    waker: Some(waker.clone()),
                }
            });
            if let Some(head) = next {
                // SAFETY: a queued waiter, under our lock (invariant 7).
                unsafe { head.as_ref().set_prev(Some(me)) };
            }
            inner.waiters = Some(me);
            waiter.queued.store(true, Ordering::Relaxed);
        }
        drop(inner);
        // Dropping a waker can run arbitrary code (free a task): never
        // under our lock.
        drop(old);
        false
    }

    /// Takes `waiter` out of the list if it is still there: what its owner
    /// does before it goes (invariant 7).
    pub(super) fn unwait(&self, waiter: Pin<&Waiter>) {
        let waiter = waiter.get_ref();
        // Whoever took it out (a cancel, a detach) stored `false` as its
        // last touch of the waiter: with this `Acquire`, we may go.
        if !waiter.queued.load(Ordering::Acquire) {
            return;
        }
        let mut inner = lock(&self.inner);
        if !waiter.queued.load(Ordering::Relaxed) {
            return; // taken out while we waited for the lock
        }
        // SAFETY: queued, and we hold the lock (invariant 7).
        let WaiterLinks { prev, next, waker } = waiter
            .links
            .with_mut(|w| unsafe { std::mem::take(&mut *w) });
        // SAFETY: its neighbours are queued too, under our lock.
        unsafe { close_gap(&mut inner.waiters, prev, next) };
        waiter.queued.store(false, Ordering::Relaxed);
        drop(inner);
        drop(waker);
    }

    /// How many waiters are queued, for tests.
    #[cfg(test)]
    pub(super) fn waiters(&self) -> usize {
        let inner = lock(&self.inner);
        let mut n = 0;
        let mut cur = inner.waiters;
        while let Some(w) = cur {
            n += 1;
            // SAFETY: queued waiters, under their node's lock (invariant 7).
            cur = unsafe { w.as_ref() }.links.with(|l| unsafe { (*l).next });
        }
        n
    }

    /// `(children, entries and waiters, slab capacity)`, for tests of
    /// memory flatness.
    #[cfg(test)]
    pub(super) fn entries(&self) -> (usize, usize) {
        let waiters = self.waiters();
        let inner = lock(&self.inner);
        let mut listed = 0;
        let mut cur = inner.first_child;
        while let Some(child) = cur {
            listed += 1;
            // SAFETY: we hold the list owner's lock (invariant 5).
            cur = unsafe { child.as_ref() }
                .siblings
                .with(|s| unsafe { (*s).next });
        }
        let listed = listed + waiters;
        inner.ext.as_ref().map_or((listed, 0), |ext| {
            (listed + ext.entries.len(), ext.entries.capacity())
        })
    }

    /// Whether the node detached: no handle and no child left, so nothing
    /// can cancel it (for the loom models).
    #[cfg(all(test, loom))]
    pub(super) fn is_detached(&self) -> bool {
        self.state() & DETACHED != 0
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Dropping a node drops its references to its parents, which may
        // free them, which drops theirs... Unroll that chain into a loop so
        // a 100 000-deep chain does not overflow the stack. `next` handles
        // single parents without allocating.
        let mut more: Vec<NodeArc> = Vec::new();
        let mut next = take_parents(&mut self.read.parents, &mut more);
        while let Some(parent) = next.take().or_else(|| more.pop()) {
            if let Some(mut node) = NodeArc::into_last(parent) {
                next = take_parents(&mut node.read.parents, &mut more);
                // `node` drops here with no parents left: no recursion.
            }
        }
    }
}

/// Takes a node's parent references: a single one is returned, several go
/// into `more`.
fn take_parents(parents: &mut Parents, more: &mut Vec<NodeArc>) -> Option<NodeArc> {
    match std::mem::replace(parents, Parents::Root) {
        Parents::Root => None,
        Parents::One(parent) => Some(parent),
        Parents::Many(links) => {
            let links = match links.into_inner() {
                Ok(v) => v,
                Err(poisoned) => poisoned.into_inner(),
            };
            more.extend(links.into_iter().map(|(p, _)| p));
            None
        }
    }
}

/// What a detached node leaves behind: its entries, and the wakers of the
/// waiters taken out of its list.
#[derive(Default)]
struct Leftovers {
    entries: Entries,
    wakers: Vec<Waker>,
}

/// Disposes of what a detached node left behind, outside any lock: waiters
/// (tasks that wait without being a handle, like a deadline's timer) are
/// woken so they notice; unrun callbacks are dropped.
fn dispose(leftovers: Leftovers) {
    let Leftovers { entries, wakers } = leftovers;
    if !wakers.is_empty() {
        wakers.into_iter().for_each(Waker::wake);
    }
    if entries.is_empty() {
        // Most tokens: nobody registered a callback or a child entry.
        return;
    }
    for entry in entries.into_entries() {
        match entry {
            // Its guard may still hold the cell: drop the closure now.
            Entry::Callback(f) => f.discard(),
            Entry::Child(child) => drop(child),
        }
    }
}

/// Disposes of what [`take_orphan`] handed back, if anything; says
/// whether it did, i.e. whether the node was orphaned and must detach.
fn dispose_orphaned(orphaned: Option<Leftovers>) -> bool {
    orphaned.map(dispose).is_some()
}

/// Takes every waiter out of `inner`'s list, their wakers into `wakers`
/// (to be woken outside the lock).
fn take_waiters(inner: &mut Inner, wakers: &mut Vec<Waker>) {
    let mut cur = inner.waiters.take();
    while let Some(ptr) = cur {
        // SAFETY: a queued waiter, under its node's lock (invariant 7).
        let waiter = unsafe { ptr.as_ref() };
        // SAFETY: as above.
        let WaiterLinks { next, waker, .. } = waiter
            .links
            .with_mut(|w| unsafe { std::mem::take(&mut *w) });
        wakers.extend(waker);
        cur = next;
        // The last touch: from here its owner may free it.
        waiter.queued.store(false, Ordering::Release);
    }
}

/// Marks `inner`'s node detached if it is released and has no children
/// (invariant 6). If it did, the caller must now detach it: it hands back
/// the callbacks and waiters left behind, to be disposed of outside the
/// lock.
fn take_orphan(node: &Node, inner: &mut Inner) -> Option<Leftovers> {
    let childless = inner.first_child.is_none() && inner.ext.as_ref().is_none_or(|e| e.linked == 0);
    if node.has(RELEASED) && !node.has(DETACHED) && childless {
        // Under the lock, so `poll_wait`'s check under it is consistent.
        node.set(DETACHED);
        Some(leftovers(node, inner))
    } else {
        None
    }
}

/// What a node that just detached leaves behind, taken out under its lock.
fn leftovers(node: &Node, inner: &mut Inner) -> Leftovers {
    if node.is_cancelled() && !node.has(CLOSED) {
        // Marked by a cancel that has not drained us yet: it will, and
        // must find our callbacks and waiters there (they were all added
        // before the mark, invariants 2 and 4) — the token was cancelled
        // before it could no longer be.
        return Leftovers::default();
    }
    let mut leftovers = Leftovers {
        entries: inner.take_entries(),
        wakers: Vec::new(),
    };
    take_waiters(inner, &mut leftovers.wakers);
    leftovers
}

/// Removes `node` from its parents, then walks up, detaching every parent
/// this leaves released and empty. Iterative. Returns the parent list's
/// reference to `node` if it left one, for the caller to give back.
fn detach(node: &NodeArc) -> Option<NodeArc> {
    // `next` carries the common single-parent walk without allocating; only
    // linked nodes (several parents) spill into `more`.
    let mut more: Vec<NodeArc> = Vec::new();
    let (listed, mut next) = leave_parents(node, &mut more);
    while let Some(node) = next.take().or_else(|| more.pop()) {
        let (listed, up) = leave_parents(&node, &mut more);
        next = up;
        if let Some(listed) = listed {
            NodeArc::drop_pair(node, listed);
        }
    }
    listed
}

/// Takes `node` out of its parents. Returns the list's reference to it if
/// it left a list, and the parent this left orphaned, if it has a single
/// one (the orphaned parents of a linked node go into `more`).
fn leave_parents(node: &NodeArc, more: &mut Vec<NodeArc>) -> (Option<NodeArc>, Option<NodeArc>) {
    match &node.read.parents {
        Parents::Root => (None, None),
        Parents::One(parent) => {
            let (listed, orphaned) = leave_list(parent, node);
            (listed, orphaned.then(|| parent.clone()))
        }
        Parents::Many(links) => {
            let links = lock(links).clone();
            for (parent, key) in links {
                if leave_slab(&parent, key) {
                    more.push(parent);
                }
            }
            (None, None)
        }
    }
}

/// Takes `child` out of `parent`'s list. Returns the list's reference to
/// `child` if it was there, and whether that left `parent` orphaned
/// (released and childless), so it must detach too.
fn leave_list(parent: &Node, child: &NodeArc) -> (Option<NodeArc>, bool) {
    // A cancelled parent has drained (or is draining) its children and will
    // never be orphaned or detached again: skip its lock. This keeps the
    // children of a just-cancelled parent from all contending on it as
    // they finish. (It also covers a child born cancelled in a race with
    // its parent's cancel, which never joined the list.)
    if parent.is_cancelled() {
        return (None, false);
    }
    let mut inner = lock(&parent.inner);
    if parent.has(CLOSED) {
        return (None, false); // invariant 5: the cancel already took us out
    }
    // SAFETY: we hold `parent`'s lock, and `child` is in its list: it
    // joined when it was made (its parent was not cancelled then, or we
    // would have returned), the list was not drained (`CLOSED` is clear),
    // and only this detach, which happens once (invariant 6), removes it.
    unsafe { unlink_child(&mut inner, child.as_ptr()) };
    let orphaned = take_orphan(parent, &mut inner);
    drop(inner);
    // Runs user destructors of unrun callbacks and wakes waiters: outside
    // the lock.
    let orphan = dispose_orphaned(orphaned);
    // SAFETY: the list's reference to `child`, which `unlink_child` handed
    // to us.
    (Some(unsafe { NodeArc::from_raw(child.as_ptr()) }), orphan)
}

/// Removes linked child entry `key` from `parent`'s slab; says whether
/// that left `parent` orphaned (released and childless), so it must detach
/// too.
fn leave_slab(parent: &Node, key: u32) -> bool {
    if parent.is_cancelled() {
        return false; // as in `leave_list`
    }
    let mut inner = lock(&parent.inner);
    if parent.has(CLOSED) {
        return false; // invariant 5: the cancel already took us out
    }
    let mut removed = None;
    if let Some(ext) = inner.ext.as_mut() {
        removed = ext.entries.try_remove(key as usize);
        if let Some(Entry::Child(_)) = removed {
            ext.linked -= 1;
        }
    }
    let orphaned = take_orphan(parent, &mut inner);
    drop(inner);
    // May free the child's last other reference (not the caller's), run
    // user destructors of unrun callbacks, wake waiters: outside the lock.
    drop(removed);
    dispose_orphaned(orphaned)
}

/// Marks one node cancelled with `cause` if nothing else did first.
/// Returns whether it did, and whether the node may have children or
/// entries to drain.
fn mark(node: &Node, cause: &Cancelled) -> Option<bool> {
    // Invariant 1: first cause wins.
    if node.read.state.fetch_or(CLAIMED, Ordering::AcqRel) & CLAIMED != 0 {
        lost(node);
        return None;
    }
    // SAFETY: `CLAIMED` is ours, so we are the only writer of `cause`, and
    // nobody reads it before `CANCELLED` is set (invariants 1 and 3).
    node.read
        .cause
        .with_mut(|c| unsafe { *c = Some(cause.clone()) });
    let prev = node.read.state.fetch_or(CANCELLED, Ordering::AcqRel);
    Some(prev & HAS_INNER != 0)
}

/// Marks a child taken from its parent's list cancelled with the parent's
/// cause, if nothing else did first: one compare-and-swap, no write of
/// `cause` (the `INHERITED` bit sends `reason` to the parent). Returns as
/// [`mark`].
fn mark_inherited(node: &Node) -> Option<bool> {
    let mut state = node.read.state.load(Ordering::Relaxed);
    loop {
        if state & CLAIMED != 0 {
            lost(node);
            return None;
        }
        match node.read.state.compare_exchange_weak(
            state,
            state | CLAIMED | CANCELLED | INHERITED,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Some(state & HAS_INNER != 0),
            Err(now) => state = now,
        }
    }
}

/// Another cancel won `node`, and sets `CANCELLED` right after writing its
/// cause: wait those few instructions, so that whoever lost sees the node
/// cancelled when its `cancel()` returns `false`.
fn lost(node: &Node) {
    while !node.is_cancelled() {
        crate::loom::spin();
    }
}

/// What a cancel walk carries along: the callbacks to run at the end, the
/// orphans to detach, and scratch space reused for every node.
#[derive(Default)]
struct Walk {
    callbacks: Vec<SharedCallback>,
    orphans: Vec<NodeArc>,
    wakers: Vec<Waker>,
    /// Linked children taken from drained nodes, still to be marked.
    linked: Vec<NodeArc>,
    /// The intrusive lists taken from drained nodes, whose children are
    /// still to be marked. The lists' references to their children are
    /// ours (invariant 5).
    lists: Vec<NonNull<Node>>,
}

impl Walk {
    /// Drains a node just marked by this cancel (invariant 4: `CLOSED`),
    /// and wakes its waiters at once, so that woken tasks run on other
    /// threads while the walk goes on.
    fn drain(&mut self, node: NodeArc) {
        let mut inner = lock(&node.inner);
        node.set(CLOSED);
        let list = inner.first_child.take();
        take_waiters(&mut inner, &mut self.wakers);
        if let Some(ext) = inner.ext.as_mut() {
            ext.linked = 0;
            // Drained in place: the slab's buffer stays with the node, to be
            // freed with it — usually by the thread that allocated it (the
            // waiter's), not here on another thread's malloc arena.
            for entry in ext.entries.drain() {
                match entry {
                    Entry::Child(child) => self.linked.push(child),
                    Entry::Callback(f) => self.callbacks.push(f),
                }
            }
        }
        // A node whose last handle went while it still had children was
        // kept attached for their sake; the cancel just took them, so if it
        // is released it is now an orphan, and must leave the parents that
        // did not cancel it (a linked token's other parents) — otherwise
        // they would hold it, and it them, for ever.
        let orphan = take_orphan(&node, &mut inner).is_some();
        drop(inner);
        self.wakers.drain(..).for_each(Waker::wake);
        if orphan {
            // After the walk: detaching disposes of other nodes' leftovers,
            // user destructors that might panic, and must not cut it short.
            self.orphans.push(node);
        }
        self.lists.extend(list);
    }
}

/// Cancels `root` and, iteratively, everything that follows it. Returns
/// whether this call did it (false if it was already cancelled).
///
/// Each node is drained, and its waiters woken, as soon as it is marked
/// (so they run while the walk goes on); its children are marked after
/// that, from a stack of the lists taken from drained nodes (no
/// recursion). Callbacks run once
/// every node is marked. Nothing runs under a lock. If callbacks panic,
/// all of them still run, and the first panic is resumed at the end
/// (unless this thread is already panicking, when it is dropped to avoid
/// an abort).
pub(super) fn cancel(root: &NodeArc, cause: Cancelled) -> bool {
    let Some(has_inner) = mark(root, &cause) else {
        return false;
    };
    let mut walk = Walk::default();
    if has_inner {
        walk.drain(root.clone());
    }
    loop {
        if let Some(child) = walk.linked.pop() {
            if let Some(true) = mark(&child, &cause) {
                walk.drain(child);
            }
            continue;
        }
        let Some(list) = walk.lists.pop() else { break };
        let mut cur = Some(list);
        while let Some(ptr) = cur {
            // SAFETY: we drained the list under its owner's lock and set
            // `CLOSED`, so the list and its references are ours and nobody
            // else touches these links any more (invariant 5).
            let child = unsafe { NodeArc::from_raw(ptr) };
            // SAFETY: as above.
            cur = child.siblings.with(|s| unsafe { (*s).next });
            if let Some(true) = mark_inherited(&child) {
                walk.drain(child);
            }
        }
    }
    // Every descendant is marked and drained. Detach the orphans, then run
    // the callbacks, lock-free; a panic in either is resumed at the end.
    let mut first_panic: Option<Box<dyn Any + Send>> = None;
    for orphan in walk.orphans {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| drop(detach(&orphan)))) {
            first_panic.get_or_insert(p);
        }
    }
    if let Some(p) = run_callbacks_caught(walk.callbacks, &cause) {
        first_panic.get_or_insert(p);
    }
    resume_unless_panicking(first_panic);
    true
}

/// Runs `callbacks` outside any lock, each under `catch_unwind`; those
/// whose guard was dropped meanwhile are skipped (`callback.rs`).
pub(super) fn run_callbacks(callbacks: Vec<SharedCallback>, cause: &Cancelled) {
    resume_unless_panicking(run_callbacks_caught(callbacks, cause));
}

/// Runs every callback; returns the first panic's payload.
fn run_callbacks_caught(
    callbacks: Vec<SharedCallback>,
    cause: &Cancelled,
) -> Option<Box<dyn Any + Send>> {
    let mut first_panic: Option<Box<dyn Any + Send>> = None;
    for f in callbacks {
        if let Some(p) = f.run(cause) {
            first_panic.get_or_insert(p);
        }
    }
    first_panic
}

/// Resumes `panic`, unless this thread is already panicking (resuming then
/// would abort).
fn resume_unless_panicking(panic: Option<Box<dyn Any + Send>>) {
    if let Some(p) = panic {
        if !std::thread::panicking() {
            resume_unwind(p);
        }
    }
}

/// The cause of a deadline firing, located where the deadline was set.
pub(super) fn deadline_cause(location: &'static Location<'static>) -> Cancelled {
    Cancelled::with(CancelKind::DeadlineExceeded, None, location)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::node_ref::TokenRef;
    use super::*;

    #[test]
    fn node_is_120_bytes_and_its_written_half_starts_64_bytes_in() {
        assert_eq!(std::mem::size_of::<ReadHalf>() + PAD, 64);
        assert_eq!(std::mem::offset_of!(Node, refs), 64);
        // 120, not 128: glibc serves chunks of up to 128 bytes (120 asked
        // plus its 8-byte header) from its fast bins.
        assert_eq!(std::mem::size_of::<Node>(), 120);
    }

    #[test]
    fn children_detach_and_the_parent_keeps_nothing() {
        let root = Node::root(None);
        for _ in 0..1000 {
            drop(TokenRef::new(Node::child(&root, None)));
        }
        assert_eq!(root.entries(), (0, 0), "no slab, an empty list");
        assert_eq!(root.ref_count(), 1, "no child holds it any more");
        drop(TokenRef::new(root));
    }
}
