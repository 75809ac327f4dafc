//! Real networks of `kassa node` processes on loopback.
//!
//! - Four validators from `kassa testnet init`: transactions submitted to different nodes are
//!   finalized everywhere; one validator is `kill -9`ed, the other three keep finalizing (and
//!   include what is submitted meanwhile); it restarts from its storage and catches up to the
//!   same blocks and state roots.
//! - `kassa testnet run` starts a network; a follower joins with just the genesis and the
//!   bootstrapper's address, syncs the whole chain, serves it, forwards a transaction, and passes
//!   `kassa audit`; Ctrl-C stops the network.
//!
//! Bounded: free loopback ports, and every wait has a deadline.

mod common;

use common::free_ports;
use kassa_types::tx::{Body, ChainId};
use kassa_types::{AssetId, SecretKey, Transaction};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kassa");
const LIMIT: Duration = Duration::from_secs(90);

/// One running `kassa` process, killed when dropped.
struct Proc {
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn spawn(args: &[&str], config: Option<&Path>, log: PathBuf) -> Proc {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        if let Some(c) = config {
            cmd.arg(c);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Proc {
            child: Some(child),
            log,
        }
    }

    fn node(config: &Path) -> Proc {
        Proc::spawn(
            &["node", "--config"],
            Some(config),
            config.with_extension("log"),
        )
    }

    fn kill9(&mut self) {
        let mut c = self.child.take().unwrap();
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
    }

    /// Ctrl-C, and wait for the exit.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on Ctrl-C",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", common::log_tail(&self.log, 60));
        }
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_millis(500));
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A node's API.
struct Api(String);

impl Api {
    fn at(port: u16) -> Api {
        Api(format!("http://127.0.0.1:{port}"))
    }

    fn try_get(&self, path: &str) -> Option<Value> {
        let mut r = ureq::get(format!("{}{path}", self.0)).call().ok()?;
        r.body_mut().read_json().ok()
    }

    fn get(&self, path: &str) -> Value {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {}{path} failed", self.0))
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let mut r = ureq::post(format!("{}{path}", self.0))
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {}{path}: {e}", self.0));
        r.body_mut().read_json().unwrap()
    }

    fn height(&self) -> u64 {
        self.try_get("/api/v1/status")
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    /// Waits until the node's height reaches `h`.
    fn wait_height(&self, h: u64, what: &str) {
        let deadline = Instant::now() + LIMIT;
        while self.height() < h {
            assert!(
                Instant::now() < deadline,
                "{what}: {} stuck at {}",
                self.0,
                self.height()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for a transaction's receipt here.
    fn receipt(&self, hash: &str) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            // Unknown here (404) until it is relayed, forwarded or synced.
            if let Some(v) = self.try_get(&format!("/api/v1/txs/{hash}"))
                && (v["status"] == "applied" || v["status"] == "failed")
            {
                return v;
            }
            assert!(Instant::now() < deadline, "{hash} not final on {}", self.0);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The faucet pays `to` (each testnet validator's faucet pays from its own dev account).
    fn drip(&self, to: &SecretKey) -> String {
        let v = self.post(
            "/api/v1/faucet",
            &json!({"address": to.address().to_bech32()}),
        );
        v["hash"].as_str().unwrap().to_string()
    }

    /// (block id, state root) at height `h`.
    fn block(&self, h: u64) -> (Value, Value) {
        let b = self.get(&format!("/api/v1/blocks/{h}"));
        (b["hash"].clone(), b["state_root"].clone())
    }
}

fn testnet_init(dir: &Path, http: u16, p2p: u16) {
    let out = Command::new(BIN)
        .args(["testnet", "init", "--validators", "4", "--block-ms", "250"])
        .arg("--dir")
        .arg(dir)
        .args([
            "--http-port",
            &http.to_string(),
            "--p2p-port",
            &p2p.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "testnet init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn four_validators_keep_finalizing_without_a_killed_one_which_restarts_and_catches_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (http, p2p) = (free_ports(5), free_ports(4));
    testnet_init(&dir, http, p2p);
    let config = |i: usize| dir.join(format!("validator-{i}.toml"));
    let mut procs: Vec<Proc> = (0..4).map(|i| Proc::node(&config(i))).collect();
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
    procs[3] = Proc::node(&config(3));
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
fn a_follower_joins_with_the_genesis_and_a_bootstrapper_syncs_serves_forwards_and_audits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let (http, p2p) = (free_ports(5), free_ports(4));
    let mut net = Proc::spawn(
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
            "--dir",
            dir.to_str().unwrap(),
        ],
        None,
        tmp.path().join("testnet.log"),
    );
    let v0 = Api::at(http);
    v0.wait_height(3, "testnet run starts the network");
    let bob = SecretKey::from_label("network-test-bob");
    let paid = v0.drip(&bob);
    v0.receipt(&paid);

    // The follower: its config names the genesis and a bootstrapper, no key.
    let follower_cfg = std::fs::read_to_string(dir.join("follower.toml")).unwrap();
    assert!(follower_cfg.contains("bootstrap") && !follower_cfg.contains("validator_key"));
    let mut follower = Proc::node(&dir.join("follower.toml"));
    let f = Api::at(http + 4);
    let h = v0.height();
    f.wait_height(h, "the follower syncs the chain");
    assert_eq!(f.block(h), v0.block(h), "the same block and state root");
    assert_eq!(f.receipt(&paid)["status"], "applied");

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

    follower.interrupt();
    assert!(net.interrupt().success(), "Ctrl-C stops the whole testnet");
    for i in 0..4u16 {
        assert!(
            Api::at(http + i).try_get("/api/v1/status").is_none(),
            "validator {i} stopped with the testnet"
        );
    }
}
