//! The commitment: roots on uncommitted parents, proofs, reopening, unknown batches.
use super::*;

fn writes(block: u8, keys: u8) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    (0..keys)
        .map(|k| (vec![b'a', k], Some(vec![block, k, 7])))
        .collect()
}

#[test]
fn a_block_prepared_on_its_uncommitted_parent_gets_the_root_it_gets_on_the_committed_parent() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let piped = Commitment::open(d1.path(), 8).unwrap();
    let stepped = Commitment::open(d2.path(), 8).unwrap();
    assert_eq!(piped.root().unwrap(), stepped.root().unwrap());

    let b1 = piped.prepare(None, 1, writes(1, 40)).unwrap();
    let b2 = piped.prepare(Some(&b1), 2, writes(2, 20)).unwrap();
    assert_ne!(b1.root, b2.root);
    assert_eq!(piped.commit(&b1, true).unwrap().root, b1.root);
    assert_eq!(piped.commit(&b2, true).unwrap().root, b2.root);

    let s1 = stepped.prepare(None, 1, writes(1, 40)).unwrap();
    assert_eq!(s1.root, b1.root);
    stepped.commit(&s1, true).unwrap();
    let s2 = stepped.prepare(None, 2, writes(2, 20)).unwrap();
    assert_eq!(s2.root, b2.root);
    assert_eq!(
        stepped.commit(&s2, true).unwrap().root,
        piped.root().unwrap()
    );
    assert_eq!(stepped.get(&[b'a', 3]).unwrap(), Some(vec![2, 3, 7]));
    assert_eq!(stepped.get(&[b'a', 30]).unwrap(), Some(vec![1, 30, 7]));

    // A child prepared on a parent committed since builds on the committed state.
    let s3 = stepped.prepare(Some(&s2), 3, writes(3, 5)).unwrap();
    let b3 = piped.prepare(None, 3, writes(3, 5)).unwrap();
    assert_eq!(s3.root, b3.root);
    assert_eq!(stepped.commit(&s3, true).unwrap().root, b3.root);
}

#[test]
fn a_proof_shows_a_current_value_or_an_absent_key_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let c = Commitment::open(dir.path(), 8).unwrap();
    let b1 = c.prepare(None, 1, writes(1, 30)).unwrap();
    c.commit(&b1, true).unwrap();
    let mut w = writes(2, 10);
    w.push((vec![b'a', 20], None));
    let b2 = c.prepare(None, 2, w).unwrap();
    let root = c.commit(&b2, true).unwrap().root;

    let (at, value, proof) = c.prove(&[b'a', 5]).unwrap();
    assert_eq!((at, value.as_deref()), (root, Some(&[2, 5, 7][..])));
    assert!(verify(&root, &[b'a', 5], Some(&[2, 5, 7]), &proof));
    assert!(
        !verify(&root, &[b'a', 5], Some(&[1, 5, 7]), &proof),
        "a value it had before is not its current one"
    );
    assert!(!verify(&root, &[b'a', 6], Some(&[2, 5, 7]), &proof));
    assert!(!verify(&root, &[b'a', 5], None, &proof));
    assert!(!verify(&b1.root, &[b'a', 5], Some(&[2, 5, 7]), &proof));

    let (_, value, absent) = c.prove(&[b'a', 20]).unwrap();
    assert_eq!(value, None, "deleted");
    assert!(verify(&root, &[b'a', 20], None, &absent));
    assert!(!verify(&root, &[b'a', 21], None, &absent));
    assert!(!verify(&root, &[b'a', 20], Some(&[1, 20, 7]), &absent));

    let mut forged = proof.clone();
    if let KeyProof::Present(bytes) = &mut forged {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
    }
    assert!(!verify(&root, &[b'a', 5], Some(&[2, 5, 7]), &forged));
    assert!(!verify(
        &root,
        &[b'a', 5],
        Some(&[2, 5, 7]),
        &KeyProof::Present(vec![1, 2, 3])
    ));
    let KeyProof::Present(mut longer) = proof.clone() else {
        panic!("a present key's proof")
    };
    longer.push(0);
    assert!(
        !verify(
            &root,
            &[b'a', 5],
            Some(&[2, 5, 7]),
            &KeyProof::Present(longer)
        ),
        "bytes after the proof's end"
    );
}

