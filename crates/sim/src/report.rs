//! What a run reports: a row per period and a summary, as text for people and JSON for scripts.
//! Everything here is integers (amounts in base units, shares in basis points), so the same
//! scenario and seed print the same bytes everywhere.

use crate::scenario::Strategy;
use serde::Serialize;
use std::fmt::Write;

/// One period, as it stood after its last block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Row {
    pub period: u32,
    /// Members (lapsed ones included, leaving ones not).
    pub members: u64,
    pub in_standing: u64,
    /// The sum of the gift accounts.
    pub gift_funds: u64,
    pub common_fund: u64,
    /// Help paid this period from the gift funds and the common fund (lump sums and installments).
    pub help_paid: u64,
    /// Help paid this period by voluntary gifts.
    pub gifts: u64,
    /// Help paid per member in good standing, in basis points of the mean pledge.
    pub cost_bps: u64,
    pub filed: u64,
    pub approved: u64,
    /// Lump sums paid in full this period.
    pub paid: u64,
    /// Approved lump sums waiting in the payout queue.
    pub queued: u64,
    /// The longest wait, in periods from approval, of a lump sum paid this period or still queued.
    pub delay: u32,
    /// What the society owes or may soon owe (open requests, unpaid lump sums, installments
    /// not yet due).
    pub owed: u64,
}

/// How one attack strategy fared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttackResult {
    pub strategy: Strategy,
    /// Its number in docs/protocol.md §10.
    pub attack: u32,
    pub attackers: u64,
    /// The attackers' money at the end (what they hold, in wallet and gift account, minus what
    /// they started with), summed, with a second account's included.
    pub net_attacking: i128,
    /// The same members' money in the same world where they behave honestly.
    pub net_honest: i128,
    /// `net_attacking / attackers`: the attack's net gain per attacker — what each ended with
    /// beyond what it put in (positive: the attack took money from the society).
    pub gain_per_attacker: i128,
    /// `(net_attacking − net_honest) / attackers`: what attacking earned each attacker over
    /// behaving honestly in the same world.
    pub over_honest_per_attacker: i128,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub periods: u32,
    pub members_start: u64,
    pub members_end: u64,
    pub members_peak: u64,
    /// Transactions executed (included in a block), and how many were refused, by rejection.
    pub transactions: u64,
    pub refused: Vec<(String, u64)>,
    pub requests_filed: u64,
    pub requests_approved: u64,
    pub help_paid: u128,
    /// Units of approved help (a lump sum, or one installment of a benefit) that were due, and
    /// how many were paid in full on time (a lump sum within one period of approval, an
    /// installment in its own period).
    pub help_units: u64,
    pub help_units_on_time: u64,
    /// The worst period's help per member, in basis points of the mean pledge.
    pub worst_cost_bps: u64,
    pub worst_cost_period: u32,
    /// The first period in which the approved help not yet paid (lump sums and the installments
    /// of running benefits) exceeded the gift funds and common fund.
    pub ruin_period: Option<u32>,
    /// Periods whose state passed the audit of every invariant (all of them, or there is no
    /// report).
    pub invariants_checked: u64,
    pub attacks: Vec<AttackResult>,
}

impl Summary {
    /// Share of approved help paid in full on time, in basis points (10,000 when none was due).
    pub fn on_time_bps(&self) -> u64 {
        (self.help_units_on_time * 10_000)
            .checked_div(self.help_units)
            .unwrap_or(10_000)
    }
}

/// A whole run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub currency: String,
    pub decimals: u8,
    pub rows: Vec<Row>,
    pub summary: Summary,
}

/// `bps` as a percent with one decimal.
pub fn percent(bps: u64) -> String {
    format!("{}.{}%", bps / 100, bps % 100 / 10)
}

/// `bps` of a pledge, in pledges with one decimal.
pub fn pledges(bps: u64) -> String {
    format!("{}.{}", bps / 10_000, bps % 10_000 / 1_000)
}

/// An amount in whole currency units (rounded down), with thousands separated.
pub fn money(units: i128, decimals: u8) -> String {
    let whole = units.unsigned_abs() / 10u128.pow(u32::from(decimals));
    let digits = whole.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if units < 0 { format!("-{out}") } else { out }
}

/// An amount with its decimals and sign (`-12.34`).
pub fn cents(units: i128, decimals: u8) -> String {
    let scale = 10u128.pow(u32::from(decimals));
    let abs = units.unsigned_abs();
    let sign = if units < 0 { "-" } else { "" };
    if decimals == 0 {
        return format!("{sign}{abs}");
    }
    format!(
        "{sign}{}.{:0width$}",
        money(
            i128::try_from(abs / scale * scale).unwrap_or(i128::MAX),
            decimals
        ),
        abs % scale,
        width = usize::from(decimals)
    )
}

