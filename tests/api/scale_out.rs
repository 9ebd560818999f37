//! Several instances on one Redis (`--redis-url`): they share rate-limit budgets,
//! and a realtime message sent through one reaches live clients of the others.
//! Runs when `TEST_REDIS_URL` is set (`.ci/run` sets it); each test writes under a key
//! prefix of its own and deletes its keys afterwards.

use serde_json::json;
use switchboard::config::{Secret, Url};
use switchboard::store::Backend;

use crate::clients as realtime;
use crate::helpers::{ADMIN_EMAIL, TestApp, spawn_app_with};

pub(crate) fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("SKIPPED {test}: TEST_REDIS_URL is not set");
    }
    url
}

/// Deletes every key under `prefix`.
pub(crate) async fn clean(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
}

async fn bad_login(app: &TestApp) -> u16 {
    app.anonymous()
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": "guess"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_login_budget() {
    let Some(url) = redis_url("instances_share_one_login_budget") else {
        return;
    };
    let prefix = format!("switchboard-test:{}:", uuid::Uuid::new_v4());
    // Four a minute: a loaded machine cannot refill one (15 s) during the test.
    let shared = |c: &mut switchboard::Config| {
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
        c.rate.login_per_minute = 4;
    };
    let a = spawn_app_with(Backend::Sqlite, shared).await;
    let b = spawn_app_with(Backend::Sqlite, shared).await;
    let ready: serde_json::Value = a.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["redis"], true);

    // Each harness login spent one of 127.0.0.1's four: 2 remain, wherever they land.
    let mut statuses = Vec::new();
    for i in 0..2 {
        statuses.push(bad_login(if i % 2 == 0 { &a } else { &b }).await);
    }
    assert_eq!(statuses, [401; 2]);
    assert_eq!(bad_login(&a).await, 429, "A counts B's attempts");
    assert_eq!(bad_login(&b).await, 429, "and B counts A's");
    let keys_before_cleanup = {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut connection)
            .await
            .unwrap();
        keys
    };
    assert!(
        keys_before_cleanup
            .iter()
            .any(|k| k == &format!("{prefix}ratelimit:login:ip:127.0.0.1")),
        "{keys_before_cleanup:?}"
    );
    clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = switchboard::Config::defaults();
    config.database.url = Url::new(format!("sqlite://{}", dir.path().join("x.db").display()));
    config.database.redis_url = Some(Url::new("redis://127.0.0.1:1"));
    config.security.admin_password = Some(Secret::new("a long enough password"));
    let error = match switchboard::App::build(config).await {
        Ok(_) => panic!("started without its Redis"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("Redis"), "{error}");
}

/// Two instances on one database and one Redis: a client of B sees, live, a message
/// sent through A, and a directory change made on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_through_one_instance_reaches_clients_of_another() {
    let Some(url) = redis_url("a_message_sent_through_one_instance_reaches_clients_of_another")
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
    })
    .await;
    let database = a.db.url.clone();
    let b = spawn_app_with(backend, |c| {
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
        c.database.url = database.into();
    })
    .await;

    let cookie_b = realtime::admin_cookie(&b).await;
    let mut on_b = realtime::ws_in_room(&b, &cookie_b, "across", None).await;
    let mut directory_on_b = realtime::ws_in_room(&b, &cookie_b, "directory", None).await;
    let cookie_a = realtime::admin_cookie(&a).await;
    let sent =
        realtime::post_send(&a, &cookie_a, json!({"text": "from A", "room": "across"})).await;
    assert_eq!(sent.status(), 201);
    let message = realtime::next_of(&mut on_b, "message").await;
    assert_eq!(
        (message["id"].as_i64(), message["text"].as_str()),
        (Some(1), Some("from A"))
    );

    a.create_user("Eve", "eve@example.com").await;
    let event = realtime::next_of(&mut directory_on_b, "message").await;
    assert_eq!(event["event"]["type"], "user_created");
    assert_eq!(event["event"]["user"]["email"], "eve@example.com");

    // And back: B's message reaches a client of A.
    let mut on_a = realtime::ws_in_room(&a, &cookie_a, "across", Some(1)).await;
    let sent =
        realtime::post_send(&b, &cookie_b, json!({"text": "from B", "room": "across"})).await;
    assert_eq!(sent.status(), 201);
    assert_eq!(
        realtime::next_of(&mut on_a, "message").await["text"],
        "from B"
    );
    drop(b);
    clean(&url, &prefix).await;
}

/// A `redis-server` of the test's own on a free port, so that the test can kill it
/// and start it again on the same port. `None` (the test is skipped, loudly) when
/// the binary is missing.
pub(crate) struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    pub(crate) fn start(test: &str) -> Option<Self> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED {test}: no redis-server binary");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.restart();
        Some(redis)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "redis-server did not open its port"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Issue 18: Redis dies, 1,200 messages are sent through instance B, a client joins
