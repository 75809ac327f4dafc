//! `kassa audit`: anyone can check the chain. Replays every block from genesis into a fresh
//! database, recomputes every state root and compares it with the block header (and, for a data
//! directory, with the root the node stored), checks every invariant of docs/protocol.md §9 after every
//! block, and reports the first divergence.

use crate::client::Client;
use crate::exit::Failure;
use crate::genesis::GenesisFile;
use anyhow::{Context as _, Result};
use kassa_db::Db;
use kassa_node::{App, MempoolConfig};
use kassa_types::Block;
use std::path::PathBuf;
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

/// An audit replays from genesis: it needs every block, so an archive node's.
fn pruned(below: u64) -> Result<()> {
    anyhow::ensure!(
        below == 0,
        "this node keeps blocks from height {below} on only (it prunes older ones: \
         --prune-keep); audit an archive node, which keeps them all"
    );
    Ok(())
}

struct Blocks {
    db: Option<Db>,
    client: Option<Client>,
    genesis: GenesisFile,
    head: u64,
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
                pruned(db.pruned_below()?)?;
                let gpath = genesis.clone().unwrap_or_else(|| dir.join("genesis.json"));
                Ok(Blocks {
                    db: Some(db),
                    client: None,
                    genesis: GenesisFile::load(&gpath)?,
                    head,
                })
            }
            Source::Node(url) => {
                let c = Client::new(url);
                let genesis: GenesisFile =
                    c.get("/api/v1/genesis").context("the node's genesis")?;
                let status = c.get::<kassa_api::wire::Status>("/api/v1/status")?;
                pruned(status.pruned_below)?;
                let head = status.height;
                Ok(Blocks {
                    db: None,
                    client: Some(c),
                    genesis,
                    head,
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
    pub blocks: u64,
    pub txs: u64,
    pub state_root: kassa_types::Hash,
}

pub fn run(source: &Source, quiet: bool) -> Result<Summary> {
    let started = Instant::now();
    let blocks = Blocks::open(source)?;
    let genesis = blocks.genesis.to_genesis()?;
    let scratch = tempfile::tempdir()?;
    let replay = kassa_node::Node::new(
        App::open(
            scratch.path(),
            &genesis,
            &kassa_node::consensus::genesis_context(),
            MempoolConfig::default(),
        )?,
        None,
    );

    let genesis_block = blocks.block(0)?;
    if genesis_block.header.hash() != replay.head().block_hash {
        diverged!(
            "divergence at height 0: the genesis file does not give the chain's genesis block"
        );
    }
    let mut snapshot = kassa_state::audit::audit(&replay.db().reader()?, None)
        .map_err(|v| Failure::Divergence(format!("divergence at height 0: {v}")))?;
    let mut txs = 0;
    let step = (blocks.head / 20).max(1);
    for h in 1..=blocks.head {
        let block = blocks.block(h)?;
        let f = replay
            .finalize(&block, kassa_node::Durability::Immediate)
            .map_err(|e| Failure::Divergence(format!("divergence at height {h}: {e}")))?
            .ok_or_else(|| {
                Failure::Divergence(format!(
                    "divergence at height {h}: the block does not extend height {}",
                    h - 1
                ))
            })?;
        if let Some(db) = &blocks.db {
            let stored = db.root_at(h)?;
            if stored != f.head.state_root {
                diverged!(
                    "divergence at height {h}: the node stored state root {stored}, replay gives {}",
                    f.head.state_root
                );
            }
        }
        snapshot = kassa_state::audit::audit(&replay.db().reader()?, Some(&snapshot))
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
    if let Some(db) = &blocks.db {
        // The node's current state table (what it executes on and serves) must be exactly the
        // replayed one, and its head and every receipt must match the replay's.
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
        if head.state_root != replay.head().state_root
            || head.block_hash != replay.head().block_hash
        {
            diverged!(
                "divergence at height {}: the stored head differs from the replay",
                head.height
            );
        }
        for h in 1..=blocks.head {
            for t in blocks.block(h)?.txs.iter() {
                let hash = t.hash();
                if db.tx(&hash)? != replay.db().tx(&hash)? {
                    diverged!(
                        "divergence at height {h}: the stored receipt of {hash} differs from the replay"
                    );
                }
            }
        }
    }
    let summary = Summary {
        blocks: blocks.head,
        txs,
        state_root: replay.head().state_root,
    };
    if !quiet {
        eprintln!("audit: done in {:.1?}", started.elapsed());
    }
    Ok(summary)
}
