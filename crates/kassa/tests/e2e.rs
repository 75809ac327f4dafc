//! A whole society on a real `kassa node --dev` process, through the CLI and the API: an issued
//! stable asset, 22 members who join and contribute over several periods, a request with an
//! evidence hash, votes, finalization with pro-rata shares visible in every member's gift
//! account, gifts, a member who leaves and withdraws; then `kill -9`, a restart to the same state
//! root with every finalized transaction, `kassa audit` (from the running node and from the data
//! directory), and a balance proof verified by the client.
//!
//! Bounded: the node listens on free loopback ports and every wait has a deadline.
//!
//! Over 600 lines: one society's life on real processes, whose steps build on each other, and the
//! scripted attacker.

use kassa_testkit::{Api, Proc, free_ports};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kassa");
const MEMBERS: usize = 22;

/// A `kassa node` process and its API.
struct NodeProc {
    proc: Proc,
    api: Api,
    http: u16,
    p2p: u16,
}

impl NodeProc {
    /// `kassa node --dev` on `data_dir`, logging to `data_dir.log`; returns once it has
    /// finalized a block.
    fn start(data_dir: &Path, http: u16, p2p: u16) -> NodeProc {
        let (http_addr, p2p_addr) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{p2p}"));
        let args = [
            "node".as_ref(),
            "--dev".as_ref(),
            "--block-ms".as_ref(),
            "200".as_ref(),
            "--data-dir".as_ref(),
            data_dir.as_os_str(),
            "--http".as_ref(),
            http_addr.as_ref(),
            "--p2p".as_ref(),
            p2p_addr.as_ref(),
        ];
        let proc = Proc::spawn::<&std::ffi::OsStr>(BIN, &args, data_dir.with_extension("log"));
        let n = NodeProc {
            proc,
            api: Api::at(http),
            http,
            p2p,
        };
        n.wait_until(Duration::from_secs(60), |s| {
            s["height"].as_u64().unwrap_or(0) >= 1
        });
        n
    }

    fn url(&self) -> String {
        self.api.0.clone()
    }

    fn get(&self, path: &str) -> Value {
        self.api.get(path)
    }

    fn wait_until(&self, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        self.api.wait_status(limit, "the node", done)
    }

    /// Waits for a transaction's receipt.
    fn receipt(&self, hash: &str) -> Value {
        self.api.receipt(hash)
    }

    fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// Ctrl-C: the node stops cleanly.
    fn interrupt(&mut self) {
        assert!(
            self.proc.interrupt().success(),
            "the node exits 0 on Ctrl-C"
        );
    }
}

struct Cli {
    home: PathBuf,
    node: String,
}

