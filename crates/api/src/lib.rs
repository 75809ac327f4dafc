//! Kassa's HTTP API, under `/api/v1`: the only crate that knows HTTP and JSON. Handlers map
//! typed queries of the state (`kassa_state::view`) and the node's calls to the JSON of
//! [`wire`], whose types also generate the OpenAPI document ([`ApiDoc`], `/openapi.json`).
//!
//! Every error is `{"error": {"code": "...", "number": N?, "message": "..."}}` with a stable
//! snake_case code (the rejection's name for refused transactions). Request bodies are limited to
//! [`BODY_BYTES_MAX`] ([`BATCH_BYTES_MAX`] for a batch) and list pages to [`PAGE_MAX`] items.
//!
//! [`serve::Server`] serves the API on threads of its own under the node's [`Limits`]
//! (connections, time-outs, per-client rates: [`guard`]).

mod chain;
pub mod guard;
pub mod metrics;
mod reads;
pub mod serve;
mod simulate;
mod web;
pub mod wire;

pub use guard::Limits;
pub use reads::HISTORY_POINTS_MAX;
pub use serve::Server;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kassa_db::Reader;
use kassa_node::{AdmitError, Node};
use kassa_types::Address;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;

/// Largest request body accepted, in bytes.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Largest body of `POST /api/v1/txs/batch`, in bytes.
pub const BATCH_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Most items in one list page.
pub const PAGE_MAX: usize = 100;
/// Longest a `wait=true` submission waits for finalization.
pub const WAIT_MAX: Duration = Duration::from_secs(30);

/// An API error: HTTP status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    number: Option<u16>,
    message: String,
    /// Seconds to wait before trying again (`Retry-After`).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            number: None,
            message: message.into(),
            retry_after: None,
        }
    }
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// The error as a batch's result reports it.
    pub(crate) fn info(&self) -> wire::ErrorInfo {
        wire::ErrorInfo {
            code: self.code.into(),
            number: self.number,
            message: self.message.clone(),
        }
    }
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
    /// A database error: `404 pruned` for a height this node no longer keeps, else internal.
    pub(crate) fn db(e: kassa_db::DbError) -> Self {
        match e {
            kassa_db::DbError::Pruned { .. } => {
                Self::new(StatusCode::NOT_FOUND, "pruned", e.to_string())
            }
            e => Self::internal(e),
        }
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
        // Every refusal has its number in the one registry (30–39: the mempool's own).
        let number = Some(e.rejection().code());
        ApiError {
            status,
            code: e.code(),
            number,
            message: e.to_string(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = wire::ErrorBody { error: self.info() };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

/// The router under the default [`Limits`] (requests from in-process callers, which do not
/// come through [`Server`], are not rate limited). `node` is shared with consensus.
pub fn router(node: Arc<Node>) -> Router {
    app(node, Arc::new(guard::Guard::new(Limits::default())))
}

/// The router with the limits of `guard`.
pub(crate) fn app(node: Arc<Node>, guard: Arc<guard::Guard>) -> Router {
    let body_timeout = Duration::from_millis(guard.limits.body_timeout_ms);
    Router::new()
        .route("/api/v1/status", get(chain::status))
        .route("/api/v1/txs", post(chain::submit))
        .route(
            "/api/v1/txs/batch",
            post(chain::submit_batch).layer(DefaultBodyLimit::max(BATCH_BYTES_MAX)),
        )
        .route("/api/v1/txs/{hash}", get(chain::tx))
        .route("/api/v1/accounts/{address}", get(reads::account))
        .route("/api/v1/assets", get(reads::assets))
        .route("/api/v1/assets/{id}", get(reads::asset))
        .route("/api/v1/societies", get(reads::societies))
        .route("/api/v1/societies/{id}", get(reads::society))
        .route("/api/v1/societies/{id}/history", get(reads::history))
        .route("/api/v1/societies/{id}/members", get(reads::members))
        .route(
            "/api/v1/societies/{id}/members/{address}",
            get(reads::member),
        )
        .route(
            "/api/v1/societies/{id}/requests",
            get(reads::society_requests),
        )
        .route("/api/v1/requests/{id}", get(reads::request))
        .route("/api/v1/requests/{id}/votes", get(reads::votes))
        .route("/api/v1/amendments/{id}", get(reads::amendment))
        .route("/api/v1/blocks", get(chain::blocks))
        .route("/api/v1/blocks/{height}", get(chain::block))
        .route("/api/v1/blocks/{height}/raw", get(chain::block_raw))
        .route("/api/v1/blocks/{height}/finality", get(chain::finality))
        .route("/api/v1/proofs", get(chain::proofs))
        .route("/api/v1/proofs/{key}", get(chain::proof))
        .route("/api/v1/sync/offers", get(chain::sync_offers))
        .route("/api/v1/sync", post(chain::sync))
        .route("/api/v1/events", get(chain::events))
        .route("/api/v1/faucet", post(faucet))
        .route("/api/v1/genesis", get(genesis))
        .route("/api/v1/simulate", post(simulate::preview))
        .route("/", get(web::index))
        .route("/app/{file}", get(web::file))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found("endpoint") })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::Extension(guard.clone()))
        .layer(axum::middleware::from_fn_with_state(guard, guard::meter))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_timeout,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(cors())
        .with_state(node)
}

