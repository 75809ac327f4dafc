//! The records stored under [`crate::keys`], and the events transactions emit. Their Borsh
//! encodings are the state format (part of the state root), so field order is frozen.
//!
//! Over 600 lines on purpose: every stored record and event in one file (as every key is in
//! `keys.rs`), so that the state format is reviewed in one place.

use crate::pool::{Pool, Stake};
use borsh::{BorshDeserialize, BorshSerialize};
use kassa_types::codec::varint;
use kassa_types::tx::{ChainId, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{Address, AmendmentId, AssetId, Hash, RequestId, Rules, SocietyId};

/// Fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChainParams {
    pub chain_id: ChainId,
    /// Minimum fee per transaction, in KAS base units.
    pub min_fee: u64,
    /// The hash of the genesis (`Genesis::hash`): every transaction signs it.
    pub genesis_hash: Hash,
}

/// Id sequences and the last block applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Counters {
    pub next_asset: u64,
    pub next_society: u64,
    pub next_request: u64,
    pub next_amendment: u64,
    /// Height of the last block begun (0 = genesis only).
    pub height: u64,
    /// Time of the last block begun.
    pub time_ms: u64,
}

/// An account: its sequence number and its KAS balance. Every transaction advances the nonce
/// and burns its fee in KAS, so the two live in one record (one state key, one tree leaf per
/// signer and block); balances of other assets are stored per asset under their own keys.
/// Stored only while one of the two is non-zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Account {
    /// The nonce the next transaction must carry.
    pub nonce: u64,
    /// The KAS balance, in base units.
    pub kas: u64,
}

/// An asset.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Asset {
    pub symbol: Symbol,
    pub decimals: u8,
    /// `None` for KAS (fixed at genesis: nothing can mint it) — see `issuer`.
    pub max_supply: Option<u64>,
    /// `None` for KAS.
    pub issuer: Option<Address>,
    /// Minted minus burned.
    pub supply: u64,
}

/// A society's fixed description and current rules.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Society {
    pub name: SocietyName,
    pub purpose: Purpose,
    pub asset: AssetId,
    pub rules: Rules,
    /// Block time of creation; periods count from here.
    pub created_ms: u64,
    /// Who sent `CreateSociety`. Informational: it confers nothing.
    pub founder: Address,
}

impl Society {
    /// Length of a period in milliseconds.
    pub fn period_ms(&self) -> u64 {
        self.rules.period_secs * 1000
    }
    /// The period that block time `now_ms` falls in.
    pub fn period_at(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.created_ms) / self.period_ms()
    }
}

/// The society's state at the start of a period: what vote weights, thresholds and the draw
/// budget of that period are measured against.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PeriodStart {
    pub period: u64,
    pub pool: Pool,
    /// Total karma of the society (the sum of its members' in good standing), at `period`.
    pub total_karma: u128,
    /// Members in good standing at the start of `period`.
    pub standing_count: u64,
}

/// Running totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Stats {
    pub requests_filed: u64,
    pub requests_approved: u64,
    pub requests_rejected: u64,
    /// Paid to requesters by automatic shares.
    pub paid_by_shares: u128,
    /// Paid to requesters by voluntary gifts.
    pub paid_by_gifts: u128,
    /// Paid to requests and benefits from the common fund.
    pub paid_by_common: u128,
    /// Installments funded for running benefits (from the common fund and the gift funds).
    pub installments_funded: u128,
    pub bonds_forfeited: u128,
    pub members_expelled: u64,
}

/// A society's moving parts.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Book {
    /// Admitted members who have not given notice (lapsed ones included).
    pub member_count: u64,
    /// Members in good standing: what `min_members` and the head count of admissions count.
    pub standing_count: u64,
    /// Gift funds and the sharing state.
    pub pool: Pool,
    /// Bonds locked by open requests and applications.
    pub bonds: u64,
    /// The common fund: forfeited bonds, exit hold-backs and balances left without refund. It
    /// belongs to no member, pays approved help before any gift account is drawn, and is never
    /// refunded.
    pub common: u64,
    /// Installments funded for running benefits and not yet claimed by their payees.
    pub escrow: u64,
    /// The sum of the stakes of the members in good standing: its karma is the society's total
    /// karma (derived lazily like a member's), its position their share of the gift funds.
    pub standing: Stake,
    /// The last period whose lapses, benefit ends and installments have been applied.
    pub rolled: u64,
    /// What the society owes or may soon owe: amounts of open requests, unpaid approved lump
    /// sums, and installments of running benefits not yet due. Exits hold back their share of it.
    pub owed: u128,
    /// The sum of the per-period installments of running benefits.
    pub benefits_rate: u64,
    /// The sum of the pledges of members whose paid periods are credited as they arrive (paid
    /// ahead): each period adds half of it to the total karma (docs/protocol.md §4.2).
    pub dues_rate: u64,
    /// Installments funded per unit of rate since the society began, in Q64: a benefit's funded
    /// total is `per_period × (index at its end or now − index at its start)`.
    pub benefit_index: u128,
    /// The current period's start.
    pub start: PeriodStart,
    /// Automatic draws made in the current period.
    pub drawn_in_period: u64,
    /// Share of each gift account the current period's draws have left, in Q64 (1.0 = 2^64).
    /// Draws stop at `1 − max_draw_bps`, so no account loses more than that in one period even
    /// if others withdraw from the pool meanwhile.
    pub retained_in_period: u128,
    /// Payout queue of approved requests, in approval order: `[queue_head, queue_tail)`.
    pub queue_head: u64,
    pub queue_tail: u64,
    /// The amendment open or waiting, if any.
    pub amendment: Option<AmendmentId>,
    pub stats: Stats,
}

