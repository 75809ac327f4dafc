//! A host as a follower's [`Source`] ([`PeerSource`]: one encrypted connection, dialed when
//! first needed and again after it fails), and [`Hosts`]: a follower's peers, which grow as it
//! asks them for others.

use super::wire::{self, Refusal, Request, Response};
use super::{PeerAddr, Upgrader};
use crate::Finality;
use crate::consensus::{self, PrivateKey};
use crate::follow::{Follower, Source, SourceError};
use commonware_runtime::{Clock, Network, SinkOf, Spawner, StreamOf};
use commonware_stream::Upgrader as _;
use futures::future::{BoxFuture, Either, select};
use kassa_types::Hash;
use kassa_types::SignedTransaction;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a peer may take to answer one request (a block at the size limit on a slow link).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a TCP connection may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a follower asks its peers for others.
pub const DISCOVER_EVERY: Duration = Duration::from_secs(30);
/// Most peers a follower syncs from, counting those it was given (all of which it keeps) and
/// then those it found.
pub const SOURCES_MAX: usize = 16;
/// A peer it found is dropped once this many rounds of [`Hosts::discover_once`] in a row could
/// not reach it, so that hosts that went away do not fill the places of [`SOURCES_MAX`].
pub const DROP_AFTER: u32 = 3;

type Tx<E> = <Upgrader as commonware_stream::Upgrader>::Sender<StreamOf<E>, SinkOf<E>>;
type Rx<E> = <Upgrader as commonware_stream::Upgrader>::Receiver<StreamOf<E>, SinkOf<E>>;

/// One host, reached over the hosting protocol.
pub struct PeerSource<E: Network> {
    context: E,
    upgrader: Upgrader,
    namespace: Vec<u8>,
    peer: PeerAddr,
    name: String,
    /// The open connection, if any: one request at a time.
    conn: tokio::sync::Mutex<Option<(Tx<E>, Rx<E>)>>,
}

impl<E: Network> std::fmt::Debug for PeerSource<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSource")
            .field("peer", &self.name)
            .finish_non_exhaustive()
    }
}

