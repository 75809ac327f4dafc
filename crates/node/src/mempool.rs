//! The mempool: signed transactions waiting for a block.
//!
//! Admission runs the stateless checks (decoding limits, signature, chain id, fee floor, static
//! fields) and cheap checks against the current state (expiry, nonce window, fee balance), then
//! keeps each sender's transactions ordered by nonce. Everything is bounded: total count, total
//! bytes, transactions per sender, and how far ahead of the account's nonce a transaction may be.

use kassa_state::exec::{account, nonce};
use kassa_state::records::ChainParams;
use kassa_state::{Store, check_stateless};
use kassa_types::{Address, Hash, Rejection, SignedTransaction, crypto};
use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// can wait forever).
    pub expiry_window: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            txs_max: 50_000,
            bytes_max: 64 * 1024 * 1024,
            per_sender_max: 256,
            nonce_window: 256,
            expiry_window: 100_000,
        }
    }
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

/// Whether each transaction's signature is valid: one batch check if all are; a batch that
/// fails is split in halves and each half checked again, so `k` bad signatures among `n` cost
/// about `2k·log2(n)` batch checks, not `n` single ones (a peer that slips one forged signature
/// into a large batch does not make every other one be checked alone).
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
    let mut valid = vec![false; txs.len()];
    mark(txs, &mut valid);
    valid
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
    /// Another transaction from the same sender with the same nonce is waiting.
    #[error("another transaction with this nonce is already waiting")]
    NonceTaken,
    /// The sender already has the most transactions allowed waiting.
    #[error("too many transactions from this sender are waiting")]
    SenderFull,
    /// The mempool is full.
    #[error("the mempool is full; try again later")]
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

/// One sender's waiting transactions, by nonce, and the sum of their fees.
#[derive(Debug, Default)]
struct Queue {
    txs: BTreeMap<u64, Entry>,
    fees: u128,
}

#[derive(Debug)]
struct Entry {
    tx: SignedTransaction,
    hash: Hash,
    bytes: usize,
}

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
    bytes: usize,
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
        self.admit_checked(tx, state, params, next_height, false)
    }

    /// Admits many transactions whose signatures the caller checked outside any lock: `valid`
    /// must be what [`signatures_each_valid`] says of `txs`. A signature found bad is checked
    /// once more on its own, for the refusal's reason (ZIP-215 makes both give the same
    /// answer).
    pub fn admit_batch_checked(
        &mut self,
        txs: Vec<SignedTransaction>,
        valid: &[bool],
        state: &impl Store,
        params: &ChainParams,
        next_height: u64,
    ) -> Vec<Result<Hash, AdmitError>> {
        assert_eq!(txs.len(), valid.len(), "one verdict per transaction");
        txs.into_iter()
            .zip(valid)
            .map(|(t, ok)| self.admit_checked(t, state, params, next_height, *ok))
            .collect()
    }

    fn admit_checked(
        &mut self,
        tx: SignedTransaction,
        state: &impl Store,
        params: &ChainParams,
        next_height: u64,
        signature_verified: bool,
    ) -> Result<Hash, AdmitError> {
        check_stateless(&tx, params, !signature_verified).map_err(AdmitError::Rejected)?;
        let t = &tx.tx;
        if next_height > t.expiry_height {
            return Err(AdmitError::Rejected(Rejection::Expired));
        }
        let account = account(state, &t.signer);
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
        // Every waiting transaction of the sender will burn its fee: refuse what could not be
        // paid, so that one funded fee cannot queue hundreds of transactions.
        let queue = self.by_sender.get(&t.signer);
        let queued_fees = queue.map_or(0, |q| q.fees);
        if queued_fees + u128::from(t.fee) > u128::from(kas) {
            return Err(AdmitError::FeesExceedBalance);
        }
        let (hash, bytes) = tx.hash_and_size();
        if self.hashes.contains_key(&hash) {
            return Err(AdmitError::Duplicate);
        }
        if queue.is_some_and(|q| q.txs.contains_key(&t.nonce)) {
            return Err(AdmitError::NonceTaken);
        }
        if queue.is_some_and(|q| q.txs.len() >= self.config.per_sender_max) {
            return Err(AdmitError::SenderFull);
        }
        if self.hashes.len() >= self.config.txs_max || self.bytes + bytes > self.config.bytes_max {
            return Err(AdmitError::Full);
        }
        let (signer, n) = (t.signer, t.nonce);
        self.hashes.insert(hash, (signer, n));
        self.by_expiry
            .entry(t.expiry_height)
            .or_default()
            .insert(hash);
        self.bytes += bytes;
        let queue = self.by_sender.entry(signer).or_default();
        queue.fees += u128::from(tx.tx.fee);
        queue.txs.insert(n, Entry { tx, hash, bytes });
        Ok(hash)
    }

    /// Transactions for the next block, each with its hash: for each sender, the run of
    /// consecutive nonces starting at the account's next nonce, taken round-robin across senders
    /// so that no sender can crowd out the others, up to `txs_max` transactions and `bytes_max`
    /// bytes.
    pub fn select(
        &self,
        state: &impl Store,
        txs_max: usize,
        bytes_max: usize,
    ) -> Vec<(SignedTransaction, Hash)> {
        let mut runs: Vec<(u64, std::collections::btree_map::Range<'_, u64, Entry>)> = self
            .by_sender
            .iter()
            .map(|(sender, q)| {
                let next = nonce(state, sender);
                (next, q.txs.range(next..))
            })
            .collect();
        let mut out = Vec::new();
        let mut bytes = 0;
        loop {
            let mut progressed = false;
            for (expected, run) in runs.iter_mut() {
                if out.len() >= txs_max {
                    return out;
                }
                let Some((n, e)) = run.next() else { continue };
                if *n != *expected || bytes + e.bytes > bytes_max {
                    // A gap (or no room): this sender's later transactions must wait.
                    *run = Default::default();
                    continue;
                }
                *expected += 1;
                bytes += e.bytes;
                out.push((e.tx.clone(), e.hash));
                progressed = true;
            }
            if !progressed {
                return out;
            }
        }
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
    pub fn prune<'a>(
        &mut self,
        state: &impl Store,
        next_height: u64,
        senders: impl IntoIterator<Item = &'a Address>,
    ) {
        for sender in senders {
            let Some(q) = self.by_sender.get_mut(sender) else {
                continue;
            };
            let waiting = q.txs.split_off(&nonce(state, sender));
            let used = std::mem::replace(&mut q.txs, waiting);
            q.fees -= used.values().map(|e| u128::from(e.tx.tx.fee)).sum::<u128>();
            if q.txs.is_empty() {
                self.by_sender.remove(sender);
            }
            for e in used.into_values() {
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
            self.remove(&h);
        }
    }

    /// Removes one transaction.
    pub fn remove(&mut self, hash: &Hash) {
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
    }

    /// Takes a transaction already out of its sender's queue out of the hash and expiry
    /// indexes and the byte count.
    fn forget(&mut self, e: &Entry) {
        self.hashes.remove(&e.hash);
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
