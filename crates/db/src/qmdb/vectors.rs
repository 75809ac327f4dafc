//! The commitment's proofs are frozen by `vectors/qmdb_proofs.json`: roots, state keys, values
//! and proofs (of current values, of absence inside a span of keys and of an empty state) over
//! states chosen so that together they reach every branch of a verifier — bitmap chunks grafted
//! and partial, peaks folded below the inactivity floor and peaks after the proven one. The
//! browser's verifier (`crates/api/web/qmdb.js`) checks itself against the same file. This test
//! regenerates the file and compares; a change of qmdb's proof or root fails here.
//!
//! To accept an intentional change: `KASSA_UPDATE_VECTORS=1 cargo test -p kassa-db qmdb_vectors`.

use super::*;
use commonware_codec::Read as _;
use serde_json::{Value, json};

fn path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors/qmdb_proofs.json")
}

fn state_key(i: u32) -> Vec<u8> {
    let mut k = b"k".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn value(block: u64, i: u32) -> Vec<u8> {
    format!("value of key {i} in block {block}")
        .into_bytes()
        .repeat(1 + (i % 3) as usize)
}

/// What a proof's bytes say about its shape (for the coverage check).
#[derive(Default, Debug)]
struct Shape {
    inactive_peaks: bool,
    partial_chunk: bool,
    in_partial_chunk: bool,
    span: bool,
    empty: bool,
}

fn shape_of(proof: &KeyProof, shape: &mut Shape) {
    let chunk_bits = CHUNK as u64 * 8;
    let range = match proof {
        KeyProof::Present(bytes) => {
            let p = Present::read_cfg(
                &mut bytes::Bytes::copy_from_slice(bytes),
                &(PROOF_DIGESTS_MAX, ()),
            )
            .unwrap();
            (p.proof.loc, p.proof.range_proof)
        }
        KeyProof::Absent(bytes) => {
            let value_cfg = ((0..=VALUE_MAX).into(), ());
            let cfg = (PROOF_DIGESTS_MAX, ((), value_cfg), value_cfg);
            match Absent::read_cfg(&mut bytes::Bytes::copy_from_slice(bytes), &cfg).unwrap() {
                ExclusionProof::KeyValue(p, _) => {
                    shape.span = true;
                    (p.loc, p.range_proof)
                }
                ExclusionProof::Commit(p, _) => {
                    shape.empty = true;
                    (p.loc, p.range_proof)
                }
            }
        }
    };
    let (loc, range_proof) = range;
    let leaves = *range_proof.proof.leaves;
    shape.inactive_peaks |= range_proof.proof.inactive_peaks > 0;
    shape.partial_chunk |= range_proof.partial_chunk_digest.is_some();
    shape.in_partial_chunk |= *loc / chunk_bits == leaves / chunk_bits;
}

#[test]
fn qmdb_vectors_are_what_the_commitment_proves() {
    let dir = tempfile::tempdir().unwrap();
    let c = Commitment::open(dir.path(), 8).unwrap();
    let mut states = Vec::new();
    let mut shape = Shape::default();
    let mut prove = |c: &Commitment, height: u64, keys: &[u32], absent: &[u32]| {
        let mut proofs = Vec::new();
        for &i in keys.iter().chain(absent) {
            let k = state_key(i);
            let (root, value, proof) = c.prove(&k).unwrap();
            assert_eq!(value.is_none(), absent.contains(&i), "key {i}");
            assert!(verify(&root, &k, value.as_deref(), &proof));
            shape_of(&proof, &mut shape);
            let (kind, bytes) = match &proof {
                KeyProof::Present(b) => ("present", b),
                KeyProof::Absent(b) => ("absent", b),
            };
            proofs.push(json!({
                "key": hex::encode(&k),
                "value": value.map(hex::encode),
                "kind": kind,
                "proof": hex::encode(bytes),
            }));
        }
        let root = c.root().unwrap();
        json!({ "height": height, "root": hex::encode(root.0), "proofs": proofs })
    };

    states.push(prove(&c, 0, &[], &[7]));
    // 600 keys, then blocks that update and delete some of them: the inactivity floor rises and
    // the log's length crosses chunk boundaries.
    let mut live: std::collections::BTreeSet<u32> = std::collections::BTreeSet::new();
    for h in 1..=8u32 {
        let height = u64::from(h);
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = if height == 1 {
            (0..600)
                .map(|i| (state_key(i), Some(value(1, i))))
                .collect()
        } else {
            (0..600)
                .filter(|i| i % 3 != h % 3)
                .map(|i| {
                    let delete = i % 50 == h;
                    (state_key(i), (!delete).then(|| value(height, i)))
                })
                .collect()
        };
        for (k, v) in &writes {
            let i = u32::from_be_bytes(k[1..].try_into().unwrap());
            if v.is_some() {
                live.insert(i);
            } else {
                live.remove(&i);
            }
        }
        let b = c.prepare(None, height, writes).unwrap();
        c.commit(&b, true).unwrap();
        if [1, 4, 8].contains(&height) {
            let gone: Vec<u32> = (0..600).filter(|i| !live.contains(i)).take(2).collect();
            let mut absent = gone;
            absent.push(1_000 + h);
            let present: Vec<u32> = live.iter().copied().step_by(97).collect();
            states.push(prove(&c, height, &present, &absent));
        }
    }
    assert!(
        shape.inactive_peaks
            && shape.partial_chunk
            && shape.in_partial_chunk
            && shape.span
            && shape.empty,
        "the vectors reach every branch of a verifier: {shape:?}"
    );

    let fresh = serde_json::to_string_pretty(&json!({
        "about": "Proofs of Kassa's state commitment (Commonware qmdb::current, ordered keys, \
                  SHA-256, 32-byte bitmap chunks). Regenerate with \
                  KASSA_UPDATE_VECTORS=1 cargo test -p kassa-db qmdb_vectors.",
        "states": Value::Array(states),
    }))
    .unwrap()
        + "\n";
    if std::env::var_os("KASSA_UPDATE_VECTORS").is_some() {
        std::fs::write(path(), &fresh).unwrap();
    }
    let stored = std::fs::read_to_string(path()).expect("vectors/qmdb_proofs.json is checked in");
    assert!(
        stored == fresh,
        "the commitment's proofs changed; if intended, regenerate with KASSA_UPDATE_VECTORS=1"
    );
}