impl Report {
    /// The summary in plain words.
    pub fn sentences(&self) -> Vec<String> {
        let s = &self.summary;
        let years = s.periods / 12;
        let span = if s.periods.is_multiple_of(12) && years > 0 {
            format!("{years} simulated years")
        } else {
            format!("{} simulated periods", s.periods)
        };
        let mut out = vec![];
        if s.help_units == 0 {
            out.push(format!("In {span}, no approved help fell due."));
        } else {
            out.push(format!(
                "In {span}, approved help was paid in full on time {} of the time ({} of {} lump sums and installments).",
                percent(s.on_time_bps()),
                s.help_units_on_time,
                s.help_units
            ));
        }
        let worst = if s.worst_cost_bps >= 10_000 {
            format!("{} pledges", pledges(s.worst_cost_bps))
        } else {
            format!("{} of a pledge", percent(s.worst_cost_bps))
        };
        out.push(format!(
            "The worst period cost each member {worst} (period {}).",
            s.worst_cost_period
        ));
        if self.rows.len() >= 24 {
            let mean =
                |rows: &[Row]| rows.iter().map(|r| r.cost_bps).sum::<u64>() / rows.len() as u64;
            let (first, last) = (&self.rows[..12], &self.rows[self.rows.len() - 12..]);
            out.push(format!(
                "Help cost each member {} of a pledge a period on average in the first twelve periods, {} in the last twelve.",
                percent(mean(first)),
                percent(mean(last))
            ));
        }
        out.push(match s.ruin_period {
            None => "Approved help never exceeded what the society's funds held.".into(),
            Some(p) => format!(
                "From period {p} the society owed more approved help than all its funds held (ruin after {p} periods)."
            ),
        });
        out.push(format!(
            "Members: {} at the start, {} at the end (at most {}).",
            s.members_start, s.members_end, s.members_peak
        ));
        for a in &s.attacks {
            let verdict = if a.gain_per_attacker > 0 {
                "GAINED"
            } else {
                "did not gain"
            };
            let who = if a.attackers == 1 {
                "1 attacker".to_string()
            } else {
                format!("{} attackers", a.attackers)
            };
            out.push(format!(
                "Attack {} ({}): {who} {verdict}: net {} {c} each ({} {c} against behaving honestly).",
                a.attack,
                a.strategy.name(),
                cents(a.gain_per_attacker, self.decimals),
                cents(a.over_honest_per_attacker, self.decimals),
                c = self.currency
            ));
        }
        out.push(format!(
            "Every invariant held after each of the {} periods.",
            s.invariants_checked
        ));
        out
    }

    /// The table and summary for people.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let c = &self.currency;
        writeln!(t, "{} (seed {})", self.scenario, self.seed).expect("string");
        writeln!(
            t,
            "{:>6} {:>7} {:>7} {:>13} {:>11} {:>11} {:>8} {:>5} {:>5} {:>5} {:>6} {:>5}",
            "period",
            "members",
            "standing",
            format!("funds {c}"),
            format!("help {c}"),
            format!("gifts {c}"),
            "cost",
            "filed",
            "appr",
            "paid",
            "queued",
            "delay"
        )
        .expect("string");
        for r in &self.rows {
            writeln!(
                t,
                "{:>6} {:>7} {:>7} {:>13} {:>11} {:>11} {:>8} {:>5} {:>5} {:>5} {:>6} {:>5}",
                r.period,
                r.members,
                r.in_standing,
                money(
                    i128::from(r.gift_funds) + i128::from(r.common_fund),
                    self.decimals
                ),
                money(i128::from(r.help_paid), self.decimals),
                money(i128::from(r.gifts), self.decimals),
                percent(r.cost_bps),
                r.filed,
                r.approved,
                r.paid,
                r.queued,
                r.delay
            )
            .expect("string");
        }
        writeln!(t).expect("string");
        writeln!(
            t,
            "cost: help paid per member in good standing, as a share of the mean pledge; delay: periods from approval"
        )
        .expect("string");
        writeln!(t).expect("string");
        for line in self.sentences() {
            writeln!(t, "{line}").expect("string");
        }
        let s = &self.summary;
        writeln!(
            t,
            "{} transactions; {} requests filed, {} approved; help paid {} {c}.",
            s.transactions,
            s.requests_filed,
            s.requests_approved,
            money(
                i128::try_from(s.help_paid).unwrap_or(i128::MAX),
                self.decimals
            )
        )
        .expect("string");
        if !s.refused.is_empty() {
            let list: Vec<String> = s.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(t, "Refused by the rules: {}.", list.join(", ")).expect("string");
        }
        t
    }

    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("a report serializes");
        v["summary"]["on_time_bps"] = self.summary.on_time_bps().into();
        v["summary"]["sentences"] = self.sentences().into();
        serde_json::to_string_pretty(&v).expect("a report serializes")
    }
}
