//! `POST /api/batch`: several API calls in one round trip (*compat* shape:
//! `{requests:[{endpoint, method?, body?}]}` -> `[{success, status, data | error}]`).
//!
//! Each item is dispatched through the real router (`tower::ServiceExt::oneshot`), so it
//! passes every layer a direct call would: authentication with the caller's cookie or
//! token, the CSRF check with the caller's `Origin`/`Sec-Fetch-Site`/`X-CSRFToken`, its
//! own rate-limit budget, validation and the error envelope. Nothing here re-implements
//! a rule. Runs of GETs go concurrently; a write waits for everything before it and
//! runs alone, so writes happen in the order given. An item that fails fails alone.

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::ServiceExt;

use crate::AppState;
use crate::error::{ApiError, FieldErrors};
use crate::http::extract::Json;

/// More items than this is a 422: a batch is for a page's few calls, not bulk import.
pub const MAX_ITEMS: usize = 50;

/// The router items are dispatched to, handed to the handler by an outer layer (a
/// clone of the finished router, so the router does not contain itself).
#[derive(Clone)]
pub struct BatchTarget(pub Router);

/// Headers that carry the caller's identity, CSRF evidence and address into each item.
const FORWARDED: [header::HeaderName; 6] = [
    header::COOKIE,
    header::AUTHORIZATION,
    header::ORIGIN,
    header::HOST,
    header::USER_AGENT,
    header::ACCEPT_LANGUAGE,
];
const FORWARDED_CUSTOM: [&str; 3] = ["sec-fetch-site", "x-csrftoken", "x-forwarded-for"];

#[derive(Deserialize)]
pub struct BatchRequest {
    requests: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    endpoint: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    body: Option<Value>,
}

#[derive(Serialize)]
pub struct Outcome {
    success: bool,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Value>,
}

impl Outcome {
    fn refused(status: u16, code: &str, error: impl Into<String>) -> Self {
        Self {
            success: false,
            status,
            data: None,
            error: Some(error.into()),
            code: Some(code.to_owned()),
            fields: None,
        }
    }
}

/// Marks a request as a batch item, so routes that never answer on their own (streams,
/// long polls, sockets) can refuse it instead of holding the batch until it times out.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem;

/// Route layer of the streaming routes ([`crate::transport::router`]): a batch item
/// gets a 400 outcome of its own.
pub async fn refuse_in_batch(request: Request, next: Next) -> Response {
    if request.extensions().get::<BatchItem>().is_some() {
        return ApiError::bad_request(
            "not_batchable",
            "Streams, long polls and sockets cannot be batched: call them directly",
        )
        .into_response();
    }
    next.run(request).await
}

/// An item checked and ready to send, or the outcome that refuses it.
fn prepare(item: &Item) -> Result<(Method, Uri), Outcome> {
    let method = match item
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase()
        .as_str()
    {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        other => {
            return Err(Outcome::refused(
                405,
                "method_not_allowed",
                format!("Method {other} cannot be batched"),
            ));
        }
    };
    let endpoint = item.endpoint.trim();
    if !endpoint.starts_with("/api/") || endpoint.contains("://") || endpoint.contains('#') {
        return Err(Outcome::refused(
            400,
            "invalid_endpoint",
            "endpoint must be a path under /api/, e.g. /api/users/1",
        ));
    }
    let (path, query) = endpoint.split_once('?').unwrap_or((endpoint, ""));
    let path = path.trim_end_matches('/');
    if path == "/api/batch" {
        return Err(Outcome::refused(
            400,
            "nested_batch",
            "A batch cannot contain another batch",
        ));
    }
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    // A space or a control character is not allowed in a URI: refused here, as an
    // outcome, instead of failing the request builder below.
    let uri = uri.parse::<Uri>().map_err(|_| {
        Outcome::refused(
            400,
            "invalid_endpoint",
            "endpoint is not a valid URI: percent-encode spaces and control characters",
        )
    })?;
    Ok((method, uri))
}

pub async fn batch(
    State(state): State<AppState>,
    Extension(BatchTarget(router)): Extension<BatchTarget>,
    // Absent for in-process calls (tests driving the router with `oneshot`).
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(batch): Json<BatchRequest>,
) -> Result<axum::Json<Vec<Outcome>>, ApiError> {
    if batch.requests.len() > MAX_ITEMS {
        let mut fields = FieldErrors::new();
        fields.insert("requests".into(), format!("at most {MAX_ITEMS} items"));
        return Err(ApiError::invalid(fields));
    }
    let max_body = state.config.http.max_body_bytes;
    let send = |method: Method, uri: Uri, body: Option<Value>| {
        let mut request = Request::builder().method(method).uri(uri);
        for name in FORWARDED {
            if let Some(value) = headers.get(&name) {
                request = request.header(name, value);
            }
        }
        for name in FORWARDED_CUSTOM {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let body = match body {
            Some(json) => {
                request = request.header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        // Method and URI are checked, the headers copied from a valid request: this
        // cannot fail, but if it did, the item fails alone.
        let request = request.body(body).map(|mut request| {
            request.extensions_mut().insert(BatchItem);
            if let Some(Extension(info)) = connect_info {
                request.extensions_mut().insert(info);
            }
            request
        });
        let router = router.clone();
        async move {
            let request = match request {
                Ok(request) => request,
                Err(error) => return Outcome::refused(400, "invalid_endpoint", error.to_string()),
            };
            match router.oneshot(request).await {
                Ok(response) => outcome(response, max_body).await,
                Err(never) => match never {},
            }
        }
    };

    let mut outcomes: Vec<Option<Outcome>> = batch.requests.iter().map(|_| None).collect();
    let mut pending_reads = Vec::new();
    for (index, item) in batch.requests.into_iter().enumerate() {
        let (method, uri) = match prepare(&item) {
            Ok(ready) => ready,
            Err(refused) => {
                outcomes[index] = Some(refused);
                continue;
            }
        };
        if method == Method::GET {
            pending_reads.push((index, send(method, uri, None)));
            continue;
        }
        // A write sees every earlier item finished, and nothing later has started.
        flush(&mut pending_reads, &mut outcomes).await;
        outcomes[index] = Some(send(method, uri, item.body).await);
    }
    flush(&mut pending_reads, &mut outcomes).await;
    Ok(axum::Json(
        outcomes
            .into_iter()
            .map(|o| o.expect("every item has an outcome"))
            .collect(),
    ))
}

async fn flush<F: Future<Output = Outcome>>(
    pending: &mut Vec<(usize, F)>,
    outcomes: &mut [Option<Outcome>],
) {
    let (indexes, futures): (Vec<usize>, Vec<F>) = pending.drain(..).unzip();
    for (index, outcome) in indexes.into_iter().zip(join_all(futures).await) {
        outcomes[index] = Some(outcome);
    }
}

/// A sub-response as a batch item: JSON bodies parsed, errors flattened from the
/// envelope.
async fn outcome(response: axum::response::Response, max_body: usize) -> Outcome {
    let status = response.status();
    let body = match to_bytes(response.into_body(), max_body.max(64 * 1024) * 8).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Outcome::refused(502, "internal", "The response could not be read");
        }
    };
    let value: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    if status.is_success() || status.is_redirection() {
        return Outcome {
            success: status.is_success(),
            status: status.as_u16(),
            data: Some(value),
            error: None,
            code: None,
            fields: None,
        };
    }
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    Outcome {
        success: false,
        status: status.as_u16(),
        data: None,
        error: text("error").or_else(|| Some(status.to_string())),
        code: text("code"),
        fields: value.get("fields").cloned(),
    }
}