/// the room on A halfway; once Redis is back, every subscriber A had gets all 1,200
/// exactly once and in order (more than its queue holds, so through the paged
/// replay), nobody is cut off, and the client that joined meanwhile gets everything
/// after its join (its join does not make the room look caught up for the others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_every_subscriber_gets_every_missed_message_once() {
    const TEST: &str = "after_a_redis_outage_every_subscriber_gets_every_missed_message_once";
    const MISSED: i64 = 1_200;
    if !crate::helpers::postgres_available(TEST) {
        return;
    }
    let Some(mut redis) = OwnRedis::start(TEST) else {
        return;
    };
    let url = redis.url();
    // 600 sends at once queue for B's pool: on a busy machine (the full suite) longer
    // than the 2 s default acquire timeout, which is for outages, not for this burst.
    let a = spawn_app_with(Backend::Postgres, |c| {
        c.database.redis_url = Some(url.as_str().into());
        c.rate.enabled = false;
    })
    .await;
    let database = a.db.url.clone();
    let b = spawn_app_with(Backend::Postgres, |c| {
        c.database.redis_url = Some(url.as_str().into());
        c.rate.enabled = false;
        c.database.url = database.into();
        c.database.acquire_timeout_ms = 30_000;
    })
    .await;
    assert!(a.state.hub.settings().queue < MISSED as usize);
    let cookie = realtime::admin_cookie(&a).await;
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        subscribers.push(realtime::ws_in_room(&a, &cookie, "outage", None).await);
    }
    let mut joiner = realtime::open_ws(&a, "/ws", &cookie).await;
    assert_eq!(realtime::next_frame(&mut joiner).await["type"], "welcome");
    let author = switchboard::hub::message::Author::system();
    b.state
        .hub
        .send(&author, "outage", "before", None, None)
        .await
        .unwrap();
    for ws in &mut subscribers {
        assert_eq!(
            realtime::next_of(ws, "message").await["id"],
            1,
            "B reaches A"
        );
    }

    redis.kill();
    let send_through_b = |range: std::ops::Range<i64>| {
        let sends = range.map(|i| {
            let hub = b.state.hub.clone();
            let author = author.clone();
            async move {
                hub.send(&author, "outage", &format!("during {i}"), None, None)
                    .await
                    .unwrap();
            }
        });
        futures_util::future::join_all(sends)
    };
    send_through_b(0..MISSED / 2).await;
    // Halfway, a client joins on A, from now (it is at id 601).
    realtime::send_frame(&mut joiner, json!({"type": "join", "room": "outage"})).await;
    realtime::next_of(&mut joiner, "presence").await;
    send_through_b(MISSED / 2..MISSED).await;

    redis.restart();
    let back = std::time::Instant::now();
    for ws in &mut subscribers {
        for expected in 2..=MISSED + 1 {
            let message = realtime::next_of(ws, "message").await;
            assert_eq!(message["id"], expected, "every id once, in order");
        }
    }
    for expected in MISSED / 2 + 2..=MISSED + 1 {
        let message = realtime::next_of(&mut joiner, "message").await;
        assert_eq!(message["id"], expected, "what came after its join");
    }
    let caught_up = back.elapsed();
    eprintln!(
        "{TEST}: 3 subscribers got {MISSED} missed messages each within {caught_up:?} of Redis restarting"
    );
    assert!(
        caught_up < std::time::Duration::from_secs(15),
        "took {caught_up:?}"
    );
    // Nothing repeated after them, nothing skipped for the client that joined
    // meanwhile: the next message is the next id for everyone.
    b.state
        .hub
        .send(&author, "outage", "after", None, None)
        .await
        .unwrap();
    for ws in &mut subscribers {
        assert_eq!(realtime::next_of(ws, "message").await["id"], MISSED + 2);
    }
    assert_eq!(
        realtime::next_of(&mut joiner, "message").await["id"],
        MISSED + 2
    );
    let cut_off = a
        .state
        .hub
        .stats
        .slow_consumers
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(cut_off, 0, "nobody was cut off as a slow consumer");
    drop(b);
}

