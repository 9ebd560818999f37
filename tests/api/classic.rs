//! The classic tutorial's examples: `/api/hello`, `/api/data`, `/api/error`.

use serde_json::json;
use switchboard::store::Backend;

use crate::helpers::{assert_envelope, json_with_status, spawn_app};
use crate::on_both_backends;

async fn hello_greets(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        json_with_status(app.get("/api/hello").await, 200).await,
        json!({"message": "Hello, World!"})
    );
    assert_eq!(
        json_with_status(app.get("/api/hello?name=Zo%C3%AB").await, 200).await,
        json!({"message": "Hello, Zoë!"})
    );
}

async fn data_shows_each_type_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let text = app.get("/api/data").await.text().await.unwrap();
    // Decimals keep every digit: through f64 this would print 12345678901234568.
    assert!(text.contains(r#""balance":12345678901234567.89"#), "{text}");
    assert!(text.contains(r#""price":19.99"#), "{text}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    uuid::Uuid::parse_str(body["id"].as_str().unwrap()).expect("a UUID string");
    let created = body["created_at"].as_str().unwrap();
    assert_eq!(created.len(), "2026-11-23T19:38:33.123Z".len(), "{created}");
    assert!(created.ends_with('Z'));
    assert_eq!(body["date"].as_str().unwrap().len(), "2026-11-23".len());
    assert_eq!(
        body["tags"],
        json!(["ajax", "json", "python", "rust"]),
        "a set is a sorted array"
    );
}

async fn error_answers_the_envelope_with_the_status_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_envelope(
        &json_with_status(app.get("/api/error").await, 400).await,
        "example_error",
    );
    for (status, code) in [
        (401, "unauthenticated"),
        (404, "not_found"),
        (405, "method_not_allowed"),
        (410, "reset"),
        (413, "payload_too_large"),
        (415, "unsupported_media_type"),
        (422, "validation_failed"),
        (503, "unavailable"),
    ] {
        let body = json_with_status(
            app.get(&format!("/api/error?status={status}")).await,
            status,
        )
        .await;
        assert_envelope(&body, code);
    }
    let response = app.get("/api/error?status=429").await;
    assert_eq!(response.headers()["retry-after"], "1");
    let response = app.get("/api/error?status=405").await;
    assert_eq!(response.headers()["allow"], "GET");
    assert_envelope(
        &json_with_status(app.get("/api/error?status=999").await, 400).await,
        "invalid_query",
    );
}

on_both_backends!(
    hello_greets,
    data_shows_each_type_exactly,
    error_answers_the_envelope_with_the_status_asked
);
