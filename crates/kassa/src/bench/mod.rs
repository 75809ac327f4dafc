//! `kassa bench`: measures the chain the way its users feel it, on realistic signed Kassa
//! transactions generated before the clock starts.
//!
//! - `state`: the application alone over the real storage (redb and the qmdb commitment):
//!   mempool admission (batch signature verification, account checks), then block building,
//!   execution and the durable commit, each block executed while its parent is written, as a
//!   validator does.
//! - `node`: one in-process `kassa node` (the real consensus engine with one validator): submit,
//!   relay, propose, verify, finalize, commit; submit-to-finalized latency per transaction.
//! - `network`: four validators on loopback in this process (authenticated p2p between them),
//!   each account's transactions submitted to one of them; latency measured at validator 0.
//! - `scale`: finalizing an approved request in societies of 10, 10k and 1M members — time and
//!   state writes — and the resident memory the members take.
//! - `curve`: `state` again with 1k, 16k, 256k and 1M accounts in the state (`--preload`), each
//!   block touching ~10k distinct accounts, each point in a process of its own so that its
//!   memory is its own: throughput, resident memory and disk per account.
//! - `attack` (not part of `all`): a node process attacked over its API while honest members
//!   send transfers ([`attack`]).
//! - `store` (not part of `all`): the authenticated state store alone against Commonware's
//!   `qmdb::current` on the same million keys ([`store`]).
//! - `sync` (not part of `all`): a new node restoring a large state over a node's API on
//!   loopback, every chunk checked against the state root ([`sync`]).
//!
//! No floating point (the workspace denies it): rates and percentiles are integer arithmetic.
//!
//! Files: `mod.rs` (options, the result table, the run), `workload.rs` (the signed transactions
//! every benchmark submits), `state.rs`, `curve.rs`, `nodes.rs` (node and network), `scale.rs`,
//! `attack.rs`, `store.rs`, `sync.rs`.

mod attack;
mod curve;
mod load;
mod store;
pub use curve::DEFAULT_SIZES;
pub use store::{Engine, StoreOptions};
mod nodes;
mod scale;
mod state;
mod sync;
mod workload;

use nodes::bench_nodes_under_loads;
use scale::bench_scale;
use state::bench_state;

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

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
    /// `state` at 1k, 16k, 256k and 1M accounts.
    Curve,
    /// The authenticated state store alone against Commonware's `qmdb` (not part of `all`).
    Store,
    /// State sync: a new node restoring the state (`--accounts` members of a society and
    /// `--preload` further accounts) from a node's API on loopback (not part of `all`).
    Sync,
    /// All of the above (not `attack`).
    All,
    Attack,
}

/// `kassa bench` options.
#[derive(Clone, Debug)]
pub struct Options {
    pub which: Which,
    pub txs: usize,
    pub accounts: usize,
    /// Funded accounts in the genesis besides the signing ones: they receive transfers and
    /// make the state large.
    pub preload: usize,
    /// The state database's page cache, MiB.
    pub cache_mib: usize,
    /// Keep only the newest this many heights of history (`None`: an archive).
    pub prune_keep: Option<u64>,
    /// `curve`: the state sizes measured, accounts.
    pub sizes: Vec<usize>,
    pub mix: Load,
    pub block_ms: u64,
    /// Offered load of the node and network benchmarks, transactions per second; 0 submits as
    /// fast as the node admits (throughput at saturation, where latency is mostly queueing).
    pub rate: u64,
    /// Client threads submitting over the nodes' HTTP APIs, one transaction per request; 0
    /// submits in-process in batches.
    pub http_clients: usize,
    /// Transactions per HTTP request: 1 posts each to `/api/v1/txs`, more post batches to
    /// `/api/v1/txs/batch`.
    pub http_batch: usize,
    /// Also write the results as JSON to this file.
    pub json: Option<PathBuf>,
    /// Print the results as JSON instead of a table (progress goes to standard error).
    pub print_json: bool,
    /// `attack`: seconds of honest load measured under each attack.
    pub attack_secs: u64,
    /// `attack`: honest transfers a second.
    pub honest_rate: u64,
    /// `attack`: the node's file limit.
    pub file_limit: u64,
    /// `store`: what it measures.
    pub store: StoreOptions,
}

/// One line of the results table.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub(super) name: String,
    pub(super) txs: u64,
    pub(super) wall: Duration,
    /// Latencies (per transaction, or per block for `state`).
    pub(super) latencies: Vec<Duration>,
    pub(super) cpu: Duration,
    pub(super) rss_kib: u64,
    /// The database's size on disk after the run, when measured.
    pub(super) disk_bytes: Option<u64>,
    pub(super) note: String,
}

