//! `kassa bench`: measures the chain the way its users feel it, on realistic signed Kassa
//! transactions generated before the clock starts.
//!
//! - `state`: the application alone over the real storage (redb + Jellyfish Merkle tree):
//!   mempool admission (batch signature verification, account checks), then block building,
//!   execution and the durable commit, block after block.
//! - `node`: one in-process `kassa node` (the real consensus engine with one validator): submit,
//!   relay, propose, verify, finalize, commit; submit-to-finalized latency per transaction.
//! - `network`: four validators on loopback in this process (authenticated p2p between them),
//!   each account's transactions submitted to one of them; latency measured at validator 0.
//! - `scale`: finalizing an approved request in societies of 10, 10k and 1M members — time and
//!   state writes — and the resident memory the members take.
//!
//! No floating point (the workspace denies it): rates and percentiles are integer arithmetic.

use crate::genesis::{Allocation, GenesisFile};
use crate::node::{self, Plan, Role};
use anyhow::{Context as _, Result, bail, ensure};
use kassa_node::consensus::{self, genesis_context};
use kassa_node::{AdmitError, App, MempoolConfig, Node};
use kassa_state::exec::{BlockContext, Receipt};
use kassa_state::{Genesis, MemStore, Overlay, apply_tx, begin_block, end_block, init_genesis};
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName};
use kassa_types::{
    Address, AssetId, Hash, RequestId, Rules, SecretKey, SignedTransaction, SocietyId, Transaction,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Which transactions the load is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Load {
    /// Members pay into their gift accounts.
    Contribute,
    /// Members vote (and change their votes) on an open request.
    Vote,
    /// Plain KAS transfers.
    Transfer,
    /// All three in turn.
    Mix,
}

/// Which benchmarks to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    State,
    Node,
    Network,
    Scale,
    All,
}

/// `kassa bench` options.
#[derive(Clone, Debug)]
pub struct Options {
    pub which: Which,
    pub txs: usize,
    pub accounts: usize,
    pub mix: Load,
    pub block_ms: u64,
    /// Offered load of the node and network benchmarks, transactions per second; 0 submits as
    /// fast as the node admits (throughput at saturation, where latency is mostly queueing).
    pub rate: u64,
    /// Client threads submitting over the nodes' HTTP APIs, one transaction per request; 0
    /// submits in-process in batches.
    pub http_clients: usize,
    /// Also write the results as JSON to this file.
    pub json: Option<PathBuf>,
    /// Print the results as JSON instead of a table (progress goes to standard error).
    pub print_json: bool,
}

/// One line of the results table.
#[derive(Clone, Debug)]
struct Row {
    name: String,
    txs: u64,
    wall: Duration,
    /// Latencies (per transaction, or per block for `state`).
    latencies: Vec<Duration>,
    cpu: Duration,
    rss_kib: u64,
    note: String,
}

