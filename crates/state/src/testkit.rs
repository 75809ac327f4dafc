//! Helpers for tests and benchmarks, never used by the node: members written straight into
//! storage, keeping every §9 invariant, instead of a million signed joins (the scale test and
//! `kassa bench scale`); a tiny seeded generator for random workloads.

use crate::fixed::{decay, decayed_sum};
use crate::keys;
use crate::pool::{Stake, half_karma};
use crate::records::{Asset, Book, Member, MemberStatus, Roll, Society};
use crate::{Store, StoreMut};
use kassa_types::codec::encode;
use kassa_types::{Address, AssetId, SocietyId};

/// The address of seeded member `i` (never a real key's address: `0xEE…` with `i` in front).
pub fn seeded_member(i: u64) -> Address {
    let mut who = [0xEEu8; 32];
    who[..8].copy_from_slice(&i.to_be_bytes());
    Address(who)
}

/// Adds `n` active members to society `soc` (whose asset is `asset`), each with a pledge of
/// `pledge`, `gift` contributed and held in their gift account (paying `gift / pledge` periods of
/// dues from the current one; they start with no karma, and the paid periods after the current
/// one are credited as they arrive). The asset's supply grows by what the gift accounts hold, so
/// conservation still holds, and the society's totals, dues rate and roll records include them,
/// so invariant 7 does too.
pub fn seed_members<S: Store + StoreMut>(
    st: &mut S,
    soc: SocietyId,
    asset: AssetId,
    n: u64,
    pledge: u64,
    gift: u64,
    half_life_periods: u32,
) {
    let h = half_life_periods;
    let decode = |st: &S, key: &[u8]| st.get(key).expect("present");
    let mut book: Book = borsh::from_slice(&decode(st, &keys::book(soc))).expect("book");
    let meta: Society = borsh::from_slice(&decode(st, &keys::society(soc))).expect("society");
    let now = book.rolled;
    let paid_until = now + (gift / pledge).max(1);
    let lapse_at = paid_until + u64::from(meta.rules.grace_periods);
    let mut lapsing = Stake::default();
    lapsing.settle(&book.pool, now, h);
    book.standing.settle(&book.pool, now, h);
    for i in 0..n {
        let mut stake = Stake {
            karma: 0,
            pos: book.pool.empty_position(now, h),
        };
        book.pool.deposit(gift).expect("the pool has room");
        stake.deposit(&book.pool, gift, now, h);
        let m = Member {
            status: MemberStatus::Active,
            joined_ms: meta.created_ms,
            waiting_until_ms: meta.created_ms,
            pledge,
            prev_pledge: pledge,
            pledge_from: 0,
            paid_until,
            dues_credit: 0,
            lapse_at,
            karma_from: now + 1,
            gift_karma_period: now,
            gift_karma_used: 0,
            consumed_period: now,
            consumed_in_period: 0,
            identity_commitment: None,
            stake: stake.clone(),
            delegate: None,
            open_request: None,
        };
        book.standing.add(&stake, &book.pool, h);
        lapsing.add(&stake, &book.pool, h);
        st.put(keys::member(soc, &seeded_member(i)), encode(&m));
    }
    let rate = pledge * n;
    let worth = decay(
        decayed_sum(half_karma(pledge), paid_until - (now + 1), h),
        lapse_at - (paid_until - 1),
        h,
    ) * u128::from(n);
    update_roll(st, soc, lapse_at, |r| {
        r.lapse_stake.settle(&book.pool, now, h);
        r.lapse_stake.add(&lapsing, &book.pool, h);
        r.lapse_count += n;
        r.lapse_credit += worth;
    });
    if paid_until > now + 1 {
        update_roll(st, soc, now + 1, |r| r.dues_starting += rate);
        update_roll(st, soc, paid_until, |r| r.dues_ending += rate);
    }
    book.member_count += n;
    book.standing_count += n;
    st.put(keys::book(soc), encode(&book));
    let mut a: Asset = borsh::from_slice(&decode(st, &keys::asset(asset))).expect("asset");
    a.supply += gift * n;
    st.put(keys::asset(asset), encode(&a));
}

/// Changes the roll record of `period` and sets its bit in the index.
fn update_roll<S: Store + StoreMut>(
    st: &mut S,
    soc: SocietyId,
    period: u64,
    f: impl FnOnce(&mut Roll),
) {
    let key = keys::roll(soc, period);
    let mut roll: Roll = st
        .get(&key)
        .map(|v| borsh::from_slice(&v).expect("roll"))
        .unwrap_or_default();
    f(&mut roll);
    st.put(key, encode(&roll));
    let index_key = keys::roll_index(soc, period / 64);
    let bits: u64 = st
        .get(&index_key)
        .map(|v| borsh::from_slice(&v).expect("index"))
        .unwrap_or(0);
    st.put(index_key, encode(&(bits | 1 << (period % 64))));
}

/// SplitMix64: a tiny deterministic generator for workload choices (the same seed gives the
/// same workload).
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`0` when `n` is `0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index into a collection of `n` items.
    pub fn idx(&mut self, n: usize) -> usize {
        usize::try_from(self.below(u64::try_from(n).expect("usize fits u64")))
            .expect("below n fits usize")
    }

    /// `true` with the given percent probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random item, if there is any.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.idx(items.len())])
    }
}
