//! State sync of the commitment: from a pruned host, to an earlier commit, from answers fetched
//! first, and the refusals.
use super::*;
use std::cell::Cell;

fn key(i: u32) -> Vec<u8> {
    [b"s".as_slice(), &i.to_be_bytes()].concat()
}

/// A host after `blocks` blocks over 500 keys (most updated in every block, some deleted),
/// so that its log is pruned and a replica starts past the beginning.
fn host(dir: &Path, blocks: u32) -> Commitment {
    let c = Commitment::open(dir, 8).unwrap();
    for h in 1..=blocks {
        let writes = (0..500u32).filter(|i| h == 1 || i % 4 != h % 4).map(|i| {
            let value = (i % 37 != h).then(|| format!("{i} at {h}").into_bytes());
            (key(i), value)
        });
        let b = c.prepare(None, u64::from(h), writes).unwrap();
        c.commit(&b, true).unwrap();
    }
    c
}

fn all_entries(c: &Commitment) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    loop {
        let page = c
            .entries(out.last().map(|(k, _)| k.as_slice()), 64)
            .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[test]
fn a_follower_synced_from_a_host_has_its_root_and_values_and_takes_the_next_block_as_it_does() {
    let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = host(hd.path(), 12);
    let target = host.sync_target().unwrap();
    assert!(target.start > 0, "the host's log is pruned: {target:?}");
    assert_eq!(target.height, Some(12));

    let asked = Cell::new(0);
    let follower = Commitment::sync(fd.path(), 8, target.root, &target, |request| {
        asked.set(asked.get() + 1);
        host.serve_sync(&request).map_err(|e| e.to_string())
    })
    .unwrap();
    assert!(asked.get() > 1, "a boundary and ranges of operations");
    assert_eq!(follower.root().unwrap(), target.root);
    assert_eq!(follower.height().unwrap(), Some(12));
    let entries = all_entries(&follower);
    assert_eq!(entries, all_entries(&host));
    assert!(entries.len() > 400, "{} keys", entries.len());
    assert_eq!(follower.get(&key(3)).unwrap(), host.get(&key(3)).unwrap());
    assert_eq!(
        follower.get(&key(49)).unwrap(),
        None,
        "deleted in the last block"
    );

    let next = |c: &Commitment| {
        let b = c
            .prepare(
                None,
                13,
                [(key(1), None), (key(900), Some(b"new".to_vec()))],
            )
            .unwrap();
        c.commit(&b, true).unwrap()
    };
    assert_eq!(next(&follower), next(&host));
    let (root, value, proof) = follower.prove(&key(900)).unwrap();
    assert!(super::super::verify(
        &root,
        &key(900),
        value.as_deref(),
        &proof
    ));
}

#[test]
fn a_follower_syncs_to_an_earlier_commit_of_a_host_that_went_on() {
    let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = host(hd.path(), 8);
    let at8 = host.sync_target().unwrap();
    for h in 9..=12u64 {
        let b = host
            .prepare(
                None,
                h,
                (0..300u32).map(|i| (key(i), Some(h.to_be_bytes().to_vec()))),
            )
            .unwrap();
        let committed = host.commit(&b, true).unwrap();
        // The host keeps its log from the oldest commit it offers.
        host.prune(at8.start.min(committed.start)).unwrap();
    }
    assert_ne!(host.root().unwrap(), at8.root);

    let follower = Commitment::sync(fd.path(), 8, at8.root, &at8, |request| {
        host.serve_sync(&request).map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(follower.root().unwrap(), at8.root);
    assert_eq!(follower.height().unwrap(), Some(8));
    assert_eq!(follower.get(&key(1)).unwrap(), Some(b"1 at 8".to_vec()));
}

#[test]
fn answers_fetched_first_and_checked_one_by_one_build_the_state_with_no_host_and_a_liar_is_caught_at_its_answer()
 {
    let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Enough current operations for several ranges.
    let host = host(hd.path(), 3);
    let b = host
        .prepare(
            None,
            4,
            (1_000..4_000u32).map(|i| (key(i), Some(vec![7; 40]))),
        )
        .unwrap();
    host.commit(&b, true).unwrap();
    let target = host.sync_target().unwrap();
    check_target(&target.root, &target).unwrap();
    let asked = requests(&target);
    assert!(asked.len() > 3, "{} requests", asked.len());

    // Each request goes to a liar first (one byte changed), then to the honest host.
    let mut answers = std::collections::BTreeMap::new();
    let mut caught = 0;
    for request in &asked {
        let honest = host.serve_sync(request).unwrap();
        let mut lie = honest.clone();
        let at = lie.len() / 2;
        lie[at] ^= 1;
        if check_answer(&target, request, &lie).is_err() {
            caught += 1;
        }
        check_answer(&target, request, &honest).unwrap();
        answers.insert(request.clone(), honest);
    }
    assert_eq!(
        caught,
        asked.len(),
        "every changed answer is caught where it arrives"
    );
    // An answer to another request, or one cut short, is not an answer to this one.
    assert!(check_answer(&target, &asked[1], &answers[&asked[2]]).is_err());
    let whole = &answers[&asked[1]];
    assert!(check_answer(&target, &asked[1], &whole[..whole.len() - 1]).is_err());

    // Built from the answers alone: the engine asks exactly those requests.
    let follower = Commitment::sync(fd.path(), 8, target.root, &target, |request| {
        answers
            .remove(&request)
            .ok_or_else(|| "a request that was not fetched".to_string())
    })
    .unwrap();
    assert!(answers.is_empty(), "every answer used");
    assert_eq!(follower.root().unwrap(), target.root);
    assert_eq!(all_entries(&follower), all_entries(&host));
}

#[test]
fn a_young_state_whose_operations_start_at_the_log_s_beginning_is_built_from_answers_alone() {
    let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = Commitment::open(hd.path(), 8).unwrap();
    let b = host
        .prepare(None, 1, (0..10u32).map(|i| (key(i), Some(vec![1]))))
        .unwrap();
    let target = host.commit(&b, true).unwrap();
    assert_eq!(target.start, 0, "nothing inactive yet: {target:?}");
    let mut answers: std::collections::BTreeMap<_, _> = requests(&target)
        .into_iter()
        .map(|r| {
            let a = host.serve_sync(&r).unwrap();
            check_answer(&target, &r, &a).unwrap();
            (r, a)
        })
        .collect();
    let follower = Commitment::sync(fd.path(), 8, target.root, &target, |r| {
        answers
            .remove(&r)
            .ok_or_else(|| "a request that was not fetched".to_string())
    })
    .unwrap();
    assert!(answers.is_empty());
    assert_eq!(follower.root().unwrap(), target.root);
}

#[test]
fn a_host_whose_operations_are_not_under_the_certified_root_is_refused_before_any_fetch() {
    let (hd, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let host = host(hd.path(), 3);
    let older = host.sync_target().unwrap();
    let b = host.prepare(None, 4, [(key(1), None)]).unwrap();
    host.commit(&b, true).unwrap();
    let target = host.sync_target().unwrap();

    let never = |_: Vec<u8>| -> std::result::Result<Vec<u8>, String> {
        panic!("nothing is fetched from a host that is not trusted")
    };
    // The certified root is an older one.
    let refused = Commitment::sync(fd.path(), 8, older.root, &target, never);
    assert!(
        matches!(refused, Err(CommitmentError::Sync(_))),
        "{refused:?}"
    );
    // The host claims the certified root but names the operations of another state.
    let lying = Committed {
        ops_root: older.ops_root,
        ..target.clone()
    };
    let refused = Commitment::sync(fd.path(), 8, target.root, &lying, never);
    assert!(
        matches!(refused, Err(CommitmentError::Sync(_))),
        "{refused:?}"
    );
    let garbage = Committed {
        witness: vec![1, 2, 3],
        ..target.clone()
    };
    let refused = Commitment::sync(fd.path(), 8, target.root, &garbage, never);
    assert!(
        matches!(refused, Err(CommitmentError::Sync(_))),
        "{refused:?}"
    );
}

#[test]
fn a_host_that_changes_an_operation_it_sends_fails_the_sync() {
    let hd = tempfile::tempdir().unwrap();
    let host = host(hd.path(), 6);
    let target = host.sync_target().unwrap();
    // Each answer changed at one byte from its end (an operation's value or digest), or
    // shortened: the sync fails, whichever answer it is.
    for (nth, cut) in [(0, false), (1, false), (0, true), (1, true)] {
        let fd = tempfile::tempdir().unwrap();
        let count = Cell::new(0);
        let synced = Commitment::sync(fd.path(), 8, target.root, &target, |request| {
            assert!(count.get() < 2, "a boundary and one range");
            let mut answer = host.serve_sync(&request).map_err(|e| e.to_string())?;
            if count.replace(count.get() + 1) == nth {
                if cut {
                    answer.pop();
                } else {
                    let at = answer.len() - 3;
                    answer[at] ^= 0x40;
                }
            }
            Ok(answer)
        });
        assert!(
            matches!(synced, Err(CommitmentError::Sync(_))),
            "answer {nth}: {synced:?}"
        );
    }
}

#[test]
fn a_host_refuses_a_malformed_request_and_goes_on_serving() {
    let hd = tempfile::tempdir().unwrap();
    let host = host(hd.path(), 2);
    assert!(matches!(
        host.serve_sync(&[9, 9, 9]),
        Err(CommitmentError::Sync(_))
    ));
    let target = host.sync_target().unwrap();
    let fd = tempfile::tempdir().unwrap();
    let synced = Commitment::sync(fd.path(), 8, target.root, &target, |r| {
        host.serve_sync(&r).map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(synced.root().unwrap(), host.root().unwrap());
}
