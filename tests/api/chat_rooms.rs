//! Chat rooms as people keep them (issue 21): read positions per room (kept by the
//! server, synced live to the reader's other connections), unread and mention
//! counts, room names unique without regard to case, rooms announced live when
//! created (across instances too), and direct messages only their two members can
//! read, join or resume, on every transport.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::store::Backend;

use crate::clients::*;
use crate::helpers::{TestApp, json_with_status, spawn_app_with};
use crate::on_both_backends;

/// A request as a browser signed in with `cookie` makes it (cookie and CSRF token).
fn as_user(
    app: &TestApp,
    cookie: &str,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let csrf = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("csrftoken="))
        .unwrap_or_default()
        .to_owned();
    reqwest::Client::new()
        .request(method, app.url(path))
        .header("cookie", cookie)
        .header("x-csrftoken", csrf)
}

async fn get(app: &TestApp, cookie: &str, path: &str) -> reqwest::Response {
    as_user(app, cookie, reqwest::Method::GET, path)
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, cookie: &str, path: &str, body: Value) -> reqwest::Response {
    as_user(app, cookie, reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The caller's entry for `room` in `GET /api/rooms`, if listed.
async fn entry(app: &TestApp, cookie: &str, room: &str) -> Option<Value> {
    let rooms = json_with_status(get(app, cookie, "/api/rooms").await, 200).await;
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == room)
        .cloned()
}

async fn send(app: &TestApp, cookie: &str, room: &str, text: &str) -> Value {
    json_with_status(
        post_send(app, cookie, json!({"room": room, "text": text})).await,
        201,
    )
    .await
}

/// The next message a JSON WebSocket receives in `room` (others skipped).
async fn next_in(ws: &mut Ws, room: &str) -> Value {
    loop {
        let message = next_of(ws, "message").await;
        if message["room"] == room {
            return message;
        }
    }
}

async fn read_positions_are_kept_per_room_and_synced_live(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let (_, alice) = member_cookie(&app, "Alice").await;
    let (bob_user, bob) = member_cookie(&app, "Bob").await;
    let bob_room = format!("user:{}", bob_user["id"]);
    json_with_status(
        post(&app, &bob, "/api/rooms", json!({"name": "ops"})).await,
        201,
    )
    .await;

    // Bob's other tab follows his notification room from where the list says.
    let listed = get(&app, &bob, "/api/rooms").await;
    let from: i64 = listed.headers()["switchboard-notifications-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut other_tab = ws_in_room(&app, &bob, &bob_room, Some(from)).await;

    send(&app, &alice, "ops", "one").await;
    send(&app, &alice, "ops", "two").await;
    send(&app, &alice, "ops", "three, @[Bob]").await;
    let ops = entry(&app, &bob, "ops").await.expect("ops is listed");
    assert_eq!(
        (
            &ops["read_id"],
            &ops["unread"],
            &ops["mentions"],
            &ops["member"],
            &ops["last_id"]
        ),
        (&json!(0), &json!(3), &json!(1), &json!(true), &json!(3)),
        "{ops}"
    );
    // The mention raised Bob's bell too.
    let mention = next_in(&mut other_tab, &bob_room).await;
    assert_eq!(mention["event"]["type"], "mention");

    // Read through #2: one unread left (the mention); the other tab hears it.
    let read = json_with_status(
        post(&app, &bob, "/api/rooms/ops/read", json!({"through": 2})).await,
        200,
    )
    .await;
    assert_eq!(
        read,
        json!({"room": "ops", "read_id": 2, "last_id": 3, "unread": 1, "mentions": 1})
    );
    let marker = next_in(&mut other_tab, &bob_room).await;
    assert_eq!(
        marker["event"],
        json!({"type": "read", "room": "ops", "through": 2})
    );
    assert_eq!(
        json_with_status(get(&app, &bob, "/api/rooms/ops/read").await, 200).await,
        read
    );
    // Never back; never past the newest message; the default is all of it.
    let back = json_with_status(
        post(&app, &bob, "/api/rooms/ops/read", json!({"through": 1})).await,
        200,
    )
    .await;
    assert_eq!(back["read_id"], 2);
    let all = json_with_status(
        post(&app, &bob, "/api/rooms/ops/read", json!({})).await,
        200,
    )
    .await;
    assert_eq!(
        (&all["read_id"], &all["unread"], &all["mentions"]),
        (&json!(3), &json!(0), &json!(0))
    );
    assert_eq!(
        next_in(&mut other_tab, &bob_room).await["event"]["through"],
        3
    );
    // Bob's own messages are never unread to him; Alice's read position is her own.
    send(&app, &bob, "ops", "mine").await;
    assert_eq!(entry(&app, &bob, "ops").await.unwrap()["unread"], 0);
    let hers = entry(&app, &alice, "ops").await.unwrap();
    assert_eq!((&hers["read_id"], &hers["unread"]), (&json!(0), &json!(1)));
    // The bell's own count is not disturbed by the room markers (Bob wrote them).
    let bell = json_with_status(get(&app, &bob, "/api/notifications/unread").await, 200).await;
    assert_eq!(bell["unread"], 1, "the one mention: {bell}");

    // Bad input: one clear envelope each.
    for (body, status) in [
        (json!({"through": "x"}), 422),
        (json!({"through": -1}), 422),
        (json!({"through": 1, "extra": true}), 422),
    ] {
        let response = post(&app, &bob, "/api/rooms/ops/read", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
    }
    let bad_room = post(&app, &bob, "/api/rooms/no%20room/read", json!({})).await;
    assert_eq!(bad_room.status(), 400);
}

async fn room_names_are_unique_without_regard_to_case(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let (_, alice) = member_cookie(&app, "Alice").await;
    let (_, bob) = member_cookie(&app, "Bob").await;
    let admin = admin_cookie(&app).await;

    let made = json_with_status(
        post(&app, &alice, "/api/rooms", json!({"name": "Team-Blue"})).await,
        201,
    )
    .await;
    assert_eq!(made, json!({"name": "Team-Blue", "created": true}));
    // Opened but empty: it stays in Alice's list.
    let listed = entry(&app, &alice, "Team-Blue").await.expect("listed");
    assert_eq!(
        (&listed["member"], &listed["last_id"]),
        (&json!(true), &json!(0))
    );

    let found = json_with_status(
        post(&app, &bob, "/api/rooms", json!({"name": " team-blue "})).await,
        200,
    )
    .await;
    assert_eq!(found, json!({"name": "Team-Blue", "created": false}));
    // A send to another case lands in the room as first written.
    let sent = send(&app, &bob, "TEAM-BLUE", "hello").await;
    assert_eq!(sent["room"], "Team-Blue");
    let rooms = json_with_status(get(&app, &admin, "/api/rooms").await, 200).await;
    let names: Vec<&str> = rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .filter(|n| n.eq_ignore_ascii_case("team-blue"))
        .collect();
    assert_eq!(names, ["Team-Blue"]);
    assert_eq!(
        entry(&app, &admin, "Team-Blue").await.unwrap()["member"],
        false
    );

    // Leaving takes it out of Bob's list (it is still a room anyone may open).
    let left = as_user(
        &app,
        &bob,
        reqwest::Method::DELETE,
        "/api/rooms/Team-Blue/membership",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(left.status(), 200);
    assert_eq!(
        entry(&app, &bob, "Team-Blue").await.unwrap()["member"],
        false
    );
    let again = as_user(
        &app,
        &bob,
        reqwest::Method::DELETE,
        "/api/rooms/Team-Blue/membership",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(again.status(), 404);

    // What cannot be opened: the server's rooms, bad names, bad bodies.
    for (body, status) in [
        (json!({"name": "directory"}), 403),
        (json!({"name": "rooms"}), 403),
        (json!({"name": "a b"}), 400),
        (json!({"name": "user:1"}), 400),
        (json!({}), 422),
        (json!({"name": 5}), 422),
        (json!({"name": "x", "topic": "y"}), 422),
    ] {
        let response = post(&app, &alice, "/api/rooms", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
    }
    // The server's rooms are not in anyone's list.
    assert!(entry(&app, &alice, "rooms").await.is_none());
    assert!(entry(&app, &alice, "directory").await.is_none());
}

async fn created_rooms_are_announced_to_every_page(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let (_, alice) = member_cookie(&app, "Alice").await;
    let (_, bob) = member_cookie(&app, "Bob").await;
    let listed = get(&app, &bob, "/api/rooms").await;
    let from: i64 = listed.headers()["switchboard-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut page = ws_in_room(&app, &bob, "rooms", Some(from)).await;
    post(&app, &alice, "/api/rooms", json!({"name": "Launch"})).await;
    // Opening an existing room announces nothing.
    post(&app, &alice, "/api/rooms", json!({"name": "launch"})).await;
    post(&app, &alice, "/api/rooms", json!({"name": "Later"})).await;
    let first = next_in(&mut page, "rooms").await;
    assert_eq!(
        first["event"],
        json!({"type": "room_created", "room": "Launch"})
    );
    let second = next_in(&mut page, "rooms").await;
    assert_eq!(second["event"]["room"], "Later");
    // Nobody writes to it but the server.
    let refused = post_send(&app, &alice, json!({"room": "rooms", "text": "hi"})).await;
    assert_eq!(refused.status(), 403);
}

/// Alice and Bob's direct-message room: theirs to write, read, join and resume on
/// every transport; Eve is refused on each, as with someone else's `user:{id}`.
async fn direct_messages_are_private_to_their_two_members(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let (alice_user, alice) = member_cookie(&app, "Alice").await;
    let (bob_user, bob) = member_cookie(&app, "Bob").await;
    let (_, eve) = member_cookie(&app, "Eve").await;
    let (alice_id, bob_id) = (
        alice_user["id"].as_i64().unwrap(),
        bob_user["id"].as_i64().unwrap(),
    );
    let dm = format!("dm:{}:{}", alice_id.min(bob_id), alice_id.max(bob_id));

    let mut bob_bell = ws_in_room(&app, &bob, &format!("user:{bob_id}"), None).await;
    let opened = json_with_status(
        post(
            &app,
            &alice,
            "/api/rooms/direct",
            json!({"user_id": bob_id}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(opened, json!({"name": dm, "created": true}));
    let told = next_in(&mut bob_bell, &format!("user:{bob_id}")).await;
    assert_eq!(
        (&told["event"]["type"], &told["event"]["room"]),
        (&json!("direct_created"), &json!(dm))
    );
    let again = json_with_status(
        post(
            &app,
            &bob,
            "/api/rooms/direct",
            json!({"user_id": alice_id}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(again["name"], dm);
    for (body, status) in [
        // Well formed, not allowed: a direct message is with someone else.
        (json!({"user_id": alice_id}), 403),
        (json!({"user_id": 999_999}), 404),
        (json!({"user_id": "x"}), 422),
        (json!({}), 422),
    ] {
        let response = post(&app, &alice, "/api/rooms/direct", body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
    }
    // A `dm:` name not as the server writes it is nobody's conversation: 403, as
    // another's is (the schema allows any `dm:A:B`).
    for name in ["dm:2:1", "dm:0:1", &format!("dm:{alice_id}:{alice_id}")] {
        let response = get(&app, &alice, &format!("/api/rooms/{name}/read")).await;
        assert_eq!(response.status(), 403, "{name}");
    }

    // Written by its two members only.
    let first = send(&app, &alice, &dm, "psst, @[Eve] will not know").await;
    assert_eq!(first["id"], 1);
    assert_eq!(
        post_send(&app, &eve, json!({"room": dm, "text": "let me in"}))
            .await
            .status(),
        403
    );
    // A mention of an outsider does not tell them (nothing to read).
    let eve_bell = json_with_status(get(&app, &eve, "/api/notifications/unread").await, 200).await;
    assert_eq!(eve_bell["unread"], 0);

    // In both lists (with the other person and the unread count), in no one else's.
    let bobs = entry(&app, &bob, &dm).await.expect("in Bob's list");
    assert_eq!(
        (&bobs["kind"], &bobs["peer"]["name"], &bobs["unread"]),
        (&json!("direct"), &json!("Alice"), &json!(1))
    );
    assert_eq!(
        entry(&app, &alice, &dm).await.unwrap()["peer"]["name"],
        "Bob"
    );
    assert!(entry(&app, &eve, &dm).await.is_none());

    // REST history, read state and presence.
    let path = |rest: &str| format!("/api/rooms/{dm}/{rest}");
    assert_eq!(
        get(&app, &bob, &path("messages?since=0")).await.status(),
        200
    );
    for rest in ["messages?since=0", "read", "presence"] {
        assert_eq!(get(&app, &eve, &path(rest)).await.status(), 403, "{rest}");
    }
    assert_eq!(
        post(&app, &eve, &path("read"), json!({})).await.status(),
        403
    );

    // WebSocket: Bob resumes from 0; Eve's join is refused.
    let mut bob_ws = ws_in_room(&app, &bob, &dm, Some(0)).await;
    assert_eq!(next_in(&mut bob_ws, &dm).await["id"], 1);
    let mut eve_ws = open_ws(&app, "/ws", &eve).await;
    assert_eq!(next_frame(&mut eve_ws).await["type"], "welcome");
    send_frame(&mut eve_ws, json!({"type": "join", "room": dm, "since": 0})).await;
    let refused = next_of(&mut eve_ws, "error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");

    // SSE, one room and several.
    let mut bob_sse = open_sse(&app, &format!("/api/rooms/{dm}/events?since=0"), &bob, None).await;
    assert_eq!(next_sse_message(&mut bob_sse).await.1["id"], 1);
    let several = format!("/api/events?rooms=general,{dm}&since={dm}:0");
    let mut bob_both = open_sse(&app, &several, &bob, None).await;
    assert_eq!(next_sse_message(&mut bob_both).await.1["room"], dm);
    for path in [format!("/api/rooms/{dm}/events?since=0"), several] {
        let response = reqwest::Client::new()
            .get(app.url(&path))
            .header("cookie", &eve)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }

    // Long polling.
    let polled = json_with_status(
        poll(&app, &bob, &format!("room={dm}&last_id=0&timeout=1")).await,
        200,
    )
    .await;
    assert_eq!(texts(polled.as_array().unwrap()).len(), 1);
    let refused = poll(&app, &eve, &format!("room={dm}&last_id=0&timeout=1")).await;
    assert_eq!(refused.status(), 403);

    // Socket.IO `join_room`, and a resume from its `since`.
    let mut bob_sio = open_sio(&app, &Auth::Cookie(bob.clone())).await;
    sio_emit(&mut bob_sio, "join_room", json!({"room": dm, "since": 0})).await;
    let heard = sio_until(&mut bob_sio, |(event, data)| {
        event == "message" && data["id"] == 1
    })
    .await;
    assert!(heard.iter().all(|(event, _)| event != "error"), "{heard:?}");
    let mut eve_sio = open_sio(&app, &Auth::Cookie(eve.clone())).await;
    sio_emit(&mut eve_sio, "join_room", json!({"room": dm, "since": 0})).await;
    let heard = sio_until(&mut eve_sio, |(event, _)| event == "error").await;
    assert_eq!(heard.last().unwrap().1["code"], "forbidden", "{heard:?}");
    assert!(
        !heard
            .iter()
            .any(|(_, data)| data["room"] == dm && data.get("id").is_some()),
        "Eve saw a message: {heard:?}"
    );
}

/// Socket.IO events until one matches (fails the test after `WAIT`).
async fn sio_until(ws: &mut Ws, done: impl Fn(&(String, Value)) -> bool) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let Some(event) = sio_event(ws).await else {
                panic!("the socket closed: {events:?}");
            };
            let finished = done(&event);
            events.push(event);
            if finished {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no matching event in time"));
    events
}

on_both_backends!(
    read_positions_are_kept_per_room_and_synced_live,
    room_names_are_unique_without_regard_to_case,
    created_rooms_are_announced_to_every_page,
    direct_messages_are_private_to_their_two_members,
);

/// Two instances on one database and one Redis: a page on B hears, live, of a room
/// created through A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_created_on_one_instance_appears_on_another() {
    let Some(url) =
        crate::scale_out::redis_url("a_room_created_on_one_instance_appears_on_another")
    else {
        return;
    };
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let prefix = format!("switchboard-test:{}:", uuid::Uuid::new_v4());
    let a = spawn_app_with(backend, |c| {
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
        c.rate.enabled = false;
    })
    .await;
    let database = a.db.url.clone();
    let b = spawn_app_with(backend, |c| {
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
        c.database.url = database.into();
        c.rate.enabled = false;
    })
    .await;
    let on_b = admin_cookie(&b).await;
    let mut page = ws_in_room(&b, &on_b, "rooms", Some(0)).await;
    let on_a = admin_cookie(&a).await;
    let made = post(&a, &on_a, "/api/rooms", json!({"name": "Across"})).await;
    assert_eq!(made.status(), 201);
    let heard = tokio::time::timeout(Duration::from_secs(10), next_in(&mut page, "rooms"))
        .await
        .expect("in time");
    assert_eq!(
        heard["event"],
        json!({"type": "room_created", "room": "Across"})
    );
    // And B's list has it, named as A's caller wrote it.
    assert!(entry(&b, &on_b, "Across").await.is_some());
    drop(b);
    crate::scale_out::clean(&url, &prefix).await;
}
