//! The hosting protocol's messages (`kassa_node::host::wire`), which any peer may send: a message
//! that decodes is the one encoding of itself (so two hosts never read one message two ways),
//! decoding allocates no more than the input holds, and what a forward carries goes through the
//! transaction decoder without a panic.

use kassa_node::host::wire::{self, Peer, Request, Response};

/// # Panics
/// When a message decodes but encodes to other bytes, or a peer's address does not survive the
/// round trip through `SocketAddr`.
pub fn run(data: &[u8]) {
    if let Ok(request) = wire::decode::<Request>(data) {
        assert_eq!(wire::encode(&request), data, "one encoding per request");
        if let Request::Forward { txs } = &request {
            for tx in txs {
                let _ = kassa_state::decode_tx(tx);
            }
        }
    }
    if let Ok(response) = wire::decode::<Response>(data) {
        assert_eq!(wire::encode(&response), data, "one encoding per answer");
        if let Response::Peers(peers) = &response {
            for p in peers {
                assert_eq!(Peer::new(p.key, p.addr()), *p, "an address round-trips");
            }
        }
    }
}
