//! The attacks a member might try to take more than the rules intend (docs/protocol.md §10), each
//! driven through transactions under the default rules (30-day periods, 3 periods of waiting,
//! 5% net approval, 15% quorum) unless the test says otherwise. Each must fail for the reason
//! the protocol gives: a typed rejection, or an attacker who ends with no more money than they
//! put in. The harness audits every invariant (§9, invariant 7 included) after every block.
//!
//! Over 600 lines: one test per attack of docs/protocol.md §10, in its order, so the table there
//! maps to this file.

mod common;

use common::*;
use kassa_state::records::{Event, RequestStatus};
use kassa_types::rules::Admission;
use kassa_types::tx::{Body, Memo};
use kassa_types::{Address, AmendmentId, Hash, Rejection, RequestId, Rules, Signature};

const PLEDGE: u64 = 100;

fn defaults() -> Rules {
    Rules::defaults(PLEDGE, 1_000)
}

/// `n` members (`key(0..n)`) who paid every period for four periods, under the default rules.
fn society(n: usize) -> Fund {
    Fund::new(n, defaults(), 4)
}

fn pay(f: &mut Fund, who: usize, amount: u64) -> Result<Vec<Event>, Rejection> {
    let soc = f.soc;
    f.chain.exec(
        &key(who),
        Body::Contribute {
            society: soc,
            amount,
        },
    )
}

/// Every member in `who` pays one pledge.
fn pay_each(f: &mut Fund, who: &[usize]) {
    let soc = f.soc;
    let keys: Vec<_> = who.iter().map(|i| key(*i)).collect();
    f.chain.all_ok(&keys, |_| Body::Contribute {
        society: soc,
        amount: PLEDGE,
    });
}

fn file_with(
    f: &mut Fund,
    who: usize,
    amount: u64,
    payee: Option<Address>,
    installments: u32,
) -> Result<RequestId, Rejection> {
    let soc = f.soc;
    let ev = f.chain.exec(
        &key(who),
        Body::FileRequest {
            society: soc,
            amount,
            evidence_hash: Hash::of(&[b"evidence"]),
            memo: Memo::new("note").unwrap(),
            payee,
            installments,
        },
    )?;
    Ok(request_id(&ev))
}

fn vote(f: &mut Fund, who: usize, r: RequestId, approve: bool, percent: u8) {
    f.chain.ok(
        &key(who),
        Body::Vote {
            request: r,
            approve,
            percent,
        },
    );
}

/// Everything an account holds of the society's asset: its balance and its gift account.
fn wealth(f: &Fund, who: usize) -> u64 {
    let balance = f.chain.balance(&key(who).address(), f.asset);
    let gift = kassa_state::view::member(&f.chain.st, f.soc, &key(who).address(), f.chain.time_ms)
        .map_or(0, |m| m.gift_balance);
    balance + gift
}

fn range(a: usize, b: usize) -> Vec<usize> {
    (a..b).collect()
}

/// The identity point, a small-order key: under ZIP-215 the signature (R = identity, s = 0)
/// verifies for every message.
fn identity_key() -> Address {
    let mut a = [0u8; 32];
    a[0] = 1;
    Address(a)
}

fn forged_signature() -> Signature {
    let mut s = [0u8; 64];
    s[0] = 1;
    Signature(s)
}

