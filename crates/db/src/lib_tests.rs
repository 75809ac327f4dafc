//! The tree updates compared with `jmt`'s own, node for node and proof by proof.

use super::*;
use kassa_state::testkit::SplitMix;

/// Commits blocks of random writes (`blocks` of them, each of up to `most` writes over
/// `keys` keys, deleting a key in one write of `delete_one_in` in every other block), and
/// checks at each that the three ways of updating the tree give the same root, and without
/// deletions the same nodes and leaf values; then that every key the block wrote, and a
/// sample of the others, is proven at its value (or absent) against the committed root.
/// Returns how many blocks took the batched path, how many of those the two-thread one, and
/// how many deleted a key that was there.
fn compare_tree_updates(
    seed: u64,
    blocks: u64,
    most: u64,
    keys: u64,
    delete_one_in: u64,
) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("state.redb")).unwrap();
    // The same "random" blocks on every run.
    let mut rng = SplitMix(seed);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let (mut batched_blocks, mut parallel_blocks, mut deleting_blocks) = (0, 0, 0);
    for height in 0..blocks {
        let mut writes = BTreeMap::new();
        let n = rng.next_u64() % (most + 1);
        let deletes = height % 2 == 1;
        for _ in 0..n {
            let key = (rng.next_u64() % keys).to_be_bytes().to_vec();
            let value = if deletes && rng.next_u64().is_multiple_of(delete_one_in) {
                None
            } else {
                Some(rng.next_u64().to_le_bytes().to_vec())
            };
            writes.insert(key, value);
        }
        let reader = db.reader().unwrap();
        let stacked = Stacked {
            base: &reader,
            below: &[],
        };
        let one = update_tree(&stacked, &writes, height, Update::Sequential).unwrap();
        let jmt = update_tree(&stacked, &writes, height, Update::JmtBatched).unwrap();
        let ours = update_tree(&stacked, &writes, height, Update::Batched).unwrap();
        let inserts_only = writes.values().all(Option::is_some);
        for (name, other) in [("jmt's batch", &jmt), ("key by key", &one)] {
            assert_eq!(ours.0, other.0, "root at height {height}, against {name}");
            if inserts_only {
                assert_eq!(
                    ours.1.nodes(),
                    other.1.nodes(),
                    "nodes at height {height}, against {name}"
                );
                assert_eq!(ours.2, other.2, "leaf values at {height}, against {name}");
            }
        }
        if !writes.is_empty() {
            batched_blocks += 1;
            if height > 0 && writes.len() >= batch::PARALLEL_MIN {
                parallel_blocks += 1;
            }
        }
        if writes
            .iter()
            .any(|(k, v)| v.is_none() && model.contains_key(k))
        {
            deleting_blocks += 1;
        }
        for (k, v) in &writes {
            match v {
                Some(v) => model.insert(k.clone(), v.clone()),
                None => model.remove(k),
            };
        }
        let pending = db.prepare(height, writes.clone()).unwrap();
        assert_eq!(pending.state_root, Hash(ours.0.0));
        db.commit_block(&pending, None, &[], 0).unwrap();
        let root = RootHash(pending.state_root.0);
        let sample = (0..50).map(|_| (rng.next_u64() % keys).to_be_bytes().to_vec());
        for key in writes.into_keys().chain(sample) {
            let (value, proof) = db.prove(&key, height).unwrap();
            let expected = model.get(&key);
            assert_eq!(value.as_ref(), expected, "{key:?} at height {height}");
            proof
                .verify(root, key_hash(&key), expected)
                .unwrap_or_else(|e| panic!("{key:?} at height {height}: {e}"));
        }
    }
    (batched_blocks, parallel_blocks, deleting_blocks)
}

#[test]
fn a_batched_tree_update_gives_the_same_root_as_jmt_key_by_key_and_batched_and_the_same_nodes_without_deletions()
 {
    // Blocks of 0 to 300 writes over 500 keys: new keys, updates, and deletions.
    let (batched, _, deleting) = compare_tree_updates(7, 40, 300, 500, 4);
    assert!(batched >= 30, "the batched path ran {batched} times");
    assert!(deleting >= 15, "{deleting} blocks deleted a key");
}

#[test]
fn a_batched_tree_update_matches_jmt_from_one_key_up_and_over_a_large_key_space() {
    // Blocks of 0 to 3 writes: a tree that is empty, then one leaf at the root, then a few
    // leaves that split it and deletions that empty it again.
    let (batched, _, deleting) = compare_tree_updates(11, 60, 3, 8, 2);
    assert!(batched >= 40, "the batched path ran {batched} times");
    assert!(deleting >= 10, "{deleting} blocks deleted a key");
    // Blocks of up to 3,000 writes over 100,000 keys: deeper trees, leaves moved down by
    // neighbours sharing several nibbles and up when those go.
    // Blocks of at least `PARALLEL_MIN` keys are built on two threads, the root's children
    // split between them.
    let (batched, parallel, deleting) = compare_tree_updates(13, 16, 3_000, 100_000, 3);
    assert!(batched >= 10, "the batched path ran {batched} times");
    assert!(parallel >= 2, "the two-thread path ran {parallel} times");
    assert!(deleting >= 4, "{deleting} blocks deleted a key");
}

#[test]
fn deleting_every_key_leaves_the_empty_tree_and_deleting_absent_keys_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("state.redb")).unwrap();
    let keys: Vec<Vec<u8>> = (0u64..40).map(|k| k.to_be_bytes().to_vec()).collect();
    let block = |value: Option<Vec<u8>>, range: std::ops::Range<usize>| {
        keys[range]
            .iter()
            .map(|k| (k.clone(), value.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let blocks = [
        block(Some(b"v".to_vec()), 0..40),
        // Absent keys only: the same root under the next version.
        block(None, 0..0)
            .into_iter()
            .chain([(b"absent".to_vec(), None)])
            .collect(),
        block(None, 0..39),
        // The last key: the empty tree.
        block(None, 39..40),
        block(Some(b"w".to_vec()), 5..7),
    ];
    let mut roots = Vec::new();
    for (height, writes) in (0u64..).zip(blocks) {
        let reader = db.reader().unwrap();
        let stacked = Stacked {
            base: &reader,
            below: &[],
        };
        let one = update_tree(&stacked, &writes, height, Update::Sequential).unwrap();
        let pending = db.prepare(height, writes).unwrap();
        assert_eq!(pending.state_root, Hash(one.0.0), "root at {height}");
        db.commit_block(&pending, None, &[], 0).unwrap();
        roots.push(pending.state_root);
    }
    assert_eq!(roots[1], roots[0], "deleting absent keys changes nothing");
    assert_eq!(
        roots[3].0, *b"SPARSE_MERKLE_PLACEHOLDER_HASH__",
        "no key left: the empty tree"
    );
    assert_eq!(db.prove(&keys[5], 4).unwrap().0, Some(b"w".to_vec()));
    assert_eq!(db.prove(&keys[39], 4).unwrap().0, None);
}
