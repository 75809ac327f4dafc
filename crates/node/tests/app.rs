//! The application as consensus drives it, through [`Node`] as production does (and its pieces
//! through `Node::with_app`, as `Node` calls them): a proposer and an independent verifier (each
//! with its own database) agree on every block and state root; tampered blocks are refused; blocks can be
//! built on parents that are not finalized yet; a restart resumes from the committed head.
//!
//! Over 600 lines: one test per property of the block path, sharing the helpers at the top.

use kassa_node::{AdmitError, App, Durability, MempoolConfig, Node};
use kassa_state::Genesis;
use kassa_testkit::{DevGenesis, key};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{Address, AssetId, Hash, Rejection, SecretKey, SignedTransaction, Transaction};
use std::sync::Arc;

/// A node on `dir` as production drives it: [`Node`] around the application.
fn node(dir: &std::path::Path) -> Arc<Node> {
    node_with(dir, MempoolConfig::default())
}

fn node_with(dir: &std::path::Path, mempool: MempoolConfig) -> Arc<Node> {
    Node::new(App::open(dir, &genesis(), &[], mempool).unwrap(), None)
}

fn genesis() -> Genesis {
    DevGenesis {
        chain_id: "kassa-test",
        accounts: 4,
        each: 1_000_000,
        min_fee: 10,
        time_ms: 1_000,
    }
    .genesis()
}

fn transfer(from: usize, to: usize, nonce: u64, amount: u64) -> SignedTransaction {
    Transaction {
        chain_id: ChainId::new("kassa-test").unwrap(),
        genesis: genesis().hash(),
        signer: key(from).address(),
        nonce,
        fee: 10,
        expiry_height: 1_000,
        body: Body::Transfer {
            to: key(to).address(),
            asset: AssetId::NATIVE,
            amount,
        },
    }
    .sign(&key(from))
}

/// The public key of validator `n` (who relayed a message).
fn validator(n: u64) -> kassa_node::consensus::PublicKey {
    use commonware_cryptography::Signer as _;
    commonware_cryptography::ed25519::PrivateKey::from_seed(n).public_key()
}

fn proposer() -> Address {
    key(0).address()
}

#[test]
fn a_proposed_block_is_verified_by_an_independent_node_and_both_reach_the_same_state_root() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    assert_eq!(a.head(), b.head());
    let admitted = a
        .submit(vec![
            transfer(1, 2, 0, 5),
            transfer(1, 2, 1, 6),
            transfer(2, 3, 0, 7),
        ])
        .unwrap();
    assert!(admitted.iter().all(Result::is_ok));
    let parent = a.head().block_hash;
    let block = a.propose(&parent, 2_000, proposer(), &[]).unwrap();
    assert_eq!(block.txs.len(), 3);
    assert!(b.verify(&block, 2_000, 1_000).unwrap());
    let fa = a.finalize(&block, Durability::Immediate).unwrap().unwrap();
    let fb = b.finalize(&block, Durability::Immediate).unwrap().unwrap();
    assert_eq!(fa.head, fb.head);
    assert_eq!(fa.head.state_root, block.header.state_root);
    assert!(a.mempool_len() == 0);
    // Finalizing again is a no-op (consensus delivers at least once).
    assert!(a.finalize(&block, Durability::Immediate).unwrap().is_none());
    // Proofs: a balance verifies against the finalized root.
    let key = kassa_state::keys::holding(&crate::key(2).address(), AssetId::NATIVE);
    let p = a.db().prove(&key).unwrap();
    assert_eq!(p.height, Some(1));
    assert!(kassa_db::verify(
        &block.header.state_root,
        &key,
        p.value.as_deref(),
        &p.proof
    ));
}

