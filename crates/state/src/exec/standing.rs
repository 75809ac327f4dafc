//! Members' standing and karma: the dues clock, karma checkpoints, and the society's totals of
//! who is in good standing, kept in O(1) per change (docs/protocol.md §3).

use super::buckets::{Buckets, Lapses};
use super::delegation::{Part, delegated_value};
use super::society::Soc;
use super::{Change, Ex, R, get, put};
use crate::fixed::{decay, decayed_sum};
use crate::keys::{self, Track};
use crate::pool::{Pool, Stake, half_karma};
use crate::records::*;
use crate::store::{Store, StoreMut};
use kassa_types::{Address, Hash, Rejection, SocietyId};

/// The karma of `who`'s `track` at the start of `period`: the last checkpoint before that
/// period, valued against the society's pool as it was then (zero if the member's standing had
/// ended by then). Binary search over the member's own checkpoints (Compound's
/// `getPriorVotes`): O(log n) reads, independent of every other member.
pub fn karma_at_period_start(
    st: &impl Store,
    society: SocietyId,
    who: &Address,
    track: Track,
    period: u64,
    pool: &Pool,
    half_life: u32,
) -> (u128, Option<Address>) {
    let n: u64 = get(st, &keys::checkpoint_count(society, who, track)).unwrap_or(0);
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let cp: Checkpoint = get(st, &keys::checkpoint(society, who, track, mid)).expect("counted");
        if cp.period < period {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return (0, None);
    }
    let cp: Checkpoint = get(st, &keys::checkpoint(society, who, track, lo - 1)).expect("counted");
    let karma = match track {
        Track::Own if cp.lapse_at <= period => 0,
        Track::Own => {
            // Paid periods that have arrived (this one included: paid ahead, it arrived at its
            // start) count as if the member had checked in at each.
            let end = cp.credit_until.min(period + 1);
            cp.stake.value(pool, period, half_life).0
                + dues_karma(cp.price, cp.credit_from, end, period, half_life)
        }
        Track::Delegated => delegated_value(st, society, who, &cp, period, pool, half_life),
    };
    (karma, cp.delegate)
}

/// How many checkpoints `who`'s `track` has, and the last one.
pub(super) fn last_checkpoint(
    st: &impl Store,
    society: SocietyId,
    who: &Address,
    track: Track,
) -> (u64, Option<Checkpoint>) {
    let n: u64 = get(st, &keys::checkpoint_count(society, who, track)).unwrap_or(0);
    let last = n
        .checked_sub(1)
        .map(|i| get(st, &keys::checkpoint(society, who, track, i)).expect("counted"));
    (n, last)
}

/// The maximum benefit before the society's cap: the smaller of the karma at the start of period
/// `now` (`at_start`, less what this period's requests consumed) and the member's karma of the
/// moment, in whole units, times the benefit ratio.
pub fn max_benefit(m: &Member, at_start: u128, now: u64, benefit_ratio: u32) -> u128 {
    let karma = at_start
        .saturating_sub(m.consumed_at(now))
        .min(m.stake.karma);
    (karma >> crate::pool::KARMA_FRACTION_BITS) * u128::from(benefit_ratio)
}

/// Credits the contribution karma of paid periods that have arrived (up to `now`), one pledge's
/// worth each, decayed from the period it was earned in. The stake must be settled to `now`.
pub fn credit_dues_karma(m: &mut Member, now: u64, h: u32) {
    let end = m.paid_until.min(now + 1);
    if m.karma_from >= end {
        return;
    }
    let split = m.pledge_from.clamp(m.karma_from, end);
    let credited = dues_karma(m.prev_pledge, m.karma_from, split, now, h)
        .saturating_add(dues_karma(m.pledge, split, end, now, h));
    m.stake.karma = m.stake.karma.saturating_add(credited);
    m.karma_from = end;
}

/// The contribution karma of periods `[from, end)` at one pledge of `price` each, each decayed
/// from its own period to period `now` (at least `end − 1`); zero when the range is empty.
pub(super) fn dues_karma(price: u64, from: u64, end: u64, now: u64, h: u32) -> u128 {
    if from >= end {
        return 0;
    }
    decay(
        decayed_sum(half_karma(price), end - from, h),
        now - (end - 1),
        h,
    )
}

/// A member's paid periods whose karma is credited as they arrive: one pledge of `price` for
/// each period in `[from, until)`. The society's total takes it through its dues rate and the
/// roll records of `from` and `until`; the lapse bucket of the member's `lapse_at` holds its
/// worth, to take it out of the total again when their standing ends.
#[derive(Clone, Copy)]
pub(super) struct Stream {
    from: u64,
    until: u64,
    price: u64,
}

