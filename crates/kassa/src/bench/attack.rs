//! `kassa bench attack`: a validator attacked over its public API while honest members keep
//! sending transfers. The node is a `kassa node --config` process of its own, under a file
//! limit (`--file-limit`, 1,024 by default) and its default API limits; the attackers come from
//! loopback addresses of their own (127.0.0.10 and up), as attackers on the internet have their
//! own, and the honest members from 127.0.0.1.
//!
//! Phases, each `--secs` long after a second for the attack to take hold:
//! - `none`: the honest load alone, the figure the others are compared with;
//! - `gapped`: funded accounts flood nonces 1–255 and never send nonce 0 (they can never be
//!   included, so they never pay);
//! - `reads`: a flood of the most expensive reads (block lists, certificates, proofs);
//! - `idle`: thousands of connections that send half a request and then a byte now and then;
//! - `streams`: event-stream subscribers that never read;
//! - `fee-floor`: funded accounts submit valid transfers at the minimum fee as fast as the node
//!   takes them (spam that pays), while honest members pay twice the minimum.
//!
//! For each: the share of honest transactions accepted and included, their submit-to-finalized
//! latency, blocks finalized a second and the longest gap between two, the node's peak resident
//! memory, and whether it is still running.
//!
//! Over 600 lines: the node it starts, the honest members, the attackers and the table are one
//! experiment, read together.

use super::nodes::free_addr;
use super::{machine, ms, percentile};
use crate::genesis::{self, Allocation, GenesisFile, NodeConfig};
use anyhow::{Context as _, Result, bail};
use kassa_node::consensus;
use kassa_types::tx::{Body, ChainId};
use kassa_types::{AssetId, Hash, SecretKey, SignedTransaction, Transaction};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const CHAIN_ID: &str = "kassa-attack";
const MIN_FEE: u64 = 1_000;
/// Honest members pay twice the minimum: the going fee while spam pays the floor.
const HONEST_FEE: u64 = 2 * MIN_FEE;
const HONEST_ACCOUNTS: usize = 16;
/// Honest clients, each from an address of its own (127.0.0.2 and up).
const HONEST_CLIENTS: usize = 4;
/// Attacker accounts of each flood (the gapped and the fee-floor floods use different ones).
const ATTACK_ACCOUNTS: usize = 200;
/// Loopback addresses the attackers use: 127.0.0.10 and the next ones.
const ATTACK_IPS: u8 = 40;
/// Connections the connection floods try to open.
const IDLE_CONNECTIONS: usize = 3_000;
const STREAM_CONNECTIONS: usize = 1_000;

/// What `kassa bench attack` is asked.
#[derive(Clone, Debug)]
pub struct AttackOptions {
    /// Seconds of honest load measured in each phase.
    pub secs: u64,
    /// Honest transfers a second.
    pub honest_rate: u64,
    /// The node's file limit (`ulimit -n`).
    pub file_limit: u64,
    /// Block pacing of the node, milliseconds.
    pub block_ms: u64,
    /// Print JSON instead of a table.
    pub print_json: bool,
    /// Also write the results as JSON here.
    pub json: Option<std::path::PathBuf>,
}

/// The attacks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    None,
    Gapped,
    Reads,
    Idle,
    Streams,
    FeeFloor,
}

impl Attack {
    const ALL: [Attack; 6] = [
        Attack::None,
        Attack::Gapped,
        Attack::Reads,
        Attack::Idle,
        Attack::Streams,
        Attack::FeeFloor,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::None => "none",
            Attack::Gapped => "gapped",
            Attack::Reads => "reads",
            Attack::Idle => "idle",
            Attack::Streams => "streams",
            Attack::FeeFloor => "fee-floor",
        }
    }
}

