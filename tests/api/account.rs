//! Your account through the API (issue 20): settings, `stats.posts`, notifications
//! that honour the settings, sessions (list, end one, end the others) and read
//! positions (unread count, marking read, where the notification streams start).

use serde_json::{Value, json};
use switchboard::store::Backend;

use crate::clients::{
    admin_cookie, member_cookie, next_sse_message, open_sse, post_send, spawn_unlimited,
};
use crate::helpers::{MEMBER_PASSWORD, assert_envelope, json_with_status, login, spawn_app};
use crate::on_both_backends;

async fn get_with(
    client: &reqwest::Client,
    app: &crate::helpers::TestApp,
    path: &str,
) -> reqwest::Response {
    client.get(app.url(path)).send().await.unwrap()
}

async fn settings_are_read_and_written_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bob, bob_client) = app.member("Bob", "bob@example.com").await;
    let id = bob["id"].as_i64().unwrap();
    let path = format!("/api/users/{id}/settings");

    let fresh = json_with_status(get_with(&bob_client, &app, &path).await, 200).await;
    assert_eq!(
        fresh,
        json!({"theme": "system", "notifications": true, "notify_mentions": true, "notify_admin_changes": true})
    );

    let changed = bob_client
        .patch(app.url(&path))
        .json(&json!({"theme": "dark", "notify_mentions": false}))
        .send()
        .await
        .unwrap();
    let changed = json_with_status(changed, 200).await;
    assert_eq!(changed["theme"], "dark");
    assert_eq!(changed["notify_mentions"], false);
    assert_eq!(changed["notify_admin_changes"], true);
    assert_eq!(changed["notifications"], true, "one kind is still on");

    // The compat switch turns both off; the profile shows the settings.
    let off = bob_client
        .patch(app.url(&path))
        .json(&json!({"notifications": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(off, 200).await["notify_admin_changes"],
        false
    );
    let profile = json_with_status(
        get_with(&bob_client, &app, &format!("/api/users/{id}/profile")).await,
        200,
    )
    .await;
    assert_eq!(
        profile["settings"],
        json!({"theme": "dark", "notifications": false, "notify_mentions": false, "notify_admin_changes": false})
    );

    // Bad values: 422 naming each field; nothing changes.
    let bad = bob_client
        .patch(app.url(&path))
        .json(&json!({"theme": "purple", "notify_mentions": "yes", "colour": "red"}))
        .send()
        .await
        .unwrap();
    let bad = json_with_status(bad, 422).await;
    assert_envelope(&bad, "validation_failed");
    assert_eq!(bad["fields"]["theme"], "must be system, light or dark");
    assert_eq!(bad["fields"]["notify_mentions"], "must be true or false");
    assert_eq!(bad["fields"]["colour"], "is not a setting");
    let null = bob_client
        .patch(app.url(&path))
        .json(&json!({"theme": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(null, 422).await["fields"]["theme"],
        "cannot be null"
    );
    let still = json_with_status(get_with(&bob_client, &app, &path).await, 200).await;
    assert_eq!(still["theme"], "dark");

    // Someone else's: 403 for a member, allowed for an admin; 404 for nobody.
    let admin_path = format!("/api/users/{}/settings", app.admin_id());
    let other = json_with_status(get_with(&bob_client, &app, &admin_path).await, 403).await;
    assert_envelope(&other, "forbidden");
    let by_admin =
        json_with_status(app.patch_json(&path, &json!({"theme": "light"})).await, 200).await;
    assert_eq!(by_admin["theme"], "light");
    let nobody = json_with_status(app.get("/api/users/99999/settings").await, 404).await;
    assert_envelope(&nobody, "not_found");

    // Pages render with the stored theme.
    let page = bob_client.get(app.url("/")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains(r#"data-theme="light""#));
}

async fn the_profile_counts_posts(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let admin = admin_cookie(&app).await;
    let (bob, bob_cookie) = member_cookie(&app, "Bob").await;
    for (cookie, room, text) in [
        (&bob_cookie, "general", "one"),
        (&bob_cookie, "random", "two, to @admin"),
        (&admin, "general", "the admin's"),
    ] {
        json_with_status(
            post_send(&app, cookie, json!({"text": text, "room": room})).await,
            201,
        )
        .await;
    }
    let id = bob["id"].as_i64().unwrap();
    let profile = json_with_status(app.get(&format!("/api/users/{id}/profile")).await, 200).await;
    assert_eq!(profile["stats"]["posts"], 2);
    // The admin's notification from Bob's mention and the directory event of
    // creating Bob are no posts of anyone's.
    let admin_profile = json_with_status(
        app.get(&format!("/api/users/{}/profile", app.admin_id()))
            .await,
        200,
    )
    .await;
    assert_eq!(admin_profile["stats"]["posts"], 1);
}

async fn notifications_honour_the_settings(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let admin = admin_cookie(&app).await;
    let (bob, bob_client) = app.member("Bob", "bob@example.com").await;
    let id = bob["id"].as_i64().unwrap();
    let settings = format!("/api/users/{id}/settings");
    let notifications = |client: reqwest::Client| {
        let url = app.url("/api/notifications?since=0");
        async move {
            let listed = json_with_status(client.get(url).send().await.unwrap(), 200).await;
            listed
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["event"]["type"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };

    bob_client
        .patch(app.url(&settings))
        .json(&json!({"notify_mentions": false}))
        .send()
        .await
        .unwrap();
    json_with_status(
        post_send(&app, &admin, json!({"text": "hey @bob", "room": "general"})).await,
        201,
    )
    .await;
    json_with_status(
        app.patch_json(&format!("/api/users/{id}"), &json!({"name": "Bobby"}))
            .await,
        200,
    )
    .await;
    assert_eq!(notifications(bob_client.clone()).await, ["account_changed"]);

    bob_client
        .patch(app.url(&settings))
        .json(&json!({"notify_mentions": true, "notify_admin_changes": false}))
        .send()
        .await
        .unwrap();
    json_with_status(
        app.patch_json(&format!("/api/users/{id}"), &json!({"name": "Bob"}))
            .await,
        200,
    )
    .await;
    json_with_status(
        post_send(
            &app,
            &admin,
            json!({"text": "again @bob", "room": "general"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        notifications(bob_client.clone()).await,
        ["account_changed", "mention"]
    );
}

async fn sessions_are_listed_and_ended(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bob, laptop) = app.member("Bob", "bob@example.com").await;
    let phone = {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
            .default_headers(
                [("origin", app.url("").parse().unwrap())]
                    .into_iter()
                    .map(|(k, v): (&str, reqwest::header::HeaderValue)| (k.parse().unwrap(), v))
                    .collect(),
            )
            .build()
            .unwrap();
        let response = client
            .post(app.url("/api/auth/login"))
            .json(&json!({"email": "bob@example.com", "password": MEMBER_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        client
    };
    let tablet = login(app.address, "bob@example.com", MEMBER_PASSWORD).await;

    let listed = json_with_status(get_with(&phone, &app, "/api/sessions").await, 200).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{listed:?}");
    assert!(
        current[0]["user_agent"]
            .as_str()
            .unwrap()
            .contains("iPhone"),
        "{listed:?}"
    );
    assert_eq!(current[0]["client_ip"], "127.0.0.1");
    for session in listed {
        assert_eq!(session["id"].as_str().unwrap().len(), 16);
        // RFC 3339 like every timestamp of the API, not Unix seconds.
        for field in ["created_at", "last_seen_at", "expires_at"] {
            let text = session[field].as_str().unwrap_or_default();
            assert!(
                text.ends_with('Z')
                    && time::OffsetDateTime::parse(
                        text,
                        &time::format_description::well_known::Rfc3339
                    )
                    .is_ok(),
                "{field}: {session}"
            );
        }
    }

    // End one (the laptop's, as seen from the phone): the laptop is logged out.
    let laptop_id = json_with_status(get_with(&laptop, &app, "/api/sessions").await, 200)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = phone
        .delete(app.url(&format!("/api/sessions/{laptop_id}")))
        .send()
        .await
        .unwrap();
    json_with_status(ended, 200).await;
    assert_eq!(get_with(&laptop, &app, "/api/auth/me").await.status(), 401);
    let again = phone
        .delete(app.url(&format!("/api/sessions/{laptop_id}")))
        .send()
        .await
        .unwrap();
    assert_envelope(&json_with_status(again, 404).await, "not_found");
    let junk = phone
        .delete(app.url("/api/sessions/x'"))
        .send()
        .await
        .unwrap();
    assert_envelope(&json_with_status(junk, 404).await, "not_found");

    // Another member's session is not theirs to end, nor to list.
    let (_, carol) = app.member("Carol", "carol@example.com").await;
    let bob_id = bob["id"].as_i64().unwrap();
    let foreign = carol
        .get(app.url(&format!("/api/sessions?user_id={bob_id}")))
        .send()
        .await
        .unwrap();
    assert_envelope(&json_with_status(foreign, 403).await, "forbidden");

    // End the others: the tablet goes, the phone stays.
    let others = json_with_status(
        phone.delete(app.url("/api/sessions")).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(others["sessions_ended"], 1);
    assert_eq!(get_with(&tablet, &app, "/api/auth/me").await.status(), 401);
    assert_eq!(get_with(&phone, &app, "/api/auth/me").await.status(), 200);

    // An admin sees and ends all of Bob's.
    let seen = json_with_status(
        app.get(&format!("/api/sessions?user_id={bob_id}")).await,
        200,
    )
    .await;
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["current"], false);
    let all = json_with_status(
        app.client
            .delete(app.url(&format!("/api/sessions?user_id={bob_id}")))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(all["sessions_ended"], 1);
    assert_eq!(get_with(&phone, &app, "/api/auth/me").await.status(), 401);
}

async fn read_positions_count_unread_and_start_the_streams(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let admin = admin_cookie(&app).await;
    let (bob_user, bob_cookie) = member_cookie(&app, "Bob").await;
    let room = format!("user:{}", bob_user["id"]);
    let bob = |method: reqwest::Method, path: &str| {
        let csrf = bob_cookie
            .split("; ")
            .find_map(|c| c.strip_prefix("csrftoken="))
            .unwrap()
            .to_owned();
        reqwest::Client::new()
            .request(method, app.url(path))
            .header("cookie", &bob_cookie)
            .header("x-csrftoken", csrf)
    };
    let state = || async {
        json_with_status(
            bob(reqwest::Method::GET, "/api/notifications/unread")
                .send()
                .await
                .unwrap(),
            200,
        )
        .await
    };
    assert_eq!(
        state().await,
        json!({"room": room, "read_id": 0, "last_id": 0, "unread": 0})
    );

    // A tab following the notifications live (from the first unread: none yet).
    let mut tab = open_sse(&app, "/notifications", &bob_cookie, None).await;
    for n in 1..=3 {
        json_with_status(
            post_send(
                &app,
                &admin,
                json!({"text": format!("@bob #{n}"), "room": "general"}),
            )
            .await,
            201,
        )
        .await;
    }
    let after = state().await;
    assert_eq!(
        (after["unread"].as_i64(), after["last_id"].as_i64()),
        (Some(3), Some(3))
    );
    for _ in 1..=3 {
        assert_eq!(
            next_sse_message(&mut tab).await.1["event"]["type"],
            "mention"
        );
    }

    // Read through #2: one unread left; the tab hears a `read` marker.
    let read = json_with_status(
        bob(reqwest::Method::POST, "/api/notifications/read")
            .json(&json!({"through": 2}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (read["read_id"].as_i64(), read["unread"].as_i64()),
        (Some(2), Some(1))
    );
    let (_, marker) = next_sse_message(&mut tab).await;
    assert_eq!(marker["event"], json!({"type": "read", "through": 2}));

    // Without a position, both reads start at the first unread (#3).
    let listed = json_with_status(
        bob(reqwest::Method::GET, "/api/notifications")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let first = &listed.as_array().unwrap()[0];
    assert_eq!(
        (
            first["id"].as_i64(),
            first["text"].as_str().map(|t| t.contains("#3"))
        ),
        (Some(3), Some(true))
    );
    let mut away = open_sse(&app, "/notifications", &bob_cookie, None).await;
    assert_eq!(next_sse_message(&mut away).await.0, "3");

    // Read all (no body field): nothing unread, not even the markers; a stream opened
    // now replays nothing and gets the next one live.
    let all = json_with_status(
        bob(reqwest::Method::POST, "/api/notifications/read")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(all["unread"], 0);
    assert_eq!(all["read_id"], all["last_id"]);
    let mut fresh = open_sse(&app, "/notifications", &bob_cookie, None).await;
    json_with_status(
        post_send(&app, &admin, json!({"text": "@bob #4", "room": "general"})).await,
        201,
    )
    .await;
    let (_, next) = next_sse_message(&mut fresh).await;
    assert!(next["text"].as_str().unwrap().contains("#4"), "{next}");
    assert_eq!(state().await["unread"], 1);

    // Reading again changes nothing and adds no marker; bad bodies are 422.
    let before = state().await["last_id"].clone();
    let same = json_with_status(
        bob(reqwest::Method::POST, "/api/notifications/read")
            .json(&json!({"through": 1}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(same["last_id"], before);
    // A whole number written as a float is a whole number (JSON Schema's integer).
    let as_float = json_with_status(
        bob(reqwest::Method::POST, "/api/notifications/read")
            .json(&json!({"through": 1.0}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(as_float["last_id"], before);
    for bad in [
        json!({"through": -1}),
        json!({"through": 1.5}),
        json!({"through": "all"}),
        json!({"upto": 3}),
    ] {
        let refused = bob(reqwest::Method::POST, "/api/notifications/read")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_envelope(&json_with_status(refused, 422).await, "validation_failed");
    }
}

async fn a_password_is_evaluated_by_the_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    let (bob, bob_client) = app.member("Bob Stone", "bob@example.com").await;
    let check = |client: &reqwest::Client, body: Value| {
        client
            .post(app.url("/api/auth/password/check"))
            .json(&body)
            .send()
    };
    let weak = json_with_status(
        check(&bob_client, json!({"password": "password"}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(weak["acceptable"], false);
    let problems: Vec<&str> = weak["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        problems,
        [
            "must be at least 12 characters",
            "is one of the most common passwords (it is in lists of breached passwords)"
        ]
    );
    assert_eq!(weak["rules"]["min_chars"], 12);
    let own = json_with_status(
        check(&bob_client, json!({"password": "bobstone2026!"}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        own["problems"][0],
        "must not be built from your name or email address"
    );
    let good = json_with_status(
        check(&bob_client, json!({"password": MEMBER_PASSWORD}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        good,
        json!({"acceptable": true, "problems": [], "rules": good["rules"].clone()})
    );
    // Someone else's account: an admin may ask (with their words), a member may not.
    let id = bob["id"].as_i64().unwrap();
    let for_bob = json_with_status(
        check(
            &app.client,
            json!({"password": "bobstone2026!", "user_id": id}),
        )
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        for_bob["problems"][0],
        "must not be built from your name or email address"
    );
    let refused = check(
        &bob_client,
        json!({"password": "x", "user_id": app.admin_id()}),
    )
    .await
    .unwrap();
    assert_envelope(&json_with_status(refused, 403).await, "forbidden");
    let missing = json_with_status(check(&bob_client, json!({})).await.unwrap(), 422).await;
    assert_eq!(missing["fields"]["password"], "is required");
    // Schema-valid (the fuzzer's finding): no such user is a 404, not a 422.
    let nobody = json_with_status(
        check(&app.client, json!({"password": "x", "user_id": 99999}))
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_envelope(&nobody, "not_found");
    // A whole number sent as a float names the same user (JSON Schema's integer).
    let as_float = check(&app.client, json!({"password": "x", "user_id": 99999.0}))
        .await
        .unwrap();
    assert_eq!(as_float.status(), 404);
    // A whole number sent as a float names the same user (JSON Schema's integer).
    let as_float = check(&app.client, json!({"password": "x", "user_id": 99999.0}))
        .await
        .unwrap();
    assert_eq!(as_float.status(), 404);
}

on_both_backends!(
    a_password_is_evaluated_by_the_policy,
    settings_are_read_and_written_through_the_api,
    the_profile_counts_posts,
    notifications_honour_the_settings,
    sessions_are_listed_and_ended,
    read_positions_count_unread_and_start_the_streams,
);
