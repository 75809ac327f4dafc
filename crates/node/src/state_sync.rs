//! State sync: a node restores the state of a recent certified height instead of replaying the
//! chain from genesis. A source offers heights with what its state's commitment was after each;
//! the node takes the newest offered height whose certificate a quorum of the validators signed
//! and whose commitment is under that block's state root ([`kassa_db::qmdb::check_target`]),
//! fetches the answers to the state's requests ([`kassa_db::qmdb::requests`]) from its sources
//! in turn, each checked where it arrives ([`kassa_db::qmdb::check_answer`]), then builds the
//! state from them ([`kassa_db::Db::restore`]). A source whose answer does not prove is dropped
//! and the others asked.

use crate::follow::{Certified, FollowError, Source, SourceError, Trust, check};
use futures::future::BoxFuture;
use kassa_db::{Committed, Db, Head, RestoreError, qmdb};
use kassa_types::Block;
use std::sync::Arc;
use std::time::Duration;

/// What a state sync did.
#[derive(Debug)]
pub struct Synced {
    pub head: Head,
    /// Answers of state sync used (ranges of the state's operations).
    pub answers: u64,
    /// Bytes of answers received (those of abandoned attempts too).
    pub bytes: u64,
    /// Validators who signed the certificate of the restored height, of how many.
    pub signers: usize,
    pub validators: usize,
    /// Restores started over (a lying source, or a height no longer kept).
    pub restarts: u32,
    /// The certificate of the restored height (the follower serves it).
    pub certificate: Vec<u8>,
}

