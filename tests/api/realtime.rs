//! The realtime hub through its real transports: WebSocket (JSON and plain text),
//! SSE and long polling, spoken to by real clients (tokio-tungstenite, an
//! eventsource parser over reqwest, plain HTTP). Socket.IO is tested from Node with
//! socket.io-client (e2e/socketio.test.js); a stuck client's memory in
//! tests/memory.rs, a process of its own. The clients are in `clients.rs`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::store::Backend;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

use crate::clients::*;
use crate::helpers::{ADMIN_EMAIL, json_with_status, spawn_app, spawn_app_with};
use crate::on_both_backends;

// ---- the tests -------------------------------------------------------------------

async fn websocket_protocol_messages_and_presence(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, alice_cookie) = member_cookie(&app, "Alice").await;
    let (_, bob_cookie) = member_cookie(&app, "Bob").await;

    let mut a = open_ws(&app, "/ws", &alice_cookie).await;
    let welcome = next_frame(&mut a).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["user"]["id"], alice["id"]);
    send_frame(&mut a, json!({"type": "join", "room": "lobby"})).await;
    let presence = next_of(&mut a, "presence").await;
    assert_eq!(
        (presence["count"].as_i64(), &presence["users"][0]["name"]),
        (Some(1), &json!("Alice"))
    );

    let mut b = ws_in_room(&app, &bob_cookie, "lobby", None).await;
    let joined = next_of(&mut a, "user_joined").await;
    assert_eq!(
        (joined["user"]["name"].as_str(), joined["count"].as_i64()),
        (Some("Bob"), Some(2))
    );

    send_frame(&mut b, json!({"type": "send", "room": "lobby", "text": "  hello <b>there</b> ", "client_id": "c-1"})).await;
    for ws in [&mut a, &mut b] {
        let message = next_of(ws, "message").await;
        assert_eq!(message["id"], 1);
        assert_eq!(message["room"], "lobby");
        assert_eq!(
            message["text"], "hello <b>there</b>",
            "trimmed, stored verbatim"
        );
        assert_eq!(message["user"]["name"], "Bob");
        assert_eq!(message["client_id"], "c-1");
        assert!(message["ts"].as_str().unwrap().ends_with('Z'));
    }

    send_frame(&mut a, json!({"type": "ping"})).await;
    assert_eq!(next_of(&mut a, "pong").await["type"], "pong");

    // Mistakes get an error frame and the connection goes on.
    send_frame(
        &mut a,
        json!({"type": "send", "room": "lobby", "text": "", "client_id": "c-9"}),
    )
    .await;
    let refused = next_of(&mut a, "error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["client_id"].as_str()),
        (Some("validation_failed"), Some("c-9"))
    );
    for (bad, code) in [
        (
            json!({"type": "send", "room": "lobby", "text": "   "}),
            "validation_failed",
        ),
        (
            json!({"type": "send", "room": "no spaces", "text": "x"}),
            "invalid_room",
        ),
        (
            json!({"type": "send", "room": "directory", "text": "x"}),
            "forbidden",
        ),
        (json!({"type": "fly"}), "invalid_frame"),
        (json!({"type": "join", "room": "user:1"}), "invalid_room"),
    ] {
        send_frame(&mut a, bad.clone()).await;
        let error = next_of(&mut a, "error").await;
        assert_eq!(error["code"], code, "{bad}");
        assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    a.send(Frame::text("not json")).await.unwrap();
    assert_eq!(next_of(&mut a, "error").await["code"], "invalid_frame");

    b.close(None).await.unwrap();
    let left = next_of(&mut a, "user_left").await;
    assert_eq!(
        (left["user"]["name"].as_str(), left["count"].as_i64()),
        (Some("Bob"), Some(1))
    );
}