#[test]
fn a_block_with_a_wrong_state_root_a_forged_signature_or_an_unincludable_transaction_is_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    a.submit(vec![transfer(1, 2, 0, 5)]).unwrap();
    let parent = a.head().block_hash;
    let good = a.propose(&parent, 2_000, proposer(), &[]).unwrap();

    let mut bad_root = good.clone();
    bad_root.header.state_root = Hash::of(&[b"lie"]);
    assert!(!b.verify(&bad_root, 2_000, 1_000).unwrap());

    let mut replay = good.clone();
    let txs = vec![good.txs[0].clone(), good.txs[0].clone()];
    replay.header.tx_root = kassa_types::block::tx_root(&txs);
    replay.txs = kassa_types::BoundedVec::new(txs).unwrap();
    assert!(
        !b.verify(&replay, 2_000, 1_000).unwrap(),
        "a replayed transaction makes the block invalid"
    );

    // A forged signature: the block's root is even recomputed to match what executing it would
    // give, so only the (batch) signature check stands in the way.
    let mut forged = good.clone();
    let mut t = good.txs[0].clone();
    t.signature.0[5] ^= 1;
    forged.header.tx_root = kassa_types::block::tx_root(std::slice::from_ref(&t));
    forged.txs = kassa_types::BoundedVec::new(vec![t]).unwrap();
    assert!(
        !b.verify(&forged, 2_000, 1_000).unwrap(),
        "a transaction with a bad signature makes the block invalid"
    );

    let mut future = good.clone();
    future.header.timestamp_ms = 10_000_000;
    assert!(
        !b.verify(&future, 2_000, 1_000).unwrap(),
        "too far in the future"
    );

    assert!(b.verify(&good, 2_000, 1_000).unwrap());
}

#[test]
fn a_waiting_transaction_spares_a_block_its_signature_check_only_with_the_very_signature_admitted()
{
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    let tx = transfer(1, 2, 0, 5);
    a.submit(vec![tx.clone()]).unwrap();
    // The verifier admitted the same transaction (relayed), so its signature was checked there.
    assert!(b.submit(vec![tx.clone()]).unwrap()[0].is_ok());
    let parent = a.head().block_hash;
    let good = a.propose(&parent, 2_000, proposer(), &[]).unwrap();
    // The same transaction with another signature is another transaction (the hash covers the
    // signature): it is checked, and refused, although its twin is waiting.
    let mut forged = good.clone();
    let mut t = tx.clone();
    t.signature.0[7] ^= 1;
    forged.header.tx_root = kassa_types::block::tx_root(std::slice::from_ref(&t));
    forged.txs = kassa_types::BoundedVec::new(vec![t]).unwrap();
    assert!(!b.verify(&forged, 2_000, 1_000).unwrap());
    assert!(b.verify(&good, 2_000, 1_000).unwrap());
}

/// `n` transfers among four accounts, those at `forged_at` with a forged signature.
fn transfers_forged_at(n: usize, forged_at: &[usize]) -> Vec<SignedTransaction> {
    (0..n)
        .map(|i| {
            let mut t = transfer(i % 4, (i + 1) % 4, i as u64, 1);
            if forged_at.contains(&i) {
                t.signature.0[9] ^= 1;
            }
            t
        })
        .collect()
}

#[test]
fn a_signature_batch_with_forged_signatures_tells_exactly_which_ones_are_forged() {
    let forged_at = [0usize, 17, 18, 36];
    let txs = transfers_forged_at(37, &forged_at);
    let valid = kassa_node::mempool::signatures_each_valid(&txs);
    let expected: Vec<bool> = (0..37).map(|i| !forged_at.contains(&i)).collect();
    assert_eq!(valid, expected);
    assert_eq!(
        kassa_node::mempool::signatures_each_valid(&txs[1..17]),
        vec![true; 16]
    );
    assert!(kassa_node::mempool::signatures_each_valid(&[]).is_empty());
}

#[test]
fn a_batch_large_enough_to_be_checked_on_every_core_still_tells_exactly_which_are_forged() {
    let n = kassa_node::mempool::PARALLEL_SIGNATURES_MIN * 2 + 3;
    // The first and last of the batch, and either side of where it is cut in two.
    let forged_at = [0, n / 2 - 1, n / 2, n / 2 + 1, n - 1];
    let txs = transfers_forged_at(n, &forged_at);
    let valid = kassa_node::mempool::signatures_each_valid(&txs);
    let expected: Vec<bool> = (0..n).map(|i| !forged_at.contains(&i)).collect();
    assert_eq!(valid, expected);
    assert_eq!(
        kassa_node::mempool::signatures_each_valid(&txs[1..n / 2 - 1]),
        vec![true; n / 2 - 2]
    );
}

