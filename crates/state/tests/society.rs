//! docs/protocol.md §3–§7, rule by rule, through signed transactions on a real (in-memory) chain. Every
//! block is audited against §9 by the harness.
//!
//! Over 600 lines: docs/protocol.md §3–§7 in its order, one test per rule, so a rule is found by
//! its section.

mod common;

use common::*;
use kassa_state::records::{Event, MemberStatus, RequestStatus};
use kassa_types::rules::{Admission, Identity};
use kassa_types::tx::Body;
use kassa_types::{Hash, Rejection};

fn pledge() -> u64 {
    100
}

fn rules() -> kassa_types::Rules {
    fast_rules(pledge(), 1_000)
}

// -- §3 membership and standing ------------------------------------------------------------------

#[test]
fn a_member_who_joins_an_open_society_is_a_member_at_once_with_no_karma() {
    let f = Fund::new(3, rules(), 0);
    let m = f.chain.member(f.soc, &key(1).address());
    assert_eq!(m.status, MemberStatus::Active);
    assert_eq!((m.karma, m.gift_balance, m.pledge), (0, 0, pledge()));
    assert_eq!(f.chain.book(f.soc).member_count, 3);
}

#[test]
fn contributing_moves_money_into_the_members_own_gift_account_and_earns_half_a_pledge_of_karma_per_period_paid()
 {
    let mut f = Fund::new(3, rules(), 0);
    let before = f.chain.balance(&key(1).address(), f.asset);
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 300,
        },
    );
    let m = f.chain.member(f.soc, &key(1).address());
    assert_eq!(m.gift_balance, 300);
    // Three periods of dues paid: the current one earns its half pledge now, the two ahead as
    // they arrive (never in a lump).
    assert_eq!(m.karma, 50);
    assert_eq!(m.paid_until, f.chain.book(f.soc).rolled + 3);
    assert_eq!(f.chain.balance(&key(1).address(), f.asset), before - 300);
    assert_eq!(f.chain.book(f.soc).pool.total, 300);
    f.next_period();
    let m = f.chain.member(f.soc, &key(1).address());
    assert_eq!(
        m.karma_pending, 50,
        "the next period has arrived, to be credited"
    );
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 0,
        },
    );
    let m = f.chain.member(f.soc, &key(1).address());
    assert!(
        (94..=95).contains(&m.karma),
        "credited at the check-in: {}",
        m.karma
    );
    assert_eq!(m.karma_pending, 0);
}

#[test]
fn contributions_beyond_the_gift_account_cap_are_refused() {
    let mut r = rules();
    r.gift_cap_pledges = 3;
    let mut f = Fund::new(2, r, 0);
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 300,
        },
    );
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Contribute {
                society: f.soc,
                amount: 1
            }
        ),
        Err(Rejection::GiftAccountCapExceeded)
    );
}

#[test]
fn standing_is_paid_through_periods_plus_grace_against_periods_since_joining() {
    let mut f = Fund::new(2, rules(), 0);
    // Joined in period 0 with grace 1: one period behind is allowed, two are not.
    assert!(f.chain.member(f.soc, &key(1).address()).good_standing);
    f.next_period();
    assert!(
        !f.chain.member(f.soc, &key(1).address()).good_standing,
        "two periods due, none paid, grace one"
    );
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: pledge(),
        },
    );
    assert!(
        f.chain.member(f.soc, &key(1).address()).good_standing,
        "one behind is within grace"
    );
    f.next_period();
    // Catching up restores standing.
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 2 * pledge(),
        },
    );
    assert!(f.chain.member(f.soc, &key(1).address()).good_standing);
}

#[test]
fn a_member_whose_gift_account_is_full_stays_in_good_standing_by_checking_in() {
    let mut r = rules();
    r.gift_cap_pledges = 2;
    let mut f = Fund::new(2, r, 0);
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 200,
        },
    );
    for _ in 0..5 {
        f.next_period();
        let m = f.chain.member(f.soc, &key(1).address());
        assert!(m.good_standing, "a full account checked in last period");
        // A check-in: a contribution of zero renews a full account to the current period.
        f.chain.ok(
            &key(1),
            Body::Contribute {
                society: f.soc,
                amount: 0,
            },
        );
    }
    for _ in 0..3 {
        f.next_period();
    }
    let m = f.chain.member(f.soc, &key(1).address());
    assert!(
        !m.good_standing && m.lapsed,
        "fullness is never evaluated passively: without a check-in the member lapses"
    );
}

