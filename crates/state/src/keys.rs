//! State keys: the one place that defines where everything lives. Keys are public API (proofs and
//! the auditor address values by key). Integers in keys are big-endian so that key order is
//! numeric order; values are Borsh (little-endian).

use kassa_types::{Address, AmendmentId, AssetId, RequestId, SocietyId};

/// Chain parameters ([`crate::records::ChainParams`]).
pub const CHAIN: &[u8] = b"c";
/// Sequence counters and the last block ([`crate::records::Counters`]).
pub const COUNTERS: &[u8] = b"x";
/// Prefix of account records (nonce and KAS balance).
pub const ACCOUNT: u8 = b'a';
/// Prefix of balances of assets other than KAS.
pub const BALANCE: u8 = b'b';
/// Prefix of asset records.
pub const ASSET: u8 = b'A';
/// Prefix of the symbol index.
pub const SYMBOL: u8 = b'Y';
/// Prefix of society records (name, purpose, asset, rules).
pub const SOCIETY: u8 = b'S';
/// Prefix of society books (pool, totals, queue).
pub const BOOK: u8 = b's';
/// Prefix of memberships.
pub const MEMBER: u8 = b'm';
/// Prefix of karma checkpoints.
pub const CHECKPOINT: u8 = b'k';
/// Prefix of checkpoint counts.
pub const CHECKPOINT_COUNT: u8 = b'n';
/// Prefix of delegated stakes.
pub const DELEGATED: u8 = b'g';
/// Prefix of requests.
pub const REQUEST: u8 = b'R';
/// Prefix of payout-queue entries.
pub const QUEUE: u8 = b'q';
/// Prefix of votes.
pub const VOTE: u8 = b'v';
/// Prefix of per-ballot delegation overrides.
pub const OVERRIDE: u8 = b'o';
/// Prefix of amendments.
pub const AMENDMENT: u8 = b'M';
/// Prefix of what lapses and ends at the start of a society's period ([`crate::records::Roll`]).
pub const ROLL: u8 = b'r';
/// Prefix of a society's benefit index at the end of a period in which benefits ran.
pub const BENEFIT_INDEX: u8 = b'i';
/// Prefix of the bitmaps of which periods have a roll record (64 periods a word).
pub const ROLL_INDEX: u8 = b'j';
/// Prefix of the index of a society's requests (value: the requester).
pub const SOCIETY_REQUEST: u8 = b'l';
/// Prefix of the stakes delegated to a member whose standing ends at a period
/// ([`crate::records::Roll`], lapses only).
pub const DELEGATOR_LAPSE: u8 = b'd';
/// Prefix of the bitmaps of which periods have a [`DELEGATOR_LAPSE`] record (64 periods a word).
pub const DELEGATOR_LAPSE_INDEX: u8 = b'D';

/// Which karma history a checkpoint belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Track {
    /// A member's own stake.
    Own = 0,
    /// The sum of the stakes delegated to a member.
    Delegated = 1,
}

/// What is being voted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BallotId {
    Request(RequestId),
    Amendment(AmendmentId),
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![prefix];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub fn account(a: &Address) -> Vec<u8> {
    key(ACCOUNT, &[&a.0])
}
/// An account's balance of a non-native asset (KAS is held in the [`account`] record).
pub fn balance(a: &Address, asset: AssetId) -> Vec<u8> {
    key(BALANCE, &[&a.0, &asset.0.to_be_bytes()])
}
/// The key whose value holds an account's balance of `asset`: the [`account`] record for KAS,
/// the [`balance`] entry otherwise. Read the amount with [`crate::exec::balance_in`].
pub fn holding(a: &Address, asset: AssetId) -> Vec<u8> {
    if asset == AssetId::NATIVE {
        account(a)
    } else {
        balance(a, asset)
    }
}
pub fn asset(id: AssetId) -> Vec<u8> {
    key(ASSET, &[&id.0.to_be_bytes()])
}
pub fn symbol(sym: &str) -> Vec<u8> {
    key(SYMBOL, &[sym.as_bytes()])
}
pub fn society(id: SocietyId) -> Vec<u8> {
    key(SOCIETY, &[&id.0.to_be_bytes()])
}
pub fn book(id: SocietyId) -> Vec<u8> {
    key(BOOK, &[&id.0.to_be_bytes()])
}

