//! Account security (issue 17): the password policy everywhere a password is set, the
//! last-admin rule under concurrent demotions and deletions, the per-account throttle
//! on password checks, what a password change ends, and anonymous `/readyz`.

use std::net::SocketAddr;

use futures_util::future::join;
use serde_json::{Value, json};
use switchboard::store::Backend;
use switchboard::{App, Config};

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, TestDb, assert_envelope, browser,
    json_with_status, login, spawn_app, spawn_app_with,
};

/// A password the policy accepts, different from the harness's.
const STRONG: &str = "tangerine otter violin 42";

fn no_rate_limits(c: &mut Config) {
    c.rate.enabled = false;
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> reqwest::Response {
    client.post(url).json(body).send().await.unwrap()
}

// ---- the password policy ---------------------------------------------------------

async fn weak_passwords_are_refused_with_the_reason_on_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let app = &app;
    let refused = |body: Value| async move {
        let response = app.post_json("/api/users", &body).await;
        assert_eq!(response.status(), 422, "{} was accepted", body["password"]);
        let body: Value = response.json().await.unwrap();
        assert_envelope(&body, "validation_failed");
        body["fields"]["password"].as_str().unwrap().to_owned()
    };
    let user = |password: &str| json!({"name": "Carla Diaz", "email": "carla.diaz@example.com", "password": password});
    assert!(refused(user("password")).await.contains("at least 12"));
    assert!(refused(user("12345678")).await.contains("at least 12"));
    assert!(refused(user("passwordpassword")).await.contains("guess"));
    let common = refused(user("qwertyuiop123")).await;
    assert!(
        common.contains("common") || common.contains("guess"),
        "{common}"
    );
    assert!(
        refused(user("carla.diaz@example.com"))
            .await
            .contains("name or email")
    );
    assert!(
        refused(user("CarlaDiaz2026"))
            .await
            .contains("name or email")
    );
    json_with_status(app.post_json("/api/users", &user(STRONG)).await, 201).await;

    // An admin's reset of someone's password: the same policy, judged against that
    // account (and against the name it is getting in the same request).
    let (member, _) = app.member("Dana Ellis", "dana@example.com").await;
    let path = format!("/api/users/{}", member["id"]);
    for (body, reason) in [
        (json!({"password": "12345678"}), "at least 12"),
        (json!({"password": "dana@example.com"}), "name or email"),
        (
            json!({"name": "Zanzibar Quill", "password": "ZanzibarQuill99"}),
            "name or email",
        ),
    ] {
        let body = json_with_status(app.patch_json(&path, &body).await, 422).await;
        let problem = body["fields"]["password"].as_str().unwrap();
        assert!(problem.contains(reason), "{problem}");
    }
    let unchanged = json_with_status(app.get(&path).await, 200).await;
    assert_eq!(
        unchanged["name"], "Dana Ellis",
        "nothing of a refused change is written"
    );
    json_with_status(
        app.patch_json(&path, &json!({"password": STRONG})).await,
        200,
    )
    .await;

    // Changing one's own password.
    let (_, client) = app.member("Erin Fox", "erin.fox@example.com").await;
    let change = |new: &'static str| {
        let client = client.clone();
        let url = app.url("/api/auth/password");
        async move {
            post(
                &client,
                url,
                &json!({"current_password": MEMBER_PASSWORD, "new_password": new}),
            )
            .await
        }
    };
    for (new, reason) in [
        ("erin.fox@example.com", "name or email"),
        ("iloveyouiloveyou", "guess"),
        ("Erin", "at least 12"),
    ] {
        let body = json_with_status(change(new).await, 422).await;
        let problem = body["fields"]["new_password"].as_str().unwrap();
        assert!(problem.contains(reason), "{new}: {problem}");
    }
    json_with_status(change(STRONG).await, 200).await;
}

