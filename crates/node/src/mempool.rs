//! The mempool: signed transactions waiting for a block.
//!
//! Admission runs the stateless checks (decoding limits, signature, chain id, fee floor, static
//! fields) and cheap checks against the current state (expiry, nonce window, fee balance), then
//! keeps each sender's transactions ordered by nonce. Everything is bounded: total count, total
//! bytes, transactions per sender, and how far ahead of the account's nonce a transaction may be.
//!
//! Space is priced, so that nobody can fill it for free:
//! - A transaction is *ready* when every nonce from its account's next one up to it is waiting
//!   too, and *gapped* otherwise (it cannot be included until the gap is filled, and pays
//!   nothing meanwhile). Gapped transactions are held only in a small space of their own
//!   ([`MempoolConfig::gapped_max`]) and are the first evicted.
//! - When the mempool (or the gapped space) is full, a new transaction evicts the cheapest by
//!   fee rate (fee per encoded byte, gapped ones first) if it pays more; the evicted one's later
//!   nonces go with it. A transaction that would be the cheapest is refused as `mempool_full`.
//! - The same sender and nonce with a fee at least [`REPLACE_BUMP_PERCENT`] higher replaces the
//!   waiting transaction; less is `nonce_taken`.
//! - A sender's waiting fees never exceed its balance (what its transactions will burn when
//!   included), and nothing waits longer than [`MempoolConfig::expiry_window`] blocks.
//! - Blocks take the ready transactions paying the highest fee rate first.
//!
//! Over 600 lines: admission (and its refusals found before the signature), eviction and
//! selection share the queues and the rank index, and are read together.

use kassa_state::exec::{account, nonce};
use kassa_state::records::{Account, ChainParams};
use kassa_state::{Store, check_stateless};
use kassa_types::{Address, Hash, Rejection, SignedTransaction, crypto};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

/// The hasher of the mempool's hash maps: foldhash, seeded at random per process (so nobody can
/// aim transactions at one bucket), several times cheaper than the standard SipHash on 32-byte
/// keys. The mempool is the node's, not the state machine's, and no order of these maps can
/// reach a block: they are looked up, and the expired ones' sets are read only to remove all
/// they hold.
type Hasher = foldhash::fast::RandomState;

/// Limits of the mempool.
#[derive(Clone, Debug)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub txs_max: usize,
    /// Most encoded bytes held.
    pub bytes_max: usize,
    /// Most transactions held per sender.
    pub per_sender_max: usize,
    /// A transaction's nonce may be at most this far ahead of its account's next nonce.
    pub nonce_window: u64,
    /// A transaction may not expire more than this many blocks after the next one (so nothing
    /// waits long: 1,200 blocks is 20 minutes at one block a second).
    pub expiry_window: u64,
    /// Most gapped transactions held (those behind a nonce gap, which pay nothing until it is
    /// filled): a small share of `txs_max`, evicted first.
    pub gapped_max: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            txs_max: 50_000,
            bytes_max: 64 * 1024 * 1024,
            per_sender_max: 256,
            nonce_window: 256,
            expiry_window: 1_200,
            gapped_max: 1_000,
        }
    }
}

/// How much higher, in percent, a replacement's fee must be than the fee of the waiting
/// transaction with the same sender and nonce.
pub const REPLACE_BUMP_PERCENT: u64 = 10;

/// Whether a fee of `new` may replace a waiting transaction's fee of `old`.
fn outbids(old: u64, new: u64) -> bool {
    new > old && u128::from(new) * 100 >= u128::from(old) * u128::from(100 + REPLACE_BUMP_PERCENT)
}

/// Fee per encoded byte, in units of 2^-32 base units (integers only, comparable exactly).
fn fee_rate(fee: u64, bytes: usize) -> u128 {
    (u128::from(fee) << 32) / u128::try_from(bytes.max(1)).expect("usize fits u128")
}

