//! A society's rules on the command line: overrides as flags, and the rules a node shows.

use crate::amount;
use anyhow::{Result, bail};
use clap::Args;
use kassa_types::rules::{Admission, Identity, Rules};

/// Overrides of a society's rules; anything not given keeps its default (or current) value.
#[derive(Debug, Args, Clone, Default)]
pub struct RulesArgs {
    /// Contribution period, seconds of block time.
    #[arg(long)]
    pub period_secs: Option<u64>,
    /// Smallest monthly pledge (e.g. "10 USDK").
    #[arg(long)]
    pub min_pledge: Option<String>,
    /// Largest monthly pledge.
    #[arg(long)]
    pub max_pledge: Option<String>,
    /// open or vote.
    #[arg(long)]
    pub admission: Option<String>,
    /// public or commitment.
    #[arg(long)]
    pub identity: Option<String>,
    #[arg(long)]
    pub waiting_periods: Option<u32>,
    #[arg(long)]
    pub grace_periods: Option<u32>,
    #[arg(long)]
    pub gift_cap_pledges: Option<u32>,
    #[arg(long)]
    pub min_members: Option<u32>,
    #[arg(long)]
    pub karma_half_life_periods: Option<u32>,
    #[arg(long)]
    pub benefit_ratio: Option<u32>,
    /// Largest request (e.g. "5000 USDK").
    #[arg(long)]
    pub max_request: Option<String>,
    #[arg(long)]
    pub bond_bps: Option<u32>,
    #[arg(long)]
    pub filing_karma_bps: Option<u32>,
    #[arg(long)]
    pub voting_window_secs: Option<u64>,
    #[arg(long)]
    pub approval_net_bps: Option<u32>,
    #[arg(long)]
    pub quorum_bps: Option<u32>,
    #[arg(long)]
    pub auto_share: Option<bool>,
    #[arg(long)]
    pub max_draw_bps: Option<u32>,
    #[arg(long)]
    pub notice_periods: Option<u32>,
    #[arg(long)]
    pub exit_refund: Option<bool>,
    #[arg(long)]
    pub amendment_threshold_bps: Option<u32>,
    #[arg(long)]
    pub amendment_timelock_periods: Option<u32>,
    /// Periods a member may stay lapsed before anyone may expel them (at least 1).
    #[arg(long)]
    pub lapse_periods: Option<u32>,
    /// Most installments a benefit may be paid in.
    #[arg(long)]
    pub max_installments: Option<u32>,
    /// Bond of an application for admission, in basis points of the pledge.
    #[arg(long)]
    pub application_bond_bps: Option<u32>,
}

impl RulesArgs {
    pub(super) fn apply(&self, mut r: Rules, decimals: u8) -> Result<Rules> {
        let amt = |s: &Option<String>| -> Result<Option<u64>> {
            s.as_ref()
                .map(|t| amount::parse(t, decimals).map(|(v, _)| v))
                .transpose()
        };
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { r.$f = v; } )*};
        }
        set!(
            period_secs,
            waiting_periods,
            grace_periods,
            gift_cap_pledges,
            min_members,
            karma_half_life_periods,
            benefit_ratio,
            bond_bps,
            filing_karma_bps,
            voting_window_secs,
            approval_net_bps,
            quorum_bps,
            auto_share,
            max_draw_bps,
            notice_periods,
            exit_refund,
            amendment_threshold_bps,
            amendment_timelock_periods,
            lapse_periods,
            max_installments,
            application_bond_bps
        );
        if let Some(v) = amt(&self.min_pledge)? {
            r.min_pledge = v;
        }
        if let Some(v) = amt(&self.max_pledge)? {
            r.max_pledge = v;
        }
        if let Some(v) = amt(&self.max_request)? {
            r.max_request = v;
        }
        if let Some(a) = &self.admission {
            r.admission = match a.as_str() {
                "open" => Admission::Open,
                "vote" => Admission::Vote,
                _ => bail!("admission is open or vote"),
            };
        }
        if let Some(i) = &self.identity {
            r.identity = match i.as_str() {
                "public" => Identity::Public,
                "commitment" => Identity::Commitment,
                _ => bail!("identity is public or commitment"),
            };
        }
        r.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kassa_api::wire;

    #[test]
    fn the_rules_the_api_shows_read_back_as_the_same_rules_and_a_misspelt_field_is_an_error() {
        let mut rules = Rules::defaults(1_000, 90_000);
        rules.admission = Admission::Vote;
        rules.identity = Identity::Commitment;
        rules.exit_refund = false;
        // What `kassa tx propose-amendment` starts from: the society as the node shows it.
        let society = |rules: serde_json::Value| -> serde_json::Result<wire::Society> {
            serde_json::from_value(serde_json::json!({
                "id": 0, "name": "Bread", "purpose": "", "asset": 0, "rules": rules,
                "voting_window_secs_min": 60, "created_ms": 0, "current_period": 0,
                "member_count": 1, "standing_count": 1, "gift_funds": "0", "bonds": "0",
                "common_fund": "0", "benefits_escrow": "0", "owed": "0",
                "benefits_per_period": "0", "total_karma": "0", "queue_length": 0,
                "amendment": null, "stats": {
                    "requests_filed": 0, "requests_approved": 0, "requests_rejected": 0,
                    "paid_by_shares": "0", "paid_by_gifts": "0", "paid_by_common": "0",
                    "installments_funded": "0", "bonds_forfeited": "0", "members_expelled": 0,
                },
            }))
        };
        let shown = serde_json::to_value(&rules).unwrap();
        assert_eq!(society(shown.clone()).unwrap().rules, rules);

        let mut misspelt = shown.clone();
        let fields = misspelt.as_object_mut().unwrap();
        let v = fields.remove("quorum_bps").unwrap();
        fields.insert("quorum_bsp".into(), v);
        assert!(society(misspelt).is_err());

        let mut unknown_admission = shown;
        unknown_admission["admission"] = "by_invitation".into();
        assert!(society(unknown_admission).is_err());
    }
}
