//! The state's commitment as Commonware's `qmdb::current` keeps it (ordered keys, variable-size
//! values): a log of operations authenticated by a Merkle mountain range, with the bitmap of the
//! operations still current grafted onto it, so that a proof shows a value is its key's current
//! one and, the keys being ordered, that a key has none. A block's writes are one batch, appended
//! rather than rewriting a tree path per key: at a million keys a block's root and durable write
//! cost about a quarter of a Merkle tree's over redb (docs/performance.md, "The store side by
//! side").
//!
//! [`Commitment`] runs the database on a thread of its own (Commonware's tokio runtime over a
//! directory) behind a synchronous interface, so that the rest of `kassa_db` stays synchronous.
//! A block's batch is merkleized on its parent's batch before the parent is durable
//! ([`Commitment::prepare`] with a parent), as a validator executes a block while its parent is
//! written; [`Commitment::commit`] applies a batch whose parent is the committed state and makes
//! it durable.
//!
//! Keys are the SHA-256 of the state key; each value is stored with its state key
//! ([`leaf_row`]), so the state can be served from the log.

use commonware_codec::Decode as _;
use commonware_cryptography::{Hasher as _, Sha256, sha256::Digest};
use commonware_parallel::Rayon;
use commonware_runtime::buffer::paged::{CacheRef, page_size};
use commonware_runtime::tokio::{Config as TokioConfig, Context, Runner};
use commonware_runtime::{BLOB_PAGE_SIZE, Runner as _, Strategizer as _, Supervisor as _};
use commonware_storage::journal::contiguous::variable::Config as LogConfig;
use commonware_storage::merkle::{full::Config as MerkleConfig, mmr::Family as Mmr};
use commonware_storage::qmdb::current::VariableConfig;
use commonware_storage::qmdb::current::ordered::proof::constant::{ExclusionProof, KeyValueProof};
use commonware_storage::qmdb::current::ordered::variable::Db;
use commonware_storage::translator::EightCap;
use commonware_utils::{NZU64, NZUsize};
use futures::channel::mpsc;
use kassa_types::Hash;
use std::num::NonZeroUsize;
use std::path::Path;

/// Bytes of the bitmap of current operations per chunk (256 operations), the unit grafted onto
/// the operations' Merkle range.
const CHUNK: usize = 32;
/// Largest value stored (a state key and its value, [`leaf_row`]).
pub const VALUE_MAX: usize = 64 * 1024;
/// Most digests a proof may carry when decoded (a mountain range over 2^64 operations needs
/// fewer than 130).
const PROOF_DIGESTS_MAX: usize = 256;

type State = Db<Mmr, Context, Digest, Vec<u8>, Sha256, EightCap, CHUNK, Rayon>;
type Batch = commonware_storage::qmdb::current::batch::MerkleizedBatch<
    Mmr,
    Digest,
    commonware_storage::qmdb::any::ordered::Update<
        Digest,
        commonware_storage::qmdb::any::value::VariableEncoding<Vec<u8>>,
    >,
    CHUNK,
    Rayon,
>;
type Present = KeyValueProof<Mmr, Digest, Digest, CHUNK>;
type Absent = ExclusionProof<
    Mmr,
    Digest,
    commonware_storage::qmdb::any::value::VariableEncoding<Vec<u8>>,
    Digest,
    CHUNK,
>;

/// What went wrong in the commitment's database.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitmentError {
    #[error("qmdb: {0}")]
    Store(String),
    #[error("no prepared batch {0}")]
    UnknownBatch(u64),
    #[error("the commitment's thread has stopped")]
    Stopped,
    #[error("state sync: {0}")]
    Sync(String),
}

type Result<T> = std::result::Result<T, CommitmentError>;

fn store(e: impl std::fmt::Display) -> CommitmentError {
    CommitmentError::Store(e.to_string())
}

/// A block's writes merkleized, not yet committed: its root, and the handle by which it is
/// committed or built on. Dropped uncommitted (a block not finalized), it is forgotten.
#[derive(Debug)]
pub struct Prepared {
    pub id: u64,
    pub root: Hash,
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // Committed already, or the commitment stopped: nothing to forget either way.
        let _ = self
            .commands
            .unbounded_send(Command::Forget { id: self.id });
    }
}

/// A commit, as a restart and state sync need it: the canonical root (a block's state root) and
/// the block's height; the root of the operations log alone, with the witness (qmdb's
/// `OpsRootWitness`, encoded) that the canonical root commits to it; and the operations a replica
/// of this commit needs, `start..end` of the log. `end` is what [`Commitment::open_at`] takes to
/// come back to the commit, `start` what [`Commitment::prune`] may drop up to, and the whole is
/// what a follower syncs to ([`Commitment::sync`]) while the host keeps the log from `start`.
#[derive(Debug, Clone, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Committed {
    pub root: Hash,
    pub height: Option<u64>,
    pub ops_root: Hash,
    pub witness: Vec<u8>,
    pub start: u64,
    pub end: u64,
}

