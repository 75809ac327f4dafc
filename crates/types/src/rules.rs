//! A society's rules: every per-society parameter of docs/protocol.md §3–§7, fixed at creation and
//! changeable only by amendment (§7). Ratios are basis points (1/10,000) so that no float is ever
//! needed; durations are block-time seconds or whole periods.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize};

/// One basis point is 1/10,000.
pub const BPS: u64 = 10_000;
/// Longest allowed period: ten years of seconds.
pub const PERIOD_SECS_MAX: u64 = 10 * 366 * 24 * 3600;
/// Longest allowed karma half-life, in periods.
pub const HALF_LIFE_PERIODS_MAX: u32 = 1200;
/// Upper bound for small counts of periods in the rules (waiting, grace, notice, timelock).
pub const PERIODS_RULE_MAX: u32 = 1200;
/// The shortest voting window any society may have, in seconds (and at least 1/30 of a period).
pub const VOTING_WINDOW_SECS_MIN: u64 = 60;
/// The most installments a benefit may ever be paid in (ten years of monthly periods).
pub const INSTALLMENTS_MAX: u32 = 120;

/// How applicants become members.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Admission {
    /// Anyone who joins is a member at once.
    Open,
    /// An applicant becomes a member when the members approve, as they approve a request
    /// (net approval and quorum; a minority can veto).
    Vote,
}

/// What a member discloses about who they are.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// The account is all there is.
    Public,
    /// Joining requires a salted hash of a real identity, revealed off-chain to voters only when
    /// the member files a request.
    Commitment,
}

/// A society's rules. Field order is wire format. The same names are its one JSON and TOML shape
/// (every field required, unknown fields refused; integers read as numbers or decimal strings,
/// and the amounts — pledges and the largest request — written as decimal strings, since
/// JavaScript cannot hold every `u64` as a number).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Length of a contribution period, in seconds of block time (>= 1).
    #[serde(deserialize_with = "int")]
    pub period_secs: u64,
    /// Smallest monthly pledge a member may choose, in base units.
    #[serde(deserialize_with = "int", serialize_with = "decimal")]
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub min_pledge: u64,
    /// Largest monthly pledge a member may choose, in base units.
    #[serde(deserialize_with = "int", serialize_with = "decimal")]
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub max_pledge: u64,
    pub admission: Admission,
    pub identity: Identity,
    /// Whole periods after joining before a member may file a request.
    #[serde(deserialize_with = "int")]
    pub waiting_periods: u32,
    /// How many periods a member may be behind on pledges and stay in good standing.
    #[serde(deserialize_with = "int")]
    pub grace_periods: u32,
    /// The gift account may hold at most this many pledges; contributions beyond are refused.
    #[serde(deserialize_with = "int")]
    pub gift_cap_pledges: u32,
    /// No request may be filed before the society has this many members.
    #[serde(deserialize_with = "int")]
    pub min_members: u32,
    /// Karma halves every this many periods (>= 1).
    #[serde(deserialize_with = "int")]
    pub karma_half_life_periods: u32,
    /// Maximum benefit = karma × this ratio.
    #[serde(deserialize_with = "int")]
    pub benefit_ratio: u32,
    /// Absolute cap on a request, in base units.
    #[serde(deserialize_with = "int", serialize_with = "decimal")]
    #[cfg_attr(feature = "schema", schema(value_type = String))]
    pub max_request: u64,
    /// Bond posted with a request, as basis points of the requester's pledge (10,000 = one pledge).
    #[serde(deserialize_with = "int")]
    pub bond_bps: u32,
    /// Share of the requester's karma consumed by filing, in basis points.
    #[serde(deserialize_with = "int")]
    pub filing_karma_bps: u32,
    /// How long votes on a request, an application or an amendment are open, in seconds.
    #[serde(deserialize_with = "int")]
    pub voting_window_secs: u64,
    /// A request passes iff (yes − no) ≥ this share of the society's total karma.
    #[serde(deserialize_with = "int")]
    pub approval_net_bps: u32,
    /// … and yes ≥ this share of the society's total karma.
    #[serde(deserialize_with = "int")]
    pub quorum_bps: u32,
    /// Whether approved requests are drawn pro rata from every gift account.
    pub auto_share: bool,
    /// Automatic draws in one period may take at most this share of the gift funds held at the
    /// start of the period.
    #[serde(deserialize_with = "int")]
    pub max_draw_bps: u32,
    /// Periods of notice between `Leave` and `Withdraw`.
    #[serde(deserialize_with = "int")]
    pub notice_periods: u32,
    /// Whether a member who leaves gets the rest of their gift account back.
    pub exit_refund: bool,
    /// An amendment passes iff yes ≥ this share of the society's total karma.
    #[serde(deserialize_with = "int")]
    pub amendment_threshold_bps: u32,
    /// Periods between an amendment passing and its enactment (at least one).
    #[serde(deserialize_with = "int")]
    pub amendment_timelock_periods: u32,
    /// A member lapsed for longer than this many periods may be expelled by anyone (at least one).
    #[serde(deserialize_with = "int")]
    pub lapse_periods: u32,
    /// The most periods a benefit may be paid in installments.
    #[serde(deserialize_with = "int")]
    pub max_installments: u32,
    /// Bond posted with an application for admission, in basis points of the applicant's pledge.
    #[serde(deserialize_with = "int")]
    pub application_bond_bps: u32,
}

