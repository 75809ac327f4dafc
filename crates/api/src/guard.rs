//! What one client may ask of the API: its limits ([`Limits`], from the node's config) and the
//! per-client token buckets that enforce them. A request over its client's budget is answered
//! `429 rate_limited` with `Retry-After`, before any work is done for it.
//!
//! A client is its IP address (an IPv6 client its /64, which one host usually owns whole). The
//! server ([`crate::serve`]) stamps every request with its client; a request that did not come
//! through it (the router called in-process, as the tests and benchmarks do) is not limited.

use crate::ApiError;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The API's limits. Every field has a default; a node's config overrides any of them in its
/// `[api]` table. A rate of 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Worker threads of the API's own runtime (consensus runs on others).
    pub threads: usize,
    /// Connections open at once; lowered at start so that, with `reserved_fds`, they fit the
    /// process's file limit. Further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Connections open at once from one client (each serves one request at a time); further
    /// ones are closed on accept.
    pub connections_per_client: usize,
    /// File descriptors kept for storage, consensus and p2p, which connections never take.
    pub reserved_fds: u64,
    /// Longest wait for a request's headers, also between requests on a kept-alive connection.
    pub header_timeout_ms: u64,
    /// Longest wait for a request's body.
    pub body_timeout_ms: u64,
    /// Longest a response may wait for the client to read (a client that stops reading an event
    /// stream is dropped after it).
    pub write_timeout_ms: u64,
    /// Transactions one client may submit per second, sustained.
    pub submit_per_sec: u32,
    /// Transactions one client may submit at once, above the sustained rate.
    pub submit_burst: u32,
    /// Expensive reads (block lists, certificates, histories, previews, event streams; a proof
    /// is a bounded read like any record's, and the web app asks for several with every block)
    /// one client may make per second, sustained.
    pub heavy_per_sec: u32,
    /// Expensive reads one client may make at once.
    pub heavy_burst: u32,
    /// Faucet drips one client may take per minute (development chains).
    pub faucet_per_min: u32,
    /// Faucet drips one client may take at once.
    pub faucet_burst: u32,
    /// Event streams open at once (all clients).
    pub event_streams: usize,
    /// Most transactions in one `POST /api/v1/txs/batch`.
    pub batch_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            threads: 2,
            max_connections: 4_096,
            connections_per_client: 64,
            reserved_fds: 512,
            header_timeout_ms: 30_000,
            body_timeout_ms: 10_000,
            write_timeout_ms: 30_000,
            submit_per_sec: 100,
            submit_burst: 1_000,
            heavy_per_sec: 20,
            heavy_burst: 40,
            faucet_per_min: 60,
            faucet_burst: 30,
            event_streams: 256,
            batch_max: 1_000,
        }
    }
}

impl Limits {
    /// No rate limits (what a benchmark that saturates the node from one address needs); the
    /// connection, time-out and size limits stay.
    pub fn unmetered() -> Self {
        Limits {
            submit_per_sec: 0,
            heavy_per_sec: 0,
            faucet_per_min: 0,
            ..Limits::default()
        }
    }
}

/// The client a request came from, stamped by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    /// The client of a peer address: an IPv4 address (also IPv4-mapped IPv6) as it is, an IPv6
    /// address by its /64.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Client(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Client(IpAddr::V6(bits.into()))
                }
            },
        }
    }
}

/// What a request costs its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cost {
    /// Cheap reads: not metered (the connection caps bound them).
    Free,
    /// Transactions submitted.
    Submit(u32),
    /// An expensive read.
    Heavy,
    /// A faucet drip.
    Faucet,
}

/// A batch is charged, before its body is read, one transaction per this many bytes of it
/// (a transaction's hex in JSON takes at least 300), and the rest of its transactions once they
/// are counted: so reading and parsing a batch is never done for a client out of budget.
pub(crate) const BATCH_BYTES_PER_TX: u64 = 512;

/// What a batch of `content_length` bytes is charged before it is read.
pub(crate) fn batch_upfront(content_length: u64) -> u32 {
    u32::try_from((content_length / BATCH_BYTES_PER_TX).max(1)).unwrap_or(u32::MAX)
}

impl Cost {
    /// The cost of a request by its method, path and declared length (a batch's remaining
    /// transactions are counted by its handler once its body is read).
    fn of(method: &Method, path: &str, content_length: Option<u64>) -> Cost {
        let path = path.strip_prefix("/api/v1").unwrap_or(path);
        let post = method == Method::POST;
        match path {
            "/txs" if post => Cost::Submit(1),
            "/txs/batch" if post => Cost::Submit(batch_upfront(content_length.unwrap_or(0))),
            "/faucet" if post => Cost::Faucet,
            "/simulate" | "/blocks" | "/events" => Cost::Heavy,
            _ if (path.starts_with("/blocks/") && path.ends_with("/finality"))
                || path.starts_with("/sync")
                || (path.starts_with("/societies/") && path.ends_with("/history")) =>
            {
                Cost::Heavy
            }
            _ => Cost::Free,
        }
    }
}

fn quota(per: Duration, n: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<Client>> {
    let n = NonZeroU32::new(n)?;
    let burst = NonZeroU32::new(burst).unwrap_or(n);
    let period = per / n.get();
    let q = Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst);
    Some(DefaultKeyedRateLimiter::keyed(q))
}

/// The token buckets of every client, and the count of open event streams.
pub(crate) struct Guard {
    pub(crate) limits: Limits,
    submit: Option<DefaultKeyedRateLimiter<Client>>,
    heavy: Option<DefaultKeyedRateLimiter<Client>>,
    faucet: Option<DefaultKeyedRateLimiter<Client>>,
    streams: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub(crate) fn new(limits: Limits) -> Self {
        let second = Duration::from_secs(1);
        Guard {
            submit: quota(second, limits.submit_per_sec, limits.submit_burst),
            heavy: quota(second, limits.heavy_per_sec, limits.heavy_burst),
            faucet: quota(
                Duration::from_secs(60),
                limits.faucet_per_min,
                limits.faucet_burst,
            ),
            streams: Arc::new(AtomicUsize::new(0)),
            limits,
        }
    }

