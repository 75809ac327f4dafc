//! State sync: a node restores the state of a recent certified height instead of replaying the
//! chain from genesis. Chunk by chunk from its [`Source`]s in turn, each checked against the
//! certified state root before it is written ([`kassa_db::Restore`]); a source whose chunk does
//! not prove is dropped and the restore starts over from the others.

use crate::follow::{Certified, FollowError, Source, SourceError, Trust, newest_certified};
use futures::future::BoxFuture;
use kassa_db::{Chunk, Db, Head, Restore, RestoreError};
use kassa_types::Block;
use std::sync::Arc;
use std::time::Duration;

/// What a state sync did.
#[derive(Debug)]
pub struct Synced {
    pub head: Head,
    /// Entries of the state restored.
    pub entries: u64,
    /// Bytes of chunks received (those of abandoned attempts too).
    pub bytes: u64,
    /// Validators who signed the certificate of the restored height, of how many.
    pub signers: usize,
    pub validators: usize,
    /// Restores started over (a lying source, or a height no longer kept).
    pub restarts: u32,
    /// The certificate of the restored height (the follower serves it).
    pub certificate: Vec<u8>,
}

/// How far a restore is: entries restored, and the source's count of the whole state's (not
/// trusted: for a progress bar).
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

/// Waits for a while (the caller's clock: the runtime's, or the simulation's).
pub type Pause<'a> = &'a (dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync);

/// How long state sync waits before starting over after its `n`th round (from 0) in which no
/// source answered: 1 s, doubling, at most 30 s, so that a network that is down for a while is
/// waited out instead of asked again at once.
pub fn retry_pause(n: u32) -> Duration {
    Duration::from_secs((1u64 << n.min(5)).min(30))
}

