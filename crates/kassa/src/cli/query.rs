//! `kassa query`: the chain read through a node's API, for people (tables, dates, amounts in
//! their asset) or, with `--json`, as the node answered.

use super::show::{self, Lookup};
use super::{Common, address_arg, find_asset};
use crate::amount;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kassa_api::wire::{self, Hex};
use kassa_types::rules::Admission;
use serde::Serialize;

/// Which page of a list (lists answer a page at a time).
#[derive(Debug, Args)]
pub struct PageArgs {
    /// Continue after this item (the cursor a previous page printed under "more").
    #[arg(long)]
    after: Option<String>,
}

impl PageArgs {
    fn query(&self) -> String {
        self.after
            .as_ref()
            .map(|a| format!("?after={a}"))
            .unwrap_or_default()
    }
}

#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// Chain id, height, block time, state root.
    Status,
    /// An account (address or key name): its nonce and balances.
    Account { who: String },
    /// The assets.
    Assets {
        #[command(flatten)]
        page: PageArgs,
    },
    /// The societies.
    Societies {
        #[command(flatten)]
        page: PageArgs,
    },
    /// One society: its funds, members and main rules.
    Society { id: u64 },
    /// A society's members, with their standing.
    Members {
        society: u64,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One member (address or key name): standing, dues, balance, karma, maximum benefit.
    Member { society: u64, who: String },
    /// A society's requests, newest first.
    Requests {
        society: u64,
        #[command(flatten)]
        page: PageArgs,
    },
    /// One request and its ballot.
    Request { id: u64 },
    /// Votes on a request.
    Votes {
        request: u64,
        #[command(flatten)]
        page: PageArgs,
    },
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

/// `GET /api/v1/{path}`, read as `T`.
fn api<T: serde::de::DeserializeOwned>(c: &crate::client::Client, path: String) -> Result<T> {
    c.get(&format!("/api/v1/{path}"))
}

pub fn query(cmd: QueryCmd, common: &Common) -> Result<()> {
    let c = common.client();
    let ks = common.keystore();
    let look = Lookup::new(&c);
    match cmd {
        QueryCmd::Status => {
            let v = api(&c, "status".into())?;
            common.print(&v, || status(&v));
        }
        QueryCmd::Account { who } => {
            let v = api(&c, format!("accounts/{}", address_arg(&ks, &who)?))?;
            common.print(&v, || account(&v, &look));
        }
        QueryCmd::Assets { page } => {
            let v = api(&c, format!("assets{}", page.query()))?;
            common.print(&v, || assets(&v, &look));
        }
        QueryCmd::Societies { page } => {
            let v = api(&c, format!("societies{}", page.query()))?;
            common.print(&v, || societies(&v, &look));
        }
        QueryCmd::Society { id } => {
            let v = api(&c, format!("societies/{id}"))?;
            common.print(&v, || society(&v, &look));
        }
        QueryCmd::Members { society, page } => {
            let v = api(&c, format!("societies/{society}/members{}", page.query()))?;
            common.print(&v, || members(&v, society, &look));
        }
        QueryCmd::Member { society, who } => {
            let path = format!("societies/{society}/members/{}", address_arg(&ks, &who)?);
            let m: wire::Member = api(&c, path)?;
            let reminder = standing_reminder(&m, &api(&c, "status".into())?);
            common.print(&m, || match &reminder {
                Some(r) => format!("{}\n\n{r}", member(&m, &look)),
                None => member(&m, &look),
            });
        }
        QueryCmd::Requests { society, page } => {
            let v = api(&c, format!("societies/{society}/requests{}", page.query()))?;
            common.print(&v, || requests(&v, society, &look));
        }
        QueryCmd::Request { id } => {
            let v = api(&c, format!("requests/{id}"))?;
            common.print(&v, || request(&v, &look));
        }
        QueryCmd::Votes { request, page } => {
            let v = api(&c, format!("requests/{request}/votes{}", page.query()))?;
            common.print(&v, || votes(&v, request));
        }
        QueryCmd::Amendment { id } => {
            let v = api(&c, format!("amendments/{id}"))?;
            common.print(&v, || amendment(&v));
        }
        QueryCmd::Block { height } => {
            let v = api(&c, format!("blocks/{height}"))?;
            common.print(&v, || block(&v));
        }
        QueryCmd::Tx { hash } => {
            let v = api(&c, format!("txs/{hash}"))?;
            common.print(&v, || receipt(&v, &look));
        }
        QueryCmd::Proof { who, asset } => proof(common, &who, &asset)?,
    }
    Ok(())
}

/// What `kassa query proof` checked and found.
#[derive(Serialize)]
struct Verified {
    address: String,
    asset: u64,
    balance: String,
    symbol: String,
    height: u64,
    state_root: wire::Hex,
    verified: bool,
}

/// `kassa query proof`: trusts nothing the node says but the finalized block's header: checks
/// the proof's root against the block, then the value against the root.
fn proof(common: &Common, who: &str, asset: &str) -> Result<()> {
    let c = common.client();
    let who = address_arg(&common.keystore(), who)?;
    let (asset, decimals, symbol) = find_asset(&c, asset)?;
    let key = kassa_state::keys::holding(&who, asset);
    let p: wire::Proof = c.get(&format!("/api/v1/proofs/{}", hex::encode(&key)))?;
    let block: wire::Block = c.get(&format!("/api/v1/blocks/{}", p.height))?;
    if block.state_root != p.state_root {
        bail!("the proof's root is not the block's state root");
    }
    let value = p.value.as_deref().map(hex::decode).transpose()?;
    let proof = kassa_api::decode_proof(&p.kind, &p.proof).context("undecodable proof")?;
    if !kassa_db::verify(&p.state_root.0, &key, value.as_deref(), &proof) {
        bail!("the proof does not verify against the state root");
    }
    let units = kassa_state::exec::balance_in(asset, value.as_deref())?;
    let out = Verified {
        address: who.to_bech32(),
        asset: asset.0,
        balance: amount::format(u128::from(units), decimals),
        symbol,
        height: p.height,
        state_root: p.state_root,
        verified: true,
    };
    common.print(&out, || {
        format!(
            "{who} holds {} {} at height {} — proof verified against state root {}",
            out.balance, out.symbol, out.height, out.state_root
        )
    });
    Ok(())
}

fn status(v: &wire::Status) -> String {
    let faucet = if v.faucet {
        "yes (a development chain)"
    } else {
        "no"
    };
    show::fields(&[
        ("chain", v.chain_id.clone()),
        ("protocol", v.protocol_version.to_string()),
        ("height", v.height.to_string()),
        ("block time", show::date_of(v.time_ms)),
        ("block", v.block_hash.to_string()),
        ("state root", v.state_root.to_string()),
        ("minimum fee", format!("{} base units of KAS", v.min_fee)),
        ("waiting", format!("{} transactions", v.mempool_size)),
        ("faucet", faucet.into()),
    ])
}

fn account(v: &wire::Account, look: &Lookup) -> String {
    let balances: Vec<String> = v
        .balances
        .iter()
        .map(|b| look.amount(b.asset, b.amount))
        .collect();
    let holds = if balances.is_empty() {
        "nothing".into()
    } else {
        balances.join(", ")
    };
    show::fields(&[
        ("address", v.address.to_string()),
        ("next nonce", v.next_nonce.to_string()),
        ("holds", holds),
    ])
}

/// A list's table, and how to read its next page if there is one.
fn listed<T>(
    header: &[&str],
    rows: Vec<Vec<String>>,
    page: &wire::Page<T>,
    command: &str,
) -> String {
    let table = show::table(header, &rows);
    match &page.next {
        Some(next) => format!("{table}\nmore: {command} --after {next}"),
        None => table,
    }
}

fn assets(v: &wire::Page<wire::Asset>, look: &Lookup) -> String {
    let rows = v
        .items
        .iter()
        .map(|a| {
            vec![
                a.id.to_string(),
                a.symbol.clone(),
                a.decimals.to_string(),
                look.amount(a.id, a.supply),
                a.max_supply
                    .map_or("unlimited".into(), |m| look.amount(a.id, m)),
                show::opt(a.issuer.as_ref()),
            ]
        })
        .collect();
    let header = ["id", "symbol", "decimals", "supply", "max supply", "issuer"];
    listed(&header, rows, v, "kassa query assets")
}

fn societies(v: &wire::Page<wire::Society>, look: &Lookup) -> String {
    let rows = v
        .items
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.name.clone(),
                s.member_count.to_string(),
                s.standing_count.to_string(),
                look.amount(s.asset, s.gift_funds),
                look.amount(s.asset, s.common_fund),
            ]
        })
        .collect();
    let header = [
        "id",
        "name",
        "members",
        "in standing",
        "gift funds",
        "common fund",
    ];
    listed(&header, rows, v, "kassa query societies")
}

