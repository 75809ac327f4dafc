//! The host: accepts any peer's encrypted connection within its [`Limits`] and answers its
//! requests from this node's finalized chain, one at a time.

use super::wire::{self, Refusal, Request, Response};
use super::{Limits, PeerAddr, Upgrader};
use crate::Node;
use crate::consensus::{self, PublicKey};
use commonware_runtime::{Clock, Listener as _, Network, Spawner};
use commonware_stream::Upgrader as _;
use futures::future::{Either, select};
use governor::{Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most announced hosts a [`Book`] keeps.
pub const BOOK_MAX: usize = 256;

/// The hosts a node knows and hands out: those it was configured with, and the newest
/// announcements, one per IP address ([`client`]: so that one machine cannot fill the book), at
/// most [`BOOK_MAX`].
#[derive(Debug, Default)]
pub struct Book {
    known: Vec<PeerAddr>,
    announced: Mutex<Announced>,
}

#[derive(Debug, Default)]
struct Announced {
    by_ip: BTreeMap<IpAddr, (PeerAddr, u64)>,
    next: u64,
}

impl Book {
    /// A book that starts with `known` (a follower's configured peers).
    pub fn new(known: Vec<PeerAddr>) -> Book {
        Book {
            known,
            announced: Mutex::default(),
        }
    }

    /// Notes that `key`, connected from `ip`, hosts on `port`.
    pub fn announce(&self, key: [u8; 32], ip: IpAddr, port: u16) {
        let mut a = self.announced.lock().expect("never poisoned");
        let seq = a.next;
        a.next += 1;
        let peer = PeerAddr {
            key,
            addr: SocketAddr::new(ip, port),
        };
        a.by_ip.insert(client(ip), (peer, seq));
        if a.by_ip.len() > BOOK_MAX {
            let oldest = a
                .by_ip
                .iter()
                .min_by_key(|(_, (_, seq))| *seq)
                .map(|(ip, _)| *ip)
                .expect("not empty");
            a.by_ip.remove(&oldest);
        }
    }

    /// Up to [`wire::PEERS_MAX`] hosts other than `asker`: the known ones, then the newest
    /// announced.
    pub fn list(&self, asker: Option<&[u8; 32]>) -> Vec<PeerAddr> {
        let a = self.announced.lock().expect("never poisoned");
        let mut newest: Vec<&(PeerAddr, u64)> = a.by_ip.values().collect();
        newest.sort_by_key(|(_, seq)| std::cmp::Reverse(*seq));
        let mut out: Vec<PeerAddr> = Vec::new();
        for p in self.known.iter().chain(newest.into_iter().map(|(p, _)| p)) {
            if out.len() == wire::PEERS_MAX {
                break;
            }
            if Some(&p.key) != asker && !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

/// Whom a connection counts against: its IPv4 address, or its IPv6 address's /64 (what one
/// subscriber is given, so that one holds one place, not 2^64).
pub fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !u128::from(u64::MAX);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

/// Open connections, in all and per IP address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_ip: BTreeMap<IpAddr, usize>,
    /// `total`, in the node's metrics.
    gauge: Gauge,
}

/// A connection's place among the [`Open`] ones, given back when it closes.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Slot {
    fn take(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &Limits) -> Option<Slot> {
        let mut o = open.lock().expect("never poisoned");
        let mine = o.per_ip.get(&ip).copied().unwrap_or(0);
        if o.total >= limits.connections || mine >= limits.per_ip {
            return None;
        }
        o.total += 1;
        o.per_ip.insert(ip, mine + 1);
        o.gauge.set(i64::try_from(o.total).unwrap_or(i64::MAX));
        Some(Slot {
            open: open.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().expect("never poisoned");
        o.total -= 1;
        o.gauge.set(i64::try_from(o.total).unwrap_or(i64::MAX));
        match o.per_ip.get_mut(&self.ip) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                o.per_ip.remove(&self.ip);
            }
        }
    }
}

/// A rate per IP address, on the runtime's clock.
type Rate<E> = RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    E,
    governor::middleware::NoOpMiddleware<std::time::SystemTime>,
>;

/// Everything a connection's task shares with the others.
struct Shared<E: Clock> {
    node: Arc<Node>,
    book: Arc<Book>,
    upgrader: Upgrader,
    namespace: Vec<u8>,
    limits: Limits,
    /// Requests per IP address.
    requests: Rate<E>,
    /// Forwarded transactions per IP address.
    forward: Rate<E>,
    requests_served: Counter,
}

/// Waits until `ip` may spend `n` of `rate`'s tokens: a peer faster than its rate is slowed
/// down, not refused (its connection waits, and so do its others from the same address).
/// `false` if `n` is more than the rate's burst: it never could.
async fn throttle<E: Clock>(context: &E, rate: &Rate<E>, ip: &IpAddr, n: NonZeroU32) -> bool {
    loop {
        match rate.check_key_n(ip, n) {
            Ok(Ok(())) => return true,
            Ok(Err(later)) => {
                let wait = later.wait_time_from(context.current());
                context.sleep(wait.max(Duration::from_millis(1))).await;
            }
            Err(_) => return false,
        }
    }
}

/// A rate of `per_second` per IP address, with a burst of at least `burst`.
fn rate<E: Clock>(context: E, per_second: u32, burst: u32) -> Rate<E> {
    let n = NonZeroU32::new(per_second.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(burst.max(per_second).max(1)).expect("at least 1");
    RateLimiter::dashmap_with_clock(Quota::per_second(n).allow_burst(burst), context)
}

/// Hosts the chain on `listen` for any peer, as the node whose hosting identity is `key`, until
/// the listener fails. `book` is what it hands out for [`Request::Peers`].
pub async fn serve<E>(
    context: E,
    node: Arc<Node>,
    key: consensus::PrivateKey,
    namespace: Vec<u8>,
    listen: SocketAddr,
    limits: Limits,
    book: Arc<Book>,
) -> Result<(), commonware_runtime::Error>
where
    E: Network + Spawner + Clock + rand_core_10::CryptoRng,
{
    let mut listener = context.bind(listen).await?;
    let forward_max = u32::try_from(wire::FORWARD_MAX).expect("small");
    let t = node.telemetry();
    let open = Arc::new(Mutex::new(Open {
        gauge: t.metric(
            "kassa_host_connections",
            "Connections open to this node's host (followers syncing from it)",
            Gauge::default,
        ),
        ..Open::default()
    }));
    let turned_away: Counter = t.metric(
        "kassa_host_connections_refused",
        "Connections this node's host closed on accept, at its connection limits",
        Counter::default,
    );
    let requests_served = t.metric(
        "kassa_host_requests",
        "Requests this node's host answered",
        Counter::default,
    );
    let shared = Arc::new(Shared {
        requests_served,
        requests: rate(context.child("rate"), limits.requests_per_second, 1),
        forward: rate(
            context.child("rate"),
            limits.forward_per_second,
            forward_max,
        ),
        node,
        book,
        upgrader: super::upgrader(key),
        namespace,
        limits,
    });
    let mut accepted = 0u64;
    loop {
        let (addr, sink, stream) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted: the
                // listener itself is fine; give the system a moment.
                tracing::debug!(error = %e, "host: accept failed");
                context.sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        accepted += 1;
        if accepted.is_multiple_of(1_024) {
            // Forget the rates of addresses gone quiet: the maps stay as small as the set of
            // recent clients.
            shared.requests.retain_recent();
            shared.forward.retain_recent();
        }
        let Some(slot) = Slot::take(&open, client(addr.ip()), &shared.limits) else {
            tracing::debug!(%addr, "host: connection refused (at the connection limits)");
            turned_away.inc();
            continue;
        };
        let shared = shared.clone();
        context.child("peer").spawn(move |context| async move {
            let _slot = slot;
            if let Err(e) = connection(context, &shared, addr, sink, stream).await {
                tracing::debug!(%addr, error = %e, "host: connection ended");
            }
        });
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("stream: {0}")]
    Stream(String),
    #[error("idle")]
    Idle,
    #[error(transparent)]
    Malformed(#[from] wire::Malformed),
}

async fn connection<E>(
    context: E,
    shared: &Shared<E>,
    addr: SocketAddr,
    sink: commonware_runtime::SinkOf<E>,
    stream: commonware_runtime::StreamOf<E>,
) -> Result<(), Ended>
where
    E: Network + Spawner + Clock + rand_core_10::CryptoRng,
{
    let (peer, mut tx, mut rx) = shared
        .upgrader
        .clone()
        .listen(
            context.child("handshake"),
            &shared.namespace,
            wire::MESSAGE_MAX,
            |_: PublicKey| async { true },
            stream,
            sink,
        )
        .await
        .map_err(|e| Ended::Handshake(e.to_string()))?;
    let peer = consensus::public_key_bytes(&peer);
    loop {
        let message = {
            let recv = pin!(rx.recv());
            let idle = pin!(context.sleep(shared.limits.idle));
            match select(recv, idle).await {
                Either::Left((m, _)) => m.map_err(|e| Ended::Stream(e.to_string()))?,
                Either::Right(_) => return Err(Ended::Idle),
            }
        };
        let request: Request = wire::decode(message.coalesce().as_ref())?;
        throttle(
            &context,
            &shared.requests,
            &client(addr.ip()),
            NonZeroU32::MIN,
        )
        .await;
        let response = answer(&context, shared, addr.ip(), &peer, request).await;
        shared.requests_served.inc();
        // A peer that does not read its answer is dropped, as one that asks nothing is.
        let send = pin!(tx.send(wire::encode(&response)));
        match select(send, pin!(context.sleep(shared.limits.idle))).await {
            Either::Left((sent, _)) => sent.map_err(|e| Ended::Stream(e.to_string()))?,
            Either::Right(_) => return Err(Ended::Idle),
        }
    }
}

fn refused(why: Refusal, message: impl Into<String>) -> Response {
    Response::Refused {
        why,
        message: message.into(),
    }
}

/// Runs a blocking read of the database off the runtime's event loop.
async fn read<E, T>(context: &E, f: impl FnOnce() -> T + Send + 'static) -> Option<T>
where
    E: Spawner,
    T: Send + 'static,
{
    context
        .child("read")
        .shared(true)
        .spawn(move |_| async move { f() })
        .await
        .ok()
}

async fn answer<E>(
    context: &E,
    shared: &Shared<E>,
    ip: IpAddr,
    peer: &[u8; 32],
    request: Request,
) -> Response
where
    E: Spawner + Clock,
{
    let node = &shared.node;
    let internal = |e: &dyn std::fmt::Display| refused(Refusal::Internal, e.to_string());
    match request {
        Request::Height => Response::Height(node.head().height),
        Request::Finality { from } => {
            Response::Finality(node.finality(from).await.map(|f| wire::Finality {
                height: f.height,
                block: f.block.0,
                header: f.header,
                certificate: f.certificate,
            }))
        }
        Request::Block { height } => {
            let n = node.clone();
            match read(context, move || n.db().block_bytes(height)).await {
                Some(Ok(Some(bytes))) => Response::Block(bytes),
                Some(Ok(None)) => refused(Refusal::NotFound, format!("no block {height} here")),
                Some(Err(e @ kassa_db::DbError::Pruned { .. })) => {
                    refused(Refusal::Pruned, e.to_string())
                }
                Some(Err(e)) => internal(&e),
                None => internal(&"the read stopped"),
            }
        }
        Request::Offers => {
            let n = node.clone();
            match read(context, move || n.db().offers()).await {
                Some(Ok(offers)) => Response::Offers(offers),
                Some(Err(e)) => internal(&e),
                None => internal(&"the read stopped"),
            }
        }
        Request::Sync { request } => {
            if request.len() > wire::SYNC_REQUEST_MAX {
                return refused(
                    Refusal::TooLarge,
                    "a request of state sync is a few dozen bytes",
                );
            }
            let n = node.clone();
            match read(context, move || n.db().serve_sync(&request)).await {
                Some(Ok(answer)) => Response::Sync(answer),
                // A malformed request, or one for a state no longer offered.
                Some(Err(kassa_db::DbError::Commitment(e))) => {
                    refused(Refusal::NotFound, e.to_string())
                }
                Some(Err(e)) => internal(&e),
                None => internal(&"the read stopped"),
            }
        }
        Request::Forward { txs } => {
            let Some(n) = u32::try_from(txs.len()).ok().and_then(NonZeroU32::new) else {
                return Response::Forwarded { refused: 0 };
            };
            if txs.len() > wire::FORWARD_MAX {
                return refused(
                    Refusal::TooLarge,
                    format!("at most {} transactions at once", wire::FORWARD_MAX),
                );
            }
            if !throttle(context, &shared.forward, &client(ip), n).await {
                return refused(Refusal::TooLarge, "more than this host's burst of forwards");
            }
            let mut valid = Vec::with_capacity(txs.len());
            let mut refused_n = 0u32;
            for bytes in &txs {
                match kassa_state::decode_tx(bytes) {
                    Ok(tx) => valid.push(tx),
                    Err(_) => refused_n += 1,
                }
            }
            match node.submit(valid) {
                Ok(results) => {
                    refused_n += u32::try_from(results.iter().filter(|r| r.is_err()).count())
                        .expect("at most FORWARD_MAX");
                    Response::Forwarded { refused: refused_n }
                }
                Err(e) => internal(&e),
            }
        }
        Request::Peers { listen } => {
            if let Some(port) = listen {
                shared.book.announce(*peer, ip, port);
            }
            Response::Peers(
                shared
                    .book
                    .list(Some(peer))
                    .into_iter()
                    .map(|p| wire::Peer::new(p.key, p.addr))
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_subscriber_counts_once_whatever_address_of_its_64_it_uses() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client(a), client(b));
        assert_ne!(client(a), client(other));
        let v4: IpAddr = "10.0.0.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client(v4), v4);
        assert_eq!(client(mapped), v4);
    }

    #[test]
    fn connections_beyond_the_caps_are_turned_away_and_a_closed_one_frees_its_place() {
        let open = Arc::new(Mutex::new(Open::default()));
        let limits = Limits {
            connections: 3,
            per_ip: 2,
            ..Limits::default()
        };
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = Slot::take(&open, a, &limits).unwrap();
        let _a2 = Slot::take(&open, a, &limits).unwrap();
        assert!(Slot::take(&open, a, &limits).is_none(), "per address");
        let _b1 = Slot::take(&open, b, &limits).unwrap();
        assert!(Slot::take(&open, c, &limits).is_none(), "in all");
        drop(a1);
        let c1 = Slot::take(&open, c, &limits);
        assert!(c1.is_some(), "a place freed");
        let total = open.lock().unwrap().total;
        assert_eq!(total, 3);
    }

    #[test]
    fn the_book_keeps_one_host_per_address_the_newest_and_never_hands_a_host_itself() {
        let book = Book::new(Vec::new());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        book.announce([1; 32], ip, 7000);
        book.announce([2; 32], ip, 7001);
        let listed = book.list(None);
        assert_eq!(listed.len(), 1, "one per address");
        assert_eq!(listed[0].key, [2; 32], "the newest");
        assert!(book.list(Some(&[2; 32])).is_empty(), "not to itself");
        for i in 0..=BOOK_MAX {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(
                0x0b00_0000 + u32::try_from(i).unwrap(),
            ));
            book.announce([3; 32], ip, 7000);
        }
        assert_eq!(book.announced.lock().unwrap().by_ip.len(), BOOK_MAX);
        assert_eq!(book.list(None).len(), wire::PEERS_MAX);
    }
}
