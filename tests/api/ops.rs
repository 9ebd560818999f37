//! Health, readiness, metrics, compression and graceful shutdown.

use serde_json::json;
use switchboard::store::Backend;

use crate::helpers::{json_with_status, spawn_app};
use crate::on_both_backends;

async fn health_and_readiness_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        json_with_status(app.get("/healthz").await, 200).await,
        json!({"status": "ok"})
    );
    let ready = json_with_status(app.get("/readyz").await, 200).await;
    assert_eq!(ready["status"], "ready");
    let expected = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(ready["store"], expected);
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/api/users/424242").await;
    app.get("/api/users/424243").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    let counter = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/api/users/{id}""#)
                && l.contains(r#"status="404""#)
        })
        .unwrap_or_else(|| panic!("no counter for /api/users/{{id}} 404 in:\n{text}"));
    let count: f64 = counter.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 2.0, "{counter}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "a latency histogram"
    );
    assert!(!text.contains("424242"), "raw paths never become labels");
}

async fn responses_are_compressed_as_the_client_asks(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..5 {
        app.create_user(&format!("Compressible {i}"), &format!("c{i}@example.com"))
            .await;
    }
    for encoding in ["gzip", "br", "zstd"] {
        let response = app
            .client
            .get(app.url("/api/users"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-encoding"], encoding);
    }
    let response = app.get("/api/users").await;
    assert!(
        response.headers().get("content-encoding").is_none(),
        "identity unless asked"
    );
}

async fn shutdown_finishes_open_requests_and_stops(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.url("/api/users");
    json_with_status(app.get("/api/users").await, 200).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), app.shutdown())
        .await
        .expect("shutdown finishes in time")
        .expect("serve returns Ok");
    crate::helpers::install_crypto();
    assert!(reqwest::get(url).await.is_err(), "no longer accepting");
}

/// Plain HTTP speaks HTTP/1.1 and h2c with prior knowledge on one port: the accept
/// loop peeks at the first bytes to tell them apart (`switchboard::server`), and the
/// client's address still reaches the handlers (the rate limiter's key).
async fn plain_http_serves_http1_and_h2c(backend: Backend) {
    let app = spawn_app(backend).await;
    crate::helpers::install_crypto();
    for (client, version) in [
        (
            reqwest::Client::builder().http1_only().build().unwrap(),
            reqwest::Version::HTTP_11,
        ),
        (
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap(),
            reqwest::Version::HTTP_2,
        ),
    ] {
        for _ in 0..2 {
            let response = client.get(app.url("/healthz")).send().await.unwrap();
            assert_eq!(response.version(), version);
            assert_eq!(
                json_with_status(response, 200).await,
                json!({"status": "ok"})
            );
        }
    }
}

/// An event stream is never compressed, whatever the client accepts, and still
/// carries the headers every response gets.
async fn event_streams_are_not_compressed(backend: Backend) {
    use futures_util::StreamExt;
    let app = spawn_app(backend).await;
    let response = app
        .client
        .get(app.url("/api/rooms/plain/events"))
        .header("accept-encoding", "gzip, br, zstd")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("content-encoding").is_none());
    assert!(response.headers().get("x-request-id").is_some());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
        .await
        .expect("the stream starts")
        .expect("a first chunk")
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains(": connected"));
}

on_both_backends!(
    health_and_readiness_answer,
    plain_http_serves_http1_and_h2c,
    event_streams_are_not_compressed,
    metrics_count_requests_by_route_and_status,
    responses_are_compressed_as_the_client_asks,
    shutdown_finishes_open_requests_and_stops,
);
