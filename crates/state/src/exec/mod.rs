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
//!
//! This file holds the phases and the dispatcher ([`Ex`]'s `execute`, one line per transaction
//! kind); each kind's handler lives with the component it changes:
//! - `accounts`: transfers, assets, mint and burn;
//! - `society`: creating a society, loading it and rolling its periods forward;
//! - `standing`: the dues clock, karma checkpoints and the totals of who is in good standing;
//! - `buckets`: the records of what lapses, starts and ends at a period (society's and delegates');
//! - `delegation`: a delegate's stake, in step with their delegators;
//! - `membership`: join, contribute, pledge changes, delegation, leave, withdraw, expel, bonds;
//! - `requests`: requests for help and applications, ballots, votes, gifts, finalize;
//! - `sharing`: the period's draw budget, the payout queue, installment benefits;
//! - `amendments`: propose, vote, enact.

mod accounts;
mod amendments;
mod buckets;
mod delegation;
mod membership;
mod requests;
mod sharing;
mod society;
mod standing;

use crate::keys;
use crate::records::*;
use crate::store::{Overlay, Store, StoreMut, apply_writes};
pub use accounts::{account, balance, balance_in, nonce};
use accounts::{set_account, set_balance};
pub use amendments::amendment_outcome;
use borsh::{BorshDeserialize, BorshSerialize};
pub use delegation::delegated_karma_now;
use kassa_types::codec::{self, DecodeError};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{
    Address, AssetId, Hash, NATIVE_DECIMALS, NATIVE_SYMBOL, Rejection, SignedTransaction,
    TX_SIZE_MAX,
};
pub use requests::{admission_outcome, request_outcome};
pub use society::ROLL_STEPS_MAX;
pub use standing::{credit_dues_karma, karma_at_period_start, max_benefit};

/// How many approved requests one transaction may advance in a society's payout queue. Each step
/// either exhausts the period's budget (and stops) or completes a request, so this bounds the work
/// of one transaction without ever losing a payment (the next transaction continues).
pub const QUEUE_STEPS_MAX: usize = 16;

/// Whether something enters a total or leaves it (a vote a ballot, a stake a lapse bucket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

impl Change {
    fn apply(self, v: u128, by: u128) -> u128 {
        match self {
            Change::Add => v.saturating_add(by),
            Change::Remove => v.saturating_sub(by),
        }
    }
}

/// What a transaction handler returns: done, or the typed reason nothing of the body applies.
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
}
