//! The Jellyfish Merkle tree over the state: where its nodes and leaf values are stored, how a
//! block's writes update it (on the committed tree, or stacked on blocks not committed yet),
//! and its proofs.
//!
//! The tree holds only key hashes; each leaf's value is stored, with its state key, under the
//! leaf's version ([`leaf_value_key`]), so a block's nodes and values are appended to their
//! tables. The root of version `h` is the state root after block `h`.

use crate::batch;
pub(crate) use crate::qmdb::{leaf_row, split_row};
use crate::{Db, DbError, PendingState, Proof, Reader, Result};
use jmt::storage::{LeafNode, NibblePath, Node, NodeBatch, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, ValueHash, Version};
use kassa_types::Hash;
use sha2::Sha256;
use std::collections::BTreeMap;

pub(crate) fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Sha256>(key)
}

/// Where the value of the leaf for `kh` created at `version` is stored: version first
/// (big-endian), so that each block's values sort after all earlier ones.
pub(crate) fn leaf_value_key(version: Version, kh: &KeyHash) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&version.to_be_bytes());
    k[8..].copy_from_slice(&kh.0);
    k
}

/// Where a tree node is stored: its version (big-endian, so each block's nodes sort after all
/// earlier ones and are appended), the length of its nibble path, and the path's nibbles
/// packed two to a byte.
pub(crate) fn node_key_bytes(key: &NodeKey) -> Vec<u8> {
    let path = key.nibble_path();
    let mut out = Vec::with_capacity(8 + 1 + 32);
    out.extend_from_slice(&key.version().to_be_bytes());
    out.push(u8::try_from(path.num_nibbles()).expect("at most 64 nibbles"));
    for (i, nibble) in path.nibbles().enumerate() {
        let n = u8::from(nibble);
        if i.is_multiple_of(2) {
            out.push(n << 4);
        } else {
            *out.last_mut().expect("pushed above") |= n;
        }
    }
    out
}

/// The key of the tree's leaf for `kh` at `version` (the tree as it was after that version),
/// or `None` if the key had no value then: the walk from the root that `jmt` itself makes, one
/// node per nibble of the key hash.
pub(crate) fn leaf_at<R: TreeReader>(
    reader: &R,
    version: Version,
    kh: &KeyHash,
) -> anyhow::Result<Option<NodeKey>> {
    let nibble = |i: usize| {
        let b = kh.0[i / 2];
        if i.is_multiple_of(2) {
            b >> 4
        } else {
            b & 0x0f
        }
    };
    let path = |depth: usize| -> NibblePath { (0..depth).map(|i| nibble(i).into()).collect() };
    let mut key = NodeKey::new(version, path(0));
    for depth in 0..=64 {
        match reader.get_node_option(&key)? {
            None | Some(Node::Null) => return Ok(None),
            Some(Node::Leaf(leaf)) => return Ok((leaf.key_hash() == *kh).then_some(key)),
            Some(Node::Internal(node)) => match node.child(nibble(depth).into()) {
                None => return Ok(None),
                Some(child) => key = NodeKey::new(child.version, path(depth + 1)),
            },
        }
    }
    anyhow::bail!("the tree is deeper than a key hash's 64 nibbles")
}

/// Checks a proof for `key` having `value` (or being absent) under `state_root`.
pub fn verify_proof(state_root: &Hash, key: &[u8], value: Option<&[u8]>, proof: &Proof) -> bool {
    proof
        .verify(RootHash(state_root.0), key_hash(key), value)
        .is_ok()
}

/// A proof as bytes, for the wire (the Borsh encoding of the `jmt` proof).
pub fn encode_proof(proof: &Proof) -> Vec<u8> {
    borsh::to_vec(proof).expect("a proof encodes")
}

/// A proof from the bytes of [`encode_proof`]; `None` if they are not one.
pub fn decode_proof(bytes: &[u8]) -> Option<Proof> {
    borsh::from_slice(bytes).ok()
}

