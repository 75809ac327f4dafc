//! Requests for help and applications: filing, ballots, votes, gifts and finalizing
//! (docs/protocol.md §4).

use super::accounts::credit;
use super::society::Soc;
use super::standing::{credit_dues_karma, karma_at_period_start, max_benefit};
use super::{Change, Ex, R, counters, get, put};
use crate::fixed::{mul_div, mul_div_ceil};
use crate::keys::{self, BallotId, Track};
use crate::pool::half_karma;
use crate::records::*;
use crate::store::StoreMut;
use kassa_types::rules::BPS;
use kassa_types::{Address, Hash, Rejection, RequestId, SocietyId};

/// `total × bps / 10,000`, rounded up: thresholds never round in a voter's favour.
pub(super) fn threshold(total: u128, bps: u32) -> u128 {
    mul_div_ceil(total, u128::from(bps), u128::from(BPS)).expect("bps <= 10,000")
}

/// The share of a request for help its ballot approves, in whole percent (0: rejected): the
/// largest share `s` at which the yes-votes for `s` or more pass both the net threshold and the
/// quorum, yes-votes for less than `s` counting as no. At most 100 steps, whatever the number of
/// voters.
pub fn request_outcome(b: &Ballot) -> u8 {
    let total = b.start.total_karma;
    let (net, quorum) = (
        threshold(total, b.approval_net_bps),
        threshold(total, b.quorum_bps),
    );
    let mut yes_at: u128 = 0;
    let mut idx = b.yes_by_percent.len();
    for s in (1..=100u8).rev() {
        while idx > 0 && b.yes_by_percent[idx - 1].0 >= s {
            yes_at += b.yes_by_percent[idx - 1].1;
            idx -= 1;
        }
        let no_at = b.no.saturating_add(b.yes.saturating_sub(yes_at));
        if yes_at > 0 && yes_at >= no_at && yes_at - no_at >= net && yes_at >= quorum {
            return s;
        }
    }
    0
}

/// Whether an application passes (100) or not (0): yes from a majority of the members in good
/// standing when it was filed (at least one), and, while the society holds any karma, the same
/// karma test as a request.
pub fn admission_outcome(b: &Ballot) -> u8 {
    let heads =
        b.yes_count >= 1 && u128::from(b.yes_count) * 2 > u128::from(b.start.standing_count);
    let total = b.start.total_karma;
    let karma = total == 0
        || (b.yes > 0
            && b.yes >= b.no
            && b.yes - b.no >= threshold(total, b.approval_net_bps)
            && b.yes >= threshold(total, b.quorum_bps));
    if heads && karma { 100 } else { 0 }
}

/// The outcome of a request or application ballot.
pub(super) fn ballot_outcome(req: &Request) -> u8 {
    match req.kind {
        RequestKind::Admission { .. } => admission_outcome(&req.ballot),
        RequestKind::Help { .. } => request_outcome(&req.ballot),
    }
}

/// Adds (or removes) a vote: its weight on its side and, for a yes, in its percent's bucket; and
/// one head.
pub(super) fn tally(b: &mut Ballot, approve: bool, percent: u8, weight: u128, how: Change) {
    let count = if approve {
        &mut b.yes_count
    } else {
        &mut b.no_count
    };
    *count = match how {
        Change::Add => count.saturating_add(1),
        Change::Remove => count.saturating_sub(1),
    };
    tally_weight(b, approve, percent, weight, how);
}

/// Adds (or removes) weight on a side without changing the head count.
pub(super) fn tally_weight(b: &mut Ballot, approve: bool, percent: u8, weight: u128, how: Change) {
    if !approve {
        b.no = how.apply(b.no, weight);
        return;
    }
    b.yes = how.apply(b.yes, weight);
    let at = b.yes_by_percent.partition_point(|(p, _)| *p < percent);
    if b.yes_by_percent.get(at).is_none_or(|(p, _)| *p != percent) {
        b.yes_by_percent.insert(at, (percent, 0));
    }
    b.yes_by_percent[at].1 = how.apply(b.yes_by_percent[at].1, weight);
    if b.yes_by_percent[at].1 == 0 {
        b.yes_by_percent.remove(at);
    }
}

