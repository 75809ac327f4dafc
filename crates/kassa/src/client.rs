//! A small blocking HTTP client for the node's API.

use anyhow::{Result, anyhow};
use serde_json::Value;
use std::time::Duration;

/// The API of one node.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// A blocking HTTP agent for a node's API: a minute per request at most, and error statuses
/// returned as responses (the API's errors are typed JSON bodies).
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into()
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent: agent(),
        }
    }

    fn finish(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let status = resp.status();
        let body: Value = resp
            .body_mut()
            .read_json()
            .map_err(|e| anyhow!("unreadable response ({status}): {e}"))?;
        if status.is_success() {
            Ok(body)
        } else if let Some(err) = body.get("error") {
            let number = err["number"]
                .as_u64()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            Err(anyhow!(
                "{}{}: {}",
                err["code"].as_str().unwrap_or("error"),
                number,
                err["message"].as_str().unwrap_or("")
            ))
        } else {
            Err(anyhow!("HTTP {status}"))
        }
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        Self::finish(resp)
    }

    /// Like [`Client::get`], but a 404 is `None`.
    pub fn get_opt(&self, path: &str) -> Result<Option<Value>> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        if resp.status() == ureq::http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::finish(resp).map(Some)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_json(body)
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        Self::finish(resp)
    }
}
