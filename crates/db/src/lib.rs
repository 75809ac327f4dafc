//! Kassa's persistent, authenticated state.
//!
//! One [`redb`] database (ACID, copy-on-write B-trees, crash-safe: a commit is durable and atomic
//! or absent) holds, per finalized block, in **one write transaction**:
//! - the current state (`state`: key → value), read by the state machine through [`Reader`];
//! - a Jellyfish Merkle tree over the state (`jmt_nodes`, `jmt_leaf_values`), versioned by height, whose
//!   root is the state root and which serves inclusion and exclusion proofs at any height (its
//!   values are stored under their leaf's height, so a block's values are appended, see
//!   [`Reader::get_value_option`]);
//! - the block, its transactions' receipts, and the chain head.
//!
//! Start reading at [`Db::commit_block`]. The byte-level layout is in `docs/storage.md`.
//!
//! Why a JMT over redb: the state machine reads state synchronously in its hot path and needs
//! proofs of values at a given height; a JMT over an embedded B-tree gives both with one
//! well-kept crate each (`jmt` is used by Penumbra and Sovereign), and keeps the state machine
//! independent of the async runtime. Its cost grows with the state (the tree's depth, the state
//! table's random writes): at a million keys Commonware's `qmdb::current` updates a block's keys
//! about nine times faster (`kassa bench store`), and the state is to move to it
//! (ARCHITECTURE.md says what that takes). Consensus' own storage (journals, archives) lives on
//! Commonware's runtime storage.
//!
//! One file on purpose: the tables, the commit of a block and recovery after a crash must be read
//! together to check crash safety.
//!
//! Over 600 lines: the state table, the tree, its two readers (committed, and stacked on blocks
//! not yet committed) and the one write transaction of a block change together.

mod batch;
pub mod disk;
mod snapshot;

pub use snapshot::{
    CHUNK_BYTES_MAX, CHUNK_ENTRIES_MAX, Chunk, KEY_LEN_MAX, RangeProof, Restore, RestoreError,
};

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::{LeafNode, NibblePath, Node, NodeBatch, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, ValueHash, Version};
use kassa_state::store::{KeyRange, take_in_order};
use kassa_state::{Order, Receipt, ScanStore, Store};
use kassa_types::{Block, BlockHeader, Hash};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::path::Path;