async fn the_minimum_length_is_configurable(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.security.password_min_chars = 26).await;
    let body = json!({"name": "Gus", "email": "gus@example.com", "password": STRONG});
    let body = json_with_status(app.post_json("/api/users", &body).await, 422).await;
    assert_eq!(body["fields"]["password"], "must be at least 26 characters");
}

/// A weak `SWITCHBOARD_ADMIN_PASSWORD` stops the start with the reason; without one,
/// the generated password passes the policy (it logs in: see `cli.rs`).
async fn a_weak_first_admin_password_stops_the_start(backend: Backend) {
    for (weak, reason) in [
        ("12345678", "at least 12"),
        ("admin@example.com", "name or email"),
    ] {
        let db = TestDb::create(backend).await;
        let mut config = Config::defaults();
        config.database.url = switchboard::config::Url::new(&db.url);
        config.security.admin_email = ADMIN_EMAIL.into();
        config.security.admin_password = Some(switchboard::config::Secret::new(weak));
        let Err(error) = App::build(config).await else {
            panic!("{weak:?} was accepted as the first admin's password");
        };
        let error = format!("{error:#}");
        assert!(
            error.contains("SWITCHBOARD_ADMIN_PASSWORD") && error.contains(reason),
            "{error}"
        );
    }
}

// ---- the last admin ----------------------------------------------------------------

async fn role_of(app: &TestApp, id: i64) -> Option<String> {
    let user = app.state.store.get_user(id).await.unwrap()?;
    Some(user.role.as_str().to_owned())
}

async fn admins(app: &TestApp) -> i64 {
    app.state.store.count_admins().await.unwrap()
}

/// Creates an admin with a password and returns their id and logged-in client.
async fn new_admin(app: &TestApp, by: &reqwest::Client, n: usize) -> (i64, reqwest::Client) {
    let email = format!("admin{n}@example.com");
    let body = json!({"name": format!("Admin {n}"), "email": email, "role": "admin",
                      "password": STRONG});
    let user = json_with_status(post(by, app.url("/api/users"), &body).await, 201).await;
    (
        user["id"].as_i64().unwrap(),
        login(app.address, &email, STRONG).await,
    )
}

