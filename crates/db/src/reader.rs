//! A consistent read snapshot of the database: the current state for the state machine and the
//! API, and the committed tree for proofs and history.

use crate::tree::{leaf_at, leaf_value_key, node_key_bytes, split_row};
use crate::{DbError, Head, Result, dec};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};
use kassa_state::store::{KeyRange, take_in_order};
use kassa_state::{Order, ScanStore, Store};

/// A read snapshot of the state.
#[derive(Debug)]
pub struct Reader {
    /// The last block committed in this snapshot.
    pub(crate) head: Option<Head>,
    /// The lowest height whose history this snapshot still holds.
    pub(crate) pruned_below: u64,
    pub(crate) state: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    pub(crate) nodes: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    pub(crate) values: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader {
    /// The height of the last block committed in this snapshot (`None` before genesis).
    pub fn height(&self) -> Option<u64> {
        self.head.as_ref().map(|h| h.height)
    }

    /// Refuses a height whose history this snapshot no longer holds (checked in the snapshot
    /// that then reads it, so a prune committed meanwhile cannot take the nodes away).
    pub(crate) fn kept(&self, height: u64) -> Result<()> {
        if height < self.pruned_below {
            return Err(DbError::Pruned {
                height,
                kept: self.pruned_below,
            });
        }
        Ok(())
    }

    /// The stored row ([`crate::tree::leaf_row`]) of a committed leaf (keyed by [`leaf_value_key`]).
    pub(crate) fn leaf_row(&self, key: &[u8; 40]) -> anyhow::Result<Vec<u8>> {
        let row = self
            .values
            .get(key.as_slice())?
            .ok_or_else(|| anyhow::anyhow!("a leaf of the tree has no stored value"))?;
        Ok(row.value().to_vec())
    }

    /// The stored value of a committed leaf (keyed by [`leaf_value_key`]).
    fn leaf_value(&self, key: &[u8; 40]) -> anyhow::Result<OwnedValue> {
        self.leaf_row(key).map(|row| split_row(&row).1.to_vec())
    }
}

impl Store for Reader {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state
            .get(key)
            .expect("database read")
            .map(|v| v.value().to_vec())
    }
}

impl ScanStore for Reader {
    fn scan_prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for item in self.state.range(prefix..).expect("database read") {
            let (k, v) = item.expect("database read");
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        out
    }

    fn page(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        order: Order,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(range) = KeyRange::new(prefix, after, order) else {
            return Vec::new();
        };
        let entries = self
            .state
            .range::<&[u8]>(range.bounds())
            .expect("database read")
            .map(|item| {
                let (k, v) = item.expect("database read");
                (k.value().to_vec(), v.value().to_vec())
            });
        take_in_order(entries, order, limit)
    }
}

impl TreeReader for Reader {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self
            .nodes
            .get(node_key_bytes(node_key).as_slice())?
            .map(|v| dec(v.value())))
    }

    /// The value of `key_hash` in the tree of `max_version`: found at its leaf, by walking the
    /// tree. Values are stored under their leaf's version rather than by key hash, so that
    /// committing a block appends its values instead of inserting each at a random place of
    /// an ever-growing table (one dirtied page per value); reading history costs the walk.
    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let Some(leaf) = leaf_at(self, max_version, &key_hash)? else {
            return Ok(None);
        };
        self.leaf_value(&leaf_value_key(leaf.version(), &key_hash))
            .map(Some)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // `jmt` asks for it only to resume an interrupted restore; state sync (`snapshot.rs`)
        // restores into a store of its own and starts an interrupted restore over instead.
        anyhow::bail!("a committed tree is never resumed as a restore")
    }
}
