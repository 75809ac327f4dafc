//! The consensus adapter: Commonware `simplex` (BFT ordering and finalization) and `marshal`
//! (block dissemination, storage, in-order delivery of finalized blocks) drive the [`Node`].
//!
//! - [`CBlock`] is a Kassa block as the engine sees it. Its digest is the Kassa block id
//!   (`header.hash()`), which commits to the engine's context (round, leader, parent view)
//!   carried opaquely in `header.consensus`.
//! - [`KassaApp`] implements the engine's `Application`: `propose` paces blocks and asks the node
//!   to build one; `verify` re-executes a peer's block. Both first make sure every
//!   not-yet-finalized ancestor is executed (after a restart, marshal hands them over).
//! - [`Finalizer`] receives finalized blocks in height order, at least once, and acknowledges each
//!   only after the node committed it (a crash before the ack means a re-delivery, which the node
//!   skips by height).
//!
//! The same code runs one validator (`kassa node --dev`) or many: only the validator set and the
//! peer addresses differ.

use crate::app::AppError;
use crate::handle::{Certificates, Node};
use bytes::{BufMut, Bytes};
use commonware_actor::Feedback;
use commonware_broadcast::buffered;
use commonware_codec::{
    Buf, Decode as _, DecodeExt as _, Encode as _, EncodeSize, Error as CodecError, Read, Write,
};
use commonware_consensus::marshal::ancestry::Ancestry;
use commonware_consensus::marshal::core::Actor as MarshalActor;
use commonware_consensus::marshal::resolver::p2p as marshal_resolver;
use commonware_consensus::marshal::standard::{Deferred, Standard};
use commonware_consensus::marshal::{self, Update};
use commonware_consensus::simplex::config::{ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::types::{Context as SimplexContext, Finalization};
use commonware_consensus::types::{Epoch, FixedEpocher, Height, Round, View, ViewDelta};
use commonware_consensus::{
    Application, Block as ConsensusBlock, BoundedBlock, CertifiableBlock, Heightable, Reporter,
    simplex,
};
use commonware_cryptography::Digest as _;
use commonware_cryptography::certificate::{ConstantProvider, Verifier as _};
use commonware_cryptography::{
    ChaCha20Poly1305, Digested, Digestible, Sha256, Signer as _, ed25519, sha256,
};
use commonware_p2p::authenticated::{self, lookup};
use commonware_p2p::{
    Address as PeerAddress, AddressableManager as _, Blocker, Provider, Receiver as P2pReceiver,
    Recipients, Sender as P2pSender, max_message_size,
};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::{CacheRef, page_size};
use commonware_runtime::{
    Clock, Metrics, Quota, Spawner, Storage, Supervisor as _, tokio as cw_tokio,
};
use commonware_storage::archive::immutable;
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::{
    Acknowledgement as _, NZDuration, NZU32, NZU64, NZUsize, TryCollect as _, ordered::Map,
    ordered::Set, union,
};
use futures::StreamExt as _;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use kassa_db::Durability;
use kassa_types::codec::{self as kcodec, BoundedVec};
use kassa_types::{Address, BLOCK_SIZE_MAX, Block, Hash, SignedTransaction, TX_SIZE_MAX};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Block ids, parent links and the engine's payload.
pub type Digest = sha256::Digest;
/// The engine's context of a proposal.
pub type Context = SimplexContext<Digest, ed25519::PublicKey>;
/// Validators sign votes with ed25519 (attributable: a double vote is provable).
pub type Scheme = simplex::scheme::ed25519::Scheme;

const IO_BUFFER: NonZeroUsize = NZUsize!(64 * 1024);
const PAGE_CACHE_PAGES: NonZeroUsize = NZUsize!(2_048);
const MAILBOX: NonZeroUsize = NZUsize!(1_024);

/// p2p channels (identical on every validator).
const CH_VOTES: u64 = 0;
const CH_CERTS: u64 = 1;
const CH_RESOLVER: u64 = 2;
const CH_BACKFILL: u64 = 3;
const CH_BROADCAST: u64 = 4;
const CH_TXS: u64 = 5;

/// At most this many transactions travel in one relay message.
const RELAY_BATCH_MAX: usize = 256;
/// Transactions relayed between validators, as one p2p message.
type RelayBatch = BoundedVec<SignedTransaction, RELAY_BATCH_MAX>;
/// The largest relay message accepted.
const RELAY_MSG_MAX: usize = 8 + RELAY_BATCH_MAX * TX_SIZE_MAX;
/// Batches waiting to be relayed; beyond this, new transactions stay local (see `Node::relay`).
pub const RELAY_QUEUE: usize = 1_024;
/// Relayed transactions wait at most this long to be admitted, if no block is built or checked
/// here first (see `Node::queue_relayed`).
const RELAYED_ADMIT_EVERY: Duration = Duration::from_millis(100);

/// A Kassa block as the engine sees it. Its canonical bytes are computed once, when it is made
/// or read, because the engine asks for a block's size and bytes many times (broadcast, storage,
/// backfill); the block cannot change afterwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CBlock {
    block: Block,
    context: Context,
    digest: Digest,
    encoded: Bytes,
}