/// Whether every transaction's signature is valid, checked as one batch (ZIP-215: the batch
/// is valid iff each signature is).
pub fn signatures_valid(txs: &[SignedTransaction]) -> bool {
    let sighashes: Vec<Hash> = txs.iter().map(|t| t.tx.sighash()).collect();
    crypto::verify_batch(
        txs.iter()
            .zip(&sighashes)
            .map(|(t, h)| (&t.tx.signer, h.0.as_slice(), &t.signature)),
    )
}

/// Signatures below which a batch is checked on one thread: a thread costs tens of
/// microseconds to start, a batch of this many about two milliseconds to check.
pub const PARALLEL_SIGNATURES_MIN: usize = 256;

/// Whether each transaction's signature is valid: one batch check if all are; a batch that
/// fails is split in halves and each half checked again, so `k` bad signatures among `n` cost
/// about `2k·log2(n)` batch checks, not `n` single ones (a peer that slips one forged signature
/// into a large batch does not make every other one be checked alone). A large batch is cut
/// into one part per core, checked side by side (the answer is each signature's, so it is the
/// same however the batch is cut).
pub fn signatures_each_valid(txs: &[SignedTransaction]) -> Vec<bool> {
    fn mark(txs: &[SignedTransaction], valid: &mut [bool]) {
        if txs.is_empty() {
            return;
        }
        if signatures_valid(txs) {
            valid.fill(true);
        } else if txs.len() > 1 {
            let (a, b) = txs.split_at(txs.len() / 2);
            let (va, vb) = valid.split_at_mut(txs.len() / 2);
            mark(a, va);
            mark(b, vb);
        }
    }
    fn each(txs: &[SignedTransaction]) -> Vec<bool> {
        let mut valid = vec![false; txs.len()];
        mark(txs, &mut valid);
        valid
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let parts = cores.min(txs.len() / PARALLEL_SIGNATURES_MIN).max(1);
    if parts == 1 {
        return each(txs);
    }
    let mut cut = txs.chunks(txs.len().div_ceil(parts));
    let first = cut.next().unwrap_or_default();
    std::thread::scope(|s| {
        let others: Vec<_> = cut
            .map(|t| {
                let thread = std::thread::Builder::new().spawn_scoped(s, move || each(t));
                (t, thread)
            })
            .collect();
        // The first part on this thread, while the others run; a part no thread could be
        // started for, here too.
        let mut valid = each(first);
        for (t, thread) in others {
            match thread {
                Ok(thread) => valid.extend(
                    thread
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                ),
                Err(_) => valid.extend(each(t)),
            }
        }
        valid
    })
}

/// Why a transaction was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// It would be refused by the state machine.
    #[error("{0}")]
    Rejected(Rejection),
    /// The very same transaction is already waiting.
    #[error("the transaction is already in the mempool")]
    Duplicate,
    /// Another transaction from the same sender with the same nonce is waiting, and this one
    /// does not pay enough more to replace it.
    #[error(
        "another transaction with this nonce is waiting; a replacement must pay at least 10% more"
    )]
    NonceTaken,
    /// The sender already has the most transactions allowed waiting.
    #[error("too many transactions from this sender are waiting")]
    SenderFull,
    /// The mempool (or its space for gapped transactions) is full of transactions paying at
    /// least as much per byte.
    #[error("the mempool is full; pay a higher fee or try again later")]
    Full,
    /// The expiry height is further ahead than the mempool keeps transactions.
    #[error("the expiry height is too far ahead")]
    ExpiryTooFar,
    /// The sender cannot pay the fees of all its waiting transactions and this one.
    #[error("the account cannot pay the fees of all its waiting transactions")]
    FeesExceedBalance,
}