impl<E> PeerSource<E>
where
    E: Network + Spawner + Clock + rand_core_10::CryptoRng,
{
    /// `peer`, to be dialed as the node whose hosting identity is `key`, in the chain whose
    /// hosting namespace is `namespace` ([`super::namespace`]).
    pub fn new(context: E, key: PrivateKey, namespace: Vec<u8>, peer: PeerAddr) -> PeerSource<E> {
        PeerSource {
            context,
            upgrader: super::upgrader(key),
            namespace,
            name: peer.to_string(),
            peer,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    pub fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    async fn dial(&self) -> Result<(Tx<E>, Rx<E>), SourceError> {
        let key = self
            .peer
            .public_key()
            .ok_or_else(|| unreachable("not a public key"))?;
        let (sink, stream) = {
            let dial = pin!(self.context.dial(self.peer.addr));
            match select(dial, pin!(self.context.sleep(DIAL_TIMEOUT))).await {
                Either::Left((r, _)) => r.map_err(|e| unreachable(format!("dial: {e}")))?,
                Either::Right(_) => return Err(unreachable("dial timed out")),
            }
        };
        self.upgrader
            .clone()
            .dial(
                self.context.child("handshake"),
                &self.namespace,
                wire::MESSAGE_MAX,
                key,
                stream,
                sink,
            )
            .await
            .map_err(|e| unreachable(format!("handshake: {e}")))
    }

    /// Sends `request` and waits for its answer; a failed connection is dropped (the next
    /// request dials again). A connection that fails before any answer after lying unused —
    /// the host closes idle ones — is dialed again at once, once: it is no sign of a failing
    /// host. (Asking again is safe: every request is a read, and a forwarded transaction the
    /// host already has is refused as a duplicate.)
    async fn ask(&self, request: &Request) -> Result<Response, SourceError> {
        let mut conn = self.conn.lock().await;
        let reused = conn.is_some();
        let answer = match self.exchange(&mut conn, request).await {
            Err(Failed::Broken(_)) if reused => self.exchange(&mut conn, request).await,
            answer => answer,
        };
        match answer.map_err(|f| match f {
            Failed::Broken(why) | Failed::Other(why) => {
                unreachable(format!("{}: {why}", self.name))
            }
        })? {
            Response::Refused {
                why: Refusal::Pruned,
                message,
            } => Err(SourceError::Pruned(format!("{}: {message}", self.name))),
            Response::Refused { why, message } => Err(unreachable(format!(
                "{}: refused ({why:?}): {message}",
                self.name
            ))),
            other => Ok(other),
        }
    }

    /// One request and its answer on `conn`, dialed first if there is none; dropped if it fails.
    async fn exchange(
        &self,
        conn: &mut Option<(Tx<E>, Rx<E>)>,
        request: &Request,
    ) -> Result<Response, Failed> {
        if conn.is_none() {
            *conn = Some(
                self.dial()
                    .await
                    .map_err(|e| Failed::Other(e.to_string()))?,
            );
        }
        let (tx, rx) = conn.as_mut().expect("dialed");
        let answer = async {
            tx.send(wire::encode(request))
                .await
                .map_err(|e| Failed::Broken(format!("send: {e}")))?;
            let recv = pin!(rx.recv());
            let message = match select(recv, pin!(self.context.sleep(REQUEST_TIMEOUT))).await {
                Either::Left((m, _)) => m.map_err(|e| Failed::Broken(format!("receive: {e}")))?,
                Either::Right(_) => return Err(Failed::Other("no answer in time".into())),
            };
            wire::decode::<Response>(message.coalesce().as_ref())
                .map_err(|e| Failed::Other(e.to_string()))
        }
        .await;
        if answer.is_err() {
            *conn = None;
        }
        answer
    }

    /// The hosts this peer knows, announcing that this node hosts on `listen`.
    pub async fn peers(&self, listen: Option<u16>) -> Result<Vec<PeerAddr>, SourceError> {
        match self.ask(&Request::Peers { listen }).await? {
            Response::Peers(list) => Ok(list
                .into_iter()
                .take(wire::PEERS_MAX)
                .map(|p| PeerAddr {
                    key: p.key,
                    addr: p.addr(),
                })
                .collect()),
            other => Err(self.unexpected(&other)),
        }
    }

    fn unexpected(&self, answer: &Response) -> SourceError {
        let what = format!("{answer:?}");
        unreachable(format!(
            "{}: answered {}",
            self.name,
            what.chars().take(60).collect::<String>()
        ))
    }
}

/// How an exchange failed: the connection broke (closed or reset), or anything else (a dial, a
/// time-out, an undecodable answer).
enum Failed {
    Broken(String),
    Other(String),
}

fn unreachable(why: impl Into<String>) -> SourceError {
    SourceError::Unreachable(why.into())
}

impl<E> Source for PeerSource<E>
where
    E: Network + Spawner + Clock + rand_core_10::CryptoRng,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn height(&self) -> BoxFuture<'_, Result<u64, SourceError>> {
        Box::pin(async move {
            match self.ask(&Request::Height).await? {
                Response::Height(h) => Ok(h),
                other => Err(self.unexpected(&other)),
            }
        })
    }

    fn finality(&self, from: u64) -> BoxFuture<'_, Result<Option<Finality>, SourceError>> {
        Box::pin(async move {
            match self.ask(&Request::Finality { from }).await? {
                Response::Finality(f) => Ok(f.map(|f| Finality {
                    height: f.height,
                    block: Hash(f.block),
                    header: f.header,
                    certificate: f.certificate,
                })),
                other => Err(self.unexpected(&other)),
            }
        })
    }

    fn block(&self, height: u64) -> BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        Box::pin(async move {
            match self.ask(&Request::Block { height }).await? {
                Response::Block(bytes) => Ok(bytes),
                other => Err(self.unexpected(&other)),
            }
        })
    }

    fn offers(&self) -> BoxFuture<'_, Result<Vec<(u64, kassa_db::Committed)>, SourceError>> {
        Box::pin(async move {
            match self.ask(&Request::Offers).await? {
                Response::Offers(offers) => Ok(offers),
                other => Err(self.unexpected(&other)),
            }
        })
    }

    fn sync(&self, request: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        Box::pin(async move {
            match self.ask(&Request::Sync { request }).await? {
                Response::Sync(answer) => Ok(answer),
                other => Err(self.unexpected(&other)),
            }
        })
    }

    fn forward(&self, txs: Vec<SignedTransaction>) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(async move {
            for lot in txs.chunks(wire::FORWARD_MAX) {
                let request = Request::Forward {
                    txs: lot.iter().map(SignedTransaction::encode).collect(),
                };
                match self.ask(&request).await? {
                    Response::Forwarded { refused: 0 } => {}
                    Response::Forwarded { refused } => {
                        tracing::warn!(source = %self.name, refused, "the source refused forwarded transactions");
                    }
                    other => return Err(self.unexpected(&other)),
                }
            }
            Ok(())
        })
    }
}

/// A follower's peers: those it was given, then those they told it of, up to [`SOURCES_MAX`] in
/// all; one it found is dropped when it stops answering ([`DROP_AFTER`]).
pub struct Hosts<E: Network> {
    context: E,
    key: PrivateKey,
    namespace: Vec<u8>,
    /// The port this node hosts on, announced to its peers.
    listen: Option<u16>,
    peers: Mutex<Vec<Peer<E>>>,
}

/// One of a follower's peers.
struct Peer<E: Network> {
    source: Arc<PeerSource<E>>,
    /// Given in the configuration (kept whatever happens), rather than found.
    given: bool,
    /// Rounds of discovery in a row in which it could not be asked.
    unreachable: u32,
}