fn digest_of(h: &Hash) -> Digest {
    sha256::Digest(h.0)
}

impl CBlock {
    /// Wraps a block, decoding the engine context it carries.
    pub fn new(block: Block) -> Result<CBlock, CodecError> {
        let encoded = Bytes::from(block.encode());
        CBlock::with_encoding(block, encoded)
    }

    /// `block` with `encoded`, which must be its canonical encoding.
    fn with_encoding(block: Block, encoded: Bytes) -> Result<CBlock, CodecError> {
        let context = Context::decode(Bytes::copy_from_slice(&block.header.consensus))?;
        Ok(CBlock {
            digest: digest_of(&block.header.hash()),
            context,
            block,
            encoded,
        })
    }

    /// The Kassa block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The Kassa block, unwrapped.
    pub fn into_block(self) -> Block {
        self.block
    }
}

impl Write for CBlock {
    fn write(&self, buf: &mut impl BufMut) {
        self.encoded.write(buf);
    }
}

impl EncodeSize for CBlock {
    fn encode_size(&self) -> usize {
        self.encoded.encode_size()
    }
}

impl Read for CBlock {
    /// The largest encoded block accepted.
    type Cfg = usize;

    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        let bytes = Bytes::read_cfg(buf, &(..=*max).into())?;
        let block = Block::decode(&bytes).map_err(|_| CodecError::Invalid("kassa", "block"))?;
        // Decoding is canonical (one encoding per block, trailing bytes refused), so the bytes
        // read are the block's encoding.
        CBlock::with_encoding(block, bytes)
    }
}

impl Digestible for CBlock {
    type Digest = Digest;
    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for CBlock {
    fn height(&self) -> Height {
        Height::new(self.block.header.height)
    }
}

impl ConsensusBlock for CBlock {
    fn parent(&self) -> Digest {
        digest_of(&self.block.header.parent)
    }
}

impl CertifiableBlock for CBlock {
    type Context = Context;
    fn context(&self) -> Context {
        self.context.clone()
    }
}

impl BoundedBlock for CBlock {
    fn max_encode_size(max: &usize) -> usize {
        *max + 10 // varint length prefix
    }
}

/// The network and signing namespace of a chain (so that chains never cross-talk or replay
/// each other's votes).
pub fn namespace(chain_id: &str) -> Vec<u8> {
    format!("KASSA_{chain_id}").into_bytes()
}

/// The engine context of the genesis block: identical on every node of a chain.
pub fn genesis_context() -> Vec<u8> {
    let leader = ed25519::PrivateKey::from_seed(0).public_key();
    Context {
        round: Round::new(Epoch::zero(), View::zero()),
        leader,
        parent: (View::zero(), Digest::EMPTY),
    }
    .encode()
    .to_vec()
}

fn now_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `Application` the engine drives.
#[derive(Clone, Debug)]
pub struct KassaApp {
    node: Arc<Node>,
    /// Minimum spacing between a block and its parent (the leader's pacing).
    block_time: Duration,
    /// How far in the future a peer's timestamp may be before we wait for our clock to catch up.
    max_clock_drift: Duration,
}

impl KassaApp {
    /// Makes sure every ancestor of the block `ancestry` will yield next is executed: pulls
    /// ancestors until one the node knows, then verifies the unknown ones oldest first.
    async fn catch_up(
        &self,
        first: &Digested<CBlock>,
        ancestry: &mut impl Ancestry<CBlock>,
    ) -> bool {
        let mut unknown = Vec::new();
        let mut at = first.inner().block.clone();
        while !self.node.knows(&at.header.parent, at.header.height - 1) {
            let Some(parent) = ancestry.next().await else {
                return false;
            };
            at = parent.inner().block.clone();
            unknown.push(at.clone());
        }
        for b in unknown.iter().rev() {
            match self.node.verify(b, u64::MAX / 2, 0) {
                Ok(true) => {}
                Ok(false) | Err(_) => return false,
            }
        }
        true
    }
}

impl<E: Clock> Application<E> for KassaApp {
    type SigningScheme = Scheme;
    type Context = Context;
    type Block = CBlock;
    type Input = ();

