//! Wiring the engine: marshal, the broadcast buffer, simplex and the relay for one validator,
//! on any Commonware runtime and network.

use super::finalizer::{GROUP_COMMIT_MAX, MarshalCertificates, MarshalMailbox, run_finalizer};
use super::relay::{RELAY_MSG_MAX, relay_admit, relay_in, relay_out};
use super::tuning::*;
use super::*;
use crate::app::AppError;
use crate::handle::Node;
use commonware_broadcast::buffered;
use commonware_consensus::marshal::core::Actor as MarshalActor;
use commonware_consensus::marshal::resolver::p2p as marshal_resolver;
use commonware_consensus::marshal::standard::{Deferred, Standard};
use commonware_consensus::marshal::{self};
use commonware_consensus::simplex;
use commonware_consensus::simplex::config::{ForwardPolicy, SkipBudget, SkipPolicy};
use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::types::Height;
use commonware_consensus::types::{Epoch, FixedEpocher};
use commonware_cryptography::certificate::{ConstantProvider, Verifier as _};
use commonware_cryptography::{Digested, Digestible, Sha256, Signer as _};
use commonware_p2p::{
    Blocker, Provider, Receiver as P2pReceiver, Sender as P2pSender, max_message_size,
};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::{CacheRef, page_size};
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_storage::archive::{immutable, prunable};
use commonware_storage::translator::EightCap;
use commonware_utils::{NZDuration, NZU64, ordered::Set, union};
use futures::channel::mpsc;
use kassa_types::BLOCK_SIZE_MAX;
use std::sync::Arc;
use std::time::Duration;

