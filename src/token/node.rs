//! The token graph: nodes, their children and callbacks, and the
//! cancellation and detachment algorithms. `CancelToken` (in `mod.rs`) is a
//! thin handle over this.
//!
//! # Structure
//!
//! A [`Node`] is one token's shared state. Its first cache line (the type is
//! `align(64)`, and `Arc`'s counters sit in the line before it) holds only
//! fields that are written at most once — the `state` byte, the cause, the
//! immutable parent links and the pointer to the lazily created [`Ext`] —
//! so `is_cancelled()` never shares a line with anything clones (`Arc`
//! counters) or children (the parent's `Ext`) write.
//!
//! [`Ext`] holds what changes: the slab of entries (children, linked
//! tokens, callbacks, and the wakers of waiting tasks), the own deadline,
//! and whether handles remain. It is allocated on first need only, so a
//! leaf token nobody waits on costs one allocation for the node plus one for
//! its `Handle`. A waiting task stores its `Waker` in a slab slot: no
//! allocation per waiter beyond the slab's amortised growth.
//!
//! References point **up**: a node holds strong references to its parents;
//! a parent holds its children in its slab until they detach or it is
//! cancelled. A token's handles share one [`Handle`]; when its last clone is
//! dropped the node is *released*, and a released node with no children
//! *detaches* from its parents — dropping its callbacks unrun, since nothing
//! can cancel it any more — which may leave them released and childless in
//! turn: an iterative walk up, never recursion.
//!
//! # Invariants
//!
//! 1. `CANCELLED` is set at most once, only after `cause` was set, by the
//!    thread whose `cause.set` succeeded (first cause wins), and never
//!    cleared.
//! 2. `HAS_EXT` is set (with `fetch_or`) after `ext` is initialised and
//!    before the first entry is added to it; `cancel` drains `ext` only if
//!    its own `fetch_or(CANCELLED)` saw `HAS_EXT`. Both are read-modify-
//!    writes of one atomic, so they are totally ordered: either the canceller
//!    sees `HAS_EXT` and drains, or the adder's later check of `CANCELLED`
//!    under the `ext` lock sees it and does not add.
//! 3. `cause` is read only after `CANCELLED` was observed with `Acquire`, or
//!    under the `ext` lock after the canceller released it.
//! 4. Entries are added to a node's slab only under its `ext` lock and only
//!    while `CANCELLED` is clear (checked under that lock); once a cancel
//!    has drained the slab (`closed`), nothing is ever added again.
//! 5. A node's slab key, stored in the child's `parents`, stays valid until
//!    the child removes it (detach) or the parent drains it (cancel);
//!    removal after a drain is a no-op because the slab is `closed`.
//! 6. A node is *detached* at most once: when its handles are gone and it
//!    has no children (`children` counts the `Child` entries of its slab),
//!    observed under its `ext` lock (or without an `ext`, by the release of
//!    its last handle); `DETACHED` is set then, under that lock. Nothing is
//!    added to a detached node's slab (adding needs a handle); what it held
//!    is disposed of — callbacks dropped unrun, waiters woken — unless a
//!    cancel has marked it and not drained it yet: that cancel drains it.
//!
//! # Lock order
//!
//! No code path holds two `ext` locks of different nodes at once:
//! cancellation takes a node's entries out under its lock and marks the
//! children after releasing it. Linked nodes' `links` lock is never held
//! while taking an `ext` lock. User callbacks and wakers run, and wakers are
//! dropped, with no lock held.

use std::any::Any;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::sync::OnceLock;
use std::time::Instant;

use slab::Slab;
use std::task::Waker;

use super::callback::SharedCallback;
use super::cause::{CancelKind, Cancelled};
use crate::loom::{Arc, AtomicU8, Mutex, Ordering, lock};

/// Set once the node is cancelled (invariant 1).
pub(super) const CANCELLED: u8 = 0b01;
/// Set once `ext` exists and may hold entries (invariant 2).
const HAS_EXT: u8 = 0b10;
/// Set once, when the node detaches: its handles are gone and it has no
/// children, so nothing can cancel it or observe it any more (invariant 6).
const DETACHED: u8 = 0b100;

pub(super) enum Entry {
    Child(Arc<Node>),
    /// A user callback registered with `on_cancel` (see `callback.rs`).
    Callback(SharedCallback),
    Waiter(Waker),
}

/// A link to a parent: the parent and this node's key in its slab.
type Link = (Arc<Node>, u32);

/// The parents a node follows. Immutable once the node is shared, except
/// the keys of a linked node, which are filled in as it registers.
enum Parents {
    Root,
    One { parent: Arc<Node>, key: u32 },
    Many(Box<Mutex<Vec<Link>>>),
}

