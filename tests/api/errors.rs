//! The one error envelope, on every failure the foundation can produce.

use std::time::Duration;

use serde_json::json;
use switchboard::store::Backend;

use crate::helpers::{TestApp, assert_envelope, json_with_status, logs, spawn_app, spawn_app_with};
use crate::on_both_backends;

async fn malformed_json_is_a_400_that_says_where(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/api/users"))
        .header("content-type", "application/json")
        .body(r#"{"name": "A", "email": }"#)
        .send()
        .await
        .unwrap();
    let body = json_with_status(response, 400).await;
    assert_envelope(&body, "malformed_json");
    assert!(
        body["error"].as_str().unwrap().contains("line 1 column"),
        "{body}"
    );
}

async fn a_body_that_is_not_an_object_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = json_with_status(app.post_json("/api/users", &json!(["a", "b"])).await, 400).await;
    assert_envelope(&body, "invalid_body");
}

async fn json_endpoints_want_a_json_content_type(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = r#"{"name": "A", "email": "a@example.com"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app.client.post(app.url("/api/users")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let body = json_with_status(request.send().await.unwrap(), 415).await;
        assert_envelope(&body, "unsupported_media_type");
        assert_eq!(body["error"], "Content-Type must be application/json");
    }
}

async fn unknown_routes_and_ids_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/api/nope",
        "/nope",
        "/api/users/12345",
        "/api/users/abc",
        "/api/users/1/nope",
    ] {
        let body = json_with_status(app.get(path).await, 404).await;
        assert_envelope(&body, "not_found");
    }
}

async fn a_wrong_method_is_405_with_allow(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.delete("/api/users").await;
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    let body = json_with_status(response, 405).await;
    assert_envelope(&body, "method_not_allowed");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let response = app
        .client
        .post(app.url("/api/autocomplete"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

async fn a_body_over_the_limit_is_413_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.http.max_body_bytes = 1024).await;
    let name = "n".repeat(2000);
    let body = json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": name, "email": "big@example.com"}),
        )
        .await,
        413,
    )
    .await;
    assert_envelope(&body, "payload_too_large");
    let list = json_with_status(app.get("/api/users?search=big@").await, 200).await;
    assert_eq!(list, json!([]));
}

async fn internal_errors_hide_their_cause_and_log_it_with_the_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/api/error?status=500").await;
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = json_with_status(response, 500).await;
    assert_envelope(&body, "internal");
    assert_eq!(body["error"], "Internal server error");
    assert!(
        !body.to_string().contains("example internal error"),
        "no internals: {body}"
    );
    assert_eq!(body["request_id"], header_id.as_str());
    // Other tests log the same cause; this request's line is the one with its id.
    let logged = logs();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("example internal error") && l.contains(&header_id)),
        "the cause is logged with request id {header_id}"
    );
}

async fn a_closed_database_is_503_not_500(backend: Backend) {
    let app = spawn_app(backend).await;
    app.state.store.close().await;
    let body = json_with_status(app.get("/api/users").await, 503).await;
    assert_envelope(&body, "unavailable");
    let body = json_with_status(app.get("/readyz").await, 503).await;
    assert_envelope(&body, "unavailable");
    json_with_status(app.get("/healthz").await, 200).await;
}

/// Holds the users table locked from outside the app, so a write waits.
async fn lock_users_table(app: &TestApp) -> Box<dyn std::any::Any + Send> {
    match app.backend {
        Backend::Sqlite => {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        }
    }
}

async fn a_request_over_the_timeout_is_503(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.http.request_timeout_secs = 1).await;
    let lock = lock_users_table(&app).await;
    let started = std::time::Instant::now();
    let body = json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": "Slow", "email": "slow@example.com"}),
        )
        .await,
        503,
    )
    .await;
    assert_envelope(&body, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered at the timeout, not after the lock"
    );
    drop(lock);
}

async fn every_response_carries_a_request_id_and_keeps_a_given_one(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/api/users", "/nope", "/healthz"] {
        let response = app.get(path).await;
        assert!(!response.headers()["x-request-id"].is_empty(), "{path}");
    }
    let response = app
        .client
        .get(app.url("/api/nope"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc.123");
    let body = json_with_status(response, 404).await;
    assert_eq!(body["request_id"], "trace-abc.123");
    // An id that could forge log lines is replaced, not kept.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "a b\tc");
}

on_both_backends!(
    malformed_json_is_a_400_that_says_where,
    a_body_that_is_not_an_object_is_a_400,
    json_endpoints_want_a_json_content_type,
    unknown_routes_and_ids_are_404,
    a_wrong_method_is_405_with_allow,
    a_body_over_the_limit_is_413_and_nothing_is_stored,
    internal_errors_hide_their_cause_and_log_it_with_the_request_id,
    a_closed_database_is_503_not_500,
    a_request_over_the_timeout_is_503,
    every_response_carries_a_request_id_and_keeps_a_given_one,
);
