//! Output for people: amounts with their asset's decimals and symbol, block times as dates,
//! standing in words, tables for lists. `--json` bypasses all of it and prints what the node
//! answered.

use crate::amount;
use crate::client::Client;
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
            .get(&format!("/api/v1/assets/{id}"))
            .ok()
            .map(|a| {
                let decimals = a["decimals"].as_u64().and_then(|d| u8::try_from(d).ok());
                let symbol = a["symbol"].as_str().unwrap_or("?").to_string();
                (decimals.unwrap_or(0), symbol)
            })
            .unwrap_or((0, format!("(asset {id})")));
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
            .get(&format!("/api/v1/societies/{society}"))
            .ok()
            .and_then(|s| s["asset"].as_u64())
            .unwrap_or(0);
        self.societies.borrow_mut().insert(society, a);
        a
    }

    /// Base units (a decimal string or number in the node's JSON) as "12.5 USDK".
    pub fn amount(&self, asset: u64, units: &Value) -> String {
        let (decimals, symbol) = self.asset(asset);
        match units_of(units) {
            Some(u) => format!("{} {symbol}", amount::format(u, decimals)),
            None => "–".into(),
        }
    }

    /// An amount in a society's asset.
    pub fn in_society(&self, society: u64, units: &Value) -> String {
        self.amount(self.society_asset(society), units)
    }

    /// An event as a line of words: its kind, then its fields, amounts in their asset.
    pub fn event(&self, e: &Value) -> String {
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
                    self.amount(asset, v)
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

fn units_of(v: &Value) -> Option<u128> {
    match v {
        Value::String(s) if is_units(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(u128::from),
        _ => None,
    }
}

/// A text field of the node's JSON, or "–".
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

/// A block time (milliseconds since the Unix epoch) as a UTC date and time.
pub fn date(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => date_of(ms),
        None => "–".into(),
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
pub fn standing(m: &Value) -> String {
    match m["status"]["state"].as_str() {
        Some("applicant") => {
            return format!(
                "applicant (application {})",
                text(&m["status"]["application"])
            );
        }
        Some("leaving") => return format!("leaving on {}", date(&m["status"]["until_ms"])),
        _ => {}
    }
    if m["good_standing"] == true {
        format!("in good standing until {}", date(&m["lapse_at_ms"]))
    } else if m["lapsed"] == true {
        format!(
            "lapsed since {}: paying the arrears reinstates the member and restarts the waiting period",
            date(&m["lapse_at_ms"])
        )
    } else {
        "not yet in good standing: the first pledge is not paid".into()
    }
}

/// The line that tells how to read the next page of a list, if there is one.
pub fn more(page: &Value, command: &str) -> Option<String> {
    page["next"]
        .as_str()
        .map(|next| format!("more: {command} --after {next}"))
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
        let lapsed = json!({"status": {"state": "active"}, "good_standing": false, "lapsed": true, "lapse_at_ms": 0});
        assert!(standing(&lapsed).starts_with("lapsed since 1970-01-01"));
        let good = json!({"status": {"state": "active"}, "good_standing": true, "lapse_at_ms": 86_400_000});
        assert_eq!(
            standing(&good),
            "in good standing until 1970-01-02 00:00:00 UTC"
        );
    }
}
