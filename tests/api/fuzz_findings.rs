//! What `scripts/fuzz-api` (schemathesis against the OpenAPI document) found, each
//! kept as a regression test.

use serde_json::json;
use switchboard::store::Backend;

use crate::helpers::{assert_envelope, json_with_status, spawn_app};

/// `GET /api/users?cursor=` was a 400 "not a cursor this server gave out", though the
/// document lets a client send an empty string: a blank cursor is the first page, as
/// a blank search is no search.
async fn a_blank_cursor_is_the_first_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("Ann", "ann@example.com").await;
    let first = json_with_status(app.get("/api/users?limit=1").await, 200).await;
    for blank in ["", "%20"] {
        let page = json_with_status(
            app.get(&format!("/api/users?limit=1&cursor={blank}")).await,
            200,
        )
        .await;
        assert_eq!(page, first, "cursor={blank:?}");
    }
    // A cursor that is not blank must still be one the server gave out.
    let response = app.get("/api/users?cursor=nope").await;
    assert_envelope(&json_with_status(response, 400).await, "invalid_cursor");
}

/// A token name took any character, NUL included (which PostgreSQL refuses in text);
/// the document says what names are: no control characters.
async fn token_names_with_control_characters_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for name in ["a\u{0}b", "line\nbreak", "\u{7f}"] {
        let response = app.post_json("/api/tokens", &json!({"name": name})).await;
        let body = json_with_status(response, 422).await;
        assert_envelope(&body, "validation_failed");
        assert_eq!(
            body["fields"]["name"],
            "must not contain control characters"
        );
    }
    let fine = app
        .post_json("/api/tokens", &json!({"name": "  deploy script  "}))
        .await;
    assert_eq!(json_with_status(fine, 201).await["name"], "deploy script");
}

crate::on_both_backends!(
    a_blank_cursor_is_the_first_page,
    token_names_with_control_characters_are_refused,
);
