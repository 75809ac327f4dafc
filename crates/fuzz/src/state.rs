//! The state machine under transaction sequences chosen by the fuzzer: a few accounts, one
//! society under one of three rule sets, blocks of up to four transactions at times the input
//! chooses (seconds apart, or many periods). Every block is applied by the audited test chain
//! ([`kassa_testkit::chain::Chain`]): §9 after every block, nothing written by a refused
//! transaction, nothing but fee and nonce by a failed one.

use crate::Input;
use kassa_state::ScanStore;
use kassa_state::exec::counters;
use kassa_state::keys;
use kassa_state::records::Member;
use kassa_testkit::chain::Chain;
use kassa_testkit::key;
use kassa_types::rules::{Admission, Identity, Rules};
use kassa_types::tx::{Body, Memo};
use kassa_types::{
    Address, AmendmentId, AssetId, Hash, RequestId, SecretKey, SignedTransaction, SocietyId,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Accounts that sign: `key(0..ACCOUNTS)`; `key(0)` founded the society and issues its asset.
pub const ACCOUNTS: usize = 6;
/// Blocks one input may run (longer inputs are cut there).
pub const BLOCKS_MAX: usize = 48;
const PERIOD_SECS: u64 = 600;

/// A chain ready for the fuzzer's transactions, and what they address.
#[derive(Clone, Debug)]
pub struct Start {
    /// The chain, with its audit snapshot.
    pub chain: Chain,
    /// The society's asset.
    pub asset: AssetId,
    /// The society.
    pub society: SocietyId,
}

fn keys_() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..ACCOUNTS).map(key).collect())
}

/// The rule sets a run chooses from: open and public, by vote with short karma memory, and
/// open with identity commitments, full draws and no refund on exit.
pub fn rules(variant: usize) -> Rules {
    let mut r = Rules::defaults(100, 1_000);
    r.period_secs = PERIOD_SECS;
    r.voting_window_secs = 60;
    r.min_members = 3;
    r.waiting_periods = 0;
    r.approval_net_bps = 1;
    r.quorum_bps = 100;
    match variant {
        0 => {}
        1 => {
            r.admission = Admission::Vote;
            r.karma_half_life_periods = 6;
            r.lapse_periods = 1;
            r.waiting_periods = 1;
        }
        _ => {
            r.identity = Identity::Commitment;
            r.max_draw_bps = 10_000;
            r.exit_refund = false;
            r.notice_periods = 1;
        }
    }
    r
}

/// The starting chain of rule set `variant`: every account funded in the society's asset, and
/// (where admission is open) members `0..ACCOUNTS-1` joined, each having paid three pledges.
pub fn start(variant: usize) -> &'static Start {
    static STARTS: OnceLock<Vec<Start>> = OnceLock::new();
    &STARTS.get_or_init(|| (0..3).map(make_start).collect())[variant % 3]
}

fn make_start(variant: usize) -> Start {
    let mut chain = Chain::new(ACCOUNTS);
    let asset = chain.stable_asset(ACCOUNTS, 1_000_000);
    let r = rules(variant);
    let society = chain.society(&key(0), asset, r.clone());
    if r.admission == Admission::Open {
        let commitment = (r.identity == Identity::Commitment).then(|| Hash::of(&[b"me"]));
        chain.all_ok(&keys_()[1..ACCOUNTS - 1], |_| Body::Join {
            society,
            pledge: 100,
            identity_commitment: commitment,
        });
        chain.all_ok(&keys_()[..ACCOUNTS - 1], |_| Body::Contribute {
            society,
            amount: 300,
        });
    }
    Start {
        chain,
        asset,
        society,
    }
}

/// Runs the transaction sequence `data` describes.
///
/// # Panics
/// When a block breaks a §9 invariant, a refused transaction wrote state, or a failed one wrote
/// more than its fee and nonce (the test chain's checks).
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let variant = input.index(3);
    let s = start(variant);
    let mut chain = s.chain.clone();
    let mut blocks = 0;
    while !input.is_empty() && blocks < BLOCKS_MAX {
        blocks += 1;
        let period_ms = PERIOD_SECS * 1_000;
        chain.advance_ms(match input.below(10) {
            0..=5 => 1_000 * input.below(5),
            6 | 7 => 10_000 * input.below(60),
            8 => period_ms * input.below(4),
            _ => period_ms * input.below(200),
        });
        let n = 1 + input.below(4);
        let mut next_nonce: BTreeMap<usize, u64> = BTreeMap::new();
        let mut txs: Vec<SignedTransaction> = Vec::new();
        for _ in 0..n {
            let signer = input.index(ACCOUNTS);
            let body = body(&chain, &mut input, s.society, s.asset, signer);
            let k = &keys_()[signer];
            let mut tx = chain.sign(k, body).tx;
            let nonce = next_nonce.entry(signer).or_insert(tx.nonce);
            tx.nonce = *nonce;
            *nonce += 1;
            match input.below(40) {
                0 => tx.fee = 1,
                1 => tx.expiry_height = chain.height,
                2 => tx.nonce = tx.nonce.wrapping_sub(1),
                _ => {}
            }
            let mut stx = tx.sign(k);
            if input.below(40) == 0 {
                stx.signature.0[input.index(64)] ^= 1;
            }
            txs.push(stx);
        }
        chain.block(&txs);
    }
}

