//! The chain itself: status, submitting and looking up transactions, blocks with their
//! finalization certificates, state proofs, and the event stream of finalized blocks.

use super::{ApiError, ApiResult, PAGE_MAX, WAIT_MAX};
use crate::guard::{Client, Cost, Guard};
use crate::wire::{self, Hex};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures::Stream;
use kassa_node::{AdmitError, Node};
use std::sync::Arc;

/// Chain id, genesis hash and protocol version (what a transaction is signed for), then height,
/// state root, block hash and block time of the last finalized block, minimum fee, mempool size,
/// and whether a faucet is served.
#[utoipa::path(get, path = "/api/v1/status", tag = "chain",
    responses((status = 200, body = wire::Status, description = "the status")))]
pub(super) async fn status(State(node): State<Arc<Node>>) -> ApiResult<wire::Status> {
    let head = node.head();
    Ok(Json(wire::Status {
        chain_id: node.params().chain_id.to_string(),
        genesis_hash: Hex(node.params().genesis_hash),
        protocol_version: kassa_types::PROTOCOL_VERSION,
        height: head.height,
        block_hash: Hex(head.block_hash),
        state_root: Hex(head.state_root),
        time_ms: head.time_ms,
        min_fee: node.params().min_fee.into(),
        mempool_size: u64::try_from(node.mempool_len()).unwrap_or(u64::MAX),
        faucet: node.has_faucet(),
        pruned_below: node.db().pruned_below().map_err(ApiError::db)?,
    }))
}

/// Submit a signed transaction (canonical bytes, hex). With `wait=true`, wait up to 30 s for
/// finalization and answer the receipt; otherwise (or on time-out) answer `pending`.
#[utoipa::path(post, path = "/api/v1/txs", tag = "chain", params(wire::WaitQuery),
    request_body = wire::SubmitBody, responses((status = 200, body = wire::Tx, description = "the transaction")))]
pub(super) async fn submit(
    State(node): State<Arc<Node>>,
    Query(q): Query<wire::WaitQuery>,
    body: Json<wire::SubmitBody>,
) -> ApiResult<wire::Tx> {
    let stx = decode_submitted(&body.tx)?;
    let hash = node
        .submit(vec![stx])
        .map_err(ApiError::internal)?
        .pop()
        .expect("one result per transaction")?;
    let pending = wire::Tx::Pending { hash: Hex(hash) };
    if !q.wait {
        return Ok(Json(pending));
    }
    let mut head = node.watch_head();
    let deadline = tokio::time::Instant::now() + WAIT_MAX;
    loop {
        if let Some(rec) = node.db().tx(&hash).map_err(ApiError::internal)? {
            return Ok(Json(included(&rec)));
        }
        match tokio::time::timeout_at(deadline, head.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(Json(pending)),
        }
    }
}

/// Decodes a submitted transaction's hex; a refusal is `400` with the rejection's number.
fn decode_submitted(hex_tx: &str) -> Result<kassa_types::SignedTransaction, ApiError> {
    let bytes = hex::decode(hex_tx.trim())
        .map_err(|_| ApiError::bad("malformed", "the transaction is not hex"))?;
    kassa_state::decode_tx(&bytes).map_err(|r| {
        let mut e = ApiError::from(AdmitError::Rejected(r));
        e.status = StatusCode::BAD_REQUEST;
        e
    })
}

/// Submit up to 1,000 signed transactions (`api.batch_max`) in one request: one result per
/// transaction, in order, each `pending` or `refused` with the code and number
/// `POST /api/v1/txs` would answer. The signatures are checked as one batch. Each transaction,
/// or each 512 bytes of the body if that is more, counts against the client's submission rate,
/// the bytes before the body is read (so the request must have a Content-Length).
#[utoipa::path(post, path = "/api/v1/txs/batch", tag = "chain", request_body = wire::BatchBody,
    responses((status = 200, body = wire::BatchResults, description = "one result per transaction")))]
