//! The state as a snapshot, for a node that starts from a recent height instead of genesis.
//!
//! A node serves the state of any height it keeps in [`Chunk`]s: the tree's leaves in key-hash
//! order (each with its state key, which the tree itself does not hold), and a range proof that
//! the chunk's last leaf is in the tree of that height and, with every leaf before it, gives
//! that height's state root. A node restoring it ([`Restore`]) checks each chunk against the
//! state root of a block a quorum of validators certified *before* writing it: a server that
//! leaves out, changes, reorders or adds an entry is caught at that chunk, and one that stops
//! early is caught by the root of the finished tree. Nothing it writes is the chain's until
//! [`Restore::finish`] commits the head.
//!
//! The restored tree is `jmt`'s own ([`JellyfishMerkleRestore`]: all of its nodes at the
//! restored height), so proofs, later blocks and pruning work on it as on any other.

use crate::{BLOCKS, Db};
use crate::{
    DbError, HEAD, Head, JMT_NODES, JMT_VALUES, META, PRUNED_BELOW, Reader, Result, STATE,
    batch::{children_of, nibble},
    dec, enc, key_hash, leaf_row, leaf_value_key, node_key_bytes, root_key, split_row,
};
use borsh::{BorshDeserialize, BorshSerialize};
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{Node, NodeBatch, NodeKey, TreeReader, TreeWriter};
use jmt::{JellyfishMerkleTree, KeyHash, RootHash, Version};
use kassa_types::{Block, Hash};
use redb::ReadableDatabase;
use sha2::Sha256;
use std::sync::{Arc, Mutex, mpsc};

/// A proof that a chunk's last leaf, with the leaves before it, belongs to a state root.
pub type RangeProof = jmt::proof::SparseMerkleRangeProof<Sha256>;

/// Most entries one chunk holds.
pub const CHUNK_ENTRIES_MAX: usize = 4_096;

/// Longest state key a chunk may carry (the state's keys are far shorter).
pub const KEY_LEN_MAX: usize = 256;

/// Most bytes of one encoded chunk: [`CHUNK_ENTRIES_MAX`] entries of a key and a value each well
/// under 2 KiB, and the proof.
pub const CHUNK_BYTES_MAX: usize = 8 << 20;

/// A run of the state of one height, in the order of its keys' hashes.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Chunk {
    /// (state key, value) of consecutive leaves of the tree.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// That the last entry is in the tree, with the hashes on its right that the restorer cannot
    /// compute from what it already has; `None` when there are no entries.
    pub proof: Option<RangeProof>,
    /// The leaves of the whole tree, as the server counts them: for a progress bar only, never
    /// trusted.
    pub total: u64,
}

impl Chunk {
    /// The canonical bytes of the chunk (Borsh).
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).expect("a chunk encodes")
    }

    /// A chunk from at most [`CHUNK_BYTES_MAX`] bytes, refusing more entries than
    /// [`CHUNK_ENTRIES_MAX`], keys longer than [`KEY_LEN_MAX`] and trailing bytes.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Chunk, RestoreError> {
        if bytes.len() > CHUNK_BYTES_MAX {
            return Err(RestoreError::Malformed("more bytes than a chunk may have"));
        }
        let chunk: Chunk =
            borsh::from_slice(bytes).map_err(|_| RestoreError::Malformed("not a chunk"))?;
        if chunk.entries.len() > CHUNK_ENTRIES_MAX {
            return Err(RestoreError::Malformed(
                "more entries than a chunk may have",
            ));
        }
        if chunk.entries.iter().any(|(k, _)| k.len() > KEY_LEN_MAX) {
            return Err(RestoreError::Malformed(
                "a state key longer than any the chain has",
            ));
        }
        Ok(chunk)
    }
}

