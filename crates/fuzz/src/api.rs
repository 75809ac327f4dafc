//! HTTP requests to the API of a real in-process node (its state: four funded accounts, an
//! asset, a society and a filed request), as any client on the internet may send them.
//!
//! The input chooses a route, fills its path parameters and query string, and the rest is the
//! request body. Whatever arrives, the node never answers with a server error (`500`), and every
//! refusal is the API's JSON error, with a code. The society simulator (`/api/v1/simulate`, which
//! may run for seconds by design) and the event stream (which never ends) are left out.

use crate::Input;
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use kassa_node::Node;
use kassa_testkit::{DevGenesis, key, node_in, produce, signed_for};
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{AssetId, Hash, SocietyId};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

/// The chain id of the fuzzed node.
pub const CHAIN: &str = "kassa-fuzz";

/// The routes the fuzzer calls: method and path, `{}` standing for a parameter.
pub const ROUTES: [(&str, &str); 24] = [
    ("POST", "/api/v1/txs"),
    ("POST", "/api/v1/txs/batch"),
    ("POST", "/api/v1/faucet"),
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/txs/{}"),
    ("GET", "/api/v1/accounts/{}"),
    ("GET", "/api/v1/assets"),
    ("GET", "/api/v1/assets/{}"),
    ("GET", "/api/v1/societies"),
    ("GET", "/api/v1/societies/{}"),
    ("GET", "/api/v1/societies/{}/history"),
    ("GET", "/api/v1/societies/{}/members"),
    ("GET", "/api/v1/societies/{}/members/{}"),
    ("GET", "/api/v1/societies/{}/requests"),
    ("GET", "/api/v1/requests/{}"),
    ("GET", "/api/v1/requests/{}/votes"),
    ("GET", "/api/v1/amendments/{}"),
    ("GET", "/api/v1/blocks"),
    ("GET", "/api/v1/blocks/{}"),
    ("GET", "/api/v1/blocks/{}/raw"),
    ("GET", "/api/v1/blocks/{}/finality"),
    ("GET", "/api/v1/proofs/{}"),
    ("GET", "/api/v1/genesis"),
    ("GET", "/app/{}"),
];

struct Served {
    rt: tokio::runtime::Runtime,
    node: Arc<Node>,
}

/// The fuzzed node (made on first use).
pub fn node() -> &'static Node {
    &served().node
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary folder").keep();
        let genesis = DevGenesis {
            chain_id: CHAIN,
            accounts: 4,
            each: 1_000_000_000,
            min_fee: 100,
            time_ms: 1_000,
        }
        .genesis();
        let node = rt.block_on(async { node_in(&dir, &genesis, true) });
        populate(&node);
        Served { rt, node }
    })
}

fn populate(node: &Node) {
    let k = key(0);
    let mut rules = Rules::defaults(100, 1_000);
    rules.min_members = 1;
    let bodies = [
        Body::CreateAsset {
            symbol: Symbol::new("USDK").expect("a symbol"),
            decimals: 2,
            max_supply: None,
        },
        Body::Mint {
            asset: AssetId(1),
            to: k.address(),
            amount: 1_000_000,
        },
        Body::CreateSociety {
            name: SocietyName::new("Fuzz fund").expect("a name"),
            purpose: Purpose::new("Help when it is needed.").expect("a purpose"),
            asset: AssetId(1),
            rules,
            pledge: 100,
        },
        Body::Contribute {
            society: SocietyId(0),
            amount: 500,
        },
        Body::FileRequest {
            society: SocietyId(0),
            amount: 50,
            evidence_hash: Hash::of(&[b"evidence"]),
            memo: Memo::new("roof").expect("a memo"),
            payee: None,
            installments: 0,
        },
    ];
    for (nonce, body) in (0u64..).zip(bodies) {
        let stx = signed_for(node, &k, nonce, 1_000, body);
        node.submit(vec![stx]).expect("admission runs");
        produce(node);
    }
}

/// A path parameter: a valid-looking value of some kind, or the input's bytes, escaped.
fn parameter(input: &mut Input<'_>) -> String {
    match input.below(6) {
        0 => key(input.index(5)).address().to_string(),
        1 => input.below(8).to_string(),
        2 => input.u64().to_string(),
        3 => hex::encode(Hash::of(&[&[input.byte()]]).0),
        _ => {
            let n = input.index(40);
            escape(&(0..n).map(|_| input.byte()).collect::<Vec<u8>>())
        }
    }
}

/// Percent-escapes every byte but unreserved characters and `=`, `&`.
fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~=&".contains(b) {
                char::from(*b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Sends the request `data` describes; its status and body (`None` when the bytes make no
/// valid HTTP request).
pub fn call(data: &[u8]) -> Option<(String, StatusCode, String)> {
    let s = served();
    let mut input = Input::new(data);
    let (method, template) = input.pick(&ROUTES);
    let mut uri = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            uri.push_str(&parameter(&mut input));
        }
        uri.push_str(part);
    }
    if input.chance(40) {
        let n = input.index(48);
        let q: Vec<u8> = (0..n).map(|_| input.byte()).collect();
        uri.push('?');
        uri.push_str(&escape(&q));
    }
    let req = Request::builder()
        .method(method)
        .uri(&uri)
        .header("content-type", "application/json")
        .body(HttpBody::from(input.rest().to_vec()))
        .ok()?;
    let (status, bytes) = s.rt.block_on(async {
        let resp = kassa_api::router(s.node.clone())
            .oneshot(req)
            .await
            .expect("the router answers");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
        (status, bytes)
    });
    Some((
        format!("{method} {uri}"),
        status,
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// Sends the request `data` describes.
///
/// # Panics
/// When the node answers a server error, or refuses without the API's JSON error.
pub fn run(data: &[u8]) {
    let Some((request, status, body)) = call(data) else {
        return;
    };
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{request}: {body}"
    );
    if status.is_client_error() || status.is_server_error() {
        let v: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{request} ({status}): not JSON: {body}"));
        assert!(v["error"]["code"].is_string(), "{request} ({status}): {v}");
    }
}
