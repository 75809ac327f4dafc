//! A follower's sources: another node (a validator or a follower) by its host's peer address
//! (the hosting protocol, `kassa_node::host`) or by its HTTP API, each as a
//! [`kassa_node::follow::Source`]. What a follower does with them, and why it trusts none of
//! them, is [`kassa_node::follow`].

use crate::client::{Client, Refusal};
use kassa_api::wire;
use kassa_node::Finality;
use kassa_node::follow::{Source, SourceError};
use kassa_node::host::{Hosts, PeerAddr};
use kassa_types::SignedTransaction;
use std::sync::Arc;

/// Where a follower syncs from, as its config names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceAddr {
    /// A host's peer address, `<public key hex>@<ip:port>`.
    Peer(PeerAddr),
    /// A node's HTTP API, `http://…` or `https://…`.
    Http(String),
}

impl std::str::FromStr for SourceAddr {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<SourceAddr> {
        let s = s.trim();
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(SourceAddr::Http(s.trim_end_matches('/').to_string()));
        }
        Ok(SourceAddr::Peer(s.parse().map_err(|e| {
            anyhow::anyhow!("source {s:?}: {e}, or a node's URL (http://…)")
        })?))
    }
}

impl std::fmt::Display for SourceAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceAddr::Peer(p) => write!(f, "{p}"),
            SourceAddr::Http(url) => write!(f, "{url}"),
        }
    }
}

/// The sources `addrs`, in their order, on the runtime of `context`: HTTP ones as
/// [`HttpSource`]s, peers through the returned [`Hosts`] (dialed as `key`; `listen` is the
/// port this node hosts on, announced to them), which finds more of them.
pub fn sources<E>(
    context: E,
    key: kassa_node::consensus::PrivateKey,
    namespace: Vec<u8>,
    listen: Option<u16>,
    addrs: &[SourceAddr],
) -> (Vec<Arc<dyn Source>>, Arc<Hosts<E>>)
where
    E: commonware_runtime::Network
        + commonware_runtime::Spawner
        + commonware_runtime::Clock
        + rand_core_10::CryptoRng,
{
    let peers: Vec<PeerAddr> = addrs
        .iter()
        .filter_map(|a| match a {
            SourceAddr::Peer(p) => Some(p.clone()),
            SourceAddr::Http(_) => None,
        })
        .collect();
    let hosts = Hosts::new(context, key, namespace, listen, &peers);
    let mut dialed = hosts.sources().into_iter();
    let all = addrs
        .iter()
        .filter_map(|a| match a {
            SourceAddr::Http(url) => Some(HttpSource::shared(url)),
            // A peer listed twice is one source.
            SourceAddr::Peer(_) => dialed.next(),
        })
        .collect();
    (all, hosts)
}

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

    fn offers(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<(u64, kassa_db::Committed)>, SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || {
            let bytes = c.bytes("/api/v1/sync/offers", 64 << 10)?;
            Ok(borsh::from_slice(&bytes)?)
        }))
    }

    fn sync(
        &self,
        request: Vec<u8>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<u8>, SourceError>> {
        let c = self.0.clone();
        Box::pin(blocking(move || {
            let limit = u64::try_from(kassa_db::qmdb::ANSWER_BYTES_MAX)?;
            c.post_bytes("/api/v1/sync", &request, limit)
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
