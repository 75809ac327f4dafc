//! After each period: expulsions, the period's row and the audit of every invariant; after the
//! run: the summary and each strategy's result.

use super::{Agent, Phase, SimError, Tracked, World};
use crate::report::{AttackResult, Row, Summary};
use crate::scenario::Strategy;
use kassa_state::records::MemberStatus;
use kassa_state::{audit, exec, view};
use kassa_types::tx::Body;

impl World<'_> {
    /// Expels members lapsed long enough (anyone may), records the period's row and audits.
    pub(super) fn close_period(&mut self, p: u32) -> Result<(), SimError> {
        let pu = u64::from(p);
        let expellable: Vec<usize> = (1..self.agents.len())
            .filter(|&i| self.agents[i].phase == Phase::Member)
            .filter(|&i| {
                self.member(i).is_some_and(|m| {
                    m.status == MemberStatus::Active
                        && m.lapse_at + u64::from(self.rules.lapse_periods) <= pu
                })
            })
            .collect();
        for i in expellable {
            let addr = self.agents[i].addr;
            if self
                .send(
                    self.clerk,
                    Body::Expel {
                        society: self.soc,
                        member: addr,
                    },
                )
                .is_ok()
            {
                self.agents[i].phase = Phase::Gone;
                self.agents[i].request = None;
            }
        }
        let book = self.book();
        // Installments: one unit of help per running benefit per period, on time if the payee
        // has been paid every installment due so far.
        for t in 0..self.tracked.len() {
            let tr = &self.tracked[t];
            if !tr.installments || tr.approved_at.is_none() || tr.over {
                continue;
            }
            let Some(r) = view::request(&self.st, tr.id) else {
                continue;
            };
            let Some(b) = r.benefit else { continue };
            if b.index_end.is_some() || pu >= b.last {
                self.tracked[t].over = true;
                let who = self.tracked[t].requester;
                if self.agents[who].request == Some(self.tracked[t].id) {
                    self.agents[who].request = None;
                }
            }
            if b.index_end.is_some() || pu < b.first || pu > b.last {
                continue;
            }
            self.units += 1;
            let due = u128::from(b.per_period) * u128::from(pu - b.first + 1);
            if u128::from(b.claimed) >= due {
                self.units_on_time += 1;
            }
        }
        let s = book.stats.clone();
        let prev = std::mem::replace(&mut self.stats_prev, s.clone());
        let help = (s.paid_by_shares + s.paid_by_common + s.installments_funded)
            - (prev.paid_by_shares + prev.paid_by_common + prev.installments_funded);
        let gifts = s.paid_by_gifts - prev.paid_by_gifts;
        let members: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|a| a.phase == Phase::Member)
            .collect();
        let pledges: u128 = members.iter().map(|a| u128::from(a.pledge)).sum();
        let count = u128::try_from(members.len()).expect("fits");
        // Help per member in standing, as basis points of the mean pledge.
        let cost_bps = if book.standing_count == 0 || pledges == 0 {
            0
        } else {
            help * 10_000 * count / (u128::from(book.standing_count) * pledges)
        };
        let cost_bps = u64::try_from(cost_bps).unwrap_or(u64::MAX);
        self.last_cost_bps = cost_bps;
        if cost_bps > self.worst.0 {
            self.worst = (cost_bps, p);
        }
        let paid_now: Vec<&Tracked> = self
            .tracked
            .iter()
            .filter(|t| t.paid_at == Some(p))
            .collect();
        let waiting = self
            .tracked
            .iter()
            .filter(|t| t.approved_at.is_some() && t.paid_at.is_none() && !t.installments);
        let delay = paid_now
            .iter()
            .map(|t| p - t.approved_at.expect("paid after approval"))
            .chain(waiting.map(|t| p - t.approved_at.expect("approved")))
            .max()
            .unwrap_or(0);
        // Ruin: approved help not yet paid (what is owed, less what open requests ask) exceeds
        // everything the society holds.
        let funds = u128::from(book.pool.total) + u128::from(book.common);
        let asked_open: u128 = self
            .tracked
            .iter()
            .filter(|t| !t.decided && !t.application)
            .map(|t| t.asked)
            .sum();
        if self.ruin.is_none() && book.owed.saturating_sub(asked_open) > funds {
            self.ruin = Some(p);
        }
        self.peak_members = self.peak_members.max(book.member_count);
        self.rows.push(Row {
            period: p,
            members: book.member_count,
            in_standing: book.standing_count,
            gift_funds: book.pool.total,
            common_fund: book.common,
            help_paid: u64::try_from(help).unwrap_or(u64::MAX),
            gifts: u64::try_from(gifts).unwrap_or(u64::MAX),
            cost_bps,
            filed: s.requests_filed - prev.requests_filed,
            approved: s.requests_approved - prev.requests_approved,
            paid: u64::try_from(paid_now.len()).expect("fits"),
            queued: book.queue_tail - book.queue_head,
            delay,
            owed: u64::try_from(book.owed).unwrap_or(u64::MAX),
        });
        let snapshot = audit::audit(&self.st, self.audit.as_ref()).map_err(|violation| {
            SimError::Invariant {
                period: p,
                violation,
            }
        })?;
        self.audit = Some(snapshot);
        Ok(())
    }

    pub(super) fn summary(&self) -> Summary {
        // Lump sums: on time if paid in full within one period of approval. Those approved in the
        // last period are not yet due.
        let last = self.sc.periods - 1;
        let mut units = self.units;
        let mut on_time = self.units_on_time;
        for t in &self.tracked {
            let Some(a) = t.approved_at else { continue };
            if t.installments || t.application {
                continue;
            }
            match t.paid_at {
                Some(paid) => {
                    units += 1;
                    if paid <= a + 1 {
                        on_time += 1;
                    }
                }
                None if a + 1 < last => units += 1,
                None => {}
            }
        }
        let approved: u128 = self
            .tracked
            .iter()
            .filter(|t| t.approved_at.is_some() && !t.application)
            .count() as u128;
        Summary {
            periods: self.sc.periods,
            members_start: self.members_start,
            members_end: self.rows.last().map_or(0, |r| r.members),
            members_peak: self.peak_members,
            transactions: self.txs,
            refused: self
                .refused
                .iter()
                .map(|(k, v)| ((*k).to_string(), *v))
                .collect(),
            requests_filed: self.stats_prev.requests_filed,
            requests_approved: u64::try_from(approved).expect("fits"),
            help_paid: self.rows.iter().map(|r| u128::from(r.help_paid)).sum(),
            help_units: units,
            help_units_on_time: on_time,
            worst_cost_bps: self.worst.0,
            worst_cost_period: self.worst.1,
            ruin_period: self.ruin,
            invariants_checked: u64::from(self.sc.periods),
            attacks: vec![],
        }
    }

    /// Each agent's money at the end: what it holds (wallet and gift account) minus what it
    /// was given by the simulator.
    pub(super) fn net(&self, i: usize) -> i128 {
        let a = &self.agents[i];
        let wallet = exec::balance(&self.st, &a.addr, self.asset);
        let end_ms = self.ctx.time_ms;
        let gift = view::member(&self.st, self.soc, &a.addr, end_ms).map_or(0, |v| v.gift_balance);
        i128::from(wallet) + i128::from(gift) - i128::from(a.minted)
    }

    pub(super) fn attack_result(&self, twin: &World<'_>, s: Strategy) -> AttackResult {
        {
            {
                let players: Vec<usize> = (0..self.agents.len().min(twin.agents.len()))
                    .filter(|&i| self.agents[i].plays == Some(s))
                    .collect();
                let with_puppet =
                    |w: &World<'_>, i: usize| w.net(i) + w.agents[i].puppet.map_or(0, |p| w.net(p));
                let attack: i128 = players.iter().map(|&i| with_puppet(self, i)).sum();
                let honest: i128 = players.iter().map(|&i| with_puppet(twin, i)).sum();
                let n = i128::try_from(players.len()).expect("fits");
                AttackResult {
                    strategy: s,
                    attack: s.attack(),
                    attackers: u64::try_from(players.len()).expect("fits"),
                    net_attacking: attack,
                    net_honest: honest,
                    gain_per_attacker: if n == 0 { 0 } else { attack / n },
                    over_honest_per_attacker: if n == 0 { 0 } else { (attack - honest) / n },
                }
            }
        }
    }
}
