//! `/metrics`, and how long the API takes to answer, by route.
//!
//! The exposition is the node's [`kassa_node::Telemetry`]: on a running node, the Commonware
//! runtime's Prometheus registry, with Kassa's metrics and Commonware's own (consensus, p2p,
//! storage, the runtime's tasks). Request durations are a histogram labelled by the route's
//! template (`/api/v1/blocks/{height}`, never the path asked for), the method and the status
//! class, so their number is bounded by the router's routes whatever clients ask.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kassa_node::Node;
use kassa_node::telemetry::fine_latency_buckets;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;
use std::time::Instant;

/// The content type of the OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Name of the request-duration histogram (`_bucket`, `_sum`, `_count` in the exposition).
pub const HTTP_SECONDS: &str = "kassa_http_request_duration_seconds";

/// The labels of a request: route template, method, status class.
type Labels = [(&'static str, String); 3];

type Durations = Family<Labels, Histogram, fn() -> Histogram>;

fn durations(node: &Node) -> Durations {
    node.telemetry().metric(
        HTTP_SECONDS,
        "Time to answer an API request (to the response's head: a stream's lifetime is not \
         counted), by route template, method and status class",
        || Family::new_with_constructor(histogram as fn() -> Histogram),
    )
}

fn histogram() -> Histogram {
    Histogram::new(fine_latency_buckets())
}

/// Prometheus metrics: the node's, the API's and Commonware's consensus, p2p, storage and runtime
/// metrics.
#[utoipa::path(get, path = "/metrics", tag = "node",
    responses((status = 200, content_type = "application/openmetrics-text", body = String, description = "the metrics, in the OpenMetrics text format")))]
pub(crate) async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        node.telemetry().encode(),
    )
}

/// `router` with each request's duration observed in the node's telemetry.
pub(crate) fn measured(router: axum::Router, node: &Node) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(durations(node), time))
}

async fn time(State(durations): State<Durations>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    durations
        .get_or_create(&[
            ("route", route),
            ("method", method.to_string()),
            ("status", status.to_string()),
        ])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: the standard ones by name, anything else as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