#[test]
fn relayed_transactions_are_admitted_as_one_signature_batch_before_this_node_builds_or_checks_a_block()
 {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (node(d1.path()), node(d2.path()));
    let (t1, t2) = (transfer(1, 2, 0, 5), transfer(2, 3, 0, 7));
    let mut forged = transfer(3, 1, 0, 9);
    forged.signature.0[3] ^= 1;

    // Queued, not yet admitted: nothing is checked or waiting until a block needs it.
    assert!(!a.queue_relayed(validator(1), vec![t1.clone(), forged.clone(), t2.clone()]));
    assert!(!a.is_waiting(&t1.hash()) && !a.is_waiting(&t2.hash()));
    // Building admits the queue first: the forged signature fails the batch, each is then
    // checked on its own, and only the forged one is left out.
    let parent = a.head().block_hash;
    let block = a.propose(&parent, 2_000, proposer(), &[]).unwrap();
    assert_eq!(block.txs.to_vec(), vec![t1.clone(), t2.clone()]);
    assert!(!a.is_waiting(&forged.hash()));
    assert_eq!(
        a.admit_queued_relayed().unwrap(),
        0,
        "the queue was emptied"
    );

    // Checking a block admits the queue first too: the block's transactions are then waiting,
    // and an admission admits each only once.
    assert!(!b.queue_relayed(validator(1), vec![t2.clone(), t1.clone()]));
    assert!(b.verify(&block, 2_000, 1_000).unwrap());
    assert!(b.is_waiting(&t1.hash()) && b.is_waiting(&t2.hash()));
    assert!(!b.queue_relayed(validator(1), vec![t1.clone()]));
    assert_eq!(b.admit_queued_relayed().unwrap(), 0);

    // A full batch asks its caller to admit it at once.
    let many = vec![t1.clone(); kassa_node::handle::RELAYED_BATCH - 1];
    assert!(!b.queue_relayed(validator(1), many));
    assert!(b.queue_relayed(validator(2), vec![t1]));
    assert_eq!(b.admit_queued_relayed().unwrap(), 0, "all duplicates");
}

#[test]
fn a_validator_that_relays_a_forged_signature_is_reported_for_blocking_and_honest_relayers_are_not()
{
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reported.clone();
    node.set_forgers(Box::new(move |peer| sink.lock().unwrap().push(peer)));
    let (t1, t2, t3) = (
        transfer(1, 2, 0, 5),
        transfer(2, 3, 0, 7),
        transfer(3, 1, 0, 9),
    );
    let mut forged = transfer(1, 3, 1, 4);
    forged.signature.0[10] ^= 1;

    // Validator 2 hides one forgery among valid transactions; 1 and 3 relay valid ones only,
    // one of them a transaction validator 2 relayed too.
    assert!(!node.queue_relayed(validator(1), vec![t1.clone()]));
    assert!(!node.queue_relayed(validator(2), vec![t2.clone(), forged.clone(), t3.clone()]));
    assert!(!node.queue_relayed(validator(3), vec![t2.clone()]));
    assert_eq!(node.admit_queued_relayed().unwrap(), 3);

    assert_eq!(*reported.lock().unwrap(), vec![validator(2)]);
    for t in [&t1, &t2, &t3] {
        assert!(
            node.is_waiting(&t.hash()),
            "valid relayed transactions are admitted"
        );
    }
    assert!(!node.is_waiting(&forged.hash()));

    // Nothing is reported when every relayed signature is valid.
    assert!(!node.queue_relayed(validator(3), vec![transfer(2, 1, 1, 1)]));
    assert_eq!(node.admit_queued_relayed().unwrap(), 1);
    assert_eq!(reported.lock().unwrap().len(), 1);
}

