//! Every rejection reason, produced by a real transaction: one row per code, and a check that the
//! table covers every code there is (adding a code without a row fails this test). Each row
//! starts from the same fresh society: 20 members who contributed for 4 periods, 3 funded
//! outsiders (`key(20..23)`), one unfunded account (`key(99)`).
//!
//! Over 600 lines: one row per rejection code, in one table that must cover them all.

mod common;

use common::*;
use kassa_state::decode_tx;
use kassa_types::rules::Admission;
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{AmendmentId, AssetId, Hash, Rejection, RequestId, SocietyId, Transaction};

type Case = fn(&mut Fund) -> Result<(), Rejection>;

fn ok_events(r: Result<Vec<kassa_state::records::Event>, Rejection>) -> Result<(), Rejection> {
    r.map(|_| ())
}

fn approved(f: &mut Fund, amount: u64) -> RequestId {
    let r = f.file(0, amount).unwrap();
    f.vote_all(r, true, 0);
    f.finalize(r);
    r
}

/// A two-member society without automatic sharing (each gift account holds 1,000) in which
/// `key(0)` has an approved request for `amount`.
fn approved_without_sharing(f: &mut Fund, amount: u64) -> RequestId {
    let mut rules = fast_rules(100, 1_000);
    rules.auto_share = false;
    rules.min_members = 1;
    rules.waiting_periods = 0;
    rules.benefit_ratio = 1_000;
    let soc = f.chain.society(&key(0), f.asset, rules);
    let pair = f.members[..2].to_vec();
    f.chain.all_ok(&pair[1..], |_| Body::Join {
        society: soc,
        pledge: 100,
        identity_commitment: None,
    });
    f.chain.all_ok(&pair, |_| Body::Contribute {
        society: soc,
        amount: 1_000,
    });
    // Votes weigh the karma held before the filing period.
    f.chain.advance_ms(f.period_ms);
    let body = Body::FileRequest {
        society: soc,
        amount,
        evidence_hash: Hash::default(),
        memo: Memo::default(),
        payee: None,
        installments: 0,
    };
    let r = request_id(&f.chain.ok(&key(0), body));
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: r,
            approve: true,
            percent: 100,
        },
    );
    f.chain.advance_ms(61_000);
    f.chain.ok(&key(1), Body::Finalize { request: r });
    r
}

fn vote_society(f: &mut Fund) -> (SocietyId, RequestId) {
    let mut r = fast_rules(100, 1_000);
    r.admission = Admission::Vote;
    let soc = f.chain.society(&key(0), f.asset, r);
    let ev = f.chain.ok(
        &key(20),
        Body::Join {
            society: soc,
            pledge: 100,
            identity_commitment: None,
        },
    );
    (soc, request_id(&ev))
}