#[test]
fn a_pledge_outside_the_societys_range_is_refused() {
    let mut f = Fund::new(1, rules(), 0);
    let k = key(2);
    assert_eq!(
        f.chain.exec(
            &k,
            Body::Join {
                society: f.soc,
                pledge: 99,
                identity_commitment: None
            }
        ),
        Err(Rejection::PledgeOutOfRange)
    );
    assert_eq!(
        f.chain.exec(
            &k,
            Body::Join {
                society: f.soc,
                pledge: 1_001,
                identity_commitment: None
            }
        ),
        Err(Rejection::PledgeOutOfRange)
    );
    f.chain.ok(
        &k,
        Body::Join {
            society: f.soc,
            pledge: 1_000,
            identity_commitment: None,
        },
    );
    assert_eq!(
        f.chain.exec(
            &k,
            Body::Join {
                society: f.soc,
                pledge: 100,
                identity_commitment: None
            }
        ),
        Err(Rejection::AlreadyMember)
    );
}

#[test]
fn a_commitment_society_requires_a_salted_identity_hash_and_a_public_one_refuses_it() {
    let mut r = rules();
    r.identity = Identity::Commitment;
    let mut f = Fund::new(1, rules(), 0);
    let soc2 = f.chain.society(&key(0), f.asset, r);
    let c = Some(Hash::of(&[b"salt", b"Jan Jansen, 1970-01-01"]));
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Join {
                society: soc2,
                pledge: 100,
                identity_commitment: None
            }
        ),
        Err(Rejection::IdentityCommitmentRequired)
    );
    f.chain.ok(
        &key(1),
        Body::Join {
            society: soc2,
            pledge: 100,
            identity_commitment: c,
        },
    );
    assert_eq!(
        f.chain.exec(
            &key(2),
            Body::Join {
                society: f.soc,
                pledge: 100,
                identity_commitment: c
            }
        ),
        Err(Rejection::IdentityCommitmentNotAllowed)
    );
}

#[test]
fn in_a_vote_admission_society_an_applicant_becomes_a_member_only_when_approved() {
    let mut r = rules();
    r.admission = Admission::Vote;
    r.min_members = 0;
    let mut f = Fund::new(1, rules(), 0);
    // The creator is the society's first member: there is always someone to vote.
    let soc = f.chain.society(&key(0), f.asset, r);
    assert_eq!(f.chain.book(soc).standing_count, 1);
    let bal1 = f.chain.balance(&key(1).address(), f.asset);
    let a1 = request_id(&f.chain.ok(
        &key(1),
        Body::Join {
            society: soc,
            pledge: 100,
            identity_commitment: None,
        },
    ));
    assert_eq!(
        f.chain.balance(&key(1).address(), f.asset),
        bal1 - 100,
        "applying costs a bond of one pledge"
    );
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Contribute {
                society: soc,
                amount: 100
            }
        ),
        Err(Rejection::NotYetAdmitted)
    );
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Vote {
                request: a1,
                approve: true,
                percent: 100,
            }
        ),
        Err(Rejection::NotYetAdmitted),
        "an applicant is not a member and cannot vote"
    );
    // No karma in the society yet: the head count alone decides, and one yes of one is a
    // majority.
    f.chain.ok(
        &key(0),
        Body::Vote {
            request: a1,
            approve: true,
            percent: 100,
        },
    );
    f.chain.time_ms = f.chain.request(a1).ballot.deadline_ms;
    let ev = f.chain.ok(&key(3), Body::Finalize { request: a1 });
    assert!(ev.contains(&Event::Admitted {
        society: soc,
        member: key(1).address()
    }));
    assert_eq!(
        f.chain.balance(&key(1).address(), f.asset),
        bal1,
        "bond returned"
    );
    // A second applicant is refused by the members: the bond goes to the common fund.
    let a2 = request_id(&f.chain.ok(
        &key(2),
        Body::Join {
            society: soc,
            pledge: 100,
            identity_commitment: None,
        },
    ));
    f.chain.ok(
        &key(0),
        Body::Vote {
            request: a2,
            approve: false,
            percent: 100,
        },
    );
    f.chain.time_ms = f.chain.request(a2).ballot.deadline_ms;
    let ev = f.chain.ok(&key(3), Body::Finalize { request: a2 });
    assert!(ev.contains(&Event::Finalized {
        request: a2,
        approved: false,
        percent: 0
    }));
    assert!(
        kassa_state::view::member(&f.chain.st, soc, &key(2).address(), f.chain.time_ms).is_none()
    );
    assert_eq!(f.chain.book(soc).member_count, 2);
    assert_eq!(f.chain.book(soc).common, 100);
}