    async fn propose(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: impl Ancestry<CBlock>,
        _: (),
    ) -> Option<Digested<CBlock>> {
        let parent = ancestry.next().await?;
        let p = &parent.inner().block.header;
        if !self.node.knows(&p.hash(), p.height) {
            // The parent itself is not executed yet (e.g. after a restart).
            let mut chain = vec![parent.inner().block.clone()];
            while !self.node.knows(
                &chain.last().expect("non-empty").header.parent,
                chain.last().expect("non-empty").header.height - 1,
            ) {
                chain.push(ancestry.next().await?.inner().block.clone());
            }
            for b in chain.iter().rev() {
                if !self.node.verify(b, u64::MAX / 2, 0).ok()? {
                    return None;
                }
            }
        }
        // Pacing: simplex proposes as soon as the parent is certified; the leader waits.
        let block_ms = u64::try_from(self.block_time.as_millis()).unwrap_or(u64::MAX);
        let earliest = p.timestamp_ms.saturating_add(block_ms);
        let now = now_ms(runtime.current());
        if now < earliest {
            runtime.sleep(Duration::from_millis(earliest - now)).await;
        }
        let time_ms = now_ms(runtime.current()).max(earliest);
        let proposer = Address(context.leader.encode().as_ref().try_into().ok()?);
        let started = std::time::Instant::now();
        let built = self
            .node
            .propose(&p.hash(), time_ms, proposer, &context.encode());
        tracing::debug!(took_us = started.elapsed().as_micros(), "proposal built");
        let block = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "could not build a block");
                return None;
            }
        };
        let cblock = CBlock::new(block).ok()?;
        let digest = cblock.digest();
        Some(Digested::precomputed(cblock, digest))
    }

    async fn verify(
        &mut self,
        (runtime, context): (E, Context),
        mut ancestry: impl Ancestry<CBlock>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        if !self.catch_up(&block, &mut ancestry).await {
            return false;
        }
        let b = &block.inner().block;
        // The header names its proposer: it must be this round's leader.
        if context.leader.encode().as_ref() != b.header.proposer.0.as_slice() {
            return false;
        }
        // A timestamp ahead of our clock is a temporary condition: wait rather than refuse.
        let drift = u64::try_from(self.max_clock_drift.as_millis()).unwrap_or(u64::MAX);
        let now = now_ms(runtime.current());
        if b.header.timestamp_ms > now + drift {
            runtime
                .sleep(Duration::from_millis(b.header.timestamp_ms - now - drift))
                .await;
        }
        match self.node.verify(b, now_ms(runtime.current()), drift) {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "could not verify a block");
                false
            }
        }
    }
}

/// Receives finalized blocks from marshal and hands them to [`run_finalizer`].
#[derive(Clone, Debug)]
pub struct Finalizer {
    sender: mpsc::UnboundedSender<Update<CBlock>>,
}

impl Reporter for Finalizer {
    type Activity = Update<CBlock>;

    fn report(&mut self, update: Update<CBlock>) -> Feedback {
        match self.sender.unbounded_send(update) {
            Ok(()) => Feedback::Ok,
            Err(_) => Feedback::Closed,
        }
    }
}

/// The most finalized blocks committed as one group: deferred, then one immediate commit.
const GROUP_COMMIT_MAX: NonZeroUsize = NZUsize!(16);