fn society(s: &wire::Society, look: &Lookup) -> String {
    let r = &s.rules;
    let money = |v: wire::Amount| look.amount(s.asset, v);
    let rule = |v: u64| look.amount(s.asset, v.into());
    let admission = match r.admission {
        Admission::Open => "open",
        Admission::Vote => "vote",
    };
    show::fields(&[
        ("society", format!("{} ({})", s.name, s.id)),
        ("purpose", s.purpose.clone()),
        ("created", show::date_of(s.created_ms)),
        (
            "period",
            format!("{} (each {} s)", s.current_period, r.period_secs),
        ),
        (
            "members",
            format!("{} ({} in good standing)", s.member_count, s.standing_count),
        ),
        ("gift funds", money(s.gift_funds)),
        ("common fund", money(s.common_fund)),
        ("owed", money(s.owed)),
        ("bonds", money(s.bonds)),
        (
            "pledge",
            format!("{} to {}", rule(r.min_pledge), rule(r.max_pledge)),
        ),
        ("largest request", rule(r.max_request)),
        ("admission", admission.into()),
        ("pending amendment", show::opt(s.amendment.as_ref())),
    ])
}

fn members(v: &wire::Page<wire::Member>, society: u64, look: &Lookup) -> String {
    let rows = v
        .items
        .iter()
        .map(|m| {
            let standing = match m.status {
                _ if m.good_standing => "good",
                _ if m.lapsed => "lapsed",
                wire::MemberState::Applicant { .. } => "applicant",
                wire::MemberState::Leaving { .. } => "leaving",
                wire::MemberState::Active => "–",
            };
            vec![
                m.address.to_string(),
                standing.into(),
                look.in_society(society, m.pledge),
                look.in_society(society, m.gift_balance),
                m.karma.to_string(),
            ]
        })
        .collect();
    let header = ["member", "standing", "pledge", "gift account", "karma"];
    listed(&header, rows, v, &format!("kassa query members {society}"))
}

