//! `kassa verify`: a value of the chain's state, checked against the chain's validators rather
//! than taken from the node that serves it.
//!
//! The only thing trusted is the genesis file (its chain id and validator keys). From any node,
//! the command fetches a proof of each state key it needs against the node's current state, and
//! the finalization certificate of the proof's height with the header of the block it certifies
//! (not the block: a light client downloads no transactions), and checks, in order: the
//! certificate is signed by a quorum of the genesis validators; the header hashes to the block
//! certified; the proof's root is the header's state root; the proof proves its value. A node
//! that alters a value, a proof, a block or a certificate is caught at one of these steps, and
//! the command says which and fails.

use super::{Common, address_arg};
use crate::amount;
use crate::client::Client;
use crate::genesis::GenesisFile;
use anyhow::{Context as _, Result, bail, ensure};
use clap::{Args, Subcommand};
use kassa_api::wire;
use kassa_node::follow::{self, Certified};
use kassa_state::records::{Asset, Member, Request, Society};
use kassa_types::{AssetId, RequestId, SocietyId};

use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The chain's genesis file: its validators are the only authority trusted.
    #[arg(long)]
    pub genesis: PathBuf,
    #[command(subcommand)]
    pub what: VerifyWhat,
}

#[derive(Debug, Subcommand)]
pub enum VerifyWhat {
    /// An account's balance (address or key name) of an asset (symbol or id; KAS by default):
    /// the symbol's asset id and the asset's decimals are proven too.
    Balance {
        who: String,
        #[arg(default_value = "KAS")]
        asset: String,
    },
    /// A member of a society (address or key name): status, pledge, dues clock and good
    /// standing at the certified block's time (the society's record proven too).
    Member { society: u64, who: String },
    /// A request for help: its status and what was approved and paid.
    Request { id: u64 },
    /// Any state key (hex): its value, hex (docs/protocol.md lists the keys).
    Key { key: String },
}

/// The newest finalized block the node serves, checked against the genesis validators (as a
/// follower checks it).
pub(crate) fn certified(c: &Client, genesis: &GenesisFile) -> Result<Certified> {
    let source = crate::follower::HttpSource::shared(c.base());
    let mut rng = rand_core_10::UnwrapErr(getrandom::SysRng);
    Ok(crate::sync::block_on(follow::newest_certified(
        source.as_ref(),
        &genesis.trust()?,
        &mut rng,
    ))??)
}

/// Where the proven values stand: whom to believe, and the certified block of the last proof.
/// A node proves its current state only, which moves on between two proofs, so each proof is
/// checked against the certificate of its own height.
pub(crate) struct Anchor {
    trust: follow::Trust,
    cert: std::cell::RefCell<Certified>,
}

impl Anchor {
    fn new(c: &Client, genesis: &GenesisFile) -> Result<Anchor> {
        Ok(Anchor {
            trust: genesis.trust()?,
            cert: std::cell::RefCell::new(certified(c, genesis)?),
        })
    }

    /// The certified block of `height`, from the node's certificate of it, checked.
    fn at(&self, c: &Client, height: u64) -> Result<std::cell::Ref<'_, Certified>> {
        if self.cert.borrow().height != height {
            let f: wire::Finality = c
                .get_opt(&format!("/api/v1/blocks/{height}/finality"))?
                .with_context(|| {
                    format!("the node proved at height {height} but has no certificate of it")
                })?;
            ensure!(
                f.height == height,
                "the node proved at height {height} but sent the certificate of block {}",
                f.height
            );
            let f = kassa_node::Finality {
                height: f.height,
                block: f.block.0,
                header: hex::decode(&f.header)?,
                certificate: hex::decode(&f.certificate)?,
            };
            let mut rng = rand_core_10::UnwrapErr(getrandom::SysRng);
            *self.cert.borrow_mut() = follow::check(&self.trust, &mut rng, &f)?;
        }
        Ok(self.cert.borrow())
    }
}

/// The value under `key` in the node's current state, proven against the state root of a block
/// the validators certified (that of the proof's height).
fn proven(c: &Client, anchor: &Anchor, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let p: wire::Proof = c.get(&format!("/api/v1/proofs/{}", hex::encode(key)))?;
    let at = anchor.at(c, p.height)?;
    let root = at.header.state_root;
    ensure!(
        p.state_root.0 == root,
        "key {}: a proof against another state root than block {}'s",
        hex::encode(key),
        at.height
    );
    let value = p.value.as_deref().map(hex::decode).transpose()?;
    let proof = kassa_api::decode_proof(&p.kind, &p.proof).context("an undecodable proof")?;
    ensure!(
        kassa_db::verify(&root, key, value.as_deref(), &proof),
        "key {}: the value does not match its proof against block {}'s state root",
        hex::encode(key),
        at.height
    );
    Ok(value)
}