/// An integer from a number or a decimal string (the rules' integers in JSON and TOML; public so
/// that a tool reading one rule alone parses it the same way).
pub fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64> + std::str::FromStr,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(u64),
        Text(String),
    }
    let out_of_range = || serde::de::Error::custom("integer out of range");
    match Int::deserialize(d)? {
        Int::Number(n) => T::try_from(n).map_err(|_| out_of_range()),
        Int::Text(s) => s.trim().parse().map_err(|_| out_of_range()),
    }
}

/// An amount as a decimal string.
fn decimal<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Why a set of rules is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule `{field}`: {reason}")]
pub struct RulesError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl Rules {
    /// The defaults of docs/protocol.md for a pledge range, with a 30-day period.
    pub fn defaults(min_pledge: u64, max_pledge: u64) -> Rules {
        Rules {
            period_secs: 30 * 24 * 3600,
            min_pledge,
            max_pledge,
            admission: Admission::Open,
            identity: Identity::Public,
            waiting_periods: 3,
            grace_periods: 1,
            gift_cap_pledges: 36,
            min_members: 20,
            karma_half_life_periods: 6,
            benefit_ratio: 10,
            max_request: max_pledge.saturating_mul(24),
            bond_bps: 10_000,
            filing_karma_bps: 2_500,
            voting_window_secs: 7 * 24 * 3600,
            approval_net_bps: 500,
            quorum_bps: 1_500,
            auto_share: true,
            max_draw_bps: 1_000,
            notice_periods: 1,
            exit_refund: true,
            amendment_threshold_bps: 6_667,
            amendment_timelock_periods: 2,
            lapse_periods: 3,
            max_installments: 24,
            application_bond_bps: 10_000,
        }
    }

    /// The shortest voting window these rules allow: 60 s, and at least 1/30 of a period
    /// (rounded up).
    pub fn voting_window_secs_min(&self) -> u64 {
        VOTING_WINDOW_SECS_MIN.max(self.period_secs.div_ceil(30))
    }