/// Applies finalized blocks in order and acknowledges each only once it is durable. Returns an
/// error if a finalized block cannot be applied: executing it gave a different state than its
/// header commits to, or the database failed. The node must not go on serving a wrong state.
///
/// Group commit: when the next finalized block is already waiting, this one is committed with
/// [`Durability::Deferred`] (applied and visible at once, on disk with the group's last block,
/// which is committed immediately), so a run of blocks costs one fsync and each page they all
/// touch is written once. Acknowledgements wait for the group's immediate commit, so marshal
/// re-delivers after a crash whatever was not yet on disk.
async fn run_finalizer(
    node: Arc<Node>,
    mut updates: mpsc::UnboundedReceiver<Update<CBlock>>,
) -> Result<(), AppError> {
    let mut unacknowledged = Vec::new();
    let mut next = None;
    loop {
        let update = match next.take() {
            Some(u) => u,
            None => match updates.next().await {
                Some(u) => u,
                None => break,
            },
        };
        let Update::Block(block, ack) = update else {
            continue;
        };
        next = waiting_block(&mut updates);
        let durability = if next.is_some() && unacknowledged.len() + 1 < GROUP_COMMIT_MAX.get() {
            Durability::Deferred
        } else {
            Durability::Immediate
        };
        let started = std::time::Instant::now();
        let applied = node.finalize(&block.inner().block, durability);
        tracing::debug!(
            took_us = started.elapsed().as_micros(),
            ?durability,
            "finalize applied"
        );
        match applied {
            Ok(Some(f)) => {
                tracing::debug!(height = f.head.height, txs = f.block.txs.len(), root = %f.head.state_root, "finalized")
            }
            // Already applied (re-delivery after a restart, or genesis); the group's deferred
            // blocks before it still need their immediate commit.
            Ok(None) if durability == Durability::Immediate && !unacknowledged.is_empty() => {
                node.db().sync()?;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, height = block.inner().block.header.height, "cannot apply a finalized block; stopping");
                return Err(e);
            }
        }
        unacknowledged.push(ack);
        if durability == Durability::Immediate {
            for ack in unacknowledged.drain(..) {
                ack.acknowledge();
            }
        }
    }
    Ok(())
}

/// The next finalized block, if marshal already delivered it (tips are skipped).
fn waiting_block(updates: &mut mpsc::UnboundedReceiver<Update<CBlock>>) -> Option<Update<CBlock>> {
    loop {
        match updates.try_recv() {
            Ok(u @ Update::Block(..)) => return Some(u),
            Ok(Update::Tip(..)) => continue,
            Err(_) => return None,
        }
    }
}

/// Sends the transactions this node admits from clients to every other validator, in batches
/// (whatever queued while the previous batch was sent goes together).
async fn relay_out<S: P2pSender<PublicKey = PublicKey>>(
    mut sender: S,
    mut queue: tokio::sync::mpsc::Receiver<Vec<SignedTransaction>>,
) {
    while let Some(mut txs) = queue.recv().await {
        while txs.len() < RELAY_BATCH_MAX
            && let Ok(more) = queue.try_recv()
        {
            txs.extend(more);
        }
        for chunk in txs.chunks(RELAY_BATCH_MAX) {
            let message = relay_message(chunk.to_vec()).expect("chunks are bounded");
            let _ = sender.send(Recipients::All, message, false);
        }
    }
}

/// The relay message carrying `txs` (`None` above [`RELAY_BATCH_MAX`] of them).
pub fn relay_message(txs: Vec<SignedTransaction>) -> Option<Vec<u8>> {
    RelayBatch::new(txs).map(|batch| kcodec::encode(&batch))
}

/// Takes in the transactions other validators relay, for admission as one signature batch
/// (`Node::queue_relayed`). A malformed message is dropped (the mempool checks each
/// transaction as it would a client's, signature included).
async fn relay_in<R: P2pReceiver<PublicKey = PublicKey>>(node: Arc<Node>, mut receiver: R) {
    while let Ok((peer, message)) = receiver.recv().await {
        match kcodec::decode::<RelayBatch>(message.as_ref(), RELAY_MSG_MAX) {
            Ok(batch) => {
                if node.queue_relayed(peer, batch.into_inner()) {
                    admit_queue(&node);
                }
            }
            Err(e) => tracing::warn!(%peer, error = %e, "malformed transaction relay message"),
        }
    }
}

