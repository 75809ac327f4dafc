//! The encoding is frozen by `vectors/transactions.json`: keys, addresses, the genesis hash the
//! transactions are signed for, at least one transaction of every body kind, their canonical
//! bytes, signing bytes, sighash, signature and id. This test regenerates the file from scratch and
//! compares; any change to the encoding fails here.
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
                pledge: 25_000,
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
            "check_in",
            Body::Contribute {
                society: SocietyId(0),
                amount: 0,
            },
        ),
        (
            "file_request",
            Body::FileRequest {
                society: SocietyId(0),
                amount: 300_000,
                evidence_hash: Hash::of(&[b"evidence.pdf"]),
                memo: Memo::new("ipfs://bafy-example").unwrap(),
                payee: None,
                installments: 0,
            },
        ),
        (
            "file_request_installments",
            Body::FileRequest {
                society: SocietyId(0),
                amount: 40_000,
                evidence_hash: Hash::of(&[b"evidence.pdf"]),
                memo: Memo::new("six months, paid to the landlord").unwrap(),
                payee: Some(bob.address()),
                installments: 6,
            },
        ),
        (
            "vote_yes",
            Body::Vote {
                request: RequestId(7),
                approve: true,
                percent: 100,
            },
        ),
        (
            "vote_partial",
            Body::Vote {
                request: RequestId(7),
                approve: true,
                percent: 60,
            },
        ),
        (
            "vote_no",
            Body::Vote {
                request: RequestId(7),
                approve: false,
                percent: 100,
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
        (
            "expel",
            Body::Expel {
                society: SocietyId(0),
                member: bob.address(),
            },
        ),
        (
            "change_pledge",
            Body::ChangePledge {
                society: SocietyId(0),
                pledge: 30_000,
            },
        ),
        (
            "end_benefit",
            Body::EndBenefit {
                request: RequestId(9),
            },
        ),
        (
            "claim_benefit",
            Body::ClaimBenefit {
                request: RequestId(9),
            },
        ),
    ]
}

fn rules_json(r: &Rules) -> Value {
    serde_json::to_value(r).expect("rules serialize")
}

/// The body as the browser wallet describes it (the API's JSON conventions: amounts as decimal
/// strings, ids as numbers, hashes as hex, accounts as bech32), so that a client can build the
/// same transaction from it and compare bytes.
fn body_json(body: &Body) -> Value {
    let n = |v: &u64| Value::String(v.to_string());
    let h = |v: &Hash| Value::String(hex::encode(v.0));
    let mut v = match body {
        Body::Transfer { to, asset, amount } => {
            json!({"to": to.to_bech32(), "asset": asset.0, "amount": n(amount)})
        }
        Body::CreateAsset {
            symbol,
            decimals,
            max_supply,
        } => {
            json!({"symbol": symbol.as_str(), "decimals": decimals, "max_supply": max_supply.as_ref().map(n)})
        }
        Body::Mint { asset, to, amount } => {
            json!({"asset": asset.0, "to": to.to_bech32(), "amount": n(amount)})
        }
        Body::Burn { asset, amount } => json!({"asset": asset.0, "amount": n(amount)}),
        Body::CreateSociety {
            name,
            purpose,
            asset,
            rules,
            pledge,
        } => {
            json!({"name": name.as_str(), "purpose": purpose.as_str(), "asset": asset.0, "rules": rules_json(rules), "pledge": n(pledge)})
        }
        Body::Join {
            society,
            pledge,
            identity_commitment,
        } => {
            json!({"society": society.0, "pledge": n(pledge), "identity_commitment": identity_commitment.as_ref().map(h)})
        }
        Body::Contribute { society, amount } => json!({"society": society.0, "amount": n(amount)}),
        Body::FileRequest {
            society,
            amount,
            evidence_hash,
            memo,
            payee,
            installments,
        } => {
            json!({"society": society.0, "amount": n(amount), "evidence_hash": h(evidence_hash), "memo": memo.as_str(), "payee": payee.as_ref().map(|a| a.to_bech32()), "installments": installments})
        }
        Body::Vote {
            request,
            approve,
            percent,
        } => json!({"request": request.0, "approve": approve, "percent": percent}),
        Body::Delegate { society, to } => {
            json!({"society": society.0, "to": to.as_ref().map(|a| a.to_bech32())})
        }
        Body::Gift { request, amount } => json!({"request": request.0, "amount": n(amount)}),
        Body::Finalize { request } => json!({"request": request.0}),
        Body::Settle { society } | Body::Leave { society } | Body::Withdraw { society } => {
            json!({"society": society.0})
        }
        Body::ProposeAmendment { society, rules } => {
            json!({"society": society.0, "rules": rules_json(rules)})
        }
        Body::VoteAmendment { amendment, approve } => {
            json!({"amendment": amendment.0, "approve": approve})
        }
        Body::EnactAmendment { amendment } => json!({"amendment": amendment.0}),
        Body::Expel { society, member } => {
            json!({"society": society.0, "member": member.to_bech32()})
        }
        Body::ChangePledge { society, pledge } => {
            json!({"society": society.0, "pledge": n(pledge)})
        }
        Body::EndBenefit { request } | Body::ClaimBenefit { request } => {
            json!({"request": request.0})
        }
    };
    v["kind"] = Value::String(body.kind().to_string());
    v
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
    let genesis = Hash::of(&[b"kassa-vectors genesis"]);
    let txs: Vec<Value> = bodies(&alice, &bob)
        .into_iter()
        .enumerate()
        .map(|(i, (name, body))| {
            let tx = Transaction {
                chain_id: chain_id.clone(),
                genesis,
                signer: alice.address(),
                nonce: u64::try_from(i).unwrap(),
                fee: 1_000,
                expiry_height: 1_000_000,
                body,
            };
            let body_json = body_json(&tx.body);
            let signed = tx.clone().sign(&alice);
            assert!(signed.verify_signature());
            assert_eq!(SignedTransaction::decode(&signed.encode()).unwrap(), signed);
            json!({
                "name": name,
                "signer": "alice",
                "nonce": i,
                "fee": tx.fee.to_string(),
                "expiry_height": tx.expiry_height,
                "body": body_json,
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
        "genesis_hash": hex::encode(genesis.0),
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
    assert_eq!(kinds.len(), 22, "{kinds:?}");
}
