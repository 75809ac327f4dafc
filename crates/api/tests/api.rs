//! The HTTP API against a real node (blocks are produced by calling the application directly, as
//! consensus would): typed errors for hostile input, state unchanged by refused transactions,
//! queries, and a balance proof that verifies client-side.
//!
//! Every JSON answer these tests receive is checked against the generated OpenAPI document (the
//! path, method and status it names, and the schema there), so the document cannot drift from
//! what the node sends.
//!
//! Over 600 lines: one test per kind of API use, each starting its own node with the helpers at the
//! top.

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kassa_node::Node;
use kassa_testkit::{DevGenesis, key, node_in, produce, signed_for};
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, ChainId, Memo, Purpose, SocietyName, Symbol};
use kassa_types::{AssetId, Hash, RequestId, SecretKey, SignedTransaction, SocietyId, Transaction};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;
use utoipa::OpenApi as _;

const CHAIN: &str = "kassa-api-test";

fn node(dir: &std::path::Path) -> Arc<Node> {
    let genesis = DevGenesis {
        chain_id: CHAIN,
        accounts: 4,
        each: 1_000_000_000,
        min_fee: 100,
        time_ms: 1_000,
    }
    .genesis();
    node_in(dir, &genesis, true)
}

fn tx(node: &Node, k: &SecretKey, nonce: u64, body: Body) -> SignedTransaction {
    signed_for(node, k, nonce, 1_000, body)
}

async fn call(
    node: &Arc<Node>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    let req = match body {
        Some(b) => req.body(HttpBody::from(b.to_string())).unwrap(),
        None => req.body(HttpBody::empty()).unwrap(),
    };
    let resp = kassa_api::router(node.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = match serde_json::from_slice(&bytes) {
        Ok(v) => {
            documented(method, uri, status, &v);
            v
        }
        Err(_) => Value::String(String::from_utf8_lossy(&bytes).into()),
    };
    (status, v)
}

/// The OpenAPI document, generated from the API's wire types and handlers.
fn openapi() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(kassa_api::ApiDoc::openapi()).unwrap())
}

/// Panics unless the OpenAPI document names this answer: its path and method, its status (or
/// `default`), and a JSON schema the body matches.
fn documented(method: &str, uri: &str, status: StatusCode, body: &Value) {
    let doc = openapi();
    let path = uri.split('?').next().unwrap();
    let fits = |template: &str| {
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || t.starts_with('{'))
    };
    let Some(item) = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(t, _)| fits(t))
        .map(|(_, item)| &item[method.to_lowercase()])
        .filter(|op| op.is_object())
    else {
        // The router's fallback answers paths and methods that do not exist, as `default` errors.
        assert_eq!(
            body["error"]["code"], "not_found",
            "{method} {uri} is undocumented"
        );
        return;
    };
    let responses = &item["responses"];
    let response = responses
        .get(status.as_str())
        .or_else(|| responses.get("default"))
        .unwrap_or_else(|| panic!("{method} {uri}: status {status} is undocumented"));
    assert!(
        response["description"].is_string(),
        "{method} {uri}: a response has a description"
    );
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {uri} {status}: JSON is undocumented"
    );
    if let Err(e) = conforms(body, schema) {
        panic!(
            "{method} {uri} answered {status} with JSON the OpenAPI document does not describe: {e}\n{body:#}"
        );
    }
}