/// How the tree takes a block's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// Key by key (`jmt`'s `put_value_set`): every internal node on a key's path is rebuilt and
    /// rehashed for that key, so the nodes near the root are hashed once per key of the block.
    /// For the tests that compare.
    #[cfg(test)]
    Sequential,
    /// All keys at once through `jmt`'s own `batch_put_value_sets`, for the tests that compare.
    #[cfg(test)]
    JmtBatched,
    /// All keys at once ([`batch::update`]: sorted, split by nibble): every touched node is
    /// rebuilt and hashed once per block. All three give the same root and proofs; without
    /// deletions the same nodes too (tested below). A block that writes nothing goes key by key
    /// (`jmt` copies the root to the new version).
    Batched,
}

/// Where the root of version `version` is.
pub(crate) fn root_key(version: Version) -> NodeKey {
    NodeKey::new(version, std::iter::empty().collect())
}

/// The row ([`leaf_row`]) of each new leaf of a tree update, under [`leaf_value_key`].
pub(crate) type LeafValues = BTreeMap<[u8; 40], Vec<u8>>;

/// The new root, tree nodes and leaf values ([`leaf_values`]) after `writes` at version
/// `height`.
pub(crate) fn update_tree(
    reader: &Stacked<'_>,
    writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    height: u64,
    how: Update,
) -> Result<(RootHash, NodeBatch, LeafValues, Vec<NodeKey>)> {
    let tree_error = |e: anyhow::Error| DbError::Tree(e.to_string());
    if how == Update::Batched && !writes.is_empty() {
        // (key hash, value hash, value), sorted by key hash; no value deletes.
        type Hashed = (KeyHash, Option<ValueHash>, Option<Vec<u8>>);
        let mut set: Vec<Hashed> = writes
            .iter()
            .map(|(k, v)| {
                let v = v.as_deref();
                (
                    key_hash(k),
                    v.map(ValueHash::with::<Sha256>),
                    v.map(|v| leaf_row(k, v)),
                )
            })
            .collect();
        set.sort_unstable_by_key(|(kh, _, _)| *kh);
        let kvs: Vec<batch::Write> = set.iter().map(|(kh, vh, _)| (*kh, *vh)).collect();
        let batch::Updated { root, nodes, stale } = batch::update(reader, height, &kvs)?;
        let batch = NodeBatch::new(nodes, BTreeMap::new());
        let written = |kh: &KeyHash| {
            set.binary_search_by_key(kh, |(k, _, _)| *k)
                .ok()
                .and_then(|i| set[i].2.clone())
        };
        let values = leaf_values(reader, &batch, height, written)?;
        return Ok((RootHash(root), batch, values, stale));
    }
    if how == Update::Batched {
        // An empty block: the same tree under the new version, its root copied (as `jmt`
        // copies it, without counting the old root as stale).
        let before = match height.checked_sub(1) {
            None => Node::Null,
            Some(before) => reader
                .get_node_option(&root_key(before))
                .map_err(tree_error)?
                .ok_or_else(|| DbError::Tree(format!("no root at version {before}")))?,
        };
        let root = match &before {
            Node::Null => RootHash(*b"SPARSE_MERKLE_PLACEHOLDER_HASH__"),
            Node::Internal(n) => RootHash(n.hash::<Sha256>()),
            Node::Leaf(n) => RootHash(n.hash::<Sha256>()),
        };
        let stale = height.checked_sub(1).map(root_key).into_iter().collect();
        let mut nodes = BTreeMap::new();
        nodes.insert(root_key(height), before);
        let batch = NodeBatch::new(nodes, BTreeMap::new());
        let values = leaf_values(reader, &batch, height, |_| None)?;
        return Ok((root, batch, values, stale));
    }
    let tree = JellyfishMerkleTree::<_, Sha256>::new(reader);
    let (root, update) = match how {
        #[cfg(test)]
        Update::JmtBatched if writes.values().all(Option::is_some) && !writes.is_empty() => {
            let set: Vec<(KeyHash, OwnedValue)> = writes
                .iter()
                .filter_map(|(k, v)| Some((key_hash(k), v.clone()?)))
                .collect();
            tree.batch_put_value_sets(vec![set], None, height)
                .map(|(roots, update)| (roots[0], update))
        }
        _ => {
            let set: Vec<(KeyHash, Option<OwnedValue>)> = writes
                .iter()
                .map(|(k, v)| (key_hash(k), v.clone()))
                .collect();
            tree.put_value_set(set, height)
        }
    }
    .map_err(tree_error)?;
    let batch = update.node_batch;
    let stale = update
        .stale_node_index_batch
        .into_iter()
        .map(|i| i.node_key)
        .collect();
    let keys: BTreeMap<KeyHash, &[u8]> = writes.keys().map(|k| (key_hash(k), &k[..])).collect();
    let written = |kh: &KeyHash| {
        let value = batch.values().get(&(height, *kh)).cloned().flatten()?;
        Some(leaf_row(keys[kh], &value))
    };
    let values = leaf_values(reader, &batch, height, written)?;
    Ok((root, batch, values, stale))
}

