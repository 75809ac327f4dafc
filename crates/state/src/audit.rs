//! The invariant auditor of PROTOCOL §9. It reads the whole state (so it is for tests,
//! simulations and `kassa audit`, not for block execution) and reports the first violation.
//!
//! 1. Per asset: supply (genesis + minted − burned) = Σ account balances + Σ society funds
//!    (gift pools, which include dust, plus locked bonds).
//! 2. Per society: Σ members' derived gift balances ≤ the recorded pool total; locked bonds equal
//!    the bonds of open requests; the member count matches.
//! 3. No negative or wrapped value (all are unsigned and every operation is checked; decoding
//!    every record proves it is well-formed).
//! 4. A request is paid at most its amount, only after approval; `Paid` means fully paid.
//! 5. Nonces never decrease; a request's payments never decrease; a decided request never reopens
//!    (checked against the previous snapshot).
//! 6. Determinism is checked by the callers (same blocks, same digest).

use crate::exec::get;
use crate::keys;
use crate::records::*;
use crate::store::ScanStore;
use kassa_types::{Address, AssetId, RequestId, SocietyId};
use std::collections::BTreeMap;

/// What must never go backwards, carried from one audit to the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nonces: BTreeMap<Address, u64>,
    /// (paid, gifted, status) per request.
    pub requests: BTreeMap<RequestId, (u64, u64, RequestStatus)>,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invariant {invariant} violated: {detail}")]
pub struct Violation {
    pub invariant: u8,
    pub detail: String,
}

fn fail<T>(invariant: u8, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn addr_at(bytes: &[u8], at: usize) -> Address {
    Address(bytes[at..at + 32].try_into().expect("32 bytes"))
}

fn decode<T: borsh::BorshDeserialize>(v: &[u8]) -> T {
    borsh::from_slice(v).expect("state holds only values this code wrote")
}

/// Checks every invariant; returns the snapshot to pass to the next audit.
pub fn audit<S: ScanStore>(st: &S, prev: Option<&Snapshot>) -> Result<Snapshot, Violation> {
    let mut held: BTreeMap<AssetId, u128> = BTreeMap::new();
    // Accounts: nonces (only a used account has one to keep) and KAS balances.
    let mut nonces = BTreeMap::new();
    for (k, v) in st.scan_prefix(&[keys::ACCOUNT]) {
        let who = addr_at(&k, 1);
        let acc: Account = decode(&v);
        if acc == Account::default() {
            return fail(3, format!("empty account record stored for {who}"));
        }
        *held.entry(AssetId::NATIVE).or_default() += u128::from(acc.kas);
        if let Some(old) = prev.and_then(|p| p.nonces.get(&who))
            && acc.nonce < *old
        {
            return fail(
                5,
                format!("nonce of {who} went from {old} to {}", acc.nonce),
            );
        }
        if acc.nonce > 0 {
            nonces.insert(who, acc.nonce);
        }
    }
    for (k, v) in st.scan_prefix(&[keys::BALANCE]) {
        let asset = AssetId(u64_at(&k, 33));
        let amount: u64 = decode(&v);
        if asset == AssetId::NATIVE {
            return fail(
                3,
                format!(
                    "KAS balance of {} stored outside its account",
                    addr_at(&k, 1)
                ),
            );
        }
        if amount == 0 {
            return fail(
                3,
                format!("zero balance stored for {} {asset}", addr_at(&k, 1)),
            );
        }
        *held.entry(asset).or_default() += u128::from(amount);
    }

    // Societies.
    let mut open_bonds: BTreeMap<SocietyId, u128> = BTreeMap::new();
    let mut requests = BTreeMap::new();
    for (k, v) in st.scan_prefix(&[keys::REQUEST]) {
        let id = RequestId(u64_at(&k, 1));
        let r: Request = decode(&v);
        let amount = r.amount();
        if u128::from(r.paid) + u128::from(r.gifted) > u128::from(amount) {
            return fail(
                4,
                format!(
                    "{id} paid {} + gifted {} > amount {amount}",
                    r.paid, r.gifted
                ),
            );
        }
        let payments = r.paid > 0 || r.gifted > 0;
        match r.status {
            RequestStatus::Open | RequestStatus::Rejected if payments => {
                return fail(4, format!("{id} received payments while {:?}", r.status));
            }
            RequestStatus::Paid if r.paid + r.gifted != amount => {
                return fail(
                    4,
                    format!("{id} is marked paid with {} of {amount}", r.paid + r.gifted),
                );
            }
            RequestStatus::Approved if amount > 0 && r.paid + r.gifted == amount => {
                return fail(4, format!("{id} is fully paid but still marked approved"));
            }
            _ => {}
        }
        if let (RequestStatus::Open, RequestKind::Help { bond, .. }) = (r.status, &r.kind) {
            *open_bonds.entry(r.ballot.society).or_default() += u128::from(*bond);
        }
        if let Some((paid, gifted, status)) = prev.and_then(|p| p.requests.get(&id)) {
            if r.paid < *paid || r.gifted < *gifted {
                return fail(5, format!("{id} payments went backwards"));
            }
            if *status != RequestStatus::Open && r.status == RequestStatus::Open {
                return fail(5, format!("{id} reopened"));
            }
        }
        requests.insert(id, (r.paid, r.gifted, r.status));
    }

    for (k, v) in st.scan_prefix(&[keys::SOCIETY]) {
        let id = SocietyId(u64_at(&k, 1));
        let meta: Society = decode(&v);
        let book: Book = get(st, &keys::book(id)).expect("every society has a book");
        let now = book.start.period;
        let h = meta.rules.karma_half_life_periods;
        let mut sum: u128 = 0;
        let mut active: u64 = 0;
        for (_, mv) in st.scan_prefix(&keys::members_of(id)) {
            let m: Member = decode(&mv);
            sum += u128::from(book.pool.value(&m.stake.pos, now, h).balance);
            active += u64::from(m.status == MemberStatus::Active);
        }
        if sum > u128::from(book.pool.total) {
            return fail(
                2,
                format!(
                    "{id}: members' gift balances {sum} exceed the pool {}",
                    book.pool.total
                ),
            );
        }
        if active != book.member_count {
            return fail(
                2,
                format!(
                    "{id}: {active} active members, book says {}",
                    book.member_count
                ),
            );
        }
        let bonds = open_bonds.get(&id).copied().unwrap_or(0);
        if bonds != u128::from(book.bonds) {
            return fail(
                1,
                format!(
                    "{id}: open requests hold {bonds} in bonds, book says {}",
                    book.bonds
                ),
            );
        }
        *held.entry(meta.asset).or_default() +=
            u128::from(book.pool.total) + u128::from(book.bonds);
    }

    for (k, v) in st.scan_prefix(&[keys::ASSET]) {
        let id = AssetId(u64_at(&k, 1));
        let a: Asset = decode(&v);
        let h = held.remove(&id).unwrap_or(0);
        if h != u128::from(a.supply) {
            return fail(
                1,
                format!("{id} ({}): supply {} but {h} is held", a.symbol, a.supply),
            );
        }
        if a.max_supply.is_some_and(|m| a.supply > m) {
            return fail(1, format!("{id}: supply above max supply"));
        }
    }
    if let Some((id, h)) = held.into_iter().next() {
        return fail(1, format!("{h} of unknown asset {id} is held"));
    }

    if let Some(p) = prev
        && let Some(who) = p.nonces.keys().find(|w| !nonces.contains_key(*w))
    {
        return fail(5, format!("account {who} disappeared"));
    }
    Ok(Snapshot { nonces, requests })
}
