//! `/metrics` on a real `kassa node --dev`: the Commonware runtime's Prometheus registry, with
//! Kassa's gauges and histograms, the API's request durations by route template, and
//! Commonware's own consensus metrics.
//!
//! Bounded: the node listens on free loopback ports and every wait has a deadline.

use kassa_testkit::{Api, Proc, free_ports, key};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kassa");

/// The value of the unlabelled sample `name`, if the exposition has one.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The `_bucket` lines of the histogram `name` whose labels include `label`.
fn buckets<'a>(text: &'a str, name: &str, label: &str) -> Vec<&'a str> {
    let prefix = format!("{name}_bucket{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(label))
        .collect()
}

fn scrape(api: &Api) -> (String, String) {
    let mut r = ureq::get(format!("{}/metrics", api.0))
        .call()
        .expect("GET /metrics");
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, r.body_mut().read_to_string().unwrap())
}

#[test]
fn metrics_expose_the_runtime_registry_with_consensus_and_http_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(2);
    let data = dir.path().join("data");
    let _node = Proc::dev_node(BIN, &data, port, 200, &[], dir.path().join("node.log"));
    let api = Api::at(port);
    api.wait_height(1, "the first block");
    // A transaction through the API, included in a block: the chain counts it.
    let hash = api.drip(&key(7));
    assert_eq!(api.receipt(&hash)["status"], "applied");
    // A route with a parameter, asked for at two heights: one route template.
    api.get("/api/v1/blocks/1");
    api.get("/api/v1/blocks/2");

    // The node's metrics follow the chain; wait until they show the transaction.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (content_type, text) = scrape(&api);
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        if sample(&text, "kassa_txs_total").unwrap_or(0.0) >= 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "no transaction counted:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // Kassa's own metrics, under their names.
    let height = sample(&text, "kassa_height").expect("kassa_height");
    assert!(height >= 2.0, "kassa_height {height}");
    for name in [
        "kassa_mempool_size",
        "kassa_block_interval_ms",
        "kassa_finalization_latency_ms",
        "kassa_apply_ms",
    ] {
        assert!(sample(&text, name).is_some(), "{name} missing:\n{text}");
    }
    // Latency histograms, with every block this validator proposed and finalized in them.
    for (name, least) in [
        ("kassa_finalization_latency_seconds", 2.0),
        ("kassa_apply_seconds", 2.0),
        // The transaction submitted above waited in this node's mempool until included.
        ("kassa_mempool_wait_seconds", 1.0),
    ] {
        let count = sample(&text, &format!("{name}_count")).expect(name);
        assert!(count >= least, "{name}_count {count}");
        assert!(
            !buckets(&text, name, "le=\"+Inf\"").is_empty(),
            "{name} has no buckets:\n{text}"
        );
    }
    // The API's request durations, labelled by the route's template, never the path asked for.
    let http_seconds = "kassa_http_request_duration_seconds";
    let route = "route=\"/api/v1/blocks/{height}\"";
    let by_route = buckets(&text, http_seconds, route);
    assert!(
        !by_route.is_empty(),
        "no {http_seconds} for {route}:\n{text}"
    );
    let all = buckets(&text, http_seconds, "le=\"+Inf\"");
    let blocks = all
        .iter()
        .find(|l| l.contains(route) && l.contains("method=\"GET\"") && l.contains("2xx"))
        .expect("GET /api/v1/blocks/{height} answered 2xx");
    let count: f64 = blocks.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 2.0, "{blocks}");
    assert!(
        !text.contains("route=\"/api/v1/blocks/1\""),
        "a raw path as a label"
    );
    assert!(
        all.iter().any(|l| l.contains("route=\"/api/v1/faucet\"")),
        "the faucet's POST:\n{text}"
    );

    // Commonware's own metrics, from the same registry: simplex's view and finalization
    // latency, marshal's finalized height, the runtime's tasks.
    let view = sample(&text, "consensus_engine_simplex_voter_state_current_view")
        .expect("simplex's current view");
    assert!(view >= height, "view {view} below height {height}");
    let finalized = sample(&text, "consensus_engine_marshal_finalized_height")
        .expect("marshal's finalized height");
    assert!(finalized >= 2.0, "{finalized}");
    assert!(
        text.contains("consensus_engine_simplex_voter_finalization_latency_bucket{"),
        "simplex's finalization latency:\n{text}"
    );
    assert!(text.contains("runtime_tasks_running{"), "{text}");
    assert!(text.ends_with("# EOF\n"), "not OpenMetrics");
}
