//! `kassa bench sync`: state sync at scale. A node holding `--accounts` members of one society
//! (each joined and paid in, a request filed) among `--accounts + --preload` funded accounts
//! serves its API on loopback and offers its head; a new, empty database restores that state
//! from it, fetching the answers to the commitment's sync requests and checking each against
//! the offered commitment where it arrives, as a follower started with `state_sync` does. Both
//! run in this process, so they share its cores.
//!
//! The certificate check is left out (this chain has no consensus, so no certificate): it is
//! one signature check per validator, done once per sync.

use super::state::set_up;
use super::workload::*;
use super::*;
use anyhow::{Context as _, Result, ensure};
use kassa_node::consensus::genesis_context;
use kassa_node::follow::Certified;
use kassa_node::{App, Node};
use std::time::Instant;

pub(super) fn bench_sync(opts: &Options) -> Result<Vec<Row>> {
    eprintln!(
        "sync: building a state of {} accounts, {} of them members of one society…",
        opts.accounts + opts.preload,
        opts.accounts
    );
    let w = workload(opts, vec![hex::encode([0u8; 32])])?;
    let dir = tempfile::tempdir()?;
    let source =
        kassa_db::Db::open_with_cache(&dir.path().join("source.redb"), opts.cache_mib << 20)?;
    let app = App::open_db(
        source,
        &w.genesis.to_genesis()?,
        &genesis_context(),
        mempool_config(opts),
    )?;
    let node = Node::new(app, None);
    set_up(&node, &w)?;
    node.db().offer_head()?;
    let head = node.head();
    let (_, target) = node.db().offers()?.pop().context("the head is offered")?;
    let at = Certified {
        height: head.height,
        header: node.db().header(head.height)?.context("the head's block")?,
        certificate: Vec::new(),
        signers: 0,
        validators: 0,
    };
    let genesis_block = node.db().block(0)?.context("the genesis block")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    let _server = kassa_api::Server::start(listener, node.clone(), kassa_api::Limits::unmetered())?;
    eprintln!("sync: serving height {} on {url}; restoring…", head.height);

    let into_dir = dir.path().join("restored");
    std::fs::create_dir_all(&into_dir)?;
    let into = kassa_db::Db::open_with_cache(&into_dir.join("state.redb"), opts.cache_mib << 20)?;
    // The source's own peak (building the state), before the restore adds to it.
    let source_peak_kib = peak_rss_kib();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let (restored, answers, bytes) = crate::sync::restore_once(
        &into,
        &[url],
        &at,
        &target,
        &genesis_block,
        &mut crate::sync::progress_bar(),
    )?;
    let (cpu1, t1) = (cpu_time(), Instant::now());
    ensure!(
        restored.state_root == head.state_root && restored.height == head.height,
        "the restored state is the served one"
    );
    let accounts = u64::try_from(opts.accounts + opts.preload)?;
    Ok(vec![Row {
        name: "sync: restore the state over HTTP".into(),
        txs: accounts,
        wall: t1 - t0,
        latencies: Vec::new(),
        cpu: cpu1.saturating_sub(cpu0),
        rss_kib: peak_rss_kib(),
        disk_bytes: Some(dir_bytes(&into_dir)?),
        note: format!(
            "{answers} answers for {accounts} accounts ({} members), {} MiB received; rate = \
             accounts/s; server and restorer in one process; rss = peak ({} MiB before the \
             restore)",
            opts.accounts,
            bytes >> 20,
            source_peak_kib >> 10
        ),
    }])
}
