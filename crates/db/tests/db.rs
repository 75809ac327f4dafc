//! The authenticated store: roots, proofs, durability across reopening, ordering.

use kassa_db::{Db, DbError, Durability, verify};
use kassa_state::testkit::SplitMix;
use kassa_state::{Genesis, MemStore, Order, ScanStore, Store};
use kassa_types::tx::ChainId;
use kassa_types::{Hash, SecretKey};
use std::collections::BTreeMap;

fn writes(pairs: &[(&[u8], Option<&[u8]>)]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect()
}

#[test]
fn committed_state_is_readable_and_every_value_has_a_proof_against_the_head_root() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("kassa.redb")).unwrap();
    let p0 = db
        .prepare(0, writes(&[(b"a", Some(b"1")), (b"b", Some(b"2"))]))
        .unwrap();
    let h0 = db.commit_block(&p0, None, &[], 0).unwrap();
    let p1 = db
        .prepare(
            1,
            writes(&[(b"a", Some(b"3")), (b"b", None), (b"c", Some(b"4"))]),
        )
        .unwrap();
    let h1 = db.commit_block(&p1, None, &[], 1).unwrap();
    assert_ne!(h0.state_root, h1.state_root);

    let r = db.reader().unwrap();
    assert_eq!(r.get(b"a"), Some(b"3".to_vec()));
    assert_eq!(r.get(b"b"), None);
    assert_eq!(r.scan_prefix(b"").len(), 2);

    // Inclusion, exclusion where deleted, and no proof for a wrong value or an older root.
    let p = db.prove(b"a").unwrap();
    assert_eq!((p.height, p.root), (Some(1), h1.state_root));
    assert_eq!(p.value.as_deref(), Some(&b"3"[..]));
    assert!(verify(&h1.state_root, b"a", Some(b"3"), &p.proof));
    assert!(!verify(&h1.state_root, b"a", Some(b"1"), &p.proof));
    assert!(!verify(&h0.state_root, b"a", Some(b"3"), &p.proof));
    let p = db.prove(b"b").unwrap();
    assert_eq!(p.value, None);
    assert!(verify(&h1.state_root, b"b", None, &p.proof));
    assert!(!verify(&h1.state_root, b"b", Some(b"2"), &p.proof));
    // Several keys at once, all at one height.
    let many = db.prove_many(&[b"a", b"b", b"c"]).unwrap();
    assert!(many.iter().all(|p| p.root == h1.state_root));
    assert_eq!(many[2].value.as_deref(), Some(&b"4"[..]));
}

#[test]
fn the_head_and_state_survive_reopening_and_blocks_must_come_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kassa.redb");
    let root = {
        let db = Db::open(&path).unwrap();
        assert!(db.head().unwrap().is_none());
        assert!(
            matches!(
                db.prepare(1, writes(&[(b"x", Some(b"y"))])),
                Err(DbError::NotNext {
                    got: 1,
                    expected: 0
                })
            ),
            "a block's state is prepared only at the next height"
        );
        let p = db.prepare(0, writes(&[(b"x", Some(b"y"))])).unwrap();
        let stale = db.prepare(0, writes(&[(b"z", Some(b"w"))])).unwrap();
        let root = db.commit_block(&p, None, &[], 0).unwrap().state_root;
        assert!(
            matches!(
                db.commit_block(&stale, None, &[], 0),
                Err(DbError::NotNext {
                    got: 0,
                    expected: 1
                })
            ),
            "and committed only in order"
        );
        root
    };
    let db = Db::open(&path).unwrap();
    let head = db.head().unwrap().unwrap();
    assert_eq!((head.height, head.state_root), (0, root));
    assert_eq!(db.reader().unwrap().get(b"x"), Some(b"y".to_vec()));
}

#[test]
fn the_same_genesis_gives_the_same_root_in_any_database() {
    let genesis = Genesis {
        chain_id: ChainId::new("kassa-test").unwrap(),
        min_fee: 1,
        allocations: vec![
            (SecretKey::from_label("a").address(), 5),
            (SecretKey::from_label("b").address(), 7),
        ],
        time_ms: 0,
        validators: Vec::new(),
    };
    let mut roots = Vec::new();
    for _ in 0..2 {
        let mut mem = MemStore::new();
        kassa_state::init_genesis(&mut mem, &genesis).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.redb")).unwrap();
        let w = mem
            .scan_prefix(b"")
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        roots.push(
            db.commit_block(&db.prepare(0, w).unwrap(), None, &[], 0)
                .unwrap()
                .state_root,
        );
    }
    assert_eq!(roots[0], roots[1]);
    assert_ne!(roots[0], Hash::default());
}

