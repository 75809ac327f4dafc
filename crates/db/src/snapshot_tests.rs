//! Restoring a state from chunks: what an honest server gives is the certified state, and what
//! a lying one gives is refused.

use super::*;
use crate::PendingState;
use kassa_state::testkit::SplitMix;
use kassa_state::{ScanStore, Store};
use kassa_types::BlockHeader;
use kassa_types::codec::BoundedVec;
use std::collections::BTreeMap;

/// A block at `height` whose header carries `state_root` (no transactions).
fn block(height: u64, state_root: Hash) -> Block {
    Block {
        header: BlockHeader {
            height,
            parent: Hash::default(),
            timestamp_ms: 1_000 + height,
            proposer: kassa_types::Address([7; 32]),
            tx_root: Hash::default(),
            state_root,
            consensus: BoundedVec::new(Vec::new()).unwrap(),
        },
        txs: BoundedVec::new(Vec::new()).unwrap(),
    }
}

fn book() -> Vec<u8> {
    kassa_state::keys::book(kassa_types::SocietyId(1))
}

/// A database with `heights` blocks of inserts, updates and deletions over `keys` keys (every
/// height's state is kept); returns it with the model of its last state.
fn source(dir: &std::path::Path, heights: u64, keys: u64) -> (Db, BTreeMap<Vec<u8>, Vec<u8>>) {
    let db = Db::open(&dir.join("source.redb")).unwrap();
    let mut rng = SplitMix(41);
    let mut model = BTreeMap::new();
    for height in 0..heights {
        let mut writes = BTreeMap::new();
        for _ in 0..rng.next_u64() % (keys / 2) + 1 {
            let key = format!("k{}", rng.next_u64() % keys).into_bytes();
            let value = (height == 0 || !rng.next_u64().is_multiple_of(5)).then(|| {
                rng.next_u64()
                    .to_le_bytes()
                    .repeat(1 + (rng.next_u64() % 3) as usize)
            });
            writes.insert(key, value);
        }
        // A society's book, whose versions are kept for history views.
        if height % 5 == 0 {
            writes.insert(book(), Some(height.to_le_bytes().to_vec()));
        }
        for (k, v) in &writes {
            match v {
                Some(v) => model.insert(k.clone(), v.clone()),
                None => model.remove(k),
            };
        }
        let pending = db.prepare(height, writes).unwrap();
        let b = block(height, pending.state_root);
        db.commit_block(&pending, Some(&b), &[], b.header.timestamp_ms)
            .unwrap();
    }
    (db, model)
}

/// Restores `height` of `from` into `into`, `per` entries a chunk, passing each chunk through
/// `tamper` (chunk number, chunk) first.
fn restore(
    from: &Db,
    into: &Db,
    height: u64,
    per: usize,
    mut tamper: impl FnMut(usize, &mut Chunk),
) -> std::result::Result<Head, RestoreError> {
    let root = from.root_at(height).unwrap();
    let mut r = Restore::begin(into, height, root)?;
    for n in 0.. {
        let mut chunk = from.snapshot_chunk(height, r.after(), per).unwrap();
        tamper(n, &mut chunk);
        if chunk.entries.is_empty() {
            break;
        }
        r.add(chunk)?;
    }
    let b = from.block(height).unwrap().unwrap();
    r.finish(&b, &from.block(0).unwrap().unwrap())
}

#[test]
fn a_state_restored_chunk_by_chunk_is_the_certified_state_proves_as_the_source_and_takes_the_next_block_alike()
 {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path(), 12, 400);
    let height = 8;
    let into = Db::open(&dir.path().join("restored.redb")).unwrap();
    let head = restore(&src, &into, height, 37, |_, _| {}).unwrap();
    assert_eq!(head.height, height);
    assert_eq!(head.state_root, src.root_at(height).unwrap());
    assert_eq!(into.head().unwrap().unwrap(), head);
    assert_eq!(into.restoring().unwrap(), None);
    // Every key (present or not) reads and proves as at the source's height.
    let reader = into.reader().unwrap();
    for i in 0..400 {
        let key = format!("k{i}").into_bytes();
        let (value, proof) = src.prove(&key, height).unwrap();
        assert_eq!(reader.get(&key), value, "state table, key {i}");
        let (restored, restored_proof) = into.prove(&key, height).unwrap();
        assert_eq!(restored, value, "tree, key {i}");
        assert!(crate::verify_proof(
            &head.state_root,
            &key,
            value.as_deref(),
            &restored_proof
        ));
        assert_eq!(
            crate::encode_proof(&restored_proof),
            crate::encode_proof(&proof),
            "key {i}"
        );
    }
    // History below the restored height is absent, as on a pruned node; the history of a
    // society's book starts at it.
    assert!(matches!(
        into.prove(b"k1", height - 1),
        Err(DbError::Pruned { .. })
    ));
    assert_eq!(
        into.values_at(&book(), &[height]).unwrap(),
        vec![Some(5u64.to_le_bytes().to_vec())]
    );
    assert!(matches!(
        into.values_at(&book(), &[height - 1]),
        Err(DbError::Pruned { .. })
    ));
    assert_eq!(into.pruned_below().unwrap(), height);
    assert!(into.block(0).unwrap().is_some() && into.block(height - 1).unwrap().is_none());
    // The next block (updates, inserts, deletions, moved leaves) gives the same root on both.
    let mut writes = BTreeMap::new();
    for i in (0..400u32).step_by(3) {
        let key = format!("k{i}").into_bytes();
        writes.insert(key, (i % 2 == 0).then(|| i.to_le_bytes().to_vec()));
    }
    writes.insert(b"a brand new key".to_vec(), Some(b"v".to_vec()));
    let replay = Db::open(&dir.path().join("replay.redb")).unwrap();
    let again = restore(&src, &replay, height, 4_096, |_, _| {}).unwrap();
    assert_eq!(again, head, "one chunk or many, the same restore");
    let next: PendingState = into.prepare(height + 1, writes.clone()).unwrap();
    let at_source = {
        // The source's own history from `height` on is another chain: compare with a fresh
        // copy of it instead, restored in one chunk.
        replay.prepare(height + 1, writes).unwrap()
    };
    assert_eq!(next.state_root, at_source.state_root);
    into.commit_block(&next, None, &[], 0).unwrap();
    assert_eq!(
        into.reader().unwrap().get(b"a brand new key"),
        Some(b"v".to_vec())
    );
}

