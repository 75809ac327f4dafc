//! Blocks: an ordered list of signed transactions and a header that commits to them and to the
//! state after executing them.

use crate::codec::{self, BoundedVec, DecodeError};
use crate::crypto::{Address, Hash};
use crate::tx::SignedTransaction;
use crate::{BLOCK_SIZE_MAX, BLOCK_TXS_MAX};
use borsh::{BorshDeserialize, BorshSerialize};

/// A block header. Field order is wire format.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockHeader {
    pub height: u64,
    pub parent: Hash,
    /// Block time in milliseconds since the Unix epoch, agreed by consensus. The only clock the
    /// state machine ever sees.
    pub timestamp_ms: u64,
    pub proposer: Address,
    /// [`tx_root`] of the block's transactions.
    pub tx_root: Hash,
    /// Root of the state after executing this block.
    pub state_root: Hash,
    /// The consensus engine's context of this proposal (round, leader, parent view), in the
    /// engine's own encoding. Opaque here; committed by the block id so that a block cannot be
    /// replayed into another round. Empty for the genesis block of a chain without consensus.
    pub consensus: BoundedVec<u8, CONSENSUS_CONTEXT_LEN_MAX>,
}

/// Upper bound of the consensus context carried in a header, in bytes.
pub const CONSENSUS_CONTEXT_LEN_MAX: usize = 256;

impl BlockHeader {
    /// The block's id.
    pub fn hash(&self) -> Hash {
        Hash::of(&[b"KASSA_BLOCK_V1", &codec::encode(self)])
    }
}

/// A block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: BoundedVec<SignedTransaction, BLOCK_TXS_MAX>,
}

impl Block {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
    /// Decodes at most [`BLOCK_SIZE_MAX`] bytes, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, BLOCK_SIZE_MAX)
    }
}

/// Binary Merkle root (SHA-256, domain-separated leaves and nodes; an odd node is promoted) of the
/// transaction hashes. The empty list has root `sha256("KASSA_TXROOT_EMPTY")`.
pub fn tx_root(txs: &[SignedTransaction]) -> Hash {
    tx_root_of(txs.iter().map(SignedTransaction::hash))
}

/// [`tx_root`] from the transactions' hashes, in block order (for a builder that has them
/// already).
pub fn tx_root_of(hashes: impl IntoIterator<Item = Hash>) -> Hash {
    let mut level: Vec<Hash> = hashes
        .into_iter()
        .map(|h| Hash::of(&[&[0u8], &h.0]))
        .collect();
    if level.is_empty() {
        return Hash::of(&[b"KASSA_TXROOT_EMPTY"]);
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => Hash::of(&[&[1u8], &a.0, &b.0]),
                [a] => *a,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    level[0]
}
