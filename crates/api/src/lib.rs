//! Kassa's HTTP API, under `/api/v1`: the only crate that knows HTTP and JSON. Handlers convert
//! between JSON and domain types ([`json`]) and call the node; they never touch state directly
//! except through read snapshots of the committed database.
//!
//! Every error is `{"error": {"code": "...", "number": N?, "message": "..."}}` with a stable
//! snake_case code (the rejection's name for refused transactions). Request bodies are limited to
//! [`BODY_BYTES_MAX`] and list pages to [`PAGE_MAX`] items.

pub mod json;
mod simulate;
mod web;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use kassa_db::Reader;
use kassa_node::{AdmitError, Node};
use kassa_state::records::Asset;
use kassa_state::view;
use kassa_types::{Address, AmendmentId, AssetId, Hash, RequestId, SocietyId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Largest request body accepted, in bytes.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Most items in one list page.
pub const PAGE_MAX: usize = 100;
/// Longest a `wait=true` submission waits for finalization.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

const OPENAPI: &str = include_str!("openapi.json");

/// An API error: HTTP status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    number: Option<u16>,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            number: None,
            message: message.into(),
        }
    }
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<AdmitError> for ApiError {
    fn from(e: AdmitError) -> Self {
        let status = match e {
            AdmitError::Full | AdmitError::SenderFull => StatusCode::SERVICE_UNAVAILABLE,
            AdmitError::Duplicate | AdmitError::NonceTaken => StatusCode::CONFLICT,
            AdmitError::Rejected(_) | AdmitError::ExpiryTooFar | AdmitError::FeesExceedBalance => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        let number = match e {
            AdmitError::Rejected(r) => Some(r.code()),
            _ => None,
        };
        ApiError {
            status,
            code: e.code(),
            number,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"code": self.code, "number": self.number, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The router. `node` is shared with consensus.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/txs", post(submit))
        .route("/api/v1/txs/{hash}", get(tx))
        .route("/api/v1/accounts/{address}", get(account))
        .route("/api/v1/assets", get(assets))
        .route("/api/v1/assets/{id}", get(asset))
        .route("/api/v1/societies", get(societies))
        .route("/api/v1/societies/{id}", get(society))
        .route("/api/v1/societies/{id}/history", get(history))
        .route("/api/v1/societies/{id}/members", get(members))
        .route("/api/v1/societies/{id}/members/{address}", get(member))
        .route("/api/v1/societies/{id}/requests", get(society_requests))
        .route("/api/v1/requests/{id}", get(request))
        .route("/api/v1/requests/{id}/votes", get(votes))
        .route("/api/v1/amendments/{id}", get(amendment))
        .route("/api/v1/blocks", get(blocks))
        .route("/api/v1/blocks/{height}", get(block))
        .route("/api/v1/blocks/{height}/raw", get(block_raw))
        .route("/api/v1/blocks/{height}/finality", get(finality))
        .route("/api/v1/proofs/{key}", get(proof))
        .route("/api/v1/events", get(events))
        .route("/api/v1/faucet", post(faucet))
        .route("/api/v1/genesis", get(genesis))
        .route("/api/v1/simulate", post(simulate::preview))
        .route("/", get(web::index))
        .route("/app/{file}", get(web::file))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("endpoint") })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(node)
}

/// Rewrites the framework's own refusals (oversized or non-JSON bodies, malformed JSON, bad path
/// or query parameters, wrong method) into the API's JSON error shape.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json")
            || v.as_bytes().starts_with(b"text/event-stream")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "not_json",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        _ => "bad_request",
    };
    let bytes = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    ApiError::new(status, code, message).into_response()
}

fn reader(node: &Node) -> Result<Reader, ApiError> {
    node.db().reader().map_err(ApiError::internal)
}

fn parse_address(s: &str) -> Result<Address, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad("bad_address", format!("{e}")))
}

fn parse_hash(s: &str) -> Result<Hash, ApiError> {
    let bytes = hex::decode(s).map_err(|_| ApiError::bad("bad_hash", "expected 64 hex digits"))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| ApiError::bad("bad_hash", "expected 64 hex digits"))?;
    Ok(Hash(arr))
}