/// Admits what was relayed every [`RELAYED_ADMIT_EVERY`], so that a quiet chain's mempools
/// show it soon (building or checking a block admits it before that).
async fn relay_admit<E: Clock>(context: E, node: Arc<Node>) {
    loop {
        context.sleep(RELAYED_ADMIT_EVERY).await;
        admit_queue(&node);
    }
}

fn admit_queue(node: &Node) {
    if let Err(e) = node.admit_queued_relayed() {
        tracing::warn!(error = %e, "cannot admit relayed transactions");
    }
}

/// The p2p channels the engine uses (one sender and receiver per channel).
#[derive(Debug)]
pub struct Channels<S, R> {
    pub votes: (S, R),
    pub certificates: (S, R),
    pub resolver: (S, R),
    pub backfill: (S, R),
    pub broadcast: (S, R),
    pub txs: (S, R),
}

/// A validator's part in consensus, independent of the runtime and the network.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This validator's consensus key.
    pub key: PrivateKey,
    /// The validator set, fixed at genesis.
    pub validators: Set<PublicKey>,
    /// Namespace of the chain (see [`namespace`]).
    pub namespace: Vec<u8>,
    /// Pacing of block proposals.
    pub block_time: Duration,
    /// Prefix of this validator's storage partitions (simulations run several in one runtime).
    pub partition_prefix: String,
}

/// The largest p2p message any channel carries, for `n` validators.
pub fn max_message(n: u32) -> u32 {
    max_message_size(&[
        simplex::max_payload_size::<Scheme, Digest>(n),
        marshal::max_payload_size::<Standard<CBlock>, Scheme>(n, &BLOCK_SIZE_MAX),
        RELAY_MSG_MAX,
    ])
}