    /// Checks every field's range and the safeguard floors that no society and no amendment can
    /// go below (docs/protocol.md §7). The state machine refuses a society or amendment whose rules
    /// fail this.
    pub fn validate(&self) -> Result<(), RulesError> {
        fn check(ok: bool, field: &'static str, reason: &'static str) -> Result<(), RulesError> {
            if ok {
                Ok(())
            } else {
                Err(RulesError { field, reason })
            }
        }
        let bps = |v: u32| u64::from(v) <= BPS;
        check(
            (1..=PERIOD_SECS_MAX).contains(&self.period_secs),
            "period_secs",
            "must be 1 s to 10 years",
        )?;
        check(
            self.min_pledge >= 1,
            "min_pledge",
            "must be at least 1 base unit",
        )?;
        check(
            self.min_pledge <= self.max_pledge,
            "max_pledge",
            "must be at least min_pledge",
        )?;
        check(
            self.waiting_periods <= PERIODS_RULE_MAX,
            "waiting_periods",
            "at most 1200",
        )?;
        check(
            (1..=PERIODS_RULE_MAX).contains(&self.grace_periods),
            "grace_periods",
            "must be 1 to 1200",
        )?;
        check(
            (1..=PERIODS_RULE_MAX).contains(&self.lapse_periods),
            "lapse_periods",
            "must be 1 to 1200",
        )?;
        check(
            (1..=INSTALLMENTS_MAX).contains(&self.max_installments),
            "max_installments",
            "must be 1 to 120",
        )?;
        check(
            self.application_bond_bps <= 100_000,
            "application_bond_bps",
            "at most ten pledges",
        )?;
        check(
            (1..=10_000).contains(&self.gift_cap_pledges),
            "gift_cap_pledges",
            "must be 1 to 10,000",
        )?;
        check(
            self.min_members <= 1_000_000_000,
            "min_members",
            "at most 10^9",
        )?;
        check(
            (1..=HALF_LIFE_PERIODS_MAX).contains(&self.karma_half_life_periods),
            "karma_half_life_periods",
            "must be 1 to 1200",
        )?;
        check(self.benefit_ratio <= 1_000, "benefit_ratio", "at most 1000")?;
        check(
            self.max_request >= 1,
            "max_request",
            "must be at least 1 base unit",
        )?;
        check(self.bond_bps <= 100_000, "bond_bps", "at most ten pledges")?;
        check(
            bps(self.filing_karma_bps),
            "filing_karma_bps",
            "at most 10,000",
        )?;
        check(
            self.voting_window_secs >= self.voting_window_secs_min()
                && self.voting_window_secs <= PERIOD_SECS_MAX,
            "voting_window_secs",
            "must be at least 60 s and 1/30 of a period, and at most 10 years",
        )?;
        check(
            self.approval_net_bps >= 1 && bps(self.approval_net_bps),
            "approval_net_bps",
            "must be 1 to 10,000",
        )?;
        check(
            self.quorum_bps >= 1 && bps(self.quorum_bps),
            "quorum_bps",
            "must be 1 to 10,000",
        )?;
        check(
            (1..=10_000).contains(&self.max_draw_bps),
            "max_draw_bps",
            "must be 1 to 10,000",
        )?;
        check(
            self.notice_periods <= PERIODS_RULE_MAX,
            "notice_periods",
            "at most 1200",
        )?;
        check(
            (5_001..=10_000).contains(&self.amendment_threshold_bps),
            "amendment_threshold_bps",
            "must be a majority: 5,001 to 10,000",
        )?;
        check(
            (1..=PERIODS_RULE_MAX).contains(&self.amendment_timelock_periods),
            "amendment_timelock_periods",
            "must be 1 to 1200",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_defaults_are_valid() {
        let r = Rules::defaults(10, 100);
        r.validate().unwrap();
        assert_eq!(r.period_secs, 2_592_000);
        assert_eq!(
            (
                r.waiting_periods,
                r.grace_periods,
                r.gift_cap_pledges,
                r.min_members
            ),
            (3, 1, 36, 20)
        );
        assert_eq!(
            (
                r.karma_half_life_periods,
                r.benefit_ratio,
                r.filing_karma_bps
            ),
            (6, 10, 2_500)
        );
        assert_eq!(
            (
                r.approval_net_bps,
                r.quorum_bps,
                r.max_draw_bps,
                r.amendment_threshold_bps
            ),
            (500, 1_500, 1_000, 6_667)
        );
        assert!(r.auto_share && r.exit_refund);
    }

    #[test]
    fn out_of_range_rules_are_refused_naming_the_field() {
        type Mutation = Box<dyn Fn(&mut Rules)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("period_secs", Box::new(|r| r.period_secs = 0)),
            ("min_pledge", Box::new(|r| r.min_pledge = 0)),
            ("max_pledge", Box::new(|r| r.max_pledge = r.min_pledge - 1)),
            (
                "karma_half_life_periods",
                Box::new(|r| r.karma_half_life_periods = 0),
            ),
            ("max_draw_bps", Box::new(|r| r.max_draw_bps = 10_001)),
            (
                "approval_net_bps",
                Box::new(|r| r.approval_net_bps = 10_001),
            ),
            (
                "amendment_threshold_bps",
                Box::new(|r| r.amendment_threshold_bps = 5_000),
            ),
            ("gift_cap_pledges", Box::new(|r| r.gift_cap_pledges = 0)),
            ("voting_window_secs", Box::new(|r| r.voting_window_secs = 0)),
            (
                "voting_window_secs",
                Box::new(|r| r.voting_window_secs = 59),
            ),
            (
                "voting_window_secs",
                Box::new(|r| r.voting_window_secs = r.period_secs / 30 - 1),
            ),
            ("quorum_bps", Box::new(|r| r.quorum_bps = 0)),
            ("approval_net_bps", Box::new(|r| r.approval_net_bps = 0)),
            (
                "amendment_timelock_periods",
                Box::new(|r| r.amendment_timelock_periods = 0),
            ),
            ("grace_periods", Box::new(|r| r.grace_periods = 0)),
            ("lapse_periods", Box::new(|r| r.lapse_periods = 0)),
            ("max_installments", Box::new(|r| r.max_installments = 0)),
        ];
        for (field, mutate) in cases {
            let mut r = Rules::defaults(10, 100);
            mutate(&mut r);
            assert_eq!(r.validate().unwrap_err().field, field);
        }
    }
}
