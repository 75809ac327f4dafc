//! Charts of a run as one self-contained HTML page (inline SVG, no script, no network), drawn
//! with integer arithmetic.

use crate::report::{Report, Row, money, percent};
use std::fmt::Write;

const W: u64 = 640;
const H: u64 = 220;
const LEFT: u64 = 88;
const RIGHT: u64 = 12;
const TOP: u64 = 28;
const BOTTOM: u64 = 28;

/// The four charts of a run: (title, SVG).
pub fn charts(r: &Report) -> Vec<(String, String)> {
    let d = r.decimals;
    let c = &r.currency;
    let scale = 10u128.pow(u32::from(d));
    let whole = |v: u64| u64::try_from(u128::from(v) / scale).unwrap_or(u64::MAX);
    vec![
        (
            format!("Funds ({c})"),
            chart(
                &format!("Funds ({c}): gift accounts and common fund"),
                &r.rows,
                |row| whole(row.gift_funds.saturating_add(row.common_fund)),
                |v| money(i128::from(v) * i128::try_from(scale).unwrap_or(1), d),
            ),
        ),
        (
            "Cost per member".into(),
            chart(
                "Help per member, as a share of the mean pledge",
                &r.rows,
                |row| row.cost_bps,
                percent,
            ),
        ),
        (
            "Queue".into(),
            chart(
                "Approved lump sums waiting to be paid",
                &r.rows,
                |row| row.queued,
                |v| v.to_string(),
            ),
        ),
        (
            "Payout delay".into(),
            chart(
                "Longest wait for approved help (periods)",
                &r.rows,
                |row| u64::from(row.delay),
                |v| v.to_string(),
            ),
        ),
    ]
}

fn chart(
    title: &str,
    rows: &[Row],
    value: impl Fn(&Row) -> u64,
    label: impl Fn(u64) -> String,
) -> String {
    let max = rows.iter().map(&value).max().unwrap_or(0).max(1);
    let n = u64::try_from(rows.len()).expect("fits").max(2);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: u64| LEFT + i * plot_w / (n - 1);
    let y = |v: u64| {
        let h = u128::from(v) * u128::from(plot_h) / u128::from(max);
        TOP + plot_h - u64::try_from(h).expect("within the plot")
    };
    let mut s = String::new();
    write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        escape(title)
    )
    .expect("string");
    write!(
        s,
        r##"<text x="{LEFT}" y="16" font-size="13" font-family="sans-serif" fill="#222">{}</text>"##,
        escape(title)
    )
    .expect("string");
    write!(
        s,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#999"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#999"/>"##,
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    )
    .expect("string");
    for (v, yy) in [(max, TOP), (0, TOP + plot_h)] {
        write!(
            s,
            r##"<text x="{}" y="{}" font-size="11" font-family="sans-serif" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 4,
            yy + 4,
            escape(&label(v))
        )
        .expect("string");
    }
    let last = rows.last().map_or(0, |r| r.period);
    write!(
        s,
        r##"<text x="{LEFT}" y="{}" font-size="11" font-family="sans-serif" fill="#555">period 0</text><text x="{}" y="{}" font-size="11" font-family="sans-serif" text-anchor="end" fill="#555">{last}</text>"##,
        H - 8,
        W - RIGHT,
        H - 8
    )
    .expect("string");
    let points: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{},{}", x(u64::try_from(i).expect("fits")), y(value(r))))
        .collect();
    write!(
        s,
        r##"<polyline fill="none" stroke="#2a6f97" stroke-width="2" points="{}"/></svg>"##,
        points.join(" ")
    )
    .expect("string");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A whole page: the summary in words and the four charts.
pub fn html(r: &Report) -> String {
    let mut s = String::new();
    write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — Kassa simulation</title>\
         <style>body{{font-family:sans-serif;max-width:680px;margin:2em auto;color:#222}}svg{{width:100%;height:auto;margin:1em 0}}</style></head><body>",
        escape(&r.scenario)
    )
    .expect("string");
    write!(
        s,
        "<h1>{}</h1><p>Seed {}.</p><ul>",
        escape(&r.scenario),
        r.seed
    )
    .expect("string");
    for line in r.sentences() {
        write!(s, "<li>{}</li>", escape(&line)).expect("string");
    }
    s.push_str("</ul>");
    for (_, svg) in charts(r) {
        s.push_str(&svg);
    }
    s.push_str("</body></html>\n");
    s
}
