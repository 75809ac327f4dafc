//! The state as the API shows it: accounts, assets, societies, members, requests with their
//! ballots, votes, amendments, and a society's history.

use super::{Addr, Amount, Hex, karma};
use kassa_state::records::{self, MemberStatus};
use kassa_state::view::{self, MemberView};
use kassa_types::Address;
use kassa_types::rules::Rules;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account: its nonces and what it holds.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub address: Addr,
    /// The nonce of its last finalized transaction.
    pub nonce: u64,
    /// The nonce its next transaction should carry, counting those waiting in the mempool.
    pub next_nonce: u64,
    pub balances: Vec<Balance>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    pub asset: u64,
    pub symbol: Option<String>,
    pub amount: Amount,
}

/// An asset: its symbol, decimals, supply and issuer (none for the native asset).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Asset {
    pub id: u64,
    pub symbol: String,
    pub decimals: u8,
    pub max_supply: Option<Amount>,
    pub issuer: Option<Addr>,
    pub supply: Amount,
}

impl Asset {
    pub fn new(id: u64, a: &records::Asset) -> Asset {
        Asset {
            id,
            symbol: a.symbol.to_string(),
            decimals: a.decimals,
            max_supply: a.max_supply.map(Amount::from),
            issuer: a.issuer.map(Addr),
            supply: a.supply.into(),
        }
    }
}

/// A society: its rules and its books.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Society {
    pub id: u64,
    pub name: String,
    pub purpose: String,
    pub asset: u64,
    pub rules: Rules,
    /// The shortest voting window these rules allow, in seconds (derived from the period).
    pub voting_window_secs_min: u64,
    pub created_ms: u64,
    pub current_period: u64,
    pub member_count: u64,
    pub standing_count: u64,
    pub gift_funds: Amount,
    pub bonds: Amount,
    pub common_fund: Amount,
    pub benefits_escrow: Amount,
    pub owed: Amount,
    pub benefits_per_period: Amount,
    pub total_karma: Amount,
    pub queue_length: u64,
    /// The amendment waiting for its vote or time lock, if any.
    pub amendment: Option<u64>,
    pub stats: SocietyStats,
}

/// What a society has done since it began.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SocietyStats {
    pub requests_filed: u64,
    pub requests_approved: u64,
    pub requests_rejected: u64,
    pub paid_by_shares: Amount,
    pub paid_by_gifts: Amount,
    pub paid_by_common: Amount,
    pub installments_funded: Amount,
    pub bonds_forfeited: Amount,
    pub members_expelled: u64,
}

impl Society {
    pub fn new(id: u64, meta: &records::Society, book: &records::Book, now_ms: u64) -> Society {
        let st = &book.stats;
        Society {
            id,
            name: meta.name.to_string(),
            purpose: meta.purpose.to_string(),
            asset: meta.asset.0,
            rules: meta.rules.clone(),
            voting_window_secs_min: meta.rules.voting_window_secs_min(),
            created_ms: meta.created_ms,
            current_period: meta.period_at(now_ms),
            member_count: book.member_count,
            standing_count: book.standing_count,
            gift_funds: Amount(book.pool.total.into()),
            bonds: Amount(book.bonds.into()),
            common_fund: Amount(book.common.into()),
            benefits_escrow: Amount(book.escrow.into()),
            owed: Amount(book.owed),
            benefits_per_period: Amount(book.benefits_rate.into()),
            total_karma: karma(view::total_karma(meta, book, now_ms)),
            queue_length: book.queue_tail - book.queue_head,
            amendment: book.amendment.map(|a| a.0),
            stats: SocietyStats {
                requests_filed: st.requests_filed,
                requests_approved: st.requests_approved,
                requests_rejected: st.requests_rejected,
                paid_by_shares: Amount(st.paid_by_shares),
                paid_by_gifts: Amount(st.paid_by_gifts),
                paid_by_common: Amount(st.paid_by_common),
                installments_funded: Amount(st.installments_funded),
                bonds_forfeited: Amount(st.bonds_forfeited),
                members_expelled: st.members_expelled,
            },
        }
    }
}

/// `?points=`: how many points of history (2 to 60; default 30).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub points: Option<u64>,
}

/// A society's book sampled at heights from its creation to the head.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct History {
    pub items: Vec<HistoryPoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryPoint {
    pub height: u64,
    pub time_ms: u64,
    pub gift_funds: Amount,
    pub member_count: u64,
    pub requests_approved: u64,
    pub requests_rejected: u64,
    /// Paid to members by shares and gifts, in all.
    pub paid: Amount,
}

/// Where a member is in their membership.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MemberState {
    /// Waiting for the members' vote on their application (a request id).
    Applicant {
        application: u64,
    },
    Active,
    /// Has given notice; may withdraw at `until_ms`.
    Leaving {
        until_ms: u64,
    },
}

