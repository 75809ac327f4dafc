//! `kassa bench node` and `kassa bench network`: real validators in this process, fed
//! in-process or over HTTP; throughput and submit-to-finalized latency.

use super::workload::*;
use super::*;
use crate::node::{self, Plan, Role};
use anyhow::{Context as _, Result, bail, ensure};
use kassa_node::consensus::{self};
use kassa_node::{AdmitError, Node};
use kassa_types::{Hash, SecretKey, SignedTransaction};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A free loopback address below the ephemeral port range: a port the OS picked for us could
/// be taken, before the validator listens on it, by another validator dialling its peers.
pub(super) fn free_addr() -> Result<SocketAddr> {
    let port = kassa_node::ports::free_loopback_ports(1).context("no free loopback port")?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Validators running in this process, their workload, and what stops each.
pub(super) type Validators = (
    Vec<Arc<Node>>,
    Workload,
    Vec<tokio::sync::oneshot::Sender<()>>,
    Vec<SocketAddr>,
);

/// Worker threads for each of `n` validators sharing `cores`: its share of them (at least one,
/// at most a lone node's [`node::WORKER_THREADS`]), rather than every runtime running a lone
/// node's count on the same cores. Four validators with two workers each on two cores ran eight
/// busy workers and finalized 12,300–15,800 tx/s saturated; with one each, 12,400–18,000.
pub(super) fn worker_threads_each(cores: usize, n: usize) -> usize {
    (cores / n.max(1)).clamp(1, node::WORKER_THREADS)
}

/// Starts `n` validators in this process.
pub(super) fn start_validators(
    opts: &Options,
    n: usize,
    dir: &std::path::Path,
) -> Result<Validators> {
    let seeds: Vec<[u8; 32]> = (0..n).map(|_| SecretKey::generate().seed()).collect();
    let mut keys = Vec::new();
    for s in &seeds {
        let k = consensus::key_from_seed(*s).context("validator key")?;
        keys.push(hex::encode(consensus::public_key_bytes(
            &consensus::public_key(&k),
        )));
    }
    let w = workload(opts, keys.clone())?;
    let p2p: Vec<SocketAddr> = (0..n).map(|_| free_addr()).collect::<Result<_>>()?;
    let mut nodes = Vec::new();
    let mut stops = Vec::new();
    let mut apis = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let worker_threads = worker_threads_each(cores, n);
    for (i, seed) in seeds.iter().enumerate() {
        let http = free_addr()?;
        apis.push(http);
        let plan = Plan {
            data_dir: dir.join(format!("validator-{i}")),
            genesis: w.genesis.clone(),
            http,
            block_time: Duration::from_millis(opts.block_ms),
            role: Role::Validator {
                seed: *seed,
                p2p: p2p[i],
                peers: (0..n)
                    .filter(|j| *j != i)
                    .map(|j| crate::genesis::Peer {
                        public_key: keys[j].clone(),
                        address: p2p[j],
                    })
                    .collect(),
            },
            faucet: None,
            mempool: mempool_config(opts),
            // The benchmark saturates the node from one address.
            api: kassa_api::Limits::unmetered(),
            worker_threads,
            state_cache_bytes: opts.cache_mib << 20,
            prune_keep: opts.prune_keep,
            state_sync: false,
            host: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (started, node) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = node::run_until(
                plan,
                move || async move {
                    let _ = stopped.await;
                },
                move |n| {
                    let _ = started.send(n);
                },
            );
            if let Err(e) = result {
                eprintln!("bench validator: {e:#}");
            }
        });
        nodes.push(
            node.recv_timeout(Duration::from_secs(60))
                .context("a validator did not start")?,
        );
        stops.push(stop);
    }
    Ok((nodes, w, stops, apis))
}

/// Transactions handed to a node per call when saturating it: one batch signature check and one
/// take of the mempool's lock each.
pub(super) const SUBMIT_BATCH: usize = 2_000;

/// How often an offered load (`--rate`) hands each node what has come due: one batch per node
/// per tick, rather than a loop spinning on one or two transactions at a time, which took a
/// core from the validators sharing this machine.
pub(super) const RATE_TICK: Duration = Duration::from_millis(10);

