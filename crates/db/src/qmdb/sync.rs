//! State sync of the commitment: a new node fetches the operations of a host's commitment instead
//! of replaying every block.
//!
//! The host names its state ([`Commitment::sync_target`]): the canonical root, its operations
//! root with the witness that the canonical root commits to it, and the range of operations a
//! replica needs (from the sync boundary, below which every operation is inactive, to the end of
//! the log). The follower checks the witness against the root it trusts (certified by the
//! validators) before fetching anything, then runs Commonware's sync engine: it asks for ranges of
//! operations ([`Commitment::serve_sync`] answers on the host), checks each range against the
//! operations root with its proof, rebuilds the bitmap and the grafted tree from them, and the
//! finished database's canonical root must be the trusted one. A host that sends anything else
//! fails the sync with an error, and the caller can start again with another host in a fresh
//! directory.
//!
//! [`Commitment::entries`] lists the current keys and values (in the commitment's key order), so
//! that a synced node can fill the tables it reads the state from.

use super::{
    Commitment, CommitmentError, Committed, Config, Context, Digest, Mmr, Opening, Result, State,
    hash_of, store,
};
use commonware_codec::{Decode as _, DecodeExt as _, Encode as _};
use commonware_cryptography::Sha256;
use commonware_storage::qmdb::current::proof::OpsRootWitness;
use commonware_storage::qmdb::sync::{Database, Request, Response, Source, Target};
use commonware_storage::qmdb::{verify_proof, verify_proof_and_pinned_nodes};
use commonware_utils::range::NonEmptyRange;
use commonware_utils::{NZU64, NZUsize};
use futures::StreamExt as _;
use kassa_types::Hash;
use std::num::NonZeroU64;
use std::ops::Bound;
use std::path::Path;

/// Most operations a host sends in one answer (what a follower asks for at once).
pub const MAX_OPS_PER_ANSWER: u64 = FETCH_BATCH;
/// Most operations a follower asks for at once.
const FETCH_BATCH: u64 = 1_024;
/// Largest answer a host sends: [`MAX_OPS_PER_ANSWER`] operations of the state's records (each
/// well under 2 KiB) and their proof, with room to spare. A host refuses to send a larger one.
pub const ANSWER_BYTES_MAX: usize = 8 << 20;

type Op = <State as Database>::Op;
/// A current key of the commitment and its stored row.
type Row = (Digest, Vec<u8>);

/// A host's side of state sync, answered on the commitment's thread.
pub(super) enum SyncCommand {
    Target {
        reply: std::sync::mpsc::Sender<Result<Committed>>,
    },
    Serve {
        request: Vec<u8>,
        reply: std::sync::mpsc::Sender<Result<Vec<u8>>>,
    },
    Entries {
        after: Option<Digest>,
        max: usize,
        reply: std::sync::mpsc::Sender<Result<Vec<Row>>>,
    },
}

pub(super) async fn answer(db: &State, command: SyncCommand) {
    match command {
        SyncCommand::Target { reply } => {
            let _ = reply.send(super::serve::committed_of(db).await);
        }
        SyncCommand::Serve { request, reply } => {
            let served = async {
                let request = Request::<Mmr>::decode(bytes::Bytes::from(request))
                    .map_err(|e| CommitmentError::Sync(format!("a malformed request: {e}")))?;
                let request = match request {
                    Request::Operations {
                        size,
                        start,
                        max_ops,
                    } => Request::Operations {
                        size,
                        start,
                        max_ops: max_ops.min(NZU64!(MAX_OPS_PER_ANSWER)),
                    },
                    boundary => boundary,
                };
                let (response, _) = db.serve(request).await.map_err(store)?;
                let answer = response.encode().to_vec();
                if answer.len() > ANSWER_BYTES_MAX {
                    return Err(CommitmentError::Sync(format!(
                        "an answer of {} bytes, over {ANSWER_BYTES_MAX}",
                        answer.len()
                    )));
                }
                Ok(answer)
            }
            .await;
            let _ = reply.send(served);
        }
        SyncCommand::Entries { after, max, reply } => {
            let from = after.map_or(Bound::Unbounded, Bound::Excluded);
            let entries = db
                .stream_range((from, Bound::Unbounded))
                .take(max)
                .map(|entry| entry.map_err(store))
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect();
            let _ = reply.send(entries);
        }
    }
}

