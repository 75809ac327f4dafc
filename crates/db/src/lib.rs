//! Kassa's persistent, authenticated state, in two stores committed together per finalized block:
//! - the state's commitment, Commonware's `qmdb::current` ([`qmdb::Commitment`]): a log of
//!   operations under a Merkle mountain range with the bitmap of current operations grafted on,
//!   whose canonical root is the state root, which proves current values and absent keys, and
//!   which a new node syncs from a host ([`Db::restore`]);
//! - one [`redb`] database (ACID, copy-on-write B-trees) holding, in **one write transaction**
//!   per block: the current state (`state`: key → value) that the state machine reads through
//!   [`Reader`], every version of the keys history views show (`history`: society books), the
//!   block, its transactions' receipts, the chain head, and what the commitment was at the
//!   heights this node offers to sync from.
//!
//! Start reading at [`Db::commit_block`]. The byte-level layout is in `docs/storage.md`.
//!
//! A block commits to the commitment first, then to redb, so after a crash the commitment is
//! never behind redb's head: a restart reopens it at that head ([`qmdb::Commitment::open_at`]),
//! dropping the commits after it, which consensus delivers again. The commitment's log is kept
//! back to the last block redb made durable and to the heights offered to sync from, and pruned
//! below.
//!
//! Why two stores: the state machine reads state synchronously in its hot path, and a read
//! through the commitment is a round trip to its thread (tens of thousands a second, against
//! redb's hundreds of thousands), so current values are read from redb, while the commitment
//! appends a block's writes instead of rewriting a tree path per key (at a million keys a block's
//! root and durable write cost about a quarter of a Merkle tree's over redb, `docs/performance.md`).
//! Consensus' own storage (journals, archives) lives on Commonware's runtime storage.
//!
//! Files: this one holds the tables, the one write transaction of a block, recovery and pruning,
//! which must be read together to check crash safety (so it runs over 600 lines); `reader` the
//! read snapshot, `certificates` the certificates a follower keeps, `history` the versions of
//! society books, [`qmdb`] the commitment, `restore` state sync (offering, serving, restoring),
//! and [`disk`] the power-losing storage of the simulations.

mod answers;
mod certificates;
pub mod disk;
mod history;
pub mod qmdb;
mod reader;
mod restore;

pub use answers::Answers;
pub use certificates::CERTIFICATE_SPACING;
pub use qmdb::{Committed, KeyProof, Proven, verify};
pub use reader::Reader;
pub use restore::RestoreError;

use borsh::{BorshDeserialize, BorshSerialize};
use kassa_state::Receipt;
use kassa_types::{Block, BlockHeader, Hash};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
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
/// Height → Borsh [`Committed`]: what the commitment was after the heights this node offers to
/// sync from ([`Db::offer_head`], the newest [`OFFERS`]).
const COMMITS: TableDefinition<u64, &[u8]> = TableDefinition::new("commits");
/// Heights offered to sync from, the newest kept: a follower that chose one finds it kept (with
/// the commitment's log from its start) while it fetches the state, for [`OFFERS`] times
/// [`OFFER_SPACING`] heights.
const OFFERS: usize = 16;
/// A node offers the state after every this many heights ([`Db::offer_head`]).
pub const OFFER_SPACING: u64 = 64;
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HEAD: &str = "head";
/// The commitment's log length after the head ([`Committed::end`]): where a restart reopens it.
const HEAD_LOG: &str = "head_log";
/// The lowest height whose block and receipts are still kept (0 or absent: all).
const PRUNED_BELOW: &str = "pruned_below";
/// Most heights one commit prunes: catching up after pruning is turned on is spread over many
/// blocks, so no commit takes much longer than the others.
const PRUNE_STEP: u64 = 8;
/// The commitment's log is pruned at every immediate commit of a height divisible by this (a
/// prune costs a sync of the commitment's metadata).
const PRUNE_LOG_EVERY: u64 = 16;
const SCHEMA: &str = "schema";
/// The layout of the tables above (`docs/storage.md`). 2: receipts by position and a hash index.
/// 3: tree values under their leaf's version instead of their key hash, and tree nodes under
/// their big-endian version (both appended per block). 4: the state's account record holds the
/// KAS balance (the tables are unchanged, the values they hold are not). 5: receipts 64 to a
/// row, and the hash index keyed by the hash's first 8 bytes and the position. 6: membership,
/// stake and checkpoint records write their counters as varints (the values change, the tables
/// do not). 7: protocol version 2's records. 8: the index of each society's requests (`l` keys).
/// 9: delegates' lapse buckets and paid-ahead periods. 10: a leaf's row holds its state key
/// before its value, so that the state can be served as a snapshot. 11: the history of
/// versioned keys in tables of their own (`history`, `history_by_height`). 12: the state's
/// commitment is `qmdb::current` beside this database (the Merkle tree's tables are gone; the
/// head's log length and the offered heights' commits are here).
const SCHEMA_VERSION: u32 = 12;

