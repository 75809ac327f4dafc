//! The mempool prices its space, through `Node` as production admits and builds: gapped
//! transactions (behind a nonce gap, paying nothing until it is filled) get only a small space
//! and are evicted first; a full mempool evicts the cheapest fee rate for a transaction that pays
//! more, and refuses one that would be the cheapest; a replacement must pay 10% more; blocks take
//! the highest fee rates first.

use kassa_node::{AdmitError, App, MempoolConfig, Node};
use kassa_testkit::{DevGenesis, key};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{AssetId, Hash, SignedTransaction, Transaction};
use std::sync::Arc;

fn genesis() -> kassa_state::Genesis {
    DevGenesis {
        chain_id: "kassa-test",
        accounts: 8,
        each: 1_000_000,
        min_fee: 10,
        time_ms: 1_000,
    }
    .genesis()
}

fn node(dir: &std::path::Path, mempool: MempoolConfig) -> Arc<Node> {
    Node::new(App::open(dir, &genesis(), &[], mempool).unwrap(), None)
}

/// A transfer of 1 from `from` to account 0, paying `fee`.
fn paying(from: usize, nonce: u64, fee: u64) -> SignedTransaction {
    paying_on(genesis().hash(), from, nonce, fee)
}

/// [`paying`] on the chain whose genesis hash is `chain`.
fn paying_on(chain: Hash, from: usize, nonce: u64, fee: u64) -> SignedTransaction {
    Transaction {
        chain_id: ChainId::new("kassa-test").unwrap(),
        genesis: chain,
        signer: key(from).address(),
        nonce,
        fee,
        expiry_height: 1_000,
        body: Body::Transfer {
            to: key(0).address(),
            asset: AssetId::NATIVE,
            amount: 1,
        },
    }
    .sign(&key(from))
}

/// `t` with its amount changed after it was signed: its signature no longer verifies.
fn forge(mut t: SignedTransaction) -> SignedTransaction {
    if let Body::Transfer { amount, .. } = &mut t.tx.body {
        *amount += 1;
    }
    t
}

fn submit(node: &Node, tx: &SignedTransaction) -> Result<Hash, AdmitError> {
    node.submit(vec![tx.clone()]).unwrap().pop().unwrap()
}

#[test]
fn a_gapped_nonce_flood_fills_only_its_own_small_space_and_honest_transfers_still_get_in() {
    let d = tempfile::tempdir().unwrap();
    let n = node(
        d.path(),
        MempoolConfig {
            txs_max: 20,
            gapped_max: 5,
            ..MempoolConfig::default()
        },
    );
    // Three attackers queue nonces 1..=10, never sending nonce 0: nothing of theirs can be
    // included, so nothing of theirs would ever pay.
    let mut flood = Vec::new();
    for attacker in 1..=3 {
        for nonce in 1..=10 {
            flood.push(submit(&n, &paying(attacker, nonce, 10)));
        }
    }
    assert_eq!(
        flood.iter().filter(|r| r.is_ok()).count(),
        5,
        "the gapped space holds 5"
    );
    assert!(
        flood
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(AdmitError::Full))),
        "{flood:?}"
    );
    // Honest senders still get in, and when the mempool is full their ready transactions evict
    // the gapped ones, whatever those offer to pay.
    for honest in 4..8 {
        submit(&n, &paying(honest, 0, 10)).unwrap();
    }
    let mut honest = Vec::new();
    for nonce in 1..=15 {
        honest.push(submit(&n, &paying(4, nonce, 10)).unwrap());
    }
    assert!(honest.iter().all(|h| n.is_waiting(h)));
    let gapped_left = flood
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|h| n.is_waiting(h))
        .count();
    // Evicting a gapped transaction takes its sender's later (also gapped) nonces with it.
    assert!(
        gapped_left <= 1,
        "at least 4 of the 5 gapped transactions made room"
    );
    assert_eq!(n.mempool_len(), 19 + gapped_left);
    let head = n.head();
    let block = n
        .propose(
            &head.block_hash,
            head.time_ms + 1_000,
            key(0).address(),
            &[],
        )
        .unwrap();
    assert_eq!(
        block.txs.len(),
        19,
        "every ready transaction, none of the gapped one"
    );
    assert!(block.txs.iter().all(|t| t.tx.signer != key(1).address()
        && t.tx.signer != key(2).address()
        && t.tx.signer != key(3).address()));
}

