//! `kassa query`: the chain read through a node's API, for people (tables, dates, amounts in
//! their asset) or, with `--json`, as the node answered.

use super::show::{self, Lookup};
use super::{Common, address_arg, find_asset};
use crate::amount;
use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kassa_types::Hash;
use serde_json::{Value, json};

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

/// How a query's answer reads for people.
type Text<'a> = Box<dyn Fn(&Value) -> String + 'a>;

pub fn query(cmd: QueryCmd, common: &Common) -> Result<()> {
    let c = common.client();
    let ks = common.keystore();
    let look = Lookup::new(&c);
    let get = |path: String| c.get(&format!("/api/v1/{path}"));
    let (v, text): (Value, Text) = match cmd {
        QueryCmd::Status => (get("status".into())?, Box::new(status)),
        QueryCmd::Account { who } => (
            get(format!("accounts/{}", address_arg(&ks, &who)?))?,
            Box::new(|v| account(v, &look)),
        ),
        QueryCmd::Assets { page } => (
            get(format!("assets{}", page.query()))?,
            Box::new(|v| assets(v, &look)),
        ),
        QueryCmd::Societies { page } => (
            get(format!("societies{}", page.query()))?,
            Box::new(|v| societies(v, &look)),
        ),
        QueryCmd::Society { id } => (
            get(format!("societies/{id}"))?,
            Box::new(|v| society(v, &look)),
        ),
        QueryCmd::Members { society, page } => (
            get(format!("societies/{society}/members{}", page.query()))?,
            Box::new(move |v| members(v, society, &look)),
        ),
        QueryCmd::Member { society, who } => {
            let m = get(format!(
                "societies/{society}/members/{}",
                address_arg(&ks, &who)?
            ))?;
            let reminder = standing_reminder(&m, &get("status".into())?);
            let text = move |v: &Value| match &reminder {
                Some(r) => format!("{}\n\n{r}", member(v, &look)),
                None => member(v, &look),
            };
            (m, Box::new(text))
        }
        QueryCmd::Requests { society, page } => (
            get(format!("societies/{society}/requests{}", page.query()))?,
            Box::new(move |v| requests(v, society, &look)),
        ),
        QueryCmd::Request { id } => (
            get(format!("requests/{id}"))?,
            Box::new(|v| request(v, &look)),
        ),
        QueryCmd::Votes { request, page } => (
            get(format!("requests/{request}/votes{}", page.query()))?,
            Box::new(move |v| votes(v, request)),
        ),
        QueryCmd::Amendment { id } => (get(format!("amendments/{id}"))?, Box::new(amendment)),
        QueryCmd::Block { height } => (get(format!("blocks/{height}"))?, Box::new(block)),
        QueryCmd::Tx { hash } => (get(format!("txs/{hash}"))?, Box::new(|v| receipt(v, &look))),
        QueryCmd::Proof { who, asset } => return proof(common, &who, &asset),
    };
    common.print(&v, || text(&v));
    Ok(())
}

/// `kassa query proof`: trusts nothing the node says but the finalized block's header: checks
/// the proof's root against the block, then the value against the root.
fn proof(common: &Common, who: &str, asset: &str) -> Result<()> {
    let c = common.client();
    let who = address_arg(&common.keystore(), who)?;
    let (asset, decimals, symbol) = find_asset(&c, asset)?;
    let key = kassa_state::keys::holding(&who, asset);
    let p = c.get(&format!("/api/v1/proofs/{}", hex::encode(&key)))?;
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
    let proof =
        kassa_api::decode_proof(p["proof"].as_str().unwrap_or("")).context("undecodable proof")?;
    if !kassa_db::verify_proof(&root, &key, value.as_deref(), &proof) {
        bail!("the proof does not verify against the state root");
    }
    let units = kassa_state::exec::balance_in(asset, value.as_deref())?;
    let balance = amount::format(u128::from(units), decimals);
    let out = json!({
        "address": who.to_bech32(), "asset": asset.0, "balance": balance,
        "symbol": symbol, "height": p["height"], "state_root": p["state_root"], "verified": true,
    });
    common.print(&out, || {
        format!(
            "{who} holds {balance} {symbol} at height {} — proof verified against state root {}",
            p["height"],
            show::text(&p["state_root"])
        )
    });
    Ok(())
}

fn status(v: &Value) -> String {
    let faucet = if v["faucet"] == true {
        "yes (a development chain)"
    } else {
        "no"
    };
    show::fields(&[
        ("chain", show::text(&v["chain_id"])),
        ("protocol", show::text(&v["protocol_version"])),
        ("height", show::text(&v["height"])),
        ("block time", show::date(&v["time_ms"])),
        ("block", show::text(&v["block_hash"])),
        ("state root", show::text(&v["state_root"])),
        (
            "minimum fee",
            format!("{} base units of KAS", show::text(&v["min_fee"])),
        ),
        (
            "waiting",
            format!("{} transactions", show::text(&v["mempool_size"])),
        ),
        ("faucet", faucet.into()),
    ])
}

