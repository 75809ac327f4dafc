//! The HTTP server: the API on a runtime and threads of its own, so that no load on the API can
//! take consensus's threads, with every resource a client can hold bounded.
//!
//! - **Connections.** At most [`Limits::max_connections`] at once, lowered at start to fit the
//!   process's file limit after [`Limits::reserved_fds`] descriptors are kept for storage,
//!   consensus and p2p (the soft limit is first raised to the hard one). A full server stops
//!   accepting: clients wait in the kernel's queue, holding none of the node's descriptors.
//!   At most [`Limits::connections_per_client`] from one client; more are closed on accept.
//! - **Time.** A request's headers must arrive within [`Limits::header_timeout_ms`] (also the
//!   longest a kept-alive connection idles), its body within [`Limits::body_timeout_ms`], and a
//!   client must read what it is sent within [`Limits::write_timeout_ms`].
//! - **Rates** per client, sizes and event streams: [`crate::guard`].

use crate::guard::{Client, Guard, Limits};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use kassa_node::Node;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt as _;

/// Fewest connections a server is started with: below this the file limit is refused.
pub const MIN_CONNECTIONS: usize = 16;

/// Largest request head (request line and headers), in bytes.
pub const HEAD_BYTES_MAX: usize = 16 * 1024;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "the file limit ({limit}) leaves fewer than {MIN_CONNECTIONS} connections after the \
         {reserved} descriptors kept for storage and consensus: raise it (ulimit -n) or lower \
         api.reserved_fds"
    )]
    FileLimit { limit: u64, reserved: u64 },
    #[error("starting the API server: {0}")]
    Io(#[from] io::Error),
}

/// How many connections the server may hold: the configured cap, lowered to what the file limit
/// leaves after the reserved descriptors.
pub fn connection_cap(limits: &Limits) -> Result<usize, ServeError> {
    // Raising the soft limit to the hard one is what every server does at start; where it is
    // not allowed the soft limit stands.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let budget = soft.saturating_sub(limits.reserved_fds);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    if budget < MIN_CONNECTIONS {
        return Err(ServeError::FileLimit {
            limit: soft,
            reserved: limits.reserved_fds,
        });
    }
    Ok(budget.min(limits.max_connections.max(MIN_CONNECTIONS)))
}

/// A running API server. Dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Connections it holds at most.
    pub connections: usize,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `node`'s API on `listener` under `limits`, on threads of its own.
    pub fn start(
        listener: std::net::TcpListener,
        node: Arc<Node>,
        limits: Limits,
    ) -> Result<Server, ServeError> {
        let connections = connection_cap(&limits)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(limits.threads.max(1))
            .thread_name("kassa-api")
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let guard = Arc::new(Guard::new(limits));
        let router = crate::app(node, guard.clone());
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("kassa-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let forget = async {
                        loop {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            guard.forget_idle();
                        }
                    };
                    tokio::select! {
                        () = accept(listener, router, &guard, connections) => {}
                        () = forget => {}
                        _ = stopped => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Server {
            addr,
            connections,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections while there is room, and serves each on a task of its own.
async fn accept(listener: tokio::net::TcpListener, router: Router, guard: &Guard, cap: usize) {
    let limits = &guard.limits;
    let slots = Arc::new(Semaphore::new(cap));
    let seats = Seats::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms))
        .max_buf_size(HEAD_BYTES_MAX.max(8192));
    let write_timeout = Duration::from_millis(limits.write_timeout_ms);
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors (another part of the process took them) or a connection
                // reset before it was accepted: wait a little rather than spin.
                tracing::warn!(error = %e, "accepting an API connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let client = Client::of(peer.ip());
        let Some(seat) = seats.take(client, limits.connections_per_client) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteTimeout::new(stream, write_timeout));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req| {
            req.extensions_mut().insert(client);
            router.clone().oneshot(req)
        });
        let conn = http.serve_connection(io, service);
        tokio::spawn(async move {
            let _ = conn.await;
            drop((slot, seat));
        });
    }
}

/// Open connections per client.
#[derive(Debug, Default, Clone)]
struct Seats(Arc<Mutex<HashMap<Client, usize>>>);

impl Seats {
    fn take(&self, client: Client, max: usize) -> Option<Seat> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(client).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Seat {
            seats: self.clone(),
            client,
        })
    }
}

/// A client's open connection; its drop frees the seat.
#[derive(Debug)]
struct Seat {
    seats: Seats,
    client: Client,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.seats.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// A connection whose writes fail once the peer has read nothing for `limit`: a client that
/// stops reading (an event stream it never drains, a large answer it never takes) is dropped
/// rather than holding its connection and buffers for ever.
#[derive(Debug)]
struct WriteTimeout<S> {
    io: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(io: S, limit: Duration) -> Self {
        WriteTimeout {
            io,
            limit,
            stalled: None,
        }
    }

    /// After a write that could not proceed: pending until `limit` has passed since the first
    /// such write, then the time-out error.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, p: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match p {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let p = Pin::new(&mut this.io).poll_write(cx, buf);
        this.progress(cx, p)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let p = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.progress(cx, p)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let p = Pin::new(&mut this.io).poll_flush(cx);
        this.progress(cx, p)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let p = Pin::new(&mut this.io).poll_shutdown(cx);
        this.progress(cx, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_seats_and_a_closed_connection_gives_one_back() {
        let seats = Seats::default();
        let a = Client::of("10.0.0.1".parse().unwrap());
        let b = Client::of("10.0.0.2".parse().unwrap());
        let first = seats.take(a, 2).unwrap();
        let _second = seats.take(a, 2).unwrap();
        assert!(seats.take(a, 2).is_none());
        assert!(seats.take(b, 2).is_some());
        drop(first);
        assert!(seats.take(a, 2).is_some());
    }

    #[tokio::test]
    async fn a_write_the_peer_does_not_read_fails_after_the_limit_and_reads_are_untouched() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut conn = WriteTimeout::new(ours, Duration::from_millis(100));
        conn.write_all(&[7; 64]).await.unwrap();
        let mut got = [0u8; 64];
        theirs.read_exact(&mut got).await.unwrap();
        conn.write_all(&[7; 64]).await.unwrap();
        // The peer reads no more: the next write cannot proceed and times out.
        let e = tokio::time::timeout(Duration::from_secs(20), conn.write_all(&[7; 64]))
            .await
            .expect("the write gives up")
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        theirs.write_all(b"hi").await.unwrap();
        let mut two = [0u8; 2];
        conn.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"hi");
    }

    #[test]
    fn the_connection_cap_leaves_the_reserved_descriptors_free() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let limits = Limits {
            max_connections: usize::MAX,
            reserved_fds: soft.saturating_sub(100),
            ..Limits::default()
        };
        let cap = connection_cap(&limits).unwrap();
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(u64::try_from(cap).unwrap() + limits.reserved_fds <= soft);
        let refused = connection_cap(&Limits {
            reserved_fds: u64::MAX,
            ..Limits::default()
        });
        assert!(matches!(refused, Err(ServeError::FileLimit { .. })));
    }
}
