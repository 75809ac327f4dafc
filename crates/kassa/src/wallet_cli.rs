//! `kassa keys`, `kassa tx`, `kassa query`, `kassa faucet`: the command-line wallet.

use crate::amount;
use crate::client::Client;
use crate::genesis;
use crate::wallet::{self, Keystore};
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kassa_types::rules::{Admission, Identity, Rules};
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{
    Address, AmendmentId, AssetId, Hash, RequestId, SecretKey, SocietyId, Transaction,
};
use serde_json::{Value, json};
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
    fn keystore(&self) -> Keystore {
        Keystore::new(self.keystore.clone().unwrap_or_else(wallet::default_dir))
    }
    fn client(&self) -> Client {
        Client::new(&self.node)
    }
    fn print(&self, v: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).expect("json"));
        } else {
            println!("{}", text());
        }
    }
}

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

/// Overrides of a society's rules; anything not given keeps its default (or current) value.
#[derive(Debug, Args, Clone, Default)]
pub struct RulesArgs {
    /// Contribution period, seconds of block time.
    #[arg(long)]
    pub period_secs: Option<u64>,
    /// Smallest monthly pledge (e.g. "10 USDK").
    #[arg(long)]
    pub min_pledge: Option<String>,
    /// Largest monthly pledge.
    #[arg(long)]
    pub max_pledge: Option<String>,
    /// open or vote.
    #[arg(long)]
    pub admission: Option<String>,
    /// public or commitment.
    #[arg(long)]
    pub identity: Option<String>,
    #[arg(long)]
    pub waiting_periods: Option<u32>,
    #[arg(long)]
    pub grace_periods: Option<u32>,
    #[arg(long)]
    pub gift_cap_pledges: Option<u32>,
    #[arg(long)]
    pub min_members: Option<u32>,
    #[arg(long)]
    pub karma_half_life_periods: Option<u32>,
    #[arg(long)]
    pub benefit_ratio: Option<u32>,
    /// Largest request (e.g. "5000 USDK").
    #[arg(long)]
    pub max_request: Option<String>,
    #[arg(long)]
    pub bond_bps: Option<u32>,
    #[arg(long)]
    pub filing_karma_bps: Option<u32>,
    #[arg(long)]
    pub voting_window_secs: Option<u64>,
    #[arg(long)]
    pub approval_net_bps: Option<u32>,
    #[arg(long)]
    pub quorum_bps: Option<u32>,
    #[arg(long)]
    pub auto_share: Option<bool>,
    #[arg(long)]
    pub max_draw_bps: Option<u32>,
    #[arg(long)]
    pub notice_periods: Option<u32>,
    #[arg(long)]
    pub exit_refund: Option<bool>,
    #[arg(long)]
    pub amendment_threshold_bps: Option<u32>,
    #[arg(long)]
    pub amendment_timelock_periods: Option<u32>,
    /// Periods a member may stay lapsed before anyone may expel them (at least 1).
    #[arg(long)]
    pub lapse_periods: Option<u32>,
    /// Most installments a benefit may be paid in.
    #[arg(long)]
    pub max_installments: Option<u32>,
    /// Bond of an application for admission, in basis points of the pledge.
    #[arg(long)]
    pub application_bond_bps: Option<u32>,
}

impl RulesArgs {
    fn apply(&self, mut r: Rules, decimals: u8) -> Result<Rules> {
        let amt = |s: &Option<String>| -> Result<Option<u64>> {
            s.as_ref()
                .map(|t| amount::parse(t, decimals).map(|(v, _)| v))
                .transpose()
        };
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { r.$f = v; } )*};
        }
        set!(
            period_secs,
            waiting_periods,
            grace_periods,
            gift_cap_pledges,
            min_members,
            karma_half_life_periods,
            benefit_ratio,
            bond_bps,
            filing_karma_bps,
            voting_window_secs,
            approval_net_bps,
            quorum_bps,
            auto_share,
            max_draw_bps,
            notice_periods,
            exit_refund,
            amendment_threshold_bps,
            amendment_timelock_periods,
            lapse_periods,
            max_installments,
            application_bond_bps
        );
        if let Some(v) = amt(&self.min_pledge)? {
            r.min_pledge = v;
        }
        if let Some(v) = amt(&self.max_pledge)? {
            r.max_pledge = v;
        }
        if let Some(v) = amt(&self.max_request)? {
            r.max_request = v;
        }
        if let Some(a) = &self.admission {
            r.admission = match a.as_str() {
                "open" => Admission::Open,
                "vote" => Admission::Vote,
                _ => bail!("admission is open or vote"),
            };
        }
        if let Some(i) = &self.identity {
            r.identity = match i.as_str() {
                "public" => Identity::Public,
                "commitment" => Identity::Commitment,
                _ => bail!("identity is public or commitment"),
            };
        }
        r.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(r)
    }
}

