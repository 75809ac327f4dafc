//! The running node as the rest of the process sees it: the application behind a lock, a
//! broadcast of finalized blocks (for the event stream), a watch of the head (for clients that
//! wait for inclusion), and, on a development chain, the faucet.
//!
//! Over 600 lines: admission (hashes, accounts and early refusals found before the lock, then
//! signatures, then the mempool) and the steps consensus drives share the same handles and
//! locks, and read best in one place.

use crate::app::{App, AppError, Finalized, lock};
use crate::mempool::{AdmitError, Mempool};
use crate::telemetry::{NodeMetrics, Telemetry, millis};
use crate::validator::PublicKey;
use futures::future::BoxFuture;
use kassa_db::{Db, Durability, Head};
use kassa_state::records::{Account, ChainParams};
use kassa_types::tx::Body;
use kassa_types::{Address, AssetId, Block, Hash, SecretKey, SignedTransaction, Transaction};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc, watch};

/// How many finalized blocks the event stream buffers for slow subscribers.
const EVENTS_BUFFER: usize = 256;

/// Relayed transactions held for one signature batch: when this many are waiting they are
/// admitted at once, without waiting for a block or the relay's timer.
pub const RELAYED_BATCH: usize = 2_048;

/// A development faucet: a funded key that sends KAS to whoever asks.
#[derive(Debug)]
pub struct Faucet {
    pub key: SecretKey,
    /// KAS base units per request.
    pub amount: u64,
}

/// Where a node finds the finalization certificate of a height (marshal's archive on a
/// validator).
pub trait Certificates: Send + Sync + std::fmt::Debug {
    /// The encoded finalization certificate of the block at `height`, if stored here.
    fn finalization(&self, height: u64) -> BoxFuture<'_, Option<Vec<u8>>>;
}

/// Told about each block this node finalizes, right after it is committed and before the next
/// one (so the database holds exactly the state after that block). Simulations audit here.
pub trait Observer: Send + Sync + std::fmt::Debug {
    fn finalized(&self, db: &Db, finalized: &Finalized);
}

/// A finalization certificate and the block it finalizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finality {
    pub height: u64,
    pub block: Hash,
    /// The certified block's header, encoded (it hashes to `block` and carries the state root):
    /// all a light client needs of the block.
    pub header: Vec<u8>,
    /// The encoded certificate (Commonware simplex `Finalization`, ed25519 signatures).
    pub certificate: Vec<u8>,
}

/// How far past the asked height [`Node::finality`] looks for a certificate (a block finalized
/// through a descendant's certificate has none of its own).
pub const FINALITY_SEARCH: u64 = 1_024;

/// The node, shared between consensus, the API and the command line.
#[derive(Debug)]
pub struct Node {
    app: Mutex<App>,
    /// The application's mempool: admissions take this lock only, never the application's.
    mempool: Arc<Mutex<Mempool>>,
    db: Arc<Db>,
    params: ChainParams,
    /// Transactions other validators relayed, not yet admitted: their signatures are checked
    /// later, together, as one batch (see [`Node::queue_relayed`]). Bounded by
    /// [`RELAYED_BATCH`] plus one relay message.
    relayed: Mutex<RelayQueue>,
    /// What finalization announces.
    announce: Announce,
    /// What the network side plugs in.
    hooks: Hooks,
    /// What a development chain or an auditor is also served.
    extras: Extras,
    /// Every metric of the process (the API's too), exposed through the runtime's registry.
    telemetry: Telemetry,
    metrics: NodeMetrics,
    /// When this node proposed each block it has not seen finalized yet (wall clock, for the
    /// finalization latency only; never seen by the state machine).
    proposed_at: Mutex<BTreeMap<Hash, Instant>>,
}

/// What finalization announces: each finalized block, and the head.
#[derive(Debug)]
struct Announce {
    events: broadcast::Sender<Arc<Finalized>>,
    head: watch::Sender<Head>,
}

/// What whoever runs the network side plugs in, each set once.
#[derive(Debug, Default)]
struct Hooks {
    /// Where transactions admitted here go next: to the other validators (p2p gossip) or, on a
    /// follower, to its bootstrapper.
    relay: OnceLock<mpsc::Sender<Vec<SignedTransaction>>>,
    /// Told of each validator that relayed a forged signature (to block it).
    forgers: OnceLock<Forgers>,
    certificates: OnceLock<Box<dyn Certificates>>,
    observer: OnceLock<Box<dyn Observer>>,
    /// Fault injection only: alters each block this node proposes (a Byzantine proposer).
    tamper: OnceLock<Tamper>,
}

struct Tamper(Box<dyn Fn(&mut Block) + Send + Sync>);