fn signed_with(f: &Fund, edit: impl Fn(&mut Transaction)) -> kassa_types::SignedTransaction {
    let mut t = f
        .chain
        .sign(
            &key(1),
            Body::Transfer {
                to: key(2).address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        )
        .tx;
    edit(&mut t);
    t.sign(&key(1))
}

fn first(f: &mut Fund, t: kassa_types::SignedTransaction) -> Result<(), Rejection> {
    let r = f.chain.block(&[t]).pop().unwrap()?;
    r.rejection().map_or(Ok(()), Err)
}

/// The identity point: a small-order key anyone can sign for under ZIP-215 (R = identity,
/// s = 0 verifies for any message).
fn identity_key() -> kassa_types::Address {
    let mut a = [0u8; 32];
    a[0] = 1;
    kassa_types::Address(a)
}

/// An approved benefit of `per_period` for `periods` periods filed by `key(0)`.
fn approved_benefit(f: &mut Fund, per_period: u64, periods: u32) -> RequestId {
    let body = Body::FileRequest {
        society: f.soc,
        amount: per_period,
        evidence_hash: Hash::default(),
        memo: Memo::default(),
        payee: None,
        installments: periods,
    };
    let r = request_id(&f.chain.ok(&key(0), body));
    f.vote_all(r, true, 0);
    f.finalize(r);
    r
}

/// In a society without automatic sharing, `key(0)` and `key(2)` each have an approved request
/// (for `first` and `second`), paid to `payee`'s choice for the first; returns both.
fn two_approved_without_sharing(
    f: &mut Fund,
    first: u64,
    second: u64,
    payee: Option<kassa_types::Address>,
) -> (RequestId, RequestId) {
    let mut rules = fast_rules(100, 1_000);
    rules.auto_share = false;
    rules.min_members = 1;
    rules.waiting_periods = 0;
    rules.benefit_ratio = 1_000;
    let soc = f.chain.society(&key(0), f.asset, rules);
    let trio = f.members[1..3].to_vec();
    f.chain.all_ok(&trio, |_| Body::Join {
        society: soc,
        pledge: 100,
        identity_commitment: None,
    });
    let all = f.members[..3].to_vec();
    f.chain.all_ok(&all, |_| Body::Contribute {
        society: soc,
        amount: 1_000,
    });
    f.chain.advance_ms(f.period_ms);
    f.chain.all_ok(&all, |_| Body::Contribute {
        society: soc,
        amount: 0,
    });
    let mut ids = Vec::new();
    for (who, amount, payee) in [(0, first, payee), (2, second, None)] {
        let body = Body::FileRequest {
            society: soc,
            amount,
            evidence_hash: Hash::default(),
            memo: Memo::default(),
            payee,
            installments: 0,
        };
        let r = request_id(&f.chain.ok(&key(who), body));
        for voter in [0, 1, 2].into_iter().filter(|v| *v != who) {
            f.chain.ok(
                &key(voter),
                Body::Vote {
                    request: r,
                    approve: true,
                    percent: 100,
                },
            );
        }
        ids.push(r);
    }
    f.chain.time_ms = f.chain.request(ids[1]).ballot.deadline_ms;
    for r in &ids {
        f.chain.ok(&key(5), Body::Finalize { request: *r });
    }
    (ids[0], ids[1])
}

fn cases() -> Vec<(Rejection, Case)> {
    vec![
        (Rejection::Malformed, |_| decode_tx(&[1, 2, 3]).map(|_| ())),
        (Rejection::Oversized, |_| {
            decode_tx(&vec![0u8; kassa_types::TX_SIZE_MAX + 1]).map(|_| ())
        }),
        (Rejection::BadSignature, |f| {
            let mut t = signed_with(f, |_| {});
            t.signature.0[0] ^= 1;
            first(f, t)
        }),
        (Rejection::WrongChain, |f| {
            first(
                f,
                signed_with(f, |t| t.chain_id = ChainId::new("other").unwrap()),
            )
        }),
        (Rejection::FeeBelowMinimum, |f| {
            first(f, signed_with(f, |t| t.fee = FEE - 1))
        }),
        (Rejection::ZeroAmount, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Transfer {
                    to: key(2).address(),
                    asset: AssetId::NATIVE,
                    amount: 0,
                },
            ))
        }),
        (Rejection::InvalidSymbol, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::CreateAsset {
                    symbol: Symbol::new("usd").unwrap(),
                    decimals: 2,
                    max_supply: None,
                },
            ))
        }),
        (Rejection::InvalidRules, |f| {
            let mut r = fast_rules(100, 1_000);
            r.max_draw_bps = 0;
            let name = SocietyName::new("x").unwrap();
            ok_events(f.chain.exec(
                &key(1),
                Body::CreateSociety {
                    name,
                    purpose: Purpose::new("").unwrap(),
                    asset: f.asset,
                    rules: r,
                    pledge: 100,
                },
            ))
        }),
        (Rejection::EmptyName, |f| {
            let name = SocietyName::new("  ").unwrap();
            let rules = fast_rules(100, 1_000);
            ok_events(f.chain.exec(
                &key(1),
                Body::CreateSociety {
                    name,
                    purpose: Purpose::new("").unwrap(),
                    asset: f.asset,
                    rules,
                    pledge: 100,
                },
            ))
        }),
        (Rejection::InvalidDecimals, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::CreateAsset {
                    symbol: Symbol::new("EUR").unwrap(),
                    decimals: 19,
                    max_supply: None,
                },
            ))
        }),
        (Rejection::Expired, |f| {
            first(f, signed_with(f, |t| t.expiry_height = 0))
        }),
        (Rejection::NonceTooLow, |f| {
            let t = signed_with(f, |_| {});
            first(f, t.clone()).unwrap();
            first(f, t)
        }),
        (Rejection::NonceTooHigh, |f| {
            first(f, signed_with(f, |t| t.nonce += 1))
        }),
        (Rejection::CannotPayFee, |f| {
            ok_events(f.chain.exec(&key(99), Body::Leave { society: f.soc }))
        }),
        (Rejection::UnknownAsset, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Transfer {
                    to: key(2).address(),
                    asset: AssetId(77),
                    amount: 1,
                },
            ))
        }),
        (Rejection::UnknownSociety, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Join {
                    society: SocietyId(77),
                    pledge: 100,
                    identity_commitment: None,
                },
            ))
        }),
        (Rejection::UnknownRequest, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Vote {
                    request: RequestId(77),
                    approve: true,
                    percent: 100,
                },
            ))
        }),
        (Rejection::UnknownAmendment, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::VoteAmendment {
                    amendment: AmendmentId(77),
                    approve: true,
                },
            ))
        }),
        (Rejection::InsufficientBalance, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Transfer {
                    to: key(2).address(),
                    asset: f.asset,
                    amount: USDK_EACH,
                },
            ))
        }),
        (Rejection::Overflow, |f| {
            let supply: kassa_state::records::Asset = borsh::from_slice(
                &kassa_state::Store::get(&f.chain.st, &kassa_state::keys::asset(f.asset)).unwrap(),
            )
            .unwrap();
            f.chain.ok(
                &key(0),
                Body::Mint {
                    asset: f.asset,
                    to: key(50).address(),
                    amount: u64::MAX - supply.supply,
                },
            );
            ok_events(f.chain.exec(
                &key(0),
                Body::Mint {
                    asset: f.asset,
                    to: key(50).address(),
                    amount: 1,
                },
            ))
        }),
        (Rejection::NotIssuer, |f| {
            assert_eq!(
                f.chain.exec(
                    &key(0),
                    Body::Mint {
                        asset: AssetId::NATIVE,
                        to: key(0).address(),
                        amount: 1
                    }
                ),
                Err(Rejection::NotIssuer)
            );
            ok_events(f.chain.exec(
                &key(1),
                Body::Mint {
                    asset: f.asset,
                    to: key(1).address(),
                    amount: 1,
                },
            ))
        }),
        (Rejection::MaxSupplyExceeded, |f| {
            f.chain.ok(
                &key(1),
                Body::CreateAsset {
                    symbol: Symbol::new("CAP").unwrap(),
                    decimals: 0,
                    max_supply: Some(100),
                },
            );
            f.chain.ok(
                &key(1),
                Body::Mint {
                    asset: AssetId(2),
                    to: key(1).address(),
                    amount: 100,
                },
            );
            ok_events(f.chain.exec(
                &key(1),
                Body::Mint {
                    asset: AssetId(2),
                    to: key(1).address(),
                    amount: 1,
                },
            ))
        }),
        (Rejection::SymbolTaken, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::CreateAsset {
                    symbol: Symbol::new("KAS").unwrap(),
                    decimals: 6,
                    max_supply: None,
                },
            ))
        }),
        (Rejection::AlreadyMember, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Join {
                    society: f.soc,
                    pledge: 100,
                    identity_commitment: None,
                },
            ))
        }),
        (Rejection::NotMember, |f| {
            ok_events(f.chain.exec(
                &key(21),
                Body::Contribute {
                    society: f.soc,
                    amount: 100,
                },
            ))
        }),
        (Rejection::PledgeOutOfRange, |f| {
            ok_events(f.chain.exec(
                &key(21),
                Body::Join {
                    society: f.soc,
                    pledge: 1,
                    identity_commitment: None,
                },
            ))
        }),
        (Rejection::IdentityCommitmentRequired, |f| {
            let mut r = fast_rules(100, 1_000);
            r.identity = kassa_types::rules::Identity::Commitment;
            let soc = f.chain.society(&key(0), f.asset, r);
            ok_events(f.chain.exec(
                &key(1),
                Body::Join {
                    society: soc,
                    pledge: 100,
                    identity_commitment: None,
                },
            ))
        }),
        (Rejection::IdentityCommitmentNotAllowed, |f| {
            ok_events(f.chain.exec(
                &key(21),
                Body::Join {
                    society: f.soc,
                    pledge: 100,
                    identity_commitment: Some(Hash::of(&[b"id"])),
                },
            ))
        }),
        (Rejection::GiftAccountCapExceeded, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Contribute {
                    society: f.soc,
                    amount: 3_300,
                },
            ))
        }),
        (Rejection::NotInGoodStanding, |f| {
            f.chain.advance_ms(10 * f.period_ms);
            f.file(0, 10).map(|_| ())
        }),
        (Rejection::InWaitingPeriod, |f| {
            f.chain.ok(
                &key(21),
                Body::Join {
                    society: f.soc,
                    pledge: 100,
                    identity_commitment: None,
                },
            );
            ok_events(f.chain.exec(
                &key(21),
                Body::FileRequest {
                    society: f.soc,
                    amount: 1,
                    evidence_hash: Hash::default(),
                    memo: Memo::default(),
                    payee: None,
                    installments: 0,
                },
            ))
        }),
        (Rejection::OpenRequestExists, |f| {
            f.file(0, 10).unwrap();
            f.file(0, 10).map(|_| ())
        }),
        (Rejection::TooFewMembers, |f| {
            f.chain.ok(&key(19), Body::Leave { society: f.soc });
            f.file(0, 10).map(|_| ())
        }),
        (Rejection::ExceedsMaximumBenefit, |f| {
            f.file(0, 10_000).map(|_| ())
        }),
        (Rejection::ExceedsMaxRequest, |f| {
            f.file(0, 24_001).map(|_| ())
        }),
        (Rejection::NotYetAdmitted, |f| {
            let (soc, _) = vote_society(f);
            ok_events(f.chain.exec(
                &key(20),
                Body::Contribute {
                    society: soc,
                    amount: 100,
                },
            ))
        }),
        (Rejection::MemberLeaving, |f| {
            f.chain.ok(&key(3), Body::Leave { society: f.soc });
            ok_events(f.chain.exec(
                &key(3),
                Body::Contribute {
                    society: f.soc,
                    amount: 100,
                },
            ))
        }),
        (Rejection::CannotVoteOnOwnRequest, |f| {
            let r = f.file(0, 10).unwrap();
            ok_events(f.chain.exec(
                &key(0),
                Body::Vote {
                    request: r,
                    approve: true,
                    percent: 100,
                },
            ))
        }),
        (Rejection::VotingClosed, |f| {
            let r = f.file(0, 10).unwrap();
            f.chain.advance_ms(1_000_000);
            ok_events(f.chain.exec(
                &key(1),
                Body::Vote {
                    request: r,
                    approve: true,
                    percent: 100,
                },
            ))
        }),
        (Rejection::VotingStillOpen, |f| {
            let r = f.file(0, 10).unwrap();
            ok_events(f.chain.exec(&key(1), Body::Finalize { request: r }))
        }),
        (Rejection::NoVotingWeight, |f| {
            let r = f.file(0, 10).unwrap();
            f.chain.ok(
                &key(21),
                Body::Join {
                    society: f.soc,
                    pledge: 100,
                    identity_commitment: None,
                },
            );
            ok_events(f.chain.exec(
                &key(21),
                Body::Vote {
                    request: r,
                    approve: true,
                    percent: 100,
                },
            ))
        }),
        (Rejection::RequestNotApproved, |f| {
            let r = f.file(0, 10).unwrap();
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 1,
                },
            ))
        }),
        (Rejection::RequestFullyFunded, |f| {
            let r = approved(f, 10);
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 1,
                },
            ))
        }),
        (Rejection::AlreadyFinalized, |f| {
            let r = approved(f, 10);
            ok_events(f.chain.exec(&key(1), Body::Finalize { request: r }))
        }),
        (Rejection::NoticeNotOver, |f| {
            f.chain.ok(&key(3), Body::Leave { society: f.soc });
            ok_events(f.chain.exec(&key(3), Body::Withdraw { society: f.soc }))
        }),
        (Rejection::NotLeaving, |f| {
            ok_events(f.chain.exec(&key(3), Body::Withdraw { society: f.soc }))
        }),
        (Rejection::AlreadyLeaving, |f| {
            f.chain.ok(&key(3), Body::Leave { society: f.soc });
            ok_events(f.chain.exec(&key(3), Body::Leave { society: f.soc }))
        }),
        (Rejection::AmendmentInProgress, |f| {
            f.chain.ok(
                &key(1),
                Body::ProposeAmendment {
                    society: f.soc,
                    rules: fast_rules(100, 2_000),
                },
            );
            ok_events(f.chain.exec(
                &key(2),
                Body::ProposeAmendment {
                    society: f.soc,
                    rules: fast_rules(100, 3_000),
                },
            ))
        }),
        (Rejection::AmendmentChangesFixedRule, |f| {
            let mut r = fast_rules(100, 1_000);
            r.period_secs = 60;
            ok_events(f.chain.exec(
                &key(1),
                Body::ProposeAmendment {
                    society: f.soc,
                    rules: r,
                },
            ))
        }),
        (Rejection::TimelockNotOver, |f| {
            f.chain.ok(
                &key(1),
                Body::ProposeAmendment {
                    society: f.soc,
                    rules: fast_rules(100, 2_000),
                },
            );
            let voters = f.members.clone();
            f.chain.all_ok(&voters, |_| Body::VoteAmendment {
                amendment: AmendmentId(0),
                approve: true,
            });
            f.chain.advance_ms(61_000);
            ok_events(f.chain.exec(
                &key(1),
                Body::EnactAmendment {
                    amendment: AmendmentId(0),
                },
            ))
        }),
        (Rejection::SelfDelegation, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Delegate {
                    society: f.soc,
                    to: Some(key(1).address()),
                },
            ))
        }),
        (Rejection::InsufficientGiftBalance, |f| {
            let r = approved_without_sharing(f, 4_000);
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 1_001,
                },
            ))
        }),
        (Rejection::GiftExceedsNeed, |f| {
            let r = approved_without_sharing(f, 100);
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 101,
                },
            ))
        }),
        (Rejection::NotAHelpRequest, |f| {
            let (_, app) = vote_society(f);
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: app,
                    amount: 1,
                },
            ))
        }),
        (Rejection::CannotGiftToOwnRequest, |f| {
            let r = approved_without_sharing(f, 100);
            ok_events(f.chain.exec(
                &key(0),
                Body::Gift {
                    request: r,
                    amount: 1,
                },
            ))
        }),
        (Rejection::WrongGenesis, |f| {
            first(f, signed_with(f, |t| t.genesis = Hash::default()))
        }),
        (Rejection::InvalidPercent, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Vote {
                    request: RequestId(0),
                    approve: false,
                    percent: 50,
                },
            ))
        }),
        (Rejection::InvalidSigner, |f| {
            let mut t = signed_with(f, |_| {});
            t.tx.signer = identity_key();
            t.tx.nonce = 0;
            let mut forged = [0u8; 64];
            forged[0] = 1;
            t.signature = kassa_types::Signature(forged);
            assert!(t.verify_signature(), "ZIP-215 accepts the forgery");
            first(f, t)
        }),
        (Rejection::InvalidRecipient, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::Transfer {
                    to: identity_key(),
                    asset: AssetId::NATIVE,
                    amount: 1,
                },
            ))
        }),
        (Rejection::NotExpellable, |f| {
            ok_events(f.chain.exec(
                &key(20),
                Body::Expel {
                    society: f.soc,
                    member: key(1).address(),
                },
            ))
        }),
        (Rejection::TooManyInstallments, |f| {
            ok_events(f.chain.exec(
                &key(0),
                Body::FileRequest {
                    society: f.soc,
                    amount: 1,
                    evidence_hash: Hash::default(),
                    memo: Memo::default(),
                    payee: None,
                    installments: 25,
                },
            ))
        }),
        (Rejection::NotABenefit, |f| {
            let r = approved(f, 100);
            ok_events(f.chain.exec(&key(1), Body::ClaimBenefit { request: r }))
        }),
        (Rejection::NotRequester, |f| {
            let r = approved_benefit(f, 10, 3);
            ok_events(f.chain.exec(&key(1), Body::EndBenefit { request: r }))
        }),
        (Rejection::BenefitEnded, |f| {
            let r = approved_benefit(f, 10, 3);
            f.chain.ok(&key(0), Body::EndBenefit { request: r });
            ok_events(f.chain.exec(&key(0), Body::EndBenefit { request: r }))
        }),
        (Rejection::CannotGiftToOwnPayment, |f| {
            let (r, _) = two_approved_without_sharing(f, 100, 100, Some(key(1).address()));
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 1,
                },
            ))
        }),
        (Rejection::GiftBelowHoldBack, |f| {
            // The society owes 3,000 for the second request and holds 3,000: all of key(1)'s
            // balance is its share of that, so it cannot be given to the first request instead.
            let (r, _) = two_approved_without_sharing(f, 100, 3_000, None);
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 1,
                },
            ))
        }),
        (Rejection::PledgeChangeNotAllowed, |f| {
            ok_events(f.chain.exec(
                &key(1),
                Body::ChangePledge {
                    society: f.soc,
                    pledge: 100,
                },
            ))
        }),
        (Rejection::SocietyCatchingUp, |f| {
            // Far more elapsed periods than one transaction brings up to date.
            let steps = kassa_state::exec::ROLL_STEPS_MAX + 10;
            f.chain.advance_ms(steps * 64 * f.period_ms);
            ok_events(f.chain.exec(
                &key(1),
                Body::Contribute {
                    society: f.soc,
                    amount: 100,
                },
            ))
        }),
        (Rejection::NothingToClaim, |f| {
            let r = approved_benefit(f, 10, 3);
            ok_events(f.chain.exec(&key(1), Body::ClaimBenefit { request: r }))
        }),
        (Rejection::BenefitTakesNoGifts, |f| {
            let r = approved_benefit(f, 10, 3);
            ok_events(f.chain.exec(
                &key(1),
                Body::Gift {
                    request: r,
                    amount: 1,
                },
            ))
        }),
    ]
}

#[test]
fn every_rejection_reason_is_produced_by_a_real_transaction_and_covered_here() {
    let table = cases();
    let covered: std::collections::BTreeSet<u16> = table.iter().map(|(r, _)| r.code()).collect();
    // Codes 30–39 are the mempool's own refusals: the node's tests produce each of them.
    let missing: Vec<_> = Rejection::ALL
        .iter()
        .filter(|r| !covered.contains(&r.code()) && !(30..40).contains(&r.code()))
        .collect();
    assert!(missing.is_empty(), "rejections without a case: {missing:?}");
    let template = Fund::new(20, fast_rules(100, 1_000), 4);
    for (expected, case) in table {
        let mut f = Fund {
            chain: Chain {
                blocks: 0,
                ..template.chain.clone()
            },
            asset: template.asset,
            soc: template.soc,
            members: template.members.clone(),
            period_ms: template.period_ms,
        };
        assert_eq!(case(&mut f), Err(expected), "case for {expected}");
    }
}
