//! Finalization certificates made outside consensus: what a test's source serves so that a
//! follower, which believes nothing else, accepts its blocks.

use commonware_codec::Encode as _;
use commonware_consensus::simplex::types::{Finalization, Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::{Signer as _, ed25519, sha256};
use commonware_parallel::Sequential;
use commonware_utils::iter::NonEmpty;
use commonware_utils::{TryCollect as _, ordered::Set, union};
use futures::future::BoxFuture;
use kassa_node::consensus::{self, Scheme};
use kassa_node::follow::Trust;
use kassa_types::Hash;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Four validators of the chain `chain` (keys from seeds 0–3) that sign whatever a test asks.
#[derive(Clone, Debug)]
pub struct Signers {
    pub keys: Vec<ed25519::PrivateKey>,
    pub trust: Trust,
}

impl Signers {
    pub fn new(chain: &str) -> Signers {
        let keys: Vec<ed25519::PrivateKey> = (0..4).map(ed25519::PrivateKey::from_seed).collect();
        let trust = Trust {
            validators: keys.iter().map(|k| k.public_key()).collect(),
            namespace: consensus::namespace(chain),
        };
        Signers { keys, trust }
    }

    /// A finalization certificate of `block` at view `view` (at least 1), signed by all four.
    pub fn certify(&self, block: &Hash, view: u64) -> Vec<u8> {
        let set: Set<ed25519::PublicKey> =
            self.trust.validators.iter().cloned().try_collect().unwrap();
        let namespace = union(&self.trust.namespace, b"_CONSENSUS");
        let proposal = Proposal::new(
            Round::new(Epoch::zero(), View::new(view)),
            View::new(view - 1),
            sha256::Digest(block.0),
        );
        let schemes: Vec<Scheme> = self
            .keys
            .iter()
            .map(|k| Scheme::signer(&namespace, set.clone(), k.clone()).unwrap())
            .collect();
        let votes: Vec<Finalize<Scheme, sha256::Digest>> = schemes
            .iter()
            .map(|s| Finalize::sign(s, proposal.clone()).unwrap())
            .collect();
        let votes = NonEmpty::try_new(votes.into_iter()).unwrap();
        Finalization::from_owned_finalizes(&schemes[0], votes, &Sequential)
            .unwrap()
            .encode()
            .to_vec()
    }
}

/// Certificates by height, served by a node as consensus' would be.
#[derive(Clone, Debug, Default)]
pub struct Certified(pub Arc<Mutex<BTreeMap<u64, Vec<u8>>>>);

impl kassa_node::Certificates for Certified {
    fn finalization(&self, height: u64) -> BoxFuture<'_, Option<Vec<u8>>> {
        let found = self.0.lock().unwrap().get(&height).cloned();
        Box::pin(async move { found })
    }
}