/// The row ([`leaf_row`]) of every leaf in `batch` (the tree's new nodes at `height`), keyed
/// for [`JMT_VALUES`]: the block's own write if it wrote the key (`written`), else (a leaf
/// moved down or copied to make room for another key) its row in the tree before.
pub(crate) fn leaf_values(
    reader: &Stacked<'_>,
    batch: &NodeBatch,
    height: u64,
    written: impl Fn(&KeyHash) -> Option<Vec<u8>>,
) -> Result<LeafValues> {
    let mut out = BTreeMap::new();
    for (key, node) in batch.nodes() {
        let Node::Leaf(leaf) = node else { continue };
        let kh = leaf.key_hash();
        let value = match written(&kh) {
            Some(row) => row,
            None => height
                .checked_sub(1)
                .map(|before| reader.row_at(before, kh))
                .transpose()
                .map_err(|e| DbError::Tree(e.to_string()))?
                .flatten()
                .ok_or_else(|| DbError::Tree("a moved leaf has no value before".into()))?,
        };
        out.insert(leaf_value_key(key.version(), &kh), value);
    }
    Ok(out)
}

/// The committed tree with the prepared, not yet committed, blocks `below` on top (oldest
/// first, one version each).
pub(crate) struct Stacked<'a> {
    pub(crate) base: &'a Reader,
    pub(crate) below: &'a [&'a PendingState],
}

impl Stacked<'_> {
    /// The row ([`leaf_row`]) of `key_hash`'s leaf in the tree of `max_version`.
    fn row_at(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<Vec<u8>>> {
        let Some(leaf) = leaf_at(self, max_version, &key_hash)? else {
            return Ok(None);
        };
        let key = leaf_value_key(leaf.version(), &key_hash);
        match self.below.iter().find(|p| p.height == leaf.version()) {
            Some(p) => p
                .leaf_values
                .get(&key)
                .cloned()
                .map(Some)
                .ok_or_else(|| anyhow::anyhow!("a prepared leaf of the tree has no value")),
            None => self.base.leaf_row(&key).map(Some),
        }
    }
}

impl TreeReader for Stacked<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        for p in self.below.iter().rev() {
            if let Some(n) = p.batch.get_node(node_key) {
                return Ok(Some(n.clone()));
            }
        }
        self.base.get_node_option(node_key)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self
            .row_at(max_version, key_hash)?
            .map(|row| split_row(&row).1.to_vec()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.base.get_rightmost_leaf()
    }
}

/// Proofs and history, read from the tree.
impl Db {
    /// The value under `key` at `height`, with a proof against that height's state root.
    pub fn prove(&self, key: &[u8], height: u64) -> Result<(Option<Vec<u8>>, Proof)> {
        let reader = self.reader()?;
        reader.kept(height)?;
        let tree = JellyfishMerkleTree::<_, Sha256>::new(&reader);
        tree.get_with_proof(key_hash(key), height)
            .map_err(|e| DbError::Tree(e.to_string()))
    }

    /// The state root at `height`.
    pub fn root_at(&self, height: u64) -> Result<Hash> {
        let reader = self.reader()?;
        reader.kept(height)?;
        let tree = JellyfishMerkleTree::<_, Sha256>::new(&reader);
        let root = tree
            .get_root_hash(height)
            .map_err(|e| DbError::Tree(e.to_string()))?;
        Ok(Hash(root.0))
    }
}
