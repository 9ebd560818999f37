//! Deadlines on a connection while it is not serving a request: the first request's
//! head must arrive within the header timeout of the connection's opening, the next
//! one's within the header timeout of its first byte, and a keep-alive connection
//! with no request for the idle timeout is closed. A connection busy with a request
//! (a slow handler, an SSE stream, a long poll) has no deadline here: those end by
//! the request timeout or by their own heartbeats. Nor has a connection once it is
//! upgraded (a WebSocket): the socket is then the application's.
//!
//! Two halves share one [`Watch`] per connection: [`TimedService`] wraps the
//! application and counts requests in flight (from the call to the end of the
//! response body), and [`TimedIo`] wraps the socket and, when a read would wait
//! while nothing is in flight, waits no longer than the deadline. At the deadline
//! the read ends as if the client had closed: hyper flushes what it has written and
//! closes the connection. Working on the socket, below TLS, HTTP/1 and HTTP/2, the
//! same code covers a silent connection, a TLS handshake that never finishes, a
//! request line sent a byte a second, and an idle keep-alive connection.
//!
//! Why not hyper's `header_read_timeout`: it starts when hyper waits for a head, so
//! it also ends idle keep-alive connections at the header timeout (there would be no
//! separate idle timeout), and it does not cover HTTP/2 or the TLS handshake.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::slots::Slot;

/// A connection's timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// For a request's head (and the first one's TLS handshake and protocol preface).
    pub header: Duration,
    /// For the next request on a kept-alive connection.
    pub idle: Duration,
}

/// What a connection's reader and its service both see.
#[derive(Debug)]
pub struct Watch {
    state: Mutex<State>,
    timeouts: Timeouts,
    /// Health probes only (a reserve slot): every other request gets a bare 503.
    health_only: bool,
}

#[derive(Debug)]
struct State {
    /// Requests called and not yet answered to the end of their body.
    in_flight: usize,
    /// Since when nothing has been in flight (the connection's opening at first).
    idle_since: Instant,
    /// Whether a request has been served: before that, the header timeout applies
    /// from the opening, after it the idle timeout.
    served: bool,
    /// When the first byte of the next request arrived (HTTP/1 only; HTTP/2 sends
    /// pings and window updates between requests).
    head_started: Option<Instant>,
    http2: bool,
    /// Upgraded (a WebSocket, or HTTP/2's extended CONNECT): no deadlines any more.
    upgraded: bool,
}

impl Watch {
    /// The watch of a connection accepted now.
    pub fn new(timeouts: Timeouts, health_only: bool) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                served: false,
                head_started: None,
                http2: false,
                upgraded: false,
            }),
            timeouts,
            health_only,
        })
    }

    /// When the first request's head must be complete: the header timeout from the
    /// connection's opening.
    pub fn first_request_deadline(&self) -> Instant {
        self.state().idle_since + self.timeouts.header
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counts half-updated.
        crate::sync::lock(&self.state)
    }

    /// When the connection must have done better. `got_bytes`: the read that asks
    /// has just received some.
    fn deadline(&self, now: Instant, got_bytes: bool) -> Due {
        let mut state = self.state();
        if state.upgraded {
            return Due::Never;
        }
        if state.in_flight > 0 {
            return Due::Busy;
        }
        if got_bytes && state.head_started.is_none() && !state.http2 {
            state.head_started = Some(now);
        }
        let idle = if state.served && !self.health_only {
            self.timeouts.idle
        } else if state.served {
            // A reserve connection has had its answer; it is given a moment to take
            // it, not another request.
            Duration::from_millis(100)
        } else {
            self.timeouts.header
        };
        let quiet = state.idle_since + idle;
        Due::At(match state.head_started {
            Some(started) => quiet.min(started + self.timeouts.header),
            None => quiet,
        })
    }
}

/// What [`Watch::deadline`] says of a connection.
enum Due {
    /// A request is in flight: no deadline until it is answered.
    Busy,
    /// Upgraded: no deadline any more.
    Never,
    At(Instant),
}

/// A request in flight; dropped with the end (or the abandonment) of its response.
struct Busy(Arc<Watch>);

impl Busy {
    fn start(watch: &Arc<Watch>, version: Version) -> Self {
        let mut state = watch.state();
        state.in_flight += 1;
        state.head_started = None;
        state.http2 |= version == Version::HTTP_2;
        drop(state);
        Self(watch.clone())
    }

    fn upgraded(&self) {
        self.0.state().upgraded = true;
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.served = true;
        }
    }
}

// ---- the socket ---------------------------------------------------------------

/// A socket whose reads end at the connection's deadline. It also holds the
/// connection's [`Slot`], so the slot is free again exactly when the socket closes,
/// upgraded or not.
pub struct TimedIo<IO> {
    io: IO,
    watch: Arc<Watch>,
    /// Reset to each new deadline; allocated once per connection, dropped once the
    /// connection is upgraded. Why dropped: the timer keeps the waker of the task
    /// that last polled it, the HTTP connection's, which has ended by then; that
    /// waker would keep the ended task's memory (about 2 KiB) until the deadline
    /// passed, for every new WebSocket.
    timer: Option<Pin<Box<Sleep>>>,
    _slot: Slot,
}

