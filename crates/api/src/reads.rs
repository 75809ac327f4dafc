//! The state read through `kassa_state::view`: accounts, assets, societies and their history,
//! members, requests, votes, amendments.

use super::{ApiError, ApiResult, PAGE_MAX, Page, page_json, parse_address, reader};
// The `json` module of this crate and `serde_json::json!`, imported together in the crate root.
use super::json;
use axum::Json;
use axum::extract::{Path, Query, State};
use kassa_node::Node;
use kassa_state::records::Asset;
use kassa_state::view;
use kassa_types::{Address, AmendmentId, AssetId, RequestId, SocietyId};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

pub(super) async fn account(
    State(node): State<Arc<Node>>,
    Path(address): Path<String>,
) -> ApiResult {
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

pub(super) fn asset_json(id: u64, a: &Asset) -> Value {
    json!({
        "id": id,
        "symbol": a.symbol.as_str(),
        "decimals": a.decimals,
        "max_supply": a.max_supply.map(json::s),
        "issuer": a.issuer.as_ref().map(json::addr),
        "supply": json::s(a.supply),
    })
}

pub(super) async fn assets(State(node): State<Arc<Node>>, Query(page): Query<Page>) -> ApiResult {
    let r = reader(&node)?;
    let after = page.after(|a| a.parse().ok().map(AssetId))?;
    Ok(page_json(
        view::assets(&r, after, page.limit()),
        |(id, _)| id.0.to_string(),
        |(id, a)| asset_json(id.0, a),
    ))
}

pub(super) async fn asset(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let a = view::asset(&r, AssetId(id)).ok_or_else(|| ApiError::not_found("asset"))?;
    Ok(Json(asset_json(id, &a)))
}

pub(super) async fn societies(
    State(node): State<Arc<Node>>,
    Query(page): Query<Page>,
) -> ApiResult {
    let r = reader(&node)?;
    let now = node.head().time_ms;
    let after = page.after(|a| a.parse().ok().map(SocietyId))?;
    Ok(page_json(
        view::societies(&r, after, page.limit()),
        |(id, _, _)| id.0.to_string(),
        |(id, meta, book)| json::society(id.0, meta, book, now),
    ))
}

pub(super) async fn society(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let (meta, book) =
        view::society(&r, SocietyId(id)).ok_or_else(|| ApiError::not_found("society"))?;
    Ok(Json(json::society(id, &meta, &book, node.head().time_ms)))
}

/// Most points in a society's history.
pub const HISTORY_POINTS_MAX: u64 = 60;

#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    points: Option<u64>,
}

/// The society's book sampled at up to `points` heights, evenly from the block that created it to
/// the head: gift funds, members and request counts over time, read from the versioned state.
pub(super) async fn history(
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

pub(super) async fn members(
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

pub(super) async fn member(
    State(node): State<Arc<Node>>,
    Path((id, address)): Path<(u64, String)>,
) -> ApiResult {
    let who = parse_address(&address)?;
    let r = reader(&node)?;
    let m = view::member(&r, SocietyId(id), &who, node.head().time_ms)
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(json::member(id, &who, &m)))
}

pub(super) async fn society_requests(
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

pub(super) async fn request(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let req = view::request(&r, RequestId(id)).ok_or_else(|| ApiError::not_found("request"))?;
    let (meta, _) = view::society(&r, req.ballot.society).expect("requests belong to societies");
    Ok(Json(json::request(
        id,
        &req,
        meta.period_at(node.head().time_ms),
    )))
}

pub(super) async fn votes(
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

pub(super) async fn amendment(State(node): State<Arc<Node>>, Path(id): Path<u64>) -> ApiResult {
    let r = reader(&node)?;
    let a = view::amendment(&r, AmendmentId(id)).ok_or_else(|| ApiError::not_found("amendment"))?;
    Ok(Json(json::amendment(id, &a)))
}
