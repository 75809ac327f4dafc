//! The commitment's thread: it answers the handle's commands one at a time, holding the
//! database and the batches prepared and not yet committed.

use super::{
    Batch, Command, CommitmentError, Committed, Digest, KeyProof, ProvenKey, Result, State,
    hash_of, store, sync,
};
use commonware_codec::Encode as _;
use commonware_cryptography::Sha256;
use commonware_storage::qmdb::floor::Proportional;
use futures::StreamExt as _;
use futures::channel::mpsc;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The height the last commit carries as its metadata (`None` before the first).
pub(super) async fn metadata_height(db: &State) -> Result<Option<u64>> {
    let metadata = db.get_metadata().await.map_err(store)?;
    metadata
        .map(|m| {
            <[u8; 8]>::try_from(m.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| CommitmentError::Store("a commit's height".into()))
        })
        .transpose()
}

/// What the last commit of `db` is.
pub(super) async fn committed_of(db: &State) -> Result<Committed> {
    let witness = db.ops_root_witness().await.map_err(store)?;
    Ok(Committed {
        root: hash_of(&db.root()),
        height: metadata_height(db).await?,
        ops_root: hash_of(&db.ops_root()),
        witness: witness.encode().to_vec(),
        start: *db.sync_boundary(),
        end: *db.bounds().end,
    })
}

/// The committed root, `key`'s stored row, and the proof of it (or of its absence).
async fn prove(db: &State, key: Digest) -> Result<ProvenKey> {
    let root = hash_of(&db.root());
    match db.get(&key).await.map_err(store)? {
        Some(row) => {
            let proof = db.key_value_proof(key).await.map_err(store)?;
            Ok((root, Some(row), KeyProof::Present(proof.encode().to_vec())))
        }
        None => {
            let proof = db.exclusion_proof(&key).await.map_err(store)?;
            Ok((root, None, KeyProof::Absent(proof.encode().to_vec())))
        }
    }
}

/// Answers the commitment's commands until its handle is dropped.
pub(super) async fn serve(
    mut db: State,
    mut commands: mpsc::UnboundedReceiver<Command>,
) -> std::result::Result<(), String> {
    let mut batches: BTreeMap<u64, Arc<Batch>> = BTreeMap::new();
    let mut next_id = 0u64;
    // The batch committed last: a child prepared on it builds on the committed state.
    let mut last_committed = None;
    while let Some(command) = commands.next().await {
        match command {
            Command::Prepare {
                parent,
                height,
                writes,
                reply,
            } => {
                let batch = match parent {
                    None => Ok(db.new_batch()),
                    Some(id) if Some(id) == last_committed => Ok(db.new_batch()),
                    Some(id) => batches
                        .get(&id)
                        .map(|p| p.new_batch::<Sha256>())
                        .ok_or(CommitmentError::UnknownBatch(id)),
                };
                let prepared = match batch {
                    Err(e) => Err(e),
                    Ok(mut batch) => {
                        for (k, v) in writes {
                            batch = batch.write(k, v);
                        }
                        let metadata = Some(height.to_be_bytes().to_vec());
                        match batch.merkleize(&db, metadata, &mut Proportional).await {
                            Ok(m) => {
                                let id = next_id;
                                next_id += 1;
                                let root = hash_of(&m.root());
                                batches.insert(id, m);
                                Ok((id, root))
                            }
                            Err(e) => Err(store(e)),
                        }
                    }
                };
                let _ = reply.send(prepared);
            }
            Command::Commit { id, durable, reply } => {
                let Some(batch) = batches.remove(&id) else {
                    let _ = reply.send(Err(CommitmentError::UnknownBatch(id)));
                    continue;
                };
                let committed = async {
                    let db = db.apply_batch(batch).await?;
                    if durable { db.commit().await } else { Ok(db) }
                }
                .await;
                match committed {
                    Ok(committed) => {
                        db = committed;
                        last_committed = Some(id);
                        let _ = reply.send(committed_of(&db).await);
                    }
                    // The database is gone with the failed step: the caller learns why, and
                    // every later call finds the commitment stopped.
                    Err(e) => {
                        let _ = reply.send(Err(store(&e)));
                        return Err(e.to_string());
                    }
                }
            }
            Command::Prune { to, reply } => {
                let to = to.min(*db.sync_boundary());
                match db.prune(to.into()).await {
                    Ok(pruned) => {
                        db = pruned;
                        let _ = reply.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(store(&e)));
                        return Err(e.to_string());
                    }
                }
            }
            Command::Forget { id } => {
                batches.remove(&id);
            }
            Command::Root { reply } => {
                let _ = reply.send(hash_of(&db.root()));
            }
            Command::Height { reply } => {
                let _ = reply.send(metadata_height(&db).await);
            }
            Command::Sync(command) => sync::answer(&db, command).await,
            Command::Get { key, reply } => {
                let _ = reply.send(db.get(&key).await.map_err(store));
            }
            Command::ProveMany { keys, reply } => {
                let mut proven = Vec::with_capacity(keys.len());
                let height = metadata_height(&db).await;
                let answer = async {
                    let height = height?;
                    for key in keys {
                        let (root, row, proof) = prove(&db, key).await?;
                        proven.push((height, root, row, proof));
                    }
                    Ok(proven)
                }
                .await;
                let _ = reply.send(answer);
            }
            Command::Prove { key, reply } => {
                let _ = reply.send(prove(&db, key).await);
            }
            Command::Durable { reply } => match db.commit().await {
                Ok(committed) => {
                    db = committed;
                    let _ = reply.send(Ok(()));
                }
                Err(e) => {
                    let _ = reply.send(Err(store(&e)));
                    return Err(e.to_string());
                }
            },
        }
    }
    db.sync().await.map_err(|e| e.to_string())?;
    Ok(())
}