/// A society's rules as the API shows them: `Rules`' own JSON shape (unknown or missing fields
/// are errors, never defaults), beside the derived `voting_window_secs_min`.
fn rules_from_json(v: &Value) -> Result<Rules> {
    let mut v = v.clone();
    if let Some(fields) = v.as_object_mut() {
        fields.remove("voting_window_secs_min");
    }
    serde_json::from_value(v).context("the society's rules as the node reports them")
}

/// Every transaction body, as a command.
#[derive(Debug, Subcommand)]
pub enum TxBody {
    /// Send an asset.
    Transfer {
        #[arg(long)]
        to: String,
        /// e.g. "12.5 KAS" or "3 USDK".
        #[arg(long)]
        amount: String,
    },
    /// Create an issued asset (you become its issuer).
    CreateAsset {
        #[arg(long)]
        symbol: String,
        #[arg(long, default_value_t = 2)]
        decimals: u8,
        /// Maximum supply in whole units (none: unlimited).
        #[arg(long)]
        max_supply: Option<String>,
    },
    /// Issuer only: create units of an asset for someone.
    Mint {
        #[arg(long)]
        to: String,
        /// e.g. "1000 USDK".
        #[arg(long)]
        amount: String,
    },
    /// Destroy units you hold.
    Burn {
        #[arg(long)]
        amount: String,
    },
    /// Found a society (you get no privilege for it).
    CreateSociety {
        #[arg(long)]
        name: String,
        #[arg(long)]
        purpose: String,
        /// The society's asset symbol, e.g. USDK.
        #[arg(long)]
        asset: String,
        /// Your own monthly pledge: the creator is the society's first member.
        #[arg(long)]
        pledge: String,
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Join a society with a monthly pledge.
    Join {
        #[arg(long)]
        society: u64,
        #[arg(long)]
        pledge: String,
        /// A salted hash of your identity (hex), for societies that require one.
        #[arg(long)]
        identity_commitment: Option<String>,
    },
    /// Pay dues into your own gift account (`--amount 0` checks in a full account).
    Contribute {
        #[arg(long)]
        society: u64,
        #[arg(long)]
        amount: String,
    },
    /// A new monthly pledge from the next period (a raise restarts the waiting period).
    ChangePledge {
        #[arg(long)]
        society: u64,
        #[arg(long)]
        pledge: String,
    },
    /// Remove a member lapsed for longer than the society's lapse_periods (anyone may).
    Expel {
        #[arg(long)]
        society: u64,
        #[arg(long)]
        member: String,
    },
    /// Stop your running benefit (what is not yet due is never drawn).
    EndBenefit {
        #[arg(long)]
        request: u64,
    },
    /// Pay a benefit's payee the installments funded so far (anyone may).
    ClaimBenefit {
        #[arg(long)]
        request: u64,
    },
    /// Ask for help. The evidence file is hashed here and never uploaded.
    FileRequest {
        #[arg(long)]
        society: u64,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        evidence: PathBuf,
        #[arg(long, default_value = "")]
        memo: String,
        /// Who receives the money (a key name or address; default: you).
        #[arg(long)]
        payee: Option<String>,
        /// Ask for `--amount` each period for this many periods instead of one lump sum.
        #[arg(long, default_value_t = 0)]
        installments: u32,
    },
    /// Vote on a request or application (vote again to change it).
    Vote {
        #[arg(long)]
        request: u64,
        /// Vote no (default: yes).
        #[arg(long)]
        no: bool,
        /// Approve only this share of what was asked, in whole percent (1–100).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=100))]
        percent: u8,
    },
    /// Lend your voting power to another member (`--to none` takes it back).
    Delegate {
        #[arg(long)]
        society: u64,
        #[arg(long)]
        to: String,
    },
    /// Give from your gift account to an approved request.
    Gift {
        #[arg(long)]
        request: u64,
        #[arg(long)]
        amount: String,
    },
    /// Close voting on a request after its window.
    Finalize {
        #[arg(long)]
        request: u64,
    },
    /// Pay approved requests from the period's budget.
    Settle {
        #[arg(long)]
        society: u64,
    },
    /// Give notice of leaving.
    Leave {
        #[arg(long)]
        society: u64,
    },
    /// After notice: leave with the refund the rules allow.
    Withdraw {
        #[arg(long)]
        society: u64,
    },
    /// Propose new rules (starting from the current ones).
    ProposeAmendment {
        #[arg(long)]
        society: u64,
        #[command(flatten)]
        rules: RulesArgs,
    },
    /// Vote on an amendment.
    VoteAmendment {
        #[arg(long)]
        amendment: u64,
        #[arg(long)]
        no: bool,
    },
    /// Enact (or close) an amendment after its window and timelock.
    EnactAmendment {
        #[arg(long)]
        amendment: u64,
    },
}

#[derive(Debug, Args)]
pub struct TxArgs {
    /// The signing key's name in the keystore.
    #[arg(long)]
    pub from: String,
    /// Fee in KAS base units (default: the chain's minimum).
    #[arg(long)]
    pub fee: Option<u64>,
    /// Wait until the transaction is finalized and show its receipt.
    #[arg(long)]
    pub wait: bool,
    #[command(subcommand)]
    pub body: TxBody,
}

/// An asset by symbol (`KAS`, `USDK`) or id.
fn find_asset(c: &Client, symbol_or_id: &str) -> Result<(AssetId, u8, String)> {
    if let Ok(id) = symbol_or_id.parse::<u64>() {
        let a = c.get(&format!("/api/v1/assets/{id}"))?;
        return Ok((
            AssetId(id),
            u8::try_from(a["decimals"].as_u64().unwrap_or(0))?,
            a["symbol"].as_str().unwrap_or("").into(),
        ));
    }
    let mut after = String::new();
    loop {
        let page = c.get(&format!("/api/v1/assets?limit=100{after}"))?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(a) = items.iter().find(|a| a["symbol"] == symbol_or_id) {
            return Ok((
                AssetId(a["id"].as_u64().unwrap_or(0)),
                u8::try_from(a["decimals"].as_u64().unwrap_or(0))?,
                symbol_or_id.into(),
            ));
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => bail!("no asset with symbol {symbol_or_id}"),
        }
    }
}

/// An amount whose asset is written in it ("12.5 USDK").
fn asset_amount(c: &Client, text: &str) -> Result<(AssetId, u64)> {
    let symbol = text
        .split_whitespace()
        .nth(1)
        .context("write the asset after the amount, e.g. \"12.5 USDK\"")?;
    let (asset, decimals, _) = find_asset(c, symbol)?;
    Ok((asset, amount::parse(text, decimals)?.0))
}

/// An amount in a society's asset ("12.5" or "12.5 USDK").
fn society_amount(c: &Client, society: u64, text: &str) -> Result<u64> {
    let s = c.get(&format!("/api/v1/societies/{society}"))?;
    let (asset, decimals, symbol) = find_asset(c, &s["asset"].to_string())?;
    let (v, written) = amount::parse(text, decimals)?;
    if written.is_some_and(|w| w != symbol) {
        bail!("society {society} is in {symbol} (asset {})", asset.0);
    }
    Ok(v)
}

fn request_society(c: &Client, request: u64) -> Result<u64> {
    c.get(&format!("/api/v1/requests/{request}"))?["ballot"]["society"]
        .as_u64()
        .context("request")
}

fn address_arg(ks: &Keystore, s: &str) -> Result<Address> {
    s.parse()
        .or_else(|_| ks.address(s))
        .with_context(|| format!("{s} is neither an address nor a key name"))
}

fn body(c: &Client, ks: &Keystore, b: &TxBody) -> Result<Body> {
    Ok(match b {
        TxBody::Transfer { to, amount } => {
            let (asset, amount) = asset_amount(c, amount)?;
            Body::Transfer {
                to: address_arg(ks, to)?,
                asset,
                amount,
            }
        }
        TxBody::CreateAsset {
            symbol,
            decimals,
            max_supply,
        } => Body::CreateAsset {
            symbol: Symbol::new(symbol.clone()).context("symbols are at most 12 characters")?,
            decimals: *decimals,
            max_supply: max_supply
                .as_ref()
                .map(|m| amount::parse(m, *decimals).map(|(v, _)| v))
                .transpose()?,
        },
        TxBody::Mint { to, amount } => {
            let (asset, amount) = asset_amount(c, amount)?;
            Body::Mint {
                asset,
                to: address_arg(ks, to)?,
                amount,
            }
        }
        TxBody::Burn { amount } => {
            let (asset, amount) = asset_amount(c, amount)?;
            Body::Burn { asset, amount }
        }
        TxBody::CreateSociety {
            name,
            purpose,
            asset,
            pledge,
            rules,
        } => {
            let (asset, decimals, _) = find_asset(c, asset)?;
            let base = Rules::defaults(1, u64::MAX / 1_000_000);
            Body::CreateSociety {
                name: SocietyName::new(name.clone()).context("names are at most 64 bytes")?,
                purpose: Purpose::new(purpose.clone())
                    .context("the purpose is at most 1024 bytes")?,
                asset,
                rules: rules.apply(base, decimals)?,
                pledge: amount::parse(pledge, decimals)?.0,
            }
        }
        TxBody::Join {
            society,
            pledge,
            identity_commitment,
        } => Body::Join {
            society: SocietyId(*society),
            pledge: society_amount(c, *society, pledge)?,
            identity_commitment: identity_commitment
                .as_ref()
                .map(|h| -> Result<Hash> {
                    Ok(Hash(
                        hex::decode(h)?
                            .try_into()
                            .map_err(|_| anyhow::anyhow!("32 bytes"))?,
                    ))
                })
                .transpose()?,
        },
        TxBody::Contribute { society, amount } => Body::Contribute {
            society: SocietyId(*society),
            amount: society_amount(c, *society, amount)?,
        },
        TxBody::ChangePledge { society, pledge } => Body::ChangePledge {
            society: SocietyId(*society),
            pledge: society_amount(c, *society, pledge)?,
        },
        TxBody::Expel { society, member } => Body::Expel {
            society: SocietyId(*society),
            member: address_arg(ks, member)?,
        },
        TxBody::EndBenefit { request } => Body::EndBenefit {
            request: RequestId(*request),
        },
        TxBody::ClaimBenefit { request } => Body::ClaimBenefit {
            request: RequestId(*request),
        },
        TxBody::FileRequest {
            society,
            amount,
            evidence,
            memo,
            payee,
            installments,
        } => {
            let bytes = std::fs::read(evidence)
                .with_context(|| format!("reading {}", evidence.display()))?;
            Body::FileRequest {
                society: SocietyId(*society),
                amount: society_amount(c, *society, amount)?,
                evidence_hash: Hash::of(&[&bytes]),
                memo: Memo::new(memo.clone()).context("the memo is at most 256 bytes")?,
                payee: payee.as_ref().map(|p| address_arg(ks, p)).transpose()?,
                installments: *installments,
            }
        }
        TxBody::Vote {
            request,
            no,
            percent,
        } => Body::Vote {
            request: RequestId(*request),
            approve: !no,
            percent: if *no { 100 } else { *percent },
        },
        TxBody::Delegate { society, to } => Body::Delegate {
            society: SocietyId(*society),
            to: if to == "none" {
                None
            } else {
                Some(address_arg(ks, to)?)
            },
        },
        TxBody::Gift { request, amount } => {
            let society = request_society(c, *request)?;
            Body::Gift {
                request: RequestId(*request),
                amount: society_amount(c, society, amount)?,
            }
        }
        TxBody::Finalize { request } => Body::Finalize {
            request: RequestId(*request),
        },
        TxBody::Settle { society } => Body::Settle {
            society: SocietyId(*society),
        },
        TxBody::Leave { society } => Body::Leave {
            society: SocietyId(*society),
        },
        TxBody::Withdraw { society } => Body::Withdraw {
            society: SocietyId(*society),
        },
        TxBody::ProposeAmendment { society, rules } => {
            let s = c.get(&format!("/api/v1/societies/{society}"))?;
            let (_, decimals, _) = find_asset(c, &s["asset"].to_string())?;
            let current = rules_from_json(&s["rules"])?;
            Body::ProposeAmendment {
                society: SocietyId(*society),
                rules: rules.apply(current, decimals)?,
            }
        }
        TxBody::VoteAmendment { amendment, no } => Body::VoteAmendment {
            amendment: AmendmentId(*amendment),
            approve: !no,
        },
        TxBody::EnactAmendment { amendment } => Body::EnactAmendment {
            amendment: AmendmentId(*amendment),
        },
    })
}

pub fn tx(args: TxArgs, common: &Common) -> Result<()> {
    let c = common.client();
    let ks = common.keystore();
    let from = ks.address(&args.from)?;
    let body = body(&c, &ks, &args.body)?;
    let status = c.get("/api/v1/status")?;
    let account = c.get(&format!("/api/v1/accounts/{from}"))?;
    let min_fee: u64 = status["min_fee"].as_str().unwrap_or("0").parse()?;
    let tx = Transaction {
        chain_id: ChainId::new(status["chain_id"].as_str().unwrap_or("").to_string())
            .context("chain id")?,
        genesis: Hash(
            hex::decode(
                status["genesis_hash"]
                    .as_str()
                    .context("the node's genesis hash")?,
            )?
            .try_into()
            .map_err(|_| anyhow::anyhow!("a genesis hash is 32 bytes"))?,
        ),
        signer: from,
        nonce: account["next_nonce"].as_u64().context("account nonce")?,
        fee: args.fee.unwrap_or(min_fee),
        expiry_height: status["height"].as_u64().unwrap_or(0) + 600,
        body,
    };
    let key = ks.unlock(
        &args.from,
        &wallet::passphrase(&format!("Passphrase for {}: ", args.from), false)?,
    )?;
    let signed = tx.sign(&key);
    let path = if args.wait {
        "/api/v1/txs?wait=true"
    } else {
        "/api/v1/txs"
    };
    let r = c.post(path, &json!({"tx": hex::encode(signed.encode())}))?;
    common.print(&r, || {
        let mut out = format!(
            "transaction {}: {}",
            r["hash"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or("")
        );
        if let Some(h) = r["height"].as_u64() {
            out += &format!(" in block {h}");
        }
        if let Some(e) = r.get("error") {
            out += &format!(
                "\n  refused: {} ({}): {}",
                e["code"].as_str().unwrap_or(""),
                e["number"],
                e["message"].as_str().unwrap_or("")
            );
        }
        for ev in r["events"].as_array().into_iter().flatten() {
            out += &format!("\n  {}", ev);
        }
        out
    });
    if r["status"] == "failed" {
        bail!("the transaction failed");
    }
    Ok(())
}

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

/// `kassa faucet ADDRESS|NAME` on a development chain.
pub fn faucet(who: &str, common: &Common) -> Result<()> {
    let c = common.client();
    let to = address_arg(&common.keystore(), who)?;
    let r = c.post("/api/v1/faucet", &json!({"address": to.to_bech32()}))?;
    common.print(&r, || {
        format!(
            "faucet: transaction {} pending",
            r["hash"].as_str().unwrap_or("")
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_the_api_shows_read_back_as_the_same_rules_and_a_misspelt_field_is_an_error() {
        let mut rules = Rules::defaults(1_000, 90_000);
        rules.admission = Admission::Vote;
        rules.identity = Identity::Commitment;
        rules.exit_refund = false;
        let shown = kassa_api::json::rules(&rules);
        assert_eq!(rules_from_json(&shown).unwrap(), rules);

        let mut misspelt = shown.clone();
        let fields = misspelt.as_object_mut().unwrap();
        let v = fields.remove("quorum_bps").unwrap();
        fields.insert("quorum_bsp".into(), v);
        assert!(rules_from_json(&misspelt).is_err());

        let mut unknown_admission = shown;
        unknown_admission["admission"] = "by_invitation".into();
        assert!(rules_from_json(&unknown_admission).is_err());
    }
}