/// Where a membership stands.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum MemberStatus {
    /// Waiting for the members' decision on this application.
    Applicant { application: RequestId },
    /// A member.
    Active,
    /// Gave notice; may withdraw from block time `until_ms` on (a full notice from the moment
    /// of leaving).
    Leaving { until_ms: u64 },
}

/// What lapses and what ends at the start of one period of a society: applied once, when the
/// society is first touched in or after that period, so that time passing costs nothing per
/// member (work grows with elapsed periods, never with members).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Roll {
    /// Members whose good standing ends at this period.
    pub lapse_count: u64,
    /// The sum of their stakes (leaving the society's total karma with them).
    pub lapse_stake: Stake,
    /// The per-period installments of benefits whose last installment fell due the period before.
    pub benefits_ending: u64,
    /// Pledges whose paid-ahead periods start, or end, being credited at this period (the
    /// society's `dues_rate` changes by them).
    pub dues_starting: u64,
    pub dues_ending: u64,
    /// The karma credited as the periods arrived to the members whose standing ends here, valued
    /// at this period: it leaves the total with them.
    pub lapse_credit: u128,
}

impl Roll {
    /// Nothing lapses, starts or ends at this period.
    pub fn is_empty(&self) -> bool {
        self.lapse_count == 0
            && self.benefits_ending == 0
            && self.dues_starting == 0
            && self.dues_ending == 0
            && self.lapse_credit == 0
    }
}

/// A membership. A society may have millions, so its counters (and those of its [`Stake`]) are
/// LEB128 varints ([`varint`]).
///
/// The dues clock: periods before `paid_until` are paid. Standing lasts until `lapse_at`
/// (`paid_until + grace_periods`, fixed when the dues were last paid), by time passing alone.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Member {
    pub status: MemberStatus,
    /// Block time of admission (of application, while an applicant).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub joined_ms: u64,
    /// The member may file a request from this block time on (joining, reinstatement and a
    /// raised pledge restart the waiting period).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub waiting_until_ms: u64,
    /// Monthly commitment from period `pledge_from` on, in base units.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub pledge: u64,
    /// The pledge for periods before `pledge_from`.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub prev_pledge: u64,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub pledge_from: u64,
    /// The first period not paid for.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub paid_until: u64,
    /// Paid toward period `paid_until`, less than its price.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub dues_credit: u64,
    /// The first period at which the member is no longer in good standing.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub lapse_at: u64,
    /// The first period whose contribution karma has not been credited yet.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub karma_from: u64,
    /// The period of the last voluntary gift, and the gift karma credited in it (capped at one
    /// pledge's worth per period).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub gift_karma_period: u64,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub gift_karma_used: u128,
    /// The period of the member's last request, and the karma their requests (filing and
    /// approval) consumed in it: the maximum benefit subtracts it from the karma at the start of
    /// that period, so consumed karma does not come back within the period.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub consumed_period: u64,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub consumed_in_period: u128,
    pub identity_commitment: Option<Hash>,
    /// Karma and gift account.
    pub stake: Stake,
    pub delegate: Option<Address>,
    /// The member's latest request: it blocks another while it is open, being paid or running.
    pub open_request: Option<RequestId>,
}

impl Member {
    /// The pledge that pays period `p`.
    pub fn price(&self, p: u64) -> u64 {
        if p < self.pledge_from {
            self.prev_pledge
        } else {
            self.pledge
        }
    }

    /// Good standing at period `now`: an admitted member whose paid periods plus the grace
    /// periods reach `now`. Never evaluated from the gift account: a full account is renewed by
    /// the member's own check-in.
    pub fn in_good_standing(&self, now: u64) -> bool {
        self.status == MemberStatus::Active && now < self.lapse_at
    }

