//! Following the chain from other nodes, trusting nothing they say but what a quorum of the
//! genesis validators signed: what a follower does, over whatever transport reaches its sources
//! (HTTP in `kassa node`, direct calls in the simulations).
//!
//! - [`Follower`] syncs finalized blocks: from its current [`Source`] it takes the first
//!   finalization certificate above its head and checks it ([`check`]: a quorum of the genesis
//!   validators signed that block's id, and the header sent with it hashes to it) before it
//!   downloads a block; it fetches the blocks up to that height, checks that they link by parent
//!   hash from its head to the certified block, and re-executes each, committing it only if it
//!   reproduces the state root in its header. A source that is unreachable or serves something
//!   that does not check is left for the next one. A certified block that executes to another
//!   root is fatal ([`FollowError::Fatal`]), as for a validator. It serves the certificates it
//!   checked (the newest [`CERTIFICATES_KEPT`], and one in every 512 heights kept on disk), so
//!   that light clients and other followers can check what it serves.
//! - [`crate::state_sync`] restores the state of a recent certified height from the same
//!   sources, instead of replaying the chain from genesis.

use crate::consensus::{self, PublicKey};
use crate::state_sync::Synced;
use crate::{Certificates, Durability, FINALITY_SEARCH, Finality, Node};
use commonware_runtime::{Clock, Spawner};
use futures::future::BoxFuture;
use kassa_db::RestoreError;
use kassa_types::{Block, BlockHeader, SignedTransaction};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most bytes of an encoded block header (its fixed fields and the longest consensus context).
pub const HEADER_BYTES_MAX: usize =
    8 + 32 + 8 + 32 + 32 + 32 + 4 + kassa_types::block::CONSENSUS_CONTEXT_LEN_MAX;

/// How many of the certificates it checked a follower keeps and serves.
pub const CERTIFICATES_KEPT: usize = 1_024;

/// Why a source did not answer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Not reachable, or its answer was not usable: ask another.
    #[error("{0}")]
    Unreachable(String),
    /// It no longer keeps that height (a node that prunes).
    #[error("{0}")]
    Pruned(String),
}