impl<S: StoreMut> Ex<'_, S> {
    /// A ballot opening now, under the rules in force now.
    pub(super) fn new_ballot(&self, soc: &Soc, excluded: Option<Address>) -> Ballot {
        let rules = &soc.meta.rules;
        let window_ms = rules.voting_window_secs * 1000;
        Ballot {
            society: soc.id,
            approval_net_bps: rules.approval_net_bps,
            quorum_bps: rules.quorum_bps,
            amendment_threshold_bps: rules.amendment_threshold_bps,
            benefit_ratio: rules.benefit_ratio,
            yes_count: 0,
            no_count: 0,
            yes_by_percent: Vec::new(),
            filed_period: soc.now,
            // Weights and thresholds are measured at the start of the period; the head count
            // of an admission counts the members in good standing at filing.
            start: PeriodStart {
                standing_count: soc.book.standing_count,
                ..soc.book.start.clone()
            },
            deadline_ms: self.now_ms + window_ms,
            window_ms,
            extended: false,
            yes: 0,
            no: 0,
            excluded,
        }
    }

    pub(super) fn new_request(
        &mut self,
        soc: &mut Soc,
        payee: Address,
        kind: RequestKind,
    ) -> RequestId {
        let mut c = counters(&*self.st);
        let id = RequestId(c.next_request);
        c.next_request += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let req = Request {
            requester: self.signer,
            payee,
            kind,
            ballot: self.new_ballot(soc, Some(self.signer)),
            status: RequestStatus::Open,
            approved: 0,
            paid: 0,
            gifted: 0,
            benefit: None,
        };
        // The requester cannot vote on their own request, not even through a delegate: their
        // weight is taken out of their delegate's power on this ballot from the start.
        let (own, delegate) = self.weight_at(soc, &self.signer, Track::Own, &req.ballot);
        if let Some(d) = delegate.filter(|_| own > 0) {
            put(
                self.st,
                keys::vote_override(BallotId::Request(id), &d),
                &own,
            );
        }
        put(self.st, keys::request(id), &req);
        put(self.st, keys::society_request(soc.id, id), &self.signer);
        id
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn file_request(
        &mut self,
        id: SocietyId,
        amount: u64,
        installments: u32,
        payee: Option<Address>,
        evidence_hash: Hash,
        memo: kassa_types::tx::Memo,
    ) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.standing_member(&soc, &signer)?;
        let rules = soc.meta.rules.clone();
        if self.now_ms < m.waiting_until_ms {
            return Err(Rejection::InWaitingPeriod);
        }
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        if soc.book.standing_count < u64::from(rules.min_members) {
            return Err(Rejection::TooFewMembers);
        }
        if installments > rules.max_installments {
            return Err(Rejection::TooManyInstallments);
        }
        let asked = u128::from(amount) * u128::from(installments.max(1));
        if asked > u128::from(rules.max_request) {
            return Err(Rejection::ExceedsMaxRequest);
        }
        let payee = payee.unwrap_or(signer);
        if payee != signer {
            self.check_recipient(&payee, soc.meta.asset)?;
        }
        // The maximum benefit counts the smaller of the karma at the start of this period (the
        // checkpoint that weighs the votes) and the karma of the moment.
        let (at_start, _) = karma_at_period_start(
            &*self.st,
            soc.id,
            &signer,
            Track::Own,
            soc.now,
            &soc.book.start.pool,
            soc.h(),
        );
        let pledge = m.price(soc.now);
        let bond = self.lock_bond(&mut soc, pledge, rules.bond_bps)?;
        let filing_bps = u128::from(rules.filing_karma_bps);
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            // Arrived periods' karma counts as of now, as the member's view shows it.
            credit_dues_karma(m, soc.now, soc.h());
            if asked > max_benefit(m, at_start, soc.now, rules.benefit_ratio) {
                return Err(Rejection::ExceedsMaximumBenefit);
            }
            let consumed =
                mul_div(m.stake.karma, filing_bps, u128::from(BPS)).expect("bps <= 10,000");
            m.consume(consumed, soc.now);
            Ok(())
        })?;
        soc.book.owed += asked;
        let rid = self.new_request(
            &mut soc,
            payee,
            RequestKind::Help {
                amount,
                installments,
                bond,
                evidence_hash,
                memo,
            },
        );
        m.open_request = Some(rid);
        soc.book.stats.requests_filed += 1;
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::RequestFiled {
            society: id,
            request: rid,
            amount,
            bond,
        });
        Ok(())
    }

    /// Loads a request and opens its society (which may pay it from the queue), then reloads it.
    pub(super) fn open_request(&mut self, rid: RequestId) -> R<(Soc, Request)> {
        let req: Request = get(&*self.st, &keys::request(rid)).ok_or(Rejection::UnknownRequest)?;
        let soc = self.open(req.ballot.society)?;
        soc.caught_up()?;
        let req = get(&*self.st, &keys::request(rid)).expect("just read");
        Ok((soc, req))
    }

    pub(super) fn vote(&mut self, rid: RequestId, approve: bool, percent: u8) -> R<()> {
        let (soc, mut req) = self.open_request(rid)?;
        if req.status != RequestStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        let (outcome, percent, heads_only): (fn(&Ballot) -> u8, u8, bool) = match req.kind {
            RequestKind::Admission { .. } => (admission_outcome, 100, true),
            RequestKind::Help { .. } => (request_outcome, percent, false),
        };
        let weight = self.cast(
            &soc,
            &mut req.ballot,
            BallotId::Request(rid),
            approve,
            percent,
            heads_only,
            outcome,
        )?;
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        self.events.push(Event::Voted {
            request: rid,
            voter: self.signer,
            approve,
            percent,
            weight,
        });
        Ok(())
    }

    /// The karma of `who`'s `track` at the start of the ballot's filing period.
    pub(super) fn weight_at(
        &self,
        soc: &Soc,
        who: &Address,
        track: Track,
        b: &Ballot,
    ) -> (u128, Option<Address>) {
        karma_at_period_start(
            &*self.st,
            soc.id,
            who,
            track,
            b.filed_period,
            &b.start.pool,
            soc.h(),
        )
    }

    /// Records the signer's vote (new or changed) on a ballot, with delegation and the late-vote
    /// extension. Returns the vote's weight. With `heads_only` (applications) a member without
    /// karma still counts as a head.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cast(
        &mut self,
        soc: &Soc,
        b: &mut Ballot,
        bid: BallotId,
        approve: bool,
        percent: u8,
        heads_only: bool,
        outcome: fn(&Ballot) -> u8,
    ) -> R<u128> {
        let signer = self.signer;
        if self.now_ms >= b.deadline_ms {
            return Err(Rejection::VotingClosed);
        }
        self.standing_member(soc, &signer)?;
        if b.excluded == Some(signer) {
            return Err(Rejection::CannotVoteOnOwnRequest);
        }
        let before = outcome(b);
        let vkey = keys::vote(bid, &signer);
        let weight = match get::<VoteRecord>(&*self.st, &vkey) {
            Some(mut v) => {
                tally(b, v.approve, v.percent, v.weight, Change::Remove);
                tally(b, approve, percent, v.weight, Change::Add);
                v.approve = approve;
                v.percent = percent;
                put(self.st, vkey, &v);
                v.weight
            }
            None => {
                let (own, own_delegate) = self.weight_at(soc, &signer, Track::Own, b);
                let (delegated, _) = self.weight_at(soc, &signer, Track::Delegated, b);
                let okey = keys::vote_override(bid, &signer);
                let overridden: u128 = get(&*self.st, &okey).unwrap_or(0);
                let weight = own + delegated.saturating_sub(overridden);
                if weight == 0 && !heads_only {
                    return Err(Rejection::NoVotingWeight);
                }
                // Voting directly overrides one's delegation on this ballot.
                if let Some(d) = own_delegate.filter(|_| own > 0) {
                    let dkey = keys::vote_override(bid, &d);
                    let prior: u128 = get(&*self.st, &dkey).unwrap_or(0);
                    put(self.st, dkey, &(prior + own));
                    let dvkey = keys::vote(bid, &d);
                    if let Some(mut dv) = get::<VoteRecord>(&*self.st, &dvkey) {
                        let removed = own.min(dv.weight);
                        tally_weight(b, dv.approve, dv.percent, removed, Change::Remove);
                        dv.weight -= removed;
                        put(self.st, dvkey, &dv);
                    }
                }
                tally(b, approve, percent, weight, Change::Add);
                put(
                    self.st,
                    vkey,
                    &VoteRecord {
                        approve,
                        weight,
                        percent,
                    },
                );
                weight
            }
        };
        // Late-vote extension: a vote that changes the outcome (or the approved share) in the
        // last tenth of the window extends it, once, by a tenth.
        let tenth = b.window_ms / 10;
        if !b.extended && outcome(b) != before && self.now_ms >= b.deadline_ms - tenth {
            b.deadline_ms += tenth;
            b.extended = true;
            if let BallotId::Request(request) = bid {
                self.events.push(Event::VotingExtended {
                    request,
                    deadline_ms: b.deadline_ms,
                });
            }
        }
        Ok(weight)
    }

    pub(super) fn gift(&mut self, rid: RequestId, amount: u64) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        if matches!(req.kind, RequestKind::Admission { .. }) {
            return Err(Rejection::NotAHelpRequest);
        }
        if req.benefit.is_some() {
            return Err(Rejection::BenefitTakesNoGifts);
        }
        match req.status {
            RequestStatus::Approved => {}
            RequestStatus::Paid => return Err(Rejection::RequestFullyFunded),
            RequestStatus::Open | RequestStatus::Rejected => {
                return Err(Rejection::RequestNotApproved);
            }
        }
        let signer = self.signer;
        if req.requester == signer {
            return Err(Rejection::CannotGiftToOwnRequest);
        }
        if req.payee == signer {
            return Err(Rejection::CannotGiftToOwnPayment);
        }
        let mut m = self.member(&soc, &signer)?;
        if matches!(m.status, MemberStatus::Applicant { .. }) {
            return Err(Rejection::NotYetAdmitted);
        }
        if amount > req.need() {
            return Err(Rejection::GiftExceedsNeed);
        }
        let balance = soc.balance_of(&m);
        if amount > balance {
            return Err(Rejection::InsufficientGiftBalance);
        }
        if amount > balance - soc.hold_back_beside(balance, u128::from(req.need())) {
            return Err(Rejection::GiftBelowHoldBack);
        }
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            soc.book.pool.take(amount);
            let h = soc.h();
            m.stake.withdraw(&soc.book.pool, amount, soc.now, h);
            // Gift karma: at most one pledge's worth per period.
            if m.gift_karma_period != soc.now {
                m.gift_karma_period = soc.now;
                m.gift_karma_used = 0;
            }
            let karma = half_karma(amount)
                .min(half_karma(m.price(soc.now)).saturating_sub(m.gift_karma_used));
            m.gift_karma_used += karma;
            m.stake.karma = m.stake.karma.saturating_add(karma);
            Ok(())
        })?;
        credit(self.st, &req.payee, soc.meta.asset, amount)?;
        req.gifted += amount;
        soc.book.owed -= u128::from(amount);
        soc.book.stats.paid_by_gifts += u128::from(amount);
        self.events.push(Event::Gifted {
            request: rid,
            from: signer,
            amount,
        });
        if req.need() == 0 {
            req.status = RequestStatus::Paid;
            self.events.push(Event::RequestPaid { request: rid });
        }
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        Ok(())
    }

    pub(super) fn finalize(&mut self, rid: RequestId) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        if req.status != RequestStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        if self.now_ms < req.ballot.deadline_ms {
            return Err(Rejection::VotingStillOpen);
        }
        let share = ballot_outcome(&req);
        let approved = share > 0;
        self.events.push(Event::Finalized {
            request: rid,
            approved,
            percent: share,
        });
        let requester = req.requester;
        match req.kind.clone() {
            RequestKind::Admission { bond } => {
                soc.book.bonds -= bond;
                let m = self
                    .member(&soc, &requester)
                    .expect("applicants stay until decided");
                if approved {
                    credit(self.st, &requester, soc.meta.asset, bond)?;
                    self.events.push(Event::BondReturned {
                        request: rid,
                        amount: bond,
                    });
                    let mut fresh = self.new_member(&soc, m.pledge, m.identity_commitment);
                    fresh.joined_ms = self.now_ms;
                    self.admit(&mut soc, &requester, fresh);
                    self.events.push(Event::Admitted {
                        society: soc.id,
                        member: requester,
                    });
                    req.status = RequestStatus::Approved;
                } else {
                    self.forfeit(&mut soc, rid, bond);
                    self.st.delete(&keys::member(soc.id, &requester));
                    req.status = RequestStatus::Rejected;
                }
            }
            RequestKind::Help {
                amount,
                installments,
                bond,
                ..
            } => {
                soc.book.bonds -= bond;
                let asked = req.asked();
                if approved {
                    self.approve_help(&mut soc, &mut req, rid, share, amount, installments, bond)?;
                } else {
                    soc.book.owed -= asked;
                    soc.book.stats.requests_rejected += 1;
                    self.forfeit(&mut soc, rid, bond);
                    req.status = RequestStatus::Rejected;
                }
            }
        }
        put(self.st, keys::request(rid), &req);
        self.settle_queue(&mut soc);
        self.save(&soc);
        Ok(())
    }
}
