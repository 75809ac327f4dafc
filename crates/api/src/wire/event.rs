//! What a transaction did, as the API shows it: one object per event, tagged by `type`.

use super::{Addr, Amount, karma};
use kassa_state::records::Event as E;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One thing a transaction did. Ids are numbers, amounts and karma decimal strings, accounts
/// bech32 addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    FeeBurned {
        payer: Addr,
        amount: Amount,
    },
    Transferred {
        from: Addr,
        to: Addr,
        asset: u64,
        amount: Amount,
    },
    AssetCreated {
        asset: u64,
        issuer: Addr,
    },
    Minted {
        asset: u64,
        to: Addr,
        amount: Amount,
    },
    Burned {
        asset: u64,
        from: Addr,
        amount: Amount,
    },
    SocietyCreated {
        society: u64,
    },
    Joined {
        society: u64,
        member: Addr,
    },
    Applied {
        society: u64,
        applicant: Addr,
        application: u64,
    },
    Contributed {
        society: u64,
        member: Addr,
        amount: Amount,
    },
    RequestFiled {
        society: u64,
        request: u64,
        amount: Amount,
        bond: Amount,
    },
    Voted {
        request: u64,
        voter: Addr,
        approve: bool,
        percent: u8,
        weight: Amount,
    },
    VotingExtended {
        request: u64,
        deadline_ms: u64,
    },
    Delegated {
        society: u64,
        member: Addr,
        to: Option<Addr>,
    },
    Gifted {
        request: u64,
        from: Addr,
        amount: Amount,
    },
    Finalized {
        request: u64,
        approved: bool,
        percent: u8,
    },
    Admitted {
        society: u64,
        member: Addr,
    },
    BondReturned {
        request: u64,
        amount: Amount,
    },
    BondForfeited {
        request: u64,
        amount: Amount,
    },
    SharePaid {
        request: u64,
        amount: Amount,
    },
    RequestPaid {
        request: u64,
    },
    Left {
        society: u64,
        member: Addr,
        until_ms: u64,
    },
    Withdrawn {
        society: u64,
        member: Addr,
        refund: Amount,
        held_back: Amount,
    },
    AmendmentProposed {
        society: u64,
        amendment: u64,
    },
    AmendmentVoted {
        amendment: u64,
        voter: Addr,
        approve: bool,
        weight: Amount,
    },
    AmendmentEnacted {
        amendment: u64,
    },
    AmendmentRejected {
        amendment: u64,
    },
    DuesPaid {
        society: u64,
        member: Addr,
        paid_until: u64,
    },
    Reinstated {
        society: u64,
        member: Addr,
    },
    Expelled {
        society: u64,
        member: Addr,
    },
    PledgeChanged {
        society: u64,
        member: Addr,
        pledge: Amount,
        from_period: u64,
    },
    ToCommonFund {
        society: u64,
        amount: Amount,
    },
    CommonFundPaid {
        request: u64,
        amount: Amount,
    },
    BenefitClaimed {
        request: u64,
        amount: Amount,
    },
    BenefitEnded {
        request: u64,
    },
}

