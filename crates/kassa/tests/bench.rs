//! `kassa bench` runs its workloads for real (small ones here) and reports them as JSON (on
//! standard output with `--json`, and to a file with `--out`).

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let run = Command::new(BIN)
        .args(["--json", "bench"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "kassa bench {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let printed: Value = serde_json::from_slice(&run.stdout).expect("--json prints only JSON");
    assert_eq!(printed, written);
    written
}

#[test]
fn the_state_benchmark_admits_executes_and_commits_every_generated_transaction() {
    let r = bench(&["state", "--txs", "300", "--accounts", "30"]);
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1);
    let results = r["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "state: admit (signatures, checks)",
            "state: execute + commit",
            "state: end to end",
            "state: read an account",
            "state: prove an account"
        ]
    );
    for row in &results[..3] {
        assert_eq!(row["txs"], 300, "{row}");
        assert!(row["tx_per_s"].as_u64().unwrap() > 0, "{row}");
    }
    assert!(results[1]["p50_us"].as_u64().is_some(), "per-block latency");
    assert!(results[1]["disk_bytes"].as_u64().unwrap() > 0);
    // What each block wrote, and the disk of both stores, each more than nothing.
    let note = results[1]["note"].as_str().unwrap();
    for what in [" written a block", "redb ", "commitment "] {
        let at = note
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} in {note}"));
        let figure = if what.starts_with(' ') {
            note[..at].rsplit("; ").next().unwrap()
        } else {
            note[at + what.len()..].split([',', ';']).next().unwrap()
        };
        let n: u64 = figure
            .split(' ')
            .next()
            .unwrap()
            .replace('.', "")
            .parse()
            .unwrap();
        assert!(n > 0, "{what:?} is {figure:?} in {note}");
    }
}

#[test]
fn preloaded_accounts_are_funded_at_genesis_and_receive_transfers_and_make_the_database_larger() {
    let args = [
        "state",
        "--txs",
        "300",
        "--accounts",
        "30",
        "--mix",
        "transfer",
    ];
    let small = bench(&args);
    let large = bench(&[&args[..], &["--preload", "3000"]].concat());
    assert_eq!(large["options"]["preload"], 3000);
    // Reading random accounts of the whole state checks that each one has a balance.
    assert_eq!(large["results"][3]["txs"], 10_000);
    let disk = |r: &Value| r["results"][1]["disk_bytes"].as_u64().unwrap();
    assert!(
        disk(&large) > disk(&small) + 3000 * 64,
        "{} vs {}",
        disk(&large),
        disk(&small)
    );
}

#[test]
fn the_curve_runs_the_state_benchmark_at_each_size_in_a_process_of_its_own_and_states_what_an_account_costs()
 {
    let r = bench(&["curve", "--sizes", "40,400", "--txs", "200"]);
    let rows = r["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert_eq!(names[1], "state @40: execute + commit");
    assert_eq!(names[6], "state @400: execute + commit");
    assert!(
        rows[6]["note"]
            .as_str()
            .unwrap()
            .contains("each account beyond 40:")
    );
    for row in rows.iter().filter(|x| x["txs"] == 200) {
        assert!(row["tx_per_s"].as_u64().unwrap() > 0, "{row}");
    }
}

#[test]
fn the_store_benchmark_runs_kassa_db_and_the_commitment_alone_on_the_same_updates_with_reads_and_checked_proofs()
 {
    let r = bench(&[
        "store",
        "--keys",
        "2000",
        "--batch",
        "200",
        "--batches",
        "3",
    ]);
    let rows = r["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "store kassa_db (redb + qmdb): load",
            "store kassa_db (redb + qmdb): update",
            "store kassa_db (redb + qmdb): read",
            "store kassa_db (redb + qmdb): prove",
            "store qmdb current: load",
            "store qmdb current: update",
            "store qmdb current: read",
            "store qmdb current: prove"
        ]
    );
    for update in [&rows[1], &rows[5]] {
        assert_eq!(update["txs"], 600, "{update}");
        assert_eq!(update["latencies_us"].as_array().unwrap().len(), 3);
        assert!(
            update["disk_bytes"].as_u64().unwrap() > 2000 * 40,
            "{update}"
        );
    }
}

