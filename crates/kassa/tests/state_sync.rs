//! A follower that starts from a recent certified state instead of genesis (`state_sync = true`):
//! it restores the state the validators certified, holds no history below it, follows the
//! chain from there, resumes after a restart without syncing again, and drops a source whose
//! chunks do not prove (here a proxy in front of the honest node that alters a value).
//!
//! Bounded: the nodes listen on free loopback ports and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports, run_json};
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

/// A dev node with a few funded accounts, at height 15 or more; returns it with its genesis.
fn chain(dir: &Path, port: u16) -> (Proc, Api, std::path::PathBuf) {
    let node = Proc::dev_node(BIN, &dir.join("node"), port, 50, &[], dir.join("node.log"));
    let api = Api::at(port);
    api.wait_height(1, "the node starts");
    for i in 0..3 {
        let who = kassa_types::SecretKey::from_label(&format!("sync-test-{i}"));
        api.receipt(&api.drip(&who));
    }
    api.wait_height(15, "the chain grows");
    (node, api, dir.join("node").join("genesis.json"))
}

/// A follower's config: state sync from `bootstrap` (and `sources`), its API on `port`.
fn follower(dir: &Path, genesis: &Path, port: u16, bootstrap: &str, sources: &[String]) -> Proc {
    let sources: Vec<String> = sources.iter().map(|s| format!("{s:?}")).collect();
    let config = format!(
        "data_dir = {:?}\ngenesis = {:?}\nbootstrap = {bootstrap:?}\nhttp = \"127.0.0.1:{port}\"\n\
         state_sync = true\nsources = [{}]\n",
        dir.join("follower"),
        genesis,
        sources.join(", ")
    );
    let path = dir.join("follower.toml");
    std::fs::write(&path, config).unwrap();
    Proc::node(BIN, &path)
}

/// Status code of `GET path`.
fn status_of(api: &Api, path: &str) -> u16 {
    ureq::get(format!("{}{path}", api.0))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_follower_started_by_state_sync_holds_the_certified_state_and_follows_the_chain_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(3);
    let (_node, api, genesis) = chain(dir.path(), port);
    let mut f = follower(dir.path(), &genesis, port + 2, &api.0, &[]);
    let fapi = Api::at(port + 2);
    let status = fapi.wait_status(Duration::from_secs(60), "the follower restores", |s| {
        s["height"].as_u64().unwrap_or(0) > 0
    });
    let restored = status["pruned_below"].as_u64().unwrap();
    assert!(
        restored >= 15,
        "started from a recent height, not genesis: {status}"
    );
    assert!(
        f.log_tail()
            .contains(&format!("state of height {restored} restored")),
        "{}",
        f.log_tail()
    );

    // It serves the certificate it checked for that height, and says how it started.
    let finality = fapi.get(&format!("/api/v1/blocks/{restored}/finality"));
    assert_eq!(finality["height"].as_u64(), Some(restored), "{finality}");
    let metrics = fapi.metrics();
    assert!(
        metrics.contains(&format!("kassa_state_sync_height {restored}")),
        "{metrics}"
    );

    // It holds that height's state, as the chain has it, and no history below it.
    assert_eq!(fapi.block(restored), api.block(restored));
    assert_eq!(
        status_of(&fapi, &format!("/api/v1/blocks/{}", restored - 1)),
        404
    );
    assert_eq!(
        status_of(&fapi, "/api/v1/blocks/0"),
        200,
        "the genesis block is kept"
    );
    for i in 0..3 {
        let who = kassa_types::SecretKey::from_label(&format!("sync-test-{i}"));
        let path = format!("/api/v1/accounts/{}", who.address().to_bech32());
        assert_eq!(
            fapi.get(&path)["balances"],
            api.get(&path)["balances"],
            "account {i}"
        );
    }

    // It follows: a payment made after the restore reaches it, block for block the same roots.
    let later = kassa_types::SecretKey::from_label("sync-test-later");
    let paid = api.receipt(&api.drip(&later))["height"].as_u64().unwrap();
    fapi.wait_height(paid, "the follower follows");
    assert_eq!(fapi.block(paid), api.block(paid));
    let path = format!("/api/v1/accounts/{}", later.address().to_bech32());
    fapi.wait_status(
        Duration::from_secs(30),
        "the follower applies the payment",
        |_| {
            fapi.try_get(&path).map(|a| a["balances"].clone())
                == api.try_get(&path).map(|a| a["balances"].clone())
        },
    );

    // Stopped, its data directory audits from the snapshot it started with.
    assert!(f.interrupt().success());
    let data = dir.path().join("follower");
    let audit = run_json(
        BIN,
        &[
            "--json",
            "audit",
            "--data-dir",
            data.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ],
    );
    assert_eq!(audit["from_height"].as_u64(), Some(restored), "{audit}");

    // Restarted, it resumes from its own state: no second restore.
    let head = fapi.height();
    let f2 = follower(dir.path(), &genesis, port + 2, &api.0, &[]);
    fapi.wait_height(head + 2, "the follower resumes");
    assert_eq!(
        fapi.get("/api/v1/status")["pruned_below"].as_u64().unwrap(),
        restored,
        "the same restored state, not a new one"
    );
    let log = std::fs::read_to_string(dir.path().join("follower.log")).unwrap();
    assert_eq!(log.matches("restored (").count(), 1, "{}", f2.log_tail());
}