#[test]
fn a_member_who_stopped_paying_cannot_buy_back_in_on_the_day_they_need_help() {
    let mut f = Fund::new(21, defaults(), 4);
    let attacker = 20;
    let honest = range(0, 20);
    // Four periods of nothing: the attacker lapses after the period of grace.
    for _ in 0..4 {
        pay_each(&mut f, &honest);
        f.next_period();
    }
    pay_each(&mut f, &honest);
    assert!(f.chain.member(f.soc, &key(attacker).address()).lapsed);
    let put_in_before = wealth(&f, attacker);
    // All the arrears in one go: back in standing, but the waiting period starts again.
    let arrears = 5 * PLEDGE;
    let ev = pay(&mut f, attacker, arrears).unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::Reinstated { .. })));
    let m = f.chain.member(f.soc, &key(attacker).address());
    assert!(m.good_standing);
    assert_eq!(
        m.karma,
        u128::from(PLEDGE / 2),
        "arrears earn no karma: only this period's half pledge"
    );
    assert_eq!(
        file_with(&mut f, attacker, PLEDGE, None, 0),
        Err(Rejection::InWaitingPeriod)
    );
    // After a new waiting period, paid period by period, the benefit reflects only that.
    for _ in 0..3 {
        f.next_period();
        pay_each(&mut f, &range(0, 21));
    }
    let attacker_view = f.chain.member(f.soc, &key(attacker).address());
    let honest_view = f.chain.member(f.soc, &key(1).address());
    assert!(
        attacker_view.max_benefit * 2 < honest_view.max_benefit,
        "{} vs {}",
        attacker_view.max_benefit,
        honest_view.max_benefit
    );
    let honest_max = u64::try_from(honest_view.max_benefit).unwrap();
    assert_eq!(
        file_with(&mut f, attacker, honest_max, None, 0),
        Err(Rejection::ExceedsMaximumBenefit)
    );
    assert!(wealth(&f, attacker) <= put_in_before);
}

#[test]
fn a_requesters_second_account_cannot_approve_the_request_alone() {
    let mut f = society(22);
    let (attacker, puppet) = (20, 21);
    pay_each(&mut f, &range(0, 22));
    let before = wealth(&f, attacker) + wealth(&f, puppet);
    let r = file_with(&mut f, attacker, 500, None, 0).unwrap();
    // The puppet holds 1/22 of the karma, under the 15% quorum; honest members stay silent.
    vote(&mut f, puppet, r, true, 100);
    let ev = f.finalize(r);
    assert!(ev.contains(&Event::Finalized {
        request: r,
        approved: false,
        percent: 0
    }));
    assert_eq!(f.chain.request(r).status, RequestStatus::Rejected);
    assert!(
        wealth(&f, attacker) + wealth(&f, puppet) < before,
        "the bond is lost"
    );
}

#[test]
fn money_sent_round_in_a_loop_earns_no_more_karma_than_the_per_period_caps() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    // Member 1 has a large approved request that the period's budget cannot pay at once.
    let r = f.file(1, 1_500).unwrap();
    f.vote_all(r, true, 1);
    f.finalize(r);
    assert!(f.chain.request(r).need() > 0);
    let looper = 2;
    let karma_before = f.chain.member(f.soc, &key(looper).address()).karma;
    for _ in 0..5 {
        f.chain.ok(
            &key(looper),
            Body::Gift {
                request: r,
                amount: 20,
            },
        );
        f.chain.ok(
            &key(1),
            Body::Transfer {
                to: key(looper).address(),
                asset: f.asset,
                amount: 20,
            },
        );
        pay(&mut f, looper, 20).unwrap();
    }
    let gained = f.chain.member(f.soc, &key(looper).address()).karma - karma_before;
    // At most one pledge's worth of gift karma (half of 100) in a period; the contributions pay
    // future periods, whose karma comes only as they arrive.
    assert!(
        gained <= u128::from(PLEDGE / 2),
        "gained {gained} karma in one period"
    );
}

#[test]
fn leaving_does_not_dodge_an_approved_request_still_being_paid() {
    let mut rules = defaults();
    rules.notice_periods = 0;
    let mut f = Fund::new(20, rules, 4);
    pay_each(&mut f, &range(0, 20));
    let r = f.file(0, 1_500).unwrap();
    f.vote_all(r, true, 0);
    f.finalize(r);
    let book = f.chain.book(f.soc);
    let uncovered = book.owed - u128::from(book.common);
    assert!(uncovered > 0, "the queue is unpaid");
    let leaver = 5;
    let balance = f.chain.member(f.soc, &key(leaver).address()).gift_balance;
    f.chain.ok(&key(leaver), Body::Leave { society: f.soc });
    let ev = f.chain.ok(&key(leaver), Body::Withdraw { society: f.soc });
    let (refund, held_back) = ev
        .iter()
        .find_map(|e| match e {
            Event::Withdrawn {
                refund, held_back, ..
            } => Some((*refund, *held_back)),
            _ => None,
        })
        .unwrap();
    let share = (u128::from(balance) * uncovered).div_ceil(u128::from(book.pool.total));
    assert_eq!(
        u128::from(held_back),
        share,
        "the pro-rata share stays behind"
    );
    assert_eq!(refund + held_back, balance);
    assert_eq!(f.chain.book(f.soc).common, book.common + held_back);
}

