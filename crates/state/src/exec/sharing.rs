//! Paying approved help: the period's draw budget, the payout queue and installment benefits
//! (docs/protocol.md §5).

use super::accounts::credit;
use super::society::Soc;
use super::{Ex, QUEUE_STEPS_MAX, R, get, put};
use crate::fixed::{Q64_ONE, mul_div, mul_div_ceil};
use crate::keys::{self};
use crate::records::*;
use crate::store::StoreMut;
use kassa_types::rules::BPS;
use kassa_types::{Rejection, RequestId};

impl<S: StoreMut> Ex<'_, S> {
    /// Funds the installments that fall due at the start of period `p`: from the common fund
    /// first, then from the gift funds within the period's draw budget. A shortfall is not
    /// carried over: every running benefit gets the same funded fraction of its installment.
    pub(super) fn fund_installments(&mut self, soc: &mut Soc, p: u64) {
        let due = soc.book.benefits_rate;
        if due == 0 {
            return;
        }
        let from_common = due.min(soc.book.common);
        soc.book.common -= from_common;
        soc.book.stats.paid_by_common += u128::from(from_common);
        let from_pool = if soc.meta.rules.auto_share {
            (due - from_common)
                .min(Self::draw_budget(soc))
                .min(Self::fraction_budget(soc))
        } else {
            0
        };
        if from_pool > 0 {
            Self::draw(soc, from_pool, p);
        }
        let funded = from_common + from_pool;
        let b = &mut soc.book;
        b.escrow += funded;
        b.stats.installments_funded += u128::from(funded);
        b.benefit_index += mul_div(u128::from(funded), Q64_ONE, u128::from(due)).expect("≤ 1.0");
        b.owed -= u128::from(due);
        put(self.st, keys::benefit_index(soc.id, p), &b.benefit_index);
    }

    /// What the current period's draws may still take: `max_draw_bps` of the gift funds at its
    /// start, less what was drawn.
    pub(super) fn draw_budget(soc: &Soc) -> u64 {
        let budget = u128::from(soc.book.start.pool.total)
            * u128::from(soc.meta.rules.max_draw_bps)
            / u128::from(BPS);
        u64::try_from(budget)
            .expect("a share of a u64")
            .saturating_sub(soc.book.drawn_in_period)
    }

    /// Draws `amount` pro rata from every gift account. O(1) in members.
    pub(super) fn draw(soc: &mut Soc, amount: u64, period: u64) {
        let h = soc.h();
        let b = &mut soc.book;
        let total = u128::from(b.pool.total);
        b.retained_in_period =
            mul_div(b.retained_in_period, total - u128::from(amount), total).expect("shrinks");
        b.pool.draw(amount, period, h);
        b.drawn_in_period += amount;
    }

    /// Pays approved lump sums in approval order: from the common fund first, then from the
    /// period's draw budget. O(1) in members: each draw is one update of the pool.
    pub(super) fn settle_queue(&mut self, soc: &mut Soc) {
        for _ in 0..QUEUE_STEPS_MAX {
            if soc.book.queue_head == soc.book.queue_tail {
                break;
            }
            let qkey = keys::queue(soc.id, soc.book.queue_head);
            let rid: RequestId =
                get(&*self.st, &qkey).expect("queue entries exist between head and tail");
            let mut req: Request =
                get(&*self.st, &keys::request(rid)).expect("queued requests exist");
            let from_common = req.need().min(soc.book.common);
            if from_common > 0 {
                soc.book.common -= from_common;
                soc.book.stats.paid_by_common += u128::from(from_common);
                self.pay_request(soc, &mut req, from_common);
                self.events.push(Event::CommonFundPaid {
                    request: rid,
                    amount: from_common,
                });
            }
            let need = req.need();
            let amount = if soc.meta.rules.auto_share {
                need.min(Self::draw_budget(soc))
                    .min(Self::fraction_budget(soc))
            } else {
                0
            };
            if amount > 0 {
                Self::draw(soc, amount, soc.now);
                soc.book.stats.paid_by_shares += u128::from(amount);
                self.pay_request(soc, &mut req, amount);
                self.events.push(Event::SharePaid {
                    request: rid,
                    amount,
                });
            }
            let done = req.need() == 0;
            if done {
                if req.status == RequestStatus::Approved {
                    req.status = RequestStatus::Paid;
                    self.events.push(Event::RequestPaid { request: rid });
                }
                self.st.delete(&qkey);
                soc.book.queue_head += 1;
            }
            put(self.st, keys::request(rid), &req);
            if !done {
                break;
            }
        }
    }

    /// Credits `amount` (already taken from a society fund) to a lump sum's payee.
    pub(super) fn pay_request(&mut self, soc: &mut Soc, req: &mut Request, amount: u64) {
        credit(self.st, &req.payee, soc.meta.asset, amount)
            .expect("a payee's balance is bounded by the supply");
        req.paid += amount;
        soc.book.owed -= u128::from(amount);
    }

    /// The most one more draw may take this period so that no gift account keeps less than
    /// `1 − max_draw_bps` of what it held when the period began.
    pub(super) fn fraction_budget(soc: &Soc) -> u64 {
        let total = u128::from(soc.book.pool.total);
        let retained = soc.book.retained_in_period;
        let floor =
            Q64_ONE * u128::from(BPS - u64::from(soc.meta.rules.max_draw_bps)) / u128::from(BPS);
        if retained == 0 {
            return 0;
        }
        // retained · (G − D) / G ≥ floor  ⇔  D ≤ G − ⌈G · floor / retained⌉
        let keep = mul_div_ceil(total, floor, retained)
            .expect("floor <= retained")
            .min(total);
        u64::try_from(total - keep).expect("at most the pool total")
    }

    /// An approved request for help: the bond comes back, the approved share is set, the
    /// requester's karma is consumed, and the lump sum joins the payout queue or the benefit
    /// starts running.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn approve_help(
        &mut self,
        soc: &mut Soc,
        req: &mut Request,
        rid: RequestId,
        share: u8,
        amount: u64,
        installments: u32,
        bond: u64,
    ) -> R<()> {
        let requester = req.requester;
        credit(self.st, &requester, soc.meta.asset, bond)?;
        self.events.push(Event::BondReturned {
            request: rid,
            amount: bond,
        });
        soc.book.stats.requests_approved += 1;
        req.status = RequestStatus::Approved;
        let unit = u64::try_from(u128::from(amount) * u128::from(share) / 100).expect("≤ amount");
        let approved_total = u128::from(unit) * u128::from(installments.max(1));
        soc.book.owed -= req.asked() - approved_total;
        // Help consumes karma: the approved sum ÷ the benefit ratio (rounded up).
        let ratio = u128::from(req.ballot.benefit_ratio.max(1));
        let consumed = approved_total.div_ceil(ratio) << crate::pool::KARMA_FRACTION_BITS;
        let member = get::<Member>(&*self.st, &keys::member(soc.id, &requester))
            .filter(|m| m.status == MemberStatus::Active);
        if installments == 0 {
            req.approved = unit;
            if unit == 0 {
                req.status = RequestStatus::Paid;
            } else {
                put(self.st, keys::queue(soc.id, soc.book.queue_tail), &rid);
                soc.book.queue_tail += 1;
            }
            if let Some(mut m) = member {
                self.touch(soc, &requester, &mut m, |m, soc| {
                    m.consume(consumed, soc.now);
                    Ok(())
                })?;
            }
            return Ok(());
        }
        if unit == 0 {
            req.status = RequestStatus::Paid;
            return Ok(());
        }
        let first = soc.now + 1;
        let last = soc.now + u64::from(installments);
        let pledge = member.as_ref().map_or(u64::MAX, |m| m.price(soc.now));
        let dues_waived = unit >= pledge;
        req.benefit = Some(Benefit {
            per_period: unit,
            first,
            last,
            index_start: soc.book.benefit_index,
            index_end: None,
            claimed: 0,
            dues_waived,
            paid_until_before: member.as_ref().map_or(0, |m| m.paid_until),
        });
        soc.book.benefits_rate += unit;
        let key = keys::roll(soc.id, last + 1);
        let mut r: Roll = get(&*self.st, &key).unwrap_or_default();
        let was_empty = r.is_empty();
        r.benefits_ending += unit;
        self.put_roll(key, r, was_empty, soc.id, last + 1);
        if let Some(mut m) = member {
            let grace = u64::from(soc.meta.rules.grace_periods);
            self.touch(soc, &requester, &mut m, |m, soc| {
                m.consume(consumed, soc.now);
                if dues_waived {
                    // A benefit of at least the pledge is a dues holiday while it runs; the
                    // waived periods earn no karma.
                    m.paid_until = m.paid_until.max(last + 1);
                    m.karma_from = m.karma_from.max(m.paid_until);
                    m.lapse_at = m.paid_until + grace;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The funded, unpaid installments of a benefit.
    pub(super) fn claimable(&self, soc: &Soc, b: &Benefit) -> u64 {
        let index_end = match b.index_end {
            Some(i) => i,
            None if soc.book.rolled >= b.last => {
                get(&*self.st, &keys::benefit_index(soc.id, b.last)).expect("written while it ran")
            }
            None => soc.book.benefit_index,
        };
        let funded = mul_div(u128::from(b.per_period), index_end - b.index_start, Q64_ONE)
            .expect("at most the benefit");
        u64::try_from(funded)
            .expect("at most the benefit")
            .saturating_sub(b.claimed)
    }

    /// Pays a benefit's payee what is funded and unpaid. Returns the amount.
    pub(super) fn claim_benefit(&mut self, rid: RequestId) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        let Some(mut b) = req.benefit.clone() else {
            return Err(Rejection::NotABenefit);
        };
        let amount = self.claimable(&soc, &b);
        if amount == 0 {
            return Err(Rejection::NothingToClaim);
        }
        self.pay_benefit(&mut soc, &mut req, &mut b, rid, amount)?;
        if b.index_end.is_some() || soc.book.rolled >= b.last {
            req.status = RequestStatus::Paid;
        }
        req.benefit = Some(b);
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        Ok(())
    }

    pub(super) fn pay_benefit(
        &mut self,
        soc: &mut Soc,
        req: &mut Request,
        b: &mut Benefit,
        rid: RequestId,
        amount: u64,
    ) -> R<()> {
        soc.book.escrow = soc
            .book
            .escrow
            .checked_sub(amount)
            .expect("claims never exceed what was funded");
        credit(self.st, &req.payee, soc.meta.asset, amount)?;
        b.claimed += amount;
        self.events.push(Event::BenefitClaimed {
            request: rid,
            amount,
        });
        Ok(())
    }

    pub(super) fn end_benefit(&mut self, rid: RequestId) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        let Some(mut b) = req.benefit.clone() else {
            return Err(Rejection::NotABenefit);
        };
        if req.requester != self.signer {
            return Err(Rejection::NotRequester);
        }
        if b.index_end.is_some() || soc.now >= b.last {
            return Err(Rejection::BenefitEnded);
        }
        // What is not yet due is never drawn.
        let remaining = b.last - soc.now;
        soc.book.benefits_rate -= b.per_period;
        soc.book.owed -= u128::from(b.per_period) * u128::from(remaining);
        let key = keys::roll(soc.id, b.last + 1);
        let mut r: Roll = get(&*self.st, &key).expect("a running benefit has its end");
        r.benefits_ending -= b.per_period;
        self.put_roll(key, r, false, soc.id, b.last + 1);
        b.index_end = Some(soc.book.benefit_index);
        let amount = self.claimable(&soc, &b);
        if amount > 0 {
            self.pay_benefit(&mut soc, &mut req, &mut b, rid, amount)?;
        }
        if b.dues_waived
            && let Some(mut m) = get::<Member>(&*self.st, &keys::member(soc.id, &req.requester))
                .filter(|m| m.status == MemberStatus::Active)
        {
            let grace = u64::from(soc.meta.rules.grace_periods);
            let paid_until = (soc.now + 1).max(b.paid_until_before);
            self.touch(&mut soc, &req.requester.clone(), &mut m, |m, _| {
                m.paid_until = paid_until;
                m.karma_from = paid_until;
                m.lapse_at = paid_until + grace;
                Ok(())
            })?;
        }
        req.status = RequestStatus::Paid;
        req.benefit = Some(b);
        put(self.st, keys::request(rid), &req);
        self.events.push(Event::BenefitEnded { request: rid });
        self.save(&soc);
        Ok(())
    }

    // -- amendments ----------------------------------------------------------------------------
}