/// One phase's figures.
#[derive(Debug)]
struct Outcome {
    attack: Attack,
    sent: u64,
    accepted: u64,
    included: u64,
    latencies: Vec<Duration>,
    blocks: u64,
    longest_gap: Duration,
    /// How long the honest load ran.
    window: Duration,
    refused: BTreeMap<u16, u64>,
    rss_peak_kib: u64,
    alive: bool,
    attack_requests: u64,
}

impl Outcome {
    fn share(part: u64, whole: u64) -> String {
        match whole {
            0 => "-".into(),
            _ => format!("{}.{}%", part * 100 / whole, (part * 1000 / whole) % 10),
        }
    }

    fn json(&self) -> serde_json::Value {
        let us = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        json!({
            "attack": self.attack.name(),
            "honest_sent": self.sent,
            "honest_accepted": self.accepted,
            "honest_included": self.included,
            "p50_us": us(percentile(&self.latencies, 50)),
            "p99_us": us(percentile(&self.latencies, 99)),
            "blocks": self.blocks,
            "window_us": u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX),
            "honest_refused_by_status": self.refused.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "longest_block_gap_us": u64::try_from(self.longest_gap.as_micros()).unwrap_or(u64::MAX),
            "node_rss_peak_kib": self.rss_peak_kib,
            "node_alive": self.alive,
            "attack_requests": self.attack_requests,
        })
    }
}

/// The accounts and keys of the run.
struct Keys {
    honest: Vec<SecretKey>,
    gapped: Vec<SecretKey>,
    spam: Vec<SecretKey>,
}

impl Keys {
    fn new() -> Keys {
        let set = |what: &str, n: usize| {
            (0..n)
                .map(|i| SecretKey::from_label(&format!("kassa-attack-{what}-{i}")))
                .collect()
        };
        Keys {
            honest: set("honest", HONEST_ACCOUNTS),
            gapped: set("gapped", ATTACK_ACCOUNTS),
            spam: set("spam", ATTACK_ACCOUNTS),
        }
    }
}

/// Signs transfers of this chain.
#[derive(Clone)]
struct Signer {
    chain_id: ChainId,
    genesis: Hash,
}

