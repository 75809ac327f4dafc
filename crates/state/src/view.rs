//! Read-only derived views: what a member, society or request looks like at a given block time.
//! Used by tests, the auditor and the API; never by execution.

use crate::exec::{credit_dues_karma, get, karma_at_period_start};
use crate::keys::{self, Track};
use crate::pool::KARMA_FRACTION_BITS;
use crate::records::{Book, Member, MemberStatus, Request, Society};
use crate::store::Store;
use kassa_types::{Address, RequestId, SocietyId};

/// A member as of a block time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub status: MemberStatus,
    /// The pledge in force this period.
    pub pledge: u64,
    /// A pledge change waiting for the next period, if any.
    pub next_pledge: Option<u64>,
    /// Derived gift-account balance.
    pub gift_balance: u64,
    /// Karma in whole base units (fixed-point fraction dropped): zero unless in good standing.
    pub karma: u128,
    /// Karma in fixed point.
    pub karma_raw: u128,
    /// Karma of paid periods that have arrived but are credited only at the member's next own
    /// transaction (a check-in: `Contribute` of 0), in whole units.
    pub karma_pending: u128,
    /// Karma at the start of this period (what weighs the member's votes on requests filed now,
    /// and one of the two limits of the maximum benefit), in whole units.
    pub karma_at_period_start: u128,
    pub good_standing: bool,
    /// Admitted and out of standing: must pay the arrears (or check in with a full account),
    /// which restarts the waiting period.
    pub lapsed: bool,
    /// The first period not paid for, and when it starts (block time, ms).
    pub paid_until: u64,
    pub next_due_ms: u64,
    /// The period standing ends at, and when it starts (block time, ms).
    pub lapse_at: u64,
    pub lapse_at_ms: u64,
    /// From this period on anyone may expel the member (if they are still lapsed).
    pub expellable_at: u64,
    /// The member may file a request from this block time on.
    pub waiting_until_ms: u64,
    /// What the member could ask for now: the smaller of the karma at the start of the period
    /// and the karma now (with pending karma credited) × the benefit ratio, capped by the
    /// society's maximum request; zero while out of standing.
    pub max_benefit: u128,
    pub delegate: Option<Address>,
    /// The member's latest request, and whether it still blocks another.
    pub open_request: Option<RequestId>,
    pub request_in_progress: bool,
    /// Block time of admission (of application, while an applicant).
    pub joined_ms: u64,
}

/// A society and its book as stored.
pub fn society(st: &impl Store, id: SocietyId) -> Option<(Society, Book)> {
    Some((get(st, &keys::society(id))?, get(st, &keys::book(id))?))
}

/// A request as stored.
pub fn request(st: &impl Store, id: RequestId) -> Option<Request> {
    get(st, &keys::request(id))
}

/// The society's total karma now (the sum of its members' in good standing), in fixed point.
pub fn total_karma(meta: &Society, book: &Book, now_ms: u64) -> u128 {
    let now = meta.period_at(now_ms).max(book.rolled);
    book.standing
        .value(&book.pool, now, meta.rules.karma_half_life_periods)
        .0
}

/// A member as of block time `now_ms`.
pub fn member(st: &impl Store, id: SocietyId, who: &Address, now_ms: u64) -> Option<MemberView> {
    let (meta, book) = society(st, id)?;
    let m: Member = get(st, &keys::member(id, who))?;
    let now = meta.period_at(now_ms);
    let h = meta.rules.karma_half_life_periods;
    let rules = &meta.rules;
    let (value, gift_balance) = m.stake.value(&book.pool, now, h);
    let good_standing = m.in_good_standing(now);
    let karma_raw = if good_standing { value } else { 0 };
    let mut credited = m.clone();
    credited.stake.karma = karma_raw;
    if good_standing {
        credit_dues_karma(&mut credited, now, h);
    }
    let karma_now = credited.stake.karma;
    let at_start = if good_standing {
        karma_at_period_start(st, id, who, Track::Own, now, &book.start.pool, h).0
    } else {
        0
    };
    let max_benefit = crate::exec::max_benefit(&credited, at_start, now, rules.benefit_ratio)
        .min(u128::from(rules.max_request));
    let period_start = |p: u64| {
        u64::try_from(
            u128::from(p)
                .saturating_mul(u128::from(meta.period_ms()))
                .saturating_add(u128::from(meta.created_ms)),
        )
        .unwrap_or(u64::MAX)
    };
    let request_in_progress = m
        .open_request
        .and_then(|r| request(st, r))
        .is_some_and(|r| r.in_progress(now));
    Some(MemberView {
        status: m.status.clone(),
        pledge: m.price(now),
        next_pledge: (m.price(now + 1) != m.price(now)).then(|| m.price(now + 1)),
        gift_balance,
        karma: karma_raw >> KARMA_FRACTION_BITS,
        karma_raw,
        karma_pending: (karma_now - karma_raw) >> KARMA_FRACTION_BITS,
        karma_at_period_start: at_start >> KARMA_FRACTION_BITS,
        good_standing,
        lapsed: m.lapsed(now),
        paid_until: m.paid_until,
        next_due_ms: period_start(m.paid_until),
        lapse_at: m.lapse_at,
        lapse_at_ms: period_start(m.lapse_at),
        expellable_at: m.lapse_at.saturating_add(u64::from(rules.lapse_periods)),
        waiting_until_ms: m.waiting_until_ms,
        max_benefit: if good_standing { max_benefit } else { 0 },
        delegate: m.delegate,
        open_request: m.open_request,
        request_in_progress,
        joined_ms: m.joined_ms,
    })
}