#[test]
fn the_next_block_is_built_while_its_parent_is_being_committed_and_comes_out_the_same() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    a.submit(vec![transfer(1, 2, 0, 5), transfer(2, 3, 0, 7)])
        .unwrap();
    let parent = a.head().block_hash;
    let b1 = a.propose(&parent, 2_000, proposer(), &[]).unwrap();
    let commit = a
        .with_app(|a| a.begin_finalize(&b1))
        .unwrap()
        .expect("extends the head");
    // Before the commit is written: built on the executed, not yet written, parent.
    a.submit(vec![transfer(1, 2, 1, 6)]).unwrap();
    let b2 = a
        .propose(&b1.header.hash(), 3_000, proposer(), &[])
        .unwrap();
    // Written but not yet completed: the database is one block ahead of the head.
    let written = commit.write(kassa_node::Durability::Immediate);
    a.submit(vec![transfer(3, 1, 0, 8)]).unwrap();
    let b3 = a
        .propose(&b2.header.hash(), 4_000, proposer(), &[])
        .unwrap();
    let (_, leftovers) = a.with_app(|a| a.end_finalize(commit, written)).unwrap();
    leftovers.run().unwrap();
    // (The application's head: `Node::finalize`, bypassed here, is what announces it.)
    assert_eq!(a.with_app(|a| a.head().height), 1);
    // An independent node, one block at a time, agrees on every root.
    for block in [&b1, &b2, &b3] {
        assert_eq!(block.txs.len(), if block == &b1 { 2 } else { 1 });
        assert!(b.verify(block, 4_000, 1_000).unwrap());
        b.finalize(block, Durability::Immediate).unwrap().unwrap();
    }
    for block in [&b2, &b3] {
        a.finalize(block, Durability::Immediate).unwrap().unwrap();
    }
    assert_eq!(a.head(), b.head());
}

#[test]
fn a_block_built_and_one_checked_while_their_parent_is_finalized_are_kept_and_agree() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    a.submit(vec![transfer(1, 2, 0, 5), transfer(2, 3, 0, 7)])
        .unwrap();
    let b1 = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    assert!(b.verify(&b1, 2_000, 1_000).unwrap());
    // Both take what they need under the lock, then b1 is finalized (begun, written and
    // completed) before they execute: what they hold is what was committed.
    a.submit(vec![transfer(1, 2, 1, 6)]).unwrap();
    let base = a.with_app(|a| a.base(&b1.header.hash())).unwrap();
    a.finalize(&b1, Durability::Immediate).unwrap().unwrap();
    let (b2, executing) = base.build(3_000, proposer(), &[]).unwrap();
    assert!(a.with_app(|a| a.adopt(executing)));
    assert_eq!(b2.txs.len(), 1);
    let check = b.with_app(|b| b.prepare_verify(&b2)).unwrap();
    b.finalize(&b1, Durability::Immediate).unwrap().unwrap();
    assert!(
        check
            .conclude(&b2, 3_000, 1_000, |e| b.with_app(|b| b.adopt(e)))
            .unwrap()
    );
    // Both finalize it to the same state.
    let fa = a.finalize(&b2, Durability::Immediate).unwrap().unwrap();
    let fb = b.finalize(&b2, Durability::Immediate).unwrap().unwrap();
    assert_eq!(fa.head, fb.head);
    assert_eq!(fa.head.state_root, b2.header.state_root);
}

#[test]
fn a_block_built_on_a_fork_that_finalization_abandoned_meanwhile_is_not_kept() {
    let d = tempfile::tempdir().unwrap();
    let a = node(d.path());
    let genesis_id = a.head().block_hash;
    a.submit(vec![transfer(1, 2, 0, 5)]).unwrap();
    // Two rival blocks at height 1 (another proposer's, at another time).
    let left = a.propose(&genesis_id, 2_000, proposer(), &[]).unwrap();
    let right = a
        .propose(&genesis_id, 2_001, key(9).address(), &[])
        .unwrap();
    assert_ne!(left.header.hash(), right.header.hash());
    let base = a.with_app(|a| a.base(&right.header.hash())).unwrap();
    a.finalize(&left, Durability::Immediate).unwrap().unwrap();
    let (orphan, executing) = base.build(3_000, proposer(), &[]).unwrap();
    assert!(
        !a.with_app(|a| a.adopt(executing)),
        "its parent can never be finalized"
    );
    assert!(!a.knows(&orphan.header.hash(), orphan.header.height));
    // Building on the abandoned block is refused outright now.
    assert!(a.with_app(|a| a.base(&right.header.hash())).is_err());
}