impl std::fmt::Debug for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tamper")
    }
}

/// What a node serves beside the chain: a faucet (development chains only) and the genesis file
/// it started from.
#[derive(Debug)]
struct Extras {
    faucet: Option<Faucet>,
    genesis_json: Option<String>,
}

/// Relayed transactions waiting for admission, by message, with the validator that sent each.
#[derive(Debug, Default)]
struct RelayQueue {
    messages: Vec<(PublicKey, Vec<SignedTransaction>)>,
    /// How many transactions `messages` hold.
    txs: usize,
}

/// What [`Node::set_forgers`] set.
struct Forgers(Box<dyn Fn(PublicKey) + Send + Sync>);

impl std::fmt::Debug for Forgers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Forgers")
    }
}

/// What admission found of transactions before taking the mempool's lock: their hashes and
/// sizes, and their signers' accounts in the state committed at height `read_at`.
struct Known {
    read_at: Option<u64>,
    accounts: Vec<Account>,
    sized: Vec<(Hash, usize)>,
}

impl Node {
    /// Wraps an opened application.
    pub fn new(app: App, faucet: Option<Faucet>) -> Arc<Node> {
        Self::with_genesis(app, faucet, None)
    }

    /// Like [`Node::new`], also serving the genesis file it was started from (for auditors).
    pub fn with_genesis(
        app: App,
        faucet: Option<Faucet>,
        genesis_json: Option<String>,
    ) -> Arc<Node> {
        let (events, _) = broadcast::channel(EVENTS_BUFFER);
        let (head, _) = watch::channel(app.head().clone());
        let telemetry = Telemetry::default();
        let mempool = app.shared_mempool();
        let metrics = NodeMetrics::register(&telemetry, move || {
            i64::try_from(lock(&mempool).len()).unwrap_or(i64::MAX)
        });
        metrics
            .height
            .set(i64::try_from(app.head().height).unwrap_or(i64::MAX));
        Arc::new(Node {
            db: app.db().clone(),
            params: app.params().clone(),
            mempool: app.shared_mempool(),
            app: Mutex::new(app),
            relayed: Mutex::new(RelayQueue::default()),
            announce: Announce { events, head },
            hooks: Hooks::default(),
            extras: Extras {
                faucet,
                genesis_json,
            },
            telemetry,
            metrics,
            proposed_at: Mutex::new(BTreeMap::new()),
        })
    }

    /// Runs `f` with the application locked.
    pub fn with_app<R>(&self, f: impl FnOnce(&mut App) -> R) -> R {
        f(&mut lock(&self.app))
    }

    /// The database (committed state, blocks, receipts, proofs).
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    /// Chain parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The last finalized block.
    pub fn head(&self) -> Head {
        self.announce.head.borrow().clone()
    }

    /// Number of transactions waiting.
    pub fn mempool_len(&self) -> usize {
        lock(&self.mempool).len()
    }

    /// Whether the transaction `hash` is waiting in the mempool.
    pub fn is_waiting(&self, hash: &Hash) -> bool {
        lock(&self.mempool).contains(hash)
    }