/// Restores into `db` (empty, or holding an interrupted restore) the state of the newest
/// certified height the first answering source has, trusting only `trust`; `genesis_block` is
/// the chain's genesis block, computed from the genesis. A source whose chunk does not prove is
/// dropped and the restore starts over from the others at once; a height the sources stop
/// keeping starts it over at once at a newer one; a moment when none of them answers starts it
/// over after a [`retry_pause`] (`pause`). At most the sources' count and four attempts in all.
pub async fn sync_state(
    db: &Db,
    sources: &[Arc<dyn Source>],
    trust: &Trust,
    genesis_block: &Block,
    rng: &mut (impl rand_core_10::CryptoRng + Send),
    progress: Progress<'_>,
    pause: Pause<'_>,
) -> Result<Synced, FollowError> {
    let mut live: Vec<Arc<dyn Source>> = sources.to_vec();
    let mut bytes = 0u64;
    let attempts = u32::try_from(sources.len() + 4).unwrap_or(u32::MAX);
    let mut last = FollowError::Source(SourceError::Unreachable("no source".into()));
    // Rounds in which no source answered, for the pause before the next.
    let mut unanswered = 0;
    for restarts in 0..attempts {
        if live.is_empty() {
            break;
        }
        let mut at = None;
        for s in &live {
            match newest_certified(s.as_ref(), trust, rng).await {
                Ok(c) => {
                    at = Some(c);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let Some(at) = at else { break };
        match restore(db, &live, &at, genesis_block, &mut bytes, progress).await {
            Ok((head, entries)) => {
                return Ok(Synced {
                    head,
                    entries,
                    bytes,
                    signers: at.signers,
                    validators: at.validators,
                    restarts,
                    certificate: at.certificate,
                });
            }
            Err(Failed::Liar(i, e)) => {
                tracing::warn!(source = %live[i].name(), error = %e, "state sync: a source served a state that does not prove; dropped");
                live.remove(i);
                last = FollowError::Restore(e);
            }
            Err(Failed::Pruned) => {
                tracing::warn!(
                    height = at.height,
                    "state sync: the height is no longer kept; starting over at a newer one"
                );
            }
            // No source answered for a chunk (or the block): start over after a pause, within
            // the attempts.
            Err(Failed::Other(e @ FollowError::Source(_))) => {
                last = e;
                if restarts + 1 < attempts {
                    let wait = retry_pause(unanswered);
                    unanswered += 1;
                    tracing::warn!(error = %last, wait_s = wait.as_secs(), "state sync: no source answered; starting over after a pause");
                    pause(wait).await;
                }
            }
            Err(Failed::Other(e)) => return Err(e),
        }
    }
    Err(last)
}

/// Restores the state of `at` (a certified block the caller checked, or one it links to a
/// certified block afterwards) from `sources` into `db` in one attempt: (head, entries, bytes
/// received).
pub async fn restore_once(
    db: &Db,
    sources: &[Arc<dyn Source>],
    at: &Certified,
    genesis_block: &Block,
    progress: Progress<'_>,
) -> Result<(Head, u64, u64), FollowError> {
    let mut bytes = 0;
    match restore(db, sources, at, genesis_block, &mut bytes, progress).await {
        Ok((head, entries)) => Ok((head, entries, bytes)),
        Err(Failed::Liar(_, e)) => Err(FollowError::Restore(e)),
        Err(Failed::Pruned) => Err(FollowError::Source(SourceError::Pruned(format!(
            "height {} is pruned",
            at.height
        )))),
        Err(Failed::Other(e)) => Err(e),
    }
}

/// Why an attempt stopped.
enum Failed {
    /// Source `i` served something that does not prove.
    Liar(usize, RestoreError),
    /// The sources no longer keep the height.
    Pruned,
    Other(FollowError),
}

async fn restore(
    db: &Db,
    sources: &[Arc<dyn Source>],
    at: &Certified,
    genesis_block: &Block,
    bytes: &mut u64,
    progress: Progress<'_>,
) -> Result<(Head, u64), Failed> {
    let mut r =
        Restore::begin(db, at.height, at.header.state_root).map_err(|e| Failed::Other(e.into()))?;
    tracing::info!(height = at.height, signers = at.signers, validators = at.validators, root = %at.header.state_root, "state sync: restoring");
    let mut turn = 0usize;
    // The source that said there is nothing more: if the tree is then incomplete, it lied.
    let ender = loop {
        let mut fetched = None;
        for k in 0..sources.len() {
            let i = (turn + k) % sources.len();
            match sources[i].chunk(at.height, r.after()).await {
                Ok(b) => {
                    *bytes += u64::try_from(b.len()).expect("bounded chunk");
                    let chunk = Chunk::decode(&b).map_err(|e| Failed::Liar(i, e))?;
                    fetched = Some((i, chunk));
                    break;
                }
                Err(SourceError::Pruned(_)) => return Err(Failed::Pruned),
                Err(SourceError::Unreachable(e)) => {
                    tracing::debug!(source = %sources[i].name(), error = %e, "chunk not fetched");
                }
            }
        }
        let Some((i, c)) = fetched else {
            return Err(Failed::Other(FollowError::Source(
                SourceError::Unreachable(format!(
                    "no source answered for the chunk after {} entries",
                    r.entries()
                )),
            )));
        };
        turn = i + 1;
        if c.entries.is_empty() {
            break i;
        }
        let total = c.total;
        r.add(c).map_err(|e| Failed::Liar(i, e))?;
        progress(r.entries(), total);
    };
    let block = certified_block(sources, at).await.map_err(Failed::Other)?;
    let entries = r.entries();
    let head = r.finish(&block, genesis_block).map_err(|e| match e {
        RestoreError::Db(e) => Failed::Other(e.into()),
        e => Failed::Liar(ender, e),
    })?;
    tracing::info!(height = head.height, entries, "state sync: restored");
    Ok((head, entries))
}

/// The block of the certified height, from the first source that serves it whole.
async fn certified_block(
    sources: &[Arc<dyn Source>],
    at: &Certified,
) -> Result<Block, FollowError> {
    for s in sources {
        let Ok(bytes) = s.block(at.height).await else {
            continue;
        };
        match Block::decode(&bytes) {
            Ok(b) if b.header.hash() == at.header.hash() => return Ok(b),
            _ => {
                tracing::warn!(source = %s.name(), height = at.height, "a block that is not the certified one")
            }
        }
    }
    Err(FollowError::Source(SourceError::Unreachable(format!(
        "no source served block {}",
        at.height
    ))))
}