/// Serves `GET`s and the `POST`s of state sync by asking `upstream`, altering one byte of every
/// answer of state sync.
fn lying_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().take(10_000) {
            let Ok(conn) = conn else { continue };
            let upstream = upstream.clone();
            std::thread::spawn(move || serve_altered(conn, &upstream));
        }
    });
    addr
}

fn serve_altered(mut conn: TcpStream, upstream: &str) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
        if conn.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("GET").to_string();
    let path = words.next().unwrap_or("/").to_string();
    let octets = path.starts_with("/api/v1/sync") || path.ends_with("/raw");
    let accept = if octets {
        "application/octet-stream"
    } else {
        "application/json"
    };
    let sent = if method == "POST" {
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length.min(1 << 20)];
        if conn.read_exact(&mut body).is_err() {
            return;
        }
        ureq::post(format!("{upstream}{path}"))
            .header("accept", accept)
            .header("content-type", "application/octet-stream")
            .config()
            .http_status_as_error(false)
            .build()
            .send(&body[..])
    } else {
        ureq::get(format!("{upstream}{path}"))
            .header("accept", accept)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
    };
    let Ok(mut resp) = sent else {
        return;
    };
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let mut body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_default();
    if status == 200 && method == "POST" && path == "/api/v1/sync" && body.len() > 3 {
        let at = body.len() - 3;
        body[at] ^= 0x40;
    }
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
}

#[test]
fn a_state_sync_source_whose_answers_do_not_prove_is_dropped_and_the_state_comes_from_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(3);
    let (_node, api, genesis) = chain(dir.path(), port);
    // The proxy is asked first (it is the bootstrapper): its certificate and offers are the
    // validators' own, its answers are not.
    let liar = lying_proxy(api.0.clone());
    let f = follower(
        dir.path(),
        &genesis,
        port + 2,
        &liar,
        std::slice::from_ref(&api.0),
    );
    let fapi = Api::at(port + 2);
    let status: Value = fapi.wait_status(Duration::from_secs(60), "the follower restores", |s| {
        s["height"].as_u64().unwrap_or(0) > 0
    });
    let restored = status["pruned_below"].as_u64().unwrap();
    assert!(restored > 0, "{status}");
    let log = f.log_tail();
    assert!(
        log.contains("served an answer that does not prove"),
        "{log}"
    );
    assert!(
        log.contains(&format!("state of height {restored} restored")),
        "{log}"
    );
    assert_eq!(fapi.block(restored), api.block(restored));
}