// -- §4 karma ------------------------------------------------------------------------------------

#[test]
fn karma_decays_with_the_half_life_and_never_goes_negative() {
    let mut f = Fund::new(2, rules(), 0);
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 1_000,
        },
    );
    // Ten periods paid ahead; the current one's half pledge is credited.
    assert_eq!(f.chain.member(f.soc, &key(1).address()).karma, 50);
    for _ in 0..6 {
        f.next_period();
    }
    let k = f.chain.member(f.soc, &key(1).address()).karma;
    assert!((24..=25).contains(&k), "one half-life later: {k}");
    f.chain.advance_ms(1_000_000_000);
    assert_eq!(f.chain.member(f.soc, &key(1).address()).karma, 0);
}

#[test]
fn vote_weight_is_karma_as_of_the_filing_period_so_karma_bought_later_does_not_count() {
    let mut f = Fund::new(21, rules(), 4);
    let r = f.file(0, 200).unwrap();
    let filed = f.chain.request(r).ballot.filed_period;
    // Member 1 contributes a lot after the request opened; member 2 does not.
    f.chain.ok(
        &key(1),
        Body::Contribute {
            society: f.soc,
            amount: 2_000,
        },
    );
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: r,
            approve: true,
            percent: 100,
        },
    );
    f.chain.ok(
        &key(2),
        Body::Vote {
            request: r,
            approve: true,
            percent: 100,
        },
    );
    let w1 = weight_of(&f, r, 1);
    let w2 = weight_of(&f, r, 2);
    assert_eq!(w1, w2, "same history before period {filed}, same weight");
}

fn weight_of(f: &Fund, r: kassa_types::RequestId, who: usize) -> u128 {
    let key = kassa_state::keys::vote(kassa_state::keys::BallotId::Request(r), &key(who).address());
    let v: kassa_state::records::VoteRecord =
        borsh::from_slice(&kassa_state::Store::get(&f.chain.st, &key).unwrap()).unwrap();
    v.weight
}

#[test]
fn filing_a_request_consumes_a_quarter_of_the_requesters_karma() {
    let mut f = Fund::new(20, rules(), 4);
    let before = f.chain.member(f.soc, &key(0).address()).karma_raw;
    f.file(0, 100).unwrap();
    let after = f.chain.member(f.soc, &key(0).address()).karma_raw;
    assert_eq!(after, before - before / 4);
}