impl From<&E> for Event {
    fn from(e: &E) -> Event {
        match e {
            E::FeeBurned { payer, amount } => Event::FeeBurned {
                payer: Addr(*payer),
                amount: Amount::from(*amount),
            },
            E::Transferred {
                from,
                to,
                asset,
                amount,
            } => Event::Transferred {
                from: Addr(*from),
                to: Addr(*to),
                asset: asset.0,
                amount: Amount::from(*amount),
            },
            E::AssetCreated { asset, issuer } => Event::AssetCreated {
                asset: asset.0,
                issuer: Addr(*issuer),
            },
            E::Minted { asset, to, amount } => Event::Minted {
                asset: asset.0,
                to: Addr(*to),
                amount: Amount::from(*amount),
            },
            E::Burned {
                asset,
                from,
                amount,
            } => Event::Burned {
                asset: asset.0,
                from: Addr(*from),
                amount: Amount::from(*amount),
            },
            E::SocietyCreated { society } => Event::SocietyCreated { society: society.0 },
            E::Joined { society, member } => Event::Joined {
                society: society.0,
                member: Addr(*member),
            },
            E::Applied {
                society,
                applicant,
                application,
            } => Event::Applied {
                society: society.0,
                applicant: Addr(*applicant),
                application: application.0,
            },
            E::Contributed {
                society,
                member,
                amount,
            } => Event::Contributed {
                society: society.0,
                member: Addr(*member),
                amount: Amount::from(*amount),
            },
            E::RequestFiled {
                society,
                request,
                amount,
                bond,
            } => Event::RequestFiled {
                society: society.0,
                request: request.0,
                amount: Amount::from(*amount),
                bond: Amount::from(*bond),
            },
            E::Voted {
                request,
                voter,
                approve,
                percent,
                weight,
            } => Event::Voted {
                request: request.0,
                voter: Addr(*voter),
                approve: *approve,
                percent: *percent,
                weight: karma(*weight),
            },
            E::VotingExtended {
                request,
                deadline_ms,
            } => Event::VotingExtended {
                request: request.0,
                deadline_ms: *deadline_ms,
            },
            E::Delegated {
                society,
                member,
                to,
            } => Event::Delegated {
                society: society.0,
                member: Addr(*member),
                to: to.map(Addr),
            },
            E::Gifted {
                request,
                from,
                amount,
            } => Event::Gifted {
                request: request.0,
                from: Addr(*from),
                amount: Amount::from(*amount),
            },
            E::Finalized {
                request,
                approved,
                percent,
            } => Event::Finalized {
                request: request.0,
                approved: *approved,
                percent: *percent,
            },
            E::Admitted { society, member } => Event::Admitted {
                society: society.0,
                member: Addr(*member),
            },
            E::BondReturned { request, amount } => Event::BondReturned {
                request: request.0,
                amount: Amount::from(*amount),
            },
            E::BondForfeited { request, amount } => Event::BondForfeited {
                request: request.0,
                amount: Amount::from(*amount),
            },
            E::SharePaid { request, amount } => Event::SharePaid {
                request: request.0,
                amount: Amount::from(*amount),
            },
            E::RequestPaid { request } => Event::RequestPaid { request: request.0 },
            E::Left {
                society,
                member,
                until_ms,
            } => Event::Left {
                society: society.0,
                member: Addr(*member),
                until_ms: *until_ms,
            },
            E::Withdrawn {
                society,
                member,
                refund,
                held_back,
            } => Event::Withdrawn {
                society: society.0,
                member: Addr(*member),
                refund: Amount::from(*refund),
                held_back: Amount::from(*held_back),
            },
            E::AmendmentProposed { society, amendment } => Event::AmendmentProposed {
                society: society.0,
                amendment: amendment.0,
            },
            E::AmendmentVoted {
                amendment,
                voter,
                approve,
                weight,
            } => Event::AmendmentVoted {
                amendment: amendment.0,
                voter: Addr(*voter),
                approve: *approve,
                weight: karma(*weight),
            },
            E::AmendmentEnacted { amendment } => Event::AmendmentEnacted {
                amendment: amendment.0,
            },
            E::AmendmentRejected { amendment } => Event::AmendmentRejected {
                amendment: amendment.0,
            },
            E::DuesPaid {
                society,
                member,
                paid_until,
            } => Event::DuesPaid {
                society: society.0,
                member: Addr(*member),
                paid_until: *paid_until,
            },
            E::Reinstated { society, member } => Event::Reinstated {
                society: society.0,
                member: Addr(*member),
            },
            E::Expelled { society, member } => Event::Expelled {
                society: society.0,
                member: Addr(*member),
            },
            E::PledgeChanged {
                society,
                member,
                pledge,
                from_period,
            } => Event::PledgeChanged {
                society: society.0,
                member: Addr(*member),
                pledge: Amount::from(*pledge),
                from_period: *from_period,
            },
            E::ToCommonFund { society, amount } => Event::ToCommonFund {
                society: society.0,
                amount: Amount::from(*amount),
            },
            E::CommonFundPaid { request, amount } => Event::CommonFundPaid {
                request: request.0,
                amount: Amount::from(*amount),
            },
            E::BenefitClaimed { request, amount } => Event::BenefitClaimed {
                request: request.0,
                amount: Amount::from(*amount),
            },
            E::BenefitEnded { request } => Event::BenefitEnded { request: request.0 },
        }
    }
}