#[test]
fn an_approved_request_still_being_paid_blocks_a_second_request() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    let max = u64::try_from(f.chain.member(f.soc, &key(0).address()).max_benefit).unwrap();
    let r = f.file(0, max).unwrap();
    f.vote_all(r, true, 0);
    f.finalize(r);
    assert!(f.chain.request(r).need() > 0, "still being paid");
    assert_eq!(f.file(0, 1), Err(Rejection::OpenRequestExists));
    assert!(f.chain.request(r).approved <= max);
    // Leaving and rejoining does not open a second door either.
    assert_eq!(
        f.chain.exec(&key(0), Body::Leave { society: f.soc }),
        Err(Rejection::OpenRequestExists)
    );
}

#[test]
fn a_member_being_helped_cannot_be_expelled_to_rejoin_and_hold_a_second_request() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    // A benefit of one base unit a period for 24 periods; then member 0 stops paying.
    let r = file_with(&mut f, 0, 1, None, 24).unwrap();
    f.vote_all(r, true, 0);
    f.finalize(r);
    let lapse = u64::from(defaults().lapse_periods) + u64::from(defaults().grace_periods) + 1;
    for _ in 0..lapse {
        f.next_period();
        pay_each(&mut f, &range(1, 20));
    }
    assert!(f.chain.member(f.soc, &key(0).address()).lapsed);
    let expel = |f: &mut Fund| {
        let soc = f.soc;
        f.chain.exec(
            &key(7),
            Body::Expel {
                society: soc,
                member: key(0).address(),
            },
        )
    };
    // Lapsed long enough, but the benefit still runs: expelling would let them rejoin and file
    // a second request while the first is paid.
    assert_eq!(expel(&mut f), Err(Rejection::OpenRequestExists));
    // Once they end it (only a benefit still running can be ended), the rules for a lapsed
    // member apply as to anyone.
    f.chain.ok(&key(0), Body::EndBenefit { request: r });
    let ev = expel(&mut f).unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::Expelled { .. })));
}

#[test]
fn members_who_leave_without_refund_do_not_take_the_societys_voting_power_with_them() {
    let mut rules = defaults();
    rules.exit_refund = false;
    rules.notice_periods = 0;
    rules.min_members = 10;
    let mut f = Fund::new(20, rules.clone(), 4);
    pay_each(&mut f, &range(0, 20));
    let leavers: Vec<_> = (10..20).map(key).collect();
    let soc = f.soc;
    f.chain.all_ok(&leavers, |_| Body::Leave { society: soc });
    f.chain
        .all_ok(&leavers, |_| Body::Withdraw { society: soc });
    assert!(f.chain.book(f.soc).common > 0, "their money stayed");
    f.next_period();
    pay_each(&mut f, &range(0, 10));
    // The ten who stay can still approve a request…
    let r = f.file(0, 300).unwrap();
    for v in 1..10 {
        vote(&mut f, v, r, true, 100);
    }
    let ev = f.finalize(r);
    assert!(ev.contains(&Event::Finalized {
        request: r,
        approved: true,
        percent: 100
    }));
    // …and pass an amendment (two thirds of the karma that is left).
    let mut new_rules = rules;
    new_rules.min_members = 5;
    f.chain.ok(
        &key(1),
        Body::ProposeAmendment {
            society: f.soc,
            rules: new_rules,
        },
    );
    let voters: Vec<_> = (0..10).map(key).collect();
    f.chain.all_ok(&voters, |_| Body::VoteAmendment {
        amendment: AmendmentId(0),
        approve: true,
    });
    let a = kassa_state::exec::get::<kassa_state::records::Amendment>(
        &f.chain.st,
        &kassa_state::keys::amendment(AmendmentId(0)),
    )
    .unwrap();
    assert_eq!(kassa_state::exec::amendment_outcome(&a.ballot), 100);
}