impl Signer {
    fn transfer(
        &self,
        from: &SecretKey,
        nonce: u64,
        fee: u64,
        to: &SecretKey,
    ) -> SignedTransaction {
        Transaction {
            chain_id: self.chain_id.clone(),
            genesis: self.genesis,
            signer: from.address(),
            nonce,
            fee,
            // What the mempool keeps at most, from the first blocks on.
            expiry_height: 1_000,
            body: Body::Transfer {
                to: to.address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        }
        .sign(from)
    }
}

/// The node under attack: a process of its own.
struct Target {
    child: Child,
    http: SocketAddr,
    log: std::path::PathBuf,
}

impl Target {
    fn start(dir: &std::path::Path, keys: &Keys, o: &AttackOptions) -> Result<(Target, Signer)> {
        let seed = SecretKey::generate().seed();
        let key = consensus::key_from_seed(seed).context("validator key")?;
        let now = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
        let funded = keys.honest.iter().chain(&keys.gapped).chain(&keys.spam);
        let g = GenesisFile {
            chain_id: CHAIN_ID.into(),
            min_fee: MIN_FEE,
            time_ms: now,
            allocations: funded
                .map(|k| Allocation {
                    address: k.address().to_bech32(),
                    amount: 1_000_000_000_000,
                })
                .collect(),
            validators: vec![hex::encode(consensus::public_key_bytes(
                &consensus::public_key(&key),
            ))],
        };
        g.save(&dir.join("genesis.json"))?;
        genesis::write_seed(&dir.join("validator.key"), &seed)?;
        let http = free_addr()?;
        let cfg = NodeConfig {
            data_dir: "data".into(),
            genesis: "genesis.json".into(),
            validator_key: Some("validator.key".into()),
            bootstrap: None,
            http,
            p2p: Some(free_addr()?),
            block_time_ms: o.block_ms,
            peers: Vec::new(),
            dev_faucet: None,
            api: kassa_api::Limits::default(),
            state_cache_mib: crate::genesis::default_state_cache_mib(),
            prune_keep: None,
            state_sync: false,
            sources: Vec::new(),
            host: None,
        };
        let config = dir.join("node.toml");
        std::fs::write(&config, toml::to_string_pretty(&cfg)?)?;
        let log = dir.join("node.log");
        let exe = std::env::current_exe()?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {} && exec \"$0\" node --config \"$1\"",
                o.file_limit
            ))
            .arg(&exe)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(dir.join("node.err"))?)
            .spawn()
            .context("starting the node")?;
        let mut target = Target { child, http, log };
        let agent = crate::client::agent();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = target.child.try_wait()? {
                bail!("the node exited at start ({status}): {}", target.tail());
            }
            if let Ok(mut r) = agent.get(format!("http://{http}/api/v1/status")).call()
                && r.status() == 200
                && r.body_mut().read_to_string().is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("the node did not start: {}", target.tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let signer = Signer {
            chain_id: ChainId::new(CHAIN_ID.to_string()).context("chain id")?,
            genesis: g.to_genesis()?.hash(),
        };
        Ok((target, signer))
    }

    fn tail(&self) -> String {
        let err = self.log.with_file_name("node.err");
        let text = std::fs::read_to_string(err).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Peak resident memory of the node so far, KiB.
    fn rss_peak_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the honest observer saw on the event stream: when each transaction and block was
/// finalized.
#[derive(Default)]
struct Seen {
    txs: HashMap<Hash, Instant>,
    blocks: Vec<Instant>,
}

/// Follows the node's event stream from 127.0.0.1 (it connects before any attack).
fn observe(http: SocketAddr, seen: Arc<Mutex<Seen>>) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(format!("http://{http}/api/v1/events")).call()?;
    let reader = std::io::BufReader::new(resp.body_mut().as_reader());
    for line in reader.lines() {
        let line = line?;
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(f) = serde_json::from_str::<kassa_api::wire::Finalized>(data) else {
            continue;
        };
        let now = Instant::now();
        let mut seen = seen.lock().expect("lock");
        seen.blocks.push(now);
        for tx in f.txs {
            let hash = match tx {
                kassa_api::wire::Tx::Pending { hash }
                | kassa_api::wire::Tx::Applied { hash, .. }
                | kassa_api::wire::Tx::Failed { hash, .. } => hash.0,
            };
            seen.txs.insert(hash, now);
        }
    }
    Ok(())
}

/// What the honest members sent: how many they tried, each accepted transaction's hash and due
/// time, and the refusals by HTTP status (0: no answer).
#[derive(Default)]
struct Sent {
    tried: u64,
    accepted: Vec<(Hash, Instant)>,
    refused: BTreeMap<u16, u64>,
}

impl Sent {
    fn add(&mut self, other: Sent) {
        self.tried += other.tried;
        self.accepted.extend(other.accepted);
        for (status, n) in other.refused {
            *self.refused.entry(status).or_insert(0) += n;
        }
    }
}