#[test]
fn delegated_karma_counts_for_the_delegate_and_a_direct_vote_overrides_it() {
    let mut f = Fund::new(22, rules(), 1);
    // Member 2 delegates to member 1 before the request's period.
    f.chain.ok(
        &key(2),
        Body::Delegate {
            society: f.soc,
            to: Some(key(1).address()),
        },
    );
    for _ in 0..3 {
        f.contribute_all(pledge());
        f.next_period();
    }
    let r = f.file(0, 100).unwrap();
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: r,
            approve: true,
            percent: 100,
        },
    );
    f.chain.ok(
        &key(3),
        Body::Vote {
            request: r,
            approve: true,
            percent: 100,
        },
    );
    let w1 = weight_of(&f, r, 1);
    let w3 = weight_of(&f, r, 3);
    assert!(
        w1 > w3 * 19 / 10,
        "delegate carries about two members' karma: {w1} vs {w3}"
    );
    // Member 2 votes directly (against): its weight leaves the delegate's vote.
    f.chain.ok(
        &key(2),
        Body::Vote {
            request: r,
            approve: false,
            percent: 100,
        },
    );
    let w2 = weight_of(&f, r, 2);
    assert_eq!(weight_of(&f, r, 1), w1 - w2);
    let b = f.chain.request(r).ballot;
    assert_eq!(b.yes, w1 - w2 + w3);
    assert_eq!(b.no, w2);
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Delegate {
                society: f.soc,
                to: Some(key(1).address())
            }
        ),
        Err(Rejection::SelfDelegation)
    );
}

// -- §5 requests ---------------------------------------------------------------------------------

#[test]
fn no_request_before_the_waiting_period_or_before_the_society_has_min_members() {
    let mut f = Fund::new(20, rules(), 2);
    assert_eq!(f.file(0, 10), Err(Rejection::InWaitingPeriod));
    f.contribute_all(pledge());
    f.next_period();
    f.file(0, 10).unwrap();
    let mut g = Fund::new(19, rules(), 4);
    assert_eq!(g.file(0, 10), Err(Rejection::TooFewMembers));
}

#[test]
fn a_request_is_limited_by_maximum_benefit_and_max_request_and_one_at_a_time() {
    let mut r = rules();
    r.max_request = 5_000;
    let mut f = Fund::new(20, r, 4);
    let m = f.chain.member(f.soc, &key(0).address());
    let max = u64::try_from(m.karma * 10).unwrap();
    assert!(max < 5_000);
    assert_eq!(f.file(0, 5_001), Err(Rejection::ExceedsMaxRequest));
    assert_eq!(f.file(0, max + 1), Err(Rejection::ExceedsMaximumBenefit));
    f.file(0, max).unwrap();
    assert_eq!(f.file(0, 1), Err(Rejection::OpenRequestExists));
}

#[test]
fn a_member_out_of_standing_cannot_file_or_vote() {
    let mut f = Fund::new(21, rules(), 4);
    let r = f.file(0, 100).unwrap();
    // Member 20 stops paying for two periods after the request; others keep up.
    let soc = f.soc;
    let payers: Vec<_> = f.members[..20].to_vec();
    for _ in 0..3 {
        f.next_period();
        f.chain.all_ok(&payers, |_| Body::Contribute {
            society: soc,
            amount: pledge(),
        });
    }
    assert!(!f.chain.member(soc, &key(20).address()).good_standing);
    assert_eq!(
        f.chain.exec(
            &key(20),
            Body::Vote {
                request: r,
                approve: true,
                percent: 100,
            }
        ),
        Err(Rejection::VotingClosed)
    );
    assert_eq!(f.file(20, 10), Err(Rejection::NotInGoodStanding));
}

#[test]
fn the_requester_cannot_vote_on_their_own_request_and_votes_can_be_changed_until_close() {
    let mut f = Fund::new(20, rules(), 4);
    let r = f.file(0, 100).unwrap();
    assert_eq!(
        f.chain.exec(
            &key(0),
            Body::Vote {
                request: r,
                approve: true,
                percent: 100,
            }
        ),
        Err(Rejection::CannotVoteOnOwnRequest)
    );
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: r,
            approve: true,
            percent: 100,
        },
    );
    let yes = f.chain.request(r).ballot.yes;
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: r,
            approve: false,
            percent: 100,
        },
    );
    let b = f.chain.request(r).ballot;
    assert_eq!((b.yes, b.no), (0, yes));
    f.chain.time_ms = b.deadline_ms;
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Vote {
                request: r,
                approve: true,
                percent: 100,
            }
        ),
        Err(Rejection::VotingClosed)
    );
}