#[test]
fn a_page_reads_only_its_prefix_from_just_past_the_cursor_up_to_the_limit_either_way() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("kassa.redb")).unwrap();
    let w: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0u8..10)
        .map(|i| (vec![b'm', i], Some(vec![i])))
        .chain([
            (b"n0".to_vec(), Some(vec![0])),
            (b"a".to_vec(), Some(vec![1])),
        ])
        .collect();
    db.commit_block(&db.prepare(0, w).unwrap(), None, &[], 0)
        .unwrap();
    let r = db.reader().unwrap();
    let ids = |page: Vec<(Vec<u8>, Vec<u8>)>| page.iter().map(|(k, _)| k[1]).collect::<Vec<_>>();
    assert_eq!(
        ids(r.page(b"m", None, Order::Ascending, 4)),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        ids(r.page(b"m", Some(&[b'm', 2]), Order::Ascending, 4)),
        vec![3, 4, 5, 6]
    );
    assert_eq!(
        ids(r.page(b"m", Some(&[b'm', 7]), Order::Ascending, 100)),
        vec![8, 9],
        "stops at the end of the prefix"
    );
    assert!(
        r.page(b"m", Some(&[b'm', 9]), Order::Ascending, 5)
            .is_empty()
    );
    assert_eq!(ids(r.page(b"m", None, Order::Descending, 3)), vec![9, 8, 7]);
    assert_eq!(
        ids(r.page(b"m", Some(&[b'm', 2]), Order::Descending, 5)),
        vec![1, 0],
        "stops at the start of the prefix"
    );
    // A cursor outside the prefix reads nothing outside it.
    assert_eq!(
        ids(r.page(b"m", Some(b"a"), Order::Ascending, 2)),
        vec![0, 1]
    );
    assert!(r.page(b"m", Some(b"n"), Order::Ascending, 2).is_empty());
    assert!(r.page(b"m", Some(b"a"), Order::Descending, 2).is_empty());
    // The in-memory store pages exactly like the database.
    let mut mem = MemStore::new();
    for (k, v) in r.scan_prefix(b"") {
        kassa_state::StoreMut::put(&mut mem, k, v);
    }
    for order in [Order::Ascending, Order::Descending] {
        for after in [None, Some(&b"m\x04"[..]), Some(b"a"), Some(b"z")] {
            assert_eq!(
                r.page(b"m", after, order, 3),
                mem.page(b"m", after, order, 3)
            );
        }
    }
}

#[test]
fn a_state_prepared_on_uncommitted_parents_commits_exactly_as_if_prepared_after_them() {
    let blocks = [
        writes(&[(b"a", Some(b"1")), (b"b", Some(b"2")), (b"d", Some(b"9"))]),
        writes(&[(b"a", Some(b"3")), (b"b", None), (b"c", Some(b"4"))]),
        writes(&[(b"b", Some(b"5")), (b"c", None), (b"e", Some(b"6"))]),
        writes(&[(b"a", None), (b"f", Some(b"7"))]),
    ];
    // One block at a time: prepare, commit, prepare the next.
    let d1 = tempfile::tempdir().unwrap();
    let one_by_one = Db::open(&d1.path().join("kassa.redb")).unwrap();
    let mut roots = Vec::new();
    for (h, w) in (0u64..).zip(&blocks) {
        let p = one_by_one.prepare(h, w.clone()).unwrap();
        roots.push(
            one_by_one
                .commit_block(&p, None, &[], 0)
                .unwrap()
                .state_root,
        );
    }
    // Genesis committed, then three blocks prepared each on the uncommitted one before.
    let d2 = tempfile::tempdir().unwrap();
    let stacked = Db::open(&d2.path().join("kassa.redb")).unwrap();
    let p0 = stacked.prepare(0, blocks[0].clone()).unwrap();
    stacked.commit_block(&p0, None, &[], 0).unwrap();
    let p1 = stacked.prepare_on(1, blocks[1].clone(), &[]).unwrap();
    let p2 = stacked.prepare_on(2, blocks[2].clone(), &[&p1]).unwrap();
    let p3 = stacked
        .prepare_on(3, blocks[3].clone(), &[&p1, &p2])
        .unwrap();
    assert!(
        matches!(
            stacked.prepare_on(3, blocks[3].clone(), &[&p2]),
            Err(DbError::NotNext { .. })
        ),
        "the blocks below must be the uncommitted ones, in order"
    );
    assert_eq!(
        [p1.state_root, p2.state_root, p3.state_root],
        [roots[1], roots[2], roots[3]]
    );
    stacked.commit_block(&p1, None, &[], 0).unwrap();
    // A block committed while a child is prepared on it is skipped: the same root comes out.
    let again = stacked
        .prepare_on(3, blocks[3].clone(), &[&p1, &p2])
        .unwrap();
    assert_eq!(again.state_root, roots[3]);
    for p in [p2, p3] {
        stacked.commit_block(&p, None, &[], 0).unwrap();
    }
    // The same state, proven the same way.
    let head = stacked.head().unwrap().unwrap();
    assert_eq!(head.state_root, roots[3]);
    for key in [&b"a"[..], b"b", b"c", b"d", b"e", b"f"] {
        let p = stacked.prove(key).unwrap();
        assert_eq!(p.value, one_by_one.prove(key).unwrap().value, "{key:?}");
        assert!(verify(&roots[3], key, p.value.as_deref(), &p.proof));
    }
}

