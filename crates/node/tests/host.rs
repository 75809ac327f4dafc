//! The hosting protocol (`kassa_node::host`) on the deterministic runtime's network: followers
//! that sync, state-sync and forward over it, find each other, and keep following when the peer
//! they started from goes away; and a host that refuses what it must and stays up.

use commonware_runtime::deterministic::{self, Context};
use commonware_runtime::{Clock as _, Runner as _, Spawner as _, Supervisor as _};
use commonware_stream::Upgrader as _;
use futures::future::BoxFuture;
use kassa_node::Node;
use kassa_node::consensus::{self, PrivateKey};
use kassa_node::follow::{Follower, Source};
use kassa_node::host::wire::{self, Refusal, Request, Response};
use kassa_node::host::{self, Book, Hosts, Limits, PeerAddr, PeerSource};
use kassa_node::state_sync::sync_state;
use kassa_state::Genesis;
use kassa_testkit::certify::{Certified, Signers};
use kassa_testkit::{DevGenesis, key, node_in, produce, signed_for};
use kassa_types::AssetId;
use kassa_types::tx::Body;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const CHAIN: &str = "kassa-test";
const BLOCKS: u64 = 12;

fn genesis() -> Genesis {
    DevGenesis {
        chain_id: CHAIN,
        accounts: 3,
        each: 1_000_000,
        min_fee: 10,
        time_ms: 1_000,
    }
    .genesis()
}

fn transfer(node: &Node, nonce: u64) -> kassa_types::SignedTransaction {
    let body = Body::Transfer {
        to: key(2).address(),
        asset: AssetId(0),
        amount: 1_000,
    };
    signed_for(node, &key(1), nonce, node.head().height + 50, body)
}

/// A node whose chain has [`BLOCKS`] blocks, each with a transfer and certified by four
/// validators, as a validator serves it.
fn chain(dir: &std::path::Path) -> (Arc<Node>, Signers) {
    let node = node_in(dir, &genesis(), false);
    let signers = Signers::new(CHAIN);
    let certified = Certified::default();
    node.set_certificates(Box::new(certified.clone()));
    for nonce in 0..BLOCKS {
        let tx = transfer(&node, nonce);
        let admitted = node.submit(vec![tx]).unwrap().remove(0);
        assert!(admitted.is_ok(), "{admitted:?}");
        let height = produce(&node);
        let hash = node.db().header(height).unwrap().unwrap().hash();
        certified
            .0
            .lock()
            .unwrap()
            .insert(height, signers.certify(&hash, height));
    }
    (node, signers)
}

fn identity(seed: u8) -> (PrivateKey, [u8; 32]) {
    let key = consensus::key_from_seed([seed; 32]).unwrap();
    let public = consensus::public_key_bytes(&consensus::public_key(&key));
    (key, public)
}

