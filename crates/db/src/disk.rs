//! [`SimDisk`]: an in-memory disk for the state database that loses power on cue, for the
//! crash-consistency simulations.
//!
//! It keeps what a real disk would have after a power cut: the image as of the last
//! `sync_data`, and the writes (and length changes) made since, in order. [`SimDisk::freeze`] is
//! the moment power goes, or [`SimDisk::freeze_after`] a number of writes and syncs from now
//! (in the middle of a commit, say): from then on every write and sync fails, as the process
//! would have stopped there, and nothing more reaches the disk. [`SimDisk::power_cut`] then
//! decides, from a
//! seed, what of the unsynced writes reached the platter: each survives whole, torn (a prefix of
//! it) or not at all, independently, so the image after the cut is one a real disk could be left
//! with (writes reordered, sectors torn). Synced data always survives. The database reopened on
//! the disk must recover to a consistent commit. [`SimDisk::fail_once_after`] fails one write
//! with an I/O error instead, the power staying on.

use kassa_state::testkit::SplitMix;
use redb::StorageBackend;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// One change not yet synced.
#[derive(Clone, Debug)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Platter {
    /// What a power cut cannot take: the image as of the last sync.
    synced: Vec<u8>,
    /// What reads see: `synced` with `unsynced` applied.
    current: Vec<u8>,
    unsynced: Vec<Change>,
    frozen: bool,
    /// Writes, length changes and syncs still allowed before the power goes.
    budget: Option<u64>,
    /// Writes, length changes and syncs still allowed before one fails with an I/O error
    /// ([`SimDisk::fail_once_after`]); the disk works again after it.
    fail_in: Option<u64>,
}

/// What a power cut did to the writes that were not synced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// Changes that reached the disk whole.
    pub kept: usize,
    /// Writes of which only a prefix reached the disk.
    pub torn: usize,
    /// Changes lost entirely.
    pub lost: usize,
}

/// An in-memory disk shared by handles (one for the database, one for the test that cuts its
/// power).
#[derive(Clone, Debug, Default)]
pub struct SimDisk(Arc<Mutex<Platter>>);

fn apply(image: &mut Vec<u8>, change: &Change) {
    match change {
        Change::Write { offset, data } => {
            let start = usize::try_from(*offset).expect("a simulated disk fits in memory");
            let end = start + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(data);
        }
        Change::SetLen(len) => {
            image.resize(
                usize::try_from(*len).expect("a simulated disk fits in memory"),
                0,
            );
        }
    }
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    fn platter(&self) -> MutexGuard<'_, Platter> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Power goes now: from here on, writes, length changes and syncs fail.
    pub fn freeze(&self) {
        self.platter().frozen = true;
    }

    /// Power goes after `n` more writes, length changes or syncs.
    pub fn freeze_after(&self, n: u64) {
        self.platter().budget = Some(n);
    }

    /// The write, length change or sync `n` from now fails with an I/O error, once, and nothing
    /// of it reaches the disk; the disk keeps its power and works again after it (a bad sector
    /// remapped, a full disk freed). What came before stays as it was.
    pub fn fail_once_after(&self, n: u64) {
        self.platter().fail_in = Some(n);
    }

    /// Whether an I/O error asked for by [`SimDisk::fail_once_after`] is still to come.
    pub fn failure_pending(&self) -> bool {
        self.platter().fail_in.is_some()
    }

    /// Whether the power has gone.
    pub fn frozen(&self) -> bool {
        self.platter().frozen
    }

    /// Leaves the disk as a power cut at [`SimDisk::freeze`] (or now) would, choosing from `seed`
    /// what became of each unsynced change, and powers it back on.
    pub fn power_cut(&self, seed: u64) -> Cut {
        let mut p = self.platter();
        // A seeded choice per change: the same cut for the same seed.
        let mut rng = SplitMix(seed);
        let mut image = std::mem::take(&mut p.synced);
        let mut cut = Cut::default();
        for change in std::mem::take(&mut p.unsynced) {
            match (rng.next_u64() % 3, &change) {
                (0, _) => cut.lost += 1,
                (1, Change::Write { offset, data }) if data.len() > 1 => {
                    let keep =
                        usize::try_from(rng.next_u64() % u64::try_from(data.len()).unwrap_or(1))
                            .unwrap_or(0);
                    apply(
                        &mut image,
                        &Change::Write {
                            offset: *offset,
                            data: data[..keep].to_vec(),
                        },
                    );
                    cut.torn += 1;
                }
                _ => {
                    apply(&mut image, &change);
                    cut.kept += 1;
                }
            }
        }
        p.current = image.clone();
        p.synced = image;
        p.frozen = false;
        p.budget = None;
        cut
    }

    /// Changes made since the last sync.
    pub fn unsynced(&self) -> usize {
        self.platter().unsynced.len()
    }
}