#[test]
fn a_vote_that_flips_the_outcome_in_the_last_tenth_extends_the_window_once() {
    let mut r = rules();
    r.period_secs = 3_000;
    r.voting_window_secs = 100;
    // Twenty members of equal karma: one yes (5%) is under the 6% quorum, two yes against one
    // no pass (10% yes, 5% net).
    r.quorum_bps = 600;
    r.approval_net_bps = 400;
    let mut f = Fund::new(20, r, 4);
    let req = f.file(0, 100).unwrap();
    let b = f.chain.request(req).ballot;
    // With no votes the request fails.
    f.chain.ok(
        &key(2),
        Body::Vote {
            request: req,
            approve: true,
            percent: 100,
        },
    );
    f.chain.ok(
        &key(2),
        Body::Vote {
            request: req,
            approve: false,
            percent: 100,
        },
    );
    assert_eq!(
        f.chain.request(req).ballot.deadline_ms,
        b.deadline_ms,
        "no flip outside the last tenth extends nothing"
    );
    f.chain.time_ms = b.deadline_ms - 5_000; // in the last tenth (10 s)
    f.chain.ok(
        &key(3),
        Body::Vote {
            request: req,
            approve: true,
            percent: 100,
        },
    );
    assert_eq!(
        f.chain.request(req).ballot.deadline_ms,
        b.deadline_ms,
        "a vote that does not flip the outcome"
    );
    let ev = f.chain.ok(
        &key(1),
        Body::Vote {
            request: req,
            approve: true,
            percent: 100,
        },
    );
    let extended = b.deadline_ms + 10_000;
    assert!(
        ev.contains(&Event::VotingExtended {
            request: req,
            deadline_ms: extended
        }),
        "{ev:?}"
    );
    // A second flip does not extend again.
    f.chain.ok(
        &key(2),
        Body::Vote {
            request: req,
            approve: true,
            percent: 100,
        },
    );
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: req,
            approve: false,
            percent: 100,
        },
    );
    f.chain.ok(
        &key(3),
        Body::Vote {
            request: req,
            approve: false,
            percent: 100,
        },
    );
    f.chain.ok(
        &key(2),
        Body::Vote {
            request: req,
            approve: false,
            percent: 100,
        },
    );
    assert_eq!(f.chain.request(req).ballot.deadline_ms, extended);
    assert_eq!(
        f.chain.exec(&key(9), Body::Finalize { request: req }),
        Err(Rejection::VotingStillOpen)
    );
}

#[test]
fn a_small_minority_can_veto_a_request_and_its_bond_goes_to_the_common_fund() {
    let mut f = Fund::new(20, rules(), 4);
    let bond = pledge();
    let bal0 = f.chain.balance(&key(0).address(), f.asset);
    let r = f.file(0, 500).unwrap();
    assert_eq!(f.chain.balance(&key(0).address(), f.asset), bal0 - bond);
    assert_eq!(f.chain.book(f.soc).bonds, bond);
    f.chain.ok(
        &key(1),
        Body::Vote {
            request: r,
            approve: false,
            percent: 100,
        },
    );
    let g1 = f.chain.member(f.soc, &key(1).address()).gift_balance;
    let ev = f.finalize(r);
    assert!(ev.contains(&Event::Finalized {
        request: r,
        approved: false,
        percent: 0
    }));
    assert!(ev.contains(&Event::BondForfeited {
        request: r,
        amount: bond
    }));
    assert_eq!(f.chain.request(r).status, RequestStatus::Rejected);
    assert_eq!(f.chain.book(f.soc).bonds, 0);
    // The bond belongs to no member: it goes to the common fund, never to gift accounts
    // (voting no earns nobody money).
    let g1_after = f.chain.member(f.soc, &key(1).address()).gift_balance;
    assert_eq!(g1_after, g1);
    assert_eq!(f.chain.book(f.soc).common, bond);
    assert_eq!(f.chain.balance(&key(0).address(), f.asset), bal0 - bond);
}

