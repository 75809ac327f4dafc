//! Real networks of `kassa node` processes on loopback.
//!
//! - Four validators from `kassa testnet init`: transactions submitted to different nodes are
//!   finalized everywhere; one validator is `kill -9`ed, the other three keep finalizing (and
//!   include what is submitted meanwhile); it restarts from its storage and catches up to the
//!   same blocks and state roots.
//! - `kassa testnet run` starts a network; a follower joins with just the genesis and the
//!   validators' host addresses, syncs the whole chain over the hosting protocol (no validator's
//!   API), serves it, forwards a transaction, and passes `kassa audit`; a second follower that
//!   knows only the first finds the validators through it and keeps following when the first
//!   stops; Ctrl-C stops the network.
//!
//! Bounded: free loopback ports, and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports, testnet_init};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{AssetId, SecretKey, Transaction};
use serde_json::{Value, json};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

#[test]
fn four_validators_keep_finalizing_without_a_killed_one_which_restarts_and_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (http, p2p, host) = (free_ports(5), free_ports(4), free_ports(5));
    testnet_init(BIN, &dir, 250, http, p2p, host);
    let config = |i: usize| dir.join(format!("validator-{i}.toml"));
    let mut procs: Vec<Proc> = (0..4).map(|i| Proc::node(BIN, &config(i))).collect();
    let apis: Vec<Api> = (0..4u16).map(|i| Api::at(http + i)).collect();
    for api in &apis {
        api.wait_height(2, "the network starts");
    }

    // Transactions sent to one node are final on all (relayed to whoever proposes).
    let alice = SecretKey::from_label("network-test-alice");
    let sent: Vec<String> = (0..4).map(|i| apis[i].drip(&alice)).collect();
    for hash in &sent {
        for api in &apis {
            assert_eq!(api.receipt(hash)["status"], "applied", "{hash}");
        }
    }

    // kill -9 one validator: the other three (a quorum of 3f+1 = 4) keep finalizing.
    procs[3].kill9();
    let at_kill = apis[0].height();
    let while_down = apis[1].drip(&alice);
    apis[0].wait_height(at_kill + 10, "three of four validators finalize");
    assert_eq!(apis[2].receipt(&while_down)["status"], "applied");
    let balance = apis[0].get(&format!("/api/v1/accounts/{}", alice.address()));
    assert_eq!(
        balance["balances"][0]["amount"], "500000000",
        "five faucet payments of 100 KAS"
    );

    // Restart it from its storage: it backfills what it missed and re-executes it.
    procs[3] = Proc::node(BIN, &config(3));
    let target = apis[0].height() + 3;
    apis[3].wait_height(target, "the restarted validator catches up");
    for h in [at_kill, at_kill + 5, target] {
        assert_eq!(
            apis[3].block(h),
            apis[0].block(h),
            "the same block and root at {h}"
        );
    }
    assert_eq!(apis[3].receipt(&while_down)["status"], "applied");
    // And it takes part again: the chain goes on with its votes and proposals.
    apis[3].wait_height(target + 8, "the chain goes on");
    for p in &mut procs {
        p.interrupt();
    }
}