    /// Takes `cost` from `client`'s bucket, or refuses with how long to wait.
    pub(crate) fn charge(&self, client: Option<Client>, cost: Cost) -> Result<(), ApiError> {
        let Some(client) = client else {
            return Ok(());
        };
        let (bucket, n, what) = match cost {
            Cost::Free => return Ok(()),
            Cost::Submit(n) => (&self.submit, n, "transactions"),
            Cost::Heavy => (&self.heavy, 1, "expensive reads"),
            Cost::Faucet => (&self.faucet, 1, "faucet drips"),
        };
        let (Some(bucket), Some(n)) = (bucket, NonZeroU32::new(n)) else {
            return Ok(());
        };
        let wait = match bucket.check_key_n(&client, n) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(not_until)) => not_until.wait_time_from(DefaultClock::default().now()),
            // More at once than the burst: never allowed; ask the client to split it.
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("{n} {what} at once is more than a client's burst allows"),
                ));
            }
        };
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many {what} from this client; retry in {secs} s"),
        )
        .retry_after(secs.max(1)))
    }

    /// A slot for an event stream, held until the stream ends; `None` when all are taken.
    pub(crate) fn stream_slot(&self) -> Option<StreamSlot> {
        let open = self.streams.fetch_add(1, Ordering::AcqRel);
        let slot = StreamSlot(self.streams.clone());
        (open < self.limits.event_streams).then_some(slot)
    }

    /// Forgets clients whose buckets are full again, so the memory they take stays bounded by
    /// the clients of the last few seconds.
    pub(crate) fn forget_idle(&self) {
        for bucket in [&self.submit, &self.heavy, &self.faucet]
            .into_iter()
            .flatten()
        {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
    }
}

/// One open event stream; its drop frees the slot.
#[derive(Debug)]
pub(crate) struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Middleware: charges each request to its client before it is handled.
pub(crate) async fn meter(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let client = req.extensions().get::<Client>().copied();
    let length = content_length(req.headers());
    let path = req.uri().path();
    let batch = path == "/api/v1/txs/batch" && req.method() == Method::POST;
    if batch && client.is_some() && length.is_none() {
        return ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a batch must say its length (Content-Length)",
        )
        .into_response();
    }
    if let Err(e) = guard.charge(client, Cost::of(req.method(), path, length)) {
        return e.into_response();
    }
    next.run(req).await
}

/// A request's declared body length.
pub(crate) fn content_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_64_and_a_mapped_ipv4_address_is_the_ipv4_client() {
        let a = Client::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Client::of("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = Client::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Client::of("::ffff:10.0.0.1".parse().unwrap()),
            Client::of("10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn submissions_heavy_reads_and_drips_are_metered_and_cheap_reads_are_not() {
        assert_eq!(
            Cost::of(&Method::POST, "/api/v1/txs", None),
            Cost::Submit(1)
        );
        assert_eq!(
            Cost::of(&Method::POST, "/api/v1/txs/batch", Some(512 * 40 + 100)),
            Cost::Submit(40),
            "a batch is charged by its length before it is read"
        );
        assert_eq!(
            Cost::of(&Method::POST, "/api/v1/faucet", None),
            Cost::Faucet
        );
        for heavy in [
            "/api/v1/blocks",
            "/api/v1/blocks/7/finality",
            "/api/v1/societies/1/history",
            "/api/v1/sync/offers",
            "/api/v1/events",
        ] {
            assert_eq!(Cost::of(&Method::GET, heavy, None), Cost::Heavy, "{heavy}");
        }
        assert_eq!(
            Cost::of(&Method::POST, "/api/v1/sync", Some(30)),
            Cost::Heavy,
            "an answer of state sync"
        );
        for free in [
            "/api/v1/status",
            "/api/v1/blocks/7",
            "/api/v1/proofs/00",
            "/api/v1/proofs?keys=00,01",
            "/api/v1/txs/ab",
            "/",
        ] {
            assert_eq!(Cost::of(&Method::GET, free, None), Cost::Free, "{free}");
        }
    }

    #[test]
    fn a_client_over_its_burst_is_refused_with_a_retry_after_and_others_are_not() {
        let guard = Guard::new(Limits {
            submit_per_sec: 1,
            submit_burst: 3,
            ..Limits::default()
        });
        let me = Some(Client::of("10.0.0.1".parse().unwrap()));
        let other = Some(Client::of("10.0.0.2".parse().unwrap()));
        for _ in 0..3 {
            guard.charge(me, Cost::Submit(1)).unwrap();
        }
        let e = guard.charge(me, Cost::Submit(1)).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(1));
        guard.charge(other, Cost::Submit(3)).unwrap();
        // More than the burst at once can never pass.
        let e = guard.charge(other, Cost::Submit(4)).unwrap_err();
        assert_eq!(e.code, "rate_limited");
        // Requests that did not come through the server are not metered.
        guard.charge(None, Cost::Submit(1_000)).unwrap();
    }

    #[test]
    fn event_streams_beyond_the_cap_get_no_slot_and_a_closed_stream_frees_its_own() {
        let guard = Guard::new(Limits {
            event_streams: 2,
            ..Limits::default()
        });
        let a = guard.stream_slot().unwrap();
        let _b = guard.stream_slot().unwrap();
        assert!(guard.stream_slot().is_none());
        drop(a);
        assert!(guard.stream_slot().is_some());
    }
}
