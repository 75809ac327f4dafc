//! `kassa bench state`: the node without consensus or network, over the real storage: admission,
//! then blocks built and committed through `Node` as consensus drives it.

use super::workload::*;
use super::*;
use anyhow::{Result, ensure};
use kassa_node::consensus::genesis_context;
use kassa_node::{App, Durability, Node};
use kassa_state::testkit::SplitMix;
use kassa_types::{Address, SignedTransaction};
use std::time::{Duration, Instant};

/// Builds and commits blocks until the mempool is empty, as a node's consensus drives it: each
/// block is built on its parent while the parent is still being written (on a thread of its
/// own), so execution and the durable write of consecutive blocks overlap. Returns each
/// block's time from the start of its execution to the end of its write.
pub(super) fn drain(node: &Node, time_ms: &mut u64, proposer: Address) -> Result<Vec<Duration>> {
    let ctx = genesis_context();
    let mut times = Vec::new();
    if node.mempool_len() == 0 {
        return Ok(times);
    }
    std::thread::scope(|s| {
        // The block being written, and when its execution started.
        let mut writing: Option<(std::thread::ScopedJoinHandle<'_, Result<()>>, Instant)> = None;
        let mut parent = node.head().block_hash;
        loop {
            *time_ms += 1_000;
            let started = Instant::now();
            let block = node.propose(&parent, *time_ms, proposer, &ctx)?;
            let wrote = match writing.take() {
                Some((write, at)) => {
                    write
                        .join()
                        .map_err(|_| anyhow::anyhow!("a block write panicked"))??;
                    times.push(at.elapsed());
                    true
                }
                None => false,
            };
            if block.txs.is_empty() {
                // Built on a parent that took the last transactions: done once it is written.
                ensure!(wrote, "the mempool holds transactions no block takes");
                if node.mempool_len() == 0 {
                    return Ok(());
                }
                continue;
            }
            parent = block.header.hash();
            writing = Some((
                s.spawn(move || {
                    node.finalize(&block, Durability::Immediate)?;
                    Ok(())
                }),
                started,
            ));
        }
    })?;
    Ok(times)
}

/// Finalizes the workload's setup stages one after the other (each in as many blocks as it
/// takes); returns the last block's time.
pub(super) fn set_up(node: &Node, w: &Workload) -> Result<u64> {
    let proposer = bench_key(0).address();
    let mut time_ms = w.genesis.time_ms;
    for stage in &w.setup {
        let txs = stage.iter().map(|(_, t)| t.clone()).collect();
        for r in node.submit(txs)? {
            r.map_err(|e| anyhow::anyhow!("setup transaction refused: {e}"))?;
        }
        drain(node, &mut time_ms, proposer)?;
    }
    Ok(time_ms)
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
    let db = kassa_db::Db::open_with_cache(&dir.path().join("state.redb"), opts.cache_mib << 20)?
        .keeping(opts.prune_keep);
    let app = App::open_db(
        db,
        &w.genesis.to_genesis()?,
        &genesis_context(),
        mempool_config(opts),
    )?;
    if opts.preload > 0 {
        eprintln!("state: genesis committed in {:?}", started.elapsed());
    }
    let node = Node::new(app, None);
    let proposer = bench_key(0).address();
    let mut time_ms = set_up(&node, &w)?;
    let txs: Vec<SignedTransaction> = w.measured.iter().map(|(_, t)| t.clone()).collect();
    let n = u64::try_from(txs.len())?;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let refused = node.submit(txs)?.iter().filter(|r| r.is_err()).count();
    ensure!(
        refused == 0,
        "{refused} transactions refused by the mempool"
    );
    let (cpu1, t1, written1) = (cpu_time(), Instant::now(), written_bytes());
    let blocks = drain(&node, &mut time_ms, proposer)?;
    let (cpu2, t2, written2) = (cpu_time(), Instant::now(), written_bytes());
    let nblocks = blocks.len();
    let disk = dir_bytes(dir.path())?;
    // What each block writes (a B-tree rewrites a whole page for each key it changes), and
    // where the disk goes: the redb file (state table, history, blocks, receipts) and the
    // commitment's directory (operation log and mountain range).
    let per_block = (written2 - written1) / u64::try_from(nblocks.max(1))?;
    let redb = std::fs::metadata(dir.path().join("state.redb"))?.len();
    let commitment = disk.saturating_sub(redb);
    // The largest of redb's tables.
    let tables: Vec<String> = node
        .db()
        .table_sizes()?
        .into_iter()
        .take(4)
        .map(|(name, bytes)| format!("{name} {}", size(bytes)))
        .collect();
    let reads = bench_reads(&node, opts)?;
    let mut rows = vec![
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
            note: format!(
                "{nblocks} blocks; latency = per block; {} written a block; \
                 disk: redb {} ({}), commitment {}",
                size(per_block),
                size(redb),
                tables.join(", "),
                size(commitment)
            ),
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
    ];
    rows.extend(reads);
    Ok(rows)
}

/// Accounts read as the API reads them, and proven, at random over the whole state.
const READS: usize = 10_000;
const PROOFS: usize = 1_000;

/// The API's reads at the state's size: an account (balances, nonce) as `GET
/// /api/v1/accounts/{address}` reads it, and an account proven and checked against the state
/// root as `GET /api/v1/proofs/{key}` and a light client do.
fn bench_reads(node: &Node, opts: &Options) -> Result<Vec<Row>> {
    let state_accounts = opts.accounts + opts.preload;
    let mut rng = SplitMix(7);
    let addresses: Vec<Address> = (0..READS)
        .map(|_| match rng.idx(state_accounts) {
            i if i < opts.accounts => bench_key(i).address(),
            i => preload_address(i - opts.accounts),
        })
        .collect();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    for who in &addresses {
        let r = node.db().reader()?;
        let account = kassa_state::view::account(&r, who, 100);
        ensure!(!account.balances.is_empty(), "every account was funded");
        node.nonces(who)?;
    }
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let head = node.head();
    for who in &addresses[..PROOFS] {
        let key = kassa_state::keys::account(who);
        let p = node.db().prove(&key)?;
        ensure!(
            p.root == head.state_root
                && kassa_db::verify(&head.state_root, &key, p.value.as_deref(), &p.proof),
            "an account's proof verifies"
        );
    }
    let (cpu2, t2) = (cpu_time(), Instant::now());
    let row = |name: &str, n: usize, wall, cpu, note: &str| Row {
        name: name.into(),
        txs: u64::try_from(n).unwrap_or(u64::MAX),
        wall,
        latencies: Vec::new(),
        cpu,
        rss_kib: rss_kib(),
        disk_bytes: None,
        note: note.into(),
    };
    Ok(vec![
        row(
            "state: read an account",
            READS,
            t1 - t0,
            cpu1.saturating_sub(cpu0),
            "balances and nonce, as the API reads them; random accounts",
        ),
        row(
            "state: prove an account",
            PROOFS,
            t2 - t1,
            cpu2.saturating_sub(cpu1),
            "Merkle proof at the head, checked against its root",
        ),
    ])
}