/// A state proof (borsh-encodable, so clients can verify it with the `jmt` crate).
pub type Proof = jmt::proof::SparseMerkleProof<Sha256>;

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const JMT_NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
/// The value of every leaf of the tree, under the leaf's version and key hash
/// ([`leaf_value_key`]): a block's values are appended at the end of the table.
const JMT_VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_leaf_values");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Receipts by position, [`RECEIPTS_PER_ROW`] to a row: (height, index in the block /
/// `RECEIPTS_PER_ROW`) → Borsh `Vec<Receipt>`. Each block's receipts are appended at the end of
/// the table, a few rows per block instead of one per transaction.
const RECEIPTS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("receipt_rows");
/// Receipts in one row of [`RECEIPTS`]: a look-up decodes at most this many.
const RECEIPTS_PER_ROW: u32 = 64;
/// (the transaction hash's first 8 bytes as a big-endian `u64`, height, index) → nothing: the
/// only table a transaction adds a random key to, kept to 20 bytes. A look-up reads the receipts
/// of every position under the prefix and keeps the one whose hash is the transaction's.
const TX_INDEX: TableDefinition<(u64, u64, u32), ()> = TableDefinition::new("tx_index_by_prefix");
/// (the version from which on a tree node is no longer in the tree, big-endian ‖ the node's key
/// as in `jmt_nodes`) → nothing: what pruning may delete. Written only by a database that keeps
/// a bounded history ([`Db::keeping`]).
const STALE: TableDefinition<&[u8], ()> = TableDefinition::new("jmt_stale_nodes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HEAD: &str = "head";
/// The lowest height whose block, receipts and state (tree) are still kept (0 or absent: all).
const PRUNED_BELOW: &str = "pruned_below";
/// Most heights one commit prunes: catching up after pruning is turned on is spread over many
/// blocks, so no commit takes much longer than the others.
const PRUNE_STEP: u64 = 8;
const SCHEMA: &str = "schema";
/// The layout of the tables above (`docs/storage.md`). 2: receipts by position and a hash index.
/// 3: tree values under their leaf's version instead of their key hash, and tree nodes under
/// their big-endian version (both appended per block). 4: the state's account record holds the
/// KAS balance (the tables are unchanged, the values they hold are not). 5: receipts 64 to a
/// row, and the hash index keyed by the hash's first 8 bytes and the position. 6: membership,
/// stake and checkpoint records write their counters as varints (the values change, the tables
/// do not). 7: protocol version 2's records. 8: the index of each society's requests (`l` keys).
/// 9: delegates' lapse buckets and paid-ahead periods. 10: a leaf's row holds its state key
/// before its value ([`leaf_row`]), so that the state can be served as a snapshot.
const SCHEMA_VERSION: u32 = 10;

/// Why the database failed. Every variant is an I/O or corruption problem, never a user error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Redb(String),
    #[error("merkle tree: {0}")]
    Tree(String),
    #[error("block {got} committed, but the next height is {expected}")]
    NotNext { got: u64, expected: u64 },
    #[error(
        "height {height} is pruned: this node keeps the blocks and state from height {kept} on"
    )]
    Pruned { height: u64, kept: u64 },
    #[error(
        "the database has storage schema {found}, this Kassa reads schema {SCHEMA_VERSION}: \
         start from an empty data directory (the chain is synced again from peers)"
    )]
    Schema { found: u32 },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

type Result<T> = std::result::Result<T, DbError>;

/// Whether a commit is on disk when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Written and fsync'ed before the commit returns.
    Immediate,
    /// Visible to readers at once, and on disk with the next immediate commit (or
    /// [`Db::sync`]); a crash before that leaves the database at the last immediate commit,
    /// whole. A run of blocks committed this way, then one immediately, costs one fsync, and
    /// each page they all touch (the tables' upper levels and appended ends) is written once
    /// instead of once per block.
    Deferred,
}

/// The last committed block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Head {
    pub height: u64,
    pub block_hash: Hash,
    /// Root of the state after this block.
    pub state_root: Hash,
    pub time_ms: u64,
}

/// Where an included transaction is, and what it did.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxRecord {
    pub height: u64,
    pub index: u32,
    pub receipt: Receipt,
}

/// The state changes of one block, computed but not yet committed.
#[derive(Debug)]
pub struct PendingState {
    pub height: u64,
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub state_root: Hash,
    batch: NodeBatch,
    /// The row ([`leaf_row`]) of each new leaf of the tree, under [`leaf_value_key`]: the
    /// values this block wrote, and those of leaves the tree moved (to make room for a new key)
    /// unchanged.
    leaf_values: BTreeMap<[u8; 40], Vec<u8>>,
    /// The nodes of earlier versions this block's tree no longer holds.
    stale: Vec<NodeKey>,
}

/// The database.
#[derive(Debug)]
pub struct Db {
    db: Database,
    /// How many of the newest heights to keep (blocks, receipts, the state's history); `None`:
    /// all of them (an archive).
    keep: Option<u64>,
}

fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Sha256>(key)
}

/// Where the value of the leaf for `kh` created at `version` is stored: version first
/// (big-endian), so that each block's values sort after all earlier ones.
fn leaf_value_key(version: Version, kh: &KeyHash) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&version.to_be_bytes());
    k[8..].copy_from_slice(&kh.0);
    k
}

