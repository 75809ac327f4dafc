//! The state machine: a pure, synchronous function of (state, block context, transaction) to
//! (new state, events) or a typed rejection. Block height and time arrive in [`BlockContext`];
//! nothing here reads a clock, draws randomness, uses floats or iterates a hash map.
//!
//! A transaction is checked in phases (PROTOCOL §2, STYLE item 5):
//! 1. [`check_stateless`]: signature, chain id, fee floor, static field checks. Failure: nothing
//!    changes and the transaction can never be included.
//! 2. Against the signer's account: expiry, nonce, fee balance. Failure: nothing changes.
//! 3. The fee is burned and the nonce advances (in a buffer).
//! 4. The body executes in a second buffer. Failure: that buffer is dropped — the fee and nonce
//!    of step 3 still apply, nothing else does. Success: both buffers are written.

use crate::fixed::{Q64_ONE, decay, mul_div, mul_div_ceil};
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
        | Body::Contribute { amount, .. }
        | Body::FileRequest { amount, .. }
        | Body::Gift { amount, .. } => positive(*amount),
        Body::Join { pledge, .. } => positive(*pledge),
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
        Body::CreateSociety { name, rules, .. } => {
            if name.trim().is_empty() {
                return Err(Rejection::EmptyName);
            }
            rules.validate().map_err(|_| Rejection::InvalidRules)
        }
        Body::ProposeAmendment { rules, .. } => {
            rules.validate().map_err(|_| Rejection::InvalidRules)
        }
        Body::Vote { .. }
        | Body::Delegate { .. }
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

    fn decay_total(&mut self) {
        let b = &mut self.book;
        b.total_karma = decay(
            b.total_karma,
            self.now.saturating_sub(b.total_karma_period),
            self.meta.rules.karma_half_life_periods,
        );
        b.total_karma_period = self.now;
    }

    fn add_total(&mut self, k: u128) {
        self.decay_total();
        self.book.total_karma = self.book.total_karma.saturating_add(k);
    }

    fn sub_total(&mut self, k: u128) {
        self.decay_total();
        self.book.total_karma = self.book.total_karma.saturating_sub(k);
    }

    fn balance_of(&self, m: &Member) -> u64 {
        self.book
            .pool
            .value(&m.stake.pos, self.now, self.h())
            .balance
    }

    fn karma_of(&self, m: &Member) -> u128 {
        m.stake.value(&self.book.pool, self.now, self.h()).0
    }

    fn in_good_standing(&self, m: &Member) -> bool {
        m.in_good_standing(&self.meta.rules, self.now, self.balance_of(m))
    }

    /// Whether a passed amendment is waiting to be enacted (members may then exit at once).
    fn amendment_waiting(&self, st: &impl Store, now_ms: u64) -> bool {
        let Some(id) = self.book.amendment else {
            return false;
        };
        let a: Amendment = get(st, &keys::amendment(id)).expect("book points at an amendment");
        a.status == AmendmentStatus::Open
            && now_ms >= a.ballot.deadline_ms
            && amendment_passes(&self.meta, &a.ballot)
    }
}

fn request_passes(meta: &Society, b: &Ballot) -> bool {
    let total = b.start.total_karma;
    let share = |bps: u32| mul_div(total, u128::from(bps), u128::from(BPS)).expect("bps <= 10,000");
    let (net_needed, quorum) = (
        share(meta.rules.approval_net_bps),
        share(meta.rules.quorum_bps),
    );
    b.yes >= b.no && b.yes - b.no >= net_needed && b.yes >= quorum
}

