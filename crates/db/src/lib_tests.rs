//! The tree updates compared with `jmt`'s own, node for node and proof by proof.

use super::*;
use jmt::RootHash;
use jmt::storage::TreeReader;
use kassa_state::Store;
use kassa_state::testkit::SplitMix;
use std::collections::BTreeSet;

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
                // The nodes made stale: what `jmt` would prune (which, for an empty block,
                // does not count the root it copies; this database does).
                let set = |s: &Vec<NodeKey>| s.iter().cloned().collect::<BTreeSet<_>>();
                let mut expected = set(&other.3);
                if writes.is_empty() && height > 0 {
                    expected.insert(root_key(height - 1));
                }
                assert_eq!(
                    set(&ours.3),
                    expected,
                    "stale nodes at height {height}, against {name}"
                );
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

/// The stored key of every node in the trees of `versions`.
fn reachable(db: &Db, versions: std::ops::RangeInclusive<u64>) -> BTreeSet<Vec<u8>> {
    let reader = db.reader().unwrap();
    let mut seen = BTreeSet::new();
    for version in versions {
        let mut stack = vec![NodeKey::new(version, std::iter::empty().collect())];
        while let Some(key) = stack.pop() {
            if !seen.insert(node_key_bytes(&key)) {
                continue;
            }
            let node = reader
                .get_node_option(&key)
                .unwrap()
                .unwrap_or_else(|| panic!("a node of version {version}'s tree is gone: {key:?}"));
            if let Node::Internal(internal) = node {
                for (nibble, child) in internal.children_sorted() {
                    let path = key.nibble_path().nibbles().chain([nibble]).collect();
                    stack.push(NodeKey::new(child.version, path));
                }
            }
        }
    }
    seen
}

/// How many rows a table holds.
fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &Db,
    table: TableDefinition<K, V>,
) -> u64 {
    use redb::ReadableTableMetadata as _;
    let r = db.db.begin_read().unwrap();
    r.open_table(table).unwrap().len().unwrap()
}

