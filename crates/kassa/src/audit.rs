//! `kassa audit`: anyone can check the chain. Replays the blocks into a fresh database,
//! recomputes every state root and compares it with the block header, checks every invariant of
//! docs/protocol.md §9 after every block, and reports the first divergence; for a data directory,
//! the stored state, head and receipts must then be the replay's.
//!
//! An archive is replayed from genesis. A pruned node (or a follower started by state sync)
//! no longer has the first blocks: its audit starts from the state of the oldest height it
//! offers to sync from whose later blocks it keeps, restored from its answers, each checked
//! against that block's state root ([`kassa_db::Db::restore`]); the invariants are checked on
//! that state, then every later block is replayed. Against a running node, the replay goes on to
//! the newest block a quorum of the genesis validators certified, and must arrive at that very
//! block: so the restored block is the chain's (it links by hashes to a certified one) and so is
//! every state after it.

use crate::client::Client;
use crate::exit::Failure;
use crate::genesis::GenesisFile;
use anyhow::{Context as _, Result};
use kassa_db::{Committed, Db, qmdb};
use kassa_node::{App, MempoolConfig, Node};
use kassa_types::Block;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Returns a divergence (exit code 4) from the enclosing function.
macro_rules! diverged {
    ($($arg:tt)*) => {
        return Err(Failure::Divergence(format!($($arg)*)).into())
    };
}

/// Where the blocks come from.
pub enum Source {
    /// A stopped node's data directory.
    DataDir {
        dir: PathBuf,
        genesis: Option<PathBuf>,
    },
    /// A running node's API.
    Node(String),
}

struct Blocks {
    db: Option<Db>,
    client: Option<Client>,
    genesis: GenesisFile,
    head: u64,
    /// The height replayed from (0: genesis, an archive).
    kept_from: u64,
    /// Unless from genesis, the source's offer of the state at `kept_from`.
    offer: Option<Committed>,
}

/// The newest of `offers` whose later blocks the source keeps (they are from `pruned_below`
/// on; the newest, for a running node goes on pruning while it is audited), or an error saying
/// why the audit cannot start.
fn offer_from(offers: Vec<(u64, Committed)>, pruned_below: u64) -> Result<(u64, Committed)> {
    offers
        .into_iter()
        .rfind(|(h, _)| *h + 1 >= pruned_below)
        .context(
            "the node keeps no block from genesis and offers no state whose later blocks it \
             keeps: audit it again after its next offered height",
        )
}

impl Blocks {
    fn open(source: &Source) -> Result<Blocks> {
        match source {
            Source::DataDir { dir, genesis } => {
                let db = Db::open(&dir.join("state").join("state.redb")).with_context(|| {
                    format!(
                        "opening {} (stop the node first, or audit it with --node URL)",
                        dir.display()
                    )
                })?;
                let head = db
                    .head()?
                    .context("the data directory has no chain")?
                    .height;
                let (kept_from, offer) = match db.pruned_below()? {
                    0 => (0, None),
                    below => {
                        let (h, offer) = offer_from(db.offers()?, below)?;
                        (h, Some(offer))
                    }
                };
                let gpath = genesis.clone().unwrap_or_else(|| dir.join("genesis.json"));
                Ok(Blocks {
                    db: Some(db),
                    client: None,
                    genesis: GenesisFile::load(&gpath)?,
                    head,
                    kept_from,
                    offer,
                })
            }
            Source::Node(url) => {
                let c = Client::new(url);
                let genesis: GenesisFile =
                    c.get("/api/v1/genesis").context("the node's genesis")?;
                let status = c.get::<kassa_api::wire::Status>("/api/v1/status")?;
                let head = status.height;
                let (kept_from, offer) = match status.pruned_below {
                    0 => (0, None),
                    below => {
                        let bytes = c.bytes("/api/v1/sync/offers", 64 << 10)?;
                        let offers = borsh::from_slice(&bytes).context("the node's offers")?;
                        let (h, offer) = offer_from(offers, below)?;
                        (h, Some(offer))
                    }
                };
                Ok(Blocks {
                    db: None,
                    client: Some(c),
                    genesis,
                    head,
                    kept_from,
                    offer,
                })
            }
        }
    }

    fn block(&self, height: u64) -> Result<Block> {
        if let Some(db) = &self.db {
            return db
                .block(height)?
                .with_context(|| format!("block {height} is missing"));
        }
        let c = self.client.as_ref().expect("one source");
        let bytes = c.block_bytes(height)?;
        Block::decode(&bytes).map_err(|e| anyhow::anyhow!("block {height} does not decode: {e}"))
    }
}

