//! The state machine: a pure, synchronous function of (state, block context, transaction) to
//! (new state, events) or a typed rejection. Block height and time arrive in [`BlockContext`];
//! nothing here reads a clock, draws randomness, uses floats or iterates a hash map.
//!
//! A transaction is checked in phases (docs/protocol.md §2.5):
//! 1. [`check_stateless`]: signature, chain id, fee floor, static field checks. Failure: nothing
//!    changes and the transaction can never be included.
//! 2. Against the signer's account: expiry, nonce, fee balance. Failure: nothing changes.
//! 3. The fee is burned and the nonce advances (in a buffer).
//! 4. The body executes in a second buffer. Failure: that buffer is dropped — the fee and nonce
//!    of step 3 still apply, nothing else does. Success: both buffers are written.

use crate::fixed::{Q64_ONE, decay, decayed_sum, mul_div, mul_div_ceil};
use crate::keys::{self, BallotId, Track};
use crate::pool::{Pool, Stake, half_karma};
use crate::records::*;
use crate::store::{Overlay, Store, StoreMut, apply_writes};
use borsh::{BorshDeserialize, BorshSerialize};
use kassa_types::codec::{self, DecodeError};
use kassa_types::rules::{Admission, BPS, Identity};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{
    Address, AmendmentId, AssetId, Hash, NATIVE_DECIMALS, NATIVE_SYMBOL, Rejection, RequestId,
    SignedTransaction, SocietyId, TX_SIZE_MAX,
};

/// How many approved requests one transaction may advance in a society's payout queue. Each step
/// either exhausts the period's budget (and stops) or completes a request, so this bounds the work
/// of one transaction without ever losing a payment (the next transaction continues).
pub const QUEUE_STEPS_MAX: usize = 16;

type R<T> = Result<T, Rejection>;

/// What consensus tells the state machine about the block being executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub height: u64,
    /// Block time agreed by consensus, milliseconds since the Unix epoch.
    pub time_ms: u64,
    pub proposer: Address,
}

/// The initial state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    pub chain_id: ChainId,
    pub min_fee: u64,
    /// Initial KAS balances; their sum is the fixed supply.
    pub allocations: Vec<(Address, u64)>,
    /// Genesis time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The validators' consensus public keys. The state machine does not use them, but they are
    /// part of what the genesis hash commits to.
    pub validators: Vec<[u8; 32]>,
}

/// Domain separation of the genesis hash.
pub const GENESIS_NAMESPACE: &[u8] = b"KASSA_GENESIS_V2";

impl Genesis {
    /// What every transaction signs and every data directory is checked against:
    /// `sha256(GENESIS_NAMESPACE ‖ encode(chain_id, min_fee, allocations, time_ms, validators))`.
    pub fn hash(&self) -> Hash {
        let encoded = codec::encode(&(
            &self.chain_id,
            self.min_fee,
            &self.allocations,
            self.time_ms,
            &self.validators,
        ));
        Hash::of(&[GENESIS_NAMESPACE, &encoded])
    }
}

/// Why genesis or a block could not be applied. These are bugs of the caller (consensus), not
/// rejections of user transactions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("state already initialised")]
    AlreadyInitialised,
    #[error("state not initialised")]
    NotInitialised,
    #[error("genesis supply overflows u64")]
    SupplyOverflow,
    #[error("block height {got}, expected {expected}")]
    Height { got: u64, expected: u64 },
    #[error("block time {got} ms is before the previous block's {prev} ms")]
    TimeWentBack { got: u64, prev: u64 },
}

/// What a transaction did.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Outcome {
    /// Executed; these are its events (the first is always `FeeBurned`).
    Applied(Vec<Event>),
    /// Executed and failed with this rejection code: the fee was burned and the nonce used, and
    /// nothing else changed.
    Failed(u16),
}

/// The receipt of an included transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Receipt {
    pub tx_hash: Hash,
    pub fee: u64,
    pub outcome: Outcome,
    /// Number of distinct state keys the transaction wrote.
    pub writes: u64,
}

