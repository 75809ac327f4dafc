//! Hosting: the peer protocol by which any node — a validator or a follower — serves the chain
//! to followers, and by which followers find each other, with no HTTP API and no registration.
//!
//! A node that hosts listens on its host address (`host` in its config). A follower dials a peer
//! by its address and public key (`<key hex>@<ip:port>`), and both sides authenticate and encrypt
//! the connection with Commonware's stream (the SAKE handshake, then ChaCha20-Poly1305 records:
//! the transport under Commonware's p2p networks). Unlike those networks, a host admits any key:
//! a follower needs no place in a validator set, so anyone can join, and what keeps a host up is
//! the same as for its API — caps on connections (in all and per IP address), an idle time-out
//! (for asking and for reading answers), one request at a time per connection, and rates per IP
//! address on requests and on forwarded transactions that slow a fast peer down ([`Limits`]).
//!
//! Nothing a peer says is trusted: a follower checks every finalization certificate against the
//! genesis validators before it downloads a block, and re-executes every block
//! ([`crate::follow`]). The protocol is requests and answers ([`wire`]): a peer's height, the
//! first certificate at or above a height, a block's canonical bytes, a chunk of the state for
//! state sync, transactions forwarded to the chain, and the addresses of other hosts. A follower
//! that hosts announces its port when it asks for peers; a host keeps the newest announcements,
//! one per IP address, and hands them out, so followers find each other and keep following when
//! the peer they started from goes away ([`Hosts::discover`]).
//!
//! Files: [`wire`] the messages, `serve` the host, `source` a peer as a follower's source and
//! discovery.

mod serve;
mod source;
pub mod wire;

pub use serve::{Book, client, serve};
pub use source::{DROP_AFTER, Hosts, PeerSource, SOURCES_MAX};

use crate::consensus::{PrivateKey, PublicKey};
use commonware_cryptography::ChaCha20Poly1305;
use commonware_stream::cups::{self, Cups};
use commonware_stream::sake::{self, Sake};
use commonware_stream::utils::Timeout;
use std::net::SocketAddr;
use std::time::Duration;

/// The encrypted, authenticated connection: SAKE, then CUPS records, each attempt bounded by
/// [`HANDSHAKE_TIMEOUT`].
pub type Upgrader = Timeout<Cups<Sake<PrivateKey>, ChaCha20Poly1305>>;

/// How long a handshake may take, dialing or listening.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The upgrader of a node whose hosting identity is `key`.
pub fn upgrader(key: PrivateKey) -> Upgrader {
    Timeout::new(
        Cups::new(
            Sake {
                signer: key,
                synchrony_bound: crate::consensus::HANDSHAKE_SYNCHRONY,
                max_handshake_age: crate::consensus::HANDSHAKE_MAX_AGE,
                version: sake::Version::V1,
            },
            cups::Version::V1,
        ),
        HANDSHAKE_TIMEOUT,
    )
}

/// The hosting protocol's namespace for a chain whose consensus namespace is `chain`: a
/// handshake for another chain, or for consensus, fails.
pub fn namespace(chain: &[u8]) -> Vec<u8> {
    commonware_utils::union(chain, b"_HOST")
}

/// A host: its public key and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerAddr {
    pub key: [u8; 32],
    pub addr: SocketAddr,
}

impl PeerAddr {
    pub fn public_key(&self) -> Option<PublicKey> {
        crate::consensus::public_key_from_bytes(self.key)
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key: String = self.key.iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "{key}@{}", self.addr)
    }
}

/// Why a peer address does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a peer is <public key, 64 hex digits>@<ip:port>, not {0:?}")]
pub struct BadPeerAddr(pub String);

impl std::str::FromStr for PeerAddr {
    type Err = BadPeerAddr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPeerAddr(s.to_string());
        let (key, addr) = s.split_once('@').ok_or_else(bad)?;
        if key.len() != 64 || !key.is_ascii() {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&key[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let peer = PeerAddr {
            key: bytes,
            addr: addr.parse().map_err(|_| bad())?,
        };
        peer.public_key().ok_or_else(bad)?;
        Ok(peer)
    }
}

/// What a host admits, so that no client can take it down for free (the node's config
/// `[host]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections in all.
    pub connections: usize,
    /// Open connections from one IP address.
    pub per_ip: usize,
    /// A connection with no request for this long, or whose answer is not read for this long,
    /// is closed.
    pub idle: Duration,
    /// Requests one IP address may make per second (beyond, it waits for its answers).
    pub requests_per_second: u32,
    /// Transactions one IP address may forward per second (a burst of as many, and at least
    /// one forward's worth; beyond, it waits).
    pub forward_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 128,
            per_ip: 4,
            idle: Duration::from_secs(60),
            requests_per_second: 500,
            forward_per_second: 1_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_address_is_a_public_key_and_a_socket_address_and_nothing_else_parses() {
        let key = crate::consensus::public_key_bytes(&crate::consensus::public_key(
            &crate::consensus::key_from_seed([3; 32]).unwrap(),
        ));
        let peer = PeerAddr {
            key,
            addr: "127.0.0.1:7650".parse().unwrap(),
        };
        let text = peer.to_string();
        assert_eq!(text.parse::<PeerAddr>(), Ok(peer));
        for bad in [
            "127.0.0.1:7650",
            &text.replace('@', "#"),
            &text[2..],
            &format!("{}@localhost:1", &text[..64]),
            &format!("{}zz@127.0.0.1:1", &text[..62]),
        ] {
            assert!(bad.parse::<PeerAddr>().is_err(), "{bad} parsed");
        }
    }
}
