//! A small blocking HTTP client for the node's API.

use anyhow::{Context as _, Result, anyhow};
use kassa_api::wire;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The API of one node.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// What the node answered instead of what was asked: its typed error (`code`, the rejection's
/// `number` where there is one, and a message), found again through any context added on the
/// way up with [`Refusal::of`].
#[derive(Debug, Clone)]
pub struct Refusal(pub wire::ErrorInfo);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let number = self.0.number.map(|n| format!(" ({n})")).unwrap_or_default();
        write!(f, "{}{number}: {}", self.0.code, self.0.message)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The node's refusal in `e`'s chain, if the node refused.
    pub fn of(e: &anyhow::Error) -> Option<&Refusal> {
        e.chain().find_map(|c| c.downcast_ref::<Refusal>())
    }

    /// Whether `e` is the node saying it no longer keeps what was asked (`pruned`).
    pub fn pruned(e: &anyhow::Error) -> bool {
        Refusal::of(e).is_some_and(|r| r.0.code == "pruned")
    }
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

    /// The answer as `T` (the API's [`wire`] types), or its typed error as an error.
    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn finish<T: DeserializeOwned>(mut resp: ureq::http::Response<ureq::Body>) -> Result<T> {
        let status = resp.status();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| anyhow!("unreadable response ({status}): {e}"))?;
        if status.is_success() {
            return serde_json::from_str(&body)
                .map_err(|e| anyhow!("an answer this wallet cannot read ({status}): {e}"));
        }
        match serde_json::from_str::<wire::ErrorBody>(&body) {
            Ok(wire::ErrorBody { error }) => Err(Refusal(error).into()),
            Err(_) => Err(anyhow!("HTTP {status}")),
        }
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        Self::finish(resp)
    }

    /// Like [`Client::get`], but a 404 is `None`.
    pub fn get_opt<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>> {
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

    /// A block's canonical bytes (`GET /api/v1/blocks/{height}/raw` as `application/octet-stream`),
    /// read up to the consensus block-size limit and no further.
    pub fn block_bytes(&self, height: u64) -> Result<Vec<u8>> {
        let limit = u64::try_from(kassa_types::BLOCK_SIZE_MAX).expect("fits");
        self.bytes(&format!("/api/v1/blocks/{height}/raw"), limit)
            .with_context(|| format!("block {height}"))
    }

    /// The bytes at `path` (`Accept: application/octet-stream`), refusing more than `limit`.
    pub fn bytes(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("accept", "application/octet-stream")
            .call()
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        Self::body_bytes(resp, path, limit)
    }

    /// An answer's body, refusing more than `limit` bytes (an error answer as [`Self::finish`]).
    fn body_bytes(
        mut resp: ureq::http::Response<ureq::Body>,
        path: &str,
        limit: u64,
    ) -> Result<Vec<u8>> {
        if !resp.status().is_success() {
            return Self::finish(resp);
        }
        resp.body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(|e| anyhow!("{path}: {e}"))
    }

    /// The bytes a `POST` of `body` (`application/octet-stream`) to `path` answers, refusing
    /// more than `limit`.
    pub fn post_bytes(&self, path: &str, body: &[u8], limit: u64) -> Result<Vec<u8>> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/octet-stream")
            .header("accept", "application/octet-stream")
            .send(body)
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        Self::body_bytes(resp, path, limit)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_json(body)
            .map_err(|e| anyhow!("cannot reach the node at {}: {e}", self.base))?;
        Self::finish(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: &str) -> anyhow::Error {
        Refusal(wire::ErrorInfo {
            code: code.into(),
            number: None,
            message: "height 5 is pruned".into(),
        })
        .into()
    }

    #[test]
    fn a_pruned_refusal_is_known_by_its_code_through_any_context_and_not_by_its_words() {
        assert!(Refusal::pruned(&refusal("pruned").context("block 5")));
        assert!(!Refusal::pruned(&refusal("not_found").context("block 5")));
        assert!(!Refusal::pruned(&anyhow!(
            "the node says height 5 is pruned"
        )));
        assert_eq!(
            refusal("pruned").to_string(),
            "pruned: height 5 is pruned",
            "the refusal reads as before"
        );
    }
}