#[test]
fn blocks_can_extend_a_parent_that_is_not_finalized_yet() {
    let d = tempfile::tempdir().unwrap();
    let a = node(d.path());
    a.submit(vec![transfer(1, 2, 0, 5)]).unwrap();
    let b1 = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    a.submit(vec![transfer(1, 2, 1, 5)]).unwrap_or_default();
    // The second transaction depends on the first (nonce 1): the mempool admits it against the
    // finalized state only within the nonce window, and the proposer sequences it after b1.
    let b2 = a
        .propose(&b1.header.hash(), 3_000, proposer(), &[])
        .unwrap();
    assert_eq!(b2.header.height, 2);
    assert_eq!(b2.txs.len(), 1);
    a.finalize(&b1, Durability::Immediate).unwrap().unwrap();
    let f2 = a.finalize(&b2, Durability::Immediate).unwrap().unwrap();
    assert_eq!(f2.head.state_root, b2.header.state_root);
    assert_eq!(
        kassa_state::exec::nonce(&a.db().reader().unwrap(), &key(1).address()),
        2
    );
}

#[test]
fn a_restarted_node_resumes_from_its_committed_head() {
    let d = tempfile::tempdir().unwrap();
    let head = {
        let a = node(d.path());
        a.submit(vec![transfer(1, 2, 0, 5)]).unwrap();
        let b = a
            .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
            .unwrap();
        a.finalize(&b, Durability::Immediate)
            .unwrap()
            .unwrap()
            .head
            .clone()
    };
    let a = node(d.path());
    assert_eq!(a.head(), head);
}

#[test]
fn the_mempool_refuses_bad_transactions_with_typed_reasons() {
    let d = tempfile::tempdir().unwrap();
    let a = node_with(
        d.path(),
        MempoolConfig {
            per_sender_max: 2,
            ..MempoolConfig::default()
        },
    );
    let mut bad_sig = transfer(1, 2, 0, 5);
    bad_sig.signature.0[3] ^= 1;
    let wrong_chain = {
        let mut t = transfer(1, 2, 0, 5).tx;
        t.chain_id = ChainId::new("other").unwrap();
        t.sign(&key(1))
    };
    let low_fee = {
        let mut t = transfer(1, 2, 0, 5).tx;
        t.fee = 1;
        t.sign(&key(1))
    };
    let broke = Transaction {
        signer: SecretKey::from_label("nobody").address(),
        ..transfer(1, 2, 0, 5).tx
    }
    .sign(&SecretKey::from_label("nobody"));
    let r = a
        .submit(vec![
            bad_sig,
            wrong_chain,
            low_fee,
            transfer(1, 2, 10_000, 5),
            broke,
            transfer(1, 2, 0, 5),
            transfer(1, 2, 0, 5),
            transfer(1, 2, 0, 6),
            transfer(1, 2, 1, 5),
            transfer(1, 2, 2, 5),
        ])
        .unwrap();
    let expected = vec![
        Err(AdmitError::Rejected(Rejection::BadSignature)),
        Err(AdmitError::Rejected(Rejection::WrongChain)),
        Err(AdmitError::Rejected(Rejection::FeeBelowMinimum)),
        Err(AdmitError::Rejected(Rejection::NonceGapTooLarge)),
        Err(AdmitError::Rejected(Rejection::CannotPayFee)),
        Ok(transfer(1, 2, 0, 5).hash()),
        Err(AdmitError::Duplicate),
        Err(AdmitError::NonceTaken),
        Ok(transfer(1, 2, 1, 5).hash()),
        Err(AdmitError::SenderFull),
    ];
    assert_eq!(r, expected);
    // After inclusion, the same transaction is a replay.
    let b = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    a.finalize(&b, Durability::Immediate).unwrap();
    assert_eq!(
        a.submit(vec![transfer(1, 2, 0, 5)]).unwrap(),
        vec![Err(AdmitError::Rejected(Rejection::NonceTooLow))]
    );
}

