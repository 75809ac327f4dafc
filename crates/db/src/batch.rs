//! One block's writes into the Jellyfish Merkle tree: for inserts and updates node for node
//! what `jmt`'s `batch_put_value_sets` writes, and with deletions the same tree (root, shape and
//! proofs) as `jmt`'s key-by-key `put_value_set`, which is the only one of its updates that
//! deletes (tested in the crate root), without its per-update bookkeeping.
//!
//! `jmt` builds each version through a cache of every node it touched (a SipHash `HashMap` of
//! node keys), a set of stale nodes Kassa never prunes, a copy of every value, and clones of each
//! internal node on its way in and out. In a profile of four validators at 10,000 tx/s those
//! were about 70% of the tree update and the hashing a tenth. Here a block's sorted keys are
//! walked down the tree once: each touched node is read once, each new node is built once,
//! hashed once and put in the batch. Internal nodes are built as their Borsh encoding and
//! decoded into `jmt`'s type (`jmt` exports no constructor for them), so the stored bytes, the
//! hashes and the proofs stay `jmt`'s own.

use crate::Result;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, ValueHash, Version};
use sha2::Sha256;
use std::collections::BTreeMap;

/// A child as its parent records it.
#[derive(Clone, Copy)]
pub(crate) struct Child {
    pub(crate) hash: [u8; 32],
    pub(crate) version: Version,
    /// `None` for a leaf, else the leaves under it.
    pub(crate) leaves: Option<u64>,
}

impl Child {
    fn leaf_count(&self) -> u64 {
        self.leaves.unwrap_or(1)
    }
}

/// The new nodes of one version, and the stored nodes it replaces.
struct Batch<'r, R> {
    reader: &'r R,
    version: Version,
    nodes: BTreeMap<NodeKey, Node>,
    /// Nodes of earlier versions that are not in this version's tree: needed only to read
    /// earlier versions (a node that prunes history deletes them, `Db::prune_step`).
    stale: Vec<NodeKey>,
}

/// The nibble of `kh` at `depth`.
pub(crate) fn nibble(kh: &KeyHash, depth: usize) -> u8 {
    let b = kh.0[depth / 2];
    if depth.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    }
}

fn node_key(version: Version, path: &[u8]) -> NodeKey {
    NodeKey::new(version, path.iter().map(|&n| n.into()).collect())
}

/// The children an internal node records (none for another node).
pub(crate) fn children_of(node: &Node) -> [Option<Child>; 16] {
    let mut children: [Option<Child>; 16] = [None; 16];
    if let Node::Internal(internal) = node {
        for (n, c) in internal.children_sorted() {
            children[usize::from(u8::from(n))] = Some(Child {
                hash: c.hash,
                version: c.version,
                leaves: (!c.is_leaf()).then(|| u64::try_from(c.leaf_count()).expect("fits")),
            });
        }
    }
    children
}

/// One key of a block: its new value's hash, or `None` to delete it.
pub(crate) type Write = (KeyHash, Option<ValueHash>);

/// Runs of `kvs` (sorted by key hash) that share the nibble at `depth`: (nibble, run).
fn runs<T>(kvs: &[(KeyHash, T)], depth: usize) -> impl Iterator<Item = (u8, &[(KeyHash, T)])> {
    let mut rest = kvs;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let n = nibble(&first.0, depth);
        let len = rest.partition_point(|(kh, _)| nibble(kh, depth) <= n);
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some((n, run))
    })
}

/// The keys of `kvs` that get a value (deleting a key that is not there changes nothing).
fn puts(kvs: &[Write]) -> Vec<(KeyHash, ValueHash)> {
    kvs.iter()
        .filter_map(|(kh, vh)| Some((*kh, (*vh)?)))
        .collect()
}

/// What a block did to a subtree.
enum Outcome {
    /// Nothing: every key of the block under it was a deletion of a key not there. The subtree
    /// keeps its nodes and their versions (as `jmt` leaves it).
    Unchanged,
    /// Rebuilt under this version: its new root, or `None` when its last key was deleted.
    Changed(Option<Child>),
}