/// The commitment's page cache, beside redb's: its Merkle nodes' and log's hot pages.
const COMMITMENT_CACHE_MIB: usize = 64;

/// Why the database failed. Every variant is an I/O or corruption problem, never a user error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Redb(String),
    #[error("state commitment: {0}")]
    Commitment(#[from] qmdb::CommitmentError),
    #[error("the state commitment does not match the block database: {0}")]
    Inconsistent(String),
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
    /// A file of the database's own, beside redb and the commitment.
    #[error("{0}")]
    File(String),
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
    /// The block's batch in the commitment (forgotten if this is dropped uncommitted).
    prepared: qmdb::Prepared,
}

/// The database.
#[derive(Debug)]
pub struct Db {
    db: Database,
    /// Replaced whole by a restore ([`Db::restore`]); `None` only while one replaces it.
    commitment: RwLock<Option<qmdb::Commitment>>,
    /// Where the commitment lives.
    commitment_dir: PathBuf,
    /// How many of the newest heights to keep (blocks, receipts, history); `None`: all of them
    /// (an archive).
    keep: Option<u64>,
    /// The commitment's log start of the last block redb made durable: the log is kept from
    /// there (and from the offered heights' starts) for a restart to come back to it.
    durable_start: Mutex<u64>,
    /// A scratch directory for the commitment of a database on a simulated disk, removed with it.
    _scratch: Option<tempfile::TempDir>,
}

fn enc<T: BorshSerialize>(v: &T) -> Vec<u8> {
    kassa_types::codec::encode(v)
}

fn dec<T: BorshDeserialize>(bytes: &[u8]) -> T {
    borsh::from_slice(bytes).expect("the database holds only values this code wrote")
}

/// The commitment, read-locked.
struct CommitmentRef<'a>(std::sync::RwLockReadGuard<'a, Option<qmdb::Commitment>>);

impl std::ops::Deref for CommitmentRef<'_> {
    type Target = qmdb::Commitment;

    fn deref(&self) -> &qmdb::Commitment {
        self.0
            .as_ref()
            .expect("checked when the reference was made")
    }
}

/// The database's page cache unless configured otherwise: at a million accounts the state's
/// hot pages (the tables' branch pages) fit with room to spare, and the node's resident memory
/// stays well under 1 GiB (`docs/performance.md`).
pub const CACHE_BYTES_DEFAULT: usize = 256 << 20;

/// Where the commitment of the database file at `path` lives: beside it, `<file>.qmdb/`.
fn commitment_dir_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".qmdb");
    path.with_file_name(name)
}

impl Db {
    /// Opens (or creates) the database file at `path` and its commitment beside it, with the
    /// default page cache ([`CACHE_BYTES_DEFAULT`]).
    pub fn open(path: &Path) -> Result<Db> {
        Db::open_with_cache(path, CACHE_BYTES_DEFAULT)
    }