#[test]
fn an_approved_request_returns_the_bond_and_is_drawn_pro_rata_from_every_gift_account() {
    let mut r = rules();
    r.max_draw_bps = 10_000;
    let mut f = Fund::new(20, r, 4);
    let g_before: Vec<u64> = (0..20)
        .map(|i| f.chain.member(f.soc, &key(i).address()).gift_balance)
        .collect();
    let bal0 = f.chain.balance(&key(0).address(), f.asset);
    let r = f.file(0, 1_000).unwrap();
    f.vote_all(r, true, 0);
    let ev = f.finalize(r);
    assert!(ev.contains(&Event::BondReturned {
        request: r,
        amount: pledge()
    }));
    assert!(ev.contains(&Event::SharePaid {
        request: r,
        amount: 1_000
    }));
    assert!(ev.contains(&Event::RequestPaid { request: r }));
    assert_eq!(f.chain.balance(&key(0).address(), f.asset), bal0 + 1_000);
    // Everyone had 400; each pays 1000/20 = 50 (the requester too: it is their society).
    for (i, g) in g_before.iter().enumerate() {
        let now = f.chain.member(f.soc, &key(i).address()).gift_balance;
        assert!(
            now <= g - 50 && now + 1 >= g - 50,
            "member {i}: {g} -> {now}"
        );
    }
    assert_eq!(f.chain.request(r).paid, 1_000);
    // Giving by automatic share earns karma: half of the 50 given, less decay.
    assert!(
        f.chain.member(f.soc, &key(5).address()).karma
            > f.chain.member(f.soc, &key(5).address()).karma_raw >> 33
    );
}

#[test]
fn draws_in_one_period_are_capped_and_the_rest_is_paid_later_in_approval_order() {
    let mut f = Fund::new(20, rules(), 4); // 10% of 8000 per period = 800
    let r0 = f.file(0, 1_000).unwrap();
    let r1 = f.file(1, 300).unwrap();
    f.vote_all(r0, true, 0);
    f.vote_all(r1, true, 1);
    f.finalize(r0);
    f.finalize(r1);
    let pool_start = f.chain.book(f.soc).start.pool.total;
    let budget = pool_start / 10;
    assert_eq!(f.chain.request(r0).paid, budget.min(1_000));
    assert_eq!(
        f.chain.request(r1).paid,
        0,
        "later approvals wait their turn"
    );
    f.next_period();
    f.chain.ok(&key(21), Body::Settle { society: f.soc });
    assert_eq!(f.chain.request(r0).status, RequestStatus::Paid);
    assert_eq!(f.chain.request(r0).paid, 1_000);
    assert!(f.chain.request(r1).paid > 0);
}

#[test]
fn members_may_gift_to_an_approved_request_until_it_is_funded_but_not_beyond() {
    let mut r = rules();
    r.auto_share = false;
    let mut f = Fund::new(20, r, 4);
    let req = f.file(0, 150).unwrap();
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Gift {
                request: req,
                amount: 10
            }
        ),
        Err(Rejection::RequestNotApproved)
    );
    f.vote_all(req, true, 0);
    f.finalize(req);
    assert_eq!(
        f.chain.exec(
            &key(0),
            Body::Gift {
                request: req,
                amount: 10
            }
        ),
        Err(Rejection::CannotGiftToOwnRequest)
    );
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::Gift {
                request: req,
                amount: 151
            }
        ),
        Err(Rejection::GiftExceedsNeed)
    );
    let karma_before = f.chain.member(f.soc, &key(1).address()).karma_raw;
    f.chain.ok(
        &key(1),
        Body::Gift {
            request: req,
            amount: 100,
        },
    );
    assert!(
        f.chain.member(f.soc, &key(1).address()).karma_raw > karma_before,
        "giving earns karma"
    );
    assert_eq!(f.chain.member(f.soc, &key(1).address()).gift_balance, 300);
    let ev = f.chain.ok(
        &key(2),
        Body::Gift {
            request: req,
            amount: 50,
        },
    );
    assert!(ev.contains(&Event::RequestPaid { request: req }));
    assert_eq!(
        f.chain.exec(
            &key(3),
            Body::Gift {
                request: req,
                amount: 1
            }
        ),
        Err(Rejection::RequestFullyFunded)
    );
    assert_eq!(f.chain.request(req).gifted, 150);
}