#[test]
fn a_full_mempool_evicts_the_cheapest_fee_rate_for_one_that_pays_more_and_refuses_one_that_pays_less()
 {
    let d = tempfile::tempdir().unwrap();
    let n = node(
        d.path(),
        MempoolConfig {
            txs_max: 3,
            ..MempoolConfig::default()
        },
    );
    let cheap = submit(&n, &paying(1, 0, 10)).unwrap();
    let cheap_next = submit(&n, &paying(1, 1, 50)).unwrap();
    let middle = submit(&n, &paying(2, 0, 40)).unwrap();
    // Paying more than the cheapest: it goes, and so does its sender's next nonce, which could
    // not be included without it.
    let better = submit(&n, &paying(3, 0, 20)).unwrap();
    assert!(!n.is_waiting(&cheap) && !n.is_waiting(&cheap_next));
    assert!(n.is_waiting(&middle) && n.is_waiting(&better));
    assert_eq!(n.mempool_len(), 2);
    submit(&n, &paying(5, 0, 30)).unwrap();
    // Now the cheapest pays 20: a fee of 20 or less is refused, and nothing changes.
    assert_eq!(submit(&n, &paying(6, 0, 20)), Err(AdmitError::Full));
    assert_eq!(submit(&n, &paying(6, 0, 11)), Err(AdmitError::Full));
    assert_eq!(n.mempool_len(), 3);
    assert!(n.is_waiting(&better));
    // Making room never evicts the sender's own earlier nonce.
    assert_eq!(submit(&n, &paying(3, 1, 500)), Err(AdmitError::Full));
}

#[test]
fn a_transaction_paying_ten_percent_more_replaces_the_waiting_one_with_its_nonce() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path(), MempoolConfig::default());
    let first = submit(&n, &paying(1, 0, 100)).unwrap();
    assert_eq!(submit(&n, &paying(1, 0, 109)), Err(AdmitError::NonceTaken));
    assert!(n.is_waiting(&first));
    let replacement = submit(&n, &paying(1, 0, 110)).unwrap();
    assert!(!n.is_waiting(&first) && n.is_waiting(&replacement));
    assert_eq!(n.mempool_len(), 1);
    // The replaced fee no longer counts against the balance: a replacement needs only its own.
    let rich = submit(&n, &paying(1, 0, 999_000)).unwrap();
    assert!(n.is_waiting(&rich));
    assert_eq!(
        submit(&n, &paying(1, 1, 1_001)),
        Err(AdmitError::FeesExceedBalance),
        "999,000 + 1,001 is more than the account holds"
    );
    let head = n.head();
    let block = n
        .propose(
            &head.block_hash,
            head.time_ms + 1_000,
            key(0).address(),
            &[],
        )
        .unwrap();
    assert_eq!(block.txs.len(), 1);
    assert_eq!(block.txs[0].hash(), rich);
}

#[test]
fn a_block_takes_the_highest_fee_rates_first_and_each_senders_nonces_in_order() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path(), MempoolConfig::default());
    let low = submit(&n, &paying(1, 0, 10)).unwrap();
    let high = submit(&n, &paying(2, 0, 30)).unwrap();
    let high_next = submit(&n, &paying(2, 1, 25)).unwrap();
    let middle = submit(&n, &paying(3, 0, 20)).unwrap();
    let picked: Vec<Hash> = n.with_app(|a| {
        let state = a.db().reader().unwrap();
        a.mempool()
            .select(&state, 3, usize::MAX)
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    });
    assert_eq!(picked, vec![high, high_next, middle]);
    assert!(
        !picked.contains(&low),
        "the cheapest waits when the block is full"
    );
}