    /// Opens (or creates) the database file at `path`, caching at most `cache_bytes` of its
    /// pages in memory (the bound of the database's memory, whatever the state's size), and its
    /// commitment beside it (`<file>.qmdb/`).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Db> {
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)?;
        Db::init(db, commitment_dir_of(path), None)
    }

    /// Opens (or creates) the database on a simulated disk (crash-consistency tests), with its
    /// commitment in `commitment_dir` (which a simulated restart must keep, as it keeps `disk`).
    pub fn open_on(disk: disk::SimDisk, commitment_dir: &Path) -> Result<Db> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES_DEFAULT)
            .create_with_backend(disk)?;
        Db::init(db, commitment_dir.to_path_buf(), None)
    }

    /// A database in memory (its commitment in a scratch directory), gone when dropped.
    pub fn scratch() -> Result<Db> {
        let dir = tempfile::tempdir().map_err(|e| DbError::Redb(e.to_string()))?;
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES_DEFAULT)
            .create_with_backend(disk::SimDisk::new())?;
        Db::init(db, dir.path().join("state.qmdb"), Some(dir))
    }

    fn init(
        db: Database,
        commitment_dir: PathBuf,
        scratch: Option<tempfile::TempDir>,
    ) -> Result<Db> {
        let w = db.begin_write()?;
        {
            w.open_table(STATE)?;
            w.open_table(BLOCKS)?;
            w.open_table(RECEIPTS)?;
            w.open_table(TX_INDEX)?;
            w.open_table(COMMITS)?;
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
        let (commitment, durable_start) = recover(&db, &commitment_dir)?;
        Ok(Db {
            db,
            commitment: RwLock::new(Some(commitment)),
            commitment_dir,
            keep: None,
            durable_start: Mutex::new(durable_start),
            _scratch: scratch,
        })
    }

    /// The commitment (under a read lock: only a restore replaces it).
    fn commitment(&self) -> Result<CommitmentRef<'_>> {
        let guard = self
            .commitment
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            return Err(qmdb::CommitmentError::Stopped.into());
        }
        Ok(CommitmentRef(guard))
    }

    /// Keeps only the newest `keep` heights (at least 1) of blocks (but the genesis block),
    /// receipts and history, deleting older ones a few heights at a time. History written before
    /// pruning was turned on stays. `None` keeps everything (an archive). The state's commitment
    /// keeps only what the current state and the offered heights need either way.
    pub fn keeping(mut self, keep: Option<u64>) -> Db {
        self.keep = keep.map(|k| k.max(1));
        self
    }

    /// The bytes of the pages each of redb's tables holds (what it stores, its pages'
    /// overhead and their unused space), largest first: where the file's space goes. The rest
    /// of the file is free pages (copy-on-write frees a page only once the next commit is
    /// durable) and room redb grew into ahead of need.
    pub fn table_sizes(&self) -> Result<Vec<(String, u64)>> {
        use redb::{ReadableTableMetadata as _, TableHandle as _};
        let r = self.db.begin_read()?;
        let mut sizes = Vec::new();
        for handle in r.list_tables()? {
            let name = handle.name().to_string();
            let stats = r.open_untyped_table(handle)?.stats()?;
            let bytes = stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes();
            sizes.push((name, bytes));
        }
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(sizes)
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
        Ok(Reader {
            head,
            state: r.open_table(STATE)?,
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
    /// its state is then the committed one). The result can be committed as it is once they are,
    /// so each block is merkleized once.
    pub fn prepare_on(
        &self,
        height: u64,
        writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
        below: &[&PendingState],
    ) -> Result<PendingState> {
        let next = self.head()?.map_or(0, |h| h.height + 1);
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
        let parent = below.last().map(|p| &p.prepared);
        let writes_out = writes.iter().map(|(k, v)| (k.clone(), v.clone()));
        let prepared = self.commitment()?.prepare(parent, height, writes_out)?;
        Ok(PendingState {
            height,
            writes,
            state_root: prepared.root,
            prepared,
        })
    }

    /// Commits a block atomically and durably: its state changes, the block, its receipts, and
    /// the new head. Either all of it is durable or none of it is.
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
    ///
    /// The block goes to the commitment first (made durable with the redb commit's durability),
    /// then to redb in one write transaction; a crash between the two leaves the commitment
    /// ahead, and the next [`Db::open`] takes it back to redb's head.
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
        // Milliseconds since the previous lap, for the debug timings below.
        let mut last = std::time::Instant::now();
        let mut lap = move || {
            let now = std::time::Instant::now();
            let ms = (now - last).as_millis();
            last = now;
            ms
        };
        let committed = self
            .commitment()?
            .commit(&pending.prepared, durability == Durability::Immediate)?;
        if committed.root != pending.state_root || committed.height != Some(pending.height) {
            return Err(DbError::Inconsistent(format!(
                "block {} committed with root {} at {:?}, prepared with root {}",
                pending.height, committed.root, committed.height, pending.state_root
            )));
        }
        let commitment_ms = lap();
        let mut w = self.db.begin_write()?;
        if durability == Durability::Deferred {
            w.set_durability(redb::Durability::None)
                .map_err(|e| DbError::Redb(e.to_string()))?;
        }
        let (state_ms, block_ms, receipts_ms, index_ms) = {
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
            let mut meta = w.open_table(META)?;
            meta.insert(HEAD, enc(&head).as_slice())?;
            meta.insert(HEAD_LOG, enc(&committed.end).as_slice())?;
            (state_ms, block_ms, receipts_ms, lap())
        };
        if let Some(keep) = self.keep {
            prune_step(&w, (pending.height + 1).saturating_sub(keep))?;
        }
        w.commit()?;
        let commit_ms = lap();
        if durability == Durability::Immediate {
            *self
                .durable_start
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = committed.start;
            if pending.height.is_multiple_of(PRUNE_LOG_EVERY) {
                self.prune_log()?;
            }
        }
        tracing::debug!(
            height = pending.height,
            commitment_ms,
            state_ms,
            block_ms,
            receipts_ms,
            index_ms,
            commit_ms,
            "committed"
        );
        Ok(head)
    }

    /// Prunes the commitment's log below what the last durable block and the offered heights
    /// need.
    fn prune_log(&self) -> Result<()> {
        let durable = *self
            .durable_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let oldest_offer = self.offers()?.first().map(|(_, c)| c.start);
        self.commitment()?
            .prune(oldest_offer.map_or(durable, |o| o.min(durable)))?;
        Ok(())
    }

    /// Makes every [`Durability::Deferred`] commit durable (an empty immediate commit, after
    /// the commitment's).
    pub fn sync(&self) -> Result<()> {
        self.commitment()?.make_durable()?;
        self.db.begin_write()?.commit()?;
        Ok(())
    }

    /// The current value of `key` with the proof of it (or of its absence) against the state
    /// root of the height it is at: (height, state root, value, proof). Proofs are of the
    /// current state only; the commitment may be a block ahead of [`Db::head`] while that block
    /// is committed.
    pub fn prove(&self, key: &[u8]) -> Result<Proven> {
        let proven = self.commitment()?.prove_many(&[key])?;
        Ok(proven
            .into_iter()
            .next()
            .expect("one key asked, one proven"))
    }

    /// [`Db::prove`] for several keys, all at one height.
    pub fn prove_many(&self, keys: &[&[u8]]) -> Result<Vec<Proven>> {
        Ok(self.commitment()?.prove_many(keys)?)
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

/// Deletes, within the write transaction `w`, what only heights below `below` need, at most
/// [`PRUNE_STEP`] heights beyond what was pruned before: their blocks (but the genesis block),
/// receipts and index entries, and the versions of versioned keys older than the last one below
/// the new bound.
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
    meta.insert(PRUNED_BELOW, enc(&to).as_slice())?;
    Ok(())
}

/// Opens the commitment in `dir` at redb's head: as it is if it is there, taken back to it if a
/// crash left it ahead (the blocks after the head are delivered again), emptied if redb has no
/// head (a crash before genesis was committed, or during a restore). Returns it with the log's
/// start the last durable block needs.
fn recover(db: &Database, dir: &Path) -> Result<(qmdb::Commitment, u64)> {
    let (head, log) = {
        let r = db.begin_read()?;
        let meta = r.open_table(META)?;
        let head: Option<Head> = meta.get(HEAD)?.map(|v| dec(v.value()));
        let log: Option<u64> = meta.get(HEAD_LOG)?.map(|v| dec(v.value()));
        (head, log)
    };
    let Some(head) = head else {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| DbError::Redb(e.to_string()))?;
        }
        return Ok((qmdb::Commitment::open(dir, COMMITMENT_CACHE_MIB)?, 0));
    };
    let log = log.ok_or_else(|| DbError::Inconsistent("the head has no log length".into()))?;
    let mut commitment = qmdb::Commitment::open(dir, COMMITMENT_CACHE_MIB)?;
    let at = commitment.height()?;
    if at != Some(head.height) {
        if at.is_none_or(|at| at < head.height) {
            return Err(DbError::Inconsistent(format!(
                "the commitment is at height {at:?}, behind the head {}",
                head.height
            )));
        }
        tracing::warn!(
            commitment = ?at,
            head = head.height,
            "the state commitment is ahead of the last durable block: taking it back"
        );
        drop(commitment);
        commitment = qmdb::Commitment::open_at(dir, COMMITMENT_CACHE_MIB, log)?;
    }
    let committed = commitment.sync_target()?;
    if committed.root != head.state_root || committed.height != Some(head.height) {
        return Err(DbError::Inconsistent(format!(
            "the commitment's root at {:?} is {}, the head's ({}) is {}",
            committed.height, committed.root, head.height, head.state_root
        )));
    }
    Ok((commitment, committed.start))
}

/// The first 8 bytes of a transaction hash, the [`TX_INDEX`] key's first part.
fn hash_prefix(hash: &Hash) -> u64 {
    u64::from_be_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
#[path = "lib_tests.rs"]
mod tests;