#[test]
fn a_request_is_finalized_once() {
    let mut f = Fund::new(20, rules(), 4);
    let r = f.file(0, 100).unwrap();
    f.finalize(r);
    assert_eq!(
        f.chain.exec(&key(3), Body::Finalize { request: r }),
        Err(Rejection::AlreadyFinalized)
    );
}

// -- §6 exit -------------------------------------------------------------------------------------

#[test]
fn a_leaving_member_keeps_sharing_during_notice_then_withdraws_the_rest() {
    let mut r = rules();
    r.max_draw_bps = 10_000;
    let mut f = Fund::new(21, r, 4);
    f.chain.ok(&key(20), Body::Leave { society: f.soc });
    assert_eq!(
        f.chain.member(f.soc, &key(20).address()).karma,
        0,
        "karma is dropped"
    );
    assert_eq!(
        f.chain.exec(&key(20), Body::Withdraw { society: f.soc }),
        Err(Rejection::NoticeNotOver)
    );
    let before = f.chain.member(f.soc, &key(20).address()).gift_balance;
    let req = f.file(0, 1_050).unwrap();
    assert_eq!(
        f.chain.exec(
            &key(20),
            Body::Vote {
                request: req,
                approve: true,
                percent: 100,
            }
        ),
        Err(Rejection::MemberLeaving)
    );
    f.members.pop();
    f.vote_all(req, true, 0);
    f.finalize(req);
    let after = f.chain.member(f.soc, &key(20).address()).gift_balance;
    assert!(
        after < before,
        "the leaving member shared in the approved request: {before} -> {after}"
    );
    f.next_period();
    let bal = f.chain.balance(&key(20).address(), f.asset);
    let ev = f.chain.ok(&key(20), Body::Withdraw { society: f.soc });
    assert!(ev.contains(&Event::Withdrawn {
        society: f.soc,
        member: key(20).address(),
        refund: after,
        held_back: 0,
    }));
    assert_eq!(f.chain.balance(&key(20).address(), f.asset), bal + after);
}

#[test]
fn without_exit_refund_the_gift_account_stays_in_the_common_fund_to_fund_future_requests() {
    let mut r = rules();
    r.exit_refund = false;
    r.notice_periods = 0;
    let mut f = Fund::new(20, r, 2);
    let pool = f.chain.book(f.soc).pool.total;
    let left = f.chain.member(f.soc, &key(3).address()).gift_balance;
    f.chain.ok(&key(3), Body::Leave { society: f.soc });
    let bal = f.chain.balance(&key(3).address(), f.asset);
    f.chain.ok(&key(3), Body::Withdraw { society: f.soc });
    assert_eq!(f.chain.balance(&key(3).address(), f.asset), bal);
    // Money without an owner earns karma for nobody: it leaves the gift funds for the common
    // fund, which pays approved help first.
    assert_eq!(f.chain.book(f.soc).pool.total, pool - left);
    assert_eq!(f.chain.book(f.soc).common, left);
    assert_eq!(
        f.chain.exec(
            &key(3),
            Body::Contribute {
                society: f.soc,
                amount: 1
            }
        ),
        Err(Rejection::NotMember)
    );
}

// -- §7 amendments -------------------------------------------------------------------------------

