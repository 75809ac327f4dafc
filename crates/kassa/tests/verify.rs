//! `kassa verify` on a real `kassa node --dev`: a balance and a member's record are verified
//! against the genesis validators' finalization certificate and Merkle proofs; the wrong genesis
//! is refused; and a
//! node that tampers with what it serves (a proxy here alters the value, the proof's root, the
//! header or the certificate) is caught, with the step that caught it named.
//!
//! Bounded: the node listens on free loopback ports and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports};
use serde_json::Value;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

/// What the tampering proxy alters.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// A proof's value (one hex digit).
    Value,
    /// The state root a proof claims.
    Root,
    /// The certified block's header sent with a certificate (one hex digit of its timestamp).
    Header,
    /// A finalization certificate (one hex digit of a signature).
    Certificate,
}

/// Flips one hex digit of a JSON string field.
fn flip_hex(v: &mut Value, field: &str, at: usize) {
    let s = v[field].as_str().expect("a hex field").to_string();
    let mut chars: Vec<char> = s.chars().collect();
    let i = at.min(chars.len() - 1);
    chars[i] = if chars[i] == '0' { '1' } else { '0' };
    v[field] = Value::String(chars.into_iter().collect());
}

/// Serves one request on `client`: forwards it to `node` and alters the answer.
fn serve(mut client: TcpStream, node: &str, tamper: Tamper) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut accept = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap() <= 2 {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("accept:") {
            accept = v.trim().to_string();
        }
    }
    let mut req = ureq::get(format!("{node}{path}"))
        .config()
        .http_status_as_error(false)
        .build();
    if !accept.is_empty() {
        req = req.header("accept", &accept);
    }
    let mut resp = req.call().unwrap();
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    resp.body_mut().as_reader().read_to_end(&mut body).unwrap();
    match tamper {
        Tamper::Value | Tamper::Root if path.starts_with("/api/v1/proofs/") => {
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            match tamper {
                Tamper::Value => flip_hex(&mut v, "value", 20),
                _ => flip_hex(&mut v, "state_root", 0),
            }
            body = serde_json::to_vec(&v).unwrap();
        }
        Tamper::Certificate | Tamper::Header if path.ends_with("/finality") => {
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            match tamper {
                // Past the proposal and the signers: inside the first signature.
                Tamper::Certificate => flip_hex(&mut v, "certificate", 200),
                // The header's timestamp: it still decodes, but is another block's.
                _ => flip_hex(&mut v, "header", 82),
            }
            body = serde_json::to_vec(&v).unwrap();
        }
        _ => {}
    }
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        if path.ends_with("/raw") {
            "application/octet-stream"
        } else {
            "application/json"
        }
    );
    let _ = client.write_all(head.as_bytes());
    let _ = client.write_all(&body);
}

/// A proxy in front of `node` that alters what it serves; returns its URL.
fn tampering_proxy(node: String, tamper: Tamper) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let node = node.clone();
            std::thread::spawn(move || serve(stream, &node, tamper));
        }
    });
    url
}

/// `kassa verify` through `node`; its success, standard output and standard error.
fn verify(node: &str, genesis: &Path, what: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(["--json", "--node", node, "verify", "--genesis"])
        .arg(genesis)
        .args(what)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_balance_and_a_member_are_verified_against_the_genesis_validators_and_a_tampering_node_is_caught()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let port = free_ports(2);
    let _node = Proc::dev_node(BIN, &data, port, 200, &[], dir.path().join("node.log"));
    let api = Api::at(port);
    api.wait_status(Duration::from_secs(60), "the node", |s| {
        s["height"].as_u64().unwrap_or(0) >= 2
    });
    let genesis = data.join("genesis.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(&genesis).unwrap()).unwrap();
    let who = g["allocations"][0]["address"].as_str().unwrap().to_string();

    let (ok, out, err) = verify(&api.0, &genesis, &["balance", &who]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(
        (v["signers"].as_u64(), v["validators"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        v["value"].as_str().unwrap().ends_with("holds 1000000 KAS"),
        "{v}"
    );
    assert!(v["height"].as_u64().unwrap() >= 2);
    // A key nobody wrote is proven absent.
    let (ok, out, err) = verify(&api.0, &genesis, &["key", "ffee"]);
    assert!(ok, "{err}");
    assert!(out.contains("proven absent"), "{out}");

    // A member's record, with their society's, proven at the certified block's time.
    let keystore = dir.path().join("keys");
    let cli = |args: &[&str]| {
        let out = Command::new(BIN)
            .env("KASSA_PASSPHRASE", "test")
            .args(["--node", &api.0, "--keystore", keystore.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["keys", "import", "founder", "--dev", "1"]);
    cli(&[
        "tx",
        "--from",
        "founder",
        "--wait",
        "create-society",
        "--name",
        "Verified fund",
        "--purpose",
        "help",
        "--asset",
        "KAS",
        "--pledge",
        "1 KAS",
        "--min-pledge",
        "1 KAS",
        "--max-pledge",
        "10 KAS",
    ]);
    let with_keys = |what: &[&str]| {
        let genesis = genesis.to_str().unwrap();
        cli(&[&["verify", "--genesis", genesis][..], what].concat())
    };
    let member = with_keys(&["member", "0", "founder"]);
    assert!(
        member.contains("in society 0 (Verified fund): Active, pledge 1 KAS"),
        "{member}"
    );
    assert!(member.contains("verified at height"), "{member}");
    assert!(with_keys(&["member", "0", &who]).contains("is not a member of society 0"));
    assert!(with_keys(&["request", "0"]).contains("there is no request 0"));

    // Another chain's validators did not sign this chain's blocks.
    let mut other = g.clone();
    let stranger = kassa_types::SecretKey::from_label("another chain's validator").address();
    other["validators"][0] = Value::String(hex::encode(stranger.0));
    let other_path = dir.path().join("other-genesis.json");
    std::fs::write(&other_path, serde_json::to_string(&other).unwrap()).unwrap();
    let (ok, _, err) = verify(&api.0, &other_path, &["balance", &who]);
    assert!(!ok, "verified against validators who never signed");
    assert!(err.contains("certificate of block"), "{err}");

    // A node that alters what it serves is caught at the step it cheats.
    for (tamper, caught) in [
        (Tamper::Value, "does not match its proof"),
        (Tamper::Root, "against another state root"),
        (
            Tamper::Header,
            "not the header of the block its certificate finalizes",
        ),
        (Tamper::Certificate, "certificate of block"),
    ] {
        let proxy = tampering_proxy(api.0.clone(), tamper);
        let (ok, out, err) = verify(&proxy, &genesis, &["balance", &who]);
        assert!(!ok, "{tamper:?}: verified a tampered answer: {out}");
        assert!(err.contains(caught), "{tamper:?}: {err}");
    }
}
