//! The two stores committed together: pruning, recovery after a crash between them or a power
//! cut, and state sync from a host's offered height.

use super::*;
use kassa_state::Store;
use kassa_state::testkit::SplitMix;

/// How many rows a table holds.
fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &Db,
    table: TableDefinition<K, V>,
) -> u64 {
    use redb::ReadableTableMetadata as _;
    let r = db.db.begin_read().unwrap();
    r.open_table(table).unwrap().len().unwrap()
}

fn block_at(height: u64, state_root: Hash) -> Block {
    Block {
        header: BlockHeader {
            height,
            parent: Hash::default(),
            timestamp_ms: height,
            proposer: kassa_types::Address([0; 32]),
            tx_root: Hash::default(),
            state_root,
            consensus: Default::default(),
        },
        txs: kassa_types::BoundedVec::new(Vec::new()).unwrap(),
    }
}

/// Random writes over `keys` keys: inserts, updates and deletions.
fn random_writes(rng: &mut SplitMix, keys: u64, n: u64) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    (0..n)
        .map(|_| {
            let key = (rng.next_u64() % keys).to_be_bytes().to_vec();
            let value =
                (!rng.next_u64().is_multiple_of(4)).then(|| rng.next_u64().to_le_bytes().to_vec());
            (key, value)
        })
        .collect()
}

/// Commits `writes` as the next block (with a block and one receipt) and returns its head.
fn commit(db: &Db, height: u64, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> Head {
    let pending = db.prepare(height, writes).unwrap();
    let tx_hash = Hash::of(&[&height.to_be_bytes()]);
    let receipt = Receipt {
        tx_hash,
        fee: 0,
        outcome: kassa_state::exec::Outcome::Applied(Vec::new()),
        writes: 0,
    };
    let block = block_at(height, pending.state_root);
    db.commit_block(&pending, Some(&block), &[(tx_hash, receipt)], height)
        .unwrap()
}

#[test]
fn a_database_keeping_the_newest_heights_has_the_roots_of_an_archive_and_no_older_blocks() {
    const KEEP: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let archive = Db::open(&dir.path().join("archive.redb")).unwrap();
    let pruned = Db::open(&dir.path().join("pruned.redb"))
        .unwrap()
        .keeping(Some(KEEP));
    let mut rng = SplitMix(23);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for height in 0..60u64 {
        // Every tenth block empty.
        let n = if height % 10 == 9 {
            0
        } else {
            rng.next_u64() % 60
        };
        let writes = random_writes(&mut rng, 300, n);
        let a = commit(&archive, height, writes.clone());
        let p = commit(&pruned, height, writes.clone());
        assert_eq!(a.state_root, p.state_root, "the same root at {height}");
        for (k, v) in writes {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
        // Every key is proven at its current value (or absent) against the head's root.
        for k in (0..300u64).step_by(29) {
            let key = k.to_be_bytes();
            let proven = pruned.prove(&key).unwrap();
            assert_eq!(proven.height, Some(height));
            assert_eq!(proven.root, p.state_root);
            assert_eq!(
                proven.value.as_ref(),
                model.get(&key[..]),
                "{k} at {height}"
            );
            assert!(verify(
                &p.state_root,
                &key,
                proven.value.as_deref(),
                &proven.proof
            ));
        }
        let kept = (height + 1).saturating_sub(KEEP);
        assert_eq!(pruned.pruned_below().unwrap(), kept, "at {height}");
        if kept > 0 {
            let old = kept - 1;
            assert_eq!(
                pruned.block(old).unwrap().is_none(),
                old > 0,
                "the genesis block stays"
            );
            let old_tx = Hash::of(&[&old.to_be_bytes()]);
            assert!(pruned.tx(&old_tx).unwrap().is_none());
            assert!(archive.tx(&old_tx).unwrap().is_some());
        }
        assert_eq!(
            rows(&pruned, BLOCKS),
            height + 1 - kept + u64::from(kept > 0)
        );
        assert_eq!(rows(&pruned, TX_INDEX), height + 1 - kept);
    }
    assert_eq!(archive.pruned_below().unwrap(), 0);
    let reader = pruned.reader().unwrap();
    for (k, v) in &model {
        assert_eq!(reader.get(k).as_ref(), Some(v));
    }
}

#[test]
fn a_crash_after_the_commitment_took_a_block_and_before_the_block_database_did_is_undone_on_reopening()
 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut rng = SplitMix(5);
    let (head, next_writes) = {
        let db = Db::open(&path).unwrap();
        let mut head = None;
        for height in 0..6 {
            head = Some(commit(&db, height, random_writes(&mut rng, 200, 40)));
        }
        // Block 6 reaches the commitment, durably, and then the process dies.
        let writes = random_writes(&mut rng, 200, 40);
        let pending = db.prepare(6, writes.clone()).unwrap();
        db.commitment()
            .unwrap()
            .commit(&pending.prepared, true)
            .unwrap();
        (head.unwrap(), writes)
    };
    let db = Db::open(&path).unwrap();
    assert_eq!(db.head().unwrap().as_ref(), Some(&head));
    let proven = db.prove(&3u64.to_be_bytes()).unwrap();
    assert_eq!((proven.height, proven.root), (Some(5), head.state_root));
    // Block 6 is delivered again and commits as it would have.
    let again = commit(&db, 6, next_writes.clone());
    let fresh = tempfile::tempdir().unwrap();
    let other = Db::open(&fresh.path().join("state.redb")).unwrap();
    let mut rng = SplitMix(5);
    for height in 0..6 {
        commit(&other, height, random_writes(&mut rng, 200, 40));
    }
    assert_eq!(commit(&other, 6, next_writes).state_root, again.state_root);
}

#[test]
fn a_power_cut_during_deferred_commits_leaves_both_stores_at_the_last_durable_block() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk::SimDisk::new();
    let commitment = dir.path().join("state.qmdb");
    let mut rng = SplitMix(9);
    let durable = {
        let db = Db::open_on(disk.clone(), &commitment).unwrap();
        let mut durable = None;
        for height in 0..4 {
            durable = Some(commit(&db, height, random_writes(&mut rng, 100, 30)));
        }
        for height in 4..7 {
            let pending = db
                .prepare(height, random_writes(&mut rng, 100, 30))
                .unwrap();
            db.commit_block_with(&pending, None, &[], height, Durability::Deferred)
                .unwrap();
        }
        assert_eq!(db.head().unwrap().unwrap().height, 6, "visible at once");
        disk.freeze();
        durable.unwrap()
    };
    disk.power_cut(1);
    let db = Db::open_on(disk.clone(), &commitment).unwrap();
    let head = db.head().unwrap().unwrap();
    assert_eq!(head, durable, "the last immediate commit");
    assert_eq!(db.prove(b"x").unwrap().root, durable.state_root);
    commit(&db, 4, random_writes(&mut rng, 100, 30));
}

