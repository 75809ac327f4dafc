//! Decoding hostile bytes: never panics, refuses what is not canonical, and whatever decodes
//! re-encodes to exactly the same bytes (one value, one encoding).

use kassa_types::tx::{Body, ChainId, Memo};
use kassa_types::{
    Block, BlockHeader, BoundedVec, Hash, SecretKey, SignedTransaction, Transaction,
};
use proptest::prelude::*;

fn sample() -> SignedTransaction {
    let k = SecretKey::from_label("alice");
    Transaction {
        chain_id: ChainId::new("kassa-test").unwrap(),
        genesis: Hash::of(&[b"genesis"]),
        signer: k.address(),
        nonce: 3,
        fee: 1_000,
        expiry_height: 99,
        body: Body::FileRequest {
            society: kassa_types::SocietyId(1),
            amount: 5_000,
            evidence_hash: Hash::of(&[b"e"]),
            memo: Memo::new("a short note").unwrap(),
            payee: Some(SecretKey::from_label("clinic").address()),
            installments: 6,
        },
    }
    .sign(&k)
}

proptest! {
    #[test]
    fn random_bytes_never_panic_and_whatever_decodes_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(t) = SignedTransaction::decode(&bytes) {
            prop_assert_eq!(t.encode(), bytes.clone());
        }
        if let Ok(b) = Block::decode(&bytes) {
            prop_assert_eq!(b.encode(), bytes);
        }
    }

    #[test]
    fn a_mutated_transaction_is_refused_or_decodes_canonically_and_then_fails_its_signature(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let good = sample().encode();
        let mut m = good.clone();
        let i = pos.index(m.len());
        m[i] = byte;
        if let Ok(t) = SignedTransaction::decode(&m) {
            prop_assert_eq!(t.encode(), m.clone());
            if m != good {
                prop_assert!(!t.verify_signature(), "a changed transaction kept a valid signature");
            }
        }
        let truncated = &good[..cut.index(good.len())];
        prop_assert!(SignedTransaction::decode(truncated).is_err());
        if !extra.is_empty() {
            let mut longer = good.clone();
            longer.extend_from_slice(&extra);
            prop_assert!(SignedTransaction::decode(&longer).is_err(), "trailing bytes accepted");
        }
    }
}

#[test]
fn an_over_long_memo_is_refused_at_decoding() {
    let mut bytes = sample().encode();
    // The memo's length prefix sits right after the evidence hash; find it by value.
    let note = b"a short note";
    let at = bytes.windows(note.len()).position(|w| w == note).unwrap() - 4;
    bytes[at..at + 4]
        .copy_from_slice(&(u32::try_from(kassa_types::MEMO_LEN_MAX).unwrap() + 1).to_le_bytes());
    assert!(SignedTransaction::decode(&bytes).is_err());
    assert!(Memo::new("x".repeat(kassa_types::MEMO_LEN_MAX + 1)).is_none());
}

#[test]
fn a_block_with_more_transactions_than_its_bound_is_refused_without_allocating_them() {
    let header = BlockHeader {
        height: 1,
        parent: Hash::default(),
        timestamp_ms: 0,
        proposer: SecretKey::from_label("p").address(),
        tx_root: kassa_types::block::tx_root(&[]),
        state_root: Hash::default(),
        consensus: BoundedVec::new(vec![7; 40]).unwrap(),
    };
    let block = Block {
        header,
        txs: BoundedVec::new(vec![sample()]).unwrap(),
    };
    let mut bytes = block.encode();
    assert_eq!(Block::decode(&bytes).unwrap(), block);
    let count_at = bytes.len() - sample().encode().len() - 4;
    bytes[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(Block::decode(&bytes).is_err());
}

#[test]
fn a_transactions_id_and_size_both_come_from_its_canonical_bytes() {
    let t = sample();
    let bytes = t.encode();
    assert_eq!(t.hash_and_size(), (Hash::of(&[&bytes]), bytes.len()));
    assert_eq!(t.hash_and_size().0, t.hash());
}

#[test]
fn the_transaction_root_commits_to_order_and_content() {
    let a = sample();
    let mut b = sample();
    b.tx.nonce = 4;
    assert_ne!(
        kassa_types::block::tx_root(&[a.clone(), b.clone()]),
        kassa_types::block::tx_root(&[b.clone(), a.clone()])
    );
    assert_ne!(
        kassa_types::block::tx_root(std::slice::from_ref(&a)),
        kassa_types::block::tx_root(&[a.clone(), a.clone()])
    );
    assert_eq!(
        kassa_types::block::tx_root(&[a.clone(), b.clone()]),
        kassa_types::block::tx_root_of([a.hash(), b.hash()]),
        "the root from the hashes is the root from the transactions"
    );
    assert_eq!(
        kassa_types::block::tx_root(&[]),
        kassa_types::block::tx_root_of([])
    );
    assert_ne!(
        kassa_types::block::tx_root(&[b]),
        kassa_types::block::tx_root(&[])
    );
}