fn receipt(tag: u8, failed: bool) -> (Hash, kassa_state::Receipt) {
    receipt_of(Hash([tag; 32]), tag, failed)
}

fn receipt_of(tx_hash: Hash, tag: u8, failed: bool) -> (Hash, kassa_state::Receipt) {
    let outcome = if failed {
        kassa_state::exec::Outcome::Failed(u16::from(tag))
    } else {
        kassa_state::exec::Outcome::Applied(Vec::new())
    };
    let r = kassa_state::Receipt {
        tx_hash,
        fee: u64::from(tag) * 10,
        outcome,
        writes: u64::from(tag),
    };
    (tx_hash, r)
}

/// A hash whose first 8 bytes are `prefix`'s and whose rest is `tail`'s.
fn hash_with_prefix(prefix: u8, tail: u8) -> Hash {
    let mut h = [tail; 32];
    h[..8].fill(prefix);
    Hash(h)
}

#[test]
fn a_transaction_is_found_by_its_hash_with_its_block_position_and_receipt_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kassa.redb");
    // A block of 150 spans three receipt rows; hashes 3 and 4 share their first 8 bytes with
    // others of the same block and of an earlier one (the index is keyed by those 8 bytes).
    let big: Vec<_> = (0..150u8)
        .map(|i| match i {
            10 => receipt_of(hash_with_prefix(3, 200), i, false),
            70 => receipt_of(hash_with_prefix(4, 201), i, true),
            140 => receipt_of(hash_with_prefix(4, 202), i, false),
            _ => receipt_of(hash_with_prefix(i.wrapping_add(50), i), i, i % 3 == 0),
        })
        .collect();
    let blocks = [
        vec![receipt(1, false), receipt(2, true)],
        vec![],
        vec![receipt(3, true), receipt(4, false), receipt(5, false)],
        big,
    ];
    {
        let db = Db::open(&path).unwrap();
        for (h, receipts) in blocks.iter().enumerate() {
            let h = u64::try_from(h).unwrap();
            let p = db.prepare(h, writes(&[(b"k", Some(&[1]))])).unwrap();
            db.commit_block(&p, None, receipts, h).unwrap();
        }
    }
    let db = Db::open(&path).unwrap();
    for (h, receipts) in blocks.iter().enumerate() {
        for (i, (hash, r)) in receipts.iter().enumerate() {
            let rec = db.tx(hash).unwrap().expect("indexed");
            assert_eq!(rec.height, u64::try_from(h).unwrap());
            assert_eq!(rec.index, u32::try_from(i).unwrap());
            assert_eq!(&rec.receipt, r);
        }
    }
    assert_eq!(db.tx(&Hash([9; 32])).unwrap(), None, "an unknown hash");
    assert_eq!(
        db.tx(&hash_with_prefix(4, 203)).unwrap(),
        None,
        "an unknown hash whose first 8 bytes are indexed"
    );
}