/// Any web page may read the API and submit signed transactions: the web app served by one node
/// can talk to another (a member keeps a list of nodes). Nothing here depends on who asks: no
/// cookies, no credentials, and a transaction carries its own signature.
fn cors() -> tower_http::cors::CorsLayer {
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(3600))
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

pub(crate) fn reader(node: &Node) -> Result<Reader, ApiError> {
    node.db().reader().map_err(ApiError::internal)
}

pub(crate) fn parse_address(s: &str) -> Result<Address, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad("bad_address", format!("{e}")))
}

/// List pages: the cursor and size a query asks for, and the answer.
pub(crate) mod page {
    use super::{ApiError, PAGE_MAX};
    use crate::wire::{Page, PageQuery};
    use axum::Json;
    use kassa_state::view;

    pub fn limit(q: &PageQuery) -> usize {
        q.limit.unwrap_or(PAGE_MAX).min(PAGE_MAX)
    }

    /// The cursor as an id or address.
    pub fn after<T>(
        q: &PageQuery,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        q.after
            .as_deref()
            .map(|a| {
                parse(a).ok_or_else(|| ApiError::bad("bad_cursor", format!("no item has id {a}")))
            })
            .transpose()
    }

    /// A page's JSON: its items and the cursor of the next page (`null` at the end).
    pub fn answer<T, W>(
        page: view::Page<T>,
        cursor: impl Fn(&T) -> String,
        item: impl Fn(&T) -> W,
    ) -> Json<Page<W>> {
        Json(Page {
            items: page.items.iter().map(item).collect(),
            next: page.next().map(cursor),
        })
    }
}

/// Test money for an account (development chains only).
#[utoipa::path(post, path = "/api/v1/faucet", tag = "chain", request_body = wire::FaucetBody,
    responses((status = 200, body = wire::Tx, description = "the drip, pending")))]
async fn faucet(
    State(node): State<Arc<Node>>,
    Json(body): Json<wire::FaucetBody>,
) -> ApiResult<wire::Tx> {
    let to = parse_address(&body.address)?;
    match node.drip(to) {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_faucet",
            "this chain has no faucet (only --dev chains do)",
        )),
        Some(r) => Ok(Json(wire::Tx::Pending {
            hash: wire::Hex(r?),
        })),
    }
}

/// The genesis file this chain started from, for validators and followers to join with.
#[utoipa::path(get, path = "/api/v1/genesis", tag = "chain",
    responses((status = 200, content_type = "application/json", body = Object, description = "the genesis file")))]
async fn genesis(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    match node.genesis_json() {
        Some(g) => {
            Ok(([(header::CONTENT_TYPE, "application/json")], g.to_string()).into_response())
        }
        None => Err(ApiError::not_found("genesis file")),
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "node",
    responses((status = 200, content_type = "application/json", body = Object, description = "the document")))]
async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

/// Decodes a proof returned by `/api/v1/proofs` (its `kind` and hex `proof`).
pub fn decode_proof(kind: &str, hex_proof: &str) -> Option<kassa_db::KeyProof> {
    let bytes = hex::decode(hex_proof).ok()?;
    match kind {
        "present" => Some(kassa_db::KeyProof::Present(bytes)),
        "absent" => Some(kassa_db::KeyProof::Absent(bytes)),
        _ => None,
    }
}

/// The API's OpenAPI document, generated from the handlers and the [`wire`] types.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kassa node API",
        version = "1",
        description = "The HTTP API of a Kassa node. Amounts and karma are decimal strings; \
            hashes are hex; accounts are bech32 (kassa1...). Errors are \
            {\"error\":{\"code\",\"number\",\"message\"}} with a stable snake_case code (a \
            transaction's rejection name, numbered as in the protocol). Request bodies are limited \
            to 64 KiB (a batch to 2 MiB); list pages to 100 items. A client over its rate is \
            answered 429 rate_limited with Retry-After."
    ),
    paths(
        chain::status,
        chain::submit,
        chain::submit_batch,
        chain::tx,
        reads::account,
        reads::assets,
        reads::asset,
        reads::societies,
        reads::society,
        reads::history,
        reads::members,
        reads::member,
        reads::society_requests,
        reads::request,
        reads::votes,
        reads::amendment,
        chain::blocks,
        chain::block,
        chain::block_raw,
        chain::finality,
        chain::proofs,
        chain::proof,
        chain::sync_offers,
        chain::sync,
        chain::events,
        faucet,
        genesis,
        simulate::preview,
        web::index,
        web::file,
        openapi,
        metrics::metrics,
    ),
    components(schemas(wire::ErrorBody)),
    modifiers(&Errors)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Every operation may answer an error, in one shape.
struct Errors;

impl utoipa::Modify for Errors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        let error = ResponseBuilder::new()
            .description("An error: its code, number (for refused transactions) and message.")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                op.responses
                    .responses
                    .entry("default".into())
                    .or_insert_with(|| error.clone().into());
            }
        }
    }
}
