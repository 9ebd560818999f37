//! `POST /api/batch`: items run through the real router with the caller's identity,
//! CSRF state and rate limits; a bad item fails alone; no nesting.

use serde_json::{Value, json};
use switchboard::store::Backend;

use crate::helpers::{assert_envelope, json_with_status, spawn_app, spawn_app_with};

async fn batch(client: &reqwest::Client, url: String, requests: Value) -> (u16, Value) {
    let response = client
        .post(url)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn mixed_items_run_in_order_and_fail_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.create_user("Bob", "bob@example.com").await;
    let (status, items) = batch(
        &app.client,
        app.url("/api/batch"),
        json!([
            {"endpoint": format!("/api/users/{}", bob["id"])},
            {"endpoint": "/api/users", "method": "POST", "body": {"name": "Cara", "email": "cara@example.com"}},
            {"endpoint": "/api/users", "method": "POST", "body": {"name": "", "email": "not-an-email"}},
            {"endpoint": "/api/users?search=cara"},
            {"endpoint": format!("/api/users/{}/", bob["id"]), "method": "patch", "body": {"name": "Robert"}},
            {"endpoint": "/api/users/999999"},
            {"endpoint": format!("/api/users/{}", bob["id"]), "method": "DELETE"},
            {"endpoint": format!("/api/users/{}", bob["id"])},
            {"endpoint": "/api/hello", "method": "TRACE"},
            {"endpoint": "https://elsewhere.example/api/users"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{items}");
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 10);
    let statuses: Vec<u64> = items
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 201, 422, 200, 200, 404, 200, 404, 405, 400]);
    assert_eq!(items[0]["success"], true);
    assert_eq!(items[0]["data"]["name"], "Bob");
    assert_eq!(items[1]["data"]["email"], "cara@example.com");
    // The read after the write sees it: writes finish before later items start.
    assert_eq!(items[3]["data"][0]["name"], "Cara");
    assert_eq!(items[2]["success"], false);
    assert_eq!(items[2]["code"], "validation_failed");
    assert!(items[2]["fields"]["name"].is_string() && items[2]["fields"]["email"].is_string());
    assert!(items[2]["error"].is_string());
    assert_eq!(items[4]["data"]["name"], "Robert");
    assert_eq!(items[6]["data"]["message"], "User deleted successfully");
    assert_eq!(items[7]["code"], "not_found");
    // The failed create wrote nothing; the good one is there.
    let listed = json_with_status(app.get("/api/users?search=example.com").await, 200).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Cara") && !names.contains(&"Robert"),
        "{names:?}"
    );
}