impl Db {
    /// Up to `limit` (at most [`CHUNK_ENTRIES_MAX`]) entries of the state at `height`, those
    /// whose key hash is above `after` (from the first if `None`), with their range proof. An
    /// empty chunk: nothing is above `after`.
    pub fn snapshot_chunk(
        &self,
        height: u64,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Result<Chunk> {
        let reader = self.reader()?;
        reader.kept(height)?;
        if reader.height().is_none_or(|h| height > h) {
            return Err(DbError::Tree(format!("no state at height {height}")));
        }
        let tree_error = |e: anyhow::Error| DbError::Tree(e.to_string());
        let limit = limit.clamp(1, CHUNK_ENTRIES_MAX);
        let after = after.map(KeyHash);
        let mut leaves = Vec::with_capacity(limit);
        let mut path = Vec::with_capacity(64);
        leaves_after(
            &reader,
            root_key(height),
            &mut path,
            after.as_ref(),
            limit,
            &mut leaves,
        )
        .map_err(tree_error)?;
        let mut entries = Vec::with_capacity(leaves.len());
        for (version, kh) in &leaves {
            let row = reader
                .leaf_row(&leaf_value_key(*version, kh))
                .map_err(tree_error)?;
            let (key, value) = split_row(&row);
            entries.push((key.to_vec(), value.to_vec()));
        }
        let proof = match leaves.last() {
            None => None,
            Some((_, last)) => Some(
                JellyfishMerkleTree::<_, Sha256>::new(&reader)
                    .get_range_proof(*last, height)
                    .map_err(tree_error)?,
            ),
        };
        let total = match reader
            .get_node_option(&root_key(height))
            .map_err(tree_error)?
        {
            Some(Node::Internal(n)) => u64::try_from(n.leaf_count()).unwrap_or(u64::MAX),
            Some(Node::Leaf(_)) => 1,
            _ => 0,
        };
        Ok(Chunk {
            entries,
            proof,
            total,
        })
    }

    /// Whether a restore into this database began and did not finish: the height it was
    /// restoring. Such a database holds part of a state and no head: it must be restored again
    /// ([`Restore::begin`] starts over), never used.
    pub fn restoring(&self) -> Result<Option<u64>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(RESTORING)?.map(|v| dec(v.value())))
    }
}

/// The height a restore is writing, until it finishes (absent otherwise).
const RESTORING: &str = "restoring";

/// Appends to `out` the leaves under `key` (at nibble path `path`) whose key hash is above
/// `after`, in key-hash order, until it holds `limit`: (the leaf's version, its key hash).
/// `after` is given only while `path` is a prefix of it: a subtree right of its path holds only
/// keys above it, one left of it only keys below.
fn leaves_after(
    reader: &Reader,
    key: NodeKey,
    path: &mut Vec<u8>,
    after: Option<&KeyHash>,
    limit: usize,
    out: &mut Vec<(Version, KeyHash)>,
) -> anyhow::Result<()> {
    let node = reader
        .get_node_option(&key)?
        .ok_or_else(|| anyhow::anyhow!("a node of the tree is missing"))?;
    match &node {
        Node::Null => {}
        Node::Leaf(leaf) => {
            if after.is_none_or(|a| leaf.key_hash() > *a) {
                out.push((key.version(), leaf.key_hash()));
            }
        }
        Node::Internal(_) => {
            let depth = path.len();
            for (n, child) in (0u8..).zip(children_of(&node)) {
                let Some(child) = child else { continue };
                if out.len() == limit {
                    break;
                }
                let after = match after.map(|a| (a, nibble(a, depth))) {
                    Some((_, at)) if n < at => continue,
                    Some((a, at)) if n == at => Some(a),
                    _ => None,
                };
                path.push(n);
                let child_key =
                    NodeKey::new(child.version, path.iter().map(|&n| n.into()).collect());
                leaves_after(reader, child_key, path, after, limit, out)?;
                path.pop();
            }
        }
    }
    Ok(())
}

/// Why a chunk or a restore was refused. Any of them means the server lied (or the state it
/// served is not the certified one): the restore must start over from another server.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("malformed chunk: {0}")]
    Malformed(&'static str),
    #[error("the chunk's keys are not after the last restored key, in increasing hash order")]
    Order,
    #[error("the chunk does not prove against the certified state root: {0}")]
    Proof(String),
    #[error("the restored state's root is {got}, the certified root is {expected}")]
    Root { got: Hash, expected: Hash },
    #[error(
        "the block given to finish is at height {got} with state root {root}, not the restored height {expected}"
    )]
    Block { got: u64, root: Hash, expected: u64 },
    #[error("this restore failed before and must start over")]
    Poisoned,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Tree nodes as the restore freezes them, until they are written with their chunk.
#[derive(Default)]
struct Frozen(Mutex<Vec<(NodeKey, Node)>>);

impl Frozen {
    fn take(&self) -> Vec<(NodeKey, Node)> {
        std::mem::take(&mut *self.0.lock().expect("never poisoned"))
    }
}

impl TreeWriter for Frozen {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        self.0
            .lock()
            .expect("never poisoned")
            .extend(batch.nodes().iter().map(|(k, n)| (k.clone(), n.clone())));
        Ok(())
    }
}

/// What the thread that owns `jmt`'s restore is asked.
enum Job {
    /// Check these leaves (the next, in order) with the proof, and freeze what it can.
    Add(Vec<(KeyHash, Vec<u8>)>, RangeProof),
    /// No more leaves: freeze the rest, up to the root.
    Finish,
}

