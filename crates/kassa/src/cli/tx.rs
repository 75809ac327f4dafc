//! `kassa tx` (every transaction body as a subcommand) and `kassa faucet`.

use super::rules::RulesArgs;
use super::{Common, address_arg, asset_amount, find_asset, request_society, society_amount};
use crate::amount;
use crate::client::Client;
use crate::wallet::{self, Keystore};
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use kassa_api::wire;
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{AmendmentId, Hash, RequestId, SocietyId, Transaction};
use std::path::PathBuf;

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
            let s: wire::Society = c.get(&format!("/api/v1/societies/{society}"))?;
            let (_, decimals, _) = find_asset(c, &s.asset.to_string())?;
            let current = s.rules;
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
    let status: wire::Status = c.get("/api/v1/status")?;
    let account: wire::Account = c.get(&format!("/api/v1/accounts/{from}"))?;
    let tx = Transaction {
        chain_id: ChainId::new(status.chain_id).context("chain id")?,
        genesis: status.genesis_hash.0,
        signer: from,
        nonce: account.next_nonce,
        fee: args.fee.unwrap_or(u64::try_from(status.min_fee.0)?),
        expiry_height: status.height + 600,
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
    let body = wire::SubmitBody {
        tx: hex::encode(signed.encode()),
    };
    let r: wire::Tx = c.post(path, &body)?;
    let look = super::show::Lookup::new(&c);
    common.print(&r, || super::query::receipt(&r, &look));
    if let wire::Tx::Failed { error, .. } = &r {
        let why = &error.code;
        return Err(crate::exit::Failure::TxFailed(format!(
            "the transaction was included and failed ({why}): its fee was burned, nothing else applied"
        ))
        .into());
    }
    Ok(())
}

/// `kassa faucet ADDRESS|NAME` on a development chain.
pub fn faucet(who: &str, common: &Common) -> Result<()> {
    let c = common.client();
    let to = address_arg(&common.keystore(), who)?;
    let body = wire::FaucetBody {
        address: to.to_bech32(),
    };
    let r: wire::Tx = c.post("/api/v1/faucet", &body)?;
    common.print(&r, || {
        format!("faucet: transaction {} pending", wire::Hex(r.hash()))
    });
    Ok(())
}
