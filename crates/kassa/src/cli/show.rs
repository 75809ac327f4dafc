//! Output for people: amounts with their asset's decimals and symbol, block times as dates,
//! standing in words, tables for lists. `--json` bypasses all of it and prints what the node
//! answered.

use crate::amount;
use crate::client::Client;
use kassa_api::wire::{self, Amount};
use serde::Serialize;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Reads what formatting needs from the node (an asset's decimals and symbol, a society's
/// asset), once each per command.
pub struct Lookup<'c> {
    client: &'c Client,
    assets: RefCell<BTreeMap<u64, (u8, String)>>,
    societies: RefCell<BTreeMap<u64, u64>>,
}

impl<'c> Lookup<'c> {
    pub fn new(client: &'c Client) -> Self {
        Self {
            client,
            assets: RefCell::default(),
            societies: RefCell::default(),
        }
    }

    fn asset(&self, id: u64) -> (u8, String) {
        if let Some(a) = self.assets.borrow().get(&id) {
            return a.clone();
        }
        let a = self
            .client
            .get::<wire::Asset>(&format!("/api/v1/assets/{id}"))
            .map_or((0, format!("(asset {id})")), |a| (a.decimals, a.symbol));
        self.assets.borrow_mut().insert(id, a.clone());
        a
    }

    /// The asset a society keeps its money in.
    pub fn society_asset(&self, society: u64) -> u64 {
        if let Some(a) = self.societies.borrow().get(&society) {
            return *a;
        }
        let a = self
            .client
            .get::<wire::Society>(&format!("/api/v1/societies/{society}"))
            .map_or(0, |s| s.asset);
        self.societies.borrow_mut().insert(society, a);
        a
    }

    /// Base units as "12.5 USDK".
    pub fn amount(&self, asset: u64, units: Amount) -> String {
        let (decimals, symbol) = self.asset(asset);
        format!("{} {symbol}", amount::format(units.0, decimals))
    }

    /// An amount in a society's asset.
    pub fn in_society(&self, society: u64, units: Amount) -> String {
        self.amount(self.society_asset(society), units)
    }

    /// An event as a line of words: its kind, then its fields in the order the wire type has
    /// them, amounts in their asset.
    pub fn event(&self, e: &wire::Event) -> String {
        let e = serde_json::to_value(e).expect("events serialize");
        let kind = e["type"].as_str().unwrap_or("event").replace('_', " ");
        let asset = e["asset"]
            .as_u64()
            .or_else(|| e["society"].as_u64().map(|s| self.society_asset(s)))
            .unwrap_or(0);
        let mut line = kind;
        for (k, v) in e.as_object().into_iter().flatten() {
            if k == "type" || k == "asset" {
                continue; // the kind leads; an amount names its asset
            }
            let shown = match v {
                Value::String(s) if is_units(s) && !(k.contains("karma") || k == "weight") => {
                    self.amount(asset, Amount(s.parse().unwrap_or(0)))
                }
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = write!(line, ", {} {shown}", k.replace('_', " "));
        }
        line.replacen(", ", ": ", 1)
    }
}

fn is_units(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// An optional field, or "–".
pub fn opt<T: std::fmt::Display>(v: Option<&T>) -> String {
    v.map_or("–".into(), ToString::to_string)
}

/// A unit variant of the wire's enums (a request's kind or status) as the word the JSON has.
pub fn word<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => "–".into(),
    }
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar, computed
/// with integers: days to civil date as in Howard Hinnant's `civil_from_days`).
pub fn date_of(ms: u64) -> String {
    let secs = ms / 1_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Aligned `label  value` lines.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(l, v)| format!("{l:width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table with a header row; columns as wide as their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    if rows.is_empty() {
        out.push("(none)".into());
    }
    out.join("\n")
}

/// A member's standing in words.
pub fn standing(m: &wire::Member) -> String {
    match m.status {
        wire::MemberState::Applicant { application } => {
            format!("applicant (application {application})")
        }
        wire::MemberState::Leaving { until_ms } => format!("leaving on {}", date_of(until_ms)),
        wire::MemberState::Active if m.good_standing => {
            format!("in good standing until {}", date_of(m.lapse_at_ms))
        }
        wire::MemberState::Active if m.lapsed => format!(
            "lapsed since {}: paying the arrears reinstates the member and restarts the waiting period",
            date_of(m.lapse_at_ms)
        ),
        wire::MemberState::Active => {
            "not yet in good standing: the first pledge is not paid".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_block_time_reads_as_its_utc_date_and_time() {
        assert_eq!(date_of(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date_of(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(date_of(1_796_387_787_123), "2026-12-04 12:36:27 UTC");
    }

    #[test]
    fn a_table_aligns_its_columns_and_says_when_it_is_empty() {
        let t = table(
            &["id", "name"],
            &[
                vec!["0".into(), "Bread".into()],
                vec!["10".into(), "Legal aid".into()],
            ],
        );
        assert_eq!(t, "id  name\n0   Bread\n10  Legal aid");
        assert_eq!(table(&["id"], &[]), "id\n(none)");
    }

    #[test]
    fn standing_is_said_in_words() {
        let member = |good_standing: bool, lapsed: bool, lapse_at_ms: u64| -> wire::Member {
            serde_json::from_value(json!({
                "society": 0, "address": kassa_types::Address([7; 32]).to_bech32(),
                "status": {"state": "active"}, "pledge": "1", "next_pledge": null,
                "gift_balance": "0", "karma": "0", "karma_pending": "0",
                "karma_at_period_start": "0", "good_standing": good_standing, "lapsed": lapsed,
                "paid_until": 0, "next_due_ms": 0, "lapse_at": 0, "lapse_at_ms": lapse_at_ms,
                "expellable_at": 0, "waiting_until_ms": 0, "max_benefit": "0", "delegate": null,
                "open_request": null, "request_in_progress": false, "joined_ms": 0,
            }))
            .unwrap()
        };
        assert!(standing(&member(false, true, 0)).starts_with("lapsed since 1970-01-01"));
        assert_eq!(
            standing(&member(true, false, 86_400_000)),
            "in good standing until 1970-01-02 00:00:00 UTC"
        );
    }
}