#[repr(C, align(64))]
pub(crate) struct Node {
    /// `CANCELLED | HAS_EXT | DETACHED`. The only field `is_cancelled`
    /// reads; each bit is set once.
    state: AtomicU8,
    /// Why it was cancelled (invariant 1, 3).
    cause: OnceLock<Cancelled>,
    parents: Parents,
    /// Children, callbacks, deadline; created on first need.
    ext: OnceLock<Box<Ext>>,
}

#[repr(align(64))]
struct Ext {
    inner: Mutex<ExtInner>,
}

#[derive(Default)]
struct ExtInner {
    /// This node's own deadline, if it has one (it may only get earlier).
    deadline: Option<Instant>,
    entries: Slab<Entry>,
    /// How many of `entries` are `Child` entries.
    children: usize,
    /// The last handle was dropped.
    released: bool,
    /// Detached from its parents (invariant 6).
    detached: bool,
    /// Drained by a cancel (invariant 4).
    closed: bool,
}

impl Node {
    fn alloc(parents: Parents, deadline: Option<Instant>) -> Arc<Node> {
        let ext = OnceLock::new();
        let mut state = 0;
        if deadline.is_some() {
            let _ = ext.set(Box::new(Ext {
                inner: Mutex::new(ExtInner {
                    deadline,
                    ..ExtInner::default()
                }),
            }));
            state |= HAS_EXT;
        }
        Arc::new(Node {
            state: AtomicU8::new(state),
            cause: OnceLock::new(),
            parents,
            ext,
        })
    }

    /// A root node, optionally with a deadline.
    pub(super) fn root(deadline: Option<Instant>) -> Arc<Node> {
        Node::alloc(Parents::Root, deadline)
    }

    /// A node born cancelled with `cause`, attached to nothing.
    fn born_cancelled(cause: Cancelled, deadline: Option<Instant>) -> Arc<Node> {
        let node = Node::alloc(Parents::Root, deadline);
        let _ = node.cause.set(cause);
        node.state.fetch_or(CANCELLED, Ordering::Release);
        node
    }

