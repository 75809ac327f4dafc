//! State sync at the database's level: the heights a node offers to sync from, its answers to a
//! follower's requests, and a follower's restore.
//!
//! A node offers the state after some heights ([`Db::offer_head`]: every
//! [`crate::OFFER_SPACING`] heights, and a follower at the heights whose certificate it keeps),
//! recording what its commitment was then ([`Committed`]) and keeping the commitment's log from
//! there. A follower picks an offered height whose block a quorum of validators certified,
//! fetches the answers to [`qmdb::requests`] from any hosts, each checked where it arrives
//! ([`qmdb::check_answer`]), and restores from them ([`Db::restore`]): the commitment is built
//! from the answers and checked against the certified root, then the state table, the history
//! (from the restored height on, as on a pruned node) and the head are written.

use crate::{
    BLOCKS, COMMITS, Db, DbError, HEAD, HEAD_LOG, Head, META, OFFERS, PRUNED_BELOW, Result, STATE,
    dec, enc, qmdb,
};
use crate::{COMMITMENT_CACHE_MIB, Committed};
use kassa_types::{Block, Hash};
use redb::{ReadableDatabase, ReadableTable};

/// The height a restore is writing, until it finishes (absent otherwise).
const RESTORING: &str = "restoring";

/// Entries of the state written per transaction while restoring.
const ENTRIES_PER_WRITE: usize = 4_096;

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The answers do not build the certified state (a host lied or an answer is missing).
    #[error("the answers do not build the certified state: {0}")]
    Answers(String),
    /// The block is not the one the commit describes.
    #[error("block {got} (state root {root}) is not the block of the restored height {expected}")]
    Block { got: u64, root: Hash, expected: u64 },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Db {
    /// Whether the state after `height` is offered ([`Db::offer_head`]): every
    /// [`crate::OFFER_SPACING`] heights, or, on a node keeping only its newest `n` heights,
    /// every `n / 2` (at least every height) when that is more often, so that an offered height
    /// always has its later blocks kept (an audit starts from one); and, on a young chain, at
    /// heights 1, 2, 4, 8 … below that, so that a follower finds a state to start from at once.
    pub fn offers_at(&self, height: u64) -> bool {
        let spacing = self.keep.map_or(crate::OFFER_SPACING, |k| {
            (k / 2).clamp(1, crate::OFFER_SPACING)
        });
        height.is_multiple_of(spacing) || (height < spacing && height.is_power_of_two())
    }

    /// Offers the state after the head to followers ([`Db::offers`]): records what the
    /// commitment is now, keeps the newest [`OFFERS`], and prunes the commitment's log below the
    /// oldest offer and the last durable block.
    pub fn offer_head(&self) -> Result<()> {
        let Some(head) = self.head()? else {
            return Ok(());
        };
        let committed = self.commitment()?.sync_target()?;
        if committed.height != Some(head.height) {
            // A block is being committed: the next offer will do.
            return Ok(());
        }
        let w = self.db.begin_write()?;
        {
            let mut commits = w.open_table(COMMITS)?;
            commits.insert(head.height, enc(&committed).as_slice())?;
            let older: Vec<u64> = commits
                .iter()?
                .rev()
                .skip(OFFERS)
                .map(|e| e.map(|(h, _)| h.value()))
                .collect::<std::result::Result<_, _>>()?;
            for h in older {
                commits.remove(h)?;
            }
        }
        w.commit()?;
        self.prune_log()?;
        Ok(())
    }

    /// The heights this node offers to sync from, oldest first, with what the commitment was
    /// after each.
    pub fn offers(&self) -> Result<Vec<(u64, Committed)>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(COMMITS)?;
        t.iter()?
            .map(|e| {
                let (h, v) = e?;
                Ok((h.value(), dec(v.value())))
            })
            .collect()
    }

    /// A host's answer to a follower's request ([`qmdb::requests`]), for an offered height.
    pub fn serve_sync(&self, request: &[u8]) -> Result<Vec<u8>> {
        Ok(self.commitment()?.serve_sync(request)?)
    }

    /// Whether a restore into this database began and did not finish: the height it was
    /// restoring. Such a database holds part of a state and no head: it must be restored again
    /// ([`Db::restore`] starts over), never used.
    pub fn restoring(&self) -> Result<Option<u64>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(RESTORING)?.map(|v| dec(v.value())))
    }

    /// Restores into this database (which must hold no chain; one whose restore was
    /// interrupted is emptied first) the state of `block`, certified by the caller, whose commit
    /// a host described as `target` ([`qmdb::check_target`] passed against the block's state
    /// root), from `answers` to [`qmdb::requests`]`(target)` (each checked by
    /// [`qmdb::check_answer`]). Commits, durably, `block` as the head and `genesis` (the chain's
    /// genesis block, which a node checks its genesis file against); history below the restored
    /// height is absent, as on a pruned node.
    pub fn restore(
        &self,
        target: &Committed,
        mut answers: crate::Answers,
        block: &Block,
        genesis: &Block,
    ) -> std::result::Result<Head, RestoreError> {
        let height = block.header.height;
        if target.height != Some(height) || target.root != block.header.state_root {
            return Err(RestoreError::Block {
                got: height,
                root: block.header.state_root,
                expected: target.height.unwrap_or_default(),
            });
        }
        if self.head()?.is_some() {
            return Err(DbError::Inconsistent(
                "the database already holds a chain: restore only into an empty one".into(),
            )
            .into());
        }
        self.begin_restore(height)?;

        // The commitment, rebuilt from the answers in place of the empty one.
        let mut slot = self
            .commitment
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(slot.take());
        if self.commitment_dir.exists() {
            std::fs::remove_dir_all(&self.commitment_dir)
                .map_err(|e| DbError::Redb(e.to_string()))?;
        }
        let built = qmdb::Commitment::sync(
            &self.commitment_dir,
            COMMITMENT_CACHE_MIB,
            block.header.state_root,
            target,
            |request| {
                answers
                    .take(&request)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| "an answer is missing".to_string())
            },
        );
        let commitment = match built {
            Ok(c) => c,
            Err(e) => {
                // An empty commitment again, for the next attempt.
                if self.commitment_dir.exists() {
                    let _ = std::fs::remove_dir_all(&self.commitment_dir);
                }
                let empty = qmdb::Commitment::open(&self.commitment_dir, COMMITMENT_CACHE_MIB)
                    .map_err(DbError::from)?;
                *slot = Some(empty);
                return Err(RestoreError::Answers(e.to_string()));
            }
        };
        *slot = Some(commitment);
        drop(slot);

        Ok(self.finish_restore(target, block, genesis)?)
    }

    /// Empties what a restore writes and marks the database as restoring `height`.
    fn begin_restore(&self, height: u64) -> Result<()> {
        let w = self.db.begin_write()?;
        for table in [STATE, crate::history::HISTORY] {
            w.delete_table(table)?;
            w.open_table(table)?;
        }
        w.delete_table(crate::history::HISTORY_BY_HEIGHT)?;
        w.open_table(crate::history::HISTORY_BY_HEIGHT)?;
        w.delete_table(COMMITS)?;
        w.open_table(COMMITS)?;
        {
            w.open_table(BLOCKS)?.retain(|_, _| false)?;
            w.open_table(META)?
                .insert(RESTORING, enc(&height).as_slice())?;
        }
        w.commit()?;

        Ok(())
    }

    /// Writes the state table and the history from the rebuilt commitment, then the blocks and
    /// the head, durably.
    fn finish_restore(&self, target: &Committed, block: &Block, genesis: &Block) -> Result<Head> {
        let height = block.header.height;
        // The state table and the history, from the commitment's current entries.
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self
                .commitment()?
                .entries(after.as_deref(), ENTRIES_PER_WRITE)
                .map_err(DbError::from)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let mut w = self.db.begin_write()?;
            w.set_durability(redb::Durability::None)
                .map_err(|e| DbError::Redb(e.to_string()))?;
            {
                let mut state = w.open_table(STATE)?;
                for (key, value) in &page {
                    state.insert(key.as_slice(), value.as_slice())?;
                }
            }
            crate::history::record(&w, height, page.iter().map(|(k, v)| (&k[..], Some(&v[..]))))?;
            w.commit()?;
        }

        let head = Head {
            height,
            block_hash: block.header.hash(),
            state_root: block.header.state_root,
            time_ms: block.header.timestamp_ms,
        };
        let w = self.db.begin_write()?;
        {
            let mut blocks = w.open_table(BLOCKS)?;
            blocks.insert(0, genesis.encode().as_slice())?;
            blocks.insert(height, block.encode().as_slice())?;
            w.open_table(COMMITS)?
                .insert(height, enc(target).as_slice())?;
            let mut meta = w.open_table(META)?;
            meta.insert(HEAD, enc(&head).as_slice())?;
            meta.insert(HEAD_LOG, enc(&target.end).as_slice())?;
            meta.insert(PRUNED_BELOW, enc(&height).as_slice())?;
            meta.remove(RESTORING)?;
        }
        w.commit()?;
        *self
            .durable_start
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = target.start;
        Ok(head)
    }
}
