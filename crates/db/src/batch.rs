//! One block's inserts into the Jellyfish Merkle tree, node for node what `jmt`'s
//! `batch_put_value_sets` writes (tested below), without its per-update bookkeeping.
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
struct Child {
    hash: [u8; 32],
    version: Version,
    /// `None` for a leaf, else the leaves under it.
    leaves: Option<u64>,
}

impl Child {
    fn leaf_count(&self) -> u64 {
        self.leaves.unwrap_or(1)
    }
}

/// The new nodes of one version.
struct Batch<'r, R> {
    reader: &'r R,
    version: Version,
    nodes: BTreeMap<NodeKey, Node>,
}

/// The nibble of `kh` at `depth`.
fn nibble(kh: &KeyHash, depth: usize) -> u8 {
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
fn children_of(node: &Node) -> [Option<Child>; 16] {
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

/// Runs of `kvs` (sorted by key hash) that share the nibble at `depth`: (nibble, run).
fn runs(
    kvs: &[(KeyHash, ValueHash)],
    depth: usize,
) -> impl Iterator<Item = (u8, &[(KeyHash, ValueHash)])> {
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

    fn read(&self, key: &NodeKey) -> Result<Node> {
        self.reader
            .get_node_option(key)
            .map_err(|e| crate::DbError::Tree(e.to_string()))?
            .ok_or_else(|| crate::DbError::Tree(format!("missing tree node {key:?}")))
    }

    /// Inserts `kvs` into the subtree at `path` whose current root is `node`.
    fn insert_at(
        &mut self,
        path: &mut Vec<u8>,
        node: Node,
        kvs: &[(KeyHash, ValueHash)],
    ) -> Result<Child> {
        match node {
            Node::Internal(_) => {
                let children = self.insert_children(children_of(&node), path, kvs)?;
                self.internal(path, &children)
            }
            Node::Leaf(leaf) => self.create_with_leaf(path, leaf, kvs),
            Node::Null => self.create(path, kvs),
        }
    }

    /// The children of an internal node at `path` (`children`, as it records them) once `kvs`
    /// are inserted below it: the subtrees of their nibbles rebuilt, the others as they were.
    fn insert_children(
        &mut self,
        mut children: [Option<Child>; 16],
        path: &mut Vec<u8>,
        kvs: &[(KeyHash, ValueHash)],
    ) -> Result<[Option<Child>; 16]> {
        for (n, run) in runs(kvs, path.len()) {
            path.push(n);
            let child = match children[usize::from(n)] {
                Some(old) => {
                    let below = self.read(&node_key(old.version, path))?;
                    self.insert_at(path, below, run)?
                }
                None => self.create(path, run)?,
            };
            path.pop();
            children[usize::from(n)] = Some(child);
        }
        Ok(children)
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

/// Blocks with at least this many keys are inserted on two threads (below the root, each
/// thread takes the subtrees of eight of its sixteen children); smaller ones on one.
pub(crate) const PARALLEL_MIN: usize = 2_048;

/// Inserts `kvs` (sorted by key hash, no duplicates, not empty) as `version` on top of the tree
/// of `version - 1` (an empty tree for version 0): the new root hash and every new node, as
/// `jmt` would write them. The same nodes whichever thread builds them: each subtree is a
/// function of the keys under it and the tree before.
pub(crate) fn insert(
    reader: &(impl TreeReader + Sync),
    version: Version,
    kvs: &[(KeyHash, ValueHash)],
) -> Result<([u8; 32], BTreeMap<NodeKey, Node>)> {
    debug_assert!(!kvs.is_empty() && kvs.windows(2).all(|w| w[0].0 < w[1].0));
    let mut batch = Batch {
        reader,
        version,
        nodes: BTreeMap::new(),
    };
    let root = match version.checked_sub(1) {
        None => Node::Null,
        Some(before) => batch.read(&node_key(before, &[]))?,
    };
    let root = match root {
        Node::Internal(_) if kvs.len() >= PARALLEL_MIN => {
            let children = children_of(&root);
            // The keys whose first nibble is 8 or more go to the second thread.
            let half = kvs.partition_point(|(kh, _)| nibble(kh, 0) < 8);
            let (low, high) = kvs.split_at(half);
            let (root_children, mut high_nodes) = std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    let mut b = Batch {
                        reader,
                        version,
                        nodes: BTreeMap::new(),
                    };
                    let children = b.insert_children(children, &mut Vec::new(), high)?;
                    Ok::<_, crate::DbError>((children, b.nodes))
                });
                let mine = batch.insert_children(children, &mut Vec::new(), low);
                let theirs = other.join().expect("the tree thread does not panic");
                mine.and_then(|low_children| {
                    let (high_children, nodes) = theirs?;
                    Ok((merge(low_children, high_children, high), nodes))
                })
            })?;
            batch.nodes.append(&mut high_nodes);
            batch.internal(&[], &root_children)?
        }
        root => batch.insert_at(&mut Vec::with_capacity(64), root, kvs)?,
    };
    Ok((root.hash, batch.nodes))
}

/// The root's children after both halves: the first half's, with the subtrees the second half
/// rebuilt (those of its keys' first nibbles) taken from the second.
fn merge(
    mut low: [Option<Child>; 16],
    high: [Option<Child>; 16],
    high_keys: &[(KeyHash, ValueHash)],
) -> [Option<Child>; 16] {
    for (n, _) in runs(high_keys, 0) {
        low[usize::from(n)] = high[usize::from(n)];
    }
    low
}
