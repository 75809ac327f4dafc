//! The third block of a period: the votes on what was filed in it, and how turnout and verdicts
//! are drawn.

use super::{Phase, World};
use crate::rng::Draw;
use kassa_types::tx::Body;

impl World<'_> {
    /// The votes on what was filed this period (and on applications).
    pub(super) fn third_block(&mut self, p: u32) {
        let now = self.period_start(p) + 4;
        self.block(now);
        // Votes are cast in the period of filing.
        let filed_now: Vec<usize> = (0..self.tracked.len())
            .rev()
            .take_while(|&t| self.tracked[t].filed == p)
            .collect();
        if filed_now.is_empty() {
            return;
        }
        // Members who did not delegate and might vote directly.
        let direct: Vec<usize> = (1..self.agents.len())
            .filter(|&i| {
                let a = &self.agents[i];
                a.phase == Phase::Member && !a.delegate && a.puppet_of.is_none()
            })
            .collect();
        for t in filed_now.into_iter().rev() {
            self.vote_on(t, &direct);
        }
    }

    /// Turnout: each delegate votes with `delegate_turnout_percent`; of the members who did not
    /// delegate, `direct_turnout_percent` (rounded up) are drawn to vote; the rest are silent. A
    /// voter approves a genuine request for the share the need supports with
    /// `approve_genuine_percent`, one backed by no need with `approve_bogus_percent`, and
    /// otherwise votes no. A sock puppet approves its master's request.
    pub(super) fn vote_on(&mut self, t: usize, direct: &[usize]) {
        let tr = self.tracked[t].clone();
        let v = self.sc.voting.clone();
        let id_key = tr.id.0;
        let mut voters: Vec<usize> = vec![];
        for &d in &self.delegates {
            if self.dice.chance(
                Draw::Turnout,
                u64::try_from(d).expect("fits"),
                id_key,
                v.delegate_turnout_percent,
            ) {
                voters.push(d);
            }
        }
        let k =
            (direct.len() * usize::try_from(v.direct_turnout_percent).expect("fits")).div_ceil(100);
        for j in 0..k {
            let x = self.dice.range(
                Draw::DirectVoter,
                u64::try_from(j).expect("fits"),
                id_key,
                0,
                u64::try_from(direct.len()).expect("fits") - 1,
            );
            voters.push(direct[usize::try_from(x).expect("fits")]);
        }
        voters.sort_unstable();
        voters.dedup();
        let puppet = self.agents[tr.requester]
            .puppet
            .filter(|_| self.strategy(tr.requester).is_some());
        for voter in voters {
            if voter == tr.requester
                || Some(voter) == puppet
                || self.agents[voter].phase != Phase::Member
            {
                continue;
            }
            let key = u64::try_from(voter).expect("fits");
            let (approve, percent) = if tr.supported == 0 {
                (
                    self.dice
                        .chance(Draw::Verdict, key, id_key, v.approve_bogus_percent),
                    100,
                )
            } else if self
                .dice
                .chance(Draw::Verdict, key, id_key, v.approve_genuine_percent)
            {
                let share = (tr.supported * 100 / tr.asked.max(1)).min(100);
                (
                    share > 0,
                    if share > 0 {
                        u8::try_from(share).expect("≤100")
                    } else {
                        100
                    },
                )
            } else {
                (false, 100)
            };
            let _ = self.send(
                voter,
                Body::Vote {
                    request: tr.id,
                    approve,
                    percent,
                },
            );
        }
        if let Some(pp) = puppet {
            let _ = self.send(
                pp,
                Body::Vote {
                    request: tr.id,
                    approve: true,
                    percent: 100,
                },
            );
        }
    }
}
