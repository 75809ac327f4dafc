//! Joining, contributing, pledges, delegation, leaving, expulsion and bonds (docs/protocol.md §3, §6).

use super::accounts::{credit, debit};
use super::buckets::{Buckets, Lapses};
use super::delegation::Part;
use super::society::Soc;
use super::standing::{Stream, credit_dues_karma, pay_dues};
use super::{Change, Ex, R, get, put};
use crate::fixed::mul_div_ceil;
use crate::keys;
use crate::pool::Stake;
use crate::records::*;
use crate::store::StoreMut;
use kassa_types::rules::{Admission, BPS, Identity};
use kassa_types::{Address, Hash, Rejection, RequestId, SocietyId};

pub(super) fn pledge_in_range(rules: &kassa_types::Rules, pledge: u64) -> R<()> {
    if (rules.min_pledge..=rules.max_pledge).contains(&pledge) {
        Ok(())
    } else {
        Err(Rejection::PledgeOutOfRange)
    }
}

impl<S: StoreMut> Ex<'_, S> {
    pub(super) fn join(&mut self, id: SocietyId, pledge: u64, commitment: Option<Hash>) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        if self.st.get(&keys::member(id, &self.signer)).is_some() {
            return Err(Rejection::AlreadyMember);
        }
        let rules = soc.meta.rules.clone();
        pledge_in_range(&rules, pledge)?;
        match (rules.identity, commitment) {
            (Identity::Commitment, None) => return Err(Rejection::IdentityCommitmentRequired),
            (Identity::Public, Some(_)) => return Err(Rejection::IdentityCommitmentNotAllowed),
            _ => {}
        }
        let m = self.new_member(&soc, pledge, commitment);
        let signer = self.signer;
        match rules.admission {
            Admission::Open => {
                self.admit(&mut soc, &signer, m);
                self.events.push(Event::Joined {
                    society: id,
                    member: signer,
                });
            }
            Admission::Vote => {
                let bond = self.lock_bond(&mut soc, pledge, rules.application_bond_bps)?;
                let rid = self.new_request(&mut soc, signer, RequestKind::Admission { bond });
                let mut m = m;
                m.status = MemberStatus::Applicant { application: rid };
                self.save_member(&soc, &signer, &m);
                self.events.push(Event::Applied {
                    society: id,
                    applicant: signer,
                    application: rid,
                });
            }
        }
        self.save(&soc);
        Ok(())
    }

    pub(super) fn contribute(&mut self, id: SocietyId, amount: u64) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        let cap = u128::from(m.price(soc.now)) * u128::from(soc.meta.rules.gift_cap_pledges);
        let balance = soc.balance_of(&m);
        if amount > 0 && u128::from(balance) + u128::from(amount) > cap {
            return Err(Rejection::GiftAccountCapExceeded);
        }
        debit(self.st, &signer, soc.meta.asset, amount)?;
        let was_lapsed = m.lapsed(soc.now);
        let waiting_until = self.waiting_until(&soc);
        let paid_before = m.paid_until;
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            let h = soc.h();
            if amount > 0 {
                soc.book.pool.deposit(amount).ok_or(Rejection::Overflow)?;
                m.stake.deposit(&soc.book.pool, amount, soc.now, h);
                pay_dues(m, amount);
            }
            // A full account owes no dues: the member's own contribution (zero included, a
            // check-in) renews it up to the current period.
            let balance = soc.book.pool.value(&m.stake.pos, soc.now, h).balance;
            if u128::from(balance) + u128::from(m.price(soc.now)) > cap {
                m.paid_until = m.paid_until.max(soc.now + 1);
            }
            if m.paid_until != paid_before {
                m.lapse_at = m.paid_until + u64::from(soc.meta.rules.grace_periods);
            }
            if was_lapsed && m.in_good_standing(soc.now) {
                // Reinstated: arrears earn no karma and the waiting period starts again.
                m.karma_from = m.karma_from.max(soc.now);
                m.waiting_until_ms = waiting_until;
            }
            Ok(())
        })?;
        self.save(&soc);
        if amount > 0 {
            self.events.push(Event::Contributed {
                society: id,
                member: signer,
                amount,
            });
        }
        if m.paid_until != paid_before {
            self.events.push(Event::DuesPaid {
                society: id,
                member: signer,
                paid_until: m.paid_until,
            });
        }
        if was_lapsed && m.in_good_standing(soc.now) {
            self.events.push(Event::Reinstated {
                society: id,
                member: signer,
            });
        }
        Ok(())
    }

    pub(super) fn change_pledge(&mut self, id: SocietyId, pledge: u64) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.standing_member(&soc, &signer)?;
        let rules = &soc.meta.rules;
        pledge_in_range(rules, pledge)?;
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        // Periods already paid keep their price: a change needs no period beyond this one paid.
        if pledge == m.price(soc.now + 1) || m.paid_until > soc.now + 1 {
            return Err(Rejection::PledgeChangeNotAllowed);
        }
        let raise = pledge > m.price(soc.now);
        let waiting_until = self.waiting_until(&soc);
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            m.prev_pledge = m.price(soc.now);
            m.pledge = pledge;
            m.pledge_from = soc.now + 1;
            if raise {
                // A higher pledge counts for help only after a new waiting period.
                m.waiting_until_ms = m.waiting_until_ms.max(waiting_until);
            }
            Ok(())
        })?;
        self.save(&soc);
        self.events.push(Event::PledgeChanged {
            society: id,
            member: signer,
            pledge,
            from_period: soc.now + 1,
        });
        Ok(())
    }

    pub(super) fn delegate(&mut self, id: SocietyId, to: Option<Address>) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        if let Some(d) = to {
            if d == signer {
                return Err(Rejection::SelfDelegation);
            }
            self.active_member(&soc, &d)
                .map_err(|_| Rejection::NotMember)?;
        }
        let old_delegate = m.delegate;
        // Settle through touch (with the delegation unchanged), then move the settled stake: a
        // delegate counts only delegators in good standing.
        self.touch(&mut soc, &signer, &mut m, |_, _| Ok(()))?;
        if m.in_good_standing(soc.now) {
            if let Some(old) = old_delegate {
                self.move_delegated(&soc, &old, Some(Part::of(&m)), None);
            }
            if let Some(new) = to {
                self.move_delegated(&soc, &new, None, Some(Part::of(&m)));
            }
        }
        m.delegate = to;
        self.checkpoint_own(&soc, &signer, &m);
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::Delegated {
            society: id,
            member: signer,
            to,
        });
        Ok(())
    }

    pub(super) fn leave(&mut self, id: SocietyId) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let m = self.member(&soc, &signer)?;
        match m.status {
            MemberStatus::Active => {}
            MemberStatus::Applicant { application } => {
                return self.withdraw_application(&mut soc, application);
            }
            MemberStatus::Leaving { .. } => return Err(Rejection::AlreadyLeaving),
        }
        // A member whose own request is still open or being paid stays until it is done:
        // otherwise they could leave and rejoin to hold two.
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        if soc.amendment_waiting(&*self.st, self.now_ms) {
            // Exit before a rule change you did not accept, at once and with a refund.
            return self.exit(&mut soc, signer, m, true);
        }
        let mut m = m;
        // Notice runs a full `notice_periods` from this moment, not to a period boundary, so that
        // leaving cannot dodge requests already in view.
        let until_ms =
            self.now_ms + u64::from(soc.meta.rules.notice_periods) * soc.meta.period_ms();
        self.drop_karma(&mut soc, &signer, &mut m);
        m.status = MemberStatus::Leaving { until_ms };
        soc.book.member_count -= 1;
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::Left {
            society: id,
            member: signer,
            until_ms,
        });
        Ok(())
    }

    /// An applicant withdraws: the bond comes back if nobody has voted yet, else it goes to the
    /// common fund.
    pub(super) fn withdraw_application(&mut self, soc: &mut Soc, rid: RequestId) -> R<()> {
        let signer = self.signer;
        let mut req: Request = get(&*self.st, &keys::request(rid)).expect("applications exist");
        let RequestKind::Admission { bond } = req.kind else {
            unreachable!("an applicant's request is an application")
        };
        soc.book.bonds -= bond;
        let returned = if req.ballot.yes_count + req.ballot.no_count == 0 {
            credit(self.st, &signer, soc.meta.asset, bond)?;
            self.events.push(Event::BondReturned {
                request: rid,
                amount: bond,
            });
            bond
        } else {
            self.forfeit(soc, rid, bond);
            0
        };
        req.status = RequestStatus::Rejected;
        put(self.st, keys::request(rid), &req);
        self.st.delete(&keys::member(soc.id, &signer));
        self.save(soc);
        self.events.push(Event::Withdrawn {
            society: soc.id,
            member: signer,
            refund: returned,
            held_back: 0,
        });
        Ok(())
    }

    /// Takes a bond of `bps` of `pledge` (rounded up) from the signer's account into the
    /// society's locked bonds. Returns the bond.
    pub(super) fn lock_bond(&mut self, soc: &mut Soc, pledge: u64, bps: u32) -> R<u64> {
        let bond = mul_div_ceil(u128::from(pledge), u128::from(bps), u128::from(BPS))
            .and_then(|b| u64::try_from(b).ok())
            .ok_or(Rejection::Overflow)?;
        debit(self.st, &self.signer, soc.meta.asset, bond)?;
        soc.book.bonds = soc
            .book
            .bonds
            .checked_add(bond)
            .ok_or(Rejection::Overflow)?;
        Ok(bond)
    }

    /// A forfeited bond goes to the common fund (never to gift accounts: voting no earns nobody
    /// money).
    pub(super) fn forfeit(&mut self, soc: &mut Soc, rid: RequestId, bond: u64) {
        soc.book.common += bond;
        soc.book.stats.bonds_forfeited += u128::from(bond);
        self.events.push(Event::BondForfeited {
            request: rid,
            amount: bond,
        });
        self.events.push(Event::ToCommonFund {
            society: soc.id,
            amount: bond,
        });
    }

    /// Karma is dropped on leaving: the member leaves the totals and their delegate's aggregate;
    /// the gift account stays and keeps sharing.
    pub(super) fn drop_karma(&mut self, soc: &mut Soc, who: &Address, m: &mut Member) {
        let was_standing = m.in_good_standing(soc.now);
        m.stake.settle(&soc.book.pool, soc.now, soc.h());
        if was_standing {
            let stream = Stream::of(m);
            let mut bk = Buckets::new(Lapses::Society);
            if let Some(s) = stream {
                self.move_society_stream(soc, &mut bk, s, m.lapse_at, Change::Remove);
            }
            let mut in_total = m.clone();
            credit_dues_karma(&mut in_total, soc.now, soc.h());
            self.leave_standing(soc, &mut bk, &in_total.stake, &m.stake, m.lapse_at);
            self.flush(soc, bk);
            if let Some(d) = m.delegate {
                let part = Part {
                    in_total: &in_total.stake,
                    in_bucket: &m.stake,
                    lapse_at: m.lapse_at,
                    stream,
                };
                self.move_delegated(soc, &d, Some(part), None);
            }
        }
        m.delegate = None;
        m.stake.karma = 0;
        self.checkpoint_ended(soc, who, m.stake.clone());
    }

    pub(super) fn withdraw(&mut self, id: SocietyId) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let m = self.member(&soc, &self.signer)?;
        let waiting = soc.amendment_waiting(&*self.st, self.now_ms);
        match m.status {
            MemberStatus::Leaving { until_ms } if self.now_ms >= until_ms || waiting => {}
            MemberStatus::Leaving { .. } => return Err(Rejection::NoticeNotOver),
            MemberStatus::Active => return Err(Rejection::NotLeaving),
            MemberStatus::Applicant { .. } => return Err(Rejection::NotYetAdmitted),
        }
        let refund = soc.meta.rules.exit_refund || waiting;
        self.exit(&mut soc, self.signer, m, refund)
    }

    pub(super) fn expel(&mut self, id: SocietyId, who: Address) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let m = self.member(&soc, &who)?;
        let lapse = u64::from(soc.meta.rules.lapse_periods);
        if !m.lapsed(soc.now) || soc.now < m.lapse_at.saturating_add(lapse) {
            return Err(Rejection::NotExpellable);
        }
        // A member whose own request is still open, being paid or running stays until it is
        // done or ended, as for leaving: otherwise they could be expelled, rejoin and hold two.
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        soc.book.stats.members_expelled += 1;
        self.events.push(Event::Expelled {
            society: id,
            member: who,
        });
        let refund = soc.meta.rules.exit_refund;
        self.exit(&mut soc, who, m, refund)
    }

    /// Removes `who` from the society. Their share of what the society owes or may soon owe stays
    /// behind in the common fund; with `refund` the rest of the gift account is paid out, without
    /// it the rest goes to the common fund too.
    pub(super) fn exit(
        &mut self,
        soc: &mut Soc,
        who: Address,
        mut m: Member,
        refund: bool,
    ) -> R<()> {
        if m.status == MemberStatus::Active {
            self.drop_karma(soc, &who, &mut m);
            soc.book.member_count -= 1;
        } else {
            m.stake.settle(&soc.book.pool, soc.now, soc.h());
        }
        let balance = soc.balance_of(&m);
        let held_back = soc.hold_back(balance);
        let refunded = if refund { balance - held_back } else { 0 };
        soc.book.pool.take(balance);
        let to_common = balance - refunded;
        if to_common > 0 {
            soc.book.common += to_common;
            self.events.push(Event::ToCommonFund {
                society: soc.id,
                amount: to_common,
            });
        }
        if refunded > 0 {
            credit(self.st, &who, soc.meta.asset, refunded)?;
        }
        self.checkpoint_ended(soc, &who, Stake::default());
        self.st.delete(&keys::member(soc.id, &who));
        self.save(soc);
        self.events.push(Event::Withdrawn {
            society: soc.id,
            member: who,
            refund: refunded,
            held_back,
        });
        Ok(())
    }

    // -- requests ------------------------------------------------------------------------------
}
