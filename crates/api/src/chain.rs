//! The chain itself: status, submitting and looking up transactions, blocks with their
//! finalization certificates, state proofs, and the event stream of finalized blocks.

use super::{ApiError, ApiResult, PAGE_MAX, WAIT_MAX, parse_hash};
// The `json` module of this crate and `serde_json::json!`, imported together in the crate root.
use super::json;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use kassa_node::{AdmitError, Node};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

pub(super) async fn status(State(node): State<Arc<Node>>) -> ApiResult {
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
pub(super) struct SubmitBody {
    /// The canonical signed transaction, hex.
    tx: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaitQuery {
    #[serde(default)]
    wait: bool,
}

pub(super) async fn submit(
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

pub(super) fn tx_json(rec: &kassa_db::TxRecord) -> Value {
    let mut v = json::receipt(&rec.receipt);
    v["height"] = json!(rec.height);
    v["index"] = json!(rec.index);
    v
}

pub(super) async fn tx(State(node): State<Arc<Node>>, Path(hash): Path<String>) -> ApiResult {
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

pub(super) fn block_json(b: &kassa_types::Block) -> Value {
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

pub(super) async fn block(State(node): State<Arc<Node>>, Path(height): Path<u64>) -> ApiResult {
    let b = node
        .db()
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("block"))?;
    Ok(Json(block_json(&b)))
}

/// The block's canonical bytes (hex), for auditors that replay the chain.
pub(super) async fn block_raw(State(node): State<Arc<Node>>, Path(height): Path<u64>) -> ApiResult {
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
pub(super) async fn finality(State(node): State<Arc<Node>>, Path(height): Path<u64>) -> ApiResult {
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
pub(super) struct BlocksQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn blocks(
    State(node): State<Arc<Node>>,
    Query(q): Query<BlocksQuery>,
) -> ApiResult {
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
pub(super) struct ProofQuery {
    height: Option<u64>,
}

/// A value and its Merkle proof at a height. The proof is the Borsh encoding of a `jmt`
/// `SparseMerkleProof<Sha256>` for the key hash `sha256(key)`.
pub(super) async fn proof(
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

pub(super) async fn events(
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
