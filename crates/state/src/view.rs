//! Read-only derived views: what a member, society or request looks like at a given block time.
//! Used by tests, the auditor and (later) the API; never by execution.

use crate::exec::get;
use crate::keys;
use crate::pool::KARMA_FRACTION_BITS;
use crate::records::{Book, Member, MemberStatus, Request, Society};
use crate::store::Store;
use kassa_types::{Address, RequestId, SocietyId};

/// A member as of a block time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub status: MemberStatus,
    pub pledge: u64,
    /// Derived gift-account balance.
    pub gift_balance: u64,
    /// Karma in whole base units (fixed-point fraction dropped).
    pub karma: u128,
    /// Karma in fixed point.
    pub karma_raw: u128,
    pub good_standing: bool,
    /// Karma × benefit ratio, capped by the society's maximum request.
    pub max_benefit: u128,
    /// Periods paid for: contributed ÷ pledge.
    pub paid_through_periods: u128,
    pub contributed: u128,
    pub delegate: Option<Address>,
    /// The member's own request still being decided, if any (one at a time).
    pub open_request: Option<kassa_types::RequestId>,
    /// The period the member joined (or was admitted) in.
    pub joined_period: u64,
    /// Block time at which the first period not yet paid for starts: the next pledge is due by
    /// then (it may already have passed; standing allows `grace_periods` behind).
    pub next_due_ms: u64,
}

/// A society and its book as stored.
pub fn society(st: &impl Store, id: SocietyId) -> Option<(Society, Book)> {
    Some((get(st, &keys::society(id))?, get(st, &keys::book(id))?))
}

/// A request as stored.
pub fn request(st: &impl Store, id: RequestId) -> Option<Request> {
    get(st, &keys::request(id))
}

/// A member as of block time `now_ms`.
pub fn member(st: &impl Store, id: SocietyId, who: &Address, now_ms: u64) -> Option<MemberView> {
    let (meta, book) = society(st, id)?;
    let m: Member = get(st, &keys::member(id, who))?;
    let now = meta.period_at(now_ms);
    let h = meta.rules.karma_half_life_periods;
    let (karma_raw, gift_balance) = m.stake.value(&book.pool, now, h);
    let karma = karma_raw >> KARMA_FRACTION_BITS;
    let good_standing = m.in_good_standing(&meta.rules, now, gift_balance);
    Some(MemberView {
        status: m.status,
        pledge: m.pledge,
        gift_balance,
        karma,
        karma_raw,
        good_standing,
        max_benefit: (karma * u128::from(meta.rules.benefit_ratio))
            .min(u128::from(meta.rules.max_request)),
        paid_through_periods: m.contributed / u128::from(m.pledge),
        contributed: m.contributed,
        delegate: m.delegate,
        open_request: m.open_request,
        joined_period: m.joined_period,
        next_due_ms: u64::try_from(
            (u128::from(m.joined_period) + m.contributed / u128::from(m.pledge))
                .saturating_mul(u128::from(meta.period_ms()))
                .saturating_add(u128::from(meta.created_ms)),
        )
        .unwrap_or(u64::MAX),
    })
}