#[test]
fn a_reopened_commitment_has_what_was_committed_and_nothing_only_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let c = Commitment::open(dir.path(), 8).unwrap();
        let b1 = c.prepare(None, 1, writes(1, 30)).unwrap();
        let root = c.commit(&b1, true).unwrap().root;
        let b2 = c.prepare(None, 2, writes(2, 30)).unwrap();
        assert_ne!(b2.root, root);
        root
    };
    let c = Commitment::open(dir.path(), 8).unwrap();
    assert_eq!(c.root().unwrap(), root);
    assert_eq!(
        c.height().unwrap(),
        Some(1),
        "the last committed block's height"
    );
    assert_eq!(c.get(&[b'a', 9]).unwrap(), Some(vec![1, 9, 7]));
}

#[test]
fn a_commitment_reopened_at_an_earlier_commit_is_that_commit_and_goes_on_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut commits = Vec::new();
    {
        let c = Commitment::open(dir.path(), 8).unwrap();
        // Each block rewrites most keys, so the boundary moves; the log is pruned to the
        // boundary of the block before, as a node does.
        let mut previous: Option<Committed> = None;
        for h in 1..=40u8 {
            let b = c.prepare(None, h.into(), writes(h, 60)).unwrap();
            let committed = c.commit(&b, true).unwrap();
            if let Some(p) = previous {
                c.prune(p.start).unwrap();
            }
            previous = Some(committed.clone());
            commits.push(committed);
        }
        assert!(commits[38].start > 0, "the log is pruned");
    }
    let before_last = &commits[38];
    let c = Commitment::open_at(dir.path(), 8, before_last.end).unwrap();
    assert_eq!(c.root().unwrap(), before_last.root);
    assert_eq!(c.height().unwrap(), Some(39));
    assert_eq!(c.get(&[b'a', 1]).unwrap(), Some(vec![39, 1, 7]));

    // Another block 40 from there, and it is what a reopened commitment has.
    let other = c.prepare(None, 40, writes(99, 3)).unwrap();
    let committed = c.commit(&other, true).unwrap();
    assert_ne!(committed.root, commits[39].root);
    drop(c);
    let c = Commitment::open(dir.path(), 8).unwrap();
    assert_eq!(c.root().unwrap(), committed.root);
    assert_eq!(c.height().unwrap(), Some(40));
    assert_eq!(c.get(&[b'a', 1]).unwrap(), Some(vec![99, 1, 7]));
    assert_eq!(c.get(&[b'a', 50]).unwrap(), Some(vec![39, 50, 7]));
}

#[test]
fn an_unknown_batch_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Commitment::open(dir.path(), 8).unwrap();
    assert_eq!(c.height().unwrap(), None, "nothing committed yet");
    let root = c.root().unwrap();
    let ghost = Prepared {
        id: 99,
        root,
        commands: c.commands.clone(),
    };
    assert!(matches!(
        c.commit(&ghost, true),
        Err(CommitmentError::UnknownBatch(99))
    ));
    assert!(matches!(
        c.prepare(Some(&ghost), 1, writes(1, 1)),
        Err(CommitmentError::UnknownBatch(99))
    ));
    // A batch dropped uncommitted is forgotten.
    let id = c.prepare(None, 1, writes(1, 3)).unwrap().id;
    let forgotten = Prepared {
        id,
        root,
        commands: c.commands.clone(),
    };
    assert!(matches!(
        c.commit(&forgotten, true),
        Err(CommitmentError::UnknownBatch(_))
    ));
    assert_eq!(c.root().unwrap(), root);
}