/// What an audit found.
#[derive(Debug)]
pub struct Summary {
    /// The height replayed from: 0 from genesis, else the height of the snapshot.
    pub from: u64,
    pub blocks: u64,
    pub txs: u64,
    pub state_root: kassa_types::Hash,
}

pub fn run(source: &Source, quiet: bool) -> Result<Summary> {
    // A running node that prunes may drop a height the audit still reads (its window is
    // short, or the audit slow): audit again from a newer snapshot, a few times.
    for attempt in 1.. {
        match run_once(source, quiet) {
            Err(e)
                if attempt < 5
                    && matches!(source, Source::Node(_))
                    && e.downcast_ref::<Failure>().is_none()
                    && crate::client::Refusal::pruned(&e) =>
            {
                if !quiet {
                    eprintln!(
                        "audit: the node pruned a height being read; again from a newer snapshot"
                    );
                }
            }
            done => return done,
        }
    }
    unreachable!("the loop returns")
}

fn run_once(source: &Source, quiet: bool) -> Result<Summary> {
    let started = Instant::now();
    let mut blocks = Blocks::open(source)?;
    let genesis = blocks.genesis.to_genesis()?;
    let scratch = tempfile::tempdir()?;
    let genesis_block = blocks.block(0)?;
    let replay = if blocks.kept_from == 0 {
        let replay = Node::new(
            App::open(
                scratch.path(),
                &genesis,
                &kassa_node::consensus::genesis_context(),
                MempoolConfig::default(),
            )?,
            None,
        );
        if genesis_block.header.hash() != replay.head().block_hash {
            diverged!(
                "divergence at height 0: the genesis file does not give the chain's genesis block"
            );
        }
        replay
    } else {
        if genesis_block != crate::sync::genesis_block(&genesis)? {
            diverged!(
                "divergence at height 0: the genesis file does not give the chain's genesis block"
            );
        }
        let db = Db::open(&scratch.path().join("state.redb"))?;
        restore_snapshot(&blocks, &db, &genesis_block, quiet)?;
        Node::new(
            App::open_db(
                db,
                &genesis,
                &kassa_node::consensus::genesis_context(),
                MempoolConfig::default(),
            )?,
            None,
        )
    };
    let from = blocks.kept_from;
    let mut snapshot = kassa_state::audit::audit(&replay.db().reader()?, None)
        .map_err(|v| Failure::Divergence(format!("divergence at height {from}: {v}")))?;
    let mut txs = replay_blocks(&blocks, &replay, from + 1, &mut snapshot, quiet)?;
    if from > 0
        && let Some(c) = &blocks.client
    {
        // The snapshot's block is the chain's only if the replay from it arrives at a block the
        // validators certified.
        let at = crate::cli::verify::certified(c, &blocks.genesis)
            .context("the node's newest finalization certificate")?;
        blocks.head = at.height;
        txs += replay_blocks(
            &blocks,
            &replay,
            replay.head().height + 1,
            &mut snapshot,
            quiet,
        )?;
        if replay.head().block_hash != at.header.hash() {
            diverged!(
                "divergence at height {}: the replay from the snapshot of height {from} does not \
                 arrive at the block the validators certified",
                at.height
            );
        }
        if !quiet {
            eprintln!(
                "audit: arrived at block {}, certified by {} of {} validators",
                at.height, at.signers, at.validators
            );
        }
    }
    if let Some(db) = &blocks.db {
        compare_stored(db, &blocks, &replay, from)?;
    }
    let summary = Summary {
        from,
        blocks: blocks.head - from,
        txs,
        state_root: replay.head().state_root,
    };
    if !quiet {
        eprintln!("audit: done in {:.1?}", started.elapsed());
    }
    Ok(summary)
}