/// Another node a follower syncs from, a validator or a follower. Nothing it answers is
/// trusted.
pub trait Source: Send + Sync {
    /// How it is named in logs (its URL).
    fn name(&self) -> &str;
    /// Its finalized height.
    fn height(&self) -> BoxFuture<'_, Result<u64, SourceError>>;
    /// The first certificate it has at or above `from` (up to [`FINALITY_SEARCH`] above), with
    /// the certified block's header.
    fn finality(&self, from: u64) -> BoxFuture<'_, Result<Option<Finality>, SourceError>>;
    /// The canonical bytes of its block at `height`.
    fn block(&self, height: u64) -> BoxFuture<'_, Result<Vec<u8>, SourceError>>;
    /// The heights it offers to sync the state from, oldest first, with what its state's
    /// commitment was after each ([`kassa_db::Db::offers`]).
    fn offers(&self) -> BoxFuture<'_, Result<Vec<(u64, kassa_db::Committed)>, SourceError>>;
    /// Its answer to a request of state sync ([`kassa_db::qmdb::requests`]), for an offered
    /// height.
    fn sync(&self, request: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, SourceError>>;
    /// Hands it transactions submitted to the follower.
    fn forward(&self, txs: Vec<SignedTransaction>) -> BoxFuture<'_, Result<(), SourceError>>;
}

/// Whom a follower believes: the genesis validators, in the chain's namespace.
#[derive(Clone, Debug)]
pub struct Trust {
    pub validators: Vec<PublicKey>,
    /// [`consensus::namespace`] of the chain.
    pub namespace: Vec<u8>,
}

/// A block a quorum of the genesis validators finalized, checked.
#[derive(Clone, Debug)]
pub struct Certified {
    pub height: u64,
    pub header: BlockHeader,
    pub certificate: Vec<u8>,
    /// Validators who signed, of how many.
    pub signers: usize,
    pub validators: usize,
}

/// Why following (or restoring) stopped.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The source served something that does not check: never believed, and left.
    #[error("{0}")]
    Untrusted(String),
    /// A state chunk that does not prove against the certified root.
    #[error(transparent)]
    Restore(RestoreError),
    /// A certified block does not execute to its header's state root here: never go on.
    #[error("{0}")]
    Fatal(String),
    #[error(transparent)]
    Db(#[from] kassa_db::DbError),
}

/// Checks a certificate and the header sent with it against `trust`.
pub fn check(
    trust: &Trust,
    rng: &mut impl rand_core_10::CryptoRng,
    f: &Finality,
) -> Result<Certified, FollowError> {
    let signers = consensus::verify_finalization(
        rng,
        &trust.namespace,
        &trust.validators,
        &f.certificate,
        &f.block,
    )
    .map_err(|e| FollowError::Untrusted(format!("certificate of block {}: {e}", f.height)))?;
    let header: BlockHeader =
        kassa_types::codec::decode(&f.header, HEADER_BYTES_MAX).map_err(|e| {
            FollowError::Untrusted(format!("block {}: undecodable header: {e}", f.height))
        })?;
    if header.hash() != f.block || header.height != f.height {
        return Err(FollowError::Untrusted(format!(
            "block {}: not the header of the block its certificate finalizes",
            f.height
        )));
    }
    Ok(Certified {
        height: f.height,
        header,
        certificate: f.certificate.clone(),
        signers,
        validators: trust.validators.len(),
    })
}

/// The newest block `source` has a certificate for (its head's, or else the first in the
/// stretch below it), checked.
pub async fn newest_certified(
    source: &dyn Source,
    trust: &Trust,
    rng: &mut impl rand_core_10::CryptoRng,
) -> Result<Certified, FollowError> {
    let height = source.height().await?;
    let f = match source.finality(height).await? {
        Some(f) => f,
        None => source
            .finality(height.saturating_sub(FINALITY_SEARCH))
            .await?
            .ok_or_else(|| {
                SourceError::Unreachable(format!(
                    "{} has no finalization certificate from height {} on (a follower has \
                     those it checked since it started: ask another node)",
                    source.name(),
                    height.saturating_sub(FINALITY_SEARCH)
                ))
            })?,
    };
    check(trust, rng, &f)
}

/// The certificates a follower checked, by the height of the block each finalizes: the newest
/// [`CERTIFICATES_KEPT`] in memory, and on disk one in every
/// [`kassa_db::CERTIFICATE_SPACING`] heights, so that after a restart it can still serve
/// another follower from genesis. Served as a validator serves its own.
#[derive(Clone, Debug)]
struct Checked {
    newest: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
    db: Arc<kassa_db::Db>,
}

impl Checked {
    /// Keeps the certificate of `height`, the head: the newest in memory, and on disk one per
    /// stretch, whose height is then offered to sync the state from.
    fn keep(&self, height: u64, certificate: Vec<u8>) {
        match self.db.keep_certificate(height, &certificate) {
            Ok(true) => {
                if let Err(e) = self.db.offer_head() {
                    tracing::warn!(height, error = %e, "could not offer the state at a kept certificate");
                }
            }
            Ok(false) => {}
            // Only a certificate not served later: the chain is unaffected.
            Err(e) => tracing::warn!(height, error = %e, "could not store a checked certificate"),
        }
        let mut kept = self.newest.lock().expect("never poisoned");
        kept.insert(height, certificate);
        while kept.len() > CERTIFICATES_KEPT {
            kept.pop_first();
        }
    }
}

impl Certificates for Checked {
    fn finalization(&self, height: u64) -> BoxFuture<'_, Option<Vec<u8>>> {
        let found = self
            .newest
            .lock()
            .expect("never poisoned")
            .get(&height)
            .cloned();
        let found = found.or_else(|| self.db.certificate(height).ok().flatten());
        Box::pin(async move { found })
    }
}

/// What a follower counts.
struct Counts {
    verified: Counter,
    refused: Counter,
    lag: Gauge,
    switches: Counter,
    bytes: Counter,
}