impl AdmitError {
    /// The numbered rejection of the one registry (codes 30–39 are the mempool's own).
    pub fn rejection(&self) -> Rejection {
        match self {
            AdmitError::Rejected(r) => *r,
            AdmitError::Duplicate => Rejection::Duplicate,
            AdmitError::NonceTaken => Rejection::NonceTaken,
            AdmitError::SenderFull => Rejection::SenderFull,
            AdmitError::Full => Rejection::MempoolFull,
            AdmitError::ExpiryTooFar => Rejection::ExpiryTooFar,
            AdmitError::FeesExceedBalance => Rejection::FeesExceedBalance,
        }
    }

    /// A stable snake_case code for APIs.
    pub fn code(&self) -> &'static str {
        self.rejection().name()
    }
}

/// One sender's waiting transactions, by nonce, the sum of their fees, and the account's next
/// nonce when last read (where its ready run starts).
#[derive(Debug, Default)]
struct Queue {
    txs: BTreeMap<u64, Entry>,
    fees: u128,
    base: u64,
    /// The run as its entries were last marked: those below `ready_end` ready, the others
    /// gapped, with the run starting at `ready_start`.
    ready_start: u64,
    ready_end: u64,
}

/// What changed in a sender's queue since its entries were last marked ready or gapped.
#[derive(Clone, Copy)]
enum Changed {
    /// A transaction of this nonce came in (marked gapped).
    Added(u64),
    /// The transaction of this nonce went.
    Took(u64),
    /// The account's next nonce moved and the nonces below it went.
    Rebased,
}

impl Queue {
    /// Where the ready run starts: the account's next nonce, or a lower one still waiting.
    fn start(&self) -> u64 {
        self.txs
            .keys()
            .next()
            .map_or(self.base, |&k| k.min(self.base))
    }

    /// Whether every nonce of `from..to` is waiting. In O(log n) when `from` lies in the marked
    /// run, as it does for an account's next nonce.
    fn all_waiting(&self, from: u64, to: u64) -> bool {
        if to <= from {
            return true;
        }
        let start = self.start();
        if from < start {
            // Below the first waiting nonce.
            return false;
        }
        if start == self.ready_start && from <= self.ready_end {
            // `start..ready_end` is waiting and `ready_end` is not.
            return to <= self.ready_end;
        }
        (from..to).all(|k| self.txs.contains_key(&k))
    }

    /// Where the run ends after `changed`, found from where it ended when last marked: an
    /// added next nonce extends it, a taken one cuts it, a start moved up inside it or anything
    /// else outside it leaves it; only a start moved elsewhere (or a nonce added below the run)
    /// reads the whole queue.
    fn end_after(&self, changed: Changed) -> u64 {
        let (start, old_end) = (self.start(), self.ready_end);
        match changed {
            // The nonces below the account's next one went: the run starts there, in what
            // remains of the old run, and ends where it did.
            Changed::Rebased if (self.ready_start..=old_end).contains(&start) => old_end,
            _ if start != self.ready_start => self.run_end(),
            Changed::Added(n) if n == old_end => {
                let mut end = n + 1;
                while self.txs.contains_key(&end) {
                    end += 1;
                }
                end
            }
            Changed::Added(n) | Changed::Took(n) if n > old_end => old_end,
            Changed::Took(n) if n >= start => n.min(old_end),
            _ => self.run_end(),
        }
    }

    /// The nonce after the ready run: from the account's next nonce (or a lower one still
    /// waiting, used by a block whose cleanup has not run yet), the first one not waiting.
    fn run_end(&self) -> u64 {
        let mut next = self.start();
        for &k in self.txs.keys() {
            if k == next {
                next += 1;
            } else if k > next {
                break;
            }
        }
        next
    }
}

#[derive(Debug)]
struct Entry {
    tx: SignedTransaction,
    hash: Hash,
    bytes: usize,
    rate: u128,
    ready: bool,
    /// When it came in: the mempool's count of admissions before it.
    arrival: u64,
    /// When it came in, on this node's clock: only for the wait it reports once included.
    admitted: std::time::Instant,
}

