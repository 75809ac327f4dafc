//! What Kassa's tests share, and nothing the node ships with: test keys, a development genesis,
//! free loopback ports, finalization certificates made outside consensus ([`certify`]), and
//! ([`process`]) harnesses for `kassa` processes and their HTTP API.
//! Only tests depend on this crate (as a dev-dependency).

pub mod certify;
pub mod chain;
pub mod process;

pub use process::{Api, Proc, log_tail, run_json, testnet_init};

use kassa_state::Genesis;
use kassa_types::SecretKey;
use kassa_types::tx::ChainId;

/// Test account `i`: a key derived from a public label (never for real money).
pub fn key(i: usize) -> SecretKey {
    SecretKey::from_label(&format!("test-{i}"))
}

/// A development chain's genesis: accounts [`key`]`(0..accounts)` each hold `each` base units
/// of the native asset.
#[derive(Clone, Debug)]
pub struct DevGenesis {
    pub chain_id: &'static str,
    pub accounts: usize,
    pub each: u64,
    pub min_fee: u64,
    pub time_ms: u64,
}

impl DevGenesis {
    pub fn genesis(&self) -> Genesis {
        Genesis {
            chain_id: ChainId::new(self.chain_id).expect("a valid chain id"),
            min_fee: self.min_fee,
            allocations: (0..self.accounts)
                .map(|i| (key(i).address(), self.each))
                .collect(),
            time_ms: self.time_ms,
            validators: Vec::new(),
        }
    }
}

/// An in-process node on `genesis`, its state in `dir`, without consensus (blocks come from
/// [`produce`]). With `faucet`, its faucet drips 5,000,000 base units from [`key`]`(0)`.
pub fn node_in(
    dir: &std::path::Path,
    genesis: &Genesis,
    faucet: bool,
) -> std::sync::Arc<kassa_node::Node> {
    let app = kassa_node::App::open(dir, genesis, &[], kassa_node::MempoolConfig::default())
        .expect("the node's state opens");
    kassa_node::Node::new(
        app,
        faucet.then(|| kassa_node::Faucet {
            key: key(0),
            amount: 5_000_000,
        }),
    )
}

/// `body` signed by `k` with `nonce` for `node`'s chain, paying a fee of 100 and valid up to
/// height `expiry_height`.
pub fn signed_for(
    node: &kassa_node::Node,
    k: &SecretKey,
    nonce: u64,
    expiry_height: u64,
    body: kassa_types::tx::Body,
) -> kassa_types::SignedTransaction {
    kassa_types::Transaction {
        chain_id: node.params().chain_id.clone(),
        genesis: node.params().genesis_hash,
        signer: k.address(),
        nonce,
        fee: 100,
        expiry_height,
        body,
    }
    .sign(k)
}

/// Produces one block from `node`'s mempool and finalizes it, as consensus would (one second of
/// block time after its parent, proposed by [`key`]`(0)`); the new height.
pub fn produce(node: &kassa_node::Node) -> u64 {
    let head = node.head();
    let block = node
        .propose(
            &head.block_hash,
            head.time_ms + 1_000,
            key(0).address(),
            &[],
        )
        .expect("a block is proposed");
    node.finalize(&block, kassa_node::Durability::Immediate)
        .expect("the block applies")
        .expect("the block is new")
        .head
        .height
}

/// The first of `n` consecutive loopback ports that are free now, below the ephemeral range
/// (see `kassa_node::ports`).
pub fn free_ports(n: u16) -> u16 {
    kassa_node::ports::free_loopback_ports(n)
        .unwrap_or_else(|| panic!("no {n} consecutive free loopback ports below 32768"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dev_genesis_funds_each_test_key_once() {
        let g = DevGenesis {
            chain_id: "kassa-test",
            accounts: 3,
            each: 7,
            min_fee: 1,
            time_ms: 0,
        }
        .genesis();
        let funded: Vec<_> = g.allocations.iter().map(|(a, v)| (*a, *v)).collect();
        assert_eq!(
            funded,
            vec![
                (key(0).address(), 7),
                (key(1).address(), 7),
                (key(2).address(), 7)
            ]
        );
        assert_ne!(key(0).address(), key(1).address());
    }
}