impl Commitment {
    /// What the last commit is ([`Commitment::commit`] returns the same), for a follower to
    /// sync to it.
    pub fn sync_target(&self) -> Result<Committed> {
        self.ask(|reply| super::Command::Sync(SyncCommand::Target { reply }))?
    }

    /// A host's answer to a follower's request (qmdb's sync `Request`, encoded): a range of
    /// operations with its proof, at most [`MAX_OPS_PER_ANSWER`] of them, or the boundary's
    /// pinned nodes. Malformed bytes are refused with [`CommitmentError::Sync`].
    pub fn serve_sync(&self, request: &[u8]) -> Result<Vec<u8>> {
        let request = request.to_vec();
        self.ask(|reply| super::Command::Sync(SyncCommand::Serve { request, reply }))?
    }

    /// Up to `max` current state keys and values, in the commitment's key order (the SHA-256 of
    /// the state key), from after the state key `after` (from the first with `None`).
    pub fn entries(&self, after: Option<&[u8]>, max: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let after = after.map(super::key_of);
        let rows =
            self.ask(|reply| super::Command::Sync(SyncCommand::Entries { after, max, reply }))??;
        rows.into_iter()
            .map(|(_, row)| {
                let (key, value) = super::split_row(&row);
                Ok((key.to_vec(), value.to_vec()))
            })
            .collect()
    }

    /// Builds the commitment in `dir` (empty) from a host's operations: `target` is what the host
    /// says it is, `trusted` the state root the validators certified for it, and `fetch` sends a
    /// request's bytes to the host and returns its answer ([`Commitment::serve_sync`]'s). Fails,
    /// with nothing to keep in `dir`, if the host's target is not under `trusted`, if an answer
    /// does not match its proof, or if the rebuilt state's root is not `trusted`.
    pub fn sync(
        dir: &Path,
        cache_mib: usize,
        trusted: Hash,
        target: &Committed,
        fetch: impl FnMut(Vec<u8>) -> std::result::Result<Vec<u8>, String>,
    ) -> Result<Commitment> {
        check_target(&trusted, target)?;
        let ops_root = Digest::from(target.ops_root.0);
        let range = NonEmptyRange::new(target.start.into()..target.end.into())
            .map_err(|_| CommitmentError::Sync("an empty range of operations".into()))?;
        let init = move |ctx: Context, db_config: Config, opening| async move {
            let config = commonware_storage::qmdb::sync::engine::Config {
                context: ctx,
                source: Fetcher { opening },
                target: Target::new(ops_root, range),
                max_outstanding_requests: NZUsize!(4),
                fetch_batch_size: NZU64!(FETCH_BATCH),
                apply_batch_size: NZU64!(4_096),
                db_config,
                update_rx: None,
                finish_rx: None,
                reached_target_tx: None,
            };
            let db: State = commonware_storage::qmdb::sync::sync(config)
                .await
                .map_err(|e| CommitmentError::Sync(e.to_string()))?;
            if hash_of(&db.root()) != trusted {
                return Err(CommitmentError::Sync(
                    "the rebuilt state's root is not the certified one".into(),
                ));
            }
            Ok(db)
        };
        Self::launch(dir, cache_mib, init, fetch)
    }
}

/// Checks that `target`, a host's description of a commit, is that of the state root `trusted`
/// (certified by the validators): its operations root is the one the root commits to.
pub fn check_target(trusted: &Hash, target: &Committed) -> Result<()> {
    let ops_root = Digest::from(target.ops_root.0);
    let witness =
        OpsRootWitness::<Mmr, Digest>::decode(bytes::Bytes::copy_from_slice(&target.witness))
            .map_err(|e| CommitmentError::Sync(format!("a malformed witness: {e}")))?;
    if target.root != *trusted || !witness.verify::<Sha256>(&ops_root, &Digest::from(trusted.0)) {
        return Err(CommitmentError::Sync(
            "the host's operations are not those of the certified state root".into(),
        ));
    }
    if target.start >= target.end {
        return Err(CommitmentError::Sync("an empty range of operations".into()));
    }
    Ok(())
}