/// Whether `v` matches the JSON schema `s` (the subset the generated document uses: `$ref`,
/// `oneOf`, `allOf`, `enum`, `type`, `required`, `properties`, `items`). An object may carry no
/// field the schema does not name, unless the schema names none (a free-form object).
fn conforms(v: &Value, s: &Value) -> Result<(), String> {
    if let Some(r) = s["$ref"].as_str() {
        let name = r
            .strip_prefix("#/components/schemas/")
            .ok_or(format!("ref {r}"))?;
        let target = &openapi()["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("no schema {name}"));
        }
        return conforms(v, target).map_err(|e| format!("{name}: {e}"));
    }
    if let Some(all) = s["allOf"].as_array() {
        for one in all {
            conforms(v, one)?;
        }
    }
    if let Some(alternatives) = s["oneOf"].as_array() {
        let fits: Vec<_> = alternatives.iter().map(|a| conforms(v, a)).collect();
        if fits.iter().filter(|f| f.is_ok()).count() != 1 {
            let why: Vec<String> = fits.into_iter().filter_map(Result::err).collect();
            return Err(format!(
                "not exactly one of {} alternatives ({})",
                alternatives.len(),
                why.join("; ")
            ));
        }
    }
    if let Some(values) = s["enum"].as_array()
        && !values.contains(v)
    {
        return Err(format!("{v} is not one of {values:?}"));
    }
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let fits = allowed.is_empty()
        || allowed.contains(&kind)
        || (kind == "integer" && allowed.contains(&"number"));
    if !fits {
        return Err(format!("{v} is {kind}, not {allowed:?}"));
    }
    if let (Value::Object(fields), Some(props)) = (v, s["properties"].as_object()) {
        for r in s["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !fields.contains_key(r) {
                return Err(format!("missing field {r}"));
            }
        }
        for (k, fv) in fields {
            let fs = props
                .get(k)
                .ok_or(format!("field {k} is not in the schema"))?;
            conforms(fv, fs).map_err(|e| format!("{k}: {e}"))?;
        }
    }
    if let (Value::Array(items), Some(item)) = (v, s.get("items")) {
        for (i, iv) in items.iter().enumerate() {
            conforms(iv, item).map_err(|e| format!("[{i}]: {e}"))?;
        }
    }
    Ok(())
}

async fn submit(node: &Arc<Node>, t: &SignedTransaction) -> (StatusCode, Value) {
    call(
        node,
        "POST",
        "/api/v1/txs",
        Some(json!({"tx": hex::encode(t.encode())})),
    )
    .await
}

