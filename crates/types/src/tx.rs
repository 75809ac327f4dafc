//! Transactions: what a member signs.
//!
//! Signing message: `sha256(TX_NAMESPACE ‖ encode(Transaction))`, where the transaction's
//! encoding starts with its chain id and the hash of the chain's genesis. The namespace keeps a
//! Kassa signature from being valid for any other protocol; the chain id and the genesis hash keep
//! it from being replayed on another Kassa chain (even one that reuses the chain id); the nonce
//! keeps it from being applied twice.

use crate::codec::{self, BoundedString, DecodeError};
use crate::crypto::{self, Address, Hash, SecretKey, Signature};
use crate::ids::{AmendmentId, AssetId, RequestId, SocietyId};
use crate::rules::Rules;
use crate::{
    CHAIN_ID_LEN_MAX, MEMO_LEN_MAX, PURPOSE_LEN_MAX, SOCIETY_NAME_LEN_MAX, SYMBOL_LEN_MAX,
    TX_NAMESPACE, TX_SIZE_MAX,
};
use borsh::{BorshDeserialize, BorshSerialize};

/// A chain id, e.g. `kassa-dev`.
pub type ChainId = BoundedString<CHAIN_ID_LEN_MAX>;
/// An asset symbol (`A-Z0-9`, 2..=12 characters; the character set is checked statelessly).
pub type Symbol = BoundedString<SYMBOL_LEN_MAX>;
/// A society's name.
pub type SocietyName = BoundedString<SOCIETY_NAME_LEN_MAX>;
/// A society's purpose: which misfortunes qualify.
pub type Purpose = BoundedString<PURPOSE_LEN_MAX>;
/// A request's short note or URI.
pub type Memo = BoundedString<MEMO_LEN_MAX>;

/// What a transaction does. Variant order is wire format: append only.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Body {
    /// Move `amount` of `asset` from the signer to `to`.
    Transfer {
        to: Address,
        asset: AssetId,
        amount: u64,
    },
    /// Create an issued asset; the signer becomes its issuer.
    CreateAsset {
        symbol: Symbol,
        decimals: u8,
        max_supply: Option<u64>,
    },
    /// Issuer only: create `amount` new units for `to`, up to the max supply.
    Mint {
        asset: AssetId,
        to: Address,
        amount: u64,
    },
    /// Destroy `amount` of the signer's own units.
    Burn { asset: AssetId, amount: u64 },
    /// Found a society. The founder becomes its first member with `pledge`, and gets no
    /// privilege of any kind.
    CreateSociety {
        name: SocietyName,
        purpose: Purpose,
        asset: AssetId,
        rules: Rules,
        pledge: u64,
    },
    /// Become a member (or an applicant, if admission is by vote) with a monthly pledge.
    Join {
        society: SocietyId,
        pledge: u64,
        identity_commitment: Option<Hash>,
    },
    /// Move `amount` from the signer's account into their own gift account, paying dues. An
    /// amount of zero is a check-in: it renews the standing of a member whose account is full.
    Contribute { society: SocietyId, amount: u64 },
    /// Ask the society for help; posts a bond. With `installments` = 0 the request is for the
    /// lump sum `amount`; with `installments` = n ≥ 1 it is for `amount` each period for n
    /// periods. The money goes to `payee` (the requester when `None`).
    FileRequest {
        society: SocietyId,
        amount: u64,
        evidence_hash: Hash,
        memo: Memo,
        payee: Option<Address>,
        installments: u32,
    },
    /// Vote on a request or an application; may be changed until the window closes. A yes-vote
    /// on a request for help approves `percent` (1–100) of the amount asked; no-votes and votes
    /// on applications carry 100.
    Vote {
        request: RequestId,
        approve: bool,
        percent: u8,
    },
    /// Lend one's voting power to another member (or take it back with `None`).
    Delegate {
        society: SocietyId,
        to: Option<Address>,
    },
    /// Give from one's own gift account to an approved request.
    Gift { request: RequestId, amount: u64 },
    /// Close voting on a request after its window and apply the outcome. Anyone may send it.
    Finalize { request: RequestId },
    /// Pay approved requests from the period's draw budget. Anyone may send it.
    Settle { society: SocietyId },
    /// Give notice of leaving.
    Leave { society: SocietyId },
    /// After notice: leave, with a refund if the rules allow.
    Withdraw { society: SocietyId },
    /// Propose new rules (the asset and the period cannot change).
    ProposeAmendment { society: SocietyId, rules: Rules },
    /// Vote on an amendment; may be changed until the window closes.
    VoteAmendment {
        amendment: AmendmentId,
        approve: bool,
    },
    /// After the window (and, if passed, the timelock): enact or close an amendment. Anyone.
    EnactAmendment { amendment: AmendmentId },
    /// Remove a member lapsed for longer than the society's `lapse_periods`. Anyone.
    Expel { society: SocietyId, member: Address },
    /// A new pledge from the next period on.
    ChangePledge { society: SocietyId, pledge: u64 },
    /// The requester stops their running benefit; what is not yet due is never drawn.
    EndBenefit { request: RequestId },
    /// Pay a running (or ended) benefit's payee the installments funded so far. Anyone.
    ClaimBenefit { request: RequestId },
}

