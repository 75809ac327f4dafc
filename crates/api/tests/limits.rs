//! The API's limits, tried as an attacker would: over a real server on loopback (half-sent
//! requests, more connections than a client's share, submissions over the rate, bodies that
//! never arrive, too many event streams) and in-process (batches, a stream that falls behind).
//! Every client here is a loopback address of its own (127.0.0.2, 127.0.0.3, ...), as clients
//! on the internet have their own.

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kassa_api::{Limits, Server};
use kassa_node::Node;
use kassa_testkit::{DevGenesis, key, node_in, produce, signed_for};
use kassa_types::rules::Rules;
use kassa_types::tx::{Body, Purpose, SocietyName};
use kassa_types::{AssetId, SignedTransaction};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tower::ServiceExt;

const CHAIN: &str = "kassa-limits-test";
const ACCOUNTS: usize = 30;

/// No exchange in these tests takes longer unless a limit is missing.
const BOUND: Duration = Duration::from_secs(20);

fn node(dir: &std::path::Path) -> Arc<Node> {
    let genesis = DevGenesis {
        chain_id: CHAIN,
        accounts: ACCOUNTS,
        each: 1_000_000_000,
        min_fee: 100,
        time_ms: 1_000,
    }
    .genesis();
    node_in(dir, &genesis, false)
}

fn serve(node: &Arc<Node>, limits: Limits) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    Server::start(listener, node.clone(), limits).unwrap()
}

/// A connection to `server` from loopback address `127.0.0.{from}`.
async fn connect(server: &Server, from: u8) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, from], 0)))
        .unwrap();
    socket.connect(server.addr).await.unwrap()
}

/// Everything the server sends until it closes the connection.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap_or_default();
    String::from_utf8_lossy(&answer).into_owned()
}

