//! `kassa query`: the chain read through a node's API.

use super::{Common, address_arg, find_asset};
use crate::amount;
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use kassa_types::Hash;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// Chain id, height, state root.
    Status,
    /// An account (address or key name).
    Account { who: String },
    /// All assets.
    Assets,
    /// All societies.
    Societies,
    /// One society.
    Society { id: u64 },
    /// A society's members.
    Members { society: u64 },
    /// One member (address or key name).
    Member { society: u64, who: String },
    /// A society's requests.
    Requests { society: u64 },
    /// One request.
    Request { id: u64 },
    /// Votes on a request.
    Votes { request: u64 },
    /// One amendment.
    Amendment { id: u64 },
    /// A finalized block.
    Block { height: u64 },
    /// A transaction's receipt.
    Tx { hash: String },
    /// A balance with its Merkle proof, verified here against the finalized block's state root.
    Proof {
        who: String,
        /// Asset symbol or id.
        asset: String,
    },
}

pub fn query(cmd: QueryCmd, common: &Common) -> Result<()> {
    let c = common.client();
    let ks = common.keystore();
    let v = match cmd {
        QueryCmd::Status => c.get("/api/v1/status")?,
        QueryCmd::Account { who } => {
            c.get(&format!("/api/v1/accounts/{}", address_arg(&ks, &who)?))?
        }
        QueryCmd::Assets => c.get("/api/v1/assets")?,
        QueryCmd::Societies => c.get("/api/v1/societies")?,
        QueryCmd::Society { id } => c.get(&format!("/api/v1/societies/{id}"))?,
        QueryCmd::Members { society } => c.get(&format!("/api/v1/societies/{society}/members"))?,
        QueryCmd::Member { society, who } => {
            let m = c.get(&format!(
                "/api/v1/societies/{society}/members/{}",
                address_arg(&ks, &who)?
            ))?;
            if !common.json
                && let Some(reminder) = standing_reminder(&m, &c.get("/api/v1/status")?)
            {
                eprintln!("{reminder}");
            }
            m
        }
        QueryCmd::Requests { society } => {
            c.get(&format!("/api/v1/societies/{society}/requests"))?
        }
        QueryCmd::Request { id } => c.get(&format!("/api/v1/requests/{id}"))?,
        QueryCmd::Votes { request } => c.get(&format!("/api/v1/requests/{request}/votes"))?,
        QueryCmd::Amendment { id } => c.get(&format!("/api/v1/amendments/{id}"))?,
        QueryCmd::Block { height } => c.get(&format!("/api/v1/blocks/{height}"))?,
        QueryCmd::Tx { hash } => c.get(&format!("/api/v1/txs/{hash}"))?,
        QueryCmd::Proof { who, asset } => {
            let who = address_arg(&ks, &who)?;
            let (asset, decimals, symbol) = find_asset(&c, &asset)?;
            let key = kassa_state::keys::holding(&who, asset);
            let p = c.get(&format!("/api/v1/proofs/{}", hex::encode(&key)))?;
            // Trust nothing the node says but the block header: check the root against the
            // finalized block, then the value against the root.
            let block = c.get(&format!("/api/v1/blocks/{}", p["height"]))?;
            if block["state_root"] != p["state_root"] {
                bail!("the proof's root is not the block's state root");
            }
            let root = Hash(
                hex::decode(p["state_root"].as_str().unwrap_or(""))?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("root"))?,
            );
            let value = p["value"].as_str().map(hex::decode).transpose()?;
            let proof = kassa_api::decode_proof(p["proof"].as_str().unwrap_or(""))
                .context("undecodable proof")?;
            if !kassa_db::verify_proof(&root, &key, value.as_deref(), &proof) {
                bail!("the proof does not verify against the state root");
            }
            let units = kassa_state::exec::balance_in(asset, value.as_deref())?;
            let out = json!({
                "address": who.to_bech32(), "asset": asset.0, "balance": amount::format(u128::from(units), decimals),
                "symbol": symbol, "height": p["height"], "state_root": p["state_root"], "verified": true,
            });
            common.print(&out, || {
                format!(
                    "{who} holds {} {symbol} at height {} — proof verified against state root {}",
                    amount::format(u128::from(units), decimals),
                    p["height"],
                    p["state_root"].as_str().unwrap_or("")
                )
            });
            return Ok(());
        }
    };
    // Queries print JSON in both modes (it is already meant for people and scripts alike).
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// A reminder for a member whose standing has ended or ends within a day of block time: when,
/// and what brings them back (a lapsed member's waiting period restarts).
fn standing_reminder(member: &Value, status: &Value) -> Option<String> {
    let now = status["time_ms"].as_u64()?;
    let ends = member["lapse_at_ms"].as_u64()?;
    if member["lapsed"] == true {
        return Some(
            "reminder: this member has lapsed; paying the arrears (or checking in a full account \
             with a contribution of 0) reinstates them, and restarts their waiting period"
                .into(),
        );
    }
    let left_ms = ends.checked_sub(now)?;
    (member["good_standing"] == true && left_ms < 24 * 3_600_000).then(|| {
        format!(
            "reminder: good standing ends in {} min (block time {ends}); pay the next pledge \
             (or check in a full account with a contribution of 0) before then",
            left_ms / 60_000
        )
    })
}