impl Entry {
    /// Its place in the eviction order.
    fn rank(&self) -> Rank {
        (self.ready, self.rate, Reverse(self.arrival), self.hash)
    }
}

/// Eviction order, first evicted first: gapped before ready, then by fee rate, then the last
/// to arrive (so among equal fees, those waiting longest keep their place). The arrival is
/// unique, so ranks are compared without reading their 32-byte hashes.
type Rank = (bool, u128, Reverse<u64>, Hash);

/// Waiting transactions.
#[derive(Debug, Default)]
pub struct Mempool {
    config: MempoolConfig,
    by_sender: BTreeMap<Address, Queue>,
    /// Looked up and changed, never iterated: a hash map.
    hashes: HashMap<Hash, (Address, u64), Hasher>,
    /// The hashes of every waiting transaction by expiry height, so that pruning the expired
    /// ones reads only those (one small ordered map of heights; each height's set is a hash
    /// set, so taking a transaction out costs no ordered search over 32-byte keys).
    by_expiry: BTreeMap<u64, HashSet<Hash, Hasher>>,
    /// Every waiting transaction in eviction order.
    by_rank: BTreeSet<Rank>,
    /// How many waiting transactions are gapped.
    gapped: usize,
    bytes: usize,
    /// Transactions admitted so far (each one's arrival).
    arrivals: u64,
}