pub(super) async fn submit_batch(
    State(node): State<Arc<Node>>,
    Extension(guard): Extension<Arc<Guard>>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
    body: Json<wire::BatchBody>,
) -> ApiResult<wire::BatchResults> {
    let n = body.txs.len();
    if n > guard.limits.batch_max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "a batch holds at most {} transactions",
                guard.limits.batch_max
            ),
        ));
    }
    // The request was charged by its length on the way in; now the rest of its transactions.
    let upfront = crate::guard::content_length(&headers).map_or(1, crate::guard::batch_upfront);
    let more = u32::try_from(n).unwrap_or(u32::MAX).saturating_sub(upfront);
    guard.charge(client.map(|c| c.0), Cost::Submit(more))?;
    let mut results: Vec<Option<wire::Submitted>> = vec![None; n];
    let mut valid = Vec::with_capacity(n);
    let mut slots = Vec::with_capacity(n);
    for (i, hex_tx) in body.txs.iter().enumerate() {
        match decode_submitted(hex_tx) {
            Ok(stx) => {
                valid.push(stx);
                slots.push(i);
            }
            Err(e) => results[i] = Some(wire::Submitted::Refused { error: e.info() }),
        }
    }
    let admitted = node.submit(valid).map_err(ApiError::internal)?;
    for (i, r) in slots.into_iter().zip(admitted) {
        results[i] = Some(match r {
            Ok(hash) => wire::Submitted::Pending { hash: Hex(hash) },
            Err(e) => wire::Submitted::Refused {
                error: ApiError::from(e).info(),
            },
        });
    }
    Ok(Json(wire::BatchResults {
        results: results
            .into_iter()
            .map(|r| r.expect("every transaction has a result"))
            .collect(),
    }))
}

fn included(rec: &kassa_db::TxRecord) -> wire::Tx {
    wire::Tx::included(&rec.receipt, rec.height, rec.index)
}

/// A transaction: pending, or its receipt in a finalized block.
#[utoipa::path(get, path = "/api/v1/txs/{hash}", tag = "chain",
    params(("hash" = String, Path, description = "64 hex digits")),
    responses((status = 200, body = wire::Tx, description = "the transaction")))]
pub(super) async fn tx(
    State(node): State<Arc<Node>>,
    Path(hash): Path<String>,
) -> ApiResult<wire::Tx> {
    let hash = wire::parse_hash(&hash)
        .ok_or_else(|| ApiError::bad("bad_hash", "expected 64 hex digits"))?;
    // Look in the mempool first: finalization commits a transaction's receipt before removing it
    // from the mempool, so in this order a transaction is always found in one of the two.
    let waiting = node.is_waiting(&hash);
    match node.db().tx(&hash).map_err(ApiError::internal)? {
        Some(rec) => Ok(Json(included(&rec))),
        None if waiting => Ok(Json(wire::Tx::Pending { hash: Hex(hash) })),
        None => Err(ApiError::not_found("transaction")),
    }
}

fn stored_block(node: &Node, height: u64) -> Result<kassa_types::Block, ApiError> {
    node.db()
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("block"))
}

/// A finalized block.
#[utoipa::path(get, path = "/api/v1/blocks/{height}", tag = "chain",
    params(("height" = u64, Path)), responses((status = 200, body = wire::Block, description = "the block")))]
pub(super) async fn block(
    State(node): State<Arc<Node>>,
    Path(height): Path<u64>,
) -> ApiResult<wire::Block> {
    Ok(Json(wire::Block::from(&stored_block(&node, height)?)))
}

/// The block's canonical bytes, for followers and auditors that replay the chain: the bytes
/// themselves with `Accept: application/octet-stream` (what they use: no hex, and a limit that is
/// the consensus block-size limit), else hex in JSON.
#[utoipa::path(get, path = "/api/v1/blocks/{height}/raw", tag = "chain",
    params(("height" = u64, Path)), responses((status = 200, description = "the block's bytes",
        content((wire::RawBlock = "application/json"), (Vec<u8> = "application/octet-stream")))))]
pub(super) async fn block_raw(
    State(node): State<Arc<Node>>,
    Path(height): Path<u64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bytes = node
        .db()
        .block_bytes(height)
        .map_err(ApiError::db)?
        .ok_or_else(|| ApiError::not_found("block"))?;
    let binary = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(OCTET_STREAM));
    if binary {
        return Ok(([(header::CONTENT_TYPE, OCTET_STREAM)], bytes).into_response());
    }
    Ok(Json(wire::RawBlock {
        height,
        hex: hex::encode(bytes),
    })
    .into_response())
}

/// The media type of a block's bytes.
const OCTET_STREAM: &str = "application/octet-stream";

/// The first finalization certificate at or above `height`: what a follower checks the blocks
/// it syncs against.
#[utoipa::path(get, path = "/api/v1/blocks/{height}/finality", tag = "chain",
    params(("height" = u64, Path)), responses((status = 200, body = wire::Finality, description = "the certificate")))]