#[test]
fn the_node_benchmark_measures_submit_to_finalized_latency_on_a_real_validator() {
    let r = bench(&["node", "--txs", "200", "--accounts", "20", "--mix", "vote"]);
    let row = &r["results"][0];
    assert_eq!(row["txs"], 200);
    let (p50, p99) = (
        row["p50_us"].as_u64().unwrap(),
        row["p99_us"].as_u64().unwrap(),
    );
    assert!(p50 > 0 && p50 <= p99, "{row}");
}

#[test]
fn an_offered_rate_paces_the_submissions_and_is_reported() {
    // 200 transactions offered at 400 a second take at least half a second to submit.
    let r = bench(&["node", "--txs", "200", "--accounts", "20", "--rate", "400"]);
    let row = &r["results"][0];
    assert_eq!(row["txs"], 200);
    assert_eq!(r["options"]["rate"], 400);
    assert!(row["wall_us"].as_u64().unwrap() >= 450_000, "{row}");
    assert!(
        row["note"].as_str().unwrap().contains("offered 400 tx/s"),
        "{row}"
    );
}

#[test]
fn the_node_and_network_benchmarks_submit_over_http_one_transaction_per_request_as_wallets_do_or_in_batches()
 {
    for which in ["node", "network"] {
        let r = bench(&[which, "--txs", "200", "--accounts", "20", "--http", "8"]);
        assert_eq!(r["options"]["http_clients"], 8);
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "saturation only: {results:?}");
        let row = &results[0];
        assert_eq!(row["txs"], 200, "every transaction finalized: {row}");
        assert!(
            row["note"]
                .as_str()
                .unwrap()
                .contains("over HTTP, 8 clients, one transaction per request"),
            "{row}"
        );
    }
    // Or many transactions per request, through the batch endpoint.
    let r = bench(&[
        "node",
        "--txs",
        "300",
        "--accounts",
        "30",
        "--http",
        "2",
        "--http-batch",
        "64",
    ]);
    assert_eq!(r["options"]["http_batch"], 64);
    let row = &r["results"][0];
    assert_eq!(row["txs"], 300, "every transaction finalized: {row}");
    assert!(
        row["note"]
            .as_str()
            .unwrap()
            .contains("over HTTP, 2 clients, batches of 64 per request"),
        "{row}"
    );
    // An offered rate is the in-process submitter's: asking for both is refused.
    let run = Command::new(BIN)
        .args([
            "bench", "node", "--txs", "100", "--http", "4", "--rate", "100",
        ])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("--http measures saturation"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn the_attack_benchmark_runs_every_attack_against_a_node_under_a_file_limit_that_stays_up() {
    let r = bench(&["attack", "--secs", "1", "--honest-rate", "40"]);
    assert_eq!(r["options"]["file_limit"], 1024);
    let rows = r["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|x| x["attack"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["none", "gapped", "reads", "idle", "streams", "fee-floor"]
    );
    for row in rows {
        assert_eq!(row["node_alive"], true, "{row}");
        let sent = row["honest_sent"].as_u64().unwrap();
        let accepted = row["honest_accepted"].as_u64().unwrap();
        let included = row["honest_included"].as_u64().unwrap();
        assert!(
            sent > 0 && accepted <= sent && included <= accepted,
            "{row}"
        );
        assert!(row["blocks"].as_u64().unwrap() > 0, "blocks go on: {row}");
        assert!(row["node_rss_peak_kib"].as_u64().unwrap() > 0, "{row}");
        if row["attack"] != "none" {
            assert!(row["attack_requests"].as_u64().unwrap() > 0, "{row}");
        }
    }
}