/// A member with what the rules derive at the head: standing, dues, karma, maximum benefit.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub society: u64,
    pub address: Addr,
    pub status: MemberState,
    pub pledge: Amount,
    /// A pledge change taking effect next period.
    pub next_pledge: Option<Amount>,
    pub gift_balance: Amount,
    pub karma: Amount,
    pub karma_pending: Amount,
    pub karma_at_period_start: Amount,
    pub good_standing: bool,
    pub lapsed: bool,
    /// The first period not yet paid.
    pub paid_until: u64,
    pub next_due_ms: u64,
    /// The period at whose start standing ends unless dues are paid.
    pub lapse_at: u64,
    pub lapse_at_ms: u64,
    pub expellable_at: u64,
    /// When the waiting period ends and the member may file.
    pub waiting_until_ms: u64,
    pub max_benefit: Amount,
    pub delegate: Option<Addr>,
    /// The member's latest request, if any.
    pub open_request: Option<u64>,
    pub request_in_progress: bool,
    pub joined_ms: u64,
}

impl Member {
    pub fn new(society: u64, who: &Address, m: &MemberView) -> Member {
        Member {
            society,
            address: Addr(*who),
            status: match m.status {
                MemberStatus::Applicant { application } => MemberState::Applicant {
                    application: application.0,
                },
                MemberStatus::Active => MemberState::Active,
                MemberStatus::Leaving { until_ms } => MemberState::Leaving { until_ms },
            },
            pledge: m.pledge.into(),
            next_pledge: m.next_pledge.map(Amount::from),
            gift_balance: m.gift_balance.into(),
            karma: Amount(m.karma),
            karma_pending: Amount(m.karma_pending),
            karma_at_period_start: Amount(m.karma_at_period_start),
            good_standing: m.good_standing,
            lapsed: m.lapsed,
            paid_until: m.paid_until,
            next_due_ms: m.next_due_ms,
            lapse_at: m.lapse_at,
            lapse_at_ms: m.lapse_at_ms,
            expellable_at: m.expellable_at,
            waiting_until_ms: m.waiting_until_ms,
            max_benefit: Amount(m.max_benefit),
            delegate: m.delegate.map(Addr),
            open_request: m.open_request.map(|r| r.0),
            request_in_progress: m.request_in_progress,
            joined_ms: m.joined_ms,
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Help from the fund.
    Help,
    /// An applicant's admission (societies whose admission is by vote).
    Admission,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Open,
    Approved,
    Paid,
    Rejected,
}

/// A request for help (or an admission) with its ballot and, once approved, its benefit.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Request {
    pub id: u64,
    pub kind: RequestKind,
    pub requester: Addr,
    pub payee: Addr,
    /// Asked per installment.
    pub amount: Amount,
    pub installments: u32,
    /// Asked in all.
    pub asked: Amount,
    pub bond: Amount,
    pub evidence_hash: Option<Hex>,
    pub memo: Option<String>,
    pub status: RequestStatus,
    /// The share of the ask the vote approved, in percent.
    pub outcome_percent: u8,
    pub approved: Amount,
    pub in_progress: bool,
    pub benefit: Option<Benefit>,
    pub paid: Amount,
    pub gifted: Amount,
    pub ballot: Ballot,
}

/// An approved request paid in installments, one a period.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Benefit {
    pub per_period: Amount,
    pub first_period: u64,
    pub last_period: u64,
    pub installments: u64,
    /// Installments whose period has begun.
    pub installments_due: u64,
    pub claimed: Amount,
    pub ended_early: bool,
    pub dues_waived: bool,
}

impl Request {
    pub fn new(id: u64, r: &records::Request, now_period: u64) -> Request {
        let (kind, amount, installments, bond, evidence_hash, memo, outcome) = match &r.kind {
            records::RequestKind::Help {
                amount,
                installments,
                bond,
                evidence_hash,
                memo,
            } => (
                RequestKind::Help,
                Amount::from(*amount),
                *installments,
                *bond,
                Some(Hex(*evidence_hash)),
                Some(memo.to_string()),
                kassa_state::exec::request_outcome(&r.ballot),
            ),
            records::RequestKind::Admission { bond } => (
                RequestKind::Admission,
                Amount(0),
                0,
                *bond,
                None,
                None,
                kassa_state::exec::admission_outcome(&r.ballot),
            ),
        };
        Request {
            id,
            kind,
            requester: Addr(r.requester),
            payee: Addr(r.payee),
            amount,
            installments,
            asked: Amount(r.asked()),
            bond: bond.into(),
            evidence_hash,
            memo,
            status: match r.status {
                records::RequestStatus::Open => RequestStatus::Open,
                records::RequestStatus::Approved => RequestStatus::Approved,
                records::RequestStatus::Paid => RequestStatus::Paid,
                records::RequestStatus::Rejected => RequestStatus::Rejected,
            },
            outcome_percent: outcome,
            approved: Amount(r.approved.into()),
            in_progress: r.in_progress(now_period),
            benefit: r.benefit.as_ref().map(|b| Benefit {
                per_period: b.per_period.into(),
                first_period: b.first,
                last_period: b.last,
                installments: b.last + 1 - b.first,
                installments_due: now_period.clamp(b.first - 1, b.last) + 1 - b.first,
                claimed: b.claimed.into(),
                ended_early: b.index_end.is_some(),
                dues_waived: b.dues_waived,
            }),
            paid: Amount(r.paid.into()),
            gifted: Amount(r.gifted.into()),
            ballot: Ballot::new(&r.ballot, Decides::Request),
        }
    }
}