/// What `kassa verify` proved.
#[derive(Serialize)]
struct Verified {
    verified: bool,
    height: u64,
    block: wire::Hex,
    state_root: wire::Hex,
    signers: usize,
    validators: usize,
    /// What was proven, for people.
    value: String,
}

fn decode<T: borsh::BorshDeserialize>(what: &str, bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).with_context(|| format!("the proven {what} does not decode"))
}

/// An asset by symbol or id, with its record, each proven.
fn proven_asset(c: &Client, at: &Anchor, symbol_or_id: &str) -> Result<(AssetId, Asset)> {
    let id = match symbol_or_id.parse::<u64>() {
        Ok(id) => AssetId(id),
        Err(_) => {
            let key = kassa_state::keys::symbol(symbol_or_id);
            let v = proven(c, at, &key)?
                .with_context(|| format!("no asset has the symbol {symbol_or_id} (proven)"))?;
            decode("asset id", &v)?
        }
    };
    Ok((id, proven_asset_record(c, at, id)?))
}

/// An asset's record, proven.
fn proven_asset_record(c: &Client, at: &Anchor, id: AssetId) -> Result<Asset> {
    let v = proven(c, at, &kassa_state::keys::asset(id))?
        .with_context(|| format!("no asset {} (proven)", id.0))?;
    decode("asset", &v)
}

pub fn verify(args: VerifyArgs, common: &Common) -> Result<()> {
    let genesis = GenesisFile::load(&args.genesis)?;
    let c = common.client();
    let at = Anchor::new(&c, &genesis)?;
    let value = match &args.what {
        VerifyWhat::Balance { who, asset } => {
            let who = address_arg(&common.keystore(), who)?;
            let (id, a) = proven_asset(&c, &at, asset)?;
            let v = proven(&c, &at, &kassa_state::keys::holding(&who, id))?;
            let units = kassa_state::exec::balance_in(id, v.as_deref())
                .context("the proven balance does not decode")?;
            format!(
                "{who} holds {} {}",
                amount::format(u128::from(units), a.decimals),
                a.symbol.as_str()
            )
        }
        VerifyWhat::Member { society, who } => {
            let who = address_arg(&common.keystore(), who)?;
            let id = SocietyId(*society);
            let v = proven(&c, &at, &kassa_state::keys::society(id))?
                .with_context(|| format!("there is no society {society} (proven)"))?;
            let meta: Society = decode("society", &v)?;
            match proven(&c, &at, &kassa_state::keys::member(id, &who))? {
                None => format!("{who} is not a member of society {society}"),
                Some(v) => {
                    let m: Member = decode("member", &v)?;
                    let asset = proven_asset_record(&c, &at, meta.asset)?;
                    let now = meta.period_at(at.cert.borrow().header.timestamp_ms);
                    let standing = if m.in_good_standing(now) {
                        "in good standing"
                    } else {
                        "not in good standing"
                    };
                    format!(
                        "{who} in society {society} ({}): {:?}, pledge {} {}, paid until period \
                         {} (now {now}), {standing}",
                        meta.name.as_str(),
                        m.status,
                        amount::format(u128::from(m.price(now)), asset.decimals),
                        asset.symbol.as_str(),
                        m.paid_until
                    )
                }
            }
        }
        VerifyWhat::Request { id } => {
            let v = proven(&c, &at, &kassa_state::keys::request(RequestId(*id)))?;
            match v {
                None => format!("there is no request {id}"),
                Some(v) => {
                    let r: Request = decode("request", &v)?;
                    format!(
                        "request {id} by {}: {:?}, approved {}, paid {}, gifted {}",
                        r.requester, r.status, r.approved, r.paid, r.gifted
                    )
                }
            }
        }
        VerifyWhat::Key { key } => {
            let key = hex::decode(key).context("the key is not hex")?;
            if key.is_empty() {
                bail!("an empty key");
            }
            match proven(&c, &at, &key)? {
                None => "no value (proven absent)".to_string(),
                Some(v) => hex::encode(v),
            }
        }
    };
    let at = at.cert.borrow();
    let out = Verified {
        verified: true,
        height: at.height,
        block: wire::Hex(at.header.hash()),
        state_root: wire::Hex(at.header.state_root),
        signers: at.signers,
        validators: at.validators,
        value,
    };
    common.print(&out, || {
        format!(
            "{}\nverified at height {} by {} of {} validators (block {}, state root {})",
            out.value, out.height, out.signers, out.validators, out.block, out.state_root
        )
    });
    Ok(())
}
