//! A validator on real machines: authenticated, encrypted p2p to the genesis validators at their
//! configured addresses, then the engine, on the tokio runtime.

use super::engine::{CH_BACKFILL, CH_BROADCAST, CH_CERTS, CH_RESOLVER, CH_TXS, CH_VOTES};
use super::tuning::*;
use super::*;
use crate::app::AppError;
use crate::handle::Node;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _};
use commonware_p2p::authenticated::{self, lookup};
use commonware_p2p::{Address as PeerAddress, AddressableManager as _};
use commonware_runtime::{Quota, Supervisor as _, tokio as cw_tokio};
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_utils::{TryCollect as _, ordered::Map, ordered::Set, union};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
                synchrony_bound: HANDSHAKE_SYNCHRONY,
                max_handshake_age: HANDSHAKE_MAX_AGE,
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
    let quota = Quota::per_second(P2P_MESSAGES_PER_SECOND);
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