impl<E: Network> std::fmt::Debug for Hosts<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peers = self.peers.lock().expect("never poisoned");
        f.debug_struct("Hosts")
            .field(
                "peers",
                &peers
                    .iter()
                    .map(|p| p.source.name.clone())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<E> Hosts<E>
where
    E: Network + Spawner + Clock + rand_core_10::CryptoRng,
{
    /// The peers `seeds`, dialed as `key` in the chain whose hosting namespace is `namespace`;
    /// `listen` is the port this node hosts on, if it does.
    pub fn new(
        context: E,
        key: PrivateKey,
        namespace: Vec<u8>,
        listen: Option<u16>,
        seeds: &[PeerAddr],
    ) -> Arc<Hosts<E>> {
        let hosts = Hosts {
            context,
            key,
            namespace,
            listen,
            peers: Mutex::new(Vec::new()),
        };
        // Every peer it was given is a source; the cap is on those it finds.
        let mut given: Vec<Peer<E>> = Vec::new();
        for s in seeds {
            if !given.iter().any(|p| p.source.peer == *s) {
                given.push(Peer {
                    source: hosts.source(s),
                    given: true,
                    unreachable: 0,
                });
            }
        }
        *hosts.peers.lock().expect("never poisoned") = given;
        Arc::new(hosts)
    }

    /// Whether `peer` would be a new source: not this node, not known already, and fewer than
    /// [`SOURCES_MAX`] known.
    fn wanted(&self, peer: &PeerAddr) -> bool {
        let me = consensus::public_key_bytes(&consensus::public_key(&self.key));
        let peers = self.peers.lock().expect("never poisoned");
        peer.key != me
            && peers.len() < SOURCES_MAX
            && !peers
                .iter()
                .any(|p| p.source.peer.key == peer.key || p.source.peer.addr == peer.addr)
    }

    fn source(&self, peer: &PeerAddr) -> Arc<PeerSource<E>> {
        Arc::new(PeerSource::new(
            self.context.child("peer"),
            self.key.clone(),
            self.namespace.clone(),
            peer.clone(),
        ))
    }

    /// Adds `peer` if [`Hosts::wanted`].
    fn add(&self, peer: &PeerAddr) -> Option<Arc<PeerSource<E>>> {
        if !self.wanted(peer) {
            return None;
        }
        let source = self.source(peer);
        self.peers.lock().expect("never poisoned").push(Peer {
            source: source.clone(),
            given: false,
            unreachable: 0,
        });
        Some(source)
    }

    /// The peers as a follower's sources.
    pub fn sources(&self) -> Vec<Arc<dyn Source>> {
        self.peers
            .lock()
            .expect("never poisoned")
            .iter()
            .map(|p| p.source.clone() as Arc<dyn Source>)
            .collect()
    }

    /// How many peers it has.
    pub fn len(&self) -> usize {
        self.peers.lock().expect("never poisoned").len()
    }

    /// Whether it has no peer (never: it keeps those it was given).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts a round in which `peer` could or could not be asked; drops a peer it found (from
    /// here and from `follower`'s sources) after [`DROP_AFTER`] rounds in a row unreachable.
    fn reached(&self, peer: &PeerSource<E>, reached: bool, follower: &Follower) {
        let mut peers = self.peers.lock().expect("never poisoned");
        let Some(at) = peers.iter().position(|p| p.source.peer == peer.peer) else {
            return;
        };
        let p = &mut peers[at];
        p.unreachable = if reached { 0 } else { p.unreachable + 1 };
        if !p.given && p.unreachable >= DROP_AFTER && follower.remove_source(&peer.name) {
            tracing::info!(peer = %peer.name, rounds = DROP_AFTER, "dropped a host that stopped answering");
            peers.remove(at);
        }
    }

    /// Asks one round of every peer for the hosts it knows, and hands the new ones to
    /// `follower` as sources; returns how many were new. A peer it found that could not be
    /// asked in [`DROP_AFTER`] rounds in a row is dropped.
    pub async fn discover_once(&self, follower: &Follower) -> usize {
        let peers: Vec<_> = self
            .peers
            .lock()
            .expect("never poisoned")
            .iter()
            .map(|p| p.source.clone())
            .collect();
        let mut found = 0;
        for p in peers {
            let answer = p.peers(self.listen).await;
            self.reached(&p, answer.is_ok(), follower);
            match answer {
                Ok(list) => {
                    for peer in list {
                        // Only a host that answers, with the key it was announced with, is
                        // kept: an address that leads nowhere would cost the follower a
                        // time-out each time it came round to it.
                        if !self.wanted(&peer) || self.source(&peer).height().await.is_err() {
                            continue;
                        }
                        if let Some(s) = self.add(&peer) {
                            tracing::info!(peer = %peer, via = %p.name(), "found a host");
                            follower.add_source(s);
                            found += 1;
                        }
                    }
                }
                Err(e) => tracing::debug!(peer = %p.name(), error = %e, "could not ask for peers"),
            }
        }
        found
    }

    /// Asks the peers for others every [`DISCOVER_EVERY`], forever.
    pub async fn discover(self: Arc<Self>, follower: Arc<Follower>) {
        loop {
            self.discover_once(&follower).await;
            self.context.sleep(DISCOVER_EVERY).await;
        }
    }
}