pub(super) async fn finality(
    State(node): State<Arc<Node>>,
    Path(height): Path<u64>,
) -> ApiResult<wire::Finality> {
    let f = node
        .finality(height)
        .await
        .ok_or_else(|| ApiError::not_found("finalization certificate"))?;
    Ok(Json(wire::Finality {
        height: f.height,
        block: Hex(f.block),
        header: hex::encode(f.header),
        certificate: hex::encode(f.certificate),
    }))
}

/// The newest finalized blocks (or those below `before`), newest first.
#[utoipa::path(get, path = "/api/v1/blocks", tag = "chain", params(wire::BlocksQuery),
    responses((status = 200, body = wire::Blocks, description = "the blocks")))]
pub(super) async fn blocks(
    State(node): State<Arc<Node>>,
    Query(q): Query<wire::BlocksQuery>,
) -> ApiResult<wire::Blocks> {
    let top = q
        .before
        .map_or(node.head().height, |b| b.saturating_sub(1))
        .min(node.head().height);
    let limit = u64::try_from(q.limit.unwrap_or(20).min(PAGE_MAX)).expect("small");
    let mut items = Vec::new();
    for h in (top.saturating_sub(limit.saturating_sub(1))..=top).rev() {
        if let Some(b) = node.db().block(h).map_err(ApiError::internal)? {
            items.push(wire::Block::from(&b));
        }
    }
    Ok(Json(wire::Blocks { items }))
}

/// A state key from its hex, 1 to 256 bytes.
fn state_key(hex_key: &str) -> Result<Vec<u8>, ApiError> {
    let key =
        hex::decode(hex_key).map_err(|_| ApiError::bad("bad_key", "the state key is not hex"))?;
    if key.is_empty() || key.len() > 256 {
        return Err(ApiError::bad("bad_key", "a state key is 1 to 256 bytes"));
    }
    Ok(key)
}

/// Proves `keys` at the current state, all at one height.
async fn prove(node: Arc<Node>, keys: Vec<Vec<u8>>) -> ApiResult<wire::Proofs> {
    let n = node.clone();
    let proven = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        Ok::<_, kassa_db::DbError>((n.db().prove_many(&refs)?, keys))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::db)?;
    let (proven, keys) = proven;
    let Some(first) = proven.first() else {
        return Err(ApiError::bad("bad_key", "no key to prove"));
    };
    let (Some(height), root) = (first.height, first.root) else {
        return Err(ApiError::not_found("height"));
    };
    // The commitment takes a block a moment before the node serves it: answer once it does,
    // so that the block's certificate and header can be asked for.
    let mut head = node.watch_head();
    let served = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        head.wait_for(|h| h.height >= height),
    )
    .await;
    if !matches!(served, Ok(Ok(_))) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_served_yet",
            format!("the state proven at height {height} is not served yet; ask again"),
        )
        .retry_after(1));
    }
    let header = node.db().header(height).map_err(ApiError::db)?;
    let block_hash = header.map(|h| Hex(h.hash()));
    let items = keys
        .iter()
        .zip(proven)
        .map(|(key, p)| {
            let (kind, bytes) = match p.proof {
                kassa_db::KeyProof::Present(b) => ("present", b),
                kassa_db::KeyProof::Absent(b) => ("absent", b),
            };
            wire::Proof {
                key: hex::encode(key),
                height,
                state_root: Hex(root),
                block_hash,
                value: p.value.map(hex::encode),
                kind: kind.into(),
                proof: hex::encode(bytes),
            }
        })
        .collect();
    Ok(Json(wire::Proofs {
        height,
        state_root: Hex(root),
        block_hash,
        items,
    }))
}

/// A state value and its proof, at the current state.
#[utoipa::path(get, path = "/api/v1/proofs/{key}", tag = "chain",
    params(("key" = String, Path, description = "the state key, hex")),
    responses((status = 200, body = wire::Proof, description = "the value and its proof"),
        (status = 503, body = wire::ErrorBody,
            description = "`not_served_yet`: the proven height is not served within 5 s")))]
pub(super) async fn proof(
    State(node): State<Arc<Node>>,
    Path(key): Path<String>,
) -> ApiResult<wire::Proof> {
    let key = state_key(&key)?;
    let Json(mut proofs) = prove(node, vec![key]).await?;
    Ok(Json(proofs.items.remove(0)))
}

/// Several state values and their proofs, all at the current state (one height, one root).
#[utoipa::path(get, path = "/api/v1/proofs", tag = "chain",
    params(wire::ProofsQuery),
    responses((status = 200, body = wire::Proofs, description = "the values and their proofs"),
        (status = 503, body = wire::ErrorBody,
            description = "`not_served_yet`: the proven height is not served within 5 s")))]