/// `?after=&limit=`: the page after the item whose id is `after` (the previous page's `next`),
/// or the first page; `limit` at most [`PAGE_MAX`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<String>,
    limit: Option<usize>,
}

impl Page {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(PAGE_MAX).min(PAGE_MAX)
    }

    /// The cursor as an id or address.
    fn after<T>(&self, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
        self.after
            .as_deref()
            .map(|a| {
                parse(a).ok_or_else(|| ApiError::bad("bad_cursor", format!("no item has id {a}")))
            })
            .transpose()
    }
}

/// A list's JSON: the page's items and the cursor of the next page (`null` at the end).
fn page_json<T>(
    page: view::Page<T>,
    cursor: impl Fn(&T) -> String,
    item: impl Fn(&T) -> Value,
) -> Json<Value> {
    Json(json!({
        "items": page.items.iter().map(item).collect::<Vec<_>>(),
        "next": page.next().map(cursor),
    }))
}

async fn status(State(node): State<Arc<Node>>) -> ApiResult {
    let head = node.head();
    Ok(Json(json!({
        "chain_id": node.params().chain_id.as_str(),
        "genesis_hash": json::hash(&node.params().genesis_hash),
        "protocol_version": kassa_types::PROTOCOL_VERSION,
        "height": head.height,
        "block_hash": json::hash(&head.block_hash),
        "state_root": json::hash(&head.state_root),
        "time_ms": head.time_ms,
        "min_fee": json::s(node.params().min_fee),
        "mempool_size": node.mempool_len(),
        "faucet": node.has_faucet(),
    })))
}

#[derive(Debug, Deserialize)]
struct SubmitBody {
    /// The canonical signed transaction, hex.
    tx: String,
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    #[serde(default)]
    wait: bool,
}

async fn submit(
    State(node): State<Arc<Node>>,
    Query(q): Query<WaitQuery>,
    body: Json<SubmitBody>,
) -> ApiResult {
    let bytes = hex::decode(body.tx.trim())
        .map_err(|_| ApiError::bad("malformed", "the transaction is not hex"))?;
    let stx = kassa_state::decode_tx(&bytes).map_err(|r| {
        let mut e = ApiError::from(AdmitError::Rejected(r));
        e.status = StatusCode::BAD_REQUEST;
        e
    })?;
    let hash = node
        .submit(vec![stx])
        .map_err(ApiError::internal)?
        .pop()
        .expect("one result per transaction")?;
    if !q.wait {
        return Ok(Json(
            json!({"hash": json::hash(&hash), "status": "pending"}),
        ));
    }
    let mut head = node.watch_head();
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    loop {
        if let Some(rec) = node.db().tx(&hash).map_err(ApiError::internal)? {
            return Ok(Json(tx_json(&rec)));
        }
        match tokio::time::timeout_at(deadline, head.changed()).await {
            Ok(Ok(())) => continue,
            _ => {
                return Ok(Json(
                    json!({"hash": json::hash(&hash), "status": "pending"}),
                ));
            }
        }
    }
}

fn tx_json(rec: &kassa_db::TxRecord) -> Value {
    let mut v = json::receipt(&rec.receipt);
    v["height"] = json!(rec.height);
    v["index"] = json!(rec.index);
    v
}

async fn tx(State(node): State<Arc<Node>>, Path(hash): Path<String>) -> ApiResult {
    let hash = parse_hash(&hash)?;
    // Look in the mempool first: finalization commits a transaction's receipt before removing it
    // from the mempool, so in this order a transaction is always found in one of the two.
    let waiting = node.is_waiting(&hash);
    match node.db().tx(&hash).map_err(ApiError::internal)? {
        Some(rec) => Ok(Json(tx_json(&rec))),
        None if waiting => Ok(Json(
            json!({"hash": json::hash(&hash), "status": "pending"}),
        )),
        None => Err(ApiError::not_found("transaction")),
    }
}

async fn account(State(node): State<Arc<Node>>, Path(address): Path<String>) -> ApiResult {
    let who = parse_address(&address)?;
    let r = reader(&node)?;
    let balances: Vec<Value> = view::account(&r, &who, PAGE_MAX)
        .balances
        .into_iter()
        .map(|(asset, amount)| {
            let symbol = view::asset(&r, asset).map(|a| a.symbol.to_string());
            json!({"asset": asset.0, "symbol": symbol, "amount": json::s(amount)})
        })
        .collect();
    let (nonce, next_nonce) = node.nonces(&who).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "address": json::addr(&who),
        "nonce": nonce,
        "next_nonce": next_nonce,
        "balances": balances,
    })))
}