impl Row {
    fn tps(&self) -> u64 {
        let us = u64::try_from(self.wall.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.txs.saturating_mul(1_000_000) / us
    }

    fn percentile(&self, p: usize) -> Option<Duration> {
        percentile(&self.latencies, p)
    }

    fn cpu_percent(&self) -> u64 {
        let wall = u64::try_from(self.wall.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        u64::try_from(self.cpu.as_micros()).unwrap_or(u64::MAX) * 100 / wall
    }

    /// A row back from [`Row::json`] (printed by a child process).
    fn from_json(r: &Value) -> Result<Row> {
        let num = |k: &str| r[k].as_u64().with_context(|| format!("{k} of a result"));
        let wall_us = num("wall_us")?;
        let latencies = r["latencies_us"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_u64)
                    .map(Duration::from_micros)
            })
            .into_iter()
            .flatten()
            .collect();
        Ok(Row {
            name: r["name"].as_str().context("name of a result")?.to_string(),
            txs: num("txs")?,
            wall: Duration::from_micros(wall_us),
            latencies,
            cpu: Duration::from_micros(wall_us * num("cpu_percent")? / 100),
            rss_kib: num("rss_kib")?,
            disk_bytes: r["disk_bytes"].as_u64(),
            note: r["note"].as_str().unwrap_or_default().to_string(),
        })
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
            "disk_bytes": self.disk_bytes,
            "note": self.note,
            // Per-block latencies (a few per run) in full; per-transaction ones are too many.
            "latencies_us": (self.latencies.len() <= 1_000).then(|| {
                self.latencies.iter().map(|d| us(Some(*d))).collect::<Vec<_>>()
            }),
        })
    }
}

/// The `p`th percentile of `latencies`, if there are any.
pub(super) fn percentile(latencies: &[Duration], p: usize) -> Option<Duration> {
    let mut v = latencies.to_vec();
    v.sort();
    (!v.is_empty()).then(|| v[(v.len() * p / 100).min(v.len() - 1)])
}

/// Milliseconds with one decimal, from a duration (integer arithmetic).
pub(super) fn ms(d: Duration) -> String {
    let us = d.as_micros();
    format!("{}.{}", us / 1000, (us % 1000) / 100)
}

/// The machine, as the results should state it.
pub(super) fn machine() -> Value {
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
pub(super) fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Runs `kassa bench ARGS --json` in a process of its own (so that the memory it reports is its
/// own) and returns its rows.
pub(super) fn rows_of_child(args: &[String]) -> Result<Vec<Row>> {
    let exe = std::env::current_exe().context("the kassa executable")?;
    let out = std::process::Command::new(exe)
        .arg("bench")
        .args(args)
        .arg("--json")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running kassa bench")?;
    ensure!(
        out.status.success(),
        "kassa bench {} failed: {}",
        args.join(" "),
        out.status
    );
    let v: Value = serde_json::from_slice(&out.stdout).context("its JSON")?;
    v["results"]
        .as_array()
        .context("its results")?
        .iter()
        .map(Row::from_json)
        .collect()
}

/// Bytes of every file under `dir` (a database's size on disk).
pub(super) fn dir_bytes(dir: &std::path::Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Resident memory of this process, KiB.
pub(super) fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// The most resident memory this process has had, KiB.
pub(super) fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Bytes this process has handed to `write` and `pwrite` so far (0 where `/proc` does not say).
pub(super) fn written_bytes() -> u64 {
    proc_field("/proc/self/io", "wchar:")
}

/// A size for people: bytes, KiB, or MiB with a tenth.
pub(super) fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => {
            let tenths = b.saturating_mul(10) >> 20;
            format!("{}.{} MiB", tenths / 10, tenths % 10)
        }
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// A memory figure of `/proc/self/status`, KiB.
fn status_kib(field: &str) -> u64 {
    proc_field("/proc/self/status", field)
}

/// The number after `field` on its line of the `/proc` file `path`, or 0.
fn proc_field(path: &str, field: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the chosen benchmarks and prints the table (and writes JSON if asked).
pub fn run(opts: &Options) -> Result<()> {
    if opts.which == Which::Attack {
        return attack::bench_attack(&attack::AttackOptions {
            secs: opts.attack_secs,
            honest_rate: opts.honest_rate,
            file_limit: opts.file_limit,
            block_ms: opts.block_ms,
            print_json: opts.print_json,
            json: opts.json.clone(),
        });
    }
    if opts.which == Which::Store {
        ensure!(
            opts.store.keys >= 1 && opts.store.batch >= 1,
            "at least one key and one update"
        );
        let rows = store::bench_store(&opts.store)?;
        return report(opts, &machine(), &rows);
    }
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
    if opts.which == Which::Sync {
        rows.extend(sync::bench_sync(opts)?);
    }
    if all || opts.which == Which::Curve {
        rows.extend(curve::bench_curve(opts)?);
    }
    if all || opts.which == Which::Node {
        rows.extend(bench_nodes_under_loads(opts, 1)?);
    }
    if all || opts.which == Which::Network {
        rows.extend(bench_nodes_under_loads(opts, 4)?);
    }
    rows.extend(scale);
    report(opts, &m, &rows)
}

/// Prints the table (or the JSON) and writes the JSON file if asked.
fn report(opts: &Options, m: &Value, rows: &[Row]) -> Result<()> {
    let out = json!({
        "machine": m,
        "options": {"txs": opts.txs, "accounts": opts.accounts, "preload": opts.preload, "cache_mib": opts.cache_mib, "prune_keep": opts.prune_keep, "mix": format!("{:?}", opts.mix), "block_ms": opts.block_ms, "rate": opts.rate, "http_clients": opts.http_clients, "http_batch": opts.http_batch},
        "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
    });
    if opts.print_json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!();
        println!(
            "{:<40} {:>9} {:>10} {:>9} {:>9} {:>6} {:>9}  note",
            "workload", "txs", "tx/s", "p50 ms", "p99 ms", "cpu%", "rss MiB"
        );
        for r in rows {
            println!(
                "{:<40} {:>9} {:>10} {:>9} {:>9} {:>6} {:>9}  {}",
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
