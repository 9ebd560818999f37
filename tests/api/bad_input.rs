//! Hostile input from issue 17: control characters in query parameters and bodies,
//! realtime query errors in the envelope, oversized forms, duplicates by index, and
//! names that would reorder or hide text. Each is a clear 4xx, never a 500.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use switchboard::error::ApiError;
use switchboard::store::{Backend, StoreError, Unique};

use crate::helpers::{assert_envelope, json_with_status, spawn_app};

async fn status_and_body(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// A NUL in a needle was a 500 on both backends (FTS5: "unterminated string";
/// PostgreSQL: no NUL in text); any control character is now a 400.
async fn control_characters_in_search_needles_are_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("Abby", "abby@example.com").await;
    for path in [
        "/api/search?q=a%00b",
        "/api/search?q=%00",
        "/api/search?q=ab%01cd",
        "/api/users?search=%00",
        "/api/users?search=a%00bcd",
        "/api/users?search=ab%00",
        "/api/autocomplete?q=a%00b",
        "/api/autocomplete?q=ab%00",
        "/api/autocomplete?q=%00%00%00",
    ] {
        let body = json_with_status(app.get(path).await, 400).await;
        assert_envelope(&body, "invalid_query");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("control characters"),
            "{path}: {body}"
        );
    }
    // The HTML directory's search box: its own error page, with a 400.
    let response = app
        .client
        .get(app.url("/?search=a%00bc"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("control characters"), "{body}");
    // Needles without them still work, spaces around them still trimmed.
    let found = json_with_status(app.get("/api/search?q=%20ab%20").await, 200).await;
    assert_eq!(found[0]["name"], "Abby");
    let found = json_with_status(app.get("/api/autocomplete?q=ab").await, 200).await;
    assert_eq!(found, json!(["Abby"]));
}

/// A NUL that reached PostgreSQL from a body was a 500 (SQLite stored it): a login
/// email and a token name. Same answer on both backends now.
async fn nul_characters_in_bodies_are_refused_alike_on_both_backends(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .anonymous()
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "admin@example.com\u{0}", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_envelope(
        &json_with_status(response, 401).await,
        "invalid_credentials",
    );
    let body = json_with_status(
        app.post_json("/api/tokens", &json!({"name": "ci\u{0}bot"}))
            .await,
        422,
    )
    .await;
    assert_eq!(
        body["fields"]["name"],
        "must not contain control characters"
    );
    let body = json_with_status(
        app.post_json("/api/tokens", &json!({"name": "ci\u{202E}bot"}))
            .await,
        422,
    )
    .await;
    assert!(
        body["fields"]["name"]
            .as_str()
            .unwrap()
            .contains("bidirectional"),
        "{body}"
    );
}

/// The realtime routes used axum's own `Query`: its rejection became a generic
/// `bad_request` "Failed to deserialize query string". Now `invalid_query`, as
/// everywhere else.
async fn realtime_query_errors_are_invalid_query(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/api/rooms/general/messages?limit=x",
        "/api/notifications?limit=x",
        "/api/poll?room=general&room=random&timeout=0",
        "/api/rooms/general/events?since=1&since=2",
        "/api/events?rooms=general&rooms=random",
        "/notifications?since=1&since=2",
    ] {
        let body = json_with_status(app.get(path).await, 400).await;
        assert_envelope(&body, "invalid_query");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid query parameter"),
            "{path}: {body}"
        );
    }
}

/// `POST /users` (the no-JavaScript form) answered a body over the limit with a 400
/// "could not be read"; it is a 413 like on every other route.
async fn an_oversized_form_is_a_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = "x".repeat(app.state.config.http.max_body_bytes + 1);
    let form = serde_urlencoded::to_string([("name", name.as_str()), ("email", "x@x.io")]).unwrap();
    let response = app
        .client
        .post(app.url("/users"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("Request body is too large"),
        "the route's HTML error page: {body}"
    );
    let users = json_with_status(app.get("/api/users").await, 200).await;
    assert_eq!(users.as_array().unwrap().len(), 1, "nothing was created");
}