impl<IO> TimedIo<IO> {
    pub fn new(io: IO, watch: Arc<Watch>, slot: Slot) -> Self {
        Self {
            io,
            watch,
            timer: Some(Box::pin(tokio::time::sleep(Duration::ZERO))),
            _slot: slot,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for TimedIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        let got_bytes = matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        let now = Instant::now();
        let deadline = match this.watch.deadline(now, got_bytes) {
            Due::At(deadline) => deadline,
            Due::Busy => return read,
            Due::Never => {
                this.timer = None;
                return read;
            }
        };
        if deadline <= now {
            // Too late: the bytes are dropped and the client is treated as gone.
            buf.set_filled(before);
            tracing::debug!("closing a connection that sent no complete request in time");
            return Poll::Ready(Ok(()));
        }
        if read.is_pending() {
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_ready() {
                tracing::debug!("closing a connection that sent no complete request in time");
                return Poll::Ready(Ok(()));
            }
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for TimedIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

// ---- the service --------------------------------------------------------------

/// The application as one connection sees it: counts its requests in flight, notes
/// an upgrade, and on a reserve connection answers only the health probes.
#[derive(Clone)]
pub struct TimedService<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S> TimedService<S> {
    pub fn new(inner: S, watch: Arc<Watch>) -> Self {
        Self { inner, watch }
    }
}

/// The paths a reserve connection is served.
fn is_health_probe<B>(request: &Request<B>) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && matches!(request.uri().path(), "/healthz" | "/readyz")
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<Request<B>> for TimedService<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let version = request.version();
        let busy = Busy::start(&self.watch, version);
        let health_only = self.watch.health_only;
        if health_only && !is_health_probe(&request) {
            return Box::pin(std::future::ready(Ok(over_capacity(version, busy))));
        }
        let connect = request.method() == Method::CONNECT;
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if response.status() == StatusCode::SWITCHING_PROTOCOLS
                || (connect && response.status().is_success())
            {
                busy.upgraded();
            }
            if health_only && version <= Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| Body::new(Tracked { body, _busy: busy })))
        })
    }
}

/// The answer on a reserve connection to anything but a health probe: no body, so
/// it costs nothing to send, and a hint to come back later.
fn over_capacity(version: Version, busy: Busy) -> Response<Body> {
    let mut response = Response::new(Body::new(Tracked {
        body: Body::empty(),
        _busy: busy,
    }));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    if version <= Version::HTTP_11 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A response body that keeps its request counted as in flight until it is done.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    //! On real time (tokio's paused clock needs its `test-util` feature, which would
    //! build tokio and everything on it twice): short timeouts, loose upper bounds.
    use super::*;
    use crate::edge::slots::Slots;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUTS: Timeouts = Timeouts {
        header: Duration::from_millis(300),
        idle: Duration::from_millis(600),
    };
    /// Scheduling slack on a busy machine.
    const SLACK: Duration = Duration::from_millis(400);

    fn timed(watch: &Arc<Watch>) -> (TimedIo<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, client) = tokio::io::duplex(1024);
        let slot = Slots::new(1).admit().unwrap();
        (TimedIo::new(server, watch.clone(), slot), client)
    }

    fn about(elapsed: Duration, expected: Duration) {
        assert!(
            elapsed >= expected && elapsed < expected + SLACK,
            "{elapsed:?}, expected {expected:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_connection_ends_at_the_header_timeout() {
        let watch = Watch::new(TIMEOUTS, false);
        let (mut io, _client) = timed(&watch);
        let started = Instant::now();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        about(started.elapsed(), TIMEOUTS.header);
    }

    #[tokio::test]
    async fn a_head_trickling_in_still_ends_at_the_header_timeout() {
        let watch = Watch::new(TIMEOUTS, false);
        let (mut io, mut client) = timed(&watch);
        let started = Instant::now();
        let mut buf = [0u8; 64];
        loop {
            client.write_all(b"G").await.unwrap();
            if io.read(&mut buf).await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(started.elapsed() < TIMEOUTS.header + SLACK);
    }

    #[tokio::test]
    async fn busy_connections_have_no_deadline_and_idle_ones_get_the_idle_timeout() {
        let watch = Watch::new(TIMEOUTS, false);
        let (mut io, mut client) = timed(&watch);
        let mut buf = [0u8; 64];
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert!(io.read(&mut buf).await.unwrap() > 0);
        let busy = Busy::start(&watch, Version::HTTP_11);
        // An SSE stream or a long poll: well past both timeouts, the read just waits.
        let waited = tokio::time::timeout(3 * TIMEOUTS.idle, io.read(&mut buf)).await;
        assert!(waited.is_err(), "a busy connection was closed");
        drop(busy);
        let idle_from = Instant::now();
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
        about(idle_from.elapsed(), TIMEOUTS.idle);
    }

    #[tokio::test]
    async fn an_upgraded_connection_has_no_deadline() {
        let watch = Watch::new(TIMEOUTS, false);
        let (mut io, _client) = timed(&watch);
        let busy = Busy::start(&watch, Version::HTTP_11);
        busy.upgraded();
        drop(busy);
        let mut buf = [0u8; 64];
        let waited = tokio::time::timeout(3 * TIMEOUTS.idle, io.read(&mut buf)).await;
        assert!(waited.is_err(), "an upgraded connection was closed");
    }

    #[tokio::test]
    async fn an_upgraded_connection_lets_go_of_its_timer() {
        let watch = Watch::new(TIMEOUTS, false);
        let (mut io, mut client) = timed(&watch);
        let mut buf = [0u8; 64];
        // Waiting for the first request arms the timer with this task's waker.
        let waited = tokio::time::timeout(Duration::from_millis(20), io.read(&mut buf)).await;
        assert!(waited.is_err());
        assert!(io.timer.is_some());
        let busy = Busy::start(&watch, Version::HTTP_11);
        busy.upgraded();
        drop(busy);
        // The first read of the upgraded socket (the WebSocket's task) drops it.
        client.write_all(b"frame").await.unwrap();
        assert_eq!(io.read(&mut buf).await.unwrap(), 5);
        assert!(io.timer.is_none(), "the timer and its stale waker are kept");
    }
}
