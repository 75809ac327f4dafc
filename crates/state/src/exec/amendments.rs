//! Amendments to a society's rules: propose, vote, enact after the timelock (docs/protocol.md §7).

use super::requests::threshold;
use super::society::Soc;
use super::{Ex, R, counters, get, put};
use crate::keys::{self, BallotId};
use crate::records::*;
use crate::store::StoreMut;
use kassa_types::{AmendmentId, Rejection, SocietyId};

/// Whether an amendment passes (100) or not (0): yes ≥ the threshold of total karma, at least
/// one yes.
pub fn amendment_outcome(b: &Ballot) -> u8 {
    let needed = threshold(b.start.total_karma, b.amendment_threshold_bps);
    if b.yes > 0 && b.yes >= needed { 100 } else { 0 }
}

impl<S: StoreMut> Ex<'_, S> {
    pub(super) fn propose_amendment(&mut self, id: SocietyId, rules: kassa_types::Rules) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        self.standing_member(&soc, &signer)?;
        if rules.period_secs != soc.meta.rules.period_secs {
            return Err(Rejection::AmendmentChangesFixedRule);
        }
        if soc.book.amendment.is_some() {
            return Err(Rejection::AmendmentInProgress);
        }
        let mut c = counters(&*self.st);
        let aid = AmendmentId(c.next_amendment);
        c.next_amendment += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let a = Amendment {
            proposer: signer,
            rules,
            ballot: self.new_ballot(&soc, None),
            status: AmendmentStatus::Open,
        };
        put(self.st, keys::amendment(aid), &a);
        soc.book.amendment = Some(aid);
        self.save(&soc);
        self.events.push(Event::AmendmentProposed {
            society: id,
            amendment: aid,
        });
        Ok(())
    }

    pub(super) fn open_amendment(&mut self, aid: AmendmentId) -> R<(Soc, Amendment)> {
        let a: Amendment =
            get(&*self.st, &keys::amendment(aid)).ok_or(Rejection::UnknownAmendment)?;
        if a.status != AmendmentStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        let soc = self.open(a.ballot.society)?;
        soc.caught_up()?;
        Ok((soc, a))
    }

    pub(super) fn vote_amendment(&mut self, aid: AmendmentId, approve: bool) -> R<()> {
        let (soc, mut a) = self.open_amendment(aid)?;
        let weight = self.cast(
            &soc,
            &mut a.ballot,
            BallotId::Amendment(aid),
            approve,
            100,
            false,
            amendment_outcome,
        )?;
        put(self.st, keys::amendment(aid), &a);
        self.save(&soc);
        self.events.push(Event::AmendmentVoted {
            amendment: aid,
            voter: self.signer,
            approve,
            weight,
        });
        Ok(())
    }

    pub(super) fn enact_amendment(&mut self, aid: AmendmentId) -> R<()> {
        let (mut soc, mut a) = self.open_amendment(aid)?;
        if self.now_ms < a.ballot.deadline_ms {
            return Err(Rejection::VotingStillOpen);
        }
        if amendment_outcome(&a.ballot) > 0 {
            let timelock_ms =
                u64::from(soc.meta.rules.amendment_timelock_periods) * soc.meta.period_ms();
            if self.now_ms < a.ballot.deadline_ms + timelock_ms {
                return Err(Rejection::TimelockNotOver);
            }
            soc.meta.rules = a.rules.clone();
            put(self.st, keys::society(soc.id), &soc.meta);
            a.status = AmendmentStatus::Enacted;
            self.events.push(Event::AmendmentEnacted { amendment: aid });
        } else {
            a.status = AmendmentStatus::Rejected;
            self.events
                .push(Event::AmendmentRejected { amendment: aid });
        }
        soc.book.amendment = None;
        put(self.st, keys::amendment(aid), &a);
        self.save(&soc);
        Ok(())
    }
}