fn asset_json(id: u64, a: &Asset) -> Value {
    json!({
        "id": id,
        "symbol": a.symbol.as_str(),
        "decimals": a.decimals,
        "max_supply": a.max_supply.map(json::s),
        "issuer": a.issuer.as_ref().map(json::addr),
        "supply": json::s(a.supply),
    })
}

async fn assets(State(node): State<Arc<Node>>, Query(page): Query<Page>) -> ApiResult {
    let r = reader(&node)?;
    let after = page.after(|a| a.parse().ok().map(AssetId))?;
    Ok(page_json(
        view::assets(&r, after, page.limit()),
        |(id, _)| id.0.to_string(),
        |(id, a)| asset_json(id.0, a),
    ))
}

async fn asset(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let a = view::asset(&r, AssetId(id)).ok_or_else(|| ApiError::not_found("asset"))?;
    Ok(Json(asset_json(id, &a)))
}

async fn societies(State(node): State<Arc<Node>>, Query(page): Query<Page>) -> ApiResult {
    let r = reader(&node)?;
    let now = node.head().time_ms;
    let after = page.after(|a| a.parse().ok().map(SocietyId))?;
    Ok(page_json(
        view::societies(&r, after, page.limit()),
        |(id, _, _)| id.0.to_string(),
        |(id, meta, book)| json::society(id.0, meta, book, now),
    ))
}

async fn society(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let (meta, book) =
        view::society(&r, SocietyId(id)).ok_or_else(|| ApiError::not_found("society"))?;
    Ok(Json(json::society(id, &meta, &book, node.head().time_ms)))
}

/// Most points in a society's history.
pub const HISTORY_POINTS_MAX: u64 = 60;

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    points: Option<u64>,
}

