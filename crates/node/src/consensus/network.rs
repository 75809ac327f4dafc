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
    /// Keep only the newest this many blocks and certificates in consensus storage (`None`:
    /// all of them).
    pub prune_keep: Option<u64>,
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
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: cfg.key.clone(),
            synchrony_bound: HANDSHAKE_SYNCHRONY,
            max_handshake_age: HANDSHAKE_MAX_AGE,
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let addresses: Vec<SocketAddr> = cfg.validators.iter().map(|(_, a)| *a).collect();
    let p2p_cfg = p2p_config(
        handshake,
        &union(&cfg.namespace, b"_P2P"),
        cfg.listen,
        &addresses,
        authenticated::peer_set_limit(validators.iter(), &me),
        max_message(n),
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
        clock_skew_ms: 0,
        prune_keep: cfg.prune_keep,
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

/// Where the validators are, as far as p2p discovery cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// All on this machine (loopback): a local test network.
    OneMachine,
    /// Some on private addresses (a LAN, a cloud's private network).
    Private,
    /// All on public addresses.
    Public,
}

impl Reach {
    pub fn of(addresses: &[SocketAddr]) -> Reach {
        let private = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            std::net::IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
            }
        };
        if addresses.iter().all(|a| a.ip().is_loopback()) {
            Reach::OneMachine
        } else if addresses.iter().any(|a| private(a.ip())) {
            Reach::Private
        } else {
            Reach::Public
        }
    }
}

/// The p2p configuration: Commonware's production one (`recommended`: one handshake per IP
/// every 5 s, a minute's cool-down between connections to a peer, public addresses only), with
/// private addresses allowed where validators have them; Commonware's `local` one (faster
/// redial, many handshakes per IP) only when every validator is on this machine, where all of
/// them share one IP.
pub(super) fn p2p_config<U: commonware_stream::Upgrader>(
    handshake: U,
    namespace: &[u8],
    listen: SocketAddr,
    validators: &[SocketAddr],
    max_peers: std::num::NonZeroUsize,
    max_message: u32,
) -> lookup::Config<U> {
    match Reach::of(validators) {
        Reach::OneMachine => lookup::Config::local(
            handshake,
            namespace,
            listen,
            max_peers,
            max_message,
            MAILBOX,
        ),
        reach => {
            let mut c = lookup::Config::recommended(
                handshake,
                namespace,
                listen,
                max_peers,
                max_message,
                MAILBOX,
            );
            c.allow_private_ips = reach == Reach::Private;
            c
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn validators_on_the_internet_run_the_production_discovery_and_only_a_one_machine_net_the_local_one()
     {
        assert_eq!(
            Reach::of(&addrs(&["127.0.0.1:1", "127.0.0.1:2"])),
            Reach::OneMachine
        );
        assert_eq!(
            Reach::of(&addrs(&["10.0.0.1:1", "203.0.113.9:2"])),
            Reach::Private
        );
        assert_eq!(
            Reach::of(&addrs(&["198.51.100.1:1", "203.0.113.9:2"])),
            Reach::Public
        );
        let key = key_from_seed([7; 32]).unwrap();
        let handshake = || {
            Cups::<_, ChaCha20Poly1305>::new(
                Sake {
                    signer: key.clone(),
                    synchrony_bound: HANDSHAKE_SYNCHRONY,
                    max_handshake_age: HANDSHAKE_MAX_AGE,
                    version: sake::Version::V1,
                },
                cups::Version::V1,
            )
        };
        let listen: SocketAddr = "0.0.0.0:30650".parse().unwrap();
        let peers = std::num::NonZeroUsize::new(4).unwrap();
        let config_for = |validators: &[&str]| {
            p2p_config(
                handshake(),
                b"n",
                listen,
                &addrs(validators),
                peers,
                1 << 20,
            )
        };
        let public = config_for(&["198.51.100.1:1", "203.0.113.9:2"]);
        assert!(!public.allow_private_ips);
        assert_eq!(public.peer_connection_cooldown, Duration::from_secs(60));
        let lan = config_for(&["10.0.0.1:1", "10.0.0.2:2"]);
        assert!(lan.allow_private_ips);
        assert_eq!(lan.peer_connection_cooldown, Duration::from_secs(60));
        let local = config_for(&["127.0.0.1:1", "127.0.0.1:2"]);
        assert!(local.allow_private_ips);
        assert!(local.peer_connection_cooldown < Duration::from_secs(60));
    }
}
