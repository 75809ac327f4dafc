//! Every version of the keys that history views show ([`kassa_state::keys::versioned`]: the
//! society books, `view::books_at`), in a table of their own: the state key and the height
//! that wrote it, big-endian, so a key's versions are neighbours in height order and the value
//! at a height is the last one at or below it. Kept apart from the commitment, which proves
//! current values; a history view needs the values, not proofs.
//!
//! A pruned database ([`crate::Db::keeping`]) keeps, for each key, its versions from the
//! lowest kept height on and the last one below it (the value at the lowest kept height).

use crate::{Db, DbError, META, PRUNED_BELOW, Result, dec};
use redb::{ReadableDatabase as _, ReadableTable, TableDefinition};
use std::collections::BTreeMap;

/// State key ‖ height (big-endian) → the value written then: `1 ‖ value`, or `0` for a delete.
pub(crate) const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
/// Height (big-endian) ‖ state key → nothing: what a height wrote to [`HISTORY`], for pruning.
pub(crate) const HISTORY_BY_HEIGHT: TableDefinition<&[u8], ()> =
    TableDefinition::new("history_by_height");

fn version_key(key: &[u8], height: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 8);
    k.extend_from_slice(key);
    k.extend_from_slice(&height.to_be_bytes());
    k
}

fn height_key(height: u64, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len());
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// Records, in the write transaction `w`, the versioned keys among `writes` as written at
/// `height`.
pub(crate) fn record<'a>(
    w: &redb::WriteTransaction,
    height: u64,
    writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Result<()> {
    let mut history = w.open_table(HISTORY)?;
    let mut by_height = w.open_table(HISTORY_BY_HEIGHT)?;
    for (key, value) in writes {
        if !kassa_state::keys::versioned(key) {
            continue;
        }
        let row = match value {
            Some(v) => [&[1u8][..], v].concat(),
            None => vec![0],
        };
        history.insert(version_key(key, height).as_slice(), row.as_slice())?;
        by_height.insert(height_key(height, key).as_slice(), ())?;
    }
    Ok(())
}

impl Db {
    /// The values of the versioned state key `key` ([`kassa_state::keys::versioned`]) after
    /// each of `heights` (`None`: none then), read from one snapshot; a height below what a
    /// pruned database keeps is refused ([`DbError::Pruned`]).
    pub fn values_at(&self, key: &[u8], heights: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        if !kassa_state::keys::versioned(key) {
            return Err(DbError::NotVersioned(hex::encode(key)));
        }
        let r = self.db.begin_read()?;
        let pruned_below: u64 = r
            .open_table(META)?
            .get(PRUNED_BELOW)?
            .map_or(0, |v| dec(v.value()));
        if let Some(&low) = heights.iter().min()
            && low < pruned_below
        {
            return Err(DbError::Pruned {
                height: low,
                kept: pruned_below,
            });
        }
        values_at(&r, key, heights)
    }
}

impl kassa_state::view::Versions for Db {
    type Error = DbError;
    fn values_at(&self, key: &[u8], heights: &[u64]) -> Result<Vec<Option<Vec<u8>>>> {
        Db::values_at(self, key, heights)
    }
}

/// The values of `key` after each of `heights` (`None`: no value then), read in `r`.
fn values_at(
    r: &redb::ReadTransaction,
    key: &[u8],
    heights: &[u64],
) -> Result<Vec<Option<Vec<u8>>>> {
    let history = r.open_table(HISTORY)?;
    let from = version_key(key, 0);
    heights
        .iter()
        .map(|&h| {
            let to = version_key(key, h);
            let last = history.range(from.as_slice()..=to.as_slice())?.next_back();
            Ok(match last {
                Some(entry) => {
                    let (_, row) = entry?;
                    match row.value() {
                        [1, value @ ..] => Some(value.to_vec()),
                        _ => None,
                    }
                }
                None => None,
            })
        })
        .collect()
}

