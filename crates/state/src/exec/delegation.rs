//! Delegation's stakes: a delegate's power is the running sum of their delegators' stakes, kept
//! in step by every touch of a delegator, with lapse buckets so that a delegator who lapses
//! leaves it by time alone, and a dues rate so that paid-ahead periods count as they arrive
//! (docs/protocol.md §4.5).

use super::buckets::{Buckets, Lapses};
use super::society::Soc;
use super::standing::{Stream, dues_karma, last_checkpoint};
use super::{Change, Ex, get, put};
use crate::fixed::decay;
use crate::keys::{self, Track};
use crate::pool::{Pool, Stake};
use crate::records::*;
use crate::store::{Store, StoreMut};
use kassa_types::{Address, SocietyId};

/// The karma delegated to `delegate` now, at period `now` of `pool`: the delegated stake less
/// the delegators whose standing has ended since it last changed.
pub fn delegated_karma_now(
    st: &impl Store,
    society: SocietyId,
    delegate: &Address,
    now: u64,
    pool: &Pool,
    half_life: u32,
) -> u128 {
    let Some(cp) = last_checkpoint(st, society, delegate, Track::Delegated).1 else {
        return 0;
    };
    delegated_value(st, society, delegate, &cp, now, pool, half_life)
}

/// A delegated checkpoint's karma at the start of period `at` (valued against `pool`): its
/// stake, plus the paid-ahead periods of its delegators that arrived since it was written, less
/// the delegators whose standing ended since, by `at`. The buckets of periods that have arrived
/// never change again, so they still hold what the checkpoint counted.
pub(super) fn delegated_value(
    st: &impl Store,
    society: SocietyId,
    delegate: &Address,
    cp: &Checkpoint,
    at: u64,
    pool: &Pool,
    half_life: u32,
) -> u128 {
    let (mut credited, mut lapsed) = (0u128, 0u128);
    walk_delegated(
        st,
        society,
        delegate,
        cp,
        at,
        |from, end, rate| {
            credited = credited.saturating_add(dues_karma(rate, from, end, at, half_life));
        },
        |p, r| {
            let gone = r.lapse_stake.value(pool, at, half_life).0
                + decay(r.lapse_credit, at - p, half_life);
            lapsed = lapsed.saturating_add(gone);
        },
    );
    (cp.stake.value(pool, at, half_life).0 + credited).saturating_sub(lapsed)
}

/// Walks what happened to `delegate`'s delegators after checkpoint `cp`, through period
/// `until`: `credit(from, end, rate)` for each run of periods credited at one dues rate, and
/// `lapse(period, bucket)` for each bucket of delegators whose standing ended. Returns the dues
/// rate after `until`. The index skips 64 empty periods a step; past the checkpoint's last
/// bucket (`lapse_at`) nothing changes and every stream has ended.
fn walk_delegated(
    st: &impl Store,
    society: SocietyId,
    delegate: &Address,
    cp: &Checkpoint,
    until: u64,
    mut credit: impl FnMut(u64, u64, u64),
    mut lapse: impl FnMut(u64, &Roll),
) -> u64 {
    let mut rate = cp.price;
    let mut next = cp.period + 1;
    let mut p = next;
    let last = until.min(cp.lapse_at);
    while p <= last {
        let word: u64 =
            get(st, &keys::delegator_lapse_index(society, delegate, p / 64)).unwrap_or(0);
        let bits = word >> (p % 64);
        if bits == 0 {
            p = (p / 64 + 1) * 64;
            continue;
        }
        p += u64::from(bits.trailing_zeros());
        if p > last {
            break;
        }
        let r: Roll =
            get(st, &keys::delegator_lapse(society, delegate, p)).expect("the index says so");
        if rate > 0 {
            credit(next, p, rate);
        }
        rate = rate + r.dues_starting - r.dues_ending;
        if rate > 0 {
            credit(p, p + 1, rate);
        }
        lapse(p, &r);
        next = p + 1;
        p += 1;
    }
    if rate > 0 && next <= until {
        credit(next, until + 1, rate);
    }
    rate
}