impl Row {
    fn tps(&self) -> u64 {
        let us = u64::try_from(self.wall.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.txs.saturating_mul(1_000_000) / us
    }

    fn percentile(&self, p: usize) -> Option<Duration> {
        let mut v = self.latencies.clone();
        v.sort();
        (!v.is_empty()).then(|| v[(v.len() * p / 100).min(v.len() - 1)])
    }

    fn cpu_percent(&self) -> u64 {
        let wall = u64::try_from(self.wall.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        u64::try_from(self.cpu.as_micros()).unwrap_or(u64::MAX) * 100 / wall
    }

    fn json(&self) -> Value {
        let us = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        json!({
            "name": self.name,
            "txs": self.txs,
            "wall_us": u64::try_from(self.wall.as_micros()).unwrap_or(u64::MAX),
            "tx_per_s": self.tps(),
            "p50_us": us(self.percentile(50)),
            "p99_us": us(self.percentile(99)),
            "cpu_percent": self.cpu_percent(),
            "rss_kib": self.rss_kib,
            "note": self.note,
        })
    }
}

/// Milliseconds with one decimal, from a duration (integer arithmetic).
fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{}", us / 1000, (us % 1000) / 100)
}

/// The machine, as the results should state it.
fn machine() -> Value {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    json!({"cores": cores, "cpu": model, "profile": profile, "kassa": env!("CARGO_PKG_VERSION")})
}

/// CPU time this process has used (user + system), from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the chosen benchmarks and prints the table (and writes JSON if asked).
pub fn run(opts: &Options) -> Result<()> {
    ensure!(opts.accounts >= 4, "at least 4 accounts");
    ensure!(opts.txs >= 1, "at least one transaction");
    ensure!(
        opts.http_clients == 0 || opts.rate == 0,
        "--http measures saturation: leave out --rate"
    );
    let m = machine();
    eprintln!(
        "kassa bench — {} cores, {}, {} build; {} transactions ({:?}) from {} accounts",
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["profile"].as_str().unwrap_or("?"),
        opts.txs,
        opts.mix,
        opts.accounts
    );
    let mut rows = Vec::new();
    let all = opts.which == Which::All;
    // Scale runs first, though its rows come last: its resident memory per member is the
    // growth of this process's RSS, which memory freed by the other benchmarks (and reused by
    // the allocator) would hide.
    let scale = if all || opts.which == Which::Scale {
        bench_scale()?
    } else {
        Vec::new()
    };
    if all || opts.which == Which::State {
        rows.extend(bench_state(opts)?);
    }
    if all || opts.which == Which::Node {
        rows.extend(bench_nodes_under_loads(opts, 1)?);
    }
    if all || opts.which == Which::Network {
        rows.extend(bench_nodes_under_loads(opts, 4)?);
    }
    rows.extend(scale);
    let out = json!({
        "machine": m,
        "options": {"txs": opts.txs, "accounts": opts.accounts, "mix": format!("{:?}", opts.mix), "block_ms": opts.block_ms, "rate": opts.rate, "http_clients": opts.http_clients},
        "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    if opts.print_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        println!(
            "{:<34} {:>9} {:>10} {:>9} {:>9} {:>6} {:>9}  note",
            "workload", "txs", "tx/s", "p50 ms", "p99 ms", "cpu%", "rss MiB"
        );
        for r in &rows {
            println!(
                "{:<34} {:>9} {:>10} {:>9} {:>9} {:>6} {:>9}  {}",
                r.name,
                r.txs,
                r.tps(),
                r.percentile(50).map_or("-".into(), ms),
                r.percentile(99).map_or("-".into(), ms),
                r.cpu_percent(),
                r.rss_kib / 1024,
                r.note
            );
        }
    }
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The workload.

const CHAIN_ID: &str = "kassa-bench";
const PLEDGE: u64 = 100_000;

fn bench_key(i: usize) -> SecretKey {
    SecretKey::from_label(&format!("kassa-bench-{i}"))
}

/// Signed transactions, prepared before anything is timed.
struct Workload {
    genesis: GenesisFile,
    /// Stages to finalize one after the other before the measurement: a society, everyone
    /// joins, everyone contributes, a request is filed.
    setup: Vec<Vec<(usize, SignedTransaction)>>,
    /// The measured load; each with the account that signed it.
    measured: Vec<(usize, SignedTransaction)>,
}

fn society_rules() -> Rules {
    let mut r = Rules::defaults(PLEDGE, PLEDGE * 10);
    r.min_members = 3;
    r.waiting_periods = 0;
    r.voting_window_secs = 30 * 24 * 3600;
    r
}

fn workload(opts: &Options, validators: Vec<String>) -> Result<Workload> {
    let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let keys: Vec<SecretKey> = (0..opts.accounts).map(bench_key).collect();
    let genesis = GenesisFile {
        chain_id: CHAIN_ID.into(),
        min_fee: 1_000,
        time_ms: now,
        allocations: keys
            .iter()
            .map(|k| Allocation {
                address: k.address().to_bech32(),
                amount: 1_000_000_000_000,
            })
            .collect(),
        validators,
    };
    let chain_id = ChainId::new(CHAIN_ID.to_string()).context("chain id")?;
    let genesis_hash = genesis.to_genesis()?.hash();
    let mut nonces = vec![0u64; keys.len()];
    let mut sign = |i: usize, body: Body| {
        let tx = Transaction {
            chain_id: chain_id.clone(),
            genesis: genesis_hash,
            signer: keys[i].address(),
            nonce: nonces[i],
            fee: 1_000,
            expiry_height: u64::MAX / 2,
            body,
        }
        .sign(&keys[i]);
        nonces[i] += 1;
        (i, tx)
    };
    let soc = SocietyId(0);
    let everyone = 0..opts.accounts;
    let setup = vec![
        vec![sign(
            0,
            Body::CreateSociety {
                name: SocietyName::new("Bench fund").context("name")?,
                purpose: Purpose::new("income when a member cannot work").context("purpose")?,
                asset: AssetId::NATIVE,
                rules: society_rules(),
                pledge: PLEDGE,
            },
        )],
        // Account 0 founded the society and is its first member.
        everyone
            .clone()
            .skip(1)
            .map(|i| {
                sign(
                    i,
                    Body::Join {
                        society: soc,
                        pledge: PLEDGE,
                        identity_commitment: None,
                    },
                )
            })
            .collect(),
        everyone
            .clone()
            .map(|i| {
                sign(
                    i,
                    Body::Contribute {
                        society: soc,
                        amount: PLEDGE,
                    },
                )
            })
            .collect(),
        vec![sign(
            1,
            Body::FileRequest {
                society: soc,
                amount: PLEDGE,
                evidence_hash: Hash::of(&[b"doctor's note"]),
                memo: Memo::new("sick leave").context("memo")?,
                payee: None,
                installments: 0,
            },
        )],
    ];
    let mut measured = Vec::with_capacity(opts.txs);
    for j in 0..opts.txs {
        let i = j % opts.accounts;
        let kind = match opts.mix {
            Load::Mix => [Load::Contribute, Load::Vote, Load::Transfer][j % 3],
            m => m,
        };
        // Account 1 filed the request and may not vote on it.
        let i = if kind == Load::Vote && i == 1 { 2 } else { i };
        let body = match kind {
            Load::Contribute => Body::Contribute {
                society: soc,
                amount: PLEDGE,
            },
            Load::Vote => Body::Vote {
                request: RequestId(0),
                approve: j % 2 == 0,
                percent: 100,
            },
            _ => Body::Transfer {
                to: bench_key((i + 1) % opts.accounts).address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        };
        measured.push(sign(i, body));
    }
    Ok(Workload {
        genesis,
        setup,
        measured,
    })
}

fn mempool_config(opts: &Options) -> MempoolConfig {
    let per_sender = opts.txs / opts.accounts * 2 + 64;
    MempoolConfig {
        txs_max: opts.txs + opts.accounts * 4 + 1_000,
        bytes_max: 1 << 30,
        per_sender_max: per_sender,
        nonce_window: u64::try_from(per_sender).unwrap_or(u64::MAX),
        expiry_window: u64::MAX,
    }
}

// ---------------------------------------------------------------------------------------------
// state

/// Builds and commits blocks until the mempool is empty; returns each block's time.
fn drain(app: &mut App, time_ms: &mut u64, proposer: Address) -> Result<Vec<Duration>> {
    let ctx = genesis_context();
    let mut times = Vec::new();
    while !app.mempool().is_empty() {
        *time_ms += 1_000;
        let started = Instant::now();
        let parent = app.head().block_hash;
        let block = app.propose(&parent, *time_ms, proposer, &ctx)?;
        ensure!(
            !block.txs.is_empty(),
            "the mempool holds transactions no block takes"
        );
        app.finalize(&block)?;
        times.push(started.elapsed());
    }
    Ok(times)
}

fn bench_state(opts: &Options) -> Result<Vec<Row>> {
    eprintln!("state: preparing {} signed transactions…", opts.txs);
    let w = workload(opts, vec![hex::encode([0u8; 32])])?;
    let dir = tempfile::tempdir()?;
    let mut app = App::open(
        dir.path(),
        &w.genesis.to_genesis()?,
        &genesis_context(),
        mempool_config(opts),
    )?;
    let proposer = bench_key(0).address();
    let mut time_ms = w.genesis.time_ms;
    for stage in &w.setup {
        let txs = stage.iter().map(|(_, t)| t.clone()).collect();
        for r in app.submit(txs)? {
            r.map_err(|e| anyhow::anyhow!("setup transaction refused: {e}"))?;
        }
        drain(&mut app, &mut time_ms, proposer)?;
    }
    let txs: Vec<SignedTransaction> = w.measured.iter().map(|(_, t)| t.clone()).collect();
    let n = u64::try_from(txs.len())?;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let refused = app.submit(txs)?.iter().filter(|r| r.is_err()).count();
    ensure!(
        refused == 0,
        "{refused} transactions refused by the mempool"
    );
    let (cpu1, t1) = (cpu_time(), Instant::now());
    let blocks = drain(&mut app, &mut time_ms, proposer)?;
    let (cpu2, t2) = (cpu_time(), Instant::now());
    let nblocks = blocks.len();
    Ok(vec![
        Row {
            name: "state: admit (signatures, checks)".into(),
            txs: n,
            wall: t1 - t0,
            latencies: Vec::new(),
            cpu: cpu1.saturating_sub(cpu0),
            rss_kib: rss_kib(),
            note: "batch ed25519 verification".into(),
        },
        Row {
            name: "state: execute + commit".into(),
            txs: n,
            wall: t2 - t1,
            latencies: blocks,
            cpu: cpu2.saturating_sub(cpu1),
            rss_kib: rss_kib(),
            note: format!("{nblocks} blocks; latency = per block"),
        },
        Row {
            name: "state: end to end".into(),
            txs: n,
            wall: t2 - t0,
            latencies: Vec::new(),
            cpu: cpu2.saturating_sub(cpu0),
            rss_kib: rss_kib(),
            note: "admit + execute + durable commit".into(),
        },
    ])
}

// ---------------------------------------------------------------------------------------------
// node and network

/// A free loopback address below the ephemeral port range: a port the OS picked for us could
/// be taken, before the validator listens on it, by another validator dialling its peers.
fn free_addr() -> Result<SocketAddr> {
    let port = kassa_node::ports::free_loopback_ports(1).context("no free loopback port")?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Validators running in this process, their workload, and what stops each.
type Validators = (
    Vec<Arc<Node>>,
    Workload,
    Vec<tokio::sync::oneshot::Sender<()>>,
    Vec<String>,
);

/// Worker threads for each of `n` validators sharing `cores`: its share of them (at least one,
/// at most a lone node's [`node::WORKER_THREADS`]), rather than every runtime running a lone
/// node's count on the same cores. Four validators with two workers each on two cores ran eight
/// busy workers and finalized 12,300–15,800 tx/s saturated; with one each, 12,400–18,000.
fn worker_threads_each(cores: usize, n: usize) -> usize {
    (cores / n.max(1)).clamp(1, node::WORKER_THREADS)
}

/// Starts `n` validators in this process.
fn start_validators(opts: &Options, n: usize, dir: &std::path::Path) -> Result<Validators> {
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
    let mut urls = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let worker_threads = worker_threads_each(cores, n);
    for (i, seed) in seeds.iter().enumerate() {
        let http = free_addr()?;
        urls.push(format!("http://{http}/api/v1/txs"));
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
            worker_threads,
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
    Ok((nodes, w, stops, urls))
}

/// Transactions handed to a node per call when saturating it: one batch signature check and one
/// take of the mempool's lock each.
const SUBMIT_BATCH: usize = 2_000;

/// How often an offered load (`--rate`) hands each node what has come due: one batch per node
/// per tick, rather than a loop spinning on one or two transactions at a time, which took a
/// core from the validators sharing this machine.
const RATE_TICK: Duration = Duration::from_millis(10);

/// Submits `(account, tx)` pairs, each account to its own node, retrying while mempools are full;
/// at most `rate` per second if it is not 0.
///
/// `sent` gets each transaction's start of latency. Saturating (`rate` 0), that is when it was
/// submitted. Under an offered load it is when the transaction was due, its place in an even
/// stream of `rate` per second: time a transaction waited for the next tick, or for room in a
/// full mempool, counts against the chain, as a member would feel it.
fn submit(
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

/// Submits `(account, tx)` pairs over the nodes' HTTP APIs (`POST /api/v1/txs`), one
/// transaction per request, as wallets do, from `clients` threads: each account's transactions
/// in order from one thread, to the account's node, retrying while its mempool is full. Returns
/// when each transaction was accepted.
fn submit_http(
    urls: &[String],
    txs: &[(usize, SignedTransaction)],
    clients: usize,
) -> Result<Vec<Instant>> {
    let clients = clients.max(1);
    let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); clients];
    for (k, (account, _)) in txs.iter().enumerate() {
        lanes[account % clients].push(k);
    }
    let bodies: Vec<Value> = txs
        .iter()
        .map(|(_, t)| json!({ "tx": hex::encode(t.encode()) }))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    // Each lane's acceptance times, in the lane's order.
    let sent: Vec<Vec<Instant>> = std::thread::scope(|s| {
        let threads: Vec<_> = lanes
            .iter()
            .map(|lane| {
                let bodies = &bodies;
                s.spawn(move || -> Result<Vec<Instant>> {
                    let agent = crate::client::agent();
                    let mut sent = Vec::with_capacity(lane.len());
                    for &k in lane {
                        let url = &urls[txs[k].0 % urls.len()];
                        loop {
                            ensure!(
                                Instant::now() < deadline,
                                "submission did not finish in time"
                            );
                            let at = Instant::now();
                            let mut resp = agent.post(url).send_json(&bodies[k])?;
                            // Read to the end, so that the connection is reused.
                            let answer = resp.body_mut().read_to_string()?;
                            match resp.status().as_u16() {
                                200 => {
                                    sent.push(at);
                                    break;
                                }
                                503 => std::thread::sleep(Duration::from_millis(2)),
                                status => bail!(
                                    "a transaction was refused over HTTP ({status}): {answer}"
                                ),
                            }
                        }
                    }
                    Ok(sent)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| anyhow::anyhow!("an HTTP client panicked"))?
            })
            .collect::<Result<_>>()
    })?;
    let mut at = vec![deadline; txs.len()];
    for (lane, times) in lanes.iter().zip(sent) {
        for (&k, t) in lane.iter().zip(times) {
            at[k] = t;
        }
    }
    Ok(at)
}

/// Waits until `observer` has finalized every transaction; returns when each was.
fn finalized_at(
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
const LATENCY_LOADS: [u64; 2] = [1_000, 10_000];

/// Seconds each of [`LATENCY_LOADS`] is offered for (fewer if `--txs` is smaller).
const LATENCY_SECS: u64 = 3;

/// [`bench_nodes`] as asked; if saturating, then again at each of [`LATENCY_LOADS`], each on
/// freshly started validators.
fn bench_nodes_under_loads(opts: &Options, n: usize) -> Result<Vec<Row>> {
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

fn bench_nodes(opts: &Options, n: usize) -> Result<Row> {
    let what = if n == 1 { "node" } else { "network" };
    let load = if opts.http_clients > 0 {
        format!(
            "over HTTP, {} clients, one transaction per request",
            opts.http_clients
        )
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
    let (nodes, w, stops, urls) = start_validators(opts, n, dir.path())?;
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
        let (rate, clients) = (opts.rate, opts.http_clients);
        std::thread::spawn(move || {
            if clients > 0 {
                return submit_http(&urls, &txs, clients);
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
        note: format!("{load}; {} ms pacing", opts.block_ms),
    })
}

// ---------------------------------------------------------------------------------------------
// scale

/// A chain in memory, one transaction per block.
struct MemChain {
    st: MemStore,
    height: u64,
    time_ms: u64,
    nonces: BTreeMap<Address, u64>,
    chain_id: ChainId,
    genesis_hash: Hash,
}

impl MemChain {
    fn new(accounts: usize) -> Result<MemChain> {
        let mut st = MemStore::new();
        let chain_id = ChainId::new(CHAIN_ID.to_string()).context("chain id")?;
        init_genesis(
            &mut st,
            &Genesis {
                chain_id: chain_id.clone(),
                min_fee: 1_000,
                allocations: (0..accounts)
                    .map(|i| (bench_key(i).address(), 1_000_000_000_000))
                    .collect(),
                time_ms: 0,
                validators: Vec::new(),
            },
        )
        .map_err(|e| anyhow::anyhow!("genesis: {e:?}"))?;
        let genesis_hash = kassa_state::exec::chain_params(&st)
            .context("genesis applied")?
            .genesis_hash;
        Ok(MemChain {
            genesis_hash,
            st,
            height: 0,
            time_ms: 0,
            nonces: BTreeMap::new(),
            chain_id,
        })
    }

    /// Executes one transaction in its own block; returns its receipt and how long it took.
    fn exec(&mut self, key: &SecretKey, body: Body) -> Result<(Receipt, Duration)> {
        let nonce = self.nonces.entry(key.address()).or_default();
        let tx = Transaction {
            chain_id: self.chain_id.clone(),
            genesis: self.genesis_hash,
            signer: key.address(),
            nonce: *nonce,
            fee: 1_000,
            expiry_height: u64::MAX,
            body,
        }
        .sign(key);
        *nonce += 1;
        self.height += 1;
        self.time_ms += 1;
        let ctx = BlockContext {
            height: self.height,
            time_ms: self.time_ms,
            proposer: key.address(),
        };
        begin_block(&mut self.st, &ctx).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let started = Instant::now();
        let mut overlay = Overlay::new(&self.st);
        let receipt = apply_tx(&mut overlay, &ctx, &tx, false)
            .map_err(|r| anyhow::anyhow!("refused: {r}"))?;
        let writes = overlay.into_writes();
        kassa_state::store::apply_writes(&mut self.st, writes);
        let took = started.elapsed();
        end_block(&mut self.st, &ctx);
        if let Some(r) = receipt.rejection() {
            bail!("{} failed: {r}", tx.tx.body.kind());
        }
        Ok((receipt, took))
    }
}

/// Finalizes an approved request in a society of `members`; returns (time, writes, RSS growth
/// of the seeded members in KiB).
fn approve_in_society(members: u64) -> Result<(Duration, u64, u64)> {
    const FOUNDERS: usize = 10;
    let mut c = MemChain::new(FOUNDERS + 1)?;
    let mut rules = Rules::defaults(100, 1_000);
    rules.period_secs = 3_600;
    rules.voting_window_secs = 60;
    rules.waiting_periods = 0;
    rules.min_members = 10;
    rules.max_draw_bps = 10_000;
    let h = rules.karma_half_life_periods;
    let soc = SocietyId(0);
    c.exec(
        &bench_key(0),
        Body::CreateSociety {
            name: SocietyName::new("Scale").context("name")?,
            purpose: Purpose::new("scale").context("purpose")?,
            asset: AssetId::NATIVE,
            rules,
            pledge: 100,
        },
    )?;
    for i in 0..FOUNDERS {
        let k = bench_key(i);
        if i > 0 {
            c.exec(
                &k,
                Body::Join {
                    society: soc,
                    pledge: 100,
                    identity_commitment: None,
                },
            )?;
        }
        c.exec(
            &k,
            Body::Contribute {
                society: soc,
                amount: 400,
            },
        )?;
    }
    // Voting weight is taken at the start of the filing period: file in the next one.
    c.time_ms += 3_600_000;
    let rss0 = rss_kib();
    let seeded = members.saturating_sub(10);
    kassa_state::testkit::seed_members(&mut c.st, soc, AssetId::NATIVE, seeded, 100, 400, h);
    let grown = rss_kib().saturating_sub(rss0);
    c.exec(
        &bench_key(0),
        Body::FileRequest {
            society: soc,
            amount: 500,
            evidence_hash: Hash::of(&[b"note"]),
            memo: Memo::new("scale").context("memo")?,
            payee: None,
            installments: 0,
        },
    )?;
    for i in 1..FOUNDERS {
        c.exec(
            &bench_key(i),
            Body::Vote {
                request: RequestId(0),
                approve: true,
                percent: 100,
            },
        )?;
    }
    c.time_ms += 61_000;
    let (receipt, took) = c.exec(
        &bench_key(FOUNDERS),
        Body::Finalize {
            request: RequestId(0),
        },
    )?;
    Ok((took, receipt.writes, grown))
}

fn bench_scale() -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for members in [10u64, 10_000, 1_000_000] {
        eprintln!("scale: a society of {members} members…");
        let (took, writes, grown) = approve_in_society(members)?;
        let per_member = if members > 10 {
            format!("; {} B resident per member", grown * 1024 / (members - 10))
        } else {
            String::new()
        };
        rows.push(Row {
            name: format!("scale: approve, {members} members"),
            txs: 1,
            wall: took,
            latencies: vec![took],
            cpu: Duration::ZERO,
            rss_kib: rss_kib(),
            note: format!("{writes} state writes{per_member}"),
        });
    }
    Ok(rows)
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