/// Runs marshal, simplex and the transaction relay for `node` on any Commonware runtime and
/// network (the tokio runtime with authenticated p2p in `kassa node`, the deterministic runtime
/// with the simulated network in tests). Returns when the engine stops, or with an error if a
/// finalized block could not be applied.
pub async fn run_engine<E, S, R, P, B>(
    context: E,
    node: Arc<Node>,
    cfg: EngineConfig,
    channels: Channels<S, R>,
    peers: P,
    blocker: B,
) -> Result<(), AppError>
where
    E: Spawner + Clock + Storage + Metrics + rand_core_10::CryptoRng,
    S: P2pSender<PublicKey = PublicKey>,
    R: P2pReceiver<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    let me = cfg.key.public_key();
    let max_block = BLOCK_SIZE_MAX;
    let prefix = &cfg.partition_prefix;

    // -- transactions: what clients submit here goes to every other validator (a validator
    // alone has nobody to relay to, and its submissions are not copied for the relay).
    let (relay, relay_queue) = tokio::sync::mpsc::channel(RELAY_QUEUE);
    if cfg.validators.len() > 1 {
        node.set_relay(relay);
    }
    // A validator that relays a forged signature is cut off (see `Node::admit_queued_relayed`).
    let forgers = std::sync::Mutex::new(blocker.clone());
    node.set_forgers(Box::new(move |peer| {
        let _ = crate::app::lock(&forgers).block(peer);
    }));
    let (txs_out, txs_in) = channels.txs;
    context
        .child("relay_out")
        .spawn(move |_| relay_out(txs_out, relay_queue));
    let relay_node = node.clone();
    context
        .child("relay_in")
        .spawn(move |_| relay_in(relay_node, txs_in));
    let relay_node = node.clone();
    context
        .child("relay_admit")
        .spawn(move |context| relay_admit(context, relay_node));

    let scheme = Scheme::signer(
        &union(&cfg.namespace, b"_CONSENSUS"),
        cfg.validators.clone(),
        cfg.key.clone(),
    )
    .expect("this validator is in the validator set");
    let provider = ConstantProvider::<Scheme, Epoch>::new(scheme.clone());
    let epocher = FixedEpocher::new(NZU64!(u64::MAX));
    let page_cache = CacheRef::new(page_size(4096), PAGE_CACHE_PAGES);
    let genesis_block = node
        .db()
        .block(0)
        .expect("database")
        .expect("genesis is stored");
    let genesis = CBlock::new(genesis_block).expect("the genesis carries a valid context");
    let genesis_digest = genesis.digest();

    // -- marshal: fetches missing blocks, stores finalized ones, delivers them in order.
    let (resolver_rx, resolver_mailbox) = marshal_resolver::init(
        context.child("marshal_resolver"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size: MAILBOX,
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: MAILBOX,
            deque_size: 10,
            priority: false,
            codec_config: max_block,
            peer_provider: peers,
            strategy: Sequential,
        },
    );
    broadcast_engine.start(channels.broadcast);
    let finalizations = immutable::Archive::init(
        context.child("finalizations_by_height"),
        archive_config(
            &format!("{prefix}-marshal-finalizations-by-height"),
            &page_cache,
            Scheme::certificate_codec_config_unbounded(),
        ),
    )
    .await
    .expect("open the finalizations archive");
    let blocks = immutable::Archive::init(
        context.child("finalized_blocks"),
        archive_config(
            &format!("{prefix}-marshal-finalized-blocks"),
            &page_cache,
            max_block,
        ),
    )
    .await
    .expect("open the blocks archive");
    let (marshal_actor, marshal_mailbox, _floor) =
        MarshalActor::<_, Standard<CBlock>, _, _, _, _, _>::init(
            context.child("marshal"),
            finalizations,
            blocks,
            marshal::Config {
                provider,
                epocher: epocher.clone(),
                start: marshal::Start::Genesis(Digested::precomputed(genesis, genesis_digest)),
                partition_prefix: format!("{prefix}-marshal"),
                mailbox_size: MAILBOX,
                view_retention: ViewDelta::new(10),
                prunable_items_per_section: NZU64!(4_096),
                page_cache: page_cache.clone(),
                replay_buffer: IO_BUFFER,
                key_write_buffer: IO_BUFFER,
                value_write_buffer: IO_BUFFER,
                block_codec_config: max_block,
                max_repair: NZUsize!(10),
                // Up to a commit group's worth of finalized blocks handed over before the
                // first is acknowledged (see `run_finalizer`).
                max_pending_acks: GROUP_COMMIT_MAX,
                strategy: Sequential,
            },
        )
        .await;
    node.set_certificates(Box::new(MarshalCertificates(marshal_mailbox.clone())));
    let (sender, updates) = mpsc::unbounded();
    let finalizer_node = node.clone();
    let finalizer = context
        .child("finalizer")
        .spawn(move |_| run_finalizer(finalizer_node, updates));
    marshal_actor.start(
        Finalizer { sender },
        buffer,
        (resolver_rx, resolver_mailbox),
    );

    // -- simplex: the BFT engine.
    let app = KassaApp {
        node,
        block_time: cfg.block_time,
        max_clock_drift: Duration::from_millis(500),
    };
    let deferred = Deferred::new(context.child("deferred"), app, marshal_mailbox, epocher);
    let engine = simplex::Engine::new(
        context.child("simplex"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: deferred.clone(),
            relay: deferred.clone(),
            reporter: deferred,
            strategy: Sequential,
            partition: format!("{prefix}-simplex-epoch-0"),
            mailbox_size: MAILBOX,
            epoch: Epoch::zero(),
            floor: simplex::Floor::Genesis(genesis_digest),
            replay_buffer: IO_BUFFER,
            write_buffer: IO_BUFFER,
            page_cache,
            // Must exceed the pacing delay plus build time, or our own proposal is nullified.
            leader_timeout: cfg.block_time + Duration::from_secs(2),
            certification_timeout: cfg.block_time + Duration::from_secs(3),
            timeout_retry: Duration::from_secs(2),
            view_retention: ViewDelta::new(10),
            skip: SkipPolicy::Enabled {
                timeout: cfg.block_time + Duration::from_secs(10),
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(500),
            forward: ForwardPolicy::Disabled,
            track_historical_votes: false,
        },
    );
    let engine = engine.start(channels.votes, channels.certificates, channels.resolver);
    futures::pin_mut!(engine);
    match futures::future::select(engine, finalizer).await {
        futures::future::Either::Left(_) => Ok(()),
        futures::future::Either::Right((done, _)) => done.unwrap_or(Ok(())),
    }
}