#[test]
fn no_amendment_can_remove_the_safeguards_and_members_can_exit_with_refund_until_enactment() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    type Mutation = fn(&mut Rules);
    let removals: [Mutation; 4] = [
        |r| r.amendment_timelock_periods = 0,
        |r| r.voting_window_secs = 1,
        |r| r.quorum_bps = 0,
        |r| r.grace_periods = 0,
    ];
    for remove in removals {
        let mut bad = defaults();
        remove(&mut bad);
        assert_eq!(
            f.chain.exec(
                &key(1),
                Body::ProposeAmendment {
                    society: f.soc,
                    rules: bad
                }
            ),
            Err(Rejection::InvalidRules)
        );
    }
    let mut changed = defaults();
    changed.benefit_ratio = 20;
    f.chain.ok(
        &key(1),
        Body::ProposeAmendment {
            society: f.soc,
            rules: changed,
        },
    );
    let voters: Vec<_> = (0..20).map(key).collect();
    f.chain.all_ok(&voters, |_| Body::VoteAmendment {
        amendment: AmendmentId(0),
        approve: true,
    });
    // Past the window and the timelock, but not yet enacted: a member who disagrees still exits
    // at once with everything.
    f.chain.advance_ms(7 * 24 * 3_600_000 + 3 * f.period_ms);
    let balance = f.chain.member(f.soc, &key(7).address()).gift_balance;
    let ev = f.chain.ok(&key(7), Body::Leave { society: f.soc });
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Withdrawn { refund, held_back: 0, .. } if *refund == balance
    )));
}

#[test]
fn applying_to_a_vote_admission_society_costs_a_bond_and_is_never_automatic() {
    let mut f = Fund::new(1, defaults(), 0);
    let mut rules = defaults();
    rules.admission = Admission::Vote;
    // The creator is the only member and nobody has karma: total karma is zero.
    let soc = f.chain.society(&key(0), f.asset, rules);
    assert_eq!(f.chain.book(soc).standing.karma, 0);
    let before = f.chain.balance(&key(1).address(), f.asset);
    let app = request_id(&f.chain.ok(
        &key(1),
        Body::Join {
            society: soc,
            pledge: PLEDGE,
            identity_commitment: None,
        },
    ));
    assert_eq!(f.chain.balance(&key(1).address(), f.asset), before - PLEDGE);
    f.chain.time_ms = f.chain.request(app).ballot.deadline_ms;
    let ev = f.chain.ok(&key(2), Body::Finalize { request: app });
    assert!(!ev.iter().any(|e| matches!(e, Event::Admitted { .. })));
    assert!(
        kassa_state::view::member(&f.chain.st, soc, &key(1).address(), f.chain.time_ms).is_none()
    );
    assert_eq!(f.chain.book(soc).common, PLEDGE, "the bond is forfeited");
}