/// The honest members: `rate` transfers a second for `secs`, from `HONEST_CLIENTS` clients
/// (each its own address, 127.0.0.2 and up, on a kept-alive connection); a transaction's latency
/// starts at its due time (its place in an even stream), so time spent waiting for the node
/// counts.
async fn honest(
    http: SocketAddr,
    signer: Signer,
    keys: Arc<Vec<SecretKey>>,
    nonces: Vec<u64>,
    rate: u64,
    secs: u64,
) -> (Sent, Vec<u64>) {
    let per_client = (rate / HONEST_CLIENTS as u64).max(1);
    let total = per_client * secs;
    let step = Duration::from_micros(1_000_000 / per_client);
    let chunk = keys.len() / HONEST_CLIENTS;
    let mut tasks = Vec::new();
    for c in 0..HONEST_CLIENTS {
        let mine: Vec<usize> = (c * chunk..(c + 1) * chunk).collect();
        let mut my_nonces: Vec<u64> = mine.iter().map(|&i| nonces[i]).collect();
        let (signer, keys) = (signer.clone(), keys.clone());
        tasks.push(tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut sent = Sent {
                tried: total,
                ..Sent::default()
            };
            let mut stream = None;
            for k in 0..total {
                let due = start + step * u32::try_from(k).unwrap_or(u32::MAX);
                tokio::time::sleep_until(due).await;
                let j = usize::try_from(k).unwrap_or(0) % mine.len();
                let (from, to) = (&keys[mine[j]], &keys[mine[(j + 1) % mine.len()]]);
                let tx = signer.transfer(from, my_nonces[j], HONEST_FEE, to);
                let req = post(
                    "/api/v1/txs",
                    &json!({ "tx": hex::encode(tx.encode()) }).to_string(),
                );
                if stream.is_none() {
                    stream =
                        connect_from_address([127, 0, 0, 2 + u8::try_from(c).unwrap_or(0)], http)
                            .await
                            .ok();
                }
                let status = match stream.as_mut() {
                    Some(s) => roundtrip(s, &req).await.unwrap_or(0),
                    None => 0,
                };
                if status == 0 {
                    stream = None;
                }
                if status == 200 {
                    my_nonces[j] += 1;
                    sent.accepted.push((tx.hash(), due.into_std()));
                } else {
                    *sent.refused.entry(status).or_insert(0) += 1;
                }
            }
            (sent, mine, my_nonces)
        }));
    }
    let mut all = Sent::default();
    let mut nonces = nonces;
    for t in tasks {
        let Ok((sent, mine, my_nonces)) = t.await else {
            continue;
        };
        all.add(sent);
        for (i, n) in mine.into_iter().zip(my_nonces) {
            nonces[i] = n;
        }
    }
    (all, nonces)
}

/// A connection from attacker `i`'s loopback address, 127.0.0.`10 + i % ATTACK_IPS`.
async fn connect_from(i: usize, to: SocketAddr) -> std::io::Result<TcpStream> {
    let last = 10 + u8::try_from(i % usize::from(ATTACK_IPS)).unwrap_or(0);
    connect_from_address([127, 0, 0, last], to).await
}

