//! The state read through `kassa_state::view`: accounts, assets, societies and their history,
//! members, requests, votes, amendments.

use super::{ApiError, ApiResult, PAGE_MAX, page, parse_address, reader};
use crate::wire::{self, PageQuery};
use axum::Json;
use axum::extract::{Path, Query, State};
use kassa_node::Node;
use kassa_state::view;
use kassa_types::{Address, AmendmentId, AssetId, RequestId, SocietyId};
use std::sync::Arc;

/// An account's nonces and balances.
#[utoipa::path(get, path = "/api/v1/accounts/{address}", tag = "state",
    params(("address" = String, Path, description = "bech32 address")),
    responses((status = 200, body = wire::Account, description = "the account")))]
pub(super) async fn account(
    State(node): State<Arc<Node>>,
    Path(address): Path<String>,
) -> ApiResult<wire::Account> {
    let who = parse_address(&address)?;
    let r = reader(&node)?;
    let balances = view::account(&r, &who, PAGE_MAX)
        .balances
        .into_iter()
        .map(|(asset, amount)| wire::Balance {
            asset: asset.0,
            symbol: view::asset(&r, asset).map(|a| a.symbol.to_string()),
            amount: amount.into(),
        })
        .collect();
    let (nonce, next_nonce) = node.nonces(&who).map_err(ApiError::internal)?;
    Ok(Json(wire::Account {
        address: wire::Addr(who),
        nonce,
        next_nonce,
        balances,
    }))
}

/// The assets, by id.
#[utoipa::path(get, path = "/api/v1/assets", tag = "state", params(PageQuery),
    responses((status = 200, body = wire::Page<wire::Asset>, description = "a page of assets")))]
pub(super) async fn assets(
    State(node): State<Arc<Node>>,
    Query(q): Query<PageQuery>,
) -> ApiResult<wire::Page<wire::Asset>> {
    let r = reader(&node)?;
    let after = page::after(&q, |a| a.parse().ok().map(AssetId))?;
    Ok(page::answer(
        view::assets(&r, after, page::limit(&q)),
        |(id, _)| id.0.to_string(),
        |(id, a)| wire::Asset::new(id.0, a),
    ))
}

/// One asset.
#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "state",
    params(("id" = u64, Path)), responses((status = 200, body = wire::Asset, description = "the asset")))]
pub(super) async fn asset(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
) -> ApiResult<wire::Asset> {
    let r = reader(&node)?;
    let a = view::asset(&r, AssetId(id)).ok_or_else(|| ApiError::not_found("asset"))?;
    Ok(Json(wire::Asset::new(id, &a)))
}

/// The societies, by id, with their books.
#[utoipa::path(get, path = "/api/v1/societies", tag = "state", params(PageQuery),
    responses((status = 200, body = wire::Page<wire::Society>, description = "a page of societies")))]
pub(super) async fn societies(
    State(node): State<Arc<Node>>,
    Query(q): Query<PageQuery>,
) -> ApiResult<wire::Page<wire::Society>> {
    let r = reader(&node)?;
    let now = node.head().time_ms;
    let after = page::after(&q, |a| a.parse().ok().map(SocietyId))?;
    Ok(page::answer(
        view::societies(&r, after, page::limit(&q)),
        |(id, _, _)| id.0.to_string(),
        |(id, meta, book)| wire::Society::new(id.0, meta, book, now),
    ))
}

/// One society: its rules and books.
#[utoipa::path(get, path = "/api/v1/societies/{id}", tag = "state",
    params(("id" = u64, Path)), responses((status = 200, body = wire::Society, description = "the society")))]
pub(super) async fn society(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
) -> ApiResult<wire::Society> {
    let r = reader(&node)?;
    let (meta, book) =
        view::society(&r, SocietyId(id)).ok_or_else(|| ApiError::not_found("society"))?;
    Ok(Json(wire::Society::new(
        id,
        &meta,
        &book,
        node.head().time_ms,
    )))
}

/// Most points in a society's history.
pub const HISTORY_POINTS_MAX: u64 = 60;

/// The society's book sampled at up to `points` heights, evenly from the block that created it to
/// the head: gift funds, members and request counts over time, read from the versioned state.
#[utoipa::path(get, path = "/api/v1/societies/{id}/history", tag = "state",
    params(("id" = u64, Path), wire::HistoryQuery),
    responses((status = 200, body = wire::History, description = "the history")))]
pub(super) async fn history(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(q): Query<wire::HistoryQuery>,
) -> ApiResult<wire::History> {
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
    let (mut lo, mut hi) = (db.pruned_below().map_err(ApiError::db)?, head);
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
    let books = view::books_at(&**db, SocietyId(id), &heights).map_err(ApiError::db)?;
    let mut items = Vec::with_capacity(heights.len());
    for (h, book) in heights.into_iter().zip(books) {
        let Some(book) = book else { continue };
        items.push(wire::HistoryPoint {
            height: h,
            time_ms: time_at(h)?,
            gift_funds: book.pool.total.into(),
            member_count: book.member_count,
            requests_approved: book.stats.requests_approved,
            requests_rejected: book.stats.requests_rejected,
            paid: wire::Amount(
                book.stats
                    .paid_by_shares
                    .saturating_add(book.stats.paid_by_gifts),
            ),
        });
    }
    Ok(Json(wire::History { items }))
}

