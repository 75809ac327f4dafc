//! `kassa bench curve`: `kassa bench state` with the state at several sizes, so that its cost
//! as the state grows is seen on one screen.
//!
//! Each point runs `kassa bench state --preload` in a process of its own: the resident memory
//! it reports is then that point's alone, not what earlier points left to the allocator. At
//! every size the same members sign the same kind of load (at most [`SIGNERS`] of them, so a
//! block of 10,000 transactions touches ~10,000 distinct accounts); the other accounts are
//! funded at genesis and receive the transfers.

use super::*;
use anyhow::Result;

/// Accounts that sign the load at each size (fewer when the state is smaller).
const SIGNERS: usize = 10_000;

/// The state sizes of the curve unless `--sizes` says otherwise.
pub const DEFAULT_SIZES: [usize; 4] = [1_000, 16_000, 256_000, 1_000_000];

/// A size as the table shows it: 1k, 16k, 1M.
fn short(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// One point: `kassa bench state` in a child process with `size` accounts in the state.
fn point(opts: &Options, size: usize) -> Result<Vec<Row>> {
    let signers = size.min(SIGNERS);
    let mix = format!("{:?}", opts.mix).to_lowercase();
    eprintln!(
        "curve: {} accounts ({signers} signing), in a process of its own…",
        short(size)
    );
    let args = [
        "state".to_string(),
        "--mix".into(),
        mix,
        "--txs".into(),
        opts.txs.to_string(),
        "--accounts".into(),
        signers.to_string(),
        "--preload".into(),
        (size - signers).to_string(),
        "--cache-mib".into(),
        opts.cache_mib.to_string(),
    ];
    let mut rows = rows_of_child(&args)?;
    for row in &mut rows {
        row.name = row
            .name
            .replacen("state:", &format!("state @{}:", short(size)), 1);
    }
    Ok(rows)
}

/// The execute + commit row of a point: where its memory and disk are read.
fn commit_row(rows: &[Row]) -> Option<&Row> {
    rows.iter().find(|r| r.name.ends_with("execute + commit"))
}

pub(super) fn bench_curve(opts: &Options) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    // The first (smallest) point: later points state what each further account costs beyond
    // it, in memory and on disk (the blocks and receipts of the load are the same at every
    // size and cancel out).
    let mut first: Option<(u64, u64, u64)> = None;
    for &size in &opts.sizes {
        ensure!(size >= 4, "a state of at least 4 accounts");
        let mut point = point(opts, size)?;
        let accounts = u64::try_from(size)?;
        if let Some(r) = commit_row(&point) {
            let (rss, disk) = (r.rss_kib * 1024, r.disk_bytes.unwrap_or(0));
            match first {
                None => first = Some((accounts, rss, disk)),
                Some((n0, rss0, disk0)) if accounts > n0 => {
                    let more = accounts - n0;
                    let note = format!(
                        "; each account beyond {}: {} B RSS, {} B disk",
                        short(usize::try_from(n0)?),
                        rss.saturating_sub(rss0) / more,
                        disk.saturating_sub(disk0) / more
                    );
                    for r in point
                        .iter_mut()
                        .filter(|r| r.name.ends_with("execute + commit"))
                    {
                        r.note += &note;
                    }
                }
                Some(_) => {}
            }
        }
        rows.extend(point);
    }
    Ok(rows)
}
