//! The API's JSON, defined once: every body the node answers or accepts is a type here, used by
//! the server, by the CLI (which reads answers into the same types) and by the tests, and
//! described in the OpenAPI document generated from them (`/openapi.json`).
//!
//! Conventions: amounts and karma are decimal strings ([`Amount`]; JavaScript numbers lose
//! precision above 2^53); hashes are lowercase hex ([`Hex`]); accounts are bech32 addresses
//! ([`Addr`]); times are milliseconds of block time. Bodies the node accepts refuse unknown
//! fields; answers may grow fields, so clients read them leniently.

mod event;
mod state;

pub use event::Event;
pub use state::*;

use kassa_types::{Address, Hash};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// An amount of an asset in base units, or whole karma: a decimal string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[schema(value_type = String, pattern = "^[0-9]{1,39}$", example = "1000000")]
pub struct Amount(pub u128);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(Amount)
            .map_err(|_| serde::de::Error::custom("an amount is a decimal string"))
    }
}

impl From<u64> for Amount {
    fn from(v: u64) -> Self {
        Amount(v.into())
    }
}

/// Karma as shown: whole units (the state keeps fractional bits below them).
pub fn karma(raw: u128) -> Amount {
    Amount(raw >> kassa_state::pool::KARMA_FRACTION_BITS)
}

/// A 32-byte hash: 64 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
pub struct Hex(pub Hash);

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_hash(&text)
            .map(Hex)
            .ok_or_else(|| serde::de::Error::custom("a hash is 64 hex digits"))
    }
}

/// A hash from 64 hex digits.
pub fn parse_hash(text: &str) -> Option<Hash> {
    let bytes: [u8; 32] = hex::decode(text).ok()?.try_into().ok()?;
    Some(Hash(bytes))
}

