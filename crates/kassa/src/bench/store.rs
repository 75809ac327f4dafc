//! `kassa bench store`: Kassa's authenticated state store (a Jellyfish Merkle tree over redb,
//! `kassa_db`) side by side with Commonware's `qmdb::current` (an operation log authenticated
//! by a Merkle mountain range, with a bitmap of the operations still current), on the same
//! work: a state of `--keys` 32-byte keys with 40–80-byte values, then blocks of `--batch`
//! updates of random keys, each made durable and given its new root before the next, then
//! random reads and proofs of current values.
//!
//! Each store runs in a process of its own (this command again, with `--engine`), so that the
//! resident memory each reports is its own.

use super::*;
use anyhow::{Result, bail};
use kassa_state::testkit::SplitMix;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The stores compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// `kassa_db`: a Jellyfish Merkle tree over redb.
    Jmt,
    /// Commonware's `qmdb::current` (ordered keys, variable-size values) as `kassa_db::qmdb`
    /// runs it.
    Qmdb,
}

/// What `kassa bench store` measures.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub keys: u64,
    pub batch: u64,
    pub batches: u64,
    /// Run this store only, in this process (the parent runs each in a child).
    pub engine: Option<Engine>,
}

/// Reads and proofs timed after the updates.
const READS: u64 = 10_000;
const PROOFS: u64 = 1_000;

/// The `i`th key of the state.
fn key(i: u64) -> [u8; 32] {
    kassa_types::Hash::of(&[b"kassa-bench-store", &i.to_be_bytes()]).0
}

/// A value of 40 to 80 bytes (an account or membership record is in that range).
fn value(rng: &mut SplitMix) -> Vec<u8> {
    let len = 40 + rng.idx(41);
    (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect()
}

/// Wall-clock and CPU time of a measured step.
#[derive(Clone, Copy, Default)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

/// A measured step under way.
struct Clock(Instant, Duration);

impl Clock {
    fn start() -> Clock {
        Clock(Instant::now(), cpu_time())
    }

    fn stop(self) -> Took {
        Took {
            wall: self.0.elapsed(),
            cpu: cpu_time().saturating_sub(self.1),
        }
    }
}

/// The measured figures of one store.
struct Figures {
    load: Took,
    /// Per batch: updates applied, root computed, durable.
    batches: Vec<Took>,
    /// Per batch: the root computed (the rest of the batch's time is the durable write).
    roots: Vec<Duration>,
    reads: Took,
    proofs: Took,
    disk_bytes: u64,
}

fn run_jmt(o: &StoreOptions, dir: &Path) -> Result<Figures> {
    use kassa_db::{Db, verify_proof};
    use kassa_state::Store as _;
    let db = Db::open(&dir.join("state.redb"))?;
    let mut rng = SplitMix(42);
    let clock = Clock::start();
    let writes = (0..o.keys)
        .map(|i| (key(i).to_vec(), Some(value(&mut rng))))
        .collect();
    let pending = db.prepare(0, writes)?;
    db.commit_block(&pending, None, &[], 0)?;
    let load = clock.stop();
    let mut batches = Vec::new();
    let mut roots = Vec::new();
    for height in 1..=o.batches {
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0..o.batch)
            .map(|_| (key(rng.below(o.keys)).to_vec(), Some(value(&mut rng))))
            .collect();
        let clock = Clock::start();
        let pending = db.prepare(height, writes)?;
        roots.push(clock.0.elapsed());
        db.commit_block(&pending, None, &[], 0)?;
        batches.push(clock.stop());
    }
    let clock = Clock::start();
    let reader = db.reader()?;
    for _ in 0..READS {
        reader
            .get(&key(rng.below(o.keys)))
            .context("a stored key is read")?;
    }
    let reads = clock.stop();
    let clock = Clock::start();
    let (root, height) = (db.root_at(o.batches)?, o.batches);
    for _ in 0..PROOFS {
        let k = key(rng.below(o.keys));
        let (v, proof) = db.prove(&k, height)?;
        if !verify_proof(&root, &k, v.as_deref(), &proof) {
            bail!("a proof of the JMT store does not verify");
        }
    }
    let proofs = clock.stop();
    Ok(Figures {
        load,
        batches,
        roots,
        reads,
        proofs,
        disk_bytes: dir_bytes(dir)?,
    })
}

