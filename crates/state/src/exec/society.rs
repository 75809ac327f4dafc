//! A society in use: creating it, loading it for a transaction, and bringing its periods up to
//! date (lapses, benefit ends, installments) lazily when it is next touched.

use super::amendments::amendment_outcome;
use super::membership::pledge_in_range;
use super::standing::dues_karma;
use super::{Ex, R, counters, get, put};
use crate::fixed::{Q64_ONE, mul_div_ceil};
use crate::keys::{self};
use crate::pool::{Pool, Stake};
use crate::records::*;
use crate::store::{Store, StoreMut};
use kassa_types::{Rejection, SocietyId};

/// How many steps one transaction may take to bring a society's periods up to date: a step
/// applies one period that has lapses, benefit ends or installments due, or skips 64 periods
/// that have none. A society left untouched for longer catches up over several `Settle`s; until
/// then member transactions are refused with `SocietyCatchingUp`.
pub const ROLL_STEPS_MAX: u64 = 1024;

/// A society loaded for one transaction: its description, its book and the current period.
pub(super) struct Soc {
    pub(super) id: SocietyId,
    pub(super) meta: Society,
    pub(super) book: Book,
    /// The current period.
    pub(super) now: u64,
}

impl Soc {
    pub(super) fn h(&self) -> u32 {
        self.meta.rules.karma_half_life_periods
    }

    pub(super) fn caught_up(&self) -> R<()> {
        if self.book.rolled == self.now {
            Ok(())
        } else {
            Err(Rejection::SocietyCatchingUp)
        }
    }

    pub(super) fn balance_of(&self, m: &Member) -> u64 {
        self.book
            .pool
            .value(&m.stake.pos, self.now, self.h())
            .balance
    }

    /// What an exit must leave behind of a balance: its pro-rata share of what the society owes
    /// or may soon owe beyond what its common fund already holds, rounded up (in the society's
    /// favour), at most the balance. Counting the common fund keeps a run of exits from holding
    /// back more in total than is owed.
    pub(super) fn hold_back(&self, balance: u64) -> u64 {
        self.hold_back_beside(balance, 0)
    }

    /// [`Soc::hold_back`] leaving out `excluded` of what is owed (a gift to a request pays what
    /// that request is owed, so the request's own need is not held back from it).
    pub(super) fn hold_back_beside(&self, balance: u64, excluded: u128) -> u64 {
        let uncovered = self
            .book
            .owed
            .saturating_sub(excluded)
            .saturating_sub(u128::from(self.book.common));
        if balance == 0 || uncovered == 0 {
            return 0;
        }
        let share = mul_div_ceil(
            u128::from(balance),
            uncovered,
            u128::from(self.book.pool.total),
        )
        .unwrap_or(u128::MAX);
        u64::try_from(share.min(u128::from(balance))).expect("at most the balance")
    }

    /// Whether a passed amendment is waiting to be enacted (members may then exit at once).
    pub(super) fn amendment_waiting(&self, st: &impl Store, now_ms: u64) -> bool {
        let Some(id) = self.book.amendment else {
            return false;
        };
        let a: Amendment = get(st, &keys::amendment(id)).expect("book points at an amendment");
        a.status == AmendmentStatus::Open
            && now_ms >= a.ballot.deadline_ms
            && amendment_outcome(&a.ballot) > 0
    }
}

/// Credits the society's total with the karma of the paid-ahead periods `[from, end)` at the
/// current dues rate, each from its own period (the total is brought to period `end − 1`; the
/// pool has not moved since the last roll, so valuing it then is exact).
fn credit_dues(b: &mut Book, from: u64, end: u64, h: u32) {
    if b.dues_rate == 0 || from >= end {
        return;
    }
    b.standing.settle(&b.pool, end - 1, h);
    b.standing.karma =
        b.standing
            .karma
            .saturating_add(dues_karma(b.dues_rate, from, end, end - 1, h));
}

