//! The starting corpora: inputs that reach deep into each target at once, so the fuzzers begin
//! from valid transactions, blocks and requests rather than from nothing. `fuzz-seeds` writes
//! them as files; the corpus test replays them with the committed corpora.

use crate::{api, state};
use commonware_codec::Encode as _;
use kassa_node::consensus::{CBlock, genesis_context};
use kassa_state::testkit::SplitMix;
use kassa_testkit::key;
use kassa_types::tx::{Body, Memo};
use kassa_types::{AmendmentId, AssetId, Hash, RequestId};

/// The seeds of target `name` (one of [`crate::TARGETS`]).
///
/// # Panics
/// When `name` is not a target.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "tx" => tx(),
        "block" => block(),
        "api" => api(),
        "state" => state(),
        "host" => host(),
        other => panic!("no fuzz target {other}"),
    }
}

/// One message of each kind, either way.
fn host() -> Vec<Vec<u8>> {
    use kassa_node::host::wire::{self, Finality, Peer, Refusal, Request, Response};
    let requests = [
        Request::Height,
        Request::Finality { from: 3 },
        Request::Block { height: 7 },
        Request::Offers,
        Request::Sync {
            request: vec![0, 1, 2, 3],
        },
        Request::Forward {
            txs: tx().into_iter().take(2).collect(),
        },
        Request::Peers {
            listen: Some(31650),
        },
    ];
    let answers = [
        Response::Height(9),
        Response::Finality(Some(Finality {
            height: 9,
            block: [2; 32],
            header: vec![3; 40],
            certificate: vec![4; 80],
        })),
        Response::Block(vec![5; 64]),
        Response::Offers(vec![(
            512,
            kassa_db::Committed {
                root: kassa_types::Hash([6; 32]),
                height: Some(512),
                ops_root: kassa_types::Hash([7; 32]),
                witness: vec![8; 34],
                start: 256,
                end: 900,
            },
        )]),
        Response::Sync(vec![6; 64]),
        Response::Forwarded { refused: 1 },
        Response::Peers(vec![
            Peer::new([7; 32], "10.0.0.1:31650".parse().expect("an address")),
            Peer::new([8; 32], "[2001:db8::1]:31650".parse().expect("an address")),
        ]),
        Response::Refused {
            why: Refusal::Pruned,
            message: "pruned".into(),
        },
    ];
    requests
        .iter()
        .map(wire::encode)
        .chain(answers.iter().map(wire::encode))
        .collect()
}

/// One transaction of each kind, signed by a member of the populated society with the nonce it
/// has there.
fn tx() -> Vec<Vec<u8>> {
    let s = state::start(0);
    let society = s.society;
    let bodies = [
        Body::Contribute {
            society,
            amount: 100,
        },
        Body::FileRequest {
            society,
            amount: 200,
            evidence_hash: Hash::of(&[b"evidence"]),
            memo: Memo::new("roof").expect("a memo"),
            payee: None,
            installments: 2,
        },
        Body::Vote {
            request: RequestId(0),
            approve: true,
            percent: 100,
        },
        Body::Finalize {
            request: RequestId(0),
        },
        Body::Gift {
            request: RequestId(0),
            amount: 50,
        },
        Body::Delegate {
            society,
            to: Some(key(2).address()),
        },
        Body::ChangePledge {
            society,
            pledge: 300,
        },
        Body::Leave { society },
        Body::Withdraw { society },
        Body::Settle { society },
        Body::ProposeAmendment {
            society,
            rules: state::rules(1),
        },
        Body::VoteAmendment {
            amendment: AmendmentId(0),
            approve: true,
        },
        Body::Transfer {
            to: key(5).address(),
            asset: s.asset,
            amount: 10,
        },
        Body::Join {
            society,
            pledge: 100,
            identity_commitment: None,
        },
        Body::Burn {
            asset: AssetId::NATIVE,
            amount: 1,
        },
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let k = key(if matches!(body, Body::Join { .. }) {
                5
            } else {
                i % 4
            });
            s.chain.sign(&k, body).encode()
        })
        .collect()
}

/// A block of the fuzzed API node as itself, as the engine's message, and certificate-sized
/// noise.
fn block() -> Vec<Vec<u8>> {
    let node = api::node();
    let mut out = Vec::new();
    for height in 1..=3 {
        let mut b = node
            .db()
            .block(height)
            .expect("the database reads")
            .expect("the block is stored");
        b.header.consensus =
            kassa_types::BoundedVec::new(genesis_context()).expect("a context fits its bound");
        out.push([&[0u8][..], &b.encode()].concat());
        let cb = CBlock::new(b).expect("the genesis context decodes");
        out.push([&[1u8][..], cb.encode().as_ref()].concat());
    }
    let mut rng = SplitMix(7);
    for len in [0usize, 40, 200, 400] {
        let noise: Vec<u8> = (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect();
        out.push([&[2u8][..], &noise].concat());
    }
    out
}

/// Every route once with a well-formed request, and submissions of a valid transaction.
fn api() -> Vec<Vec<u8>> {
    let node = api::node();
    let tx = kassa_testkit::signed_for(
        node,
        &key(1),
        0,
        1_000,
        Body::Burn {
            asset: AssetId::NATIVE,
            amount: 1,
        },
    );
    let hex_tx = hex::encode(tx.encode());
    let mut out = Vec::new();
    for (i, (method, template)) in api::ROUTES.iter().enumerate() {
        let mut seed = vec![u8::try_from(i).expect("few routes")];
        // Each parameter: a small number (choice 1, then the number).
        for _ in 1..template.split("{}").count() {
            seed.extend([1, 0]);
        }
        seed.push(99); // no query string
        let body = match template.rsplit('/').next() {
            Some("txs") => format!(r#"{{"tx":"{hex_tx}"}}"#),
            Some("batch") => format!(r#"{{"txs":["{hex_tx}","00"]}}"#),
            Some("faucet") => format!(r#"{{"address":"{}"}}"#, key(3).address()),
            _ => String::new(),
        };
        assert!(*method == "POST" || body.is_empty());
        seed.extend(body.as_bytes());
        out.push(seed);
    }
    out
}

/// Byte strings of several lengths: every one is a program of the state target.
fn state() -> Vec<Vec<u8>> {
    (0..8u64)
        .map(|seed| {
            let mut rng = SplitMix(seed);
            let len = 64 + 64 * usize::try_from(seed).expect("small");
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect();
            bytes
        })
        .collect()
}
