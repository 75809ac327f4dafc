//! The command-line wallet: `kassa keys`, `kassa tx`, `kassa query`, `kassa verify`, `kassa
//! faucet`, and `kassa completions`. Every command prints for people by default (amounts with their asset's
//! decimals and symbol, dates, standing in words, tables for lists) and JSON with `--json`.

mod keys;
mod query;
mod rules;
pub(crate) mod show;
mod tx;
pub(crate) mod verify;

pub use keys::{KeysCmd, keys};
pub use query::{QueryCmd, query};
pub use tx::{TxArgs, faucet, tx};
pub use verify::{VerifyArgs, verify};

use crate::amount;
use crate::client::Client;
use crate::wallet::{self, Keystore};
use anyhow::{Context as _, Result, bail};
use clap::Args;
use kassa_api::wire;
use kassa_types::{Address, AssetId};
use serde::Serialize;
use std::path::PathBuf;

/// Options every wallet command shares.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The node's API.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8645",
        env = "KASSA_NODE"
    )]
    pub node: String,
    /// Print JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The keystore directory (default: $KASSA_HOME/keys or ~/.kassa/keys).
    #[arg(long, global = true)]
    pub keystore: Option<PathBuf>,
}

impl Common {
    pub(super) fn keystore(&self) -> Keystore {
        Keystore::new(self.keystore.clone().unwrap_or_else(wallet::default_dir))
    }
    pub(super) fn client(&self) -> Client {
        Client::new(&self.node)
    }
    /// Prints an answer: `text()` for people, or `v` as JSON with `--json`.
    pub(crate) fn print<T: Serialize>(&self, v: &T, text: impl FnOnce() -> String) {
        if self.json {
            emit(&serde_json::to_string_pretty(v).expect("json"));
        } else {
            emit(&text());
        }
    }
}

/// Writes a command's answer to standard output. A reader that stops early (`kassa … | head`)
/// ends the output quietly, as with other command-line tools, rather than a panic; any other
/// failure to write is said on standard error.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the output: {e}");
    }
}

/// An asset by symbol (`KAS`, `USDK`) or id.
pub(super) fn find_asset(c: &Client, symbol_or_id: &str) -> Result<(AssetId, u8, String)> {
    if let Ok(id) = symbol_or_id.parse::<u64>() {
        let a: wire::Asset = c.get(&format!("/api/v1/assets/{id}"))?;
        return Ok((AssetId(id), a.decimals, a.symbol));
    }
    let mut after = String::new();
    loop {
        let page: wire::Page<wire::Asset> = c.get(&format!("/api/v1/assets?limit=100{after}"))?;
        if let Some(a) = page.items.into_iter().find(|a| a.symbol == symbol_or_id) {
            return Ok((AssetId(a.id), a.decimals, a.symbol));
        }
        match page.next {
            Some(next) => after = format!("&after={next}"),
            None => bail!("no asset with symbol {symbol_or_id}"),
        }
    }
}

/// An amount whose asset is written in it ("12.5 USDK").
pub(super) fn asset_amount(c: &Client, text: &str) -> Result<(AssetId, u64)> {
    let symbol = text
        .split_whitespace()
        .nth(1)
        .context("write the asset after the amount, e.g. \"12.5 USDK\"")?;
    let (asset, decimals, _) = find_asset(c, symbol)?;
    Ok((asset, amount::parse(text, decimals)?.0))
}

/// An amount in a society's asset ("12.5" or "12.5 USDK").
pub(super) fn society_amount(c: &Client, society: u64, text: &str) -> Result<u64> {
    let s: wire::Society = c.get(&format!("/api/v1/societies/{society}"))?;
    let (asset, decimals, symbol) = find_asset(c, &s.asset.to_string())?;
    let (v, written) = amount::parse(text, decimals)?;
    if written.is_some_and(|w| w != symbol) {
        bail!("society {society} is in {symbol} (asset {})", asset.0);
    }
    Ok(v)
}

pub(super) fn request_society(c: &Client, request: u64) -> Result<u64> {
    let r: wire::Request = c.get(&format!("/api/v1/requests/{request}"))?;
    Ok(r.ballot.society)
}

pub(super) fn address_arg(ks: &Keystore, s: &str) -> Result<Address> {
    s.parse()
        .or_else(|_| ks.address(s))
        .with_context(|| format!("{s} is neither an address nor a key name"))
}