#[test]
fn a_restored_state_takes_the_next_block_to_the_same_root_as_the_chain_that_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let (src, model) = source(dir.path(), 10, 300);
    // Restore the source's head, then apply the same block to both.
    let height = 9;
    let into = Db::open(&dir.path().join("restored.redb")).unwrap();
    restore(&src, &into, height, 50, |_, _| {}).unwrap();
    let mut writes = BTreeMap::new();
    for (i, key) in model.keys().enumerate().filter(|(i, _)| i % 4 == 0) {
        writes.insert(key.clone(), (i % 8 != 0).then(|| b"changed".to_vec()));
    }
    writes.insert(b"k-new".to_vec(), Some(b"new".to_vec()));
    let a = src.prepare(height + 1, writes.clone()).unwrap();
    let b = into.prepare(height + 1, writes).unwrap();
    assert_eq!(a.state_root, b.state_root);
}

#[test]
fn a_chunk_with_a_changed_value_a_missing_entry_or_an_added_entry_is_refused_and_poisons_the_restore()
 {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path(), 6, 200);
    type Tamper = fn(&mut Chunk);
    let cases: [(&str, Tamper); 4] = [
        ("a changed value", |c| c.entries[3].1.push(1)),
        ("a missing entry", |c| {
            c.entries.remove(2);
        }),
        ("an added entry", |c| {
            // A key whose hash falls between two of the chunk's, or at least after the last.
            c.entries
                .push((b"not in the state".to_vec(), b"x".to_vec()));
            c.entries.sort_by_key(|(k, _)| key_hash(k));
        }),
        ("another chunk's proof", |c| {
            c.entries.truncate(5);
        }),
    ];
    for (i, (what, tamper)) in cases.into_iter().enumerate() {
        let into = Db::open(&dir.path().join(format!("bad{i}.redb"))).unwrap();
        let e = restore(&src, &into, 5, 20, |n, c| {
            if n == 1 && !c.entries.is_empty() {
                tamper(c)
            }
        })
        .unwrap_err();
        assert!(matches!(e, RestoreError::Proof(_)), "{what}: {e}");
        assert_eq!(into.head().unwrap(), None, "{what}: nothing is the chain's");
        assert_eq!(into.restoring().unwrap(), Some(5), "{what}");
    }
    // Once refused, a restore takes nothing more.
    let into = Db::open(&dir.path().join("poisoned.redb")).unwrap();
    let mut r = Restore::begin(&into, 5, src.root_at(5).unwrap()).unwrap();
    let mut bad = src.snapshot_chunk(5, None, 20).unwrap();
    let good = bad.clone();
    bad.entries[0].1.push(0);
    assert!(matches!(r.add(bad), Err(RestoreError::Proof(_))));
    assert!(matches!(r.add(good), Err(RestoreError::Poisoned)));
}

#[test]
fn a_chunk_out_of_order_or_repeating_a_key_is_refused_before_anything_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path(), 4, 200);
    let into = Db::open(&dir.path().join("r.redb")).unwrap();
    let mut r = Restore::begin(&into, 3, src.root_at(3).unwrap()).unwrap();
    let first = src.snapshot_chunk(3, None, 10).unwrap();
    let mut swapped = first.clone();
    swapped.entries.swap(0, 1);
    assert!(matches!(r.add(swapped), Err(RestoreError::Order)));
    r.add(first.clone()).unwrap();
    // The same chunk again repeats keys already restored.
    assert!(matches!(r.add(first), Err(RestoreError::Order)));
}

