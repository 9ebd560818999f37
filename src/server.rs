//! The plain-HTTP accept loop (HTTPS goes through axum-server, see [`crate::App::serve`]):
//! what `axum::serve` does (connect info, HTTP/1.1 with upgrades, h2c, graceful
//! shutdown), minus one buffer per connection.
//!
//! Why not `axum::serve`: it serves every connection with hyper-util's auto builder,
//! which first reads up to 24 bytes to tell the HTTP/2 preface from HTTP/1 and then
//! hands them to hyper as a read of their own. hyper's HTTP/1 read buffer (8 KiB)
//! holds those bytes when the rest of the request arrives, so reserving another 8 KiB
//! doubles it to 16 KiB, and hyper keeps that buffer for the life of the connection:
//! every idle keep-alive, SSE and long-poll connection carried 8 KiB more than
//! hyper's own minimum (massif, 100 idle connections: 16,384 B each from
//! `Buffered::poll_read_from_io`; with this loop, 8,192). Here the first bytes are
//! *peeked* instead (left in the socket): a connection whose first bytes cannot
//! start the HTTP/2 preface goes straight to HTTP/1, and hyper's first read gets the
//! whole request. Anything that might be the preface takes the auto builder's path
//! as before.
//!
//! Every connection first gets a slot and its deadlines from [`crate::edge`]: past
//! the cap it is closed at once, and the peek waits no longer than the header
//! timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

use crate::edge::{Admitted, Edge};

/// The HTTP/2 client preface (RFC 9113, 3.4): h2c with prior knowledge starts with it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `app` on `listener` until `signal` completes, then stops accepting, asks
/// every open connection to finish its in-flight requests and close, and returns
/// once they have all closed. Like `axum::serve(..).with_graceful_shutdown(..)`,
/// it does not end long-lived responses itself: their handlers watch the app's
/// shutdown token.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    edge: Edge,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    // Dropping the receiver tells every connection task to shut down gracefully.
    let (stop_tx, stop_rx) = watch::channel(());
    tokio::spawn(async move {
        signal.await;
        drop(stop_rx);
    });
    let tracker = TaskTracker::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            _ = stop_tx.closed() => break,
        };
        // Over the cap: closed now, before it costs a task.
        let Some(admitted) = edge.admit() else {
            drop(stream);
            continue;
        };
        let app = app.clone();
        let stop = stop_tx.clone();
        tracker.spawn(connection(
            stream,
            remote,
            admitted,
            app,
            edge.clone(),
            stop,
        ));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// As `axum::serve`: errors of one connection (reset, aborted) are that connection's
/// business; anything else (out of file descriptors) pauses accepting for a second
/// rather than spinning.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; pausing for a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

async fn connection<S>(
    stream: TcpStream,
    remote: SocketAddr,
    admitted: Admitted,
    app: S,
    edge: Edge,
    stop: watch::Sender<()>,
) where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    // Realtime frames are small and must leave at once: Nagle's algorithm would hold
    // one back while the previous is unacknowledged (up to the client's delayed ACK).
    if let Err(error) = stream.set_nodelay(true) {
        tracing::trace!(%error, "could not set TCP_NODELAY");
    }
    // The first bytes decide the protocol; a client that sends nothing within the
    // header timeout, or before shutdown, is simply dropped.
    let deadline = admitted.first_request_deadline();
    let http1 = tokio::select! {
        http1 = tokio::time::timeout_at(deadline, surely_http1(&stream)) => match http1 {
            Ok(Ok(http1)) => http1,
            Ok(Err(_)) | Err(_) => return,
        },
        _ = stop.closed() => return,
    };
    let service = app.map_request(move |request: Request<hyper::body::Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(remote));
        request
    });
    let (io, service) = admitted.serve(stream, service);
    let service = TowerToHyperService::new(service);
    let io = TokioIo::new(io);
    if http1 {
        // hyper's own HTTP/1 builder: the auto builder's `http1_only` is ignored by
        // `serve_connection_with_upgrades`, which would still read the version first.
        // No timer, on purpose: hyper's header timeout would also end idle
        // keep-alive connections at 30 s; the edge's deadlines do both jobs.
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .with_upgrades();
        drive(conn, &stop, |conn| conn.graceful_shutdown()).await;
    } else {
        let mut builder = Builder::new(TokioExecutor::new());
        // CONNECT protocol: WebSocket over HTTP/2 (as axum::serve sets it).
        // Pings find clients that vanished while a stream (SSE) was open.
        let (interval, timeout) = edge.http2_keep_alive();
        builder
            .http2()
            .enable_connect_protocol()
            .timer(TokioTimer::new())
            .keep_alive_interval(interval)
            .keep_alive_timeout(timeout);
        let conn = builder.serve_connection_with_upgrades(io, service);
        drive(conn, &stop, |conn| conn.graceful_shutdown()).await;
    }
}

/// Runs one connection to its end, asking it once to shut down gracefully (finish
/// what is in flight, then close) when the server stops.
async fn drive<C, E>(conn: C, stop: &watch::Sender<()>, graceful: impl Fn(Pin<&mut C>))
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = std::pin::pin!(conn);
    let mut stopping = std::pin::pin!(stop.closed());
    let mut asked = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
                return;
            }
            _ = &mut stopping, if !asked => {
                asked = true;
                graceful(conn.as_mut());
            }
        }
    }
}

/// Whether the connection's first bytes rule out the HTTP/2 preface. Peeked, not
/// read: they stay in the socket for hyper's first read.
async fn surely_http1(stream: &TcpStream) -> std::io::Result<bool> {
    let mut first = [0u8; H2_PREFACE.len()];
    let n = stream.peek(&mut first).await?;
    Ok(rules_out_h2(&first[..n]))
}

/// `true` when `first` (a non-empty start of the stream) is not a prefix of the
/// preface. A short prefix of it is not enough to decide: the auto builder reads on.
fn rules_out_h2(first: &[u8]) -> bool {
    let n = first.len().min(H2_PREFACE.len());
    n > 0 && first[..n] != H2_PREFACE[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bytes_that_cannot_start_the_preface_skip_detection() {
        assert!(rules_out_h2(b"GET / HTTP/1.1\r\n"));
        assert!(rules_out_h2(b"POST"));
        assert!(rules_out_h2(b"PUT /x"));
        assert!(!rules_out_h2(H2_PREFACE));
        assert!(!rules_out_h2(b"PRI * HT"));
        assert!(!rules_out_h2(b"P"));
        // Nothing peeked (the client closed): let hyper see the end of stream.
        assert!(!rules_out_h2(b""));
    }
}
