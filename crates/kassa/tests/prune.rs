//! A node that keeps only its newest heights (`kassa node --prune-keep N`): it serves those with
//! proofs and certificates as an archive does (`kassa verify` works against it), answers older
//! ones `404 pruned`, prunes its consensus storage too, goes on pruning after a restart (and
//! refuses to restart as an archive), and `kassa audit` checks it from the snapshot of its
//! oldest kept height instead of from genesis.
//!
//! Bounded: the node listens on free loopback ports and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports, run_json};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kassa");
const KEEP: u64 = 10;

/// Status code and JSON body of `GET path` (also for error answers).
fn get(api: &Api, path: &str) -> (u16, Value) {
    let mut r = ureq::get(format!("{}{path}", api.0))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_json().unwrap())
}

fn start(dir: &Path, port: u16) -> Proc {
    start_with(dir, port, &["--prune-keep", &KEEP.to_string()])
}

fn start_with(dir: &Path, port: u16, extra: &[&str]) -> Proc {
    Proc::dev_node(
        BIN,
        &dir.join("node"),
        port,
        50,
        extra,
        dir.join("node.log"),
    )
}

/// Waits until the node has pruned up to where `--prune-keep` says (it catches up a few
/// heights a block); returns the status.
fn pruned_to_keep(api: &Api, at_least: u64) -> Value {
    api.wait_status(Duration::from_secs(60), "the node prunes", |s| {
        let (h, below) = (
            s["height"].as_u64().unwrap(),
            s["pruned_below"].as_u64().unwrap(),
        );
        h >= at_least && below + KEEP >= h
    })
}

#[test]
fn a_pruning_node_serves_its_newest_heights_and_proofs_of_its_state_and_refuses_older_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(2);
    let mut node = start(dir.path(), port);
    let api = Api::at(port);
    api.wait_height(1, "the node starts");
    let bob = kassa_types::SecretKey::from_label("prune-test-bob");
    let paid = api.drip(&bob);
    let receipt = api.receipt(&paid);
    let paid_at = receipt["height"].as_u64().unwrap();

    let status = pruned_to_keep(&api, paid_at + 3 * KEEP);
    let below = status["pruned_below"].as_u64().unwrap();
    assert!(below > paid_at, "{status}");

    // Older heights: their blocks and transactions are gone, and the node says so.
    let account = hex::encode(kassa_state::keys::account(&bob.address()));
    assert_eq!(get(&api, &format!("/api/v1/blocks/{paid_at}")).0, 404);
    assert_eq!(get(&api, &format!("/api/v1/txs/{paid}")).0, 404);

    // Proofs of its current state against the root of the block of their height, as an archive
    // serves them.
    let (code, proof) = get(&api, &format!("/api/v1/proofs/{account}"));
    assert_eq!(code, 200, "{proof}");
    let at = proof["height"].as_u64().unwrap();
    let (_, block) = get(&api, &format!("/api/v1/blocks/{at}"));
    assert_eq!(proof["state_root"], block["state_root"]);
    assert!(
        proof["value"].is_string(),
        "bob's account is proven present"
    );

    // A light client checks a value against the validators, as against any node.
    let genesis = dir.path().join("node").join("genesis.json");
    let genesis = genesis.to_str().unwrap();
    let v = run_json(
        BIN,
        &[
            "--json",
            "--node",
            &api.0,
            "verify",
            "--genesis",
            genesis,
            "key",
            &account,
        ],
    );
    assert_eq!(v["verified"], true);

    // An audit cannot replay from genesis: it starts from the state of a height the node offers
    // and keeps the later blocks of, checked against that block's root, and replays to a
    // certified block.
    let audit = run_json(BIN, &["--json", "--node", &api.0, "audit"]);
    let from = audit["from_height"].as_u64().unwrap();
    assert!(from >= below, "{audit}");
    assert_eq!(audit["from"], format!("snapshot of height {from}"));
    assert!(audit["blocks"].as_u64().unwrap() >= 1, "{audit}");

    // Consensus storage is pruned too, a section of blocks at a time (marshal's archives count
    // what they dropped).
    let pruned_blocks = |api: &Api| -> u64 {
        api.metrics()
            .lines()
            .find_map(|l| l.strip_prefix("consensus_engine_finalized_blocks_indices_pruned_total "))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    api.wait_status(Duration::from_secs(120), "marshal prunes a section", |_| {
        pruned_blocks(&api) > 0
    });

    // It may not come back as an archive: its consensus storage is of the pruned kind.
    let head = api.height();
    assert!(node.interrupt().success());
    let mut archive = start_with(dir.path(), port, &[]);
    let exit = archive
        .wait_exit(Duration::from_secs(60))
        .expect("the node refuses to start");
    assert!(!exit.success());
    assert!(
        archive.log_tail().contains("start it with --prune-keep"),
        "{}",
        archive.log_tail()
    );

    // Restarted as it was, it resumes where it was and goes on pruning.
    let _node = start(dir.path(), port);
    api.wait_height(head + 1, "the node resumes");
    let again = pruned_to_keep(&api, head + 2 * KEEP);
    assert!(again["pruned_below"].as_u64().unwrap() > below);
}