impl<R: TreeReader> Batch<'_, R> {
    fn put(&mut self, path: &[u8], node: Node) {
        let replaced = self.nodes.insert(node_key(self.version, path), node);
        debug_assert!(replaced.is_none(), "each new node is built once");
    }

    fn leaf(&mut self, path: &[u8], leaf: LeafNode) -> Child {
        let hash = leaf.hash::<Sha256>();
        self.put(path, Node::Leaf(leaf));
        Child {
            hash,
            version: self.version,
            leaves: None,
        }
    }

    /// Stores the internal node with `children` at `path`: built as `jmt`'s Borsh encoding of
    /// `Node::Internal` (variant 1: sixteen optional children of hash, version and node type,
    /// the number of children, the number of leaves), since `jmt` exports no constructor.
    fn internal(&mut self, path: &[u8], children: &[Option<Child>; 16]) -> Result<Child> {
        let mut bytes = Vec::with_capacity(1 + 16 * 50 + 16);
        bytes.push(1);
        let (mut count, mut leaves) = (0u64, 0u64);
        for child in children {
            match child {
                None => bytes.push(0),
                Some(c) => {
                    bytes.push(1);
                    bytes.extend_from_slice(&c.hash);
                    bytes.extend_from_slice(&c.version.to_le_bytes());
                    match c.leaves {
                        None => bytes.push(0),
                        Some(n) => {
                            bytes.push(1);
                            bytes.extend_from_slice(&n.to_le_bytes());
                        }
                    }
                    count += 1;
                    leaves += c.leaf_count();
                }
            }
        }
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&leaves.to_le_bytes());
        let node: Node = borsh::from_slice(&bytes)
            .map_err(|e| crate::DbError::Tree(format!("an internal node's encoding: {e}")))?;
        let Node::Internal(internal) = &node else {
            return Err(crate::DbError::Tree(
                "variant 1 is not an internal node".into(),
            ));
        };
        let hash = internal.hash::<Sha256>();
        self.put(path, node);
        Ok(Child {
            hash,
            version: self.version,
            leaves: Some(leaves),
        })
    }

    /// The subtree at `path` whose children are now `children`, in the tree's one shape for
    /// its keys (`jmt`'s after a deletion): gone when it holds no key, its one leaf moved up
    /// to `path` when it holds one, else an internal node (with a single child if its keys
    /// share a longer prefix).
    fn subtree(&mut self, path: &mut Vec<u8>, children: &[Option<Child>; 16]) -> Result<Outcome> {
        let mut leaves = 0;
        let mut only = None;
        for (n, child) in children.iter().enumerate() {
            if let Some(c) = child {
                leaves += c.leaf_count();
                only = Some((n, *c));
            }
        }
        match (leaves, only) {
            (0, _) => Ok(Outcome::Changed(None)),
            (1, Some((n, child))) => {
                // A subtree of one key is that key's leaf (`leaf_count` 1 is a leaf).
                path.push(u8::try_from(n).expect("a nibble"));
                let key = node_key(child.version, path);
                let node = if child.version == self.version {
                    self.nodes.remove(&key)
                } else {
                    None
                };
                let node = match node {
                    Some(node) => node,
                    None => {
                        // Moved up under this version: the stored leaf is left to older ones.
                        let node = self.read(&key)?;
                        self.stale.push(key.clone());
                        node
                    }
                };
                path.pop();
                let Node::Leaf(leaf) = node else {
                    return Err(crate::DbError::Tree(format!(
                        "a subtree of one key holds no leaf at {key:?}"
                    )));
                };
                Ok(Outcome::Changed(Some(self.leaf(path, leaf))))
            }
            _ => Ok(Outcome::Changed(Some(self.internal(path, children)?))),
        }
    }

    fn read(&self, key: &NodeKey) -> Result<Node> {
        self.reader
            .get_node_option(key)
            .map_err(|e| crate::DbError::Tree(e.to_string()))?
            .ok_or_else(|| crate::DbError::Tree(format!("missing tree node {key:?}")))
    }

    /// Writes `kvs` into the subtree at `path` whose current root is `node`.
    fn update_at(&mut self, path: &mut Vec<u8>, node: Node, kvs: &[Write]) -> Result<Outcome> {
        match node {
            Node::Internal(_) => {
                let (children, changed) = self.update_children(children_of(&node), path, kvs)?;
                if changed {
                    self.subtree(path, &children)
                } else {
                    Ok(Outcome::Unchanged)
                }
            }
            Node::Leaf(leaf) => {
                let existing = leaf.key_hash();
                let deleted = kvs.iter().any(|(kh, vh)| *kh == existing && vh.is_none());
                let puts = puts(kvs);
                Ok(match (deleted, puts.is_empty()) {
                    (false, true) => Outcome::Unchanged,
                    (true, true) => Outcome::Changed(None),
                    (true, false) => Outcome::Changed(Some(self.create(path, &puts)?)),
                    (false, false) => {
                        Outcome::Changed(Some(self.create_with_leaf(path, leaf, &puts)?))
                    }
                })
            }
            Node::Null => self.fresh(path, kvs),
        }
    }

    /// The children of an internal node at `path` (`children`, as it records them) once `kvs`
    /// are written below it: the subtrees of their nibbles rebuilt, the others as they were;
    /// and whether any changed.
    fn update_children(
        &mut self,
        mut children: [Option<Child>; 16],
        path: &mut Vec<u8>,
        kvs: &[Write],
    ) -> Result<([Option<Child>; 16], bool)> {
        let mut changed = false;
        for (n, run) in runs(kvs, path.len()) {
            path.push(n);
            let outcome = match children[usize::from(n)] {
                Some(old) => {
                    let key = node_key(old.version, path);
                    let below = self.read(&key)?;
                    let outcome = self.update_at(path, below, run)?;
                    if matches!(outcome, Outcome::Changed(_)) {
                        self.stale.push(key);
                    }
                    outcome
                }
                None => self.fresh(path, run)?,
            };
            path.pop();
            if let Outcome::Changed(child) = outcome {
                children[usize::from(n)] = child;
                changed = true;
            }
        }
        Ok((children, changed))
    }

    /// A new subtree at `path` holding `kvs` and the existing `leaf` (unless `kvs` replaces it).
    fn create_with_leaf(
        &mut self,
        path: &mut Vec<u8>,
        leaf: LeafNode,
        kvs: &[(KeyHash, ValueHash)],
    ) -> Result<Child> {
        let existing = leaf.key_hash();
        if let [(kh, vh)] = kvs
            && *kh == existing
        {
            return Ok(self.leaf(path, LeafNode::new(*kh, *vh)));
        }
        let at = nibble(&existing, path.len());
        let mut children: [Option<Child>; 16] = [None; 16];
        let mut leaf = Some(leaf);
        for (n, run) in runs(kvs, path.len()) {
            path.push(n);
            let child = if n == at {
                let leaf = leaf.take().expect("one run per nibble");
                self.create_with_leaf(path, leaf, run)?
            } else {
                self.create(path, run)?
            };
            path.pop();
            children[usize::from(n)] = Some(child);
        }
        if let Some(leaf) = leaf {
            // Moved one level down, unchanged, under this version.
            path.push(at);
            children[usize::from(at)] = Some(self.leaf(path, leaf));
            path.pop();
        }
        self.internal(path, &children)
    }

    /// Writes `kvs` where no key is yet: a new subtree of the keys they put, or nothing changed
    /// if they only delete.
    fn fresh(&mut self, path: &mut Vec<u8>, kvs: &[Write]) -> Result<Outcome> {
        let puts = puts(kvs);
        Ok(if puts.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Changed(Some(self.create(path, &puts)?))
        })
    }

    /// A new subtree at `path` holding exactly `kvs`.
    fn create(&mut self, path: &mut Vec<u8>, kvs: &[(KeyHash, ValueHash)]) -> Result<Child> {
        if let [(kh, vh)] = kvs {
            return Ok(self.leaf(path, LeafNode::new(*kh, *vh)));
        }
        let mut children: [Option<Child>; 16] = [None; 16];
        for (n, run) in runs(kvs, path.len()) {
            path.push(n);
            children[usize::from(n)] = Some(self.create(path, run)?);
            path.pop();
        }
        self.internal(path, &children)
    }
}