fn amendment_passes(meta: &Society, b: &Ballot) -> bool {
    let needed = mul_div(
        b.start.total_karma,
        u128::from(meta.rules.amendment_threshold_bps),
        u128::from(BPS),
    )
    .expect("bps <= 10,000");
    b.yes >= needed && b.yes > 0
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
            } => self.create_society(Society {
                name: name.clone(),
                purpose: purpose.clone(),
                asset: *asset,
                rules: rules.clone(),
                created_ms: self.now_ms,
                founder: self.signer,
            }),
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
            } => self.file_request(*society, *amount, *evidence_hash, memo.clone()),
            Body::Vote { request, approve } => self.vote(*request, *approve),
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
        }
    }

    // -- assets ---------------------------------------------------------------------------------

    fn asset(&self, id: AssetId) -> R<Asset> {
        get(&*self.st, &keys::asset(id)).ok_or(Rejection::UnknownAsset)
    }

    fn transfer(&mut self, to: Address, asset: AssetId, amount: u64) -> R<()> {
        self.asset(asset)?;
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

    fn create_society(&mut self, meta: Society) -> R<()> {
        self.asset(meta.asset)?;
        let mut c = counters(&*self.st);
        let id = SocietyId(c.next_society);
        c.next_society += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let book = Book {
            member_count: 0,
            pool: Pool::default(),
            bonds: 0,
            total_karma: 0,
            total_karma_period: 0,
            start: PeriodStart {
                period: 0,
                pool: Pool::default(),
                total_karma: 0,
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
        Ok(())
    }

    /// Loads a society for this transaction: rolls its period if a new one began, then pays what
    /// the period's budget allows to approved requests.
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
        if now > soc.book.start.period {
            soc.decay_total();
            soc.book.start = PeriodStart {
                period: now,
                pool: soc.book.pool.clone(),
                total_karma: soc.book.total_karma,
            };
            soc.book.drawn_in_period = 0;
            soc.book.retained_in_period = Q64_ONE;
        }
        self.settle_queue(&mut soc);
        Ok(soc)
    }

    fn save(&mut self, soc: &Soc) {
        put(self.st, keys::book(soc.id), &soc.book);
    }

    /// Pays approved requests in approval order from the period's draw budget. O(1) in members:
    /// each draw is one update of the pool.
    fn settle_queue(&mut self, soc: &mut Soc) {
        let budget = u128::from(soc.book.start.pool.total)
            * u128::from(soc.meta.rules.max_draw_bps)
            / u128::from(BPS);
        let budget = u64::try_from(budget).expect("a share of a u64");
        for _ in 0..QUEUE_STEPS_MAX {
            if soc.book.queue_head == soc.book.queue_tail {
                break;
            }
            let qkey = keys::queue(soc.id, soc.book.queue_head);
            let rid: RequestId =
                get(&*self.st, &qkey).expect("queue entries exist between head and tail");
            let mut req: Request =
                get(&*self.st, &keys::request(rid)).expect("queued requests exist");
            let need = req.need();
            let amount = need
                .min(budget.saturating_sub(soc.book.drawn_in_period))
                .min(Self::fraction_budget(soc));
            if need > 0 && amount == 0 {
                break;
            }
            if amount > 0 {
                let h = soc.h();
                let total = u128::from(soc.book.pool.total);
                soc.book.retained_in_period = mul_div(
                    soc.book.retained_in_period,
                    total - u128::from(amount),
                    total,
                )
                .expect("shrinks");
                soc.book.pool.draw(amount, soc.now, h);
                soc.book.drawn_in_period += amount;
                soc.add_total(half_karma(amount));
                soc.book.stats.paid_by_shares += u128::from(amount);
                credit(self.st, &req.requester, soc.meta.asset, amount)
                    .expect("a requester's balance is bounded by the supply");
                req.paid += amount;
                self.events.push(Event::SharePaid {
                    request: rid,
                    amount,
                });
            }
            if req.need() == 0 {
                if req.status == RequestStatus::Approved {
                    req.status = RequestStatus::Paid;
                    self.events.push(Event::RequestPaid { request: rid });
                }
                self.st.delete(&qkey);
                soc.book.queue_head += 1;
            }
            put(self.st, keys::request(rid), &req);
        }
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

    /// An admitted member who has not given notice.
    fn active_member(&self, soc: &Soc, who: &Address) -> R<Member> {
        let m = self.member(soc, who)?;
        match m.status {
            MemberStatus::Active => Ok(m),
            MemberStatus::Applicant { .. } => Err(Rejection::NotYetAdmitted),
            MemberStatus::Leaving { .. } => Err(Rejection::MemberLeaving),
        }
    }

    fn save_member(&mut self, soc: &Soc, who: &Address, m: &Member) {
        put(self.st, keys::member(soc.id, who), m);
    }

    /// Changes a member's stake, keeping their delegate's aggregate and both karma histories in
    /// step. `f` sees the stake settled to now and may change its karma and balance.
    fn touch(
        &mut self,
        soc: &mut Soc,
        who: &Address,
        m: &mut Member,
        f: impl FnOnce(&mut Stake, &mut Soc) -> R<()>,
    ) -> R<()> {
        let h = soc.h();
        m.stake.settle(&soc.book.pool, soc.now, h);
        let old = m.stake.clone();
        f(&mut m.stake, soc)?;
        if let Some(d) = m.delegate {
            self.move_delegated(soc, &d, Some(&old), Some(&m.stake));
        }
        self.checkpoint(soc, who, Track::Own, &m.stake, m.delegate);
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
            agg.sub(r);
        }
        if let Some(a) = add {
            agg.add(a);
        }
        self.checkpoint(soc, delegate, Track::Delegated, &agg, None);
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
    ) {
        let count_key = keys::checkpoint_count(soc.id, who, track);
        let n: u64 = get(&*self.st, &count_key).unwrap_or(0);
        let cp = Checkpoint {
            period: soc.now,
            stake: stake.clone(),
            delegate,
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
        if self.st.get(&keys::member(id, &self.signer)).is_some() {
            return Err(Rejection::AlreadyMember);
        }
        let rules = &soc.meta.rules;
        if pledge < rules.min_pledge || pledge > rules.max_pledge {
            return Err(Rejection::PledgeOutOfRange);
        }
        match (rules.identity, commitment) {
            (Identity::Commitment, None) => return Err(Rejection::IdentityCommitmentRequired),
            (Identity::Public, Some(_)) => return Err(Rejection::IdentityCommitmentNotAllowed),
            _ => {}
        }
        let stake = Stake {
            karma: 0,
            pos: soc.book.pool.empty_position(soc.now, soc.h()),
        };
        let mut m = Member {
            status: MemberStatus::Active,
            joined_period: soc.now,
            pledge,
            identity_commitment: commitment,
            contributed: 0,
            stake,
            delegate: None,
            open_request: None,
        };
        let signer = self.signer;
        match rules.admission {
            Admission::Open => {
                soc.book.member_count += 1;
                self.checkpoint(&soc, &signer, Track::Own, &m.stake, None);
                self.events.push(Event::Joined {
                    society: id,
                    member: signer,
                });
            }
            Admission::Vote => {
                let rid = self.new_request(&mut soc, RequestKind::Admission);
                m.status = MemberStatus::Applicant { application: rid };
                self.events.push(Event::Applied {
                    society: id,
                    applicant: signer,
                    application: rid,
                });
            }
        }
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        Ok(())
    }

    fn contribute(&mut self, id: SocietyId, amount: u64) -> R<()> {
        let mut soc = self.open(id)?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        let cap = u128::from(m.pledge) * u128::from(soc.meta.rules.gift_cap_pledges);
        let balance = soc.balance_of(&m);
        if u128::from(balance) + u128::from(amount) > cap {
            return Err(Rejection::GiftAccountCapExceeded);
        }
        debit(self.st, &signer, soc.meta.asset, amount)?;
        self.touch(&mut soc, &signer, &mut m, |stake, soc| {
            soc.book.pool.deposit(amount).ok_or(Rejection::Overflow)?;
            let h = soc.h();
            stake.deposit(&soc.book.pool, amount, soc.now, h);
            stake.karma = stake.karma.saturating_add(half_karma(amount));
            soc.add_total(half_karma(amount));
            Ok(())
        })?;
        m.contributed += u128::from(amount);
        self.save_member(&soc, &signer, &m);
        self.save(&soc);
        self.events.push(Event::Contributed {
            society: id,
            member: signer,
            amount,
        });
        Ok(())
    }

    fn delegate(&mut self, id: SocietyId, to: Option<Address>) -> R<()> {
        let soc = self.open(id)?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        if let Some(d) = to {
            if d == signer {
                return Err(Rejection::SelfDelegation);
            }
            self.active_member(&soc, &d)
                .map_err(|_| Rejection::NotMember)?;
        }
        m.stake.settle(&soc.book.pool, soc.now, soc.h());
        if let Some(old) = m.delegate {
            self.move_delegated(&soc, &old, Some(&m.stake), None);
        }
        if let Some(new) = to {
            self.move_delegated(&soc, &new, None, Some(&m.stake));
        }
        m.delegate = to;
        self.checkpoint(&soc, &signer, Track::Own, &m.stake, to);
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
        let signer = self.signer;
        let m = self.member(&soc, &signer)?;
        match m.status {
            MemberStatus::Active => {}
            MemberStatus::Applicant { .. } => return Err(Rejection::NotYetAdmitted),
            MemberStatus::Leaving { .. } => return Err(Rejection::AlreadyLeaving),
        }
        // A member whose own request is still being decided stays until it is: otherwise they
        // could leave and rejoin to hold two open requests.
        if m.open_request.is_some() {
            return Err(Rejection::OpenRequestExists);
        }
        if soc.amendment_waiting(&*self.st, self.now_ms) {
            // §7: exit before a rule change you did not accept, at once and with a refund.
            return self.exit(&mut soc, m, true);
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

    /// §6: karma is dropped on leaving; the gift account stays and keeps sharing.
    fn drop_karma(&mut self, soc: &mut Soc, who: &Address, m: &mut Member) {
        m.stake.settle(&soc.book.pool, soc.now, soc.h());
        if let Some(d) = m.delegate.take() {
            self.move_delegated(soc, &d, Some(&m.stake), None);
        }
        soc.sub_total(m.stake.karma);
        m.stake.karma = 0;
        self.checkpoint(soc, who, Track::Own, &m.stake, None);
    }

    fn withdraw(&mut self, id: SocietyId) -> R<()> {
        let mut soc = self.open(id)?;
        let m = self.member(&soc, &self.signer)?;
        let waiting = soc.amendment_waiting(&*self.st, self.now_ms);
        match m.status {
            MemberStatus::Leaving { until_ms } if self.now_ms >= until_ms || waiting => {}
            MemberStatus::Leaving { .. } => return Err(Rejection::NoticeNotOver),
            MemberStatus::Active => return Err(Rejection::NotLeaving),
            MemberStatus::Applicant { .. } => return Err(Rejection::NotYetAdmitted),
        }
        let refund = soc.meta.rules.exit_refund || waiting;
        self.exit(&mut soc, m, refund)
    }

    /// Removes the signer from the society. With `refund`, the gift account is paid out; without,
    /// it stays in the pool and funds future requests.
    fn exit(&mut self, soc: &mut Soc, mut m: Member, refund: bool) -> R<()> {
        let signer = self.signer;
        if m.status == MemberStatus::Active {
            self.drop_karma(soc, &signer, &mut m);
            soc.book.member_count -= 1;
        } else {
            // Karma earned during notice (shares, gifts) leaves the society's total with them.
            m.stake.settle(&soc.book.pool, soc.now, soc.h());
            soc.sub_total(m.stake.karma);
        }
        let balance = soc.balance_of(&m);
        let refunded = if refund { balance } else { 0 };
        if refunded > 0 {
            soc.book.pool.take(refunded);
            credit(self.st, &signer, soc.meta.asset, refunded)?;
        }
        self.checkpoint(soc, &signer, Track::Own, &Stake::default(), None);
        self.st.delete(&keys::member(soc.id, &signer));
        self.save(soc);
        self.events.push(Event::Withdrawn {
            society: soc.id,
            member: signer,
            refund: refunded,
        });
        Ok(())
    }

    // -- requests ------------------------------------------------------------------------------

    fn new_ballot(&self, soc: &Soc, excluded: Option<Address>) -> Ballot {
        let window_ms = soc.meta.rules.voting_window_secs * 1000;
        Ballot {
            society: soc.id,
            filed_period: soc.now,
            start: soc.book.start.clone(),
            deadline_ms: self.now_ms + window_ms,
            window_ms,
            extended: false,
            yes: 0,
            no: 0,
            excluded,
        }
    }

    fn new_request(&mut self, soc: &mut Soc, kind: RequestKind) -> RequestId {
        let mut c = counters(&*self.st);
        let id = RequestId(c.next_request);
        c.next_request += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        let req = Request {
            requester: self.signer,
            kind,
            ballot: self.new_ballot(soc, Some(self.signer)),
            status: RequestStatus::Open,
            paid: 0,
            gifted: 0,
        };
        // The requester cannot vote on their own request (§4), not even through a delegate: their
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

    fn file_request(
        &mut self,
        id: SocietyId,
        amount: u64,
        evidence_hash: Hash,
        memo: kassa_types::tx::Memo,
    ) -> R<()> {
        let mut soc = self.open(id)?;
        let signer = self.signer;
        let mut m = self.active_member(&soc, &signer)?;
        let rules = soc.meta.rules.clone();
        if !soc.in_good_standing(&m) {
            return Err(Rejection::NotInGoodStanding);
        }
        if soc.now < m.joined_period + u64::from(rules.waiting_periods) {
            return Err(Rejection::InWaitingPeriod);
        }
        if m.open_request.is_some() {
            return Err(Rejection::OpenRequestExists);
        }
        if soc.book.member_count < u64::from(rules.min_members) {
            return Err(Rejection::TooFewMembers);
        }
        if amount > rules.max_request {
            return Err(Rejection::ExceedsMaxRequest);
        }
        let karma = soc.karma_of(&m);
        let max_benefit =
            (karma >> crate::pool::KARMA_FRACTION_BITS) * u128::from(rules.benefit_ratio);
        if u128::from(amount) > max_benefit {
            return Err(Rejection::ExceedsMaximumBenefit);
        }
        let bond =
            u64::try_from(u128::from(m.pledge) * u128::from(rules.bond_bps) / u128::from(BPS))
                .map_err(|_| Rejection::Overflow)?;
        debit(self.st, &signer, soc.meta.asset, bond)?;
        soc.book.bonds = soc
            .book
            .bonds
            .checked_add(bond)
            .ok_or(Rejection::Overflow)?;
        let filing_bps = u128::from(rules.filing_karma_bps);
        self.touch(&mut soc, &signer, &mut m, |stake, soc| {
            let consumed =
                mul_div(stake.karma, filing_bps, u128::from(BPS)).expect("bps <= 10,000");
            stake.karma -= consumed;
            soc.sub_total(consumed);
            Ok(())
        })?;
        let rid = self.new_request(
            &mut soc,
            RequestKind::Help {
                amount,
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
        let req = get(&*self.st, &keys::request(rid)).expect("just read");
        Ok((soc, req))
    }

    fn vote(&mut self, rid: RequestId, approve: bool) -> R<()> {
        let (soc, mut req) = self.open_request(rid)?;
        if req.status != RequestStatus::Open {
            return Err(Rejection::AlreadyFinalized);
        }
        let weight = self.cast(
            &soc,
            &mut req.ballot,
            BallotId::Request(rid),
            approve,
            request_passes,
        )?;
        put(self.st, keys::request(rid), &req);
        self.save(&soc);
        self.events.push(Event::Voted {
            request: rid,
            voter: self.signer,
            approve,
            weight,
        });
        Ok(())
    }

    /// The karma of `who`'s `track` at the start of the ballot's filing period: the last
    /// checkpoint before that period, valued against the society as it was then.
    fn weight_at(
        &self,
        soc: &Soc,
        who: &Address,
        track: Track,
        b: &Ballot,
    ) -> (u128, Option<Address>) {
        let n: u64 = get(&*self.st, &keys::checkpoint_count(soc.id, who, track)).unwrap_or(0);
        // Binary search for the last checkpoint with period < filed_period (Compound's
        // getPriorVotes): O(log n) reads, independent of every other member.
        let (mut lo, mut hi) = (0u64, n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let cp: Checkpoint =
                get(&*self.st, &keys::checkpoint(soc.id, who, track, mid)).expect("counted");
            if cp.period < b.filed_period {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return (0, None);
        }
        let cp: Checkpoint =
            get(&*self.st, &keys::checkpoint(soc.id, who, track, lo - 1)).expect("counted");
        let (karma, _) = cp.stake.value(&b.start.pool, b.filed_period, soc.h());
        (karma, cp.delegate)
    }

    /// Records the signer's vote (new or changed) on a ballot, with delegation and the late-vote
    /// extension. Returns the vote's weight.
    fn cast(
        &mut self,
        soc: &Soc,
        b: &mut Ballot,
        bid: BallotId,
        approve: bool,
        passes: fn(&Society, &Ballot) -> bool,
    ) -> R<u128> {
        let signer = self.signer;
        if self.now_ms >= b.deadline_ms {
            return Err(Rejection::VotingClosed);
        }
        let m = self.active_member(soc, &signer)?;
        if !soc.in_good_standing(&m) {
            return Err(Rejection::NotInGoodStanding);
        }
        if b.excluded == Some(signer) {
            return Err(Rejection::CannotVoteOnOwnRequest);
        }
        let before = passes(&soc.meta, b);
        let vkey = keys::vote(bid, &signer);
        let weight = match get::<VoteRecord>(&*self.st, &vkey) {
            Some(mut v) => {
                if v.approve != approve {
                    tally(b, v.approve, v.weight, false);
                    tally(b, approve, v.weight, true);
                }
                v.approve = approve;
                put(self.st, vkey, &v);
                v.weight
            }
            None => {
                let (own, own_delegate) = self.weight_at(soc, &signer, Track::Own, b);
                let (delegated, _) = self.weight_at(soc, &signer, Track::Delegated, b);
                let okey = keys::vote_override(bid, &signer);
                let overridden: u128 = get(&*self.st, &okey).unwrap_or(0);
                let weight = own + delegated.saturating_sub(overridden);
                if weight == 0 {
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
                        dv.weight -= removed;
                        tally(b, dv.approve, removed, false);
                        put(self.st, dvkey, &dv);
                    }
                }
                tally(b, approve, weight, true);
                put(self.st, vkey, &VoteRecord { approve, weight });
                weight
            }
        };
        // Late-vote extension: a vote that flips the outcome in the last tenth of the window
        // extends it, once, by a tenth.
        let tenth = b.window_ms / 10;
        if !b.extended && passes(&soc.meta, b) != before && self.now_ms >= b.deadline_ms - tenth {
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
        if req.kind == RequestKind::Admission {
            return Err(Rejection::NotAHelpRequest);
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
        self.touch(&mut soc, &signer, &mut m, |stake, soc| {
            soc.book.pool.take(amount);
            let h = soc.h();
            stake.withdraw(&soc.book.pool, amount, soc.now, h);
            stake.karma = stake.karma.saturating_add(half_karma(amount));
            soc.add_total(half_karma(amount));
            Ok(())
        })?;
        credit(self.st, &req.requester, soc.meta.asset, amount)?;
        req.gifted += amount;
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
        let approved = request_passes(&soc.meta, &req.ballot);
        self.events.push(Event::Finalized {
            request: rid,
            approved,
        });
        let requester = req.requester;
        match req.kind.clone() {
            RequestKind::Admission => {
                let mut m = self
                    .member(&soc, &requester)
                    .expect("applicants stay until decided");
                if approved {
                    m.status = MemberStatus::Active;
                    m.joined_period = soc.now;
                    m.stake = Stake {
                        karma: 0,
                        pos: soc.book.pool.empty_position(soc.now, soc.h()),
                    };
                    soc.book.member_count += 1;
                    self.checkpoint(&soc, &requester, Track::Own, &m.stake, None);
                    self.save_member(&soc, &requester, &m);
                    self.events.push(Event::Admitted {
                        society: soc.id,
                        member: requester,
                    });
                } else {
                    self.st.delete(&keys::member(soc.id, &requester));
                }
                req.status = if approved {
                    RequestStatus::Approved
                } else {
                    RequestStatus::Rejected
                };
            }
            RequestKind::Help { bond, .. } => {
                soc.book.bonds -= bond;
                if let Some(mut m) = get::<Member>(&*self.st, &keys::member(soc.id, &requester))
                    && m.open_request == Some(rid)
                {
                    m.open_request = None;
                    self.save_member(&soc, &requester, &m);
                }
                if approved {
                    credit(self.st, &requester, soc.meta.asset, bond)?;
                    self.events.push(Event::BondReturned {
                        request: rid,
                        amount: bond,
                    });
                    req.status = RequestStatus::Approved;
                    soc.book.stats.requests_approved += 1;
                    if soc.meta.rules.auto_share {
                        put(self.st, keys::queue(soc.id, soc.book.queue_tail), &rid);
                        soc.book.queue_tail += 1;
                    }
                } else {
                    soc.book
                        .pool
                        .add_pro_rata(bond)
                        .ok_or(Rejection::Overflow)?;
                    soc.book.stats.requests_rejected += 1;
                    soc.book.stats.bonds_forfeited += u128::from(bond);
                    self.events.push(Event::BondForfeited {
                        request: rid,
                        amount: bond,
                    });
                    req.status = RequestStatus::Rejected;
                }
            }
        }
        put(self.st, keys::request(rid), &req);
        if approved && soc.meta.rules.auto_share && matches!(req.kind, RequestKind::Help { .. }) {
            self.settle_queue(&mut soc);
        }
        self.save(&soc);
        Ok(())
    }

    // -- amendments ----------------------------------------------------------------------------

    fn propose_amendment(&mut self, id: SocietyId, rules: kassa_types::Rules) -> R<()> {
        let mut soc = self.open(id)?;
        let signer = self.signer;
        let m = self.active_member(&soc, &signer)?;
        if !soc.in_good_standing(&m) {
            return Err(Rejection::NotInGoodStanding);
        }
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
        Ok((soc, a))
    }

    fn vote_amendment(&mut self, aid: AmendmentId, approve: bool) -> R<()> {
        let (soc, mut a) = self.open_amendment(aid)?;
        let weight = self.cast(
            &soc,
            &mut a.ballot,
            BallotId::Amendment(aid),
            approve,
            amendment_passes,
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
        if amendment_passes(&soc.meta, &a.ballot) {
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

fn tally(b: &mut Ballot, approve: bool, weight: u128, add: bool) {
    let side = if approve { &mut b.yes } else { &mut b.no };
    *side = if add {
        side.saturating_add(weight)
    } else {
        side.saturating_sub(weight)
    };
}