#[test]
fn two_hundred_accounts_queueing_255_gapped_nonces_each_leave_room_for_every_honest_transfer() {
    // With the default limits: each attacker holds enough for its fees, so only the nonce gap
    // (nonce 0 is never sent) keeps the fees from ever being paid.
    let genesis = DevGenesis {
        chain_id: "kassa-test",
        accounts: 220,
        each: 1_000_000,
        min_fee: 10,
        time_ms: 1_000,
    }
    .genesis();
    let d = tempfile::tempdir().unwrap();
    let n = Node::new(
        App::open(d.path(), &genesis, &[], MempoolConfig::default()).unwrap(),
        None,
    );
    let chain = genesis.hash();
    let sign = |from: usize, nonce: u64| paying_on(chain, from, nonce, 10);
    let mut held = 0;
    for attacker in 20..220 {
        let flood: Vec<_> = (1..=255).map(|nonce| sign(attacker, nonce)).collect();
        held += n
            .submit(flood)
            .unwrap()
            .iter()
            .filter(|r| r.is_ok())
            .count();
    }
    assert_eq!(held, MempoolConfig::default().gapped_max);
    let honest: Vec<_> = (0..20).map(|from| sign(from, 0)).collect();
    let admitted = n.submit(honest).unwrap();
    assert!(admitted.iter().all(Result::is_ok), "{admitted:?}");
    let head = n.head();
    let block = n
        .propose(
            &head.block_hash,
            head.time_ms + 1_000,
            key(0).address(),
            &[],
        )
        .unwrap();
    assert_eq!(
        block.txs.len(),
        20,
        "every honest transfer, and nothing of the flood"
    );
}

#[test]
fn senders_paying_the_same_fee_rate_share_a_block_round_robin() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path(), MempoolConfig::default());
    let mut a = Vec::new();
    let mut b = Vec::new();
    for nonce in 0..3 {
        a.push(submit(&n, &paying(1, nonce, 15)).unwrap());
        b.push(submit(&n, &paying(2, nonce, 15)).unwrap());
    }
    let picked: Vec<Hash> = n.with_app(|app| {
        let state = app.db().reader().unwrap();
        app.mempool()
            .select(&state, 4, usize::MAX)
            .into_iter()
            .map(|(_, h)| h)
            .collect()
    });
    let from_a = picked.iter().filter(|h| a.contains(h)).count();
    assert_eq!(
        (from_a, picked.len() - from_a),
        (2, 2),
        "neither sender crowds the other out"
    );
    assert!(picked.contains(&a[0]) && picked.contains(&a[1]) && !picked.contains(&a[2]));
    assert!(picked.contains(&b[0]) && picked.contains(&b[1]) && !picked.contains(&b[2]));
}

#[test]
fn a_flood_the_mempool_has_no_room_for_is_refused_before_its_signatures_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let n = node(
        d.path(),
        MempoolConfig {
            gapped_max: 2,
            ..MempoolConfig::default()
        },
    );
    let held = [paying(1, 1, 10), paying(1, 2, 10)];
    for t in &held {
        submit(&n, t).unwrap();
    }
    // A forged gapped transaction paying no more than those held: there is no room for it
    // whatever its signature, so it is refused as such, before the signature is checked.
    let forged = forge(paying(2, 5, 10));
    assert_eq!(submit(&n, &forged), Err(AdmitError::Full));
    // The same transaction again is a duplicate, found by its hash alone.
    assert_eq!(submit(&n, &held[0]), Err(AdmitError::Duplicate));
    // One that would get in is checked as ever: a forged signature is refused as forged.
    let outbids = forge(paying(2, 5, 1_000));
    assert_eq!(
        submit(&n, &outbids),
        Err(AdmitError::Rejected(kassa_types::Rejection::BadSignature))
    );
    assert_eq!(n.mempool_len(), 2);
}