/// Blocks with at least this many keys are written on two threads (below the root, each
/// thread takes the subtrees of eight of its sixteen children); smaller ones on one.
pub(crate) const PARALLEL_MIN: usize = 2_048;

/// What one version's update produced: its root hash, its new nodes, and the nodes of earlier
/// versions it replaced (stale from this version on).
pub(crate) struct Updated {
    pub root: [u8; 32],
    pub nodes: BTreeMap<NodeKey, Node>,
    pub stale: Vec<NodeKey>,
}

/// Writes `kvs` (sorted by key hash, no duplicates, not empty; `None` deletes) as `version` on
/// top of the tree of `version - 1` (an empty tree for version 0): the new root hash, every
/// new node and every replaced one. The tree has the one shape `jmt` gives the same keys, so the same root and proofs;
/// for blocks without deletions the very nodes `jmt` writes. The same nodes whichever thread
/// builds them: each subtree is a function of the keys under it and the tree before.
pub(crate) fn update(
    reader: &(impl TreeReader + Sync),
    version: Version,
    kvs: &[Write],
) -> Result<Updated> {
    debug_assert!(!kvs.is_empty() && kvs.windows(2).all(|w| w[0].0 < w[1].0));
    let mut batch = Batch {
        reader,
        version,
        nodes: BTreeMap::new(),
        stale: Vec::new(),
    };
    let before = match version.checked_sub(1) {
        None => Node::Null,
        Some(before) => {
            // Every version has its own root: the one before is stale from this one on.
            let key = node_key(before, &[]);
            let root = batch.read(&key)?;
            batch.stale.push(key);
            root
        }
    };
    let outcome = match &before {
        Node::Internal(_) if kvs.len() >= PARALLEL_MIN => {
            let children = children_of(&before);
            // The keys whose first nibble is 8 or more go to the second thread.
            let half = kvs.partition_point(|(kh, _)| nibble(kh, 0) < 8);
            let (low, high) = kvs.split_at(half);
            let ((root_children, changed), high_nodes) = std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    let mut b = Batch {
                        reader,
                        version,
                        nodes: BTreeMap::new(),
                        stale: Vec::new(),
                    };
                    let children = b.update_children(children, &mut Vec::new(), high)?;
                    Ok::<_, crate::DbError>((children, b.nodes, b.stale))
                });
                let mine = batch.update_children(children, &mut Vec::new(), low);
                let theirs = other.join().expect("the tree thread does not panic");
                mine.and_then(|(low_children, low_changed)| {
                    let ((high_children, high_changed), nodes, stale) = theirs?;
                    let children = merge(low_children, high_children, high);
                    Ok(((children, low_changed || high_changed), (nodes, stale)))
                })
            })?;
            let (mut high_nodes, mut high_stale) = high_nodes;
            batch.nodes.append(&mut high_nodes);
            batch.stale.append(&mut high_stale);
            if changed {
                batch.subtree(&mut Vec::new(), &root_children)?
            } else {
                Outcome::Unchanged
            }
        }
        _ => batch.update_at(&mut Vec::with_capacity(64), before.clone(), kvs)?,
    };
    let root = match outcome {
        Outcome::Changed(Some(root)) => root.hash,
        // Every version has a root node: the one before, copied, when nothing changed (as
        // `jmt` does); the empty tree's when the last key went.
        Outcome::Unchanged => {
            batch.put(&[], before.clone());
            node_hash(&before)
        }
        Outcome::Changed(None) => {
            batch.put(&[], Node::Null);
            node_hash(&Node::Null)
        }
    };
    Ok(Updated {
        root,
        nodes: batch.nodes,
        stale: batch.stale,
    })
}

/// The hash of `node` as its parent (or the root) records it.
fn node_hash(node: &Node) -> [u8; 32] {
    match node {
        // `jmt`'s placeholder for an empty subtree.
        Node::Null => *b"SPARSE_MERKLE_PLACEHOLDER_HASH__",
        Node::Internal(internal) => internal.hash::<Sha256>(),
        Node::Leaf(leaf) => leaf.hash::<Sha256>(),
    }
}

/// The root's children after both halves: the first half's, with the subtrees the second half
/// rebuilt (those of its keys' first nibbles) taken from the second.
fn merge(
    mut low: [Option<Child>; 16],
    high: [Option<Child>; 16],
    high_keys: &[Write],
) -> [Option<Child>; 16] {
    for (n, _) in runs(high_keys, 0) {
        low[usize::from(n)] = high[usize::from(n)];
    }
    low
}