/// How this validator takes part in a network of real machines.
#[derive(Clone, Debug)]
pub struct ConsensusConfig {
    /// This validator's consensus key.
    pub key: PrivateKey,
    /// Every validator's key and p2p address (including this one), fixed at genesis.
    pub validators: Vec<(PublicKey, SocketAddr)>,
    /// Where to listen for peers.
    pub listen: SocketAddr,
    /// Network namespace (see [`namespace`]).
    pub namespace: Vec<u8>,
    /// Pacing of block proposals.
    pub block_time: Duration,
}

/// Starts authenticated p2p (encrypted, key-authenticated connections to the genesis
/// validators at their configured addresses) and the engine on the tokio runtime.
pub async fn run(
    context: cw_tokio::Context,
    node: Arc<Node>,
    cfg: ConsensusConfig,
) -> Result<(), AppError> {
    let me = cfg.key.public_key();
    let validators: Set<PublicKey> = cfg
        .validators
        .iter()
        .map(|(k, _)| k.clone())
        .try_collect()
        .expect("validator keys are unique");
    let n = u32::try_from(validators.len()).expect("few validators");
    let p2p_cfg = lookup::Config::local(
        Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: cfg.key.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        ),
        &union(&cfg.namespace, b"_P2P"),
        cfg.listen,
        authenticated::peer_set_limit(validators.iter(), &me),
        max_message(n),
        MAILBOX,
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p_cfg);
    let peers: Map<PublicKey, PeerAddress> = cfg
        .validators
        .iter()
        .map(|(k, a)| (k.clone(), PeerAddress::from(*a)))
        .try_collect()
        .expect("validator keys are unique");
    let _ = oracle.track(0, peers);
    let quota = Quota::per_second(NZU32!(10_000));
    let channels = Channels {
        votes: network.register(CH_VOTES, quota),
        certificates: network.register(CH_CERTS, quota),
        resolver: network.register(CH_RESOLVER, quota),
        backfill: network.register(CH_BACKFILL, quota),
        broadcast: network.register(CH_BROADCAST, quota),
        txs: network.register(CH_TXS, quota),
    };
    network.start();
    let engine = EngineConfig {
        key: cfg.key,
        validators,
        namespace: cfg.namespace,
        block_time: cfg.block_time,
        partition_prefix: "kassa".into(),
    };
    run_engine(
        context.child("engine"),
        node,
        engine,
        channels,
        oracle.clone(),
        oracle,
    )
    .await
}

/// The channel numbers, in the order of [`Channels`]' fields (for networks that register them
/// one by one, like the simulated one).
pub const CHANNELS: [u64; 6] = [
    CH_VOTES,
    CH_CERTS,
    CH_RESOLVER,
    CH_BACKFILL,
    CH_BROADCAST,
    CH_TXS,
];

/// Finalization certificates from marshal's archive.
struct MarshalCertificates(MarshalMailbox);

type MarshalMailbox = marshal::core::Mailbox<Scheme, Standard<CBlock>>;

impl std::fmt::Debug for MarshalCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarshalCertificates")
    }
}

impl Certificates for MarshalCertificates {
    fn finalization(&self, height: u64) -> BoxFuture<'_, Option<Vec<u8>>> {
        Box::pin(async move {
            self.0
                .get_finalization(Height::new(height))
                .await
                .map(|f| f.encode().to_vec())
        })
    }
}

/// Checks that `certificate` is a finalization of block `block` signed by a quorum of the
/// genesis `validators` of the chain `namespace`.
pub fn verify_finalization(
    rng: &mut impl rand_core_10::CryptoRng,
    namespace: &[u8],
    validators: &[PublicKey],
    certificate: &[u8],
    block: &Hash,
) -> Result<(), &'static str> {
    let set: Set<PublicKey> = validators
        .iter()
        .cloned()
        .try_collect()
        .map_err(|_| "duplicate validator keys")?;
    let n = set.len();
    let verifier = Scheme::verifier(&union(namespace, b"_CONSENSUS"), set);
    let f = Finalization::<Scheme, Digest>::decode_cfg(Bytes::copy_from_slice(certificate), &n)
        .map_err(|_| "malformed finalization certificate")?;
    if f.proposal.payload != digest_of(block) {
        return Err("the certificate finalizes a different block");
    }
    if !f.verify(rng, &verifier, &Sequential) {
        return Err("the certificate's signatures do not verify");
    }
    Ok(())
}