/// p2p channels (identical on every validator).
pub(super) const CH_VOTES: u64 = 0;
pub(super) const CH_CERTS: u64 = 1;
pub(super) const CH_RESOLVER: u64 = 2;
pub(super) const CH_BACKFILL: u64 = 3;
pub(super) const CH_BROADCAST: u64 = 4;
pub(super) const CH_TXS: u64 = 5;

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
    /// Milliseconds added to the runtime's clock for this validator's proposals and checks: 0,
    /// except in the simulations of a validator whose clock is wrong.
    pub clock_skew_ms: i64,
    /// Keep only the newest this many finalized blocks and certificates in marshal's archives
    /// (prunable ones); `None` keeps all (immutable ones).
    pub prune_keep: Option<u64>,
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
    let page_cache = CacheRef::new(page_size(PAGE_SIZE), PAGE_CACHE_PAGES);
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
            fetch_timeout: NZDuration!(FETCH_TIMEOUT),
            fetch_retry_delay: BACKFILL_RETRY,
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
            deque_size: BROADCAST_DEQUE,
            priority: false,
            codec_config: max_block,
            peer_provider: peers,
            strategy: Sequential,
        },
    );
    broadcast_engine.start(channels.broadcast);
    // Marshal on immutable archives (an archive node) or prunable ones (a node that keeps only
    // its newest blocks): the same actor, over two archive types.
    let (sender, updates) = mpsc::unbounded();
    macro_rules! start_marshal {
        ($finalizations:expr, $blocks:expr) => {{
            let (marshal_actor, marshal_mailbox, _floor) =
                MarshalActor::<_, Standard<CBlock>, _, _, _, _, _>::init(
                    context.child("marshal"),
                    $finalizations,
                    $blocks,
                    marshal::Config {
                        provider,
                        epocher: epocher.clone(),
                        start: marshal::Start::Genesis(Digested::precomputed(
                            genesis,
                            genesis_digest,
                        )),
                        partition_prefix: format!("{prefix}-marshal"),
                        mailbox_size: MAILBOX,
                        view_retention: VIEW_RETENTION,
                        prunable_items_per_section: PRUNABLE_ITEMS_PER_SECTION,
                        page_cache: page_cache.clone(),
                        replay_buffer: IO_BUFFER,
                        key_write_buffer: IO_BUFFER,
                        value_write_buffer: IO_BUFFER,
                        block_codec_config: max_block,
                        max_repair: MAX_REPAIR,
                        // Up to a commit group's worth of finalized blocks handed over before
                        // the first is acknowledged (see `run_finalizer`).
                        max_pending_acks: GROUP_COMMIT_MAX,
                        strategy: Sequential,
                    },
                )
                .await;
            marshal_actor.start(
                Finalizer { sender },
                buffer,
                (resolver_rx, resolver_mailbox),
            );
            marshal_mailbox
        }};
    }
    let marshal_mailbox = match cfg.prune_keep {
        None => start_marshal!(
            immutable::Archive::init(
                context.child("finalizations_by_height"),
                archive_config(
                    &format!("{prefix}-marshal-finalizations-by-height"),
                    &page_cache,
                    Scheme::certificate_codec_config_unbounded(),
                ),
            )
            .await
            .expect("open the finalizations archive"),
            immutable::Archive::init(
                context.child("finalized_blocks"),
                archive_config(
                    &format!("{prefix}-marshal-finalized-blocks"),
                    &page_cache,
                    max_block,
                ),
            )
            .await
            .expect("open the blocks archive")
        ),
        Some(keep) => {
            let mailbox = start_marshal!(
                prunable::Archive::init(
                    context.child("finalizations_by_height"),
                    pruned_archive_config(
                        &format!("{prefix}-marshal-pruned-finalizations"),
                        &page_cache,
                        Scheme::certificate_codec_config_unbounded(),
                    ),
                )
                .await
                .expect("open the finalizations archive"),
                prunable::Archive::init(
                    context.child("finalized_blocks"),
                    pruned_archive_config(
                        &format!("{prefix}-marshal-pruned-blocks"),
                        &page_cache,
                        max_block,
                    ),
                )
                .await
                .expect("open the blocks archive")
            );
            let pruner = (node.clone(), mailbox.clone());
            context
                .child("marshal_pruner")
                .spawn(move |_| prune_marshal(pruner.0, pruner.1, keep));
            mailbox
        }
    };
    node.set_certificates(Box::new(MarshalCertificates(marshal_mailbox.clone())));
    let finalizer_node = node.clone();
    let finalizer = context
        .child("finalizer")
        .spawn(move |_| run_finalizer(finalizer_node, updates));

    // -- simplex: the BFT engine.
    let app = KassaApp {
        node,
        block_time: cfg.block_time,
        max_clock_drift: MAX_CLOCK_DRIFT,
        clock_skew_ms: cfg.clock_skew_ms,
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
            leader_timeout: leader_timeout(cfg.block_time),
            certification_timeout: certification_timeout(cfg.block_time),
            timeout_retry: TIMEOUT_RETRY,
            view_retention: VIEW_RETENTION,
            skip: SkipPolicy::Enabled {
                timeout: skip_timeout(cfg.block_time),
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(FETCH_TIMEOUT),
            fetch_retry_delay: VOTE_FETCH_RETRY,
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

pub(super) fn archive_config<C>(
    p: &str,
    page_cache: &CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{p}-metadata"),
        freezer_table_partition: format!("{p}-freezer-table"),
        freezer_table_initial_size: FREEZER_TABLE_INITIAL,
        freezer_table_resize_frequency: FREEZER_RESIZE_FREQUENCY,
        freezer_table_resize_chunk_size: FREEZER_RESIZE_CHUNK,
        freezer_key_partition: format!("{p}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{p}-freezer-value"),
        freezer_value_target_size: FREEZER_VALUE_TARGET,
        freezer_value_compression: None,
        ordinal_partition: format!("{p}-ordinal"),
        items_per_section: ARCHIVE_ITEMS_PER_SECTION,
        freezer_key_write_buffer: IO_BUFFER,
        freezer_value_write_buffer: IO_BUFFER,
        ordinal_write_buffer: IO_BUFFER,
        replay_buffer: IO_BUFFER,
        codec_config,
    }
}

/// The archives of a node that keeps only its newest blocks: keyed by block digest (uniform, so
/// eight bytes of it index well), pruned a section at a time.
pub(super) fn pruned_archive_config<C>(
    p: &str,
    page_cache: &CacheRef,
    codec_config: C,
) -> prunable::Config<EightCap, C> {
    prunable::Config {
        translator: EightCap,
        metadata_partition: format!("{p}-metadata"),
        key_partition: format!("{p}-key"),
        key_page_cache: page_cache.clone(),
        value_partition: format!("{p}-value"),
        compression: None,
        codec_config,
        items_per_section: PRUNED_ARCHIVE_ITEMS_PER_SECTION,
        key_write_buffer: IO_BUFFER,
        value_write_buffer: IO_BUFFER,
        replay_buffer: IO_BUFFER,
    }
}

/// Asks marshal to drop the finalized blocks and certificates below the newest `keep`, as the
/// node's head moves (marshal keeps what it has not yet handed over, and whole sections).
async fn prune_marshal(node: Arc<Node>, marshal: MarshalMailbox, keep: u64) {
    let mut head = node.watch_head();
    let mut asked = 0;
    loop {
        let below = head.borrow_and_update().height.saturating_sub(keep);
        if below > asked {
            marshal.prune(Height::new(below));
            asked = below;
        }
        if head.changed().await.is_err() {
            return;
        }
    }
}