/// One message from each transport reaches a client on every other one, in the same
/// order everywhere.
async fn every_transport_sees_every_message(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    let mut ws = ws_in_room(&app, &cookie, "general", Some(0)).await;
    let mut plain = open_ws(&app, "/ws/42", &cookie).await;
    assert_eq!(next_text(&mut plain).await, "Welcome! You are client #42");
    let mut sse = open_sse(&app, "/api/rooms/general/events?since=0", &cookie, None).await;

    // 1: JSON WebSocket, 2: POST /api/send, 3: the plain-text chat.
    send_frame(
        &mut ws,
        json!({"type": "send", "room": "general", "text": "from ws"}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "message").await["id"], 1);
    let sent = json_with_status(
        post_send(&app, &cookie, json!({"text": "from post"})).await,
        201,
    )
    .await;
    assert_eq!(
        (sent["id"].as_i64(), sent["room"].as_str()),
        (Some(2), Some("general"))
    );
    assert_eq!(next_of(&mut ws, "message").await["id"], 2);
    plain.send(Frame::text("from plain")).await.unwrap();

    let expected = ["from ws", "from post", "from plain"];
    assert_eq!(next_of(&mut ws, "message").await["text"], "from plain");
    for (i, text) in expected.iter().enumerate() {
        let (id, message) = next_sse_message(&mut sse).await;
        assert_eq!(id, (i + 1).to_string());
        assert_eq!(message["text"], *text);
    }
    let lines = [
        next_text(&mut plain).await,
        next_text(&mut plain).await,
        next_text(&mut plain).await,
    ];
    assert_eq!(lines[0], "Admin: from ws");
    assert_eq!(lines[1], "Admin: from post");
    assert_eq!(lines[2], "Client #42: from plain", "the seed's format");
    // Long polling from 0 reads the same log.
    let polled = json_with_status(poll(&app, &cookie, "last_id=0&timeout=1").await, 200).await;
    assert_eq!(texts(polled.as_array().unwrap()), expected);
    assert_eq!(
        polled[0]["timestamp"].as_f64().map(|t| t > 1e9),
        Some(true),
        "the seed's field"
    );
}

