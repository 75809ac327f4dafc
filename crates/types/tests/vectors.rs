//! The encoding is frozen by `vectors/transactions.json`: keys, addresses, one transaction of
//! every body kind, their canonical bytes, signing bytes, sighash, signature and id. This test
//! regenerates the file from scratch and compares; any change to the encoding fails here.
//! Other clients (the browser wallet) check themselves against the same file.
//!
//! To accept an intentional change: `KASSA_UPDATE_VECTORS=1 cargo test -p kassa-types --test vectors`.

use kassa_types::codec::encode;
use kassa_types::rules::{Admission, Identity, Rules};
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{
    AmendmentId, AssetId, Hash, RequestId, SecretKey, SignedTransaction, SocietyId, Transaction,
};
use serde_json::{Value, json};
use std::path::PathBuf;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors/transactions.json")
}

fn bodies(alice: &SecretKey, bob: &SecretKey) -> Vec<(&'static str, Body)> {
    let mut rules = Rules::defaults(10_000, 1_000_000);
    rules.admission = Admission::Vote;
    rules.identity = Identity::Commitment;
    let mut amended = Rules::defaults(10_000, 2_000_000);
    amended.auto_share = false;
    vec![
        (
            "transfer",
            Body::Transfer {
                to: bob.address(),
                asset: AssetId::NATIVE,
                amount: 1_500_000,
            },
        ),
        (
            "create_asset",
            Body::CreateAsset {
                symbol: Symbol::new("USDK").unwrap(),
                decimals: 2,
                max_supply: Some(100_000_000_000),
            },
        ),
        (
            "create_asset_uncapped",
            Body::CreateAsset {
                symbol: Symbol::new("EURK").unwrap(),
                decimals: 2,
                max_supply: None,
            },
        ),
        (
            "mint",
            Body::Mint {
                asset: AssetId(1),
                to: bob.address(),
                amount: 50_000,
            },
        ),
        (
            "burn",
            Body::Burn {
                asset: AssetId(1),
                amount: 1,
            },
        ),
        (
            "create_society",
            Body::CreateSociety {
                name: SocietyName::new("Broodfonds Utrecht").unwrap(),
                purpose: Purpose::new("Income for members too ill to work — ziekte, 🩺.").unwrap(),
                asset: AssetId(1),
                rules,
            },
        ),
        (
            "join",
            Body::Join {
                society: SocietyId(0),
                pledge: 25_000,
                identity_commitment: Some(Hash::of(&[b"salt", b"name"])),
            },
        ),
        (
            "join_public",
            Body::Join {
                society: SocietyId(3),
                pledge: 10_000,
                identity_commitment: None,
            },
        ),
        (
            "contribute",
            Body::Contribute {
                society: SocietyId(0),
                amount: 25_000,
            },
        ),
        (
            "file_request",
            Body::FileRequest {
                society: SocietyId(0),
                amount: 300_000,
                evidence_hash: Hash::of(&[b"evidence.pdf"]),
                memo: Memo::new("ipfs://bafy-example").unwrap(),
            },
        ),
        (
            "vote_yes",
            Body::Vote {
                request: RequestId(7),
                approve: true,
            },
        ),
        (
            "vote_no",
            Body::Vote {
                request: RequestId(7),
                approve: false,
            },
        ),
        (
            "delegate",
            Body::Delegate {
                society: SocietyId(0),
                to: Some(alice.address()),
            },
        ),
        (
            "undelegate",
            Body::Delegate {
                society: SocietyId(0),
                to: None,
            },
        ),
        (
            "gift",
            Body::Gift {
                request: RequestId(7),
                amount: 2_500,
            },
        ),
        (
            "finalize",
            Body::Finalize {
                request: RequestId(7),
            },
        ),
        (
            "settle",
            Body::Settle {
                society: SocietyId(0),
            },
        ),
        (
            "leave",
            Body::Leave {
                society: SocietyId(0),
            },
        ),
        (
            "withdraw",
            Body::Withdraw {
                society: SocietyId(0),
            },
        ),
        (
            "propose_amendment",
            Body::ProposeAmendment {
                society: SocietyId(0),
                rules: amended,
            },
        ),
        (
            "vote_amendment",
            Body::VoteAmendment {
                amendment: AmendmentId(2),
                approve: true,
            },
        ),
        (
            "enact_amendment",
            Body::EnactAmendment {
                amendment: AmendmentId(2),
            },
        ),
    ]
}

fn generate() -> Value {
    let alice = SecretKey::from_label("alice");
    let bob = SecretKey::from_label("bob");
    let keys: Vec<Value> = [("alice", &alice), ("bob", &bob)]
        .iter()
        .map(|(label, k)| {
            json!({
                "label": label,
                "seed_hex": hex::encode(k.seed()),
                "public_key_hex": hex::encode(k.address().0),
                "address": k.address().to_bech32(),
            })
        })
        .collect();
    let chain_id = ChainId::new("kassa-vectors").unwrap();
    let txs: Vec<Value> = bodies(&alice, &bob)
        .into_iter()
        .enumerate()
        .map(|(i, (name, body))| {
            let tx = Transaction {
                chain_id: chain_id.clone(),
                signer: alice.address(),
                nonce: u64::try_from(i).unwrap(),
                fee: 1_000,
                expiry_height: 1_000_000,
                body,
            };
            let signed = tx.clone().sign(&alice);
            assert!(signed.verify_signature());
            assert_eq!(SignedTransaction::decode(&signed.encode()).unwrap(), signed);
            json!({
                "name": name,
                "signer": "alice",
                "nonce": i,
                "tx_hex": hex::encode(encode(&tx)),
                "signing_bytes_hex": hex::encode(tx.signing_bytes()),
                "sighash_hex": hex::encode(tx.sighash().0),
                "signature_hex": hex::encode(signed.signature.0),
                "signed_hex": hex::encode(signed.encode()),
                "tx_hash_hex": hex::encode(signed.hash().0),
            })
        })
        .collect();
    json!({
        "about": "Kassa canonical encoding test vectors. Regenerated and compared by crates/types/tests/vectors.rs.",
        "namespace": String::from_utf8(kassa_types::TX_NAMESPACE.to_vec()).unwrap(),
        "chain_id": chain_id.as_str(),
        "keys": keys,
        "transactions": txs,
    })
}

#[test]
fn the_checked_in_test_vectors_match_the_encoding_byte_for_byte() {
    let fresh = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
    if std::env::var_os("KASSA_UPDATE_VECTORS").is_some() {
        std::fs::write(path(), &fresh).unwrap();
    }
    let stored = std::fs::read_to_string(path()).expect("vectors/transactions.json is checked in");
    assert!(
        stored == fresh,
        "the encoding changed; if intended, regenerate with KASSA_UPDATE_VECTORS=1"
    );
}

#[test]
fn every_body_kind_has_a_vector() {
    let a = SecretKey::from_label("alice");
    let kinds: std::collections::BTreeSet<_> =
        bodies(&a, &a).iter().map(|(_, b)| b.kind()).collect();
    assert_eq!(kinds.len(), 18, "{kinds:?}");
}
