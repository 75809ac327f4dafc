//! `POST /api/v1/simulate`: the web app's "Try these rules". A bounded simulation of a society
//! under the rules of the create-society form (crates/sim), run off the consensus threads, one
//! at a time per node, refused beyond a size and stopped beyond a time.

use crate::ApiError;
use axum::Json;
use axum::http::StatusCode;
use kassa_sim::{PREVIEW_MEMBER_PERIODS_MAX, Scenario, SimError, chart};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest a preview may run before it is stopped.
pub const PREVIEW_TIME_MAX: Duration = Duration::from_secs(20);

/// Whether a preview is running on this node.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// A society to simulate: rules as the create-society form has them, and its size.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    /// Any rule fields (integers as numbers or strings; `min_pledge` and `max_pledge` required);
    /// the others take the protocol's defaults.
    #[schema(value_type = Object)]
    rules: Map<String, Value>,
    #[serde(default = "members")]
    members: u32,
    #[serde(default = "periods")]
    periods: u32,
    #[serde(default = "seed")]
    seed: u64,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    decimals: u8,
}

fn members() -> u32 {
    1_000
}

fn periods() -> u32 {
    60
}

fn seed() -> u64 {
    1
}

/// Clears the running flag however the request ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

/// Simulate a society under these rules (the web app's "Try these rules"): a bounded run of the
/// society simulator, one at a time per node. Refused as `bad_scenario` (a rule out of range, an
/// unknown field, more than 60,000 member-periods), `simulation_too_long` (stopped after 20 s) or
/// `simulation_busy` (one is already running).
#[utoipa::path(post, path = "/api/v1/simulate", tag = "node", request_body = PreviewBody,
    responses((status = 200, content_type = "application/json", body = Object,
        description = "the report: rows per period, a summary in plain words, and SVG charts")))]
pub async fn preview(Json(body): Json<PreviewBody>) -> Result<Json<Value>, ApiError> {
    let sc = Scenario::preview(
        body.rules,
        body.members,
        body.periods,
        &body.currency,
        body.decimals.min(18),
    )
    .map_err(|e| ApiError::bad("bad_scenario", e.to_string()))?;
    if RUNNING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "simulation_busy",
            "a simulation is already running on this node; try again in a moment",
        ));
    }
    let guard = Running;
    let seed = body.seed;
    let result = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let start = Instant::now();
        let report = kassa_sim::simulate(&sc, seed, PREVIEW_MEMBER_PERIODS_MAX, &mut |_, _| {
            start.elapsed() < PREVIEW_TIME_MAX
        });
        (report, start.elapsed())
    })
    .await
    .map_err(ApiError::internal)?;
    let (report, elapsed) = result;
    let report = report.map_err(|e| match e {
        SimError::Scenario(e) => ApiError::bad("bad_scenario", e.to_string()),
        SimError::Stopped => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "simulation_too_long",
            format!(
                "the simulation took longer than {} s; try fewer members or periods",
                PREVIEW_TIME_MAX.as_secs()
            ),
        ),
        SimError::Invariant { .. } => ApiError::internal(e),
    })?;
    let mut out: Value = serde_json::from_str(&report.to_json()).map_err(ApiError::internal)?;
    out["charts"] = chart::charts(&report)
        .into_iter()
        .map(|(title, svg)| json!({"title": title, "svg": svg}))
        .collect();
    out["elapsed_ms"] = u64::try_from(elapsed.as_millis())
        .unwrap_or(u64::MAX)
        .into();
    Ok(Json(out))
}