/// Deletes, in the write transaction `w`, the versions no height from `below` on needs: for
/// each key a height in `from..below` wrote, every version older than that one.
pub(crate) fn prune(w: &redb::WriteTransaction, from: u64, below: u64) -> Result<()> {
    if below <= from {
        return Ok(());
    }
    let mut history = w.open_table(HISTORY)?;
    let mut by_height = w.open_table(HISTORY_BY_HEIGHT)?;
    let written: Vec<(u64, Vec<u8>)> = by_height
        .range(from.to_be_bytes().as_slice()..below.to_be_bytes().as_slice())?
        .map(|e| {
            e.map(|(k, _)| {
                let k = k.value();
                let height = u64::from_be_bytes(k[..8].try_into().expect("a height"));
                (height, k[8..].to_vec())
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    // The newest version below `below` of each key: everything older goes.
    let newest: BTreeMap<Vec<u8>, u64> = written.into_iter().map(|(h, k)| (k, h)).collect();
    for (key, height) in newest {
        let older: Vec<u64> = history
            .range(version_key(&key, 0).as_slice()..version_key(&key, height).as_slice())?
            .map(|e| {
                e.map(|(k, _)| {
                    let k = k.value();
                    u64::from_be_bytes(k[key.len()..].try_into().expect("a height"))
                })
            })
            .collect::<std::result::Result<_, _>>()?;
        for h in older {
            history.remove(version_key(&key, h).as_slice())?;
            by_height.remove(height_key(h, &key).as_slice())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kassa_state::keys;
    use kassa_types::SocietyId;

    /// What societies 1 and 2's books held after a height.
    type Books = (Option<Vec<u8>>, Option<Vec<u8>>);

    fn commit(db: &Db, height: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let pending = db
            .prepare(height, writes.iter().cloned().collect())
            .unwrap();
        db.commit_block(&pending, None, &[], 0).unwrap();
    }

    /// Blocks 0..40: society 1's book is written at every third height (deleted at 30),
    /// society 2's at 5 only, and an account at every height. Returns what each book held
    /// after each height.
    fn chain(db: &Db) -> Vec<Books> {
        let (one, two) = (keys::book(SocietyId(1)), keys::book(SocietyId(2)));
        let mut held = Vec::new();
        let (mut a, mut b) = (None, None);
        for h in 0..40u64 {
            let mut writes = vec![(b"a-account".to_vec(), Some(h.to_le_bytes().to_vec()))];
            if h % 3 == 0 {
                a = (h != 30).then(|| vec![1, u8::try_from(h).unwrap()]);
                writes.push((one.clone(), a.clone()));
            }
            if h == 5 {
                b = Some(vec![2]);
                writes.push((two.clone(), b.clone()));
            }
            commit(db, h, &writes);
            held.push((a.clone(), b.clone()));
        }
        held
    }

    fn count(db: &Db, key: &[u8]) -> usize {
        let r = db.db.begin_read().unwrap();
        let t = r.open_table(HISTORY).unwrap();
        t.iter()
            .unwrap()
            .filter(|e| e.as_ref().unwrap().0.value().starts_with(key))
            .count()
    }

    #[test]
    fn a_society_book_is_read_as_it_was_after_each_height() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.redb")).unwrap();
        let held = chain(&db);
        let heights: Vec<u64> = (0..40).collect();
        let one = db.values_at(&keys::book(SocietyId(1)), &heights).unwrap();
        let two = db.values_at(&keys::book(SocietyId(2)), &heights).unwrap();
        for h in 0..40 {
            assert_eq!((one[h].clone(), two[h].clone()), held[h], "height {h}");
        }
        assert_eq!(
            db.values_at(&keys::book(SocietyId(3)), &[39]).unwrap(),
            vec![None]
        );
        assert!(
            matches!(
                db.values_at(b"a-account", &[3]),
                Err(DbError::NotVersioned(_))
            ),
            "only versioned keys have a history"
        );
    }

    #[test]
    fn a_pruned_database_keeps_each_book_from_its_lowest_kept_height_on_and_no_older_version() {
        let (a, p) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let archive = Db::open(&a.path().join("state.redb")).unwrap();
        let pruned = Db::open(&p.path().join("state.redb"))
            .unwrap()
            .keeping(Some(10));
        let held = chain(&archive);
        assert_eq!(chain(&pruned), held);
        let kept = pruned.pruned_below().unwrap();
        assert!(kept >= 20, "pruned up to {kept}");
        let heights: Vec<u64> = (kept..40).collect();
        for society in [1, 2] {
            let key = keys::book(SocietyId(society));
            assert_eq!(
                pruned.values_at(&key, &heights).unwrap(),
                archive.values_at(&key, &heights).unwrap(),
                "society {society}"
            );
        }
        assert!(matches!(
            pruned.values_at(&keys::book(SocietyId(1)), &[kept - 1]),
            Err(DbError::Pruned { .. })
        ));
        // Society 2's one version stays; of society 1's, those from the kept heights on and
        // the last one below them.
        assert_eq!(count(&pruned, &keys::book(SocietyId(2))), 1);
        let written_from_kept = (kept..40).filter(|h| h % 3 == 0).count();
        assert_eq!(
            count(&pruned, &keys::book(SocietyId(1))),
            written_from_kept + 1
        );
        assert_eq!(count(&archive, &keys::book(SocietyId(1))), 14);
    }
}