/// A key's current value and the proof of it (or of its absence), against the root of the
/// height the state is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// The height of the last committed block (`None` before the first).
    pub height: Option<u64>,
    pub root: Hash,
    pub value: Option<Vec<u8>>,
    pub proof: KeyProof,
}

/// What the commitment's thread proves of one key: height, root, stored row, proof.
type ProvenRow = (Option<u64>, Hash, Option<Vec<u8>>, KeyProof);

/// A proof of a key's current value (`Present`) or that it has none (`Absent`), against the
/// root it was made at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProof {
    Present(Vec<u8>),
    Absent(Vec<u8>),
}

/// The commitment's key for a state key.
pub fn key_of(state_key: &[u8]) -> Digest {
    Sha256::hash(&[state_key])
}

/// Whether `proof` shows that the state key `key` has `value` (`None`: no value) in the state
/// whose commitment root is `root`.
pub fn verify(root: &Hash, key: &[u8], value: Option<&[u8]>, proof: &KeyProof) -> bool {
    let root = Digest::from(root.0);
    let k = key_of(key);
    match (value, proof) {
        (Some(v), KeyProof::Present(bytes)) => {
            let cfg = (PROOF_DIGESTS_MAX, ());
            let Ok(p) = Present::decode_cfg(bytes::Bytes::copy_from_slice(bytes), &cfg) else {
                return false;
            };
            p.verify::<Sha256, commonware_storage::qmdb::any::value::VariableEncoding<Vec<u8>>>(
                k,
                leaf_row(key, v),
                &root,
            )
        }
        (None, KeyProof::Absent(bytes)) => {
            let value_cfg = ((0..=VALUE_MAX).into(), ());
            let cfg = (PROOF_DIGESTS_MAX, ((), value_cfg), value_cfg);
            let Ok(p) = Absent::decode_cfg(bytes::Bytes::copy_from_slice(bytes), &cfg) else {
                return false;
            };
            p.verify::<Sha256>(&k, &root)
        }
        _ => false,
    }
}

/// A committed root, a key's stored row and the proof of it.
type ProvenKey = (Hash, Option<Vec<u8>>, KeyProof);

/// How the log decodes an operation's key (a digest) and value (at most [`VALUE_MAX`] bytes).
type LogCodec = ((), (commonware_codec::RangeCfg<usize>, ()));
fn log_codec() -> LogCodec {
    ((), ((0..=VALUE_MAX).into(), ()))
}

/// The database's configuration.
type Config = VariableConfig<EightCap, LogCodec, Rayon>;

/// What the commitment's thread tells the caller waiting for it to open: a request for bytes
/// (state sync's), or that it is open or failed to.
enum Opening {
    Fetch {
        request: Vec<u8>,
        reply: futures::channel::oneshot::Sender<std::result::Result<Vec<u8>, String>>,
    },
    Done(Result<()>),
}

enum Command {
    Prepare {
        parent: Option<u64>,
        height: u64,
        writes: Vec<(Digest, Option<Vec<u8>>)>,
        reply: std::sync::mpsc::Sender<Result<(u64, Hash)>>,
    },
    Commit {
        id: u64,
        durable: bool,
        reply: std::sync::mpsc::Sender<Result<Committed>>,
    },
    Durable {
        reply: std::sync::mpsc::Sender<Result<()>>,
    },
    ProveMany {
        keys: Vec<Digest>,
        reply: std::sync::mpsc::Sender<Result<Vec<ProvenRow>>>,
    },
    Prune {
        to: u64,
        reply: std::sync::mpsc::Sender<Result<()>>,
    },
    Forget {
        id: u64,
    },
    Root {
        reply: std::sync::mpsc::Sender<Hash>,
    },
    Height {
        reply: std::sync::mpsc::Sender<Result<Option<u64>>>,
    },
    Get {
        key: Digest,
        reply: std::sync::mpsc::Sender<Result<Option<Vec<u8>>>>,
    },
    Prove {
        key: Digest,
        reply: std::sync::mpsc::Sender<Result<ProvenKey>>,
    },
    Sync(sync::SyncCommand),
}

/// The state's commitment in `qmdb::current`, on a thread of its own (see the module's text).
#[derive(Debug)]
pub struct Commitment {
    commands: mpsc::UnboundedSender<Command>,
    thread: Option<std::thread::JoinHandle<std::result::Result<(), String>>>,
}