fn member(m: &wire::Member, look: &Lookup) -> String {
    let money = |v: wire::Amount| look.in_society(m.society, v);
    let karma = format!(
        "{} (at the start of this period: {})",
        m.karma, m.karma_at_period_start
    );
    let mut rows = vec![
        ("member", m.address.to_string()),
        ("society", m.society.to_string()),
        ("standing", show::standing(m)),
        ("pledge", money(m.pledge)),
        ("next due", show::date_of(m.next_due_ms)),
        ("gift account", money(m.gift_balance)),
        ("karma", karma),
        ("may ask for", money(m.max_benefit)),
        ("may file from", show::date_of(m.waiting_until_ms)),
        ("joined", show::date_of(m.joined_ms)),
    ];
    if let Some(next) = m.next_pledge {
        rows.push(("next pledge", money(next)));
    }
    if let Some(d) = &m.delegate {
        rows.push(("delegate", d.to_string()));
    }
    if let Some(open) = m.open_request {
        let progress = if m.request_in_progress {
            " (in progress)"
        } else {
            ""
        };
        rows.push(("latest request", format!("{open}{progress}")));
    }
    show::fields(&rows)
}

fn requests(v: &wire::Page<wire::Request>, society: u64, look: &Lookup) -> String {
    let rows = v
        .items
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                show::word(&r.kind),
                show::word(&r.status),
                look.in_society(society, r.asked),
                look.in_society(society, r.approved),
                r.requester.to_string(),
            ]
        })
        .collect();
    let header = ["id", "kind", "status", "asked", "approved", "requester"];
    listed(&header, rows, v, &format!("kassa query requests {society}"))
}

