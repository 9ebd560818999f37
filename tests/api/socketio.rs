//! Socket.IO from Rust (Engine.IO 4 framing over tokio-tungstenite, see `clients.rs`):
//! the WebSocket transport's payload limit, and `join_room` / `leave_room` rights and
//! notices. The Flask-SocketIO chat's events with socket.io-client are in
//! e2e/socketio.test.js.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::store::Backend;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::clients::*;
use crate::helpers::{TestApp, json_with_status, spawn_app_with};

/// Every event `ws` gets until it has been quiet for `quiet`, or `None` in place of
/// the list once the transport closed.
async fn events_until_quiet(ws: &mut Ws, quiet: Duration) -> Option<Vec<(String, Value)>> {
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(quiet, ws.next()).await {
            Err(_) => return Some(events),
            Ok(Some(Ok(Frame::Text(text)))) => {
                if text.as_str() == "2" {
                    let _ = ws.send(Frame::text("3")).await;
                } else if let Some(body) = text.strip_prefix("42") {
                    let mut parts: Vec<Value> = serde_json::from_str(body).unwrap();
                    let data = if parts.len() > 1 {
                        parts.remove(1)
                    } else {
                        Value::Null
                    };
                    events.push((parts[0].as_str().unwrap().to_owned(), data));
                } else if text.as_str() == "41" {
                    return None;
                }
            }
            Ok(Some(Ok(Frame::Close(_))) | None | Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Events until `enough` holds of them (at most `limit`), then until `quiet` passes
/// with none: what a client hears of something that may take a moment on a busy
/// machine, and nothing more after it.
async fn events_until(
    ws: &mut Ws,
    enough: impl Fn(&[(String, Value)]) -> bool,
    limit: Duration,
    quiet: Duration,
) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut events = Vec::new();
    while !enough(&events) && tokio::time::Instant::now() < deadline {
        events.extend(
            events_until_quiet(ws, Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    events.extend(events_until_quiet(ws, quiet).await.unwrap());
    events
}

fn notices(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(event, data)| {
            event == "message" && data.get("message").is_some() && data.get("id").is_none()
        })
        .map(|(_, data)| data["message"].as_str().unwrap().to_owned())
        .collect()
}

fn errors(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(event, _)| event == "error")
        .map(|(_, data)| data["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |config| config.rate.enabled = false).await
}

/// The handshake advertises `maxPayload`; over the WebSocket transport a message
/// larger than that closes the transport as its header arrives, as the polling
/// transport refuses such a body, instead of being read and parsed whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_over_the_advertised_max_payload_close_the_transport() {
    let app = app().await;
    let auth = Auth::Cookie(admin_cookie(&app).await);
    let mut raw = try_ws(
        &app,
        "/socket.io/?EIO=4&transport=websocket",
        &auth.headers(&app),
    )
    .await
    .unwrap();
    let open = sio_packet(&mut raw).await.unwrap();
    let handshake: Value = serde_json::from_str(&open[1..]).unwrap();
    let max_payload = handshake["maxPayload"].as_u64().unwrap() as usize;
    assert_eq!(max_payload, 68_096, "four maximal messages' worth");
    drop(raw);

    // Under the limit: read, refused for its text, and the socket goes on.
    let mut sio = open_sio(&app, &auth).await;
    let near = "x".repeat(max_payload - 100);
    sio_emit(&mut sio, "message", json!({ "message": near })).await;
    let events = events_until_quiet(&mut sio, Duration::from_millis(500))
        .await
        .expect("still open");
    assert_eq!(errors(&events), ["validation_failed"], "{events:?}");

    // Over it: events of 2 MB and of 10 MB.
    for size in [2 << 20, 10 << 20] {
        let mut sio = open_sio(&app, &auth).await;
        let packet = format!("42{}", json!(["message", { "message": "y".repeat(size) }]));
        let _ = sio.send(Frame::text(packet)).await;
        let closed = tokio::time::timeout(WAIT, events_until_quiet(&mut sio, WAIT)).await;
        assert!(
            matches!(closed, Ok(None)),
            "a {size}-byte message must close the transport: {closed:?}"
        );
    }
    let stored = json_with_status(app.get("/api/rooms/general/messages?since=0").await, 200).await;
    assert_eq!(stored, json!([]));
}

/// `join_room` / `leave_room` name only rooms the caller may (a public room, or
/// its own notifications); a room hears of a member when membership changes, never
/// of a leave by a non-member, and never more often than the socket's budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_room_and_leave_room_check_the_room_and_notify_within_a_budget() {
    let app = app().await;
    let (alice, alice_cookie) = member_cookie(&app, "Alice").await;
    let (bob, bob_cookie) = member_cookie(&app, "Bob").await;
    let (alice_id, bob_id) = (alice["id"].as_i64().unwrap(), bob["id"].as_i64().unwrap());
    let mut a = open_sio(&app, &Auth::Cookie(alice_cookie)).await;
    let mut b = open_sio(&app, &Auth::Cookie(bob_cookie)).await;
    let bob_private = format!("user:{bob_id}");
    sio_emit(&mut b, "join_room", json!({ "room": bob_private })).await;
    sio_emit(&mut b, "join_room", json!({ "room": "spam" })).await;
    let own = events_until_quiet(&mut b, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        errors(&own).is_empty(),
        "Bob may join his own room: {own:?}"
    );

    // Bob's private room, and names that are no room: refused, nobody told.
    for event in ["join_room", "leave_room"] {
        for room in [bob_private.as_str(), "no such room!", ""] {
            sio_emit(&mut a, event, json!({ "room": room })).await;
        }
    }
    let refused = events_until_quiet(&mut a, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(errors(&refused).len(), 6, "{refused:?}");
    assert!(errors(&refused).iter().all(|code| code == "invalid_room"));
    // Alice's own notification room is hers to join, and tells nobody.
    sio_emit(
        &mut a,
        "join_room",
        json!({ "room": format!("user:{alice_id}") }),
    )
    .await;

    // Leaving a room she is not in, 200 times: nothing reaches it. (Fewer than the
    // socket's command queue holds, 256: past it commands are refused with
    // `rate_limited`, and the joins below could be among them.)
    for _ in 0..200 {
        sio_emit(&mut a, "leave_room", json!({ "room": "spam" })).await;
    }
    // Joining it twice: one notice (after the 200 leaves, which a busy machine may
    // take a while to get through).
    sio_emit(&mut a, "join_room", json!({ "room": "spam" })).await;
    sio_emit(&mut a, "join_room", json!({ "room": "spam" })).await;
    let heard = events_until(
        &mut b,
        |events| !notices(events).is_empty(),
        Duration::from_secs(10),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(notices(&heard), ["You joined room: spam"], "{heard:?}");

    // Leaving and joining 150 times over: the connection's control budget (a
    // burst of as many joins as rooms it may follow, 50 by default, of which 3
    // are spent, then 5 a second) stops the flood, and Alice is told.
    for _ in 0..150 {
        sio_emit(&mut a, "leave_room", json!({ "room": "spam" })).await;
        sio_emit(&mut a, "join_room", json!({ "room": "spam" })).await;
    }
    let heard = events_until_quiet(&mut b, Duration::from_millis(500))
        .await
        .unwrap();
    let count = notices(&heard).len();
    assert!(
        (10..=60).contains(&count),
        "{count} notices reached the room"
    );
    let told = events_until_quiet(&mut a, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(
        errors(&told).iter().any(|code| code == "rate_limited"),
        "{told:?}"
    );
}