/// A leaf's row in [`JMT_VALUES`]: the state key's length (`u16`, little-endian), the state key
/// and the value. The key is kept with the value because the tree holds only its hash: a
/// snapshot of the state ([`Db::snapshot_chunk`]) is served from the tree, in key-hash order,
/// and a node restoring it needs the keys themselves for its `state` table.
fn leaf_row(key: &[u8], value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(key.len()).expect("state keys are short");
    let mut row = Vec::with_capacity(2 + key.len() + value.len());
    row.extend_from_slice(&len.to_le_bytes());
    row.extend_from_slice(key);
    row.extend_from_slice(value);
    row
}

/// The state key and the value of a [`leaf_row`].
fn split_row(row: &[u8]) -> (&[u8], &[u8]) {
    let len = usize::from(u16::from_le_bytes([row[0], row[1]]));
    row[2..].split_at(len)
}

/// Where a tree node is stored: its version (big-endian, so each block's nodes sort after all
/// earlier ones and are appended), the length of its nibble path, and the path's nibbles
/// packed two to a byte.
fn node_key_bytes(key: &NodeKey) -> Vec<u8> {
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
fn leaf_at<R: TreeReader>(
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

fn enc<T: BorshSerialize>(v: &T) -> Vec<u8> {
    kassa_types::codec::encode(v)
}

fn dec<T: BorshDeserialize>(bytes: &[u8]) -> T {
    borsh::from_slice(bytes).expect("the database holds only values this code wrote")
}

/// The database's page cache unless configured otherwise: at a million accounts the state's
/// hot pages (the tree's upper levels, the tables' branch pages) fit with room to spare, and
/// the node's resident memory stays well under 1 GiB (`docs/performance.md`).
pub const CACHE_BYTES_DEFAULT: usize = 256 << 20;

impl Db {
    /// Opens (or creates) the database file at `path`, with the default page cache
    /// ([`CACHE_BYTES_DEFAULT`]).
    pub fn open(path: &Path) -> Result<Db> {
        Db::open_with_cache(path, CACHE_BYTES_DEFAULT)
    }

    /// Opens (or creates) the database file at `path`, caching at most `cache_bytes` of its
    /// pages in memory (the bound of the database's memory, whatever the state's size).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Db> {
        Db::init(
            redb::Builder::new()
                .set_cache_size(cache_bytes)
                .create(path)?,
        )
    }

    /// Opens (or creates) the database on a simulated disk (crash-consistency tests).
    pub fn open_on(disk: disk::SimDisk) -> Result<Db> {
        Db::init(
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES_DEFAULT)
                .create_with_backend(disk)?,
        )
    }

    fn init(db: Database) -> Result<Db> {
        let w = db.begin_write()?;
        {
            w.open_table(STATE)?;
            w.open_table(JMT_NODES)?;
            w.open_table(JMT_VALUES)?;
            w.open_table(BLOCKS)?;
            w.open_table(RECEIPTS)?;
            w.open_table(TX_INDEX)?;
            w.open_table(STALE)?;
            let mut meta = w.open_table(META)?;
            let found = meta.get(SCHEMA)?.map(|v| dec::<u32>(v.value()));
            let has_head = meta.get(HEAD)?.is_some();
            match found {
                // Written before schemas were recorded: schema 1.
                None if has_head => return Err(DbError::Schema { found: 1 }),
                None => {
                    meta.insert(SCHEMA, enc(&SCHEMA_VERSION).as_slice())?;
                }
                Some(v) if v != SCHEMA_VERSION => return Err(DbError::Schema { found: v }),
                Some(_) => {}
            }
        }
        w.commit()?;
        Ok(Db { db, keep: None })
    }

    /// Keeps only the newest `keep` heights (at least 1): each commit then records which tree
    /// nodes it made stale and deletes, a few heights at a time, the blocks (but the genesis
    /// block), receipts and tree nodes only older heights need. History written before pruning was turned on stays.
    /// `None` keeps everything (an archive).
    pub fn keeping(mut self, keep: Option<u64>) -> Db {
        self.keep = keep.map(|k| k.max(1));
        self
    }

    /// The lowest height still kept whole (0 on an archive).
    pub fn pruned_below(&self) -> Result<u64> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(PRUNED_BELOW)?.map_or(0, |v| dec(v.value())))
    }

    /// The last committed block, if genesis was committed.
    pub fn head(&self) -> Result<Option<Head>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(HEAD)?.map(|v| dec(v.value())))
    }

    /// A consistent snapshot of the current state, for the state machine and queries.
    pub fn reader(&self) -> Result<Reader> {
        let r = self.db.begin_read()?;
        let meta = r.open_table(META)?;
        let head = meta.get(HEAD)?.map(|v| dec(v.value()));
        let pruned_below = meta.get(PRUNED_BELOW)?.map_or(0, |v| dec(v.value()));
        Ok(Reader {
            head,
            pruned_below,
            state: r.open_table(STATE)?,
            nodes: r.open_table(JMT_NODES)?,
            values: r.open_table(JMT_VALUES)?,
        })
    }

    /// Computes the state root after applying `writes` at `height` (the next height), without
    /// committing anything.
    pub fn prepare(
        &self,
        height: u64,
        writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<PendingState> {
        self.prepare_on(height, writes, &[])
    }

    /// Like [`Db::prepare`], on top of blocks that are not committed yet: `below` are their
    /// prepared states, oldest first, consecutive, up to `height - 1`. Those at or below the
    /// committed head are skipped (a block may be committed while a child is prepared on it:
    /// its state is then in the database, identical). The result can be committed as it is
    /// once they are (the tree nodes it refers to are theirs), so each block's tree is hashed
    /// once.
    pub fn prepare_on(
        &self,
        height: u64,
        writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        below: &[&PendingState],
    ) -> Result<PendingState> {
        // The head and the state from one snapshot.
        let reader = self.reader()?;
        let next = reader.head.as_ref().map_or(0, |h| h.height + 1);
        let skip = below.iter().take_while(|p| p.height < next).count();
        let below = &below[skip..];
        for (i, p) in below.iter().enumerate() {
            let expected = next + u64::try_from(i).expect("few pending blocks");
            if p.height != expected {
                return Err(DbError::NotNext {
                    got: p.height,
                    expected,
                });
            }
        }
        let expected = next + u64::try_from(below.len()).expect("few pending blocks");
        if height != expected {
            return Err(DbError::NotNext {
                got: height,
                expected,
            });
        }
        let stacked = Stacked {
            base: &reader,
            below,
        };
        let (root, batch, leaf_values, stale) =
            update_tree(&stacked, &writes, height, Update::Batched)?;
        Ok(PendingState {
            height,
            writes,
            state_root: Hash(root.0),
            batch,
            leaf_values,
            stale,
        })
    }

    /// Commits a block atomically and durably: its state changes, tree nodes, the block, its
    /// receipts, and the new head. Either all of it is durable or none of it is.
    pub fn commit_block(
        &self,
        pending: &PendingState,
        block: Option<&Block>,
        receipts: &[(Hash, Receipt)],
        time_ms: u64,
    ) -> Result<Head> {
        self.commit_block_with(pending, block, receipts, time_ms, Durability::Immediate)
    }

    /// [`Db::commit_block`], durable now or with the next immediate commit ([`Durability`]).
    /// Atomic either way: after a crash the database holds whole blocks only.
    pub fn commit_block_with(
        &self,
        pending: &PendingState,
        block: Option<&Block>,
        receipts: &[(Hash, Receipt)],
        time_ms: u64,
        durability: Durability,
    ) -> Result<Head> {
        let expected = self.head()?.map_or(0, |h| h.height + 1);
        if pending.height != expected {
            return Err(DbError::NotNext {
                got: pending.height,
                expected,
            });
        }
        let block_hash = block.map_or(Hash::default(), |b| b.header.hash());
        let head = Head {
            height: pending.height,
            block_hash,
            state_root: pending.state_root,
            time_ms,
        };
        let mut w = self.db.begin_write()?;
        if durability == Durability::Deferred {
            w.set_durability(redb::Durability::None)
                .map_err(|e| DbError::Redb(e.to_string()))?;
        }
        // Milliseconds since the previous lap, for the debug timings below.
        let mut last = std::time::Instant::now();
        let mut lap = move || {
            let now = std::time::Instant::now();
            let ms = (now - last).as_millis();
            last = now;
            ms
        };
        let (state_ms, nodes_ms, values_ms, block_ms, receipts_ms, index_ms) = {
            let mut state = w.open_table(STATE)?;
            for (k, v) in &pending.writes {
                match v {
                    Some(v) => state.insert(k.as_slice(), v.as_slice())?,
                    None => state.remove(k.as_slice())?,
                };
            }
            let state_ms = lap();
            let mut nodes = w.open_table(JMT_NODES)?;
            let mut batch: Vec<(Vec<u8>, &Node)> = pending
                .batch
                .nodes()
                .iter()
                .map(|(k, n)| (node_key_bytes(k), n))
                .collect();
            batch.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (k, n) in batch {
                nodes.insert(k.as_slice(), enc(n).as_slice())?;
            }
            let nodes_ms = lap();
            let mut values = w.open_table(JMT_VALUES)?;
            for (k, v) in &pending.leaf_values {
                values.insert(k.as_slice(), v.as_slice())?;
            }
            let values_ms = lap();
            if let Some(b) = block {
                w.open_table(BLOCKS)?
                    .insert(pending.height, b.encode().as_slice())?;
            }
            let block_ms = lap();
            let mut rows = w.open_table(RECEIPTS)?;
            for (row, chunk) in receipts.chunks(RECEIPTS_PER_ROW as usize).enumerate() {
                let chunk: Vec<&Receipt> = chunk.iter().map(|(_, r)| r).collect();
                let row = u32::try_from(row).expect("bounded block");
                rows.insert((pending.height, row), enc(&chunk).as_slice())?;
            }
            let receipts_ms = lap();
            let mut positions: Vec<(u64, u64, u32)> = receipts
                .iter()
                .enumerate()
                .map(|(i, (hash, receipt))| {
                    // A look-up finds a receipt by its own hash: the two must agree.
                    debug_assert_eq!(*hash, receipt.tx_hash);
                    let i = u32::try_from(i).expect("bounded block");
                    (hash_prefix(hash), pending.height, i)
                })
                .collect();
            // In key order: consecutive inserts then land on neighbouring pages.
            positions.sort_unstable();
            let mut index = w.open_table(TX_INDEX)?;
            for position in positions {
                index.insert(position, ())?;
            }
            w.open_table(META)?.insert(HEAD, enc(&head).as_slice())?;
            (state_ms, nodes_ms, values_ms, block_ms, receipts_ms, lap())
        };
        if let Some(keep) = self.keep {
            {
                let mut stale = w.open_table(STALE)?;
                for key in &pending.stale {
                    let mut k = pending.height.to_be_bytes().to_vec();
                    k.extend_from_slice(&node_key_bytes(key));
                    stale.insert(k.as_slice(), ())?;
                }
            }
            prune_step(&w, (pending.height + 1).saturating_sub(keep))?;
        }
        w.commit()?;
        tracing::debug!(
            height = pending.height,
            state_ms,
            nodes_ms,
            values_ms,
            block_ms,
            receipts_ms,
            index_ms,
            commit_ms = lap(),
            "committed"
        );
        Ok(head)
    }

    /// Makes every [`Durability::Deferred`] commit durable (an empty immediate commit).
    pub fn sync(&self) -> Result<()> {
        self.db.begin_write()?.commit()?;
        Ok(())
    }

    /// The value under `key` at `height`, with a proof against that height's state root.
    pub fn prove(&self, key: &[u8], height: u64) -> Result<(Option<Vec<u8>>, Proof)> {
        let reader = self.reader()?;
        reader.kept(height)?;
        let tree = JellyfishMerkleTree::<_, Sha256>::new(&reader);
        tree.get_with_proof(key_hash(key), height)
            .map_err(|e| DbError::Tree(e.to_string()))
    }

    /// The values under `key` at each of `heights`, read from one snapshot (for history views;
    /// [`Db::prove`] when a value must be proven).
    pub fn values_at(&self, key: &[u8], heights: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        let reader = self.reader()?;
        if let Some(&low) = heights.iter().min() {
            reader.kept(low)?;
        }
        let tree = JellyfishMerkleTree::<_, Sha256>::new(&reader);
        let kh = key_hash(key);
        heights
            .iter()
            .map(|&h| tree.get(kh, h).map_err(|e| DbError::Tree(e.to_string())))
            .collect()
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

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        Ok(t.get(height)?
            .map(|v| Block::decode(v.value()).expect("stored blocks decode")))
    }

    /// The header of the block at `height`, without decoding its transactions (a block's
    /// encoding starts with its header).
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        Ok(t.get(height)?
            .map(|v| BlockHeader::deserialize(&mut v.value()).expect("stored blocks decode")))
    }

    /// Where a transaction was included, and its receipt.
    pub fn tx(&self, hash: &Hash) -> Result<Option<TxRecord>> {
        let r = self.db.begin_read()?;
        let rows = r.open_table(RECEIPTS)?;
        let prefix = hash_prefix(hash);
        for entry in r
            .open_table(TX_INDEX)?
            .range((prefix, 0, 0)..=(prefix, u64::MAX, u32::MAX))?
        {
            let (_, height, index) = entry?.0.value();
            let row: Vec<Receipt> = rows
                .get((height, index / RECEIPTS_PER_ROW))?
                .map(|v| dec(v.value()))
                .expect("every indexed transaction has its receipt");
            let receipt = row
                .into_iter()
                .nth((index % RECEIPTS_PER_ROW) as usize)
                .expect("every indexed transaction has its receipt");
            if receipt.tx_hash == *hash {
                return Ok(Some(TxRecord {
                    height,
                    index,
                    receipt,
                }));
            }
        }
        Ok(None)
    }
}