#[test]
fn a_follower_restores_an_offered_height_from_answers_and_goes_on_as_its_host_does() {
    let dir = tempfile::tempdir().unwrap();
    let host = Db::open(&dir.path().join("host.redb")).unwrap();
    let mut rng = SplitMix(77);
    let mut blocks = Vec::new();
    let mut written = Vec::new();
    let mut roots = Vec::new();
    for height in 0..10u64 {
        let writes = random_writes(&mut rng, 2_000, 400);
        let pending = host.prepare(height, writes.clone()).unwrap();
        let block = block_at(height, pending.state_root);
        host.commit_block(&pending, Some(&block), &[], height)
            .unwrap();
        roots.push(pending.state_root);
        blocks.push(block);
        written.push(writes);
        if height == 7 {
            host.offer_head().unwrap();
        }
    }
    let offers = host.offers().unwrap();
    assert_eq!(offers.len(), 1);
    let (height, target) = offers[0].clone();
    assert_eq!(height, 7);
    let block = &blocks[7];
    qmdb::check_target(&block.header.state_root, &target).unwrap();
    let requests = qmdb::requests(&target);
    // The host's answers to all the requests but the last `missing`, each checked.
    let answers = |follower: &Db, missing: usize| {
        let mut answers = crate::Answers::new(follower).unwrap();
        for r in &requests[..requests.len() - missing] {
            let a = host.serve_sync(r).unwrap();
            qmdb::check_answer(&target, r, &a).unwrap();
            answers.insert(r.clone(), &a).unwrap();
        }
        answers
    };

    let follower = Db::open(&dir.path().join("follower.redb")).unwrap();
    // A block that is not the offered one, and answers that are missing, are refused.
    assert!(matches!(
        follower.restore(&target, answers(&follower, 0), &blocks[8], &blocks[0]),
        Err(RestoreError::Block { .. })
    ));
    assert!(matches!(
        follower.restore(&target, answers(&follower, 1), block, &blocks[0]),
        Err(RestoreError::Answers(_))
    ));
    assert_eq!(
        follower.restoring().unwrap(),
        Some(7),
        "an interrupted restore"
    );
    let head = follower
        .restore(&target, answers(&follower, 0), block, &blocks[0])
        .unwrap();
    assert_eq!(head.state_root, block.header.state_root);
    assert_eq!(follower.restoring().unwrap(), None);
    assert_eq!(follower.pruned_below().unwrap(), 7);
    assert_eq!(follower.block(0).unwrap().as_ref(), Some(&blocks[0]));
    // Its state is the host's at 7: the next blocks give the host's roots.
    for (height, (writes, root)) in (8..10u64).zip(written[8..].iter().zip(&roots[8..])) {
        let h = commit(&follower, height, writes.clone());
        assert_eq!(h.state_root, *root, "at {height}");
    }
    let reader = follower.reader().unwrap();
    let host_reader = host.reader().unwrap();
    assert_eq!(
        kassa_state::ScanStore::scan_prefix(&reader, b""),
        kassa_state::ScanStore::scan_prefix(&host_reader, b"")
    );
    // Reopened, it is where it was.
    drop(reader);
    drop(follower);
    let follower = Db::open(&dir.path().join("follower.redb")).unwrap();
    assert_eq!(follower.head().unwrap().unwrap().height, 9);
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

#[test]
fn the_table_sizes_name_each_table_largest_first_and_the_state_table_holds_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("state.redb")).unwrap();
    let mut rng = SplitMix(3);
    for height in 0..3 {
        commit(&db, height, random_writes(&mut rng, 5_000, 2_000));
    }
    let sizes = db.table_sizes().unwrap();
    assert!(
        sizes.windows(2).all(|w| w[0].1 >= w[1].1),
        "largest first: {sizes:?}"
    );
    let state = sizes.iter().find(|(name, _)| name == "state").unwrap().1;
    // At least the keys and values it holds, and within the file.
    let held: u64 = {
        let r = db.db.begin_read().unwrap();
        let t = r.open_table(STATE).unwrap();
        t.iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                u64::try_from(k.value().len() + v.value().len()).unwrap()
            })
            .sum()
    };
    assert!(held > 0 && state >= held, "{state} bytes for {held} held");
    let file = std::fs::metadata(dir.path().join("state.redb"))
        .unwrap()
        .len();
    assert!(
        sizes.iter().map(|(_, b)| b).sum::<u64>() <= file,
        "{sizes:?} in {file}"
    );
}
