//! `GET /api/openapi.json`: a valid OpenAPI 3.1 document whose every operation the
//! router really serves (so the document cannot promise a route that is gone).

use serde_json::Value;
use switchboard::store::Backend;

use crate::helpers::{json_with_status, spawn_app};

async fn every_documented_operation_is_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = json_with_status(app.get("/api/openapi.json").await, 200).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["schemas"]["User"].is_object());
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    let anonymous = app
        .anonymous()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // A user of our own to read, edit and delete; a token id that exists.
    let user = app.create_user("Doc Target", "doc@example.com").await;
    let token = json_with_status(
        app.post_json("/api/tokens", &serde_json::json!({"name": "doc"}))
            .await,
        201,
    )
    .await;
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "{:?}", paths.keys());
    let mut checked = 0;
    for (path, operations) in paths {
        let id = if path.starts_with("/api/tokens") {
            token["id"].to_string()
        } else {
            user["id"].to_string()
        };
        let concrete = path.replace("{id}", &id);
        for method in operations.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<reqwest::Method>() else {
                continue;
            };
            let mut request = app.client.request(method.clone(), app.url(&concrete));
            if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
                request = request.json(&serde_json::json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !(status == 404 && body["error"] == "Not found"),
                "{method} {path} is documented but not routed"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}

crate::on_both_backends!(every_documented_operation_is_served);