/// Two admins demote each other at the same moment, many times over: one of them
/// wins, the other is refused (409, or 403 once already demoted), and there is always
/// an admin left.
async fn mutual_demotions_always_leave_an_admin(backend: Backend) {
    let app = spawn_app_with(backend, no_rate_limits).await;
    let (b, b_client) = new_admin(&app, &app.client, 1).await;
    let a = app.admin_id();
    let clients = [(a, app.client.clone()), (b, b_client)];
    for round in 0..25 {
        let demote = |by: &reqwest::Client, target: i64| {
            by.patch(app.url(&format!("/api/users/{target}")))
                .json(&json!({"role": "member"}))
                .send()
        };
        let (first, second) = join(demote(&clients[0].1, b), demote(&clients[1].1, a)).await;
        let statuses = [first.unwrap().status(), second.unwrap().status()];
        assert_eq!(admins(&app).await, 1, "round {round}: {statuses:?}");
        assert_eq!(
            statuses.iter().filter(|s| s.is_success()).count(),
            1,
            "round {round}: exactly one demotion wins: {statuses:?}"
        );
        // The one still an admin promotes the other again.
        let (winner, loser) = if role_of(&app, a).await.as_deref() == Some("admin") {
            (&clients[0], b)
        } else {
            (&clients[1], a)
        };
        let promoted = winner
            .1
            .patch(app.url(&format!("/api/users/{loser}")))
            .json(&json!({"role": "admin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(promoted.status(), 200);
    }
}

/// Two admins delete each other at the same moment, many times over: one of them
/// stays. The survivor makes a new admin for the next round.
async fn mutual_deletions_always_leave_an_admin(backend: Backend) {
    let app = spawn_app_with(backend, no_rate_limits).await;
    let (b, b_client) = new_admin(&app, &app.client, 1).await;
    let mut pair = [(app.admin_id(), app.client.clone()), (b, b_client)];
    for round in 0..20 {
        let delete = |by: &reqwest::Client, target: i64| {
            by.delete(app.url(&format!("/api/users/{target}"))).send()
        };
        let (first, second) =
            join(delete(&pair[0].1, pair[1].0), delete(&pair[1].1, pair[0].0)).await;
        let statuses = [first.unwrap().status(), second.unwrap().status()];
        assert_eq!(admins(&app).await, 1, "round {round}: {statuses:?}");
        let survivor = if role_of(&app, pair[0].0).await.is_some() {
            pair[0].clone()
        } else {
            pair[1].clone()
        };
        let newcomer = new_admin(&app, &survivor.1, round + 2).await;
        pair = [survivor, newcomer];
    }
}

// ---- what a password change ends ---------------------------------------------------

async fn create_token(client: &reqwest::Client, address: SocketAddr, name: &str) -> String {
    let response = post(
        client,
        format!("http://{address}/api/tokens"),
        &json!({"name": name}),
    )
    .await;
    json_with_status(response, 201).await["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Changing one's password revokes the account's API tokens and ends its other
/// sessions, and says how many; the client that changed it stays signed in.
async fn a_password_change_revokes_tokens_and_other_sessions(backend: Backend) {
    let app = spawn_app_with(backend, no_rate_limits).await;
    let (_, first) = app.member("Hana Ito", "hana@example.com").await;
    let second = login(app.address, "hana@example.com", MEMBER_PASSWORD).await;
    let from_session = create_token(&first, app.address, "script").await;
    let other = create_token(&first, app.address, "ci").await;
    assert_eq!(me_status(&app, &from_session).await, 200);

    let response = post(
        &first,
        app.url("/api/auth/password"),
        &json!({"current_password": MEMBER_PASSWORD, "new_password": STRONG}),
    )
    .await;
    let body = json_with_status(response, 200).await;
    assert_eq!(body["tokens_revoked"], 2, "{body}");
    assert_eq!(body["sessions_ended"], 1, "{body}");
    assert_eq!(me_status(&app, &from_session).await, 401);
    assert_eq!(me_status(&app, &other).await, 401);
    let status = |client: &reqwest::Client| {
        let request = client.get(app.url("/api/auth/me")).send();
        async { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&second).await, 401, "the other session ended");
    assert_eq!(status(&first).await, 200, "this client got a fresh session");

    // Changed with a token: that token is kept, the account's others are revoked.
    let keeper = create_token(&first, app.address, "keeper").await;
    let doomed = create_token(&first, app.address, "doomed").await;
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/password"))
        .bearer_auth(&keeper)
        .json(&json!({"current_password": STRONG, "new_password": "violet glacier mango 7"}))
        .send()
        .await
        .unwrap();
    let body = json_with_status(response, 200).await;
    assert_eq!(body["tokens_revoked"], 1, "{body}");
    assert_eq!(me_status(&app, &keeper).await, 200);
    assert_eq!(me_status(&app, &doomed).await, 401);
    assert_eq!(status(&first).await, 401, "every session ended");
}

/// An admin's reset of a member's password ends all of that member's credentials, in
/// the same transaction as the change.
async fn an_admin_password_reset_ends_the_members_credentials(backend: Backend) {
    let app = spawn_app_with(backend, no_rate_limits).await;
    let (member, client) = app.member("Ivo Jansen", "ivo@example.com").await;
    let token = create_token(&client, app.address, "laptop").await;
    let path = format!("/api/users/{}", member["id"]);
    let body = json!({"name": "Ivo J.", "password": STRONG});
    let user = json_with_status(app.patch_json(&path, &body).await, 200).await;
    assert_eq!(user["name"], "Ivo J.");
    assert_eq!(me_status(&app, &token).await, 401);
    let me = client.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 401);
    login(app.address, "ivo@example.com", STRONG).await;
}

// ---- throttling ------------------------------------------------------------------

/// A client that says (through a trusted proxy) it comes from `ip`.
fn from_address(ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn try_login(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    post(
        &from_address(ip),
        app.url("/api/auth/login"),
        &json!({"email": email, "password": password}),
    )
    .await
}

fn throttled(c: &mut Config) {
    c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    c.rate.login_per_minute = 1000;
    c.rate.login_account_per_minute = 3;
}

/// Guesses at one account from ever new addresses are limited per account; the
/// account is throttled for seconds, not locked; other accounts are not affected.
async fn password_guesses_are_limited_per_account(backend: Backend) {
    let app = spawn_app_with(backend, throttled).await;
    app.member("Jo Kim", "jo@example.com").await;
    for i in 0..3 {
        let ip = format!("198.51.100.{i}");
        let response = try_login(&app, &ip, "JO@example.com ", "wrong guess").await;
        assert_eq!(response.status(), 401, "guess {i}");
    }
    let response = try_login(&app, "203.0.113.7", "jo@example.com", "wrong guess").await;
    assert_eq!(
        response.status(),
        429,
        "a fresh address gets no fresh guesses"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&retry_after),
        "a short wait (60 s / 3): {retry_after}"
    );
    assert_envelope(&response.json().await.unwrap(), "rate_limited");
    // The page says so too.
    let page = from_address("203.0.113.8")
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=jo%40example.com&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429);
    // Another account is not throttled.
    let response = try_login(&app, "203.0.113.7", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.status(), 200);
}

/// The owner logging in over and over costs nothing: right passwords are given back.
async fn successful_logins_are_not_counted(backend: Backend) {
    let app = spawn_app_with(backend, throttled).await;
    app.member("Lea Moss", "lea@example.com").await;
    for i in 0..8 {
        let response = try_login(&app, "198.51.100.1", "lea@example.com", MEMBER_PASSWORD).await;
        assert_eq!(response.status(), 200, "login {i}");
    }
    // One failure, then the owner again: still in.
    let response = try_login(&app, "198.51.100.2", "lea@example.com", "nope").await;
    assert_eq!(response.status(), 401);
    let response = try_login(&app, "198.51.100.1", "lea@example.com", MEMBER_PASSWORD).await;
    assert_eq!(response.status(), 200);
}

/// `POST /api/auth/password` checks a password: limited like a login, per address and
/// per account (its guesses and logins spend the same account budget).
async fn guessing_the_current_password_is_limited_like_a_login(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.rate.login_per_minute = 1000;
        c.rate.login_account_per_minute = 3;
    })
    .await;
    let (_, client) = app.member("Max Nagel", "max@example.com").await;
    let guess = |n: usize| {
        let body = json!({"current_password": format!("guess {n}"), "new_password": STRONG});
        let request = client
            .post(app.url("/api/auth/password"))
            .json(&body)
            .send();
        async move { request.await.unwrap() }
    };
    for n in 0..3 {
        let body = json_with_status(guess(n).await, 422).await;
        assert!(body["fields"]["current_password"].is_string());
    }
    let response = guess(3).await;
    assert_eq!(response.status(), 429, "the fourth guess");
    let response = try_login(&app, "127.0.0.1", "max@example.com", MEMBER_PASSWORD).await;
    assert_eq!(response.status(), 429, "the same account's budget");

    // And per address, as a login: three a minute from this address.
    let app = spawn_app_with(backend, |c| c.rate.login_per_minute = 3).await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        let response = post(
            &app.client,
            app.url("/api/auth/password"),
            &json!({"current_password": format!("guess {n}"), "new_password": STRONG}),
        )
        .await;
        statuses.push(response.status().as_u16());
    }
    // The harness's login spent one of the three.
    assert_eq!(statuses, [422, 422, 429]);
}

