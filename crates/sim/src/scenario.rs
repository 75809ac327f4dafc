//! What a simulation runs: a society's rules and a synthetic membership, read from TOML (the
//! CLI) or JSON (the web preview). Every field is named in docs/simulator.md; unknown fields are
//! refused, so a misspelt knob is an error, never a silent default. Rates are integers (basis
//! points or percent): the simulator, like the state machine, uses no floats.

use kassa_types::rules::Rules;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A scenario, as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Where the numbers come from (sources cited by presets).
    #[serde(default)]
    pub about: String,
    /// Number of periods to run.
    pub periods: u32,
    /// Display of amounts: the currency's symbol and decimals (amounts are in base units).
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "default_decimals")]
    pub decimals: u8,
    /// Any field of the society's rules; the others take the protocol's defaults for the pledge
    /// range (`min_pledge`, `max_pledge` default to the members' pledge range).
    #[serde(default)]
    pub rules: Map<String, Value>,
    pub members: Members,
    pub misfortune: Misfortune,
    #[serde(default)]
    pub voting: Voting,
    #[serde(default)]
    pub behaviour: Behaviour,
    #[serde(default)]
    pub attackers: Attackers,
    /// Misfortunes at fixed periods, beside (or instead of) the random ones.
    #[serde(default)]
    pub scripted: Vec<Scripted>,
}

fn default_currency() -> String {
    "EUR".into()
}

fn default_decimals() -> u8 {
    2
}

/// Who the members are.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Members {
    /// Members at the start (the first of them founds the society).
    pub initial: u32,
    /// New members joining each period …
    #[serde(default)]
    pub joins_per_period: u32,
    /// … until this period (all periods when absent).
    #[serde(default)]
    pub joins_until_period: Option<u32>,
    /// Nobody joins while the society has this many members (no cap when absent).
    #[serde(default)]
    pub max: Option<u32>,
    /// Each member's pledge is drawn uniformly from this range, in multiples of `pledge_step`.
    pub pledge_min: u64,
    pub pledge_max: u64,
    #[serde(default = "one")]
    pub pledge_step: u64,
}

fn one() -> u64 {
    1
}

/// What goes wrong for members, and how much it costs them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misfortune {
    /// Chance per member per period that a misfortune strikes, in parts per million.
    pub rate_ppm: u32,
    /// Share of members whose rate is `high_risk_factor` times higher.
    #[serde(default)]
    pub high_risk_percent: u32,
    #[serde(default = "one_u32")]
    pub high_risk_factor: u32,
    /// Share of misfortunes that need one lump sum; the others need a monthly amount for a
    /// number of periods (an income lost to sickness).
    pub lump_percent: u32,
    #[serde(default)]
    pub lump_min: u64,
    #[serde(default)]
    pub lump_max: u64,
    #[serde(default)]
    pub monthly_min: u64,
    #[serde(default)]
    pub monthly_max: u64,
    #[serde(default = "one_u32")]
    pub months_min: u32,
    #[serde(default = "one_u32")]
    pub months_max: u32,
    /// A lump-sum need that could not be filed for this many periods is given up.
    #[serde(default = "six")]
    pub patience_periods: u32,
}

fn one_u32() -> u32 {
    1
}

fn six() -> u32 {
    6
}

/// How members vote. Most members delegate (`Delegate`, docs/protocol.md §4.5); delegates vote on most
/// requests, a few members vote directly, the rest are silent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Voting {
    /// Number of delegates (default: one per 20 members at the start, 3 to 50).
    pub delegates: Option<u32>,
    /// Share of the other members who delegate their vote to a delegate.
    pub delegating_percent: u32,
    /// Chance that a delegate votes on a given request.
    pub delegate_turnout_percent: u32,
    /// Share of the members who did not delegate who vote on a given request (rounded up).
    pub direct_turnout_percent: u32,
    /// Chance that a voter approves a genuine request (for the share of it the need supports).
    pub approve_genuine_percent: u32,
    /// Chance that a voter approves a request backed by no need.
    pub approve_bogus_percent: u32,
}

impl Default for Voting {
    fn default() -> Self {
        Voting {
            delegates: None,
            delegating_percent: 80,
            delegate_turnout_percent: 90,
            direct_turnout_percent: 1,
            approve_genuine_percent: 95,
            approve_bogus_percent: 5,
        }
    }
}

