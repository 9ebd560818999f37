//! Conditional GETs: JSON reads carry an `ETag` and private `Cache-Control`; the same
//! tag in `If-None-Match` gets 304 until the data changes.

use serde_json::json;
use switchboard::store::Backend;

use crate::helpers::{TestApp, json_with_status, spawn_app};

async fn tag_of(app: &TestApp, path: &str) -> String {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let headers = response.headers();
    assert_eq!(headers["cache-control"], "private, no-cache", "{path}");
    headers["etag"].to_str().unwrap().to_owned()
}

async fn revalidate(app: &TestApp, path: &str, tag: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("if-none-match", tag)
        .send()
        .await
        .unwrap()
}

async fn unchanged_data_is_304_and_a_change_is_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.create_user("Etta", "etta@example.com").await;
    let id = &user["id"];
    for path in [
        format!("/api/users/{id}"),
        format!("/api/users/{id}/profile"),
        "/api/users?limit=10".to_owned(),
        "/api/users?search=etta".to_owned(),
    ] {
        let tag = tag_of(&app, &path).await;
        assert!(tag.starts_with("W/\""), "{tag}");
        let response = revalidate(&app, &path, &tag).await;
        assert_eq!(response.status(), 304, "{path}");
        assert_eq!(response.headers()["etag"].to_str().unwrap(), tag);
        assert!(response.bytes().await.unwrap().is_empty());
        // The strong form of the same tag matches too (weak comparison).
        let strong = tag.trim_start_matches("W/");
        assert_eq!(revalidate(&app, &path, strong).await.status(), 304);
        assert_eq!(revalidate(&app, &path, "\"stale\"").await.status(), 200);
    }

    let path = format!("/api/users/{id}");
    let before = tag_of(&app, &path).await;
    let list_before = tag_of(&app, "/api/users?limit=10").await;
    json_with_status(app.patch_json(&path, &json!({"name": "Etta J"})).await, 200).await;
    let response = revalidate(&app, &path, &before).await;
    assert_eq!(response.status(), 200, "the data changed");
    let after = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(after, before);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["name"],
        "Etta J"
    );
    assert_eq!(
        revalidate(&app, "/api/users?limit=10", &list_before)
            .await
            .status(),
        200
    );
}

async fn writes_and_errors_are_not_tagged(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_json(
            "/api/users",
            &json!({"name": "W", "email": "w@example.com"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert!(!response.headers().contains_key("etag"));
    let response = app.get("/api/users/999999").await;
    assert_eq!(response.status(), 404);
    assert!(!response.headers().contains_key("etag"));
}

crate::on_both_backends!(
    unchanged_data_is_304_and_a_change_is_200,
    writes_and_errors_are_not_tagged,
);