    #[inline]
    pub(super) fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) & CANCELLED != 0
    }

    /// The cause, once cancelled (invariant 3).
    pub(super) fn reason(&self) -> Option<Cancelled> {
        if self.is_cancelled() {
            self.cause.get().cloned()
        } else {
            None
        }
    }

    /// `ext`, created if needed, with `HAS_EXT` published (invariant 2).
    fn ext(&self) -> &Ext {
        let ext = self.ext.get_or_init(|| {
            Box::new(Ext {
                inner: Mutex::new(ExtInner::default()),
            })
        });
        if self.state.load(Ordering::Relaxed) & HAS_EXT == 0 {
            self.state.fetch_or(HAS_EXT, Ordering::AcqRel);
        }
        ext
    }

    /// The earlier of this node's own deadline and all its ancestors'.
    /// Walks the graph iteratively (chains may be very deep).
    ///
    /// Linear in the number of ancestors: a node reachable along several
    /// paths (through linked tokens) is visited once. A plain chain needs
    /// no bookkeeping; the set of visited nodes is kept only above the first
    /// linked node (below it nothing can be reached twice: the graph is
    /// acyclic, parents being fixed at creation).
    pub(super) fn deadline(node: &Arc<Node>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut stack = vec![node.clone()];
        let mut seen: Option<HashSet<*const Node>> = None;
        while let Some(node) = stack.pop() {
            if let Some(d) = node.ext.get().and_then(|e| lock(&e.inner).deadline) {
                earliest = Some(earliest.map_or(d, |e| e.min(d)));
            }
            match &node.parents {
                Parents::Root => {}
                Parents::One { parent, .. } => {
                    if seen.as_mut().is_none_or(|s| s.insert(ptr(parent))) {
                        stack.push(parent.clone());
                    }
                }
                Parents::Many(links) => {
                    let seen = seen.get_or_insert_with(HashSet::new);
                    for (p, _) in lock(links).iter() {
                        if seen.insert(ptr(p)) {
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
        let mut inner = lock(&self.ext().inner);
        if inner.deadline.is_none_or(|d| at < d) {
            inner.deadline = Some(at);
        }
    }

    /// Creates a child of `parent`: born cancelled if `parent` is ([F3](crate#F3)).
    pub(super) fn child(parent: &Arc<Node>, deadline: Option<Instant>) -> Arc<Node> {
        if let Some(cause) = parent.reason() {
            return Node::born_cancelled(cause, deadline);
        }
        let ext = parent.ext();
        let mut inner = lock(&ext.inner);
        // Invariant 4: checked under the lock.
        if parent.is_cancelled() {
            drop(inner);
            let cause = parent.reason().expect("cancelled implies a cause");
            return Node::born_cancelled(cause, deadline);
        }
        let entry = inner.entries.vacant_entry();
        let key = u32::try_from(entry.key()).expect("fewer than 2^32 live children");
        let child = Node::alloc(
            Parents::One {
                parent: parent.clone(),
                key,
            },
            deadline,
        );
        entry.insert(Entry::Child(child.clone()));
        inner.children += 1;
        child
    }

    /// Creates a node that follows every node of `parents` (linked token).
    pub(super) fn linked(parents: &[Arc<Node>]) -> Arc<Node> {
        if let Some(cause) = parents.iter().find_map(|p| p.reason()) {
            return Node::born_cancelled(cause, None);
        }
        let node = Node::alloc(
            Parents::Many(Box::new(Mutex::new(Vec::with_capacity(parents.len())))),
            None,
        );
        let Parents::Many(links) = &node.parents else {
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
        let ext = self.ext();
        let mut inner = lock(&ext.inner);
        if self.is_cancelled() {
            return Err(entry);
        }
        if let Entry::Child(_) = entry {
            inner.children += 1;
        }
        let key = inner.entries.insert(entry);
        Ok(u32::try_from(key).expect("fewer than 2^32 live entries"))
    }

    /// Removes callback entry `key` (its guard was dropped). Returns it if
    /// it was still there — then it never started. (Removing a callback
    /// never orphans a node: callbacks do not keep nodes attached.)
    pub(super) fn remove_entry(node: &Arc<Node>, key: u32) -> Option<Entry> {
        let ext = node.ext.get()?;
        let mut inner = lock(&ext.inner);
        if inner.closed || inner.detached {
            return None;
        }
        match inner.entries.get(key as usize) {
            Some(Entry::Callback(_)) => inner.entries.try_remove(key as usize),
            _ => None,
        }
    }

    /// The last handle of this node was dropped.
    pub(super) fn release(node: &Arc<Node>) {
        let (orphan, leftovers) = match node.ext.get() {
            Some(ext) => {
                let mut inner = lock(&ext.inner);
                inner.released = true;
                take_orphan(node, &mut inner)
            }
            // No ext: no children and no callbacks (adding them needs a
            // handle). Only a task that waits without being a handle (a
            // deadline's timer) can be making one right now: the read-modify-
            // writes of `state` order us (invariant 2). Either it sees
            // `DETACHED` under its lock, or we see `HAS_EXT` and go through
            // the lock ourselves, draining its waker.
            None => {
                let prev = node.state.fetch_or(DETACHED, Ordering::AcqRel);
                if prev & HAS_EXT == 0 {
                    (true, Slab::new())
                } else {
                    let ext = node.ext.get().expect("HAS_EXT is set after ext exists");
                    let mut inner = lock(&ext.inner);
                    inner.released = true;
                    take_orphan(node, &mut inner)
                }
            }
        };
        dispose(leftovers);
        if orphan {
            detach(node.clone());
        }
    }

    /// Registers (or refreshes) a waiter's waker, unless the node is
    /// cancelled — or, with `or_detached`, detached. Returns `true` if it is,
    /// so the waiter is done. Checked under the `ext` lock, the same lock a
    /// cancel (or release) takes to drain the wakers (invariants 2 and 4):
    /// either we see the bit, or our waker is there to be drained.
    pub(super) fn poll_wait(
        &self,
        key: &mut Option<u32>,
        waker: &Waker,
        or_detached: bool,
    ) -> bool {
        let done = |n: &Node| n.is_cancelled() || (or_detached && n.is_detached());
        if done(self) {
            return true;
        }
        let ext = self.ext();
        let mut inner = lock(&ext.inner);
        if done(self) {
            return true;
        }
        if let Some(k) = *key {
            if let Some(Entry::Waiter(w)) = inner.entries.get_mut(k as usize) {
                if !w.will_wake(waker) {
                    let old = std::mem::replace(w, waker.clone());
                    drop(inner);
                    // Dropping a waker can run arbitrary code (free a task):
                    // never under our lock.
                    drop(old);
                }
                return false;
            }
        }
        let k = inner.entries.insert(Entry::Waiter(waker.clone()));
        *key = Some(u32::try_from(k).expect("fewer than 2^32 live entries"));
        false
    }

    /// Removes a waiter that gives up before it was woken.
    pub(super) fn cancel_wait(&self, key: u32) {
        let Some(ext) = self.ext.get() else { return };
        let mut inner = lock(&ext.inner);
        if inner.closed {
            return;
        }
        if let Some(Entry::Waiter(_)) = inner.entries.get(key as usize) {
            let waker = inner.entries.try_remove(key as usize);
            drop(inner);
            drop(waker);
        }
    }

    /// `(len, capacity)` of the entry slab, for tests of memory flatness.
    #[cfg(test)]
    pub(super) fn entries(&self) -> (usize, usize) {
        self.ext.get().map_or((0, 0), |ext| {
            let inner = lock(&ext.inner);
            (inner.entries.len(), inner.entries.capacity())
        })
    }

    /// Whether the node detached: no handle and no child left, so nothing
    /// can cancel it (for the deadline timer task).
    pub(super) fn is_detached(&self) -> bool {
        self.state.load(Ordering::Acquire) & DETACHED != 0
    }
}

/// A node's address, to tell nodes apart in a walk.
fn ptr(node: &Arc<Node>) -> *const Node {
    &**node
}

/// Disposes of what a detached node left behind, outside any lock: waiters
/// (tasks that wait without being a handle, like a deadline's timer) are
/// woken so they notice; unrun callbacks are dropped.
fn dispose(leftovers: Slab<Entry>) {
    for (_, entry) in leftovers {
        match entry {
            Entry::Waiter(w) => w.wake(),
            // Its guard may still hold the cell: drop the closure now.
            Entry::Callback(f) => f.discard(),
            Entry::Child(child) => drop(child),
        }
    }
}

/// Marks `inner`'s node detached if it is released and has no children
/// (invariant 6). Says whether the caller must now detach it, and hands back
/// the callbacks left behind, to be dropped unrun outside the lock.
fn take_orphan(node: &Node, inner: &mut ExtInner) -> (bool, Slab<Entry>) {
    if inner.released && !inner.detached && inner.children == 0 {
        inner.detached = true;
        // Under the lock, so `poll_wait`'s check under it is consistent.
        node.state.fetch_or(DETACHED, Ordering::AcqRel);
        if node.is_cancelled() && !inner.closed {
            // Marked by a cancel that has not drained us yet: it will, and
            // must find our callbacks and waiters there (they were all
            // added before the mark, invariants 2 and 4) — the token was
            // cancelled before it could no longer be.
            return (true, Slab::new());
        }
        (true, std::mem::take(&mut inner.entries))
    } else {
        (false, Slab::new())
    }
}

/// Removes `node` from its parents' slabs, then walks up, detaching every
/// parent this leaves released and empty. Iterative.
fn detach(node: Arc<Node>) {
    // `next` carries the common single-parent walk without allocating; only
    // linked nodes (several parents) spill into `more`.
    let mut next = Some(node);
    let mut more: Vec<Arc<Node>> = Vec::new();
    while let Some(node) = next.take().or_else(|| more.pop()) {
        match &node.parents {
            Parents::Root => {}
            Parents::One { parent, key } => {
                if unlink(parent, *key) {
                    next = Some(parent.clone());
                }
            }
            Parents::Many(links) => {
                let links = lock(links).clone();
                for (parent, key) in links {
                    if unlink(&parent, key) {
                        more.push(parent);
                    }
                }
            }
        }
    }
}

/// Removes entry `key` from `parent`'s slab; says whether that left
/// `parent` orphaned (released and childless), so it must detach too.
fn unlink(parent: &Node, key: u32) -> bool {
    // A cancelled parent has drained (or is draining) its slab and will
    // never be orphaned or detached again: skip its lock. This keeps the
    // children of a just-cancelled parent from all contending on it as
    // they finish.
    if parent.is_cancelled() {
        return false;
    }
    let Some(ext) = parent.ext.get() else {
        return false;
    };
    let mut inner = lock(&ext.inner);
    if inner.closed {
        return false; // invariant 5: the cancel already took us out
    }
    let removed = inner.entries.try_remove(key as usize);
    if let Some(Entry::Child(_)) = removed {
        inner.children -= 1;
    }
    let (orphan, leftovers) = take_orphan(parent, &mut inner);
    drop(inner);
    // May free the child's last other reference (not the caller's), run
    // user destructors of unrun callbacks, wake waiters: outside the lock.
    drop(removed);
    dispose(leftovers);
    orphan
}

impl Drop for Node {
    fn drop(&mut self) {
        // Dropping a node drops its references to its parents, which may
        // free them, which drops theirs... Unroll that chain into a loop so
        // a 100 000-deep chain does not overflow the stack. `next` handles
        // single parents without allocating.
        let mut more: Vec<Arc<Node>> = Vec::new();
        let mut next = take_parents(&mut self.parents, &mut more);
        while let Some(parent) = next.take().or_else(|| more.pop()) {
            if let Ok(mut node) = Arc::try_unwrap(parent) {
                next = take_parents(&mut node.parents, &mut more);
                // `node` drops here with no parents left: no recursion.
            }
        }
    }
}

/// Takes a node's parent references: a single one is returned, several go
/// into `more`.
fn take_parents(parents: &mut Parents, more: &mut Vec<Arc<Node>>) -> Option<Arc<Node>> {
    match std::mem::replace(parents, Parents::Root) {
        Parents::Root => None,
        Parents::One { parent, .. } => Some(parent),
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

/// Marks one node cancelled with `cause` if nothing else did first.
/// Returns whether it did, and whether the node may have entries.
fn mark(node: &Node, cause: &Cancelled) -> Option<bool> {
    // Invariant 1: first cause wins.
    if node.cause.set(cause.clone()).is_err() {
        // Another cancel won, and sets the bit right after its `set`: wait
        // those few instructions, so that whoever lost sees the node
        // cancelled when its `cancel()` returns `false`.
        while !node.is_cancelled() {
            crate::loom::spin();
        }
        return None;
    }
    let prev = node.state.fetch_or(CANCELLED, Ordering::AcqRel);
    Some(prev & HAS_EXT != 0)
}

/// Cancels `root` and, iteratively, everything that follows it. Returns
/// whether this call did it (false if it was already cancelled).
///
/// A node's waiters are woken once that node is marked and its slab
/// drained (so they run while the walk goes on); callbacks run once every
/// node is marked. Both happen with no lock held. If callbacks panic, all of them still
/// run, and the first panic is resumed at the end (unless this thread is
/// already panicking, when it is dropped to avoid an abort).
pub(super) fn cancel(root: &Arc<Node>, cause: Cancelled) -> bool {
    let Some(has_ext) = mark(root, &cause) else {
        return false;
    };
    let mut callbacks: Vec<SharedCallback> = Vec::new();
    let mut orphans: Vec<Arc<Node>> = Vec::new();
    let mut wakers: Vec<Waker> = Vec::new();
    // Nodes marked, whose entries are still to be drained. Children are
    // moved out of the slabs, so nothing is cloned per node.
    let mut pending: Vec<Arc<Node>> = Vec::new();
    if has_ext {
        pending.push(root.clone());
    }
    while let Some(node) = pending.pop() {
        let Some(ext) = node.ext.get() else { continue };
        let mut inner = lock(&ext.inner);
        inner.closed = true;
        inner.children = 0;
        let entries = std::mem::take(&mut inner.entries);
        // A node whose last handle went while it still had children was
        // kept attached for their sake; the cancel just took them, so if it
        // is released it is now an orphan, and must leave the parents that
        // did not cancel it (a linked token's other parents) — otherwise
        // they would hold it, and it them, for ever.
        let (orphan, _) = take_orphan(&node, &mut inner);
        drop(inner);
        if orphan {
            // After the walk: detaching disposes of other nodes' leftovers,
            // user destructors that might panic, and must not cut it short.
            orphans.push(node.clone());
        }
        for (_, entry) in entries {
            match entry {
                Entry::Child(child) => {
                    if let Some(true) = mark(&child, &cause) {
                        pending.push(child);
                    }
                }
                Entry::Callback(f) => callbacks.push(f),
                Entry::Waiter(w) => wakers.push(w),
            }
        }
        // Wake this node's waiters now (no lock held), so woken tasks run
        // on other threads while we walk on; their node is marked.
        wakers.drain(..).for_each(Waker::wake);
    }
    // Every descendant is marked and drained. Detach the orphans, then run
    // the callbacks, lock-free; a panic in either is resumed at the end.
    let mut first_panic: Option<Box<dyn Any + Send>> = None;
    for orphan in orphans {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| detach(orphan))) {
            first_panic.get_or_insert(p);
        }
    }
    if let Some(p) = run_callbacks_caught(callbacks, &cause) {
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
    use super::*;

    #[test]
    fn node_is_one_cache_line() {
        assert_eq!(std::mem::align_of::<Node>(), 64);
        assert_eq!(std::mem::size_of::<Node>(), 64);
    }

    #[test]
    fn children_detach_and_the_parent_slab_stays_small() {
        let root = Node::root(None);
        for _ in 0..1000 {
            let child = Node::child(&root, None);
            Node::release(&child);
        }
        let inner = lock(&root.ext.get().unwrap().inner);
        assert!(inner.entries.is_empty());
        assert!(inner.entries.capacity() <= 4, "vacant slots are reused");
    }
}
