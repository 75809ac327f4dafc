//! `kassa bench store`: Kassa's state store (`kassa_db`: the state table in redb, read by
//! execution, and its commitment in Commonware's `qmdb::current`, an operation log authenticated
//! by a Merkle mountain range with a bitmap of the operations still current) side by side with
//! the commitment alone, on the same work: a state of `--keys` 32-byte keys with 40–80-byte values, then blocks of `--batch`
//! updates of random keys, each made durable and given its new root before the next, then
//! random reads and proofs of current values.
//!
//! Each store runs in a process of its own (this command again, with `--engine`), so that the
//! resident memory each reports is its own.

use super::*;
use anyhow::{Context as _, Result, bail};
use kassa_state::testkit::SplitMix;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The stores compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// `kassa_db`: the redb state table and the qmdb commitment, committed together.
    Kassa,
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

/// A block's worth of writes: state key → new value.
type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A read of one key (`None`: absent), or the check of one key's proof (`true`: it verifies).
type ReadFn<'a> = Box<dyn Fn(&[u8]) -> Result<Option<Vec<u8>>> + 'a>;
type ProveFn<'a> = Box<dyn Fn(&[u8]) -> Result<bool> + 'a>;

/// What `kassa bench store` asks of a store; [`run`] does the same work on each and times it the
/// same way.
trait Measured {
    type Prepared;
    /// Writes keys `0..keys` (each with a value from `rng`), durably.
    fn load(&mut self, keys: u64, rng: &mut SplitMix) -> Result<()>;
    /// The root of the next height's `writes`, not yet durable.
    fn prepare(&mut self, writes: Writes) -> Result<Self::Prepared>;
    /// Makes a prepared height durable.
    fn commit(&mut self, prepared: Self::Prepared) -> Result<()>;
    /// Reads committed values (from one snapshot, where the store has them).
    fn reader(&self) -> Result<ReadFn<'_>>;
    /// Proves a key's committed value (or absence) and checks the proof.
    fn prover(&self) -> Result<ProveFn<'_>>;
}

/// `kassa_db`: the state table and the commitment, the whole state loaded as height 0.
struct Kassa {
    db: kassa_db::Db,
    height: u64,
}

impl Measured for Kassa {
    type Prepared = kassa_db::PendingState;

    fn load(&mut self, keys: u64, rng: &mut SplitMix) -> Result<()> {
        let writes = (0..keys)
            .map(|i| (key(i).to_vec(), Some(value(rng))))
            .collect();
        let pending = self.prepare(writes)?;
        self.commit(pending)
    }

    fn prepare(&mut self, writes: Writes) -> Result<Self::Prepared> {
        let pending = self.db.prepare(self.height, writes)?;
        self.height += 1;
        Ok(pending)
    }

    fn commit(&mut self, prepared: Self::Prepared) -> Result<()> {
        self.db.commit_block(&prepared, None, &[], 0)?;
        Ok(())
    }

    fn reader(&self) -> Result<ReadFn<'_>> {
        use kassa_state::Store as _;
        let reader = self.db.reader()?;
        Ok(Box::new(move |k| Ok(reader.get(k))))
    }

    fn prover(&self) -> Result<ProveFn<'_>> {
        let root = self.db.head()?.context("a committed state")?.state_root;
        Ok(Box::new(move |k| {
            let p = self.db.prove(k)?;
            Ok(kassa_db::verify(&root, k, p.value.as_deref(), &p.proof))
        }))
    }
}

/// `kassa_db::qmdb`: `qmdb::current` with ordered keys, behind the synchronous interface
/// `kassa_db` uses (its own thread and tokio runtime, a 128 MiB page cache); each batch is a
/// height, as each block's writes are.
struct Qmdb {
    c: kassa_db::qmdb::Commitment,
    height: u64,
}

impl Measured for Qmdb {
    type Prepared = kassa_db::qmdb::Prepared;

    fn load(&mut self, keys: u64, rng: &mut SplitMix) -> Result<()> {
        let mut next = 0;
        while next < keys {
            let end = keys.min(next + 100_000);
            let writes = (next..end)
                .map(|i| (key(i).to_vec(), Some(value(rng))))
                .collect();
            let batch = self.prepare(writes)?;
            self.commit(batch)?;
            next = end;
        }
        Ok(())
    }

    fn prepare(&mut self, writes: Writes) -> Result<Self::Prepared> {
        let batch = self.c.prepare(None, self.height, writes)?;
        self.height += 1;
        Ok(batch)
    }

    fn commit(&mut self, prepared: Self::Prepared) -> Result<()> {
        let committed = self.c.commit(&prepared, true)?;
        self.c.prune(committed.start)?;
        Ok(())
    }

    fn reader(&self) -> Result<ReadFn<'_>> {
        Ok(Box::new(|k| Ok(self.c.get(k)?)))
    }

    fn prover(&self) -> Result<ProveFn<'_>> {
        Ok(Box::new(|k| {
            let (root, v, proof) = self.c.prove(k)?;
            Ok(kassa_db::qmdb::verify(&root, k, v.as_deref(), &proof))
        }))
    }
}

/// Loads the state, then updates, reads and proves random keys, each step timed.
fn run(o: &StoreOptions, store: &mut impl Measured) -> Result<Figures> {
    let mut rng = SplitMix(42);
    let clock = Clock::start();
    store.load(o.keys, &mut rng)?;
    let load = clock.stop();
    let mut batches = Vec::new();
    let mut roots = Vec::new();
    for _ in 0..o.batches {
        let writes: Writes = (0..o.batch)
            .map(|_| (key(rng.below(o.keys)).to_vec(), Some(value(&mut rng))))
            .collect();
        let clock = Clock::start();
        let prepared = store.prepare(writes)?;
        roots.push(clock.0.elapsed());
        store.commit(prepared)?;
        batches.push(clock.stop());
    }
    let clock = Clock::start();
    let read = store.reader()?;
    for _ in 0..READS {
        read(&key(rng.below(o.keys)))?.context("a stored key is read")?;
    }
    let reads = clock.stop();
    let clock = Clock::start();
    let prove = store.prover()?;
    for _ in 0..PROOFS {
        if !prove(&key(rng.below(o.keys)))? {
            bail!("a proof does not verify");
        }
    }
    let proofs = clock.stop();
    Ok(Figures {
        load,
        batches,
        roots,
        reads,
        proofs,
        disk_bytes: 0,
    })
}

/// One store, in this process: its rows.
fn measure(o: &StoreOptions, engine: Engine) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir_in(std::env::temp_dir())?;
    let mut f = match engine {
        Engine::Kassa => run(
            o,
            &mut Kassa {
                db: kassa_db::Db::open(&dir.path().join("state.redb"))?,
                height: 0,
            },
        )?,
        Engine::Qmdb => run(
            o,
            &mut Qmdb {
                c: kassa_db::qmdb::Commitment::open(dir.path(), 128)?,
                height: 0,
            },
        )?,
    };
    // Measured once each store is closed (qmdb's thread syncs as it stops).
    f.disk_bytes = dir_bytes(dir.path())?;
    let name = match engine {
        Engine::Kassa => "kassa_db (redb + qmdb)",
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
    for engine in [Engine::Kassa, Engine::Qmdb] {
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