#[test]
fn an_amendment_needs_a_supermajority_waits_a_timelock_and_lets_members_leave_with_a_refund_meanwhile()
 {
    let mut r = rules();
    r.exit_refund = false;
    r.notice_periods = 5;
    let mut f = Fund::new(20, r.clone(), 3);
    let mut new_rules = r.clone();
    new_rules.benefit_ratio = 20;
    f.chain.ok(
        &key(0),
        Body::ProposeAmendment {
            society: f.soc,
            rules: new_rules.clone(),
        },
    );
    assert_eq!(
        f.chain.exec(
            &key(1),
            Body::ProposeAmendment {
                society: f.soc,
                rules: new_rules.clone()
            }
        ),
        Err(Rejection::AmendmentInProgress)
    );
    let aid = kassa_types::AmendmentId(0);
    let voters: Vec<_> = f.members[..14].to_vec();
    f.chain.all_ok(&voters, |_| Body::VoteAmendment {
        amendment: aid,
        approve: true,
    });
    assert_eq!(
        f.chain
            .exec(&key(0), Body::EnactAmendment { amendment: aid }),
        Err(Rejection::VotingStillOpen)
    );
    let a: kassa_state::records::Amendment = borsh::from_slice(
        &kassa_state::Store::get(&f.chain.st, &kassa_state::keys::amendment(aid)).unwrap(),
    )
    .unwrap();
    f.chain.time_ms = a.ballot.deadline_ms;
    assert_eq!(
        f.chain
            .exec(&key(0), Body::EnactAmendment { amendment: aid }),
        Err(Rejection::TimelockNotOver)
    );
    // During the timelock a member who disagrees leaves at once, with a refund, despite the
    // society's no-refund rule and five periods of notice.
    let gift = f.chain.member(f.soc, &key(19).address()).gift_balance;
    let bal = f.chain.balance(&key(19).address(), f.asset);
    f.chain.ok(&key(19), Body::Leave { society: f.soc });
    assert_eq!(f.chain.balance(&key(19).address(), f.asset), bal + gift);
    f.chain.advance_ms(2 * f.period_ms);
    f.chain.ok(&key(5), Body::EnactAmendment { amendment: aid });
    assert_eq!(
        kassa_state::view::society(&f.chain.st, f.soc)
            .unwrap()
            .0
            .rules
            .benefit_ratio,
        20
    );
}

#[test]
fn an_amendment_without_a_supermajority_is_rejected_and_the_period_cannot_change() {
    let mut f = Fund::new(20, rules(), 3);
    let mut bad = rules();
    bad.period_secs = 2;
    assert_eq!(
        f.chain.exec(
            &key(0),
            Body::ProposeAmendment {
                society: f.soc,
                rules: bad
            }
        ),
        Err(Rejection::AmendmentChangesFixedRule)
    );
    let mut new_rules = rules();
    new_rules.min_members = 5;
    f.chain.ok(
        &key(0),
        Body::ProposeAmendment {
            society: f.soc,
            rules: new_rules,
        },
    );
    let aid = kassa_types::AmendmentId(0);
    let voters: Vec<_> = f.members[..10].to_vec();
    f.chain.all_ok(&voters, |_| Body::VoteAmendment {
        amendment: aid,
        approve: true,
    });
    f.chain.advance_ms(61_000);
    let ev = f.chain.ok(&key(5), Body::EnactAmendment { amendment: aid });
    assert!(ev.contains(&Event::AmendmentRejected { amendment: aid }));
    assert_eq!(
        kassa_state::view::society(&f.chain.st, f.soc)
            .unwrap()
            .0
            .rules
            .min_members,
        20
    );
    assert_eq!(
        f.chain
            .exec(&key(5), Body::EnactAmendment { amendment: aid }),
        Err(Rejection::AlreadyFinalized)
    );
}

#[test]
fn the_founder_of_a_society_has_no_privilege() {
    // There is no transaction that only the founder may send: the founder is recorded for
    // information, joins as the first member, and every handler checks membership, never the
    // founder. Having left, the founder can do nothing a non-member cannot.
    let mut r = rules();
    r.notice_periods = 0;
    let mut f = Fund::new(20, rules(), 4);
    let founded = f.chain.society(&key(22), f.asset, r);
    assert_eq!(f.chain.book(founded).member_count, 1);
    f.chain.ok(&key(22), Body::Leave { society: founded });
    f.chain.ok(&key(22), Body::Withdraw { society: founded });
    assert_eq!(
        f.chain.exec(
            &key(22),
            Body::ProposeAmendment {
                society: founded,
                rules: rules()
            }
        ),
        Err(Rejection::NotMember)
    );
    assert_eq!(
        f.chain.exec(
            &key(22),
            Body::Contribute {
                society: founded,
                amount: 1
            }
        ),
        Err(Rejection::NotMember)
    );
}
