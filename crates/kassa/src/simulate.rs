//! `kassa simulate`: a society's rules through the real state machine on a synthetic
//! membership (crates/sim). Prints the table and summary (or JSON), optionally writes charts;
//! timing and progress go to standard error, so standard output is the same for the same
//! scenario and seed.

use anyhow::{Context, Result, bail};
use clap::Args;
use kassa_sim::{CLI_MEMBER_PERIODS_MAX, Scenario, chart, simulate};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A built-in scenario: broodfonds, legal-defence or xianghubao.
    #[arg(long, conflicts_with = "scenario")]
    preset: Option<String>,
    /// A scenario file (TOML; see docs/simulator.md).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The seed: the same scenario and seed give the same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Override the number of periods.
    #[arg(long)]
    periods: Option<u32>,
    /// Override the number of members at the start.
    #[arg(long)]
    members: Option<u32>,
    /// Override a rule, `NAME=VALUE` (repeatable), e.g. `--rule benefit_ratio=20`.
    #[arg(long = "rule", value_name = "NAME=VALUE")]
    rules: Vec<String>,
    /// Write the charts to this file (.html with inline SVG, or .svg for the funds chart alone).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print the scenario (TOML) instead of running it: a start for one's own.
    #[arg(long)]
    show: bool,
}

pub fn run(a: SimulateArgs, json: bool) -> Result<()> {
    let mut sc = match (&a.preset, &a.scenario) {
        (Some(name), _) => Scenario::preset(name)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Scenario::from_toml(&text).with_context(|| path.display().to_string())?
        }
        (None, None) => bail!("name a --preset or a --scenario file"),
    };
    if let Some(p) = a.periods {
        sc.periods = p;
    }
    if let Some(m) = a.members {
        sc.members.initial = m;
    }
    for r in &a.rules {
        let (k, v) = r
            .split_once('=')
            .with_context(|| format!("--rule {r}: expected NAME=VALUE"))?;
        let value: serde_json::Value = match v {
            "true" | "false" => serde_json::Value::Bool(v == "true"),
            "open" | "vote" | "public" | "commitment" => v.into(),
            _ => serde_json::Value::String(v.to_string()),
        };
        sc.rules.insert(k.trim().to_string(), value);
    }
    if a.show {
        print!("{}", toml::to_string(&sc)?);
        return Ok(());
    }
    let bar = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut progress = |done: u64, total: u64| {
        if bar {
            let width = 40;
            let filled = usize::try_from(done * width / total.max(1)).unwrap_or(0);
            eprint!(
                "\r[{}{}] {done}/{total} periods",
                "#".repeat(filled),
                " ".repeat(usize::try_from(width).unwrap_or(40) - filled)
            );
        }
        true
    };
    let report = simulate(&sc, a.seed, CLI_MEMBER_PERIODS_MAX, &mut progress)?;
    let elapsed = start.elapsed();
    if bar {
        eprintln!();
    }
    let secs = elapsed.as_millis().max(1);
    eprintln!(
        "simulated {} periods, {} transactions in {}.{:03} s ({} tx/s)",
        report.summary.periods,
        report.summary.transactions,
        secs / 1000,
        secs % 1000,
        u128::from(report.summary.transactions) * 1000 / secs
    );
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(path) = a.plot {
        let body = if path.extension().is_some_and(|e| e == "svg") {
            chart::charts(&report).swap_remove(0).1
        } else {
            chart::html(&report)
        };
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("charts written to {}", path.display());
    }
    Ok(())
}