impl Counts {
    fn register(node: &Node) -> Counts {
        let t = node.telemetry();
        Counts {
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
            lag: t.metric(
                "kassa_follower_lag_blocks",
                "Blocks its source had finalized that this follower had not, at its last sync \
                 round",
                Gauge::default,
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
        }
    }
}

/// A follower: its node, whom it believes, and where it syncs from.
pub struct Follower {
    node: Arc<Node>,
    trust: Trust,
    /// Those it was given, then those it found ([`Follower::add_source`]).
    sources: Mutex<Vec<Arc<dyn Source>>>,
    /// The source synced from (and forwarded to), moved on to the next when it fails.
    current: AtomicUsize,
    checked: Checked,
    counts: Counts,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field(
                "sources",
                &self
                    .sources()
                    .iter()
                    .map(|s| s.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// A follower of `sources` (at least one; the first is tried first) for `node`, which from
    /// now on serves the certificates it checks.
    pub fn new(node: Arc<Node>, trust: Trust, sources: Vec<Arc<dyn Source>>) -> Arc<Follower> {
        assert!(!sources.is_empty(), "a follower has a source");
        let checked = Checked {
            newest: Arc::default(),
            db: node.db().clone(),
        };
        node.set_certificates(Box::new(checked.clone()));
        Arc::new(Follower {
            counts: Counts::register(&node),
            node,
            trust,
            sources: Mutex::new(sources),
            current: AtomicUsize::new(0),
            checked,
        })
    }

    /// Serves the certificate of a height this node restored by state sync (checked then), and
    /// records the restore (which took `millis`) in the node's metrics.
    pub fn restored(&self, synced: &Synced, millis: u64) {
        self.checked
            .keep(synced.head.height, synced.certificate.clone());
        let t = self.node.telemetry();
        let gauge = |name: &str, help: &str, v: u64| {
            let g: Gauge = t.metric(name, help, Gauge::default);
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(
            "kassa_state_sync_height",
            "The height whose state this node restored by state sync when it started",
            synced.head.height,
        );
        gauge(
            "kassa_state_sync_answers",
            "Answers (ranges of the state's operations) this node restored its state from",
            synced.answers,
        );
        gauge(
            "kassa_state_sync_bytes",
            "Bytes of answers this node received for its state sync",
            synced.bytes,
        );
        gauge(
            "kassa_state_sync_ms",
            "Milliseconds this node's state sync took",
            millis,
        );
    }

    fn sources(&self) -> Vec<Arc<dyn Source>> {
        self.sources.lock().expect("never poisoned").clone()
    }

    /// The source it syncs from now, and its place among them.
    fn source(&self) -> (usize, Arc<dyn Source>) {
        let sources = self.sources.lock().expect("never poisoned");
        let at = self.current.load(Ordering::Relaxed) % sources.len();
        (at, sources[at].clone())
    }

    /// Adds a source it found (a peer another one told it of), tried after those it has.
    pub fn add_source(&self, source: Arc<dyn Source>) {
        self.sources.lock().expect("never poisoned").push(source);
    }

    /// The names of its sources, in the order it tries them.
    pub fn source_names(&self) -> Vec<String> {
        self.sources()
            .iter()
            .map(|s| s.name().to_string())
            .collect()
    }

    /// Removes the source named `name`, unless it is the only one; returns whether it did.
    /// The source synced from stays the same one unless it is the one removed (then the next).
    pub fn remove_source(&self, name: &str) -> bool {
        let mut sources = self.sources.lock().expect("never poisoned");
        let Some(at) = sources.iter().position(|s| s.name() == name) else {
            return false;
        };
        if sources.len() == 1 {
            return false;
        }
        sources.remove(at);
        let current = self.current.load(Ordering::Relaxed) % (sources.len() + 1);
        let current = if current > at { current - 1 } else { current };
        self.current
            .store(current % sources.len(), Ordering::Relaxed);
        true
    }

    /// Follows forever (or until a certified block does not apply: that error is returned).
    /// Transactions submitted to the node are forwarded to the current source.
    pub async fn run<E>(self: Arc<Self>, context: E) -> FollowError
    where
        E: Clock + Spawner + rand_core_10::CryptoRng,
    {
        let (relay, mut queue) = tokio::sync::mpsc::channel(consensus::RELAY_QUEUE);
        self.node.set_relay(relay);
        let forwarder = self.clone();
        context.child("forward").spawn(move |_| async move {
            while let Some(txs) = queue.recv().await {
                let (_, source) = forwarder.source();
                let n = txs.len();
                if let Err(e) = source.forward(txs).await {
                    tracing::warn!(source = %source.name(), txs = n, error = %e, "could not forward transactions");
                }
            }
        });
        let mut rng = context.child("rng");
        let mut failing = 0usize;
        loop {
            match self.step(&mut rng).await {
                Ok(0) => context.sleep(Duration::from_millis(250)).await,
                Ok(n) => {
                    failing = 0;
                    tracing::debug!(blocks = n, height = self.node.head().height, "synced");
                }
                Err(e @ FollowError::Fatal(_)) => return e,
                Err(e) => {
                    let (at, source) = self.source();
                    let sources = self.sources();
                    let next = (at + 1) % sources.len();
                    if failing < sources.len() {
                        tracing::warn!(source = %source.name(), next = %sources[next].name(), error = %e, "sync failed; trying the next source");
                    }
                    self.counts.switches.inc();
                    self.current.store(next, Ordering::Relaxed);
                    failing += 1;
                    // Once every source failed in a row, wait before going round again.
                    if failing.is_multiple_of(sources.len()) {
                        context.sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    /// One round from the current source: up to its first certificate above this node's head.
    /// Returns how many blocks were committed.
    pub async fn step(&self, rng: &mut impl rand_core_10::CryptoRng) -> Result<usize, FollowError> {
        let (_, source) = self.source();
        let head = self.node.head();
        let from = head.height + 1;
        let theirs = source.height().await?;
        let lag = |ours: u64| i64::try_from(theirs.saturating_sub(ours)).unwrap_or(i64::MAX);
        self.counts.lag.set(lag(head.height));
        let Some(f) = source.finality(from).await? else {
            if theirs > from + FINALITY_SEARCH {
                // Ahead of the whole window yet nothing to show in it: it pruned those heights
                // or, a follower, keeps only its newest certificates. Another source may have
                // them; waiting on this one would wait forever.
                return Err(SourceError::Pruned(format!(
                    "{} is at height {theirs} but has no finalization certificate from height {from} to {}",
                    source.name(),
                    from + FINALITY_SEARCH
                ))
                .into());
            }
            // Its next certificate is not there yet.
            return Ok(0);
        };
        if !(from..=from + FINALITY_SEARCH).contains(&f.height) {
            return Err(FollowError::Untrusted(format!(
                "finality at an unexpected height {}",
                f.height
            )));
        }
        let certified = check(&self.trust, rng, &f).inspect_err(|_| {
            self.counts.refused.inc();
        })?;
        self.counts.verified.inc();
        let mut blocks: Vec<Block> = Vec::new();
        let mut parent = head.block_hash;
        for h in from..=certified.height {
            let bytes = source.block(h).await?;
            self.counts
                .bytes
                .inc_by(u64::try_from(bytes.len()).expect("bounded block"));
            let block = Block::decode(&bytes)
                .map_err(|e| FollowError::Untrusted(format!("block {h}: {e}")))?;
            if block.header.height != h || block.header.parent != parent {
                return Err(FollowError::Untrusted(format!(
                    "block {h} does not link to the chain below it"
                )));
            }
            parent = block.header.hash();
            blocks.push(block);
        }
        if parent != certified.header.hash() {
            return Err(FollowError::Untrusted(format!(
                "block {} is not the block its certificate certifies",
                certified.height
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
            self.node
                .finalize(b, durability)
                .map_err(|e| FollowError::Fatal(format!("block {}: {e}", b.header.height)))?;
        }
        // Served once the block it certifies is committed here.
        self.checked.keep(certified.height, f.certificate);
        self.counts.lag.set(lag(self.node.head().height));
        Ok(n)
    }
}