impl Stream {
    /// The stream of a member in good standing, as of their last touch (after their arrived
    /// periods were credited), if they paid ahead. A pledge changes only while no period beyond
    /// the current one is paid, so the whole stream has one price.
    pub(super) fn of(m: &Member) -> Option<Stream> {
        (m.paid_until > m.karma_from).then(|| Stream {
            from: m.karma_from,
            until: m.paid_until,
            price: m.price(m.karma_from),
        })
    }

    /// The karma of the whole stream at period `at` (not before its last period).
    pub(super) fn worth_at(self, at: u64, h: u32) -> u128 {
        dues_karma(self.price, self.from, self.until, at, h)
    }
}

/// Pays `amount` toward the dues clock: whole periods at their price advance `paid_until`, the
/// rest waits in `dues_credit` for the next payment.
pub(super) fn pay_dues(m: &mut Member, amount: u64) {
    let mut credit = u128::from(m.dues_credit) + u128::from(amount);
    if m.paid_until < m.pledge_from {
        let k = (credit / u128::from(m.prev_pledge)).min(u128::from(m.pledge_from - m.paid_until));
        m.paid_until += u64::try_from(k).expect("bounded by a u64 difference");
        credit -= k * u128::from(m.prev_pledge);
    }
    if m.paid_until >= m.pledge_from {
        let k = credit / u128::from(m.pledge);
        m.paid_until = m
            .paid_until
            .saturating_add(u64::try_from(k).unwrap_or(u64::MAX));
        credit -= k * u128::from(m.pledge);
    }
    m.dues_credit = u64::try_from(credit).expect("less than one pledge");
}

