//! The security model from the outside: who may call what, CSRF, brute-force limits,
//! session and token lifetimes, secrets at rest and in logs, headers, CORS and TLS.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};
use switchboard::store::Backend;

use crate::helpers::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD, TestApp, assert_envelope, install_crypto,
    json_with_status, logs, spawn_app, spawn_app_with, tls_config,
};

/// A client with no cookie jar and no default headers: every header a test sends is
/// written out in the test.
fn bare_client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value a response sets for cookie `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let (pair, _) = v.split_once(';').unwrap_or((v, ""));
        let (n, value) = pair.split_once('=')?;
        (n == name).then(|| value.to_owned())
    })
}

/// Logs in without a cookie jar; returns the session id and the csrftoken cookie.
async fn login_raw(app: &TestApp, email: &str, password: &str) -> (String, String) {
    let response = bare_client()
        .post(app.url("/api/auth/login"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session = set_cookie(response.headers(), "sb_session").expect("a session cookie");
    let csrf = set_cookie(response.headers(), "csrftoken").expect("a csrftoken cookie");
    (session, csrf)
}

async fn status_with_session(app: &TestApp, session: &str, path: &str) -> u16 {
    bare_client()
        .get(app.url(path))
        .header("cookie", format!("sb_session={session}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn make_token(app: &TestApp) -> (String, i64) {
    let body = json_with_status(
        app.post_json("/api/tokens", &json!({"name": "ci"})).await,
        201,
    )
    .await;
    (
        body["token"].as_str().unwrap().to_owned(),
        body["id"].as_i64().unwrap(),
    )
}

async fn every_route_checks_who_is_calling(backend: Backend) {
    let app = spawn_app(backend).await;
    let (member, member_client) = app.member("Mia", "mia@example.com").await;
    let other = app.create_user("Olaf", "olaf@example.com").await;
    let (mid, oid, aid) = (member["id"].clone(), other["id"].clone(), app.admin_id());
    let (_, member_token) = {
        let body = json_with_status(
            member_client
                .post(app.url("/api/tokens"))
                .json(&json!({"name": "mine"}))
                .send()
                .await
                .unwrap(),
            201,
        )
        .await;
        (body["token"].clone(), body["id"].as_i64().unwrap())
    };
    let (_, admin_token_id) = make_token(&app).await;
    let _ = member_token;

    // (method, path, body, member's status, admin's status); anonymous always gets 401.
    // Deletions and the promotion come last: what they change is not needed afterwards.
    let n = || Value::Null;
    let cases: Vec<(&str, String, Value, u16, u16)> = vec![
        ("GET", "/api/users".into(), n(), 200, 200),
        ("GET", format!("/api/users/{oid}"), n(), 200, 200),
        ("GET", format!("/api/users/{oid}/profile"), n(), 200, 200),
        ("GET", "/api/autocomplete?q=ol".into(), n(), 200, 200),
        ("GET", "/api/search?q=ol".into(), n(), 200, 200),
        ("GET", "/api/hello".into(), n(), 200, 200),
        ("GET", "/api/data".into(), n(), 200, 200),
        ("GET", "/api/auth/me".into(), n(), 200, 200),
        ("GET", "/api/tokens".into(), n(), 200, 200),
        ("POST", "/api/tokens".into(), json!({"name": "t"}), 201, 201),
        (
            "POST",
            "/api/tokens".into(),
            json!({"name": "for olaf", "user_id": oid}),
            403,
            201,
        ),
        ("GET", "/metrics".into(), n(), 403, 200),
        (
            "POST",
            "/api/users".into(),
            json!({"name": "New", "email": "new@example.com"}),
            403,
            201,
        ),
        (
            "PATCH",
            format!("/api/users/{mid}"),
            json!({"name": "Mia M"}),
            200,
            200,
        ),
        (
            "PATCH",
            format!("/api/users/{oid}"),
            json!({"name": "Olaf O"}),
            403,
            200,
        ),
        (
            "PUT",
            format!("/api/users/{oid}"),
            json!({"name": "Olaf P"}),
            403,
            200,
        ),
        (
            "POST",
            "/api/auth/password".into(),
            json!({"current_password": "wrong", "new_password": "irrelevant words"}),
            422,
            422,
        ),
        // A member may not see that the admin's token exists at all.
        (
            "DELETE",
            format!("/api/tokens/{admin_token_id}"),
            n(),
            404,
            200,
        ),
        ("DELETE", format!("/api/users/{oid}"), n(), 403, 200),
        (
            "PATCH",
            format!("/api/users/{mid}"),
            json!({"role": "admin"}),
            403,
            200,
        ),
    ];
    let anonymous = app.anonymous();
    let send = |client: &reqwest::Client, method: &str, path: &str, body: &Value| {
        let mut request = client.request(method.parse().unwrap(), app.url(path));
        if !body.is_null() {
            request = request.json(body);
        }
        request.send()
    };
    for (method, path, body, as_member, as_admin) in &cases {
        let response = send(&anonymous, method, path, body).await.unwrap();
        let status = response.status().as_u16();
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(status, 401, "anonymous {method} {path}");
        assert_envelope(&envelope, "unauthenticated");

        let response = send(&member_client, method, path, body).await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, *as_member, "member {method} {path}: {text}");
        if status == 403 {
            assert_envelope(&serde_json::from_str(&text).unwrap(), "forbidden");
        }

        let response = send(&app.client, method, path, body).await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, *as_admin, "admin {method} {path}: {text}");
    }

    // Anonymous callers reach only logging in and health.
    for path in ["/healthz", "/readyz", "/login"] {
        let status = anonymous.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, 200, "{path}");
    }
    // The last admin cannot be deleted or demoted (Mia is an admin now, so demote her first).
    json_with_status(
        app.patch_json(&format!("/api/users/{mid}"), &json!({"role": "member"}))
            .await,
        200,
    )
    .await;
    let body = json_with_status(app.delete(&format!("/api/users/{aid}")).await, 409).await;
    assert_envelope(&body, "conflict");
    let body = json_with_status(
        app.patch_json(&format!("/api/users/{aid}"), &json!({"role": "member"}))
            .await,
        409,
    )
    .await;
    assert_envelope(&body, "conflict");
}

async fn login_failures_say_nothing_and_take_as_long(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate.enabled = false).await;
    let attempt = |email: &'static str, password: &'static str| {
        let client = app.anonymous();
        let url = app.url("/api/auth/login");
        async move {
            let started = Instant::now();
            let response = client
                .post(url)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            let elapsed = started.elapsed();
            (json_with_status(response, 401).await, elapsed)
        }
    };
    let mut wrong_password = Vec::new();
    let mut unknown_user = Vec::new();
    for _ in 0..3 {
        let (body, t) = attempt(ADMIN_EMAIL, "not the password").await;
        assert_envelope(&body, "invalid_credentials");
        wrong_password.push((body["error"].clone(), t));
        let (body, t) = attempt("nobody@example.com", "not the password").await;
        assert_envelope(&body, "invalid_credentials");
        unknown_user.push((body["error"].clone(), t));
    }
    assert_eq!(
        wrong_password[0].0, unknown_user[0].0,
        "same words either way"
    );
    let median = |v: &mut Vec<(Value, Duration)>| {
        v.sort_by_key(|(_, t)| *t);
        v[1].1
    };
    let (known, unknown) = (median(&mut wrong_password), median(&mut unknown_user));
    // Without the dummy hash an unknown account answers in well under a millisecond
    // while a wrong password costs a whole argon2 run.
    assert!(
        unknown * 3 > known,
        "unknown user {unknown:?} vs wrong password {known:?}"
    );
    // A member with no password (made by the seed, say) cannot log in with any.
    app.create_user("No Password", "nopass@example.com").await;
    let (body, _) = attempt("nopass@example.com", "").await;
    assert_envelope(&body, "invalid_credentials");
}

async fn cross_site_writes_with_a_cookie_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (session, csrf) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let own_origin = format!("http://{}", app.address);
    let mut n = 0;
    let mut create = |headers: Vec<(&'static str, String)>| {
        n += 1;
        let mut request = bare_client()
            .post(app.url("/api/users"))
            .header("cookie", format!("sb_session={session}; csrftoken={csrf}"))
            .json(&json!({"name": format!("U{n}"), "email": format!("u{n}@example.com")}));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = create(vec![("sec-fetch-site", "cross-site".into())]).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "csrf_failed");
    let (status, body) = create(vec![("origin", "http://evil.example".into())]).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "csrf_failed");
    // A token does not make a request that says it is cross-site acceptable.
    let (status, _) = create(vec![
        ("sec-fetch-site", "cross-site".into()),
        ("x-csrftoken", csrf.clone()),
    ])
    .await;
    assert_eq!(status, 403);
    // Neither header: only with the matching token.
    let (status, body) = create(vec![]).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "csrf_failed");
    let (status, _) = create(vec![("x-csrftoken", "forged.value".into())]).await;
    assert_eq!(status, 403);
    let (status, body) = create(vec![("x-csrftoken", csrf.clone())]).await;
    assert_eq!(status, 201, "{body}");
    // Same-origin by Fetch Metadata, or by Origin.
    let (status, body) = create(vec![("sec-fetch-site", "same-origin".into())]).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = create(vec![("origin", own_origin)]).await;
    assert_eq!(status, 201, "{body}");

    // A csrftoken from another session does not pass (it is bound to its session).
    let (_, other_csrf) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let response = bare_client()
        .post(app.url("/api/users"))
        .header(
            "cookie",
            format!("sb_session={session}; csrftoken={other_csrf}"),
        )
        .header("x-csrftoken", other_csrf)
        .json(&json!({"name": "X", "email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Bearer tokens carry no ambient authority: no CSRF check.
    let (token, _) = make_token(&app).await;
    let response = bare_client()
        .post(app.url("/api/users"))
        .bearer_auth(&token)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "By Token", "email": "token@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // Every response sets a csrftoken when the client has none, even anonymous ones.
    let response = bare_client().get(app.url("/login")).send().await.unwrap();
    assert!(set_cookie(response.headers(), "csrftoken").is_some());
}

async fn logins_past_the_per_minute_budget_are_refused_per_address(backend: Backend) {
    // A small budget: refilling one attempt takes 20 s, far longer than the
    // attempts take even on a loaded machine (at 10 a minute, one refills in 6 s).
    let app = spawn_app_with(backend, |c| {
        c.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.rate.login_per_minute = 3;
    })
    .await;
    let attempt = |forwarded_for: &'static str, password: &'static str| {
        bare_client()
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": ADMIN_EMAIL, "password": password}))
            .send()
    };
    for i in 0..3 {
        let response = attempt("203.0.113.5", "guess").await.unwrap();
        assert_eq!(response.status(), 401, "attempt {}", i + 1);
        assert!(response.headers().contains_key("ratelimit-remaining"));
    }
    let response = attempt("203.0.113.5", "guess").await.unwrap();
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(headers["ratelimit-limit"], "3");
    assert_envelope(&response.json().await.unwrap(), "rate_limited");
    // Even the right password waits.
    let response = attempt("203.0.113.5", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(response.status(), 429);
    // Another address is unaffected.
    let response = attempt("203.0.113.6", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(response.status(), 200);
}

async fn a_forged_forwarded_for_does_not_dodge_the_limit(backend: Backend) {
    // No trusted proxies: X-Forwarded-For is the client's word and is ignored.
    let app = spawn_app_with(backend, |c| c.rate.login_per_minute = 3).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response = bare_client()
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"email": ADMIN_EMAIL, "password": "guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // The harness's own login already spent one attempt from 127.0.0.1.
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
}

/// The admin logs in from a browser that already holds session cookie `session`.
async fn login_from_browser_with(app: &TestApp, session: &str) -> reqwest::Response {
    bare_client()
        .post(app.url("/api/auth/login"))
        .header("cookie", format!("sb_session={session}"))
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
}

async fn sessions_rotate_at_login_and_end_at_logout(backend: Backend) {
    let app = spawn_app(backend).await;
    // Fixation: an id planted before login is replaced, never adopted.
    let planted = "planted-by-an-attacker";
    let response = login_from_browser_with(&app, planted).await;
    assert_eq!(response.status(), 200);
    let first = set_cookie(response.headers(), "sb_session").unwrap();
    assert_ne!(first, planted);
    assert!(first.len() >= 43, "256 bits: {first}");
    let all: Vec<_> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session_cookie = all.iter().find(|c| c.starts_with("sb_session=")).unwrap();
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(
        !session_cookie.contains("Secure"),
        "no Secure on plain HTTP"
    );
    assert_eq!(
        status_with_session(&app, planted, "/api/auth/me").await,
        401
    );
    assert_eq!(status_with_session(&app, &first, "/api/auth/me").await, 200);

    // Logging in again from the same browser ends the old session.
    let response = login_from_browser_with(&app, &first).await;
    let second = set_cookie(response.headers(), "sb_session").unwrap();
    assert_ne!(second, first);
    assert_eq!(status_with_session(&app, &first, "/api/auth/me").await, 401);

    // Logout: the old cookie is dead even if a copy of it is replayed.
    let response = bare_client()
        .post(app.url("/api/auth/logout"))
        .header("cookie", format!("sb_session={second}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        set_cookie(response.headers(), "sb_session").as_deref(),
        Some("")
    );
    assert_eq!(
        status_with_session(&app, &second, "/api/auth/me").await,
        401
    );
}

async fn expired_sessions_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let (absolute, _) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (idle, _) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let hash = switchboard::auth::sha256_hex;
    let idle_secs = app.state.config.security.session_idle_minutes as i64 * 60;
    execute(
        &app,
        &format!(
            "UPDATE sessions SET expires_at = 1 WHERE id_hash = '{}'",
            hash(&absolute)
        ),
    )
    .await;
    execute(
        &app,
        &format!(
            "UPDATE sessions SET last_seen_at = last_seen_at - {} WHERE id_hash = '{}'",
            idle_secs + 1,
            hash(&idle)
        ),
    )
    .await;
    for id in [&absolute, &idle] {
        let response = bare_client()
            .get(app.url("/api/auth/me"))
            .header("cookie", format!("sb_session={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        // The browser is told to drop the dead cookie.
        assert_eq!(
            set_cookie(response.headers(), "sb_session").as_deref(),
            Some("")
        );
    }
}

async fn ended_sessions_are_pruned_and_live_ones_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ended, _) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (idle, _) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (live, _) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let hash = switchboard::auth::sha256_hex;
    execute(
        &app,
        &format!(
            "UPDATE sessions SET expires_at = 1 WHERE id_hash = '{}'",
            hash(&ended)
        ),
    )
    .await;
    execute(
        &app,
        &format!(
            "UPDATE sessions SET last_seen_at = 1 WHERE id_hash = '{}'",
            hash(&idle)
        ),
    )
    .await;
    let now = switchboard::auth::model::unix_now();
    let idle_secs = app.state.auth.session_idle_secs;
    let pruned = app
        .state
        .store
        .prune_sessions(now, now - idle_secs)
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    let left = dump(&app, "sessions").await;
    assert!(!left.contains(&hash(&ended)) && !left.contains(&hash(&idle)));
    assert_eq!(status_with_session(&app, &live, "/api/auth/me").await, 200);
}

async fn a_password_change_ends_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, here) = app.member("Pat", "pat@example.com").await;
    let (elsewhere, _) = login_raw(&app, "pat@example.com", MEMBER_PASSWORD).await;
    assert_eq!(
        status_with_session(&app, &elsewhere, "/api/auth/me").await,
        200
    );
    let body = json_with_status(
        here.post(app.url("/api/auth/password"))
            .json(&json!({"current_password": MEMBER_PASSWORD, "new_password": "a brand new passphrase"}))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(body["message"], "Password changed");
    assert_eq!(
        status_with_session(&app, &elsewhere, "/api/auth/me").await,
        401
    );
    // This browser got a fresh session and stays in.
    let me = here.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    // The old password is gone, the new one works.
    login_status(&app, "pat@example.com", MEMBER_PASSWORD, 401).await;
    login_status(&app, "pat@example.com", "a brand new passphrase", 200).await;
}

async fn login_status(app: &TestApp, email: &str, password: &str, status: u16) {
    let response = app
        .anonymous()
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "{email}");
}

async fn api_tokens_are_shown_once_and_can_be_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, id) = make_token(&app).await;
    assert!(token.starts_with("sb_"), "{token}");
    let with_token = |token: String| {
        bare_client()
            .get(app.url("/api/auth/me"))
            .bearer_auth(token)
            .send()
    };
    let me: Value = with_token(token.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], ADMIN_EMAIL);
    let listed = json_with_status(app.get("/api/tokens").await, 200).await;
    assert!(!listed.to_string().contains(&token), "shown once: {listed}");
    assert_eq!(listed[0]["name"], "ci");
    // Timestamps in the one wire form (README: RFC 3339 everywhere), not Unix seconds.
    assert!(wire_time(&listed[0]["created_at"]), "{listed}");
    assert!(
        wire_time(&listed[0]["last_used_at"]),
        "used just now: {listed}"
    );
    assert_eq!(
        (&listed[0]["expires_at"], &listed[0]["revoked_at"]),
        (&Value::Null, &Value::Null)
    );

    let response = with_token("sb_not-a-real-token".into()).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_envelope(&response.json().await.unwrap(), "unauthenticated");

    json_with_status(app.delete(&format!("/api/tokens/{id}")).await, 200).await;
    let response = with_token(token).await.unwrap();
    assert_eq!(response.status(), 401);

    // An expired token is as dead as a revoked one.
    let body = json_with_status(
        app.post_json(
            "/api/tokens",
            &json!({"name": "short", "expires_in_days": 1}),
        )
        .await,
        201,
    )
    .await;
    let short = body["token"].as_str().unwrap().to_owned();
    let at = |field: &str| {
        time::OffsetDateTime::parse(
            body[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert_eq!(at("expires_at") - at("created_at"), time::Duration::days(1));
    assert_eq!(with_token(short.clone()).await.unwrap().status(), 200);
    execute(
        &app,
        &format!(
            "UPDATE api_tokens SET expires_at = 1 WHERE id = {}",
            body["id"]
        ),
    )
    .await;
    assert_eq!(with_token(short).await.unwrap().status(), 401);

    let body = json_with_status(
        app.post_json("/api/tokens", &json!({"name": "", "expires_in_days": 0}))
            .await,
        422,
    )
    .await;
    assert!(body["fields"]["name"].is_string() && body["fields"]["expires_in_days"].is_string());
}

async fn secrets_are_stored_hashed_and_never_logged(backend: Backend) {
    let app = spawn_app(backend).await;
    let (session, _) = login_raw(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (token, _) = make_token(&app).await;
    // Use both, so every code path that might log them runs.
    assert_eq!(status_with_session(&app, &session, "/api/users").await, 200);
    let status = bare_client()
        .get(app.url("/api/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let stored = dump(&app, "sessions").await + &dump(&app, "api_tokens").await;
    assert!(!stored.is_empty());
    let token_secret = token.trim_start_matches("sb_");
    for secret in [session.as_str(), token_secret, ADMIN_PASSWORD] {
        assert!(!stored.contains(secret), "{secret} is stored in clear");
        assert!(!logs().contains(secret), "{secret} is in the logs");
    }
    let users = dump(&app, "users").await;
    assert!(
        users.contains("$argon2id$"),
        "passwords are argon2id hashes"
    );
}

async fn responses_carry_defensive_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/login", "/api/users", "/api/nope"] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("referrer-policy"));
        assert!(
            !headers.contains_key("strict-transport-security"),
            "no HSTS on plain HTTP"
        );
    }
    // No CORS by default: another site's page gets no permission to read.
    let response = bare_client()
        .request(reqwest::Method::OPTIONS, app.url("/api/users"))
        .header("origin", "http://elsewhere.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

async fn cors_allows_only_the_listed_origins(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.http.cors_origins = vec!["http://app.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        bare_client()
            .request(reqwest::Method::OPTIONS, app.url("/api/users"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let response = preflight("http://app.example").await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    let response = preflight("http://elsewhere.example").await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// Runs one statement against the test's database from outside the app.
async fn execute(app: &TestApp, sql: &str) {
    use sqlx::Connection;
    match app.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// Every row of `table` as text.
async fn dump(app: &TestApp, table: &str) -> String {
    use sqlx::{Connection, Row};
    match app.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
            // Each row as one JSON text: every column whatever its type.
            let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT name FROM pragma_table_info('{table}')"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect();
            let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', {c}")).collect();
            let sql = format!("SELECT json_object({}) FROM {table}", pairs.join(", "));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM {table} t"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect::<Vec<_>>()
            .join("\n")
        }
    }
}

crate::on_both_backends!(
    every_route_checks_who_is_calling,
    login_failures_say_nothing_and_take_as_long,
    cross_site_writes_with_a_cookie_are_refused,
    logins_past_the_per_minute_budget_are_refused_per_address,
    a_forged_forwarded_for_does_not_dodge_the_limit,
    sessions_rotate_at_login_and_end_at_logout,
    expired_sessions_are_rejected,
    ended_sessions_are_pruned_and_live_ones_kept,
    a_password_change_ends_every_other_session,
    api_tokens_are_shown_once_and_can_be_revoked,
    secrets_are_stored_hashed_and_never_logged,
    responses_carry_defensive_headers,
    cors_allows_only_the_listed_origins,
);

/// HTTPS with a certificate made here: HTTP/2 by ALPN, Secure cookies, HSTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_http2_with_secure_cookies_and_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let config = tls_config(dir.path(), cert_path, key_path);
    let app = switchboard::App::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));

    // A client that trusts exactly this certificate, on the same ring provider.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve("localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");

    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let response = client
        .post(format!("{base}/api/auth/login"))
        .header("origin", &base)
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let session_cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("sb_session="))
        .unwrap()
        .to_owned();
    assert!(session_cookie.contains("Secure"), "{session_cookie}");

    // Plain HTTP on the TLS port gets nowhere.
    let plain = bare_client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// `2026-12-01T21:05:55.000Z`: the API's one timestamp form.
fn wire_time(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        text.len() == 24
            && text.ends_with('Z')
            && time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .is_ok()
    })
}