#[test]
fn a_database_of_another_storage_schema_is_refused_with_its_schema_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kassa.redb");
    {
        let db = Db::open(&path).unwrap();
        let p = db.prepare(0, writes(&[(b"a", Some(b"1"))])).unwrap();
        db.commit_block(&p, None, &[], 0).unwrap();
    }
    const META: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
    let set_schema = |schema: Option<u32>| {
        let raw = redb::Database::open(&path).unwrap();
        let w = raw.begin_write().unwrap();
        {
            let mut meta = w.open_table(META).unwrap();
            match schema {
                Some(v) => meta.insert("schema", borsh::to_vec(&v).unwrap().as_slice()),
                None => meta.remove("schema"),
            }
            .unwrap();
        }
        w.commit().unwrap();
    };
    // Written before schemas were recorded (schema 1: receipts keyed by hash).
    set_schema(None);
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 1 })));
    // Schema 2: tree values keyed by key hash.
    set_schema(Some(2));
    let refused = Db::open(&path).unwrap_err();
    assert!(matches!(refused, DbError::Schema { found: 2 }));
    assert!(refused.to_string().contains("empty data directory"));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 2 })));
    // Schema 3: KAS balances outside the account records.
    set_schema(Some(3));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 3 })));
    // Schema 4: a receipt per row, the hash index keyed by the whole hash.
    set_schema(Some(4));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 4 })));
    // Schema 5: membership records with fixed-width counters.
    set_schema(Some(5));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 5 })));
    // Schema 6: protocol version 1's state records.
    set_schema(Some(6));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 6 })));
    // Schema 7: no index of a society's requests.
    set_schema(Some(7));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 7 })));
    // Schema 8: delegated stakes without lapse buckets.
    set_schema(Some(8));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 8 })));
    // Schema 9: tree leaves' rows without their state keys.
    set_schema(Some(9));
    assert!(matches!(Db::open(&path), Err(DbError::Schema { found: 9 })));
    // Schema 10: no history tables.
    set_schema(Some(10));
    assert!(matches!(
        Db::open(&path),
        Err(DbError::Schema { found: 10 })
    ));
    // Schema 11: the state's commitment a Merkle tree in this database.
    set_schema(Some(11));
    assert!(matches!(
        Db::open(&path),
        Err(DbError::Schema { found: 11 })
    ));
    // Nothing was changed: back at schema 12, the same head and state.
    set_schema(Some(12));
    let db = Db::open(&path).unwrap();
    assert_eq!(db.head().unwrap().unwrap().height, 0);
    assert_eq!(db.reader().unwrap().get(b"a"), Some(b"1".to_vec()));
}

#[test]
fn every_key_proves_after_each_committed_block_the_value_its_blocks_left_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kassa.redb");
    let db = Db::open(&path).unwrap();
    // The same "random" blocks on every run.
    let mut rng = SplitMix(11);
    // history[h] = the state after block h, as a plain map.
    let mut history: Vec<BTreeMap<Vec<u8>, Vec<u8>>> = Vec::new();
    let mut state = BTreeMap::new();
    let mut prepared = Vec::new();
    // 60 blocks over 40 keys: new keys (the tree moves existing leaves down to make room),
    // updates, deletions (leaves move up), empty blocks (the root is copied), a block that
    // deletes every key, and a tree of a single leaf.
    for height in 0..60u64 {
        let mut w = BTreeMap::new();
        match height {
            20 => w.extend(state.keys().map(|k: &Vec<u8>| (k.clone(), None))),
            21 => {
                w.insert(b"only".to_vec(), Some(b"one".to_vec()));
            }
            22 | 23 | 40 => {}
            _ => {
                for _ in 0..rng.next_u64() % 12 {
                    let key = format!("k{}", rng.next_u64() % 40).into_bytes();
                    let value = (!rng.next_u64().is_multiple_of(4))
                        .then(|| rng.next_u64().to_le_bytes().to_vec());
                    w.insert(key, value);
                }
            }
        }
        for (k, v) in &w {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
        history.push(state.clone());
        // Every third block is prepared on the two uncommitted ones before it.
        let below: Vec<_> = prepared.iter().collect();
        prepared.push(db.prepare_on(height, w, &below).unwrap());
        if height % 3 == 2 || height == 59 {
            for p in prepared.drain(..) {
                db.commit_block(&p, None, &[], 0).unwrap();
            }
            check_proofs(&db, &state);
        }
    }
    drop(db);
    let db = Db::open(&path).unwrap();
    check_proofs(&db, history.last().unwrap());
}

/// Every key of the test's key space is proven at its value in `state` (or absent) against the
/// head's root.
fn check_proofs(db: &Db, state: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let head = db.head().unwrap().unwrap();
    let mut keys: Vec<Vec<u8>> = (0..40).map(|i| format!("k{i}").into_bytes()).collect();
    keys.push(b"only".to_vec());
    for key in &keys {
        let p = db.prove(key).unwrap();
        assert_eq!(p.height, Some(head.height));
        assert_eq!(
            p.value.as_ref(),
            state.get(key),
            "{key:?} at {}",
            head.height
        );
        assert!(verify(&head.state_root, key, p.value.as_deref(), &p.proof));
    }
}

