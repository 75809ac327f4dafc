//! A follower: a full node that is not a validator. It syncs finalized blocks from any node's
//! HTTP API (its bootstrapper), trusting nothing the bootstrapper says:
//!
//! 1. it asks for the first finalization certificate above its head and checks it against the
//!    genesis validator set (a quorum of their signatures over that block's id);
//! 2. it fetches the blocks up to that height and checks that they link, by parent hash, from
//!    its own head to the certified block (so each of them is final too);
//! 3. it re-executes each block and commits it only if the state root it computes is the one
//!    the header carries.
//!
//! A bootstrapper that lies is caught at step 1 or 2 and nothing is committed; a block that
//! executes to a different root than a quorum certified stops the follower (exit code 70), as it
//! would a validator. Transactions submitted to a follower are checked by its mempool and
//! forwarded to the bootstrapper.

use crate::client::Client;
use anyhow::{Context as _, Result, anyhow, bail, ensure};
use kassa_api::wire;
use kassa_node::consensus::{self, PublicKey, RELAY_QUEUE};
use kassa_node::{Durability, Node};
use kassa_types::{Block, Hash, SignedTransaction};
use std::sync::Arc;
use std::time::Duration;

/// What a follower needs: where to sync from and whom to believe.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bootstrapper's API, e.g. `http://127.0.0.1:8650`.
    pub bootstrap: String,
    /// The genesis validators.
    pub validators: Vec<PublicKey>,
    /// The chain's namespace ([`consensus::namespace`]).
    pub namespace: Vec<u8>,
}

/// Why one round of syncing stopped.
enum SyncError {
    /// Try again later: the bootstrapper is unreachable or served something unusable.
    Retry(anyhow::Error),
    /// A certified block does not execute to its header's state root here: never go on.
    Fatal(anyhow::Error),
}

/// Follows the chain forever.
pub async fn run(node: Arc<Node>, cfg: Config, mut rng: impl rand_core_10::CryptoRng) {
    let client = Client::new(&cfg.bootstrap);
    let (relay, queue) = tokio::sync::mpsc::channel(RELAY_QUEUE);
    node.set_relay(relay);
    tokio::spawn(forward(client.clone(), queue));
    let mut unreachable = false;
    loop {
        match sync_once(&node, &cfg, &client, &mut rng).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(250)).await,
            Ok(n) => {
                unreachable = false;
                tracing::debug!(blocks = n, height = node.head().height, root = %node.head().state_root, "synced");
            }
            Err(SyncError::Retry(e)) => {
                if !unreachable {
                    tracing::warn!(error = %format!("{e:#}"), "sync paused; retrying");
                }
                unreachable = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(SyncError::Fatal(e)) => {
                tracing::error!(error = %format!("{e:#}"), "cannot apply a finalized block; stopping");
                std::process::exit(crate::exit::WRONG_STATE);
            }
        }
    }
}

/// Syncs up to the next certified height; returns how many blocks were committed.
async fn sync_once(
    node: &Arc<Node>,
    cfg: &Config,
    client: &Client,
    rng: &mut impl rand_core_10::CryptoRng,
) -> Result<usize, SyncError> {
    let head = node.head();
    let from = head.height + 1;
    let c = client.clone();
    let fetched = tokio::task::spawn_blocking(move || fetch(&c, &head.block_hash, from))
        .await
        .map_err(|e| SyncError::Retry(anyhow!(e)))?
        .map_err(SyncError::Retry)?;
    let Some((certificate, blocks)) = fetched else {
        return Ok(0);
    };
    let tip = blocks.last().expect("fetch returns at least one block");
    consensus::verify_finalization(
        rng,
        &cfg.namespace,
        &cfg.validators,
        &certificate,
        &tip.header.hash(),
    )
    .map_err(|e| SyncError::Retry(anyhow!("the bootstrapper's certificate: {e}")))?;
    let n = blocks.len();
    // One group commit: the run is on disk at its last block's immediate commit.
    for (i, b) in blocks.iter().enumerate() {
        let durability = if i + 1 == n {
            Durability::Immediate
        } else {
            Durability::Deferred
        };
        node.finalize(b, durability)
            .with_context(|| format!("block {}", b.header.height))
            .map_err(SyncError::Fatal)?;
    }
    Ok(n)
}

/// Fetches the first certificate at or above `from` and the blocks from `from` up to it,
/// checking that they link to `head`. `None` if the bootstrapper has nothing new.
fn fetch(client: &Client, head: &Hash, from: u64) -> Result<Option<(Vec<u8>, Vec<Block>)>> {
    let Some(f) = client.get_opt::<wire::Finality>(&format!("/api/v1/blocks/{from}/finality"))?
    else {
        return Ok(None);
    };
    let height = f.height;
    ensure!(
        (from..=from + kassa_node::FINALITY_SEARCH).contains(&height),
        "finality at an unexpected height {height}"
    );
    let certificate = hex::decode(&f.certificate)?;
    let mut blocks: Vec<Block> = Vec::new();
    let mut parent = *head;
    for h in from..=height {
        let raw: wire::RawBlock = client.get(&format!("/api/v1/blocks/{h}/raw"))?;
        let bytes = hex::decode(&raw.hex)?;
        let block = Block::decode(&bytes).map_err(|e| anyhow!("block {h}: {e}"))?;
        if block.header.height != h || block.header.parent != parent {
            bail!("block {h} does not link to the chain below it");
        }
        parent = block.header.hash();
        blocks.push(block);
    }
    Ok(Some((certificate, blocks)))
}

/// Forwards transactions submitted here to the bootstrapper.
async fn forward(client: Client, mut queue: tokio::sync::mpsc::Receiver<Vec<SignedTransaction>>) {
    while let Some(txs) = queue.recv().await {
        let c = client.clone();
        let sent = tokio::task::spawn_blocking(move || {
            for tx in txs {
                let body = wire::SubmitBody {
                    tx: hex::encode(tx.encode()),
                };
                if let Err(e) = c.post::<_, wire::Tx>("/api/v1/txs", &body) {
                    tracing::warn!(error = %format!("{e:#}"), tx = %tx.hash(), "could not forward a transaction");
                }
            }
        })
        .await;
        if sent.is_err() {
            return;
        }
    }
}