impl Commitment {
    /// Opens (or creates) the commitment in `dir`, with a page cache of `cache_mib` MiB shared
    /// by the log and the Merkle nodes.
    pub fn open(dir: &Path, cache_mib: usize) -> Result<Commitment> {
        Self::launch(
            dir,
            cache_mib,
            |ctx, config, _| async move { State::init(ctx, config, None).await.map_err(store) },
            |_| Err("nothing is being fetched".into()),
        )
    }

    /// Opens the commitment in `dir` at its last commit whose log held at most `size`
    /// operations ([`Committed::end`]), dropping the commits after it for good: how a restart
    /// brings the commitment back to the block the block database last made durable. Fails if
    /// the log was pruned past that commit (see [`Commitment::prune`]).
    pub fn open_at(dir: &Path, cache_mib: usize, size: u64) -> Result<Commitment> {
        Self::launch(
            dir,
            cache_mib,
            move |ctx, config, _| async move {
                let db = State::init(ctx, config, Some(size.into()))
                    .await
                    .map_err(store)?;
                db.commit().await.map_err(store)
            },
            |_| Err("nothing is being fetched".into()),
        )
    }

    /// Starts the commitment's thread, whose database `init` opens (or fetches: it may ask the
    /// caller for bytes through its `Opening` sender, which `fetch` answers on the caller's
    /// thread), and waits until it is open.
    fn launch<I, Fut>(
        dir: &Path,
        cache_mib: usize,
        init: I,
        mut fetch: impl FnMut(Vec<u8>) -> std::result::Result<Vec<u8>, String>,
    ) -> Result<Commitment>
    where
        I: FnOnce(Context, Config, std::sync::mpsc::Sender<Opening>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<State>>,
    {
        std::fs::create_dir_all(dir).map_err(store)?;
        let (commands, requests) = mpsc::unbounded();
        let (opening, events) = std::sync::mpsc::channel();
        let cfg = TokioConfig::new()
            .with_storage_directory(dir.to_path_buf())
            .with_worker_threads(2);
        let pages = NonZeroUsize::new((cache_mib.max(1) << 20) / BLOB_PAGE_SIZE as usize)
            .unwrap_or(NZUsize!(1));
        let thread = std::thread::Builder::new()
            .name("kassa-qmdb".into())
            .spawn(move || {
                Runner::new(cfg).start(|ctx| async move {
                    let config = config(&ctx, pages);
                    match init(ctx.child("state"), config, opening.clone()).await {
                        Ok(db) => {
                            let _ = opening.send(Opening::Done(Ok(())));
                            serve(db, requests).await
                        }
                        Err(e) => {
                            let _ = opening.send(Opening::Done(Err(e.clone())));
                            Err(e.to_string())
                        }
                    }
                })
            })
            .map_err(store)?;
        let commitment = Commitment {
            commands,
            thread: Some(thread),
        };
        loop {
            match events.recv().map_err(|_| CommitmentError::Stopped)? {
                Opening::Done(opened) => return opened.map(|()| commitment),
                Opening::Fetch { request, reply } => {
                    let _ = reply.send(fetch(request));
                }
            }
        }
    }

    fn ask<T>(
        &self,
        make: impl FnOnce(std::sync::mpsc::Sender<T>) -> Command,
    ) -> std::result::Result<T, CommitmentError> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.commands
            .unbounded_send(make(reply))
            .map_err(|_| CommitmentError::Stopped)?;
        answer.recv().map_err(|_| CommitmentError::Stopped)
    }

    /// The root of the committed state.
    pub fn root(&self) -> Result<Hash> {
        self.ask(|reply| Command::Root { reply })
    }

    /// The height of the last committed batch (`None` before the first): what a restart
    /// compares with the block database's head to find a block whose batch it must apply again.
    pub fn height(&self) -> Result<Option<u64>> {
        self.ask(|reply| Command::Height { reply })?
    }