/// Restores into `db` the state of the height the audit starts from, each answer checked
/// against that block's state root.
fn restore_snapshot(blocks: &Blocks, db: &Db, genesis_block: &Block, quiet: bool) -> Result<()> {
    let height = blocks.kept_from;
    let block = blocks.block(height)?;
    let target = blocks.offer.as_ref().expect("an offer unless from genesis");
    if !quiet {
        eprintln!(
            "audit: this node does not keep the first blocks: auditing from the state of height \
             {height} it offers (checked against block {height}'s state root), not from genesis"
        );
    }
    let diverged = |e: &dyn std::fmt::Display| {
        Failure::Divergence(format!(
            "divergence in the offered state of height {height}: {e}"
        ))
    };
    qmdb::check_target(&block.header.state_root, target).map_err(|e| diverged(&e))?;
    let mut progress = crate::sync::progress_bar();
    let mut quiet_progress = |_: u64, _: u64| {};
    let progress: kassa_node::state_sync::Progress<'_> = if quiet {
        &mut quiet_progress
    } else {
        &mut progress
    };
    if let Some(c) = &blocks.client {
        let at = kassa_node::follow::Certified {
            height,
            header: block.header.clone(),
            certificate: Vec::new(),
            signers: 0,
            validators: 0,
        };
        crate::sync::restore_once(
            db,
            &[c.base().to_string()],
            &at,
            target,
            genesis_block,
            progress,
        )
        .with_context(|| format!("restoring the state of height {height}"))?;
        return Ok(());
    }
    let source = blocks.db.as_ref().expect("one source");
    let requests = qmdb::requests(target);
    let total = u64::try_from(requests.len())?;
    let mut answers = kassa_db::Answers::new(db)?;
    for (n, request) in requests.into_iter().enumerate() {
        let answer = source.serve_sync(&request)?;
        qmdb::check_answer(target, &request, &answer).map_err(|e| diverged(&e))?;
        answers.insert(request, &answer)?;
        progress(u64::try_from(n + 1)?, total);
    }
    db.restore(target, answers, &block, genesis_block)
        .map_err(|e| diverged(&e))?;
    Ok(())
}

/// Replays `first..=blocks.head` on `replay`, checking roots (and the stored ones of a data
/// directory) and the invariants after each block; returns the transactions replayed.
fn replay_blocks(
    blocks: &Blocks,
    replay: &Arc<Node>,
    first: u64,
    snapshot: &mut kassa_state::audit::Snapshot,
    quiet: bool,
) -> Result<u64> {
    let mut txs = 0;
    let step = (blocks.head / 20).max(1);
    for h in first..=blocks.head {
        let block = blocks.block(h)?;
        // Finalizing checks the recomputed state root against the block header's.
        replay
            .finalize(&block, kassa_node::Durability::Immediate)
            .map_err(|e| Failure::Divergence(format!("divergence at height {h}: {e}")))?
            .ok_or_else(|| {
                Failure::Divergence(format!(
                    "divergence at height {h}: the block does not extend height {}",
                    h - 1
                ))
            })?;
        *snapshot = kassa_state::audit::audit(&replay.db().reader()?, Some(snapshot))
            .map_err(|v| Failure::Divergence(format!("divergence at height {h}: {v}")))?;
        txs += u64::try_from(block.txs.len())?;
        if !quiet && (h % step == 0 || h == blocks.head) {
            eprintln!(
                "audit: {h}/{} blocks ({}%), {txs} transactions",
                blocks.head,
                h * 100 / blocks.head
            );
        }
    }
    Ok(txs)
}

/// A data directory's current state table (what its node executes on and serves), head and
/// every receipt from `from` on must be exactly the replay's.
fn compare_stored(db: &Db, blocks: &Blocks, replay: &Node, from: u64) -> Result<()> {
    use kassa_state::ScanStore as _;
    let stored = db.reader()?.scan_prefix(b"");
    let replayed = replay.db().reader()?.scan_prefix(b"");
    if stored != replayed {
        let at = stored
            .iter()
            .zip(&replayed)
            .position(|(a, b)| a != b)
            .unwrap_or(stored.len().min(replayed.len()));
        let key = stored
            .get(at)
            .or(replayed.get(at))
            .map(|(k, _)| hex::encode(k))
            .unwrap_or_default();
        diverged!("divergence in the stored state: entry {key} differs from the replay");
    }
    let head = db.head()?.context("head")?;
    if head.state_root != replay.head().state_root || head.block_hash != replay.head().block_hash {
        diverged!(
            "divergence at height {}: the stored head differs from the replay",
            head.height
        );
    }
    for h in from + 1..=blocks.head {
        for t in blocks.block(h)?.txs.iter() {
            let hash = t.hash();
            if db.tx(&hash)? != replay.db().tx(&hash)? {
                diverged!(
                    "divergence at height {h}: the stored receipt of {hash} differs from the replay"
                );
            }
        }
    }
    Ok(())
}