fn archive_config<C>(p: &str, page_cache: &CacheRef, codec_config: C) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{p}-metadata"),
        freezer_table_partition: format!("{p}-freezer-table"),
        freezer_table_initial_size: 65_536,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 16_384,
        freezer_key_partition: format!("{p}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{p}-freezer-value"),
        freezer_value_target_size: 1024 * 1024 * 1024,
        freezer_value_compression: None,
        ordinal_partition: format!("{p}-ordinal"),
        items_per_section: NZU64!(262_144),
        freezer_key_write_buffer: IO_BUFFER,
        freezer_value_write_buffer: IO_BUFFER,
        ordinal_write_buffer: IO_BUFFER,
        replay_buffer: IO_BUFFER,
        codec_config,
    }
}

/// A validator's secret key.
pub type PrivateKey = ed25519::PrivateKey;
/// A validator's public key.
pub type PublicKey = ed25519::PublicKey;

/// The public key of a validator key.
pub fn public_key(key: &PrivateKey) -> PublicKey {
    key.public_key()
}

/// Reads a validator key from its 32 seed bytes.
pub fn key_from_seed(seed: [u8; 32]) -> Option<ed25519::PrivateKey> {
    ed25519::PrivateKey::decode(Bytes::copy_from_slice(&seed)).ok()
}

/// The 32 bytes of a validator's public key (also its Kassa address).
pub fn public_key_bytes(key: &ed25519::PublicKey) -> [u8; 32] {
    key.encode()
        .as_ref()
        .try_into()
        .expect("ed25519 public keys are 32 bytes")
}

/// A validator public key from its 32 bytes.
pub fn public_key_from_bytes(bytes: [u8; 32]) -> Option<ed25519::PublicKey> {
    ed25519::PublicKey::decode(Bytes::copy_from_slice(&bytes)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kassa_types::tx::{Body, ChainId};
    use kassa_types::{AssetId, SecretKey, Transaction};

    fn tx(nonce: u64) -> SignedTransaction {
        let key = SecretKey::from_label("relay");
        Transaction {
            chain_id: ChainId::new("kassa-test".to_string()).unwrap(),
            genesis: kassa_types::Hash::default(),
            signer: key.address(),
            nonce,
            fee: 1_000,
            expiry_height: 10,
            body: Body::Transfer {
                to: key.address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        }
        .sign(&key)
    }

    #[test]
    fn a_relay_message_decodes_to_the_batch_it_encodes() {
        let batch = RelayBatch::new((0..3).map(tx).collect()).unwrap();
        let bytes = kcodec::encode(&batch);
        let back: RelayBatch = kcodec::decode(&bytes, RELAY_MSG_MAX).unwrap();
        assert_eq!(back.into_inner(), batch.into_inner());
    }

    #[test]
    fn a_relay_message_with_too_many_transactions_or_trailing_bytes_is_refused() {
        // 257 transactions: refused from the length prefix, before anything is read.
        let too_many: Vec<SignedTransaction> = (0..=RELAY_BATCH_MAX as u64).map(tx).collect();
        let bytes = borsh::to_vec(&too_many).unwrap();
        assert!(kcodec::decode::<RelayBatch>(&bytes, usize::MAX).is_err());
        let mut bytes = kcodec::encode(&RelayBatch::new(vec![tx(0)]).unwrap());
        bytes.push(0);
        assert!(kcodec::decode::<RelayBatch>(&bytes, RELAY_MSG_MAX).is_err());
        assert!(kcodec::decode::<RelayBatch>(&[0xff; 16], RELAY_MSG_MAX).is_err());
    }

    #[test]
    fn a_finalization_certificate_that_does_not_decode_is_refused() {
        let validators: Vec<PublicKey> = (0..4)
            .map(|i| ed25519::PrivateKey::from_seed(i).public_key())
            .collect();
        let mut rng = commonware_utils::test_rng();
        let block = Hash::of(&[b"block"]);
        for garbage in [vec![], vec![0u8; 7], vec![0xffu8; 300]] {
            assert!(
                verify_finalization(&mut rng, b"KASSA_x", &validators, &garbage, &block).is_err()
            );
        }
    }
}