/// The first 8 bytes of a transaction hash, the [`TX_INDEX`] key's first part.
/// Deletes, within the write transaction `w`, what only heights below `below` need, at most
/// [`PRUNE_STEP`] heights beyond what was pruned before: their blocks (but the genesis block),
/// receipts and index entries, and the tree nodes (with their leaves' values) stale by then.
fn prune_step(w: &redb::WriteTransaction, below: u64) -> Result<()> {
    let mut meta = w.open_table(META)?;
    let done: u64 = meta.get(PRUNED_BELOW)?.map_or(0, |v| dec(v.value()));
    if below <= done {
        return Ok(());
    }
    let to = below.min(done + PRUNE_STEP);
    let mut blocks = w.open_table(BLOCKS)?;
    let mut rows = w.open_table(RECEIPTS)?;
    let mut index = w.open_table(TX_INDEX)?;
    for height in done..to {
        // The genesis block stays: it is what a node checks its genesis file against.
        if height > 0 {
            blocks.remove(height)?;
        }
        let mut row = 0u32;
        while let Some(receipts) = rows.remove((height, row))? {
            let receipts: Vec<Receipt> = dec(receipts.value());
            for (i, r) in receipts.iter().enumerate() {
                let i = u32::try_from(i).expect("a row holds 64") + row * RECEIPTS_PER_ROW;
                index.remove((hash_prefix(&r.tx_hash), height, i))?;
            }
            row += 1;
        }
    }
    // A node stale from version `v` on belongs to no tree of a version `v` or later.
    let mut stale = w.open_table(STALE)?;
    let mut nodes = w.open_table(JMT_NODES)?;
    let mut values = w.open_table(JMT_VALUES)?;
    let end = (to + 1).to_be_bytes();
    let keys: Vec<Vec<u8>> = stale
        .range(..end.as_slice())?
        .map(|e| e.map(|(k, _)| k.value().to_vec()))
        .collect::<std::result::Result<_, _>>()?;
    for k in keys {
        stale.remove(k.as_slice())?;
        let node_key = &k[8..];
        if let Some(node) = nodes.remove(node_key)?
            && let Node::Leaf(leaf) = dec::<Node>(node.value())
        {
            let version = u64::from_be_bytes(node_key[..8].try_into().expect("a version"));
            values.remove(leaf_value_key(version, &leaf.key_hash()).as_slice())?;
        }
    }
    meta.insert(PRUNED_BELOW, enc(&to).as_slice())?;
    Ok(())
}