impl<S: StoreMut> Ex<'_, S> {
    pub(super) fn member(&self, soc: &Soc, who: &Address) -> R<Member> {
        get(&*self.st, &keys::member(soc.id, who)).ok_or(Rejection::NotMember)
    }

    /// An admitted member who has not given notice (lapsed or not).
    pub(super) fn active_member(&self, soc: &Soc, who: &Address) -> R<Member> {
        let m = self.member(soc, who)?;
        match m.status {
            MemberStatus::Active => Ok(m),
            MemberStatus::Applicant { .. } => Err(Rejection::NotYetAdmitted),
            MemberStatus::Leaving { .. } => Err(Rejection::MemberLeaving),
        }
    }

    /// An admitted member in good standing.
    pub(super) fn standing_member(&self, soc: &Soc, who: &Address) -> R<Member> {
        let m = self.active_member(soc, who)?;
        if m.in_good_standing(soc.now) {
            Ok(m)
        } else {
            Err(Rejection::NotInGoodStanding)
        }
    }

    pub(super) fn save_member(&mut self, soc: &Soc, who: &Address, m: &Member) {
        put(self.st, keys::member(soc.id, who), m);
    }

    /// Whether `who`'s latest request still blocks another.
    pub(super) fn request_in_progress(&self, soc: &Soc, m: &Member) -> bool {
        m.open_request.is_some_and(|rid| {
            get::<Request>(&*self.st, &keys::request(rid)).is_some_and(|r| r.in_progress(soc.now))
        })
    }

    /// A new member record joining now with `pledge`: nothing paid yet (the current period is
    /// due), the waiting period starting now.
    pub(super) fn new_member(&self, soc: &Soc, pledge: u64, commitment: Option<Hash>) -> Member {
        let rules = &soc.meta.rules;
        Member {
            status: MemberStatus::Active,
            joined_ms: self.now_ms,
            waiting_until_ms: self.waiting_until(soc),
            pledge,
            prev_pledge: pledge,
            pledge_from: 0,
            paid_until: soc.now,
            dues_credit: 0,
            lapse_at: soc.now + u64::from(rules.grace_periods),
            karma_from: soc.now,
            gift_karma_period: soc.now,
            gift_karma_used: 0,
            consumed_period: soc.now,
            consumed_in_period: 0,
            identity_commitment: commitment,
            stake: Stake {
                karma: 0,
                pos: soc.book.pool.empty_position(soc.now, soc.h()),
            },
            delegate: None,
            open_request: None,
        }
    }

    /// The end of a waiting period starting now.
    pub(super) fn waiting_until(&self, soc: &Soc) -> u64 {
        self.now_ms
            .saturating_add(u64::from(soc.meta.rules.waiting_periods) * soc.meta.period_ms())
    }

    /// Makes `m` an active member in good standing of `soc`.
    pub(super) fn admit(&mut self, soc: &mut Soc, who: &Address, mut m: Member) {
        m.status = MemberStatus::Active;
        soc.book.member_count += 1;
        let mut b = Buckets::new(Lapses::Society);
        self.enter_standing(soc, &mut b, &m);
        self.flush(soc, b);
        self.checkpoint_own(soc, who, &m);
        self.save_member(soc, who, &m);
    }

    /// Adds a member in good standing (stake settled to now) to the society's totals and to the
    /// bucket of the period their standing ends.
    pub(super) fn enter_standing(&mut self, soc: &mut Soc, bk: &mut Buckets, m: &Member) {
        let h = soc.h();
        let b = &mut soc.book;
        b.standing.settle(&b.pool, soc.now, h);
        b.standing.add(&m.stake, &b.pool, h);
        b.standing_count += 1;
        self.move_lapsing(soc, bk, m.lapse_at, &m.stake, Change::Add);
    }

    /// Removes a member in good standing from the society's totals (`in_total`: their stake
    /// settled to now with the arrived periods credited, as the total holds it) and from their
    /// lapse bucket (`in_bucket`: the stake as last added there).
    pub(super) fn leave_standing(
        &mut self,
        soc: &mut Soc,
        bk: &mut Buckets,
        in_total: &Stake,
        in_bucket: &Stake,
        lapse_at: u64,
    ) {
        let h = soc.h();
        let b = &mut soc.book;
        b.standing.settle(&b.pool, soc.now, h);
        b.standing.sub(in_total, &b.pool, h);
        b.standing_count -= 1;
        if b.standing_count == 0 {
            // No member left: drop the rounding dust of the aggregate.
            b.standing = Stake::default();
        }
        self.move_lapsing(soc, bk, lapse_at, in_bucket, Change::Remove);
    }

    /// A member in good standing changed (`in_total` and `in_bucket` as for
    /// [`Ex::leave_standing`], with standing until `old_lapse`): the totals and the lapse buckets
    /// take the new stake instead. One update of the aggregate, and of the bucket when the lapse
    /// period did not move.
    pub(super) fn replace_standing(
        &mut self,
        soc: &mut Soc,
        bk: &mut Buckets,
        in_total: &Stake,
        in_bucket: &Stake,
        old_lapse: u64,
        new: &Member,
    ) {
        let h = soc.h();
        let b = &mut soc.book;
        b.standing.settle(&b.pool, soc.now, h);
        b.standing.replace(in_total, &new.stake, &b.pool, h);
        if old_lapse != new.lapse_at {
            self.move_lapsing(soc, bk, old_lapse, in_bucket, Change::Remove);
            self.move_lapsing(soc, bk, new.lapse_at, &new.stake, Change::Add);
            return;
        }
        let r = self.bucket(soc, bk, old_lapse, true);
        r.lapse_stake
            .replace(in_bucket, &new.stake, &soc.book.pool, h);
    }

    /// Changes a member: `f` sees them with their stake settled to now (and, if they have lapsed,
    /// their karma zeroed) and may change stake, dues and pledge. Contribution karma of arrived
    /// paid periods is credited; the society's totals, the lapse buckets, the delegate's
    /// aggregate and both karma histories are kept in step.
    pub(super) fn touch(
        &mut self,
        soc: &mut Soc,
        who: &Address,
        m: &mut Member,
        f: impl FnOnce(&mut Member, &mut Soc) -> R<()>,
    ) -> R<()> {
        let h = soc.h();
        let was_standing = m.in_good_standing(soc.now);
        let old_lapse = m.lapse_at;
        let old_stream = Stream::of(m).filter(|_| was_standing);
        m.stake.settle(&soc.book.pool, soc.now, h);
        // As last added to the lapse buckets and the delegate's stake.
        let old = m.stake.clone();
        if was_standing {
            // The society's total already holds the periods that arrived.
            credit_dues_karma(m, soc.now, h);
        } else {
            m.stake.karma = 0;
        }
        let old_in_total = m.stake.clone();
        f(m, soc)?;
        let standing = m.in_good_standing(soc.now);
        if standing {
            credit_dues_karma(m, soc.now, h);
        } else {
            m.stake.karma = 0;
        }
        let mut bk = Buckets::new(Lapses::Society);
        if let Some(s) = old_stream {
            self.move_society_stream(soc, &mut bk, s, old_lapse, Change::Remove);
        }
        match (was_standing, standing) {
            (true, true) => self.replace_standing(soc, &mut bk, &old_in_total, &old, old_lapse, m),
            (true, false) => self.leave_standing(soc, &mut bk, &old_in_total, &old, old_lapse),
            (false, true) => self.enter_standing(soc, &mut bk, m),
            (false, false) => {}
        }
        if let Some(s) = Stream::of(m).filter(|_| standing) {
            self.move_society_stream(soc, &mut bk, s, m.lapse_at, Change::Add);
        }
        self.flush(soc, bk);
        if let Some(d) = m.delegate
            && (was_standing || standing)
        {
            let remove = was_standing.then_some(Part {
                in_total: &old_in_total,
                in_bucket: &old,
                lapse_at: old_lapse,
                stream: old_stream,
            });
            let add = standing.then(|| Part::of(m));
            self.move_delegated(soc, &d, remove, add);
        }
        self.checkpoint_own(soc, who, m);
        self.save_member(soc, who, m);
        Ok(())
    }

    /// Adds a member's stream to a dues rate (the society's, or their delegate's) from its first
    /// period, or takes it out (from now on, if it has started), with its worth in the bucket of
    /// `lapse_at`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn move_stream(
        &mut self,
        soc: &Soc,
        bk: &mut Buckets,
        rate: &mut u64,
        s: Stream,
        lapse_at: u64,
        how: Change,
    ) {
        let (now, h) = (soc.now, soc.h());
        let price = u128::from(s.price);
        let apply = |v: u64| u64::try_from(how.apply(u128::from(v), price)).unwrap_or(u64::MAX);
        if s.from <= now {
            // Started: running (or ended, and out of the rate already).
            if s.until > now {
                *rate = apply(*rate);
                let r = self.bucket(soc, bk, s.until, false);
                r.dues_ending = apply(r.dues_ending);
            }
        } else {
            let r = self.bucket(soc, bk, s.from, false);
            r.dues_starting = apply(r.dues_starting);
            let r = self.bucket(soc, bk, s.until, false);
            r.dues_ending = apply(r.dues_ending);
        }
        let worth = s.worth_at(lapse_at, h);
        let r = self.bucket(soc, bk, lapse_at, false);
        r.lapse_credit = how.apply(r.lapse_credit, worth);
    }

    /// The society's side of [`Ex::move_stream`].
    pub(super) fn move_society_stream(
        &mut self,
        soc: &mut Soc,
        bk: &mut Buckets,
        s: Stream,
        lapse_at: u64,
        how: Change,
    ) {
        let mut rate = soc.book.dues_rate;
        self.move_stream(soc, bk, &mut rate, s, lapse_at, how);
        soc.book.dues_rate = rate;
    }

    /// Records `m` as `who`'s own karma at the end of the current period (overwriting an earlier
    /// record of the same period: only the period's last state matters), with the paid periods
    /// whose karma is still to be credited as they arrive.
    pub(super) fn checkpoint_own(&mut self, soc: &Soc, who: &Address, m: &Member) {
        // A pledge changes only while no period beyond the current one is paid, so every
        // period still to be credited has the price of the first.
        let credit = (
            m.karma_from,
            m.paid_until.max(m.karma_from),
            m.price(m.karma_from),
        );
        self.write_own(soc, who, m.stake.clone(), m.delegate, m.lapse_at, credit);
    }

    /// Records that `who`'s own karma counts for nothing from now on (they left, or were
    /// expelled), keeping `stake` for the record.
    pub(super) fn checkpoint_ended(&mut self, soc: &Soc, who: &Address, stake: Stake) {
        self.write_own(soc, who, stake, None, 0, (0, 0, 0));
    }

    fn write_own(
        &mut self,
        soc: &Soc,
        who: &Address,
        stake: Stake,
        delegate: Option<Address>,
        lapse_at: u64,
        (credit_from, credit_until, price): (u64, u64, u64),
    ) {
        let (n, last) = self.last_checkpoint(soc.id, who, Track::Own);
        let cp = Checkpoint {
            period: soc.now,
            stake,
            delegate,
            lapse_at,
            credit_from,
            credit_until,
            price,
        };
        self.write_checkpoint(soc.id, who, Track::Own, n, last, cp);
    }

    /// How many checkpoints `who`'s `track` has, and the last one.
    pub(super) fn last_checkpoint(
        &self,
        society: SocietyId,
        who: &Address,
        track: Track,
    ) -> (u64, Option<Checkpoint>) {
        last_checkpoint(&*self.st, society, who, track)
    }

    /// Writes `cp` after the `n` checkpoints ending with `last`, or over `last` if it is of the
    /// same period.
    pub(super) fn write_checkpoint(
        &mut self,
        society: SocietyId,
        who: &Address,
        track: Track,
        n: u64,
        last: Option<Checkpoint>,
        cp: Checkpoint,
    ) {
        if last.is_some_and(|l| l.period == cp.period) {
            put(self.st, keys::checkpoint(society, who, track, n - 1), &cp);
            return;
        }
        put(self.st, keys::checkpoint(society, who, track, n), &cp);
        put(
            self.st,
            keys::checkpoint_count(society, who, track),
            &(n + 1),
        );
    }

    // -- membership ----------------------------------------------------------------------------
}