// ---- /readyz -----------------------------------------------------------------------

async fn anonymous_readyz_says_only_ready_or_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let anonymous = app.anonymous();
    let ready: Value = anonymous
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready, json!({"status": "ready"}));
    let detailed = json_with_status(app.get("/readyz").await, 200).await;
    assert_eq!(detailed["dependencies"]["store"], "up", "{detailed}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"switchboard_dependency_up{dependency="store"} 1"#),
        "{metrics}"
    );

    app.state.store.close().await;
    let response = anonymous.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_envelope(&body, "unavailable");
    for detail in ["store", "sqlite", "postgres", "redis", "database"] {
        assert!(!text.to_lowercase().contains(detail), "{detail} in {text}");
    }
}

crate::on_both_backends!(
    weak_passwords_are_refused_with_the_reason_on_the_field,
    the_minimum_length_is_configurable,
    a_weak_first_admin_password_stops_the_start,
    mutual_demotions_always_leave_an_admin,
    mutual_deletions_always_leave_an_admin,
    a_password_change_revokes_tokens_and_other_sessions,
    an_admin_password_reset_ends_the_members_credentials,
    password_guesses_are_limited_per_account,
    successful_logins_are_not_counted,
    guessing_the_current_password_is_limited_like_a_login,
    anonymous_readyz_says_only_ready_or_not,
);