#[test]
fn a_database_keeping_the_newest_heights_proves_those_as_an_archive_does_and_holds_nothing_else() {
    const KEEP: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let archive = Db::open(&dir.path().join("archive.redb")).unwrap();
    let pruned = Db::open(&dir.path().join("pruned.redb"))
        .unwrap()
        .keeping(Some(KEEP));
    let mut rng = SplitMix(23);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for height in 0..80u64 {
        // Inserts, updates and deletions over 300 keys; every tenth block empty.
        let mut writes = BTreeMap::new();
        let n = if height % 10 == 9 {
            0
        } else {
            rng.next_u64() % 60
        };
        for _ in 0..n {
            let key = (rng.next_u64() % 300).to_be_bytes().to_vec();
            let value =
                (!rng.next_u64().is_multiple_of(4)).then(|| rng.next_u64().to_le_bytes().to_vec());
            writes.insert(key, value);
        }
        // A block with a transaction's receipt, so that its index entries are pruned too.
        let tx_hash = Hash::of(&[&height.to_be_bytes()]);
        let receipt = Receipt {
            tx_hash,
            fee: 0,
            outcome: kassa_state::exec::Outcome::Applied(Vec::new()),
            writes: 0,
        };
        let block = Block {
            header: BlockHeader {
                height,
                parent: Hash::default(),
                timestamp_ms: height,
                proposer: kassa_types::Address([0; 32]),
                tx_root: Hash::default(),
                state_root: Hash::default(),
                consensus: Default::default(),
            },
            txs: kassa_types::BoundedVec::new(Vec::new()).unwrap(),
        };
        let mut roots = Vec::new();
        for db in [&archive, &pruned] {
            let pending = db.prepare(height, writes.clone()).unwrap();
            db.commit_block(
                &pending,
                Some(&block),
                &[(tx_hash, receipt.clone())],
                height,
            )
            .unwrap();
            roots.push(pending.state_root);
        }
        assert_eq!(roots[0], roots[1], "the same root at {height}");
        for (k, v) in writes {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
        // What is kept: the newest KEEP heights, proven as the archive proves them.
        let kept = (height + 1).saturating_sub(KEEP);
        assert_eq!(pruned.pruned_below().unwrap(), kept, "at {height}");
        for h in kept..=height {
            let root = RootHash(pruned.root_at(h).unwrap().0);
            assert_eq!(root.0, archive.root_at(h).unwrap().0);
            for k in 0..20u64 {
                let key = (k * 15).to_be_bytes().to_vec();
                let (value, proof) = pruned.prove(&key, h).unwrap();
                assert_eq!(value, archive.prove(&key, h).unwrap().0, "{k} at {h}");
                proof.verify(root, key_hash(&key), value.as_ref()).unwrap();
            }
            assert!(pruned.block(h).unwrap().is_some());
        }
        // What is not: older heights are refused, their blocks, receipts and index gone.
        if kept > 0 {
            let old = kept - 1;
            assert!(matches!(
                pruned.prove(b"k", old),
                Err(DbError::Pruned { .. })
            ));
            assert!(matches!(pruned.root_at(old), Err(DbError::Pruned { .. })));
            assert_eq!(
                pruned.block(old).unwrap().is_none(),
                old > 0,
                "the genesis block stays"
            );
            assert!(
                pruned
                    .tx(&Hash::of(&[&old.to_be_bytes()]))
                    .unwrap()
                    .is_none()
            );
            assert!(
                archive
                    .tx(&Hash::of(&[&old.to_be_bytes()]))
                    .unwrap()
                    .is_some()
            );
        }
        // Exactly the nodes of the kept trees remain, and a value for each of their leaves.
        let live = reachable(&pruned, kept..=height);
        assert_eq!(
            rows(&pruned, JMT_NODES),
            live.len() as u64,
            "nodes at {height}"
        );
        let reader = pruned.reader().unwrap();
        let leaves = live
            .iter()
            .filter(|k| {
                matches!(
                    reader
                        .nodes
                        .get(k.as_slice())
                        .unwrap()
                        .map(|v| dec::<Node>(v.value())),
                    Some(Node::Leaf(_))
                )
            })
            .count();
        assert_eq!(
            rows(&pruned, JMT_VALUES),
            leaves as u64,
            "leaf values at {height}"
        );
        assert_eq!(
            rows(&pruned, BLOCKS),
            height + 1 - kept + u64::from(kept > 0)
        );
        assert_eq!(rows(&pruned, TX_INDEX), height + 1 - kept);
    }
    // The archive keeps everything and records no stale nodes.
    assert_eq!(archive.pruned_below().unwrap(), 0);
    assert_eq!(rows(&archive, STALE), 0);
    assert!(rows(&archive, JMT_NODES) > 2 * rows(&pruned, JMT_NODES));
    // Every key's current value, read through the pruned database's state.
    let reader = pruned.reader().unwrap();
    for (k, v) in &model {
        assert_eq!(reader.get(k).as_ref(), Some(v));
    }
}

#[test]
fn a_follower_keeps_one_checked_certificate_per_stretch_of_heights_and_reopened_still_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let db = Db::open(&path).unwrap();
        assert_eq!(db.certificate(5).unwrap(), None, "none before any is kept");
        assert!(db.keep_certificate(5, b"five").unwrap());
        assert!(!db.keep_certificate(6, b"six").unwrap(), "the same stretch");
        assert!(db.keep_certificate(CERTIFICATE_SPACING, b"next").unwrap());
        assert!(
            !db.keep_certificate(2 * CERTIFICATE_SPACING - 1, b"late")
                .unwrap()
        );
    }
    let db = Db::open(&path).unwrap();
    assert_eq!(db.certificate(5).unwrap().as_deref(), Some(&b"five"[..]));
    assert_eq!(db.certificate(6).unwrap(), None);
    assert_eq!(
        db.certificate(CERTIFICATE_SPACING).unwrap().as_deref(),
        Some(&b"next"[..])
    );
}
