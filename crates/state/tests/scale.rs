//! Cost must not grow with the number of members (PROTOCOL §5): approving a request and drawing
//! its pro-rata share from every gift account writes the same state entries in a society of ten
//! members as in a society of a million.

mod common;

use common::*;
use kassa_state::keys;
use kassa_state::pool::{Stake, half_karma};
use kassa_state::records::{Asset, Book, Event, Member, MemberStatus};
use kassa_state::{Store, StoreMut};
use kassa_types::tx::Body;
use kassa_types::{Address, Rules};

fn rules() -> Rules {
    let mut r = fast_rules(100, 1_000);
    r.min_members = 10;
    r.approval_net_bps = 0; // approved iff yes >= no, whatever the silent majority holds
    r.max_draw_bps = 10_000;
    r
}

/// Adds `n` members straight into storage, each with a gift account of 400 and matching karma,
/// keeping every §9 invariant (the asset's supply grows by what their gift accounts hold).
fn seed_members(f: &mut Fund, n: u64) {
    let st = &mut f.chain.st;
    let mut book: Book = borsh::from_slice(&st.get(&keys::book(f.soc)).unwrap()).unwrap();
    let now = book.start.period;
    let h = rules().karma_half_life_periods;
    for i in 0..n {
        let mut who = [0xEEu8; 32];
        who[..8].copy_from_slice(&i.to_be_bytes());
        let mut stake = Stake {
            karma: half_karma(400),
            pos: book.pool.empty_position(now, h),
        };
        book.pool.deposit(400).unwrap();
        stake.deposit(&book.pool, 400, now, h);
        let m = Member {
            status: MemberStatus::Active,
            joined_period: 0,
            pledge: 100,
            identity_commitment: None,
            contributed: 400,
            stake,
            delegate: None,
            open_request: None,
        };
        st.put(
            keys::member(f.soc, &Address(who)),
            borsh::to_vec(&m).unwrap(),
        );
    }
    book.member_count += n;
    book.total_karma += half_karma(400) * u128::from(n);
    st.put(keys::book(f.soc), borsh::to_vec(&book).unwrap());
    let mut asset: Asset = borsh::from_slice(&st.get(&keys::asset(f.asset)).unwrap()).unwrap();
    asset.supply += 400 * n;
    st.put(keys::asset(f.asset), borsh::to_vec(&asset).unwrap());
}

/// Files, approves and finalizes a request; returns the number of state entries the finalizing
/// transaction wrote and the amount it drew.
fn approve_and_finalize(members: u64) -> (u64, u64) {
    let mut f = Fund::new(10, rules(), 4);
    if members > 10 {
        f.chain.paranoid = false;
        seed_members(&mut f, members - 10);
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