/// The society's book sampled at up to `points` heights, evenly from the block that created it to
/// the head: gift funds, members and request counts over time, read from the versioned state.
async fn history(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult {
    let r = reader(&node)?;
    let (meta, _) =
        view::society(&r, SocietyId(id)).ok_or_else(|| ApiError::not_found("society"))?;
    let db = node.db();
    let time_at = |h: u64| -> Result<u64, ApiError> {
        Ok(db
            .header(h)
            .map_err(ApiError::internal)?
            .map_or(0, |hd| hd.timestamp_ms))
    };
    // The creating block is the first whose time reaches the society's creation time.
    let head = node.head().height;
    let (mut lo, mut hi) = (0, head);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if time_at(mid)? < meta.created_ms {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let points = q.points.unwrap_or(30).clamp(2, HISTORY_POINTS_MAX);
    let span = head - lo;
    let mut heights: Vec<u64> = (0..points).map(|i| lo + span * i / (points - 1)).collect();
    heights.dedup();
    let books = view::books_at(&**db, SocietyId(id), &heights).map_err(ApiError::internal)?;
    let mut items = Vec::with_capacity(heights.len());
    for (h, book) in heights.into_iter().zip(books) {
        let Some(book) = book else { continue };
        items.push(json!({
            "height": h,
            "time_ms": time_at(h)?,
            "gift_funds": json::s(book.pool.total),
            "member_count": book.member_count,
            "requests_approved": book.stats.requests_approved,
            "requests_rejected": book.stats.requests_rejected,
            "paid": json::s(book.stats.paid_by_shares + book.stats.paid_by_gifts),
        }));
    }
    Ok(Json(json!({"items": items})))
}

async fn members(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(page): Query<Page>,
) -> ApiResult {
    let r = reader(&node)?;
    let after = page.after(|a| a.parse::<Address>().ok())?;
    let members = view::members(
        &r,
        SocietyId(id),
        after.as_ref(),
        page.limit(),
        node.head().time_ms,
    )
    .ok_or_else(|| ApiError::not_found("society"))?;
    Ok(page_json(
        members,
        |(who, _)| who.to_bech32(),
        |(who, m)| json::member(id, who, m),
    ))
}

async fn member(
    State(node): State<Arc<Node>>,
    Path((id, address)): Path<(u64, String)>,
) -> ApiResult {
    let who = parse_address(&address)?;
    let r = reader(&node)?;
    let m = view::member(&r, SocietyId(id), &who, node.head().time_ms)
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(json::member(id, &who, &m)))
}

async fn society_requests(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(page): Query<Page>,
) -> ApiResult {
    let r = reader(&node)?;
    let (meta, _) =
        view::society(&r, SocietyId(id)).ok_or_else(|| ApiError::not_found("society"))?;
    let now_period = meta.period_at(node.head().time_ms);
    let before = page.after(|a| a.parse().ok().map(RequestId))?;
    let requests = view::requests(&r, SocietyId(id), before, page.limit())
        .ok_or_else(|| ApiError::not_found("society"))?;
    Ok(page_json(
        requests,
        |(rid, _)| rid.0.to_string(),
        |(rid, req)| json::request(rid.0, req, now_period),
    ))
}

async fn request(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let req = view::request(&r, RequestId(id)).ok_or_else(|| ApiError::not_found("request"))?;
    let (meta, _) = view::society(&r, req.ballot.society).expect("requests belong to societies");
    Ok(Json(json::request(
        id,
        &req,
        meta.period_at(node.head().time_ms),
    )))
}

async fn votes(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(page): Query<Page>,
) -> ApiResult {
    let r = reader(&node)?;
    let after = page.after(|a| a.parse::<Address>().ok())?;
    let votes = view::votes(&r, RequestId(id), after.as_ref(), page.limit())
        .ok_or_else(|| ApiError::not_found("request"))?;
    Ok(page_json(
        votes,
        |(voter, _)| voter.to_bech32(),
        |(voter, vote)| json!({"voter": json::addr(voter), "approve": vote.approve, "percent": vote.percent, "weight": json::karma(vote.weight)}),
    ))
}

async fn amendment(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let a = view::amendment(&r, AmendmentId(id)).ok_or_else(|| ApiError::not_found("amendment"))?;
    Ok(Json(json::amendment(id, &a)))
}

fn block_json(b: &kassa_types::Block) -> Value {
    json!({
        "height": b.header.height,
        "hash": json::hash(&b.header.hash()),
        "parent": json::hash(&b.header.parent),
        "timestamp_ms": b.header.timestamp_ms,
        "proposer": json::addr(&b.header.proposer),
        "tx_root": json::hash(&b.header.tx_root),
        "state_root": json::hash(&b.header.state_root),
        "txs": b.txs.iter().map(|t| json!({
            "hash": json::hash(&t.hash()),
            "signer": json::addr(&t.tx.signer),
            "nonce": t.tx.nonce,
            "kind": t.tx.body.kind(),
        })).collect::<Vec<_>>(),
    })
}

async fn block(State(node): State<Arc<Node>>, Path(height): Path<u64>) -> ApiResult {
    let b = node
        .db()
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("block"))?;
    Ok(Json(block_json(&b)))
}

/// The block's canonical bytes (hex), for auditors that replay the chain.
async fn block_raw(State(node): State<Arc<Node>>, Path(height): Path<u64>) -> ApiResult {
    let b = node
        .db()
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("block"))?;
    Ok(Json(
        json!({"height": height, "hex": hex::encode(b.encode())}),
    ))
}

/// The first finalization certificate at or above `height`: what a follower checks the blocks
/// it syncs against.
async fn finality(State(node): State<Arc<Node>>, Path(height): Path<u64>) -> ApiResult {
    let f = node
        .finality(height)
        .await
        .ok_or_else(|| ApiError::not_found("finalization certificate"))?;
    Ok(Json(json!({
        "height": f.height,
        "block": json::hash(&f.block),
        "certificate": hex::encode(f.certificate),
    })))
}

#[derive(Debug, Deserialize)]
struct BlocksQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn blocks(State(node): State<Arc<Node>>, Query(q): Query<BlocksQuery>) -> ApiResult {
    let top = q
        .before
        .map_or(node.head().height, |b| b.saturating_sub(1))
        .min(node.head().height);
    let limit = u64::try_from(q.limit.unwrap_or(20).min(PAGE_MAX)).expect("small");
    let mut items = Vec::new();
    for h in (top.saturating_sub(limit.saturating_sub(1))..=top).rev() {
        if let Some(b) = node.db().block(h).map_err(ApiError::internal)? {
            items.push(block_json(&b));
        }
    }
    Ok(Json(json!({"items": items})))
}

