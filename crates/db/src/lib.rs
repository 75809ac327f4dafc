//! Kassa's persistent, authenticated state.
//!
//! One [`redb`] database (ACID, copy-on-write B-trees, crash-safe: a commit is durable and atomic
//! or absent) holds, per finalized block, in **one write transaction**:
//! - the current state (`state`: key → value), read by the state machine through [`Reader`];
//! - a Jellyfish Merkle tree over the state (`jmt_nodes`, `jmt_leaf_values`), versioned by height, whose
//!   root is the state root and which serves inclusion and exclusion proofs at any height (its
//!   values are stored under their leaf's height, so a block's values are appended, see
//!   [`Reader::get_value_option`]);
//! - every version of the keys history views show (`history`: society books);
//! - the block, its transactions' receipts, and the chain head.
//!
//! Start reading at [`Db::commit_block`]. The byte-level layout is in `docs/storage.md`.
//!
//! Why a JMT over redb: the state machine reads state synchronously in its hot path and needs
//! proofs of values at a given height; a JMT over an embedded B-tree gives both with one
//! well-kept crate each (`jmt` is used by Penumbra and Sovereign), and keeps the state machine
//! independent of the async runtime. Its cost grows with the state (the tree's depth, the state
//! table's random writes): at a million keys Commonware's `qmdb::current` updates a block's keys
//! about four times faster (`kassa bench store`, through [`qmdb`]), and the state is to move
//! to it (ARCHITECTURE.md says what that takes). Consensus' own storage (journals, archives) lives on
//! Commonware's runtime storage.
//!
//! Files: this one holds the tables, the one write transaction of a block, pruning and the
//! block reads, which must be read together to check crash safety (so it runs over 600 lines);
//! `tree` the Merkle tree (its storage, its update by a block, its proofs), `batch` the tree's
//! batched update, `reader` the read snapshot, `certificates` the certificates a follower
//! keeps, `history` the versions of society books, [`qmdb`] the commitment the state is moving
//! to, `snapshot` state sync's chunks and restore, and [`disk`] the power-losing storage of
//! the simulations.

mod batch;
mod certificates;
pub mod disk;
mod history;
pub mod qmdb;
mod reader;
mod snapshot;
mod tree;

pub use certificates::CERTIFICATE_SPACING;
pub use reader::Reader;
pub use snapshot::{
    CHUNK_BYTES_MAX, CHUNK_ENTRIES_MAX, Chunk, KEY_LEN_MAX, RangeProof, Restore, RestoreError,
};
use tree::{
    Stacked, Update, key_hash, leaf_row, leaf_value_key, node_key_bytes, root_key, split_row,
    update_tree,
};
pub use tree::{decode_proof, encode_proof, verify_proof};

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::{Node, NodeBatch, NodeKey};
use kassa_state::Receipt;
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
/// before its value ([`leaf_row`]), so that the state can be served as a snapshot. 11: the
/// history of versioned keys in tables of their own (`history`, `history_by_height`).
const SCHEMA_VERSION: u32 = 11;

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
    #[error("no history is kept of the state key {0} (only of society books)")]
    NotVersioned(String),
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
            w.open_table(history::HISTORY)?;
            w.open_table(history::HISTORY_BY_HEIGHT)?;
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
            let writes = pending.writes.iter();
            history::record(
                &w,
                pending.height,
                writes.map(|(k, v)| (&k[..], v.as_deref())),
            )?;
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

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        Ok(t.get(height)?
            .map(|v| Block::decode(v.value()).expect("stored blocks decode")))
    }

    /// The canonical bytes of the block at `height`, as stored (what followers download);
    /// [`DbError::Pruned`] below what this node keeps.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        if let Some(v) = t.get(height)? {
            return Ok(Some(v.value().to_vec()));
        }
        let kept = r
            .open_table(META)?
            .get(PRUNED_BELOW)?
            .map_or(0, |v| dec(v.value()));
        if height < kept {
            return Err(DbError::Pruned { height, kept });
        }
        Ok(None)
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
/// receipts and index entries, the tree nodes (with their leaves' values) stale by then, and
/// the versions of versioned keys older than the last one below the new bound.
fn prune_step(w: &redb::WriteTransaction, below: u64) -> Result<()> {
    let mut meta = w.open_table(META)?;
    let done: u64 = meta.get(PRUNED_BELOW)?.map_or(0, |v| dec(v.value()));
    if below <= done {
        return Ok(());
    }
    let to = below.min(done + PRUNE_STEP);
    history::prune(w, done, to)?;
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

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