/// Whether every version of `key` is kept for history views ([`crate::view::books_at`]): the
/// society books. They are all one length, so none is a prefix of another.
pub fn versioned(key: &[u8]) -> bool {
    key.len() == 9 && key[0] == BOOK
}
pub fn member(s: SocietyId, a: &Address) -> Vec<u8> {
    key(MEMBER, &[&s.0.to_be_bytes(), &a.0])
}
/// Prefix of the stakes delegated to the members of a society.
pub fn delegated_in(s: SocietyId) -> Vec<u8> {
    key(DELEGATED, &[&s.0.to_be_bytes()])
}
/// Prefix of every membership of a society.
pub fn members_of(s: SocietyId) -> Vec<u8> {
    key(MEMBER, &[&s.0.to_be_bytes()])
}
pub fn checkpoint(s: SocietyId, a: &Address, t: Track, index: u64) -> Vec<u8> {
    key(
        CHECKPOINT,
        &[&s.0.to_be_bytes(), &a.0, &[t as u8], &index.to_be_bytes()],
    )
}
pub fn checkpoint_count(s: SocietyId, a: &Address, t: Track) -> Vec<u8> {
    key(CHECKPOINT_COUNT, &[&s.0.to_be_bytes(), &a.0, &[t as u8]])
}
pub fn delegated(s: SocietyId, a: &Address) -> Vec<u8> {
    key(DELEGATED, &[&s.0.to_be_bytes(), &a.0])
}
/// The stakes delegated to `delegate` by members whose standing ends at `period`.
pub fn delegator_lapse(s: SocietyId, delegate: &Address, period: u64) -> Vec<u8> {
    key(
        DELEGATOR_LAPSE,
        &[&s.0.to_be_bytes(), &delegate.0, &period.to_be_bytes()],
    )
}
pub fn delegator_lapse_index(s: SocietyId, delegate: &Address, word: u64) -> Vec<u8> {
    key(
        DELEGATOR_LAPSE_INDEX,
        &[&s.0.to_be_bytes(), &delegate.0, &word.to_be_bytes()],
    )
}
pub fn request(id: RequestId) -> Vec<u8> {
    key(REQUEST, &[&id.0.to_be_bytes()])
}
/// A society's request in the index of its requests (ids grow, so key order is filing order).
pub fn society_request(s: SocietyId, id: RequestId) -> Vec<u8> {
    key(SOCIETY_REQUEST, &[&s.0.to_be_bytes(), &id.0.to_be_bytes()])
}
/// Prefix of the index of a society's requests.
pub fn requests_of(s: SocietyId) -> Vec<u8> {
    key(SOCIETY_REQUEST, &[&s.0.to_be_bytes()])
}
/// Prefix of an account's balances of assets other than KAS.
pub fn balances_of(a: &Address) -> Vec<u8> {
    key(BALANCE, &[&a.0])
}
pub fn queue(s: SocietyId, seq: u64) -> Vec<u8> {
    key(QUEUE, &[&s.0.to_be_bytes(), &seq.to_be_bytes()])
}
fn ballot_bytes(b: BallotId) -> [u8; 9] {
    let (tag, id) = match b {
        BallotId::Request(r) => (0u8, r.0),
        BallotId::Amendment(a) => (1u8, a.0),
    };
    let mut out = [tag; 9];
    out[1..].copy_from_slice(&id.to_be_bytes());
    out
}
pub fn vote(b: BallotId, voter: &Address) -> Vec<u8> {
    key(VOTE, &[&ballot_bytes(b), &voter.0])
}
/// Prefix of every vote on a ballot.
pub fn votes_on(b: BallotId) -> Vec<u8> {
    key(VOTE, &[&ballot_bytes(b)])
}
pub fn vote_override(b: BallotId, delegate: &Address) -> Vec<u8> {
    key(OVERRIDE, &[&ballot_bytes(b), &delegate.0])
}
pub fn amendment(id: AmendmentId) -> Vec<u8> {
    key(AMENDMENT, &[&id.0.to_be_bytes()])
}
pub fn roll(s: SocietyId, period: u64) -> Vec<u8> {
    key(ROLL, &[&s.0.to_be_bytes(), &period.to_be_bytes()])
}
pub fn benefit_index(s: SocietyId, period: u64) -> Vec<u8> {
    key(BENEFIT_INDEX, &[&s.0.to_be_bytes(), &period.to_be_bytes()])
}
pub fn roll_index(s: SocietyId, word: u64) -> Vec<u8> {
    key(ROLL_INDEX, &[&s.0.to_be_bytes(), &word.to_be_bytes()])
}

// ---------------------------------------------------------------------------------------------
// Parsing: what a key names. `None` when the key is not of that kind.

fn u64_at(k: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(at..at + 8)?.try_into().ok()?))
}