/// `jmt`'s restore lives on a thread of its own: it holds its writer as an `Arc<dyn
/// TreeWriter>`, which may not cross threads, and a restore awaits each chunk from the network
/// (on whatever thread the runtime resumes it). Each job is answered with the nodes it froze,
/// or why the proof failed (after which the thread is gone).
struct Worker {
    jobs: mpsc::Sender<Job>,
    frozen: mpsc::Receiver<std::result::Result<Vec<(NodeKey, Node)>, String>>,
}

impl Worker {
    fn start(height: u64, root: Hash) -> Worker {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, frozen) = mpsc::channel();
        std::thread::Builder::new()
            .name("kassa-restore".into())
            .spawn(move || {
                let nodes = Arc::new(Frozen::default());
                let mut tree = match JellyfishMerkleRestore::new_overwrite(
                    nodes.clone(),
                    height,
                    RootHash(root.0),
                ) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        let _ = outbox.send(Err(e.to_string()));
                        return;
                    }
                };
                while let Ok(job) = inbox.recv() {
                    let done = match (job, tree.as_mut()) {
                        (Job::Add(leaves, proof), Some(t)) => t.add_chunk(leaves, proof),
                        (Job::Finish, Some(_)) => tree.take().expect("present").finish(),
                        (_, None) => Err(anyhow::anyhow!("the restore is finished")),
                    };
                    let answer = done.map(|()| nodes.take()).map_err(|e| e.to_string());
                    let failed = answer.is_err();
                    if outbox.send(answer).is_err() || failed || tree.is_none() {
                        return;
                    }
                }
            })
            .expect("a thread for the restore");
        Worker { jobs, frozen }
    }

    /// Runs `job`; the nodes it froze, or why it failed.
    fn run(&self, job: Job) -> std::result::Result<Vec<(NodeKey, Node)>, String> {
        self.jobs
            .send(job)
            .map_err(|_| "the restore is no longer running".to_string())?;
        self.frozen
            .recv()
            .map_err(|_| "the restore is no longer running".to_string())?
    }
}

/// A state being restored into an empty database, chunk by chunk, each checked against a
/// certified state root before it is written.
pub struct Restore<'a> {
    db: &'a Db,
    height: u64,
    root: Hash,
    /// `None` once a chunk failed (or the restore finished).
    worker: Option<Worker>,
    last: Option<KeyHash>,
    entries: u64,
}