#[test]
fn an_amendment_enacted_during_a_vote_does_not_change_that_votes_outcome() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    // An amendment that would make every request fail: unanimity of all karma.
    let mut strict = defaults();
    strict.quorum_bps = 10_000;
    strict.approval_net_bps = 10_000;
    f.chain.ok(
        &key(1),
        Body::ProposeAmendment {
            society: f.soc,
            rules: strict,
        },
    );
    let voters: Vec<_> = (0..20).map(key).collect();
    f.chain.all_ok(&voters, |_| Body::VoteAmendment {
        amendment: AmendmentId(0),
        approve: true,
    });
    // Dues paid ahead for the months this takes.
    let soc = f.soc;
    f.chain.all_ok(&voters, |_| Body::Contribute {
        society: soc,
        amount: 3 * PLEDGE,
    });
    // Just before the amendment can be enacted, a request opens under the old rules.
    f.chain
        .advance_ms(7 * 24 * 3_600_000 + 2 * f.period_ms - 3_600_000);
    let r = f.file(0, 300).unwrap();
    for v in 1..18 {
        vote(&mut f, v, r, true, 100);
    }
    f.chain.advance_ms(2 * 3_600_000);
    f.chain.ok(
        &key(5),
        Body::EnactAmendment {
            amendment: AmendmentId(0),
        },
    );
    assert_eq!(
        kassa_state::view::society(&f.chain.st, f.soc)
            .unwrap()
            .0
            .rules
            .quorum_bps,
        10_000
    );
    let ev = f.finalize(r);
    assert!(
        ev.contains(&Event::Finalized {
            request: r,
            approved: true,
            percent: 100
        }),
        "decided under the rules it opened with: {ev:?}"
    );
}

#[test]
fn raising_ones_pledge_when_trouble_is_near_does_not_raise_the_benefit_before_a_new_waiting_period()
{
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    let before = f.chain.member(f.soc, &key(3).address()).max_benefit;
    f.chain.ok(
        &key(3),
        Body::ChangePledge {
            society: f.soc,
            pledge: 1_000,
        },
    );
    f.next_period();
    pay_each(&mut f, &range(0, 3));
    pay(&mut f, 3, 1_000).unwrap();
    assert_eq!(f.file(3, 1), Err(Rejection::InWaitingPeriod));
    // Even after the new waiting period the higher pledge counts only period by period.
    for _ in 0..3 {
        f.next_period();
        pay(&mut f, 3, 1_000).unwrap();
    }
    let after = f.chain.member(f.soc, &key(3).address());
    assert!(f.chain.time_ms >= after.waiting_until_ms);
    assert!(
        after.max_benefit < 10 * before,
        "no lump of karma from the raise: {before} -> {}",
        after.max_benefit
    );
}

#[test]
fn joining_in_the_last_second_of_a_period_does_not_shorten_the_waiting_period() {
    let mut f = society(20);
    let (meta, _) = kassa_state::view::society(&f.chain.st, f.soc).unwrap();
    let period = meta.period_at(f.chain.time_ms);
    // The last second of this period.
    f.chain.time_ms = meta.created_ms + (period + 1) * f.period_ms - 1_000;
    let soc = f.soc;
    f.chain.ok(
        &key(21),
        Body::Join {
            society: soc,
            pledge: PLEDGE,
            identity_commitment: None,
        },
    );
    // Three period boundaries later, but not three periods of time.
    let members: Vec<_> = (0..20).chain([21]).map(key).collect();
    for p in period + 1..=period + 3 {
        f.chain.time_ms = meta.created_ms + p * f.period_ms + 1_000;
        f.chain.all_ok(&members, |_| Body::Contribute {
            society: soc,
            amount: PLEDGE,
        });
    }
    assert_eq!(
        f.chain.exec(
            &key(21),
            Body::FileRequest {
                society: soc,
                amount: 1,
                evidence_hash: Hash::default(),
                memo: Memo::default(),
                payee: None,
                installments: 0,
            }
        ),
        Err(Rejection::InWaitingPeriod)
    );
}

#[test]
fn karma_delegated_to_a_requester_does_not_count_on_their_own_request() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    // Three members lend their power to member 0, who then asks for help.
    for d in 1..4 {
        f.chain.ok(
            &key(d),
            Body::Delegate {
                society: f.soc,
                to: Some(key(0).address()),
            },
        );
    }
    f.next_period();
    pay_each(&mut f, &range(0, 20));
    let r = f.file(0, 300).unwrap();
    assert_eq!(
        f.chain.exec(
            &key(0),
            Body::Vote {
                request: r,
                approve: true,
                percent: 100
            }
        ),
        Err(Rejection::CannotVoteOnOwnRequest)
    );
    let ev = f.finalize(r);
    assert!(ev.contains(&Event::Finalized {
        request: r,
        approved: false,
        percent: 0
    }));
    let b = f.chain.request(r).ballot;
    assert_eq!((b.yes, b.no), (0, 0), "the delegated karma was never cast");
}

