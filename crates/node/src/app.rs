//! The application that consensus drives: propose a block, verify a peer's block, apply a
//! finalized block. Consensus-agnostic: the Commonware adapter calls these three functions, and
//! so do tests directly.
//!
//! Over 600 lines: proposing, verifying and finalizing share the executed-block cache and the
//! commit pipeline below, and change together.
//!
//! A block's header commits to the state root *after* executing it. Blocks that are proposed or
//! verified but not yet finalized are executed speculatively on top of the committed state plus
//! their not-yet-finalized ancestors (kept in memory, keyed by block id); their roots come from
//! the commitment's batches, each merkleized on its parent's without writing anything.
//! Finalizing a block commits exactly what was verified.
//!
//! One file on purpose: propose, verify and finalize share the executed-but-unfinalized blocks and
//! one lock discipline, which must be read as a whole.

use crate::mempool::{AdmitError, Mempool, MempoolConfig};
use kassa_db::{Db, DbError, Durability, Head, PendingState};
use kassa_state::records::ChainParams;
use kassa_state::store::{Overlay, Store};
use kassa_state::{BlockContext, Genesis, MemStore, Receipt, ScanStore, apply_tx_with};
use kassa_types::block::{tx_root, tx_root_of};
use kassa_types::{Address, Block, BlockHeader, BoundedVec, Hash, SignedTransaction};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Limits on what one block may hold.
#[derive(Clone, Debug)]
pub struct BlockLimits {
    pub txs_max: usize,
    pub bytes_max: usize,
}

impl Default for BlockLimits {
    fn default() -> Self {
        BlockLimits {
            txs_max: kassa_types::BLOCK_TXS_MAX,
            bytes_max: kassa_types::BLOCK_SIZE_MAX - 4096,
        }
    }
}

/// Why the application could not do what consensus asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("finalized block at height {height} differs from the one committed at that height")]
    Conflict { height: u64 },
    #[error("the genesis file does not match the chain in this data directory")]
    WrongGenesis,
    #[error("invalid genesis: {0}")]
    BadGenesis(String),
    #[error(
        "the state of height {height} was being restored into this data directory and the \
         restore did not finish: start the node with state sync again (it starts over), or \
         from an empty data directory"
    )]
    RestoreUnfinished { height: u64 },
    #[error("the consensus context is longer than a header allows")]
    ContextTooLong,
    #[error("unknown parent block {0}")]
    UnknownParent(Hash),
    #[error("finalized block {height} does not extend the head {head}")]
    NotNext { height: u64, head: u64 },
    #[error(
        "finalized block at height {height} has state root {header}, execution gives {computed}"
    )]
    StateRootMismatch {
        height: u64,
        header: Hash,
        computed: Hash,
    },
}

/// A block executed but not finalized.
#[derive(Debug)]
struct Executed {
    block: Block,
    /// Its writes and tree update, computed on top of its not-finalized ancestors: committed
    /// as it is when it is finalized (shared with the [`Commit`] that writes it, while children
    /// are still executed on top of it).
    state: Arc<PendingState>,
    receipts: Vec<(Hash, Receipt)>,
}

/// A finalized block whose state is being written: made by [`App::begin_finalize`], written by
/// [`Commit::write`] without the application's lock (so the next block is built meanwhile),
/// completed by [`App::end_finalize`].
#[derive(Debug)]
pub struct Commit {
    db: Arc<Db>,
    block: Block,
    state: Arc<PendingState>,
    receipts: Vec<(Hash, Receipt)>,
}

impl Commit {
    /// Writes the block and its state in one database transaction, durable now or with the
    /// next immediate commit.
    pub fn write(&self, durability: Durability) -> Result<Head, AppError> {
        Ok(self.db.commit_block_with(
            &self.state,
            Some(&self.block),
            &self.receipts,
            self.block.header.timestamp_ms,
            durability,
        )?)
    }
}

/// The result of executing a block's transactions.
struct Execution {
    included: Vec<SignedTransaction>,
    /// Transactions that could not be included (lenient execution only).
    refused: Vec<Hash>,
    receipts: Vec<(Hash, Receipt)>,
    state: Arc<PendingState>,
    root: Hash,
}

/// Where checking a peer's block stands after [`App::prepare_verify`].
#[derive(Debug)]
pub enum Verify {
    /// Executed here already: valid.
    Known,
    /// Its parent is not executed here: not valid (yet).
    UnknownParent,
    /// To be checked with [`Base::check`], then kept with [`App::adopt`].
    Check(Box<Base>),
}

