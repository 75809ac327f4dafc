//! The records stored under [`crate::keys`], and the events transactions emit. Their Borsh
//! encodings are the state format (part of the state root), so field order is frozen.

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
    /// Total karma of the society, decayed to `period`.
    pub total_karma: u128,
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
    pub bonds_forfeited: u128,
}

/// A society's moving parts.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Book {
    /// Admitted members who have not given notice.
    pub member_count: u64,
    /// Gift funds and the sharing state.
    pub pool: Pool,
    /// Bonds locked by open requests.
    pub bonds: u64,
    /// Total karma as of `total_karma_period` (≥ the sum of members' karma; see ARCHITECTURE.md).
    pub total_karma: u128,
    pub total_karma_period: u64,
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

/// A membership. A society may have millions, so its counters (and those of its [`Stake`]) are
/// LEB128 varints ([`varint`]): a typical member's record is about 25 bytes instead of 108.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Member {
    pub status: MemberStatus,
    /// Period of admission (of application, while an applicant).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub joined_period: u64,
    /// Monthly commitment, in base units.
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub pledge: u64,
    pub identity_commitment: Option<Hash>,
    /// Everything ever contributed (for standing: paid-through periods = contributed / pledge).
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub contributed: u128,
    /// Karma and gift account.
    pub stake: Stake,
    pub delegate: Option<Address>,
    pub open_request: Option<RequestId>,
}

impl Member {
    /// Good standing (PROTOCOL §3), in O(1): an admitted member whose paid-through periods
    /// (contributed ÷ pledge) plus the grace periods cover every period since joining — or whose
    /// gift account (holding `gift_balance`) cannot take another pledge under its cap, so that the
    /// member is full rather than behind.
    pub fn in_good_standing(&self, rules: &Rules, now: u64, gift_balance: u64) -> bool {
        if self.status != MemberStatus::Active {
            return false;
        }
        let due = u128::from(now.saturating_sub(self.joined_period)) + 1;
        let paid = self.contributed / u128::from(self.pledge);
        if paid + u128::from(rules.grace_periods) >= due {
            return true;
        }
        let cap = u128::from(self.pledge) * u128::from(rules.gift_cap_pledges);
        u128::from(gift_balance) + u128::from(self.pledge) > cap
    }
}

/// A karma snapshot: a stake (and, on the own track, the delegate) as of the end of `period`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Checkpoint {
    #[borsh(serialize_with = "varint::write", deserialize_with = "varint::read")]
    pub period: u64,
    pub stake: Stake,
    pub delegate: Option<Address>,
}

/// Karma-weighted voting on a request, application or amendment.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Ballot {
    pub society: SocietyId,
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
    Help {
        amount: u64,
        bond: u64,
        evidence_hash: Hash,
        memo: Memo,
    },
    Admission,
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
    pub kind: RequestKind,
    pub ballot: Ballot,
    pub status: RequestStatus,
    /// Paid by automatic shares so far.
    pub paid: u64,
    /// Paid by voluntary gifts so far.
    pub gifted: u64,
}

impl Request {
    /// The approved amount (zero for applications).
    pub fn amount(&self) -> u64 {
        match self.kind {
            RequestKind::Help { amount, .. } => amount,
            RequestKind::Admission => 0,
        }
    }
    /// What the request still needs.
    pub fn need(&self) -> u64 {
        self.amount() - self.paid - self.gifted
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
}