/// An account: its bech32 address (`kassa1…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ToSchema)]
#[schema(value_type = String, pattern = "^kassa1[02-9ac-hj-np-z]+$")]
pub struct Addr(pub Address);

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_bech32())
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map(Addr).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_bech32())
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0.0))
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Every error: `{"error": {...}}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorInfo,
}

/// What went wrong: a stable snake_case code (a refused transaction's rejection name), the
/// rejection's number where there is one, and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorInfo {
    pub code: String,
    pub number: Option<u16>,
    pub message: String,
}

/// One page of a list, and the cursor of the next (`null` at the end): pass it as `?after=`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// `?after=&limit=`: the page after the item whose id is `after` (a previous page's `next`), or
/// the first page; at most `limit` items, and never more than 100.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// The chain as this node last finalized it, and what a transaction is signed for.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Status {
    pub chain_id: String,
    pub genesis_hash: Hex,
    pub protocol_version: u32,
    pub height: u64,
    pub block_hash: Hex,
    pub state_root: Hex,
    pub time_ms: u64,
    pub min_fee: Amount,
    pub mempool_size: u64,
    /// Whether this node drips test money (development chains only).
    pub faucet: bool,
    /// The lowest height whose block, receipts and state this node still keeps: 0 on an
    /// archive, higher on a node started with `--prune-keep`.
    #[serde(default)]
    pub pruned_below: u64,
}

/// `POST /api/v1/txs`: a signed transaction's canonical bytes, hex.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    pub tx: String,
}

/// `POST /api/v1/txs/batch`: signed transactions' canonical bytes, hex; at most 1,000 (the
/// node's `api.batch_max`) and 2 MiB in all.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub txs: Vec<String>,
}

/// One result per transaction of a batch, in its order.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<Submitted>,
}

/// A batch's transaction: waiting in the mempool, or refused (with its code and number, as
/// `POST /api/v1/txs` would answer it; nothing changed for it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Submitted {
    Pending { hash: Hex },
    Refused { error: ErrorInfo },
}

/// `?wait=true`: wait for finalization (at most 30 s) and answer the receipt.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    #[serde(default)]
    pub wait: bool,
}

/// `POST /api/v1/faucet`: the account to drip to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaucetBody {
    pub address: String,
}

/// A transaction as the node knows it: waiting, or included in a finalized block where it was
/// applied (with what it did) or failed (with why; its fee is still paid).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Tx {
    Pending {
        hash: Hex,
    },
    Applied {
        hash: Hex,
        fee: Amount,
        height: u64,
        index: u32,
        events: Vec<Event>,
    },
    Failed {
        hash: Hex,
        fee: Amount,
        height: u64,
        index: u32,
        error: ErrorInfo,
    },
}

impl Tx {
    /// A receipt of a transaction included at `height`, `index`.
    pub fn included(r: &kassa_state::Receipt, height: u64, index: u32) -> Tx {
        let (hash, fee) = (Hex(r.tx_hash), Amount::from(r.fee));
        match r.rejection() {
            None => Tx::Applied {
                hash,
                fee,
                height,
                index,
                events: r.events().iter().map(Event::from).collect(),
            },
            Some(rej) => Tx::Failed {
                hash,
                fee,
                height,
                index,
                error: ErrorInfo {
                    code: rej.name().into(),
                    number: Some(rej.code()),
                    message: rej.message().into(),
                },
            },
        }
    }

    pub fn hash(&self) -> Hash {
        match self {
            Tx::Pending { hash } | Tx::Applied { hash, .. } | Tx::Failed { hash, .. } => hash.0,
        }
    }
}

/// A finalized block as listed: its header and its transactions' hashes, signers and kinds.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Block {
    pub height: u64,
    pub hash: Hex,
    pub parent: Hex,
    pub timestamp_ms: u64,
    pub proposer: Addr,
    pub tx_root: Hex,
    pub state_root: Hex,
    pub txs: Vec<BlockTx>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockTx {
    pub hash: Hex,
    pub signer: Addr,
    pub nonce: u64,
    pub kind: String,
}

impl From<&kassa_types::Block> for Block {
    fn from(b: &kassa_types::Block) -> Self {
        Block {
            height: b.header.height,
            hash: Hex(b.header.hash()),
            parent: Hex(b.header.parent),
            timestamp_ms: b.header.timestamp_ms,
            proposer: Addr(b.header.proposer),
            tx_root: Hex(b.header.tx_root),
            state_root: Hex(b.header.state_root),
            txs: b
                .txs
                .iter()
                .map(|t| BlockTx {
                    hash: Hex(t.hash()),
                    signer: Addr(t.tx.signer),
                    nonce: t.tx.nonce,
                    kind: t.tx.body.kind().into(),
                })
                .collect(),
        }
    }
}

/// `?before=&limit=`: blocks below `before` (default: up to the head), newest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BlocksQuery {
    pub before: Option<u64>,
    pub limit: Option<usize>,
}

/// The newest blocks, newest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Blocks {
    pub items: Vec<Block>,
}

/// A block's canonical bytes, for auditors that replay the chain.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RawBlock {
    pub height: u64,
    pub hex: String,
}

/// The first finalization certificate at or above a height: what a follower checks synced
/// blocks against, and a light client the state root it proves values against.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Finality {
    pub height: u64,
    pub block: Hex,
    /// The certified block's header, Borsh, hex: it hashes to `block` (SHA-256 of
    /// `KASSA_BLOCK_V1` and these bytes) and carries the state root.
    pub header: String,
    /// The certificate's canonical bytes, hex.
    pub certificate: String,
}

/// `?keys=`: the state keys to prove, hex, separated by commas (at most [`PROOF_KEYS_MAX`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofsQuery {
    pub keys: String,
}

/// Most keys one `GET /api/v1/proofs` proves.
pub const PROOF_KEYS_MAX: usize = 16;

/// A state value and its proof against the state root of the height the state is at (the
/// current state: proofs are of current values only). `kind` is `present` (the proof shows the
/// key has `value`) or `absent` (that it has none, `value` `null`); `proof` is qmdb's encoding
/// of that proof, hex (docs/protocol.md, "State proofs").
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Proof {
    pub key: String,
    pub height: u64,
    pub state_root: Hex,
    /// The block of `height`, once committed here (`null` for the moment it is being written).
    pub block_hash: Option<Hex>,
    /// The value's bytes, hex; `null` when the key is absent (the proof then proves absence).
    pub value: Option<String>,
    pub kind: String,
    pub proof: String,
}

/// Several keys proven at one height.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Proofs {
    pub height: u64,
    pub state_root: Hex,
    pub block_hash: Option<Hex>,
    pub items: Vec<Proof>,
}

/// One finalized block on the event stream (`GET /api/v1/events`, server-sent events named
/// `block`): its head and every transaction's receipt.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Finalized {
    pub height: u64,
    pub block_hash: Hex,
    pub state_root: Hex,
    pub time_ms: u64,
    pub txs: Vec<Tx>,
}

/// The last event of a stream the node ends (an event named `close`): why, as a stable code
/// (`lagged`: the client read too slowly and missed blocks; reconnect and catch up from
/// `GET /api/v1/blocks`), and a message for people.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamClosed {
    pub reason: String,
    pub message: String,
}