/// A society's members, by address, with their standing.
#[utoipa::path(get, path = "/api/v1/societies/{id}/members", tag = "state",
    params(("id" = u64, Path), PageQuery),
    responses((status = 200, body = wire::Page<wire::Member>, description = "a page of members")))]
pub(super) async fn members(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<wire::Page<wire::Member>> {
    let r = reader(&node)?;
    let after = page::after(&q, |a| a.parse::<Address>().ok())?;
    let members = view::members(
        &r,
        SocietyId(id),
        after.as_ref(),
        page::limit(&q),
        node.head().time_ms,
    )
    .ok_or_else(|| ApiError::not_found("society"))?;
    Ok(page::answer(
        members,
        |(who, _)| who.to_bech32(),
        |(who, m)| wire::Member::new(id, who, m),
    ))
}

/// One member: standing, dues, balance, karma, maximum benefit.
#[utoipa::path(get, path = "/api/v1/societies/{id}/members/{address}", tag = "state",
    params(("id" = u64, Path), ("address" = String, Path, description = "bech32 address")),
    responses((status = 200, body = wire::Member, description = "the member")))]
pub(super) async fn member(
    State(node): State<Arc<Node>>,
    Path((id, address)): Path<(u64, String)>,
) -> ApiResult<wire::Member> {
    let who = parse_address(&address)?;
    let r = reader(&node)?;
    let m = view::member(&r, SocietyId(id), &who, node.head().time_ms)
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok(Json(wire::Member::new(id, &who, &m)))
}

/// A society's requests, newest first.
#[utoipa::path(get, path = "/api/v1/societies/{id}/requests", tag = "state",
    params(("id" = u64, Path), PageQuery),
    responses((status = 200, body = wire::Page<wire::Request>, description = "a page of requests")))]
pub(super) async fn society_requests(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<wire::Page<wire::Request>> {
    let r = reader(&node)?;
    let (meta, _) =
        view::society(&r, SocietyId(id)).ok_or_else(|| ApiError::not_found("society"))?;
    let now_period = meta.period_at(node.head().time_ms);
    let before = page::after(&q, |a| a.parse().ok().map(RequestId))?;
    let requests = view::requests(&r, SocietyId(id), before, page::limit(&q))
        .ok_or_else(|| ApiError::not_found("society"))?;
    Ok(page::answer(
        requests,
        |(rid, _)| rid.0.to_string(),
        |(rid, req)| wire::Request::new(rid.0, req, now_period),
    ))
}

/// One request and its ballot.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "state",
    params(("id" = u64, Path)), responses((status = 200, body = wire::Request, description = "the request")))]
pub(super) async fn request(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
) -> ApiResult<wire::Request> {
    let r = reader(&node)?;
    let req = view::request(&r, RequestId(id)).ok_or_else(|| ApiError::not_found("request"))?;
    let (meta, _) = view::society(&r, req.ballot.society).expect("requests belong to societies");
    Ok(Json(wire::Request::new(
        id,
        &req,
        meta.period_at(node.head().time_ms),
    )))
}

/// The votes on a request, by voter.
#[utoipa::path(get, path = "/api/v1/requests/{id}/votes", tag = "state",
    params(("id" = u64, Path), PageQuery),
    responses((status = 200, body = wire::Page<wire::Vote>, description = "a page of votes")))]
pub(super) async fn votes(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<wire::Page<wire::Vote>> {
    let r = reader(&node)?;
    let after = page::after(&q, |a| a.parse::<Address>().ok())?;
    let votes = view::votes(&r, RequestId(id), after.as_ref(), page::limit(&q))
        .ok_or_else(|| ApiError::not_found("request"))?;
    Ok(page::answer(
        votes,
        |(voter, _)| voter.to_bech32(),
        |(voter, vote)| wire::Vote::new(voter, vote),
    ))
}

/// One amendment and its vote.
#[utoipa::path(get, path = "/api/v1/amendments/{id}", tag = "state",
    params(("id" = u64, Path)), responses((status = 200, body = wire::Amendment, description = "the amendment")))]
pub(super) async fn amendment(
    State(node): State<Arc<Node>>,
    Path(id): Path<u64>,
) -> ApiResult<wire::Amendment> {
    let r = reader(&node)?;
    let a = view::amendment(&r, AmendmentId(id)).ok_or_else(|| ApiError::not_found("amendment"))?;
    Ok(Json(wire::Amendment::new(id, &a)))
}
