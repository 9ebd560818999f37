//! Several instances on one Redis (`--redis-url`): they share rate-limit budgets,
//! and a realtime message sent through one reaches live clients of the others.
//! Runs when `TEST_REDIS_URL` is set (`.ci/run` sets it); each test writes under a key
//! prefix of its own and deletes its keys afterwards.

use serde_json::json;
use switchboard::store::Backend;

use crate::clients as realtime;
use crate::helpers::{ADMIN_EMAIL, TestApp, spawn_app_with};

fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("SKIPPED {test}: TEST_REDIS_URL is not set");
    }
    url
}

/// Deletes every key under `prefix`.
async fn clean(url: &str, prefix: &str) {
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
        c.redis_url = Some(url.clone());
        c.redis_prefix = prefix.clone();
        c.rate_login_per_minute = 4;
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
    let config = switchboard::Config {
        database_url: format!("sqlite://{}", dir.path().join("x.db").display()),
        redis_url: Some("redis://127.0.0.1:1".into()),
        admin_password: Some("a long enough password".into()),
        ..switchboard::Config::default()
    };
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
        c.redis_url = Some(url.clone());
        c.redis_prefix = prefix.clone();
    })
    .await;
    let database = a.db.url.clone();
    let b = spawn_app_with(backend, |c| {
        c.redis_url = Some(url.clone());
        c.redis_prefix = prefix.clone();
        c.database_url = database;
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
