//! The hosting protocol's messages: a [`Request`] from the dialer, one [`Response`] to each, in
//! order, on one connection. Each is one encrypted record whose plaintext is the message's Borsh
//! encoding (docs/protocol.md, "Hosting"); a message that does not decode whole, or is larger than
//! [`MESSAGE_MAX`], ends the connection.

use borsh::{BorshDeserialize, BorshSerialize};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Most transactions one [`Request::Forward`] carries.
pub const FORWARD_MAX: usize = 1_000;
/// Most peers one [`Response::Peers`] lists.
pub const PEERS_MAX: usize = 64;
/// Largest message, either way: a block at the consensus block-size limit, or an answer of
/// state sync, with room for their framing (the stream refuses anything larger before reading
/// it).
#[allow(clippy::cast_possible_truncation)] // Asserted to fit at compile time.
pub const MESSAGE_MAX: u32 = {
    let block = kassa_types::BLOCK_SIZE_MAX;
    let answer = kassa_db::qmdb::ANSWER_BYTES_MAX;
    let max = if block > answer { block } else { answer } + 64 * 1024;
    assert!(max <= u32::MAX as usize);
    max as u32
};

/// What a peer asks a host.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// Its finalized height.
    Height,
    /// The first finalization certificate at or above `from` (up to 1,024 heights on).
    Finality { from: u64 },
    /// The canonical bytes of the block at `height`.
    Block { height: u64 },
    /// The heights it offers to sync the state from, with what its state's commitment was
    /// after each (state sync).
    Offers,
    /// Transactions (canonical bytes, at most [`FORWARD_MAX`]) submitted to the asker, for the
    /// host's mempool.
    Forward { txs: Vec<Vec<u8>> },
    /// Other hosts it knows; `listen` announces the port the asker hosts on (at the IP address
    /// it connects from), so that the host may hand it out.
    Peers { listen: Option<u16> },
    /// Its answer to a request of state sync (`kassa_db::qmdb::requests`, at most
    /// [`SYNC_REQUEST_MAX`] bytes).
    Sync { request: Vec<u8> },
}

/// Longest request of state sync (they are a few dozen bytes).
pub const SYNC_REQUEST_MAX: usize = 64;

/// A finalization certificate and the header of the block it finalizes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Finality {
    pub height: u64,
    pub block: [u8; 32],
    pub header: Vec<u8>,
    pub certificate: Vec<u8>,
}

/// Another host: its public key, IP address (IPv4 as IPv6-mapped) and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Peer {
    pub key: [u8; 32],
    pub ip: [u8; 16],
    pub port: u16,
}

impl Peer {
    pub fn new(key: [u8; 32], addr: SocketAddr) -> Peer {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        Peer {
            key,
            ip: ip.octets(),
            port: addr.port(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        let v6 = Ipv6Addr::from(self.ip);
        let ip = v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4);
        SocketAddr::new(ip, self.port)
    }
}

/// Why a host did not answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Refusal {
    /// It no longer keeps that height (a node that prunes).
    Pruned,
    /// It has no such thing (a height above its head, a block it never had).
    NotFound,
    /// The request is out of bounds (too many transactions).
    TooLarge,
    /// It failed to read its own storage.
    Internal,
}

/// A host's answer.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Response {
    Height(u64),
    Finality(Option<Finality>),
    Block(Vec<u8>),
    Offers(Vec<(u64, kassa_db::Committed)>),
    /// How many of the forwarded transactions its mempool refused (each is logged there).
    Forwarded {
        refused: u32,
    },
    Peers(Vec<Peer>),
    Refused {
        why: Refusal,
        message: String,
    },
    /// An answer of state sync (qmdb's encoding).
    Sync(Vec<u8>),
}

/// Why a message is not one.
#[derive(Debug, thiserror::Error)]
#[error("undecodable message: {0}")]
pub struct Malformed(String);

/// The bytes of a message.
pub fn encode(message: &impl BorshSerialize) -> Vec<u8> {
    borsh::to_vec(message).expect("writing to a vector cannot fail")
}

/// A message from its bytes, all of them.
pub fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, Malformed> {
    borsh::from_slice(bytes).map_err(|e| Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_decodes_to_itself_and_trailing_or_missing_bytes_are_malformed() {
        let requests = [
            Request::Height,
            Request::Finality { from: 7 },
            Request::Block { height: 9 },
            Request::Offers,
            Request::Sync {
                request: vec![1, 2],
            },
            Request::Forward {
                txs: vec![vec![1, 2, 3]],
            },
            Request::Peers { listen: Some(7650) },
        ];
        for r in requests {
            let bytes = encode(&r);
            assert_eq!(decode::<Request>(&bytes).unwrap(), r);
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode::<Request>(&longer).is_err());
            assert!(decode::<Request>(&bytes[..bytes.len() - 1]).is_err() || bytes.len() == 1);
        }
        assert!(decode::<Request>(&[200]).is_err(), "an unknown variant");
        let peer = Peer::new([1; 32], "10.1.2.3:99".parse().unwrap());
        assert_eq!(peer.addr(), "10.1.2.3:99".parse().unwrap());
        let answer = Response::Peers(vec![peer]);
        assert_eq!(decode::<Response>(&encode(&answer)).unwrap(), answer);
    }

    #[test]
    fn the_bytes_are_those_docs_protocol_md_gives() {
        assert_eq!(encode(&Request::Height), [0]);
        assert_eq!(
            encode(&Request::Finality { from: 7 }),
            [1, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            encode(&Request::Peers { listen: Some(258) }),
            [5, 1, 2, 1],
            "variant, Some, port little-endian"
        );
        assert_eq!(
            encode(&Response::Refused {
                why: Refusal::TooLarge,
                message: "x".into()
            }),
            [6, 2, 1, 0, 0, 0, b'x']
        );
        let peer = Peer::new([9; 32], "1.2.3.4:5".parse().unwrap());
        let mut ip = [0u8; 16];
        ip[10..].copy_from_slice(&[0xff, 0xff, 1, 2, 3, 4]);
        assert_eq!(peer.ip, ip, "IPv4 as IPv6-mapped");
    }

    #[test]
    fn a_length_prefix_beyond_the_message_does_not_allocate_it() {
        // A forward claiming four billion transactions in a five-byte message.
        let bytes = [4u8, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<Request>(&bytes).is_err());
    }
}