#[test]
fn the_mempool_is_bounded_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let a = node_with(
        d.path(),
        MempoolConfig {
            txs_max: 2,
            ..MempoolConfig::default()
        },
    );
    let r = a
        .submit(vec![
            transfer(1, 2, 0, 5),
            transfer(2, 1, 0, 5),
            transfer(3, 1, 0, 5),
        ])
        .unwrap();
    assert_eq!(r[2], Err(AdmitError::Full));
}

#[test]
fn one_funded_fee_cannot_queue_many_transactions_and_nothing_waits_forever() {
    let d = tempfile::tempdir().unwrap();
    let a = node(d.path());
    // key(1) gives a fresh account exactly two fees' worth of KAS.
    let poor = SecretKey::from_label("poor");
    let fund = Transaction {
        body: Body::Transfer {
            to: poor.address(),
            asset: AssetId::NATIVE,
            amount: 20,
        },
        ..transfer(1, 2, 0, 0).tx
    }
    .sign(&key(1));
    a.submit(vec![fund]).unwrap();
    let b = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    a.finalize(&b, Durability::Immediate).unwrap();
    let from_poor = |nonce: u64, expiry: u64| {
        Transaction {
            chain_id: ChainId::new("kassa-test").unwrap(),
            genesis: genesis().hash(),
            signer: poor.address(),
            nonce,
            fee: 10,
            expiry_height: expiry,
            body: Body::Transfer {
                to: key(2).address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        }
        .sign(&poor)
    };
    let r = a
        .submit(vec![
            from_poor(0, 100),
            from_poor(1, 100),
            from_poor(2, 100),
            from_poor(3, u64::MAX),
        ])
        .unwrap();
    assert!(r[0].is_ok() && r[1].is_ok());
    assert_eq!(r[2], Err(AdmitError::FeesExceedBalance));
    assert_eq!(r[3], Err(AdmitError::ExpiryTooFar));
}

#[test]
fn a_finalized_block_drops_the_waiting_transactions_whose_nonce_it_used_or_that_expired() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    let stale = transfer(1, 2, 0, 5);
    let expiring = Transaction {
        expiry_height: 1,
        ..transfer(2, 3, 0, 7).tx
    }
    .sign(&key(2));
    let kept = transfer(3, 1, 0, 1);
    let later = transfer(1, 2, 1, 8);
    let admitted = a
        .submit(vec![
            stale.clone(),
            expiring.clone(),
            kept.clone(),
            later.clone(),
        ])
        .unwrap();
    assert!(admitted.iter().all(Result::is_ok), "{admitted:?}");
    // Another validator's block uses sender 1's nonce 0 for another transfer.
    b.submit(vec![transfer(1, 2, 0, 6)]).unwrap();
    let block = b
        .propose(&b.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    assert_eq!(block.txs.len(), 1);
    a.finalize(&block, Durability::Immediate).unwrap().unwrap();
    assert!(!a.is_waiting(&stale.hash()), "its nonce is used");
    assert!(
        !a.is_waiting(&expiring.hash()),
        "height 2 is past its expiry"
    );
    assert!(a.is_waiting(&kept.hash()) && a.is_waiting(&later.hash()));
    assert_eq!(a.mempool_len(), 2);
}

#[test]
fn a_block_its_own_proposer_finalizes_leaves_the_mempool_with_the_room_its_transactions_took() {
    let d = tempfile::tempdir().unwrap();
    let size = transfer(1, 2, 0, 5).hash_and_size().1;
    let a = node_with(
        d.path(),
        MempoolConfig {
            txs_max: 3,
            bytes_max: 3 * size,
            ..MempoolConfig::default()
        },
    );
    let first = vec![
        transfer(1, 2, 0, 5),
        transfer(1, 2, 1, 6),
        transfer(2, 3, 0, 7),
    ];
    assert!(a.submit(first.clone()).unwrap().iter().all(Result::is_ok));
    assert_eq!(
        a.submit(vec![transfer(3, 1, 0, 1)]).unwrap()[0],
        Err(AdmitError::Full)
    );
    let block = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    assert_eq!(block.txs.len(), 3);
    a.finalize(&block, Durability::Immediate).unwrap().unwrap();
    assert!(a.mempool_len() == 0);
    for tx in &first {
        assert!(!a.is_waiting(&tx.hash()));
    }
    // Count, bytes and the senders' waiting fees were all given back.
    let next = vec![
        transfer(1, 2, 2, 5),
        transfer(2, 3, 1, 6),
        transfer(3, 1, 0, 7),
    ];
    let admitted = a.submit(next).unwrap();
    assert!(admitted.iter().all(Result::is_ok), "{admitted:?}");
    assert_eq!(a.mempool_len(), 3);
}

#[test]
fn a_senders_waiting_fees_no_longer_count_those_a_finalized_block_included() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(d1.path());
    let b = node(d2.path());
    let poor = SecretKey::from_label("poor");
    let give = |nonce: u64, amount: u64| {
        Transaction {
            body: Body::Transfer {
                to: poor.address(),
                asset: AssetId::NATIVE,
                amount,
            },
            ..transfer(1, 2, nonce, 0).tx
        }
        .sign(&key(1))
    };
    let from_poor = |nonce: u64| {
        Transaction {
            signer: poor.address(),
            ..transfer(1, 2, nonce, 1).tx
        }
        .sign(&poor)
    };
    a.submit(vec![give(0, 40)]).unwrap();
    let funded = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    a.finalize(&funded, Durability::Immediate).unwrap();
    b.finalize(&funded, Durability::Immediate).unwrap();
    // 40 KAS: four fees of 10 may wait, not a fifth.
    let r = a.submit((0..5).map(from_poor).collect()).unwrap();
    assert!(r[..4].iter().all(Result::is_ok), "{r:?}");
    assert_eq!(r[4], Err(AdmitError::FeesExceedBalance));
    // Another validator's block includes the first (fee 10 + 1 sent) and a gift of 15.
    b.submit(vec![from_poor(0), give(1, 15)]).unwrap();
    let block = b
        .propose(&b.head().block_hash.clone(), 3_000, proposer(), &[])
        .unwrap();
    assert_eq!(block.txs.len(), 2);
    a.finalize(&block, Durability::Immediate).unwrap().unwrap();
    // 44 KAS now, three fees (30) still waiting: a fourth fits.
    let fourth = a.submit(vec![from_poor(4)]).unwrap();
    assert!(fourth[0].is_ok(), "{fourth:?}");
    assert_eq!(
        a.submit(vec![from_poor(5)]).unwrap()[0],
        Err(AdmitError::FeesExceedBalance)
    );
}

#[test]
fn a_re_delivered_block_must_be_the_one_committed_at_its_height() {
    let d = tempfile::tempdir().unwrap();
    let a = node(d.path());
    let b = a
        .propose(&a.head().block_hash.clone(), 2_000, proposer(), &[])
        .unwrap();
    a.finalize(&b, Durability::Immediate).unwrap().unwrap();
    assert!(
        a.finalize(&b, Durability::Immediate).unwrap().is_none(),
        "the same block again is skipped"
    );
    let mut other = b.clone();
    other.header.timestamp_ms += 1;
    assert!(matches!(
        a.finalize(&other, Durability::Immediate),
        Err(kassa_node::AppError::Conflict { height: 1 })
    ));
}

#[test]
fn a_data_directory_refuses_another_chains_genesis() {
    let d = tempfile::tempdir().unwrap();
    drop(node(d.path()));
    let mut other = genesis();
    other.time_ms += 1;
    assert!(matches!(
        App::open(d.path(), &other, &[], MempoolConfig::default()),
        Err(kassa_node::AppError::WrongGenesis)
    ));
}
