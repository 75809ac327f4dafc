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
            let _ = reply.send(super::committed_of(db).await);
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
mod tests {
    use super::*;
    use std::cell::Cell;

    fn key(i: u32) -> Vec<u8> {
        [b"s".as_slice(), &i.to_be_bytes()].concat()
    }

    /// A host after `blocks` blocks over 500 keys (most updated in every block, some deleted),
    /// so that its log is pruned and a replica starts past the beginning.
    fn host(dir: &Path, blocks: u32) -> Commitment {
        let c = Commitment::open(dir, 8).unwrap();
        for h in 1..=blocks {
            let writes = (0..500u32).filter(|i| h == 1 || i % 4 != h % 4).map(|i| {
                let value = (i % 37 != h).then(|| format!("{i} at {h}").into_bytes());
                (key(i), value)
            });
            let b = c.prepare(None, u64::from(h), writes).unwrap();
            c.commit(&b, true).unwrap();
        }
        c
    }

    fn all_entries(c: &Commitment) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        loop {
            let page = c
                .entries(out.last().map(|(k, _)| k.as_slice()), 64)
                .unwrap();
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }

    #[test]
    fn a_follower_synced_from_a_host_has_its_root_and_values_and_takes_the_next_block_as_it_does() {
        let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let host = host(hd.path(), 12);
        let target = host.sync_target().unwrap();
        assert!(target.start > 0, "the host's log is pruned: {target:?}");
        assert_eq!(target.height, Some(12));

        let asked = Cell::new(0);
        let follower = Commitment::sync(fd.path(), 8, target.root, &target, |request| {
            asked.set(asked.get() + 1);
            host.serve_sync(&request).map_err(|e| e.to_string())
        })
        .unwrap();
        assert!(asked.get() > 1, "a boundary and ranges of operations");
        assert_eq!(follower.root().unwrap(), target.root);
        assert_eq!(follower.height().unwrap(), Some(12));
        let entries = all_entries(&follower);
        assert_eq!(entries, all_entries(&host));
        assert!(entries.len() > 400, "{} keys", entries.len());
        assert_eq!(follower.get(&key(3)).unwrap(), host.get(&key(3)).unwrap());
        assert_eq!(
            follower.get(&key(49)).unwrap(),
            None,
            "deleted in the last block"
        );

        let next = |c: &Commitment| {
            let b = c
                .prepare(
                    None,
                    13,
                    [(key(1), None), (key(900), Some(b"new".to_vec()))],
                )
                .unwrap();
            c.commit(&b, true).unwrap()
        };
        assert_eq!(next(&follower), next(&host));
        let (root, value, proof) = follower.prove(&key(900)).unwrap();
        assert!(super::super::verify(
            &root,
            &key(900),
            value.as_deref(),
            &proof
        ));
    }