    /// Merkleizes the writes of the block at `height` (state key and new value, `None` to
    /// delete; the last write of a key wins) on the committed state (`parent` `None`) or on a
    /// prepared batch not yet committed. The height is the batch's commit metadata, so the
    /// root commits to it.
    pub fn prepare(
        &self,
        parent: Option<&Prepared>,
        height: u64,
        writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Prepared> {
        let writes = writes
            .into_iter()
            .map(|(k, v)| {
                let row = v.map(|v| leaf_row(&k, &v));
                (key_of(&k), row)
            })
            .collect();
        let (id, root) = self.ask(|reply| Command::Prepare {
            parent: parent.map(|p| p.id),
            height,
            writes,
            reply,
        })??;
        Ok(Prepared {
            id,
            root,
            commands: self.commands.clone(),
        })
    }

    /// Applies `batch` (prepared on the committed state, or on a batch committed since) and makes
    /// it durable. A batch prepared on a parent that is committed since is built on the
    /// committed state then.
    pub fn commit(&self, batch: &Prepared, durable: bool) -> Result<Committed> {
        self.ask(|reply| Command::Commit {
            id: batch.id,
            durable,
            reply,
        })?
    }

    /// Makes every batch committed so far durable.
    pub fn make_durable(&self) -> Result<()> {
        self.ask(|reply| Command::Durable { reply })?
    }

    /// The current values of `keys` with their proofs, all against one root.
    pub fn prove_many(&self, keys: &[&[u8]]) -> Result<Vec<Proven>> {
        let hashed = keys.iter().map(|k| key_of(k)).collect();
        let proven = self.ask(|reply| Command::ProveMany {
            keys: hashed,
            reply,
        })??;
        keys.iter()
            .zip(proven)
            .map(|(key, (height, root, row, proof))| {
                let value = row.map(|r| value_of(key, &r)).transpose()?;
                Ok(Proven {
                    height,
                    root,
                    value,
                    proof,
                })
            })
            .collect()
    }

    /// Drops the operations below `to` (at most the last commit's [`Committed::start`]). A
    /// commit can be reopened ([`Commitment::open_at`]) as long as the log is not pruned past
    /// its own boundary, so a node prunes to the boundary of the last block its other store
    /// made durable.
    pub fn prune(&self, to: u64) -> Result<()> {
        self.ask(|reply| Command::Prune { to, reply })?
    }

    /// The committed value of a state key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = key_of(key);
        let row = self.ask(|reply| Command::Get { key: k, reply })??;
        row.map(|r| value_of(key, &r)).transpose()
    }

    /// The committed root, the key's value, and the proof of it (or of its absence).
    pub fn prove(&self, key: &[u8]) -> Result<(Hash, Option<Vec<u8>>, KeyProof)> {
        let k = key_of(key);
        let (root, row, proof) = self.ask(|reply| Command::Prove { key: k, reply })??;
        let value = row.map(|r| value_of(key, &r)).transpose()?;
        Ok((root, value, proof))
    }
}

impl Drop for Commitment {
    fn drop(&mut self) {
        self.commands.close_channel();
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "the state commitment stopped"),
                Err(_) => tracing::error!("the state commitment's thread panicked"),
            }
        }
    }
}

fn config(ctx: &Context, pages: NonZeroUsize) -> Config {
    let page_cache = CacheRef::new(page_size(BLOB_PAGE_SIZE), pages);
    VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: "merkle".into(),
            metadata_partition: "merkle-meta".into(),
            items_per_blob: NZU64!(262_144),
            write_buffer: NZUsize!(2 << 20),
            replay_buffer: NZUsize!(2 << 20),
            strategy: ctx.strategy(NZUsize!(2)),
            page_cache: page_cache.clone(),
        },
        journal_config: LogConfig {
            partition: "log".into(),
            items_per_section: NZU64!(100_000),
            compression: None,
            codec_config: log_codec(),
            page_cache,
            write_buffer: NZUsize!(2 << 20),
            replay_buffer: NZUsize!(2 << 20),
        },
        grafted_metadata_partition: "grafted-meta".into(),
        translator: EightCap,
        init_cache: Some(NZUsize!(1 << 18)),
        init_buffer: NZUsize!(1 << 21),
        init_concurrency: (),
    }
}

/// A stored row: the state key's length (`u16`, little-endian), the state key and the value.
/// The key is kept with the value because the commitment's keys are its hash: the current
/// state is listed from the commitment ([`Commitment::entries`]) with the keys themselves.
pub(crate) fn leaf_row(key: &[u8], value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(key.len()).expect("state keys are short");
    let mut row = Vec::with_capacity(2 + key.len() + value.len());
    row.extend_from_slice(&len.to_le_bytes());
    row.extend_from_slice(key);
    row.extend_from_slice(value);
    row
}

/// The state key and the value of a [`leaf_row`] (empty for a row too short to hold its key,
/// which this code never writes).
pub(crate) fn split_row(row: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = row.split_first_chunk::<2>() else {
        return (&[], &[]);
    };
    let len = usize::from(u16::from_le_bytes(*len));
    if rest.len() < len {
        return (&[], &[]);
    }
    rest.split_at(len)
}

/// The value in a stored row, which must be `key`'s (two state keys with one SHA-256 would be
/// a collision).
fn value_of(key: &[u8], row: &[u8]) -> Result<Vec<u8>> {
    match split_row(row) {
        (k, v) if k == key => Ok(v.to_vec()),
        _ => Err(CommitmentError::Store(
            "a stored row is another key's".into(),
        )),
    }
}

fn hash_of(d: &Digest) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(d.as_ref());
    Hash(h)
}

mod serve;
use serve::serve;

mod sync;
pub use sync::{ANSWER_BYTES_MAX, MAX_OPS_PER_ANSWER, check_answer, check_target, requests};

#[cfg(test)]
mod vectors;

#[cfg(test)]
mod tests;