impl Receipt {
    /// The rejection, if the transaction failed.
    pub fn rejection(&self) -> Option<Rejection> {
        match self.outcome {
            Outcome::Applied(_) => None,
            Outcome::Failed(code) => Rejection::from_code(code),
        }
    }
    /// The events, if it succeeded.
    pub fn events(&self) -> &[Event] {
        match &self.outcome {
            Outcome::Applied(e) => e,
            Outcome::Failed(_) => &[],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Typed access.

/// Reads and decodes a state record (state holds only values this code wrote; a decode failure is a bug).
pub fn get<T: BorshDeserialize>(st: &impl Store, key: &[u8]) -> Option<T> {
    st.get(key)
        .map(|bytes| borsh::from_slice(&bytes).expect("state holds only values this code wrote"))
}

fn put<T: BorshSerialize>(st: &mut impl StoreMut, key: Vec<u8>, value: &T) {
    st.put(key, codec::encode(value));
}

/// The chain parameters, if genesis was applied.
pub fn chain_params(st: &impl Store) -> Option<ChainParams> {
    get(st, keys::CHAIN)
}

/// The counters (last block, id sequences).
pub fn counters(st: &impl Store) -> Counters {
    get(st, keys::COUNTERS).unwrap_or_default()
}

/// An account's balance of an asset (KAS is held in the account record, other assets under
/// their own keys).
pub fn balance(st: &impl Store, a: &Address, asset: AssetId) -> u64 {
    balance_in(asset, st.get(&keys::holding(a, asset)).as_deref())
        .expect("state holds only values this code wrote")
}

/// An account's record (the default when nothing is stored).
pub fn account(st: &impl Store, a: &Address) -> Account {
    get(st, &keys::account(a)).unwrap_or_default()
}

/// The balance of `asset` in the value stored under [`keys::holding`] (nothing stored: 0).
pub fn balance_in(asset: AssetId, value: Option<&[u8]>) -> Result<u64, borsh::io::Error> {
    match value {
        None => Ok(0),
        Some(v) if asset == AssetId::NATIVE => borsh::from_slice::<Account>(v).map(|a| a.kas),
        Some(v) => borsh::from_slice(v),
    }
}

/// An account's next nonce.
pub fn nonce(st: &impl Store, a: &Address) -> u64 {
    account(st, a).nonce
}

fn set_account(st: &mut impl StoreMut, a: &Address, account: &Account) {
    if *account == Account::default() {
        st.delete(&keys::account(a));
    } else {
        put(st, keys::account(a), account);
    }
}

fn set_balance(st: &mut impl StoreMut, a: &Address, asset: AssetId, v: u64) {
    if asset == AssetId::NATIVE {
        let mut account = account(st, a);
        account.kas = v;
        set_account(st, a, &account);
    } else if v == 0 {
        st.delete(&keys::balance(a, asset));
    } else {
        put(st, keys::balance(a, asset), &v);
    }
}

fn credit(st: &mut impl StoreMut, a: &Address, asset: AssetId, amount: u64) -> R<()> {
    let v = balance(st, a, asset)
        .checked_add(amount)
        .ok_or(Rejection::Overflow)?;
    set_balance(st, a, asset, v);
    Ok(())
}

fn debit(st: &mut impl StoreMut, a: &Address, asset: AssetId, amount: u64) -> R<()> {
    let v = balance(st, a, asset)
        .checked_sub(amount)
        .ok_or(Rejection::InsufficientBalance)?;
    set_balance(st, a, asset, v);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Genesis and block hooks.

/// Writes the genesis state: chain parameters, KAS and its allocations.
pub fn init_genesis(st: &mut impl StoreMut, g: &Genesis) -> Result<(), BlockError> {
    if chain_params(st).is_some() {
        return Err(BlockError::AlreadyInitialised);
    }
    let mut supply: u64 = 0;
    for (who, amount) in &g.allocations {
        supply = supply
            .checked_add(*amount)
            .ok_or(BlockError::SupplyOverflow)?;
        let v = balance(st, who, AssetId::NATIVE) + amount;
        set_balance(st, who, AssetId::NATIVE, v);
    }
    put(
        st,
        keys::CHAIN.to_vec(),
        &ChainParams {
            chain_id: g.chain_id.clone(),
            min_fee: g.min_fee,
            genesis_hash: g.hash(),
        },
    );
    let kas = Asset {
        symbol: kassa_types::tx::Symbol::new(NATIVE_SYMBOL).expect("short"),
        decimals: NATIVE_DECIMALS,
        max_supply: Some(supply),
        issuer: None,
        supply,
    };
    put(st, keys::asset(AssetId::NATIVE), &kas);
    put(st, keys::symbol(NATIVE_SYMBOL), &AssetId::NATIVE);
    put(
        st,
        keys::COUNTERS.to_vec(),
        &Counters {
            next_asset: 1,
            time_ms: g.time_ms,
            ..Counters::default()
        },
    );
    Ok(())
}

/// Starts a block: checks that height and time move forward and records them. Nothing periodic
/// happens here (society periods roll lazily when a society is next touched), so the cost of a
/// block never depends on the number of societies or members.
pub fn begin_block(st: &mut impl StoreMut, ctx: &BlockContext) -> Result<(), BlockError> {
    chain_params(st).ok_or(BlockError::NotInitialised)?;
    let mut c = counters(st);
    if ctx.height != c.height + 1 {
        return Err(BlockError::Height {
            got: ctx.height,
            expected: c.height + 1,
        });
    }
    if ctx.time_ms < c.time_ms {
        return Err(BlockError::TimeWentBack {
            got: ctx.time_ms,
            prev: c.time_ms,
        });
    }
    c.height = ctx.height;
    c.time_ms = ctx.time_ms;
    put(st, keys::COUNTERS.to_vec(), &c);
    Ok(())
}

/// Ends a block. Deliberately empty of work: see [`begin_block`].
pub fn end_block(_st: &mut impl StoreMut, _ctx: &BlockContext) {}

// ---------------------------------------------------------------------------------------------
// Phase 1: stateless.

/// Decodes a transaction from untrusted bytes.
pub fn decode_tx(bytes: &[u8]) -> R<SignedTransaction> {
    SignedTransaction::decode(bytes).map_err(|e| match e {
        DecodeError::TooLarge { .. } => Rejection::Oversized,
        DecodeError::Malformed(_) => Rejection::Malformed,
    })
}

fn valid_symbol(s: &str) -> bool {
    (2..=kassa_types::SYMBOL_LEN_MAX).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Everything that can be checked without state. `verify_signature` may be `false` only when the
/// caller has already verified it (e.g. by batch verification at mempool admission).
pub fn check_stateless(
    stx: &SignedTransaction,
    params: &ChainParams,
    verify_signature: bool,
) -> R<()> {
    if codec::encoded_len(stx) > TX_SIZE_MAX {
        return Err(Rejection::Oversized);
    }
    if verify_signature && !stx.verify_signature() {
        return Err(Rejection::BadSignature);
    }
    let tx = &stx.tx;
    if tx.chain_id != params.chain_id {
        return Err(Rejection::WrongChain);
    }
    if tx.genesis != params.genesis_hash {
        return Err(Rejection::WrongGenesis);
    }
    if tx.fee < params.min_fee {
        return Err(Rejection::FeeBelowMinimum);
    }
    let positive = |v: u64| {
        if v == 0 {
            Err(Rejection::ZeroAmount)
        } else {
            Ok(())
        }
    };
    match &tx.body {
        Body::Transfer { amount, .. }
        | Body::Mint { amount, .. }
        | Body::Burn { amount, .. }
        | Body::FileRequest { amount, .. }
        | Body::Gift { amount, .. } => positive(*amount),
        // Zero is a check-in.
        Body::Contribute { .. } => Ok(()),
        Body::Join { pledge, .. } | Body::ChangePledge { pledge, .. } => positive(*pledge),
        Body::Vote {
            approve, percent, ..
        } => {
            if (1..=100).contains(percent) && (*approve || *percent == 100) {
                Ok(())
            } else {
                Err(Rejection::InvalidPercent)
            }
        }
        Body::CreateAsset {
            symbol,
            decimals,
            max_supply,
        } => {
            if !valid_symbol(symbol) {
                return Err(Rejection::InvalidSymbol);
            }
            if *decimals > 18 {
                return Err(Rejection::InvalidDecimals);
            }
            max_supply.map_or(Ok(()), positive)
        }
        Body::CreateSociety {
            name,
            rules,
            pledge,
            ..
        } => {
            if name.trim().is_empty() {
                return Err(Rejection::EmptyName);
            }
            rules.validate().map_err(|_| Rejection::InvalidRules)?;
            positive(*pledge)
        }
        Body::ProposeAmendment { rules, .. } => {
            rules.validate().map_err(|_| Rejection::InvalidRules)
        }
        Body::Delegate { .. }
        | Body::Expel { .. }
        | Body::EndBenefit { .. }
        | Body::ClaimBenefit { .. }
        | Body::Finalize { .. }
        | Body::Settle { .. }
        | Body::Leave { .. }
        | Body::Withdraw { .. }
        | Body::VoteAmendment { .. }
        | Body::EnactAmendment { .. } => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Phases 2–4.

/// Applies one transaction. `Err` means it is not includable and nothing changed; `Ok` carries a
/// receipt whose outcome may still be a (fee-charging) failure.
pub fn apply_tx<S: StoreMut>(
    st: &mut S,
    ctx: &BlockContext,
    stx: &SignedTransaction,
    signature_verified: bool,
) -> R<Receipt> {
    let params = chain_params(st).expect("genesis applied before transactions");
    apply_tx_with(st, ctx, &params, stx, stx.hash(), signature_verified)
}

/// [`apply_tx`] with the chain parameters already read (they never change after genesis, so a
/// block reads and decodes them once rather than once per transaction) and the transaction's
/// hash already known (`tx_hash` must be `stx.hash()`: the mempool keeps it, and a peer's block
/// is hashed once for its transaction root), so no transaction is encoded and hashed twice.
pub fn apply_tx_with<S: StoreMut>(
    st: &mut S,
    ctx: &BlockContext,
    params: &ChainParams,
    stx: &SignedTransaction,
    tx_hash: Hash,
    signature_verified: bool,
) -> R<Receipt> {
    debug_assert_eq!(
        tx_hash,
        stx.hash(),
        "the caller's hash is the transaction's"
    );
    check_stateless(stx, params, !signature_verified)?;
    let tx = &stx.tx;
    if ctx.height > tx.expiry_height {
        return Err(Rejection::Expired);
    }
    let mut account = account(st, &tx.signer);
    if tx.nonce < account.nonce {
        return Err(Rejection::NonceTooLow);
    }
    if tx.nonce > account.nonce {
        return Err(Rejection::NonceTooHigh);
    }
    // A key signs first with nonce 0: checking its point then is checking it once.
    if account.nonce == 0 && !kassa_types::crypto::is_valid_public_key(&tx.signer) {
        return Err(Rejection::InvalidSigner);
    }
    if account.kas < tx.fee {
        return Err(Rejection::CannotPayFee);
    }

    // Phase 3: fee and nonce, one write of the account record.
    let mut charged = Overlay::new(&*st);
    let mut kas: Asset = get(&charged, &keys::asset(AssetId::NATIVE)).expect("KAS exists");
    kas.supply -= tx.fee; // burned
    put(&mut charged, keys::asset(AssetId::NATIVE), &kas);
    account.kas -= tx.fee;
    account.nonce += 1;
    set_account(&mut charged, &tx.signer, &account);

    // Phase 4: the body.
    let mut body = Overlay::new(&charged);
    let mut ex = Ex {
        st: &mut body,
        now_ms: ctx.time_ms,
        signer: tx.signer,
        events: Vec::new(),
    };
    let result = ex.execute(&tx.body);
    let events = std::mem::take(&mut ex.events);
    let outcome = match result {
        Ok(()) => {
            let writes = body.into_writes();
            apply_writes(&mut charged, writes);
            let mut all = vec![Event::FeeBurned {
                payer: tx.signer,
                amount: tx.fee,
            }];
            all.extend(events);
            Outcome::Applied(all)
        }
        Err(rejection) => {
            assert!(
                rejection.charges_fee(),
                "execution may only fail with execution-phase codes: {rejection:?}"
            );
            Outcome::Failed(rejection.code())
        }
    };
    let writes = u64::try_from(charged.write_count()).expect("fits");
    let all = charged.into_writes();
    apply_writes(st, all);
    Ok(Receipt {
        tx_hash,
        fee: tx.fee,
        outcome,
        writes,
    })
}

/// Applies a whole block: begin, every transaction, end. Transactions that are not includable
/// are reported as `Err` and change nothing.
pub fn apply_block<S: StoreMut>(
    st: &mut S,
    ctx: &BlockContext,
    txs: &[SignedTransaction],
) -> Result<Vec<R<Receipt>>, BlockError> {
    begin_block(st, ctx)?;
    let out = txs.iter().map(|t| apply_tx(st, ctx, t, false)).collect();
    end_block(st, ctx);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Societies in use.

/// How many steps one transaction may take to bring a society's periods up to date: a step
/// applies one period that has lapses, benefit ends or installments due, or skips 64 periods
/// that have none. A society left untouched for longer catches up over several `Settle`s; until
/// then member transactions are refused with `SocietyCatchingUp`.
pub const ROLL_STEPS_MAX: u64 = 1024;

/// A society loaded for one transaction: its description, its book and the current period.
struct Soc {
    id: SocietyId,
    meta: Society,
    book: Book,
    /// The current period.
    now: u64,
}

impl Soc {
    fn h(&self) -> u32 {
        self.meta.rules.karma_half_life_periods
    }

    fn caught_up(&self) -> R<()> {
        if self.book.rolled == self.now {
            Ok(())
        } else {
            Err(Rejection::SocietyCatchingUp)
        }
    }

    fn balance_of(&self, m: &Member) -> u64 {
        self.book
            .pool
            .value(&m.stake.pos, self.now, self.h())
            .balance
    }

    /// What an exit must leave behind of a balance: its pro-rata share of what the society owes
    /// or may soon owe beyond what its common fund already holds, rounded up (in the society's
    /// favour), at most the balance. Counting the common fund keeps a run of exits from holding
    /// back more in total than is owed.
    fn hold_back(&self, balance: u64) -> u64 {
        self.hold_back_beside(balance, 0)
    }

    /// [`Soc::hold_back`] leaving out `excluded` of what is owed (a gift to a request pays what
    /// that request is owed, so the request's own need is not held back from it).
    fn hold_back_beside(&self, balance: u64, excluded: u128) -> u64 {
        let uncovered = self
            .book
            .owed
            .saturating_sub(excluded)
            .saturating_sub(u128::from(self.book.common));
        if balance == 0 || uncovered == 0 {
            return 0;
        }
        let share = mul_div_ceil(
            u128::from(balance),
            uncovered,
            u128::from(self.book.pool.total),
        )
        .unwrap_or(u128::MAX);
        u64::try_from(share.min(u128::from(balance))).expect("at most the balance")
    }

    /// Whether a passed amendment is waiting to be enacted (members may then exit at once).
    fn amendment_waiting(&self, st: &impl Store, now_ms: u64) -> bool {
        let Some(id) = self.book.amendment else {
            return false;
        };
        let a: Amendment = get(st, &keys::amendment(id)).expect("book points at an amendment");
        a.status == AmendmentStatus::Open
            && now_ms >= a.ballot.deadline_ms
            && amendment_outcome(&a.ballot) > 0
    }
}

/// `total × bps / 10,000`, rounded up: thresholds never round in a voter's favour.
fn threshold(total: u128, bps: u32) -> u128 {
    mul_div_ceil(total, u128::from(bps), u128::from(BPS)).expect("bps <= 10,000")
}

/// The share of a request for help its ballot approves, in whole percent (0: rejected): the
/// largest share `s` at which the yes-votes for `s` or more pass both the net threshold and the
/// quorum, yes-votes for less than `s` counting as no. At most 100 steps, whatever the number of
/// voters.
pub fn request_outcome(b: &Ballot) -> u8 {
    let total = b.start.total_karma;
    let (net, quorum) = (
        threshold(total, b.approval_net_bps),
        threshold(total, b.quorum_bps),
    );
    let mut yes_at: u128 = 0;
    let mut idx = b.yes_by_percent.len();
    for s in (1..=100u8).rev() {
        while idx > 0 && b.yes_by_percent[idx - 1].0 >= s {
            yes_at += b.yes_by_percent[idx - 1].1;
            idx -= 1;
        }
        let no_at = b.no.saturating_add(b.yes.saturating_sub(yes_at));
        if yes_at > 0 && yes_at >= no_at && yes_at - no_at >= net && yes_at >= quorum {
            return s;
        }
    }
    0
}

/// Whether an application passes (100) or not (0): yes from a majority of the members in good
/// standing when it was filed (at least one), and, while the society holds any karma, the same
/// karma test as a request.
pub fn admission_outcome(b: &Ballot) -> u8 {
    let heads =
        b.yes_count >= 1 && u128::from(b.yes_count) * 2 > u128::from(b.start.standing_count);
    let total = b.start.total_karma;
    let karma = total == 0
        || (b.yes > 0
            && b.yes >= b.no
            && b.yes - b.no >= threshold(total, b.approval_net_bps)
            && b.yes >= threshold(total, b.quorum_bps));
    if heads && karma { 100 } else { 0 }
}

/// Whether an amendment passes (100) or not (0): yes ≥ the threshold of total karma, at least
/// one yes.
pub fn amendment_outcome(b: &Ballot) -> u8 {
    let needed = threshold(b.start.total_karma, b.amendment_threshold_bps);
    if b.yes > 0 && b.yes >= needed { 100 } else { 0 }
}

/// The outcome of a request or application ballot.
fn ballot_outcome(req: &Request) -> u8 {
    match req.kind {
        RequestKind::Admission { .. } => admission_outcome(&req.ballot),
        RequestKind::Help { .. } => request_outcome(&req.ballot),
    }
}

/// The karma of `who`'s `track` at the start of `period`: the last checkpoint before that
/// period, valued against the society's pool as it was then (zero if the member's standing had
/// ended by then). Binary search over the member's own checkpoints (Compound's
/// `getPriorVotes`): O(log n) reads, independent of every other member.
pub fn karma_at_period_start(
    st: &impl Store,
    society: SocietyId,
    who: &Address,
    track: Track,
    period: u64,
    pool: &Pool,
    half_life: u32,
) -> (u128, Option<Address>) {
    let n: u64 = get(st, &keys::checkpoint_count(society, who, track)).unwrap_or(0);
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let cp: Checkpoint = get(st, &keys::checkpoint(society, who, track, mid)).expect("counted");
        if cp.period < period {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return (0, None);
    }
    let cp: Checkpoint = get(st, &keys::checkpoint(society, who, track, lo - 1)).expect("counted");
    if cp.lapse_at <= period {
        return (0, cp.delegate);
    }
    (cp.stake.value(pool, period, half_life).0, cp.delegate)
}

/// The maximum benefit before the society's cap: the smaller of the karma at the start of period
/// `now` (`at_start`, less what this period's requests consumed) and the member's karma of the
/// moment, in whole units, times the benefit ratio.
pub fn max_benefit(m: &Member, at_start: u128, now: u64, benefit_ratio: u32) -> u128 {
    let karma = at_start
        .saturating_sub(m.consumed_at(now))
        .min(m.stake.karma);
    (karma >> crate::pool::KARMA_FRACTION_BITS) * u128::from(benefit_ratio)
}

fn pledge_in_range(rules: &kassa_types::Rules, pledge: u64) -> R<()> {
    if (rules.min_pledge..=rules.max_pledge).contains(&pledge) {
        Ok(())
    } else {
        Err(Rejection::PledgeOutOfRange)
    }
}

/// Credits the contribution karma of paid periods that have arrived (up to `now`), one pledge's
/// worth each, decayed from the period it was earned in. The stake must be settled to `now`.
pub fn credit_dues_karma(m: &mut Member, now: u64, h: u32) {
    let end = m.paid_until.min(now + 1);
    if m.karma_from >= end {
        return;
    }
    let segment = |a: u64, b: u64, price: u64| -> u128 {
        if a >= b {
            return 0;
        }
        decay(decayed_sum(half_karma(price), b - a, h), now - (b - 1), h)
    };
    let split = m.pledge_from.clamp(m.karma_from, end);
    let credited =
        segment(m.karma_from, split, m.prev_pledge).saturating_add(segment(split, end, m.pledge));
    m.stake.karma = m.stake.karma.saturating_add(credited);
    m.karma_from = end;
}

/// Pays `amount` toward the dues clock: whole periods at their price advance `paid_until`, the
/// rest waits in `dues_credit` for the next payment.
fn pay_dues(m: &mut Member, amount: u64) {
    let mut credit = u128::from(m.dues_credit) + u128::from(amount);
    if m.paid_until < m.pledge_from {
        let k = (credit / u128::from(m.prev_pledge)).min(u128::from(m.pledge_from - m.paid_until));
        m.paid_until += u64::try_from(k).expect("bounded by a u64 difference");
        credit -= k * u128::from(m.prev_pledge);
    }
    if m.paid_until >= m.pledge_from {
        let k = credit / u128::from(m.pledge);
        m.paid_until = m
            .paid_until
            .saturating_add(u64::try_from(k).unwrap_or(u64::MAX));
        credit -= k * u128::from(m.pledge);
    }
    m.dues_credit = u64::try_from(credit).expect("less than one pledge");
}

/// The signer's execution context.
struct Ex<'s, S: StoreMut> {
    st: &'s mut S,
    now_ms: u64,
    signer: Address,
    events: Vec<Event>,
}

impl<S: StoreMut> Ex<'_, S> {
    fn execute(&mut self, body: &Body) -> R<()> {
        match body {
            Body::Transfer { to, asset, amount } => self.transfer(*to, *asset, *amount),
            Body::CreateAsset {
                symbol,
                decimals,
                max_supply,
            } => self.create_asset(symbol.clone(), *decimals, *max_supply),
            Body::Mint { asset, to, amount } => self.mint(*asset, *to, *amount),
            Body::Burn { asset, amount } => self.burn(*asset, *amount),
            Body::CreateSociety {
                name,
                purpose,
                asset,
                rules,
                pledge,
            } => self.create_society(
                Society {
                    name: name.clone(),
                    purpose: purpose.clone(),
                    asset: *asset,
                    rules: rules.clone(),
                    created_ms: self.now_ms,
                    founder: self.signer,
                },
                *pledge,
            ),
            Body::Join {
                society,
                pledge,
                identity_commitment,
            } => self.join(*society, *pledge, *identity_commitment),
            Body::Contribute { society, amount } => self.contribute(*society, *amount),
            Body::FileRequest {
                society,
                amount,
                evidence_hash,
                memo,
                payee,
                installments,
            } => self.file_request(
                *society,
                *amount,
                *installments,
                *payee,
                *evidence_hash,
                memo.clone(),
            ),
            Body::Vote {
                request,
                approve,
                percent,
            } => self.vote(*request, *approve, *percent),
            Body::Delegate { society, to } => self.delegate(*society, *to),
            Body::Gift { request, amount } => self.gift(*request, *amount),
            Body::Finalize { request } => self.finalize(*request),
            Body::Settle { society } => {
                let soc = self.open(*society)?;
                self.save(&soc);
                Ok(())
            }
            Body::Leave { society } => self.leave(*society),
            Body::Withdraw { society } => self.withdraw(*society),
            Body::ProposeAmendment { society, rules } => {
                self.propose_amendment(*society, rules.clone())
            }
            Body::VoteAmendment { amendment, approve } => self.vote_amendment(*amendment, *approve),
            Body::EnactAmendment { amendment } => self.enact_amendment(*amendment),
            Body::Expel { society, member } => self.expel(*society, *member),
            Body::ChangePledge { society, pledge } => self.change_pledge(*society, *pledge),
            Body::EndBenefit { request } => self.end_benefit(*request),
            Body::ClaimBenefit { request } => self.claim_benefit(*request),
        }
    }

    // -- assets ---------------------------------------------------------------------------------

    fn asset(&self, id: AssetId) -> R<Asset> {
        get(&*self.st, &keys::asset(id)).ok_or(Rejection::UnknownAsset)
    }

    /// Refuses a recipient key anyone could sign for. An account that already holds something
    /// passed this check when it first received, so only new recipients pay for the point check.
    fn check_recipient(&self, to: &Address, asset: AssetId) -> R<()> {
        if self.st.get(&keys::account(to)).is_some()
            || self.st.get(&keys::holding(to, asset)).is_some()
            || kassa_types::crypto::is_valid_public_key(to)
        {
            Ok(())
        } else {
            Err(Rejection::InvalidRecipient)
        }
    }

    fn transfer(&mut self, to: Address, asset: AssetId, amount: u64) -> R<()> {
        self.asset(asset)?;
        self.check_recipient(&to, asset)?;
        debit(self.st, &self.signer, asset, amount)?;
        credit(self.st, &to, asset, amount)?;
        self.events.push(Event::Transferred {
            from: self.signer,
            to,
            asset,
            amount,
        });
        Ok(())
    }

    fn create_asset(
        &mut self,
        symbol: kassa_types::tx::Symbol,
        decimals: u8,
        max_supply: Option<u64>,
    ) -> R<()> {
        if self.st.get(&keys::symbol(&symbol)).is_some() {
            return Err(Rejection::SymbolTaken);
        }
        let mut c = counters(&*self.st);
        let id = AssetId(c.next_asset);
        c.next_asset += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        put(self.st, keys::symbol(&symbol), &id);
        put(
            self.st,
            keys::asset(id),
            &Asset {
                symbol,
                decimals,
                max_supply,
                issuer: Some(self.signer),
                supply: 0,
            },
        );
        self.events.push(Event::AssetCreated {
            asset: id,
            issuer: self.signer,
        });
        Ok(())
    }

    fn mint(&mut self, id: AssetId, to: Address, amount: u64) -> R<()> {
        let mut a = self.asset(id)?;
        if a.issuer != Some(self.signer) {
            return Err(Rejection::NotIssuer);
        }
        self.check_recipient(&to, id)?;
        let supply = a.supply.checked_add(amount).ok_or(Rejection::Overflow)?;
        if a.max_supply.is_some_and(|max| supply > max) {
            return Err(Rejection::MaxSupplyExceeded);
        }
        a.supply = supply;
        put(self.st, keys::asset(id), &a);
        credit(self.st, &to, id, amount)?;
        self.events.push(Event::Minted {
            asset: id,
            to,
            amount,
        });
        Ok(())
    }

    fn burn(&mut self, id: AssetId, amount: u64) -> R<()> {
        let mut a = self.asset(id)?;
        debit(self.st, &self.signer, id, amount)?;
        a.supply -= amount; // a holder's balance is part of the supply
        put(self.st, keys::asset(id), &a);
        self.events.push(Event::Burned {
            asset: id,
            from: self.signer,
            amount,
        });
        Ok(())
    }

    // -- societies --------------------------------------------------------------------------------

    fn create_society(&mut self, meta: Society, pledge: u64) -> R<()> {
        self.asset(meta.asset)?;
        pledge_in_range(&meta.rules, pledge)?;
        let mut c = counters(&*self.st);
        let id = SocietyId(c.next_society);
        c.next_society += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let book = Book {
            member_count: 0,
            standing_count: 0,
            pool: Pool::default(),
            bonds: 0,
            common: 0,
            escrow: 0,
            standing: Stake::default(),
            rolled: 0,
            owed: 0,
            benefits_rate: 0,
            benefit_index: 0,
            start: PeriodStart {
                period: 0,
                pool: Pool::default(),
                total_karma: 0,
                standing_count: 0,
            },
            drawn_in_period: 0,
            retained_in_period: Q64_ONE,
            queue_head: 0,
            queue_tail: 0,
            amendment: None,
            stats: Stats::default(),
        };
        put(self.st, keys::society(id), &meta);
        put(self.st, keys::book(id), &book);
        self.events.push(Event::SocietyCreated { society: id });
        // The creator is the first member, with no privilege: a society always has someone to
        // vote on its first application.
        let mut soc = self.open(id)?;
        let signer = self.signer;
        let m = self.new_member(&soc, pledge, None);
        self.admit(&mut soc, &signer, m);
        self.events.push(Event::Joined {
            society: id,
            member: signer,
        });
        self.save(&soc);
        Ok(())
    }

    /// Loads a society for this transaction: brings its periods up to date (lapses, benefit
    /// ends, installments) and pays what the current period's budget allows to approved requests.
    fn open(&mut self, id: SocietyId) -> R<Soc> {
        let meta: Society = get(&*self.st, &keys::society(id)).ok_or(Rejection::UnknownSociety)?;
        let book: Book = get(&*self.st, &keys::book(id)).expect("every society has a book");
        let now = meta.period_at(self.now_ms);
        let mut soc = Soc {
            id,
            meta,
            book,
            now,
        };
        self.roll(&mut soc);
        if soc.book.rolled == soc.now {
            self.settle_queue(&mut soc);
        }
        Ok(soc)
    }

    fn save(&mut self, soc: &Soc) {
        put(self.st, keys::book(soc.id), &soc.book);
    }

    /// Applies each elapsed period in turn, at most [`ROLL_STEPS_MAX`] of them: the members whose
    /// standing ends there leave the totals, benefits whose last installment is past stop, the
    /// period's start is recorded, and the installments due are funded.
    fn roll(&mut self, soc: &mut Soc) {
        let h = soc.h();
        let mut steps = 0;
        while soc.book.rolled < soc.now && steps < ROLL_STEPS_MAX {
            steps += 1;
            let mut p = soc.book.rolled + 1;
            if soc.book.benefits_rate == 0 {
                // Nothing falls due between records: jump to the next period that has one (or
                // to now), one index word of 64 periods per step.
                let bits = self.roll_bits(soc.id, p / 64) >> (p % 64);
                if bits == 0 {
                    let next_word = (p / 64 + 1) * 64;
                    if next_word <= soc.now {
                        soc.book.rolled = next_word - 1;
                        continue;
                    }
                    p = soc.now;
                } else {
                    p = (p + u64::from(bits.trailing_zeros())).min(soc.now);
                }
            }
            let key = keys::roll(soc.id, p);
            if let Some(r) = get::<Roll>(&*self.st, &key) {
                self.put_roll(key, Roll::default(), false, soc.id, p);
                let b = &mut soc.book;
                if r.lapse_count > 0 {
                    b.standing.settle(&b.pool, p, h);
                    let mut lapsing = r.lapse_stake;
                    lapsing.settle(&b.pool, p, h);
                    b.standing.sub(&lapsing, &b.pool, h);
                    b.standing_count -= r.lapse_count;
                    if b.standing_count == 0 {
                        // No member left: drop the rounding dust of the aggregate.
                        b.standing = Stake::default();
                    }
                }
                b.benefits_rate -= r.benefits_ending;
            }
            let b = &mut soc.book;
            b.start = PeriodStart {
                period: p,
                pool: b.pool.clone(),
                total_karma: b.standing.value(&b.pool, p, h).0,
                standing_count: b.standing_count,
            };
            b.drawn_in_period = 0;
            b.retained_in_period = Q64_ONE;
            b.rolled = p;
            self.fund_installments(soc, p);
        }
    }

    /// Which of the 64 periods of index word `word` have a [`Roll`] record (bit `p % 64`).
    fn roll_bits(&self, society: SocietyId, word: u64) -> u64 {
        get(&*self.st, &keys::roll_index(society, word)).unwrap_or(0)
    }

    /// Funds the installments that fall due at the start of period `p`: from the common fund
    /// first, then from the gift funds within the period's draw budget. A shortfall is not
    /// carried over: every running benefit gets the same funded fraction of its installment.
    fn fund_installments(&mut self, soc: &mut Soc, p: u64) {
        let due = soc.book.benefits_rate;
        if due == 0 {
            return;
        }
        let from_common = due.min(soc.book.common);
        soc.book.common -= from_common;
        soc.book.stats.paid_by_common += u128::from(from_common);
        let from_pool = if soc.meta.rules.auto_share {
            (due - from_common)
                .min(Self::draw_budget(soc))
                .min(Self::fraction_budget(soc))
        } else {
            0
        };
        if from_pool > 0 {
            Self::draw(soc, from_pool, p);
        }
        let funded = from_common + from_pool;
        let b = &mut soc.book;
        b.escrow += funded;
        b.stats.installments_funded += u128::from(funded);
        b.benefit_index += mul_div(u128::from(funded), Q64_ONE, u128::from(due)).expect("≤ 1.0");
        b.owed -= u128::from(due);
        put(self.st, keys::benefit_index(soc.id, p), &b.benefit_index);
    }

    /// What the current period's draws may still take: `max_draw_bps` of the gift funds at its
    /// start, less what was drawn.
    fn draw_budget(soc: &Soc) -> u64 {
        let budget = u128::from(soc.book.start.pool.total)
            * u128::from(soc.meta.rules.max_draw_bps)
            / u128::from(BPS);
        u64::try_from(budget)
            .expect("a share of a u64")
            .saturating_sub(soc.book.drawn_in_period)
    }

    /// Draws `amount` pro rata from every gift account. O(1) in members.
    fn draw(soc: &mut Soc, amount: u64, period: u64) {
        let h = soc.h();
        let b = &mut soc.book;
        let total = u128::from(b.pool.total);
        b.retained_in_period =
            mul_div(b.retained_in_period, total - u128::from(amount), total).expect("shrinks");
        b.pool.draw(amount, period, h);
        b.drawn_in_period += amount;
    }

    /// Pays approved lump sums in approval order: from the common fund first, then from the
    /// period's draw budget. O(1) in members: each draw is one update of the pool.
    fn settle_queue(&mut self, soc: &mut Soc) {
        for _ in 0..QUEUE_STEPS_MAX {
            if soc.book.queue_head == soc.book.queue_tail {
                break;
            }
            let qkey = keys::queue(soc.id, soc.book.queue_head);
            let rid: RequestId =
                get(&*self.st, &qkey).expect("queue entries exist between head and tail");
            let mut req: Request =
                get(&*self.st, &keys::request(rid)).expect("queued requests exist");
            let from_common = req.need().min(soc.book.common);
            if from_common > 0 {
                soc.book.common -= from_common;
                soc.book.stats.paid_by_common += u128::from(from_common);
                self.pay_request(soc, &mut req, from_common);
                self.events.push(Event::CommonFundPaid {
                    request: rid,
                    amount: from_common,
                });
            }
            let need = req.need();
            let amount = if soc.meta.rules.auto_share {
                need.min(Self::draw_budget(soc))
                    .min(Self::fraction_budget(soc))
            } else {
                0
            };
            if amount > 0 {
                Self::draw(soc, amount, soc.now);
                soc.book.stats.paid_by_shares += u128::from(amount);
                self.pay_request(soc, &mut req, amount);
                self.events.push(Event::SharePaid {
                    request: rid,
                    amount,
                });
            }
            let done = req.need() == 0;
            if done {
                if req.status == RequestStatus::Approved {
                    req.status = RequestStatus::Paid;
                    self.events.push(Event::RequestPaid { request: rid });
                }
                self.st.delete(&qkey);
                soc.book.queue_head += 1;
            }
            put(self.st, keys::request(rid), &req);
            if !done {
                break;
            }
        }
    }

    /// Credits `amount` (already taken from a society fund) to a lump sum's payee.
    fn pay_request(&mut self, soc: &mut Soc, req: &mut Request, amount: u64) {
        credit(self.st, &req.payee, soc.meta.asset, amount)
            .expect("a payee's balance is bounded by the supply");
        req.paid += amount;
        soc.book.owed -= u128::from(amount);
    }

    /// The most one more draw may take this period so that no gift account keeps less than
    /// `1 − max_draw_bps` of what it held when the period began.
    fn fraction_budget(soc: &Soc) -> u64 {
        let total = u128::from(soc.book.pool.total);
        let retained = soc.book.retained_in_period;
        let floor =
            Q64_ONE * u128::from(BPS - u64::from(soc.meta.rules.max_draw_bps)) / u128::from(BPS);
        if retained == 0 {
            return 0;
        }
        // retained · (G − D) / G ≥ floor  ⇔  D ≤ G − ⌈G · floor / retained⌉
        let keep = mul_div_ceil(total, floor, retained)
            .expect("floor <= retained")
            .min(total);
        u64::try_from(total - keep).expect("at most the pool total")
    }

    fn member(&self, soc: &Soc, who: &Address) -> R<Member> {
        get(&*self.st, &keys::member(soc.id, who)).ok_or(Rejection::NotMember)
    }

    /// An admitted member who has not given notice (lapsed or not).
    fn active_member(&self, soc: &Soc, who: &Address) -> R<Member> {
        let m = self.member(soc, who)?;
        match m.status {
            MemberStatus::Active => Ok(m),
            MemberStatus::Applicant { .. } => Err(Rejection::NotYetAdmitted),
            MemberStatus::Leaving { .. } => Err(Rejection::MemberLeaving),
        }
    }

    /// An admitted member in good standing.
    fn standing_member(&self, soc: &Soc, who: &Address) -> R<Member> {
        let m = self.active_member(soc, who)?;
        if m.in_good_standing(soc.now) {
            Ok(m)
        } else {
            Err(Rejection::NotInGoodStanding)
        }
    }

    fn save_member(&mut self, soc: &Soc, who: &Address, m: &Member) {
        put(self.st, keys::member(soc.id, who), m);
    }

    /// Whether `who`'s latest request still blocks another.
    fn request_in_progress(&self, soc: &Soc, m: &Member) -> bool {
        m.open_request.is_some_and(|rid| {
            get::<Request>(&*self.st, &keys::request(rid)).is_some_and(|r| r.in_progress(soc.now))
        })
    }

    /// A new member record joining now with `pledge`: nothing paid yet (the current period is
    /// due), the waiting period starting now.
    fn new_member(&self, soc: &Soc, pledge: u64, commitment: Option<Hash>) -> Member {
        let rules = &soc.meta.rules;
        Member {
            status: MemberStatus::Active,
            joined_ms: self.now_ms,
            waiting_until_ms: self.waiting_until(soc),
            pledge,
            prev_pledge: pledge,
            pledge_from: 0,
            paid_until: soc.now,
            dues_credit: 0,
            lapse_at: soc.now + u64::from(rules.grace_periods),
            karma_from: soc.now,
            gift_karma_period: soc.now,
            gift_karma_used: 0,
            consumed_period: soc.now,
            consumed_in_period: 0,
            identity_commitment: commitment,
            stake: Stake {
                karma: 0,
                pos: soc.book.pool.empty_position(soc.now, soc.h()),
            },
            delegate: None,
            open_request: None,
        }
    }

    /// The end of a waiting period starting now.
    fn waiting_until(&self, soc: &Soc) -> u64 {
        self.now_ms
            .saturating_add(u64::from(soc.meta.rules.waiting_periods) * soc.meta.period_ms())
    }

    /// Makes `m` an active member in good standing of `soc`.
    fn admit(&mut self, soc: &mut Soc, who: &Address, mut m: Member) {
        m.status = MemberStatus::Active;
        soc.book.member_count += 1;
        self.enter_standing(soc, &m);
        self.checkpoint(soc, who, Track::Own, &m.stake, None, m.lapse_at);
        self.save_member(soc, who, &m);
    }

    /// Adds a member in good standing (stake settled to now) to the society's totals and to the
    /// bucket of the period their standing ends.
    fn enter_standing(&mut self, soc: &mut Soc, m: &Member) {
        let h = soc.h();
        let b = &mut soc.book;
        b.standing.settle(&b.pool, soc.now, h);
        b.standing.add(&m.stake, &b.pool, h);
        b.standing_count += 1;
        self.move_lapsing(soc, m.lapse_at, &m.stake, true);
    }

    /// Removes a member in good standing (with `stake`, settled to now, as last added) from the
    /// society's totals and from their lapse bucket.
    fn leave_standing(&mut self, soc: &mut Soc, stake: &Stake, lapse_at: u64) {
        let h = soc.h();
        let b = &mut soc.book;
        b.standing.settle(&b.pool, soc.now, h);
        b.standing.sub(stake, &b.pool, h);
        b.standing_count -= 1;
        if b.standing_count == 0 {
            // No member left: drop the rounding dust of the aggregate.
            b.standing = Stake::default();
        }
        self.move_lapsing(soc, lapse_at, stake, false);
    }

    /// A member in good standing changed (`old`, settled to now, as last added, with standing
    /// until `old_lapse`): the totals and the lapse buckets take the new stake instead. One
    /// update of the aggregate, and of the bucket when the lapse period did not move.
    fn replace_standing(&mut self, soc: &mut Soc, old: &Stake, old_lapse: u64, new: &Member) {
        let h = soc.h();
        let b = &mut soc.book;
        b.standing.settle(&b.pool, soc.now, h);
        b.standing.replace(old, &new.stake, &b.pool, h);
        if old_lapse != new.lapse_at {
            self.move_lapsing(soc, old_lapse, old, false);
            self.move_lapsing(soc, new.lapse_at, &new.stake, true);
            return;
        }
        let key = keys::roll(soc.id, old_lapse);
        let mut r: Roll = get(&*self.st, &key).expect("a member in standing is in their bucket");
        r.lapse_stake.settle(&soc.book.pool, soc.now, h);
        r.lapse_stake.replace(old, &new.stake, &soc.book.pool, h);
        put(self.st, key, &r);
    }

    fn move_lapsing(&mut self, soc: &Soc, period: u64, stake: &Stake, add: bool) {
        let key = keys::roll(soc.id, period);
        let mut r: Roll = get(&*self.st, &key).unwrap_or_default();
        let was_empty = r.is_empty();
        r.lapse_stake.settle(&soc.book.pool, soc.now, soc.h());
        if add {
            r.lapse_stake.add(stake, &soc.book.pool, soc.h());
            r.lapse_count += 1;
        } else {
            r.lapse_stake.sub(stake, &soc.book.pool, soc.h());
            r.lapse_count -= 1;
        }
        self.put_roll(key, r, was_empty, soc.id, period);
    }

    /// Writes (or, when empty, deletes) the roll record of `period`, keeping its index bit (which
    /// changes only when the record appears or disappears).
    fn put_roll(
        &mut self,
        key: Vec<u8>,
        r: Roll,
        was_empty: bool,
        society: SocietyId,
        period: u64,
    ) {
        let empty = r.is_empty();
        if empty != was_empty {
            let (word, bit) = (period / 64, 1u64 << (period % 64));
            let bits = self.roll_bits(society, word);
            let new_bits = if empty { bits & !bit } else { bits | bit };
            let index_key = keys::roll_index(society, word);
            if new_bits == 0 {
                self.st.delete(&index_key);
            } else {
                put(self.st, index_key, &new_bits);
            }
        }
        if empty {
            self.st.delete(&key);
        } else {
            put(self.st, key, &r);
        }
    }

    /// Changes a member: `f` sees them with their stake settled to now (and, if they have lapsed,
    /// their karma zeroed) and may change stake, dues and pledge. Contribution karma of arrived
    /// paid periods is credited; the society's totals, the lapse buckets, the delegate's
    /// aggregate and both karma histories are kept in step.
    fn touch(
        &mut self,
        soc: &mut Soc,
        who: &Address,
        m: &mut Member,
        f: impl FnOnce(&mut Member, &mut Soc) -> R<()>,
    ) -> R<()> {
        let h = soc.h();
        let was_standing = m.in_good_standing(soc.now);
        let old_lapse = m.lapse_at;
        m.stake.settle(&soc.book.pool, soc.now, h);
        let old = m.stake.clone();
        if !was_standing {
            m.stake.karma = 0;
        }
        f(m, soc)?;
        let standing = m.in_good_standing(soc.now);
        if standing {
            credit_dues_karma(m, soc.now, h);
        } else {
            m.stake.karma = 0;
        }
        match (was_standing, standing) {
            (true, true) => self.replace_standing(soc, &old, old_lapse, m),
            (true, false) => self.leave_standing(soc, &old, old_lapse),
            (false, true) => self.enter_standing(soc, m),
            (false, false) => {}
        }
        if let Some(d) = m.delegate {
            self.move_delegated(soc, &d, Some(&old), Some(&m.stake));
        }
        self.checkpoint(soc, who, Track::Own, &m.stake, m.delegate, m.lapse_at);
        self.save_member(soc, who, m);
        Ok(())
    }

    /// Replaces `remove` by `add` in the stake delegated to `delegate`.
    fn move_delegated(
        &mut self,
        soc: &Soc,
        delegate: &Address,
        remove: Option<&Stake>,
        add: Option<&Stake>,
    ) {
        let key = keys::delegated(soc.id, delegate);
        let mut agg: Stake = get(&*self.st, &key).unwrap_or_default();
        agg.settle(&soc.book.pool, soc.now, soc.h());
        if let Some(r) = remove {
            agg.sub(r, &soc.book.pool, soc.h());
        }
        if let Some(a) = add {
            agg.add(a, &soc.book.pool, soc.h());
        }
        self.checkpoint(soc, delegate, Track::Delegated, &agg, None, u64::MAX);
        put(self.st, key, &agg);
    }

    /// Records `stake` as the value of `who`'s `track` at the end of the current period
    /// (overwriting an earlier record of the same period: only the period's last state matters).
    fn checkpoint(
        &mut self,
        soc: &Soc,
        who: &Address,
        track: Track,
        stake: &Stake,
        delegate: Option<Address>,
        lapse_at: u64,
    ) {
        let count_key = keys::checkpoint_count(soc.id, who, track);
        let n: u64 = get(&*self.st, &count_key).unwrap_or(0);
        let cp = Checkpoint {
            period: soc.now,
            stake: stake.clone(),
            delegate,
            lapse_at,
        };
        if n > 0 {
            let last: Checkpoint =
                get(&*self.st, &keys::checkpoint(soc.id, who, track, n - 1)).expect("counted");
            if last.period == soc.now {
                put(self.st, keys::checkpoint(soc.id, who, track, n - 1), &cp);
                return;
            }
        }
        put(self.st, keys::checkpoint(soc.id, who, track, n), &cp);
        put(self.st, count_key, &(n + 1));
    }

    // -- membership ----------------------------------------------------------------------------

    fn join(&mut self, id: SocietyId, pledge: u64, commitment: Option<Hash>) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        if self.st.get(&keys::member(id, &self.signer)).is_some() {
            return Err(Rejection::AlreadyMember);
        }
        let rules = soc.meta.rules.clone();
        pledge_in_range(&rules, pledge)?;
        match (rules.identity, commitment) {
            (Identity::Commitment, None) => return Err(Rejection::IdentityCommitmentRequired),
            (Identity::Public, Some(_)) => return Err(Rejection::IdentityCommitmentNotAllowed),
            _ => {}
        }
        let m = self.new_member(&soc, pledge, commitment);
        let signer = self.signer;
        match rules.admission {
            Admission::Open => {
                self.admit(&mut soc, &signer, m);
                self.events.push(Event::Joined {
                    society: id,
                    member: signer,
                });
            }
            Admission::Vote => {
                let bond = self.lock_bond(&mut soc, pledge, rules.application_bond_bps)?;
                let rid = self.new_request(&mut soc, signer, RequestKind::Admission { bond });
                let mut m = m;
                m.status = MemberStatus::Applicant { application: rid };
                self.save_member(&soc, &signer, &m);
                self.events.push(Event::Applied {
                    society: id,
                    applicant: signer,
                    application: rid,
                });
            }
        }
        self.save(&soc);
        Ok(())
    }

    fn contribute(&mut self, id: SocietyId, amount: u64) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        let cap = u128::from(m.price(soc.now)) * u128::from(soc.meta.rules.gift_cap_pledges);
        let balance = soc.balance_of(&m);
        if amount > 0 && u128::from(balance) + u128::from(amount) > cap {
            return Err(Rejection::GiftAccountCapExceeded);
        }
        debit(self.st, &signer, soc.meta.asset, amount)?;
        let was_lapsed = m.lapsed(soc.now);
        let waiting_until = self.waiting_until(&soc);
        let paid_before = m.paid_until;
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            let h = soc.h();
            if amount > 0 {
                soc.book.pool.deposit(amount).ok_or(Rejection::Overflow)?;
                m.stake.deposit(&soc.book.pool, amount, soc.now, h);
                pay_dues(m, amount);
            }
            // A full account owes no dues: the member's own contribution (zero included, a
            // check-in) renews it up to the current period.
            let balance = soc.book.pool.value(&m.stake.pos, soc.now, h).balance;
            if u128::from(balance) + u128::from(m.price(soc.now)) > cap {
                m.paid_until = m.paid_until.max(soc.now + 1);
            }
            if m.paid_until != paid_before {
                m.lapse_at = m.paid_until + u64::from(soc.meta.rules.grace_periods);
            }
            if was_lapsed && m.in_good_standing(soc.now) {
                // Reinstated: arrears earn no karma and the waiting period starts again.
                m.karma_from = m.karma_from.max(soc.now);
                m.waiting_until_ms = waiting_until;
            }
            Ok(())
        })?;
        self.save(&soc);
        if amount > 0 {
            self.events.push(Event::Contributed {
                society: id,
                member: signer,
                amount,
            });
        }
        if m.paid_until != paid_before {
            self.events.push(Event::DuesPaid {
                society: id,
                member: signer,
                paid_until: m.paid_until,
            });
        }
        if was_lapsed && m.in_good_standing(soc.now) {
            self.events.push(Event::Reinstated {
                society: id,
                member: signer,
            });
        }
        Ok(())
    }

    fn change_pledge(&mut self, id: SocietyId, pledge: u64) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.standing_member(&soc, &signer)?;
        let rules = &soc.meta.rules;
        pledge_in_range(rules, pledge)?;
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        // Periods already paid keep their price: a change needs no period beyond this one paid.
        if pledge == m.price(soc.now + 1) || m.paid_until > soc.now + 1 {
            return Err(Rejection::PledgeChangeNotAllowed);
        }
        let raise = pledge > m.price(soc.now);
        let waiting_until = self.waiting_until(&soc);
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            m.prev_pledge = m.price(soc.now);
            m.pledge = pledge;
            m.pledge_from = soc.now + 1;
            if raise {
                // A higher pledge counts for help only after a new waiting period.
                m.waiting_until_ms = m.waiting_until_ms.max(waiting_until);
            }
            Ok(())
        })?;
        self.save(&soc);
        self.events.push(Event::PledgeChanged {
            society: id,
            member: signer,
            pledge,
            from_period: soc.now + 1,
        });
        Ok(())
    }

    fn delegate(&mut self, id: SocietyId, to: Option<Address>) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        if let Some(d) = to {
            if d == signer {
                return Err(Rejection::SelfDelegation);
            }
            self.active_member(&soc, &d)
                .map_err(|_| Rejection::NotMember)?;
        }
        let old_delegate = m.delegate;
        // Settle through touch (with the delegation unchanged), then move the settled stake.
        self.touch(&mut soc, &signer, &mut m, |_, _| Ok(()))?;
        if let Some(old) = old_delegate {
            self.move_delegated(&soc, &old, Some(&m.stake), None);
        }
        if let Some(new) = to {
            self.move_delegated(&soc, &new, None, Some(&m.stake));
        }
        m.delegate = to;
        self.checkpoint(&soc, &signer, Track::Own, &m.stake, to, m.lapse_at);
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::Delegated {
            society: id,
            member: signer,
            to,
        });
        Ok(())
    }

    fn leave(&mut self, id: SocietyId) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let m = self.member(&soc, &signer)?;
        match m.status {
            MemberStatus::Active => {}
            MemberStatus::Applicant { application } => {
                return self.withdraw_application(&mut soc, application);
            }
            MemberStatus::Leaving { .. } => return Err(Rejection::AlreadyLeaving),
        }
        // A member whose own request is still open or being paid stays until it is done:
        // otherwise they could leave and rejoin to hold two.
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        if soc.amendment_waiting(&*self.st, self.now_ms) {
            // Exit before a rule change you did not accept, at once and with a refund.
            return self.exit(&mut soc, signer, m, true);
        }
        let mut m = m;
        // Notice runs a full `notice_periods` from this moment, not to a period boundary, so that
        // leaving cannot dodge requests already in view.
        let until_ms =
            self.now_ms + u64::from(soc.meta.rules.notice_periods) * soc.meta.period_ms();
        self.drop_karma(&mut soc, &signer, &mut m);
        m.status = MemberStatus::Leaving { until_ms };
        soc.book.member_count -= 1;
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::Left {
            society: id,
            member: signer,
            until_ms,
        });
        Ok(())
    }

    /// An applicant withdraws: the bond comes back if nobody has voted yet, else it goes to the
    /// common fund.
    fn withdraw_application(&mut self, soc: &mut Soc, rid: RequestId) -> R<()> {
        let signer = self.signer;
        let mut req: Request = get(&*self.st, &keys::request(rid)).expect("applications exist");
        let RequestKind::Admission { bond } = req.kind else {
            unreachable!("an applicant's request is an application")
        };
        soc.book.bonds -= bond;
        let returned = if req.ballot.yes_count + req.ballot.no_count == 0 {
            credit(self.st, &signer, soc.meta.asset, bond)?;
            self.events.push(Event::BondReturned {
                request: rid,
                amount: bond,
            });
            bond
        } else {
            self.forfeit(soc, rid, bond);
            0
        };
        req.status = RequestStatus::Rejected;
        put(self.st, keys::request(rid), &req);
        self.st.delete(&keys::member(soc.id, &signer));
        self.save(soc);
        self.events.push(Event::Withdrawn {
            society: soc.id,
            member: signer,
            refund: returned,
            held_back: 0,
        });
        Ok(())
    }

    /// Takes a bond of `bps` of `pledge` (rounded up) from the signer's account into the
    /// society's locked bonds. Returns the bond.
    fn lock_bond(&mut self, soc: &mut Soc, pledge: u64, bps: u32) -> R<u64> {
        let bond = mul_div_ceil(u128::from(pledge), u128::from(bps), u128::from(BPS))
            .and_then(|b| u64::try_from(b).ok())
            .ok_or(Rejection::Overflow)?;
        debit(self.st, &self.signer, soc.meta.asset, bond)?;
        soc.book.bonds = soc
            .book
            .bonds
            .checked_add(bond)
            .ok_or(Rejection::Overflow)?;
        Ok(bond)
    }

    /// A forfeited bond goes to the common fund (never to gift accounts: voting no earns nobody
    /// money).
    fn forfeit(&mut self, soc: &mut Soc, rid: RequestId, bond: u64) {
        soc.book.common += bond;
        soc.book.stats.bonds_forfeited += u128::from(bond);
        self.events.push(Event::BondForfeited {
            request: rid,
            amount: bond,
        });
        self.events.push(Event::ToCommonFund {
            society: soc.id,
            amount: bond,
        });
    }

    /// Karma is dropped on leaving: the member leaves the totals and their delegate's aggregate;
    /// the gift account stays and keeps sharing.
    fn drop_karma(&mut self, soc: &mut Soc, who: &Address, m: &mut Member) {
        let was_standing = m.in_good_standing(soc.now);
        m.stake.settle(&soc.book.pool, soc.now, soc.h());
        if was_standing {
            let stake = m.stake.clone();
            self.leave_standing(soc, &stake, m.lapse_at);
        }
        if let Some(d) = m.delegate.take() {
            self.move_delegated(soc, &d, Some(&m.stake), None);
        }
        m.stake.karma = 0;
        self.checkpoint(soc, who, Track::Own, &m.stake, None, 0);
    }

    fn withdraw(&mut self, id: SocietyId) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let m = self.member(&soc, &self.signer)?;
        let waiting = soc.amendment_waiting(&*self.st, self.now_ms);
        match m.status {
            MemberStatus::Leaving { until_ms } if self.now_ms >= until_ms || waiting => {}
            MemberStatus::Leaving { .. } => return Err(Rejection::NoticeNotOver),
            MemberStatus::Active => return Err(Rejection::NotLeaving),
            MemberStatus::Applicant { .. } => return Err(Rejection::NotYetAdmitted),
        }
        let refund = soc.meta.rules.exit_refund || waiting;
        self.exit(&mut soc, self.signer, m, refund)
    }

    fn expel(&mut self, id: SocietyId, who: Address) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let m = self.member(&soc, &who)?;
        let lapse = u64::from(soc.meta.rules.lapse_periods);
        if !m.lapsed(soc.now) || soc.now < m.lapse_at.saturating_add(lapse) {
            return Err(Rejection::NotExpellable);
        }
        soc.book.stats.members_expelled += 1;
        self.events.push(Event::Expelled {
            society: id,
            member: who,
        });
        let refund = soc.meta.rules.exit_refund;
        self.exit(&mut soc, who, m, refund)
    }

    /// Removes `who` from the society. Their share of what the society owes or may soon owe stays
    /// behind in the common fund; with `refund` the rest of the gift account is paid out, without
    /// it the rest goes to the common fund too.
    fn exit(&mut self, soc: &mut Soc, who: Address, mut m: Member, refund: bool) -> R<()> {
        if m.status == MemberStatus::Active {
            self.drop_karma(soc, &who, &mut m);
            soc.book.member_count -= 1;
        } else {
            m.stake.settle(&soc.book.pool, soc.now, soc.h());
        }
        let balance = soc.balance_of(&m);
        let held_back = soc.hold_back(balance);
        let refunded = if refund { balance - held_back } else { 0 };
        soc.book.pool.take(balance);
        let to_common = balance - refunded;
        if to_common > 0 {
            soc.book.common += to_common;
            self.events.push(Event::ToCommonFund {
                society: soc.id,
                amount: to_common,
            });
        }
        if refunded > 0 {
            credit(self.st, &who, soc.meta.asset, refunded)?;
        }
        self.checkpoint(soc, &who, Track::Own, &Stake::default(), None, 0);
        self.st.delete(&keys::member(soc.id, &who));
        self.save(soc);
        self.events.push(Event::Withdrawn {
            society: soc.id,
            member: who,
            refund: refunded,
            held_back,
        });
        Ok(())
    }

    // -- requests ------------------------------------------------------------------------------

    /// A ballot opening now, under the rules in force now.
    fn new_ballot(&self, soc: &Soc, excluded: Option<Address>) -> Ballot {
        let rules = &soc.meta.rules;
        let window_ms = rules.voting_window_secs * 1000;
        Ballot {
            society: soc.id,
            approval_net_bps: rules.approval_net_bps,
            quorum_bps: rules.quorum_bps,
            amendment_threshold_bps: rules.amendment_threshold_bps,
            benefit_ratio: rules.benefit_ratio,
            yes_count: 0,
            no_count: 0,
            yes_by_percent: Vec::new(),
            filed_period: soc.now,
            // Weights and thresholds are measured at the start of the period; the head count
            // of an admission counts the members in good standing at filing.
            start: PeriodStart {
                standing_count: soc.book.standing_count,
                ..soc.book.start.clone()
            },
            deadline_ms: self.now_ms + window_ms,
            window_ms,
            extended: false,
            yes: 0,
            no: 0,
            excluded,
        }
    }

    fn new_request(&mut self, soc: &mut Soc, payee: Address, kind: RequestKind) -> RequestId {
        let mut c = counters(&*self.st);
        let id = RequestId(c.next_request);
        c.next_request += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let req = Request {
            requester: self.signer,
            payee,
            kind,
            ballot: self.new_ballot(soc, Some(self.signer)),
            status: RequestStatus::Open,
            approved: 0,
            paid: 0,
            gifted: 0,
            benefit: None,
        };
        // The requester cannot vote on their own request, not even through a delegate: their
        // weight is taken out of their delegate's power on this ballot from the start.
        let (own, delegate) = self.weight_at(soc, &self.signer, Track::Own, &req.ballot);
        if let Some(d) = delegate.filter(|_| own > 0) {
            put(
                self.st,
                keys::vote_override(BallotId::Request(id), &d),
                &own,
            );
        }
        put(self.st, keys::request(id), &req);
        id
    }

    #[allow(clippy::too_many_arguments)]
    fn file_request(
        &mut self,
        id: SocietyId,
        amount: u64,
        installments: u32,
        payee: Option<Address>,
        evidence_hash: Hash,
        memo: kassa_types::tx::Memo,
    ) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        let mut m = self.standing_member(&soc, &signer)?;
        let rules = soc.meta.rules.clone();
        if self.now_ms < m.waiting_until_ms {
            return Err(Rejection::InWaitingPeriod);
        }
        if self.request_in_progress(&soc, &m) {
            return Err(Rejection::OpenRequestExists);
        }
        if soc.book.standing_count < u64::from(rules.min_members) {
            return Err(Rejection::TooFewMembers);
        }
        if installments > rules.max_installments {
            return Err(Rejection::TooManyInstallments);
        }
        let asked = u128::from(amount) * u128::from(installments.max(1));
        if asked > u128::from(rules.max_request) {
            return Err(Rejection::ExceedsMaxRequest);
        }
        let payee = payee.unwrap_or(signer);
        if payee != signer {
            self.check_recipient(&payee, soc.meta.asset)?;
        }
        // The maximum benefit counts the smaller of the karma at the start of this period (the
        // checkpoint that weighs the votes) and the karma of the moment.
        let (at_start, _) = karma_at_period_start(
            &*self.st,
            soc.id,
            &signer,
            Track::Own,
            soc.now,
            &soc.book.start.pool,
            soc.h(),
        );
        let pledge = m.price(soc.now);
        let bond = self.lock_bond(&mut soc, pledge, rules.bond_bps)?;
        let filing_bps = u128::from(rules.filing_karma_bps);
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            // Arrived periods' karma counts as of now, as the member's view shows it.
            credit_dues_karma(m, soc.now, soc.h());
            if asked > max_benefit(m, at_start, soc.now, rules.benefit_ratio) {
                return Err(Rejection::ExceedsMaximumBenefit);
            }
            let consumed =
                mul_div(m.stake.karma, filing_bps, u128::from(BPS)).expect("bps <= 10,000");
            m.consume(consumed, soc.now);
            Ok(())
        })?;
        soc.book.owed += asked;
        let rid = self.new_request(
            &mut soc,
            payee,
            RequestKind::Help {
                amount,
                installments,
                bond,
                evidence_hash,
                memo,
            },
        );
        m.open_request = Some(rid);
        soc.book.stats.requests_filed += 1;
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::RequestFiled {
            society: id,
            request: rid,
            amount,
            bond,
        });
        Ok(())
    }

    /// Loads a request and opens its society (which may pay it from the queue), then reloads it.
    fn open_request(&mut self, rid: RequestId) -> R<(Soc, Request)> {
        let req: Request = get(&*self.st, &keys::request(rid)).ok_or(Rejection::UnknownRequest)?;
        let soc = self.open(req.ballot.society)?;
        soc.caught_up()?;
        let req = get(&*self.st, &keys::request(rid)).expect("just read");
        Ok((soc, req))
    }

    fn vote(&mut self, rid: RequestId, approve: bool, percent: u8) -> R<()> {
        let (soc, mut req) = self.open_request(rid)?;
        if req.status != RequestStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        let (outcome, percent, heads_only): (fn(&Ballot) -> u8, u8, bool) = match req.kind {
            RequestKind::Admission { .. } => (admission_outcome, 100, true),
            RequestKind::Help { .. } => (request_outcome, percent, false),
        };
        let weight = self.cast(
            &soc,
            &mut req.ballot,
            BallotId::Request(rid),
            approve,
            percent,
            heads_only,
            outcome,
        )?;
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        self.events.push(Event::Voted {
            request: rid,
            voter: self.signer,
            approve,
            percent,
            weight,
        });
        Ok(())
    }

    /// The karma of `who`'s `track` at the start of the ballot's filing period.
    fn weight_at(
        &self,
        soc: &Soc,
        who: &Address,
        track: Track,
        b: &Ballot,
    ) -> (u128, Option<Address>) {
        karma_at_period_start(
            &*self.st,
            soc.id,
            who,
            track,
            b.filed_period,
            &b.start.pool,
            soc.h(),
        )
    }

    /// Records the signer's vote (new or changed) on a ballot, with delegation and the late-vote
    /// extension. Returns the vote's weight. With `heads_only` (applications) a member without
    /// karma still counts as a head.
    #[allow(clippy::too_many_arguments)]
    fn cast(
        &mut self,
        soc: &Soc,
        b: &mut Ballot,
        bid: BallotId,
        approve: bool,
        percent: u8,
        heads_only: bool,
        outcome: fn(&Ballot) -> u8,
    ) -> R<u128> {
        let signer = self.signer;
        if self.now_ms >= b.deadline_ms {
            return Err(Rejection::VotingClosed);
        }
        self.standing_member(soc, &signer)?;
        if b.excluded == Some(signer) {
            return Err(Rejection::CannotVoteOnOwnRequest);
        }
        let before = outcome(b);
        let vkey = keys::vote(bid, &signer);
        let weight = match get::<VoteRecord>(&*self.st, &vkey) {
            Some(mut v) => {
                tally(b, v.approve, v.percent, v.weight, false);
                tally(b, approve, percent, v.weight, true);
                v.approve = approve;
                v.percent = percent;
                put(self.st, vkey, &v);
                v.weight
            }
            None => {
                let (own, own_delegate) = self.weight_at(soc, &signer, Track::Own, b);
                let (delegated, _) = self.weight_at(soc, &signer, Track::Delegated, b);
                let okey = keys::vote_override(bid, &signer);
                let overridden: u128 = get(&*self.st, &okey).unwrap_or(0);
                let weight = own + delegated.saturating_sub(overridden);
                if weight == 0 && !heads_only {
                    return Err(Rejection::NoVotingWeight);
                }
                // Voting directly overrides one's delegation on this ballot.
                if let Some(d) = own_delegate.filter(|_| own > 0) {
                    let dkey = keys::vote_override(bid, &d);
                    let prior: u128 = get(&*self.st, &dkey).unwrap_or(0);
                    put(self.st, dkey, &(prior + own));
                    let dvkey = keys::vote(bid, &d);
                    if let Some(mut dv) = get::<VoteRecord>(&*self.st, &dvkey) {
                        let removed = own.min(dv.weight);
                        tally_weight(b, dv.approve, dv.percent, removed, false);
                        dv.weight -= removed;
                        put(self.st, dvkey, &dv);
                    }
                }
                tally(b, approve, percent, weight, true);
                put(
                    self.st,
                    vkey,
                    &VoteRecord {
                        approve,
                        weight,
                        percent,
                    },
                );
                weight
            }
        };
        // Late-vote extension: a vote that changes the outcome (or the approved share) in the
        // last tenth of the window extends it, once, by a tenth.
        let tenth = b.window_ms / 10;
        if !b.extended && outcome(b) != before && self.now_ms >= b.deadline_ms - tenth {
            b.deadline_ms += tenth;
            b.extended = true;
            if let BallotId::Request(request) = bid {
                self.events.push(Event::VotingExtended {
                    request,
                    deadline_ms: b.deadline_ms,
                });
            }
        }
        Ok(weight)
    }

    fn gift(&mut self, rid: RequestId, amount: u64) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        if matches!(req.kind, RequestKind::Admission { .. }) {
            return Err(Rejection::NotAHelpRequest);
        }
        if req.benefit.is_some() {
            return Err(Rejection::BenefitTakesNoGifts);
        }
        match req.status {
            RequestStatus::Approved => {}
            RequestStatus::Paid => return Err(Rejection::RequestFullyFunded),
            RequestStatus::Open | RequestStatus::Rejected => {
                return Err(Rejection::RequestNotApproved);
            }
        }
        let signer = self.signer;
        if req.requester == signer {
            return Err(Rejection::CannotGiftToOwnRequest);
        }
        if req.payee == signer {
            return Err(Rejection::CannotGiftToOwnPayment);
        }
        let mut m = self.member(&soc, &signer)?;
        if matches!(m.status, MemberStatus::Applicant { .. }) {
            return Err(Rejection::NotYetAdmitted);
        }
        if amount > req.need() {
            return Err(Rejection::GiftExceedsNeed);
        }
        let balance = soc.balance_of(&m);
        if amount > balance {
            return Err(Rejection::InsufficientGiftBalance);
        }
        if amount > balance - soc.hold_back_beside(balance, u128::from(req.need())) {
            return Err(Rejection::GiftBelowHoldBack);
        }
        self.touch(&mut soc, &signer, &mut m, |m, soc| {
            soc.book.pool.take(amount);
            let h = soc.h();
            m.stake.withdraw(&soc.book.pool, amount, soc.now, h);
            // Gift karma: at most one pledge's worth per period.
            if m.gift_karma_period != soc.now {
                m.gift_karma_period = soc.now;
                m.gift_karma_used = 0;
            }
            let karma = half_karma(amount)
                .min(half_karma(m.price(soc.now)).saturating_sub(m.gift_karma_used));
            m.gift_karma_used += karma;
            m.stake.karma = m.stake.karma.saturating_add(karma);
            Ok(())
        })?;
        credit(self.st, &req.payee, soc.meta.asset, amount)?;
        req.gifted += amount;
        soc.book.owed -= u128::from(amount);
        soc.book.stats.paid_by_gifts += u128::from(amount);
        self.events.push(Event::Gifted {
            request: rid,
            from: signer,
            amount,
        });
        if req.need() == 0 {
            req.status = RequestStatus::Paid;
            self.events.push(Event::RequestPaid { request: rid });
        }
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        Ok(())
    }

    fn finalize(&mut self, rid: RequestId) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        if req.status != RequestStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        if self.now_ms < req.ballot.deadline_ms {
            return Err(Rejection::VotingStillOpen);
        }
        let share = ballot_outcome(&req);
        let approved = share > 0;
        self.events.push(Event::Finalized {
            request: rid,
            approved,
            percent: share,
        });
        let requester = req.requester;
        match req.kind.clone() {
            RequestKind::Admission { bond } => {
                soc.book.bonds -= bond;
                let m = self
                    .member(&soc, &requester)
                    .expect("applicants stay until decided");
                if approved {
                    credit(self.st, &requester, soc.meta.asset, bond)?;
                    self.events.push(Event::BondReturned {
                        request: rid,
                        amount: bond,
                    });
                    let mut fresh = self.new_member(&soc, m.pledge, m.identity_commitment);
                    fresh.joined_ms = self.now_ms;
                    self.admit(&mut soc, &requester, fresh);
                    self.events.push(Event::Admitted {
                        society: soc.id,
                        member: requester,
                    });
                    req.status = RequestStatus::Approved;
                } else {
                    self.forfeit(&mut soc, rid, bond);
                    self.st.delete(&keys::member(soc.id, &requester));
                    req.status = RequestStatus::Rejected;
                }
            }
            RequestKind::Help {
                amount,
                installments,
                bond,
                ..
            } => {
                soc.book.bonds -= bond;
                let asked = req.asked();
                if approved {
                    self.approve_help(&mut soc, &mut req, rid, share, amount, installments, bond)?;
                } else {
                    soc.book.owed -= asked;
                    soc.book.stats.requests_rejected += 1;
                    self.forfeit(&mut soc, rid, bond);
                    req.status = RequestStatus::Rejected;
                }
            }
        }
        put(self.st, keys::request(rid), &req);
        self.settle_queue(&mut soc);
        self.save(&soc);
        Ok(())
    }

    /// An approved request for help: the bond comes back, the approved share is set, the
    /// requester's karma is consumed, and the lump sum joins the payout queue or the benefit
    /// starts running.
    #[allow(clippy::too_many_arguments)]
    fn approve_help(
        &mut self,
        soc: &mut Soc,
        req: &mut Request,
        rid: RequestId,
        share: u8,
        amount: u64,
        installments: u32,
        bond: u64,
    ) -> R<()> {
        let requester = req.requester;
        credit(self.st, &requester, soc.meta.asset, bond)?;
        self.events.push(Event::BondReturned {
            request: rid,
            amount: bond,
        });
        soc.book.stats.requests_approved += 1;
        req.status = RequestStatus::Approved;
        let unit = u64::try_from(u128::from(amount) * u128::from(share) / 100).expect("≤ amount");
        let approved_total = u128::from(unit) * u128::from(installments.max(1));
        soc.book.owed -= req.asked() - approved_total;
        // Help consumes karma: the approved sum ÷ the benefit ratio (rounded up).
        let ratio = u128::from(req.ballot.benefit_ratio.max(1));
        let consumed = approved_total.div_ceil(ratio) << crate::pool::KARMA_FRACTION_BITS;
        let member = get::<Member>(&*self.st, &keys::member(soc.id, &requester))
            .filter(|m| m.status == MemberStatus::Active);
        if installments == 0 {
            req.approved = unit;
            if unit == 0 {
                req.status = RequestStatus::Paid;
            } else {
                put(self.st, keys::queue(soc.id, soc.book.queue_tail), &rid);
                soc.book.queue_tail += 1;
            }
            if let Some(mut m) = member {
                self.touch(soc, &requester, &mut m, |m, soc| {
                    m.consume(consumed, soc.now);
                    Ok(())
                })?;
            }
            return Ok(());
        }
        if unit == 0 {
            req.status = RequestStatus::Paid;
            return Ok(());
        }
        let first = soc.now + 1;
        let last = soc.now + u64::from(installments);
        let pledge = member.as_ref().map_or(u64::MAX, |m| m.price(soc.now));
        let dues_waived = unit >= pledge;
        req.benefit = Some(Benefit {
            per_period: unit,
            first,
            last,
            index_start: soc.book.benefit_index,
            index_end: None,
            claimed: 0,
            dues_waived,
            paid_until_before: member.as_ref().map_or(0, |m| m.paid_until),
        });
        soc.book.benefits_rate += unit;
        let key = keys::roll(soc.id, last + 1);
        let mut r: Roll = get(&*self.st, &key).unwrap_or_default();
        let was_empty = r.is_empty();
        r.benefits_ending += unit;
        self.put_roll(key, r, was_empty, soc.id, last + 1);
        if let Some(mut m) = member {
            let grace = u64::from(soc.meta.rules.grace_periods);
            self.touch(soc, &requester, &mut m, |m, soc| {
                m.consume(consumed, soc.now);
                if dues_waived {
                    // A benefit of at least the pledge is a dues holiday while it runs; the
                    // waived periods earn no karma.
                    m.paid_until = m.paid_until.max(last + 1);
                    m.karma_from = m.karma_from.max(m.paid_until);
                    m.lapse_at = m.paid_until + grace;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The funded, unpaid installments of a benefit.
    fn claimable(&self, soc: &Soc, b: &Benefit) -> u64 {
        let index_end = match b.index_end {
            Some(i) => i,
            None if soc.book.rolled >= b.last => {
                get(&*self.st, &keys::benefit_index(soc.id, b.last)).expect("written while it ran")
            }
            None => soc.book.benefit_index,
        };
        let funded = mul_div(u128::from(b.per_period), index_end - b.index_start, Q64_ONE)
            .expect("at most the benefit");
        u64::try_from(funded)
            .expect("at most the benefit")
            .saturating_sub(b.claimed)
    }

    /// Pays a benefit's payee what is funded and unpaid. Returns the amount.
    fn claim_benefit(&mut self, rid: RequestId) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        let Some(mut b) = req.benefit.clone() else {
            return Err(Rejection::NotABenefit);
        };
        let amount = self.claimable(&soc, &b);
        if amount == 0 {
            return Err(Rejection::NothingToClaim);
        }
        self.pay_benefit(&mut soc, &mut req, &mut b, rid, amount)?;
        if b.index_end.is_some() || soc.book.rolled >= b.last {
            req.status = RequestStatus::Paid;
        }
        req.benefit = Some(b);
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        Ok(())
    }

    fn pay_benefit(
        &mut self,
        soc: &mut Soc,
        req: &mut Request,
        b: &mut Benefit,
        rid: RequestId,
        amount: u64,
    ) -> R<()> {
        soc.book.escrow = soc
            .book
            .escrow
            .checked_sub(amount)
            .expect("claims never exceed what was funded");
        credit(self.st, &req.payee, soc.meta.asset, amount)?;
        b.claimed += amount;
        self.events.push(Event::BenefitClaimed {
            request: rid,
            amount,
        });
        Ok(())
    }

    fn end_benefit(&mut self, rid: RequestId) -> R<()> {
        let (mut soc, mut req) = self.open_request(rid)?;
        let Some(mut b) = req.benefit.clone() else {
            return Err(Rejection::NotABenefit);
        };
        if req.requester != self.signer {
            return Err(Rejection::NotRequester);
        }
        if b.index_end.is_some() || soc.now >= b.last {
            return Err(Rejection::BenefitEnded);
        }
        // What is not yet due is never drawn.
        let remaining = b.last - soc.now;
        soc.book.benefits_rate -= b.per_period;
        soc.book.owed -= u128::from(b.per_period) * u128::from(remaining);
        let key = keys::roll(soc.id, b.last + 1);
        let mut r: Roll = get(&*self.st, &key).expect("a running benefit has its end");
        r.benefits_ending -= b.per_period;
        self.put_roll(key, r, false, soc.id, b.last + 1);
        b.index_end = Some(soc.book.benefit_index);
        let amount = self.claimable(&soc, &b);
        if amount > 0 {
            self.pay_benefit(&mut soc, &mut req, &mut b, rid, amount)?;
        }
        if b.dues_waived
            && let Some(mut m) = get::<Member>(&*self.st, &keys::member(soc.id, &req.requester))
                .filter(|m| m.status == MemberStatus::Active)
        {
            let grace = u64::from(soc.meta.rules.grace_periods);
            let paid_until = (soc.now + 1).max(b.paid_until_before);
            self.touch(&mut soc, &req.requester.clone(), &mut m, |m, _| {
                m.paid_until = paid_until;
                m.karma_from = paid_until;
                m.lapse_at = paid_until + grace;
                Ok(())
            })?;
        }
        req.status = RequestStatus::Paid;
        req.benefit = Some(b);
        put(self.st, keys::request(rid), &req);
        self.events.push(Event::BenefitEnded { request: rid });
        self.save(&soc);
        Ok(())
    }

    // -- amendments ----------------------------------------------------------------------------

    fn propose_amendment(&mut self, id: SocietyId, rules: kassa_types::Rules) -> R<()> {
        let mut soc = self.open(id)?;
        soc.caught_up()?;
        let signer = self.signer;
        self.standing_member(&soc, &signer)?;
        if rules.period_secs != soc.meta.rules.period_secs {
            return Err(Rejection::AmendmentChangesFixedRule);
        }
        if soc.book.amendment.is_some() {
            return Err(Rejection::AmendmentInProgress);
        }
        let mut c = counters(&*self.st);
        let aid = AmendmentId(c.next_amendment);
        c.next_amendment += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let a = Amendment {
            proposer: signer,
            rules,
            ballot: self.new_ballot(&soc, None),
            status: AmendmentStatus::Open,
        };
        put(self.st, keys::amendment(aid), &a);
        soc.book.amendment = Some(aid);
        self.save(&soc);
        self.events.push(Event::AmendmentProposed {
            society: id,
            amendment: aid,
        });
        Ok(())
    }

    fn open_amendment(&mut self, aid: AmendmentId) -> R<(Soc, Amendment)> {
        let a: Amendment =
            get(&*self.st, &keys::amendment(aid)).ok_or(Rejection::UnknownAmendment)?;
        if a.status != AmendmentStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        let soc = self.open(a.ballot.society)?;
        soc.caught_up()?;
        Ok((soc, a))
    }

    fn vote_amendment(&mut self, aid: AmendmentId, approve: bool) -> R<()> {
        let (soc, mut a) = self.open_amendment(aid)?;
        let weight = self.cast(
            &soc,
            &mut a.ballot,
            BallotId::Amendment(aid),
            approve,
            100,
            false,
            amendment_outcome,
        )?;
        put(self.st, keys::amendment(aid), &a);
        self.save(&soc);
        self.events.push(Event::AmendmentVoted {
            amendment: aid,
            voter: self.signer,
            approve,
            weight,
        });
        Ok(())
    }

    fn enact_amendment(&mut self, aid: AmendmentId) -> R<()> {
        let (mut soc, mut a) = self.open_amendment(aid)?;
        if self.now_ms < a.ballot.deadline_ms {
            return Err(Rejection::VotingStillOpen);
        }
        if amendment_outcome(&a.ballot) > 0 {
            let timelock_ms =
                u64::from(soc.meta.rules.amendment_timelock_periods) * soc.meta.period_ms();
            if self.now_ms < a.ballot.deadline_ms + timelock_ms {
                return Err(Rejection::TimelockNotOver);
            }
            soc.meta.rules = a.rules.clone();
            put(self.st, keys::society(soc.id), &soc.meta);
            a.status = AmendmentStatus::Enacted;
            self.events.push(Event::AmendmentEnacted { amendment: aid });
        } else {
            a.status = AmendmentStatus::Rejected;
            self.events
                .push(Event::AmendmentRejected { amendment: aid });
        }
        soc.book.amendment = None;
        put(self.st, keys::amendment(aid), &a);
        self.save(&soc);
        Ok(())
    }
}

/// Adds (or removes) a vote: its weight on its side and, for a yes, in its percent's bucket; and
/// one head.
fn tally(b: &mut Ballot, approve: bool, percent: u8, weight: u128, add: bool) {
    let count = if approve {
        &mut b.yes_count
    } else {
        &mut b.no_count
    };
    *count = if add {
        *count + 1
    } else {
        count.saturating_sub(1)
    };
    tally_weight(b, approve, percent, weight, add);
}

/// Adds (or removes) weight on a side without changing the head count.
fn tally_weight(b: &mut Ballot, approve: bool, percent: u8, weight: u128, add: bool) {
    let apply = |v: &mut u128| {
        *v = if add {
            v.saturating_add(weight)
        } else {
            v.saturating_sub(weight)
        };
    };
    if !approve {
        apply(&mut b.no);
        return;
    }
    apply(&mut b.yes);
    let at = b.yes_by_percent.partition_point(|(p, _)| *p < percent);
    if b.yes_by_percent.get(at).is_none_or(|(p, _)| *p != percent) {
        b.yes_by_percent.insert(at, (percent, 0));
    }
    apply(&mut b.yes_by_percent[at].1);
    if b.yes_by_percent[at].1 == 0 {
        b.yes_by_percent.remove(at);
    }
}