/// What a ballot decides, which sets the thresholds it shows.
#[derive(Clone, Copy)]
enum Decides {
    Request,
    Amendment,
}

/// A vote in progress or done: karma for and against, counts, and what passing needs.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Ballot {
    pub society: u64,
    pub filed_period: u64,
    pub deadline_ms: u64,
    pub extended: bool,
    pub yes_count: u64,
    pub no_count: u64,
    /// Yes votes' karma by the share of the ask they approve.
    pub yes_by_percent: Vec<PercentWeight>,
    pub yes: Amount,
    pub no: Amount,
    /// All karma in the society when voting began.
    pub total_karma: Amount,
    pub thresholds: Thresholds,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PercentWeight {
    pub percent: u8,
    pub weight: Amount,
}

/// What passing needs, in karma.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Thresholds {
    /// A request passes with yes − no at least `net_needed` and yes + no at least `quorum`.
    Request {
        net_needed: Amount,
        quorum: Amount,
        approval_net_bps: u32,
        quorum_bps: u32,
        standing_at_filing: u64,
    },
    /// An amendment passes with yes at least `yes_needed`.
    Amendment { yes_needed: Amount },
}

impl Ballot {
    fn new(b: &records::Ballot, decides: Decides) -> Ballot {
        let total = b.start.total_karma;
        let bps = |v: u32| {
            karma(
                kassa_state::fixed::mul_div_ceil(total, u128::from(v), 10_000).unwrap_or(u128::MAX),
            )
        };
        Ballot {
            society: b.society.0,
            filed_period: b.filed_period,
            deadline_ms: b.deadline_ms,
            extended: b.extended,
            yes_count: b.yes_count,
            no_count: b.no_count,
            yes_by_percent: b
                .yes_by_percent
                .iter()
                .map(|&(percent, w)| PercentWeight {
                    percent,
                    weight: karma(w),
                })
                .collect(),
            yes: karma(b.yes),
            no: karma(b.no),
            total_karma: karma(total),
            thresholds: match decides {
                Decides::Amendment => Thresholds::Amendment {
                    yes_needed: bps(b.amendment_threshold_bps),
                },
                Decides::Request => Thresholds::Request {
                    net_needed: bps(b.approval_net_bps),
                    quorum: bps(b.quorum_bps),
                    approval_net_bps: b.approval_net_bps,
                    quorum_bps: b.quorum_bps,
                    standing_at_filing: b.start.standing_count,
                },
            },
        }
    }
}

/// One member's vote on a request.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Vote {
    pub voter: Addr,
    pub approve: bool,
    /// The share of the ask approved, in percent.
    pub percent: u8,
    pub weight: Amount,
}

impl Vote {
    pub fn new(voter: &Address, v: &records::VoteRecord) -> Vote {
        Vote {
            voter: Addr(*voter),
            approve: v.approve,
            percent: v.percent,
            weight: karma(v.weight),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AmendmentStatus {
    Open,
    Enacted,
    Rejected,
}

/// Proposed new rules for a society, and the vote on them.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Amendment {
    pub id: u64,
    pub proposer: Addr,
    pub rules: Rules,
    pub status: AmendmentStatus,
    pub ballot: Ballot,
}

impl Amendment {
    pub fn new(id: u64, a: &records::Amendment) -> Amendment {
        Amendment {
            id,
            proposer: Addr(a.proposer),
            rules: a.rules.clone(),
            status: match a.status {
                records::AmendmentStatus::Open => AmendmentStatus::Open,
                records::AmendmentStatus::Enacted => AmendmentStatus::Enacted,
                records::AmendmentStatus::Rejected => AmendmentStatus::Rejected,
            },
            ballot: Ballot::new(&a.ballot, Decides::Amendment),
        }
    }
}
