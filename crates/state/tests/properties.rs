//! Random workloads: valid and invalid transactions from many accounts over several societies
//! with different rules, over years of block time. The harness audits §9 after every block and
//! checks that every rejected transaction left the state untouched and every failed one changed
//! only its fee and nonce. The same seed must give the same state digest (§9.6).

mod common;

use common::*;
use kassa_state::ScanStore;
use kassa_state::exec::counters;
use kassa_state::records::{Event, Member};
use kassa_types::rules::{Admission, Identity};
use kassa_types::tx::{Body, ChainId, Memo};
use kassa_types::{
    Address, AmendmentId, AssetId, Hash, Rejection, RequestId, SignedTransaction, SocietyId,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

const ACCOUNTS: usize = 14;

use kassa_state::testkit::SplitMix as Rng;

#[derive(Default, Debug)]
struct Tally {
    applied: BTreeMap<&'static str, u64>,
    failed: BTreeMap<u16, u64>,
    refused: BTreeMap<u16, u64>,
    shares_paid: u64,
    approvals: u64,
    txs: u64,
}

fn societies_rules(rng: &mut Rng) -> Vec<kassa_types::Rules> {
    let mut out = Vec::new();
    for (i, period_secs) in [3_600u64, 86_400, 604_800].into_iter().enumerate() {
        let mut r = kassa_types::Rules::defaults(100, 1_000);
        r.period_secs = period_secs;
        r.voting_window_secs = [120, 2_880, 20_160][i] * (1 + rng.below(3));
        r.min_members = 3 + u32::try_from(rng.below(3)).unwrap();
        r.waiting_periods = u32::try_from(rng.below(3)).unwrap();
        r.max_draw_bps = [500, 1_000, 10_000][i];
        r.approval_net_bps = [1, 1, 50][i];
        r.quorum_bps = [1, 100, 1_500][i];
        r.auto_share = i != 2 || rng.chance(50);
        r.exit_refund = rng.chance(70);
        r.admission = if i == 1 {
            Admission::Vote
        } else {
            Admission::Open
        };
        r.identity = if i == 2 {
            Identity::Commitment
        } else {
            Identity::Public
        };
        r.karma_half_life_periods = [300, 60, 6][i] + u32::try_from(rng.below(6)).unwrap();
        r.notice_periods = u32::try_from(rng.below(2)).unwrap();
        r.amendment_timelock_periods = 1 + u32::try_from(rng.below(2)).unwrap();
        r.max_installments = 1 + u32::try_from(rng.below(6)).unwrap();
        r.lapse_periods = 1 + u32::try_from(rng.below(3)).unwrap();
        out.push(r);
    }
    out
}

fn members(chain: &Chain, soc: SocietyId) -> Vec<Address> {
    chain
        .st
        .scan_prefix(&kassa_state::keys::members_of(soc))
        .into_iter()
        .map(|(k, v)| {
            let _: Member = borsh::from_slice(&v).unwrap();
            kassa_state::keys::parse_member(&k).unwrap().1
        })
        .collect()
}

/// A random transaction body and who signs it: usually a member of the society it addresses,
/// about recent requests, with plausible amounts; sometimes anything at all.
fn random_tx(chain: &Chain, rng: &mut Rng, socs: &[SocietyId], asset: AssetId) -> (usize, Body) {
    let soc = socs[rng.idx(socs.len())];
    let ms = members(chain, soc);
    let signer = if !ms.is_empty() && rng.chance(75) {
        let a = ms[rng.idx(ms.len())];
        (0..ACCOUNTS).find(|i| key(*i).address() == a).unwrap()
    } else {
        rng.idx(ACCOUNTS)
    };
    (signer, random_body(chain, rng, soc, &ms, asset, signer))
}

/// Requests that are open for votes (or, with `approved`, approved and still unpaid).
fn requests_in(chain: &Chain, approved: bool) -> Vec<RequestId> {
    use kassa_state::records::{Request, RequestStatus};
    let want = if approved {
        RequestStatus::Approved
    } else {
        RequestStatus::Open
    };
    chain
        .st
        .scan_prefix(&[kassa_state::keys::REQUEST])
        .into_iter()
        .filter(|(_, v)| borsh::from_slice::<Request>(v).unwrap().status == want)
        .map(|(k, _)| kassa_state::keys::parse_request(&k).unwrap())
        .collect()
}

fn random_body(
    chain: &Chain,
    rng: &mut Rng,
    soc: SocietyId,
    ms: &[Address],
    asset: AssetId,
    signer: usize,
) -> Body {
    let c = counters(&chain.st);
    let live = requests_in(chain, rng.chance(50));
    let rid = if !live.is_empty() && rng.chance(80) {
        live[rng.idx(live.len())]
    } else {
        RequestId(rng.below(c.next_request + 1))
    };
    let aid = AmendmentId(rng.below(c.next_amendment + 1));
    let someone = key(rng.idx(ACCOUNTS)).address();
    let member = if ms.is_empty() {
        someone
    } else {
        ms[rng.idx(ms.len())]
    };
    let amount = match rng.below(20) {
        0 => 0,
        1 => u64::MAX,
        2..=15 => 100 * (1 + rng.below(4)),
        _ => rng.below(5_000),
    };
    match rng.below(100) {
        0..=21 => Body::Contribute {
            society: soc,
            amount,
        },
        22..=29 => {
            let (meta, _) = kassa_state::view::society(&chain.st, soc).unwrap();
            let wants = (meta.rules.identity == Identity::Commitment) != rng.chance(15);
            Body::Join {
                society: soc,
                pledge: [100, 500, 1_000, 100, 5, 2_000][rng.idx(6)],
                identity_commitment: wants.then(|| Hash::of(&[&[u8::try_from(signer).unwrap()]])),
            }
        }
        30..=37 => Body::FileRequest {
            society: soc,
            amount: if rng.chance(80) {
                10 * (1 + rng.below(40))
            } else {
                amount
            },
            evidence_hash: Hash::of(&[b"evidence"]),
            memo: Memo::new("note").unwrap(),
            payee: rng.chance(20).then_some(someone),
            installments: if rng.chance(30) {
                u32::try_from(1 + rng.below(6)).unwrap()
            } else {
                0
            },
        },
        38..=56 => {
            let approve = rng.chance(75);
            Body::Vote {
                request: rid,
                approve,
                percent: if approve && rng.chance(30) {
                    u8::try_from(1 + rng.below(100)).unwrap()
                } else {
                    100
                },
            }
        }
        57..=64 => Body::Finalize { request: rid },
        65..=70 => Body::Gift {
            request: rid,
            amount: rng.below(600),
        },
        71 => Body::Settle { society: soc },
        72 => Body::ChangePledge {
            society: soc,
            pledge: [100, 200, 1_000, 5][rng.idx(4)],
        },
        73 => {
            if rng.chance(50) {
                Body::EndBenefit { request: rid }
            } else {
                Body::ClaimBenefit { request: rid }
            }
        }
        74..=77 => Body::Delegate {
            society: soc,
            to: rng.chance(80).then_some(member),
        },
        78 => Body::Leave { society: soc },
        79 => Body::Expel {
            society: soc,
            member,
        },
        80..=82 => Body::Withdraw { society: soc },
        83 => {
            let mut r = kassa_types::Rules::defaults(100, 1_000 + rng.below(1_000));
            let (meta, _) = kassa_state::view::society(&chain.st, soc).unwrap();
            r.period_secs = if rng.chance(90) {
                meta.rules.period_secs
            } else {
                7
            };
            r.voting_window_secs = meta.rules.voting_window_secs;
            r.min_members = 3;
            Body::ProposeAmendment {
                society: soc,
                rules: r,
            }
        }
        84..=87 => Body::VoteAmendment {
            amendment: aid,
            approve: rng.chance(80),
        },
        88..=89 => Body::EnactAmendment { amendment: aid },
        90..=93 => Body::Transfer {
            to: someone,
            asset: if rng.chance(50) {
                asset
            } else {
                AssetId::NATIVE
            },
            amount,
        },
        94..=95 => Body::Mint {
            asset,
            to: someone,
            amount: rng.below(100_000),
        },
        96..=97 => Body::Burn {
            asset,
            amount: rng.below(1_000),
        },
        _ => Body::Transfer {
            to: someone,
            asset: AssetId(99),
            amount,
        },
    }
}

fn record(
    tally: &mut Tally,
    sent: &mut Vec<SignedTransaction>,
    txs: &[SignedTransaction],
    results: Vec<Result<kassa_state::Receipt, Rejection>>,
) {
    for (t, r) in txs.iter().zip(results) {
        tally.txs += 1;
        match r {
            Err(rej) => *tally.refused.entry(rej.code()).or_default() += 1,
            Ok(rc) => {
                sent.push(t.clone());
                match rc.rejection() {
                    Some(rej) => *tally.failed.entry(rej.code()).or_default() += 1,
                    None => {
                        *tally.applied.entry(t.tx.body.kind()).or_default() += 1;
                        for e in rc.events() {
                            match e {
                                Event::SharePaid { .. } => tally.shares_paid += 1,
                                Event::RequestFiled { .. }
                                | Event::BondReturned { .. }
                                | Event::BondForfeited { .. }
                                | Event::Finalized { .. }
                                    if std::env::var("KASSA_DEBUG").is_ok() =>
                                {
                                    eprintln!("{e:?}")
                                }
                                Event::Finalized { approved: true, .. } => tally.approvals += 1,
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs one seeded workload; returns the final digest and what happened.
fn run(seed: u64, blocks: usize) -> (Hash, Tally) {
    let mut rng = Rng(seed);
    let mut chain = Chain::new(ACCOUNTS);
    let asset = chain.stable_asset(ACCOUNTS, 1_000_000);
    let rules = societies_rules(&mut rng);
    let commitment_needed: Vec<bool> = rules
        .iter()
        .map(|r| r.identity == Identity::Commitment)
        .collect();
    let socs: Vec<SocietyId> = rules
        .into_iter()
        .map(|r| chain.society(&key(1), asset, r))
        .collect();
    // A populated start: most accounts join every society (applications where admission is by
    // vote) and contribute, through ordinary audited transactions. Account 1 founded them all
    // and is already a member.
    for (soc, needs) in socs.iter().zip(&commitment_needed) {
        let joiners: Vec<_> = (0..ACCOUNTS - 2).filter(|i| *i != 1).map(key).collect();
        let commitment = needs.then(|| Hash::of(&[b"me"]));
        let events: Vec<_> = joiners
            .iter()
            .map(|k| {
                chain.sign(
                    k,
                    Body::Join {
                        society: *soc,
                        pledge: 100,
                        identity_commitment: commitment,
                    },
                )
            })
            .collect();
        let applications: Vec<RequestId> = chain
            .block(&events)
            .into_iter()
            .flat_map(|r| r.unwrap().events().to_vec())
            .filter_map(|e| match e {
                Event::Applied { application, .. } => Some(application),
                _ => None,
            })
            .collect();
        // Where admission is by vote, the founder admits the first applicants.
        for a in &applications {
            chain.ok(
                &key(1),
                Body::Vote {
                    request: *a,
                    approve: true,
                    percent: 100,
                },
            );
        }
        if let Some(last) = applications.last() {
            chain.time_ms = chain.request(*last).ballot.deadline_ms;
            for a in &applications {
                chain.ok(&key(1), Body::Finalize { request: *a });
            }
        }
    }
    let mut tally = Tally::default();
    let mut sent: Vec<SignedTransaction> = Vec::new();
    let mut pending_nonce: BTreeMap<usize, u64> = BTreeMap::new();
    for _ in 0..blocks {
        // Block time: mostly seconds, sometimes hours or weeks (years pass over a run).
        chain.advance_ms(match rng.below(20) {
            0 => 3_600_000 * rng.below(24 * 10),
            1..=3 => 60_000 * rng.below(60),
            _ => 1_000 * rng.below(3),
        });
        let n = 1 + rng.idx(8);
        pending_nonce.clear();
        let mut txs = Vec::new();
        for _ in 0..n {
            let (signer, body) = random_tx(&chain, &mut rng, &socs, asset);
            let k = key(signer);
            let mut t = chain.sign(&k, body);
            let nonce = pending_nonce.entry(signer).or_insert(t.tx.nonce);
            t.tx.nonce = *nonce;
            *nonce += 1;
            let mut t = t.tx.sign(&k);
            match rng.below(50) {
                0 => t.signature.0[rng.idx(64)] ^= 1,
                1 => {
                    t = {
                        let mut x = t.tx.clone();
                        x.chain_id = ChainId::new("elsewhere").unwrap();
                        x.sign(&k)
                    }
                }
                2 if !sent.is_empty() => t = sent[rng.idx(sent.len())].clone(), // replay
                3 => {
                    t = {
                        let mut x = t.tx.clone();
                        x.fee = 1;
                        x.sign(&k)
                    }
                }
                _ => {}
            }
            txs.push(t);
        }
        let results = chain.block(&txs);
        record(&mut tally, &mut sent, &txs, results);
        // Mostly-valid traffic needs members who keep up: let every member of every society
        // contribute one pledge now and then (through real transactions, audited like the rest).
        if rng.chance(40) {
            for &soc in &socs {
                let ms = members(&chain, soc);
                let txs: Vec<_> = (0..ACCOUNTS)
                    .filter(|i| ms.contains(&key(*i).address()))
                    .map(|i| {
                        chain.sign(
                            &key(i),
                            Body::Contribute {
                                society: soc,
                                amount: 100,
                            },
                        )
                    })
                    .collect();
                let results = chain.block(&txs);
                record(&mut tally, &mut sent, &txs, results);
            }
        }
    }
    (chain.digest(), tally)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_workloads_keep_every_invariant_after_every_block(seed in any::<u64>()) {
        let (_, tally) = run(seed, 250);
        prop_assert!(tally.txs > 800, "{tally:?}");
    }
}

#[test]
fn the_workload_exercises_the_protocol_and_the_same_seed_gives_the_same_state() {
    let (a, tally) = run(9, 400);
    let (b, _) = run(9, 400);
    assert_eq!(a, b, "same blocks, same state");
    let (c, _) = run(8, 50);
    assert_ne!(a, c);
    eprintln!("{tally:#?}");
    for kind in [
        "contribute",
        "join",
        "file_request",
        "vote",
        "finalize",
        "expel",
        "delegate",
        "leave",
        "withdraw",
    ] {
        assert!(
            tally.applied.get(kind).copied().unwrap_or(0) > 0,
            "no successful {kind}: {tally:?}"
        );
    }
    assert!(tally.approvals > 0 && tally.shares_paid > 0, "{tally:?}");
    for r in [
        Rejection::BadSignature,
        Rejection::WrongChain,
        Rejection::NonceTooLow,
        Rejection::FeeBelowMinimum,
    ] {
        assert!(
            tally.refused.contains_key(&r.code()),
            "never refused {r}: {tally:?}"
        );
    }
}