fn address_at(k: &[u8], at: usize) -> Option<Address> {
    Some(Address(k.get(at..at + 32)?.try_into().ok()?))
}

/// Whether `k` is `prefix` followed by exactly `len` bytes.
fn shaped(k: &[u8], prefix: u8, len: usize) -> bool {
    k.len() == 1 + len && k[0] == prefix
}

/// The account an [`account`] key names.
pub fn parse_account(k: &[u8]) -> Option<Address> {
    shaped(k, ACCOUNT, 32).then(|| address_at(k, 1))?
}
/// The account and asset a [`balance`] key names.
pub fn parse_balance(k: &[u8]) -> Option<(Address, AssetId)> {
    shaped(k, BALANCE, 40).then(|| Some((address_at(k, 1)?, AssetId(u64_at(k, 33)?))))?
}
/// The asset an [`asset`] key names.
pub fn parse_asset(k: &[u8]) -> Option<AssetId> {
    shaped(k, ASSET, 8).then(|| u64_at(k, 1).map(AssetId))?
}
/// The society a [`society`] key names.
pub fn parse_society(k: &[u8]) -> Option<SocietyId> {
    shaped(k, SOCIETY, 8).then(|| u64_at(k, 1).map(SocietyId))?
}
/// The society and member a [`member`] key names.
pub fn parse_member(k: &[u8]) -> Option<(SocietyId, Address)> {
    shaped(k, MEMBER, 40).then(|| Some((SocietyId(u64_at(k, 1)?), address_at(k, 9)?)))?
}
/// The society and delegate a [`delegated`] key names.
pub fn parse_delegated(k: &[u8]) -> Option<(SocietyId, Address)> {
    shaped(k, DELEGATED, 40).then(|| Some((SocietyId(u64_at(k, 1)?), address_at(k, 9)?)))?
}
/// The request a [`request`] key names.
pub fn parse_request(k: &[u8]) -> Option<RequestId> {
    shaped(k, REQUEST, 8).then(|| u64_at(k, 1).map(RequestId))?
}
/// The society and request a [`society_request`] key names.
pub fn parse_society_request(k: &[u8]) -> Option<(SocietyId, RequestId)> {
    shaped(k, SOCIETY_REQUEST, 16)
        .then(|| Some((SocietyId(u64_at(k, 1)?), RequestId(u64_at(k, 9)?))))?
}
/// The ballot and voter a [`vote`] key names.
pub fn parse_vote(k: &[u8]) -> Option<(BallotId, Address)> {
    if !shaped(k, VOTE, 41) {
        return None;
    }
    let id = u64_at(k, 2)?;
    let ballot = match k[1] {
        0 => BallotId::Request(RequestId(id)),
        1 => BallotId::Amendment(AmendmentId(id)),
        _ => return None,
    };
    Some((ballot, address_at(k, 10)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_back_to_what_built_it_and_nothing_else_does() {
        let a = Address([7; 32]);
        let (s, r) = (SocietyId(3), RequestId(u64::MAX - 1));
        assert_eq!(parse_account(&account(&a)), Some(a));
        assert_eq!(
            parse_balance(&balance(&a, AssetId(9))),
            Some((a, AssetId(9)))
        );
        assert_eq!(parse_asset(&asset(AssetId(4))), Some(AssetId(4)));
        assert_eq!(parse_society(&society(s)), Some(s));
        assert_eq!(parse_member(&member(s, &a)), Some((s, a)));
        assert_eq!(parse_delegated(&delegated(s, &a)), Some((s, a)));
        assert!(delegated(s, &a).starts_with(&delegated_in(s)));
        assert_eq!(parse_request(&request(r)), Some(r));
        assert_eq!(parse_society_request(&society_request(s, r)), Some((s, r)));
        for b in [BallotId::Request(r), BallotId::Amendment(AmendmentId(2))] {
            assert_eq!(parse_vote(&vote(b, &a)), Some((b, a)));
            assert!(vote(b, &a).starts_with(&votes_on(b)));
        }
        assert!(society_request(s, r).starts_with(&requests_of(s)));
        assert!(balance(&a, AssetId(9)).starts_with(&balances_of(&a)));
        // A key of another kind, or cut short, names nothing.
        assert_eq!(parse_society(&book(s)), None);
        assert_eq!(parse_member(&member(s, &a)[..40]), None);
        assert_eq!(parse_delegated(&member(s, &a)), None);
        assert_eq!(parse_request(&society_request(s, r)), None);
        assert_eq!(parse_vote(&vote_override(BallotId::Request(r), &a)), None);
    }
}
