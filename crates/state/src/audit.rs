//! The invariant auditor of docs/protocol.md §9. It reads the whole state (so it is for tests,
//! simulations and `kassa audit`, not for block execution) and reports the first violation.
//!
//! 1. Per asset: supply (genesis + minted − burned) = Σ account balances + Σ society funds
//!    (gift pools, which include dust, locked bonds, the common fund and the installments funded
//!    but not yet claimed).
//! 2. Per society: Σ members' derived gift balances ≤ the recorded pool total; locked bonds equal
//!    the bonds of open requests; the member count matches.
//! 3. No negative or wrapped value (all are unsigned and every operation is checked; decoding
//!    every record proves it is well-formed).
//! 4. A request is paid at most its amount, only after approval; `Paid` means fully paid.
//! 5. Nonces never decrease; a request's payments never decrease; a decided request never reopens
//!    (checked against the previous snapshot).
//! 6. Determinism is checked by the callers (same blocks, same digest).
//! 7. Per society: the total karma equals the sum of the karma of the members in good standing
//!    (with the paid periods that have arrived),
//!    within [`karma_rounding_bound`]; the standing count is the number of members
//!    in good standing; no member has more than one request open or being paid; and what the
//!    society owes is exactly the open requests, the unpaid approved lump sums and the
//!    installments of running benefits not yet due. Likewise, each member's delegated karma
//!    equals the karma of the members in good standing who delegate to them.

use crate::exec::{credit_dues_karma, delegated_karma_now, get};
use crate::keys;
use crate::records::*;
use crate::store::ScanStore;
use kassa_types::{Address, AssetId, RequestId, SocietyId};
use std::collections::BTreeMap;

/// The rounding bound of invariant 7, per member in good standing (plus one), in whole units of
/// karma: `3 × half-life (in periods) + 4`. The society's total is one aggregate where each
/// member is valued alone. Every division rounds down, so each side loses under one base unit of
/// giving each time a share is derived, and under one fixed-point unit each time karma decays;
/// a member's own giving is re-derived at most once per period with a decay step in it, and what
/// a period's rounding leaves decays with the half-life like karma itself, so the gap settles
/// below `1 / (1 − 2^(−1/h)) < 1.45 h + 1` such units per member. Adding and removing members
/// re-derives the aggregate's normalized giving ([`crate::pool::Stake::add`]), so membership
/// changes do not accumulate error.
pub fn karma_rounding_bound(members_in_standing: u64, half_life_periods: u32) -> u128 {
    let units = (u128::from(members_in_standing) + 1) * (3 * u128::from(half_life_periods) + 4);
    units << crate::pool::KARMA_FRACTION_BITS
}

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

