//! A room's history as the chat page scrolls back through it: the newest page, then
//! `?before=` the first shown, page after page, to the start of the room, with no
//! message twice or missing, and the position header the same on every page.

use serde_json::{Value, json};
use switchboard::store::Backend;

use crate::clients::{admin_cookie, post_send};
use crate::helpers::{json_with_status, spawn_app_with};
use crate::on_both_backends;

fn ids(messages: &Value) -> Vec<i64> {
    messages
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

async fn page(app: &crate::helpers::TestApp, query: &str) -> (Vec<i64>, String) {
    let response = app.get(&format!("/api/rooms/back/messages?{query}")).await;
    let position = response
        .headers()
        .get("switchboard-position")
        .expect("a position")
        .to_str()
        .unwrap()
        .to_owned();
    (ids(&json_with_status(response, 200).await), position)
}

async fn scrolling_back_with_before_pages_to_the_start(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.rate.enabled = false).await;
    let cookie = admin_cookie(&app).await;
    for i in 1..=120 {
        let body = json!({"text": format!("m{i}"), "room": "back"});
        json_with_status(post_send(&app, &cookie, body).await, 201).await;
    }
    let range = |from: i64, to: i64| (from..=to).collect::<Vec<_>>();

    // What the page shows first, then each older page, oldest first within it.
    assert_eq!(page(&app, "limit=50").await, (range(71, 120), "120".into()));
    assert_eq!(
        page(&app, "limit=50&before=71").await,
        (range(21, 70), "120".into())
    );
    // A short page: the start of the room.
    assert_eq!(
        page(&app, "limit=50&before=21").await,
        (range(1, 20), "120".into())
    );
    assert_eq!(page(&app, "limit=50&before=1").await.0, Vec::<i64>::new());
    // A `before` past the end is the newest page.
    assert_eq!(page(&app, "limit=3&before=1000").await.0, range(118, 120));
    // A bad one is the client's mistake, in the envelope.
    let bad = app.get("/api/rooms/back/messages?before=soon").await;
    let body = json_with_status(bad, 400).await;
    assert_eq!(body["code"], "invalid_position", "{body}");
}

on_both_backends!(scrolling_back_with_before_pages_to_the_start);