#[test]
fn a_small_order_or_non_canonical_public_key_can_neither_sign_nor_receive() {
    let mut f = society(20);
    let non_canonical = {
        // y = p + 1: an encoding of the identity that is not reduced.
        let mut a = [0xffu8; 32];
        a[0] = 0xee;
        a[31] = 0x7f;
        Address(a)
    };
    for bad in [identity_key(), non_canonical] {
        assert!(!kassa_types::crypto::is_valid_public_key(&bad));
        assert_eq!(
            f.chain.exec(
                &key(1),
                Body::Transfer {
                    to: bad,
                    asset: f.asset,
                    amount: 1,
                }
            ),
            Err(Rejection::InvalidRecipient)
        );
    }
    pay_each(&mut f, &range(0, 20));
    assert_eq!(
        file_with(&mut f, 0, 100, Some(identity_key()), 0),
        Err(Rejection::InvalidRecipient)
    );
    // Anyone can forge a signature for the identity key; the chain refuses it as a signer.
    let mut t = f.chain.sign(
        &key(1),
        Body::Transfer {
            to: key(2).address(),
            asset: f.asset,
            amount: 1,
        },
    );
    t.tx.signer = identity_key();
    t.tx.nonce = 0;
    t.signature = forged_signature();
    assert!(t.verify_signature(), "ZIP-215 accepts the forgery");
    let r = f.chain.block(&[t]).pop().unwrap();
    assert_eq!(r.unwrap_err(), Rejection::InvalidSigner);
}

#[test]
fn a_transaction_signed_for_one_genesis_is_refused_by_a_chain_with_another_genesis_and_the_same_chain_id()
 {
    let mut a = Chain::new(3);
    let mut b = Chain::new(4);
    let params = |c: &Chain| kassa_state::exec::chain_params(&c.st).unwrap();
    assert_eq!(params(&a).chain_id, params(&b).chain_id);
    assert_ne!(params(&a).genesis_hash, params(&b).genesis_hash);
    let t = a.sign(
        &key(1),
        Body::Transfer {
            to: key(2).address(),
            asset: kassa_types::AssetId::NATIVE,
            amount: 5,
        },
    );
    assert_eq!(
        b.block(std::slice::from_ref(&t))
            .pop()
            .unwrap()
            .unwrap_err(),
        Rejection::WrongGenesis
    );
    assert!(a.block(&[t]).pop().unwrap().is_ok());
}

#[test]
fn several_requests_in_one_period_cannot_together_exceed_one_maximum_benefit() {
    let mut rules = defaults();
    rules.gift_cap_pledges = 100;
    let mut f = Fund::new(20, rules, 4);
    // Plenty in the gift funds at the start of the period, so that an approved request is paid
    // at once.
    let soc = f.soc;
    let everyone: Vec<_> = (0..20).map(key).collect();
    f.chain.all_ok(&everyone, |_| Body::Contribute {
        society: soc,
        amount: 60 * PLEDGE,
    });
    f.next_period();
    let max = u64::try_from(f.chain.member(f.soc, &key(0).address()).max_benefit).unwrap();
    let first = f.file(0, max).unwrap();
    f.vote_all(first, true, 0);
    f.finalize(first);
    assert_eq!(f.chain.request(first).status, RequestStatus::Paid);
    // Same period, help received: the karma it consumed does not come back.
    let m = f.chain.member(f.soc, &key(0).address());
    assert_eq!(m.max_benefit, 0, "{m:?}");
    assert_eq!(f.file(0, 1), Err(Rejection::ExceedsMaximumBenefit));
}