/// Every unique violation was reported as a taken email. Each index now has its own
/// error, mapped by its name (PostgreSQL) or its columns (SQLite), through both
/// SQLite paths (sqlx and the rusqlite writer).
async fn each_unique_index_has_its_own_conflict(backend: Backend) {
    use switchboard::auth::model::{NewSession, NewToken, unix_now};
    let app = spawn_app(backend).await;
    let store = &app.state.store;
    let token = NewToken {
        user_id: app.admin_id(),
        name: "ci".into(),
        token_hash: "same-hash".into(),
        prefix: "sb_same".into(),
        created_at: unix_now(),
        expires_at: None,
    };
    store.insert_token(&token).await.unwrap();
    let duplicate = store.insert_token(&token).await.unwrap_err();
    assert!(
        matches!(duplicate, StoreError::Duplicate(Unique::TokenHash)),
        "{duplicate:?}"
    );
    let error = ApiError::from(duplicate);
    assert_eq!(error.status(), 409);
    assert!(error.to_string().contains("API token"), "{error}");

    let session = NewSession {
        id_hash: "same-session".into(),
        user_id: app.admin_id(),
        created_at: unix_now(),
        expires_at: unix_now() + 60,
        device: Default::default(),
    };
    store.insert_session(&session).await.unwrap();
    let duplicate = store.insert_session(&session).await.unwrap_err();
    assert!(
        matches!(duplicate, StoreError::Duplicate(Unique::SessionId)),
        "{duplicate:?}"
    );
    assert!(ApiError::from(duplicate).to_string().contains("session"));

    // The email's index keeps its answer, through the API.
    app.create_user("Bo", "bo@example.com").await;
    let body = json_with_status(
        app.post_json(
            "/api/users",
            &json!({"name": "Bo", "email": "BO@example.com"}),
        )
        .await,
        409,
    )
    .await;
    assert_envelope(&body, "conflict");
    assert_eq!(body["fields"]["email"], "is already taken");
}

/// The store's own safety net: a NUL that reaches PostgreSQL text (which cannot hold
/// one) is bad input, a 400, not an internal error; SQLite simply finds nothing.
async fn a_nul_reaching_the_store_is_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    match (
        backend,
        app.state.store.find_login("a\u{0}b@example.com").await,
    ) {
        (Backend::Sqlite, found) => assert!(matches!(found, Ok(None)), "{found:?}"),
        (Backend::Postgres, Err(error @ StoreError::NulInText)) => {
            let error = ApiError::from(error);
            assert_eq!(
                (error.status().as_u16(), error.code()),
                (400, "invalid_text")
            );
        }
        (_, other) => panic!("{other:?}"),
    }
}

const REVERSING: &str = "Eve\u{202E}gnp.exe";

/// Names took bidi overrides and invisible characters, on the API and the form;
/// both go through one rule (CLI: tests/api/cli.rs).
async fn names_with_bidi_controls_or_invisible_characters_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for (name, problem) in [
        (
            REVERSING,
            "must not contain bidirectional control characters (U+202E)",
        ),
        (
            "Bob\u{200F}",
            "must not contain bidirectional control characters (U+200F)",
        ),
        (
            "Bo\u{2028}b",
            "must not contain invisible characters (U+2028)",
        ),
        (
            "Bob\u{200B}",
            "must not contain invisible characters (U+200B)",
        ),
    ] {
        let body = json_with_status(
            app.post_json(
                "/api/users",
                &json!({"name": name, "email": "e@example.com"}),
            )
            .await,
            422,
        )
        .await;
        assert_eq!(body["fields"]["name"], problem, "{name:?}");
    }
    let me = format!("/api/users/{}", app.admin_id());
    let body = json_with_status(app.patch_json(&me, &json!({"name": REVERSING})).await, 422).await;
    assert_envelope(&body, "validation_failed");
    let form =
        serde_urlencoded::to_string([("name", REVERSING), ("email", "e@example.com")]).unwrap();
    let response = app
        .client
        .post(app.url("/users"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let (status, page) = status_and_body(response).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("bidirectional control characters"), "{page}");
    // Real scripts and emoji are kept: ZWJ inside an emoji, ZWNJ in Persian.
    for name in ["👨\u{200D}👩\u{200D}👧 Family", "می\u{200C}خواهم"] {
        let user: Value = app
            .create_user(name, &format!("{}@example.com", name.len()))
            .await;
        assert_eq!(user["name"], name);
    }
    let users = json_with_status(app.get("/api/users").await, 200).await;
    assert_eq!(users.as_array().unwrap().len(), 3, "{users}");
}

crate::on_both_backends!(
    control_characters_in_search_needles_are_a_400,
    nul_characters_in_bodies_are_refused_alike_on_both_backends,
    realtime_query_errors_are_invalid_query,
    an_oversized_form_is_a_413,
    each_unique_index_has_its_own_conflict,
    a_nul_reaching_the_store_is_bad_input,
    names_with_bidi_controls_or_invisible_characters_are_refused,
);
