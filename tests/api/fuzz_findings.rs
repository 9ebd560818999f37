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

/// `GET /api/rooms/{room}/messages?since=0&before=<not an i64>` answered 200: with
/// `since` given, `before` was never read, so its mistake went unsaid.
async fn a_malformed_before_is_refused_even_beside_since(backend: Backend) {
    let app = spawn_app(backend).await;
    for query in [
        "since=0&before=-4509863348876270123680282411463081984",
        "before=x&since=3",
        "before=1.5",
    ] {
        let response = app
            .get(&format!("/api/rooms/general/messages?{query}"))
            .await;
        assert_envelope(&json_with_status(response, 400).await, "invalid_position");
    }
    let fine = app
        .get("/api/rooms/general/messages?since=0&before=9")
        .await;
    json_with_status(fine, 200).await;
}

/// The document said nothing against control characters in search needles, which
/// the server refuses (400 `invalid_query`): each needle parameter now has a pattern
/// that excludes them, so a client that follows the document is not refused.
async fn needle_parameters_document_the_control_character_rule(backend: Backend) {
    let app = spawn_app(backend).await;
    let document = json_with_status(app.get("/api/openapi.json").await, 200).await;
    for (path, name) in [
        ("/api/users", "search"),
        ("/api/search", "q"),
        ("/api/autocomplete", "q"),
    ] {
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap();
        let parameter = parameters.iter().find(|p| p["name"] == name).unwrap();
        let pattern = parameter["schema"]["pattern"].as_str().unwrap_or_default();
        assert!(
            pattern.contains(r"\u0000-\u001F"),
            "{path} {name}: {pattern:?}"
        );
        let refused = app.get(&format!("{path}?{name}=a%01b")).await;
        assert_envelope(&json_with_status(refused, 400).await, "invalid_query");
    }
}

crate::on_both_backends!(
    a_blank_cursor_is_the_first_page,
    token_names_with_control_characters_are_refused,
    a_malformed_before_is_refused_even_beside_since,
    needle_parameters_document_the_control_character_rule,
);