fn members(chain: &Chain, society: SocietyId) -> Vec<Address> {
    chain
        .st
        .scan_prefix(&keys::members_of(society))
        .into_iter()
        .filter_map(|(k, v)| {
            borsh::from_slice::<Member>(&v).ok()?;
            Some(keys::parse_member(&k)?.1)
        })
        .collect()
}

fn amount(input: &mut Input<'_>) -> u64 {
    match input.below(16) {
        0 => 0,
        1 => u64::MAX,
        2 => input.u64(),
        3 => 1,
        n => 50 * n,
    }
}

/// A transaction body, mostly about the society and its recent requests and amendments.
fn body(
    chain: &Chain,
    input: &mut Input<'_>,
    society: SocietyId,
    asset: AssetId,
    signer: usize,
) -> Body {
    let c = counters(&chain.st);
    let request = RequestId(input.below(c.next_request + 1));
    let amendment = AmendmentId(input.below(c.next_amendment + 1));
    let ms = members(chain, society);
    let someone = if !ms.is_empty() && input.chance(70) {
        ms[input.index(ms.len())]
    } else {
        keys_()[input.index(ACCOUNTS)].address()
    };
    let the_asset = if input.chance(80) {
        asset
    } else {
        input.pick(&[AssetId::NATIVE, AssetId(99)])
    };
    match input.below(24) {
        0..=3 => Body::Contribute {
            society,
            amount: amount(input),
        },
        4 => {
            let meta = kassa_state::view::society(&chain.st, society).map(|(m, _)| m);
            let wants = meta.is_some_and(|m| m.rules.identity == Identity::Commitment);
            Body::Join {
                society,
                pledge: input.pick(&[100, 200, 1_000, 5, 2_000]),
                identity_commitment: (wants != input.chance(10))
                    .then(|| Hash::of(&[&[u8::try_from(signer).unwrap_or(0)]])),
            }
        }
        5 | 6 => Body::FileRequest {
            society,
            amount: if input.chance(80) {
                10 * (1 + input.below(100))
            } else {
                amount(input)
            },
            evidence_hash: Hash::of(&[b"evidence"]),
            memo: Memo::new("fuzz").expect("a short memo"),
            payee: input.chance(20).then_some(someone),
            installments: u32::try_from(input.below(5)).unwrap_or(0),
        },
        7..=9 => Body::Vote {
            request,
            approve: input.chance(75),
            percent: u8::try_from(input.below(102)).unwrap_or(100),
        },
        10 | 11 => Body::Finalize { request },
        12 => Body::Gift {
            request,
            amount: amount(input),
        },
        13 => Body::Settle { society },
        14 => Body::ChangePledge {
            society,
            pledge: input.pick(&[100, 300, 1_000, 5]),
        },
        15 => input.pick(&[Body::EndBenefit { request }, Body::ClaimBenefit { request }]),
        16 => Body::Delegate {
            society,
            to: input.chance(80).then_some(someone),
        },
        17 => input.pick(&[Body::Leave { society }, Body::Withdraw { society }]),
        18 => Body::Expel {
            society,
            member: someone,
        },
        19 => {
            let mut r = rules(input.index(3));
            r.min_pledge = input.pick(&[50, 100, 200]);
            r.max_draw_bps = input.pick(&[500, 1_000, 10_000]);
            Body::ProposeAmendment { society, rules: r }
        }
        20 => Body::VoteAmendment {
            amendment,
            approve: input.chance(80),
        },
        21 => Body::EnactAmendment { amendment },
        22 => Body::Transfer {
            to: someone,
            asset: the_asset,
            amount: amount(input),
        },
        _ => input.pick(&[
            Body::Mint {
                asset,
                to: someone,
                amount: 1_000,
            },
            Body::Burn { asset, amount: 100 },
        ]),
    }
}