fn account(v: &Value, look: &Lookup) -> String {
    let balances: Vec<String> = v["balances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| look.amount(b["asset"].as_u64().unwrap_or(0), &b["amount"]))
        .collect();
    let holds = if balances.is_empty() {
        "nothing".into()
    } else {
        balances.join(", ")
    };
    show::fields(&[
        ("address", show::text(&v["address"])),
        ("next nonce", show::text(&v["next_nonce"])),
        ("holds", holds),
    ])
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v["items"].as_array().into_iter().flatten()
}

/// A list's table, and how to read its next page if there is one.
fn listed(header: &[&str], rows: Vec<Vec<String>>, v: &Value, command: &str) -> String {
    let table = show::table(header, &rows);
    match show::more(v, command) {
        Some(more) => format!("{table}\n{more}"),
        None => table,
    }
}

fn assets(v: &Value, look: &Lookup) -> String {
    let rows = items(v)
        .map(|a| {
            let id = a["id"].as_u64().unwrap_or(0);
            let max = match &a["max_supply"] {
                Value::Null => "unlimited".into(),
                m => look.amount(id, m),
            };
            vec![
                id.to_string(),
                show::text(&a["symbol"]),
                show::text(&a["decimals"]),
                look.amount(id, &a["supply"]),
                max,
                show::text(&a["issuer"]),
            ]
        })
        .collect();
    let header = ["id", "symbol", "decimals", "supply", "max supply", "issuer"];
    listed(&header, rows, v, "kassa query assets")
}

fn societies(v: &Value, look: &Lookup) -> String {
    let rows = items(v)
        .map(|s| {
            let asset = s["asset"].as_u64().unwrap_or(0);
            vec![
                show::text(&s["id"]),
                show::text(&s["name"]),
                show::text(&s["member_count"]),
                show::text(&s["standing_count"]),
                look.amount(asset, &s["gift_funds"]),
                look.amount(asset, &s["common_fund"]),
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

fn society(s: &Value, look: &Lookup) -> String {
    let asset = s["asset"].as_u64().unwrap_or(0);
    let r = &s["rules"];
    let money = |k: &str| look.amount(asset, &s[k]);
    let rule = |k: &str| look.amount(asset, &r[k]);
    show::fields(&[
        (
            "society",
            format!("{} ({})", show::text(&s["name"]), show::text(&s["id"])),
        ),
        ("purpose", show::text(&s["purpose"])),
        ("created", show::date(&s["created_ms"])),
        (
            "period",
            format!(
                "{} (each {} s)",
                show::text(&s["current_period"]),
                show::text(&r["period_secs"])
            ),
        ),
        (
            "members",
            format!(
                "{} ({} in good standing)",
                show::text(&s["member_count"]),
                show::text(&s["standing_count"])
            ),
        ),
        ("gift funds", money("gift_funds")),
        ("common fund", money("common_fund")),
        ("owed", money("owed")),
        ("bonds", money("bonds")),
        (
            "pledge",
            format!("{} to {}", rule("min_pledge"), rule("max_pledge")),
        ),
        ("largest request", rule("max_request")),
        ("admission", show::text(&r["admission"])),
        ("pending amendment", show::text(&s["amendment"])),
    ])
}

fn members(v: &Value, society: u64, look: &Lookup) -> String {
    let rows = items(v)
        .map(|m| {
            let standing = if m["good_standing"] == true {
                "good"
            } else if m["lapsed"] == true {
                "lapsed"
            } else {
                m["status"]["state"].as_str().unwrap_or("–")
            };
            vec![
                show::text(&m["address"]),
                standing.into(),
                look.in_society(society, &m["pledge"]),
                look.in_society(society, &m["gift_balance"]),
                show::text(&m["karma"]),
            ]
        })
        .collect();
    let header = ["member", "standing", "pledge", "gift account", "karma"];
    listed(&header, rows, v, &format!("kassa query members {society}"))
}

fn member(m: &Value, look: &Lookup) -> String {
    let society = m["society"].as_u64().unwrap_or(0);
    let money = |k: &str| look.in_society(society, &m[k]);
    let karma = format!(
        "{} (at the start of this period: {})",
        show::text(&m["karma"]),
        show::text(&m["karma_at_period_start"])
    );
    let mut rows = vec![
        ("member", show::text(&m["address"])),
        ("society", society.to_string()),
        ("standing", show::standing(m)),
        ("pledge", money("pledge")),
        ("next due", show::date(&m["next_due_ms"])),
        ("gift account", money("gift_balance")),
        ("karma", karma),
        ("may ask for", money("max_benefit")),
        ("may file from", show::date(&m["waiting_until_ms"])),
        ("joined", show::date(&m["joined_ms"])),
    ];
    if !m["next_pledge"].is_null() {
        rows.push(("next pledge", money("next_pledge")));
    }
    if !m["delegate"].is_null() {
        rows.push(("delegate", show::text(&m["delegate"])));
    }
    if !m["open_request"].is_null() {
        let open = if m["request_in_progress"] == true {
            " (in progress)"
        } else {
            ""
        };
        let latest = format!("{}{open}", show::text(&m["open_request"]));
        rows.push(("latest request", latest));
    }
    show::fields(&rows)
}

fn requests(v: &Value, society: u64, look: &Lookup) -> String {
    let rows = items(v)
        .map(|r| {
            vec![
                show::text(&r["id"]),
                show::text(&r["kind"]),
                show::text(&r["status"]),
                look.in_society(society, &r["asked"]),
                look.in_society(society, &r["approved"]),
                show::text(&r["requester"]),
            ]
        })
        .collect();
    let header = ["id", "kind", "status", "asked", "approved", "requester"];
    listed(&header, rows, v, &format!("kassa query requests {society}"))
}

fn request(r: &Value, look: &Lookup) -> String {
    let b = &r["ballot"];
    let society = b["society"].as_u64().unwrap_or(0);
    let money = |k: &str| look.in_society(society, &r[k]);
    let t = |k: &str| show::text(&b[k]);
    let mut rows = vec![
        (
            "request",
            format!(
                "{} ({}) in society {society}",
                show::text(&r["id"]),
                show::text(&r["kind"])
            ),
        ),
        ("status", show::text(&r["status"])),
        ("requester", show::text(&r["requester"])),
        ("payee", show::text(&r["payee"])),
        ("asked", money("asked")),
        (
            "approved",
            format!(
                "{} ({}%)",
                money("approved"),
                show::text(&r["outcome_percent"])
            ),
        ),
        (
            "paid",
            format!("{} by shares, {} by gifts", money("paid"), money("gifted")),
        ),
        (
            "votes",
            format!(
                "yes {} karma ({} voters), no {} karma ({} voters), of {} karma",
                t("yes"),
                t("yes_count"),
                t("no"),
                t("no_count"),
                t("total_karma")
            ),
        ),
        ("voting ends", show::date(&b["deadline_ms"])),
    ];
    if let Some(memo) = r["memo"].as_str().filter(|m| !m.is_empty()) {
        rows.push(("memo", memo.into()));
    }
    if let Some(bf) = r["benefit"].as_object() {
        let per = look.in_society(society, &bf["per_period"]);
        let span = format!(
            "{per} a period, periods {} to {}",
            show::text(&bf["first_period"]),
            show::text(&bf["last_period"])
        );
        rows.push(("benefit", span));
    }
    show::fields(&rows)
}

fn votes(v: &Value, request: u64) -> String {
    let rows = items(v)
        .map(|vote| {
            let side = if vote["approve"] == true { "yes" } else { "no" };
            vec![
                show::text(&vote["voter"]),
                side.into(),
                format!("{}%", show::text(&vote["percent"])),
                show::text(&vote["weight"]),
            ]
        })
        .collect();
    let header = ["voter", "vote", "share", "karma"];
    listed(&header, rows, v, &format!("kassa query votes {request}"))
}

fn amendment(a: &Value) -> String {
    let b = &a["ballot"];
    show::fields(&[
        (
            "amendment",
            format!(
                "{} to society {}",
                show::text(&a["id"]),
                show::text(&b["society"])
            ),
        ),
        ("status", show::text(&a["status"])),
        ("proposer", show::text(&a["proposer"])),
        (
            "votes",
            format!(
                "yes {} karma of {} needed (total {})",
                show::text(&b["yes"]),
                show::text(&b["thresholds"]["yes_needed"]),
                show::text(&b["total_karma"])
            ),
        ),
        ("voting ends", show::date(&b["deadline_ms"])),
        ("rules", a["rules"].to_string()),
    ])
}

fn block(b: &Value) -> String {
    let txs = b["txs"].as_array().map_or(0, Vec::len);
    show::fields(&[
        ("height", show::text(&b["height"])),
        ("hash", show::text(&b["hash"])),
        ("time", show::date(&b["timestamp_ms"])),
        ("proposer", show::text(&b["proposer"])),
        ("transactions", txs.to_string()),
        ("state root", show::text(&b["state_root"])),
    ])
}

/// A transaction's receipt: its status, its block, and what it did, in words.
pub fn receipt(r: &Value, look: &Lookup) -> String {
    let mut out = format!(
        "transaction {}: {}",
        show::text(&r["hash"]),
        show::text(&r["status"])
    );
    if let Some(h) = r["height"].as_u64() {
        out += &format!(" in block {h}");
    }
    if let Some(e) = r.get("error") {
        out += &format!(
            "\n  refused: {} ({}): {}",
            show::text(&e["code"]),
            show::text(&e["number"]),
            show::text(&e["message"])
        );
    }
    for e in r["events"].as_array().into_iter().flatten() {
        out += &format!("\n  {}", look.event(e));
    }
    out
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