    /// Karma consumed by the member's requests in period `now`.
    pub fn consumed_at(&self, now: u64) -> u128 {
        if self.consumed_period == now {
            self.consumed_in_period
        } else {
            0
        }
    }

    /// Records `karma` consumed by a request in period `now`.
    pub fn consume(&mut self, karma: u128, now: u64) {
        self.consumed_in_period = self.consumed_at(now).saturating_add(karma);
        self.consumed_period = now;
        self.stake.karma = self.stake.karma.saturating_sub(karma);
    }

    /// Lapsed: admitted, and out of standing.
    pub fn lapsed(&self, now: u64) -> bool {
        self.status == MemberStatus::Active && now >= self.lapse_at
    }
}

/// A karma snapshot: a stake (and, on the own track, the delegate) as of the end of `period`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Checkpoint {
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub period: u64,
    pub stake: Stake,
    pub delegate: Option<Address>,
    /// On the own track, the period the member's standing ended or ends (their karma counts for
    /// nothing from then on); on the delegated track, the last period with a bucket of
    /// delegators whose standing ends there (the readers' search for lapses stops there).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub lapse_at: u64,
    /// On the own track, the paid periods whose karma was not credited yet, `[credit_from,
    /// credit_until)`, each worth one pledge of `price`: readers credit those that have arrived
    /// (docs/protocol.md §4.2). Empty on the delegated track.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub credit_from: u64,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub credit_until: u64,
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub price: u64,
}

/// Karma-weighted voting on a request, application or amendment.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Ballot {
    pub society: SocietyId,
    /// The thresholds in force when the ballot opened: it is decided under them, whatever an
    /// amendment enacts meanwhile.
    pub approval_net_bps: u32,
    pub quorum_bps: u32,
    pub amendment_threshold_bps: u32,
    pub benefit_ratio: u32,
    /// Head counts of the votes cast (the admission test counts heads beside karma).
    pub yes_count: u64,
    pub no_count: u64,
    /// Yes-weight by the percent approved (requests for help), sorted by percent: at a share s,
    /// yes-votes below s count as no. At most 100 entries, so finalizing is O(1) in voters.
    pub yes_by_percent: Vec<(u8, u128)>,
    /// Period of filing: weights are karma at the start of this period.
    pub filed_period: u64,
    pub start: PeriodStart,
    pub deadline_ms: u64,
    pub window_ms: u64,
    /// Whether the late-vote extension was used.
    pub extended: bool,
    pub yes: u128,
    pub no: u128,
    /// Who may not vote (the requester or applicant).
    pub excluded: Option<Address>,
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum RequestKind {
    /// `amount` as a lump sum (`installments` = 0), or `amount` each period for `installments`
    /// periods.
    Help {
        amount: u64,
        installments: u32,
        bond: u64,
        evidence_hash: Hash,
        memo: Memo,
    },
    /// An application for admission, with its bond.
    Admission { bond: u64 },
}

/// An approved benefit paid in installments: a stream, funded society-wide each period.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Benefit {
    /// The approved installment (the approved share of what was asked).
    pub per_period: u64,
    /// The first and last periods an installment falls due.
    pub first: u64,
    pub last: u64,
    /// The society's benefit index when the benefit started, and when it ended (`None` while
    /// it runs to `last`).
    pub index_start: u128,
    pub index_end: Option<u128>,
    /// Paid to the payee so far.
    pub claimed: u64,
    /// Whether the benefit waives the requester's dues (`per_period ≥ pledge`), and the
    /// `paid_until` it had before.
    pub dues_waived: bool,
    pub paid_until_before: u64,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum RequestStatus {
    Open,
    /// Approved; being paid.
    Approved,
    /// Approved and paid in full.
    Paid,
    Rejected,
}

/// A request for help or an application for admission.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Request {
    pub requester: Address,
    /// Who receives the money (the requester unless the request named someone else).
    pub payee: Address,
    pub kind: RequestKind,
    pub ballot: Ballot,
    pub status: RequestStatus,
    /// The approved lump sum (the approved share of what was asked; zero until approved and
    /// for benefits and applications).
    pub approved: u64,
    /// Paid from the gift funds and the common fund so far (lump sums).
    pub paid: u64,
    /// Paid by voluntary gifts so far (lump sums).
    pub gifted: u64,
    /// Set when a request for installments is approved.
    pub benefit: Option<Benefit>,
}

