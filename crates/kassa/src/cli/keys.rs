//! `kassa keys`: the encrypted keystore.

use super::Common;
use crate::genesis;
use crate::wallet::{self};
use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use kassa_types::SecretKey;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a new key, encrypted with a passphrase.
    New { name: String },
    /// List the keys (names and addresses; no passphrase needed).
    List,
    /// Show a key's address.
    Show { name: String },
    /// Import a key from its secret seed (hex), or a development account with --dev N.
    Import {
        name: String,
        #[arg(long, conflicts_with = "dev")]
        seed_hex: Option<String>,
        /// Import dev account N of a `--dev` chain (its key is public knowledge).
        #[arg(long)]
        dev: Option<usize>,
    },
    /// Print a key's secret seed (hex). Anyone who sees it can spend from the account.
    Export { name: String },
}

pub fn keys(cmd: KeysCmd, common: &Common) -> Result<()> {
    let ks = common.keystore();
    match cmd {
        KeysCmd::New { name } => {
            let p = wallet::passphrase("Passphrase for the new key: ", true)?;
            let addr = ks.save(&name, &SecretKey::generate(), &p)?;
            common.print(&json!({"name": name, "address": addr.to_bech32()}), || {
                format!("{name}: {addr}")
            });
        }
        KeysCmd::List => {
            let list = ks.list()?;
            let v: Vec<Value> = list
                .iter()
                .map(|(n, a)| json!({"name": n, "address": a}))
                .collect();
            common.print(&json!(v), || {
                list.iter()
                    .map(|(n, a)| format!("{n}: {a}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCmd::Show { name } => {
            let a = ks.address(&name)?;
            common.print(
                &json!({"name": name, "address": a.to_bech32(), "public_key": hex::encode(a.0)}),
                || format!("{name}: {a}\npublic key: {}", hex::encode(a.0)),
            );
        }
        KeysCmd::Import {
            name,
            seed_hex,
            dev,
        } => {
            let key = match (seed_hex, dev) {
                (Some(h), None) => {
                    let bytes = hex::decode(h.trim()).context("the seed is not hex")?;
                    SecretKey::from_seed(
                        bytes
                            .try_into()
                            .map_err(|_| anyhow::anyhow!("a seed is 32 bytes"))?,
                    )
                }
                (None, Some(i)) => genesis::dev_key(i),
                _ => bail!("give --seed-hex HEX or --dev N"),
            };
            let p = wallet::passphrase("Passphrase for the imported key: ", true)?;
            let addr = ks.save(&name, &key, &p)?;
            common.print(&json!({"name": name, "address": addr.to_bech32()}), || {
                format!("{name}: {addr}")
            });
        }
        KeysCmd::Export { name } => {
            let p = wallet::passphrase(&format!("Passphrase for {name}: "), false)?;
            let key = ks.unlock(&name, &p)?;
            common.print(
                &json!({"name": name, "seed_hex": hex::encode(key.seed())}),
                || hex::encode(key.seed()),
            );
        }
    }
    Ok(())
}
