//! Response compression (gzip, br, zstd, deflate, as the client accepts): tower-http's
//! `CompressionLayer`, except that an event stream keeps its body unwrapped.
//!
//! Why: the layer wraps every body in a `CompressionBody`, whose identity variant is
//! as large as its biggest encoder (5,824 bytes, massif on the release binary). For
//! most responses that lives for a few microseconds; for an SSE stream it lived as
//! long as the stream, which made it the largest single allocation of an idle SSE
//! client. The layer never compresses `text/event-stream` (its default predicate
//! excludes it), so for those the layer's decisions (status, headers) are taken on an
//! empty stand-in and the stream's own body is put back under them.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use tower::{Layer, ServiceExt};
use tower_http::compression::CompressionLayer;

pub async fn compress(request: Request, next: Next) -> Response {
    // What the layer reads from the request: only `Accept-Encoding`.
    let mut accepted = HeaderMap::new();
    for value in request.headers().get_all(header::ACCEPT_ENCODING) {
        accepted.append(header::ACCEPT_ENCODING, value.clone());
    }
    let response = next.run(request).await;
    if !is_event_stream(&response) {
        return through_layer(accepted, response).await;
    }
    let (parts, body) = response.into_parts();
    let (parts, _) = through_layer(accepted, Response::from_parts(parts, Body::empty()))
        .await
        .into_parts();
    Response::from_parts(parts, body)
}

async fn through_layer(accepted: HeaderMap, response: Response) -> Response {
    let mut request = Request::new(Body::empty());
    *request.headers_mut() = accepted;
    // `service_fn` takes an `FnMut`; `oneshot` calls it exactly once.
    let mut slot = Some(response);
    let produce = tower::service_fn(move |_: Request| {
        let response = slot.take().expect("oneshot calls the service once");
        async move { Ok::<_, Infallible>(response) }
    });
    match CompressionLayer::new()
        .layer(produce)
        .oneshot(request)
        .await
    {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}