/// How honest members come and go.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Chance per member per period of falling behind on dues …
    pub lapse_bps: u32,
    /// … for 1 to this many periods (then the arrears are paid).
    pub lapse_periods_max: u32,
    /// Chance per member per period of leaving.
    pub exit_bps: u32,
    /// Extra chance of leaving per percent of a pledge the last period's help cost each member
    /// (members at high risk do not leave for cost: that is how a cost spiral selects).
    pub exit_bps_per_cost_percent: u32,
}

/// Share of members (in percent) following each attack strategy of docs/protocol.md §10.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Attackers {
    /// 1: pay nothing while healthy; pay the arrears when misfortune strikes and file.
    pub lapse_and_buy_back: u32,
    /// 2: file requests backed by no need and approve them with a second account.
    pub sock_puppet: u32,
    /// 3: gift the most that earns karma every period, to file for more later.
    pub karma_farm: u32,
    /// 4: leave with the refund whenever approved help is waiting to be paid, and come back.
    pub run_on_the_fund: u32,
    /// 5: file again and again for the maximum while a misfortune lasts.
    pub double_dip: u32,
    /// 10: pledge the minimum, and raise the pledge to the maximum when misfortune strikes.
    pub pledge_raise: u32,
}

/// One misfortune at a fixed period.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scripted {
    pub period: u32,
    /// The member (0 is the founder), by order of joining.
    pub member: u32,
    #[serde(default)]
    pub lump: u64,
    #[serde(default)]
    pub monthly: u64,
    #[serde(default)]
    pub months: u32,
}

/// An attack strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    LapseAndBuyBack,
    SockPuppet,
    KarmaFarm,
    RunOnTheFund,
    DoubleDip,
    PledgeRaise,
}

impl Strategy {
    pub const ALL: [Strategy; 6] = [
        Strategy::LapseAndBuyBack,
        Strategy::SockPuppet,
        Strategy::KarmaFarm,
        Strategy::RunOnTheFund,
        Strategy::DoubleDip,
        Strategy::PledgeRaise,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::LapseAndBuyBack => "lapse_and_buy_back",
            Strategy::SockPuppet => "sock_puppet",
            Strategy::KarmaFarm => "karma_farm",
            Strategy::RunOnTheFund => "run_on_the_fund",
            Strategy::DoubleDip => "double_dip",
            Strategy::PledgeRaise => "pledge_raise",
        }
    }

    /// The attack of docs/protocol.md §10 it plays.
    pub fn attack(self) -> u32 {
        match self {
            Strategy::LapseAndBuyBack => 1,
            Strategy::SockPuppet => 2,
            Strategy::KarmaFarm => 3,
            Strategy::RunOnTheFund => 4,
            Strategy::DoubleDip => 5,
            Strategy::PledgeRaise => 10,
        }
    }
}

impl Attackers {
    /// The share of members (percent) following `s`.
    pub fn percent(&self, s: Strategy) -> u32 {
        match s {
            Strategy::LapseAndBuyBack => self.lapse_and_buy_back,
            Strategy::SockPuppet => self.sock_puppet,
            Strategy::KarmaFarm => self.karma_farm,
            Strategy::RunOnTheFund => self.run_on_the_fund,
            Strategy::DoubleDip => self.double_dip,
            Strategy::PledgeRaise => self.pledge_raise,
        }
    }

    pub fn total(&self) -> u32 {
        Strategy::ALL.iter().map(|s| self.percent(*s)).sum()
    }
}

/// Why a scenario cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario: {0}")]
    Parse(String),
    #[error("scenario field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    #[error(
        "{members} members × {periods} periods is more than this simulator allows ({max} member-periods)"
    )]
    TooLarge {
        members: u64,
        periods: u32,
        max: u64,
    },
    #[error("unknown preset `{0}` (known: broodfonds, legal-defence, xianghubao)")]
    UnknownPreset(String),
}