#[test]
fn a_follower_joins_by_peer_addresses_syncs_serves_forwards_and_audits_and_its_own_follower_outlives_it()
 {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (http, p2p, host) = (free_ports(5), free_ports(4), free_ports(5));
    let mut net = Proc::spawn(
        BIN,
        &[
            "testnet",
            "run",
            "--validators",
            "4",
            "--block-ms",
            "250",
            "--http-port",
            &http.to_string(),
            "--p2p-port",
            &p2p.to_string(),
            "--host-port",
            &host.to_string(),
            "--dir",
            dir.to_str().unwrap(),
        ],
        tmp.path().join("testnet.log"),
    );
    let v0 = Api::at(http);
    v0.wait_height(3, "testnet run starts the network");
    let bob = SecretKey::from_label("network-test-bob");
    let paid = v0.drip(&bob);
    v0.receipt(&paid);

    // The follower: its config names the genesis and the validators as peers (no URL), no key.
    let follower_cfg = std::fs::read_to_string(dir.join("follower.toml")).unwrap();
    assert!(follower_cfg.contains("bootstrap") && !follower_cfg.contains("validator_key"));
    assert!(
        !follower_cfg.contains("http://"),
        "it follows over the hosting protocol: {follower_cfg}"
    );
    let mut follower = Proc::node(BIN, &dir.join("follower.toml"));
    let f = Api::at(http + 4);
    let h = v0.height();
    f.wait_height(h, "the follower syncs the chain");
    assert_eq!(f.block(h), v0.block(h), "the same block and state root");
    assert_eq!(f.receipt(&paid)["status"], "applied");

    // It serves the certificates it checked: a light client verifies what the follower says
    // against the genesis validators, without asking a validator.
    let verified = Command::new(BIN)
        .args(["--json", "--node", &f.0, "verify", "--genesis"])
        .arg(dir.join("genesis.json"))
        .args([
            "key",
            &hex::encode(kassa_state::keys::account(&bob.address())),
        ])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "kassa verify against the follower: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let v: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert!(v["signers"].as_u64().unwrap() >= 3, "a quorum of 4: {v}");
    // Its metrics say how far behind its bootstrapper it is.
    let metrics = f.metrics();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kassa_follower_lag_blocks ")),
        "{metrics}"
    );

    // It forwards a transaction submitted to it.
    let status = f.get("/api/v1/status");
    let tx = Transaction {
        chain_id: ChainId::new(status["chain_id"].as_str().unwrap().to_string()).unwrap(),
        genesis: kassa_types::Hash(
            hex::decode(status["genesis_hash"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        ),
        signer: bob.address(),
        nonce: 0,
        fee: 1_000,
        expiry_height: h + 1_000,
        body: Body::Transfer {
            to: SecretKey::from_label("network-test-carol").address(),
            asset: AssetId::NATIVE,
            amount: 1_000_000,
        },
    }
    .sign(&bob);
    let sent = f.post("/api/v1/txs", &json!({"tx": hex::encode(tx.encode())}));
    let hash = sent["hash"].as_str().unwrap().to_string();
    assert_eq!(
        v0.receipt(&hash)["status"],
        "applied",
        "forwarded to the validators"
    );
    assert_eq!(f.receipt(&hash)["status"], "applied", "and synced back");

    // Anyone can audit the follower's copy: replay from genesis, every root, every invariant.
    let audit = Command::new(BIN)
        .args(["--json", "--node", &f.0, "audit"])
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "audit of the follower: {}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["blocks"].as_u64().unwrap() >= h);

    // A second follower knows only the first (by its host address), learns the validators'
    // hosts from it, and keeps following once the first is gone.
    let seed = std::fs::read_to_string(dir.join("follower").join("node.key")).unwrap();
    let seed: [u8; 32] = hex::decode(seed.trim()).unwrap().try_into().unwrap();
    let first = kassa_node::host::PeerAddr {
        key: kassa_node::consensus::public_key_bytes(&kassa_node::consensus::public_key(
            &kassa_node::consensus::key_from_seed(seed).unwrap(),
        )),
        addr: ([127, 0, 0, 1], host + 4).into(),
    };
    let second_http = free_ports(1);
    let second_cfg = tmp.path().join("second.toml");
    std::fs::write(
        &second_cfg,
        format!(
            "data_dir = {:?}\ngenesis = {:?}\nbootstrap = \"{first}\"\nhttp = \"127.0.0.1:{second_http}\"\n",
            tmp.path().join("second"),
            dir.join("genesis.json"),
        ),
    )
    .unwrap();
    let mut second = Proc::node(BIN, &second_cfg);
    let f2 = Api::at(second_http);
    f2.wait_height(v0.height(), "the second follower syncs from the first");
    let served = f
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("kassa_host_requests_total "))
        .map_or(0, |v| v.trim().parse::<u64>().unwrap_or(0));
    assert!(
        served > 0,
        "the first follower's metrics count what it hosted"
    );
    follower.interrupt();
    let later = v0.height() + 8;
    f2.wait_height(later, "the second follower goes on without the first");
    assert_eq!(
        f2.block(later),
        v0.block(later),
        "the same block and state root"
    );
    second.interrupt();
    assert!(net.interrupt().success(), "Ctrl-C stops the whole testnet");
    for i in 0..4u16 {
        assert!(
            Api::at(http + i).try_get("/api/v1/status").is_none(),
            "validator {i} stopped with the testnet"
        );
    }
}
