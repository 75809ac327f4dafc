//! Cost must not grow with the number of members (docs/protocol.md §5): approving a request and drawing
//! its pro-rata share from every gift account writes the same state entries in a society of ten
//! members as in a society of a million.

mod common;

use common::*;
use kassa_state::records::Event;
use kassa_types::Rules;
use kassa_types::tx::Body;

fn rules() -> Rules {
    let mut r = fast_rules(100, 1_000);
    r.min_members = 10;
    r.approval_net_bps = 1;
    r.max_draw_bps = 10_000;
    r
}

/// Files, approves and finalizes a request; returns the number of state entries the finalizing
/// transaction wrote and the amount it drew.
fn approve_and_finalize(members: u64) -> (u64, u64) {
    let mut f = Fund::new(10, rules(), 4);
    if members > 10 {
        f.chain.paranoid = false;
        let h = rules().karma_half_life_periods;
        // One period paid (at a pledge of 400): none of it is credited before the vote, so the
        // ten members' karma decides.
        kassa_state::testkit::seed_members(
            &mut f.chain.st,
            f.soc,
            f.asset,
            members - 10,
            400,
            400,
            h,
        );
        f.chain.audit();
    }
    let r = f.file(0, 500).unwrap();
    f.vote_all(r, true, 0);
    let deadline = f.chain.request(r).ballot.deadline_ms;
    f.chain.time_ms = deadline;
    let t = f.chain.sign(&key(11), Body::Finalize { request: r });
    let receipt = f.chain.block(&[t]).pop().unwrap().unwrap();
    let drawn: u64 = receipt
        .events()
        .iter()
        .map(|e| {
            if let Event::SharePaid { amount, .. } = e {
                *amount
            } else {
                0
            }
        })
        .sum();
    assert_eq!(drawn, 500, "the request was paid from the gift accounts");
    if members > 10 {
        // One full audit with every member: the sum of derived balances is within the pool.
        f.chain.audit();
    }
    (receipt.writes, drawn)
}

#[test]
fn finalizing_an_approved_request_writes_the_same_entries_for_ten_members_as_for_a_million() {
    let (small, _) = approve_and_finalize(10);
    let (large, _) = approve_and_finalize(1_000_000);
    assert_eq!(
        small, large,
        "writes must not depend on the number of members"
    );
    assert!(small < 16, "a handful of entries: {small}");
}

#[test]
fn a_members_record_after_forty_periods_of_contributions_and_a_paid_request_takes_at_most_64_bytes()
{
    use kassa_state::ScanStore;
    use kassa_state::records::Member;
    // Forty periods of contributions, then a request drawn from every gift account.
    let mut rules = rules();
    rules.gift_cap_pledges = 100;
    let mut f = Fund::new(10, rules, 0);
    for _ in 0..40 {
        f.contribute_all(100);
        f.next_period();
    }
    let r = f.file(0, 500).unwrap();
    f.vote_all(r, true, 0);
    f.chain.time_ms = f.chain.request(r).ballot.deadline_ms;
    f.finalize(r);
    let records = f
        .chain
        .st
        .scan_prefix(&kassa_state::keys::members_of(f.soc));
    assert_eq!(records.len(), 10);
    for (_, bytes) in records {
        let m: Member = kassa_types::codec::decode(&bytes, 1024).unwrap();
        assert!(m.paid_until >= 40 && m.stake.karma > 0, "{m:?}");
        assert!(bytes.len() <= 64, "{} bytes: {m:?}", bytes.len());
        assert_eq!(kassa_types::codec::encode(&m), bytes);
    }
}
