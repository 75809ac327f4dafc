//! The HTTP load of `kassa bench node --http C` and `kassa bench network --http C`: `C`
//! keep-alive connections, each with one request in flight at a time, as `C` wallets would
//! submit, driven from one thread so that the client takes as little as it can of the cores
//! it shares with the validators it measures.

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use kassa_api::wire::{BatchResults, Submitted};
use kassa_types::SignedTransaction;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the whole submission may take before the benchmark gives up.
const DEADLINE: Duration = Duration::from_secs(600);

/// How long a connection waits before sending again what a full mempool turned away.
const FULL_BACKOFF: Duration = Duration::from_millis(2);

/// Submits `(account, tx)` pairs to the nodes' APIs at `addrs` over `clients` connections:
/// one transaction per request (`POST /api/v1/txs`, `batch` ≤ 1), as wallets do, or `batch`
/// per request (`POST /api/v1/txs/batch`). Each account's transactions go in order over one
/// connection to the account's node (account `a` to `addrs[a % n]`), sent again while its
/// mempool is full. Returns when each transaction was accepted.
pub(super) fn submit_http(
    addrs: &[SocketAddr],
    txs: &[(usize, SignedTransaction)],
    clients: usize,
    batch: usize,
) -> Result<Vec<Instant>> {
    let clients = clients.max(1);
    let batch = batch.max(1);
    // Every request body is made before the first is sent, as the transactions were signed
    // before: wallets do not make theirs on the node's cores.
    let hexes: Arc<Vec<String>> =
        Arc::new(txs.iter().map(|(_, t)| hex::encode(t.encode())).collect());
    let mut lanes: Vec<Vec<usize>> = vec![Vec::new(); clients];
    for (k, (account, _)) in txs.iter().enumerate() {
        lanes[account % clients].push(k);
    }
    let node_of = |k: usize| txs[k].0 % addrs.len();
    let mut requests: Vec<Vec<Request>> = Vec::with_capacity(clients);
    for lane in &lanes {
        let mut reqs = Vec::new();
        let mut rest = &lane[..];
        while let Some(&first) = rest.first() {
            let node = node_of(first);
            let n = rest
                .iter()
                .take(batch)
                .take_while(|&&k| node_of(k) == node)
                .count();
            let group = &rest[..n];
            reqs.push(Request {
                node,
                txs: group.to_vec(),
                body: body_of(&hexes, group, batch > 1)?,
            });
            rest = &rest[n..];
        }
        requests.push(reqs);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let deadline = Instant::now() + DEADLINE;
    let mut at = vec![deadline; txs.len()];
    runtime.block_on(async {
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|reqs| {
                let (addrs, hexes) = (addrs.to_vec(), hexes.clone());
                tokio::spawn(lane(addrs, hexes, reqs, batch > 1, deadline))
            })
            .collect();
        for task in tasks {
            for (k, t) in task
                .await
                .map_err(|_| anyhow!("an HTTP client panicked"))??
            {
                at[k] = t;
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(at)
}

/// One request: transactions `txs` (indexes into the submission), all for node `node`.
struct Request {
    node: usize,
    txs: Vec<usize>,
    body: Bytes,
}

/// One connection's requests, in order; when each transaction was accepted.
async fn lane(
    addrs: Vec<SocketAddr>,
    hexes: Arc<Vec<String>>,
    requests: Vec<Request>,
    batched: bool,
    deadline: Instant,
) -> Result<Vec<(usize, Instant)>> {
    let mut conns: BTreeMap<usize, SendRequest<Full<Bytes>>> = BTreeMap::new();
    let mut accepted_at = Vec::new();
    for req in requests {
        let mut done = 0;
        while done < req.txs.len() {
            ensure!(
                Instant::now() < deadline,
                "submission did not finish in time"
            );
            let conn = match conns.entry(req.node) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(connect(addrs[req.node]).await?)
                }
            };
            // What a full mempool turned away is sent again: the rest of a batch, or the
            // lone transaction.
            let body = if done == 0 {
                req.body.clone()
            } else {
                body_of(&hexes, &req.txs[done..], batched)?
            };
            let sent = Instant::now();
            let (status, answer) = post(conn, addrs[req.node], batched, body).await?;
            let accepted = if batched {
                ensure!(
                    status == 200,
                    "a batch was refused over HTTP ({status}): {}",
                    String::from_utf8_lossy(&answer)
                );
                accepted_of(&answer)?
            } else {
                match status {
                    200 => 1,
                    503 => 0,
                    _ => bail!(
                        "a transaction was refused over HTTP ({status}): {}",
                        String::from_utf8_lossy(&answer)
                    ),
                }
            };
            for &k in &req.txs[done..done + accepted] {
                accepted_at.push((k, sent));
            }
            done += accepted;
            if done < req.txs.len() {
                tokio::time::sleep(FULL_BACKOFF).await;
            }
        }
    }
    Ok(accepted_at)
}

/// The JSON body of a request submitting transactions `txs`: `{"tx": …}` alone, `{"txs": […]}`
/// in a batch.
fn body_of(hexes: &[String], txs: &[usize], batched: bool) -> Result<Bytes> {
    let body = if batched {
        serde_json::json!({ "txs": txs.iter().map(|&k| &hexes[k]).collect::<Vec<_>>() })
    } else {
        serde_json::json!({ "tx": hexes[txs[0]] })
    };
    Ok(Bytes::from(serde_json::to_vec(&body)?))
}

/// How many of a batch's first transactions were accepted (the rest, from the first the full
/// mempool turned away, are sent again).
fn accepted_of(answer: &[u8]) -> Result<usize> {
    let results: BatchResults = serde_json::from_slice(answer)?;
    let mut accepted = 0;
    for r in results.results {
        match r {
            Submitted::Pending { .. } => accepted += 1,
            // Sent again after a full mempool turned an earlier one away: still waiting, or
            // already included.
            Submitted::Refused { error }
                if error.code == "duplicate" || error.code == "nonce_too_low" =>
            {
                accepted += 1
            }
            Submitted::Refused { error }
                if error.code == "mempool_full" || error.code == "sender_full" =>
            {
                break;
            }
            Submitted::Refused { error } => {
                bail!("a transaction was refused over HTTP: {}", error.message)
            }
        }
    }
    Ok(accepted)
}

/// A keep-alive HTTP/1.1 connection to `addr`, its driver spawned on this runtime.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Posts `body` to the node's submit (or batch submit) endpoint: the status and the answer.
async fn post(
    conn: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    batched: bool,
    body: Bytes,
) -> Result<(u16, Bytes)> {
    let path = if batched {
        "/api/v1/txs/batch"
    } else {
        "/api/v1/txs"
    };
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))?;
    conn.ready().await?;
    let resp = conn.send_request(req).await?;
    let status = resp.status().as_u16();
    let answer = resp.into_body().collect().await?.to_bytes();
    Ok((status, answer))
}
