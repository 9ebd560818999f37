//! A realtime connection lives no longer than its credential: after a logout, a
//! password change, a revoked token, a deleted account or a role change, every open
//! connection opened with it (WebSocket, SSE on one room and on several, a waiting
//! long poll, Socket.IO) ends promptly, tells its client why, and a send racing the
//! ending is not stored; a reconnect with the ended credential gets 401. The Redis
//! variant ends a client of one instance from a logout on another.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::store::Backend;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

use crate::clients::*;
use crate::helpers::{MEMBER_PASSWORD, TestApp, json_with_status, spawn_app_with};
use crate::on_both_backends;

/// An ending must reach its connections within this.
const PROMPTLY: Duration = Duration::from_secs(3);

/// One connection on each transport, all opened with one credential.
struct Open {
    ws: Ws,
    room_sse: Sse,
    rooms_sse: Sse,
    stats_sse: Sse,
    poll: JoinHandle<reqwest::Response>,
    sio: Ws,
}

fn spawn_quiet(backend: Backend) -> impl Future<Output = TestApp> {
    spawn_app_with(backend, |config| config.rate.enabled = false)
}

async fn open_all(app: &TestApp, auth: &Auth) -> Open {
    let before = app.state.hub.stats.connections.load(Ordering::Relaxed);
    let mut ws = try_ws(app, "/ws", &auth.headers(app))
        .await
        .expect("/ws opens");
    assert_eq!(next_frame(&mut ws).await["type"], "welcome");
    send_frame(&mut ws, json!({"type": "join", "room": "general"})).await;
    next_of(&mut ws, "presence").await;
    let room_sse = open_stream(app, auth, "/api/rooms/general/events").await;
    let rooms_sse = open_stream(app, auth, "/api/events?rooms=general,lobby").await;
    let stats_sse = open_stream(app, auth, "/stream").await;
    let poll = {
        let request = auth.get(app, "/api/poll?room=general&last_id=0&timeout=30");
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    let sio = open_sio(app, auth).await;
    // Wait until all six are in the hub (the poll too).
    tokio::time::timeout(WAIT, async {
        while app.state.hub.stats.connections.load(Ordering::Relaxed) < before + 6 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every connection reaches the hub");
    Open {
        ws,
        room_sse,
        rooms_sse,
        stats_sse,
        poll,
        sio,
    }
}

async fn open_stream(app: &TestApp, auth: &Auth, path: &str) -> Sse {
    use eventsource_stream::Eventsource;
    let response = auth
        .get(app, path)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    Box::pin(
        response
            .bytes_stream()
            .eventsource()
            .map(|event| event.expect("a well-formed event")),
    )
}

// ---- what an ending looks like on each transport -------------------------------

/// Right after the credential ended: a send on each socket races the ending.
async fn send_after(open: &mut Open) {
    let _ = open
        .ws
        .send(Frame::text(
            json!({"type": "send", "room": "general", "text": "after on ws"}).to_string(),
        ))
        .await;
    sio_emit(
        &mut open.sio,
        "message",
        json!({"message": "after on socket.io"}),
    )
    .await;
}

/// Every connection of `open` ends within [`PROMPTLY`], telling its client `reason`.
async fn assert_all_end(open: Open, reason: &str, credential_gone: bool) {
    let started = Instant::now();
    let Open {
        mut ws,
        room_sse,
        rooms_sse,
        stats_sse,
        poll,
        mut sio,
    } = open;
    let ws_end = async {
        loop {
            match ws.next().await {
                Some(Ok(Frame::Close(Some(close)))) => return close,
                Some(Ok(_)) => continue,
                other => panic!("/ws ended without a close frame: {other:?}"),
            }
        }
    };
    let close = tokio::time::timeout(PROMPTLY, ws_end)
        .await
        .expect("/ws closes promptly");
    let code = if credential_gone { 4401 } else { 4001 };
    assert_eq!(
        (u16::from(close.code), close.reason.as_str()),
        (code, reason)
    );

    for (path, mut sse) in [
        ("room", room_sse),
        ("rooms", rooms_sse),
        ("stats", stats_sse),
    ] {
        let error = tokio::time::timeout(PROMPTLY, async {
            while let Some(event) = sse.next().await {
                if event.event == "error" {
                    return serde_json::from_str::<Value>(&event.data).unwrap();
                }
            }
            panic!("the {path} stream ended without an error event");
        })
        .await
        .expect("the SSE stream tells why promptly");
        assert_eq!(error["code"], reason, "{path}");
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()));
        let ended =
            tokio::time::timeout(PROMPTLY, async { while sse.next().await.is_some() {} }).await;
        assert!(
            ended.is_ok(),
            "the {path} stream ends after its error event"
        );
    }

    let polled = tokio::time::timeout(PROMPTLY, poll)
        .await
        .expect("the long poll answers promptly")
        .unwrap();
    if credential_gone {
        crate::helpers::assert_envelope(&json_with_status(polled, 401).await, "unauthenticated");
    } else {
        assert_eq!(json_with_status(polled, 200).await, json!([]));
    }

    let told = tokio::time::timeout(PROMPTLY, async {
        while let Some((event, data)) = sio_event(&mut sio).await {
            if event == "error" && data["code"] == reason {
                return data;
            }
        }
        panic!("Socket.IO disconnected without an error {{code: {reason}}}");
    })
    .await
    .expect("Socket.IO tells why promptly");
    assert!(told["error"].as_str().is_some_and(|e| !e.is_empty()));
    let disconnected = tokio::time::timeout(PROMPTLY, async {
        while sio_event(&mut sio).await.is_some() {}
    })
    .await;
    assert!(
        disconnected.is_ok(),
        "Socket.IO disconnects after the error"
    );
    assert!(started.elapsed() < PROMPTLY);
}

/// Whether each transport lets `auth` connect again.
async fn assert_reconnect(app: &TestApp, auth: &Auth, allowed: bool) {
    match try_ws(app, "/ws", &auth.headers(app)).await {
        Ok(_) => assert!(allowed, "/ws accepted an ended credential"),
        Err(tungstenite::Error::Http(response)) => {
            assert!(!allowed, "/ws refused: {}", response.status());
            assert_eq!(response.status(), 401);
        }
        Err(other) => panic!("/ws: {other}"),
    }
    for path in [
        "/api/rooms/general/events",
        "/api/events?rooms=general",
        "/stream",
        "/api/poll?timeout=0",
    ] {
        let status = auth.get(app, path).send().await.unwrap().status();
        assert_eq!(status, if allowed { 200 } else { 401 }, "{path}");
    }
    match try_sio(app, auth).await {
        Ok(_) => assert!(allowed, "Socket.IO accepted an ended credential"),
        Err(refusal) => assert!(!allowed, "Socket.IO refused: {refusal}"),
    }
}

/// The texts stored in `general`, as the admin reads them.
async fn stored_texts(app: &TestApp) -> Vec<String> {
    let messages =
        json_with_status(app.get("/api/rooms/general/messages?since=0").await, 200).await;
    texts(messages.as_array().unwrap())
}

async fn assert_nothing_stored_after(app: &TestApp) {
    let stored = stored_texts(app).await;
    assert!(
        stored.iter().all(|t| !t.starts_with("after")),
        "a send after the ending was stored: {stored:?}"
    );
}

/// A member and their session cookie.
async fn member(app: &TestApp, name: &str) -> (i64, Auth) {
    let (user, cookie) = member_cookie(app, name).await;
    (user["id"].as_i64().unwrap(), Auth::Cookie(cookie))
}

/// A cookie-authenticated write, as the page makes it.
async fn write_as(app: &TestApp, cookie: &str, path: &str, body: Value) -> reqwest::Response {
    let csrf = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("csrftoken="))
        .unwrap_or_default()
        .to_owned();
    reqwest::Client::new()
        .post(app.url(path))
        .header("cookie", cookie)
        .header("x-csrftoken", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

// ---- the tests -----------------------------------------------------------------

async fn logout_ends_the_connections_of_that_session(backend: Backend) {
    let app = spawn_quiet(backend).await;
    let (_, auth) = member(&app, "Lou").await;
    let Auth::Cookie(cookie) = &auth else {
        unreachable!()
    };
    // Another session of the same account is not touched.
    let other = Auth::Cookie(cookie_of(&app, "lou@example.com").await);
    let mut kept = try_ws(&app, "/ws", &other.headers(&app)).await.unwrap();
    assert_eq!(next_frame(&mut kept).await["type"], "welcome");
    let mut open = open_all(&app, &auth).await;

    let response = write_as(&app, cookie, "/api/auth/logout", json!({})).await;
    assert_eq!(response.status(), 200);
    send_after(&mut open).await;
    assert_all_end(open, "session_ended", true).await;
    assert_reconnect(&app, &auth, false).await;
    assert_nothing_stored_after(&app).await;

    send_frame(&mut kept, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut kept).await["type"], "pong");
}

async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let app = spawn_quiet(backend).await;
    let (_, auth) = member(&app, "Pat").await;
    let mut open = open_all(&app, &auth).await;
    // The change is made from another session (another browser).
    let changer = cookie_of(&app, "pat@example.com").await;
    let response = write_as(
        &app,
        &changer,
        "/api/auth/password",
        json!({"current_password": MEMBER_PASSWORD, "new_password": "a brand new passphrase 42"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    send_after(&mut open).await;
    assert_all_end(open, "password_changed", true).await;
    assert_reconnect(&app, &auth, false).await;
    assert_nothing_stored_after(&app).await;
}

async fn an_admin_setting_a_password_ends_the_users_sessions(backend: Backend) {
    let app = spawn_quiet(backend).await;
    let (id, auth) = member(&app, "Sam").await;
    let mut open = open_all(&app, &auth).await;
    let response = app
        .patch_json(
            &format!("/api/users/{id}"),
            &json!({"password": "set by the admin 12345"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    send_after(&mut open).await;
    assert_all_end(open, "password_changed", true).await;
    assert_reconnect(&app, &auth, false).await;
}

async fn revoking_a_token_ends_the_connections_opened_with_it(backend: Backend) {
    let app = spawn_quiet(backend).await;
    let (id, session) = member(&app, "Toby").await;
    let mint = |name: &'static str| {
        let app = &app;
        async move {
            let body = json_with_status(
                app.post_json("/api/tokens", &json!({"name": name, "user_id": id}))
                    .await,
                201,
            )
            .await;
            (
                Auth::Bearer(body["token"].as_str().unwrap().to_owned()),
                body["id"].as_i64().unwrap(),
            )
        }
    };
    let (token, token_id) = mint("revoked").await;
    let (other_token, _) = mint("kept").await;
    let mut open = open_all(&app, &token).await;
    // The same account's session and other token are not touched.
    let mut by_session = try_ws(&app, "/ws", &session.headers(&app)).await.unwrap();
    let mut by_other = try_ws(&app, "/ws", &other_token.headers(&app))
        .await
        .unwrap();

    let response = app.delete(&format!("/api/tokens/{token_id}")).await;
    assert_eq!(response.status(), 200);
    send_after(&mut open).await;
    assert_all_end(open, "token_revoked", true).await;
    assert_reconnect(&app, &token, false).await;
    assert_nothing_stored_after(&app).await;
    for ws in [&mut by_session, &mut by_other] {
        assert_eq!(next_frame(ws).await["type"], "welcome");
        send_frame(ws, json!({"type": "ping"})).await;
        assert_eq!(next_frame(ws).await["type"], "pong");
    }
}

async fn deleting_an_account_ends_its_connections(backend: Backend) {
    let app = spawn_quiet(backend).await;
    let (id, auth) = member(&app, "Dee").await;
    let mut open = open_all(&app, &auth).await;
    let response = app.delete(&format!("/api/users/{id}")).await;
    assert_eq!(response.status(), 200);
    send_after(&mut open).await;
    assert_all_end(open, "account_deleted", true).await;
    assert_reconnect(&app, &auth, false).await;
    assert_nothing_stored_after(&app).await;
}

/// A role change ends the connections opened under the old role; the credential
/// still works, so the client reconnects with the new role.
async fn a_role_change_ends_the_connections_opened_with_the_old_role(backend: Backend) {
    let app = spawn_quiet(backend).await;
    let (id, _) = member(&app, "Ray").await;
    let promoted = app
        .patch_json(&format!("/api/users/{id}"), &json!({"role": "admin"}))
        .await;
    assert_eq!(promoted.status(), 200);
    let auth = Auth::Cookie(cookie_of(&app, "ray@example.com").await);
    let open = open_all(&app, &auth).await;
    let demoted = app
        .patch_json(&format!("/api/users/{id}"), &json!({"role": "member"}))
        .await;
    assert_eq!(json_with_status(demoted, 200).await["role"], "member");
    assert_all_end(open, "role_changed", false).await;
    assert_reconnect(&app, &auth, true).await;
    // A change that leaves the role as it was ends nothing.
    let mut ws = try_ws(&app, "/ws", &auth.headers(&app)).await.unwrap();
    assert_eq!(next_frame(&mut ws).await["type"], "welcome");
    let renamed = app
        .patch_json(&format!("/api/users/{id}"), &json!({"name": "Raymond"}))
        .await;
    assert_eq!(renamed.status(), 200);
    send_frame(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut ws).await["type"], "pong");
}

on_both_backends!(
    logout_ends_the_connections_of_that_session,
    a_password_change_ends_the_other_sessions,
    an_admin_setting_a_password_ends_the_users_sessions,
    revoking_a_token_ends_the_connections_opened_with_it,
    deleting_an_account_ends_its_connections,
    a_role_change_ends_the_connections_opened_with_the_old_role,
);

/// A second session cookie for an account (another browser's login).
async fn cookie_of(app: &TestApp, email: &str) -> String {
    crate::clients::cookie(app, email, MEMBER_PASSWORD).await
}

/// Two instances on one Redis and one database: a logout through A ends the
/// connections the session holds on B, and B refuses it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_ends_connections_on_another() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!(
            "SKIPPED a_logout_on_one_instance_ends_connections_on_another: TEST_REDIS_URL is not set"
        );
        return;
    };
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let prefix = format!("switchboard-test:{}:", uuid::Uuid::new_v4());
    let a = spawn_app_with(backend, |c| {
        c.rate.enabled = false;
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
    })
    .await;
    let database = a.db.url.clone();
    let b = spawn_app_with(backend, |c| {
        c.rate.enabled = false;
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
        c.database.url = database.into();
    })
    .await;
    let (_, auth) = member(&a, "Xena").await;
    let Auth::Cookie(cookie) = &auth else {
        unreachable!()
    };
    let open = open_all(&b, &auth).await;
    let response = write_as(&a, cookie, "/api/auth/logout", json!({})).await;
    assert_eq!(response.status(), 200);
    assert_all_end(open, "session_ended", true).await;
    assert_reconnect(&b, &auth, false).await;
}
