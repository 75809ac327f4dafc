//! The consensus adapter: Commonware `simplex` (BFT ordering and finalization) and `marshal`
//! (block dissemination, storage, in-order delivery of finalized blocks) drive the [`Node`].
//!
//! - [`CBlock`] is a Kassa block as the engine sees it. Its digest is the Kassa block id
//!   (`header.hash()`), which commits to the engine's context (round, leader, parent view)
//!   carried opaquely in `header.consensus`.
//! - [`KassaApp`] implements the engine's `Application`: `propose` paces blocks and asks the node
//!   to build one; `verify` re-executes a peer's block. Both first make sure every
//!   not-yet-finalized ancestor is executed (after a restart, marshal hands them over).
//! - [`Finalizer`] receives finalized blocks in height order, at least once, and acknowledges each
//!   only after the node committed it (a crash before the ack means a re-delivery, which the node
//!   skips by height).
//!
//! The same code runs one validator (`kassa node --dev`) or many: only the validator set and the
//! peer addresses differ.
//!
//! Files: `block.rs` (the engine's view of a block), `app.rs` (the `Application`),
//! `finalizer.rs` (finalized blocks, group commit, certificates), `relay.rs` (transactions
//! between validators), `engine.rs` (wiring marshal, simplex and the relay), `network.rs` (real
//! p2p), `tuning.rs` (every timing and size the engine is given, with why).

mod app;
mod block;
mod engine;
mod finalizer;
mod network;
mod relay;
mod tuning;

pub use crate::validator::{
    PrivateKey, PublicKey, key_from_seed, public_key, public_key_bytes, public_key_from_bytes,
};
pub use app::KassaApp;
pub use block::CBlock;
use block::digest_of;
pub use engine::{CHANNELS, Channels, EngineConfig, max_message, run_engine};
pub use finalizer::Finalizer;
pub use network::{ConsensusConfig, run};
pub use relay::{RELAY_QUEUE, relay_message};
pub use tuning::{HANDSHAKE_MAX_AGE, HANDSHAKE_SYNCHRONY};

use bytes::Bytes;
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::simplex;
use commonware_consensus::simplex::types::{Context as SimplexContext, Finalization};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::Digest as _;
use commonware_cryptography::{Signer as _, ed25519, sha256};
use commonware_parallel::Sequential;
use commonware_utils::{TryCollect as _, ordered::Set, union};
use kassa_types::Hash;

/// Block ids, parent links and the engine's payload.
pub type Digest = sha256::Digest;
/// The engine's context of a proposal.
pub type Context = SimplexContext<Digest, ed25519::PublicKey>;
/// Validators sign votes with ed25519 (attributable: a double vote is provable).
pub type Scheme = simplex::scheme::ed25519::Scheme;

/// The network and signing namespace of a chain (so that chains never cross-talk or replay
/// each other's votes).
pub fn namespace(chain_id: &str) -> Vec<u8> {
    format!("KASSA_{chain_id}").into_bytes()
}

/// The engine context of the genesis block: identical on every node of a chain.
pub fn genesis_context() -> Vec<u8> {
    let leader = ed25519::PrivateKey::from_seed(0).public_key();
    Context {
        round: Round::new(Epoch::zero(), View::zero()),
        leader,
        parent: (View::zero(), Digest::EMPTY),
    }
    .encode()
    .to_vec()
}

/// Checks that `certificate` is a finalization of block `block` signed by a quorum of the
/// genesis `validators` of the chain `namespace`; returns how many of them signed it.
pub fn verify_finalization(
    rng: &mut impl rand_core_10::CryptoRng,
    namespace: &[u8],
    validators: &[PublicKey],
    certificate: &[u8],
    block: &Hash,
) -> Result<usize, &'static str> {
    let set: Set<PublicKey> = validators
        .iter()
        .cloned()
        .try_collect()
        .map_err(|_| "duplicate validator keys")?;
    let n = set.len();
    let verifier = Scheme::verifier(&union(namespace, b"_CONSENSUS"), set);
    let f = Finalization::<Scheme, Digest>::decode_cfg(Bytes::copy_from_slice(certificate), &n)
        .map_err(|_| "malformed finalization certificate")?;
    if f.proposal.payload != digest_of(block) {
        return Err("the certificate finalizes a different block");
    }
    if !f.verify(rng, &verifier, &Sequential) {
        return Err("the certificate's signatures do not verify");
    }
    Ok(f.certificate.signers.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finalization_certificate_that_does_not_decode_is_refused() {
        let validators: Vec<PublicKey> = (0..4)
            .map(|i| ed25519::PrivateKey::from_seed(i).public_key())
            .collect();
        let mut rng = commonware_utils::test_rng();
        let block = Hash::of(&[b"block"]);
        for garbage in [vec![], vec![0u8; 7], vec![0xffu8; 300]] {
            assert!(
                verify_finalization(&mut rng, b"KASSA_x", &validators, &garbage, &block).is_err()
            );
        }
    }
}
