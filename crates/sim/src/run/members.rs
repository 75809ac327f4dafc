//! What members do: join (with a delegate, and a second account for a sock puppet), pay
//! their dues or fall behind, leave, meet misfortunes, file for them, and play their strategy.

use super::{Agent, Need, Phase, World};
use crate::rng::Draw;
use crate::scenario::Strategy;
use kassa_state::records::{Event, RequestStatus};
use kassa_state::view;
use kassa_types::rules::BPS;
use kassa_types::tx::{Body, Memo};
use kassa_types::{Hash, Rejection, SecretKey};

impl World<'_> {
    pub(super) fn new_agent(&mut self, puppet_of: Option<usize>) -> usize {
        let i = self.agents.len();
        let n = u64::try_from(i).expect("fits");
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&n.to_le_bytes());
        seed[8..16].copy_from_slice(b"kassasim");
        let addr = SecretKey::from_seed(seed).address();
        let m = &self.sc.members;
        let steps = (m.pledge_max - m.pledge_min) / m.pledge_step;
        let mut pledge =
            m.pledge_min + self.dice.range(Draw::Pledge, n, 0, 0, steps) * m.pledge_step;
        let f = &self.sc.misfortune;
        let high_risk = self.dice.chance(Draw::Risk, n, 0, f.high_risk_percent);
        // Agents 0 (the clerk) and 1 (the founder) never attack; puppets follow their master.
        let plays = if puppet_of.is_some() || i < 2 {
            None
        } else {
            let r = u32::try_from(self.dice.range(Draw::Strategy, n, 0, 0, 99)).expect("<100");
            let mut acc = 0;
            Strategy::ALL.into_iter().find(|s| {
                acc += self.sc.attackers.percent(*s);
                r < acc
            })
        };
        if plays == Some(Strategy::PledgeRaise) || puppet_of.is_some() {
            pledge = self.rules.min_pledge.max(m.pledge_min);
        }
        self.agents.push(Agent {
            addr,
            nonce: 0,
            plays,
            attacking: plays.is_some() && plays != self.honest,
            puppet_of,
            puppet: None,
            high_risk,
            pledge,
            minted: 0,
            phase: Phase::Gone,
            delegate: false,
            behind_until: 0,
            full: false,
            need: None,
            pretext: false,
            request: None,
            rejoin: None,
        });
        i
    }

    pub(super) fn strategy(&self, who: usize) -> Option<Strategy> {
        let a = &self.agents[who];
        a.plays.filter(|_| a.attacking)
    }

    /// A new member joins (with a puppet, if it plays one).
    pub(super) fn join_new(&mut self) {
        let i = self.new_agent(None);
        self.mint(i, self.wallet());
        self.join(i);
        if self.agents[i].plays == Some(Strategy::SockPuppet) {
            let p = self.new_agent(Some(i));
            self.agents[i].puppet = Some(p);
            self.mint(p, self.wallet());
            self.join(p);
        }
    }

    /// What the simulator gives a member to live on: every pledge of the run twice over, a
    /// full gift account, and a bond for every period.
    pub(super) fn wallet(&self) -> u64 {
        let periods = u64::from(self.sc.periods);
        let pledges = 2 * periods + u64::from(self.rules.gift_cap_pledges) + 10;
        let bps = u64::from(self.rules.bond_bps.max(self.rules.application_bond_bps));
        let bond = self.rules.max_pledge.saturating_mul(bps) / BPS + 1;
        self.rules
            .max_pledge
            .saturating_mul(pledges)
            .saturating_add(bond.saturating_mul(periods + 10))
    }

    pub(super) fn join(&mut self, who: usize) {
        let pledge = self.agents[who].pledge;
        let body = Body::Join {
            society: self.soc,
            pledge,
            identity_commitment: (self.rules.identity == kassa_types::rules::Identity::Commitment)
                .then(|| Hash::of(&[&self.agents[who].addr.0])),
        };
        let Ok(events) = self.send(who, body) else {
            return;
        };
        for e in events {
            match e {
                Event::Joined { .. } => self.admitted(who),
                Event::Applied { application, .. } => {
                    self.agents[who].phase = Phase::Applicant;
                    self.track(application, who, 1, 1, true, 0);
                }
                _ => {}
            }
        }
    }

    /// A new member chooses a delegate, as most members of a large society do.
    pub(super) fn admitted(&mut self, who: usize) {
        self.agents[who].phase = Phase::Member;
        self.agents[who].full = false;
        let n = u64::try_from(who).expect("fits");
        let v = &self.sc.voting;
        if self.agents[who].delegate
            || self.agents[who].puppet_of.is_some()
            || self.delegates.is_empty()
            || !self.dice.chance(Draw::Delegate, n, 0, v.delegating_percent)
        {
            return;
        }
        let k = self
            .dice
            .range(Draw::Delegate, n, 1, 0, self.delegates.len() as u64 - 1);
        let to = self.agents[self.delegates[usize::try_from(k).expect("fits")]].addr;
        let _ = self.send(
            who,
            Body::Delegate {
                society: self.soc,
                to: Some(to),
            },
        );
    }

    /// One member's dues, exit and return.
    pub(super) fn member_turn(&mut self, i: usize, p: u32, now: u64) {
        let n = u64::try_from(i).expect("fits");
        let pu = u64::from(p);
        match self.agents[i].phase.clone() {
            Phase::Applicant => return,
            Phase::Gone => {
                if self.strategy(i) == Some(Strategy::LapseAndBuyBack) {
                    self.misfortune(i, p);
                    if self.agents[i].need.is_some() && self.agents[i].rejoin.is_none() {
                        self.agents[i].rejoin = Some(p);
                    }
                }
                if self.agents[i].rejoin.is_some_and(|r| r <= p) {
                    self.agents[i].rejoin = None;
                    self.join(i);
                }
                return;
            }
            Phase::Leaving { until_ms } => {
                if now >= until_ms && self.send(i, Body::Withdraw { society: self.soc }).is_ok() {
                    self.agents[i].phase = Phase::Gone;
                    if self.strategy(i) == Some(Strategy::RunOnTheFund) {
                        self.agents[i].rejoin = Some(p + 1);
                    }
                }
                return;
            }
            Phase::Member => {}
        }
        let strategy = self.strategy(i);
        // Misfortune strikes (decided here so that dues can react to it).
        self.misfortune(i, p);
        let in_need = self.agents[i].need.is_some();
        // Leaving: by chance (and for cost), or to run from what is owed.
        let b = &self.sc.behaviour;
        let cost_percent = self.last_cost_bps / 100;
        let exit_bps = u64::from(b.exit_bps)
            + if self.agents[i].high_risk {
                0
            } else {
                u64::from(b.exit_bps_per_cost_percent) * cost_percent
            };
        let runs = strategy == Some(Strategy::RunOnTheFund) && {
            let book = self.book();
            book.queue_tail > book.queue_head || book.benefits_rate > 0
        };
        let leaves = i != 1
            && !self.agents[i].delegate
            && self.agents[i].puppet_of.is_none()
            && !in_need
            && (runs || self.dice.chance_bps(Draw::Exit, n, pu, exit_bps));
        if leaves
            && self.agents[i].request.is_none()
            && self.send(i, Body::Leave { society: self.soc }).is_ok()
        {
            if let Some(pp) = self.agents[i].puppet {
                let _ = self.send(pp, Body::Leave { society: self.soc });
            }
            return;
        }
        // Falling behind on dues, by chance.
        if b.lapse_bps > 0
            && self.agents[i].behind_until <= p
            && !in_need
            && self
                .dice
                .chance_bps(Draw::Lapse, n, pu, u64::from(b.lapse_bps))
        {
            let len = self
                .dice
                .range(Draw::LapseLength, n, pu, 1, u64::from(b.lapse_periods_max));
            self.agents[i].behind_until = p + u32::try_from(len).expect("a u32 rule");
        }
        let pays = match strategy {
            Some(Strategy::LapseAndBuyBack) => in_need,
            _ => self.agents[i].behind_until <= p,
        };
        if pays {
            self.pay_dues(i, p);
        }
        if strategy == Some(Strategy::PledgeRaise)
            && in_need
            && self.agents[i].pledge < self.rules.max_pledge
            && self
                .send(
                    i,
                    Body::ChangePledge {
                        society: self.soc,
                        pledge: self.rules.max_pledge,
                    },
                )
                .is_ok()
        {
            self.agents[i].pledge = self.rules.max_pledge;
        }
    }

    /// Pays what is due up to this period (arrears included), or checks in with a full account.
    pub(super) fn pay_dues(&mut self, i: usize, p: u32) {
        let Some(m) = self.member(i) else {
            self.agents[i].phase = Phase::Gone; // expelled
            return;
        };
        let pu = u64::from(p);
        if m.paid_until > pu {
            return;
        }
        let owed: u128 = (m.paid_until..=pu).map(|q| u128::from(m.price(q))).sum();
        let amount =
            u64::try_from(owed.saturating_sub(u128::from(m.dues_credit))).unwrap_or(u64::MAX);
        if self.agents[i].full {
            let checked_in = self
                .send(
                    i,
                    Body::Contribute {
                        society: self.soc,
                        amount: 0,
                    },
                )
                .is_ok_and(|ev| ev.iter().any(|e| matches!(e, Event::DuesPaid { .. })));
            if checked_in {
                return;
            }
            self.agents[i].full = false;
        }
        match self.send(
            i,
            Body::Contribute {
                society: self.soc,
                amount,
            },
        ) {
            Err(Rejection::GiftAccountCapExceeded) => {
                self.agents[i].full = true;
                let _ = self.send(
                    i,
                    Body::Contribute {
                        society: self.soc,
                        amount: 0,
                    },
                );
            }
            Err(Rejection::NotMember) => self.agents[i].phase = Phase::Gone,
            _ => {}
        }
    }

    /// Draws this period's misfortune for member `i`, and moves its need along.
    pub(super) fn misfortune(&mut self, i: usize, p: u32) {
        let n = u64::try_from(i).expect("fits");
        let pu = u64::from(p);
        // A monthly need runs down; a lump need not filed in time is given up.
        match &mut self.agents[i].need {
            Some(Need::Monthly { months, .. }) if p > 0 => {
                *months = months.saturating_sub(1);
                if *months == 0 {
                    self.agents[i].need = None;
                }
            }
            Some(Need::Lump { until, .. }) if *until <= p => self.agents[i].need = None,
            _ => {}
        }
        let a = &self.agents[i];
        // Puppets have no needs; attackers have only pretexts, and none while honest.
        if a.need.is_some() || a.puppet_of.is_some() || (a.plays.is_some() && !a.attacking) {
            return;
        }
        let f = &self.sc.misfortune;
        let scripted = self
            .sc
            .scripted
            .iter()
            .find(|s| s.period == p && usize::try_from(s.member).is_ok_and(|m| m + 1 == i));
        let need = if let Some(s) = scripted {
            if s.lump > 0 {
                Need::Lump {
                    left: s.lump,
                    until: p + f.patience_periods,
                }
            } else {
                Need::Monthly {
                    per: s.monthly,
                    months: s.months,
                }
            }
        } else {
            let factor = if self.agents[i].high_risk {
                u64::from(f.high_risk_factor)
            } else {
                1
            };
            let rate = (u64::from(f.rate_ppm) * factor).min(1_000_000);
            if !self.dice.chance_ppm(Draw::Misfortune, n, pu, rate) {
                return;
            }
            if self.dice.chance(Draw::NeedKind, n, pu, f.lump_percent) {
                Need::Lump {
                    left: self
                        .dice
                        .range(Draw::NeedSize, n, pu, f.lump_min, f.lump_max),
                    until: p + f.patience_periods,
                }
            } else {
                let months = self.dice.range(
                    Draw::NeedLength,
                    n,
                    pu,
                    u64::from(f.months_min),
                    u64::from(f.months_max),
                );
                Need::Monthly {
                    per: self
                        .dice
                        .range(Draw::NeedSize, n, pu, f.monthly_min, f.monthly_max),
                    months: u32::try_from(months).expect("a u32 knob"),
                }
            }
        };
        let a = &mut self.agents[i];
        a.pretext = a.attacking;
        a.need = Some(need);
        // A member who had fallen behind pays up when trouble comes.
        a.behind_until = 0;
    }

    /// Files for the member's need (or, for a sock puppet's master, for no need at all).
    pub(super) fn file(&mut self, i: usize, now: u64) {
        let strategy = self.strategy(i);
        let greedy = strategy == Some(Strategy::DoubleDip);
        // A sock puppet's master files whenever it can.
        let always = strategy == Some(Strategy::SockPuppet);
        let Some(need) = self.agents[i]
            .need
            .clone()
            .or(always.then_some(Need::Lump { left: 0, until: 0 }))
        else {
            return;
        };
        let bogus = always || self.agents[i].pretext;
        if self.agents[i].request.is_some() && !greedy {
            return;
        }
        let Some(v) = view::member(&self.st, self.soc, &self.agents[i].addr, now) else {
            return;
        };
        // The double-dipper tries even while a request is in progress (and is refused).
        if !v.good_standing
            || now < v.waiting_until_ms
            || (v.request_in_progress && !greedy)
            || v.max_benefit == 0
        {
            return;
        }
        let max = v.max_benefit.min(u128::from(self.rules.max_request));
        let (amount, installments, asked) = match need {
            Need::Lump { left, .. } => {
                let want = if greedy || bogus {
                    max
                } else {
                    max.min(u128::from(left))
                };
                let a = u64::try_from(want).expect("at most max_request");
                (a, 0u32, u128::from(a))
            }
            Need::Monthly { per, months } => {
                let k = months.min(self.rules.max_installments).max(1);
                let cap = max / u128::from(k);
                let want = if greedy {
                    cap
                } else {
                    cap.min(u128::from(per))
                };
                let a = u64::try_from(want).expect("at most max_request");
                (a, k, u128::from(a) * u128::from(k))
            }
        };
        if amount == 0 {
            return;
        }
        let supported = if bogus { 0 } else { need.total().min(asked) };
        let Ok(events) = self.send(
            i,
            Body::FileRequest {
                society: self.soc,
                amount,
                evidence_hash: Hash::of(&[b"evidence", &self.agents[i].addr.0]),
                memo: Memo::new("").expect("empty"),
                payee: None,
                installments,
            },
        ) else {
            return;
        };
        for e in events {
            if let Event::RequestFiled { request, .. } = e {
                self.agents[i].request = Some(request);
                self.track(request, i, asked, supported, false, installments);
            }
        }
    }

    /// Karma farming: the most that earns karma, given to someone else's approved lump sum.
    pub(super) fn farm(&mut self, i: usize) {
        let me = self.agents[i].addr;
        let target = self.tracked.iter().rev().take(256).find(|t| {
            t.approved_at.is_some()
                && t.paid_at.is_none()
                && !t.application
                && !t.installments
                && t.requester != i
        });
        let Some(t) = target else {
            return;
        };
        let id = t.id;
        let Some(r) = view::request(&self.st, id) else {
            return;
        };
        if r.payee == me || r.status != RequestStatus::Approved {
            return;
        }
        let amount = self.agents[i].pledge.min(r.need());
        if amount > 0 {
            let _ = self.send(
                i,
                Body::Gift {
                    request: id,
                    amount,
                },
            );
        }
    }
}