impl<S: StoreMut> Ex<'_, S> {
    pub(super) fn create_society(&mut self, meta: Society, pledge: u64) -> R<()> {
        self.asset(meta.asset)?;
        pledge_in_range(&meta.rules, pledge)?;
        let mut c = counters(&*self.st);
        let id = SocietyId(c.next_society);
        c.next_society += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let book = Book {
            member_count: 0,
            standing_count: 0,
            pool: Pool::default(),
            bonds: 0,
            common: 0,
            escrow: 0,
            standing: Stake::default(),
            rolled: 0,
            owed: 0,
            benefits_rate: 0,
            dues_rate: 0,
            benefit_index: 0,
            start: PeriodStart {
                period: 0,
                pool: Pool::default(),
                total_karma: 0,
                standing_count: 0,
            },
            drawn_in_period: 0,
            retained_in_period: Q64_ONE,
            queue_head: 0,
            queue_tail: 0,
            amendment: None,
            stats: Stats::default(),
        };
        put(self.st, keys::society(id), &meta);
        put(self.st, keys::book(id), &book);
        self.events.push(Event::SocietyCreated { society: id });
        // The creator is the first member, with no privilege: a society always has someone to
        // vote on its first application.
        let mut soc = self.open(id)?;
        let signer = self.signer;
        let m = self.new_member(&soc, pledge, None);
        self.admit(&mut soc, &signer, m);
        self.events.push(Event::Joined {
            society: id,
            member: signer,
        });
        self.save(&soc);
        Ok(())
    }

    /// Loads a society for this transaction: brings its periods up to date (lapses, benefit
    /// ends, installments) and pays what the current period's budget allows to approved requests.
    pub(super) fn open(&mut self, id: SocietyId) -> R<Soc> {
        let meta: Society = get(&*self.st, &keys::society(id)).ok_or(Rejection::UnknownSociety)?;
        let book: Book = get(&*self.st, &keys::book(id)).expect("every society has a book");
        let now = meta.period_at(self.now_ms);
        let mut soc = Soc {
            id,
            meta,
            book,
            now,
        };
        self.roll(&mut soc);
        if soc.book.rolled == soc.now {
            self.settle_queue(&mut soc);
        }
        Ok(soc)
    }

    pub(super) fn save(&mut self, soc: &Soc) {
        put(self.st, keys::book(soc.id), &soc.book);
    }

    /// Applies each elapsed period in turn, at most [`ROLL_STEPS_MAX`] of them: the members whose
    /// standing ends there leave the totals, benefits whose last installment is past stop, the
    /// period's start is recorded, and the installments due are funded.
    pub(super) fn roll(&mut self, soc: &mut Soc) {
        let h = soc.h();
        let mut steps = 0;
        while soc.book.rolled < soc.now && steps < ROLL_STEPS_MAX {
            steps += 1;
            let mut p = soc.book.rolled + 1;
            if soc.book.benefits_rate == 0 {
                // Nothing falls due between records: jump to the next period that has one (or
                // to now), one index word of 64 periods per step.
                let bits = self.roll_bits(soc.id, p / 64) >> (p % 64);
                if bits == 0 {
                    let next_word = (p / 64 + 1) * 64;
                    if next_word <= soc.now {
                        credit_dues(&mut soc.book, p, next_word, h);
                        soc.book.rolled = next_word - 1;
                        continue;
                    }
                    p = soc.now;
                } else {
                    p = (p + u64::from(bits.trailing_zeros())).min(soc.now);
                }
            }
            // The periods jumped over had no record: the dues rate was the same in each.
            let from = soc.book.rolled + 1;
            credit_dues(&mut soc.book, from, p, h);
            let key = keys::roll(soc.id, p);
            if let Some(r) = get::<Roll>(&*self.st, &key) {
                self.put_roll(key, Roll::default(), false, soc.id, p);
                let b = &mut soc.book;
                b.dues_rate = b.dues_rate + r.dues_starting - r.dues_ending;
                if r.lapse_count > 0 {
                    b.standing.settle(&b.pool, p, h);
                    let mut lapsing = r.lapse_stake;
                    lapsing.settle(&b.pool, p, h);
                    b.standing.sub(&lapsing, &b.pool, h);
                    b.standing.karma = b.standing.karma.saturating_sub(r.lapse_credit);
                    b.standing_count -= r.lapse_count;
                    if b.standing_count == 0 {
                        // No member left: drop the rounding dust of the aggregate.
                        b.standing = Stake::default();
                    }
                }
                b.benefits_rate -= r.benefits_ending;
            }
            credit_dues(&mut soc.book, p, p + 1, h);
            let b = &mut soc.book;
            b.start = PeriodStart {
                period: p,
                pool: b.pool.clone(),
                total_karma: b.standing.value(&b.pool, p, h).0,
                standing_count: b.standing_count,
            };
            b.drawn_in_period = 0;
            b.retained_in_period = Q64_ONE;
            b.rolled = p;
            self.fund_installments(soc, p);
        }
    }

    /// Which of the 64 periods of index word `word` have a [`Roll`] record (bit `p % 64`).
    pub(super) fn roll_bits(&self, society: SocietyId, word: u64) -> u64 {
        get(&*self.st, &keys::roll_index(society, word)).unwrap_or(0)
    }
}