#[derive(Debug, Deserialize)]
struct ProofQuery {
    height: Option<u64>,
}

/// A value and its Merkle proof at a height. The proof is the Borsh encoding of a `jmt`
/// `SparseMerkleProof<Sha256>` for the key hash `sha256(key)`.
async fn proof(
    State(node): State<Arc<Node>>,
    Path(key): Path<String>,
    Query(q): Query<ProofQuery>,
) -> ApiResult {
    let key =
        hex::decode(&key).map_err(|_| ApiError::bad("bad_key", "the state key is not hex"))?;
    if key.is_empty() || key.len() > 256 {
        return Err(ApiError::bad("bad_key", "a state key is 1 to 256 bytes"));
    }
    let head = node.head();
    let height = q.height.unwrap_or(head.height);
    if height > head.height {
        return Err(ApiError::not_found("height"));
    }
    let (value, proof) = node.db().prove(&key, height).map_err(ApiError::internal)?;
    let root = node.db().root_at(height).map_err(ApiError::internal)?;
    let block = node.db().block(height).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "key": hex::encode(&key),
        "height": height,
        "state_root": json::hash(&root),
        "block_hash": block.map(|b| json::hash(&b.header.hash())),
        "value": value.map(hex::encode),
        "proof": hex::encode(kassa_db::encode_proof(&proof)),
    })))
}

async fn events(
    State(node): State<Arc<Node>>,
) -> Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>> {
    use tokio_stream::StreamExt;
    let stream =
        tokio_stream::wrappers::BroadcastStream::new(node.subscribe()).filter_map(|item| {
            let f = item.ok()?;
            let data = json!({
                "height": f.head.height,
                "block_hash": json::hash(&f.head.block_hash),
                "state_root": json::hash(&f.head.state_root),
                "time_ms": f.head.time_ms,
                "txs": f.receipts.iter().map(|(_, r)| json::receipt(r)).collect::<Vec<_>>(),
            });
            Some(Ok(SseEvent::default()
                .event("block")
                .data(data.to_string())))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Debug, Deserialize)]
struct FaucetBody {
    address: String,
}

async fn faucet(State(node): State<Arc<Node>>, body: Json<FaucetBody>) -> ApiResult {
    let to = parse_address(&body.address)?;
    match node.drip(to) {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_faucet",
            "this chain has no faucet (only --dev chains do)",
        )),
        Some(r) => Ok(Json(json!({"hash": json::hash(&r?), "status": "pending"}))),
    }
}

async fn genesis(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    match node.genesis_json() {
        Some(g) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], g.to_string()).into_response())
        }
        None => Err(ApiError::not_found("genesis file")),
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let head = node.head();
    let m = node.metrics();
    let body = format!(
        "# HELP kassa_height Height of the last finalized block.\n# TYPE kassa_height gauge\nkassa_height {}\n\
         # HELP kassa_txs_total Transactions included in finalized blocks.\n# TYPE kassa_txs_total counter\nkassa_txs_total {}\n\
         # HELP kassa_mempool_size Transactions waiting.\n# TYPE kassa_mempool_size gauge\nkassa_mempool_size {}\n\
         # HELP kassa_block_interval_ms Block time between the last two finalized blocks.\n# TYPE kassa_block_interval_ms gauge\nkassa_block_interval_ms {}\n\
         # HELP kassa_finalization_latency_ms Wall time from proposing to finalizing the last block this node proposed.\n# TYPE kassa_finalization_latency_ms gauge\nkassa_finalization_latency_ms {}\n\
         # HELP kassa_apply_ms Wall time to commit the last finalized block.\n# TYPE kassa_apply_ms gauge\nkassa_apply_ms {}\n",
        head.height,
        m.txs_total,
        node.mempool_len(),
        m.block_interval_ms,
        m.finalization_latency_ms,
        m.apply_ms,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Decodes a proof returned by `/api/v1/proofs`.
pub fn decode_proof(hex_proof: &str) -> Option<kassa_db::Proof> {
    kassa_db::decode_proof(&hex::decode(hex_proof).ok()?)
}