fn hash_prefix(hash: &Hash) -> u64 {
    u64::from_be_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

/// Checks a proof for `key` having `value` (or being absent) under `state_root`.
pub fn verify_proof(state_root: &Hash, key: &[u8], value: Option<&[u8]>, proof: &Proof) -> bool {
    proof
        .verify(RootHash(state_root.0), key_hash(key), value)
        .is_ok()
}

impl kassa_state::view::Versions for Db {
    type Error = DbError;
    fn values_at(&self, key: &[u8], heights: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        Db::values_at(self, key, heights)
    }
}

/// A proof as bytes, for the wire (the Borsh encoding of the `jmt` proof).
pub fn encode_proof(proof: &Proof) -> Vec<u8> {
    borsh::to_vec(proof).expect("a proof encodes")
}

/// A proof from the bytes of [`encode_proof`]; `None` if they are not one.
pub fn decode_proof(bytes: &[u8]) -> Option<Proof> {
    borsh::from_slice(bytes).ok()
}

/// A read snapshot of the state.
#[derive(Debug)]
pub struct Reader {
    /// The last block committed in this snapshot.
    head: Option<Head>,
    /// The lowest height whose history this snapshot still holds.
    pruned_below: u64,
    state: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    nodes: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    values: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader {
    /// The height of the last block committed in this snapshot (`None` before genesis).
    pub fn height(&self) -> Option<u64> {
        self.head.as_ref().map(|h| h.height)
    }

    /// Refuses a height whose history this snapshot no longer holds (checked in the snapshot
    /// that then reads it, so a prune committed meanwhile cannot take the nodes away).
    fn kept(&self, height: u64) -> Result<()> {
        if height < self.pruned_below {
            return Err(DbError::Pruned {
                height,
                kept: self.pruned_below,
            });
        }
        Ok(())
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

impl Reader {
    /// The stored row ([`leaf_row`]) of a committed leaf (keyed by [`leaf_value_key`]).
    fn leaf_row(&self, key: &[u8; 40]) -> anyhow::Result<Vec<u8>> {
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
        // Only used when restoring a tree from a snapshot (state sync), which Kassa does not do:
        // a node that is behind replays blocks instead.
        anyhow::bail!("restoring a Jellyfish Merkle tree from a snapshot is not supported")
    }
}

/// How the tree takes a block's writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Update {
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
fn root_key(version: Version) -> NodeKey {
    NodeKey::new(version, std::iter::empty().collect())
}

/// The row ([`leaf_row`]) of each new leaf of a tree update, under [`leaf_value_key`].
type LeafValues = BTreeMap<[u8; 40], Vec<u8>>;

/// The new root, tree nodes and leaf values ([`leaf_values`]) after `writes` at version
/// `height`.
fn update_tree(
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
fn leaf_values(
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
struct Stacked<'a> {
    base: &'a Reader,
    below: &'a [&'a PendingState],
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

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