    /// Admits transactions, their signatures checked first (as batches, without any lock),
    /// against the committed state, without the application's lock.
    ///
    /// What the mempool would refuse whatever the signature (a duplicate, or no room for it)
    /// is refused first, without checking the signature: a flood it has no room for costs a
    /// hash and a lookup per transaction.
    fn admit(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<Result<Hash, AdmitError>>, AppError> {
        let reader = self.db.reader()?;
        let read_at = reader.height();
        // The reads and hashes before the lock: admission waits for nothing else.
        let accounts = crate::mempool::signers_accounts(&reader, &txs);
        drop(reader);
        let sized = crate::mempool::hashes_and_sizes(&txs);
        let early = lock(&self.mempool).refusals_before_signatures(
            &txs,
            &sized,
            &accounts,
            &self.params,
            self.head().height + 1,
        );
        let (rest, known) = if early.iter().all(Option::is_none) {
            // Nothing refused early (the usual case): nothing to copy.
            let known = Known {
                read_at,
                accounts,
                sized,
            };
            (txs, known)
        } else {
            let mut rest = Vec::with_capacity(txs.len());
            let mut known = Known {
                read_at,
                accounts: Vec::with_capacity(txs.len()),
                sized: Vec::with_capacity(txs.len()),
            };
            let all = txs.into_iter().zip(accounts).zip(sized).zip(&early);
            for (((t, account), sized), e) in all {
                if e.is_none() {
                    rest.push(t);
                    known.accounts.push(account);
                    known.sized.push(sized);
                }
            }
            (rest, known)
        };
        let valid = crate::mempool::signatures_each_valid(&rest);
        let mut admitted = self.admit_checked(rest, &valid, Some(known))?.into_iter();
        Ok(early
            .into_iter()
            .map(|e| match e {
                Some(refused) => Err(refused),
                None => admitted.next().expect("one result per transaction"),
            })
            .collect())
    }

    /// Admits transactions whose signatures were checked: `valid` is what
    /// [`crate::mempool::signatures_each_valid`] says of them. What is `known` of them is used
    /// as it is, but their signers' accounts only if nothing was committed since they were read
    /// (the same state, so the same accounts); the rest is found here.
    fn admit_checked(
        &self,
        txs: Vec<SignedTransaction>,
        valid: &[bool],
        known: Option<Known>,
    ) -> Result<Vec<Result<Hash, AdmitError>>, AppError> {
        let reader = self.db.reader()?;
        let (accounts, sized) = match known {
            Some(k) if k.read_at == reader.height() => (k.accounts, k.sized),
            Some(k) => (crate::mempool::signers_accounts(&reader, &txs), k.sized),
            None => (
                crate::mempool::signers_accounts(&reader, &txs),
                crate::mempool::hashes_and_sizes(&txs),
            ),
        };
        drop(reader);
        let next = self.head().height + 1;
        Ok(lock(&self.mempool).admit_batch_checked(
            txs,
            valid,
            &sized,
            &accounts,
            &self.params,
            next,
        ))
    }

    /// Admits transactions from a client to the mempool, and relays the admitted ones.
    pub fn submit(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<Vec<Result<Hash, AdmitError>>, AppError> {
        // The signatures are checked before taking any lock, and admission takes only the
        // mempool's: this runs in parallel with block building and commits.
        if self.hooks.relay.get().is_none() {
            // No peers (a node of one, or before consensus starts): nothing to copy for them.
            return self.admit(txs);
        }
        let results = self.admit(txs.clone())?;
        let admitted: Vec<SignedTransaction> = txs
            .into_iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(t, _)| t)
            .collect();
        self.relay(admitted);
        Ok(results)
    }

    /// Holds transactions a peer relayed until [`Node::admit_queued_relayed`]; returns whether
    /// [`RELAYED_BATCH`] are now waiting, so the caller should admit them now.
    ///
    /// A relayed transaction is not needed here until this node builds or checks a block, and
    /// both admit what is waiting first (and the relay admits it on a timer besides, so that
    /// the mempool shows it soon on a quiet chain). Checking the signatures of everything
    /// relayed since then as one batch is cheaper per signature than one batch per message (a
    /// message carries what a peer admitted since its last one, often a handful): with IFMA,
    /// about 9 µs in a batch of hundreds, 14 µs in one of 25, 41 µs alone.
    pub fn queue_relayed(&self, from: PublicKey, txs: Vec<SignedTransaction>) -> bool {
        let mut queue = lock(&self.relayed);
        queue.txs += txs.len();
        queue.messages.push((from, txs));
        queue.txs >= RELAYED_BATCH
    }

    /// Admits every queued relayed transaction ([`Node::queue_relayed`]), their signatures
    /// checked as one batch (not relayed again: validators are fully connected). Returns how
    /// many were new here.
    ///
    /// A validator relays only transactions it admitted, so only transactions whose signatures
    /// it checked: one that relays a forged signature is faulty or malicious, and is reported
    /// to [`Node::set_forgers`] (which blocks it) instead of making this node check its
    /// forgeries forever.
    pub fn admit_queued_relayed(&self) -> Result<usize, AppError> {
        let queue = std::mem::take(&mut *lock(&self.relayed));
        if queue.txs == 0 {
            return Ok(0);
        }
        let mut txs = Vec::with_capacity(queue.txs);
        let mut senders = Vec::with_capacity(queue.messages.len());
        for (from, message) in queue.messages {
            txs.extend(message);
            senders.push((from, txs.len()));
        }
        let valid = crate::mempool::signatures_each_valid(&txs);
        let mut start = 0;
        for (from, end) in senders {
            if valid[start..end].contains(&false) {
                tracing::warn!(peer = %from, "a validator relayed a forged signature");
                if let Some(forgers) = self.hooks.forgers.get() {
                    (forgers.0)(from);
                }
            }
            start = end;
        }
        let results = self.admit_checked(txs, &valid, None)?;
        Ok(results.iter().filter(|r| r.is_ok()).count())
    }

    /// Sets who is told of validators that relay forged signatures (once; later calls are
    /// ignored).
    pub fn set_forgers(&self, report: Box<dyn Fn(PublicKey) + Send + Sync>) {
        let _ = self.hooks.forgers.set(Forgers(report));
    }

    /// Sets who is told about each finalized block (once; later calls are ignored).
    pub fn set_observer(&self, observer: Box<dyn Observer>) {
        let _ = self.hooks.observer.set(observer);
    }

    /// Fault injection for the simulations: `tamper` alters every block this node proposes,
    /// after it was built and executed here, so the node behaves as a Byzantine proposer (once;
    /// later calls are ignored). Never set by `kassa`.
    pub fn set_proposal_tamper(&self, tamper: Box<dyn Fn(&mut Block) + Send + Sync>) {
        let _ = self.hooks.tamper.set(Tamper(tamper));
    }

    /// Sets where finalization certificates are found (once; later calls are ignored).
    pub fn set_certificates(&self, certificates: Box<dyn Certificates>) {
        let _ = self.hooks.certificates.set(certificates);
    }

    /// The first finalization certificate at or above `height` (up to [`FINALITY_SEARCH`]
    /// heights on, and not above the head): it finalizes that block and, through the parent
    /// links, every block below it. `None` if there is none here (a follower keeps only those it checked, the newest 1,024).
    pub async fn finality(&self, height: u64) -> Option<Finality> {
        let certificates = self.hooks.certificates.get()?;
        let head = self.head().height;
        let last = head.min(height.saturating_add(FINALITY_SEARCH));
        // Below what a pruning node keeps there are no headers to serve with a certificate.
        let kept = self.db.pruned_below().unwrap_or(0);
        for h in height.max(1).max(kept)..=last {
            if let Some(certificate) = certificates.finalization(h).await {
                let header = self.db.header(h).ok().flatten()?;
                return Some(Finality {
                    height: h,
                    block: header.hash(),
                    header: kassa_types::codec::encode(&header),
                    certificate,
                });
            }
        }
        None
    }

    /// Sets where admitted transactions are relayed (once; later calls are ignored).
    pub fn set_relay(&self, relay: mpsc::Sender<Vec<SignedTransaction>>) {
        let _ = self.hooks.relay.set(relay);
    }

    fn relay(&self, txs: Vec<SignedTransaction>) {
        if txs.is_empty() {
            return;
        }
        if let Some(relay) = self.hooks.relay.get()
            && relay.try_send(txs).is_err()
        {
            // The relay is saturated (or gone): the transactions stay in this mempool and are
            // included when this node proposes, or re-sent by their client.
            tracing::debug!("transaction relay full; not relayed");
        }
    }

    /// Builds a block (consensus asks when this node leads).
    pub fn propose(
        &self,
        parent: &Hash,
        time_ms: u64,
        proposer: Address,
        consensus: &[u8],
    ) -> Result<Block, AppError> {
        // What peers relayed goes into this block too.
        self.admit_queued_relayed()?;
        // Built without the application's lock: finalizations and admissions go on meanwhile.
        let base = self.with_app(|a| a.base(parent))?;
        let (mut block, executing) = base.build(time_ms, proposer, consensus)?;
        if !self.with_app(|a| a.adopt(executing)) {
            return Err(AppError::UnknownParent(*parent));
        }
        let mut proposed = lock(&self.proposed_at);
        // Bounded: entries are removed at finalization, and at most a window of views is open.
        if proposed.len() > 1_024 {
            proposed.clear();
        }
        proposed.insert(block.header.hash(), Instant::now());
        if let Some(Tamper(tamper)) = self.hooks.tamper.get() {
            tamper(&mut block);
        }
        Ok(block)
    }

    /// Whether the block `id` at `height` is executed here: finalized (committed) or pending.
    pub fn knows(&self, id: &Hash, height: u64) -> bool {
        self.with_app(|a| a.knows(id, height))
    }

    /// The process's metrics: the node's, and what the API, the follower and the runtime
    /// register (see [`Telemetry`]).
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Checks a peer's block.
    pub fn verify(&self, block: &Block, now_ms: u64, max_future_ms: u64) -> Result<bool, AppError> {
        // The block's transactions that peers relayed here are then in the mempool, their
        // signatures checked in one batch with the rest of the queue, not again for the block.
        self.admit_queued_relayed()?;
        // Checked without the application's lock, like a proposal is built.
        self.with_app(|a| a.prepare_verify(block))?
            .conclude(block, now_ms, max_future_ms, |e| {
                self.with_app(|a| a.adopt(e))
            })
    }

    /// Applies a finalized block and tells subscribers. With [`Durability::Deferred`], the
    /// block is on disk only after a later immediate commit (or [`kassa_db::Db::sync`]):
    /// the caller must not acknowledge it to consensus before.
    pub fn finalize(
        &self,
        block: &Block,
        durability: Durability,
    ) -> Result<Option<Arc<Finalized>>, AppError> {
        let started = Instant::now();
        let previous_time = self.head().time_ms;
        let Some(commit) = self.with_app(|a| a.begin_finalize(block))? else {
            return Ok(None);
        };
        // Written without the application's lock: the next block is built meanwhile.
        let written = commit.write(durability);
        let (f, leftovers) = self.with_app(|a| {
            let (f, leftovers) = a.end_finalize(commit, written)?;
            if let Some(observer) = self.hooks.observer.get() {
                observer.finalized(&self.db, &f);
            }
            Ok::<_, AppError>((f, leftovers))
        })?;
        let waits = leftovers.run()?;
        let m = &self.metrics;
        for wait in waits {
            m.mempool_wait.observe(wait.as_secs_f64());
        }
        let applied = started.elapsed();
        m.apply_ms.set(millis(applied));
        m.apply.observe(applied.as_secs_f64());
        m.txs
            .inc_by(u64::try_from(f.block.txs.len()).expect("bounded"));
        m.block_interval_ms
            .set(i64::try_from(f.head.time_ms.saturating_sub(previous_time)).unwrap_or(i64::MAX));
        m.height
            .set(i64::try_from(f.head.height).unwrap_or(i64::MAX));
        let proposed = lock(&self.proposed_at).remove(&f.head.block_hash);
        if let Some(at) = proposed {
            let latency = at.elapsed();
            m.finalization_latency_ms.set(millis(latency));
            m.finalization_latency.observe(latency.as_secs_f64());
        }
        // Every so many heights, the state after the block is offered to followers that sync
        // it and to audits (validators serve every height's certificate; a follower offers the
        // heights of those it keeps, too).
        if self.db.offers_at(f.head.height)
            && let Err(e) = self.db.offer_head()
        {
            tracing::warn!(height = f.head.height, error = %e, "could not offer the state");
        }
        let f = Arc::new(f);
        self.announce.head.send_replace(f.head.clone());
        // No subscribers is fine.
        let _ = self.announce.events.send(f.clone());
        Ok(Some(f))
    }

    /// Finalized blocks as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Finalized>> {
        self.announce.events.subscribe()
    }