/// One request from `127.0.0.{from}` on a connection of its own; the whole answer.
async fn exchange(server: &Server, from: u8, request: &str) -> String {
    let mut stream = connect(server, from).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    until_closed(&mut stream).await
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: kassa\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: kassa\r\nConnection: close\r\n\r\n")
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_half_a_request_is_disconnected_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let server = serve(
        &node,
        Limits {
            header_timeout_ms: 300,
            ..Limits::default()
        },
    );
    let mut stream = connect(&server, 2).await;
    stream
        .write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: kas")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(!answer.contains("chain_id"), "{answer}");
    // A connection that never sends anything is closed the same way.
    let mut idle = connect(&server, 2).await;
    until_closed(&mut idle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_a_clients_share_are_closed_while_other_clients_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let server = serve(
        &node,
        Limits {
            connections_per_client: 3,
            ..Limits::default()
        },
    );
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&server, 2).await);
    }
    // The held connections are seated before the next is accepted (accepts are in order): show
    // it by a request on one of them.
    held[0]
        .write_all(get("/api/v1/status").as_bytes())
        .await
        .unwrap();
    assert_eq!(status_of(&until_closed(&mut held[0]).await), 200);
    // Its seat is free again once it is closed; take it back.
    held[0] = connect(&server, 2).await;
    held[1]
        .write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: kassa\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(BOUND, held[1].read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let mut fourth = connect(&server, 2).await;
    let _ = fourth.write_all(get("/api/v1/status").as_bytes()).await;
    assert_eq!(until_closed(&mut fourth).await, "", "refused on accept");
    let other = exchange(&server, 3, &get("/api/v1/status")).await;
    assert_eq!(status_of(&other), 200, "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_submission_rate_gets_429_with_retry_after_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let server = serve(
        &node,
        Limits {
            submit_per_sec: 1,
            submit_burst: 2,
            ..Limits::default()
        },
    );
    let junk = post("/api/v1/txs", r#"{"tx":"zz"}"#);
    for _ in 0..2 {
        assert_eq!(status_of(&exchange(&server, 2, &junk).await), 400);
    }
    let limited = exchange(&server, 2, &junk).await;
    assert_eq!(status_of(&limited), 429, "{limited}");
    assert!(
        limited.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{limited}"
    );
    assert!(limited.contains("\"rate_limited\""), "{limited}");
    // A batch counts each of its transactions.
    let batch = post(
        "/api/v1/txs/batch",
        &json!({ "txs": ["zz", "zz", "zz"] }).to_string(),
    );
    let answer = exchange(&server, 4, &batch).await;
    assert_eq!(status_of(&answer), 429, "{answer}");
    // A batch that does not say its length cannot be charged before it is read: refused.
    let chunked = "POST /api/v1/txs/batch HTTP/1.1\r\nHost: kassa\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\na\r\n{\"txs\":[]}\r\n0\r\n\r\n";
    let answer = exchange(&server, 5, chunked).await;
    assert_eq!(status_of(&answer), 411, "{answer}");
    // Another client has its own budget.
    assert_eq!(status_of(&exchange(&server, 3, &junk).await), 400);
    assert_eq!(node.mempool_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_refused_and_the_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let server = serve(
        &node,
        Limits {
            body_timeout_ms: 300,
            ..Limits::default()
        },
    );
    let mut stream = connect(&server, 2).await;
    stream
        .write_all(
            b"POST /api/v1/txs HTTP/1.1\r\nHost: kassa\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tx\":",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert_eq!(node.mempool_len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_beyond_the_cap_are_refused_with_503() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let server = serve(
        &node,
        Limits {
            event_streams: 1,
            ..Limits::default()
        },
    );
    let mut first = connect(&server, 2).await;
    first
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: kassa\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(BOUND, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let second = exchange(&server, 3, &get("/api/v1/events")).await;
    assert_eq!(status_of(&second), 503, "{second}");
    assert!(second.contains("\"too_many_streams\""), "{second}");
}

async fn call(node: &Arc<Node>, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(HttpBody::from(body.to_string()))
        .unwrap();
    let resp = kassa_api::router(node.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn transfer(node: &Node, from: usize, nonce: u64, amount: u64) -> SignedTransaction {
    let body = Body::Transfer {
        to: key(2).address(),
        asset: AssetId::NATIVE,
        amount,
    };
    signed_for(node, &key(from), nonce, 100, body)
}

/// A transaction as large as a society's name and purpose allow (about 1.3 KiB).
fn bulky(node: &Node, from: usize, nonce: u64) -> SignedTransaction {
    let body = Body::CreateSociety {
        name: SocietyName::new("n".repeat(64)).unwrap(),
        purpose: Purpose::new("p".repeat(1_024)).unwrap(),
        asset: AssetId::NATIVE,
        rules: Rules::defaults(100, 1_000),
        pledge: 100,
    };
    signed_for(node, &key(from), nonce, 100, body)
}

fn hex_of(t: &SignedTransaction) -> String {
    hex::encode(t.encode())
}

#[tokio::test]
async fn a_batch_answers_each_transaction_in_order_with_numbered_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let ok = transfer(&node, 0, 0, 5);
    let mut forged = transfer(&node, 1, 0, 5);
    forged.tx.fee += 1; // the signature no longer matches
    let (status, v) = call(
        &node,
        "POST",
        "/api/v1/txs/batch",
        json!({ "txs": [hex_of(&ok), "not hex", hex_of(&ok), hex_of(&forged), hex_of(&transfer(&node, 0, 1, 7))] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["status"], "pending");
    assert_eq!(results[0]["hash"], ok.hash().to_string());
    assert_eq!(results[1]["error"]["code"], "malformed");
    assert_eq!(results[2]["error"]["code"], "duplicate");
    assert_eq!(results[2]["error"]["number"], 30);
    assert_eq!(results[3]["error"]["code"], "bad_signature");
    assert!(results[3]["error"]["number"].is_u64());
    assert_eq!(results[4]["status"], "pending");
    assert_eq!(node.mempool_len(), 2);
    produce(&node);
    assert_eq!(node.mempool_len(), 0);
}

#[tokio::test]
async fn a_batch_of_more_than_the_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let max = Limits::default().batch_max;
    let one = hex_of(&transfer(&node, 0, 0, 5));
    let (status, v) = call(
        &node,
        "POST",
        "/api/v1/txs/batch",
        json!({ "txs": vec![one; max + 1] }),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "batch_too_large");
    assert_eq!(node.mempool_len(), 0);
}

#[tokio::test]
async fn a_stream_that_falls_behind_gets_a_close_event_saying_why_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let req = Request::builder()
        .uri("/api/v1/events")
        .body(HttpBody::empty())
        .unwrap();
    let resp = kassa_api::router(node.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The client reads nothing while more blocks are finalized than the stream buffers.
    for _ in 0..300 {
        produce(&node);
    }
    let mut body = resp.into_body();
    let mut text = String::new();
    while let Some(frame) = tokio::time::timeout(BOUND, body.frame()).await.unwrap() {
        if let Ok(data) = frame.unwrap().into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.starts_with("event: close\n"), "{text}");
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let closed: kassa_api::wire::StreamClosed = serde_json::from_str(data).unwrap();
    assert_eq!(closed.reason, "lagged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_at_the_size_limit_is_served_whole_as_bytes_within_that_limit() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    let txs: Vec<SignedTransaction> = (0..ACCOUNTS)
        .flat_map(|a| (0..210).map(move |n| (a, n)))
        .map(|(a, n)| bulky(&node, a, n))
        .collect();
    for r in node.submit(txs).unwrap() {
        r.unwrap();
    }
    let height = produce(&node);
    let block = node.db().block(height).unwrap().unwrap();
    let size = block.encode().len();
    assert!(
        size > kassa_types::BLOCK_SIZE_MAX - 8 * 1024 && size <= kassa_types::BLOCK_SIZE_MAX,
        "the block is full: {size} bytes"
    );
    let server = serve(&node, Limits::default());
    let mut stream = connect(&server, 2).await;
    let request = format!(
        "GET /api/v1/blocks/{height}/raw HTTP/1.1\r\nHost: kassa\r\nAccept: application/octet-stream\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    let body = &answer[split..];
    assert_eq!(body.len(), size);
    assert_eq!(kassa_types::Block::decode(body).unwrap(), block);
}