/// Several instances on one Redis share each account's budget too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_per_account_budget() {
    let Ok(url) = std::env::var("TEST_REDIS_URL") else {
        eprintln!("SKIPPED instances_share_the_per_account_budget: TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("switchboard-test:{}:", uuid::Uuid::new_v4());
    let shared = |c: &mut Config| {
        throttled(c);
        c.database.redis_url = Some(url.as_str().into());
        c.database.redis_prefix = prefix.clone();
    };
    let a = spawn_app_with(Backend::Sqlite, shared).await;
    let b = spawn_app_with(Backend::Sqlite, shared).await;
    let mut statuses = Vec::new();
    for (i, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let ip = format!("198.51.100.{i}");
        let response = try_login(app, &ip, ADMIN_EMAIL, "wrong guess").await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    let buckets: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("login-account:"))
        .collect();
    assert_eq!(buckets.len(), 1, "the guessed account's bucket: {keys:?}");
    assert!(
        !buckets[0].contains("admin@"),
        "emails are hashed in key names"
    );
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
}

// ---- the security log ----------------------------------------------------------------

/// The binary with `--log-format json`: logins that succeed and fail, a CSRF refusal,
/// a permission refusal, a rate limit and a password change are each one JSON line
/// with the account, the client's address and the request id, and no secret is in the
/// log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_are_logged_as_json_without_secrets() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(dir.path())
        .args(["--log-format", "json", "--bind", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env("SWITCHBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("SWITCHBOARD_RATE_LOGIN_PER_MINUTE", "4")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let reader = {
        let lines = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                if line.contains("\"listening\"") {
                    let value: Value = serde_json::from_str(&line).unwrap();
                    let _ = address_tx.send(value["address"].as_str().unwrap().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        })
    };
    let stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let address: SocketAddr = address_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the server says where it listens")
        .parse()
        .unwrap();
    let url = |path: &str| format!("http://{address}{path}");

    // 1 of 4 logins from this address: the admin, whose cookies we keep to look for.
    let admin = browser(address);
    let response = post(
        &admin,
        url("/api/auth/login"),
        &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| {
            let c = c.to_str().unwrap();
            c[c.find('=').unwrap() + 1..c.find(';').unwrap()].to_owned()
        })
        .collect();
    let admin_id = response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    // A member and an API token (the token's text must never be logged).
    let member_password = "quiet meadow lantern 77";
    let body = json!({"name": "Nia Ohm", "email": "nia@example.com", "password": member_password});
    let member = json_with_status(post(&admin, url("/api/users"), &body).await, 201).await;
    let token = create_token(&admin, address, "ci").await;
    // 2: the member logs in; 3: a wrong password.
    let nia = login(address, "nia@example.com", member_password).await;
    let guess = "hunter2 is my guess";
    let response = post(
        &browser(address),
        url("/api/auth/login"),
        &json!({"email": "nia@example.com", "password": guess}),
    )
    .await;
    assert_eq!(response.status(), 401);
    // A member may not delete users: 403.
    let response = nia
        .delete(url(&format!("/api/users/{admin_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // A cookie-authenticated write from another site: 403 (CSRF).
    let response = admin
        .post(url("/api/users"))
        .header("origin", "https://evil.example")
        .json(&json!({"name": "X", "email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The member changes their password (4 of 4), and a fifth attempt is refused.
    let new_password = "amber canyon whistle 8";
    let response = post(
        &nia,
        url("/api/auth/password"),
        &json!({"current_password": member_password, "new_password": new_password}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = post(
        &browser(address),
        url("/api/auth/login"),
        &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 429);
    // The token still works for the admin (and is not logged).
    let me = reqwest::Client::new()
        .get(url("/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let stderr = stderr_reader.join().unwrap();
    let lines = lines.lock().unwrap().clone();

    let mut events: Vec<Value> = Vec::new();
    for line in &lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        if value["event"].is_string() {
            events.push(value);
        }
    }
    let find = |name: &str| -> Value {
        events
            .iter()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in:\n{}", lines.join("\n")))
            .clone()
    };
    for name in [
        "login_succeeded",
        "login_failed",
        "forbidden",
        "csrf_refused",
        "rate_limited",
        "credentials_ended",
    ] {
        let event = find(name);
        if name != "credentials_ended" {
            assert_eq!(event["client_ip"], "127.0.0.1", "{event}");
            let id = event["request_id"].as_str().unwrap_or_default();
            assert!(id.len() >= 32, "{name} has a request id: {event}");
        }
    }
    assert_eq!(find("login_succeeded")["user_id"], admin_id);
    assert_eq!(find("login_failed")["email"], "nia@example.com");
    assert_eq!(find("forbidden")["user_id"], member["id"]);
    assert_eq!(find("csrf_refused")["user_id"], admin_id);
    assert_eq!(find("rate_limited")["class"], "login");
    assert_eq!(find("credentials_ended")["user_id"], member["id"]);

    let log = lines.join("\n");
    let mut secrets = vec![
        ADMIN_PASSWORD,
        member_password,
        guess,
        new_password,
        token.as_str(),
    ];
    secrets.extend(cookies.iter().map(String::as_str));
    for secret in secrets {
        assert!(!log.contains(secret), "{secret:?} is in the log");
    }
    assert!(stderr.iter().all(|l| !l.contains("panicked")), "{stderr:?}");
}

/// `switchboard user add|passwd --password-stdin` apply the same policy, and say why.
#[test]
fn the_cli_refuses_weak_passwords_with_the_reason() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .current_dir(dir.path())
            .args(args)
            .args(["--database-url", "sqlite://./cli.db"])
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let output = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), text)
    };
    let add = [
        "user",
        "add",
        "--email",
        "olga.petrova@example.com",
        "--name",
        "Olga Petrova",
        "--password-stdin",
    ];
    for (weak, reason) in [
        ("12345678", "at least 12"),
        ("olga.petrova@example.com", "name or email"),
        ("OlgaPetrova1990", "name or email"),
        ("qwertyuiopasdf", "common"),
    ] {
        let (ok, text) = run(&add, weak);
        assert!(!ok, "{weak:?} was accepted: {text}");
        assert!(text.contains(reason), "{weak:?}: {text}");
    }
    let (ok, text) = run(&add, STRONG);
    assert!(ok, "{text}");
    let passwd = [
        "user",
        "passwd",
        "--email",
        "olga.petrova@example.com",
        "--password-stdin",
    ];
    let (ok, text) = run(&passwd, "password");
    assert!(!ok && text.contains("at least 12"), "{text}");
    let (ok, text) = run(&passwd, "violet glacier mango 7");
    assert!(ok && text.contains("0 API tokens revoked"), "{text}");
}
