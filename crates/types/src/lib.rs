//! Kassa's wire types: everything that crosses a process boundary or is signed.
//!
//! Start reading at [`tx::Transaction`] (what a member signs), then [`rules::Rules`] (what a
//! society is made of) and [`codec`] (how every value is encoded: Borsh, little-endian, with an
//! explicit upper bound on every variable-length field so that decoding hostile bytes can neither
//! panic nor allocate without limit). This crate does no I/O and knows nothing about state.
//!
//! Architecture invariants:
//! - The encoding of every type here is frozen by `vectors/transactions.json` (see the
//!   `vectors` test). Changing a field order or a variant order is a hard fork.
//! - Signature acceptance is ZIP-215 (`ed25519-zebra`): single and batch verification accept
//!   exactly the same set of (key, message, signature) on every platform.
//! - No floats, no `usize` on the wire, no host-endian bytes.

pub mod block;
pub mod codec;
pub mod crypto;
pub mod ids;
pub mod rejection;
pub mod rules;
pub mod tx;

pub use block::{Block, BlockHeader};
pub use codec::{Bounded, BoundedString, BoundedVec, DecodeError};
pub use crypto::{Address, Hash, SecretKey, Signature};
pub use ids::{AmendmentId, AssetId, RequestId, SocietyId};
pub use rejection::Rejection;
pub use rules::Rules;
pub use tx::{Body, SignedTransaction, Transaction};

/// Domain-separation prefix of every transaction signature. Never reused for anything else.
pub const TX_NAMESPACE: &[u8] = b"KASSA_TX_V2";
/// Symbol of the native asset (asset id 0).
pub const NATIVE_SYMBOL: &str = "KAS";
/// The protocol version: bumped whenever an encoding, a rule or a default changes.
pub const PROTOCOL_VERSION: u32 = 2;
/// Decimals of the native asset.
pub const NATIVE_DECIMALS: u8 = 6;

/// Maximum encoded size of one signed transaction, in bytes.
pub const TX_SIZE_MAX: usize = 4 * 1024;
/// Maximum number of transactions in one block.
pub const BLOCK_TXS_MAX: usize = 10_000;
/// Maximum encoded size of one block, in bytes.
pub const BLOCK_SIZE_MAX: usize = 8 * 1024 * 1024;
/// Maximum length of a chain id, in bytes.
pub const CHAIN_ID_LEN_MAX: usize = 32;
/// Maximum length of a request memo (a short note or URI), in bytes.
pub const MEMO_LEN_MAX: usize = 256;
/// Maximum length of a society name, in bytes.
pub const SOCIETY_NAME_LEN_MAX: usize = 64;
/// Maximum length of a society purpose text, in bytes.
pub const PURPOSE_LEN_MAX: usize = 1024;
/// Asset symbols are 2..=12 characters of `A-Z0-9`.
pub const SYMBOL_LEN_MAX: usize = 12;