/// `kassa_db::qmdb`: `qmdb::current` with ordered keys, behind the synchronous interface
/// `kassa_db` uses (its own thread and tokio runtime, a 128 MiB page cache).
fn run_qmdb(o: &StoreOptions, dir: &Path) -> Result<Figures> {
    use kassa_db::qmdb::{Commitment, verify};
    let c = Commitment::open(dir, 128)?;
    let mut rng = SplitMix(42);
    let clock = Clock::start();
    // Each batch is a height, as each block's writes are.
    let mut height = 0;
    let mut next = 0;
    while next < o.keys {
        let end = o.keys.min(next + 100_000);
        let writes: Vec<_> = (next..end)
            .map(|i| (key(i).to_vec(), Some(value(&mut rng))))
            .collect();
        let batch = c.prepare(None, height, writes)?;
        c.commit(batch)?;
        height += 1;
        next = end;
    }
    let load = clock.stop();
    let mut batches = Vec::new();
    let mut roots = Vec::new();
    for _ in 0..o.batches {
        let writes: Vec<_> = (0..o.batch)
            .map(|_| (key(rng.below(o.keys)).to_vec(), Some(value(&mut rng))))
            .collect();
        let clock = Clock::start();
        let batch = c.prepare(None, height, writes)?;
        height += 1;
        roots.push(clock.0.elapsed());
        c.commit(batch)?;
        batches.push(clock.stop());
    }
    let clock = Clock::start();
    for _ in 0..READS {
        c.get(&key(rng.below(o.keys)))?
            .context("a stored key is read")?;
    }
    let reads = clock.stop();
    let clock = Clock::start();
    for _ in 0..PROOFS {
        let k = key(rng.below(o.keys));
        let (root, v, proof) = c.prove(&k)?;
        if !verify(&root, &k, v.as_deref(), &proof) {
            bail!("a proof of qmdb does not verify");
        }
    }
    let proofs = clock.stop();
    drop(c);
    Ok(Figures {
        load,
        batches,
        roots,
        reads,
        proofs,
        disk_bytes: dir_bytes(dir)?,
    })
}

/// One store, in this process: its rows.
fn measure(o: &StoreOptions, engine: Engine) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir_in(std::env::temp_dir())?;
    let f = match engine {
        Engine::Jmt => run_jmt(o, dir.path())?,
        Engine::Qmdb => run_qmdb(o, dir.path())?,
    };
    let name = match engine {
        Engine::Jmt => "jmt + redb",
        Engine::Qmdb => "qmdb current",
    };
    let rss = rss_kib();
    let per_key = format!(
        "{} B disk/key, {} B RSS/key",
        f.disk_bytes / o.keys,
        rss * 1024 / o.keys
    );
    let update = Took {
        wall: f.batches.iter().map(|t| t.wall).sum(),
        cpu: f.batches.iter().map(|t| t.cpu).sum(),
    };
    Ok(vec![
        Row {
            name: format!("store {name}: load"),
            txs: o.keys,
            wall: f.load.wall,
            latencies: Vec::new(),
            cpu: f.load.cpu,
            rss_kib: rss,
            disk_bytes: Some(f.disk_bytes),
            note: "keys written in one go, durable".into(),
        },
        Row {
            name: format!("store {name}: update"),
            txs: o.batch * o.batches,
            wall: update.wall,
            latencies: f.batches.iter().map(|t| t.wall).collect(),
            cpu: update.cpu,
            rss_kib: rss,
            disk_bytes: Some(f.disk_bytes),
            note: format!(
                "{} updates a batch, root (p50 {} ms) + durable; {per_key}",
                o.batch,
                percentile(&f.roots, 50).map_or(0, |d| d.as_millis())
            ),
        },
        Row {
            name: format!("store {name}: read"),
            txs: READS,
            wall: f.reads.wall,
            latencies: Vec::new(),
            cpu: f.reads.cpu,
            rss_kib: rss,
            disk_bytes: None,
            note: "random keys".into(),
        },
        Row {
            name: format!("store {name}: prove"),
            txs: PROOFS,
            wall: f.proofs.wall,
            latencies: Vec::new(),
            cpu: f.proofs.cpu,
            rss_kib: rss,
            disk_bytes: None,
            note: "read, prove the current value, verify".into(),
        },
    ])
}

/// Both stores, each in a child process; or, with `engine`, the one in this process.
pub fn bench_store(o: &StoreOptions) -> Result<Vec<Row>> {
    if let Some(engine) = o.engine {
        return measure(o, engine);
    }
    let mut rows = Vec::new();
    for engine in [Engine::Jmt, Engine::Qmdb] {
        let name = format!("{engine:?}").to_lowercase();
        eprintln!("store: {name}, {} keys, in a process of its own…", o.keys);
        let args = [
            "store".to_string(),
            "--engine".into(),
            name,
            "--keys".into(),
            o.keys.to_string(),
            "--batch".into(),
            o.batch.to_string(),
            "--batches".into(),
            o.batches.to_string(),
        ];
        rows.extend(rows_of_child(&args)?);
    }
    Ok(rows)
}
