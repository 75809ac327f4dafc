//! The block decoders and finalization certificates, as a follower or a peer meets them.
//!
//! The first byte chooses what the rest is read as:
//! - `0`: a Kassa block ([`Block::decode`]): what decodes is its one canonical encoding, and the
//!   engine can wrap it (reading the consensus context its header carries) without panicking.
//! - `1`: a block as the consensus engine reads it off the wire ([`CBlock`] under the engine's
//!   codec, length-prefixed): what decodes writes back the same bytes.
//! - otherwise: a finalization certificate for a block, which must never verify against four
//!   validators whose keys the fuzzer does not have, and must never panic the verifier.

use bytes::Bytes;
use commonware_codec::{Decode as _, Encode as _};
use commonware_cryptography::{Signer as _, ed25519};
use kassa_node::consensus::{CBlock, namespace, verify_finalization};
use kassa_types::{BLOCK_SIZE_MAX, Block, Hash};

/// Reads `data` as the first byte says.
///
/// # Panics
/// When a decoder accepts bytes that are not its value's encoding, or a forged certificate
/// verifies.
pub fn run(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which {
        0 => {
            if let Ok(block) = Block::decode(rest) {
                assert_eq!(block.encode(), rest, "a block has one encoding");
                let _ = block.header.hash();
                let _ = CBlock::new(block);
            }
        }
        1 => {
            if let Ok(b) = CBlock::decode_cfg(Bytes::copy_from_slice(rest), &BLOCK_SIZE_MAX) {
                assert_eq!(b.encode().as_ref(), rest, "the engine's codec is canonical");
            }
        }
        _ => {
            let validators: Vec<ed25519::PublicKey> = (0..4)
                .map(|i| ed25519::PrivateKey::from_seed(i).public_key())
                .collect();
            let mut rng = commonware_utils::test_rng();
            let block = Hash::of(&[b"block"]);
            let verdict = verify_finalization(
                &mut rng,
                &namespace("kassa-fuzz"),
                &validators,
                rest,
                &block,
            );
            assert!(verdict.is_err(), "a certificate nobody signed verified");
        }
    }
}
