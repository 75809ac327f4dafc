//! A follower: a full node that is not a validator. It syncs finalized blocks from other nodes'
//! HTTP APIs, validators or followers (its sources: the bootstrapper, then the others in turn
//! whenever the one it uses fails or serves something that does not check), trusting nothing
//! a source says:
//!
//! 1. it asks for the first finalization certificate above its head and checks it against the
//!    genesis validator set (a quorum of their signatures over that block's id), before it
//!    downloads any block;
//! 2. it fetches the blocks up to that height (their canonical bytes, each read no further than
//!    the consensus block-size limit) and checks that they link, by parent hash, from its own
//!    head to the certified block (so each of them is final too), stopping at the first that
//!    does not;
//! 3. it re-executes each block and commits it only if the state root it computes is the one
//!    the header carries.
//!
//! A bootstrapper that lies is caught at step 1 or 2 and nothing is committed; a block that
//! executes to a different root than a quorum certified stops the follower (exit code 70), as it
//! would a validator. Transactions submitted to a follower are checked by its mempool and
//! forwarded to the source it syncs from (the next one if that fails).
//!
//! The certificates it checked (the newest [`CERTIFICATES_KEPT`], since it started) it serves
//! as a validator serves its own (`/api/v1/blocks/{h}/finality`), so that a light client (the
//! web app, `kassa verify`) can check what the follower says without asking a validator.

use crate::client::Client;
use anyhow::{Context as _, Result, anyhow, bail, ensure};
use kassa_api::wire;
use kassa_node::consensus::{self, PublicKey, RELAY_QUEUE};
use kassa_node::{Certificates, Durability, Node};
use kassa_types::{Block, Hash, SignedTransaction};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What a follower needs: where to sync from and whom to believe.
#[derive(Clone, Debug)]
pub struct Config {
    /// The APIs it syncs from, e.g. `http://127.0.0.1:8650`: the bootstrapper first.
    pub sources: Vec<String>,
    /// The genesis validators.
    pub validators: Vec<PublicKey>,
    /// The chain's namespace ([`consensus::namespace`]).
    pub namespace: Vec<u8>,
}

/// Why one round of syncing stopped.
enum SyncError {
    /// Try again (from the next source): this one is unreachable or served something unusable.
    Retry(anyhow::Error),
    /// A certified block does not execute to its header's state root here: never go on.
    Fatal(anyhow::Error),
}

/// What a follower counts of the certificates it checks, and how far behind it is.
struct CertificateCounts {
    verified: Counter,
    refused: Counter,
    lag: Gauge,
    switches: Counter,
    bytes: Counter,
}

impl CertificateCounts {
    fn register(node: &Node) -> CertificateCounts {
        let t = node.telemetry();
        CertificateCounts {
            verified: t.metric(
                "kassa_follower_certificates_verified",
                "Finalization certificates from its sources that a quorum of the genesis \
                 validators signed",
                Counter::default,
            ),
            refused: t.metric(
                "kassa_follower_certificates_refused",
                "Finalization certificates from its sources that did not verify",
                Counter::default,
            ),
            switches: t.metric(
                "kassa_follower_source_switches",
                "Times this follower moved on to its next source because the one it used failed \
                 or served something that did not check",
                Counter::default,
            ),
            bytes: t.metric(
                "kassa_follower_received_bytes",
                "Bytes of blocks this follower downloaded from its sources",
                Counter::default,
            ),
            lag: t.metric(
                "kassa_follower_lag_blocks",
                "Blocks its source had finalized that this follower had not, at its last \
                 sync round",
                Gauge::default,
            ),
        }
    }
}

/// How many of the certificates it checked a follower keeps.
pub const CERTIFICATES_KEPT: usize = 1_024;

/// The certificates a follower checked, by the height of the block each finalizes: the newest
/// [`CERTIFICATES_KEPT`]. Clones share them (the sync loop keeps, the node serves).
#[derive(Clone, Debug, Default)]
struct Checked(Arc<Mutex<BTreeMap<u64, Vec<u8>>>>);

impl Checked {
    fn keep(&self, height: u64, certificate: Vec<u8>) {
        let mut kept = self
            .0
            .lock()
            .expect("the certificates' lock is never poisoned");
        kept.insert(height, certificate);
        while kept.len() > CERTIFICATES_KEPT {
            kept.pop_first();
        }
    }
}

impl Certificates for Checked {
    fn finalization(
        &self,
        height: u64,
    ) -> std::pin::Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + '_>> {
        let found = self
            .0
            .lock()
            .expect("the certificates' lock is never poisoned")
            .get(&height)
            .cloned();
        Box::pin(async move { found })
    }
}

