//! `kassa bench state`: the node without consensus or network, over the real storage: admission,
//! then blocks built and committed through `Node` as consensus drives it.

use super::workload::*;
use super::*;
use anyhow::{Result, ensure};
use kassa_node::consensus::genesis_context;
use kassa_node::{App, Durability, Node};
use kassa_types::{Address, SignedTransaction};
use std::time::{Duration, Instant};

/// Builds and commits blocks until the mempool is empty; returns each block's time.
pub(super) fn drain(node: &Node, time_ms: &mut u64, proposer: Address) -> Result<Vec<Duration>> {
    let ctx = genesis_context();
    let mut times = Vec::new();
    while node.mempool_len() > 0 {
        *time_ms += 1_000;
        let started = Instant::now();
        let parent = node.head().block_hash;
        let block = node.propose(&parent, *time_ms, proposer, &ctx)?;
        ensure!(
            !block.txs.is_empty(),
            "the mempool holds transactions no block takes"
        );
        node.finalize(&block, Durability::Immediate)?;
        times.push(started.elapsed());
    }
    Ok(times)
}

/// Bytes of the files in `dir`.
fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

pub(super) fn bench_state(opts: &Options) -> Result<Vec<Row>> {
    eprintln!(
        "state: preparing {} signed transactions, {} accounts in the state…",
        opts.txs,
        opts.accounts + opts.preload
    );
    let w = workload(opts, vec![hex::encode([0u8; 32])])?;
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let app = App::open(
        dir.path(),
        &w.genesis.to_genesis()?,
        &genesis_context(),
        mempool_config(opts),
    )?;
    if opts.preload > 0 {
        eprintln!("state: genesis committed in {:?}", started.elapsed());
    }
    let node = Node::new(app, None);
    let proposer = bench_key(0).address();
    let mut time_ms = w.genesis.time_ms;
    for stage in &w.setup {
        let txs = stage.iter().map(|(_, t)| t.clone()).collect();
        for r in node.submit(txs)? {
            r.map_err(|e| anyhow::anyhow!("setup transaction refused: {e}"))?;
        }
        drain(&node, &mut time_ms, proposer)?;
    }
    let txs: Vec<SignedTransaction> = w.measured.iter().map(|(_, t)| t.clone()).collect();
    let n = u64::try_from(txs.len())?;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let refused = node.submit(txs)?.iter().filter(|r| r.is_err()).count();
    ensure!(
        refused == 0,
        "{refused} transactions refused by the mempool"
    );
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let blocks = drain(&node, &mut time_ms, proposer)?;
    let (cpu2, t2) = (cpu_time(), Instant::now());
    let nblocks = blocks.len();
    let disk = dir_bytes(dir.path())?;
    Ok(vec![
        Row {
            name: "state: admit (signatures, checks)".into(),
            txs: n,
            wall: t1 - t0,
            latencies: Vec::new(),
            cpu: cpu1.saturating_sub(cpu0),
            rss_kib: rss_kib(),
            disk_bytes: None,
            note: "batch ed25519 verification".into(),
        },
        Row {
            name: "state: execute + commit".into(),
            txs: n,
            wall: t2 - t1,
            latencies: blocks,
            cpu: cpu2.saturating_sub(cpu1),
            rss_kib: rss_kib(),
            disk_bytes: Some(disk),
            note: format!("{nblocks} blocks; latency = per block"),
        },
        Row {
            name: "state: end to end".into(),
            txs: n,
            wall: t2 - t0,
            latencies: Vec::new(),
            cpu: cpu2.saturating_sub(cpu0),
            rss_kib: peak_rss_kib(),
            disk_bytes: Some(disk),
            note: "admit + execute + durable commit; rss = peak".into(),
        },
    ])
}