/// How far a restore is: answers fetched, of how many.
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
/// certified height the first answering source offers, trusting only `trust`; `genesis_block`
/// is the chain's genesis block, computed from the genesis. A source whose answer does not prove
/// is dropped and the others asked; a height the sources stop offering starts the restore over
/// at once at a newer one; a moment when none of them answers starts it over after a
/// [`retry_pause`] (`pause`). At most the sources' count and four attempts in all.
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
        let mut liars = Vec::new();
        for (i, s) in live.iter().enumerate() {
            match newest_offer(s.as_ref(), trust, rng).await {
                Ok(c) => {
                    at = Some(c);
                    break;
                }
                Err(e @ FollowError::Restore(_)) => {
                    tracing::warn!(source = %s.name(), error = %e, "state sync: a source offers a state its certified block does not commit to; dropped");
                    liars.push(i);
                    last = e;
                }
                Err(e) => last = e,
            }
        }
        for i in liars.into_iter().rev() {
            live.remove(i);
        }
        let Some((at, target)) = at else {
            // None offers a state it can show certified (a young chain, or all unreachable):
            // ask again after a pause, within the attempts.
            if restarts + 1 < attempts {
                let wait = retry_pause(unanswered);
                unanswered += 1;
                tracing::warn!(error = %last, wait_s = wait.as_secs(), "state sync: no source offers a state yet; asking again after a pause");
                pause(wait).await;
            }
            continue;
        };
        match restore(db, &live, &at, &target, genesis_block, &mut bytes, progress).await {
            Ok((head, answers)) => {
                return Ok(Synced {
                    head,
                    answers,
                    bytes,
                    signers: at.signers,
                    validators: at.validators,
                    restarts,
                    certificate: at.certificate,
                });
            }
            Err(Failed::Liar(i, e)) => {
                tracing::warn!(source = %live[i].name(), error = %e, "state sync: a source served an answer that does not prove; dropped");
                live.remove(i);
                last = FollowError::Restore(e);
            }
            Err(Failed::Pruned) => {
                tracing::warn!(
                    height = at.height,
                    "state sync: the height is no longer offered; starting over at a newer one"
                );
            }
            // No source answered a request (or for the block): start over after a pause,
            // within the attempts.
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
/// certified block afterwards), whose commitment a source described as `target`, from `sources`
/// into `db` in one attempt: (head, answers, bytes received).
pub async fn restore_once(
    db: &Db,
    sources: &[Arc<dyn Source>],
    at: &Certified,
    target: &Committed,
    genesis_block: &Block,
    progress: Progress<'_>,
) -> Result<(Head, u64, u64), FollowError> {
    qmdb::check_target(&at.header.state_root, target)
        .map_err(|e| FollowError::Restore(RestoreError::Answers(e.to_string())))?;
    let mut bytes = 0;
    match restore(db, sources, at, target, genesis_block, &mut bytes, progress).await {
        Ok((head, answers)) => Ok((head, answers, bytes)),
        Err(Failed::Liar(_, e)) => Err(FollowError::Restore(e)),
        Err(Failed::Pruned) => Err(FollowError::Source(SourceError::Pruned(format!(
            "height {} is no longer offered",
            at.height
        )))),
        Err(Failed::Other(e)) => Err(e),
    }
}

/// The newest height `source` offers whose certificate it serves and checks against `trust`,
/// and whose commitment the certified block's state root commits to: (the certified block, the
/// commitment). An offer whose commitment is not under the certified root is a lie
/// ([`FollowError::Restore`]); one it has no certificate for is passed over.
pub async fn newest_offer(
    source: &dyn Source,
    trust: &Trust,
    rng: &mut impl rand_core_10::CryptoRng,
) -> Result<(Certified, Committed), FollowError> {
    let offers = source.offers().await?;
    // The genesis state is no shortcut: a node follows from it.
    for (height, target) in offers.into_iter().rev().filter(|(h, _)| *h > 0) {
        let Some(f) = source.finality(height).await? else {
            continue;
        };
        if f.height != height {
            continue;
        }
        let certified = check(trust, rng, &f)?;
        if target.height != Some(height) {
            return Err(FollowError::Restore(RestoreError::Answers(format!(
                "an offer of height {height} describes height {:?}",
                target.height
            ))));
        }
        qmdb::check_target(&certified.header.state_root, &target)
            .map_err(|e| FollowError::Restore(RestoreError::Answers(e.to_string())))?;
        return Ok((certified, target));
    }
    Err(FollowError::Source(SourceError::Unreachable(format!(
        "{} offers no state whose certificate it serves",
        source.name()
    ))))
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
    target: &Committed,
    genesis_block: &Block,
    bytes: &mut u64,
    progress: Progress<'_>,
) -> Result<(Head, u64), Failed> {
    tracing::info!(height = at.height, signers = at.signers, validators = at.validators, root = %at.header.state_root, "state sync: restoring");
    let requests = qmdb::requests(target);
    let total = u64::try_from(requests.len()).expect("a count");
    let mut answers = kassa_db::Answers::new(db).map_err(|e| Failed::Other(e.into()))?;
    let mut turn = 0usize;
    for (n, request) in requests.into_iter().enumerate() {
        let mut fetched = None;
        for k in 0..sources.len() {
            let i = (turn + k) % sources.len();
            match sources[i].sync(request.clone()).await {
                Ok(answer) => {
                    *bytes += u64::try_from(answer.len()).expect("bounded answer");
                    qmdb::check_answer(target, &request, &answer)
                        .map_err(|e| Failed::Liar(i, RestoreError::Answers(e.to_string())))?;
                    fetched = Some((i, answer));
                    break;
                }
                Err(SourceError::Pruned(_)) => return Err(Failed::Pruned),
                Err(SourceError::Unreachable(e)) => {
                    tracing::debug!(source = %sources[i].name(), error = %e, "answer not fetched");
                }
            }
        }
        let Some((i, answer)) = fetched else {
            return Err(Failed::Other(FollowError::Source(
                SourceError::Unreachable(format!("no source answered request {n} of {total}")),
            )));
        };
        turn = i + 1;
        answers
            .insert(request, &answer)
            .map_err(|e| Failed::Other(e.into()))?;
        progress(u64::try_from(n + 1).expect("a count"), total);
    }
    let block = certified_block(sources, at).await.map_err(Failed::Other)?;
    // Every answer was checked where it arrived: what fails now is this node's own.
    let head = db
        .restore(target, answers, &block, genesis_block)
        .map_err(|e| match e {
            RestoreError::Db(e) => Failed::Other(e.into()),
            e => Failed::Other(FollowError::Restore(e)),
        })?;
    tracing::info!(
        height = head.height,
        answers = total,
        "state sync: restored"
    );
    Ok((head, total))
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