/// The requests (encoded) that fetch the operations of `target`, as the sync engine asks them:
/// the pinned nodes and the operation at the range's start (unless it starts at the log's
/// beginning), then consecutive ranges of at most [`FETCH_BATCH`] operations after it. A follower can fetch these from any hosts, each answer checked on arrival
/// ([`check_answer`]), and then build the state from them with no network
/// ([`Commitment::sync`] with a `fetch` that looks them up), in whatever runtime it runs.
pub fn requests(target: &Committed) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = target.start;
    // A log pruned below `start` is rebuilt from the pinned nodes there; the boundary's answer
    // holds them and the operation at `start`.
    if start > 0 {
        let boundary = Request::<Mmr>::Boundary {
            size: target.end.into(),
            start: target.start.into(),
        };
        out.push(boundary.encode().to_vec());
        start += 1;
    }
    while start < target.end {
        let n = FETCH_BATCH.min(target.end - start);
        let request = Request::<Mmr>::Operations {
            size: target.end.into(),
            start: start.into(),
            max_ops: NonZeroU64::new(n).expect("a range before the end"),
        };
        out.push(request.encode().to_vec());
        start += n;
    }
    out
}

/// Whether `answer` is a true and whole answer to `request` (one of [`requests`]`(target)`):
/// it decodes, proves against `target`'s operations root (checked against the certified root by
/// [`check_target`]), and a range holds every operation asked. A host whose answer fails this
/// lied or broke; ask another.
pub fn check_answer(target: &Committed, request: &[u8], answer: &[u8]) -> Result<()> {
    let request = Request::<Mmr>::decode(bytes::Bytes::copy_from_slice(request))
        .map_err(|e| CommitmentError::Sync(format!("a malformed request: {e}")))?;
    if *request.size() != target.end {
        return Err(CommitmentError::Sync("a request for another commit".into()));
    }
    let max_ops = request.max_ops().get();
    let cfg = (
        usize::try_from(max_ops).unwrap_or(usize::MAX),
        super::log_codec(),
    );
    let response =
        Response::<Mmr, Op, Digest>::decode_cfg(bytes::Bytes::copy_from_slice(answer), &cfg)
            .map_err(|e| CommitmentError::Sync(format!("a malformed answer: {e}")))?;
    let root = Digest::from(target.ops_root.0);
    let proven = match (&request, &response) {
        (Request::Operations { start, .. }, Response::Operations { proof, operations }) => {
            u64::try_from(operations.len()).ok() == Some(max_ops)
                && *proof.leaves == target.end
                && verify_proof::<Sha256, _, _>(proof, *start, operations, &root)
        }
        (
            Request::Boundary { start, .. },
            Response::Boundary {
                proof,
                op,
                pinned_nodes,
            },
        ) => {
            *proof.leaves == target.end
                && verify_proof_and_pinned_nodes::<Sha256, _, _>(
                    proof,
                    *start,
                    core::slice::from_ref(op),
                    pinned_nodes,
                    &root,
                )
        }
        _ => false,
    };
    if !proven {
        return Err(CommitmentError::Sync(
            "an answer that does not prove against the operations root".into(),
        ));
    }
    Ok(())
}

/// The sync engine's source: each request goes to the caller waiting for the commitment to open,
/// whose `fetch` asks the host.
struct Fetcher {
    opening: std::sync::mpsc::Sender<Opening>,
}

impl Source for Fetcher {
    type Family = Mmr;
    type Digest = Digest;
    type Op = Op;
    type Error = CommitmentError;

    async fn serve(
        &self,
        request: Request<Mmr>,
    ) -> std::result::Result<
        (
            Response<Mmr, Op, Digest>,
            Option<commonware_storage::qmdb::sync::Feedback<Response<Mmr, Op, Digest>>>,
        ),
        CommitmentError,
    > {
        let (reply, answer) = futures::channel::oneshot::channel();
        self.opening
            .send(Opening::Fetch {
                request: request.encode().to_vec(),
                reply,
            })
            .map_err(|_| CommitmentError::Stopped)?;
        let bytes = answer
            .await
            .map_err(|_| CommitmentError::Stopped)?
            .map_err(CommitmentError::Sync)?;
        let max_ops =
            usize::try_from(request.max_ops().get().min(MAX_OPS_PER_ANSWER)).unwrap_or(usize::MAX);
        let cfg = (max_ops, super::log_codec());
        let response = Response::<Mmr, Op, Digest>::decode_cfg(bytes::Bytes::from(bytes), &cfg)
            .map_err(|e| CommitmentError::Sync(format!("a malformed answer: {e}")))?;
        Ok((response, None))
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
