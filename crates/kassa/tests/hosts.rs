//! Many hosts on loopback: four validators (`kassa testnet init`) and eight followers as real
//! processes, some syncing from validators and some from other followers, some replaying from
//! genesis and some starting by state sync (one of those pruning), under a load of signed
//! transfers; then the validator one follower bootstraps from is `kill -9`ed. Every follower
//! but one follows over the hosting protocol (peer addresses; each hosts in turn), the last over
//! HTTP. Every follower reaches the validators' blocks and state roots; the one whose
//! bootstrapper died moves on to its next source. The test prints what it measured (follower
//! lag, bytes downloaded per block), which docs/performance.md records.
//!
//! Bounded: free loopback ports, and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports, testnet_init};
use kassa_types::tx::{Body, ChainId};
use kassa_types::{AssetId, SecretKey, Transaction};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

/// One follower: where it syncs from (peer addresses or URLs), and how it starts.
struct Host {
    bootstrap: String,
    sources: Vec<String>,
    state_sync: bool,
    prune_keep: Option<u64>,
}

/// Host `i`'s key in the hosting protocol (written to its data directory before it starts, so
/// that others can name it) and its peer address.
fn host_identity(dir: &Path, i: usize, port: u16) -> String {
    let seed = [u8::try_from(i).unwrap() + 1; 32];
    let data = dir.join(format!("host-{i}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("node.key"), hex::encode(seed)).unwrap();
    let key = kassa_node::consensus::key_from_seed(seed).unwrap();
    kassa_node::host::PeerAddr {
        key: kassa_node::consensus::public_key_bytes(&kassa_node::consensus::public_key(&key)),
        addr: ([127, 0, 0, 1], port).into(),
    }
    .to_string()
}

/// Starts host `i`: its API on `port`, hosting on `host_port`.
fn start(dir: &Path, i: usize, port: u16, host_port: u16, h: &Host) -> Proc {
    let sources: Vec<String> = h.sources.iter().map(|s| format!("{s:?}")).collect();
    let mut config = format!(
        "data_dir = {:?}\ngenesis = {:?}\nbootstrap = {:?}\nhttp = \"127.0.0.1:{port}\"\n\
         state_sync = {}\nsources = [{}]\n",
        dir.join(format!("host-{i}")),
        dir.join("net").join("genesis.json"),
        h.bootstrap,
        h.state_sync,
        sources.join(", ")
    );
    if let Some(keep) = h.prune_keep {
        config.push_str(&format!("prune_keep = {keep}\n"));
    }
    config.push_str(&format!("[host]\nlisten = \"127.0.0.1:{host_port}\"\n"));
    let path = dir.join(format!("host-{i}.toml"));
    std::fs::write(&path, config).unwrap();
    Proc::node(BIN, &path)
}

/// A counter's value in a node's `/metrics` (0 if absent).
fn counter(api: &Api, name: &str) -> u64 {
    api.metrics()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0, |v| v.trim().parse().unwrap_or(0))
}

/// Transfers from dev account `from` with nonces `nonces`, signed for the chain of `status`.
fn transfers(status: &serde_json::Value, from: usize, nonces: std::ops::Range<u64>) -> Vec<String> {
    let expiry_height = status["height"].as_u64().unwrap() + 500;
    let key = SecretKey::from_label(&format!("kassa-dev-{from}"));
    let chain_id = ChainId::new(status["chain_id"].as_str().unwrap().to_string()).unwrap();
    let genesis = kassa_types::Hash(
        hex::decode(status["genesis_hash"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    nonces
        .map(|nonce| {
            let tx = Transaction {
                chain_id: chain_id.clone(),
                genesis,
                signer: key.address(),
                nonce,
                fee: 1_000,
                expiry_height,
                body: Body::Transfer {
                    to: SecretKey::from_label(&format!("hosts-test-{}", nonce % 97)).address(),
                    asset: AssetId::NATIVE,
                    amount: 1_000,
                },
            }
            .sign(&key);
            hex::encode(tx.encode())
        })
        .collect()
}

#[test]
fn eight_followers_of_validators_and_of_each_other_reach_the_validators_state_and_survive_a_dead_bootstrapper()
 {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (http, p2p, host) = (free_ports(5), free_ports(4), free_ports(5));
    let (hosts_port, hosts_host) = (free_ports(8), free_ports(8));
    testnet_init(BIN, &dir.join("net"), 250, http, p2p, host);
    // The load comes from one client (this test): lift the per-client submission rate.
    for i in 0..4 {
        let path = dir.join("net").join(format!("validator-{i}.toml"));
        let mut config = std::fs::read_to_string(&path).unwrap();
        config.push_str("\n[api]\nsubmit_per_sec = 0\n");
        std::fs::write(&path, config).unwrap();
    }
    let mut validators: Vec<Proc> = (0..4)
        .map(|i| Proc::node(BIN, &dir.join("net").join(format!("validator-{i}.toml"))))
        .collect();
    let v: Vec<Api> = (0..4u16).map(|i| Api::at(http + i)).collect();
    v[1].wait_height(3, "the validators start");

    // Hosts 0–3 sync from a validator; 4–7 from hosts 0–3 (a validator as a further source).
    // Odd hosts start by state sync; host 3 prunes. All over the hosting protocol but host 7,
    // which uses the APIs.
    let genesis: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("net").join("genesis.json")).unwrap(),
    )
    .unwrap();
    let validator_peer = |i: usize| {
        format!(
            "{}@127.0.0.1:{}",
            genesis["validators"][i].as_str().unwrap(),
            host + u16::try_from(i).unwrap()
        )
    };
    let host_peers: Vec<String> = (0..8u16)
        .map(|i| host_identity(dir, i.into(), hosts_host + i))
        .collect();
    let url = |api: &Api| api.0.clone();
    let f: Vec<Api> = (0..8u16).map(|i| Api::at(hosts_port + i)).collect();
    let plan: Vec<Host> = (0..8usize)
        .map(|i| {
            let (bootstrap, sources) = if i < 4 {
                (validator_peer(i), vec![validator_peer((i + 1) % 4)])
            } else if i < 7 {
                (host_peers[i - 4].clone(), vec![validator_peer((i + 1) % 4)])
            } else {
                (url(&f[i - 4]), vec![url(&v[(i + 1) % 4])])
            };
            Host {
                bootstrap,
                sources,
                state_sync: i % 2 == 1,
                prune_keep: (i == 3).then_some(20),
            }
        })
        .collect();
    let mut hosts: Vec<Proc> = Vec::new();
    for (i, h) in (0u16..).zip(&plan).take(4) {
        hosts.push(start(dir, i.into(), hosts_port + i, hosts_host + i, h));
    }
    for host in &f[..4] {
        host.wait_height(3, "the first hosts sync");
    }
    for (i, h) in (0u16..).zip(&plan).skip(4) {
        hosts.push(start(dir, i.into(), hosts_port + i, hosts_host + i, h));
    }

    // Load: transfers from four dev accounts, a batch a round to each validator in turn; the
    // validator host 0 bootstraps from dies half-way.
    let started = Instant::now();
    let height_before = v[1].height();
    // Lags of the hosts syncing from validators, and of those syncing from hosts.
    let mut lags: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    // Transfers a round from each of the six dev accounts 4–9 (10 by default: 60 a round, about
    // 180 a second; `KASSA_HOSTS_PER_ACCOUNT` changes it, to measure at other loads).
    let per: u64 = std::env::var("KASSA_HOSTS_PER_ACCOUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rounds = 24usize;
    let accounts = 4..10usize;
    for round in 0..rounds {
        // Each account's transactions go to one validator (1–3), which then holds its earlier
        // nonces: no gaps.
        for (to, api) in v.iter().enumerate().skip(1) {
            let status = api.get("/api/v1/status");
            let first = round as u64 * per;
            let txs: Vec<String> = accounts
                .clone()
                .filter(|a| a % 3 == to - 1)
                .flat_map(|from| transfers(&status, from, first..first + per))
                .collect();
            let answer = api.post("/api/v1/txs/batch", &json!({ "txs": txs }));
            let results = answer["results"].as_array().expect("results");
            assert_eq!(results.len(), txs.len());
            let refused = results.iter().find(|r| r.get("error").is_some());
            assert!(refused.is_none(), "round {round}: {refused:?}");
        }
        // Lag of every host behind the validators, sampled a few times a round.
        for _ in 0..3 {
            let head = v[1].height();
            for (i, host) in f.iter().enumerate() {
                lags[i / 4].push(head.saturating_sub(host.height()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let load_ms = u64::try_from(started.elapsed().as_millis()).unwrap();
    // The validator host 0 bootstraps from dies: host 0 must move on to reach what follows.
    validators[0].kill9();
    let load_blocks = v[1].height() - height_before;

    // Every transfer is final (the last of each account's), then every host reaches the
    // validators' blocks and state roots.
    for from in accounts {
        let key = SecretKey::from_label(&format!("kassa-dev-{from}"));
        v[1].wait_status(Duration::from_secs(60), "the load is final", |_| {
            v[1].try_get(&format!("/api/v1/accounts/{}", key.address()))
                .and_then(|a| a["nonce"].as_u64())
                .is_some_and(|n| n == rounds as u64 * per)
        });
    }
    let target = v[1].height() + 2;
    v[1].wait_height(target, "the validators go on");
    for (i, host) in f.iter().enumerate() {
        host.wait_height(target, &format!("host {i} catches up"));
        assert_eq!(
            host.block(target),
            v[1].block(target),
            "host {i} at {target}"
        );
    }
    // Those started by state sync hold no history below where they started.
    for i in [1usize, 3, 5, 7] {
        let s = f[i].get("/api/v1/status");
        assert!(s["pruned_below"].as_u64().unwrap() > 0, "host {i}: {s}");
    }
    // Host 0's bootstrapper died: it moved on to its next source.
    assert!(counter(&f[0], "kassa_follower_source_switches_total") >= 1);

    let quantiles = |l: &mut Vec<u64>| {
        l.sort_unstable();
        format!(
            "p50 {} p90 {} max {}",
            l[l.len() / 2],
            l[l.len() * 9 / 10],
            l[l.len() - 1]
        )
    };
    let (first, second) = (quantiles(&mut lags[0]), quantiles(&mut lags[1]));
    let blocks = f[4].height();
    let bytes = counter(&f[4], "kassa_follower_received_bytes_total");
    let txs = rounds as u64 * per * 6;
    eprintln!(
        "hosts: {txs} transfers in {load_ms} ms ({} tx/s offered), 4 validators + 8 hosts; \
         lag behind validator 1, in blocks, of hosts syncing from validators {first}, of hosts \
         syncing from hosts {second} ({} samples each); host 4 (genesis replay through host 0) \
         downloaded {bytes} bytes of blocks for {blocks} blocks ({} bytes per block)",
        txs * 1000 / load_ms.max(1),
        lags[0].len(),
        bytes / blocks.max(1)
    );
    // How fast one core checks a certificate of these four validators, against the block rate.
    let finality = v[1].get(&format!("/api/v1/blocks/{target}/finality"));
    let certificate = hex::decode(finality["certificate"].as_str().unwrap()).unwrap();
    let block = kassa_types::Hash(
        hex::decode(finality["block"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let keys: Vec<_> = genesis["validators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let bytes: [u8; 32] = hex::decode(k.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            kassa_node::consensus::public_key_from_bytes(bytes).unwrap()
        })
        .collect();
    let namespace = kassa_node::consensus::namespace(genesis["chain_id"].as_str().unwrap());
    let mut rng = rand_core_10::UnwrapErr(getrandom::SysRng);
    let checks = 200u64;
    let t = Instant::now();
    for _ in 0..checks {
        let signers = kassa_node::consensus::verify_finalization(
            &mut rng,
            &namespace,
            &keys,
            &certificate,
            &block,
        )
        .unwrap();
        assert!(signers >= 3);
    }
    let per_sec = checks * 1_000_000 / u64::try_from(t.elapsed().as_micros()).unwrap().max(1);
    let block_ms = load_ms / load_blocks.max(1);
    eprintln!(
        "hosts: one core checks {per_sec} certificates a second; the chain made a block every \
         ~{block_ms} ms"
    );

    for p in hosts.iter_mut().chain(validators.iter_mut().skip(1)) {
        p.interrupt();
    }
}