#[test]
fn lowering_ones_pledge_does_not_stretch_the_periods_already_paid() {
    let mut f = Fund::new(20, defaults(), 0);
    let soc = f.soc;
    let change = |f: &mut Fund, pledge: u64| {
        f.chain.exec(
            &key(4),
            Body::ChangePledge {
                society: soc,
                pledge,
            },
        )
    };
    pay(&mut f, 4, PLEDGE).unwrap();
    change(&mut f, 500).unwrap();
    f.next_period();
    pay(&mut f, 4, 500).unwrap();
    let paid = f.chain.member(soc, &key(4).address()).paid_until;
    // Lowered from the next period on: the period paid at 500 stays one period.
    change(&mut f, PLEDGE).unwrap();
    assert_eq!(f.chain.member(soc, &key(4).address()).paid_until, paid);
    f.next_period();
    pay(&mut f, 4, PLEDGE).unwrap();
    assert_eq!(f.chain.member(soc, &key(4).address()).paid_until, paid + 1);
    // Paid ahead, the pledge cannot change under the periods already paid.
    pay(&mut f, 4, 3 * PLEDGE).unwrap();
    assert_eq!(change(&mut f, 500), Err(Rejection::PledgeChangeNotAllowed));
}

#[test]
fn a_generous_minority_cannot_set_the_amount_above_what_the_majority_approved() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    let r = f.file(0, 1_000).unwrap();
    for v in 1..16 {
        vote(&mut f, v, r, true, 50);
    }
    for v in 16..20 {
        vote(&mut f, v, r, true, 100);
    }
    let ev = f.finalize(r);
    assert!(ev.contains(&Event::Finalized {
        request: r,
        approved: true,
        percent: 50
    }));
    assert_eq!(f.chain.request(r).approved, 500);
}

#[test]
fn a_token_benefit_is_no_dues_holiday() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    // A benefit of one base unit a period for 24 periods, far below the pledge.
    let token = file_with(&mut f, 0, 1, None, 24).unwrap();
    // And a real sickness benefit of at least the pledge, for comparison.
    let real = file_with(&mut f, 1, PLEDGE, None, 6).unwrap();
    f.vote_all(token, true, 0);
    let voters: Vec<_> = (0..20).filter(|v| *v != 1).collect();
    for v in voters {
        vote(&mut f, v, real, true, 100);
    }
    f.finalize(token);
    f.chain.ok(&key(22), Body::Finalize { request: real });
    for _ in 0..3 {
        f.next_period();
        pay_each(&mut f, &range(2, 20));
    }
    assert!(f.chain.member(f.soc, &key(0).address()).lapsed);
    assert!(f.chain.member(f.soc, &key(1).address()).good_standing);
}

#[test]
fn voting_no_earns_nobody_money() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    let before: Vec<u64> = (1..20).map(|i| wealth(&f, i)).collect();
    let r = f.file(0, 300).unwrap();
    f.vote_all(r, false, 0);
    f.finalize(r);
    let after: Vec<u64> = (1..20).map(|i| wealth(&f, i)).collect();
    assert_eq!(before, after, "no voter gained (or lost) anything");
    assert_eq!(
        f.chain.book(f.soc).common,
        PLEDGE,
        "the bond went to the common fund"
    );
}

#[test]
fn a_member_cannot_gift_to_their_own_request_or_to_a_request_paying_them() {
    let mut f = society(20);
    pay_each(&mut f, &range(0, 20));
    let r = file_with(&mut f, 0, 1_500, Some(key(5).address()), 0).unwrap();
    f.vote_all(r, true, 0);
    f.finalize(r);
    assert!(f.chain.request(r).need() > 0);
    for (who, refusal) in [
        (0, Rejection::CannotGiftToOwnRequest),
        (5, Rejection::CannotGiftToOwnPayment),
    ] {
        assert_eq!(
            f.chain.exec(
                &key(who),
                Body::Gift {
                    request: r,
                    amount: 1
                }
            ),
            Err(refusal)
        );
    }
}