/// Submits `(account, tx)` pairs, each account to its own node, retrying while mempools are full;
/// at most `rate` per second if it is not 0.
///
/// `sent` gets each transaction's start of latency. Saturating (`rate` 0), that is when it was
/// submitted. Under an offered load it is when the transaction was due, its place in an even
/// stream of `rate` per second: time a transaction waited for the next tick, or for room in a
/// full mempool, counts against the chain, as a member would feel it.
pub(super) fn submit(
    nodes: &[Arc<Node>],
    txs: &[(usize, SignedTransaction)],
    sent: &mut Vec<Instant>,
    rate: u64,
) -> Result<()> {
    let mut by_node: Vec<Vec<(usize, SignedTransaction)>> = vec![Vec::new(); nodes.len()];
    for (k, (account, tx)) in txs.iter().enumerate() {
        by_node[account % nodes.len()].push((k, tx.clone()));
    }
    sent.resize(txs.len(), Instant::now());
    let mut cursors = vec![0usize; nodes.len()];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    // Each node's share of the offered load, per second.
    let share = rate.div_ceil(u64::try_from(nodes.len())?);
    // The `j`th transaction (from 0) is due when `j + 1` have come due: the same arithmetic
    // as `due` below, so none is counted as waiting before it was offered.
    let due_at = |j: usize| -> Result<Instant> {
        let micros = (u64::try_from(j)? + 1).saturating_mul(1_000_000) / share.max(1);
        Ok(started + Duration::from_micros(micros))
    };
    let mut tick = started;
    while cursors.iter().zip(&by_node).any(|(c, b)| *c < b.len()) {
        ensure!(
            Instant::now() < deadline,
            "submission did not finish in time"
        );
        let mut progress = false;
        for (i, node) in nodes.iter().enumerate() {
            let start = cursors[i];
            let mut end = (start + SUBMIT_BATCH).min(by_node[i].len());
            if rate > 0 {
                // What this node's share of the offered load allows by now.
                let elapsed = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let due = usize::try_from(elapsed.saturating_mul(share) / 1_000_000)?;
                end = end.min(due.max(start));
            }
            if start == end {
                continue;
            }
            let chunk: Vec<SignedTransaction> = by_node[i][start..end]
                .iter()
                .map(|(_, t)| t.clone())
                .collect();
            let now = Instant::now();
            let results = node.submit(chunk)?;
            for (offset, r) in results.iter().enumerate() {
                match r {
                    Ok(_) => {
                        let j = start + offset;
                        sent[by_node[i][j].0] = if rate > 0 { due_at(j)? } else { now };
                        cursors[i] += 1;
                        progress = true;
                    }
                    Err(AdmitError::Full | AdmitError::SenderFull) => break,
                    Err(e) => bail!("a transaction was refused: {e}"),
                }
            }
        }
        if rate > 0 {
            tick += RATE_TICK;
            std::thread::sleep(tick.saturating_duration_since(Instant::now()));
        } else if !progress {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

/// Waits until `observer` has finalized every transaction; returns when each was.
pub(super) fn finalized_at(
    events: &mut tokio::sync::broadcast::Receiver<Arc<kassa_node::Finalized>>,
    hashes: &[Hash],
) -> Result<Vec<Instant>> {
    // Looked up, never iterated; the receipts carry each transaction's hash (not recomputed
    // here, so the instrument takes less of the CPU it measures).
    let index: HashMap<Hash, usize> = hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let mut at: Vec<Option<Instant>> = vec![None; hashes.len()];
    let mut left = hashes.len();
    let deadline = Instant::now() + Duration::from_secs(900);
    while left > 0 {
        ensure!(
            Instant::now() < deadline,
            "{left} transactions never finalized"
        );
        // Blocks come every pacing interval, empty or not: waiting for the next one does not
        // outlive the deadline by more than that (and does not burn CPU polling).
        match events.blocking_recv() {
            Ok(f) => {
                let now = Instant::now();
                for (hash, _) in &f.receipts {
                    if let Some(i) = index.get(hash)
                        && at[*i].is_none()
                    {
                        at[*i] = Some(now);
                        left -= 1;
                    }
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                bail!("the benchmark fell behind the node's event stream")
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => bail!("the node stopped"),
        }
    }
    Ok(at.into_iter().map(|a| a.expect("all seen")).collect())
}

/// Offered loads (transactions per second) at which a saturating run (`--rate 0`) of the node
/// and network benchmarks also measures latency: a light load, and the network's target.
/// Saturated, latency is mostly the queue the benchmark itself builds.
pub(super) const LATENCY_LOADS: [u64; 2] = [1_000, 10_000];

/// Seconds each of [`LATENCY_LOADS`] is offered for (fewer if `--txs` is smaller).
pub(super) const LATENCY_SECS: u64 = 3;

/// [`bench_nodes`] as asked; if saturating, then again at each of [`LATENCY_LOADS`], each on
/// freshly started validators.
pub(super) fn bench_nodes_under_loads(opts: &Options, n: usize) -> Result<Vec<Row>> {
    let mut rows = vec![bench_nodes(opts, n)?];
    if opts.rate == 0 && opts.http_clients == 0 {
        for rate in LATENCY_LOADS {
            let txs = opts.txs.min(usize::try_from(rate * LATENCY_SECS)?);
            rows.push(bench_nodes(
                &Options {
                    rate,
                    txs,
                    ..opts.clone()
                },
                n,
            )?);
        }
    }
    Ok(rows)
}

pub(super) fn bench_nodes(opts: &Options, n: usize) -> Result<Row> {
    let what = if n == 1 { "node" } else { "network" };
    let load = if opts.http_clients > 0 {
        match opts.http_batch {
            0 | 1 => format!(
                "over HTTP, {} clients, one transaction per request",
                opts.http_clients
            ),
            b => format!(
                "over HTTP, {} clients, batches of {b} per request",
                opts.http_clients
            ),
        }
    } else if opts.rate == 0 {
        format!("in-process, saturated (batches of {SUBMIT_BATCH})")
    } else {
        format!("in-process, offered {} tx/s", opts.rate)
    };
    eprintln!(
        "{what}: starting {n} validator(s), {} ms blocks, {load}…",
        opts.block_ms
    );
    let dir = tempfile::tempdir()?;
    let (nodes, w, stops, apis) = start_validators(opts, n, dir.path())?;
    let observer = nodes[0].clone();
    for stage in &w.setup {
        let mut events = observer.subscribe();
        let mut sent = Vec::new();
        submit(&nodes, stage, &mut sent, 0)?;
        let hashes: Vec<Hash> = stage.iter().map(|(_, t)| t.hash()).collect();
        finalized_at(&mut events, &hashes)?;
    }
    eprintln!(
        "{what}: setup done; submitting {} transactions",
        w.measured.len()
    );
    let hashes: Vec<Hash> = w.measured.iter().map(|(_, t)| t.hash()).collect();
    let mut events = observer.subscribe();
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let mut sent = Vec::new();
    // Submit from another thread so that finalizations are timed as they happen.
    let submitter = {
        let nodes = nodes.clone();
        let txs = w.measured.clone();
        let (rate, clients, batch) = (opts.rate, opts.http_clients, opts.http_batch);
        std::thread::spawn(move || {
            if clients > 0 {
                return super::load::submit_http(&apis, &txs, clients, batch);
            }
            let mut sent = Vec::new();
            submit(&nodes, &txs, &mut sent, rate).map(|()| sent)
        })
    };
    let done = finalized_at(&mut events, &hashes)?;
    sent.extend(
        submitter
            .join()
            .map_err(|_| anyhow::anyhow!("the submitter panicked"))??,
    );
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let latencies = done
        .iter()
        .zip(&sent)
        .map(|(d, s)| d.saturating_duration_since(*s))
        .collect();
    let rss = rss_kib();
    for s in stops {
        let _ = s.send(());
    }
    std::thread::sleep(Duration::from_millis(500));
    Ok(Row {
        name: format!("{what}: submit → finalized ({n} val.)"),
        txs: u64::try_from(hashes.len())?,
        wall: t1 - t0,
        latencies,
        cpu: cpu1.saturating_sub(cpu0),
        rss_kib: rss,
        disk_bytes: None,
        note: format!("{load}; {} ms pacing", opts.block_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_sharing_the_cores_get_their_share_of_workers_and_a_lone_node_keeps_its_own() {
        assert_eq!(worker_threads_each(2, 4), 1);
        assert_eq!(worker_threads_each(2, 1), node::WORKER_THREADS);
        assert_eq!(worker_threads_each(8, 4), 2);
        assert_eq!(worker_threads_each(64, 1), node::WORKER_THREADS);
        assert_eq!(worker_threads_each(1, 4), 1);
        assert_eq!(worker_threads_each(2, 0), node::WORKER_THREADS);
    }
}