/// Follows the chain forever.
pub async fn run(node: Arc<Node>, cfg: Config, mut rng: impl rand_core_10::CryptoRng) {
    let sources: Arc<Vec<Client>> = Arc::new(cfg.sources.iter().map(|s| Client::new(s)).collect());
    assert!(!sources.is_empty(), "a follower has a bootstrapper");
    // The source synced from (and forwarded to), moved on to the next when it fails.
    let current = Arc::new(AtomicUsize::new(0));
    let counts = CertificateCounts::register(&node);
    let checked = Checked::default();
    node.set_certificates(Box::new(checked.clone()));
    let (relay, queue) = tokio::sync::mpsc::channel(RELAY_QUEUE);
    node.set_relay(relay);
    tokio::spawn(forward(sources.clone(), current.clone(), queue));
    let mut failing = 0usize;
    loop {
        let at = current.load(Ordering::Relaxed) % sources.len();
        match sync_once(&node, &cfg, &sources[at], &counts, &checked, &mut rng).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(250)).await,
            Ok(n) => {
                failing = 0;
                tracing::debug!(blocks = n, height = node.head().height, root = %node.head().state_root, "synced");
            }
            Err(SyncError::Retry(e)) => {
                let next = (at + 1) % sources.len();
                if failing < sources.len() {
                    tracing::warn!(source = %sources[at].base(), next = %sources[next].base(), error = %format!("{e:#}"), "sync failed; trying the next source");
                }
                counts.switches.inc();
                current.store(next, Ordering::Relaxed);
                failing += 1;
                // Once every source failed in a row, wait before going round again.
                if failing.is_multiple_of(sources.len()) {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
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
    counts: &CertificateCounts,
    checked: &Checked,
    rng: &mut impl rand_core_10::CryptoRng,
) -> Result<usize, SyncError> {
    let head = node.head();
    let from = head.height + 1;
    let c = client.clone();
    let (their_height, finality) = tokio::task::spawn_blocking(move || certified(&c, from))
        .await
        .map_err(|e| SyncError::Retry(anyhow!(e)))?
        .map_err(SyncError::Retry)?;
    counts
        .lag
        .set(i64::try_from(their_height.saturating_sub(head.height)).unwrap_or(i64::MAX));
    let Some((height, block, certificate)) = finality else {
        return Ok(0);
    };
    consensus::verify_finalization(rng, &cfg.namespace, &cfg.validators, &certificate, &block)
        .map_err(|e| {
            counts.refused.inc();
            SyncError::Retry(anyhow!("{}'s certificate: {e}", client.base()))
        })?;
    counts.verified.inc();
    let c = client.clone();
    let (blocks, received) =
        tokio::task::spawn_blocking(move || fetch(&c, &head.block_hash, from, height))
            .await
            .map_err(|e| SyncError::Retry(anyhow!(e)))?
            .map_err(SyncError::Retry)?;
    counts.bytes.inc_by(received);
    let tip = blocks.last().expect("fetch returns at least one block");
    if tip.header.hash() != block {
        return Err(SyncError::Retry(anyhow!(
            "block {height} is not the block its certificate certifies"
        )));
    }
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
    // Served once the block it certifies is committed here.
    checked.keep(height, certificate);
    counts
        .lag
        .set(i64::try_from(their_height.saturating_sub(node.head().height)).unwrap_or(i64::MAX));
    Ok(n)
}

/// The bootstrapper's height, and the first certificate at or above `from`: its height, the
/// block it certifies, and its bytes (`None` if the source has nothing new).
type Certified = (u64, Option<(u64, Hash, Vec<u8>)>);

fn certified(client: &Client, from: u64) -> Result<Certified> {
    let their_height = client.get::<wire::Status>("/api/v1/status")?.height;
    let Some(f) = client.get_opt::<wire::Finality>(&format!("/api/v1/blocks/{from}/finality"))?
    else {
        return Ok((their_height, None));
    };
    ensure!(
        (from..=from + kassa_node::FINALITY_SEARCH).contains(&f.height),
        "finality at an unexpected height {}",
        f.height
    );
    Ok((
        their_height,
        Some((f.height, f.block.0, hex::decode(&f.certificate)?)),
    ))
}

/// Fetches the blocks `from..=to`, checking that each links to the one below it, from `head`.
fn fetch(client: &Client, head: &Hash, from: u64, to: u64) -> Result<(Vec<Block>, u64)> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut received = 0u64;
    let mut parent = *head;
    for h in from..=to {
        let bytes = client.block_bytes(h)?;
        received += u64::try_from(bytes.len()).expect("bounded block");
        let block = Block::decode(&bytes).map_err(|e| anyhow!("block {h}: {e}"))?;
        if block.header.height != h || block.header.parent != parent {
            bail!("block {h} does not link to the chain below it");
        }
        parent = block.header.hash();
        blocks.push(block);
    }
    Ok((blocks, received))
}

/// Forwards transactions submitted here to the source synced from, each lot as one batch.
async fn forward(
    sources: Arc<Vec<Client>>,
    current: Arc<AtomicUsize>,
    mut queue: tokio::sync::mpsc::Receiver<Vec<SignedTransaction>>,
) {
    while let Some(txs) = queue.recv().await {
        let c = sources[current.load(Ordering::Relaxed) % sources.len()].clone();
        let sent = tokio::task::spawn_blocking(move || {
            for lot in txs.chunks(BATCH_FORWARD) {
                let body = wire::BatchBody {
                    txs: lot.iter().map(|t| hex::encode(t.encode())).collect(),
                };
                match c.post::<_, wire::BatchResults>("/api/v1/txs/batch", &body) {
                    Ok(answer) => {
                        for (tx, r) in lot.iter().zip(answer.results) {
                            if let wire::Submitted::Refused { error } = r {
                                tracing::warn!(code = %error.code, tx = %tx.hash(), "the source refused a forwarded transaction");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), txs = lot.len(), "could not forward transactions");
                    }
                }
            }
        })
        .await;
        if sent.is_err() {
            return;
        }
    }
}

/// Most transactions forwarded in one request (a node's default batch limit).
const BATCH_FORWARD: usize = 1_000;
