//! The read side: typed queries over the state, for the API, the CLI, the simulator and tests;
//! never used by execution. Records come back decoded, members with their standing, balance and
//! karma derived at a block time, and lists a page at a time with a key-based cursor (the id of
//! the last item of the previous page), so a page costs what it returns whatever the state's
//! size. Keys are built and parsed only in [`crate::keys`].

use crate::exec::{self, credit_dues_karma, get, karma_at_period_start};
use crate::keys::{self, BallotId, Track};
use crate::pool::KARMA_FRACTION_BITS;
use crate::records::{Amendment, Asset, Book, Member, MemberStatus, Request, Society, VoteRecord};
use crate::store::{Order, ScanStore, Store};
use kassa_types::{Address, AmendmentId, AssetId, RequestId, SocietyId};

/// One page of a list, and whether another follows (ask again with the last item's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub more: bool,
}

impl<T> Page<T> {
    /// The last item, whose id is the cursor of the next page (when there is one).
    pub fn next(&self) -> Option<&T> {
        self.more.then(|| self.items.last()).flatten()
    }
}

/// A page of the entries under `prefix`, each read by `item` (which may skip an entry).
fn list<T>(
    st: &impl ScanStore,
    prefix: &[u8],
    after: Option<Vec<u8>>,
    order: Order,
    limit: usize,
    mut item: impl FnMut(&[u8], &[u8]) -> Option<T>,
) -> Page<T> {
    let mut entries = st.page(prefix, after.as_deref(), order, limit.saturating_add(1));
    let more = entries.len() > limit;
    entries.truncate(limit);
    Page {
        items: entries.iter().filter_map(|(k, v)| item(k, v)).collect(),
        more,
    }
}

/// Decodes a value this code stored.
fn decoded<T: borsh::BorshDeserialize>(v: &[u8]) -> T {
    borsh::from_slice(v).expect("state holds only values this code wrote")
}

/// An account: its next nonce and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountView {
    pub nonce: u64,
    /// Non-zero balances, KAS first, then other assets by id (at most the limit asked for).
    pub balances: Vec<(AssetId, u64)>,
}

/// An account and up to `limit` of its balances.
pub fn account(st: &impl ScanStore, who: &Address, limit: usize) -> AccountView {
    let acc = exec::account(st, who);
    let kas = (acc.kas > 0).then_some((AssetId::NATIVE, acc.kas));
    let others = st
        .page(
            &keys::balances_of(who),
            None,
            Order::Ascending,
            limit.saturating_sub(usize::from(kas.is_some())),
        )
        .into_iter()
        .filter_map(|(k, v)| Some((keys::parse_balance(&k)?.1, decoded(&v))));
    AccountView {
        nonce: acc.nonce,
        balances: kas.into_iter().chain(others).take(limit).collect(),
    }
}

/// An asset.
pub fn asset(st: &impl Store, id: AssetId) -> Option<Asset> {
    get(st, &keys::asset(id))
}

/// Assets by id, after `after`.
pub fn assets(st: &impl ScanStore, after: Option<AssetId>, limit: usize) -> Page<(AssetId, Asset)> {
    list(
        st,
        &[keys::ASSET],
        after.map(keys::asset),
        Order::Ascending,
        limit,
        |k, v| Some((keys::parse_asset(k)?, decoded(v))),
    )
}

/// Societies by id, after `after`, with their books.
pub fn societies(
    st: &impl ScanStore,
    after: Option<SocietyId>,
    limit: usize,
) -> Page<(SocietyId, Society, Book)> {
    list(
        st,
        &[keys::SOCIETY],
        after.map(keys::society),
        Order::Ascending,
        limit,
        |k, v| {
            let id = keys::parse_society(k)?;
            Some((id, decoded(v), get(st, &keys::book(id))?))
        },
    )
}

/// A society's members by address, after `after`, as of block time `now_ms`; `None` for an
/// unknown society.
pub fn members(
    st: &impl ScanStore,
    id: SocietyId,
    after: Option<&Address>,
    limit: usize,
    now_ms: u64,
) -> Option<Page<(Address, MemberView)>> {
    society(st, id)?;
    Some(list(
        st,
        &keys::members_of(id),
        after.map(|a| keys::member(id, a)),
        Order::Ascending,
        limit,
        |k, _| {
            let (_, who) = keys::parse_member(k)?;
            Some((who, member(st, id, &who, now_ms)?))
        },
    ))
}

/// A society's requests and applications, newest first, filed before `before`; `None` for an
/// unknown society. Reads the society's own index, never other societies' requests.
pub fn requests(
    st: &impl ScanStore,
    id: SocietyId,
    before: Option<RequestId>,
    limit: usize,
) -> Option<Page<(RequestId, Request)>> {
    society(st, id)?;
    Some(list(
        st,
        &keys::requests_of(id),
        before.map(|r| keys::society_request(id, r)),
        Order::Descending,
        limit,
        |k, _| {
            let (_, rid) = keys::parse_society_request(k)?;
            Some((rid, request(st, rid)?))
        },
    ))
}

/// The votes on a request or application by voter address, after `after`; `None` for an unknown
/// request.
pub fn votes(
    st: &impl ScanStore,
    id: RequestId,
    after: Option<&Address>,
    limit: usize,
) -> Option<Page<(Address, VoteRecord)>> {
    request(st, id)?;
    let ballot = BallotId::Request(id);
    Some(list(
        st,
        &keys::votes_on(ballot),
        after.map(|a| keys::vote(ballot, a)),
        Order::Ascending,
        limit,
        |k, v| Some((keys::parse_vote(k)?.1, decoded(v))),
    ))
}

/// An amendment.
pub fn amendment(st: &impl Store, id: AmendmentId) -> Option<Amendment> {
    get(st, &keys::amendment(id))
}

/// A store that keeps every version of the versioned keys ([`keys::versioned`]: society books),
/// as the node's database does.
pub trait Versions {
    type Error;
    /// The values under `key` at each of `heights`.
    fn values_at(&self, key: &[u8], heights: &[u64]) -> Result<Vec<Option<Vec<u8>>>, Self::Error>;
}

/// A society's book at each of `heights` (`None` where it did not exist yet).
pub fn books_at<V: Versions>(
    v: &V,
    id: SocietyId,
    heights: &[u64],
) -> Result<Vec<Option<Book>>, V::Error> {
    Ok(v.values_at(&keys::book(id), heights)?
        .into_iter()
        .map(|b| b.map(|b| decoded(&b)))
        .collect())
}

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
    /// Karma of paid periods that have arrived since the member's last transaction, in whole
    /// units: it counts already (votes, totals, the maximum benefit) and is written into the
    /// member's record at their next transaction.
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
    /// From this period on anyone may expel the member (if they are still lapsed and no request
    /// of theirs is in progress).
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