#[test]
fn a_server_that_stops_early_or_a_block_of_another_height_or_root_is_refused_at_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path(), 6, 200);
    let into = Db::open(&dir.path().join("early.redb")).unwrap();
    let e = restore(&src, &into, 5, 10, |n, c| {
        if n == 2 {
            c.entries.clear();
        }
    })
    .unwrap_err();
    assert!(matches!(e, RestoreError::Root { .. }), "{e}");
    assert_eq!(into.head().unwrap(), None);

    let into = Db::open(&dir.path().join("block.redb")).unwrap();
    let mut r = Restore::begin(&into, 5, src.root_at(5).unwrap()).unwrap();
    while let Ok(c) = src.snapshot_chunk(5, r.after(), 100) {
        if c.entries.is_empty() {
            break;
        }
        r.add(c).unwrap();
    }
    let other = src.block(4).unwrap().unwrap();
    let e = r
        .finish(&other, &src.block(0).unwrap().unwrap())
        .unwrap_err();
    assert!(matches!(e, RestoreError::Block { .. }), "{e}");
}

#[test]
fn an_interrupted_restore_is_marked_and_starts_over_from_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (src, model) = source(dir.path(), 5, 200);
    let path = dir.path().join("r.redb");
    {
        let into = Db::open(&path).unwrap();
        let mut r = Restore::begin(&into, 4, src.root_at(4).unwrap()).unwrap();
        r.add(src.snapshot_chunk(4, None, 30).unwrap()).unwrap();
        // Stopped here (dropped, as by a crash after the chunk's commit).
    }
    let into = Db::open(&path).unwrap();
    assert_eq!(into.restoring().unwrap(), Some(4));
    assert_eq!(into.head().unwrap(), None);
    restore(&src, &into, 4, 30, |_, _| {}).unwrap();
    let reader = into.reader().unwrap();
    assert_eq!(
        reader.scan_prefix(b"").len(),
        model.len(),
        "exactly the state's keys, none left from the first attempt"
    );
    // A database that holds a chain is never restored over.
    assert!(Restore::begin(&into, 4, Hash::default()).is_err());
}

#[test]
fn a_chunk_is_served_only_for_a_kept_height_and_decodes_only_within_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path(), 3, 100);
    assert!(
        src.snapshot_chunk(3, None, 10).is_err(),
        "a height not yet committed"
    );
    let c = src.snapshot_chunk(2, None, 10).unwrap();
    assert_eq!(Chunk::decode(&c.encode()).unwrap().entries, c.entries);
    let mut long = c.encode();
    long.push(0);
    assert!(matches!(
        Chunk::decode(&long),
        Err(RestoreError::Malformed(_))
    ));
    let too_many = Chunk {
        entries: vec![(b"k".to_vec(), b"v".to_vec()); CHUNK_ENTRIES_MAX + 1],
        ..c.clone()
    };
    assert!(matches!(
        Chunk::decode(&too_many.encode()),
        Err(RestoreError::Malformed(_))
    ));
    let long_key = Chunk {
        entries: vec![(vec![1; KEY_LEN_MAX + 1], b"v".to_vec())],
        ..c
    };
    assert!(matches!(
        Chunk::decode(&long_key.encode()),
        Err(RestoreError::Malformed(_))
    ));

    let pruned = Db::open(&dir.path().join("pruned.redb"))
        .unwrap()
        .keeping(Some(2));
    for height in 0..12 {
        let mut writes = BTreeMap::new();
        writes.insert(format!("k{height}").into_bytes(), Some(vec![1]));
        let p = pruned.prepare(height, writes).unwrap();
        pruned.commit_block(&p, None, &[], 0).unwrap();
    }
    assert!(matches!(
        pruned.snapshot_chunk(1, None, 10),
        Err(DbError::Pruned { .. })
    ));
    assert_eq!(
        pruned.snapshot_chunk(11, None, 100).unwrap().entries.len(),
        12
    );
}

#[test]
fn a_restore_started_over_at_another_height_keeps_no_history_of_the_first_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = source(dir.path(), 12, 100);
    let path = dir.path().join("r.redb");
    {
        let into = Db::open(&path).unwrap();
        let mut r = Restore::begin(&into, 8, src.root_at(8).unwrap()).unwrap();
        // One chunk holds the whole state, the society's book with it.
        r.add(src.snapshot_chunk(8, None, CHUNK_ENTRIES_MAX).unwrap())
            .unwrap();
        // Stopped before finishing.
    }
    let into = Db::open(&path).unwrap();
    restore(&src, &into, 11, 30, |_, _| {}).unwrap();
    use redb::{ReadableDatabase as _, ReadableTable as _};
    let r = into.db.begin_read().unwrap();
    let versions = r
        .open_table(crate::history::HISTORY)
        .unwrap()
        .iter()
        .unwrap()
        .count();
    assert_eq!(versions, 1, "only the book as restored at height 11");
    assert_eq!(
        into.values_at(&book(), &[11]).unwrap(),
        vec![Some(10u64.to_le_bytes().to_vec())]
    );
}
