//! Crash consistency of a real node: `kassa node --dev` aborted (no clean-up, as `kill -9` or a
//! power cut stops it) at each crash point between "consensus finalized a block" and "the state
//! database acknowledged it" (`KASSA_CRASH_AT`, crates/node/src/crash.rs), at several passes,
//! under a stream of transactions; then restarted. After every crash the node comes back to the
//! same history: every transaction it had reported applied is still applied, every block it had
//! served has the same hash and state root, the chain goes on, and `kassa audit` replays the whole
//! chain from genesis to the stored state.
//!
//! Bounded: loopback ports, and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports, key};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

fn node(data: &Path, http: u16, env: &[(&str, &str)]) -> Proc {
    let (http_addr, p2p_addr) = (
        format!("127.0.0.1:{http}"),
        format!("127.0.0.1:{}", http + 1),
    );
    let args = [
        "node".as_ref(),
        "--dev".as_ref(),
        "--block-ms".as_ref(),
        "100".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--http".as_ref(),
        http_addr.as_ref(),
        "--p2p".as_ref(),
        p2p_addr.as_ref(),
    ];
    Proc::spawn_with_env::<&std::ffi::OsStr>(BIN, &args, env, data.with_extension("log"))
}

/// What the node had shown before it crashed.
#[derive(Default)]
struct Seen {
    applied: Vec<String>,
    blocks: BTreeMap<u64, (serde_json::Value, serde_json::Value)>,
}

/// Feeds the node faucet drips until it aborts at `point`'s `pass`-th pass, recording what it
/// reports as final on the way.
fn run_until_crash(data: &Path, http: u16, point: &str, pass: u64) -> Seen {
    let plan = format!("{point}:{pass}");
    let mut proc = node(data, http, &[("KASSA_CRASH_AT", &plan)]);
    let api = Api::at(http);
    let mut seen = Seen::default();
    let mut pending: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut i = 0;
    loop {
        if let Some(status) = proc.wait_exit(Duration::from_millis(30)) {
            assert_eq!(
                status.signal(),
                Some(6),
                "{plan}: the node must abort at its crash point, not exit with {status}\n{}",
                proc.log_tail()
            );
            assert!(proc.log_tail().contains("KASSA_CRASH_AT: aborting"));
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{plan}: never crashed\n{}",
            proc.log_tail()
        );
        i += 1;
        // A drip to a fresh account; the faucet may refuse while the node starts or is busy.
        let body = serde_json::json!({"address": key(1_000 + i).address().to_bech32()});
        if let Ok(mut r) = ureq::post(format!("{}/api/v1/faucet", api.0)).send_json(&body)
            && let Ok(v) = r.body_mut().read_json::<serde_json::Value>()
            && let Some(h) = v["hash"].as_str()
        {
            pending.push(h.to_owned());
        }
        pending.retain(|h| match api.try_get(&format!("/api/v1/txs/{h}")) {
            Some(v) if v["status"] == "applied" => {
                seen.applied.push(h.clone());
                false
            }
            _ => true,
        });
        let height = api.height();
        if height > 0
            && !seen.blocks.contains_key(&height)
            && let Some(b) = api.try_get(&format!("/api/v1/blocks/{height}"))
        {
            seen.blocks
                .insert(height, (b["hash"].clone(), b["state_root"].clone()));
        }
    }
}

fn audit(data: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["--json", "audit", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kassa audit failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_node_aborted_anywhere_between_finality_and_commit_comes_back_with_every_finalized_transaction()
{
    let tmp = tempfile::tempdir().unwrap();
    let mut applied = 0;
    for point in kassa_node::crash::POINTS {
        for pass in [2u64, 5, 13] {
            let data = tmp.path().join(format!("{point}-{pass}"));
            let http = free_ports(2);
            let seen = run_until_crash(&data, http, point, pass);
            applied += seen.applied.len();
            eprintln!(
                "{point}:{pass}: aborted after {} blocks and {} applied transactions were seen",
                seen.blocks.len(),
                seen.applied.len()
            );
            // Restart without the crash point: it comes back and goes on.
            let mut proc = node(&data, http, &[]);
            let api = Api::at(http);
            let before = seen.blocks.keys().max().copied().unwrap_or(0);
            api.wait_height(before + 3, "the restarted node");
            for (h, (hash, root)) in &seen.blocks {
                assert_eq!(
                    api.block(*h),
                    (hash.clone(), root.clone()),
                    "{point}:{pass}: block {h} changed across the crash"
                );
            }
            for h in &seen.applied {
                assert_eq!(
                    api.get(&format!("/api/v1/txs/{h}"))["status"],
                    "applied",
                    "{point}:{pass}: {h} was applied before the crash and is lost"
                );
            }
            assert!(
                proc.interrupt().success(),
                "the restarted node stops cleanly"
            );
            let a = audit(&data);
            assert_eq!(a["ok"], true, "{point}:{pass}: {a}");
            assert!(a["blocks"].as_u64().unwrap() > before);
        }
    }
    assert!(applied > 0, "no transaction was applied before any crash");
}