impl Verify {
    /// Checks the block if it needs it, and hands what it executed to `adopt` (which says
    /// whether it was kept). Whether the block is valid.
    pub fn conclude(
        self,
        block: &Block,
        now_ms: u64,
        max_future_ms: u64,
        adopt: impl FnOnce(Executing) -> bool,
    ) -> Result<bool, AppError> {
        match self {
            Verify::Known => Ok(true),
            Verify::UnknownParent => Ok(false),
            Verify::Check(base) => Ok(match base.check(block, now_ms, max_future_ms)? {
                Some(executing) => adopt(executing),
                None => false,
            }),
        }
    }
}

/// What finalizing a block did (for the event stream and metrics).
#[derive(Clone, Debug)]
pub struct Finalized {
    pub head: Head,
    pub block: Block,
    pub receipts: Vec<(Hash, Receipt)>,
}

/// The node's application state.
#[derive(Debug)]
pub struct App {
    db: Arc<Db>,
    params: ChainParams,
    head: Head,
    /// Executed blocks that are not finalized yet, by id. A block being committed stays here
    /// until [`App::end_finalize`].
    pending: BTreeMap<Hash, Executed>,
    /// The block between [`App::begin_finalize`] and [`App::end_finalize`], if any.
    committing: Option<Hash>,
    /// Shared with the node, which admits transactions without taking the application's lock
    /// (so admissions go on while a block is built or committed).
    mempool: Arc<Mutex<Mempool>>,
    pub limits: BlockLimits,
}

/// The state after a chain of not-yet-finalized blocks: their writes layered over the database
/// (newest first), read in place rather than merged into a copy.
struct Layered<'a, S: Store> {
    base: &'a S,
    ancestry: &'a [Arc<PendingState>],
}

impl<S: Store> Store for Layered<'_, S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        for state in self.ancestry.iter().rev() {
            if let Some(v) = state.writes.get(key) {
                return v.clone();
            }
        }
        self.base.get(key)
    }
}

/// What building or checking a block on a parent needs: taken under the application's lock
/// ([`App::base`]), used without it (so that a commit, an admission or the next finalization
/// does not wait for a whole block's execution), its result handed back with [`App::adopt`].
///
/// If a block is finalized meanwhile, nothing read here changes: the ancestors' states are
/// held here and equal what is committed ([`Db::prepare_on`] skips those already in the
/// database). If the finalized chain leaves the parent behind, the result is useless and
/// [`App::adopt`] refuses it.
#[derive(Debug)]
pub struct Base {
    db: Arc<Db>,
    params: ChainParams,
    parent: BlockHeader,
    /// The parent's not-finalized ancestors' states and its own, oldest first (empty if the
    /// parent is the head).
    ancestry: Vec<Arc<PendingState>>,
    mempool: Arc<Mutex<Mempool>>,
    limits: BlockLimits,
}

/// A block executed on a [`Base`], for [`App::adopt`].
#[derive(Debug)]
pub struct Executing {
    id: Hash,
    executed: Executed,
}

impl Base {
    /// Executes `txs` as the block after the parent. With `strict`, any transaction that is not
    /// includable makes the whole block invalid (`None`); otherwise such transactions are
    /// dropped. Returns the included transactions, their receipts, the writes and the root.
    /// Every signature must have been verified already (at mempool admission, or as one batch
    /// by [`Base::check`]). Each transaction comes with its hash, computed once before.
    fn execute(
        &self,
        ctx: &BlockContext,
        txs: Vec<(SignedTransaction, Hash)>,
        strict: bool,
    ) -> Result<Option<Execution>, AppError> {
        let reader = self.db.reader()?;
        let layered = Layered {
            base: &reader,
            ancestry: &self.ancestry,
        };
        let started = std::time::Instant::now();
        let mut overlay = Overlay::new(&layered);
        kassa_state::begin_block(&mut overlay, ctx).expect("height and time were checked");
        let mut included = Vec::new();
        let mut receipts = Vec::new();
        let mut refused = Vec::new();
        for (tx, hash) in txs {
            match apply_tx_with(&mut overlay, ctx, &self.params, &tx, hash, true) {
                Ok(r) => {
                    receipts.push((hash, r));
                    included.push(tx);
                }
                Err(_) if strict => return Ok(None),
                Err(_) => refused.push(hash),
            }
        }
        kassa_state::end_block(&mut overlay, ctx);
        let writes = overlay.into_writes();
        let keys = writes.len();
        let applied = started.elapsed();
        let below: Vec<&PendingState> = self.ancestry.iter().map(AsRef::as_ref).collect();
        let state = self.db.prepare_on(ctx.height, writes, &below)?;
        let root = state.state_root;
        tracing::debug!(
            height = ctx.height,
            txs = included.len(),
            keys,
            apply_us = applied.as_micros(),
            root_us = (started.elapsed() - applied).as_micros(),
            "executed"
        );
        Ok(Some(Execution {
            included,
            receipts,
            state: Arc::new(state),
            root,
            refused,
        }))
    }

