//! Presence across instances (issue 18): two instances on one database and one Redis
//! show the same members, counts and `user_joined` / `user_left` (and Socket.IO's
//! `user_count`); a user with a tab on each is present once; a killed instance's
//! members leave within seconds; while Redis is down presence falls back to each
//! instance's own and comes back with it. Runs when `TEST_REDIS_URL` is set.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::hub::shared_presence::{HEARTBEAT, TTL};
use switchboard::store::Backend;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::clients::*;
use crate::helpers::{TestApp, json_with_status, spawn_app_with};
use crate::scale_out::{OwnRedis, clean, redis_url};

fn backend() -> Backend {
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Two instances on one database and the Redis at `url` (keys under `prefix`).
async fn two_instances(url: &str, prefix: &str) -> (TestApp, TestApp) {
    let shared = |c: &mut switchboard::Config| {
        c.database.redis_url = Some(url.into());
        c.database.redis_prefix = prefix.to_owned();
        c.rate.enabled = false;
    };
    let a = spawn_app_with(backend(), shared).await;
    let database = a.db.url.clone();
    let b = spawn_app_with(backend(), |c| {
        shared(c);
        c.database.url = database.into();
    })
    .await;
    (a, b)
}

fn prefix() -> String {
    format!("switchboard-test:{}:", uuid::Uuid::new_v4())
}

/// `GET /api/rooms/{room}/presence` on `app`.
async fn presence(app: &TestApp, room: &str) -> Value {
    json_with_status(app.get(&format!("/api/rooms/{room}/presence")).await, 200).await
}

fn names(presence: &Value) -> Vec<&str> {
    presence["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect()
}

/// Waits until `app` counts `count` members in `room`; returns how long that took.
async fn until_count(app: &TestApp, room: &str, count: i64) -> Duration {
    let started = Instant::now();
    loop {
        if presence(app, room).await["count"] == count {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{room} on {} never counted {count}: {}",
            app.address,
            presence(app, room).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next frame of type `kind` within `limit` (others skipped).
async fn next_within(ws: &mut Ws, kind: &str, limit: Duration) -> Value {
    tokio::time::timeout(limit, async {
        loop {
            let frame = ws.next().await.expect("open").expect("a valid frame");
            if let Frame::Text(text) = frame {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == kind {
                    return frame;
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} within {limit:?}"))
}

fn who(change: &Value) -> (&str, i64) {
    (
        change["user"]["name"].as_str().unwrap(),
        change["count"].as_i64().unwrap(),
    )
}

/// Two people in one room, each on an instance of their own: each sees the other in
/// the presence answer and hears the other join and leave, with the count of both
/// instances; both instances list the same members. An instance that stops cleanly
/// takes its members with it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_on_two_instances_see_each_other() {
    let Some(url) = redis_url("two_people_on_two_instances_see_each_other") else {
        return;
    };
    let prefix = prefix();
    let (a, b) = two_instances(&url, &prefix).await;
    let (_, alice_cookie) = member_cookie(&a, "Alice").await;
    let (_, bob_cookie) = member_cookie(&a, "Bob").await;

    let mut alice = ws_in_room(&a, &alice_cookie, "lobby", None).await;
    let crossed = until_count(&b, "lobby", 1).await;
    let mut bob = open_ws(&b, "/ws", &bob_cookie).await;
    assert_eq!(next_frame(&mut bob).await["type"], "welcome");
    send_frame(&mut bob, json!({"type": "join", "room": "lobby"})).await;
    let snapshot = next_of(&mut bob, "presence").await;
    assert_eq!(snapshot["count"], 2, "{snapshot}");
    assert_eq!(names(&snapshot), ["Alice", "Bob"]);
    let joined = next_of(&mut alice, "user_joined").await;
    assert_eq!(who(&joined), ("Bob", 2));
    for app in [&a, &b] {
        let listed = presence(app, "lobby").await;
        assert_eq!(
            (listed["count"].as_i64(), names(&listed)),
            (Some(2), vec!["Alice", "Bob"])
        );
    }
    // The room list (rooms with messages) counts both too.
    realtime_send(&a, &alice_cookie, json!({"text": "hi", "room": "lobby"})).await;
    let rooms = json_with_status(b.get("/api/rooms").await, 200).await;
    let lobby = rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "lobby");
    assert_eq!(lobby.expect("listed")["present"], 2, "{rooms}");

    // Alice leaves on A: Bob, on B, hears it; and comes back.
    alice.close(None).await.unwrap();
    let left = next_of(&mut bob, "user_left").await;
    assert_eq!(who(&left), ("Alice", 1));
    until_count(&a, "lobby", 1).await;
    let mut alice = ws_in_room(&a, &alice_cookie, "lobby", None).await;
    assert_eq!(who(&next_of(&mut bob, "user_joined").await), ("Alice", 2));

    // B stops cleanly with Bob still connected: he leaves A's room at once, not
    // after his instance's entries expire.
    let stopped = Instant::now();
    b.shutdown().await.unwrap();
    let left = next_within(&mut alice, "user_left", TTL).await;
    assert_eq!(who(&left), ("Bob", 1));
    eprintln!(
        "two_people_on_two_instances_see_each_other: a join crossed instances in {crossed:?}; \
         a clean stop took its members away in {:?}",
        stopped.elapsed()
    );
    assert_eq!(presence(&a, "lobby").await["count"], 1);
    clean(&url, &prefix).await;
}

/// Bob has a tab on each instance: present once, no notice when his second tab
/// arrives or his first leaves, and `user_left` when his last tab anywhere does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_tabs_on_both_instances_is_present_once() {
    let Some(url) = redis_url("a_user_with_tabs_on_both_instances_is_present_once") else {
        return;
    };
    let prefix = prefix();
    let (a, b) = two_instances(&url, &prefix).await;
    let (_, carl_cookie) = member_cookie(&a, "Carl").await;
    let (_, bob_cookie) = member_cookie(&a, "Bob").await;
    let mut carl = ws_in_room(&a, &carl_cookie, "tabs", None).await;
    let mut on_a = ws_in_room(&a, &bob_cookie, "tabs", None).await;
    assert_eq!(who(&next_of(&mut carl, "user_joined").await), ("Bob", 2));

    let mut on_b = ws_in_room(&b, &bob_cookie, "tabs", None).await;
    until_count(&b, "tabs", 2).await;
    // Time for B's change to reach A, had it been announced as a join.
    tokio::time::sleep(HEARTBEAT).await;
    let marker =
        |text: &str| realtime_send(&a, &carl_cookie, json!({"text": text, "room": "tabs"}));
    marker("after the second tab").await;
    let next = next_frame(&mut carl).await;
    assert_eq!(
        next["type"], "message",
        "no notice for a second tab: {next}"
    );

    // His tab on A goes: still present (on B), nobody hears of it.
    let connections = || {
        a.state
            .hub
            .stats
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = connections();
    on_a.close(None).await.unwrap();
    let started = Instant::now();
    while connections() == before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "A kept the tab"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let listed = presence(&a, "tabs").await;
    assert_eq!(
        (listed["count"].as_i64(), names(&listed)),
        (Some(2), vec!["Bob", "Carl"])
    );
    marker("after the first tab left").await;
    let next = next_frame(&mut carl).await;
    assert_eq!(next["type"], "message", "Bob is still on B: {next}");

    // His last tab, on B, goes: Carl (on A) hears he left.
    on_b.close(None).await.unwrap();
    assert_eq!(who(&next_of(&mut carl, "user_left").await), ("Bob", 1));
    until_count(&b, "tabs", 1).await;
    drop(b);
    clean(&url, &prefix).await;
}

async fn realtime_send(app: &TestApp, cookie: &str, body: Value) {
    assert_eq!(post_send(app, cookie, body).await.status(), 201);
}

/// A second instance as a process of its own, to be killed: it answers at `address`.
struct Process {
    child: Child,
    address: std::net::SocketAddr,
}

impl Process {
    fn start(database_url: &str, redis_url: &str, prefix: &str) -> Self {
        use std::io::{BufRead, BufReader};
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .current_dir(dir.path())
            .args(["--bind", "127.0.0.1:0", "--log-format", "json"])
            .args(["--database-url", database_url, "--redis-url", redis_url])
            .args(["--redis-prefix", prefix, "--rate-limits", "false"])
            .args(["--demo-users", "false"])
            .env_remove("RUST_LOG")
            .env("SWITCHBOARD_ADMIN_PASSWORD", crate::helpers::ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("\"listening\"") {
                    let value: Value = serde_json::from_str(&line).unwrap();
                    let _ = address_tx.send(value["address"].as_str().unwrap().to_owned());
                }
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the instance says where it listens")
            .parse()
            .unwrap();
        Self { child, address }
    }

    /// A browser's WebSocket to it, joined to `room`.
    async fn ws_in_room(&self, cookie: &str, room: &str) -> Ws {
        let mut request = format!("ws://{}/ws", self.address)
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert("cookie", cookie.parse().unwrap());
        headers.insert(
            "origin",
            format!("http://{}", self.address).parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(next_frame(&mut ws).await["type"], "welcome");
        ws.send(Frame::text(
            json!({"type": "join", "room": room}).to_string(),
        ))
        .await
        .unwrap();
        next_of(&mut ws, "presence").await;
        ws
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An instance killed with SIGKILL (no goodbye) takes its members out of the other
/// instances' rooms within `TTL + HEARTBEAT` (its Redis entries expire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_members_leave_within_seconds() {
    const TEST: &str = "a_killed_instances_members_leave_within_seconds";
    let Some(url) = redis_url(TEST) else {
        return;
    };
    let prefix = prefix();
    let a = spawn_app_with(backend(), |c| {
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
        c.rate.enabled = false;
    })
    .await;
    let b = Process::start(&a.db.url, &url, &prefix);
    let (_, carl_cookie) = member_cookie(&a, "Carl").await;
    let (_, bob_cookie) = member_cookie(&a, "Bob").await;
    let mut carl = ws_in_room(&a, &carl_cookie, "doomed", None).await;
    let _bob = b.ws_in_room(&bob_cookie, "doomed").await;
    assert_eq!(who(&next_of(&mut carl, "user_joined").await), ("Bob", 2));

    let mut b = b;
    b.child.kill().unwrap();
    let killed = Instant::now();
    b.child.wait().unwrap();
    let bound = TTL + HEARTBEAT + Duration::from_secs(3);
    let left = next_within(&mut carl, "user_left", bound).await;
    let took = killed.elapsed();
    assert_eq!(who(&left), ("Bob", 1));
    eprintln!("{TEST}: the killed instance's member left the other's room {took:?} after SIGKILL");
    assert!(
        took >= TTL - HEARTBEAT,
        "left before it could expire: {took:?}"
    );
    assert_eq!(presence(&a, "doomed").await["count"], 1);
    clean(&url, &prefix).await;
}

/// Redis dies: joins stay fast, and once Redis has been gone for `TTL` each instance
/// counts only its own members (the others leave); when Redis is back they return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_presence_is_local_and_comes_back_with_it() {
    const TEST: &str = "while_redis_is_down_presence_is_local_and_comes_back_with_it";
    let Some(mut redis) = OwnRedis::start(TEST) else {
        return;
    };
    let url = redis.url();
    let (a, b) = two_instances(&url, "switchboard:").await;
    let (_, carl_cookie) = member_cookie(&a, "Carl").await;
    let (_, bob_cookie) = member_cookie(&a, "Bob").await;
    let (_, dan_cookie) = member_cookie(&a, "Dan").await;
    let mut carl = ws_in_room(&a, &carl_cookie, "weather", None).await;
    let _bob = ws_in_room(&b, &bob_cookie, "weather", None).await;
    assert_eq!(who(&next_of(&mut carl, "user_joined").await), ("Bob", 2));

    redis.kill();
    // The first call after the kill pays for finding out (the breaker's timeout);
    // later joins skip Redis.
    tokio::time::sleep(HEARTBEAT * 2).await;
    let started = Instant::now();
    let _dan = ws_in_room(&a, &dan_cookie, "weather", None).await;
    let join = started.elapsed();
    assert_eq!(who(&next_of(&mut carl, "user_joined").await).0, "Dan");
    let left = next_within(&mut carl, "user_left", TTL + HEARTBEAT * 3).await;
    assert_eq!(who(&left), ("Bob", 2), "Carl and Dan, on A");
    let listed = presence(&a, "weather").await;
    assert_eq!(names(&listed), ["Carl", "Dan"]);

    redis.restart();
    let back = Instant::now();
    let returned = next_within(&mut carl, "user_joined", Duration::from_secs(10)).await;
    assert_eq!(who(&returned), ("Bob", 3));
    let again = back.elapsed();
    until_count(&b, "weather", 3).await;
    eprintln!(
        "{TEST}: a join during the outage took {join:?}; Bob was back in A's room {again:?} \
         after Redis restarted"
    );
    assert!(join < Duration::from_millis(500), "join took {join:?}");
    drop(b);
}

/// Socket.IO: `user_joined` / `user_left` reach the sockets of the other instance,
/// and `user_count` counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_notices_and_user_count_cross_instances() {
    let Some(url) = redis_url("socket_io_notices_and_user_count_cross_instances") else {
        return;
    };
    let prefix = prefix();
    let (a, b) = two_instances(&url, &prefix).await;
    let (_, ann_cookie) = member_cookie(&a, "Ann").await;
    let (_, ben_cookie) = member_cookie(&a, "Ben").await;
    let mut ann = open_sio(&a, &Auth::Cookie(ann_cookie)).await;
    let mut ben = open_sio(&b, &Auth::Cookie(ben_cookie)).await;
    async fn notice(sio: &mut Ws, event: &str, username: &str) -> i64 {
        loop {
            let (name, data) = sio_event(sio).await.expect("connected");
            if name == event && data["username"] == username {
                return data["user_count"].as_i64().unwrap();
            }
        }
    }

    sio_emit(&mut ann, "join", json!({"username": "ann"})).await;
    assert_eq!(notice(&mut ann, "user_joined", "ann").await, 1);
    until_count(&b, "general", 1).await;
    sio_emit(&mut ben, "join", json!({"username": "ben"})).await;
    assert_eq!(
        notice(&mut ben, "user_joined", "ben").await,
        2,
        "Ann counts on B"
    );
    assert_eq!(
        notice(&mut ann, "user_joined", "ben").await,
        2,
        "A hears of Ben"
    );

    drop(ben);
    assert_eq!(
        notice(&mut ann, "user_left", "ben").await,
        1,
        "and of his leaving"
    );
    drop(b);
    clean(&url, &prefix).await;
}

/// Who is online (the directory's dots) is the cluster's: a connection on either
/// instance counts its user in the `online` room, which a page on the other follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_is_online_crosses_instances() {
    let Some(url) = redis_url("who_is_online_crosses_instances") else {
        return;
    };
    let prefix = prefix();
    let (a, b) = two_instances(&url, &prefix).await;
    let (_, alice_cookie) = member_cookie(&a, "Alice").await;
    let (_, bob_cookie) = member_cookie(&a, "Bob").await;

    let mut alice = ws_in_room(&a, &alice_cookie, "online", None).await;
    // Bob connects to B and follows nothing: online all the same.
    let mut bob = open_ws(&b, "/ws", &bob_cookie).await;
    assert_eq!(next_frame(&mut bob).await["type"], "welcome");
    let joined = next_within(&mut alice, "user_joined", Duration::from_secs(10)).await;
    assert_eq!(
        (joined["room"].as_str(), joined["user"]["name"].as_str()),
        (Some("online"), Some("Bob"))
    );
    until_count(&a, "online", 2).await;
    until_count(&b, "online", 2).await;
    bob.close(None).await.unwrap();
    let left = next_within(&mut alice, "user_left", Duration::from_secs(10)).await;
    assert_eq!(left["user"]["name"], "Bob");
    until_count(&b, "online", 1).await;
    clean(&url, &prefix).await;
}