    /// The head, as it changes.
    pub fn watch_head(&self) -> watch::Receiver<Head> {
        self.announce.head.subscribe()
    }

    /// The genesis file this node started from, if it was given one.
    pub fn genesis_json(&self) -> Option<&str> {
        self.extras.genesis_json.as_deref()
    }

    /// `who`'s committed nonce and the nonce its next transaction should carry (counting waiting
    /// transactions). The committed nonce is read while the mempool is locked: a block that
    /// finalizes meanwhile has either not been committed yet, or its transactions are still
    /// waiting with nonces below the committed one, so the two always agree.
    pub fn nonces(&self, who: &Address) -> Result<(u64, u64), AppError> {
        let mempool = lock(&self.mempool);
        let committed = kassa_state::exec::nonce(&self.db.reader()?, who);
        Ok((committed, mempool.next_nonce(who, committed)))
    }

    /// Whether this node has a faucet (development chains only).
    pub fn has_faucet(&self) -> bool {
        self.extras.faucet.is_some()
    }

    /// Sends the faucet's amount of KAS to `to`. `None` if there is no faucet.
    pub fn drip(&self, to: Address) -> Option<Result<Hash, AdmitError>> {
        let faucet = self.extras.faucet.as_ref()?;
        let from = faucet.key.address();
        // The mempool stays locked from choosing the nonce to admitting, so that two drips
        // never take the same one.
        let mut mempool = lock(&self.mempool);
        let admitted = (|| {
            let reader = self.db.reader().map_err(|_| AdmitError::Full)?;
            let head = self.head().height;
            let nonce = mempool.next_nonce(&from, kassa_state::exec::nonce(&reader, &from));
            let tx = Transaction {
                chain_id: self.params.chain_id.clone(),
                genesis: self.params.genesis_hash,
                signer: from,
                nonce,
                fee: self.params.min_fee,
                expiry_height: head + 1_000,
                body: Body::Transfer {
                    to,
                    asset: AssetId::NATIVE,
                    amount: faucet.amount,
                },
            }
            .sign(&faucet.key);
            mempool
                .admit(tx.clone(), &reader, &self.params, head + 1)
                .map(|h| (h, tx))
        })();
        drop(mempool);
        Some(admitted.map(|(h, tx)| {
            self.relay(vec![tx]);
            h
        }))
    }
}
