//! `GET /api/openapi.json`: a valid OpenAPI 3.1 document that is true of the server.
//! Every operation it lists is routed; every `$ref` resolves; every operation lists
//! the errors the layers in front of its handler can answer; and what the server
//! really answers (successes, and the errors provoked here on purpose) has a status
//! the operation lists and a body its schema accepts. `scripts/fuzz-api` checks the
//! same at scale with schemathesis; this file keeps the basics in `cargo test`.

use serde_json::{Map, Value, json};
use switchboard::store::Backend;

use crate::helpers::{TestApp, json_with_status, spawn_app, spawn_app_with};

/// The document's operations: (path, lower-case method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                found.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    found
}

fn parameters_in<'a>(operation: &'a Value, location: &str) -> Vec<&'a Value> {
    operation["parameters"]
        .as_array()
        .map(|all| all.iter().filter(|p| p["in"] == location).collect())
        .unwrap_or_default()
}

/// What `$ref` points at (`#/components/...` only: the document has no other kind).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// A small JSON Schema (2020-12 subset the document uses) check: `$ref`, `type`
/// (one or several), `properties`, `required`, `items`, `oneOf`/`anyOf`/`allOf`,
/// `enum`, `maxItems`. Returns where `value` does not fit.
fn violations(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        match resolve(doc, reference) {
            Some(target) => violations(doc, target, value, at, out),
            None => out.push(format!("{at}: $ref {reference} does not resolve")),
        }
        return;
    }
    let matches = |sub: &Value| {
        let mut inner = Vec::new();
        violations(doc, sub, value, at, &mut inner);
        inner.is_empty()
    };
    if let Some(all) = schema["allOf"].as_array() {
        for sub in all {
            violations(doc, sub, value, at, out);
        }
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(any) = schema[keyword].as_array()
            && !any.iter().any(matches)
        {
            out.push(format!("{at}: fits no branch of {keyword}: {value}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let fits = types.iter().any(|ty| match *ty {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        });
        if !fits {
            out.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                out.push(format!("{at}: required property {name:?} is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, sub) in properties {
                if let Some(field) = object.get(name) {
                    violations(doc, sub, field, &format!("{at}.{name}"), out);
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(max) = schema["maxItems"].as_u64()
            && items.len() as u64 > max
        {
            out.push(format!("{at}: more than {max} items"));
        }
        if schema["items"].is_object() {
            for (i, item) in items.iter().enumerate() {
                violations(doc, &schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
    }
}

/// Asserts that `status` is documented for the operation and that `body` (when JSON
/// is documented for it) fits the documented schema.
fn assert_documented(doc: &Value, method: &str, path: &str, status: u16, body: &Value, why: &str) {
    let operation = &doc["paths"][path][method];
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status} ({why}), which it does not document: {body}"
    );
    let response = match response["$ref"].as_str() {
        Some(reference) => resolve(doc, reference).unwrap(),
        None => response,
    };
    if let Some(schema) = response["content"]["application/json"]["schema"].as_object() {
        let mut found = Vec::new();
        violations(
            doc,
            &Value::Object(schema.clone()),
            body,
            "body",
            &mut found,
        );
        assert!(
            found.is_empty(),
            "{method} {path} {status} ({why}): the body does not fit the documented schema: {found:?}\n{body}"
        );
    }
}

async fn fetch_document(app: &TestApp) -> Value {
    json_with_status(app.get("/api/openapi.json").await, 200).await
}

/// A client that authenticates with an API token (so logging out, which the sweep
/// does, does not end its session).
async fn token_client(app: &TestApp) -> (reqwest::Client, Value) {
    let token = json_with_status(
        app.post_json("/api/tokens", &json!({"name": "openapi sweep"}))
            .await,
        201,
    )
    .await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", token["token"].as_str().unwrap())
            .parse()
            .unwrap(),
    );
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    (client, token)
}

/// Concrete values for a path's parameters: a user (or token) that exists, a room.
fn concrete(path: &str, user_id: &str, token_id: &str) -> String {
    let id = if path.starts_with("/api/tokens") {
        token_id
    } else {
        user_id
    };
    path.replace("{id}", id).replace("{room}", "general")
}

async fn every_documented_operation_is_served_and_answers_as_documented(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    let anonymous = app
        .anonymous()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // A user of our own to read, edit and delete, a token to revoke, a message to read.
    let user = app.create_user("Doc Target", "doc@example.com").await;
    let target_token = json_with_status(
        app.post_json("/api/tokens", &json!({"name": "doc"})).await,
        201,
    )
    .await;
    let (client, _) = token_client(&app).await;
    json_with_status(
        app.post_json("/api/send", &json!({"text": "hi", "room": "general"}))
            .await,
        201,
    )
    .await;

    let all = operations(&doc);
    assert!(all.len() >= 28, "{}", all.len());
    for (path, method, _) in &all {
        let url = app.url(&concrete(
            path,
            &user["id"].to_string(),
            &target_token["id"].to_string(),
        ));
        let verb = method.to_uppercase().parse::<reqwest::Method>().unwrap();
        let mut request = client.request(verb.clone(), url);
        if verb != reqwest::Method::GET && verb != reqwest::Method::DELETE {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        assert_ne!(status, 405, "{method} {path} is documented but not routed");
        assert!(
            !(status == 404 && body["error"] == "Not found"),
            "{method} {path} is documented but not routed"
        );
        assert_documented(&doc, method, path, status, &body, "called as an admin");
    }
}

/// What the document itself must say: every reference resolves, every error
/// response is the envelope, and every operation lists the errors of the layers in
/// front of its handler.
async fn the_document_lists_the_errors_every_operation_can_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = fetch_document(&app).await;

    // Every `$ref`, anywhere, names something that exists.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    out.push(reference);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(all_refs.len() > 50, "{}", all_refs.len());
    for reference in all_refs {
        assert!(
            resolve(&doc, reference).is_some(),
            "{reference} does not resolve"
        );
    }
    // One name, one shape: the `{message}` confirmations and chat messages are apart.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas["Confirmation"]["properties"]["message"].is_object());
    assert!(schemas["ChatMessage"]["properties"]["room"].is_object());
    assert!(!schemas.contains_key("Message"));

    for (path, method, operation) in operations(&doc) {
        let responses: &Map<String, Value> = operation["responses"].as_object().unwrap();
        let listed = |status: u16| responses.contains_key(&status.to_string());
        let name = format!("{} {path}", method.to_uppercase());
        for (status, response) in responses {
            let schema = &response["content"]["application/json"]["schema"];
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ErrorEnvelope",
                    "{name} {status}"
                );
            } else {
                assert!(
                    schema.is_object() || response["content"]["text/plain"].is_object(),
                    "{name} {status} documents no body"
                );
            }
        }
        if path == "/healthz" {
            continue;
        }
        assert!(listed(503), "{name}: 503");
        if path == "/readyz" {
            continue;
        }
        for status in [401, 429] {
            assert!(listed(status), "{name}: {status}");
        }
        if method != "get" {
            assert!(listed(403), "{name}: 403 (CSRF)");
        }
        if operation["requestBody"].is_object() {
            for status in [400, 413, 415] {
                assert!(listed(status), "{name}: {status}");
            }
        }
        if !parameters_in(&operation, "query").is_empty() {
            assert!(listed(400), "{name}: 400 (a bad query parameter)");
        }
        if !parameters_in(&operation, "path").is_empty() {
            assert!(listed(404), "{name}: 404");
        }
    }
}

/// The errors the layers answer, provoked on every operation: each status must be
/// one the operation documents, with a body its schema accepts.
async fn every_provoked_error_is_documented(backend: Backend) {
    // Without rate limits: this test makes several requests per operation, more than
    // a second's write budget once there are enough operations (429s have their own
    // test below).
    let app = spawn_app_with(backend, |config| {
        config.http.max_body_bytes = 4096;
        config.rate.enabled = false;
    })
    .await;
    let doc = fetch_document(&app).await;
    let user = app.create_user("Err Target", "err@example.com").await;
    let user_id = user["id"].to_string();
    let anonymous = app.anonymous();
    // A cookie-authenticated client from another site: no `Origin` of ours, no token.
    let cross_site = {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("origin", "https://evil.example".parse().unwrap());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    };
    let session_cookie = format!("sb_session={}", login_cookie(&app).await);

    for (path, method, operation) in operations(&doc) {
        if path == "/healthz" || path == "/readyz" {
            continue;
        }
        let verb = method.to_uppercase().parse::<reqwest::Method>().unwrap();
        let url = app.url(&concrete(&path, &user_id, "999999"));
        let check = |status: u16, body: Value, why: &str| {
            assert_documented(&doc, &method, &path, status, &body, why)
        };
        async fn sent(request: reqwest::RequestBuilder) -> (u16, Value) {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }

        // Nobody logged in, and a bearer token that is not one.
        let (status, body) = sent(anonymous.request(verb.clone(), &url).json(&json!({}))).await;
        check(status, body, "anonymous");
        let (status, body) = sent(
            anonymous
                .request(verb.clone(), &url)
                .bearer_auth("sb_not-a-token")
                .json(&json!({})),
        )
        .await;
        assert_eq!(status, 401, "{method} {path} with an unknown token");
        check(status, body, "an unknown token");

        if operation["requestBody"].is_object() {
            let (status, body) = sent(app.client.request(verb.clone(), &url).body("{}")).await;
            assert_eq!(status, 415, "{method} {path} without Content-Type");
            check(status, body, "no Content-Type");
            let (status, body) = sent(
                app.client
                    .request(verb.clone(), &url)
                    .header("content-type", "application/json")
                    .body("{\"name\": "),
            )
            .await;
            assert_eq!(status, 400, "{method} {path} with malformed JSON");
            check(status, body, "malformed JSON");
            let (status, body) = sent(
                app.client
                    .request(verb.clone(), &url)
                    .json(&json!({"name": "x".repeat(8192)})),
            )
            .await;
            assert_eq!(status, 413, "{method} {path} with a large body");
            check(status, body, "a body over the limit");
        }
        if method != "get" {
            let (status, body) = sent(
                cross_site
                    .request(verb.clone(), &url)
                    .header("cookie", &session_cookie)
                    .json(&json!({})),
            )
            .await;
            assert_eq!(status, 403, "{method} {path} cross-site with a cookie");
            check(status, body, "a cross-site write");
        }
        for parameter in parameters_in(&operation, "query") {
            let name = parameter["name"].as_str().unwrap();
            let (status, body) = sent(
                app.client
                    .request(verb.clone(), format!("{url}?{name}=-1x"))
                    .json(&json!({})),
            )
            .await;
            check(status, body, &format!("{name}=-1x"));
        }
        if path.contains("{id}") {
            let url = app.url(&path.replace("{id}", "abc"));
            let (status, body) =
                sent(app.client.request(verb.clone(), &url).json(&json!({}))).await;
            assert_eq!(status, 404, "{method} {path} with id abc");
            check(status, body, "an id that does not parse");
        }
        if path.contains("{room}") {
            let url = app.url(&path.replace("{room}", "-bad"));
            let (status, body) = sent(app.client.request(verb.clone(), &url)).await;
            check(status, body, "a bad room name");
        }
    }
}

/// The admin's session cookie value, from a fresh login.
async fn login_cookie(app: &TestApp) -> String {
    let response = reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .header("origin", app.url(""))
        .json(&json!({"email": crate::helpers::ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
        .cookies()
        .find(|c| c.name() == "sb_session")
        .map(|c| c.value().to_owned())
        .expect("a session cookie")
}

/// Rate limits answer 429 on every limited operation, and every one documents it
/// (with the envelope).
async fn rate_limited_answers_are_documented(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.rate.general_per_second = 1;
        config.rate.write_per_second = 1;
        config.rate.search_per_second = 1;
        config.rate.login_per_minute = 1;
    })
    .await;
    let doc = fetch_document(&app).await;
    let (client, _) = token_client(&app).await;
    for (path, method, _) in operations(&doc) {
        if path == "/healthz" || path == "/readyz" {
            continue;
        }
        let verb = method.to_uppercase().parse::<reqwest::Method>().unwrap();
        let url = app.url(&concrete(&path, "999999", "999999"));
        let mut limited = None;
        // Bursts are twice the rate: the third request within a second is refused.
        for _ in 0..6 {
            let response = client
                .request(verb.clone(), &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            if response.status() == 429 {
                assert!(response.headers().contains_key("retry-after"));
                limited = Some(response.json::<Value>().await.unwrap());
                break;
            }
        }
        let body = limited.unwrap_or_else(|| panic!("{method} {path} was never rate limited"));
        assert_documented(&doc, &method, &path, 429, &body, "rate limited");
    }
}

crate::on_both_backends!(
    every_documented_operation_is_served_and_answers_as_documented,
    the_document_lists_the_errors_every_operation_can_answer,
    every_provoked_error_is_documented,
    rate_limited_answers_are_documented,
);