impl Request {
    /// What was asked in total (zero for applications).
    pub fn asked(&self) -> u128 {
        match self.kind {
            RequestKind::Help {
                amount,
                installments,
                ..
            } => u128::from(amount) * u128::from(installments.max(1)),
            RequestKind::Admission { .. } => 0,
        }
    }
    /// What a lump sum still needs.
    pub fn need(&self) -> u64 {
        self.approved - self.paid - self.gifted
    }
    /// Whether the request still blocks its requester from filing another: open, a lump sum
    /// not yet paid in full, or a benefit whose last installment is not yet due (at period
    /// `now`).
    pub fn in_progress(&self, now: u64) -> bool {
        match self.status {
            RequestStatus::Open => true,
            RequestStatus::Approved => match &self.benefit {
                Some(b) => b.index_end.is_none() && now <= b.last,
                None => self.need() > 0,
            },
            RequestStatus::Paid | RequestStatus::Rejected => false,
        }
    }
}

/// Where an amendment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AmendmentStatus {
    Open,
    Enacted,
    Rejected,
}

/// A proposed rule change.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Amendment {
    pub proposer: Address,
    pub rules: Rules,
    pub ballot: Ballot,
    pub status: AmendmentStatus,
}

/// A recorded vote.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct VoteRecord {
    pub approve: bool,
    pub weight: u128,
    /// The share approved, 1–100 (100 for no-votes).
    pub percent: u8,
}

/// What a transaction did. Part of receipts; variant order is frozen.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Event {
    FeeBurned {
        payer: Address,
        amount: u64,
    },
    Transferred {
        from: Address,
        to: Address,
        asset: AssetId,
        amount: u64,
    },
    AssetCreated {
        asset: AssetId,
        issuer: Address,
    },
    Minted {
        asset: AssetId,
        to: Address,
        amount: u64,
    },
    Burned {
        asset: AssetId,
        from: Address,
        amount: u64,
    },
    SocietyCreated {
        society: SocietyId,
    },
    Joined {
        society: SocietyId,
        member: Address,
    },
    Applied {
        society: SocietyId,
        applicant: Address,
        application: RequestId,
    },
    Contributed {
        society: SocietyId,
        member: Address,
        amount: u64,
    },
    RequestFiled {
        society: SocietyId,
        request: RequestId,
        amount: u64,
        bond: u64,
    },
    Voted {
        request: RequestId,
        voter: Address,
        approve: bool,
        percent: u8,
        weight: u128,
    },
    VotingExtended {
        request: RequestId,
        deadline_ms: u64,
    },
    Delegated {
        society: SocietyId,
        member: Address,
        to: Option<Address>,
    },
    Gifted {
        request: RequestId,
        from: Address,
        amount: u64,
    },
    Finalized {
        request: RequestId,
        approved: bool,
        /// The approved share in percent (0 when rejected).
        percent: u8,
    },
    Admitted {
        society: SocietyId,
        member: Address,
    },
    BondReturned {
        request: RequestId,
        amount: u64,
    },
    BondForfeited {
        request: RequestId,
        amount: u64,
    },
    SharePaid {
        request: RequestId,
        amount: u64,
    },
    RequestPaid {
        request: RequestId,
    },
    Left {
        society: SocietyId,
        member: Address,
        until_ms: u64,
    },
    Withdrawn {
        society: SocietyId,
        member: Address,
        refund: u64,
        /// The share of what the society owes that stayed behind in the common fund.
        held_back: u64,
    },
    AmendmentProposed {
        society: SocietyId,
        amendment: AmendmentId,
    },
    AmendmentVoted {
        amendment: AmendmentId,
        voter: Address,
        approve: bool,
        weight: u128,
    },
    AmendmentEnacted {
        amendment: AmendmentId,
    },
    AmendmentRejected {
        amendment: AmendmentId,
    },
    /// Dues paid: the member is paid up to (not including) `paid_until`.
    DuesPaid {
        society: SocietyId,
        member: Address,
        paid_until: u64,
    },
    /// A lapsed member came back into standing; their waiting period restarts.
    Reinstated {
        society: SocietyId,
        member: Address,
    },
    Expelled {
        society: SocietyId,
        member: Address,
    },
    PledgeChanged {
        society: SocietyId,
        member: Address,
        pledge: u64,
        from_period: u64,
    },
    /// Money that went to the society's common fund (a forfeited bond, an exit's hold-back, a
    /// balance left without refund).
    ToCommonFund {
        society: SocietyId,
        amount: u64,
    },
    /// Paid to a request from the common fund.
    CommonFundPaid {
        request: RequestId,
        amount: u64,
    },
    BenefitClaimed {
        request: RequestId,
        amount: u64,
    },
    BenefitEnded {
        request: RequestId,
    },
}