pub(super) async fn proofs(
    State(node): State<Arc<Node>>,
    Query(q): Query<wire::ProofsQuery>,
) -> ApiResult<wire::Proofs> {
    let keys = q
        .keys
        .split(',')
        .map(state_key)
        .collect::<Result<Vec<_>, _>>()?;
    if keys.len() > wire::PROOF_KEYS_MAX {
        return Err(ApiError::bad(
            "too_many_keys",
            format!("at most {} keys at once", wire::PROOF_KEYS_MAX),
        ));
    }
    prove(node, keys).await
}

/// The heights this node offers to sync the state from, with what its state's commitment was
/// after each: the Borsh encoding of `Vec<(u64, kassa_db::Committed)>` (docs/protocol.md,
/// "State sync").
#[utoipa::path(get, path = "/api/v1/sync/offers", tag = "chain",
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>,
        description = "the offers")))]
pub(super) async fn sync_offers(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let offers = tokio::task::spawn_blocking(move || node.db().offers())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::db)?;
    let bytes = borsh::to_vec(&offers).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, OCTET_STREAM)], bytes).into_response())
}

/// This node's answer to a request of state sync (the body: its bytes, at most 64), for an
/// offered height: qmdb's encoding of a range of the state's operations with its proof, or of
/// the pinned nodes at the range's start (docs/protocol.md, "State sync"). `400 bad_request`
/// for a malformed request or one of a height no longer offered.
#[utoipa::path(post, path = "/api/v1/sync", tag = "chain",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>,
        description = "the answer")))]
pub(super) async fn sync(
    State(node): State<Arc<Node>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if body.len() > 64 {
        return Err(ApiError::bad(
            "bad_request",
            "a request of state sync is at most 64 bytes",
        ));
    }
    let answer = tokio::task::spawn_blocking(move || node.db().serve_sync(&body))
        .await
        .map_err(ApiError::internal)?;
    match answer {
        Ok(bytes) => Ok(([(header::CONTENT_TYPE, OCTET_STREAM)], bytes).into_response()),
        Err(kassa_db::DbError::Commitment(e)) => Err(ApiError::bad("bad_request", e.to_string())),
        Err(e) => Err(ApiError::db(e)),
    }
}

/// Server-sent events: each finalized block (event `block`) with every transaction's receipt.
/// A client that falls more than 256 blocks behind gets a last event `close` (`StreamClosed`,
/// reason `lagged`) and the stream ends; one that stops reading is dropped. At most 256 streams
/// are open at once (`api.event_streams`); beyond, `503 too_many_streams`.
#[utoipa::path(get, path = "/api/v1/events", tag = "chain",
    responses((status = 200, content_type = "text/event-stream", body = wire::Finalized,
        description = "a stream of `block` events, each a `Finalized` as JSON, possibly ended by \
            a `close` event, a `StreamClosed`")))]
pub(super) async fn events(
    State(node): State<Arc<Node>>,
    Extension(guard): Extension<Arc<Guard>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>>, ApiError> {
    use tokio::sync::broadcast::error::RecvError;
    let slot = guard.stream_slot().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "the node serves at most {} event streams at once",
                guard.limits.event_streams
            ),
        )
    })?;
    // The stream holds its slot until it ends or its client goes.
    let stream = futures::stream::unfold(
        (node.subscribe(), Some(slot)),
        |(mut blocks, slot)| async move {
            let slot = slot?;
            match blocks.recv().await {
                Ok(f) => Some((Ok(block_event(&f)), (blocks, Some(slot)))),
                Err(RecvError::Lagged(missed)) => {
                    let closed = wire::StreamClosed {
                        reason: "lagged".into(),
                        message: format!(
                            "this stream fell behind and missed {missed} blocks; reconnect and \
                             catch up from /api/v1/blocks"
                        ),
                    };
                    let json = serde_json::to_string(&closed).expect("wire types serialize");
                    Some((
                        Ok(SseEvent::default().event("close").data(json)),
                        (blocks, None),
                    ))
                }
                Err(RecvError::Closed) => None,
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn block_event(f: &kassa_node::Finalized) -> SseEvent {
    let height = f.head.height;
    let data = wire::Finalized {
        height,
        block_hash: Hex(f.head.block_hash),
        state_root: Hex(f.head.state_root),
        time_ms: f.head.time_ms,
        txs: (0u32..)
            .zip(&f.receipts)
            .map(|(index, (_, r))| wire::Tx::included(r, height, index))
            .collect(),
    };
    let json = serde_json::to_string(&data).expect("wire types serialize");
    SseEvent::default().event("block").data(json)
}