/// A delegator in good standing as their delegate holds them: their stake as the aggregate
/// holds it now (`in_total`, with the paid-ahead periods that arrived) and as last added to
/// their lapse bucket (`in_bucket`), the period their standing ends, and their stream.
#[derive(Clone, Copy)]
pub(super) struct Part<'a> {
    pub(super) in_total: &'a Stake,
    pub(super) in_bucket: &'a Stake,
    pub(super) lapse_at: u64,
    pub(super) stream: Option<Stream>,
}

impl<'a> Part<'a> {
    /// A member just touched: all three agree.
    pub(super) fn of(m: &'a Member) -> Part<'a> {
        Part {
            in_total: &m.stake,
            in_bucket: &m.stake,
            lapse_at: m.lapse_at,
            stream: Stream::of(m),
        }
    }
}

impl<S: StoreMut> Ex<'_, S> {
    /// Replaces `remove` by `add` (each a delegator in good standing) in the stake delegated to
    /// `delegate`. First the aggregate is brought to now: delegators' paid-ahead periods that
    /// arrived are credited, and those whose standing has ended leave (their lapse buckets, which
    /// no longer change). Then each delegator moves between the aggregate, the dues rate and
    /// the buckets, and the result is checkpointed.
    pub(super) fn move_delegated(
        &mut self,
        soc: &Soc,
        delegate: &Address,
        remove: Option<Part>,
        add: Option<Part>,
    ) {
        let (pool, h, now) = (&soc.book.pool, soc.h(), soc.now);
        let key = keys::delegated(soc.id, delegate);
        let mut agg: Stake = get(&*self.st, &key).unwrap_or_default();
        agg.settle(pool, now, h);
        let (n, last) = self.last_checkpoint(soc.id, delegate, Track::Delegated);
        // The last period with a bucket: walks end there.
        let mut horizon = 0;
        let mut rate = 0;
        if let Some(cp) = &last {
            horizon = cp.lapse_at;
            let (mut credited, mut lapsed_credit) = (0u128, 0u128);
            let mut lapsed = Vec::new();
            rate = walk_delegated(
                &*self.st,
                soc.id,
                delegate,
                cp,
                now,
                |from, end, rate| {
                    credited = credited.saturating_add(dues_karma(rate, from, end, now, h));
                },
                |p, r| {
                    lapsed.push(r.lapse_stake.clone());
                    lapsed_credit = lapsed_credit.saturating_add(decay(r.lapse_credit, now - p, h));
                },
            );
            agg.karma = agg.karma.saturating_add(credited);
            for mut l in lapsed {
                l.settle(pool, now, h);
                agg.sub(&l, pool, h);
            }
            agg.karma = agg.karma.saturating_sub(lapsed_credit);
        }
        let mut bk = Buckets::new(Lapses::Delegate(delegate));
        if let Some(r) = remove {
            agg.sub(r.in_total, pool, h);
            self.move_lapsing(soc, &mut bk, r.lapse_at, r.in_bucket, Change::Remove);
            if let Some(s) = r.stream {
                self.move_stream(soc, &mut bk, &mut rate, s, r.lapse_at, Change::Remove);
            }
        }
        if let Some(a) = add {
            agg.add(a.in_total, pool, h);
            self.move_lapsing(soc, &mut bk, a.lapse_at, a.in_bucket, Change::Add);
            if let Some(s) = a.stream {
                self.move_stream(soc, &mut bk, &mut rate, s, a.lapse_at, Change::Add);
            }
            horizon = horizon.max(a.lapse_at);
        }
        self.flush(soc, bk);
        let cp = Checkpoint {
            period: now,
            stake: agg.clone(),
            delegate: None,
            lapse_at: horizon,
            credit_from: 0,
            credit_until: 0,
            price: rate,
        };
        self.write_checkpoint(soc.id, delegate, Track::Delegated, n, last, cp);
        put(self.st, key, &agg);
    }
}