#[tokio::test]
async fn status_reports_chain_height_and_state_root() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    let (s, v) = call(&n, "GET", "/api/v1/status", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["chain_id"], CHAIN);
    assert_eq!(v["height"], 0);
    assert_eq!(v["state_root"].as_str().unwrap().len(), 64);
    let (s, v) = call(&n, "GET", "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["openapi"], "3.1.0");
    let (s, v) = call(&n, "GET", "/api/v1/nothing-here", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn hostile_input_gets_typed_errors_and_changes_no_state() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    let a = key(1);
    // Set up: an asset and a society, so that society-level refusals can be shown.
    let setup = vec![
        tx(
            &n,
            &a,
            0,
            Body::CreateAsset {
                symbol: Symbol::new("USDK").unwrap(),
                decimals: 2,
                max_supply: None,
            },
        ),
        tx(
            &n,
            &a,
            1,
            Body::CreateSociety {
                name: SocietyName::new("Test fund").unwrap(),
                purpose: Purpose::new("tests").unwrap(),
                asset: AssetId(1),
                rules: Rules::defaults(100, 1_000),
                pledge: 100,
            },
        ),
    ];
    for t in &setup {
        assert_eq!(submit(&n, t).await.0, StatusCode::OK);
    }
    produce(&n);
    let (_, before) = call(
        &n,
        "GET",
        &format!("/api/v1/accounts/{}", a.address()),
        None,
    )
    .await;

    // Refused before the mempool: nothing at all changes.
    let (s, v) = call(&n, "POST", "/api/v1/txs", Some(json!({"tx": "zz"}))).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed"))
    );
    let (s, v) = call(&n, "POST", "/api/v1/txs", Some(json!({"tx": "00010203"}))).await;
    assert_eq!(
        (
            s,
            v["error"]["code"].as_str(),
            v["error"]["number"].as_u64()
        ),
        (StatusCode::BAD_REQUEST, Some("malformed"), Some(1))
    );
    let mut bad_sig = tx(
        &n,
        &a,
        2,
        Body::Leave {
            society: SocietyId(0),
        },
    );
    bad_sig.signature.0[0] ^= 1;
    let (s, v) = submit(&n, &bad_sig).await;
    assert_eq!(
        (
            s,
            v["error"]["code"].as_str(),
            v["error"]["number"].as_u64()
        ),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("bad_signature"),
            Some(3)
        )
    );
    let wrong_chain = Transaction {
        chain_id: ChainId::new("elsewhere").unwrap(),
        ..tx(
            &n,
            &a,
            2,
            Body::Leave {
                society: SocietyId(0),
            },
        )
        .tx
    }
    .sign(&a);
    assert_eq!(
        submit(&n, &wrong_chain).await.1["error"]["code"],
        "wrong_chain"
    );
    assert_eq!(
        submit(&n, &setup[0]).await.1["error"]["code"],
        "nonce_too_low",
        "a replay"
    );
    // An over-long memo cannot even be encoded by a correct client; hand-craft the bytes.
    let long = tx(
        &n,
        &a,
        2,
        Body::FileRequest {
            society: SocietyId(0),
            amount: 1,
            evidence_hash: Hash::default(),
            memo: Memo::new("m").unwrap(),
            payee: None,
            installments: 0,
        },
    );
    let mut bytes = long.encode();
    let at = bytes
        .windows(5)
        .position(|w| w == [1, 0, 0, 0, b'm'])
        .unwrap();
    bytes.splice(
        at..at + 5,
        [(257u32).to_le_bytes().to_vec(), vec![b'x'; 257]].concat(),
    );
    let (s, v) = call(
        &n,
        "POST",
        "/api/v1/txs",
        Some(json!({"tx": hex::encode(&bytes)})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed"))
    );
    let huge = json!({"tx": "00".repeat(40_000)});
    assert_eq!(
        call(&n, "POST", "/api/v1/txs", Some(huge)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let height = produce(&n);
    let (_, block) = call(&n, "GET", &format!("/api/v1/blocks/{height}"), None).await;
    assert_eq!(
        block["txs"].as_array().unwrap().len(),
        0,
        "nothing refused at the door was included"
    );
    let (_, after) = call(
        &n,
        "GET",
        &format!("/api/v1/accounts/{}", a.address()),
        None,
    )
    .await;
    assert_eq!(before, after, "nor changed the account");

    // Refused in execution: a typed receipt; only the fee and nonce change.
    let cases = [
        (
            Body::Transfer {
                to: key(2).address(),
                asset: AssetId(1),
                amount: u64::MAX,
            },
            "insufficient_balance",
            44,
        ),
        (
            Body::Join {
                society: SocietyId(9),
                pledge: 100,
                identity_commitment: None,
            },
            "unknown_society",
            41,
        ),
        (
            Body::Vote {
                request: RequestId(0),
                approve: true,
                percent: 100,
            },
            "unknown_request",
            42,
        ),
        (
            Body::Expel {
                society: SocietyId(0),
                member: key(2).address(),
            },
            "not_member",
            51,
        ),
    ];
    for (i, (body, code, number)) in cases.into_iter().enumerate() {
        let t = tx(&n, &a, 2 + u64::try_from(i).unwrap(), body);
        let (s, v) = call(
            &n,
            "POST",
            "/api/v1/txs?wait=false",
            Some(json!({"tx": hex::encode(t.encode())})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        produce(&n);
        let (_, r) = call(
            &n,
            "GET",
            &format!("/api/v1/txs/{}", hex::encode(t.hash().0)),
            None,
        )
        .await;
        assert_eq!(
            (
                r["status"].as_str(),
                r["error"]["code"].as_str(),
                r["error"]["number"].as_u64()
            ),
            (Some("failed"), Some(code), Some(number)),
            "{r}"
        );
    }
    let (_, acct) = call(
        &n,
        "GET",
        &format!("/api/v1/accounts/{}", a.address()),
        None,
    )
    .await;
    assert_eq!(acct["nonce"], 6);
    assert_eq!(
        acct["balances"][0]["amount"],
        (1_000_000_000u64 - 6 * 100).to_string(),
        "only fees left the account"
    );
}

#[tokio::test]
async fn queries_and_a_balance_proof_that_verifies_without_trusting_the_node() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    let newcomer = SecretKey::from_label("newcomer").address();
    let (s, v) = call(
        &n,
        "POST",
        "/api/v1/faucet",
        Some(json!({"address": newcomer.to_bech32()})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    produce(&n);
    let (_, acct) = call(&n, "GET", &format!("/api/v1/accounts/{newcomer}"), None).await;
    assert_eq!(acct["balances"][0]["amount"], "5000000");
    assert_eq!(acct["balances"][0]["symbol"], "KAS");

    let key = kassa_state::keys::holding(&newcomer, AssetId::NATIVE);
    let (s, p) = call(
        &n,
        "GET",
        &format!("/api/v1/proofs/{}", hex::encode(&key)),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // The client checks: the root is the one in the finalized block header, and the proof ties
    // the value to it.
    let (_, block) = call(&n, "GET", &format!("/api/v1/blocks/{}", p["height"]), None).await;
    assert_eq!(block["state_root"], p["state_root"]);
    let root = Hash(
        hex::decode(p["state_root"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let value = hex::decode(p["value"].as_str().unwrap()).unwrap();
    assert_eq!(
        kassa_state::exec::balance_in(AssetId::NATIVE, Some(&value)).unwrap(),
        5_000_000
    );
    assert_eq!(p["kind"], "present");
    let proof =
        kassa_api::decode_proof(p["kind"].as_str().unwrap(), p["proof"].as_str().unwrap()).unwrap();
    assert!(kassa_db::verify(&root, &key, Some(&value), &proof));
    let mut account: kassa_state::records::Account = borsh::from_slice(&value).unwrap();
    account.kas = 6_000_000;
    let forged = borsh::to_vec(&account).unwrap();
    assert!(!kassa_db::verify(&root, &key, Some(&forged), &proof));
    // Several keys at once, at one height: a present one and an absent one.
    let absent = kassa_state::keys::holding(&kassa_types::Address([9; 32]), AssetId::NATIVE);
    let (s, many) = call(
        &n,
        "GET",
        &format!(
            "/api/v1/proofs?keys={},{}",
            hex::encode(&key),
            hex::encode(&absent)
        ),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(many["state_root"], p["state_root"]);
    let items = many["items"].as_array().unwrap();
    assert_eq!(
        (items[0]["kind"].as_str(), items[1]["kind"].as_str()),
        (Some("present"), Some("absent"))
    );
    let absence = kassa_api::decode_proof("absent", items[1]["proof"].as_str().unwrap()).unwrap();
    assert!(kassa_db::verify(&root, &absent, None, &absence));
    let (s, v) = call(&n, "GET", "/api/v1/proofs?keys=zz", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_key"))
    );

    let (s, v) = call(&n, "GET", "/api/v1/societies/7", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, v) = call(&n, "GET", "/api/v1/accounts/not-an-address", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_address"))
    );
    let (_, v) = call(&n, "GET", "/api/v1/blocks?limit=1000", None).await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        2,
        "genesis and one block"
    );
    let (_, m) = call(&n, "GET", "/metrics", None).await;
    assert!(m.as_str().unwrap().contains("kassa_height 1"));
}

#[tokio::test]
async fn the_event_stream_sends_each_finalized_block_with_its_receipts() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    let req = Request::builder()
        .uri("/api/v1/events")
        .body(HttpBody::empty())
        .unwrap();
    let resp = kassa_api::router(n.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    submit(
        &n,
        &tx(
            &n,
            &key(1),
            0,
            Body::Transfer {
                to: key(2).address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        ),
    )
    .await;
    produce(&n);
    let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: block\n"), "{text}");
    let data: Value =
        serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["height"], 1);
    assert_eq!(data["txs"][0]["status"], "applied");
    assert_eq!(data["txs"][0]["events"][1]["type"], "transferred");
    let stream = &openapi()["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"];
    conforms(&data, &stream["text/event-stream"]["schema"]).unwrap();
}

#[test]
fn the_openapi_document_names_every_route_and_the_check_refuses_what_it_does_not_describe() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every route the router serves (lib.rs) is a path of the document, and nothing else is.
    let router_src = include_str!("../src/lib.rs");
    let mut routes: Vec<&str> = router_src
        .split(".route(")
        .skip(1)
        .map(|r| {
            r.trim_start()
                .trim_start_matches('"')
                .split('"')
                .next()
                .unwrap()
        })
        .collect();
    let mut paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    routes.sort_unstable();
    paths.sort_unstable();
    assert_eq!(routes, paths);

    let society = serde_json::to_value(kassa_api::wire::Society {
        id: 3,
        name: "Bread".into(),
        purpose: String::new(),
        asset: 0,
        rules: Rules::defaults(1_000, 90_000),
        voting_window_secs_min: 60,
        created_ms: 0,
        current_period: 0,
        member_count: 1,
        standing_count: 1,
        gift_funds: kassa_api::wire::Amount(7),
        bonds: Default::default(),
        common_fund: Default::default(),
        benefits_escrow: Default::default(),
        owed: Default::default(),
        benefits_per_period: Default::default(),
        total_karma: Default::default(),
        queue_length: 0,
        amendment: None,
        stats: serde_json::from_value(json!({
            "requests_filed": 0, "requests_approved": 0, "requests_rejected": 0,
            "paid_by_shares": "0", "paid_by_gifts": "0", "paid_by_common": "0",
            "installments_funded": "0", "bonds_forfeited": "0", "members_expelled": 0,
        }))
        .unwrap(),
    })
    .unwrap();
    let schema = json!({"$ref": "#/components/schemas/Society"});
    conforms(&society, &schema).unwrap();
    let mut extra = society.clone();
    extra["surplus"] = json!(1);
    assert!(conforms(&extra, &schema).unwrap_err().contains("surplus"));
    let mut missing = society.clone();
    missing.as_object_mut().unwrap().remove("gift_funds");
    assert!(
        conforms(&missing, &schema)
            .unwrap_err()
            .contains("gift_funds")
    );
    let mut number = society;
    number["gift_funds"] = json!(7);
    assert!(conforms(&number, &schema).is_err(), "an amount is a string");
    let mut misspelt_rule = number.clone();
    misspelt_rule["gift_funds"] = json!("7");
    misspelt_rule["rules"]["quorum_bsp"] = json!(0);
    assert!(
        conforms(&misspelt_rule, &schema)
            .unwrap_err()
            .contains("quorum_bsp")
    );
}

#[tokio::test]
async fn a_societys_history_samples_its_gift_funds_from_creation_to_now_and_members_see_their_next_due_date()
 {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    let mut rules = Rules::defaults(1_000, 10_000);
    rules.period_secs = 10;
    rules.min_members = 1;
    let founder = key(1);
    let create = Body::CreateSociety {
        name: SocietyName::new("History").unwrap(),
        purpose: Purpose::new("Charts").unwrap(),
        asset: AssetId::NATIVE,
        rules,
        pledge: 1_000,
    };
    submit(&n, &tx(&n, &founder, 0, create)).await;
    produce(&n); // height 1: before the society, nothing to sample
    // The founder is the first member: a check-in, with nothing paid yet.
    let check_in = Body::Contribute {
        society: SocietyId(0),
        amount: 0,
    };
    submit(&n, &tx(&n, &founder, 1, check_in)).await;
    produce(&n);
    for nonce in 2..5 {
        let c = Body::Contribute {
            society: SocietyId(0),
            amount: 1_000,
        };
        let (s, v) = submit(&n, &tx(&n, &founder, nonce, c)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        produce(&n);
    }
    let (s, h) = call(&n, "GET", "/api/v1/societies/0/history?points=60", None).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let funds: Vec<&str> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["gift_funds"].as_str().unwrap())
        .collect();
    assert_eq!(funds, ["0", "0", "1000", "2000", "3000"], "{h}");
    assert_eq!(
        h["items"][0]["height"], 1,
        "sampling starts at the creating block"
    );
    let (_, two) = call(&n, "GET", "/api/v1/societies/0/history?points=2", None).await;
    assert_eq!(two["items"].as_array().unwrap().len(), 2);
    assert_eq!(two["items"][1]["gift_funds"], "3000");
    let (s, _) = call(&n, "GET", "/api/v1/societies/9/history", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Three pledges paid from the joining period: the next one is due at the start of period 3.
    let (_, soc) = call(&n, "GET", "/api/v1/societies/0", None).await;
    let (_, me) = call(
        &n,
        "GET",
        &format!("/api/v1/societies/0/members/{}", founder.address()),
        None,
    )
    .await;
    let created = soc["created_ms"].as_u64().unwrap();
    let joined = (me["joined_ms"].as_u64().unwrap() - created) / 10_000;
    assert_eq!(me["paid_until"].as_u64().unwrap(), joined + 3);
    assert_eq!(
        me["next_due_ms"].as_u64().unwrap(),
        created + (joined + 3) * 10_000
    );
}

#[tokio::test]
async fn the_node_serves_the_web_app_with_its_scripts_and_a_content_security_policy() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    for (uri, kind) in [
        ("/", "text/html"),
        ("/app/app.js", "text/javascript"),
        ("/app/app.css", "text/css"),
    ] {
        let resp = kassa_api::router(n.clone())
            .oneshot(Request::get(uri).body(HttpBody::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{uri}"
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
    }
    let (s, v) = call(&n, "GET", "/app/../Cargo.toml", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn a_preview_simulates_the_form_rules_and_refuses_what_is_too_large_or_misspelt() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    let rules = json!({"min_pledge": "1000", "max_pledge": "5000", "min_members": 5});
    let body =
        json!({"rules": rules, "members": 40, "periods": 24, "currency": "KAS", "decimals": 2});
    let (s, v) = call(&n, "POST", "/api/v1/simulate", Some(body.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rows"].as_array().unwrap().len(), 24);
    assert_eq!(v["summary"]["members_start"], 40);
    assert_eq!(v["charts"].as_array().unwrap().len(), 4);
    assert!(v["charts"][0]["svg"].as_str().unwrap().starts_with("<svg"));
    let words = v["summary"]["sentences"][0].as_str().unwrap();
    assert!(words.starts_with("In 2 simulated years"), "{words}");
    // The same body gives the same report.
    let (_, again) = call(&n, "POST", "/api/v1/simulate", Some(body)).await;
    assert_eq!(again["rows"], v["rows"]);

    let too_big = json!({"rules": rules, "members": 2000, "periods": 60});
    let (s, v) = call(&n, "POST", "/api/v1/simulate", Some(too_big)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "bad_scenario");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("member-periods")
    );

    let misspelt = json!({"rules": {"min_pledge": 1, "max_pledge": 2, "benefit_ration": 3}});
    let (s, v) = call(&n, "POST", "/api/v1/simulate", Some(misspelt)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_scenario"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("benefit_ration")
    );

    let unknown_knob = json!({"rules": rules, "member": 10});
    let (s, _) = call(&n, "POST", "/api/v1/simulate", Some(unknown_knob)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn lists_page_by_cursor_from_the_last_item_and_refuse_a_bad_cursor_or_an_unknown_parameter() {
    let d = tempfile::tempdir().unwrap();
    let n = node(d.path());
    for i in 1..4 {
        let create = Body::CreateSociety {
            name: SocietyName::new(format!("Society {i}")).unwrap(),
            purpose: Purpose::new("Paging").unwrap(),
            asset: AssetId::NATIVE,
            rules: Rules::defaults(1_000, 10_000),
            pledge: 1_000,
        };
        let (s, v) = submit(&n, &tx(&n, &key(i), 0, create)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    produce(&n);
    // Walk the societies one at a time: each page's `next` is the cursor of the following one.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/societies?limit=1".to_string();
    loop {
        let (s, page) = call(&n, "GET", &uri, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{page}");
        seen.push(items[0]["id"].as_u64().unwrap());
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/v1/societies?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, [0, 1, 2]);
    let (_, rest) = call(&n, "GET", "/api/v1/societies?after=0", None).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next"], Value::Null);
    let (_, members) = call(&n, "GET", "/api/v1/societies/1/members", None).await;
    assert_eq!(members["items"][0]["address"], key(2).address().to_bech32());
    let (_, requests) = call(&n, "GET", "/api/v1/societies/1/requests", None).await;
    assert_eq!(requests, json!({"items": [], "next": null}));

    for (uri, code) in [
        ("/api/v1/societies?after=x", "bad_cursor"),
        ("/api/v1/societies/0/members?after=kassa1nope", "bad_cursor"),
        ("/api/v1/societies?offset=1", "bad_request"),
    ] {
        let (s, v) = call(&n, "GET", uri, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["error"]["code"], code, "{uri}: {v}");
    }
    let (s, _) = call(&n, "GET", "/api/v1/societies/9/requests", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