impl Mempool {
    /// An empty mempool.
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            ..Default::default()
        }
    }

    /// Number of waiting transactions.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether a transaction is waiting.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.hashes.contains_key(hash)
    }

    /// Admits one transaction whose signature was not yet checked.
    pub fn admit(
        &mut self,
        tx: SignedTransaction,
        state: &impl Store,
        params: &ChainParams,
        next_height: u64,
    ) -> Result<Hash, AdmitError> {
        let account = account(state, &tx.tx.signer);
        let sized = tx.hash_and_size();
        self.admit_checked(tx, sized, &account, params, next_height, false)
    }

    /// Admits many transactions whose signatures the caller checked outside any lock: `valid`
    /// must be what [`signatures_each_valid`] says of `txs`, `sized` their hashes and sizes
    /// ([`SignedTransaction::hash_and_size`]) and `accounts` their signers' accounts in the
    /// committed state ([`signers_accounts`]). A signature found bad is checked once more on its
    /// own, for the refusal's reason (ZIP-215 makes both give the same answer).
    pub fn admit_batch_checked(
        &mut self,
        txs: Vec<SignedTransaction>,
        valid: &[bool],
        sized: &[(Hash, usize)],
        accounts: &[Account],
        params: &ChainParams,
        next_height: u64,
    ) -> Vec<Result<Hash, AdmitError>> {
        assert_eq!(txs.len(), valid.len(), "one verdict per transaction");
        assert_eq!(txs.len(), sized.len(), "one hash per transaction");
        assert_eq!(txs.len(), accounts.len(), "one account per transaction");
        txs.into_iter()
            .zip(valid)
            .zip(sized)
            .zip(accounts)
            .map(|(((t, ok), sized), account)| {
                self.admit_checked(t, *sized, account, params, next_height, *ok)
            })
            .collect()
    }

    /// For each transaction, the refusal admission would give it whatever its signature:
    /// the very same transaction already waiting ([`AdmitError::Duplicate`]: the same bytes, so
    /// the same valid signature), or no room for it ([`AdmitError::Full`]) when it passes every
    /// other check. A flood the mempool has no room for then costs a hash and a lookup per
    /// transaction, not a signature check; `None` is for admission to decide, signature first.
    /// `sized` are their hashes and sizes, and `accounts` the signers' accounts in the committed
    /// state, both found before the mempool's lock is taken.
    pub fn refusals_before_signatures(
        &self,
        txs: &[SignedTransaction],
        sized: &[(Hash, usize)],
        accounts: &[Account],
        params: &ChainParams,
        next_height: u64,
    ) -> Vec<Option<AdmitError>> {
        txs.iter()
            .zip(sized)
            .zip(accounts)
            .map(|((tx, sized), account)| {
                self.refusal_before_signature(tx, *sized, account, params, next_height)
            })
            .collect()
    }

    pub(crate) fn refusal_before_signature(
        &self,
        tx: &SignedTransaction,
        (hash, bytes): (Hash, usize),
        account: &Account,
        params: &ChainParams,
        next_height: u64,
    ) -> Option<AdmitError> {
        if self.hashes.contains_key(&hash) {
            return Some(AdmitError::Duplicate);
        }
        let t = &tx.tx;
        check_stateless(tx, params, false).ok()?;
        let passes = next_height <= t.expiry_height
            && t.nonce >= account.nonce
            && t.nonce < account.nonce.saturating_add(self.config.nonce_window)
            && (account.nonce > 0 || kassa_types::crypto::is_valid_public_key(&t.signer))
            && t.expiry_height <= next_height.saturating_add(self.config.expiry_window)
            && account.kas >= t.fee;
        if !passes {
            return None;
        }
        let queue = self.by_sender.get(&t.signer);
        if queue.is_some_and(|q| {
            q.txs.contains_key(&t.nonce) || q.txs.len() >= self.config.per_sender_max
        }) || queue.map_or(0, |q| q.fees) + u128::from(t.fee) > u128::from(account.kas)
        {
            return None;
        }
        let ready = queue.map_or(account.nonce == t.nonce, |q| {
            q.all_waiting(account.nonce, t.nonce)
        });
        self.first_victim(&t.signer, ready, fee_rate(t.fee, bytes), bytes)
            .err()
    }

    fn admit_checked(
        &mut self,
        tx: SignedTransaction,
        (hash, bytes): (Hash, usize),
        account: &Account,
        params: &ChainParams,
        next_height: u64,
        signature_verified: bool,
    ) -> Result<Hash, AdmitError> {
        check_stateless(&tx, params, !signature_verified).map_err(AdmitError::Rejected)?;
        let t = &tx.tx;
        if next_height > t.expiry_height {
            return Err(AdmitError::Rejected(Rejection::Expired));
        }
        let account_nonce = account.nonce;
        if t.nonce < account_nonce {
            return Err(AdmitError::Rejected(Rejection::NonceTooLow));
        }
        if t.nonce >= account_nonce.saturating_add(self.config.nonce_window) {
            return Err(AdmitError::Rejected(Rejection::NonceGapTooLarge));
        }
        if account_nonce == 0 && !kassa_types::crypto::is_valid_public_key(&t.signer) {
            return Err(AdmitError::Rejected(Rejection::InvalidSigner));
        }
        if t.expiry_height > next_height.saturating_add(self.config.expiry_window) {
            return Err(AdmitError::ExpiryTooFar);
        }
        let kas = account.kas;
        if kas < t.fee {
            return Err(AdmitError::Rejected(Rejection::CannotPayFee));
        }
        if self.hashes.contains_key(&hash) {
            return Err(AdmitError::Duplicate);
        }
        let queue = self.by_sender.get(&t.signer);
        let replaced = queue.and_then(|q| q.txs.get(&t.nonce));
        if let Some(old) = replaced
            && !outbids(old.tx.tx.fee, t.fee)
        {
            return Err(AdmitError::NonceTaken);
        }
        // Every waiting transaction of the sender will burn its fee: refuse what could not be
        // paid, so that one funded fee cannot queue hundreds of transactions.
        let queued_fees =
            queue.map_or(0, |q| q.fees) - replaced.map_or(0, |e| u128::from(e.tx.tx.fee));
        if queued_fees + u128::from(t.fee) > u128::from(kas) {
            return Err(AdmitError::FeesExceedBalance);
        }
        let (signer, n, rate) = (t.signer, t.nonce, fee_rate(t.fee, bytes));
        if let Some(old) = replaced {
            // Same place in the run: the count and the gapped count stay; only bytes may grow.
            if self.bytes - old.bytes + bytes > self.config.bytes_max {
                return Err(AdmitError::Full);
            }
            let old = old.hash;
            self.take(&old);
        } else {
            if queue.is_some_and(|q| q.txs.len() >= self.config.per_sender_max) {
                return Err(AdmitError::SenderFull);
            }
            // Ready if every nonce from the account's next one up to it is waiting.
            let ready = queue.map_or(account_nonce == n, |q| q.all_waiting(account_nonce, n));
            self.make_room(&signer, ready, rate, bytes)?;
        }
        self.hashes.insert(hash, (signer, n));
        self.by_expiry
            .entry(t.expiry_height)
            .or_default()
            .insert(hash);
        self.bytes += bytes;
        let fee = t.fee;
        let queue = self.by_sender.entry(signer).or_default();
        queue.base = queue.base.max(account_nonce);
        queue.fees += u128::from(fee);
        // Marked as the run stands with it, then ranked once.
        queue.txs.insert(
            n,
            Entry {
                tx,
                hash,
                bytes,
                rate,
                ready: false,
                arrival: self.arrivals,
                admitted: std::time::Instant::now(),
            },
        );
        self.arrivals += 1;
        let end = queue.end_after(Changed::Added(n));
        let entry = queue.txs.get_mut(&n).expect("just inserted");
        entry.ready = n < end;
        if !entry.ready {
            self.gapped += 1;
        }
        self.by_rank.insert(entry.rank());
        mark(queue, end, &mut self.by_rank, &mut self.gapped);
        Ok(hash)
    }

    /// Evicts the cheapest waiting transactions until one more of `bytes` fits (and, if it is
    /// gapped, one more gapped one), or refuses it as [`AdmitError::Full`] if it would be the
    /// cheapest, or if making room would evict a transaction of its own sender.
    fn make_room(
        &mut self,
        sender: &Address,
        ready: bool,
        rate: u128,
        bytes: usize,
    ) -> Result<(), AdmitError> {
        while let Some(victim) = self.first_victim(sender, ready, rate, bytes)? {
            self.evict(&victim);
        }
        Ok(())
    }

    /// What [`Mempool::make_room`] would do first: nothing (`None`: there is room), evict the
    /// cheapest transaction, or refuse.
    fn first_victim(
        &self,
        sender: &Address,
        ready: bool,
        rate: u128,
        bytes: usize,
    ) -> Result<Option<Hash>, AdmitError> {
        let full =
            self.hashes.len() >= self.config.txs_max || self.bytes + bytes > self.config.bytes_max;
        let gapped_full = !ready && self.gapped >= self.config.gapped_max;
        if !full && !gapped_full {
            return Ok(None);
        }
        let Some(&(victim_ready, victim_rate, _, victim)) = self.by_rank.first() else {
            return Err(AdmitError::Full);
        };
        // Only a gapped transaction makes room in the gapped space; the first in order is one
        // if any is waiting.
        let no_gapped_victim = gapped_full && victim_ready;
        if no_gapped_victim
            || (victim_ready, victim_rate) >= (ready, rate)
            || self.hashes[&victim].0 == *sender
        {
            return Err(AdmitError::Full);
        }
        Ok(Some(victim))
    }

    /// Removes a transaction and its sender's later nonces, which cannot be included without it.
    fn evict(&mut self, hash: &Hash) {
        let Some(&(sender, n)) = self.hashes.get(hash) else {
            return;
        };
        let later: Vec<Hash> = self.by_sender[&sender]
            .txs
            .range(n..)
            .map(|(_, e)| e.hash)
            .collect();
        for h in later.iter().rev() {
            self.take(h);
        }
    }

    /// Evicts gapped transactions, cheapest first, while more are held than
    /// [`MempoolConfig::gapped_max`] (taking a transaction out can leave its later nonces
    /// gapped).
    fn trim_gapped(&mut self) {
        while self.gapped > self.config.gapped_max {
            match self.by_rank.first() {
                Some(&(false, _, _, h)) => self.evict(&h),
                _ => return,
            }
        }
    }

    /// Marks each of `sender`'s waiting transactions ready or gapped, as its run now stands
    /// after `changed`.
    fn reclassify(&mut self, sender: &Address, changed: Changed) {
        if let Some(q) = self.by_sender.get_mut(sender) {
            let end = q.end_after(changed);
            mark(q, end, &mut self.by_rank, &mut self.gapped);
        }
    }

    /// Transactions for the next block, each with its hash: for each sender, the run of
    /// consecutive nonces starting at the account's next nonce; across senders, the highest fee
    /// rate first, and among equal rates round-robin (the sender with fewer taken so far, then
    /// by address), up to `txs_max` transactions and `bytes_max` bytes.
    pub fn select(
        &self,
        state: &impl Store,
        txs_max: usize,
        bytes_max: usize,
    ) -> Vec<(SignedTransaction, Hash)> {
        let mut runs: Vec<_> = self
            .by_sender
            .iter()
            .map(|(sender, q)| {
                let next = nonce(state, sender);
                (next, q.txs.range(next..).peekable())
            })
            .collect();
        // Each run's next transaction, by fee rate; on a tie, the run with fewer taken so far,
        // then the lowest index (address).
        use std::cmp::Reverse;
        let mut heads: BinaryHeap<(u128, Reverse<u64>, Reverse<usize>)> = runs
            .iter_mut()
            .enumerate()
            .filter_map(|(i, (next, run))| {
                let &(&n, e) = run.peek()?;
                (n == *next).then_some((e.rate, Reverse(0), Reverse(i)))
            })
            .collect();
        let mut out = Vec::with_capacity(txs_max.min(self.hashes.len()));
        let mut bytes = 0;
        while out.len() < txs_max
            && let Some((_, Reverse(taken), Reverse(i))) = heads.pop()
        {
            let (next, run) = &mut runs[i];
            let (_, e) = run.next().expect("a head is a waiting transaction");
            if bytes + e.bytes > bytes_max {
                continue; // no room: this sender's later transactions must wait too
            }
            bytes += e.bytes;
            out.push((e.tx.clone(), e.hash));
            *next += 1;
            if let Some(&(&n, e)) = run.peek()
                && n == *next
            {
                heads.push((e.rate, Reverse(taken + 1), Reverse(i)));
            }
        }
        out
    }

    /// The nonce a new transaction from `sender` should carry: the first one after the account's
    /// next nonce (`from`) that no waiting transaction uses.
    pub fn next_nonce(&self, sender: &Address, from: u64) -> u64 {
        let mut n = from;
        if let Some(q) = self.by_sender.get(sender) {
            while q.txs.contains_key(&n) {
                n += 1;
            }
        }
        n
    }

    /// Drops what can no longer be included: nonces already used (so every transaction a
    /// finalized block included) and expired transactions.
    ///
    /// Only `senders`' nonces are read: an account's nonce moves only when a block includes a
    /// transaction of its, so after a finalized block they are its transactions' senders. Each
    /// sender's used nonces are split off its queue at once. The cost is the block's senders and
    /// the dropped transactions, never the whole mempool.
    ///
    /// Returns how long each transaction a block included waited here, from admission.
    pub fn prune<'a>(
        &mut self,
        state: &impl Store,
        next_height: u64,
        senders: impl IntoIterator<Item = &'a Address>,
    ) -> Vec<std::time::Duration> {
        let mut waits = Vec::new();
        for sender in senders {
            let Some(q) = self.by_sender.get_mut(sender) else {
                continue;
            };
            q.base = nonce(state, sender);
            let waiting = q.txs.split_off(&q.base);
            let used = std::mem::replace(&mut q.txs, waiting);
            q.fees -= used.values().map(|e| u128::from(e.tx.tx.fee)).sum::<u128>();
            if q.txs.is_empty() {
                self.by_sender.remove(sender);
            } else {
                self.reclassify(sender, Changed::Rebased);
            }
            for e in used.into_values() {
                waits.push(e.admitted.elapsed());
                self.forget(&e);
            }
        }
        // Expired: the next height is past their expiry height.
        let expired: Vec<Hash> = self
            .by_expiry
            .range(..next_height)
            .flat_map(|(_, hs)| hs.iter().copied())
            .collect();
        for h in expired {
            self.take(&h);
        }
        self.trim_gapped();
        waits
    }

    /// Removes one transaction (its sender's later nonces stay, gapped, as space allows).
    pub fn remove(&mut self, hash: &Hash) {
        self.take(hash);
        self.trim_gapped();
    }

    /// Takes one transaction out, and marks its sender's later nonces gapped.
    fn take(&mut self, hash: &Hash) {
        let Some(&(sender, n)) = self.hashes.get(hash) else {
            return;
        };
        let q = self.by_sender.get_mut(&sender).expect("indexed");
        let e = q.txs.remove(&n).expect("indexed");
        q.fees -= u128::from(e.tx.tx.fee);
        if q.txs.is_empty() {
            self.by_sender.remove(&sender);
        }
        self.forget(&e);
        // Its later nonces are gapped now.
        self.reclassify(&sender, Changed::Took(n));
    }

    /// Takes a transaction already out of its sender's queue out of the hash and expiry
    /// indexes and the byte count.
    fn forget(&mut self, e: &Entry) {
        self.hashes.remove(&e.hash);
        self.by_rank.remove(&e.rank());
        if !e.ready {
            self.gapped -= 1;
        }
        let expiry = e.tx.tx.expiry_height;
        if let Some(hs) = self.by_expiry.get_mut(&expiry) {
            hs.remove(&e.hash);
            if hs.is_empty() {
                self.by_expiry.remove(&expiry);
            }
        }
        self.bytes -= e.bytes;
    }
}