fn invalid(field: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The presets: (name, TOML). Each cites its sources in `about`.
pub const PRESETS: [(&str, &str); 3] = [
    ("broodfonds", include_str!("../presets/broodfonds.toml")),
    (
        "legal-defence",
        include_str!("../presets/legal-defence.toml"),
    ),
    ("xianghubao", include_str!("../presets/xianghubao.toml")),
];

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse(e.message().to_string()))
    }

    pub fn from_json(value: Value) -> Result<Scenario, ScenarioError> {
        serde_json::from_value(value).map_err(|e| ScenarioError::Parse(e.to_string()))
    }

    pub fn preset(name: &str) -> Result<Scenario, ScenarioError> {
        let (_, text) = PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ScenarioError::UnknownPreset(name.into()))?;
        Scenario::from_toml(text)
    }

    /// The scenario of the web preview ("Try these rules"): `members` members with pledges spread
    /// over the rules' pledge range, for `periods` periods; each period 2 in 1,000 of them meet a
    /// misfortune, half needing a lump sum of 10 to 60 mean pledges, half 2 to 4 mean pledges a
    /// period for 1 to 6 periods; default voting and no attackers.
    pub fn preview(
        rules: Map<String, Value>,
        members: u32,
        periods: u32,
        currency: &str,
        decimals: u8,
    ) -> Result<Scenario, ScenarioError> {
        let int = |field: &str| -> Result<u64, ScenarioError> {
            let v = rules
                .get(field)
                .ok_or_else(|| invalid(&format!("rules.{field}"), "missing"))?;
            kassa_types::rules::int::<_, u64>(v.clone())
                .map_err(|_| invalid(&format!("rules.{field}"), "not an integer"))
        };
        let (min, max) = (int("min_pledge")?, int("max_pledge")?);
        if min > max {
            return Err(invalid("rules.max_pledge", "must be at least min_pledge"));
        }
        let mean = min / 2 + max / 2;
        Ok(Scenario {
            name: "Preview of these rules".into(),
            about: String::new(),
            periods,
            currency: currency.chars().take(12).collect(),
            decimals,
            rules,
            members: Members {
                initial: members,
                joins_per_period: 0,
                joins_until_period: None,
                max: None,
                pledge_min: min,
                pledge_max: max,
                pledge_step: ((max - min) / 10).max(1),
            },
            misfortune: Misfortune {
                rate_ppm: 2_000,
                high_risk_percent: 0,
                high_risk_factor: 1,
                lump_percent: 50,
                lump_min: mean.saturating_mul(10),
                lump_max: mean.saturating_mul(60),
                monthly_min: mean.saturating_mul(2),
                monthly_max: mean.saturating_mul(4),
                months_min: 1,
                months_max: 6,
                patience_periods: 6,
            },
            voting: Voting::default(),
            behaviour: Behaviour::default(),
            attackers: Attackers::default(),
            scripted: vec![],
        })
    }

    /// The rules the society is created with: the protocol's defaults for the pledge range,
    /// overridden field by field by `[rules]`; then checked as the chain checks them.
    pub fn rules(&self) -> Result<Rules, ScenarioError> {
        let pledge = |field: &str, default: u64| -> Result<u64, ScenarioError> {
            match self.rules.get(field) {
                None => Ok(default),
                Some(v) => kassa_types::rules::int::<_, u64>(v.clone())
                    .map_err(|_| invalid(&format!("rules.{field}"), "not an integer")),
            }
        };
        let min = pledge("min_pledge", self.members.pledge_min)?;
        let max = pledge("max_pledge", self.members.pledge_max)?;
        let Value::Object(mut all) =
            serde_json::to_value(Rules::defaults(min, max)).expect("rules serialize to an object")
        else {
            unreachable!("rules serialize to an object")
        };
        for (k, v) in &self.rules {
            if !all.contains_key(k) {
                return Err(invalid(&format!("rules.{k}"), "no such rule"));
            }
            all.insert(k.clone(), v.clone());
        }
        let rules: Rules = serde_json::from_value(Value::Object(all))
            .map_err(|e| invalid("rules", e.to_string()))?;
        rules
            .validate()
            .map_err(|e| invalid(&format!("rules.{}", e.field), e.reason))?;
        Ok(rules)
    }

    /// The most members the run can reach (the initial ones, every joiner, one second account
    /// per sock-puppet attacker).
    pub fn max_members(&self) -> u64 {
        let m = &self.members;
        let joining = u64::from(m.joins_per_period)
            * u64::from(
                m.joins_until_period
                    .unwrap_or(self.periods)
                    .min(self.periods),
            );
        let mut n = u64::from(m.initial) + joining;
        if let Some(max) = m.max {
            n = n.min(u64::from(max).max(u64::from(m.initial)));
        }
        n + n * u64::from(self.attackers.sock_puppet) / 100
    }

    /// Checks every knob's range, and the size against `max_member_periods`.
    pub fn validate(&self, max_member_periods: u64) -> Result<Rules, ScenarioError> {
        let rules = self.rules()?;
        let m = &self.members;
        let f = &self.misfortune;
        let v = &self.voting;
        let b = &self.behaviour;
        let check = |ok: bool, field: &str, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(invalid(field, reason))
            }
        };
        check(self.periods >= 1, "periods", "at least 1")?;
        check(self.decimals <= 18, "decimals", "at most 18")?;
        check(
            m.initial >= 1,
            "members.initial",
            "at least 1 (the founder)",
        )?;
        check(m.pledge_step >= 1, "members.pledge_step", "at least 1")?;
        check(
            m.pledge_min <= m.pledge_max,
            "members.pledge_max",
            "at least pledge_min",
        )?;
        check(
            rules.min_pledge <= m.pledge_min && m.pledge_max <= rules.max_pledge,
            "members.pledge_min",
            "the members' pledges must lie within the rules' min_pledge..max_pledge",
        )?;
        check(
            f.rate_ppm <= 1_000_000,
            "misfortune.rate_ppm",
            "at most 1,000,000",
        )?;
        check(
            f.high_risk_percent <= 100,
            "misfortune.high_risk_percent",
            "at most 100",
        )?;
        check(
            (1..=100).contains(&f.high_risk_factor),
            "misfortune.high_risk_factor",
            "1 to 100",
        )?;
        check(
            f.lump_percent <= 100,
            "misfortune.lump_percent",
            "at most 100",
        )?;
        check(
            f.lump_min <= f.lump_max,
            "misfortune.lump_max",
            "at least lump_min",
        )?;
        check(
            f.monthly_min <= f.monthly_max,
            "misfortune.monthly_max",
            "at least monthly_min",
        )?;
        check(
            1 <= f.months_min && f.months_min <= f.months_max,
            "misfortune.months_max",
            "1 ≤ months_min ≤ months_max",
        )?;
        check(
            f.lump_percent == 0 || f.lump_max > 0,
            "misfortune.lump_max",
            "lump sums need a size",
        )?;
        check(
            f.lump_percent == 100 || f.monthly_max > 0,
            "misfortune.monthly_max",
            "monthly needs need a size",
        )?;
        for (field, p) in [
            ("voting.delegating_percent", v.delegating_percent),
            (
                "voting.delegate_turnout_percent",
                v.delegate_turnout_percent,
            ),
            ("voting.direct_turnout_percent", v.direct_turnout_percent),
            ("voting.approve_genuine_percent", v.approve_genuine_percent),
            ("voting.approve_bogus_percent", v.approve_bogus_percent),
        ] {
            check(p <= 100, field, "a percent: at most 100")?;
        }
        check(
            v.delegates.is_none_or(|d| d <= 10_000),
            "voting.delegates",
            "at most 10,000",
        )?;
        check(
            b.lapse_bps <= 10_000,
            "behaviour.lapse_bps",
            "at most 10,000",
        )?;
        check(b.exit_bps <= 10_000, "behaviour.exit_bps", "at most 10,000")?;
        check(
            b.lapse_bps == 0 || b.lapse_periods_max >= 1,
            "behaviour.lapse_periods_max",
            "at least 1 when members lapse",
        )?;
        check(
            self.attackers.total() <= 100,
            "attackers",
            "the shares add up to at most 100 percent",
        )?;
        for s in &self.scripted {
            check(s.period < self.periods, "scripted.period", "within the run")?;
            check(
                (s.lump > 0) != (s.monthly > 0 && s.months > 0),
                "scripted",
                "either a lump or a monthly amount for some months",
            )?;
        }
        let members = self.max_members();
        if members.saturating_mul(u64::from(self.periods)) > max_member_periods {
            return Err(ScenarioError::TooLarge {
                members,
                periods: self.periods,
                max: max_member_periods,
            });
        }
        Ok(rules)
    }
}