fn request(r: &wire::Request, look: &Lookup) -> String {
    let b = &r.ballot;
    let society = b.society;
    let money = |v: wire::Amount| look.in_society(society, v);
    let mut rows = vec![
        (
            "request",
            format!("{} ({}) in society {society}", r.id, show::word(&r.kind)),
        ),
        ("status", show::word(&r.status)),
        ("requester", r.requester.to_string()),
        ("payee", r.payee.to_string()),
        ("asked", money(r.asked)),
        (
            "approved",
            format!("{} ({}%)", money(r.approved), r.outcome_percent),
        ),
        (
            "paid",
            format!("{} by shares, {} by gifts", money(r.paid), money(r.gifted)),
        ),
        (
            "votes",
            format!(
                "yes {} karma ({} voters), no {} karma ({} voters), of {} karma",
                b.yes, b.yes_count, b.no, b.no_count, b.total_karma
            ),
        ),
        ("voting ends", show::date_of(b.deadline_ms)),
    ];
    if let Some(memo) = r.memo.as_ref().filter(|m| !m.is_empty()) {
        rows.push(("memo", memo.clone()));
    }
    if let Some(bf) = &r.benefit {
        let span = format!(
            "{} a period, periods {} to {}",
            money(bf.per_period),
            bf.first_period,
            bf.last_period
        );
        rows.push(("benefit", span));
    }
    show::fields(&rows)
}

fn votes(v: &wire::Page<wire::Vote>, request: u64) -> String {
    let rows = v
        .items
        .iter()
        .map(|vote| {
            let side = if vote.approve { "yes" } else { "no" };
            vec![
                vote.voter.to_string(),
                side.into(),
                format!("{}%", vote.percent),
                vote.weight.to_string(),
            ]
        })
        .collect();
    let header = ["voter", "vote", "share", "karma"];
    listed(&header, rows, v, &format!("kassa query votes {request}"))
}

fn amendment(a: &wire::Amendment) -> String {
    let b = &a.ballot;
    let needed = match &b.thresholds {
        wire::Thresholds::Amendment { yes_needed } => yes_needed.to_string(),
        wire::Thresholds::Request { net_needed, .. } => net_needed.to_string(),
    };
    show::fields(&[
        ("amendment", format!("{} to society {}", a.id, b.society)),
        ("status", show::word(&a.status)),
        ("proposer", a.proposer.to_string()),
        (
            "votes",
            format!(
                "yes {} karma of {needed} needed (total {})",
                b.yes, b.total_karma
            ),
        ),
        ("voting ends", show::date_of(b.deadline_ms)),
        (
            "rules",
            serde_json::to_string(&a.rules).expect("rules serialize"),
        ),
    ])
}

fn block(b: &wire::Block) -> String {
    show::fields(&[
        ("height", b.height.to_string()),
        ("hash", b.hash.to_string()),
        ("time", show::date_of(b.timestamp_ms)),
        ("proposer", b.proposer.to_string()),
        ("transactions", b.txs.len().to_string()),
        ("state root", b.state_root.to_string()),
    ])
}

/// A transaction's receipt: its status, its block, and what it did, in words.
pub fn receipt(r: &wire::Tx, look: &Lookup) -> String {
    let hash = Hex(r.hash());
    match r {
        wire::Tx::Pending { .. } => format!("transaction {hash}: pending"),
        wire::Tx::Applied { height, events, .. } => {
            let mut out = format!("transaction {hash}: applied in block {height}");
            for e in events {
                out += &format!("\n  {}", look.event(e));
            }
            out
        }
        wire::Tx::Failed { height, error, .. } => format!(
            "transaction {hash}: failed in block {height}\n  refused: {} ({}): {}",
            error.code,
            show::opt(error.number.as_ref()),
            error.message
        ),
    }
}

/// A reminder for a member whose standing has ended or ends within a day of block time: when,
/// and what brings them back (a lapsed member's waiting period restarts).
fn standing_reminder(m: &wire::Member, status: &wire::Status) -> Option<String> {
    let ends = m.lapse_at_ms;
    if m.lapsed {
        return Some(
            "reminder: this member has lapsed; paying the arrears (or checking in a full account \
             with a contribution of 0) reinstates them, and restarts their waiting period"
                .into(),
        );
    }
    let left_ms = ends.checked_sub(status.time_ms)?;
    (m.good_standing && left_ms < 24 * 3_600_000).then(|| {
        format!(
            "reminder: good standing ends in {} min (block time {ends}); pay the next pledge \
             (or check in a full account with a contribution of 0) before then",
            left_ms / 60_000
        )
    })
}