/// Marks the transactions of queue `q` below `end` ready and the others gapped, where its run
/// now ends, keeping `by_rank` and the `gapped` count. Only those between the run's old and new
/// ends can change, so admitting a sender's next nonce costs O(log n), not the length of
/// their queue.
fn mark(q: &mut Queue, end: u64, by_rank: &mut BTreeSet<Rank>, gapped: &mut usize) {
    let old_end = q.ready_end;
    let (from, to) = (old_end.min(end), old_end.max(end));
    if from < to {
        for (&n, e) in q.txs.range_mut(from..to) {
            let ready = n < end;
            if e.ready != ready {
                by_rank.remove(&e.rank());
                e.ready = ready;
                by_rank.insert(e.rank());
                if ready {
                    *gapped -= 1;
                } else {
                    *gapped += 1;
                }
            }
        }
    }
    (q.ready_start, q.ready_end) = (q.start(), end);
}

/// The hash and encoded size of each of `txs`, as [`Mempool::admit_batch_checked`] and
/// [`Mempool::refusals_before_signatures`] take them.
pub fn hashes_and_sizes(txs: &[SignedTransaction]) -> Vec<(Hash, usize)> {
    txs.iter().map(SignedTransaction::hash_and_size).collect()
}

/// The accounts of `txs`' signers in `state`, as [`Mempool::admit_batch_checked`] and
/// [`Mempool::refusals_before_signatures`] take them.
pub fn signers_accounts(state: &impl Store, txs: &[SignedTransaction]) -> Vec<Account> {
    txs.iter().map(|t| account(state, &t.tx.signer)).collect()
}

#[cfg(test)]
#[path = "mempool_tests.rs"]
mod tests;
