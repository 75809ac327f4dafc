//! Lapse buckets: per period, the members (of a society, or delegating to one member) whose
//! standing ends there with the sum of their stakes, and the paid-ahead runs that start or end
//! there; a bitmap index per 64 periods lets a roll skip empty ones (docs/protocol.md §4.2, §4.4,
//! §4.5).

use super::society::Soc;
use super::{Change, Ex, get, put};
use crate::keys;
use crate::pool::Stake;
use crate::records::*;
use crate::store::StoreMut;
use kassa_types::{Address, SocietyId};
use std::collections::BTreeMap;

/// Whose lapse buckets: the society's (its totals) or a delegate's (their delegated stake).
#[derive(Clone, Copy)]
pub(super) enum Lapses<'a> {
    Society,
    Delegate(&'a Address),
}

impl Lapses<'_> {
    fn bucket(self, society: SocietyId, period: u64) -> Vec<u8> {
        match self {
            Lapses::Society => keys::roll(society, period),
            Lapses::Delegate(d) => keys::delegator_lapse(society, d, period),
        }
    }

    fn index(self, society: SocietyId, word: u64) -> Vec<u8> {
        match self {
            Lapses::Society => keys::roll_index(society, word),
            Lapses::Delegate(d) => keys::delegator_lapse_index(society, d, word),
        }
    }
}

/// The bucket records one change of standing reads and writes (a member's old and new lapse
/// periods, the first and last periods of their paid-ahead runs): each is read and decoded once,
/// changed in place, and written once by [`Ex::flush`].
pub(super) struct Buckets<'a> {
    lapses: Lapses<'a>,
    /// Per period: the record, whether it was empty when read, whether its stake is settled.
    open: BTreeMap<u64, (Roll, bool, bool)>,
}

impl<'a> Buckets<'a> {
    pub(super) fn new(lapses: Lapses<'a>) -> Self {
        Buckets {
            lapses,
            open: BTreeMap::new(),
        }
    }
}

impl<S: StoreMut> Ex<'_, S> {
    /// The bucket record of `period`, read on first use; with `settled`, its stake settled to
    /// now (the pool does not move while buckets are open).
    pub(super) fn bucket<'b>(
        &self,
        soc: &Soc,
        b: &'b mut Buckets,
        period: u64,
        settled: bool,
    ) -> &'b mut Roll {
        let lapses = b.lapses;
        let entry = b.open.entry(period).or_insert_with(|| {
            let r: Roll = get(&*self.st, &lapses.bucket(soc.id, period)).unwrap_or_default();
            let empty = r.is_empty();
            (r, empty, false)
        });
        if settled && !entry.2 {
            entry.0.lapse_stake.settle(&soc.book.pool, soc.now, soc.h());
            entry.2 = true;
        }
        &mut entry.0
    }

    /// Writes the bucket records `b` changed (deleting those left empty).
    pub(super) fn flush(&mut self, soc: &Soc, b: Buckets) {
        for (period, (r, was_empty, _)) in b.open {
            let key = b.lapses.bucket(soc.id, period);
            let index = b.lapses.index(soc.id, period / 64);
            self.put_indexed(key, r, was_empty, index, period);
        }
    }

    pub(super) fn move_lapsing(
        &mut self,
        soc: &Soc,
        bk: &mut Buckets,
        period: u64,
        stake: &Stake,
        how: Change,
    ) {
        let r = self.bucket(soc, bk, period, true);
        match how {
            Change::Add => {
                r.lapse_stake.add(stake, &soc.book.pool, soc.h());
                r.lapse_count += 1;
            }
            Change::Remove => {
                r.lapse_stake.sub(stake, &soc.book.pool, soc.h());
                r.lapse_count -= 1;
            }
        }
    }

    /// Writes (or, when empty, deletes) the society's roll record of `period`.
    pub(super) fn put_roll(
        &mut self,
        key: Vec<u8>,
        r: Roll,
        was_empty: bool,
        society: SocietyId,
        period: u64,
    ) {
        let index = keys::roll_index(society, period / 64);
        self.put_indexed(key, r, was_empty, index, period);
    }

    /// Writes (or, when empty, deletes) a bucket record of `period`, keeping its bit in the
    /// index word `index` (which changes only when the record appears or disappears).
    fn put_indexed(&mut self, key: Vec<u8>, r: Roll, was_empty: bool, index: Vec<u8>, period: u64) {
        let empty = r.is_empty();
        if empty != was_empty {
            let bit = 1u64 << (period % 64);
            let bits: u64 = get(&*self.st, &index).unwrap_or(0);
            let new_bits = if empty { bits & !bit } else { bits | bit };
            if new_bits == 0 {
                self.st.delete(&index);
            } else {
                put(self.st, index, &new_bits);
            }
        }
        if empty {
            self.st.delete(&key);
        } else {
            put(self.st, key, &r);
        }
    }
}