impl Body {
    /// A short stable name of the body's kind, for logs and receipts.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Transfer { .. } => "transfer",
            Body::CreateAsset { .. } => "create_asset",
            Body::Mint { .. } => "mint",
            Body::Burn { .. } => "burn",
            Body::CreateSociety { .. } => "create_society",
            Body::Join { .. } => "join",
            Body::Contribute { .. } => "contribute",
            Body::FileRequest { .. } => "file_request",
            Body::Vote { .. } => "vote",
            Body::Delegate { .. } => "delegate",
            Body::Gift { .. } => "gift",
            Body::Finalize { .. } => "finalize",
            Body::Settle { .. } => "settle",
            Body::Leave { .. } => "leave",
            Body::Withdraw { .. } => "withdraw",
            Body::ProposeAmendment { .. } => "propose_amendment",
            Body::VoteAmendment { .. } => "vote_amendment",
            Body::EnactAmendment { .. } => "enact_amendment",
            Body::Expel { .. } => "expel",
            Body::ChangePledge { .. } => "change_pledge",
            Body::EndBenefit { .. } => "end_benefit",
            Body::ClaimBenefit { .. } => "claim_benefit",
        }
    }
}

/// An unsigned transaction. Field order is wire format.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Transaction {
    pub chain_id: ChainId,
    /// The hash of the chain's genesis (see `Genesis::hash` in kassa-state).
    pub genesis: Hash,
    pub signer: Address,
    /// Must equal the signer's next nonce.
    pub nonce: u64,
    /// KAS base units, burned.
    pub fee: u64,
    /// The last block height at which the transaction may be included.
    pub expiry_height: u64,
    pub body: Body,
}

impl Transaction {
    /// The exact bytes that are hashed and signed: `TX_NAMESPACE ‖ encode(self)`.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = TX_NAMESPACE.to_vec();
        out.extend_from_slice(&codec::encode(self));
        out
    }

    /// The 32-byte message the signature covers: SHA-256 of [`Self::signing_bytes`].
    pub fn sighash(&self) -> Hash {
        Hash::of(&[&self.signing_bytes()])
    }

    /// Signs with `key`. The key must belong to `self.signer` for the result to verify.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign(&self.sighash().0);
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its signature. Encoding: `encode(tx) ‖ signature(64)`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl SignedTransaction {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes at most [`TX_SIZE_MAX`] bytes, refusing trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, TX_SIZE_MAX)
    }

    /// The transaction's id: SHA-256 of its canonical signed bytes.
    pub fn hash(&self) -> Hash {
        self.hash_and_size().0
    }

    /// [`SignedTransaction::hash`] and the length of the canonical bytes, from one encoding.
    pub fn hash_and_size(&self) -> (Hash, usize) {
        codec::hash_and_len(self)
    }

    /// Whether the signature is the signer's over [`Transaction::sighash`] (ZIP-215).
    pub fn verify_signature(&self) -> bool {
        crypto::verify(&self.tx.signer, &self.tx.sighash().0, &self.signature)
    }
}