/// Issue 18: while Redis is down, requests cost what they cost without it (the breaker
/// skips Redis), are still rate-limited by this instance, `/readyz` names Redis as the
/// dependency that is down, and once Redis is back the breaker closes by itself and
/// messages cross instances again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_redis_outage_requests_stay_fast_and_limited_locally() {
    const TEST: &str = "during_a_redis_outage_requests_stay_fast_and_limited_locally";
    const N: usize = 20;
    const BOUND: std::time::Duration = std::time::Duration::from_millis(100);
    let Some(mut redis) = OwnRedis::start(TEST) else {
        return;
    };
    let url = redis.url();
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let limits = |c: &mut switchboard::config::Config| {
        c.database.redis_url = Some(url.as_str().into());
        // Bursts of 2 * 20: the measured requests fit, a burst of 100 does not.
        c.rate.general_per_second = 20;
        c.rate.write_per_second = 20;
    };
    let a = spawn_app_with(backend, limits).await;
    let database = a.db.url.clone();
    let b = spawn_app_with(backend, |c| {
        limits(c);
        c.database.url = database.into();
    })
    .await;
    let cookie = realtime::admin_cookie(&a).await;
    let sender = reqwest::Client::new();
    let send = |text: String| {
        realtime::post_send_on(
            &sender,
            &a,
            &cookie,
            json!({"text": text, "room": "degraded"}),
        )
    };
    let time = |started: std::time::Instant| started.elapsed();

    // Normal, for comparison.
    let mut normal = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        assert_eq!(a.get("/api/users").await.status(), 200);
        normal.push(time(started));
    }

    redis.kill();
    // The first call after the kill finds out (bounded by the breaker's timeout).
    let started = std::time::Instant::now();
    assert_eq!(a.get("/api/users").await.status(), 200);
    let first = time(started);
    let (mut gets, mut sends) = (Vec::new(), Vec::new());
    for i in 0..N {
        let started = std::time::Instant::now();
        assert_eq!(a.get("/api/users").await.status(), 200);
        gets.push(time(started));
        let started = std::time::Instant::now();
        assert_eq!(send(format!("during {i}")).await.status(), 201);
        sends.push(time(started));
    }
    eprintln!(
        "{TEST}: normal GET /api/users {normal:?}; first after the kill {first:?}; \
         during the outage GET max {:?}, POST /api/send max {:?} (all: {gets:?} / {sends:?})",
        gets.iter().max().unwrap(),
        sends.iter().max().unwrap()
    );
    // The median, not the maximum: the suite runs many tests at once on two cores,
    // so a single request may stall for reasons of its own; waiting on Redis (a
    // 250 ms timeout per call without the breaker) shows in every request.
    for (what, times) in [("GET /api/users", &gets), ("POST /api/send", &sends)] {
        let mut sorted = times.clone();
        sorted.sort();
        let median = sorted[sorted.len() / 2];
        assert!(
            median < BOUND,
            "{what}: median {median:?} during the outage ({sorted:?})"
        );
    }

    // Still limited, by this instance.
    let mut refused = 0;
    for _ in 0..100 {
        if a.get("/api/users").await.status() == 429 {
            refused += 1;
        }
    }
    assert!(refused > 0, "a burst of 100 is limited during the outage");

    // /readyz names Redis, for an admin; anonymous callers learn only "not ready".
    let started = std::time::Instant::now();
    let response = a.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["dependencies"]["redis"], "down", "{body}");
    assert_eq!(body["dependencies"]["store"], "up", "{body}");
    // The promise: 503 within a second (a stalled Redis would take longer).
    let took = time(started);
    assert!(
        took < std::time::Duration::from_secs(1),
        "readyz took {took:?}"
    );
    let anonymous = a.anonymous().get(a.url("/readyz")).send().await.unwrap();
    assert_eq!(anonymous.status(), 503);
    let logs = crate::helpers::logs();
    assert!(
        logs.contains("redis is unreachable"),
        "the breaker's warning names redis"
    );

    // Back: the breaker closes within a few seconds, and messages cross again.
    redis.restart();
    let back = std::time::Instant::now();
    loop {
        if a.get("/readyz").await.status() == 200 && b.get("/readyz").await.status() == 200 {
            break;
        }
        assert!(
            back.elapsed() < std::time::Duration::from_secs(5),
            "still not ready after Redis came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ready = back.elapsed();
    let cookie_b = realtime::admin_cookie(&b).await;
    let mut on_b = realtime::ws_in_room(&b, &cookie_b, "degraded", None).await;
    // Sends until the live one arrives (B's pub/sub reconnects within its 1 s retry).
    let mut live = None;
    for i in 0..50 {
        let sent = send(format!("after {i}")).await;
        assert_eq!(sent.status(), 201);
        let arrived = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            realtime::next_of(&mut on_b, "message"),
        )
        .await;
        if let Ok(message) = arrived
            && message["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("after"))
        {
            live = Some(back.elapsed());
            break;
        }
    }
    let live = live.expect("a message sent on A reaches a subscriber on B after Redis is back");
    eprintln!(
        "{TEST}: ready again {ready:?} and live across instances {live:?} after Redis restarted"
    );
    drop(b);
}