#[test]
fn another_members_draw_never_makes_a_member_lapse() {
    let mut rules = defaults();
    rules.gift_cap_pledges = 5;
    let mut f = Fund::new(20, rules, 4);
    pay_each(&mut f, &range(0, 20));
    // Member 3's account is full; they check in, then a large request draws from every account.
    let soc = f.soc;
    pay(&mut f, 3, 0).unwrap();
    let r = f.file(0, 1_500).unwrap();
    f.vote_all(r, true, 0);
    let before = f.chain.member(soc, &key(3).address());
    f.finalize(r);
    let after = f.chain.member(soc, &key(3).address());
    assert!(
        after.gift_balance < before.gift_balance,
        "the draw happened"
    );
    assert!(after.good_standing && after.paid_until == before.paid_until);
}

#[test]
fn an_application_with_no_votes_is_not_admitted_also_in_a_society_of_three() {
    let mut f = Fund::new(1, defaults(), 0);
    let mut rules = defaults();
    rules.admission = Admission::Vote;
    let soc = f.chain.society(&key(0), f.asset, rules);
    // Two more members, each admitted by a yes.
    for newcomer in [1, 2] {
        let app = request_id(&f.chain.ok(
            &key(newcomer),
            Body::Join {
                society: soc,
                pledge: PLEDGE,
                identity_commitment: None,
            },
        ));
        for voter in 0..newcomer {
            f.chain.ok(
                &key(voter),
                Body::Vote {
                    request: app,
                    approve: true,
                    percent: 100,
                },
            );
        }
        f.chain.time_ms = f.chain.request(app).ballot.deadline_ms;
        let ev = f.chain.ok(&key(3), Body::Finalize { request: app });
        assert!(ev.iter().any(|e| matches!(e, Event::Admitted { .. })));
    }
    assert_eq!(f.chain.book(soc).member_count, 3);
    let app = request_id(&f.chain.ok(
        &key(3),
        Body::Join {
            society: soc,
            pledge: PLEDGE,
            identity_commitment: None,
        },
    ));
    f.chain.time_ms = f.chain.request(app).ballot.deadline_ms;
    let ev = f.chain.ok(&key(2), Body::Finalize { request: app });
    assert!(!ev.iter().any(|e| matches!(e, Event::Admitted { .. })));
    assert_eq!(f.chain.book(soc).member_count, 3);
}

#[test]
fn members_who_stop_paying_stop_lending_their_voting_power_to_their_delegate() {
    use kassa_state::exec::{delegated_karma_now, karma_at_period_start};
    use kassa_state::keys::Track;
    let mut f = society(28);
    pay_each(&mut f, &range(0, 28));
    // Eight accounts earn karma, lend it to member 0 and stop paying; nobody transacts for them.
    for d in 1..9 {
        f.chain.ok(
            &key(d),
            Body::Delegate {
                society: f.soc,
                to: Some(key(0).address()),
            },
        );
    }
    let lent = |f: &Fund| {
        let b = f.chain.book(f.soc);
        let h = defaults().karma_half_life_periods;
        delegated_karma_now(&f.chain.st, f.soc, &key(0).address(), b.rolled, &b.pool, h)
    };
    assert!(
        lent(&f) > 0,
        "while they pay, their karma counts for member 0"
    );
    let payers: Vec<usize> = std::iter::once(0).chain(9..28).collect();
    for _ in 0..3 {
        f.next_period();
        pay_each(&mut f, &payers);
    }
    assert!(f.chain.member(f.soc, &key(1).address()).lapsed);
    assert_eq!(lent(&f), 0, "lapsed delegators lend nothing");
    // A vote of member 0 weighs their own karma alone.
    let r = f.file(27, 300).unwrap();
    vote(&mut f, 0, r, true, 100);
    let b = f.chain.request(r).ballot;
    let (own, _) = karma_at_period_start(
        &f.chain.st,
        f.soc,
        &key(0).address(),
        Track::Own,
        b.filed_period,
        &b.start.pool,
        defaults().karma_half_life_periods,
    );
    assert!(own > 0);
    assert_eq!(b.yes, own);
    // One of them pays their arrears: back in standing, they lend again (the audit after every
    // block checks the delegate's power against the delegators in standing, exactly).
    pay(&mut f, 1, 6 * PLEDGE).unwrap();
    assert!(f.chain.member(f.soc, &key(1).address()).good_standing);
    assert!(lent(&f) > 0);
}
