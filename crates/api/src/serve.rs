//! The HTTP server: the API on a runtime and threads of its own, so that no load on the API can
//! take consensus's threads, with every resource a client can hold bounded.
//!
//! - **Connections.** At most [`Limits::max_connections`] at once, lowered at start to fit the
//!   process's file limit after [`Limits::reserved_fds`] descriptors are kept for storage,
//!   consensus and p2p (the soft limit is first raised to the hard one). When the server is
//!   full, a new connection takes the place of the one that has been idle longest (no request
//!   in progress: one that sent half a request, or a kept-alive one between requests); if every
//!   connection is busy, the new one is closed. So connections held open for nothing cannot
//!   keep clients that are using theirs out. At most [`Limits::connections_per_client`] from
//!   one client; more are closed on accept.
//! - **Time.** A request's headers must arrive within [`Limits::header_timeout_ms`] (also the
//!   longest a kept-alive connection idles), its body within [`Limits::body_timeout_ms`], and a
//!   client must read what it is sent within [`Limits::write_timeout_ms`].
//! - **Rates** per client, sizes and event streams: [`crate::guard`].

use crate::guard::{Client, Guard, Limits};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use kassa_node::Node;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
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
        let router = crate::metrics::measured(crate::app(node.clone(), guard.clone()), &node);
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

/// Accepts connections, makes room for each when full, and serves each on a task of its own.
async fn accept(listener: tokio::net::TcpListener, router: Router, guard: &Guard, cap: usize) {
    let limits = &guard.limits;
    let open = Open::default();
    let seats = Seats::default();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms))
        .max_buf_size(HEAD_BYTES_MAX.max(8192))
        // A response's head and its small body copied into one buffer and sent in one write,
        // not gathered from several (the API's answers are small).
        .writev(false);
    let write_timeout = Duration::from_millis(limits.write_timeout_ms);
    loop {
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
        let Some((id, activity)) = open.admit(cap) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteTimeout::new(stream, write_timeout));
        let router = router.clone();
        let tracked = activity.clone();
        let service = hyper::service::service_fn(move |mut req| {
            req.extensions_mut().insert(client);
            let busy = Busy::start(tracked.clone());
            let response = router.clone().oneshot(req);
            async move {
                let resp = response.await?;
                Ok::<_, std::convert::Infallible>(
                    resp.map(|body| axum::body::Body::new(Tracked { body, _busy: busy })),
                )
            }
        });
        let conn = http.serve_connection(io, service);
        let gone = Gone {
            open: open.clone(),
            id,
        };
        let task = tokio::spawn(async move {
            let _ = conn.await;
            drop((gone, seat));
        });
        let _ = activity.abort.set(task.abort_handle());
    }
}

/// The open connections, each with what it is doing, to find the one idle longest.
#[derive(Debug, Default, Clone)]
struct Open(Arc<Mutex<OpenInner>>);

#[derive(Debug, Default)]
struct OpenInner {
    next: u64,
    by_id: BTreeMap<u64, Arc<Activity>>,
}

impl Open {
    /// Registers a new connection, first closing the one idle longest if `cap` are open;
    /// `None` (the new one is to be closed) if all of them are busy.
    fn admit(&self, cap: usize) -> Option<(u64, Arc<Activity>)> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if open.by_id.len() >= cap {
            let (&victim, _) = open
                .by_id
                .iter()
                .filter(|(_, a)| a.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, a)| a.idle_since.load(Ordering::Acquire))?;
            let closed = open.by_id.remove(&victim).expect("present");
            if let Some(task) = closed.abort.get() {
                task.abort();
            }
        }
        let id = open.next;
        open.next += 1;
        let activity = Arc::new(Activity::new());
        open.by_id.insert(id, activity.clone());
        Some((id, activity))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).by_id.len()
    }
}

/// A connection's task is over (or was aborted): it no longer counts.
struct Gone {
    open: Open,
    id: u64,
}

impl Drop for Gone {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(|p| p.into_inner());
        open.by_id.remove(&self.id);
    }
}

/// What one connection is doing: requests in progress (a response being sent counts until its
/// last byte is), and since when it has had none.
#[derive(Debug)]
struct Activity {
    busy: AtomicUsize,
    idle_since: AtomicU64,
    abort: OnceLock<tokio::task::AbortHandle>,
}

/// Milliseconds on a clock shared by all connections.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Activity {
    fn new() -> Self {
        Activity {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now_ms()),
            abort: OnceLock::new(),
        }
    }
}

/// A request in progress on a connection, until its response's body is dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(now_ms(), Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until it is sent (or dropped).
struct Tracked {
    body: axum::body::Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
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

    #[tokio::test]
    async fn a_full_server_closes_the_connection_idle_longest_and_never_a_busy_one() {
        let open = Open::default();
        let (first, a) = open.admit(3).unwrap();
        let (_, b) = open.admit(3).unwrap();
        let (_, c) = open.admit(3).unwrap();
        let (task_a, task_b, task_c) = (
            tokio::spawn(std::future::pending::<()>()),
            tokio::spawn(std::future::pending::<()>()),
            tokio::spawn(std::future::pending::<()>()),
        );
        a.abort.set(task_a.abort_handle()).unwrap();
        b.abort.set(task_b.abort_handle()).unwrap();
        c.abort.set(task_c.abort_handle()).unwrap();
        // `a` is busy; `b` has been idle since before `c`.
        let _busy = Busy::start(a.clone());
        b.idle_since.store(0, Ordering::Release);
        c.idle_since.store(1, Ordering::Release);
        let (_, d) = open.admit(3).unwrap();
        assert!(task_b.await.unwrap_err().is_cancelled());
        assert_eq!(open.len(), 3);
        // Now `c` is the one idle longest.
        d.idle_since.store(u64::MAX, Ordering::Release);
        open.admit(3).unwrap();
        assert!(task_c.await.unwrap_err().is_cancelled());
        // With every connection busy, a new one is refused.
        let all_busy: Vec<Busy> = open
            .0
            .lock()
            .unwrap()
            .by_id
            .values()
            .map(|a| Busy::start(a.clone()))
            .collect();
        assert!(open.admit(3).is_none());
        drop(all_busy);
        assert!(!task_a.is_finished());
        // A connection that ends leaves the count.
        drop(Gone {
            open: open.clone(),
            id: first,
        });
        assert_eq!(open.len(), 2);
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
