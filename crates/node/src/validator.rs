//! Validator keys: ed25519, as Commonware's consensus and p2p use them. A validator's public key
//! is also its Kassa address.

use bytes::Bytes;
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::{Signer as _, ed25519};

/// A validator's secret key.
pub type PrivateKey = ed25519::PrivateKey;
/// A validator's public key.
pub type PublicKey = ed25519::PublicKey;

/// The public key of a validator key.
pub fn public_key(key: &PrivateKey) -> PublicKey {
    key.public_key()
}

/// Reads a validator key from its 32 seed bytes.
pub fn key_from_seed(seed: [u8; 32]) -> Option<ed25519::PrivateKey> {
    ed25519::PrivateKey::decode(Bytes::copy_from_slice(&seed)).ok()
}

/// The 32 bytes of a validator's public key (also its Kassa address).
pub fn public_key_bytes(key: &ed25519::PublicKey) -> [u8; 32] {
    key.encode()
        .as_ref()
        .try_into()
        .expect("ed25519 public keys are 32 bytes")
}

/// A validator public key from its 32 bytes.
pub fn public_key_from_bytes(bytes: [u8; 32]) -> Option<ed25519::PublicKey> {
    ed25519::PublicKey::decode(Bytes::copy_from_slice(&bytes)).ok()
}