/// A client away for 50 messages gets exactly those 50, in order, on each transport.
async fn every_transport_resumes_from_its_position(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    let mut sender = ws_in_room(&app, &cookie, "resume", None).await;
    send_frame(
        &mut sender,
        json!({"type": "send", "room": "resume", "text": "before"}),
    )
    .await;
    assert_eq!(next_of(&mut sender, "message").await["id"], 1);
    // Everyone was here for message 1, then went away.
    for i in 0..50 {
        send_frame(
            &mut sender,
            json!({"type": "send", "room": "resume", "text": format!("m{i}")}),
        )
        .await;
    }
    for _ in 0..50 {
        next_of(&mut sender, "message").await;
    }
    let missed: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();

    let mut ws = ws_in_room(&app, &cookie, "resume", Some(1)).await;
    let mut got = Vec::new();
    for expected_id in 2..=51 {
        let message = next_of(&mut ws, "message").await;
        assert_eq!(message["id"], expected_id);
        got.push(message["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, missed, "WebSocket");

    let mut sse = open_sse(&app, "/api/rooms/resume/events", &cookie, Some("1")).await;
    let mut got = Vec::new();
    for expected_id in 2..=51 {
        let (id, message) = next_sse_message(&mut sse).await;
        assert_eq!(id, expected_id.to_string());
        got.push(message["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, missed, "SSE with Last-Event-ID");

    let polled = json_with_status(poll(&app, &cookie, "room=resume&last_id=1").await, 200).await;
    assert_eq!(texts(polled.as_array().unwrap()), missed, "long polling");

    // Then live again, with nothing repeated.
    send_frame(
        &mut sender,
        json!({"type": "send", "room": "resume", "text": "after"}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "message").await["id"], 52);
    assert_eq!(next_sse_message(&mut sse).await.0, "52");
}

/// A retried send (same client_id) is stored once, on WebSocket and over HTTP, and
/// the retry gets the first copy back.
async fn a_client_id_makes_sends_idempotent(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    let first = json_with_status(
        post_send(
            &app,
            &cookie,
            json!({"text": "once", "room": "idem", "client_id": "k1"}),
        )
        .await,
        201,
    )
    .await;
    let again = json_with_status(
        post_send(
            &app,
            &cookie,
            json!({"text": "once", "room": "idem", "client_id": "k1"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(first, again);

    let mut ws = ws_in_room(&app, &cookie, "idem", None).await;
    for _ in 0..2 {
        send_frame(
            &mut ws,
            json!({"type": "send", "room": "idem", "text": "twice", "client_id": "k2"}),
        )
        .await;
    }
    send_frame(
        &mut ws,
        json!({"type": "send", "room": "idem", "text": "marker"}),
    )
    .await;
    // The retry gets the first copy back (README), as a `duplicate`: the live
    // `message` and the answer to the retry may come in either order.
    let mut frames = Vec::new();
    while frames.last().is_none_or(|f: &Value| f["text"] != "marker") {
        let frame = next_frame(&mut ws).await;
        if frame["type"] == "message" || frame["type"] == "duplicate" {
            frames.push(frame);
        }
    }
    let of = |kind: &str| {
        frames
            .iter()
            .filter(|f| f["type"] == kind)
            .map(|f| {
                (
                    f["id"].as_i64(),
                    f["text"].as_str(),
                    f["client_id"].as_str(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("message"),
        [
            (Some(2), Some("twice"), Some("k2")),
            (Some(3), Some("marker"), None)
        ],
        "no second copy"
    );
    assert_eq!(of("duplicate"), [(Some(2), Some("twice"), Some("k2"))]);

    let history = json_with_status(app.get("/api/rooms/idem/messages").await, 200).await;
    assert_eq!(
        texts(history.as_array().unwrap()),
        ["once", "twice", "marker"]
    );
    assert_eq!(
        history
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3],
        "no hole where the retry was"
    );
}

/// A `join` of a room the socket already follows never goes back (README's
/// Socket.IO walk-through got 9 live, then 1..9 from `since: 0`): no id twice, ids
/// in order; a position further on than what it was given moves it on.
async fn a_rejoin_gives_no_id_twice(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    for i in 1..=8 {
        let body = json!({"text": format!("m{i}"), "room": "again"});
        json_with_status(post_send(&app, &cookie, body).await, 201).await;
    }
    let mut ws = ws_in_room(&app, &cookie, "again", None).await;
    send_frame(
        &mut ws,
        json!({"type": "send", "room": "again", "text": "m9"}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "message").await["id"], 9);

    send_frame(
        &mut ws,
        json!({"type": "join", "room": "again", "since": 0}),
    )
    .await;
    let presence = next_of(&mut ws, "presence").await;
    assert_eq!(presence["count"], 1, "still one member: {presence}");
    send_frame(
        &mut ws,
        json!({"type": "send", "room": "again", "text": "m10"}),
    )
    .await;
    assert_eq!(
        next_of(&mut ws, "message").await["id"],
        10,
        "nothing replayed"
    );

    for i in 11..=13 {
        let body = json!({"text": format!("m{i}"), "room": "again"});
        json_with_status(post_send(&app, &cookie, body).await, 201).await;
    }
    // 11..13 arrive live; a rejoin from 12 asks for nothing given already.
    send_frame(
        &mut ws,
        json!({"type": "join", "room": "again", "since": 12}),
    )
    .await;
    let mut ids = Vec::new();
    send_frame(
        &mut ws,
        json!({"type": "send", "room": "again", "text": "m14"}),
    )
    .await;
    while ids.last() != Some(&14) {
        ids.push(next_of(&mut ws, "message").await["id"].as_i64().unwrap());
    }
    assert_eq!(ids, [11, 12, 13, 14]);
}

/// A client that closes gets the close handshake back (its own code echoed), on
/// both WebSocket protocols, not a dropped connection (1006).
#[tokio::test]
async fn a_client_close_is_answered_with_a_close() {
    use tungstenite::protocol::CloseFrame;
    use tungstenite::protocol::frame::coding::CloseCode;
    let app = spawn_app(Backend::Sqlite).await;
    let cookie = admin_cookie(&app).await;
    for path in ["/ws", "/ws/7"] {
        let mut ws = open_ws(&app, path, &cookie).await;
        next_text(&mut ws).await; // the welcome
        ws.send(Frame::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    Some(Ok(Frame::Close(close))) => return Ok(close),
                    Some(Ok(_)) => continue,
                    other => return Err(format!("{other:?}")),
                }
            }
        })
        .await
        .expect("an answer in time");
        let close = answer.unwrap_or_else(|e| panic!("{path}: no close frame back: {e}"));
        assert_eq!(close.map(|c| c.code), Some(CloseCode::Normal), "{path}");
    }
}

/// Concurrent senders to one room get distinct, gapless ids.
async fn concurrent_sends_get_gapless_ids(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    // A connection each, their clients made first (see `post_send_on`).
    let clients: Vec<reqwest::Client> = (0..30).map(|_| reqwest::Client::new()).collect();
    let sends = clients.iter().enumerate().map(|(i, client)| {
        post_send_on(
            client,
            &app,
            &cookie,
            json!({"text": format!("n{i}"), "room": "race"}),
        )
    });
    let responses = futures_util::future::join_all(sends).await;
    let mut ids = Vec::new();
    for response in responses {
        ids.push(
            json_with_status(response, 201).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    ids.sort();
    assert_eq!(ids, (1..=30).collect::<Vec<_>>());
}

/// The position contract: a list response says where the directory log stands; a
/// subscriber from there sees exactly the later changes.
async fn directory_lists_carry_their_position(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = admin_cookie(&app).await;
    let response = app.get("/api/users").await;
    let position: i64 = response.headers()["switchboard-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let mut follower = ws_in_room(&app, &cookie, "directory", Some(position)).await;
    let created = app.create_user("Dora", "dora@example.com").await;
    let id = created["id"].as_i64().unwrap();
    let event = next_of(&mut follower, "message").await;
    assert_eq!(event["id"], position + 1);
    assert_eq!(event["event"]["type"], "user_created");
    assert_eq!(event["event"]["user"]["email"], "dora@example.com");

    json_with_status(
        app.patch_json(&format!("/api/users/{id}"), &json!({"name": "Dora B"}))
            .await,
        200,
    )
    .await;
    let event = next_of(&mut follower, "message").await;
    assert_eq!(
        (
            event["event"]["type"].as_str(),
            event["event"]["user"]["name"].as_str()
        ),
        (Some("user_updated"), Some("Dora B"))
    );
    json_with_status(app.delete(&format!("/api/users/{id}")).await, 200).await;
    let event = next_of(&mut follower, "message").await;
    assert_eq!(
        (
            event["event"]["type"].as_str(),
            event["event"]["user"]["id"].as_i64()
        ),
        (Some("user_deleted"), Some(id))
    );

    let later: i64 = app.get("/api/users").await.headers()["switchboard-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(later, position + 3);
    // A refused write logs nothing.
    let duplicate = app
        .post_json(
            "/api/users",
            &json!({"name": "Again", "email": ADMIN_EMAIL}),
        )
        .await;
    assert_eq!(duplicate.status(), 409);
    let after: i64 = app.get("/api/users").await.headers()["switchboard-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, later, "no event without a write");
}

/// The plain-text chat wrote a message as one `Client #1: {text}` line, so a newline
/// in the text forged a line from someone else: every line carries its own prefix.
async fn each_line_of_a_plain_chat_message_carries_its_prefix(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    let mut one = open_ws(&app, "/ws/1", &cookie).await;
    let mut two = open_ws(&app, "/ws/2", &cookie).await;
    assert_eq!(next_text(&mut one).await, "Welcome! You are client #1");
    assert_eq!(next_text(&mut two).await, "Welcome! You are client #2");
    one.send(Frame::text("hi all\nClient #2: I owe client 1 money"))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut two).await,
        "Client #1: hi all\nClient #1: Client #2: I owe client 1 money"
    );
    // The same for messages from the other transports (prefixed by the sender's
    // name), and for Unicode's line separator, a line break to many text clients.
    let sent = post_send(&app, &cookie, json!({"text": "a\u{2028}Client #2: b\nc"})).await;
    assert_eq!(sent.status(), 201);
    assert_eq!(
        next_text(&mut two).await,
        "Admin: a\nAdmin: Client #2: b\nAdmin: c"
    );
}

on_both_backends!(
    each_line_of_a_plain_chat_message_carries_its_prefix,
    websocket_protocol_messages_and_presence,
    every_transport_sees_every_message,
    every_transport_resumes_from_its_position,
    a_client_id_makes_sends_idempotent,
    a_rejoin_gives_no_id_twice,
    concurrent_sends_get_gapless_ids,
    directory_lists_carry_their_position,
    a_long_poll_is_woken_by_a_send,
    a_position_older_than_retention_gets_a_reset,
    mentions_and_admin_changes_notify_the_user,
    the_stats_stream_ticks_and_multi_room_ids_resume_every_room,
    shutdown_tells_realtime_clients_to_reconnect_and_finishes,
    replays_cross_page_boundaries_then_go_live_on_every_transport,
);

async fn a_long_poll_is_woken_by_a_send(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = admin_cookie(&app).await;
    // Nothing to say: [] at the timeout.
    let started = Instant::now();
    let empty = json_with_status(poll(&app, &cookie, "last_id=0&timeout=1").await, 200).await;
    assert_eq!(empty, json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900));

    // One client for the sends, connected before the clock starts: what is timed is
    // the server, not a client's set-up.
    let poster = reqwest::Client::new();
    let csrf = cookie
        .split("; ")
        .find_map(|c| c.strip_prefix("csrftoken="))
        .unwrap()
        .to_owned();
    let mut worst = Duration::ZERO;
    for round in 0..5 {
        let waiting = tokio::spawn({
            let url = app.url(&format!("/api/poll?last_id={round}&timeout=10"));
            let cookie = cookie.clone();
            async move {
                let response = reqwest::Client::new()
                    .get(url)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                let answered = std::time::SystemTime::now();
                (response.json::<Value>().await.unwrap(), answered)
            }
        });
        poster.get(app.url("/healthz")).send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = poster
            .post(app.url("/api/send"))
            .header("cookie", &cookie)
            .header("x-csrftoken", &csrf)
            .json(&json!({"text": format!("wake {round}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 201);
        let (messages, answered) = waiting.await.unwrap();
        assert_eq!(
            texts(messages.as_array().unwrap()),
            [format!("wake {round}")]
        );
        // From the message's commit (its server timestamp) to the poll's answer
        // arriving: the wake itself, without the send request's own cost.
        let committed = std::time::UNIX_EPOCH
            + Duration::from_secs_f64(messages[0]["timestamp"].as_f64().unwrap());
        worst = worst.max(answered.duration_since(committed).unwrap_or_default());
    }
    // Woken, not sleep-polled: the seed answers after up to 500 ms. The benchmark
    // reports the real figure; this bound only has to be stable on a busy machine.
    assert!(worst < Duration::from_millis(250), "slowest wake {worst:?}");

    let bad = poll(&app, &cookie, "last_id=abc").await;
    crate::helpers::assert_envelope(&json_with_status(bad, 400).await, "invalid_position");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realtime_routes_refuse_strangers_and_foreign_pages() {
    let app = spawn_app(Backend::Sqlite).await;
    // No identity: 401 before any upgrade or stream.
    for path in ["/ws", "/ws/7"] {
        match try_ws(&app, path, &[]).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401, "{path}"),
            other => panic!("{path}: expected a 401, got {other:?}"),
        }
    }
    for path in [
        "/api/rooms/general/events",
        "/api/poll?timeout=0",
        "/stream",
        "/notifications",
        "/api/rooms",
    ] {
        let response = app.anonymous().get(app.url(path)).send().await.unwrap();
        crate::helpers::assert_envelope(&json_with_status(response, 401).await, "unauthenticated");
    }
    // A cookie-authenticated upgrade from another site's page: refused.
    let cookie = admin_cookie(&app).await;
    match try_ws(
        &app,
        "/ws",
        &[
            ("cookie", cookie.clone()),
            ("origin", "https://evil.example".into()),
        ],
    )
    .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a 403, got {other:?}"),
    }
    // Same origin, or a client that is not a browser (no Origin): accepted.
    open_ws(&app, "/ws", &cookie).await;
    try_ws(&app, "/ws", &[("cookie", cookie)])
        .await
        .expect("no Origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_flooding_clients_get_errors_and_others_are_unaffected() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.realtime.max_message_chars = 100
    })
    .await;
    let cookie = admin_cookie(&app).await;
    let mut bystander = ws_in_room(&app, &cookie, "calm", None).await;
    let mut ws = ws_in_room(&app, &cookie, "calm", None).await;

    send_frame(
        &mut ws,
        json!({"type": "send", "room": "calm", "text": "x".repeat(101)}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "validation_failed");
    send_frame(
        &mut ws,
        json!({"type": "send", "room": "calm", "text": "y".repeat(10_000)}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "payload_too_large");

    // A flood: the budget (10/s, bursts of 20) lets some through, then refuses.
    for i in 0..60 {
        send_frame(
            &mut ws,
            json!({"type": "send", "room": "calm", "text": format!("f{i}")}),
        )
        .await;
    }
    assert_eq!(next_of(&mut ws, "error").await["code"], "rate_limited");
    // A frame beyond the protocol cap closes that connection, and only it.
    let _ = ws.send(Frame::text("z".repeat(2 * 1024 * 1024))).await;
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(frame) = ws.next().await {
            if let Ok(Frame::Close(close)) = frame {
                return close.map(|c| u16::from(c.code));
            }
            if frame.is_err() {
                return None;
            }
        }
        None
    })
    .await
    .expect("the oversized connection ends");
    if let Some(code) = closed {
        assert_eq!(code, 1009);
    }

    let mut flood_seen = 0;
    loop {
        let message = next_of(&mut bystander, "message").await;
        if message["text"].as_str().unwrap().starts_with('f') {
            flood_seen += 1;
        }
        if flood_seen >= 10 {
            break;
        }
    }
    let mut fresh = ws_in_room(&app, &cookie, "calm", None).await;
    send_frame(
        &mut fresh,
        json!({"type": "send", "room": "calm", "text": "still here"}),
    )
    .await;
    loop {
        if next_of(&mut bystander, "message").await["text"] == "still here" {
            break;
        }
    }
}

async fn a_position_older_than_retention_gets_a_reset(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.realtime.history_max_messages = 3;
        config.rate.enabled = false;
    })
    .await;
    let cookie = admin_cookie(&app).await;
    for i in 0..6 {
        json_with_status(
            post_send(
                &app,
                &cookie,
                json!({"text": format!("r{i}"), "room": "short"}),
            )
            .await,
            201,
        )
        .await;
    }
    let deleted = app.state.store.prune_messages(3, 0).await.unwrap();
    assert_eq!(deleted, 3);
    let kept = json_with_status(app.get("/api/rooms/short/messages").await, 200).await;
    assert_eq!(texts(kept.as_array().unwrap()), ["r3", "r4", "r5"]);

    // Within retention: replayed. Before it: reset, on every transport.
    let mut ws = ws_in_room(&app, &cookie, "short", Some(3)).await;
    assert_eq!(next_of(&mut ws, "message").await["id"], 4);
    let mut ws = ws_in_room(&app, &cookie, "short", Some(1)).await;
    let reset = next_of(&mut ws, "reset").await;
    assert_eq!(
        (reset["room"].as_str(), reset["reason"].as_str()),
        (Some("short"), Some("history_pruned"))
    );
    let mut sse = open_sse(&app, "/api/rooms/short/events?since=1", &cookie, None).await;
    assert_eq!(
        next_sse_named(&mut sse, "reset").await["reason"],
        "history_pruned"
    );
    let gone = poll(&app, &cookie, "room=short&last_id=1").await;
    let body = json_with_status(gone, 410).await;
    crate::helpers::assert_envelope(&body, "reset");
    assert!(
        body["error"].as_str().unwrap().contains("no longer kept"),
        "{body}"
    );
    // A position from the future (another database?) is a reset too, and says so.
    let mut ws = ws_in_room(&app, &cookie, "short", Some(99)).await;
    assert_eq!(next_of(&mut ws, "reset").await["reason"], "position_ahead");
    let ahead = poll(&app, &cookie, "room=short&last_id=99").await;
    let body = json_with_status(ahead, 410).await;
    crate::helpers::assert_envelope(&body, "reset");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("beyond the room's newest") && error.contains("last_id="),
        "{body}"
    );
}

async fn mentions_and_admin_changes_notify_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_cookie(&app).await;
    let (bob, bob_cookie) = member_cookie(&app, "Bob").await;
    let mut stream = open_sse(&app, "/notifications", &bob_cookie, None).await;

    json_with_status(
        post_send(
            &app,
            &admin,
            json!({"text": "hey @bob, look", "room": "general"}),
        )
        .await,
        201,
    )
    .await;
    let (_, mention) = next_sse_message(&mut stream).await;
    assert_eq!(mention["event"]["type"], "mention");
    assert_eq!(mention["event"]["room"], "general");
    assert!(
        mention["text"]
            .as_str()
            .unwrap()
            .contains("mentioned you in #general")
    );

    let id = bob["id"].as_i64().unwrap();
    json_with_status(
        app.patch_json(&format!("/api/users/{id}"), &json!({"name": "Robert"}))
            .await,
        200,
    )
    .await;
    let (_, change) = next_sse_message(&mut stream).await;
    assert_eq!(change["event"]["type"], "account_changed");

    let listed = reqwest::Client::new()
        .get(app.url("/api/notifications"))
        .header("cookie", &bob_cookie)
        .send()
        .await
        .unwrap();
    let listed = json_with_status(listed, 200).await;
    let kinds: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["mention", "account_changed"]);
    // Nobody else reads Bob's notifications.
    let admins = json_with_status(app.get("/api/notifications").await, 200).await;
    assert_eq!(admins, json!([]));
}

async fn the_stats_stream_ticks_and_multi_room_ids_resume_every_room(backend: Backend) {
    let app = spawn_unlimited(backend).await;
    let cookie = admin_cookie(&app).await;
    let mut stats = open_sse(&app, "/stream", &cookie, None).await;
    let (_, first) = next_sse_message(&mut stats).await;
    let (_, second) = next_sse_message(&mut stats).await;
    assert_eq!(
        (first["count"].as_i64(), second["count"].as_i64()),
        (Some(0), Some(1))
    );
    assert!(second["connections"].as_u64().is_some() && second["uptime_secs"].as_u64().is_some());

    for (room, text) in [("a", "a1"), ("b", "b1"), ("a", "a2")] {
        json_with_status(
            post_send(&app, &cookie, json!({"text": text, "room": room})).await,
            201,
        )
        .await;
    }
    let mut both = open_sse(&app, "/api/events?rooms=a,b&since=a:0,b:0", &cookie, None).await;
    let mut last_id = String::new();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (id, message) = next_sse_message(&mut both).await;
        seen.push(message["text"].as_str().unwrap().to_owned());
        last_id = id;
    }
    seen.sort();
    assert_eq!(seen, ["a1", "a2", "b1"]);
    assert_eq!(last_id, "a:2,b:1");
    json_with_status(
        post_send(&app, &cookie, json!({"text": "b2", "room": "b"})).await,
        201,
    )
    .await;
    let mut resumed = open_sse(&app, "/api/events?rooms=a,b", &cookie, Some(&last_id)).await;
    let (id, message) = next_sse_message(&mut resumed).await;
    assert_eq!(
        (id.as_str(), message["text"].as_str()),
        ("a:2,b:2", Some("b2"))
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for series in ["realtime_connections", "realtime_messages_total"] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
}

async fn shutdown_tells_realtime_clients_to_reconnect_and_finishes(backend: Backend) {
    let app = spawn_app_with(backend, |config| config.http.shutdown_grace_secs = 5).await;
    let cookie = admin_cookie(&app).await;
    let mut ws = ws_in_room(&app, &cookie, "general", None).await;
    let mut sse = open_sse(&app, "/api/rooms/general/events", &cookie, None).await;
    let waiting_poll = tokio::spawn({
        let url = app.url("/api/poll?timeout=30");
        let cookie = cookie.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    // Shut down only once the poll is waiting in the hub (beside the WebSocket and
    // the SSE stream): a request the server has not read yet is not in flight, and
    // graceful shutdown rightly closes its connection.
    tokio::time::timeout(WAIT, async {
        while app.state.hub.stats.connections.load(Ordering::Relaxed) < 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the long poll reaches the hub");

    let started = Instant::now();
    app.shutdown().await.expect("a clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );

    let close = tokio::time::timeout(WAIT, async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Frame::Close(close) = frame {
                return close;
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1012, "service restart: reconnect");
    let ended = tokio::time::timeout(WAIT, async { while sse.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the SSE stream ended");
    assert_eq!(waiting_poll.await.unwrap(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_account_and_per_address() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.realtime.connections_per_user = 2;
        config.realtime.connections_per_ip = 3;
    })
    .await;
    let admin = admin_cookie(&app).await;
    let (_, member) = member_cookie(&app, "Mia").await;
    let first = open_ws(&app, "/ws", &admin).await;
    let _second = open_ws(&app, "/ws", &admin).await;
    let over_account = try_ws(&app, "/ws", &[("cookie", admin.clone())]).await;
    match over_account {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("a third connection of one account: {other:?}"),
    }
    // SSE counts too, and so does the address: Mia's first is the address's third.
    let _mia = open_sse(&app, "/api/rooms/general/events", &member, None).await;
    let over_address = reqwest::Client::new()
        .get(app.url("/api/rooms/general/events"))
        .header("cookie", &member)
        .send()
        .await
        .unwrap();
    crate::helpers::assert_envelope(&json_with_status(over_address, 429).await, "rate_limited");
    // Closing one frees its place.
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(ws) = try_ws(&app, "/ws", &[("cookie", admin.clone())]).await {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "a closed connection gave its place back");
}

/// Replays are read a page at a time (8 messages here: the page shrinks as messages
/// may grow); across pages every transport gets every id once, in order, then live.
async fn replays_cross_page_boundaries_then_go_live_on_every_transport(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.rate.enabled = false;
        config.realtime.send_per_second = 100_000;
        config.realtime.max_message_chars = 32_768;
    })
    .await;
    assert_eq!(app.state.hub.replay_page(), 8);
    let cookie = admin_cookie(&app).await;
    for i in 1..=30 {
        let room = if i % 3 == 0 { "pb" } else { "pa" };
        json_with_status(
            post_send(
                &app,
                &cookie,
                json!({"text": format!("m{i}"), "room": room}),
            )
            .await,
            201,
        )
        .await;
    }
    // pa has 20 messages, pb 10.
    let mut ws = ws_in_room(&app, &cookie, "pa", Some(1)).await;
    for expected in 2..=20 {
        assert_eq!(next_of(&mut ws, "message").await["id"], expected);
    }
    let mut sse = open_sse(&app, "/api/rooms/pa/events?since=3", &cookie, None).await;
    for expected in 4..=20 {
        assert_eq!(next_sse_message(&mut sse).await.0, expected.to_string());
    }
    let mut both = open_sse(
        &app,
        "/api/events?rooms=pa,pb&since=pa:10,pb:0",
        &cookie,
        None,
    )
    .await;
    let mut last_id = String::new();
    let mut seen = std::collections::BTreeMap::<String, Vec<i64>>::new();
    for _ in 0..20 {
        let (id, message) = next_sse_message(&mut both).await;
        seen.entry(message["room"].as_str().unwrap().to_owned())
            .or_default()
            .push(message["id"].as_i64().unwrap());
        last_id = id;
    }
    assert_eq!(seen["pa"], (11..=20).collect::<Vec<_>>());
    assert_eq!(seen["pb"], (1..=10).collect::<Vec<_>>());
    assert_eq!(last_id, "pa:20,pb:10");
    let polled = json_with_status(poll(&app, &cookie, "room=pa&last_id=2").await, 200).await;
    assert_eq!(
        polled.as_array().unwrap().len(),
        18,
        "a poll reads its own page"
    );

    json_with_status(
        post_send(&app, &cookie, json!({"text": "live", "room": "pa"})).await,
        201,
    )
    .await;
    assert_eq!(next_of(&mut ws, "message").await["id"], 21);
    assert_eq!(next_sse_message(&mut sse).await.0, "21");
    assert_eq!(next_sse_message(&mut both).await.0, "pa:21,pb:10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_are_budgeted_and_rooms_per_connection_capped() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.realtime.rooms_per_connection = 2;
    })
    .await;
    let cookie = admin_cookie(&app).await;
    let mut ws = ws_in_room(&app, &cookie, "one", None).await;
    send_frame(&mut ws, json!({"type": "join", "room": "two"})).await;
    next_of(&mut ws, "presence").await;
    send_frame(&mut ws, json!({"type": "join", "room": "three"})).await;
    let refused = next_of(&mut ws, "error").await;
    assert_eq!(refused["code"], "too_many_rooms", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("at most 2 rooms")
    );
    // Leaving makes room.
    send_frame(&mut ws, json!({"type": "leave", "room": "two"})).await;
    send_frame(&mut ws, json!({"type": "join", "room": "three"})).await;
    assert_eq!(next_of(&mut ws, "presence").await["room"], "three");

    // A flood of leave/join frames: the control budget (bursts of 10, then 5 a
    // second) refuses most of it.
    for _ in 0..30 {
        send_frame(&mut ws, json!({"type": "leave", "room": "nowhere"})).await;
    }
    assert_eq!(next_of(&mut ws, "error").await["code"], "rate_limited");

    let over = reqwest::Client::new()
        .get(app.url("/api/events?rooms=a,b,c"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    crate::helpers::assert_envelope(&json_with_status(over, 400).await, "invalid_rooms");
}

/// Every SSE stream carries a `ping` event every few seconds, even in a silent room:
/// EventSource hides comments from the page, so a named event is what lets the page
/// tell a quiet connection from a dead one (web/static/realtime.js).
#[tokio::test]
async fn sse_streams_carry_a_visible_ping_when_quiet() {
    let app = spawn_app(Backend::Sqlite).await;
    let cookie = admin_cookie(&app).await;
    for path in ["/api/events?rooms=quiet", "/notifications"] {
        let mut sse = open_sse(&app, path, &cookie, None).await;
        let started = Instant::now();
        let ping = next_sse_named(&mut sse, "ping").await;
        assert_eq!(ping, json!({}), "{path}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

/// Long polling follows the caller's own notification room like the other transports
/// (the chat page carries the bell on its one connection), and nobody else's.
#[tokio::test]
async fn long_polling_reads_only_ones_own_notification_room() {
    let app = spawn_app(Backend::Sqlite).await;
    let own = app
        .get(&format!("/api/poll?room=user:{}&timeout=0", app.admin_id()))
        .await;
    assert_eq!(own.status(), 200);
    let other = app
        .get(&format!(
            "/api/poll?room=user:{}&timeout=0",
            app.admin_id() + 1
        ))
        .await;
    assert!(other.status().is_client_error(), "{}", other.status());
}

/// A room followed with `watch` (the WebSocket's join frame, SSE's `?watch=`) gets
/// its messages without its user counted present: a chat page keeps the unread
/// counts of rooms it does not show without telling their members it is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_rooms_deliver_without_presence() {
    let app = spawn_app(Backend::Sqlite).await;
    let (_, alice_cookie) = member_cookie(&app, "Alice").await;
    let (_, bob_cookie) = member_cookie(&app, "Bob").await;
    let mut a = ws_in_room(&app, &alice_cookie, "lobby", None).await;
    let presence = |app: &crate::helpers::TestApp| {
        let request = reqwest::Client::new()
            .get(app.url("/api/rooms/lobby/presence"))
            .header("cookie", alice_cookie.clone());
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let mut b = open_ws(&app, "/ws", &bob_cookie).await;
    send_frame(
        &mut b,
        json!({"type": "join", "room": "lobby", "watch": true}),
    )
    .await;
    next_of(&mut b, "presence").await;
    let mut sse = open_sse(
        &app,
        "/api/events?rooms=lobby&watch=lobby",
        &bob_cookie,
        None,
    )
    .await;
    assert_eq!(presence(&app).await["count"], 1, "Bob watches, unseen");

    send_frame(
        &mut a,
        json!({"type": "send", "room": "lobby", "text": "hi", "client_id": "w-1"}),
    )
    .await;
    assert_eq!(next_of(&mut b, "message").await["text"], "hi");
    assert_eq!(next_sse_message(&mut sse).await.1["text"], "hi");

    // Joined the ordinary way, Bob is present, and Alice hears of it.
    let _c = ws_in_room(&app, &bob_cookie, "lobby", None).await;
    let joined = next_of(&mut a, "user_joined").await;
    assert_eq!(joined["user"]["name"], "Bob");
    assert_eq!(presence(&app).await["count"], 2);
}