    #[test]
    fn a_follower_syncs_to_an_earlier_commit_of_a_host_that_went_on() {
        let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let host = host(hd.path(), 8);
        let at8 = host.sync_target().unwrap();
        for h in 9..=12u64 {
            let b = host
                .prepare(
                    None,
                    h,
                    (0..300u32).map(|i| (key(i), Some(h.to_be_bytes().to_vec()))),
                )
                .unwrap();
            let committed = host.commit(&b, true).unwrap();
            // The host keeps its log from the oldest commit it offers.
            host.prune(at8.start.min(committed.start)).unwrap();
        }
        assert_ne!(host.root().unwrap(), at8.root);

        let follower = Commitment::sync(fd.path(), 8, at8.root, &at8, |request| {
            host.serve_sync(&request).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(follower.root().unwrap(), at8.root);
        assert_eq!(follower.height().unwrap(), Some(8));
        assert_eq!(follower.get(&key(1)).unwrap(), Some(b"1 at 8".to_vec()));
    }

    #[test]
    fn answers_fetched_first_and_checked_one_by_one_build_the_state_with_no_host_and_a_liar_is_caught_at_its_answer()
     {
        let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Enough current operations for several ranges.
        let host = host(hd.path(), 3);
        let b = host
            .prepare(
                None,
                4,
                (1_000..4_000u32).map(|i| (key(i), Some(vec![7; 40]))),
            )
            .unwrap();
        host.commit(&b, true).unwrap();
        let target = host.sync_target().unwrap();
        check_target(&target.root, &target).unwrap();
        let asked = requests(&target);
        assert!(asked.len() > 3, "{} requests", asked.len());

        // Each request goes to a liar first (one byte changed), then to the honest host.
        let mut answers = std::collections::BTreeMap::new();
        let mut caught = 0;
        for request in &asked {
            let honest = host.serve_sync(request).unwrap();
            let mut lie = honest.clone();
            let at = lie.len() / 2;
            lie[at] ^= 1;
            if check_answer(&target, request, &lie).is_err() {
                caught += 1;
            }
            check_answer(&target, request, &honest).unwrap();
            answers.insert(request.clone(), honest);
        }
        assert_eq!(
            caught,
            asked.len(),
            "every changed answer is caught where it arrives"
        );
        // An answer to another request, or one cut short, is not an answer to this one.
        assert!(check_answer(&target, &asked[1], &answers[&asked[2]]).is_err());
        let whole = &answers[&asked[1]];
        assert!(check_answer(&target, &asked[1], &whole[..whole.len() - 1]).is_err());

        // Built from the answers alone: the engine asks exactly those requests.
        let follower = Commitment::sync(fd.path(), 8, target.root, &target, |request| {
            answers
                .remove(&request)
                .ok_or_else(|| "a request that was not fetched".to_string())
        })
        .unwrap();
        assert!(answers.is_empty(), "every answer used");
        assert_eq!(follower.root().unwrap(), target.root);
        assert_eq!(all_entries(&follower), all_entries(&host));
    }

    #[test]
    fn a_young_state_whose_operations_start_at_the_log_s_beginning_is_built_from_answers_alone() {
        let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let host = Commitment::open(hd.path(), 8).unwrap();
        let b = host
            .prepare(None, 1, (0..10u32).map(|i| (key(i), Some(vec![1]))))
            .unwrap();
        let target = host.commit(&b, true).unwrap();
        assert_eq!(target.start, 0, "nothing inactive yet: {target:?}");
        let mut answers: std::collections::BTreeMap<_, _> = requests(&target)
            .into_iter()
            .map(|r| {
                let a = host.serve_sync(&r).unwrap();
                check_answer(&target, &r, &a).unwrap();
                (r, a)
            })
            .collect();
        let follower = Commitment::sync(fd.path(), 8, target.root, &target, |r| {
            answers
                .remove(&r)
                .ok_or_else(|| "a request that was not fetched".to_string())
        })
        .unwrap();
        assert!(answers.is_empty());
        assert_eq!(follower.root().unwrap(), target.root);
    }

    #[test]
    fn a_host_whose_operations_are_not_under_the_certified_root_is_refused_before_any_fetch() {
        let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let host = host(hd.path(), 3);
        let older = host.sync_target().unwrap();
        let b = host.prepare(None, 4, [(key(1), None)]).unwrap();
        host.commit(&b, true).unwrap();
        let target = host.sync_target().unwrap();

        let never = |_: Vec<u8>| -> std::result::Result<Vec<u8>, String> {
            panic!("nothing is fetched from a host that is not trusted")
        };
        // The certified root is an older one.
        let refused = Commitment::sync(fd.path(), 8, older.root, &target, never);
        assert!(
            matches!(refused, Err(CommitmentError::Sync(_))),
            "{refused:?}"
        );
        // The host claims the certified root but names the operations of another state.
        let lying = Committed {
            ops_root: older.ops_root,
            ..target.clone()
        };
        let refused = Commitment::sync(fd.path(), 8, target.root, &lying, never);
        assert!(
            matches!(refused, Err(CommitmentError::Sync(_))),
            "{refused:?}"
        );
        let garbage = Committed {
            witness: vec![1, 2, 3],
            ..target.clone()
        };
        let refused = Commitment::sync(fd.path(), 8, target.root, &garbage, never);
        assert!(
            matches!(refused, Err(CommitmentError::Sync(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn a_host_that_changes_an_operation_it_sends_fails_the_sync() {
        let hd = tempfile::tempdir().unwrap();
        let host = host(hd.path(), 6);
        let target = host.sync_target().unwrap();
        // Each answer changed at one byte from its end (an operation's value or digest), or
        // shortened: the sync fails, whichever answer it is.
        for (nth, cut) in [(0, false), (1, false), (0, true), (1, true)] {
            let fd = tempfile::tempdir().unwrap();
            let count = Cell::new(0);
            let synced = Commitment::sync(fd.path(), 8, target.root, &target, |request| {
                assert!(count.get() < 2, "a boundary and one range");
                let mut answer = host.serve_sync(&request).map_err(|e| e.to_string())?;
                if count.replace(count.get() + 1) == nth {
                    if cut {
                        answer.pop();
                    } else {
                        let at = answer.len() - 3;
                        answer[at] ^= 0x40;
                    }
                }
                Ok(answer)
            });
            assert!(
                matches!(synced, Err(CommitmentError::Sync(_))),
                "answer {nth}: {synced:?}"
            );
        }
    }

    #[test]
    fn a_host_refuses_a_malformed_request_and_goes_on_serving() {
        let hd = tempfile::tempdir().unwrap();
        let host = host(hd.path(), 2);
        assert!(matches!(
            host.serve_sync(&[9, 9, 9]),
            Err(CommitmentError::Sync(_))
        ));
        let target = host.sync_target().unwrap();
        let fd = tempfile::tempdir().unwrap();
        let synced = Commitment::sync(fd.path(), 8, target.root, &target, |r| {
            host.serve_sync(&r).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(synced.root().unwrap(), host.root().unwrap());
    }
}