/// In a child process (see below): commits blocks 0 to 3, the first immediately and the others
/// deferred, with a sync after block `synced` if any, checks that each is read at once, and
/// aborts as a crash would.
fn commit_deferred_then_crash(path: &std::path::Path, synced: Option<u64>) -> ! {
    let db = Db::open(path).unwrap();
    for h in 0..4u64 {
        let durability = if h == 0 {
            Durability::Immediate
        } else {
            Durability::Deferred
        };
        let value = h.to_be_bytes();
        let p = db.prepare(h, writes(&[(b"k", Some(&value))])).unwrap();
        db.commit_block_with(&p, None, &[], h, durability).unwrap();
        assert_eq!(db.head().unwrap().unwrap().height, h);
        assert_eq!(db.reader().unwrap().get(b"k"), Some(value.to_vec()));
        if synced == Some(h) {
            db.sync().unwrap();
        }
    }
    std::process::abort()
}

#[test]
fn deferred_commits_are_read_at_once_and_a_crash_loses_those_after_the_last_immediate_one_whole() {
    const CHILD: &str = "KASSA_DB_TEST_CRASH_CHILD";
    let name = "deferred_commits_are_read_at_once_and_a_crash_loses_those_after_the_last_immediate_one_whole";
    if let Ok(dir) = std::env::var(CHILD) {
        let synced = std::env::var("KASSA_DB_TEST_SYNCED").ok();
        commit_deferred_then_crash(
            &std::path::Path::new(&dir).join("kassa.redb"),
            synced.map(|s| s.parse().unwrap()),
        );
    }
    for (synced, survives) in [(None, 0u64), (Some(2u64), 2)] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", name, "--test-threads=1"])
            .env(CHILD, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if let Some(h) = synced {
            child.env("KASSA_DB_TEST_SYNCED", h.to_string());
        }
        let status = child.status().unwrap();
        assert!(!status.success(), "the child crashed on purpose");
        let db = Db::open(&dir.path().join("kassa.redb")).unwrap();
        let head = db.head().unwrap().unwrap();
        assert_eq!(head.height, survives, "synced after {synced:?}");
        assert_eq!(
            db.reader().unwrap().get(b"k"),
            Some(survives.to_be_bytes().to_vec())
        );
        assert_eq!(db.prove(b"k").unwrap().root, head.state_root);
        // The lost blocks commit again, as a restarted node re-applies them.
        let next = survives + 1;
        let p = db
            .prepare(next, writes(&[(b"k", Some(&next.to_be_bytes()))]))
            .unwrap();
        assert_eq!(db.commit_block(&p, None, &[], next).unwrap().height, next);
    }
}

#[test]
fn a_database_with_a_tiny_page_cache_holds_and_proves_the_same_state_as_one_with_the_default() {
    // 5,000 keys over 20 blocks: far more pages than a 64 KiB cache holds, so reads go to the
    // file; the state, the roots and the proofs must not depend on what the cache keeps.
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let tiny = Db::open_with_cache(&d1.path().join("k.redb"), 64 << 10).unwrap();
    let default = Db::open(&d2.path().join("k.redb")).unwrap();
    let mut rng = SplitMix(5);
    for height in 0..20 {
        let writes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0..250)
            .map(|_| {
                let k = rng.below(5_000).to_be_bytes().to_vec();
                (k, Some(rng.next_u64().to_le_bytes().repeat(6)))
            })
            .collect();
        let a = tiny.prepare(height, writes.clone()).unwrap();
        let b = default.prepare(height, writes).unwrap();
        assert_eq!(a.state_root, b.state_root, "root at {height}");
        tiny.commit_block(&a, None, &[], height).unwrap();
        default.commit_block(&b, None, &[], height).unwrap();
    }
    let (r1, r2) = (tiny.reader().unwrap(), default.reader().unwrap());
    assert_eq!(r1.scan_prefix(b""), r2.scan_prefix(b""));
    let root = tiny.head().unwrap().unwrap().state_root;
    for k in 0..100u64 {
        let key = (k * 50).to_be_bytes();
        let p = tiny.prove(&key).unwrap();
        assert_eq!(p.value, r2.get(&key));
        assert!(verify(&root, &key, p.value.as_deref(), &p.proof));
    }
}