/// What a key of the scanned prefix names (the scan returns only keys the state machine built).
fn named<T>(parsed: Option<T>) -> T {
    parsed.expect("the state holds only keys this code built")
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
        let who = named(keys::parse_account(&k));
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
        let (who, asset) = named(keys::parse_balance(&k));
        let amount: u64 = decode(&v);
        if asset == AssetId::NATIVE {
            return fail(
                3,
                format!("KAS balance of {who} stored outside its account"),
            );
        }
        if amount == 0 {
            return fail(3, format!("zero balance stored for {who} {asset}"));
        }
        *held.entry(asset).or_default() += u128::from(amount);
    }

    // Societies.
    let mut open_bonds: BTreeMap<SocietyId, u128> = BTreeMap::new();
    let mut owed: BTreeMap<SocietyId, u128> = BTreeMap::new();
    let mut in_progress: BTreeMap<(SocietyId, Address), u64> = BTreeMap::new();
    let mut requests = BTreeMap::new();
    let rolled = |society: SocietyId| -> u64 {
        get::<Book>(st, &keys::book(society))
            .expect("every society has a book")
            .rolled
    };
    for (k, v) in st.scan_prefix(&[keys::REQUEST]) {
        let id = named(keys::parse_request(&k));
        let r: Request = decode(&v);
        let society = r.ballot.society;
        if get::<Address>(st, &keys::society_request(society, id)) != Some(r.requester) {
            return fail(
                3,
                format!("{id} is missing from the index of {society}'s requests"),
            );
        }
        let paid_total = u128::from(r.paid) + u128::from(r.gifted);
        if paid_total > u128::from(r.approved) {
            return fail(
                4,
                format!(
                    "{id} paid {} + gifted {} > approved {}",
                    r.paid, r.gifted, r.approved
                ),
            );
        }
        if let Some(b) = &r.benefit {
            let whole = u128::from(b.per_period) * u128::from(b.last + 1 - b.first);
            if u128::from(b.claimed) > whole {
                return fail(
                    4,
                    format!("{id} claimed {} of a benefit of {whole}", b.claimed),
                );
            }
        }
        let payments = paid_total > 0 || r.benefit.as_ref().is_some_and(|b| b.claimed > 0);
        match r.status {
            RequestStatus::Open | RequestStatus::Rejected if payments => {
                return fail(4, format!("{id} received payments while {:?}", r.status));
            }
            RequestStatus::Paid if r.benefit.is_none() && paid_total != u128::from(r.approved) => {
                return fail(
                    4,
                    format!("{id} is marked paid with {paid_total} of {}", r.approved),
                );
            }
            RequestStatus::Approved
                if r.benefit.is_none()
                    && r.approved > 0
                    && paid_total == u128::from(r.approved) =>
            {
                return fail(4, format!("{id} is fully paid but still marked approved"));
            }
            _ => {}
        }
        let now = rolled(society);
        match (r.status, &r.kind) {
            (RequestStatus::Open, RequestKind::Help { bond, .. })
            | (RequestStatus::Open, RequestKind::Admission { bond }) => {
                *open_bonds.entry(society).or_default() += u128::from(*bond);
            }
            _ => {}
        }
        let owes = match (r.status, &r.benefit) {
            (RequestStatus::Open, _) => r.asked(),
            (RequestStatus::Approved, None) => u128::from(r.need()),
            (RequestStatus::Approved, Some(b)) if b.index_end.is_none() && b.last > now => {
                u128::from(b.per_period) * u128::from(b.last - now)
            }
            _ => 0,
        };
        *owed.entry(society).or_default() += owes;
        if matches!(r.kind, RequestKind::Help { .. }) && r.in_progress(now) {
            *in_progress.entry((society, r.requester)).or_default() += 1;
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
    let indexed = st.scan_prefix(&[keys::SOCIETY_REQUEST]).len();
    if indexed != requests.len() {
        return fail(
            3,
            format!("{indexed} entries index {} requests", requests.len()),
        );
    }
    if let Some(((society, who), n)) = in_progress.iter().find(|(_, n)| **n > 1) {
        return fail(
            7,
            format!("{who} has {n} requests open or being paid in {society}"),
        );
    }

    for (k, v) in st.scan_prefix(&[keys::SOCIETY]) {
        let id = named(keys::parse_society(&k));
        let meta: Society = decode(&v);
        let book: Book = get(st, &keys::book(id)).expect("every society has a book");
        let now = book.rolled;
        let h = meta.rules.karma_half_life_periods;
        let mut sum: u128 = 0;
        let mut active: u64 = 0;
        let mut standing: u64 = 0;
        let mut karma: u128 = 0;
        // Per delegate: the delegators in good standing and their karma.
        let mut delegated: BTreeMap<Address, (u64, u128)> = BTreeMap::new();
        for (_, mv) in st.scan_prefix(&keys::members_of(id)) {
            let m: Member = decode(&mv);
            let (k, balance) = m.stake.value(&book.pool, now, h);
            sum += u128::from(balance);
            active += u64::from(m.status == MemberStatus::Active);
            if m.in_good_standing(now) {
                standing += 1;
                // With the paid periods that arrived since the member's last touch.
                let mut arrived = m.clone();
                arrived.stake.karma = 0;
                credit_dues_karma(&mut arrived, now, h);
                let k = k + arrived.stake.karma;
                karma += k;
                if let Some(d) = m.delegate {
                    let e = delegated.entry(d).or_default();
                    e.0 += 1;
                    e.1 += k;
                }
            }
        }
        for (k, _) in st.scan_prefix(&keys::delegated_in(id)) {
            let delegate = named(keys::parse_delegated(&k)).1;
            delegated.entry(delegate).or_default();
        }
        for (delegate, (count, held)) in delegated {
            let power = delegated_karma_now(st, id, &delegate, now, &book.pool, h);
            let bound = karma_rounding_bound(count, h);
            if power.abs_diff(held) > bound {
                return fail(
                    7,
                    format!(
                        "{id}: {delegate} holds {power} delegated karma but their {count} \
                         delegators in good standing hold {held} (bound {bound})"
                    ),
                );
            }
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
        if standing != book.standing_count {
            return fail(
                7,
                format!(
                    "{id}: {standing} members in good standing, book says {}",
                    book.standing_count
                ),
            );
        }
        let total = book.standing.value(&book.pool, now, h).0;
        let bound = karma_rounding_bound(standing, h);
        if total.abs_diff(karma) > bound {
            return fail(
                7,
                format!(
                    "{id}: total karma {total} but the members in good standing hold {karma} \
                     (bound {bound})"
                ),
            );
        }
        let owes = owed.get(&id).copied().unwrap_or(0);
        if owes != book.owed {
            return fail(
                7,
                format!("{id}: requests owe {owes}, book says {}", book.owed),
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
        *held.entry(meta.asset).or_default() += u128::from(book.pool.total)
            + u128::from(book.bonds)
            + u128::from(book.common)
            + u128::from(book.escrow);
    }

    for (k, v) in st.scan_prefix(&[keys::ASSET]) {
        let id = named(keys::parse_asset(&k));
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