async fn connect_from_address(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// One request on a kept-alive connection: its status, the body read (by Content-Length).
async fn roundtrip(stream: &mut TcpStream, request: &[u8]) -> std::io::Result<u16> {
    stream.write_all(request).await?;
    let mut head = Vec::with_capacity(512);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 || head.len() > 16 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(status)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: kassa\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: kassa\r\n\r\n").into_bytes()
}

/// Sends `requests` round and round from attacker `i`'s address until `stop`, reconnecting
/// when the node closes the connection; counts the requests answered.
async fn hammer(
    i: usize,
    to: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    n: Arc<AtomicU64>,
) {
    let mut k = i;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = connect_from(i, to).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        while !stop.load(Ordering::Relaxed) {
            let req = &requests[k % requests.len()];
            k += 1;
            match roundtrip(&mut stream, req).await {
                Ok(_) => {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => break,
            }
        }
    }
}

/// The gapped flood's requests: every attacking account's nonces 1–255, one batch each (nonce
/// 0 is never sent). Signed before any attack starts, so that a short phase floods from its
/// first moment instead of spending it signing.
fn gapped_batches(signer: &Signer, keys: &Keys) -> Arc<Vec<Vec<u8>>> {
    let batches = keys
        .gapped
        .iter()
        .map(|k| {
            let txs: Vec<String> = (1..=255)
                .map(|nonce| hex::encode(signer.transfer(k, nonce, MIN_FEE, k).encode()))
                .collect();
            post("/api/v1/txs/batch", &json!({ "txs": txs }).to_string())
        })
        .collect();
    Arc::new(batches)
}

/// Runs `attack` until `stop`; the requests it got answered.
async fn run_attack(
    attack: Attack,
    to: SocketAddr,
    signer: Signer,
    keys: Arc<Keys>,
    gapped: Arc<Vec<Vec<u8>>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let n = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    match attack {
        Attack::None => {}
        Attack::Gapped => {
            let batches = gapped;
            for i in 0..usize::from(ATTACK_IPS) {
                tasks.spawn(hammer(i, to, batches.clone(), stop.clone(), n.clone()));
            }
        }
        Attack::Reads => {
            let reads = Arc::new(vec![
                get("/api/v1/blocks?limit=100"),
                get("/api/v1/blocks/1/finality"),
                get(&format!(
                    "/api/v1/proofs/{}",
                    hex::encode(kassa_state::keys::account(&keys.honest[0].address()))
                )),
            ]);
            for i in 0..usize::from(ATTACK_IPS) * 4 {
                tasks.spawn(hammer(i, to, reads.clone(), stop.clone(), n.clone()));
            }
        }
        Attack::Idle | Attack::Streams => {
            let (count, first) = if attack == Attack::Idle {
                (
                    IDLE_CONNECTIONS,
                    &b"GET /api/v1/status HTTP/1.1\r\nHost: kas"[..],
                )
            } else {
                (
                    STREAM_CONNECTIONS,
                    &b"GET /api/v1/events HTTP/1.1\r\nHost: kassa\r\n\r\n"[..],
                )
            };
            for i in 0..count {
                let stop = stop.clone();
                let n = n.clone();
                tasks.spawn(async move {
                    let Ok(mut stream) = connect_from(i, to).await else {
                        return;
                    };
                    if stream.write_all(first).await.is_ok() {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    // Idle ones trickle a byte now and then; streams are never read.
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        if attack == Attack::Idle && stream.write_all(b"x").await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
        Attack::FeeFloor => {
            for i in 0..keys.spam.len() {
                let (stop, n, signer, keys) =
                    (stop.clone(), n.clone(), signer.clone(), keys.clone());
                tasks.spawn(async move {
                    let k = &keys.spam[i];
                    let mut nonce = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) = connect_from(i, to).await else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        while !stop.load(Ordering::Relaxed) {
                            let txs: Vec<String> = (nonce..nonce + 50)
                                .map(|x| hex::encode(signer.transfer(k, x, MIN_FEE, k).encode()))
                                .collect();
                            let req = post("/api/v1/txs/batch", &json!({ "txs": txs }).to_string());
                            match roundtrip(&mut stream, &req).await {
                                Ok(200) => {
                                    nonce += 50;
                                    n.fetch_add(1, Ordering::Relaxed);
                                }
                                // Rate limited or full: a little later.
                                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                                Err(_) => break,
                            }
                        }
                    }
                });
            }
        }
    }
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    n.load(Ordering::Relaxed)
}

/// Runs every phase against one node and prints the table.
pub fn bench_attack(o: &AttackOptions) -> Result<()> {
    // The attackers hold thousands of sockets in this process.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let m = machine();
    eprintln!(
        "kassa bench attack — {} cores, {}, {} build; the node under a file limit of {}, {} honest \
         tx/s for {} s per attack",
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["profile"].as_str().unwrap_or("?"),
        o.file_limit,
        o.honest_rate,
        o.secs
    );
    let dir = tempfile::tempdir()?;
    let keys = Arc::new(Keys::new());
    let (mut target, signer) = Target::start(dir.path(), &keys, o)?;
    eprintln!(
        "the node: http://{}/api/v1/status, log in {}",
        target.http,
        target.log.display()
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    {
        let seen = seen.clone();
        let http = target.http;
        std::thread::spawn(move || observe(http, seen));
    }
    let attackers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // The honest members run on a runtime of their own, so the attackers' tasks never delay
    // them here.
    let members = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let honest_keys = Arc::new(keys.honest.clone());
    let mut nonces = vec![0u64; HONEST_ACCOUNTS];
    let mut outcomes = Vec::new();
    let gapped = gapped_batches(&signer, &keys);
    for attack in Attack::ALL {
        eprintln!("attack: {}…", attack.name());
        let stop = Arc::new(AtomicBool::new(false));
        let running = attackers.spawn(run_attack(
            attack,
            target.http,
            signer.clone(),
            keys.clone(),
            gapped.clone(),
            stop.clone(),
        ));
        std::thread::sleep(Duration::from_secs(1));
        let blocks_before = seen.lock().expect("lock").blocks.len();
        let started = Instant::now();
        let (sent, next) = members.block_on(honest(
            target.http,
            signer.clone(),
            honest_keys.clone(),
            nonces.clone(),
            o.honest_rate,
            o.secs,
        ));
        nonces = next;
        let window = started.elapsed();
        let blocks_after = seen.lock().expect("lock").blocks.len();
        let accepted = &sent.accepted;
        stop.store(true, Ordering::Relaxed);
        let attack_requests = attackers.block_on(running).unwrap_or(0);
        // Time for the last honest transactions to be finalized.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let seen = seen.lock().expect("lock");
            if accepted.iter().all(|(h, _)| seen.txs.contains_key(h)) {
                break;
            }
            drop(seen);
            std::thread::sleep(Duration::from_millis(100));
        }
        let seen_now = seen.lock().expect("lock");
        let latencies: Vec<Duration> = accepted
            .iter()
            .filter_map(|(h, due)| {
                seen_now
                    .txs
                    .get(h)
                    .map(|t| t.saturating_duration_since(*due))
            })
            .collect();
        let blocks = &seen_now.blocks[blocks_before.min(blocks_after)..blocks_after];
        let longest_gap = blocks
            .windows(2)
            .map(|w| w[1].saturating_duration_since(w[0]))
            .max()
            .unwrap_or_default();
        outcomes.push(Outcome {
            attack,
            sent: sent.tried,
            accepted: accepted.len() as u64,
            included: latencies.len() as u64,
            latencies,
            blocks: (blocks_after - blocks_before) as u64,
            longest_gap,
            window,
            refused: sent.refused.clone(),
            rss_peak_kib: target.rss_peak_kib(),
            alive: target.alive(),
            attack_requests,
        });
        drop(seen_now);
        if !target.alive() {
            eprintln!("the node exited: {}", target.tail());
            break;
        }
    }
    let out = json!({
        "machine": m,
        "options": {"secs": o.secs, "honest_rate": o.honest_rate, "file_limit": o.file_limit, "block_ms": o.block_ms},
        "results": outcomes.iter().map(Outcome::json).collect::<Vec<_>>(),
    });
    if o.print_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        println!(
            "{:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9}",
            "attack",
            "honest",
            "accepted",
            "included",
            "p50 ms",
            "p99 ms",
            "blocks/s",
            "gap ms",
            "rss MiB",
            "alive",
            "attack rq"
        );
        for r in &outcomes {
            let refused: Vec<String> = r
                .refused
                .iter()
                .map(|(status, n)| match status {
                    0 => format!("{n} unanswered"),
                    s => format!("{n}×{s}"),
                })
                .collect();
            let window_ms = u64::try_from(r.window.as_millis())
                .unwrap_or(u64::MAX)
                .max(1);
            println!(
                "{:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>10}  {}",
                r.attack.name(),
                r.sent,
                Outcome::share(r.accepted, r.sent),
                Outcome::share(r.included, r.accepted),
                percentile(&r.latencies, 50).map_or("-".into(), ms),
                percentile(&r.latencies, 99).map_or("-".into(), ms),
                r.blocks * 1000 / window_ms,
                ms(r.longest_gap),
                r.rss_peak_kib / 1024,
                if r.alive { "yes" } else { "NO" },
                r.attack_requests,
                refused.join(", "),
            );
        }
    }
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if outcomes.iter().any(|r| !r.alive) {
        bail!("the node exited under attack");
    }
    Ok(())
}