    /// Builds a block at block time `time_ms` (raised to the parent's time if earlier), with
    /// transactions from the mempool.
    pub fn build(
        &self,
        time_ms: u64,
        proposer: Address,
        consensus: &[u8],
    ) -> Result<(Block, Executing), AppError> {
        let height = self.parent.height + 1;
        let time_ms = time_ms.max(self.parent.timestamp_ms);
        let candidates = {
            let reader = self.db.reader()?;
            let layered = Layered {
                base: &reader,
                ancestry: &self.ancestry,
            };
            let started = std::time::Instant::now();
            let selected =
                lock(&self.mempool).select(&layered, self.limits.txs_max, self.limits.bytes_max);
            tracing::debug!(
                txs = selected.len(),
                took_us = started.elapsed().as_micros(),
                "selected"
            );
            selected
        };
        let ctx = BlockContext {
            height,
            time_ms,
            proposer,
        };
        let Execution {
            included: txs,
            receipts,
            state,
            root: state_root,
            refused,
        } = self
            .execute(&ctx, candidates, false)?
            .expect("lenient execution always yields a block");
        // What cannot be included now (fee no longer payable, nonce used, expired) is dropped
        // rather than re-tried in every block.
        let mut mempool = lock(&self.mempool);
        for h in &refused {
            mempool.remove(h);
        }
        drop(mempool);
        let header = BlockHeader {
            height,
            parent: self.parent.hash(),
            timestamp_ms: time_ms,
            proposer,
            // The receipts carry the included transactions' hashes, in block order.
            tx_root: tx_root_of(receipts.iter().map(|(h, _)| *h)),
            state_root,
            consensus: BoundedVec::new(consensus.to_vec()).ok_or(AppError::ContextTooLong)?,
        };
        let block = Block {
            header,
            txs: BoundedVec::new(txs).expect("selected within limits"),
        };
        let executing = Executing {
            id: block.header.hash(),
            executed: Executed {
                block: block.clone(),
                state,
                receipts,
            },
        };
        Ok((block, executing))
    }

    /// Checks a peer's block on this parent: its time does not go back (nor more than
    /// `max_future_ms` past `now_ms`), every transaction is includable, and the transaction
    /// root and state root are what executing it gives. `None` if it is invalid.
    pub fn check(
        &self,
        block: &Block,
        now_ms: u64,
        max_future_ms: u64,
    ) -> Result<Option<Executing>, AppError> {
        let h = &block.header;
        if h.parent != self.parent.hash()
            || h.height != self.parent.height + 1
            || h.timestamp_ms < self.parent.timestamp_ms
            || h.timestamp_ms > now_ms + max_future_ms
        {
            return Ok(None);
        }
        if block.txs.len() > self.limits.txs_max {
            return Ok(None);
        }
        // Each transaction is hashed once: for the root, the mempool and the receipts.
        let hashes: Vec<Hash> = block.txs.iter().map(SignedTransaction::hash).collect();
        if h.tx_root != tx_root_of(hashes.iter().copied()) {
            return Ok(None);
        }
        // A transaction waiting in the mempool had its signature checked at admission, and its
        // hash covers its signature: only the others are checked, as one batch (ZIP-215: valid
        // iff each one is). A bad signature makes the block invalid.
        let unchecked: Vec<SignedTransaction> = {
            let mempool = lock(&self.mempool);
            block
                .txs
                .iter()
                .zip(&hashes)
                .filter(|(_, h)| !mempool.contains(h))
                .map(|(t, _)| t.clone())
                .collect()
        };
        if !crate::mempool::signatures_valid(&unchecked) {
            return Ok(None);
        }
        let ctx = BlockContext {
            height: h.height,
            time_ms: h.timestamp_ms,
            proposer: h.proposer,
        };
        let Some(Execution {
            receipts,
            state,
            root,
            ..
        }) = self.execute(&ctx, block.txs.iter().cloned().zip(hashes).collect(), true)?
        else {
            return Ok(None);
        };
        if root != h.state_root {
            return Ok(None);
        }
        Ok(Some(Executing {
            id: h.hash(),
            executed: Executed {
                block: block.clone(),
                state,
                receipts,
            },
        }))
    }
}