fn at(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Lets every connection here come from one address (the deterministic network dials from
/// 127.0.0.1).
fn generous() -> Limits {
    Limits {
        per_ip: 64,
        ..Limits::default()
    }
}

/// Starts `node` hosting on `port` as `seed`'s identity; its peer address.
fn start_host(
    context: &Context,
    node: &Arc<Node>,
    seed: u8,
    port: u16,
    limits: Limits,
    book: Book,
) -> (PeerAddr, commonware_runtime::Handle<()>) {
    let (key, public) = identity(seed);
    let namespace = host::namespace(&consensus::namespace(CHAIN));
    let node = node.clone();
    let handle = context.child("host").spawn(move |ctx| async move {
        host::serve(ctx, node, key, namespace, at(port), limits, Arc::new(book))
            .await
            .unwrap_or_else(|e| panic!("the host listens: {e}"));
    });
    (
        PeerAddr {
            key: public,
            addr: at(port),
        },
        handle,
    )
}

/// Waits (on the simulated clock, at most a minute) until `node` is at `height`.
async fn reaches(context: &Context, node: &Node, height: u64) {
    for _ in 0..600 {
        if node.head().height >= height {
            return;
        }
        context.sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the follower reached height {} of {height}",
        node.head().height
    );
}

#[test]
fn followers_sync_over_the_hosting_protocol_find_each_other_and_go_on_when_their_first_peer_leaves()
{
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, signers) = chain(dirs[0].path());
    let trust = signers.trust.clone();
    let b = node_in(dirs[1].path(), &genesis(), false);
    let c = node_in(dirs[2].path(), &genesis(), false);
    let d_db = kassa_db::Db::open(&dirs[3].path().join("state.redb")).unwrap();
    let genesis_block = a.db().block(0).unwrap().unwrap();
    deterministic::Runner::timed(Duration::from_secs(600)).start(|context| async move {
        let namespace = host::namespace(&trust.namespace);
        // A hands out a host that is not there (nobody listens at its address): no follower
        // takes it as a source.
        let nowhere = PeerAddr {
            key: identity(8).1,
            addr: at(7999),
        };
        let (peer_a, server_a) =
            start_host(&context, &a, 1, 7001, generous(), Book::new(vec![nowhere]));

        // B follows A over the protocol and hosts what it has.
        let (key_b, _) = identity(2);
        let (peer_b, _server_b) = start_host(
            &context,
            &b,
            2,
            7002,
            generous(),
            Book::new(vec![peer_a.clone()]),
        );
        context.sleep(Duration::from_millis(100)).await;
        let hosts_b = Hosts::new(
            context.child("hosts_b"),
            key_b,
            namespace.clone(),
            Some(peer_b.addr.port()),
            std::slice::from_ref(&peer_a),
        );
        let follower_b = Follower::new(b.clone(), trust.clone(), hosts_b.sources());
        assert_eq!(
            hosts_b.discover_once(&follower_b).await,
            0,
            "A knows no other host that answers yet; B announced itself"
        );
        context
            .child("follow_b")
            .spawn(move |ctx| async move { follower_b.run(ctx).await });
        reaches(&context, &b, BLOCKS).await;
        assert_eq!(b.head().state_root, a.head().state_root);
        // It stored the first certificate it checked (one per 512 heights), to serve after a
        // restart.
        assert!(b.db().certificate(1).unwrap().is_some());
        assert!(b.db().certificate(2).unwrap().is_none());

        // C knows only A, learns of B from A, and A goes away before C syncs anything.
        let (key_c, _) = identity(3);
        let hosts_c = Hosts::new(
            context.child("hosts_c"),
            key_c.clone(),
            namespace.clone(),
            None,
            std::slice::from_ref(&peer_a),
        );
        let follower_c = Follower::new(c.clone(), trust.clone(), hosts_c.sources());
        assert_eq!(
            hosts_c.discover_once(&follower_c).await,
            1,
            "C finds B via A"
        );
        server_a.abort();
        let gone = PeerSource::new(
            context.child("probe"),
            key_c.clone(),
            namespace.clone(),
            peer_a.clone(),
        );
        assert!(gone.height().await.is_err(), "A is gone");
        context
            .child("follow_c")
            .spawn(move |ctx| async move { follower_c.run(ctx).await });
        reaches(&context, &c, BLOCKS).await;
        assert_eq!(c.head().state_root, a.head().state_root);
        assert_eq!(c.head().block_hash, a.head().block_hash);

        // D starts from a state B offers instead of replaying, over the protocol.
        let from_b: Arc<dyn Source> = Arc::new(PeerSource::new(
            context.child("d"),
            identity(4).0,
            namespace.clone(),
            peer_b.clone(),
        ));
        let mut rng = context.child("rng");
        let mut progress = |_: u64, _: u64| {};
        let pause = |_| -> BoxFuture<'static, ()> { Box::pin(async {}) };
        let synced = sync_state(
            &d_db,
            std::slice::from_ref(&from_b),
            &trust,
            &genesis_block,
            &mut rng,
            &mut progress,
            &pause,
        )
        .await
        .expect("state sync over the protocol");
        // The newest height B offers (it offers those whose certificates it keeps).
        let offered = b.db().offers().unwrap().last().map(|(h, _)| *h);
        assert_eq!(Some(synced.head.height), offered);
        assert!(synced.head.height > 0);
        let header = a.db().header(synced.head.height).unwrap().unwrap();
        assert_eq!(synced.head.state_root, header.state_root);
        assert_eq!(synced.head.block_hash, header.hash());

        // A transaction forwarded to B lands in B's mempool.
        let tx = transfer(&b, BLOCKS);
        from_b.forward(vec![tx.clone()]).await.unwrap();
        assert!(
            b.is_waiting(&tx.hash()),
            "the forwarded transaction waits in B's mempool"
        );
    });
}

/// One connection to a host, as any client could open it.
async fn raw(
    context: &Context,
    namespace: &[u8],
    peer: &PeerAddr,
) -> Result<
    (
        <host::Upgrader as commonware_stream::Upgrader>::Sender<
            commonware_runtime::StreamOf<Context>,
            commonware_runtime::SinkOf<Context>,
        >,
        <host::Upgrader as commonware_stream::Upgrader>::Receiver<
            commonware_runtime::StreamOf<Context>,
            commonware_runtime::SinkOf<Context>,
        >,
    ),
    String,
> {
    use commonware_runtime::Network as _;
    let (sink, stream) = context.dial(peer.addr).await.map_err(|e| e.to_string())?;
    host::upgrader(identity(9).0)
        .dial(
            context.child("dial"),
            namespace,
            wire::MESSAGE_MAX,
            peer.public_key().unwrap(),
            stream,
            sink,
        )
        .await
        .map_err(|e| e.to_string())
}

#[test]
fn a_host_refuses_what_is_out_of_bounds_with_a_reason_admits_nothing_and_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let (a, signers) = chain(dir.path());
    deterministic::Runner::timed(Duration::from_secs(600)).start(|context| async move {
        let namespace = host::namespace(&signers.trust.namespace);
        let limits = Limits {
            per_ip: 2,
            idle: Duration::from_secs(10),
            ..Limits::default()
        };
        let (peer, _server) = start_host(&context, &a, 1, 7001, limits, Book::default());
        context.sleep(Duration::from_millis(100)).await;
        let ask = |request: Request| {
            let (context, namespace, peer) =
                (context.child("ask"), namespace.clone(), peer.clone());
            async move {
                let (mut tx, mut rx) = raw(&context, &namespace, &peer).await.unwrap();
                tx.send(wire::encode(&request)).await.unwrap();
                let answer = rx.recv().await.unwrap();
                wire::decode::<Response>(answer.coalesce().as_ref()).unwrap()
            }
        };
        let pool = a.mempool_len();

        // More transactions than one forward may carry: refused, none admitted.
        let txs = (0..=wire::FORWARD_MAX as u64)
            .map(|n| transfer(&a, BLOCKS + n).encode())
            .collect();
        match ask(Request::Forward { txs }).await {
            Response::Refused { why, .. } => assert_eq!(why, Refusal::TooLarge),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A forged signature and undecodable bytes: counted as refused, none admitted.
        let mut forged = transfer(&a, BLOCKS);
        forged.tx.fee += 1;
        let answer = ask(Request::Forward {
            txs: vec![forged.encode(), vec![1, 2, 3]],
        })
        .await;
        assert_eq!(answer, Response::Forwarded { refused: 2 });
        assert_eq!(a.mempool_len(), pool, "nothing was admitted");

        // A block it does not have.
        match ask(Request::Block { height: 999 }).await {
            Response::Refused { why, .. } => assert_eq!(why, Refusal::NotFound),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A malformed request of state sync, and one too long to be one.
        match ask(Request::Sync {
            request: vec![9, 9, 9],
        })
        .await
        {
            Response::Refused { why, .. } => assert_eq!(why, Refusal::NotFound),
            other => panic!("expected a refusal, got {other:?}"),
        }
        match ask(Request::Sync {
            request: vec![0; wire::SYNC_REQUEST_MAX + 1],
        })
        .await
        {
            Response::Refused { why, .. } => assert_eq!(why, Refusal::TooLarge),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Its offers: those of its database.
        match ask(Request::Offers).await {
            Response::Offers(offers) => assert_eq!(offers, a.db().offers().unwrap()),
            other => panic!("expected offers, got {other:?}"),
        }

        // Bytes that are no request end the connection.
        let (mut tx, mut rx) = raw(&context, &namespace, &peer).await.unwrap();
        tx.send(vec![250u8, 1, 2]).await.unwrap();
        assert!(rx.recv().await.is_err(), "the host hung up");

        // Another chain's (or consensus') handshake fails.
        let other = host::namespace(&consensus::namespace("another-chain"));
        assert!(raw(&context, &other, &peer).await.is_err());

        // Two connections from one address at most; a closed one frees its place.
        let first = raw(&context, &namespace, &peer).await.unwrap();
        let second = raw(&context, &namespace, &peer).await.unwrap();
        assert!(
            raw(&context, &namespace, &peer).await.is_err(),
            "a third connection from the same address is turned away"
        );
        drop(first);
        context.sleep(Duration::from_millis(10)).await;
        let (mut tx, mut rx) = raw(&context, &namespace, &peer).await.unwrap();

        // A connection that asks nothing for longer than the idle limit is closed.
        context.sleep(Duration::from_secs(11)).await;
        let _ = tx.send(wire::encode(&Request::Height)).await;
        assert!(rx.recv().await.is_err(), "an idle connection was closed");
        drop(second);

        // And the host still answers.
        context.sleep(Duration::from_millis(10)).await;
        assert_eq!(ask(Request::Height).await, Response::Height(BLOCKS));

        // A follower's connection closed for idling is dialed again without counting as a
        // failure of the host.
        let source = PeerSource::new(context.child("source"), identity(7).0, namespace, peer);
        assert_eq!(source.height().await.unwrap(), BLOCKS);
        context.sleep(Duration::from_secs(11)).await;
        assert_eq!(source.height().await.unwrap(), BLOCKS, "dialed again");
    });
}

#[test]
fn every_peer_a_follower_is_given_is_a_source_and_only_found_ones_are_capped() {
    deterministic::Runner::timed(Duration::from_secs(60)).start(|context| async move {
        let given: Vec<PeerAddr> = (0..host::SOURCES_MAX + 4)
            .map(|i| PeerAddr {
                key: identity(u8::try_from(i).unwrap() + 10).1,
                addr: at(8_000 + u16::try_from(i).unwrap()),
            })
            .collect();
        let mut twice = given.clone();
        twice.push(given[0].clone());
        let hosts = Hosts::new(
            context.child("hosts"),
            identity(1).0,
            host::namespace(&consensus::namespace(CHAIN)),
            None,
            &twice,
        );
        let names: Vec<String> = hosts
            .sources()
            .iter()
            .map(|s| s.name().to_string())
            .collect();
        let expected: Vec<String> = given.iter().map(ToString::to_string).collect();
        assert_eq!(names, expected, "all of them, in order, once each");
    });
}

#[test]
fn a_follower_drops_a_host_it_found_once_it_stops_answering_but_never_one_it_was_given() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, signers) = chain(dirs[0].path());
    let b = node_in(dirs[1].path(), &genesis(), false);
    let c = node_in(dirs[2].path(), &genesis(), false);
    deterministic::Runner::timed(Duration::from_secs(600)).start(|context| async move {
        let namespace = host::namespace(&signers.trust.namespace);
        let (peer_b, server_b) = start_host(&context, &b, 2, 7102, generous(), Book::default());
        let (peer_a, server_a) = start_host(
            &context,
            &a,
            1,
            7101,
            generous(),
            Book::new(vec![peer_b.clone()]),
        );
        context.sleep(Duration::from_millis(100)).await;
        let hosts = Hosts::new(
            context.child("hosts_c"),
            identity(3).0,
            namespace,
            None,
            std::slice::from_ref(&peer_a),
        );
        let follower = Follower::new(c, signers.trust.clone(), hosts.sources());
        assert_eq!(hosts.discover_once(&follower).await, 1, "C finds B via A");
        let both = vec![peer_a.to_string(), peer_b.to_string()];
        assert_eq!(follower.source_names(), both);

        server_b.abort();
        for round in 1..host::DROP_AFTER {
            hosts.discover_once(&follower).await;
            assert_eq!(
                follower.source_names(),
                both,
                "B is kept while it has missed {round} round(s)"
            );
        }
        hosts.discover_once(&follower).await;
        assert_eq!(hosts.len(), 1);
        assert_eq!(
            follower.source_names(),
            vec![peer_a.to_string()],
            "B is dropped after missing {} rounds in a row",
            host::DROP_AFTER
        );

        // A, which it was given, is kept however long it is away.
        server_a.abort();
        for _ in 0..2 * host::DROP_AFTER {
            hosts.discover_once(&follower).await;
        }
        assert_eq!(follower.source_names(), vec![peer_a.to_string()]);
        assert_eq!(hosts.len(), 1);
    });
}

#[test]
fn a_follower_source_is_removed_by_name_but_never_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = node_in(dir.path(), &genesis(), false);
    deterministic::Runner::timed(Duration::from_secs(60)).start(|context| async move {
        let peers: Vec<PeerAddr> = (0..3)
            .map(|i| PeerAddr {
                key: identity(20 + i).1,
                addr: at(8_100 + u16::from(i)),
            })
            .collect();
        let sources: Vec<Arc<dyn Source>> = peers
            .iter()
            .map(|p| {
                Arc::new(PeerSource::new(
                    context.child("peer"),
                    identity(3).0,
                    b"ns".to_vec(),
                    p.clone(),
                )) as Arc<dyn Source>
            })
            .collect();
        let signers = Signers::new(CHAIN);
        let follower = Follower::new(c, signers.trust.clone(), sources);
        let name = |i: usize| peers[i].to_string();
        assert!(!follower.remove_source("nobody@127.0.0.1:1"));
        assert!(follower.remove_source(&name(1)));
        assert_eq!(follower.source_names(), vec![name(0), name(2)]);
        assert!(follower.remove_source(&name(0)));
        assert!(
            !follower.remove_source(&name(2)),
            "the last source is never removed"
        );
        assert_eq!(follower.source_names(), vec![name(2)]);
    });
}