impl StorageBackend for SimDisk {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(u64::try_from(self.platter().current.len()).expect("usize fits in u64"))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let p = self.platter();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = start
            .checked_add(out.len())
            .filter(|end| *end <= p.current.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(&p.current[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.change(Change::SetLen(len))
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut p = self.powered()?;
        let changes = std::mem::take(&mut p.unsynced);
        for c in &changes {
            apply(&mut p.synced, c);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.change(Change::Write {
            offset,
            data: data.to_vec(),
        })
    }
}

impl SimDisk {
    /// The platter, if the power is still on (and spends one unit of the budget).
    fn powered(&self) -> Result<MutexGuard<'_, Platter>, io::Error> {
        let mut p = self.platter();
        match p.budget {
            Some(0) => p.frozen = true,
            Some(n) => p.budget = Some(n - 1),
            None => {}
        }
        if p.frozen {
            return Err(io::Error::other("the simulated disk lost power"));
        }
        match p.fail_in {
            Some(0) => {
                p.fail_in = None;
                return Err(io::Error::other("the simulated disk failed a write"));
            }
            Some(n) => p.fail_in = Some(n - 1),
            None => {}
        }
        Ok(p)
    }

    fn change(&self, c: Change) -> Result<(), io::Error> {
        let mut p = self.powered()?;
        apply(&mut p.current, &c);
        p.unsynced.push(c);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_writes_survive_a_power_cut_and_unsynced_ones_may_not() {
        let disk = SimDisk::new();
        disk.write(0, b"synced").unwrap();
        disk.sync_data().unwrap();
        disk.write(0, b"SYNCED").unwrap();
        disk.freeze_after(1);
        disk.write(6, b"!").unwrap();
        assert!(disk.write(0, b"frozen").is_err() && disk.sync_data().is_err());
        assert!(disk.frozen());
        let mut out = [0u8; 6];
        disk.read(0, &mut out).unwrap();
        assert_eq!(
            &out, b"SYNCED",
            "a write after the power went never happened"
        );
        // Over many seeds the unsynced write is kept, torn and lost; the synced bytes under it
        // are never worse than the old value or a prefix of the new one over it.
        let mut seen = Cut::default();
        for seed in 0..64 {
            let d = SimDisk::new();
            d.write(0, b"synced").unwrap();
            d.sync_data().unwrap();
            d.write(0, b"SYNCED").unwrap();
            let c = d.power_cut(seed);
            d.read(0, &mut out).unwrap();
            let upper = out.iter().take_while(|b| b.is_ascii_uppercase()).count();
            assert_eq!(&out[upper..], &b"synced"[upper..], "seed {seed}: {out:?}");
            assert_eq!(&out[..upper], &b"SYNCED"[..upper]);
            seen.kept += c.kept;
            seen.torn += c.torn;
            seen.lost += c.lost;
        }
        assert!(seen.kept > 0 && seen.torn > 0 && seen.lost > 0, "{seen:?}");
    }

    #[test]
    fn a_write_that_fails_leaves_redb_at_its_last_commit_and_reopened_it_commits_again() {
        use redb::{ReadableDatabase as _, TableDefinition};
        const T: TableDefinition<u64, u64> = TableDefinition::new("t");
        let mut failed_commits = 0;
        for k in 0..40u64 {
            let disk = SimDisk::new();
            let db = redb::Builder::new()
                .create_with_backend(disk.clone())
                .unwrap();
            let commit = |db: &redb::Database, v: u64| -> Result<(), redb::Error> {
                let w = db.begin_write()?;
                w.open_table(T)?.insert(0, v)?;
                w.commit()?;
                Ok(())
            };
            commit(&db, 1).unwrap();
            disk.fail_once_after(k);
            let committed = commit(&db, 2).is_ok();
            if disk.failure_pending() {
                // The commit was over before the failure came.
                assert!(committed, "failure after {k} writes");
                continue;
            }
            failed_commits += u32::from(!committed);
            drop(db);
            // No power was lost: everything written before the failure is on the disk.
            let db = redb::Builder::new()
                .create_with_backend(disk.clone())
                .unwrap_or_else(|e| panic!("failure after {k} writes: does not open: {e}"));
            let v = db
                .begin_read()
                .unwrap()
                .open_table(T)
                .unwrap()
                .get(0)
                .unwrap()
                .unwrap()
                .value();
            assert!(
                v == 2 || (v == 1 && !committed),
                "failure after {k} writes: {v}"
            );
            commit(&db, 3).unwrap();
        }
        assert!(failed_commits > 0, "some failures land inside the commit");
    }

    #[test]
    fn a_commit_cut_short_anywhere_leaves_the_database_at_the_commit_before_or_after_it() {
        use redb::{ReadableDatabase as _, TableDefinition};
        const T: TableDefinition<u64, u64> = TableDefinition::new("t");
        let (mut before, mut after) = (0, 0);
        for k in 0..60u64 {
            let disk = SimDisk::new();
            let db = redb::Builder::new()
                .create_with_backend(disk.clone())
                .unwrap();
            let commit = |v: u64| -> Result<(), redb::Error> {
                let w = db.begin_write()?;
                w.open_table(T)?.insert(0, v)?;
                w.commit()?;
                Ok(())
            };
            commit(1).unwrap();
            disk.freeze_after(k);
            let committed = commit(2).is_ok();
            disk.freeze();
            drop(db);
            disk.power_cut(k);
            let db = redb::Builder::new()
                .create_with_backend(disk.clone())
                .unwrap_or_else(|e| {
                    panic!("cut after {k} writes: the database does not open: {e}")
                });
            let r = db.begin_read().unwrap();
            let v = r.open_table(T).unwrap().get(0).unwrap().unwrap().value();
            assert!(
                v == 2 || (v == 1 && !committed),
                "cut after {k} writes: {v}"
            );
            if v == 1 { before += 1 } else { after += 1 }
        }
        assert!(
            before > 0 && after > 0,
            "cuts land both before and after the commit point"
        );
    }
}