async fn each_item_is_authorised_as_the_caller(backend: Backend) {
    let app = spawn_app(backend).await;
    let (member, client) = app.member("Mo", "mo@example.com").await;
    let (status, items) = batch(
        &client,
        app.url("/api/batch"),
        json!([
            {"endpoint": "/api/auth/me"},
            {"endpoint": "/api/users", "method": "POST", "body": {"name": "X", "email": "x@example.com"}},
            {"endpoint": format!("/api/users/{}", member["id"]), "method": "PATCH", "body": {"name": "Mo B"}},
            {"endpoint": "/metrics"},
        ]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(items[0]["data"]["email"], "mo@example.com");
    assert_eq!(items[1]["status"], 403);
    assert_eq!(items[1]["code"], "forbidden");
    assert_eq!(items[2]["status"], 200);
    // Only paths under /api/ can be batched.
    assert_eq!(items[3]["status"], 400);

    // No identity, no batch.
    let (status, body) = batch(&app.anonymous(), app.url("/api/batch"), json!([])).await;
    assert_eq!(status, 401);
    assert_envelope(&body, "unauthenticated");
}

async fn a_cross_site_batch_is_refused_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .post(app.url("/api/batch"))
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"requests": [{"endpoint": "/api/users", "method": "POST", "body": {"name": "X", "email": "x@example.com"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let listed = json_with_status(app.get("/api/users?search=x@example").await, 200).await;
    assert_eq!(listed, json!([]), "nothing written");
}

async fn every_item_spends_its_own_rate_limit(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate.write_per_second = 1).await;
    // A budget of 2 writes (burst = 2 x rate); the batch itself is a write.
    let requests: Vec<Value> = (0..4)
        .map(|i| json!({"endpoint": "/api/users", "method": "POST", "body": {"name": format!("R{i}"), "email": format!("r{i}@example.com")}}))
        .collect();
    let (status, items) = batch(&app.client, app.url("/api/batch"), json!(requests)).await;
    assert_eq!(status, 200, "{items}");
    let statuses: Vec<u64> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses[0], 201, "{statuses:?}");
    assert!(statuses[1..].contains(&429), "{statuses:?}");
    let limited = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["status"] == 429)
        .unwrap();
    assert_eq!(limited["code"], "rate_limited");
}

async fn nesting_and_oversized_batches_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, items) = batch(
        &app.client,
        app.url("/api/batch"),
        json!([
            {"endpoint": "/api/batch", "method": "POST", "body": {"requests": []}},
            {"endpoint": "/api/hello"},
        ]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(items[0]["status"], 400);
    assert_eq!(items[0]["code"], "nested_batch");
    assert_eq!(items[1]["status"], 200);

    let many: Vec<Value> = (0..51).map(|_| json!({"endpoint": "/api/hello"})).collect();
    let (status, body) = batch(&app.client, app.url("/api/batch"), json!(many)).await;
    assert_eq!(status, 422);
    assert_envelope(&body, "validation_failed");

    let body = json_with_status(
        app.post_json("/api/batch", &json!({"requests": "nope"}))
            .await,
        400,
    )
    .await;
    assert_envelope(&body, "invalid_body");
}

/// An endpoint that is no URI (a space in it) panicked the whole batch into a 500
/// after earlier items had been committed: now it is that item's own 400.
async fn an_endpoint_that_is_no_uri_fails_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, items) = batch(
        &app.client,
        app.url("/api/batch"),
        json!([
            {"endpoint": "/api/users", "method": "POST", "body": {"name": "Cara", "email": "cara@example.com"}},
            {"endpoint": "/api/users/1 2"},
            {"endpoint": "/api/users?search=a\u{0}b", "method": "GET"},
            {"endpoint": "/api/users?search=cara"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{items}");
    let statuses: Vec<u64> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 400, 200], "{items}");
    assert_eq!(items[1]["code"], "invalid_endpoint");
    assert_eq!(items[2]["code"], "invalid_endpoint");
    assert_eq!(items[3]["data"][0]["name"], "Cara");
}

/// Streams and long polls never answer on their own: each is refused as an item
/// instead of holding the batch until the request timeout turns it into a 503.
async fn streaming_endpoints_are_refused_per_item(backend: Backend) {
    let app = spawn_app(backend).await;
    let started = std::time::Instant::now();
    let (status, items) = batch(
        &app.client,
        app.url("/api/batch"),
        json!([
            {"endpoint": "/api/poll?room=general&last_id=0&timeout=30"},
            {"endpoint": "/api/events?rooms=general"},
            {"endpoint": "/api/rooms/general/events"},
            {"endpoint": "/api/rooms/general/events/"},
            {"endpoint": "/api/rooms/general/messages"},
            {"endpoint": "/stream"},
            {"endpoint": "/notifications"},
            {"endpoint": "/ws"},
            {"endpoint": "/socket.io/?EIO=4&transport=polling"},
            {"endpoint": "/api/send", "method": "POST", "body": {"text": "batched"}},
        ]),
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the batch waited on a stream: {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{items}");
    let outcomes: Vec<(u64, &str)> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["status"].as_u64().unwrap(),
                i["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let refused = (400, "not_batchable");
    let elsewhere = (400, "invalid_endpoint");
    assert_eq!(
        outcomes,
        [
            refused,
            refused,
            refused,
            refused,
            (200, ""),
            elsewhere,
            elsewhere,
            elsewhere,
            elsewhere,
            (201, "")
        ],
        "{items}"
    );
}

crate::on_both_backends!(
    an_endpoint_that_is_no_uri_fails_alone,
    streaming_endpoints_are_refused_per_item,
    mixed_items_run_in_order_and_fail_alone,
    each_item_is_authorised_as_the_caller,
    a_cross_site_batch_is_refused_whole,
    every_item_spends_its_own_rate_limit,
    nesting_and_oversized_batches_are_refused,
);