impl Cli {
    /// Runs `kassa --json ARGS`, returns its JSON output; panics with its stderr on failure.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kassa {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "kassa {args:?}: not JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_as(&["--json"], args)
    }

    /// Runs `kassa ARGS` as a person would (no `--json`), returns what it printed.
    fn text(&self, args: &[&str]) -> String {
        let out = self.run_as(&[], args);
        assert!(out.status.success(), "kassa {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    fn run_as(&self, flags: &[&str], args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(flags)
            .args(args)
            .env("KASSA_HOME", &self.home)
            .env("KASSA_PASSPHRASE", "correct horse battery staple")
            .env("KASSA_NODE", &self.node)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Sends a transaction without waiting; returns its hash.
    fn send(&self, args: &[&str]) -> String {
        let mut a = vec!["tx"];
        a.extend_from_slice(args);
        self.json(&a)["hash"].as_str().unwrap().to_string()
    }
}

/// Each member in `who` sends `kassa tx --from mI ARGS`; waits until all are applied; returns the
/// transaction hashes.
fn every(
    cli: &Cli,
    node: &NodeProc,
    who: impl Iterator<Item = usize>,
    args: &[&str],
) -> Vec<String> {
    let hashes: Vec<String> = who
        .map(|i| {
            let from = format!("m{i}");
            let mut a = vec!["--from", from.as_str()];
            a.extend_from_slice(args);
            cli.send(&a)
        })
        .collect();
    for h in &hashes {
        assert_eq!(node.receipt(h)["status"], "applied", "{h}");
    }
    hashes
}

fn units(v: &Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

fn member(node: &NodeProc, addr: &str) -> Value {
    node.get(&format!("/api/v1/societies/0/members/{addr}"))
}

#[test]
fn a_whole_society_lives_on_a_real_node_survives_kill_9_and_passes_the_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("node");
    let mut node = NodeProc::start(&data, free_ports(1), free_ports(1));
    let cli = Cli {
        home: tmp.path().join("home"),
        node: node.url(),
    };
    let mut hashes: Vec<String> = Vec::new();

    // Keys: the issuer is a dev account; the members are new keys in the encrypted keystore.
    cli.json(&["keys", "import", "issuer", "--dev", "1"]);
    let addrs: Vec<String> = (0..MEMBERS)
        .map(|i| {
            cli.json(&["keys", "new", &format!("m{i}")])["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let listed = cli.json(&["keys", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), MEMBERS + 1);
    let ks = std::fs::read_to_string(tmp.path().join("home/keys/m0.json")).unwrap();
    assert!(ks.contains("argon2id") && ks.contains("chacha20poly1305"));

    // Fees for everyone from the faucet; a stable asset issued and minted to every member.
    for i in 0..MEMBERS {
        hashes.push(
            cli.json(&["faucet", &format!("m{i}")])["hash"]
                .as_str()
                .unwrap()
                .into(),
        );
    }
    let created = cli.json(&[
        "tx",
        "--from",
        "issuer",
        "--wait",
        "create-asset",
        "--symbol",
        "USDK",
        "--decimals",
        "2",
    ]);
    assert_eq!(created["status"], "applied", "{created}");
    for i in 0..MEMBERS {
        hashes.push(cli.send(&[
            "--from",
            "issuer",
            "mint",
            "--to",
            &format!("m{i}"),
            "--amount",
            "1000 USDK",
        ]));
    }
    for h in &hashes {
        assert_eq!(node.receipt(h)["status"], "applied");
    }

    // A society with 10-second periods (a year passes in an hour of block time).
    let society = cli.json(&[
        "tx",
        "--from",
        "m0",
        "--wait",
        "create-society",
        "--name",
        "Broodfonds E2E",
        "--purpose",
        "Income for members too ill to work.",
        "--asset",
        "USDK",
        "--min-pledge",
        "10 USDK",
        "--max-pledge",
        "100 USDK",
        "--period-secs",
        "10",
        "--voting-window-secs",
        "60",
        "--max-draw-bps",
        "100",
        "--pledge",
        "10 USDK",
        "--waiting-periods",
        "1",
        "--min-members",
        "20",
        "--notice-periods",
        "1",
    ]);
    assert_eq!(society["status"], "applied", "{society}");
    // The creator (m0) is the first member; the others join.
    hashes.extend(every(
        &cli,
        &node,
        1..MEMBERS,
        &["join", "--society", "0", "--pledge", "10 USDK"],
    ));
    let contribute = ["contribute", "--society", "0", "--amount", "50 USDK"];
    hashes.extend(every(&cli, &node, 0..MEMBERS, &contribute));
    // Contributions over several periods: wait for the next period, contribute again.
    let first_period = node.get("/api/v1/societies/0")["current_period"]
        .as_u64()
        .unwrap();
    node.wait_until(Duration::from_secs(30), |_| {
        node.get("/api/v1/societies/0")["current_period"]
            .as_u64()
            .unwrap()
            > first_period
    });
    hashes.extend(every(&cli, &node, 0..MEMBERS, &contribute));
    let soc = node.get("/api/v1/societies/0");
    assert_eq!(soc["member_count"], MEMBERS);
    assert_eq!(soc["standing_count"], MEMBERS);
    assert_eq!(units(&soc["gift_funds"]), 22 * 10_000);
    // Member 1's waiting period (one period from joining) is over.
    let waiting = member(&node, &addrs[1])["waiting_until_ms"]
        .as_u64()
        .unwrap();
    node.wait_until(Duration::from_secs(30), |s| {
        s["time_ms"].as_u64().unwrap() > waiting
    });

    // People read amounts in their asset, dates and standing in words, lists as tables.
    let shown = cli.text(&["query", "member", "0", "m1"]);
    assert!(shown.contains("in good standing until 20"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("pledge ") && l.ends_with(" 10 USDK")),
        "{shown}"
    );
    let listed = cli.text(&["query", "members", "0"]);
    assert!(listed.starts_with("member "), "{listed}");
    assert!(listed.contains("  good  "), "{listed}");
    let sent = cli.text(&[
        "tx", "--from", "m2", "--wait", "transfer", "--to", "m3", "--amount", "0.5 KAS",
    ]);
    assert!(sent.contains("applied in block"), "{sent}");
    assert!(
        sent.contains("transferred: amount 0.5 KAS, from kassa1"),
        "{sent}"
    );

    // Member 1 asks for help with an evidence file (hashed locally, never uploaded): as much as
    // karma earned period by period allows, at most 40 USDK.
    let max = units(&member(&node, &addrs[1])["max_benefit"]);
    assert!(max >= 1_000, "ten periods' worth of karma at least: {max}");
    let asked = max.min(4_000);
    let evidence = tmp.path().join("doctor.pdf");
    std::fs::write(&evidence, b"%PDF- a doctor's note").unwrap();
    let filed = cli.json(&[
        "tx",
        "--from",
        "m1",
        "--wait",
        "file-request",
        "--society",
        "0",
        "--amount",
        &format!("{}.{:02} USDK", asked / 100, asked % 100),
        "--evidence",
        evidence.to_str().unwrap(),
        "--memo",
        "hospital stay",
    ]);
    assert_eq!(filed["status"], "applied", "{filed}");
    let req = node.get("/api/v1/requests/0");
    assert_eq!(
        req["evidence_hash"].as_str().unwrap(),
        kassa_types::Hash::of(&[b"%PDF- a doctor's note"]).to_string()
    );
    hashes.extend(every(
        &cli,
        &node,
        (0..MEMBERS).filter(|i| *i != 1),
        &["vote", "--request", "0"],
    ));
    // An outsider's vote is refused with its typed code and changes nothing but fee and nonce.
    let outsider = cli.run(&["tx", "--from", "issuer", "--wait", "vote", "--request", "0"]);
    assert!(!outsider.status.success());
    let outsider: Value = serde_json::from_slice(&outsider.stdout).unwrap();
    assert_eq!(
        (
            outsider["error"]["code"].as_str(),
            outsider["error"]["number"].as_u64()
        ),
        (Some("not_member"), Some(51))
    );
    let before: Vec<u64> = addrs
        .iter()
        .map(|a| units(&member(&node, a)["gift_balance"]))
        .collect();
    let deadline = node.get("/api/v1/requests/0")["ballot"]["deadline_ms"]
        .as_u64()
        .unwrap();
    node.wait_until(Duration::from_secs(60), |s| {
        s["time_ms"].as_u64().unwrap() > deadline
    });
    let fin = cli.json(&["tx", "--from", "m0", "--wait", "finalize", "--request", "0"]);
    let events = fin["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "finalized" && e["approved"] == true),
        "{fin}"
    );
    let shared: u64 = events
        .iter()
        .filter(|e| e["type"] == "share_paid")
        .map(|e| units(&e["amount"]))
        .sum();
    assert!(
        shared > 0 && shared < asked,
        "the period's budget pays part: {shared}"
    );
    // Every member's gift account paid its pro-rata share.
    for (i, a) in addrs.iter().enumerate() {
        let now = units(&member(&node, a)["gift_balance"]);
        let expected = before[i] - shared / 22;
        assert!(
            now <= expected + 1 && now + 2 >= expected,
            "member {i}: {} -> {now}, share {}",
            before[i],
            shared / 22
        );
    }
    // Others gift the rest.
    let rest = asked - shared;
    let g1 = cli.json(&[
        "tx",
        "--from",
        "m2",
        "--wait",
        "gift",
        "--request",
        "0",
        "--amount",
        &format!("{}.{:02}", (rest / 2) / 100, (rest / 2) % 100),
    ]);
    assert_eq!(g1["status"], "applied", "{g1}");
    let left = asked - shared - rest / 2;
    let g2 = cli.json(&[
        "tx",
        "--from",
        "m3",
        "--wait",
        "gift",
        "--request",
        "0",
        "--amount",
        &format!("{}.{:02}", left / 100, left % 100),
    ]);
    assert!(
        g2["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "request_paid"),
        "{g2}"
    );
    assert_eq!(node.get("/api/v1/requests/0")["status"], "paid");
    let over = cli.run(&[
        "tx",
        "--from",
        "m4",
        "--wait",
        "gift",
        "--request",
        "0",
        "--amount",
        "1 USDK",
    ]);
    assert_eq!(
        over.status.code(),
        Some(3),
        "a gift to a fully funded request is included and fails"
    );
    let receipt: Value = serde_json::from_slice(&over.stdout).unwrap();
    assert_eq!(
        (
            receipt["error"]["code"].as_str(),
            receipt["error"]["number"].as_u64()
        ),
        (Some("request_fully_funded"), Some(69))
    );

    // Member 5 leaves: a full period of notice, then the refund.
    assert_eq!(
        cli.json(&["tx", "--from", "m5", "--wait", "leave", "--society", "0"])["status"],
        "applied"
    );
    let early = cli.run(&["tx", "--from", "m5", "--wait", "withdraw", "--society", "0"]);
    assert!(!early.status.success());
    let early: Value = serde_json::from_slice(&early.stdout).unwrap();
    assert_eq!(early["error"]["code"], "notice_not_over");
    let gift5 = units(&member(&node, &addrs[5])["gift_balance"]);
    let bal = |node: &NodeProc, a: &str| -> u64 {
        let acct = node.get(&format!("/api/v1/accounts/{a}"));
        acct["balances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["symbol"] == "USDK")
            .map_or(0, |b| units(&b["amount"]))
    };
    let usdk5 = bal(&node, &addrs[5]);
    let leave_time = node.get("/api/v1/status")["time_ms"].as_u64().unwrap();
    node.wait_until(Duration::from_secs(30), |s| {
        s["time_ms"].as_u64().unwrap() > leave_time + 10_500
    });
    let w = cli.json(&["tx", "--from", "m5", "--wait", "withdraw", "--society", "0"]);
    assert_eq!(w["status"], "applied", "{w}");
    assert!(
        bal(&node, &addrs[5]) >= usdk5 + gift5 - 10,
        "refund of about {gift5}"
    );

    // A balance proof, verified by the client against the finalized block's state root.
    let proof = cli.json(&["query", "proof", "m2", "USDK"]);
    assert_eq!(proof["verified"], true, "{proof}");

    // The API refuses hostile input with typed errors.
    let r = ureq::post(format!("{}/api/v1/txs", node.url()))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(serde_json::json!({"tx": "deadbeef"}))
        .unwrap();
    assert_eq!(r.status(), 400);

    // kill -9, restart: the same finalized state, every transaction still there.
    let head = node.get("/api/v1/status");
    let (h1, root1) = (head["height"].as_u64().unwrap(), head["state_root"].clone());
    let (http, p2p) = (node.http, node.p2p);
    node.kill9();
    let node = NodeProc::start(&data, http, p2p);
    node.wait_until(Duration::from_secs(30), |s| {
        s["height"].as_u64().unwrap() > h1
    });
    assert_eq!(
        node.get(&format!("/api/v1/blocks/{h1}"))["state_root"],
        root1
    );
    for h in &hashes {
        assert_eq!(
            node.get(&format!("/api/v1/txs/{h}"))["status"],
            "applied",
            "{h} lost"
        );
    }

    // Anyone can audit: from the running node, then from the stopped node's data directory.
    let audit = cli.json(&["audit", "--node", &node.url()]);
    assert_eq!(audit["ok"], true);
    assert!(audit["blocks"].as_u64().unwrap() > h1);
    let mut node = node;
    node.interrupt();
    let audit = cli.json(&["audit", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(audit["ok"], true, "{audit}");
    assert!(audit["transactions"].as_u64().unwrap() >= u64::try_from(hashes.len()).unwrap());

    // Tamper with one balance in the stored state: the audit must find it.
    {
        const STATE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("state");
        let db = redb::Database::open(data.join("state/state.redb")).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(STATE).unwrap();
            let addr: kassa_types::Address = addrs[7].parse().unwrap();
            let key = kassa_state::keys::balance(&addr, kassa_types::AssetId(1));
            t.insert(
                key.as_slice(),
                borsh::to_vec(&999_999_999u64).unwrap().as_slice(),
            )
            .unwrap();
        }
        w.commit().unwrap();
    }
    let tampered = cli.run(&["audit", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(
        tampered.status.code(),
        Some(4),
        "the audit must fail on tampered state, with the divergence exit code"
    );
    assert!(
        String::from_utf8_lossy(&tampered.stderr).contains("divergence in the stored state"),
        "{}",
        String::from_utf8_lossy(&tampered.stderr)
    );
}

#[test]
fn a_node_runs_from_a_genesis_file_and_a_toml_config() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = [7u8; 32];
    std::fs::write(tmp.path().join("validator.key"), hex::encode(seed)).unwrap();
    // The validator's public key is the address of the same seed.
    let validator = kassa_types::SecretKey::from_seed(seed).address();
    let funded = kassa_types::SecretKey::from_label("config-test").address();
    let genesis = serde_json::json!({
        "chain_id": "kassa-config-test",
        "min_fee": 10,
        "time_ms": 1_700_000_000_000u64,
        "allocations": [{"address": funded.to_bech32(), "amount": 5_000}],
        "validators": [hex::encode(validator.0)],
    });
    std::fs::write(tmp.path().join("genesis.json"), genesis.to_string()).unwrap();
    let (http, p2p) = (free_ports(1), free_ports(1));
    std::fs::write(
        tmp.path().join("node.toml"),
        format!(
            "data_dir = \"data\"\ngenesis = \"genesis.json\"\nvalidator_key = \"validator.key\"\nhttp = \"127.0.0.1:{http}\"\np2p = \"127.0.0.1:{p2p}\"\nblock_time_ms = 200\n"
        ),
    )
    .unwrap();
    let mut node = NodeProc {
        proc: Proc::node(BIN, &tmp.path().join("node.toml")),
        api: Api::at(http),
        http,
        p2p,
    };
    let status = node.wait_until(Duration::from_secs(60), |s| {
        s["height"].as_u64().unwrap_or(0) >= 3
    });
    assert_eq!(status["chain_id"], "kassa-config-test");
    assert_eq!(status["faucet"], false, "only dev chains have a faucet");
    let acct = node.get(&format!("/api/v1/accounts/{funded}"));
    assert_eq!(acct["balances"][0]["amount"], "5000");
    assert!(
        tmp.path().join("data/state/state.redb").exists(),
        "paths are relative to the config file"
    );
    node.interrupt();
}

/// Signs `body` with `key` for the node's chain and submits it, waiting for its receipt; returns
/// the receipt and adds the fee to `fees`.
fn send_tx(
    node: &NodeProc,
    key: &kassa_types::SecretKey,
    body: kassa_types::Body,
    fees: &mut u64,
) -> Value {
    let status = node.get("/api/v1/status");
    let account = node.get(&format!("/api/v1/accounts/{}", key.address()));
    let fee: u64 = status["min_fee"].as_str().unwrap().parse().unwrap();
    let genesis: [u8; 32] = hex::decode(status["genesis_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let tx = kassa_types::Transaction {
        chain_id: kassa_types::tx::ChainId::new(status["chain_id"].as_str().unwrap().to_string())
            .unwrap(),
        genesis: kassa_types::Hash(genesis),
        signer: key.address(),
        nonce: account["next_nonce"].as_u64().unwrap(),
        fee,
        expiry_height: status["height"].as_u64().unwrap() + 600,
        body,
    }
    .sign(key);
    let mut r = ureq::post(format!("{}/api/v1/txs?wait=true", node.url()))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(serde_json::json!({"tx": hex::encode(tx.encode())}))
        .unwrap();
    let v: Value = r.body_mut().read_json().unwrap();
    if v["status"] == "applied" || v["status"] == "failed" {
        *fees += fee;
    }
    v
}

/// What an account holds of KAS, in its account and in society 0's gift account.
fn kas_wealth(node: &NodeProc, who: &kassa_types::Address) -> u64 {
    let acct = node.get(&format!("/api/v1/accounts/{who}"));
    let balance = acct["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["symbol"] == "KAS")
        .map_or(0, |b| units(&b["amount"]));
    let gift = ureq::get(format!("{}/api/v1/societies/0/members/{who}", node.url()))
        .call()
        .ok()
        .map_or(0, |mut r| {
            let v: Value = r.body_mut().read_json().unwrap();
            units(&v["gift_balance"])
        });
    balance + gift
}

#[test]
fn a_scripted_attacker_on_a_dev_node_ends_with_no_more_money_than_they_put_in() {
    use kassa_types::tx::{Memo, Purpose, SocietyName};
    use kassa_types::{AssetId, Body, Hash, RequestId, Rules, SocietyId};
    let tmp = tempfile::tempdir().unwrap();
    let node = NodeProc::start(&tmp.path().join("node"), free_ports(1), free_ports(1));
    let dev = |i: usize| kassa_types::SecretKey::from_label(&format!("kassa-dev-{i}"));
    let (honest, attacker, puppet) = ((1..8).map(dev).collect::<Vec<_>>(), dev(8), dev(9));
    const PLEDGE: u64 = 1_000_000; // 1 KAS
    // Default rules, but ten-second periods, one period of waiting, a minute's vote (the floor)
    // and five members minimum, so that the whole attack fits in a few minutes of block time.
    let mut rules = Rules::defaults(PLEDGE, 10 * PLEDGE);
    rules.period_secs = 10;
    rules.waiting_periods = 1;
    rules.voting_window_secs = 60;
    rules.min_members = 5;
    let mut fees = 0;
    let mut attack_fees = 0;
    let created = send_tx(
        &node,
        &honest[0],
        Body::CreateSociety {
            name: SocietyName::new("Attack drill").unwrap(),
            purpose: Purpose::new("A society an attacker tries to drain").unwrap(),
            asset: AssetId::NATIVE,
            rules,
            pledge: PLEDGE,
        },
        &mut fees,
    );
    assert_eq!(created["status"], "applied", "{created}");
    let soc = SocietyId(0);
    let join = Body::Join {
        society: soc,
        pledge: PLEDGE,
        identity_commitment: None,
    };
    for k in &honest[1..] {
        assert_eq!(
            send_tx(&node, k, join.clone(), &mut fees)["status"],
            "applied"
        );
    }
    let start = kas_wealth(&node, &attacker.address()) + kas_wealth(&node, &puppet.address());
    for k in [&attacker, &puppet] {
        send_tx(&node, k, join.clone(), &mut attack_fees);
    }
    let pay = Body::Contribute {
        society: soc,
        amount: PLEDGE,
    };
    let period = |node: &NodeProc| {
        node.get("/api/v1/societies/0")["current_period"]
            .as_u64()
            .unwrap()
    };
    let next_period = |node: &NodeProc| {
        let p = period(node);
        node.wait_until(Duration::from_secs(30), |_| period(node) > p);
    };
    // Two periods: the honest members (and the puppet) pay, ahead for the whole drill; the
    // attacker pays only the first period.
    let pay_ahead = Body::Contribute {
        society: soc,
        amount: 6 * PLEDGE,
    };
    for round in 0..2 {
        for k in &honest {
            send_tx(&node, k, pay_ahead.clone(), &mut fees);
        }
        send_tx(&node, &puppet, pay_ahead.clone(), &mut attack_fees);
        if round == 0 {
            send_tx(&node, &attacker, pay.clone(), &mut attack_fees);
        }
        next_period(&node);
    }
    // The attacker stopped paying: after the period of grace, lapsed.
    node.wait_until(Duration::from_secs(40), |_| {
        member(&node, &attacker.address().to_string())["lapsed"] == true
    });
    // Attack 1: buy back in with the arrears in one go and ask for help at once.
    let behind = member(&node, &attacker.address().to_string());
    let arrears = (period(&node) + 1 - behind["paid_until"].as_u64().unwrap()) * PLEDGE;
    let back = send_tx(
        &node,
        &attacker,
        Body::Contribute {
            society: soc,
            amount: arrears,
        },
        &mut attack_fees,
    );
    assert!(
        back["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "reinstated"),
        "{back}"
    );
    let file = |amount: u64| Body::FileRequest {
        society: soc,
        amount,
        evidence_hash: Hash::of(&[b"a made-up misfortune"]),
        memo: Memo::new("urgent").unwrap(),
        payee: Some(puppet.address()),
        installments: 0,
    };
    let refused = send_tx(&node, &attacker, file(PLEDGE), &mut attack_fees);
    assert_eq!(refused["error"]["code"], "in_waiting_period", "{refused}");
    // After the new waiting period, the most the attacker may ask for, approved by the puppet
    // alone while the honest members stay silent.
    let waiting = member(&node, &attacker.address().to_string())["waiting_until_ms"]
        .as_u64()
        .unwrap();
    node.wait_until(Duration::from_secs(30), |s| {
        s["time_ms"].as_u64().unwrap() > waiting
    });
    send_tx(&node, &attacker, pay.clone(), &mut attack_fees);
    let max = units(&member(&node, &attacker.address().to_string())["max_benefit"]);
    assert!(max > 0, "the attacker earned a little karma since");
    let filed = send_tx(&node, &attacker, file(max), &mut attack_fees);
    assert_eq!(filed["status"], "applied", "{filed}");
    let rid = filed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "request_filed")
        .unwrap()["request"]
        .as_u64()
        .unwrap();
    let vote = send_tx(
        &node,
        &puppet,
        Body::Vote {
            request: RequestId(rid),
            approve: true,
            percent: 100,
        },
        &mut attack_fees,
    );
    assert_eq!(vote["status"], "applied", "{vote}");
    let deadline = node.get(&format!("/api/v1/requests/{rid}"))["ballot"]["deadline_ms"]
        .as_u64()
        .unwrap();
    node.wait_until(Duration::from_secs(90), |s| {
        s["time_ms"].as_u64().unwrap() > deadline
    });
    let fin = send_tx(
        &node,
        &honest[0],
        Body::Finalize {
            request: RequestId(rid),
        },
        &mut fees,
    );
    assert!(
        fin["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "finalized" && e["approved"] == false),
        "the puppet alone is under the quorum: {fin}"
    );
    // Then both leave with whatever the rules give back.
    for k in [&attacker, &puppet] {
        send_tx(&node, k, Body::Leave { society: soc }, &mut attack_fees);
    }
    next_period(&node);
    next_period(&node);
    for k in [&attacker, &puppet] {
        let w = send_tx(&node, k, Body::Withdraw { society: soc }, &mut attack_fees);
        assert_eq!(w["status"], "applied", "{w}");
    }
    let end = kas_wealth(&node, &attacker.address()) + kas_wealth(&node, &puppet.address());
    assert!(
        end + attack_fees <= start,
        "the attacker and the puppet hold {end} + {attack_fees} in fees, having started with {start}"
    );
    // The society kept the forfeited bond for its common fund.
    assert!(units(&node.get("/api/v1/societies/0")["common_fund"]) >= PLEDGE);
}

#[test]
fn a_reader_that_stops_early_ends_the_output_quietly_without_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["keys", "list"])
        .env("KASSA_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: the pipe's only reader is gone before the command writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_node_whose_file_limit_leaves_no_room_for_connections_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(2);
    // 256 descriptors, of which the API keeps 512 for storage and consensus: none left.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" node --dev --data-dir \"$1\" --http \"127.0.0.1:$2\" --p2p \"127.0.0.1:$3\"")
        .arg(BIN)
        .arg(dir.path().join("dev"))
        .arg(port.to_string())
        .arg((port + 1).to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("file limit (256)"), "{stderr}");
    assert!(stderr.contains("ulimit -n"), "{stderr}");
}