impl std::fmt::Debug for Restore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore")
            .field("height", &self.height)
            .field("root", &self.root)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl<'a> Restore<'a> {
    /// Starts restoring the state of `height`, whose certified state root is `root`, into
    /// `db`, which must hold no chain (a database whose restore was interrupted is emptied
    /// first).
    pub fn begin(db: &'a Db, height: u64, root: Hash) -> Result<Restore<'a>> {
        if db.head()?.is_some() {
            return Err(DbError::Tree(
                "the database already holds a chain: restore only into an empty one".into(),
            ));
        }
        let w = db.db.begin_write()?;
        for table in [STATE, JMT_NODES, JMT_VALUES, crate::history::HISTORY] {
            w.delete_table(table)?;
            w.open_table(table)?;
        }
        w.delete_table(crate::history::HISTORY_BY_HEIGHT)?;
        w.open_table(crate::history::HISTORY_BY_HEIGHT)?;
        {
            let mut blocks = w.open_table(BLOCKS)?;
            blocks.retain(|_, _| false)?;
            w.open_table(META)?
                .insert(RESTORING, enc(&height).as_slice())?;
        }
        w.commit()?;
        Ok(Restore {
            db,
            height,
            root,
            worker: Some(Worker::start(height, root)),
            last: None,
            entries: 0,
        })
    }

    /// The height being restored.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Entries restored so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The key hash after which the next chunk starts (`None` before the first).
    pub fn after(&self) -> Option<[u8; 32]> {
        self.last.map(|k| k.0)
    }

    /// Checks `chunk` (the entries right after those restored so far) against the certified
    /// root and writes it. An error leaves this restore unusable ([`RestoreError::Poisoned`]
    /// from then on): start over, from another server.
    pub fn add(&mut self, chunk: Chunk) -> std::result::Result<(), RestoreError> {
        let Some(worker) = self.worker.as_ref() else {
            return Err(RestoreError::Poisoned);
        };
        let Some(proof) = chunk.proof else {
            return Err(RestoreError::Malformed("a chunk with entries has a proof"));
        };
        if chunk.entries.is_empty() {
            return Err(RestoreError::Malformed("an empty chunk"));
        }
        let mut hashed = Vec::with_capacity(chunk.entries.len());
        let mut last = self.last;
        for (key, value) in &chunk.entries {
            let kh = key_hash(key);
            if last.is_some_and(|l| kh <= l) {
                return Err(RestoreError::Order);
            }
            last = Some(kh);
            hashed.push((kh, value.clone()));
        }
        let nodes = match worker.run(Job::Add(hashed, proof)) {
            Ok(nodes) => nodes,
            Err(e) => {
                self.worker = None;
                return Err(RestoreError::Proof(e));
            }
        };
        let n = chunk.entries.len();
        self.write(&chunk.entries, nodes)?;
        self.last = last;
        self.entries += u64::try_from(n).expect("bounded chunk");
        Ok(())
    }

    /// Writes the entries of a checked chunk and the nodes the restore froze (durable with the
    /// head's commit: an interrupted restore starts over anyway).
    fn write(&self, entries: &[(Vec<u8>, Vec<u8>)], nodes: Vec<(NodeKey, Node)>) -> Result<()> {
        let mut w = self.db.db.begin_write()?;
        w.set_durability(redb::Durability::None)
            .map_err(|e| DbError::Redb(e.to_string()))?;
        {
            let mut state = w.open_table(STATE)?;
            let mut values = w.open_table(JMT_VALUES)?;
            for (key, value) in entries {
                state.insert(key.as_slice(), value.as_slice())?;
                values.insert(
                    leaf_value_key(self.height, &key_hash(key)).as_slice(),
                    leaf_row(key, value).as_slice(),
                )?;
            }
            let mut stored = w.open_table(JMT_NODES)?;
            for (key, node) in nodes {
                stored.insert(node_key_bytes(&key).as_slice(), enc(&node).as_slice())?;
            }
        }
        // History starts at the restored height, as on a pruned node.
        let entries = entries.iter();
        crate::history::record(
            &w,
            self.height,
            entries.map(|(k, v)| (&k[..], Some(&v[..]))),
        )?;
        w.commit()?;
        Ok(())
    }

    /// Ends the restore once the server has no entry after the last: checks the restored
    /// tree's root against the certified one, then commits, durably, `block` (the certified
    /// block of the restored height, whose hash the caller checked against its certificate)
    /// as the head, `genesis` (the chain's genesis block, which a node checks its genesis file
    /// against), and that history below the restored height is absent (as on a pruned node).
    pub fn finish(
        mut self,
        block: &Block,
        genesis: &Block,
    ) -> std::result::Result<Head, RestoreError> {
        let worker = self.worker.take().ok_or(RestoreError::Poisoned)?;
        if self.entries == 0 {
            return Err(RestoreError::Malformed("a state has entries"));
        }
        if block.header.height != self.height || block.header.state_root != self.root {
            return Err(RestoreError::Block {
                got: block.header.height,
                root: block.header.state_root,
                expected: self.height,
            });
        }
        let nodes = worker.run(Job::Finish).map_err(RestoreError::Proof)?;
        let root = nodes
            .iter()
            .find(|(k, _)| *k == root_key(self.height))
            .map(|(_, n)| match n {
                Node::Internal(n) => Hash(n.hash::<Sha256>()),
                Node::Leaf(n) => Hash(n.hash::<Sha256>()),
                Node::Null => Hash::default(),
            });
        if root != Some(self.root) {
            return Err(RestoreError::Root {
                got: root.unwrap_or_default(),
                expected: self.root,
            });
        }
        let head = Head {
            height: self.height,
            block_hash: block.header.hash(),
            state_root: self.root,
            time_ms: block.header.timestamp_ms,
        };
        self.commit_head(nodes, &head, block, genesis)?;
        Ok(head)
    }

    /// The last nodes, the blocks and the head, in one durable commit.
    fn commit_head(
        &self,
        nodes: Vec<(NodeKey, Node)>,
        head: &Head,
        block: &Block,
        genesis: &Block,
    ) -> Result<()> {
        let w = self.db.db.begin_write()?;
        {
            let mut stored = w.open_table(JMT_NODES)?;
            for (key, node) in nodes {
                stored.insert(node_key_bytes(&key).as_slice(), enc(&node).as_slice())?;
            }
            let mut blocks = w.open_table(BLOCKS)?;
            blocks.insert(0, genesis.encode().as_slice())?;
            blocks.insert(self.height, block.encode().as_slice())?;
            let mut meta = w.open_table(META)?;
            meta.insert(HEAD, enc(head).as_slice())?;
            meta.insert(PRUNED_BELOW, enc(&self.height).as_slice())?;
            meta.remove(RESTORING)?;
        }
        w.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
