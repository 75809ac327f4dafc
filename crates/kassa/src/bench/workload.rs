//! The workload: accounts that are members of one society, and the signed transactions they
//! send, generated before any clock starts; and, to measure a large state, further funded
//! accounts that sign nothing but receive the transfers (`--preload`).

use super::*;
use crate::genesis::{Allocation, GenesisFile};
use anyhow::{Context as _, Result};
use kassa_node::MempoolConfig;
use kassa_state::testkit::SplitMix;
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName};
use kassa_types::{
    Address, AssetId, Hash, RequestId, Rules, SecretKey, SignedTransaction, SocietyId, Transaction,
};
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) const CHAIN_ID: &str = "kassa-bench";
pub(super) const PLEDGE: u64 = 100_000;

pub(super) fn bench_key(i: usize) -> SecretKey {
    SecretKey::from_label(&format!("kassa-bench-{i}"))
}

/// The address of preloaded account `i`: funded at genesis, never signing (so it needs no key,
/// and a million of them cost no key generation).
pub(super) fn preload_address(i: usize) -> Address {
    Address(Hash::of(&[b"kassa-bench-preload", &(i as u64).to_le_bytes()]).0)
}

/// Every account of the workload's genesis: the members' (keyed) and the preloaded ones.
fn account_address(keys: &[SecretKey], i: usize) -> Address {
    keys.get(i)
        .map_or_else(|| preload_address(i - keys.len()), SecretKey::address)
}

/// Signed transactions, prepared before anything is timed.
pub(super) struct Workload {
    pub(super) genesis: GenesisFile,
    /// Stages to finalize one after the other before the measurement: a society, everyone
    /// joins, everyone contributes, a request is filed.
    pub(super) setup: Vec<Vec<(usize, SignedTransaction)>>,
    /// The measured load; each with the account that signed it.
    pub(super) measured: Vec<(usize, SignedTransaction)>,
}

pub(super) fn society_rules() -> Rules {
    let mut r = Rules::defaults(PLEDGE, PLEDGE * 10);
    r.min_members = 3;
    r.waiting_periods = 0;
    r.voting_window_secs = 30 * 24 * 3600;
    r
}

pub(super) fn workload(opts: &Options, validators: Vec<String>) -> Result<Workload> {
    let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let keys: Vec<SecretKey> = (0..opts.accounts).map(bench_key).collect();
    let genesis = GenesisFile {
        chain_id: CHAIN_ID.into(),
        min_fee: 1_000,
        time_ms: now,
        allocations: (0..keys.len() + opts.preload)
            .map(|i| Allocation {
                address: account_address(&keys, i).to_bech32(),
                amount: 1_000_000_000_000,
            })
            .collect(),
        validators,
    };
    let chain_id = ChainId::new(CHAIN_ID.to_string()).context("chain id")?;
    let genesis_hash = genesis.to_genesis()?.hash();
    let mut nonces = vec![0u64; keys.len()];
    let mut sign = |i: usize, body: Body| {
        let tx = Transaction {
            chain_id: chain_id.clone(),
            genesis: genesis_hash,
            signer: keys[i].address(),
            nonce: nonces[i],
            fee: 1_000,
            expiry_height: u64::MAX / 2,
            body,
        }
        .sign(&keys[i]);
        nonces[i] += 1;
        (i, tx)
    };
    let soc = SocietyId(0);
    let everyone = 0..opts.accounts;
    let setup = vec![
        vec![sign(
            0,
            Body::CreateSociety {
                name: SocietyName::new("Bench fund").context("name")?,
                purpose: Purpose::new("income when a member cannot work").context("purpose")?,
                asset: AssetId::NATIVE,
                rules: society_rules(),
                pledge: PLEDGE,
            },
        )],
        // Account 0 founded the society and is its first member.
        everyone
            .clone()
            .skip(1)
            .map(|i| {
                sign(
                    i,
                    Body::Join {
                        society: soc,
                        pledge: PLEDGE,
                        identity_commitment: None,
                    },
                )
            })
            .collect(),
        everyone
            .clone()
            .map(|i| {
                sign(
                    i,
                    Body::Contribute {
                        society: soc,
                        amount: PLEDGE,
                    },
                )
            })
            .collect(),
        vec![sign(
            1,
            Body::FileRequest {
                society: soc,
                amount: PLEDGE,
                evidence_hash: Hash::of(&[b"doctor's note"]),
                memo: Memo::new("sick leave").context("memo")?,
                payee: None,
                installments: 0,
            },
        )],
    ];
    // Transfers go to any account of the state, members and preloaded alike.
    let mut recipients = SplitMix(0x006b_6173_7361);
    let state_accounts = keys.len() + opts.preload;
    let mut measured = Vec::with_capacity(opts.txs);
    for j in 0..opts.txs {
        let i = j % opts.accounts;
        let kind = match opts.mix {
            Load::Mix => [Load::Contribute, Load::Vote, Load::Transfer][j % 3],
            m => m,
        };
        // Account 1 filed the request and may not vote on it.
        let i = if kind == Load::Vote && i == 1 { 2 } else { i };
        let body = match kind {
            Load::Contribute => Body::Contribute {
                society: soc,
                amount: PLEDGE,
            },
            Load::Vote => Body::Vote {
                request: RequestId(0),
                approve: j % 2 == 0,
                percent: 100,
            },
            _ => Body::Transfer {
                to: account_address(&keys, recipients.idx(state_accounts)),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        };
        measured.push(sign(i, body));
    }
    Ok(Workload {
        genesis,
        setup,
        measured,
    })
}

pub(super) fn mempool_config(opts: &Options) -> MempoolConfig {
    let per_sender = opts.txs / opts.accounts * 2 + 64;
    MempoolConfig {
        txs_max: opts.txs + opts.accounts * 4 + 1_000,
        bytes_max: 1 << 30,
        per_sender_max: per_sender,
        nonce_window: u64::try_from(per_sender).unwrap_or(u64::MAX),
        expiry_window: u64::MAX,
        // Wallets submitting over HTTP from several threads can deliver a sender's nonces out of
        // order: every one may wait for its predecessor.
        gapped_max: opts.txs + opts.accounts * 4 + 1_000,
    }
}