/// The genesis block: height 0, no transactions, committing to the genesis state and to the
/// consensus engine's genesis context (`consensus`, opaque bytes; empty without consensus).
pub fn genesis_block(genesis: &Genesis, state_root: Hash, consensus: &[u8]) -> Block {
    Block {
        header: BlockHeader {
            height: 0,
            parent: Hash::default(),
            timestamp_ms: genesis.time_ms,
            proposer: Address([0; 32]),
            tx_root: tx_root(&[]),
            state_root,
            consensus: BoundedVec::new(consensus.to_vec()).expect("a short context"),
        },
        txs: BoundedVec::new(Vec::new()).expect("empty"),
    }
}

impl App {
    /// Opens the database in `dir`, writing `genesis` on first start. `genesis_consensus` is the
    /// consensus engine's genesis context (see [`genesis_block`]).
    pub fn open(
        dir: &Path,
        genesis: &Genesis,
        genesis_consensus: &[u8],
        mempool: MempoolConfig,
    ) -> Result<App, AppError> {
        App::open_with_cache(
            dir,
            genesis,
            genesis_consensus,
            mempool,
            kassa_db::CACHE_BYTES_DEFAULT,
        )
    }

    /// [`App::open`] with a page cache of at most `cache_bytes` for the state database.
    pub fn open_with_cache(
        dir: &Path,
        genesis: &Genesis,
        genesis_consensus: &[u8],
        mempool: MempoolConfig,
        cache_bytes: usize,
    ) -> Result<App, AppError> {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Redb(e.to_string()))?;
        App::open_db(
            Db::open_with_cache(&dir.join("state.redb"), cache_bytes)?,
            genesis,
            genesis_consensus,
            mempool,
        )
    }

    /// [`App::open`] on a database already opened (on a simulated disk, in the crash tests).
    pub fn open_db(
        db: Db,
        genesis: &Genesis,
        genesis_consensus: &[u8],
        mempool: MempoolConfig,
    ) -> Result<App, AppError> {
        if let Some(height) = db.restoring()? {
            return Err(AppError::RestoreUnfinished { height });
        }
        let head = match db.head()? {
            Some(h) => h,
            None => {
                let mut mem = MemStore::new();
                kassa_state::init_genesis(&mut mem, genesis)
                    .map_err(|e| AppError::BadGenesis(e.to_string()))?;
                let writes: Writes = mem
                    .scan_prefix(b"")
                    .into_iter()
                    .map(|(k, v)| (k, Some(v)))
                    .collect();
                let pending = db.prepare(0, writes)?;
                let block = genesis_block(genesis, pending.state_root, genesis_consensus);
                db.commit_block(&pending, Some(&block), &[], genesis.time_ms)?
            }
        };
        let params = kassa_state::exec::chain_params(&db.reader()?).expect("genesis written");
        let stored_genesis = db.block(0)?.expect("genesis written");
        // The genesis hash covers chain id, fee, allocations, time and validators: a data
        // directory of another genesis (even one reusing the chain id) is refused.
        if params.genesis_hash != genesis.hash()
            || params.chain_id != genesis.chain_id
            || params.min_fee != genesis.min_fee
            || stored_genesis.header.timestamp_ms != genesis.time_ms
            || stored_genesis.header.consensus.as_ref() != genesis_consensus
        {
            return Err(AppError::WrongGenesis);
        }
        Ok(App {
            db: Arc::new(db),
            params,
            head,
            pending: BTreeMap::new(),
            committing: None,
            mempool: Arc::new(Mutex::new(Mempool::new(mempool))),
            limits: BlockLimits::default(),
        })
    }

    /// The last finalized block.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Chain parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The database (for queries and proofs). Safe to use from other threads: reads see
    /// committed blocks only.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// The mempool, locked.
    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        lock(&self.mempool)
    }

    /// The mempool, for whoever admits transactions without this application's lock.
    pub fn shared_mempool(&self) -> Arc<Mutex<Mempool>> {
        self.mempool.clone()
    }

    /// Admits transactions to the mempool, checked against the finalized state (the signatures
    /// as one batch). The running node admits through `Node::submit` instead, which checks the
    /// signatures before taking any lock.
    pub fn submit(
        &mut self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<Result<Hash, AdmitError>>, AppError> {
        let valid = crate::mempool::signatures_each_valid(&txs);
        let accounts = crate::mempool::signers_accounts(&self.db.reader()?, &txs);
        let sized = crate::mempool::hashes_and_sizes(&txs);
        let next = self.head.height + 1;
        Ok(self
            .mempool()
            .admit_batch_checked(txs, &valid, &sized, &accounts, &self.params, next))
    }

    /// Whether the block `id` at `height` is executed here: committed, or executed and pending.
    pub fn knows(&self, id: &Hash, height: u64) -> bool {
        if height <= self.head.height {
            return self
                .db
                .block(height)
                .ok()
                .flatten()
                .is_some_and(|b| b.header.hash() == *id);
        }
        self.pending.contains_key(id)
    }

    /// What building or checking a block on `parent` needs (see [`Base`]).
    pub fn base(&self, parent: &Hash) -> Result<Base, AppError> {
        let mut ancestry = Vec::new();
        let mut at = *parent;
        while at != self.head.block_hash {
            let e = self.pending.get(&at).ok_or(AppError::UnknownParent(at))?;
            ancestry.push(e.state.clone());
            at = e.block.header.parent;
        }
        ancestry.reverse();
        Ok(Base {
            db: self.db.clone(),
            params: self.params.clone(),
            parent: self.parent_header(parent)?,
            ancestry,
            mempool: self.mempool.clone(),
            limits: self.limits.clone(),
        })
    }

    fn parent_header(&self, parent: &Hash) -> Result<BlockHeader, AppError> {
        if *parent == self.head.block_hash {
            let b = self
                .db
                .block(self.head.height)?
                .expect("the head block is stored");
            return Ok(b.header);
        }
        Ok(self
            .pending
            .get(parent)
            .ok_or(AppError::UnknownParent(*parent))?
            .block
            .header
            .clone())
    }

    /// Keeps a block executed on a [`Base`], so that children can be built on it and it can be
    /// finalized. Refused (`false`) if the finalized chain has meanwhile left its parent behind:
    /// it could never be finalized.
    pub fn adopt(&mut self, executing: Executing) -> bool {
        let h = &executing.executed.block.header;
        let parent_known = h.parent == self.head.block_hash || self.pending.contains_key(&h.parent);
        if h.height <= self.head.height || !parent_known {
            return false;
        }
        // Executed twice (say, checked while it was built here): both are the same.
        self.pending
            .entry(executing.id)
            .or_insert(executing.executed);
        true
    }

    /// Whether a peer's block needs no check: it is executed here already.
    fn already_verified(&self, block: &Block) -> Result<bool, AppError> {
        let id = block.header.hash();
        Ok(self.pending.contains_key(&id)
            || block.header.height <= self.head.height
                && self
                    .db
                    .block(block.header.height)?
                    .is_some_and(|b| b.header.hash() == id))
    }

    /// Checks a block proposed by someone else: it extends a known parent, and passes
    /// [`Base::check`].
    pub fn verify(
        &mut self,
        block: &Block,
        now_ms: u64,
        max_future_ms: u64,
    ) -> Result<bool, AppError> {
        self.prepare_verify(block)?
            .conclude(block, now_ms, max_future_ms, |e| self.adopt(e))
    }

    /// The first, quick part of [`App::verify`], under the lock.
    pub fn prepare_verify(&self, block: &Block) -> Result<Verify, AppError> {
        if self.already_verified(block)? {
            return Ok(Verify::Known);
        }
        match self.base(&block.header.parent) {
            Ok(base) => Ok(Verify::Check(Box::new(base))),
            Err(AppError::UnknownParent(_)) => Ok(Verify::UnknownParent),
            Err(e) => Err(e),
        }
    }

    /// Checks that a finalized block extends the head and takes what committing it writes:
    /// `None` if it is at or below the head (a re-delivery of the block committed there).
    /// Blocks can still be built and verified on top of it while the [`Commit`] is written;
    /// the next block cannot begin finalizing until [`App::end_finalize`].
    pub fn begin_finalize(&mut self, block: &Block) -> Result<Option<Commit>, AppError> {
        assert!(
            self.committing.is_none(),
            "finalized blocks are committed one at a time, in order"
        );
        let h = &block.header;
        if h.height <= self.head.height {
            // A re-delivery: it must be the block we committed at that height.
            let id = h.hash();
            if self
                .db
                .block(h.height)?
                .is_some_and(|b| b.header.hash() == id)
            {
                return Ok(None);
            }
            return Err(AppError::Conflict { height: h.height });
        }
        if h.height != self.head.height + 1 || h.parent != self.head.block_hash {
            return Err(AppError::NotNext {
                height: h.height,
                head: self.head.height,
            });
        }
        let id = h.hash();
        // Not seen before (e.g. after a restart): execute it now.
        if !self.pending.contains_key(&id) && !self.verify(block, u64::MAX / 2, 0)? {
            return Err(AppError::StateRootMismatch {
                height: h.height,
                header: h.state_root,
                computed: Hash::default(),
            });
        }
        let executed = self.pending.get_mut(&id).expect("executed above");
        // Prepared on top of the blocks just below it, which are exactly the ones committed.
        if executed.state.state_root != h.state_root {
            return Err(AppError::StateRootMismatch {
                height: h.height,
                header: h.state_root,
                computed: executed.state.state_root,
            });
        }
        self.committing = Some(id);
        Ok(Some(Commit {
            db: self.db.clone(),
            block: block.clone(),
            state: executed.state.clone(),
            receipts: std::mem::take(&mut executed.receipts),
        }))
    }

    /// Completes a finalization once its [`Commit`] is written (`written` is what
    /// [`Commit::write`] returned): the head moves, executions that can no longer be finalized
    /// are dropped, and so are the transactions the block included or made stale.
    ///
    /// What it makes obsolete is handed back as [`Leftovers`], to be run after the
    /// application's lock is released: the mempool cleanup and freeing the executed states.
    pub fn end_finalize(
        &mut self,
        commit: Commit,
        written: Result<Head, AppError>,
    ) -> Result<(Finalized, Leftovers), AppError> {
        assert_eq!(
            self.committing.take(),
            Some(commit.block.header.hash()),
            "end_finalize follows the begin_finalize of the same block"
        );
        self.head = written?;
        // Forget executions that can no longer be finalized (at or below the new head).
        let head_height = self.head.height;
        let obsolete: Vec<Executed> = self
            .pending
            .extract_if(.., |_, e| e.block.header.height <= head_height)
            .map(|(_, e)| e)
            .collect();
        let leftovers = Leftovers {
            db: self.db.clone(),
            mempool: self.mempool.clone(),
            next_height: head_height + 1,
            // Pruning by these senders' nonces drops every transaction the block included.
            senders: commit.block.txs.iter().map(|t| t.tx.signer).collect(),
            obsolete,
        };
        let done = Finalized {
            head: self.head.clone(),
            block: commit.block,
            receipts: commit.receipts,
        };
        Ok((done, leftovers))
    }
}

/// What finalizing a block leaves to do, without the application's lock: take its
/// transactions out of the mempool with those it made stale or expired, and free the executions
/// it made obsolete (large maps). Until it runs, the finalized transactions still wait in the
/// mempool, where block building skips them (their nonces are used in the state it builds on).
#[derive(Debug)]
#[must_use = "the finalized transactions stay in the mempool until this runs"]
pub struct Leftovers {
    db: Arc<Db>,
    mempool: Arc<Mutex<Mempool>>,
    next_height: u64,
    senders: BTreeSet<Address>,
    obsolete: Vec<Executed>,
}

impl Leftovers {
    /// Cleans the mempool, then frees the obsolete executions; returns how long each
    /// transaction the block included had waited in this node's mempool.
    pub fn run(self) -> Result<Vec<std::time::Duration>, AppError> {
        let reader = self.db.reader()?;
        let waits = lock(&self.mempool).prune(&reader, self.next_height, &self.senders);
        drop(self.obsolete);
        Ok(waits)
    }
}

/// Locks a mutex; a panic while holding one of the node's locks is fatal.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
        .expect("a panic while holding a node lock is fatal")
}
