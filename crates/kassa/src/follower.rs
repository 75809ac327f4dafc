//! A follower's sources over HTTP: another node's API (a validator's or a follower's) as a
//! [`kassa_node::follow::Source`]. What a follower does with them, and why it trusts none of
//! them, is [`kassa_node::follow`].

use crate::client::{Client, Refusal};
use kassa_api::wire;
use kassa_node::Finality;
use kassa_node::follow::{Source, SourceError};
use kassa_types::SignedTransaction;
use std::sync::Arc;

/// Another node's API.
pub struct HttpSource(Client);

impl HttpSource {
    pub fn shared(url: &str) -> Arc<dyn Source> {
        Arc::new(HttpSource(Client::new(url)))
    }
}

/// Runs `f` (a blocking request) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SourceError::Unreachable(e.to_string()))?
        .map_err(|e| {
            let why = format!("{e:#}");
            if Refusal::pruned(&e) {
                SourceError::Pruned(why)
            } else {
                SourceError::Unreachable(why)
            }
        })
}

impl Source for HttpSource {
    fn name(&self) -> &str {
        self.0.base()
    }

    fn height(&self) -> futures::future::BoxFuture<'_, Result<u64, SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || {
            Ok(c.get::<wire::Status>("/api/v1/status")?.height)
        }))
    }

    fn finality(
        &self,
        from: u64,
    ) -> futures::future::BoxFuture<'_, Result<Option<Finality>, SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || {
            let Some(f) =
                c.get_opt::<wire::Finality>(&format!("/api/v1/blocks/{from}/finality"))?
            else {
                return Ok(None);
            };
            Ok(Some(Finality {
                height: f.height,
                block: f.block.0,
                header: hex::decode(&f.header)?,
                certificate: hex::decode(&f.certificate)?,
            }))
        }))
    }

    fn block(&self, height: u64) -> futures::future::BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || c.block_bytes(height)))
    }

    fn chunk(
        &self,
        height: u64,
        after: Option<[u8; 32]>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || {
            let path = match after {
                None => format!("/api/v1/snapshots/{height}"),
                Some(a) => format!("/api/v1/snapshots/{height}?after={}", hex::encode(a)),
            };
            c.bytes(&path, u64::try_from(kassa_db::CHUNK_BYTES_MAX)?)
        }))
    }

    fn forward(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> futures::future::BoxFuture<'_, Result<(), SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || {
            for lot in txs.chunks(BATCH_FORWARD) {
                let body = wire::BatchBody {
                    txs: lot.iter().map(|t| hex::encode(t.encode())).collect(),
                };
                let answer: wire::BatchResults = c.post("/api/v1/txs/batch", &body)?;
                for (tx, r) in lot.iter().zip(answer.results) {
                    if let wire::Submitted::Refused { error } = r {
                        tracing::warn!(code = %error.code, tx = %tx.hash(), "the source refused a forwarded transaction");
                    }
                }
            }
            Ok(())
        }))
    }
}

/// Most transactions forwarded in one request (a node's default batch limit).
const BATCH_FORWARD: usize = 1_000;
